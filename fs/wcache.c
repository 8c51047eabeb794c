/*
 * wcache.c - the cache of small writes: the bytes written into parts of
 * blocks, kept as extents in memory and merged into whole blocks later.
 *
 * THEORY
 *
 * Blocks are stored whole (64 KiB by default) and addressed by their hash,
 * so a 4 KiB write into a stored block must, sooner or later, read and
 * verify the old block, merge, rehash and store the whole block.  Done per
 * write, small random writes cost a whole block each, on the writer's
 * path.  This cache keeps only the bytes written (extents, "pieces", per
 * block, per inode) and does the read-modify-write once per block, when
 * the block is merged and stored (flushed):
 *   - a write is a memcpy into the block's pieces: no read of the old
 *     block, no hash, on the write path;
 *   - many writes into one block cost one read-modify-write, however far
 *     apart in time they come, as long as the block stays cached: with
 *     pieces of 4 KiB the budget holds sixteen times as many blocks as
 *     whole copies of them would (each write into a new block costs the
 *     bytes written, not a block);
 *   - a block the pieces cover entirely (up to the file's end) needs no
 *     read at all when it is merged;
 *   - blocks are merged in block order, so that the old blocks are read
 *     in the order the file was written (sequential reads of the store).
 * The stored format does not change: every block reaching the store is
 * whole, hashed, deduplicated and compressed as before, so snapshots,
 * send/receive, dump, the vault, reclaim accounting and fsck see nothing
 * new.
 *
 * What goes through it: only the partial blocks of a write.  Whole blocks
 * go straight to the store (the sequential path is unchanged), and a whole
 * block written over a cached one discards the cached pieces.
 *
 * Invariants, each kept by the node's write lock (node->wlock):
 *   - the current content of a cached block is its stored content with
 *     its pieces laid over it (pieces are kept sorted, disjoint and not
 *     touching: overlapping or adjacent writes merge into one piece,
 *     later bytes winning), zeros past `len` where nothing is stored;
 *   - the stored extent of a cached block does not change while it is
 *     cached (only its flush stores it; whole-block writes drop it;
 *     truncation, hole punching and control changes flush first), so
 *     reading the old content at flush time reads what the block held
 *     when it entered the cache; and it has no content past `len`
 *     (truncation flushes first), so storing min(block size, file size
 *     - block start) bytes stores exactly the current content;
 *   - the inode record's size (and times, where the daemon keeps them:
 *     ops.c, kernel_times) is updated at write time, so getattr and the
 *     read path's size are right; only the extent lags, and storing it
 *     later changes no time.
 *
 * Reads overlay the cached pieces on what the store returns, under the
 * write lock of the node.  A node with cached blocks is pinned (it cannot
 * leave the node table).  Blocks are found through a hash table per node,
 * so a write or a read costs the same with one cached block or thousands.
 *
 * When blocks are flushed:
 *   - by the committer before each commit, with trylock (a writer can
 *     hold its inode's lock while it waits for the committer:
 *     backpressure, so the committer must never wait for an inode lock; a
 *     busy node is flushed at the next commit), and at most one commit
 *     threshold's worth per commit (the committer is exempt from the
 *     backpressure, so an unbounded flush would grow the batch, and the
 *     daemon's memory, with the cache); the rest waits for the next.
 *     While writes keep coming into the cache, the committer stores only
 *     what takes the cache down to half its budget, the fullest blocks
 *     first (storing a block early would only cost another
 *     read-modify-write when the next write into it comes); once no write
 *     came for a commit interval, it stores everything, a commit's worth
 *     at a time.  Durability never waits for it: fsync stores first;
 *   - by fsync of the inode, and by fsyncdir/syncfs and unmount for all,
 *     from request threads that hold no other lock, waiting for locks;
 *   - by truncate, hole punching and O_TRUNC of the inode (flush or drop
 *     first, then the operation);
 *   - by close (FUSE flush), so that an error storing them reaches
 *     close() as on a local filesystem;
 *   - when the cache is over its budget (WCACHE_BUDGET), by the writer,
 *     for its own inode: the blocks holding the most written bytes first
 *     (they gained most from waiting), until the cache is at half its
 *     budget; if that does not make room the write goes straight to the
 *     store.
 * Space: a cached block is acknowledged data, so storing it must never
 * meet a full volume.  Its space is reserved when it enters the cache
 * (sfs_space_reserve, sfs_block_cost bytes, what a whole block may
 * cost), it is stored with the right to use the reservations
 * (fs_store_cached), and the reservation goes back when it is stored or
 * dropped.  A write that finds no room to reserve goes straight to the
 * store instead, where its block costs what it really takes (a short or
 * compressible one far less) or fails with ENOSPC at write time.  So a
 * flush never fails for space, and neither does anything that flushes
 * first: snapshots and every other control change, truncation, fsync,
 * close, unmount (see store.c, THEORY: THE RESERVE).  A block that cannot
 * be stored for another reason (an I/O error, a damaged old block) stays
 * cached and the error goes to whoever flushed (fsync, close).  A block
 * its qtree has no room for (EDQUOT) is dropped, as the kernel drops pages
 * whose writeback failed, and the error waits on the node for the file's
 * next close or fsync: kept cached, it would fail every snapshot and the
 * very quota change that makes room, since control changes store every
 * cached block first.  The blocks of an inode whose last link is gone and
 * that no open file uses are dropped instead of stored, at the latest when
 * the kernel forgets the inode (then the inode is destroyed, as one
 * without cached blocks is).
 * Cores: merging is CPU work (reading and verifying the old block,
 * hashing, compressing) done while the owner holds the node's lock, so a
 * request thread's flush of many blocks shares them with helper threads
 * (one fewer than the cores, at most three), each storing whole blocks
 * through the ordinary write path (its own nested transaction, the
 * backpressure like any writer); only the owner changes the node's
 * table, after they are done.  The committer flushes alone: its helpers
 * would wait for the backpressure only the committer relieves.
 * Memory: at most WCACHE_BUDGET of pieces and their bookkeeping, and one
 * block buffer per flushing thread.
 */
#define _GNU_SOURCE
#include "wcache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "wrun.h"

/* Bytes written into a block and not stored yet. */
struct piece {
    uint32_t from, len;   /* from the block's start */
    struct piece *next;   /* sorted by from, disjoint, not touching */
    uint8_t data[];
};

struct wblock {
    uint64_t blockno;
    uint32_t len;         /* end of the furthest byte written */
    uint64_t charged;     /* bytes charged to the budget */
    uint64_t reserved;    /* bytes of space reserved for it (see THEORY) */
    struct piece *pieces;
    struct wblock *hnext; /* the hash chain */
};

/* The cached blocks of one inode (node->dirty). */
struct wfile {
    struct wblock **slots;
    size_t nslots;        /* a power of two */
    size_t count;
    /* On vol->cached, under nodes_lock, while it exists: finding what is
     * cached costs what is cached, not the nodes the kernel holds. */
    struct node *node;
    struct wfile *cnext, **cprev;
};

/* F (of N, new) on the volume's list, with the pin its blocks hold. */
static void cached_add(struct vol *v, struct node *n, struct wfile *f)
{
    pthread_mutex_lock(&v->nodes_lock);
    n->pins++;
    f->node = n;
    f->cnext = v->cached;
    if (f->cnext)
        f->cnext->cprev = &f->cnext;
    f->cprev = &v->cached;
    v->cached = f;
    pthread_mutex_unlock(&v->nodes_lock);
}

static void cached_remove(struct vol *v, struct wfile *f)
{
    pthread_mutex_lock(&v->nodes_lock);
    *f->cprev = f->cnext;
    if (f->cnext)
        f->cnext->cprev = f->cprev;
    pthread_mutex_unlock(&v->nodes_lock);
}

/* When the last write came into the cache (vol_now_ms; one volume per
 * daemon): the committer's measure of idleness. */
static uint64_t last_write_ms;

#define PIECE_COST(len) (sizeof(struct piece) + (len) + 16)
#define BLOCK_COST (sizeof(struct wblock) + 16)

static size_t slot_of(const struct wfile *f, uint64_t blockno)
{
    return (size_t)((blockno * 0x9e3779b97f4a7c15ull) >> 20) & (f->nslots - 1);
}

static struct wblock *find_block(struct node *n, uint64_t blockno)
{
    struct wfile *f = n->dirty;
    if (!f)
        return NULL;
    for (struct wblock *b = f->slots[slot_of(f, blockno)]; b; b = b->hnext)
        if (b->blockno == blockno)
            return b;
    return NULL;
}

static void charge(struct vol *v, struct wblock *b, int64_t bytes)
{
    b->charged += (uint64_t)bytes;
    __atomic_add_fetch(&v->wcache_bytes, (uint64_t)bytes, __ATOMIC_RELAXED);
}

static bool over_budget(struct vol *v, uint64_t more)
{
    return __atomic_load_n(&v->wcache_bytes, __ATOMIC_RELAXED) + more >
           WCACHE_BUDGET;
}

/* Double the table of F (or make its first); false without memory. */
static bool grow_table(struct wfile *f)
{
    size_t nslots = f->nslots ? f->nslots * 2 : 16;
    struct wblock **slots = calloc(nslots, sizeof(*slots));
    if (!slots)
        return false;
    struct wfile bigger = { .slots = slots, .nslots = nslots };
    for (size_t i = 0; i < f->nslots; i++)
        while (f->slots[i]) {
            struct wblock *b = f->slots[i];
            f->slots[i] = b->hnext;
            size_t s = slot_of(&bigger, b->blockno);
            b->hnext = slots[s];
            slots[s] = b;
        }
    free(f->slots);
    f->slots = slots;
    f->nslots = nslots; /* the rest (count, the list's links) stays */
    return true;
}

/* Unlink B from N's table and free it (the reservation goes back). */
static void free_block(struct vol *v, struct node *n, struct wblock *b)
{
    struct wfile *f = n->dirty;
    for (struct wblock **pp = &f->slots[slot_of(f, b->blockno)]; *pp;
         pp = &(*pp)->hnext)
        if (*pp == b) {
            *pp = b->hnext;
            break;
        }
    f->count--;
    if (b->reserved)
        sfs_space_unreserve(v->st, b->reserved);
    while (b->pieces) {
        struct piece *p = b->pieces;
        b->pieces = p->next;
        free(p);
    }
    __atomic_sub_fetch(&v->wcache_bytes, b->charged, __ATOMIC_RELAXED);
    free(b);
    __atomic_sub_fetch(&n->ncached, 1, __ATOMIC_RELEASE);
}

/* After blocks went: with none left, free the table and unpin N.  True
 * when the caller must destroy the (orphan) inode. */
static bool release_if_empty(struct vol *v, struct node *n)
{
    struct wfile *f = n->dirty;
    if (!f || f->count)
        return false;
    cached_remove(v, f);
    free(f->slots);
    free(f);
    n->dirty = NULL;
    return node_unpin(v, n);
}

/* Every block of N that no run out covers (wrun.c: the run replaces it,
 * and storing the old pieces after it would undo it), into *OUT
 * (malloc'd); false without memory. */
static bool list_blocks(struct node *n, struct wblock ***out, size_t *count)
{
    struct wfile *f = n->dirty;
    *out = NULL;
    *count = 0;
    if (!f || !f->count)
        return true;
    struct wblock **list = malloc(f->count * sizeof(*list));
    if (!list)
        return false;
    size_t k = 0;
    for (size_t i = 0; i < f->nslots; i++)
        for (struct wblock *b = f->slots[i]; b; b = b->hnext)
            if (!wrun_overlaps(n, b->blockno, b->blockno + 1))
                list[k++] = b;
    *out = list;
    *count = k;
    return true;
}

bool wcache_drop(struct vol *v, struct node *n, uint64_t first, uint64_t last)
{
    struct wfile *f = n->dirty;
    if (!f)
        return false;
    if (last - first <= f->count) {
        for (uint64_t bn = first; bn < last; bn++) {
            struct wblock *b = find_block(n, bn);
            if (b)
                free_block(v, n, b);
        }
    } else {
        for (size_t i = 0; i < f->nslots; i++) {
            struct wblock *b = f->slots[i];
            while (b) {
                struct wblock *next = b->hnext;
                if (b->blockno >= first && b->blockno < last)
                    free_block(v, n, b);
                b = next;
            }
        }
    }
    return release_if_empty(v, n);
}

/* A new, empty cached block BLOCKNO of N, its space reserved. */
static int new_block(struct vol *v, struct node *n, uint64_t blockno,
                     struct wblock **out)
{
    struct wfile *f = n->dirty;
    bool fresh = !f;
    if (fresh && !(f = calloc(1, sizeof(*f))))
        return -ENOMEM;
    struct wblock *b = calloc(1, sizeof(*b));
    if (!b || ((f->count + 1 > 2 * f->nslots) && !grow_table(f))) {
        free(b);
        if (fresh)
            free(f);
        return -ENOMEM;
    }
    uint64_t cost = sfs_block_cost(v->st);
    MDB_txn *txn = vol_read_begin(v);
    int rc = sfs_space_reserve(v->st, txn, cost);
    vol_read_end(v);
    if (rc) {
        free(b);
        if (fresh) {
            free(f->slots);
            free(f);
        }
        return rc;
    }
    b->reserved = cost;
    b->blockno = blockno;
    size_t s = slot_of(f, blockno);
    b->hnext = f->slots[s];
    f->slots[s] = b;
    f->count++;
    if (fresh) {
        n->dirty = f;
        cached_add(v, n, f);
    }
    __atomic_add_fetch(&n->ncached, 1, __ATOMIC_RELEASE);
    charge(v, b, (int64_t)BLOCK_COST);
    *out = b;
    return 0;
}

/* Lay SIZE bytes at FROM over B's pieces: one piece for the union of the
 * new bytes and every piece they overlap or touch. */
static int merge_piece(struct vol *v, struct wblock *b, uint32_t from,
                       const char *buf, uint32_t size)
{
    uint32_t to = from + size;
    struct piece **pp = &b->pieces;
    while (*pp && (*pp)->from + (*pp)->len < from)
        pp = &(*pp)->next;
    struct piece *p = *pp;
    if (p && p->from <= from && p->from + p->len >= to) {
        memcpy(p->data + (from - p->from), buf, size); /* inside one */
        return 0;
    }
    uint32_t lo = from, hi = to;
    struct piece *last = NULL;
    for (struct piece *q = p; q && q->from <= to; q = q->next) {
        if (q->from < lo)
            lo = q->from;
        if (q->from + q->len > hi)
            hi = q->from + q->len;
        last = q;
    }
    struct piece *m = malloc(sizeof(*m) + (hi - lo));
    if (!m)
        return -ENOMEM;
    m->from = lo;
    m->len = hi - lo;
    int64_t delta = (int64_t)PIECE_COST(m->len);
    struct piece *after = last ? last->next : p;
    for (struct piece *q = p; q != after;) {
        struct piece *next = q->next;
        memcpy(m->data + (q->from - lo), q->data, q->len);
        delta -= (int64_t)PIECE_COST(q->len);
        free(q);
        q = next;
    }
    memcpy(m->data + (from - lo), buf, size);
    m->next = after;
    *pp = m;
    charge(v, b, delta);
    return 0;
}

/* Do the pieces of B cover its first LEN bytes? */
static bool covers(const struct wblock *b, uint32_t len)
{
    return b->pieces && b->pieces->from == 0 && b->pieces->len >= len;
}

/* The current content of B, LEN bytes (the stored block, read and
 * verified unless the pieces cover it, with the pieces over it), into
 * OUT (block size bytes). */
static int merged_content(struct vol *v, struct node *n, struct wblock *b,
                          uint64_t file_size, uint32_t len, uint8_t *out)
{
    uint32_t bs = v->st->super.block_size;
    uint64_t bstart = b->blockno * bs;
    memset(out, 0, bs);
    if (!covers(b, len)) {
        struct sfs_rplan plan;
        MDB_txn *txn = vol_read_begin(v);
        int rc = sfs_rplan_collect(v->st, txn, SFS_VIEW_LIVE, n->ino,
                                   file_size, bstart, bs, &plan);
        vol_read_end_data(v, rc ? 0 : plan.len);
        if (rc)
            return rc;
        rc = sfs_rplan_finish(&plan, fs_codec(), out);
        sfs_rplan_release(&plan);
        if (rc)
            return rc;
    }
    for (struct piece *p = b->pieces; p; p = p->next)
        memcpy(out + p->from, p->data, p->len);
    return 0;
}

/* Merge and store block B of N (BUF: block size bytes of scratch).  0
 * when B is done with (stored, or nothing to store), else the error
 * (-EDQUOT: its qtree has no room; the caller drops it).  Touches B and
 * the store only, so that several threads may store blocks of N at once
 * while N's owner holds its lock. */
static int store_block(struct vol *v, struct node *n, struct wblock *b,
                       uint8_t *buf)
{
    uint32_t bs = v->st->super.block_size;
    struct sfs_inode i;
    MDB_txn *txn = vol_read_begin(v);
    int rc = sfs_inode_get(v->st, txn, SFS_VIEW_LIVE, n->ino, &i);
    vol_read_end(v);
    if (rc == -ENOENT)
        return 0; /* the inode is gone: nothing to keep */
    if (rc)
        return rc;
    uint64_t bstart = b->blockno * bs;
    /* An orphan no open file uses has no reader left: its data is
     * dropped (storing it could fail on a full volume and keep the
     * orphan alive).  An unlinked file still open keeps its data. */
    if (i.nlink == 0 && node_is_unreferenced_orphan(v, n))
        return 0;
    if (bstart >= i.size)
        return 0;
    /* The whole block as the file has it: no old bytes to merge. */
    uint64_t len = i.size - bstart < bs ? i.size - bstart : bs;
    if (len < b->len)
        len = b->len;
    rc = merged_content(v, n, b, i.size, (uint32_t)len, buf);
    if (!rc)
        rc = fs_store_cached(v, n->ino, (const char *)buf, (size_t)len,
                             bstart, b->reserved);
    if (!rc) {
        b->reserved = 0; /* spent */
        metrics_add(MC_WCACHE_STORED, 1);
    }
    return rc;
}

static int by_blockno(const void *a, const void *b)
{
    uint64_t x = (*(struct wblock *const *)a)->blockno;
    uint64_t y = (*(struct wblock *const *)b)->blockno;
    return x < y ? -1 : x > y;
}

static int by_charge_desc(const void *a, const void *b)
{
    uint64_t x = (*(struct wblock *const *)a)->charged;
    uint64_t y = (*(struct wblock *const *)b)->charged;
    return x > y ? -1 : x < y;
}

/* How many of LIST's first blocks to flush for the cache to be at
 * TARGET bytes (all of them if it cannot). */
static size_t prefix_for(struct vol *v, struct wblock **list, size_t count,
                         uint64_t target)
{
    uint64_t have = __atomic_load_n(&v->wcache_bytes, __ATOMIC_RELAXED);
    size_t k = 0;
    while (k < count && have > target)
        have -= list[k++]->charged;
    return k;
}

enum flush_mode {
    FLUSH_ALL,         /* every block */
    FLUSH_TO_HALF,     /* the fullest first, to half the budget */
    FLUSH_BATCH_BOUND, /* the committer: up to one commit threshold */
    FLUSH_HALF_BOUND,  /* both of the last two */
};

static bool batch_full(struct vol *v)
{
    return __atomic_load_n(&v->dirty_bytes, __ATOMIC_RELAXED) >=
           VOL_COMMIT_DIRTY_BYTES;
}

/* Blocks of one flush, taken in order by the threads storing them. */
struct flush_job {
    struct vol *v;
    struct node *n;
    struct wblock **list;
    int *rcs;       /* per block: 1 not tried, 0 stored, or the error */
    size_t count;
    size_t next;    /* atomic: the next block to take */
    bool bounded;   /* stop once the batch holds a commit threshold */
    bool stop;      /* atomic: an error, or the bound, was met */
};

static void *flush_worker(void *arg)
{
    struct flush_job *j = arg;
    uint8_t *buf = malloc(j->v->st->super.block_size);
    while (buf && !__atomic_load_n(&j->stop, __ATOMIC_RELAXED)) {
        size_t k = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        if (k >= j->count)
            break;
        if (j->bounded && batch_full(j->v)) {
            __atomic_store_n(&j->stop, true, __ATOMIC_RELAXED);
            break;
        }
        int rc = store_block(j->v, j->n, j->list[k], buf);
        j->rcs[k] = rc;
        if (rc && rc != -EDQUOT)
            __atomic_store_n(&j->stop, true, __ATOMIC_RELAXED);
    }
    free(buf);
    return NULL;
}

/* Helper threads for a flush of COUNT blocks from a request thread: the
 * merge (read, verify, hash, compress) is CPU work that the node's lock
 * would otherwise keep on one core.  None for the committer, which must
 * not wait for its own backpressure, and none for a few blocks. */
static unsigned helpers_for(enum flush_mode mode, size_t count)
{
    if (mode != FLUSH_ALL && mode != FLUSH_TO_HALF)
        return 0;
    if (count < 16)
        return 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus <= 1 ? 0 : cpus > 4 ? 3 : (unsigned)(cpus - 1);
}

/* Store LIST's blocks (on HELPERS more threads); free those done.  The
 * first error, or 0. */
static int store_blocks(struct vol *v, struct node *n, struct wblock **list,
                        size_t count, enum flush_mode mode)
{
    struct flush_job j = { .v = v, .n = n, .list = list, .count = count,
                           .bounded = mode == FLUSH_BATCH_BOUND ||
                                      mode == FLUSH_HALF_BOUND };
    j.rcs = malloc(count * sizeof(*j.rcs));
    if (!j.rcs)
        return -ENOMEM;
    for (size_t k = 0; k < count; k++)
        j.rcs[k] = 1;
    pthread_t tids[3];
    unsigned started = 0, want = helpers_for(mode, count);
    while (started < want &&
           !pthread_create(&tids[started], NULL, flush_worker, &j))
        started++;
    flush_worker(&j);
    for (unsigned t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    int first = 0;
    for (size_t k = 0; k < count; k++) {
        int rc = j.rcs[k];
        if (rc == -EDQUOT)
            n->quota_error = rc; /* lost: see the theory above */
        if (rc == 0 || rc == -EDQUOT)
            free_block(v, n, list[k]);
        else if (rc < 0 && !first)
            first = rc;
    }
    free(j.rcs);
    return first;
}

static int flush_blocks(struct vol *v, struct node *n, enum flush_mode mode)
{
    struct wblock **list;
    size_t count;
    if (!list_blocks(n, &list, &count))
        return -ENOMEM;
    if (!count) {
        free(list);
        return 0;
    }
    if (mode == FLUSH_TO_HALF || mode == FLUSH_HALF_BOUND) {
        qsort(list, count, sizeof(*list), by_charge_desc);
        count = prefix_for(v, list, count, WCACHE_BUDGET / 2);
    }
    qsort(list, count, sizeof(*list), by_blockno);
    uint64_t ino = n->ino; /* N may be freed by the unpin */
    int rc = count ? store_blocks(v, n, list, count, mode) : 0;
    free(list);
    if (release_if_empty(v, n))
        fs_destroy_orphan(v, ino);
    return rc;
}

int wcache_flush(struct vol *v, struct node *n)
{
    return flush_blocks(v, n, FLUSH_ALL);
}

int wcache_take_error(struct node *n)
{
    int rc = n->quota_error;
    n->quota_error = 0;
    return rc;
}

int wcache_write(struct vol *v, struct node *n, const char *buf, size_t size,
                 uint64_t off, bool *cached)
{
    uint32_t bs = v->st->super.block_size;
    uint64_t blockno = off / bs;
    uint32_t from = (uint32_t)(off - blockno * bs);
    *cached = false;
    struct wblock *b = find_block(n, blockno);
    uint64_t more = PIECE_COST(size) + (b ? 0 : BLOCK_COST);
    if (over_budget(v, more)) {
        int rc = flush_blocks(v, n, FLUSH_TO_HALF);
        if (rc)
            return rc;
        b = find_block(n, blockno);
        more = PIECE_COST(size) + (b ? 0 : BLOCK_COST);
        if (over_budget(v, more)) {
            metrics_add(MC_WCACHE_BYPASSES, 1);
            return 0; /* no room: the caller writes through */
        }
    }
    if (b) {
        metrics_add(MC_WCACHE_HITS, 1);
    } else {
        int rc = new_block(v, n, blockno, &b);
        if (rc == -ENOSPC) {
            metrics_add(MC_WCACHE_BYPASSES, 1);
            return 0; /* no room to reserve: the caller writes through */
        }
        if (rc)
            return rc;
        metrics_add(MC_WCACHE_MISSES, 1);
    }
    int rc = merge_piece(v, b, from, buf, (uint32_t)size);
    if (rc)
        return rc;
    __atomic_store_n(&last_write_ms, vol_now_ms(), __ATOMIC_RELAXED);
    if (from + size > b->len)
        b->len = (uint32_t)(from + size);
    *cached = true;
    return 0;
}

void wcache_overlay(struct vol *v, struct node *n, uint64_t off, size_t len,
                    char *out)
{
    uint32_t bs = v->st->super.block_size;
    if (!len || !n->dirty)
        return;
    for (uint64_t bn = off / bs; bn <= (off + len - 1) / bs; bn++) {
        struct wblock *b = find_block(n, bn);
        uint64_t bstart = bn * bs;
        for (struct piece *p = b ? b->pieces : NULL; p; p = p->next) {
            uint64_t ps = bstart + p->from, pe = ps + p->len;
            uint64_t lo = off > ps ? off : ps;
            uint64_t hi = off + len < pe ? off + len : pe;
            if (lo < hi)
                memcpy(out + (lo - off), p->data + (lo - ps), (size_t)(hi - lo));
        }
    }
}

/* Collect pinned references to the nodes that have cached blocks; false
 * if memory ran out (then the list may be partial). */
static bool dirty_nodes(struct vol *v, struct node ***out, size_t *count)
{
    pthread_mutex_lock(&v->nodes_lock);
    size_t cap = 16, n = 0;
    bool complete = false;
    struct node **list = malloc(cap * sizeof(*list));
    for (struct wfile *f = list ? v->cached : NULL; f; f = f->cnext) {
        struct node *nd = f->node;
        if (!__atomic_load_n(&nd->ncached, __ATOMIC_ACQUIRE))
            continue;
        if (n == cap) {
            struct node **bigger = realloc(list, 2 * cap * sizeof(*list));
            if (!bigger)
                goto done;
            list = bigger;
            cap *= 2;
        }
        nd->pins++;
        list[n++] = nd;
    }
    complete = list != NULL;
done:
    pthread_mutex_unlock(&v->nodes_lock);
    *out = list;
    *count = n;
    return complete;
}

/* The committer stores what it can once no write came into the cache
 * for a commit interval; while writes come, only what takes
 * the cache down to half its budget, the fullest blocks first, so that
 * blocks keep gathering writes. */
static enum flush_mode committer_mode(struct vol *v)
{
    uint64_t last = __atomic_load_n(&last_write_ms, __ATOMIC_RELAXED);
    return vol_now_ms() - last < VOL_COMMIT_INTERVAL_MS ? FLUSH_HALF_BOUND
                                                        : FLUSH_BATCH_BOUND;
}

int wcache_flush_all(struct vol *v, bool wait)
{
    if (!__atomic_load_n(&v->wcache_bytes, __ATOMIC_RELAXED))
        return 0;
    struct node **list;
    size_t count;
    int first_error = dirty_nodes(v, &list, &count) ? 0 : -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        struct node *n = list[i];
        if (wait)
            node_lock_quiet(n);
        else if (batch_full(v) || pthread_mutex_trylock(&n->wlock))
            goto unpin;
        int rc = flush_blocks(v, n, wait ? FLUSH_ALL : committer_mode(v));
        if (rc && !first_error)
            first_error = rc;
        pthread_mutex_unlock(&n->wlock);
    unpin:;
        uint64_t ino = n->ino; /* N may be freed by the unpin */
        if (node_unpin(v, n))
            fs_destroy_orphan(v, ino);
    }
    free(list);
    return first_error;
}
