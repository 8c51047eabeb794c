/*
 * test_peer.c - the peer transport below the command line: TLS 1.3 with
 * pre-shared keys over loopback TCP, and the relay both ways.  A server
 * process (forked, as `peer serve` forks one per connection) accepts the
 * keys of several peers and runs an echo command with pipes for stdin,
 * stdout and stderr; the client relays from a thread, as peer_spawn does.
 * Checked: 64 MiB each way arrive byte for byte (SHA-256 of what went and
 * what came) while both directions run at once, the exit status and
 * stderr come back; the server knows which peer's key the client proved
 * (and the host key of earlier versions under its old identity and the
 * new one); a key it does not hold fails the handshake on both sides
 * with -EACCES; a server that dies mid-stream is -ECONNRESET for the
 * client (never a clean end), and a client that goes away is -ECONNRESET
 * for the server, which then stops the command; the server's limits: a
 * frame over its size is -EMSGSIZE without being buffered, a connection
 * idle too long -ETIMEDOUT, a request frame over the limit is refused
 * unread; a command that closes its stdout early still gets its stdin
 * and its status comes when it exits; argv frames decode to what was
 * encoded, malformed ones are -EPROTO.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "check.h"
#include "../../tools/peer/peer_wire.h"

#define STREAM_BYTES (64u << 20)
#define ECHO_STATUS 7

static const uint8_t key_a[PEER_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const uint8_t key_b[PEER_KEY_LEN] = "0123456789abcdef0123456789abcdeF";
static const uint8_t key_c[PEER_KEY_LEN] = "0123456789abcdef0123456789abcdeC";

/* The server accepts peers "a" and "b", and "legacy" (the host key of
 * earlier versions, key_c). */
static struct peer_key server_keys[3];

static void make_server_keys(void)
{
    const uint8_t *keys[] = { key_a, key_b, key_c };
    const char *names[] = { "a", "b", "legacy" };
    for (int i = 0; i < 3; i++) {
        snprintf(server_keys[i].name, sizeof(server_keys[i].name), "%s",
                 names[i]);
        memcpy(server_keys[i].key, keys[i], PEER_KEY_LEN);
        server_keys[i].legacy = i == 2;
    }
}

/* ---- loopback TCP ---- */

static int listen_loopback(int *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, len) || listen(fd, 4) ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        perror("listen");
        exit(1);
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int connect_loopback(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        perror("connect");
        exit(1);
    }
    return fd;
}

/* A server with server_keys, or a client showing KEY (LEGACY: under the
 * identity of earlier versions). */
static SSL *tls_on(int fd, bool server, const uint8_t *key, bool legacy,
                   SSL_CTX **ctx)
{
    *ctx = server ? peer_tls_server_ctx(server_keys, 3)
                  : peer_tls_client_ctx(key, legacy);
    SSL *ssl = *ctx ? SSL_new(*ctx) : NULL;
    if (!ssl || !SSL_set_fd(ssl, fd)) {
        fprintf(stderr, "cannot make a TLS connection\n");
        exit(1);
    }
    return ssl;
}

/* ---- the server side ---- */

/* The command: copy stdin to stdout, then report on stderr. */
static void echo_command(void)
{
    static uint8_t buf[65536];
    uint64_t total = 0;
    ssize_t n;
    while ((n = read(0, buf, sizeof(buf))) > 0) {
        for (ssize_t w, off = 0; off < n; off += w)
            if ((w = write(1, buf + off, (size_t)(n - off))) <= 0)
                _exit(1);
        total += (uint64_t)n;
    }
    fprintf(stderr, "echoed %llu bytes", (unsigned long long)total);
    _exit(ECHO_STATUS);
}

/* The other command: close stdout and stderr at once, then count its
 * input; exit 5 if it was SINK_BYTES. */
#define SINK_BYTES (1u << 20)
static void sink_command(void)
{
    static uint8_t buf[65536];
    uint64_t total = 0;
    ssize_t n;
    close(1);
    close(2);
    while ((n = read(0, buf, sizeof(buf))) > 0)
        total += (uint64_t)n;
    _exit(total == SINK_BYTES ? 5 : 6);
}

static pid_t start_command(int fds[3], void (*command)(void))
{
    int p[3][2];
    for (int i = 0; i < 3; i++)
        if (pipe2(p[i], O_CLOEXEC))
            exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[0][0], 0);
        dup2(p[1][1], 1);
        dup2(p[2][1], 2);
        for (int i = 0; i < 3; i++) /* no exec here to close them */
            close(p[i][0]), close(p[i][1]);
        command();
    }
    close(p[0][0]);
    close(p[1][1]);
    close(p[2][1]);
    fds[0] = p[0][1];
    fds[1] = p[1][0];
    fds[2] = p[2][0];
    return pid;
}

enum server_end {
    SERVER_RELAY, SERVER_RELAY_SINK, SERVER_DIE_AFTER_HANDSHAKE,
    SERVER_REQUEST, /* read one request frame (at most PEER_REQUEST_MAX) */
};

/* What the server process does and expects. */
struct server_plan {
    enum server_end end;
    const char *peer;   /* the name the client must authenticate as */
    uint32_t frame_max; /* 0: the relay's default */
    int idle_seconds;
};

/* Exit status of the server process: 0 relayed, 10 + n for -errno n
 * classes: 10 -EACCES, 11 -ECONNRESET (and its command was stopped),
 * 12 anything else, 13 -EMSGSIZE, 14 -ETIMEDOUT; 15: the client proved
 * another peer's key than the plan's. */
static int exit_code(int rc)
{
    switch (rc) {
    case 0: return 0;
    case -EACCES: return 10;
    case -ECONNRESET: return 11;
    case -EMSGSIZE: return 13;
    case -ETIMEDOUT: return 14;
    default: return 12;
    }
}

static int read_request(SSL *ssl)
{
    uint8_t type, *p;
    size_t n;
    int rc = peer_frame_recv(ssl, PEER_REQUEST_MAX, &type, &p, &n);
    if (!rc)
        free(p);
    return rc;
}

static pid_t fork_server(int lfd, const struct server_plan *plan)
{
    pid_t pid = fork();
    if (pid)
        return pid;
    int sock = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    SSL_CTX *ctx;
    SSL *ssl = tls_on(sock, true, NULL, false, &ctx);
    char why[256];
    int rc = peer_tls_handshake(ssl, true, why, sizeof(why));
    const char *peer = peer_tls_peer_name(ssl);
    if (!rc && (!peer || strcmp(peer, plan->peer)))
        _exit(15);
    if (rc || plan->end == SERVER_DIE_AFTER_HANDSHAKE)
        _exit(exit_code(rc));
    if (plan->end == SERVER_REQUEST)
        _exit(exit_code(read_request(ssl)));
    int fds[3];
    struct peer_relay r;
    pid_t cmd = start_command(fds, plan->end == SERVER_RELAY_SINK
                                       ? sink_command : echo_command);
    peer_relay_init(&r, ssl, sock, fds[1], fds[0], fds[2], cmd);
    if (plan->frame_max)
        r.frame_max = plan->frame_max;
    r.idle_seconds = plan->idle_seconds;
    rc = peer_relay_run(&r);
    if (rc && r.child > 0) {
        kill(r.child, SIGTERM);
        waitpid(r.child, NULL, 0);
    }
    peer_relay_free(&r);
    /* as peer serve closes after a relay that ended well: close_notify,
     * then the client's last bytes read until it closes, so that no reset
     * destroys what it has not read yet (the tail of the stream) */
    SSL_shutdown(ssl);
    shutdown(sock, SHUT_WR);
    char sink[4096];
    struct pollfd pf = { .fd = sock, .events = POLLIN };
    while (!rc && poll(&pf, 1, 10000) > 0 && read(sock, sink, sizeof(sink)) > 0)
        continue;
    _exit(exit_code(rc));
}

static int server_exit(pid_t pid)
{
    int ws;
    waitpid(pid, &ws, 0);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 100 + WTERMSIG(ws);
}

/* ---- the client side ---- */

struct client {
    SSL *ssl;
    int sock, fd, rc, status;
    char err[128];
    pthread_t thread;
};

static void *client_thread(void *arg)
{
    struct client *c = arg;
    struct peer_relay r;
    peer_relay_init(&r, c->ssl, c->sock, c->fd, c->fd, -1, 0);
    c->rc = peer_relay_run(&r);
    c->status = r.status;
    size_t n = r.errtext.len - r.errtext.off;
    snprintf(c->err, sizeof(c->err), "%.*s", (int)n,
             n ? (char *)r.errtext.p + r.errtext.off : "");
    peer_relay_free(&r);
    return NULL;
}

/* Connect and handshake; the relay thread gets one end of a socketpair,
 * *LOCAL the other. */
static int client_start(struct client *c, int port, const uint8_t *key,
                        bool legacy, SSL_CTX **ctx, int *local)
{
    memset(c, 0, sizeof(*c));
    c->sock = connect_loopback(port);
    c->ssl = tls_on(c->sock, false, key, legacy, ctx);
    char why[256];
    int rc = peer_tls_handshake(c->ssl, false, why, sizeof(why));
    if (rc)
        return rc;
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
        exit(1);
    c->fd = sp[1];
    *local = sp[0];
    pthread_create(&c->thread, NULL, client_thread, c);
    return 0;
}

static void client_end(struct client *c, SSL_CTX *ctx)
{
    SSL_free(c->ssl);
    peer_tls_ctx_free(ctx);
    close(c->sock);
}

/* ---- the stream ---- */

/* A deterministic stream of bytes that do not repeat in 64 MiB. */
static void fill(uint8_t *p, size_t n, uint64_t *state)
{
    for (size_t i = 0; i < n; i++) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        p[i] = (uint8_t)(*state >> 24);
    }
}

/* Send STREAM_BYTES into FD and read everything back, at once (poll);
 * digests of both sides. */
static void pump(int fd, uint8_t sent[32], uint8_t got[32], uint64_t *received)
{
    static uint8_t out[65536], in[65536];
    EVP_MD_CTX *hs = EVP_MD_CTX_new(), *hr = EVP_MD_CTX_new();
    EVP_DigestInit_ex(hs, EVP_sha256(), NULL);
    EVP_DigestInit_ex(hr, EVP_sha256(), NULL);
    uint64_t state = 88172645463325252ull, to_send = STREAM_BYTES;
    size_t off = 0, len = 0;
    bool open_in = true;
    *received = 0;
    while (open_in) {
        if (!len && to_send) {
            len = to_send < sizeof(out) ? (size_t)to_send : sizeof(out);
            fill(out, len, &state);
            EVP_DigestUpdate(hs, out, len);
            off = 0;
            to_send -= len;
        }
        struct pollfd p = { .fd = fd, .events = (short)(POLLIN | (len ? POLLOUT : 0)) };
        poll(&p, 1, -1);
        if (len && (p.revents & POLLOUT)) {
            ssize_t w = send(fd, out + off, len, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0) {
                off += (size_t)w;
                len -= (size_t)w;
                if (!len && !to_send)
                    shutdown(fd, SHUT_WR);
            }
        }
        if (p.revents & (POLLIN | POLLHUP)) {
            ssize_t r = recv(fd, in, sizeof(in), MSG_DONTWAIT);
            if (r > 0) {
                EVP_DigestUpdate(hr, in, (size_t)r);
                *received += (uint64_t)r;
            } else if (r == 0) {
                open_in = false;
            }
        }
    }
    EVP_DigestFinal_ex(hs, sent, NULL);
    EVP_DigestFinal_ex(hr, got, NULL);
    EVP_MD_CTX_free(hs);
    EVP_MD_CTX_free(hr);
}

/* ---- the tests ---- */

/* A server process with server_keys and a client with CLIENT_KEY. */
struct pair {
    int lfd, local;
    pid_t server;
    struct client c;
    SSL_CTX *ctx;
};

static int pair_start_plan(struct pair *p, const uint8_t *client_key,
                           bool legacy, const struct server_plan *plan)
{
    int port;
    p->lfd = listen_loopback(&port);
    p->server = fork_server(p->lfd, plan);
    return client_start(&p->c, port, client_key, legacy, &p->ctx, &p->local);
}

/* Peer "a" (key_a) against a server ending as END. */
static int pair_start(struct pair *p, const uint8_t *client_key,
                      enum server_end end)
{
    struct server_plan plan = { .end = end, .peer = "a" };
    return pair_start_plan(p, client_key, false, &plan);
}

static void pair_end(struct pair *p)
{
    client_end(&p->c, p->ctx);
    close(p->lfd);
}

static void test_big_stream_both_ways(void)
{
    struct pair p;
    CHECK_RC(pair_start(&p, key_a, SERVER_RELAY));
    uint8_t sent[32], got[32];
    uint64_t received;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pump(p.local, sent, got, &received);
    close(p.local);
    pthread_join(p.c.thread, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(received == STREAM_BYTES, "received %llu bytes",
          (unsigned long long)received);
    CHECK(!memcmp(sent, got, 32), "the bytes that came back differ");
    CHECK(p.c.rc == 0, "client relay: %d", p.c.rc);
    CHECK(p.c.status == ECHO_STATUS, "exit status %d", p.c.status);
    CHECK(!strcmp(p.c.err, "echoed 67108864 bytes"), "stderr '%s'", p.c.err);
    CHECK(server_exit(p.server) == 0, "the server relay failed");
    printf("  64 MiB each way through TLS in %.2f s\n", secs);
    pair_end(&p);
}

static void test_wrong_key(void)
{
    static const uint8_t unknown[PEER_KEY_LEN] = "0123456789abcdef0123456789abcde?";
    struct pair p;
    int rc = pair_start(&p, unknown, SERVER_RELAY);
    CHECK(rc == -EACCES, "client handshake with a wrong key: %d", rc);
    CHECK(server_exit(p.server) == 10, "the server did not see -EACCES");
    pair_end(&p);
    /* a peer's key under the identity of earlier versions is no key the
     * server holds there */
    struct server_plan plan = { .end = SERVER_DIE_AFTER_HANDSHAKE, .peer = "a" };
    rc = pair_start_plan(&p, key_a, true, &plan);
    CHECK(rc == -EACCES, "key a as the legacy identity: %d", rc);
    CHECK(server_exit(p.server) == 10, "the server did not see -EACCES");
    pair_end(&p);
}

/* The server knows which peer proved its key: each key its own name,
 * the host key of earlier versions under both identities. */
static void test_peer_identity(void)
{
    const struct {
        const uint8_t *key;
        bool legacy;
        const char *peer;
    } cases[] = {
        { key_a, false, "a" }, { key_b, false, "b" },
        { key_c, true, "legacy" }, { key_c, false, "legacy" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct server_plan plan = { .end = SERVER_DIE_AFTER_HANDSHAKE,
                                    .peer = cases[i].peer };
        struct pair p;
        int rc = pair_start_plan(&p, cases[i].key, cases[i].legacy, &plan);
        CHECK(rc == 0, "case %zu: handshake %d", i, rc);
        CHECK(server_exit(p.server) == 0, "case %zu: the server saw another "
              "peer than %s", i, cases[i].peer);
        close(p.local);
        pthread_join(p.c.thread, NULL);
        pair_end(&p);
    }
    char id_a[PEER_IDENTITY_SIZE], id_b[PEER_IDENTITY_SIZE];
    CHECK_RC(peer_key_identity(key_a, id_a));
    CHECK_RC(peer_key_identity(key_b, id_b));
    CHECK(strlen(id_a) == PEER_IDENTITY_SIZE - 1 &&
          !strncmp(id_a, "snapfs-peer-v2:", 15), "identity '%s'", id_a);
    CHECK(strcmp(id_a, id_b), "two keys, one identity");
    CHECK(!strstr(id_a, "0123456789abcdef"), "the identity shows the key");
}

/* A client that did the handshake as peer "a" and relays nothing:
 * what it writes is up to the test. */
struct raw_client {
    int lfd, sock;
    pid_t server;
    SSL_CTX *ctx;
    SSL *ssl;
};

static void raw_start(struct raw_client *c, const struct server_plan *plan)
{
    int port;
    c->lfd = listen_loopback(&port);
    c->server = fork_server(c->lfd, plan);
    c->sock = connect_loopback(port);
    c->ssl = tls_on(c->sock, false, key_a, false, &c->ctx);
    char why[256];
    CHECK_RC(peer_tls_handshake(c->ssl, false, why, sizeof(why)));
}

/* The server's exit code once it ended. */
static int raw_end(struct raw_client *c)
{
    int code = server_exit(c->server);
    SSL_free(c->ssl);
    peer_tls_ctx_free(c->ctx);
    close(c->sock);
    close(c->lfd);
    return code;
}

/* The server's limits: a frame over frame_max ends the relay before it
 * is buffered; a relay idle for idle_seconds ends; a request frame over
 * PEER_REQUEST_MAX is refused unread. */
static void test_server_limits(void)
{
    struct raw_client c;
    struct server_plan plan = { .end = SERVER_RELAY, .peer = "a",
                                .frame_max = 1024 };
    raw_start(&c, &plan);
    static uint8_t big[4096];
    CHECK_RC(peer_frame_send(c.ssl, PF_DATA, big, sizeof(big)));
    CHECK(raw_end(&c) == 13, "a frame over the limit was taken");

    plan = (struct server_plan){ .end = SERVER_RELAY, .peer = "a",
                                 .idle_seconds = 1 };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    raw_start(&c, &plan);
    int code = raw_end(&c);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(code == 14, "an idle relay did not time out: %d", code);
    CHECK(t1.tv_sec - t0.tv_sec < 5, "it took %ld s",
          (long)(t1.tv_sec - t0.tv_sec));

    plan = (struct server_plan){ .end = SERVER_REQUEST, .peer = "a" };
    raw_start(&c, &plan);
    uint8_t hdr[PEER_FRAME_HDR];
    peer_frame_header(hdr, PF_REQUEST, PEER_REQUEST_MAX + 1);
    CHECK(SSL_write(c.ssl, hdr, sizeof(hdr)) == (int)sizeof(hdr),
          "cannot write a header");
    CHECK(raw_end(&c) == 13, "an oversized request was read");
}

static void test_server_dies(void)
{
    struct pair p;
    CHECK_RC(pair_start(&p, key_a, SERVER_DIE_AFTER_HANDSHAKE));
    server_exit(p.server);
    char buf[16];
    CHECK(read(p.local, buf, sizeof(buf)) == 0, "no end-of-file for the reader");
    close(p.local);
    pthread_join(p.c.thread, NULL);
    CHECK(p.c.rc == -ECONNRESET, "a lost server: client relay says %d", p.c.rc);
    pair_end(&p);
}

/* The remote stdout ends long before the command: the reader sees its
 * end at once, stdin still flows, the status comes when it exits. */
static void test_stdout_closed_early(void)
{
    struct pair p;
    CHECK_RC(pair_start(&p, key_a, SERVER_RELAY_SINK));
    char buf[16];
    CHECK(read(p.local, buf, sizeof(buf)) == 0, "no end of the remote stdout");
    static uint8_t data[SINK_BYTES];
    uint64_t state = 1;
    fill(data, sizeof(data), &state);
    size_t off = 0;
    while (off < sizeof(data)) {
        ssize_t w = write(p.local, data + off, sizeof(data) - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    CHECK(off == sizeof(data), "wrote %zu bytes", off);
    shutdown(p.local, SHUT_WR);
    close(p.local);
    pthread_join(p.c.thread, NULL);
    CHECK(p.c.rc == 0, "client relay: %d", p.c.rc);
    CHECK(p.c.status == 5, "the command counted wrong: status %d", p.c.status);
    CHECK(server_exit(p.server) == 0, "the server relay failed");
    pair_end(&p);
}

static void test_client_goes_away(void)
{
    int port, lfd = listen_loopback(&port);
    struct server_plan plan = { .end = SERVER_RELAY, .peer = "a" };
    pid_t server = fork_server(lfd, &plan);
    SSL_CTX *ctx;
    int sock = connect_loopback(port);
    SSL *ssl = tls_on(sock, false, key_a, false, &ctx);
    char why[256];
    CHECK_RC(peer_tls_handshake(ssl, false, why, sizeof(why)));
    CHECK_RC(peer_frame_send(ssl, PF_DATA, "partial", 7));
    close(sock); /* no EOF frame, no close_notify */
    CHECK(server_exit(server) == 11, "a lost client is not -ECONNRESET");
    SSL_free(ssl);
    peer_tls_ctx_free(ctx);
    close(lfd);
}

static void test_argv_frames(void)
{
    char *argv[] = { "receive", "--handshake", "", "/srv/a b", NULL };
    uint8_t *p;
    size_t n;
    char **back;
    CHECK_RC(peer_argv_encode(argv, &p, &n));
    CHECK_RC(peer_argv_decode(p, n, &back));
    for (int i = 0; i < 4; i++)
        CHECK(back[i] && !strcmp(back[i], argv[i]), "argument %d", i);
    CHECK(back[4] == NULL, "argv is not NULL-terminated");
    peer_argv_free(back);
    CHECK(peer_argv_decode(p, n - 1, &back) == -EPROTO, "a short frame");
    p[n - 3] = 0;
    CHECK(peer_argv_decode(p, n, &back) == -EPROTO, "a NUL inside");
    free(p);
    char *none[] = { NULL };
    CHECK(peer_argv_encode(none, &p, &n) == -EINVAL, "an empty argv");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    make_server_keys();
    test_argv_frames();
    test_wrong_key();
    test_peer_identity();
    test_server_limits();
    test_server_dies();
    test_client_goes_away();
    test_stdout_closed_early();
    test_big_stream_both_ways();
    return test_done("test_peer");
}
