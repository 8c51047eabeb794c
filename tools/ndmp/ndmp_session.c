/*
 * ndmp_session.c - one NDMP control connection: the greeting, version
 * negotiation, authentication, the dispatch of requests to the CONFIG,
 * DATA, MOVER and TAPE services, and the one poll loop that moves the
 * session's data while requests keep being answered.
 *
 * THEORY.  A session is one process with one thread: a poll loop over
 * the control connection, the data service's descriptors (a dump or
 * restore child, its data connection) and the mover's (its data
 * connection, the tape file).  Every descriptor is read only when poll
 * says so and into bounded buffers, so a request is answered while a
 * backup streams, and a client that sends half a message stalls nothing.
 *
 * Guarantees:
 *   - nothing but CONNECT_OPEN, CONNECT_CLIENT_AUTH, CONNECT_CLOSE,
 *     CONFIG_GET_AUTH_ATTR and CONFIG_GET_SERVER_INFO is served before a
 *     client authenticated (NOT_AUTHORIZED_ERR); AUTH_NONE is refused,
 *     AUTH_TEXT unless --allow-text, an MD5 digest is checked against a
 *     fresh one-use challenge; three failures end the session; every
 *     failure is logged with the user and the client, never a secret;
 *   - a message that does not decode is answered with
 *     NDMP_XDR_DECODE_ERR and the session goes on; one over
 *     NDMP_MSG_MAX, or a header that cannot be read, ends the session
 *     with a log line (its length is all that was read of it);
 *   - when the control connection closes (or the server stops), a running
 *     backup or restore is stopped and cleaned up (data_shutdown) before
 *     the process exits; a DMA that stops reading its messages for 60 s
 *     ends its session.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "ndmp_int.h"

#define AUTH_FAILURES_MAX 3
#define SEND_TIMEOUT_S 60
#define STRING_MAX 4096

static void send_message(struct session *s, const struct ndmp_header *h,
                         const struct xdr_out *body)
{
    struct xdr_out x = { 0 };
    ndmp_header_put(&x, h);
    if (body && body->len)
        xout_fixed(&x, body->buf, body->len);
    if (!x.bad && rm_write(s->fd, x.buf, x.len))
        s->closing = true;
    xout_free(&x);
}

void ndmp_post(struct session *s, uint32_t code, struct xdr_out *body)
{
    struct ndmp_header h = { .sequence = ++s->seq,
                             .time_stamp = (uint32_t)time(NULL),
                             .type = NDMP_MSG_REQUEST, .code = code };
    send_message(s, &h, body);
}

void ndmp_log_message(struct session *s, int type, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    struct xdr_out b = { 0 };
    xout_u32(&b, (uint32_t)type);
    xout_u32(&b, 0);          /* message_id */
    xout_string(&b, text);
    xout_u32(&b, 0);          /* no associated message */
    xout_u32(&b, 0);
    ndmp_post(s, NDMP_LOG_MESSAGE, &b);
    xout_free(&b);
}

void ndmp_put_addr(struct xdr_out *x, const struct ndmp_addr *a)
{
    xout_u32(x, a->type);
    if (a->type != NDMP_ADDR_TCP)
        return;
    xout_u32(x, 1);           /* one tcp_addr */
    xout_u32(x, a->ip);
    xout_u32(x, a->port);
    xout_u32(x, 0);           /* no addr_env */
}

int ndmp_get_addr(struct xdr_in *x, struct ndmp_addr *a)
{
    memset(a, 0, sizeof(*a));
    a->type = xin_u32(x);
    if (a->type == NDMP_ADDR_LOCAL)
        return x->bad ? -EBADMSG : 0;
    if (a->type != NDMP_ADDR_TCP)
        return -EINVAL;
    uint32_t n = xin_u32(x);
    if (n < 1 || n > 16)
        return -EBADMSG;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t ip = xin_u32(x), port = xin_u32(x);
        uint32_t nenv = xin_u32(x);
        if (nenv > 64)
            return -EBADMSG;
        for (uint32_t j = 0; j < 2 * nenv; j++) {
            size_t len;
            xin_opaque(x, STRING_MAX, &len);
        }
        if (i == 0) {
            a->ip = ip;
            a->port = (uint16_t)port;
        }
    }
    return x->bad ? -EBADMSG : 0;
}

int ndmp_tcp_listen(struct session *s, struct ndmp_addr *a)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(s->fd, (struct sockaddr *)&ss, &sl))
        return -errno;
    struct sockaddr_in sin = { .sin_family = AF_INET };
    if (ss.ss_family == AF_INET) {
        sin.sin_addr = ((struct sockaddr_in *)&ss)->sin_addr;
    } else {
        const struct in6_addr *v6 = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (!IN6_IS_ADDR_V4MAPPED(v6))
            return -EAFNOSUPPORT;  /* ndmp4_tcp_addr carries IPv4 only */
        memcpy(&sin.sin_addr, v6->s6_addr + 12, 4);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    sl = sizeof(sin);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 1) ||
        getsockname(fd, (struct sockaddr *)&sin, &sl)) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    a->type = NDMP_ADDR_TCP;
    a->ip = ntohl(sin.sin_addr.s_addr);
    a->port = ntohs(sin.sin_port);
    return fd;
}

int ndmp_tcp_connect(const struct ndmp_addr *a)
{
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons(a->port),
                               .sin_addr.s_addr = htonl(a->ip) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* ---- CONNECT ---- */

static uint32_t connect_open(struct session *s, struct xdr_in *x,
                             struct xdr_out *out)
{
    uint32_t version = xin_u32(x);
    if (x->bad)
        return NDMP_XDR_DECODE_ERR;
    uint32_t err = NDMP_NO_ERR;
    if (s->opened)
        err = NDMP_ILLEGAL_STATE_ERR;
    else if (version != NDMP_VERSION)
        err = NDMP_ILLEGAL_ARGS_ERR;
    else
        s->opened = true;
    if (err == NDMP_ILLEGAL_ARGS_ERR)
        ndmp_log(s->o->log_fd, "%s: protocol version %u refused (only %d)",
                 s->peer, version, NDMP_VERSION);
    xout_u32(out, err);
    return NDMP_NO_ERR;
}

static void auth_failed(struct session *s, const char *user, const char *why)
{
    s->auth_failures++;
    ndmp_log(s->o->log_fd, "%s: authentication of user '%s' failed: %s",
             s->peer, user, why);
    if (s->auth_failures >= AUTH_FAILURES_MAX) {
        ndmp_log(s->o->log_fd, "%s: %d failed authentications; closing",
                 s->peer, s->auth_failures);
        s->closing = true;
    }
}

/* Check USER's password against TEXT or against the MD5 DIGEST. */
static bool password_matches(struct session *s, const char *user,
                             const char *text, const uint8_t *digest,
                             const char **why)
{
    char pw[256];
    int rc = ndmp_password_get(user, pw, sizeof(pw));
    if (rc) {
        *why = rc == -ENOENT ? "no such user (snapfs ndmp password USER)"
                             : "the users file cannot be read";
        return false;
    }
    bool ok;
    if (digest) {
        uint8_t mine[16];
        ndmp_md5_digest(s->challenge, pw, mine);
        ok = ndmp_digest_equal(mine, digest);
    } else {
        size_t a = strlen(pw), b = strlen(text);
        ok = a == b && CRYPTO_memcmp(pw, text, a) == 0;
    }
    OPENSSL_cleanse(pw, sizeof(pw));
    if (!ok)
        *why = "wrong password";
    return ok;
}

static uint32_t connect_client_auth(struct session *s, struct xdr_in *x,
                                    struct xdr_out *out)
{
    uint32_t type = xin_u32(x);
    char *user = NULL, *text = NULL;
    uint8_t digest[16];
    if (type == NDMP_AUTH_TEXT) {
        user = xin_string(x, NDMP_USER_MAX);
        text = xin_string(x, 256);
    } else if (type == NDMP_AUTH_MD5) {
        user = xin_string(x, NDMP_USER_MAX);
        xin_fixed(x, digest, sizeof(digest));
    }
    uint32_t err = NDMP_NO_ERR;
    const char *why = NULL;
    const char *who = user ? user : "";
    if (x->bad) {
        err = NDMP_XDR_DECODE_ERR;
    } else if (!s->opened) {
        err = NDMP_ILLEGAL_STATE_ERR;
    } else if (type == NDMP_AUTH_NONE) {
        why = "AUTH_NONE is refused";
    } else if (type == NDMP_AUTH_TEXT && !s->o->allow_text) {
        why = "text authentication is disabled (md5 only; serve "
              "--allow-text enables it)";
    } else if (type == NDMP_AUTH_MD5 && !s->have_challenge) {
        why = "md5 without a challenge (CONFIG_GET_AUTH_ATTR first)";
    } else if (type != NDMP_AUTH_TEXT && type != NDMP_AUTH_MD5) {
        err = NDMP_ILLEGAL_ARGS_ERR;
    } else if (!ndmp_user_valid(who)) {
        why = "not a valid user name";
    } else if (password_matches(s, who, text,
                                type == NDMP_AUTH_MD5 ? digest : NULL,
                                &why)) {
        s->authed = true;
        snprintf(s->user, sizeof(s->user), "%s", who);
        ndmp_log(s->o->log_fd, "%s: user '%s' authenticated (%s)", s->peer,
                 who, type == NDMP_AUTH_MD5 ? "md5" : "text");
    }
    if (why && !s->authed) {
        auth_failed(s, who, why);
        err = NDMP_NOT_AUTHORIZED_ERR;
    }
    s->have_challenge = false;   /* a challenge serves once */
    if (text)
        OPENSSL_cleanse(text, strlen(text));
    free(user);
    free(text);
    if (err == NDMP_XDR_DECODE_ERR)
        return err;
    xout_u32(out, err);
    return NDMP_NO_ERR;
}

static uint32_t connect_close(struct session *s, struct xdr_in *x,
                              struct xdr_out *out)
{
    s->closing = true;
    return NDMP_NO_ERR;
}

/* The server proves itself to the DMA: MD5 over the DMA's challenge
 * with the password of the user the DMA authenticated as, the secret
 * both ends share.  Only after the DMA's own authentication (no user,
 * no secret) and only MD5 (TEXT would send the password back). */
static uint32_t connect_server_auth(struct session *s, struct xdr_in *x,
                                    struct xdr_out *out)
{
    uint32_t type = xin_u32(x);
    uint8_t challenge[NDMP_MD5_CHALLENGE];
    if (type == NDMP_AUTH_MD5)
        xin_fixed(x, challenge, sizeof(challenge));
    if (x->bad)
        return NDMP_XDR_DECODE_ERR;
    uint32_t err = !s->authed               ? NDMP_NOT_AUTHORIZED_ERR
                   : type != NDMP_AUTH_MD5  ? NDMP_ILLEGAL_ARGS_ERR
                                            : NDMP_NO_ERR;
    char pw[256];
    if (!err && ndmp_password_get(s->user, pw, sizeof(pw)))
        err = NDMP_NOT_AUTHORIZED_ERR;  /* the user was removed since */
    if (err) {
        xout_u32(out, err);
        xout_u32(out, NDMP_AUTH_NONE);
        return NDMP_NO_ERR;
    }
    uint8_t digest[16];
    ndmp_md5_digest(challenge, pw, digest);
    OPENSSL_cleanse(pw, sizeof(pw));
    xout_u32(out, NDMP_NO_ERR);
    xout_u32(out, NDMP_AUTH_MD5);
    xout_string(out, s->user);
    xout_fixed(out, digest, sizeof(digest));
    ndmp_log(s->o->log_fd, "%s: the server proved itself to user '%s' "
                           "(md5)", s->peer, s->user);
    return NDMP_NO_ERR;
}

static uint32_t config_auth_attr(struct session *s, struct xdr_in *x,
                                 struct xdr_out *out)
{
    uint32_t type = xin_u32(x);
    if (x->bad)
        return NDMP_XDR_DECODE_ERR;
    if (type == NDMP_AUTH_MD5) {
        if (RAND_bytes(s->challenge, sizeof(s->challenge)) != 1) {
            xout_u32(out, NDMP_UNDEFINED_ERR);
            xout_u32(out, NDMP_AUTH_NONE);
            return NDMP_NO_ERR;
        }
        s->have_challenge = true;
        xout_u32(out, NDMP_NO_ERR);
        xout_u32(out, NDMP_AUTH_MD5);
        xout_fixed(out, s->challenge, sizeof(s->challenge));
        return NDMP_NO_ERR;
    }
    bool ok = type == NDMP_AUTH_TEXT && s->o->allow_text;
    xout_u32(out, ok ? NDMP_NO_ERR : NDMP_ILLEGAL_ARGS_ERR);
    xout_u32(out, ok ? NDMP_AUTH_TEXT : NDMP_AUTH_NONE);
    return NDMP_NO_ERR;
}

/* ---- dispatch ---- */

struct handler {
    uint32_t code;
    ndmp_handler fn;
    bool before_auth;
};

static const struct handler handlers[] = {
    { NDMP_CONNECT_OPEN, connect_open, true },
    { NDMP_CONNECT_CLIENT_AUTH, connect_client_auth, true },
    { NDMP_CONNECT_CLOSE, connect_close, true },
    { NDMP_CONNECT_SERVER_AUTH, connect_server_auth, false },
    { NDMP_CONFIG_GET_AUTH_ATTR, config_auth_attr, true },
    { NDMP_CONFIG_GET_SERVER_INFO, config_server_info, true },
    { NDMP_CONFIG_GET_HOST_INFO, config_host_info, false },
    { NDMP_CONFIG_GET_CONNECTION_TYPE, config_connection_type, false },
    { NDMP_CONFIG_GET_BUTYPE_INFO, config_butype_info, false },
    { NDMP_CONFIG_GET_FS_INFO, config_fs_info, false },
    { NDMP_CONFIG_GET_TAPE_INFO, config_tape_info, false },
    { NDMP_CONFIG_GET_SCSI_INFO, config_scsi_info, false },
    { NDMP_DATA_GET_STATE, data_get_state, false },
    { NDMP_DATA_START_BACKUP, data_start_backup, false },
    { NDMP_DATA_START_RECOVER, data_start_recover, false },
    { NDMP_DATA_START_RECOVER_FILEHIST, data_start_recover_filehist, false },
    { NDMP_DATA_ABORT, data_abort, false },
    { NDMP_DATA_GET_ENV, data_get_env, false },
    { NDMP_DATA_STOP, data_stop, false },
    { NDMP_DATA_LISTEN, data_listen, false },
    { NDMP_DATA_CONNECT, data_connect, false },
    { NDMP_MOVER_GET_STATE, mover_get_state, false },
    { NDMP_MOVER_LISTEN, mover_listen, false },
    { NDMP_MOVER_CONTINUE, mover_continue, false },
    { NDMP_MOVER_ABORT, mover_abort, false },
    { NDMP_MOVER_STOP, mover_stop, false },
    { NDMP_MOVER_SET_WINDOW, mover_set_window, false },
    { NDMP_MOVER_READ, mover_read, false },
    { NDMP_MOVER_CLOSE, mover_close, false },
    { NDMP_MOVER_SET_RECORD_SIZE, mover_set_record_size, false },
    { NDMP_MOVER_CONNECT, mover_connect, false },
    { NDMP_TAPE_OPEN, tape_open, false },
    { NDMP_TAPE_CLOSE, tape_close, false },
    { NDMP_TAPE_GET_STATE, tape_get_state, false },
    { NDMP_TAPE_MTIO, tape_mtio, false },
    { NDMP_TAPE_WRITE, tape_write, false },
    { NDMP_TAPE_READ, tape_read, false },
};

static const struct handler *find_handler(uint32_t code)
{
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (handlers[i].code == code)
            return &handlers[i];
    return NULL;
}

/* One whole message from the client. */
static void handle_message(struct session *s, const uint8_t *msg, size_t len)
{
    struct xdr_in x = { .p = msg, .end = msg + len };
    struct ndmp_header req;
    if (ndmp_header_get(&x, &req)) {
        ndmp_log(s->o->log_fd, "%s: a message of %zu bytes has no header; "
                               "closing", s->peer, len);
        s->closing = true;
        return;
    }
    if (req.type != NDMP_MSG_REQUEST)
        return;                  /* replies to our posts: none expected */
    struct ndmp_header rep = { .type = NDMP_MSG_REPLY, .code = req.code,
                               .reply_sequence = req.sequence };
    struct xdr_out body = { 0 };
    const struct handler *h = find_handler(req.code);
    if (!h)
        rep.error = NDMP_NOT_SUPPORTED_ERR;
    else if (!h->before_auth && !s->authed)
        rep.error = NDMP_NOT_AUTHORIZED_ERR;
    else
        rep.error = h->fn(s, &x, &body);
    if (rep.error == NDMP_XDR_DECODE_ERR || x.bad) {
        rep.error = NDMP_XDR_DECODE_ERR;
        ndmp_log(s->o->log_fd, "%s: message 0x%x of %zu bytes does not "
                               "decode; answered XDR_DECODE_ERR", s->peer,
                 req.code, len);
    }
    if (body.bad && rep.error == NDMP_NO_ERR)
        rep.error = NDMP_XDR_ENCODE_ERR;
    if (rep.error != NDMP_NO_ERR)
        body.len = 0;            /* an error in the header has no body */
    /* numbered when sent: posts the handler made went out before it */
    rep.sequence = ++s->seq;
    rep.time_stamp = (uint32_t)time(NULL);
    if (req.code != NDMP_CONNECT_CLOSE)   /* a close has no reply */
        send_message(s, &rep, &body);
    xout_free(&body);
}

/* The greeting every connection gets first. */
static void greet(struct session *s)
{
    struct xdr_out b = { 0 };
    xout_u32(&b, 0);          /* NDMP_CONNECTED */
    xout_u32(&b, NDMP_VERSION);
    xout_string(&b, "snapfs NDMP server");
    ndmp_post(s, NDMP_NOTIFY_CONNECTION_STATUS, &b);
    xout_free(&b);
}

#define POLL_MAX 12

static volatile sig_atomic_t session_stop;

static void on_term(int sig)
{
    (void)sig;
    session_stop = 1;
}

int ndmp_session_run(const struct ndmp_serve_opts *o, int fd,
                     const char *peer)
{
    struct session s = { .o = o, .fd = fd };
    snprintf(s.peer, sizeof(s.peer), "%s", peer);
    data_init(&s.data);
    mover_init(&s.mover, &s.tape);
    struct rm_reader rm = { .max = NDMP_MSG_MAX };
    /* a DMA that stops reading cannot hold the session forever */
    struct timeval send_timeout = { .tv_sec = SEND_TIMEOUT_S };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout,
               sizeof(send_timeout));
    /* requests and replies in turn: each message goes out at once, not
     * held back until the DMA acknowledges the one before (Nagle) */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
    struct sigaction sa = { .sa_handler = on_term };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    ndmp_log(o->log_fd, "%s: session started", peer);
    greet(&s);
    while (!s.closing && !session_stop) {
        struct pollfd p[POLL_MAX];
        p[0] = (struct pollfd){ .fd = fd, .events = POLLIN };
        int n = 1;
        n += data_poll_fds(&s, p + n, POLL_MAX - n);
        n += mover_poll_fds(&s, p + n, POLL_MAX - n);
        if (poll(p, (nfds_t)n, 1000) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        data_poll_done(&s, p, n);
        mover_poll_done(&s, p, n);
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        int rc = rm_read(&rm, fd);
        if (rc == 1) {
            handle_message(&s, rm.msg, rm.len);
            rm_reset(&rm);
        } else if (rc == -EMSGSIZE) {
            ndmp_log(o->log_fd, "%s: a message over %u bytes; closing",
                     peer, NDMP_MSG_MAX);
            break;
        } else if (rc < 0) {
            if (rc != -ECONNRESET)
                ndmp_log(o->log_fd, "%s: %s", peer, strerror(-rc));
            break;
        }
    }
    if (session_stop)
        ndmp_log(o->log_fd, "%s: the server is stopping", peer);
    data_shutdown(&s);
    mover_shutdown(&s);
    rm_free(&rm);
    ndmp_log(o->log_fd, "%s: session ended%s%s%s", peer,
             s.authed ? " (user " : "", s.authed ? s.user : "",
             s.authed ? ")" : "");
    close(fd);
    return 0;
}
