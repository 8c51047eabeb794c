/*
 * autodelete.c - snapshot autodelete in the daemon.  When it is due and
 * which snapshot goes are the store's (store/autodelete.c); here it runs:
 * one snapshot per control change (stored cache first, committed and
 * synced), each deletion logged to STORE/daemon.log with the figures
 * that decided it, and the kernel told (snapdir.c).
 *
 * It runs when a write is about to fail for space (the write path and
 * the gate of space.c call it, then try once more: the writer goes on
 * while snapshots may go), and at every tick of the policy scheduler
 * (the reserve trigger, and a volume filling without writes failing).
 * One run at a time; a cheap read-only check comes first, so that a full
 * volume with nothing to delete costs no commit per failed write.  Not
 * while the volume is frozen for a consistency-group snapshot: the write
 * waiting in it would hold the freeze up (the write then gets ENOSPC).
 */
#define _GNU_SOURCE
#include "autodelete.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "control.h"

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;
static bool told_none; /* "nothing may be deleted" logged; under run_lock */

struct one {
    uint64_t need;
    bool started;
    bool deleted, none_left;
    char name[SFS_NAME_MAX + 1];
    char why[160];
};

/* Is a deletion due, and is there a snapshot that may go?  Read-only. */
static bool worth_a_change(struct vol *v, struct one *o)
{
    struct sfs_snap_rec s;
    MDB_txn *txn = vol_read_begin(v);
    int due = sfs_autodelete_due(v->st, txn, o->need, o->started, o->why,
                                 sizeof(o->why));
    int rc = due > 0 ? sfs_autodelete_pick(v->st, txn, &s) : 0;
    vol_read_end(v);
    o->none_left = due > 0 && rc == -ENOENT;
    return due > 0 && rc == 0;
}

/* The change: check again, pick and delete, in one nested transaction. */
static int delete_one(struct vol *v, MDB_txn *txn, void *arg)
{
    struct one *o = arg;
    o->deleted = false;
    int due = sfs_autodelete_due(v->st, txn, o->need, o->started, o->why,
                                 sizeof(o->why));
    if (due <= 0)
        return due;
    struct sfs_snap_rec s;
    int rc = sfs_autodelete_pick(v->st, txn, &s);
    if (rc == -ENOENT) {
        o->none_left = true;
        return 0;
    }
    if (!rc)
        rc = sfs_snap_delete_w(v->st, txn, s.epoch);
    if (!rc) {
        o->deleted = true;
        snprintf(o->name, sizeof(o->name), "%s", s.name);
    }
    return rc;
}

static void log_line(struct vol *v, const char *fmt, const char *a,
                     const char *b)
{
    fprintf(stderr, "snapfs: %s: autodelete: ", v->st->path);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
}

int autodelete_run(struct vol *v, uint64_t need)
{
    /* A receive's base is protected anyway; its snapshots are its own. */
    if (vol_frozen(v) || __atomic_load_n(&v->receiving, __ATOMIC_ACQUIRE))
        return 0;
    pthread_mutex_lock(&run_lock);
    struct one o = { .need = need };
    int deleted = 0;
    while (worth_a_change(v, &o)) {
        int rc = control_change(v, delete_one, &o);
        if (rc) {
            log_line(v, "deleting a snapshot: %s%s", strerror(-rc), "");
            break;
        }
        if (!o.deleted)
            break;
        deleted++;
        o.started = true;
        told_none = false;
        log_line(v, "deleted snapshot %s (%s)", o.name, o.why);
        if (v->notify_changed)
            v->notify_changed(v, VOL_CHANGED_SNAPSHOTS);
    }
    if (o.none_left && !deleted && !told_none) {
        told_none = true;
        log_line(v, "no snapshot may be deleted (%s)%s", o.why,
                 "; held ones and bases stay");
    }
    pthread_mutex_unlock(&run_lock);
    return deleted;
}
