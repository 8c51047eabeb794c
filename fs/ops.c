/*
 * ops.c - the FUSE lowlevel operations of the live tree, one function per
 * operation, in the order of struct fuse_lowlevel_ops.
 *
 * Guarantees:
 *  - Node ids are inode numbers (the root is 1 = FUSE_ROOT_ID), assigned
 *    once and never reused, so NFS file handles stay valid across inode
 *    eviction and daemon restarts; "." is answered in any node and ".."
 *    in any directory (the kernel resolves handles so), with the object's
 *    generation (node_generation), and "." of an object that is gone is
 *    ESTALE.
 *  - Every change is one nested transaction in the current batch (see
 *    volume.c): it happens entirely or not at all.
 *  - An inode whose last link goes while the kernel or an open file still
 *    references it becomes an orphan, kept (and listed in the store, for
 *    crash recovery) until its last reference goes.
 *  - Permission checks are the kernel's (default_permissions and POSIX
 *    ACLs); this file keeps modes and ACLs in sync and applies ACL
 *    inheritance and the umask, which the kernel leaves to us.
 *  - A file's times are those its users see, to the nanosecond: with the
 *    writeback cache the kernel dates every change of a regular file's
 *    data and we store the times it sends, never stamping our own
 *    (kernel_times); without it we stamp them and the kernel shows ours.
 */
#define _GNU_SOURCE
#include "ops.h"

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "acl.h"
#include "autodelete.h"
#include "killpriv.h"
#include "metrics.h"
#include "readaround.h"
#include "wcache.h"
#include "wgroup.h"
#include "wrun.h"
#include "zlevel.h"

#define TIMEOUT 86400.0

/* A file handle records how the file was opened (FUSE's flush does not
 * say): the access mode plus one, so that 0 means "unknown". */
#define FH_OF_FLAGS(flags) ((uint64_t)((flags) & O_ACCMODE) + 1)
#define FH_READ_ONLY(fh) ((fh) == (uint64_t)O_RDONLY + 1)
#define FH_WRITES(fh) ((fh) == (uint64_t)O_WRONLY + 1 || \
                       (fh) == (uint64_t)O_RDWR + 1)

static struct vol *VOL(fuse_req_t req)
{
    return &((struct snapfs_fs *)fuse_req_userdata(req))->vol;
}

static struct snapdirs *SD(fuse_req_t req)
{
    return &((struct snapfs_fs *)fuse_req_userdata(req))->snapdirs;
}

/* Changes are refused under .snapshot: snapshots are read-only. */
#define REFUSE_UNLESS_LIVE(req, ino)                                        \
    do {                                                                    \
        if (!nodeid_is_live(ino)) {                                         \
            fuse_reply_err(req, EROFS);                                     \
            return;                                                         \
        }                                                                   \
    } while (0)

/* One codec context per FUSE thread, freed when the thread exits. */
static pthread_key_t codec_key;
static pthread_once_t codec_once = PTHREAD_ONCE_INIT;

static void codec_free(void *p) { sfs_codec_ctx_free(p); }
static void codec_key_init(void) { pthread_key_create(&codec_key, codec_free); }

struct sfs_codec_ctx *fs_codec(void)
{
    pthread_once(&codec_once, codec_key_init);
    struct sfs_codec_ctx *c = pthread_getspecific(codec_key);
    if (!c) {
        c = sfs_codec_ctx_new();
        pthread_setspecific(codec_key, c);
    }
    return c;
}

/* ---- attributes ---- */

static struct snapfs_fs *fs_of(struct vol *v)
{
    return (struct snapfs_fs *)((char *)v - offsetof(struct snapfs_fs, vol));
}

/* The root's link count includes a visible .snapshot, as ZFS counts .zfs. */
static void inode_to_stat(struct vol *v, const struct sfs_inode *i,
                          struct stat *s)
{
    inode_stat(i, i->ino, v->st->super.block_size, s);
    if (i->ino == SFS_ROOT_INO && snapdir_listed(&fs_of(v)->snapdirs))
        s->st_nlink++;
}

/* How long the kernel may keep attributes of MODE (0 near full: space.c). */
static double attr_timeout(struct vol *v, uint32_t mode)
{
    struct snapfs_fs *fs =
        (struct snapfs_fs *)((char *)v - offsetof(struct snapfs_fs, vol));
    return space_attr_timeout(&fs->space, mode, TIMEOUT);
}

static struct space *SPACE(fuse_req_t req)
{
    return &((struct snapfs_fs *)fuse_req_userdata(req))->space;
}

static void set_now(int64_t *sec, uint32_t *nsec)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *sec = ts.tv_sec;
    *nsec = (uint32_t)ts.tv_nsec;
}

static void touch_ctime(struct sfs_inode *i)
{
    set_now(&i->ctime_sec, &i->ctime_nsec);
}

static void touch_mtime_ctime(struct sfs_inode *i)
{
    set_now(&i->mtime_sec, &i->mtime_nsec);
    i->ctime_sec = i->mtime_sec;
    i->ctime_nsec = i->mtime_nsec;
}

/*
 * Whose clock dates a change of a regular file's data.  With the
 * writeback cache, the kernel's: it keeps its own mtime and ctime of a
 * regular file it has cached (it takes ours only when it first looks
 * the file up), stamps them itself on write(2), O_DIRECT writes, mmap
 * stores, O_TRUNC, fallocate and copy_file_range, and sends them with a
 * truncation or in a SETATTR when it writes the inode back (close,
 * fsync, sync, eviction).  The data of a stamped write can reach us
 * after those times, and a store in the clock tick of the previous one
 * is not stamped again, so a time of ours would be one the kernel never
 * shows, and would appear only after a remount or in a snapshot.
 * Without the writeback cache the kernel keeps no times (S_NOCMTIME)
 * and takes ours after each change: then we stamp.
 */
static bool kernel_times(struct vol *v, const struct sfs_inode *i)
{
    return (fs_of(v)->conn_want & FUSE_CAP_WRITEBACK_CACHE) &&
           S_ISREG(i->mode);
}

/* I's data changed: mtime and ctime now, unless the kernel keeps them. */
static void data_changed(struct vol *v, struct sfs_inode *i)
{
    if (!kernel_times(v, i))
        touch_mtime_ctime(i);
}

static void fill_entry(struct vol *v, const struct sfs_inode *i,
                       struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->ino = i->ino;
    e->generation = node_generation(i);
    e->attr_timeout = attr_timeout(v, i->mode);
    e->entry_timeout = TIMEOUT;
    inode_to_stat(v, i, &e->attr);
}

/* Reply with an entry and count the kernel's new reference. */
static void reply_entry(fuse_req_t req, const struct sfs_inode *i)
{
    struct vol *v = VOL(req);
    struct fuse_entry_param e;
    fill_entry(v, i, &e);
    node_add_lookup(v, i->ino, 1);
    if (fuse_reply_entry(req, &e))
        node_forget(v, i->ino, 1);
}

static int name_ok(const char *name)
{
    return strlen(name) > SFS_NAME_MAX ? -ENAMETOOLONG : 0;
}

/* ---- destroying unreferenced orphans ---- */

void fs_destroy_orphan(struct vol *v, uint64_t ino)
{
    MDB_txn *txn;
    struct sfs_inode i;
    int rc = vol_change_begin(v, &txn);
    if (rc)
        return;
    /* The node's orphan flag is memory; the record decides.  An unlink
     * that failed after marking the node leaves a linked inode: keep it. */
    rc = sfs_inode_get(v->st, txn, v->live_view, ino, &i);
    if (rc || i.nlink > 0) {
        vol_change_end(v, -ECANCELED, 0);
        return;
    }
    rc = sfs_inode_destroy_w(v->st, txn, ino);
    if (rc == -ENOENT)
        rc = 0;
    if (!rc)
        rc = sfs_orphan_del_w(v->st, txn, ino);
    vol_change_end(v, rc, 0);
}

/*
 * The inode lost its last link inside TXN.  Destroy it now unless the
 * kernel or an open file still references it; then it becomes an orphan.
 */
static int drop_unlinked(struct vol *v, MDB_txn *txn, uint64_t ino)
{
    if (node_mark_orphan_if_referenced(v, ino))
        return sfs_orphan_add_w(v->st, txn, ino);
    return sfs_inode_destroy_w(v->st, txn, ino);
}

/* ---- lookup and forget ---- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct vol *v = VOL(req);
    int rc = name_ok(name);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    uint64_t dir;
    if (nodeid_is_snapdir(parent, &dir) && !strcmp(name, "..")) {
        parent = dir; /* DIR/.snapshot/.. is DIR */
        name = ".";
    } else if (!nodeid_is_live(parent)) {
        snapdir_lookup(req, SD(req), v, parent, name);
        return;
    } else if (!strcmp(name, SNAPDIR_NAME)) {
        snapdir_lookup_from_live(req, SD(req), v, parent);
        return;
    }
    MDB_txn *txn = vol_read_begin(v);
    struct sfs_inode pi, ci;
    uint64_t ino = 0;
    rc = sfs_inode_get(v->st, txn, v->live_view, parent, &pi);
    if (rc == -ENOENT && !strcmp(name, "."))
        rc = -ESTALE; /* the handle of an object that is gone */
    if (!rc && !S_ISDIR(pi.mode) && strcmp(name, "."))
        rc = -ENOTDIR;
    if (!rc) {
        if (!strcmp(name, ".")) {
            ino = parent;
        } else if (!strcmp(name, "..")) {
            ino = pi.parent ? pi.parent : SFS_ROOT_INO;
        } else {
            struct sfs_dirent d;
            rc = sfs_dirent_lookup(v->st, txn, v->live_view, parent, name, &d);
            ino = d.ino;
        }
    }
    if (!rc)
        rc = sfs_inode_get(v->st, txn, v->live_view, ino, &ci);
    vol_read_end(v);
    if (rc == -ENOENT) {
        /* A negative entry, cached like a positive one. */
        struct fuse_entry_param e = { .ino = 0, .entry_timeout = TIMEOUT };
        fuse_reply_entry(req, &e);
        return;
    }
    if (rc)
        fuse_reply_err(req, -rc);
    else
        reply_entry(req, &ci);
}

static int flush_cached(struct vol *v, uint64_t ino);
static void growth_reset(struct node *n);

static void forget_one(struct vol *v, struct snapdirs *sd, uint64_t ino,
                       uint64_t nlookup)
{
    if (!nodeid_is_live(ino))
        snapdir_forget(sd, ino, nlookup);
    else if (node_forget(v, ino, nlookup))
        fs_destroy_orphan(v, ino);
    else if (node_lingers_for_cache(v, ino))
        flush_cached(v, ino); /* drops its blocks, then destroys it */
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    forget_one(VOL(req), SD(req), ino, nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++)
        forget_one(VOL(req), SD(req), forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

/* ---- attributes ---- */

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
    struct vol *v = VOL(req);
    if (!nodeid_is_live(ino)) {
        snapdir_getattr(req, SD(req), v, ino);
        return;
    }
    /* Near full, the kernel asks this before each write(2) through its
     * cache, naming the handle: the gate (space.c).  Autodelete may make
     * room first. */
    uint64_t need = 0;
    int rc = fi && FH_WRITES(fi->fh) ? space_gate(SPACE(req), &need) : 0;
    if (rc == -ENOSPC) {
        autodelete_run(v, need);
        rc = space_gate(SPACE(req), &need); /* freed, or moved meanwhile */
    }
    struct sfs_inode i;
    MDB_txn *txn = vol_read_begin(v);
    if (!rc)
        rc = sfs_inode_get(v->st, txn, v->live_view, ino, &i);
    vol_read_end(v);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct stat s;
    inode_to_stat(v, &i, &s);
    fuse_reply_attr(req, &s, attr_timeout(v, i.mode));
}

static void set_time(int64_t *sec, uint32_t *nsec, const struct timespec *ts)
{
    *sec = ts->tv_sec;
    *nsec = (uint32_t)ts->tv_nsec;
}

static void apply_time(const struct stat *attr, int to_set, int flag_set,
                       int flag_now, bool mtime, const struct timespec *now,
                       struct sfs_inode *i)
{
    int64_t *sec = mtime ? &i->mtime_sec : &i->atime_sec;
    uint32_t *nsec = mtime ? &i->mtime_nsec : &i->atime_nsec;
    if (to_set & flag_now)
        set_time(sec, nsec, now);
    else if (to_set & flag_set)
        set_time(sec, nsec, mtime ? &attr->st_mtim : &attr->st_atim);
}

#define SETATTR_CHANGES                                                     \
    (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID |           \
     FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |  \
     FUSE_SET_ATTR_MTIME_NOW)

/*
 * The times of a setattr.  The kernel's ctime when it sends one (with
 * the writeback cache it keeps a regular file's times, and sends them
 * with every change, a truncation included); else one reading of our
 * clock for UTIME_NOW, a truncation that changed the size, and ctime
 * when anything changed (truncate(2) to the same size changes nothing).
 */
static void setattr_times(struct vol *v, const struct stat *attr, int to_set,
                          bool resized, struct sfs_inode *i)
{
    struct timespec now;
    if (to_set & FUSE_SET_ATTR_CTIME)
        now = attr->st_ctim;
    else
        clock_gettime(CLOCK_REALTIME, &now);
    if (resized && !kernel_times(v, i))
        set_time(&i->mtime_sec, &i->mtime_nsec, &now);
    apply_time(attr, to_set, FUSE_SET_ATTR_ATIME, FUSE_SET_ATTR_ATIME_NOW,
               false, &now, i);
    apply_time(attr, to_set, FUSE_SET_ATTR_MTIME, FUSE_SET_ATTR_MTIME_NOW,
               true, &now, i);
    if (resized || (to_set & (SETATTR_CHANGES | FUSE_SET_ATTR_CTIME)))
        set_time(&i->ctime_sec, &i->ctime_nsec, &now);
}

/* Keep the access ACL in step with a new mode. */
static int chmod_acl(struct vol *v, MDB_txn *txn, uint64_t ino, uint32_t mode)
{
    uint8_t buf[SFS_XATTR_SIZE_MAX];
    int n = sfs_xattr_get(v->st, txn, v->live_view, ino, ACL_XATTR_ACCESS,
                          buf, sizeof(buf));
    if (n == -ENODATA)
        return 0;
    if (n < 0)
        return n;
    acl_chmod(buf, (size_t)n, mode);
    return sfs_xattr_set_w(v->st, txn, ino, ACL_XATTR_ACCESS, buf, (size_t)n, 0);
}

/*
 * Clear setuid, and setgid if group-executable, of INO, as the kernel asked
 * for a write or an O_TRUNC open by a caller without CAP_FSETID (killpriv.c;
 * the kernel leaves it to us).  A change only when a bit is set.
 */
static int clear_suidgid(struct vol *v, uint64_t ino)
{
    MDB_txn *txn;
    struct sfs_inode i;
    int rc = vol_change_begin(v, &txn);
    if (rc)
        return rc;
    rc = sfs_inode_get(v->st, txn, v->live_view, ino, &i);
    uint32_t cleared = rc ? 0 : killpriv_cleared_mode(i.mode);
    if (!rc && cleared != i.mode) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        i.mode = cleared;
        set_time(&i.ctime_sec, &i.ctime_nsec, &now);
        rc = sfs_inode_put_w(v->st, txn, &i);
    }
    return vol_change_end(v, rc, 0);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int to_set, struct fuse_file_info *fi)
{
    REFUSE_UNLESS_LIVE(req, ino);
    struct vol *v = VOL(req);
    bool kill_suidgid = killpriv_request_kills_suidgid();
    struct node *n = node_pin(v, ino);
    if (!n) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    bool sizing = to_set & FUSE_SET_ATTR_SIZE;
    if (sizing)
        readaround_change_begin(n);
    node_lock_quiet(n);
    MDB_txn *txn;
    struct sfs_inode i;
    /* Cached blocks first, so that truncation sees the whole content. */
    int rc = (to_set & FUSE_SET_ATTR_SIZE) ? wcache_flush(v, n) : 0;
    if (!rc)
        rc = vol_change_begin(v, &txn);
    if (rc)
        goto out_unlocked;
    rc = sfs_inode_get(v->st, txn, v->live_view, ino, &i);
    bool resized = false;
    if (!rc && (to_set & FUSE_SET_ATTR_SIZE)) {
        if (S_ISDIR(i.mode))
            rc = -EISDIR;
        else if (!S_ISREG(i.mode))
            rc = -EINVAL;
        else if ((uint64_t)attr->st_size > SFS_MAX_FILE_SIZE)
            rc = -EFBIG;
        else if ((uint64_t)attr->st_size != i.size) {
            rc = sfs_file_truncate_w(v->st, txn, fs_codec(), &i,
                                     (uint64_t)attr->st_size);
            resized = true;
        }
    }
    if (!rc && (to_set & FUSE_SET_ATTR_MODE)) {
        i.mode = (i.mode & S_IFMT) | (attr->st_mode & 07777);
        rc = chmod_acl(v, txn, ino, i.mode);
    }
    if (to_set & FUSE_SET_ATTR_UID)
        i.uid = attr->st_uid;
    if (to_set & FUSE_SET_ATTR_GID)
        i.gid = attr->st_gid;
    /* With killpriv v2 the kernel leaves these to us: a change of owner
     * or group of a non-directory, whoever asks, and a truncate by a
     * caller without CAP_FSETID, clear setuid and setgid. */
    if (!rc && killpriv_active() && !S_ISDIR(i.mode) &&
        ((to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) || kill_suidgid))
        i.mode = killpriv_cleared_mode(i.mode);
    setattr_times(v, attr, to_set, resized, &i);
    if (!rc)
        rc = sfs_inode_put_w(v->st, txn, &i);
    rc = vol_change_end(v, rc, 0);
    if (!rc && (to_set & FUSE_SET_ATTR_SIZE))
        growth_reset(n);
out_unlocked:
    pthread_mutex_unlock(&n->wlock);
    if (sizing)
        readaround_change_end(n);
    if (node_unpin(v, n))
        fs_destroy_orphan(v, ino);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct stat s;
    inode_to_stat(v, &i, &s);
    fuse_reply_attr(req, &s, attr_timeout(v, i.mode));
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    struct vol *v = VOL(req);
    char buf[SFS_SYMLINK_MAX + 1];
    size_t got = 0;
    struct sfs_inode i;
    struct noderef r;
    MDB_txn *txn = vol_read_begin(v);
    int rc = noderef_resolve(SD(req), v, txn, ino, &r);
    if (!rc && r.kind == NODE_SNAPDIR)
        rc = -EINVAL;
    if (!rc)
        rc = sfs_inode_get(v->st, txn, r.view, r.obj, &i);
    if (!rc && !S_ISLNK(i.mode))
        rc = -EINVAL;
    if (!rc)
        rc = sfs_file_read(v->st, txn, fs_codec(), r.view, r.obj, 0,
                           SFS_SYMLINK_MAX, buf, &got);
    vol_read_end(v);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    buf[got] = 0;
    fuse_reply_readlink(req, buf);
}

/* ---- creating nodes ---- */

/*
 * Mode, ACLs and group of a new node in PARENT: a default ACL on the
 * parent is inherited (no umask then), otherwise the umask applies; a
 * set-group-ID parent passes on its group, and to directories its bit.
 */
static int new_node_attrs(struct vol *v, MDB_txn *txn,
                          const struct sfs_inode *parent, fuse_req_t req,
                          struct sfs_inode *ni, uint8_t *acl, int *acl_len)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    ni->uid = ctx->uid;
    ni->gid = ctx->gid;
    if (parent->mode & S_ISGID) {
        ni->gid = parent->gid;
        if (S_ISDIR(ni->mode))
            ni->mode |= S_ISGID;
    }
    *acl_len = 0;
    if (S_ISLNK(ni->mode))
        return 0;
    int n = sfs_xattr_get(v->st, txn, v->live_view, parent->ino,
                          ACL_XATTR_DEFAULT, acl, SFS_XATTR_SIZE_MAX);
    if (n == -ENODATA) {
        ni->mode &= ~(uint32_t)(ctx->umask & 0777);
        return 0;
    }
    if (n < 0)
        return n;
    *acl_len = n;
    return 0;
}

static int store_inherited_acls(struct vol *v, MDB_txn *txn,
                                struct sfs_inode *ni, uint8_t *acl, int len)
{
    if (!len)
        return 0;
    int rc = 0;
    if (S_ISDIR(ni->mode))
        rc = sfs_xattr_set_w(v->st, txn, ni->ino, ACL_XATTR_DEFAULT, acl,
                             (size_t)len, 0);
    if (rc)
        return rc;
    int store = acl_create_masq(acl, (size_t)len, &ni->mode);
    if (store < 0)
        return store;
    if (store)
        rc = sfs_xattr_set_w(v->st, txn, ni->ino, ACL_XATTR_ACCESS, acl,
                             (size_t)len, 0);
    if (!rc)
        rc = sfs_inode_put_w(v->st, txn, ni);
    return rc;
}

static uint32_t dtype_of(uint32_t mode)
{
    return (mode & S_IFMT) >> 12;
}

/* Create NAME in PARENT: an inode of MODE, and for a symlink its target. */
static int make_node(fuse_req_t req, fuse_ino_t parent, const char *name,
                     uint32_t mode, dev_t rdev, const char *link,
                     struct sfs_inode *out)
{
    struct vol *v = VOL(req);
    int rc = name_ok(name);
    if (rc)
        return rc;
    if (!nodeid_is_live(parent))
        return -EROFS;
    if ((rc = snapdir_reserved(SD(req), name)))
        return -rc;
    uint8_t *acl = malloc(SFS_XATTR_SIZE_MAX);
    if (!acl)
        return -ENOMEM;
    MDB_txn *txn;
    rc = vol_change_begin(v, &txn);
    if (rc) {
        free(acl);
        return rc;
    }
    struct sfs_inode pi, ni;
    struct sfs_dirent d;
    int acl_len = 0;
    rc = sfs_inode_get(v->st, txn, v->live_view, parent, &pi);
    if (!rc && !S_ISDIR(pi.mode))
        rc = -ENOTDIR;
    if (!rc && pi.nlink == 0)
        rc = -ENOENT; /* the directory was removed */
    if (!rc) {
        rc = sfs_dirent_lookup(v->st, txn, v->live_view, parent, name, &d);
        rc = rc == 0 ? -EEXIST : rc == -ENOENT ? 0 : rc;
    }
    if (!rc) {
        memset(&ni, 0, sizeof(ni));
        ni.mode = mode;
        ni.rdev = rdev;
        ni.nlink = S_ISDIR(mode) ? 2 : 1;
        ni.parent = parent; /* files: a hint, the directory of a link */
        ni.qtree = pi.qtree; /* for a qtree's directory, its own number */
        set_now(&ni.atime_sec, &ni.atime_nsec);
        ni.mtime_sec = ni.ctime_sec = ni.btime_sec = ni.atime_sec;
        ni.mtime_nsec = ni.ctime_nsec = ni.btime_nsec = ni.atime_nsec;
        rc = new_node_attrs(v, txn, &pi, req, &ni, acl, &acl_len);
    }
    if (!rc)
        rc = sfs_inode_create_w(v->st, txn, &ni);
    if (!rc)
        rc = store_inherited_acls(v, txn, &ni, acl, acl_len);
    if (!rc && link) {
        rc = sfs_file_write_w(v->st, txn, fs_codec(), ni.ino, 0, link,
                              strlen(link));
        if (!rc)
            rc = sfs_inode_get(v->st, txn, v->live_view, ni.ino, &ni);
    }
    if (!rc)
        rc = sfs_dirent_add_w(v->st, txn, parent, name, ni.ino,
                              dtype_of(ni.mode));
    if (!rc) {
        if (S_ISDIR(mode))
            pi.nlink++;
        touch_mtime_ctime(&pi);
        rc = sfs_inode_put_w(v->st, txn, &pi);
    }
    rc = vol_change_end(v, rc, 0);
    free(acl);
    if (!rc)
        *out = ni;
    return rc;
}

static void reply_made(fuse_req_t req, int rc, const struct sfs_inode *i)
{
    if (rc)
        fuse_reply_err(req, -rc);
    else
        reply_entry(req, i);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode, dev_t rdev)
{
    struct sfs_inode i;
    reply_made(req, make_node(req, parent, name, mode, rdev, NULL, &i), &i);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode)
{
    struct sfs_inode i;
    reply_made(req, make_node(req, parent, name, S_IFDIR | (mode & 07777), 0,
                              NULL, &i), &i);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                       const char *name)
{
    struct sfs_inode i;
    int rc = strlen(link) > SFS_SYMLINK_MAX ? -ENAMETOOLONG : 0;
    if (!rc)
        rc = make_node(req, parent, name, S_IFLNK | 0777, 0, link, &i);
    reply_made(req, rc, &i);
}

/* ---- qtrees (store/qtree.c) ---- */

static bool is_qtree_root(const struct sfs_inode *i)
{
    return i->qtree && i->qtree == i->ino;
}

/*
 * May OBJ get a name in directory TO?  As on NetApp, nothing moves or is
 * linked between two qtrees or between a qtree and the rest of the volume
 * (EXDEV: mv copies instead), and a qtree's directory stays at the root.
 */
static int qtree_move_ok(const struct sfs_inode *obj,
                         const struct sfs_inode *to)
{
    if (is_qtree_root(obj))
        return to->ino == SFS_ROOT_INO ? 0 : -EXDEV;
    return obj->qtree == to->qtree ? 0 : -EXDEV;
}

/* ---- removing names ---- */

/* Drop one link of INO (already looked up as I) inside TXN. */
static int unlink_inode(struct vol *v, MDB_txn *txn, struct sfs_inode *i)
{
    i->nlink = S_ISDIR(i->mode) ? 0 : i->nlink - 1;
    touch_ctime(i);
    int rc = sfs_inode_put_w(v->st, txn, i);
    if (!rc && i->nlink == 0)
        rc = drop_unlinked(v, txn, i->ino);
    return rc;
}

static int remove_name(struct vol *v, struct snapdirs *sd, fuse_ino_t parent,
                       const char *name, bool dir)
{
    int rc = name_ok(name);
    if (rc)
        return rc;
    if (!nodeid_is_live(parent) || snapdir_reserved(sd, name) == EEXIST)
        return -EROFS;
    MDB_txn *txn;
    rc = vol_change_begin(v, &txn);
    if (rc)
        return rc;
    struct sfs_inode pi, ci;
    struct sfs_dirent d;
    rc = sfs_inode_get(v->st, txn, v->live_view, parent, &pi);
    if (!rc)
        rc = sfs_dirent_lookup(v->st, txn, v->live_view, parent, name, &d);
    if (!rc)
        rc = sfs_inode_get(v->st, txn, v->live_view, d.ino, &ci);
    if (!rc && dir && !S_ISDIR(ci.mode))
        rc = -ENOTDIR;
    if (!rc && !dir && S_ISDIR(ci.mode))
        rc = -EISDIR;
    if (!rc && is_qtree_root(&ci))
        rc = -EPERM; /* `snapfs qtree delete` removes a qtree */
    if (!rc && dir) {
        rc = sfs_dir_is_empty(v->st, txn, v->live_view, ci.ino);
        rc = rc == 1 ? 0 : rc == 0 ? -ENOTEMPTY : rc;
    }
    if (!rc)
        rc = sfs_dirent_remove_w(v->st, txn, parent, name);
    if (!rc)
        rc = unlink_inode(v, txn, &ci);
    if (!rc) {
        if (dir)
            pi.nlink--;
        touch_mtime_ctime(&pi);
        rc = sfs_inode_put_w(v->st, txn, &pi);
    }
    return vol_change_end(v, rc, 0);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, -remove_name(VOL(req), SD(req), parent, name, false));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, -remove_name(VOL(req), SD(req), parent, name, true));
}

/* ---- rename ---- */

/* Is ANCESTOR an ancestor of (or equal to) DIR? Walks parent pointers. */
static int is_ancestor(struct vol *v, MDB_txn *txn, uint64_t ancestor,
                       uint64_t dir)
{
    for (int depth = 0; depth < 100000; depth++) {
        if (dir == ancestor)
            return 1;
        if (dir == SFS_ROOT_INO)
            return 0;
        struct sfs_inode i;
        int rc = sfs_inode_get(v->st, txn, v->live_view, dir, &i);
        if (rc)
            return rc;
        dir = i.parent;
    }
    return -ELOOP;
}

struct rename_ctx {
    struct vol *v;
    MDB_txn *txn;
    struct sfs_inode sp_rec, dp_rec;
    struct sfs_inode *sp, *dp;      /* parents; one record when the same */
    struct sfs_inode src, dst;
    bool have_dst;
};

/* Move directory I from parent FROM to parent TO (".." bookkeeping). */
static void reparent(struct sfs_inode *i, struct sfs_inode *from,
                     struct sfs_inode *to)
{
    i->parent = to->ino; /* for files a hint (see struct sfs_inode) */
    if (!S_ISDIR(i->mode) || from == to)
        return;
    from->nlink--;
    to->nlink++;
}

static int put_parents(struct rename_ctx *r)
{
    touch_mtime_ctime(r->sp);
    int rc = sfs_inode_put_w(r->v->st, r->txn, r->sp);
    if (!rc && r->dp != r->sp) {
        touch_mtime_ctime(r->dp);
        rc = sfs_inode_put_w(r->v->st, r->txn, r->dp);
    }
    return rc;
}

static int rename_exchange(struct rename_ctx *r, const char *name,
                           const char *newname)
{
    struct vol *v = r->v;
    if (!r->have_dst)
        return -ENOENT;
    int rc = sfs_dirent_add_w(v->st, r->txn, r->sp->ino, name, r->dst.ino,
                              dtype_of(r->dst.mode));
    if (!rc)
        rc = sfs_dirent_add_w(v->st, r->txn, r->dp->ino, newname, r->src.ino,
                              dtype_of(r->src.mode));
    reparent(&r->src, r->sp, r->dp);
    reparent(&r->dst, r->dp, r->sp);
    touch_ctime(&r->src);
    touch_ctime(&r->dst);
    if (!rc)
        rc = sfs_inode_put_w(v->st, r->txn, &r->src);
    if (!rc)
        rc = sfs_inode_put_w(v->st, r->txn, &r->dst);
    return rc ? rc : put_parents(r);
}

static int rename_replace(struct rename_ctx *r, const char *name,
                          const char *newname)
{
    struct vol *v = r->v;
    int rc = 0;
    if (r->have_dst) {
        if (S_ISDIR(r->src.mode) && !S_ISDIR(r->dst.mode))
            return -ENOTDIR;
        if (!S_ISDIR(r->src.mode) && S_ISDIR(r->dst.mode))
            return -EISDIR;
        if (S_ISDIR(r->dst.mode)) {
            rc = sfs_dir_is_empty(v->st, r->txn, v->live_view, r->dst.ino);
            if (rc < 0)
                return rc;
            if (rc == 0)
                return -ENOTEMPTY;
            r->dp->nlink--; /* the replaced directory's ".." */
        }
        rc = unlink_inode(v, r->txn, &r->dst);
        if (rc)
            return rc;
    }
    rc = sfs_dirent_remove_w(v->st, r->txn, r->sp->ino, name);
    if (!rc)
        rc = sfs_dirent_add_w(v->st, r->txn, r->dp->ino, newname, r->src.ino,
                              dtype_of(r->src.mode));
    reparent(&r->src, r->sp, r->dp);
    touch_ctime(&r->src);
    if (!rc)
        rc = sfs_inode_put_w(v->st, r->txn, &r->src);
    return rc ? rc : put_parents(r);
}

static int do_rename(struct vol *v, fuse_ino_t parent, const char *name,
                     fuse_ino_t newparent, const char *newname,
                     unsigned int flags)
{
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
        return -EINVAL;
    if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
        return -EINVAL;
    int rc = name_ok(name);
    if (!rc)
        rc = name_ok(newname);
    if (rc)
        return rc;
    struct rename_ctx r = { .v = v };
    rc = vol_change_begin(v, &r.txn);
    if (rc)
        return rc;
    struct sfs_dirent sd, dd;
    r.sp = &r.sp_rec;
    r.dp = parent == newparent ? &r.sp_rec : &r.dp_rec;
    rc = sfs_inode_get(v->st, r.txn, SFS_VIEW_LIVE, parent, r.sp);
    if (!rc)
        rc = sfs_inode_get(v->st, r.txn, SFS_VIEW_LIVE, newparent, r.dp);
    if (!rc && (!S_ISDIR(r.sp->mode) || !S_ISDIR(r.dp->mode)))
        rc = -ENOTDIR;
    if (!rc)
        rc = sfs_dirent_lookup(v->st, r.txn, SFS_VIEW_LIVE, parent, name, &sd);
    if (!rc)
        rc = sfs_inode_get(v->st, r.txn, SFS_VIEW_LIVE, sd.ino, &r.src);
    if (!rc) {
        rc = sfs_dirent_lookup(v->st, r.txn, SFS_VIEW_LIVE, newparent, newname,
                               &dd);
        r.have_dst = rc == 0;
        rc = rc == -ENOENT ? 0 : rc;
    }
    if (!rc && r.have_dst)
        rc = sfs_inode_get(v->st, r.txn, SFS_VIEW_LIVE, dd.ino, &r.dst);
    if (!rc && r.have_dst && (flags & RENAME_NOREPLACE))
        rc = -EEXIST;
    /* A directory may not move below itself. */
    if (!rc && S_ISDIR(r.src.mode) && parent != newparent) {
        rc = is_ancestor(v, r.txn, r.src.ino, newparent);
        rc = rc == 1 ? -EINVAL : rc;
    }
    if (!rc && (flags & RENAME_EXCHANGE) && r.have_dst &&
        S_ISDIR(r.dst.mode) && parent != newparent) {
        rc = is_ancestor(v, r.txn, r.dst.ino, parent);
        rc = rc == 1 ? -EINVAL : rc;
    }
    if (!rc)
        rc = qtree_move_ok(&r.src, r.dp);
    if (!rc && r.have_dst && (flags & RENAME_EXCHANGE))
        rc = qtree_move_ok(&r.dst, r.sp);
    else if (!rc && r.have_dst && r.dst.ino != r.src.ino &&
             is_qtree_root(&r.dst))
        rc = -EPERM; /* no rename replaces a qtree */
    if (!rc && r.have_dst && r.dst.ino == r.src.ino) {
        /* Two links to one inode: POSIX says do nothing. */
        return vol_change_end(v, 0, 0);
    }
    if (!rc)
        rc = (flags & RENAME_EXCHANGE) ? rename_exchange(&r, name, newname)
                                       : rename_replace(&r, name, newname);
    return vol_change_end(v, rc, 0);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                      fuse_ino_t newparent, const char *newname,
                      unsigned int flags)
{
    /* Nothing moves into, out of or inside a snapshot. */
    int rc = 0;
    if (!nodeid_is_live(parent) && !nodeid_is_live(newparent))
        rc = EROFS;
    else if (!nodeid_is_live(parent) || !nodeid_is_live(newparent))
        rc = EXDEV;
    else if (snapdir_reserved(SD(req), name) == EEXIST)
        rc = EROFS;
    else
        rc = snapdir_reserved(SD(req), newname);
    if (rc) {
        fuse_reply_err(req, rc);
        return;
    }
    fuse_reply_err(req, -do_rename(VOL(req), parent, name, newparent, newname,
                                   flags));
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                    const char *newname)
{
    struct vol *v = VOL(req);
    REFUSE_UNLESS_LIVE(req, newparent);
    if (!nodeid_is_live(ino)) {
        fuse_reply_err(req, EXDEV); /* a snapshot's file into the live tree */
        return;
    }
    int rc = name_ok(newname);
    if (!rc && (rc = snapdir_reserved(SD(req), newname)))
        rc = -rc;
    struct sfs_inode i, pi;
    struct sfs_dirent d;
    MDB_txn *txn;
    if (!rc)
        rc = vol_change_begin(v, &txn);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    rc = sfs_inode_get(v->st, txn, v->live_view, ino, &i);
    if (!rc && S_ISDIR(i.mode))
        rc = -EPERM;
    if (!rc && i.nlink == 0)
        rc = -ENOENT;
    if (!rc)
        rc = sfs_inode_get(v->st, txn, v->live_view, newparent, &pi);
    if (!rc)
        rc = qtree_move_ok(&i, &pi);
    if (!rc) {
        rc = sfs_dirent_lookup(v->st, txn, v->live_view, newparent, newname,
                               &d);
        rc = rc == 0 ? -EEXIST : rc == -ENOENT ? 0 : rc;
    }
    if (!rc)
        rc = sfs_dirent_add_w(v->st, txn, newparent, newname, ino,
                              dtype_of(i.mode));
    if (!rc) {
        i.nlink++;
        i.parent = newparent;
        touch_ctime(&i);
        rc = sfs_inode_put_w(v->st, txn, &i);
    }
    if (!rc) {
        touch_mtime_ctime(&pi);
        rc = sfs_inode_put_w(v->st, txn, &pi);
    }
    rc = vol_change_end(v, rc, 0);
    reply_made(req, rc, &i);
}

/* The xattr the kernel asks for before every write(2) (see
 * node_nocaps_known). */
#define XATTR_CAPS "security.capability"

/* ---- files ---- */

static int truncate_to_zero(struct vol *v, uint64_t ino)
{
    struct node *n = node_pin(v, ino);
    if (!n)
        return -ENOMEM;
    readaround_change_begin(n);
    node_lock_quiet(n);
    MDB_txn *txn;
    struct sfs_inode i;
    int rc = vol_change_begin(v, &txn);
    if (!rc) {
        rc = sfs_inode_get(v->st, txn, v->live_view, ino, &i);
        if (!rc && i.size) {
            rc = sfs_file_truncate_w(v->st, txn, fs_codec(), &i, 0);
            data_changed(v, &i);
            if (!rc)
                rc = sfs_inode_put_w(v->st, txn, &i);
        }
        rc = vol_change_end(v, rc, 0);
    }
    /* Cached blocks go only once the truncation is in the batch. */
    if (!rc) {
        wcache_drop(v, n, 0, UINT64_MAX);
        growth_reset(n);
    }
    pthread_mutex_unlock(&n->wlock);
    readaround_change_end(n);
    if (node_unpin(v, n))
        fs_destroy_orphan(v, ino);
    return rc;
}

/* A handle FH of INO is opened (DELTA 1) or released (-1): one that may
 * write stops read-around for the file while it is open (readaround.c).
 * Returns -ENOMEM if an open could not be counted. */
static int count_writer(struct vol *v, fuse_ino_t ino, uint64_t fh, int delta)
{
    if (!FH_WRITES(fh))
        return 0;
    struct node *n = node_pin(v, ino);
    if (!n)
        return delta > 0 ? -ENOMEM : 0; /* released: read-around stays off */
    readaround_writer(n, delta);
    if (node_unpin(v, n))
        fs_destroy_orphan(v, ino);
    return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct vol *v = VOL(req);
    if (!nodeid_is_live(ino)) {
        /* A snapshot's file: read-only, and its pages never go stale. */
        if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
            fuse_reply_err(req, EROFS);
            return;
        }
        fi->keep_cache = 1;
        fi->fh = FH_OF_FLAGS(fi->flags);
        fuse_reply_open(req, fi);
        return;
    }
    if (fi->flags & O_TRUNC) {
        bool kill = killpriv_request_kills_suidgid();
        vol_admit(v); /* a change: it waits while the volume is frozen */
        int rc = truncate_to_zero(v, ino);
        if (!rc && kill) {
            rc = clear_suidgid(v, ino);
            /* The open's reply carries no attributes: the kernel keeps
             * the old mode cached unless told to forget it. */
            if (!rc)
                fuse_lowlevel_notify_inval_inode(SPACE(req)->se, ino, -1, 0);
        }
        vol_leave(v);
        if (rc) {
            fuse_reply_err(req, -rc);
            return;
        }
    }
    fi->keep_cache = 1;
    fi->fh = FH_OF_FLAGS(fi->flags);
    fi->direct_io = space_direct_open(SPACE(req), fi->flags);
    node_open(v, ino, 1);
    if (count_writer(v, ino, fi->fh, 1)) {
        if (node_open(v, ino, -1))
            fs_destroy_orphan(v, ino);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (fuse_reply_open(req, fi)) {
        count_writer(v, ino, fi->fh, -1);
        node_open(v, ino, -1);
    }
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, struct fuse_file_info *fi)
{
    struct vol *v = VOL(req);
    struct sfs_inode i;
    int rc = make_node(req, parent, name, S_IFREG | (mode & 07777), 0, NULL,
                       &i);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct fuse_entry_param e;
    fill_entry(v, &i, &e);
    fi->keep_cache = 1;
    fi->fh = FH_OF_FLAGS(fi->flags);
    fi->direct_io = space_direct_open(SPACE(req), fi->flags);
    node_add_lookup(v, i.ino, 1);
    node_open(v, i.ino, 1);
    if (count_writer(v, i.ino, fi->fh, 1)) {
        node_open(v, i.ino, -1);
        node_forget(v, i.ino, 1);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (fuse_reply_create(req, &e, fi)) {
        count_writer(v, i.ino, fi->fh, -1);
        node_open(v, i.ino, -1);
        node_forget(v, i.ino, 1);
    }
}

/* Answer a read of SPAN from BUF (which holds [start, end)), or RC. */
static void reply_read(fuse_req_t req, int rc, const struct readaround_span *span,
                       const char *buf)
{
    if (rc) {
        if (rc == -EIO)
            metrics_add(MC_DAMAGED_READS, 1);
        fuse_reply_err(req, -rc);
        return;
    }
    metrics_add(MC_READ_BYTES, span->len);
    fuse_reply_buf(req, buf + (span->off - span->start), span->len);
}

/* Decode SPAN of INO at VIEW (dated) into *BUF, planned on the inode
 * TXN (vol_read_begin's) finds; the volume's read lock is let go here,
 * once the blocks are collected. */
static int decode_span(struct vol *v, MDB_txn *txn, uint64_t view,
                       uint64_t ino, bool direct, uint64_t off, size_t size,
                       struct readaround_span *span, char **buf)
{
    struct sfs_rplan plan;
    struct sfs_inode i;
    int rc = sfs_inode_get(v->st, txn, view, ino, &i);
    if (!rc) {
        readaround_plan(direct, v->st->super.block_size, i.size, off, size,
                        span);
        rc = sfs_rplan_collect(v->st, txn, view, ino, i.size, span->start,
                               (size_t)(span->end - span->start), &plan);
    }
    vol_read_end_data(v, rc ? 0 : plan.len);
    if (rc)
        return rc;
    *buf = malloc(plan.len ? plan.len : 1);
    rc = *buf ? sfs_rplan_finish(&plan, fs_codec(), *buf) : -ENOMEM;
    sfs_rplan_release(&plan);
    return rc;
}

static bool read_is_direct(const struct fuse_file_info *fi)
{
    return fi->direct_io || (fi->flags & O_DIRECT);
}

/* A read of a snapshot's file: no cache to overlay, no node to pin. */
static void read_view(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                      struct fuse_file_info *fi)
{
    struct vol *v = VOL(req);
    struct readaround_span span;
    struct noderef r;
    char *buf = NULL;
    readaround_date(v, NULL, &span);
    MDB_txn *txn = vol_read_begin(v);
    int rc = noderef_resolve(SD(req), v, txn, ino, &r);
    if (!rc && r.kind == NODE_SNAPDIR)
        rc = -EISDIR;
    if (rc)
        vol_read_end(v);
    else
        rc = decode_span(v, txn, r.view, r.obj, read_is_direct(fi),
                         (uint64_t)off, size, &span, &buf);
    struct fuse_session *se = SPACE(req)->se; /* req goes with the reply */
    reply_read(req, rc == -ENOENT ? -ESTALE : rc, &span, buf);
    if (!rc)
        readaround_push(v, NULL, se, ino, &span, buf);
    free(buf);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct vol *v = VOL(req);
    if (!nodeid_is_live(ino)) {
        read_view(req, ino, size, off, fi);
        return;
    }
    /* A file with cached blocks is read under its write lock, and the
     * cached bytes are laid over what the store holds. */
    struct node *n = node_pin(v, ino);
    if (!n) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    struct readaround_span span;
    char *buf = NULL;
    readaround_date(v, n, &span);
    bool cached = __atomic_load_n(&n->ncached, __ATOMIC_ACQUIRE) != 0;
    if (cached) {
        node_lock_request(n);
        metrics_add(MC_WCACHE_OVERLAYS, 1);
        span.unsettled = true; /* nothing around a cached file */
    }
    MDB_txn *txn = vol_read_begin(v); /* live_view is read under it */
    int rc = decode_span(v, txn, v->live_view, ino, read_is_direct(fi),
                         (uint64_t)off, size, &span, &buf);
    if (!rc && cached)
        wcache_overlay(v, n, span.start, (size_t)(span.end - span.start), buf);
    if (cached)
        pthread_mutex_unlock(&n->wlock);
    struct fuse_session *se = SPACE(req)->se; /* req goes with the reply */
    reply_read(req, rc, &span, buf);
    if (!rc)
        readaround_push(v, n, se, ino, &span, buf);
    free(buf);
    if (node_unpin(v, n))
        fs_destroy_orphan(v, ino);
}

/* What a write stored, for the statistics (metrics.c). */
static void count_stored(const struct sfs_wplan *plan)
{
    struct sfs_wplan_tally t;
    if (!metrics_enabled)
        return;
    sfs_wplan_tally(plan, &t);
    metrics_add(MC_NEW_BLOCKS, t.new_blocks);
    metrics_add(MC_NEW_LOGICAL, t.new_logical);
    metrics_add(MC_NEW_STORED, t.new_stored);
    metrics_add(MC_NEW_COMPRESSED, t.new_compressed);
    metrics_add(MC_DEDUP_BLOCKS, t.dedup_blocks);
    metrics_add(MC_DEDUP_BYTES, t.dedup_bytes);
    metrics_add(MC_ZERO_BYTES, t.zero_bytes);
    metrics_add(MC_INLINE_BYTES, t.inline_bytes);
}

/* Compress PLAN's blocks not tried yet at the level zlevel.c chooses,
 * and tell it how fast that went. */
static int compress_plan(struct vol *v, struct sfs_wplan *plan)
{
    int configured = v->st->super.codec_level;
    uint64_t bytes = 0;
    for (size_t k = 0; k < plan->nblocks; k++)
        if (!plan->blocks[k].applied && !plan->blocks[k].pb.compressed_tried)
            bytes += plan->blocks[k].len;
    if (!bytes || v->st->super.codec == SFS_CODEC_NONE)
        return sfs_wplan_compress(v->st, fs_codec(), plan);
    struct sfs_codec_ctx *cc = fs_codec();
    sfs_codec_set_level(cc, zlevel_now(configured));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = sfs_wplan_compress(v->st, cc, plan);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    zlevel_measured(configured, bytes,
                    (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000 +
                               (t1.tv_nsec - t0.tv_nsec)));
    return rc;
}

/* A write plan's change: what apply_plan hands to wgroup_change. */
struct plan_change {
    uint64_t ino;
    struct sfs_wplan *plan;
    bool client_change;
};

static int apply_plan_in(struct vol *v, MDB_txn *txn, void *arg)
{
    struct plan_change *c = arg;
    struct sfs_wplan *plan = c->plan;
    plan->units_delta = 0;
    int rc = sfs_wplan_apply(v->st, txn, c->ino, plan);
    struct sfs_inode i;
    if (!rc)
        rc = sfs_inode_get(v->st, txn, v->live_view, c->ino, &i);
    if (!rc) {
        struct sfs_inode before = i;
        if (plan->off + plan->len > i.size)
            i.size = plan->off + plan->len;
        i.blocks += (uint64_t)plan->units_delta;
        if (c->client_change)
            data_changed(v, &i);
        /* An overwrite the kernel dates itself leaves the record as it
         * was: not written again (one record put less per small write). */
        if (memcmp(&before, &i, sizeof(i)))
            rc = sfs_inode_put_w(v->st, txn, &i);
    }
    return rc;
}

/*
 * Apply a filled write plan to INO as one change of the batch, together
 * with the changes of concurrent writes (wgroup.c): blocks not stored yet
 * are compressed outside the lock first (sfs_wplan_apply answers -EAGAIN
 * for them).  CLIENT_CHANGE: a client's change, which dates the file
 * (data_changed); false for cached blocks stored later, whose write dated
 * it already.  SIZE: the bytes it counts toward the
 * next commit.
 */
static int apply_plan(struct vol *v, uint64_t ino, struct sfs_wplan *plan,
                      size_t size, bool client_change)
{
    struct plan_change c = { ino, plan, client_change };
    int rc = 0;
    for (int attempt = 0; !rc; attempt++) {
        rc = compress_plan(v, plan);
        if (rc)
            break;
        /* applied together with concurrent writes (wgroup.c) */
        rc = wgroup_change(v, apply_plan_in, &c, size);
        if (rc != -EAGAIN)
            break;
        sfs_wplan_reset_applied(plan);
        rc = attempt < 8 ? 0 : -EIO;
    }
    if (!rc)
        count_stored(plan);
    return rc;
}

/* Mark the blocks of PLAN already stored, when the volume lock is free
 * now (a lookup each): they need no compressing.  While the committer
 * commits, every block is compressed instead of waiting for it. */
static int probe_if_free(struct vol *v, struct sfs_wplan *plan)
{
    MDB_txn *txn = vol_read_trybegin(v);
    if (!txn)
        return 0;
    int rc = sfs_wplan_probe(v->st, txn, plan);
    vol_read_end(v);
    return rc;
}

/* The plan of writing SIZE bytes of BUF at OFF into INO, with the old
 * bytes it keeps read, hashed and probed: everything but the change.
 * RESERVED: the bytes were reserved (wcache.c). */
static int prepare_write(struct vol *v, uint64_t ino, const char *buf,
                         size_t size, uint64_t off, bool reserved,
                         struct sfs_wplan *plan)
{
    struct sfs_inode i;
    memset(plan, 0, sizeof(*plan));
    MDB_txn *txn = vol_read_begin(v);
    int rc = sfs_inode_get(v->st, txn, v->live_view, ino, &i);
    if (!rc)
        rc = sfs_wplan_init(v->st, i.size, off, size, plan);
    plan->reserved = reserved;
    if (!rc)
        rc = sfs_wplan_fetch_old(v->st, txn, ino, i.size, plan);
    vol_read_end(v);
    if (!rc)
        rc = sfs_wplan_fill(plan, fs_codec(), buf);
    if (!rc) {
        txn = vol_read_begin(v);
        rc = sfs_wplan_probe(v->st, txn, plan);
        vol_read_end(v);
    }
    return rc;
}

/*
 * A write: old bytes of partly covered blocks are fetched under the lock,
 * merged and hashed outside it, new blocks are found under the lock and
 * compressed outside it, and the result is applied in one nested
 * transaction.  The node's write lock keeps writes to one file in order.
 */
static int write_through(struct vol *v, uint64_t ino, const char *buf,
                         size_t size, uint64_t off, bool client_change,
                         uint64_t reserved)
{
    struct sfs_wplan plan;
    int rc = prepare_write(v, ino, buf, size, off, reserved != 0, &plan);
    if (!rc)
        rc = apply_plan(v, ino, &plan, size, client_change);
    sfs_wplan_release(&plan);
    if (!rc && reserved)
        sfs_space_unreserve(v->st, reserved); /* spent: the data is in */
    return rc;
}

int fs_prepare_cached(struct vol *v, uint64_t ino, const char *buf,
                      size_t size, uint64_t off, struct sfs_wplan *plan)
{
    int rc = prepare_write(v, ino, buf, size, off, true, plan);
    if (!rc)
        rc = compress_plan(v, plan);
    if (rc)
        sfs_wplan_release(plan);
    return rc;
}

void fs_apply_cached(struct vol *v, uint64_t ino, struct sfs_wplan **plans,
                     const uint64_t *reserved, int *rcs, size_t count)
{
    struct plan_change *changes = calloc(count, sizeof(*changes));
    void **args = calloc(count, sizeof(*args));
    uint64_t *bytes = calloc(count, sizeof(*bytes));
    int rc = changes && args && bytes ? 0 : -ENOMEM;
    for (size_t k = 0; !rc && k < count; k++) {
        changes[k] = (struct plan_change){ ino, plans[k], false };
        args[k] = &changes[k];
        bytes[k] = plans[k]->len;
    }
    /* together, in a group; alone, as any write, where that failed (a
     * block that needed compressing after all: -EAGAIN) */
    if (!rc)
        rc = wgroup_change_all(v, apply_plan_in, args, bytes, rcs, count);
    for (size_t k = 0; k < count; k++) {
        if (rc || rcs[k] == -EAGAIN) {
            sfs_wplan_reset_applied(plans[k]);
            rcs[k] = apply_plan(v, ino, plans[k], plans[k]->len, false);
        } else if (!rcs[k]) {
            count_stored(plans[k]);
        }
        if (!rcs[k] && reserved[k])
            sfs_space_unreserve(v->st, reserved[k]); /* spent */
    }
    free(changes);
    free(args);
    free(bytes);
}

/*
 * Incompressible data (media, archives, encrypted files) is written in
 * long streaks.  Each new block is first tested on a sample (blocks.c),
 * which costs a small compression per block; once RAW_STREAK blocks of a
 * file in a row did not compress, a run's first block alone is sampled:
 * if it looks incompressible the run is stored raw, else every block is
 * tried as usual (and the streak ends).  Where a file turns from random
 * to compressible data, at most the part of one run after the turn (less
 * than a 1 MiB request) is stored raw, however many runs are in flight.
 */
#define RAW_STREAK 64

static void skip_compression_in_streak(struct vol *v, struct node *n,
                                       struct sfs_wplan *plan)
{
    if (__atomic_load_n(&n->raw_streak, __ATOMIC_RELAXED) < RAW_STREAK ||
        plan->nblocks < 2 || v->st->super.codec == SFS_CODEC_NONE)
        return;
    const struct sfs_wplan_block *first = &plan->blocks[0];
    if (!sfs_looks_incompressible(fs_codec(), first->buf, first->len,
                                  v->st->super.codec_level))
        return;
    for (size_t k = 0; k < plan->nblocks; k++)
        plan->blocks[k].pb.compressed_tried = true;
}

/* After PLAN was applied: extend N's streak of raw blocks, or end it. */
static void note_streak(struct node *n, const struct sfs_wplan *plan)
{
    uint32_t raw = 0;
    for (size_t k = 0; k < plan->nblocks; k++) {
        const struct sfs_wplan_block *b = &plan->blocks[k];
        if (b->stored_as != SFS_STORED_NEW)
            continue;
        if (b->pb.codec != SFS_CODEC_NONE) {
            __atomic_store_n(&n->raw_streak, 0, __ATOMIC_RELAXED);
            return;
        }
        raw++;
    }
    __atomic_add_fetch(&n->raw_streak, raw, __ATOMIC_RELAXED);
}

/*
 * A run of whole blocks (wrun.c: stored outside the file's write lock):
 * no old content to fetch, so nothing needs the volume lock before the
 * blocks are hashed and compressed, which runs on every core at once,
 * even while the committer commits.
 */
static int write_whole_blocks(struct vol *v, struct node *n, int slot,
                              const char *buf, size_t size, uint64_t off,
                              bool overwrite)
{
    struct sfs_wplan plan;
    /* Hashed in the request's buffer (no copy); the size is taken in the
     * transaction. */
    int rc = sfs_wplan_init_whole(v->st, off, buf, size, &plan);
    if (!rc)
        rc = probe_if_free(v, &plan);
    if (!rc) {
        skip_compression_in_streak(v, n, &plan);
        rc = compress_plan(v, &plan);
    }
    if (!rc) {
        /* Applied in the order the runs began, where the order matters:
         * a run within the file's size (the size only grows while runs
         * are out) changes neither the size nor bytes another run out
         * writes, so it is applied as soon as it is ready. */
        if (!overwrite)
            wrun_wait_turn(n, slot);
        rc = apply_plan(v, n->ino, &plan, size, true);
    }
    if (!rc)
        note_streak(n, &plan);
    sfs_wplan_release(&plan);
    return rc;
}

int fs_write_through(struct vol *v, uint64_t ino, const char *buf,
                     size_t size, uint64_t off, bool client_change)
{
    return write_through(v, ino, buf, size, off, client_change, 0);
}

int fs_store_cached(struct vol *v, uint64_t ino, const char *buf, size_t size,
                    uint64_t off, uint64_t reserved)
{
    return write_through(v, ino, buf, size, off, false, reserved);
}

/* After writes into cached blocks: the file's size and times now. */
static int note_cached_write(struct vol *v, uint64_t ino, uint64_t end)
{
    MDB_txn *txn;
    struct sfs_inode i;
    /* An overwrite the kernel dates itself changes no record: no change
     * (nor a wait for the committer) on the write path. */
    txn = vol_read_begin(v);
    int rc = sfs_inode_get(v->st, txn, v->live_view, ino, &i);
    vol_read_end(v);
    if (!rc && end <= i.size && kernel_times(v, &i))
        return 0;
    rc = vol_change_begin(v, &txn);
    if (rc)
        return rc;
    rc = sfs_inode_get(v->st, txn, v->live_view, ino, &i);
    if (!rc && (end > i.size || !kernel_times(v, &i))) {
        if (end > i.size)
            i.size = end;
        data_changed(v, &i);
        rc = sfs_inode_put_w(v->st, txn, &i);
    }
    return vol_change_end(v, rc, 0);
}

/*
 * THEORY: A FILE CUT SHORT BY ENOSPC
 *
 * With the writeback cache the kernel sends a file's dirty pages in
 * requests of its own making, several at once, and our threads apply
 * them in any order: a file written from start to end grows out of
 * order, with holes where requests are still on their way.  If one of
 * those fails for space (ENOSPC, or EDQUOT in a qtree) for good (when
 * snapshot autodelete could not make room), its range would stay a hole
 * inside the file: zeros a reader takes for data, under a size that
 * claims bytes never stored.  So such a failure cuts the file back to
 * where it happened,
 * dropping what later requests had stored beyond (the writer learns of
 * the error at fsync or close, as of the failed request itself; the
 * kernel reports it there), and from then on a cache write may not
 * start beyond the file's end (wb_cut): the kernel still holds the
 * later pages and sends them all the same.  The file is then exactly
 * the prefix of what was written that the store holds.
 *
 * Only growth is cut: a session of cache writes begins with the first
 * after a flush, fsync or truncation reached us (wb_session), at the
 * file's size then (wb_base), and a failure below that offset (an
 * overwrite of existing data) leaves the old bytes, which are what is
 * stored.  wb_cut lasts until a truncation (the kernel then knows the
 * size again) or until the node goes (the kernel forgot the inode, and
 * the size it had cached).  Direct and uncached writes are synchronous:
 * their write() fails, and nothing is cut.
 *
 * The kernel keeps the size it cached for the inode (with the writeback
 * cache it trusts its own): until it forgets the inode (a remount,
 * memory pressure) stat shows the size the writer reached, and reads of
 * the cut range show what the kernel still caches or zeros.
 */

/* Before a cache write at OFF into a file of size SIZE. */
static int growth_begin(struct node *n, uint64_t off, uint64_t size)
{
    if (!n->wb_session) {
        n->wb_session = true;
        n->wb_base = size;
    }
    return n->wb_cut && off > size ? -ENOSPC : 0;
}

/* Cut N's file back to OFF; under N's write lock. */
static void cut_back(struct vol *v, struct node *n, uint64_t off)
{
    MDB_txn *txn;
    struct sfs_inode i;
    int rc = wcache_flush(v, n); /* the store holds every byte first */
    if (!rc)
        rc = vol_change_begin(v, &txn);
    if (rc)
        return;
    rc = sfs_inode_get(v->st, txn, v->live_view, n->ino, &i);
    if (!rc && i.size > off) {
        rc = sfs_file_truncate_w(v->st, txn, fs_codec(), &i, off);
        if (!rc)
            rc = sfs_inode_put_w(v->st, txn, &i);
    }
    vol_change_end(v, rc, 0);
}

/* A cache write at OFF failed for space, for good (autodelete could not
 * help): cut the file back to OFF if that was growth. */
static void growth_failed(struct vol *v, struct node *n, uint64_t off)
{
    node_lock_quiet(n);
    if (off >= n->wb_base) {
        n->wb_cut = true;
        cut_back(v, n, off);
    }
    pthread_mutex_unlock(&n->wlock);
}

/* The file's size was set (truncation): the kernel knows it again. */
static void growth_reset(struct node *n)
{
    n->wb_session = false;
    n->wb_cut = false;
}

/*
 * Blocks [POS, RUN_END) of a write, from the start of a block: whole
 * blocks, or a tail up to the end of the file with nothing old to keep;
 * SIZE: the file's size when the write began.
 * Whole blocks are stored outside N's write lock (wrun.c), the lock
 * dropped meanwhile; a tail under it.  Under N's write lock.
 */
static int write_run(struct vol *v, struct node *n, const char *buf,
                     uint64_t pos, uint64_t run_end, uint64_t size)
{
    uint32_t bs = v->st->super.block_size;
    uint64_t first = pos / bs, last = (run_end + bs - 1) / bs;
    bool waited = false;
    int rc, slot = run_end % bs ? -1 : wrun_begin(n, first, last, &waited);
    if (slot >= 0) {
        pthread_mutex_unlock(&n->wlock);
        /* SIZE is stale if a truncation got in while wrun_begin waited */
        rc = write_whole_blocks(v, n, slot, buf, (size_t)(run_end - pos),
                                pos, run_end <= size && !waited);
        pthread_mutex_lock(&n->wlock);
    } else {
        wrun_wait_clear(n, first, last);
        rc = fs_write_through(v, n->ino, buf, (size_t)(run_end - pos), pos,
                              true);
    }
    /* Cached copies of these blocks are stale only once the new content
     * is in the batch (we hold a pin: no destroy here). */
    if (!rc)
        wcache_drop(v, n, first, last);
    if (slot >= 0)
        wrun_end(n, slot);
    return rc;
}

/*
 * A write: the partial blocks at its ends go to the cache of dirty partial
 * blocks (wcache.c), the whole blocks between them straight to the store.
 * CACHE_WRITE: it comes from the kernel's page cache (see the THEORY
 * above).
 */
static int write_data(struct vol *v, struct node *n, const char *buf,
                      size_t size, uint64_t off, bool cache_write)
{
    uint32_t bs = v->st->super.block_size;
    uint64_t pos = off, end = off + size;
    if (end > SFS_MAX_FILE_SIZE || end < off)
        return -EFBIG;
    struct sfs_inode i;
    MDB_txn *txn = vol_read_begin(v);
    int grc = sfs_inode_get(v->st, txn, v->live_view, n->ino, &i);
    vol_read_end(v);
    if (!grc && cache_write)
        grc = growth_begin(n, off, i.size);
    if (grc)
        return grc;
    while (pos < end) {
        uint64_t bstart = pos - pos % bs;
        uint64_t chunk_end = end < bstart + bs ? end : bstart + bs;
        /* From the block's start to the end of the file (a new small
         * file, an append at a block boundary): no old bytes to keep, so
         * nothing for the cache to save. */
        bool nothing_old = pos == bstart && chunk_end >= i.size &&
                           !__atomic_load_n(&n->ncached, __ATOMIC_ACQUIRE);
        int rc = 0;
        if ((pos == bstart && chunk_end == bstart + bs) || nothing_old) {
            /* A run of whole blocks, or a tail with nothing old. */
            uint64_t run_end = nothing_old && chunk_end < bstart + bs
                                   ? chunk_end : end - end % bs;
            rc = write_run(v, n, buf + (pos - off), pos, run_end, i.size);
            pos = run_end;
        } else {
            bool cached = false;
            wrun_wait_clear(n, bstart / bs, bstart / bs + 1);
            /* While a control change stores the cache, write through,
             * after storing this block if it is cached: the cached copy
             * stored later would undo this write.  Only this block: the
             * change stores the rest a chunk at a time, letting writes
             * in between. */
            if (!__atomic_load_n(&v->cache_barrier, __ATOMIC_ACQUIRE))
                rc = wcache_write(v, n, buf + (pos - off),
                                  (size_t)(chunk_end - pos), pos, cache_write,
                                  &cached);
            else if (__atomic_load_n(&n->ncached, __ATOMIC_ACQUIRE))
                rc = wcache_flush_block(v, n, bstart / bs);
            if (!rc && !cached)
                rc = fs_write_through(v, n->ino, buf + (pos - off),
                                      (size_t)(chunk_end - pos), pos, true);
            /* The size covers a cached block before anything lets go of
             * the write lock (a run of the next chunks does): a flush
             * then would take a block past the stored size for one
             * truncated away and drop it, losing the write. */
            if (!rc && cached)
                rc = note_cached_write(v, n->ino, chunk_end);
            pos = chunk_end;
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int write_locked(struct vol *v, struct node *n, const char *buf,
                        size_t size, uint64_t off, bool cache_write,
                        bool kill_suidgid)
{
    node_lock_request(n);
    int rc = kill_suidgid ? clear_suidgid(v, n->ino) : 0;
    if (!rc)
        rc = write_data(v, n, buf, size, off, cache_write);
    pthread_mutex_unlock(&n->wlock);
    return rc;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                     size_t size, off_t off, struct fuse_file_info *fi)
{
    REFUSE_UNLESS_LIVE(req, ino);
    struct vol *v = VOL(req);
    struct node *n = node_pin(v, ino);
    if (!n) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    bool kill = killpriv_request_kills_suidgid();
    if (fi->writepage)
        vol_barrier_wait(v);
    int rc = write_locked(v, n, buf, size, (uint64_t)off, fi->writepage, kill);
    /* Full: autodelete may make room (it needs no write lock held). */
    if (rc == -ENOSPC && autodelete_run(v, size + (size >> 3) + (1u << 20)))
        rc = write_locked(v, n, buf, size, (uint64_t)off, fi->writepage, kill);
    if ((rc == -ENOSPC || rc == -EDQUOT) && fi->writepage)
        growth_failed(v, n, (uint64_t)off); /* for good: cut the file */
    if (node_unpin(v, n))
        fs_destroy_orphan(v, ino);
    if (!rc) {
        space_wrote(SPACE(req), size, fi->writepage);
        metrics_add(MC_WRITE_BYTES, size);
    }
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_write(req, size);
}

/* Store this file's cached blocks into the batch (not a commit). */
static int flush_cached(struct vol *v, uint64_t ino)
{
    struct node *n = node_pin(v, ino);
    if (!n)
        return -ENOMEM;
    node_lock_quiet(n);
    int rc = wcache_flush(v, n);
    int lost = wcache_take_error(n);
    n->wb_session = false; /* the kernel wrote the file back */
    pthread_mutex_unlock(&n->wlock);
    if (node_unpin(v, n))
        fs_destroy_orphan(v, ino);
    return rc ? rc : lost;
}

/*
 * flush, on every close(): the file's cached partial blocks are stored
 * now, so that an error storing them (ENOSPC on a full volume) reaches
 * close() as it does on a local filesystem, rather than being found later
 * by nobody.  Durability still waits for fsync or the next commit.
 */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (FH_READ_ONLY(fi->fh) || !nodeid_is_live(ino)) {
        fuse_reply_err(req, 0); /* a reader's close reports nothing */
        return;
    }
    fuse_reply_err(req, -flush_cached(VOL(req), ino));
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
    struct vol *v = VOL(req);
    if (nodeid_is_live(ino)) {
        count_writer(v, ino, fi->fh, -1);
        if (node_open(v, ino, -1))
            fs_destroy_orphan(v, ino);
    }
    fuse_reply_err(req, 0);
}

/* After cached blocks were stored (RC): commit, sync, and answer. */
static void reply_synced(fuse_req_t req, int rc)
{
    if (!rc)
        rc = vol_sync(VOL(req));
    fuse_reply_err(req, -rc);
}

/* fsync: this file's cached blocks into the batch, then commit and sync. */
static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                     struct fuse_file_info *fi)
{
    if (!nodeid_is_live(ino)) {
        fuse_reply_err(req, 0); /* a snapshot is always on disk */
        return;
    }
    reply_synced(req, flush_cached(VOL(req), ino));
}

/* fsyncdir (and syncfs, which snapfs info uses): everything. */
static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                        struct fuse_file_info *fi)
{
    reply_synced(req, wcache_flush_all(VOL(req), true));
}

/* ---- directories ---- */

struct dirbuf {
    fuse_req_t req;
    struct vol *v;
    MDB_txn *txn;
    struct noderef dir;   /* the directory listed: live or a snapshot's */
    char *buf;
    size_t size, used;
    bool plus;
    bool full;            /* an entry did not fit: the listing goes on later */
    int error;
    uint64_t inodes_read; /* readdirplus: records read, for the map's trim */
};

/* One entry; in readdirplus its lookup reference is counted. */
static int dir_add(void *arg, const struct sfs_dirent *d)
{
    struct dirbuf *db = arg;
    size_t room = db->size - db->used;
    char *at = db->buf + db->used;
    size_t need;
    if (!db->plus) {
        struct stat s = { .st_ino = noderef_st_ino(&db->dir, d->ino),
                          .st_mode = d->type << 12 };
        need = fuse_add_direntry(db->req, at, room, d->name, &s,
                                 (off_t)d->cookie);
    } else {
        struct sfs_inode i;
        struct fuse_entry_param e;
        int rc = sfs_inode_get(db->v->st, db->txn, db->dir.view, d->ino, &i);
        db->inodes_read++;
        if (!rc && db->dir.kind == NODE_VIEW)
            rc = snapdir_child_entry(SD(db->req), &db->dir, &i,
                                     db->v->st->super.block_size, TIMEOUT, &e);
        else if (!rc)
            fill_entry(db->v, &i, &e);
        if (rc) {
            db->error = rc;
            return 1;
        }
        need = fuse_add_direntry_plus(db->req, at, room, d->name, &e,
                                      (off_t)d->cookie);
        if (db->dir.kind == NODE_VIEW && need > room)
            snapdir_forget(SD(db->req), e.ino, 1);
        else if (db->dir.kind != NODE_VIEW && need <= room)
            node_add_lookup(db->v, d->ino, 1);
    }
    if (need > room) {
        db->full = true;
        return 1;
    }
    db->used += need;
    return 0;
}

/* An entry that carries no lookup reference (ino 0 in readdirplus). */
static int dir_add_unreferenced(struct dirbuf *db, const char *name,
                                uint64_t st_ino, off_t next)
{
    size_t room = db->size - db->used, need;
    struct stat s = { .st_ino = st_ino, .st_mode = S_IFDIR };
    if (db->plus) {
        struct fuse_entry_param e = { .attr = s };
        need = fuse_add_direntry_plus(db->req, db->buf + db->used, room, name,
                                      &e, next);
    } else {
        need = fuse_add_direntry(db->req, db->buf + db->used, room, name, &s,
                                 next);
    }
    if (need > room) {
        db->full = true;
        return 1;
    }
    db->used += need;
    return 0;
}

static int dir_add_dots(struct dirbuf *db, off_t off)
{
    const struct noderef *r = &db->dir;
    struct sfs_inode i;
    int rc = sfs_inode_get(db->v->st, db->txn, r->view, r->obj, &i);
    if (rc)
        return rc == -ENOENT && r->kind == NODE_VIEW ? -ESTALE : rc;
    if (!S_ISDIR(i.mode))
        return -ENOTDIR;
    uint64_t parent = i.parent ? i.parent : SFS_ROOT_INO;
    uint64_t up = r->kind == NODE_VIEW && r->obj == r->entry
                      ? noderef_st_ino(&(struct noderef){ .kind = NODE_SNAPDIR },
                                       r->entry)
                      : noderef_st_ino(r, parent);
    if (off < 1 && (rc = dir_add_unreferenced(db, ".",
                                              noderef_st_ino(r, r->obj), 1)))
        return rc;
    if (off < 2 && (rc = dir_add_unreferenced(db, "..", up, 2)))
        return rc;
    return 0;
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size,
                           off_t off, bool plus)
{
    struct vol *v = VOL(req);
    struct dirbuf db = { .req = req, .v = v, .size = size, .plus = plus };
    db.buf = malloc(size);
    if (!db.buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    db.txn = vol_read_begin(v);
    int rc = noderef_resolve(SD(req), v, db.txn, ino, &db.dir);
    if (!rc && db.dir.kind == NODE_SNAPDIR) {
        rc = snapdir_list(SD(req), v, db.txn, &db.dir, req, db.buf, size, off,
                          plus, &db.used);
    } else if (!rc) {
        if (off < 2)
            rc = dir_add_dots(&db, off);
        if (rc == 0 && off < SNAPDIR_LIST_OFFSET)
            rc = sfs_dir_list(v->st, db.txn, db.dir.view, db.dir.obj,
                              off < 2 ? 0 : (uint64_t)off, dir_add, &db);
        /* The root lists .snapshot last, when it is visible. */
        if (rc == 0 && !db.full && !db.error && ino == SFS_ROOT_INO &&
            off < SNAPDIR_LIST_OFFSET && snapdir_listed(SD(req)))
            rc = dir_add_unreferenced(&db, SNAPDIR_NAME,
                                      noderef_st_ino(&(struct noderef){
                                          .kind = NODE_SNAPDIR }, ino),
                                      SNAPDIR_LIST_OFFSET);
    }
    /* each inode read is a page of the map (volume.c: the trim) */
    vol_read_end_bytes(v, db.inodes_read * VOL_MAP_META_BYTES);
    if (rc == 1)
        rc = 0;
    if (!rc)
        rc = db.error;
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_buf(req, db.buf, db.used);
    free(db.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    readdir_common(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
                           off_t off, struct fuse_file_info *fi)
{
    readdir_common(req, ino, size, off, true);
}

/* The live tree's share of the volume: the snapshot reserve is not
 * counted in the size (store.c). */
static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct vol *v = VOL(req);
    struct sfs_space sp;
    MDB_txn *txn = vol_read_begin(v);
    int rc = sfs_space_get(v->st, txn, &sp);
    uint64_t files = v->st->state.live_inodes;
    vol_read_end(v);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct statvfs s = { 0 };
    s.f_bsize = v->st->super.block_size;
    s.f_frsize = 4096;
    s.f_blocks = sp.live_size / 4096;
    s.f_bfree = sp.live_free / 4096;
    s.f_bavail = sp.avail / 4096;
    /* Inodes cost a few hundred bytes of metadata each. */
    s.f_ffree = sp.avail / 512;
    s.f_favail = s.f_ffree;
    s.f_files = files + s.f_ffree;
    s.f_namemax = SFS_NAME_MAX;
    fuse_reply_statfs(req, &s);
}

/* ---- xattrs ---- */

/* Setting an access ACL sets the mode; one the mode expresses is dropped. */
static int set_access_acl(struct vol *v, MDB_txn *txn, struct sfs_inode *i,
                          const char *value, size_t size)
{
    int rc = acl_valid(value, size);
    if (rc)
        return rc;
    int extended = acl_equiv_mode(value, size, &i->mode);
    touch_ctime(i);
    rc = sfs_inode_put_w(v->st, txn, i);
    if (rc)
        return rc;
    if (extended)
        return sfs_xattr_set_w(v->st, txn, i->ino, ACL_XATTR_ACCESS, value,
                               size, 0);
    rc = sfs_xattr_remove_w(v->st, txn, i->ino, ACL_XATTR_ACCESS);
    return rc == -ENODATA ? 0 : rc;
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        const char *value, size_t size, int flags)
{
    REFUSE_UNLESS_LIVE(req, ino);
    struct vol *v = VOL(req);
    if (strlen(name) > SFS_XATTR_NAME_MAX) {
        fuse_reply_err(req, ERANGE);
        return;
    }
    if (size > SFS_XATTR_SIZE_MAX) {
        fuse_reply_err(req, E2BIG);
        return;
    }
    if (!strcmp(name, SFS_QTREE_XATTR)) {
        fuse_reply_err(req, EPERM); /* `snapfs qtree` sets it */
        return;
    }
    MDB_txn *txn;
    struct sfs_inode i;
    int rc = vol_change_begin(v, &txn);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    vol_xattrs_changed(v);
    rc = sfs_inode_get(v->st, txn, v->live_view, ino, &i);
    bool is_default = !strcmp(name, ACL_XATTR_DEFAULT);
    if (!rc && is_default && !S_ISDIR(i.mode))
        rc = -EACCES;
    if (!rc && (is_default || !strcmp(name, ACL_XATTR_ACCESS)) &&
        acl_valid(value, size))
        rc = -EINVAL;
    if (!rc && !strcmp(name, ACL_XATTR_ACCESS) && !(flags & XATTR_CREATE) &&
        !(flags & XATTR_REPLACE)) {
        rc = set_access_acl(v, txn, &i, value, size);
    } else if (!rc) {
        rc = sfs_xattr_set_w(v->st, txn, ino, name, value, size, flags);
        if (!rc) {
            touch_ctime(&i);
            rc = sfs_inode_put_w(v->st, txn, &i);
        }
    }
    fuse_reply_err(req, -vol_change_end(v, rc, size));
}

static void reply_xattr_result(fuse_req_t req, int n, char *buf, size_t size)
{
    if (n < 0)
        fuse_reply_err(req, -n);
    else if (size == 0)
        fuse_reply_xattr(req, (size_t)n);
    else
        fuse_reply_buf(req, buf, (size_t)n);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        size_t size)
{
    struct vol *v = VOL(req);
    char *buf = size ? malloc(size) : NULL;
    if (size && !buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    bool caps = nodeid_is_live(ino) && !strcmp(name, XATTR_CAPS);
    if (caps && node_nocaps_known(v, ino)) {
        free(buf);
        fuse_reply_err(req, ENODATA);
        return;
    }
    struct noderef r;
    MDB_txn *txn = vol_read_begin(v);
    uint64_t gen = __atomic_load_n(&v->xattr_gen, __ATOMIC_ACQUIRE);
    int n = noderef_resolve(SD(req), v, txn, ino, &r);
    if (!n && r.kind == NODE_SNAPDIR)
        n = -ENODATA;
    if (!n)
        n = sfs_xattr_get(v->st, txn, r.view, r.obj, name, buf, size);
    vol_read_end(v);
    if (caps && n == -ENODATA)
        node_note_nocaps(v, ino, gen);
    reply_xattr_result(req, n, buf, size);
    free(buf);
}

/* Does the caller hold CAP_SYS_ADMIN (needed to see trusted.* names)? */
static bool caller_is_admin(fuse_req_t req)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)ctx->pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return ctx->uid == 0;
    bool admin = false;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "CapEff:", 7)) {
            unsigned long long caps = strtoull(line + 7, NULL, 16);
            admin = caps & (1ull << 21); /* CAP_SYS_ADMIN */
        }
    fclose(f);
    return admin;
}

/* Remove the trusted.* names from a NUL-separated list; new length. */
static size_t drop_trusted(char *list, size_t len)
{
    size_t out = 0;
    for (size_t pos = 0; pos < len;) {
        size_t n = strlen(list + pos) + 1;
        if (strncmp(list + pos, "trusted.", 8)) {
            memmove(list + out, list + pos, n);
            out += n;
        }
        pos += n;
    }
    return out;
}

/*
 * listxattr: the kernel passes the list through as we give it, so the
 * trusted.* names are filtered here for callers without CAP_SYS_ADMIN, as
 * local filesystems do.  The full list is built first, so that the size
 * answered for a size query matches what a later call returns.
 */
static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct vol *v = VOL(req);
    struct noderef r;
    MDB_txn *txn = vol_read_begin(v);
    int n = noderef_resolve(SD(req), v, txn, ino, &r);
    if (!n && r.kind != NODE_SNAPDIR)
        n = sfs_xattr_list(v->st, txn, r.view, r.obj, NULL, 0);
    char *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (n > 0 && !buf)
        n = -ENOMEM;
    if (n > 0)
        n = sfs_xattr_list(v->st, txn, r.view, r.obj, buf, (size_t)n);
    vol_read_end(v);
    if (n > 0 && !caller_is_admin(req))
        n = (int)drop_trusted(buf, (size_t)n);
    if (n >= 0 && size && (size_t)n > size)
        n = -ERANGE;
    reply_xattr_result(req, n, buf, size);
    free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    REFUSE_UNLESS_LIVE(req, ino);
    struct vol *v = VOL(req);
    if (!strcmp(name, SFS_QTREE_XATTR)) {
        fuse_reply_err(req, EPERM); /* `snapfs qtree delete` removes it */
        return;
    }
    MDB_txn *txn;
    struct sfs_inode i;
    int rc = vol_change_begin(v, &txn);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    vol_xattrs_changed(v);
    rc = sfs_inode_get(v->st, txn, v->live_view, ino, &i);
    if (!rc)
        rc = sfs_xattr_remove_w(v->st, txn, ino, name);
    if (!rc) {
        touch_ctime(&i);
        rc = sfs_inode_put_w(v->st, txn, &i);
    }
    fuse_reply_err(req, -vol_change_end(v, rc, 0));
}

/*
 * fallocate: FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE turns the range
 * into a hole (zeros written over partial blocks).  Preallocation cannot
 * be honoured by a deduplicating, compressing store (a later write could
 * still find no room), so mode 0 and the other modes are EOPNOTSUPP, and
 * posix_fallocate() falls back to writing zeros, which become holes.
 */
static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
                         off_t offset, off_t length, struct fuse_file_info *fi)
{
    REFUSE_UNLESS_LIVE(req, ino);
    struct vol *v = VOL(req);
    if (mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
        fuse_reply_err(req, EOPNOTSUPP);
        return;
    }
    struct node *n = node_pin(v, ino);
    if (!n) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    node_lock_quiet(n);
    struct sfs_inode i;
    int rc = wcache_flush(v, n);
    MDB_txn *txn = vol_read_begin(v);
    if (!rc)
        rc = sfs_inode_get(v->st, txn, v->live_view, ino, &i);
    vol_read_end(v);
    uint64_t end = (uint64_t)offset + (uint64_t)length;
    if (!rc && end > i.size)
        end = i.size;
    if (!rc && (uint64_t)offset < end) {
        /* Zeros over the range; whole zero blocks become holes. */
        size_t len = (size_t)(end - (uint64_t)offset);
        size_t chunk = 1u << 20;
        char *zeros = calloc(1, chunk);
        for (size_t done = 0; !rc && done < len; done += chunk)
            rc = zeros ? fs_write_through(v, ino, zeros,
                                          len - done < chunk ? len - done : chunk,
                                          (uint64_t)offset + done, true)
                       : -ENOMEM;
        free(zeros);
    }
    pthread_mutex_unlock(&n->wlock);
    if (node_unpin(v, n))
        fs_destroy_orphan(v, ino);
    fuse_reply_err(req, -rc);
}

/* ---- the freeze gate ----
 *
 * Every operation that changes the live tree runs inside the volume's
 * freeze gate (volume.c, THEORY: THE FREEZE GATE): while a consistency
 * group snapshot holds the volume frozen it waits, and a freeze waits for
 * those already running.  (op_open passes it only to truncate.)
 */
#define GATED(op, params, args)                                             \
    static void gated_##op params                                           \
    {                                                                       \
        struct vol *v = VOL(req); /* REQ is gone after the reply */         \
        vol_admit(v);                                                       \
        op_##op args;                                                       \
        vol_leave(v);                                                       \
    }

GATED(setattr, (fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                int to_set, struct fuse_file_info *fi),
      (req, ino, attr, to_set, fi))
GATED(mknod, (fuse_req_t req, fuse_ino_t parent, const char *name,
              mode_t mode, dev_t rdev), (req, parent, name, mode, rdev))
GATED(mkdir, (fuse_req_t req, fuse_ino_t parent, const char *name,
              mode_t mode), (req, parent, name, mode))
GATED(unlink, (fuse_req_t req, fuse_ino_t parent, const char *name),
      (req, parent, name))
GATED(rmdir, (fuse_req_t req, fuse_ino_t parent, const char *name),
      (req, parent, name))
GATED(symlink, (fuse_req_t req, const char *link, fuse_ino_t parent,
                const char *name), (req, link, parent, name))
GATED(rename, (fuse_req_t req, fuse_ino_t parent, const char *name,
               fuse_ino_t newparent, const char *newname, unsigned int flags),
      (req, parent, name, newparent, newname, flags))
GATED(link, (fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
             const char *newname), (req, ino, newparent, newname))
GATED(write, (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
              off_t off, struct fuse_file_info *fi),
      (req, ino, buf, size, off, fi))
GATED(setxattr, (fuse_req_t req, fuse_ino_t ino, const char *name,
                 const char *value, size_t size, int flags),
      (req, ino, name, value, size, flags))
GATED(removexattr, (fuse_req_t req, fuse_ino_t ino, const char *name),
      (req, ino, name))
GATED(create, (fuse_req_t req, fuse_ino_t parent, const char *name,
               mode_t mode, struct fuse_file_info *fi),
      (req, parent, name, mode, fi))
GATED(fallocate, (fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
                  off_t length, struct fuse_file_info *fi),
      (req, ino, mode, offset, length, fi))

/* ---- init ---- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    struct snapfs_fs *fs = userdata;
    unsigned want = FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_POSIX_ACL |
                    FUSE_CAP_DONT_MASK | FUSE_CAP_EXPORT_SUPPORT |
                    FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_READDIRPLUS |
                    FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_ATOMIC_O_TRUNC;
    if (fs->no_writeback)
        want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
    conn->want |= want & conn->capable;
    /* Set-user-ID bits are cleared as killpriv.c says (v2), not v1. */
    conn->want &= ~(unsigned)FUSE_CAP_HANDLE_KILLPRIV;
    /* No page cache dropped because a file's mtime moved: the daemon is
     * the mount's only writer and tells the kernel itself what changed
     * behind it (snapdir.c, receive.c).  Without the writeback cache,
     * that drop (on every read after a write) let readahead of one
     * thread fetch pages another thread's write was still sending, and
     * serve the old bytes from the cache after that write returned
     * (t56's writers, 2026-12-07). */
    conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
    conn->want &= ~(unsigned)FUSE_CAP_ASYNC_DIO;
    conn->want &= ~(unsigned)FUSE_CAP_SPLICE_READ;
    conn->want &= ~(unsigned)FUSE_CAP_SPLICE_WRITE;
    conn->want &= ~(unsigned)FUSE_CAP_SPLICE_MOVE;
    conn->max_write = 1u << 20;
    conn->max_readahead = 1u << 20;
    conn->max_background = SNAPFS_MAX_BACKGROUND;
    conn->congestion_threshold = SNAPFS_MAX_BACKGROUND * 3 / 4;
    conn->time_gran = 1;
    fs->conn_want = conn->want;
}

const struct fuse_lowlevel_ops snapfs_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = gated_setattr,
    .readlink = op_readlink,
    .mknod = gated_mknod,
    .mkdir = gated_mkdir,
    .unlink = gated_unlink,
    .rmdir = gated_rmdir,
    .symlink = gated_symlink,
    .rename = gated_rename,
    .link = gated_link,
    .open = op_open,
    .read = op_read,
    .write = gated_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = NULL,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .setxattr = gated_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = gated_removexattr,
    .create = gated_create,
    .fallocate = gated_fallocate,
};
