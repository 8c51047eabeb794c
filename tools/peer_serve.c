/*
 * peer_serve.c - `snapfs peer serve`: accepts peer connections and runs
 * the one allowed snapfs subcommand each asks for.
 *
 * The server process only accepts: each connection gets a process of
 * its own (at most MAX_CONNECTIONS at once; more wait in the listen
 * backlog), which reads the accepted key from the config dir (so a new
 * `peer passphrase` applies to the next connection), does the TLS 1.3
 * PSK handshake (peer_tls.c), reads the request, checks it against
 * allowed_commands, runs it as a child of this same binary
 * (/proc/self/exe) with pipes for stdin, stdout and stderr, and relays
 * (peer_relay.c) until it has sent the command's exit status and
 * stderr.  The command dies with its connection process (SIGTERM, by
 * PR_SET_PDEATHSIG); a client that goes away kills it too.
 *
 * Guarantees: nothing runs before the client proved the key, and
 * nothing runs that the table does not allow; every connection is
 * logged (peer address, command or refusal, exit status), keys and
 * passphrases never; SIGTERM or SIGINT stops accepting, ends the
 * connections (SIGTERM to each), removes the pidfile and returns 0.
 * One server per config dir: DIR/serve.pid is locked while it runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "peer_wire.h"

#define MAX_CONNECTIONS 16

/*
 * What a peer may run: the subcommand, and the word its arguments must
 * start with (NULL: any arguments).  Mirroring needs `send` and
 * `receive`; `snapshot list` and `info` let the other side look.
 */
static const struct allowed_command {
    const char *command;
    const char *subcommand;
} allowed_commands[] = {
    { "send", NULL },
    { "receive", NULL },
    { "snapshot", "list" },
    { "info", NULL },
};

struct peer_server {
    int listen_fd;
    int pid_fd;
    pid_t children[MAX_CONNECTIONS];
    size_t nchildren;
    sigset_t orig_mask;
};

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
    stop_signal = sig;
}

static void on_child(int sig)
{
    (void)sig; /* only to end ppoll */
}

/* One line of the server's log (stderr: the terminal or DIR/serve.log). */
static void serve_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void serve_log(const char *fmt, ...)
{
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s snapfs peer serve[%d]: ", when, (int)getpid());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- one connection ---- */

/* NULL if ARGV may run, else why not (into BUF). */
static const char *refusal(char **argv, char *buf, size_t cap)
{
    size_t n = sizeof(allowed_commands) / sizeof(allowed_commands[0]);
    for (size_t i = 0; i < n; i++) {
        const struct allowed_command *a = &allowed_commands[i];
        if (!strcmp(argv[0], a->command) &&
            (!a->subcommand || (argv[1] && !strcmp(argv[1], a->subcommand))))
            return NULL;
    }
    size_t at = (size_t)snprintf(buf, cap, "'%s%s%s' is not allowed through a "
                                 "peer (allowed:", argv[0], argv[1] ? " " : "",
                                 argv[1] ? argv[1] : "");
    for (size_t i = 0; i < n && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s %s%s%s", i ? "," : "",
                               allowed_commands[i].command,
                               allowed_commands[i].subcommand ? " " : "",
                               allowed_commands[i].subcommand
                                   ? allowed_commands[i].subcommand : "");
    if (at < cap)
        snprintf(buf + at, cap - at, ")");
    return buf;
}

/* In the command's process: pipes onto 0, 1, 2, then this binary, in
 * "/" (relative paths of a request mean the same whether the server
 * runs in the foreground or as a daemon). */
static void exec_command(char **argv, int in, int out, int err)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGPIPE, SIG_DFL);
    if (chdir("/") || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(127);
    execv("/proc/self/exe", argv);
    fprintf(stderr, "snapfs: cannot run snapfs: %s\n", strerror(errno));
    _exit(127);
}

/* Start `snapfs ARGV...`; our ends of its stdin, stdout, stderr. */
static pid_t start_command(char **argv, int fds[3])
{
    int p[3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } };
    size_t n = 0;
    while (argv[n])
        n++;
    char **full = calloc(n + 2, sizeof(*full));
    pid_t pid = -1;
    if (full && !pipe2(p[0], O_CLOEXEC) && !pipe2(p[1], O_CLOEXEC) &&
        !pipe2(p[2], O_CLOEXEC)) {
        full[0] = "snapfs";
        memcpy(full + 1, argv, n * sizeof(*argv));
        pid = fork();
        if (pid == 0)
            exec_command(full, p[0][0], p[1][1], p[2][1]);
    }
    int ours[3] = { p[0][1], p[1][0], p[2][0] };
    int theirs[3] = { p[0][0], p[1][1], p[2][1] };
    for (int i = 0; i < 3; i++) {
        if (theirs[i] >= 0)
            close(theirs[i]);
        if (pid < 0 && ours[i] >= 0)
            close(ours[i]);
        fds[i] = ours[i];
    }
    free(full);
    return pid;
}

/* Run the accepted ARGV with its stdio relayed over SSL. */
static int run_command(SSL *ssl, int sock, char **argv, const char *who,
                       const char *shown)
{
    int fds[3];
    pid_t pid = start_command(argv, fds);
    if (pid < 0) {
        int rc = -errno;
        peer_frame_send(ssl, PF_REFUSE, "the server cannot start commands",
                        strlen("the server cannot start commands"));
        serve_log("%s: '%s': cannot start: %s", who, shown, strerror(-rc));
        return rc;
    }
    int rc = peer_frame_send(ssl, PF_ACCEPT, NULL, 0);
    struct peer_relay r;
    peer_socket_setup(sock, 0);
    peer_relay_init(&r, ssl, sock, fds[1], fds[0], fds[2], pid);
    if (!rc)
        rc = peer_relay_run(&r);
    if (rc && r.child > 0) {
        kill(r.child, SIGTERM);
        waitpid(r.child, NULL, 0);
    }
    if (rc)
        serve_log("%s: '%s': %s; the command was stopped", who, shown,
                  rc == -ECONNRESET ? "the client went away" : strerror(-rc));
    else
        serve_log("%s: '%s': exit %d", who, shown, r.status);
    peer_relay_free(&r);
    return rc;
}

/* After EXIT: close_notify, then wait (10 s at most) for the client to
 * close, so that its last bytes are not answered with a reset that
 * could destroy our EXIT in its receive buffer. */
static void close_gently(SSL *ssl, int sock)
{
    SSL_shutdown(ssl);
    shutdown(sock, SHUT_WR);
    char sink[4096];
    struct pollfd p = { .fd = sock, .events = POLLIN };
    while (poll(&p, 1, 10000) > 0 && read(sock, sink, sizeof(sink)) > 0)
        continue;
}

/* Read the request; refuse it or run it. */
static int serve_request(SSL *ssl, int sock, const char *who)
{
    uint8_t type, *payload;
    size_t n;
    char **argv = NULL, shown[512], why[512];
    int rc = peer_frame_recv(ssl, &type, &payload, &n);
    if (!rc) {
        rc = type == PF_REQUEST ? peer_argv_decode(payload, n, &argv) : -EPROTO;
        free(payload);
    }
    if (rc) {
        serve_log("%s: no valid request: %s", who, strerror(-rc));
        return rc;
    }
    peer_argv_show(argv, shown, sizeof(shown));
    const char *no = refusal(argv, why, sizeof(why));
    if (no) {
        serve_log("%s: refused '%s': not allowed", who, shown);
        peer_frame_send(ssl, PF_REFUSE, no, strlen(no));
        rc = -EPERM;
    } else {
        rc = run_command(ssl, sock, argv, who, shown);
    }
    peer_argv_free(argv);
    return rc;
}

static int serve_connection(int sock, const char *who)
{
    uint8_t key[PEER_KEY_LEN];
    char why[256];
    int rc = peer_serve_key_load(key);
    if (rc) {
        serve_log("%s: cannot read the key: %s", who, strerror(-rc));
        return rc;
    }
    SSL_CTX *ctx = peer_tls_ctx(true, key);
    OPENSSL_cleanse(key, sizeof(key));
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    rc = ssl && SSL_set_fd(ssl, sock) ? 0 : -ENOMEM;
    if (!rc)
        rc = peer_socket_setup(sock, PEER_SETUP_SECONDS);
    if (!rc) {
        rc = peer_tls_handshake(ssl, true, why, sizeof(why));
        if (rc)
            serve_log("%s: handshake failed (%s): %s", who,
                      rc == -EACCES ? "authentication failed"
                                    : "not TLS 1.3 with the peer key", why);
    }
    if (!rc) {
        rc = serve_request(ssl, sock, who);
        close_gently(ssl, sock);
    }
    SSL_free(ssl);
    peer_tls_ctx_free(ctx);
    close(sock);
    return rc;
}

/* ---- the server ---- */

static void describe(const struct sockaddr *sa, socklen_t len, char *out,
                     size_t cap)
{
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (getnameinfo(sa, len, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV))
        snprintf(out, cap, "?");
    else
        snprintf(out, cap, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
}

static void accept_one(struct peer_server *s)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int sock = accept4(s->listen_fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
    if (sock < 0)
        return;
    char who[NI_MAXHOST + NI_MAXSERV + 4];
    describe((struct sockaddr *)&ss, len, who, sizeof(who));
    pid_t pid = fork();
    if (pid == 0) {
        close(s->listen_fd);
        close(s->pid_fd);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        signal(SIGPIPE, SIG_IGN);
        sigprocmask(SIG_SETMASK, &s->orig_mask, NULL);
        _exit(serve_connection(sock, who) ? 1 : 0);
    }
    if (pid < 0)
        serve_log("%s: cannot fork: %s", who, strerror(errno));
    else
        s->children[s->nchildren++] = pid;
    close(sock);
}

static void reap_children(struct peer_server *s)
{
    pid_t pid;
    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
        for (size_t i = 0; i < s->nchildren; i++)
            if (s->children[i] == pid) {
                s->children[i] = s->children[--s->nchildren];
                break;
            }
}

static int bind_listen(const char *listen_addr, int *out, char *why,
                       size_t whycap)
{
    char host[PEER_ADDRESS_MAX], port[16];
    if (peer_address_split(listen_addr, host, sizeof(host), port, sizeof(port))) {
        snprintf(why, whycap, "%s", listen_addr);
        return -EINVAL;
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICHOST }, *res;
    int gai = getaddrinfo(host, port, &hints, &res);
    snprintf(why, whycap, "%s", listen_addr);
    if (gai)
        return -EINVAL;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    int rc = fd < 0 ? -errno : 0;
    if (!rc && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
                bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 64)))
        rc = -errno;
    freeaddrinfo(res);
    if (rc && fd >= 0)
        close(fd);
    if (!rc)
        *out = fd;
    return rc;
}

/* Lock DIR/serve.pid: -EALREADY (WHY: its pid) if a server holds it. */
static int lock_pidfile(int *out, char *why, size_t whycap)
{
    char path[4096];
    int rc = peer_config_make();
    if (!rc)
        rc = peer_config_path(path, sizeof(path), "serve.pid");
    int fd = rc ? -1 : open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (!rc && fd < 0)
        rc = -errno;
    snprintf(why, whycap, "%s", path);
    if (!rc && flock(fd, LOCK_EX | LOCK_NB)) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        snprintf(why, whycap, "%d", atoi(pid));
        rc = -EALREADY;
    }
    if (rc && fd >= 0)
        close(fd);
    if (!rc)
        *out = fd;
    return rc;
}

static void write_pid(struct peer_server *s, pid_t pid)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%d\n", (int)pid);
    if (ftruncate(s->pid_fd, 0) || pwrite(s->pid_fd, text, (size_t)n, 0) != n)
        serve_log("cannot write the pidfile: %s", strerror(errno));
}

int peer_serve_open(const char *listen_addr, struct peer_server **out,
                    char *bound, size_t boundcap, char *why, size_t whycap)
{
    uint8_t key[PEER_KEY_LEN];
    int rc = peer_serve_key_load(key);
    OPENSSL_cleanse(key, sizeof(key));
    snprintf(why, whycap, "%s", peer_config_dir());
    if (rc)
        return rc;
    struct peer_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->listen_fd = s->pid_fd = -1;
    rc = lock_pidfile(&s->pid_fd, why, whycap);
    if (!rc)
        rc = bind_listen(listen_addr ? listen_addr : "0.0.0.0:" PEER_DEFAULT_PORT,
                         &s->listen_fd, why, whycap);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (!rc && getsockname(s->listen_fd, (struct sockaddr *)&ss, &len))
        rc = -errno;
    if (rc) {
        peer_serve_close(s);
        return rc;
    }
    describe((struct sockaddr *)&ss, len, bound, boundcap);
    *out = s;
    return 0;
}

void peer_serve_close(struct peer_server *s)
{
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->pid_fd >= 0)
        close(s->pid_fd);
    free(s);
}

pid_t peer_serve_daemonize(struct peer_server *s)
{
    char log[4096];
    int rc = peer_config_path(log, sizeof(log), "serve.log");
    int logfd = rc ? -1 : open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (logfd < 0 || null < 0) {
        rc = rc ? rc : -errno;
        goto out;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid > 0) {
        write_pid(s, pid);
        rc = pid;
    } else if (pid < 0) {
        rc = -errno;
    } else {
        setsid();
        if (chdir("/") || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
            dup2(logfd, 2) < 0)
            _exit(1);
        rc = 0;
    }
out:
    if (logfd >= 0)
        close(logfd);
    if (null >= 0)
        close(null);
    return rc;
}

static void stop_children(struct peer_server *s)
{
    for (size_t i = 0; i < s->nchildren; i++)
        kill(s->children[i], SIGTERM);
    for (size_t i = 0; i < s->nchildren; i++)
        waitpid(s->children[i], NULL, 0);
    s->nchildren = 0;
}

int peer_serve_run(struct peer_server *s)
{
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &s->orig_mask);
    struct sigaction stop = { .sa_handler = on_stop }, child = { .sa_handler = on_child };
    sigaction(SIGTERM, &stop, NULL);
    sigaction(SIGINT, &stop, NULL);
    sigaction(SIGCHLD, &child, NULL);
    write_pid(s, getpid());
    serve_log("serving (pid %d)", (int)getpid());
    while (!stop_signal) {
        reap_children(s);
        struct pollfd p = { .fd = s->listen_fd, .events = POLLIN };
        nfds_t n = s->nchildren < MAX_CONNECTIONS ? 1 : 0;
        if (ppoll(&p, n, NULL, &s->orig_mask) > 0 && (p.revents & POLLIN))
            accept_one(s);
    }
    stop_children(s);
    char path[4096];
    if (!peer_config_path(path, sizeof(path), "serve.pid"))
        unlink(path);
    serve_log("stopped by signal %d", (int)stop_signal);
    sigprocmask(SIG_SETMASK, &s->orig_mask, NULL);
    return 0;
}
