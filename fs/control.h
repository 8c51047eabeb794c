/*
 * control.h - the control socket of a mounted volume (see control.c).
 */
#ifndef SNAPFS_CONTROL_H
#define SNAPFS_CONTROL_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "volume.h"

struct control {
    struct vol *vol;
    int listen_fd;
    uid_t owner_uid;
    pthread_t thread;
    bool running;
    char path[PATH_MAX];
};

/* Listen on STORE/control.sock and serve requests on a thread. */
int control_start(struct control *c, struct vol *v, const char *store);
/* Stop listening, wait for the thread, remove the socket. */
void control_stop(struct control *c);

/*
 * Run FN(V, TXN, ARG) as one change of the volume: after every cached
 * block is stored, in one nested transaction of the batch (undone if FN
 * fails), then committed and synced.  Changes run one at a time.
 * Returns FN's error, or that of storing, committing or syncing.
 */
int control_change(struct vol *v, int (*fn)(struct vol *, MDB_txn *, void *),
                   void *arg);

#endif
