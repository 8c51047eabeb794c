/*
 * test_vault_pack.c - the vault's objects round trip and every damage is
 * detected.  Checked: blobs open to their stored form and decode to bytes
 * whose keyed hash is their id, and a blob read under another id or type
 * is -EBADMSG; a pack's trailer lists its blobs at their places, and a
 * flipped byte anywhere in a pack is detected (in its blob, or its
 * trailer: -EBADMSG), as is a truncated pack; the index in memory finds
 * 200,000 blobs, keeps the first place of a blob listed twice, and tells
 * packs apart; index objects and manifests round trip and a flipped byte
 * in either is -EBADMSG, a newer manifest -EPROTONOSUPPORT; chain links
 * round trip and inconsistent ones are refused; the vault's codec stores a
 * volume's level-1 block smaller and decodable to it, keeps random data
 * as it is, compresses small blocks a volume keeps raw, and refuses a
 * block that is damaged, cut, of another hash or codec (-EBADMSG); a
 * stream cut into chunks
 * splits back into the same frames whatever the cut, and bytes that are
 * no frame are -EBADMSG.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "check.h"
#include "../../tools/vault/format.h"

static struct vault_keys keys;

/* A data blob's id and stored form of LEN bytes of PLAIN. */
static void make_block(const void *plain, uint32_t len, struct vw *buf,
                       struct vault_stored *s, uint8_t id[VC_ID])
{
    uint8_t sha[VC_ID];
    vc_sha256(plain, len, sha);
    vc_blob_id(&keys, sha, id);
    CHECK_RC(vault_compress(plain, len, buf, s));
}

static void test_blobs(void)
{
    uint8_t plain[65536], id[VC_ID], other[VC_ID], back[65536];
    memset(plain, 'a', sizeof(plain));
    struct vw cbuf = { 0 }, sealed = { 0 };
    struct vault_stored s;
    make_block(plain, sizeof(plain), &cbuf, &s, id);
    CHECK(s.codec == SFS_CODEC_ZSTD && s.csize < 1000,
          "a compressible block is compressed (%u bytes)", s.csize);
    CHECK_RC(vault_blob_seal(&keys, VB_DATA, id, &s, &sealed));
    CHECK(sealed.len == vault_blob_size(s.csize), "the sealed size");
    uint8_t *p;
    struct vault_stored got;
    CHECK(vault_blob_open(&keys, VB_DATA, id, sealed.p, sealed.len, &p,
                          &got) == 0, "the blob opens");
    CHECK(vault_stored_decode(&keys, id, &got, back, NULL) == 0 &&
          !memcmp(back, plain, sizeof(plain)), "and decodes to the block");
    free(p);
    memcpy(other, id, VC_ID);
    other[31] ^= 1;
    CHECK(vault_blob_open(&keys, VB_DATA, other, sealed.p, sealed.len, &p,
                          &got) == -EBADMSG, "not under another id");
    CHECK(vault_blob_open(&keys, VB_META, id, sealed.p, sealed.len, &p,
                          &got) == -EBADMSG, "not as another type");
    CHECK(vault_stored_decode(&keys, other, &s, back, NULL) == -EBADMSG,
          "a stored form whose keyed hash is not the id is refused");
    uint8_t rnd[5000];
    CHECK_RC(vc_random(rnd, sizeof(rnd)));
    cbuf.len = 0;
    make_block(rnd, sizeof(rnd), &cbuf, &s, id);
    CHECK(s.codec == SFS_CODEC_NONE && s.bytes == rnd,
          "an incompressible block is kept as it is");
    vw_free(&cbuf);
    vw_free(&sealed);
}

/* LEN bytes of text-like data (words from a small vocabulary, numbers). */
static void make_text(uint8_t *p, size_t len, unsigned seed)
{
    static const char *const words[] = { "vault", "snapshot", "block",
        "pack", "index", "restore", "backup", "the", "of", "a", "volume",
        "GET /api/v1/items", "200", "INFO", "WARN" };
    size_t at = 0;
    while (at < len) {
        seed = seed * 1103515245 + 12345;
        int n = snprintf((char *)p + at, len - at, "%s %u ",
                         words[(seed >> 16) % 15], (seed >> 8) % 1000);
        at += n > 0 ? (size_t)n : len;
    }
}

/* What a volume stores for a block: zstd at level 1. */
static struct vault_stored volume_block(const uint8_t *plain, uint32_t len,
                                        uint8_t *buf, size_t cap)
{
    size_t n = ZSTD_compress(buf, cap, plain, len, 1);
    CHECK(!ZSTD_isError(n) && n < len, "the volume compresses the block");
    return (struct vault_stored){ SFS_CODEC_ZSTD, len, buf, (uint32_t)n };
}

/* S decodes to PLAIN (LEN bytes) as the data blob of SHA. */
static bool decodes_to(const struct vault_stored *s, const uint8_t *plain,
                       uint32_t len, const uint8_t sha[VC_ID])
{
    uint8_t id[VC_ID], *back = malloc(len);
    vc_blob_id(&keys, sha, id);
    bool ok = back && vault_stored_decode(&keys, id, s, back, NULL) == 0 &&
              !memcmp(back, plain, len);
    free(back);
    return ok;
}

/* The vault's codec: smaller, decodable, checked against the hash. */
static void test_codec(void)
{
    enum { LEN = 65536 };
    static uint8_t text[LEN], rnd[LEN], zbuf[LEN + 1024], bad[LEN + 1024];
    uint8_t sha[VC_ID], rsha[VC_ID];
    struct vault_codec *c = vault_codec_new(6);
    CHECK(c != NULL, "a codec");
    struct vw out = { 0 };
    struct vault_stored s;

    make_text(text, LEN, 7);
    vc_sha256(text, LEN, sha);
    struct vault_stored in = volume_block(text, LEN, zbuf, sizeof(zbuf));
    CHECK_RC(vault_codec_pack(c, sha, &in, &out, &s));
    CHECK(s.codec == SFS_CODEC_ZSTD && s.csize < in.csize,
          "a level-1 block is stored smaller (%u < %u bytes)", s.csize,
          in.csize);
    CHECK(decodes_to(&s, text, LEN, sha), "and decodes to the block");

    CHECK_RC(vc_random(rnd, LEN));
    vc_sha256(rnd, LEN, rsha);
    struct vault_stored raw = { SFS_CODEC_NONE, LEN, rnd, LEN };
    CHECK_RC(vault_codec_pack(c, rsha, &raw, &out, &s));
    CHECK(s.codec == SFS_CODEC_NONE && s.bytes == rnd && s.csize == LEN,
          "random data stays as it is");
    CHECK(decodes_to(&s, rnd, LEN, rsha), "and decodes to the block");

    uint8_t small[3000], ssha[VC_ID];
    make_text(small, sizeof(small), 9);
    vc_sha256(small, sizeof(small), ssha);
    struct vault_stored sraw = { SFS_CODEC_NONE, sizeof(small), small,
                                 sizeof(small) };
    CHECK_RC(vault_codec_pack(c, ssha, &sraw, &out, &s));
    CHECK(s.codec == SFS_CODEC_ZSTD && s.csize < sizeof(small) / 2,
          "a small text block the volume keeps raw is compressed (%u)",
          s.csize);
    CHECK(decodes_to(&s, small, sizeof(small), ssha), "and decodes back");

    /* damage: a flipped byte, a cut, another block's hash, a codec */
    memcpy(bad, in.bytes, in.csize);
    struct vault_stored d = in;
    d.bytes = bad;
    bad[in.csize / 2] ^= 0x10;
    CHECK(vault_codec_pack(c, sha, &d, &out, &s) == -EBADMSG,
          "a damaged block is refused");
    memcpy(bad, in.bytes, in.csize);
    d.csize = in.csize - 10;
    CHECK(vault_codec_pack(c, sha, &d, &out, &s) == -EBADMSG,
          "a truncated block is refused");
    CHECK(vault_codec_pack(c, rsha, &in, &out, &s) == -EBADMSG,
          "a block under another hash is refused");
    CHECK(vault_codec_pack(c, sha, &raw, &out, &s) == -EBADMSG,
          "a raw block under another hash is refused");
    d = in;
    d.codec = 7;
    CHECK(vault_codec_pack(c, sha, &d, &out, &s) == -EBADMSG,
          "an unknown codec is refused");
    d = raw;
    d.csize = LEN - 1;
    CHECK(vault_codec_pack(c, rsha, &d, &out, &s) == -EBADMSG,
          "a raw block whose sizes differ is refused");
    vw_free(&out);
    vault_codec_free(c);
}

/* A pack of N blocks of random (half compressible) bytes. */
static void fill_pack(struct vault_packer *pk, int n, uint8_t ids[][VC_ID],
                      uint8_t (*blocks)[4096])
{
    for (int i = 0; i < n; i++) {
        CHECK_RC(vc_random(blocks[i], 4096));
        if (i % 2)
            memset(blocks[i], i, 2048);
        struct vw buf = { 0 };
        struct vault_stored s;
        make_block(blocks[i], 4096, &buf, &s, ids[i]);
        CHECK_RC(vault_packer_add(pk, &keys, VB_DATA, ids[i], &s));
        vw_free(&buf);
    }
}

/* Open the pack's trailer as a reader of the object store would. */
static int read_trailer(const uint8_t *pack, size_t size,
                        struct vault_pack_entry **ents, size_t *n)
{
    uint32_t tlen;
    int rc = vault_trailer_len(pack + size - 4, size, &tlen);
    if (rc)
        return rc;
    return vault_trailer_open(&keys, pack + size - 4 - tlen, tlen, size, ents,
                              n);
}

/* Every blob of the pack opens and decodes: 0, or the first error. */
static int read_blobs(const uint8_t *pack, const struct vault_pack_entry *e,
                      size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t *p, back[4096];
        struct vault_stored s;
        int rc = vault_blob_open(&keys, e[i].type, e[i].id,
                                 pack + e[i].offset, e[i].length, &p, &s);
        if (rc)
            return rc;
        rc = s.lsize == 4096 ? vault_stored_decode(&keys, e[i].id, &s, back,
                                                   NULL)
                             : -EBADMSG;
        free(p);
        if (rc)
            return rc;
    }
    return 0;
}

static void test_packs(void)
{
    enum { N = 40 };
    static uint8_t blocks[N][4096], ids[N][VC_ID];
    struct vault_packer pk = { 0 };
    fill_pack(&pk, N, ids, blocks);
    uint64_t foretold = vault_packer_size_with(&pk, 0);
    CHECK(vault_packer_size_with(&pk, 1000) ==
              foretold + 1000 + VAULT_ENTRY_BYTES,
          "one more blob adds its bytes and an entry of the trailer");
    uint8_t pack_id[VC_ID], sha[VC_ID];
    CHECK_RC(vault_packer_finish(&pk, &keys, pack_id));
    CHECK(pk.buf.len == foretold, "a pack is as large as foretold "
          "(%zu, %llu), trailer included", pk.buf.len,
          (unsigned long long)foretold);
    vc_sha256(pk.buf.p, pk.buf.len, sha);
    CHECK(!memcmp(sha, pack_id, VC_ID), "a pack is named by its SHA-256");
    struct vault_pack_entry *e;
    size_t n;
    CHECK(read_trailer(pk.buf.p, pk.buf.len, &e, &n) == 0 && n == N,
          "the trailer lists every blob");
    bool same = true;
    for (size_t i = 0; i < n; i++)
        same &= !memcmp(e[i].id, ids[i], VC_ID) && e[i].lsize == 4096;
    CHECK(same, "in order, with their sizes");
    CHECK(read_blobs(pk.buf.p, e, n) == 0, "every blob opens and decodes");
    free(e);
    CHECK(!memmem(pk.buf.p, pk.buf.len, blocks[0] + 100, 32),
          "no plaintext in the pack");
    int detected = 0, tried = 0;
    for (size_t at = 0; at < pk.buf.len; at += 211, tried++) {
        pk.buf.p[at] ^= 0x04;
        int rc = read_trailer(pk.buf.p, pk.buf.len, &e, &n);
        if (!rc) {
            rc = read_blobs(pk.buf.p, e, n);
            free(e);
        }
        detected += rc == -EBADMSG;
        pk.buf.p[at] ^= 0x04;
    }
    CHECK(detected == tried, "a flipped byte anywhere is -EBADMSG (%d of %d)",
          detected, tried);
    CHECK(read_trailer(pk.buf.p, pk.buf.len - 100, &e, &n) == -EBADMSG,
          "a truncated pack is -EBADMSG");
    CHECK(read_trailer(pk.buf.p + 100, pk.buf.len - 100, &e, &n) ==
          -EBADMSG, "a pack missing its head is -EBADMSG");
    vault_packer_reset(&pk);
    CHECK(pk.buf.len == 0 && pk.n == 0, "a packer starts again empty");
    vault_packer_free(&pk);
}

static void test_index_memory(void)
{
    struct vault_index *x = vault_index_new();
    enum { N = 200000 };
    uint8_t pid[VC_ID], id[VC_ID];
    uint32_t p0, p1, again;
    CHECK_RC(vc_random(pid, VC_ID));
    CHECK_RC(vault_index_pack(x, pid, 1000, &p0));
    pid[0] ^= 1;
    CHECK_RC(vault_index_pack(x, pid, 2000, &p1));
    CHECK(p0 != p1 && vault_index_npacks(x) == 2, "two packs");
    CHECK(vault_index_pack(x, pid, 2000, &again) == 0 && again == p1,
          "a pack added again keeps its number");
    CHECK(vault_index_pack_size(x, p1) == 2000, "and its size");
    int added = 0;
    for (uint32_t i = 0; i < N; i++) {
        memset(id, 0, VC_ID);
        uint8_t sha[VC_ID];
        vc_sha256(&i, sizeof(i), sha);
        vc_blob_id(&keys, sha, id);
        struct vault_loc loc = { i % 2 ? p1 : p0, i, 100, 4096, VB_DATA };
        added += vault_index_add(x, id, &loc) == 1;
    }
    CHECK(added == N && vault_index_count(x) == N, "200000 blobs added");
    int found = 0;
    for (uint32_t i = 0; i < N; i++) {
        uint8_t sha[VC_ID];
        vc_sha256(&i, sizeof(i), sha);
        vc_blob_id(&keys, sha, id);
        const struct vault_loc *l = vault_index_find(x, id);
        found += l && l->offset == i && l->pack == (i % 2 ? p1 : p0);
    }
    CHECK(found == N, "every one found at its place (%d)", found);
    struct vault_loc dup = { p1, 7, 7, 7, VB_DATA };
    CHECK(vault_index_add(x, id, &dup) == 0 &&
          vault_index_find(x, id)->offset == N - 1,
          "a blob listed twice keeps its first place");
    id[0] ^= 0xff;
    CHECK(!vault_index_find(x, id), "an unknown id is not found");
    vault_index_free(x);
}

struct collect {
    struct vault_index *x;
    int packs;
};

static int collect_cb(void *arg, const struct vault_pack_desc *p)
{
    struct collect *c = arg;
    c->packs++;
    return vault_index_add_pack(c->x, p);
}

static void test_index_objects(void)
{
    struct vault_pack_entry ents[3] = {
        { VB_DATA, { 1 }, 0, 100, 4096 },
        { VB_META, { 2 }, 100, 200, 1 << 20 },
        { VB_CHAIN, { 3 }, 300, 50, 90 },
    };
    struct vault_pack_desc packs[2] = {
        { { 0xaa }, 400, ents, 2 },
        { { 0xbb }, 400, ents + 2, 1 },
    };
    struct vw obj = { 0 };
    CHECK_RC(vault_index_encode(&keys, packs, 2, &obj));
    struct collect c = { vault_index_new(), 0 };
    CHECK(vault_index_decode(&keys, obj.p, obj.len, collect_cb, &c) == 0 &&
          c.packs == 2 && vault_index_count(c.x) == 3,
          "an index object lists its packs and blobs");
    uint8_t id2[VC_ID] = { 2 };
    const struct vault_loc *l = vault_index_find(c.x, id2);
    CHECK(l && l->type == VB_META && l->offset == 100 && l->length == 200 &&
          !memcmp(vault_index_pack_id(c.x, l->pack), packs[0].id, VC_ID),
          "a blob's place reads back");
    vault_index_free(c.x);
    int detected = 0;
    for (size_t at = 0; at < obj.len; at++) {
        obj.p[at] ^= 0x80;
        c.x = vault_index_new();
        detected += vault_index_decode(&keys, obj.p, obj.len, collect_cb,
                                       &c) == -EBADMSG;
        vault_index_free(c.x);
        obj.p[at] ^= 0x80;
    }
    CHECK(detected == (int)obj.len, "a flipped byte in an index object is "
          "-EBADMSG (%d of %zu)", detected, obj.len);
    vw_free(&obj);
    ents[1].offset = 390; /* past the pack's end */
    CHECK_RC(vault_index_encode(&keys, packs, 1, &obj));
    c.x = vault_index_new();
    CHECK(vault_index_decode(&keys, obj.p, obj.len, collect_cb, &c) ==
          -EBADMSG, "a blob outside its pack is refused");
    vault_index_free(c.x);
    vw_free(&obj);
}

static void sample_manifest(struct vault_manifest *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "daily.2026-01-02_0010");
    m->ctime_sec = 1767312600;
    m->ctime_nsec = 5;
    m->epoch = 12;
    memset(m->volume, 0x5a, 16);
    m->nlabels = 2;
    vault_label_of(m->name, m->labels[0]);
    snprintf(m->labels[1], sizeof(m->labels[1]), "keep");
    m->backup_time = 1767312700;
    snprintf(m->host, sizeof(m->host), "nas1");
    m->base_epoch = 9;
    m->block_size = 65536;
    m->codec = SFS_CODEC_ZSTD;
    m->codec_level = 3;
    m->volume_size = 1ull << 30;
    m->next_ino = 77;
    m->logical = 123456;
    m->files = 10;
    m->added = 4096;
    m->stored = 5000;
    memset(m->link, 0x33, VC_ID);
    m->depth = 3;
    m->chain_bytes = 900;
    m->full_bytes = 10000;
}

static void test_manifests(void)
{
    struct vault_manifest m, got;
    sample_manifest(&m);
    CHECK(!strcmp(m.labels[0], "daily"), "the label is the name's prefix");
    struct vw obj = { 0 };
    CHECK_RC(vault_manifest_encode(&keys, &m, &obj));
    CHECK(vault_manifest_decode(&keys, obj.p, obj.len, &got) == 0 &&
          !memcmp(&m, &got, sizeof(m)), "a manifest round trips");
    CHECK(!memmem(obj.p, obj.len, "daily", 5), "its name is not in the clear");
    int detected = 0;
    for (size_t at = 0; at < obj.len; at++) {
        obj.p[at] ^= 0x10;
        detected += vault_manifest_decode(&keys, obj.p, obj.len, &got) ==
                    -EBADMSG;
        obj.p[at] ^= 0x10;
    }
    CHECK(detected == (int)obj.len, "a flipped byte in a manifest is "
          "-EBADMSG (%d of %zu)", detected, obj.len);
    CHECK(vault_manifest_decode(&keys, obj.p, obj.len - 1, &got) == -EBADMSG,
          "a truncated manifest is -EBADMSG");
    vw_free(&obj);
    /* A newer manifest: sealed by hand with a higher version. */
    CHECK_RC(vault_manifest_encode(&keys, &m, &obj));
    uint8_t *plain;
    size_t plen;
    CHECK_RC(vault_obj_open(&keys, "snapshot", obj.p, obj.len, &plain, &plen));
    plain[11] = VAULT_FORMAT + 1;
    struct vw newer = { 0 };
    CHECK_RC(vault_obj_seal(&keys, "snapshot", plain, plen, &newer));
    CHECK(vault_manifest_decode(&keys, newer.p, newer.len, &got) ==
          -EPROTONOSUPPORT, "a newer manifest is -EPROTONOSUPPORT");
    free(plain);
    vw_free(&newer);
    vw_free(&obj);
    m.depth = 1; /* with a base: inconsistent */
    CHECK_RC(vault_manifest_encode(&keys, &m, &obj));
    CHECK(vault_manifest_decode(&keys, obj.p, obj.len, &got) == -EBADMSG,
          "an inconsistent manifest is refused");
    vw_free(&obj);
}

static void test_links(void)
{
    uint8_t chunks[3][VC_ID] = { { 1 }, { 2 }, { 3 } };
    struct vault_link l = { .kind = VAULT_LINK_INCR, .from_epoch = 3,
                            .to_epoch = 5, .prev = { 9 }, .depth = 2,
                            .bytes = 100, .chain_bytes = 100,
                            .full_bytes = 1000, .records = 7, .nchunks = 3,
                            .chunks = chunks },
                      got;
    struct vw w = { 0 };
    CHECK_RC(vault_link_encode(&l, &w));
    CHECK(vault_link_decode(w.p, w.len, &got) == 0 && got.nchunks == 3 &&
          !memcmp(got.chunks, chunks, sizeof(chunks)) && got.depth == 2 &&
          got.from_epoch == 3 && !memcmp(got.prev, l.prev, VC_ID),
          "a link round trips");
    vault_link_free(&got);
    CHECK(vault_link_decode(w.p, w.len - 1, &got) == -EBADMSG,
          "a short link is refused");
    vw_free(&w);
    l.kind = VAULT_LINK_FULL; /* a full link with a base */
    CHECK_RC(vault_link_encode(&l, &w));
    CHECK(vault_link_decode(w.p, w.len, &got) == -EBADMSG,
          "an inconsistent link is refused");
    vw_free(&w);
}

/* ---- chunks and frames ---- */

struct chunks {
    struct vw all;
    int n;
    size_t cut; /* re-feed in pieces of this size */
};

static int emit_cb(void *arg, const void *chunk, size_t len)
{
    struct chunks *c = arg;
    vw_bytes(&c->all, chunk, len);
    c->n++;
    return 0;
}

struct seen {
    uint64_t puts, kills, ends, bytes;
};

static int frame_cb(void *arg, const struct sfs_stream_frame *f)
{
    struct seen *s = arg;
    s->puts += f->type == SFS_FRAME_PUT;
    s->kills += f->type == SFS_FRAME_KILL;
    s->ends += f->type == SFS_FRAME_END;
    s->bytes += f->vlen;
    return 0;
}

static int writer_cb(void *arg, const void *buf, size_t len)
{
    return vault_chunker_add(arg, buf, len);
}

static void test_frames(void)
{
    struct chunks c = { { 0 }, 0, 0 };
    struct vault_chunker ck = { .emit = emit_cb, .arg = &c };
    struct sfs_stream_hdr h = { .block_size = 65536, .to_epoch = 5,
                                .to_name = "s1" };
    struct sfs_stream_writer *w;
    CHECK_RC(sfs_stream_writer_new(&h, writer_cb, &ck, &w));
    uint8_t val[1000];
    memset(val, 7, sizeof(val));
    for (uint32_t i = 0; i < 5000; i++) {
        uint8_t key[17] = { SFS_K_DIRENT };
        memcpy(key + 1, &i, 4);
        CHECK_RC(sfs_stream_writer_put(w, key, sizeof(key), val, i % 1000));
        if (i % 10 == 0)
            CHECK_RC(sfs_stream_writer_kill(w, key, sizeof(key)));
    }
    CHECK_RC(sfs_stream_writer_end(w));
    sfs_stream_writer_free(w);
    CHECK_RC(vault_chunker_flush(&ck));
    vault_chunker_free(&ck);
    CHECK(c.n >= 2 && c.all.len == ck.bytes, "the stream is cut into %d "
          "chunks", c.n);
    size_t cuts[] = { 1, 7, 4096, VAULT_CHUNK, c.all.len };
    for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
        struct vault_frames fr = { { 0 }, 0 };
        struct seen s = { 0 };
        int rc = 0;
        for (size_t at = 0; !rc && at < c.all.len; at += cuts[k]) {
            size_t n = c.all.len - at < cuts[k] ? c.all.len - at : cuts[k];
            rc = vault_frames_feed(&fr, c.all.p + at, n, frame_cb, &s);
        }
        CHECK(!rc && !vault_frames_end(&fr) && s.puts == 5000 &&
              s.kills == 500 && s.ends == 1,
              "fed in pieces of %zu, the same frames come back", cuts[k]);
        vault_frames_free(&fr);
    }
    struct vault_frames fr = { { 0 }, 0 };
    struct seen s = { 0 };
    CHECK(vault_frames_feed(&fr, c.all.p, c.all.len - 3, frame_cb, &s) == 0 &&
          vault_frames_end(&fr) == -EBADMSG, "a cut frame is -EBADMSG");
    vault_frames_free(&fr);
    c.all.p[c.all.len / 2] ^= 1;
    memset(&s, 0, sizeof(s));
    CHECK(vault_frames_feed(&fr, c.all.p, c.all.len, frame_cb, &s) == -EBADMSG,
          "a damaged frame is -EBADMSG");
    vault_frames_free(&fr);
    vw_free(&c.all);
}

int main(void)
{
    CHECK_RC(vc_random(&keys, sizeof(keys)));
    test_blobs();
    test_codec();
    test_packs();
    test_index_memory();
    test_index_objects();
    test_manifests();
    test_links();
    test_frames();
    return test_done("test_vault_pack");
}
