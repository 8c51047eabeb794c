/*
 * config.h - the configuration `snapfs config export` writes and `config
 * import` reads, as one versioned JSON document: volumes (config.c:
 * settings, snapshot policies with their hooks, qtrees) and this host's
 * records (config_host.c: mirror relationships and groups, peers, vault
 * stores, policies and relationships, NDMP users), with the secrets among
 * them only when asked, sealed under a passphrase (config_secret.c).
 */
#ifndef SNAPFS_CONFIG_H
#define SNAPFS_CONFIG_H

#include <limits.h>
#include <stdio.h>

#include <jansson.h>

#include "mirror/mirror.h"
#include "ndmp/ndmp.h"
#include "peer/peer.h"
#include "store.h"
#include "vault/relation.h"

#define CONFIG_VERSION 2 /* the "snapfs_config" member: this format */
#define CONFIG_PASS_MAX 1024

struct cfg_setting {
    char name[SFS_SETTING_VALUE_MAX + 1];
    char value[SFS_SETTING_VALUE_MAX + 1];
};

struct cfg_qtree {
    char name[SFS_NAME_MAX + 1];
    uint32_t style;
    uint64_t quota;
};

struct cfg_volume {
    char store[PATH_MAX];
    char uuid[SFS_UUID_TEXT];
    struct cfg_setting *settings;
    size_t nsettings, capsettings;
    struct sfs_policy *policies;
    size_t npolicies, cappolicies;
    struct cfg_qtree *qtrees;
    size_t nqtrees, capqtrees;
};

/* A key's fingerprint: the first 16 hex digits of SHA-256 of the key
 * (which names it without revealing it). */
#define CFG_FINGERPRINT_LEN 16

/* A peer this host connects to; its key only with the secrets. */
struct cfg_peer {
    char name[PEER_NAME_MAX + 1];
    char address[PEER_ADDRESS_MAX];
    char fingerprint[CFG_FINGERPRINT_LEN + 1]; /* "" if the file has none */
    bool legacy;
    bool has_key;
    uint8_t key[PEER_KEY_LEN];
};

/* A peer that may connect here; its key only with the secrets. */
struct cfg_client {
    char name[PEER_NAME_MAX + 1];
    char fingerprint[CFG_FINGERPRINT_LEN + 1];
    bool has_key;
    uint8_t key[PEER_KEY_LEN];
};

/* What a peer may do here: send from or receive into a volume. */
struct cfg_grant {
    char peer[PEER_NAME_MAX + 1];
    enum peer_op op;
    char volume[PATH_MAX];
};

/* A vault store; its passphrase only with the secrets. */
struct cfg_vstore {
    struct vault_store_conf conf;
    bool has_pass;
    size_t plen;
    char pass[CONFIG_PASS_MAX];
};

/* A vault relationship: the volume by its store directory. */
struct cfg_vrel {
    char path[PATH_MAX];
    char store[VAULT_CONF_NAME_MAX + 1];
    char policy[VAULT_CONF_NAME_MAX + 1];
};

/* An NDMP user; the password only with the secrets. */
struct cfg_nuser {
    char name[NDMP_USER_MAX + 1];
    bool has_password;
    char password[NDMP_USER_MAX + 1];
};

/* The host's records (config_host.c). */
struct cfg_host {
    struct mirror_rel *mirrors;
    size_t nmirrors, capmirrors;
    struct cfg_peer *peers;
    size_t npeers, cappeers;
    struct cfg_client *clients;
    size_t nclients, capclients;
    struct cfg_grant *grants;
    size_t ngrants, capgrants;
    struct cfg_vstore *vstores;
    size_t nvstores, capvstores;
    struct vault_rel_policy *vpolicies;
    size_t nvpolicies, capvpolicies;
    struct cfg_vrel *vrels;
    size_t nvrels, capvrels;
    struct cfg_nuser *nusers;
    size_t nnusers, capnusers;
};

/* A whole document. */
struct cfg_doc {
    struct cfg_volume *vols;
    size_t nvols, capvols;
    bool has_host;       /* the file has the host's records (version 2) */
    struct cfg_host host;
    bool has_secrets;    /* they carry their secrets */
};

/* Where a message about the file is built. */
struct cfg_ctx {
    char *err;
    size_t cap;
};
int cfg_bad(struct cfg_ctx *c, const char *where, const char *what);

/* ---- config.c: volumes and the document ---- */

/* The configuration of the volume of store ST (STORE: its directory). */
int cfg_read(struct sfs_store *st, const char *store, struct cfg_volume *out);
void cfg_volume_free(struct cfg_volume *v);
/* Every secret of D wiped and every array freed. */
void cfg_doc_free(struct cfg_doc *d);
/* D as JSON on OUT; its secrets (if D has them) sealed under PASS.
 * 0, or a negative errno. */
int cfg_write(FILE *out, const struct cfg_doc *d, const char *pass,
              size_t plen);
/* A passphrase for a document with secrets: its length, 0 if none. */
typedef size_t (*cfg_pass_fn)(void *arg, char *buf, size_t cap);
/* The document TEXT (LEN bytes) into D: 0, or -EINVAL with the reason in
 * ERR (not JSON, with its line and column; a newer version, an unknown
 * key, a member of the wrong type, a bad value, with where it is; a
 * wrong passphrase).  PASS is asked only when the file has secrets. */
int cfg_parse(const char *text, size_t len, struct cfg_doc *d,
              cfg_pass_fn pass, void *pass_arg, char *err, size_t cap);

/* ---- JSON helpers shared by the readers (config.c) ---- */
int cfg_only_keys(struct cfg_ctx *c, const char *where, const json_t *j,
                  const char *const *known);
int cfg_get_string(struct cfg_ctx *c, const char *where, const json_t *o,
                   const char *key, char *out, size_t cap, bool required);
int cfg_get_uint(struct cfg_ctx *c, const char *where, const json_t *o,
                 const char *key, uint64_t max, uint64_t *out);
int cfg_get_bool(struct cfg_ctx *c, const char *where, const json_t *o,
                 const char *key, bool *out);
/* Each element of the array member KEY of O (absent: none) given to FN
 * with its place ("WHERE.KEY[I]"). */
int cfg_each(struct cfg_ctx *c, const char *where, const json_t *o,
             const char *key,
             int (*fn)(struct cfg_ctx *, const char *, const json_t *,
                       void *),
             void *arg);

/* ---- what import does: steps ---- */

enum cfg_step_kind { CFG_CREATE = 1, CFG_CHANGE, CFG_SAME, CFG_REFUSE };
struct cfg_step;
typedef int (*cfg_apply_fn)(const struct cfg_step *s, char *err, size_t cap);
struct cfg_step {
    int kind;
    char target[PATH_MAX]; /* the volume, or "host" */
    char what[512];        /* "setting snapdir: visible -> hidden", ... */
    char why[512];         /* REFUSE: why */
    char *argv[24];        /* run as this snapfs command, or */
    int argc;
    cfg_apply_fn apply;    /* done here with ITEM (copied; wiped, freed) */
    void *item;
    size_t item_size;
};
struct cfg_plan {
    struct cfg_step *v;
    size_t n, cap;
};
/* A step appended to P (NULL when out of memory). */
struct cfg_step *cfg_step_add(struct cfg_plan *p, int kind,
                              const char *target, const char *what);
void cfg_step_arg(struct cfg_step *s, const char *a);
int cfg_step_item(struct cfg_step *s, const void *item, size_t size);
/* The steps that make volume VOL (its current configuration CUR) match
 * WANT, appended to P. */
void cfg_plan_volume(struct cfg_plan *p, const char *vol,
                     const struct cfg_volume *cur,
                     const struct cfg_volume *want);
void cfg_plan_free(struct cfg_plan *p);

/* ---- config_host.c: this host's records ---- */

/* This host's records into H; with SECRETS their keys, passphrases and
 * passwords too.  0, or a negative errno with what failed in ERR. */
int cfg_host_read(struct cfg_host *h, bool secrets, char *err, size_t cap);
void cfg_host_free(struct cfg_host *h);
json_t *cfg_host_json(const struct cfg_host *h);
/* The secrets of H as one object, and back onto H's items. */
json_t *cfg_host_secrets_json(const struct cfg_host *h);
int cfg_host_secrets_parse(struct cfg_ctx *c, const json_t *j,
                           struct cfg_host *h);
/* The members of document DOC that are the host's records into H. */
int cfg_host_parse(struct cfg_ctx *c, const json_t *doc, struct cfg_host *h);
/* The member names cfg_host_parse reads (NULL-terminated). */
extern const char *const cfg_host_keys[];
/* The steps that make this host's records match WANT, appended to P. */
void cfg_plan_host(struct cfg_plan *p, const struct cfg_host *want);

/* ---- config_secret.c: sealing the secrets ---- */

/* PLAIN sealed under PASS: an object naming the KDF and its parameters,
 * the salt and the sealed bytes. */
json_t *cfg_seal(const char *plain, size_t len, const char *pass,
                 size_t plen);
/* The reverse: a malloc'd NUL-terminated plaintext into *OUT, or
 * -EINVAL (malformed, with where in C) or -EACCES (a wrong passphrase
 * or altered bytes). */
int cfg_unseal(struct cfg_ctx *c, const json_t *sealed, const char *pass,
               size_t plen, char **out, size_t *len);

#endif
