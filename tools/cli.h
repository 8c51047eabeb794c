/*
 * cli.h - helpers shared by the snapfs subcommands.
 */
#ifndef SNAPFS_CLI_H
#define SNAPFS_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

void die_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
void die(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
int parse_size(const char *s, uint64_t *out);
char *mounted_store(const char *path);
char *resolve_volume(const char *arg, bool *mounted);
const char *open_error(int rc);
/* "1.50 MiB": BYTES in binary units, into OUT. */
void format_bytes(uint64_t bytes, char *out, size_t cap);
/* Append the SIZE bytes at ITEM to the array *ITEMS of *N elements
 * (capacity *CAP, doubled as needed).  0 or -ENOMEM. */
int array_append(void *items, size_t *n, size_t *cap, const void *item,
                 size_t size);
/* S as a JSON string on stdout. */
void json_string(const char *s);
/* "--opt VALUE" or "--opt=VALUE" at ARGV[*I]: the value, advancing *I past
 * a separate one (dies if it is missing); NULL if ARGV[*I] is not OPT. */
const char *option_value(const char *cmd, const char *opt, int argc,
                         char **argv, int *i);

/* ---- volref.c: reaching a volume (a store or its mountpoint) ---- */

struct volume {
    const char *arg;  /* as the user gave it, for messages */
    char *store;      /* the store directory */
    bool mounted;     /* served by a daemon: change it through the socket */
    char *mountpoint; /* when ARG is the mountpoint */
};
/* Resolve ARG; dies with a message naming it when it is no volume. */
void volume_open(struct volume *vol, const char *cmd, const char *arg);
/* ARG is VOL or VOL/PATH (a directory inside the volume): open VOL and
 * set *PATH (malloc'd) to "/PATH" or "/"; vol->arg is then a malloc'd
 * copy of the VOL part.  Dies when no prefix of ARG is
 * a volume. */
void volume_open_path(struct volume *vol, const char *cmd, const char *arg,
                      char **path);
/* Connect to STORE/control.sock: an fd or a negative errno. */
int control_connect(const char *store);
/* A check of the store directory of every later control_connect (NULL:
 * none): it gets the directory opened (O_PATH), the socket is reached
 * through that very directory, and a negative errno refuses it. */
void control_set_check(int (*check)(int dirfd));
/* Send one request line (WORDS joined by tabs) on FD: 0 or -EPIPE. */
int control_send(int fd, char **words, int n);
/* The same, passing the NFDS (at most 4) descriptors FDS with it. */
int control_send_fds(int fd, char **words, int n, const int *fds, int nfds);
/* Read one status line ("OK", "ERR N") of a freeze session's reply,
 * waiting at most TIMEOUT_MS: 0, the daemon's negative errno, -EPIPE
 * (the daemon ended the session), -ETIMEDOUT or -EPROTO. */
int control_status(int fd, int timeout_ms);
/* syncfs of VOL's mountpoint, when VOL was given as one: the kernel's
 * writeback cache goes to the daemon. */
void volume_syncfs(struct volume *vol);
/*
 * Send one request (WORDS joined by tabs) to the daemon of a mounted
 * volume, after a syncfs of its mountpoint.  The data lines of the reply
 * go to *DATA (malloc'd, caller frees).  Returns 0 or the negative errno
 * the daemon answered.
 */
int volume_request(struct volume *vol, char **words, int n, char **data);
/* Unmounted: run FN in one write transaction of the store opened
 * exclusively; commit and sync when KEEP and FN returned 0, else abort. */
int volume_offline(struct volume *vol, const char *cmd,
                   int (*fn)(struct sfs_store *, MDB_txn *, void *),
                   void *arg, bool keep);

/* The store of VOL opened read-only, after a mounted volume's daemon
 * committed everything it holds; dies with a message ("may VERB it" when
 * permission is denied). */
struct sfs_store *volume_read_store(struct volume *vol, const char *cmd,
                                    const char *verb);
/* Hold (or release) snapshot NAME with TAG, through the daemon when one
 * serves the volume.  0 or the negative errno of sfs_snap_hold_w. */
int volume_hold(struct volume *vol, const char *cmd, const char *name,
                const char *tag, bool hold);

int cmd_info(int argc, char **argv);
int cmd_fsck(int argc, char **argv);
/* compact.c: `compact STORE [--to NEWSTORE]` */
int cmd_compact(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
/* snapshot.c: dies (naming VOL) unless NAME is a valid snapshot name that
 * VOL does not use yet; what a change's error means, for a message. */
void snapshot_check_new_name(struct volume *vol, const char *cmd,
                             const char *name);
const char *snapshot_error(int rc);
/* group.c: `snapshot create --group VOL,VOL,... NAME` */
int snapshot_create_group(const char *cmd, const char *members,
                          const char *name);
int cmd_set(int argc, char **argv);
int cmd_get(int argc, char **argv);
/* settings.c: the value of setting NAME of VOL into VALUE (CAP bytes):
 * 0, -ENOENT (no such setting) or the negative errno of the request. */
int volume_setting(struct volume *vol, const char *cmd, const char *name,
                   char *value, size_t cap);
/* share.c: `share smb|nfs PATH`, the share definitions of a mounted
 * volume for Samba and NFS-Ganesha */
int cmd_share(int argc, char **argv);
/* diff.c: `snapshot diff`; ARGV starts at "diff". */
int cmd_snapshot_diff(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_qtree(int argc, char **argv);
/* restore.c: `snapshot restore|restore-file` (ARGV as cmd_snapshot's) and
 * `clone` */
int cmd_snapshot_restore(int argc, char **argv);
int cmd_clone(int argc, char **argv);
/* A new store made under a temporary name: dies (as CMD) unless NEWSTORE
 * is free and its parent a directory; publish renames PARTIAL to
 * NEWSTORE, never over anything (-EEXIST), durably; remove takes away a
 * partial store. */
void store_dir_check_new(const char *cmd, const char *newstore);
int store_dir_publish(const char *partial, const char *newstore);
void store_dir_remove(const char *dir);
/* dump.c: `dump` (and its dates and contexts) */
int cmd_dump(int argc, char **argv);
/* send.c: `send` and `receive`, replication streams */
int cmd_send(int argc, char **argv);
int cmd_receive(int argc, char **argv);
/* tape_restore.c: `restore -t|-r|-x`, reading dumps */
int cmd_tape_restore(int argc, char **argv);
/* peer.c: `peer passphrase|create|list|delete|serve|run` */
int cmd_peer(int argc, char **argv);
/* mirror.c: `mirror ...`, relationships */
int cmd_mirror(int argc, char **argv);
/* vault_cmd.c: `vault ...`, backup to object storage */
int cmd_vault(int argc, char **argv);

#endif
