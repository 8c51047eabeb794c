/*
 * cli.c - the helpers every subcommand and engine of the command layer
 * shares (cli.h): the one-line messages and their exit codes ("snapfs
 * CMD: OBJECT: why"; 2 for usage, 1 otherwise), sizes, options, volume
 * arguments, the messages of the store's common errors, JSON strings and
 * growing arrays.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store.h"

void die_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "snapfs %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'snapfs help')\n");
    va_end(ap);
    exit(2);
}

static void (*die_hook)(const char *cmd, const char *msg);

void die_set_hook(void (*fn)(const char *cmd, const char *msg))
{
    die_hook = fn;
}

void die(const char *cmd, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "snapfs %s: %s\n", cmd, msg);
    void (*fn)(const char *, const char *) = die_hook;
    die_hook = NULL; /* once, even if it dies itself */
    if (fn)
        fn(cmd, msg);
    exit(1);
}

int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0)) /* !(v >= 0): NaN too */
        return -EINVAL;
    uint64_t mult = 1;
    switch (*end) {
    case 0: break;
    case 'k': case 'K': mult = 1ull << 10; end++; break;
    case 'm': case 'M': mult = 1ull << 20; end++; break;
    case 'g': case 'G': mult = 1ull << 30; end++; break;
    case 't': case 'T': mult = 1ull << 40; end++; break;
    default: return -EINVAL;
    }
    if (*end == 'i' && *(end + 1) == 'B')
        end += 2;
    else if (*end == 'B')
        end++;
    if (*end || v * (double)mult >= 18446744073709551616.0) /* 2^64 */
        return -EINVAL;
    *out = (uint64_t)(v * (double)mult);
    return 0;
}

/* Where a snapfs volume is mounted: the store path from /proc/self/mountinfo
 * (our fsname), or NULL if PATH is not a snapfs mountpoint. */
char *mounted_store(const char *path)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return NULL;
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return NULL;
    char line[8192], *found = NULL;
    while (fgets(line, sizeof(line), f)) {
        char mnt[PATH_MAX], fstype[64], source[PATH_MAX];
        /* id parent major:minor root mountpoint opts... - type source ... */
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
            continue;
        char *dash = strstr(line, " - ");
        if (!dash || sscanf(dash + 3, "%63s %4095s", fstype, source) != 2)
            continue;
        if (strcmp(fstype, "fuse.snapfs") || strcmp(mnt, real))
            continue;
        free(found);
        found = strdup(source);
    }
    fclose(f);
    return found;
}

/* A store argument: a store directory, or the mountpoint of one. */
char *resolve_volume(const char *arg, bool *mounted)
{
    char *store = mounted_store(arg);
    *mounted = store != NULL;
    if (store)
        return store;
    char real[PATH_MAX];
    return strdup(realpath(arg, real) ? real : arg);
}

const char *open_error(int rc)
{
    switch (rc) {
    case -ENOENT: return "no such directory";
    case -ENOTDIR: return "not a directory";
    case -EMEDIUMTYPE: return "not a snapfs volume";
    case -EPROTONOSUPPORT: /* sfs_open says which versions or feature */
        return sfs_open_why()[0] ? sfs_open_why()
                                 : "volume has a newer on-disk format than "
                                   "this snapfs supports";
    case -EBUSY: return "volume is mounted or in use by another snapfs command";
    case -EPERM: /* peer_guard.c */
        return "not the volume the peer's grant names (the path leads "
               "elsewhere now)";
    default: return strerror(-rc);
    }
}

void format_bytes(uint64_t bytes, char *out, size_t cap)
{
    const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
    double d = (double)bytes;
    int i = 0;
    while (d >= 1024 && i < 5) {
        d /= 1024;
        i++;
    }
    snprintf(out, cap, i ? "%.2f %s" : "%.0f %s", d, unit[i]);
}

int array_append(void *items, size_t *n, size_t *cap, const void *item,
                 size_t size)
{
    void **arr = items;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        void *p = realloc(*arr, c * size);
        if (!p)
            return -ENOMEM;
        *arr = p;
        *cap = c;
    }
    memcpy((char *)*arr + *n * size, item, size);
    ++*n;
    return 0;
}

void print_json_string(const char *s)
{
    print_json_string_to(stdout, s);
}

void print_json_string_to(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(out, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(out, "\\u%04x", (unsigned char)*s);
        else
            fputc(*s, out);
    }
    fputc('"', out);
}

/* "--opt VALUE" or "--opt=VALUE": the value, advancing *I; NULL if ARG is
 * not OPT. */
const char *option_value(const char *cmd, const char *opt, int argc,
                                char **argv, int *i)
{
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n))
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n])
        return NULL;
    if (*i + 1 >= argc)
        die_usage(cmd, "%s needs a value", opt);
    return argv[++*i];
}

const char *snapshot_error(int rc)
{
    switch (rc) {
    case -EACCES:
        return "permission denied (only root or the volume's owner may "
               "manage snapshots)";
    case -ENOENT: return "no such snapshot (it was removed meanwhile)";
    case -EEXIST: return "that name was taken meanwhile";
    case -ENOSPC: return "the volume is full";
    case -EINPROGRESS:
        return "a stream is being received into it; try when the receive "
               "has ended";
    default: return strerror(-rc);
    }
}

static int remove_entry(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) ? errno : 0; /* positive: nftw's own failure is -1 */
}

int remove_tree(const char *dir)
{
    int rc = nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc > 0 ? -rc : rc < 0 ? -errno : 0;
}
