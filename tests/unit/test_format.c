/*
 * test_format.c - the on-disk format (store/format.c) and the version of
 * the dump's snapfs extensions (tape/dumpfmt.c): mkfs writes format 2
 * with the features this snapfs knows; a newer version, an unknown
 * incompat feature, an unknown ro-compat feature opened for writing and
 * an unfinished upgrade are refused with -EPROTONOSUPPORT and a reason
 * naming both versions or the feature, while an unknown compat feature,
 * and an unknown ro-compat one read-only, are opened; an upgrade's marks
 * (begin, step, finish) move a format-1 store to format 2 and refuse
 * versions other than this snapfs's; fsck reports a format-2 store
 * whose ledger is not counted; dump headers carry the extensions'
 * version, and those written before it read as version 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "check.h"
#include "dumpfmt.h"
#include "testvol.h"

/* Run FN(st, txn, ARG) in one write transaction of ST and commit. */
static int in_txn(struct sfs_store *st,
                  int (*fn)(struct sfs_store *, MDB_txn *, void *), void *arg)
{
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, true, &txn);
    if (rc)
        return rc;
    rc = fn(st, txn, arg);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return sfs_txn_commit(st, txn);
}

static int put_version(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    st->super.format_version = *(uint32_t *)arg;
    MDB_val k = { 5, "super" }, v = { sizeof(st->super), &st->super };
    return sfs_mdb_errno(mdb_put(txn, st->db_meta, &k, &v, 0));
}

static int add_feature(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct sfs_features fs;
    int rc = sfs_features_get(st, txn, &fs);
    if (rc)
        return rc;
    fs.f[fs.n++] = *(struct sfs_feature *)arg;
    return sfs_features_put_w(st, txn, &fs);
}

static int drop_features(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    MDB_val k = { 8, "features" };
    return sfs_mdb_errno(mdb_del(txn, st->db_meta, &k, NULL));
}

static int begin_upgrade(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    return sfs_upgrade_begin_w(st, txn, arg);
}

static int finish_upgrade(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    return sfs_upgrade_finish_w(st, txn);
}

static int clear_ledger(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    st->state.flags &= ~(uint64_t)SFS_STATE_LEDGER;
    return 0;
}

/* Reopen DIR with FLAGS: its errno, and the reason in WHY. */
static int reopen(const char *dir, int flags, char *why, size_t cap)
{
    struct sfs_store *st;
    int rc = sfs_open(dir, flags, &st);
    snprintf(why, cap, "%s", sfs_open_why());
    if (!rc)
        sfs_close(st);
    return rc;
}

static void test_mkfs_features(void)
{
    char dir[256];
    struct sfs_store *st = testvol_create(dir, sizeof(dir), 0,
                                          SFS_CODEC_ZSTD);
    CHECK(st->super.format_version == SFS_FORMAT_VERSION, "format %u",
          st->super.format_version);
    CHECK(st->features.n == 1 && !strcmp(st->features.f[0].name, "ledger") &&
          st->features.f[0].cls == SFS_FEAT_RO_COMPAT, "features of mkfs");
    CHECK(sfs_feature_known("ledger") && !sfs_feature_known("zoned"),
          "known features");
    struct sfs_feature bad = { "two words", SFS_FEAT_COMPAT };
    CHECK(in_txn(st, add_feature, &bad) == -EINVAL, "a name with a space");
    testvol_remove(st, dir);
}

/* A new volume in DIR whose features record also lists NAME of CLS. */
static void volume_with_feature(char *dir, size_t cap, const char *name,
                                uint32_t cls)
{
    struct sfs_store *st = testvol_create(dir, cap, 0, SFS_CODEC_ZSTD);
    struct sfs_feature f = { .cls = cls };
    snprintf(f.name, sizeof(f.name), "%s", name);
    CHECK_RC(in_txn(st, add_feature, &f));
    sfs_close(st);
}

static void test_refusals(void)
{
    char dc[256], dr[256], di[256], dv[256], why[256];
    volume_with_feature(dc, sizeof(dc), "later-compat", SFS_FEAT_COMPAT);
    CHECK(reopen(dc, SFS_OPEN_EXCLUSIVE, why, sizeof(why)) == 0,
          "an unknown compat feature opens for writing");

    volume_with_feature(dr, sizeof(dr), "later-ro", SFS_FEAT_RO_COMPAT);
    CHECK(reopen(dr, SFS_OPEN_RDONLY, why, sizeof(why)) == 0,
          "an unknown ro-compat feature opens read-only");
    CHECK(reopen(dr, SFS_OPEN_EXCLUSIVE, why, sizeof(why)) ==
              -EPROTONOSUPPORT && strstr(why, "'later-ro'") &&
              strstr(why, "may read but not write"),
          "... and not for writing: %s", why);

    volume_with_feature(di, sizeof(di), "later-inc", SFS_FEAT_INCOMPAT);
    CHECK(reopen(di, SFS_OPEN_RDONLY, why, sizeof(why)) ==
              -EPROTONOSUPPORT && strstr(why, "'later-inc'") &&
              strstr(why, "(formats 1 to 2) does not know"),
          "an unknown incompat feature: %s", why);
    CHECK(reopen(di, SFS_OPEN_RDONLY | SFS_OPEN_UPGRADE, why, sizeof(why)) ==
              -EPROTONOSUPPORT, "not even for the upgrade");

    struct sfs_store *st = testvol_create(dv, sizeof(dv), 0, SFS_CODEC_ZSTD);
    uint32_t v = 7;
    CHECK_RC(in_txn(st, put_version, &v));
    sfs_close(st);
    CHECK(reopen(dv, SFS_OPEN_RDONLY, why, sizeof(why)) ==
              -EPROTONOSUPPORT &&
              !strcmp(why, "volume has a newer on-disk format (format 7) "
                           "than this snapfs supports (formats 1 to 2)"),
          "a newer version: %s", why);
    CHECK(reopen(dv, SFS_OPEN_RDONLY | SFS_OPEN_UPGRADE, why, sizeof(why))
              == -EPROTONOSUPPORT, "the upgrade does not open it either");
    CHECK(reopen("/nonexistent-snapfs-store", 0, why, sizeof(why)) ==
              -ENOENT && why[0] == 0, "no reason for another error");
    testvol_remove(NULL, dc);
    testvol_remove(NULL, dr);
    testvol_remove(NULL, di);
    testvol_remove(NULL, dv);
}

static void count_problem(void *arg, const char *problem)
{
    (*(int *)arg)++;
}

static void test_upgrade_marks(void)
{
    char dir[256], why[256];
    struct sfs_store *st = testvol_create(dir, sizeof(dir), 0,
                                          SFS_CODEC_ZSTD);
    /* make it a format-1 store: version 1, no features record */
    uint32_t v1 = 1;
    CHECK_RC(in_txn(st, drop_features, NULL));
    CHECK_RC(in_txn(st, put_version, &v1));
    sfs_close(st);
    CHECK_RC(sfs_open(dir, SFS_OPEN_EXCLUSIVE, &st));
    CHECK(st->super.format_version == 1 && st->features.n == 0,
          "format 1 opens, without features");

    struct sfs_upgrade u = { .from = 1, .to = 3, .started = 1 };
    snprintf(u.step, sizeof(u.step), "ledger");
    CHECK(in_txn(st, begin_upgrade, &u) == -EINVAL, "to a version not ours");
    u.to = SFS_FORMAT_VERSION;
    CHECK_RC(in_txn(st, begin_upgrade, &u));
    sfs_close(st);
    CHECK(reopen(dir, SFS_OPEN_RDONLY, why, sizeof(why)) == -EPROTONOSUPPORT
              && strstr(why, "from format 1 to 2 did not finish") &&
              strstr(why, "snapfs upgrade"),
          "a marked store is refused: %s", why);

    CHECK_RC(sfs_open(dir, SFS_OPEN_EXCLUSIVE | SFS_OPEN_UPGRADE, &st));
    struct sfs_upgrade got;
    MDB_txn *txn;
    CHECK_RC(sfs_txn_begin(st, NULL, false, &txn));
    CHECK(sfs_upgrade_get(st, txn, &got) == 0 && got.from == 1 &&
          got.to == 2 && !strcmp(got.step, "ledger") && got.started == 1,
          "the upgrade record");
    mdb_txn_abort(txn);
    CHECK_RC(in_txn(st, clear_ledger, NULL));
    CHECK(in_txn(st, finish_upgrade, NULL) == -EAGAIN,
          "not finished before the ledger is counted");
    CHECK(sfs_ledger_count(st) == 1, "the ledger counted");
    CHECK_RC(in_txn(st, finish_upgrade, NULL));
    sfs_close(st);

    CHECK_RC(sfs_open(dir, SFS_OPEN_EXCLUSIVE, &st));
    CHECK(st->super.format_version == 2 && st->features.n == 1,
          "format 2 with its features");
    CHECK_RC(sfs_txn_begin(st, NULL, false, &txn));
    CHECK(sfs_upgrade_get(st, txn, &got) == -ENOENT, "no record left");
    mdb_txn_abort(txn);
    int n = 0;
    CHECK(sfs_fsck(st, count_problem, &n) == 0 && n == 0,
          "fsck finds the upgraded store clean: %d", n);
    testvol_remove(st, dir);
}

static void test_fsck_ledger(void)
{
    char dir[256];
    struct sfs_store *st = testvol_create(dir, sizeof(dir), 0,
                                          SFS_CODEC_ZSTD);
    int n = 0;
    CHECK(sfs_fsck(st, count_problem, &n) == 0 && n == 0, "clean");
    CHECK_RC(in_txn(st, clear_ledger, NULL));
    n = 0;
    CHECK(sfs_fsck(st, count_problem, &n) == 1 && n == 1,
          "a format-2 store without its ledger: %d", n);
    testvol_remove(st, dir);
}

static void test_dump_ext_version(void)
{
    struct dump_header h;
    memset(&h, 0, sizeof(h));
    struct dump_snapfs_ext x = { .est_bytes = 5, .part = 1, .context = 9 };
    dump_ext_put(&h, &x);
    struct dump_snapfs_ext back;
    CHECK(dump_ext_get(&h, &back) == 0 &&
          back.version == DUMP_SNAPFS_EXT_VERSION && back.part == 1 &&
          back.context == 9, "the version written");
    h.spare[9] = 0;
    CHECK(dump_ext_get(&h, &back) == 0 && back.version == 1,
          "a dump from before the version reads as version 1");
    h.spare[9] = 4;
    uint8_t blk[DUMP_TP_BSIZE];
    struct dump_header d;
    dump_header_encode(&h, blk);
    CHECK(dump_header_decode(blk, &d) == 0 && dump_ext_get(&d, &back) == 0 &&
          back.version == 4, "a newer version survives the encoding");
}

int main(void)
{
    test_mkfs_features();
    test_refusals();
    test_upgrade_marks();
    test_fsck_ledger();
    test_dump_ext_version();
    return test_done("test_format");
}
