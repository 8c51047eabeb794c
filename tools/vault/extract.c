/*
 * extract.c - restore-file: one path of a vaulted snapshot (a file, or a
 * directory with everything under it) copied out to a path of this host,
 * fetching only its own blocks.
 *
 * THEORY.  The records of a snapshot name blocks and inodes but, read
 * raw, not paths: paths are the store's business (fsmodel.c).  So the
 * restorer (restore.c) makes two small private stores from the replayed
 * records: the first holds only inodes and directory entries (no block
 * is fetched), enough for the store's own lookup and listing to resolve
 * PATH and walk what is under it; the second holds those again plus the
 * extents and xattrs of the walked inodes only (an extent or xattr key
 * starts with its inode number, store.h), so that only their blocks are
 * fetched.  The second store's snapshot is then copied out through the
 * store's reads: contents written where extents are (holes stay holes),
 * symlinks, devices, fifos and sockets made, hard links inside the copy
 * linked, xattrs (ACLs and DOS attributes among them) set, owners (as
 * root; elsewhere counted and left), modes and nanosecond times set, a
 * directory's after its entries.  A qtree's description is not set (a
 * copied directory is not a qtree).
 *
 * Guarantees: DEST must not exist and is removed again if the copy
 * fails, so a failed restore-file leaves nothing; the two stores live
 * beside the scratch table and go with it.  Costs: the snapshot's
 * metadata twice over in the private stores, and the path's blocks.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "repo.h"

#define NAMES_MAX (1u << 20)

/* ---- the inodes under PATH ---- */

struct inos {
    uint64_t *v;
    size_t n, cap;
};

static int inos_add(struct inos *s, uint64_t ino)
{
    if (vault_grow(&s->v, &s->cap, s->n, sizeof(*s->v)))
        return -ENOMEM;
    s->v[s->n++] = ino;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int child_cb(void *arg, const struct sfs_dirent *d)
{
    return inos_add(arg, d->ino);
}

/* INO and, for a directory, everything under it (breadth first). */
static int walk_subtree(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                        uint64_t ino, struct inos *out)
{
    int rc = inos_add(out, ino);
    for (size_t at = 0; !rc && at < out->n; at++) {
        struct sfs_inode in;
        rc = sfs_inode_get(st, txn, view, out->v[at], &in);
        if (!rc && S_ISDIR(in.mode))
            rc = sfs_dir_list(st, txn, view, out->v[at], 0, child_cb, out);
    }
    if (!rc && out->n)
        qsort(out->v, out->n, sizeof(*out->v), cmp_u64);
    return rc;
}

static bool names_only(void *arg, const uint8_t *key, size_t klen)
{
    (void)arg;
    return klen && (key[0] == SFS_K_INODE || key[0] == SFS_K_DIRENT);
}

/* Inodes and entries, and the extents and xattrs of the walked inodes. */
static bool subtree_only(void *arg, const uint8_t *key, size_t klen)
{
    const struct inos *s = arg;
    if (names_only(NULL, key, klen))
        return true;
    if (klen < 9)
        return false;
    uint64_t ino = sfs_get_be64(key + 1);
    return bsearch(&ino, s->v, s->n, sizeof(*s->v), cmp_u64) != NULL;
}

/* ---- copying out ---- */

struct hardlink {
    uint64_t ino;
    char *path;
};

struct exporter {
    struct vault *v;
    struct sfs_store *st;
    MDB_txn *txn;
    uint64_t view;
    struct sfs_codec_ctx *cc;
    uint8_t *block;             /* one block */
    char *names;                /* an xattr list */
    uint8_t *value;             /* an xattr value */
    struct hardlink *links;
    size_t nlinks, lcap;
    struct vault_extract_result *r;
};

static int dest_fail(struct exporter *e, const char *op, const char *path,
                     int err)
{
    return vault_fail(e->v, -err, "%s: %s: %s", path, op, strerror(err));
}

static int set_xattrs(struct exporter *e, uint64_t ino, const char *path)
{
    int len = sfs_xattr_list(e->st, e->txn, e->view, ino, e->names,
                             NAMES_MAX);
    for (int at = 0; len > 0 && at < len; at += (int)strlen(e->names + at) + 1) {
        const char *name = e->names + at;
        if (!strcmp(name, SFS_QTREE_XATTR))
            continue;
        int n = sfs_xattr_get(e->st, e->txn, e->view, ino, name, e->value,
                              SFS_XATTR_SIZE_MAX);
        if (n < 0)
            return vault_fail(e->v, n, "%s: reading xattr %s: %s", path,
                              name, strerror(-n));
        if (lsetxattr(path, name, e->value, (size_t)n, 0))
            return vault_fail(e->v, -errno, "%s: setting xattr %s: %s", path,
                              name, strerror(errno));
    }
    return len < 0 ? vault_fail(e->v, len, "%s: listing xattrs: %s", path,
                                strerror(-len))
                   : 0;
}

/* Xattrs, owner, mode, times: in that order (chown clears set-id bits,
 * and every change but the times touches the times). */
static int set_attrs(struct exporter *e, const struct sfs_inode *in,
                     const char *path)
{
    int rc = set_xattrs(e, in->ino, path);
    if (rc)
        return rc;
    if (lchown(path, in->uid, in->gid)) {
        if (errno != EPERM)
            return dest_fail(e, "lchown", path, errno);
        e->r->not_owned++;
    }
    if (!S_ISLNK(in->mode) && chmod(path, in->mode & 07777))
        return dest_fail(e, "chmod", path, errno);
    struct timespec t[2] = { { in->atime_sec, in->atime_nsec },
                             { in->mtime_sec, in->mtime_nsec } };
    if (utimensat(AT_FDCWD, path, t, AT_SYMLINK_NOFOLLOW))
        return dest_fail(e, "utimensat", path, errno);
    return 0;
}

struct blocks {
    uint64_t *v;
    size_t n, cap;
};

static int extent_cb(void *arg, uint64_t blockno, const struct sfs_extent *x)
{
    struct blocks *b = arg;
    if (!x->present)
        return 0;
    if (vault_grow(&b->v, &b->cap, b->n, sizeof(*b->v)))
        return -ENOMEM;
    b->v[b->n++] = blockno;
    return 0;
}

/* The file's blocks where it has extents; holes are left holes. */
static int write_data(struct exporter *e, const struct sfs_inode *in, int fd,
                      const char *path)
{
    struct blocks b = { 0 };
    uint64_t bs = e->st->super.block_size;
    int rc = sfs_extent_scan(e->st, e->txn, e->view, in->ino, 0, extent_cb,
                             &b);
    for (size_t i = 0; !rc && i < b.n; i++) {
        uint64_t off = b.v[i] * bs;
        size_t got = 0;
        if (off >= in->size)
            break;
        size_t len = in->size - off < bs ? (size_t)(in->size - off) : bs;
        rc = sfs_file_read(e->st, e->txn, e->cc, e->view, in->ino, off, len,
                           e->block, &got);
        if (rc)
            rc = vault_fail(e->v, rc, "%s: reading its data: %s", path,
                            strerror(-rc));
        else if (pwrite(fd, e->block, got, (off_t)off) != (ssize_t)got)
            rc = dest_fail(e, "write", path, errno ? errno : EIO);
        e->r->bytes += got;
    }
    free(b.v);
    if (!rc && ftruncate(fd, (off_t)in->size))
        rc = dest_fail(e, "ftruncate", path, errno);
    return rc;
}

/* A hard link to an inode copied already: 1 linked, 0 not one. */
static int link_again(struct exporter *e, const struct sfs_inode *in,
                      const char *path)
{
    if (in->nlink < 2 || S_ISDIR(in->mode))
        return 0;
    for (size_t i = 0; i < e->nlinks; i++)
        if (e->links[i].ino == in->ino)
            return link(e->links[i].path, path)
                       ? dest_fail(e, "link", path, errno)
                       : 1;
    char *copy = strdup(path);
    if (!copy || vault_grow(&e->links, &e->lcap, e->nlinks,
                            sizeof(*e->links))) {
        free(copy);
        return -ENOMEM;
    }
    e->links[e->nlinks++] = (struct hardlink){ in->ino, copy };
    return 0;
}

static int make_file(struct exporter *e, const struct sfs_inode *in,
                     const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return dest_fail(e, "create", path, errno);
    int rc = write_data(e, in, fd, path);
    if (close(fd) && !rc)
        rc = dest_fail(e, "close", path, errno);
    return rc;
}

static int make_symlink(struct exporter *e, const struct sfs_inode *in,
                        const char *path)
{
    char target[SFS_SYMLINK_MAX + 1];
    size_t got = 0;
    size_t len = in->size < SFS_SYMLINK_MAX ? (size_t)in->size
                                            : SFS_SYMLINK_MAX;
    int rc = sfs_file_read(e->st, e->txn, e->cc, e->view, in->ino, 0, len,
                           target, &got);
    if (rc)
        return vault_fail(e->v, rc, "%s: reading the link: %s", path,
                          strerror(-rc));
    target[got] = 0;
    return symlink(target, path) ? dest_fail(e, "symlink", path, errno) : 0;
}

static int export_obj(struct exporter *e, uint64_t ino, const char *path);

struct dir_walk {
    struct exporter *e;
    const char *path;
    int rc;
};

static int entry_cb(void *arg, const struct sfs_dirent *d)
{
    struct dir_walk *w = arg;
    char child[PATH_MAX];
    if (snprintf(child, sizeof(child), "%s/%s", w->path, d->name) >=
        (int)sizeof(child))
        return w->rc = vault_fail(w->e->v, -ENAMETOOLONG, "%s/%s: path too "
                                  "long", w->path, d->name);
    return w->rc = export_obj(w->e, d->ino, child);
}

static int make_dir(struct exporter *e, const struct sfs_inode *in,
                    const char *path)
{
    if (mkdir(path, 0700))
        return dest_fail(e, "mkdir", path, errno);
    struct dir_walk w = { e, path, 0 };
    int rc = sfs_dir_list(e->st, e->txn, e->view, in->ino, 0, entry_cb, &w);
    return w.rc ? w.rc : rc < 0 ? vault_fail(e->v, rc, "%s: listing: %s",
                                              path, strerror(-rc))
                                : 0;
}

static int export_obj(struct exporter *e, uint64_t ino, const char *path)
{
    struct sfs_inode in;
    int rc = sfs_inode_get(e->st, e->txn, e->view, ino, &in);
    if (rc)
        return vault_fail(e->v, rc, "%s: its inode: %s", path, strerror(-rc));
    rc = link_again(e, &in, path);
    if (rc)
        return rc < 0 ? rc : 0;
    if (S_ISDIR(in.mode))
        rc = make_dir(e, &in, path);
    else if (S_ISREG(in.mode))
        rc = make_file(e, &in, path);
    else if (S_ISLNK(in.mode))
        rc = make_symlink(e, &in, path);
    else if (mknod(path, in.mode & (S_IFMT | 07777), (dev_t)in.rdev))
        rc = dest_fail(e, "mknod", path, errno);
    e->r->objects++;
    return rc ? rc : set_attrs(e, &in, path);
}

/* ---- the private stores ---- */

static void store_remove(const char *dir)
{
    static const char *files[] = { "data.mdb", "lock.mdb", "lock" };
    char p[PATH_MAX + 16];
    for (size_t i = 0; i < 3; i++)
        if (snprintf(p, sizeof(p), "%s/%s", dir, files[i]) < (int)sizeof(p))
            unlink(p);
    rmdir(dir);
}

static int open_view(struct vault *v, const char *dir, struct sfs_store **st,
                     MDB_txn **txn)
{
    int rc = sfs_open(dir, SFS_OPEN_RDONLY, st);
    if (!rc && (rc = sfs_txn_begin(*st, NULL, false, txn)))
        sfs_close(*st);
    return rc ? vault_fail(v, rc, "%s: %s", dir, strerror(-rc)) : 0;
}

/* The inodes under PATH, from a store of the snapshot's names. */
static int find_subtree(struct vault *v, struct vault_restorer *rs,
                        const char *dir, const char *path, struct inos *out)
{
    struct sfs_store *st;
    MDB_txn *txn;
    int rc = vault_restorer_store(rs, dir, names_only, NULL);
    if (!rc)
        rc = open_view(v, dir, &st, &txn);
    if (rc)
        return rc;
    uint64_t ino;
    uint64_t view = st->state.newest_snap;
    rc = sfs_path_lookup(st, txn, view, path, &ino, NULL, NULL);
    if (rc == -ENOENT || rc == -ENOTDIR)
        rc = vault_fail(v, -ENOENT, "%s: not in the snapshot", path);
    else if (rc)
        rc = vault_fail(v, rc, "%s: %s", path, strerror(-rc));
    else
        rc = walk_subtree(st, txn, view, ino, out);
    mdb_txn_abort(txn);
    sfs_close(st);
    return rc;
}

static int copy_out(struct vault *v, const char *dir, const char *path,
                    const char *dest, struct vault_extract_result *r)
{
    struct exporter e = { .v = v, .r = r };
    int rc = open_view(v, dir, &e.st, &e.txn);
    if (rc)
        return rc;
    e.view = e.st->state.newest_snap;
    e.cc = sfs_codec_ctx_new();
    e.block = malloc(e.st->super.block_size);
    e.names = malloc(NAMES_MAX);
    e.value = malloc(SFS_XATTR_SIZE_MAX);
    uint64_t ino;
    if (!e.cc || !e.block || !e.names || !e.value)
        rc = -ENOMEM;
    else if (!(rc = sfs_path_lookup(e.st, e.txn, e.view, path, &ino, NULL,
                                    NULL)))
        rc = export_obj(&e, ino, dest);
    for (size_t i = 0; i < e.nlinks; i++)
        free(e.links[i].path);
    free(e.links);
    free(e.block);
    free(e.names);
    free(e.value);
    sfs_codec_ctx_free(e.cc);
    mdb_txn_abort(e.txn);
    sfs_close(e.st);
    return rc;
}

static int remove_one(const char *path, const struct stat *sb, int flag,
                      struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int vault_restore_file(struct vault *v, const struct vault_snapshot *s,
                       const char *path, const char *dest,
                       const char *scratch,
                       const struct vault_restore_opts *o,
                       struct vault_extract_result *r)
{
    memset(r, 0, sizeof(*r));
    struct vault_restore_result rr;
    struct vault_restorer *rs = NULL;
    struct inos sub = { 0 };
    char names[PATH_MAX], files[PATH_MAX];
    if (snprintf(names, sizeof(names), "%s.names", scratch) >=
            (int)sizeof(names) ||
        snprintf(files, sizeof(files), "%s.files", scratch) >=
            (int)sizeof(files))
        return vault_fail(v, -ENAMETOOLONG, "%s: name too long", scratch);
    int rc = vault_restorer_open(v, s, scratch, o, &rr, &rs);
    if (!rc)
        rc = find_subtree(v, rs, names, path, &sub);
    store_remove(names);
    if (!rc)
        rc = vault_restorer_store(rs, files, subtree_only, &sub);
    vault_restorer_close(rs);
    if (!rc) {
        rc = copy_out(v, files, path, dest, r);
        if (rc)
            nftw(dest, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    store_remove(files);
    free(sub.v);
    r->blocks = rr.blocks;
    r->fetched = v->fetched;
    return rc;
}
