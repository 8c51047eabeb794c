/*
 * blobio.c - blobs to and from the object store: the index loaded (and
 * recovered from pack trailers), blobs fetched and opened, blobs packed,
 * packs and their index objects written (see repo.c's THEORY).
 *
 * Guarantees: a pack is written before any index object that lists it.
 * A session's packs are listed by index objects of up to
 * VAULT_INDEX_EVERY packs each, written once those packs are stored (and
 * the last at vault_flush, before the manifest that needs them): a
 * backup killed in between leaves packs no index lists, which
 * vault_load_index(RECOVER) finds by listing data/ and indexes from their
 * own trailers (a ranged read each, as an index object per pack would
 * have cost), so nothing written is uploaded again.  Requests: a pack is
 * one PUT (a pack is closed before it would grow over the pack size,
 * trailer included, so a default pack is under the multipart size) and
 * an index object is one PUT per VAULT_INDEX_EVERY packs, never deleted
 * by the backup.
 * A blob is handed on only if it authenticates under its type and id and,
 * read with vault_read_blob, decodes to bytes whose keyed hash is its id.
 *
 * Reading: a blob that follows the previous one in the same pack (a
 * restore reads in the order a backup wrote) is served from a window of
 * up to WINDOW bytes of that pack read at once (a default pack whole), so
 * that a sequential restore makes a request per pack, not per block, as
 * restic's does: on S3 each request costs a round trip; any other
 * blob is read alone.  VAULT_WINDOWS windows are kept (the one used
 * longest ago is replaced).  (A whole restore reads through restore.c's
 * prefetcher instead, which plans its reads per pack.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "repo.h"

#define TRAILER_GUESS (64u << 10)
#define WINDOW (17u << 20) /* a default pack (16 MiB) and its last blob */

/* ---- reading packs ---- */

int vault_read_trailer(struct vault *v, const uint8_t pack[VC_ID],
                       uint64_t size, struct vault_pack_entry **ents,
                       size_t *n)
{
    char name[128];
    vault_pack_name(pack, name, sizeof(name));
    if (size < 4 + VC_OVERHEAD)
        return vault_fail(v, -EBADMSG, "%s: too short to be a pack", name);
    size_t tail = size < TRAILER_GUESS ? (size_t)size : TRAILER_GUESS;
    uint8_t *buf = malloc(tail);
    if (!buf)
        return -ENOMEM;
    int rc = objstore_get_range(v->os, name, size - tail, tail, buf);
    uint32_t tlen = 0;
    if (rc)
        rc = rc == -ERANGE ? vault_fail(v, -EBADMSG, "%s: shorter than "
                                        "indexed (truncated)", name)
                           : vault_os_fail(v, rc);
    else if (vault_trailer_len(buf + tail - 4, size, &tlen))
        rc = vault_fail(v, -EBADMSG, "%s: damaged (no trailer)", name);
    if (!rc && tlen + 4 > tail) { /* a long trailer: read it whole */
        uint8_t *more = realloc(buf, tlen + 4);
        rc = more ? objstore_get_range(v->os, name, size - tlen - 4,
                                       tlen + 4, more)
                  : -ENOMEM;
        buf = more ? more : buf;
        tail = tlen + 4;
        if (rc && rc != -ENOMEM)
            rc = vault_os_fail(v, rc);
    }
    if (!rc) {
        rc = vault_trailer_open(&v->keys, buf + tail - 4 - tlen, tlen, size,
                                ents, n);
        if (rc == -EBADMSG)
            vault_fail(v, rc, "%s: damaged (its trailer does not "
                       "authenticate)", name);
    }
    free(buf);
    return rc;
}

/* ---- the index ---- */

static int add_pack_cb(void *arg, const struct vault_pack_desc *p)
{
    return vault_index_add_pack(arg, p);
}

/* Read the index object NAME into V's index.  A superseded one deleted
 * since the listing is no error. */
int vault_load_index_object(struct vault *v, const char *name)
{
    void *obj;
    size_t len;
    int rc = objstore_get(v->os, name, &obj, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return vault_os_fail(v, rc);
    uint8_t sha[VC_ID], id[VC_ID];
    vc_sha256(obj, len, sha);
    vc_unhex(name + strlen("index/"), id, VC_ID);
    rc = memcmp(sha, id, VC_ID) ? -EBADMSG
                                : vault_index_decode(&v->keys, obj, len,
                                                     add_pack_cb, v->index);
    free(obj);
    if (rc == -EBADMSG)
        return vault_fail(v, rc, "%s: damaged (it does not authenticate; "
                          "snapfs vault check tells more)", name);
    if (rc == -EPROTONOSUPPORT)
        return vault_fail(v, rc, "%s: made by a newer snapfs", name);
    return rc;
}

/* Pack D is the session's (in no index object of the session yet). */
static int session_add(struct vault *v, const struct vault_pack_desc *d)
{
    if (vault_grow(&v->session, &v->session_cap, v->nsession,
                   sizeof(*v->session)))
        return -ENOMEM;
    struct vault_session_pack *sp = &v->session[v->nsession];
    sp->d = *d;
    sp->d.ents = malloc(d->n * sizeof(*d->ents) + 1);
    if (!sp->d.ents)
        return -ENOMEM;
    memcpy(sp->d.ents, d->ents, d->n * sizeof(*d->ents));
    v->nsession++;
    return 0;
}

struct recover_scan {
    struct vault *v;
    uint64_t recovered;
    int err;
};

/* A pack no index lists: index it from its trailer. */
static int recover_pack(void *arg, const char *name, uint64_t size)
{
    struct recover_scan *s = arg;
    struct vault *v = s->v;
    uint8_t id[VC_ID];
    uint32_t no;
    if (strlen(name) != 8 + 64 || vc_unhex(name + 8, id, VC_ID) ||
        !vault_index_pack_find(v->index, id, &no))
        return 0;
    struct vault_pack_desc d = { .size = size };
    memcpy(d.id, id, VC_ID);
    int rc = vault_read_trailer(v, id, size, &d.ents, &d.n);
    if (rc == -EBADMSG)
        return 0; /* not ours to mend: check reports it */
    if (!rc)
        rc = vault_index_add_pack(v->index, &d);
    if (!rc)
        rc = session_add(v, &d); /* the session's index lists it */
    free(d.ents);
    if (rc) {
        s->err = rc;
        return 1;
    }
    s->recovered++;
    return 0;
}

int vault_read_indexes(struct vault *v, vault_problem_fn bad, void *arg,
                       uint64_t *count)
{
    vault_index_free(v->index);
    v->index = vault_index_new();
    uint8_t (*ids)[VC_ID] = NULL;
    size_t n = 0;
    int rc = v->index ? vault_list_ids(v, "index", &ids, &n) : -ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        char name[128];
        vault_obj_name("index", ids[i], name, sizeof(name));
        rc = vault_load_index_object(v, name);
        if (bad && (rc == -EBADMSG || rc == -EPROTONOSUPPORT)) {
            bad(arg, vault_why(v));
            rc = 0;
        }
    }
    if (count)
        *count = n;
    free(ids);
    return rc;
}

int vault_load_index(struct vault *v, bool recover, uint64_t *recovered)
{
    int rc = vault_read_indexes(v, NULL, NULL, NULL);
    if (rc || !recover)
        return rc;
    struct recover_scan r = { v, 0, 0 };
    rc = objstore_list(v->os, "data/", recover_pack, &r);
    if (r.err)
        return r.err;
    if (rc)
        return vault_os_fail(v, rc);
    if (recovered)
        *recovered = r.recovered;
    return 0;
}

/* ---- reading blobs ---- */

/* LOC's sealed bytes: from the window, or read (a new window when LOC
 * follows the blob read last).  *BYTES points into the window or is
 * malloc'd (*OWNED). */
static int read_sealed(struct vault *v, const struct vault_loc *loc,
                       const char *name, const uint8_t **bytes, bool *owned)
{
    bool sequential = v->win_next_set && loc->pack == v->win_next_pack &&
                      loc->offset == v->win_next;
    v->win_next_set = true;
    v->win_next_pack = loc->pack;
    v->win_next = (uint64_t)loc->offset + loc->length;
    *owned = false;
    struct vault_window *w = &v->win[0];
    for (unsigned i = 0; i < VAULT_WINDOWS; i++) {
        struct vault_window *x = &v->win[i];
        if (x->buf && loc->pack == x->pack && loc->offset >= x->off &&
            loc->offset + (uint64_t)loc->length <= x->off + x->len) {
            x->used = ++v->win_tick;
            *bytes = x->buf + (loc->offset - x->off);
            return 0;
        }
        if (!x->buf || (w->buf && x->used < w->used))
            w = x; /* the one to replace: empty, or used longest ago */
    }
    uint64_t psize = vault_index_pack_size(v->index, loc->pack);
    size_t len = loc->length;
    if (sequential && psize > loc->offset && len < WINDOW)
        len = psize - loc->offset < WINDOW ? (size_t)(psize - loc->offset)
                                           : WINDOW;
    if (len < loc->length)
        len = loc->length;
    uint8_t *buf = malloc(len);
    if (!buf)
        return -ENOMEM;
    int rc = objstore_get_range(v->os, name, loc->offset, len, buf);
    if (rc) {
        free(buf);
        return rc == -ERANGE ? vault_fail(v, -EBADMSG, "%s: shorter than "
                                          "indexed (truncated)", name)
               : rc == -ENOENT ? vault_fail(v, -ENOENT, "%s: missing", name)
                               : vault_os_fail(v, rc);
    }
    v->fetched += len;
    if (len == loc->length) { /* a blob alone: the windows stay */
        *bytes = buf;
        *owned = true;
        return 0;
    }
    free(w->buf);
    *w = (struct vault_window){ .pack = loc->pack, .off = loc->offset,
                                .len = len, .buf = buf,
                                .used = ++v->win_tick };
    *bytes = buf;
    return 0;
}

int vault_fetch_blob(struct vault *v, uint8_t type, const uint8_t id[VC_ID],
                     uint8_t **plain, struct vault_stored *s)
{
    char hex[VC_HEX], name[128];
    const struct vault_loc *loc = vault_index_find(v->index, id);
    vc_hex(id, VC_ID, hex);
    if (!loc || loc->pack == VAULT_PACK_PENDING)
        return vault_fail(v, -ENOENT, "blob %.16s...: in no index of the "
                          "vault", hex);
    if (loc->type != type)
        return vault_fail(v, -EBADMSG, "blob %.16s...: indexed as another "
                          "kind of blob", hex);
    vault_pack_name(vault_index_pack_id(v->index, loc->pack), name,
                    sizeof(name));
    const uint8_t *bytes = NULL;
    bool owned = false;
    int rc = read_sealed(v, loc, name, &bytes, &owned);
    if (rc)
        return rc;
    rc = vault_blob_open(&v->keys, type, id, bytes, loc->length, plain, s);
    if (owned)
        free((void *)bytes);
    if (rc == -EBADMSG)
        vault_fail(v, rc, "%s: damaged (blob %.16s... does not "
                   "authenticate)", name, hex);
    return rc;
}

int vault_read_blob(struct vault *v, uint8_t type, const uint8_t id[VC_ID],
                    uint8_t **out, size_t *len)
{
    uint8_t *plain;
    struct vault_stored s;
    int rc = vault_fetch_blob(v, type, id, &plain, &s);
    if (rc)
        return rc;
    uint8_t *buf = s.lsize <= VAULT_BLOB_LSIZE_MAX ? malloc(s.lsize + 1)
                                                   : NULL;
    rc = buf ? vault_stored_decode(&v->keys, id, &s, buf, NULL) : -EBADMSG;
    free(plain);
    if (rc) {
        free(buf);
        char hex[VC_HEX];
        vc_hex(id, VC_ID, hex);
        return rc == -ENOMEM ? rc
                             : vault_fail(v, rc, "blob %.16s...: does not "
                                          "decode to its id (damaged)", hex);
    }
    *out = buf;
    *len = s.lsize;
    return 0;
}

/* ---- writing ---- */

/*
 * Packs go up asynchronously, at most MAX_INFLIGHT transfers at a time
 * (memory: that many packs).  An index object of the session's packs is
 * submitted from the completion of the last pack it lists, so it is never
 * in the store before its packs; an error of either is kept for
 * vault_wait.
 */
#define MAX_INFLIGHT 4

struct upload {
    struct vault *v;
    uint8_t *buf;               /* the object's bytes (owned) */
    size_t len, cap;            /* cap: a pack's buffer, to be reused */
    struct vault_pack_desc d;   /* a pack: its entries (owned) */
    char name[128];
};

/* A written pack's buffer (CAP bytes) kept for a later pack, if there is
 * room: a pack's buffer is grown to the pack size once, not for every
 * pack (each new one copied as it doubled, and its pages faulted in). */
static void spare_keep(struct vault *v, uint8_t *buf, size_t cap)
{
    if (v->nspare == VAULT_SPARE_PACKS) {
        free(buf);
        return;
    }
    v->spare[v->nspare++] = (struct vw){ .p = buf, .cap = cap };
}

/* P's buffer is empty (handed to an upload): a kept one, or none. */
static void spare_take(struct vault *v, struct vault_packer *p)
{
    if (v->nspare)
        p->buf = v->spare[--v->nspare];
}

static void upload_free(struct upload *u)
{
    if (u->cap)
        spare_keep(u->v, u->buf, u->cap);
    else
        free(u->buf);
    free(u->d.ents);
    free(u);
}

static void async_fail(struct vault *v, int rc, const char *what)
{
    if (!v->async_rc)
        vault_fail(v, v->async_rc = rc, "%s: %s", what, strerror(-rc));
}

static int submit(struct vault *v, struct upload *u, objstore_done_fn *done)
{
    v->inflight++;
    int rc = objstore_put_async(v->os, u->name, u->buf, u->len, done, u);
    if (rc) {
        v->inflight--;
        upload_free(u);
    }
    return rc;
}

static void index_done(void *arg, int rc)
{
    struct upload *u = arg;
    u->v->inflight--;
    if (!rc)
        u->v->uploaded += u->len;
    upload_free(u);
}

/* The pack D is in the store: its blobs leave PENDING, in memory. */
static int index_in_memory(struct vault *v, const struct vault_pack_desc *d)
{
    uint32_t no;
    int rc = vault_index_pack(v->index, d->id, d->size, &no);
    for (size_t i = 0; !rc && i < d->n; i++) {
        const struct vault_pack_entry *e = &d->ents[i];
        struct vault_loc loc = { no, e->offset, e->length, e->lsize, e->type };
        rc = vault_index_set(v->index, e->id, &loc);
    }
    return rc;
}

/* The session's packs that no index object of the session lists yet,
 * sealed as one index object into OBJ, named in NAME. */
static int session_index_object(struct vault *v, struct vw *obj,
                                char name[VAULT_INDEX_NAME])
{
    size_t n = v->nsession - v->session_indexed;
    struct vault_pack_desc *d = malloc(n * sizeof(*d) + 1);
    if (!d)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        d[i] = v->session[v->session_indexed + i].d;
    int rc = vault_index_encode(&v->keys, d, n, obj);
    free(d);
    uint8_t id[VC_ID];
    if (!rc) {
        vc_sha256(obj->p, obj->len, id);
        vault_obj_name("index", id, name, VAULT_INDEX_NAME);
    }
    if (!rc && vault_grow(&v->session_indexes, &v->session_indexes_cap,
                          v->nsession_indexes, sizeof(*v->session_indexes)))
        rc = -ENOMEM;
    if (!rc) {
        memcpy(v->session_indexes[v->nsession_indexes++], name,
               VAULT_INDEX_NAME);
        v->session_indexed = v->nsession;
    }
    return rc;
}

/* VAULT_INDEX_EVERY packs of the session are stored and in no index
 * object: one for them, on its way. */
static int index_session_async(struct vault *v)
{
    struct upload *ix = calloc(1, sizeof(*ix));
    struct vw obj = { 0 };
    int rc = ix ? session_index_object(v, &obj, ix->name) : -ENOMEM;
    if (rc) {
        free(ix);
        vw_free(&obj);
        return rc;
    }
    ix->v = v;
    ix->buf = obj.p;
    ix->len = obj.len;
    return submit(v, ix, index_done);
}

static void pack_done(void *arg, int rc)
{
    struct upload *u = arg;
    struct vault *v = u->v;
    v->inflight--;
    if (!rc) {
        v->uploaded += u->len;
        v->packs_written++;
        rc = index_in_memory(v, &u->d);
        if (!rc)
            rc = session_add(v, &u->d);
        if (!rc && v->nsession - v->session_indexed >= VAULT_INDEX_EVERY)
            rc = index_session_async(v);
        if (rc)
            async_fail(v, rc, "indexing a pack");
    } else {
        async_fail(v, rc, "writing a pack"); /* vault_wait tells more */
    }
    upload_free(u);
}

int vault_wait(struct vault *v)
{
    int rc = objstore_wait(v->os);
    if (rc)
        return vault_os_fail(v, rc);
    return v->async_rc;
}

/* Send the pack P holds on its way, and start P again. */
static int write_pack(struct vault *v, struct vault_packer *p)
{
    struct upload *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->v = v;
    int rc = vault_packer_finish(p, &v->keys, u->d.id);
    if (!rc && !(u->d.ents = malloc(p->n * sizeof(*p->ents) + 1)))
        rc = -ENOMEM;
    if (rc) {
        upload_free(u);
        return vault_fail(v, rc, "sealing a pack: %s", strerror(-rc));
    }
    memcpy(u->d.ents, p->ents, p->n * sizeof(*p->ents));
    u->d.n = p->n;
    u->d.size = u->len = p->buf.len;
    u->buf = p->buf.p; /* the upload owns the bytes now */
    u->cap = p->buf.cap;
    memset(&p->buf, 0, sizeof(p->buf));
    vault_packer_reset(p);
    spare_take(v, p);
    vault_pack_name(u->d.id, u->name, sizeof(u->name));
    rc = submit(v, u, pack_done);
    if (rc)
        return vault_os_fail(v, rc);
    /* room for the next: the oldest finished, not all (the others go on
     * while the next pack fills); a failed one stops the session here */
    if (v->inflight >= MAX_INFLIGHT)
        objstore_wait_below(v->os, MAX_INFLIGHT);
    if (v->async_rc)
        return vault_wait(v);
    return vault_keep_lock(v);
}

/* Make room in P for a blob of LEN sealed bytes: a pack that would grow
 * over the pack size with it is written first (a blob alone may make a
 * pack larger). */
static int room_for(struct vault *v, struct vault_packer *p, size_t len)
{
    if (p->n && vault_packer_size_with(p, len) > v->pack_size)
        return write_pack(v, p);
    return 0;
}

/* After a blob went into P: write P if it is full. */
static int written_if_full(struct vault *v, struct vault_packer *p)
{
    return vault_packer_size_with(p, 0) >= v->pack_size ? write_pack(v, p)
                                                       : 0;
}

int vault_reserve_blob(struct vault *v, uint8_t type, const uint8_t id[VC_ID],
                       uint32_t lsize)
{
    struct vault_loc pending = { VAULT_PACK_PENDING, 0, 0, lsize, type };
    return vault_index_add(v->index, id, &pending);
}

int vault_pack_blob(struct vault *v, uint8_t type, const uint8_t id[VC_ID],
                    const struct vault_stored *s)
{
    struct vault_packer *p = &v->packers[type == VB_DATA ? 0 : 1];
    int rc = room_for(v, p, vault_blob_size(s->csize));
    if (!rc)
        rc = vault_packer_add(p, &v->keys, type, id, s);
    return rc ? rc : written_if_full(v, p);
}

int vault_add_blob(struct vault *v, uint8_t type, const uint8_t id[VC_ID],
                   const struct vault_stored *s)
{
    if (vault_index_find(v->index, id))
        return 0;
    int rc = vault_reserve_blob(v, type, id, s->lsize);
    if (rc >= 0)
        rc = vault_pack_blob(v, type, id, s);
    return rc < 0 ? rc : 1;
}

int vault_move_blob(struct vault *v, const struct vault_pack_entry *e,
                    const uint8_t *sealed)
{
    struct vault_packer *p = &v->packers[e->type == VB_DATA ? 0 : 1];
    int rc = room_for(v, p, e->length);
    if (!rc)
        rc = vault_packer_add_sealed(p, e, sealed);
    return rc ? rc : written_if_full(v, p);
}

int vault_add_plain(struct vault *v, uint8_t type, const void *plain,
                    uint32_t len, uint8_t id[VC_ID])
{
    uint8_t sha[VC_ID];
    vc_sha256(plain, len, sha);
    vc_blob_id(&v->keys, sha, id);
    if (vault_index_find(v->index, id))
        return 0;
    struct vw buf = { 0 };
    struct vault_stored s;
    int rc = vault_compress(plain, len, &buf, &s);
    if (!rc)
        rc = vault_add_blob(v, type, id, &s);
    vw_free(&buf);
    return rc;
}

int vault_flush_packs(struct vault *v)
{
    int rc = 0;
    for (int i = 0; !rc && i < 2; i++)
        if (v->packers[i].n)
            rc = write_pack(v, &v->packers[i]);
    return rc ? rc : vault_wait(v);
}

void vault_session_clear(struct vault *v)
{
    for (size_t i = 0; i < v->nsession; i++)
        free(v->session[i].d.ents);
    v->nsession = v->session_indexed = 0;
    v->nsession_indexes = 0;
}

int vault_flush(struct vault *v)
{
    int rc = vault_flush_packs(v);
    if (!rc && v->nsession > v->session_indexed) {
        struct vw obj = { 0 };
        char name[VAULT_INDEX_NAME];
        rc = session_index_object(v, &obj, name);
        if (!rc)
            rc = vault_put_object(v, "index", &obj, NULL);
        vw_free(&obj);
    }
    vault_session_clear(v);
    return rc;
}
