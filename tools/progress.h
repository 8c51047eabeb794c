/*
 * progress.h - progress of a long transfer (dump, restore) on stderr.
 *
 *   struct progress p;
 *   progress_start(&p, "restore", total_bytes_or_0);
 *   progress_update(&p, bytes, files);      as often as you like
 *   progress_finish(&p, "restored", bytes, files);
 *
 * When stderr is a terminal, progress_update redraws one line (bytes,
 * files, rate, and the time left when the total is known) at most five
 * times a second; otherwise it prints nothing.  progress_finish clears
 * that line and prints the summary "VERB N files, X MiB in T s (R MB/s)".
 */
#ifndef SNAPFS_PROGRESS_H
#define SNAPFS_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct progress {
    const char *what;
    bool tty;
    bool drawn;      /* a terminal line to take away */
    bool lines;      /* forced: whole lines, not a terminal */
    bool last_drawn; /* something was shown at all */
    uint64_t total;
    struct timespec start, last;
};

void progress_start(struct progress *p, const char *what, uint64_t total);
/* Show progress even when stderr is not a terminal (--progress): one
 * whole line at most every second instead of a redrawn one. */
void progress_force(struct progress *p);
void progress_update(struct progress *p, uint64_t bytes, uint64_t files);
void progress_finish(struct progress *p, const char *verb, uint64_t bytes,
                     uint64_t files);
/* Take the progress line away (before a message). */
void progress_clear(struct progress *p);

#endif
