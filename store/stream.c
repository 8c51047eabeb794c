/*
 * stream.c - replication streams: sending a snapshot of a volume, whole or
 * as the change from an older snapshot, and receiving it into another
 * volume that then follows the first.
 *
 * Guarantees: a receiver never exposes half a snapshot (the snapshot is
 * taken in the transaction that applies the stream's last records); a
 * damaged, truncated or misdirected stream is refused with the
 * destination's newest snapshot untouched; an interrupted receive resumes
 * at its last checkpoint, so nothing applied is sent again; the cost of an
 * incremental stream follows the change, not the volume.
 *
 * THEORY
 *
 * What is sent.  A snapshot is the set of versioned records (vrec.c) that
 * its epoch sees.  The destination keeps the source's record keys, so the
 * same object ids: a stream is a list of "put K = payload" and "kill K".
 * A full stream puts every record the snapshot at B sees.  An incremental
 * stream from A to B (A < B, both held by the sender) names exactly the
 * keys whose version differs between the two views, from two index ranges
 * that hold only rows written between them (as rollback does, restore.c):
 *
 *   phase 0, deadlist rows (death | birth | K) with A < death <= B and
 *     birth <= A: the version A saw died before B.  If B sees no version
 *     of K, K is killed.  (If it sees one, that version was born after A
 *     and phase 1 sends it.)
 *   phase 1, birth rows (birth | K) with A < birth <= B: if the version B
 *     sees of K has exactly this birth, it is put (unless its bytes equal
 *     what A saw).  Each key so appears at most once in phase 1, and once
 *     in phase 0 (A saw at most one version of K).
 *
 * Both snapshots exist while the stream is made, so by vrec.c's invariant
 * H every version either sees is still stored and its index rows exist.
 *
 * Blocks.  A record that refers to a block (extents, large xattr values)
 * carries the block's stored bytes in the same frame unless this stream
 * carried it already (a bounded table of recently sent hashes), so the
 * destination never holds a block without a reference.  The receiver
 * stores bytes only after they decode to their SHA-256 (blocks.c) and
 * takes one reference per record, as any copy does; a block it has already
 * is referenced, not stored again.
 *
 * Frames.  [type u8 | flags u8 | 0 u16 | length u32] payload [crc32c u32],
 * integers big-endian, the CRC over header and payload.  Types: 'H'
 * header (first), 'P' put (key, payload, maybe a block), 'K' kill (key),
 * 'C' checkpoint (the sender's walk position and counts), 'R' retention
 * (optional, just before the end: a mirror relationship's rules for which
 * received snapshots the destination keeps), 'Z' end (the counts of the
 * whole stream).  A receiver checks every CRC, every length
 * and, at the end, the counts: a damaged stream is refused at the frame
 * where it is damaged, a truncated one at its end.
 *
 * Transactions.  The receiver applies records as ordinary writes to the
 * destination's live tree (rollback's sfs_rec_set_live_w), in batches that
 * end at a checkpoint, each batch a transaction that also records where it
 * ended (meta "recv/partial").  The last transaction applies the last
 * records and takes the snapshot, named and dated as the source's.  The
 * destination's newest snapshot is therefore always complete, and the
 * retention a stream carries deletes older received snapshots in that
 * same transaction, so the set of snapshots changes at once; its live
 * tree is between snapshots only during a receive, which is why a
 * following volume is served at its newest snapshot (fs/, "published
 * view"), not at its live tree, and is read-only to clients.  A later
 * receive of another stream rolls the unfinished one back first (its cost
 * is the part applied); the same stream resumes where it ended: the sender
 * is started at the recorded position (the "resume token").
 *
 * Reading cold.  An incremental stream touches a few records per change,
 * scattered over both stores, so each side turns the kernel's readahead
 * off for its map (sfs_advise_access: around a random page it reads
 * megabytes no one needs) and keeps several reads in flight instead: the
 * sender with helper threads that make its lookups ahead of it
 * (prefetch.c), the offline receiver with helpers that read the stream
 * ahead and look up what its frames will need (sfs_recv_touch, driven by
 * tools/recv_ahead.c).  Both are advice; neither changes what is sent or
 * applied.
 *
 * Kept apart (the vault).  A sender told to omit blocks
 * (sfs_send_omit_blocks) sends the records only; they name their blocks
 * by SHA-256, which the vault keeps separately, once each.  To restore,
 * the vault writes a stream of its own (sfs_stream_writer: puts and kills
 * without blocks, checkpoints every 256 records) and the
 * receiver asks a block source for each block the destination lacks
 * (sfs_recv_set_block_source), checking the bytes against the hash as it
 * checks carried ones.  sfs_stream_frame_parse gives such callers a
 * frame's parts with the receiver's own checks.
 *
 * Held back (consistency groups).  A receiver told to hold back
 * (sfs_recv_hold_back) takes the snapshot as always, but the destination
 * keeps exposing the snapshot it exposed before: the "fence" (meta
 * "recv/fence") names it, and sfs_recv_published answers the fence, not
 * the newest snapshot, until sfs_recv_publish_w removes it.  A group
 * mirror (tools/mirror_group.c) receives one snapshot into every member
 * held back, and publishes only once every member has it, so that the
 * members never expose snapshots of different points in time.  The fenced
 * snapshot is never deleted by retention while it is exposed: a deletion
 * retention wanted is marked on the fence ("doomed") and done when the
 * fence goes.  A break goes back to the fence: what was held back was
 * never seen, and is discarded with the snapshots newer than the fence.
 *
 * Destination records in meta: "recv/source" -> source uuid (set by the
 * first full stream), "recv/writable" (broken off), "recv/partial" ->
 * struct partial, "recv/fence" -> struct fence (held back), "recv/snap/"
 * epoch(be64) -> struct recv_snap: which source epoch each received
 * snapshot is.  Records of deleted snapshots are ignored and pruned by the
 * next receive.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define FRAME_HDR 8
#define FRAME_CRC 4
#define FRAME_MAX (4u << 20)
#define VAL_MAX 2048
#define SENT_SLOTS 65536 /* recently sent block hashes: 2 MiB */
#define STEP_BYTES (8u << 20) /* a checkpoint at least every 8 MiB */

enum { F_HEADER = 'H', F_PUT = 'P', F_KILL = 'K', F_CHECKPOINT = 'C',
       F_RETENTION = 'R', F_END = 'Z' };
enum { PUT_HAS_BLOCK = 1 };

static const char stream_magic[8] = { 'S', 'N', 'A', 'P', 'S', 'T', 'R', 'M' };

/* Record layout signature: the payloads are the store's own structures. */
static uint32_t layout_signature(void)
{
    const uint16_t probe = 1;
    uint8_t little;
    memcpy(&little, &probe, 1);
    return (uint32_t)sizeof(struct sfs_inode) << 8 | (little ? 1u : 2u);
}

/* ---- CRC-32C ---- */

static uint32_t crc_table[256];

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32c_soft(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const uint8_t *p, size_t n)
{
    uint64_t c = crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
    }
    crc = (uint32_t)c;
    while (n--)
        crc = __builtin_ia32_crc32qi(crc, *p++);
    return crc;
}
#endif

static uint32_t crc32c(const void *data, size_t n)
{
    static int hw = -1;
    if (hw < 0) {
        crc_table_init();
#if defined(__x86_64__)
        hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
        hw = 0;
#endif
    }
#if defined(__x86_64__)
    if (hw)
        return ~crc32c_hw(~0u, data, n);
#endif
    return ~crc32c_soft(~0u, data, n);
}

/* ---- byte buffers ---- */

struct buf {
    uint8_t *p;
    size_t len, cap;
    bool failed;
};

static void buf_need(struct buf *b, size_t more)
{
    if (b->failed || b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void put_bytes(struct buf *b, const void *v, size_t n)
{
    buf_need(b, n);
    if (b->failed)
        return;
    memcpy(b->p + b->len, v, n);
    b->len += n;
}

static void put_u8(struct buf *b, uint8_t v) { put_bytes(b, &v, 1); }

static void put_u16(struct buf *b, uint16_t v)
{
    uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    put_bytes(b, x, 2);
}

static void put_u32(struct buf *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                     (uint8_t)v };
    put_bytes(b, x, 4);
}

static void put_u64(struct buf *b, uint64_t v)
{
    uint8_t x[8];
    sfs_put_be64(x, v);
    put_bytes(b, x, 8);
}

static void put_name(struct buf *b, const char *name)
{
    size_t n = strnlen(name, SFS_NAME_MAX);
    put_u16(b, (uint16_t)n);
    put_bytes(b, name, n);
}

/* A reader over a frame's payload; running past the end sets bad. */
struct cur {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static const uint8_t *get_bytes(struct cur *c, size_t n)
{
    if (c->bad || c->left < n) {
        c->bad = true;
        return NULL;
    }
    const uint8_t *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

static uint8_t get_u8(struct cur *c)
{
    const uint8_t *p = get_bytes(c, 1);
    return p ? p[0] : 0;
}

static uint16_t get_u16(struct cur *c)
{
    const uint8_t *p = get_bytes(c, 2);
    return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

static uint32_t get_u32(struct cur *c)
{
    const uint8_t *p = get_bytes(c, 4);
    return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                   (uint32_t)p[2] << 8 | p[3]
             : 0;
}

static uint64_t get_u64(struct cur *c)
{
    const uint8_t *p = get_bytes(c, 8);
    return p ? sfs_get_be64(p) : 0;
}

static void get_name(struct cur *c, char *out)
{
    uint16_t n = get_u16(c);
    const uint8_t *p = n <= SFS_NAME_MAX ? get_bytes(c, n) : NULL;
    if (!p) {
        c->bad = true;
        out[0] = 0;
        return;
    }
    memcpy(out, p, n);
    out[n] = 0;
}

/* ---- positions and the header ---- */

static void put_pos(struct buf *b, const struct sfs_stream_pos *pos)
{
    put_u32(b, pos->phase);
    put_u16(b, (uint16_t)pos->len);
    put_bytes(b, pos->key, pos->len);
    put_u64(b, pos->records);
    put_u64(b, pos->bytes);
}

static void get_pos(struct cur *c, struct sfs_stream_pos *pos)
{
    memset(pos, 0, sizeof(*pos));
    pos->phase = get_u32(c);
    pos->len = get_u16(c);
    const uint8_t *k = pos->len <= sizeof(pos->key) ? get_bytes(c, pos->len)
                                                    : NULL;
    if (!k) {
        c->bad = true;
        pos->len = 0;
        return;
    }
    memcpy(pos->key, k, pos->len);
    pos->records = get_u64(c);
    pos->bytes = get_u64(c);
}

static bool pos_equal(const struct sfs_stream_pos *a,
                      const struct sfs_stream_pos *b)
{
    return a->phase == b->phase && a->len == b->len &&
           !memcmp(a->key, b->key, a->len) && a->records == b->records &&
           a->bytes == b->bytes;
}

static void put_header(struct buf *b, const struct sfs_stream_hdr *h)
{
    put_bytes(b, stream_magic, sizeof(stream_magic));
    put_u32(b, h->version);
    put_u32(b, h->layout);
    put_bytes(b, h->src_uuid, 16);
    put_u32(b, h->block_size);
    put_u64(b, h->from_epoch);
    put_u64(b, h->to_epoch);
    put_u64(b, (uint64_t)h->to_ctime_sec);
    put_u32(b, h->to_ctime_nsec);
    put_u64(b, h->next_ino);
    put_name(b, h->from_name);
    put_name(b, h->to_name);
    put_pos(b, &h->start);
}

static int get_header(struct cur *c, struct sfs_stream_hdr *h)
{
    const uint8_t *m = get_bytes(c, sizeof(stream_magic));
    if (!m || memcmp(m, stream_magic, sizeof(stream_magic)))
        return -EBADMSG;
    h->version = get_u32(c);
    h->layout = get_u32(c);
    if (!c->bad && (h->version != SFS_STREAM_VERSION ||
                    h->layout != layout_signature()))
        return -EPROTONOSUPPORT;
    const uint8_t *u = get_bytes(c, 16);
    if (u)
        memcpy(h->src_uuid, u, 16);
    h->block_size = get_u32(c);
    h->from_epoch = get_u64(c);
    h->to_epoch = get_u64(c);
    h->to_ctime_sec = (int64_t)get_u64(c);
    h->to_ctime_nsec = get_u32(c);
    h->next_ino = get_u64(c);
    get_name(c, h->from_name);
    get_name(c, h->to_name);
    get_pos(c, &h->start);
    return c->bad || c->left ? -EBADMSG : 0;
}

/* ---- sending ---- */

struct sfs_sender {
    struct sfs_store *st;
    struct sfs_stream_hdr hdr;
    struct sfs_stream_pos pos;
    bool done;
    sfs_stream_write_fn write;
    void *arg;
    struct buf frame;
    struct sfs_stream_stats stats;
    uint8_t (*sent)[SFS_HASH_LEN]; /* direct-mapped by the hash's bytes */
    struct sfs_retention ret;      /* kind 0: none */
    uint64_t *ret_epochs;
    struct sfs_prefetch *prefetch; /* incremental: helpers reading ahead */
    uint64_t rows;                 /* index rows passed (for them) */
    bool omit_blocks;              /* puts never carry block bytes */
    /* the step in progress */
    MDB_txn *txn;
    uint64_t step_records, max_records, step_start_bytes;
    bool stopped; /* the step's budget ran out inside a phase */
};

static void frame_start(struct buf *b, uint8_t type, uint8_t flags)
{
    b->len = 0;
    b->failed = false;
    put_u8(b, type);
    put_u8(b, flags);
    put_u16(b, 0);
    put_u32(b, 0); /* the length, filled in by frame_send */
}

/* Fill in the frame's length and append its checksum: 0 or -ENOMEM. */
static int frame_finish(struct buf *b)
{
    if (b->failed)
        return -ENOMEM;
    uint32_t len = (uint32_t)(b->len - FRAME_HDR);
    uint8_t be[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16),
                      (uint8_t)(len >> 8), (uint8_t)len };
    memcpy(b->p + 4, be, 4);
    put_u32(b, crc32c(b->p, b->len));
    return b->failed ? -ENOMEM : 0;
}

static int frame_send(struct sfs_sender *s)
{
    struct buf *b = &s->frame;
    int rc = frame_finish(b);
    if (!rc)
        rc = s->write(s->arg, b->p, b->len);
    if (!rc)
        s->stats.bytes += b->len;
    return rc;
}

static int send_checkpoint(struct sfs_sender *s, uint8_t type)
{
    frame_start(&s->frame, type, 0);
    s->pos.records = s->hdr.start.records + s->stats.records + s->stats.kills;
    s->pos.bytes = s->stats.bytes;
    put_pos(&s->frame, &s->pos);
    if (type == F_END) {
        put_u64(&s->frame, s->stats.records);
        put_u64(&s->frame, s->stats.kills);
        put_u64(&s->frame, s->stats.blocks);
    }
    return frame_send(s);
}

static bool sent_recently(struct sfs_sender *s, const uint8_t *hash)
{
    uint32_t slot;
    memcpy(&slot, hash, 4);
    slot %= SENT_SLOTS;
    if (!memcmp(s->sent[slot], hash, SFS_HASH_LEN))
        return true;
    memcpy(s->sent[slot], hash, SFS_HASH_LEN);
    return false;
}

static int send_put(struct sfs_sender *s, const MDB_val *k, const MDB_val *v)
{
    uint8_t hash[SFS_HASH_LEN];
    struct sfs_raw_block raw = { 0 };
    bool with_block = !s->omit_blocks && sfs_rec_blockref(k, v, hash) &&
                      !sent_recently(s, hash);
    if (with_block) {
        int rc = sfs_block_fetch(s->st, s->txn, hash, &raw);
        if (rc)
            return rc;
    }
    frame_start(&s->frame, F_PUT, with_block ? PUT_HAS_BLOCK : 0);
    put_u16(&s->frame, (uint16_t)k->mv_size);
    put_bytes(&s->frame, k->mv_data, k->mv_size);
    put_u32(&s->frame, (uint32_t)v->mv_size);
    put_bytes(&s->frame, v->mv_data, v->mv_size);
    if (with_block) {
        put_u8(&s->frame, raw.codec);
        put_u32(&s->frame, raw.lsize);
        put_u32(&s->frame, raw.csize);
        put_bytes(&s->frame, raw.bytes, raw.csize);
        s->stats.blocks++;
        s->stats.block_bytes += raw.csize;
    }
    sfs_raw_block_release(&raw);
    s->stats.records++;
    return frame_send(s);
}

static int send_kill(struct sfs_sender *s, const uint8_t *key, size_t klen)
{
    frame_start(&s->frame, F_KILL, 0);
    put_u16(&s->frame, (uint16_t)klen);
    put_bytes(&s->frame, key, klen);
    s->stats.kills++;
    return frame_send(s);
}

/* Count a record of the step; has the step reached its budget? */
static bool step_full(struct sfs_sender *s)
{
    s->step_records++;
    return s->step_records >= s->max_records ||
           s->stats.bytes - s->step_start_bytes >= STEP_BYTES;
}

static void advance(struct sfs_sender *s, const void *key, size_t len)
{
    memcpy(s->pos.key, key, len);
    s->pos.len = (uint32_t)len;
}

/* Full streams: phases 0-3 are the record kinds, each in key order. */
static const uint8_t full_kinds[] = { SFS_K_INODE, SFS_K_DIRENT,
                                      SFS_K_XATTR, SFS_K_EXTENT };
#define FULL_PHASES sizeof(full_kinds)
#define INCR_PHASES 2

static int full_cb(void *a, const MDB_val *k, const MDB_val *v,
                   uint64_t birth)
{
    (void)birth;
    struct sfs_sender *s = a;
    if (k->mv_size > SFS_KEY_MAX)
        return -EIO;
    int rc = send_put(s, k, v);
    if (rc)
        return rc;
    advance(s, k->mv_data, k->mv_size);
    if (!step_full(s))
        return 0;
    s->stopped = true;
    return 1;
}

static int full_phase(struct sfs_sender *s)
{
    const uint8_t *prefix = &full_kinds[s->pos.phase];
    uint8_t start[SFS_KEY_MAX + 1];
    size_t slen = 1;
    start[0] = *prefix;
    if (s->pos.len) {
        memcpy(start, s->pos.key, s->pos.len);
        start[s->pos.len] = 0; /* the smallest key after the last one */
        slen = s->pos.len + 1;
    }
    s->stopped = false;
    int rc = sfs_vrec_scan(s->st, s->txn, s->hdr.to_epoch, prefix, 1, start,
                           slen, full_cb, s);
    if (rc < 0)
        return rc;
    return s->stopped ? 0 : 1; /* 1: the phase is over */
}

/* One key named by an index row of an incremental stream (see THEORY). */
static int incr_key(struct sfs_sender *s, bool deadlist, uint64_t row_birth,
                    const uint8_t *key, size_t klen)
{
    MDB_val vb, va;
    uint64_t bb, ba;
    int rb = sfs_vrec_get(s->st, s->txn, s->hdr.to_epoch, key, klen, &vb, &bb);
    if (rb && rb != -ENOENT)
        return rb;
    if (deadlist)
        return rb == -ENOENT ? send_kill(s, key, klen) : 0;
    if (rb == -ENOENT || bb != row_birth)
        return 0;
    int ra = sfs_vrec_get(s->st, s->txn, s->hdr.from_epoch, key, klen, &va, &ba);
    if (ra && ra != -ENOENT)
        return ra;
    if (!ra && va.mv_size == vb.mv_size &&
        !memcmp(va.mv_data, vb.mv_data, vb.mv_size))
        return 0;
    MDB_val k = { klen, (void *)key };
    return send_put(s, &k, &vb);
}

/* Incremental streams: phase 0 the deadlist, phase 1 the birth index. */
static int incr_phase(struct sfs_sender *s)
{
    bool deadlist = s->pos.phase == 0;
    size_t hdr = deadlist ? 16 : 8;
    uint8_t first[16] = { 0 };
    sfs_put_be64(first, s->hdr.from_epoch + 1);
    MDB_cursor *c;
    int rc = sfs_mdb_errno(mdb_cursor_open(
        s->txn, deadlist ? s->st->db_dead : s->st->db_born, &c));
    if (rc)
        return rc;
    MDB_val k = { s->pos.len ? s->pos.len : hdr,
                  s->pos.len ? s->pos.key : first }, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (!mrc && s->pos.len && k.mv_size == s->pos.len &&
        !memcmp(k.mv_data, s->pos.key, s->pos.len))
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    int phase_done = 0;
    while (!rc && !mrc) {
        const uint8_t *p = k.mv_data;
        if (k.mv_size <= hdr || k.mv_size - hdr > SFS_KEY_MAX) {
            sfs_log_corruption("index row of %zu bytes", k.mv_size);
            rc = -EIO;
            break;
        }
        if (sfs_get_be64(p) > s->hdr.to_epoch) {
            phase_done = 1;
            break;
        }
        sfs_prefetch_progress(s->prefetch, ++s->rows);
        uint64_t birth = sfs_get_be64(p + (deadlist ? 8 : 0));
        uint8_t key[SFS_KEY_MAX];
        size_t klen = k.mv_size - hdr;
        memcpy(key, p + hdr, klen);
        advance(s, p, k.mv_size);
        if (!deadlist || birth <= s->hdr.from_epoch)
            rc = incr_key(s, deadlist, birth, key, klen);
        if (!rc && step_full(s))
            break;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc)
        return rc;
    if (mrc == MDB_NOTFOUND)
        return 1;
    return mrc ? sfs_mdb_errno(mrc) : phase_done;
}

int sfs_send_new(struct sfs_store *st, MDB_txn *txn, uint64_t from_epoch,
                 uint64_t to_epoch, const struct sfs_stream_pos *resume,
                 sfs_stream_write_fn write, void *arg,
                 struct sfs_sender **out)
{
    struct sfs_snap_rec to, from;
    int rc = sfs_snap_get(st, txn, to_epoch, &to);
    if (!rc && from_epoch)
        rc = from_epoch < to_epoch ? sfs_snap_get(st, txn, from_epoch, &from)
                                   : -EINVAL;
    if (rc)
        return rc;
    /* An incremental stream reads a few records per change, scattered
     * over the store; a whole one walks the tables in key order. */
    sfs_advise_access(st, from_epoch ? SFS_ACCESS_SCATTERED
                                     : SFS_ACCESS_NORMAL);
    struct sfs_sender *s = calloc(1, sizeof(*s));
    if (!s || !(s->sent = calloc(SENT_SLOTS, SFS_HASH_LEN))) {
        free(s);
        return -ENOMEM;
    }
    s->st = st;
    s->write = write;
    s->arg = arg;
    struct sfs_stream_hdr *h = &s->hdr;
    h->version = SFS_STREAM_VERSION;
    h->layout = layout_signature();
    memcpy(h->src_uuid, st->super.uuid, 16);
    h->block_size = st->super.block_size;
    h->from_epoch = from_epoch;
    h->to_epoch = to_epoch;
    h->to_ctime_sec = to.ctime_sec;
    h->to_ctime_nsec = to.ctime_nsec;
    h->next_ino = st->state.next_ino;
    snprintf(h->from_name, sizeof(h->from_name), "%s",
             from_epoch ? from.name : "");
    snprintf(h->to_name, sizeof(h->to_name), "%s", to.name);
    if (resume)
        h->start = *resume;
    s->pos = h->start;
    s->stats.bytes = h->start.bytes;
    if (from_epoch && s->pos.phase < INCR_PHASES &&
        sfs_prefetch_start(st, from_epoch, to_epoch, s->pos.phase, s->pos.key,
                           s->pos.len, &s->prefetch))
        s->prefetch = NULL; /* advice only: send without */
    frame_start(&s->frame, F_HEADER, 0);
    put_header(&s->frame, h);
    rc = frame_send(s);
    if (rc) {
        sfs_send_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int sfs_send_set_retention(struct sfs_sender *s,
                           const struct sfs_retention *ret)
{
    free(s->ret_epochs);
    s->ret_epochs = NULL;
    memset(&s->ret, 0, sizeof(s->ret));
    if (!ret)
        return 0;
    if (ret->kind < SFS_KEEP_MIRROR || ret->kind > SFS_KEEP_MIRROR_VAULT ||
        ret->nrules > SFS_RETENTION_RULES_MAX ||
        ret->nsource > SFS_RETENTION_SOURCE_MAX)
        return -EINVAL;
    s->ret_epochs = malloc((ret->nsource + 1) * sizeof(uint64_t));
    if (!s->ret_epochs)
        return -ENOMEM;
    memcpy(s->ret_epochs, ret->source_epochs, ret->nsource * sizeof(uint64_t));
    s->ret = *ret;
    s->ret.source_epochs = s->ret_epochs;
    return 0;
}

/* The 'R' frame: kind, rules (label, keep), the source's snapshot epochs. */
static int send_retention(struct sfs_sender *s)
{
    if (!s->ret.kind)
        return 0;
    frame_start(&s->frame, F_RETENTION, 0);
    put_u8(&s->frame, s->ret.kind);
    put_u16(&s->frame, (uint16_t)s->ret.nrules);
    for (uint32_t i = 0; i < s->ret.nrules; i++) {
        put_name(&s->frame, s->ret.rules[i].label);
        put_u32(&s->frame, s->ret.rules[i].keep);
    }
    put_u32(&s->frame, s->ret.nsource);
    for (uint32_t i = 0; i < s->ret.nsource; i++)
        put_u64(&s->frame, s->ret.source_epochs[i]);
    return frame_send(s);
}

int sfs_send_step(struct sfs_sender *s, MDB_txn *txn, uint64_t max_records)
{
    if (s->done)
        return 1;
    s->txn = txn;
    s->step_records = 0;
    s->max_records = max_records ? max_records : 1;
    unsigned phases = s->hdr.from_epoch ? INCR_PHASES : FULL_PHASES;
    s->step_start_bytes = s->stats.bytes;
    bool full = false;
    while (s->pos.phase < phases && !full) {
        int rc = s->hdr.from_epoch ? incr_phase(s) : full_phase(s);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            s->pos.phase++;
            s->pos.len = 0;
        } else {
            full = true;
        }
    }
    s->done = s->pos.phase >= phases;
    int rc = s->done ? send_retention(s) : 0;
    if (!rc)
        rc = send_checkpoint(s, s->done ? F_END : F_CHECKPOINT);
    return rc ? rc : s->done;
}

void sfs_send_omit_blocks(struct sfs_sender *s)
{
    s->omit_blocks = true;
}

void sfs_send_stats(const struct sfs_sender *s, struct sfs_stream_stats *out)
{
    *out = s->stats;
}

void sfs_send_free(struct sfs_sender *s)
{
    if (!s)
        return;
    sfs_prefetch_stop(s->prefetch);
    free(s->frame.p);
    free(s->sent);
    free(s->ret_epochs);
    free(s);
}

/* ---- streams kept in another form (the vault) ---- */

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* A put's payload: key, value, maybe the block; the checks apply_put
 * makes of its shape. */
static int parse_put(struct cur *c, uint8_t flags, struct sfs_stream_frame *f)
{
    f->klen = get_u16(c);
    f->key = get_bytes(c, f->klen);
    f->vlen = get_u32(c);
    f->val = f->vlen <= VAL_MAX ? get_bytes(c, f->vlen) : NULL;
    if (flags & PUT_HAS_BLOCK) {
        f->carried = true;
        f->raw.codec = get_u8(c);
        f->raw.lsize = get_u32(c);
        f->raw.csize = get_u32(c);
        f->raw.bytes = (void *)get_bytes(c, f->raw.csize);
    }
    if (c->bad || c->left || !f->key || !f->val || f->klen == 0 ||
        f->klen > SFS_KEY_MAX || (flags & ~PUT_HAS_BLOCK) ||
        (f->key[0] == SFS_K_INODE && f->vlen != sizeof(struct sfs_inode)) ||
        f->raw.lsize > SFS_BLOCK_SIZE_MAX)
        return -EBADMSG;
    MDB_val k = { f->klen, (void *)f->key }, v = { f->vlen, (void *)f->val };
    f->blockref = sfs_rec_blockref(&k, &v, f->hash);
    if (f->carried)
        memcpy(f->raw.hash, f->hash, SFS_HASH_LEN);
    return f->carried && !f->blockref ? -EBADMSG : 0;
}

int sfs_stream_frame_parse(const void *frame, size_t len,
                           struct sfs_stream_frame *out)
{
    const uint8_t *f = frame;
    memset(out, 0, sizeof(*out));
    if (len < FRAME_HDR + FRAME_CRC || sfs_stream_frame_size(f) != len ||
        crc32c(f, len - FRAME_CRC) != get_be32(f + len - FRAME_CRC))
        return -EBADMSG;
    out->type = f[0];
    out->payload = f + FRAME_HDR;
    out->plen = len - FRAME_HDR - FRAME_CRC;
    struct cur c = { out->payload, out->plen, false };
    switch (f[0]) {
    case F_PUT:
        return parse_put(&c, f[1], out);
    case F_KILL:
        out->klen = get_u16(&c);
        out->key = get_bytes(&c, out->klen);
        return c.bad || c.left || f[1] || !out->klen ||
               out->klen > SFS_KEY_MAX ? -EBADMSG : 0;
    case F_HEADER: case F_CHECKPOINT: case F_RETENTION: case F_END:
        return f[1] ? -EBADMSG : 0;
    default:
        return -EBADMSG;
    }
}

int sfs_stream_header_parse(const struct sfs_stream_frame *f,
                            struct sfs_stream_hdr *out)
{
    memset(out, 0, sizeof(*out));
    if (f->type != F_HEADER)
        return -EBADMSG;
    struct cur c = { f->payload, f->plen, false };
    return get_header(&c, out);
}

int sfs_stream_end_parse(const struct sfs_stream_frame *f, uint64_t *puts,
                         uint64_t *kills)
{
    if (f->type != F_END)
        return -EBADMSG;
    struct cur c = { f->payload, f->plen, false };
    struct sfs_stream_pos pos;
    get_pos(&c, &pos);
    *puts = get_u64(&c);
    *kills = get_u64(&c);
    (void)get_u64(&c);
    return c.bad || c.left || pos.records != *puts + *kills ? -EBADMSG : 0;
}

/* Records between checkpoints: few, for the blocks a block source gives
 * count toward a receiver's batch (256 blocks of 64 KiB: 16 MiB). */
#define WRITER_STEP_RECORDS 256

struct sfs_stream_writer {
    struct buf frame;
    sfs_stream_write_fn write;
    void *arg;
    struct sfs_stream_pos pos;  /* records, bytes and the last key */
    uint64_t puts, kills;
    uint64_t step_records, step_start;
};

static int writer_send(struct sfs_stream_writer *w)
{
    int rc = frame_finish(&w->frame);
    if (!rc)
        rc = w->write(w->arg, w->frame.p, w->frame.len);
    if (!rc)
        w->pos.bytes += w->frame.len;
    return rc;
}

static int writer_checkpoint(struct sfs_stream_writer *w, uint8_t type)
{
    frame_start(&w->frame, type, 0);
    w->pos.records = w->puts + w->kills;
    put_pos(&w->frame, &w->pos);
    if (type == F_END) {
        put_u64(&w->frame, w->puts);
        put_u64(&w->frame, w->kills);
        put_u64(&w->frame, 0);
    }
    w->step_records = 0;
    w->step_start = w->pos.bytes;
    return writer_send(w);
}

/* After a record: a checkpoint when the step is full, so that a receiver
 * commits in bounded batches. */
static int writer_record(struct sfs_stream_writer *w, const void *key,
                         size_t klen)
{
    memcpy(w->pos.key, key, klen);
    w->pos.len = (uint32_t)klen;
    if (++w->step_records < WRITER_STEP_RECORDS &&
        w->pos.bytes - w->step_start < STEP_BYTES)
        return 0;
    return writer_checkpoint(w, F_CHECKPOINT);
}

int sfs_stream_writer_new(const struct sfs_stream_hdr *hdr,
                          sfs_stream_write_fn write, void *arg,
                          struct sfs_stream_writer **out)
{
    struct sfs_stream_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->write = write;
    w->arg = arg;
    struct sfs_stream_hdr h = *hdr;
    h.version = SFS_STREAM_VERSION;
    h.layout = layout_signature();
    memset(&h.start, 0, sizeof(h.start));
    frame_start(&w->frame, F_HEADER, 0);
    put_header(&w->frame, &h);
    int rc = writer_send(w);
    if (rc) {
        sfs_stream_writer_free(w);
        return rc;
    }
    w->step_start = w->pos.bytes;
    *out = w;
    return 0;
}

int sfs_stream_writer_put(struct sfs_stream_writer *w, const void *key,
                          size_t klen, const void *val, size_t vlen)
{
    if (!klen || klen > SFS_KEY_MAX || vlen > VAL_MAX)
        return -EINVAL;
    frame_start(&w->frame, F_PUT, 0);
    put_u16(&w->frame, (uint16_t)klen);
    put_bytes(&w->frame, key, klen);
    put_u32(&w->frame, (uint32_t)vlen);
    put_bytes(&w->frame, val, vlen);
    int rc = writer_send(w);
    if (rc)
        return rc;
    w->puts++;
    return writer_record(w, key, klen);
}

int sfs_stream_writer_kill(struct sfs_stream_writer *w, const void *key,
                           size_t klen)
{
    if (!klen || klen > SFS_KEY_MAX)
        return -EINVAL;
    frame_start(&w->frame, F_KILL, 0);
    put_u16(&w->frame, (uint16_t)klen);
    put_bytes(&w->frame, key, klen);
    int rc = writer_send(w);
    if (rc)
        return rc;
    w->kills++;
    return writer_record(w, key, klen);
}

int sfs_stream_writer_end(struct sfs_stream_writer *w)
{
    return writer_checkpoint(w, F_END);
}

void sfs_stream_writer_free(struct sfs_stream_writer *w)
{
    if (!w)
        return;
    free(w->frame.p);
    free(w);
}

/* ---- destination records ---- */

#define META_SOURCE "recv/source"
#define META_WRITABLE "recv/writable"
#define META_PARTIAL "recv/partial"
#define META_FENCE "recv/fence"
#define META_SNAP "recv/snap/"
#define META_SNAP_LEN (sizeof(META_SNAP) - 1)

struct partial {
    uint8_t src_uuid[16];
    uint64_t from_epoch, to_epoch;
    struct sfs_stream_pos pos;
};

struct recv_snap {
    uint8_t src_uuid[16];
    uint64_t src_epoch;
};

/* Held back: the destination exposes EPOCH (0: nothing yet), not its
 * newest snapshot.  DOOMED: retention wanted EPOCH deleted. */
struct fence {
    uint64_t epoch;
    uint8_t doomed;
    uint8_t pad[7];
};

static int meta_get(struct sfs_store *st, MDB_txn *txn, const char *name,
                    void *out, size_t len)
{
    MDB_val k = { strlen(name), (void *)name }, v;
    int rc = mdb_get(txn, st->db_meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return -ENOENT;
    if (rc)
        return sfs_mdb_errno(rc);
    if (v.mv_size != len) {
        sfs_log_corruption("meta %s of %zu bytes", name, v.mv_size);
        return -EIO;
    }
    memcpy(out, v.mv_data, len);
    return 0;
}

static int meta_put(struct sfs_store *st, MDB_txn *txn, const char *name,
                    const void *val, size_t len)
{
    MDB_val k = { strlen(name), (void *)name }, v = { len, (void *)val };
    return sfs_mdb_errno(mdb_put(txn, st->db_meta, &k, &v, 0));
}

static int meta_del(struct sfs_store *st, MDB_txn *txn, const void *key,
                    size_t klen)
{
    MDB_val k = { klen, (void *)key };
    int rc = mdb_del(txn, st->db_meta, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : sfs_mdb_errno(rc);
}

static size_t snap_meta_key(char *buf, uint64_t epoch)
{
    memcpy(buf, META_SNAP, META_SNAP_LEN);
    sfs_put_be64((uint8_t *)buf + META_SNAP_LEN, epoch);
    return META_SNAP_LEN + 8;
}

int sfs_recv_state(struct sfs_store *st, MDB_txn *txn,
                   struct sfs_recv_state *out)
{
    memset(out, 0, sizeof(*out));
    int rc = meta_get(st, txn, META_SOURCE, out->src_uuid, 16);
    if (rc && rc != -ENOENT)
        return rc;
    out->follows = rc == 0;
    uint8_t one;
    rc = meta_get(st, txn, META_WRITABLE, &one, 1);
    if (rc && rc != -ENOENT)
        return rc;
    out->writable = rc == 0 || !out->follows;
    struct partial p;
    rc = meta_get(st, txn, META_PARTIAL, &p, sizeof(p));
    if (rc && rc != -ENOENT)
        return rc;
    out->partial = rc == 0;
    if (out->partial) {
        if (!out->follows)
            memcpy(out->src_uuid, p.src_uuid, 16);
        out->partial_from = p.from_epoch;
        out->partial_to = p.to_epoch;
        out->partial_pos = p.pos;
    }
    struct fence f;
    rc = meta_get(st, txn, META_FENCE, &f, sizeof(f));
    if (rc && rc != -ENOENT)
        return rc;
    out->held_back = rc == 0;
    out->published = out->held_back ? f.epoch : st->state.newest_snap;
    return 0;
}

static int prune_snap_records(struct sfs_store *st, MDB_txn *txn);

int sfs_recv_fence(struct sfs_store *st, MDB_txn *txn, uint64_t *epoch)
{
    struct fence f;
    int rc = meta_get(st, txn, META_FENCE, &f, sizeof(f));
    if (!rc)
        *epoch = f.epoch;
    return rc;
}

int sfs_recv_published(struct sfs_store *st, MDB_txn *txn, uint64_t *epoch)
{
    int rc = sfs_recv_fence(st, txn, epoch);
    if (rc == -ENOENT) { /* nothing held back: the newest */
        *epoch = st->state.newest_snap;
        rc = 0;
    }
    return rc;
}

/* Remove the fence: the newest snapshot is exposed; a doomed fence
 * snapshot goes unless it is the newest or held. */
static int drop_fence(struct sfs_store *st, MDB_txn *txn)
{
    struct fence f;
    int rc = meta_get(st, txn, META_FENCE, &f, sizeof(f));
    if (rc == -ENOENT)
        return 0;
    if (!rc)
        rc = meta_del(st, txn, META_FENCE, strlen(META_FENCE));
    if (rc || !f.doomed || !f.epoch || f.epoch == st->state.newest_snap)
        return rc;
    rc = sfs_snap_delete_w(st, txn, f.epoch); /* unless held meanwhile */
    return rc == -ENOENT || rc == -EBUSY ? 0 : rc;
}

int sfs_recv_publish_w(struct sfs_store *st, MDB_txn *txn)
{
    int rc = drop_fence(st, txn);
    return rc ? rc : prune_snap_records(st, txn);
}

struct find_arg {
    struct sfs_store *st;
    MDB_txn *txn;
    uint64_t src_epoch;
    struct sfs_snap_rec *out;
    int found;
};

static int find_cb(void *a, const MDB_val *k, const MDB_val *v)
{
    struct find_arg *fa = a;
    struct recv_snap rs;
    if (k->mv_size != META_SNAP_LEN + 8 || v->mv_size != sizeof(rs))
        return 0;
    memcpy(&rs, v->mv_data, sizeof(rs));
    if (rs.src_epoch != fa->src_epoch)
        return 0;
    uint64_t epoch = sfs_get_be64((const uint8_t *)k->mv_data + META_SNAP_LEN);
    int rc = sfs_snap_get(fa->st, fa->txn, epoch, fa->out);
    if (rc == -ENOENT)
        return 0;
    fa->found = rc == 0;
    return rc ? rc : 1;
}

int sfs_recv_find(struct sfs_store *st, MDB_txn *txn, uint64_t src_epoch,
                  struct sfs_snap_rec *out)
{
    struct find_arg fa = { st, txn, src_epoch, out, 0 };
    int rc = sfs_table_scan_prefix(txn, st->db_meta, META_SNAP, META_SNAP_LEN,
                                   find_cb, &fa);
    return rc < 0 ? rc : fa.found ? 0 : -ENOENT;
}

int sfs_recv_source_epoch(struct sfs_store *st, MDB_txn *txn, uint64_t epoch,
                          uint64_t *src_epoch)
{
    char key[META_SNAP_LEN + 8];
    size_t klen = snap_meta_key(key, epoch);
    MDB_val k = { klen, key }, v;
    int rc = mdb_get(txn, st->db_meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return -ENOENT;
    if (rc)
        return sfs_mdb_errno(rc);
    struct recv_snap rs;
    if (v.mv_size != sizeof(rs))
        return -EIO;
    memcpy(&rs, v.mv_data, sizeof(rs));
    *src_epoch = rs.src_epoch;
    return 0;
}

/* Records of snapshots deleted since (retention, resync) are dropped. */
static int prune_cb(void *a, const MDB_val *k, const MDB_val *v)
{
    (void)v;
    struct find_arg *fa = a;
    if (k->mv_size != META_SNAP_LEN + 8)
        return 0;
    struct sfs_snap_rec s;
    uint64_t epoch = sfs_get_be64((const uint8_t *)k->mv_data + META_SNAP_LEN);
    int rc = sfs_snap_get(fa->st, fa->txn, epoch, &s);
    if (rc == -ENOENT && fa->found < 64) {
        fa->out[fa->found++].epoch = epoch;
        return 0;
    }
    return rc;
}

static int prune_snap_records(struct sfs_store *st, MDB_txn *txn)
{
    struct sfs_snap_rec gone[64];
    struct find_arg fa = { st, txn, 0, gone, 0 };
    int rc = sfs_table_scan_prefix(txn, st->db_meta, META_SNAP, META_SNAP_LEN,
                                   prune_cb, &fa);
    for (int i = 0; !rc && i < fa.found; i++) {
        char key[META_SNAP_LEN + 8];
        size_t klen = snap_meta_key(key, gone[i].epoch);
        rc = meta_del(st, txn, key, klen);
    }
    return rc;
}

int sfs_live_changed(struct sfs_store *st, MDB_txn *txn)
{
    MDB_cursor *c;
    int rc = sfs_mdb_errno(mdb_cursor_open(txn, st->db_born, &c));
    if (rc)
        return rc;
    uint8_t first[8];
    sfs_put_be64(first, st->state.newest_snap + 1);
    MDB_val k = { 8, first }, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    mdb_cursor_close(c);
    if (mrc == MDB_NOTFOUND)
        return 0;
    return mrc ? sfs_mdb_errno(mrc) : 1;
}

int sfs_recv_abort_w(struct sfs_store *st, MDB_txn *txn)
{
    struct partial p;
    int rc = meta_get(st, txn, META_PARTIAL, &p, sizeof(p));
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc;
    if (!st->state.newest_snap)
        return -EBUSY;
    rc = sfs_rollback_w(st, txn, st->state.newest_snap, NULL);
    return rc ? rc : meta_del(st, txn, META_PARTIAL, strlen(META_PARTIAL));
}

int sfs_recv_break_w(struct sfs_store *st, MDB_txn *txn)
{
    int rc = sfs_recv_abort_w(st, txn);
    struct fence f;
    int frc = rc ? rc : meta_get(st, txn, META_FENCE, &f, sizeof(f));
    if (frc && frc != -ENOENT)
        return frc;
    if (frc == 0 && !f.epoch)
        return -ENOMSG; /* held back since the baseline: nothing exposed */
    if (frc == 0 && f.epoch != st->state.newest_snap)
        rc = sfs_recv_resync_w(st, txn, f.epoch); /* discard the unseen */
    if (!rc && frc == 0)
        rc = meta_del(st, txn, META_FENCE, strlen(META_FENCE));
    uint8_t one = 1;
    return rc ? rc : meta_put(st, txn, META_WRITABLE, &one, 1);
}

struct newer_arg {
    uint64_t epoch;
    uint64_t *epochs;
    size_t n, cap;
};

static int newer_cb(void *a, const struct sfs_snap_rec *s)
{
    struct newer_arg *na = a;
    if (s->epoch <= na->epoch)
        return 0;
    if (na->n == na->cap) {
        size_t cap = na->cap ? 2 * na->cap : 16;
        uint64_t *p = realloc(na->epochs, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        na->epochs = p;
        na->cap = cap;
    }
    na->epochs[na->n++] = s->epoch;
    return 0;
}

int sfs_recv_resync_w(struct sfs_store *st, MDB_txn *txn, uint64_t epoch)
{
    struct sfs_snap_rec base;
    int rc = sfs_snap_get(st, txn, epoch, &base);
    struct fence f;
    int frc = rc ? rc : meta_get(st, txn, META_FENCE, &f, sizeof(f));
    if (frc == 0 && f.epoch > epoch) /* what it exposed goes below */
        rc = meta_del(st, txn, META_FENCE, strlen(META_FENCE));
    else if (frc != -ENOENT)
        rc = frc;
    struct newer_arg na = { .epoch = epoch };
    if (!rc)
        rc = sfs_snap_foreach(st, txn, newer_cb, &na);
    for (size_t i = na.n; !rc && i-- > 0;)
        rc = sfs_snap_delete_w(st, txn, na.epochs[i]);
    free(na.epochs);
    if (!rc)
        rc = meta_del(st, txn, META_PARTIAL, strlen(META_PARTIAL));
    if (!rc && sfs_live_changed(st, txn))
        rc = sfs_rollback_w(st, txn, epoch, NULL);
    if (!rc)
        rc = meta_del(st, txn, META_WRITABLE, strlen(META_WRITABLE));
    return rc ? rc : prune_snap_records(st, txn);
}

static int drop_cb(void *a, const MDB_val *k, const MDB_val *v)
{
    (void)v;
    struct find_arg *fa = a;
    if (k->mv_size != META_SNAP_LEN + 8 || fa->found >= 64)
        return 1;
    fa->out[fa->found++].epoch =
        sfs_get_be64((const uint8_t *)k->mv_data + META_SNAP_LEN);
    return 0;
}

/* Remove every received-snapshot record. */
static int drop_snap_records(struct sfs_store *st, MDB_txn *txn)
{
    for (;;) {
        struct sfs_snap_rec some[64];
        struct find_arg fa = { st, txn, 0, some, 0 };
        int rc = sfs_table_scan_prefix(txn, st->db_meta, META_SNAP,
                                       META_SNAP_LEN, drop_cb, &fa);
        for (int i = 0; rc >= 0 && i < fa.found; i++) {
            char key[META_SNAP_LEN + 8];
            rc = meta_del(st, txn, key, snap_meta_key(key, some[i].epoch));
        }
        if (rc < 0 || fa.found == 0)
            return rc < 0 ? rc : 0;
    }
}

static int record_snap(struct sfs_store *st, MDB_txn *txn, uint64_t epoch,
                       const uint8_t *src_uuid, uint64_t src_epoch)
{
    struct recv_snap rs;
    memcpy(rs.src_uuid, src_uuid, 16);
    rs.src_epoch = src_epoch;
    char key[META_SNAP_LEN + 8];
    size_t klen = snap_meta_key(key, epoch);
    MDB_val k = { klen, key }, v = { sizeof(rs), &rs };
    return sfs_mdb_errno(mdb_put(txn, st->db_meta, &k, &v, 0));
}

int sfs_recv_adopt_w(struct sfs_store *st, MDB_txn *txn,
                     const uint8_t src_uuid[16], uint64_t epoch,
                     uint64_t src_epoch)
{
    int rc = drop_snap_records(st, txn);
    if (!rc)
        rc = meta_del(st, txn, META_FENCE, strlen(META_FENCE));
    if (!rc)
        rc = meta_put(st, txn, META_SOURCE, src_uuid, 16);
    if (!rc)
        rc = record_snap(st, txn, epoch, src_uuid, src_epoch);
    return rc ? rc : sfs_recv_resync_w(st, txn, epoch);
}

int sfs_recv_forget_w(struct sfs_store *st, MDB_txn *txn)
{
    int rc = sfs_recv_abort_w(st, txn);
    if (!rc)
        rc = drop_snap_records(st, txn);
    if (!rc)
        rc = meta_del(st, txn, META_FENCE, strlen(META_FENCE));
    if (!rc)
        rc = meta_del(st, txn, META_SOURCE, strlen(META_SOURCE));
    return rc ? rc : meta_del(st, txn, META_WRITABLE, strlen(META_WRITABLE));
}

/* ---- receiving ---- */

struct sfs_receiver {
    sfs_stream_read_fn read;
    void *arg;
    struct sfs_stream_hdr hdr;
    struct sfs_stream_stats stats;
    struct sfs_stream_pos pos;  /* the last checkpoint read */
    uint64_t offset;            /* stream bytes read */
    uint8_t *frame;             /* the current frame */
    size_t cap;
    uint8_t type, flags;
    uint32_t len;
    bool begun, ended;
    unsigned mode;              /* SFS_RECV_RESYNC, SFS_RECV_ADOPT */
    uint64_t adopt_epoch;
    bool rolled_back;           /* by the mode: the live tree is the base
                                   (in new versions, so it looks changed) */
    bool hold_back;             /* keep exposing what was exposed */
    struct fence fence;         /* while finishing: the fence to keep */
    struct sfs_retention ret;   /* from an 'R' frame; kind 0: none */
    uint64_t *ret_epochs;       /* sorted */
    sfs_block_source_fn block_src; /* blocks the stream does not carry */
    void *block_arg;
    uint64_t step_fetched;      /* bytes it gave in this step */
    char why[256];
};

static int fail(struct sfs_receiver *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct sfs_receiver *r, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof(r->why), fmt, ap);
    va_end(ap);
    return err;
}

size_t sfs_stream_frame_size(const uint8_t hdr[8])
{
    uint32_t len = (uint32_t)hdr[4] << 24 | (uint32_t)hdr[5] << 16 |
                   (uint32_t)hdr[6] << 8 | hdr[7];
    if (len > FRAME_MAX || hdr[2] || hdr[3])
        return 0;
    return FRAME_HDR + (size_t)len + FRAME_CRC;
}

void sfs_recv_touch(struct sfs_store *st, MDB_txn *txn, const void *frame,
                    size_t len)
{
    const uint8_t *f = frame;
    if (len < FRAME_HDR || (f[0] != F_PUT && f[0] != F_KILL))
        return;
    size_t payload = sfs_stream_frame_size(f);
    if (!payload)
        return;
    payload -= FRAME_HDR + FRAME_CRC;
    struct cur c = { f + FRAME_HDR, payload < len - FRAME_HDR
                                        ? payload : len - FRAME_HDR, false };
    uint16_t klen = get_u16(&c);
    const uint8_t *key = get_bytes(&c, klen);
    if (!key || !klen)
        return;
    sfs_vrec_touch(st, txn, key, klen);
    if (f[0] != F_PUT)
        return;
    uint32_t vlen = get_u32(&c);
    const uint8_t *val = vlen <= VAL_MAX ? get_bytes(&c, vlen) : NULL;
    MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };
    uint8_t hash[SFS_HASH_LEN];
    if (val && sfs_rec_blockref(&k, &v, hash))
        sfs_block_touch(st, txn, hash, false);
}

/* Read the next frame; its payload is r->frame + FRAME_HDR. */
static int read_frame(struct sfs_receiver *r)
{
    uint64_t at = r->offset;
    if (r->cap < FRAME_HDR) {
        r->frame = malloc(65536);
        if (!r->frame)
            return -ENOMEM;
        r->cap = 65536;
    }
    int rc = r->read(r->arg, r->frame, FRAME_HDR);
    if (rc == -ENODATA && at > 0)
        rc = -EPIPE;
    if (rc == -EPIPE)
        return fail(r, rc, "the stream ends at byte %llu, before its end "
                    "record (truncated)", (unsigned long long)at);
    if (rc)
        return rc;
    r->type = r->frame[0];
    r->flags = r->frame[1];
    r->len = (uint32_t)r->frame[4] << 24 | (uint32_t)r->frame[5] << 16 |
             (uint32_t)r->frame[6] << 8 | r->frame[7];
    if (r->len > FRAME_MAX || r->frame[2] || r->frame[3])
        return fail(r, -EBADMSG, "damaged frame header at byte %llu",
                    (unsigned long long)at);
    size_t need = FRAME_HDR + (size_t)r->len + FRAME_CRC;
    if (need > r->cap) {
        uint8_t *p = realloc(r->frame, need);
        if (!p)
            return -ENOMEM;
        r->frame = p;
        r->cap = need;
    }
    rc = r->read(r->arg, r->frame + FRAME_HDR, r->len + FRAME_CRC);
    if (rc == -ENODATA || rc == -EPIPE)
        return fail(r, -EPIPE, "the stream ends inside the frame at byte %llu "
                    "(truncated)", (unsigned long long)at);
    if (rc)
        return rc;
    const uint8_t *c = r->frame + FRAME_HDR + r->len;
    uint32_t want = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 |
                    (uint32_t)c[2] << 8 | c[3];
    if (crc32c(r->frame, FRAME_HDR + r->len) != want)
        return fail(r, -EBADMSG, "checksum mismatch in the frame at byte %llu",
                    (unsigned long long)at);
    r->offset += need;
    r->stats.bytes = r->offset;
    return 0;
}

static struct cur frame_cur(const struct sfs_receiver *r)
{
    struct cur c = { r->frame + FRAME_HDR, r->len, false };
    return c;
}

int sfs_recv_new(sfs_stream_read_fn read, void *arg, struct sfs_receiver **out)
{
    struct sfs_receiver *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->read = read;
    r->arg = arg;
    int rc = read_frame(r);
    if ((!rc && r->type != F_HEADER) || (rc == -EBADMSG && r->offset == 0))
        rc = fail(r, -EBADMSG, "not a snapfs replication stream");
    if (!rc) {
        struct cur c = frame_cur(r);
        rc = get_header(&c, &r->hdr);
        if (rc == -EBADMSG)
            fail(r, rc, "not a snapfs replication stream");
        else if (rc == -EPROTONOSUPPORT && r->hdr.version > SFS_STREAM_VERSION)
            fail(r, rc, "stream version %u is newer than the version %u this "
                 "snapfs reads: receive it with a newer snapfs",
                 r->hdr.version, SFS_STREAM_VERSION);
        else if (rc == -EPROTONOSUPPORT)
            fail(r, rc, "stream version %u (layout %#x) is not version %u "
                 "(layout %#x)", r->hdr.version, r->hdr.layout,
                 SFS_STREAM_VERSION, layout_signature());
    }
    if (rc == -EPIPE && r->offset == 0 && !r->why[0])
        rc = -ENODATA;
    if (rc) {
        *out = r; /* for sfs_recv_why; the caller frees it */
        return rc;
    }
    /* Offsets and counts continue those of the stream's earlier part. */
    r->pos = r->hdr.start;
    r->offset = r->hdr.start.bytes + r->offset;
    r->stats.bytes = r->offset;
    *out = r;
    return 0;
}

const struct sfs_stream_hdr *sfs_recv_header(const struct sfs_receiver *r)
{
    return &r->hdr;
}

const char *sfs_recv_why(const struct sfs_receiver *r)
{
    return r && r->why[0] ? r->why : NULL;
}

void sfs_recv_stats(const struct sfs_receiver *r, struct sfs_stream_stats *out)
{
    *out = r->stats;
}

void sfs_recv_free(struct sfs_receiver *r)
{
    if (!r)
        return;
    free(r->frame);
    free(r->ret_epochs);
    free(r);
}

void sfs_recv_set_mode(struct sfs_receiver *r, unsigned mode,
                       uint64_t adopt_epoch)
{
    r->mode = mode;
    r->adopt_epoch = adopt_epoch;
}

void sfs_recv_set_reader(struct sfs_receiver *r, sfs_stream_read_fn read,
                         void *arg)
{
    r->read = read;
    r->arg = arg;
}

void sfs_recv_hold_back(struct sfs_receiver *r, bool hold_back)
{
    r->hold_back = hold_back;
}

void sfs_recv_set_block_source(struct sfs_receiver *r, sfs_block_source_fn fn,
                               void *arg)
{
    r->block_src = fn;
    r->block_arg = arg;
}

/* A block the destination lacks and the frame does not carry: from the
 * block source, into RAW (owned: the caller releases it). */
static int fetch_block(struct sfs_receiver *r, const uint8_t *hash,
                       struct sfs_raw_block *raw)
{
    if (!r->block_src)
        return fail(r, -EBADMSG, "a record before byte %llu refers to a "
                    "block the stream did not carry",
                    (unsigned long long)r->offset);
    memset(raw, 0, sizeof(*raw));
    int rc = r->block_src(r->block_arg, hash, raw);
    if (!rc && raw->lsize > SFS_BLOCK_SIZE_MAX)
        rc = -EBADMSG;
    if (!rc)
        r->step_fetched += raw->csize;
    if (rc)
        sfs_raw_block_release(raw);
    return rc;
}

static void uuid_text(const uint8_t *u, char *out)
{
    for (int i = 0; i < 16; i++)
        sprintf(out + 2 * i, "%02x", u[i]);
}

/* A partial receive in ST: continue it, or roll it back (see THEORY). */
static int recv_resume(struct sfs_store *st, MDB_txn *txn,
                       struct sfs_receiver *r, bool *resumed)
{
    struct partial p;
    int rc = meta_get(st, txn, META_PARTIAL, &p, sizeof(p));
    *resumed = false;
    if (rc == -ENOENT) {
        if (r->hdr.start.len || r->hdr.start.phase || r->hdr.start.bytes)
            return fail(r, -EBUSY, "the stream resumes a receive that the "
                        "destination does not hold");
        return 0;
    }
    if (rc)
        return rc;
    bool same = !memcmp(p.src_uuid, r->hdr.src_uuid, 16) &&
                p.from_epoch == r->hdr.from_epoch &&
                p.to_epoch == r->hdr.to_epoch;
    if (same && pos_equal(&p.pos, &r->hdr.start)) {
        *resumed = true;
        return 0;
    }
    if (r->hdr.start.len || r->hdr.start.phase || r->hdr.start.bytes)
        return fail(r, -EBUSY, "the stream resumes at byte %llu but the "
                    "destination holds %s up to byte %llu",
                    (unsigned long long)r->hdr.start.bytes,
                    same ? "this stream" : "another stream",
                    (unsigned long long)p.pos.bytes);
    if (!st->state.newest_snap)
        return fail(r, -EBUSY, "the destination holds part of another full "
                    "stream; make a new destination volume");
    rc = sfs_rollback_w(st, txn, st->state.newest_snap, NULL);
    return rc ? rc : meta_del(st, txn, META_PARTIAL, strlen(META_PARTIAL));
}

int sfs_volume_is_empty(struct sfs_store *st, MDB_txn *txn)
{
    if (st->state.newest_snap || st->state.live_inodes > 1)
        return 0;
    return sfs_dir_is_empty(st, txn, SFS_VIEW_LIVE, SFS_ROOT_INO);
}

static int check_full(struct sfs_store *st, MDB_txn *txn,
                      struct sfs_receiver *r, const struct sfs_recv_state *rs)
{
    if (rs->follows && !memcmp(rs->src_uuid, r->hdr.src_uuid, 16)) {
        struct sfs_snap_rec s;
        if (!sfs_recv_find(st, txn, r->hdr.to_epoch, &s))
            return fail(r, -EALREADY, "the destination has snapshot %s "
                        "already", s.name);
    }
    int rc = sfs_volume_is_empty(st, txn);
    if (rc < 0)
        return rc;
    return rc ? 0 : fail(r, -EEXIST, "a full stream goes only into an empty "
                         "volume, and the destination is not empty");
}

static int check_incremental(struct sfs_store *st, MDB_txn *txn,
                             struct sfs_receiver *r,
                             const struct sfs_recv_state *rs)
{
    char want[33], have[33];
    uuid_text(r->hdr.src_uuid, want);
    if (!rs->follows)
        return fail(r, -ENOENT, "the destination has no snapshot of volume %s "
                    "(it needs %s first: a full stream)", want,
                    r->hdr.from_name);
    if (memcmp(rs->src_uuid, r->hdr.src_uuid, 16)) {
        uuid_text(rs->src_uuid, have);
        return fail(r, -EXDEV, "the stream is of volume %s, the destination "
                    "follows volume %s", want, have);
    }
    struct sfs_snap_rec s, base;
    if (!sfs_recv_find(st, txn, r->hdr.to_epoch, &s))
        return fail(r, -EALREADY, "the destination has snapshot %s already",
                    s.name);
    int rc = sfs_recv_find(st, txn, r->hdr.from_epoch, &base);
    if (rc == -ENOENT)
        return fail(r, -ENOENT, "the destination lacks the stream's base "
                    "snapshot %s", r->hdr.from_name);
    if (rc)
        return rc;
    if (base.epoch != st->state.newest_snap) {
        struct sfs_snap_rec newest;
        rc = sfs_snap_get(st, txn, st->state.newest_snap, &newest);
        return rc ? rc : fail(r, -ESTALE, "the destination has diverged: "
                              "snapshot %s is newer than the base %s",
                              newest.name, base.name);
    }
    return 0;
}

/* SFS_RECV_ADOPT: this volume's snapshot at r->adopt_epoch is the base. */
static int adopt_base(struct sfs_store *st, MDB_txn *txn,
                      struct sfs_receiver *r)
{
    struct sfs_snap_rec own;
    int rc = sfs_snap_get(st, txn, r->adopt_epoch, &own);
    if (rc == -ENOENT)
        return fail(r, rc, "the volume no longer has the snapshot the "
                    "stream's base %s was made from", r->hdr.from_name);
    if (rc)
        return rc;
    if (strcmp(own.name, r->hdr.from_name))
        return fail(r, -ESTALE, "the volume's snapshot %s is not the "
                    "stream's base %s", own.name, r->hdr.from_name);
    rc = sfs_recv_adopt_w(st, txn, r->hdr.src_uuid, own.epoch,
                          r->hdr.from_epoch);
    if (rc == -EBUSY)
        return fail(r, rc, "a snapshot newer than %s is held", own.name);
    return rc;
}

/* SFS_RECV_RESYNC: go back to the received snapshot that is the base. */
static int resync_to_base(struct sfs_store *st, MDB_txn *txn,
                          struct sfs_receiver *r,
                          const struct sfs_recv_state *rs)
{
    if (!rs->follows || memcmp(rs->src_uuid, r->hdr.src_uuid, 16))
        return 0; /* the checks below say why not */
    struct sfs_snap_rec base;
    int rc = sfs_recv_find(st, txn, r->hdr.from_epoch, &base);
    if (rc == -ENOENT)
        return 0;
    int changed = rc ? rc : sfs_live_changed(st, txn);
    if (changed < 0)
        return changed;
    if (base.epoch == st->state.newest_snap && !changed && !rs->writable)
        return 0;
    rc = sfs_recv_resync_w(st, txn, base.epoch);
    if (rc == -EBUSY)
        return fail(r, rc, "a snapshot newer than %s is held", base.name);
    r->rolled_back = rc == 0;
    return rc;
}

int sfs_recv_begin_w(struct sfs_store *st, MDB_txn *txn,
                     struct sfs_receiver *r)
{
    struct sfs_recv_state rs;
    int rc = sfs_recv_state(st, txn, &rs);
    if (rc)
        return rc;
    if (r->hdr.block_size != st->super.block_size)
        return fail(r, -EINVAL, "the source's block size is %u bytes, the "
                    "destination's %u", r->hdr.block_size,
                    st->super.block_size);
    bool resumed;
    rc = recv_resume(st, txn, r, &resumed);
    if (rc)
        return rc;
    if (!resumed && r->hdr.from_epoch && r->mode) {
        rc = r->mode == SFS_RECV_ADOPT ? adopt_base(st, txn, r)
                                       : resync_to_base(st, txn, r, &rs);
        if (!rc && r->mode == SFS_RECV_ADOPT)
            r->rolled_back = true;
        if (!rc)
            rc = sfs_recv_state(st, txn, &rs);
        if (rc)
            return rc;
    }
    if (!resumed) {
        rc = r->hdr.from_epoch ? check_incremental(st, txn, r, &rs)
                               : check_full(st, txn, r, &rs);
        if (rc)
            return rc;
        if (rs.follows && rs.writable)
            return fail(r, -ESTALE, "the destination was broken off and may "
                        "have diverged (resync first)");
        rc = r->hdr.from_epoch && !r->rolled_back ? sfs_live_changed(st, txn)
                                                  : 0;
        if (rc < 0)
            return rc;
        if (rc)
            return fail(r, -ESTALE, "the destination has diverged: it was "
                        "changed since its newest snapshot");
    }
    struct partial p;
    memcpy(p.src_uuid, r->hdr.src_uuid, 16);
    p.from_epoch = r->hdr.from_epoch;
    p.to_epoch = r->hdr.to_epoch;
    p.pos = r->hdr.start;
    rc = meta_put(st, txn, META_PARTIAL, &p, sizeof(p));
    r->begun = rc == 0;
    return rc;
}

static int apply_put(struct sfs_store *st, MDB_txn *txn,
                     struct sfs_receiver *r, struct sfs_codec_ctx *cc)
{
    struct cur c = frame_cur(r);
    uint16_t klen = get_u16(&c);
    const uint8_t *key = get_bytes(&c, klen);
    uint32_t vlen = get_u32(&c);
    const uint8_t *val = vlen <= VAL_MAX ? get_bytes(&c, vlen) : NULL;
    struct sfs_raw_block raw = { 0 };
    if (r->flags & PUT_HAS_BLOCK) {
        raw.codec = get_u8(&c);
        raw.lsize = get_u32(&c);
        raw.csize = get_u32(&c);
        raw.bytes = (void *)get_bytes(&c, raw.csize);
    }
    if (c.bad || c.left || !key || !val || klen == 0 || klen > SFS_KEY_MAX ||
        (r->flags & ~PUT_HAS_BLOCK) ||
        (key[0] == SFS_K_INODE && vlen != sizeof(struct sfs_inode)) ||
        raw.lsize > SFS_BLOCK_SIZE_MAX)
        return fail(r, -EBADMSG, "a damaged record before byte %llu",
                    (unsigned long long)r->offset);
    MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };
    uint8_t hash[SFS_HASH_LEN];
    bool blockref = sfs_rec_blockref(&k, &v, hash);
    bool ref_taken = false, fetched = false;
    if (blockref) {
        int rc = sfs_block_exists(st, txn, hash);
        if (rc == -ENOENT && !raw.bytes) {
            rc = fetch_block(r, hash, &raw);
            if (rc)
                return rc;
            rc = -ENOENT;
            fetched = true;
        }
        if (rc == -ENOENT) {
            if (memcmp(raw.hash, hash, SFS_HASH_LEN))
                raw.verified = false; /* verified as another block */
            memcpy(raw.hash, hash, SFS_HASH_LEN);
            rc = sfs_block_put_raw_w(st, txn, cc, &raw, false);
            if (fetched)
                sfs_raw_block_release(&raw);
            if (rc == -EIO)
                return fail(r, rc, "the block of the record before byte %llu "
                            "does not match its hash",
                            (unsigned long long)r->offset);
            ref_taken = true;
        }
        if (rc)
            return rc;
    }
    int rc = sfs_rec_set_live_w(st, txn, key, klen, val, vlen, ref_taken);
    if (rc < 0)
        return rc;
    r->stats.records++;
    if (raw.bytes || fetched) {
        r->stats.blocks++;
        r->stats.block_bytes += raw.csize;
    }
    return 0;
}

static int apply_kill(struct sfs_store *st, MDB_txn *txn,
                      struct sfs_receiver *r)
{
    struct cur c = frame_cur(r);
    uint16_t klen = get_u16(&c);
    const uint8_t *key = get_bytes(&c, klen);
    if (c.bad || c.left || !key || klen == 0 || klen > SFS_KEY_MAX)
        return fail(r, -EBADMSG, "a damaged record before byte %llu",
                    (unsigned long long)r->offset);
    int rc = sfs_rec_set_live_w(st, txn, key, klen, NULL, 0, false);
    if (rc < 0)
        return rc;
    r->stats.kills++;
    return 0;
}

static int read_checkpoint(struct sfs_receiver *r, struct cur *c)
{
    struct sfs_stream_pos pos;
    get_pos(c, &pos);
    uint64_t records = r->stats.records + r->stats.kills;
    if (c->bad || pos.records != r->hdr.start.records + records)
        return fail(r, -EBADMSG, "the checkpoint before byte %llu does not "
                    "match the records received",
                    (unsigned long long)r->offset);
    r->pos = pos;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int read_retention(struct sfs_receiver *r)
{
    struct cur c = frame_cur(r);
    struct sfs_retention *ret = &r->ret;
    memset(ret, 0, sizeof(*ret));
    ret->kind = get_u8(&c);
    ret->nrules = get_u16(&c);
    if (ret->nrules > SFS_RETENTION_RULES_MAX)
        c.bad = true;
    for (uint32_t i = 0; !c.bad && i < ret->nrules; i++) {
        get_name(&c, ret->rules[i].label);
        ret->rules[i].keep = get_u32(&c);
        if (!ret->rules[i].keep)
            c.bad = true;
    }
    ret->nsource = get_u32(&c);
    if (c.bad || ret->nsource > SFS_RETENTION_SOURCE_MAX ||
        ret->nsource > c.left / 8 || ret->kind < SFS_KEEP_MIRROR ||
        ret->kind > SFS_KEEP_MIRROR_VAULT)
        return fail(r, -EBADMSG, "a damaged retention record before byte "
                    "%llu", (unsigned long long)r->offset);
    free(r->ret_epochs);
    r->ret_epochs = malloc((ret->nsource + 1) * sizeof(uint64_t));
    if (!r->ret_epochs)
        return -ENOMEM;
    for (uint32_t i = 0; i < ret->nsource; i++)
        r->ret_epochs[i] = get_u64(&c);
    if (c.bad || c.left)
        return fail(r, -EBADMSG, "a damaged retention record before byte "
                    "%llu", (unsigned long long)r->offset);
    qsort(r->ret_epochs, ret->nsource, sizeof(uint64_t), cmp_u64);
    ret->source_epochs = r->ret_epochs;
    return 0;
}

/* A received snapshot that retention may delete. */
struct kept_candidate {
    uint64_t epoch, src_epoch;
};

struct candidates_arg {
    struct sfs_receiver *r;
    uint64_t newest;
    struct kept_candidate *v;
    size_t n, cap;
};

static int candidate_cb(void *a, const MDB_val *k, const MDB_val *v)
{
    struct candidates_arg *ca = a;
    struct recv_snap rs;
    if (k->mv_size != META_SNAP_LEN + 8 || v->mv_size != sizeof(rs))
        return 0;
    memcpy(&rs, v->mv_data, sizeof(rs));
    uint64_t epoch = sfs_get_be64((const uint8_t *)k->mv_data + META_SNAP_LEN);
    if (epoch == ca->newest || memcmp(rs.src_uuid, ca->r->hdr.src_uuid, 16))
        return 0;
    if (ca->n == ca->cap) {
        size_t cap = ca->cap ? 2 * ca->cap : 64;
        struct kept_candidate *p = realloc(ca->v, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        ca->v = p;
        ca->cap = cap;
    }
    ca->v[ca->n].epoch = epoch;
    ca->v[ca->n++].src_epoch = rs.src_epoch;
    return 0;
}

static const struct sfs_keep_rule *rule_for(const struct sfs_retention *ret,
                                            const char *name)
{
    size_t len = strcspn(name, ".");
    for (uint32_t i = 0; i < ret->nrules; i++)
        if (strlen(ret->rules[i].label) == len &&
            !strncmp(ret->rules[i].label, name, len))
            return &ret->rules[i];
    return NULL;
}

/* Should the received snapshot S (seen from the newest down, SEEN counting
 * the newer ones per rule) stay?  See struct sfs_retention. */
static bool retained(const struct sfs_receiver *r, const struct sfs_snap_rec *s,
                     uint64_t src_epoch, uint32_t *seen)
{
    const struct sfs_retention *ret = &r->ret;
    const struct sfs_keep_rule *rule = rule_for(ret, s->name);
    if (rule)
        return seen[rule - ret->rules]++ < rule->keep;
    if (ret->kind == SFS_KEEP_VAULT)
        return false;
    return bsearch(&src_epoch, ret->source_epochs, ret->nsource,
                   sizeof(uint64_t), cmp_u64) != NULL;
}

/* Apply the stream's retention after taking the snapshot at NEWEST.  The
 * newest snapshot counts toward its label's rule. */
static int apply_retention(struct sfs_store *st, MDB_txn *txn,
                           struct sfs_receiver *r, const struct sfs_snap_rec *newest)
{
    if (!r->ret.kind)
        return 0;
    struct candidates_arg ca = { r, newest->epoch, NULL, 0, 0 };
    int rc = sfs_table_scan_prefix(txn, st->db_meta, META_SNAP, META_SNAP_LEN,
                                   candidate_cb, &ca);
    uint32_t seen[SFS_RETENTION_RULES_MAX] = { 0 };
    const struct sfs_keep_rule *own = rule_for(&r->ret, newest->name);
    if (own)
        seen[own - r->ret.rules] = 1;
    for (size_t i = ca.n; rc >= 0 && i-- > 0;) { /* newest first */
        struct sfs_snap_rec s;
        rc = sfs_snap_get(st, txn, ca.v[i].epoch, &s);
        if (rc == -ENOENT) {
            rc = 0;
            continue;
        }
        if (rc || retained(r, &s, ca.v[i].src_epoch, seen))
            continue;
        if (r->hold_back && s.epoch == r->fence.epoch) {
            r->fence.doomed = 1; /* exposed: goes when it is published */
            continue;
        }
        rc = sfs_snap_holds(st, txn, s.epoch, NULL, NULL);
        if (rc > 0) {
            rc = 0;
            continue;
        }
        if (!rc)
            rc = sfs_snap_delete_w(st, txn, s.epoch);
        if (!rc)
            r->stats.pruned++;
    }
    free(ca.v);
    return rc < 0 ? rc : 0;
}

/* Before the snapshot is taken: held back, the fence stays where it is,
 * or is set at what is exposed now; otherwise it goes. */
static int fence_for_finish(struct sfs_store *st, MDB_txn *txn,
                            struct sfs_receiver *r)
{
    if (!r->hold_back)
        return drop_fence(st, txn);
    int rc = meta_get(st, txn, META_FENCE, &r->fence, sizeof(r->fence));
    if (rc == -ENOENT) {
        memset(&r->fence, 0, sizeof(r->fence));
        r->fence.epoch = st->state.newest_snap;
        rc = 0;
    }
    return rc;
}

/* The end: the counts, then the snapshot (see THEORY). */
static int finish(struct sfs_store *st, MDB_txn *txn, struct sfs_receiver *r)
{
    struct cur c = frame_cur(r);
    int rc = read_checkpoint(r, &c);
    if (rc)
        return rc;
    uint64_t puts = get_u64(&c), kills = get_u64(&c);
    (void)get_u64(&c); /* blocks: a resumed stream counts them anew */
    if (c.bad || c.left)
        return fail(r, -EBADMSG, "a damaged end record");
    if (puts != r->stats.records || kills != r->stats.kills)
        return fail(r, -EBADMSG, "the end record counts %llu records, %llu "
                    "were received", (unsigned long long)(puts + kills),
                    (unsigned long long)(r->stats.records + r->stats.kills));
    if (st->state.next_ino < r->hdr.next_ino)
        st->state.next_ino = r->hdr.next_ino;
    struct sfs_snap_rec snap;
    rc = fence_for_finish(st, txn, r);
    if (!rc)
        rc = sfs_orphans_prune_w(st, txn);
    if (!rc)
        rc = sfs_snap_take_w(st, txn, r->hdr.to_name, &snap);
    if (rc == -EEXIST)
        return fail(r, rc, "the destination has another snapshot named %s",
                    r->hdr.to_name);
    if (!rc)
        rc = sfs_snap_set_ctime_w(st, txn, snap.epoch, r->hdr.to_ctime_sec,
                                  r->hdr.to_ctime_nsec);
    if (!rc)
        rc = record_snap(st, txn, snap.epoch, r->hdr.src_uuid,
                         r->hdr.to_epoch);
    if (!rc && !r->hdr.from_epoch)
        rc = meta_put(st, txn, META_SOURCE, r->hdr.src_uuid, 16);
    if (!rc)
        rc = meta_del(st, txn, META_PARTIAL, strlen(META_PARTIAL));
    if (!rc)
        rc = apply_retention(st, txn, r, &snap);
    if (!rc && r->hold_back)
        rc = meta_put(st, txn, META_FENCE, &r->fence, sizeof(r->fence));
    if (!rc)
        rc = prune_snap_records(st, txn);
    r->ended = rc == 0;
    return rc;
}

static int save_checkpoint(struct sfs_store *st, MDB_txn *txn,
                           struct sfs_receiver *r)
{
    struct partial p;
    memcpy(p.src_uuid, r->hdr.src_uuid, 16);
    p.from_epoch = r->hdr.from_epoch;
    p.to_epoch = r->hdr.to_epoch;
    p.pos = r->pos;
    return meta_put(st, txn, META_PARTIAL, &p, sizeof(p));
}

int sfs_recv_step_w(struct sfs_store *st, MDB_txn *txn,
                    struct sfs_receiver *r, struct sfs_codec_ctx *cc,
                    uint64_t max_bytes)
{
    if (!r->begun || r->ended)
        return -EINVAL;
    uint64_t start = r->offset;
    r->step_fetched = 0;
    for (;;) {
        int rc = read_frame(r);
        if (rc)
            return rc;
        struct cur c;
        switch (r->type) {
        case F_PUT:
            rc = apply_put(st, txn, r, cc);
            break;
        case F_KILL:
            rc = apply_kill(st, txn, r);
            break;
        case F_CHECKPOINT:
            c = frame_cur(r);
            rc = read_checkpoint(r, &c);
            if (!rc && c.left)
                rc = fail(r, -EBADMSG, "a damaged checkpoint");
            if (!rc && r->offset - start + r->step_fetched >= max_bytes)
                return save_checkpoint(st, txn, r);
            break;
        case F_RETENTION:
            rc = read_retention(r);
            break;
        case F_END:
            rc = finish(st, txn, r);
            return rc ? rc : 1;
        default:
            rc = fail(r, -EBADMSG, "a frame of unknown type %#x at byte %llu",
                      r->type, (unsigned long long)(r->offset - r->len -
                                                    FRAME_HDR - FRAME_CRC));
        }
        if (rc)
            return rc;
    }
}

/* ---- resume tokens ---- */

void sfs_stream_token_format(const struct sfs_recv_state *s, char *out)
{
    struct buf b = { 0 };
    put_bytes(&b, s->src_uuid, 16);
    put_u64(&b, s->partial_from);
    put_u64(&b, s->partial_to);
    put_pos(&b, &s->partial_pos);
    out[0] = 0;
    for (size_t i = 0; !b.failed && i < b.len && 2 * i + 2 < SFS_STREAM_TOKEN_MAX;
         i++)
        sprintf(out + 2 * i, "%02x", b.p[i]);
    free(b.p);
}

int sfs_stream_token_parse(const char *text, uint8_t src_uuid[16],
                           uint64_t *from_epoch, uint64_t *to_epoch,
                           struct sfs_stream_pos *pos)
{
    size_t n = strlen(text);
    if (n % 2 || n / 2 > SFS_STREAM_TOKEN_MAX)
        return -EINVAL;
    uint8_t bytes[SFS_STREAM_TOKEN_MAX];
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(text + 2 * i, "%2x", &v) != 1)
            return -EINVAL;
        bytes[i] = (uint8_t)v;
    }
    struct cur c = { bytes, n / 2, false };
    const uint8_t *u = get_bytes(&c, 16);
    if (u)
        memcpy(src_uuid, u, 16);
    *from_epoch = get_u64(&c);
    *to_epoch = get_u64(&c);
    get_pos(&c, pos);
    return c.bad || c.left ? -EINVAL : 0;
}
