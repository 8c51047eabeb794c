/*
 * ndmp_tape.c - the TAPE service over file tapes: OPEN, CLOSE,
 * GET_STATE, MTIO, READ, WRITE, and the record layer the mover writes
 * and reads through.
 *
 * THEORY.  A file tape is a regular file in the server's tape directory
 * (--tape-dir) holding the bytes of its records one after the other, and
 * beside it a hidden file ".NAME.records" that keeps what a tape drive
 * keeps and a file cannot: the records' lengths and the filemarks, one
 * 64-bit entry each (length << 1, or 1 for a filemark), in order.  So
 * the tape's data is exactly the image as written — a dump written
 * through the mover is a dump file that `restore -f` reads — while
 * reads return one record at a time, a filemark stops reads (EOF, the
 * head left before it as NDMPv4 has it: FSF crosses it) and the
 * end of what was written is the end of the medium (EOM), and FSF, BSF,
 * FSR and BSR move over them as on a drive.  The head is an entry index
 * (and its data offset).  Writing a record or a filemark erases whatever
 * followed the head, as on tape.  A tape file found without its records
 * file (copied in) reads as records of 64 KiB and no filemarks.
 *
 * A tape drive given with --tape-device is worked by ndmp_tapedev.c;
 * the requests below check what is common and pass a drive on.
 *
 * Guarantees: tapes outside the tape directory (after symlinks are
 * resolved) and hidden names are refused; the records file is updated
 * with each record written, after its data, so a crash loses at most
 * the entries of records that a DMA was never told were written; the
 * tape is never touched while the mover uses it (DEVICE_BUSY).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ndmp_int.h"

#define TAPE_IO_MAX (1u << 20)
#define LEGACY_RECORD 65536

enum { MTIO_FSF = 0, MTIO_BSF = 1, MTIO_FSR = 2, MTIO_BSR = 3, MTIO_REW = 4,
       MTIO_EOF = 5, MTIO_OFF = 6, MTIO_TUR = 7 };
#define TAPE_STATE_WR_PROT 0x0010
/* unsupported: soft errors, block size, total space, space remaining */
#define TAPE_UNS (0x2 | 0x4 | 0x10 | 0x20)

static bool is_mark(uint64_t e)
{
    return e & 1;
}

static uint64_t rec_len(uint64_t e)
{
    return e >> 1;
}

/* ---- the records file ---- */

static int records_path(const char *tape, char *out, size_t cap)
{
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof(a), "%s", tape);
    snprintf(b, sizeof(b), "%s", tape);
    int n = snprintf(out, cap, "%s/.%s.records", dirname(a), basename(b));
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int grow(struct tape_svc *t, size_t need)
{
    if (need <= t->cap)
        return 0;
    size_t cap = t->cap ? t->cap : 1024;
    while (cap < need)
        cap *= 2;
    uint64_t *e = realloc(t->ent, cap * sizeof(*e));
    if (!e)
        return -ENOMEM;
    t->ent = e;
    t->cap = cap;
    return 0;
}

/* The entries of the records file, or records of 64 KiB over the data. */
static int load_records(struct tape_svc *t)
{
    struct stat ds, is;
    if (fstat(t->fd, &ds) || fstat(t->idx, &is))
        return -errno;
    size_t n = (size_t)is.st_size / sizeof(uint64_t);
    int rc = grow(t, n + 1);
    if (rc)
        return rc;
    if (n && pread(t->idx, t->ent, n * sizeof(uint64_t), 0) !=
                 (ssize_t)(n * sizeof(uint64_t)))
        return -EIO;
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += rec_len(t->ent[i]);
    t->nent = n;
    if (sum == (uint64_t)ds.st_size)
        return 0;
    /* no records file (or one of other data): 64 KiB records */
    t->nent = 0;
    for (uint64_t off = 0; off < (uint64_t)ds.st_size; off += LEGACY_RECORD) {
        uint64_t len = (uint64_t)ds.st_size - off;
        if ((rc = grow(t, t->nent + 1)))
            return rc;
        t->ent[t->nent++] = (len < LEGACY_RECORD ? len : LEGACY_RECORD) << 1;
    }
    return 0;
}

/* Erase what follows the head (writing on a tape does). */
static int cut_at_head(struct tape_svc *t)
{
    t->nent = t->pos;
    if (ftruncate(t->fd, (off_t)t->pos_off) ||
        ftruncate(t->idx, (off_t)(t->nent * sizeof(uint64_t))))
        return -errno;
    return 0;
}

static int append_entry(struct tape_svc *t, uint64_t e)
{
    int rc = grow(t, t->nent + 1);
    if (rc)
        return rc;
    if (pwrite(t->idx, &e, sizeof(e), (off_t)(t->nent * sizeof(e))) !=
        (ssize_t)sizeof(e))
        return -EIO;
    t->ent[t->nent++] = e;
    t->pos = t->nent;
    t->pos_off += rec_len(e);
    return 0;
}

int tape_write_record(struct tape_svc *t, const void *buf, size_t len)
{
    if (t->dev)
        return tapedev_write(t, buf, len);
    int rc = cut_at_head(t);
    if (rc)
        return rc;
    ssize_t n = pwrite(t->fd, buf, len, (off_t)t->pos_off);
    if (n != (ssize_t)len)
        return n < 0 ? -errno : -ENOSPC;
    return append_entry(t, (uint64_t)len << 1);
}

uint64_t tape_file_end(const struct tape_svc *t)
{
    if (t->dev)
        return UINT64_MAX;      /* a drive says so when the mover reads */
    uint64_t off = t->pos_off;
    for (size_t i = t->pos; i < t->nent && !is_mark(t->ent[i]); i++)
        off += rec_len(t->ent[i]);
    return off;
}

ssize_t tape_read_at(struct tape_svc *t, void *buf, size_t n, uint64_t at)
{
    if (t->dev)
        return tapedev_read_at(t, buf, n, at);
    ssize_t got = pread(t->fd, buf, n, (off_t)at);
    return got < 0 ? -errno : got;
}

int tape_sync(struct tape_svc *t)
{
    if (t->dev)
        return 0;               /* st writes each record as it is given */
    return fsync(t->fd) || fsync(t->idx) ? -errno : 0;
}

/* ---- TAPE requests ---- */

static uint32_t reply_error(struct xdr_out *out, uint32_t err)
{
    xout_u32(out, err);
    return NDMP_NO_ERR;
}

/* DEVICE one of the drives given with --tape-device? */
static bool is_tape_device(const struct session *s, const char *device)
{
    char real[PATH_MAX];
    if (!realpath(device, real))
        return false;
    for (int i = 0; i < s->o->ntape_devices; i++)
        if (!strcmp(real, s->o->tape_devices[i]))
            return true;
    return false;
}

/* DEVICE resolved inside the tape directory, into OUT. */
static uint32_t tape_resolve(struct session *s, const char *device,
                             char *out)
{
    char dir[PATH_MAX];
    if (!s->o->tape_dir || !realpath(s->o->tape_dir, dir))
        return NDMP_NO_DEVICE_ERR;
    char joined[2 * PATH_MAX];
    if (device[0] == '/')
        snprintf(joined, sizeof(joined), "%s", device);
    else
        snprintf(joined, sizeof(joined), "%s/%s", dir, device);
    if (!realpath(joined, out))
        return NDMP_NO_DEVICE_ERR;
    size_t n = strlen(dir);
    if (strncmp(out, dir, n) || out[n] != '/')
        return NDMP_PERMISSION_ERR;
    struct stat sb;
    if (out[n + 1] == '.' || stat(out, &sb) || !S_ISREG(sb.st_mode))
        return NDMP_NO_DEVICE_ERR;
    return NDMP_NO_ERR;
}

static uint32_t open_files(struct tape_svc *t, const char *path, int mode)
{
    char rpath[PATH_MAX];
    int flags = (mode ? O_RDWR : O_RDONLY) | O_CLOEXEC;
    t->fd = open(path, flags);
    if (t->fd < 0)
        return errno == EACCES || errno == EROFS ? NDMP_WRITE_PROTECT_ERR
                                                 : NDMP_IO_ERR;
    if (records_path(path, rpath, sizeof(rpath)) ||
        (t->idx = open(rpath, flags | O_CREAT, 0600)) < 0)
        t->idx = open(rpath, O_RDONLY | O_CLOEXEC);
    if (t->idx < 0 && !mode)
        t->idx = open("/dev/null", O_RDONLY | O_CLOEXEC);  /* read-only
                        * tape without records: 64 KiB records */
    if (t->idx < 0 || load_records(t)) {
        tape_release(t);
        return NDMP_IO_ERR;
    }
    t->mode = mode;
    t->pos = 0;
    t->pos_off = 0;
    return NDMP_NO_ERR;
}

uint32_t tape_open(struct session *s, struct xdr_in *x, struct xdr_out *out)
{
    char *device = xin_string(x, PATH_MAX);
    uint32_t mode = xin_u32(x);
    if (x->bad) {
        free(device);
        return NDMP_XDR_DECODE_ERR;
    }
    char path[PATH_MAX];
    bool drive = device[0] == '/' && is_tape_device(s, device);
    uint32_t err = s->tape.fd >= 0 ? NDMP_DEVICE_OPENED_ERR
                   : mode > 2      ? NDMP_ILLEGAL_ARGS_ERR
                   : drive         ? (realpath(device, path) ? NDMP_NO_ERR
                                                             : NDMP_NO_DEVICE_ERR)
                                   : tape_resolve(s, device, path);
    if (!err)
        err = drive ? tapedev_open(&s->tape, path, (int)mode)
                    : open_files(&s->tape, path, (int)mode);
    if (!err)
        snprintf(s->tape.path, sizeof(s->tape.path), "%s", path);
    if (!err)
        ndmp_log(s->o->log_fd, "%s: tape %s opened %s", s->peer, path,
                 mode ? "read-write" : "read-only");
    else if (err != NDMP_DEVICE_OPENED_ERR && err != NDMP_ILLEGAL_ARGS_ERR)
        ndmp_log(s->o->log_fd, "%s: tape '%s' refused: %s", s->peer, device,
                 drive && err == NDMP_NO_DEVICE_ERR ? "not a tape drive"
                 : drive && err == NDMP_DEVICE_BUSY_ERR ? "the drive is busy"
                 : err == NDMP_NO_TAPE_LOADED_ERR ? "no tape in the drive"
                 : err == NDMP_PERMISSION_ERR ? "outside the tape directory"
                 : err == NDMP_WRITE_PROTECT_ERR ? "write-protected"
                 : err == NDMP_IO_ERR            ? "cannot be opened"
                 : s->o->tape_dir ? "no such file tape"
                                  : "no --tape-dir was given to serve");
    free(device);
    return reply_error(out, err);
}

void tape_release(struct tape_svc *t)
{
    if (t->fd >= 0)
        close(t->fd);
    if (t->idx >= 0)
        close(t->idx);
    free(t->ent);
    t->ent = NULL;
    t->nent = t->cap = 0;
    t->fd = t->idx = -1;
    free(t->stage);
    t->stage = NULL;
    t->stage_len = 0;
    t->dev = false;
}

static bool mover_uses_tape(const struct session *s)
{
    return s->mover.state == MOVER_ACTIVE || s->mover.state == MOVER_PAUSED ||
           s->mover.state == MOVER_LISTEN;
}

/* The tape may be used by a TAPE request now: 0 or the error. */
static uint32_t tape_usable(const struct session *s)
{
    if (s->tape.fd < 0)
        return NDMP_DEV_NOT_OPEN_ERR;
    return mover_uses_tape(s) ? NDMP_DEVICE_BUSY_ERR : NDMP_NO_ERR;
}

uint32_t tape_close(struct session *s, struct xdr_in *x, struct xdr_out *out)
{
    uint32_t err = tape_usable(s);
    if (!err) {
        if (s->tape.mode && tape_sync(&s->tape))
            err = NDMP_IO_ERR;
        tape_release(&s->tape);
    }
    return reply_error(out, err);
}

uint32_t tape_get_state(struct session *s, struct xdr_in *x,
                        struct xdr_out *out)
{
    const struct tape_svc *t = &s->tape;
    uint32_t file_num = 0, blockno = 0;
    bool protect = t->mode == 0;
    if (t->fd >= 0 && t->dev) {
        bool medium_protect;
        tapedev_state(t, &file_num, &blockno, &medium_protect);
        protect = protect || medium_protect;
    }
    for (size_t i = 0; t->fd >= 0 && !t->dev && i < t->pos; i++) {
        if (is_mark(t->ent[i])) {
            file_num++;
            blockno = 0;
        } else {
            blockno++;
        }
    }
    xout_u32(out, TAPE_UNS);
    xout_u32(out, t->fd < 0 ? NDMP_DEV_NOT_OPEN_ERR : NDMP_NO_ERR);
    xout_u32(out, protect ? TAPE_STATE_WR_PROT : 0);
    xout_u32(out, file_num);
    xout_u32(out, 0);
    xout_u32(out, 0);
    xout_u32(out, blockno);
    xout_u64(out, 0);
    xout_u64(out, 0);
    return NDMP_NO_ERR;
}

/* Move the head over COUNT records (FORWARD or back), stopping at a
 * filemark; the records not crossed. */
static uint32_t space_records(struct tape_svc *t, uint32_t count,
                              bool forward)
{
    while (count && forward && t->pos < t->nent && !is_mark(t->ent[t->pos])) {
        t->pos_off += rec_len(t->ent[t->pos++]);
        count--;
    }
    while (count && !forward && t->pos > 0 && !is_mark(t->ent[t->pos - 1])) {
        t->pos_off -= rec_len(t->ent[--t->pos]);
        count--;
    }
    return count;
}

/* Move the head past COUNT filemarks (back: to their beginning-of-tape
 * side); the filemarks not crossed. */
static uint32_t space_files(struct tape_svc *t, uint32_t count, bool forward)
{
    while (count && forward && t->pos < t->nent) {
        uint64_t e = t->ent[t->pos++];
        t->pos_off += rec_len(e);
        count -= is_mark(e);
    }
    while (count && !forward && t->pos > 0) {
        uint64_t e = t->ent[--t->pos];
        t->pos_off -= rec_len(e);
        count -= is_mark(e);
    }
    return count;
}

static uint32_t write_marks(struct tape_svc *t, uint32_t count)
{
    if (t->mode == 0)
        return NDMP_PERMISSION_ERR;
    if (cut_at_head(t))
        return NDMP_IO_ERR;
    for (uint32_t i = 0; i < count; i++)
        if (append_entry(t, 1))
            return NDMP_IO_ERR;
    return NDMP_NO_ERR;
}

uint32_t tape_mtio(struct session *s, struct xdr_in *x, struct xdr_out *out)
{
    uint32_t op = xin_u32(x), count = xin_u32(x);
    if (x->bad)
        return NDMP_XDR_DECODE_ERR;
    struct tape_svc *t = &s->tape;
    uint32_t err = tape_usable(s), resid = 0;
    if (!err && t->dev)
        err = tapedev_mtio(t, op, count, &resid);
    else if (!err) {
        switch (op) {
        case MTIO_FSF: resid = space_files(t, count, true); break;
        case MTIO_BSF: resid = space_files(t, count, false); break;
        case MTIO_FSR: resid = space_records(t, count, true); break;
        case MTIO_BSR: resid = space_records(t, count, false); break;
        case MTIO_REW:
        case MTIO_OFF: t->pos = 0; t->pos_off = 0; break;
        case MTIO_EOF: err = write_marks(t, count); break;
        case MTIO_TUR: break;
        default: err = NDMP_ILLEGAL_ARGS_ERR;
        }
    }
    xout_u32(out, err);
    xout_u32(out, resid);
    return NDMP_NO_ERR;
}

uint32_t tape_write(struct session *s, struct xdr_in *x, struct xdr_out *out)
{
    size_t len;
    const uint8_t *data = xin_opaque(x, TAPE_IO_MAX, &len);
    if (x->bad)
        return NDMP_XDR_DECODE_ERR;
    uint32_t err = tape_usable(s), count = 0;
    if (!err && s->tape.mode == 0)
        err = NDMP_PERMISSION_ERR;
    if (!err && len) {
        int rc = tape_write_record(&s->tape, data, len);
        if (rc)
            err = rc == -ENOSPC ? NDMP_EOM_ERR : NDMP_IO_ERR;
        else
            count = (uint32_t)len;
    }
    xout_u32(out, err);
    xout_u32(out, count);
    return NDMP_NO_ERR;
}

uint32_t tape_read(struct session *s, struct xdr_in *x, struct xdr_out *out)
{
    uint32_t count = xin_u32(x);
    if (x->bad)
        return NDMP_XDR_DECODE_ERR;
    struct tape_svc *t = &s->tape;
    uint32_t err = tape_usable(s);
    uint8_t *buf = NULL;
    size_t n = 0;
    if (!err && count > TAPE_IO_MAX)
        err = NDMP_ILLEGAL_ARGS_ERR;
    else if (!err && count && t->dev) {
        if (!(buf = malloc(count)))
            err = NDMP_NO_MEM_ERR;
        else
            err = tapedev_read(t, buf, count, &n);
    } else if (!err && count && t->pos == t->nent)
        err = NDMP_EOM_ERR;
    else if (!err && count && is_mark(t->ent[t->pos]))
        err = NDMP_EOF_ERR;     /* the head stays before the filemark
                                 * (NDMPv4): FSF crosses it */
    else if (!err && count) {
        uint64_t len = rec_len(t->ent[t->pos]);
        n = len < count ? (size_t)len : count;
        if (!(buf = malloc(n ? n : 1)))
            err = NDMP_NO_MEM_ERR;
        else if (pread(t->fd, buf, n, (off_t)t->pos_off) != (ssize_t)n)
            err = NDMP_IO_ERR;
        else {
            t->pos_off += len;  /* the rest of the record is passed */
            t->pos++;
        }
    }
    xout_u32(out, err);
    xout_opaque(out, buf, err ? 0 : n);
    free(buf);
    return NDMP_NO_ERR;
}
