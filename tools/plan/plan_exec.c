/*
 * plan_exec.c - running what a plan's steps run: this binary's own
 * subcommands (mirror update/break/reverse-resync, clone, mount, umount)
 * and the administrator's step scripts.
 *
 * Guarantees: every child is waited for; a step script runs in a process
 * group of its own and, past its timeout, the whole group is killed
 * (SIGKILL), so a hung script never hangs the plan; the last line a child
 * wrote on stderr is kept (the reason a report gives); a script's stdout
 * goes to our stderr, so that `--json` output stays one document.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mirror/replicate.h"
#include "peer/peer.h"
#include "plan.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Keep the last non-empty line of what was read so far in LAST; PART is
 * the line being read (PARTCAP bytes). */
static void track_last_line(const char *buf, size_t n, char *part,
                            size_t partcap, size_t *plen, char *last,
                            size_t lastcap)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            if (*plen) {
                part[*plen] = 0;
                snprintf(last, lastcap, "%s", part);
            }
            *plen = 0;
        } else if (*plen + 1 < partcap) {
            part[(*plen)++] = buf[i];
        }
    }
}

struct child_io {
    int out_fd, err_fd;     /* -1 once at their end */
    char *out;              /* stdout kept here (may be NULL) */
    size_t out_cap, out_len;
    bool echo_err;
    char part[512];
    size_t plen;
};

/* Read what is ready on IO's pipes: false once both are at their end. */
static bool pump(struct child_io *io, int wait_ms, struct exec_result *r)
{
    struct pollfd pf[2] = { { io->out_fd, POLLIN, 0 },
                            { io->err_fd, POLLIN, 0 } };
    if (io->out_fd < 0 && io->err_fd < 0)
        return false;
    if (poll(pf, 2, wait_ms) <= 0)
        return true;
    char buf[4096];
    for (int k = 0; k < 2; k++) {
        if (pf[k].fd < 0 || !pf[k].revents)
            continue;
        ssize_t n = read(pf[k].fd, buf, sizeof(buf));
        if (n <= 0) {
            close(pf[k].fd);
            *(k ? &io->err_fd : &io->out_fd) = -1;
            continue;
        }
        if (k == 0 && io->out && io->out_len + 1 < io->out_cap) {
            size_t room = io->out_cap - 1 - io->out_len;
            size_t take = (size_t)n < room ? (size_t)n : room;
            memcpy(io->out + io->out_len, buf, take);
            io->out_len += take;
            io->out[io->out_len] = 0;
        }
        if (k == 1) {
            track_last_line(buf, (size_t)n, io->part, sizeof(io->part),
                            &io->plen, r->last_err, sizeof(r->last_err));
            if (io->echo_err && write(2, buf, (size_t)n) < 0)
                io->echo_err = false;
        }
    }
    return true;
}

/* Fork and exec PATH ARGV with ENV added; stdout to a pipe (KEEP_OUT) or
 * to our stderr, stderr to a pipe.  The child's pid, or -1. */
static pid_t start(const char *path, char *const argv[], char *const env[],
                   bool keep_out, struct child_io *io)
{
    int o[2] = { -1, -1 }, e[2];
    if (pipe2(e, O_CLOEXEC) || (keep_out && pipe2(o, O_CLOEXEC)))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(keep_out ? o[1] : 2, 1);
        dup2(e[1], 2);
        for (size_t i = 0; env && env[i]; i++)
            putenv(env[i]);
        execv(path, argv);
        dprintf(2, "%s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(e[1]);
    if (keep_out)
        close(o[1]);
    io->out_fd = keep_out ? o[0] : -1;
    io->err_fd = e[0];
    if (pid < 0) {
        close(e[0]);
        if (keep_out)
            close(o[0]);
    }
    return pid;
}

/* Read the child's output until it ends or TIMEOUT seconds (0: none)
 * pass, then wait for it. */
static void finish(pid_t pid, struct child_io *io, int timeout, double t0,
                   struct exec_result *r)
{
    bool killed = false;
    while (pump(io, 200, r))
        if (timeout && !killed && now_seconds() - t0 > timeout) {
            kill(-pid, SIGKILL);
            killed = true;
        }
    if (io->plen) { /* a last line without its newline */
        io->part[io->plen] = 0;
        snprintf(r->last_err, sizeof(r->last_err), "%s", io->part);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (killed) {
        r->status = 124;
        snprintf(r->last_err, sizeof(r->last_err),
                 "timed out after %d seconds (its processes were killed)",
                 timeout);
    } else {
        r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    r->seconds = now_seconds() - t0;
}

void plan_exec_self(char *const argv[], char *out, size_t cap,
                    bool echo_err, struct exec_result *r)
{
    char *full[32] = { "snapfs" };
    size_t n = 1;
    for (; argv[n - 1] && n < 31; n++)
        full[n] = argv[n - 1];
    full[n] = NULL;
    memset(r, 0, sizeof(*r));
    struct child_io io = { .out = out, .out_cap = cap, .echo_err = echo_err };
    if (out && cap)
        out[0] = 0;
    double t0 = now_seconds();
    pid_t pid = start("/proc/self/exe", full, NULL, out != NULL, &io);
    if (pid < 0) {
        r->status = 127;
        snprintf(r->last_err, sizeof(r->last_err), "%s", strerror(errno));
        return;
    }
    finish(pid, &io, 0, t0, r);
}

void plan_exec_script(const char *script, char *const env[], int timeout,
                      struct exec_result *r)
{
    char *argv[] = { "sh", "-c", (char *)script, NULL };
    memset(r, 0, sizeof(*r));
    struct child_io io = { .echo_err = true };
    double t0 = now_seconds();
    pid_t pid = start("/bin/sh", argv, env, false, &io);
    if (pid < 0) {
        r->status = 127;
        snprintf(r->last_err, sizeof(r->last_err), "%s", strerror(errno));
        return;
    }
    finish(pid, &io, timeout, t0, r);
}

int plan_probe(const char *path, struct destination_info *d,
               struct exec_result *r)
{
    char out[4096], peer[PEER_NAME_MAX + 1];
    const char *colon = strchr(path, ':');
    size_t n = colon ? (size_t)(colon - path) : 0;
    bool remote = path[0] != '/' && colon && n <= PEER_NAME_MAX;
    if (remote) {
        memcpy(peer, path, n);
        peer[n] = 0;
    }
    char *local[] = { "receive", "--handshake", (char *)path, NULL };
    char *far[] = { "peer", "run", peer, "--", "receive", "--handshake",
                    remote ? (char *)colon + 1 : (char *)path, NULL };
    plan_exec_self(remote ? far : local, out, sizeof(out), false, r);
    if (r->status)
        return -EIO;
    out[strcspn(out, "\n")] = 0;
    if (destination_info_parse(out, d)) {
        r->status = 1;
        snprintf(r->last_err, sizeof(r->last_err), "%s: not a snapfs "
                 "volume's description: %.200s", path, out);
        return -EIO;
    }
    return 0;
}
