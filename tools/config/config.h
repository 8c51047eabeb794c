/*
 * config.h - a volume's configuration as `snapfs config export` writes it
 * and `config import` reads it (config.c): settings, snapshot policies
 * (with their hooks) and qtrees, in a versioned JSON document.
 */
#ifndef SNAPFS_CONFIG_H
#define SNAPFS_CONFIG_H

#include <limits.h>
#include <stdio.h>

#include "store.h"

#define CONFIG_VERSION 1 /* the "snapfs_config" member: this format */

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

/* The configuration of the volume of store ST (STORE: its directory). */
int cfg_read(struct sfs_store *st, const char *store, struct cfg_volume *out);
void cfg_volume_free(struct cfg_volume *v);
/* The document of the N volumes V. */
void cfg_write(FILE *out, const struct cfg_volume *v, size_t n);
/* The document TEXT (LEN bytes) back into volumes: 0, or -EINVAL with the
 * reason in ERR (not JSON, with its line and column; a newer version, an
 * unknown key, a member of the wrong type, a bad value of a setting,
 * policy or qtree, with where it is). */
int cfg_parse(const char *text, size_t len, struct cfg_volume **out,
              size_t *n, char *err, size_t cap);

/* What import does to a volume: one step each. */
enum cfg_step_kind { CFG_CREATE = 1, CFG_CHANGE, CFG_REFUSE };
struct cfg_step {
    int kind;
    char what[512];  /* "setting snapdir: visible -> hidden", ... */
    char *argv[24];  /* the snapfs command that does it (not for REFUSE) */
    int argc;
};
/* The steps that make volume VOL (its current configuration CUR) match
 * WANT, into *OUT (free with cfg_steps_free). */
int cfg_plan(const char *vol, const struct cfg_volume *cur,
             const struct cfg_volume *want, struct cfg_step **out,
             size_t *n);
void cfg_steps_free(struct cfg_step *s, size_t n);

#endif
