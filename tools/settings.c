/*
 * settings.c - `snapfs set VOL NAME=VALUE...` and `snapfs get VOL [NAME]`.
 *
 * Settings are volume properties (store/settings.c lists them).  On a
 * mounted volume `set` goes through the daemon, which applies the value at
 * once (for snapdir: the kernel's caches are invalidated, no remount); on
 * an unmounted one it is written into the store.  Every NAME=VALUE is
 * checked before anything changes, and all of them change together or
 * none does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store.h"

struct assignment {
    char *name, *value;
};

struct assignments {
    struct assignment *v;
    int n;
};

static int offline_set(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct assignments *as = arg;
    int rc = 0;
    for (int i = 0; !rc && i < as->n; i++)
        rc = sfs_setting_set_w(st, txn, as->v[i].name, as->v[i].value);
    return rc;
}

/* Split and check NAME=VALUE; dies naming what is wrong. */
static void parse_assignment(const char *cmd, char *arg, struct assignment *a)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        die_usage(cmd, "'%s' is not NAME=VALUE", arg);
    *eq = 0;
    a->name = arg;
    a->value = eq + 1;
    char allowed[256];
    if (sfs_setting_allowed(a->name, allowed, sizeof(allowed)))
        die(cmd, "unknown setting '%s' (see 'snapfs get VOL')", a->name);
    if (sfs_setting_check(a->name, a->value))
        die(cmd, "%s: '%s' is not allowed (%s%s)", a->name, a->value,
            strchr(allowed, '%') ? "a percentage, " : "one of: ", allowed);
}

int cmd_set(int argc, char **argv)
{
    const char *cmd = "set";
    if (argc < 3)
        die_usage(cmd, "give the volume and one or more NAME=VALUE");
    struct assignments as = { calloc((size_t)argc, sizeof(*as.v)), 0 };
    if (!as.v)
        die(cmd, "out of memory");
    for (int i = 2; i < argc; i++)
        parse_assignment(cmd, argv[i], &as.v[as.n++]);
    struct volume vol;
    volume_open(&vol, cmd, argv[1]);
    int rc = 0;
    if (!vol.mounted) {
        rc = volume_offline(&vol, cmd, offline_set, &as, true);
    } else {
        /* One request per setting; each is applied as it lands. */
        for (int i = 0; !rc && i < as.n; i++) {
            char *words[] = { "set", as.v[i].name, as.v[i].value }, *data = NULL;
            rc = volume_request(&vol, words, 3, &data);
            free(data);
        }
    }
    if (rc == -EACCES)
        die(cmd, "%s: permission denied (only root or the volume's owner may "
                 "change settings)", vol.arg);
    if (rc)
        die(cmd, "%s: %s", vol.arg, strerror(-rc));
    for (int i = 0; i < as.n; i++)
        printf("snapfs: %s: %s=%s\n", vol.arg, as.v[i].name, as.v[i].value);
    free(as.v);
    free(vol.store);
    free(vol.mountpoint);
    return 0;
}

struct get_arg {
    const char *only;
    bool found;
};

static int print_setting(void *arg, const char *name, const char *value,
                         const char *dflt, const char *allowed,
                         const char *what)
{
    struct get_arg *ga = arg;
    if (ga->only && strcmp(ga->only, name))
        return 0;
    ga->found = true;
    if (ga->only)
        printf("%s\n", value);
    else
        printf("%-27s %-8s %-8s %-26s %s\n", name, value, dflt, allowed, what);
    return 0;
}

static int offline_get(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    return sfs_setting_foreach(st, txn, print_setting, arg);
}

typedef int (*setting_cb)(void *arg, const char *name, const char *value,
                          const char *dflt, const char *allowed,
                          const char *what);

/* The daemon's lines: NAME VALUE DEFAULT ALLOWED WHAT, tab-separated. */
static int remote_settings(struct volume *vol, setting_cb cb, void *arg)
{
    char *words[] = { "settings" }, *data = NULL;
    int rc = volume_request(vol, words, 1, &data);
    for (char *save = NULL, *line = data ? strtok_r(data, "\n", &save) : NULL;
         !rc && line; line = strtok_r(NULL, "\n", &save)) {
        char *f[5], *fs = NULL;
        int n = 0;
        for (char *w = strtok_r(line, "\t", &fs); w && n < 5;
             w = strtok_r(NULL, "\t", &fs))
            f[n++] = w;
        if (n != 5)
            rc = -EPROTO;
        else
            rc = cb(arg, f[0], f[1], f[2], f[3], f[4]);
    }
    free(data);
    return rc;
}

int cmd_get(int argc, char **argv)
{
    const char *cmd = "get";
    if (argc < 2 || argc > 3)
        die_usage(cmd, "give the volume and optionally one setting");
    struct get_arg ga = { argc == 3 ? argv[2] : NULL, false };
    char allowed[256];
    if (ga.only && sfs_setting_allowed(ga.only, allowed, sizeof(allowed)))
        die(cmd, "unknown setting '%s' (see 'snapfs get VOL')", ga.only);
    struct volume vol;
    volume_open(&vol, cmd, argv[1]);
    if (!ga.only)
        printf("%-27s %-8s %-8s %-26s %s\n", "NAME", "VALUE", "DEFAULT",
               "ALLOWED", "WHAT");
    int rc = vol.mounted ? remote_settings(&vol, print_setting, &ga)
                         : volume_offline(&vol, cmd, offline_get, &ga, false);
    if (rc)
        die(cmd, "%s: %s", vol.arg, strerror(-rc));
    free(vol.store);
    free(vol.mountpoint);
    return 0;
}

struct value_arg {
    const char *name;
    char *value;
    size_t cap;
    bool found;
};

static int copy_value(void *arg, const char *name, const char *value,
                      const char *dflt, const char *allowed, const char *what)
{
    struct value_arg *va = arg;
    if (strcmp(name, va->name))
        return 0;
    va->found = true;
    snprintf(va->value, va->cap, "%s", value);
    return 0;
}

static int offline_value(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    return sfs_setting_foreach(st, txn, copy_value, arg);
}

int volume_setting(struct volume *vol, const char *cmd, const char *name,
                   char *value, size_t cap)
{
    struct value_arg va = { name, value, cap, false };
    int rc = vol->mounted ? remote_settings(vol, copy_value, &va)
                          : volume_offline(vol, cmd, offline_value, &va, false);
    return rc ? rc : va.found ? 0 : -ENOENT;
}
