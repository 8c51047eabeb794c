/*
 * receive_mounted.h - what the two ways of `snapfs receive` share (send.c
 * applies streams into an unmounted store, receive_mounted.c has a mounted
 * volume's daemon apply them): the reports, the messages, and the mounted
 * path.
 */
#ifndef SNAPFS_RECEIVE_MOUNTED_H
#define SNAPFS_RECEIVE_MOUNTED_H

#include <stdbool.h>

#include "cli.h"
#include "store.h"

/* One snapshot received: "ok TO BYTES" on stdout for HANDSHAKE, "received
 * TO [from FROM]: ..." on stderr for VERBOSE.  FROM is NULL for a full
 * stream. */
void receive_report(bool verbose, bool handshake, const char *to,
                    const char *from, const struct sfs_stream_stats *s);
/* Say why the receive into DST was refused or failed (WHY: the store's
 * reason, or NULL) and exit 1. */
void receive_die(const char *dst, const char *why, int rc)
    __attribute__((noreturn));
/* The hello line of --handshake (replicate.h) for ST, on stdout. */
int receive_print_hello(struct sfs_store *st, uint64_t after_epoch);
/* --resume-token or --abort answered (RC 0, -ENOENT when there is no
 * unfinished receive, or the error; TOKEN when RC is 0 and not ABORT):
 * print the token or the message, or die.  Returns the exit status. */
int receive_state_done(const struct volume *vol, bool abort, int rc,
                       const char *token);

/* How a receive treats what it takes (both receives). */
struct receive_flags {
    bool verbose, handshake;
    bool hold_back;   /* take snapshots without publishing them */
    bool publish;     /* first publish what was held back */
};
/* receive into a mounted VOL: its daemon applies the streams on stdin. */
int receive_mounted(struct volume *vol, const struct receive_flags *f);
/* --resume-token or --abort of a mounted VOL, through its daemon. */
int receive_mounted_state(struct volume *vol, bool abort);

#endif
