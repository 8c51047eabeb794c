/*
 * recv_ahead.c - the offline receive's input, read ahead: a reader thread
 * fills a ring buffer from the stream's file descriptor, and helper
 * threads walk the frames read ahead, reading into the destination's page
 * cache what applying each will look up (sfs_recv_touch), so that the
 * receiver, which applies the frames one by one, rarely waits for a disk
 * read.  Each lookup is a page fault at a place no readahead can guess
 * (the live version of a key, its place in the history table, a block's
 * dedup record); one thread keeps one read in flight, the helpers keep
 * several.
 *
 * It starts once a stream turns out to be incremental (a full stream
 * finds nothing to look up in an empty destination), seeded with what the
 * plain reader had buffered, and then serves the rest of the input.  The
 * receiver takes bytes without the lock while they are there; it
 * publishes how far it got every PUBLISH_BYTES, and waits only when the
 * reader is behind it.
 *
 * Guarantees:
 *   - recv_ahead_read is an sfs_stream_read_fn with fd_reader_read's
 *     semantics exactly: LEN bytes, -ENODATA at the end of input before
 *     the first byte, -EPIPE after some, or the read's errno;
 *   - memory is bounded: the ring holds at most AHEAD_BYTES not yet
 *     consumed by the receiver or passed by every helper;
 *   - helpers only read, in read-only transactions of their own (renewed
 *     every TXN_FRAMES frames, so that they do not keep the pages the
 *     receiver's commits free from being reused), and skip the frames the
 *     receiver has already read; a frame they cannot parse ends them;
 *   - recv_ahead_stop ends the helpers before it returns (the store may
 *     be closed after it); the reader thread ends at the end of input, or
 *     with the process if it is blocked in read(2) then.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recv_ahead.h"

#define AHEAD_BYTES (64u << 20)
#define READ_CHUNK (1u << 20)
#define PUBLISH_BYTES (256u << 10)
#define HELPERS 4
#define TXN_FRAMES 256

struct recv_ahead {
    int fd;
    struct sfs_store *st;
    pthread_mutex_t lock;
    pthread_cond_t data;         /* tail or err moved: readers wait */
    pthread_cond_t space;        /* room was made: the reader waits */
    bool reader_waiting;
    uint8_t *ring;               /* AHEAD_BYTES */
    uint64_t tail;               /* atomic: bytes in (read from fd) */
    uint64_t head;               /* the receiver's own position */
    uint64_t head_seen;          /* atomic: its position, as published */
    uint64_t scan[HELPERS];      /* where each helper is */
    int err;                     /* at tail: 0, -ENODATA (end), -errno */
    bool stop;
    bool reader_done;
    pthread_t reader, helpers[HELPERS];
    int nhelpers;
};

struct helper_arg {
    struct recv_ahead *a;
    int index;
};

static uint64_t load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* The bytes no one needs any more are those before this. */
static uint64_t low_water(const struct recv_ahead *a)
{
    uint64_t low = load(&a->head_seen);
    for (int i = 0; i < a->nhelpers; i++)
        if (a->scan[i] < low)
            low = a->scan[i];
    return low;
}

/* Room was made (under the lock): wake the reader if it waits for it. */
static void made_room(struct recv_ahead *a)
{
    if (a->reader_waiting)
        pthread_cond_signal(&a->space);
}

/* Copy N bytes at absolute position AT out of the ring. */
static void ring_copy(const struct recv_ahead *a, uint64_t at, void *out,
                      size_t n)
{
    size_t off = (size_t)(at % AHEAD_BYTES);
    size_t first = n < AHEAD_BYTES - off ? n : AHEAD_BYTES - off;
    memcpy(out, a->ring + off, first);
    memcpy((uint8_t *)out + first, a->ring, n - first);
}

static void ring_put(struct recv_ahead *a, uint64_t at, const void *in,
                     size_t n)
{
    size_t off = (size_t)(at % AHEAD_BYTES);
    size_t first = n < AHEAD_BYTES - off ? n : AHEAD_BYTES - off;
    memcpy(a->ring + off, in, first);
    memcpy(a->ring, (const uint8_t *)in + first, n - first);
}

static void *reader_main(void *arg)
{
    struct recv_ahead *a = arg;
    pthread_mutex_lock(&a->lock);
    while (!a->stop && !a->err) {
        uint64_t tail = load(&a->tail);
        uint64_t room = AHEAD_BYTES - (tail - low_water(a));
        if (!room) {
            a->reader_waiting = true;
            pthread_cond_wait(&a->space, &a->lock);
            a->reader_waiting = false;
            continue;
        }
        size_t off = (size_t)(tail % AHEAD_BYTES);
        size_t want = AHEAD_BYTES - off;
        if (want > room)
            want = (size_t)room;
        if (want > READ_CHUNK)
            want = READ_CHUNK;
        pthread_mutex_unlock(&a->lock);
        ssize_t n = read(a->fd, a->ring + off, want); /* only we write there */
        int e = errno;
        pthread_mutex_lock(&a->lock);
        if (n < 0 && e == EINTR)
            continue;
        if (n > 0)
            store(&a->tail, tail + (uint64_t)n);
        else
            a->err = n == 0 ? -ENODATA : -e;
        pthread_cond_broadcast(&a->data);
    }
    a->reader_done = true;
    pthread_cond_broadcast(&a->data);
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* The receiver's position, published (under the lock). */
static void publish_head(struct recv_ahead *a)
{
    store(&a->head_seen, a->head);
    made_room(a);
}

int recv_ahead_read(void *arg, void *buf, size_t len)
{
    struct recv_ahead *a = arg;
    if (a->head + len <= load(&a->tail)) { /* there: no lock */
        ring_copy(a, a->head, buf, len);
        a->head += len;
        if (a->head - load(&a->head_seen) >= PUBLISH_BYTES) {
            pthread_mutex_lock(&a->lock);
            publish_head(a);
            pthread_mutex_unlock(&a->lock);
        }
        return 0;
    }
    pthread_mutex_lock(&a->lock);
    publish_head(a);
    while (load(&a->tail) - a->head < len && !a->err)
        pthread_cond_wait(&a->data, &a->lock);
    size_t have = (size_t)(load(&a->tail) - a->head);
    int rc = 0;
    if (have < len) /* the input ended or failed first */
        rc = a->err != -ENODATA ? a->err : have ? -EPIPE : -ENODATA;
    size_t take = have < len ? have : len;
    ring_copy(a, a->head, buf, take);
    a->head += take;
    publish_head(a);
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* Wait until N bytes at AT are in the ring: false if they never will be
 * or the helper should end. */
static bool wait_bytes(struct recv_ahead *a, uint64_t at, size_t n)
{
    while (!a->stop && load(&a->tail) < at + n && !a->err)
        pthread_cond_wait(&a->data, &a->lock);
    return !a->stop && load(&a->tail) >= at + n;
}

/* Renew TXN now and then, so that it does not keep the pages the
 * receiver's commits free from being reused; NULL if that fails. */
static MDB_txn *renew(MDB_txn *txn)
{
    mdb_txn_reset(txn);
    if (!mdb_txn_renew(txn))
        return txn;
    mdb_txn_abort(txn);
    return NULL;
}

static void *helper_main(void *arg)
{
    struct helper_arg *h = arg;
    struct recv_ahead *a = h->a;
    MDB_txn *txn = NULL;
    if (mdb_txn_begin(a->st->env, NULL, MDB_RDONLY, &txn))
        txn = NULL;
    uint8_t frame[SFS_RECV_TOUCH_BYTES];
    uint64_t at = 0, frames = 0, touched = 0;
    pthread_mutex_lock(&a->lock);
    while (txn && wait_bytes(a, at, 8)) {
        uint8_t hdr[8];
        ring_copy(a, at, hdr, 8);
        size_t size = sfs_stream_frame_size(hdr);
        size_t n = size < sizeof(frame) ? size : sizeof(frame);
        if (!size || !wait_bytes(a, at, n))
            break;
        bool mine = frames++ % HELPERS == (uint64_t)h->index;
        if (mine && at >= load(&a->head_seen)) { /* not read yet */
            ring_copy(a, at, frame, n);
            pthread_mutex_unlock(&a->lock);
            sfs_recv_touch(a->st, txn, frame, n);
            if (++touched % TXN_FRAMES == 0)
                txn = renew(txn);
            pthread_mutex_lock(&a->lock);
        }
        at += size;
        a->scan[h->index] = at;
        made_room(a);
    }
    a->scan[h->index] = UINT64_MAX; /* ended: holds nothing back */
    made_room(a);
    pthread_mutex_unlock(&a->lock);
    if (txn)
        mdb_txn_abort(txn);
    free(h);
    return NULL;
}

int recv_ahead_start(int fd, struct sfs_store *st, const void *seed,
                     size_t seed_len, struct recv_ahead **out)
{
    struct recv_ahead *a = calloc(1, sizeof(*a));
    if (!a || seed_len > AHEAD_BYTES || !(a->ring = malloc(AHEAD_BYTES))) {
        free(a);
        return -ENOMEM;
    }
    a->fd = fd;
    a->st = st;
    ring_put(a, 0, seed, seed_len);
    a->tail = seed_len;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->data, NULL);
    pthread_cond_init(&a->space, NULL);
    int rc = -pthread_create(&a->reader, NULL, reader_main, a);
    if (rc) {
        free(a->ring);
        free(a);
        return rc;
    }
    pthread_mutex_lock(&a->lock);
    for (int i = 0; i < HELPERS; i++) {
        struct helper_arg *h = malloc(sizeof(*h));
        if (!h)
            break;
        *h = (struct helper_arg){ a, i };
        if (pthread_create(&a->helpers[a->nhelpers], NULL, helper_main, h)) {
            free(h);
            break;
        }
        a->nhelpers++;
    }
    pthread_mutex_unlock(&a->lock);
    *out = a;
    return 0;
}

void recv_ahead_stop(struct recv_ahead *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stop = true;
    pthread_cond_broadcast(&a->data);
    pthread_cond_broadcast(&a->space);
    bool reader_done = a->reader_done;
    pthread_mutex_unlock(&a->lock);
    for (int i = 0; i < a->nhelpers; i++)
        pthread_join(a->helpers[i], NULL);
    if (!reader_done) {
        /* blocked in read(2), or about to see the stop: it ends by itself
         * or with the process, and must find its memory there */
        pthread_detach(a->reader);
        return;
    }
    pthread_join(a->reader, NULL);
    pthread_cond_destroy(&a->data);
    pthread_cond_destroy(&a->space);
    pthread_mutex_destroy(&a->lock);
    free(a->ring);
    free(a);
}
