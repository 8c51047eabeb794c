/*
 * ndmp_int.h - private to tools/ndmp: one session's state (its DATA,
 * MOVER and TAPE services), shared by the session loop and the services.
 */
#ifndef SNAPFS_NDMP_INT_H
#define SNAPFS_NDMP_INT_H

#include <netinet/in.h>
#include <poll.h>
#include <sys/types.h>
#include <time.h>

#include "ndmp.h"

enum { DATA_IDLE = 0, DATA_ACTIVE = 1, DATA_HALTED = 2, DATA_LISTEN = 3,
       DATA_CONNECTED = 4 };
enum { DATA_OP_NOACTION = 0, DATA_OP_BACKUP = 1, DATA_OP_RECOVER = 2,
       DATA_OP_RECOVER_FILEHIST = 3 };
enum { DATA_HALT_NA = 0, DATA_HALT_SUCCESSFUL = 1, DATA_HALT_ABORTED = 2,
       DATA_HALT_INTERNAL_ERROR = 3, DATA_HALT_CONNECT_ERROR = 4 };
enum { MOVER_MODE_READ = 0, MOVER_MODE_WRITE = 1, MOVER_MODE_NOACTION = 2 };
enum { MOVER_IDLE = 0, MOVER_LISTEN = 1, MOVER_ACTIVE = 2, MOVER_PAUSED = 3,
       MOVER_HALTED = 4 };
enum { MOVER_PAUSE_NA = 0, MOVER_PAUSE_EOM = 1, MOVER_PAUSE_EOF = 2,
       MOVER_PAUSE_SEEK = 3, MOVER_PAUSE_EOW = 5 };
enum { MOVER_HALT_NA = 0, MOVER_HALT_CONNECT_CLOSED = 1,
       MOVER_HALT_ABORTED = 2, MOVER_HALT_INTERNAL_ERROR = 3,
       MOVER_HALT_CONNECT_ERROR = 4, MOVER_HALT_MEDIA_ERROR = 5 };

#define PUMP_BYTES (256 * 1024)

/* A bounded buffer between two descriptors. */
struct pump {
    uint8_t *buf;
    size_t head, tail;        /* bytes [head, tail) wait to be written */
};

/* A data connection's address, as GET_STATE reports it. */
struct ndmp_addr {
    uint32_t type;            /* NDMP_ADDR_LOCAL or NDMP_ADDR_TCP */
    uint32_t ip;              /* host order */
    uint16_t port;
};

struct ndmp_env {
    char *name, *value;
};

struct ndmp_name {
    char *original, *destination;
    uint64_t fh_info;
};

struct fh_parser;
struct dar;

/* The offset map (ndmp_restart.c): the files of a backup's image, with
 * the offset of each one's header, from the restart point on. */
struct restart_entry {
    uint32_t ino;
    uint64_t pos;
};
struct restart_map {
    struct restart_entry *e;
    size_t n, cap;
    bool broken;              /* out of memory: no restart point */
};

struct data_svc {
    int state, op, halt_reason;
    int listen_fd, conn_fd;
    struct ndmp_addr addr;
    pid_t child;
    int child_io;             /* backup: its stdout; recover: its stdin */
    int child_err;
    char errline[512];        /* the child's stderr, line by line */
    size_t errlen;
    char last_error[512];
    struct pump pump;
    bool conn_eof, child_eof;
    bool direct;              /* the dump writes into the data connection */
    uint64_t bytes;
    struct timespec started;  /* when the child was started */
    struct ndmp_env *env;
    size_t nenv;
    struct ndmp_name *names;
    size_t nnames;
    char filesystem[4096];    /* a backup's FILESYSTEM */
    uint32_t restart_id;      /* a stopped backup's kept context, or 0 */
    uint32_t restart_ino;     /* where it restarts */
    uint64_t restart_offset;  /* the bytes of it the tape holds */
    struct restart_map rmap;  /* HIST=y, LOCAL mover: the offset map */
    char dump_date[48];       /* a finished backup's since-token (DUMP_DATE) */
    char *exclude;            /* EXCLUDE's copy, cut at its commas */
    bool hist;
    bool pending_read;        /* NOTIFY_DATA_READ after the reply */
    uint64_t read_offset, read_length;   /* the part of the image asked */
    struct dar *dar;          /* a recover by position (ndmp_dar.c) */
    struct fh_parser *fh;
};

struct tape_svc {
    int fd;                   /* the data; -1: no tape open */
    int idx;                  /* the records file (ndmp_tape.c) */
    int mode;                 /* 0 read, 1 read-write, 2 raw */
    char path[4096];
    uint64_t *ent;            /* records (length << 1) and filemarks (1) */
    size_t nent, cap;
    size_t pos;               /* the head: the entry it is before */
    uint64_t pos_off;         /* and that entry's data offset (a drive:
                               * bytes since the last positioning) */
    bool dev;                 /* a tape drive (ndmp_tapedev.c) */
    uint8_t *stage;           /* a drive: the record last read */
    size_t stage_len;
    uint64_t stage_base;      /* its offset, as pos_off counts */
};

struct mover_svc {
    int state, mode, pause_reason, halt_reason;
    uint32_t record_size, record_num;
    uint64_t bytes_moved, seek_position, bytes_left_to_read;
    uint64_t window_offset, window_length;
    uint64_t tape_base;       /* the tape offset of window_offset */
    uint64_t file_end;        /* WRITE mode: where the tape file ends */
    int listen_fd, conn_fd;
    struct ndmp_addr addr;
    uint8_t *rec;             /* READ mode: the record being filled */
    size_t rec_fill;
    uint64_t unsynced;        /* READ mode: bytes written, writeback not
                                 yet started */
    struct pump pump;         /* WRITE mode: tape bytes for the data */
};

struct session {
    const struct ndmp_serve_opts *o;
    int fd;
    char peer[80];
    uint32_t seq;
    bool opened, authed, closing;
    int auth_failures;
    char user[NDMP_USER_MAX + 1];
    uint8_t challenge[NDMP_MD5_CHALLENGE];
    bool have_challenge;
    struct data_svc data;
    struct mover_svc mover;
    struct tape_svc tape;
};

/* ndmp_session.c: messages to the DMA */
void ndmp_post(struct session *s, uint32_t code, struct xdr_out *body);
void ndmp_log_message(struct session *s, int type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ndmp_put_addr(struct xdr_out *x, const struct ndmp_addr *a);
/* Decode an ndmp4_addr into A: 0 or -EBADMSG. */
int ndmp_get_addr(struct xdr_in *x, struct ndmp_addr *a);
/* Listen on the control connection's IPv4 address: fd and *A. */
int ndmp_tcp_listen(struct session *s, struct ndmp_addr *a);
/* Connect to A (TCP): fd or -errno. */
int ndmp_tcp_connect(const struct ndmp_addr *a);

/* A request's handler: decode from X, encode the reply body into OUT;
 * returns the header's error (NDMP_NO_ERR for a body). */
typedef uint32_t (*ndmp_handler)(struct session *s, struct xdr_in *x,
                                 struct xdr_out *out);

/* ndmp_data.c */
void data_init(struct data_svc *d);
uint32_t data_get_state(struct session *s, struct xdr_in *x,
                        struct xdr_out *out);
uint32_t data_listen(struct session *s, struct xdr_in *x,
                     struct xdr_out *out);
uint32_t data_connect(struct session *s, struct xdr_in *x,
                      struct xdr_out *out);
uint32_t data_start_backup(struct session *s, struct xdr_in *x,
                           struct xdr_out *out);
uint32_t data_start_recover_filehist(struct session *s, struct xdr_in *x,
                                     struct xdr_out *out);
uint32_t data_start_recover(struct session *s, struct xdr_in *x,
                            struct xdr_out *out);
uint32_t data_abort(struct session *s, struct xdr_in *x,
                    struct xdr_out *out);
uint32_t data_stop(struct session *s, struct xdr_in *x, struct xdr_out *out);
uint32_t data_get_env(struct session *s, struct xdr_in *x,
                      struct xdr_out *out);
/* The poll loop: descriptors to watch, and what they said. */
int data_poll_fds(struct session *s, struct pollfd *p, int n);
void data_poll_done(struct session *s, const struct pollfd *p, int n);
/* DATA_LISTEN of type LOCAL, and the mover's MOVER_CONNECT to it. */
bool data_local_listening(const struct session *s);
void data_local_accept(struct session *s, int fd);
/* The session ends: stop a running operation and clean up after it. */
void data_shutdown(struct session *s);

/* ndmp_restart.c */
void restart_map_add(struct restart_map *m, uint32_t ino, uint64_t pos);
/* Drop the files before the last one that starts before ON_TAPE. */
void restart_map_trim(struct restart_map *m, uint64_t on_tape);
void restart_map_free(struct restart_map *m);
/* The backup's bytes on this server's tape (LOCAL mover), else 0. */
uint64_t restart_on_tape(const struct session *s);
/* A backup's dump failed with MSG as its last words: keep the context it
 * left (its restart point moved back to what the tape holds) or delete
 * it, and say which and why. */
void restart_after_stop(struct session *s, const char *msg);

/* ndmp_mover.c */
void mover_init(struct mover_svc *m, struct tape_svc *t);
uint32_t mover_get_state(struct session *s, struct xdr_in *x,
                         struct xdr_out *out);
uint32_t mover_listen(struct session *s, struct xdr_in *x,
                      struct xdr_out *out);
uint32_t mover_connect(struct session *s, struct xdr_in *x,
                       struct xdr_out *out);
uint32_t mover_set_record_size(struct session *s, struct xdr_in *x,
                               struct xdr_out *out);
uint32_t mover_set_window(struct session *s, struct xdr_in *x,
                          struct xdr_out *out);
uint32_t mover_read(struct session *s, struct xdr_in *x,
                    struct xdr_out *out);
uint32_t mover_continue(struct session *s, struct xdr_in *x,
                        struct xdr_out *out);
uint32_t mover_abort(struct session *s, struct xdr_in *x,
                     struct xdr_out *out);
uint32_t mover_stop(struct session *s, struct xdr_in *x,
                    struct xdr_out *out);
uint32_t mover_close(struct session *s, struct xdr_in *x,
                     struct xdr_out *out);
/* DATA_CONNECT of type LOCAL: the data end of a socketpair whose other
 * end the listening mover takes; -errno. */
int mover_local_connect(struct session *s);
bool mover_local_listening(const struct session *s);
/* A LOCAL backup's data end has closed: write what is left in the
 * connection, sync the tape and halt (NOTIFY_MOVER_HALTED) now; a mover
 * paused for the DMA stays paused. */
void mover_finish_local(struct session *s);
/* ndmp_tape.c (TAPE, and the record layer the mover uses) */
/* Write one record at the head (what followed is erased): 0, -ENOSPC,
 * -errno. */
int tape_write_record(struct tape_svc *t, const void *buf, size_t len);
/* The data offset where the tape file under the head ends. */
uint64_t tape_file_end(const struct tape_svc *t);
/* Up to N bytes of the tape's data at offset AT (a file tape: anywhere;
 * a drive: at or after its head): the count, 0 at a filemark or the end,
 * or -errno. */
ssize_t tape_read_at(struct tape_svc *t, void *buf, size_t n, uint64_t at);
/* What was written is on the medium: 0 or -errno. */
int tape_sync(struct tape_svc *t);
/* ndmp_tapedev.c: the same on a Linux tape drive */
uint32_t tapedev_open(struct tape_svc *t, const char *path, int mode);
uint32_t tapedev_mtio(struct tape_svc *t, uint32_t op, uint32_t count,
                      uint32_t *resid);
void tapedev_state(const struct tape_svc *t, uint32_t *file_num,
                   uint32_t *blockno, bool *write_protected);
uint32_t tapedev_read(struct tape_svc *t, uint8_t *buf, uint32_t count,
                      size_t *got);
int tapedev_write(struct tape_svc *t, const void *buf, size_t len);
ssize_t tapedev_read_at(struct tape_svc *t, uint8_t *buf, size_t want,
                        uint64_t at);
void tape_release(struct tape_svc *t);
uint32_t tape_open(struct session *s, struct xdr_in *x, struct xdr_out *out);
uint32_t tape_close(struct session *s, struct xdr_in *x,
                    struct xdr_out *out);
uint32_t tape_get_state(struct session *s, struct xdr_in *x,
                        struct xdr_out *out);
uint32_t tape_mtio(struct session *s, struct xdr_in *x, struct xdr_out *out);
uint32_t tape_write(struct session *s, struct xdr_in *x,
                    struct xdr_out *out);
uint32_t tape_read(struct session *s, struct xdr_in *x, struct xdr_out *out);
int mover_poll_fds(struct session *s, struct pollfd *p, int n);
void mover_poll_done(struct session *s, const struct pollfd *p, int n);
void mover_shutdown(struct session *s);

/* ndmp_config.c */
uint32_t config_host_info(struct session *s, struct xdr_in *x,
                          struct xdr_out *out);
uint32_t config_server_info(struct session *s, struct xdr_in *x,
                            struct xdr_out *out);
uint32_t config_connection_type(struct session *s, struct xdr_in *x,
                                struct xdr_out *out);
uint32_t config_butype_info(struct session *s, struct xdr_in *x,
                            struct xdr_out *out);
uint32_t config_fs_info(struct session *s, struct xdr_in *x,
                        struct xdr_out *out);
uint32_t config_tape_info(struct session *s, struct xdr_in *x,
                          struct xdr_out *out);
uint32_t config_scsi_info(struct session *s, struct xdr_in *x,
                          struct xdr_out *out);

#endif
