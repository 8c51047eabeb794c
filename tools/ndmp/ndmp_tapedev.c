/*
 * ndmp_tapedev.c - the TAPE service and the mover's record layer on a
 * Linux tape drive (serve --tape-device /dev/nstN), beside file tapes.
 *
 * THEORY.  The no-rewind device in variable block mode (MTSETBLK 0, set
 * at open) reads and writes one tape record per read(2) and write(2),
 * which is what TAPE_READ, TAPE_WRITE and the mover's records are.  The
 * MTIO operations are MTIOCTOP's; a count left over when an operation
 * stopped early (at a filemark, at the end of the data, at the beginning
 * of the tape) is MTIOCGET's mt_resid, and such an operation answers
 * NO_ERR with that residual count, as on file tapes.  Linux st reads a
 * filemark as a read of 0 bytes and leaves the head past it; NDMPv4
 * leaves it before, so a 0-byte read is followed by MTBSF 1 (back to the
 * filemark's beginning-of-tape side) and the DMA's FSF crosses it.  A
 * read past the recorded data fails (blank check: EIO, or ENOSPC): EOM.
 * The state is MTIOCGET's file and block numbers and write protection.
 *
 * The mover reads a drive in order: t->pos_off counts the bytes read or
 * written since the last positioning, the record last read is kept in
 * t->stage, and a read at an offset past it reads forward; an offset
 * behind it cannot be reached without positioning, which the mover does
 * not ask for, and fails (-ESPIPE: a media error for the mover).  So a
 * recover by position (DAR) works on a drive only as far as it reads
 * forward.  Closing a drive after writing makes st write a filemark, as
 * every drive does.
 *
 * Guarantees: only the devices given with --tape-device are opened, and
 * only when MTIOCGET says they are tape drives.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mtio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ndmp_int.h"

#define STAGE_BYTES (1u << 20)   /* the largest record read (TAPE_IO_MAX) */

static int mt_op(int fd, short op, int count)
{
    struct mtop o = { .mt_op = op, .mt_count = count };
    return ioctl(fd, MTIOCTOP, &o) ? -errno : 0;
}

uint32_t tapedev_open(struct tape_svc *t, const char *path, int mode)
{
    t->fd = open(path, (mode ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (t->fd < 0)
        return errno == EBUSY                      ? NDMP_DEVICE_BUSY_ERR
               : errno == ENOMEDIUM                ? NDMP_NO_TAPE_LOADED_ERR
               : errno == EACCES || errno == EROFS ? NDMP_WRITE_PROTECT_ERR
                                                   : NDMP_IO_ERR;
    struct stat sb;
    struct mtget g;
    if (fstat(t->fd, &sb) || !S_ISCHR(sb.st_mode) ||
        ioctl(t->fd, MTIOCGET, &g)) {
        tape_release(t);
        return NDMP_NO_DEVICE_ERR;      /* not a tape drive */
    }
    if (mt_op(t->fd, MTSETBLK, 0)) {    /* variable blocks: a record each */
        tape_release(t);
        return NDMP_IO_ERR;
    }
    t->dev = true;
    t->mode = mode;
    t->pos_off = t->stage_base = 0;
    t->stage_len = 0;
    return NDMP_NO_ERR;
}

static void new_position(struct tape_svc *t)
{
    t->pos_off = t->stage_base = 0;
    t->stage_len = 0;
}

uint32_t tapedev_mtio(struct tape_svc *t, uint32_t op, uint32_t count,
                      uint32_t *resid)
{
    static const short ops[] = { MTFSF, MTBSF, MTFSR, MTBSR, MTREW, MTWEOF,
                                 MTOFFL, MTNOP };
    *resid = 0;
    if (op >= sizeof(ops) / sizeof(ops[0]) || count > INT_MAX)
        return NDMP_ILLEGAL_ARGS_ERR;
    if (ops[op] == MTWEOF && t->mode == 0)
        return NDMP_PERMISSION_ERR;
    new_position(t);
    bool counted = ops[op] != MTREW && ops[op] != MTOFFL && ops[op] != MTNOP;
    if (counted && count == 0)
        return NDMP_NO_ERR;
    int rc = mt_op(t->fd, ops[op], counted ? (int)count : 1);
    if (!rc)
        return NDMP_NO_ERR;
    struct mtget g;
    if (counted && !ioctl(t->fd, MTIOCGET, &g) && g.mt_resid > 0) {
        *resid = (uint32_t)g.mt_resid;  /* stopped early: a filemark, an
                                         * end of the tape */
        return NDMP_NO_ERR;
    }
    return rc == -ENOSPC ? NDMP_EOM_ERR
           : rc == -EACCES || rc == -EROFS ? NDMP_WRITE_PROTECT_ERR
                                           : NDMP_IO_ERR;
}

void tapedev_state(const struct tape_svc *t, uint32_t *file_num,
                   uint32_t *blockno, bool *write_protected)
{
    struct mtget g;
    if (ioctl(t->fd, MTIOCGET, &g)) {
        *file_num = *blockno = UINT32_MAX;   /* unknown: NDMP's invalid */
        *write_protected = false;
        return;
    }
    *file_num = g.mt_fileno < 0 ? UINT32_MAX : (uint32_t)g.mt_fileno;
    *blockno = g.mt_blkno < 0 ? UINT32_MAX : (uint32_t)g.mt_blkno;
    *write_protected = GMT_WR_PROT(g.mt_gstat) != 0;
}

/* Read the next record into the stage: its length, 0 at a filemark (the
 * head put back before it), -ENOSPC at the end of the data, or -errno. */
static ssize_t read_record(struct tape_svc *t)
{
    if (!t->stage && !(t->stage = malloc(STAGE_BYTES)))
        return -ENOMEM;
    t->stage_base += t->stage_len;
    t->stage_len = 0;
    ssize_t n = read(t->fd, t->stage, STAGE_BYTES);
    if (n == 0) {
        mt_op(t->fd, MTBSF, 1);
        return 0;
    }
    if (n < 0)
        return errno == EIO ? -ENOSPC : -errno;  /* blank check: the end */
    t->stage_len = (size_t)n;
    t->pos_off = t->stage_base + (uint64_t)n;
    return n;
}

/* One record, of which COUNT bytes at most are returned: the record is
 * read whole into the stage (st refuses a read shorter than the record,
 * where NDMP returns its first COUNT bytes and passes the rest). */
uint32_t tapedev_read(struct tape_svc *t, uint8_t *buf, uint32_t count,
                      size_t *got)
{
    *got = 0;
    new_position(t);
    ssize_t n = read_record(t);
    new_position(t);
    if (n == 0)
        return NDMP_EOF_ERR;            /* the head put back before it */
    if (n < 0)
        return n == -ENOSPC ? NDMP_EOM_ERR
               : n == -ENOMEM ? NDMP_NO_MEM_ERR : NDMP_IO_ERR;
    *got = (size_t)n < count ? (size_t)n : count;
    memcpy(buf, t->stage, *got);
    return NDMP_NO_ERR;
}

int tapedev_write(struct tape_svc *t, const void *buf, size_t len)
{
    ssize_t n = write(t->fd, buf, len);
    if (n != (ssize_t)len)
        return n < 0 && errno != ENOSPC ? -errno : -ENOSPC;
    t->pos_off += len;
    return 0;
}

ssize_t tapedev_read_at(struct tape_svc *t, uint8_t *buf, size_t want,
                        uint64_t at)
{
    for (;;) {
        if (at < t->stage_base)
            return -ESPIPE;             /* behind the head */
        if (at < t->stage_base + t->stage_len) {
            size_t off = (size_t)(at - t->stage_base);
            size_t n = t->stage_len - off < want ? t->stage_len - off : want;
            memcpy(buf, t->stage + off, n);
            return (ssize_t)n;
        }
        ssize_t n = read_record(t);
        if (n <= 0)
            return n == -ENOSPC ? 0 : n;        /* the end, as a mark */
    }
}
