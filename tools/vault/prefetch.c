/*
 * prefetch.c - a restore's blocks read, authenticated, opened and checked
 * against their hashes ahead of the receiver, on threads of their own,
 * and handed to it in order.
 *
 * THEORY.  A restore's receiver (store/stream.c) asks its block source
 * for one block at a time, and spends its own time on each (LMDB
 * writes).  Reading a pack, opening its blobs (AES-GCM) and checking each
 * block against its hash (decompress, SHA-256) is the rest of the work,
 * and needs nothing of the receiver: the blocks it will ask for are known
 * in advance, since they are the blocks the records of the stream it
 * receives name, first occurrences in stream order.  So a walker
 * (restore.c: the same stream written again from the scratch table,
 * split into frames) runs on this module's reader thread and names each
 * block a record refers to; the reader plans and reads them and puts
 * them in an out queue, whose blocks worker threads open, and which the
 * receiver's thread takes from.  The receiver and the others run at
 * once: on two cores a restore is as fast as the slowest part, not the
 * sum.
 *
 * The out queue may hold blocks the receiver does not ask for (a block
 * named twice: the receiver has it the second time): taking block H
 * drops the blocks before H, which are such repeats (the walk and the
 * receiver see the same records in the same order).  A block not found
 * (it cannot happen unless the walk ended early) is read directly.
 *
 * Reads: the walker's blocks wait in a plan of PLAN_DEPTH blocks (about
 * 128 MiB of packs) before they are read; a block not in a span already
 * read makes one ranged read of its pack, from the block on, as far as
 * the planned blocks of the same pack reach while at least a quarter of
 * the bytes read are planned ones (at most SPAN_MAX).  So a full backup's
 * packs are read whole, one request each, and an incremental's pack, whose
 * blocks are met here and there along the restore, in a few spans rather
 * than a request per block.  A miss reads, with the span it needs, the
 * spans of the next planned blocks no span holds, BATCH in all, at once
 * (asynchronous reads: on S3 they run in parallel, as restic's do).
 * SPANS spans are kept, the least recently used replaced.
 *
 * Opening: the reader thread only plans, reads and copies each planned
 * blob out of its span into its slot of the out queue; WORKERS threads
 * open the slots (AES-GCM), decompress them and check them against their
 * hashes (sfs_block_verify: the receiver then stores them without doing it
 * again), each taking the oldest slot no worker has taken.  The receiver
 * takes the queue's slots in order, each once a worker is done with it, so
 * blocks reach it in the walk's order whatever order the workers finish
 * in.  On two cores the receiver's LMDB writes, the reads and the opening
 * of blocks (most of a restore's CPU) all overlap.
 *
 * Memory: the spans (SPANS x SPAN_MAX, mapped each on its own: the
 * spans a batch will replace are emptied before it is read, and their
 * buffers kept and reused rather than mapped and faulted in again), the
 * out queue (OUT_DEPTH blocks, at most OUT_BYTES of sealed bytes, and
 * the opened forms of those), the plan (PLAN_DEPTH x ~90 bytes): about
 * 130 MiB, whatever the volume's size.  The object store is used by one thread at a time (a
 * mutex: the receiver's thread refreshes the lock and reads directly
 * under it too).
 *
 * Guarantees: every block handed on authenticated under its type and id
 * and checked against its hash (a block read directly, not through the
 * queue, is checked by the receiver); an error (a missing,
 * truncated or damaged pack) is handed on in order with the block it
 * belongs to, with the message a direct read would have given, so a
 * restore fails where and as it did without the thread; stop joins the
 * thread and frees everything.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "repo.h"

#define PLAN_DEPTH 4096
#define OUT_DEPTH 512
#define OUT_BYTES (16u << 20)
#define SPANS 5
#define BATCH 3              /* spans read at once (in parallel on S3) */
#define SPAN_MAX (17u << 20) /* a default pack (16 MiB) and more */
#define SPAN_DENSITY 4       /* at least 1/4 of a span is planned blobs */
#define WORKERS 2            /* threads opening and checking blocks */
#define POOL SPANS           /* span buffers kept for reuse */

struct planned {
    uint8_t hash[SFS_HASH_LEN];
    uint8_t id[VC_ID];
    struct vault_loc loc;
    int rc;               /* the index had no such data blob: why */
    char *why;
};

/* A slot of the out queue: a block to open (the job: its sealed bytes,
 * copied out of their span), then, once a worker is done, opened. */
struct ready {
    uint8_t hash[SFS_HASH_LEN];
    struct sfs_raw_block raw; /* bytes malloc'd */
    int rc;                   /* not 0: the block could not be had */
    char *why;                /* and why (malloc'd) */
    uint8_t *sealed;          /* the job (malloc'd; NULL once done) */
    size_t sealed_len;
    uint8_t id[VC_ID];
    char pack[80];            /* its pack's name, for messages */
    size_t charge;            /* counted in out_bytes */
    bool done;                /* opened (or failed): the receiver's */
};

struct worker {
    struct vault_prefetch *pf;
    pthread_t thread;
    struct sfs_codec_ctx *cc;  /* checking blocks against their hashes */
    uint8_t *plain;            /* a block decoded (SFS_BLOCK_SIZE_MAX) */
};

struct span {
    uint32_t pack;
    uint64_t off;
    size_t len;
    uint8_t *buf;
    uint64_t used;
};

struct vault_prefetch {
    struct vault *v;
    vault_walk_fn *walk;
    void *walk_arg;
    pthread_t thread;
    bool started;
    pthread_mutex_t os_mu;     /* the object store, one thread at a time */
    pthread_mutex_t mu;        /* the out queue and the flags */
    pthread_cond_t cv;
    struct ready out[OUT_DEPTH];
    unsigned head, n;          /* the out queue: oldest, how many */
    unsigned jobs;             /* slots from head on taken by workers */
    size_t out_bytes;
    bool done, stop;
    struct worker workers[WORKERS];
    unsigned nworkers;         /* started */
    /* the thread's own */
    struct planned plan[PLAN_DEPTH];
    unsigned phead, pn;
    struct vault_loc cand[PLAN_DEPTH]; /* span_len's */
    struct span spans[SPANS];
    uint64_t tick;
    uint64_t fetched;          /* bytes read (added to v's at stop) */
    uint8_t *pool[POOL];       /* span buffers (SPAN_MAX) to reuse */
    unsigned npool;
};

static char *why_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *why_of(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

/* ---- the out queue ---- */

static void ready_release(struct ready *r)
{
    sfs_raw_block_release(&r->raw);
    free(r->why);
    free(r->sealed);
    r->why = NULL;
    r->sealed = NULL;
}

/* Put R at the tail, waiting for room (false: stopped; R released). */
static bool hand_on(struct vault_prefetch *pf, struct ready *r)
{
    pthread_mutex_lock(&pf->mu);
    while (!pf->stop && (pf->n == OUT_DEPTH ||
                         (pf->n && pf->out_bytes + r->charge > OUT_BYTES)))
        pthread_cond_wait(&pf->cv, &pf->mu);
    bool ok = !pf->stop;
    if (ok) {
        pf->out[(pf->head + pf->n) % OUT_DEPTH] = *r;
        pf->n++;
        pf->out_bytes += r->charge;
        pthread_cond_broadcast(&pf->cv);
    }
    pthread_mutex_unlock(&pf->mu);
    if (!ok)
        ready_release(r);
    return ok;
}

/* ---- reading spans (the thread) ---- */

static int cmp_loc(const void *a, const void *b)
{
    const struct vault_loc *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* How far to read pack P from the planned blob at FROM: over the planned
 * blobs of P after it while they are dense enough. */
static size_t span_len(struct vault_prefetch *pf, const struct vault_loc *from)
{
    struct vault_loc *c = pf->cand;
    size_t nc = 0;
    for (unsigned i = 0; i < pf->pn; i++) {
        const struct vault_loc *l = &pf->plan[(pf->phead + i) % PLAN_DEPTH].loc;
        if (l->pack == from->pack && l->offset >= from->offset &&
            (uint64_t)l->offset + l->length - from->offset <= SPAN_MAX)
            c[nc++] = *l;
    }
    qsort(c, nc, sizeof(*c), cmp_loc);
    uint64_t planned = 0, end = (uint64_t)from->offset + from->length;
    for (size_t i = 0; i < nc; i++) {
        uint64_t e = (uint64_t)c[i].offset + c[i].length;
        planned += c[i].length;
        if (e > end && planned * SPAN_DENSITY >= e - from->offset)
            end = e;
    }
    return (size_t)(end - from->offset);
}

/* A span's buffer (SPAN_MAX: span_len's bound): one kept from a span
 * replaced, or mapped of its own (malloc would keep buffers this large in
 * its arenas, and a new mapping is faulted in page by page). */
static uint8_t *span_alloc(struct vault_prefetch *pf)
{
    if (pf->npool)
        return pf->pool[--pf->npool];
    void *p = mmap(NULL, SPAN_MAX, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void span_free(struct vault_prefetch *pf, struct span *s)
{
    if (s->buf && pf->npool < POOL)
        pf->pool[pf->npool++] = s->buf;
    else if (s->buf)
        munmap(s->buf, SPAN_MAX);
    s->buf = NULL;
}

/* The span of the cache holding LOC (NULL: none); W: the one to replace
 * (empty, or used longest ago). */
static struct span *span_cached(struct vault_prefetch *pf,
                                const struct vault_loc *loc, struct span **w)
{
    *w = &pf->spans[0];
    for (unsigned i = 0; i < SPANS; i++) {
        struct span *x = &pf->spans[i];
        if (x->buf && x->pack == loc->pack && loc->offset >= x->off &&
            loc->offset + (uint64_t)loc->length <= x->off + x->len)
            return x;
        if (!x->buf || ((*w)->buf && x->used < (*w)->used))
            *w = x;
    }
    return NULL;
}

/* A read of a batch. */
struct span_read {
    struct span s;
    int rc;
};

static void span_read_done(void *arg, int rc)
{
    ((struct span_read *)arg)->rc = rc;
}

/* Is LOC in one of the N reads of B? */
static bool in_batch(const struct span_read *b, unsigned n,
                     const struct vault_loc *loc)
{
    for (unsigned i = 0; i < n; i++)
        if (b[i].s.pack == loc->pack && loc->offset >= b[i].s.off &&
            loc->offset + (uint64_t)loc->length <= b[i].s.off + b[i].s.len)
            return true;
    return false;
}

/* The reads to make with the one of LOC: the spans of the next planned
 * blobs that neither the cache nor the batch holds, BATCH at most (so
 * that on S3 they run in parallel). */
static unsigned plan_batch(struct vault_prefetch *pf,
                           const struct vault_loc *loc, struct span_read *b)
{
    unsigned n = 0;
    struct span *w;
    for (unsigned i = 0; i < pf->pn && n < BATCH; i++) {
        const struct planned *p = &pf->plan[(pf->phead + i) % PLAN_DEPTH];
        const struct vault_loc *l = i ? &p->loc : loc;
        if (i && (p->rc || span_cached(pf, l, &w) || in_batch(b, n, l)))
            continue;
        b[n++] = (struct span_read){ .s = { .pack = l->pack, .off = l->offset,
                                            .len = span_len(pf, l) } };
    }
    return n;
}

/* The N reads of B made (at once), under the store's mutex; the first's
 * error, with why. */
static int read_batch(struct vault_prefetch *pf, struct span_read *b,
                      unsigned n, char **why)
{
    struct vault *v = pf->v;
    char name[128];
    int rc = 0;
    pthread_mutex_lock(&pf->os_mu);
    for (unsigned i = 0; i < n; i++) {
        b[i].rc = -ENOMEM;
        vault_pack_name(vault_index_pack_id(v->index, b[i].s.pack), name,
                        sizeof(name));
        if ((b[i].s.buf = span_alloc(pf)))
            b[i].rc = objstore_get_async(v->os, name, b[i].s.off, b[i].s.len,
                                         b[i].s.buf, span_read_done, &b[i]);
    }
    objstore_wait(v->os); /* each read's result is in its rc */
    vault_pack_name(vault_index_pack_id(v->index, b[0].s.pack), name,
                    sizeof(name));
    if ((rc = b[0].rc) == -ERANGE)
        rc = -EBADMSG, *why = why_of("%s: shorter than indexed (truncated)",
                                     name);
    else if (rc == -ENOENT)
        *why = why_of("%s: missing", name);
    else if (rc && rc != -ENOMEM)
        *why = why_of("%s", objstore_why(v->os));
    pthread_mutex_unlock(&pf->os_mu);
    return rc;
}

/* N spans of the cache emptied (the least recently used), before a batch
 * of N is read, which would replace them: so that no more than SPANS
 * buffers are ever in use. */
static void make_room(struct vault_prefetch *pf, unsigned n)
{
    for (;;) {
        unsigned empty = 0;
        struct span *lru = NULL;
        for (unsigned i = 0; i < SPANS; i++) {
            struct span *x = &pf->spans[i];
            if (!x->buf)
                empty++;
            else if (!lru || x->used < lru->used)
                lru = x;
        }
        if (empty >= n || !lru)
            return;
        span_free(pf, lru);
    }
}

/* The span holding LOC, read if need be, with the batch plan_batch
 * chooses (NULL: *WHY, *RC say why).  Reads of the batch that failed
 * are dropped: their blobs are read again, and fail with their own
 * message, when their turn comes. */
static const struct span *span_for(struct vault_prefetch *pf,
                                   const struct vault_loc *loc, int *rc,
                                   char **why)
{
    struct span *w, *x = span_cached(pf, loc, &w);
    if (x) {
        x->used = ++pf->tick;
        return x;
    }
    struct span_read b[BATCH];
    unsigned n = plan_batch(pf, loc, b);
    make_room(pf, n);
    *rc = read_batch(pf, b, n, why);
    const struct span *got = NULL;
    for (unsigned i = 0; i < n; i++) {
        if (b[i].rc) {
            span_free(pf, &b[i].s);
            continue;
        }
        pf->fetched += b[i].s.len;
        span_cached(pf, &(struct vault_loc){ .pack = UINT32_MAX }, &w);
        span_free(pf, w);
        *w = b[i].s;
        w->used = ++pf->tick;
        if (!i)
            got = w;
    }
    return got;
}

/* The planned block P read into R: its sealed bytes copied out of their
 * span, for a worker to open (or R an error, done). */
static void read_planned(struct vault_prefetch *pf, struct planned *p,
                         struct ready *r)
{
    memset(r, 0, sizeof(*r));
    memcpy(r->hash, p->hash, SFS_HASH_LEN);
    r->done = true;
    if (p->rc) {
        r->rc = p->rc;
        r->why = p->why;
        p->why = NULL;
        return;
    }
    const struct span *sp = span_for(pf, &p->loc, &r->rc, &r->why);
    if (!sp)
        return;
    if (!(r->sealed = malloc(p->loc.length))) {
        r->rc = -ENOMEM;
        return;
    }
    memcpy(r->sealed, sp->buf + (p->loc.offset - sp->off), p->loc.length);
    r->sealed_len = r->charge = p->loc.length;
    memcpy(r->id, p->id, VC_ID);
    vault_pack_name(vault_index_pack_id(pf->v->index, p->loc.pack), r->pack,
                    sizeof(r->pack));
    r->done = false;
}

/* The job J opened (AES-GCM) and checked against its hash by worker W
 * (sfs_block_verify): its block, or an error with why, in J. */
static void open_job(struct worker *w, struct ready *j)
{
    uint8_t *plain;
    struct vault_stored s;
    char hex[VC_HEX];
    vc_hex(j->id, VC_ID, hex);
    j->rc = vault_blob_open(&w->pf->v->keys, VB_DATA, j->id, j->sealed,
                            j->sealed_len, &plain, &s);
    free(j->sealed);
    j->sealed = NULL;
    if (j->rc == -EBADMSG)
        j->why = why_of("%s: damaged (blob %.16s... does not authenticate)",
                        j->pack, hex);
    if (j->rc)
        return;
    memmove(plain, s.bytes, s.csize); /* the stored form, at the start */
    j->raw = (struct sfs_raw_block){ .bytes = plain, .csize = s.csize,
                                     .lsize = s.lsize, .codec = s.codec };
    memcpy(j->raw.hash, j->hash, SFS_HASH_LEN);
    j->rc = s.lsize > SFS_BLOCK_SIZE_MAX
                ? -EBADMSG
                : sfs_block_verify(w->cc, &j->raw, w->plain);
    if (!j->rc)
        return;
    j->why = why_of("%s: blob %.16s... does not decode to the block it "
                    "names", j->pack, hex);
    sfs_raw_block_release(&j->raw);
}

/* A worker: the oldest slot no worker has taken, opened, until stopped. */
static void *work(void *arg)
{
    struct worker *w = arg;
    struct vault_prefetch *pf = w->pf;
    pthread_mutex_lock(&pf->mu);
    for (;;) {
        while (!pf->stop && pf->jobs == pf->n)
            pthread_cond_wait(&pf->cv, &pf->mu);
        if (pf->stop)
            break;
        struct ready *slot = &pf->out[(pf->head + pf->jobs++) % OUT_DEPTH];
        if (slot->done)
            continue;
        struct ready j = *slot;
        pthread_mutex_unlock(&pf->mu);
        open_job(w, &j);
        j.done = true;
        pthread_mutex_lock(&pf->mu);
        *slot = j;
        pthread_cond_broadcast(&pf->cv);
    }
    pthread_mutex_unlock(&pf->mu);
    return NULL;
}

/* The oldest planned block, read and handed on (false: stopped). */
static bool plan_pop(struct vault_prefetch *pf)
{
    struct planned *p = &pf->plan[pf->phead];
    struct ready r;
    read_planned(pf, p, &r);
    pf->phead = (pf->phead + 1) % PLAN_DEPTH;
    pf->pn--;
    return hand_on(pf, &r);
}

/* The walker's callback: block HASH is the next a record names. */
static int want(void *arg, const uint8_t hash[SFS_HASH_LEN])
{
    struct vault_prefetch *pf = arg;
    if (pf->pn == PLAN_DEPTH && !plan_pop(pf))
        return -ECANCELED;
    struct planned *p = &pf->plan[(pf->phead + pf->pn) % PLAN_DEPTH];
    struct vault *v = pf->v;
    memset(p, 0, sizeof(*p));
    memcpy(p->hash, hash, SFS_HASH_LEN);
    vc_blob_id(&v->keys, hash, p->id);
    const struct vault_loc *loc = vault_index_find(v->index, p->id);
    char hex[VC_HEX];
    vc_hex(p->id, VC_ID, hex);
    if (!loc || loc->pack == VAULT_PACK_PENDING)
        p->rc = -ENOENT, p->why = why_of("blob %.16s...: in no index of "
                                         "the vault", hex);
    else if (loc->type != VB_DATA)
        p->rc = -EBADMSG, p->why = why_of("blob %.16s...: indexed as "
                                          "another kind of blob", hex);
    else
        p->loc = *loc;
    pf->pn++;
    return 0;
}

static void *run(void *arg)
{
    struct vault_prefetch *pf = arg;
    int rc = pf->walk(pf->walk_arg, want, pf);
    while (!rc && pf->pn)
        if (!plan_pop(pf))
            rc = -ECANCELED;
    while (pf->pn) { /* stopped, or the walk failed: the plan goes */
        free(pf->plan[pf->phead].why);
        pf->phead = (pf->phead + 1) % PLAN_DEPTH;
        pf->pn--;
    }
    pthread_mutex_lock(&pf->mu);
    pf->done = true;
    pthread_cond_broadcast(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
    return NULL;
}

/* ---- the receiver's side ---- */

int vault_prefetch_start(struct vault *v, vault_walk_fn *walk, void *walk_arg,
                         struct vault_prefetch **out)
{
    struct vault_prefetch *pf = calloc(1, sizeof(*pf));
    if (!pf)
        return -ENOMEM;
    pf->v = v;
    pf->walk = walk;
    pf->walk_arg = walk_arg;
    pthread_mutex_init(&pf->os_mu, NULL);
    pthread_mutex_init(&pf->mu, NULL);
    pthread_cond_init(&pf->cv, NULL);
    int rc = 0;
    for (unsigned i = 0; !rc && i < WORKERS; i++) {
        struct worker *w = &pf->workers[i];
        w->pf = pf;
        w->cc = sfs_codec_ctx_new();
        w->plain = malloc(SFS_BLOCK_SIZE_MAX);
        rc = w->cc && w->plain ? -pthread_create(&w->thread, NULL, work, w)
                               : -ENOMEM;
        if (!rc)
            pf->nworkers++;
    }
    if (!rc)
        rc = -pthread_create(&pf->thread, NULL, run, pf);
    pf->started = !rc;
    if (rc) {
        vault_prefetch_stop(pf);
        return vault_fail(v, rc, "starting the restore's reader: %s",
                          strerror(-rc));
    }
    *out = pf;
    return 0;
}

/* The next block the queue has for HASH into R (1), or 0: the walk ended
 * without it. */
static int take_queued(struct vault_prefetch *pf, const uint8_t *hash,
                       struct ready *r)
{
    pthread_mutex_lock(&pf->mu);
    int found = 0;
    for (;;) {
        while ((!pf->n && !pf->done) || (pf->n && !pf->out[pf->head].done))
            pthread_cond_wait(&pf->cv, &pf->mu);
        if (!pf->n)
            break;
        *r = pf->out[pf->head];
        pf->head = (pf->head + 1) % OUT_DEPTH;
        pf->n--;
        if (pf->jobs) /* the workers took or passed over the head: */
            pf->jobs--; /* a slot done from the start may not be yet */
        pf->out_bytes -= r->charge;
        pthread_cond_broadcast(&pf->cv);
        if (!memcmp(r->hash, hash, SFS_HASH_LEN)) {
            found = 1;
            break;
        }
        ready_release(r); /* a repeat: the receiver has it */
    }
    pthread_mutex_unlock(&pf->mu);
    return found;
}

/* Block HASH read directly (not in the queue). */
static int take_direct(struct vault_prefetch *pf, const uint8_t *hash,
                       struct sfs_raw_block *raw)
{
    struct vault *v = pf->v;
    uint8_t id[VC_ID], *plain;
    struct vault_stored s;
    vc_blob_id(&v->keys, hash, id);
    pthread_mutex_lock(&pf->os_mu);
    int rc = vault_fetch_blob(v, VB_DATA, id, &plain, &s);
    pthread_mutex_unlock(&pf->os_mu);
    if (rc)
        return rc;
    memmove(plain, s.bytes, s.csize);
    *raw = (struct sfs_raw_block){ .bytes = plain, .csize = s.csize,
                                   .lsize = s.lsize, .codec = s.codec };
    memcpy(raw->hash, hash, SFS_HASH_LEN);
    return 0;
}

int vault_prefetch_take(struct vault_prefetch *pf,
                        const uint8_t hash[SFS_HASH_LEN],
                        struct sfs_raw_block *raw)
{
    int rc = 0;
    /* the store's mutex only when the lock is due (lock_refreshed is this
     * thread's): the reader holds it while a batch is read */
    if (time(NULL) - pf->v->lock_refreshed >= VAULT_LOCK_REFRESH) {
        pthread_mutex_lock(&pf->os_mu);
        rc = vault_keep_lock(pf->v);
        pthread_mutex_unlock(&pf->os_mu);
    }
    if (rc)
        return rc;
    struct ready r;
    if (!take_queued(pf, hash, &r))
        return take_direct(pf, hash, raw);
    if (r.rc) {
        rc = r.why ? vault_fail(pf->v, r.rc, "%s", r.why) : r.rc;
        free(r.why);
        return rc;
    }
    *raw = r.raw;
    return 0;
}

void vault_prefetch_stop(struct vault_prefetch *pf)
{
    if (!pf)
        return;
    pthread_mutex_lock(&pf->mu);
    pf->stop = true;
    pthread_cond_broadcast(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
    if (pf->started)
        pthread_join(pf->thread, NULL);
    for (unsigned i = 0; i < WORKERS; i++) {
        if (i < pf->nworkers)
            pthread_join(pf->workers[i].thread, NULL);
        sfs_codec_ctx_free(pf->workers[i].cc);
        free(pf->workers[i].plain);
    }
    for (; pf->n; pf->n--, pf->head = (pf->head + 1) % OUT_DEPTH)
        ready_release(&pf->out[pf->head]);
    for (unsigned i = 0; i < SPANS; i++)
        span_free(pf, &pf->spans[i]);
    while (pf->npool)
        munmap(pf->pool[--pf->npool], SPAN_MAX);
    pf->v->fetched += pf->fetched;
    pthread_mutex_destroy(&pf->os_mu);
    pthread_mutex_destroy(&pf->mu);
    pthread_cond_destroy(&pf->cv);
    free(pf);
}
