/*
 * compact.c - `snapfs compact STORE [--to NEWSTORE]`: give the free pages
 * of an unmounted store's file back to the filesystem (store/compact.c,
 * LMDB's compacting copy), or write the compacted copy as a new store
 * directory and leave STORE as it is.
 *
 * Refused, with nothing changed, while the volume is mounted or another
 * process has the store open, when there is no room for the copy, and
 * for anything that is not a store.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "store.h"

/* The name of process PID, for a message ("?" if it is gone). */
static void process_name(int pid, char *out, size_t cap)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    FILE *f = fopen(path, "r");
    snprintf(out, cap, "?");
    if (f) {
        if (fgets(out, (int)cap, f))
            out[strcspn(out, "\n")] = 0;
        fclose(f);
    }
}

static void die_compact(const char *arg, const char *where, int rc,
                        const struct sfs_compact_result *r)
{
    char a[32], b[32], name[64];
    switch (rc) {
    case -EBUSY:
        if (r->holder_pid <= 0)
            die("compact", "%s: the volume is mounted or in use by another "
                           "snapfs command; unmount it first; nothing was "
                           "changed", arg);
        process_name(r->holder_pid, name, sizeof(name));
        die("compact", "%s: the store is open in process %d (%s); compact "
                       "needs it to itself; nothing was changed",
            arg, r->holder_pid, name);
    case -ENOSPC:
        format_bytes(r->need_bytes, a, sizeof(a));
        format_bytes(r->free_bytes, b, sizeof(b));
        die("compact", "%s: not enough space in %s for the compacted copy "
                       "(needs %s, %s free); nothing was changed",
            arg, where, a, b);
    case -ENOENT: case -ENOTDIR: case -EMEDIUMTYPE: case -EPROTONOSUPPORT:
        die("compact", "%s: %s; nothing was changed", arg, open_error(rc));
    default:
        die("compact", "%s: %s; nothing was changed", arg, strerror(-rc));
    }
}

static void parse_args(int argc, char **argv, const char **store,
                       const char **to)
{
    *store = *to = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v = option_value("compact", "--to", argc, argv, &i);
        if (v)
            *to = v;
        else if (argv[i][0] == '-' && argv[i][1])
            die_usage("compact", "unknown option '%s'", argv[i]);
        else if (*store)
            die_usage("compact", "give one STORE");
        else
            *store = argv[i];
    }
    if (!*store)
        die_usage("compact", "give one STORE");
}

int cmd_compact(int argc, char **argv)
{
    const char *arg, *to;
    parse_args(argc, argv, &arg, &to);
    bool mounted;
    char *store = resolve_volume(arg, &mounted);
    if (mounted)
        die("compact", "%s: the volume is mounted; unmount it first "
                       "(compact works offline); nothing was changed", arg);
    char partial[PATH_MAX];
    if (to) {
        store_dir_check_new("compact", to);
        if (snprintf(partial, sizeof(partial), "%s.partial-%d", to,
                     (int)getpid()) >= (int)sizeof(partial))
            die("compact", "%s: name too long", to);
        if (mkdir(partial, 0700))
            die("compact", "%s: %s; nothing was changed", partial,
                strerror(errno));
    }
    struct sfs_compact_result r;
    int rc = sfs_compact(store, to ? partial : NULL, &r);
    if (!rc && to)
        rc = store_dir_publish(partial, to);
    if (rc && to)
        store_dir_remove(partial);
    if (rc == -EEXIST && to)
        die("compact", "%s: was created meanwhile; nothing was changed", to);
    if (rc)
        die_compact(arg, to ? to : store, rc, &r);
    if (r.leftover_removed)
        printf("%s: removed the temporary file of a compact that did not "
               "finish\n", arg);
    char a[32], b[32], c[32];
    uint64_t before = r.before.file_bytes;
    format_bytes(before, a, sizeof(a));
    format_bytes(r.after_bytes, b, sizeof(b));
    format_bytes(before > r.after_bytes ? before - r.after_bytes : 0, c,
                 sizeof(c));
    if (to)
        printf("%s: compacted into %s: %s (the store file is %s)\n", arg, to,
               b, a);
    else
        printf("%s: compacted: %s -> %s (%s given back)\n", arg, a, b, c);
    free(store);
    return 0;
}
