/*
 * progress.c - a progress line and a closing summary for dump and restore
 * (see progress.h).  Guarantees: nothing but the summary is printed when
 * stderr is not a terminal, so logs and tests see one line, unless asked
 * (progress_force: then whole lines, at most one a second); the rate is
 * computed on the monotonic clock, and a transfer of no measurable time
 * reports its rate over 1 ms rather than dividing by zero.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>

#include "progress.h"

static double seconds_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) +
           (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

void progress_start(struct progress *p, const char *what, uint64_t total)
{
    p->what = what;
    p->tty = isatty(STDERR_FILENO);
    p->drawn = false;
    p->lines = false;
    p->last_drawn = false;
    p->total = total;
    clock_gettime(CLOCK_MONOTONIC, &p->start);
    p->last = p->start;
}

static double rate_mbs(uint64_t bytes, double secs)
{
    return (double)bytes / 1e6 / (secs > 1e-3 ? secs : 1e-3);
}

void progress_force(struct progress *p)
{
    p->lines = !p->tty;
}

void progress_update(struct progress *p, uint64_t bytes, uint64_t files)
{
    if ((!p->tty && !p->lines) ||
        (p->last_drawn && seconds_since(&p->last) < (p->tty ? 0.2 : 1.0)))
        return;
    clock_gettime(CLOCK_MONOTONIC, &p->last);
    double secs = seconds_since(&p->start), rate = rate_mbs(bytes, secs);
    fprintf(stderr, "%s%s: %.1f MiB, %llu files, %.1f MB/s", p->tty ? "\r" : "",
            p->what, (double)bytes / (1 << 20), (unsigned long long)files,
            rate);
    if (p->total > bytes && bytes && secs > 0.5) { /* a rate to go by */
        double left = (double)(p->total - bytes) / 1e6 / rate;
        fprintf(stderr, ", %d:%02d left", (int)left / 60, (int)left % 60);
    }
    fputs(p->tty ? "\033[K" : "\n", stderr);
    p->drawn = p->tty;
    p->last_drawn = true;
}

void progress_finish(struct progress *p, const char *verb, uint64_t bytes,
                     uint64_t files)
{
    double secs = seconds_since(&p->start);
    if (p->drawn)
        fputs("\r\033[K", stderr);
    fprintf(stderr, "%s %llu files, %.2f MiB in %.1f s (%.1f MB/s)\n", verb,
            (unsigned long long)files, (double)bytes / (1 << 20), secs,
            rate_mbs(bytes, secs));
}

void progress_clear(struct progress *p)
{
    if (p->drawn)
        fputs("\r\033[K", stderr);
    p->drawn = false;
}
