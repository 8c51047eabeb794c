/*
 * browse.c - the vault's snapshots as one read-only tree: a directory per
 * source volume (its UUID, as the manifests record it), in it a directory
 * per snapshot (its name) holding the snapshot's tree, read from a table
 * of its records and from data blobs fetched one at a time (see
 * vmount.c's THEORY for the design).
 *
 * Guarantees: a snapshot's metadata is fetched and replayed (restore.c's
 * restorer: the chain into a table of its own, in the cache) when its
 * directory is first entered - looked into, listed or opened - not when
 * its name is only listed or looked up; until then its directory shows
 * placeholder attributes (0555, the mounting user, the snapshot's time)
 * and says they may change.  Every block handed out was opened under
 * the vault's key (AES-GCM with its type and id) and decodes to the
 * SHA-256 its extent names (sfs_block_decode); inline data is checked
 * against its checksum.  A block that cannot be fetched or verified is
 * -EIO for the read asking for it, with a message to the log: a missing
 * pack (a concurrent prune) first reloads the index once (a repacked
 * blob is found at its new place), then is -EIO; never other bytes.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "browse.h"

#define OBJ_MASK (((uint64_t)1 << SFS_INO_BITS) - 1)
#define RELOAD_EVERY 2 /* seconds between index reloads at most */
#define SHOWN_MAX (SFS_NAME_MAX + 1)

struct vb_snap;

/* A snapshot's records, replayed into a table in the cache. */
struct vb_table {
    struct vbrowse *b;
    struct vb_snap *snap;
    struct vault_restorer *rs;
    struct vault_restore_opts o;
    struct vault_restore_result r;
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *txn;
};

struct vb_snap {
    struct vault_snapshot s;
    uint32_t vol;
    char shown[SHOWN_MAX];   /* its name, or NAME@ID for names seen twice */
    struct vb_table *t;
    bool entered;            /* its attributes are the snapshot's own */
};

struct vb_volume {
    char name[SFS_UUID_TEXT];
    size_t first, n;         /* its snapshots in snaps[] */
    int64_t newest;
};

struct vbrowse {
    struct vault *v;
    struct vcache *c;
    vb_log_fn log;
    struct vb_snap *snaps;
    size_t nsnaps;
    struct vb_volume *vols;
    size_t nvols;
    struct sfs_codec_ctx *cc;
    uint8_t *block;          /* the block decoded last */
    uint32_t block_max;      /* the largest block size of the snapshots */
    uint32_t block_cap;      /* of block: a block or an xattr value */
    bool memo;               /* block holds the one whose hash is memo_hash */
    uint8_t memo_hash[SFS_HASH_LEN];
    int64_t reloaded;        /* when the index was read last */
    uid_t uid;
    gid_t gid;
    struct vb_stats st;
};

static void vb_logf(struct vbrowse *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void vb_logf(struct vbrowse *b, const char *fmt, ...)
{
    char msg[1600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (b->log)
        b->log(msg);
}

static int64_t now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* ---- the catalogue: volumes and their snapshots ---- */

static int by_volume(const void *a, const void *b)
{
    const struct vb_snap *x = a, *y = b;
    int c = memcmp(x->s.m.volume, y->s.m.volume, 16);
    if (c)
        return c;
    /* then in backup order, as vault_snapshots gave them */
    return x->vol < y->vol ? -1 : x->vol > y->vol;
}

/* The names snapshots of volume V are shown under. */
static void name_snapshots(struct vbrowse *b, const struct vb_volume *v)
{
    for (size_t i = v->first; i < v->first + v->n; i++) {
        struct vb_snap *s = &b->snaps[i];
        bool twice = false;
        for (size_t j = v->first; j < v->first + v->n && !twice; j++)
            twice = j != i && !strcmp(b->snaps[j].s.m.name, s->s.m.name);
        char hex[VC_HEX];
        vc_hex(s->s.id, VC_ID, hex);
        if (twice)
            snprintf(s->shown, sizeof(s->shown), "%.*s@%.8s",
                     SFS_NAME_MAX - 9, s->s.m.name, hex);
        else
            snprintf(s->shown, sizeof(s->shown), "%s", s->s.m.name);
    }
}

static int catalogue(struct vbrowse *b)
{
    struct vault_snapshot *list;
    size_t n, bad;
    int rc = vault_snapshots(b->v, &list, &n, &bad);
    if (rc)
        return rc;
    if (bad)
        vb_logf(b, "%zu snapshot manifest(s) cannot be read and are not "
                "shown: %s", bad, vault_why(b->v));
    b->snaps = calloc(n + 1, sizeof(*b->snaps));
    b->vols = calloc(n + 1, sizeof(*b->vols));
    if (!b->snaps || !b->vols) {
        free(list);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        b->snaps[i].s = list[i];
        b->snaps[i].vol = (uint32_t)i; /* backup order, for the sort */
    }
    free(list);
    qsort(b->snaps, n, sizeof(*b->snaps), by_volume);
    b->nsnaps = n;
    for (size_t i = 0; i < n; i++) {
        struct vb_snap *s = &b->snaps[i];
        if (!i || memcmp(s->s.m.volume, s[-1].s.m.volume, 16)) {
            struct vb_volume *v = &b->vols[b->nvols++];
            sfs_uuid_format(s->s.m.volume, v->name);
            v->first = i;
        }
        struct vb_volume *v = &b->vols[b->nvols - 1];
        s->vol = (uint32_t)(b->nvols - 1);
        v->n++;
        if (s->s.m.ctime_sec > v->newest)
            v->newest = s->s.m.ctime_sec;
        if (s->s.m.block_size > b->block_max)
            b->block_max = s->s.m.block_size;
    }
    for (size_t i = 0; i < b->nvols; i++)
        name_snapshots(b, &b->vols[i]);
    return 0;
}

int vb_open(struct vault *v, struct vcache *c, vb_log_fn log,
            struct vbrowse **out)
{
    struct vbrowse *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    *b = (struct vbrowse){ .v = v, .c = c, .log = log, .uid = getuid(),
                           .gid = getgid(), .block_max = SFS_BLOCK_SIZE_MIN };
    *out = b;
    int rc = vault_load_index(v, false, NULL);
    if (!rc)
        rc = catalogue(b);
    b->block_cap = b->block_max > SFS_XATTR_SIZE_MAX ? b->block_max
                                                      : SFS_XATTR_SIZE_MAX;
    if (!rc && (!(b->cc = sfs_codec_ctx_new()) ||
                !(b->block = malloc(b->block_cap))))
        rc = -ENOMEM;
    return rc;
}

static void table_close(struct vb_table *t)
{
    if (t->txn)
        mdb_txn_abort(t->txn);
    vault_restorer_close(t->rs);
    t->snap->t = NULL;
    free(t);
}

void vb_close(struct vbrowse *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->nsnaps; i++)
        if (b->snaps[i].t) {
            vcache_forget(b->c, b->snaps[i].s.id);
            table_close(b->snaps[i].t);
        }
    sfs_codec_ctx_free(b->cc);
    free(b->block);
    free(b->snaps);
    free(b->vols);
    free(b);
}

void vb_stats(const struct vbrowse *b, struct vb_stats *out)
{
    *out = b->st;
}

uint32_t vb_block_size(const struct vbrowse *b)
{
    return b->block_max;
}

/* ---- a snapshot's table ---- */

static void table_evicted(void *owner)
{
    table_close(owner);
}

/* The size of the files of directory DIR's table. */
static uint64_t table_bytes(const char *dir)
{
    static const char *files[] = { "data.mdb", "lock.mdb" };
    uint64_t sum = 0;
    for (size_t i = 0; i < 2; i++) {
        char p[PATH_MAX + 16];
        struct stat sb;
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        if (!stat(p, &sb))
            sum += (uint64_t)sb.st_size;
    }
    return sum;
}

/* S's table, replayed now if it is not in the cache. */
static int table_of(struct vbrowse *b, struct vb_snap *s,
                    struct vb_table **out)
{
    struct vb_table *t = s->t;
    if (t) {
        vcache_touch(b->c, s->s.id);
        vcache_pin(b->c, t);
        *out = t;
        return 0;
    }
    char dir[PATH_MAX];
    vcache_meta_dir(b->c, s->s.id, dir, sizeof(dir));
    if (!(t = calloc(1, sizeof(*t))))
        return -ENOMEM;
    t->b = b;
    t->snap = s;
    int rc = vault_restorer_open(b->v, &s->s, dir, &t->o, &t->r, &t->rs);
    b->st.fetched += b->v->fetched; /* the restorer counts from 0 */
    if (!rc) {
        vault_restorer_table(t->rs, &t->env, &t->dbi);
        rc = sfs_mdb_errno(mdb_txn_begin(t->env, NULL, MDB_RDONLY, &t->txn));
    }
    if (rc) {
        vb_logf(b, "snapshot %s of volume %s: its metadata cannot be read: "
                "%s", s->shown, b->vols[s->vol].name,
                vault_why(b->v)[0] ? vault_why(b->v) : strerror(-rc));
        t->snap->t = NULL;
        table_close(t);
        b->st.errors++;
        return rc == -ENOMEM ? rc : -EIO;
    }
    s->t = t;
    s->entered = true;
    b->st.snapshots++;
    rc = vcache_charge(b->c, s->s.id, table_bytes(dir), table_evicted, t);
    if (rc) {
        table_close(t);
        return rc;
    }
    vcache_pin(b->c, t);
    *out = t;
    return 0;
}

static int rec_get(struct vb_table *t, const uint8_t *key, size_t klen,
                   MDB_val *val)
{
    MDB_val k = { klen, (void *)key };
    int rc = mdb_get(t->txn, t->dbi, &k, val);
    return rc == MDB_NOTFOUND ? -ENOENT : sfs_mdb_errno(rc);
}

/* Records starting with PREFIX (9 bytes) from key START on; CB returns 0
 * to go on, 1 to stop, or an error. */
typedef int (*rec_fn)(void *arg, const MDB_val *key, const MDB_val *val);
static int rec_scan(struct vb_table *t, const uint8_t *prefix,
                    const uint8_t *start, size_t slen, rec_fn cb, void *arg)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(t->txn, t->dbi, &cur);
    if (rc)
        return sfs_mdb_errno(rc);
    MDB_val k = { slen, (void *)start }, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (!mrc && !rc && k.mv_size >= 9 && !memcmp(k.mv_data, prefix, 9)) {
        rc = cb(arg, &k, &v);
        if (!rc)
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc < 0)
        return rc;
    return mrc && mrc != MDB_NOTFOUND ? sfs_mdb_errno(mrc) : 0;
}

static int inode_of(struct vb_table *t, uint64_t obj, struct sfs_inode *in)
{
    uint8_t k[9];
    MDB_val v;
    int rc = rec_get(t, k, sfs_rec_inode_key(k, obj), &v);
    return rc ? rc : sfs_rec_inode_decode(&v, in);
}

/* ---- nodes ---- */

static uint64_t node_of(size_t snap, uint64_t obj)
{
    return (uint64_t)(snap + 1) << SFS_INO_BITS | obj;
}

/* The snapshot NODE is in (its object into *OBJ), or NULL: the top or a
 * volume's directory. */
static struct vb_snap *snap_of(struct vbrowse *b, uint64_t node, uint64_t *obj)
{
    uint64_t slot = node >> SFS_INO_BITS;
    if (!slot || slot > b->nsnaps)
        return NULL;
    *obj = node & OBJ_MASK;
    return &b->snaps[slot - 1];
}

/* The volume NODE is the directory of, or NULL. */
static struct vb_volume *volume_of(struct vbrowse *b, uint64_t node)
{
    return node >= 2 && node < 2 + b->nvols ? &b->vols[node - 2] : NULL;
}

static void dir_stat(struct vbrowse *b, uint64_t node, int64_t when,
                     struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = node;
    st->st_mode = S_IFDIR | 0555;
    st->st_nlink = 2;
    st->st_uid = b->uid;
    st->st_gid = b->gid;
    st->st_blksize = b->block_max;
    st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec = when;
}

static void inode_stat(const struct vb_snap *s, uint64_t node,
                       const struct sfs_inode *in, struct stat *st)
{
    sfs_inode_stat(in, node, s->s.m.block_size, st);
}

static int snap_stat(struct vbrowse *b, struct vb_snap *s, uint64_t obj,
                     struct stat *st, bool *stable)
{
    uint64_t node = node_of((size_t)(s - b->snaps), obj);
    if (obj == SFS_ROOT_INO && !s->entered) {
        dir_stat(b, node, s->s.m.ctime_sec, st);
        *stable = false;
        return 0;
    }
    struct vb_table *t;
    struct sfs_inode in;
    int rc = table_of(b, s, &t);
    if (!rc)
        rc = inode_of(t, obj, &in);
    if (!rc)
        inode_stat(s, node, &in, st);
    *stable = true;
    return rc;
}

int vb_getattr(struct vbrowse *b, uint64_t node, struct stat *st,
               bool *stable)
{
    uint64_t obj;
    struct vb_snap *s = snap_of(b, node, &obj);
    if (s)
        return snap_stat(b, s, obj, st, stable);
    struct vb_volume *v = volume_of(b, node);
    if (!v && node != VB_TOP)
        return -ENOENT;
    int64_t when = v ? v->newest : 0;
    for (size_t i = 0; !v && i < b->nvols; i++)
        if (b->vols[i].newest > when)
            when = b->vols[i].newest;
    dir_stat(b, node, when, st);
    *stable = true;
    return 0;
}

int vb_lookup(struct vbrowse *b, uint64_t parent, const char *name,
              struct stat *st, bool *stable)
{
    uint64_t obj;
    struct vb_snap *s = snap_of(b, parent, &obj);
    struct vb_volume *v = volume_of(b, parent);
    if (parent == VB_TOP) {
        for (size_t i = 0; i < b->nvols; i++)
            if (!strcmp(b->vols[i].name, name))
                return vb_getattr(b, 2 + i, st, stable);
        return -ENOENT;
    }
    if (v) {
        for (size_t i = v->first; i < v->first + v->n; i++)
            if (!strcmp(b->snaps[i].shown, name))
                return snap_stat(b, &b->snaps[i], SFS_ROOT_INO, st, stable);
        return -ENOENT;
    }
    if (!s)
        return -ENOENT;
    struct vb_table *t;
    uint8_t k[SFS_KEY_MAX];
    MDB_val val;
    struct sfs_dirent d;
    int rc = table_of(b, s, &t);
    int klen = rc ? rc : sfs_rec_dirent_key(k, obj, name);
    if (klen < 0)
        return klen;
    rc = rec_get(t, k, (size_t)klen, &val);
    if (!rc)
        rc = sfs_rec_dirent_decode(&(MDB_val){ (size_t)klen, k }, &val, &d);
    return rc ? rc : snap_stat(b, s, d.ino, st, stable);
}

int vb_opendir(struct vbrowse *b, uint64_t node)
{
    uint64_t obj;
    struct vb_table *t;
    struct vb_snap *s = snap_of(b, node, &obj);
    return s ? table_of(b, s, &t) : 0;
}

/* ---- listing ---- */

struct list_walk {
    struct vbrowse *b;
    size_t snap;
    vb_dirent_fn cb;
    void *arg;
};

static int list_cb(void *arg, const MDB_val *key, const MDB_val *val)
{
    struct list_walk *w = arg;
    struct sfs_dirent d;
    int rc = sfs_rec_dirent_decode(key, val, &d);
    if (rc)
        return rc;
    return w->cb(w->arg, d.name, node_of(w->snap, d.ino), DTTOIF(d.type),
                 d.cookie);
}

/* "." and "..", then entries; positions from 3 on. */
static int list_snapshot_dir(struct vbrowse *b, struct vb_snap *s,
                             uint64_t obj, uint64_t off, vb_dirent_fn cb,
                             void *arg)
{
    struct vb_table *t;
    uint8_t prefix[9], start[17];
    int rc = table_of(b, s, &t);
    if (rc)
        return rc;
    size_t slen = sfs_rec_dirent_start(start, obj, off);
    if (!slen)
        return 0;
    sfs_rec_prefix(prefix, SFS_K_DIRENT, obj);
    struct list_walk w = { b, (size_t)(s - b->snaps), cb, arg };
    return rec_scan(t, prefix, start, slen, list_cb, &w);
}

int vb_readdir(struct vbrowse *b, uint64_t node, uint64_t off,
               vb_dirent_fn cb, void *arg)
{
    uint64_t obj;
    struct vb_snap *s = snap_of(b, node, &obj);
    struct vb_volume *v = volume_of(b, node);
    if (!s && !v && node != VB_TOP)
        return -ENOENT;
    if (off < 1 && cb(arg, ".", node, S_IFDIR, 1))
        return 0;
    if (off < 2 && cb(arg, "..", node, S_IFDIR, 2))
        return 0;
    if (s)
        return list_snapshot_dir(b, s, obj, off, cb, arg);
    size_t n = v ? v->n : b->nvols;
    for (uint64_t i = off < 3 ? 0 : off - 2; i < n; i++) {
        const char *name = v ? b->snaps[v->first + i].shown : b->vols[i].name;
        uint64_t child = v ? node_of(v->first + i, SFS_ROOT_INO) : 2 + i;
        if (cb(arg, name, child, S_IFDIR, 3 + i))
            break;
    }
    return 0;
}

/* ---- data ---- */

/* The index read again (after a prune moved or deleted packs), at most
 * every RELOAD_EVERY seconds (a file whose packs are gone must not read
 * the index once a block); the window of the old one goes with it. */
static int reload_index(struct vbrowse *b)
{
    if (b->reloaded && now_sec() - b->reloaded < RELOAD_EVERY)
        return -ENOENT;
    b->reloaded = now_sec();
    free(b->v->win.buf);
    memset(&b->v->win, 0, sizeof(b->v->win));
    return vault_load_index(b->v, false, NULL);
}

/* Data blob ID, opened (*PLAIN malloc'd, S into it): from the cache, or
 * fetched and then kept in the cache. */
static int open_blob(struct vbrowse *b, const uint8_t id[VC_ID],
                     uint8_t **plain, struct vault_stored *s)
{
    struct vault *v = b->v;
    uint8_t *sealed;
    size_t len;
    if (!vcache_get(b->c, id, &sealed, &len)) {
        int rc = vault_blob_open(&v->keys, VB_DATA, id, sealed, len, plain, s);
        free(sealed);
        if (!rc) {
            b->st.cache_hits++;
            return 0;
        }
        vcache_drop(b->c, id);
    }
    uint64_t before = v->fetched;
    v->why[0] = 0;
    int rc = vault_fetch_blob(v, VB_DATA, id, plain, s);
    if (rc == -ENOENT && !reload_index(b))
        rc = vault_fetch_blob(v, VB_DATA, id, plain, s);
    b->st.fetched += v->fetched - before;
    if (rc)
        return rc;
    b->st.blocks++;
    struct vw w = { 0 };
    if (!vault_blob_seal(&v->keys, VB_DATA, id, s, &w) && !w.failed)
        vcache_put(b->c, id, w.p, w.len);
    vw_free(&w);
    return 0;
}

struct name_find {
    uint64_t ino;
    char *name;
};

static int name_cb(void *arg, const MDB_val *key, const MDB_val *val)
{
    struct name_find *f = arg;
    struct sfs_dirent d;
    if (sfs_rec_dirent_decode(key, val, &d) || d.ino != f->ino)
        return 0;
    memcpy(f->name, d.name, strlen(d.name) + 1);
    return 1;
}

/* A path of OBJ in T (for messages), found up its parent hints; "inode
 * N" when there is none. */
static void path_of(struct vb_table *t, uint64_t obj, char *out, size_t cap)
{
    char path[PATH_MAX] = "", name[SFS_NAME_MAX + 1], longer[PATH_MAX];
    uint64_t at = obj;
    for (int depth = 0; t && at != SFS_ROOT_INO && depth < 64; depth++) {
        struct sfs_inode in;
        uint8_t prefix[9];
        struct name_find f = { at, name };
        name[0] = 0;
        if (inode_of(t, at, &in) || !in.parent)
            break;
        sfs_rec_prefix(prefix, SFS_K_DIRENT, in.parent);
        if (rec_scan(t, prefix, prefix, 9, name_cb, &f) < 0 || !name[0] ||
            snprintf(longer, sizeof(longer), "/%s%s", name, path) >=
                (int)sizeof(longer))
            break;
        memcpy(path, longer, sizeof(path));
        at = in.parent;
    }
    if (at == SFS_ROOT_INO && path[0])
        snprintf(out, cap, "%s", path);
    else
        snprintf(out, cap, "inode %llu", (unsigned long long)obj);
}

/* A file's error, to the log: -EIO. */
static int file_fail(struct vbrowse *b, const struct vb_snap *s, uint64_t obj,
                     int rc, const char *what)
{
    char why[VAULT_WHY_MAX], path[PATH_MAX];
    snprintf(why, sizeof(why), "%s", vault_why(b->v)[0] ? vault_why(b->v)
                                                        : strerror(-rc));
    path_of(s->t, obj, path, sizeof(path));
    b->st.errors++;
    vb_logf(b, "snapshot %s of volume %s: %s: %s: %s", s->shown,
            b->vols[s->vol].name, path, what, why);
    return rc == -ENOMEM ? rc : -EIO;
}

/* The block HASH of LSIZE bytes, verified, into b->block. */
static int load_block(struct vbrowse *b, const struct vb_snap *s, uint64_t obj,
                      const struct sfs_blockref *ref)
{
    if (b->memo && !memcmp(b->memo_hash, ref->hash, SFS_HASH_LEN))
        return 0;
    b->memo = false;
    uint8_t id[VC_ID], *plain;
    struct vault_stored st;
    vc_blob_id(&b->v->keys, ref->hash, id);
    int rc = open_blob(b, id, &plain, &st);
    if (rc)
        return file_fail(b, s, obj, rc, "reading a block");
    if (st.lsize != ref->lsize || st.lsize > b->block_cap) {
        free(plain);
        b->v->why[0] = 0;
        return file_fail(b, s, obj, -EBADMSG, "a block of another size than "
                         "its extent says");
    }
    struct sfs_raw_block raw = { .bytes = (void *)st.bytes, .csize = st.csize,
                                 .lsize = st.lsize, .codec = st.codec };
    memcpy(raw.hash, ref->hash, SFS_HASH_LEN);
    rc = sfs_block_decode(b->cc, &raw, b->block);
    free(plain);
    if (rc) {
        b->v->why[0] = 0;
        return file_fail(b, s, obj, rc, "a block does not match its hash");
    }
    memcpy(b->memo_hash, ref->hash, SFS_HASH_LEN);
    b->memo = true;
    return 0;
}

/* Block BLOCKNO of OBJ: *DATA (LEN bytes; fewer than a block: zeros
 * follow; NULL: a hole). */
static int file_block(struct vbrowse *b, struct vb_table *t, uint64_t obj,
                      uint64_t blockno, const uint8_t **data, uint32_t *len)
{
    uint8_t k[17];
    MDB_val key = { sfs_rec_extent_key(k, obj, blockno), k }, val;
    struct sfs_extent e;
    uint64_t no;
    *data = NULL;
    *len = 0;
    int rc = rec_get(t, k, key.mv_size, &val);
    if (rc == -ENOENT)
        return 0;
    if (!rc)
        rc = sfs_rec_extent_decode(&key, &val, &no, &e);
    if (rc)
        return file_fail(b, t->snap, obj, rc, "its extent record");
    if (e.is_inline) {
        if (sfs_extent_inline_check(&e))
            return file_fail(b, t->snap, obj, -EIO, "inline data does not "
                             "match its checksum");
        *data = e.inline_data;
    } else if ((rc = load_block(b, t->snap, obj, &e.ref))) {
        return rc;
    } else {
        *data = b->block;
    }
    *len = e.lsize;
    return 0;
}

/* LEN bytes at OFF of OBJ (FILE_SIZE bytes long) into BUF. */
static int read_range(struct vbrowse *b, struct vb_table *t, uint64_t obj,
                      uint64_t file_size, uint64_t off, size_t len,
                      uint8_t *buf)
{
    uint32_t bs = t->snap->s.m.block_size;
    if (off >= file_size)
        return 0;
    if (len > file_size - off)
        len = (size_t)(file_size - off);
    for (size_t done = 0; done < len;) {
        uint64_t pos = off + done, blockno = pos / bs;
        size_t in = (size_t)(pos % bs), n = bs - in;
        if (n > len - done)
            n = len - done;
        const uint8_t *data;
        uint32_t have;
        int rc = file_block(b, t, obj, blockno, &data, &have);
        if (rc)
            return rc;
        size_t copy = !data || in >= have ? 0 : have - in < n ? have - in : n;
        if (copy)
            memcpy(buf + done, data + in, copy);
        memset(buf + done + copy, 0, n - copy);
        done += n;
    }
    return (int)len;
}

/* OBJ's table and inode, for reading. */
static int object_of(struct vbrowse *b, uint64_t node, struct vb_table **t,
                     uint64_t *obj, struct sfs_inode *in)
{
    struct vb_snap *s = snap_of(b, node, obj);
    if (!s)
        return -EISDIR;
    int rc = table_of(b, s, t);
    return rc ? rc : inode_of(*t, *obj, in);
}

int vb_read(struct vbrowse *b, uint64_t node, uint64_t off, size_t len,
            void *buf)
{
    struct vb_table *t;
    struct sfs_inode in;
    uint64_t obj;
    int rc = object_of(b, node, &t, &obj, &in);
    if (rc)
        return rc;
    if (S_ISDIR(in.mode))
        return -EISDIR;
    if (!S_ISREG(in.mode))
        return -EINVAL;
    if (len > INT_MAX)
        len = INT_MAX;
    return read_range(b, t, obj, in.size, off, len, buf);
}

int vb_readlink(struct vbrowse *b, uint64_t node, char *buf, size_t cap)
{
    struct vb_table *t;
    struct sfs_inode in;
    uint64_t obj;
    int rc = object_of(b, node, &t, &obj, &in);
    if (rc)
        return rc;
    if (!S_ISLNK(in.mode))
        return -EINVAL;
    size_t len = in.size < cap - 1 ? (size_t)in.size : cap - 1;
    rc = read_range(b, t, obj, in.size, 0, len, (uint8_t *)buf);
    if (rc < 0)
        return rc;
    buf[rc] = 0;
    return rc;
}

/* ---- xattrs ---- */

int vb_getxattr(struct vbrowse *b, uint64_t node, const char *name,
                void *buf, size_t cap)
{
    uint64_t obj;
    struct vb_snap *s = snap_of(b, node, &obj);
    struct vb_table *t;
    if (!s)
        return -ENODATA;
    uint8_t k[SFS_KEY_MAX];
    int klen = sfs_rec_xattr_key(k, obj, name);
    if (klen < 0)
        return -ENODATA;
    int rc = table_of(b, s, &t);
    MDB_val key = { (size_t)klen, k }, val;
    struct sfs_xattr_rec x;
    if (!rc)
        rc = rec_get(t, k, key.mv_size, &val);
    if (rc)
        return rc == -ENOENT ? -ENODATA : rc;
    rc = sfs_rec_xattr_decode(&key, &val, &x);
    if (rc)
        return file_fail(b, s, obj, rc, "its xattr record");
    if (!cap)
        return (int)x.len;
    if (x.len > cap)
        return -ERANGE;
    if (x.in_block) {
        rc = load_block(b, s, obj, &x.ref);
        if (rc)
            return rc;
        x.bytes = b->block;
    }
    memcpy(buf, x.bytes, x.len);
    return (int)x.len;
}

struct xlist {
    char *buf;
    size_t cap, len;
    bool with_trusted;
};

static int xlist_cb(void *arg, const MDB_val *key, const MDB_val *val)
{
    struct xlist *l = arg;
    struct sfs_xattr_rec x;
    int rc = sfs_rec_xattr_decode(key, val, &x);
    if (rc)
        return rc;
    if (!l->with_trusted && !strncmp(x.name, "trusted.", 8))
        return 0;
    size_t n = strlen(x.name) + 1;
    if (l->cap && l->len + n <= l->cap)
        memcpy(l->buf + l->len, x.name, n);
    l->len += n;
    return 0;
}

int vb_listxattr(struct vbrowse *b, uint64_t node, char *buf, size_t cap,
                 bool with_trusted)
{
    uint64_t obj;
    struct vb_snap *s = snap_of(b, node, &obj);
    struct vb_table *t;
    if (!s)
        return 0;
    int rc = table_of(b, s, &t);
    if (rc)
        return rc;
    uint8_t prefix[9];
    sfs_rec_prefix(prefix, SFS_K_XATTR, obj);
    struct xlist l = { buf, cap, 0, with_trusted };
    rc = rec_scan(t, prefix, prefix, 9, xlist_cb, &l);
    if (rc)
        return rc;
    if (cap && l.len > cap)
        return -ERANGE;
    return l.len > INT_MAX ? -E2BIG : (int)l.len;
}
