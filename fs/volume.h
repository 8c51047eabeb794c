/*
 * volume.h - a mounted volume inside the daemon: the store, the one open
 * write transaction that group commit fills, and the node table.
 */
#ifndef SNAPFS_VOLUME_H
#define SNAPFS_VOLUME_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define VOL_COMMIT_INTERVAL_MS 2000
#define VOL_COMMIT_DIRTY_BYTES (32u << 20)
#define VOL_MAP_TRIM_MS 5000
#define VOL_MAP_TRIM_BYTES (4u << 20)
#define VOL_MAP_META_BYTES 4096 /* what a read of records counts */
/* What a read of file data counts at least toward the next trim: each
 * page it faults in maps up to 64 KiB around it (the kernel's
 * fault-around), about 200 KiB for a 4 KiB read of a 4 KiB block (its
 * extent's, dedup record's and blob's pages).  Counted as 4 KiB, 1,024 of
 * them passed between trims and the daemon's peak RSS reached 290 MiB
 * (2026-12-07, random reads of a 256 MiB file); at 8 KiB it is 204 MiB
 * at no measured cost, at 32 KiB 82 MiB, but 17% fewer reads a second. */
#define VOL_MAP_DATA_MIN_BYTES (8u << 10)
/* The map's watch: every VOL_MAP_WATCH_MS, a trim if more than
 * VOL_MAP_RESIDENT_MAX of file pages are resident (volume.c, THEORY). */
#define VOL_MAP_WATCH_MS 100
#define VOL_MAP_RESIDENT_MAX (64u << 20)

struct node;
struct node_slot;
struct wrun_table;

struct vol {
    struct sfs_store *st;
    /* The view clients see as the volume: SFS_VIEW_LIVE, or for a mirror
     * destination the epoch of its newest snapshot (daemon.c); changed
     * under lock, when a receive publishes a snapshot (receive.c). */
    uint64_t live_view;
    /* A stream is being received into the live tree (atomic; receive.c):
     * control changes that would write it or snapshot it are refused. */
    bool receiving;

    /* Everything below up to `nodes` is guarded by lock. */
    pthread_mutex_t lock;
    MDB_txn *wtxn;          /* open top-level write txn (the batch) */
    MDB_txn *op_txn;        /* nested txn of the operation in progress */
    struct sfs_state op_saved;
    uint64_t open_gen;      /* generation of the batch in wtxn */
    uint64_t committed_gen; /* newest committed generation */
    bool dirty;
    uint64_t dirty_bytes;
    uint64_t dirty_since_ms;
    bool commit_wanted;
    bool map_used;          /* the map was read since the last trim */
    void *map_addr;         /* LMDB's map of data.mdb, for trimming */
    size_t map_len;
    uint64_t bytes_since_trim;
    bool stopping;
    int commit_error;       /* sticky: a batch failed to commit */
    pthread_cond_t wake_committer;
    pthread_cond_t committed;
    pthread_t committer;
    bool committer_running;
    /* The map's watch (volume.c), stopped through watch_lock/watch_wake. */
    pthread_t watch;
    bool watch_running, watch_stop;
    pthread_mutex_t watch_lock;
    pthread_cond_t watch_wake; /* CLOCK_MONOTONIC */

    /* Node table (THEORY in volume.c): lookup and open counts, orphans,
     * per-inode write state; an entry per inode the kernel holds, a node
     * while one is pinned, open or has write state. */
    pthread_mutex_t nodes_lock;
    struct node_slot *slots; /* open addressing; grows and shrinks */
    size_t nslots, nentries; /* slots, and the inodes in them */
    size_t nfull;           /* of them, nodes (struct node) */
    struct wfile *cached;   /* the files with cached blocks (wcache.c) */
    uint64_t wcache_bytes;  /* bytes of cached partial blocks (atomic) */
    struct wdrainer *drainer; /* stores them before the cache is full */
    /* Bumped (atomic, under lock) by every change that may set or remove
     * an xattr of a live file: it dates the nodes' cached answers that a
     * file has no capability xattr (node_nocaps_known). */
    uint64_t xattr_gen;
    bool cache_barrier;     /* writers write through (atomic); control.c */
    pthread_mutex_t barrier_lock; /* with barrier_down: the kernel's */
    pthread_cond_t barrier_down;  /* writeback waits out the barrier */
    /* Moved (atomic) under live_gen_lock taken for writing after every
     * change of the live tree behind the kernel's back, before the kernel
     * is told: read-around's date (readaround.c, THEORY). */
    pthread_rwlock_t live_gen_lock;
    uint64_t live_gen;

    /* The freeze gate (vol_admit, vol_freeze; THEORY in volume.c),
     * guarded by gate_lock, which is taken alone (never with lock). */
    pthread_mutex_t gate_lock;
    pthread_cond_t gate_changed; /* CLOCK_MONOTONIC */
    uint32_t in_flight;     /* admitted client changes not yet finished */
    bool frozen;            /* new client changes wait */
    bool freeze_pinned;     /* the freezer is at work: no thaw by time */
    uint64_t thaw_at_ms;    /* vol_now_ms() at which the freeze expires */

    /* Called by the committer, unlocked, before each commit: stores the
     * cached partial blocks into the batch (see wcache.c). */
    void (*flush_cached)(struct vol *v);

    /* Set by the FUSE layer; called by control changes, unlocked, after a
     * commit that changed what clients see behind the kernel's back
     * (snapshots created, deleted or renamed; the live tree rolled back or
     * restored into; the snapdir setting), so that it invalidates the
     * kernel's caches.  WHAT is a VOL_CHANGED_* mask. */
    void (*notify_changed)(struct vol *v, unsigned what);
    /* Likewise after a control change added or removed the entry NAME of
     * live directory PARENT (a qtree): the kernel drops that entry, be it
     * negative or positive, and PARENT's attributes. */
    void (*notify_entry)(struct vol *v, uint64_t parent, const char *name);
};

enum {
    VOL_CHANGED_SNAPSHOTS = 1, /* the set or the names of snapshots */
    VOL_CHANGED_LIVE = 2,      /* the live tree, wholesale (rollback) */
    VOL_CHANGED_SNAPDIR = 4,   /* the snapdir setting */
    VOL_CHANGING_LIVE = 8,     /* before a wholesale change of the live
                                * tree, to note what the kernel may hold */
    VOL_PUBLISH_NEWEST = 16,   /* a mirror destination received a snapshot:
                                * under the lock, note the names the kernel
                                * may hold of the published view and
                                * publish the newest snapshot instead */
};

int vol_start(struct vol *v, struct sfs_store *st,
              void (*flush_cached)(struct vol *v));
/* Commit what is pending and stop the committer. */
int vol_stop(struct vol *v);

/*
 * Read access: returns the batch transaction (it sees every change made
 * so far, committed or not) with the volume locked.  vol_read_end unlocks.
 */
MDB_txn *vol_read_begin(struct vol *v);
void vol_read_end(struct vol *v);
/* The same, or NULL at once (nothing locked) while the volume is busy:
 * for lookups a caller can do without. */
MDB_txn *vol_read_trybegin(struct vol *v);
/* The same, for a read that copied BYTES out of the map. */
void vol_read_end_bytes(struct vol *v, uint64_t bytes);
/* The same, for a read of file data of BYTES (0: none was collected):
 * counted as at least VOL_MAP_DATA_MIN_BYTES. */
void vol_read_end_data(struct vol *v, uint64_t bytes);

/*
 * Change access: locks and opens a nested transaction for one operation.
 * vol_change_end commits it into the batch when RC is 0 (counting BYTES
 * toward the next commit) or aborts it, undoing the operation alone, and
 * unlocks.  Returns RC, or the error of committing the nested txn.
 */
int vol_change_begin(struct vol *v, MDB_txn **txn);
int vol_change_end(struct vol *v, int rc, uint64_t bytes);
/* Raise or lower the cache barrier (vol.cache_barrier; control.c). */
void vol_barrier_set(struct vol *v, bool up);
/* Wait while the cache barrier is up: the kernel's writeback does, so
 * that a control change storing the cache does not share the cores with
 * a read-modify-write per page written back meanwhile (the writes come
 * after the command's syncfs: no snapshot owes them). */
void vol_barrier_wait(struct vol *v);

/* Is this the committer's thread (whose changes never wait for the
 * backpressure it relieves)? */
bool vol_in_committer(void);

/* Make everything changed so far durable (fsync semantics). */
int vol_sync(struct vol *v);

/*
 * The freeze gate (THEORY in volume.c).  Every FUSE operation that changes
 * the live tree runs between vol_admit and vol_leave; vol_admit waits
 * while the volume is frozen (never fails).  vol_freeze closes the gate
 * and waits for the admitted changes to finish: 0 with the volume frozen
 * and the freeze pinned (it cannot expire until vol_freeze_unpin), or
 * -ETIMEDOUT, thawed, when they did not finish within TIMEOUT_MS.  The
 * freeze then expires TIMEOUT_MS after vol_freeze began unless pinned;
 * vol_freeze_pin answers -ETIMEDOUT once it has.  vol_thaw opens the gate.
 * One freezer at a time (control.c serializes them).
 */
void vol_admit(struct vol *v);
void vol_leave(struct vol *v);
int vol_freeze(struct vol *v, uint64_t timeout_ms);
int vol_freeze_pin(struct vol *v);
void vol_freeze_unpin(struct vol *v);
void vol_thaw(struct vol *v);
/* Is the volume frozen now (a snapshot in the making)? */
bool vol_frozen(struct vol *v);

uint64_t vol_now_ms(void);

/* ---- node table (THEORY in volume.c) ---- */

/* An inode pinned by an operation, open, or with write state; an inode
 * the kernel merely holds is an entry of the table instead (16 bytes). */
struct node {
    uint64_t ino;
    uint64_t nlookup;    /* kernel references (lookup/forget) */
    uint32_t nopen;      /* open file handles */
    uint32_t pins;       /* operations in progress holding the node */
    pthread_mutex_t wlock; /* serializes data writes and truncates */
    struct wfile *dirty;   /* cached small writes (wcache.c), under wlock */
    uint32_t ncached;      /* their number; atomic, for unlocked peeks */
    int quota_error;       /* -EDQUOT: a cached block was lost (wcache.c) */
    bool orphan;         /* nlink 0 while referenced: destroy at last ref */
    /* Growth through the kernel's page cache, under wlock (ops.c, THEORY:
     * A FILE CUT SHORT BY ENOSPC): */
    bool wb_session;       /* cache writes came since the last flush */
    bool wb_cut;           /* one failed for space: grow contiguously only */
    uint64_t wb_base;      /* the file's size when the session began */
    /* Runs of whole blocks being stored outside wlock (wrun.c), under
     * wlock: their block ranges (allocated at the first), how many are
     * out, and how many threads wait for none to be. */
    struct wrun_table *runs;
    /* vol.xattr_gen + 1 when the file was found without a capability
     * xattr, under nodes_lock; 0: not known. */
    uint64_t nocaps_gen;
    /* Whole blocks of the file in a row that did not compress (atomic;
     * ops.c, write_whole_blocks). */
    uint32_t raw_streak;
    uint32_t nruns;
    uint32_t quiet_wanted;
    /* Requests waiting for wlock (atomic; wrun.c, node_lock_request): a
     * long flush lets them in between its chunks (wcache.c). */
    uint32_t lock_waiting;
    /* Read-around (readaround.c, THEORY): taken for reading across a
     * push, for writing (before wlock, never after it) to change what
     * follows: the handles open that may write, and a date moved whenever
     * the content may have changed other than by their writes (atomic
     * for peeks). */
    pthread_rwlock_t push_lock;
    uint32_t nwriters;
    uint64_t content_gen;
};

/* A rwlock whose waiting writer goes before new readers. */
void rwlock_init_writer_first(pthread_rwlock_t *lock);

/* Find or create the node of INO and pin it; never fails but on ENOMEM.
 * The node stays valid until node_unpin. */
struct node *node_pin(struct vol *v, uint64_t ino);
/* Unpin; returns true if the node was an orphan whose last reference
 * went, in which case the caller destroys the inode. */
bool node_unpin(struct vol *v, struct node *n);
void node_add_lookup(struct vol *v, uint64_t ino, uint64_t count);
/* Returns true if the inode must now be destroyed (orphan, unreferenced). */
bool node_forget(struct vol *v, uint64_t ino, uint64_t count);
bool node_open(struct vol *v, uint64_t ino, int delta);
/* Is N an orphan that no open file uses (its data has no reader left)? */
bool node_is_unreferenced_orphan(struct vol *v, struct node *n);
/* Is INO an orphan the kernel forgot, kept only by cached blocks? */
bool node_lingers_for_cache(struct vol *v, uint64_t ino);
/* Is INO referenced by the kernel or by open files? Marks it an orphan
 * if so (it will be destroyed when the references go). */
bool node_mark_orphan_if_referenced(struct vol *v, uint64_t ino);
/* An xattr of a live file may change: forget every cached answer of
 * node_nocaps_known.  Under the volume lock, before the change. */
void vol_xattrs_changed(struct vol *v);
/*
 * The kernel asks for "security.capability" before every write(2) (to
 * remove it); the answer, almost always none, is kept per node so that
 * it costs no volume lock, which a commit holds for tens of
 * milliseconds.  node_nocaps_known: is INO known to have none (an answer
 * no xattr change since has dated)?  node_note_nocaps: INO had none when
 * vol.xattr_gen was GEN (read under the volume lock with the answer).
 */
bool node_nocaps_known(struct vol *v, uint64_t ino);
void node_note_nocaps(struct vol *v, uint64_t ino, uint64_t gen);
/* The inodes the kernel holds references to (malloc'd; *COUNT of them),
 * or NULL when out of memory. */
uint64_t *node_list_referenced(struct vol *v, size_t *count);
/* The same, of the inodes with open files. */
uint64_t *node_list_open(struct vol *v, size_t *count);
/* The inodes in the table (held by the kernel, open or pinned) and the
 * bytes the table and its nodes take (the stats' node gauges). */
void node_table_usage(struct vol *v, uint64_t *inodes, uint64_t *bytes);

#endif
