/*
 * plan.h - recovery plans (`snapfs plan`): what the plan files share.
 * plan_conf.c keeps plans and their state, plan_exec.c runs commands and
 * step scripts, plan_ops.c carries out test, cleanup, run, reprotect and
 * failback, resuming where an earlier run stopped.
 */
#ifndef SNAPFS_PLAN_H
#define SNAPFS_PLAN_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define PLAN_NAME_MAX 64
#define PLAN_FORMAT 1
#define PLAN_TIMEOUT_DEFAULT 600 /* seconds a step script may take */

/* One relationship of a step, as it was when the plan was made: DST
 * follows SRC (the original direction). */
struct plan_member {
    char *src;          /* the source's store directory */
    char *dst;          /* the destination's store directory */
    char *mount;        /* where the destination is served ("": nowhere) */
    char *test_mount;   /* where `plan test` mounts its clone */
    char *source_mount; /* where the source is served ("": as found) */
    bool remote;        /* DST follows a volume of another host: its
                           relationship is not in this host's registry;
                           SRC is then "" or PEER:PATH as the plan says */
};

struct plan_step {
    int priority;       /* lower first; equal ones in any order */
    char *group;        /* "" or the consistency group it stands for */
    char *script;       /* "" or a shell command run after the mounts */
    int timeout;        /* seconds the script may take */
    size_t n;
    struct plan_member *m;
};

struct plan {
    char name[PLAN_NAME_MAX + 1];
    size_t n;
    struct plan_step *steps; /* sorted by priority (stable) */
};

/* What has been done of a plan: NAME.state, replaced whole and synced
 * after every action. */
struct plan_state {
    char operation[16]; /* "" or the operation in progress */
    char mode[24];      /* of a run: planned-migration or disaster */
    bool test_active;   /* clones of a test exist (until cleanup) */
    bool failed_over;   /* the far side serves, writable */
    bool reversed;      /* the destinations are the sources now */
    json_t *done;       /* the actions of the operation done: keys */
    json_t *found;      /* "STEP:MEMBER" -> the source mountpoint found
                           mounted (and unmounted) by a run */
};

/* ---- plan_conf.c ---- */

/* 1 if NAME can name a plan. */
bool plan_name_valid(const char *name);
/* Build a plan from its JSON description (as `plan create --file` reads
 * it): 0, or -EINVAL with WHY (one message naming the step and key). */
int plan_from_json(const char *name, json_t *j, struct plan *p, char *why,
                   size_t cap);
/* The plan as stored (and shown by `plan show --json`). */
json_t *plan_to_json(const struct plan *p);
void plan_free(struct plan *p);
/* Store a new plan (-EEXIST if NAME has one), load, delete (with its
 * state).  -ENOENT: no plan NAME. */
int plan_store_new(const struct plan *p);
int plan_load(const char *name, struct plan *p, char *why, size_t cap);
int plan_delete(const char *name);
/* The names of every plan, sorted (malloc'd array of malloc'd strings). */
int plan_names(char ***names, size_t *n);
/* The state of NAME (a missing file: nothing done yet), and storing it
 * durably (temporary file, fsync, rename, fsync of the directory). */
int plan_state_load(const char *name, struct plan_state *s);
int plan_state_store(const char *name, const struct plan_state *s);
void plan_state_free(struct plan_state *s);
json_t *plan_state_to_json(const struct plan_state *s);
/* Lock plan NAME for one command: an fd to close, -EWOULDBLOCK if
 * another command holds it, or a negative errno. */
int plan_lock(const char *name);

/* ---- plan_exec.c ---- */

struct exec_result {
    int status;          /* exit status; 128+N killed by signal N; 124
                            timed out; 127 could not start */
    char last_err[512];  /* the last line it wrote on stderr */
    double seconds;
};
/* Run this binary's subcommand ARGV (NULL-terminated), its stdout into
 * OUT (CAP bytes, may be NULL: discarded).  ECHO_ERR: its stderr also on
 * ours. */
void plan_exec_self(char *const argv[], char *out, size_t cap,
                    bool echo_err, struct exec_result *r);
/* Run SCRIPT with /bin/sh -c, ENV (NAME=VALUE, NULL-terminated) added to
 * ours, its stdout and stderr on our stderr, at most TIMEOUT seconds
 * (then its process group is killed). */
void plan_exec_script(const char *script, char *const env[], int timeout,
                      struct exec_result *r);

/* What volume PATH (a local store or mountpoint, or PEER:PATH) says of
 * itself as a mirror destination, as `receive --handshake` tells it (on
 * the peer through `peer run`, which needs a receive grant there): 0 with
 * D set, or -EIO with R the failed command's result. */
struct destination_info;
int plan_probe(const char *path, struct destination_info *d,
               struct exec_result *r);

/* ---- plan_ops.c ---- */

enum plan_op { OP_TEST, OP_CLEANUP, OP_RUN, OP_REPROTECT, OP_FAILBACK };
enum run_mode { MODE_PLANNED, MODE_DISASTER };

/* What an operation did: one entry per action, for the report. */
struct plan_report {
    json_t *actions;    /* [{step, priority, volume, action, result,
                             seconds, detail}] */
    int failed_step;    /* 1-based; 0 when none failed */
    char error[1024];   /* why it stopped (empty when it did not) */
    int exit_code;      /* of the script or command that failed */
    char last_err[512]; /* its last line of stderr */
};
/* Run OP of plan P (MODE for OP_RUN), resuming its state: 0, or a
 * negative errno with REP's error set (-EBUSY: refused in this state,
 * nothing done). */
int plan_operate(const struct plan *p, enum plan_op op, enum run_mode mode,
                 struct plan_report *rep);

#endif
