/*
 * mirror_conn.c - the far end of a mirror transfer: `snapfs receive
 * --handshake DST` started where the destination is, with its stdin fed
 * the streams and its stdout read for the hello and "ok" lines
 * (replicate.h describes them).
 *
 * Three transports, one interface:
 *   local   this binary (/proc/self/exe) as a child, over pipes;
 *   peer    DST is PEER:PATH: the command runs on the peer over TLS 1.3
 *           with this host's key there (peer.h), so the transfer is
 *           encrypted and authenticated, if the peer grants it;
 *   via     the relationship's command run by /bin/sh with the extra
 *           words appended ("$@"), e.g. `ssh drhost snapfs receive
 *           --handshake /srv/dr/vol1.store`: whatever the command reaches,
 *           its stdin and stdout carry the transfer.
 * Also run_self: a subcommand of this binary, run and waited for.
 *
 * Guarantees: no descriptor or child outlives dst_close; the child's
 * stderr is kept (its last line is the reason a transfer failed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mirror.h"

#define EXTRA_MAX 8

enum dst_kind mirror_dst_kind(const struct mirror_rel *m, char *peer,
                              char *path)
{
    if (m->via[0])
        return DST_VIA;
    const char *colon = strchr(m->dst, ':');
    struct stat sb;
    if (!colon || m->dst[0] == '/' || !stat(m->dst, &sb))
        return DST_LOCAL;
    size_t n = (size_t)(colon - m->dst);
    if (n > PEER_NAME_MAX)
        return DST_LOCAL;
    memcpy(peer, m->dst, n);
    peer[n] = 0;
    if (!peer_name_valid(peer))
        return DST_LOCAL;
    snprintf(path, PATH_MAX, "%s", colon + 1);
    return DST_PEER;
}

/* The last non-empty line of TEXT into OUT. */
static void last_line(const char *text, char *out, size_t cap)
{
    size_t len = strlen(text);
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
        len--;
    size_t start = len;
    while (start && text[start - 1] != '\n')
        start--;
    size_t n = len - start < cap - 1 ? len - start : cap - 1;
    memcpy(out, text + start, n);
    out[n] = 0;
}

/* Read FD to its end into OUT (the tail that fits). */
static void read_all(int fd, char *out, size_t cap)
{
    size_t len = 0;
    char chunk[1024];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0 ||
           (n < 0 && errno == EINTR)) {
        if (n <= 0)
            continue;
        if (len + (size_t)n >= cap) { /* keep the end: it says why */
            size_t drop = len + (size_t)n - (cap - 1);
            if (drop > len)
                drop = len;
            memmove(out, out + drop, len - drop);
            len -= drop;
        }
        size_t take = (size_t)n < cap - 1 - len ? (size_t)n : cap - 1 - len;
        memcpy(out + len, chunk + (size_t)n - take, take);
        len += take;
    }
    out[len] = 0;
}

/* Fork ARGV (execv of PROG) with pipes for stdin, stdout, stderr. */
static int spawn(const char *prog, char *const argv[], struct dst_conn *c)
{
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC))
        return -errno;
    if (pipe2(out, O_CLOEXEC)) {
        close(in[0]);
        close(in[1]);
        return -errno;
    }
    if (pipe2(err, O_CLOEXEC)) {
        int e = errno;
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        return -e;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        signal(SIGPIPE, SIG_DFL);
        execv(prog, argv);
        dprintf(2, "%s: %s\n", prog, strerror(errno));
        _exit(127);
    }
    int e = errno;
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (pid < 0) {
        close(in[1]);
        close(out[0]);
        close(err[0]);
        return -e;
    }
    c->pid = pid;
    c->in_fd = in[1];
    c->out_fd = out[0];
    c->err_fd = err[0];
    return 0;
}

static int wait_status(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 255;
    return WIFEXITED(status) ? WEXITSTATUS(status)
                             : 128 + WTERMSIG(status);
}

int run_self(char *const argv[], char *err, size_t cap)
{
    struct dst_conn c = { .kind = DST_LOCAL };
    char *full[32] = { "snapfs" };
    int n = 1;
    for (; argv[n - 1] && n < 31; n++)
        full[n] = argv[n - 1];
    full[n] = NULL;
    int rc = spawn("/proc/self/exe", full, &c);
    if (rc) {
        if (err)
            snprintf(err, cap, "%s", strerror(-rc));
        return 255;
    }
    close(c.in_fd);
    char out[4096];
    read_all(c.out_fd, out, sizeof(out));
    close(c.out_fd);
    char text[4096];
    read_all(c.err_fd, text, sizeof(text));
    close(c.err_fd);
    if (err)
        last_line(text, err, cap);
    return wait_status(c.pid);
}

int dst_open(const struct mirror_rel *m, const char *const extra[],
             struct dst_conn *c, char *err, size_t cap)
{
    memset(c, 0, sizeof(*c));
    c->in_fd = c->out_fd = c->err_fd = -1;
    char peer[PEER_NAME_MAX + 1], path[PATH_MAX];
    c->kind = mirror_dst_kind(m, peer, path);
    const char *argv[EXTRA_MAX + 8];
    char script[sizeof(m->via) + 8]; /* the command, the words appended */
    int n = 0, rc;
    switch (c->kind) {
    case DST_VIA:
        argv[n++] = "sh";
        argv[n++] = "-c";
        snprintf(script, sizeof(script), "%s \"$@\"", m->via);
        argv[n++] = script;
        argv[n++] = "sh";
        break;
    case DST_LOCAL:
        argv[n++] = "snapfs";
        /* fall through */
    case DST_PEER:
        argv[n++] = "receive";
        argv[n++] = "--handshake";
        break;
    }
    for (int i = 0; extra && extra[i] && i < EXTRA_MAX; i++)
        argv[n++] = extra[i];
    if (c->kind != DST_VIA)
        argv[n++] = c->kind == DST_PEER ? path : m->dst;
    argv[n] = NULL;
    if (c->kind == DST_PEER) {
        rc = peer_spawn(peer, (char *const *)argv, &c->chan);
        if (rc) {
            snprintf(err, cap, "peer %s: %s%s%s", peer, peer_strerror(rc),
                     c->chan.refusal[0] ? ": " : "", c->chan.refusal);
            return rc;
        }
        c->in_fd = c->out_fd = c->chan.fd;
        return 0;
    }
    rc = spawn(c->kind == DST_VIA ? "/bin/sh" : "/proc/self/exe",
               (char *const *)argv, c);
    if (rc)
        snprintf(err, cap, "starting the receiving end: %s", strerror(-rc));
    return rc;
}

int dst_hello(const struct mirror_rel *m, char *line, size_t cap, char *err,
              size_t errcap)
{
    struct dst_conn c;
    int rc = dst_open(m, NULL, &c, err, errcap);
    if (rc)
        return rc;
    rc = dst_read_line(&c, line, cap);
    dst_end_input(&c);
    char why[512];
    dst_close(&c, why, sizeof(why));
    if (rc)
        snprintf(err, errcap, "%s", why[0] ? why : "the destination did not "
                 "answer");
    return rc;
}

int dst_read_line(struct dst_conn *c, char *line, size_t cap)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t n = (size_t)(nl - c->buf);
            size_t take = n < cap - 1 ? n : cap - 1;
            memcpy(line, c->buf, take);
            line[take] = 0;
            c->len -= n + 1;
            memmove(c->buf, nl + 1, c->len);
            return 0;
        }
        if (c->len == sizeof(c->buf))
            c->len = 0; /* an overlong line: not the protocol */
        ssize_t got = read(c->out_fd, c->buf + c->len, sizeof(c->buf) - c->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -errno;
        if (got == 0)
            return -EPIPE;
        c->len += (size_t)got;
    }
}

void dst_end_input(struct dst_conn *c)
{
    if (c->kind == DST_PEER) {
        shutdown(c->chan.fd, SHUT_WR);
    } else if (c->in_fd >= 0) {
        close(c->in_fd);
        c->in_fd = -1;
    }
}

int dst_close(struct dst_conn *c, char *err, size_t cap)
{
    char text[8192];
    int status;
    if (c->kind == DST_PEER) {
        if (peer_wait(&c->chan, &status, text, sizeof(text)))
            snprintf(text, sizeof(text), "the connection to the peer broke");
    } else {
        dst_end_input(c);
        close(c->out_fd);
        read_all(c->err_fd, text, sizeof(text));
        close(c->err_fd);
        status = wait_status(c->pid);
    }
    last_line(text, err, cap);
    return status;
}

/* Fork ARGV of this binary with stdin IN, stdout OUT (-1: /dev/null) and
 * stderr into the pipe *ERR_FD (read end).  The pid, or -errno. */
static pid_t spawn_with(char *const argv[], int in, int out, int *err_fd)
{
    int err[2];
    if (pipe2(err, O_CLOEXEC))
        return -errno;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(in >= 0 ? in : null, 0);
        dup2(out >= 0 ? out : null, 1);
        dup2(err[1], 2);
        signal(SIGPIPE, SIG_DFL);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    int e = errno;
    close(err[1]);
    if (pid < 0) {
        close(err[0]);
        return -e;
    }
    *err_fd = err[0];
    return pid;
}

/* Wait for PID, its stderr ERR_FD read first; its last line into ERR when
 * it failed.  Its exit status. */
static int reap(pid_t pid, int err_fd, char *err, size_t cap)
{
    char text[4096];
    read_all(err_fd, text, sizeof(text));
    close(err_fd);
    int status = wait_status(pid);
    if (status && !err[0])
        last_line(text, err, cap);
    return status;
}

int pipe_stream(const struct mirror_rel *from, const char *snap,
                const char *target, char *err, size_t cap)
{
    char peer[PEER_NAME_MAX + 1], path[PATH_MAX];
    enum dst_kind kind = mirror_dst_kind(from, peer, path);
    err[0] = 0;
    if (kind == DST_VIA) {
        snprintf(err, cap, "a restore reads a local volume or PEER:PATH");
        return -EINVAL;
    }
    char *recv_argv[] = { "snapfs", "receive", (char *)target, NULL };
    int stream[2] = { -1, -1 }, send_err = -1, recv_err = -1, rc;
    struct peer_chan chan;
    pid_t sender = 0;
    if (kind == DST_PEER) {
        char *argv[] = { "send", path, (char *)snap, NULL };
        rc = peer_spawn(peer, argv, &chan);
        if (rc) {
            snprintf(err, cap, "peer %s: %s", peer, peer_strerror(rc));
            return rc;
        }
        shutdown(chan.fd, SHUT_WR);
        stream[0] = chan.fd;
    } else {
        if (pipe2(stream, O_CLOEXEC))
            return -errno;
        char *argv[] = { "snapfs", "send", (char *)from->dst, (char *)snap,
                         NULL };
        sender = spawn_with(argv, -1, stream[1], &send_err);
        close(stream[1]);
        if (sender < 0) {
            close(stream[0]);
            snprintf(err, cap, "%s", strerror((int)-sender));
            return (int)sender;
        }
    }
    pid_t receiver = spawn_with(recv_argv, stream[0], -1, &recv_err);
    if (kind != DST_PEER)
        close(stream[0]);
    char recv_why[512] = "";
    int status = 255;
    if (receiver > 0)
        status = reap(receiver, recv_err, recv_why, sizeof(recv_why));
    int sstatus = 0;
    if (kind == DST_PEER) {
        char text[1024];
        if (peer_wait(&chan, &sstatus, text, sizeof(text)))
            sstatus = 255;
        else if (sstatus)
            last_line(text, err, cap);
    } else {
        sstatus = reap(sender, send_err, err, cap);
    }
    if (!sstatus && status) /* the sender's words say more, if it failed */
        snprintf(err, cap, "%s", recv_why);
    status |= sstatus;
    return status ? -EIO : 0;
}
