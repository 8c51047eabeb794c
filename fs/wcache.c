/*
 * wcache.c - the cache of dirty partial blocks.
 *
 * THEORY
 *
 * Blocks are stored whole (64 KiB by default) and addressed by their hash,
 * so a 4 KiB write into a stored block must read, verify, merge, rehash and
 * store the whole block.  Done per write, small random writes cost a full
 * block each.  This cache keeps the merged content of partially written
 * blocks in memory, per inode, so that every further write to the same
 * block is a memcpy; the block is hashed and stored once when it is
 * flushed.
 *
 * What goes through it: only the partial blocks of a write.  Whole blocks
 * go straight to the store (the sequential path is unchanged), and a whole
 * block written over a cached one discards the cached copy.
 *
 * Invariants, each kept by the node's write lock (node->wlock):
 *   - a cached block holds the complete current content of its block:
 *     the stored content as of its creation, with every later write to it
 *     merged in, zeros beyond `len`;
 *   - the stored extent of a cached block has no content past `len`
 *     (truncation and hole punching flush first), so flushing `len` bytes,
 *     or the whole block, stores exactly the current content;
 *   - the inode record's size (and times, where the daemon keeps them:
 *     ops.c, kernel_times) is updated at write time, so getattr and the
 *     read path's size are right; only the extent lags, and storing it
 *     later changes no time.
 *
 * Reads overlay cached blocks on what the store returns, under the write
 * lock of the node.  A node with cached blocks is pinned (it cannot leave
 * the node table).
 *
 * When blocks are flushed:
 *   - by the committer before each commit (so every batch carries what
 *     was written before it), with trylock: a writer can hold its inode's
 *     lock while it waits for the committer (backpressure), so the
 *     committer must never wait for an inode lock; a busy node is flushed
 *     at the next commit;
 *   - by fsync of the inode, and by fsyncdir/syncfs and unmount for all,
 *     from request threads that hold no other lock, waiting for locks;
 *   - by truncate, hole punching and O_TRUNC of the inode (flush or drop
 *     first, then the operation);
 *   - by close (FUSE flush), so that an error storing them reaches
 *     close() as on a local filesystem;
 *   - when the cache is over its budget (WCACHE_BUDGET), by the writer,
 *     for its own inode; if that does not make room the write goes
 *     straight to the store.
 * Space: a cached block is acknowledged data, so storing it must never
 * meet a full volume.  Its space is reserved when it enters the cache
 * (sfs_space_reserve, sfs_block_cost bytes, what a whole block may
 * cost), it is stored with the right to use the reservations
 * (fs_store_cached), and the reservation goes back when it is stored or
 * dropped.  A write that finds no room to reserve goes straight to the
 * store instead, where its block costs what it really takes (a short or
 * compressible one far less) or fails with ENOSPC at write time.  So a flush never fails for
 * space, and neither does anything that flushes first: snapshots and
 * every other control change, truncation, fsync, close, unmount (see
 * store.c, THEORY: THE RESERVE).  A block that cannot be stored for
 * another reason (an I/O error) stays cached and the error goes to
 * whoever flushed (fsync, close).  A block its qtree has no room for
 * (EDQUOT) is dropped, as the kernel drops pages whose writeback failed,
 * and the error waits on the node for the file's next close or fsync: kept
 * cached, it would fail every snapshot and the very quota change that
 * makes room, since control changes store every cached block first.  The
 * blocks of an inode whose last link is
 * gone and that no open file uses are dropped instead of stored, at the
 * latest when the kernel forgets the inode (then the inode is destroyed,
 * as one without cached blocks is).
 * Memory: at most WCACHE_BUDGET of block contents.
 */
#define _GNU_SOURCE
#include "wcache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

struct wblock {
    uint64_t blockno;
    uint32_t len;      /* bytes of content from the block start */
    uint8_t *data;     /* block_size bytes */
    uint64_t reserved; /* bytes of space reserved for it (see THEORY) */
    struct wblock *next;
};

static struct wblock *find_block(struct node *n, uint64_t blockno)
{
    for (struct wblock *b = n->dirty; b; b = b->next)
        if (b->blockno == blockno)
            return b;
    return NULL;
}

static void charge(struct vol *v, int64_t bytes)
{
    __atomic_add_fetch(&v->wcache_bytes, (uint64_t)bytes, __ATOMIC_RELAXED);
}

static bool over_budget(struct vol *v, uint32_t bs)
{
    return __atomic_load_n(&v->wcache_bytes, __ATOMIC_RELAXED) + bs >
           WCACHE_BUDGET;
}

static void free_block(struct vol *v, struct node *n, struct wblock *b,
                       uint32_t bs)
{
    if (b->reserved)
        sfs_space_unreserve(v->st, b->reserved);
    free(b->data);
    free(b);
    charge(v, -(int64_t)bs);
    __atomic_sub_fetch(&n->ncached, 1, __ATOMIC_RELEASE);
}

/* Unlink and free every block of N in [first, last); unpin N if none are
 * left.  Returns true when the caller must destroy the (orphan) inode. */
static bool drop_range(struct vol *v, struct node *n, uint64_t first,
                       uint64_t last)
{
    uint32_t bs = v->st->super.block_size;
    struct wblock **pp = &n->dirty;
    bool had = n->dirty != NULL;
    while (*pp) {
        struct wblock *b = *pp;
        if (b->blockno >= first && b->blockno < last) {
            *pp = b->next;
            free_block(v, n, b, bs);
        } else {
            pp = &b->next;
        }
    }
    return had && !n->dirty && node_unpin(v, n);
}

bool wcache_drop(struct vol *v, struct node *n, uint64_t first, uint64_t last)
{
    return drop_range(v, n, first, last);
}

/* A new cached block holding the stored content of BLOCKNO. */
static int load_block(struct vol *v, struct node *n, uint64_t blockno,
                      struct wblock **out)
{
    uint32_t bs = v->st->super.block_size;
    struct wblock *b = calloc(1, sizeof(*b));
    uint8_t *data = b ? malloc(bs) : NULL;
    if (!data) {
        free(b);
        return -ENOMEM;
    }
    struct sfs_inode i;
    struct sfs_rplan plan;
    uint64_t cost = sfs_block_cost(v->st);
    MDB_txn *txn = vol_read_begin(v);
    int rc = sfs_space_reserve(v->st, txn, cost);
    if (!rc) {
        b->reserved = cost;
        rc = sfs_inode_get(v->st, txn, SFS_VIEW_LIVE, n->ino, &i);
    }
    if (!rc)
        rc = sfs_rplan_collect(v->st, txn, SFS_VIEW_LIVE, n->ino, i.size,
                               blockno * bs, bs, &plan);
    vol_read_end_bytes(v, rc ? 0 : plan.len);
    if (!rc) {
        rc = sfs_rplan_finish(&plan, fs_codec(), data);
        memset(data + plan.len, 0, bs - plan.len);
        b->len = (uint32_t)plan.len;
        sfs_rplan_release(&plan);
    }
    if (rc) {
        if (b->reserved)
            sfs_space_unreserve(v->st, b->reserved);
        free(data);
        free(b);
        return rc;
    }
    b->blockno = blockno;
    b->data = data;
    if (!n->dirty) {
        pthread_mutex_lock(&v->nodes_lock);
        n->pins++;
        pthread_mutex_unlock(&v->nodes_lock);
    }
    b->next = n->dirty;
    n->dirty = b;
    __atomic_add_fetch(&n->ncached, 1, __ATOMIC_RELEASE);
    charge(v, bs);
    *out = b;
    return 0;
}

int wcache_flush(struct vol *v, struct node *n)
{
    uint32_t bs = v->st->super.block_size;
    while (n->dirty) {
        struct wblock *b = n->dirty;
        struct sfs_inode i;
        MDB_txn *txn = vol_read_begin(v);
        int rc = sfs_inode_get(v->st, txn, SFS_VIEW_LIVE, n->ino, &i);
        vol_read_end(v);
        uint64_t bstart = b->blockno * bs;
        /* An orphan no open file uses has no reader left: its data is
         * dropped (storing it could fail on a full volume and keep the
         * orphan alive).  An unlinked file still open keeps its data. */
        bool unread = !rc && i.nlink == 0 && node_is_unreferenced_orphan(v, n);
        bool stored = false;
        if (!rc && !unread && bstart < i.size) {
            /* The whole block as the file has it: no old bytes to merge. */
            uint64_t len = i.size - bstart < bs ? i.size - bstart : bs;
            if (len < b->len)
                len = b->len;
            rc = fs_store_cached(v, n->ino, (const char *)b->data,
                                 (size_t)len, bstart, b->reserved);
            if (!rc) {
                b->reserved = 0; /* spent */
                stored = true;
            }
        } else if (rc == -ENOENT) {
            rc = 0; /* the inode is gone: nothing to keep */
        }
        if (rc == -EDQUOT) {
            n->quota_error = rc; /* lost: see the theory above */
            rc = 0;
        }
        if (rc)
            return rc;
        if (stored)
            metrics_add(MC_WCACHE_STORED, 1);
        n->dirty = b->next;
        free_block(v, n, b, bs);
        uint64_t ino = n->ino; /* N may be freed by the unpin */
        if (!n->dirty && node_unpin(v, n)) {
            fs_destroy_orphan(v, ino);
            return 0;
        }
    }
    return 0;
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
    if (b) {
        metrics_add(MC_WCACHE_HITS, 1);
    } else {
        if (over_budget(v, bs)) {
            int rc = wcache_flush(v, n);
            if (rc)
                return rc;
            if (over_budget(v, bs)) {
                metrics_add(MC_WCACHE_BYPASSES, 1);
                return 0; /* no room: the caller writes through */
            }
        }
        int rc = load_block(v, n, blockno, &b);
        if (rc == -ENOSPC) {
            metrics_add(MC_WCACHE_BYPASSES, 1);
            return 0; /* no room to reserve: the caller writes through */
        }
        if (rc)
            return rc;
        metrics_add(MC_WCACHE_MISSES, 1);
    }
    memcpy(b->data + from, buf, size);
    if (from + size > b->len)
        b->len = (uint32_t)(from + size);
    *cached = true;
    return 0;
}

void wcache_overlay(struct vol *v, struct node *n, uint64_t off, size_t len,
                    char *out)
{
    uint32_t bs = v->st->super.block_size;
    for (struct wblock *b = n->dirty; b; b = b->next) {
        uint64_t bstart = b->blockno * bs, bend = bstart + bs;
        uint64_t lo = off > bstart ? off : bstart;
        uint64_t hi = off + len < bend ? off + len : bend;
        if (lo < hi)
            memcpy(out + (lo - off), b->data + (lo - bstart), (size_t)(hi - lo));
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
    for (size_t i = 0; list && i < v->nbuckets; i++)
        for (struct node *nd = v->buckets[i]; nd; nd = nd->next) {
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
            pthread_mutex_lock(&n->wlock);
        else if (pthread_mutex_trylock(&n->wlock))
            goto unpin;
        int rc = wcache_flush(v, n);
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
