/*
 * tapeio.c - the record layer of a dump: 1 KiB blocks gathered into
 * records of NTREC blocks on the way out, and split back into blocks on
 * the way in.
 *
 * Guarantees: the writer hands write(2) whole records only (a final
 * partial record is padded with zeros), so that on a tape drive every
 * write is exactly one tape record of NTREC KiB; on a file or a pipe short
 * writes are continued.  On a tape (exact_records) a short write is an
 * error (-ENOSPC: the end of the medium).  The first error is sticky: once
 * a write failed every later call returns it, so a caller that checks only
 * at the end still learns of it.  The reader accepts any read sizes (pipes
 * deliver what they have) and reads up to the largest record the format
 * allows, so one read(2) on a tape drive returns one whole record.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dumpfmt.h"

int dump_writer_init(struct dump_writer *w, int fd, int ntrec,
                     bool exact_records)
{
    memset(w, 0, sizeof(*w));
    w->fd = fd;
    w->ntrec = ntrec;
    w->exact_records = exact_records;
    w->rec = malloc((size_t)ntrec * DUMP_TP_BSIZE);
    return w->rec ? 0 : -ENOMEM;
}

static int write_record(struct dump_writer *w)
{
    size_t len = (size_t)w->ntrec * DUMP_TP_BSIZE, done = 0;
    while (done < len) {
        ssize_t n = write(w->fd, w->rec + done, len - done);
        if (n < 0 && errno == EINTR && w->stop && *w->stop)
            return -EINTR;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0 || (w->exact_records && (size_t)n != len))
            return -ENOSPC;
        done += (size_t)n;
        w->bytes_out += (size_t)n;
    }
    w->fill = 0;
    return 0;
}

int dump_write_block(struct dump_writer *w, const void *blk)
{
    if (w->error)
        return w->error;
    memcpy(w->rec + (size_t)w->fill * DUMP_TP_BSIZE, blk, DUMP_TP_BSIZE);
    w->fill++;
    w->blocks++;
    if (w->fill == w->ntrec)
        w->error = write_record(w);
    return w->error;
}

int dump_writer_room(const struct dump_writer *w)
{
    return w->ntrec - w->fill;
}

int dump_writer_flush(struct dump_writer *w)
{
    if (w->error || !w->fill)
        return w->error;
    memset(w->rec + (size_t)w->fill * DUMP_TP_BSIZE, 0,
           (size_t)(w->ntrec - w->fill) * DUMP_TP_BSIZE);
    w->error = write_record(w);
    return w->error;
}

void dump_writer_free(struct dump_writer *w)
{
    free(w->rec);
    w->rec = NULL;
}

int dump_reader_init(struct dump_reader *r, int fd, int ntrec)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    r->ntrec = ntrec;
    r->rec = malloc((size_t)DUMP_NTREC_MAX * DUMP_TP_BSIZE);
    return r->rec ? 0 : -ENOMEM;
}

int dump_read_block(struct dump_reader *r, uint8_t blk[DUMP_TP_BSIZE])
{
    size_t cap = (size_t)DUMP_NTREC_MAX * DUMP_TP_BSIZE;
    while (r->have - r->pos < DUMP_TP_BSIZE) {
        if (r->eof)
            return r->have == r->pos ? -ENODATA : -EIO;
        memmove(r->rec, r->rec + r->pos, r->have - r->pos);
        r->have -= r->pos;
        r->pos = 0;
        ssize_t n = read(r->fd, r->rec + r->have, cap - r->have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            r->eof = true;
        r->have += (size_t)n;
    }
    memcpy(blk, r->rec + r->pos, DUMP_TP_BSIZE);
    r->pos += DUMP_TP_BSIZE;
    r->block++;
    return 0;
}

void dump_reader_free(struct dump_reader *r)
{
    free(r->rec);
    r->rec = NULL;
}
