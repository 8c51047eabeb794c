/*
 * wire.c - big-endian layouts for the vault's objects (see wire.h).
 * Guarantees: a reader never reads outside the bytes it was given; a
 * writer never writes outside what it allocated.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

void vw_need(struct vw *w, size_t more)
{
    if (w->failed || w->len + more <= w->cap)
        return;
    if (w->len + more < w->len) {
        w->failed = true;
        return;
    }
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + more)
        cap *= 2;
    uint8_t *p = realloc(w->p, cap);
    if (!p) {
        w->failed = true;
        return;
    }
    w->p = p;
    w->cap = cap;
}

void vw_bytes(struct vw *w, const void *v, size_t n)
{
    vw_need(w, n);
    if (w->failed || !n)
        return;
    memcpy(w->p + w->len, v, n);
    w->len += n;
}

uint8_t *vw_reserve(struct vw *w, size_t n)
{
    vw_need(w, n);
    return w->failed ? NULL : w->p + w->len;
}

void vw_commit(struct vw *w, size_t n)
{
    if (!w->failed)
        w->len += n;
}

void vw_u8(struct vw *w, uint8_t v)
{
    vw_bytes(w, &v, 1);
}

void vw_u16(struct vw *w, uint16_t v)
{
    uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    vw_bytes(w, b, 2);
}

int vault_grow(void *items, size_t *cap, size_t n, size_t size)
{
    void **arr = items;
    if (n < *cap)
        return 0;
    size_t c = *cap ? 2 * *cap : 16;
    void *p = c > SIZE_MAX / size ? NULL : realloc(*arr, c * size);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = c;
    return 0;
}

void vault_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint32_t vault_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

void vw_u32(struct vw *w, uint32_t v)
{
    uint8_t b[4];
    vault_put_be32(b, v);
    vw_bytes(w, b, 4);
}

void vw_u64(struct vw *w, uint64_t v)
{
    vw_u32(w, (uint32_t)(v >> 32));
    vw_u32(w, (uint32_t)v);
}

void vw_str(struct vw *w, const char *s)
{
    size_t n = strlen(s);
    if (n > UINT16_MAX) {
        w->failed = true;
        return;
    }
    vw_u16(w, (uint16_t)n);
    vw_bytes(w, s, n);
}

void vw_free(struct vw *w)
{
    free(w->p);
    memset(w, 0, sizeof(*w));
}

const uint8_t *vr_bytes(struct vr *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

uint8_t vr_u8(struct vr *r)
{
    const uint8_t *p = vr_bytes(r, 1);
    return p ? p[0] : 0;
}

uint16_t vr_u16(struct vr *r)
{
    const uint8_t *p = vr_bytes(r, 2);
    return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

uint32_t vr_u32(struct vr *r)
{
    const uint8_t *p = vr_bytes(r, 4);
    return p ? vault_get_be32(p) : 0;
}

uint64_t vr_u64(struct vr *r)
{
    uint64_t hi = vr_u32(r);
    return hi << 32 | vr_u32(r);
}

void vr_str(struct vr *r, char *out, size_t cap)
{
    uint16_t n = vr_u16(r);
    const uint8_t *p = n < cap ? vr_bytes(r, n) : NULL;
    if (!p || memchr(p, 0, n)) {
        r->bad = true;
        out[0] = 0;
        return;
    }
    memcpy(out, p, n);
    out[n] = 0;
}
