/*
 * ndmp_dar.h - direct access recovery (ndmp_dar.c): the dump's head and
 * the named files' segments read by position, made into a dump.
 */
#ifndef SNAPFS_NDMP_DAR_H
#define SNAPFS_NDMP_DAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dar;

/* OFFSETS: the names' fh_info (byte offsets of their headers). */
struct dar *dar_new(const uint64_t *offsets, size_t n);
void dar_free(struct dar *d);
/* The first part of the image to ask for (the head). */
void dar_first_read(const struct dar *d, uint64_t *offset, uint64_t *length);
/* Bytes of the part asked for, in order: what the restore gets is passed
 * to EMIT (never more than LEN bytes). */
void dar_feed(struct dar *d, const uint8_t *p, size_t len,
              void (*emit)(void *arg, const uint8_t *p, size_t n), void *arg);
/* Once the part asked for is all in: true and the next part to ask for,
 * or false when nothing more is needed (see dar_done). */
bool dar_next_read(struct dar *d, uint64_t *offset, uint64_t *length);
bool dar_done(const struct dar *d);
/* The end: a TS_END block for the restore. */
void dar_finish(struct dar *d,
                void (*emit)(void *arg, const uint8_t *p, size_t n),
                void *arg);

#endif
