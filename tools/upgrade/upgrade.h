/*
 * upgrade.h - the upgrade engine: is a store ready for this snapfs's
 * on-disk format (a readiness check that changes nothing), and the
 * upgrade itself, in place, crash-safe and resumable (store/format.c has
 * the theory of the marks that make it so).
 *
 * Errors are negative errno values; the engine prints nothing.
 */
#ifndef SNAPFS_UPGRADE_H
#define SNAPFS_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* What the readiness check found. */
struct upgrade_report {
    uint32_t format;        /* the store's version (an interrupted
                             * upgrade: the version it came from) */
    uint32_t target;        /* SFS_FORMAT_VERSION */
    bool readable;          /* opened: the rest below is known */
    bool interrupted;       /* an upgrade of it did not finish */
    char resume_step[32];   /* then, the step it was at */
    bool current;           /* already the target: nothing to do */
    bool ready;             /* no reasons */
    char **reasons;         /* why it would not upgrade, one line each */
    size_t nreasons, reasons_cap;
    char **steps;           /* what the upgrade will do, one line each */
    size_t nsteps, steps_cap;
    int problems;           /* what fsck found */
    uint64_t blocks;        /* dedup records (the ledger rewrites them) */
    uint64_t records;       /* live records (the ledger reads them) */
    uint64_t need_bytes;    /* room the upgrade may take on the host */
    uint64_t free_bytes;    /* room there is (statvfs, for its user) */
    double check_seconds;   /* what the check took */
    double estimate_seconds;/* what the upgrade should take */
    bool marked;            /* upgrade_run: the store is marked as being
                             * upgraded (an error then leaves it so) */
};
void upgrade_report_free(struct upgrade_report *r);

/*
 * upgrade_check - read the whole store at STORE (every record decoded,
 * references resolved: fsck), and fill R: the reasons it would not
 * upgrade (a newer format or an unknown feature, in use, damaged, not
 * enough room), the steps, the room and the time needed.  Opens the
 * store read-only and changes nothing in it.  Returns 0 (R->ready says
 * the verdict) or the errno of opening what is not a store (-ENOENT,
 * -ENOTDIR, -EMEDIUMTYPE, ...).
 */
int upgrade_check(const char *store, struct upgrade_report *r);

/* What the upgrade tells its caller as it goes: one line per step. */
typedef void (*upgrade_progress_fn)(void *arg, const char *line);

/*
 * upgrade_run - check STORE (as upgrade_check, into R), and if it is
 * ready and not current, upgrade it to SFS_FORMAT_VERSION: mark it,
 * count its ledger in batches, write its features and the version, each
 * step its own transactions; an interrupted upgrade resumes.  Returns 0
 * (upgraded, or current: R->current), -EAGAIN (not ready: R->reasons;
 * nothing changed), or an errno (the store left marked when the error
 * came after the mark: running again resumes).
 *
 * For crash tests: SNAPFS_UPGRADE_BATCH=N counts the ledger N records
 * per transaction; SNAPFS_UPGRADE_KILL_AT=K kills the process (SIGKILL)
 * right after its K-th committed transaction.
 */
int upgrade_run(const char *store, struct upgrade_report *r,
                upgrade_progress_fn progress, void *arg);

#endif
