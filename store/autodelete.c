/*
 * autodelete.c - snapshot autodelete, as ONTAP has it: when it is due and
 * which snapshot goes next.  The daemon runs it (fs/autodelete.c), one
 * snapshot per transaction.
 *
 * When (settings snapshot-autodelete, -trigger, -target):
 *   - trigger "volume": the live tree's share is nearly full (available
 *     below 2% of it, as ONTAP's 98%), or a write is about to fail for
 *     want of NEED bytes (the daemon says so); deleting goes on until the
 *     target share of it, and NEED and 8 MiB more, are available;
 *   - trigger "reserve": snapshots hold 98% of their reserve or more;
 *     deleting goes on until they hold at most (100 - target)% of it.
 * Which: the oldest snapshot that may go.  None of these may:
 *   - a held one (holds: clones, dumps, mirror and vault sources, users);
 *   - the snapshot of the newest dump of each path (the dump dates name
 *     it: the base the next incremental of that path is counted from);
 *   - on a mirror or vault destination, the newest received snapshot
 *     (the base of the next update) and the one exposed to clients.
 * Guarantees: a snapshot that may not go is never picked; when none may,
 * autodelete stops (-ENOENT) and writes get ENOSPC as without it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define AUTODELETE_FULL_PCT 98 /* the trigger: this full */
#define AUTODELETE_NEED_MARGIN (8u << 20) /* beyond what a write needed */

/* ---- when ---- */

struct autodelete_conf {
    bool on;
    bool reserve_trigger; /* else volume */
    uint32_t target;      /* percent */
};

static int conf_read(struct sfs_store *st, MDB_txn *txn,
                     struct autodelete_conf *c)
{
    int on = sfs_setting_is(st, txn, "snapshot-autodelete", "on");
    int res = sfs_setting_is(st, txn, "snapshot-autodelete-trigger",
                             "reserve");
    int rc = on < 0 ? on : res < 0 ? res
             : sfs_setting_percent(st, txn, "snapshot-autodelete-target",
                                   &c->target);
    c->on = on == 1;
    c->reserve_trigger = res == 1;
    return rc;
}

int sfs_autodelete_due(struct sfs_store *st, MDB_txn *txn, uint64_t need,
                       bool started, char *why, size_t cap)
{
    struct autodelete_conf c;
    struct sfs_space sp;
    int rc = conf_read(st, txn, &c);
    if (!rc && c.on)
        rc = sfs_space_get(st, txn, &sp);
    if (rc || !c.on)
        return rc;
    if (c.reserve_trigger) {
        bool trigger = sp.reserve &&
            sp.snapshots >= sp.reserve / 100 * AUTODELETE_FULL_PCT;
        bool target = sp.snapshots <= sp.reserve / 100 * (100 - c.target);
        snprintf(why, cap, "snapshots hold %.1f MiB of their %.1f MiB "
                 "reserve", sp.snapshots / 1048576.0, sp.reserve / 1048576.0);
        return (started || trigger) && !target;
    }
    /* A write about to fail counts as the trigger even if the room moved
     * meanwhile; what it needed, with a margin, is part of the target. */
    uint64_t goal = sp.live_size / 100 * c.target;
    if (need && need + AUTODELETE_NEED_MARGIN > goal)
        goal = need + AUTODELETE_NEED_MARGIN;
    bool trigger = need ||
        sp.avail < sp.live_size / 100 * (100 - AUTODELETE_FULL_PCT);
    bool target = sp.avail >= goal;
    snprintf(why, cap, "volume full: %.1f MiB of %.1f MiB available",
             sp.avail / 1048576.0, sp.live_size / 1048576.0);
    return (started || trigger) && !target;
}

/* ---- which ---- */

#define PROTECT_MAX 64

struct protected {
    uint64_t epochs[PROTECT_MAX];
    int n;
};

static void protect(struct protected *p, uint64_t epoch)
{
    if (epoch && p->n < PROTECT_MAX)
        p->epochs[p->n++] = epoch;
}

static bool is_protected(const struct protected *p, uint64_t epoch)
{
    for (int i = 0; i < p->n; i++)
        if (p->epochs[i] == epoch)
            return true;
    return false;
}

/* The dump dates come by path then level: keep the newest of each path. */
struct newest_dump {
    struct protected *p;
    char path[SFS_DUMP_PATH_MAX + 1];
    int64_t date;
    uint64_t epoch;
};

static int note_dump(void *arg, const struct sfs_dumpdate *d)
{
    struct newest_dump *nd = arg;
    if (strcmp(nd->path, d->path)) {
        protect(nd->p, nd->epoch);
        snprintf(nd->path, sizeof(nd->path), "%s", d->path);
        nd->date = INT64_MIN;
    }
    if (d->date >= nd->date) {
        nd->date = d->date;
        nd->epoch = d->epoch;
    }
    return 0;
}

/* The newest received snapshot (a destination's next base). */
struct newest_received {
    struct sfs_store *st;
    MDB_txn *txn;
    uint64_t epoch;
};

static int note_received(void *arg, const struct sfs_snap_rec *s)
{
    struct newest_received *nr = arg;
    uint64_t src;
    if (!sfs_recv_source_epoch(nr->st, nr->txn, s->epoch, &src))
        nr->epoch = s->epoch; /* oldest first: the last one wins */
    return 0;
}

static int bases(struct sfs_store *st, MDB_txn *txn, struct protected *p)
{
    struct newest_dump nd = { .p = p, .date = INT64_MIN };
    int rc = sfs_dumpdate_foreach(st, txn, note_dump, &nd);
    protect(p, nd.epoch);
    struct sfs_recv_state rs;
    if (!rc)
        rc = sfs_recv_state(st, txn, &rs);
    if (rc || !rs.follows)
        return rc;
    struct newest_received nr = { st, txn, 0 };
    rc = sfs_snap_foreach(st, txn, note_received, &nr);
    protect(p, nr.epoch);
    uint64_t published;
    if (!rc && !sfs_recv_published(st, txn, &published))
        protect(p, published);
    return rc;
}

struct pick {
    struct sfs_store *st;
    MDB_txn *txn;
    const struct protected *p;
    struct sfs_snap_rec *out;
    bool found;
};

static int pick_oldest(void *arg, const struct sfs_snap_rec *s)
{
    struct pick *pk = arg;
    if (is_protected(pk->p, s->epoch))
        return 0;
    int holds = sfs_snap_holds(pk->st, pk->txn, s->epoch, NULL, NULL);
    if (holds < 0)
        return holds;
    if (holds)
        return 0;
    *pk->out = *s;
    pk->found = true;
    return 1;
}

int sfs_autodelete_pick(struct sfs_store *st, MDB_txn *txn,
                        struct sfs_snap_rec *out)
{
    struct protected p = { .n = 0 };
    int rc = bases(st, txn, &p);
    struct pick pk = { st, txn, &p, out, false };
    if (!rc)
        rc = sfs_snap_foreach(st, txn, pick_oldest, &pk);
    return rc ? rc : pk.found ? 0 : -ENOENT;
}
