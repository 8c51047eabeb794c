/*
 * leftovers.h - what killed commands left behind, cleaned at mount
 * (leftovers.c).
 */
#ifndef SNAPFS_LEFTOVERS_H
#define SNAPFS_LEFTOVERS_H

#include "store.h"

/* Release the holds of clones that are gone and remove their partial
 * stores, each with a message on stderr naming the store STORE.  The
 * store is open exclusively; 0 or a negative errno. */
int leftovers_clean(struct sfs_store *st, const char *store);

#endif
