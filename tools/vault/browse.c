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
 * stand-in attributes (0555, the mounting user, the snapshot's time)
 * and says they may change.  Every block handed out was opened under
 * the vault's key (AES-GCM with its type and id) and decodes to the
 * SHA-256 its extent names (sfs_block_decode); inline data is checked
 * against its checksum.  A block that cannot be fetched or verified is
 * -EIO for the read asking for it, with a message to the log: a missing
 * pack (a concurrent prune) first reloads the index once (a repacked
 * blob is found at its new place), then is -EIO; never other bytes.
 * A snapshot's node ids never change while mounted: snapshots are only
 * added (new backups, found by refresh()), never moved or removed.
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
#define REFRESH_EVERY 1 /* seconds between looks for new snapshots */
#define SHOWN_MAX (SFS_NAME_MAX + 1)
/* Tables open at most: each maps its own 1 TiB of address space
 * (restore.c's scratch table), and a process has 128 TiB. */
#define TABLES_MAX 16

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
    uint64_t used;           /* b->tick when used last */
};

struct vb_snap {
    struct vault_snapshot s;
    size_t slot;             /* its place in snaps[]: its node ids */
    uint32_t vol;
    char shown[SHOWN_MAX];   /* its name, or NAME@ID for names seen twice */
    struct vb_table *t;
    bool entered;            /* its attributes are the snapshot's own */
};

struct vb_volume {
    char name[SFS_UUID_TEXT];
    uint8_t uuid[16];
    size_t *members;         /* its snapshots' slots, in the order found */
    size_t n, cap;
    int64_t newest;
};

typedef uint8_t vb_id[VC_ID];

struct vbrowse {
    struct vault *v;
    struct vcache *c;
    vb_log_fn log;
    struct vb_snap **snaps;  /* never moved: node ids and tables point in */
    size_t nsnaps, snaps_cap;
    struct vb_volume *vols;
    size_t nvols, vols_cap;
    vb_id *passed;           /* manifests that cannot be read: not again */
    size_t npassed, passed_cap;
    vb_id *indexes;          /* index objects read into the index */
    size_t nindexes, indexes_cap;
    int64_t refreshed;       /* when the manifests were listed last */
    size_t ntables;          /* snapshots' tables open */
    uint64_t tick;
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

/* ---- the index ---- */

static bool id_in(const vb_id *ids, size_t n, const uint8_t id[VC_ID])
{
    for (size_t i = 0; i < n; i++)
        if (!memcmp(ids[i], id, VC_ID))
            return true;
    return false;
}

static int id_add(vb_id **ids, size_t *n, size_t *cap, const uint8_t id[VC_ID])
{
    if (vault_grow(ids, cap, *n, sizeof(**ids)))
        return -ENOMEM;
    memcpy((*ids)[(*n)++], id, VC_ID);
    return 0;
}

/* Read the index objects not read yet into the index; with FRESH a new
 * index of every one (after a prune: the old one names packs that may be
 * gone), the window of the old one going with it. */
static int load_indexes(struct vbrowse *b, bool fresh)
{
    struct vault *v = b->v;
    uint8_t (*ids)[VC_ID] = NULL;
    size_t n = 0;
    int rc = vault_list_ids(v, "index", &ids, &n);
    if (!rc && (fresh || !v->index)) {
        vault_index_free(v->index);
        v->index = vault_index_new();
        b->nindexes = 0;
        for (unsigned w = 0; w < VAULT_WINDOWS; w++)
            free(v->win[w].buf);
        memset(v->win, 0, sizeof(v->win));
        v->win_next_set = false;
        rc = v->index ? 0 : -ENOMEM;
    }
    for (size_t i = 0; !rc && i < n; i++) {
        char name[128];
        if (id_in(b->indexes, b->nindexes, ids[i]))
            continue;
        vault_obj_name("index", ids[i], name, sizeof(name));
        rc = vault_load_index_object(v, name);
        if (!rc)
            rc = id_add(&b->indexes, &b->nindexes, &b->indexes_cap, ids[i]);
    }
    free(ids);
    return rc;
}

/* ---- the catalogue: volumes and their snapshots ---- */

static struct vb_volume *volume_for(struct vbrowse *b, const uint8_t uuid[16])
{
    for (size_t i = 0; i < b->nvols; i++)
        if (!memcmp(b->vols[i].uuid, uuid, 16))
            return &b->vols[i];
    if (vault_grow(&b->vols, &b->vols_cap, b->nvols, sizeof(*b->vols)))
        return NULL;
    struct vb_volume *v = &b->vols[b->nvols++];
    memset(v, 0, sizeof(*v));
    memcpy(v->uuid, uuid, 16);
    sfs_uuid_format(uuid, v->name);
    return v;
}

/* The name S is shown under: its own, or NAME@ID (TWICE: another
 * snapshot of its volume has the name). */
static void show_as(struct vb_snap *s, bool twice)
{
    char hex[VC_HEX];
    vc_hex(s->s.id, VC_ID, hex);
    if (twice)
        snprintf(s->shown, sizeof(s->shown), "%.*s@%.8s", SFS_NAME_MAX - 9,
                 s->s.m.name, hex);
    else
        snprintf(s->shown, sizeof(s->shown), "%s", s->s.m.name);
}

/* Is NAME shown (AS_SHOWN) or had (else) by another snapshot than S of
 * volume V? */
static bool name_taken(struct vbrowse *b, const struct vb_volume *v,
                       const struct vb_snap *s, const char *name,
                       bool as_shown)
{
    for (size_t i = 0; i < v->n; i++) {
        const struct vb_snap *o = b->snaps[v->members[i]];
        if (o != s && !strcmp(as_shown ? o->shown : o->s.m.name, name))
            return true;
    }
    return false;
}

/* The block buffer fits blocks of BS bytes and xattr values. */
static int fit_blocks(struct vbrowse *b, uint32_t bs)
{
    uint32_t cap = bs > SFS_XATTR_SIZE_MAX ? bs : SFS_XATTR_SIZE_MAX;
    if (bs > b->block_max)
        b->block_max = bs;
    if (b->block && cap <= b->block_cap)
        return 0;
    uint8_t *block = realloc(b->block, cap);
    if (!block)
        return -ENOMEM;
    b->block = block;
    b->block_cap = cap;
    b->memo = false;
    return 0;
}

/* S into the catalogue, in its volume's directory. */
static int add_snapshot(struct vbrowse *b, const struct vault_snapshot *s)
{
    struct vb_volume *v = volume_for(b, s->m.volume);
    struct vb_snap *n = calloc(1, sizeof(*n));
    if (!v || !n || vault_grow(&b->snaps, &b->snaps_cap, b->nsnaps,
                               sizeof(*b->snaps)) ||
        vault_grow(&v->members, &v->cap, v->n, sizeof(*v->members))) {
        free(n);
        return -ENOMEM;
    }
    n->s = *s;
    n->slot = b->nsnaps;
    n->vol = (uint32_t)(v - b->vols);
    show_as(n, name_taken(b, v, n, s->m.name, true));
    b->snaps[b->nsnaps++] = n;
    v->members[v->n++] = n->slot;
    if (s->m.ctime_sec > v->newest)
        v->newest = s->m.ctime_sec;
    return fit_blocks(b, s->m.block_size);
}

/* Every snapshot at the start, in backup order; two of one name in a
 * volume both shown as NAME@ID. */
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
    for (size_t i = 0; !rc && i < n; i++)
        rc = add_snapshot(b, &list[i]);
    free(list);
    for (size_t i = 0; !rc && i < b->nsnaps; i++) {
        struct vb_snap *s = b->snaps[i];
        show_as(s, name_taken(b, &b->vols[s->vol], s, s->s.m.name, false));
    }
    b->refreshed = now_sec();
    return rc;
}

static bool snapshot_known(struct vbrowse *b, const uint8_t id[VC_ID])
{
    for (size_t i = 0; i < b->nsnaps; i++)
        if (!memcmp(b->snaps[i]->s.id, id, VC_ID))
            return true;
    return id_in(b->passed, b->npassed, id);
}

/* Snapshots backed up since the catalogue was read last (at most every
 * REFRESH_EVERY seconds), and the index objects that came with them;
 * snapshots forgotten meanwhile stay until the next mount. */
static void refresh(struct vbrowse *b)
{
    if (now_sec() - b->refreshed < REFRESH_EVERY)
        return;
    b->refreshed = now_sec();
    uint8_t (*ids)[VC_ID] = NULL;
    size_t n = 0, added = 0;
    int rc = vault_list_ids(b->v, "snapshots", &ids, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        struct vault_snapshot s;
        if (snapshot_known(b, ids[i]))
            continue;
        memcpy(s.id, ids[i], VC_ID);
        rc = vault_manifest_read(b->v, ids[i], &s.m);
        if (rc == -EBADMSG || rc == -EPROTONOSUPPORT) {
            vb_logf(b, "a new snapshot manifest cannot be read and is not "
                    "shown: %s", vault_why(b->v));
            rc = id_add(&b->passed, &b->npassed, &b->passed_cap, ids[i]);
        } else if (rc == -ENOENT) {
            rc = 0;
        } else if (!rc && !(rc = add_snapshot(b, &s))) {
            added++;
        }
    }
    free(ids);
    if (!rc && added)
        rc = load_indexes(b, false);
    if (rc)
        vb_logf(b, "looking for new snapshots: %s", vault_why(b->v)[0]
                ? vault_why(b->v) : strerror(-rc));
}

int vb_open(struct vault *v, struct vcache *c, vb_log_fn log,
            struct vbrowse **out)
{
    struct vbrowse *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    *b = (struct vbrowse){ .v = v, .c = c, .log = log, .uid = getuid(),
                           .gid = getgid() };
    *out = b;
    int rc = load_indexes(b, true);
    if (!rc)
        rc = fit_blocks(b, SFS_BLOCK_SIZE_MIN);
    if (!rc)
        rc = catalogue(b);
    if (!rc && !(b->cc = sfs_codec_ctx_new()))
        rc = -ENOMEM;
    return rc;
}

static void table_close(struct vb_table *t)
{
    if (t->txn)
        mdb_txn_abort(t->txn);
    vault_restorer_close(t->rs);
    if (t->snap->t == t)
        t->b->ntables--;
    t->snap->t = NULL;
    free(t);
}

void vb_close(struct vbrowse *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->nsnaps; i++) {
        struct vb_snap *s = b->snaps[i];
        if (s->t) {
            vcache_forget(b->c, s->s.id);
            table_close(s->t);
        }
        free(s);
    }
    for (size_t i = 0; i < b->nvols; i++)
        free(b->vols[i].members);
    sfs_codec_ctx_free(b->cc);
    free(b->block);
    free(b->snaps);
    free(b->vols);
    free(b->passed);
    free(b->indexes);
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

/* With TABLES_MAX open, the least recently used goes (its files with
 * it: it is replayed again when its snapshot is entered again). */
static void close_oldest_table(struct vbrowse *b)
{
    struct vb_table *oldest = NULL;
    if (b->ntables < TABLES_MAX)
        return;
    for (size_t i = 0; i < b->nsnaps; i++) {
        struct vb_table *t = b->snaps[i]->t;
        if (t && (!oldest || t->used < oldest->used))
            oldest = t;
    }
    if (oldest) {
        vcache_forget(b->c, oldest->snap->s.id);
        table_close(oldest);
    }
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
        t->used = ++b->tick;
        *out = t;
        return 0;
    }
    close_oldest_table(b);
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
    t->used = ++b->tick;
    b->ntables++;
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
    return b->snaps[slot - 1];
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
    uint64_t node = node_of(s->slot, obj);
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
    *stable = false; /* new backups come */
    return 0;
}

/* NAME in the top (a volume) or in volume PARENT (a snapshot); a name
 * not there may be a new backup's. */
static int lookup_catalogue(struct vbrowse *b, uint64_t parent,
                            const char *name, struct stat *st, bool *stable)
{
    for (int pass = 0; pass < 2; pass++) {
        struct vb_volume *v = volume_of(b, parent);
        for (size_t i = 0; !v && i < b->nvols; i++)
            if (!strcmp(b->vols[i].name, name))
                return vb_getattr(b, 2 + i, st, stable);
        for (size_t i = 0; v && i < v->n; i++) {
            struct vb_snap *s = b->snaps[v->members[i]];
            if (!strcmp(s->shown, name))
                return snap_stat(b, s, SFS_ROOT_INO, st, stable);
        }
        if (!pass)
            refresh(b);
    }
    return -ENOENT;
}

int vb_lookup(struct vbrowse *b, uint64_t parent, const char *name,
              struct stat *st, bool *stable)
{
    uint64_t obj;
    struct vb_snap *s = snap_of(b, parent, &obj);
    struct vb_volume *v = volume_of(b, parent);
    if (parent == VB_TOP || v)
        return lookup_catalogue(b, parent, name, st, stable);
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
    if (s)
        return table_of(b, s, &t);
    refresh(b); /* a listing of the top or a volume shows new backups */
    return 0;
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
    struct list_walk w = { b, s->slot, cb, arg };
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
        const struct vb_snap *c = v ? b->snaps[v->members[i]] : NULL;
        const char *name = c ? c->shown : b->vols[i].name;
        uint64_t child = c ? node_of(c->slot, SFS_ROOT_INO) : 2 + i;
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
    return load_indexes(b, true);
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
