/*
 * dump.c - writing a snapshot as a dump in the format of dumpfmt.c.
 *
 * THEORY
 *
 * Inode numbers.  The format names files by 32-bit inode numbers and
 * wants the root directory to be inode 2.  A snapfs object id is at most
 * 2^41, but ids are handed out in order from 1 (the root), so a volume's
 * ids fit unless it has made two billion objects.  Dump inode = object id
 * + 1, except that the directory the dump starts from is inode 2 (for a
 * whole volume that is the same rule; for a subtree the volume root, id
 * 1, is never in the dump, so nothing else can want 2).  The maps are one
 * bit per id up to the volume's next id: 125 KiB per million objects.
 *
 * What a dump carries.  dump_prepare walks the snapshot from the dump's
 * root, depth first, marking every object it reaches (a hard link is
 * reached once per name, dumped once).  A full dump carries them all.  An
 * incremental carries the objects whose inode version was born after the
 * base dump's snapshot (every change of an object writes its inode, see
 * sfs_inode_birth), and every directory on the way from the root to such
 * an object, as BSD dump does: restore finds names only in directories,
 * and a changed directory lists all its entries, so renames and deletions
 * show.  TS_CLRI lists the inodes in use (the objects under the root,
 * despite its name): an incremental restore deletes what it restored
 * before under any other number.  Excluded names (spec->exclude) are
 * skipped by the walk and left out of their directories' entries, so
 * the dump is that of a tree without them; a file with another name
 * that is not excluded is still dumped, under that name.
 *
 * Order.  Directories first, then files, each in increasing inode order,
 * which is what Linux restore expects.  The walk and the writing read the
 * snapshot through short read transactions, renewed every second or 64
 * MiB; the caller holds the snapshot so that it cannot go away meanwhile.
 *
 * Restart points.  The output is written a record at a time; a file is
 * safely out only when the record holding its last block was written.
 * We keep, for the files of the records not yet written, where each one
 * ends; when a record goes out, the restart point moves past every file
 * that ended in it.  The caller persists that point (the dump context),
 * so that an interrupted dump can continue with the first file that is
 * not completely on the output.  The directories are all written before
 * the first file, and a dump is restartable only once they are out.
 *
 * Guarantees: only the snapshot is read; nothing in the volume changes.
 * Memory: three bitmaps over the object ids, one directory's entries, and
 * 512 KiB of file data at a time.
 */
#define _GNU_SOURCE
#include "dump.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define RENEW_NS 1000000000ll
#define RENEW_BYTES (64ull << 20)
#define CHUNK_PIECES DUMP_TP_NINDIR            /* 1 KiB pieces per header */
#define CHUNK_BYTES (CHUNK_PIECES * DUMP_TP_BSIZE)

uint32_t dump_ino_of(uint64_t root, uint64_t obj)
{
    return obj == root ? DUMP_ROOTINO : (uint32_t)(obj + 1);
}

uint64_t dump_obj_of(uint64_t root, uint32_t dino)
{
    return dino == DUMP_ROOTINO ? root : (uint64_t)dino - 1;
}

static void map_set(uint8_t *map, uint32_t dino)
{
    dump_map_set(map, dino);
}

static bool map_has(const struct dump_plan *p, const uint8_t *map,
                    uint32_t dino)
{
    return dump_map_isset(map, p->map_bytes, dino);
}

/* ---- read transactions, renewed as we go ---- */

struct snapread {
    struct sfs_store *st;
    MDB_txn *txn;
    int64_t since_ns;
    uint64_t bytes;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The read transaction, renewed if it is old or has read a lot. */
static int snapread_txn(struct snapread *r, MDB_txn **out)
{
    int64_t now = now_ns();
    if (r->txn && (now - r->since_ns > RENEW_NS || r->bytes > RENEW_BYTES)) {
        mdb_txn_reset(r->txn);
        int rc = mdb_txn_renew(r->txn);
        if (rc) {
            mdb_txn_abort(r->txn);
            r->txn = NULL;
            return sfs_mdb_errno(rc);
        }
        r->since_ns = now;
        r->bytes = 0;
    }
    if (!r->txn) {
        int rc = sfs_txn_begin(r->st, NULL, false, &r->txn);
        if (rc)
            return rc;
        r->since_ns = now;
        r->bytes = 0;
    }
    *out = r->txn;
    return 0;
}

static void snapread_end(struct snapread *r)
{
    if (r->txn)
        mdb_txn_abort(r->txn);
    r->txn = NULL;
}

/* ---- the walk: what the dump carries ---- */

struct walk {
    const struct dump_spec *spec;
    struct dump_plan *plan;
    struct snapread rd;
    uint64_t *stack;
    size_t depth, cap;
    uint64_t dir;            /* the directory being listed */
    struct dump_failure *f;
};

static int walk_push(struct walk *w, uint64_t obj)
{
    if (w->depth == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        uint64_t *s = realloc(w->stack, cap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        w->stack = s;
        w->cap = cap;
    }
    w->stack[w->depth++] = obj;
    return 0;
}

/* Is OBJ changed since the base (always, for a full dump)? */
static int walk_changed(struct walk *w, MDB_txn *txn, uint64_t obj)
{
    if (!w->spec->base_epoch)
        return 1;
    uint64_t birth;
    int rc = sfs_inode_birth(w->spec->st, txn, w->spec->view, obj, &birth);
    if (rc)
        return rc;
    return birth > w->spec->base_epoch;
}

/* Count OBJ into the estimate: headers, data blocks, attributes. */
static int walk_count(struct walk *w, MDB_txn *txn, uint64_t obj, bool dir)
{
    struct sfs_inode i;
    int rc = sfs_inode_get(w->spec->st, txn, w->spec->view, obj, &i);
    if (rc)
        return rc;
    /* Holes take no tape blocks: count what is allocated. */
    uint64_t data = S_ISREG(i.mode) && i.blocks * 512 < i.size
                        ? i.blocks * 512 : i.size;
    uint64_t pieces = (data + DUMP_TP_BSIZE - 1) / DUMP_TP_BSIZE;
    if (dir)
        pieces = 2 + i.size / 16; /* entries are written anew, about */
    w->plan->est_bytes += (pieces + 2 + pieces / CHUNK_PIECES) *
                          DUMP_TP_BSIZE;
    if (dir)
        w->plan->dirs++;
    else
        w->plan->files++;
    return 0;
}

/* Mark DIR and the directories above it dumped, up to the root or to
 * one already marked. */
static int walk_mark_up(struct walk *w, MDB_txn *txn, uint64_t dir)
{
    struct dump_plan *p = w->plan;
    for (;;) {
        uint32_t d = dump_ino_of(w->spec->root, dir);
        if (map_has(p, p->dumped, d))
            return 0;
        map_set(p->dumped, d);
        int rc = walk_count(w, txn, dir, true);
        if (rc)
            return rc;
        if (dir == w->spec->root)
            return 0;
        struct sfs_inode i;
        rc = sfs_inode_get(w->spec->st, txn, w->spec->view, dir, &i);
        if (rc)
            return rc;
        dir = i.parent;
    }
}

/* Is the entry NAME left out of the dump? */
static bool excluded(const struct dump_spec *spec, const char *name)
{
    for (char *const *e = spec->exclude; e && *e; e++)
        if (!fnmatch(*e, name, FNM_PERIOD))
            return true;
    return false;
}

static int walk_entry(void *arg, const struct sfs_dirent *d)
{
    struct walk *w = arg;
    struct dump_plan *p = w->plan;
    MDB_txn *txn = w->rd.txn;
    if (excluded(w->spec, d->name))
        return 0;
    if (d->ino >= (uint64_t)p->maxino) {
        w->f->obj = d->ino;
        return -E2BIG;
    }
    uint32_t dc = dump_ino_of(w->spec->root, d->ino);
    int rc = 0;
    if (!map_has(p, p->present, dc)) {
        map_set(p->present, dc);
        bool dir = d->type == DT_DIR;
        if (dir) {
            map_set(p->is_dir, dc);
            rc = walk_push(w, d->ino);
        }
        int changed = rc ? rc : walk_changed(w, txn, d->ino);
        if (changed < 0)
            rc = changed;
        else if (changed && !dir) {
            map_set(p->dumped, dc);
            rc = walk_count(w, txn, d->ino, false);
        } else if (changed && dir) {
            rc = walk_mark_up(w, txn, d->ino);
        }
    }
    if (!rc && !map_has(p, p->is_dir, dc) && map_has(p, p->dumped, dc))
        rc = walk_mark_up(w, txn, w->dir);
    if (rc)
        w->f->obj = d->ino;
    return rc;
}

static int walk_tree(struct walk *w)
{
    const struct dump_spec *s = w->spec;
    struct dump_plan *p = w->plan;
    MDB_txn *txn;
    int rc = snapread_txn(&w->rd, &txn);
    if (rc)
        return rc;
    struct sfs_inode root;
    rc = sfs_inode_get(s->st, txn, s->view, s->root, &root);
    if (rc)
        return rc;
    if (!S_ISDIR(root.mode))
        return -ENOTDIR;
    map_set(p->present, DUMP_ROOTINO);
    map_set(p->is_dir, DUMP_ROOTINO);
    rc = walk_mark_up(w, txn, s->root);   /* the root is in every dump */
    if (!rc)
        rc = walk_push(w, s->root);
    while (!rc && w->depth) {
        w->dir = w->stack[--w->depth];
        rc = snapread_txn(&w->rd, &txn);
        if (!rc)
            rc = sfs_dir_list(s->st, txn, s->view, w->dir, 0, walk_entry, w);
        if (rc && !w->f->obj)
            w->f->obj = w->dir;
    }
    return rc;
}

int dump_prepare(const struct dump_spec *spec, struct dump_plan *plan,
                 struct dump_failure *f)
{
    memset(plan, 0, sizeof(*plan));
    memset(f, 0, sizeof(*f));
    f->doing = "reading the snapshot";
    uint64_t next = spec->st->state.next_ino;
    if (next > 0x7ffffffeull) {
        f->rc = -E2BIG;
        return f->rc;
    }
    plan->maxino = (uint32_t)next;
    plan->map_bytes = dump_map_bytes(plan->maxino);
    plan->present = calloc(1, plan->map_bytes);
    plan->dumped = calloc(1, plan->map_bytes);
    plan->is_dir = calloc(1, plan->map_bytes);
    if (!plan->present || !plan->dumped || !plan->is_dir) {
        dump_plan_free(plan);
        f->rc = -ENOMEM;
        return f->rc;
    }
    struct walk w = { .spec = spec, .plan = plan, .f = f,
                      .rd = { .st = spec->st } };
    int rc = walk_tree(&w);
    snapread_end(&w.rd);
    free(w.stack);
    /* the maps themselves */
    plan->est_bytes += 4 * DUMP_TP_BSIZE + 2 * plan->map_bytes;
    if (rc) {
        dump_plan_free(plan);
        f->rc = rc;
    }
    return rc;
}

void dump_plan_free(struct dump_plan *plan)
{
    free(plan->present);
    free(plan->dumped);
    free(plan->is_dir);
    plan->present = plan->dumped = plan->is_dir = NULL;
}

/* ---- writing ---- */

/* A file that ended in a record not yet on the output. */
struct pending {
    uint64_t end_block;
    uint32_t next;
    uint64_t files, bytes;
};

struct out {
    const struct dump_spec *spec;
    const struct dump_plan *plan;
    struct dump_writer *w;
    struct dump_failure *f;
    struct snapread rd;
    struct sfs_codec_ctx *cc;
    struct dump_header h;    /* the template of every header */
    uint8_t blk[DUMP_TP_BSIZE];
    uint8_t *chunk;          /* CHUNK_BYTES of file data */
    bool holes[CHUNK_PIECES]; /* which pieces of the chunk are holes */
    struct dump_progress prog;
    struct pending *pend;
    size_t npend, cappend;
    int64_t last_report_ns;
};

static void report(struct out *o, bool force)
{
    int64_t now = now_ns();
    if (!o->spec->progress || (!force && now - o->last_report_ns < 200000000))
        return;
    o->last_report_ns = now;
    o->prog.bytes = o->w->bytes_out;
    o->spec->progress(o->spec->arg, &o->prog);
}

/* Move the restart point past every file whose last block is out. */
static void advance_committed(struct out *o)
{
    uint64_t out_blocks = o->w->bytes_out / DUMP_TP_BSIZE;
    size_t k = 0;
    while (k < o->npend && o->pend[k].end_block <= out_blocks) {
        o->prog.committed_next = o->pend[k].next;
        o->prog.committed_files = o->pend[k].files;
        o->prog.committed_bytes = o->pend[k].bytes;
        k++;
    }
    if (!k)
        return;
    memmove(o->pend, o->pend + k, (o->npend - k) * sizeof(*o->pend));
    o->npend -= k;
    report(o, true);
}

static int put_block(struct out *o, const void *blk)
{
    uint64_t before = o->w->bytes_out;
    int rc = dump_write_block(o->w, blk);
    if (o->w->bytes_out != before) {
        advance_committed(o);
        report(o, false);
    }
    if (rc) {
        o->f->doing = "writing the output";
        advance_committed(o);
    }
    return rc;
}

/* Note that everything before dump inode NEXT is written (once out). */
static int note_done(struct out *o, uint32_t next)
{
    if (o->npend == o->cappend) {
        size_t cap = o->cappend ? o->cappend * 2 : 64;
        struct pending *p = realloc(o->pend, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        o->pend = p;
        o->cappend = cap;
    }
    o->pend[o->npend++] = (struct pending){ o->w->blocks, next,
                                            o->prog.files,
                                            o->w->blocks * DUMP_TP_BSIZE };
    advance_committed(o);
    return 0;
}

static int put_header(struct out *o, struct dump_header *h)
{
    h->tapea = (uint32_t)o->w->blocks;
    dump_header_encode(h, o->blk);
    return put_block(o, o->blk);
}

/* TS_CLRI (the inodes in use) or TS_BITS (the inodes on this dump). */
static int put_map(struct out *o, int type, const uint8_t *map)
{
    struct dump_header h = o->h;
    h.type = type;
    h.ino = o->plan->maxino;
    h.count = (int32_t)(o->plan->map_bytes / DUMP_TP_BSIZE);
    h.di.size = o->plan->map_bytes;
    int rc = put_header(o, &h);
    for (size_t b = 0; !rc && b < o->plan->map_bytes; b += DUMP_TP_BSIZE)
        rc = put_block(o, map + b);
    return rc;
}

static void fill_inode(struct dump_inode *di, const struct sfs_inode *i,
                       uint32_t dino, uint64_t size)
{
    memset(di, 0, sizeof(*di));
    di->mode = (uint16_t)i->mode;
    di->nlink = (int16_t)(i->nlink > 32767 ? 32767 : i->nlink);
    di->inumber = dino;
    di->size = size;
    di->atime_sec = (uint32_t)i->atime_sec;
    di->atime_usec = i->atime_nsec / 1000;
    di->mtime_sec = (uint32_t)i->mtime_sec;
    di->mtime_usec = i->mtime_nsec / 1000;
    di->ctime_sec = (uint32_t)i->ctime_sec;
    di->ctime_usec = i->ctime_nsec / 1000;
    if (S_ISCHR(i->mode) || S_ISBLK(i->mode))
        di->db[0] = (uint32_t)i->rdev;
    di->blocks = (int32_t)(i->blocks > INT32_MAX ? INT32_MAX : i->blocks);
    di->uid = i->uid;
    di->gid = i->gid;
}

/*
 * Headers and data of LEN bytes at DATA (pieces of 1 KiB; HOLES[i] set
 * marks piece i of this chunk as a hole).  FIRST: this chunk starts the
 * inode (TS_INODE), else TS_ADDR.  TOTAL_PIECES: pieces left in the inode
 * from this chunk on, which fixes c_count.
 */
static int put_chunk(struct out *o, struct dump_header *h, bool first,
                     const uint8_t *data, const bool *holes,
                     uint64_t total_pieces)
{
    h->type = first ? TS_INODE : TS_ADDR;
    uint32_t n = total_pieces > CHUNK_PIECES ? CHUNK_PIECES
                                             : (uint32_t)total_pieces;
    h->count = (int32_t)n;
    memset(h->addr, 0, sizeof(h->addr));
    for (uint32_t i = 0; i < n; i++)
        h->addr[i] = holes && holes[i] ? 0 : 1;
    int rc = put_header(o, h);
    for (uint32_t i = 0; !rc && i < n; i++)
        if (h->addr[i])
            rc = put_block(o, data + (size_t)i * DUMP_TP_BSIZE);
    return rc;
}

/* Small contents (a directory, a symlink target, an attribute record)
 * that are in memory whole. */
static int put_contents(struct out *o, struct dump_header *h,
                        const uint8_t *data, uint64_t len)
{
    uint64_t pieces = (len + DUMP_TP_BSIZE - 1) / DUMP_TP_BSIZE;
    if (!pieces)
        return put_chunk(o, h, true, NULL, NULL, 0);
    int rc = 0;
    for (uint64_t p = 0; !rc && p < pieces; p += CHUNK_PIECES) {
        uint64_t off = p * DUMP_TP_BSIZE, n = len - off;
        if (n > CHUNK_BYTES)
            n = CHUNK_BYTES;
        memcpy(o->chunk, data + off, n);
        memset(o->chunk + n, 0, CHUNK_BYTES - n);
        rc = put_chunk(o, h, p == 0, o->chunk, NULL, pieces - p);
    }
    return rc;
}

/* ---- one object ---- */

struct dirlist {
    struct dump_dirbuf buf;
    const struct dump_spec *spec;
    int rc;
};

static int dirlist_entry(void *arg, const struct sfs_dirent *d)
{
    struct dirlist *l = arg;
    if (excluded(l->spec, d->name))
        return 0;
    return dump_dir_add(&l->buf, dump_ino_of(l->spec->root, d->ino),
                        (uint8_t)d->type, d->name, strlen(d->name));
}

static int put_dir(struct out *o, uint64_t obj, const struct sfs_inode *i,
                   struct dump_header *h)
{
    struct dirlist l = { .spec = o->spec };
    uint32_t self = dump_ino_of(o->spec->root, obj);
    uint32_t up = obj == o->spec->root ? self
                                       : dump_ino_of(o->spec->root, i->parent);
    MDB_txn *txn;
    int rc = snapread_txn(&o->rd, &txn);
    if (!rc)
        rc = dump_dir_add(&l.buf, self, DT_DIR, ".", 1);
    if (!rc)
        rc = dump_dir_add(&l.buf, up, DT_DIR, "..", 2);
    if (!rc)
        rc = sfs_dir_list(o->spec->st, txn, o->spec->view, obj, 0,
                          dirlist_entry, &l);
    if (!rc) {
        dump_dir_finish(&l.buf);
        h->di.size = l.buf.len;
        rc = put_contents(o, h, l.buf.data, l.buf.len);
    } else {
        o->f->doing = "reading a directory";
    }
    dump_dir_free(&l.buf);
    return rc;
}

static int put_symlink(struct out *o, uint64_t obj, struct dump_header *h)
{
    char target[SFS_SYMLINK_MAX + 1];
    size_t got = 0;
    MDB_txn *txn;
    int rc = snapread_txn(&o->rd, &txn);
    if (!rc)
        rc = sfs_file_read(o->spec->st, txn, o->cc, o->spec->view, obj, 0,
                           SFS_SYMLINK_MAX, target, &got);
    if (rc) {
        o->f->doing = "reading a symbolic link";
        return rc;
    }
    h->di.size = got;
    return put_contents(o, h, (const uint8_t *)target, got);
}

/* Mark the 1 KiB pieces of [OFF, OFF+LEN) that lie in store holes. */
static int find_holes(struct out *o, MDB_txn *txn, uint64_t obj,
                      uint64_t off, uint32_t pieces, bool *holes)
{
    uint32_t bs = o->spec->st->super.block_size;
    uint64_t last_block = UINT64_MAX;
    bool last_hole = false;
    for (uint32_t i = 0; i < pieces; i++) {
        uint64_t b = (off + (uint64_t)i * DUMP_TP_BSIZE) / bs;
        if (b != last_block) {
            struct sfs_extent e;
            int rc = sfs_extent_get(o->spec->st, txn, o->spec->view, obj, b,
                                    &e);
            if (rc && rc != -ENOENT)
                return rc;
            last_hole = rc == -ENOENT || !e.present;
            last_block = b;
        }
        holes[i] = last_hole;
    }
    return 0;
}

static int put_file_data(struct out *o, uint64_t obj, uint64_t size,
                         struct dump_header *h)
{
    uint64_t pieces = (size + DUMP_TP_BSIZE - 1) / DUMP_TP_BSIZE;
    if (!pieces)
        return put_chunk(o, h, true, NULL, NULL, 0);
    bool *holes = o->holes;
    int rc = 0;
    for (uint64_t p = 0; !rc && p < pieces; p += CHUNK_PIECES) {
        uint64_t off = p * DUMP_TP_BSIZE;
        uint32_t n = pieces - p > CHUNK_PIECES ? CHUNK_PIECES
                                               : (uint32_t)(pieces - p);
        size_t len = size - off < CHUNK_BYTES ? (size_t)(size - off)
                                              : CHUNK_BYTES;
        size_t got = 0;
        MDB_txn *txn;
        rc = snapread_txn(&o->rd, &txn);
        if (!rc)
            rc = find_holes(o, txn, obj, off, n, holes);
        if (!rc)
            rc = sfs_file_read(o->spec->st, txn, o->cc, o->spec->view, obj,
                               off, len, o->chunk, &got);
        if (rc) {
            o->f->doing = "reading a file";
            return rc;
        }
        o->rd.bytes += len;
        memset(o->chunk + got, 0, CHUNK_BYTES - got);
        rc = put_chunk(o, h, p == 0, o->chunk, holes, pieces - p);
    }
    return rc;
}

/* OBJ's attributes: *XS (values malloc'd) over *NAMES; *N of them. */
static int get_xattrs(struct out *o, uint64_t obj, char **names,
                      struct dump_xattr **xs, size_t *n)
{
    MDB_txn *txn;
    int rc = snapread_txn(&o->rd, &txn);
    if (rc)
        return rc;
    struct sfs_store *st = o->spec->st;
    int len = sfs_xattr_list(st, txn, o->spec->view, obj, NULL, 0);
    if (len <= 0)
        return len;
    *names = malloc((size_t)len);
    *xs = calloc((size_t)len, sizeof(**xs));
    if (!*names || !*xs)
        return -ENOMEM;
    rc = sfs_xattr_list(st, txn, o->spec->view, obj, *names, (size_t)len);
    for (char *p = *names; rc >= 0 && p < *names + len; p += strlen(p) + 1) {
        int vlen = sfs_xattr_get(st, txn, o->spec->view, obj, p, NULL, 0);
        void *v = vlen >= 0 ? malloc((size_t)vlen + 1) : NULL;
        rc = vlen < 0 ? vlen : v ? 0 : -ENOMEM;
        if (!rc)
            rc = sfs_xattr_get(st, txn, o->spec->view, obj, p, v,
                               (size_t)vlen);
        (*xs)[(*n)++] = (struct dump_xattr){ p, v, (size_t)vlen };
    }
    return rc < 0 ? rc : 0;
}

/* One attribute record of the N attributes XS, as extension EXT. */
static int put_xattr_record(struct out *o, const struct dump_header *h,
                            const struct dump_xattr *xs, size_t n, int ext)
{
    uint8_t *rec;
    size_t len;
    int rc = dump_xattr_encode(xs, n, &rec, &len);
    if (rc)
        return rc;
    struct dump_header xh = *h;
    xh.flags |= DR_EXTATTRIBUTES;
    xh.extattributes = ext;
    xh.di.size = len;
    rc = put_contents(o, &xh, rec, len);
    free(rec);
    return rc;
}

/*
 * The attribute records of an object: as many EXT_XATTR records of at
 * most 4 KiB as its attributes need (Linux restore reads each), and an
 * EXT_SNAPFS_XATTR record for an attribute that alone is larger.
 */
static int put_xattrs(struct out *o, uint64_t obj, const struct dump_header *h)
{
    char *names = NULL;
    struct dump_xattr *xs = NULL;
    size_t n = 0, first = 0;
    int rc = get_xattrs(o, obj, &names, &xs, &n);
    for (size_t k = 0; !rc && k < n; k++) {
        if (dump_xattr_record_size(xs + first, k + 1 - first) <=
            DUMP_XATTR_LINUX_MAX)
            continue;
        if (k > first)
            rc = put_xattr_record(o, h, xs + first, k - first, EXT_XATTR);
        first = k;
        if (!rc &&
            dump_xattr_record_size(xs + k, 1) > DUMP_XATTR_LINUX_MAX) {
            rc = put_xattr_record(o, h, xs + k, 1, EXT_SNAPFS_XATTR);
            first = k + 1;
        }
    }
    if (!rc && n > first)
        rc = put_xattr_record(o, h, xs + first, n - first, EXT_XATTR);
    if (rc)
        o->f->doing = "writing extended attributes";
    for (size_t k = 0; k < n; k++)
        free((void *)xs[k].value);
    free(xs);
    free(names);
    return rc;
}

static int put_object(struct out *o, uint32_t dino)
{
    uint64_t obj = dump_obj_of(o->spec->root, dino);
    o->f->obj = obj;
    MDB_txn *txn;
    struct sfs_inode i;
    int rc = snapread_txn(&o->rd, &txn);
    if (!rc)
        rc = sfs_inode_get(o->spec->st, txn, o->spec->view, obj, &i);
    if (rc) {
        o->f->doing = "reading an inode";
        return rc;
    }
    struct dump_header h = o->h;
    h.ino = dino;
    fill_inode(&h.di, &i, dino, 0);
    struct dump_header xh = h;
    if (S_ISDIR(i.mode))
        rc = put_dir(o, obj, &i, &h);
    else if (S_ISLNK(i.mode))
        rc = put_symlink(o, obj, &h);
    else if (S_ISREG(i.mode)) {
        h.di.size = i.size;
        rc = put_file_data(o, obj, i.size, &h);
    } else
        rc = put_chunk(o, &h, true, NULL, NULL, 0);
    if (!rc)
        rc = put_xattrs(o, obj, &xh);
    if (!rc) {
        o->prog.files++;
        o->f->obj = 0;
    }
    return rc;
}

/* ---- the whole dump ---- */

static int put_end(struct out *o)
{
    struct dump_header h = o->h;
    h.type = TS_END;
    int rc = put_header(o, &h);
    while (!rc && dump_writer_room(o->w) < o->w->ntrec)
        rc = put_header(o, &h);
    if (!rc) {
        uint64_t before = o->w->bytes_out;
        rc = dump_writer_flush(o->w);
        if (o->w->bytes_out != before)
            advance_committed(o);
    }
    return rc;
}

static bool stopped(const struct out *o)
{
    return o->spec->stop && *o->spec->stop;
}

/* Every dumped object for which IS_DIR(dino) == DIRS, from FROM on. */
static int put_objects(struct out *o, bool dirs, uint32_t from)
{
    const struct dump_plan *p = o->plan;
    for (uint32_t d = from; d <= p->maxino; d++) {
        if (!map_has(p, p->dumped, d) || map_has(p, p->is_dir, d) != dirs)
            continue;
        if (stopped(o))
            return -EINTR;
        int rc = put_object(o, d);
        if (!rc && !dirs)
            rc = note_done(o, d + 1);
        if (rc)
            return rc;
    }
    return 0;
}

static int write_all(struct out *o)
{
    const struct dump_spec *s = o->spec;
    struct dump_header t = s->tape;
    t.type = TS_TAPE;
    t.flags = DR_NEWHEADER | DR_NEWINODEFMT;
    t.count = 1;
    int rc = put_header(o, &t);
    if (s->restart_ino) {
        o->prog.phase = SFS_DUMP_PHASE_FILES;
        o->prog.committed_next = s->restart_ino;
        return rc ? rc : put_objects(o, false, s->restart_ino);
    }
    if (!rc)
        rc = put_map(o, TS_CLRI, o->plan->present);
    if (!rc)
        rc = put_map(o, TS_BITS, o->plan->dumped);
    if (!rc)
        rc = put_objects(o, true, 1);
    if (!rc) {
        o->prog.phase = SFS_DUMP_PHASE_FILES;
        rc = note_done(o, 1);
    }
    if (!rc)
        rc = put_objects(o, false, 1);
    return rc;
}

int dump_write(const struct dump_spec *spec, const struct dump_plan *plan,
               struct dump_writer *w, struct dump_failure *f)
{
    memset(f, 0, sizeof(*f));
    struct out o = { .spec = spec, .plan = plan, .w = w, .f = f,
                     .rd = { .st = spec->st } };
    o.prog.est_bytes = plan->est_bytes;
    o.h = spec->tape;
    o.h.flags = DR_NEWINODEFMT;
    o.cc = sfs_codec_ctx_new();
    o.chunk = malloc(CHUNK_BYTES);
    int rc = o.cc && o.chunk ? 0 : -ENOMEM;
    if (!rc)
        rc = write_all(&o);
    if (!rc)
        rc = put_end(&o);
    report(&o, true);
    snapread_end(&o.rd);
    sfs_codec_ctx_free(o.cc);
    free(o.chunk);
    free(o.pend);
    f->rc = rc;
    if (rc == -EINTR)
        f->doing = "interrupted";
    return rc;
}
