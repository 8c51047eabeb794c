/*
 * hooks.c - pre and post hooks around a snapshot: an application is asked
 * to make its files consistent (flush, checkpoint, lock) before the
 * snapshot and released after it, so the snapshot is application-
 * consistent rather than merely crash-consistent.
 *
 * Guarantees:
 *   - the snapshot is taken only after the pre hook exited 0 within the
 *     timeout (verdict HOOKS_APPLICATION); a pre hook that failed, was
 *     killed, could not start or hung gives HOOKS_ABANDONED (nothing is
 *     taken) or HOOKS_CRASH (taken and labelled consistency=crash), as the
 *     hook spec says; the label records which it was;
 *   - the post hook runs once whatever happened (also after an abandoned
 *     or failed snapshot, and, for a command that dies on the way, at its
 *     exit: hooks_after_at_exit), with SNAPFS_RESULT saying what happened,
 *     so an application locked by the pre hook is always released;
 *   - a hook that runs past the timeout is killed with SIGKILL together
 *     with every process of its process group (each hook gets a group of
 *     its own), then reaped: nothing waits longer than the timeout plus
 *     the time the kernel takes to deliver the kill;
 *   - a hook gets only SNAPFS_VOLUME, SNAPFS_SNAPSHOT, SNAPFS_PHASE,
 *     SNAPFS_RESULT (post), SNAPFS_HOOK_TIMEOUT, PATH, HOME, LOGNAME and
 *     LC_ALL=C: none of the caller's environment (which may hold keys or
 *     passphrases) reaches it; stdin is /dev/null, the directory is /;
 *   - what it writes on stdout and stderr goes, line by line, to the log
 *     callback (the daemon's log, or the command's stderr), with control
 *     characters shown as '?' and lines cut at 512 bytes.
 *
 * THEORY (waiting).  The hook's shell is spawned with posix_spawn (safe in
 * the multithreaded daemon: no code of ours runs between fork and exec)
 * into a new process group whose id is its pid.  We poll its output pipe
 * with a timeout of at most 100 ms and reap it with waitpid(WNOHANG)
 * between reads, so a hook that writes nothing and one that writes a lot
 * are timed alike.  Once the shell has ended we read what is left in the
 * pipe without waiting for EOF: a process the hook started in the
 * background (a session holding a database lock until the post hook)
 * could keep the pipe open forever; hooks redirect such processes'
 * output (contrib/hooks do).
 */
#define _GNU_SOURCE
#include "hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HOOK_LINE_MAX 512
#define HOOK_POLL_MS 100

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- output, line by line ---- */

struct linebuf {
    const char *phase;
    hook_log_fn log;
    void *arg;
    char line[HOOK_LINE_MAX + 1];
    size_t len;
};

static void line_flush(struct linebuf *lb)
{
    if (!lb->len)
        return;
    char out[HOOK_LINE_MAX + 32];
    lb->line[lb->len] = 0;
    snprintf(out, sizeof(out), "%s hook: %s", lb->phase, lb->line);
    lb->log(lb->arg, out);
    lb->len = 0;
}

static void line_feed(struct linebuf *lb, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\n') {
            line_flush(lb);
            continue;
        }
        if (lb->len == HOOK_LINE_MAX)
            line_flush(lb);
        lb->line[lb->len++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
}

/* Read what FD has now (WAIT_MS: how long to wait for it); false at EOF
 * or on an error. */
static bool pump(int fd, struct linebuf *lb, int wait_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int n = poll(&p, 1, wait_ms);
    if (n <= 0)
        return n == 0 || errno == EINTR;
    char buf[4096];
    ssize_t got = read(fd, buf, sizeof(buf));
    if (got < 0)
        return errno == EINTR || errno == EAGAIN;
    if (got == 0)
        return false;
    line_feed(lb, buf, (size_t)got);
    return true;
}

/* ---- the environment ---- */

struct envbuf {
    char *v[12];
    char s[10][4096];
    int n;
};

static void env_add(struct envbuf *e, const char *name, const char *value)
{
    if (!value)
        return;
    snprintf(e->s[e->n], sizeof(e->s[e->n]), "%s=%s", name, value);
    e->v[e->n] = e->s[e->n];
    e->n++;
}

static void env_build(struct envbuf *e, const struct hook_env *env)
{
    char timeout[16], pwbuf[1024];
    struct passwd pw, *pwp = NULL;
    getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &pwp);
    snprintf(timeout, sizeof(timeout), "%u", env->timeout);
    e->n = 0;
    env_add(e, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                       "/sbin:/bin");
    env_add(e, "HOME", pwp ? pwp->pw_dir : "/");
    env_add(e, "LOGNAME", pwp ? pwp->pw_name : NULL);
    env_add(e, "LC_ALL", "C");
    env_add(e, "SNAPFS_VOLUME", env->volume);
    env_add(e, "SNAPFS_SNAPSHOT", env->snapshot);
    env_add(e, "SNAPFS_PHASE", env->phase);
    env_add(e, "SNAPFS_RESULT", env->result);
    env_add(e, "SNAPFS_HOOK_TIMEOUT", timeout);
    e->v[e->n] = NULL;
}

/* ---- one hook ---- */

static int spawn_hook(const char *cmd, char **envp, int out_fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    static const int defaults[] = { SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT,
                                    SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        sigaddset(&dflt, defaults[i]);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
    posix_spawn_file_actions_addchdir_np(&fa, "/");
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
                                      POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dflt);
    char *argv[] = { "/bin/sh", "-c", (char *)cmd, NULL };
    int rc = posix_spawn(pid, "/bin/sh", &fa, &at, argv, envp);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return -rc;
}

static void record_status(struct hook_outcome *out, int status)
{
    if (WIFEXITED(status))
        out->status = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        out->signal = WTERMSIG(status);
}

void hook_run(const char *cmd, const struct hook_env *env, hook_log_fn log,
              void *arg, struct hook_outcome *out)
{
    memset(out, 0, sizeof(*out));
    struct envbuf e;
    env_build(&e, env);
    struct linebuf lb = { .phase = env->phase, .log = log, .arg = arg };
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC)) {
        out->err = -errno;
        return;
    }
    pid_t pid;
    uint64_t start = now_ms();
    out->err = spawn_hook(cmd, e.v, pfd[1], &pid);
    close(pfd[1]);
    if (out->err) {
        close(pfd[0]);
        return;
    }
    out->ran = true;
    uint64_t deadline = start + (uint64_t)env->timeout * 1000;
    bool open = true;
    int status = 0;
    for (;;) {
        uint64_t now = now_ms();
        uint64_t left = deadline > now ? deadline - now : 0;
        if (open)
            open = pump(pfd[0], &lb, left < HOOK_POLL_MS ? (int)left
                                                        : HOOK_POLL_MS);
        else
            poll(NULL, 0, left < HOOK_POLL_MS ? (int)left : HOOK_POLL_MS);
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) { /* cannot be waited for: failed */
            status = W_EXITCODE(127, 0);
            break;
        }
        if (now_ms() >= deadline) {
            kill(-pid, SIGKILL); /* the hook and whatever it started */
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            out->timed_out = true;
            break;
        }
    }
    out->ms = now_ms() - start;
    record_status(out, status);
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    while (open && pump(pfd[0], &lb, 0)) {
        struct pollfd p = { .fd = pfd[0], .events = POLLIN };
        if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN))
            break; /* nothing more now: a background process may hold it */
    }
    line_flush(&lb);
    close(pfd[0]);
}

bool hook_succeeded(const struct hook_outcome *o)
{
    return o->ran && !o->timed_out && !o->signal && o->status == 0;
}

void hook_describe(const struct hook_outcome *o, unsigned timeout, char *out,
                   size_t cap)
{
    if (!o->ran)
        snprintf(out, cap, "could not be started: %s", strerror(-o->err));
    else if (o->timed_out)
        snprintf(out, cap, "did not finish within %u s and was killed with "
                           "its process group", timeout);
    else if (o->signal)
        snprintf(out, cap, "was killed by signal %d", o->signal);
    else if (o->status)
        snprintf(out, cap, "exited with status %d", o->status);
    else
        snprintf(out, cap, "succeeded in %llu ms", (unsigned long long)o->ms);
}

/* ---- a snapshot's hooks ---- */

static unsigned timeout_of(const struct sfs_hookspec *h)
{
    return h->timeout ? h->timeout : SFS_HOOK_TIMEOUT_DEFAULT;
}

/* The label word for a failed pre hook: exit-N, signal-N, timeout,
 * not-started. */
static void failure_word(const struct hook_outcome *o, char *out, size_t cap)
{
    if (!o->ran)
        snprintf(out, cap, "not-started");
    else if (o->timed_out)
        snprintf(out, cap, "timeout");
    else if (o->signal)
        snprintf(out, cap, "signal-%d", o->signal);
    else
        snprintf(out, cap, "exit-%d", o->status);
}

static void log_line(struct hooks_run *r, const char *fmt, const char *a,
                     const char *b)
{
    char line[512];
    snprintf(line, sizeof(line), fmt, a, b);
    r->log(r->log_arg, line);
}

void hooks_before(struct hooks_run *r)
{
    const struct sfs_hookspec *h = r->spec;
    r->why[0] = 0;
    r->post_done = false;
    memset(&r->pre, 0, sizeof(r->pre));
    if (!h->pre[0]) { /* nothing quiesced the application */
        r->verdict = HOOKS_CRASH;
        snprintf(r->labels, sizeof(r->labels), "consistency=crash");
        return;
    }
    struct hook_env env = { r->volume, r->snapshot, "pre", NULL,
                            timeout_of(h) };
    log_line(r, "pre hook: running for snapshot %s of %s", r->snapshot,
             r->volume);
    hook_run(h->pre, &env, r->log, r->log_arg, &r->pre);
    char how[160], word[32];
    hook_describe(&r->pre, env.timeout, how, sizeof(how));
    log_line(r, "pre hook: %s%s", how, "");
    if (hook_succeeded(&r->pre)) {
        r->verdict = HOOKS_APPLICATION;
        snprintf(r->labels, sizeof(r->labels), "consistency=application");
        return;
    }
    snprintf(r->why, sizeof(r->why), "the pre hook %s", how);
    failure_word(&r->pre, word, sizeof(word));
    r->verdict = h->on_failure == SFS_HOOK_CRASH_CONSISTENT ? HOOKS_CRASH
                                                            : HOOKS_ABANDONED;
    snprintf(r->labels, sizeof(r->labels), "consistency=crash,pre-hook=%s",
             word);
}

static struct hooks_run *pending_at_exit;

void hooks_after(struct hooks_run *r, const char *result)
{
    if (pending_at_exit == r)
        pending_at_exit = NULL;
    if (r->post_done)
        return;
    r->post_done = true;
    r->post_why[0] = 0;
    const struct sfs_hookspec *h = r->spec;
    if (!h->post[0])
        return;
    struct hook_env env = { r->volume, r->snapshot, "post", result,
                            timeout_of(h) };
    log_line(r, "post hook: running (result %s)%s", result, "");
    hook_run(h->post, &env, r->log, r->log_arg, &r->post);
    char how[160];
    hook_describe(&r->post, env.timeout, how, sizeof(how));
    log_line(r, "post hook: %s%s", how, "");
    if (!hook_succeeded(&r->post))
        snprintf(r->post_why, sizeof(r->post_why), "the post hook %s", how);
}

static void run_pending(void)
{
    if (pending_at_exit)
        hooks_after(pending_at_exit, "failed");
}

void hooks_after_at_exit(struct hooks_run *r)
{
    static bool registered;
    if (r && !registered) {
        atexit(run_pending);
        registered = true;
    }
    pending_at_exit = r;
}

const char *hooks_result_word(int verdict)
{
    return verdict == HOOKS_APPLICATION ? "application"
           : verdict == HOOKS_CRASH     ? "crash"
                                        : "abandoned";
}
