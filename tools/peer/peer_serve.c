/*
 * peer_serve.c - `snapfs peer serve`: accepts peer connections and runs,
 * for each, the one snapfs subcommand it asks for, if its grants allow.
 *
 * The server process only accepts: each connection gets a process of
 * its own (at most MAX_CONNECTIONS at once; more wait in the listen
 * backlog), which reads the keys of the peers that may connect from the
 * config dir (so a new or revoked peer applies to the next connection),
 * does the TLS 1.3 PSK handshake (peer_tls.c), which tells which peer
 * proved its key, takes one of that peer's connection slots, reads the
 * request, decides it (peer_grants.c: an allowed command, and a grant of
 * that peer for the volume as the filesystem resolves it), runs it as a
 * child of this same binary (/proc/self/exe) with the granted volume's
 * identity in its environment (peer_guard.c) and pipes for stdin, stdout
 * and stderr, and relays (peer_relay.c) until it has sent the command's
 * exit status and stderr.  The command dies with its connection process
 * (SIGTERM, by PR_SET_PDEATHSIG); a client that goes away kills it too.
 *
 * The server's own limits: a request of at most PEER_REQUEST_MAX bytes,
 * PEER_ARGS_MAX words of PEER_ARG_MAX bytes; data frames of at most one
 * PEER_DATA_CHUNK; per_peer connections of one peer at once (slots: OFD
 * locks on bytes of DIR/serve.slots/NAME, released when its connection
 * process ends); a connection on which nothing moves for idle_seconds
 * (or PEER_SETUP_SECONDS before its request) is closed.
 *
 * Guarantees: nothing runs before the client proved a peer's key, and
 * nothing runs that the command table and that peer's grants do not
 * allow; every connection is logged with the peer's name once known, and
 * every refusal is one line naming the peer and what it asked for; keys
 * and passphrases never are; SIGTERM or SIGINT stops accepting, ends the
 * connections (SIGTERM to each), removes the pidfile and returns 0.  One
 * server per config dir: DIR/serve.pid is locked while it runs.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "peer_wire.h"

#define MAX_CONNECTIONS 16
#define SLOTS_DIR "serve.slots"

struct peer_server {
    int listen_fd;
    int pid_fd;
    pid_t children[MAX_CONNECTIONS];
    size_t nchildren;
    sigset_t orig_mask;
    struct peer_serve_opts opts;
};

/* One connection, in its process. */
struct conn {
    SSL_CTX *ctx;
    SSL *ssl;
    int sock;
    const struct peer_serve_opts *opts;
    const char *peer;   /* the peer that proved its key */
    char who[NI_MAXHOST + NI_MAXSERV + PEER_NAME_MAX + 16]; /* "ADDR:PORT"
                           and, once known, " peer NAME" */
    char shown[512];    /* the request, for the log */
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

/* Control characters (a peer's words may hold them) as '?': S stays
 * one line. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < ' ' || *s == 0x7f)
            *s = '?';
}

/* One line of the server's log (stderr: the terminal or DIR/serve.log). */
static void serve_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void serve_log(const char *fmt, ...)
{
    char when[32], line[2048];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    one_line(line);
    fprintf(stderr, "%s snapfs peer serve[%d]: %s\n", when, (int)getpid(),
            line);
}

/* ---- one connection ---- */

/* In the command's process: pipes onto 0, 1, 2, the volume it may
 * reach in its environment, then this binary (in "/", as the connection
 * process that decided the request). */
static void exec_command(char **argv, const char *volume, int in, int out,
                         int err)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGPIPE, SIG_DFL);
    if (setenv(PEER_GUARD_ENV, volume, 1) || dup2(in, 0) < 0 ||
        dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(127);
    execv("/proc/self/exe", argv);
    fprintf(stderr, "snapfs: cannot run snapfs: %s\n", strerror(errno));
    _exit(127);
}

/* Start `snapfs ARGV...` limited to VOLUME; our ends of its stdin,
 * stdout, stderr. */
static pid_t start_command(char **argv, const char *volume, int fds[3])
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
            exec_command(full, volume, p[0][0], p[1][1], p[2][1]);
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

static const char *relay_end(int rc)
{
    switch (rc) {
    case -ECONNRESET:
        return "the client went away";
    case -ETIMEDOUT:
        return "the connection was idle too long";
    case -EMSGSIZE:
        return "the client sent a frame larger than the server takes";
    default:
        return strerror(-rc);
    }
}

/* Run the accepted ARGV, limited to volume ID, with its stdio relayed. */
static int run_command(struct conn *c, char **argv,
                       const struct peer_volume_id *id)
{
    int fds[3];
    char volume[128];
    peer_volume_id_format(id, volume, sizeof(volume));
    pid_t pid = start_command(argv, volume, fds);
    if (pid < 0) {
        int rc = -errno;
        peer_frame_send(c->ssl, PF_REFUSE, "the server cannot start commands",
                        strlen("the server cannot start commands"));
        serve_log("%s: '%s': cannot start: %s", c->who, c->shown, strerror(-rc));
        return rc;
    }
    int rc = peer_frame_send(c->ssl, PF_ACCEPT, NULL, 0);
    struct peer_relay r;
    peer_socket_setup(c->sock, 0);
    peer_relay_init(&r, c->ssl, c->sock, fds[1], fds[0], fds[2], pid);
    r.frame_max = PEER_DATA_CHUNK;
    r.idle_seconds = c->opts->idle_seconds;
    if (!rc)
        rc = peer_relay_run(&r);
    if (rc && r.child > 0) {
        kill(r.child, SIGTERM);
        waitpid(r.child, NULL, 0);
    }
    if (rc)
        serve_log("%s: '%s': %s; the command was stopped", c->who, c->shown,
                  relay_end(rc));
    else
        serve_log("%s: '%s': exit %d", c->who, c->shown, r.status);
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

/* Refuse: TELL goes to the client, one line with WHY to the log. */
static int refuse(struct conn *c, const char *tell, const char *why)
{
    char text[1024];
    snprintf(text, sizeof(text), "%s", tell);
    one_line(text);
    serve_log("%s: refused '%s': %s", c->who, c->shown, why);
    peer_frame_send(c->ssl, PF_REFUSE, text, strlen(text));
    return -EPERM;
}

/* The server's limits on the words of a request; 0 or WHY. */
static int check_words(char **argv, char *why, size_t cap)
{
    size_t n = 0;
    for (; argv[n]; n++)
        if (strlen(argv[n]) > PEER_ARG_MAX) {
            snprintf(why, cap, "word %zu of the request is %zu bytes (the "
                     "server takes at most %d)", n + 1, strlen(argv[n]),
                     PEER_ARG_MAX);
            return -E2BIG;
        }
    if (n > PEER_ARGS_MAX) {
        snprintf(why, cap, "the request has %zu words (the server takes at "
                 "most %d)", n, PEER_ARGS_MAX);
        return -E2BIG;
    }
    return 0;
}

/* Decide ARGV: 0 with the volume it may reach, else refused. */
static int decide(struct conn *c, char **argv, struct peer_volume_id *id)
{
    char why[1024], tell[1024];
    struct peer_request req;
    int rc = check_words(argv, why, sizeof(why));
    if (!rc)
        rc = peer_request_parse(argv, &req, why, sizeof(why));
    if (rc)
        return refuse(c, why, why);
    rc = peer_request_allowed(c->peer, &req, id, why, sizeof(why));
    if (rc == -ENOENT)
        snprintf(tell, sizeof(tell), "peer %s has no grant on this host: it "
                 "may only connect (its administrator grants with: snapfs "
                 "peer allow %s send|receive VOLUME)", c->peer, c->peer);
    else if (rc == -EACCES)
        snprintf(tell, sizeof(tell), "peer %s has no %s grant for %.300s on "
                 "this host (its administrator grants it with: snapfs peer "
                 "allow %s %s %.300s)", c->peer, peer_op_name(req.need),
                 req.volume, c->peer, req.need == PEER_OP_LOOK
                     ? "send|receive" : peer_op_name(req.need), req.volume);
    else if (rc)
        snprintf(tell, sizeof(tell), "the grants of this host cannot be read; "
                 "nothing is allowed until its administrator repairs them");
    return rc ? refuse(c, tell, why) : 0;
}

/* Read the request; refuse it or run it. */
static int serve_request(struct conn *c)
{
    uint8_t type, *payload;
    size_t n;
    char **argv = NULL, why[128];
    int rc = peer_frame_recv(c->ssl, PEER_REQUEST_MAX, &type, &payload, &n);
    if (rc == -EMSGSIZE) {
        snprintf(c->shown, sizeof(c->shown), "a request of %zu bytes", n);
        snprintf(why, sizeof(why), "larger than the server takes (%u bytes)",
                 PEER_REQUEST_MAX);
        return refuse(c, why, why);
    }
    if (!rc) {
        rc = type == PF_REQUEST ? peer_argv_decode(payload, n, &argv) : -EPROTO;
        free(payload);
    }
    if (rc) {
        serve_log("%s: no valid request: %s", c->who,
                  rc == -ETIMEDOUT ? "none in time" : strerror(-rc));
        return rc;
    }
    peer_argv_show(argv, c->shown, sizeof(c->shown));
    struct peer_volume_id id;
    rc = decide(c, argv, &id);
    if (!rc)
        rc = run_command(c, argv, &id);
    peer_argv_free(argv);
    return rc;
}

/* Take one of the opts->per_peer connection slots of c->peer: an fd
 * holding it until this process ends, or -EBUSY when all are taken. */
static int take_slot(struct conn *c)
{
    char dir[4096], path[4200];
    int rc = peer_config_path(dir, sizeof(dir), SLOTS_DIR);
    if (!rc && mkdir(dir, 0700) && errno != EEXIST)
        rc = -errno;
    if (rc)
        return rc;
    snprintf(path, sizeof(path), "%s/%s", dir, c->peer);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    for (int i = 0; i < c->opts->per_peer; i++) {
        struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                           .l_start = i, .l_len = 1 };
        if (!fcntl(fd, F_OFD_SETLK, &l))
            return fd;
    }
    close(fd);
    return -EBUSY;
}

/* The handshake with the keys of every peer that may connect; then
 * c->peer is the one that proved its key. */
static int authenticate(struct conn *c)
{
    struct peer_key *keys;
    size_t n;
    char why[256];
    int rc = peer_inbound_keys(&keys, &n);
    if (rc) {
        serve_log("%s: cannot read the peers' keys: %s", c->who, strerror(-rc));
        return rc;
    }
    c->ctx = peer_tls_server_ctx(keys, n);
    peer_inbound_keys_free(keys, n);
    c->ssl = c->ctx ? SSL_new(c->ctx) : NULL;
    rc = c->ssl && SSL_set_fd(c->ssl, c->sock) ? 0 : -ENOMEM;
    int setup = c->opts->idle_seconds < PEER_SETUP_SECONDS
                    ? c->opts->idle_seconds : PEER_SETUP_SECONDS;
    if (!rc)
        rc = peer_socket_setup(c->sock, setup);
    if (!rc) {
        rc = peer_tls_handshake(c->ssl, true, why, sizeof(why));
        if (rc)
            serve_log("%s: handshake failed (%s): %s", c->who,
                      rc == -EACCES ? "authentication failed"
                                    : "not TLS 1.3 with a peer key", why);
    }
    if (!rc) {
        c->peer = peer_tls_peer_name(c->ssl);
        size_t at = strlen(c->who);
        snprintf(c->who + at, sizeof(c->who) - at, " peer %s", c->peer);
    }
    return rc;
}

static int serve_connection(struct conn *c)
{
    int rc = authenticate(c);
    if (!rc) {
        int slot = take_slot(c);
        if (slot == -EBUSY) {
            char tell[256];
            snprintf(c->shown, sizeof(c->shown), "a connection");
            snprintf(tell, sizeof(tell), "peer %s has %d connections open "
                     "here already (the server takes at most %d at once)",
                     c->peer, c->opts->per_peer, c->opts->per_peer);
            rc = refuse(c, tell, tell);
        } else if (slot < 0) {
            serve_log("%s: cannot count its connections: %s", c->who,
                      strerror(-slot));
            rc = slot;
        } else {
            rc = serve_request(c);
            close(slot);
        }
        close_gently(c->ssl, c->sock);
    }
    SSL_free(c->ssl);
    peer_tls_ctx_free(c->ctx);
    close(c->sock);
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
        struct conn c = { .sock = sock, .opts = &s->opts };
        snprintf(c.who, sizeof(c.who), "%s", who);
        /* relative paths of a request mean the same whether the server
         * runs in the foreground or as a daemon: "/" */
        _exit(chdir("/") || serve_connection(&c) ? 1 : 0);
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

/* -ENOKEY when no peer may connect yet. */
static int any_peer(void)
{
    char **names;
    size_t n;
    int rc = peer_inbound_names(&names, &n);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc ? rc : n ? 0 : -ENOKEY;
}

int peer_serve_open(const struct peer_serve_opts *o, struct peer_server **out,
                    char *bound, size_t boundcap, char *why, size_t whycap)
{
    snprintf(why, whycap, "%s", peer_config_dir());
    int rc = any_peer();
    if (rc)
        return rc;
    struct peer_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->listen_fd = s->pid_fd = -1;
    s->opts = *o;
    rc = lock_pidfile(&s->pid_fd, why, whycap);
    if (!rc)
        rc = bind_listen(o->listen ? o->listen : "0.0.0.0:" PEER_DEFAULT_PORT,
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

/* A line for each peer that may connect but has no grant yet (after an
 * upgrade: every peer, until its administrator grants it). */
static void log_ungranted(void)
{
    char **names;
    size_t n;
    struct peer_grants t;
    if (peer_inbound_names(&names, &n))
        return;
    int rc = peer_grants_load(&t);
    if (rc)
        serve_log("the grants cannot be read (%s): every request is refused",
                  rc == -EBADMSG ? "damaged" : strerror(-rc));
    for (size_t i = 0; i < n; i++) {
        if (!rc && !peer_grants_count(&t, names[i]))
            serve_log("peer %s has no grant yet: it can only connect",
                      names[i]);
        free(names[i]);
    }
    free(names);
    peer_grants_free(&t);
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
    log_ungranted();
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
