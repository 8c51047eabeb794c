/*
 * prefetch.c - a restore's blocks read, authenticated and opened ahead of
 * the receiver, on a thread of their own, and handed to it in order.
 *
 * THEORY.  A restore's receiver (store/stream.c) asks its block source
 * for one block at a time, and spends its own time on each (decompress,
 * hash check, LMDB writes).  Reading a pack and opening its blobs
 * (AES-GCM) is the rest of the work, and needs nothing of the receiver:
 * the blocks it will ask for are known in advance, since they are the
 * blocks the records of the stream it receives name, first occurrences in
 * stream order.  So a walker (restore.c: the same stream written again
 * from the scratch table, split into frames) runs on this module's thread
 * and names each block a record refers to; the thread plans, reads and
 * opens them, and puts them in an out queue the receiver's thread takes
 * from.  The receiver's thread and this one run at once: on two cores a
 * restore is as fast as the slower of the two, not their sum.
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
 * Memory: the spans (SPANS x SPAN_MAX, mapped each on its own, so that
 * freeing one gives it back), the out queue (OUT_DEPTH blocks, at most
 * OUT_BYTES), the plan (PLAN_DEPTH x ~90 bytes): about 120 MiB, whatever
 * the volume's size.  The object store is used by one thread at
 * a time (a mutex: the receiver's thread refreshes the lock and reads
 * directly under it too).
 *
 * Guarantees: every block handed on authenticated under its type and id
 * (the receiver then checks it against its hash); an error (a missing,
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

#include "repo.h"

#define PLAN_DEPTH 4096
#define OUT_DEPTH 512
#define OUT_BYTES (32u << 20)
#define SPANS 5
#define BATCH 3              /* spans read at once (in parallel on S3) */
#define SPAN_MAX (17u << 20) /* a default pack (16 MiB) and more */
#define SPAN_DENSITY 4       /* at least 1/4 of a span is planned blobs */

struct planned {
    uint8_t hash[SFS_HASH_LEN];
    uint8_t id[VC_ID];
    struct vault_loc loc;
    int rc;               /* the index had no such data blob: why */
    char *why;
};

struct ready {
    uint8_t hash[SFS_HASH_LEN];
    struct sfs_raw_block raw; /* bytes malloc'd */
    int rc;                   /* not 0: the block could not be had */
    char *why;                /* and why (malloc'd) */
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
    size_t out_bytes;
    bool done, stop;
    /* the thread's own */
    struct planned plan[PLAN_DEPTH];
    unsigned phead, pn;
    struct vault_loc cand[PLAN_DEPTH]; /* span_len's */
    struct span spans[SPANS];
    uint64_t tick;
    uint64_t fetched;          /* bytes read (added to v's at stop) */
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

/* Put R at the tail, waiting for room (false: stopped; R released). */
static bool hand_on(struct vault_prefetch *pf, struct ready *r)
{
    pthread_mutex_lock(&pf->mu);
    while (!pf->stop && (pf->n == OUT_DEPTH ||
                         (pf->n && pf->out_bytes + r->raw.csize > OUT_BYTES)))
        pthread_cond_wait(&pf->cv, &pf->mu);
    bool ok = !pf->stop;
    if (ok) {
        pf->out[(pf->head + pf->n) % OUT_DEPTH] = *r;
        pf->n++;
        pf->out_bytes += r->raw.csize;
        pthread_cond_broadcast(&pf->cv);
    }
    pthread_mutex_unlock(&pf->mu);
    if (!ok) {
        sfs_raw_block_release(&r->raw);
        free(r->why);
    }
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

/* A span's buffer: mapped of its own, so that freeing it gives its memory
 * back at once (malloc would keep buffers this large in its arenas). */
static uint8_t *span_alloc(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void span_free(struct span *s)
{
    if (s->buf)
        munmap(s->buf, s->len);
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
        if ((b[i].s.buf = span_alloc(b[i].s.len)))
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
    *rc = read_batch(pf, b, n, why);
    const struct span *got = NULL;
    for (unsigned i = 0; i < n; i++) {
        if (b[i].rc) {
            span_free(&b[i].s);
            continue;
        }
        pf->fetched += b[i].s.len;
        span_cached(pf, &(struct vault_loc){ .pack = UINT32_MAX }, &w);
        span_free(w);
        *w = b[i].s;
        w->used = ++pf->tick;
        if (!i)
            got = w;
    }
    return got;
}

/* The planned block P read and opened into R. */
static void open_planned(struct vault_prefetch *pf, struct planned *p,
                         struct ready *r)
{
    memset(r, 0, sizeof(*r));
    memcpy(r->hash, p->hash, SFS_HASH_LEN);
    if (p->rc) {
        r->rc = p->rc;
        r->why = p->why;
        p->why = NULL;
        return;
    }
    const struct span *sp = span_for(pf, &p->loc, &r->rc, &r->why);
    if (!sp)
        return;
    uint8_t *plain;
    struct vault_stored s;
    r->rc = vault_blob_open(&pf->v->keys, VB_DATA, p->id,
                            sp->buf + (p->loc.offset - sp->off),
                            p->loc.length, &plain, &s);
    if (r->rc == -EBADMSG) {
        char name[128], hex[VC_HEX];
        vault_pack_name(vault_index_pack_id(pf->v->index, p->loc.pack), name,
                        sizeof(name));
        vc_hex(p->id, VC_ID, hex);
        r->why = why_of("%s: damaged (blob %.16s... does not authenticate)",
                        name, hex);
    }
    if (r->rc)
        return;
    memmove(plain, s.bytes, s.csize); /* the stored form, at the start */
    r->raw = (struct sfs_raw_block){ .bytes = plain, .csize = s.csize,
                                     .lsize = s.lsize, .codec = s.codec };
    memcpy(r->raw.hash, p->hash, SFS_HASH_LEN);
}

/* The oldest planned block, read and handed on (false: stopped). */
static bool plan_pop(struct vault_prefetch *pf)
{
    struct planned *p = &pf->plan[pf->phead];
    struct ready r;
    open_planned(pf, p, &r);
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
    int rc = -pthread_create(&pf->thread, NULL, run, pf);
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
        while (!pf->n && !pf->done)
            pthread_cond_wait(&pf->cv, &pf->mu);
        if (!pf->n)
            break;
        *r = pf->out[pf->head];
        pf->head = (pf->head + 1) % OUT_DEPTH;
        pf->n--;
        pf->out_bytes -= r->raw.csize;
        pthread_cond_broadcast(&pf->cv);
        if (!memcmp(r->hash, hash, SFS_HASH_LEN)) {
            found = 1;
            break;
        }
        sfs_raw_block_release(&r->raw); /* a repeat: the receiver has it */
        free(r->why);
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
    pthread_mutex_lock(&pf->os_mu);
    int rc = vault_keep_lock(pf->v);
    pthread_mutex_unlock(&pf->os_mu);
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
    for (; pf->n; pf->n--, pf->head = (pf->head + 1) % OUT_DEPTH) {
        sfs_raw_block_release(&pf->out[pf->head].raw);
        free(pf->out[pf->head].why);
    }
    for (unsigned i = 0; i < SPANS; i++)
        span_free(&pf->spans[i]);
    pf->v->fetched += pf->fetched;
    pthread_mutex_destroy(&pf->os_mu);
    pthread_mutex_destroy(&pf->mu);
    pthread_cond_destroy(&pf->cv);
    free(pf);
}
