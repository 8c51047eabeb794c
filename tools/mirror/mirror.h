/*
 * mirror.h - what the `snapfs mirror` files share: the relationship
 * registry (mirror_conf.c) and the connection to a destination's
 * `snapfs receive --handshake` (mirror_conn.c).
 */
#ifndef SNAPFS_MIRROR_H
#define SNAPFS_MIRROR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "peer/peer.h"
#include "store.h"

#define MIRROR_DIR_DEFAULT "/var/lib/snapfs/mirrors"
#define MIRROR_ID_LEN 16

/* A relationship as `mirror create` made it: DIR/ID.mirror. */
struct mirror_rel {
    char id[MIRROR_ID_LEN + 1]; /* hex of SHA-256(dst), cut */
    char src[PATH_MAX];         /* the source volume's store directory */
    char dst[PATH_MAX];         /* a store directory, PEER:PATH, or a label
                                   when via is set */
    char via[1024];             /* a command running `receive --handshake` */
    char policy[16];            /* mirror, vault, mirror-vault */
    char keep[512];             /* LABEL=N,... (vault retention) */
    char schedule[64];          /* "" or a schedule (store/policy.c) */
    bool quiesced;
    char group[64];             /* "" or the consistency group it is a
                                   member of (mirror_group.c) */
    bool with_config;           /* the source's configuration travels
                                   with each transfer (mirror_config.c) */
};

/* What its transfers left: DIR/ID.state, written by the lock holder. */
struct mirror_state {
    int64_t last_start, last_end;   /* of the last transfer that ended */
    int64_t last_sched;             /* the scheduled time last run for */
    double last_seconds;
    uint64_t last_bytes;            /* stream bytes it sent */
    uint64_t total_bytes, resent_bytes, transfers;
    char newest[SFS_NAME_MAX + 1];  /* at the destination */
    int64_t newest_ctime;
    char held[SFS_NAME_MAX + 1];    /* held at the source as mirror:ID */
    uint64_t attempt_to;            /* a cut stream: its snapshot's epoch */
    uint64_t attempt_bytes;         /* and how far it was sent */
    char last_error[512];
    bool to_publish;                /* group member: every member has
                                       `newest`; publish it */
};

/* The registry directory ($SNAPFS_MIRROR_DIR or MIRROR_DIR_DEFAULT),
 * made 0700 if missing.  0 or a negative errno. */
int mirror_dir(char *out, size_t cap);
/* Its name only (nothing made): 0 or -ENAMETOOLONG. */
int mirror_dir_name(char *out, size_t cap);
/* The id of the relationship to DST. */
void mirror_id(const char *dst, char id[MIRROR_ID_LEN + 1]);
/* Whose snapmirror snapshots M's are: M's id, or its group's (the id of
 * "group:NAME"), as in snapmirror.OWNER.TIME.N. */
void mirror_snap_owner(const struct mirror_rel *m,
                       char owner[MIRROR_ID_LEN + 1]);
/* Load (-ENOENT: none), store (replaced whole, durably), delete. */
int mirror_rel_load(const char *id, struct mirror_rel *m);
int mirror_rel_store(const struct mirror_rel *m);
int mirror_rel_delete(const char *id);
/* A missing state file loads as zeros. */
int mirror_state_load(const char *id, struct mirror_state *s);
int mirror_state_store(const char *id, const struct mirror_state *s);
/* The ids of every relationship (malloc'd array of malloc'd strings). */
int mirror_rel_ids(char ***ids, size_t *n);
/* Take the transfer lock of ID: an fd to close when done, -EWOULDBLOCK
 * if a transfer holds it, or a negative errno. */
int mirror_lock(const char *id);
/* 1 if a transfer holds the lock of ID, 0 if not. */
int mirror_transferring(const char *id);

/* ---- mirror_xfer.c: one transfer ---- */

enum xfer_kind { XFER_INIT, XFER_UPDATE, XFER_RESYNC, XFER_REVERSE };
/* A reverse resync: M's destination is the old source OLD_SOURCE (its
 * uuid), whose own snapshot at EPOCH is the one M's source holds at BASE. */
struct mirror_adopt {
    uint8_t old_source[16];
    uint64_t epoch, base;
};
/*
 * Run a transfer of M (the caller holds its lock): a baseline, an update,
 * a resync (the destination goes back to its newest received snapshot,
 * after saying what that discards and asking unless YES), or a reverse
 * resync (ADOPT).  Prints what it did; dies with one message (also kept
 * in M's state) on failure.
 */
struct xfer_opts {
    bool yes;                         /* discard without asking */
    const struct mirror_adopt *adopt; /* reverse resync */
    const char *group_snap;           /* group member: send up to this
                                         snapshot (taken by the group),
                                         held back at the destination */
};
int mirror_transfer(struct mirror_rel *m, enum xfer_kind kind,
                    const struct xfer_opts *o);
/*
 * Take a snapshot named snapmirror.OWNER.TIME.N (see mirror_xfer.c: new
 * at the sources and their destinations whatever the clock) by running
 * ARGV, `snapshot create ...` with the name at ARGV[AT] (set here), N
 * from SEQ, the sources' next snapshot id (mirror_source_seq).  0, or
 * the failure with ERR: the command's message, or "every name is taken".
 * NAME is the name tried last.
 */
int mirror_take_snapshot(char **argv, size_t at, const char *owner,
                         uint64_t seq, char *name, size_t cap, char *err,
                         size_t errcap);
/* The next snapshot id of volume SRC (dies if it cannot be read). */
uint64_t mirror_source_seq(const char *src);
/* Group member M: publish its snapshots held back at the destination,
 * then move the base at the source to NEWEST (as a transfer would). */
void mirror_publish(struct mirror_rel *m, const char *newest);
/* A relationship ends: release its hold at the source and delete the
 * snapshots it took there (snapmirror.ID.*). */
void mirror_release_source(struct mirror_rel *m);
/* SFS_KEEP_* of a policy name, 0 if it is none. */
int mirror_policy_kind(const char *policy);
/* "LABEL=N,..." into RET's rules: 0, or -EINVAL with WHY. */
int mirror_parse_keep(const char *text, struct sfs_retention *ret,
                      char *why, size_t cap);

/* ---- mirror_config.c: the configuration carried with the data ---- */

/* After a transfer of M (with_config): the source's configuration as it
 * is now, kept as DIR/ID.config for the destination's activation.  0, or
 * a negative errno with the reason in ERR. */
int mirror_config_carry(const struct mirror_rel *m, char *err, size_t cap);
/* Activating M's destination (break, test failover): the carried
 * configuration made true on TARGET (the destination, or its clone) by
 * `config import DIR/ID.config TARGET --apply`.  0 when M carries none;
 * else that command's status, its last words in ERR. */
int mirror_config_activate(const struct mirror_rel *m, const char *target,
                           char *err, size_t cap);
/* Where M's carried configuration is kept. */
int mirror_config_path(const struct mirror_rel *m, char *out, size_t cap);
/* The receiving end (`receive --config`) of destination STORE, which
 * follows volume SRC_UUID: the document on FD checked (one volume's
 * configuration, of that volume, no host records, secrets or hooks) and
 * kept for STORE's activation.  0, or a negative errno (-EPERM: refused)
 * with why in ERR; nothing kept then. */
int mirror_config_receive(const char *store, const uint8_t src_uuid[16],
                          int fd, char *err, size_t cap);
/* Activating the destination DST (its store directory; ID its
 * mirror_id) where no relationship of this host names it: the
 * configuration carried to it applied onto TARGET (DST or its clone) if
 * it is the configuration of the volume DST follows.  1 when none was
 * carried; 2 when the one there is of another volume (left from an
 * earlier relationship: not applied, why in ERR); else as
 * mirror_config_activate. */
int mirror_config_activate_carried(const char *id, const char *dst,
                                   const char *target, char *err,
                                   size_t cap);

/* ---- mirror_rel.c ---- */

/* Fill M's source, destination and id from SRC and DST as `mirror
 * create` does; dies (one message) if they are not volumes, the same, or
 * DST has a relationship already. */
void mirror_rel_check(struct mirror_rel *m, const char *src, const char *dst);
/* mirror_rel.c: a local destination's store directory (VIA: ARG as it
 * is, a path on the far end), or ARG as it is when it is not local. */
void mirror_canonical_dst(const char *arg, bool via, char *out, size_t cap);
/* mirror_rel.c: set M's destination from ARG (with M's via): a local
 * volume that is not M's source, or a peer granting this host receive
 * into it; dies (one message) otherwise. */
void mirror_check_destination(struct mirror_rel *m, const char *arg);

/* ---- mirror_group.c: consistency group relationships ---- */

/* The members of GROUP, sorted by destination (malloc'd). */
int mirror_group_members(const char *group, struct mirror_rel **out,
                         size_t *n);
/* Create: SRCS and DSTS are comma lists, paired in order. */
int mirror_group_create(const char *group, const char *srcs,
                        const char *dsts, const struct mirror_rel *proto);
/* Run a transfer of every member of M's group (see mirror_group.c). */
int mirror_group_transfer(const struct mirror_rel *m, enum xfer_kind kind,
                          bool yes);

/* ---- mirror_conn.c: the destination end ---- */

enum dst_kind { DST_LOCAL, DST_PEER, DST_VIA };

/* How M's destination is reached; PEER and PATH (PATH_MAX) for DST_PEER. */
enum dst_kind mirror_dst_kind(const struct mirror_rel *m, char *peer,
                              char *path);

/* `snapfs receive --handshake EXTRA... DST` running where M's destination
 * is: locally, on a peer, or through M's via command (EXTRA appended). */
struct dst_conn {
    enum dst_kind kind;
    pid_t pid;            /* local and via: the child */
    int in_fd;            /* its stdin: the streams */
    int out_fd;           /* its stdout: the hello and "ok" lines */
    int err_fd;           /* local and via: its stderr */
    struct peer_chan chan;
    char buf[4096];
    size_t len;
};
/* Start it; 0, or a negative errno with a message in ERR. */
int dst_open(const struct mirror_rel *m, const char *const extra[],
             struct dst_conn *c, char *err, size_t cap);
/* Start it, read its hello line into LINE and let it end: 0, or a
 * negative errno with the reason in ERR (a peer's refusal among them). */
int dst_hello(const struct mirror_rel *m, char *line, size_t cap, char *err,
              size_t errcap);
/* Read one line of its stdout (without the newline): 0, -EPIPE at its
 * end, or a negative errno. */
int dst_read_line(struct dst_conn *c, char *line, size_t cap);
/* No more streams: end its stdin. */
void dst_end_input(struct dst_conn *c);
/* Wait for it: its exit status (255 if unknown) and the last line it
 * wrote on stderr into ERR. */
int dst_close(struct dst_conn *c, char *err, size_t cap);

/* `send DST SNAP | receive TARGET`, FROM's destination (a local volume
 * or PEER:PATH) sending into the local store TARGET: 0, or a negative
 * errno with the failing side's last words in ERR. */
int pipe_stream(const struct mirror_rel *from, const char *snap,
                const char *target, char *err, size_t cap);

/* Run this binary's subcommand ARGV (NULL-terminated) and wait: its exit
 * status; its stderr's last line into ERR (may be NULL). */
int run_self(char *const argv[], char *err, size_t cap);

#endif
