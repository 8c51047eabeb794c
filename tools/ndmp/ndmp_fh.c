/*
 * ndmp_fh.c - file history (HIST=y): the dump is read as it passes from
 * the dump command to the data connection, and every directory entry
 * (FH_ADD_DIR: name, node, parent) and every inode (FH_ADD_NODE: its
 * attributes, and as fh_info the byte offset of its header in the image)
 * is posted to the DMA, so that it can build its index and later ask
 * for single files by position.
 *
 * THEORY.  The image is a sequence of 1 KiB blocks (tape/dumpfmt.c):
 * headers, each followed by its data blocks — for TS_CLRI and TS_BITS
 * c_count map blocks, for TS_TAPE, TS_INODE and TS_ADDR one block per
 * non-zero c_addr entry among the first c_count.  Knowing that, the
 * reader finds every header without buffering more than a block, plus a
 * directory's contents until they are complete (directories come first,
 * in inode order, the dump's root, inode 2, first; so the first entry
 * posted is the root's ".", as DMAs expect).  A second TS_INODE header of
 * an inode with DR_EXTATTRIBUTES carries its attributes and is skipped.
 * Node numbers are the dump's inode numbers.  A block that is not the
 * header expected ends the history quietly (the dump command reports
 * its own errors); the stream itself is never changed.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dumpfmt.h"
#include "ndmp_fh.h"
#include "ndmp_int.h"

#define BATCH 256
#define DIR_MAX (64u << 20)

enum { FT_DIR = 0, FT_FIFO = 1, FT_CSPEC = 2, FT_BSPEC = 3, FT_REG = 4,
       FT_SLINK = 5, FT_SOCK = 6, FT_OTHER = 8 };

struct fh_parser {
    uint8_t blk[DUMP_TP_BSIZE];
    size_t have;
    uint64_t blockno;          /* of the block being gathered */
    uint32_t data_left;        /* data blocks of the last header to come */
    bool broken, ended;
    /* the directory being gathered */
    uint32_t dir_ino;
    uint8_t *dir;
    size_t dir_len, dir_size;
    bool in_dir;
    struct restart_map *map;   /* the files' offsets, or NULL */
    /* batches */
    struct xdr_out dirs, nodes;
    uint32_t ndirs, nnodes;
};

struct fh_parser *fh_parser_new(void)
{
    return calloc(1, sizeof(struct fh_parser));
}

void fh_set_map(struct fh_parser *f, struct restart_map *map)
{
    f->map = map;
}

bool fh_ended(const struct fh_parser *f)
{
    return f->ended || f->broken;
}

void fh_parser_free(struct fh_parser *f)
{
    if (!f)
        return;
    free(f->dir);
    xout_free(&f->dirs);
    xout_free(&f->nodes);
    free(f);
}

static void post_batch(struct session *s, uint32_t code, struct xdr_out *b,
                       uint32_t *n)
{
    if (!*n)
        return;
    struct xdr_out msg = { 0 };
    xout_u32(&msg, *n);
    xout_fixed(&msg, b->buf, b->len);
    ndmp_post(s, code, &msg);
    xout_free(&msg);
    b->len = 0;
    *n = 0;
}

void fh_flush(struct fh_parser *f, struct session *s)
{
    post_batch(s, NDMP_FH_ADD_DIR, &f->dirs, &f->ndirs);
    post_batch(s, NDMP_FH_ADD_NODE, &f->nodes, &f->nnodes);
}

static uint32_t file_type(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFDIR: return FT_DIR;
    case S_IFIFO: return FT_FIFO;
    case S_IFCHR: return FT_CSPEC;
    case S_IFBLK: return FT_BSPEC;
    case S_IFREG: return FT_REG;
    case S_IFLNK: return FT_SLINK;
    case S_IFSOCK: return FT_SOCK;
    default: return FT_OTHER;
    }
}

static void add_node(struct fh_parser *f, struct session *s,
                     const struct dump_header *h)
{
    struct xdr_out *b = &f->nodes;
    const struct dump_inode *di = &h->di;
    xout_u32(b, 1);                    /* one file_stat */
    xout_u32(b, 0);                    /* all fields supported */
    xout_u32(b, 0);                    /* NDMP_FS_UNIX */
    xout_u32(b, file_type(di->mode));
    xout_u32(b, di->mtime_sec);
    xout_u32(b, di->atime_sec);
    xout_u32(b, di->ctime_sec);
    xout_u32(b, di->uid);
    xout_u32(b, di->gid);
    xout_u32(b, di->mode & 07777);
    xout_u64(b, di->size);
    xout_u32(b, (uint32_t)(di->nlink > 0 ? di->nlink : 1));
    xout_u64(b, h->ino);               /* node */
    xout_u64(b, f->blockno * DUMP_TP_BSIZE);  /* fh_info */
    if (++f->nnodes == BATCH)
        post_batch(s, NDMP_FH_ADD_NODE, b, &f->nnodes);
}

static void add_dir_entries(struct fh_parser *f, struct session *s)
{
    size_t pos = 0;
    struct dump_dirent e;
    int rc;
    while ((rc = dump_dir_next(f->dir, f->dir_len, &pos, &e)) == 1) {
        xout_u32(&f->dirs, 1);         /* one name */
        xout_u32(&f->dirs, 0);         /* NDMP_FS_UNIX */
        xout_string(&f->dirs, e.name);
        xout_u64(&f->dirs, e.ino);
        xout_u64(&f->dirs, f->dir_ino);
        if (++f->ndirs == BATCH)
            post_batch(s, NDMP_FH_ADD_DIR, &f->dirs, &f->ndirs);
    }
    f->in_dir = false;
    f->dir_len = 0;
}

uint32_t dump_data_blocks(const struct dump_header *h)
{
    if (h->type == TS_CLRI || h->type == TS_BITS)
        return h->count > 0 ? (uint32_t)h->count : 0;
    uint32_t n = 0;
    for (int32_t i = 0; i < h->count && i < DUMP_TP_NINDIR; i++)
        n += h->addr[i] != 0;
    return n;
}

static void header_block(struct fh_parser *f, struct session *s)
{
    struct dump_header h;
    if (dump_header_decode(f->blk, &h)) {
        f->broken = true;
        return;
    }
    f->data_left = dump_data_blocks(&h);
    bool xattr = (h.flags & DR_EXTATTRIBUTES) && h.extattributes;
    if (h.type == TS_END) {
        f->ended = true;
    } else if (h.type == TS_INODE && !xattr) {
        if (f->in_dir)
            add_dir_entries(f, s);    /* a directory shorter than its size */
        add_node(f, s, &h);
        if (f->map && !S_ISDIR(h.di.mode))
            restart_map_add(f->map, h.ino, f->blockno * DUMP_TP_BSIZE);
        if (S_ISDIR(h.di.mode) && h.di.size <= DIR_MAX) {
            f->in_dir = true;
            f->dir_ino = h.ino;
            f->dir_len = 0;
            f->dir_size = (size_t)h.di.size;
            if (!f->dir_size)
                add_dir_entries(f, s);
        }
    } else if (h.type == TS_INODE && f->in_dir) {
        add_dir_entries(f, s);
    }
    if (xattr)
        f->data_left |= 0x80000000u;  /* skip, whatever is being gathered */
}

static void data_block(struct fh_parser *f, struct session *s)
{
    bool skip = f->data_left & 0x80000000u;
    f->data_left = (f->data_left & 0x7fffffffu) - 1;
    if (f->data_left)
        f->data_left |= skip ? 0x80000000u : 0;
    if (skip || !f->in_dir)
        return;
    size_t take = f->dir_size - f->dir_len;
    if (take > DUMP_TP_BSIZE)
        take = DUMP_TP_BSIZE;
    uint8_t *d = realloc(f->dir, f->dir_len + take + 1);
    if (!d) {
        f->broken = true;
        return;
    }
    f->dir = d;
    memcpy(f->dir + f->dir_len, f->blk, take);
    f->dir_len += take;
    if (f->dir_len == f->dir_size)
        add_dir_entries(f, s);
}

void fh_feed(struct fh_parser *f, struct session *s, const uint8_t *p,
             size_t len)
{
    while (len && !f->broken && !f->ended) {
        size_t take = DUMP_TP_BSIZE - f->have;
        if (take > len)
            take = len;
        memcpy(f->blk + f->have, p, take);
        f->have += take;
        p += take;
        len -= take;
        if (f->have < DUMP_TP_BSIZE)
            return;
        if (f->data_left & 0x7fffffffu)
            data_block(f, s);
        else
            header_block(f, s);
        f->have = 0;
        f->blockno++;
    }
}
