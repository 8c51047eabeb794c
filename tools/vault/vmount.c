/*
 * vmount.c - `snapfs vault mount`: the FUSE front of browse.c, serving
 * every snapshot of a vault read-only, fetching only what is read.  The
 * only file of the vault engine that knows FUSE.
 *
 * THEORY
 *
 * Two ways were open.  One was the volume's own daemon (fs/) over a store
 * whose missing blocks come from the vault through a block-source hook in
 * store/blocks.c.  It would need, per snapshot, a real store holding the
 * records but not their blocks - a receive that takes references to
 * blocks it never stores, which every invariant of the store (refcounts,
 * the ledger, fsck) forbids - a hook deep in the read path of every
 * volume for the sake of one tool, and fs/'s mount of one volume with a
 * live tree, writes, .snapshot and a control socket bent into a tree of
 * many volumes' snapshots that is never written.  The other, taken here,
 * is a small front of its own: a snapshot's records are already a table
 * after restore.c's replay (each key of the snapshot with its value,
 * exactly what a flat, single-view store would hold), and store/ decodes
 * its records without a store (sfs_rec_*), so a read-only filesystem is a
 * few lookups in that table plus one blob per block.  The store and fs/
 * stay as they are; this file is the only one linked with FUSE.
 *
 * The tree.  MOUNTPOINT/VOLUME/SNAPSHOT/..., VOLUME the source volume's
 * UUID (what a manifest records of it), SNAPSHOT its name (NAME@ID when a
 * volume has two snapshots of one name in the vault).  A node id carries
 * the snapshot and the object id (browse.h), so the kernel's inode
 * numbers are the store's object ids within a snapshot: hard links share
 * one, and no table maps them.
 *
 * Fetching only what is read.  Listing the top or a volume reads only
 * the manifests (read at mount, with the index; new ones later, below).
 * Entering a
 * snapshot's directory replays its metadata chain into a table in the
 * cache - its metadata packs only, the restorer's windows keeping that
 * to a request per few megabytes.  A read fetches each block it covers
 * that is not in the cache: the blob's bytes alone, or a window of its
 * pack when blobs are read in the order they were packed (blobio.c), so
 * a file read from its start costs a request per few megabytes and a
 * small file one request.  The kernel keeps what it read (the tree never
 * changes: attributes, entries and pages are cached for long), and
 * browse.c keeps the block decoded last.
 *
 * Bounded.  Memory: the vault's index, one window (4 MiB), one block,
 * the cache's entries, at most 16 open tables (address space: each maps
 * its own, as a restore's scratch table does).  Disk: the cache
 * (vcache.c), whose blocks and metadata tables together stay under
 * --cache-size, the least recently used going first; a table evicted is
 * replayed again if its snapshot is entered again.  Blocks are cached
 * sealed, as the vault holds them.
 *
 * Correctness.  Read-only twice over: mounted "ro" (the kernel refuses
 * writes itself) and every changing operation answered EROFS here.  Every
 * block is authenticated (AES-GCM under the vault's key, with its type
 * and keyed id) and checked against the SHA-256 its extent names; a
 * damaged or missing pack is EIO for the files that need it, with a
 * message to the log, and other files read on.  No lock is taken: a
 * prune running meanwhile may delete or repack packs, which is a missing
 * pack here: the index is read again (at most every 2 seconds; a
 * repacked blob is found at its new place), else EIO - never other
 * bytes, since a blob opens only under its own id.
 *
 * New backups.  Listing the top or a volume's directory (or looking up a
 * name not there) lists the manifests again, at most once a second, and
 * reads only what is new: the new manifests and index objects (an index
 * object is never changed, only added or, by prune, replaced by one
 * written first).  So the top and volume directories are not cached by
 * the kernel, while a snapshot's directories are, for as long as it
 * likes.  A snapshot forgotten meanwhile stays shown until the next
 * mount (and its files are EIO once a prune took their packs).
 *
 * One request at a time (fuse_session_loop): the vault handle, the
 * window and the cache are not shared between threads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <syslog.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "browse.h"
#include "vmount.h"

#define FOREVER 86400.0 /* seconds the kernel may keep what never changes */

static bool use_syslog;

static void mount_log(const char *msg)
{
    if (use_syslog)
        syslog(LOG_ERR, "%s", msg);
    else
        fprintf(stderr, "snapfs vault mount: %s\n", msg);
}

#define VB(req) ((struct vbrowse *)fuse_req_userdata(req))

static bool in_snapshot(fuse_ino_t node)
{
    return node >> SFS_INO_BITS;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e;
    bool stable;
    memset(&e, 0, sizeof(e));
    int rc = vb_lookup(VB(req), parent, name, &e.attr, &stable);
    if (rc == -ENOENT && in_snapshot(parent)) {
        e.entry_timeout = FOREVER; /* a snapshot never gains the name */
        fuse_reply_entry(req, &e);
        return;
    }
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    e.ino = e.attr.st_ino;
    e.attr_timeout = stable ? FOREVER : 0;
    e.entry_timeout = FOREVER;
    fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t node,
                       struct fuse_file_info *fi)
{
    (void)fi;
    struct stat st;
    bool stable;
    int rc = vb_getattr(VB(req), node, &st, &stable);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, stable ? FOREVER : 0);
}

static void op_readlink(fuse_req_t req, fuse_ino_t node)
{
    char target[SFS_SYMLINK_MAX + 1];
    int rc = vb_readlink(VB(req), node, target, sizeof(target));
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_readlink(req, target);
}

static void op_open(fuse_req_t req, fuse_ino_t node, struct fuse_file_info *fi)
{
    (void)node;
    if ((fi->flags & O_ACCMODE) != O_RDONLY ||
        (fi->flags & (O_TRUNC | O_CREAT))) {
        fuse_reply_err(req, EROFS);
        return;
    }
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t node, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)fi;
    char *buf = malloc(size ? size : 1);
    int rc = buf ? vb_read(VB(req), node, (uint64_t)off, size, buf) : -ENOMEM;
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_buf(req, buf, (size_t)rc);
    free(buf);
}

static void op_opendir(fuse_req_t req, fuse_ino_t node,
                       struct fuse_file_info *fi)
{
    int rc = vb_opendir(VB(req), node);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    /* a snapshot's directories never change; the top and a volume's
     * gain new backups */
    fi->keep_cache = fi->cache_readdir = in_snapshot(node);
    fuse_reply_open(req, fi);
}

struct dir_fill {
    fuse_req_t req;
    char *buf;
    size_t cap, len;
};

static int fill_cb(void *arg, const char *name, uint64_t node, mode_t type,
                   uint64_t next)
{
    struct dir_fill *f = arg;
    struct stat st = { .st_ino = node, .st_mode = type };
    size_t n = fuse_add_direntry(f->req, f->buf + f->len, f->cap - f->len,
                                 name, &st, (off_t)next);
    if (n > f->cap - f->len)
        return 1;
    f->len += n;
    return 0;
}

static void op_readdir(fuse_req_t req, fuse_ino_t node, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    (void)fi;
    struct dir_fill f = { req, malloc(size ? size : 1), size, 0 };
    int rc = f.buf ? vb_readdir(VB(req), node, (uint64_t)off, fill_cb, &f)
                   : -ENOMEM;
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_buf(req, f.buf, f.len);
    free(f.buf);
}

/* An xattr call's result: the length asked for, the bytes, or an error. */
static void reply_xattr(fuse_req_t req, int rc, const char *buf, size_t size)
{
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else if (!size)
        fuse_reply_xattr(req, (size_t)rc);
    else
        fuse_reply_buf(req, buf, (size_t)rc);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t node, const char *name,
                        size_t size)
{
    char *buf = size ? malloc(size) : NULL;
    int rc = size && !buf ? -ENOMEM
                          : vb_getxattr(VB(req), node, name, buf, size);
    reply_xattr(req, rc, buf, size);
    free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t node, size_t size)
{
    char *buf = size ? malloc(size) : NULL;
    bool root = fuse_req_ctx(req)->uid == 0;
    int rc = size && !buf ? -ENOMEM
                          : vb_listxattr(VB(req), node, buf, size, root);
    reply_xattr(req, rc, buf, size);
    free(buf);
}

static void op_statfs(fuse_req_t req, fuse_ino_t node)
{
    (void)node;
    struct statvfs sv;
    memset(&sv, 0, sizeof(sv));
    sv.f_bsize = sv.f_frsize = vb_block_size(VB(req));
    sv.f_namemax = SFS_NAME_MAX;
    sv.f_flag = ST_RDONLY;
    fuse_reply_statfs(req, &sv);
}

/* ---- every change: EROFS ---- */

static void refuse(fuse_req_t req)
{
    fuse_reply_err(req, EROFS);
}

static void op_setattr(fuse_req_t req, fuse_ino_t n, struct stat *a, int to_set,
                       struct fuse_file_info *fi)
{
    (void)n, (void)a, (void)to_set, (void)fi;
    refuse(req);
}

static void op_mknod(fuse_req_t req, fuse_ino_t p, const char *name,
                     mode_t mode, dev_t rdev)
{
    (void)p, (void)name, (void)mode, (void)rdev;
    refuse(req);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t p, const char *name,
                     mode_t mode)
{
    (void)p, (void)name, (void)mode;
    refuse(req);
}

static void op_unlink(fuse_req_t req, fuse_ino_t p, const char *name)
{
    (void)p, (void)name;
    refuse(req);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t p,
                       const char *name)
{
    (void)link, (void)p, (void)name;
    refuse(req);
}

static void op_rename(fuse_req_t req, fuse_ino_t p, const char *name,
                      fuse_ino_t np, const char *nname, unsigned flags)
{
    (void)p, (void)name, (void)np, (void)nname, (void)flags;
    refuse(req);
}

static void op_link(fuse_req_t req, fuse_ino_t n, fuse_ino_t np,
                    const char *nname)
{
    (void)n, (void)np, (void)nname;
    refuse(req);
}

static void op_write(fuse_req_t req, fuse_ino_t n, const char *buf,
                     size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)n, (void)buf, (void)size, (void)off, (void)fi;
    refuse(req);
}

static void op_create(fuse_req_t req, fuse_ino_t p, const char *name,
                      mode_t mode, struct fuse_file_info *fi)
{
    (void)p, (void)name, (void)mode, (void)fi;
    refuse(req);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t n, const char *name,
                        const char *value, size_t size, int flags)
{
    (void)n, (void)name, (void)value, (void)size, (void)flags;
    refuse(req);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t n, const char *name)
{
    (void)n, (void)name;
    refuse(req);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t n, int mode, off_t off,
                         off_t len, struct fuse_file_info *fi)
{
    (void)n, (void)mode, (void)off, (void)len, (void)fi;
    refuse(req);
}

static const struct fuse_lowlevel_ops vmount_ops = {
    .lookup = op_lookup,
    .getattr = op_getattr,
    .readlink = op_readlink,
    .open = op_open,
    .read = op_read,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .statfs = op_statfs,
    .setattr = op_setattr,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_unlink,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .write = op_write,
    .create = op_create,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
    .fallocate = op_fallocate,
};

/* ---- the mount ---- */

/* The cache directory: O's, absolute (the background mount leaves the
 * working directory), or a new one in $TMPDIR. */
static int cache_dir(const struct vault_mount_opts *o, char *out, size_t cap,
                     bool *made)
{
    const char *tmp = getenv("TMPDIR");
    char cwd[PATH_MAX];
    *made = !o->cache_dir;
    if (!o->cache_dir) {
        snprintf(out, cap, "%s/snapfs-vault-mount.XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        return mkdtemp(out) ? 0 : -errno;
    }
    if (o->cache_dir[0] == '/')
        return snprintf(out, cap, "%s", o->cache_dir) < (int)cap
                   ? 0 : -ENAMETOOLONG;
    if (!getcwd(cwd, sizeof(cwd)))
        return -errno;
    return snprintf(out, cap, "%s/%s", cwd, o->cache_dir) < (int)cap
               ? 0 : -ENAMETOOLONG;
}

static void report_end(struct vbrowse *b, const char *mountpoint,
                       struct vcache *c)
{
    struct vb_stats st;
    char msg[512];
    vb_stats(b, &st);
    snprintf(msg, sizeof(msg), "%s: unmounted; %llu snapshot(s) entered, "
             "%llu block(s) fetched, %llu read from the cache, %llu bytes "
             "read from the vault, %llu error(s), %llu bytes cached",
             mountpoint, (unsigned long long)st.snapshots,
             (unsigned long long)st.blocks,
             (unsigned long long)st.cache_hits,
             (unsigned long long)st.fetched, (unsigned long long)st.errors,
             (unsigned long long)vcache_bytes(c));
    mount_log(msg);
}

/* Mount B at MOUNTPOINT and serve it until unmounted. */
static int serve(struct vbrowse *b, struct vcache *c, const char *mountpoint,
                 bool foreground, char *why, size_t cap)
{
    char *argv[] = { "snapfs-vault",
                     "-o", "ro,default_permissions,fsname=snapfs-vault,"
                           "subtype=snapfs-vault",
                     NULL };
    struct fuse_args args = FUSE_ARGS_INIT(3, argv);
    struct fuse_session *se =
        fuse_session_new(&args, &vmount_ops, sizeof(vmount_ops), b);
    fuse_opt_free_args(&args);
    if (!se) {
        snprintf(why, cap, "the FUSE session could not be made");
        return -EIO;
    }
    if (fuse_set_signal_handlers(se) || fuse_session_mount(se, mountpoint)) {
        snprintf(why, cap, "%s: could not mount (is /dev/fuse there, and "
                 "fusermount3?)", mountpoint);
        fuse_remove_signal_handlers(se);
        fuse_session_destroy(se);
        return -EIO;
    }
    if (!foreground) {
        openlog("snapfs-vault-mount", LOG_PID, LOG_DAEMON);
        use_syslog = true;
    }
    fuse_daemonize(foreground);
    int rc = fuse_session_loop(se);
    report_end(b, mountpoint, c);
    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return rc < 0 ? rc : 0;
}

int vault_mount(struct vault *v, const char *mountpoint,
                const struct vault_mount_opts *o, char *why, size_t cap)
{
    char dir[PATH_MAX];
    bool made;
    struct vcache *c = NULL;
    struct vbrowse *b = NULL;
    why[0] = 0;
    int rc = cache_dir(o, dir, sizeof(dir), &made);
    if (rc) {
        snprintf(why, cap, "the cache directory: %s", strerror(-rc));
        return rc;
    }
    rc = vcache_open(dir, o->cache_size, &c);
    if (rc) {
        snprintf(why, cap, "%s: %s", dir, rc == -EBUSY
                 ? "another vault mount uses this cache directory"
                 : rc == -ENOTEMPTY ? "holds other files than a vault "
                                      "mount's cache (give a new or empty "
                                      "directory)"
                 : strerror(-rc));
        if (made)
            rmdir(dir);
        return rc;
    }
    rc = vb_open(v, c, mount_log, &b);
    if (rc)
        snprintf(why, cap, "%s", vault_why(v)[0] ? vault_why(v)
                                                 : strerror(-rc));
    else
        rc = serve(b, c, mountpoint, o->foreground, why, cap);
    vb_close(b);
    vcache_close(c, o->keep_cache, made);
    return rc;
}
