/*
 * vault_daemon.c - the vault relationships of a mounted volume, run by
 * its daemon: when the volume's snapshot policies take a snapshot whose
 * label a relationship's vault policy selects, that relationship's
 * update runs (`snapfs vault update STORE --store NAME`, this same
 * program, as a child process).
 *
 * The scheduler calls after_tick on its own thread after every tick
 * (fs/scheduler.c's hook, installed by `snapfs mount` before the daemon
 * starts): fs/ knows nothing of vaults, and nothing here waits for an
 * object store.  Guarantees: at most one update per relationship at a
 * time (a snapshot taken while one runs marks the relationship pending,
 * and it runs again once that one ends; the update's own lock keeps out
 * a manual `vault update` too); a child's output and its end go to the
 * daemon's stderr, which is STORE/daemon.log; the FUSE threads and the
 * scheduler never wait for a child (reaped with WNOHANG at each tick);
 * at unmount running updates get SIGTERM (they stop, keep what they
 * uploaded and release their holds while the control socket still
 * serves) and are waited for, then killed after VAULT_STOP_WAIT_MS.
 * `snapfs policy run` (a timer's, for an unmounted volume) runs the same
 * updates after its snapshots, one after the other, waiting for each.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "scheduler.h"
#include "vault/relation.h"

#define JOBS_MAX 32
#define VAULT_STOP_WAIT_MS 60000

struct job {
    char store[VAULT_CONF_NAME_MAX + 1];
    pid_t pid;        /* running, or 0 */
    bool pending;     /* run again when it ends */
};

static struct job jobs[JOBS_MAX];

static struct job *job_of(const char *store)
{
    struct job *free_slot = NULL;
    for (int i = 0; i < JOBS_MAX; i++) {
        if (!strcmp(jobs[i].store, store))
            return &jobs[i];
        if (!free_slot && !jobs[i].store[0])
            free_slot = &jobs[i];
    }
    if (free_slot)
        snprintf(free_slot->store, sizeof(free_slot->store), "%s", store);
    return free_slot;
}

/* `snapfs vault update VOLUME --store STORE` as a child (stdin
 * /dev/null; with TO_LOG its stdout goes to stderr, the daemon's log;
 * none of the daemon's descriptors, the FUSE device's and the store's):
 * 0 or an errno. */
static int spawn_update(const char *volume, const char *store, bool to_log,
                        pid_t *pid)
{
    char *argv[] = { "snapfs", "vault", "update", (char *)volume,
                     "--store", (char *)store, NULL };
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null",
                                     O_RDONLY, 0);
    if (to_log)
        posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
    posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
    int rc = posix_spawn(pid, "/proc/self/exe", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

static void start(const char *volstore, struct job *j)
{
    pid_t pid;
    int rc = spawn_update(volstore, j->store, true, &pid);
    j->pending = false;
    if (rc) {
        fprintf(stderr, "snapfs: %s: vault: could not start the update to "
                "object store %s: %s\n", volstore, j->store, strerror(rc));
        return;
    }
    j->pid = pid;
    fprintf(stderr, "snapfs: %s: vault: update to object store %s started "
            "(pid %d)\n", volstore, j->store, (int)pid);
}

static void reaped(const char *volstore, struct job *j, int ws)
{
    if (WIFEXITED(ws))
        fprintf(stderr, "snapfs: %s: vault: update to object store %s (pid "
                "%d) ended: exit %d\n", volstore, j->store, (int)j->pid,
                WEXITSTATUS(ws));
    else
        fprintf(stderr, "snapfs: %s: vault: update to object store %s (pid "
                "%d) ended: signal %d\n", volstore, j->store, (int)j->pid,
                WTERMSIG(ws));
    j->pid = 0;
}

/* Reap the updates that ended; start those pending. */
static void reap(const char *volstore)
{
    for (int i = 0; i < JOBS_MAX; i++) {
        int ws;
        if (jobs[i].pid && waitpid(jobs[i].pid, &ws, WNOHANG) == jobs[i].pid)
            reaped(volstore, &jobs[i], ws);
        if (!jobs[i].pid && jobs[i].pending)
            start(volstore, &jobs[i]);
    }
}

/* Some of CREATED has a label policy NAME selects. */
static bool selected(const char *policy, char *const *created, size_t n)
{
    struct vault_rel_policy p;
    if (vault_rel_policy_load(policy, &p))
        return false;
    for (size_t i = 0; i < n; i++)
        if (vault_rel_selects(&p, created[i]))
            return true;
    return false;
}

/* The relationships of volume UUID whose policies select some of
 * CREATED (*R malloc'd): how many, 0 on any error. */
static size_t relationships_for(const uint8_t uuid[16], char *const *created,
                                size_t n, struct vault_relationship **r)
{
    size_t nr, m = 0;
    if (!n || vault_rel_all(r, &nr))
        return 0;
    for (size_t i = 0; i < nr; i++)
        if (!memcmp((*r)[i].volume, uuid, 16) &&
            selected((*r)[i].policy, created, n))
            (*r)[m++] = (*r)[i];
    if (!m) {
        free(*r);
        *r = NULL;
    }
    return m;
}

int vault_updates_run(const char *volume, const uint8_t uuid[16],
                      char *const *created, size_t n)
{
    struct vault_relationship *r = NULL;
    size_t m = relationships_for(uuid, created, n, &r);
    int failed = 0;
    for (size_t i = 0; i < m; i++) {
        pid_t pid;
        int ws = 0, rc = spawn_update(volume, r[i].store, false, &pid);
        fflush(stdout);
        if (!rc && waitpid(pid, &ws, 0) != pid)
            rc = errno;
        if (rc)
            fprintf(stderr, "snapfs: %s: vault: could not run the update to "
                    "object store %s: %s\n", volume, r[i].store,
                    strerror(rc));
        failed += rc || !WIFEXITED(ws) || WEXITSTATUS(ws);
    }
    free(r);
    return failed;
}

static void after_tick(const char *volstore, const uint8_t uuid[16],
                       char *const *created, size_t n)
{
    reap(volstore);
    struct vault_relationship *r = NULL;
    size_t nr = relationships_for(uuid, created, n, &r);
    for (size_t i = 0; i < nr; i++) {
        struct job *j = job_of(r[i].store);
        if (!j) {
            fprintf(stderr, "snapfs: %s: vault: more than %d object stores; "
                    "%s is not updated\n", volstore, JOBS_MAX, r[i].store);
        } else if (j->pid) {
            j->pending = true;
        } else {
            start(volstore, j);
        }
    }
    free(r);
}

static void wait_ms(long ms)
{
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&t, NULL);
}

static void stop(const char *volstore)
{
    for (int i = 0; i < JOBS_MAX; i++) {
        jobs[i].pending = false;
        if (jobs[i].pid)
            kill(jobs[i].pid, SIGTERM);
    }
    for (long waited = 0; waited <= VAULT_STOP_WAIT_MS; waited += 20) {
        bool any = false;
        for (int i = 0; i < JOBS_MAX; i++) {
            int ws;
            if (jobs[i].pid && waitpid(jobs[i].pid, &ws, WNOHANG) == jobs[i].pid)
                reaped(volstore, &jobs[i], ws);
            any |= jobs[i].pid != 0;
        }
        if (!any)
            return;
        wait_ms(20);
    }
    for (int i = 0; i < JOBS_MAX; i++)
        if (jobs[i].pid) {
            int ws;
            kill(jobs[i].pid, SIGKILL);
            if (waitpid(jobs[i].pid, &ws, 0) == jobs[i].pid)
                reaped(volstore, &jobs[i], ws);
        }
}

void vault_daemon_install(void)
{
    static const struct scheduler_hook h = { after_tick, stop };
    scheduler_set_hook(&h);
}
