/*
 * peer_wire.h - private to the peer files: TLS contexts with the shared
 * key, the frames of the protocol (peer_tls.c), and the relay that moves
 * frames between a TLS connection and local file descriptors
 * (peer_relay.c).  Protocol theory at the top of peer_tls.c.
 */
#ifndef SNAPFS_PEER_WIRE_H
#define SNAPFS_PEER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/ssl.h>

#include "peer.h"

/* Frame types: a byte, a 32-bit big-endian length, the payload. */
enum {
    PF_REQUEST = 'R', /* client: the argv (peer_argv_encode) */
    PF_ACCEPT = 'A',  /* server: the command runs */
    PF_REFUSE = 'N',  /* server: refused; the payload says why */
    PF_DATA = 'D',    /* either way: stdin or stdout bytes */
    PF_EOF = 'E',     /* either way: end of stdin or of stdout */
    PF_EXIT = 'X',    /* server: 4-byte exit status, then stderr text */
};
#define PEER_FRAME_HDR 5
#define PEER_FRAME_MAX (1u << 20)
#define PEER_DATA_CHUNK 16384 /* one TLS record */
#define PEER_SETUP_SECONDS 30 /* connect, handshake and request */
/* The server's own limits on what a peer sends */
#define PEER_REQUEST_MAX (64u << 10) /* the REQUEST frame */
#define PEER_ARGS_MAX 32             /* words of a request */
#define PEER_ARG_MAX 4096            /* bytes of one word */

void peer_frame_header(uint8_t hdr[PEER_FRAME_HDR], uint8_t type, uint32_t n);
uint32_t peer_be32(const uint8_t *p);
void peer_put_be32(uint8_t *p, uint32_t n);

/* The identity a client with KEY shows: "snapfs-peer-v2:" and 32 hex
 * digits of HKDF-SHA256(KEY, "identity").  0 or -EIO. */
#define PEER_IDENTITY_BYTES 16
#define PEER_IDENTITY_SIZE (15 + 2 * PEER_IDENTITY_BYTES + 1)
int peer_key_identity(const uint8_t key[PEER_KEY_LEN],
                      char out[PEER_IDENTITY_SIZE]);
/* TLS 1.3 contexts whose only way to authenticate is a pre-shared key
 * (theory at the top of peer_tls.c).  A server accepts the N KEYS (each
 * peer's, copied), a client shows KEY: as a peer of its own, or, LEGACY,
 * under the one identity of earlier versions (records made before peers
 * had keys of their own).  NULL when out of memory. */
SSL_CTX *peer_tls_server_ctx(const struct peer_key *keys, size_t n);
SSL_CTX *peer_tls_client_ctx(const uint8_t key[PEER_KEY_LEN], bool legacy);
void peer_tls_ctx_free(SSL_CTX *ctx);
/* Server, after peer_tls_handshake succeeded: the name of the peer whose
 * key the client proved (NULL before). */
const char *peer_tls_peer_name(SSL *ssl);
/* The handshake on a blocking socket (with timeouts): 0, -EACCES (the
 * other side does not hold the key), -EPROTO (no TLS 1.3 there),
 * -ETIMEDOUT, -ECONNRESET.  WHY gets OpenSSL's reason. */
int peer_tls_handshake(SSL *ssl, bool server, char *why, size_t whycap);
/* One frame on a blocking connection.  recv: *P is malloc'd (NUL after
 * the payload, for text); a frame of more than MAX bytes is -EMSGSIZE
 * (its payload unread; *TYPE and *N say what it was). */
int peer_frame_send(SSL *ssl, uint8_t type, const void *p, size_t n);
int peer_frame_recv(SSL *ssl, uint32_t max, uint8_t *type, uint8_t **p,
                    size_t *n);

int peer_fd_nonblock(int fd, bool on);
/* SO_RCVTIMEO and SO_SNDTIMEO (0 clears them), and TCP keepalive. */
int peer_socket_setup(int fd, int timeout_seconds);

/* argv <-> count, then length-prefixed strings (32-bit big-endian). */
int peer_argv_encode(char *const argv[], uint8_t **out, size_t *n);
int peer_argv_decode(const uint8_t *p, size_t n, char ***argv);
void peer_argv_free(char **argv);
/* "w1 w2 ..." for messages and logs, cut at CAP */
void peer_argv_show(char *const argv[], char *out, size_t cap);

/* ---- peer_relay.c ---- */

struct peer_buf {
    uint8_t *p;
    size_t off, len, cap; /* bytes [off, len) are waiting */
};

struct peer_relay {
    SSL *ssl;
    int sock;
    int src;     /* local bytes to send as DATA, then EOF; -1 once ended */
    int dst;     /* where received DATA goes; -1 once closed or broken */
    int err;     /* server: the command's stderr, captured; else -1 */
    pid_t child; /* server: the command, reaped before EXIT is sent */
    bool server;
    /* progress */
    bool eof_sent, eof_received, exit_sent, exit_received, peer_closed;
    bool sock_wants_read, sock_wants_write;
    struct peer_buf out, in, pend, errtext;
    /* limits, set after peer_relay_init: the largest frame taken
     * (PEER_FRAME_MAX), and how long nothing may move either way before
     * the relay gives up with -ETIMEDOUT (0: forever) */
    uint32_t frame_max;
    int idle_seconds;
    struct timespec last_moved;
    /* result: the command's status (server: sent; client: received) */
    int status;
};

/* Initialize R for SSL on SOCK (made non-blocking) and local fds. */
void peer_relay_init(struct peer_relay *r, SSL *ssl, int sock, int src,
                     int dst, int err, pid_t child);
/* Relay until the command's EXIT went out (server) or came in and its
 * output was delivered (client).  0, or -ECONNRESET / -EPROTO / -ENOMEM,
 * -EMSGSIZE (a frame over frame_max), -ETIMEDOUT (idle_seconds with
 * nothing moving); local fds are closed either way. */
int peer_relay_run(struct peer_relay *r);
void peer_relay_free(struct peer_relay *r);

#endif
