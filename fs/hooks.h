/*
 * hooks.h - pre and post hooks around a snapshot (application-consistent
 * snapshots): run by the policy scheduler (scheduler.c) and by the
 * snapshot commands (tools/snapshot.c).  See hooks.c.
 */
#ifndef SNAPFS_HOOKS_H
#define SNAPFS_HOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Where a hook's output lines go, and the runner's own lines about it. */
typedef void (*hook_log_fn)(void *arg, const char *line);

/* How one hook run ended. */
struct hook_outcome {
    bool ran;       /* it was started */
    bool timed_out; /* killed, with its process group, at the timeout */
    int status;     /* exit status, when it exited */
    int signal;     /* the signal that ended it, 0 if it exited */
    int err;        /* it could not be started: a negative errno */
    uint64_t ms;    /* how long it ran */
};

/* The environment a hook gets (and nothing else of the caller's). */
struct hook_env {
    const char *volume;   /* SNAPFS_VOLUME */
    const char *snapshot; /* SNAPFS_SNAPSHOT */
    const char *phase;    /* SNAPFS_PHASE: pre or post */
    const char *result;   /* SNAPFS_RESULT (post only; NULL for pre) */
    unsigned timeout;     /* SNAPFS_HOOK_TIMEOUT, seconds */
};

/*
 * Run CMD with /bin/sh -c in a process group of its own, stdin from
 * /dev/null, stdout and stderr line by line to LOG (prefixed with the
 * phase), the environment ENV only, in /; kill the whole group with
 * SIGKILL once TIMEOUT seconds have passed.  Returns when the hook's
 * shell has ended (processes it left running in the background, which
 * must not keep its output open, are left alone unless it timed out).
 */
void hook_run(const char *cmd, const struct hook_env *env, hook_log_fn log,
              void *arg, struct hook_outcome *out);
/* Did it exit 0 in time? */
bool hook_succeeded(const struct hook_outcome *o);
/* "exited with status 3", "was killed after the 5 s timeout", ... */
void hook_describe(const struct hook_outcome *o, unsigned timeout, char *out,
                   size_t cap);

/* What a snapshot with hooks becomes once the pre hook has run. */
enum hooks_verdict {
    HOOKS_APPLICATION = 1, /* pre hook succeeded: take it, application */
    HOOKS_CRASH,           /* take it crash-consistent (labelled so) */
    HOOKS_ABANDONED,       /* take nothing */
};

/* One snapshot's hooks: fill the first five fields, then hooks_before,
 * take (or not) the snapshot with LABELS, then hooks_after. */
struct hooks_run {
    const struct sfs_hookspec *spec;
    const char *volume, *snapshot;
    hook_log_fn log;
    void *log_arg;
    /* set by hooks_before */
    int verdict;                       /* enum hooks_verdict */
    char labels[SFS_LABELS_MAX + 1];   /* consistency=... */
    char why[200];                     /* the pre hook's failure, or "" */
    struct hook_outcome pre;
    /* set by hooks_after */
    struct hook_outcome post;
    bool post_done;
    char post_why[200];                /* the post hook's failure, or "" */
};

/* Run the pre hook (if any) and decide: a pre hook that fails or times
 * out gives HOOKS_ABANDONED or HOOKS_CRASH as the spec says. */
void hooks_before(struct hooks_run *r);
/* Run the post hook (if any) with SNAPFS_RESULT=RESULT: "application",
 * "crash", "abandoned" or "failed" (the snapshot could not be taken).
 * Runs it once: a second call does nothing. */
void hooks_after(struct hooks_run *r, const char *result);
/* For commands: should the process exit before hooks_after ran for R
 * (a die() on the way), run it then, with SNAPFS_RESULT=failed.  NULL
 * disarms. */
void hooks_after_at_exit(struct hooks_run *r);
/* The word SNAPFS_RESULT gets for VERDICT when the snapshot was taken. */
const char *hooks_result_word(int verdict);

#endif
