/*
 * recv_ahead.h - the offline receive's input, read ahead on threads that
 * warm the destination's page cache (recv_ahead.c).
 */
#ifndef SNAPFS_RECV_AHEAD_H
#define SNAPFS_RECV_AHEAD_H

#include "store.h"

struct recv_ahead;
/* Start reading FD ahead, after the SEED_LEN bytes at SEED (what a plain
 * reader had buffered; they must begin at a frame), with helpers reading
 * ST's pages that the frames will need.  0, or a negative errno (then
 * read FD without). */
int recv_ahead_start(int fd, struct sfs_store *st, const void *seed,
                     size_t seed_len, struct recv_ahead **out);
/* sfs_stream_read_fn over it (ARG: the struct recv_ahead). */
int recv_ahead_read(void *arg, void *buf, size_t len);
/* End the helpers (ST may be closed after this) and free what can be. */
void recv_ahead_stop(struct recv_ahead *a);

#endif
