/*
 * test_wplan_tally.c - what a write plan says each block became
 * (sfs_wplan_apply's stored_as, summed by sfs_wplan_tally), the figures a
 * daemon's statistics count: on a scratch volume with 64 KiB blocks and
 * zstd, a write of random, repeated, zero, compressible, already stored
 * and short data is tallied exactly; a block repeated inside one write is
 * new once and deduplicated once; an aborted apply tallies nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "testvol.h"

#define BS 65536

static struct sfs_store *st;
static struct sfs_codec_ctx *cc;

/* Run a write plan of DATA at OFF as the daemon does (probe, compress,
 * apply) and tally it into T. */
static void write_plan(MDB_txn *txn, uint64_t ino, uint64_t off,
                       const uint8_t *data, size_t len,
                       struct sfs_wplan_tally *t)
{
    struct sfs_wplan plan;
    CHECK_RC(sfs_wplan_init(st, 0, off, len, &plan));
    CHECK_RC(sfs_wplan_fetch_old(st, txn, ino, 0, &plan));
    CHECK_RC(sfs_wplan_fill(&plan, cc, data));
    CHECK_RC(sfs_wplan_probe(st, txn, &plan));
    int rc = sfs_wplan_apply(st, txn, ino, &plan);
    if (rc == -EAGAIN) {
        CHECK_RC(sfs_wplan_compress(st, cc, &plan));
        rc = sfs_wplan_apply(st, txn, ino, &plan);
    }
    CHECK_RC(rc);
    sfs_wplan_tally(&plan, t);
    sfs_wplan_reset_applied(&plan);
    struct sfs_wplan_tally none;
    sfs_wplan_tally(&plan, &none);
    CHECK(none.new_blocks + none.dedup_blocks + none.zero_bytes +
          none.inline_bytes == 0, "an aborted apply tallies nothing");
    sfs_wplan_release(&plan);
}

int main(void)
{
    char dir[256];
    st = testvol_create(dir, sizeof(dir), BS, SFS_CODEC_ZSTD);
    cc = sfs_codec_ctx_new();
    MDB_txn *txn;
    CHECK_RC(sfs_txn_begin(st, NULL, true, &txn));
    uint64_t a = testvol_new_file(st, txn), b = testvol_new_file(st, txn);

    /* First write: one random block, stored new and raw. */
    uint8_t *first = malloc(BS);
    testvol_fill_random(first, BS, 1);
    struct sfs_wplan_tally t;
    write_plan(txn, a, 0, first, BS, &t);
    CHECK(t.new_blocks == 1 && t.new_logical == BS && t.new_stored == BS &&
          t.new_compressed == 0 && t.dedup_blocks == 0,
          "a random block: new, raw (%llu new, %llu stored)",
          (unsigned long long)t.new_blocks, (unsigned long long)t.new_stored);

    /* Second write: random R twice, zeros, text, the first block again,
     * and a 100-byte tail. */
    size_t len = 5 * BS + 100;
    uint8_t *data = calloc(1, len);
    testvol_fill_random(data, BS, 2);
    memcpy(data + BS, data, BS);
    for (size_t i = 3 * BS; i < 4 * BS; i++)
        data[i] = (uint8_t)("compressible text "[i % 18]);
    memcpy(data + 4 * BS, first, BS);
    memset(data + 5 * BS, 'x', 100);
    write_plan(txn, b, 0, data, len, &t);
    CHECK(t.new_blocks == 2, "new: R and the text (%llu)",
          (unsigned long long)t.new_blocks);
    CHECK(t.new_logical == 2 * BS, "new bytes before compression %llu",
          (unsigned long long)t.new_logical);
    CHECK(t.new_compressed == 1 && t.new_stored > BS && t.new_stored < 2 * BS,
          "the text compressed: %llu bytes stored",
          (unsigned long long)t.new_stored);
    CHECK(t.dedup_blocks == 2 && t.dedup_bytes == 2 * BS,
          "deduplicated: R's repeat and the first block (%llu)",
          (unsigned long long)t.dedup_blocks);
    CHECK(t.zero_bytes == BS, "zeros: %llu", (unsigned long long)t.zero_bytes);
    CHECK(t.inline_bytes == 100, "inline: %llu",
          (unsigned long long)t.inline_bytes);

    mdb_txn_abort(txn);
    free(first);
    free(data);
    sfs_codec_ctx_free(cc);
    testvol_remove(st, dir);
    return test_done("test_wplan_tally");
}
