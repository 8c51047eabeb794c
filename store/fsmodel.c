/*
 * fsmodel.c - the filesystem over versioned records: inodes, directory
 * entries, xattrs, file extents, and the read/write plans.
 *
 * Record layouts (keys big-endian; values in host order, x86-64/arm64
 * little-endian, fixed-size structs):
 *
 *   'I' ino                     -> struct sfs_inode
 *   'D' dir hash62 name NUL     -> struct dirent_val {ino, type}
 *   'X' ino name NUL            -> kind 0: value bytes inline
 *                                  kind 1: struct sfs_blockref (large values)
 *   'E' ino blockno             -> kind 1: {lsize, sha256}      a stored block
 *                                  kind 2: {lsize, sum8, bytes} inline tail
 *
 * A missing extent is a hole.  Directory entries are keyed by a 62-bit
 * FNV-1a hash of the name, so a directory lists in hash order and the
 * readdir cookie of an entry is its hash + 3 (0, 1, 2 are the start, "."
 * and ".."): a listing resumes exactly after the last entry returned
 * whatever was added or removed meanwhile.  (Two names of one directory
 * with equal 62-bit hashes would both be listed, but a listing resumed
 * between them would skip the second; the odds are 2^-62 per pair.)
 *
 * Inline data carries the first 8 bytes of its SHA-256, checked on read,
 * so a damaged inline tail is -EIO like a damaged block.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <dirent.h>
#include <time.h>

#include "internal.h"

enum { XV_INLINE = 0, XV_BLOB = 1 };
enum { EV_BLOB = 1, EV_INLINE = 2 };

#define XATTR_INLINE_MAX 1536

struct dirent_val {
    uint64_t ino;
    uint32_t type;
    uint32_t pad;
};

struct extent_blob_val {
    uint8_t kind;
    uint8_t pad[3];
    uint32_t lsize;
    uint8_t hash[SFS_HASH_LEN];
};

struct extent_inline_hdr {
    uint8_t kind;
    uint8_t pad[3];
    uint32_t lsize;
    uint8_t sum[8];
};

/* ---- keys ---- */

static size_t inode_key(uint8_t *k, uint64_t ino)
{
    k[0] = SFS_K_INODE;
    sfs_put_be64(k + 1, ino);
    return 9;
}

static uint64_t name_hash62(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    /* FNV's low bits mix poorly into the high ones; fold. */
    h ^= h >> 29;
    return h & ((1ull << 62) - 1);
}

static int dirent_key(uint8_t *k, uint64_t dir, const char *name)
{
    size_t n = strlen(name);
    if (n > SFS_NAME_MAX)
        return -ENAMETOOLONG;
    k[0] = SFS_K_DIRENT;
    sfs_put_be64(k + 1, dir);
    sfs_put_be64(k + 9, name_hash62(name));
    memcpy(k + 17, name, n + 1);
    return (int)(17 + n + 1);
}

static int xattr_key(uint8_t *k, uint64_t ino, const char *name)
{
    size_t n = strlen(name);
    if (n > SFS_XATTR_NAME_MAX)
        return -ERANGE;
    k[0] = SFS_K_XATTR;
    sfs_put_be64(k + 1, ino);
    memcpy(k + 9, name, n + 1);
    return (int)(9 + n + 1);
}

static size_t extent_key(uint8_t *k, uint64_t ino, uint64_t blockno)
{
    k[0] = SFS_K_EXTENT;
    sfs_put_be64(k + 1, ino);
    sfs_put_be64(k + 9, blockno);
    return 17;
}

/* ---- what versions cost and hold (called by vrec.c) ---- */

int sfs_rec_blockref(const MDB_val *key, const MDB_val *payload,
                     uint8_t hash[SFS_HASH_LEN])
{
    const uint8_t *k = key->mv_data, *v = payload->mv_data;
    if (!payload->mv_size)
        return 0;
    if (k[0] == SFS_K_EXTENT && v[0] == EV_BLOB &&
        payload->mv_size == sizeof(struct extent_blob_val)) {
        memcpy(hash, v + offsetof(struct extent_blob_val, hash), SFS_HASH_LEN);
        return 1;
    }
    if (k[0] == SFS_K_XATTR && v[0] == XV_BLOB &&
        payload->mv_size == 1 + sizeof(struct sfs_blockref)) {
        memcpy(hash, v + 1, SFS_HASH_LEN);
        return 1;
    }
    return 0;
}

uint64_t sfs_rec_logical_size(const MDB_val *key, const MDB_val *payload)
{
    const uint8_t *k = key->mv_data, *v = payload->mv_data;
    if (!payload->mv_size)
        return 0;
    if (k[0] == SFS_K_EXTENT) {
        uint32_t lsize;
        memcpy(&lsize, v + 4, 4);
        return lsize;
    }
    if (k[0] == SFS_K_XATTR) {
        if (v[0] == XV_INLINE)
            return payload->mv_size - 1;
        struct sfs_blockref r;
        memcpy(&r, v + 1, sizeof(r));
        return r.lsize;
    }
    return 0;
}

int sfs_rec_release_w(struct sfs_store *st, MDB_txn *txn, const MDB_val *key,
                      const MDB_val *payload, bool live)
{
    uint8_t hash[SFS_HASH_LEN];
    const uint8_t *k = key->mv_data, *v = payload->mv_data;
    if (k[0] == SFS_K_EXTENT && payload->mv_size && v[0] == EV_INLINE) {
        uint32_t lsize;
        memcpy(&lsize, v + 4, 4);
        st->state.inline_bytes -= lsize;
    }
    if (!sfs_rec_blockref(key, payload, hash))
        return 0;
    return sfs_block_unref_w(st, txn, hash, live);
}

int sfs_rec_to_history_w(struct sfs_store *st, MDB_txn *txn,
                         const MDB_val *key, const MDB_val *payload)
{
    uint8_t hash[SFS_HASH_LEN];
    if (!sfs_rec_blockref(key, payload, hash))
        return 0;
    return sfs_block_to_history_w(st, txn, hash);
}

int sfs_rec_addref_w(struct sfs_store *st, MDB_txn *txn, const MDB_val *key,
                     const MDB_val *payload)
{
    uint8_t hash[SFS_HASH_LEN];
    const uint8_t *k = key->mv_data, *v = payload->mv_data;
    if (k[0] == SFS_K_EXTENT && payload->mv_size && v[0] == EV_INLINE) {
        uint32_t lsize;
        memcpy(&lsize, v + 4, 4);
        st->state.inline_bytes += lsize;
    }
    if (!sfs_rec_blockref(key, payload, hash))
        return 0;
    return sfs_block_addref_w(st, txn, hash);
}

/* ---- inodes ---- */

int sfs_inode_get(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                  uint64_t ino, struct sfs_inode *out)
{
    uint8_t k[9];
    MDB_val v;
    uint64_t birth;
    int rc = sfs_vrec_get(st, txn, view, k, inode_key(k, ino), &v, &birth);
    if (rc)
        return rc;
    if (v.mv_size != sizeof(*out)) {
        sfs_log_corruption("inode %llu record of %zu bytes",
                           (unsigned long long)ino, v.mv_size);
        return -EIO;
    }
    memcpy(out, v.mv_data, sizeof(*out));
    return 0;
}

int sfs_inode_birth(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                    uint64_t ino, uint64_t *birth)
{
    uint8_t k[9];
    MDB_val v;
    return sfs_vrec_get(st, txn, view, k, inode_key(k, ino), &v, birth);
}

int sfs_inode_put_w(struct sfs_store *st, MDB_txn *txn,
                    const struct sfs_inode *ino)
{
    uint8_t k[9];
    if (ino->qtree) {
        int rc = sfs_qtree_check_growth(st, txn, ino);
        if (rc)
            return rc;
    }
    return sfs_vrec_put_w(st, txn, k, inode_key(k, ino->ino), ino,
                          sizeof(*ino));
}

int sfs_inode_create_w(struct sfs_store *st, MDB_txn *txn,
                       struct sfs_inode *ino)
{
    uint64_t avail;
    int rc = sfs_space_avail(st, txn, &avail);
    if (rc)
        return rc;
    if (avail < 16384)
        return -ENOSPC;
    if (st->state.next_ino > SFS_OBJ_ID_MAX)
        return -EOVERFLOW;
    ino->ino = st->state.next_ino;
    rc = sfs_inode_put_w(st, txn, ino);
    if (rc)
        return rc;
    st->state.next_ino++;
    st->state.live_inodes++;
    return 0;
}

struct keylist {
    uint8_t (*keys)[SFS_KEY_MAX];
    size_t *lens;
    size_t n, cap;
};

static int keylist_add(void *arg, const MDB_val *key, const MDB_val *val,
                       uint64_t birth)
{
    (void)val;
    (void)birth;
    struct keylist *kl = arg;
    if (kl->n == kl->cap) {
        size_t cap = kl->cap ? kl->cap * 2 : 64;
        void *k = realloc(kl->keys, cap * sizeof(*kl->keys));
        if (!k)
            return -ENOMEM;
        kl->keys = k;
        void *l = realloc(kl->lens, cap * sizeof(*kl->lens));
        if (!l)
            return -ENOMEM;
        kl->lens = l;
        kl->cap = cap;
    }
    memcpy(kl->keys[kl->n], key->mv_data, key->mv_size);
    kl->lens[kl->n++] = key->mv_size;
    /* Bound memory: the caller deletes this batch and scans again. */
    return kl->n >= 4096 ? 1 : 0;
}

int sfs_vrec_kill_prefix_w(struct sfs_store *st, MDB_txn *txn,
                           const uint8_t *prefix, size_t plen,
                           const uint8_t *start, size_t slen)
{
    struct keylist kl = { 0 };
    int rc;
    do {
        kl.n = 0;
        rc = sfs_vrec_scan(st, txn, SFS_VIEW_LIVE, prefix, plen, start, slen,
                           keylist_add, &kl);
        for (size_t i = 0; !rc && i < kl.n; i++)
            rc = sfs_vrec_del_w(st, txn, kl.keys[i], kl.lens[i]);
    } while (!rc && kl.n > 0);
    free(kl.keys);
    free(kl.lens);
    return rc;
}

int sfs_inode_destroy_w(struct sfs_store *st, MDB_txn *txn, uint64_t ino)
{
    uint8_t p[9];
    p[0] = SFS_K_EXTENT;
    sfs_put_be64(p + 1, ino);
    int rc = sfs_vrec_kill_prefix_w(st, txn, p, 9, p, 9);
    p[0] = SFS_K_XATTR;
    if (!rc)
        rc = sfs_vrec_kill_prefix_w(st, txn, p, 9, p, 9);
    if (!rc)
        rc = sfs_vrec_del_w(st, txn, p, inode_key(p, ino));
    if (!rc)
        st->state.live_inodes--;
    return rc;
}

/* ---- orphans ---- */

static int orphan_op(struct sfs_store *st, MDB_txn *txn, uint64_t ino, bool add)
{
    uint8_t k[8];
    sfs_put_be64(k, ino);
    MDB_val key = { 8, k }, val = { 0, NULL };
    int rc = add ? mdb_put(txn, st->db_orphans, &key, &val, 0)
                 : mdb_del(txn, st->db_orphans, &key, NULL);
    return rc == MDB_NOTFOUND ? 0 : sfs_mdb_errno(rc);
}

int sfs_orphan_add_w(struct sfs_store *st, MDB_txn *txn, uint64_t ino)
{
    return orphan_op(st, txn, ino, true);
}

int sfs_orphan_del_w(struct sfs_store *st, MDB_txn *txn, uint64_t ino)
{
    return orphan_op(st, txn, ino, false);
}

int sfs_orphans_reap_w(struct sfs_store *st, MDB_txn *txn)
{
    int count = 0;
    for (;;) {
        MDB_cursor *c;
        int rc = sfs_mdb_errno(mdb_cursor_open(txn, st->db_orphans, &c));
        if (rc)
            return rc;
        MDB_val k, v;
        rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        uint64_t ino = rc ? 0 : sfs_get_be64(k.mv_data);
        mdb_cursor_close(c);
        if (rc == MDB_NOTFOUND)
            return count;
        if (rc)
            return sfs_mdb_errno(rc);
        rc = sfs_inode_destroy_w(st, txn, ino);
        if (rc && rc != -ENOENT)
            return rc;
        rc = orphan_op(st, txn, ino, false);
        if (rc)
            return rc;
        count++;
    }
}

/* ---- directory entries ---- */

int sfs_dirent_lookup(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                      uint64_t dir, const char *name, struct sfs_dirent *out)
{
    uint8_t k[SFS_KEY_MAX];
    int klen = dirent_key(k, dir, name);
    if (klen < 0)
        return klen;
    MDB_val v;
    uint64_t birth;
    int rc = sfs_vrec_get(st, txn, view, k, (size_t)klen, &v, &birth);
    if (rc)
        return rc;
    struct dirent_val dv;
    memcpy(&dv, v.mv_data, sizeof(dv));
    out->ino = dv.ino;
    out->type = dv.type;
    out->cookie = name_hash62(name) + 3;
    strcpy(out->name, name);
    return 0;
}

int sfs_dirent_add_w(struct sfs_store *st, MDB_txn *txn, uint64_t dir,
                     const char *name, uint64_t ino, uint32_t type)
{
    uint8_t k[SFS_KEY_MAX];
    int klen = dirent_key(k, dir, name);
    if (klen < 0)
        return klen;
    struct dirent_val dv = { ino, type, 0 };
    return sfs_vrec_put_w(st, txn, k, (size_t)klen, &dv, sizeof(dv));
}

int sfs_dirent_remove_w(struct sfs_store *st, MDB_txn *txn, uint64_t dir,
                        const char *name)
{
    uint8_t k[SFS_KEY_MAX];
    int klen = dirent_key(k, dir, name);
    if (klen < 0)
        return klen;
    return sfs_vrec_del_w(st, txn, k, (size_t)klen);
}

struct list_arg {
    sfs_dirent_cb cb;
    void *arg;
};

static int list_cb(void *a, const MDB_val *key, const MDB_val *val,
                   uint64_t birth)
{
    (void)birth;
    struct list_arg *la = a;
    struct sfs_dirent d;
    int rc = sfs_rec_dirent_decode(key, val, &d);
    return rc ? rc : la->cb(la->arg, &d);
}

int sfs_dir_list(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                 uint64_t dir, uint64_t after, sfs_dirent_cb cb, void *arg)
{
    uint8_t prefix[9], start[17];
    prefix[0] = SFS_K_DIRENT;
    sfs_put_be64(prefix + 1, dir);
    memcpy(start, prefix, 9);
    /* Entries with cookie > after, i.e. hash >= after - 2. */
    uint64_t from = after < 3 ? 0 : after - 2;
    if (from >= (1ull << 62))
        return 0;
    sfs_put_be64(start + 9, from);
    struct list_arg la = { cb, arg };
    return sfs_vrec_scan(st, txn, view, prefix, 9, start, 17, list_cb, &la);
}

static int any_cb(void *a, const struct sfs_dirent *d)
{
    (void)d;
    *(int *)a = 0;
    return 1;
}

int sfs_dir_is_empty(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                     uint64_t dir)
{
    int empty = 1;
    int rc = sfs_dir_list(st, txn, view, dir, 0, any_cb, &empty);
    return rc ? rc : empty;
}

/* ---- xattrs ---- */

int sfs_xattr_get(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                  uint64_t ino, const char *name, void *buf, size_t cap)
{
    uint8_t k[SFS_KEY_MAX];
    int klen = xattr_key(k, ino, name);
    if (klen < 0)
        return klen == -ERANGE ? -ENODATA : klen;
    MDB_val v;
    uint64_t birth;
    int rc = sfs_vrec_get(st, txn, view, k, (size_t)klen, &v, &birth);
    if (rc)
        return rc == -ENOENT ? -ENODATA : rc;
    const uint8_t *p = v.mv_data;
    if (p[0] == XV_INLINE) {
        size_t n = v.mv_size - 1;
        if (buf) {
            if (n > cap)
                return -ERANGE;
            memcpy(buf, p + 1, n);
        }
        return (int)n;
    }
    struct sfs_blockref r;
    memcpy(&r, p + 1, sizeof(r));
    if (!buf)
        return (int)r.lsize;
    if (r.lsize > cap)
        return -ERANGE;
    struct sfs_raw_block raw;
    rc = sfs_block_fetch(st, txn, r.hash, &raw);
    if (rc)
        return rc;
    struct sfs_codec_ctx *cc = sfs_codec_ctx_new();
    rc = cc ? sfs_block_decode(cc, &raw, buf) : -ENOMEM;
    sfs_codec_ctx_free(cc);
    sfs_raw_block_release(&raw);
    return rc ? rc : (int)r.lsize;
}

static int xattr_store_value(struct sfs_store *st, MDB_txn *txn,
                             const uint8_t *k, size_t klen, const void *val,
                             size_t len)
{
    if (len <= XATTR_INLINE_MAX) {
        uint8_t v[1 + XATTR_INLINE_MAX];
        v[0] = XV_INLINE;
        memcpy(v + 1, val, len);
        return sfs_vrec_put_w(st, txn, k, klen, v, 1 + len);
    }
    struct sfs_prepared_block pb;
    sfs_block_hash(val, (uint32_t)len, &pb);
    pb.compressed_tried = true; /* xattrs are stored raw */
    int rc = sfs_block_ref_w(st, txn, &pb, false);
    if (rc)
        return rc;
    uint8_t v[1 + sizeof(struct sfs_blockref)];
    v[0] = XV_BLOB;
    memcpy(v + 1, &pb.ref, sizeof(pb.ref));
    return sfs_vrec_put_w(st, txn, k, klen, v, sizeof(v));
}

int sfs_xattr_set_w(struct sfs_store *st, MDB_txn *txn, uint64_t ino,
                    const char *name, const void *val, size_t len, int flags)
{
    if (len > SFS_XATTR_SIZE_MAX)
        return -E2BIG;
    uint8_t k[SFS_KEY_MAX];
    int klen = xattr_key(k, ino, name);
    if (klen < 0)
        return klen;
    if (!*name)
        return -EINVAL;
    MDB_val old;
    uint64_t birth;
    int rc = sfs_vrec_get(st, txn, SFS_VIEW_LIVE, k, (size_t)klen, &old,
                          &birth);
    if (rc && rc != -ENOENT)
        return rc;
    if ((flags & XATTR_CREATE) && rc == 0)
        return -EEXIST;
    if ((flags & XATTR_REPLACE) && rc == -ENOENT)
        return -ENODATA;
    return xattr_store_value(st, txn, k, (size_t)klen, val, len);
}

int sfs_xattr_remove_w(struct sfs_store *st, MDB_txn *txn, uint64_t ino,
                       const char *name)
{
    uint8_t k[SFS_KEY_MAX];
    int klen = xattr_key(k, ino, name);
    if (klen < 0)
        return -ENODATA;
    int rc = sfs_vrec_del_w(st, txn, k, (size_t)klen);
    return rc == -ENOENT ? -ENODATA : rc;
}

struct xlist_arg {
    char *buf;
    size_t cap, len;
    bool too_small;
};

static int xlist_cb(void *a, const MDB_val *key, const MDB_val *val,
                    uint64_t birth)
{
    (void)val;
    (void)birth;
    struct xlist_arg *xa = a;
    size_t n = key->mv_size - 9; /* name and its NUL */
    if (xa->buf && xa->len + n > xa->cap)
        xa->too_small = true;
    else if (xa->buf)
        memcpy(xa->buf + xa->len, (const uint8_t *)key->mv_data + 9, n);
    xa->len += n;
    return 0;
}

int sfs_xattr_list(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                   uint64_t ino, char *buf, size_t cap)
{
    uint8_t p[9];
    p[0] = SFS_K_XATTR;
    sfs_put_be64(p + 1, ino);
    struct xlist_arg xa = { buf, cap, 0, false };
    int rc = sfs_vrec_scan(st, txn, view, p, 9, NULL, 0, xlist_cb, &xa);
    if (rc)
        return rc;
    return xa.too_small ? -ERANGE : (int)xa.len;
}

/* ---- extents ---- */

static int extent_decode(const MDB_val *v, struct sfs_extent *out)
{
    const uint8_t *p = v->mv_data;
    memset(out, 0, sizeof(*out));
    if (v->mv_size >= sizeof(struct extent_blob_val) && p[0] == EV_BLOB) {
        struct extent_blob_val ev;
        memcpy(&ev, p, sizeof(ev));
        out->present = true;
        out->lsize = ev.lsize;
        out->ref.lsize = ev.lsize;
        memcpy(out->ref.hash, ev.hash, SFS_HASH_LEN);
        return 0;
    }
    if (v->mv_size >= sizeof(struct extent_inline_hdr) && p[0] == EV_INLINE) {
        struct extent_inline_hdr h;
        memcpy(&h, p, sizeof(h));
        if (v->mv_size != sizeof(h) + h.lsize)
            goto bad;
        out->present = true;
        out->is_inline = true;
        out->lsize = h.lsize;
        memcpy(out->inline_sum, h.sum, 8);
        out->inline_data = p + sizeof(h);
        return 0;
    }
bad:
    sfs_log_corruption("malformed extent record");
    return -EIO;
}

int sfs_extent_get(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                   uint64_t ino, uint64_t blockno, struct sfs_extent *out)
{
    uint8_t k[17];
    MDB_val v;
    uint64_t birth;
    int rc = sfs_vrec_get(st, txn, view, k, extent_key(k, ino, blockno), &v,
                          &birth);
    if (rc == -ENOENT) {
        memset(out, 0, sizeof(*out));
        return 0;
    }
    return rc ? rc : extent_decode(&v, out);
}

int sfs_extent_set_w(struct sfs_store *st, MDB_txn *txn, uint64_t ino,
                     uint64_t blockno, struct sfs_prepared_block *pb,
                     const void *plain, bool allow_slop)
{
    uint8_t k[17];
    size_t klen = extent_key(k, ino, blockno);
    uint32_t len = pb->ref.lsize;
    if (len == 0 || sfs_is_zero(plain, len))
        return sfs_extent_punch_w(st, txn, ino, blockno);
    if (len <= SFS_INLINE_MAX) {
        uint8_t v[sizeof(struct extent_inline_hdr) + SFS_INLINE_MAX];
        struct extent_inline_hdr h = { .kind = EV_INLINE, .lsize = len };
        memcpy(h.sum, pb->ref.hash, 8);
        memcpy(v, &h, sizeof(h));
        memcpy(v + sizeof(h), plain, len);
        int rc = sfs_vrec_put_w(st, txn, k, klen, v, sizeof(h) + len);
        if (!rc)
            st->state.inline_bytes += len;
        return rc;
    }
    int rc = sfs_block_ref_w(st, txn, pb, allow_slop);
    if (rc)
        return rc;
    struct extent_blob_val ev = { .kind = EV_BLOB, .lsize = len };
    memcpy(ev.hash, pb->ref.hash, SFS_HASH_LEN);
    return sfs_vrec_put_w(st, txn, k, klen, &ev, sizeof(ev));
}

int sfs_extent_punch_w(struct sfs_store *st, MDB_txn *txn, uint64_t ino,
                       uint64_t blockno)
{
    uint8_t k[17];
    int rc = sfs_vrec_del_w(st, txn, k, extent_key(k, ino, blockno));
    return rc == -ENOENT ? 0 : rc;
}

int sfs_extents_truncate_w(struct sfs_store *st, MDB_txn *txn, uint64_t ino,
                           uint64_t from)
{
    uint8_t p[9], s[17];
    p[0] = SFS_K_EXTENT;
    sfs_put_be64(p + 1, ino);
    extent_key(s, ino, from);
    return sfs_vrec_kill_prefix_w(st, txn, p, 9, s, 17);
}

struct escan_arg {
    sfs_extent_cb cb;
    void *arg;
};

static int escan_cb(void *a, const MDB_val *key, const MDB_val *val,
                    uint64_t birth)
{
    (void)birth;
    struct escan_arg *ea = a;
    struct sfs_extent e;
    int rc = extent_decode(val, &e);
    if (rc)
        return rc;
    return ea->cb(ea->arg, sfs_get_be64((const uint8_t *)key->mv_data + 9), &e);
}

int sfs_extent_scan(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                    uint64_t ino, uint64_t from, sfs_extent_cb cb, void *arg)
{
    uint8_t p[9], s[17];
    p[0] = SFS_K_EXTENT;
    sfs_put_be64(p + 1, ino);
    extent_key(s, ino, from);
    struct escan_arg ea = { cb, arg };
    return sfs_vrec_scan(st, txn, view, p, 9, s, 17, escan_cb, &ea);
}

/* ---- records read raw (store.h) ---- */

size_t sfs_rec_prefix(uint8_t k[9], uint8_t kind, uint64_t id)
{
    k[0] = kind;
    sfs_put_be64(k + 1, id);
    return 9;
}

size_t sfs_rec_inode_key(uint8_t k[9], uint64_t ino)
{
    return inode_key(k, ino);
}

int sfs_rec_dirent_key(uint8_t k[SFS_KEY_MAX], uint64_t dir,
                       const char *name)
{
    return dirent_key(k, dir, name);
}

size_t sfs_rec_dirent_start(uint8_t k[17], uint64_t dir, uint64_t after)
{
    /* Entries with cookie > after, i.e. hash >= after - 2. */
    uint64_t from = after < 3 ? 0 : after - 2;
    if (from >= (1ull << 62))
        return 0;
    sfs_rec_prefix(k, SFS_K_DIRENT, dir);
    sfs_put_be64(k + 9, from);
    return 17;
}

int sfs_rec_xattr_key(uint8_t k[SFS_KEY_MAX], uint64_t ino, const char *name)
{
    return xattr_key(k, ino, name);
}

size_t sfs_rec_extent_key(uint8_t k[17], uint64_t ino, uint64_t blockno)
{
    return extent_key(k, ino, blockno);
}

int sfs_rec_inode_decode(const MDB_val *val, struct sfs_inode *out)
{
    if (val->mv_size != sizeof(*out)) {
        sfs_log_corruption("inode record of %zu bytes", val->mv_size);
        return -EIO;
    }
    memcpy(out, val->mv_data, sizeof(*out));
    return 0;
}

int sfs_rec_dirent_decode(const MDB_val *key, const MDB_val *val,
                          struct sfs_dirent *out)
{
    const uint8_t *k = key->mv_data;
    if (key->mv_size < 19 || key->mv_size > 17 + SFS_NAME_MAX + 1 ||
        k[key->mv_size - 1] || val->mv_size < sizeof(struct dirent_val)) {
        sfs_log_corruption("malformed directory entry record");
        return -EIO;
    }
    struct dirent_val dv;
    memcpy(&dv, val->mv_data, sizeof(dv));
    out->ino = dv.ino;
    out->type = dv.type;
    out->cookie = sfs_get_be64(k + 9) + 3;
    memcpy(out->name, k + 17, key->mv_size - 17);
    return 0;
}

int sfs_rec_extent_decode(const MDB_val *key, const MDB_val *val,
                          uint64_t *blockno, struct sfs_extent *out)
{
    if (key->mv_size != 17)
        return extent_decode(&(MDB_val){ 0, NULL }, out);
    *blockno = sfs_get_be64((const uint8_t *)key->mv_data + 9);
    return extent_decode(val, out);
}

int sfs_rec_xattr_decode(const MDB_val *key, const MDB_val *val,
                         struct sfs_xattr_rec *out)
{
    const uint8_t *k = key->mv_data, *v = val->mv_data;
    memset(out, 0, sizeof(*out));
    if (key->mv_size < 11 || k[key->mv_size - 1] || !val->mv_size ||
        (v[0] == XV_BLOB && val->mv_size != 1 + sizeof(out->ref)) ||
        (v[0] != XV_BLOB && v[0] != XV_INLINE)) {
        sfs_log_corruption("malformed xattr record");
        return -EIO;
    }
    out->name = (const char *)k + 9;
    out->in_block = v[0] == XV_BLOB;
    if (out->in_block) {
        memcpy(&out->ref, v + 1, sizeof(out->ref));
        out->len = out->ref.lsize;
    } else {
        out->bytes = v + 1;
        out->len = val->mv_size - 1;
    }
    return 0;
}

void sfs_inode_stat(const struct sfs_inode *i, uint64_t st_ino,
                    uint32_t block_size, struct stat *s)
{
    memset(s, 0, sizeof(*s));
    s->st_ino = st_ino;
    s->st_mode = i->mode;
    s->st_nlink = i->nlink;
    s->st_uid = i->uid;
    s->st_gid = i->gid;
    s->st_rdev = i->rdev;
    s->st_size = (off_t)i->size;
    s->st_blocks = (blkcnt_t)i->blocks;
    s->st_blksize = block_size;
    s->st_atim.tv_sec = i->atime_sec;
    s->st_atim.tv_nsec = i->atime_nsec;
    s->st_mtim.tv_sec = i->mtime_sec;
    s->st_mtim.tv_nsec = i->mtime_nsec;
    s->st_ctim.tv_sec = i->ctime_sec;
    s->st_ctim.tv_nsec = i->ctime_nsec;
}

/* ---- read plans ---- */

struct rcollect {
    struct sfs_store *st;
    MDB_txn *txn;
    struct sfs_rplan *plan;
    uint64_t first;
};

static int rcollect_cb(void *a, uint64_t blockno, const struct sfs_extent *e)
{
    struct rcollect *rc = a;
    struct sfs_rplan *plan = rc->plan;
    if (blockno >= rc->first + plan->nblocks)
        return 1;
    struct sfs_rplan_block *b = &plan->blocks[blockno - rc->first];
    b->lsize = e->lsize;
    if (e->is_inline) {
        b->is_inline = true;
        memcpy(b->inline_sum, e->inline_sum, 8);
        b->inline_copy = malloc(e->lsize);
        if (!b->inline_copy)
            return -ENOMEM;
        memcpy(b->inline_copy, e->inline_data, e->lsize);
        return 0;
    }
    return sfs_block_fetch(rc->st, rc->txn, e->ref.hash, &b->raw);
}

int sfs_rplan_collect(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                      uint64_t ino, uint64_t file_size, uint64_t off,
                      size_t len, struct sfs_rplan *plan)
{
    memset(plan, 0, sizeof(*plan));
    plan->bs = st->super.block_size;
    plan->off = off;
    if (off >= file_size)
        return 0;
    if (len > file_size - off)
        len = (size_t)(file_size - off);
    plan->len = len;
    if (!len)
        return 0;
    uint64_t first = off / plan->bs, last = (off + len - 1) / plan->bs;
    plan->nblocks = (size_t)(last - first + 1);
    plan->blocks = calloc(plan->nblocks, sizeof(*plan->blocks));
    if (!plan->blocks)
        return -ENOMEM;
    for (size_t i = 0; i < plan->nblocks; i++)
        plan->blocks[i].blockno = first + i;
    struct rcollect rc = { st, txn, plan, first };
    int r = sfs_extent_scan(st, txn, view, ino, first, rcollect_cb, &rc);
    if (r)
        sfs_rplan_release(plan);
    return r;
}

/* Inline data against the first 8 bytes of its SHA-256. */
static int inline_check(const uint8_t *data, uint32_t lsize,
                        const uint8_t sum[8])
{
    uint8_t h[SFS_HASH_LEN];
    sfs_sha256(data, lsize, h);
    if (memcmp(h, sum, 8)) {
        sfs_log_corruption("inline data fails verification");
        return -EIO;
    }
    return 0;
}

int sfs_extent_inline_check(const struct sfs_extent *e)
{
    return inline_check(e->inline_data, e->lsize, e->inline_sum);
}

static int rblock_decode(struct sfs_rplan_block *b, struct sfs_codec_ctx *cc,
                         uint8_t *blockbuf)
{
    if (b->is_inline) {
        int rc = inline_check(b->inline_copy, b->lsize, b->inline_sum);
        if (!rc)
            memcpy(blockbuf, b->inline_copy, b->lsize);
        return rc;
    }
    return sfs_block_decode(cc, &b->raw, blockbuf);
}

int sfs_rplan_finish(struct sfs_rplan *plan, struct sfs_codec_ctx *cc,
                     void *out)
{
    uint8_t *blockbuf = NULL;
    uint8_t *dst = out;
    uint64_t pos = plan->off, end = plan->off + plan->len;
    int rc = 0;
    for (size_t i = 0; i < plan->nblocks && !rc; i++) {
        struct sfs_rplan_block *b = &plan->blocks[i];
        uint64_t bstart = b->blockno * plan->bs;
        uint64_t from = pos - bstart;
        uint64_t upto = end - bstart < plan->bs ? end - bstart : plan->bs;
        size_t n = (size_t)(upto - from);
        if (b->lsize == 0) {
            memset(dst, 0, n);
        } else {
            if (!blockbuf && !(blockbuf = malloc(plan->bs))) {
                rc = -ENOMEM;
                break;
            }
            rc = rblock_decode(b, cc, blockbuf);
            if (b->lsize < plan->bs)
                memset(blockbuf + b->lsize, 0, plan->bs - b->lsize);
            memcpy(dst, blockbuf + from, n);
        }
        dst += n;
        pos += n;
    }
    free(blockbuf);
    return rc;
}

void sfs_rplan_release(struct sfs_rplan *plan)
{
    for (size_t i = 0; i < plan->nblocks; i++) {
        free(plan->blocks[i].inline_copy);
        sfs_raw_block_release(&plan->blocks[i].raw);
    }
    free(plan->blocks);
    plan->blocks = NULL;
    plan->nblocks = 0;
}

/* ---- write plans ---- */

int sfs_wplan_init(struct sfs_store *st, uint64_t file_size, uint64_t off,
                   size_t len, struct sfs_wplan *plan)
{
    memset(plan, 0, sizeof(*plan));
    if (off + len > SFS_MAX_FILE_SIZE || off + len < off)
        return -EFBIG;
    plan->bs = st->super.block_size;
    plan->off = off;
    plan->len = len;
    plan->new_size = off + len > file_size ? off + len : file_size;
    if (!len)
        return 0;
    uint64_t first = off / plan->bs, last = (off + len - 1) / plan->bs;
    plan->nblocks = (size_t)(last - first + 1);
    plan->blocks = calloc(plan->nblocks, sizeof(*plan->blocks));
    plan->data = malloc(plan->nblocks * plan->bs);
    if (!plan->blocks || !plan->data) {
        sfs_wplan_release(plan);
        return -ENOMEM;
    }
    for (size_t i = 0; i < plan->nblocks; i++) {
        struct sfs_wplan_block *b = &plan->blocks[i];
        b->blockno = first + i;
        b->buf = plan->data + i * plan->bs;
        uint64_t bstart = b->blockno * plan->bs;
        uint64_t bend = plan->new_size - bstart < plan->bs
                            ? plan->new_size - bstart : plan->bs;
        b->len = (uint32_t)bend;
        /* Old bytes survive where this write does not cover them. */
        bool covers = off <= bstart && off + len >= bstart + bend;
        if (!covers && bstart < file_size)
            b->keep_from_old = (uint32_t)(file_size - bstart < plan->bs
                                              ? file_size - bstart : plan->bs);
        /* Bytes neither the old content nor this write fills are zeros. */
        if (!covers)
            memset(b->buf, 0, plan->bs);
    }
    return 0;
}

int sfs_wplan_init_whole(struct sfs_store *st, uint64_t off, const void *data,
                         size_t len, struct sfs_wplan *plan)
{
    memset(plan, 0, sizeof(*plan));
    uint32_t bs = st->super.block_size;
    if (off % bs || len % bs || !len)
        return -EINVAL;
    if (off + len > SFS_MAX_FILE_SIZE || off + len < off)
        return -EFBIG;
    plan->bs = bs;
    plan->off = off;
    plan->len = len;
    plan->new_size = off + len;
    plan->nblocks = len / bs;
    plan->blocks = calloc(plan->nblocks, sizeof(*plan->blocks));
    if (!plan->blocks)
        return -ENOMEM;
    for (size_t i = 0; i < plan->nblocks; i++) {
        struct sfs_wplan_block *b = &plan->blocks[i];
        b->blockno = off / bs + i;
        b->len = bs;
        /* Read only from here on: hashed, compressed, stored. */
        b->buf = (uint8_t *)data + i * bs;
        sfs_block_hash(b->buf, b->len, &b->pb);
    }
    return 0;
}

int sfs_wplan_fetch_old(struct sfs_store *st, MDB_txn *txn, uint64_t ino,
                        uint64_t file_size, struct sfs_wplan *plan)
{
    for (size_t i = 0; i < plan->nblocks; i++) {
        struct sfs_wplan_block *b = &plan->blocks[i];
        if (!b->keep_from_old)
            continue;
        int rc = sfs_rplan_collect(st, txn, SFS_VIEW_LIVE, ino, file_size,
                                   b->blockno * plan->bs, b->keep_from_old,
                                   &b->old);
        if (rc)
            return rc;
    }
    return 0;
}

int sfs_wplan_fill(struct sfs_wplan *plan, struct sfs_codec_ctx *cc,
                   const void *data)
{
    const uint8_t *src = data;
    for (size_t i = 0; i < plan->nblocks; i++) {
        struct sfs_wplan_block *b = &plan->blocks[i];
        if (b->keep_from_old && b->old.len) {
            int rc = sfs_rplan_finish(&b->old, cc, b->buf);
            if (rc)
                return rc;
        }
        uint64_t bstart = b->blockno * plan->bs;
        uint64_t from = plan->off > bstart ? plan->off - bstart : 0;
        uint64_t end = plan->off + plan->len - bstart;
        if (end > plan->bs)
            end = plan->bs;
        memcpy(b->buf + from, src + (bstart + from - plan->off),
               (size_t)(end - from));
        sfs_block_hash(b->buf, b->len, &b->pb);
    }
    return 0;
}

int sfs_wplan_apply(struct sfs_store *st, MDB_txn *txn, uint64_t ino,
                    struct sfs_wplan *plan)
{
    int again = 0;
    for (size_t i = 0; i < plan->nblocks; i++) {
        struct sfs_wplan_block *b = &plan->blocks[i];
        if (b->applied)
            continue;
        struct sfs_extent old;
        int rc = sfs_extent_get(st, txn, SFS_VIEW_LIVE, ino, b->blockno, &old);
        if (rc)
            return rc;
        /* Only storing a new block takes a blob id: that tells a new
         * block from a deduplicated one. */
        uint64_t next_blob = st->state.next_blob;
        rc = sfs_extent_set_w(st, txn, ino, b->blockno, &b->pb, b->buf,
                              plan->reserved);
        if (rc == -EAGAIN) {
            again = 1;
            continue;
        }
        if (rc)
            return rc;
        b->applied = true;
        plan->units_delta -= (old.lsize + 511) / 512;
        bool zero = sfs_is_zero(b->buf, b->len);
        if (!zero)
            plan->units_delta += (b->len + 511) / 512;
        b->stored_as = zero ? SFS_STORED_HOLE
                       : b->len <= SFS_INLINE_MAX ? SFS_STORED_INLINE
                       : st->state.next_blob != next_blob ? SFS_STORED_NEW
                                                          : SFS_STORED_DEDUP;
    }
    return again ? -EAGAIN : 0;
}

void sfs_wplan_tally(const struct sfs_wplan *plan, struct sfs_wplan_tally *t)
{
    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < plan->nblocks; i++) {
        const struct sfs_wplan_block *b = &plan->blocks[i];
        switch (b->stored_as) {
        case SFS_STORED_HOLE:
            t->zero_bytes += b->len;
            break;
        case SFS_STORED_INLINE:
            t->inline_bytes += b->len;
            break;
        case SFS_STORED_DEDUP:
            t->dedup_blocks++;
            t->dedup_bytes += b->len;
            break;
        case SFS_STORED_NEW:
            t->new_blocks++;
            t->new_logical += b->len;
            t->new_stored += b->pb.csize;
            t->new_compressed += b->pb.codec != SFS_CODEC_NONE;
            break;
        }
    }
}

int sfs_wplan_compress(struct sfs_store *st, struct sfs_codec_ctx *cc,
                       struct sfs_wplan *plan)
{
    size_t bound = sfs_compress_bound(plan->bs);
    for (size_t i = 0; i < plan->nblocks; i++) {
        struct sfs_wplan_block *b = &plan->blocks[i];
        if (b->applied || b->pb.compressed_tried)
            continue;
        /* Zeros are stored as a hole, a short tail inline: nothing to
         * compress (sfs_extent_set_w). */
        if (b->len <= SFS_INLINE_MAX || sfs_is_zero(b->buf, b->len)) {
            b->pb.compressed_tried = true;
            continue;
        }
        if (!plan->cdata && !(plan->cdata = malloc(plan->nblocks * bound)))
            return -ENOMEM;
        int rc = sfs_block_compress(st, cc, b->buf, &b->pb,
                                    plan->cdata + i * bound, bound);
        if (rc)
            return rc;
    }
    return 0;
}

int sfs_wplan_probe(struct sfs_store *st, MDB_txn *txn, struct sfs_wplan *plan)
{
    for (size_t i = 0; i < plan->nblocks; i++) {
        struct sfs_wplan_block *b = &plan->blocks[i];
        if (b->pb.compressed_tried)
            continue;
        if (b->len <= SFS_INLINE_MAX || sfs_is_zero(b->buf, b->len)) {
            b->pb.compressed_tried = true;
            continue;
        }
        int rc = sfs_block_exists(st, txn, b->pb.ref.hash);
        if (rc == 0)
            b->pb.compressed_tried = true;
        else if (rc != -ENOENT)
            return rc;
    }
    return 0;
}

void sfs_wplan_reset_applied(struct sfs_wplan *plan)
{
    for (size_t i = 0; i < plan->nblocks; i++) {
        plan->blocks[i].applied = false;
        plan->blocks[i].stored_as = SFS_STORED_NOTHING;
    }
    plan->units_delta = 0;
}

void sfs_wplan_release(struct sfs_wplan *plan)
{
    for (size_t i = 0; i < plan->nblocks; i++) {
        sfs_rplan_release(&plan->blocks[i].old);
        sfs_prepared_block_release(&plan->blocks[i].pb);
    }
    free(plan->blocks);
    free(plan->data);
    free(plan->cdata);
    plan->blocks = NULL;
    plan->data = plan->cdata = NULL;
    plan->nblocks = 0;
}

/* ---- one-shot helpers ---- */

int sfs_file_read(struct sfs_store *st, MDB_txn *txn, struct sfs_codec_ctx *cc,
                  uint64_t view, uint64_t ino, uint64_t off, size_t len,
                  void *out, size_t *got)
{
    struct sfs_inode inode;
    int rc = sfs_inode_get(st, txn, view, ino, &inode);
    if (rc)
        return rc;
    struct sfs_rplan plan;
    rc = sfs_rplan_collect(st, txn, view, ino, inode.size, off, len, &plan);
    if (rc)
        return rc;
    rc = sfs_rplan_finish(&plan, cc, out);
    *got = plan.len;
    sfs_rplan_release(&plan);
    return rc;
}

static void now_ts(int64_t *sec, uint32_t *nsec)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *sec = ts.tv_sec;
    *nsec = (uint32_t)ts.tv_nsec;
}

struct count_arg { uint64_t units; };

static int count_cb(void *a, uint64_t blockno, const struct sfs_extent *e)
{
    (void)blockno;
    ((struct count_arg *)a)->units += (e->lsize + 511) / 512;
    return 0;
}

int sfs_file_write_w(struct sfs_store *st, MDB_txn *txn,
                     struct sfs_codec_ctx *cc, uint64_t ino, uint64_t off,
                     const void *data, size_t len)
{
    struct sfs_inode inode;
    int rc = sfs_inode_get(st, txn, SFS_VIEW_LIVE, ino, &inode);
    if (rc)
        return rc;
    struct sfs_wplan plan;
    rc = sfs_wplan_init(st, inode.size, off, len, &plan);
    if (rc)
        return rc;
    rc = sfs_wplan_fetch_old(st, txn, ino, inode.size, &plan);
    if (!rc)
        rc = sfs_wplan_fill(&plan, cc, data);
    if (!rc)
        rc = sfs_wplan_apply(st, txn, ino, &plan);
    if (rc == -EAGAIN) {
        rc = sfs_wplan_compress(st, cc, &plan);
        if (!rc)
            rc = sfs_wplan_apply(st, txn, ino, &plan);
    }
    if (!rc) {
        inode.size = plan.new_size;
        inode.blocks += (uint64_t)plan.units_delta;
        now_ts(&inode.mtime_sec, &inode.mtime_nsec);
        inode.ctime_sec = inode.mtime_sec;
        inode.ctime_nsec = inode.mtime_nsec;
        rc = sfs_inode_put_w(st, txn, &inode);
    }
    sfs_wplan_release(&plan);
    return rc;
}

int sfs_file_truncate_w(struct sfs_store *st, MDB_txn *txn,
                        struct sfs_codec_ctx *cc, struct sfs_inode *inode,
                        uint64_t size)
{
    if (size > SFS_MAX_FILE_SIZE)
        return -EFBIG;
    uint32_t bs = st->super.block_size;
    if (size < inode->size) {
        uint64_t keep = (size + bs - 1) / bs;
        uint64_t units = 0;
        struct count_arg ca = { 0 };
        int rc = sfs_extent_scan(st, txn, SFS_VIEW_LIVE, inode->ino, keep,
                                 count_cb, &ca);
        if (rc)
            return rc;
        rc = sfs_extents_truncate_w(st, txn, inode->ino, keep);
        if (rc)
            return rc;
        inode->blocks -= ca.units;
        /* Trim the new last block so that growing again reads zeros. */
        if (size % bs) {
            struct sfs_extent e;
            uint64_t last = size / bs;
            rc = sfs_extent_get(st, txn, SFS_VIEW_LIVE, inode->ino, last, &e);
            if (rc)
                return rc;
            if (e.present && e.lsize > size % bs) {
                uint8_t *buf = malloc(bs);
                size_t got;
                if (!buf)
                    return -ENOMEM;
                rc = sfs_file_read(st, txn, cc, SFS_VIEW_LIVE, inode->ino,
                                   last * bs, size % bs, buf, &got);
                struct sfs_prepared_block pb = { 0 };
                if (!rc) {
                    sfs_block_hash(buf, (uint32_t)(size % bs), &pb);
                    units = (e.lsize + 511) / 512;
                    rc = sfs_block_compress(st, cc, buf, &pb, NULL, 0);
                }
                if (!rc)
                    rc = sfs_extent_set_w(st, txn, inode->ino, last, &pb, buf,
                                          true);
                if (!rc) {
                    inode->blocks -= units;
                    if (!sfs_is_zero(buf, size % bs))
                        inode->blocks += (size % bs + 511) / 512;
                }
                sfs_prepared_block_release(&pb);
                free(buf);
                if (rc)
                    return rc;
            }
        }
    }
    inode->size = size;
    return 0;
}
