/*
 * ndmp.h - the NDMP engine: an NDMPv4 server (CONNECT, CONFIG, DATA,
 * MOVER, TAPE, NOTIFY, LOG, FH) around the dump and restore commands.
 * See README.md in this folder for the files and what each guarantees.
 */
#ifndef SNAPFS_NDMP_H
#define SNAPFS_NDMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NDMP_VERSION 4
#define NDMP_PORT_DEFAULT 10000
/* The largest request accepted (record marking fragments together). */
#define NDMP_MSG_MAX (1u << 20)
#define NDMP_LENGTH_INFINITY UINT64_MAX
#define NDMP_HEADER_BYTES 24
#define NDMP_MD5_CHALLENGE 64

/* ---- message codes (NDMPv4, ndmp.x) ---- */
enum {
    NDMP_CONNECT_OPEN = 0x900,
    NDMP_CONNECT_CLIENT_AUTH = 0x901,
    NDMP_CONNECT_CLOSE = 0x902,
    NDMP_CONNECT_SERVER_AUTH = 0x903,
    NDMP_CONFIG_GET_HOST_INFO = 0x100,
    NDMP_CONFIG_GET_CONNECTION_TYPE = 0x102,
    NDMP_CONFIG_GET_AUTH_ATTR = 0x103,
    NDMP_CONFIG_GET_BUTYPE_INFO = 0x104,
    NDMP_CONFIG_GET_FS_INFO = 0x105,
    NDMP_CONFIG_GET_TAPE_INFO = 0x106,
    NDMP_CONFIG_GET_SCSI_INFO = 0x107,
    NDMP_CONFIG_GET_SERVER_INFO = 0x108,
    NDMP_CONFIG_SET_EXT_LIST = 0x109,
    NDMP_CONFIG_GET_EXT_LIST = 0x10A,
    NDMP_TAPE_OPEN = 0x300,
    NDMP_TAPE_CLOSE = 0x301,
    NDMP_TAPE_GET_STATE = 0x302,
    NDMP_TAPE_MTIO = 0x303,
    NDMP_TAPE_WRITE = 0x304,
    NDMP_TAPE_READ = 0x305,
    NDMP_DATA_GET_STATE = 0x400,
    NDMP_DATA_START_BACKUP = 0x401,
    NDMP_DATA_START_RECOVER = 0x402,
    NDMP_DATA_ABORT = 0x403,
    NDMP_DATA_GET_ENV = 0x404,
    NDMP_DATA_STOP = 0x407,
    NDMP_DATA_LISTEN = 0x409,
    NDMP_DATA_CONNECT = 0x40A,
    NDMP_DATA_START_RECOVER_FILEHIST = 0x40B,
    NDMP_NOTIFY_DATA_HALTED = 0x501,
    NDMP_NOTIFY_CONNECTION_STATUS = 0x502,
    NDMP_NOTIFY_MOVER_HALTED = 0x503,
    NDMP_NOTIFY_MOVER_PAUSED = 0x504,
    NDMP_NOTIFY_DATA_READ = 0x505,
    NDMP_LOG_FILE = 0x602,
    NDMP_LOG_MESSAGE = 0x603,
    NDMP_FH_ADD_FILE = 0x703,
    NDMP_FH_ADD_DIR = 0x704,
    NDMP_FH_ADD_NODE = 0x705,
    NDMP_MOVER_GET_STATE = 0xA00,
    NDMP_MOVER_LISTEN = 0xA01,
    NDMP_MOVER_CONTINUE = 0xA02,
    NDMP_MOVER_ABORT = 0xA03,
    NDMP_MOVER_STOP = 0xA04,
    NDMP_MOVER_SET_WINDOW = 0xA05,
    NDMP_MOVER_READ = 0xA06,
    NDMP_MOVER_CLOSE = 0xA07,
    NDMP_MOVER_SET_RECORD_SIZE = 0xA08,
    NDMP_MOVER_CONNECT = 0xA09,
};

enum ndmp_error {
    NDMP_NO_ERR = 0,
    NDMP_NOT_SUPPORTED_ERR = 1,
    NDMP_DEVICE_BUSY_ERR = 2,
    NDMP_DEVICE_OPENED_ERR = 3,
    NDMP_NOT_AUTHORIZED_ERR = 4,
    NDMP_PERMISSION_ERR = 5,
    NDMP_DEV_NOT_OPEN_ERR = 6,
    NDMP_IO_ERR = 7,
    NDMP_ILLEGAL_ARGS_ERR = 9,
    NDMP_WRITE_PROTECT_ERR = 11,
    NDMP_EOF_ERR = 12,
    NDMP_EOM_ERR = 13,
    NDMP_FILE_NOT_FOUND_ERR = 14,
    NDMP_NO_TAPE_LOADED_ERR = 15,
    NDMP_NO_DEVICE_ERR = 16,
    NDMP_XDR_DECODE_ERR = 18,
    NDMP_ILLEGAL_STATE_ERR = 19,
    NDMP_UNDEFINED_ERR = 20,
    NDMP_XDR_ENCODE_ERR = 21,
    NDMP_NO_MEM_ERR = 22,
    NDMP_CONNECT_ERR = 23,
    NDMP_SEQUENCE_NUM_ERR = 24,
    NDMP_READ_IN_PROGRESS_ERR = 25,
    NDMP_VERSION_NOT_SUPPORTED = 28,
};

enum { NDMP_MSG_REQUEST = 0, NDMP_MSG_REPLY = 1 };
enum { NDMP_AUTH_NONE = 0, NDMP_AUTH_TEXT = 1, NDMP_AUTH_MD5 = 2 };
enum { NDMP_ADDR_LOCAL = 0, NDMP_ADDR_TCP = 1 };
enum { NDMP_LOG_NORMAL = 0, NDMP_LOG_DEBUG = 1, NDMP_LOG_ERROR = 2,
       NDMP_LOG_WARNING = 3 };

/* ---- ndmp_xdr.c: bounded XDR and record marking ---- */

/* A message being decoded: every read is checked against the end. */
struct xdr_in {
    const uint8_t *p, *end;
    bool bad;                 /* a read went past the end or was absurd */
};
uint32_t xin_u32(struct xdr_in *x);
uint64_t xin_u64(struct xdr_in *x);
/* A string<> of at most MAX bytes, copied NUL-terminated into a malloc'd
 * buffer (NULL and x->bad on a short message, an over-long string, a NUL
 * inside, or no memory). */
char *xin_string(struct xdr_in *x, size_t max);
/* opaque<>: a pointer into the message and its length (at most MAX). */
const uint8_t *xin_opaque(struct xdr_in *x, size_t max, size_t *len);
/* opaque[N]. */
void xin_fixed(struct xdr_in *x, void *out, size_t n);

/* A message being encoded, growing as needed (bounded by NDMP_MSG_MAX). */
struct xdr_out {
    uint8_t *buf;
    size_t len, cap;
    bool bad;                 /* no memory, or over the bound */
};
void xout_u32(struct xdr_out *x, uint32_t v);
void xout_u64(struct xdr_out *x, uint64_t v);
void xout_string(struct xdr_out *x, const char *s);
void xout_opaque(struct xdr_out *x, const void *p, size_t n);
void xout_fixed(struct xdr_out *x, const void *p, size_t n);
void xout_free(struct xdr_out *x);

/* The NDMP header of every message. */
struct ndmp_header {
    uint32_t sequence, time_stamp, type, code, reply_sequence, error;
};
void ndmp_header_put(struct xdr_out *x, const struct ndmp_header *h);
int ndmp_header_get(struct xdr_in *x, struct ndmp_header *h);

/*
 * Record marking, incrementally (a session never blocks on a slow
 * client): feed what read(2) returned; a whole message is handed out once
 * its last fragment is in.  A message over MAX bytes is refused.
 */
struct rm_reader {
    uint8_t hdr[4];
    size_t hdr_have;
    uint32_t frag_left;
    bool last;
    uint8_t *msg;
    size_t len, cap, max;
};
/* Read from FD what is there: 1 a message is complete (rm->msg, rm->len;
 * call rm_reset after), 0 more is needed, -ECONNRESET the peer closed,
 * -EMSGSIZE over the limit, -errno. */
int rm_read(struct rm_reader *rm, int fd);
void rm_reset(struct rm_reader *rm);
void rm_free(struct rm_reader *rm);
/* Write BUF (one message) as one last fragment; 0 or -errno. */
int rm_write(int fd, const uint8_t *buf, size_t len);

/* ---- ndmp_auth.c: users and passwords ---- */

#define NDMP_USER_MAX 64
#define NDMP_PASSWORD_CHARS 24
/* USER is 1-64 of [A-Za-z0-9._-], not starting with a dot. */
bool ndmp_user_valid(const char *user);
/* Generate a password for USER and store it (replacing an older one) in
 * the root-only file $SNAPFS_CONFIG_DIR/ndmp.users; OUT gets it. */
int ndmp_password_set(const char *user, char out[NDMP_PASSWORD_CHARS + 1]);
/* Store PASSWORD (no space or newline) for USER, replacing an older one
 * (a configuration import brings it): 0, -EINVAL, -errno. */
int ndmp_password_put(const char *user, const char *password);
/* Every user's name, in the file's order (malloc'd, each name too). */
int ndmp_user_names(char ***names, size_t *n);
/* The password of USER into OUT: 0, -ENOENT (no such user), -errno. */
int ndmp_password_get(const char *user, char *out, size_t cap);
/* The path of the users file, for messages. */
int ndmp_users_path(char *out, size_t cap);
/* The NDMP MD5 digest of PASSWORD with CHALLENGE. */
void ndmp_md5_digest(const uint8_t challenge[NDMP_MD5_CHALLENGE],
                     const char *password, uint8_t digest[16]);
/* Constant-time comparison of two 16-byte digests. */
bool ndmp_digest_equal(const uint8_t a[16], const uint8_t b[16]);

/* ---- ndmp_serve.c: the listener ---- */

struct ndmp_serve_opts {
    const char *listen;       /* NULL: every address, IPv6 and IPv4 */
    int port;
    int max_sessions;
    bool allow_text;          /* AUTH_TEXT accepted (off by default) */
    const char *tape_dir;     /* file tapes live here; NULL: no tapes */
    char **tape_devices;      /* tape drives offered (--tape-device) */
    int ntape_devices;
    char **volumes;           /* stores fs info lists also unmounted */
    int nvolumes;
    const char *self;         /* the snapfs binary children run */
    int log_fd;
};
/* Bind and listen: the listening fds (up to 2); -errno (*WHY says what). */
int ndmp_listen(const struct ndmp_serve_opts *o, int fds[2], int *nfds,
                char *why, size_t whycap);
/* The port a listening socket is bound to. */
int ndmp_bound_port(int fd);
/* Accept sessions forever (a process each). */
int ndmp_serve_run(const struct ndmp_serve_opts *o, const int *fds, int nfds);
/* One line to the server's log (time, pid, message). */
void ndmp_log(int fd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- ndmp_session.c: one connection ---- */

/* Serve one control connection until it closes; returns the exit code
 * of the session process. */
int ndmp_session_run(const struct ndmp_serve_opts *o, int fd,
                     const char *peer);

#endif
