/*
 * restore.c - the restorer: a vaulted snapshot into a new volume.
 *
 * THEORY.  A snapshot's metadata is a chain of links (backup.c): a full
 * stream's records and the incremental streams' after it.  Replaying the
 * chain through a receiver would make every intermediate state, and fetch
 * the blocks of each; instead the records are replayed into a scratch
 * table (an LMDB environment of its own, on disk: memory stays bounded
 * whatever the volume's size) where a later put or kill of a key
 * overrides an earlier one, so the table ends holding exactly the
 * snapshot's records.  Those are then written as one full stream
 * (sfs_stream_writer: the kinds in the order a full sender walks them,
 * each in key order) that a receiver applies to the new store, asking
 * the vault for each block the store does not have yet (its block
 * source): only blocks the snapshot refers to are fetched, each once,
 * and in the order a full backup packed them, so reads run along packs
 * (blobio.c's windows).  Every block is checked against its hash before
 * the store takes it: by prefetch.c's workers, on threads of their own
 * (sfs_block_verify), or by the receiver for a block read directly, as
 * for any stream; the receiver takes the snapshot, named and dated as the
 * source's, in its last transaction; then the new volume forgets the
 * source (it is an ordinary volume, whose live tree is the snapshot).
 *
 * Costs: scratch space about the size of the snapshot's metadata; time
 * the chain's metadata (bounded by backup.c's rule) plus the snapshot's
 * blocks.  Memory: the scratch table's map and the new store's are
 * released as they are read (repo.h's vault_env_release), so neither
 * grows the resident set with the volume; prefetch.c's buffers are
 * bounded.  Guarantees: a damaged, missing or truncated metadata blob,
 * link or pack is an error (-EBADMSG, -ENOENT: why names it) before the
 * new store has a snapshot; a block that does not match its hash is -EIO.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo.h"

#define SCRATCH_MAP ((size_t)1 << 40)   /* address space, not disk */
#define SCRATCH_BATCH 65536            /* records per scratch commit */
#define RECV_BATCH_BYTES (32u << 20)
#define SYNTH_RECORDS 256              /* records written per refill */
#define SCRATCH_RELEASE 16384          /* records read between releases */

struct vault_restorer {
    struct vault *v;
    const struct vault_snapshot *s;
    char *scratch;                 /* its directory */
    struct vault_link *links;      /* the full link first */
    size_t nlinks;
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *txn;
    uint64_t pending;
    bool scratch_made;
    struct sfs_stream_hdr hdr;     /* of the link replayed last */
    const struct vault_restore_opts *o;
    uint64_t block_bytes;
    struct vault_restore_result *r;
    vault_key_filter keep;         /* the records a store gets (NULL: all) */
    void *keep_arg;
    struct vault_prefetch *pf;     /* reading blocks ahead, while receiving */
    struct sfs_store *st;          /* the new store, while receiving */
    uint64_t mapped;               /* bytes received since its map was
                                      released (repo.h) */
};

/* ---- the scratch table ---- */

static int scratch_open(struct vault_restorer *rs, const char *dir)
{
    if (mkdir(dir, 0700))
        return vault_fail(rs->v, -errno, "%s: %s", dir, strerror(errno));
    rs->scratch_made = true;
    int rc = mdb_env_create(&rs->env);
    if (!rc)
        rc = mdb_env_set_mapsize(rs->env, SCRATCH_MAP);
    if (!rc)
        rc = mdb_env_open(rs->env, dir, MDB_NOSYNC | MDB_NOMETASYNC, 0600);
    if (!rc)
        rc = mdb_txn_begin(rs->env, NULL, 0, &rs->txn);
    if (!rc)
        rc = mdb_dbi_open(rs->txn, NULL, 0, &rs->dbi);
    rc = sfs_mdb_errno(rc);
    return rc ? vault_fail(rs->v, rc, "%s: the scratch table: %s", dir,
                           strerror(-rc))
              : 0;
}

static void scratch_close(struct vault_restorer *rs, const char *dir)
{
    if (rs->txn)
        mdb_txn_abort(rs->txn);
    rs->txn = NULL;
    if (rs->env)
        mdb_env_close(rs->env);
    rs->env = NULL;
    char p[PATH_MAX];
    const char *files[] = { "data.mdb", "lock.mdb" };
    for (size_t i = 0; i < 2; i++)
        if (snprintf(p, sizeof(p), "%s/%s", dir, files[i]) < (int)sizeof(p))
            unlink(p);
    rmdir(dir);
}

/* Commit the scratch table now and then (bounded memory). */
static int scratch_step(struct vault_restorer *rs)
{
    if (++rs->pending < SCRATCH_BATCH)
        return 0;
    rs->pending = 0;
    vault_env_release(rs->env); /* resident memory: repo.h */
    int rc = mdb_txn_commit(rs->txn);
    rs->txn = NULL;
    if (!rc)
        rc = mdb_txn_begin(rs->env, NULL, 0, &rs->txn);
    return rc ? vault_fail(rs->v, sfs_mdb_errno(rc), "the scratch table: "
                           "%s", mdb_strerror(rc))
              : 0;
}

/* ---- replaying links ---- */

/* A record of a link's stream into the scratch table; the last link's
 * header is the snapshot's. */
static int on_frame(void *arg, const struct sfs_stream_frame *f)
{
    struct vault_restorer *rs = arg;
    MDB_val k = { f->klen, (void *)f->key }, v = { f->vlen, (void *)f->val };
    int rc = 0;
    if (rs->o->interrupted && *rs->o->interrupted)
        return vault_fail(rs->v, -EINTR, "interrupted");
    if (f->type == SFS_FRAME_HEADER)
        return sfs_stream_header_parse(f, &rs->hdr);
    if (f->type == SFS_FRAME_PUT)
        rc = mdb_put(rs->txn, rs->dbi, &k, &v, 0);
    else if (f->type == SFS_FRAME_KILL)
        rc = mdb_del(rs->txn, rs->dbi, &k, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return vault_fail(rs->v, sfs_mdb_errno(rc), "the scratch table: %s",
                          mdb_strerror(rc));
    return scratch_step(rs);
}

/* ---- the full stream, written from the scratch table ---- */

static const uint8_t kinds[] = { SFS_K_INODE, SFS_K_DIRENT, SFS_K_XATTR,
                                 SFS_K_EXTENT };

struct synth {
    struct vault_restorer *rs;
    MDB_txn *txn;
    MDB_cursor *cur;
    unsigned kind;             /* index into kinds; past the end: done */
    bool started;              /* the cursor is on a record of kind */
    struct sfs_stream_writer *w;
    struct vw out;             /* written, not yet read */
    size_t off;
    bool finished;
    bool walking;              /* the prefetcher's walk: counts nothing */
    uint64_t read;             /* records read since the map's release */
    int err;
};

static int synth_write(void *arg, const void *buf, size_t len)
{
    struct synth *s = arg;
    if (s->off && s->off == s->out.len)
        s->off = s->out.len = 0;
    vw_bytes(&s->out, buf, len);
    return s->out.failed ? -ENOMEM : 0;
}

/* The next record of the current kind, or the first of the next kind. */
static int synth_next(struct synth *s, MDB_val *k, MDB_val *v)
{
    while (s->kind < sizeof(kinds)) {
        int rc;
        if (!s->started) {
            k->mv_size = 1;
            k->mv_data = (void *)&kinds[s->kind];
            rc = mdb_cursor_get(s->cur, k, v, MDB_SET_RANGE);
            s->started = true;
        } else {
            rc = mdb_cursor_get(s->cur, k, v, MDB_NEXT);
        }
        if (!rc && k->mv_size && ((uint8_t *)k->mv_data)[0] == kinds[s->kind])
            return 0;
        if (rc && rc != MDB_NOTFOUND)
            return sfs_mdb_errno(rc);
        s->kind++;
        s->started = false;
    }
    return 1;
}

/* Write up to SYNTH_RECORDS more records (the end after the last). */
static int synth_more(struct synth *s)
{
    for (int i = 0; i < SYNTH_RECORDS; i++) {
        MDB_val k, v;
        int rc = synth_next(s, &k, &v);
        if (++s->read == SCRATCH_RELEASE) {
            vault_env_release(s->rs->env); /* K, V stay valid */
            s->read = 0;
        }
        if (rc == 1) {
            s->finished = true;
            return sfs_stream_writer_end(s->w);
        }
        if (!rc && s->rs->keep &&
            !s->rs->keep(s->rs->keep_arg, k.mv_data, k.mv_size))
            continue;
        if (!rc)
            rc = sfs_stream_writer_put(s->w, k.mv_data, k.mv_size, v.mv_data,
                                       v.mv_size);
        if (rc)
            return rc;
        if (s->walking)
            continue;
        s->rs->r->records++;
        if (((uint8_t *)k.mv_data)[0] == SFS_K_INODE)
            s->rs->r->files++;
    }
    return 0;
}

/* sfs_stream_read_fn over the synthesised stream. */
static int synth_read(void *arg, void *buf, size_t len)
{
    struct synth *s = arg;
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        if (s->off == s->out.len) {
            if (s->finished)
                return got ? -EPIPE : -ENODATA;
            int rc = synth_more(s);
            if (rc) {
                s->err = rc;
                return rc;
            }
            continue;
        }
        size_t take = s->out.len - s->off;
        if (take > len - got)
            take = len - got;
        memcpy(p + got, s->out.p + s->off, take);
        s->off += take;
        got += take;
    }
    return 0;
}

/* Start S over the scratch table; WALKING: for the prefetcher's thread
 * (nothing counted, no message: the receiver's own walk reports). */
static int synth_start(struct vault_restorer *rs, struct synth *s,
                       bool walking)
{
    memset(s, 0, sizeof(*s));
    s->rs = rs;
    s->walking = walking;
    int rc = mdb_txn_begin(rs->env, NULL, MDB_RDONLY, &s->txn);
    if (!rc)
        rc = mdb_cursor_open(s->txn, rs->dbi, &s->cur);
    if (rc && walking)
        return sfs_mdb_errno(rc);
    if (rc)
        return vault_fail(rs->v, sfs_mdb_errno(rc), "the scratch table: %s",
                          mdb_strerror(rc));
    struct sfs_stream_hdr h = rs->hdr; /* the last link's: the snapshot */
    h.from_epoch = 0;
    h.from_name[0] = 0;
    h.next_ino = rs->s->m.next_ino > h.next_ino ? rs->s->m.next_ino
                                                  : h.next_ino;
    return sfs_stream_writer_new(&h, synth_write, s, &s->w);
}

static void synth_end(struct synth *s)
{
    sfs_stream_writer_free(s->w);
    if (s->cur)
        mdb_cursor_close(s->cur);
    if (s->txn)
        mdb_txn_abort(s->txn);
    vw_free(&s->out);
}

/* ---- the new store ---- */

/* ---- the blocks, read ahead (prefetch.c) ---- */

struct walk {
    vault_want_fn *want;
    void *want_arg;
};

static int walk_frame(void *arg, const struct sfs_stream_frame *f)
{
    struct walk *w = arg;
    return f->type == SFS_FRAME_PUT && f->blockref ? w->want(w->want_arg,
                                                             f->hash)
                                                   : 0;
}

/* vault_walk_fn: the stream the receiver gets, written again from the
 * scratch table (its own read transaction, on the prefetcher's thread),
 * each block a record names to WANT. */
static int walk_blocks(void *arg, vault_want_fn *want, void *want_arg)
{
    struct vault_restorer *rs = arg;
    struct synth s;
    struct vault_frames fr = { 0 };
    struct walk w = { want, want_arg };
    int rc = synth_start(rs, &s, true);
    while (!rc && !s.finished) {
        rc = synth_more(&s);
        if (!rc)
            rc = vault_frames_feed(&fr, s.out.p + s.off, s.out.len - s.off,
                                   walk_frame, &w);
        s.off = s.out.len = 0;
    }
    vault_frames_free(&fr);
    synth_end(&s);
    return rc;
}

/* The receiver's block source: a data blob of the vault, by the block's
 * keyed hash, in its stored form, from the prefetcher. */
static int fetch_block(void *arg, const uint8_t hash[SFS_HASH_LEN],
                       struct sfs_raw_block *raw)
{
    struct vault_restorer *rs = arg;
    if (rs->o->interrupted && *rs->o->interrupted)
        return vault_fail(rs->v, -EINTR, "interrupted");
    int rc = vault_prefetch_take(rs->pf, hash, raw);
    if (rc)
        return rc;
    rs->r->blocks++;
    rs->block_bytes += raw->lsize;
    if ((rs->mapped += raw->csize) >= VAULT_MAP_RELEASE) {
        vault_map_release(rs->st); /* bounded memory, within a batch too */
        rs->mapped = 0;
    }
    if (rs->o->progress)
        rs->o->progress(rs->o->progress_arg, rs->block_bytes,
                        rs->s->m.logical, rs->r->files);
    return 0;
}

/* Apply the receiver R to ST in batches, each a transaction; after each,
 * the new store's map is released (repo.h: bounded memory). */
static int receive_all(struct sfs_store *st, struct sfs_receiver *r)
{
    struct sfs_codec_ctx *cc = sfs_codec_ctx_new();
    MDB_txn *txn;
    int rc = cc ? sfs_txn_begin(st, NULL, true, &txn) : -ENOMEM;
    if (rc) {
        sfs_codec_ctx_free(cc);
        return rc;
    }
    rc = sfs_recv_begin_w(st, txn, r);
    for (;;) {
        if (rc < 0) {
            mdb_txn_abort(txn);
            break;
        }
        int crc = sfs_txn_commit(st, txn);
        if (crc || rc == 1) {
            rc = crc;
            break;
        }
        vault_map_release(st);
        rc = sfs_txn_begin(st, NULL, true, &txn);
        if (rc)
            break;
        rc = sfs_recv_step_w(st, txn, r, cc, RECV_BATCH_BYTES);
    }
    sfs_codec_ctx_free(cc);
    return rc;
}

/* The new volume is an ordinary one: it follows no source. */
static int forget_source(struct sfs_store *st)
{
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, true, &txn);
    if (rc)
        return rc;
    rc = sfs_recv_forget_w(st, txn);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = sfs_txn_commit(st, txn);
    return rc ? rc : sfs_mdb_errno(mdb_env_sync(st->env, 1));
}

int vault_mkfs_like(struct vault *v, const struct vault_manifest *m,
                    const char *path, struct sfs_store **st)
{
    struct sfs_mkfs_opts o = { .volume_size = m->volume_size,
                               .block_size = m->block_size,
                               .codec = (int)m->codec,
                               .codec_level = m->codec_level };
    int rc = sfs_mkfs(path, &o);
    if (!rc)
        rc = sfs_open(path, SFS_OPEN_EXCLUSIVE, st);
    return rc ? vault_fail(v, rc, "%s: making the new volume: %s", path,
                           strerror(-rc))
              : 0;
}

static int write_store(struct vault_restorer *rs, const char *path)
{
    struct sfs_store *st;
    int rc = vault_mkfs_like(rs->v, &rs->s->m, path, &st);
    if (rc)
        return rc;
    struct synth s;
    struct sfs_receiver *r = NULL;
    rc = synth_start(rs, &s, false);
    if (!rc)
        rc = sfs_recv_new(synth_read, &s, &r);
    if (!rc)
        rc = vault_prefetch_start(rs->v, walk_blocks, rs, &rs->pf);
    rs->st = st;
    if (!rc) {
        sfs_recv_set_block_source(r, fetch_block, rs);
        rc = receive_all(st, r);
    }
    vault_prefetch_stop(rs->pf);
    rs->pf = NULL;
    rs->st = NULL;
    if (rc && !rs->v->why[0])
        vault_fail(rs->v, rc, "%s: %s", path,
                   r && sfs_recv_why(r) ? sfs_recv_why(r) : strerror(-rc));
    if (!rc)
        rc = forget_source(st);
    sfs_recv_free(r);
    synth_end(&s);
    sfs_close(st);
    return rc;
}

/* Replay the chain into the scratch table and seal it. */
static int replay_chain(struct vault_restorer *rs)
{
    struct vault *v = rs->v;
    int rc = vault_load_chain(v, &rs->s->m, &rs->links, &rs->nlinks);
    if (!rc)
        rc = scratch_open(rs, rs->scratch);
    for (size_t i = 0; !rc && i < rs->nlinks; i++)
        rc = vault_link_replay(v, &rs->s->m, &rs->links[i], on_frame, rs);
    if (!rc) {
        int mrc = mdb_txn_commit(rs->txn);
        rs->txn = NULL;
        if (mrc)
            rc = vault_fail(v, sfs_mdb_errno(mrc), "the scratch table: %s",
                            mdb_strerror(mrc));
    }
    return rc;
}

int vault_restorer_open(struct vault *v, const struct vault_snapshot *s,
                        const char *scratch,
                        const struct vault_restore_opts *o,
                        struct vault_restore_result *r,
                        struct vault_restorer **out)
{
    memset(r, 0, sizeof(*r));
    v->why[0] = 0;
    v->fetched = 0;
    struct vault_restorer *rs = calloc(1, sizeof(*rs));
    if (!rs || !(rs->scratch = strdup(scratch))) {
        free(rs);
        return -ENOMEM;
    }
    *rs = (struct vault_restorer){ .v = v, .s = s, .o = o, .r = r,
                                   .scratch = rs->scratch };
    *out = rs;
    int rc = v->index ? 0 : vault_load_index(v, false, NULL);
    return rc ? rc : replay_chain(rs);
}

int vault_restorer_store(struct vault_restorer *rs, const char *path,
                         vault_key_filter keep, void *arg)
{
    rs->keep = keep;
    rs->keep_arg = arg;
    int rc = write_store(rs, path);
    rs->r->links = (uint32_t)rs->nlinks;
    rs->r->fetched = rs->v->fetched;
    return rc;
}

void vault_restorer_table(struct vault_restorer *rs, MDB_env **env,
                          MDB_dbi *dbi)
{
    *env = rs->env;
    *dbi = rs->dbi;
}

void vault_restorer_close(struct vault_restorer *rs)
{
    if (!rs)
        return;
    if (rs->scratch_made)
        scratch_close(rs, rs->scratch);
    vault_links_free(rs->links, rs->nlinks);
    free(rs->scratch);
    free(rs);
}

int vault_restore(struct vault *v, const struct vault_snapshot *s,
                  const char *newstore, const char *scratch,
                  const struct vault_restore_opts *o,
                  struct vault_restore_result *r)
{
    struct vault_restorer *rs = NULL;
    int rc = vault_restorer_open(v, s, scratch, o, r, &rs);
    if (!rc)
        rc = vault_restorer_store(rs, newstore, NULL, NULL);
    vault_restorer_close(rs);
    return rc;
}
