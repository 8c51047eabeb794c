/*
 * peer_relay.c - moves a running command's bytes between a TLS
 * connection and local file descriptors, both ways at once, in one
 * thread: the client's relay thread (peer_client.c) and the server's
 * connection process (peer_serve.c) both run peer_relay_run.
 *
 * Every descriptor is non-blocking and one loop tries each step that
 * could move bytes (SSL_write of queued frames, SSL_read, decoding
 * frames, writing received data locally, reading local data into DATA
 * frames, the server's capture of stderr); only when no step moved
 * anything does it poll, for exactly the readiness that the blocked
 * steps wait on (OpenSSL's WANT_READ/WANT_WRITE for the socket).  Each
 * buffer has a limit, and a step whose output buffer is full does not
 * run, so a slow reader on either side stops the writer on the other
 * (backpressure through TCP) and memory stays bounded (about 1.5 MiB).
 *
 * Guarantees: received DATA reaches the local fd in order and complete
 * before the fd is given end-of-file; local EOF becomes exactly one EOF
 * frame after all data; the server sends EXIT only after the command's
 * stdout and stderr ended and it was reaped; the client finishes only
 * on EXIT.  A connection that closes or breaks before that is
 * -ECONNRESET, never a silent success.  A local reader that went away
 * (EPIPE) makes the rest of the data be discarded, not an error: the
 * command's exit status tells what happened.  The server's limits: a
 * frame larger than frame_max ends the relay (-EMSGSIZE) before it is
 * buffered, and so does a connection on which nothing moved either way
 * for idle_seconds (-ETIMEDOUT).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "peer_wire.h"

#define OUT_LIMIT (256u << 10)
#define PEND_LIMIT (256u << 10)
#define IN_SOFT (64u << 10)
#define ERRTEXT_MAX (64u << 10)

/* ---- buffers ---- */

static size_t buf_avail(const struct peer_buf *b)
{
    return b->len - b->off;
}

/* Room for N more bytes at b->p + b->len (data may move: the TLS layer
 * is told so by SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER). */
static int buf_reserve(struct peer_buf *b, size_t n)
{
    if (b->off == b->len)
        b->off = b->len = 0;
    if (b->len + n <= b->cap)
        return 0;
    if (b->off) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    size_t cap = b->cap ? b->cap : 64u << 10;
    while (cap < b->len + n)
        cap *= 2;
    if (cap == b->cap)
        return 0;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_append(struct peer_buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (!rc && n) {
        memcpy(b->p + b->len, p, n);
        b->len += n;
    }
    return rc;
}

static int queue_frame(struct peer_relay *r, uint8_t type, const void *p,
                       size_t n)
{
    uint8_t hdr[PEER_FRAME_HDR];
    peer_frame_header(hdr, type, (uint32_t)n);
    int rc = buf_append(&r->out, hdr, sizeof(hdr));
    return rc ? rc : buf_append(&r->out, p, n);
}

/* ---- local fds ---- */

/* On the client src and dst are one socket: its read side ends with
 * the last close, its write side with a shutdown. */
static void end_src(struct peer_relay *r)
{
    if (r->src >= 0 && r->src != r->dst)
        close(r->src);
    r->src = -1;
}

static void end_dst(struct peer_relay *r)
{
    if (r->dst >= 0 && r->dst == r->src)
        shutdown(r->dst, SHUT_WR);
    else if (r->dst >= 0)
        close(r->dst);
    r->dst = -1;
    r->pend.off = r->pend.len = 0;
}

void peer_relay_init(struct peer_relay *r, SSL *ssl, int sock, int src,
                     int dst, int err, pid_t child)
{
    memset(r, 0, sizeof(*r));
    r->ssl = ssl;
    r->sock = sock;
    r->src = src;
    r->dst = dst;
    r->err = err;
    r->child = child;
    r->server = child > 0;
    r->frame_max = PEER_FRAME_MAX;
    clock_gettime(CLOCK_MONOTONIC, &r->last_moved);
    int fds[] = { sock, src, dst, err };
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            peer_fd_nonblock(fds[i], true);
}

void peer_relay_free(struct peer_relay *r)
{
    end_src(r);
    end_dst(r);
    if (r->err >= 0)
        close(r->err);
    r->err = -1;
    free(r->out.p);
    free(r->in.p);
    free(r->pend.p);
    free(r->errtext.p);
    memset(&r->out, 0, sizeof(r->out));
    memset(&r->in, 0, sizeof(r->in));
    memset(&r->pend, 0, sizeof(r->pend));
    memset(&r->errtext, 0, sizeof(r->errtext));
}

/* ---- the steps; each returns 1 if it moved bytes, 0, or -errno ---- */

/* What a failed SSL call asks for; -ECONNRESET when the connection is
 * closed or broken (peer_closed is set). */
static int ssl_wants(struct peer_relay *r, int ret)
{
    switch (SSL_get_error(r->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        r->sock_wants_read = true;
        return 0;
    case SSL_ERROR_WANT_WRITE:
        r->sock_wants_write = true;
        return 0;
    default:
        ERR_clear_error();
        r->peer_closed = true;
        return -ECONNRESET;
    }
}

static int flush_out(struct peer_relay *r)
{
    int moved = 0;
    if (r->exit_received) /* the command is gone: its stdin is moot */
        r->out.off = r->out.len;
    while (buf_avail(&r->out) && !r->peer_closed) {
        size_t n = buf_avail(&r->out);
        int w = SSL_write(r->ssl, r->out.p + r->out.off,
                          n > INT32_MAX ? INT32_MAX : (int)n);
        if (w <= 0)
            return ssl_wants(r, w) ? -ECONNRESET : moved;
        r->out.off += (size_t)w;
        moved = 1;
    }
    return moved;
}

/* How many bytes `in` should hold: a whole frame, at least IN_SOFT;
 * nothing more past the header of a frame over the limit (parse_frames
 * refuses it). */
static size_t in_wanted(const struct peer_relay *r)
{
    if (buf_avail(&r->in) < PEER_FRAME_HDR)
        return IN_SOFT;
    uint32_t n = peer_be32(r->in.p + r->in.off + 1);
    if (n > r->frame_max)
        return 0;
    size_t frame = PEER_FRAME_HDR + n;
    return frame > IN_SOFT ? frame : IN_SOFT;
}

static int fill_in(struct peer_relay *r)
{
    int moved = 0;
    while (!r->peer_closed && buf_avail(&r->in) < in_wanted(r)) {
        if (buf_reserve(&r->in, PEER_DATA_CHUNK + PEER_FRAME_HDR))
            return -ENOMEM;
        size_t room = r->in.cap - r->in.len;
        int n = SSL_read(r->ssl, r->in.p + r->in.len,
                         room > INT32_MAX ? INT32_MAX : (int)room);
        if (n <= 0) {
            ssl_wants(r, n); /* a closed connection is judged at the end */
            return moved;
        }
        r->in.len += (size_t)n;
        moved = 1;
    }
    return moved;
}

static int take_frame(struct peer_relay *r, uint8_t type, const uint8_t *p,
                      uint32_t n)
{
    if (r->eof_received && (type == PF_DATA || type == PF_EOF))
        return -EPROTO;
    switch (type) {
    case PF_DATA:
        return r->dst >= 0 ? buf_append(&r->pend, p, n) : 0;
    case PF_EOF:
        r->eof_received = true;
        return 0;
    case PF_EXIT:
        if (r->server || r->exit_received || n < 4)
            return -EPROTO;
        r->exit_received = true;
        r->status = (int)peer_be32(p);
        return buf_append(&r->errtext, p + 4, n - 4);
    default:
        return -EPROTO;
    }
}

static int parse_frames(struct peer_relay *r)
{
    int moved = 0;
    while (buf_avail(&r->in) >= PEER_FRAME_HDR &&
           buf_avail(&r->pend) < PEND_LIMIT) {
        const uint8_t *f = r->in.p + r->in.off;
        uint32_t n = peer_be32(f + 1);
        if (n > r->frame_max)
            return -EMSGSIZE;
        if (buf_avail(&r->in) < PEER_FRAME_HDR + (size_t)n)
            break;
        int rc = take_frame(r, f[0], f + PEER_FRAME_HDR, n);
        if (rc)
            return rc;
        r->in.off += PEER_FRAME_HDR + (size_t)n;
        moved = 1;
    }
    return moved;
}

static int flush_pend(struct peer_relay *r)
{
    int moved = 0;
    while (r->dst >= 0 && buf_avail(&r->pend)) {
        ssize_t w = write(r->dst, r->pend.p + r->pend.off, buf_avail(&r->pend));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return moved;
        if (w <= 0) { /* the reader is gone: discard the rest */
            end_dst(r);
            return 1;
        }
        r->pend.off += (size_t)w;
        moved = 1;
    }
    if (r->dst >= 0 && (r->eof_received || r->exit_received)) {
        end_dst(r);
        moved = 1;
    }
    return moved;
}

static int read_src(struct peer_relay *r)
{
    if (r->src < 0 || r->exit_received || buf_avail(&r->out) >= OUT_LIMIT)
        return 0;
    if (buf_reserve(&r->out, PEER_FRAME_HDR + PEER_DATA_CHUNK))
        return -ENOMEM;
    uint8_t *hdr = r->out.p + r->out.len;
    ssize_t n = read(r->src, hdr + PEER_FRAME_HDR, PEER_DATA_CHUNK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) { /* end of file, or an error that ends it */
        end_src(r);
        r->eof_sent = true;
        return queue_frame(r, PF_EOF, NULL, 0) ? -ENOMEM : 1;
    }
    peer_frame_header(hdr, PF_DATA, (uint32_t)n);
    r->out.len += PEER_FRAME_HDR + (size_t)n;
    return 1;
}

/* Server: capture the command's stderr (the first ERRTEXT_MAX bytes). */
static int read_err(struct peer_relay *r)
{
    if (r->err < 0)
        return 0;
    uint8_t chunk[4096];
    ssize_t n = read(r->err, chunk, sizeof(chunk));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) {
        close(r->err);
        r->err = -1;
        return 1;
    }
    size_t keep = buf_avail(&r->errtext) >= ERRTEXT_MAX ? 0
                : ERRTEXT_MAX - buf_avail(&r->errtext);
    return buf_append(&r->errtext, chunk, (size_t)n < keep ? (size_t)n : keep)
               ? -ENOMEM : 1;
}

/* Server: once stdout and stderr ended and the command exited, reap it
 * and queue EXIT. */
static int queue_exit(struct peer_relay *r)
{
    if (!r->server || r->exit_sent || r->src >= 0 || r->err >= 0)
        return 0;
    int ws;
    pid_t got = waitpid(r->child, &ws, WNOHANG);
    if (got < 0 && errno != EINTR)
        return -errno;
    if (got <= 0)
        return 0; /* closed its output, still running: keep relaying */
    r->child = 0;
    r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    size_t n = buf_avail(&r->errtext);
    uint8_t *p = malloc(4 + n);
    if (!p)
        return -ENOMEM;
    peer_put_be32(p, (uint32_t)r->status);
    if (n)
        memcpy(p + 4, r->errtext.p + r->errtext.off, n);
    int rc = queue_frame(r, PF_EXIT, p, 4 + n);
    free(p);
    r->exit_sent = true;
    return rc ? rc : 1;
}

static bool finished(const struct peer_relay *r)
{
    if (r->server)
        return r->exit_sent && !buf_avail(&r->out);
    return r->exit_received && r->dst < 0;
}

/* Milliseconds until the relay has been idle for idle_seconds (-1:
 * never); 0 once it has. */
static int idle_left_ms(const struct peer_relay *r)
{
    if (r->idle_seconds <= 0)
        return -1;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long idle = (now.tv_sec - r->last_moved.tv_sec) * 1000LL +
                     (now.tv_nsec - r->last_moved.tv_nsec) / 1000000;
    long long left = r->idle_seconds * 1000LL - idle;
    return left > 0 ? (int)left : 0;
}

static void wait_for_io(struct peer_relay *r)
{
    struct pollfd p[4];
    nfds_t n = 0;
    short sock = (short)((r->sock_wants_read ? POLLIN : 0) |
                         (r->sock_wants_write ? POLLOUT : 0));
    if (sock)
        p[n++] = (struct pollfd){ .fd = r->sock, .events = sock };
    if (r->src >= 0 && !r->exit_received && buf_avail(&r->out) < OUT_LIMIT)
        p[n++] = (struct pollfd){ .fd = r->src, .events = POLLIN };
    if (r->dst >= 0 && buf_avail(&r->pend))
        p[n++] = (struct pollfd){ .fd = r->dst, .events = POLLOUT };
    if (r->err >= 0)
        p[n++] = (struct pollfd){ .fd = r->err, .events = POLLIN };
    /* a command that closed stdout and stderr is watched every 20 ms
     * until it exits; everything else wakes poll itself */
    bool reaping = r->server && !r->exit_sent && r->src < 0 && r->err < 0;
    int timeout = idle_left_ms(r);
    if ((reaping || !n) && (timeout < 0 || timeout > 20))
        timeout = 20;
    poll(p, n, timeout);
}

int peer_relay_run(struct peer_relay *r)
{
    int (*const steps[])(struct peer_relay *) = {
        flush_out, fill_in, parse_frames, flush_pend, read_src, read_err,
        queue_exit,
    };
    int rc = 0;
    while (!rc && !finished(r)) {
        int moved = 0;
        r->sock_wants_read = r->sock_wants_write = false;
        for (size_t i = 0; !rc && i < sizeof(steps) / sizeof(steps[0]); i++) {
            int s = steps[i](r);
            if (s < 0)
                rc = s;
            moved |= s > 0;
        }
        if (moved)
            clock_gettime(CLOCK_MONOTONIC, &r->last_moved);
        if (!rc && !moved && !finished(r)) {
            if (r->peer_closed)
                rc = -ECONNRESET; /* closed before the command ended */
            else if (idle_left_ms(r) == 0)
                rc = -ETIMEDOUT;
            else
                wait_for_io(r);
        }
    }
    if (!rc)
        flush_pend(r);
    end_src(r);
    end_dst(r);
    return rc;
}
