/*
 * restore.c - `snapfs snapshot restore`, `snapfs snapshot restore-file`
 * and `snapfs clone`: getting back what a snapshot saw.
 *
 *   snapshot restore VOL NAME      the live tree rolled back to NAME; every
 *                                  snapshot, older and newer, is kept
 *   snapshot restore-file VOL NAME PATH [--to DEST]
 *                                  one file or directory copied back, with
 *                                  its attributes, xattrs and hard links
 *   clone VOL NAME NEWSTORE        a new, independent volume made from NAME
 *
 * Guarantees: everything is checked before anything changes (the snapshot,
 * PATH in it, DEST's parent and type, NEWSTORE's absence), each refusal is
 * one message, and a restore is one transaction (through the daemon when
 * mounted), so a crash leaves the volume before or after it.  A clone is
 * built under NEWSTORE.partial-PID and renamed into place only when
 * complete: a failed or interrupted clone leaves no NEWSTORE.  While it
 * copies, the clone holds the snapshot (tag clone:PID) so that it cannot
 * be deleted, and reads the source through short read transactions that
 * it renews, never one long one; the source may be mounted and in use.
 *
 * PATH and DEST are paths inside the volume ("docs/a.txt" or "/docs/a.txt");
 * on a mounted volume a path under the mountpoint is accepted as well.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "store.h"

#define CLONE_COMMIT_BYTES (64ull << 20)
#define CLONE_STEP_RECORDS 4096

/* ---- reading the volume's committed state ---- */

/* The store opened read-only, after a mounted volume's daemon committed
 * everything it holds, with a read transaction. */
struct view {
    struct sfs_store *st;
    MDB_txn *txn;
};

static void view_open(struct volume *vol, const char *cmd, struct view *v)
{
    v->st = volume_read_store(vol, cmd, "restore");
    int rc = sfs_txn_begin(v->st, NULL, false, &v->txn);
    if (rc) {
        sfs_close(v->st);
        die(cmd, "%s: %s", vol->arg, open_error(rc));
    }
}

static void view_close(struct view *v)
{
    mdb_txn_abort(v->txn);
    sfs_close(v->st);
}

static void find_snapshot(struct view *v, const char *cmd, const char *vol,
                          const char *name, struct sfs_snap_rec *out)
{
    int rc = sfs_snap_find(v->st, v->txn, name, out);
    if (rc == -ENOENT)
        die(cmd, "%s: no snapshot named '%s'", vol, name);
    if (rc)
        die(cmd, "%s: reading snapshots: %s", vol, strerror(-rc));
}

/* PATH inside the volume: a path under the mountpoint loses that part. */
static const char *in_volume(const struct volume *vol, const char *path)
{
    char real[PATH_MAX];
    if (!vol->mountpoint || path[0] != '/' || !realpath(vol->mountpoint, real))
        return path;
    size_t n = strlen(real);
    if (!strncmp(path, real, n) && (path[n] == '/' || !path[n]))
        return path[n] ? path + n : "/";
    return path;
}

static const char *change_error(int rc)
{
    switch (rc) {
    case -EACCES:
        return "permission denied (only root or the volume's owner may "
               "restore)";
    case -ENOSPC: return "the volume is full";
    case -ENOENT: return "it was changed meanwhile (no such snapshot or path)";
    default: return strerror(-rc);
    }
}

/* A mounted volume's reply "<a> <b>". */
static int request_counts(struct volume *vol, char **words, int n,
                          unsigned long long *a, unsigned long long *b)
{
    char *data = NULL;
    int rc = volume_request(vol, words, n, &data);
    if (!rc && sscanf(data, "%llu %llu", a, b) != 2)
        rc = -EPROTO;
    free(data);
    return rc;
}

/* ---- snapshot restore ---- */

struct rollback_arg {
    const char *name;
    struct sfs_rollback_stats stats;
};

static int offline_rollback(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct rollback_arg *ra = arg;
    struct sfs_snap_rec s;
    int rc = sfs_snap_find(st, txn, ra->name, &s);
    return rc ? rc : sfs_rollback_w(st, txn, s.epoch, &ra->stats);
}

static int restore_volume(const char *cmd, struct volume *vol, int n,
                          char **args)
{
    if (n != 1)
        die_usage(cmd, "give the volume and one snapshot");
    struct view v;
    struct sfs_snap_rec s;
    view_open(vol, cmd, &v);
    find_snapshot(&v, cmd, vol->arg, args[0], &s);
    view_close(&v);
    fprintf(stderr, "snapfs %s: %s: rolling back to '%s'; changes made since "
                    "it was taken are discarded (every snapshot is kept)\n",
            cmd, vol->arg, args[0]);
    struct rollback_arg ra = { .name = args[0] };
    int rc;
    if (vol->mounted) {
        char *words[] = { "snapshot-restore", args[0] };
        unsigned long long a = 0, b = 0;
        rc = request_counts(vol, words, 2, &a, &b);
        ra.stats.restored = a;
        ra.stats.removed = b;
    } else {
        rc = volume_offline(vol, cmd, offline_rollback, &ra, true);
    }
    if (rc)
        die(cmd, "%s: %s", vol->arg, change_error(rc));
    printf("snapfs: rolled %s back to snapshot %s: %llu records restored, "
           "%llu removed\n", vol->arg, args[0],
           (unsigned long long)ra.stats.restored,
           (unsigned long long)ra.stats.removed);
    return 0;
}

/* ---- snapshot restore-file ---- */

struct restore_file_arg {
    const char *name, *path, *dest;
    struct sfs_restore_stats stats;
};

static int offline_restore_file(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct restore_file_arg *ra = arg;
    struct sfs_snap_rec s;
    int rc = sfs_snap_find(st, txn, ra->name, &s);
    return rc ? rc : sfs_restore_path_w(st, txn, s.epoch, ra->path, ra->dest,
                                        &ra->stats);
}

/* Refuse, with the reason, what sfs_restore_path_w would refuse. */
static void check_restore_file(struct volume *vol, const char *cmd,
                               struct restore_file_arg *ra)
{
    struct view v;
    struct sfs_snap_rec s;
    view_open(vol, cmd, &v);
    find_snapshot(&v, cmd, vol->arg, ra->name, &s);
    uint64_t ino, dir;
    char leaf[SFS_NAME_MAX + 1];
    struct sfs_inode si, di;
    int rc = sfs_path_lookup(v.st, v.txn, s.epoch, ra->path, &ino, NULL, NULL);
    if (!rc)
        rc = sfs_inode_get(v.st, v.txn, s.epoch, ino, &si);
    if (rc == -ENOENT || rc == -ENOTDIR)
        die(cmd, "%s: '%s' does not exist in snapshot '%s'", vol->arg,
            ra->path, ra->name);
    if (rc == -EINVAL)
        die(cmd, "'%s': give a path without '.' or '..'", ra->path);
    if (rc)
        die(cmd, "%s: '%s': %s", vol->arg, ra->path, strerror(-rc));
    rc = sfs_path_lookup(v.st, v.txn, SFS_VIEW_LIVE, ra->dest, &ino, &dir,
                         leaf);
    if (!rc)
        rc = sfs_inode_get(v.st, v.txn, SFS_VIEW_LIVE, ino, &di);
    const char *why = NULL;
    if ((rc == -ENOENT && !dir) || rc == -ENOTDIR)
        why = "its parent directory does not exist";
    else if (rc == -EINVAL)
        die(cmd, "'%s': give a path without '.' or '..'", ra->dest);
    else if (rc && rc != -ENOENT)
        die(cmd, "%s: '%s': %s", vol->arg, ra->dest, strerror(-rc));
    else if (!rc && (!*leaf || S_ISDIR(di.mode)))
        why = "it is an existing directory; restore to a new name with "
              "--to DEST";
    else if (!rc && (!S_ISREG(di.mode) || !S_ISREG(si.mode)))
        why = "it exists and only a regular file can be overwritten by a "
              "regular file; restore to a new name with --to DEST";
    if (why)
        die(cmd, "%s: cannot restore to '%s': %s", vol->arg, ra->dest, why);
    view_close(&v);
}

static int restore_file(const char *cmd, struct volume *vol, int n,
                        char **args, const char *to)
{
    if (n != 2)
        die_usage(cmd, "give the volume, the snapshot and a PATH in it");
    struct restore_file_arg ra = { .name = args[0],
                                   .path = in_volume(vol, args[1]) };
    ra.dest = to ? in_volume(vol, to) : ra.path;
    check_restore_file(vol, cmd, &ra);
    int rc;
    if (vol->mounted) {
        char *words[] = { "snapshot-restore-file", args[0], (char *)ra.path,
                          (char *)ra.dest };
        unsigned long long a = 0, b = 0;
        rc = request_counts(vol, words, 4, &a, &b);
        ra.stats.objects = a;
        ra.stats.in_place = b != 0;
    } else {
        rc = volume_offline(vol, cmd, offline_restore_file, &ra, true);
    }
    if (rc)
        die(cmd, "%s: %s", vol->arg, change_error(rc));
    if (ra.stats.in_place)
        printf("snapfs: restored %s from snapshot %s over %s (same file)\n",
               ra.path, args[0], ra.dest);
    else
        printf("snapfs: restored %s from snapshot %s to %s (%llu object%s)\n",
               ra.path, args[0], ra.dest,
               (unsigned long long)ra.stats.objects,
               ra.stats.objects == 1 ? "" : "s");
    return 0;
}

int cmd_snapshot_restore(int argc, char **argv)
{
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "snapshot %s", argv[1]);
    const char *to = NULL;
    int n = 0;
    char *args[argc];
    bool file = !strcmp(argv[1], "restore-file");
    for (int i = 2; i < argc; i++) {
        if (file && !strcmp(argv[i], "--to") && i + 1 < argc)
            to = argv[++i];
        else if (file && !strncmp(argv[i], "--to=", 5))
            to = argv[i] + 5;
        else if (argv[i][0] == '-' && argv[i][1])
            die_usage(cmd, "unknown option '%s'", argv[i]);
        else
            args[n++] = argv[i];
    }
    if (n < 1)
        die_usage(cmd, "give the volume (a store or its mountpoint)");
    struct volume vol;
    volume_open(&vol, cmd, args[0]);
    int rc = file ? restore_file(cmd, &vol, n - 1, args + 1, to)
                  : restore_volume(cmd, &vol, n - 1, args + 1);
    free(vol.store);
    free(vol.mountpoint);
    return rc;
}

/* ---- clone ---- */

static volatile sig_atomic_t clone_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    clone_interrupted = 1;
}

void store_dir_remove(const char *dir)
{
    static const char *files[] = { "data.mdb", "lock.mdb", "lock" };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char p[PATH_MAX + 16];
        if (snprintf(p, sizeof(p), "%s/%s", dir, files[i]) < (int)sizeof(p))
            unlink(p);
    }
    rmdir(dir);
}

/* Copy the snapshot at EPOCH of SRC into the new, empty store DST. */
static int clone_records(struct sfs_store *src, uint64_t epoch,
                         struct sfs_store *dst, struct sfs_clone_cursor *cur)
{
    struct sfs_codec_ctx *cc = sfs_codec_ctx_new();
    MDB_txn *dtxn = NULL, *stxn;
    uint64_t committed = 0;
    int rc = cc ? sfs_txn_begin(dst, NULL, true, &dtxn) : -ENOMEM;
    while (!rc) {
        if (clone_interrupted) {
            rc = -EINTR;
            break;
        }
        /* A fresh read transaction per step: no reader pins old pages. */
        rc = sfs_txn_begin(src, NULL, false, &stxn);
        if (rc)
            break;
        rc = sfs_clone_step(src, stxn, epoch, dst, dtxn, cc, cur,
                            CLONE_COMMIT_BYTES - (cur->block_bytes - committed),
                            CLONE_STEP_RECORDS);
        mdb_txn_abort(stxn);
        if (rc == 1) {
            rc = sfs_state_reload(src);
            if (dst->state.next_ino < src->state.next_ino)
                dst->state.next_ino = src->state.next_ino;
            break;
        }
        if (!rc && cur->block_bytes - committed >= CLONE_COMMIT_BYTES) {
            /* Bounded memory: the new store's dirty pages go to disk. */
            rc = sfs_txn_commit(dst, dtxn);
            dtxn = NULL;
            committed = cur->block_bytes;
            if (!rc)
                rc = sfs_txn_begin(dst, NULL, true, &dtxn);
        }
    }
    if (!rc) {
        rc = sfs_txn_commit(dst, dtxn);
        if (!rc)
            rc = sfs_mdb_errno(mdb_env_sync(dst->env, 1));
    } else if (dtxn) {
        mdb_txn_abort(dtxn);
    }
    sfs_codec_ctx_free(cc);
    return rc;
}

/* Build the clone in PARTIAL; 0, or a negative errno (PARTIAL is left). */
static int build_clone(struct volume *vol, uint64_t epoch, const char *partial,
                       struct sfs_clone_cursor *cur)
{
    struct sfs_store *src, *dst;
    int rc = sfs_open(vol->store, SFS_OPEN_RDONLY, &src);
    if (rc)
        return rc;
    struct sfs_mkfs_opts o = { .volume_size = src->super.volume_size,
                               .block_size = src->super.block_size,
                               .codec = (int)src->super.codec,
                               .codec_level = src->super.codec_level };
    rc = sfs_mkfs(partial, &o);
    if (!rc)
        rc = sfs_open(partial, SFS_OPEN_EXCLUSIVE, &dst);
    if (!rc) {
        rc = clone_records(src, epoch, dst, cur);
        sfs_close(dst);
    }
    sfs_close(src);
    return rc;
}

/* Rename PARTIAL to NEWSTORE, never over something, and make it durable. */
int store_dir_publish(const char *partial, const char *newstore)
{
    if (renameat2(AT_FDCWD, partial, AT_FDCWD, newstore, RENAME_NOREPLACE))
        return -errno;
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", newstore);
    char *slash = strrchr(parent, '/');
    if (slash)
        *(slash == parent ? slash + 1 : slash) = 0;
    int fd = open(slash ? parent : ".", O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    return 0;
}

void store_dir_check_new(const char *cmd, const char *newstore)
{
    struct stat sb;
    if (!lstat(newstore, &sb))
        die(cmd, "%s: already exists; nothing was changed", newstore);
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", newstore);
    char *slash = strrchr(parent, '/');
    if (slash)
        *(slash == parent ? slash + 1 : slash) = 0;
    if (stat(slash ? parent : ".", &sb) || !S_ISDIR(sb.st_mode))
        die(cmd, "%s: its parent directory does not exist", newstore);
}

/* The hold's tag: clone:PID, and the absolute path of PARTIAL when the
 * tag has room (200 bytes), so that the next mount can remove it if
 * this process is killed (fs/leftovers.c). */
static void clone_tag(const char *partial, char *tag, size_t cap)
{
    char dir[PATH_MAX], real[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", partial);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : partial;
    if (slash)
        *(slash == dir ? slash + 1 : slash) = 0;
    int n = -1;
    if (realpath(slash ? dir : ".", real))
        n = snprintf(tag, cap, "clone:%d:%s%s%s", (int)getpid(), real,
                     strcmp(real, "/") ? "/" : "", base);
    if (n < 0 || n > 200)
        snprintf(tag, cap, "clone:%d", (int)getpid());
}

int cmd_clone(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1])
            die_usage("clone", "unknown option '%s'", argv[i]);
    if (argc != 4)
        die_usage("clone", "give the volume, a snapshot and the NEWSTORE "
                           "directory to create");
    const char *name = argv[2], *newstore = argv[3];
    struct volume vol;
    volume_open(&vol, "clone", argv[1]);
    store_dir_check_new("clone", newstore);
    struct view v;
    struct sfs_snap_rec s;
    view_open(&vol, "clone", &v);
    find_snapshot(&v, "clone", vol.arg, name, &s);
    view_close(&v);

    char tag[256], partial[PATH_MAX];
    if (snprintf(partial, sizeof(partial), "%s.partial-%d", newstore,
                 (int)getpid()) >= (int)sizeof(partial))
        die("clone", "%s: name too long", newstore);
    clone_tag(partial, tag, sizeof(tag));
    int rc = volume_hold(&vol, "clone", name, tag, true);
    if (rc)
        die("clone", "%s: holding snapshot '%s': %s", vol.arg, name,
            change_error(rc));
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    struct sfs_clone_cursor cur;
    memset(&cur, 0, sizeof(cur));
    rc = build_clone(&vol, s.epoch, partial, &cur);
    if (!rc)
        rc = store_dir_publish(partial, newstore);
    int hrc = volume_hold(&vol, "clone", name, tag, false);
    if (rc) {
        store_dir_remove(partial);
        die("clone", "%s: %s", newstore,
            rc == -EEXIST ? "was created meanwhile; nothing was changed"
            : rc == -EIO  ? "a block of the snapshot is damaged (see snapfs "
                            "fsck); nothing was created"
            : rc == -ENOSPC ? "no space for the clone; nothing was created"
            : rc == -EINTR ? "interrupted; nothing was created"
                           : strerror(-rc));
    }
    char size[32];
    format_bytes(cur.block_bytes, size, sizeof(size));
    printf("snapfs: cloned snapshot %s of %s into %s (%llu files, %s of "
           "blocks copied)\n", name, vol.arg, newstore,
           (unsigned long long)cur.inodes, size);
    if (hrc)
        fprintf(stderr, "snapfs clone: %s: could not release the hold '%s' "
                        "on '%s' (%s); release it with snapfs snapshot "
                        "release\n", vol.arg, tag, name, strerror(-hrc));
    free(vol.store);
    free(vol.mountpoint);
    return hrc ? 1 : 0;
}
