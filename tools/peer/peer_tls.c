/*
 * peer_tls.c - the peer protocol: TLS 1.3 with an external pre-shared
 * key per peer, and the frames spoken inside it.
 *
 * Theory.  Each peer that may connect to a server holds a 256-bit key K
 * of its own, derived from a passphrase of 150 random bits that the
 * serving host's administrator made for that peer alone and carried to
 * it (peer_conf.c); the server holds the K of every such peer.  From K
 * both sides derive, with HKDF-SHA256 (RFC 5869, salt "snapfs-peer-v2"),
 * an identity I = "snapfs-peer-v2:" + hex of 16 bytes under the label
 * "identity", and the TLS PSK P = 32 bytes under "tls13 external psk".
 * A connection is TLS 1.3 only (no other version is offered or
 * accepted); the client offers P under the identity I, in psk_dhe_ke
 * mode (the PSK and an ephemeral X25519/ECDHE exchange), cipher
 * TLS_AES_128_GCM_SHA256.  The server looks I up among its peers (each
 * compared in constant time) and, for the one that matches, uses its P;
 * an identity it does not know gets no PSK.  No certificates exist: the
 * server has none, so a client without a known K cannot complete a
 * handshake, and the client demands one (SSL_VERIFY_PEER with no trusted
 * roots), so a server that did not use P cannot either; both sides then
 * check that the PSK was used, and the server knows, from the identity
 * whose PSK completed the handshake, which peer is connected.
 *
 * Earlier versions had one key per serving host, used as the PSK itself
 * under the fixed identity "snapfs-peer-v1".  A server that still holds
 * that key (serve.key) accepts it as the peer "legacy", under the old
 * identity (records made then) and as any other key, under its derived
 * identity (records made since with that passphrase).
 *
 * - Authenticated: both ends, mutually.  The client's binder (an HMAC
 *   keyed from P over its hello) proves P to the server before the server
 *   sends anything encrypted; the server's Finished proves P to the
 *   client.  A wrong key fails the handshake with an alert; nothing after
 *   it is processed.
 * - On the wire: a passive observer sees the hellos (the peer's identity,
 *   which is fixed for a key and says nothing about P or K, random
 *   nonces, ephemeral public keys), then AES-GCM records: lengths and
 *   timing, never content.  The ephemeral exchange gives forward secrecy:
 *   a key stolen later does not decrypt recorded sessions.  An observer
 *   can test passphrase guesses against a recorded binder offline; at 150
 *   bits that is out of reach.
 * - Replay: no 0-RTT data is accepted (no session tickets are issued
 *   either); every handshake mixes the server's fresh random and key
 *   share, so a recorded connection replayed to the server fails at the
 *   Finished and can run nothing.  Records carry sequence numbers: none
 *   can be dropped, reordered or repeated inside a connection.
 *
 * Frames inside the connection: a type byte, a 32-bit big-endian length,
 * the payload (at most 1 MiB; the server takes less: peer_serve.c).  The
 * client sends REQUEST (the argv); the server answers ACCEPT, or REFUSE
 * with the reason and closes.  Then both sides send DATA (stdin
 * upstream, stdout downstream) and one EOF each; the server ends with
 * EXIT (status and the command's stderr) and a TLS close_notify, so a
 * connection cut short is never mistaken for a complete command: without
 * EXIT the client reports the loss.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "peer_wire.h"

#define PSK_IDENTITY_V1 "snapfs-peer-v1"
#define PSK_IDENTITY_V2 "snapfs-peer-v2:"
#define KDF_SALT "snapfs-peer-v2"
/* TLS_AES_128_GCM_SHA256, as TLS 1.3 numbers it */
static const unsigned char psk_cipher_id[2] = { 0x13, 0x01 };

void peer_put_be32(uint8_t *p, uint32_t n)
{
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
}

void peer_frame_header(uint8_t hdr[PEER_FRAME_HDR], uint8_t type, uint32_t n)
{
    hdr[0] = type;
    peer_put_be32(hdr + 1, n);
}

uint32_t peer_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

/* ---- keys, identities and the PSK ---- */

/*
 * HKDF-SHA256 (RFC 5869) of a peer's key K under LABEL: N bytes.  The
 * identity a client shows and the PSK both come from K this way, under
 * different labels, so that the identity (sent in the clear) says
 * nothing about the PSK or K.
 */
static int derive(const uint8_t key[PEER_KEY_LEN], const char *label,
                  uint8_t *out, size_t n)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    size_t len = n;
    bool ok = c && EVP_PKEY_derive_init(c) > 0 &&
              EVP_PKEY_CTX_set_hkdf_md(c, EVP_sha256()) > 0 &&
              EVP_PKEY_CTX_set1_hkdf_salt(c, (const unsigned char *)KDF_SALT,
                                          (int)strlen(KDF_SALT)) > 0 &&
              EVP_PKEY_CTX_set1_hkdf_key(c, key, PEER_KEY_LEN) > 0 &&
              EVP_PKEY_CTX_add1_hkdf_info(c, (const unsigned char *)label,
                                          (int)strlen(label)) > 0 &&
              EVP_PKEY_derive(c, out, &len) > 0 && len == n;
    EVP_PKEY_CTX_free(c);
    return ok ? 0 : -EIO;
}

int peer_key_identity(const uint8_t key[PEER_KEY_LEN],
                      char out[PEER_IDENTITY_SIZE])
{
    uint8_t id[PEER_IDENTITY_BYTES];
    int rc = derive(key, "identity", id, sizeof(id));
    if (rc)
        return rc;
    int at = snprintf(out, PEER_IDENTITY_SIZE, "%s", PSK_IDENTITY_V2);
    for (size_t i = 0; i < sizeof(id); i++)
        at += snprintf(out + at, PEER_IDENTITY_SIZE - (size_t)at, "%02x", id[i]);
    return 0;
}

/* What a side needs to authenticate: the identity it shows or expects
 * and the PSK that goes with it.  A server holds one per key it
 * accepts. */
struct psk_entry {
    char name[PEER_NAME_MAX + 1];
    char identity[PEER_IDENTITY_SIZE];
    uint8_t psk[PEER_KEY_LEN];
    bool legacy;                  /* the host key of earlier versions */
    uint8_t legacy_psk[PEER_KEY_LEN];
};

struct psk_ring {
    size_t n;
    struct psk_entry e[];
};

static int entry_fill(struct psk_entry *e, const struct peer_key *k)
{
    snprintf(e->name, sizeof(e->name), "%s", k->name);
    e->legacy = k->legacy;
    if (k->legacy)
        memcpy(e->legacy_psk, k->key, PEER_KEY_LEN);
    int rc = peer_key_identity(k->key, e->identity);
    return rc ? rc : derive(k->key, "tls13 external psk", e->psk, PEER_KEY_LEN);
}

static struct psk_ring *ring_new(const struct peer_key *keys, size_t n)
{
    size_t size = sizeof(struct psk_ring) + n * sizeof(struct psk_entry);
    struct psk_ring *ring = OPENSSL_secure_zalloc(size);
    if (!ring)
        return NULL;
    ring->n = n;
    for (size_t i = 0; i < n; i++)
        if (entry_fill(&ring->e[i], &keys[i])) {
            OPENSSL_secure_clear_free(ring, size);
            return NULL;
        }
    return ring;
}

static void ring_free(struct psk_ring *ring)
{
    if (ring)
        OPENSSL_secure_clear_free(ring, sizeof(*ring) +
                                            ring->n * sizeof(ring->e[0]));
}

/* The entry whose identity ID is, or NULL; *LEGACY when it is the fixed
 * identity of earlier versions.  Every entry is compared, each in
 * constant time. */
static const struct psk_entry *ring_find(const struct psk_ring *ring,
                                         const unsigned char *id,
                                         size_t idlen, bool *legacy)
{
    const struct psk_entry *found = NULL;
    *legacy = idlen == strlen(PSK_IDENTITY_V1) &&
              !CRYPTO_memcmp(id, PSK_IDENTITY_V1, idlen);
    for (size_t i = 0; i < ring->n; i++) {
        const struct psk_entry *e = &ring->e[i];
        bool match = *legacy ? e->legacy
                             : idlen == strlen(e->identity) &&
                                   !CRYPTO_memcmp(id, e->identity, idlen);
        if (match && !found)
            found = e;
    }
    return found;
}

/* A session that holds KEY as the TLS 1.3 external PSK. */
static SSL_SESSION *psk_session(SSL *ssl, const uint8_t key[PEER_KEY_LEN])
{
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, psk_cipher_id);
    SSL_SESSION *s = cipher ? SSL_SESSION_new() : NULL;
    if (s && (!SSL_SESSION_set1_master_key(s, key, PEER_KEY_LEN) ||
              !SSL_SESSION_set_cipher(s, cipher) ||
              !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION))) {
        SSL_SESSION_free(s);
        s = NULL;
    }
    return s;
}

static const struct psk_ring *ctx_ring(SSL *ssl)
{
    return SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
}

/* The client's ring has one entry: what it shows. */
static int client_use_psk(SSL *ssl, const EVP_MD *md, const unsigned char **id,
                          size_t *idlen, SSL_SESSION **sess)
{
    const struct psk_entry *e = &ctx_ring(ssl)->e[0];
    SSL_SESSION *s = psk_session(ssl, e->legacy ? e->legacy_psk : e->psk);
    if (!s)
        return 0;
    if (md && md != SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(s))) {
        SSL_SESSION_free(s); /* a retry for another hash: we have none */
        s = NULL;
    }
    const char *shown = e->legacy ? PSK_IDENTITY_V1 : e->identity;
    *sess = s;
    *id = s ? (const unsigned char *)shown : NULL;
    *idlen = s ? strlen(shown) : 0;
    return 1;
}

/* An unknown identity gets no PSK, so no handshake.  The entry found is
 * the connection's app data: after a completed handshake, the peer that
 * proved its key. */
static int server_find_psk(SSL *ssl, const unsigned char *id, size_t idlen,
                           SSL_SESSION **sess)
{
    bool legacy;
    const struct psk_entry *e = ring_find(ctx_ring(ssl), id, idlen, &legacy);
    *sess = NULL;
    if (!e)
        return 1;
    *sess = psk_session(ssl, legacy ? e->legacy_psk : e->psk);
    if (*sess)
        SSL_set_app_data(ssl, (void *)e);
    return *sess != NULL;
}

static SSL_CTX *ctx_new(bool server, struct psk_ring *ring)
{
    SSL_CTX *ctx = ring ? SSL_CTX_new(server ? TLS_server_method()
                                             : TLS_client_method()) : NULL;
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") ||
        !SSL_CTX_set_num_tickets(ctx, 0)) {
        ring_free(ring);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_app_data(ctx, ring);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (server) {
        SSL_CTX_set_psk_find_session_callback(ctx, server_find_psk);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL); /* no roots: no certs */
        SSL_CTX_set_psk_use_session_callback(ctx, client_use_psk);
    }
    return ctx;
}

SSL_CTX *peer_tls_server_ctx(const struct peer_key *keys, size_t n)
{
    return ctx_new(true, ring_new(keys, n));
}

SSL_CTX *peer_tls_client_ctx(const uint8_t key[PEER_KEY_LEN], bool legacy)
{
    struct peer_key k = { .legacy = legacy };
    memcpy(k.key, key, PEER_KEY_LEN);
    SSL_CTX *ctx = ctx_new(false, ring_new(&k, 1));
    OPENSSL_cleanse(&k, sizeof(k));
    return ctx;
}

void peer_tls_ctx_free(SSL_CTX *ctx)
{
    if (!ctx)
        return;
    ring_free(SSL_CTX_get_app_data(ctx));
    SSL_CTX_free(ctx);
}

const char *peer_tls_peer_name(SSL *ssl)
{
    const struct psk_entry *e = SSL_get_app_data(ssl);
    return e && SSL_is_init_finished(ssl) && SSL_session_reused(ssl)
               ? e->name : NULL;
}

/* ---- blocking I/O of the setup phase ---- */

/* The negative errno of a failed SSL call RET. */
static int ssl_error(SSL *ssl, int ret)
{
    int e = SSL_get_error(ssl, ret);
    int saved = errno;
    ERR_clear_error();
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return -ETIMEDOUT; /* the socket's timeout ran out */
    case SSL_ERROR_SYSCALL:
        return saved == EAGAIN ? -ETIMEDOUT : -ECONNRESET;
    case SSL_ERROR_ZERO_RETURN:
        return -ECONNRESET;
    default:
        return -EPROTO;
    }
}

int peer_tls_handshake(SSL *ssl, bool server, char *why, size_t whycap)
{
    int ret = server ? SSL_accept(ssl) : SSL_connect(ssl);
    if (ret == 1) {
        if (SSL_session_reused(ssl))
            return 0;
        snprintf(why, whycap, "the pre-shared key was not used");
        return -EACCES;
    }
    unsigned long code = ERR_peek_last_error();
    const char *reason = code ? ERR_reason_error_string(code) : NULL;
    snprintf(why, whycap, "%s", reason ? reason : "connection closed");
    int rc = ssl_error(ssl, ret);
    if (rc != -EPROTO)
        return rc;
    switch (ERR_GET_REASON(code)) {
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_HTTP_REQUEST:
        return -EPROTO;
    default:
        return -EACCES;
    }
}

/* All N bytes at P written to (WRITING) or read from SSL. */
static int ssl_all(SSL *ssl, uint8_t *p, size_t n, bool writing)
{
    while (n) {
        int len = n > INT32_MAX ? INT32_MAX : (int)n;
        int done = writing ? SSL_write(ssl, p, len) : SSL_read(ssl, p, len);
        if (done <= 0)
            return ssl_error(ssl, done);
        p += done;
        n -= (size_t)done;
    }
    return 0;
}

int peer_frame_send(SSL *ssl, uint8_t type, const void *p, size_t n)
{
    if (n > PEER_FRAME_MAX)
        return -EMSGSIZE;
    uint8_t *f = malloc(PEER_FRAME_HDR + n);
    if (!f)
        return -ENOMEM;
    peer_frame_header(f, type, (uint32_t)n);
    if (n)
        memcpy(f + PEER_FRAME_HDR, p, n);
    int rc = ssl_all(ssl, f, PEER_FRAME_HDR + n, true);
    free(f);
    return rc;
}

int peer_frame_recv(SSL *ssl, uint32_t max, uint8_t *type, uint8_t **p,
                    size_t *n)
{
    uint8_t hdr[PEER_FRAME_HDR];
    int rc = ssl_all(ssl, hdr, sizeof(hdr), false);
    if (rc)
        return rc;
    uint32_t len = peer_be32(hdr + 1);
    *type = hdr[0];
    *n = len;
    if (len > max)
        return -EMSGSIZE;
    uint8_t *buf = malloc((size_t)len + 1);
    if (!buf)
        return -ENOMEM;
    rc = ssl_all(ssl, buf, len, false);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[len] = 0;
    *type = hdr[0];
    *p = buf;
    *n = len;
    return 0;
}

/* ---- sockets ---- */

int peer_fd_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK))
        return -errno;
    return 0;
}

int peer_socket_setup(int fd, int timeout_seconds)
{
    struct timeval tv = { .tv_sec = timeout_seconds };
    int one = 1, idle = 60, intvl = 10, cnt = 6;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)))
        return -errno;
    return 0;
}

/* ---- argv ---- */

#define ARGV_MAX 256

int peer_argv_encode(char *const argv[], uint8_t **out, size_t *n)
{
    size_t count = 0, size = 4;
    for (; argv[count]; count++)
        size += 4 + strlen(argv[count]);
    if (count == 0 || count > ARGV_MAX || size > PEER_FRAME_MAX)
        return -EINVAL;
    uint8_t *p = malloc(size), *o = p + 4;
    if (!p)
        return -ENOMEM;
    peer_put_be32(p, (uint32_t)count);
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(argv[i]);
        peer_put_be32(o, (uint32_t)len);
        memcpy(o + 4, argv[i], len);
        o += 4 + len;
    }
    *out = p;
    *n = size;
    return 0;
}

void peer_argv_free(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

int peer_argv_decode(const uint8_t *p, size_t n, char ***argv)
{
    if (n < 4)
        return -EPROTO;
    uint32_t count = peer_be32(p);
    if (count == 0 || count > ARGV_MAX)
        return -EPROTO;
    char **v = calloc(count + 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    size_t at = 4;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len = n - at >= 4 ? peer_be32(p + at) : UINT32_MAX;
        if (len > n - at - 4 || memchr(p + at + 4, 0, len)) {
            peer_argv_free(v);
            return -EPROTO; /* short, or a NUL inside an argument */
        }
        v[i] = strndup((const char *)p + at + 4, len);
        if (!v[i]) {
            peer_argv_free(v);
            return -ENOMEM;
        }
        at += 4 + len;
    }
    if (at != n) {
        peer_argv_free(v);
        return -EPROTO;
    }
    *argv = v;
    return 0;
}

void peer_argv_show(char *const argv[], char *out, size_t cap)
{
    size_t at = 0;
    for (size_t i = 0; argv[i] && at < cap; i++) {
        int w = snprintf(out + at, cap - at, "%s%s", i ? " " : "", argv[i]);
        at += w > 0 ? (size_t)w : 0;
    }
    if (at == 0 && cap)
        out[0] = 0;
}
