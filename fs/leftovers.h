/*
 * leftovers.h - what killed commands left behind, cleaned at mount
 * (leftovers.c).
 */
#ifndef SNAPFS_LEFTOVERS_H
#define SNAPFS_LEFTOVERS_H

#include "store.h"

/* A hold of a clone that is gone: the snapshot and the tag. */
struct leftover {
    char snap[SFS_NAME_MAX + 1];
    char tag[256];
};
/* Every such hold of ST as of TXN, into *OUT (malloc'd; NULL when none):
 * 0 or a negative errno. */
int leftovers_find(struct sfs_store *st, MDB_txn *txn, struct leftover **out,
                   size_t *n);
/* The partial store L's clone was building, if it is still there under
 * its name (a thread's static buffer), else NULL. */
const char *leftover_partial(const struct leftover *l);
/* Remove it: 0, -ENOENT (none), or the errno of the removal. */
int leftover_remove_partial(const struct leftover *l);

/* Release the holds of clones that are gone and remove their partial
 * stores, each with a message on stderr naming the store STORE.  The
 * store is open exclusively; 0 or a negative errno. */
int leftovers_clean(struct sfs_store *st, const char *store);

#endif
