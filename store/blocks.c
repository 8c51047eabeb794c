/*
 * blocks.c - content-addressed blocks: hashing, compression, dedup and
 * verified reads.
 *
 * THEORY
 *
 * A block is addressed by the SHA-256 of its plaintext.  Two tables:
 *
 *   dedup  sha256  -> {blob_id, refcount, csize, lsize, codec}   (~40 B)
 *   blobs  blob_id -> stored bytes (compressed or raw)
 *
 * Payloads are write-once: a blob is appended under a fresh, growing id
 * (MDB_APPEND) and deleted only when its last reference goes.  Everything
 * that changes (the refcount) is in the small dedup record, so a reference
 * update never rewrites a large value (LMDB would copy its whole overflow
 * run).  Blob ids are never reused.
 *
 * The write path hashes first, outside any transaction; only a block that
 * is not stored yet is compressed (sfs_block_ref_w answers -EAGAIN for a
 * new block that was not compressed, so callers compress outside the
 * transaction and call again).  A compressed copy is kept only when it
 * saves at least one 4 KiB page and 12.5% of the block, as ZFS does;
 * otherwise the block is stored raw.
 *
 * Every read decompresses and then verifies the SHA-256 of the plaintext:
 * a mismatch (a damaged blob, a damaged dedup record) is -EIO and a log
 * line, never wrong data.
 *
 * Space counters in st->state: blob_count, phys_bytes (sum of csize),
 * stored_logical (sum of lsize over blobs) and ref_logical (sum of lsize
 * over references) change in the same transaction as the tables.
 *
 * THEORY: THE LEDGER (what only snapshots hold)
 *
 * A snapshot reserve and its autodelete need, at any moment and cheaply,
 * the space that only snapshots hold: what deleting every snapshot would
 * free.  That is the history tables (hist, dead, deadstat: their pages
 * are counted by LMDB) and the blocks that no live version refers to any
 * more.  For those, each dedup record counts, besides all its references,
 * its live ones (`live`).  Every reference is taken by a live version (a
 * write, a restore, a receive, a clone: history is never written but by
 * moving a live version there), so references change in three ways:
 *   - taken (sfs_block_ref_w, sfs_block_addref_w): live + 1;
 *   - the live version moves to history, a snapshot still seeing it
 *     (sfs_block_to_history_w): live - 1, the reference stays;
 *   - dropped, by a live version freed (replaced with no snapshot seeing
 *     it) or a history version freed (its last snapshot deleted)
 *     (sfs_block_unref_w): the reference goes, and live - 1 if live.
 * A block with references but no live ones is held only by snapshots;
 * st->state.snap_blob_bytes sums what those occupy (sfs_blob_bytes),
 * moved exactly when a block's live count reaches 0 with references
 * left, or comes back from 0, or such a block is freed.  All of it
 * changes in the transaction of the change, so it is as exact and as
 * durable as the refcounts, and fsck checks it.  Stores made before the
 * ledger have no live counts: sfs_ledger_count counts them once (the
 * daemon does at mount) and sets SFS_STATE_LEDGER; until then the
 * snapshot space reads as 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "internal.h"

struct sfs_codec_ctx {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    int level; /* 0: the volume's (sfs_codec_set_level) */
};

void sfs_codec_set_level(struct sfs_codec_ctx *c, int level)
{
    c->level = level;
}

struct sfs_codec_ctx *sfs_codec_ctx_new(void)
{
    struct sfs_codec_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->cctx = ZSTD_createCCtx();
    c->dctx = ZSTD_createDCtx();
    if (!c->cctx || !c->dctx) {
        sfs_codec_ctx_free(c);
        return NULL;
    }
    return c;
}

void sfs_codec_ctx_free(struct sfs_codec_ctx *c)
{
    if (!c)
        return;
    ZSTD_freeCCtx(c->cctx);
    ZSTD_freeDCtx(c->dctx);
    free(c);
}

void sfs_sha256(const void *data, size_t len, uint8_t out[SFS_HASH_LEN])
{
    unsigned int n = SFS_HASH_LEN;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

bool sfs_is_zero(const void *data, size_t len)
{
    const uint8_t *p = data;
    if (len == 0)
        return true;
    if (p[0])
        return false;
    /* p[0] is zero: compare the rest against itself shifted by one. */
    return memcmp(p, p + 1, len - 1) == 0;
}

void sfs_block_hash(const void *plain, uint32_t len,
                    struct sfs_prepared_block *pb)
{
    memset(pb, 0, sizeof(*pb));
    sfs_sha256(plain, len, pb->ref.hash);
    pb->ref.lsize = len;
    pb->codec = SFS_CODEC_NONE;
    pb->data = plain;
    pb->csize = len;
}

size_t sfs_compress_bound(uint32_t len)
{
    return ZSTD_compressBound(len);
}

/*
 * Early abort: compress 4 KiB sampled from 8 places across the block; data
 * whose sample does not shrink by 10% will not shrink by 12.5% as a whole
 * (random data, already compressed media), and is stored raw without
 * spending a full compression on it.  btrfs and ZFS use similar tests.
 */
bool sfs_looks_incompressible(struct sfs_codec_ctx *cc, const void *data,
                              uint32_t len, int level)
{
    const uint8_t *p = data;
    enum { PIECES = 8, PIECE = 512 };
    if (len < 4 * PIECES * PIECE)
        return false;
    uint8_t sample[PIECES * PIECE], out[PIECES * PIECE + 512];
    for (int i = 0; i < PIECES; i++)
        memcpy(sample + i * PIECE, p + (size_t)i * (len / PIECES), PIECE);
    size_t n = ZSTD_compressCCtx(cc->cctx, out, sizeof(out), sample,
                                 sizeof(sample), level);
    return ZSTD_isError(n) || n > sizeof(sample) * 9 / 10;
}

int sfs_block_compress(struct sfs_store *st, struct sfs_codec_ctx *cc,
                       const void *plain, struct sfs_prepared_block *pb,
                       void *out, size_t outcap)
{
    pb->compressed_tried = true;
    if (st->super.codec != SFS_CODEC_ZSTD)
        return 0;
    uint32_t len = pb->ref.lsize;
    if (len <= 4096)
        return 0;
    /* Worth keeping only if it saves a page and 12.5%. */
    size_t budget = len - (len / 8 > 4096 ? len / 8 : 4096);
    int level = cc->level ? cc->level : st->super.codec_level;
    if (sfs_looks_incompressible(cc, plain, len, level))
        return 0;
    void *buf = out;
    if (!buf) {
        outcap = ZSTD_compressBound(len);
        buf = malloc(outcap);
        if (!buf)
            return -ENOMEM;
    }
    size_t n = ZSTD_compressCCtx(cc->cctx, buf, outcap, plain, len, level);
    if (ZSTD_isError(n) || n > budget) {
        if (!out)
            free(buf);
        return 0;
    }
    pb->buf = out ? NULL : buf; /* owned only when we allocated it */
    pb->data = buf;
    pb->csize = (uint32_t)n;
    pb->codec = SFS_CODEC_ZSTD;
    return 0;
}

void sfs_prepared_block_release(struct sfs_prepared_block *pb)
{
    free(pb->buf);
    pb->buf = NULL;
}

static int dedup_get(struct sfs_store *st, MDB_txn *txn,
                     const uint8_t hash[SFS_HASH_LEN], struct sfs_dedup_rec *d)
{
    MDB_val k = { SFS_HASH_LEN, (void *)hash }, v;
    int rc = mdb_get(txn, st->db_dedup, &k, &v);
    if (rc)
        return sfs_mdb_errno(rc);
    if (v.mv_size != sizeof(*d)) {
        sfs_log_corruption("dedup record of %zu bytes", v.mv_size);
        return -EIO;
    }
    memcpy(d, v.mv_data, sizeof(*d));
    return 0;
}

static int dedup_put(struct sfs_store *st, MDB_txn *txn,
                     const uint8_t hash[SFS_HASH_LEN],
                     const struct sfs_dedup_rec *d)
{
    MDB_val k = { SFS_HASH_LEN, (void *)hash };
    MDB_val v = { sizeof(*d), (void *)d };
    return sfs_mdb_errno(mdb_put(txn, st->db_dedup, &k, &v, 0));
}

int sfs_block_exists(struct sfs_store *st, MDB_txn *txn,
                     const uint8_t hash[SFS_HASH_LEN])
{
    struct sfs_dedup_rec d;
    return dedup_get(st, txn, hash, &d);
}

int sfs_block_info(struct sfs_store *st, MDB_txn *txn,
                   const uint8_t hash[SFS_HASH_LEN], struct sfs_dedup_rec *out)
{
    return dedup_get(st, txn, hash, out);
}

/* ---- the ledger (THEORY above) ---- */

uint64_t sfs_blob_bytes(uint32_t csize)
{
    /* LMDB keeps a value over about half a page on pages of its own,
     * after a 16-byte header; smaller ones share leaf pages. */
    if (csize < 2048)
        return csize + 16;
    return ((uint64_t)csize + 16 + 4095) / 4096 * 4096;
}

static void ledger_add(struct sfs_store *st, const struct sfs_dedup_rec *d)
{
    st->state.snap_blob_bytes += sfs_blob_bytes(d->csize);
}

static void ledger_sub(struct sfs_store *st, const struct sfs_dedup_rec *d)
{
    uint64_t b = sfs_blob_bytes(d->csize);
    st->state.snap_blob_bytes = st->state.snap_blob_bytes > b
                                    ? st->state.snap_blob_bytes - b : 0;
}

/* One more live reference in D (which has references). */
static void live_taken(struct sfs_store *st, struct sfs_dedup_rec *d)
{
    if (d->live == 0 && d->refcount > 0)
        ledger_sub(st, d); /* back from the snapshots only */
    d->live++;
}

/* Store a new blob and its dedup record with one reference. */
static int block_store_new(struct sfs_store *st, MDB_txn *txn,
                           const struct sfs_prepared_block *pb, bool allow_slop)
{
    uint64_t avail;
    int rc = sfs_space_left(st, txn, allow_slop ? SFS_SPACE_RESERVED
                                                : SFS_SPACE_ORDINARY, &avail);
    if (rc)
        return rc;
    /* A blob costs its bytes rounded up to pages, plus a header page. */
    if ((uint64_t)pb->csize + 8192 > avail)
        return -ENOSPC;

    uint64_t id = st->state.next_blob;
    uint8_t kb[8];
    sfs_put_be64(kb, id);
    MDB_val k = { 8, kb }, v = { pb->csize, (void *)pb->data };
    rc = sfs_mdb_errno(mdb_put(txn, st->db_blobs, &k, &v, MDB_APPEND));
    if (rc)
        return rc;
    struct sfs_dedup_rec d = { .blob_id = id, .refcount = 1,
                               .csize = pb->csize, .lsize = pb->ref.lsize,
                               .codec = pb->codec, .live = 1 };
    rc = dedup_put(st, txn, pb->ref.hash, &d);
    if (rc)
        return rc;
    st->state.next_blob++;
    st->state.blob_count++;
    st->state.phys_bytes += pb->csize;
    st->state.stored_logical += pb->ref.lsize;
    st->state.ref_logical += pb->ref.lsize;
    return 0;
}

int sfs_block_ref_w(struct sfs_store *st, MDB_txn *txn,
                    struct sfs_prepared_block *pb, bool allow_slop)
{
    struct sfs_dedup_rec d;
    int rc = dedup_get(st, txn, pb->ref.hash, &d);
    if (rc == 0) {
        if (d.lsize != pb->ref.lsize) {
            sfs_log_corruption("dedup record size %u for a %u-byte block",
                               d.lsize, pb->ref.lsize);
            return -EIO;
        }
        live_taken(st, &d);
        d.refcount++;
        rc = dedup_put(st, txn, pb->ref.hash, &d);
        if (!rc)
            st->state.ref_logical += d.lsize;
        return rc;
    }
    if (rc != -ENOENT)
        return rc;
    if (!pb->compressed_tried && st->super.codec != SFS_CODEC_NONE)
        return -EAGAIN;
    return block_store_new(st, txn, pb, allow_slop);
}

/* The dedup record of a block that a record refers to: its absence is
 * corruption (-EIO, reported), not a missing key. */
static int referenced_block(struct sfs_store *st, MDB_txn *txn,
                            const uint8_t hash[SFS_HASH_LEN],
                            struct sfs_dedup_rec *d)
{
    int rc = dedup_get(st, txn, hash, d);
    if (rc == -ENOENT) {
        sfs_log_corruption("reference to a missing block");
        return -EIO;
    }
    return rc;
}

int sfs_block_addref_w(struct sfs_store *st, MDB_txn *txn,
                       const uint8_t hash[SFS_HASH_LEN])
{
    struct sfs_dedup_rec d;
    int rc = referenced_block(st, txn, hash, &d);
    if (rc)
        return rc;
    live_taken(st, &d);
    d.refcount++;
    rc = dedup_put(st, txn, hash, &d);
    if (!rc)
        st->state.ref_logical += d.lsize;
    return rc;
}

int sfs_block_put_raw_w(struct sfs_store *st, MDB_txn *txn,
                        struct sfs_codec_ctx *cc,
                        const struct sfs_raw_block *raw, bool allow_slop)
{
    int rc = sfs_block_exists(st, txn, raw->hash);
    if (rc == 0)
        return sfs_block_addref_w(st, txn, raw->hash);
    if (rc != -ENOENT)
        return rc;
    /* Never store bytes that do not decode to their hash. */
    if (!raw->verified) {
        void *plain = malloc(raw->lsize ? raw->lsize : 1);
        if (!plain)
            return -ENOMEM;
        rc = sfs_block_decode(cc, raw, plain);
        free(plain);
        if (rc)
            return rc;
    }
    struct sfs_prepared_block pb = { .codec = raw->codec, .data = raw->bytes,
                                     .csize = raw->csize,
                                     .compressed_tried = true };
    memcpy(pb.ref.hash, raw->hash, SFS_HASH_LEN);
    pb.ref.lsize = raw->lsize;
    return block_store_new(st, txn, &pb, allow_slop);
}

int sfs_block_to_history_w(struct sfs_store *st, MDB_txn *txn,
                           const uint8_t hash[SFS_HASH_LEN])
{
    struct sfs_dedup_rec d;
    int rc = referenced_block(st, txn, hash, &d);
    if (rc || d.live == 0) /* 0: a store whose ledger is not counted yet */
        return rc;
    if (--d.live == 0)
        ledger_add(st, &d); /* only snapshots hold it now */
    return dedup_put(st, txn, hash, &d);
}

int sfs_block_unref_w(struct sfs_store *st, MDB_txn *txn,
                      const uint8_t hash[SFS_HASH_LEN], bool live)
{
    struct sfs_dedup_rec d;
    int rc = referenced_block(st, txn, hash, &d);
    if (rc)
        return rc;
    st->state.ref_logical -= d.lsize;
    bool snapshots_only = d.live == 0;
    if (live && d.live)
        d.live--;
    if (d.refcount > 1) {
        d.refcount--;
        if (!snapshots_only && d.live == 0)
            ledger_add(st, &d);
        return dedup_put(st, txn, hash, &d);
    }
    if (snapshots_only)
        ledger_sub(st, &d);
    MDB_val k = { SFS_HASH_LEN, (void *)hash };
    rc = sfs_mdb_errno(mdb_del(txn, st->db_dedup, &k, NULL));
    if (rc)
        return rc;
    uint8_t kb[8];
    sfs_put_be64(kb, d.blob_id);
    MDB_val bk = { 8, kb };
    rc = mdb_del(txn, st->db_blobs, &bk, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return sfs_mdb_errno(rc);
    st->state.blob_count--;
    st->state.phys_bytes -= d.csize;
    st->state.stored_logical -= d.lsize;
    return 0;
}

void sfs_block_touch(struct sfs_store *st, MDB_txn *txn,
                     const uint8_t hash[SFS_HASH_LEN], bool bytes)
{
    struct sfs_dedup_rec d;
    if (dedup_get(st, txn, hash, &d) || !bytes)
        return;
    uint8_t kb[8];
    sfs_put_be64(kb, d.blob_id);
    MDB_val k = { 8, kb }, v;
    if (mdb_get(txn, st->db_blobs, &k, &v) || !v.mv_size)
        return;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)v.mv_data & ~(uintptr_t)(page - 1);
    uintptr_t end = (uintptr_t)v.mv_data + v.mv_size;
    madvise((void *)start, end - start, MADV_WILLNEED);
}

int sfs_block_fetch(struct sfs_store *st, MDB_txn *txn,
                    const uint8_t hash[SFS_HASH_LEN], struct sfs_raw_block *raw)
{
    struct sfs_dedup_rec d;
    memset(raw, 0, sizeof(*raw));
    int rc = dedup_get(st, txn, hash, &d);
    if (rc == -ENOENT) {
        sfs_log_corruption("extent refers to a block that is not stored");
        return -EIO;
    }
    if (rc)
        return rc;
    uint8_t kb[8];
    sfs_put_be64(kb, d.blob_id);
    MDB_val k = { 8, kb }, v;
    rc = mdb_get(txn, st->db_blobs, &k, &v);
    if (rc == MDB_NOTFOUND) {
        sfs_log_corruption("blob %llu is missing",
                           (unsigned long long)d.blob_id);
        return -EIO;
    }
    if (rc)
        return sfs_mdb_errno(rc);
    raw->bytes = malloc(v.mv_size ? v.mv_size : 1);
    if (!raw->bytes)
        return -ENOMEM;
    memcpy(raw->bytes, v.mv_data, v.mv_size);
    raw->csize = (uint32_t)v.mv_size;
    raw->lsize = d.lsize;
    raw->codec = d.codec;
    memcpy(raw->hash, hash, SFS_HASH_LEN);
    return 0;
}

int sfs_block_decode(struct sfs_codec_ctx *cc, const struct sfs_raw_block *raw,
                     void *out)
{
    if (raw->codec == SFS_CODEC_ZSTD) {
        size_t n = ZSTD_decompressDCtx(cc->dctx, out, raw->lsize, raw->bytes,
                                       raw->csize);
        if (ZSTD_isError(n) || n != raw->lsize)
            goto bad;
    } else if (raw->codec == SFS_CODEC_NONE && raw->csize == raw->lsize) {
        memcpy(out, raw->bytes, raw->lsize);
    } else {
        goto bad;
    }
    uint8_t h[SFS_HASH_LEN];
    sfs_sha256(out, raw->lsize, h);
    if (memcmp(h, raw->hash, SFS_HASH_LEN))
        goto bad;
    return 0;
bad:
    sfs_log_corruption("block %02x%02x%02x%02x... fails verification",
                       raw->hash[0], raw->hash[1], raw->hash[2], raw->hash[3]);
    return -EIO;
}

int sfs_block_verify(struct sfs_codec_ctx *cc, struct sfs_raw_block *raw,
                     void *out)
{
    int rc = sfs_block_decode(cc, raw, out);
    raw->verified = rc == 0;
    return rc;
}

void sfs_raw_block_release(struct sfs_raw_block *raw)
{
    free(raw->bytes);
    raw->bytes = NULL;
}

/* ---- counting the ledger of an older store ---- */

#define LEDGER_BATCH 50000

/* Apply FN to up to LEDGER_BATCH records of table DBI from *POS on (its
 * key, empty at the start), in one transaction, and commit.  *POS moves
 * past them; 1 while records remain, 0 at the end, or a negative errno. */
typedef int (*ledger_fn)(struct sfs_store *st, MDB_txn *txn,
                         MDB_cursor *c, MDB_val *k, MDB_val *v);

static int ledger_batch(struct sfs_store *st, MDB_dbi dbi, ledger_fn fn,
                        size_t batch, uint8_t *pos, size_t *plen)
{
    MDB_txn *txn;
    MDB_cursor *c;
    int rc = sfs_txn_begin(st, NULL, true, &txn);
    if (rc)
        return rc;
    rc = sfs_mdb_errno(mdb_cursor_open(txn, dbi, &c));
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    MDB_val k = { *plen, pos }, v;
    int mrc = mdb_cursor_get(c, &k, &v, *plen ? MDB_SET_RANGE : MDB_FIRST);
    if (!mrc && *plen && k.mv_size == *plen && !memcmp(k.mv_data, pos, *plen))
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT); /* done last time */
    int n = 0;
    for (; !mrc && !rc && (size_t)n < batch; n++) {
        rc = fn(st, txn, c, &k, &v);
        if (rc)
            break;
        memcpy(pos, k.mv_data, k.mv_size);
        *plen = k.mv_size;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (!rc && mrc && mrc != MDB_NOTFOUND)
        rc = sfs_mdb_errno(mrc);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = sfs_txn_commit(st, txn);
    return rc ? rc : mrc == MDB_NOTFOUND ? 0 : 1;
}

static int ledger_reset(struct sfs_store *st, MDB_txn *txn, MDB_cursor *c,
                        MDB_val *k, MDB_val *v)
{
    struct sfs_dedup_rec d;
    if (v->mv_size != sizeof(d))
        return 0; /* fsck's to report */
    memcpy(&d, v->mv_data, sizeof(d));
    d.live = 0;
    MDB_val nv = { sizeof(d), &d };
    return sfs_mdb_errno(mdb_cursor_put(c, k, &nv, MDB_CURRENT));
}

static int ledger_count_live(struct sfs_store *st, MDB_txn *txn, MDB_cursor *c,
                             MDB_val *k, MDB_val *v)
{
    MDB_val p = sfs_vpayload(v);
    uint8_t hash[SFS_HASH_LEN];
    struct sfs_dedup_rec d;
    if (!sfs_rec_blockref(k, &p, hash) || dedup_get(st, txn, hash, &d))
        return 0; /* a dangling reference: fsck's to report */
    d.live++;
    return dedup_put(st, txn, hash, &d);
}

/* Count in the block of dedup record V if only snapshots hold it. */
static void ledger_sum(struct sfs_store *st, const MDB_val *v)
{
    struct sfs_dedup_rec d;
    if (v->mv_size == sizeof(d)) {
        memcpy(&d, v->mv_data, sizeof(d));
        if (d.refcount && !d.live)
            ledger_add(st, &d);
    }
}

struct ledger_run {
    size_t batch;
    int (*after_commit)(void *arg);
    void *arg;
};

/* Run FN over the whole of table DBI, a batch per transaction. */
static int ledger_pass(struct sfs_store *st, MDB_dbi dbi, ledger_fn fn,
                       const struct ledger_run *run)
{
    uint8_t pos[SFS_KEY_MAX + 16];
    size_t plen = 0;
    int rc;
    do {
        rc = ledger_batch(st, dbi, fn, run->batch, pos, &plen);
        if (rc >= 0 && run->after_commit && run->after_commit(run->arg))
            return -ECANCELED;
    } while (rc == 1);
    return rc;
}

int sfs_ledger_count(struct sfs_store *st)
{
    return sfs_ledger_count_batched(st, LEDGER_BATCH, NULL, NULL);
}

int sfs_ledger_count_batched(struct sfs_store *st, size_t batch,
                             int (*after_commit)(void *arg), void *arg)
{
    if (st->state.flags & SFS_STATE_LEDGER)
        return 0;
    struct ledger_run run = { batch ? batch : LEDGER_BATCH, after_commit,
                              arg };
    int rc = ledger_pass(st, st->db_dedup, ledger_reset, &run);
    if (!rc)
        rc = ledger_pass(st, st->db_live, ledger_count_live, &run);
    if (rc)
        return rc;
    /* The sum and the flag in one transaction (which reloads st->state). */
    MDB_txn *txn;
    rc = sfs_txn_begin(st, NULL, true, &txn);
    if (rc)
        return rc;
    st->state.snap_blob_bytes = 0;
    MDB_cursor *c;
    rc = sfs_mdb_errno(mdb_cursor_open(txn, st->db_dedup, &c));
    if (!rc) {
        MDB_val k, v;
        int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        for (; !mrc; mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
            ledger_sum(st, &v);
        mdb_cursor_close(c);
        if (mrc != MDB_NOTFOUND)
            rc = sfs_mdb_errno(mrc);
    }
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    st->state.flags |= SFS_STATE_LEDGER;
    rc = sfs_txn_commit(st, txn);
    if (!rc && after_commit && after_commit(arg))
        return -ECANCELED;
    return rc ? rc : 1;
}

int sfs_snap_space(struct sfs_store *st, MDB_txn *txn, uint64_t *out)
{
    *out = 0;
    if (!(st->state.flags & SFS_STATE_LEDGER))
        return 0;
    MDB_dbi dbis[] = { st->db_hist, st->db_dead, st->db_deadstat };
    uint64_t bytes = st->state.snap_blob_bytes;
    for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
        MDB_stat ms;
        int rc = mdb_stat(txn, dbis[i], &ms);
        if (rc)
            return sfs_mdb_errno(rc);
        bytes += (uint64_t)ms.ms_psize * (ms.ms_branch_pages +
                                          ms.ms_leaf_pages +
                                          ms.ms_overflow_pages);
    }
    *out = bytes;
    return 0;
}
