/*
 * restore.c - the restore engine: reads a dump (one or several parts) and
 * lists it, restores it whole (levels in order, with the deletions and
 * renames of each incremental), or extracts chosen paths, into a
 * destination directory, with POSIX calls relative to it.
 *
 * The dump is read once, in order.  Its directories come first: they are
 * collected into the name tree (in memory, with each directory's inode
 * and attributes).  At the first file the tree is complete; then, before
 * anything changes, the checks (level chain, volume, room) run; then the
 * destination is brought to the new tree's directories (restore_plan.c
 * says how for an incremental), and each file is written as it comes,
 * straight from the input (data is never held in memory beyond one
 * buffer), at all its links.  Directory attributes are applied last,
 * deepest first, so that writing inside a directory does not change its
 * times afterwards.
 *
 * Guarantees: nothing in the destination changes before the whole name
 * tree has been read and checked (a dump that is garbage, truncated in
 * its directories, of the wrong blocking factor, of a gap in the chain or
 * of another volume changes nothing).  A restore that stops names every
 * file it left incomplete (rst_error.incomplete).  A file cut at the end
 * of one part of a restarted dump is written again, whole, from the next
 * part, and no longer counts as incomplete.  Nothing is printed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "restore.h"

#define STAGE_INO 0xffffffffu
#define STAGE_DIR ".snapfs-restore-staging"
#define WBUF_BYTES (256u * DUMP_TP_BSIZE)
#define QTREE_XATTR "trusted.snapfs.qtree"
/* A part ended: the stream goes on in the next part, at a header. */
#define PART_SWITCHED 1
/* The listing is complete: stop reading. */
#define LIST_DONE 2

/* Data of an inode held in memory. */
struct collect {
    uint8_t *buf;
    size_t len;
};

/* What the dump says of a directory: its inode and attribute record. */
struct dirmeta {
    uint32_t ino;
    uint32_t seq;             /* arrival order: the last copy wins */
    struct dump_inode di;
    struct collect *xrecs;    /* its attribute records: Linux dump writes
                                 the in-inode one and the block one */
    size_t nx;
};

/* Where a directory (or a staged inode) is now, when not at its place in
 * the old tree. */
struct loc {
    uint32_t ino;
    uint32_t parent;
    char *name;
};

struct rst {
    const struct rst_options *o;
    struct rst_error *err;
    struct rst_stats *st;

    /* input */
    int part;
    struct dump_reader rd;
    struct dump_header h;     /* the current header */
    struct rst_volinfo vol;   /* the first part's TS_TAPE */
    int32_t cur_volume;       /* c_volume of the current part */
    uint8_t *used, *dumped;   /* TS_CLRI and TS_BITS maps */
    size_t mapbytes;

    /* the name trees */
    struct rst_tree dumpdirs; /* the directories on this dump */
    struct dirmeta *dm;
    size_t ndm, cap_dm;
    uint32_t seq;
    struct rst_state old;     /* what the destination held (incremental) */
    bool have_old;
    struct rst_tree tree;     /* the tree after this dump */
    struct rst_index ix, oldix;
    bool prepared;            /* the directories are in place */

    /* -x / -t selection: in a chosen subtree, or on the way to one */
    uint8_t *want, *lead;
    struct rst_link *named;
    size_t nnamed;
    uint32_t renamed_ino;     /* --rename-to: the one inode given a new name */

    /* where things are now */
    struct loc *locs;
    size_t nlocs, cap_locs;

    /* the file being written */
    uint8_t *wbuf;
    uint64_t next_progress;
    int full;                 /* the destination said ENOSPC or EDQUOT */
    struct rst_incomplete *inc;
    size_t ninc;
};

/* ---- errors ---- */

static int fail(struct rst *r, enum rst_err_kind kind, int rc)
{
    if (r->err->kind == RST_E_NONE) {
        r->err->kind = kind;
        r->err->err = rc < 0 ? -rc : 0;
        r->err->part = r->part;
        r->err->block = r->rd.block;
    }
    return rc < 0 ? rc : -EIO;
}

static int fail_dest(struct rst *r, const char *op, const char *path, int rc)
{
    if (r->err->kind == RST_E_NONE)
        snprintf(r->err->path, sizeof(r->err->path), "%s", path);
    r->err->op = op;
    return fail(r, RST_E_DEST, rc);
}

void rst_error_free(struct rst_error *e)
{
    for (size_t i = 0; i < e->nincomplete; i++)
        free(e->incomplete[i].path);
    free(e->incomplete);
    e->incomplete = NULL;
    e->nincomplete = 0;
}

/* ---- incomplete files ---- */

static void incomplete_drop(struct rst *r, const char *path)
{
    for (size_t i = 0; i < r->ninc; i++) {
        if (strcmp(r->inc[i].path, path))
            continue;
        free(r->inc[i].path);
        r->inc[i] = r->inc[--r->ninc];
        return;
    }
}

static int incomplete_add(struct rst *r, const char *path, uint64_t written,
                          uint64_t size)
{
    incomplete_drop(r, path);
    struct rst_incomplete *p = realloc(r->inc, (r->ninc + 1) * sizeof(*p));
    if (!p)
        return -ENOMEM;
    r->inc = p;
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    r->inc[r->ninc++] = (struct rst_incomplete){ copy, written, size };
    return 0;
}

/* ---- reading ---- */

static int check_blocking(struct rst *r, const struct dump_header *h)
{
    if (!r->o->blocking || h->ntrec == r->o->blocking)
        return 0;
    r->err->got = h->ntrec;
    r->err->want = r->o->blocking;
    return fail(r, RST_E_BLOCKING, -EINVAL);
}

/* The TS_TAPE of part K must continue the first part's dump. */
static int check_part(struct rst *r, const struct dump_header *h)
{
    struct dump_snapfs_ext x;
    bool has_ext = dump_ext_get(h, &x) == 0;
    bool ok = h->type == TS_TAPE && h->date == r->vol.tape.date &&
              h->volume == r->cur_volume + 1 && has_ext == r->vol.has_ext &&
              (!has_ext || (x.part >= 1 && x.context == r->vol.ext.context &&
                            !memcmp(x.uuid, r->vol.ext.uuid, 16)));
    if (ok)
        return check_blocking(r, h);
    r->err->date = h->date;
    r->err->level = h->level;
    r->err->got = h->volume;
    r->err->prev_date = r->vol.tape.date;
    r->err->prev_level = r->vol.tape.level;
    r->err->want = r->cur_volume + 1;
    return fail(r, RST_E_PART, -EINVAL);
}

/* Open the next part: its first block must be a matching TS_TAPE. */
static int next_part(struct rst *r)
{
    uint8_t blk[DUMP_TP_BSIZE];
    dump_reader_free(&r->rd);
    r->part++;
    int rc = dump_reader_init(&r->rd, r->o->fds[r->part], r->o->blocking);
    if (rc)
        return fail(r, RST_E_READ, rc);
    rc = dump_read_block(&r->rd, blk);
    if (rc == -ENODATA || rc == -EIO)
        return fail(r, RST_E_NOT_DUMP, -EBADMSG);
    if (rc)
        return fail(r, RST_E_READ, rc);
    struct dump_header h;
    if (dump_header_decode(blk, &h))
        return fail(r, RST_E_NOT_DUMP, -EBADMSG);
    rc = check_part(r, &h);
    if (rc)
        return rc;
    r->cur_volume = h.volume;
    return PART_SWITCHED;
}

/* The next block: 0, PART_SWITCHED (the stream broke off; the next part
 * is open after its TS_TAPE), or a negative errno with the error set. */
static int read_block(struct rst *r, uint8_t *blk)
{
    int rc = dump_read_block(&r->rd, blk);
    if (rc == 0)
        return 0;
    if (rc != -ENODATA && rc != -EIO)
        return fail(r, RST_E_READ, rc);
    if (r->part + 1 < r->o->nfds)
        return next_part(r);
    return fail(r, RST_E_TRUNCATED, -EIO);
}

/* Decode BLK, the block just read, as the current header. */
static int decode_header(struct rst *r, const uint8_t *blk)
{
    if (!dump_header_decode(blk, &r->h))
        return 0;
    r->rd.block--;  /* name the block that is bad */
    int rc = fail(r, RST_E_BAD_HEADER, -EBADMSG);
    r->rd.block++;
    return rc;
}

/* The stream broke off (a part ended): load the first header after the
 * next part's TS_TAPE, and say so (PART_SWITCHED). */
static int cut_off(struct rst *r)
{
    uint8_t blk[DUMP_TP_BSIZE];
    int rc = read_block(r, blk);
    if (rc)
        return rc < 0 ? rc : fail(r, RST_E_TRUNCATED, -EIO);
    rc = decode_header(r, blk);
    return rc ? rc : PART_SWITCHED;
}

/* The next header into r->h: 0, PART_SWITCHED (see cut_off), or an
 * error. */
static int read_header(struct rst *r)
{
    uint8_t blk[DUMP_TP_BSIZE];
    int rc = read_block(r, blk);
    if (rc < 0)
        return rc;
    return rc == PART_SWITCHED ? cut_off(r) : decode_header(r, blk);
}

/*
 * Walk the data of the current inode (TS_INODE, then its TS_ADDR
 * continuations): FN gets each data block with its offset; holes are
 * skipped.  Returns 0, PART_SWITCHED (the inode was cut off), or an error.
 * *DONE gets the bytes of the inode covered so far.
 */
typedef int (*block_fn)(struct rst *r, void *arg, const uint8_t *blk,
                        uint64_t off);
static int walk_data(struct rst *r, block_fn fn, void *arg, uint64_t *done)
{
    uint64_t size = r->h.di.size, off = 0;
    uint32_t ino = r->h.ino;
    *done = 0;
    for (;;) {
        int count = r->h.count;
        if (count < 0 || count > DUMP_TP_NINDIR)
            return fail(r, RST_E_BAD_HEADER, -EBADMSG);
        for (int i = 0; i < count; i++, off += DUMP_TP_BSIZE) {
            if (!r->h.addr[i])
                continue;
            uint8_t blk[DUMP_TP_BSIZE];
            int rc = read_block(r, blk);
            if (rc == PART_SWITCHED)
                return cut_off(r);
            if (rc)
                return rc;
            if (off < size && (rc = fn(r, arg, blk, off)))
                return rc;
        }
        *done = off < size ? off : size;
        if (off >= size)
            return 0;
        int rc = read_header(r);
        if (rc)
            return rc;  /* PART_SWITCHED: cut off, r->h is the next one */
        if (r->h.type != TS_ADDR || r->h.ino != ino) {
            r->err->ino = ino;
            return fail(r, RST_E_UNEXPECTED, -EBADMSG);
        }
    }
}

/* Collect the whole data of the current inode in memory (directories,
 * symlinks, attribute records): at most MAX bytes. */

static int collect_block(struct rst *r, void *arg, const uint8_t *blk,
                         uint64_t off)
{
    struct collect *c = arg;
    size_t n = DUMP_TP_BSIZE;
    if (off + n > c->len)
        n = (size_t)(c->len - off);
    memcpy(c->buf + off, blk, n);
    return 0;
}

static int collect_data(struct rst *r, size_t max, struct collect *c)
{
    if (r->h.di.size > max) {
        r->err->ino = r->h.ino;
        return fail(r, RST_E_BAD_HEADER, -E2BIG);
    }
    c->len = (size_t)r->h.di.size;
    c->buf = calloc(1, c->len + 1);
    if (!c->buf)
        return -ENOMEM;
    uint64_t done;
    int rc = walk_data(r, collect_block, c, &done);
    if (rc) {
        free(c->buf);
        c->buf = NULL;
    }
    return rc;
}

/* Skip the data of the current inode. */
static int skip_block(struct rst *r, void *arg, const uint8_t *blk,
                      uint64_t off)
{
    return 0;
}

static int skip_data(struct rst *r)
{
    uint64_t done;
    return walk_data(r, skip_block, NULL, &done);
}

/* The data blocks of one TS_ADDR met on its own: the rest of a file cut
 * at the end of the previous volume (its start is reported incomplete). */
static int skip_orphan_addr(struct rst *r)
{
    if (r->h.count < 0 || r->h.count > DUMP_TP_NINDIR)
        return fail(r, RST_E_BAD_HEADER, -EBADMSG);
    for (int i = 0; i < r->h.count; i++) {
        uint8_t blk[DUMP_TP_BSIZE];
        int rc = r->h.addr[i] ? read_block(r, blk) : 0;
        if (rc)
            return rc == PART_SWITCHED ? cut_off(r) : rc;
    }
    return 0;
}

/* A map (TS_CLRI or TS_BITS): count blocks. */
static int read_map(struct rst *r, uint8_t **map)
{
    size_t bytes = (size_t)r->h.count * DUMP_TP_BSIZE;
    if (r->h.count <= 0 || r->h.count > (1 << 20))
        return fail(r, RST_E_BAD_HEADER, -EBADMSG);
    uint8_t *m = calloc(1, bytes);
    if (!m)
        return -ENOMEM;
    for (int i = 0; i < r->h.count; i++) {
        int rc = read_block(r, m + (size_t)i * DUMP_TP_BSIZE);
        if (rc) {
            free(m);
            return rc < 0 ? rc : fail(r, RST_E_TRUNCATED, -EIO);
        }
    }
    free(*map);
    *map = m;
    if (!r->mapbytes || bytes < r->mapbytes)
        r->mapbytes = bytes;
    return 0;
}

/* ---- directories from the dump ---- */

static struct dirmeta *dirmeta_find(struct rst *r, uint32_t ino)
{
    size_t lo = 0, hi = r->ndm;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r->dm[mid].ino < ino)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < r->ndm && r->dm[lo].ino == ino ? &r->dm[lo] : NULL;
}

static int dirmeta_add(struct rst *r, const struct dump_header *h)
{
    if (rst_grow(&r->dm, r->ndm, &r->cap_dm, sizeof(*r->dm)))
        return -ENOMEM;
    r->dm[r->ndm++] = (struct dirmeta){ .ino = h->ino, .seq = r->seq++,
                                        .di = h->di };
    return 0;
}

static void dirmeta_free_xattrs(struct dirmeta *m)
{
    for (size_t i = 0; i < m->nx; i++)
        free(m->xrecs[i].buf);
    free(m->xrecs);
    m->xrecs = NULL;
    m->nx = 0;
}

static int dirmeta_add_xattrs(struct dirmeta *m, struct collect *c)
{
    struct collect *x = realloc(m->xrecs, (m->nx + 1) * sizeof(*x));
    if (!x) {
        free(c->buf);
        return -ENOMEM;
    }
    m->xrecs = x;
    m->xrecs[m->nx++] = *c;
    return 0;
}

static int dirmeta_cmp(const void *a, const void *b)
{
    const struct dirmeta *x = a, *y = b;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return x->seq < y->seq ? -1 : 1;
}

/* Sort by inode; of the copies a restarted dump repeated, keep the last. */
static void dirmeta_settle(struct rst *r)
{
    qsort(r->dm, r->ndm, sizeof(*r->dm), dirmeta_cmp);
    size_t o = 0;
    for (size_t i = 0; i < r->ndm; i++) {
        if (o && r->dm[o - 1].ino == r->dm[i].ino) {
            dirmeta_free_xattrs(&r->dm[o - 1]);
            r->dm[o - 1] = r->dm[i];
        } else {
            r->dm[o++] = r->dm[i];
        }
    }
    r->ndm = o;
}

static int read_directory(struct rst *r)
{
    struct dump_header h = r->h;
    struct collect c;
    int rc = collect_data(r, 1u << 30, &c);
    if (rc)
        return rc;
    struct rst_dir *d = rst_tree_put_dir(&r->dumpdirs, h.ino);
    size_t pos = 0;
    struct dump_dirent e;
    int more;
    while (d && (more = dump_dir_next(c.buf, c.len, &pos, &e)) == 1)
        if (rst_dir_add(d, e.ino, e.dtype, e.name))
            d = NULL;
    free(c.buf);
    if (!d)
        return -ENOMEM;
    if (more < 0) {
        r->err->ino = h.ino;
        r->err->got = (int64_t)pos;
        return fail(r, RST_E_BAD_DIR, -EBADMSG);
    }
    return dirmeta_add(r, &h);
}

/* The attribute record of the current (DR_EXTATTRIBUTES) header. */
static int read_xattr_record(struct rst *r, struct collect *c)
{
    return collect_data(r, 4 * DUMP_XATTR_MAX, c);
}

/* Is the current DR_EXTATTRIBUTES header an attribute record?  Other
 * extensions (Mac OS Finder data, resource forks) are skipped, as Linux
 * restore does. */
static bool is_xattr_record(const struct rst *r)
{
    return r->h.extattributes == EXT_XATTR ||
           r->h.extattributes == EXT_SNAPFS_XATTR;
}

/* ---- paths in the destination ---- */

static struct loc *loc_find(struct rst *r, uint32_t ino)
{
    for (size_t i = r->nlocs; i-- > 0;)
        if (r->locs[i].ino == ino)
            return &r->locs[i];
    return NULL;
}

static int loc_set(struct rst *r, uint32_t ino, uint32_t parent,
                   const char *name)
{
    struct loc *l = loc_find(r, ino);
    if (!l) {
        if (rst_grow(&r->locs, r->nlocs, &r->cap_locs, sizeof(*r->locs)))
            return -ENOMEM;
        l = &r->locs[r->nlocs++];
        *l = (struct loc){ .ino = ino };
    }
    char *copy = strdup(name);
    if (!copy)
        return -ENOMEM;
    free(l->name);
    l->name = copy;
    l->parent = parent;
    return 0;
}

/* Where directory INO is now: its recorded location, or its place in the
 * old tree (incremental) or in the new one. */
static int where(struct rst *r, uint32_t ino, uint32_t *parent,
                 const char **name)
{
    const struct loc *l = loc_find(r, ino);
    const struct rst_node *n;
    if (l) {
        *parent = l->parent;
        *name = l->name;
    } else if ((n = rst_index_get(r->have_old ? &r->oldix : &r->ix, ino)) &&
               n->nlinks) {
        *parent = n->links[0].parent;
        *name = n->links[0].name;
    } else {
        return -ENOENT;
    }
    return 0;
}

static int dir_path(struct rst *r, uint32_t ino, char *out, size_t cap)
{
    const char *names[512];
    size_t depth = 0;
    while (ino != RST_ROOT_INO && ino != STAGE_INO) {
        uint32_t parent;
        if (depth == 512 || where(r, ino, &parent, &names[depth]))
            return -ENAMETOOLONG;
        depth++;
        ino = parent;
    }
    size_t len = (size_t)snprintf(out, cap, "%s",
                                  ino == STAGE_INO ? STAGE_DIR : ".");
    while (depth--) {
        int n = snprintf(out + len, cap - len, "/%s", names[depth]);
        if (n < 0 || (size_t)n >= cap - len)
            return -ENAMETOOLONG;
        len += (size_t)n;
    }
    return 0;
}

/* PARENT/NAME as a path relative to the destination. */
static int link_path(struct rst *r, uint32_t parent, const char *name,
                     char *out, size_t cap)
{
    int rc = dir_path(r, parent, out, cap);
    size_t len = strlen(out);
    if (!rc && (size_t)snprintf(out + len, cap - len, "/%s", name) >=
                   cap - len)
        rc = -ENAMETOOLONG;
    return rc;
}

/* The destination path as the user sees it: "a/b" rather than "./a/b". */
static const char *shown(const char *path)
{
    return path[0] == '.' && path[1] == '/' ? path + 2 : path;
}

/* ---- the selection (-x, -t PATH) ---- */

static bool wanted(const struct rst *r, uint32_t ino)
{
    return !r->want || dump_map_isset(r->want, r->mapbytes, ino);
}

/* Is the link PARENT/NAME of INO to be restored? */
static bool link_wanted(const struct rst *r, uint32_t ino,
                        const struct rst_link *l)
{
    if (!r->want)
        return true;
    if (!wanted(r, ino))
        return false;
    if (dump_map_isset(r->want, r->mapbytes, l->parent))
        return true;
    for (size_t i = 0; i < r->nnamed; i++)
        if (r->named[i].parent == l->parent &&
            !strcmp(r->named[i].name, l->name))
            return true;
    return false;
}

/* Mark INO and everything under it. */
static void want_subtree(struct rst *r, uint32_t ino)
{
    if (!ino || (ino - 1) / 8 >= r->mapbytes ||
        dump_map_isset(r->want, r->mapbytes, ino))
        return;
    dump_map_set(r->want, ino);
    const struct rst_dir *d = rst_tree_dir(&r->tree, ino);
    for (size_t i = 0; d && i < d->n; i++)
        if (strcmp(d->ents[i].name, ".") && strcmp(d->ents[i].name, ".."))
            want_subtree(r, d->ents[i].ino);
}

/* Find PATH ("a/b/c", "./a/b") in the tree: its last link. */
static int lookup(struct rst *r, const char *path, struct rst_link *out,
                  uint32_t *ino)
{
    char *copy = strdup(path), *save = NULL;
    if (!copy)
        return -ENOMEM;
    uint32_t cur = RST_ROOT_INO;
    *out = (struct rst_link){ 0, NULL };
    for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/",
                                                                &save)) {
        if (!strcmp(t, "."))
            continue;
        const struct rst_dir *d = rst_tree_dir(&r->tree, cur);
        size_t i = 0;
        while (d && i < d->n && strcmp(d->ents[i].name, t))
            i++;
        if (!d || i == d->n || !strcmp(t, "..")) {
            free(copy);
            return -ENOENT;
        }
        *out = (struct rst_link){ cur, d->ents[i].name };
        cur = d->ents[i].ino;
    }
    free(copy);
    *ino = cur;
    return 0;
}

static int select_paths(struct rst *r)
{
    if (!r->o->npaths)
        return 0;
    r->want = calloc(1, r->mapbytes);
    r->lead = calloc(1, r->mapbytes);
    r->named = calloc((size_t)r->o->npaths, sizeof(*r->named));
    if (!r->want || !r->lead || !r->named)
        return -ENOMEM;
    for (int i = 0; i < r->o->npaths; i++) {
        uint32_t ino;
        if (lookup(r, r->o->paths[i], &r->named[i], &ino)) {
            snprintf(r->err->path, sizeof(r->err->path), "%s",
                     r->o->paths[i]);
            return fail(r, RST_E_NOT_FOUND, -ENOENT);
        }
        r->nnamed++;
        want_subtree(r, ino);
        /* the directories on the way (none when renamed) */
        const struct rst_node *n = rst_index_get(&r->ix, ino);
        uint32_t up = n && n->nlinks && !r->o->rename_to ? r->named[i].parent
                                                          : 0;
        while (up && up != RST_ROOT_INO) {
            dump_map_set(r->lead, up);
            const struct rst_node *p = rst_index_get(&r->ix, up);
            up = p && p->nlinks ? p->links[0].parent : 0;
        }
    }
    if (r->o->rename_to && r->named[0].name) {
        uint32_t ino;
        lookup(r, r->o->paths[0], &r->named[0], &ino);
        r->renamed_ino = ino;
        return loc_set(r, ino, RST_ROOT_INO, r->o->rename_to);
    }
    return 0;
}

/* ---- listing (-t) ---- */

static int list_dir(struct rst *r, uint32_t ino, char *path, size_t len,
                    int depth)
{
    const struct rst_dir *d = rst_tree_dir(&r->tree, ino);
    for (size_t i = 0; d && i < d->n; i++) {
        const struct rst_entry *e = &d->ents[i];
        if (!strcmp(e->name, ".") || !strcmp(e->name, ".."))
            continue;
        size_t nl = strlen(e->name);
        if (len + nl + 2 > PATH_MAX || depth > 1000)
            continue;
        path[len] = '/';
        memcpy(path + len + 1, e->name, nl + 1);
        bool isdir = rst_tree_dir(&r->tree, e->ino) != NULL;
        /* as Linux restore does: the inodes on this dump */
        bool chosen = wanted(r, e->ino) &&
                      (!r->dumped || dump_map_isset(r->dumped, r->mapbytes,
                                                    e->ino));
        int rc = chosen ? r->o->on_list(r->o->arg, e->ino, path, isdir) : 0;
        if (!rc && isdir && (chosen || (r->lead &&
                             dump_map_isset(r->lead, r->mapbytes, e->ino))))
            rc = list_dir(r, e->ino, path, len + 1 + nl, depth + 1);
        path[len] = 0;
        if (rc)
            return rc;
    }
    return 0;
}

static int list_tree(struct rst *r)
{
    char *path = malloc(PATH_MAX + 1);
    if (!path)
        return -ENOMEM;
    strcpy(path, ".");
    int rc = !r->want ? r->o->on_list(r->o->arg, RST_ROOT_INO, path, true)
                      : 0;
    if (!rc)
        rc = list_dir(r, RST_ROOT_INO, path, 1, 0);
    free(path);
    return rc;
}

/* ---- attributes ---- */

static struct timespec ts_of(uint32_t sec, uint32_t usec)
{
    return (struct timespec){ (time_t)sec, (long)(usec % 1000000) * 1000 };
}

/*
 * The extended attributes of one restored inode: set those of its
 * records, then remove any other (an ACL inherited from a default ACL of
 * the directory it was created in, or an attribute an incremental no
 * longer has), so that it ends with exactly the dump's.
 */
struct xattr_set {
    struct rst *r;
    char abspath[PATH_MAX + 64]; /* for the l*xattr calls */
    const char *relpath;      /* for messages and the qtree hook */
    bool isdir, at_top;
    uint32_t ino;
    char **names;             /* the names set */
    size_t n;
};

static int xattrs_begin(struct rst *r, struct xattr_set *x, const char *rel,
                        bool isdir, bool at_top, uint32_t ino)
{
    *x = (struct xattr_set){ .r = r, .relpath = rel, .isdir = isdir,
                             .at_top = at_top, .ino = ino };
    if ((size_t)snprintf(x->abspath, sizeof(x->abspath), "%s/%s",
                         r->o->destpath, rel) >= sizeof(x->abspath))
        return fail_dest(r, "lsetxattr", shown(rel), -ENAMETOOLONG);
    return 0;
}

static int note_name(struct xattr_set *x, const char *name)
{
    char **n = realloc(x->names, (x->n + 1) * sizeof(*n));
    if (!n)
        return -ENOMEM;
    x->names = n;
    return (x->names[x->n++] = strdup(name)) ? 0 : -ENOMEM;
}

static int set_one_xattr(void *arg, const char *name, const void *value,
                         size_t size)
{
    struct xattr_set *x = arg;
    /* A qtree's description is the qtree commands' business: the hook
     * had its say when the directory was placed (place_dir). */
    if (!strcmp(name, QTREE_XATTR))
        return note_name(x, name);
    if (lsetxattr(x->abspath, name, value, size, 0))
        return fail_dest(x->r, "lsetxattr", shown(x->relpath), -errno);
    return note_name(x, name);
}

static int xattrs_apply(struct xattr_set *x, const uint8_t *rec, size_t len)
{
    struct rst *r = x->r;
    size_t badoff = 0;
    int rc = dump_xattr_decode(rec, len, set_one_xattr, x, &badoff);
    if (rc == -EBADMSG && r->err->kind == RST_E_NONE) {
        r->err->ino = x->ino;
        r->err->got = (int64_t)badoff;
        snprintf(r->err->path, sizeof(r->err->path), "%s",
                 shown(x->relpath));
        return fail(r, RST_E_BAD_XATTR, rc);
    }
    return rc;
}

static bool was_set(const struct xattr_set *x, const char *name)
{
    for (size_t i = 0; i < x->n; i++)
        if (!strcmp(x->names[i], name))
            return true;
    return false;
}

/* Remove the attributes the dump did not give; free the names. */
static int xattrs_end(struct xattr_set *x)
{
    char list[65536];
    ssize_t len = llistxattr(x->abspath, list, sizeof(list));
    int rc = 0;
    for (ssize_t i = 0; len > 0 && i < len && !rc;
         i += (ssize_t)strlen(list + i) + 1) {
        const char *name = list + i;
        bool ours = (!strncmp(name, "user.", 5) ||
                     !strncmp(name, "trusted.", 8) ||
                     !strncmp(name, "system.posix_acl_", 17)) &&
                    strcmp(name, QTREE_XATTR);
        if (ours && !was_set(x, name) && lremovexattr(x->abspath, name) &&
            errno != ENODATA)
            rc = fail_dest(x->r, "lremovexattr", shown(x->relpath), -errno);
    }
    for (size_t i = 0; i < x->n; i++)
        free(x->names[i]);
    free(x->names);
    return rc;
}

/* Owner, mode and times of REL (after its contents and attributes). */
static int apply_inode(struct rst *r, const char *rel,
                       const struct dump_inode *di)
{
    int d = r->o->destfd;
    if (fchownat(d, rel, di->uid, di->gid, AT_SYMLINK_NOFOLLOW))
        return fail_dest(r, "lchown", shown(rel), -errno);
    if (!S_ISLNK(di->mode) && fchmodat(d, rel, di->mode & 07777, 0))
        return fail_dest(r, "chmod", shown(rel), -errno);
    struct timespec t[2] = { ts_of(di->atime_sec, di->atime_usec),
                             ts_of(di->mtime_sec, di->mtime_usec) };
    if (utimensat(d, rel, t, AT_SYMLINK_NOFOLLOW))
        return fail_dest(r, "utimensat", shown(rel), -errno);
    return 0;
}

/* ---- the destination's directories ---- */

static int take_away(struct rst *r, const struct rst_op *op)
{
    char path[PATH_MAX];
    int rc = link_path(r, op->parent, op->name, path, sizeof(path));
    if (rc)
        return fail_dest(r, "rename", op->name, rc);
    if (op->kind == RST_OP_UNLINK) {
        if (unlinkat(r->o->destfd, path, 0) && errno != ENOENT)
            return fail_dest(r, "unlink", shown(path), -errno);
        r->st->removed++;
        return 0;
    }
    char staged[32];
    snprintf(staged, sizeof(staged), "%u", op->ino);
    char to[64];
    snprintf(to, sizeof(to), STAGE_DIR "/%s", staged);
    if (renameat(r->o->destfd, path, r->o->destfd, to))
        return errno == ENOENT ? 0 : fail_dest(r, "rename", shown(path),
                                               -errno);
    if (op->kind == RST_OP_DOOM)
        r->st->removed++;
    return loc_set(r, op->ino, STAGE_INO, staged);
}

/* Remove DIRFD/NAME and everything under it. */
static int remove_tree(int dirfd, const char *name)
{
    if (!unlinkat(dirfd, name, 0) || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                 O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -ENOMEM;
    }
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            rc = remove_tree(fd, e->d_name);
    closedir(d);
    if (!rc && unlinkat(dirfd, name, AT_REMOVEDIR))
        rc = -errno;
    return rc;
}

static int run_takeaway(struct rst *r)
{
    struct rst_plan plan;
    int rc = rst_plan_takeaway(&r->oldix, &r->ix, r->dumped, r->mapbytes,
                               &plan);
    if (rc)
        return rc;
    if (plan.n && mkdirat(r->o->destfd, STAGE_DIR, 0700) && errno != EEXIST)
        rc = fail_dest(r, "mkdir", STAGE_DIR, -errno);
    for (size_t i = 0; !rc && i < plan.n; i++)
        rc = take_away(r, &plan.ops[i]);
    for (size_t i = 0; !rc && i < plan.n; i++) {
        char name[32];
        if (plan.ops[i].kind != RST_OP_DOOM)
            continue;
        snprintf(name, sizeof(name), STAGE_DIR "/%u", plan.ops[i].ino);
        if ((rc = remove_tree(r->o->destfd, name)))
            rc = fail_dest(r, "remove", name, rc);
    }
    rst_plan_free(&plan);
    return rc;
}

/* Make directory PATH (an existing directory is kept, anything else in
 * its place is replaced). */
static int make_dir(struct rst *r, const char *path)
{
    struct stat sb;
    if (!mkdirat(r->o->destfd, path, 0700))
        return 0;
    if (errno != EEXIST)
        return fail_dest(r, "mkdir", shown(path), -errno);
    if (!fstatat(r->o->destfd, path, &sb, AT_SYMLINK_NOFOLLOW) &&
        S_ISDIR(sb.st_mode))
        return 0;
    if (unlinkat(r->o->destfd, path, 0) || mkdirat(r->o->destfd, path, 0700))
        return fail_dest(r, "mkdir", shown(path), -errno);
    return 0;
}

/* Is the directory INO's current place PARENT/NAME? */
static bool dir_is_at(struct rst *r, uint32_t ino, const struct rst_link *l)
{
    uint32_t parent;
    const char *name;
    if (!r->have_old && !loc_find(r, ino))
        return false;
    return !where(r, ino, &parent, &name) && parent == l->parent &&
           !strcmp(name, l->name);
}

/* The qtree description among a directory's attribute records, if any,
 * into DESC (256 bytes). */
struct qtree_find {
    char *desc;
    bool found;
};

static int qtree_find_one(void *arg, const char *name, const void *value,
                          size_t size)
{
    struct qtree_find *q = arg;
    if (strcmp(name, QTREE_XATTR))
        return 0;
    size_t n = size < 255 ? size : 255;
    memcpy(q->desc, value, n);
    q->desc[n] = 0;
    q->found = true;
    return 0;
}

static bool qtree_desc(struct rst *r, uint32_t ino, char *desc)
{
    struct dirmeta *m = dirmeta_find(r, ino);
    struct qtree_find q = { desc, false };
    for (size_t i = 0; m && i < m->nx; i++)
        dump_xattr_decode(m->xrecs[i].buf, m->xrecs[i].len, qtree_find_one,
                          &q, NULL);
    return q.found;
}

/* A directory with a qtree description placed directly in the
 * destination: the hook may make it (empty, before anything goes in, so
 * that its files are the qtree's) a qtree. */
static int qtree_hook(struct rst *r, uint32_t ino, uint32_t parent,
                      const char *name)
{
    char desc[256];
    if (parent != RST_ROOT_INO || !r->o->on_qtree || !qtree_desc(r, ino, desc))
        return 0;
    return r->o->on_qtree(r->o->arg, name, desc, true);
}

static int place_dir(struct rst *r, const struct rst_node *n)
{
    const struct rst_link *l = &n->links[0];
    if (!link_wanted(r, n->ino, l) && !(r->lead && dump_map_isset(
                                            r->lead, r->mapbytes, n->ino)))
        return 0;
    const struct loc *renamed = r->o->rename_to ? loc_find(r, n->ino) : NULL;
    uint32_t parent = renamed ? renamed->parent : l->parent;
    const char *name = renamed ? renamed->name : l->name;
    struct rst_link at = { parent, name };
    char path[PATH_MAX], from[PATH_MAX];
    int rc = link_path(r, parent, name, path, sizeof(path));
    if (rc)
        return fail_dest(r, "mkdir", name, rc);
    if (r->have_old && dir_is_at(r, n->ino, &at))
        return 0;
    const struct loc *cur = loc_find(r, n->ino);
    if (cur && cur->parent == STAGE_INO) {
        link_path(r, STAGE_INO, cur->name, from, sizeof(from));
        if (renameat(r->o->destfd, from, r->o->destfd, path))
            return fail_dest(r, "rename", shown(path), -errno);
        r->st->moved++;
    } else if ((rc = qtree_hook(r, n->ino, parent, name)) ||
               (rc = make_dir(r, path))) {
        return rc;
    }
    return loc_set(r, n->ino, parent, name);
}

/* Put a surviving non-directory at its new links. */
static int place_file(struct rst *r, const struct rst_node *n)
{
    const struct rst_node *on = rst_index_get(&r->oldix, n->ino);
    const struct loc *cur = loc_find(r, n->ino);
    char have[PATH_MAX] = "", path[PATH_MAX];
    /* a link already in place, to link the others from */
    for (size_t i = 0; !have[0] && on && i < on->nlinks; i++)
        if (rst_index_has_link(n, on->links[i].parent, on->links[i].name))
            link_path(r, on->links[i].parent, on->links[i].name, have,
                      sizeof(have));
    for (size_t i = 0; i < n->nlinks; i++) {
        const struct rst_link *l = &n->links[i];
        if (rst_index_has_link(on, l->parent, l->name))
            continue;
        int rc = link_path(r, l->parent, l->name, path, sizeof(path));
        if (rc)
            return fail_dest(r, "rename", l->name, rc);
        unlinkat(r->o->destfd, path, 0);
        if (!have[0] && cur && cur->parent == STAGE_INO) {
            char from[PATH_MAX];
            link_path(r, STAGE_INO, cur->name, from, sizeof(from));
            if (renameat(r->o->destfd, from, r->o->destfd, path))
                return fail_dest(r, "rename", shown(path), -errno);
            r->st->moved++;
        } else if (!have[0] || linkat(r->o->destfd, have, r->o->destfd,
                                      path, 0)) {
            return fail_dest(r, "link", shown(path), have[0] ? -errno
                                                             : -ENOENT);
        }
        strcpy(have, path);
    }
    return 0;
}

static bool dumped(const struct rst *r, uint32_t ino)
{
    return dump_map_isset(r->dumped, r->mapbytes, ino);
}

/* The directories top-down, then the files that stay (incremental). */
static int place_tree(struct rst *r)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < r->ix.norder; k++) {
            const struct rst_node *n = rst_index_get(&r->ix, r->ix.order[k]);
            int rc = 0;
            if (n->ino == RST_ROOT_INO)
                continue;
            if (pass == 0 && n->dtype == DT_DIR)
                rc = place_dir(r, n);
            else if (pass == 1 && n->dtype != DT_DIR && r->have_old &&
                     !dumped(r, n->ino) && rst_index_get(&r->oldix, n->ino))
                rc = place_file(r, n);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ---- checks before the first change ---- */

static int check_chain(struct rst *r)
{
    const struct dump_header *t = &r->vol.tape;
    int rc = rst_state_load(r->o->destfd, &r->old);
    if (t->ddate == 0 || t->level == 0) {
        if (!rc)
            rst_state_free(&r->old);
        return 0;  /* a full dump starts a new chain */
    }
    r->err->date = t->date;
    r->err->ddate = t->ddate;
    r->err->level = t->level;
    if (rc == -ENOENT)
        return fail(r, RST_E_NO_STATE, rc);
    if (rc)
        return fail(r, RST_E_STATE, rc);
    r->have_old = true;
    r->err->prev_date = r->old.date;
    r->err->prev_level = r->old.level;
    bool same_volume = r->old.has_uuid == r->vol.has_ext &&
                       (!r->vol.has_ext ||
                        !memcmp(r->old.uuid, r->vol.ext.uuid, 16));
    if (!same_volume)
        return fail(r, RST_E_OTHER_VOLUME, -EXDEV);
    if (t->ddate != r->old.date)
        return fail(r, RST_E_GAP, -ESTALE);
    return 0;
}

static int check_space(struct rst *r)
{
    uint64_t need = r->vol.has_ext ? r->vol.ext.est_bytes
                                   : r->o->input_bytes;
    struct statvfs sv;
    if (r->o->force || !need || fstatvfs(r->o->destfd, &sv))
        return 0;
    uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    if (avail >= need)
        return 0;
    r->err->want = (int64_t)need;
    r->err->got = (int64_t)avail;
    return fail(r, RST_E_NOSPACE, -ENOSPC);
}

/* The directories are all read: build the tree, check, and make the
 * destination's directories. */
static int prepare(struct rst *r)
{
    dirmeta_settle(r);
    r->prepared = true;
    int rc = 0;
    if (r->o->mode == RST_RESTORE)
        rc = check_chain(r);
    if (!rc && r->have_old)
        rc = rst_merge(&r->old.tree, &r->dumpdirs, r->used, r->dumped,
                       r->mapbytes, &r->tree);
    else if (!rc)
        rc = rst_merge(&r->dumpdirs, &(struct rst_tree){ 0 }, NULL, NULL, 0,
                       &r->tree);
    if (!rc)
        rc = rst_index_build(&r->tree, &r->ix);
    if (!rc && r->have_old)
        rc = rst_index_build(&r->old.tree, &r->oldix);
    if (!rc)
        rc = select_paths(r);
    if (rc || r->o->mode == RST_LIST)
        return rc ? rc : list_tree(r);
    if ((rc = check_space(r)))
        return rc;
    if (r->have_old && (rc = run_takeaway(r)))
        return rc;
    return place_tree(r);
}

/* ---- files ---- */

struct filew {
    int fd;
    uint64_t buf_off;
    size_t buf_len;
    uint64_t written;
    int full;                 /* ENOSPC or EDQUOT: the rest is skipped */
};

static int flush_buf(struct rst *r, struct filew *w, const char *path)
{
    size_t done = 0;
    while (done < w->buf_len) {
        ssize_t n = pwrite(w->fd, r->wbuf + done, w->buf_len - done,
                           (off_t)(w->buf_off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (n < 0 && (errno == ENOSPC || errno == EDQUOT))) {
            w->full = n ? errno : ENOSPC;
            w->written = w->buf_off + done;
            w->buf_len = 0;
            return 0;
        }
        if (n < 0)
            return fail_dest(r, "write", shown(path), -errno);
        done += (size_t)n;
    }
    w->written = w->buf_off + w->buf_len;
    w->buf_len = 0;
    return 0;
}

struct write_ctx {
    struct filew *w;
    const char *path;
    uint64_t size;
};

static int write_block(struct rst *r, void *arg, const uint8_t *blk,
                       uint64_t off)
{
    struct write_ctx *c = arg;
    struct filew *w = c->w;
    if (w->full)
        return 0;
    size_t n = off + DUMP_TP_BSIZE > c->size ? (size_t)(c->size - off)
                                             : DUMP_TP_BSIZE;
    if (w->buf_len && (w->buf_off + w->buf_len != off ||
                       w->buf_len + n > WBUF_BYTES)) {
        int rc = flush_buf(r, w, c->path);
        if (rc)
            return rc;
    }
    if (!w->buf_len)
        w->buf_off = off;
    memcpy(r->wbuf + w->buf_len, blk, n);
    w->buf_len += n;
    r->st->bytes += n;
    if (r->o->on_progress && r->st->bytes >= r->next_progress) {
        r->o->on_progress(r->o->arg, r->st->bytes, r->st->files);
        r->next_progress = r->st->bytes + (1u << 20);
    }
    return 0;
}

/* ENOSPC or EDQUOT: the destination has no room (not a failure of the
 * restore: what fits is restored, what does not is named incomplete). */
static bool dest_full(int err)
{
    return err == ENOSPC || err == EDQUOT;
}

/* No room even to create the file: its data is skipped in the dump, and
 * the caller names it incomplete with nothing written.  RC, or the error
 * of reading on. */
static int skip_for_room(struct rst *r, uint64_t *written, int rc)
{
    *written = 0;
    int src = skip_data(r);
    return src ? src : rc;
}

/* A new regular file at PATH, its data from the dump; holes stay holes. */
static int write_regular(struct rst *r, const char *path, uint64_t *written)
{
    int fd = openat(r->o->destfd, path, O_WRONLY | O_CREAT | O_EXCL |
                                        O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return dest_full(errno) ? skip_for_room(r, written, -errno)
                                : fail_dest(r, "open", shown(path), -errno);
    struct filew w = { .fd = fd };
    struct write_ctx c = { &w, path, r->h.di.size };
    uint64_t size = r->h.di.size, done;
    int rc = walk_data(r, write_block, &c, &done);
    int frc = rc < 0 && r->err->kind == RST_E_DEST ? 0 : flush_buf(r, &w,
                                                                   path);
    if (!rc && !frc && !w.full && ftruncate(fd, (off_t)size))
        frc = fail_dest(r, "ftruncate", shown(path), -errno);
    if (!rc && !frc && w.full)
        frc = -w.full;  /* the destination is full: restore what fits */
    *written = w.written;
    if (close(fd) && !rc && !frc) {
        if (errno != ENOSPC && errno != EDQUOT)
            return fail_dest(r, "close", shown(path), -errno);
        /* the destination filled up while writing back: what it kept */
        frc = -errno;
        struct stat sb;
        if (!fstatat(r->o->destfd, path, &sb, AT_SYMLINK_NOFOLLOW) &&
            (uint64_t)sb.st_blocks * 512 < *written)
            *written = (uint64_t)sb.st_blocks * 512;
    }
    return rc ? rc : frc;
}

static int write_symlink(struct rst *r, const char *path)
{
    struct collect c;
    int rc = collect_data(r, PATH_MAX, &c);
    if (rc)
        return rc;
    if (symlinkat((char *)c.buf, r->o->destfd, path))
        rc = dest_full(errno) ? -errno
                              : fail_dest(r, "symlink", shown(path), -errno);
    free(c.buf);
    return rc;
}

static dev_t device_of(const struct dump_inode *di)
{
    uint32_t d = di->db[0] ? di->db[0] : di->db[1];
    return makedev((d & 0xfff00) >> 8, (d & 0xff) | ((d >> 12) & 0xfff00));
}

static int write_special(struct rst *r, const char *path)
{
    const struct dump_inode *di = &r->h.di;
    if (mknodat(r->o->destfd, path, di->mode & (S_IFMT | 0700),
                device_of(di))) {
        uint64_t none;
        return dest_full(errno) ? skip_for_room(r, &none, -errno)
                                : fail_dest(r, "mknod", shown(path), -errno);
    }
    return skip_data(r);
}

/* The attribute records that may follow the file just written; on
 * return r->h holds the next header. */
static int file_xattr_records(struct rst *r, struct xattr_set *x,
                              bool *have_next)
{
    for (;;) {
        int rc = read_header(r);
        *have_next = rc == 0 || rc == PART_SWITCHED;
        if (rc || r->h.type != TS_INODE || r->h.ino != x->ino ||
            !(r->h.flags & DR_EXTATTRIBUTES))
            return rc == PART_SWITCHED ? 0 : rc;
        struct collect c;
        *have_next = false;
        if (!is_xattr_record(r)) {
            if ((rc = skip_data(r)))
                return rc;
            continue;
        }
        if ((rc = read_xattr_record(r, &c)))
            return rc;
        rc = xattrs_apply(x, c.buf, c.len);
        free(c.buf);
        if (rc)
            return rc;
    }
}

static int file_attributes(struct rst *r, const char *path, uint32_t ino,
                           bool *have_next)
{
    struct xattr_set x;
    int rc = xattrs_begin(r, &x, path, false, false, ino);
    if (rc)
        return rc;
    rc = file_xattr_records(r, &x, have_next);
    int erc = xattrs_end(&x);
    return rc ? rc : erc;
}

static int add_links(struct rst *r, const struct rst_node *n,
                     const char *first)
{
    char path[PATH_MAX];
    /* a file extracted under a new name has that name only: its other
     * links are in directories that were not extracted */
    if (r->o->rename_to && n->ino == r->renamed_ino)
        return 0;
    for (size_t i = 1; i < n->nlinks; i++) {
        if (!link_wanted(r, n->ino, &n->links[i]))
            continue;
        int rc = link_path(r, n->links[i].parent, n->links[i].name, path,
                           sizeof(path));
        if (rc)
            return fail_dest(r, "link", n->links[i].name, rc);
        if (!strcmp(path, first))
            continue;
        unlinkat(r->o->destfd, path, 0);
        if (linkat(r->o->destfd, first, r->o->destfd, path, 0))
            return fail_dest(r, "link", shown(path), -errno);
    }
    return 0;
}

/* The first wanted link of N as a path. */
static int first_path(struct rst *r, const struct rst_node *n, char *path,
                      size_t cap)
{
    for (size_t i = 0; i < n->nlinks; i++) {
        if (!link_wanted(r, n->ino, &n->links[i]))
            continue;
        const struct loc *renamed = r->o->rename_to ? loc_find(r, n->ino)
                                                    : NULL;
        return renamed ? link_path(r, renamed->parent, renamed->name, path,
                                   cap)
                       : link_path(r, n->links[i].parent, n->links[i].name,
                                   path, cap);
    }
    return -ENOENT;
}

/*
 * Restore the file of the current TS_INODE.  *HAVE_NEXT: r->h already
 * holds the next header (read while looking for an attribute record).
 */
static int restore_file(struct rst *r, bool *have_next)
{
    struct dump_inode di = r->h.di;
    uint32_t ino = r->h.ino;
    const struct rst_node *n = rst_index_get(&r->ix, ino);
    char path[PATH_MAX];
    *have_next = false;
    if (!n || first_path(r, n, path, sizeof(path)))
        return skip_data(r);
    if (unlinkat(r->o->destfd, path, 0) && errno != ENOENT)
        return fail_dest(r, "unlink", shown(path), -errno);
    uint64_t written = 0;
    int rc;
    if (S_ISREG(di.mode))
        rc = write_regular(r, path, &written);
    else if (S_ISLNK(di.mode))
        rc = write_symlink(r, path);
    else
        rc = write_special(r, path);
    if (rc == -ENOSPC || rc == -EDQUOT) {
        r->full = -rc;  /* go on with the files that may still fit */
        return incomplete_add(r, shown(path), written, di.size);
    }
    if (rc == PART_SWITCHED || (rc && r->err->kind != RST_E_DEST)) {
        int irc = incomplete_add(r, shown(path), written, di.size);
        return irc ? irc : rc;
    }
    if (rc)
        return rc;
    incomplete_drop(r, shown(path));
    if ((rc = file_attributes(r, path, ino, have_next)) ||
        (rc = apply_inode(r, path, &di)) || (rc = add_links(r, n, path)))
        return rc;
    r->st->files++;
    return 0;
}

/* ---- directory attributes, last ---- */

static int finish_dirs(struct rst *r)
{
    char path[PATH_MAX];
    for (size_t k = r->ix.norder; k-- > 0;) {
        uint32_t ino = r->ix.order[k];
        struct dirmeta *m = dirmeta_find(r, ino);
        const struct rst_node *n = rst_index_get(&r->ix, ino);
        if (!m || n->dtype != DT_DIR)
            continue;
        bool root = ino == RST_ROOT_INO;
        if (root && r->o->mode != RST_RESTORE)
            continue;
        bool chosen = root || link_wanted(r, ino, &n->links[0]) ||
                      (r->lead && dump_map_isset(r->lead, r->mapbytes, ino));
        if (!chosen || dir_path(r, ino, path, sizeof(path)))
            continue;
        uint32_t parent;
        const char *name;
        bool at_top = !root && !where(r, ino, &parent, &name) &&
                      parent == RST_ROOT_INO;
        struct xattr_set x;
        int rc = xattrs_begin(r, &x, path, true, at_top, ino);
        if (rc)
            return rc;
        for (size_t i = 0; !rc && i < m->nx; i++)
            rc = xattrs_apply(&x, m->xrecs[i].buf, m->xrecs[i].len);
        int erc = xattrs_end(&x);
        if (rc || (rc = erc) || (rc = apply_inode(r, path, &m->di)))
            return rc;
    }
    return 0;
}

static int save_state(struct rst *r)
{
    struct rst_state s = { .date = r->vol.tape.date,
                           .level = r->vol.tape.level,
                           .has_uuid = r->vol.has_ext,
                           .tree = r->tree };
    memcpy(s.uuid, r->vol.ext.uuid, 16);
    int rc = rst_state_save(r->o->destfd, &s);
    return rc ? fail_dest(r, "write", RST_STATE_FILE, rc) : 0;
}

/* ---- the main loop ---- */

static int on_inode(struct rst *r, bool *have_next)
{
    *have_next = false;
    bool isdir = S_ISDIR(r->h.di.mode);
    if (r->h.flags & DR_EXTATTRIBUTES) {
        struct dirmeta *m = r->prepared || !r->ndm ? NULL
                                                   : &r->dm[r->ndm - 1];
        if (!m || m->ino != r->h.ino || !is_xattr_record(r))
            return skip_data(r);  /* nothing to attach it to, or no xattrs */
        struct collect c;
        int rc = read_xattr_record(r, &c);
        if (rc)
            return rc;
        return dirmeta_add_xattrs(m, &c);
    }
    if (isdir && !r->prepared)
        return read_directory(r);
    if (isdir)
        return skip_data(r);  /* repeated by a restarted dump */
    if (!r->prepared) {
        int rc = prepare(r);
        if (rc || r->o->mode == RST_LIST)
            return rc ? rc : LIST_DONE;
    }
    return restore_file(r, have_next);
}

static int read_first_tape(struct rst *r)
{
    uint8_t blk[DUMP_TP_BSIZE];
    int rc = dump_read_block(&r->rd, blk);
    if (rc == -ENODATA || rc == -EIO || (!rc && dump_header_decode(blk,
                                                                   &r->h)))
        return fail(r, RST_E_NOT_DUMP, -EBADMSG);
    if (rc)
        return fail(r, RST_E_READ, rc);
    if (r->h.type != TS_TAPE)
        return fail(r, RST_E_NOT_DUMP, -EBADMSG);
    r->vol.tape = r->h;
    r->vol.has_ext = dump_ext_get(&r->h, &r->vol.ext) == 0;
    r->cur_volume = r->h.volume;
    if (r->vol.has_ext && r->vol.ext.version > DUMP_SNAPFS_EXT_VERSION) {
        r->err->got = r->vol.ext.version;
        r->err->want = DUMP_SNAPFS_EXT_VERSION;
        return fail(r, RST_E_EXT_VERSION, -EPROTONOSUPPORT);
    }
    if (r->h.volume > 1 || (r->vol.has_ext && r->vol.ext.part > 0)) {
        r->err->got = r->h.volume;
        return fail(r, RST_E_FIRST_PART, -EINVAL);
    }
    if ((rc = check_blocking(r, &r->h)))
        return rc;
    return r->o->on_volume ? r->o->on_volume(r->o->arg, &r->vol) : 0;
}

static int run_loop(struct rst *r)
{
    int rc = read_first_tape(r);
    bool have_next = false, ended = false;
    while (!rc && !ended) {
        if (!have_next && (rc = read_header(r)) < 0)
            break;
        have_next = false;
        rc = 0;
        switch (r->h.type) {
        case TS_CLRI: rc = read_map(r, &r->used); break;
        case TS_BITS: rc = read_map(r, &r->dumped); break;
        case TS_INODE: rc = on_inode(r, &have_next); break;
        case TS_END: ended = true; break;
        case TS_TAPE: break;  /* a repeated volume header */
        case TS_ADDR: rc = skip_orphan_addr(r); break;
        default:
            r->err->ino = r->h.ino;
            rc = fail(r, RST_E_UNEXPECTED, -EBADMSG);
        }
        if (rc == PART_SWITCHED) {  /* r->h is the next header */
            rc = 0;
            have_next = true;
        }
    }
    if (rc == LIST_DONE)
        return 0;
    if (!rc && !r->prepared)
        rc = prepare(r);
    if (!rc && r->o->mode == RST_LIST)
        return 0;
    if (!rc && r->ninc)
        rc = fail(r, RST_E_INCOMPLETE, r->full ? -r->full : -EIO);
    if (!rc && r->o->mode == RST_RESTORE)
        rc = save_state(r);
    if (!rc && r->have_old && remove_tree(r->o->destfd, STAGE_DIR))
        rc = fail_dest(r, "remove", STAGE_DIR, -errno);
    if (!rc)
        rc = finish_dirs(r);
    return rc;
}

static void rst_free(struct rst *r)
{
    dump_reader_free(&r->rd);
    free(r->used);
    free(r->dumped);
    rst_tree_free(&r->dumpdirs);
    for (size_t i = 0; i < r->ndm; i++)
        dirmeta_free_xattrs(&r->dm[i]);
    free(r->dm);
    if (r->have_old)
        rst_state_free(&r->old);
    rst_tree_free(&r->tree);
    rst_index_free(&r->ix);
    rst_index_free(&r->oldix);
    free(r->want);
    free(r->lead);
    free(r->named);
    for (size_t i = 0; i < r->nlocs; i++)
        free(r->locs[i].name);
    free(r->locs);
    free(r->wbuf);
}

int rst_run(const struct rst_options *o, struct rst_stats *stats,
            struct rst_error *err)
{
    memset(err, 0, sizeof(*err));
    memset(stats, 0, sizeof(*stats));
    struct rst r = { .o = o, .err = err, .st = stats };
    int rc = o->nfds < 1 ? -EINVAL
                         : dump_reader_init(&r.rd, o->fds[0], o->blocking);
    r.wbuf = malloc(WBUF_BYTES);
    if (!rc && !r.wbuf)
        rc = -ENOMEM;
    if (!rc)
        rc = run_loop(&r);
    if (r.ninc) {
        err->incomplete = r.inc;
        err->nincomplete = r.ninc;
        r.inc = NULL;
    }
    free(r.inc);
    if (o->on_progress)
        o->on_progress(o->arg, stats->bytes, stats->files);
    rst_free(&r);
    return rc;
}
