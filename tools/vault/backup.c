/*
 * backup.c - the archiver: one snapshot of a volume into a vault,
 * incremental forever (see vault.h for what it guarantees).
 *
 * THEORY
 *
 * What a backup sends.  A snapfs snapshot is a set of versioned records,
 * and the replication stream (store/stream.c) already knows how to name
 * them: all of them (a full stream), or exactly the ones that differ
 * between two snapshots (an incremental stream, read from the birth and
 * death indexes: its cost follows the change, not the volume).  A backup
 * runs that sender with blocks omitted and keeps its frames (the
 * records) as metadata blobs, each block the records name as a data
 * blob named by its keyed hash - uploaded only if the index lacks it.
 *
 * Incremental forever.  The base of a backup is the vault's newest
 * backup of the same volume (by the source volume's UUID and the
 * snapshot's epoch, which a volume never reuses) older than the snapshot,
 * provided the source still has that snapshot: held while it is read,
 * the base makes an incremental stream whose size, and the blocks it
 * names, follow the change since.  Time and uploaded bytes are those of
 * the change.  Without a usable base (first backup, base snapshot deleted
 * at the source) the records are sent whole, but blocks still only if the
 * vault lacks them: no data travels twice.
 *
 * Chains.  A backup's metadata is therefore a link: a full one, or an
 * incremental one naming the link of its base (prev).  A snapshot is its
 * chain of links back to a full one.  Choices and their costs:
 *
 *   - Every backup stays restorable on its own: a restore reads the chain
 *     and replays it (restore.c: later records and kills override earlier
 *     ones, in a scratch table), then writes one full stream and fetches
 *     only the blocks the snapshot itself refers to.  Blocks that only
 *     intermediate states referred to are never fetched.
 *   - Links are blobs that manifests point to, not manifests: forgetting a
 *     snapshot deletes its manifest, and later snapshots keep the links
 *     they chain through, so forgetting never breaks a chain.  (A pruner
 *     would keep every link and block reachable from a kept manifest.)
 *   - A restore's cost grows with the chain (its metadata, not its data),
 *     so chains are bounded: when the chain of the base is VAULT_DEPTH_MAX
 *     links long, or its incrementals together hold more bytes than its
 *     full link, the backup sends its records whole and starts a new
 *     chain.  That costs a walk and an upload of the volume's metadata
 *     (never its data) once per chain: amortised, each backup still costs
 *     in proportion to its change, and a restore reads at most about
 *     twice the snapshot's metadata plus VAULT_DEPTH_MAX small links.
 *
 * Blocks are stored smaller than the volume keeps them: a volume
 * compresses for speed (zstd level 1), a vault is written once and kept,
 * so each block is decoded, checked against its hash and compressed again
 * at VAULT_DATA_LEVEL when that pays (pack.c's THEORY: what is tried,
 * what is skipped, why the format does not change), on worker threads
 * that hand blocks back in the sender's order (squeeze.c).
 *
 * Sizes in the manifest: logical (apparent sizes of its files) and files
 * (its objects) are the base's plus what the records change (an inode's
 * old size read from the base's view at the source), so an incremental
 * never walks the volume for them; added (logical bytes of the blocks
 * uploaded) and stored (bytes the backup put into the store).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "repo.h"

#define VAULT_DEPTH_MAX 64
/* zstd's level for the blocks a backup stores (pack.c's THEORY) */
#define VAULT_DATA_LEVEL 6
#define SEND_STEP_RECORDS 4096

struct backup {
    struct vault *v;
    struct sfs_store *st;
    MDB_txn *txn;                  /* the sender's step */
    const struct vault_backup_opts *o;
    struct vault_backup_result *r;
    uint64_t from, to;             /* source epochs */
    struct vault_frames frames;
    struct vault_chunker chunker;
    struct vault_link link;
    size_t chunk_cap;
    struct sfs_stream_hdr hdr;
    bool have_hdr, ended;
    int64_t files, logical;        /* changes from the base */
    uint64_t progress, total, inodes;
    uint64_t mapped;               /* bytes read since the volume's map
                                      was last released */
    struct vault_squeeze *squeeze; /* blocks stored smaller (pack.c) */
};

/* ---- the base ---- */

struct base_scan {
    struct sfs_store *st;
    const struct sfs_snap_rec *snap;
    struct vault_snapshot *cands;  /* this volume's backups */
    size_t n, cap;
    struct vault_snapshot same;    /* the snapshot itself, if vaulted */
    bool found_same;
};

static int base_cb(void *arg, const uint8_t id[VC_ID],
                   const struct vault_manifest *m)
{
    struct base_scan *b = arg;
    if (!m || memcmp(m->volume, b->st->super.uuid, 16))
        return 0; /* damaged manifests are no base (check reports them) */
    if (m->epoch == b->snap->epoch) {
        memcpy(b->same.id, id, VC_ID);
        b->same.m = *m;
        b->found_same = true;
        return 0;
    }
    if (m->epoch > b->snap->epoch)
        return 0;
    if (vault_grow(&b->cands, &b->cap, b->n, sizeof(*b->cands)))
        return -ENOMEM;
    memcpy(b->cands[b->n].id, id, VC_ID);
    b->cands[b->n++].m = *m;
    return 0;
}

static int newest_first(const void *a, const void *b)
{
    const struct vault_snapshot *x = a, *y = b;
    return x->m.epoch > y->m.epoch ? -1 : x->m.epoch < y->m.epoch;
}

/* Does the source still have the snapshot at EPOCH?  Its name now. */
static bool source_has(struct sfs_store *st, uint64_t epoch, char *name)
{
    MDB_txn *txn;
    struct sfs_snap_rec rec;
    if (sfs_txn_begin(st, NULL, false, &txn))
        return false;
    int rc = sfs_snap_get(st, txn, epoch, &rec);
    mdb_txn_abort(txn);
    if (!rc)
        snprintf(name, SFS_NAME_MAX + 1, "%s", rec.name);
    return rc == 0;
}

/* A chain that has grown past its bounds starts again (see THEORY). */
static bool chain_full(const struct vault_manifest *m)
{
    return m->depth >= VAULT_DEPTH_MAX || m->chain_bytes > m->full_bytes;
}

/* Pick the base among the candidates and hold it: *BASE set (held, its
 * current name in HELD), or left zero for a full stream. */
static int pick_base(struct backup *b, struct base_scan *s,
                     struct vault_snapshot *base, char *held)
{
    memset(base, 0, sizeof(*base));
    held[0] = 0;
    if (s->n)
        qsort(s->cands, s->n, sizeof(*s->cands), newest_first);
    for (size_t i = 0; i < s->n; i++) {
        char name[SFS_NAME_MAX + 1];
        if (!source_has(b->st, s->cands[i].m.epoch, name))
            continue;
        if (chain_full(&s->cands[i].m))
            break; /* start a new chain from this one's state */
        if (b->o->hold) {
            int rc = b->o->hold(b->o->hold_arg, name, true);
            if (rc == -ENOENT)
                continue; /* deleted meanwhile */
            if (rc)
                return vault_fail(b->v, rc, "holding the base snapshot %s: "
                                  "%s", name, strerror(-rc));
        }
        snprintf(held, SFS_NAME_MAX + 1, "%s", name);
        *base = s->cands[i];
        return 0;
    }
    return 0;
}

/* ---- frames ---- */

static int add_chunk_id(struct backup *b, const uint8_t id[VC_ID])
{
    struct vault_link *l = &b->link;
    if (l->nchunks == VAULT_CHUNKS_MAX)
        return vault_fail(b->v, -EFBIG, "the snapshot's metadata is larger "
                          "than a vault keeps (%u MiB)", VAULT_CHUNKS_MAX);
    if (vault_grow(&l->chunks, &b->chunk_cap, l->nchunks, VC_ID))
        return -ENOMEM;
    memcpy(l->chunks[l->nchunks++], id, VC_ID);
    return 0;
}

static int emit_chunk(void *arg, const void *chunk, size_t len)
{
    struct backup *b = arg;
    uint8_t id[VC_ID];
    int rc = vault_add_plain(b->v, VB_META, chunk, (uint32_t)len, id);
    return rc < 0 ? rc : add_chunk_id(b, id);
}

/* A block back from the workers (squeeze.c), in the vault's form and
 * sealed: into its pack. */
static int block_packed(void *arg, const struct vault_pack_entry *e,
                        const uint8_t *sealed, int rc)
{
    struct backup *b = arg;
    if (rc)
        return vault_fail(b->v, rc, "reading a block of the snapshot: %s "
                          "(snapfs fsck tells more)",
                          rc == -EBADMSG ? "it does not match its hash"
                                         : strerror(-rc));
    rc = vault_move_blob(b->v, e, sealed);
    if (rc)
        return rc;
    b->r->blocks_new++;
    b->r->block_bytes_new += e->lsize;
    b->progress += e->lsize;
    return 0;
}

/* Count BYTES more read through the volume's map, releasing it every
 * VAULT_MAP_RELEASE (bounded memory: repo.h). */
static void mapped(struct backup *b, uint64_t bytes)
{
    if ((b->mapped += bytes) >= VAULT_MAP_RELEASE) {
        vault_map_release(b->st);
        b->mapped = 0;
    }
}

/* The block a record names, uploaded unless the vault has it (or is
 * packing it already): fetched here, put into the vault's form by the
 * workers, packed by block_packed. */

static int backup_block(struct backup *b, const uint8_t hash[SFS_HASH_LEN])
{
    struct vault *v = b->v;
    uint8_t id[VC_ID];
    vc_blob_id(&v->keys, hash, id);
    b->r->blocks++;
    const struct vault_loc *have = vault_index_find(v->index, id);
    if (have) {
        b->progress += have->lsize;
        return 0;
    }
    struct sfs_raw_block raw;
    int rc = sfs_block_fetch(b->st, b->txn, hash, &raw);
    if (rc)
        return vault_fail(v, rc, "reading a block of the snapshot: %s "
                          "(snapfs fsck tells more)", strerror(-rc));
    mapped(b, raw.csize);
    rc = vault_reserve_blob(v, VB_DATA, id, raw.lsize);
    if (rc < 0) {
        sfs_raw_block_release(&raw);
        return rc;
    }
    return vault_squeeze_add(b->squeeze, id, &raw, block_packed, b);
}

/* An inode record put (NEW) or killed (NEW NULL): files and logical. */
static int account_inode(struct backup *b, const uint8_t *key, size_t klen,
                         const struct sfs_inode *new)
{
    struct sfs_inode old;
    int rc = b->from && klen == 9
                 ? sfs_inode_get(b->st, b->txn, b->from, sfs_get_be64(key + 1),
                                 &old)
                 : -ENOENT;
    if (rc && rc != -ENOENT)
        return vault_fail(b->v, rc, "reading the base's inode: %s",
                          strerror(-rc));
    bool had = rc == 0;
    b->files += (new != NULL) - had;
    if (had && S_ISREG(old.mode))
        b->logical -= (int64_t)old.size;
    if (new && S_ISREG(new->mode))
        b->logical += (int64_t)new->size;
    if (new)
        b->inodes++;
    return 0;
}

static int on_header(struct backup *b, const struct sfs_stream_frame *f)
{
    int rc = sfs_stream_header_parse(f, &b->hdr);
    if (rc || b->hdr.from_epoch != b->from || b->hdr.to_epoch != b->to)
        return vault_fail(b->v, rc ? rc : -EPROTO, "the sender's stream "
                          "header is not the one asked for");
    b->have_hdr = true;
    return 0;
}

static int on_put(struct backup *b, const struct sfs_stream_frame *f)
{
    mapped(b, f->plen); /* the records the sender read */
    int rc = f->blockref ? backup_block(b, f->hash) : 0;
    if (!rc && f->key[0] == SFS_K_INODE) {
        struct sfs_inode in;
        memcpy(&in, f->val, sizeof(in));
        rc = account_inode(b, f->key, f->klen, &in);
    }
    return rc;
}

/* One frame of the sender's stream: kept (but checkpoints), and for a
 * record its block and its sizes. */
static int on_frame(void *arg, const struct sfs_stream_frame *f)
{
    struct backup *b = arg;
    int rc = 0;
    if (b->o->interrupted && *b->o->interrupted)
        return vault_fail(b->v, -EINTR, "interrupted");
    switch (f->type) {
    case SFS_FRAME_HEADER:
        rc = on_header(b, f);
        break;
    case SFS_FRAME_PUT:
        rc = on_put(b, f);
        b->r->records++;
        break;
    case SFS_FRAME_KILL:
        rc = f->key[0] == SFS_K_INODE ? account_inode(b, f->key, f->klen,
                                                      NULL)
                                      : 0;
        b->r->records++;
        break;
    case SFS_FRAME_END:
        b->ended = true;
        break;
    case SFS_FRAME_CHECKPOINT:
        return 0; /* a restore writes its own */
    default:
        return vault_fail(b->v, -EPROTO, "the sender sent a frame of type "
                          "%c", f->type);
    }
    if (!rc)
        rc = vault_chunker_add(&b->chunker, f->payload - 8, f->plen + 12);
    if (!rc && b->o->progress)
        b->o->progress(b->o->progress_arg, b->progress, b->total, b->inodes);
    return rc;
}

static int write_frames(void *arg, const void *buf, size_t len)
{
    struct backup *b = arg;
    return vault_frames_feed(&b->frames, buf, len, on_frame, b);
}

/* Run the sender FROM -> TO with blocks omitted through on_frame. */
static int send_stream(struct backup *b)
{
    int rc = sfs_txn_begin(b->st, NULL, false, &b->txn);
    if (rc)
        return vault_fail(b->v, rc, "reading the volume: %s", strerror(-rc));
    struct sfs_sender *s = NULL;
    rc = sfs_send_new(b->st, b->txn, b->from, b->to, NULL, write_frames, b,
                      &s);
    if (!rc)
        sfs_send_omit_blocks(s);
    while (!rc) {
        rc = sfs_send_step(s, b->txn, SEND_STEP_RECORDS);
        if (rc)
            break;
        mdb_txn_reset(b->txn);
        rc = sfs_mdb_errno(mdb_txn_renew(b->txn));
    }
    mdb_txn_abort(b->txn);
    b->txn = NULL;
    b->r->meta_bytes = b->chunker.bytes;
    sfs_send_free(s);
    if (rc < 0 && !b->v->why[0])
        vault_fail(b->v, rc, "reading the volume: %s", strerror(-rc));
    if (rc == 1 && (!b->have_hdr || !b->ended ||
                    vault_frames_end(&b->frames)))
        return vault_fail(b->v, -EPROTO, "the sender's stream ended early");
    return rc < 0 ? rc : 0;
}

/* ---- the link and the manifest ---- */

static int write_link(struct backup *b, const struct vault_snapshot *base,
                      uint8_t id[VC_ID])
{
    struct vault_link *l = &b->link;
    l->kind = b->from ? VAULT_LINK_INCR : VAULT_LINK_FULL;
    l->from_epoch = b->from;
    l->to_epoch = b->to;
    l->bytes = b->chunker.bytes;
    l->records = b->r->records;
    if (b->from) {
        memcpy(l->prev, base->m.link, VC_ID);
        l->depth = base->m.depth + 1;
        l->chain_bytes = base->m.chain_bytes + l->bytes;
        l->full_bytes = base->m.full_bytes;
    } else {
        l->depth = 1;
        l->full_bytes = l->bytes;
    }
    struct vw w = { 0 };
    int rc = vault_link_encode(l, &w);
    if (!rc)
        rc = vault_add_plain(b->v, VB_CHAIN, w.p, (uint32_t)w.len, id);
    vw_free(&w);
    return rc < 0 ? rc : 0;
}

static void add_label(struct vault_manifest *m, const char *label)
{
    if (!label[0] || m->nlabels == VAULT_LABELS_MAX)
        return;
    for (uint32_t i = 0; i < m->nlabels; i++)
        if (!strcmp(m->labels[i], label))
            return;
    snprintf(m->labels[m->nlabels++], sizeof(m->labels[0]), "%s", label);
}

static void fill_manifest(struct backup *b, const struct sfs_snap_rec *snap,
                          const struct vault_snapshot *base,
                          struct vault_manifest *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", snap->name);
    m->ctime_sec = snap->ctime_sec;
    m->ctime_nsec = snap->ctime_nsec;
    m->epoch = snap->epoch;
    memcpy(m->volume, b->st->super.uuid, 16);
    char label[SFS_NAME_MAX + 1];
    vault_label_of(snap->name, label);
    add_label(m, label);
    for (uint32_t i = 0; i < b->o->nlabels; i++)
        add_label(m, b->o->labels[i]);
    m->backup_time = time(NULL);
    if (gethostname(m->host, sizeof(m->host) - 1))
        snprintf(m->host, sizeof(m->host), "unknown");
    m->base_epoch = b->from;
    m->block_size = b->st->super.block_size;
    m->codec = b->st->super.codec;
    m->codec_level = b->st->super.codec_level;
    m->volume_size = b->st->super.volume_size;
    m->next_ino = b->hdr.next_ino;
    int64_t files = b->files, logical = b->logical;
    if (b->from) {
        files += (int64_t)base->m.files;
        logical += (int64_t)base->m.logical;
    }
    m->files = files > 0 ? (uint64_t)files : 0;
    m->logical = logical > 0 ? (uint64_t)logical : 0;
    m->added = b->r->block_bytes_new;
    m->depth = b->link.depth;
    m->chain_bytes = b->link.chain_bytes;
    m->full_bytes = b->link.full_bytes;
}

static int write_manifest(struct backup *b, struct vault_snapshot *out)
{
    struct vault *v = b->v;
    struct vw obj = { 0 };
    /* stored: everything this backup put, the manifest included (its
     * own size is known before it is sealed: plaintext + overhead) */
    int rc = vault_manifest_encode(&v->keys, &out->m, &obj);
    if (!rc) {
        out->m.stored = v->uploaded + obj.len;
        obj.len = 0;
        rc = vault_manifest_encode(&v->keys, &out->m, &obj);
    }
    if (!rc)
        rc = vault_put_object(v, "snapshots", &obj, out->id);
    vw_free(&obj);
    return rc;
}

/* ---- the backup ---- */

static int find_base(struct backup *b, const struct sfs_snap_rec *snap,
                     struct vault_snapshot *base, char *held)
{
    struct base_scan s = { .st = b->st, .snap = snap };
    int rc = vault_each_manifest(b->v, true, base_cb, &s);
    if (!rc && s.found_same) {
        b->r->already = true;
        b->r->snap = s.same;
    }
    if (!rc && !s.found_same)
        rc = pick_base(b, &s, base, held);
    free(s.cands);
    return rc;
}

/* What the stream will carry, for the progress's time left: the volume's
 * logical bytes for a full backup; for an incremental, the blocks born
 * since the base (an estimate from above, sfs_diff_blocks_born), or 0
 * (no time left shown) if they cannot be counted. */
static uint64_t expected_bytes(struct backup *b)
{
    if (!b->from)
        return b->st->state.ref_logical;
    MDB_txn *txn;
    uint64_t blocks = 0;
    if (sfs_txn_begin(b->st, NULL, false, &txn))
        return 0;
    if (sfs_diff_blocks_born(b->st, txn, b->from, b->to, &blocks))
        blocks = 0;
    mdb_txn_abort(txn);
    return blocks * b->st->super.block_size;
}

static int run_backup(struct backup *b, const struct sfs_snap_rec *snap,
                      const struct vault_snapshot *base)
{
    b->from = base->m.epoch;
    b->to = snap->epoch;
    b->total = expected_bytes(b);
    b->chunker.emit = emit_chunk;
    b->chunker.arg = b;
    int rc = send_stream(b);
    if (!rc)
        rc = vault_squeeze_drain(b->squeeze, block_packed, b);
    if (!rc)
        rc = vault_chunker_flush(&b->chunker);
    uint8_t link_id[VC_ID];
    if (!rc)
        rc = write_link(b, base, link_id);
    if (!rc)
        rc = vault_flush(b->v);
    if (rc)
        return rc;
    struct vault_snapshot *out = &b->r->snap;
    fill_manifest(b, snap, base, &out->m);
    memcpy(out->m.link, link_id, VC_ID);
    return write_manifest(b, out);
}

int vault_backup(struct vault *v, struct sfs_store *st,
                 const struct sfs_snap_rec *snap,
                 const struct vault_backup_opts *o,
                 struct vault_backup_result *r)
{
    memset(r, 0, sizeof(*r));
    v->pack_size = o->pack_size ? o->pack_size : VAULT_PACK_DEFAULT;
    v->uploaded = 0;
    int rc = vault_load_index(v, true, &r->recovered);
    struct backup b = { .v = v, .st = st, .o = o, .r = r };
    if (!rc)
        rc = vault_squeeze_new(VAULT_DATA_LEVEL, &v->keys, &b.squeeze);
    struct vault_snapshot base;
    char held[SFS_NAME_MAX + 1] = "";
    if (!rc)
        rc = find_base(&b, snap, &base, held);
    if (!rc && !r->already) {
        snprintf(r->base, sizeof(r->base), "%s", held);
        rc = run_backup(&b, snap, &base);
    } else if (!rc) {
        rc = vault_flush(v); /* an index for the packs recovered */
    }
    if (held[0] && o->hold)
        o->hold(o->hold_arg, held, false);
    r->uploaded = v->uploaded;
    r->packs = v->packs_written;
    vault_squeeze_free(b.squeeze);
    vault_frames_free(&b.frames);
    vault_chunker_free(&b.chunker);
    vault_link_free(&b.link);
    return rc;
}
