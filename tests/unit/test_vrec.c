/*
 * test_vrec.c - versioned records, snapshots and the deadlist, checked
 * against a simple in-memory model.
 *
 * The model is the obvious one: a map key -> value for the live tree, and
 * for every snapshot a frozen copy of that map.  Random sequences of puts,
 * deletes, snapshot takes and snapshot deletes run against both; after
 * each step every view (live and each snapshot) must read exactly as the
 * model says, key by key and by prefix scan, and the bookkeeping must add
 * up: block refcounts equal the versions that refer to them, the ledger
 * of blocks only snapshots hold is exactly what deleting every snapshot
 * frees, the deadlist matches hist row for row, and deleting every
 * snapshot and every record frees every byte.
 *
 * SOAK=1 runs many more and longer sequences.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "check.h"
#include "testvol.h"
#include "../../store/internal.h"

#define NINO 3
#define NBLK 12
#define NKEYS (NINO * NBLK)
#define NPAT 10 /* value patterns; 0 means absent */
#define MAXSNAP 64
#define BS 4096

struct model_snap {
    uint64_t epoch;
    int vals[NKEYS];
};

static int live_vals[NKEYS];
static struct model_snap snaps[MAXSNAP];
static int nsnaps;
static struct sfs_codec_ctx *cc;

static void pattern(int pat, uint8_t *buf)
{
    /* Even patterns compress, odd ones do not. */
    uint32_t x = (uint32_t)pat * 2654435761u;
    for (int i = 0; i < BS; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (pat & 1) ? (uint8_t)(x >> 16) : (uint8_t)(pat + (i / 512));
    }
}

static void pattern_hash(int pat, uint8_t hash[SFS_HASH_LEN])
{
    uint8_t buf[BS];
    pattern(pat, buf);
    sfs_sha256(buf, BS, hash);
}

static uint64_t key_ino(int k) { return 100 + (uint64_t)(k / NBLK); }
static uint64_t key_blk(int k) { return (uint64_t)(k % NBLK); }

static void do_put(struct sfs_store *st, MDB_txn *txn, int k, int pat)
{
    uint8_t buf[BS];
    pattern(pat, buf);
    struct sfs_prepared_block pb;
    sfs_block_hash(buf, BS, &pb);
    int rc = sfs_extent_set_w(st, txn, key_ino(k), key_blk(k), &pb, buf, false);
    if (rc == -EAGAIN) {
        CHECK_RC(sfs_block_compress(st, cc, buf, &pb, NULL, 0));
        rc = sfs_extent_set_w(st, txn, key_ino(k), key_blk(k), &pb, buf, false);
    }
    CHECK_RC(rc);
    sfs_prepared_block_release(&pb);
    live_vals[k] = pat;
}

static void do_del(struct sfs_store *st, MDB_txn *txn, int k)
{
    CHECK_RC(sfs_extent_punch_w(st, txn, key_ino(k), key_blk(k)));
    live_vals[k] = 0;
}

static void check_view(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                       const int *vals)
{
    for (int k = 0; k < NKEYS; k++) {
        struct sfs_extent e;
        CHECK_RC(sfs_extent_get(st, txn, view, key_ino(k), key_blk(k), &e));
        CHECK(e.present == (vals[k] != 0), "view %llu key %d present %d want %d",
              (unsigned long long)view, k, e.present, vals[k]);
        if (e.present && vals[k]) {
            uint8_t h[SFS_HASH_LEN];
            pattern_hash(vals[k], h);
            CHECK(!memcmp(h, e.ref.hash, SFS_HASH_LEN),
                  "view %llu key %d holds the wrong block",
                  (unsigned long long)view, k);
            /* And the bytes read back verify. */
            uint8_t got[BS], want[BS];
            size_t n;
            struct sfs_rplan plan;
            CHECK_RC(sfs_rplan_collect(st, txn, view, key_ino(k), UINT64_MAX,
                                       key_blk(k) * BS, BS, &plan));
            CHECK_RC(sfs_rplan_finish(&plan, cc, got));
            n = plan.len;
            sfs_rplan_release(&plan);
            pattern(vals[k], want);
            CHECK(n == BS && !memcmp(got, want, BS), "view %llu key %d bytes",
                  (unsigned long long)view, k);
        }
    }
}

struct scan_seen {
    int vals[NKEYS];
    int base;
};

static int scan_cb(void *a, uint64_t blockno, const struct sfs_extent *e)
{
    struct scan_seen *s = a;
    for (int pat = 1; pat < NPAT; pat++) {
        uint8_t h[SFS_HASH_LEN];
        pattern_hash(pat, h);
        if (!memcmp(h, e->ref.hash, SFS_HASH_LEN))
            s->vals[s->base + (int)blockno] = pat;
    }
    return 0;
}

static void check_scan(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                       const int *vals)
{
    struct scan_seen s;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < NINO; i++) {
        s.base = i * NBLK;
        CHECK_RC(sfs_extent_scan(st, txn, view, 100 + (uint64_t)i, 0, scan_cb,
                                 &s));
    }
    CHECK(!memcmp(s.vals, vals, sizeof(s.vals)), "scan of view %llu differs",
          (unsigned long long)view);
}

/* Sum of dedup refcounts == number of live+hist extent versions. */
static void check_refcounts(struct sfs_store *st, MDB_txn *txn)
{
    MDB_cursor *c;
    MDB_val k, v;
    uint64_t refs = 0, versions = 0, dead = 0, hist = 0;
    CHECK_RC(mdb_cursor_open(txn, st->db_dedup, &c));
    while (!mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        struct sfs_dedup_rec d;
        memcpy(&d, v.mv_data, sizeof(d));
        refs += d.refcount;
    }
    mdb_cursor_close(c);
    MDB_dbi dbis[] = { st->db_live, st->db_hist };
    for (int i = 0; i < 2; i++) {
        CHECK_RC(mdb_cursor_open(txn, dbis[i], &c));
        while (!mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            if (((uint8_t *)k.mv_data)[0] == SFS_K_EXTENT) {
                MDB_val p = sfs_vpayload(&v);
                uint8_t h[SFS_HASH_LEN];
                versions += (uint64_t)sfs_rec_blockref(&k, &p, h);
            }
            hist += (uint64_t)i;
        }
        mdb_cursor_close(c);
    }
    CHECK_RC(mdb_cursor_open(txn, st->db_dead, &c));
    while (!mdb_cursor_get(c, &k, &v, MDB_NEXT))
        dead++;
    mdb_cursor_close(c);
    CHECK(refs == versions, "refcounts %llu, versions %llu",
          (unsigned long long)refs, (unsigned long long)versions);
    CHECK(dead == hist, "deadlist rows %llu, hist rows %llu",
          (unsigned long long)dead, (unsigned long long)hist);
}

/* The ledger (blocks.c): each block's live count is the live versions
 * that refer to it, snap_blob_bytes sums the blocks with none, and those
 * are exactly what deleting every snapshot frees. */
static void check_ledger(struct sfs_store *st, MDB_txn *txn)
{
    MDB_cursor *c;
    MDB_val k, v;
    uint64_t bytes = 0, phys = 0;
    CHECK_RC(mdb_cursor_open(txn, st->db_dedup, &c));
    while (!mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        struct sfs_dedup_rec d;
        memcpy(&d, v.mv_data, sizeof(d));
        static uint8_t hashes[NPAT][SFS_HASH_LEN];
        static bool hashed;
        for (int pat = 1; !hashed && pat < NPAT; pat++)
            pattern_hash(pat, hashes[pat]);
        hashed = true;
        uint64_t live = 0;
        for (int key = 0; key < NKEYS; key++)
            live += live_vals[key] &&
                    !memcmp(hashes[live_vals[key]], k.mv_data, SFS_HASH_LEN);
        CHECK(d.live == live, "block with %llu live references, %llu live "
              "versions", (unsigned long long)d.live,
              (unsigned long long)live);
        if (d.refcount && !d.live) {
            bytes += sfs_blob_bytes(d.csize);
            phys += d.csize;
        }
    }
    mdb_cursor_close(c);
    CHECK(bytes == st->state.snap_blob_bytes, "ledger %llu, blocks %llu",
          (unsigned long long)st->state.snap_blob_bytes,
          (unsigned long long)bytes);
    if (!nsnaps)
        return;
    uint64_t epochs[MAXSNAP];
    for (int i = 0; i < nsnaps; i++)
        epochs[i] = snaps[i].epoch;
    struct sfs_reclaim r;
    CHECK_RC(sfs_snap_reclaim(st, txn, epochs, (size_t)nsnaps, &r));
    CHECK(r.physical == phys, "deleting every snapshot frees %llu, the "
          "ledger says %llu", (unsigned long long)r.physical,
          (unsigned long long)phys);
}

static void check_all(struct sfs_store *st, MDB_txn *txn)
{
    check_view(st, txn, SFS_VIEW_LIVE, live_vals);
    check_scan(st, txn, SFS_VIEW_LIVE, live_vals);
    for (int i = 0; i < nsnaps; i++) {
        check_view(st, txn, snaps[i].epoch, snaps[i].vals);
        check_scan(st, txn, snaps[i].epoch, snaps[i].vals);
    }
    check_refcounts(st, txn);
    check_ledger(st, txn);
}

static void take_snapshot(struct sfs_store *st, MDB_txn *txn, int serial)
{
    if (nsnaps == MAXSNAP)
        return;
    char name[32];
    snprintf(name, sizeof(name), "s%d", serial);
    struct sfs_snap_rec rec;
    CHECK_RC(sfs_snap_take_w(st, txn, name, &rec));
    snaps[nsnaps].epoch = rec.epoch;
    memcpy(snaps[nsnaps].vals, live_vals, sizeof(live_vals));
    nsnaps++;
}

static void delete_snapshot(struct sfs_store *st, MDB_txn *txn, int i)
{
    CHECK_RC(sfs_snap_delete_w(st, txn, snaps[i].epoch));
    memmove(&snaps[i], &snaps[i + 1], (size_t)(nsnaps - i - 1) * sizeof(snaps[0]));
    nsnaps--;
}

/* Roll the live tree back to snapshot I: it reads as the snapshot did, and
 * every snapshot still reads as before (check_all). */
static void rollback(struct sfs_store *st, MDB_txn *txn, int i)
{
    uint64_t blobs = st->state.blob_count;
    struct sfs_rollback_stats rs;
    CHECK_RC(sfs_rollback_w(st, txn, snaps[i].epoch, &rs));
    int changed = 0;
    for (int k = 0; k < NKEYS; k++)
        changed += live_vals[k] != snaps[i].vals[k];
    CHECK(rs.restored + rs.removed == (uint64_t)changed,
          "rollback changed %llu + %llu records, the model %d",
          (unsigned long long)rs.restored, (unsigned long long)rs.removed,
          changed);
    CHECK(st->state.blob_count <= blobs, "rollback stored new blocks");
    memcpy(live_vals, snaps[i].vals, sizeof(live_vals));
}

static void run_sequence(unsigned seed, int steps)
{
    char dir[256];
    struct sfs_store *st = testvol_create(dir, sizeof(dir), BS, SFS_CODEC_ZSTD);
    srandom(seed);
    memset(live_vals, 0, sizeof(live_vals));
    nsnaps = 0;
    MDB_txn *txn;
    CHECK_RC(sfs_txn_begin(st, NULL, true, &txn));
    for (int step = 0; step < steps; step++) {
        int r = (int)(random() % 100);
        int k = (int)(random() % NKEYS);
        if (r < 48)
            do_put(st, txn, k, 1 + (int)(random() % (NPAT - 1)));
        else if (r < 70)
            do_del(st, txn, k);
        else if (r < 82)
            take_snapshot(st, txn, step);
        else if (r < 90 && nsnaps)
            rollback(st, txn, (int)(random() % (unsigned)nsnaps));
        else if (nsnaps)
            delete_snapshot(st, txn, (int)(random() % (unsigned)nsnaps));
        if (step % 7 == 0) {
            /* Commit now and then: state must survive reopening txns. */
            CHECK_RC(sfs_txn_commit(st, txn));
            CHECK_RC(sfs_txn_begin(st, NULL, true, &txn));
        }
        if (step % 5 == 0)
            check_all(st, txn);
    }
    check_all(st, txn);

    /* Delete every snapshot and every record: all space comes back. */
    while (nsnaps)
        delete_snapshot(st, txn, (int)(random() % (unsigned)nsnaps));
    for (int k = 0; k < NKEYS; k++)
        do_del(st, txn, k);
    check_all(st, txn);
    CHECK(st->state.phys_bytes == 0 && st->state.blob_count == 0,
          "seed %u: %llu bytes in %llu blobs left", seed,
          (unsigned long long)st->state.phys_bytes,
          (unsigned long long)st->state.blob_count);
    CHECK(st->state.ref_logical == 0, "ref_logical %llu",
          (unsigned long long)st->state.ref_logical);
    MDB_stat ms;
    mdb_stat(txn, st->db_hist, &ms);
    CHECK(ms.ms_entries == 0, "hist rows left: %zu", ms.ms_entries);
    mdb_stat(txn, st->db_deadstat, &ms);
    CHECK(ms.ms_entries == 0, "deadstat rows left: %zu", ms.ms_entries);
    mdb_stat(txn, st->db_born, &ms);
    /* Only the root inode's born row remains. */
    CHECK(ms.ms_entries == 1, "born rows left: %zu", ms.ms_entries);
    CHECK_RC(sfs_txn_commit(st, txn));
    testvol_remove(st, dir);
}

/* A snapshot sees the state at its creation; later writes do not leak in,
 * and a version replaced within one epoch is freed at once. */
static void test_basic_semantics(void)
{
    char dir[256];
    struct sfs_store *st = testvol_create(dir, sizeof(dir), BS, SFS_CODEC_NONE);
    memset(live_vals, 0, sizeof(live_vals));
    nsnaps = 0;
    MDB_txn *txn;
    CHECK_RC(sfs_txn_begin(st, NULL, true, &txn));
    do_put(st, txn, 0, 1);
    do_put(st, txn, 0, 3); /* same epoch: version 1 dies without history */
    MDB_stat ms;
    mdb_stat(txn, st->db_hist, &ms);
    CHECK(ms.ms_entries == 0, "a same-epoch overwrite left history");
    CHECK(st->state.blob_count == 1, "old block not freed: %llu blobs",
          (unsigned long long)st->state.blob_count);
    take_snapshot(st, txn, 1);
    do_put(st, txn, 0, 5);
    mdb_stat(txn, st->db_hist, &ms);
    CHECK(ms.ms_entries == 1, "snapshot-visible version not kept");
    CHECK(st->state.blob_count == 2, "%llu blobs",
          (unsigned long long)st->state.blob_count);
    check_all(st, txn);
    struct sfs_snap_rec rec;
    CHECK(sfs_snap_take_w(st, txn, "s1", &rec) == -EEXIST,
          "duplicate snapshot name accepted");
    CHECK(sfs_snap_take_w(st, txn, "a/b", &rec) == -EINVAL, "'/' accepted");
    delete_snapshot(st, txn, 0);
    CHECK(st->state.blob_count == 1, "deleting the snapshot freed nothing");
    CHECK_RC(sfs_txn_commit(st, txn));
    testvol_remove(st, dir);
}

int main(void)
{
    cc = sfs_codec_ctx_new();
    test_basic_semantics();
    int rounds = getenv("SOAK") ? 400 : 10;
    int steps = getenv("SOAK") ? 2000 : 300;
    for (int i = 0; i < rounds; i++)
        run_sequence(1000u + (unsigned)i, steps);
    sfs_codec_ctx_free(cc);
    return test_done("test_vrec");
}
