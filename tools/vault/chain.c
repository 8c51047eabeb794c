/*
 * chain.c - reading a snapshot's metadata chain (backup.c's THEORY): its
 * links from the full one to the snapshot's, and each link's records.
 *
 * Guarantees: a chain is handed on only if its links join up (each
 * link's base epoch is the previous link's snapshot, depths count down
 * to a full link of depth 1) and end at the manifest's snapshot; a link's
 * records are handed on frame by frame, each frame whole and checked
 * (store/stream.c's checks), after a header naming the link's epochs and
 * the manifest's volume and block size, and the stream must end with an
 * end frame counting exactly the records that came: a missing, damaged
 * or truncated metadata blob is -EBADMSG or -ENOENT, why naming it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "repo.h"

static int read_link(struct vault *v, const uint8_t id[VC_ID],
                     struct vault_link *l)
{
    uint8_t *plain;
    size_t len;
    int rc = vault_read_blob(v, VB_CHAIN, id, &plain, &len);
    if (rc)
        return rc;
    rc = vault_link_decode(plain, len, l);
    free(plain);
    if (rc == -EBADMSG)
        vault_fail(v, rc, "a metadata link of the snapshot is malformed");
    return rc;
}

static void reverse(struct vault_link *l, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        struct vault_link t = l[i];
        l[i] = l[n - 1 - i];
        l[n - 1 - i] = t;
    }
}

int vault_load_chain(struct vault *v, const struct vault_manifest *m,
                     struct vault_link **out, size_t *n)
{
    uint8_t id[VC_ID];
    memcpy(id, m->link, VC_ID);
    uint64_t want_to = m->epoch;
    uint32_t want_depth = m->depth;
    struct vault_link *links = calloc(m->depth, sizeof(*links));
    size_t got = 0;
    int rc = links ? 0 : -ENOMEM;
    while (!rc && got < m->depth) {
        struct vault_link *l = &links[got];
        rc = read_link(v, id, l);
        if (rc)
            break;
        got++;
        if (l->to_epoch != want_to || l->depth != want_depth)
            rc = vault_fail(v, -EBADMSG, "the snapshot's metadata chain "
                            "does not join up (at its link of epoch %llu)",
                            (unsigned long long)l->to_epoch);
        if (rc || l->kind == VAULT_LINK_FULL)
            break;
        memcpy(id, l->prev, VC_ID);
        want_to = l->from_epoch;
        want_depth--;
    }
    if (!rc && (!got || links[got - 1].kind != VAULT_LINK_FULL))
        rc = vault_fail(v, -EBADMSG, "the snapshot's metadata chain has no "
                        "full link");
    if (rc) {
        vault_links_free(links, got);
        return rc;
    }
    reverse(links, got);
    *out = links;
    *n = got;
    return 0;
}

void vault_links_free(struct vault_link *links, size_t n)
{
    for (size_t i = 0; links && i < n; i++)
        vault_link_free(&links[i]);
    free(links);
}

struct replay {
    struct vault *v;
    const struct vault_manifest *m;
    const struct vault_link *l;
    vault_frame_cb cb;
    void *arg;
    uint64_t puts, kills;
    bool begun, ended;
};

static int check_header(struct replay *r, const struct sfs_stream_frame *f)
{
    struct sfs_stream_hdr h;
    int rc = sfs_stream_header_parse(f, &h);
    if (rc == -EPROTONOSUPPORT)
        return vault_fail(r->v, rc, "the snapshot's records are of another "
                          "stream version or record layout than this snapfs "
                          "reads (backed up on another architecture?)");
    if (rc || r->begun || h.from_epoch != r->l->from_epoch ||
        h.to_epoch != r->l->to_epoch || h.block_size != r->m->block_size ||
        memcmp(h.src_uuid, r->m->volume, 16))
        return vault_fail(r->v, -EBADMSG, "the snapshot's metadata does not "
                          "match its manifest");
    r->begun = true;
    return 0;
}

static int replay_frame(void *arg, const struct sfs_stream_frame *f)
{
    struct replay *r = arg;
    if (r->ended || (!r->begun && f->type != SFS_FRAME_HEADER))
        return vault_fail(r->v, -EBADMSG, "the snapshot's metadata is out of "
                          "order");
    int rc = 0;
    switch (f->type) {
    case SFS_FRAME_HEADER:
        rc = check_header(r, f);
        break;
    case SFS_FRAME_PUT:
        r->puts++;
        break;
    case SFS_FRAME_KILL:
        r->kills++;
        break;
    case SFS_FRAME_END: {
        uint64_t puts, kills;
        r->ended = true;
        if (sfs_stream_end_parse(f, &puts, &kills) || puts != r->puts ||
            kills != r->kills || puts + kills != r->l->records)
            return vault_fail(r->v, -EBADMSG, "the snapshot's metadata is "
                              "incomplete (its end does not count what "
                              "came)");
        return 0;
    }
    default:
        return vault_fail(r->v, -EBADMSG, "the snapshot's metadata holds a "
                          "frame of type %#x", f->type);
    }
    return rc ? rc : r->cb(r->arg, f);
}

int vault_link_replay(struct vault *v, const struct vault_manifest *m,
                      const struct vault_link *l, vault_frame_cb cb,
                      void *arg)
{
    struct replay r = { v, m, l, cb, arg, 0, 0, false, false };
    struct vault_frames fr = { { 0 }, 0 };
    int rc = 0;
    for (uint32_t i = 0; !rc && i < l->nchunks; i++) {
        uint8_t *chunk;
        size_t len;
        v->why[0] = 0;
        rc = vault_read_blob(v, VB_META, l->chunks[i], &chunk, &len);
        if (!rc) {
            rc = vault_frames_feed(&fr, chunk, len, replay_frame, &r);
            free(chunk);
        }
        if (rc == -EBADMSG && !v->why[0])
            vault_fail(v, rc, "the snapshot's metadata is malformed");
    }
    if (!rc && (!r.ended || vault_frames_end(&fr)))
        rc = vault_fail(v, -EBADMSG, "the snapshot's metadata is incomplete "
                        "(truncated)");
    vault_frames_free(&fr);
    return rc;
}
