/*
 * cli.h - helpers shared by the snapfs subcommands.
 */
#ifndef SNAPFS_CLI_H
#define SNAPFS_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

void die_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
void die(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
/* FN(CMD, MESSAGE) runs once when die() is next called, after the message
 * is printed and before the exit (NULL: none): a command records why it
 * failed. */
void die_set_hook(void (*fn)(const char *cmd, const char *msg));
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
/* Remove DIR and everything under it (symlinks are not followed):
 * 0, or -errno of the first removal that failed. */
int remove_tree(const char *dir);
/* S as a JSON string on stdout, or on OUT. */
void print_json_string(const char *s);
void print_json_string_to(FILE *out, const char *s);
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
/* The mountpoints of every mounted snapfs volume, into *OUT (malloc'd
 * array of malloc'd strings); returns how many. */
size_t mounted_volumes(char ***out);
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
/* The same without the syncfs: a request that must not disturb what it
 * asks about (stats). */
int volume_ask(struct volume *vol, char **words, int n, char **data);
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
int cmd_upgrade(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
/* snapshot.c: dies (naming VOL) unless NAME is a valid snapshot name that
 * VOL does not use yet; what a change's error means, for a message. */
void snapshot_check_new_name(struct volume *vol, const char *cmd,
                             const char *name);
const char *snapshot_error(int rc);
/* group.c: `snapshot create --group VOL,VOL,... NAME`, with the hooks
 * of SPEC around it (NULL: none; see hookopt.c) */
int snapshot_create_group(const char *cmd, const char *members,
                          const char *name, const struct sfs_hookspec *spec);

/* ---- hookopt.c: hook options and the messages of hooked snapshots ---- */

struct hook_options {
    const char *pre, *post, *timeout, *on_failure; /* as given, or NULL */
};
/* Is ARGV[*I] a hook option?  Then its value is in O (and *I advanced). */
bool hook_option(const char *cmd, int argc, char **argv, int *i,
                 struct hook_options *o);
bool hook_options_given(const struct hook_options *o);
/* Check O (dies with a usage message) and set what it gives in H. */
void hook_options_apply(const char *cmd, const struct hook_options *o,
                        struct sfs_hookspec *h);
const char *hook_failure_word(uint32_t on_failure);
/* A hook log line on stderr, ARG the command's name. */
void hook_log_stderr(void *arg, const char *line);
struct hooks_run;
/* Run R's pre hook for SNAPSHOT of VOLUME (R->spec set): on return the
 * snapshot is to be taken with R->labels; an abandoned one dies after
 * running the post hook.  The post hook also runs should the command die
 * before hooks_finish. */
void hooks_start(struct hooks_run *r, const char *cmd, const char *volume,
                 const char *snapshot);
/* The snapshot was taken: run the post hook; dies (exit 1) saying the
 * snapshot exists when the post hook failed. */
void hooks_finish(struct hooks_run *r, const char *cmd);
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
/* The lines of sfs_diff_write (DATA, changed in place) on stdout as
 * `snapshot diff` prints them, or as its JSON array; their "examined"
 * line into STATS.  0, or -EPROTO for a line of another form. */
int diff_print_changes(char *data, bool json, struct sfs_diff_stats *stats);
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
/* vault_daemon.c: a mounted volume's daemon runs the updates of its vault
 * relationships when its policies take snapshots they select (installed
 * by `snapfs mount` before the daemon starts) */
void vault_daemon_install(void);
/* The updates of the vault relationships of volume UUID whose policies
 * select some of the snapshots CREATED (N), run one after the other as
 * child processes on VOLUME, their output on ours (`policy run`): how
 * many failed. */
int vault_updates_run(const char *volume, const uint8_t uuid[16],
                      char *const *created, size_t n);
/* plan.c: `plan ...`, recovery plans over mirrors */
int cmd_plan(int argc, char **argv);
/* health_cmd.c: `health`, checks for monitoring (exit 0/1/2) */
int cmd_health(int argc, char **argv);
/* config_cmd.c: `config export|import`, a volume's configuration */
int cmd_config(int argc, char **argv);
/* ndmp.c: `ndmp serve|password`, the NDMP server */
int cmd_ndmp(int argc, char **argv);
/* stats.c: `stats VOLUME [--json] [--watch [S]] [--prometheus]` */
int cmd_stats(int argc, char **argv);

#endif
