/*
 * ndmp_dar.c - direct access recovery: a selective recover that reads
 * from the tape only the dump's head (volume header, maps, directories)
 * and the named files, each from the position its file history gave
 * (fh_info: the byte offset of its TS_INODE header), instead of the whole
 * image.
 *
 * THEORY.  A dump is its head, then the files in inode order, each a
 * TS_INODE header and its data blocks, continued by TS_ADDR headers of
 * the same inode and followed by its attribute records (a TS_INODE of the
 * same inode with DR_EXTATTRIBUTES), then TS_END (tape/dumpfmt.c).  The
 * restore engine reads headers in order and needs no block numbers to be
 * consecutive, so the head, the segments of the named files and a
 * TS_END made from the volume header form a dump it restores the names
 * from.  The service asks the mover for the image in chunks
 * (NOTIFY_DATA_READ, offset and length): the head from offset 0 until
 * the first header of a file that is no directory; then each named file
 * from its offset until a header of another inode.  A chunk is always
 * read to its end (the mover sends what was asked) and what lies beyond
 * a segment is dropped.  A name whose offset lies inside the head is a
 * directory: its files are all over the image, so the recover then reads
 * the rest of the image whole.  The reader classifies blocks exactly as
 * ndmp_fh.c does (data blocks per header), and never buffers more than a
 * block.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dumpfmt.h"
#include "ndmp_dar.h"
#include "ndmp_fh.h"

#define CHUNK (256u * 1024)

enum { PHASE_HEAD, PHASE_FILES, PHASE_REST, PHASE_DONE };

struct dar {
    int phase;
    uint64_t *offsets;
    size_t n, next;
    uint64_t req_off, req_len, got;
    uint64_t head_end;          /* offset of the first file's header */
    uint8_t blk[DUMP_TP_BSIZE];
    size_t have;
    uint32_t data_left;         /* data blocks of the last header */
    bool forwarding;            /* the current header's blocks go out */
    bool segment_open;          /* a file's segment is being forwarded */
    bool segment_seen;          /* the requested file's header was met */
    uint32_t cur_ino;
    struct dump_header tape;    /* for the TS_END we add */
    bool have_tape;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct dar *dar_new(const uint64_t *offsets, size_t n)
{
    struct dar *d = calloc(1, sizeof(*d));
    if (!d || !(d->offsets = malloc((n ? n : 1) * sizeof(uint64_t)))) {
        free(d);
        return NULL;
    }
    memcpy(d->offsets, offsets, n * sizeof(uint64_t));
    qsort(d->offsets, n, sizeof(uint64_t), cmp_u64);
    for (size_t i = 0; i < n; i++)      /* unique */
        if (!d->n || d->offsets[d->n - 1] != d->offsets[i])
            d->offsets[d->n++] = d->offsets[i];
    d->req_len = CHUNK;                 /* the first read: the head */
    return d;
}

void dar_free(struct dar *d)
{
    if (d)
        free(d->offsets);
    free(d);
}

void dar_first_read(const struct dar *d, uint64_t *offset, uint64_t *length)
{
    *offset = d->req_off;
    *length = d->req_len;
}

bool dar_done(const struct dar *d)
{
    return d->phase == PHASE_DONE;
}

/* Is header H (at the block being read) forwarded? */
static bool take_header(struct dar *d, const struct dump_header *h,
                        uint64_t at)
{
    bool xattr = (h->flags & DR_EXTATTRIBUTES) && h->extattributes;
    if (h->type == TS_TAPE && !d->have_tape) {
        d->tape = *h;
        d->have_tape = true;
    }
    switch (d->phase) {
    case PHASE_HEAD:
        if (h->type == TS_INODE && !xattr && !S_ISDIR(h->di.mode)) {
            d->head_end = at;
            d->phase = PHASE_FILES;
            return false;
        }
        if (h->type == TS_END)
            d->phase = PHASE_DONE;
        return h->type != TS_END;
    case PHASE_REST:
        if (h->type == TS_END)
            d->phase = PHASE_DONE;
        return h->type != TS_END;
    case PHASE_FILES:
        if (!d->segment_open) {
            if (h->type != TS_INODE || xattr || at != d->req_off)
                return false;    /* not the header the history named */
            d->segment_open = d->segment_seen = true;
            d->cur_ino = h->ino;
            return true;
        }
        if (h->ino == d->cur_ino &&
            (h->type == TS_ADDR || (h->type == TS_INODE && xattr)))
            return true;
        d->segment_open = false; /* another inode: the segment ended */
        d->next++;
        return false;
    default:
        return false;
    }
}

static void block(struct dar *d, uint64_t at,
                  void (*emit)(void *arg, const uint8_t *p, size_t n),
                  void *arg)
{
    if (d->data_left) {
        d->data_left--;
        if (d->forwarding)
            emit(arg, d->blk, DUMP_TP_BSIZE);
        return;
    }
    struct dump_header h;
    if (dump_header_decode(d->blk, &h)) {
        d->forwarding = false;   /* not a header: the rest is dropped */
        return;
    }
    d->data_left = dump_data_blocks(&h);
    d->forwarding = take_header(d, &h, at);
    if (d->forwarding)
        emit(arg, d->blk, DUMP_TP_BSIZE);
}

void dar_feed(struct dar *d, const uint8_t *p, size_t len,
              void (*emit)(void *arg, const uint8_t *p, size_t n), void *arg)
{
    while (len) {
        size_t take = DUMP_TP_BSIZE - d->have;
        if (take > len)
            take = len;
        memcpy(d->blk + d->have, p, take);
        d->have += take;
        d->got += take;
        p += take;
        len -= take;
        if (d->have < DUMP_TP_BSIZE)
            continue;
        d->have = 0;
        uint64_t at = d->req_off + d->got - DUMP_TP_BSIZE;
        if (d->phase != PHASE_DONE)
            block(d, at, emit, arg);
    }
}

bool dar_next_read(struct dar *d, uint64_t *offset, uint64_t *length)
{
    if (d->got < d->req_len || d->phase == PHASE_DONE)
        return false;
    uint64_t end = d->req_off + d->req_len;
    d->got = 0;
    d->have = 0;
    if (d->phase == PHASE_HEAD || d->phase == PHASE_REST ||
        (d->phase == PHASE_FILES && d->segment_open)) {
        d->req_off = end;             /* the head, or a segment, goes on */
    } else {
        d->data_left = 0;
        d->forwarding = false;
        if (d->phase == PHASE_FILES && !d->segment_seen &&
            d->next < d->n && d->req_off == d->offsets[d->next])
            d->next++;                /* no file header there: skip it */
        d->segment_seen = false;
        if (d->next < d->n && d->offsets[d->next] < d->head_end) {
            d->phase = PHASE_REST;    /* a directory: the rest, whole */
            d->req_off = d->head_end;
        } else if (d->next < d->n) {
            d->req_off = d->offsets[d->next];
        } else {
            d->phase = PHASE_DONE;
            return false;
        }
    }
    d->req_len = CHUNK;
    *offset = d->req_off;
    *length = d->req_len;
    return true;
}

void dar_finish(struct dar *d,
                void (*emit)(void *arg, const uint8_t *p, size_t n),
                void *arg)
{
    d->phase = PHASE_DONE;
    if (!d->have_tape)
        return;
    struct dump_header end = d->tape;
    end.type = TS_END;
    end.ino = 0;
    end.count = 0;
    memset(end.addr, 0, sizeof(end.addr));
    uint8_t blk[DUMP_TP_BSIZE];
    dump_header_encode(&end, blk);
    emit(arg, blk, sizeof(blk));
}
