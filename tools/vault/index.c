/*
 * index.c - where every blob of a vault is: the index in memory and the
 * index objects (index/ID) it is loaded from (see format.h).
 *
 * In memory: the blobs in one array (id and place, 52 bytes), the packs
 * in another (id and size), each found through an open-addressing hash
 * table of 32-bit entry numbers kept at most half full, keyed by the
 * first 8 bytes of the id (ids are MACs and SHA-256 sums: uniform).  So
 * a lookup is a probe or two, and memory is about 60 bytes per blob;
 * nothing is ever removed (an index lives for one command).
 *
 * An index object: seal("index", "SFSVIDX\n" u32 version u32 npacks,
 * then per pack: id[32] u64 size u32 nblobs, then per blob: type u8,
 * id[32], offset u32, length u32, lsize u32).  A blob listed twice (the
 * same block in two packs: two backups racing, or a pack whose index was
 * written twice) is harmless: the first place is kept, both are whole.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

static const char idx_magic[8] = { 'S', 'F', 'S', 'V', 'I', 'D', 'X', '\n' };

struct ient {
    uint8_t id[VC_ID];
    struct vault_loc loc;
};

struct pent {
    uint8_t id[VC_ID];
    uint64_t size;
};

/* A hash table of entry numbers + 1 (0: empty) over an array of items
 * whose first VC_ID bytes are the key. */
struct table {
    uint32_t *slots;
    size_t nslots; /* a power of two, or 0 */
};

struct vault_index {
    struct ient *ents;
    size_t n, cap;
    struct table eslots;
    struct pent *packs;
    size_t np, pcap;
    struct table pslots;
};

static size_t slot_of(const uint8_t *id, size_t nslots)
{
    uint64_t h;
    memcpy(&h, id, 8);
    return (size_t)h & (nslots - 1);
}

/* The slot holding ID, or the empty slot where it would go. */
static size_t table_probe(const struct table *t, const void *items,
                          size_t item_size, const uint8_t *id)
{
    size_t i = slot_of(id, t->nslots);
    for (;;) {
        uint32_t e = t->slots[i];
        if (!e || !memcmp((const uint8_t *)items + (size_t)(e - 1) * item_size,
                          id, VC_ID))
            return i;
        i = (i + 1) & (t->nslots - 1);
    }
}

/* Keep the table at most half full for COUNT items. */
static int table_grow(struct table *t, const void *items, size_t item_size,
                      size_t count)
{
    if (count * 2 < t->nslots)
        return 0;
    size_t n = t->nslots ? 2 * t->nslots : 1024;
    struct table nt = { calloc(n, sizeof(uint32_t)), n };
    if (!nt.slots)
        return -ENOMEM;
    for (size_t e = 0; e < count; e++) {
        const uint8_t *id = (const uint8_t *)items + e * item_size;
        nt.slots[table_probe(&nt, items, item_size, id)] = (uint32_t)(e + 1);
    }
    free(t->slots);
    *t = nt;
    return 0;
}

/* Entry numbers are 32 bits (0: an empty slot). */
static int array_room(void *items, size_t *cap, size_t n, size_t size)
{
    return n >= UINT32_MAX - 1 ? -EOVERFLOW
                               : vault_grow(items, cap, n, size);
}

struct vault_index *vault_index_new(void)
{
    return calloc(1, sizeof(struct vault_index));
}

void vault_index_free(struct vault_index *x)
{
    if (!x)
        return;
    free(x->ents);
    free(x->eslots.slots);
    free(x->packs);
    free(x->pslots.slots);
    free(x);
}

int vault_index_pack_find(const struct vault_index *x,
                          const uint8_t id[VC_ID], uint32_t *no)
{
    if (!x->pslots.nslots)
        return -ENOENT;
    uint32_t e = x->pslots.slots[table_probe(&x->pslots, x->packs,
                                             sizeof(struct pent), id)];
    if (!e)
        return -ENOENT;
    *no = e - 1;
    return 0;
}

int vault_index_pack(struct vault_index *x, const uint8_t id[VC_ID],
                     uint64_t size, uint32_t *no)
{
    if (!vault_index_pack_find(x, id, no))
        return 0;
    int rc = array_room(&x->packs, &x->pcap, x->np,
                        sizeof(struct pent));
    if (!rc)
        rc = table_grow(&x->pslots, x->packs, sizeof(struct pent), x->np + 1);
    if (rc)
        return rc;
    memcpy(x->packs[x->np].id, id, VC_ID);
    x->packs[x->np].size = size;
    x->pslots.slots[table_probe(&x->pslots, x->packs, sizeof(struct pent),
                                id)] = (uint32_t)(x->np + 1);
    *no = (uint32_t)x->np++;
    return 0;
}

const uint8_t *vault_index_pack_id(const struct vault_index *x, uint32_t no)
{
    return no < x->np ? x->packs[no].id : NULL;
}

uint64_t vault_index_pack_size(const struct vault_index *x, uint32_t no)
{
    return no < x->np ? x->packs[no].size : 0;
}

size_t vault_index_npacks(const struct vault_index *x)
{
    return x->np;
}

size_t vault_index_count(const struct vault_index *x)
{
    return x->n;
}

static struct ient *find_entry(const struct vault_index *x,
                               const uint8_t id[VC_ID])
{
    if (!x->eslots.nslots)
        return NULL;
    uint32_t e = x->eslots.slots[table_probe(&x->eslots, x->ents,
                                             sizeof(struct ient), id)];
    return e ? &x->ents[e - 1] : NULL;
}

int vault_index_set(struct vault_index *x, const uint8_t id[VC_ID],
                    const struct vault_loc *loc)
{
    struct ient *e = find_entry(x, id);
    if (!e)
        return -ENOENT;
    e->loc = *loc;
    return 0;
}

const struct vault_loc *vault_index_find(const struct vault_index *x,
                                         const uint8_t id[VC_ID])
{
    const struct ient *e = find_entry(x, id);
    return e ? &e->loc : NULL;
}


int vault_index_add(struct vault_index *x, const uint8_t id[VC_ID],
                    const struct vault_loc *loc)
{
    if (vault_index_find(x, id))
        return 0;
    int rc = array_room(&x->ents, &x->cap, x->n,
                        sizeof(struct ient));
    if (!rc)
        rc = table_grow(&x->eslots, x->ents, sizeof(struct ient), x->n + 1);
    if (rc)
        return rc;
    memcpy(x->ents[x->n].id, id, VC_ID);
    x->ents[x->n].loc = *loc;
    x->eslots.slots[table_probe(&x->eslots, x->ents, sizeof(struct ient),
                                id)] = (uint32_t)(x->n + 1);
    x->n++;
    return 1;
}

int vault_index_add_pack(struct vault_index *x,
                         const struct vault_pack_desc *p)
{
    uint32_t no;
    int rc = vault_index_pack(x, p->id, p->size, &no);
    for (size_t i = 0; !rc && i < p->n; i++) {
        const struct vault_pack_entry *e = &p->ents[i];
        struct vault_loc loc = { no, e->offset, e->length, e->lsize, e->type };
        rc = vault_index_add(x, e->id, &loc);
        rc = rc < 0 ? rc : 0;
    }
    return rc;
}

/* ---- index objects ---- */

int vault_index_encode(const struct vault_keys *k,
                       const struct vault_pack_desc *packs, size_t n,
                       struct vw *out)
{
    struct vw w = { 0 };
    vw_bytes(&w, idx_magic, sizeof(idx_magic));
    vw_u32(&w, VAULT_FORMAT);
    vw_u32(&w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        vw_bytes(&w, packs[i].id, VC_ID);
        vw_u64(&w, packs[i].size);
        vw_u32(&w, (uint32_t)packs[i].n);
        for (size_t j = 0; j < packs[i].n; j++)
            vault_entry_write(&w, &packs[i].ents[j]);
    }
    int rc = w.failed ? -ENOMEM : vault_obj_seal(k, "index", w.p, w.len, out);
    vw_free(&w);
    return rc;
}

/* One pack of an index object: its entries, checked to lie in the pack. */
static int decode_pack(struct vr *r, struct vault_pack_desc *p,
                       struct vault_pack_entry **buf, size_t *cap)
{
    const uint8_t *id = vr_bytes(r, VC_ID);
    if (id)
        memcpy(p->id, id, VC_ID);
    p->size = vr_u64(r);
    p->n = vr_u32(r);
    if (r->bad || p->n > r->left / VAULT_ENTRY_BYTES)
        return -EBADMSG;
    if (p->n > *cap) {
        struct vault_pack_entry *e = realloc(*buf, p->n * sizeof(*e));
        if (!e)
            return -ENOMEM;
        *buf = e;
        *cap = p->n;
    }
    p->ents = *buf;
    for (size_t j = 0; j < p->n; j++) {
        struct vault_pack_entry *e = &p->ents[j];
        vault_entry_read(r, e);
        if (r->bad || !e->type || e->type > VB_TYPE_MAX ||
            (uint64_t)e->offset + e->length > p->size)
            return -EBADMSG;
    }
    return 0;
}

int vault_index_decode(const struct vault_keys *k, const void *obj,
                       size_t len,
                       int (*cb)(void *arg, const struct vault_pack_desc *p),
                       void *arg)
{
    uint8_t *plain;
    size_t plen;
    int rc = vault_obj_open(k, "index", obj, len, &plain, &plen);
    if (rc)
        return rc;
    struct vr r = vr_init(plain, plen);
    const uint8_t *m = vr_bytes(&r, sizeof(idx_magic));
    uint32_t version = vr_u32(&r), n = vr_u32(&r);
    if (r.bad || memcmp(m, idx_magic, sizeof(idx_magic)) || !version)
        rc = -EBADMSG;
    else if (version > VAULT_FORMAT)
        rc = -EPROTONOSUPPORT;
    struct vault_pack_entry *buf = NULL;
    size_t cap = 0;
    for (uint32_t i = 0; !rc && i < n; i++) {
        struct vault_pack_desc p;
        rc = decode_pack(&r, &p, &buf, &cap);
        if (!rc)
            rc = cb(arg, &p);
    }
    if (!rc && !vr_done(&r))
        rc = -EBADMSG;
    free(buf);
    free(plain);
    return rc;
}
