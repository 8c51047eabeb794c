/*
 * spacelog.c - the volume's space over time: samples of used and
 * available bytes, taken by the daemon at most once an hour
 * (fs/scheduler.c), from which `snapfs health` computes the trend.
 *
 * Guarantees:
 *   - a sample is one record, written in the caller's transaction; at
 *     most one per SFS_SPACELOG_INTERVAL seconds (a sample is not taken
 *     while the newest one is younger, or newer than NOW: a clock set
 *     back adds nothing), at most SFS_SPACELOG_KEEP kept, the oldest
 *     dropped first, so the log never grows past a few KiB;
 *   - samples are read oldest first.
 *
 * Layout: meta key "spacelog/" time(be64, seconds since the epoch) ->
 * used(be64) avail(be64) size(be64): the live tree's share as df shows
 * it (struct sfs_space: live_size - avail is used).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "internal.h"

#define SP_PREFIX "spacelog/"
#define SP_PLEN 9

static void sp_key(uint8_t *k, int64_t when)
{
    memcpy(k, SP_PREFIX, SP_PLEN);
    sfs_put_be64(k + SP_PLEN, (uint64_t)when);
}

struct sp_scan {
    sfs_spacelog_cb cb;
    void *arg;
    size_t count;
    int64_t newest, oldest;
};

static int sp_one(void *arg, const MDB_val *key, const MDB_val *val)
{
    struct sp_scan *sc = arg;
    if (key->mv_size != SP_PLEN + 8 || val->mv_size != 24)
        return 0; /* not a sample this snapfs knows */
    const uint8_t *v = val->mv_data;
    struct sfs_space_sample s = {
        .when = (int64_t)sfs_get_be64((const uint8_t *)key->mv_data + SP_PLEN),
        .used = sfs_get_be64(v),
        .avail = sfs_get_be64(v + 8),
        .size = sfs_get_be64(v + 16),
    };
    if (!sc->count++)
        sc->oldest = s.when;
    sc->newest = s.when;
    return sc->cb ? sc->cb(sc->arg, &s) : 0;
}

int sfs_spacelog_foreach(struct sfs_store *st, MDB_txn *txn,
                         sfs_spacelog_cb cb, void *arg)
{
    struct sp_scan sc = { cb, arg, 0, 0, 0 };
    return sfs_table_scan_prefix(txn, st->db_meta, SP_PREFIX, SP_PLEN, sp_one,
                                 &sc);
}

int sfs_spacelog_due(struct sfs_store *st, MDB_txn *txn, int64_t now)
{
    struct sp_scan sc = { 0 };
    int rc = sfs_table_scan_prefix(txn, st->db_meta, SP_PREFIX, SP_PLEN,
                                   sp_one, &sc);
    if (rc)
        return rc;
    return !sc.count || (now >= sc.newest + SFS_SPACELOG_INTERVAL);
}

int sfs_spacelog_record_w(struct sfs_store *st, MDB_txn *txn, int64_t now)
{
    int due = sfs_spacelog_due(st, txn, now);
    if (due <= 0)
        return due;
    struct sfs_space sp;
    int rc = sfs_space_get(st, txn, &sp);
    if (rc)
        return rc;
    uint8_t k[SP_PLEN + 8], v[24];
    sp_key(k, now);
    sfs_put_be64(v, sp.live_size > sp.avail ? sp.live_size - sp.avail : 0);
    sfs_put_be64(v + 8, sp.avail);
    sfs_put_be64(v + 16, sp.live_size);
    MDB_val key = { sizeof(k), k }, val = { sizeof(v), v };
    rc = sfs_mdb_errno(mdb_put(txn, st->db_meta, &key, &val, 0));
    for (;;) { /* drop the oldest past the limit */
        struct sp_scan sc = { 0 };
        if (!rc)
            rc = sfs_table_scan_prefix(txn, st->db_meta, SP_PREFIX, SP_PLEN,
                                       sp_one, &sc);
        if (rc || sc.count <= SFS_SPACELOG_KEEP)
            return rc ? rc : 1;
        sp_key(k, sc.oldest);
        rc = sfs_mdb_errno(mdb_del(txn, st->db_meta, &key, NULL));
    }
}
