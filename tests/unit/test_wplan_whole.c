/*
 * test_wplan_whole.c - write plans of whole blocks hashed in the caller's
 * buffer (sfs_wplan_init_whole, the daemon's sequential path) and codec
 * contexts set to another zstd level (sfs_codec_set_level): on a scratch
 * volume with 64 KiB blocks and zstd, such a plan stores what an ordinary
 * plan stores (the same blocks: a second file written the ordinary way is
 * deduplicated whole) and reads back byte for byte; zeros become a hole,
 * never compressed; ranges that are not whole blocks are refused; text
 * compressed at zstd's fast level -5 is smaller than raw, larger than at
 * level 1, and reads back the same.
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

/* Compress and apply PLAN to INO (as the daemon does), set the size,
 * and tally what it stored into T. */
static void apply(MDB_txn *txn, uint64_t ino, struct sfs_wplan *plan,
                  struct sfs_wplan_tally *t)
{
    CHECK_RC(sfs_wplan_compress(st, cc, plan));
    CHECK_RC(sfs_wplan_apply(st, txn, ino, plan));
    struct sfs_inode i;
    CHECK_RC(sfs_inode_get(st, txn, SFS_VIEW_LIVE, ino, &i));
    if (plan->off + plan->len > i.size)
        i.size = plan->off + plan->len;
    CHECK_RC(sfs_inode_put_w(st, txn, &i));
    sfs_wplan_tally(plan, t);
}

static void fill_text(uint8_t *p, size_t n, uint64_t seed)
{
    static const char *words[] = { "block ", "commit ", "snapshot ",
                                   "error ", "value ", "the ", "of ", "\n" };
    size_t k = 0;
    while (k < n) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        const char *w = words[seed >> 61];
        for (size_t j = 0; w[j] && k < n; j++)
            p[k++] = (uint8_t)w[j];
    }
}

/* Does INO hold LEN bytes equal to WANT? */
static bool reads_back(MDB_txn *txn, uint64_t ino, const uint8_t *want,
                       size_t len)
{
    uint8_t *got = malloc(len);
    size_t n = 0;
    CHECK_RC(sfs_file_read(st, txn, cc, SFS_VIEW_LIVE, ino, 0, len, got, &n));
    bool same = n == len && !memcmp(got, want, len);
    free(got);
    return same;
}

/* Bytes stored for LEN bytes of text written whole at LEVEL (0: the
 * volume's), after checking that the file reads back. */
static uint64_t text_stored_at(MDB_txn *txn, int level, const uint8_t *text,
                               size_t len)
{
    uint64_t ino = testvol_new_file(st, txn);
    struct sfs_wplan plan;
    struct sfs_wplan_tally t;
    sfs_codec_set_level(cc, level);
    CHECK_RC(sfs_wplan_init_whole(st, 0, text, len, &plan));
    apply(txn, ino, &plan, &t);
    sfs_wplan_release(&plan);
    sfs_codec_set_level(cc, 0);
    CHECK(t.new_compressed == len / BS, "level %d: every text block compressed (%llu)",
          level, (unsigned long long)t.new_compressed);
    CHECK(reads_back(txn, ino, text, len), "level %d: the text reads back", level);
    return t.new_stored;
}

int main(void)
{
    char dir[256];
    st = testvol_create(dir, sizeof(dir), BS, SFS_CODEC_ZSTD);
    cc = sfs_codec_ctx_new();
    MDB_txn *txn;
    CHECK_RC(sfs_txn_begin(st, NULL, true, &txn));

    /* Four blocks: random, zeros, random, text. */
    size_t len = 4 * BS;
    uint8_t *data = calloc(1, len);
    testvol_fill_random(data, BS, 1);
    testvol_fill_random(data + 2 * BS, BS, 2);
    fill_text(data + 3 * BS, BS, 3);
    uint8_t *copy = malloc(len);
    memcpy(copy, data, len);

    uint64_t a = testvol_new_file(st, txn);
    struct sfs_wplan plan;
    struct sfs_wplan_tally t;
    CHECK_RC(sfs_wplan_init_whole(st, 0, data, len, &plan));
    CHECK(plan.blocks[0].buf == data && plan.blocks[3].buf == data + 3 * BS,
          "the plan hashes the caller's buffer where it is");
    apply(txn, a, &plan, &t);
    sfs_wplan_release(&plan);
    CHECK(!memcmp(data, copy, len), "the caller's buffer is left as it was");
    CHECK(t.new_blocks == 3 && t.new_compressed == 1 && t.zero_bytes == BS,
          "three new blocks (the text compressed), the zeros a hole "
          "(%llu new, %llu compressed, %llu zero bytes)",
          (unsigned long long)t.new_blocks,
          (unsigned long long)t.new_compressed,
          (unsigned long long)t.zero_bytes);
    CHECK(reads_back(txn, a, copy, len), "the file reads back byte for byte");

    /* The same bytes through an ordinary plan: the same blocks. */
    uint64_t b = testvol_new_file(st, txn);
    CHECK_RC(sfs_wplan_init(st, 0, 0, len, &plan));
    CHECK_RC(sfs_wplan_fill(&plan, cc, copy));
    CHECK_RC(sfs_wplan_probe(st, txn, &plan));
    apply(txn, b, &plan, &t);
    sfs_wplan_release(&plan);
    CHECK(t.dedup_blocks == 3 && t.new_blocks == 0,
          "an ordinary plan of the same bytes finds every block stored "
          "(%llu deduplicated, %llu new)",
          (unsigned long long)t.dedup_blocks,
          (unsigned long long)t.new_blocks);

    /* Only whole blocks. */
    CHECK(sfs_wplan_init_whole(st, 100, data, BS, &plan) == -EINVAL,
          "an offset inside a block is refused");
    CHECK(sfs_wplan_init_whole(st, 0, data, BS + 1, &plan) == -EINVAL,
          "a length that ends inside a block is refused");
    CHECK(sfs_wplan_init_whole(st, BS, data, 0, &plan) == -EINVAL,
          "an empty range is refused");

    /* Another level: text at zstd's fast level -5. */
    size_t tlen = 8 * BS;
    uint8_t *text = malloc(tlen);
    fill_text(text, tlen, 9);
    uint64_t at1 = text_stored_at(txn, 0, text, tlen);
    uint8_t *text2 = malloc(tlen);
    fill_text(text2, tlen, 10); /* other blocks: none deduplicated */
    uint64_t fast = text_stored_at(txn, -5, text2, tlen);
    CHECK(fast < tlen && fast > at1,
          "level -5 stores the text smaller than raw, larger than level 1 "
          "(%llu, %llu at level 1, of %zu)",
          (unsigned long long)fast, (unsigned long long)at1, tlen);

    mdb_txn_abort(txn);
    free(data);
    free(copy);
    free(text);
    free(text2);
    sfs_codec_ctx_free(cc);
    testvol_remove(st, dir);
    return test_done("test_wplan_whole");
}
