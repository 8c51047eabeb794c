/*
 * snapdir.c - .snapshot: every snapshot browsable, read-only, at
 * MOUNT/.snapshot/NAME/ and from every directory as DIR/.snapshot/NAME/
 * (DIR as that snapshot holds it).
 *
 * THEORY
 *
 * Node ids.  FUSE gives the whole mount one st_dev, so every file the
 * clients can reach needs an inode number of its own, and the kernel's
 * node ids must tell the daemon what a request is about.  A 64-bit node id
 * is split as  top 22 bits | low 42 bits  (SFS_INO_BITS):
 *
 *   0      | object          an object of the live tree (ids < 2^41)
 *   sid    | object          that object as snapshot sid holds it
 *   TAG    | 0 | dir         DIR/.snapshot for the live directory dir
 *   TAG    | 1 | counter     a directory of a per-directory view (below)
 *
 * where TAG = SFS_SNAP_ID_MAX, a snapshot id never given out.  Snapshot
 * ids and object ids are never reused, so the first three kinds are
 * stateless and stable across daemon restarts (NFS file handles of them
 * stay valid), and the inode number clients see (st_ino) is the node id.
 * Two different files never share a number, a snapshot's copy of a file
 * never shows the live file's number, and hard links inside one snapshot
 * share theirs.
 *
 * Per-directory views.  The kernel allows one dentry per directory inode,
 * and DIR/.snapshot/NAME is the directory MOUNT/.snapshot/NAME/path/to/DIR
 * reached another way.  So directories reached through a .snapshot other
 * than the root's get node ids of their own from a table keyed by
 * (entry directory, snapshot, object), freed when the kernel forgets
 * them; their st_ino stays the canonical sid | object.  Files need no
 * such care (a file may have many dentries) and always use the canonical
 * id.  The table is bounded by what the kernel keeps in its inode cache.
 *
 * File handles.  An NFS server (nfsd, or NFS-Ganesha's FSAL_VFS through
 * open_by_handle_at) keeps the kernel's handle of a node: its node id and
 * generation.  Once the kernel has evicted the inode it resolves the
 * handle by looking up "." in the node id, whatever its type, and a
 * directory's path by looking up ".." and finding its name in the parent's
 * listing; so "." is answered for every node and ".." for directories.
 * The generation of an object's node is derived from the object (see
 * node_generation); table nodes take one drawn at random for the daemon
 * run, as their ids start again from 1 in the next run: a handle of one
 * from an earlier run is stale, never another directory.
 *
 * Validity.  A snapshot can be deleted while the kernel still holds nodes
 * of it.  Every request resolves its node under the volume lock and checks
 * that the snapshot at that epoch is still the one with that id (one
 * lookup in the snaps table), so a deleted snapshot answers ESTALE, never
 * the bytes of some other version.  The reads themselves are reads of the
 * versioned records at the snapshot's epoch: nothing is copied.
 *
 * Caching.  A snapshot never changes, so its entries and attributes are
 * cached by the kernel for a day.  What can change is the set of names in
 * .snapshot (create, delete, rename), the snapdir setting and, after a
 * rollback, the live tree, or for a mirror destination the published
 * snapshot (a receive publishes each snapshot it completes: the names of
 * the old view are noted and the new one published under one hold of the
 * volume lock); snapdir_notify tells the kernel exactly which entries to
 * drop, and which inodes' attributes and pages.  Misses in .snapshot are not cached, so a new snapshot
 * is visible at once.  .snapshot directories the kernel has looked up are
 * tracked in the table (as the invalidations must name them).
 *
 * Lock order: the volume lock, then sd->lock; never the other way round.
 * Kernel notifications are sent with no lock held.
 */
#define _GNU_SOURCE
#include "snapdir.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "readaround.h"

#define TAG SFS_SNAP_ID_MAX
#define LOW_MASK (((uint64_t)1 << SFS_INO_BITS) - 1)
#define TABLE_BIT ((uint64_t)1 << (SFS_INO_BITS - 1))
#define VIEW_TIMEOUT 86400.0
#define NBUCKETS 4096

struct view_node {
    uint64_t nodeid;
    uint64_t entry, sid, obj; /* sid 0: the tracked DIR/.snapshot of obj */
    uint64_t nlookup;
    struct view_node *next_id, *next_key;
};

static uint64_t snapdir_nodeid(uint64_t dir) { return TAG << SFS_INO_BITS | dir; }

static uint64_t canonical_nodeid(uint64_t sid, uint64_t obj)
{
    return sid << SFS_INO_BITS | obj;
}

static size_t hash3(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t h = (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full) ^
                 (c * 0x165667B19E3779F9ull);
    return (size_t)(h >> 40) % NBUCKETS;
}

/* ---- the snapshot index: id -> epoch and name ---- */

static void snaps_free(struct snap_entry *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i].name);
    free(s);
}

struct snaps_build {
    struct snap_entry *v;
    size_t n, cap;
    uint64_t newest;    /* list no snapshot after this epoch */
};

/* A mirror destination shows the snapshots up to the one it publishes:
 * newer ones are being received, or held back (store/stream.c). */
static uint64_t newest_shown(const struct vol *v)
{
    return v->live_view;
}

static int snaps_add(void *arg, const struct sfs_snap_rec *s)
{
    struct snaps_build *b = arg;
    if (s->epoch > b->newest)
        return 0;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        void *p = realloc(b->v, cap * sizeof(*b->v));
        if (!p)
            return -ENOMEM;
        b->v = p;
        b->cap = cap;
    }
    char *name = strdup(s->name);
    if (!name)
        return -ENOMEM;
    b->v[b->n++] = (struct snap_entry){ s->id, s->epoch, name };
    return 0;
}

/* Replace the index with the snapshots TXN sees; the old one goes to
 * *OLD (or is freed when OLD is NULL). */
static int snaps_load(struct snapdirs *sd, struct vol *v, MDB_txn *txn,
                      struct snap_entry **old, size_t *nold)
{
    struct snaps_build b = { .newest = newest_shown(v) };
    int rc = sfs_snap_foreach(v->st, txn, snaps_add, &b);
    if (rc) {
        snaps_free(b.v, b.n);
        return rc;
    }
    pthread_mutex_lock(&sd->lock);
    struct snap_entry *prev = sd->snaps;
    size_t nprev = sd->nsnaps;
    sd->snaps = b.v;
    sd->nsnaps = b.n;
    pthread_mutex_unlock(&sd->lock);
    if (old) {
        *old = prev;
        *nold = nprev;
    } else {
        snaps_free(prev, nprev);
    }
    return 0;
}

/* Snapshot SID in the index (ids grow with epochs), or NULL. */
static struct snap_entry *find_sid_locked(struct snapdirs *sd, uint64_t sid)
{
    size_t lo = 0, hi = sd->nsnaps;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sd->snaps[mid].sid < sid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < sd->nsnaps && sd->snaps[lo].sid == sid ? &sd->snaps[lo] : NULL;
}

static bool epoch_of_locked(struct snapdirs *sd, uint64_t sid, uint64_t *epoch)
{
    struct snap_entry *e = find_sid_locked(sd, sid);
    if (e)
        *epoch = e->epoch;
    return e != NULL;
}

/* ---- the view node table ---- */

static struct view_node *find_id_locked(struct snapdirs *sd, uint64_t nodeid)
{
    for (struct view_node *n = sd->by_id[hash3(nodeid, 0, 0)]; n;
         n = n->next_id)
        if (n->nodeid == nodeid)
            return n;
    return NULL;
}

static struct view_node *find_key_locked(struct snapdirs *sd, uint64_t entry,
                                         uint64_t sid, uint64_t obj)
{
    for (struct view_node *n = sd->by_key[hash3(entry, sid, obj)]; n;
         n = n->next_key)
        if (n->entry == entry && n->sid == sid && n->obj == obj)
            return n;
    return NULL;
}

/* Find or make the node for (ENTRY, SID, OBJ) and count one kernel
 * reference.  A tracked .snapshot (SID 0) keeps its stateless id. */
static int table_ref(struct snapdirs *sd, uint64_t entry, uint64_t sid,
                     uint64_t obj, uint64_t *nodeid)
{
    pthread_mutex_lock(&sd->lock);
    struct view_node *n = find_key_locked(sd, entry, sid, obj);
    if (!n) {
        n = calloc(1, sizeof(*n));
        if (!n) {
            pthread_mutex_unlock(&sd->lock);
            return -ENOMEM;
        }
        n->entry = entry;
        n->sid = sid;
        n->obj = obj;
        n->nodeid = sid ? TAG << SFS_INO_BITS | TABLE_BIT | sd->next_table_id++
                        : snapdir_nodeid(obj);
        size_t bi = hash3(n->nodeid, 0, 0), bk = hash3(entry, sid, obj);
        n->next_id = sd->by_id[bi];
        sd->by_id[bi] = n;
        n->next_key = sd->by_key[bk];
        sd->by_key[bk] = n;
        sd->nviews++;
    }
    n->nlookup++;
    *nodeid = n->nodeid;
    pthread_mutex_unlock(&sd->lock);
    return 0;
}

static void unlink_locked(struct snapdirs *sd, struct view_node *n)
{
    struct view_node **pp = &sd->by_id[hash3(n->nodeid, 0, 0)];
    while (*pp != n)
        pp = &(*pp)->next_id;
    *pp = n->next_id;
    pp = &sd->by_key[hash3(n->entry, n->sid, n->obj)];
    while (*pp != n)
        pp = &(*pp)->next_key;
    *pp = n->next_key;
    sd->nviews--;
    free(n);
}

void snapdir_forget(struct snapdirs *sd, uint64_t nodeid, uint64_t nlookup)
{
    pthread_mutex_lock(&sd->lock);
    struct view_node *n = find_id_locked(sd, nodeid);
    if (n) {
        n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
        if (!n->nlookup)
            unlink_locked(sd, n);
    }
    pthread_mutex_unlock(&sd->lock);
}

/* The live directories whose .snapshot the kernel holds. */
static uint64_t *tracked_snapdirs(struct snapdirs *sd, size_t *count)
{
    pthread_mutex_lock(&sd->lock);
    uint64_t *dirs = malloc((sd->nviews + 1) * sizeof(*dirs));
    size_t n = 0;
    for (size_t b = 0; dirs && b < NBUCKETS; b++)
        for (struct view_node *v = sd->by_id[b]; v; v = v->next_id)
            if (v->sid == 0)
                dirs[n++] = v->obj;
    pthread_mutex_unlock(&sd->lock);
    *count = n;
    return dirs;
}

/* ---- setup ---- */

static int mode_of(const char *value)
{
    return !strcmp(value, "hidden") ? SNAPDIR_HIDDEN
         : !strcmp(value, "disabled") ? SNAPDIR_DISABLED
         : SNAPDIR_VISIBLE;
}

static int load_mode(struct snapdirs *sd, struct vol *v, MDB_txn *txn)
{
    char value[SFS_SETTING_VALUE_MAX + 1];
    int rc = sfs_setting_get(v->st, txn, "snapdir", value, sizeof(value));
    if (!rc)
        __atomic_store_n(&sd->mode, mode_of(value), __ATOMIC_RELEASE);
    return rc;
}

int snapdirs_init(struct snapdirs *sd, struct vol *v)
{
    memset(sd, 0, sizeof(*sd));
    pthread_mutex_init(&sd->lock, NULL);
    sd->next_table_id = 1;
    while (!sd->table_generation)
        if (getrandom(&sd->table_generation, sizeof(sd->table_generation), 0) !=
            sizeof(sd->table_generation))
            sd->table_generation = (uint32_t)time(NULL) ^ (uint32_t)getpid();
    sd->by_id = calloc(NBUCKETS, sizeof(*sd->by_id));
    sd->by_key = calloc(NBUCKETS, sizeof(*sd->by_key));
    if (!sd->by_id || !sd->by_key)
        return -ENOMEM;
    MDB_txn *txn = vol_read_begin(v);
    int rc = load_mode(sd, v, txn);
    if (!rc)
        rc = snaps_load(sd, v, txn, NULL, NULL);
    vol_read_end(v);
    return rc;
}

struct stash {
    uint64_t dir;
    char *name;
    struct stash *next;
};

static void stash_free(struct stash *s)
{
    while (s) {
        struct stash *next = s->next;
        free(s->name);
        free(s);
        s = next;
    }
}

void snapdirs_destroy(struct snapdirs *sd)
{
    for (size_t b = 0; sd->by_id && b < NBUCKETS; b++)
        while (sd->by_id[b])
            unlink_locked(sd, sd->by_id[b]);
    free(sd->by_id);
    free(sd->by_key);
    snaps_free(sd->snaps, sd->nsnaps);
    stash_free(sd->stash);
    pthread_mutex_destroy(&sd->lock);
}

enum snapdir_mode snapdir_mode(struct snapdirs *sd)
{
    return (enum snapdir_mode)__atomic_load_n(&sd->mode, __ATOMIC_ACQUIRE);
}

bool snapdir_listed(struct snapdirs *sd)
{
    return snapdir_mode(sd) == SNAPDIR_VISIBLE;
}

int snapdir_reserved(struct snapdirs *sd, const char *name)
{
    if (strcmp(name, SNAPDIR_NAME))
        return 0;
    return snapdir_mode(sd) == SNAPDIR_DISABLED ? EPERM : EEXIST;
}

/* ---- resolving node ids ---- */

int noderef_resolve(struct snapdirs *sd, struct vol *v, MDB_txn *txn,
                    uint64_t nodeid, struct noderef *out)
{
    uint64_t top = nodeid >> SFS_INO_BITS, low = nodeid & LOW_MASK;
    memset(out, 0, sizeof(*out));
    out->nodeid = nodeid;
    out->view = v->live_view;
    out->obj = nodeid;
    if (top == 0)
        return 0;
    if (top == TAG && !(low & TABLE_BIT)) {
        out->kind = NODE_SNAPDIR;
        out->obj = low;
        return 0;
    }
    out->kind = NODE_VIEW;
    out->sid = top;
    out->obj = low;
    out->entry = SFS_ROOT_INO;
    bool known;
    for (int attempt = 0;; attempt++) {
        pthread_mutex_lock(&sd->lock);
        if (top == TAG) {
            struct view_node *n = find_id_locked(sd, nodeid);
            if (!n) {
                pthread_mutex_unlock(&sd->lock);
                return -ESTALE;
            }
            out->sid = n->sid;
            out->obj = n->obj;
            out->entry = n->entry;
        }
        known = epoch_of_locked(sd, out->sid, &out->view);
        pthread_mutex_unlock(&sd->lock);
        if (known || attempt)
            break;
        /* A snapshot newer than the index: read it again. */
        int rc = snaps_load(sd, v, txn, NULL, NULL);
        if (rc)
            return rc;
    }
    if (!known)
        return -ESTALE;
    struct sfs_snap_rec s;
    int rc = sfs_snap_get(v->st, txn, out->view, &s);
    if (rc == -ENOENT || (!rc && s.id != out->sid))
        return -ESTALE; /* deleted since the index was read */
    return rc;
}

uint64_t noderef_st_ino(const struct noderef *r, uint64_t obj)
{
    switch (r->kind) {
    case NODE_VIEW: return canonical_nodeid(r->sid, obj);
    case NODE_SNAPDIR: return snapdir_nodeid(obj);
    default: return obj;
    }
}

/* ---- attributes ---- */

uint32_t node_generation(const struct sfs_inode *i)
{
    if (i->ino == SFS_ROOT_INO)
        return 0;
    uint64_t h = (i->ino * 0x9E3779B97F4A7C15ull) ^
                 ((uint64_t)i->btime_sec * 0xC2B2AE3D27D4EB4Full) ^
                 ((uint64_t)i->btime_nsec * 0x165667B19E3779F9ull);
    return (uint32_t)(h >> 32) ^ (uint32_t)h;
}

void inode_stat(const struct sfs_inode *i, uint64_t st_ino,
                uint32_t block_size, struct stat *s)
{
    sfs_inode_stat(i, st_ino, block_size, s);
}

int snapdir_child_entry(struct snapdirs *sd, const struct noderef *r,
                        const struct sfs_inode *i, uint32_t block_size,
                        double timeout, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    uint64_t st_ino = canonical_nodeid(r->sid, i->ino);
    e->ino = st_ino;
    if (r->entry != SFS_ROOT_INO && S_ISDIR(i->mode)) {
        int rc = table_ref(sd, r->entry, r->sid, i->ino, &e->ino);
        if (rc)
            return rc;
    }
    e->generation = e->ino == st_ino ? node_generation(i) : sd->table_generation;
    e->attr_timeout = timeout;
    e->entry_timeout = timeout;
    inode_stat(i, st_ino, block_size, &e->attr);
    return 0;
}

/* Undo the reference snapdir_child_entry counted (the reply failed). */
static void child_entry_unref(struct snapdirs *sd, const struct fuse_entry_param *e)
{
    if (!nodeid_is_live(e->ino) && (e->ino >> SFS_INO_BITS) == TAG)
        snapdir_forget(sd, e->ino, 1);
}

/* Does the snapshot at EPOCH hold the directory DIR? */
static bool holds_dir(struct vol *v, MDB_txn *txn, uint64_t epoch, uint64_t dir)
{
    struct sfs_inode i;
    return sfs_inode_get(v->st, txn, epoch, dir, &i) == 0 && S_ISDIR(i.mode);
}

/* Attributes of DIR/.snapshot: read-only, owned as DIR, one link per
 * snapshot holding DIR, times of the newest such snapshot. */
static int snapdir_stat(struct snapdirs *sd, struct vol *v, MDB_txn *txn,
                        uint64_t dir, struct stat *s)
{
    struct sfs_inode d;
    int rc = sfs_inode_get(v->st, txn, v->live_view, dir, &d);
    if (rc)
        return rc == -ENOENT ? -ESTALE : rc;
    if (!S_ISDIR(d.mode))
        return -ESTALE;
    memset(s, 0, sizeof(*s));
    s->st_ino = snapdir_nodeid(dir);
    s->st_mode = S_IFDIR | 0555;
    s->st_nlink = 2;
    s->st_uid = d.uid;
    s->st_gid = d.gid;
    s->st_blksize = v->st->super.block_size;
    struct sfs_snap_rec newest = { 0 };
    pthread_mutex_lock(&sd->lock);
    size_t n = sd->nsnaps;
    uint64_t *epochs = malloc((n + 1) * sizeof(*epochs));
    for (size_t k = 0; epochs && k < n; k++)
        epochs[k] = sd->snaps[k].epoch;
    pthread_mutex_unlock(&sd->lock);
    if (!epochs)
        return -ENOMEM;
    for (size_t k = 0; k < n; k++)
        if (holds_dir(v, txn, epochs[k], dir)) {
            s->st_nlink++;
            sfs_snap_get(v->st, txn, epochs[k], &newest);
        }
    free(epochs);
    s->st_size = (off_t)(s->st_nlink - 2);
    s->st_mtim.tv_sec = newest.ctime_sec ? newest.ctime_sec : d.btime_sec;
    s->st_mtim.tv_nsec = newest.ctime_sec ? newest.ctime_nsec : d.btime_nsec;
    s->st_ctim = s->st_atim = s->st_mtim;
    return 0;
}

static int snapdir_entry(struct snapdirs *sd, struct vol *v, MDB_txn *txn,
                         uint64_t dir, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    struct sfs_inode d;
    int rc = snapdir_stat(sd, v, txn, dir, &e->attr);
    if (!rc)
        rc = sfs_inode_get(v->st, txn, v->live_view, dir, &d);
    if (!rc)
        rc = table_ref(sd, dir, 0, dir, &e->ino);
    if (!rc)
        e->generation = node_generation(&d);
    e->attr_timeout = VIEW_TIMEOUT;
    e->entry_timeout = VIEW_TIMEOUT;
    return rc;
}

void snapdir_getattr(fuse_req_t req, struct snapdirs *sd, struct vol *v,
                     uint64_t nodeid)
{
    struct noderef r;
    struct stat s;
    struct sfs_inode i;
    MDB_txn *txn = vol_read_begin(v);
    int rc = noderef_resolve(sd, v, txn, nodeid, &r);
    if (!rc && r.kind == NODE_SNAPDIR)
        rc = snapdir_stat(sd, v, txn, r.obj, &s);
    else if (!rc) {
        rc = sfs_inode_get(v->st, txn, r.view, r.obj, &i);
        if (!rc)
            inode_stat(&i, noderef_st_ino(&r, r.obj), v->st->super.block_size,
                      &s);
    }
    vol_read_end(v);
    if (rc)
        fuse_reply_err(req, rc == -ENOENT ? ESTALE : -rc);
    else
        fuse_reply_attr(req, &s, VIEW_TIMEOUT);
}

/* ---- lookups ---- */

void snapdir_lookup_from_live(fuse_req_t req, struct snapdirs *sd,
                              struct vol *v, uint64_t dir)
{
    if (snapdir_mode(sd) == SNAPDIR_DISABLED) {
        fuse_reply_err(req, ENOENT); /* not cached: it may be enabled */
        return;
    }
    struct fuse_entry_param e;
    MDB_txn *txn = vol_read_begin(v);
    int rc = snapdir_entry(sd, v, txn, dir, &e);
    vol_read_end(v);
    if (rc)
        fuse_reply_err(req, rc == -ESTALE ? ENOTDIR : -rc);
    else if (fuse_reply_entry(req, &e))
        snapdir_forget(sd, e.ino, 1);
}

/* NAME in DIR/.snapshot: the snapshot NAME's copy of DIR. */
static int lookup_in_snapdir(struct snapdirs *sd, struct vol *v, MDB_txn *txn,
                             const struct noderef *p, const char *name,
                             struct fuse_entry_param *e)
{
    struct sfs_snap_rec s;
    int rc = sfs_snap_find(v->st, txn, name, &s);
    if (!rc && s.epoch > newest_shown(v))
        rc = -ENOENT;
    struct sfs_inode i;
    if (!rc)
        rc = sfs_inode_get(v->st, txn, s.epoch, p->obj, &i);
    if (!rc && !S_ISDIR(i.mode))
        rc = -ENOENT;
    if (rc)
        return rc;
    struct noderef root = { .kind = NODE_VIEW, .sid = s.id, .view = s.epoch,
                            .entry = p->obj, .obj = p->obj };
    return snapdir_child_entry(sd, &root, &i, v->st->super.block_size,
                               VIEW_TIMEOUT, e);
}

/* NAME in a directory of a snapshot. */
static int lookup_in_view(struct snapdirs *sd, struct vol *v, MDB_txn *txn,
                          const struct noderef *p, const char *name,
                          struct fuse_entry_param *e)
{
    struct sfs_inode dir, i;
    int rc = sfs_inode_get(v->st, txn, p->view, p->obj, &dir);
    if (rc)
        return rc == -ENOENT ? -ESTALE : rc;
    if (!strcmp(name, ".")) /* in any node: how handles are resolved */
        return snapdir_child_entry(sd, p, &dir, v->st->super.block_size,
                                   VIEW_TIMEOUT, e);
    if (!S_ISDIR(dir.mode))
        return -ENOTDIR;
    uint64_t ino;
    if (!strcmp(name, "..") && p->obj == p->entry)
        return snapdir_entry(sd, v, txn, p->entry, e);
    else if (!strcmp(name, ".."))
        ino = dir.parent ? dir.parent : SFS_ROOT_INO;
    else {
        struct sfs_dirent d;
        rc = sfs_dirent_lookup(v->st, txn, p->view, p->obj, name, &d);
        if (rc)
            return rc;
        ino = d.ino;
    }
    rc = sfs_inode_get(v->st, txn, p->view, ino, &i);
    return rc ? rc : snapdir_child_entry(sd, p, &i, v->st->super.block_size,
                                         VIEW_TIMEOUT, e);
}

void snapdir_lookup(fuse_req_t req, struct snapdirs *sd, struct vol *v,
                    uint64_t parent, const char *name)
{
    struct noderef p;
    struct fuse_entry_param e;
    if (!strcmp(name, ".") && snapdir_mode(sd) == SNAPDIR_DISABLED) {
        /* a file handle: snapshots are out of reach while disabled */
        fuse_reply_err(req, ESTALE);
        return;
    }
    MDB_txn *txn = vol_read_begin(v);
    int rc = noderef_resolve(sd, v, txn, parent, &p);
    if (!rc && p.kind == NODE_SNAPDIR)
        rc = !strcmp(name, ".") ? snapdir_entry(sd, v, txn, p.obj, &e)
                                : lookup_in_snapdir(sd, v, txn, &p, name, &e);
    else if (!rc)
        rc = lookup_in_view(sd, v, txn, &p, name, &e);
    vol_read_end(v);
    if (rc == -ENOENT && p.kind == NODE_VIEW) {
        /* A snapshot never changes: its misses may be cached too. */
        struct fuse_entry_param neg = { .ino = 0, .entry_timeout = VIEW_TIMEOUT };
        fuse_reply_entry(req, &neg);
    } else if (rc) {
        fuse_reply_err(req, -rc);
    } else if (fuse_reply_entry(req, &e)) {
        child_entry_unref(sd, &e);
    }
}

/* ---- listing DIR/.snapshot ---- */

static size_t add_entry(fuse_req_t req, char *at, size_t room, const char *name,
                        struct fuse_entry_param *e, off_t next, bool plus)
{
    if (plus)
        return fuse_add_direntry_plus(req, at, room, name, e, next);
    return fuse_add_direntry(req, at, room, name, &e->attr, next);
}

/* Offsets: "." 1, ".." 2, then snapshot at epoch E at E + 2. */
int snapdir_list(struct snapdirs *sd, struct vol *v, MDB_txn *txn,
                 const struct noderef *r, fuse_req_t req, char *buf,
                 size_t size, off_t off, bool plus, size_t *used)
{
    struct snaps_build b = { .newest = newest_shown(v) };
    int rc = sfs_snap_foreach(v->st, txn, snaps_add, &b);
    for (int k = (int)off; !rc && k < 2; k++) {
        struct fuse_entry_param e = { 0 };
        e.attr.st_mode = S_IFDIR;
        e.attr.st_ino = k == 0 ? snapdir_nodeid(r->obj) : r->obj;
        size_t need = add_entry(req, buf + *used, size - *used,
                                k == 0 ? "." : "..", &e, k + 1, plus);
        if (need > size - *used)
            goto out;
        *used += need;
    }
    for (size_t k = 0; !rc && k < b.n; k++) {
        off_t next = (off_t)(b.v[k].epoch + 2);
        struct sfs_inode i;
        if (next <= off || sfs_inode_get(v->st, txn, b.v[k].epoch, r->obj, &i) ||
            !S_ISDIR(i.mode))
            continue;
        struct noderef root = { .kind = NODE_VIEW, .sid = b.v[k].sid,
                                .view = b.v[k].epoch, .entry = r->obj,
                                .obj = r->obj };
        struct fuse_entry_param e;
        if (plus)
            rc = snapdir_child_entry(sd, &root, &i, v->st->super.block_size,
                                     VIEW_TIMEOUT, &e);
        else
            inode_stat(&i, canonical_nodeid(b.v[k].sid, i.ino),
                      v->st->super.block_size, &e.attr);
        if (rc)
            break;
        size_t need = add_entry(req, buf + *used, size - *used, b.v[k].name,
                                &e, next, plus);
        if (need > size - *used) {
            if (plus)
                child_entry_unref(sd, &e);
            break;
        }
        *used += need;
    }
out:
    snaps_free(b.v, b.n);
    return rc;
}

/* ---- invalidation ---- */

static void inval_entry(struct snapdirs *sd, uint64_t parent, const char *name)
{
    fuse_lowlevel_notify_inval_entry(sd->se, parent, name, strlen(name));
}

void snapdir_notify_entry(struct snapdirs *sd, uint64_t parent,
                          const char *name)
{
    if (!sd->se)
        return;
    inval_entry(sd, parent, name);
    fuse_lowlevel_notify_inval_inode(sd->se, parent, -1, 0);
}

/* Snapshots were created, deleted or renamed: drop the names that went
 * from every .snapshot the kernel holds, and their attributes. */
static void notify_snapshots(struct snapdirs *sd, struct vol *v)
{
    struct snap_entry *old = NULL;
    size_t nold = 0;
    MDB_txn *txn = vol_read_begin(v);
    int rc = snaps_load(sd, v, txn, &old, &nold);
    vol_read_end(v);
    if (rc || !sd->se) {
        snaps_free(old, nold);
        return;
    }
    size_t ndirs;
    uint64_t *dirs = tracked_snapdirs(sd, &ndirs);
    for (size_t k = 0; dirs && k < nold; k++) {
        pthread_mutex_lock(&sd->lock);
        struct snap_entry *now = find_sid_locked(sd, old[k].sid);
        bool same = now && !strcmp(now->name, old[k].name);
        pthread_mutex_unlock(&sd->lock);
        for (size_t d = 0; !same && d < ndirs; d++)
            inval_entry(sd, snapdir_nodeid(dirs[d]), old[k].name);
    }
    for (size_t d = 0; dirs && d < ndirs; d++)
        fuse_lowlevel_notify_inval_inode(sd->se, snapdir_nodeid(dirs[d]), -1, 0);
    free(dirs);
    snaps_free(old, nold);
}

static void notify_setting(struct snapdirs *sd, struct vol *v)
{
    MDB_txn *txn = vol_read_begin(v);
    int rc = load_mode(sd, v, txn);
    vol_read_end(v);
    if (rc)
        return;
    /* The root's link count counts a listed .snapshot. */
    fuse_lowlevel_notify_inval_inode(sd->se, SFS_ROOT_INO, -1, 0);
    if (snapdir_mode(sd) != SNAPDIR_DISABLED)
        return;
    size_t ndirs;
    uint64_t *dirs = tracked_snapdirs(sd, &ndirs);
    for (size_t d = 0; dirs && d < ndirs; d++)
        inval_entry(sd, dirs[d], SNAPDIR_NAME);
    free(dirs);
}

struct stash_arg {
    uint64_t dir;
    struct stash **head;
};

static int stash_name(void *arg, const struct sfs_dirent *d)
{
    struct stash_arg *sa = arg;
    struct stash *s = malloc(sizeof(*s));
    if (!s || !(s->name = strdup(d->name))) {
        free(s);
        return -ENOMEM;
    }
    s->dir = sa->dir;
    s->next = *sa->head;
    *sa->head = s;
    return 0;
}

/* The live inodes the kernel holds: those it looked up, and the root,
 * which it holds without a lookup.  *COUNT of them, malloc'd. */
static uint64_t *live_inodes_held(struct vol *v, size_t *count)
{
    uint64_t *ids = node_list_referenced(v, count);
    uint64_t *all = ids ? realloc(ids, (*count + 1) * sizeof(*ids)) : NULL;
    if (!all) {
        free(ids);
        *count = 0;
        return NULL;
    }
    all[(*count)++] = SFS_ROOT_INO;
    return all;
}

/* Every name of every live directory the kernel knows, as clients see
 * them (the published view), onto *HEAD.  With PUBLISH, the newest
 * snapshot is then published under the same hold of the lock, so that no
 * name of the old view can be looked up unnoticed in between. */
static void collect_live_names(struct vol *v, struct stash **head,
                               bool publish)
{
    size_t n = 0;
    uint64_t *ids = live_inodes_held(v, &n);
    MDB_txn *txn = vol_read_begin(v);
    for (size_t k = 0; ids && k < n; k++) {
        struct sfs_inode i;
        if (sfs_inode_get(v->st, txn, v->live_view, ids[k], &i) ||
            !S_ISDIR(i.mode))
            continue;
        struct stash_arg sa = { ids[k], head };
        sfs_dir_list(v->st, txn, v->live_view, ids[k], 0, stash_name, &sa);
    }
    uint64_t published;
    if (publish && txn && v->live_view != SFS_VIEW_LIVE &&
        !sfs_recv_published(v->st, txn, &published) && published)
        v->live_view = published;
    vol_read_end(v);
    free(ids);
}

/* Note the names the kernel may hold (and maybe publish: see above). */
static void stash_live_names(struct snapdirs *sd, struct vol *v, bool publish)
{
    struct stash *s = NULL;
    collect_live_names(v, &s, publish);
    pthread_mutex_lock(&sd->lock);
    stash_free(sd->stash);
    sd->stash = s;
    pthread_mutex_unlock(&sd->lock);
}

void snapdir_live_changing(struct snapdirs *sd, struct vol *v)
{
    stash_live_names(sd, v, false);
}

/*
 * The live tree changed wholesale: drop every name the kernel may hold
 * (those before the change, stashed, and those after) and every live
 * inode's attributes and pages.  With the writeback cache the kernel keeps
 * its own size and mtime of a regular file while it has the inode; a
 * dropped name lets an unused inode go (FUSE does not keep unused
 * inodes), so the next lookup reads them afresh.  A file held open across
 * the change keeps the kernel's size and mtime until it is closed.
 */
static void notify_live(struct snapdirs *sd, struct vol *v)
{
    pthread_mutex_lock(&sd->lock);
    struct stash *s = sd->stash;
    sd->stash = NULL;
    pthread_mutex_unlock(&sd->lock);
    collect_live_names(v, &s, false);
    for (struct stash *p = s; p; p = p->next)
        inval_entry(sd, p->dir, p->name);
    stash_free(s);
    size_t n = 0;
    uint64_t *ids = live_inodes_held(v, &n);
    for (size_t k = 0; ids && k < n; k++)
        fuse_lowlevel_notify_inval_inode(sd->se, ids[k], 0, 0);
    free(ids);
}

void snapdir_notify(struct snapdirs *sd, struct vol *v, unsigned what)
{
    if (what & VOL_CHANGING_LIVE) {
        snapdir_live_changing(sd, v);
        return;
    }
    if (what & VOL_PUBLISH_NEWEST)
        stash_live_names(sd, v, true);
    if (what & VOL_CHANGED_SNAPSHOTS)
        notify_snapshots(sd, v);
    if (sd->se && (what & VOL_CHANGED_SNAPDIR))
        notify_setting(sd, v);
    /* After the change and the switch of the view, before the kernel is
     * told: no push of what was read before may follow (readaround.c). */
    if (what & VOL_CHANGED_LIVE)
        readaround_live_changed(v);
    if (sd->se && (what & VOL_CHANGED_LIVE))
        notify_live(sd, v);
}
