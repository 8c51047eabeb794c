/*
 * scheduler.c - runs a mounted volume's snapshot policies on time.
 *
 * A thread wakes at mount and then every tick (SNAPFS_POLICY_TICK_MS
 * milliseconds, default 30000), reads the policy clock, and if a policy
 * is due runs every due policy through control_change(): the write cache
 * is stored first, the snapshots and the deletes of retention happen in
 * one nested transaction of the batch, and it is committed and synced
 * before the events are logged (to stderr, which is STORE/daemon.log).
 * A slot is therefore taken at most one tick late, and a daemon that was
 * down across slots takes one snapshot for the latest at its first tick
 * (see store/policy.c).  Nothing is written when nothing is due.
 *
 * A policy with hooks (application-consistent snapshots, hooks.c) runs
 * alone, after the others: its pre hook runs on this thread with no lock
 * held and no transaction open (FUSE threads go on serving, and the hook
 * may write to the volume: a database checkpoint), then its snapshot,
 * labelled, is one control change, then its post hook.  A hook that hangs
 * holds this thread up to its timeout, never a client.  The hooks' output
 * and outcome go to the log.
 *
 * Each tick also takes a sample of the volume's space when one is due
 * (at most one an hour, by the policy clock; store/spacelog.c), from which
 * `snapfs health` computes the trend of its free space.
 *
 * Each tick also runs snapshot autodelete if it is due (autodelete.c):
 * the reserve trigger, and a volume nearly full before writes fail.
 *
 * After each tick the command layer's hook runs (scheduler_set_hook),
 * told which snapshots the policies created: the vault runs the updates
 * of its relationships from there, as child processes, so that nothing
 * here waits for an object store and fs/ knows nothing of vaults.
 *
 * The clock is time(2).  For tests, SNAPFS_CLOCK_FILE may name a file
 * holding seconds since the epoch, read at every tick and by the control
 * commands that need "now": tests move time by rewriting the file instead
 * of sleeping.  It is a test hook, not a setting.
 */
#define _GNU_SOURCE
#include "scheduler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autodelete.h"
#include "control.h"
#include "hooks.h"

/* What hooks are told the volume is (SNAPFS_VOLUME) and the log's name
 * of it: a daemon serves one volume, set once by scheduler_start. */
static const char *hook_volume = "";
static const char *log_store = "";

int scheduler_clock(int64_t *now)
{
    const char *path = getenv("SNAPFS_CLOCK_FILE");
    if (!path || !*path) {
        *now = (int64_t)time(NULL);
        return 0;
    }
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    long long v;
    int n = fscanf(f, "%lld", &v);
    fclose(f);
    if (n != 1 || v <= 0)
        return -EINVAL;
    *now = v;
    return 0;
}

static struct scheduler_hook hook;

void scheduler_set_hook(const struct scheduler_hook *h)
{
    hook = *h;
}

/* ---- one run ---- */

/* One run: every due policy without hooks (NAME NULL), or policy NAME
 * with LABELS (or ABANDON), its events kept. */
struct run_arg {
    int64_t now;
    const char *name, *labels;
    bool abandon;
    char *events;
    size_t len;
    int changes;
};

static int run_due(struct vol *v, MDB_txn *txn, void *arg)
{
    struct run_arg *ra = arg;
    free(ra->events); /* of an attempt that was undone */
    ra->events = NULL;
    FILE *f = open_memstream(&ra->events, &ra->len);
    if (!f)
        return -ENOMEM;
    int rc = ra->name
                 ? sfs_policy_run_one_w(v->st, txn, ra->name, ra->now,
                                        ra->labels, ra->abandon,
                                        sfs_policy_event_write, f)
                 : sfs_policy_run_due_w(v->st, txn, ra->now,
                                        sfs_policy_event_write, f);
    if (fclose(f) && rc >= 0)
        rc = -ENOMEM;
    if (rc < 0)
        return rc;
    ra->changes = rc;
    return 0;
}

/* ---- policies with hooks: one by one, their hooks around them ---- */

static void log_hook_line(void *arg, const char *line)
{
    fprintf(stderr, "snapfs: %s: policy %s: %s\n", log_store,
            (const char *)arg, line);
}

/* Run policy H with its hooks; its events are appended to OUT. */
static int run_hooked(struct vol *v, int64_t now,
                      const struct sfs_policy_hooked *h, FILE *out,
                      int *changes)
{
    struct hooks_run r = { .spec = &h->p.hooks, .volume = hook_volume,
                           .snapshot = h->snap, .log = log_hook_line,
                           .log_arg = (void *)h->p.name };
    hooks_before(&r);
    struct run_arg ra = { .name = h->p.name, .now = now, .labels = r.labels,
                          .abandon = r.verdict == HOOKS_ABANDONED };
    int rc = control_change(v, run_due, &ra);
    hooks_after(&r, rc ? "failed" : hooks_result_word(r.verdict));
    if (!rc && ra.events)
        fputs(ra.events, out);
    free(ra.events);
    *changes += ra.changes;
    return rc;
}

static int run_all_hooked(struct vol *v, int64_t now, FILE *out,
                          int *changes)
{
    struct sfs_policy_hooked *due;
    size_t n;
    MDB_txn *txn = vol_read_begin(v);
    int rc = sfs_policy_hooked_due(v->st, txn, now, &due, &n);
    vol_read_end(v);
    for (size_t i = 0; !rc && i < n; i++)
        rc = run_hooked(v, now, &due[i], out, changes);
    free(due);
    return rc;
}

int scheduler_run(struct vol *v, int64_t now, char **events)
{
    struct run_arg ra = { .now = now };
    int rc = control_change(v, run_due, &ra);
    char *hooked = NULL;
    size_t hlen = 0;
    FILE *f = rc ? NULL : open_memstream(&hooked, &hlen);
    if (!rc && f) {
        if (ra.events)
            fputs(ra.events, f);
        rc = run_all_hooked(v, now, f, &ra.changes);
        fclose(f);
        free(ra.events);
        ra.events = hooked;
    } else if (!rc) {
        rc = -ENOMEM;
    }
    if (ra.changes && v->notify_changed)
        v->notify_changed(v, VOL_CHANGED_SNAPSHOTS);
    if (rc) {
        free(ra.events);
        ra.events = NULL;
    }
    *events = ra.events;
    return rc;
}

/* ---- the thread ---- */

/* Log EVENTS (taken apart); the names of the snapshots created are left
 * in CREATED (pointing into EVENTS, N at most CAP). */
static void log_events(const struct scheduler *s, const char *when,
                       char *events, char **created, size_t cap, size_t *n)
{
    static const char *const what[] = {
        [SFS_POLICY_CREATED] = "created snapshot",
        [SFS_POLICY_EXISTED] = "snapshot exists already, not taken:",
        [SFS_POLICY_DELETED] = "deleted snapshot",
        [SFS_POLICY_HELD] = "kept held snapshot",
        [SFS_POLICY_ABANDONED] = "abandoned snapshot (its pre hook failed; "
                                 "nothing taken):",
    };
    for (char *save = NULL, *line = strtok_r(events, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        int event;
        char *policy, *snap;
        if (sfs_policy_event_parse(line, &event, &policy, &snap))
            continue;
        fprintf(stderr, "snapfs: %s: %s: policy %s: %s %s\n", s->store,
                when, policy, what[event], snap);
        if (event == SFS_POLICY_CREATED && *n < cap)
            created[(*n)++] = snap;
    }
}

static int record_space(struct vol *v, MDB_txn *txn, void *arg)
{
    int rc = sfs_spacelog_record_w(v->st, txn, *(int64_t *)arg);
    return rc < 0 ? rc : 0;
}

/* A space sample, when one is due (a read first: no commit otherwise). */
static void sample_space(struct scheduler *s, int64_t now)
{
    MDB_txn *txn = vol_read_begin(s->vol);
    int due = sfs_spacelog_due(s->vol->st, txn, now);
    vol_read_end(s->vol);
    int rc = due > 0 ? control_change(s->vol, record_space, &now) : due;
    if (rc)
        fprintf(stderr, "snapfs: %s: recording a space sample: %s\n",
                s->store, strerror(-rc));
}

static void tick(struct scheduler *s)
{
    /* A receive fills the live tree: a snapshot of it now would hold part
     * of a stream.  Due policies run at the first tick after it. */
    if (__atomic_load_n(&s->vol->receiving, __ATOMIC_ACQUIRE))
        return;
    int64_t now;
    int rc = scheduler_clock(&now);
    if (rc) {
        fprintf(stderr, "snapfs: %s: policies: reading the clock %s: %s\n",
                s->store, getenv("SNAPFS_CLOCK_FILE"), strerror(-rc));
        return;
    }
    MDB_txn *txn = vol_read_begin(s->vol);
    int due = sfs_policy_any_due(s->vol->st, txn, now);
    vol_read_end(s->vol);
    char when[32], *events = NULL, *created[64];
    size_t ncreated = 0;
    time_t t = (time_t)now;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    if (due > 0)
        rc = scheduler_run(s->vol, now, &events);
    else
        rc = due;
    if (rc)
        fprintf(stderr, "snapfs: %s: %s: running policies: %s\n", s->store,
                when, strerror(-rc));
    else if (events)
        log_events(s, when, events, created, 64, &ncreated);
    if (hook.after_tick)
        hook.after_tick(s->store, s->vol->st->super.uuid, created, ncreated);
    free(events);
    sample_space(s, now);
    autodelete_run(s->vol, 0); /* the reserve, a volume filling */
}

static void *scheduler_main(void *arg)
{
    struct scheduler *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        pthread_mutex_unlock(&s->lock);
        tick(s);
        struct timespec at;
        clock_gettime(CLOCK_MONOTONIC, &at);
        at.tv_sec += s->tick_ms / 1000;
        at.tv_nsec += (long)(s->tick_ms % 1000) * 1000000L;
        if (at.tv_nsec >= 1000000000L) {
            at.tv_sec++;
            at.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&s->lock);
        while (!s->stopping &&
               pthread_cond_timedwait(&s->wake, &s->lock, &at) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static unsigned tick_ms_setting(const char *store)
{
    const char *text = getenv("SNAPFS_POLICY_TICK_MS");
    if (!text || !*text)
        return SCHEDULER_TICK_MS_DEFAULT;
    char *end;
    unsigned long v = strtoul(text, &end, 10);
    if (*end || v < 10 || v > 3600000) {
        fprintf(stderr, "snapfs: %s: SNAPFS_POLICY_TICK_MS=%s is not 10 to "
                        "3600000; using %d\n", store, text,
                SCHEDULER_TICK_MS_DEFAULT);
        return SCHEDULER_TICK_MS_DEFAULT;
    }
    return (unsigned)v;
}

int scheduler_start(struct scheduler *s, struct vol *v, const char *store,
                    const char *mountpoint)
{
    memset(s, 0, sizeof(*s));
    hook_volume = mountpoint;
    log_store = store;
    s->vol = v;
    s->store = store;
    s->tick_ms = tick_ms_setting(store);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&s->thread, NULL, scheduler_main, s);
    if (rc) {
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        return -rc;
    }
    s->running = true;
    return 0;
}

void scheduler_stop(struct scheduler *s)
{
    if (!s->running)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    if (hook.stop)
        hook.stop(s->store);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    s->running = false;
}
