/*
 * wrun.h - runs of whole blocks stored outside their file's write lock,
 * several at once (theory in wrun.c).  Every function is called with the
 * node's write lock held (node->wlock), except node_lock_quiet and
 * node_lock_request, which take it.
 */
#ifndef SNAPFS_WRUN_H
#define SNAPFS_WRUN_H

#include <stdbool.h>
#include <stdint.h>

#include "volume.h"

/* Register the run of blocks [FIRST, LAST) of N, waiting while a run out
 * overlaps it, while the table is full, or while someone waits for the
 * node to be quiet (*WAITED: it did, so the lock was let go meanwhile).
 * Returns its slot, for wrun_end. */
int wrun_begin(struct node *n, uint64_t first, uint64_t last, bool *waited);
/* Wait, without N's lock (it takes it), until every run of N that began
 * before the one in SLOT is out: runs are applied in the order they
 * began. */
void wrun_wait_turn(struct node *n, int slot);
/* The run in SLOT is stored (or failed): unregister it. */
void wrun_end(struct node *n, int slot);
/* Wait until no run out overlaps blocks [FIRST, LAST). */
void wrun_wait_clear(struct node *n, uint64_t first, uint64_t last);
/* Does a run out overlap blocks [FIRST, LAST)? */
bool wrun_overlaps(const struct node *n, uint64_t first, uint64_t last);
/* Take N's write lock with no run out: what truncation, hole punching,
 * flushes and syncs need (they see every write that returned). */
void node_lock_quiet(struct node *n);
/* Take N's write lock for a client's read or write, counted among those
 * waiting for it meanwhile (node->lock_waiting): a flush of many blocks
 * lets them in between its chunks. */
void node_lock_request(struct node *n);
/* Free N's table of runs (the node goes; none is out). */
void wrun_table_free(struct node *n);

#endif
