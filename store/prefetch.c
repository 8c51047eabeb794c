/*
 * prefetch.c - read ahead for an incremental stream's sender: helper
 * threads that make the sender's lookups before it does, so that several
 * disk reads are in flight at once.
 *
 * Why.  An incremental stream is cheap in records (the birth index and
 * the deadlist name exactly what changed, stream.c) but, cold, each
 * record it sends costs page faults at places no readahead can guess: its
 * version in the live table, its older version in the history table, and
 * for an extent its block's dedup record and blob.  A fault waits for one
 * read; one thread keeps one read in flight, and a disk that could serve
 * many at once idles.  The kernel's own readahead is turned off for these
 * streams (sfs_advise_access): around a random page it reads megabytes
 * nobody asked for.
 *
 * How.  PREFETCH_THREADS helpers walk the same index rows as the sender,
 * from the same position, each taking every PREFETCH_THREADS-th chunk of
 * PREFETCH_CHUNK rows, and for each row make the sender's lookups in a
 * read transaction of their own, touching every page of a blob.  The
 * pages land in the page cache, where the sender finds them.  A helper
 * stays at most PREFETCH_AHEAD rows ahead of the sender (the sender
 * reports its progress, sfs_prefetch_progress), so that what it reads is
 * still cached when the sender gets there, and stops when the sender ends
 * or when its walk reaches the stream's last row.
 *
 * Guarantees: helpers only read, in their own read-only transactions, of
 * records that the stream's snapshots hold (the caller holds both
 * snapshots), renewed every PREFETCH_RENEW_ROWS rows so that they do not
 * keep the pages a mounted source's commits free from being reused;
 * whatever a helper meets (an error, a damaged row) just
 * stops it: prefetching is advice, the sender checks everything itself.
 * sfs_prefetch_stop returns once every helper has ended.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define PREFETCH_THREADS 4
#define PREFETCH_CHUNK 16
#define PREFETCH_AHEAD 4096
#define PREFETCH_RENEW_ROWS 1024

struct sfs_prefetch {
    struct sfs_store *st;
    uint64_t from_epoch, to_epoch;
    unsigned phase;                 /* where the sender starts */
    uint8_t key[SFS_KEY_MAX + 16];
    size_t klen;
    uint64_t sender_rows;           /* atomic: rows the sender is past */
    bool stop;                      /* atomic */
    pthread_mutex_t lock;           /* for waiting helpers: */
    pthread_cond_t moved;           /* the sender moved, or stops */
    int waiting;                    /* helpers waiting (under lock) */
    pthread_t threads[PREFETCH_THREADS];
    int nthreads;
};

struct helper {
    struct sfs_prefetch *p;
    int index;
};

static bool stopped(struct sfs_prefetch *p)
{
    return __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE);
}

static bool near_sender(struct sfs_prefetch *p, uint64_t row)
{
    return row < __atomic_load_n(&p->sender_rows, __ATOMIC_ACQUIRE) +
                     PREFETCH_AHEAD;
}

/* Wait until ROW is at most PREFETCH_AHEAD rows ahead of the sender;
 * false if the sender ended meanwhile.  The sender wakes waiting helpers
 * every PREFETCH_CHUNK rows (sfs_prefetch_progress). */
static bool wait_for_sender(struct sfs_prefetch *p, uint64_t row)
{
    if (near_sender(p, row))
        return !stopped(p);
    pthread_mutex_lock(&p->lock);
    p->waiting++;
    while (!stopped(p) && !near_sender(p, row))
        pthread_cond_wait(&p->moved, &p->lock);
    p->waiting--;
    pthread_mutex_unlock(&p->lock);
    return !stopped(p);
}

/* The sender's lookups for one index row (stream.c, incr_key). */
static void touch_row(struct sfs_prefetch *p, MDB_txn *txn, bool deadlist,
                      const uint8_t *key, size_t klen)
{
    MDB_val v;
    uint64_t birth;
    if (sfs_vrec_get(p->st, txn, p->to_epoch, key, klen, &v, &birth) ||
        deadlist)
        return;
    MDB_val k = { klen, (void *)key };
    uint8_t hash[SFS_HASH_LEN];
    if (sfs_rec_blockref(&k, &v, hash))
        sfs_block_touch(p->st, txn, hash, true);
    sfs_vrec_get(p->st, txn, p->from_epoch, key, klen, &v, &birth);
}

/* Renew TXN and put *C back on the row K names (index rows between two
 * held snapshots do not change).  False if that fails. */
static bool renew_at(struct sfs_prefetch *p, MDB_txn *txn, bool deadlist,
                     MDB_cursor **c, MDB_val *k, MDB_val *v)
{
    uint8_t at[SFS_KEY_MAX + 16];
    size_t len = k->mv_size;
    memcpy(at, k->mv_data, len);
    mdb_cursor_close(*c);
    *c = NULL;
    mdb_txn_reset(txn);
    if (mdb_txn_renew(txn) ||
        mdb_cursor_open(txn, deadlist ? p->st->db_dead : p->st->db_born, c)) {
        *c = NULL;
        return false;
    }
    k->mv_size = len;
    k->mv_data = at;
    return mdb_cursor_get(*c, k, v, MDB_SET_RANGE) == 0;
}

/* Walk one phase's rows from START (KLEN 0: the first row after the base)
 * on; *ROW counts rows across phases.  False once the helper should end. */
static bool walk_phase(struct helper *h, MDB_txn *txn, bool deadlist,
                       const uint8_t *start, size_t slen, uint64_t *row)
{
    struct sfs_prefetch *p = h->p;
    size_t hdr = deadlist ? 16 : 8;
    uint8_t first[16] = { 0 };
    sfs_put_be64(first, p->from_epoch + 1);
    MDB_cursor *c;
    if (mdb_cursor_open(txn, deadlist ? p->st->db_dead : p->st->db_born, &c))
        return false;
    MDB_val k = { slen ? slen : hdr, slen ? (void *)start : first }, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    bool go_on = true;
    for (; !mrc; mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT), (*row)++) {
        if (*row && *row % PREFETCH_RENEW_ROWS == 0 &&
            !renew_at(p, txn, deadlist, &c, &k, &v)) {
            go_on = false;
            break;
        }
        const uint8_t *r = k.mv_data;
        if (k.mv_size <= hdr || k.mv_size - hdr > SFS_KEY_MAX ||
            sfs_get_be64(r) > p->to_epoch)
            break;
        if ((*row / PREFETCH_CHUNK) % PREFETCH_THREADS != (uint64_t)h->index)
            continue;
        if (!wait_for_sender(p, *row)) {
            go_on = false;
            break;
        }
        if (!deadlist || sfs_get_be64(r + 8) <= p->from_epoch)
            touch_row(p, txn, deadlist, r + hdr, k.mv_size - hdr);
    }
    if (c)
        mdb_cursor_close(c);
    return go_on;
}

static void *helper_main(void *arg)
{
    struct helper *h = arg;
    struct sfs_prefetch *p = h->p;
    MDB_txn *txn;
    if (!mdb_txn_begin(p->st->env, NULL, MDB_RDONLY, &txn)) {
        uint64_t row = 0;
        bool go_on = true;
        for (unsigned phase = p->phase; go_on && phase < 2; phase++) {
            bool at_start = phase == p->phase;
            go_on = walk_phase(h, txn, phase == 0,
                               at_start ? p->key : NULL,
                               at_start ? p->klen : 0, &row);
        }
        mdb_txn_abort(txn);
    }
    free(h);
    return NULL;
}

int sfs_prefetch_start(struct sfs_store *st, uint64_t from_epoch,
                       uint64_t to_epoch, unsigned phase, const void *key,
                       size_t klen, struct sfs_prefetch **out)
{
    if (phase > 1 || klen > sizeof(((struct sfs_prefetch *)0)->key))
        return -EINVAL;
    struct sfs_prefetch *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->st = st;
    p->from_epoch = from_epoch;
    p->to_epoch = to_epoch;
    p->phase = phase;
    memcpy(p->key, key, klen);
    p->klen = klen;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->moved, NULL);
    for (int i = 0; i < PREFETCH_THREADS; i++) {
        struct helper *h = malloc(sizeof(*h));
        if (!h)
            break;
        *h = (struct helper){ p, i };
        if (pthread_create(&p->threads[p->nthreads], NULL, helper_main, h)) {
            free(h);
            break;
        }
        p->nthreads++;
    }
    *out = p;
    return 0;
}

void sfs_prefetch_progress(struct sfs_prefetch *p, uint64_t rows)
{
    if (!p)
        return;
    __atomic_store_n(&p->sender_rows, rows, __ATOMIC_RELEASE);
    if (rows % PREFETCH_CHUNK)
        return;
    pthread_mutex_lock(&p->lock);
    if (p->waiting)
        pthread_cond_broadcast(&p->moved);
    pthread_mutex_unlock(&p->lock);
}

void sfs_prefetch_stop(struct sfs_prefetch *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    __atomic_store_n(&p->stop, true, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->moved);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->moved);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
