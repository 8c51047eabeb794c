/*
 * vault_cmd.h - what the vault's command files share: vault_cmd.c (init,
 * keys, backup, restore, list, show, check, forget, prune) and
 * vault_ops.c (stores, policies, relationships, update, diff).
 */
#ifndef SNAPFS_VAULT_CMD_H
#define SNAPFS_VAULT_CMD_H

#include <limits.h>
#include <stdbool.h>

#include "cli.h"
#include "vault/relation.h"
#include "vault/vault.h"

/* Where a vault is: TARGET as given (a URL), or a store named by `vault
 * store add` (its target, endpoint, region, profile and passphrase
 * file); options given on the command line override the store's. */
struct vault_where {
    const char *target;
    struct objstore_opts so;
    const char *pass_file;           /* NULL: the environment or a prompt */
    const char *store;               /* the store's name, or NULL */
    struct vault_store_conf conf;    /* the store's record */
    char pass_path[PATH_MAX];
};
/* Dies with one message when ARG is neither a URL nor a store's name. */
void vault_where_resolve(const char *cmd, const char *arg,
                         const char *endpoint, const char *region,
                         const char *pass_file, struct vault_where *w);

/* A passphrase: FILE's first line, else SNAPFS_VAULT_PASSPHRASE, else a
 * prompt (twice when CONFIRM); never empty (dies).  Into BUF
 * (VAULT_PASS_MAX bytes); its length. */
#define VAULT_PASS_MAX 1024
size_t vault_cmd_passphrase(const char *cmd, const char *file, bool confirm,
                            char *buf);
/* The same for any secret: FILE, else the environment variable ENV, else
 * PROMPT on the terminal (twice when CONFIRM).  Never empty (dies). */
size_t vault_cmd_secret(const char *cmd, const char *file, const char *env,
                        const char *prompt, bool confirm, char *buf);

#define NO_LOCK 0
#define WRITE_LOCK 1
#define READ_LOCK (-1)
/* Open the vault at W with its passphrase and take LOCK (dies with one
 * message); the lock goes however the command ends. */
struct vault *vault_cmd_open(const char *cmd, const struct vault_where *w,
                             int lock, const char *what);
void vault_cmd_close(struct vault *v);
void vault_cmd_die(const char *cmd, struct vault *v, int rc)
    __attribute__((noreturn));

/* The source volume ARG opened (VOL static in the caller: a check that
 * dies reaches it), its store read-only; the holds of killed backups
 * released. */
struct sfs_store *vault_cmd_source(const char *cmd, struct volume *vol,
                                   const char *arg);

/* Back one snapshot up: held (tag vault:PID) while read, SIGINT and
 * SIGTERM stop it, progress on a terminal (or forced). */
struct vault_cmd_backup {
    const char *cmd;
    struct volume *vol;
    struct sfs_store *st;
    const char *const *labels;
    uint32_t nlabels;
    uint32_t pack_size;
    bool progress;                   /* --progress: even off a terminal */
    const char *what;                /* the progress line's word; NULL:
                                        "backup" */
};
int vault_cmd_backup_one(const struct vault_cmd_backup *b, struct vault *v,
                         const char *name, struct vault_backup_result *r,
                         double *secs);
/* What a backup did, on stdout. */
void vault_cmd_print_backup(const char *target, const char *volarg,
                            const struct vault_backup_result *r, double secs);
/* The message of a backup's error, or NULL (then vault_why). */
const char *vault_cmd_backup_error(int rc);

/* A vault id's first 8 digits; a time as local "YYYY-MM-DD HH:MM:SS". */
void short_vault_id(const uint8_t id[VC_ID], char out[9]);
void vault_local_time(int64_t sec, char *out, size_t cap);

/* vault_ops.c */
int cmd_vault_store(int argc, char **argv);
int cmd_vault_policy(int argc, char **argv);
int cmd_vault_protect(int argc, char **argv);
int cmd_vault_relationship(int argc, char **argv);
int cmd_vault_update(int argc, char **argv);
int cmd_vault_diff(int argc, char **argv);

#endif
