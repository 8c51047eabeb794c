/*
 * settings.c - volume settings: named values an administrator changes at
 * run time (`snapfs set VOL NAME=VALUE`), kept in the meta table under
 * "set/NAME" so that they survive remounts and travel with the store.
 *
 * Guarantees: only the settings listed in the table below exist; a value
 * is stored only if it is one its setting allows; an unset setting reads
 * as its default.  The daemon applies a changed setting at once (the
 * control command tells it); this file knows nothing of the daemon.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define SETTING_PREFIX "set/"
#define SETTING_KEY_MAX 64

struct setting {
    const char *name;
    const char *dflt;
    const char *const *allowed; /* NULL-terminated */
    const char *what;           /* one line for `snapfs get` */
};

static const char *const snapdir_values[] = { "visible", "hidden",
                                              "disabled", NULL };

static const struct setting settings[] = {
    { "snapdir", "visible", snapdir_values,
      ".snapshot: listed at the root, reachable by path only, or absent" },
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static const struct setting *setting_find(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (!strcmp(settings[i].name, name))
            return &settings[i];
    return NULL;
}

static bool value_allowed(const struct setting *s, const char *value)
{
    for (const char *const *a = s->allowed; *a; a++)
        if (!strcmp(*a, value))
            return true;
    return false;
}

static size_t setting_key(char *buf, const char *name)
{
    return (size_t)snprintf(buf, SETTING_KEY_MAX, SETTING_PREFIX "%s", name);
}

int sfs_setting_check(const char *name, const char *value)
{
    const struct setting *s = setting_find(name);
    if (!s)
        return -ENOENT;
    return value_allowed(s, value) ? 0 : -EINVAL;
}

int sfs_setting_get(struct sfs_store *st, MDB_txn *txn, const char *name,
                    char *buf, size_t cap)
{
    const struct setting *s = setting_find(name);
    if (!s)
        return -ENOENT;
    char k[SETTING_KEY_MAX];
    MDB_val key = { setting_key(k, name), k }, val;
    int rc = mdb_get(txn, st->db_meta, &key, &val);
    if (rc && rc != MDB_NOTFOUND)
        return sfs_mdb_errno(rc);
    const char *v = rc ? s->dflt : val.mv_data;
    size_t len = rc ? strlen(s->dflt) : val.mv_size;
    if (len + 1 > cap)
        return -ERANGE;
    memcpy(buf, v, len);
    buf[len] = 0;
    return 0;
}

int sfs_setting_set_w(struct sfs_store *st, MDB_txn *txn, const char *name,
                      const char *value)
{
    int rc = sfs_setting_check(name, value);
    if (rc)
        return rc;
    char k[SETTING_KEY_MAX];
    MDB_val key = { setting_key(k, name), k };
    MDB_val val = { strlen(value), (void *)value };
    return sfs_mdb_errno(mdb_put(txn, st->db_meta, &key, &val, 0));
}

int sfs_setting_foreach(struct sfs_store *st, MDB_txn *txn,
                        sfs_setting_cb cb, void *arg)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        char value[SFS_SETTING_VALUE_MAX + 1], allowed[256] = "";
        int rc = sfs_setting_get(st, txn, settings[i].name, value,
                                 sizeof(value));
        for (const char *const *a = settings[i].allowed; !rc && *a; a++)
            snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed),
                     "%s%s", a == settings[i].allowed ? "" : "|", *a);
        if (!rc)
            rc = cb(arg, settings[i].name, value, settings[i].dflt, allowed,
                    settings[i].what);
        if (rc)
            return rc < 0 ? rc : 0;
    }
    return 0;
}

int sfs_setting_allowed(const char *name, char *buf, size_t cap)
{
    const struct setting *s = setting_find(name);
    if (!s)
        return -ENOENT;
    buf[0] = 0;
    for (const char *const *a = s->allowed; *a; a++)
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s",
                 a == s->allowed ? "" : ", ", *a);
    return 0;
}
