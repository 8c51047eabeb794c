/*
 * test_peer.c - the peer transport below the command line: TLS 1.3 with
 * the pre-shared key over loopback TCP, and the relay both ways.  A
 * server process (forked, as `peer serve` forks one per connection) runs
 * an echo command with pipes for stdin, stdout and stderr; the client
 * relays from a thread, as peer_spawn does.  Checked: 64 MiB each way
 * arrive byte for byte (SHA-256 of what went and what came) while both
 * directions run at once, the exit status and stderr come back; a wrong
 * key fails the handshake on both sides with -EACCES; a server that dies
 * mid-stream is -ECONNRESET for the client (never a clean end), and a
 * client that goes away is -ECONNRESET for the server, which then stops
 * the command; a command that closes its stdout early still gets its
 * stdin and its status comes when it exits; argv frames decode to what was encoded, malformed ones
 * are -EPROTO.
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
#include "../../tools/peer_wire.h"

#define STREAM_BYTES (64u << 20)
#define ECHO_STATUS 7

static const uint8_t key_a[PEER_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const uint8_t key_b[PEER_KEY_LEN] = "0123456789abcdef0123456789abcdeF";

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

static SSL *tls_on(int fd, bool server, const uint8_t *key, SSL_CTX **ctx)
{
    *ctx = peer_tls_ctx(server, key);
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

enum server_end { SERVER_RELAY, SERVER_RELAY_SINK, SERVER_DIE_AFTER_HANDSHAKE };

/* Exit status of the server process: 0 relayed, 10 + n for -errno n
 * classes: 10 -EACCES, 11 -ECONNRESET (and its command was stopped),
 * 12 anything else. */
static int exit_code(int rc)
{
    return rc == 0 ? 0 : rc == -EACCES ? 10 : rc == -ECONNRESET ? 11 : 12;
}

static pid_t fork_server(int lfd, const uint8_t *key, enum server_end end)
{
    pid_t pid = fork();
    if (pid)
        return pid;
    int sock = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    SSL_CTX *ctx;
    SSL *ssl = tls_on(sock, true, key, &ctx);
    char why[256];
    int rc = peer_tls_handshake(ssl, true, why, sizeof(why));
    if (rc || end == SERVER_DIE_AFTER_HANDSHAKE)
        _exit(exit_code(rc));
    int fds[3];
    struct peer_relay r;
    pid_t cmd = start_command(fds, end == SERVER_RELAY_SINK ? sink_command
                                                          : echo_command);
    peer_relay_init(&r, ssl, sock, fds[1], fds[0], fds[2], cmd);
    rc = peer_relay_run(&r);
    if (rc && r.child > 0) {
        kill(r.child, SIGTERM);
        waitpid(r.child, NULL, 0);
    }
    peer_relay_free(&r);
    SSL_shutdown(ssl);
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
                        SSL_CTX **ctx, int *local)
{
    memset(c, 0, sizeof(*c));
    c->sock = connect_loopback(port);
    c->ssl = tls_on(c->sock, false, key, ctx);
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

/* A server process with KEY_A and a client with CLIENT_KEY. */
struct pair {
    int lfd, local;
    pid_t server;
    struct client c;
    SSL_CTX *ctx;
};

static int pair_start(struct pair *p, const uint8_t *client_key,
                      enum server_end end)
{
    int port;
    p->lfd = listen_loopback(&port);
    p->server = fork_server(p->lfd, key_a, end);
    return client_start(&p->c, port, client_key, &p->ctx, &p->local);
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
    struct pair p;
    int rc = pair_start(&p, key_b, SERVER_RELAY);
    CHECK(rc == -EACCES, "client handshake with a wrong key: %d", rc);
    CHECK(server_exit(p.server) == 10, "the server did not see -EACCES");
    pair_end(&p);
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
    pid_t server = fork_server(lfd, key_a, SERVER_RELAY);
    SSL_CTX *ctx;
    int sock = connect_loopback(port);
    SSL *ssl = tls_on(sock, false, key_a, &ctx);
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
    test_argv_frames();
    test_wrong_key();
    test_server_dies();
    test_client_goes_away();
    test_stdout_closed_early();
    test_big_stream_both_ways();
    return test_done("test_peer");
}
