/*
 * peer.h - the native peer transport: an encrypted, authenticated byte
 * channel to another host, over which one snapfs subcommand runs there
 * with its stdin and stdout connected to us.
 *
 * Hosts share a secret made from a passphrase (`snapfs peer passphrase`
 * on the serving host, `snapfs peer create NAME HOST:PORT` on the other);
 * the connection is TLS 1.3 with that secret as an external pre-shared key
 * (theory in peer_tls.c).  Everything here returns 0 or a negative errno
 * and prints nothing; peer_strerror() gives the words for the command
 * layer.
 */
#ifndef SNAPFS_PEER_H
#define SNAPFS_PEER_H

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
    char refusal[256];
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
/*
 * Lock DIR/serve.pid and listen on LISTEN ("ADDR:PORT", NULL for
 * 0.0.0.0:11104; port 0 lets the system choose); BOUND gets the address
 * as bound.  Errors name their object in WHY: -ENOKEY (no passphrase
 * yet: WHY is the config dir), -EBADMSG (DIR/serve.key is damaged),
 * -EALREADY (a server of this config dir
 * runs: WHY is its pid), -EINVAL (a bad address), and those of bind(2).
 */
int peer_serve_open(const char *listen, struct peer_server **out,
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

/* The key `peer serve` accepts: DIR/serve.key, mode 0600.  Storing it
 * replaces an earlier one; loading gives -ENOKEY when there is none,
 * -EBADMSG when the file is damaged. */
int peer_serve_key_store(const uint8_t key[PEER_KEY_LEN]);
int peer_serve_key_load(uint8_t key[PEER_KEY_LEN]);

struct peer_record {
    char name[PEER_NAME_MAX + 1];
    char address[PEER_ADDRESS_MAX];  /* HOST:PORT */
    uint8_t key[PEER_KEY_LEN];
};
/* DIR/NAME.peer, mode 0600: -EEXIST if there is one, -EINVAL for a bad
 * name or address. */
int peer_record_store(const struct peer_record *r);
/* -ENOENT if there is none, -EINVAL if it is damaged. */
int peer_record_load(const char *name, struct peer_record *r);
int peer_record_delete(const char *name);
/* The names of every record, sorted (malloc'd array of malloc'd names). */
int peer_record_names(char ***names, size_t *n);

#endif
