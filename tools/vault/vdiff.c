/*
 * vdiff.c - `vault diff`: what changed between two vaulted snapshots of
 * one volume, computed from the vault alone (the source may be gone).
 *
 * THEORY.  The store already knows how to diff two snapshots (store/
 * diff.c: created, deleted, modified and renamed paths, by the versions
 * born and killed between them, named through the directories), and
 * that is what `snapfs snapshot diff` prints.  So the vault gives it two
 * snapshots to diff: each vaulted snapshot's chain is replayed into a
 * scratch table of its own (the restorer, restore.c: the table ends
 * holding exactly that snapshot's records), and a private store is made
 * in which A's records are written as they are, snapshot "a" taken, then
 * B's table is walked beside A's in key order (both are sorted) and
 * every record that B has new or with other bytes is put, every record
 * only A has is killed, and snapshot "b" taken.  The store's diff of "a"
 * and "b" is then exactly the diff of the two source snapshots, in the
 * same format.
 *
 * No block is fetched: records are written raw (sfs_vrec_put_w), so an
 * extent names its block by hash without the block being there; the diff
 * compares versions, never data.  Costs: the two snapshots' metadata
 * (their chains read and replayed, the records written once and the
 * changed ones again), never their data; space in SCRATCH about three
 * times the snapshot's metadata.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "repo.h"

#define DIFF_BATCH 65536 /* records per transaction of the private store */

struct diff_writer {
    struct vault *v;
    struct sfs_store *st;
    MDB_txn *txn;
    uint64_t pending;
};

static int writer_fail(struct diff_writer *w, int rc, const char *what)
{
    return vault_fail(w->v, rc, "the diff's private store: %s: %s", what,
                      strerror(-rc));
}

/* Commit now and then: bounded memory. */
static int writer_step(struct diff_writer *w)
{
    if (++w->pending < DIFF_BATCH)
        return 0;
    w->pending = 0;
    int rc = sfs_txn_commit(w->st, w->txn);
    w->txn = NULL;
    if (!rc)
        rc = sfs_txn_begin(w->st, NULL, true, &w->txn);
    return rc ? writer_fail(w, rc, "commit") : 0;
}

static int cursor_of(MDB_env *env, MDB_dbi dbi, MDB_txn **txn,
                     MDB_cursor **cur)
{
    int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, txn);
    if (!rc)
        rc = mdb_cursor_open(*txn, dbi, cur);
    return sfs_mdb_errno(rc);
}

static int cursor_next(MDB_cursor *c, MDB_val *k, MDB_val *v, bool first,
                       bool *end)
{
    int rc = mdb_cursor_get(c, k, v, first ? MDB_FIRST : MDB_NEXT);
    *end = rc == MDB_NOTFOUND;
    return *end ? 0 : sfs_mdb_errno(rc);
}

static int key_order(const MDB_val *a, const MDB_val *b)
{
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    int c = memcmp(a->mv_data, b->mv_data, n);
    return c ? c : (a->mv_size > b->mv_size) - (a->mv_size < b->mv_size);
}

/* The records of A's table whose keys B's lacks are killed, those B has
 * new or different are put; with A NULL, every record of B is put. */
static int write_change(struct diff_writer *w, struct vault_restorer *a,
                        struct vault_restorer *b)
{
    MDB_env *ea = NULL, *eb;
    MDB_dbi da = 0, db;
    MDB_txn *ta = NULL, *tb = NULL;
    MDB_cursor *ca = NULL, *cb = NULL;
    vault_restorer_table(b, &eb, &db);
    if (a)
        vault_restorer_table(a, &ea, &da);
    int rc = cursor_of(eb, db, &tb, &cb);
    if (!rc && a)
        rc = cursor_of(ea, da, &ta, &ca);
    MDB_val ka, va, kb, vb;
    bool enda = !a, endb = false;
    if (!rc && a)
        rc = cursor_next(ca, &ka, &va, true, &enda);
    if (!rc)
        rc = cursor_next(cb, &kb, &vb, true, &endb);
    while (!rc && !(enda && endb)) {
        int c = enda ? 1 : endb ? -1 : key_order(&ka, &kb);
        if (c < 0) { /* only A has it */
            rc = sfs_vrec_del_w(w->st, w->txn, ka.mv_data, ka.mv_size);
        } else if (c > 0 || va.mv_size != vb.mv_size ||
                   memcmp(va.mv_data, vb.mv_data, va.mv_size)) {
            rc = sfs_vrec_put_w(w->st, w->txn, kb.mv_data, kb.mv_size,
                                vb.mv_data, vb.mv_size);
        }
        if (!rc)
            rc = writer_step(w);
        if (!rc && c <= 0)
            rc = cursor_next(ca, &ka, &va, false, &enda);
        if (!rc && c >= 0)
            rc = cursor_next(cb, &kb, &vb, false, &endb);
    }
    if (ca)
        mdb_cursor_close(ca);
    if (cb)
        mdb_cursor_close(cb);
    if (ta)
        mdb_txn_abort(ta);
    if (tb)
        mdb_txn_abort(tb);
    return rc && !w->v->why[0] ? writer_fail(w, rc, "writing records") : rc;
}

static int take(struct diff_writer *w, const char *name, uint64_t *epoch)
{
    struct sfs_snap_rec s = { 0 };
    int rc = sfs_snap_take_w(w->st, w->txn, name, &s);
    *epoch = s.epoch;
    return rc ? writer_fail(w, rc, "a snapshot") : 0;
}

/* The private store with "a" and "b", then its diff into OUT. */
static int diff_in_store(struct vault *v, struct vault_restorer *ra,
                         struct vault_restorer *rb, const char *path,
                         const struct vault_manifest *m, FILE *out)
{
    struct diff_writer w = { .v = v };
    int rc = vault_mkfs_like(v, m, path, &w.st);
    if (rc)
        return rc;
    uint64_t ea = 0, eb = 0;
    rc = sfs_txn_begin(w.st, NULL, true, &w.txn);
    if (rc)
        rc = writer_fail(&w, rc, "a transaction");
    if (!rc)
        rc = write_change(&w, NULL, ra);
    if (!rc)
        rc = take(&w, "a", &ea);
    if (!rc)
        rc = write_change(&w, ra, rb);
    if (!rc)
        rc = take(&w, "b", &eb);
    if (!rc) {
        rc = sfs_diff_write(w.st, w.txn, ea, eb, out);
        if (rc)
            vault_fail(v, rc, "the diff: %s", strerror(-rc));
    }
    if (w.txn)
        mdb_txn_abort(w.txn);
    sfs_close(w.st);
    return rc;
}

int vault_diff(struct vault *v, const struct vault_snapshot *a,
               const struct vault_snapshot *b, const char *scratch, FILE *out)
{
    v->why[0] = 0;
    if (memcmp(a->m.volume, b->m.volume, 16))
        return vault_fail(v, -EXDEV, "%s and %s are snapshots of different "
                          "volumes", a->m.name, b->m.name);
    if (a->m.epoch == b->m.epoch)
        return vault_fail(v, -EINVAL, "%s is given twice; give two "
                          "different snapshots", a->m.name);
    if (a->m.epoch > b->m.epoch)
        return vault_fail(v, -EINVAL, "%s is newer than %s; give the older "
                          "one first", a->m.name, b->m.name);
    char pa[PATH_MAX], pb[PATH_MAX], ps[PATH_MAX];
    if (snprintf(pa, sizeof(pa), "%s/a", scratch) >= (int)sizeof(pa) ||
        snprintf(pb, sizeof(pb), "%s/b", scratch) >= (int)sizeof(pb) ||
        snprintf(ps, sizeof(ps), "%s/store", scratch) >= (int)sizeof(ps))
        return vault_fail(v, -ENAMETOOLONG, "%s: name too long", scratch);
    if (mkdir(scratch, 0700))
        return vault_fail(v, -errno, "%s: %s", scratch, strerror(errno));
    static const struct vault_restore_opts none;
    struct vault_restore_result r1, r2;
    struct vault_restorer *ra = NULL, *rb = NULL;
    int rc = vault_restorer_open(v, a, pa, &none, &r1, &ra);
    if (!rc)
        rc = vault_restorer_open(v, b, pb, &none, &r2, &rb);
    if (!rc)
        rc = diff_in_store(v, ra, rb, ps, &b->m, out);
    vault_restorer_close(ra);
    vault_restorer_close(rb);
    return rc; /* the caller removes SCRATCH (and SCRATCH/store) */
}
