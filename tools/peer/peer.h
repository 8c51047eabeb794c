/*
 * peer.h - the native peer transport: an encrypted, authenticated byte
 * channel to another host, over which one snapfs subcommand runs there
 * with its stdin and stdout connected to us, if that host grants it.
 *
 * Each peer that connects to a host shares a secret with that host alone,
 * made from a passphrase (`snapfs peer passphrase NAME` on the serving
 * host, `snapfs peer create NAME HOST:PORT` on the other); the connection
 * is TLS 1.3 with a key derived from it as an external pre-shared key
 * (theory in peer_tls.c), so the server knows which peer connects.  What
 * a peer may run there, on which volume, its grants say (peer_grants.c),
 * checked again on what the command opens (peer_guard.c).  Everything
 * here returns 0 or a negative errno and prints nothing; peer_strerror()
 * gives the words for the command layer.
 */
#ifndef SNAPFS_PEER_H
#define SNAPFS_PEER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PEER_DEFAULT_PORT "11104"
#define PEER_KEY_LEN 32
#define PEER_NAME_MAX 64
#define PEER_ADDRESS_MAX 300
/* "XXXXX-XXXXX-XXXXX-XXXXX-XXXXX-XXXXX" and its NUL */
#define PEER_PASSPHRASE_SIZE 36

/* ---- peer_client.c: running a command on a peer ---- */

struct peer_link; /* the relay thread and its connection (peer_client.c) */

struct peer_chan {
    /* The remote command's stdin and stdout: write(2) to feed its stdin,
     * shutdown(fd, SHUT_WR) to give it end-of-file, read(2) its stdout
     * (end-of-file once its stdout is closed).  After the remote command
     * exited, writes fail with EPIPE (and raise SIGPIPE unless the caller
     * ignores it or uses send(2) with MSG_NOSIGNAL).  peer_wait closes it. */
    int fd;
    /* peer_spawn's -EPERM: the server's reason for refusing. */
    char refusal[1024];
    struct peer_link *link;
};

/*
 * Connect to the peer named PEER_NAME (a record of `snapfs peer create`),
 * authenticate, and start ARGV (a NULL-terminated snapfs subcommand, e.g.
 * {"receive", "--handshake", "/srv/vol1.store", NULL}) there.  On success
 * OUT->fd is connected to it.  Errors, each with nothing left behind:
 *   -ENOENT      no peer of that name
 *   -EINVAL      the peer's record is damaged, or ARGV is empty or too long
 *   -ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH, -ETIMEDOUT
 *                the peer cannot be reached (or does not answer in time)
 *   -EACCES      authentication failed: the TLS handshake with the shared
 *                key did not complete (another passphrase, or no snapfs
 *                peer server)
 *   -EPERM       the server refused the command (OUT->refusal says why)
 *   -ECONNRESET  the connection broke during the setup
 *   -EPROTO      the server answered something that is not the protocol
 */
int peer_spawn(const char *peer_name, char *const argv[], struct peer_chan *out);

/*
 * Close C->fd (unread output is discarded; read it to end-of-file first
 * if it matters), wait until the remote command has exited, and give
 * its exit status (128 + N when a signal N ended it) and what it wrote
 * on stderr (NUL-terminated, cut to ERRCAP - 1 bytes).  0, or
 * -ECONNRESET when the connection broke before the status arrived, or
 * -EPROTO; then *EXIT_STATUS is 255 and ERRBUF is empty.
 */
int peer_wait(struct peer_chan *c, int *exit_status, char *errbuf,
              size_t errcap);

/* Words for the errors of this header ("authentication failed ..."). */
const char *peer_strerror(int rc);

/* ---- peer_serve.c: the server ---- */

struct peer_server;
struct peer_serve_opts {
    const char *listen; /* "ADDR:PORT", NULL for 0.0.0.0:11104; port 0
                           lets the system choose */
    int per_peer;       /* connections of one peer at once */
    int idle_seconds;   /* a connection idle this long is closed */
};
#define PEER_PER_PEER_DEFAULT 4
#define PEER_IDLE_DEFAULT 600
/*
 * Lock DIR/serve.pid and listen on O->listen; BOUND gets the address as
 * bound.  Errors name their object in WHY: -ENOKEY (no peer may connect
 * yet: WHY is the config dir), -EALREADY (a server of this config dir
 * runs: WHY is its pid), -EINVAL (a bad address), and those of bind(2).
 */
int peer_serve_open(const struct peer_serve_opts *o, struct peer_server **out,
                    char *bound, size_t boundcap, char *why, size_t whycap);
/* Detach: in the caller the daemon's pid (written to the pidfile), in
 * the daemon 0 (stdio on /dev/null, stderr appended to DIR/serve.log),
 * or -errno. */
pid_t peer_serve_daemonize(struct peer_server *s);
/* Serve until SIGTERM or SIGINT, logging on stderr; then 0. */
int peer_serve_run(struct peer_server *s);
void peer_serve_close(struct peer_server *s);

/* ---- peer_conf.c: the config dir, passphrases and peer records ---- */

/* $SNAPFS_CONFIG_DIR, default /var/lib/snapfs/peers */
const char *peer_config_dir(void);
/* DIR/LEAF into OUT: 0 or -ENAMETOOLONG */
int peer_config_path(char *out, size_t cap, const char *leaf);
/* Make the config dir (mode 0700, parents 0755) if missing. */
int peer_config_make(void);
/* Replace DIR/LEAF with TEXT: a 0600 temporary file, synced, renamed. */
int peer_config_replace(const char *leaf, const char *text);
/* NAME: 1 to PEER_NAME_MAX of [A-Za-z0-9._-], not starting with '.' */
bool peer_name_valid(const char *name);
/* "HOST:PORT", "[V6ADDR]:PORT" or "HOST" (default port): split into HOST
 * and PORT; -EINVAL if malformed. */
int peer_address_split(const char *addr, char *host, size_t hostcap,
                       char *port, size_t portcap);

/* A fresh passphrase: 30 characters of Crockford's base32 (150 bits from
 * the OpenSSL random generator) in 6 groups of 5, into OUT. */
int peer_passphrase_generate(char out[PEER_PASSPHRASE_SIZE]);
/* The shared key of PASS (case, dashes and spaces do not matter; O reads
 * as 0, I and L as 1).  -EINVAL if PASS has not the shape of one. */
int peer_passphrase_key(const char *pass, uint8_t key[PEER_KEY_LEN]);

/* The peers that may connect to this host's server, each with a key of
 * its own: DIR/clients/NAME.key (0600).  PEER_LEGACY_NAME is the one
 * host key of earlier versions (DIR/serve.key), which every peer created
 * with that host's passphrase holds. */
#define PEER_LEGACY_NAME "legacy"
struct peer_key {
    char name[PEER_NAME_MAX + 1];
    uint8_t key[PEER_KEY_LEN];
    bool legacy;
};
/* Store NAME's key, replacing an earlier one (-EINVAL: a bad name, or
 * PEER_LEGACY_NAME, which is never made anew). */
int peer_inbound_store(const char *name, const uint8_t key[PEER_KEY_LEN]);
/* -ENOENT if there is none, -EBADMSG if the file is damaged. */
int peer_inbound_load(const char *name, uint8_t key[PEER_KEY_LEN]);
int peer_inbound_delete(const char *name);
bool peer_inbound_exists(const char *name);
/* Every such name, sorted (malloc'd array of malloc'd names). */
int peer_inbound_names(char ***names, size_t *n);
/* Every key that loads (a damaged file lets no one in), in secure
 * memory: free with peer_inbound_keys_free. */
int peer_inbound_keys(struct peer_key **keys, size_t *n);
void peer_inbound_keys_free(struct peer_key *keys, size_t n);

/* A peer this host connects to. */
struct peer_record {
    char name[PEER_NAME_MAX + 1];
    char address[PEER_ADDRESS_MAX];  /* HOST:PORT */
    uint8_t key[PEER_KEY_LEN];
    bool legacy; /* made before peers had keys of their own: shows the
                    one identity of earlier versions */
};
/* DIR/NAME.peer, mode 0600: -EEXIST if there is one, -EINVAL for a bad
 * name or address. */
int peer_record_store(const struct peer_record *r);
/* -ENOENT if there is none, -EINVAL if it is damaged. */
int peer_record_load(const char *name, struct peer_record *r);
int peer_record_delete(const char *name);
/* The names of every record, sorted (malloc'd array of malloc'd names). */
int peer_record_names(char ***names, size_t *n);

/* ---- peer_guard.c: the volume a command run for a peer may reach ---- */

struct sfs_store;
/* A volume as opened: its UUID, and the device and inode of its data
 * file (STORE/data.mdb). */
struct peer_volume_id {
    uint8_t uuid[16];
    dev_t dev;
    ino_t ino;
};
/* The environment variable in which `peer serve` gives a command the
 * identity of the one volume it may reach. */
#define PEER_GUARD_ENV "SNAPFS_PEER_VOLUME"
int peer_volume_id_of(const struct sfs_store *st, struct peer_volume_id *id);
/* Open STORE read-only and give what was opened: errors of sfs_open. */
int peer_volume_id_at(const char *store, struct peer_volume_id *id);
bool peer_volume_id_equal(const struct peer_volume_id *a,
                          const struct peer_volume_id *b);
/* "UUID:DEV:INO" and back (-EINVAL if TEXT is not one). */
void peer_volume_id_format(const struct peer_volume_id *id, char *out,
                           size_t cap);
int peer_volume_id_parse(const char *text, struct peer_volume_id *id);
/* At the start of every snapfs command: with PEER_GUARD_ENV set, every
 * store the process opens and every control socket it reaches must be
 * that volume, else the open fails with -EPERM.  False when the value
 * does not parse (then nothing can be reached). */
bool peer_guard_install(void);

/* ---- peer_grants.c: what each peer may do here ---- */

enum peer_op {
    PEER_OP_SEND = 1,    /* send from the volume */
    PEER_OP_RECEIVE = 2, /* receive into it */
    PEER_OP_LOOK = 3,    /* info, snapshot list: either grant */
};
/* "send", "receive", "send or receive" */
const char *peer_op_name(enum peer_op op);
/* "send" or "receive": 0, else -EINVAL */
int peer_op_parse(const char *word, enum peer_op *op);

struct peer_grant {
    char peer[PEER_NAME_MAX + 1];
    enum peer_op op;        /* PEER_OP_SEND or PEER_OP_RECEIVE */
    uint8_t uuid[16];       /* the store's */
    char path[PATH_MAX];    /* the store directory, resolved */
};
struct peer_grants {
    struct peer_grant *g;
    size_t n, cap;
    int bad_line; /* -EBADMSG of peer_grants_load: the damaged line */
};
/* DIR/grants (none if missing): 0, -EBADMSG (T->bad_line), -errno. */
int peer_grants_load(struct peer_grants *t);
void peer_grants_free(struct peer_grants *t);
/* How many grants PEER has. */
size_t peer_grants_count(const struct peer_grants *t, const char *peer);
/* VOLUME (a store, or the mountpoint of one) as a grant would name it:
 * G's path and uuid.  Errors of sfs_open, -EINVAL (a path a grant cannot
 * hold), -ENAMETOOLONG. */
int peer_grant_resolve(const char *volume, struct peer_grant *g);
/* Add the grants G[0..N) that the table does not hold yet (*ADDED of
 * them), under the table's lock: all or none. */
int peer_grants_add(const struct peer_grant *g, size_t n, size_t *added);
/* Remove every grant that one of PATTERNS[0..N) names: its peer, an op
 * among pattern.op's, and (unless pattern.path is empty: any volume) its
 * path or its uuid.  -ENOENT, with nothing removed, if pattern
 * *UNMATCHED names no grant. */
int peer_grants_remove(const struct peer_grant *patterns, size_t n,
                       size_t *removed, size_t *unmatched);

/* A request of a peer: the grant it needs and the word naming the
 * volume (in the request's argv). */
struct peer_request {
    enum peer_op need;
    const char *volume;
};
/* Which command ARGV is: 0, -EPERM (none a peer may run) or -EINVAL
 * (its words are not that command's), with the reason in WHY. */
int peer_request_parse(char *const argv[], struct peer_request *req,
                       char *why, size_t cap);
/* May PEER run REQ?  0 with *ID the volume it may then reach; -ENOENT
 * (PEER has no grant at all), -EACCES (none of its grants names the
 * volume REQ's path resolves to for that operation), or an error reading
 * the grants; WHY says what was found, for the server's log. */
int peer_request_allowed(const char *peer, const struct peer_request *req,
                         struct peer_volume_id *id, char *why, size_t cap);

#endif
