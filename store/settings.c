/*
 * settings.c - volume settings: named values an administrator changes at
 * run time (`snapfs set VOL NAME=VALUE`), kept in the meta table under
 * "set/NAME" so that they survive remounts and travel with the store.
 *
 * Guarantees: only the settings listed in the table below exist; a value
 * is stored only if it is one its setting allows (a word of its list, or
 * a percentage "N%" in its range); an unset setting reads as its
 * default.  The daemon applies a changed setting at once (the
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
    const char *const *allowed; /* NULL-terminated; NULL: a percentage */
    uint32_t min, max;          /* a percentage's range */
    const char *what;           /* one line for `snapfs get` */
};

static const char *const snapdir_values[] = { "visible", "hidden",
                                              "disabled", NULL };
static const char *const on_off[] = { "off", "on", NULL };
static const char *const trigger_values[] = { "volume", "reserve", NULL };

static const struct setting settings[] = {
    { "snapdir", "visible", snapdir_values, 0, 0,
      ".snapshot: listed at the root, reachable by path only, or absent" },
    { "snapshot-reserve", "0%", NULL, 0, 90,
      "share of the volume only snapshots may use; df shows the rest" },
    { "snapshot-autodelete", "off", on_off, 0, 0,
      "delete the oldest snapshots (not held, not a base) when triggered" },
    { "snapshot-autodelete-trigger", "volume", trigger_values, 0, 0,
      "volume: the volume is nearly full; reserve: snapshots nearly fill "
      "their reserve" },
    { "snapshot-autodelete-target", "20%", NULL, 1, 50,
      "autodelete stops once this share is free (of the volume, or of "
      "the reserve)" },
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static const struct setting *setting_find(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (!strcmp(settings[i].name, name))
            return &settings[i];
    return NULL;
}

/* "N%" with N in the setting's range (plain digits, no sign). */
static int parse_percent(const struct setting *s, const char *value,
                         uint32_t *out)
{
    size_t n = strlen(value);
    if (n < 2 || n > 4 || value[n - 1] != '%')
        return -EINVAL;
    uint32_t v = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (value[i] < '0' || value[i] > '9')
            return -EINVAL;
        v = v * 10 + (uint32_t)(value[i] - '0');
    }
    if (v < s->min || v > s->max)
        return -EINVAL;
    *out = v;
    return 0;
}

static bool value_allowed(const struct setting *s, const char *value)
{
    uint32_t pct;
    if (!s->allowed)
        return !parse_percent(s, value, &pct);
    for (const char *const *a = s->allowed; *a; a++)
        if (!strcmp(*a, value))
            return true;
    return false;
}

/* The allowed values as text: "a|b" (SEP "|") or "0% to 90%". */
static void allowed_text(const struct setting *s, const char *sep, char *buf,
                         size_t cap)
{
    buf[0] = 0;
    if (!s->allowed) {
        snprintf(buf, cap, "%u%% to %u%%", s->min, s->max);
        return;
    }
    for (const char *const *a = s->allowed; *a; a++)
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s",
                 a == s->allowed ? "" : sep, *a);
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
        char value[SFS_SETTING_VALUE_MAX + 1], allowed[256];
        int rc = sfs_setting_get(st, txn, settings[i].name, value,
                                 sizeof(value));
        allowed_text(&settings[i], "|", allowed, sizeof(allowed));
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
    allowed_text(s, ", ", buf, cap);
    return 0;
}

int sfs_setting_percent(struct sfs_store *st, MDB_txn *txn, const char *name,
                        uint32_t *pct)
{
    const struct setting *s = setting_find(name);
    if (!s || s->allowed)
        return -EINVAL;
    char value[SFS_SETTING_VALUE_MAX + 1];
    int rc = sfs_setting_get(st, txn, name, value, sizeof(value));
    if (!rc && parse_percent(s, value, pct))
        rc = parse_percent(s, s->dflt, pct); /* stored by hand: the default */
    return rc;
}

int sfs_setting_is(struct sfs_store *st, MDB_txn *txn, const char *name,
                   const char *value)
{
    char v[SFS_SETTING_VALUE_MAX + 1];
    int rc = sfs_setting_get(st, txn, name, v, sizeof(v));
    return rc ? rc : !strcmp(v, value);
}
