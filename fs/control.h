/*
 * control.h - the control socket of a mounted volume (see control.c).
 */
#ifndef SNAPFS_CONTROL_H
#define SNAPFS_CONTROL_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "receive.h"
#include "volume.h"

struct control {
    struct vol *vol;
    struct recv_slot recv; /* the stream being received (receive.c) */
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

/* Hold off control changes (the lock control_change takes): a long job
 * made of many nested transactions (a receive) takes it for each. */
void control_changes_lock(void);
void control_changes_unlock(void);

/* Write a reply's status line, "OK" or "ERR <errno>", on FD: 0 or -EPIPE. */
int control_reply_status(int fd, int rc);

#endif
