/*
 * prune.c - freeing what no kept snapshot refers to: packs whose blobs
 * are all unreferenced are deleted, packs mostly unreferenced are
 * repacked (their referenced blobs moved, sealed as they are, into new
 * packs), and the index is written anew.
 *
 * THEORY.  What a snapshot refers to is its chain's links, their
 * metadata chunks, and every block a record of those links names.  That
 * is more than its restore fetches (a block a later link of the chain
 * overwrote stays), but it is what the snapshot's restore may read, and it
 * is computed from the chains alone, never from a guess: prune marks it
 * for every manifest, and refuses to run when a manifest, a link or a
 * metadata chunk cannot be read (what it refers to would be unknown).
 *
 * A blob may be in several packs (a backup killed between a pack and its
 * index, a repack); prune keeps one copy: blobs of packs kept as they are
 * come first, a repacked pack's referenced blob is moved only if no kept
 * pack or earlier move has it.
 *
 * Order, so that a prune killed anywhere loses nothing a snapshot needs:
 * new packs (killed then, they are packs no index lists: duplicates the
 * next backup or prune indexes from their trailers), then the new index
 * (every kept and new pack), then the old index objects (and any the
 * repack wrote) are deleted, then the old packs.  Killed before the
 * deletions, the vault has duplicates (harmless);
 * between them, packs no index lists (the next backup indexes them from
 * their trailers, the next prune deletes them again).  Prune holds the
 * write lock and the read lock exclusively: no backup adds references and
 * no restore reads a pack while it works.
 *
 * Costs: every manifest's chain is read (metadata only); repacked packs
 * are read whole and their kept blobs written again; memory is the index
 * twice over (the place of every blob, and the set of referenced ids).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "repo.h"

#define REPACK_UNUSED 4   /* repack when over 1/4 of a pack is unused */
#define INDEX_PACKS 4096  /* packs per index object written */

enum { FATE_KEEP = 0, FATE_REPACK, FATE_DELETE };

struct pack_info {
    struct vault_pack_desc d;  /* its entries, as first listed (owned) */
    uint64_t used, unused;     /* sealed bytes of its referenced blobs, and
                                  of the others */
    int fate;
};

struct pruner {
    struct vault *v;
    bool dry_run;
    struct vault_index *refs;  /* referenced ids (a set) */
    struct vault_index *links_seen;
    struct vault_index *pack_no; /* pack id -> number in PACKS */
    struct pack_info *packs;
    size_t np, pcap;
    uint8_t (*indexes)[VC_ID]; /* the index objects to replace */
    size_t nindexes;
    struct vault_prune_stats *st;
};

static int mark(struct pruner *p, const uint8_t id[VC_ID])
{
    struct vault_loc none = { 0 };
    int rc = vault_index_add(p->refs, id, &none);
    return rc < 0 ? rc : 0;
}

/* ---- the packs, as the index objects list them ---- */

static int pack_listed(void *arg, const struct vault_pack_desc *d)
{
    struct pruner *p = arg;
    uint32_t no;
    int rc = vault_index_pack(p->pack_no, d->id, d->size, &no);
    if (rc || no < p->np)
        return rc; /* listed by an earlier index object */
    if (vault_grow(&p->packs, &p->pcap, p->np, sizeof(*p->packs)))
        return -ENOMEM;
    struct pack_info *pi = &p->packs[p->np++];
    memset(pi, 0, sizeof(*pi));
    pi->d = *d;
    pi->d.ents = malloc(d->n * sizeof(*d->ents) + 1);
    if (!pi->d.ents)
        return -ENOMEM;
    memcpy(pi->d.ents, d->ents, d->n * sizeof(*d->ents));
    return 0;
}

/* Every index object again, for every pack's whole list of blobs. */
static int list_packs(struct pruner *p)
{
    struct vault *v = p->v;
    int rc = vault_list_ids(v, "index", &p->indexes, &p->nindexes);
    for (size_t i = 0; !rc && i < p->nindexes; i++) {
        char name[128];
        void *obj;
        size_t len;
        vault_obj_name("index", p->indexes[i], name, sizeof(name));
        rc = objstore_get(v->os, name, &obj, &len);
        if (rc) {
            rc = vault_os_fail(v, rc);
            break;
        }
        rc = vault_index_decode(&v->keys, obj, len, pack_listed, p);
        free(obj);
        if (rc == -EBADMSG)
            vault_fail(v, rc, "%s: damaged; nothing was pruned", name);
    }
    return rc;
}

/* ---- marking ---- */

static int mark_record(void *arg, const struct sfs_stream_frame *f)
{
    struct pruner *p = arg;
    if (f->type != SFS_FRAME_PUT || !f->blockref)
        return 0;
    uint8_t id[VC_ID];
    vc_blob_id(&p->v->keys, f->hash, id);
    return mark(p, id);
}

static int mark_chain(struct pruner *p, const struct vault_manifest *m)
{
    struct vault_link *links;
    size_t n;
    int rc = vault_keep_lock(p->v);
    if (!rc)
        rc = vault_load_chain(p->v, m, &links, &n);
    if (rc)
        return rc;
    for (size_t i = n; !rc && i-- > 0;) {
        const uint8_t *lid = i + 1 < n ? links[i + 1].prev : m->link;
        if (vault_index_find(p->links_seen, lid))
            break;
        struct vault_loc none = { 0 };
        rc = vault_index_add(p->links_seen, lid, &none) < 0 ? -ENOMEM
                                                            : mark(p, lid);
        for (uint32_t c = 0; !rc && c < links[i].nchunks; c++)
            rc = mark(p, links[i].chunks[c]);
        if (!rc)
            rc = vault_link_replay(p->v, m, &links[i], mark_record, p);
    }
    vault_links_free(links, n);
    return rc;
}

static int mark_manifest(void *arg, const uint8_t id[VC_ID],
                         const struct vault_manifest *m)
{
    struct pruner *p = arg;
    char why[VAULT_WHY_MAX];
    snprintf(why, sizeof(why), "%s", vault_why(p->v));
    if (!m)
        return vault_fail(p->v, -EBADMSG, "%.900s; nothing was pruned (what "
                          "it refers to is unknown)", why);
    p->st->snapshots++;
    int rc = mark_chain(p, m);
    if (rc && rc != -ENOMEM) {
        snprintf(why, sizeof(why), "%s", vault_why(p->v));
        vault_fail(p->v, rc, "snapshot %s: %.800s; nothing was pruned",
                   m->name, why);
    }
    return rc;
}

/* ---- deciding ---- */

static void weigh(struct pruner *p)
{
    for (size_t i = 0; i < p->np; i++) {
        struct pack_info *pi = &p->packs[i];
        for (size_t j = 0; j < pi->d.n; j++) {
            const struct vault_pack_entry *e = &pi->d.ents[j];
            if (vault_index_find(p->refs, e->id))
                pi->used += e->length;
            else
                pi->unused += e->length;
        }
        pi->fate = !pi->used ? FATE_DELETE
                   : pi->unused * REPACK_UNUSED > pi->used + pi->unused
                       ? FATE_REPACK
                       : FATE_KEEP;
    }
}

/* Ids a kept pack holds need no copy. */
static int provided_by_kept(struct pruner *p, struct vault_index *have)
{
    struct vault_loc none = { 0 };
    for (size_t i = 0; i < p->np; i++)
        for (size_t j = 0; p->packs[i].fate == FATE_KEEP &&
                           j < p->packs[i].d.n; j++)
            if (vault_index_add(have, p->packs[i].d.ents[j].id, &none) < 0)
                return -ENOMEM;
    return 0;
}

/* ---- repacking ---- */

static int repack_one(struct pruner *p, struct pack_info *pi,
                      struct vault_index *have)
{
    struct vault *v = p->v;
    char name[128];
    void *buf;
    size_t len;
    vault_pack_name(pi->d.id, name, sizeof(name));
    int rc = vault_keep_lock(v);
    if (rc)
        return rc;
    rc = objstore_get(v->os, name, &buf, &len);
    if (rc)
        return vault_os_fail(v, rc);
    uint8_t sha[VC_ID];
    vc_sha256(buf, len, sha);
    if (memcmp(sha, pi->d.id, VC_ID) || len != pi->d.size)
        rc = vault_fail(v, -EBADMSG, "%s: damaged (its content does not "
                        "match its name); it was left as it is", name);
    struct vault_loc none = { 0 };
    for (size_t j = 0; !rc && j < pi->d.n; j++) {
        const struct vault_pack_entry *e = &pi->d.ents[j];
        if (!vault_index_find(p->refs, e->id) || vault_index_find(have, e->id))
            continue;
        rc = vault_move_blob(v, e, (uint8_t *)buf + e->offset);
        if (!rc && vault_index_add(have, e->id, &none) < 0)
            rc = -ENOMEM;
        p->st->bytes_moved += e->length;
    }
    free(buf);
    return rc;
}

static int repack(struct pruner *p)
{
    struct vault_index *have = vault_index_new();
    int rc = have ? provided_by_kept(p, have) : -ENOMEM;
    for (size_t i = 0; !rc && i < p->np; i++)
        if (p->packs[i].fate == FATE_REPACK)
            rc = repack_one(p, &p->packs[i], have);
    if (!rc)
        rc = vault_flush_packs(p->v);
    vault_index_free(have);
    return rc;
}

/* ---- the new index, and the deletions ---- */

static int write_index_part(struct vault *v, struct vault_pack_desc *d,
                            size_t n)
{
    struct vw obj = { 0 };
    int rc = vault_index_encode(&v->keys, d, n, &obj);
    if (!rc)
        rc = vault_put_object(v, "index", &obj, NULL);
    vw_free(&obj);
    return rc;
}

/* One index for the kept packs and the new ones, in parts. */
static int write_index(struct pruner *p)
{
    struct vault *v = p->v;
    size_t cap = p->np + v->nsession + 1, n = 0;
    struct vault_pack_desc *d = malloc(cap * sizeof(*d));
    if (!d)
        return -ENOMEM;
    for (size_t i = 0; i < p->np; i++)
        if (p->packs[i].fate == FATE_KEEP)
            d[n++] = p->packs[i].d;
    for (size_t i = 0; i < v->nsession; i++)
        d[n++] = v->session[i].d;
    int rc = 0;
    for (size_t at = 0; !rc && at < n; at += INDEX_PACKS)
        rc = write_index_part(v, d + at, n - at < INDEX_PACKS ? n - at
                                                              : INDEX_PACKS);
    free(d);
    return rc;
}

static void delete_old(struct pruner *p)
{
    struct vault *v = p->v;
    char name[128];
    for (size_t i = 0; i < p->nindexes; i++) {
        vault_obj_name("index", p->indexes[i], name, sizeof(name));
        objstore_delete(v->os, name);
    }
    for (size_t i = 0; i < v->nsession_indexes; i++)
        objstore_delete(v->os, v->session_indexes[i]);
    for (size_t i = 0; i < p->np; i++) {
        if (p->packs[i].fate == FATE_KEEP)
            continue;
        vault_pack_name(p->packs[i].d.id, name, sizeof(name));
        if (!objstore_delete(v->os, name))
            p->st->bytes_freed += p->packs[i].d.size;
    }
}

static void count(struct pruner *p)
{
    for (size_t i = 0; i < p->np; i++) {
        const struct pack_info *pi = &p->packs[i];
        p->st->packs++;
        p->st->packs_deleted += pi->fate == FATE_DELETE;
        p->st->packs_repacked += pi->fate == FATE_REPACK;
        p->st->unused_bytes += pi->unused;
    }
}

static void pruner_free(struct pruner *p)
{
    for (size_t i = 0; i < p->np; i++)
        free(p->packs[i].d.ents);
    free(p->packs);
    free(p->indexes);
    vault_index_free(p->refs);
    vault_index_free(p->links_seen);
    vault_index_free(p->pack_no);
}

int vault_prune(struct vault *v, bool dry_run, struct vault_prune_stats *st)
{
    memset(st, 0, sizeof(*st));
    struct pruner p = { .v = v, .dry_run = dry_run, .st = st,
                        .refs = vault_index_new(),
                        .links_seen = vault_index_new(),
                        .pack_no = vault_index_new() };
    int rc = p.refs && p.links_seen && p.pack_no ? 0 : -ENOMEM;
    if (!rc)
        rc = vault_load_index(v, !dry_run, &st->recovered);
    if (!rc)
        rc = list_packs(&p);
    /* recovered packs (no index object lists them) are old packs too */
    for (size_t i = 0; !rc && i < v->nsession; i++)
        rc = pack_listed(&p, &v->session[i].d);
    vault_session_clear(v);
    if (!rc)
        rc = vault_each_manifest(v, true, mark_manifest, &p);
    if (!rc) {
        weigh(&p);
        count(&p);
    }
    if (!rc && !dry_run && (st->packs_deleted || st->packs_repacked)) {
        v->uploaded = 0;
        rc = repack(&p);
        if (!rc)
            rc = write_index(&p);
        if (!rc)
            delete_old(&p);
        st->bytes_written = v->uploaded;
    }
    pruner_free(&p);
    return rc;
}
