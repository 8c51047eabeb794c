/*
 * autodelete.h - snapshot autodelete in the daemon (autodelete.c).
 */
#ifndef SNAPFS_AUTODELETE_H
#define SNAPFS_AUTODELETE_H

#include <stdbool.h>

#include "volume.h"

/*
 * Delete snapshots while autodelete is due (store/autodelete.c), oldest
 * first, each in its own committed change, logged.  NEED: a write is
 * about to fail unless that many bytes are available (0: none is).
 * Returns how many were deleted.  No lock held by the caller (not a
 * node's write lock: the changes store the cache).
 */
int autodelete_run(struct vol *v, uint64_t need);

#endif
