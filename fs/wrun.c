/*
 * wrun.c - runs of whole blocks stored outside their file's write lock:
 * several requests writing one file sequentially hash, compress and
 * apply their blocks at once, on every core, and while the committer
 * commits.
 *
 * THEORY
 *
 * A file's writes are serialized by its write lock (node->wlock), so
 * that overlapping writes, truncation and the cache of partial blocks
 * (wcache.c) see one order.  Held across a whole write, it kept a file
 * written sequentially on one core: each 1 MiB request hashed and
 * compressed sixteen blocks while every other request for the file
 * waited, and while the committer held the volume lock for a commit
 * (tens of milliseconds per 32 MiB), that request waited too and nothing
 * at all was hashed.
 *
 * A run of whole blocks needs none of the file's old content (every byte
 * of each block is new), so the lock is not needed while it is hashed,
 * compressed and applied; only the order of writes to the same blocks
 * matters.  So a write registers the run's block range in its node
 * (wrun_begin, under the lock), drops the lock, stores the run (hash and
 * compression outside every lock, then one nested transaction), takes
 * the lock again and unregisters it (wrun_end).  The runs of a file are
 * hashed and compressed at once but applied in the order they began
 * (wrun_wait_turn), as the lock ordered them before: a file growing
 * into a full volume or qtree keeps the writes that came first (the cut
 * after a failed write, ops.c, leaves the prefix before the failure),
 * and each run's transaction finds the size its predecessors set.  A run
 * that lies within the file's size when it begins (an overwrite: the size
 * only grows while runs are out, since truncation waits for quiet) needs
 * neither, and writes no byte another run out writes, so it is applied as
 * soon as it is hashed (ops.c; unless wrun_begin had to wait, letting a
 * truncation in meanwhile): small random overwrites, each a run of
 * one block on a volume of 4 KiB blocks, are applied together in a group
 * (wgroup.c) instead of one after another in the order they began.
 * Meanwhile:
 *   - another write into an overlapping range waits until the run is
 *     out (wrun_begin and wrun_wait_clear): writes to the same bytes stay
 *     in order; a partial write into other blocks, stored under the lock,
 *     may apply between runs, which changes nothing (each sets its own
 *     extents; the size only grows, to the largest end; the inode's
 *     block count moves by each one's difference, taken in its
 *     transaction);
 *   - whoever needs every write that returned, or must not be overtaken
 *     by one (truncation, hole punching, fsync, close, flushes of the
 *     cache, control changes), takes the lock quiet (node_lock_quiet):
 *     it waits until no run is out, and new runs wait for it;
 *   - the cache of partial blocks stores no block that a run out covers
 *     (wcache.c): the run replaces it, and the cached pieces are dropped
 *     once the run is stored (kept if it failed);
 *   - a read may find a run half applied: it is concurrent with the
 *     write, which has not returned, and each block is old or new whole.
 * The store sees nothing new: a run is an ordinary write plan, applied in
 * one nested transaction of the batch, so durability (fsync waits for
 * quiet, then commits), snapshots and crash safety are those of any
 * write.  Memory: each run out is a FUSE request's buffer and its plan;
 * their number is bounded by the FUSE threads and by RUNS_MAX per node.
 */
#define _GNU_SOURCE
#include "wrun.h"

#include <stdlib.h>

#define RUNS_MAX 16

struct wrun_table {
    pthread_cond_t changed;  /* a run ended, or a quiet waiter got in */
    uint64_t next_ticket;    /* the order runs began in */
    struct {
        uint64_t first, last; /* last == 0: a free slot */
        uint64_t ticket;
    } runs[RUNS_MAX];
};

bool wrun_overlaps(const struct node *n, uint64_t first, uint64_t last)
{
    if (!n->nruns)
        return false;
    for (int s = 0; s < RUNS_MAX; s++) {
        uint64_t f = n->runs->runs[s].first, l = n->runs->runs[s].last;
        if (l && f < last && first < l)
            return true;
    }
    return false;
}

void wrun_wait_clear(struct node *n, uint64_t first, uint64_t last)
{
    while (wrun_overlaps(n, first, last))
        pthread_cond_wait(&n->runs->changed, &n->wlock);
}

static int free_slot(const struct node *n)
{
    for (int s = 0; s < RUNS_MAX; s++)
        if (!n->runs->runs[s].last)
            return s;
    return -1;
}

int wrun_begin(struct node *n, uint64_t first, uint64_t last, bool *waited)
{
    *waited = false;
    if (!n->runs) {
        struct wrun_table *t = calloc(1, sizeof(*t));
        if (!t)
            return -1; /* the caller stores the run under the lock */
        pthread_cond_init(&t->changed, NULL);
        n->runs = t;
    }
    int slot;
    while (n->quiet_wanted || wrun_overlaps(n, first, last) ||
           (slot = free_slot(n)) < 0) {
        pthread_cond_wait(&n->runs->changed, &n->wlock);
        *waited = true;
    }
    n->runs->runs[slot].first = first;
    n->runs->runs[slot].last = last;
    n->runs->runs[slot].ticket = n->runs->next_ticket++;
    n->nruns++;
    return slot;
}

/* Is a run that began before the one in SLOT still out? */
static bool earlier_out(const struct node *n, int slot)
{
    uint64_t mine = n->runs->runs[slot].ticket;
    for (int s = 0; s < RUNS_MAX; s++)
        if (n->runs->runs[s].last && n->runs->runs[s].ticket < mine)
            return true;
    return false;
}

void wrun_wait_turn(struct node *n, int slot)
{
    pthread_mutex_lock(&n->wlock);
    while (earlier_out(n, slot))
        pthread_cond_wait(&n->runs->changed, &n->wlock);
    pthread_mutex_unlock(&n->wlock);
}

void wrun_end(struct node *n, int slot)
{
    n->runs->runs[slot].first = n->runs->runs[slot].last = 0;
    n->nruns--;
    pthread_cond_broadcast(&n->runs->changed);
}

void node_lock_quiet(struct node *n)
{
    pthread_mutex_lock(&n->wlock);
    if (!n->nruns)
        return;
    n->quiet_wanted++;
    while (n->nruns)
        pthread_cond_wait(&n->runs->changed, &n->wlock);
    n->quiet_wanted--;
    /* Runs held back for us wait on the lock now, not on the table. */
    pthread_cond_broadcast(&n->runs->changed);
}

void node_lock_request(struct node *n)
{
    __atomic_add_fetch(&n->lock_waiting, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&n->wlock);
    __atomic_sub_fetch(&n->lock_waiting, 1, __ATOMIC_RELEASE);
}

void wrun_table_free(struct node *n)
{
    if (!n->runs)
        return;
    pthread_cond_destroy(&n->runs->changed);
    free(n->runs);
    n->runs = NULL;
}
