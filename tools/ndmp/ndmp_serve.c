/*
 * ndmp_serve.c - `ndmp serve`'s listener: binds IPv6 and IPv4, accepts
 * control connections and runs each in a process of its own.
 *
 * Guarantees: a session is a child process, so a session that fails,
 * stalls or is killed never affects the others or the listener; at most
 * max_sessions run at once, and a connection past the limit is told so
 * (NOTIFY_CONNECTION_STATUS, REFUSED, with the reason) and closed; every
 * session's start and end is logged with the client's address; SIGTERM
 * (or SIGINT) stops accepting, asks every session to end (each stops
 * its backup or restore and cleans up after it) and waits for them.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ndmp.h"

void ndmp_log(int fd, const char *fmt, ...)
{
    char line[2048];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, " ndmp[%d]: ",
                          (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    n = m < 0 ? n : n + (size_t)m >= sizeof(line) - 1 ? sizeof(line) - 2
                                                         : n + (size_t)m;
    line[n++] = '\n';
    if (write(fd, line, n) < 0)
        return;
}

static int bind_one(const struct sockaddr *sa, socklen_t len, bool v6only,
                    int *out)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &(int){ v6only },
                   sizeof(int));
    if (bind(fd, sa, len) || listen(fd, 64)) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

int ndmp_listen(const struct ndmp_serve_opts *o, int fds[2], int *nfds,
                char *why, size_t whycap)
{
    *nfds = 0;
    if (!o->listen) {
        /* Every address: an IPv6 socket that also takes IPv4, or IPv4
         * alone where the host has no IPv6. */
        struct sockaddr_in6 s6 = { .sin6_family = AF_INET6,
                                   .sin6_port = htons((uint16_t)o->port),
                                   .sin6_addr = in6addr_any };
        int rc = bind_one((struct sockaddr *)&s6, sizeof(s6), false, fds);
        if (rc == -EAFNOSUPPORT) {
            struct sockaddr_in s4 = { .sin_family = AF_INET,
                                      .sin_port = htons((uint16_t)o->port) };
            rc = bind_one((struct sockaddr *)&s4, sizeof(s4), false, fds);
        }
        if (rc) {
            snprintf(why, whycap, "port %d: %s", o->port, strerror(-rc));
            return rc;
        }
        *nfds = 1;
        return 0;
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res;
    char port[16];
    snprintf(port, sizeof(port), "%d", o->port);
    int grc = getaddrinfo(o->listen, port, &hints, &res);
    if (grc) {
        snprintf(why, whycap, "%s: %s", o->listen, gai_strerror(grc));
        return -EINVAL;
    }
    int rc = -EADDRNOTAVAIL;
    for (struct addrinfo *a = res; a && *nfds < 2; a = a->ai_next) {
        rc = bind_one(a->ai_addr, a->ai_addrlen, true, &fds[*nfds]);
        if (!rc)
            (*nfds)++;
        else
            snprintf(why, whycap, "%s port %d: %s", o->listen, o->port,
                     strerror(-rc));
    }
    freeaddrinfo(res);
    return *nfds ? 0 : rc;
}

int ndmp_bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl))
        return -1;
    return ss.ss_family == AF_INET6
               ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
               : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void peer_name(const struct sockaddr_storage *ss, char *out,
                      size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)ss;
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
        port = ntohs(s->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)ss;
        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
        port = ntohs(s->sin6_port);
    }
    snprintf(out, cap, "%s port %d", host, port);
}

/* The one message a refused connection gets: NOTIFY_CONNECTION_STATUS
 * with reason REFUSED (2) and why. */
static void refuse(int fd, const char *why)
{
    struct xdr_out x = { 0 };
    struct ndmp_header h = { .sequence = 1, .time_stamp = (uint32_t)time(NULL),
                             .type = NDMP_MSG_REQUEST,
                             .code = NDMP_NOTIFY_CONNECTION_STATUS };
    ndmp_header_put(&x, &h);
    xout_u32(&x, 2);
    xout_u32(&x, NDMP_VERSION);
    xout_string(&x, why);
    if (!x.bad)
        rm_write(fd, x.buf, x.len);
    xout_free(&x);
}

static volatile sig_atomic_t serve_stop;

static void on_signal(int sig)
{
    if (sig == SIGTERM || sig == SIGINT)
        serve_stop = 1;
}

/* The sessions running, by process id. */
struct sessions {
    pid_t *pids;
    int n, max;
};

static void reap(struct sessions *ss, int log_fd, int flags)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, flags)) > 0) {
        for (int i = 0; i < ss->n; i++)
            if (ss->pids[i] == pid)
                ss->pids[i] = ss->pids[--ss->n];
        if (WIFSIGNALED(status))
            ndmp_log(log_fd, "session %d killed by signal %d", (int)pid,
                     WTERMSIG(status));
    }
}

/* SIGTERM: every session stops its operation (a backup's snapshot and
 * context are cleaned up), then the server ends. */
static int stop_sessions(struct sessions *ss, int log_fd)
{
    ndmp_log(log_fd, "stopping: %d sessions to end", ss->n);
    for (int i = 0; i < ss->n; i++)
        kill(ss->pids[i], SIGTERM);
    while (ss->n > 0) {
        int before = ss->n;
        reap(ss, log_fd, 0);
        if (ss->n == before)
            break;
    }
    ndmp_log(log_fd, "stopped");
    return 0;
}

int ndmp_serve_run(const struct ndmp_serve_opts *o, const int *fds, int nfds)
{
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct sessions ss = { .max = o->max_sessions };
    ss.pids = calloc((size_t)ss.max, sizeof(pid_t));
    if (!ss.pids)
        return -ENOMEM;
    ndmp_log(o->log_fd, "serving NDMPv4 on port %d (%d sessions at most, "
                        "authentication: md5%s)", o->port, o->max_sessions,
             o->allow_text ? ", text" : "");
    while (!serve_stop) {
        reap(&ss, o->log_fd, WNOHANG);
        struct pollfd p[2];
        for (int i = 0; i < nfds; i++)
            p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
        if (poll(p, (nfds_t)nfds, 1000) < 0 && errno != EINTR)
            return -errno;
        for (int i = 0; i < nfds; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            struct sockaddr_storage from;
            socklen_t sl = sizeof(from);
            int c = accept4(fds[i], (struct sockaddr *)&from, &sl,
                            SOCK_CLOEXEC);
            if (c < 0)
                continue;
            char peer[INET6_ADDRSTRLEN + 16];
            peer_name(&from, peer, sizeof(peer));
            reap(&ss, o->log_fd, WNOHANG);
            if (ss.n >= ss.max) {
                ndmp_log(o->log_fd, "%s: refused: %d sessions already "
                                    "(--max-sessions)", peer, ss.n);
                refuse(c, "too many sessions");
                close(c);
                continue;
            }
            pid_t pid = fork();
            if (pid == 0) {
                for (int j = 0; j < nfds; j++)
                    close(fds[j]);
                signal(SIGCHLD, SIG_DFL);
                signal(SIGTERM, SIG_DFL);
                signal(SIGINT, SIG_DFL);
                _exit(ndmp_session_run(o, c, peer));
            }
            if (pid > 0)
                ss.pids[ss.n++] = pid;
            else
                ndmp_log(o->log_fd, "%s: cannot start a session: %s", peer,
                         strerror(errno));
            close(c);
        }
    }
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    int rc = stop_sessions(&ss, o->log_fd);
    free(ss.pids);
    return rc;
}
