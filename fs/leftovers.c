/*
 * leftovers.c - what a killed command left behind, cleaned when the
 * volume is mounted, each with a message.
 *
 * `snapfs clone` holds its snapshot while it copies (tag clone:PID, or
 * clone:PID:PARTIAL with the absolute path of the store it builds,
 * NEWSTORE.partial-PID) and releases the hold and removes or publishes
 * the partial store when it ends; killed, it can do neither.  At mount,
 * a clone hold whose process is gone (no process PID, or one that is not
 * a `snapfs clone`) is released, and its partial store, if the tag names
 * one that is still there under that name, is removed.  A clone that
 * still runs keeps both.  (Dump contexts also hold their snapshot, but
 * they are meant to outlive their dump: `dump --restart` continues one,
 * `dump contexts delete` abandons it.)  `snapfs health` reports the same
 * leftovers and cleans them with --fix (leftovers_find, leftover_partial,
 * leftover_remove_partial).
 */
#define _GNU_SOURCE
#include "leftovers.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLONE_TAG "clone:"

struct stale_list {
    struct sfs_store *st;
    MDB_txn *txn;
    const char *snap;
    struct leftover *v;
    size_t n, cap;
};

/* Is PID a running `snapfs clone`? */
static bool clone_running(pid_t pid)
{
    char path[64], args[256];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, args, sizeof(args) - 1);
    close(fd);
    if (n <= 0)
        return false;
    args[n] = 0;
    const char *second = args + strlen(args) + 1; /* argv[1] */
    return second < args + n && !strcmp(second, "clone");
}

static int note_hold(void *arg, const char *tag)
{
    struct stale_list *sl = arg;
    if (strncmp(tag, CLONE_TAG, strlen(CLONE_TAG)))
        return 0;
    pid_t pid = (pid_t)strtol(tag + strlen(CLONE_TAG), NULL, 10);
    if (pid > 0 && clone_running(pid))
        return 0;
    if (sl->n == sl->cap) {
        size_t cap = sl->cap ? 2 * sl->cap : 4;
        struct leftover *v = realloc(sl->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        sl->v = v;
        sl->cap = cap;
    }
    snprintf(sl->v[sl->n].snap, sizeof(sl->v[sl->n].snap), "%s", sl->snap);
    snprintf(sl->v[sl->n].tag, sizeof(sl->v[sl->n].tag), "%s", tag);
    sl->n++;
    return 0;
}

static int note_snapshot(void *arg, const struct sfs_snap_rec *s)
{
    struct stale_list *sl = arg;
    sl->snap = s->name;
    int rc = sfs_snap_holds(sl->st, sl->txn, s->epoch, note_hold, sl);
    return rc < 0 ? rc : 0;
}

const char *leftover_partial(const struct leftover *l)
{
    static __thread char path[PATH_MAX];
    const char *colon = strchr(l->tag + strlen(CLONE_TAG), ':');
    if (!colon)
        return NULL;
    pid_t pid = (pid_t)strtol(l->tag + strlen(CLONE_TAG), NULL, 10);
    char suffix[32], p[PATH_MAX + 16];
    snprintf(suffix, sizeof(suffix), ".partial-%d", (int)pid);
    snprintf(path, sizeof(path), "%s", colon + 1);
    size_t n = strlen(path), m = strlen(suffix);
    struct stat sb;
    snprintf(p, sizeof(p), "%s/data.mdb", path);
    if (n <= m || strcmp(path + n - m, suffix) || stat(p, &sb))
        return NULL; /* not ours, or gone */
    return path;
}

int leftover_remove_partial(const struct leftover *l)
{
    const char *path = leftover_partial(l);
    if (!path)
        return -ENOENT;
    char p[PATH_MAX + 16];
    static const char *files[] = { "data.mdb", "lock.mdb", "lock" };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", path, files[i]);
        unlink(p);
    }
    return rmdir(path) ? -errno : 0;
}

/* Remove the partial store of stale clone L, saying so. */
static void remove_partial(const char *store, const struct leftover *l)
{
    const char *path = leftover_partial(l);
    if (!path)
        return;
    char copy[PATH_MAX];
    snprintf(copy, sizeof(copy), "%s", path);
    int rc = leftover_remove_partial(l);
    if (rc)
        fprintf(stderr, "snapfs mount: %s: could not remove the partial clone "
                        "%s: %s\n", store, copy, strerror(-rc));
    else
        fprintf(stderr, "snapfs mount: %s: removed the partial clone %s of a "
                        "clone that is gone\n", store, copy);
}

/* Release the hold of stale clone S and remove its partial store. */
static int clean_one(struct sfs_store *st, MDB_txn *txn, const char *store,
                     const struct leftover *s)
{
    int rc = sfs_snap_release_w(st, txn, s->snap, s->tag);
    if (rc)
        return rc;
    fprintf(stderr, "snapfs mount: %s: released the hold '%s' on snapshot %s "
                    "(the clone is gone)\n", store, s->tag, s->snap);
    remove_partial(store, s);
    return 0;
}

int leftovers_find(struct sfs_store *st, MDB_txn *txn, struct leftover **out,
                   size_t *n)
{
    struct stale_list sl = { .st = st, .txn = txn };
    int rc = sfs_snap_foreach(st, txn, note_snapshot, &sl);
    if (rc) {
        free(sl.v);
        sl.v = NULL;
        sl.n = 0;
    }
    *out = sl.v;
    *n = sl.n;
    return rc;
}

int leftovers_clean(struct sfs_store *st, const char *store)
{
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, true, &txn);
    if (rc)
        return rc;
    struct stale_list sl = { .st = st, .txn = txn };
    rc = leftovers_find(st, txn, &sl.v, &sl.n);
    for (size_t i = 0; !rc && i < sl.n; i++)
        rc = clean_one(st, txn, store, &sl.v[i]);
    free(sl.v);
    if (rc || !sl.n) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = sfs_txn_commit(st, txn);
    return rc ? rc : sfs_mdb_errno(mdb_env_sync(st->env, 1));
}
