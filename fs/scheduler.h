/*
 * scheduler.h - the daemon's snapshot policy scheduler (see scheduler.c).
 */
#ifndef SNAPFS_SCHEDULER_H
#define SNAPFS_SCHEDULER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "volume.h"

#define SCHEDULER_TICK_MS_DEFAULT 30000

struct scheduler {
    struct vol *vol;
    const char *store; /* for the log */
    unsigned tick_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    bool running;
};

/*
 * What the command layer runs in the daemon beside the policies (the
 * vault's relationships, tools/vault_daemon.c), set before the daemon
 * starts: after_tick on the scheduler's thread after every tick, with the
 * store, the volume's UUID and the names of the snapshots that tick's
 * policies created (N, often none); stop once, when the scheduler stops.
 * Neither may block for long: they start and reap child processes, they
 * never wait for one (stop excepted, which ends them).
 */
struct scheduler_hook {
    void (*after_tick)(const char *store, const uint8_t uuid[16],
                       char *const *created, size_t n);
    void (*stop)(const char *store);
};
void scheduler_set_hook(const struct scheduler_hook *h);

/* Start the thread that runs due policies every tick (and once at once);
 * hooks are told the volume is MOUNTPOINT. */
int scheduler_start(struct scheduler *s, struct vol *v, const char *store,
                    const char *mountpoint);
/* Stop it and wait for it; a no-op if it is not running. */
void scheduler_stop(struct scheduler *s);

/* The policy clock, seconds since the epoch: time(2), or the number in the
 * file named by $SNAPFS_CLOCK_FILE (a test hook).  0 or a negative errno. */
int scheduler_clock(int64_t *now);

/*
 * Run the policies of V due at NOW as one control change (committed and
 * synced), then each due policy with hooks alone, its hooks around it
 * (hooks.c), and tell the FUSE layer when snapshots came or went.  On
 * success *EVENTS holds the events, one sfs_policy_event_write line each
 * (malloc'd, caller frees).  Returns 0 or a negative errno.
 */
int scheduler_run(struct vol *v, int64_t now, char **events);

#endif
