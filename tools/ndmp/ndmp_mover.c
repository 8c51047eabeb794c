/*
 * ndmp_mover.c - the MOVER: it moves a data connection's bytes to and
 * from the open file tape (ndmp_tape.c).
 *
 * THEORY.  In READ mode (a backup: data connection -> tape) the mover
 * gathers what arrives into records of record_size and writes each at
 * the head as one tape record; the last, partial record is padded with
 * zeros, as a drive's fixed records are.  In WRITE mode (a recover: tape
 * -> data connection) it waits for MOVER_READ(offset, length) and sends
 * that part of the image; offsets are positions in the data stream,
 * window_offset being where the head was when the window was set; at
 * the end of the tape file (a filemark or the end of the medium) it
 * pauses (EOF) so that the DMA can close it or change tapes.  The window
 * bounds both directions (a write past it pauses with EOW, a read
 * outside it pauses with SEEK).
 *
 * Writing, the mover starts the disk's writeback of each 8 MiB it wrote
 * (sync_file_range, without waiting), and at the end of the data syncs
 * the tape (fsync of the data and of its records file) before it posts
 * NOTIFY_MOVER_HALTED: the image is durable when the mover says it is
 * done, and the sync finds little left to write.  For a LOCAL backup the
 * data service has the mover finish at once when the dump ends
 * (mover_finish_local), so that the mover halts before the data service.
 *
 * Guarantees: a state change the DMA did not ask for (halted, paused) is
 * posted to it (NOTIFY_MOVER_HALTED/PAUSED); arguments are checked before
 * state and tape; the connections are closed when the session ends.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ndmp_int.h"

#define RECORD_SIZE_DEFAULT 10240
#define RECORD_SIZE_MAX (1u << 20)
#define TAKE_RECORDS 16
#define WRITEBACK_BYTES (8u << 20)


void mover_init(struct mover_svc *m, struct tape_svc *t)
{
    memset(m, 0, sizeof(*m));
    m->mode = MOVER_MODE_NOACTION;
    m->listen_fd = m->conn_fd = -1;
    m->record_size = RECORD_SIZE_DEFAULT;
    m->window_length = NDMP_LENGTH_INFINITY;
    memset(t, 0, sizeof(*t));
    t->fd = t->idx = -1;
}

static uint32_t reply_error(struct xdr_out *out, uint32_t err)
{
    xout_u32(out, err);
    return NDMP_NO_ERR;
}

/* ---- MOVER ---- */

static void notify_halted(struct session *s, int reason)
{
    struct mover_svc *m = &s->mover;
    if (m->conn_fd >= 0)
        close(m->conn_fd);
    if (m->listen_fd >= 0)
        close(m->listen_fd);
    m->conn_fd = m->listen_fd = -1;
    m->state = MOVER_HALTED;
    m->halt_reason = reason;
    struct xdr_out b = { 0 };
    xout_u32(&b, (uint32_t)reason);
    ndmp_post(s, NDMP_NOTIFY_MOVER_HALTED, &b);
    xout_free(&b);
}

static void notify_paused(struct session *s, int reason)
{
    struct mover_svc *m = &s->mover;
    m->state = MOVER_PAUSED;
    m->pause_reason = reason;
    struct xdr_out b = { 0 };
    xout_u32(&b, (uint32_t)reason);
    xout_u64(&b, m->seek_position);
    ndmp_post(s, NDMP_NOTIFY_MOVER_PAUSED, &b);
    xout_free(&b);
}

uint32_t mover_get_state(struct session *s, struct xdr_in *x,
                         struct xdr_out *out)
{
    const struct mover_svc *m = &s->mover;
    xout_u32(out, NDMP_NO_ERR);
    xout_u32(out, (uint32_t)m->mode);
    xout_u32(out, (uint32_t)m->state);
    xout_u32(out, (uint32_t)m->pause_reason);
    xout_u32(out, (uint32_t)m->halt_reason);
    xout_u32(out, m->record_size);
    xout_u32(out, m->record_num);
    xout_u64(out, m->bytes_moved);
    xout_u64(out, m->seek_position);
    xout_u64(out, m->bytes_left_to_read);
    xout_u64(out, m->window_offset);
    xout_u64(out, m->window_length);
    ndmp_put_addr(out, &m->addr);
    return NDMP_NO_ERR;
}

uint32_t mover_set_record_size(struct session *s, struct xdr_in *x,
                               struct xdr_out *out)
{
    uint32_t len = xin_u32(x);
    if (x->bad)
        return NDMP_XDR_DECODE_ERR;
    if (s->mover.state != MOVER_IDLE)
        return reply_error(out, NDMP_ILLEGAL_STATE_ERR);
    if (len < 512 || len > RECORD_SIZE_MAX || len % 512)
        return reply_error(out, NDMP_ILLEGAL_ARGS_ERR);
    s->mover.record_size = len;
    return reply_error(out, NDMP_NO_ERR);
}

uint32_t mover_set_window(struct session *s, struct xdr_in *x,
                          struct xdr_out *out)
{
    uint64_t offset = xin_u64(x), length = xin_u64(x);
    if (x->bad)
        return NDMP_XDR_DECODE_ERR;
    struct mover_svc *m = &s->mover;
    if (m->state != MOVER_IDLE && m->state != MOVER_PAUSED)
        return reply_error(out, NDMP_ILLEGAL_STATE_ERR);
    if (length != NDMP_LENGTH_INFINITY && offset + length < offset)
        return reply_error(out, NDMP_ILLEGAL_ARGS_ERR);
    m->window_offset = offset;
    m->window_length = length;
    m->tape_base = s->tape.pos_off;
    return reply_error(out, NDMP_NO_ERR);
}

/* What a mover needs before it starts in MODE. */
static uint32_t mover_ready(struct session *s, uint32_t mode)
{
    if (mode != MOVER_MODE_READ && mode != MOVER_MODE_WRITE)
        return NDMP_ILLEGAL_ARGS_ERR;
    if (s->mover.state != MOVER_IDLE)
        return NDMP_ILLEGAL_STATE_ERR;
    if (s->tape.fd < 0)
        return NDMP_DEV_NOT_OPEN_ERR;
    if (mode == MOVER_MODE_READ && s->tape.mode == 0)
        return NDMP_PERMISSION_ERR;
    return NDMP_NO_ERR;
}

static int mover_start(struct session *s, uint32_t mode)
{
    struct mover_svc *m = &s->mover;
    free(m->rec);
    m->rec = malloc(m->record_size);
    free(m->pump.buf);
    m->pump.buf = malloc(PUMP_BYTES);
    if (!m->rec || !m->pump.buf)
        return -ENOMEM;
    m->mode = (int)mode;
    m->rec_fill = 0;
    m->unsynced = 0;
    m->pump.head = m->pump.tail = 0;
    m->bytes_moved = m->record_num = 0;
    m->bytes_left_to_read = 0;
    m->seek_position = m->window_offset;
    m->pause_reason = MOVER_PAUSE_NA;
    m->halt_reason = MOVER_HALT_NA;
    m->file_end = tape_file_end(&s->tape);
    return 0;
}

uint32_t mover_listen(struct session *s, struct xdr_in *x,
                      struct xdr_out *out)
{
    uint32_t mode = xin_u32(x), type = xin_u32(x);
    if (x->bad)
        return NDMP_XDR_DECODE_ERR;
    struct mover_svc *m = &s->mover;
    uint32_t err = type != NDMP_ADDR_LOCAL && type != NDMP_ADDR_TCP
                       ? NDMP_ILLEGAL_ARGS_ERR : mover_ready(s, mode);
    if (!err && mover_start(s, mode))
        err = NDMP_NO_MEM_ERR;
    if (!err && type == NDMP_ADDR_TCP) {
        int fd = ndmp_tcp_listen(s, &m->addr);
        if (fd < 0)
            err = fd == -EAFNOSUPPORT ? NDMP_NOT_SUPPORTED_ERR
                                      : NDMP_CONNECT_ERR;
        else
            m->listen_fd = fd;
    } else if (!err) {
        m->addr = (struct ndmp_addr){ .type = NDMP_ADDR_LOCAL };
    }
    if (!err)
        m->state = MOVER_LISTEN;
    xout_u32(out, err);
    /* an error's address: a valid union arm, so that the reply decodes */
    static const struct ndmp_addr none = { .type = NDMP_ADDR_LOCAL };
    ndmp_put_addr(out, err ? &none : &m->addr);
    return NDMP_NO_ERR;
}

bool mover_local_listening(const struct session *s)
{
    return s->mover.state == MOVER_LISTEN &&
           s->mover.addr.type == NDMP_ADDR_LOCAL;
}

int mover_local_connect(struct session *s)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
        return -errno;
    s->mover.conn_fd = sp[1];
    s->mover.state = MOVER_ACTIVE;
    return sp[0];
}

uint32_t mover_connect(struct session *s, struct xdr_in *x,
                       struct xdr_out *out)
{
    uint32_t mode = xin_u32(x);
    struct ndmp_addr a;
    if (ndmp_get_addr(x, &a) == -EBADMSG || x->bad)
        return NDMP_XDR_DECODE_ERR;
    uint32_t err = mover_ready(s, mode);
    if (!err && a.type == NDMP_ADDR_LOCAL && !data_local_listening(s))
        err = NDMP_ILLEGAL_STATE_ERR;
    if (!err && mover_start(s, mode))
        err = NDMP_NO_MEM_ERR;
    if (!err && a.type == NDMP_ADDR_LOCAL) {
        int fd = mover_local_connect(s);
        if (fd < 0)
            err = NDMP_CONNECT_ERR;
        else {
            s->mover.addr = a;
            data_local_accept(s, fd);
        }
    } else if (!err) {
        int fd = ndmp_tcp_connect(&a);
        if (fd < 0) {
            err = NDMP_CONNECT_ERR;
        } else {
            s->mover.conn_fd = fd;
            s->mover.addr = a;
            s->mover.state = MOVER_ACTIVE;
        }
    }
    return reply_error(out, err);
}

uint32_t mover_read(struct session *s, struct xdr_in *x, struct xdr_out *out)
{
    uint64_t offset = xin_u64(x), length = xin_u64(x);
    if (x->bad)
        return NDMP_XDR_DECODE_ERR;
    struct mover_svc *m = &s->mover;
    if (m->state != MOVER_ACTIVE || m->mode != MOVER_MODE_WRITE)
        return reply_error(out, NDMP_ILLEGAL_STATE_ERR);
    if (m->bytes_left_to_read)
        return reply_error(out, NDMP_READ_IN_PROGRESS_ERR);
    m->seek_position = offset;
    m->bytes_left_to_read = length;
    m->pump.head = m->pump.tail = 0;
    uint64_t end = m->window_length == NDMP_LENGTH_INFINITY
                       ? UINT64_MAX : m->window_offset + m->window_length;
    if (offset < m->window_offset || offset >= end)
        notify_paused(s, MOVER_PAUSE_SEEK);
    return reply_error(out, NDMP_NO_ERR);
}

uint32_t mover_continue(struct session *s, struct xdr_in *x,
                        struct xdr_out *out)
{
    if (s->mover.state != MOVER_PAUSED)
        return reply_error(out, NDMP_ILLEGAL_STATE_ERR);
    s->mover.state = MOVER_ACTIVE;
    s->mover.pause_reason = MOVER_PAUSE_NA;
    return reply_error(out, NDMP_NO_ERR);
}

uint32_t mover_abort(struct session *s, struct xdr_in *x,
                     struct xdr_out *out)
{
    int st = s->mover.state;
    if (st == MOVER_IDLE || st == MOVER_HALTED)
        return reply_error(out, NDMP_ILLEGAL_STATE_ERR);
    notify_halted(s, MOVER_HALT_ABORTED);
    return reply_error(out, NDMP_NO_ERR);
}

uint32_t mover_close(struct session *s, struct xdr_in *x,
                     struct xdr_out *out)
{
    if (s->mover.state != MOVER_PAUSED && s->mover.state != MOVER_ACTIVE)
        return reply_error(out, NDMP_ILLEGAL_STATE_ERR);
    notify_halted(s, MOVER_HALT_CONNECT_CLOSED);
    return reply_error(out, NDMP_NO_ERR);
}

uint32_t mover_stop(struct session *s, struct xdr_in *x, struct xdr_out *out)
{
    struct mover_svc *m = &s->mover;
    if (m->state != MOVER_HALTED)
        return reply_error(out, NDMP_ILLEGAL_STATE_ERR);
    m->state = MOVER_IDLE;
    m->mode = MOVER_MODE_NOACTION;
    m->pause_reason = MOVER_PAUSE_NA;
    m->halt_reason = MOVER_HALT_NA;
    m->addr = (struct ndmp_addr){ 0 };
    return reply_error(out, NDMP_NO_ERR);
}

/* ---- moving bytes ---- */

/* Write the full (or, at the end, padded) record at the head. */
static int write_record(struct session *s)
{
    struct mover_svc *m = &s->mover;
    uint64_t end = m->window_length == NDMP_LENGTH_INFINITY
                       ? UINT64_MAX : m->window_offset + m->window_length;
    if (m->window_offset + m->bytes_moved + m->record_size > end) {
        notify_paused(s, MOVER_PAUSE_EOW);
        return -ENOSPC;
    }
    memset(m->rec + m->rec_fill, 0, m->record_size - m->rec_fill);
    int rc = tape_write_record(&s->tape, m->rec, m->record_size);
    if (rc) {
        if (rc == -ENOSPC)
            notify_paused(s, MOVER_PAUSE_EOM);
        else
            notify_halted(s, MOVER_HALT_MEDIA_ERROR);
        return -EIO;
    }
    m->bytes_moved += m->rec_fill;
    m->record_num++;
    m->rec_fill = 0;
    m->unsynced += m->record_size;
    if (m->unsynced >= WRITEBACK_BYTES) {
        /* the disk writes what the backup wrote so far while it goes on,
         * and the sync at its end finds little left to write (the tape
         * may have been changed at a pause: not before its start) */
        uint64_t head = s->tape.pos_off;
        uint64_t from = head > m->unsynced ? head - m->unsynced : 0;
        sync_file_range(s->tape.fd, (off_t)from, (off_t)(head - from),
                        SYNC_FILE_RANGE_WRITE);
        m->unsynced = 0;
    }
    return 0;
}

/* READ mode: one record's worth from the data connection; false when
 * nothing more is there now (or the connection ended). */
static bool mover_take_one(struct session *s)
{
    struct mover_svc *m = &s->mover;
    if (m->rec_fill == m->record_size && write_record(s))
        return false;              /* a record held over a pause */
    ssize_t n = recv(m->conn_fd, m->rec + m->rec_fill,
                     m->record_size - m->rec_fill, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return false;
    if (n <= 0) {
        if (m->rec_fill && write_record(s))
            return false;
        if (!tape_sync(&s->tape))
            notify_halted(s, n == 0 ? MOVER_HALT_CONNECT_CLOSED
                                    : MOVER_HALT_CONNECT_ERROR);
        else
            notify_halted(s, MOVER_HALT_MEDIA_ERROR);
        return false;
    }
    m->rec_fill += (size_t)n;
    if (m->rec_fill == m->record_size)
        return write_record(s) == 0;
    return true;
}

/* READ mode: the data connection has bytes (or ended): take what is
 * there, up to TAKE_RECORDS records, before polling again. */
static void mover_take(struct session *s)
{
    for (int i = 0; i < TAKE_RECORDS && s->mover.state == MOVER_ACTIVE &&
                    s->mover.conn_fd >= 0; i++)
        if (!mover_take_one(s))
            return;
}

void mover_finish_local(struct session *s)
{
    /* every writer of the connection is gone, so what is left is in its
     * buffer and the reads end at its end: no wait */
    struct mover_svc *m = &s->mover;
    while (m->state == MOVER_ACTIVE && m->mode == MOVER_MODE_READ &&
           m->conn_fd >= 0 && mover_take_one(s))
        ;
}

/* WRITE mode: the data connection can take bytes. */
static void mover_give(struct session *s)
{
    struct mover_svc *m = &s->mover;
    struct pump *p = &m->pump;
    if (p->head == p->tail && m->bytes_left_to_read) {
        uint64_t want = m->bytes_left_to_read < PUMP_BYTES
                            ? m->bytes_left_to_read : PUMP_BYTES;
        uint64_t at = m->tape_base + (m->seek_position - m->window_offset);
        if (at >= m->file_end)
            want = 0;             /* a filemark or the end: EOF */
        else if (want > m->file_end - at)
            want = m->file_end - at;
        ssize_t n = want ? tape_read_at(&s->tape, p->buf, (size_t)want, at)
                         : 0;
        if (n < 0) {
            notify_halted(s, MOVER_HALT_MEDIA_ERROR);
            return;
        }
        if (n == 0) {
            notify_paused(s, MOVER_PAUSE_EOF);
            return;
        }
        p->head = 0;
        p->tail = (size_t)n;
        m->seek_position += (uint64_t)n;
        m->bytes_left_to_read -= (uint64_t)n;
    }
    if (p->head == p->tail)
        return;
    ssize_t n = send(m->conn_fd, p->buf + p->head, p->tail - p->head,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0) {
        notify_halted(s, MOVER_HALT_CONNECT_CLOSED);
        return;
    }
    p->head += (size_t)n;
    m->bytes_moved += (uint64_t)n;
    m->record_num = (uint32_t)(m->bytes_moved / m->record_size);
}

/* WRITE mode: did the data end close its side? */
static void mover_check_closed(struct session *s)
{
    uint8_t b;
    ssize_t n = recv(s->mover.conn_fd, &b, 1, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        notify_halted(s, MOVER_HALT_CONNECT_CLOSED);
}

static int slot_of(const struct pollfd *p, int n, int fd)
{
    for (int i = 0; i < n; i++)
        if (p[i].fd == fd)
            return i;
    return -1;
}

int mover_poll_fds(struct session *s, struct pollfd *p, int n)
{
    struct mover_svc *m = &s->mover;
    int k = 0;
    if (m->state == MOVER_LISTEN && m->listen_fd >= 0 && k < n)
        p[k++] = (struct pollfd){ .fd = m->listen_fd, .events = POLLIN };
    if (m->state != MOVER_ACTIVE || m->conn_fd < 0 || k >= n)
        return k;
    short ev = POLLIN;
    if (m->mode == MOVER_MODE_WRITE &&
        (m->bytes_left_to_read || m->pump.head != m->pump.tail))
        ev |= POLLOUT;
    p[k++] = (struct pollfd){ .fd = m->conn_fd, .events = ev };
    return k;
}

void mover_poll_done(struct session *s, const struct pollfd *p, int n)
{
    struct mover_svc *m = &s->mover;
    int i;
    if (m->state == MOVER_LISTEN && m->listen_fd >= 0 &&
        (i = slot_of(p, n, m->listen_fd)) >= 0 && p[i].revents) {
        int c = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0) {
            close(m->listen_fd);
            m->listen_fd = -1;
            m->conn_fd = c;
            m->state = MOVER_ACTIVE;
        }
        return;
    }
    if (m->state != MOVER_ACTIVE || m->conn_fd < 0 ||
        (i = slot_of(p, n, m->conn_fd)) < 0 || !p[i].revents)
        return;
    if (m->mode == MOVER_MODE_READ) {
        mover_take(s);
        return;
    }
    if (p[i].revents & POLLOUT)
        mover_give(s);
    if (m->state == MOVER_ACTIVE && (p[i].revents & (POLLIN | POLLHUP |
                                                     POLLERR)))
        mover_check_closed(s);
}

void mover_shutdown(struct session *s)
{
    struct mover_svc *m = &s->mover;
    if (m->conn_fd >= 0)
        close(m->conn_fd);
    if (m->listen_fd >= 0)
        close(m->listen_fd);
    tape_release(&s->tape);
    free(m->rec);
    free(m->pump.buf);
    m->conn_fd = m->listen_fd = -1;
}
