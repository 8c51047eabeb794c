/*
 * ndmp_xdr.c - XDR (RFC 4506) as NDMP uses it, and RPC record marking
 * (RFC 5531, section 11), written from those specifications.
 *
 * Guarantees: decoding never reads past the end of the message, never
 * allocates more than a string's declared length after checking that the
 * message holds it, and marks the message bad instead (the caller answers
 * NDMP_XDR_DECODE_ERR); encoding never grows past NDMP_MSG_MAX; the
 * record reader never holds more than its limit and works on whatever a
 * non-blocking read returned, so a slow or hostile client cannot stall
 * the session's other work or make it allocate beyond the limit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ndmp.h"

static size_t pad4(size_t n)
{
    return (n + 3) & ~(size_t)3;
}

uint32_t xin_u32(struct xdr_in *x)
{
    if (x->bad || x->end - x->p < 4) {
        x->bad = true;
        return 0;
    }
    uint32_t v = (uint32_t)x->p[0] << 24 | (uint32_t)x->p[1] << 16 |
                 (uint32_t)x->p[2] << 8 | x->p[3];
    x->p += 4;
    return v;
}

uint64_t xin_u64(struct xdr_in *x)
{
    uint64_t hi = xin_u32(x);
    return hi << 32 | xin_u32(x);
}

const uint8_t *xin_opaque(struct xdr_in *x, size_t max, size_t *len)
{
    uint32_t n = xin_u32(x);
    if (x->bad || n > max || (size_t)(x->end - x->p) < pad4(n)) {
        x->bad = true;
        *len = 0;
        return NULL;
    }
    const uint8_t *p = x->p;
    x->p += pad4(n);
    *len = n;
    return p;
}

char *xin_string(struct xdr_in *x, size_t max)
{
    size_t n;
    const uint8_t *p = xin_opaque(x, max, &n);
    if (!p)
        return NULL;
    if (memchr(p, 0, n)) {
        x->bad = true;
        return NULL;
    }
    char *s = malloc(n + 1);
    if (!s) {
        x->bad = true;
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

void xin_fixed(struct xdr_in *x, void *out, size_t n)
{
    if (x->bad || (size_t)(x->end - x->p) < pad4(n)) {
        x->bad = true;
        memset(out, 0, n);
        return;
    }
    memcpy(out, x->p, n);
    x->p += pad4(n);
}

static bool out_room(struct xdr_out *x, size_t n)
{
    if (x->bad)
        return false;
    if (x->len + n > NDMP_MSG_MAX) {
        x->bad = true;
        return false;
    }
    if (x->len + n <= x->cap)
        return true;
    size_t cap = x->cap ? x->cap : 256;
    while (cap < x->len + n)
        cap *= 2;
    uint8_t *b = realloc(x->buf, cap);
    if (!b) {
        x->bad = true;
        return false;
    }
    x->buf = b;
    x->cap = cap;
    return true;
}

void xout_u32(struct xdr_out *x, uint32_t v)
{
    if (!out_room(x, 4))
        return;
    uint8_t *p = x->buf + x->len;
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    x->len += 4;
}

void xout_u64(struct xdr_out *x, uint64_t v)
{
    xout_u32(x, (uint32_t)(v >> 32));
    xout_u32(x, (uint32_t)v);
}

void xout_fixed(struct xdr_out *x, const void *p, size_t n)
{
    if (!n || !out_room(x, pad4(n)))
        return;
    memcpy(x->buf + x->len, p, n);
    memset(x->buf + x->len + n, 0, pad4(n) - n);
    x->len += pad4(n);
}

void xout_opaque(struct xdr_out *x, const void *p, size_t n)
{
    xout_u32(x, (uint32_t)n);
    xout_fixed(x, p, n);
}

void xout_string(struct xdr_out *x, const char *s)
{
    xout_opaque(x, s ? s : "", s ? strlen(s) : 0);
}

void xout_free(struct xdr_out *x)
{
    free(x->buf);
    memset(x, 0, sizeof(*x));
}

void ndmp_header_put(struct xdr_out *x, const struct ndmp_header *h)
{
    xout_u32(x, h->sequence);
    xout_u32(x, h->time_stamp);
    xout_u32(x, h->type);
    xout_u32(x, h->code);
    xout_u32(x, h->reply_sequence);
    xout_u32(x, h->error);
}

int ndmp_header_get(struct xdr_in *x, struct ndmp_header *h)
{
    h->sequence = xin_u32(x);
    h->time_stamp = xin_u32(x);
    h->type = xin_u32(x);
    h->code = xin_u32(x);
    h->reply_sequence = xin_u32(x);
    h->error = xin_u32(x);
    return x->bad ? -EBADMSG : 0;
}

/* ---- record marking ---- */

void rm_reset(struct rm_reader *rm)
{
    rm->hdr_have = 0;
    rm->frag_left = 0;
    rm->last = false;
    rm->len = 0;
}

void rm_free(struct rm_reader *rm)
{
    free(rm->msg);
    rm->msg = NULL;
    rm->cap = rm->len = 0;
}

/* A fragment header is complete: check and start the fragment. */
static int rm_start_fragment(struct rm_reader *rm)
{
    uint32_t v = (uint32_t)rm->hdr[0] << 24 | (uint32_t)rm->hdr[1] << 16 |
                 (uint32_t)rm->hdr[2] << 8 | rm->hdr[3];
    rm->last = v >> 31;
    rm->frag_left = v & 0x7fffffffu;
    if (rm->frag_left > rm->max - rm->len)
        return -EMSGSIZE;
    if (rm->len + rm->frag_left > rm->cap) {
        size_t cap = rm->len + rm->frag_left;
        uint8_t *m = realloc(rm->msg, cap ? cap : 1);
        if (!m)
            return -ENOMEM;
        rm->msg = m;
        rm->cap = cap;
    }
    return 0;
}

int rm_read(struct rm_reader *rm, int fd)
{
    for (;;) {
        if (rm->hdr_have < 4) {
            ssize_t n = recv(fd, rm->hdr + rm->hdr_have, 4 - rm->hdr_have,
                             MSG_DONTWAIT);
            if (n == 0)
                return -ECONNRESET;
            if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
            rm->hdr_have += (size_t)n;
            if (rm->hdr_have < 4)
                return 0;
            int rc = rm_start_fragment(rm);
            if (rc)
                return rc;
        }
        if (rm->frag_left) {
            ssize_t n = recv(fd, rm->msg + rm->len, rm->frag_left, MSG_DONTWAIT);
            if (n == 0)
                return -ECONNRESET;
            if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
            rm->len += (size_t)n;
            rm->frag_left -= (uint32_t)n;
            if (rm->frag_left)
                return 0;
        }
        if (rm->last)
            return 1;
        rm->hdr_have = 0;
    }
}

/* The record mark and the message in one writev, so that a message is
 * one TCP segment: written apart, the small second write waits (Nagle)
 * for the peer's delayed ACK of the first, some 40 ms a message. */
int rm_write(int fd, const uint8_t *buf, size_t len)
{
    uint32_t v = 0x80000000u | (uint32_t)len;
    uint8_t hdr[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
                       (uint8_t)(v >> 8), (uint8_t)v };
    struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)buf, len } };
    int i = 0;
    while (i < 2) {
        ssize_t w = writev(fd, iov + i, 2 - i);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        for (; i < 2 && (size_t)w >= iov[i].iov_len; i++)
            w -= (ssize_t)iov[i].iov_len;
        if (i < 2) {
            iov[i].iov_base = (uint8_t *)iov[i].iov_base + w;
            iov[i].iov_len -= (size_t)w;
        }
    }
    return 0;
}
