/*
 * damage.c - snapfs-damage, a test tool: flips one byte of the stored
 * bytes of the block holding byte OFFSET of a file, to show that reads
 * give EIO and fsck names the file.  Works on an unmounted volume only.
 *
 *   snapfs-damage STORE PATH [OFFSET]
 *   snapfs-damage STORE --format-version N   (a store "from the future")
 *   snapfs-damage STORE --feature NAME CLASS (a store using a feature of a
 *                      newer snapfs: CLASS compat, ro-compat or incompat)
 *   snapfs-damage STORE --unledger           (a store from before the
 *                      ledger of what only snapshots hold: no live
 *                      counts, SFS_STATE_LEDGER clear)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

static int lookup_path(struct sfs_store *st, MDB_txn *txn, const char *path,
                       uint64_t *ino)
{
    char *copy = strdup(path), *save = NULL;
    uint64_t cur = SFS_ROOT_INO;
    int rc = copy ? 0 : -ENOMEM;
    for (char *t = strtok_r(copy, "/", &save); !rc && t;
         t = strtok_r(NULL, "/", &save)) {
        struct sfs_dirent d;
        rc = sfs_dirent_lookup(st, txn, SFS_VIEW_LIVE, cur, t, &d);
        cur = d.ino;
    }
    free(copy);
    *ino = cur;
    return rc;
}

/* Open the store at PATH, run FN(st, txn, ARG) in one write transaction
 * and commit it. */
static int in_write_txn(const char *path,
                        int (*fn)(struct sfs_store *, MDB_txn *, void *),
                        void *arg)
{
    struct sfs_store *st;
    int rc = sfs_open(path, SFS_OPEN_EXCLUSIVE, &st);
    if (rc)
        return rc;
    MDB_txn *txn;
    rc = sfs_txn_begin(st, NULL, true, &txn);
    if (!rc) {
        rc = fn(st, txn, arg);
        if (!rc)
            rc = sfs_txn_commit(st, txn);
        else
            mdb_txn_abort(txn);
    }
    sfs_close(st);
    return rc;
}

/* Rewrite the superblock's format version, as a newer snapfs would. */
static int put_format_version(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    st->super.format_version = *(const uint32_t *)arg;
    MDB_val k = { 5, "super" }, v = { sizeof(st->super), &st->super };
    return sfs_mdb_errno(mdb_put(txn, st->db_meta, &k, &v, 0));
}

/* Add a feature to the store's features record, as a newer snapfs using
 * it would. */
static int put_feature(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct sfs_features fs;
    int rc = sfs_features_get(st, txn, &fs);
    if (!rc && fs.n == SFS_FEATURES_MAX)
        rc = -E2BIG;
    if (rc)
        return rc;
    fs.f[fs.n++] = *(const struct sfs_feature *)arg;
    return sfs_features_put_w(st, txn, &fs);
}

static int add_feature(const char *path, const char *name, const char *cls)
{
    struct sfs_feature f = { .cls = SFS_FEAT_INCOMPAT };
    snprintf(f.name, sizeof(f.name), "%s", name);
    for (uint32_t c = SFS_FEAT_COMPAT; c <= SFS_FEAT_INCOMPAT; c++)
        if (!strcmp(sfs_feature_class_name(c), cls))
            f.cls = c;
    return in_write_txn(path, put_feature, &f);
}

/* Make the store look as a snapfs before the ledger left it. */
static int unledger(const char *path)
{
    struct sfs_store *st;
    int rc = sfs_open(path, SFS_OPEN_EXCLUSIVE, &st);
    if (rc)
        return rc;
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    rc = sfs_txn_begin(st, NULL, true, &txn);
    if (!rc)
        rc = sfs_mdb_errno(mdb_cursor_open(txn, st->db_dedup, &c));
    MDB_val k, v;
    int mrc = rc ? MDB_NOTFOUND : mdb_cursor_get(c, &k, &v, MDB_FIRST);
    for (; !rc && !mrc; mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        struct sfs_dedup_rec d;
        memcpy(&d, v.mv_data, sizeof(d));
        d.live = 0;
        MDB_val nv = { sizeof(d), &d };
        rc = sfs_mdb_errno(mdb_cursor_put(c, &k, &nv, MDB_CURRENT));
    }
    if (c)
        mdb_cursor_close(c);
    if (!rc) {
        st->state.flags &= ~(uint64_t)SFS_STATE_LEDGER;
        st->state.snap_blob_bytes = 0;
        rc = sfs_txn_commit(st, txn);
    } else if (txn) {
        mdb_txn_abort(txn);
    }
    sfs_close(st);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[2], "--unledger")) {
        int rc = unledger(argv[1]);
        if (rc)
            fprintf(stderr, "snapfs-damage: %s: %s\n", argv[1], strerror(-rc));
        return rc ? 1 : 0;
    }
    if (argc == 5 && !strcmp(argv[2], "--feature")) {
        int rc = add_feature(argv[1], argv[3], argv[4]);
        if (rc)
            fprintf(stderr, "snapfs-damage: %s: %s\n", argv[1], strerror(-rc));
        return rc ? 1 : 0;
    }
    if (argc == 4 && !strcmp(argv[2], "--format-version")) {
        uint32_t version = (uint32_t)atoi(argv[3]);
        int rc = in_write_txn(argv[1], put_format_version, &version);
        if (rc)
            fprintf(stderr, "snapfs-damage: %s: %s\n", argv[1], strerror(-rc));
        return rc ? 1 : 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: snapfs-damage STORE PATH [OFFSET]\n");
        return 2;
    }
    uint64_t off = argc > 3 ? strtoull(argv[3], NULL, 0) : 0;
    struct sfs_store *st;
    /* a store whose upgrade was interrupted too: damage found after it
     * was marked must not keep the upgrade from finishing (t55) */
    int rc = sfs_open(argv[1], SFS_OPEN_EXCLUSIVE | SFS_OPEN_UPGRADE, &st);
    if (rc) {
        fprintf(stderr, "snapfs-damage: %s: %s\n", argv[1], strerror(-rc));
        return 1;
    }
    MDB_txn *txn;
    uint64_t ino = 0;
    struct sfs_extent e;
    struct sfs_dedup_rec d;
    rc = sfs_txn_begin(st, NULL, true, &txn);
    if (!rc)
        rc = lookup_path(st, txn, argv[2], &ino);
    if (!rc)
        rc = sfs_extent_get(st, txn, SFS_VIEW_LIVE, ino,
                            off / st->super.block_size, &e);
    if (!rc && (!e.present || e.is_inline))
        rc = -ENODATA;
    if (!rc)
        rc = sfs_block_info(st, txn, e.ref.hash, &d);
    if (!rc) {
        uint8_t kb[8];
        sfs_put_be64(kb, d.blob_id);
        MDB_val k = { 8, kb }, v;
        rc = sfs_mdb_errno(mdb_get(txn, st->db_blobs, &k, &v));
        if (!rc) {
            uint8_t *copy = malloc(v.mv_size);
            memcpy(copy, v.mv_data, v.mv_size);
            copy[v.mv_size / 2] ^= 0x5a;
            MDB_val nv = { v.mv_size, copy };
            rc = sfs_mdb_errno(mdb_put(txn, st->db_blobs, &k, &nv, 0));
            free(copy);
        }
    }
    if (!rc)
        rc = sfs_txn_commit(st, txn);
    else
        mdb_txn_abort(txn);
    uint64_t blockno = off / st->super.block_size;
    sfs_close(st);
    if (rc) {
        fprintf(stderr, "snapfs-damage: %s: %s\n", argv[2],
                rc == -ENODATA ? "no stored block at that offset"
                               : strerror(-rc));
        return 1;
    }
    printf("damaged block %llu of %s\n", (unsigned long long)blockno, argv[2]);
    return 0;
}
