/*
 * volume.c - the checks of one volume for `snapfs health`: free space and
 * its trend, the store's consistency (quick, or the full fsck), snapshot
 * ids, the age of the last dumps, clones killed with their holds and
 * partial stores left, LMDB reader slots of dead processes.
 *
 * Guarantees: every check reads the store in one read transaction of a
 * store opened read-only and changes nothing, except with --fix the
 * reader table (mdb_reader_check: the slots of dead processes, which LMDB
 * itself would clear at the next writer's open); each gives exactly one
 * result line.
 *
 * THEORY (the trend of free space).  The daemon samples the live tree's
 * used and available bytes at most once an hour (store/spacelog.c).  The
 * trend is the least-squares slope of used bytes over time through the
 * samples of the last HEALTH_TREND_DAYS days before the newest one, in
 * bytes a day; with at least two samples an hour apart.  A positive slope
 * gives the days until the available bytes are used up at that rate; the
 * level is the worse of the fill level (HEALTH_SPACE_*_PCT) and the time
 * to full (HEALTH_FULL_*_DAYS).  Deleting snapshots or files makes the
 * slope fall at once, since each sample is what was used then.
 */
#define _GNU_SOURCE
#include "health/health.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "leftovers.h"

void health_add(health_report rep, void *arg, const char *check,
                const char *subject, int level, const char *fmt, ...)
{
    struct health_result r = { .check = check, .level = level };
    snprintf(r.subject, sizeof(r.subject), "%s", subject);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.message, sizeof(r.message), fmt, ap);
    va_end(ap);
    rep(arg, &r);
}

/* ---- space ---- */

struct trend {
    int64_t newest;
    struct sfs_space_sample *v;
    size_t n, cap;
};

static int trend_add(void *arg, const struct sfs_space_sample *s)
{
    struct trend *t = arg;
    t->newest = s->when;
    return array_append(&t->v, &t->n, &t->cap, s, sizeof(*s));
}

/* Bytes a day (least squares) over the samples of the last days: 0 and
 * *SLOPE, or -ENODATA when there are not two samples an hour apart. */
static int trend_slope(const struct trend *t, double *slope, double *days,
                       size_t *used)
{
    int64_t from = t->newest - HEALTH_TREND_DAYS * 86400;
    double sx = 0, sy = 0, n = 0;
    int64_t first = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].when >= from) {
            if (!n)
                first = t->v[i].when;
            sx += (double)(t->v[i].when - first) / 86400;
            sy += (double)t->v[i].used;
            n++;
        }
    if (n < 2 || t->newest - first < 3600)
        return -ENODATA;
    double mx = sx / n, my = sy / n, sxy = 0, sxx = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].when >= from) {
            double x = (double)(t->v[i].when - first) / 86400 - mx;
            sxy += x * ((double)t->v[i].used - my);
            sxx += x * x;
        }
    *slope = sxy / sxx;
    *days = (double)(t->newest - first) / 86400;
    *used = (size_t)n;
    return 0;
}

static void check_space(struct sfs_store *st, MDB_txn *txn, const char *subj,
                        health_report rep, void *arg)
{
    struct sfs_space sp;
    struct trend t = { 0 };
    int rc = sfs_space_get(st, txn, &sp);
    if (!rc)
        rc = sfs_spacelog_foreach(st, txn, trend_add, &t);
    if (rc) {
        health_add(rep, arg, "space", subj, HEALTH_CRITICAL, "cannot read "
                   "the space: %s", strerror(-rc));
        free(t.v);
        return;
    }
    uint64_t used = sp.live_size > sp.avail ? sp.live_size - sp.avail : 0;
    unsigned pct = sp.live_size ? (unsigned)(used * 100 / sp.live_size) : 100;
    int level = pct >= HEALTH_SPACE_CRIT_PCT   ? HEALTH_CRITICAL
                : pct >= HEALTH_SPACE_WARN_PCT ? HEALTH_WARNING : HEALTH_OK;
    char size[32], avail[32], rate[32], trend[200];
    format_bytes(sp.live_size, size, sizeof(size));
    format_bytes(sp.avail, avail, sizeof(avail));
    double slope, days;
    size_t samples;
    if (trend_slope(&t, &slope, &days, &samples)) {
        snprintf(trend, sizeof(trend), "trend not known yet (%zu sample%s; "
                 "the daemon takes one an hour)", t.n, t.n == 1 ? "" : "s");
    } else {
        format_bytes((uint64_t)(slope < 0 ? -slope : slope), rate,
                     sizeof(rate));
        int n = snprintf(trend, sizeof(trend), "trend %s%s a day over %.1f "
                         "days (%zu samples)", slope < 0 ? "-" : "+", rate,
                         days, samples);
        if (slope > 0 && n > 0) {
            double full = (double)sp.avail / slope;
            snprintf(trend + n, sizeof(trend) - (size_t)n, ", full in about "
                     "%.1f days", full);
            if (full < HEALTH_FULL_CRIT_DAYS)
                level = HEALTH_CRITICAL;
            else if (full < HEALTH_FULL_WARN_DAYS && level < HEALTH_WARNING)
                level = HEALTH_WARNING;
        }
    }
    health_add(rep, arg, "space", subj, level, "%u%% of %s used, %s "
               "available; %s", pct, size, avail, trend);
    free(t.v);
}

/* ---- consistency ---- */

struct quick {
    struct sfs_store *st;
    MDB_txn *txn;
    uint64_t newest, count;
    char problem[300];
    unsigned problems;
};

static void quick_problem(struct quick *q, const char *what, uint64_t epoch)
{
    if (!q->problems++)
        snprintf(q->problem, sizeof(q->problem), "%s (epoch %llu)", what,
                 (unsigned long long)epoch);
}

static int quick_snap(void *arg, const struct sfs_snap_rec *s)
{
    struct quick *q = arg;
    if (s->epoch >= q->st->state.cur_epoch)
        quick_problem(q, "a snapshot newer than the live tree", s->epoch);
    if (s->id >= q->st->state.next_snap_id || s->id == 0)
        quick_problem(q, "a snapshot id not yet given out", s->epoch);
    if (s->epoch <= q->newest)
        quick_problem(q, "snapshots out of order", s->epoch);
    if (sfs_snap_name_valid(s->name))
        quick_problem(q, "a snapshot with an invalid name", s->epoch);
    q->newest = s->epoch;
    q->count++;
    return 0;
}

static int quick_record(void *arg, uint64_t epoch)
{
    struct quick *q = arg;
    struct sfs_snap_rec s;
    if (sfs_snap_get(q->st, q->txn, epoch, &s))
        quick_problem(q, "a group record without its snapshot", epoch);
    return 0;
}

static int quick_labels(void *arg, uint64_t epoch, const char *labels)
{
    struct quick *q = arg;
    struct sfs_snap_rec s;
    if (sfs_snap_get(q->st, q->txn, epoch, &s) || sfs_labels_valid(labels))
        quick_problem(q, "labels without their snapshot, or unreadable",
                      epoch);
    return 0;
}

struct full {
    unsigned problems;
    char first[300];
};

static void full_problem(void *arg, const char *problem)
{
    struct full *f = arg;
    if (!f->problems++)
        snprintf(f->first, sizeof(f->first), "%s", problem);
}

static void check_consistency(struct sfs_store *st, MDB_txn *txn,
                              const char *subj, const struct health_opts *o,
                              health_report rep, void *arg, uint64_t *count)
{
    struct quick q = { .st = st, .txn = txn };
    int rc = sfs_snap_foreach(st, txn, quick_snap, &q);
    if (!rc && q.newest != st->state.newest_snap)
        quick_problem(&q, "the newest snapshot is not the one the state names",
                      st->state.newest_snap);
    if (!rc)
        rc = sfs_cgroup_foreach_epoch(st, txn, quick_record, &q);
    if (!rc)
        rc = sfs_snap_labels_foreach(st, txn, quick_labels, &q);
    *count = q.count;
    if (rc) {
        health_add(rep, arg, "consistency", subj, HEALTH_CRITICAL,
                   "reading the store failed: %s", strerror(-rc));
        return;
    }
    if (q.problems) {
        health_add(rep, arg, "consistency", subj, HEALTH_CRITICAL,
                   "%u problem%s in the snapshot records, first: %s; run "
                   "snapfs fsck", q.problems, q.problems == 1 ? "" : "s",
                   q.problem);
        return;
    }
    if (!o->full) {
        health_add(rep, arg, "consistency", subj, HEALTH_OK, "quick check "
                   "clean: %llu snapshot records, their groups and labels "
                   "(--full runs fsck)", (unsigned long long)q.count);
        return;
    }
    struct full f = { 0 };
    rc = sfs_fsck(st, full_problem, &f);
    if (rc < 0)
        health_add(rep, arg, "consistency", subj, HEALTH_CRITICAL,
                   "fsck could not run: %s", strerror(-rc));
    else if (f.problems)
        health_add(rep, arg, "consistency", subj, HEALTH_CRITICAL,
                   "fsck found %u problem%s, first: %s", f.problems,
                   f.problems == 1 ? "" : "s", f.first);
    else
        health_add(rep, arg, "consistency", subj, HEALTH_OK, "fsck clean "
                   "(every block, reference count, the tree, history and "
                   "qtrees)");
}

/* ---- snapshot ids ---- */

static void check_snapshots(struct sfs_store *st, const char *subj,
                            uint64_t count, health_report rep, void *arg)
{
    uint64_t used = st->state.next_snap_id ? st->state.next_snap_id - 1 : 0;
    unsigned pct = (unsigned)(used * 100 / SFS_SNAP_ID_MAX);
    int level = pct >= HEALTH_IDS_CRIT_PCT   ? HEALTH_CRITICAL
                : pct >= HEALTH_IDS_WARN_PCT ? HEALTH_WARNING : HEALTH_OK;
    health_add(rep, arg, "snapshots", subj, level, "%llu snapshots; %llu of "
               "the %llu snapshot ids a volume has in its life used (%u%%)",
               (unsigned long long)count, (unsigned long long)used,
               (unsigned long long)SFS_SNAP_ID_MAX, pct);
}

/* ---- dumps ---- */

struct dumps {
    int64_t now, newest;
    FILE *text;
    size_t n;
};

static int dump_seen(void *arg, const struct sfs_dumpdate *d)
{
    struct dumps *ds = arg;
    double days = (double)(ds->now - d->date) / 86400;
    fprintf(ds->text, "%s%s level %d %.1f days ago", ds->n++ ? ", " : "",
            d->path, (int)d->level, days);
    if (d->date > ds->newest)
        ds->newest = d->date;
    return 0;
}

static void check_dumps(struct sfs_store *st, MDB_txn *txn, const char *subj,
                        const struct health_opts *o, health_report rep,
                        void *arg)
{
    char *text = NULL;
    size_t len = 0;
    struct dumps ds = { .now = o->now };
    ds.text = open_memstream(&text, &len);
    int rc = ds.text ? sfs_dumpdate_foreach(st, txn, dump_seen, &ds) : -ENOMEM;
    if (ds.text)
        fclose(ds.text);
    if (rc)
        health_add(rep, arg, "dumps", subj, HEALTH_WARNING, "cannot read the "
                   "dump dates: %s", strerror(-rc));
    else if (!ds.n)
        health_add(rep, arg, "dumps", subj, HEALTH_OK, "no dump recorded");
    else {
        double days = (double)(o->now - ds.newest) / 86400;
        int level = days > HEALTH_DUMP_CRIT_DAYS   ? HEALTH_CRITICAL
                    : days > HEALTH_DUMP_WARN_DAYS ? HEALTH_WARNING : HEALTH_OK;
        health_add(rep, arg, "dumps", subj, level, "newest dump %.1f days "
                   "ago; last dump per path and level: %s", days, text);
    }
    free(text);
}

/* ---- leftovers: clones killed ---- */

static void check_leftovers(struct sfs_store *st, MDB_txn *txn,
                            const char *subj, health_report rep, void *arg)
{
    struct leftover *v = NULL;
    size_t n = 0;
    int rc = leftovers_find(st, txn, &v, &n);
    if (rc)
        health_add(rep, arg, "leftovers", subj, HEALTH_WARNING, "cannot read "
                   "the holds: %s", strerror(-rc));
    else if (!n)
        health_add(rep, arg, "leftovers", subj, HEALTH_OK, "no hold or "
                   "partial clone of a command that is gone");
    for (size_t i = 0; i < n; i++) {
        const char *partial = leftover_partial(&v[i]);
        health_add(rep, arg, "leftovers", subj, HEALTH_WARNING, "snapshot %s "
                   "is held by '%s', a clone that is gone%s%s (--fix "
                   "releases it%s)", v[i].snap, v[i].tag,
                   partial ? "; its partial store is left: " : "",
                   partial ? partial : "",
                   partial ? " and removes the partial store" : "");
    }
    free(v);
}

/* ---- LMDB reader slots ---- */

struct readers {
    unsigned slots, dead;
    char pids[128];
};

static int reader_line(const char *line, void *arg)
{
    struct readers *r = arg;
    long pid;
    if (sscanf(line, "%ld", &pid) != 1 || pid <= 0)
        return 0; /* the header, or "(no active readers)" */
    r->slots++;
    if (kill((pid_t)pid, 0) && errno == ESRCH) {
        size_t n = strlen(r->pids);
        if (r->dead++ < 8)
            snprintf(r->pids + n, sizeof(r->pids) - n, "%s%ld", n ? "," : "",
                     pid);
    }
    return 0;
}

static void check_readers(struct sfs_store *st, const char *subj,
                          const struct health_opts *o, health_report rep,
                          void *arg)
{
    struct readers r = { 0 };
    mdb_reader_list(st->env, reader_line, &r);
    if (!r.dead) {
        health_add(rep, arg, "readers", subj, HEALTH_OK, "%u LMDB reader "
                   "slot%s in use, none of a dead process", r.slots,
                   r.slots == 1 ? "" : "s");
        return;
    }
    int cleared = 0;
    if (o->fix && !mdb_reader_check(st->env, &cleared) && cleared > 0) {
        health_add(rep, arg, "readers", subj, HEALTH_OK, "cleared %d LMDB "
                   "reader slot%s of dead processes (pid %s)", cleared,
                   cleared == 1 ? "" : "s", r.pids);
        return;
    }
    health_add(rep, arg, "readers", subj, HEALTH_WARNING, "%u LMDB reader "
               "slot%s held by dead processes (pid %s): they keep old pages "
               "from being reused until cleared (--fix)", r.dead,
               r.dead == 1 ? "" : "s", r.pids);
}

void health_volume(struct sfs_store *st, const char *subj,
                   const struct health_opts *o, health_report rep, void *arg)
{
    MDB_txn *txn;
    int rc = sfs_state_reload(st);
    if (!rc)
        rc = sfs_txn_begin(st, NULL, false, &txn);
    if (rc) {
        health_add(rep, arg, "consistency", subj, HEALTH_CRITICAL,
                   "cannot read the store: %s", strerror(-rc));
        return;
    }
    uint64_t count = 0;
    check_space(st, txn, subj, rep, arg);
    check_consistency(st, txn, subj, o, rep, arg, &count);
    check_snapshots(st, subj, count, rep, arg);
    check_dumps(st, txn, subj, o, rep, arg);
    check_leftovers(st, txn, subj, rep, arg);
    mdb_txn_abort(txn);
    check_readers(st, subj, o, rep, arg);
}
