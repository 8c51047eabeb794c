/*
 * health_cmd.c - `snapfs health [VOLUME...|--all] [--json] [--fix]
 * [--full] [--cert FILE]... [--peer-timeout MS]`: the checks of
 * tools/health/ on the volumes given (--all, or none given: every mounted
 * snapfs volume), the relationships whose source they are, the peers this
 * host connects to and the certificates; one line per check, or --json;
 * exit 0 ok, 1 warning, 2 critical, as monitoring plugins do (3: the
 * command itself could not run, e.g. bad options).
 *
 * --fix cleans what can be cleaned without a decision: the holds of clones
 * that are gone and their partial stores (through the daemon on a mounted
 * volume, in one transaction on an unmounted one) and LMDB reader slots of
 * dead processes.  Each cleaning is a line of its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "health/health.h"
#include "leftovers.h"
#include "scheduler.h"

static const char *const level_words[] = { "OK", "WARNING", "CRITICAL" };

/* Bad options: one message, exit 3 (a monitoring plugin's UNKNOWN; 2 would
 * read as critical). */
static void usage_error(const char *fmt, const char *value)
    __attribute__((noreturn));
static void usage_error(const char *fmt, const char *value)
{
    fprintf(stderr, "snapfs health: ");
    fprintf(stderr, fmt, value);
    fprintf(stderr, " (see 'snapfs help')\n");
    exit(3);
}

/* option_value, but a value missing at the end is a usage error of
 * health's own (exit 3, UNKNOWN to a monitoring system), not 2. */
static const char *health_option(const char *opt, int argc, char **argv,
                                 int *i)
{
    if (!strcmp(argv[*i], opt) && *i + 1 >= argc)
        usage_error("%s needs a value", opt);
    return option_value("health", opt, argc, argv, i);
}

struct collected {
    struct health_result *v;
    size_t n, cap;
    int worst;
};

static void collect(void *arg, const struct health_result *r)
{
    struct collected *c = arg;
    if (array_append(&c->v, &c->n, &c->cap, r, sizeof(*r)))
        die("health", "out of memory");
    if (r->level > c->worst)
        c->worst = r->level;
}

/* ---- --fix: holds of clones that are gone, and their partial stores ---- */

struct fix_arg {
    struct leftover *v;
    size_t n;
};

static int offline_find(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct fix_arg *fa = arg;
    return leftovers_find(st, txn, &fa->v, &fa->n);
}

static int offline_release(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct fix_arg *fa = arg;
    int rc = 0;
    for (size_t i = 0; !rc && i < fa->n; i++)
        rc = sfs_snap_release_w(st, txn, fa->v[i].snap, fa->v[i].tag);
    return rc;
}

/* The store of VOL read-only, after its daemon committed, leaving the
 * reader slots of dead processes for the readers check (dies as the
 * command layer does when the daemon refuses). */
static struct sfs_store *read_store(struct volume *vol)
{
    if (vol->mounted) {
        char *words[] = { "sync" }, *data = NULL;
        int rc = volume_request(vol, words, 1, &data);
        free(data);
        if (rc)
            die("health", "%s: %s", vol->arg, rc == -EACCES ? "permission "
                "denied (only root or the volume's owner may check it)"
                : strerror(-rc));
    }
    struct sfs_store *st;
    int rc = sfs_open(vol->store, SFS_OPEN_RDONLY | SFS_OPEN_KEEP_READERS, &st);
    if (rc)
        die("health", "%s: %s", vol->arg, open_error(rc));
    return st;
}

static void fix_leftovers(struct volume *vol, struct collected *c)
{
    struct fix_arg fa = { 0 };
    int rc;
    if (vol->mounted) {
        struct sfs_store *st = read_store(vol);
        MDB_txn *txn;
        rc = sfs_txn_begin(st, NULL, false, &txn);
        if (!rc) {
            rc = leftovers_find(st, txn, &fa.v, &fa.n);
            mdb_txn_abort(txn);
        }
        sfs_close(st);
        for (size_t i = 0; !rc && i < fa.n; i++)
            rc = volume_hold(vol, "health", fa.v[i].snap, fa.v[i].tag, false);
    } else {
        rc = volume_offline(vol, "health", offline_find, &fa, false);
        if (!rc && fa.n)
            rc = volume_offline(vol, "health", offline_release, &fa, true);
    }
    if (rc)
        health_add(collect, c, "leftovers", vol->arg, HEALTH_WARNING, "could "
                   "not release the holds of clones that are gone: %s",
                   strerror(-rc));
    for (size_t i = 0; !rc && i < fa.n; i++) {
        char partial[PATH_MAX] = "";
        const char *p = leftover_partial(&fa.v[i]);
        if (p)
            snprintf(partial, sizeof(partial), "%s", p);
        int prc = p ? leftover_remove_partial(&fa.v[i]) : 0;
        if (prc)
            health_add(collect, c, "leftovers", vol->arg, HEALTH_WARNING,
                       "released the hold '%s' on snapshot %s; could not "
                       "remove the partial store %s: %s", fa.v[i].tag,
                       fa.v[i].snap, partial, strerror(-prc));
        else
            health_add(collect, c, "leftovers", vol->arg, HEALTH_OK, "fixed: "
                       "released the hold '%s' on snapshot %s%s", fa.v[i].tag,
                       fa.v[i].snap, p ? " and removed its partial store" : "");
    }
    free(fa.v);
}

/* ---- the volumes ---- */

/* A volume that cannot be opened is a critical result, not an exit. */
static bool volume_opens(const char *arg, struct collected *c)
{
    bool mounted;
    char *store = resolve_volume(arg, &mounted);
    struct sfs_store *st;
    int rc = store ? sfs_open(store, SFS_OPEN_RDONLY | SFS_OPEN_KEEP_READERS,
                              &st) : -ENOMEM;
    free(store);
    if (!rc) {
        sfs_close(st);
        return true;
    }
    health_add(collect, c, "volume", arg, HEALTH_CRITICAL, "cannot be opened: "
               "%s", open_error(rc));
    return false;
}

static void check_volume(const char *arg, const struct health_opts *o,
                         bool mirrors, struct collected *c)
{
    if (!volume_opens(arg, c))
        return;
    struct volume vol;
    volume_open(&vol, "health", arg);
    if (o->fix)
        fix_leftovers(&vol, c);
    struct sfs_store *st = read_store(&vol);
    health_volume(st, vol.arg, o, collect, c);
    sfs_close(st);
    if (mirrors)
        health_mirrors(vol.store, o, collect, c);
    free(vol.store);
    free(vol.mountpoint);
}

/* ---- output ---- */

static void print_text(const struct collected *c)
{
    for (size_t i = 0; i < c->n; i++)
        printf("%s %s %s: %s\n", level_words[c->v[i].level], c->v[i].check,
               c->v[i].subject, c->v[i].message);
}

static void print_json(const struct collected *c)
{
    static const char *const words[] = { "ok", "warning", "critical" };
    printf("{\"status\":\"%s\",\"checks\":[", words[c->worst]);
    for (size_t i = 0; i < c->n; i++) {
        printf("%s{\"check\":\"%s\",\"subject\":", i ? "," : "",
               c->v[i].check);
        print_json_string(c->v[i].subject);
        printf(",\"level\":\"%s\",\"message\":", words[c->v[i].level]);
        print_json_string(c->v[i].message);
        printf("}");
    }
    printf("]}\n");
}

int cmd_health(int argc, char **argv)
{
    const char *cmd = "health";
    struct health_opts o = { .peer_timeout_ms = 2000 };
    bool json = false, all = false;
    const char **certs = calloc((size_t)argc + 1, sizeof(*certs));
    char **vols = calloc((size_t)argc + 1, sizeof(*vols));
    size_t nvols = 0;
    if (!certs || !vols)
        die(cmd, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--all"))
            all = true;
        else if (!strcmp(argv[i], "--fix"))
            o.fix = true;
        else if (!strcmp(argv[i], "--full"))
            o.full = true;
        else if ((v = health_option("--cert", argc, argv, &i)))
            certs[o.ncerts++] = v;
        else if ((v = health_option("--peer-timeout", argc, argv, &i))) {
            char *end;
            unsigned long ms = strtoul(v, &end, 10);
            if (end == v || *end || ms < 1 || ms > 60000 || v[0] == '-')
                usage_error("--peer-timeout '%s': give milliseconds, 1 to "
                            "60000", v);
            o.peer_timeout_ms = (unsigned)ms;
        } else if (argv[i][0] == '-' && argv[i][1])
            usage_error("unknown option '%s'", argv[i]);
        else
            vols[nvols++] = argv[i];
    }
    o.certs = certs;
    if (all && nvols)
        usage_error("give volumes or --all, not both%s", "");
    int rc = scheduler_clock(&o.now);
    if (rc)
        die(cmd, "reading the clock %s: %s", getenv("SNAPFS_CLOCK_FILE"),
            strerror(-rc));
    struct collected c = { 0 };
    if (!nvols) {
        char **mounted;
        size_t n = mounted_volumes(&mounted);
        for (size_t i = 0; i < n; i++) {
            check_volume(mounted[i], &o, false, &c);
            free(mounted[i]);
        }
        free(mounted);
        health_mirrors(NULL, &o, collect, &c);
    }
    for (size_t i = 0; i < nvols; i++)
        check_volume(vols[i], &o, true, &c);
    health_peers(&o, collect, &c);
    health_certificates(&o, collect, &c);
    if (json)
        print_json(&c);
    else
        print_text(&c);
    free(c.v);
    free(certs);
    free(vols);
    return c.worst;
}
