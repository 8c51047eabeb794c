/*
 * receive.h - a replication stream received into a mounted volume (see
 * receive.c): the control socket's `receive` request hands the stream's
 * file descriptor and the client's connection to a thread of their own.
 */
#ifndef SNAPFS_RECEIVE_H
#define SNAPFS_RECEIVE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "volume.h"

/* The one receive a daemon runs at a time. */
struct recv_slot {
    pthread_mutex_t lock;
    bool busy;        /* a receive runs (or its thread is ending) */
    bool joinable;    /* a thread to join before the next starts */
    pthread_t thread;
    int cancel_fd;    /* eventfd: readable once the daemon stops */
};

int recv_slot_init(struct recv_slot *s);
/* Cancel a running receive (it stops at its next read or step, keeping
 * its last checkpoint), wait for its thread, free the slot. */
void recv_slot_destroy(struct recv_slot *s);
/* Is a receive running?  (Changes that would disturb it are refused.) */
bool recv_slot_busy(struct recv_slot *s);

/*
 * Start receiving the streams on IN_FD into V for the client on CONN, on
 * a thread of its own that reports to CONN (protocol in control.c) and
 * closes both.  FLAGS and NUMS are the request's options (RECV_FLAG_*,
 * no numbers yet: anything else is -EINVAL).  0: the thread owns both
 * fds; else a negative errno (-EINPROGRESS: a receive is running) and
 * the caller still owns them.
 */
enum {
    RECV_FLAG_HOLD_BACK = 1,  /* received snapshots are not published
                                 (sfs_recv_hold_back) */
    RECV_FLAG_PUBLISH = 2,    /* first publish what was held back */
    RECV_FLAG_ANY_COUNT = 4,  /* no stream at all is fine (a mirror's
                                 handshake when there is nothing new) */
};
int recv_start(struct recv_slot *s, struct vol *v, int conn, int in_fd,
               uint64_t flags, const uint64_t *nums, int nnums);

#endif
