/*
 * fsck.c - the checker: every block's content and every structural
 * invariant of the store, each problem reported as one line naming the
 * object (a path where there is one).
 *
 * Passes:
 *   1. blocks: every dedup record has its blob, and the blob decodes to
 *      bytes whose SHA-256 is the key.  Damaged hashes are remembered.
 *   2. references: every version (live and history) that refers to a
 *      block is counted; each block's refcount must equal its count, its
 *      live count those of live versions, and the volume's space counters
 *      (the ledger of blocks only snapshots hold among them) the sums.
 *   3. the live tree, walked from the root: every entry points to a live
 *      inode of the type it says, directories' ".." are right, link counts
 *      match the entries found, extents refer to stored, undamaged blocks
 *      (a damaged one is reported with the file's path), and no live inode
 *      is unreachable unless it is a recorded orphan.
 *   4. history: every hist row has its deadlist row and the reverse.
 *   5. qtrees: each qtree's recorded usage equals the sum of blocks * 512
 *      over the live inodes that carry its id; a qtree's directory carries
 *      its own id and sits at the root; a linked inode's qtree exists.
 *
 * Memory: a map from inode to link count and one from block hash to
 * reference count: proportional to the volume, as for any fsck; fsck runs
 * offline and is not the daemon.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

/* ---- a small open-addressing map: 32-byte key -> counters ---- */

struct slot {
    uint8_t key[32];
    uint64_t a, b;
    uint64_t live_found, live_rec; /* blocks: live references */
    uint32_t csize;
    uint8_t flags;
    bool used;
};

struct map {
    struct slot *slots;
    size_t cap, n;
};

static uint64_t key_hash(const uint8_t *k)
{
    uint64_t h;
    memcpy(&h, k, 8);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

static struct slot *map_get(struct map *m, const uint8_t key[32], bool create)
{
    if (create && (m->n + 1) * 2 > m->cap) {
        struct map bigger = { calloc(m->cap ? m->cap * 2 : 1024,
                                     sizeof(struct slot)),
                              m->cap ? m->cap * 2 : 1024, 0 };
        if (!bigger.slots)
            return NULL;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].used)
                *map_get(&bigger, m->slots[i].key, true) = m->slots[i];
        free(m->slots);
        *m = bigger;
    }
    if (!m->cap)
        return NULL;
    for (size_t i = key_hash(key) % m->cap;; i = (i + 1) % m->cap) {
        struct slot *s = &m->slots[i];
        if (s->used && !memcmp(s->key, key, 32))
            return s;
        if (!s->used) {
            if (!create)
                return NULL;
            memcpy(s->key, key, 32);
            s->used = true;
            m->n++;
            return s;
        }
    }
}

static struct slot *map_ino(struct map *m, uint64_t ino, bool create)
{
    uint8_t k[32] = { 0 };
    memcpy(k, &ino, 8);
    return map_get(m, k, create);
}

/* ---- reporting ---- */

struct fsck {
    struct sfs_store *st;
    MDB_txn *txn;
    struct sfs_codec_ctx *cc;
    sfs_fsck_report report;
    void *arg;
    int problems;
    struct map blocks;  /* hash -> a: refs counted, b: refcount, flags: 1 bad */
    struct map inodes;  /* ino -> a: links found, b: subdirs */
    struct map qtrees;  /* qtree -> a: bytes of its inodes, b: recorded */
    uint64_t live_inodes_found;
};

__attribute__((format(printf, 2, 3)))
static void problem(struct fsck *f, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    f->problems++;
    f->report(f->arg, msg);
}

static void hex8(const uint8_t *h, char *out)
{
    for (int i = 0; i < 8; i++)
        sprintf(out + 2 * i, "%02x", h[i]);
}

/* ---- pass 1: blocks ---- */

static int check_blocks(struct fsck *f)
{
    MDB_cursor *c;
    int rc = sfs_mdb_errno(mdb_cursor_open(f->txn, f->st->db_dedup, &c));
    if (rc)
        return rc;
    MDB_val k, v;
    uint64_t count = 0, phys = 0, logical = 0;
    uint8_t *buf = malloc(SFS_BLOCK_SIZE_MAX + SFS_XATTR_SIZE_MAX);
    while (buf && !(rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
        struct sfs_dedup_rec d;
        char hx[17];
        hex8(k.mv_data, hx);
        struct slot *s = map_get(&f->blocks, k.mv_data, true);
        if (!s) {
            rc = ENOMEM;
            break;
        }
        if (v.mv_size != sizeof(d)) {
            problem(f, "block %s: malformed dedup record", hx);
            s->flags = 1;
            continue;
        }
        memcpy(&d, v.mv_data, sizeof(d));
        s->b = d.refcount;
        s->live_rec = d.live;
        s->csize = d.csize;
        count++;
        phys += d.csize;
        logical += d.lsize;
        struct sfs_raw_block raw;
        int frc = sfs_block_fetch(f->st, f->txn, k.mv_data, &raw);
        if (frc == 0 && raw.csize != d.csize)
            problem(f, "block %s: stored size %u, recorded %u", hx, raw.csize,
                    d.csize);
        if (frc == 0 && d.lsize <= SFS_BLOCK_SIZE_MAX + SFS_XATTR_SIZE_MAX)
            frc = sfs_block_decode(f->cc, &raw, buf);
        if (frc) {
            problem(f, "block %s: %s", hx,
                    frc == -EIO ? "damaged (content does not match its hash)"
                                : strerror(-frc));
            s->flags = 1;
        }
        sfs_raw_block_release(&raw);
    }
    free(buf);
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND)
        return rc > 0 ? -rc : rc;
    const struct sfs_state *st = &f->st->state;
    if (count != st->blob_count || phys != st->phys_bytes ||
        logical != st->stored_logical)
        problem(f, "space counters: %llu blocks / %llu bytes stored / %llu "
                   "logical recorded, %llu / %llu / %llu found",
                (unsigned long long)st->blob_count,
                (unsigned long long)st->phys_bytes,
                (unsigned long long)st->stored_logical,
                (unsigned long long)count, (unsigned long long)phys,
                (unsigned long long)logical);
    MDB_stat ms;
    mdb_stat(f->txn, f->st->db_blobs, &ms);
    if (ms.ms_entries != count)
        problem(f, "%zu blobs stored for %llu blocks (orphaned blobs)",
                ms.ms_entries, (unsigned long long)count);
    return 0;
}

/* ---- pass 2: references from every version ---- */

static int count_refs_in(struct fsck *f, MDB_dbi dbi, bool hist)
{
    MDB_cursor *c;
    int rc = sfs_mdb_errno(mdb_cursor_open(f->txn, dbi, &c));
    if (rc)
        return rc;
    MDB_val k, v;
    while (!(rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
        MDB_val base = { hist ? k.mv_size - 8 : k.mv_size, k.mv_data };
        MDB_val p = sfs_vpayload(&v);
        uint8_t h[SFS_HASH_LEN];
        if (!sfs_rec_blockref(&base, &p, h))
            continue;
        struct slot *s = map_get(&f->blocks, h, false);
        if (!s) {
            char hx[17];
            hex8(h, hx);
            problem(f, "a %s version refers to block %s, which is not stored",
                    hist ? "history" : "live", hx);
            continue;
        }
        s->a++;
        s->live_found += !hist;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : sfs_mdb_errno(rc);
}

/* The ledger (blocks.c): live counts, and the bytes only snapshots hold. */
static void check_ledger(struct fsck *f)
{
    const struct sfs_state *st = &f->st->state;
    if (!(st->flags & SFS_STATE_LEDGER))
        return; /* not counted yet: the next mount counts it */
    uint64_t snap_bytes = 0;
    for (size_t i = 0; i < f->blocks.cap; i++) {
        struct slot *s = &f->blocks.slots[i];
        if (!s->used)
            continue;
        if (s->a && !s->live_found)
            snap_bytes += sfs_blob_bytes(s->csize);
        if (s->live_found == s->live_rec)
            continue;
        char hx[17];
        hex8(s->key, hx);
        problem(f, "block %s: %llu live references recorded, %llu found", hx,
                (unsigned long long)s->live_rec,
                (unsigned long long)s->live_found);
    }
    if (snap_bytes != st->snap_blob_bytes)
        problem(f, "space counters: %llu bytes of blocks only snapshots hold "
                   "recorded, %llu found",
                (unsigned long long)st->snap_blob_bytes,
                (unsigned long long)snap_bytes);
}

static int check_refcounts(struct fsck *f)
{
    int rc = count_refs_in(f, f->st->db_live, false);
    if (!rc)
        rc = count_refs_in(f, f->st->db_hist, true);
    if (rc)
        return rc;
    for (size_t i = 0; i < f->blocks.cap; i++) {
        struct slot *s = &f->blocks.slots[i];
        if (!s->used || s->a == s->b)
            continue;
        char hx[17];
        hex8(s->key, hx);
        problem(f, "block %s: refcount %llu, but %llu references found", hx,
                (unsigned long long)s->b, (unsigned long long)s->a);
    }
    check_ledger(f);
    return 0;
}

/* ---- pass 3: the live tree ---- */

struct walk_dir {
    uint64_t ino;
    char *path;
};

struct walk {
    struct fsck *f;
    struct walk_dir *stack;
    size_t n, cap;
    const char *dirpath;
    uint64_t dir;
    int error;
};

struct ext_ctx {
    struct fsck *f;
    const char *path;
};

static int check_extent(void *a, uint64_t blockno, const struct sfs_extent *e)
{
    struct ext_ctx *x = a;
    if (e->is_inline) {
        uint8_t h[SFS_HASH_LEN];
        sfs_sha256(e->inline_data, e->lsize, h);
        if (memcmp(h, e->inline_sum, 8))
            problem(x->f, "%s: damaged inline data in block %llu", x->path,
                    (unsigned long long)blockno);
        return 0;
    }
    struct slot *s = map_get(&x->f->blocks, e->ref.hash, false);
    if (!s)
        problem(x->f, "%s: block %llu is missing", x->path,
                (unsigned long long)blockno);
    else if (s->flags)
        problem(x->f, "%s: block %llu is damaged", x->path,
                (unsigned long long)blockno);
    return 0;
}

static int push_dir(struct walk *w, uint64_t ino, const char *path)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        void *p = realloc(w->stack, cap * sizeof(*w->stack));
        if (!p)
            return -ENOMEM;
        w->stack = p;
        w->cap = cap;
    }
    w->stack[w->n].ino = ino;
    w->stack[w->n].path = strdup(path);
    return w->stack[w->n++].path ? 0 : -ENOMEM;
}

static int visit_entry(void *a, const struct sfs_dirent *d)
{
    struct walk *w = a;
    struct fsck *f = w->f;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", strcmp(w->dirpath, "/") ? w->dirpath : "",
             d->name);
    struct sfs_inode i;
    int rc = sfs_inode_get(f->st, f->txn, SFS_VIEW_LIVE, d->ino, &i);
    if (rc) {
        problem(f, "%s: entry points to inode %llu, which %s", path,
                (unsigned long long)d->ino,
                rc == -ENOENT ? "does not exist" : "cannot be read");
        return 0;
    }
    if (d->type != ((i.mode & S_IFMT) >> 12))
        problem(f, "%s: entry type %u, inode type %u", path, d->type,
                (i.mode & S_IFMT) >> 12);
    struct slot *s = map_ino(&f->inodes, d->ino, true);
    if (!s)
        return -ENOMEM;
    s->a++;
    if (S_ISDIR(i.mode)) {
        struct slot *ps = map_ino(&f->inodes, w->dir, true);
        if (!ps)
            return -ENOMEM;
        ps->b++;
        s = map_ino(&f->inodes, d->ino, false); /* the map may have grown */
        if (i.parent != w->dir)
            problem(f, "%s: '..' points to %llu, not %llu", path,
                    (unsigned long long)i.parent, (unsigned long long)w->dir);
        if (s->a > 1)
            problem(f, "%s: directory has more than one name", path);
        else if ((rc = push_dir(w, d->ino, path)))
            return rc;
    }
    if ((S_ISREG(i.mode) || S_ISLNK(i.mode)) && s->a == 1) {
        struct ext_ctx x = { f, path };
        rc = sfs_extent_scan(f->st, f->txn, SFS_VIEW_LIVE, d->ino, 0,
                             check_extent, &x);
        if (rc)
            problem(f, "%s: extents cannot be read: %s", path, strerror(-rc));
    }
    return 0;
}

static int walk_tree(struct fsck *f)
{
    struct walk w = { .f = f };
    struct slot *root = map_ino(&f->inodes, SFS_ROOT_INO, true);
    if (!root)
        return -ENOMEM;
    root->a = 1; /* its "name" is the mount point */
    int rc = push_dir(&w, SFS_ROOT_INO, "/");
    while (!rc && w.n) {
        struct walk_dir d = w.stack[--w.n];
        w.dirpath = d.path;
        w.dir = d.ino;
        rc = sfs_dir_list(f->st, f->txn, SFS_VIEW_LIVE, d.ino, 0, visit_entry,
                          &w);
        free(d.path);
    }
    while (w.n)
        free(w.stack[--w.n].path);
    free(w.stack);
    return rc;
}

static bool is_orphan(struct fsck *f, uint64_t ino)
{
    uint8_t k[8];
    sfs_put_be64(k, ino);
    MDB_val key = { 8, k }, v;
    return mdb_get(f->txn, f->st->db_orphans, &key, &v) == 0;
}

/* Call FN for every live inode record (malformed ones are skipped: pass 3
 * reports them through the tree). */
static int scan_live_inodes(struct fsck *f,
                            int (*fn)(struct fsck *, const struct sfs_inode *))
{
    MDB_cursor *c;
    int rc = sfs_mdb_errno(mdb_cursor_open(f->txn, f->st->db_live, &c));
    if (rc)
        return rc;
    uint8_t first = SFS_K_INODE;
    MDB_val k = { 1, &first }, v;
    int mrc;
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); !mrc && !rc;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (((const uint8_t *)k.mv_data)[0] != SFS_K_INODE)
            break;
        struct sfs_inode i;
        MDB_val p = sfs_vpayload(&v);
        if (p.mv_size != sizeof(i))
            continue;
        memcpy(&i, p.mv_data, sizeof(i));
        rc = fn(f, &i);
    }
    mdb_cursor_close(c);
    if (rc)
        return rc;
    return mrc && mrc != MDB_NOTFOUND ? sfs_mdb_errno(mrc) : 0;
}

static int check_link_count(struct fsck *f, const struct sfs_inode *i)
{
    f->live_inodes_found++;
    struct slot *s = map_ino(&f->inodes, i->ino, false);
    uint64_t names = s ? s->a : 0, subdirs = s ? s->b : 0;
    if (!names) {
        if (!is_orphan(f, i->ino))
            problem(f, "inode %llu is not reachable from the root",
                    (unsigned long long)i->ino);
        return 0;
    }
    uint64_t want = S_ISDIR(i->mode) ? 2 + subdirs : names;
    if (i->nlink != want)
        problem(f, "inode %llu: link count %u, %llu found",
                (unsigned long long)i->ino, i->nlink,
                (unsigned long long)want);
    return 0;
}

static int check_link_counts(struct fsck *f)
{
    f->live_inodes_found = 0;
    int rc = scan_live_inodes(f, check_link_count);
    if (rc)
        return rc;
    if (f->live_inodes_found != f->st->state.live_inodes)
        problem(f, "inode counter %llu, %llu inodes found",
                (unsigned long long)f->st->state.live_inodes,
                (unsigned long long)f->live_inodes_found);
    return 0;
}

/* ---- pass 5: qtrees ---- */

static int usage_seen(void *arg, uint64_t qtree, uint64_t bytes)
{
    struct fsck *f = arg;
    struct slot *s = map_ino(&f->qtrees, qtree, true);
    if (!s)
        return -ENOMEM;
    s->b = bytes;
    return 0;
}

static void check_qtree_inode(struct fsck *f, const struct sfs_inode *i)
{
    struct sfs_qtree_info q;
    int rc = sfs_qtree_get(f->st, f->txn, SFS_VIEW_LIVE, i->qtree, &q);
    if (i->ino == i->qtree && (rc || i->parent != SFS_ROOT_INO))
        problem(f, "qtree %llu: %s", (unsigned long long)i->ino,
                rc ? "its directory has no readable description"
                   : "its directory is not at the root");
    else if (i->ino != i->qtree && rc && i->nlink > 0)
        problem(f, "inode %llu: in qtree %llu, which is not a qtree",
                (unsigned long long)i->ino, (unsigned long long)i->qtree);
}

static int count_qtree_inode(struct fsck *f, const struct sfs_inode *i)
{
    if (!i->qtree)
        return 0;
    struct slot *s = map_ino(&f->qtrees, i->qtree, true);
    if (!s)
        return -ENOMEM;
    s->a += i->blocks * 512;
    check_qtree_inode(f, i);
    return 0;
}

static int check_qtrees(struct fsck *f)
{
    int rc = scan_live_inodes(f, count_qtree_inode);
    if (!rc)
        rc = sfs_qtree_usage_foreach(f->st, f->txn, usage_seen, f);
    for (size_t n = 0; !rc && n < f->qtrees.cap; n++) {
        struct slot *s = &f->qtrees.slots[n];
        uint64_t q;
        memcpy(&q, s->key, 8);
        if (s->used && s->a != s->b)
            problem(f, "qtree %llu: usage recorded %llu bytes, its inodes "
                       "hold %llu", (unsigned long long)q,
                    (unsigned long long)s->b, (unsigned long long)s->a);
    }
    return rc;
}

/* ---- pass 4: history and deadlist agree ---- */

static int check_history(struct fsck *f)
{
    MDB_stat hs, ds;
    mdb_stat(f->txn, f->st->db_hist, &hs);
    mdb_stat(f->txn, f->st->db_dead, &ds);
    if (hs.ms_entries != ds.ms_entries)
        problem(f, "%zu history versions but %zu deadlist rows",
                hs.ms_entries, ds.ms_entries);
    MDB_cursor *c;
    int rc = sfs_mdb_errno(mdb_cursor_open(f->txn, f->st->db_dead, &c));
    if (rc)
        return rc;
    MDB_val k, v;
    uint8_t hk[SFS_KEY_MAX + 8];
    while (!(rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
        size_t klen = k.mv_size - 16;
        memcpy(hk, (uint8_t *)k.mv_data + 16, klen);
        memcpy(hk + klen, k.mv_data, 8);
        MDB_val hkey = { klen + 8, hk }, hv;
        if (mdb_get(f->txn, f->st->db_hist, &hkey, &hv)) {
            problem(f, "deadlist row without its history version");
        } else if (sfs_vbirth(&hv) != sfs_get_be64((uint8_t *)k.mv_data + 8)) {
            problem(f, "deadlist row and history version disagree on birth");
        }
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : sfs_mdb_errno(rc);
}

/* ---- pass 6: every group record belongs to a snapshot ---- */

static int group_seen(void *arg, uint64_t epoch)
{
    struct fsck *f = arg;
    struct sfs_snap_rec s;
    struct sfs_cgroup g;
    int rc = epoch ? sfs_snap_get(f->st, f->txn, epoch, &s) : -ENOENT;
    if (rc == -ENOENT)
        problem(f, "group record of snapshot epoch %llu, which does not "
                   "exist", (unsigned long long)epoch);
    else if (rc)
        return rc;
    else if (sfs_cgroup_get(f->st, f->txn, epoch, &g))
        problem(f, "snapshot %s: its group record is unreadable", s.name);
    return 0;
}

/* ---- pass 7: every label record belongs to a snapshot, and reads ---- */

static int labels_seen(void *arg, uint64_t epoch, const char *labels)
{
    struct fsck *f = arg;
    struct sfs_snap_rec s;
    int rc = sfs_snap_get(f->st, f->txn, epoch, &s);
    if (rc == -ENOENT)
        problem(f, "labels of snapshot epoch %llu, which does not exist",
                (unsigned long long)epoch);
    else if (rc)
        return rc;
    else if (sfs_labels_valid(labels))
        problem(f, "snapshot %s: its labels are not a label list", s.name);
    return 0;
}

int sfs_fsck(struct sfs_store *st, sfs_fsck_report report, void *arg)
{
    struct fsck f = { .st = st, .report = report, .arg = arg };
    f.cc = sfs_codec_ctx_new();
    if (!f.cc)
        return -ENOMEM;
    int rc = sfs_txn_begin(st, NULL, false, &f.txn);
    if (rc)
        goto out;
    rc = sfs_state_reload(st);
    if (!rc)
        rc = check_blocks(&f);
    if (!rc)
        rc = check_refcounts(&f);
    if (!rc)
        rc = walk_tree(&f);
    if (!rc)
        rc = check_link_counts(&f);
    if (!rc)
        rc = check_history(&f);
    if (!rc)
        rc = check_qtrees(&f);
    if (!rc)
        rc = sfs_cgroup_foreach_epoch(st, f.txn, group_seen, &f);
    if (!rc)
        rc = sfs_snap_labels_foreach(st, f.txn, labels_seen, &f);
    if (!rc) {
        int n = sfs_format_fsck(st, f.txn, report, arg);
        rc = n < 0 ? n : 0;
        f.problems += n > 0 ? n : 0;
    }
    mdb_txn_abort(f.txn);
out:
    free(f.blocks.slots);
    free(f.inodes.slots);
    free(f.qtrees.slots);
    sfs_codec_ctx_free(f.cc);
    return rc ? rc : f.problems;
}
