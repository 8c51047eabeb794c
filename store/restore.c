/*
 * restore.c - bringing back what a snapshot saw: rolling the live tree
 * back to a snapshot, copying one object of a snapshot (a file, or a
 * directory with everything under it) into the live tree, and copying a
 * snapshot into a new store (clone).
 *
 * Guarantees: each operation runs inside the caller's transaction, so it
 * happens entirely or not at all; every snapshot, older or newer than the
 * one restored from, keeps reading exactly as before; the space counters,
 * block reference counts, history and deadlist stay exact (fsck clean).
 *
 * THEORY
 *
 * Rollback.  The live tree must read, key by key, as the view at EPOCH
 * does.  A key K reads differently in the two views only if
 *   (a) its live version was born after EPOCH: then K has a born row
 *       (birth | K) with birth > EPOCH; or
 *   (b) the version EPOCH sees is no longer live: it died after EPOCH, so
 *       K has a deadlist row (death | birth | K) with death > EPOCH and
 *       birth <= EPOCH (the row exists: the snapshot at EPOCH still sees
 *       that version, so it is in history).
 * A live version born at or before EPOCH is what EPOCH sees (it has not
 * died), so these two index ranges name every key that differs, and they
 * hold only rows written since EPOCH: the walk costs the change since the
 * snapshot, never the size of the volume.  (They may name keys that do
 * not differ, e.g. a version born and freed again, which costs a lookup.)
 *
 * For each named key: target = its version in the view at EPOCH, current
 * = its live version.  If both are absent, or both present with the same
 * bytes, nothing is done.  Otherwise the target's payload is written as a
 * NEW live version (an ordinary write at the current epoch, taking its
 * own reference on the block it points to), or, with no target, the live
 * version is killed.  Because these are ordinary writes, every snapshot
 * keeps seeing what it saw and the deadlist invariant of vrec.c holds:
 * the versions replaced go to history (or are freed) exactly as for any
 * other write.  The walk may meet a key again (our own writes add born
 * rows at the current epoch, inside the range walked); by then the live
 * bytes equal the target's, so the second visit does nothing.  Keys are
 * collected in batches before they are processed, and the index cursors
 * re-seek after each batch, since writes move LMDB's pages.
 *
 * Counters: live_inodes follows inode keys appearing and disappearing;
 * inline bytes and block references follow sfs_rec_addref_w (taken) and
 * the vrec layer (released).  Orphans (inodes with nlink 0 kept for open
 * files) are put in line afterwards: an orphan whose inode is gone or
 * linked again leaves the table; an inode put back with nlink 0 joins it
 * (a mount reaps it, as after a crash).
 *
 * Restoring a path copies records, not data: new inodes (fresh ids) whose
 * extent and xattr records are copies of the snapshot's, each taking a
 * block reference; a map from old to new inode number keeps hard links
 * inside the copied tree.  Overwriting a regular file in place kills its
 * live extents and xattrs and copies the snapshot's, keeping the inode.
 *
 * Cloning copies each record the snapshot sees into the live tree of an
 * empty store under the same key (so the same inode numbers), and each
 * block it refers to as its stored (compressed) bytes, verified by
 * decoding against its hash before it is stored.  It runs in steps so that
 * the caller can renew its read transaction of the source and commit the
 * new store as it goes (bounded memory, no long reader pinning pages).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h"

/* Payloads are small (inline data and xattr values at most 1.5 KiB). */
#define VAL_MAX 2048
#define KEYBATCH 1024
#define RECBATCH 256

static int key_cmp(const MDB_val *k, const uint8_t *b, size_t blen)
{
    size_t n = k->mv_size < blen ? k->mv_size : blen;
    int c = memcmp(k->mv_data, b, n);
    if (c)
        return c;
    return k->mv_size < blen ? -1 : k->mv_size > blen;
}

/* ---- rollback ---- */

struct keybatch {
    uint8_t keys[KEYBATCH][SFS_KEY_MAX];
    size_t lens[KEYBATCH];
    size_t n;
};

/* A position in an index table (born or dead): the last row read. */
struct index_pos {
    uint8_t key[SFS_KEY_MAX + 16];
    size_t len;
    bool started, done;
};

/*
 * Collect into KB the record keys of the next rows of index DBI after POS:
 * every row of born, the rows with birth <= EPOCH of dead.
 */
static int index_batch(struct sfs_store *st, MDB_txn *txn, bool deadlist,
                       uint64_t epoch, struct index_pos *pos,
                       struct keybatch *kb)
{
    MDB_cursor *c;
    int rc = sfs_mdb_errno(mdb_cursor_open(txn, deadlist ? st->db_dead
                                                          : st->db_born, &c));
    if (rc)
        return rc;
    size_t hdr = deadlist ? 16 : 8;
    MDB_val k = { pos->len, pos->key }, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (!mrc && pos->started && k.mv_size == pos->len &&
        !memcmp(k.mv_data, pos->key, pos->len))
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    kb->n = 0;
    while (!mrc && kb->n < KEYBATCH) {
        const uint8_t *p = k.mv_data;
        if (k.mv_size <= hdr || k.mv_size - hdr > SFS_KEY_MAX ||
            k.mv_size > sizeof(pos->key)) {
            sfs_log_corruption("index row of %zu bytes", k.mv_size);
            mrc = MDB_CORRUPTED;
            break;
        }
        if (!deadlist || sfs_get_be64(p + 8) <= epoch) {
            memcpy(kb->keys[kb->n], p + hdr, k.mv_size - hdr);
            kb->lens[kb->n++] = k.mv_size - hdr;
        }
        memcpy(pos->key, p, k.mv_size);
        pos->len = k.mv_size;
        pos->started = true;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (mrc == MDB_NOTFOUND)
        pos->done = true;
    return mrc == MDB_NOTFOUND ? 0 : sfs_mdb_errno(mrc);
}

struct rollback {
    struct sfs_store *st;
    MDB_txn *txn;
    uint64_t epoch;
    struct sfs_rollback_stats stats;
};

static int copy_payload(const MDB_val *v, uint8_t *buf, size_t *len)
{
    if (v->mv_size > VAL_MAX) {
        sfs_log_corruption("record of %zu bytes", v->mv_size);
        return -EIO;
    }
    memcpy(buf, v->mv_data, v->mv_size);
    *len = v->mv_size;
    return 0;
}

/*
 * Make the live version of KEY hold TARGET (TLEN bytes), or be absent when
 * TARGET is NULL, as an ordinary write at the current epoch (see THEORY):
 * the version replaced goes to history or is freed, live_inodes follows
 * inode keys appearing and going, and an inode given nlink 0 joins the
 * orphans.  With REF_TAKEN the caller already holds the block reference
 * TARGET needs (it is dropped again if nothing changes).  Returns 1 if the
 * live version changed, 0 if it already read so, or a negative errno.
 */
int sfs_rec_set_live_w(struct sfs_store *st, MDB_txn *txn, const uint8_t *key,
                       size_t klen, const void *target, size_t tlen,
                       bool ref_taken)
{
    MDB_val cv;
    uint64_t birth;
    MDB_val k = { klen, (void *)key }, p = { tlen, (void *)target };
    int crc = sfs_vrec_get(st, txn, SFS_VIEW_LIVE, key, klen, &cv, &birth);
    if (crc && crc != -ENOENT)
        return crc;
    bool has_current = crc == 0;
    uint8_t hash[SFS_HASH_LEN];
    if (target && has_current && cv.mv_size == tlen &&
        !memcmp(cv.mv_data, target, tlen))
        return ref_taken && sfs_rec_blockref(&k, &p, hash)
                   ? sfs_block_unref_w(st, txn, hash, true)
                   : 0;
    if (!target && !has_current)
        return 0;
    bool inode = key[0] == SFS_K_INODE;
    if (!target) {
        int rc = sfs_vrec_del_w(st, txn, key, klen);
        if (!rc && inode)
            st->state.live_inodes--;
        return rc ? rc : 1;
    }
    int rc = ref_taken ? 0 : sfs_rec_addref_w(st, txn, &k, &p);
    if (!rc)
        rc = sfs_vrec_put_w(st, txn, key, klen, target, tlen);
    if (rc || !inode)
        return rc ? rc : 1;
    if (!has_current)
        st->state.live_inodes++;
    struct sfs_inode i;
    if (tlen != sizeof(i)) {
        sfs_log_corruption("inode record of %zu bytes", tlen);
        return -EIO;
    }
    memcpy(&i, target, sizeof(i));
    rc = i.nlink == 0 ? sfs_orphan_add_w(st, txn, i.ino) : 0;
    return rc ? rc : 1;
}

/* Make the live version of KEY what the snapshot sees (see THEORY). */
static int rollback_key(struct rollback *rb, const uint8_t *key, size_t klen)
{
    uint8_t target[VAL_MAX];
    size_t tlen = 0;
    MDB_val tv;
    uint64_t birth;
    int trc = sfs_vrec_get(rb->st, rb->txn, rb->epoch, key, klen, &tv, &birth);
    if (trc && trc != -ENOENT)
        return trc;
    /* Copy: the pointer is into the map, which the writes below change. */
    if (!trc && (trc = copy_payload(&tv, target, &tlen)))
        return trc;
    int rc = sfs_rec_set_live_w(rb->st, rb->txn, key, klen,
                                trc == 0 ? target : NULL, tlen, false);
    if (rc <= 0)
        return rc;
    if (trc == 0)
        rb->stats.restored++;
    else
        rb->stats.removed++;
    return 0;
}

static int rollback_index(struct rollback *rb, bool deadlist,
                          struct keybatch *kb)
{
    struct index_pos pos = { .len = deadlist ? 16 : 8 };
    sfs_put_be64(pos.key, rb->epoch + 1);
    memset(pos.key + 8, 0, 8);
    int rc = 0;
    while (!rc && !pos.done) {
        rc = index_batch(rb->st, rb->txn, deadlist, rb->epoch, &pos, kb);
        for (size_t i = 0; !rc && i < kb->n; i++)
            rc = rollback_key(rb, kb->keys[i], kb->lens[i]);
    }
    return rc;
}

/* Orphans whose inode is gone or linked again leave the table. */
int sfs_orphans_prune_w(struct sfs_store *st, MDB_txn *txn)
{
    uint64_t *inos = NULL;
    size_t n = 0, cap = 0;
    MDB_cursor *c;
    int rc = sfs_mdb_errno(mdb_cursor_open(txn, st->db_orphans, &c));
    if (rc)
        return rc;
    MDB_val k, v;
    int mrc;
    while (!(mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            uint64_t *p = realloc(inos, cap * sizeof(*inos));
            if (!p) {
                mrc = ENOMEM;
                break;
            }
            inos = p;
        }
        inos[n++] = sfs_get_be64(k.mv_data);
    }
    mdb_cursor_close(c);
    rc = mrc == MDB_NOTFOUND ? 0 : mrc == ENOMEM ? -ENOMEM : sfs_mdb_errno(mrc);
    for (size_t i = 0; !rc && i < n; i++) {
        struct sfs_inode ino;
        rc = sfs_inode_get(st, txn, SFS_VIEW_LIVE, inos[i], &ino);
        if (rc == -ENOENT || (!rc && ino.nlink > 0))
            rc = sfs_orphan_del_w(st, txn, inos[i]);
    }
    free(inos);
    return rc;
}

int sfs_rollback_w(struct sfs_store *st, MDB_txn *txn, uint64_t epoch,
                   struct sfs_rollback_stats *out)
{
    if (epoch >= st->state.cur_epoch)
        return -EINVAL;
    struct keybatch *kb = malloc(sizeof(*kb));
    if (!kb)
        return -ENOMEM;
    struct rollback rb = { st, txn, epoch, { 0, 0 } };
    int rc = rollback_index(&rb, false, kb);
    if (!rc)
        rc = rollback_index(&rb, true, kb);
    free(kb);
    if (!rc)
        rc = sfs_orphans_prune_w(st, txn);
    if (!rc && out)
        *out = rb.stats;
    return rc;
}

/* ---- paths ---- */

int sfs_path_lookup(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                    const char *path, uint64_t *ino, uint64_t *dir,
                    char *leaf)
{
    uint64_t cur = SFS_ROOT_INO, parent = SFS_ROOT_INO;
    char name[SFS_NAME_MAX + 1] = "";
    bool missing = false;
    if (dir)
        *dir = 0;
    for (const char *p = path;;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *end = strchrnul(p, '/');
        size_t n = (size_t)(end - p);
        if (n > SFS_NAME_MAX)
            return -ENAMETOOLONG;
        if (missing)
            return -ENOENT; /* a directory on the way is missing */
        if ((n == 1 && p[0] == '.') || (n == 2 && !memcmp(p, "..", 2)))
            return -EINVAL;
        struct sfs_inode ci;
        int rc = sfs_inode_get(st, txn, view, cur, &ci);
        if (rc)
            return rc;
        if (!S_ISDIR(ci.mode))
            return -ENOTDIR;
        memcpy(name, p, n);
        name[n] = 0;
        parent = cur;
        struct sfs_dirent d;
        rc = sfs_dirent_lookup(st, txn, view, cur, name, &d);
        if (rc == -ENOENT)
            missing = true;
        else if (rc)
            return rc;
        else
            cur = d.ino;
        p = end;
    }
    if (dir)
        *dir = parent;
    if (leaf)
        strcpy(leaf, name);
    if (missing)
        return -ENOENT;
    if (ino)
        *ino = cur;
    return 0;
}

/* ---- copying records of one object (restore) ---- */

struct rec_copy {
    uint8_t key[SFS_KEY_MAX];
    size_t klen;
    uint8_t val[VAL_MAX];
    size_t vlen;
};

struct recbatch {
    struct rec_copy r[RECBATCH];
    size_t n;
    uint8_t last[SFS_KEY_MAX];
    size_t last_len;
};

static int recbatch_cb(void *a, const MDB_val *k, const MDB_val *v,
                       uint64_t birth)
{
    (void)birth;
    struct recbatch *b = a;
    /* Resuming after LAST can meet LAST again through its history rows. */
    if (b->last_len && key_cmp(k, b->last, b->last_len) <= 0)
        return 0;
    struct rec_copy *r = &b->r[b->n];
    if (k->mv_size > SFS_KEY_MAX) {
        sfs_log_corruption("key of %zu bytes", k->mv_size);
        return -EIO;
    }
    int rc = copy_payload(v, r->val, &r->vlen);
    if (rc)
        return rc;
    memcpy(r->key, k->mv_data, k->mv_size);
    r->klen = k->mv_size;
    return ++b->n == RECBATCH ? 1 : 0;
}

/* The next batch of PREFIX's records in VIEW, copied out of the map. */
static int recbatch_next(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                         const uint8_t *prefix, size_t plen,
                         struct recbatch *b)
{
    uint8_t start[SFS_KEY_MAX + 1];
    size_t slen = plen;
    memcpy(start, prefix, plen);
    if (b->last_len) {
        memcpy(start, b->last, b->last_len);
        start[b->last_len] = 0; /* the smallest key after LAST */
        slen = b->last_len + 1;
    }
    b->n = 0;
    int rc = sfs_vrec_scan(st, txn, view, prefix, plen, start, slen,
                           recbatch_cb, b);
    if (!rc && b->n) {
        memcpy(b->last, b->r[b->n - 1].key, b->r[b->n - 1].klen);
        b->last_len = b->r[b->n - 1].klen;
    }
    return rc;
}

/* Copy every KIND record (extents, xattrs) of SRC in VIEW to live DST. */
static int copy_records(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                        struct recbatch *b, uint8_t kind, uint64_t src,
                        uint64_t dst)
{
    uint8_t prefix[9];
    prefix[0] = kind;
    sfs_put_be64(prefix + 1, src);
    b->last_len = 0;
    do {
        int rc = recbatch_next(st, txn, view, prefix, 9, b);
        for (size_t i = 0; !rc && i < b->n; i++) {
            struct rec_copy *r = &b->r[i];
            /* A copy is a plain directory: a qtree is made, not copied. */
            if (kind == SFS_K_XATTR && r->klen > 9 &&
                !strcmp((const char *)r->key + 9, SFS_QTREE_XATTR))
                continue;
            sfs_put_be64(r->key + 1, dst);
            MDB_val k = { r->klen, r->key }, p = { r->vlen, r->val };
            rc = sfs_rec_addref_w(st, txn, &k, &p);
            if (!rc)
                rc = sfs_vrec_put_w(st, txn, r->key, r->klen, r->val, r->vlen);
        }
        if (rc)
            return rc;
    } while (b->n == RECBATCH);
    return 0;
}

/* ---- restoring a path ---- */

/* Open addressing, old inode number -> new; 0 marks a free slot. */
struct inomap {
    uint64_t *from, *to;
    size_t cap, n;
};

static uint64_t *inomap_slot(struct inomap *m, uint64_t from)
{
    size_t i = (size_t)(from * 0x9e3779b97f4a7c15ull) & (m->cap - 1);
    while (m->from[i] && m->from[i] != from)
        i = (i + 1) & (m->cap - 1);
    return &m->from[i];
}

static uint64_t inomap_get(struct inomap *m, uint64_t from)
{
    if (!m->cap)
        return 0;
    uint64_t *s = inomap_slot(m, from);
    return *s ? m->to[s - m->from] : 0;
}

static int inomap_put(struct inomap *m, uint64_t from, uint64_t to)
{
    if ((m->n + 1) * 2 > m->cap) {
        struct inomap big = { 0 };
        big.cap = m->cap ? 2 * m->cap : 64;
        big.from = calloc(big.cap, sizeof(uint64_t));
        big.to = calloc(big.cap, sizeof(uint64_t));
        if (!big.from || !big.to) {
            free(big.from);
            free(big.to);
            return -ENOMEM;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->from[i])
                inomap_put(&big, m->from[i], m->to[i]);
        free(m->from);
        free(m->to);
        *m = big;
    }
    uint64_t *s = inomap_slot(m, from);
    *s = from;
    m->to[s - m->from] = to;
    m->n++;
    return 0;
}

struct dirpair {
    uint64_t src, dst;
};

struct copier {
    struct sfs_store *st;
    MDB_txn *txn;
    uint64_t view;
    struct recbatch *recs;
    struct inomap links;      /* hard-linked files copied so far */
    struct dirpair *stack;    /* directories whose entries are to copy */
    size_t n, cap;
    uint64_t objects;
    uint64_t qtree;           /* the qtree of the destination */
};

static uint32_t dtype_of(uint32_t mode) { return (mode & S_IFMT) >> 12; }

static int push_dir(struct copier *c, uint64_t src, uint64_t dst)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        void *p = realloc(c->stack, cap * sizeof(*c->stack));
        if (!p)
            return -ENOMEM;
        c->stack = p;
        c->cap = cap;
    }
    c->stack[c->n++] = (struct dirpair){ src, dst };
    return 0;
}

/* Another name for an inode copied already: a hard link. */
static int link_again(struct copier *c, uint64_t ino, uint64_t dir,
                      const char *name)
{
    struct sfs_inode i;
    int rc = sfs_inode_get(c->st, c->txn, SFS_VIEW_LIVE, ino, &i);
    if (rc)
        return rc;
    i.nlink++;
    rc = sfs_inode_put_w(c->st, c->txn, &i);
    return rc ? rc : sfs_dirent_add_w(c->st, c->txn, dir, name, ino,
                                      dtype_of(i.mode));
}

/* Give the view's object SI the name NAME in live directory DIR. */
static int copy_entry(struct copier *c, const struct sfs_inode *si,
                      uint64_t dir, const char *name)
{
    bool linked = !S_ISDIR(si->mode) && si->nlink > 1;
    uint64_t done = linked ? inomap_get(&c->links, si->ino) : 0;
    if (done)
        return link_again(c, done, dir, name);
    struct sfs_inode ni = *si;
    ni.nlink = S_ISDIR(si->mode) ? 2 : 1;
    ni.parent = dir;
    ni.qtree = c->qtree;
    int rc = sfs_inode_create_w(c->st, c->txn, &ni);
    if (!rc)
        rc = copy_records(c->st, c->txn, c->view, c->recs, SFS_K_EXTENT,
                          si->ino, ni.ino);
    if (!rc)
        rc = copy_records(c->st, c->txn, c->view, c->recs, SFS_K_XATTR,
                          si->ino, ni.ino);
    if (!rc)
        rc = sfs_dirent_add_w(c->st, c->txn, dir, name, ni.ino,
                              dtype_of(ni.mode));
    if (!rc && linked)
        rc = inomap_put(&c->links, si->ino, ni.ino);
    if (!rc && S_ISDIR(ni.mode))
        rc = push_dir(c, si->ino, ni.ino);
    c->objects++;
    return rc;
}

struct entries {
    struct sfs_dirent d[RECBATCH];
    size_t n;
};

static int entries_cb(void *a, const struct sfs_dirent *d)
{
    struct entries *e = a;
    e->d[e->n] = *d;
    return ++e->n == RECBATCH ? 1 : 0;
}

/* Copy the entries of the view's directory SRC into the new DST. */
static int copy_dir_entries(struct copier *c, struct entries *e, uint64_t src,
                            uint64_t dst)
{
    uint64_t after = 0;
    uint32_t subdirs = 0;
    int rc;
    do {
        e->n = 0;
        rc = sfs_dir_list(c->st, c->txn, c->view, src, after, entries_cb, e);
        for (size_t i = 0; !rc && i < e->n; i++) {
            struct sfs_inode si;
            rc = sfs_inode_get(c->st, c->txn, c->view, e->d[i].ino, &si);
            if (!rc)
                rc = copy_entry(c, &si, dst, e->d[i].name);
            if (!rc)
                subdirs += S_ISDIR(si.mode);
        }
        if (e->n)
            after = e->d[e->n - 1].cookie;
    } while (!rc && e->n == RECBATCH);
    struct sfs_inode di;
    if (!rc)
        rc = sfs_inode_get(c->st, c->txn, SFS_VIEW_LIVE, dst, &di);
    if (!rc && di.nlink != 2 + subdirs) {
        di.nlink = 2 + subdirs;
        rc = sfs_inode_put_w(c->st, c->txn, &di);
    }
    return rc;
}

/* Replace contents, attributes and xattrs of live file DINO by SI's. */
static int overwrite_file(struct copier *c, const struct sfs_inode *si,
                          uint64_t dino)
{
    struct sfs_inode di;
    int rc = sfs_inode_get(c->st, c->txn, SFS_VIEW_LIVE, dino, &di);
    uint8_t p[9];
    p[0] = SFS_K_XATTR;
    sfs_put_be64(p + 1, dino);
    if (!rc)
        rc = sfs_extents_truncate_w(c->st, c->txn, dino, 0);
    if (!rc)
        rc = sfs_vrec_kill_prefix_w(c->st, c->txn, p, 9, p, 9);
    if (!rc)
        rc = copy_records(c->st, c->txn, c->view, c->recs, SFS_K_EXTENT,
                          si->ino, dino);
    if (!rc)
        rc = copy_records(c->st, c->txn, c->view, c->recs, SFS_K_XATTR,
                          si->ino, dino);
    if (rc)
        return rc;
    struct sfs_inode ni = *si;
    ni.ino = dino;
    ni.nlink = di.nlink;
    ni.parent = di.parent;
    ni.qtree = di.qtree;
    c->objects++;
    return sfs_inode_put_w(c->st, c->txn, &ni);
}

/* The new object's directory: a link more for a directory, new times. */
static int touch_parent(struct copier *c, uint64_t dir, bool subdir)
{
    struct sfs_inode pi;
    int rc = sfs_inode_get(c->st, c->txn, SFS_VIEW_LIVE, dir, &pi);
    if (rc)
        return rc;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    pi.nlink += subdir;
    pi.mtime_sec = pi.ctime_sec = now.tv_sec;
    pi.mtime_nsec = pi.ctime_nsec = (uint32_t)now.tv_nsec;
    return sfs_inode_put_w(c->st, c->txn, &pi);
}

static int restore_new(struct copier *c, const struct sfs_inode *si,
                       uint64_t dir, const char *name)
{
    struct sfs_inode pi;
    int rc = sfs_inode_get(c->st, c->txn, SFS_VIEW_LIVE, dir, &pi);
    if (!rc && pi.nlink == 0)
        rc = -ENOENT; /* a removed directory */
    c->qtree = pi.qtree; /* the copies join the destination's qtree */
    if (!rc)
        rc = copy_entry(c, si, dir, name);
    struct entries *e = malloc(sizeof(*e));
    if (!e && !rc)
        rc = -ENOMEM;
    while (!rc && c->n) {
        struct dirpair d = c->stack[--c->n];
        rc = copy_dir_entries(c, e, d.src, d.dst);
    }
    free(e);
    return rc ? rc : touch_parent(c, dir, S_ISDIR(si->mode));
}

int sfs_restore_path_w(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                       const char *path, const char *dest,
                       struct sfs_restore_stats *out)
{
    if (view == SFS_VIEW_LIVE)
        return -EINVAL; /* the copy must not see itself grow */
    uint64_t sino, dino = 0, dir;
    char leaf[SFS_NAME_MAX + 1];
    struct sfs_inode si, di;
    int rc = sfs_path_lookup(st, txn, view, path, &sino, NULL, NULL);
    if (!rc)
        rc = sfs_inode_get(st, txn, view, sino, &si);
    if (rc)
        return rc;
    int drc = sfs_path_lookup(st, txn, SFS_VIEW_LIVE, dest, &dino, &dir, leaf);
    if (drc && (drc != -ENOENT || !dir))
        return drc;
    if (!drc && !*leaf)
        return -EINVAL; /* the root */
    if (!drc && (rc = sfs_inode_get(st, txn, SFS_VIEW_LIVE, dino, &di)))
        return rc;
    if (!drc && S_ISDIR(di.mode))
        return -EISDIR;
    if (!drc && (!S_ISREG(di.mode) || !S_ISREG(si.mode)))
        return -EEXIST;
    struct copier c = { .st = st, .txn = txn, .view = view };
    c.recs = malloc(sizeof(*c.recs));
    if (!c.recs)
        return -ENOMEM;
    rc = drc ? restore_new(&c, &si, dir, leaf) : overwrite_file(&c, &si, dino);
    free(c.recs);
    free(c.stack);
    free(c.links.from);
    free(c.links.to);
    if (!rc && out) {
        out->objects = c.objects;
        out->in_place = drc == 0;
    }
    return rc;
}

/* ---- cloning ---- */

static const uint8_t clone_kinds[] = { SFS_K_DIRENT, SFS_K_EXTENT,
                                       SFS_K_INODE, SFS_K_XATTR };

struct clone_ctx {
    struct sfs_store *src, *dst;
    MDB_txn *stxn, *dtxn;
    struct sfs_codec_ctx *cc;
    struct sfs_clone_cursor *cur;
    uint64_t bytes, records, max_bytes, max_records;
};

/* The block record K refers to, in DST: a reference more, or copied. */
static int clone_block(struct clone_ctx *c, const uint8_t hash[SFS_HASH_LEN])
{
    int rc = sfs_block_exists(c->dst, c->dtxn, hash);
    if (rc == 0)
        return sfs_block_addref_w(c->dst, c->dtxn, hash);
    if (rc != -ENOENT)
        return rc;
    struct sfs_raw_block raw;
    rc = sfs_block_fetch(c->src, c->stxn, hash, &raw);
    if (!rc)
        rc = sfs_block_put_raw_w(c->dst, c->dtxn, c->cc, &raw, false);
    if (!rc) {
        c->bytes += raw.csize;
        c->cur->block_bytes += raw.csize;
    }
    sfs_raw_block_release(&raw);
    return rc;
}

static int clone_inode(struct clone_ctx *c, const MDB_val *k,
                       const MDB_val *v)
{
    MDB_val old;
    uint64_t birth;
    int rc = sfs_vrec_get(c->dst, c->dtxn, SFS_VIEW_LIVE, k->mv_data,
                          k->mv_size, &old, &birth);
    if (rc == -ENOENT)
        c->dst->state.live_inodes++; /* the root exists already */
    else if (rc)
        return rc;
    struct sfs_inode i;
    if (v->mv_size != sizeof(i)) {
        sfs_log_corruption("inode record of %zu bytes", v->mv_size);
        return -EIO;
    }
    memcpy(&i, v->mv_data, sizeof(i));
    c->cur->inodes++;
    return i.nlink == 0 ? sfs_orphan_add_w(c->dst, c->dtxn, i.ino) : 0;
}

static int clone_cb(void *a, const MDB_val *k, const MDB_val *v,
                    uint64_t birth)
{
    (void)birth;
    struct clone_ctx *c = a;
    struct sfs_clone_cursor *cur = c->cur;
    if (cur->last_len && key_cmp(k, cur->last, cur->last_len) <= 0)
        return 0;
    if (k->mv_size > SFS_KEY_MAX)
        return -EIO;
    /* K and V point into SRC's map, which writes to DST do not touch. */
    uint8_t hash[SFS_HASH_LEN];
    int rc = sfs_rec_blockref(k, v, hash) ? clone_block(c, hash)
                                           : sfs_rec_addref_w(c->dst, c->dtxn,
                                                              k, v);
    if (!rc && ((const uint8_t *)k->mv_data)[0] == SFS_K_INODE)
        rc = clone_inode(c, k, v);
    if (!rc)
        rc = sfs_vrec_put_w(c->dst, c->dtxn, k->mv_data, k->mv_size,
                            v->mv_data, v->mv_size);
    if (rc)
        return rc;
    memcpy(cur->last, k->mv_data, k->mv_size);
    cur->last_len = k->mv_size;
    cur->records++;
    c->records++;
    return c->records >= c->max_records || c->bytes >= c->max_bytes ? 1 : 0;
}

int sfs_clone_step(struct sfs_store *src, MDB_txn *stxn, uint64_t view,
                   struct sfs_store *dst, MDB_txn *dtxn,
                   struct sfs_codec_ctx *cc, struct sfs_clone_cursor *cur,
                   uint64_t max_bytes, uint64_t max_records)
{
    struct clone_ctx c = { .src = src, .dst = dst, .stxn = stxn,
                           .dtxn = dtxn, .cc = cc, .cur = cur,
                           .max_bytes = max_bytes,
                           .max_records = max_records };
    while (cur->kind < (int)sizeof(clone_kinds)) {
        const uint8_t *prefix = &clone_kinds[cur->kind];
        uint8_t start[SFS_KEY_MAX + 1];
        size_t slen = 1;
        start[0] = *prefix;
        if (cur->last_len) {
            memcpy(start, cur->last, cur->last_len);
            start[cur->last_len] = 0; /* the smallest key after LAST */
            slen = cur->last_len + 1;
        }
        int rc = sfs_vrec_scan(src, stxn, view, prefix, 1, start, slen,
                               clone_cb, &c);
        if (rc)
            return rc;
        if (c.records >= max_records || c.bytes >= max_bytes)
            return 0;
        cur->kind++;
        cur->last_len = 0;
    }
    return 1;
}
