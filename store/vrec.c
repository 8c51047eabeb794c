/*
 * vrec.c - versioned records, snapshots as epochs, and the deadlist.
 *
 * THEORY
 *
 * The store never overwrites anything a snapshot can still see.  Every
 * record (inode, directory entry, xattr, extent) is a *version* stamped
 * with the epoch in which it was written, its birth.  The live tree writes
 * at the current epoch, cur.  A snapshot is nothing but an epoch: taking
 * one records {name, epoch = cur} and advances cur, so creation costs the
 * same on an empty volume and a full one.  A version is visible to the
 * snapshot at epoch S exactly when  birth <= S < death  (a live version
 * has death = infinity).
 *
 * Tables (all keys big-endian so that LMDB's byte order is numeric order):
 *
 *   live      K               -> birth | payload      the live version
 *   hist      K | death       -> birth | payload      versions snapshots see
 *   dead      death | birth | K -> ()                  the deadlist
 *   born      birth | K       -> ()                   the birth index
 *   deadstat  death | birth   -> {records, logical}   sums of the deadlist
 *   snaps     epoch           -> struct sfs_snap_rec
 *
 * Killing the live version of K (it is replaced or deleted) at epoch cur:
 *   - if birth > newest snapshot's epoch, no snapshot can see it: it is
 *     freed at once (its block references dropped, its born row deleted);
 *   - otherwise it moves to hist under (K, death = cur), and a deadlist
 *     row (cur, birth, K) is added with its sums in deadstat.
 * At most one version of K dies in one epoch: a second version born at cur
 * is newer than every snapshot and so is freed, never moved.
 *
 * Reading K as of snapshot S: the live version if birth <= S; else the
 * hist version with the smallest death > S (one LMDB range seek), if its
 * birth <= S.
 *
 * Invariant H: every hist version is visible to at least one existing
 * snapshot.  It holds when a version moves to hist (birth <= newest < cur
 * = death, so the newest snapshot sees it), and deleting a snapshot keeps
 * it, as follows.
 *
 * Deleting snapshot S, with previous snapshot P (0 if none) and next
 * snapshot N (+infinity if S is the newest): a hist version (b, d) visible
 * to S has b <= S < d.  It stays visible to P iff b <= P, and to N iff
 * d > N.  So it becomes unreachable exactly when P < b and d <= N; by H,
 * all unreachable rows with d in (S, N] have b <= S.  The walk visits the
 * deadlist rows with death in (S, N] only: the cost is the change between
 * S and N, never the size of the volume.  Rows with b <= P stay (P still
 * sees them).  After deleting the newest snapshot, newest becomes P, and
 * live versions born in (P, S] are from then on freed when killed.
 *
 * Keys of variable length (names) end in a NUL inside K, so no key is a
 * proper prefix of another of the same kind; hence K | death sorts exactly
 * as K does, and "the hist rows of K" is the range K | 0 .. K | max.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define MAXK (SFS_KEY_MAX + 16)

static int mdb_err(int rc) { return sfs_mdb_errno(rc); }

/* ---- deadstat: sums of records and logical bytes per (death, birth) ---- */

struct deadstat { uint64_t records, logical; };

static int deadstat_add(struct sfs_store *st, MDB_txn *txn, uint64_t death,
                        uint64_t birth, int64_t records, int64_t logical)
{
    uint8_t k[16];
    sfs_put_be64(k, death);
    sfs_put_be64(k + 8, birth);
    MDB_val key = { 16, k }, val;
    struct deadstat ds = { 0, 0 };
    int rc = mdb_get(txn, st->db_deadstat, &key, &val);
    if (rc && rc != MDB_NOTFOUND)
        return mdb_err(rc);
    if (!rc)
        memcpy(&ds, val.mv_data, sizeof(ds));
    ds.records += (uint64_t)records;
    ds.logical += (uint64_t)logical;
    if (ds.records == 0) {
        rc = mdb_del(txn, st->db_deadstat, &key, NULL);
        return rc == MDB_NOTFOUND ? 0 : mdb_err(rc);
    }
    val.mv_size = sizeof(ds);
    val.mv_data = &ds;
    return mdb_err(mdb_put(txn, st->db_deadstat, &key, &val, 0));
}

/* ---- index rows ---- */

static int born_row(struct sfs_store *st, MDB_txn *txn, uint64_t birth,
                    const void *k, size_t klen, bool add)
{
    uint8_t buf[MAXK];
    sfs_put_be64(buf, birth);
    memcpy(buf + 8, k, klen);
    MDB_val key = { klen + 8, buf }, val = { 0, NULL };
    int rc = add ? mdb_put(txn, st->db_born, &key, &val, 0)
                 : mdb_del(txn, st->db_born, &key, NULL);
    if (!add && rc == MDB_NOTFOUND) {
        sfs_log_corruption("born row missing (birth %llu)",
                           (unsigned long long)birth);
        return -EIO;
    }
    return mdb_err(rc);
}

static void hist_key(uint8_t *buf, const void *k, size_t klen, uint64_t death)
{
    memcpy(buf, k, klen);
    sfs_put_be64(buf + klen, death);
}

static void dead_key(uint8_t *buf, uint64_t death, uint64_t birth,
                     const void *k, size_t klen)
{
    sfs_put_be64(buf, death);
    sfs_put_be64(buf + 8, birth);
    memcpy(buf + 16, k, klen);
}

/* Free a version for good: drop its references and its born row.  LIVE:
 * it is the live version (else one in history). */
static int free_version(struct sfs_store *st, MDB_txn *txn, const MDB_val *k,
                        const MDB_val *stored, bool live)
{
    MDB_val payload = sfs_vpayload(stored);
    int rc = sfs_rec_release_w(st, txn, k, &payload, live);
    if (rc)
        return rc;
    return born_row(st, txn, sfs_vbirth(stored), k->mv_data, k->mv_size,
                    false);
}

/*
 * Kill the live version STORED of K at epoch cur (see THEORY).  The caller
 * deletes or overwrites the live row afterwards.  STORED may point into the
 * map, so it is copied before any write.
 */
static int kill_version(struct sfs_store *st, MDB_txn *txn, const MDB_val *k,
                        const MDB_val *stored_in)
{
    uint64_t birth = sfs_vbirth(stored_in);
    uint64_t cur = st->state.cur_epoch;
    uint8_t copy[4096];
    void *heap = NULL;
    void *p = copy;
    if (stored_in->mv_size > sizeof(copy)) {
        p = heap = malloc(stored_in->mv_size);
        if (!heap)
            return -ENOMEM;
    }
    memcpy(p, stored_in->mv_data, stored_in->mv_size);
    MDB_val stored = { stored_in->mv_size, p };
    int rc;

    if (birth > st->state.newest_snap) {
        rc = free_version(st, txn, k, &stored, true);
        goto out;
    }
    uint8_t hk[MAXK], dk[MAXK + 8];
    hist_key(hk, k->mv_data, k->mv_size, cur);
    MDB_val hkey = { k->mv_size + 8, hk };
    rc = mdb_err(mdb_put(txn, st->db_hist, &hkey, &stored, MDB_NOOVERWRITE));
    if (rc == -EEXIST) {
        sfs_log_corruption("two versions of one key die in epoch %llu",
                           (unsigned long long)cur);
        rc = -EIO;
    }
    if (rc)
        goto out;
    dead_key(dk, cur, birth, k->mv_data, k->mv_size);
    MDB_val dkey = { k->mv_size + 16, dk }, empty = { 0, NULL };
    rc = mdb_err(mdb_put(txn, st->db_dead, &dkey, &empty, 0));
    if (rc)
        goto out;
    MDB_val payload = sfs_vpayload(&stored);
    rc = deadstat_add(st, txn, cur, birth, 1,
                      (int64_t)sfs_rec_logical_size(k, &payload));
    if (!rc)
        rc = sfs_rec_to_history_w(st, txn, k, &payload);
out:
    free(heap);
    return rc;
}

/* ---- the record API ---- */

int sfs_vrec_get(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                 const void *key, size_t klen, MDB_val *val, uint64_t *birth)
{
    if (klen > SFS_KEY_MAX)
        return -ENAMETOOLONG;
    MDB_val k = { klen, (void *)key }, v;
    int rc = mdb_get(txn, st->db_live, &k, &v);
    if (rc && rc != MDB_NOTFOUND)
        return mdb_err(rc);
    if (!rc && sfs_vbirth(&v) <= view)
        goto found;
    if (view == SFS_VIEW_LIVE)
        return -ENOENT;

    /* The hist version with the smallest death > view. */
    uint8_t hk[MAXK];
    hist_key(hk, key, klen, view + 1);
    MDB_cursor *c;
    rc = mdb_cursor_open(txn, st->db_hist, &c);
    if (rc)
        return mdb_err(rc);
    MDB_val ck = { klen + 8, hk };
    rc = mdb_cursor_get(c, &ck, &v, MDB_SET_RANGE);
    mdb_cursor_close(c);
    if (rc)
        return rc == MDB_NOTFOUND ? -ENOENT : mdb_err(rc);
    if (ck.mv_size != klen + 8 || memcmp(ck.mv_data, key, klen) ||
        sfs_vbirth(&v) > view)
        return -ENOENT;
found:
    *birth = sfs_vbirth(&v);
    *val = sfs_vpayload(&v);
    return 0;
}

void sfs_vrec_touch(struct sfs_store *st, MDB_txn *txn, const void *key,
                    size_t klen)
{
    if (klen > SFS_KEY_MAX)
        return;
    MDB_val k = { klen, (void *)key }, v;
    uint8_t hash[SFS_HASH_LEN];
    if (!mdb_get(txn, st->db_live, &k, &v)) {
        MDB_val payload = sfs_vpayload(&v);
        if (sfs_rec_blockref(&k, &payload, hash))
            sfs_block_touch(st, txn, hash, false);
    }
    uint8_t hk[MAXK];
    hist_key(hk, key, klen, 0);
    MDB_cursor *c;
    if (mdb_cursor_open(txn, st->db_hist, &c))
        return;
    MDB_val ck = { klen + 8, hk };
    mdb_cursor_get(c, &ck, &v, MDB_SET_RANGE);
    mdb_cursor_close(c);
}

int sfs_vrec_put_w(struct sfs_store *st, MDB_txn *txn, const void *key,
                   size_t klen, const void *val, size_t vlen)
{
    if (klen > SFS_KEY_MAX)
        return -ENAMETOOLONG;
    MDB_val k = { klen, (void *)key }, old;
    uint64_t cur = st->state.cur_epoch;
    int rc = mdb_get(txn, st->db_live, &k, &old);
    if (rc && rc != MDB_NOTFOUND)
        return mdb_err(rc);
    struct sfs_qcharge qold = { 0, 0 }, qnew;
    if (!rc) {
        MDB_val payload = sfs_vpayload(&old);
        sfs_qtree_charge_of(&k, payload.mv_data, payload.mv_size, &qold);
    }
    sfs_qtree_charge_of(&k, val, vlen, &qnew);
    bool had_born_row = false;
    if (!rc) {
        if (sfs_vbirth(&old) == cur) {
            /* Same epoch: free in place, keep the born row. */
            MDB_val payload = sfs_vpayload(&old);
            rc = sfs_rec_release_w(st, txn, &k, &payload, true);
            had_born_row = true;
        } else {
            rc = kill_version(st, txn, &k, &old);
        }
        if (rc)
            return rc;
    }
    MDB_val v = { SFS_VHDR + vlen, NULL };
    rc = mdb_put(txn, st->db_live, &k, &v, MDB_RESERVE);
    if (rc)
        return mdb_err(rc);
    memcpy(v.mv_data, &cur, 8);
    if (vlen)
        memcpy((uint8_t *)v.mv_data + SFS_VHDR, val, vlen);
    rc = had_born_row ? 0 : born_row(st, txn, cur, key, klen, true);
    return rc ? rc : sfs_qtree_account_w(st, txn, &qold, &qnew);
}

int sfs_vrec_del_w(struct sfs_store *st, MDB_txn *txn, const void *key,
                   size_t klen)
{
    if (klen > SFS_KEY_MAX)
        return -ENAMETOOLONG;
    MDB_val k = { klen, (void *)key }, old;
    int rc = mdb_get(txn, st->db_live, &k, &old);
    if (rc)
        return mdb_err(rc);
    struct sfs_qcharge qold, qnone = { 0, 0 };
    MDB_val payload = sfs_vpayload(&old);
    sfs_qtree_charge_of(&k, payload.mv_data, payload.mv_size, &qold);
    rc = kill_version(st, txn, &k, &old);
    if (rc)
        return rc;
    rc = mdb_err(mdb_del(txn, st->db_live, &k, NULL));
    return rc ? rc : sfs_qtree_account_w(st, txn, &qold, &qnone);
}

/* ---- scanning a prefix as of a view ---- */

struct scan_cursor {
    MDB_cursor *c;
    MDB_val k, v;
    bool valid;
};

static int cursor_step(struct scan_cursor *sc, const void *prefix, size_t plen,
                       MDB_cursor_op op)
{
    int rc = mdb_cursor_get(sc->c, &sc->k, &sc->v, op);
    if (rc == MDB_NOTFOUND) {
        sc->valid = false;
        return 0;
    }
    if (rc)
        return mdb_err(rc);
    sc->valid = sc->k.mv_size >= plen && !memcmp(sc->k.mv_data, prefix, plen);
    return 0;
}

static int cursor_seek(struct scan_cursor *sc, const void *from, size_t flen,
                       const void *prefix, size_t plen)
{
    sc->k.mv_size = flen;
    sc->k.mv_data = (void *)from;
    return cursor_step(sc, prefix, plen, MDB_SET_RANGE);
}

/* Compare the base key of the hist cursor (its key minus the death) with
 * the live cursor's key. */
static int cmp_keys(const uint8_t *a, size_t alen, const uint8_t *b,
                    size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int scan_live(struct sfs_store *st, MDB_txn *txn, const void *prefix,
                     size_t plen, const void *start, size_t slen,
                     sfs_vrec_cb cb, void *arg)
{
    struct scan_cursor lc = { 0 };
    int rc = mdb_err(mdb_cursor_open(txn, st->db_live, &lc.c));
    if (rc)
        return rc;
    rc = cursor_seek(&lc, start, slen, prefix, plen);
    while (!rc && lc.valid) {
        MDB_val payload = sfs_vpayload(&lc.v);
        rc = cb(arg, &lc.k, &payload, sfs_vbirth(&lc.v));
        if (rc)
            break;
        rc = cursor_step(&lc, prefix, plen, MDB_NEXT);
    }
    mdb_cursor_close(lc.c);
    return rc > 0 ? 0 : rc;
}

/*
 * Snapshot view: merge the live and hist cursors.  For each distinct base
 * key, the live version wins if visible; otherwise the hist run of that
 * key is searched for death > view with birth <= view.
 */
static int scan_snapshot(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                         const void *prefix, size_t plen, const void *start,
                         size_t slen, sfs_vrec_cb cb, void *arg)
{
    struct scan_cursor lc = { 0 }, hc = { 0 };
    int rc = mdb_err(mdb_cursor_open(txn, st->db_live, &lc.c));
    if (rc)
        return rc;
    rc = mdb_err(mdb_cursor_open(txn, st->db_hist, &hc.c));
    if (rc) {
        mdb_cursor_close(lc.c);
        return rc;
    }
    rc = cursor_seek(&lc, start, slen, prefix, plen);
    if (!rc)
        rc = cursor_seek(&hc, start, slen, prefix, plen);
    uint8_t base[MAXK];
    while (!rc && (lc.valid || hc.valid)) {
        /* The next base key: the smaller of the two cursors' keys. */
        bool use_hist = hc.valid &&
            (!lc.valid || cmp_keys(hc.k.mv_data, hc.k.mv_size - 8,
                                   lc.k.mv_data, lc.k.mv_size) < 0);
        size_t blen = use_hist ? hc.k.mv_size - 8 : lc.k.mv_size;
        memcpy(base, use_hist ? hc.k.mv_data : lc.k.mv_data, blen);
        MDB_val bkey = { blen, base };
        bool emitted = false;
        if (lc.valid && lc.k.mv_size == blen && !memcmp(lc.k.mv_data, base, blen)) {
            if (sfs_vbirth(&lc.v) <= view) {
                MDB_val payload = sfs_vpayload(&lc.v);
                rc = cb(arg, &bkey, &payload, sfs_vbirth(&lc.v));
                emitted = true;
            }
            if (!rc)
                rc = cursor_step(&lc, prefix, plen, MDB_NEXT);
        }
        /* Walk the hist run of this base key. */
        while (!rc && hc.valid && hc.k.mv_size == blen + 8 &&
               !memcmp(hc.k.mv_data, base, blen)) {
            uint64_t death = sfs_get_be64((uint8_t *)hc.k.mv_data + blen);
            if (!emitted && death > view && sfs_vbirth(&hc.v) <= view) {
                MDB_val payload = sfs_vpayload(&hc.v);
                rc = cb(arg, &bkey, &payload, sfs_vbirth(&hc.v));
                emitted = true;
                if (rc)
                    break;
            }
            rc = cursor_step(&hc, prefix, plen, MDB_NEXT);
        }
    }
    mdb_cursor_close(lc.c);
    mdb_cursor_close(hc.c);
    return rc > 0 ? 0 : rc;
}

int sfs_vrec_scan(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                  const void *prefix, size_t plen, const void *start,
                  size_t slen, sfs_vrec_cb cb, void *arg)
{
    if (!start) {
        start = prefix;
        slen = plen;
    }
    if (view == SFS_VIEW_LIVE)
        return scan_live(st, txn, prefix, plen, start, slen, cb, arg);
    return scan_snapshot(st, txn, view, prefix, plen, start, slen, cb, arg);
}

/* ---- snapshots ---- */

static int snap_put(struct sfs_store *st, MDB_txn *txn,
                    const struct sfs_snap_rec *s)
{
    uint8_t k[8];
    sfs_put_be64(k, s->epoch);
    MDB_val key = { 8, k }, val = { sizeof(*s), (void *)s };
    return mdb_err(mdb_put(txn, st->db_snaps, &key, &val, 0));
}

int sfs_snap_set_ctime_w(struct sfs_store *st, MDB_txn *txn, uint64_t epoch,
                         int64_t sec, uint32_t nsec)
{
    struct sfs_snap_rec s;
    int rc = sfs_snap_get(st, txn, epoch, &s);
    if (rc)
        return rc;
    s.ctime_sec = sec;
    s.ctime_nsec = nsec;
    return snap_put(st, txn, &s);
}

int sfs_snap_foreach(struct sfs_store *st, MDB_txn *txn, sfs_snap_cb cb,
                     void *arg)
{
    MDB_cursor *c;
    int rc = mdb_err(mdb_cursor_open(txn, st->db_snaps, &c));
    if (rc)
        return rc;
    MDB_val k, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (!mrc) {
        struct sfs_snap_rec s;
        memset(&s, 0, sizeof(s));
        memcpy(&s, v.mv_data, v.mv_size < sizeof(s) ? v.mv_size : sizeof(s));
        rc = cb(arg, &s);
        if (rc)
            break;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc)
        return rc > 0 ? 0 : rc;
    return mrc == MDB_NOTFOUND ? 0 : mdb_err(mrc);
}

struct find_arg { const char *name; struct sfs_snap_rec *out; bool found; };

static int find_cb(void *a, const struct sfs_snap_rec *s)
{
    struct find_arg *fa = a;
    if (strcmp(s->name, fa->name))
        return 0;
    *fa->out = *s;
    fa->found = true;
    return 1;
}

int sfs_snap_find(struct sfs_store *st, MDB_txn *txn, const char *name,
                  struct sfs_snap_rec *out)
{
    struct find_arg fa = { name, out, false };
    int rc = sfs_snap_foreach(st, txn, find_cb, &fa);
    if (rc)
        return rc;
    return fa.found ? 0 : -ENOENT;
}

int sfs_snap_get(struct sfs_store *st, MDB_txn *txn, uint64_t epoch,
                 struct sfs_snap_rec *out)
{
    uint8_t k[8];
    sfs_put_be64(k, epoch);
    MDB_val key = { 8, k }, v;
    int rc = mdb_get(txn, st->db_snaps, &key, &v);
    if (rc)
        return rc == MDB_NOTFOUND ? -ENOENT : mdb_err(rc);
    memset(out, 0, sizeof(*out));
    memcpy(out, v.mv_data, v.mv_size < sizeof(*out) ? v.mv_size : sizeof(*out));
    return 0;
}

int sfs_snap_take_w(struct sfs_store *st, MDB_txn *txn, const char *name,
                    struct sfs_snap_rec *out)
{
    size_t len = strlen(name);
    if (sfs_snap_name_valid(name))
        return -EINVAL;
    struct sfs_snap_rec s;
    int rc = sfs_snap_find(st, txn, name, &s);
    if (rc == 0)
        return -EEXIST;
    if (rc != -ENOENT)
        return rc;
    if (st->state.next_snap_id >= SFS_SNAP_ID_MAX)
        return -EOVERFLOW;
    memset(&s, 0, sizeof(s));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    s.epoch = st->state.cur_epoch;
    s.id = st->state.next_snap_id;
    s.ctime_sec = now.tv_sec;
    s.ctime_nsec = (uint32_t)now.tv_nsec;
    memcpy(s.name, name, len);
    rc = snap_put(st, txn, &s);
    if (rc)
        return rc;
    st->state.next_snap_id++;
    st->state.newest_snap = s.epoch;
    st->state.cur_epoch++;
    if (out)
        *out = s;
    return 0;
}

/* Position C at the first key >= EPOCH; 0, or MDB_NOTFOUND. */
static int seek_epoch(MDB_cursor *c, uint64_t epoch, MDB_val *k)
{
    static __thread uint8_t kb[8];
    MDB_val v;
    sfs_put_be64(kb, epoch);
    k->mv_size = 8;
    k->mv_data = kb;
    return mdb_cursor_get(c, k, &v, MDB_SET_RANGE);
}

int sfs_snap_neighbours(struct sfs_store *st, MDB_txn *txn, uint64_t epoch,
                        uint64_t *prev, uint64_t *next)
{
    MDB_cursor *c;
    int rc = mdb_err(mdb_cursor_open(txn, st->db_snaps, &c));
    if (rc)
        return rc;
    MDB_val k, v;
    *prev = 0;
    *next = st->state.cur_epoch;
    int mrc = seek_epoch(c, epoch + 1, &k);
    if (!mrc)
        *next = sfs_get_be64(k.mv_data);
    mrc = seek_epoch(c, epoch, &k);
    if (mrc == MDB_NOTFOUND)
        mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    else if (!mrc)
        mrc = mdb_cursor_get(c, &k, &v, MDB_PREV);
    if (!mrc && sfs_get_be64(k.mv_data) < epoch)
        *prev = sfs_get_be64(k.mv_data);
    mdb_cursor_close(c);
    return mrc && mrc != MDB_NOTFOUND ? mdb_err(mrc) : 0;
}

/*
 * Free the hist versions that only the snapshot at EPOCH sees: deadlist
 * rows with death in (epoch, next] and birth in (prev, epoch].
 */
static int free_snapshot_only(struct sfs_store *st, MDB_txn *txn,
                              uint64_t epoch, uint64_t prev, uint64_t next)
{
    MDB_cursor *c;
    int rc = mdb_err(mdb_cursor_open(txn, st->db_dead, &c));
    if (rc)
        return rc;
    uint8_t start[16];
    sfs_put_be64(start, epoch + 1);
    sfs_put_be64(start + 8, 0);
    MDB_val k = { 16, start }, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    uint8_t kb[MAXK + 16];
    struct sfs_map_trim trim;
    sfs_map_trim_begin(st, &trim);
    while (!mrc) {
        uint64_t death = sfs_get_be64(k.mv_data);
        uint64_t birth = sfs_get_be64((uint8_t *)k.mv_data + 8);
        if (death > next)
            break;
        sfs_map_trim_step(&trim);
        if (birth <= prev || birth > epoch) {
            mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
            continue;
        }
        size_t klen = k.mv_size - 16;
        memcpy(kb, k.mv_data, k.mv_size);
        const uint8_t *key = kb + 16;
        uint8_t hk[MAXK];
        hist_key(hk, key, klen, death);
        MDB_val hkey = { klen + 8, hk }, hval;
        rc = mdb_err(mdb_get(txn, st->db_hist, &hkey, &hval));
        if (rc) {
            if (rc == -ENOENT) {
                sfs_log_corruption("deadlist row without hist version");
                rc = -EIO;
            }
            break;
        }
        /* Copy the version: the writes below may move or free its page. */
        uint8_t vcopy[4096];
        if (hval.mv_size > sizeof(vcopy)) {
            sfs_log_corruption("history version of %zu bytes", hval.mv_size);
            rc = -EIO;
            break;
        }
        memcpy(vcopy, hval.mv_data, hval.mv_size);
        hval.mv_data = vcopy;
        MDB_val base = { klen, (void *)key };
        MDB_val payload = sfs_vpayload(&hval);
        rc = deadstat_add(st, txn, death, birth, -1,
                          -(int64_t)sfs_rec_logical_size(&base, &payload));
        if (!rc)
            rc = free_version(st, txn, &base, &hval, false);
        if (!rc)
            rc = mdb_err(mdb_del(txn, st->db_hist, &hkey, NULL));
        if (!rc)
            rc = mdb_err(mdb_cursor_del(c, 0));
        if (rc)
            break;
        /* Re-seek at the deleted key: lands on the row after it. */
        k.mv_size = klen + 16;
        k.mv_data = kb;
        mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(c);
    if (rc)
        return rc;
    return mrc && mrc != MDB_NOTFOUND ? mdb_err(mrc) : 0;
}

int sfs_snap_delete_w(struct sfs_store *st, MDB_txn *txn, uint64_t epoch)
{
    int holds = sfs_snap_holds(st, txn, epoch, NULL, NULL);
    if (holds < 0)
        return holds;
    if (holds > 0)
        return -EBUSY;
    uint64_t fence;
    int rc = sfs_recv_fence(st, txn, &fence);
    if (rc && rc != -ENOENT)
        return rc;
    if (!rc && fence == epoch)
        return -EBUSY; /* exposed while newer ones are held back */
    return sfs_snap_delete_unheld_w(st, txn, epoch);
}

int sfs_snap_delete_unheld_w(struct sfs_store *st, MDB_txn *txn,
                             uint64_t epoch)
{
    uint8_t kb[8];
    sfs_put_be64(kb, epoch);
    MDB_val k = { 8, kb }, v;
    int rc = mdb_err(mdb_get(txn, st->db_snaps, &k, &v));
    if (rc)
        return rc;
    uint64_t prev, next;
    rc = sfs_snap_neighbours(st, txn, epoch, &prev, &next);
    if (rc)
        return rc;
    rc = free_snapshot_only(st, txn, epoch, prev, next);
    if (!rc)
        rc = sfs_cgroup_delete_w(st, txn, epoch);
    if (!rc)
        rc = sfs_snap_labels_delete_w(st, txn, epoch);
    if (rc)
        return rc;
    rc = mdb_err(mdb_del(txn, st->db_snaps, &k, NULL));
    if (rc)
        return rc;
    if (st->state.newest_snap == epoch)
        st->state.newest_snap = prev;
    return 0;
}
