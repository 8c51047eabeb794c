/*
 * pack.c - sealed objects, blobs and packs (see format.h).
 *
 * A pack is written once and never changed:
 *
 *   blob 1 | blob 2 | ... | blob N | seal(trailer) | u32 sealed length
 *
 * Each blob is seal(codec u8 | lsize u32 | stored bytes) with additional
 * data "snapfs-vault blob" | type | id, so a blob moved under another id,
 * or a data blob read as metadata, fails to open.  The trailer lists
 * every blob (type, id, offset, length, lsize) and is sealed with
 * additional data "snapfs-vault pack"; the pack's name is the SHA-256 of
 * all its bytes, so a listing of the object store says which packs are
 * whole, and a pack's blobs can be found again from its trailer alone
 * (a backup interrupted between a pack and its index, see repo.c).
 *
 * Guarantees: blobs cover the pack before the trailer exactly, in order,
 * or the trailer is refused (-EBADMSG); a blob decodes only to bytes whose
 * keyed hash is its id; nothing here reads outside the bytes it is given.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "format.h"

#define OBJ_AAD "snapfs-vault "
#define BLOB_AAD "snapfs-vault blob"
#define TRAILER_AAD "snapfs-vault pack"
#define ZSTD_LEVEL 3

/* ---- whole objects ---- */

static size_t obj_aad(const char *type, char *aad, size_t cap)
{
    int n = snprintf(aad, cap, "%s%s", OBJ_AAD, type);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

int vault_obj_seal(const struct vault_keys *k, const char *type,
                   const void *plain, size_t len, struct vw *out)
{
    char aad[64];
    size_t alen = obj_aad(type, aad, sizeof(aad));
    uint8_t *sealed = vw_reserve(out, len + VC_OVERHEAD);
    if (!alen || !sealed)
        return alen ? -ENOMEM : -EINVAL;
    int rc = vc_seal(k->enc, aad, alen, plain, len, sealed);
    if (!rc)
        vw_commit(out, len + VC_OVERHEAD);
    return rc;
}

int vault_obj_open(const struct vault_keys *k, const char *type,
                   const void *obj, size_t len, uint8_t **plain,
                   size_t *plen)
{
    char aad[64];
    size_t alen = obj_aad(type, aad, sizeof(aad));
    if (!alen)
        return -EINVAL;
    if (len < VC_OVERHEAD)
        return -EBADMSG;
    uint8_t *p = malloc(len - VC_OVERHEAD + 1);
    if (!p)
        return -ENOMEM;
    int rc = vc_open(k->enc, aad, alen, obj, len, p);
    if (rc) {
        free(p);
        return rc;
    }
    *plain = p;
    *plen = len - VC_OVERHEAD;
    return 0;
}

/* ---- blobs ---- */

/*
 * THEORY: how blocks are stored in the vault (vault_codec_pack).
 *
 * A volume compresses its blocks for speed (zstd level 1 by default, and
 * blocks of 4 KiB or less, or that save less than a page, not at all); a
 * vault is written once and kept for years, so it stores them smaller:
 * each block the volume compressed is decoded and compressed again at
 * the vault's level (VAULT_DATA_LEVEL), and the smaller of the two forms
 * kept.  Blocks the volume stored raw are compressed too, unless a sample
 * of them (the volume's own test, sfs_looks_incompressible: 4 KiB from
 * 8 places) does not shrink at level 1 - random data and media, already
 * compressed, cost a sample, not a compression.  The
 * codec stays zstd (one decoder reads every level), so the format is the
 * same: vaults written before read as they did, and restore, check,
 * restore-file and prune need nothing new.  A restore hands the vault's
 * zstd bytes to the new volume as they are (its receiver decodes and
 * checks them against the block's hash), so the restored volume keeps
 * the smaller form too.  The cost is backup CPU: zstd's higher levels
 * compress 64 KiB blocks several times slower than level 1; decoding
 * costs the same whatever the level, so restores are not slower.
 * Every block is checked against its SHA-256 on the way (it is decoded
 * anyway): a block the volume holds damaged is refused by the backup,
 * not stored for a restore to find.
 */
/* zstd's search depth (log2) beside the level: level 6 searches 8
 * candidates in 64 KiB blocks; 16 stored the benchmark's compressible
 * files 0.75% smaller at the same speed (levels 7 and 8 cost more) */
#define VAULT_SEARCH_LOG 4

struct vault_codec {
    struct sfs_codec_ctx *sample;  /* the volume's sampler's context */
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    uint8_t *plain;    /* a decoded block */
    size_t plain_cap;
};

struct vault_codec *vault_codec_new(int level)
{
    struct vault_codec *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->sample = sfs_codec_ctx_new();
    c->cctx = ZSTD_createCCtx();
    c->dctx = ZSTD_createDCtx();
    if (!c->sample || !c->cctx || !c->dctx ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel,
                                            level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_searchLog,
                                            VAULT_SEARCH_LOG))) {
        vault_codec_free(c);
        return NULL;
    }
    return c;
}

void vault_codec_free(struct vault_codec *c)
{
    if (!c)
        return;
    sfs_codec_ctx_free(c->sample);
    ZSTD_freeCCtx(c->cctx);
    ZSTD_freeDCtx(c->dctx);
    free(c->plain);
    free(c);
}

/* PLAIN (LEN bytes) at the codec's level into OUT: its size, or 0 when
 * that does not beat LIMIT bytes. */
static size_t compress_below(struct vault_codec *c, const void *plain,
                             uint32_t len, size_t limit, struct vw *out)
{
    size_t bound = ZSTD_compressBound(len);
    out->len = 0;
    uint8_t *dst = vw_reserve(out, bound);
    if (!dst)
        return 0;
    size_t n = ZSTD_compress2(c->cctx, dst, bound, plain, len);
    if (ZSTD_isError(n) || n >= limit)
        return 0;
    vw_commit(out, n);
    return n;
}

/* IN (zstd) decoded into the codec's buffer: 0 or -EBADMSG. */
static int decode_zstd(struct vault_codec *c, const struct vault_stored *in)
{
    if (in->lsize > VAULT_BLOB_LSIZE_MAX)
        return -EBADMSG;
    if (c->plain_cap < in->lsize) {
        uint8_t *p = realloc(c->plain, in->lsize);
        if (!p)
            return -ENOMEM;
        c->plain = p;
        c->plain_cap = in->lsize;
    }
    size_t n = ZSTD_decompressDCtx(c->dctx, c->plain, in->lsize, in->bytes,
                                   in->csize);
    return ZSTD_isError(n) || n != in->lsize ? -EBADMSG : 0;
}

/* Are LEN bytes of P the block whose SHA-256 is SHA? */
static bool is_block(const void *p, uint32_t len, const uint8_t *sha)
{
    uint8_t h[VC_ID];
    vc_sha256(p, len, h);
    return !memcmp(h, sha, VC_ID);
}

int vault_codec_pack(struct vault_codec *c, const uint8_t sha[VC_ID],
                     const struct vault_stored *in, struct vw *out,
                     struct vault_stored *s)
{
    *s = *in;
    size_t n = 0;
    if (in->codec == SFS_CODEC_ZSTD) {
        int rc = decode_zstd(c, in);
        if (rc || !is_block(c->plain, in->lsize, sha))
            return rc ? rc : -EBADMSG;
        n = compress_below(c, c->plain, in->lsize, in->csize, out);
    } else if (in->codec == SFS_CODEC_NONE && in->csize == in->lsize &&
               in->lsize <= VAULT_BLOB_LSIZE_MAX) {
        if (!is_block(in->bytes, in->lsize, sha))
            return -EBADMSG;
        if (!sfs_looks_incompressible(c->sample, in->bytes, in->lsize, 1))
            n = compress_below(c, in->bytes, in->lsize,
                               in->lsize - in->lsize / 8, out);
    } else {
        return -EBADMSG;
    }
    if (out->failed)
        return -ENOMEM;
    if (n) {
        s->codec = SFS_CODEC_ZSTD;
        s->bytes = out->p;
        s->csize = (uint32_t)n;
    }
    return 0;
}

int vault_compress(const void *plain, uint32_t len, struct vw *out,
                   struct vault_stored *s)
{
    size_t bound = ZSTD_compressBound(len);
    uint8_t *dst = vw_reserve(out, bound);
    if (!dst)
        return -ENOMEM;
    size_t n = ZSTD_compress(dst, bound, plain, len, ZSTD_LEVEL);
    s->lsize = len;
    if (!ZSTD_isError(n) && n < (size_t)len - len / 8) {
        vw_commit(out, n);
        s->codec = SFS_CODEC_ZSTD;
        s->bytes = dst;
        s->csize = (uint32_t)n;
    } else {
        s->codec = SFS_CODEC_NONE;
        s->bytes = plain;
        s->csize = len;
    }
    return 0;
}

int vault_stored_decode(const struct vault_keys *k, const uint8_t *id,
                        const struct vault_stored *s, void *plain,
                        uint8_t *sha)
{
    if (s->lsize > VAULT_BLOB_LSIZE_MAX)
        return -EBADMSG;
    if (s->codec == SFS_CODEC_ZSTD) {
        size_t n = ZSTD_decompress(plain, s->lsize, s->bytes, s->csize);
        if (ZSTD_isError(n) || n != s->lsize)
            return -EBADMSG;
    } else if (s->codec == SFS_CODEC_NONE && s->csize == s->lsize) {
        memcpy(plain, s->bytes, s->lsize);
    } else {
        return -EBADMSG;
    }
    uint8_t h[VC_ID], want[VC_ID];
    vc_sha256(plain, s->lsize, h);
    vc_blob_id(k, h, want);
    if (memcmp(want, id, VC_ID))
        return -EBADMSG;
    if (sha)
        memcpy(sha, h, VC_ID);
    return 0;
}

static void blob_aad(uint8_t type, const uint8_t *id, uint8_t *aad)
{
    memcpy(aad, BLOB_AAD, sizeof(BLOB_AAD) - 1);
    aad[sizeof(BLOB_AAD) - 1] = type;
    memcpy(aad + sizeof(BLOB_AAD), id, VC_ID);
}
#define BLOB_AAD_LEN (sizeof(BLOB_AAD) + VC_ID)

size_t vault_blob_size(uint32_t csize)
{
    return 5 + (size_t)csize + VC_OVERHEAD;
}

int vault_blob_seal(const struct vault_keys *k, uint8_t type,
                    const uint8_t id[VC_ID], const struct vault_stored *s,
                    struct vw *out)
{
    uint8_t *sealed = vw_reserve(out, vault_blob_size(s->csize));
    if (!sealed)
        return -ENOMEM;
    uint8_t head[5], aad[BLOB_AAD_LEN];
    head[0] = s->codec;
    vault_put_be32(head + 1, s->lsize);
    blob_aad(type, id, aad);
    /* the header and the stored bytes sealed as one message, in place */
    int rc = vc_seal2(k->enc, aad, sizeof(aad), head, sizeof(head), s->bytes,
                      s->csize, sealed);
    if (!rc)
        vw_commit(out, vault_blob_size(s->csize));
    return rc;
}

int vault_blob_open(const struct vault_keys *k, uint8_t type,
                    const uint8_t id[VC_ID], const void *sealed, size_t len,
                    uint8_t **plain, struct vault_stored *s)
{
    if (len < vault_blob_size(0) || len > vault_blob_size(VAULT_BLOB_LSIZE_MAX))
        return -EBADMSG;
    uint8_t *p = malloc(len - VC_OVERHEAD);
    if (!p)
        return -ENOMEM;
    uint8_t aad[BLOB_AAD_LEN];
    blob_aad(type, id, aad);
    int rc = vc_open(k->enc, aad, sizeof(aad), sealed, len, p);
    if (rc) {
        free(p);
        return rc;
    }
    s->codec = p[0];
    s->lsize = vault_get_be32(p + 1);
    s->bytes = p + 5;
    s->csize = (uint32_t)(len - VC_OVERHEAD - 5);
    *plain = p;
    return 0;
}

/* ---- packs ---- */

void vault_entry_write(struct vw *w, const struct vault_pack_entry *e)
{
    vw_u8(w, e->type);
    vw_bytes(w, e->id, VC_ID);
    vw_u32(w, e->offset);
    vw_u32(w, e->length);
    vw_u32(w, e->lsize);
}

void vault_entry_read(struct vr *r, struct vault_pack_entry *e)
{
    e->type = vr_u8(r);
    const uint8_t *id = vr_bytes(r, VC_ID);
    if (id)
        memcpy(e->id, id, VC_ID);
    e->offset = vr_u32(r);
    e->length = vr_u32(r);
    e->lsize = vr_u32(r);
}

/* Room for a blob of LENGTH sealed bytes. */
static int packer_room(struct vault_packer *p, size_t length)
{
    if (vault_grow(&p->ents, &p->cap, p->n, sizeof(*p->ents)))
        return -ENOMEM;
    return p->buf.len + length > UINT32_MAX - VAULT_TRAILER_MAX ? -EFBIG : 0;
}

/* The blob just appended at AT is entry N. */
static void packer_entry(struct vault_packer *p, uint8_t type,
                         const uint8_t id[VC_ID], size_t at, uint32_t lsize)
{
    struct vault_pack_entry *e = &p->ents[p->n++];
    e->type = type;
    memcpy(e->id, id, VC_ID);
    e->offset = (uint32_t)at;
    e->length = (uint32_t)(p->buf.len - at);
    e->lsize = lsize;
    p->lsize += lsize;
}

int vault_packer_add(struct vault_packer *p, const struct vault_keys *k,
                     uint8_t type, const uint8_t id[VC_ID],
                     const struct vault_stored *s)
{
    size_t at = p->buf.len;
    int rc = packer_room(p, vault_blob_size(s->csize));
    if (!rc)
        rc = vault_blob_seal(k, type, id, s, &p->buf);
    if (!rc)
        packer_entry(p, type, id, at, s->lsize);
    return rc;
}

int vault_packer_add_sealed(struct vault_packer *p,
                            const struct vault_pack_entry *e,
                            const uint8_t *sealed)
{
    size_t at = p->buf.len;
    int rc = packer_room(p, e->length);
    if (!rc)
        vw_bytes(&p->buf, sealed, e->length);
    if (!rc && p->buf.failed)
        rc = -ENOMEM;
    if (!rc)
        packer_entry(p, e->type, e->id, at, e->lsize);
    return rc;
}

int vault_packer_finish(struct vault_packer *p, const struct vault_keys *k,
                        uint8_t pack_id[VC_ID])
{
    struct vw t = { 0 };
    vw_u32(&t, (uint32_t)p->n);
    for (size_t i = 0; i < p->n; i++)
        vault_entry_write(&t, &p->ents[i]);
    size_t before = p->buf.len;
    int rc = t.failed ? -ENOMEM
                      : vault_obj_seal(k, "pack", t.p, t.len, &p->buf);
    vw_free(&t);
    if (!rc) {
        uint8_t len[4];
        vault_put_be32(len, (uint32_t)(p->buf.len - before));
        vw_bytes(&p->buf, len, 4);
        rc = p->buf.failed ? -ENOMEM : 0;
    }
    if (!rc)
        vc_sha256(p->buf.p, p->buf.len, pack_id);
    return rc;
}

uint64_t vault_packer_size_with(const struct vault_packer *p, size_t blob_len)
{
    uint64_t n = p->n + (blob_len ? 1 : 0);
    return (uint64_t)p->buf.len + blob_len + 4 + n * VAULT_ENTRY_BYTES +
           VC_OVERHEAD + 4;
}

void vault_packer_reset(struct vault_packer *p)
{
    p->buf.len = 0;
    p->buf.failed = false;
    p->n = 0;
    p->lsize = 0;
}

void vault_packer_free(struct vault_packer *p)
{
    vw_free(&p->buf);
    free(p->ents);
    memset(p, 0, sizeof(*p));
}

int vault_trailer_len(const uint8_t last4[4], uint64_t pack_size,
                      uint32_t *len)
{
    *len = vault_get_be32(last4);
    if (*len < VC_OVERHEAD + 4 || *len > VAULT_TRAILER_MAX ||
        (uint64_t)*len + 4 > pack_size)
        return -EBADMSG;
    return 0;
}

/* The entries must cover [0, END) blob after blob. */
static int entries_parse(struct vr *r, uint64_t end,
                         struct vault_pack_entry *ents, size_t n)
{
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        struct vault_pack_entry *e = &ents[i];
        vault_entry_read(r, e);
        if (r->bad || e->offset != at || !e->type || e->type > VB_TYPE_MAX ||
            e->length < vault_blob_size(0) || e->lsize > VAULT_BLOB_LSIZE_MAX)
            return -EBADMSG;
        at += e->length;
    }
    return at == end && vr_done(r) ? 0 : -EBADMSG;
}

int vault_trailer_open(const struct vault_keys *k, const void *trailer,
                       size_t len, uint64_t pack_size,
                       struct vault_pack_entry **ents, size_t *n)
{
    uint8_t *plain;
    size_t plen;
    if (len + 4 > pack_size)
        return -EBADMSG;
    int rc = vault_obj_open(k, "pack", trailer, len, &plain, &plen);
    if (rc)
        return rc;
    struct vr r = vr_init(plain, plen);
    uint32_t count = vr_u32(&r);
    struct vault_pack_entry *e = NULL;
    if (r.bad || count > r.left / VAULT_ENTRY_BYTES || count == 0)
        rc = -EBADMSG;
    else if (!(e = calloc(count, sizeof(*e))))
        rc = -ENOMEM;
    else
        rc = entries_parse(&r, pack_size - 4 - len, e, count);
    free(plain);
    if (rc) {
        free(e);
        return rc;
    }
    *ents = e;
    *n = count;
    return 0;
}
