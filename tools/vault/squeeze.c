/*
 * squeeze.c - a backup's blocks put into the vault's form (pack.c's
 * vault_codec_pack) and sealed as blobs on worker threads, and handed
 * back in the order they were queued.
 *
 * THEORY.  Compressing blocks again at the vault's level is most of a
 * backup's CPU (zstd level 6 runs several times slower than the level 1
 * the volume used), and it is the one part that needs nothing shared:
 * reading the volume (one LMDB read transaction, the sender's thread),
 * the index, the packers and the uploads stay on the caller's thread.  So
 * the caller fetches a block and queues it here; workers, each with its
 * own zstd contexts, take queued blocks in order, pack them and seal
 * each as a blob (AES-256-GCM: a blob's sealing does not depend on its
 * place in its pack, so it needs nothing of the caller's either); the
 * caller gets them back strictly in queue order (a ring of slots: the
 * oldest is handed back when the ring is full, or at drain), so packs
 * hold blocks in the order the sender named them - the order a restore
 * reads them in - whatever the timing.  The ring is deep enough (128
 * blocks, 8 MiB) that workers keep compressing while the caller waits
 * for a pack to be written: 22% faster than 32 on the benchmark's
 * volume.  The caller is left the copy of each sealed blob into its pack
 * and the pack's own work (its name's SHA-256, its upload).  Memory: the
 * ring's blocks and their sealed forms, about 2 x SQUEEZE_DEPTH x 64 KiB
 * = 16 MiB, and a compressed form per worker.  An error of a worker (a
 * damaged block) comes back with that block, in order, and the caller
 * stops there.
 *
 * Guarantees: every queued block is handed to DONE exactly once (by add
 * or drain) unless the caller frees the queue first; DONE runs on the
 * caller's thread only; free joins the workers and releases every block
 * still held.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repo.h"

#define SQUEEZE_DEPTH 128
#define SQUEEZE_THREADS_MAX 4

enum slot_state { SLOT_FREE, SLOT_QUEUED, SLOT_WORKING, SLOT_DONE };

struct slot {
    enum slot_state state;
    uint8_t id[VC_ID];
    struct sfs_raw_block raw;
    struct vw sealed;        /* the blob, sealed */
    int rc;
};

struct vault_squeeze {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    struct slot slots[SQUEEZE_DEPTH];
    unsigned head, tail, next; /* oldest, next free, next to work on */
    unsigned queued;           /* slots in use */
    bool stop;
    pthread_t threads[SQUEEZE_THREADS_MAX];
    struct vault_codec *codecs[SQUEEZE_THREADS_MAX];
    unsigned nthreads;
    const struct vault_keys *keys;
};

struct worker_arg {
    struct vault_squeeze *q;
    unsigned no;
};

/* Take the next queued slot (NULL: stop). */
static struct slot *take(struct vault_squeeze *q)
{
    pthread_mutex_lock(&q->mu);
    while (!q->stop && q->slots[q->next].state != SLOT_QUEUED)
        pthread_cond_wait(&q->work, &q->mu);
    struct slot *s = NULL;
    if (!q->stop) {
        s = &q->slots[q->next];
        s->state = SLOT_WORKING;
        q->next = (q->next + 1) % SQUEEZE_DEPTH;
    }
    pthread_mutex_unlock(&q->mu);
    return s;
}

/* Slot S's block in the vault's form (OUT: the worker's buffer for a
 * compressed form), sealed as a data blob into S's buffer. */
static int pack_and_seal(struct vault_squeeze *q, struct vault_codec *c,
                         struct slot *s, struct vw *out)
{
    struct vault_stored in = { s->raw.codec, s->raw.lsize, s->raw.bytes,
                               s->raw.csize };
    struct vault_stored st;
    out->failed = false;
    int rc = vault_codec_pack(c, s->raw.hash, &in, out, &st);
    s->sealed.len = 0;
    s->sealed.failed = false;
    if (!rc)
        rc = vault_blob_seal(q->keys, VB_DATA, s->id, &st, &s->sealed);
    return rc;
}

static void *worker(void *arg)
{
    struct vault_squeeze *q = ((struct worker_arg *)arg)->q;
    struct vault_codec *c = q->codecs[((struct worker_arg *)arg)->no];
    free(arg);
    struct vw out = { 0 };
    struct slot *s;
    while ((s = take(q))) {
        int rc = pack_and_seal(q, c, s, &out);
        pthread_mutex_lock(&q->mu);
        s->rc = rc;
        s->state = SLOT_DONE;
        pthread_cond_broadcast(&q->done);
        pthread_mutex_unlock(&q->mu);
    }
    vw_free(&out);
    return NULL;
}

static unsigned thread_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n > SQUEEZE_THREADS_MAX ? SQUEEZE_THREADS_MAX : (unsigned)n;
}

int vault_squeeze_new(int level, const struct vault_keys *keys,
                      struct vault_squeeze **out)
{
    struct vault_squeeze *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->work, NULL);
    pthread_cond_init(&q->done, NULL);
    q->keys = keys;
    unsigned want = thread_count();
    int rc = 0;
    for (unsigned i = 0; !rc && i < want; i++) {
        struct worker_arg *a = malloc(sizeof(*a));
        q->codecs[i] = vault_codec_new(level);
        if (!a || !q->codecs[i]) {
            free(a);
            vault_codec_free(q->codecs[i]);
            q->codecs[i] = NULL;
            rc = -ENOMEM;
            break;
        }
        *a = (struct worker_arg){ q, i };
        rc = -pthread_create(&q->threads[i], NULL, worker, a);
        if (rc) {
            free(a);
            vault_codec_free(q->codecs[i]);
            q->codecs[i] = NULL;
        } else {
            q->nthreads++;
        }
    }
    if (!q->nthreads) {
        vault_squeeze_free(q);
        return rc ? rc : -EAGAIN;
    }
    *out = q;
    return 0;
}

void vault_squeeze_free(struct vault_squeeze *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_broadcast(&q->work);
    pthread_mutex_unlock(&q->mu);
    for (unsigned i = 0; i < q->nthreads; i++)
        pthread_join(q->threads[i], NULL);
    for (unsigned i = 0; i < SQUEEZE_THREADS_MAX; i++)
        vault_codec_free(q->codecs[i]);
    for (unsigned i = 0; i < SQUEEZE_DEPTH; i++) {
        if (q->slots[i].state != SLOT_FREE)
            sfs_raw_block_release(&q->slots[i].raw);
        vw_free(&q->slots[i].sealed);
    }
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->done);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

/* Hand the oldest block to DONE once it is packed, and free its slot. */
static int hand_back(struct vault_squeeze *q, vault_squeezed_fn *done, void *arg)
{
    struct slot *s = &q->slots[q->head];
    pthread_mutex_lock(&q->mu);
    while (s->state != SLOT_DONE)
        pthread_cond_wait(&q->done, &q->mu);
    pthread_mutex_unlock(&q->mu);
    struct vault_pack_entry e = { .type = VB_DATA,
                                  .length = (uint32_t)s->sealed.len,
                                  .lsize = s->raw.lsize };
    memcpy(e.id, s->id, VC_ID);
    int rc = done(arg, &e, s->rc ? NULL : s->sealed.p, s->rc);
    sfs_raw_block_release(&s->raw);
    pthread_mutex_lock(&q->mu);
    s->state = SLOT_FREE;
    q->head = (q->head + 1) % SQUEEZE_DEPTH;
    q->queued--;
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int vault_squeeze_add(struct vault_squeeze *q, const uint8_t id[VC_ID],
                      struct sfs_raw_block *raw, vault_squeezed_fn *done,
                      void *arg)
{
    int rc = q->queued == SQUEEZE_DEPTH ? hand_back(q, done, arg) : 0;
    if (rc) {
        sfs_raw_block_release(raw);
        return rc;
    }
    struct slot *s = &q->slots[q->tail];
    memcpy(s->id, id, VC_ID);
    s->raw = *raw;
    memset(raw, 0, sizeof(*raw));
    pthread_mutex_lock(&q->mu);
    s->state = SLOT_QUEUED;
    q->tail = (q->tail + 1) % SQUEEZE_DEPTH;
    q->queued++;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

int vault_squeeze_drain(struct vault_squeeze *q, vault_squeezed_fn *done, void *arg)
{
    int rc = 0;
    while (!rc && q->queued)
        rc = hand_back(q, done, arg);
    return rc;
}
