/*
 * meta.c - snapshot metadata as the vault keeps it: chain links, the
 * cutting of a stream into chunks, and the splitting of chunks back into
 * frames (see format.h; the design is backup.c's THEORY).
 *
 *   link: "SFSVLNK\n" u32 version, u8 kind, u64 from, u64 to, prev[32],
 *         u32 depth, u64 bytes, u64 chain_bytes, u64 full_bytes,
 *         u64 records, u32 nchunks, chunk ids[32 each]
 *
 * Guarantees: the splitter hands on only whole frames whose checksum and
 * shape sfs_stream_frame_parse accepted, and never more than one frame's
 * bytes plus one chunk are buffered; a link decodes only if its counts
 * and chunk list are consistent.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

static const char link_magic[8] = { 'S', 'F', 'S', 'V', 'L', 'N', 'K', '\n' };

int vault_link_encode(const struct vault_link *l, struct vw *out)
{
    vw_bytes(out, link_magic, sizeof(link_magic));
    vw_u32(out, VAULT_FORMAT);
    vw_u8(out, l->kind);
    vw_u64(out, l->from_epoch);
    vw_u64(out, l->to_epoch);
    vw_bytes(out, l->prev, VC_ID);
    vw_u32(out, l->depth);
    vw_u64(out, l->bytes);
    vw_u64(out, l->chain_bytes);
    vw_u64(out, l->full_bytes);
    vw_u64(out, l->records);
    vw_u32(out, l->nchunks);
    vw_bytes(out, l->chunks, (size_t)l->nchunks * VC_ID);
    return out->failed ? -ENOMEM : 0;
}

static bool link_consistent(const struct vault_link *l)
{
    if (l->kind == VAULT_LINK_FULL)
        return !l->from_epoch && l->depth == 1 && l->full_bytes == l->bytes &&
               !l->chain_bytes;
    return l->kind == VAULT_LINK_INCR && l->from_epoch &&
           l->from_epoch < l->to_epoch && l->depth > 1 &&
           l->chain_bytes >= l->bytes;
}

int vault_link_decode(const void *p, size_t len, struct vault_link *l)
{
    struct vr r = vr_init(p, len);
    memset(l, 0, sizeof(*l));
    const uint8_t *m = vr_bytes(&r, sizeof(link_magic));
    uint32_t version = vr_u32(&r);
    if (r.bad || memcmp(m, link_magic, sizeof(link_magic)) || !version)
        return -EBADMSG;
    if (version > VAULT_FORMAT)
        return -EPROTONOSUPPORT;
    l->kind = vr_u8(&r);
    l->from_epoch = vr_u64(&r);
    l->to_epoch = vr_u64(&r);
    const uint8_t *prev = vr_bytes(&r, VC_ID);
    if (prev)
        memcpy(l->prev, prev, VC_ID);
    l->depth = vr_u32(&r);
    l->bytes = vr_u64(&r);
    l->chain_bytes = vr_u64(&r);
    l->full_bytes = vr_u64(&r);
    l->records = vr_u64(&r);
    l->nchunks = vr_u32(&r);
    if (r.bad || !link_consistent(l) || l->nchunks > VAULT_CHUNKS_MAX ||
        r.left != (size_t)l->nchunks * VC_ID)
        return -EBADMSG;
    l->chunks = malloc((size_t)l->nchunks * VC_ID + 1);
    if (!l->chunks)
        return -ENOMEM;
    memcpy(l->chunks, vr_bytes(&r, r.left), (size_t)l->nchunks * VC_ID);
    return 0;
}

void vault_link_free(struct vault_link *l)
{
    free(l->chunks);
    l->chunks = NULL;
}

/* ---- chunks ---- */

int vault_chunker_add(struct vault_chunker *c, const void *p, size_t n)
{
    const uint8_t *b = p;
    c->bytes += n;
    while (n) {
        size_t take = VAULT_CHUNK - c->buf.len;
        if (take > n)
            take = n;
        vw_bytes(&c->buf, b, take);
        if (c->buf.failed)
            return -ENOMEM;
        b += take;
        n -= take;
        if (c->buf.len == VAULT_CHUNK) {
            int rc = c->emit(c->arg, c->buf.p, c->buf.len);
            c->buf.len = 0;
            if (rc)
                return rc;
        }
    }
    return 0;
}

int vault_chunker_flush(struct vault_chunker *c)
{
    if (!c->buf.len)
        return 0;
    int rc = c->emit(c->arg, c->buf.p, c->buf.len);
    c->buf.len = 0;
    return rc;
}

void vault_chunker_free(struct vault_chunker *c)
{
    vw_free(&c->buf);
}

/* ---- frames ---- */

int vault_frames_feed(struct vault_frames *f, const void *p, size_t n,
                      vault_frame_cb cb, void *arg)
{
    if (f->off) { /* drop what was handed on */
        memmove(f->buf.p, f->buf.p + f->off, f->buf.len - f->off);
        f->buf.len -= f->off;
        f->off = 0;
    }
    vw_bytes(&f->buf, p, n);
    if (f->buf.failed)
        return -ENOMEM;
    while (f->buf.len - f->off >= 8) {
        const uint8_t *at = f->buf.p + f->off;
        size_t size = sfs_stream_frame_size(at);
        if (!size)
            return -EBADMSG;
        if (f->buf.len - f->off < size)
            break;
        struct sfs_stream_frame fr;
        int rc = sfs_stream_frame_parse(at, size, &fr);
        if (!rc)
            rc = cb(arg, &fr);
        if (rc)
            return rc;
        f->off += size;
    }
    return 0;
}

int vault_frames_end(struct vault_frames *f)
{
    return f->buf.len == f->off ? 0 : -EBADMSG;
}

void vault_frames_free(struct vault_frames *f)
{
    vw_free(&f->buf);
    f->off = 0;
}
