/*
 * relation.h - named object stores, vault policies and vault
 * relationships (as ONTAP's Cloud Object Stores, its DailyBackup policy
 * and SnapMirror Cloud relationships): their records on this host
 * (conf.c) and what an update chooses to back up and to forget
 * (relation.c).  Nothing here prints; errors are negative errno values.
 *
 * The records live in the vault's config dir, $SNAPFS_CONFIG_DIR/vault or
 * /var/lib/snapfs/vault (mode 0700, as the peers' config):
 *
 *   stores/NAME.store     target, endpoint, region, AWS profile name
 *   stores/NAME.pass      the vault's passphrase, for unattended updates
 *                         (0600; never printed; S3 keys are never kept:
 *                         they stay in the environment or the profile)
 *   policies/NAME.policy  rule=LABEL:KEEP lines (DailyBackup is built in)
 *   relationships/UUID.STORE.rel    source volume, store, policy
 *   relationships/UUID.STORE.state  what the last update left
 *   relationships/UUID.STORE.lock   flock(2)ed by the update running
 */
#ifndef SNAPFS_VAULT_RELATION_H
#define SNAPFS_VAULT_RELATION_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "vault.h"

#define VAULT_CONF_NAME_MAX 64
#define VAULT_DAILY_BACKUP "DailyBackup"

/* ---- stores ---- */

struct vault_store_conf {
    char name[VAULT_CONF_NAME_MAX + 1];
    char target[1024];
    char endpoint[512];
    char region[64];
    char profile[128];
    int64_t created;
};

/* The config dir (not created). */
const char *vault_conf_dir(void);
/* 1-64 bytes of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool vault_conf_name_valid(const char *name);
/* Record S and its passphrase PASS (PLEN bytes): -EEXIST if NAME is
 * taken (nothing written). */
int vault_store_add(const struct vault_store_conf *s, const char *pass,
                    size_t plen);
/* -ENOENT: no store NAME. */
int vault_store_load(const char *name, struct vault_store_conf *s);
/* The path of store NAME's passphrase file. */
int vault_store_pass_path(const char *name, char *out, size_t cap);
int vault_store_remove(const char *name);
/* Every store's name, sorted (*NAMES malloc'd, each name too). */
int vault_store_names(char ***names, size_t *n);
void vault_conf_names_free(char **names, size_t n);
/* The options that reach S's object store (pointing into S). */
struct objstore_opts vault_store_opts(const struct vault_store_conf *s);

/* ---- policies ---- */

struct vault_rel_policy {
    char name[VAULT_CONF_NAME_MAX + 1];
    bool builtin;
    struct vault_keep_policy keep;  /* label rules only */
};
/* DailyBackup (built in: label daily, keep 7) or a custom one: -ENOENT. */
int vault_rel_policy_load(const char *name, struct vault_rel_policy *p);
/* -EEXIST (taken, or DailyBackup's name). */
int vault_rel_policy_create(const struct vault_rel_policy *p);
/* -ENOENT, -EPERM (DailyBackup). */
int vault_rel_policy_delete(const char *name);
/* Custom policies' names, sorted. */
int vault_rel_policy_names(char ***names, size_t *n);
/* "daily=7,weekly=52" into OUT. */
void vault_rel_policy_rules(const struct vault_rel_policy *p, char *out,
                            size_t cap);

/* ---- relationships ---- */

struct vault_relationship {
    uint8_t volume[16];         /* the source volume's UUID */
    char path[PATH_MAX];        /* its store directory when protected */
    char store[VAULT_CONF_NAME_MAX + 1];
    char policy[VAULT_CONF_NAME_MAX + 1];
    int64_t created;
};

struct vault_rel_state {
    char state[16];             /* "" (never updated), idle, failed */
    char last_snapshot[SFS_NAME_MAX + 1]; /* the newest vaulted */
    int64_t last_ctime;         /* its creation time at the source */
    uint64_t last_epoch;
    uint64_t last_logical;      /* its logical bytes */
    int64_t last_update;        /* when the last update ended */
    uint64_t last_bytes;        /* bytes it uploaded */
    uint64_t total_bytes;       /* bytes every update uploaded */
    uint64_t updates;
    char error[512];            /* why the last update failed */
};

/* -EEXIST: the volume is protected in that store already. */
int vault_rel_create(const struct vault_relationship *r);
/* -ENOENT. */
int vault_rel_load(const uint8_t volume[16], const char *store,
                   struct vault_relationship *r);
/* The relationship's three files. */
int vault_rel_delete(const struct vault_relationship *r);
/* Every relationship, by path then store (*OUT malloc'd). */
int vault_rel_all(struct vault_relationship **out, size_t *n);
/* A missing state reads as zeros. */
int vault_rel_state_load(const struct vault_relationship *r,
                         struct vault_rel_state *s);
int vault_rel_state_store(const struct vault_relationship *r,
                          const struct vault_rel_state *s);
/* Take the relationship's update lock: an fd to close to release it, or
 * -EBUSY (an update runs: *PID is it, 0 if unknown). */
int vault_rel_lock(const struct vault_relationship *r, int *pid);
/* An update of R runs now: its pid, else 0. */
int vault_rel_running(const struct vault_relationship *r);

/* ---- relation.c: what an update does ---- */

/* The label of a snapshot name: its part before the first dot. */
bool vault_rel_selects(const struct vault_rel_policy *p, const char *name);

/* A source snapshot an update may back up. */
struct vault_rel_source {
    char name[SFS_NAME_MAX + 1];
    uint64_t epoch;
    int64_t ctime_sec;
    uint32_t ctime_nsec;
};
/*
 * vault_rel_to_back_up - which of the source's snapshots SRC (N of them,
 * any order) the update backs up: those P selects, newer (by epoch) than
 * every snapshot of VOLUME with one of P's labels the vault holds (VS,
 * NV: so that what retention forgot is not sent again; a manual backup
 * does not count), and among those only the newest KEEP of each
 * label (older ones retention would forget at once).  PICK[i] is set for
 * each chosen; returns how many, or -ENOMEM.
 */
int vault_rel_to_back_up(const struct vault_rel_policy *p,
                         const uint8_t volume[16],
                         const struct vault_rel_source *src, size_t n,
                         const struct vault_snapshot *vs, size_t nv,
                         bool *pick);
/*
 * vault_rel_to_forget - the policy's retention in the vault: among the
 * snapshots of VOLUME in VS that carry a label of P's rules, the newest
 * KEEP of each label stay (a snapshot kept by any of its labels stays);
 * FORGET[i] is set for the others.  Snapshots of other volumes, and of
 * VOLUME without such a label (a manual backup), are never chosen.
 * Returns how many, or -ENOMEM.
 */
int vault_rel_to_forget(const struct vault_rel_policy *p,
                        const uint8_t volume[16],
                        const struct vault_snapshot *vs, size_t nv,
                        bool *forget);

#endif
