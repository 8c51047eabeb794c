/*
 * volume.c - group commit and the node table of a mounted volume.
 *
 * THEORY: GROUP COMMIT
 *
 * An LMDB commit costs a data-page fsync, a few milliseconds; paying it
 * per FUSE request would make every small-file workload crawl.  So the
 * daemon keeps one top-level write transaction open, the *batch*, and
 * applies every change into it; a committer thread commits the batch and
 * opens the next when one of these comes first:
 *   - the batch has been dirty for VOL_COMMIT_INTERVAL_MS (2 s);
 *   - it holds VOL_COMMIT_DIRTY_BYTES (32 MiB) of written data;
 *   - someone needs durability: fsync, fdatasync, fsyncdir, unmount.
 *
 * LMDB ties a write transaction to the thread that began it (its writer
 * mutex), so only the committer begins and commits batches.  Every other
 * use of the batch is serialized by vol->lock, and each change runs in a
 * nested transaction of its own: an operation that fails half-way (no
 * space, a damaged record) aborts its nested transaction and leaves the
 * batch, with everything other clients were already told succeeded,
 * untouched.  The in-memory volume state (counters, epochs) is saved when
 * an operation begins and restored when it aborts, for the same reason.
 *
 * Reads run in the batch too, under the lock, so they see every change
 * acknowledged before them.  Only the cheap part of a request runs under
 * the lock: finding records and copying stored bytes.  Decompression,
 * verification, hashing and compression run outside it (see the read and
 * write plans in store.h), on as many threads as FUSE gives us.
 *
 * Durability: the environment runs with MDB_NOMETASYNC, so a commit syncs
 * the data pages and writes the meta page without syncing it.  vol_sync
 * asks for a commit of the batch holding the caller's changes, waits for
 * it, then syncs the meta page (mdb_env_sync(env, 1)): when it returns,
 * the change is on disk.  A kill -9 at any moment loses only changes that
 * were never synced, and leaves the store as of a committed batch.
 *
 * Memory is bounded: a change that finds the batch holding 1.5 times the
 * commit threshold waits for the committer, so the batch's dirty pages
 * (held by LMDB in the daemon's heap) stay near VOL_COMMIT_DIRTY_BYTES
 * whatever is written.
 *
 * Memory, the map: every page LMDB reads through its read-only map (and
 * the neighbours the kernel maps around each fault) counts toward the
 * daemon's resident set, although it is clean page cache the kernel can
 * drop at will.  After each commit, and every VOL_MAP_TRIM_MS while the
 * volume is used, the committer drops those page-table entries
 * (MADV_DONTNEED on a shared file mapping unmaps; the pages stay cached).
 * It holds the volume lock then, so no request holds a pointer into the
 * map.  A single long change (a snapshot delete, a reclaim estimate: one
 * nested transaction that may read a good part of the store) holds the
 * lock all along, so a watch thread also trims, every VOL_MAP_WATCH_MS,
 * once more than VOL_MAP_RESIDENT_MAX of file pages are resident, without
 * the lock: that is safe because the map is a read-only MAP_SHARED map of
 * the file LMDB writes with pwrite (never MDB_WRITEMAP), so a page dropped
 * under a reader's pointer is faulted in again from the page cache with
 * the same bytes.  Memory, the heap: the batch's dirty pages live in it; allocations
 * under 4 MiB (LMDB's page runs and nested-transaction lists, our plans)
 * come from two arenas whose freed chunks the next batch reuses, without a
 * page fault or a TLB shootdown per allocation (a lower mmap threshold cost
 * a third of the write path in munmap alone), and the heap is trimmed
 * above 8 MiB of free space at its top.
 *
 * If a commit itself fails (the disk under the store is full, an I/O
 * error), the batch is lost; the error is sticky and every later sync
 * reports it, as a kernel filesystem reports a writeback error.
 *
 * THEORY: THE FREEZE GATE (consistency-group snapshots)
 *
 * A group snapshot (control.c's freeze session, tools/group.c) needs an
 * instant at which every member volume stands still.  Each FUSE operation
 * that changes the live tree (ops.c: setattr, mknod, mkdir, unlink, rmdir,
 * symlink, rename, link, open with O_TRUNC, create, write, setxattr,
 * removexattr, fallocate) passes the gate first (vol_admit) and leaves it
 * after its reply (vol_leave); in_flight counts those between the two.
 * The operations that pass freely change nothing a snapshot can show:
 * reads, flush/fsync (they store and commit writes that were already
 * acknowledged, which the freeze stores anyway), forget and release (they
 * free unlinked inodes no path reaches).  Internal changes (the
 * committer's flush of cached blocks, control changes, the policy
 * scheduler) do not pass the gate: they are the freezer's own, or are
 * serialized with it by control.c.
 *
 * vol_freeze sets `frozen`, so that every later client change waits in
 * vol_admit (it is delayed, never failed), and waits until in_flight is
 * 0.  From then on, until the thaw, no client change is applied, so the
 * live tree the freezer snapshots is the volume's state at any instant of
 * the freeze: every change acknowledged before the freeze began is in it,
 * none that waits at the gate is.  A change in flight when the freeze
 * began is finished first and is in it (it was concurrent with the
 * freeze, so either side is correct; what matters is that it is whole).
 *
 * Timeouts: a freeze ends at the latest TIMEOUT_MS after it began, even
 * if nobody thaws it (the tool was killed, its machine hangs): every
 * waiter sleeps until the deadline and the first to wake past it thaws
 * the volume, without help from the freezer's thread, which may be stuck
 * on a dead connection.  Two exceptions keep the rule safe: while the
 * freezer is draining the changes in flight or taking a snapshot, it
 * *pins* the freeze (freeze_pinned), so that the gate cannot open in the
 * middle of its work; the work is bounded (a drain gives up, thawing, at
 * the deadline; a snapshot is O(1) and one commit).  A pin taken after the
 * deadline fails with -ETIMEDOUT, so a snapshot is never taken of a volume
 * that has started moving again, and the group command fails instead.
 *
 * A change waiting at the gate holds one of the daemon's FUSE threads;
 * when all of them wait (the kernel's writeback can queue many writes),
 * reads queue behind them too until the thaw.  So a freeze is meant to be
 * short: the group tool holds it for two round trips and one commit.
 *
 * Lock order: control.c's change lock, then gate_lock alone; gate_lock is
 * never held while taking lock, nodes_lock or a node's write lock, and no
 * thread holding one of those waits at the gate (vol_admit is the first
 * thing an operation does), so the gate adds no deadlock.
 */
#define _GNU_SOURCE
#include "volume.h"
#include "metrics.h"
#include "wrun.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <syslog.h>
#include <unistd.h>

static int node_table_init(struct vol *v);
static void node_table_free(struct vol *v);

uint64_t vol_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void deadline_after_ms(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static bool commit_due(struct vol *v)
{
    if (!v->dirty)
        return false;
    return v->commit_wanted || v->stopping ||
           v->dirty_bytes >= VOL_COMMIT_DIRTY_BYTES ||
           vol_now_ms() - v->dirty_since_ms >= VOL_COMMIT_INTERVAL_MS;
}

/* Why the batch is committed now (for the statistics). */
static enum metrics_commit_trigger commit_trigger(struct vol *v)
{
    if (v->stopping)
        return MCT_UNMOUNT;
    if (v->commit_wanted)
        return MCT_SYNC;
    return v->dirty_bytes >= VOL_COMMIT_DIRTY_BYTES ? MCT_SIZE
                                                     : MCT_INTERVAL;
}

/* Commit the batch and open the next.  Called by the committer, locked. */
static int commit_batch(struct vol *v)
{
    enum metrics_commit_trigger why = commit_trigger(v);
    uint64_t t0 = metrics_clock();
    int rc = sfs_txn_commit(v->st, v->wtxn);
    metrics_commit(why, metrics_clock() - t0, v->dirty_bytes, rc);
    v->wtxn = NULL;
    if (rc) {
        syslog(LOG_ERR, "snapfs: commit of a batch failed: %s", strerror(-rc));
        fprintf(stderr, "snapfs: commit of a batch failed: %s\n", strerror(-rc));
        v->commit_error = rc;
        sfs_state_reload(v->st);
    }
    v->committed_gen = v->open_gen;
    v->dirty = false;
    v->dirty_bytes = 0;
    v->commit_wanted = false;
    pthread_cond_broadcast(&v->committed);
    return rc;
}

void rwlock_init_writer_first(pthread_rwlock_t *lock)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(lock, &a);
    pthread_rwlockattr_destroy(&a);
}

/* Where LMDB mapped data.mdb; it does not move while the volume is
 * served.  Without it the map is simply not trimmed. */
static void find_map(struct vol *v)
{
    if (sfs_map_region(v->st, &v->map_addr, &v->map_len))
        v->map_addr = NULL;
}

/* Unmap the LMDB map's pages from our page tables (see THEORY). */
static void trim_map(struct vol *v)
{
    if (v->map_addr)
        madvise(v->map_addr, v->map_len, MADV_DONTNEED);
    v->map_used = false;
}

/* Bytes of file pages resident in this process (statm's "shared"). */
static uint64_t resident_file_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size, resident, shared = 0;
    if (f) {
        if (fscanf(f, "%llu %llu %llu", &size, &resident, &shared) != 3)
            shared = 0;
        fclose(f);
    }
    return (uint64_t)shared * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void *watch_main(void *arg)
{
    struct vol *v = arg;
    pthread_mutex_lock(&v->watch_lock);
    while (!v->watch_stop) {
        struct timespec ts;
        deadline_after_ms(&ts, VOL_MAP_WATCH_MS);
        pthread_cond_timedwait(&v->watch_wake, &v->watch_lock, &ts);
        if (!v->watch_stop && v->map_addr &&
            resident_file_bytes() > VOL_MAP_RESIDENT_MAX)
            madvise(v->map_addr, v->map_len, MADV_DONTNEED);
    }
    pthread_mutex_unlock(&v->watch_lock);
    return NULL;
}

static void watch_start(struct vol *v)
{
    pthread_mutex_init(&v->watch_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&v->watch_wake, &ca);
    pthread_condattr_destroy(&ca);
    /* without it the map is trimmed by the committer alone */
    v->watch_running = !pthread_create(&v->watch, NULL, watch_main, v);
    if (!v->watch_running) {
        pthread_cond_destroy(&v->watch_wake);
        pthread_mutex_destroy(&v->watch_lock);
    }
}

static void watch_stop(struct vol *v)
{
    if (!v->watch_running)
        return;
    pthread_mutex_lock(&v->watch_lock);
    v->watch_stop = true;
    pthread_cond_signal(&v->watch_wake);
    pthread_mutex_unlock(&v->watch_lock);
    pthread_join(v->watch, NULL);
    v->watch_running = false;
    pthread_cond_destroy(&v->watch_wake);
    pthread_mutex_destroy(&v->watch_lock);
}

static int open_batch(struct vol *v)
{
    int rc = sfs_txn_begin(v->st, NULL, true, &v->wtxn);
    if (rc)
        return rc;
    v->open_gen++;
    return 0;
}

/* The committer's own changes (flushing cached blocks) must not wait for
 * the backpressure that only the committer can relieve. */
static __thread bool in_committer;

bool vol_in_committer(void)
{
    return in_committer;
}

static void *committer_main(void *arg)
{
    struct vol *v = arg;
    in_committer = true;
    pthread_mutex_lock(&v->lock);
    find_map(v);
    int rc = open_batch(v);
    v->committer_running = true;
    if (rc) {
        v->commit_error = rc;
        v->stopping = true;
    }
    pthread_cond_broadcast(&v->committed);
    while (!rc) {
        while (!commit_due(v) && !v->stopping) {
            bool cached = __atomic_load_n(&v->wcache_bytes, __ATOMIC_RELAXED);
            if (cached && !v->dirty) {
                /* Cached blocks a busy node kept back: store them soon. */
                struct timespec ts;
                deadline_after_ms(&ts, VOL_COMMIT_INTERVAL_MS);
                if (pthread_cond_timedwait(&v->wake_committer, &v->lock,
                                           &ts) == ETIMEDOUT)
                    break;
            } else if (v->dirty) {
                struct timespec ts;
                uint64_t age = vol_now_ms() - v->dirty_since_ms;
                deadline_after_ms(&ts, age >= VOL_COMMIT_INTERVAL_MS
                                           ? 0 : VOL_COMMIT_INTERVAL_MS - age);
                pthread_cond_timedwait(&v->wake_committer, &v->lock, &ts);
            } else if (v->map_used) {
                struct timespec ts;
                deadline_after_ms(&ts, VOL_MAP_TRIM_MS);
                if (pthread_cond_timedwait(&v->wake_committer, &v->lock,
                                           &ts) == ETIMEDOUT)
                    break;
            } else {
                pthread_cond_wait(&v->wake_committer, &v->lock);
            }
        }
        if (v->flush_cached &&
            __atomic_load_n(&v->wcache_bytes, __ATOMIC_RELAXED)) {
            pthread_mutex_unlock(&v->lock);
            v->flush_cached(v);
            pthread_mutex_lock(&v->lock);
        }
        if (v->dirty)
            commit_batch(v);
        if (v->map_used)
            trim_map(v);
        if (v->stopping)
            break;
        if (!v->wtxn && open_batch(v)) {
            v->commit_error = -EIO;
            break;
        }
    }
    if (v->wtxn) {
        mdb_txn_abort(v->wtxn); /* clean: nothing dirty */
        v->wtxn = NULL;
    }
    v->committer_running = false;
    pthread_cond_broadcast(&v->committed);
    pthread_mutex_unlock(&v->lock);
    return NULL;
}

int vol_start(struct vol *v, struct sfs_store *st,
              void (*flush_cached)(struct vol *v))
{
    memset(v, 0, sizeof(*v));
    v->flush_cached = flush_cached;
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 8 << 20);
    mallopt(M_ARENA_MAX, 2);
    v->st = st;
    pthread_mutex_init(&v->lock, NULL);
    pthread_mutex_init(&v->nodes_lock, NULL);
    rwlock_init_writer_first(&v->live_gen_lock);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&v->wake_committer, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&v->committed, NULL);
    pthread_mutex_init(&v->barrier_lock, NULL);
    pthread_cond_init(&v->barrier_down, NULL);
    pthread_mutex_init(&v->gate_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&v->gate_changed, &ca);
    pthread_condattr_destroy(&ca);
    if (node_table_init(v))
        return -ENOMEM;
    pthread_mutex_lock(&v->lock);
    int rc = pthread_create(&v->committer, NULL, committer_main, v);
    if (rc) {
        pthread_mutex_unlock(&v->lock);
        return -rc;
    }
    while (!v->committer_running && !v->stopping)
        pthread_cond_wait(&v->committed, &v->lock);
    rc = v->commit_error;
    pthread_mutex_unlock(&v->lock);
    if (rc)
        pthread_join(v->committer, NULL);
    else
        watch_start(v); /* the committer found the map */
    return rc;
}

int vol_stop(struct vol *v)
{
    watch_stop(v);
    pthread_mutex_lock(&v->lock);
    v->stopping = true;
    pthread_cond_signal(&v->wake_committer);
    pthread_mutex_unlock(&v->lock);
    pthread_join(v->committer, NULL);
    int rc = v->commit_error;
    if (!rc)
        rc = sfs_mdb_errno(mdb_env_sync(v->st->env, 1));
    node_table_free(v);
    pthread_cond_destroy(&v->wake_committer);
    pthread_cond_destroy(&v->committed);
    pthread_cond_destroy(&v->barrier_down);
    pthread_mutex_destroy(&v->barrier_lock);
    pthread_cond_destroy(&v->gate_changed);
    pthread_mutex_destroy(&v->gate_lock);
    pthread_mutex_destroy(&v->lock);
    pthread_mutex_destroy(&v->nodes_lock);
    pthread_rwlock_destroy(&v->live_gen_lock);
    return rc;
}

/* Called with lock: the map is being read.  The first use after a trim
 * wakes the committer, which may be asleep without a deadline (nothing
 * dirty, nothing cached), so that it trims VOL_MAP_TRIM_MS later: without
 * this a volume that is only read (a `find`, an `ls -lR`) would keep every
 * page it touched in its resident set until the next write. */
static void map_use(struct vol *v)
{
    if (!v->map_used) {
        v->map_used = true;
        pthread_cond_signal(&v->wake_committer);
    }
}

MDB_txn *vol_read_begin(struct vol *v)
{
    pthread_mutex_lock(&v->lock);
    map_use(v);
    return v->wtxn;
}

MDB_txn *vol_read_trybegin(struct vol *v)
{
    if (pthread_mutex_trylock(&v->lock))
        return NULL;
    if (!v->wtxn) {
        pthread_mutex_unlock(&v->lock);
        return NULL;
    }
    v->map_used = true;
    return v->wtxn;
}

/* Count BYTES read through the map toward the next trim. */
static void count_map_bytes(struct vol *v, uint64_t bytes)
{
    v->bytes_since_trim += bytes;
    if (v->bytes_since_trim >= VOL_MAP_TRIM_BYTES) {
        trim_map(v);
        v->bytes_since_trim = 0;
    }
}

void vol_read_end(struct vol *v)
{
    /* a read of records (a lookup, a getattr, a directory's entries)
     * touches a few pages: counted as one, so that a fast scan of the
     * metadata is trimmed every VOL_MAP_TRIM_BYTES / 4 KiB reads */
    count_map_bytes(v, VOL_MAP_META_BYTES);
    pthread_mutex_unlock(&v->lock);
}

void vol_read_end_bytes(struct vol *v, uint64_t bytes)
{
    count_map_bytes(v, bytes);
    pthread_mutex_unlock(&v->lock);
}

void vol_read_end_data(struct vol *v, uint64_t bytes)
{
    vol_read_end_bytes(v, bytes && bytes < VOL_MAP_DATA_MIN_BYTES
                              ? VOL_MAP_DATA_MIN_BYTES : bytes);
}

void vol_barrier_set(struct vol *v, bool up)
{
    pthread_mutex_lock(&v->barrier_lock);
    __atomic_store_n(&v->cache_barrier, up, __ATOMIC_RELEASE);
    if (!up)
        pthread_cond_broadcast(&v->barrier_down);
    pthread_mutex_unlock(&v->barrier_lock);
}

void vol_barrier_wait(struct vol *v)
{
    if (!__atomic_load_n(&v->cache_barrier, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&v->barrier_lock);
    while (__atomic_load_n(&v->cache_barrier, __ATOMIC_ACQUIRE))
        pthread_cond_wait(&v->barrier_down, &v->barrier_lock);
    pthread_mutex_unlock(&v->barrier_lock);
}

int vol_change_begin(struct vol *v, MDB_txn **txn)
{
    pthread_mutex_lock(&v->lock);
    /* Backpressure: writers must not outrun the committer, or the batch
     * (and the daemon's memory) would grow without bound. */
    while (!in_committer &&
           v->dirty_bytes >= 3 * (uint64_t)VOL_COMMIT_DIRTY_BYTES / 2 &&
           v->committer_running && !v->stopping) {
        pthread_cond_signal(&v->wake_committer);
        pthread_cond_wait(&v->committed, &v->lock);
    }
    if (!v->wtxn) {
        pthread_mutex_unlock(&v->lock);
        return v->commit_error ? v->commit_error : -EROFS;
    }
    int rc = sfs_txn_begin(v->st, v->wtxn, true, &v->op_txn);
    if (rc) {
        pthread_mutex_unlock(&v->lock);
        return rc;
    }
    v->op_saved = v->st->state;
    map_use(v);
    *txn = v->op_txn;
    return 0;
}

int vol_change_end(struct vol *v, int rc, uint64_t bytes)
{
    if (rc == 0) {
        rc = sfs_mdb_errno(mdb_txn_commit(v->op_txn));
        if (rc)
            v->st->state = v->op_saved;
    } else {
        mdb_txn_abort(v->op_txn);
        v->st->state = v->op_saved;
    }
    v->op_txn = NULL;
    if (rc == 0) {
        if (!v->dirty) {
            v->dirty = true;
            v->dirty_since_ms = vol_now_ms();
            pthread_cond_signal(&v->wake_committer);
        }
        v->dirty_bytes += bytes;
        if (v->dirty_bytes >= VOL_COMMIT_DIRTY_BYTES)
            pthread_cond_signal(&v->wake_committer);
        count_map_bytes(v, bytes);
    }
    pthread_mutex_unlock(&v->lock);
    return rc;
}

int vol_sync(struct vol *v)
{
    pthread_mutex_lock(&v->lock);
    if (v->dirty) {
        uint64_t target = v->open_gen;
        v->commit_wanted = true;
        pthread_cond_signal(&v->wake_committer);
        while (v->committed_gen < target && v->committer_running)
            pthread_cond_wait(&v->committed, &v->lock);
    }
    int rc = v->commit_error;
    pthread_mutex_unlock(&v->lock);
    if (rc)
        return rc;
    return sfs_mdb_errno(mdb_env_sync(v->st->env, 1));
}

/* ---- the freeze gate (THEORY at the top) ---- */

/* Called with gate_lock: thaw if the deadline passed and nobody pins the
 * freeze.  Returns whether the volume is (still) frozen. */
static bool still_frozen(struct vol *v)
{
    if (v->frozen && !v->freeze_pinned && vol_now_ms() >= v->thaw_at_ms) {
        v->frozen = false;
        pthread_cond_broadcast(&v->gate_changed);
    }
    return v->frozen;
}

/* Called with gate_lock: sleep until the gate changes or, when TIMED,
 * the deadline (a pinned freeze has none: the unpin wakes us). */
static void gate_wait(struct vol *v, bool timed)
{
    if (!timed) {
        pthread_cond_wait(&v->gate_changed, &v->gate_lock);
        return;
    }
    struct timespec ts;
    uint64_t now = vol_now_ms();
    deadline_after_ms(&ts, v->thaw_at_ms > now ? v->thaw_at_ms - now : 0);
    pthread_cond_timedwait(&v->gate_changed, &v->gate_lock, &ts);
}

void vol_admit(struct vol *v)
{
    pthread_mutex_lock(&v->gate_lock);
    while (still_frozen(v))
        gate_wait(v, !v->freeze_pinned);
    v->in_flight++;
    pthread_mutex_unlock(&v->gate_lock);
}

void vol_leave(struct vol *v)
{
    pthread_mutex_lock(&v->gate_lock);
    if (--v->in_flight == 0)
        pthread_cond_broadcast(&v->gate_changed);
    pthread_mutex_unlock(&v->gate_lock);
}

int vol_freeze(struct vol *v, uint64_t timeout_ms)
{
    pthread_mutex_lock(&v->gate_lock);
    v->frozen = true;
    v->freeze_pinned = true;
    v->thaw_at_ms = vol_now_ms() + timeout_ms;
    int rc = 0;
    while (v->in_flight && !rc) {
        if (vol_now_ms() >= v->thaw_at_ms)
            rc = -ETIMEDOUT;
        else
            gate_wait(v, true);
    }
    if (rc) {
        v->frozen = false;
        v->freeze_pinned = false;
        pthread_cond_broadcast(&v->gate_changed);
    }
    pthread_mutex_unlock(&v->gate_lock);
    return rc;
}

int vol_freeze_pin(struct vol *v)
{
    pthread_mutex_lock(&v->gate_lock);
    int rc = still_frozen(v) ? 0 : -ETIMEDOUT;
    if (!rc)
        v->freeze_pinned = true;
    pthread_mutex_unlock(&v->gate_lock);
    return rc;
}

void vol_freeze_unpin(struct vol *v)
{
    pthread_mutex_lock(&v->gate_lock);
    v->freeze_pinned = false;
    pthread_cond_broadcast(&v->gate_changed); /* the deadline counts again */
    pthread_mutex_unlock(&v->gate_lock);
}

bool vol_frozen(struct vol *v)
{
    pthread_mutex_lock(&v->gate_lock);
    bool frozen = still_frozen(v);
    pthread_mutex_unlock(&v->gate_lock);
    return frozen;
}

void vol_thaw(struct vol *v)
{
    pthread_mutex_lock(&v->gate_lock);
    v->frozen = false;
    v->freeze_pinned = false;
    pthread_cond_broadcast(&v->gate_changed);
    pthread_mutex_unlock(&v->gate_lock);
}

/* ---- node table ----
 *
 * THEORY: THE NODE TABLE
 *
 * The daemon must know, per inode, how many references the kernel holds
 * (lookups not yet forgotten), how many files are open, and whether an
 * unlinked inode is still referenced (an orphan: destroyed at the last
 * forget or close).  The kernel keeps every inode it created or looked up
 * until memory runs short, so after a `find` of a big volume it holds one
 * per file, millions: what the daemon keeps for an inode the kernel
 * merely holds is what its memory grows with.
 *
 * So an inode is kept in one of two forms, both found through one
 * open-addressing hash table of 16-byte slots (struct node_slot: the
 * inode number, 0 for an empty slot, and a word):
 *   - an entry: the word holds the lookup count and the orphan flag
 *     (count << 2 | orphan << 1 | 1).  That is all an inode the kernel
 *     merely holds needs, so it costs its slot: 16 bytes at the table's
 *     load (between 0.53 and 0.8: 20-30 bytes an inode);
 *   - a node (struct node, malloc'd; the word is its pointer, its low bit
 *     clear): an inode some operation has pinned (node_pin), with open
 *     files, or whose write state is not yet back to nothing (cached
 *     blocks, a write session through the page cache, a growth cut short,
 *     a lost cached block to report).  The node carries the write lock,
 *     the write cache's and wrun.c's fields, and the lookup count and
 *     orphan flag while it exists.
 * An inode becomes a node when it is pinned or opened (node_full_locked)
 * and goes back to an entry when the last pin and the last open go and
 * its write state is clean (node_settle_locked); it leaves the table when
 * nothing references it (no lookups, opens or pins), and if it was an
 * orphan the caller then destroys it: exactly at the last forget, close
 * or unpin, as before.  A node's caches (the answer that it has no
 * capability xattr, its run of incompressible blocks) are forgotten with
 * it: the next open asks again.
 *
 * Lifetimes: a struct node * is valid while its holder holds a pin (or
 * an open, for the FUSE layer's bookkeeping), which keeps it a node;
 * slots move on every resize and deletion, so a slot pointer is valid
 * only under nodes_lock, until the next change of the table.
 *
 * Locking: nodes_lock guards the table, every entry, and the lookup,
 * open and pin counts and the orphan flag of nodes; a node's write fields
 * are guarded by its write lock (wlock), which only pin holders take, so
 * once the last pin is gone nobody touches them and node_settle_locked
 * may read them under nodes_lock.  nodes_lock is taken after a node's
 * write lock, never the other way round, and never while waiting.
 *
 * The table grows by half when more than 4/5 of its slots are used and
 * shrinks to twice its entries when fewer than 1/8 are (a rehash now and
 * then, a constant cost per entry), so finding an inode costs the same
 * with millions as with thousands; each table is a mapping of its own,
 * so a table given up (grown from, shrunk from) leaves no memory behind.
 * Linear probing, with backward-shift deletion (no tombstones).  Node ids
 * are never 0 (FUSE's root is 1), so 0 marks an empty slot. */

struct node_slot {
    uint64_t ino;  /* 0: empty */
    uint64_t word; /* an entry (low bit set) or a struct node * */
};

#define NODE_SLOTS_MIN 1024
#define ENTRY_BIT 1u
#define ENTRY_ORPHAN 2u

static bool slot_is_entry(const struct node_slot *s)
{
    return s->word & ENTRY_BIT;
}

static struct node *slot_node(const struct node_slot *s)
{
    return slot_is_entry(s) ? NULL : (struct node *)(uintptr_t)s->word;
}

static uint64_t entry_word(uint64_t nlookup, bool orphan)
{
    return nlookup << 2 | (orphan ? ENTRY_ORPHAN : 0) | ENTRY_BIT;
}

static uint64_t slot_nlookup(const struct node_slot *s)
{
    return slot_is_entry(s) ? s->word >> 2 : slot_node(s)->nlookup;
}

/* Where INO's probe begins in a table of NSLOTS (a mixed hash scaled to
 * the table: any size works). */
static size_t home_of(uint64_t ino, size_t nslots)
{
    uint64_t h = ino;
    h ^= h >> 30;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 27;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 31;
    return (size_t)(((unsigned __int128)h * nslots) >> 64);
}

static size_t next_slot(size_t i, size_t nslots)
{
    return i + 1 == nslots ? 0 : i + 1;
}

/* The slot INO would go to in SLOTS (its own, or the empty one ending its
 * probe). */
static struct node_slot *probe(struct node_slot *slots, size_t nslots,
                               uint64_t ino)
{
    size_t i = home_of(ino, nslots);
    while (slots[i].ino && slots[i].ino != ino)
        i = next_slot(i, nslots);
    return &slots[i];
}

/* A table of NSLOTS empty slots, mapped on its own so that the memory of
 * a table given up goes back to the system at once (from malloc, the
 * tables a growing table left behind would stay resident); NULL on
 * ENOMEM. */
static struct node_slot *slots_alloc(size_t nslots)
{
    void *p = mmap(NULL, nslots * sizeof(struct node_slot),
                   PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void slots_free(struct node_slot *slots, size_t nslots)
{
    if (slots)
        munmap(slots, nslots * sizeof(struct node_slot));
}

/* Rehash into NSLOTS slots; false (the table as it was) on ENOMEM. */
static bool table_resize(struct vol *v, size_t nslots)
{
    struct node_slot *fresh = slots_alloc(nslots);
    if (!fresh)
        return false;
    for (size_t i = 0; i < v->nslots; i++)
        if (v->slots[i].ino)
            *probe(fresh, nslots, v->slots[i].ino) = v->slots[i];
    slots_free(v->slots, v->nslots);
    v->slots = fresh;
    v->nslots = nslots;
    return true;
}

static struct node_slot *slot_find(struct vol *v, uint64_t ino)
{
    struct node_slot *s = probe(v->slots, v->nslots, ino);
    return s->ino ? s : NULL;
}

/* INO's slot, made an entry with no references if it had none; NULL when
 * there is no room (out of memory) or INO is 0. */
static struct node_slot *slot_get(struct vol *v, uint64_t ino)
{
    struct node_slot *s = probe(v->slots, v->nslots, ino);
    if (s->ino || !ino)
        return ino ? s : NULL;
    if ((v->nentries + 1) * 5 > v->nslots * 4 &&
        !table_resize(v, v->nslots + v->nslots / 2) &&
        v->nentries + 2 > v->nslots)
        return NULL; /* full, and no memory to grow: one slot stays empty */
    s = probe(v->slots, v->nslots, ino);
    s->ino = ino;
    s->word = entry_word(0, false);
    v->nentries++;
    return s;
}

/* Empty slot S, moving back the slots after it whose probe passed it. */
static void slot_remove(struct vol *v, struct node_slot *s)
{
    size_t i = (size_t)(s - v->slots);
    for (size_t j = next_slot(i, v->nslots); v->slots[j].ino;
         j = next_slot(j, v->nslots)) {
        size_t h = home_of(v->slots[j].ino, v->nslots);
        bool stays = i <= j ? h > i && h <= j : h > i || h <= j;
        if (!stays) {
            v->slots[i] = v->slots[j];
            i = j;
        }
    }
    v->slots[i].ino = 0;
    v->slots[i].word = 0;
    v->nentries--;
    if (v->nslots > NODE_SLOTS_MIN && v->nentries < v->nslots / 8) {
        size_t want = 2 * v->nentries;
        table_resize(v, want < NODE_SLOTS_MIN ? NODE_SLOTS_MIN : want);
    }
}

static void node_free(struct vol *v, struct node *n)
{
    wrun_table_free(n);
    pthread_mutex_destroy(&n->wlock);
    pthread_rwlock_destroy(&n->push_lock);
    free(n);
    v->nfull--;
}

/* The node of INO, made from its entry (or from nothing when CREATE) if
 * it was not one; NULL if INO is not held and not CREATE, or on ENOMEM. */
static struct node *node_full_locked(struct vol *v, uint64_t ino,
                                     bool create)
{
    struct node_slot *s = create ? slot_get(v, ino) : slot_find(v, ino);
    if (!s || !slot_is_entry(s))
        return s ? slot_node(s) : NULL;
    struct node *n = calloc(1, sizeof(*n));
    if (!n) {
        if (!slot_nlookup(s) && !(s->word & ENTRY_ORPHAN))
            slot_remove(v, s); /* made just now */
        return NULL;
    }
    n->ino = ino;
    n->nlookup = slot_nlookup(s);
    n->orphan = s->word & ENTRY_ORPHAN;
    pthread_mutex_init(&n->wlock, NULL);
    rwlock_init_writer_first(&n->push_lock);
    s->word = (uint64_t)(uintptr_t)n;
    v->nfull++;
    return n;
}

/* Does N hold write state a fresh node would not (see the THEORY)? */
static bool node_has_write_state(struct node *n)
{
    return n->wb_session || n->wb_cut || n->quota_error ||
           __atomic_load_n(&n->ncached, __ATOMIC_ACQUIRE);
}

/* After N's references went down: N leaves the table if nothing
 * references it, or becomes an entry again if nothing but lookups do and
 * its write state is clean.  Returns true if it left the table as an
 * orphan (the caller destroys the inode). */
static bool node_settle_locked(struct vol *v, struct node *n)
{
    if (n->pins || n->nopen)
        return false;
    struct node_slot *s = slot_find(v, n->ino);
    bool orphan = n->orphan;
    if (!n->nlookup) {
        slot_remove(v, s);
        node_free(v, n);
        return orphan;
    }
    if (!node_has_write_state(n)) {
        s->word = entry_word(n->nlookup, orphan);
        node_free(v, n);
    }
    return false;
}

struct node *node_pin(struct vol *v, uint64_t ino)
{
    pthread_mutex_lock(&v->nodes_lock);
    struct node *n = node_full_locked(v, ino, true);
    if (n)
        n->pins++;
    pthread_mutex_unlock(&v->nodes_lock);
    return n;
}

bool node_unpin(struct vol *v, struct node *n)
{
    pthread_mutex_lock(&v->nodes_lock);
    n->pins--;
    bool destroy = node_settle_locked(v, n);
    pthread_mutex_unlock(&v->nodes_lock);
    return destroy;
}

void node_add_lookup(struct vol *v, uint64_t ino, uint64_t count)
{
    pthread_mutex_lock(&v->nodes_lock);
    struct node_slot *s = slot_get(v, ino);
    if (s && slot_is_entry(s))
        s->word += count << 2;
    else if (s)
        slot_node(s)->nlookup += count;
    pthread_mutex_unlock(&v->nodes_lock);
}

bool node_forget(struct vol *v, uint64_t ino, uint64_t count)
{
    pthread_mutex_lock(&v->nodes_lock);
    struct node_slot *s = slot_find(v, ino);
    bool destroy = false;
    if (s && slot_is_entry(s)) {
        uint64_t left = count > slot_nlookup(s) ? 0 : slot_nlookup(s) - count;
        destroy = !left && (s->word & ENTRY_ORPHAN);
        if (left)
            s->word = entry_word(left, s->word & ENTRY_ORPHAN);
        else
            slot_remove(v, s);
    } else if (s) {
        struct node *n = slot_node(s);
        n->nlookup = count > n->nlookup ? 0 : n->nlookup - count;
        destroy = node_settle_locked(v, n);
    }
    pthread_mutex_unlock(&v->nodes_lock);
    return destroy;
}

bool node_open(struct vol *v, uint64_t ino, int delta)
{
    pthread_mutex_lock(&v->nodes_lock);
    struct node *n = node_full_locked(v, ino, delta > 0);
    bool destroy = false;
    if (n) {
        n->nopen = (uint32_t)((int)n->nopen + delta);
        if (delta < 0)
            destroy = node_settle_locked(v, n);
    }
    pthread_mutex_unlock(&v->nodes_lock);
    return destroy;
}

bool node_is_unreferenced_orphan(struct vol *v, struct node *n)
{
    pthread_mutex_lock(&v->nodes_lock);
    bool idle = n->orphan && n->nopen == 0;
    pthread_mutex_unlock(&v->nodes_lock);
    return idle;
}

bool node_lingers_for_cache(struct vol *v, uint64_t ino)
{
    pthread_mutex_lock(&v->nodes_lock);
    struct node_slot *s = slot_find(v, ino);
    struct node *n = s ? slot_node(s) : NULL; /* an entry caches nothing */
    bool lingers = n && n->orphan && n->nlookup == 0 && n->nopen == 0 &&
                   __atomic_load_n(&n->ncached, __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&v->nodes_lock);
    return lingers;
}

bool node_mark_orphan_if_referenced(struct vol *v, uint64_t ino)
{
    pthread_mutex_lock(&v->nodes_lock);
    struct node_slot *s = slot_find(v, ino);
    struct node *n = s ? slot_node(s) : NULL;
    /* An entry is in the table only while the kernel references it. */
    bool referenced = s && (!n || n->nlookup || n->nopen || n->pins);
    if (referenced && n)
        n->orphan = true;
    else if (referenced)
        s->word |= ENTRY_ORPHAN;
    pthread_mutex_unlock(&v->nodes_lock);
    return referenced;
}

void vol_xattrs_changed(struct vol *v)
{
    __atomic_add_fetch(&v->xattr_gen, 1, __ATOMIC_RELEASE);
}

/* INO's node if it is one now (not an entry); under nodes_lock. */
static struct node *node_if_full(struct vol *v, uint64_t ino)
{
    struct node_slot *s = slot_find(v, ino);
    return s ? slot_node(s) : NULL;
}

bool node_nocaps_known(struct vol *v, uint64_t ino)
{
    uint64_t gen = __atomic_load_n(&v->xattr_gen, __ATOMIC_ACQUIRE);
    pthread_mutex_lock(&v->nodes_lock);
    struct node *n = node_if_full(v, ino);
    bool known = n && n->nocaps_gen == gen + 1;
    pthread_mutex_unlock(&v->nodes_lock);
    return known;
}

void node_note_nocaps(struct vol *v, uint64_t ino, uint64_t gen)
{
    pthread_mutex_lock(&v->nodes_lock);
    struct node *n = node_if_full(v, ino);
    if (n)
        n->nocaps_gen = gen + 1;
    pthread_mutex_unlock(&v->nodes_lock);
}

/* The inodes of the slots for which KEEP says so (see node_list_*). */
static uint64_t *node_list(struct vol *v,
                           bool (*keep)(const struct node_slot *),
                           size_t *count)
{
    pthread_mutex_lock(&v->nodes_lock);
    uint64_t *ids = malloc((v->nentries + 1) * sizeof(*ids));
    size_t n = 0;
    for (size_t i = 0; ids && i < v->nslots; i++)
        if (v->slots[i].ino && keep(&v->slots[i]))
            ids[n++] = v->slots[i].ino;
    pthread_mutex_unlock(&v->nodes_lock);
    *count = n;
    return ids;
}

static bool is_referenced(const struct node_slot *s)
{
    return slot_nlookup(s) != 0;
}

static bool is_open(const struct node_slot *s)
{
    return !slot_is_entry(s) && slot_node(s)->nopen;
}

uint64_t *node_list_referenced(struct vol *v, size_t *count)
{
    return node_list(v, is_referenced, count);
}

uint64_t *node_list_open(struct vol *v, size_t *count)
{
    return node_list(v, is_open, count);
}

void node_table_usage(struct vol *v, uint64_t *inodes, uint64_t *bytes)
{
    pthread_mutex_lock(&v->nodes_lock);
    *inodes = v->nentries;
    *bytes = v->nslots * sizeof(struct node_slot) +
             v->nfull * sizeof(struct node);
    pthread_mutex_unlock(&v->nodes_lock);
}

/* Start with an empty table (vol_start). */
static int node_table_init(struct vol *v)
{
    v->nslots = NODE_SLOTS_MIN;
    v->slots = slots_alloc(v->nslots);
    return v->slots ? 0 : -ENOMEM;
}

/* Free every node and the table (vol_stop). */
static void node_table_free(struct vol *v)
{
    for (size_t i = 0; i < v->nslots; i++)
        if (v->slots[i].ino && !slot_is_entry(&v->slots[i]))
            node_free(v, slot_node(&v->slots[i]));
    slots_free(v->slots, v->nslots);
    v->slots = NULL;
}
