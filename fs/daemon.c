/*
 * daemon.c - mounting a volume and serving it until it is unmounted.
 *
 * Order of events, and what each guarantees:
 *   1. open the store exclusively (a second mount gets EBUSY: "already
 *      mounted"), reap orphans a crash left behind (inodes unlinked while
 *      open), count the ledger of what only snapshots hold if the store
 *      predates it (store/blocks.c), release the holds and remove the
 *      partial stores of clones that were killed (leftovers.c), start
 *      group commit;
 *   2. create the FUSE session and mount, with default_permissions (the
 *      kernel checks permissions and POSIX ACLs), allow_other when run by
 *      root (NAS exports), fsname = the store path and type fuse.snapfs;
 *   3. write STORE/daemon.pid and tell the waiting parent "ready" (a
 *      failure before this point is reported to it instead, and nothing
 *      stays mounted); in the foreground under systemd (Type=notify),
 *      tell it READY=1 once the mount answers (service.c);
 *   4. serve with a multithreaded loop until unmounted or signalled, and
 *      run due snapshot policies on a thread (scheduler.c); every
 *      operation is counted and timed (metrics_ops.c) unless the mount
 *      has `-o nostats`;
 *   5. commit and sync everything (systemd is told STOPPING=1 first),
 *      remove the pid file, close the store.
 */
#define _GNU_SOURCE
#include "control.h"
#include "killpriv.h"
#include "leftovers.h"
#include "metrics.h"
#include "metrics_ops.h"
#include "ops.h"
#include "readaround.h"
#include "scheduler.h"
#include "service.h"
#include "wcache.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The committer's hook: cached partial blocks into the batch. */
static void flush_cached_blocks(struct vol *v)
{
    wcache_flush_all(v, false);
}

static int reap_orphans(struct sfs_store *st)
{
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, true, &txn);
    if (rc)
        return rc;
    rc = sfs_orphans_reap_w(st, txn);
    if (rc < 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return sfs_txn_commit(st, txn);
}

static void tell_parent(int *ready_fd, unsigned char status)
{
    if (*ready_fd < 0)
        return;
    if (write(*ready_fd, &status, 1) != 1)
        perror("snapfs: telling the parent");
    close(*ready_fd);
    *ready_fd = -1;
}

static int write_pidfile(const char *store)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/daemon.pid", store);
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    fprintf(f, "%d\n", (int)getpid());
    return fclose(f) ? -errno : 0;
}

static void remove_pidfile(const char *store)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/daemon.pid", store);
    unlink(path);
}

/* Detach from the terminal: stdio to /dev/null, errors to STORE/daemon.log */
static void detach_stdio(const char *store)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/daemon.log", store);
    int null = open("/dev/null", O_RDWR);
    int log = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        close(null);
    }
    if (log >= 0) {
        dup2(log, 2);
        close(log);
    }
}

static char *mount_options(const char *store, const char *extra,
                           bool read_only, bool *no_writeback)
{
    char *opts = NULL;
    const char *allow = geteuid() == 0 ? ",allow_other" : "";
    /* Our own options: no_writeback_cache turns the kernel cache off,
     * nostats the statistics (metrics.c), noreadaround the filling of
     * the kernel's cache around reads (readaround.c). */
    char *rest = strdup(extra ? extra : "");
    if (!rest)
        return NULL;
    *no_writeback = false;
    char *out = calloc(1, strlen(rest) + 1), *save = NULL;
    if (!out) {
        free(rest);
        return NULL;
    }
    for (char *tok = strtok_r(rest, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (!strcmp(tok, "no_writeback_cache")) {
            *no_writeback = true;
            continue;
        }
        if (!strcmp(tok, "nostats")) {
            metrics_enabled = false;
            continue;
        }
        if (!strcmp(tok, "noreadaround")) {
            readaround_enabled = false;
            continue;
        }
        if (*out)
            strcat(out, ",");
        strcat(out, tok);
    }
    if (asprintf(&opts, "default_permissions%s,fsname=%s,subtype=snapfs%s%s%s",
                 allow, store, read_only ? ",ro" : "", *out ? "," : "",
                 out) < 0)
        opts = NULL;
    free(rest);
    free(out);
    return opts;
}

/*
 * What clients see as the volume.  An ordinary volume: its live tree.  A
 * mirror destination (it follows a source and is not broken off, or holds
 * an unfinished receive): its newest snapshot, the last complete one, read
 * only, since its live tree may hold part of a receive (store/stream.c).
 */
static int recv_state(struct sfs_store *st, struct sfs_recv_state *rs)
{
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, false, &txn);
    if (!rc) {
        rc = sfs_recv_state(st, txn, rs);
        mdb_txn_abort(txn);
    }
    return rc;
}

static bool is_following(const struct sfs_recv_state *rs)
{
    return (rs->follows && !rs->writable) || rs->partial;
}

static bool following(struct sfs_store *st)
{
    struct sfs_recv_state rs;
    return !recv_state(st, &rs) && is_following(&rs);
}

/* What a mirror destination shows: its published snapshot (the newest,
 * unless snapshots are held back for a consistency group). */
static int published_view(struct sfs_store *st, uint64_t *view)
{
    *view = SFS_VIEW_LIVE;
    struct sfs_recv_state rs;
    int rc = recv_state(st, &rs);
    if (rc || !is_following(&rs))
        return rc;
    if (rs.held_back && !rs.published)
        return -ENOMSG;
    if (rs.published)
        *view = rs.published;
    return 0;
}

/* The volume's hook: control changes tell the kernel what to forget. */
static void notify_changed(struct vol *v, unsigned what)
{
    struct snapfs_fs *fs =
        (struct snapfs_fs *)((char *)v - offsetof(struct snapfs_fs, vol));
    snapdir_notify(&fs->snapdirs, v, what);
}

static void notify_entry(struct vol *v, uint64_t parent, const char *name)
{
    struct snapfs_fs *fs =
        (struct snapfs_fs *)((char *)v - offsetof(struct snapfs_fs, vol));
    snapdir_notify_entry(&fs->snapdirs, parent, name);
}

int snapfs_serve(const char *store, const char *mountpoint, const char *options,
                 int ready_fd)
{
    struct snapfs_fs *fs = calloc(1, sizeof(*fs));
    struct sfs_store *st = NULL;
    struct fuse_session *se = NULL;
    char *opts = NULL;
    int status = 1;
    if (!fs)
        goto fail;

    struct stat sb;
    if (stat(mountpoint, &sb) || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "snapfs mount: %s: mountpoint %s\n", mountpoint,
                errno == ENOENT || !S_ISDIR(sb.st_mode)
                    ? "does not exist or is not a directory" : strerror(errno));
        goto fail;
    }
    int rc = sfs_open(store, SFS_OPEN_EXCLUSIVE, &st);
    if (rc) {
        fprintf(stderr, "snapfs mount: %s: %s\n", store,
                rc == -EBUSY ? "volume is already mounted (or in use by "
                               "another snapfs command)"
                : rc == -EMEDIUMTYPE ? "not a snapfs volume"
                : rc == -EPROTONOSUPPORT && sfs_open_why()[0] ? sfs_open_why()
                : rc == -EPROTONOSUPPORT ? "volume has a newer on-disk format "
                                           "than this snapfs supports"
                : rc == -ENOENT ? "no such directory"
                : strerror(-rc));
        goto fail;
    }
    rc = reap_orphans(st);
    if (rc) {
        fprintf(stderr, "snapfs mount: %s: recovering orphans: %s\n", store,
                strerror(-rc));
        goto fail;
    }
    rc = st->readonly ? 0 : sfs_ledger_count(st);
    if (rc < 0) {
        fprintf(stderr, "snapfs mount: %s: counting what only snapshots "
                        "hold: %s\n", store, strerror(-rc));
        goto fail;
    }
    if (rc == 1)
        fprintf(stderr, "snapfs mount: %s: counted what only snapshots hold "
                        "(once: the store was made by an older snapfs)\n",
                store);
    rc = st->readonly ? 0 : leftovers_clean(st, store);
    if (rc) {
        fprintf(stderr, "snapfs mount: %s: cleaning after killed commands: "
                        "%s\n", store, strerror(-rc));
        goto fail;
    }
    uint64_t published;
    rc = published_view(st, &published);
    if (rc) {
        fprintf(stderr, "snapfs mount: %s: %s\n", store, rc == -ENOMSG
                ? "its consistency group's baseline has not reached every "
                  "member yet: there is nothing to show"
                : strerror(-rc));
        goto fail;
    }
    /* A mirror destination is read-only to clients (see published_view),
     * and without the kernel's writeback cache, which would keep its own
     * size of a file held open when a receive publishes a new snapshot
     * (receive.c): nothing is written through it anyway. */
    bool read_only = published != SFS_VIEW_LIVE || following(st);
    opts = mount_options(store, options, read_only, &fs->no_writeback);
    if (!opts)
        goto fail;
    fs->no_writeback |= read_only;
    char *argv[] = { "snapfs", "-o", opts, NULL };
    struct fuse_args args = FUSE_ARGS_INIT(3, argv);
    rc = vol_start(&fs->vol, st, flush_cached_blocks);
    fs->vol.live_view = published;
    if (rc) {
        fprintf(stderr, "snapfs mount: %s: %s\n", store, strerror(-rc));
        goto fail;
    }
    if (wcache_start(&fs->vol))
        fprintf(stderr, "snapfs mount: %s: no drainer thread: writers store "
                "the cache themselves\n", store);
    rc = snapdirs_init(&fs->snapdirs, &fs->vol);
    if (rc) {
        fprintf(stderr, "snapfs mount: %s: reading snapshots: %s\n", store,
                strerror(-rc));
        goto fail_vol;
    }
    fs->vol.notify_changed = notify_changed;
    fs->vol.notify_entry = notify_entry;
    struct fuse_lowlevel_ops ops = snapfs_ops;
    if (metrics_enabled)
        metrics_wrap_ops(&snapfs_ops, &ops);
    metrics_start();
    se = fuse_session_new(&args, &ops, sizeof(ops), fs);
    fuse_opt_free_args(&args);
    if (!se) {
        fprintf(stderr, "snapfs mount: bad mount options: %s\n",
                options ? options : "");
        goto fail_vol;
    }
    if (fuse_set_signal_handlers(se) ||
        fuse_session_mount(se, mountpoint)) {
        fprintf(stderr, "snapfs mount: %s: could not mount\n", mountpoint);
        goto fail_vol;
    }
    rc = killpriv_attach(se);
    if (rc) {
        fprintf(stderr, "snapfs mount: %s: %s\n", mountpoint, strerror(-rc));
        fuse_session_unmount(se);
        goto fail_vol;
    }
    fs->snapdirs.se = se;
    space_start(&fs->space, &fs->vol, se, mountpoint, !fs->no_writeback);
    struct control ctl;
    rc = control_start(&ctl, &fs->vol, store);
    if (rc) {
        fprintf(stderr, "snapfs mount: %s/control.sock: %s\n", store,
                strerror(-rc));
        space_stop(&fs->space);
        fuse_session_unmount(se);
        goto fail_vol;
    }
    if (write_pidfile(store))
        fprintf(stderr, "snapfs mount: could not write %s/daemon.pid\n", store);
    if (ready_fd >= 0) {
        tell_parent(&ready_fd, 0);
        detach_stdio(store);
    } else {
        rc = service_ready_when_answering(store, mountpoint);
        if (rc)
            fprintf(stderr, "snapfs: %s: cannot tell systemd when the mount "
                            "is ready: %s\n", store, strerror(-rc));
    }
    struct scheduler sched; /* after detaching: it logs to daemon.log */
    rc = scheduler_start(&sched, &fs->vol, store, mountpoint);
    if (rc)
        fprintf(stderr, "snapfs: %s: snapshot policies will not run: %s\n",
                store, strerror(-rc));

    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(cfg, 1);
    fuse_loop_cfg_set_max_threads(cfg, SNAPFS_MAX_THREADS);
    int loop_rc = fuse_session_loop_mt(se, cfg);
    fuse_loop_cfg_destroy(cfg);
    if (ready_fd < 0)
        service_stopping(store);

    space_stop(&fs->space);
    fuse_session_unmount(se);
    scheduler_stop(&sched);
    control_stop(&ctl);
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    se = NULL;
    wcache_stop(&fs->vol);
    rc = wcache_flush_all(&fs->vol, true);
    if (rc)
        fprintf(stderr, "snapfs: %s: storing cached blocks: %s\n", store,
                strerror(-rc));
    rc = vol_stop(&fs->vol);
    remove_pidfile(store);
    if (rc)
        fprintf(stderr, "snapfs: %s: final commit failed: %s\n", store,
                strerror(-rc));
    status = (loop_rc < 0 || rc) ? 1 : 0;
    snapdirs_destroy(&fs->snapdirs);
    sfs_close(st);
    free(opts);
    free(fs);
    return status;

fail_vol:
    if (se) {
        fuse_remove_signal_handlers(se);
        fuse_session_destroy(se);
    }
    wcache_stop(&fs->vol);
    vol_stop(&fs->vol);
    snapdirs_destroy(&fs->snapdirs);
fail:
    tell_parent(&ready_fd, 1);
    sfs_close(st);
    free(opts);
    free(fs);
    return status;
}
