/*
 * peer_client.c - running a snapfs subcommand on a peer: peer_spawn and
 * peer_wait (declared in peer.h).
 *
 * peer_spawn makes a socketpair, gives one end to the caller and starts
 * a relay thread with the other.  The thread connects (10 s), does the
 * TLS handshake with the peer's key and sends the request (30 s each),
 * reports the server's answer to peer_spawn, and then relays between its
 * end of the socketpair and the connection (peer_relay.c) until the
 * remote command's exit status arrives.  All TLS I/O happens in that
 * thread, which blocks every asynchronous signal: SIGPIPE from a broken
 * connection is never delivered to the program, and its handlers run in
 * its own threads.
 *
 * Guarantees: peer_spawn returns only when the remote command runs or
 * with nothing left behind (no thread, no descriptor); peer_wait always
 * joins the thread and frees everything; the key is held only in the
 * thread's TLS context and wiped with it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "peer_wire.h"

#define CONNECT_MS 10000

struct peer_link {
    pthread_t thread;
    struct peer_record rec;
    uint8_t *request;
    size_t request_len;
    int fd; /* the thread's end of the socketpair */
    /* the setup's outcome, for peer_spawn */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool setup_done;
    int setup_rc;
    char refusal[1024];
    /* the end, for peer_wait */
    int rc, status;
    char *errtext;
};

/* ---- connecting ---- */

static int connect_one(const struct addrinfo *a, int *out)
{
    int s = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                   a->ai_protocol);
    if (s < 0)
        return -errno;
    int rc = 0;
    if (connect(s, a->ai_addr, a->ai_addrlen) && errno != EINPROGRESS)
        rc = -errno;
    struct pollfd p = { .fd = s, .events = POLLOUT };
    if (!rc) {
        int n = poll(&p, 1, CONNECT_MS);
        int err = 0;
        socklen_t len = sizeof(err);
        if (n == 0)
            rc = -ETIMEDOUT;
        else if (n < 0 || getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len))
            rc = -errno;
        else
            rc = -err;
    }
    if (!rc)
        rc = peer_fd_nonblock(s, false);
    if (!rc)
        rc = peer_socket_setup(s, PEER_SETUP_SECONDS);
    if (rc)
        close(s);
    else
        *out = s;
    return rc;
}

/* A connected socket to ADDRESS (HOST:PORT), trying each address. */
static int connect_address(const char *address, int *out)
{
    char host[PEER_ADDRESS_MAX], port[16];
    if (peer_address_split(address, host, sizeof(host), port, sizeof(port)))
        return -EINVAL;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
    if (getaddrinfo(host, port, &hints, &res))
        return -EHOSTUNREACH;
    int rc = -EHOSTUNREACH;
    for (struct addrinfo *a = res; a && rc; a = a->ai_next)
        rc = connect_one(a, out);
    freeaddrinfo(res);
    return rc;
}

/* ---- the thread ---- */

static void setup_done(struct peer_link *l, int rc)
{
    pthread_mutex_lock(&l->lock);
    l->setup_rc = rc;
    l->setup_done = true;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

/* Send the request; the server's ACCEPT is 0, its REFUSE -EPERM. */
static int request(struct peer_link *l, SSL *ssl)
{
    uint8_t type, *answer;
    size_t n;
    int rc = peer_frame_send(ssl, PF_REQUEST, l->request, l->request_len);
    if (!rc)
        rc = peer_frame_recv(ssl, PEER_FRAME_MAX, &type, &answer, &n);
    if (rc)
        return rc == -EMSGSIZE ? -EPROTO : rc;
    if (type == PF_REFUSE)
        snprintf(l->refusal, sizeof(l->refusal), "%s", (char *)answer);
    free(answer);
    return type == PF_ACCEPT ? 0 : type == PF_REFUSE ? -EPERM : -EPROTO;
}

/* Relay until the command's end; its status and stderr into L. */
static void relay(struct peer_link *l, SSL *ssl, int sock)
{
    struct peer_relay r;
    peer_socket_setup(sock, 0);
    peer_relay_init(&r, ssl, sock, l->fd, l->fd, -1, 0);
    l->fd = -1; /* the relay closes it */
    l->rc = peer_relay_run(&r);
    l->status = r.status;
    if (!l->rc && r.errtext.p)
        l->errtext = strndup((char *)r.errtext.p + r.errtext.off,
                             r.errtext.len - r.errtext.off);
    SSL_shutdown(ssl); /* close_notify, if it goes out at once */
    peer_relay_free(&r);
}

static void *link_thread(void *arg)
{
    struct peer_link *l = arg;
    char why[256];
    int sock = -1;
    SSL *ssl = NULL;
    SSL_CTX *ctx = NULL;
    int rc = connect_address(l->rec.address, &sock);
    if (!rc) {
        ctx = peer_tls_client_ctx(l->rec.key, l->rec.legacy);
        ssl = ctx ? SSL_new(ctx) : NULL;
        rc = ssl && SSL_set_fd(ssl, sock) ? 0 : -ENOMEM;
    }
    OPENSSL_cleanse(l->rec.key, sizeof(l->rec.key));
    if (!rc)
        rc = peer_tls_handshake(ssl, false, why, sizeof(why));
    if (!rc)
        rc = request(l, ssl);
    setup_done(l, rc);
    if (!rc)
        relay(l, ssl, sock);
    SSL_free(ssl);
    peer_tls_ctx_free(ctx);
    if (sock >= 0)
        close(sock);
    if (l->fd >= 0)
        close(l->fd);
    return NULL;
}

/* ---- the API ---- */

static void link_free(struct peer_link *l)
{
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->cond);
    OPENSSL_cleanse(&l->rec, sizeof(l->rec));
    free(l->request);
    free(l->errtext);
    free(l);
}

/* Start the thread with every asynchronous signal blocked in it. */
static int start_thread(struct peer_link *l)
{
    sigset_t all, old;
    sigfillset(&all);
    int sync_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT };
    for (size_t i = 0; i < sizeof(sync_signals) / sizeof(sync_signals[0]); i++)
        sigdelset(&all, sync_signals[i]);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = -pthread_create(&l->thread, NULL, link_thread, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static int link_new(const char *peer_name, char *const argv[],
                    struct peer_link **out)
{
    struct peer_link *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
    l->fd = -1;
    int rc = peer_record_load(peer_name, &l->rec);
    if (!rc)
        rc = peer_argv_encode(argv, &l->request, &l->request_len);
    if (rc)
        link_free(l);
    else
        *out = l;
    return rc;
}

int peer_spawn(const char *peer_name, char *const argv[], struct peer_chan *out)
{
    struct peer_link *l;
    int sp[2];
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    int rc = link_new(peer_name, argv, &l);
    if (rc)
        return rc;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp)) {
        link_free(l);
        return -errno;
    }
    l->fd = sp[1];
    rc = start_thread(l);
    if (rc) {
        close(sp[0]);
        close(sp[1]);
        link_free(l);
        return rc;
    }
    pthread_mutex_lock(&l->lock);
    while (!l->setup_done)
        pthread_cond_wait(&l->cond, &l->lock);
    rc = l->setup_rc;
    pthread_mutex_unlock(&l->lock);
    if (rc) {
        snprintf(out->refusal, sizeof(out->refusal), "%s", l->refusal);
        close(sp[0]);
        pthread_join(l->thread, NULL);
        link_free(l);
        return rc;
    }
    out->fd = sp[0];
    out->link = l;
    return 0;
}

int peer_wait(struct peer_chan *c, int *exit_status, char *errbuf,
              size_t errcap)
{
    struct peer_link *l = c->link;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->link = NULL;
    if (!l)
        return -EINVAL;
    pthread_join(l->thread, NULL);
    int rc = l->rc;
    *exit_status = rc ? 255 : l->status;
    if (errcap)
        snprintf(errbuf, errcap, "%s", !rc && l->errtext ? l->errtext : "");
    link_free(l);
    return rc;
}

const char *peer_strerror(int rc)
{
    switch (rc) {
    case -ENOENT:
        return "no such peer (see 'snapfs peer list')";
    case -EACCES:
        return "authentication failed: the peer does not accept the "
               "passphrase this peer was created with";
    case -EPERM:
        return "the peer refused the command";
    case -ECONNREFUSED:
        return "connection refused (is 'snapfs peer serve' running there?)";
    case -EHOSTUNREACH:
        return "host unknown or unreachable";
    case -ETIMEDOUT:
        return "no answer in time";
    case -ECONNRESET:
        return "the connection was lost before the command ended";
    case -EPROTO:
        return "protocol error (is that a snapfs peer server?)";
    case -EINVAL:
        return "the peer's record is damaged, or the command is empty "
               "or too long";
    default:
        return strerror(-rc);
    }
}
