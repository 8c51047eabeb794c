/*
 * diff.c - what changed between two views of a volume: the paths created,
 * deleted, modified and renamed between a snapshot A and a later view B
 * (a later snapshot, or the live tree).
 *
 * Guarantees: read-only (any transaction will do, it is left unchanged);
 * every change is reported once, sorted by path (bytewise); the cost is in
 * proportion to the change between A and B, times the sizes of the
 * directories on the paths that name it, never to the size of the volume
 * (with one exception, below).
 *
 * THEORY
 *
 * Which records changed.  A version is visible to view V exactly when
 * birth <= V < death (vrec.c).  A record key K can look different in A and
 * B (A < B; the live view counts as B = cur) only if some version of K was
 * born in (A, B] or a version visible to A died in (A, B].  Every stored
 * version has a row in `born` (birth | K), and every version that died
 * while a snapshot could see it has a row in `dead` (death | birth | K):
 * so the changed keys are the `born` rows with birth in (A, B] and the
 * `dead` rows with death in (A, B] and birth <= A, two range scans that
 * visit only rows of the interval.  (Versions born and killed inside the
 * interval without a snapshot seeing them were freed with their rows; they
 * are invisible to both views and so are no change.)  Each key is then
 * read once as of A and once as of B; the same birth means the same
 * version, hence no change.  The keys are deduplicated in a sorted array,
 * bounded by the change.
 *
 * What changed for whom.  Each changed key becomes events of an inode:
 *   'I' ino              the inode record (attributes) changed;
 *   'X' ino name, 'E' ino blockno   its xattrs or content changed;
 *   'D' dir hash name    a name went from inode a (or none) to inode b (or
 *                        none): an unlink of a, a link of b, and a content
 *                        change of directory dir (its entries changed).
 * Grouped by inode:
 *   - in B, not in A: each of its new names is '+';
 *   - in A, not in B: each of its old names is '-';
 *   - in both: an unlinked name paired with a linked one is a rename 'R'
 *     (a move, same inode); unpaired ones are hard links removed '-' or
 *     added '+'; a content, xattr or entry change, or a change of mode,
 *     owner, size, mtime, device or flags is 'M' (ctime, atime, link count
 *     and the parent hint change as side effects of links and renames and
 *     are not modifications by themselves).
 * Inodes with no name (orphans: unlinked, still open) are not reported.
 *
 * Naming.  A name event carries its directory and name; the directory's
 * path comes from walking `parent` pointers (authoritative for
 * directories) up to the root, finding each name by scanning the parent
 * directory for the child's inode; resolved directory paths are cached per
 * view.  A modified file without a name event is named through its parent
 * *hint* (the directory of its link made or moved last): its directory in
 * B is scanned for the inode.  When the hinted link is gone (a hard-linked
 * file whose hinted link was removed, or a volume made before files kept
 * the hint) the whole tree of B is searched; that slow path, in proportion
 * to the volume, exists only for such files.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define MAX_DEPTH 4096

/* ---- growing arrays ---- */

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* ---- the changed keys: a sorted, deduplicated set ---- */

struct key {
    size_t len;
    uint8_t *bytes;
};

struct keyset {
    struct key *v;
    size_t n, cap;
};

static int keyset_add(struct keyset *ks, const void *k, size_t len)
{
    if (len < 1 || len > SFS_KEY_MAX) {
        sfs_log_corruption("index row with a key of %zu bytes", len);
        return -EIO;
    }
    int rc = grow((void **)&ks->v, &ks->cap, ks->n, sizeof(*ks->v));
    uint8_t *copy = rc ? NULL : malloc(len);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, k, len);
    ks->v[ks->n++] = (struct key){ len, copy };
    return 0;
}

static int key_cmp(const void *pa, const void *pb)
{
    const struct key *a = pa, *b = pb;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->bytes, b->bytes, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static void keyset_sort_unique(struct keyset *ks)
{
    if (!ks->n)
        return;
    qsort(ks->v, ks->n, sizeof(*ks->v), key_cmp);
    size_t out = 1;
    for (size_t i = 1; i < ks->n; i++) {
        if (key_cmp(&ks->v[i], &ks->v[out - 1]))
            ks->v[out++] = ks->v[i];
        else
            free(ks->v[i].bytes);
    }
    ks->n = out;
}

static void keyset_free(struct keyset *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        free(ks->v[i].bytes);
    free(ks->v);
}

/* ---- per-view cache of directory paths ---- */

struct pathmap {
    uint64_t *inos; /* 0: empty slot */
    char **paths;
    size_t n, cap;  /* cap: a power of two */
};

static size_t slot_of(const struct pathmap *m, uint64_t ino)
{
    size_t i = (size_t)(ino * 0x9e3779b97f4a7c15ull) & (m->cap - 1);
    while (m->inos[i] && m->inos[i] != ino)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static const char *pathmap_get(const struct pathmap *m, uint64_t ino)
{
    if (!m->cap)
        return NULL;
    size_t i = slot_of(m, ino);
    return m->inos[i] ? m->paths[i] : NULL;
}

/* Takes ownership of PATH (freed on failure too). */
static int pathmap_put(struct pathmap *m, uint64_t ino, char *path)
{
    if (2 * (m->n + 1) > m->cap) {
        struct pathmap bigger = { NULL, NULL, 0, m->cap ? 2 * m->cap : 64 };
        bigger.inos = calloc(bigger.cap, sizeof(*bigger.inos));
        bigger.paths = calloc(bigger.cap, sizeof(*bigger.paths));
        if (!bigger.inos || !bigger.paths) {
            free(bigger.inos);
            free(bigger.paths);
            free(path);
            return -ENOMEM;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->inos[i])
                continue;
            size_t j = slot_of(&bigger, m->inos[i]);
            bigger.inos[j] = m->inos[i];
            bigger.paths[j] = m->paths[i];
        }
        bigger.n = m->n;
        free(m->inos);
        free(m->paths);
        *m = bigger;
    }
    size_t i = slot_of(m, ino);
    m->inos[i] = ino;
    m->paths[i] = path;
    m->n++;
    return 0;
}

static void pathmap_free(struct pathmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->paths[i]);
    free(m->inos);
    free(m->paths);
}

/* ---- events and changes ---- */

enum what { W_CONTENT, W_INODE, W_UNLINK, W_LINK };

struct event {
    uint64_t ino;
    enum what what;
    uint64_t dir;   /* W_UNLINK, W_LINK */
    char *name;     /* W_UNLINK, W_LINK */
};

struct change {
    char change;
    uint64_t ino;
    char *path;
    char *new_path; /* 'R' only */
};

struct diff {
    struct sfs_store *st;
    MDB_txn *txn;
    uint64_t view[2];   /* A, B */
    uint64_t epoch_b;   /* B, or the current epoch for the live view */
    struct keyset keys;
    struct event *ev;
    size_t nev, evcap;
    struct change *ch;
    size_t nch, chcap;
    struct pathmap dirs[2];
    struct sfs_diff_stats stats;
};

static int add_event(struct diff *d, uint64_t ino, enum what what,
                     uint64_t dir, const char *name)
{
    int rc = grow((void **)&d->ev, &d->evcap, d->nev, sizeof(*d->ev));
    if (rc)
        return rc;
    char *copy = name ? strdup(name) : NULL;
    if (name && !copy)
        return -ENOMEM;
    d->ev[d->nev++] = (struct event){ ino, what, dir, copy };
    return 0;
}

/* Takes ownership of PATH and NEW_PATH. */
static int add_change(struct diff *d, char change, uint64_t ino, char *path,
                      char *new_path)
{
    int rc = grow((void **)&d->ch, &d->chcap, d->nch, sizeof(*d->ch));
    if (rc) {
        free(path);
        free(new_path);
        return rc;
    }
    d->ch[d->nch++] = (struct change){ change, ino, path, new_path };
    return 0;
}

/* ---- step 1: the changed keys, from the born and dead indexes ---- */

/*
 * Rows of DBI (keys: be64 epoch [| be64 birth] | K) with the leading epoch
 * in (A, B].  KEY_AT is where K starts; with BORN_BY_A, only rows whose
 * birth (the second number) is <= A count.
 */
static int collect_index(struct diff *d, MDB_dbi dbi, size_t key_at,
                         bool born_by_a)
{
    MDB_cursor *c;
    int rc = sfs_mdb_errno(mdb_cursor_open(d->txn, dbi, &c));
    if (rc)
        return rc;
    uint8_t start[8];
    sfs_put_be64(start, d->view[0] + 1);
    MDB_val k = { 8, start }, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (!mrc && !rc) {
        const uint8_t *kb = k.mv_data;
        if (k.mv_size <= key_at) {
            sfs_log_corruption("index row of %zu bytes", k.mv_size);
            rc = -EIO;
            break;
        }
        if (sfs_get_be64(kb) > d->epoch_b)
            break;
        d->stats.index_rows++;
        if (!born_by_a || sfs_get_be64(kb + 8) <= d->view[0])
            rc = keyset_add(&d->keys, kb + key_at, k.mv_size - key_at);
        if (!rc)
            mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc)
        return rc;
    return mrc && mrc != MDB_NOTFOUND ? sfs_mdb_errno(mrc) : 0;
}

/* ---- step 2: each changed key as events of inodes ---- */

/* The inode a directory entry names (struct dirent_val of fsmodel.c
 * starts with it). */
static uint64_t dirent_ino(const MDB_val *payload)
{
    uint64_t ino = 0;
    if (payload->mv_size >= 8)
        memcpy(&ino, payload->mv_data, 8);
    return ino;
}

static int dirent_events(struct diff *d, const struct key *k,
                         const MDB_val *va, const MDB_val *vb)
{
    if (k->len < 18 || k->bytes[k->len - 1]) {
        sfs_log_corruption("directory entry key of %zu bytes", k->len);
        return -EIO;
    }
    uint64_t dir = sfs_get_be64(k->bytes + 1);
    const char *name = (const char *)k->bytes + 17;
    uint64_t was = va ? dirent_ino(va) : 0, is = vb ? dirent_ino(vb) : 0;
    if (was == is)
        return 0; /* the same inode under the same name */
    int rc = 0;
    if (was)
        rc = add_event(d, was, W_UNLINK, dir, name);
    if (!rc && is)
        rc = add_event(d, is, W_LINK, dir, name);
    return rc ? rc : add_event(d, dir, W_CONTENT, 0, NULL);
}

static int key_events(struct diff *d, const struct key *k)
{
    MDB_val val[2];
    uint64_t birth[2];
    bool seen[2];
    for (int i = 0; i < 2; i++) {
        int rc = sfs_vrec_get(d->st, d->txn, d->view[i], k->bytes, k->len,
                              &val[i], &birth[i]);
        if (rc && rc != -ENOENT)
            return rc;
        seen[i] = !rc;
    }
    d->stats.keys++;
    if (seen[0] == seen[1] && (!seen[0] || birth[0] == birth[1]))
        return 0; /* the same version, or none, in both */
    if (k->len < 9)
        return 0;
    uint64_t ino = sfs_get_be64(k->bytes + 1);
    switch (k->bytes[0]) {
    case SFS_K_INODE:
        return add_event(d, ino, W_INODE, 0, NULL);
    case SFS_K_XATTR:
    case SFS_K_EXTENT:
        return add_event(d, ino, W_CONTENT, 0, NULL);
    case SFS_K_DIRENT:
        return dirent_events(d, k, seen[0] ? &val[0] : NULL,
                             seen[1] ? &val[1] : NULL);
    default:
        return 0;
    }
}

/* ---- naming ---- */

struct find_arg {
    uint64_t ino;
    char *name; /* strdup'd when found */
    uint64_t *entries;
};

static int find_cb(void *arg, const struct sfs_dirent *e)
{
    struct find_arg *fa = arg;
    (*fa->entries)++;
    if (e->ino != fa->ino)
        return 0;
    fa->name = strdup(e->name);
    return fa->name ? 1 : -ENOMEM;
}

/* The name of INO in directory DIR as of view V (malloc'd), or -ENOENT. */
static int name_in_dir(struct diff *d, int v, uint64_t dir, uint64_t ino,
                       char **name)
{
    struct find_arg fa = { ino, NULL, &d->stats.entries };
    int rc = sfs_dir_list(d->st, d->txn, d->view[v], dir, 0, find_cb, &fa);
    if (rc)
        return rc;
    if (!fa.name)
        return -ENOENT;
    *name = fa.name;
    return 0;
}

static char *join(const char *dir_path, const char *name)
{
    char *p;
    return asprintf(&p, "%s/%s", dir_path, name) < 0 ? NULL : p;
}

/* The path of directory DIR in view V: "" for the root, else "/a/b".  The
 * result belongs to the cache. */
static int dir_path(struct diff *d, int v, uint64_t dir, int depth,
                    const char **out)
{
    if (dir == SFS_ROOT_INO) {
        *out = "";
        return 0;
    }
    if ((*out = pathmap_get(&d->dirs[v], dir)))
        return 0;
    if (depth > MAX_DEPTH)
        return -ELOOP;
    struct sfs_inode i;
    int rc = sfs_inode_get(d->st, d->txn, d->view[v], dir, &i);
    const char *up;
    char *name = NULL;
    if (!rc)
        rc = dir_path(d, v, i.parent, depth + 1, &up);
    if (!rc)
        rc = name_in_dir(d, v, i.parent, dir, &name);
    if (rc == -ENOENT) {
        sfs_log_corruption("directory %llu has no name in its parent %llu",
                           (unsigned long long)dir,
                           (unsigned long long)i.parent);
        rc = -EIO;
    }
    if (rc)
        return rc;
    char *path = join(up, name);
    free(name);
    if (!path)
        return -ENOMEM;
    rc = pathmap_put(&d->dirs[v], dir, path);
    if (!rc)
        *out = path;
    return rc;
}

/* The path of entry NAME of directory DIR in view V (malloc'd). */
static int entry_path(struct diff *d, int v, uint64_t dir, const char *name,
                      char **out)
{
    const char *dp;
    int rc = dir_path(d, v, dir, 0, &dp);
    if (rc)
        return rc;
    *out = join(dp, name);
    return *out ? 0 : -ENOMEM;
}

/* The slow path: search every directory of view V for a link of INO. */
struct search_arg {
    struct diff *d;
    uint64_t ino;
    char *name;         /* strdup'd when found */
    uint64_t *stack;    /* directories still to search */
    size_t n, cap;
};

static int search_cb(void *arg, const struct sfs_dirent *e)
{
    struct search_arg *sa = arg;
    sa->d->stats.entries++;
    if (e->ino == sa->ino) {
        sa->name = strdup(e->name);
        return sa->name ? 1 : -ENOMEM;
    }
    if (e->type != DT_DIR)
        return 0;
    int rc = grow((void **)&sa->stack, &sa->cap, sa->n, sizeof(*sa->stack));
    if (!rc)
        sa->stack[sa->n++] = e->ino;
    return rc;
}

static int search_tree(struct diff *d, int v, uint64_t ino, uint64_t *dir,
                       char **name)
{
    struct search_arg sa = { d, ino, NULL, NULL, 0, 0 };
    int rc = grow((void **)&sa.stack, &sa.cap, sa.n, sizeof(*sa.stack));
    if (!rc)
        sa.stack[sa.n++] = SFS_ROOT_INO;
    while (!rc && !sa.name && sa.n) {
        *dir = sa.stack[--sa.n];
        rc = sfs_dir_list(d->st, d->txn, d->view[v], *dir, 0, search_cb, &sa);
    }
    free(sa.stack);
    if (rc)
        return rc;
    *name = sa.name;
    return sa.name ? 0 : -ENOENT;
}

/* A path of INO in view V (malloc'd): through its parent (for a file, the
 * hint), else by searching the tree.  -ENOENT when it has no name. */
static int inode_path(struct diff *d, int v, uint64_t ino,
                      const struct sfs_inode *i, char **out)
{
    if (ino == SFS_ROOT_INO)
        return (*out = strdup("/")) ? 0 : -ENOMEM;
    if (S_ISDIR(i->mode)) {
        const char *p;
        int rc = dir_path(d, v, ino, 0, &p);
        if (rc)
            return rc;
        return (*out = strdup(p)) ? 0 : -ENOMEM;
    }
    uint64_t dir = i->parent;
    char *name = NULL;
    int rc = dir ? name_in_dir(d, v, dir, ino, &name) : -ENOENT;
    if (rc == -ENOENT)
        rc = search_tree(d, v, ino, &dir, &name);
    if (rc)
        return rc;
    rc = entry_path(d, v, dir, name, out);
    free(name);
    return rc;
}

/* ---- step 3: events of one inode as changes ---- */

/* A modification in itself, not a side effect of links and renames. */
static bool attrs_differ(const struct sfs_inode *a, const struct sfs_inode *b)
{
    return a->mode != b->mode || a->uid != b->uid || a->gid != b->gid ||
           a->size != b->size || a->rdev != b->rdev || a->qtree != b->qtree ||
           a->mtime_sec != b->mtime_sec || a->mtime_nsec != b->mtime_nsec;
}

static int name_change(struct diff *d, char change, int v,
                       const struct event *e)
{
    char *path;
    int rc = entry_path(d, v, e->dir, e->name, &path);
    return rc ? rc : add_change(d, change, e->ino, path, NULL);
}

/* The events E[0..N) of one inode (sorted: content, inode, unlinks,
 * links). */
static int inode_changes(struct diff *d, const struct event *e, size_t n)
{
    uint64_t ino = e[0].ino;
    struct sfs_inode in[2];
    bool seen[2];
    for (int v = 0; v < 2; v++) {
        int rc = sfs_inode_get(d->st, d->txn, d->view[v], ino, &in[v]);
        if (rc && rc != -ENOENT)
            return rc;
        seen[v] = !rc;
    }
    const struct event *unl = e, *lnk;
    bool content = false, inode = false;
    for (; unl < e + n && unl->what < W_UNLINK; unl++)
        content |= unl->what == W_CONTENT, inode |= unl->what == W_INODE;
    for (lnk = unl; lnk < e + n && lnk->what == W_UNLINK; lnk++)
        ;
    const struct event *end = e + n, *unl_end = lnk;
    int rc = 0;
    if (!seen[0] || !seen[1]) {
        /* Created: its names in B; deleted: its names in A. */
        const struct event *from = seen[1] ? lnk : unl;
        const struct event *to = seen[1] ? end : unl_end;
        for (; !rc && from < to && seen[0] != seen[1]; from++)
            rc = name_change(d, seen[1] ? '+' : '-', seen[1], from);
        return rc;
    }
    char *first_new = NULL;
    for (; !rc && unl < unl_end && lnk < end; unl++, lnk++) {
        char *old, *new;
        rc = entry_path(d, 0, unl->dir, unl->name, &old);
        if (rc)
            break;
        rc = entry_path(d, 1, lnk->dir, lnk->name, &new);
        if (rc) {
            free(old);
            break;
        }
        first_new = first_new ? first_new : new;
        rc = add_change(d, 'R', ino, old, new);
    }
    for (; !rc && unl < unl_end; unl++)
        rc = name_change(d, '-', 0, unl);
    for (; !rc && lnk < end; lnk++)
        rc = name_change(d, '+', 1, lnk);
    if (rc || !(content || (inode && attrs_differ(&in[0], &in[1]))) ||
        !in[1].nlink)
        return rc;
    char *path = NULL;
    rc = first_new ? ((path = strdup(first_new)) ? 0 : -ENOMEM)
                   : inode_path(d, 1, ino, &in[1], &path);
    if (rc == -ENOENT)
        return 0; /* no name in B: an orphan */
    return rc ? rc : add_change(d, 'M', ino, path, NULL);
}

static int event_cmp(const void *pa, const void *pb)
{
    const struct event *a = pa, *b = pb;
    if (a->ino != b->ino)
        return a->ino < b->ino ? -1 : 1;
    if (a->what != b->what)
        return a->what < b->what ? -1 : 1;
    if (a->dir != b->dir)
        return a->dir < b->dir ? -1 : 1;
    return a->name && b->name ? strcmp(a->name, b->name) : 0;
}

/* By path; on one path what went comes before what came ("-" then "+"). */
static int change_cmp(const void *pa, const void *pb)
{
    static const char order[] = "-RM+";
    const struct change *a = pa, *b = pb;
    int c = strcmp(a->path, b->path);
    return c ? c : (int)(strchr(order, a->change) - strchr(order, b->change));
}

/* ---- the whole diff ---- */

static int run(struct diff *d)
{
    int rc = collect_index(d, d->st->db_born, 8, false);
    if (!rc)
        rc = collect_index(d, d->st->db_dead, 16, true);
    if (rc)
        return rc;
    keyset_sort_unique(&d->keys);
    for (size_t i = 0; !rc && i < d->keys.n; i++)
        rc = key_events(d, &d->keys.v[i]);
    if (rc)
        return rc;
    if (d->nev)
        qsort(d->ev, d->nev, sizeof(*d->ev), event_cmp);
    for (size_t i = 0, j; !rc && i < d->nev; i = j) {
        for (j = i + 1; j < d->nev && d->ev[j].ino == d->ev[i].ino; j++)
            ;
        rc = inode_changes(d, d->ev + i, j - i);
    }
    if (!rc && d->nch)
        qsort(d->ch, d->nch, sizeof(*d->ch), change_cmp);
    return rc;
}

static void diff_free(struct diff *d)
{
    keyset_free(&d->keys);
    for (size_t i = 0; i < d->nev; i++)
        free(d->ev[i].name);
    free(d->ev);
    for (size_t i = 0; i < d->nch; i++) {
        free(d->ch[i].path);
        free(d->ch[i].new_path);
    }
    free(d->ch);
    pathmap_free(&d->dirs[0]);
    pathmap_free(&d->dirs[1]);
}

int sfs_diff(struct sfs_store *st, MDB_txn *txn, uint64_t epoch_a,
             uint64_t view_b, sfs_diff_cb cb, void *arg,
             struct sfs_diff_stats *stats)
{
    uint64_t epoch_b = view_b == SFS_VIEW_LIVE ? st->state.cur_epoch : view_b;
    if (epoch_a >= epoch_b)
        return -EINVAL;
    struct diff d = { .st = st, .txn = txn, .view = { epoch_a, view_b },
                      .epoch_b = epoch_b };
    int rc = run(&d);
    for (size_t i = 0; !rc && i < d.nch; i++) {
        const struct change *c = &d.ch[i];
        rc = cb(arg, c->change, c->ino, c->path, c->new_path);
    }
    if (stats)
        *stats = d.stats;
    diff_free(&d);
    return rc > 0 ? 0 : rc;
}

/* ---- an incremental's size, before it is sent ---- */

int sfs_diff_blocks_born(struct sfs_store *st, MDB_txn *txn, uint64_t epoch_a,
                         uint64_t view_b, uint64_t *blocks)
{
    uint64_t epoch_b = view_b == SFS_VIEW_LIVE ? st->state.cur_epoch : view_b;
    *blocks = 0;
    if (epoch_a >= epoch_b)
        return -EINVAL;
    MDB_cursor *c;
    int rc = sfs_mdb_errno(mdb_cursor_open(txn, st->db_born, &c));
    if (rc)
        return rc;
    uint8_t start[8];
    sfs_put_be64(start, epoch_a + 1);
    MDB_val k = { 8, start }, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    for (; !mrc; mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const uint8_t *kb = k.mv_data;
        if (k.mv_size <= 8 || sfs_get_be64(kb) > epoch_b)
            break;
        if (kb[8] == SFS_K_EXTENT)
            (*blocks)++;
    }
    mdb_cursor_close(c);
    return mrc && mrc != MDB_NOTFOUND ? sfs_mdb_errno(mrc) : 0;
}

/* ---- the line format ---- */

void sfs_diff_escape(FILE *out, const char *path)
{
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (*p <= ' ' || *p >= 0x7f || *p == '\\')
            fprintf(out, "\\%03o", *p);
        else
            fputc(*p, out);
    }
}

void sfs_diff_line_format(FILE *out, char change, const char *path,
                          const char *new_path)
{
    fprintf(out, "%c\t", change);
    sfs_diff_escape(out, path);
    if (new_path) {
        fputs(" -> ", out);
        sfs_diff_escape(out, new_path);
    }
    fputc('\n', out);
}

static int line_cb(void *arg, char change, uint64_t ino, const char *path,
                   const char *new_path)
{
    (void)ino;
    sfs_diff_line_format(arg, change, path, new_path);
    return 0;
}

int sfs_diff_write(struct sfs_store *st, MDB_txn *txn, uint64_t epoch_a,
                   uint64_t view_b, FILE *out)
{
    struct sfs_diff_stats s;
    int rc = sfs_diff(st, txn, epoch_a, view_b, line_cb, out, &s);
    if (!rc)
        fprintf(out, "examined\t%llu\t%llu\t%llu\n",
                (unsigned long long)s.index_rows, (unsigned long long)s.keys,
                (unsigned long long)s.entries);
    return rc;
}

int sfs_diff_stats_parse(const char *line, struct sfs_diff_stats *s)
{
    unsigned long long rows, keys, entries;
    if (sscanf(line, "examined\t%llu\t%llu\t%llu", &rows, &keys, &entries) != 3)
        return -EPROTO;
    *s = (struct sfs_diff_stats){ rows, keys, entries };
    return 0;
}
