/*
 * wgroup.h - changes applied in groups: concurrent callers' changes share
 * one nested transaction of the batch, each in a sub-transaction of its
 * own (theory in wgroup.c).
 */
#ifndef SNAPFS_WGROUP_H
#define SNAPFS_WGROUP_H

#include <stdint.h>

#include "volume.h"

/* A change: its records written in TXN; 0 or a negative errno (then TXN
 * is aborted and the volume's state restored). */
typedef int (*wgroup_fn)(struct vol *v, MDB_txn *txn, void *arg);

/*
 * Apply FN(ARG) as one change of the batch, counting BYTES toward the
 * next commit if it succeeds: as vol_change_begin, FN, vol_change_end,
 * but possibly on another caller's thread, together with the changes of
 * callers that wait for the volume lock at the same time.  FN runs with
 * the volume lock held and must take no other lock.  Returns FN's result,
 * or the error that kept it from being applied.
 */
int wgroup_change(struct vol *v, wgroup_fn fn, void *arg, uint64_t bytes);

/* Apply FN(ARGS[k]) for each of COUNT changes, each counting BYTES[k] and
 * getting its own result in RCS[k], queued at once so that they are
 * applied together (up to 64 to a group): what one thread storing many
 * blocks saves on the volume lock and nested transactions.  Returns 0,
 * or -ENOMEM when they could not be queued (then none was applied). */
int wgroup_change_all(struct vol *v, wgroup_fn fn, void **args,
                      const uint64_t *bytes, int *rcs, size_t count);

#endif
