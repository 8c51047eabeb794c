/*
 * wire.h - the byte layouts of the vault's objects: a growing writer and
 * a bounded reader of big-endian integers, byte strings and names.
 *
 * A writer that cannot grow sets `failed` and ignores further writes (the
 * caller checks once, at the end: -ENOMEM).  A reader that would run past
 * its end sets `bad` and returns zeros (the caller checks once: -EBADMSG),
 * so no layout parser indexes past what it was given.
 */
#ifndef SNAPFS_VAULT_WIRE_H
#define SNAPFS_VAULT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vw {
    uint8_t *p;
    size_t len, cap;
    bool failed;
};

void vw_need(struct vw *w, size_t more);
void vw_bytes(struct vw *w, const void *v, size_t n);
void vw_u8(struct vw *w, uint8_t v);
void vw_u16(struct vw *w, uint16_t v);
void vw_u32(struct vw *w, uint32_t v);
void vw_u64(struct vw *w, uint64_t v);
/* A text of at most 65535 bytes: its length (u16), then its bytes. */
void vw_str(struct vw *w, const char *s);
/* Give up the buffer (free it) and start empty. */
void vw_free(struct vw *w);
/* Make room for N bytes at the end and return them (NULL when failed);
 * the caller fills them, then vw_commit(w, n). */
uint8_t *vw_reserve(struct vw *w, size_t n);
void vw_commit(struct vw *w, size_t n);

struct vr {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static inline struct vr vr_init(const void *p, size_t len)
{
    struct vr r = { p, len, false };
    return r;
}
const uint8_t *vr_bytes(struct vr *r, size_t n);
uint8_t vr_u8(struct vr *r);
uint16_t vr_u16(struct vr *r);
uint32_t vr_u32(struct vr *r);
uint64_t vr_u64(struct vr *r);
/* A text written by vw_str into OUT (CAP bytes with its NUL); longer, or
 * holding a NUL: bad. */
void vr_str(struct vr *r, char *out, size_t cap);
/* Everything read, nothing left over, nothing past the end? */
static inline bool vr_done(const struct vr *r)
{
    return !r->bad && r->left == 0;
}

/* Room for one more item in the array *ITEMS of N items of SIZE bytes
 * (capacity *CAP, doubled when full): 0 or -ENOMEM. */
int vault_grow(void *items, size_t *cap, size_t n, size_t size);

void vault_put_be32(uint8_t *p, uint32_t v);
uint32_t vault_get_be32(const uint8_t *p);

#endif
