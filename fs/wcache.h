/*
 * wcache.h - the cache of dirty partial blocks (theory in wcache.c).
 * Every function that takes a node needs the caller to hold its write
 * lock (node->wlock) and a pin on it, unless said otherwise.
 */
#ifndef SNAPFS_WCACHE_H
#define SNAPFS_WCACHE_H

#include <stdbool.h>

#include "ops.h"

#define WCACHE_BUDGET (32u << 20)

/* Start V's drainer, the thread that stores cached blocks before the
 * cache is full (theory in wcache.c); -errno if it could not start
 * (writers then store their own).  wcache_stop stops it; call it before
 * the final wcache_flush_all of an unmount. */
int wcache_start(struct vol *v);
void wcache_stop(struct vol *v);

/* Merge SIZE bytes at OFF (within one block) into the cache.  *CACHED is
 * false when there was no room: the caller then writes through.
 * BACKGROUND: the kernel's writeback, not a client waiting (see THE
 * DRAINER in wcache.c). */
int wcache_write(struct vol *v, struct node *n, const char *buf, size_t size,
                 uint64_t off, bool background, bool *cached);
/* Copy the cached bytes of [OFF, OFF+LEN) over OUT. */
void wcache_overlay(struct vol *v, struct node *n, uint64_t off, size_t len,
                    char *out);
/* Store every cached block of N.  A block its qtree has no room for is
 * dropped, and the error kept for wcache_take_error. */
int wcache_flush(struct vol *v, struct node *n);
/* Store N's cached block BLOCKNO, if it has one (a write through it
 * while a control change stores the cache: see control.c). */
int wcache_flush_block(struct vol *v, struct node *n, uint64_t blockno);
/* The error of a block N lost since the last call (-EDQUOT), or 0; for
 * the file's next close or fsync.  Under N's write lock. */
int wcache_take_error(struct node *n);
/* Forget cached blocks [FIRST, LAST) of N (overwritten or truncated).
 * True when the caller must destroy the inode (an unreferenced orphan). */
bool wcache_drop(struct vol *v, struct node *n, uint64_t first, uint64_t last);
/* Store every cached block of every node; no lock held by the caller.
 * Each node's lock is let go between chunks of its blocks (writers of it
 * go in between).  WAIT false: the committer's share, skipping nodes
 * whose lock is busy. */
int wcache_flush_all(struct vol *v, bool wait);

/* From ops.c: the write path without the cache (CLIENT_CHANGE: a
 * client's write, which dates the file; false for cached blocks stored
 * later), and helpers. */
int fs_write_through(struct vol *v, uint64_t ino, const char *buf, size_t size,
                     uint64_t off, bool client_change);
/* Store a cached block whose space was reserved (RESERVED bytes,
 * sfs_space_reserve): it may use the reservations, and hands RESERVED
 * back once stored.  The file's times are not touched. */
int fs_store_cached(struct vol *v, uint64_t ino, const char *buf, size_t size,
                    uint64_t off, uint64_t reserved);
/* The same in two steps, so that the costly one runs outside the node's
 * lock: fs_prepare_cached reads, hashes and compresses (PLAN, released
 * on error; else by the caller, sfs_wplan_release); fs_apply_cached
 * makes the changes of COUNT such PLANS together, under the lock, each
 * result in RCS, and hands RESERVED back for each one stored. */
int fs_prepare_cached(struct vol *v, uint64_t ino, const char *buf,
                      size_t size, uint64_t off, struct sfs_wplan *plan);
void fs_apply_cached(struct vol *v, uint64_t ino, struct sfs_wplan **plans,
                     const uint64_t *reserved, int *rcs, size_t count);
void fs_destroy_orphan(struct vol *v, uint64_t ino);
struct sfs_codec_ctx *fs_codec(void);

#endif
