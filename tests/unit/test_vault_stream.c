/*
 * test_vault_stream.c - what the vault asks of replication streams
 * (store/stream.c): a sender told to omit blocks sends records only, each
 * naming its block by hash; a stream's frames parse back with their
 * parts; a stream written record by record (sfs_stream_writer) from those
 * records, received with a block source, makes a volume whose snapshot
 * reads as the source's (contents, a large xattr, a hard link); without
 * a block source it is refused (-EBADMSG), and a block source giving
 * wrong bytes is caught (-EIO) with the destination left without the
 * snapshot; blocks the source verified (sfs_block_verify, as the vault's
 * prefetcher does) are stored as they are, but one verified as another
 * block is checked again and caught; an incremental stream names only the
 * changed blocks.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "testvol.h"
#include "../../tools/vault/format.h"

static struct sfs_store *src;
static struct sfs_codec_ctx *cc;

static uint64_t mkfile(MDB_txn *txn, const char *name, uint32_t mode)
{
    struct sfs_inode ni = { .mode = mode, .nlink = 1, .parent = SFS_ROOT_INO };
    CHECK_RC(sfs_inode_create_w(src, txn, &ni));
    CHECK_RC(sfs_dirent_add_w(src, txn, SFS_ROOT_INO, name, ni.ino,
                              (mode & S_IFMT) >> 12));
    return ni.ino;
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
}

/* The source: a 300 KiB file, a hard link to it, a large xattr. */
static void make_source(void)
{
    MDB_txn *txn;
    CHECK_RC(sfs_txn_begin(src, NULL, true, &txn));
    uint64_t f = mkfile(txn, "data", S_IFREG | 0644);
    static uint8_t buf[300 << 10];
    fill(buf, sizeof(buf), 1);
    CHECK_RC(sfs_file_write_w(src, txn, cc, f, 0, buf, sizeof(buf)));
    CHECK_RC(sfs_dirent_add_w(src, txn, SFS_ROOT_INO, "link", f, DT_REG));
    struct sfs_inode in;
    CHECK_RC(sfs_inode_get(src, txn, SFS_VIEW_LIVE, f, &in));
    in.nlink = 2;
    CHECK_RC(sfs_inode_put_w(src, txn, &in));
    uint8_t big[5000];
    fill(big, sizeof(big), 2);
    CHECK_RC(sfs_xattr_set_w(src, txn, f, "user.big", big, sizeof(big), 0));
    struct sfs_snap_rec s;
    CHECK_RC(sfs_snap_take_w(src, txn, "s1", &s));
    CHECK_RC(sfs_txn_commit(src, txn));
}

static int collect_write(void *arg, const void *buf, size_t len)
{
    struct vw *w = arg;
    vw_bytes(w, buf, len);
    return w->failed ? -ENOMEM : 0;
}

/* Send FROM -> TO with blocks omitted into OUT. */
static void send_records(uint64_t from, uint64_t to, struct vw *out)
{
    MDB_txn *txn;
    struct sfs_sender *s;
    CHECK_RC(sfs_txn_begin(src, NULL, false, &txn));
    CHECK_RC(sfs_send_new(src, txn, from, to, NULL, collect_write, out, &s));
    sfs_send_omit_blocks(s);
    int rc;
    while ((rc = sfs_send_step(s, txn, 100)) == 0)
        ;
    CHECK(rc == 1, "the stream ends (%d)", rc);
    sfs_send_free(s);
    mdb_txn_abort(txn);
}

/* What a stream's frames hold; the records rewritten by a writer. */
struct parsed {
    struct sfs_stream_hdr hdr;
    int puts, kills, blockrefs, carried;
    struct sfs_stream_writer *w;
    struct vw out;
};

static int parse_cb(void *arg, const struct sfs_stream_frame *f)
{
    struct parsed *p = arg;
    if (f->type == SFS_FRAME_HEADER) {
        int rc = sfs_stream_header_parse(f, &p->hdr);
        return rc ? rc : sfs_stream_writer_new(&p->hdr, collect_write,
                                               &p->out, &p->w);
    }
    if (f->type == SFS_FRAME_PUT) {
        p->puts++;
        p->blockrefs += f->blockref;
        p->carried += f->carried;
        return sfs_stream_writer_put(p->w, f->key, f->klen, f->val, f->vlen);
    }
    if (f->type == SFS_FRAME_KILL) {
        p->kills++;
        return sfs_stream_writer_kill(p->w, f->key, f->klen);
    }
    if (f->type == SFS_FRAME_END) {
        uint64_t puts, kills;
        int rc = sfs_stream_end_parse(f, &puts, &kills);
        if (!rc && (puts != (uint64_t)p->puts || kills != (uint64_t)p->kills))
            rc = -EBADMSG;
        return rc ? rc : sfs_stream_writer_end(p->w);
    }
    return 0;
}

static void parse(const struct vw *stream, struct parsed *p)
{
    memset(p, 0, sizeof(*p));
    struct vault_frames fr = { { 0 }, 0 };
    CHECK(vault_frames_feed(&fr, stream->p, stream->len, parse_cb, p) == 0 &&
          vault_frames_end(&fr) == 0, "the stream parses frame by frame");
    vault_frames_free(&fr);
    sfs_stream_writer_free(p->w);
}

struct mem_reader {
    const uint8_t *p;
    size_t len, at;
};

static int mem_read(void *arg, void *buf, size_t len)
{
    struct mem_reader *m = arg;
    if (m->at == m->len)
        return -ENODATA;
    if (m->len - m->at < len)
        return -EPIPE;
    memcpy(buf, m->p + m->at, len);
    m->at += len;
    return 0;
}

/* A block source over the source store; CORRUPT flips a byte; VERIFY
 * checks each block as the vault's prefetcher does (sfs_block_verify);
 * SWAP hands, from the second call on, the block asked for the call
 * before (verified as that one). */
struct source {
    bool corrupt, verify, swap;
    int calls;
    uint8_t last[SFS_HASH_LEN];
};

static int block_source(void *arg, const uint8_t hash[SFS_HASH_LEN],
                        struct sfs_raw_block *raw)
{
    static uint8_t plain[SFS_BLOCK_SIZE_MAX];
    struct source *s = arg;
    MDB_txn *txn;
    int rc = sfs_txn_begin(src, NULL, false, &txn);
    if (rc)
        return rc;
    rc = sfs_block_fetch(src, txn, s->swap && s->calls ? s->last : hash,
                         raw);
    mdb_txn_abort(txn);
    if (!rc && s->corrupt)
        ((uint8_t *)raw->bytes)[raw->csize / 2] ^= 1;
    if (!rc && s->verify)
        rc = sfs_block_verify(cc, raw, plain);
    memcpy(s->last, hash, SFS_HASH_LEN);
    s->calls++;
    return rc;
}

/* sfs_block_verify marks only bytes that decode to their hash. */
static void test_verify(void)
{
    static uint8_t plain[SFS_BLOCK_SIZE_MAX];
    MDB_txn *txn;
    struct sfs_raw_block raw;
    CHECK_RC(sfs_txn_begin(src, NULL, false, &txn));
    MDB_cursor *c;
    CHECK_RC(mdb_cursor_open(txn, src->db_dedup, &c));
    MDB_val k, v;
    CHECK_RC(mdb_cursor_get(c, &k, &v, MDB_FIRST));
    CHECK_RC(sfs_block_fetch(src, txn, k.mv_data, &raw));
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    CHECK(!raw.verified && sfs_block_verify(cc, &raw, plain) == 0 &&
          raw.verified, "a fetched block is not marked until verified");
    ((uint8_t *)raw.bytes)[raw.csize / 2] ^= 1;
    CHECK(sfs_block_verify(cc, &raw, plain) == -EIO && !raw.verified,
          "a damaged block fails verification and loses the mark");
    sfs_raw_block_release(&raw);
}

/* Receive STREAM into DST; the receiver's result. */
static int receive(struct sfs_store *dst, const struct vw *stream,
                   struct source *bs, char *why, size_t cap)
{
    struct mem_reader m = { stream->p, stream->len, 0 };
    struct sfs_receiver *r;
    int rc = sfs_recv_new(mem_read, &m, &r);
    if (!rc && bs)
        sfs_recv_set_block_source(r, block_source, bs);
    MDB_txn *txn = NULL;
    if (!rc)
        rc = sfs_txn_begin(dst, NULL, true, &txn);
    if (!rc)
        rc = sfs_recv_begin_w(dst, txn, r);
    while (!rc)
        rc = sfs_recv_step_w(dst, txn, r, cc, 1 << 20);
    snprintf(why, cap, "%s", sfs_recv_why(r) ? sfs_recv_why(r) : "");
    if (rc == 1)
        rc = sfs_txn_commit(dst, txn);
    else if (txn)
        mdb_txn_abort(txn);
    sfs_recv_free(r);
    return rc;
}

/* Does DST's snapshot s1 read as the source's? */
static bool same_as_source(struct sfs_store *dst)
{
    MDB_txn *a, *b;
    struct sfs_snap_rec sa, sb;
    CHECK_RC(sfs_txn_begin(src, NULL, false, &a));
    CHECK_RC(sfs_txn_begin(dst, NULL, false, &b));
    bool same = !sfs_snap_find(src, a, "s1", &sa) &&
                !sfs_snap_find(dst, b, "s1", &sb);
    uint64_t ia = 0, ib = 0;
    same = same && !sfs_path_lookup(src, a, sa.epoch, "link", &ia, NULL, NULL) &&
           !sfs_path_lookup(dst, b, sb.epoch, "link", &ib, NULL, NULL);
    static uint8_t da[400 << 10], db[400 << 10];
    size_t ga = 0, gb = 0;
    same = same && !sfs_file_read(src, a, cc, sa.epoch, ia, 0, sizeof(da), da,
                                  &ga) &&
           !sfs_file_read(dst, b, cc, sb.epoch, ib, 0, sizeof(db), db, &gb) &&
           ga == gb && ga == (300 << 10) && !memcmp(da, db, ga);
    uint8_t xa[6000], xb[6000];
    int la = sfs_xattr_get(src, a, sa.epoch, ia, "user.big", xa, sizeof(xa));
    int lb = sfs_xattr_get(dst, b, sb.epoch, ib, "user.big", xb, sizeof(xb));
    same = same && la == 5000 && la == lb && !memcmp(xa, xb, 5000);
    struct sfs_inode na, nb;
    same = same && !sfs_inode_get(dst, b, sb.epoch, ib, &nb) &&
           !sfs_inode_get(src, a, sa.epoch, ia, &na) && nb.nlink == 2 &&
           !memcmp(&na, &nb, sizeof(na));
    mdb_txn_abort(a);
    mdb_txn_abort(b);
    return same;
}

static void test_full(void)
{
    struct vw stream = { 0 };
    send_records(0, src->state.newest_snap, &stream);
    struct parsed p;
    parse(&stream, &p);
    CHECK(p.carried == 0, "no block travels with the records");
    CHECK(p.blockrefs >= 5 + 1, "records name their blocks (%d)",
          p.blockrefs);
    CHECK(!strcmp(p.hdr.to_name, "s1") && p.hdr.from_epoch == 0,
          "the header parses");

    char dir[256], why[256];
    struct sfs_store *dst = testvol_create(dir, sizeof(dir), 0, SFS_CODEC_ZSTD);
    CHECK(receive(dst, &p.out, NULL, why, sizeof(why)) == -EBADMSG &&
          strstr(why, "did not carry"),
          "without a block source the stream is refused: %s", why);
    testvol_remove(dst, dir);

    dst = testvol_create(dir, sizeof(dir), 0, SFS_CODEC_ZSTD);
    struct source bad = { .corrupt = true };
    CHECK(receive(dst, &p.out, &bad, why, sizeof(why)) == -EIO,
          "a block source's wrong bytes are caught: %s", why);
    CHECK(dst->state.newest_snap == 0, "and no snapshot is taken");
    testvol_remove(dst, dir);

    dst = testvol_create(dir, sizeof(dir), 0, SFS_CODEC_ZSTD);
    struct source swapped = { .verify = true, .swap = true };
    CHECK(receive(dst, &p.out, &swapped, why, sizeof(why)) == -EIO,
          "a block verified as another block is checked again, and "
          "caught: %s", why);
    CHECK(dst->state.newest_snap == 0, "and no snapshot is taken");
    testvol_remove(dst, dir);

    dst = testvol_create(dir, sizeof(dir), 0, SFS_CODEC_ZSTD);
    struct source verified = { .verify = true };
    CHECK(receive(dst, &p.out, &verified, why, sizeof(why)) == 0,
          "blocks verified by the source are received: %s", why);
    CHECK(same_as_source(dst), "and the snapshot reads as the source");
    testvol_remove(dst, dir);

    dst = testvol_create(dir, sizeof(dir), 0, SFS_CODEC_ZSTD);
    struct source good = { 0 };
    CHECK(receive(dst, &p.out, &good, why, sizeof(why)) == 0,
          "the rewritten stream is received: %s", why);
    CHECK(good.calls == 5 + 1, "each distinct block fetched once (%d)",
          good.calls);
    CHECK(same_as_source(dst), "the received snapshot reads as the source");
    testvol_remove(dst, dir);
    vw_free(&stream);
    vw_free(&p.out);
}

static void test_incremental(void)
{
    MDB_txn *txn;
    CHECK_RC(sfs_txn_begin(src, NULL, true, &txn));
    uint64_t base = src->state.newest_snap, ino;
    CHECK_RC(sfs_path_lookup(src, txn, SFS_VIEW_LIVE, "data", &ino, NULL,
                             NULL));
    uint8_t buf[1000];
    fill(buf, sizeof(buf), 9);
    CHECK_RC(sfs_file_write_w(src, txn, cc, ino, 70000, buf, sizeof(buf)));
    struct sfs_snap_rec s;
    CHECK_RC(sfs_snap_take_w(src, txn, "s2", &s));
    CHECK_RC(sfs_txn_commit(src, txn));
    struct vw stream = { 0 };
    send_records(base, s.epoch, &stream);
    struct parsed p;
    parse(&stream, &p);
    CHECK(p.blockrefs == 1 && p.carried == 0,
          "an incremental stream names the one changed block (%d)",
          p.blockrefs);
    CHECK(p.hdr.from_epoch == base, "from its base");
    vw_free(&stream);
    vw_free(&p.out);
}

int main(void)
{
    char dir[256];
    src = testvol_create(dir, sizeof(dir), 65536, SFS_CODEC_ZSTD);
    cc = sfs_codec_ctx_new();
    make_source();
    test_verify();
    test_full();
    test_incremental();
    sfs_codec_ctx_free(cc);
    testvol_remove(src, dir);
    return test_done("test_vault_stream");
}
