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
 *     daemon's memory, with the cache), a chunk (WCACHE_CHUNK blocks)
 *     per hold of a node's lock; the rest waits for the next.
 *     While writes keep coming into the cache, the committer stores only
 *     what takes the cache down to half its budget, the fullest blocks
 *     first (storing a block early would only cost another
 *     read-modify-write when the next write into it comes); once no write
 *     came for a commit interval, it stores everything, a commit's worth
 *     at a time.  Durability never waits for it: fsync stores first;
 *   - by fsync of the inode, and by fsyncdir/syncfs, unmount and control
 *     changes for all, from threads that hold no other lock, waiting for
 *     locks; for all, every block cached when the flush began (a serial
 *     per block tells), a chunk at a time stored outside the node's lock
 *     (STORING OUTSIDE THE LOCK below: a write never waits behind
 *     thousands of read-modify-writes; the stall a snapshot create caused
 *     an O_DIRECT writer was seconds);
 *   - by the drainer, from three quarters of the budget down to half,
 *     outside the nodes' locks too (THE DRAINER below);
 *   - by truncate, hole punching and O_TRUNC of the inode (flush or drop
 *     first, then the operation);
 *   - by close (FUSE flush), so that an error storing them reaches
 *     close() as on a local filesystem;
 *   - when the cache is over its budget (WCACHE_BUDGET) all the same, by
 *     the kernel's writeback, for its own inode: the blocks holding the
 *     most written bytes first (they gained most from waiting), until the
 *     cache is at half its budget; a client's write (O_DIRECT, or without
 *     the writeback cache) goes straight to the store instead, one
 *     read-modify-write, and so does the writeback's when that made no
 *     room (without a drainer, every writer stores as the writeback
 *     does).  A write into a block already cached may go a quarter past
 *     the budget (its pieces grow by a block at most).
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
 * hashing, compressing), so a flush of many blocks shares it with helper
 * threads (one fewer than the cores, at most three): under the node's
 * lock each stores whole blocks through the ordinary write path (its own
 * nested transaction, the backpressure like any writer), outside it each
 * prepares blocks; only the owner changes the node's table, after they
 * are done.  The committer flushes alone: its helpers would wait for the
 * backpressure only the committer relieves.
 * Memory: at most WCACHE_BUDGET of pieces and their bookkeeping (and a
 * quarter more for writes into cached blocks), one block buffer per
 * flushing thread, and per flush outside the lock one chunk's copies of
 * pieces and prepared blocks.
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
    uint64_t serial;      /* unique among the blocks ever cached */
    uint32_t gen;         /* moved by every write into it */
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

static uint64_t next_serial;

static void charge(struct vol *v, struct wblock *b, int64_t bytes)
{
    b->charged += (uint64_t)bytes;
    __atomic_add_fetch(&v->wcache_bytes, (uint64_t)bytes, __ATOMIC_RELAXED);
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

/* Every block of N cached before serial UPTO was given that no run out
 * covers (wrun.c: the run replaces it, and storing the old pieces after
 * it would undo it), into *OUT (malloc'd); false without memory. */
static bool list_blocks(struct node *n, uint64_t upto, struct wblock ***out,
                        size_t *count)
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
            if (b->serial <= upto &&
                !wrun_overlaps(n, b->blockno, b->blockno + 1))
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
    /* after the node is on the list and counts the block: see
     * dirty_nodes */
    __atomic_add_fetch(&n->ncached, 1, __ATOMIC_RELEASE);
    b->serial = __atomic_add_fetch(&next_serial, 1, __ATOMIC_ACQ_REL);
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
    b->gen++;
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

/* Do PIECES cover a block's first LEN bytes? */
static bool covers(const struct piece *pieces, uint32_t len)
{
    return pieces && pieces->from == 0 && pieces->len >= len;
}

/* The current content of block BLOCKNO of INO, LEN bytes: the stored
 * block (read and verified unless PIECES cover it) with PIECES over it,
 * into OUT (block size bytes). */
static int merged_content(struct vol *v, uint64_t ino, uint64_t blockno,
                          const struct piece *pieces, uint64_t file_size,
                          uint32_t len, uint8_t *out)
{
    uint32_t bs = v->st->super.block_size;
    uint64_t bstart = blockno * bs;
    memset(out, 0, bs);
    if (!covers(pieces, len)) {
        struct sfs_rplan plan;
        MDB_txn *txn = vol_read_begin(v);
        int rc = sfs_rplan_collect(v->st, txn, SFS_VIEW_LIVE, ino,
                                   file_size, bstart, bs, &plan);
        vol_read_end_data(v, rc ? 0 : plan.len);
        if (rc)
            return rc;
        rc = sfs_rplan_finish(&plan, fs_codec(), out);
        sfs_rplan_release(&plan);
        if (rc)
            return rc;
    }
    for (const struct piece *p = pieces; p; p = p->next)
        memcpy(out + p->from, p->data, p->len);
    return 0;
}

/* What storing block BLOCKNO of N, written up to WRITTEN bytes, takes:
 * 1 when there is nothing to keep, else 0 with the file's size in
 * *FILE_SIZE and the bytes to store in *LEN, or the error. */
static int store_extent(struct vol *v, struct node *n, uint64_t blockno,
                        uint32_t written, uint64_t *file_size, uint32_t *len)
{
    uint32_t bs = v->st->super.block_size;
    struct sfs_inode i;
    MDB_txn *txn = vol_read_begin(v);
    int rc = sfs_inode_get(v->st, txn, SFS_VIEW_LIVE, n->ino, &i);
    vol_read_end(v);
    if (rc == -ENOENT)
        return 1; /* the inode is gone: nothing to keep */
    if (rc)
        return rc;
    uint64_t bstart = blockno * bs;
    /* An orphan no open file uses has no reader left: its data is
     * dropped (storing it could fail on a full volume and keep the
     * orphan alive).  An unlinked file still open keeps its data. */
    if (i.nlink == 0 && node_is_unreferenced_orphan(v, n))
        return 1;
    if (bstart >= i.size)
        return 1;
    /* The whole block as the file has it: no old bytes to merge. */
    uint64_t bytes = i.size - bstart < bs ? i.size - bstart : bs;
    *len = (uint32_t)(bytes < written ? written : bytes);
    *file_size = i.size;
    return 0;
}

/* What block BLOCKNO of N holds now, PIECES (written up to WRITTEN) over
 * the stored block, into BUF (block size bytes), and its length in *LEN:
 * 0, or 1 when there is nothing to keep (store_extent), or the error. */
static int merge_block(struct vol *v, struct node *n, uint64_t blockno,
                       const struct piece *pieces, uint32_t written,
                       uint8_t *buf, uint32_t *len)
{
    uint64_t file_size;
    int rc = store_extent(v, n, blockno, written, &file_size, len);
    return rc ? rc : merged_content(v, n->ino, blockno, pieces, file_size,
                                    *len, buf);
}

/* Merge and store block B of N (BUF: block size bytes of scratch).  0
 * when B is done with (stored, or nothing to store), else the error
 * (-EDQUOT: its qtree has no room; the caller drops it).  Touches B and
 * the store only, so that several threads may store blocks of N at once
 * while N's owner holds its lock. */
static int store_block(struct vol *v, struct node *n, struct wblock *b,
                       uint8_t *buf)
{
    uint32_t len;
    int rc = merge_block(v, n, b->blockno, b->pieces, b->len, buf, &len);
    if (rc)
        return rc == 1 ? 0 : rc;
    rc = fs_store_cached(v, n->ino, (const char *)buf, (size_t)len,
                         b->blockno * v->st->super.block_size, b->reserved);
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

/*
 * The most blocks one hold of a node's lock takes: the committer's flush
 * stores that many under the lock (about one commit's time: each block a
 * read, a verification, a hash and a compression, 0.1-0.5 ms on one
 * core), the flushes outside the lock (the drainer, syncfs, control
 * changes, unmount) copy that many blocks' pieces under it and apply them
 * under the next.  Flushes that must not let go between blocks (a file's
 * fsync, close, truncation, and the writeback making room) take every
 * block in one hold.
 */
#define WCACHE_CHUNK 64

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

/* A cached block taken to be stored outside its node's lock (see
 * STORING OUTSIDE THE LOCK below). */
struct taken {
    uint64_t blockno, serial;
    uint32_t gen, written;
    struct piece *pieces;  /* a copy of the block's */
    struct sfs_wplan plan; /* when prepared */
    int rc;                /* 0 prepared, 1 nothing to store (or not
                            * tried yet), or the error */
};

/* Blocks of one flush, taken in order by the threads storing them (LIST)
 * or preparing them (TAKEN). */
struct flush_job {
    struct vol *v;
    struct node *n;
    struct wblock **list;
    struct taken *taken;
    int *rcs;       /* per block of LIST: 1 not tried, 0 stored, or the error */
    size_t count;
    size_t next;    /* atomic: the next block to take */
    bool bounded;   /* stop once the batch holds a commit threshold */
    bool stop;      /* atomic: an error, or the bound, was met */
};

/* Make T's block ready to store, without N's lock: the work of a store
 * but the change (the merge, its hash and compression). */
static int prepare_taken(struct vol *v, struct node *n, struct taken *t,
                         uint8_t *buf)
{
    uint32_t len;
    int rc = merge_block(v, n, t->blockno, t->pieces, t->written, buf, &len);
    return rc ? rc : fs_prepare_cached(v, n->ino, (const char *)buf, len,
                                       t->blockno * v->st->super.block_size,
                                       &t->plan);
}

static void *flush_worker(void *arg)
{
    struct flush_job *j = arg;
    uint8_t *buf = malloc(j->v->st->super.block_size);
    while (buf && !__atomic_load_n(&j->stop, __ATOMIC_RELAXED)) {
        size_t k = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        if (k >= j->count)
            break;
        if (j->taken) {
            j->taken[k].rc = prepare_taken(j->v, j->n, &j->taken[k], buf);
            continue; /* each on its own: an error stops nothing */
        }
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

/* Run J on this thread and WANT helpers. */
static void run_job(struct flush_job *j, unsigned want)
{
    pthread_t tids[3];
    unsigned started = 0;
    while (started < want && started < 3 &&
           !pthread_create(&tids[started], NULL, flush_worker, j))
        started++;
    flush_worker(j);
    for (unsigned t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
}

/* Store LIST's blocks (on helper threads too); free those done.  The
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
    run_job(&j, helpers_for(mode, count));
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

/* The blocks of N cached before serial UPTO that MODE stores, at most
 * LIMIT of them, in block order, into *LIST (malloc'd); *MORE, if given:
 * the limit left some that MODE wanted. */
static int select_blocks(struct vol *v, struct node *n, enum flush_mode mode,
                         uint64_t upto, size_t limit, bool *more,
                         struct wblock ***list, size_t *count)
{
    if (more)
        *more = false;
    if (!list_blocks(n, upto, list, count))
        return -ENOMEM;
    if (!*count)
        return 0;
    if (mode == FLUSH_TO_HALF || mode == FLUSH_HALF_BOUND) {
        qsort(*list, *count, sizeof(**list), by_charge_desc);
        *count = prefix_for(v, *list, *count, WCACHE_BUDGET / 2);
    }
    qsort(*list, *count, sizeof(**list), by_blockno);
    if (*count > limit) {
        *count = limit;
        if (more)
            *more = true;
    }
    return 0;
}

/* Store N's blocks cached before serial UPTO as MODE says, at most LIMIT
 * of them (in block order; *MORE, if given: the limit left some that
 * MODE wanted). */
static int flush_blocks(struct vol *v, struct node *n, enum flush_mode mode,
                        uint64_t upto, size_t limit, bool *more)
{
    struct wblock **list;
    size_t count;
    int rc = select_blocks(v, n, mode, upto, limit, more, &list, &count);
    if (rc)
        return rc;
    uint64_t ino = n->ino; /* N may be freed by the unpin */
    rc = count ? store_blocks(v, n, list, count, mode) : 0;
    free(list);
    if (release_if_empty(v, n))
        fs_destroy_orphan(v, ino);
    return rc;
}

int wcache_flush(struct vol *v, struct node *n)
{
    return flush_blocks(v, n, FLUSH_ALL, UINT64_MAX, SIZE_MAX, NULL);
}

int wcache_flush_block(struct vol *v, struct node *n, uint64_t blockno)
{
    struct wblock *b = find_block(n, blockno);
    if (!b)
        return 0;
    uint64_t ino = n->ino; /* N may be freed by the unpin */
    int rc = store_blocks(v, n, &b, 1, FLUSH_ALL);
    if (release_if_empty(v, n))
        fs_destroy_orphan(v, ino);
    return rc;
}

int wcache_take_error(struct node *n)
{
    int rc = n->quota_error;
    n->quota_error = 0;
    return rc;
}

/* Collect pinned references to the nodes that have cached blocks, and
 * in *UPTO the last serial given to a block by then: every block with a
 * serial up to it is in a node of the list (new_block gives the serial
 * after the node is on the volume's list and its count of cached blocks,
 * which the list's walk reads, includes the block; a node leaves the
 * list only once it has no block).  False if memory ran out (then the list may be
 * partial). */
static bool dirty_nodes(struct vol *v, uint64_t *upto, struct node ***out,
                        size_t *count)
{
    pthread_mutex_lock(&v->nodes_lock);
    *upto = __atomic_load_n(&next_serial, __ATOMIC_ACQUIRE);
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

/* After a chunk stored under N's lock, now let go: a request that waited
 * for the lock meanwhile takes it before the flusher takes it again (a
 * mutex is not fair: the thread that lets go usually takes it back
 * first).  A short wait, bounded. */
static void let_waiters_in(struct node *n)
{
    uint32_t waiting = __atomic_load_n(&n->lock_waiting, __ATOMIC_ACQUIRE);
    for (int tries = 0; waiting && tries < 20; tries++) {
        usleep(100);
        if (__atomic_load_n(&n->lock_waiting, __ATOMIC_ACQUIRE) < waiting)
            return;
    }
}

/*
 * STORING OUTSIDE THE LOCK
 *
 * Storing a cached block is costly (read and verify the old block, merge,
 * hash, compress) and changes the store cheaply.  A flush that stores
 * other files' blocks, or its own file's while writers wait (the drainer,
 * control changes, syncfs), does the costly part without the node's
 * lock: under the lock it takes a chunk of blocks (a copy of each one's
 * pieces, with its serial and its write count, gen), lets go, prepares
 * each (fs_prepare_cached), and takes the lock again to apply each block
 * whose serial and gen are still those it took: no write came into it,
 * and no one stored or dropped it (a block dropped and cached again has
 * another serial).  Such a block's stored content is still what was read
 * (only a flush changes it while cached), so applying now stores exactly
 * what storing under the lock would have.  A block that moved is left
 * cached as it is now (its preparation is thrown away) for a later flush;
 * one that a run of whole blocks out covers is left too (the run replaces
 * it).  Whether there is anything to store (the inode gone, an orphan no
 * one reads, past the end) is decided again under the lock.  A write of
 * the file waits for the lock only while a chunk is taken and applied.
 */

/* Copy B's pieces into T; false without memory. */
static bool take_block(const struct wblock *b, struct taken *t)
{
    struct piece **tail = &t->pieces;
    t->blockno = b->blockno;
    t->serial = b->serial;
    t->gen = b->gen;
    t->written = b->len;
    t->rc = 1;
    for (const struct piece *p = b->pieces; p; p = p->next) {
        struct piece *c = malloc(sizeof(*c) + p->len);
        if (!c)
            return false;
        memcpy(c, p, sizeof(*c) + p->len);
        c->next = NULL;
        *tail = c;
        tail = &c->next;
    }
    return true;
}

static void release_taken(struct taken *taken, size_t count)
{
    for (size_t k = 0; taken && k < count; k++) {
        while (taken[k].pieces) {
            struct piece *p = taken[k].pieces;
            taken[k].pieces = p->next;
            free(p);
        }
        if (taken[k].rc == 0)
            sfs_wplan_release(&taken[k].plan);
    }
    free(taken);
}

enum { TAKEN_READY, TAKEN_LEFT, TAKEN_GONE, TAKEN_DECIDE };

/* Under N's lock: what becomes of T's block.  TAKEN_READY: as it was
 * taken, its preparation to apply; TAKEN_LEFT: written meanwhile, or a
 * run out covers it (stays cached); TAKEN_GONE: stored or dropped by
 * another; TAKEN_DECIDE: as taken, but nothing to store, it seemed (to
 * be decided again under the lock); else the preparation's error. */
static int check_taken(struct node *n, const struct taken *t)
{
    struct wblock *b = find_block(n, t->blockno);
    if (!b || b->serial != t->serial)
        return TAKEN_GONE;
    if (b->gen != t->gen || wrun_overlaps(n, t->blockno, t->blockno + 1))
        return TAKEN_LEFT;
    return t->rc == 0 ? TAKEN_READY : t->rc == 1 ? TAKEN_DECIDE : t->rc;
}

/* Under N's lock: the end of T's block after RC (as store_block's). */
static void settle_taken(struct vol *v, struct node *n, const struct taken *t,
                         int rc, int *first)
{
    if (rc == -EDQUOT)
        n->quota_error = rc; /* lost: see the theory above */
    if (rc == 0 || rc == -EDQUOT)
        free_block(v, n, find_block(n, t->blockno));
    else if (rc < 0 && !*first)
        *first = rc;
}

/* Under N's lock: apply TAKEN (the blocks as they were taken, in one
 * group of changes), free the blocks done with.  The first error, or 0;
 * *LEFT: a block was left cached. */
static int apply_all_taken(struct vol *v, struct node *n, struct taken *taken,
                           size_t count, bool *left)
{
    struct sfs_wplan **plans = malloc(count * sizeof(*plans));
    uint64_t *reserved = malloc(count * sizeof(*reserved));
    int *rcs = malloc(count * sizeof(*rcs));
    size_t *which = malloc(count * sizeof(*which));
    uint8_t *scratch = malloc(v->st->super.block_size);
    int first = 0;
    size_t ready = 0;
    for (size_t k = 0; k < count; k++) {
        int rc = plans && reserved && rcs && which && scratch
                     ? check_taken(n, &taken[k]) : -ENOMEM;
        if (rc == TAKEN_READY) {
            plans[ready] = &taken[k].plan;
            reserved[ready] = find_block(n, taken[k].blockno)->reserved;
            which[ready++] = k;
            continue;
        }
        if (rc == TAKEN_LEFT)
            *left = true;
        if (rc == TAKEN_DECIDE)
            rc = store_block(v, n, find_block(n, taken[k].blockno), scratch);
        if (rc != TAKEN_LEFT && rc != TAKEN_GONE)
            settle_taken(v, n, &taken[k], rc, &first);
    }
    if (ready)
        fs_apply_cached(v, n->ino, plans, reserved, rcs, ready);
    for (size_t r = 0; r < ready; r++) {
        const struct taken *t = &taken[which[r]];
        if (!rcs[r]) {
            find_block(n, t->blockno)->reserved = 0; /* spent */
            metrics_add(MC_WCACHE_STORED, 1);
        }
        settle_taken(v, n, t, rcs[r], &first);
    }
    free(plans);
    free(reserved);
    free(rcs);
    free(which);
    free(scratch);
    return first;
}

/* The blocks one flush outside the lock goes through: chosen once, at
 * its first hold of the node's lock, in the order MODE stores them (so a
 * flush of many blocks lists and sorts them once, not per chunk), then
 * taken a chunk at a time, each if it is still cached with a serial up
 * to UPTO (one stored, dropped or cached again meanwhile is passed
 * over). */
struct flush_cursor {
    enum flush_mode mode;
    uint64_t upto;
    bool quiet;          /* hold the lock quiet (no run out) */
    bool chosen;
    uint64_t *blocknos;
    size_t count, next;
    bool left;           /* a block was written while its chunk was out */
};

static int choose_blocks(struct vol *v, struct node *n, struct flush_cursor *c)
{
    struct wblock **list;
    size_t count;
    int rc = select_blocks(v, n, c->mode, c->upto, SIZE_MAX, NULL, &list,
                           &count);
    if (rc)
        return rc;
    c->chosen = true;
    c->blocknos = count ? malloc(count * sizeof(*c->blocknos)) : NULL;
    for (size_t k = 0; c->blocknos && k < count; k++)
        c->blocknos[k] = list[k]->blockno;
    c->count = c->blocknos ? count : 0;
    free(list);
    return count && !c->blocknos ? -ENOMEM : 0;
}

/* Under N's lock: take C's next chunk into *OUT (*COUNT blocks). */
static int take_chunk(struct vol *v, struct node *n, struct flush_cursor *c,
                      struct taken **out, size_t *count)
{
    int rc = c->chosen ? 0 : choose_blocks(v, n, c);
    size_t room = c->count - c->next < WCACHE_CHUNK ? c->count - c->next
                                                    : WCACHE_CHUNK;
    struct taken *taken = rc || !room ? NULL : calloc(room, sizeof(*taken));
    *out = taken;
    *count = 0;
    if (rc || !room)
        return rc;
    if (!taken)
        return -ENOMEM;
    while (c->next < c->count && *count < room) {
        uint64_t blockno = c->blocknos[c->next++];
        struct wblock *b = find_block(n, blockno);
        if (!b || b->serial > c->upto || wrun_overlaps(n, blockno, blockno + 1))
            continue;
        if (!take_block(b, &taken[(*count)++]))
            return -ENOMEM;
    }
    return 0;
}

/* C's next chunk of N's blocks, stored outside N's lock but for taking
 * and applying them (the caller holds no lock).  The caller calls again
 * while C has blocks left (c->next < c->count), and frees c->blocknos. */
static int flush_chunk_outside(struct vol *v, struct node *n,
                               struct flush_cursor *c)
{
    if (c->quiet)
        node_lock_quiet(n);
    else
        node_lock_request(n);
    struct taken *taken;
    size_t count;
    int rc = take_chunk(v, n, c, &taken, &count);
    pthread_mutex_unlock(&n->wlock);
    if (rc || !count) {
        release_taken(taken, count);
        return rc;
    }
    struct flush_job j = { .v = v, .n = n, .taken = taken, .count = count };
    run_job(&j, helpers_for(FLUSH_ALL, count));
    if (c->quiet)
        node_lock_quiet(n);
    else
        node_lock_request(n);
    uint64_t ino = n->ino; /* N may be freed by the unpin */
    rc = apply_all_taken(v, n, taken, count, &c->left);
    if (release_if_empty(v, n))
        fs_destroy_orphan(v, ino);
    pthread_mutex_unlock(&n->wlock);
    release_taken(taken, count);
    return rc;
}

/*
 * THE DRAINER
 *
 * A thread per volume that stores cached blocks before the cache is
 * full: woken when a write takes the cache past DRAIN_START (three
 * quarters of the budget), it stores the fullest blocks of each file
 * with cached blocks, a chunk per hold of the file's lock, until the
 * cache is at half its budget, outside the files' locks (STORING OUTSIDE
 * THE LOCK).  Without it, the writer that found the cache full stored
 * half the budget's worth of its own blocks, holding its file's lock:
 * thousands of read-modify-writes, seconds during which every other write
 * of the file (an O_DIRECT one, each a request) waited.  With it, a
 * client's write that still finds the cache full (the writes outran the
 * drainer) goes through, and the kernel's writeback stores its own file's
 * blocks as before (wcache_write).  The drainer holds no lock but a
 * node's while it takes or applies a chunk, waits for it like a writer,
 * and stops at unmount before the final flush.
 */
#define DRAIN_START (WCACHE_BUDGET / 4 * 3)

struct wdrainer {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool wanted, stop; /* under lock; wanted also peeked atomically */
};

static bool above(struct vol *v, uint64_t bytes)
{
    return __atomic_load_n(&v->wcache_bytes, __ATOMIC_RELAXED) > bytes;
}

static void drainer_wake(struct vol *v)
{
    struct wdrainer *d = v->drainer;
    if (!d || __atomic_load_n(&d->wanted, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&d->lock);
    __atomic_store_n(&d->wanted, true, __ATOMIC_RELAXED);
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
}

static bool drainer_stopping(struct wdrainer *d)
{
    return __atomic_load_n(&d->stop, __ATOMIC_RELAXED);
}

/* Chunks of N's fullest blocks (as they were when the first chunk was
 * taken) until the cache is at half its budget or they are done with:
 * one pass per node, so that a file written all the while does not keep
 * the drainer from the others. */
static void drain_node(struct vol *v, struct wdrainer *d, struct node *n)
{
    struct flush_cursor c = { .mode = FLUSH_TO_HALF, .upto = UINT64_MAX };
    do {
        if (flush_chunk_outside(v, n, &c))
            break; /* kept cached: its fsync or close will tell */
    } while (c.next < c.count && above(v, WCACHE_BUDGET / 2) &&
             !drainer_stopping(d));
    free(c.blocknos);
}

/* One pass over the files with cached blocks; false when it stored
 * nothing (every block busy, or failing): wait for the next wake. */
static bool drain_pass(struct vol *v, struct wdrainer *d)
{
    uint64_t before = __atomic_load_n(&v->wcache_bytes, __ATOMIC_RELAXED);
    struct node **list;
    size_t count;
    uint64_t upto;
    dirty_nodes(v, &upto, &list, &count);
    for (size_t i = 0; i < count; i++) {
        struct node *n = list[i];
        if (above(v, WCACHE_BUDGET / 2) && !drainer_stopping(d))
            drain_node(v, d, n);
        uint64_t ino = n->ino; /* N may be freed by the unpin */
        if (node_unpin(v, n))
            fs_destroy_orphan(v, ino);
    }
    free(list);
    return __atomic_load_n(&v->wcache_bytes, __ATOMIC_RELAXED) < before;
}

static void *drainer_main(void *arg)
{
    struct vol *v = arg;
    struct wdrainer *d = v->drainer;
    pthread_mutex_lock(&d->lock);
    for (;;) {
        while (!d->wanted && !d->stop)
            pthread_cond_wait(&d->wake, &d->lock);
        if (d->stop)
            break;
        /* cleared before the passes: a wake meanwhile means another */
        __atomic_store_n(&d->wanted, false, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&d->lock);
        while (above(v, WCACHE_BUDGET / 2) && !drainer_stopping(d) &&
               drain_pass(v, d))
            ;
        pthread_mutex_lock(&d->lock);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

int wcache_start(struct vol *v)
{
    struct wdrainer *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, NULL);
    v->drainer = d;
    int rc = pthread_create(&d->thread, NULL, drainer_main, v);
    if (rc) {
        v->drainer = NULL;
        pthread_cond_destroy(&d->wake);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return -rc;
    }
    return 0;
}

void wcache_stop(struct vol *v)
{
    struct wdrainer *d = v->drainer;
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    __atomic_store_n(&d->stop, true, __ATOMIC_RELAXED);
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    v->drainer = NULL;
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* No room for MORE bytes in the cache?  A write into a cached block B
 * (its pieces grow by at most the block's size) may go a quarter past the
 * budget: flushing for it, or writing it through, would cost a
 * read-modify-write that the block's next flush makes anyway. */
static bool no_room(struct vol *v, const struct wblock *b, uint64_t more)
{
    uint64_t limit = WCACHE_BUDGET + (b ? WCACHE_BUDGET / 4 : 0);
    return __atomic_load_n(&v->wcache_bytes, __ATOMIC_RELAXED) + more > limit;
}

int wcache_write(struct vol *v, struct node *n, const char *buf, size_t size,
                 uint64_t off, bool background, bool *cached)
{
    uint32_t bs = v->st->super.block_size;
    uint64_t blockno = off / bs;
    uint32_t from = (uint32_t)(off - blockno * bs);
    *cached = false;
    struct wblock *b = find_block(n, blockno);
    uint64_t more = PIECE_COST(size) + (b ? 0 : BLOCK_COST);
    if (no_room(v, b, more)) {
        /* A client's write, with the drainer at work, goes through (one
         * read-modify-write: a bounded stall) while the drainer makes
         * room.  The kernel's writeback (BACKGROUND), whose latency no
         * client waits for, stores its file's fullest blocks down to half
         * the budget: the writes that fill the cache pay for emptying
         * it, not the client who came upon it full. */
        int rc = v->drainer && !background
                     ? 0 : flush_blocks(v, n, FLUSH_TO_HALF, UINT64_MAX,
                                        SIZE_MAX, NULL);
        if (rc)
            return rc;
        b = find_block(n, blockno);
        more = PIECE_COST(size) + (b ? 0 : BLOCK_COST);
        if (no_room(v, b, more)) {
            metrics_add(MC_WCACHE_BYPASSES, 1);
            /* the caller writes through: the block's cached copy, stored
             * later, would undo the write, so it goes first */
            return b ? wcache_flush_block(v, n, blockno) : 0;
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
    if (above(v, DRAIN_START))
        drainer_wake(v);
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

/* The committer's flush of N: chunks, each under a lock it tries for,
 * until MODE is satisfied, the lock is busy or the batch is full. */
static int flush_node_committer(struct vol *v, struct node *n)
{
    int first_error = 0;
    bool more = true;
    while (more && !batch_full(v) && !pthread_mutex_trylock(&n->wlock)) {
        int rc = flush_blocks(v, n, committer_mode(v), UINT64_MAX,
                              WCACHE_CHUNK, &more);
        if (rc && !first_error)
            first_error = rc;
        pthread_mutex_unlock(&n->wlock);
        if (rc)
            break;
        if (more)
            let_waiters_in(n);
    }
    return first_error;
}

/* Store every block N had cached before serial UPTO, a chunk per hold
 * of its lock, outside it.  A block written while its chunk was out is
 * left cached; a second pass takes those, and so that this ends whatever
 * the writers do, what the second leaves is stored in one hold. */
static int flush_node_all(struct vol *v, struct node *n, uint64_t upto)
{
    int rc = 0;
    bool left = true;
    for (int pass = 0; pass < 2 && left && !rc; pass++) {
        struct flush_cursor c = { .mode = FLUSH_ALL, .upto = upto,
                                  .quiet = true };
        do
            rc = flush_chunk_outside(v, n, &c);
        while (!rc && c.next < c.count);
        free(c.blocknos);
        left = c.left;
    }
    if (left && !rc) {
        node_lock_quiet(n);
        rc = flush_blocks(v, n, FLUSH_ALL, upto, SIZE_MAX, NULL);
        pthread_mutex_unlock(&n->wlock);
    }
    return rc;
}

int wcache_flush_all(struct vol *v, bool wait)
{
    if (!__atomic_load_n(&v->wcache_bytes, __ATOMIC_RELAXED))
        return 0;
    struct node **list;
    size_t count;
    uint64_t upto;
    int first_error = dirty_nodes(v, &upto, &list, &count) ? 0 : -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        struct node *n = list[i];
        int rc = wait ? flush_node_all(v, n, upto)
                      : flush_node_committer(v, n);
        if (rc && !first_error)
            first_error = rc;
        uint64_t ino = n->ino; /* N may be freed by the unpin */
        if (node_unpin(v, n))
            fs_destroy_orphan(v, ino);
    }
    free(list);
    return first_error;
}
