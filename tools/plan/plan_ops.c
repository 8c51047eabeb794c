/*
 * plan_ops.c - carrying out a recovery plan: test (clones of the newest
 * mirrored snapshots, mounted, the steps run against them, replication
 * untouched), cleanup, run (a planned migration or a disaster recovery),
 * reprotect (the relationships reversed) and failback (a planned
 * migration back, then reprotect to the original direction).
 *
 * THEORY.  An operation is a list of actions, each named by a key
 * ("update:STEP:MEMBER", "break:...", "mount:...", "script:STEP", ...);
 * the state file (plan_conf.c) records the operation in progress and the
 * keys done, replaced durably after every action.  An operation that
 * stopped (a failing script, a failing transfer, kill -9) is resumed by
 * the next command of the same operation: keys done are skipped, and
 * every action is also idempotent by itself, checking the world before
 * acting (a destination broken off already is not broken again, a volume
 * mounted where it belongs is not mounted again, a clone that exists is
 * not made again, a reverse resync whose relationship exists is done), so
 * a kill between an action and the record of it is harmless too.  Only a
 * step script cannot be checked from outside: it runs again unless it
 * succeeded and was recorded, so scripts must themselves be idempotent (a
 * mount that is there, a service that runs).
 *
 * Order.  A run first does the storage of every step (final updates,
 * breaks), then brings the steps up in priority order (mounts, then the
 * script); a planned migration whose update fails stops before any
 * break, with every source it unmounted mounted again as it was and the
 * run forgotten.  Steps of equal priority run in the plan's order.  What
 * a volume is (following, broken off, its newest snapshot, whose
 * destination) is asked of the volume itself (plan_probe: `receive
 * --handshake`), never assumed from the state file.
 *
 * Direction.  state.reversed says the destinations are the sources now
 * (after reprotect): "from" is the side that follows nobody and "to" the
 * side a run brings up.  A test clones the "to" side.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plan_cli.h"
#include "mirror/replicate.h"
#include "plan.h"

struct ctx {
    const struct plan *p;
    struct plan_state st;
    struct plan_report *rep;
    const char *phase; /* for scripts: test, planned-migration, ... */
    const char *prefix; /* of the keys: "" or "failback-" */
};

/* The two sides of member K of step I as things stand. */
struct sides {
    const char *from, *to;       /* store directories */
    const char *to_mount;        /* where "to" is served ("": nowhere) */
    char from_mount[PATH_MAX];   /* where "from" is/was served, or "" */
};

/* ---- the report and the state ---- */

static void report(struct ctx *c, size_t step, const char *volume,
                   const char *action, const char *result, double seconds,
                   const char *detail)
{
    json_array_append_new(c->rep->actions, json_pack(
        "{s:i, s:i, s:s, s:s, s:s, s:f, s:s}", "step", (int)step + 1,
        "priority", c->p->steps[step].priority, "volume", volume, "action",
        action, "result", result, "seconds", seconds, "detail",
        detail ? detail : ""));
}

static int failed(struct ctx *c, size_t step, int code, const char *last,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int failed(struct ctx *c, size_t step, int code, const char *last,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->rep->error, sizeof(c->rep->error), fmt, ap);
    va_end(ap);
    size_t len = strlen(c->rep->error);
    if (last && last[0] && !strstr(c->rep->error, last)) /* its words too */
        snprintf(c->rep->error + len, sizeof(c->rep->error) - len, ": %s",
                 last);
    c->rep->failed_step = (int)step + 1;
    c->rep->exit_code = code;
    if (last != c->rep->last_err) /* a report's own words are there */
        snprintf(c->rep->last_err, sizeof(c->rep->last_err), "%s",
                 last ? last : "");
    return -EIO;
}

static void key_of(struct ctx *c, char *out, size_t cap, const char *action,
                   size_t step, size_t member)
{
    snprintf(out, cap, "%s%s:%zu:%zu", c->prefix, action, step + 1,
             member + 1);
}

static bool is_done(struct ctx *c, const char *key)
{
    return json_object_get(c->st.done, key) != NULL;
}

static int save(struct ctx *c)
{
    int rc = plan_state_store(c->p->name, &c->st);
    if (rc)
        snprintf(c->rep->error, sizeof(c->rep->error), "recording the "
                 "state of plan %s: %s", c->p->name, strerror(-rc));
    return rc;
}

static int mark_done(struct ctx *c, const char *key)
{
    json_object_set_new(c->st.done, key, json_true());
    return save(c);
}

/* ---- the world ---- */

/* Where STORE is mounted (the last fuse.snapfs mount of it): 1 with
 * OUT set, or 0. */
static int mount_of(const char *store, char *out, size_t cap)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return 0;
    char line[8192];
    int found = 0;
    while (fgets(line, sizeof(line), f)) {
        char mnt[PATH_MAX], fstype[64], source[PATH_MAX];
        char *dash = strstr(line, " - ");
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 || !dash ||
            sscanf(dash + 3, "%63s %4095s", fstype, source) != 2)
            continue;
        if (!strcmp(fstype, "fuse.snapfs") && !strcmp(source, store)) {
            snprintf(out, cap, "%s", mnt);
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/* STORE is mounted on MNT. */
static bool mounted_on(const char *store, const char *mnt)
{
    char *s = mounted_store(mnt);
    bool yes = s && !strcmp(s, store);
    free(s);
    return yes;
}

static void sides_of(struct ctx *c, size_t i, size_t k, struct sides *sd);

/* Action ACTION of member K of step I: its sides into SD, its key into
 * KEY; true if it is done already. */
static bool action_done(struct ctx *c, size_t i, size_t k, const char *action,
                        struct sides *sd, char *key, size_t cap)
{
    sides_of(c, i, k, sd);
    key_of(c, key, cap, action, i, k);
    return is_done(c, key);
}

static void sides_of(struct ctx *c, size_t i, size_t k, struct sides *sd)
{
    const struct plan_member *m = &c->p->steps[i].m[k];
    char key[64];
    snprintf(key, sizeof(key), "%zu:%zu", i + 1, k + 1);
    const char *found = json_string_value(json_object_get(c->st.found, key));
    sd->from = c->st.reversed ? m->dst : m->src;
    sd->to = c->st.reversed ? m->src : m->dst;
    if (!c->st.reversed) {
        sd->to_mount = m->mount;
        snprintf(sd->from_mount, sizeof(sd->from_mount), "%s",
                 m->source_mount[0] ? m->source_mount : found ? found : "");
    } else {
        sd->to_mount = m->source_mount[0] ? m->source_mount
                                          : found ? found : "";
        snprintf(sd->from_mount, sizeof(sd->from_mount), "%s", m->mount);
    }
}

/* PATH is a volume of another host (PEER:PATH). */
static bool elsewhere(const char *path)
{
    return path[0] != '/';
}

/* What PATH says of itself (plan_probe), or a failure naming step I. */
static int probe(struct ctx *c, size_t i, const char *path,
                 struct destination_info *d)
{
    struct exec_result r;
    if (plan_probe(path, d, &r))
        return failed(c, i, r.status, r.last_err, "step %zu: %s cannot be "
                      "asked what it is", i + 1, path);
    return 0;
}

/* Run this binary's ARGV as action ACTION of step I on VOLUME: reported;
 * 0 or a failure naming the step. */
static int self_action(struct ctx *c, size_t i, const char *volume,
                       const char *action, char *const argv[])
{
    struct exec_result r;
    plan_exec_self(argv, NULL, 0, false, &r);
    report(c, i, volume, action, r.status ? "failed" : "ok", r.seconds,
           r.status ? r.last_err : NULL);
    if (r.status)
        return failed(c, i, r.status, r.last_err, "step %zu: %s of %s "
                      "failed (snapfs %s exited %d)", i + 1, action, volume,
                      argv[0], r.status);
    return 0;
}

static void skipped(struct ctx *c, size_t i, const char *volume,
                    const char *action, const char *why)
{
    report(c, i, volume, action, "skipped", 0, why);
}

/* ---- actions ---- */

static int make_mountpoint(struct ctx *c, size_t i, const char *mnt)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", mnt);
    for (char *s = buf + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(buf, 0755);
            *s = '/';
        }
    if (mkdir(buf, 0755) && errno != EEXIST)
        return failed(c, i, 0, NULL, "step %zu: making the mountpoint %s: "
                      "%s", i + 1, mnt, strerror(errno));
    return 0;
}

/* Mount STORE on MNT unless it is there already (KEY recorded). */
static int mount_action(struct ctx *c, size_t i, const char *key,
                        const char *store, const char *mnt)
{
    if (!mnt[0] || is_done(c, key))
        return 0;
    if (mounted_on(store, mnt)) {
        skipped(c, i, store, "mount", "mounted there already");
        return mark_done(c, key);
    }
    char *other = mounted_store(mnt);
    if (other) {
        int rc = failed(c, i, 0, NULL, "step %zu: %s: %s is mounted there, "
                        "not %s", i + 1, mnt, other, store);
        free(other);
        return rc;
    }
    char *argv[] = { "mount", (char *)store, (char *)mnt, NULL };
    int rc = make_mountpoint(c, i, mnt);
    if (!rc)
        rc = self_action(c, i, store, "mount", argv);
    return rc ? rc : mark_done(c, key);
}

static int umount_action(struct ctx *c, size_t i, const char *store,
                         const char *mnt)
{
    char *argv[] = { "umount", (char *)mnt, NULL };
    if (!mounted_on(store, mnt))
        return 0;
    return self_action(c, i, store, "unmount", argv);
}

/* The environment of step I's script: its volumes (stores and
 * mountpoints) as PHASE brings them up. */
static char **script_env(struct ctx *c, size_t i, bool test)
{
    const struct plan_step *s = &c->p->steps[i];
    size_t n = 6 + 2 * s->n + 1, at = 0;
    char **env = calloc(n, sizeof(*env));
    if (!env)
        abort();
    int ok = asprintf(&env[at++], "SNAPFS_PLAN=%s", c->p->name) > 0 &&
             asprintf(&env[at++], "SNAPFS_PLAN_PHASE=%s", c->phase) > 0 &&
             asprintf(&env[at++], "SNAPFS_PLAN_STEP=%zu", i + 1) > 0 &&
             asprintf(&env[at++], "SNAPFS_PLAN_PRIORITY=%d",
                      s->priority) > 0 &&
             asprintf(&env[at++], "SNAPFS_PLAN_VOLUMES=%zu", s->n) > 0;
    for (size_t k = 0; ok && k < s->n; k++) {
        struct sides sd;
        sides_of(c, i, k, &sd);
        char clone[PATH_MAX];
        snprintf(clone, sizeof(clone), "%s.test-%s", sd.to, c->p->name);
        const char *store = test ? clone : sd.to;
        const char *mnt = test ? s->m[k].test_mount : sd.to_mount;
        ok = asprintf(&env[at++], "SNAPFS_PLAN_STORE_%zu=%s", k + 1,
                      store) > 0 &&
             asprintf(&env[at++], "SNAPFS_PLAN_MOUNT_%zu=%s", k + 1,
                      mnt) > 0;
        if (ok && k == 0)
            ok = asprintf(&env[at++], "SNAPFS_PLAN_GROUP=%s", s->group) > 0;
    }
    if (!ok)
        abort();
    return env;
}

static int script_action(struct ctx *c, size_t i, bool test)
{
    const struct plan_step *s = &c->p->steps[i];
    char key[64];
    snprintf(key, sizeof(key), "%sscript:%zu", c->prefix, i + 1);
    if (!s->script[0] || is_done(c, key))
        return 0;
    char **env = script_env(c, i, test);
    struct exec_result r;
    plan_exec_script(s->script, env, s->timeout, &r);
    for (size_t k = 0; env[k]; k++)
        free(env[k]);
    free(env);
    report(c, i, s->m[0].dst, "script", r.status ? "failed" : "ok",
           r.seconds, r.status ? r.last_err : NULL);
    if (r.status)
        return failed(c, i, r.status, r.last_err, "step %zu: its script "
                      "exited %d%s%s", i + 1, r.status,
                      r.last_err[0] ? ": " : "", r.last_err);
    return mark_done(c, key);
}

/* ---- test and cleanup ---- */

static int test_member(struct ctx *c, size_t i, size_t k)
{
    struct sides sd;
    sides_of(c, i, k, &sd);
    char key[64], clone[PATH_MAX], data[PATH_MAX + 16];
    snprintf(clone, sizeof(clone), "%s.test-%s", sd.to, c->p->name);
    snprintf(data, sizeof(data), "%s/data.mdb", clone);
    key_of(c, key, sizeof(key), "clone", i, k);
    if (!is_done(c, key) && !access(data, F_OK)) {
        skipped(c, i, sd.to, "clone", "the clone exists already");
        if (mark_done(c, key))
            return -EIO;
    }
    if (!is_done(c, key)) {
        struct destination_info d;
        if (elsewhere(sd.to))
            return failed(c, i, 0, NULL, "step %zu: %s is on another host: "
                          "a test clones on the host it runs on", i + 1,
                          sd.to);
        if (probe(c, i, sd.to, &d))
            return -EIO;
        if (!d.newest_src_epoch || strcmp(d.state, "follows"))
            return failed(c, i, 0, NULL, "step %zu: %s holds no mirrored "
                          "snapshot to test with (it is %s)", i + 1, sd.to,
                          !strcmp(d.state, "broken") ? "broken off"
                                                     : "no mirror");
        char *argv[] = { "clone", (char *)sd.to, d.newest, clone, NULL };
        int rc = self_action(c, i, sd.to, "clone", argv);
        if (rc || mark_done(c, key))
            return -EIO;
    }
    key_of(c, key, sizeof(key), "mount", i, k);
    return mount_action(c, i, key, clone, c->p->steps[i].m[k].test_mount);
}

static int cleanup_member(struct ctx *c, size_t i, size_t k)
{
    struct sides sd;
    sides_of(c, i, k, &sd);
    const char *tm = c->p->steps[i].m[k].test_mount;
    char clone[PATH_MAX], data[PATH_MAX + 16];
    snprintf(clone, sizeof(clone), "%s.test-%s", sd.to, c->p->name);
    snprintf(data, sizeof(data), "%s/data.mdb", clone);
    if (umount_action(c, i, clone, tm))
        return -EIO;
    rmdir(tm); /* made by the test; kept if something else is in it */
    if (c->p->steps[i].group[0]) { /* and a group's MOUNT.test, if empty */
        char parent[PATH_MAX];
        snprintf(parent, sizeof(parent), "%s", tm);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = 0;
            rmdir(parent);
        }
    }
    if (access(clone, F_OK))
        return 0;
    if (access(data, F_OK))
        return failed(c, i, 0, NULL, "step %zu: %s is not a volume; it was "
                      "left as it is", i + 1, clone);
    int rc = remove_tree(clone);
    if (rc)
        return failed(c, i, 0, NULL, "step %zu: removing %s: %s", i + 1,
                      clone, strerror(-rc));
    report(c, i, clone, "remove clone", "ok", 0, NULL);
    return 0;
}

/* ---- run ---- */

/* The original source of member K was found mounted on MNT and is being
 * unmounted: remembered (durably, first), so that failback serves it
 * there again, unless the plan names its mountpoint. */
static int remember_source_mount(struct ctx *c, size_t i, size_t k,
                                 const struct sides *sd, const char *mnt)
{
    char fkey[64];
    if (c->st.reversed || sd->from_mount[0])
        return 0;
    snprintf(fkey, sizeof(fkey), "%zu:%zu", i + 1, k + 1);
    json_object_set_new(c->st.found, fkey, plan_json_str(mnt));
    return save(c);
}

/* A planned migration's last transfers of member K: an update while the
 * source is in use, the source unmounted, and an update that carries
 * everything it held.  A failure mounts the source again and stops. */
static int final_update(struct ctx *c, size_t i, size_t k)
{
    struct sides sd;
    sides_of(c, i, k, &sd);
    char key[64], found[PATH_MAX];
    char *update[] = { "mirror", "update", (char *)sd.to, NULL };
    if (c->p->steps[i].m[k].remote && !c->st.reversed)
        return failed(c, i, 0, NULL, "step %zu: %s follows a volume of "
                      "another host, whose relationship is there: run its "
                      "final update there (snapfs mirror update), then plan "
                      "run --disaster here; nothing was broken off", i + 1,
                      sd.to);
    key_of(c, key, sizeof(key), "update", i, k);
    if (!is_done(c, key)) {
        if (self_action(c, i, sd.to, "update", update))
            return failed(c, i, c->rep->exit_code, c->rep->last_err,
                          "step %zu: the final update of %s failed: nothing "
                          "was broken off (if %s is lost, plan run "
                          "--disaster)", i + 1, sd.to, sd.from);
        if (mark_done(c, key))
            return -EIO;
    }
    key_of(c, key, sizeof(key), "unmount-source", i, k);
    if (!is_done(c, key) && mount_of(sd.from, found, sizeof(found)) &&
        (remember_source_mount(c, i, k, &sd, found) ||
         umount_action(c, i, sd.from, found)))
        return -EIO;
    if (!is_done(c, key) && mark_done(c, key))
        return -EIO;
    key_of(c, key, sizeof(key), "final-update", i, k);
    if (is_done(c, key))
        return 0;
    if (!self_action(c, i, sd.to, "final update", update))
        return mark_done(c, key);
    return failed(c, i, c->rep->exit_code, c->rep->last_err, "step %zu: the "
                  "final update of %s failed: nothing was broken off", i + 1,
                  sd.to);
}

/* Some destination was broken off by this operation (a disaster run that
 * stopped, resumed as a planned migration). */
static bool any_broken(struct ctx *c)
{
    const char *key;
    json_t *v;
    json_object_foreach(c->st.done, key, v) {
        if (strstr(key, "break:"))
            return true;
    }
    return false;
}

/* A planned migration that failed before any break: every source it
 * unmounted is mounted again where it was, and the run is forgotten (the
 * plan is as before it; the sources change again, so a new run starts
 * with new updates). */
static void undo_migration(struct ctx *c)
{
    for (size_t i = 0; i < c->p->n; i++)
        for (size_t k = 0; k < c->p->steps[i].n; k++) {
            struct sides sd;
            char key[64];
            if (!action_done(c, i, k, "unmount-source", &sd, key,
                             sizeof(key)) || !sd.from_mount[0] ||
                mounted_on(sd.from, sd.from_mount))
                continue;
            char *argv[] = { "mount", (char *)sd.from, sd.from_mount, NULL };
            struct exec_result r;
            plan_exec_self(argv, NULL, 0, false, &r);
            report(c, i, sd.from, "mount source again",
                   r.status ? "failed" : "ok", r.seconds, r.last_err);
        }
    c->st.operation[0] = 0;
    c->st.mode[0] = 0;
    json_object_clear(c->st.done);
    save(c);
}

/* Member K's destination broken off (writable at its newest snapshot),
 * unmounted first when it is mounted read-only. */
static int break_member(struct ctx *c, size_t i, size_t k)
{
    struct sides sd;
    char key[64], mnt[PATH_MAX];
    if (action_done(c, i, k, "break", &sd, key, sizeof(key)))
        return 0;
    struct destination_info d;
    if (probe(c, i, sd.to, &d))
        return -EIO;
    if (!strcmp(d.state, "broken")) {
        skipped(c, i, sd.to, "break", "broken off already");
        return mark_done(c, key);
    }
    if (elsewhere(sd.to))
        return failed(c, i, 0, NULL, "step %zu: %s is on another host: break "
                      "it there (snapfs mirror break)", i + 1, sd.to);
    if (mount_of(sd.to, mnt, sizeof(mnt)) && umount_action(c, i, sd.to, mnt))
        return -EIO;
    char *argv[] = { "mirror", "break", (char *)sd.to, NULL };
    if (self_action(c, i, sd.to, "break", argv))
        return -EIO;
    return mark_done(c, key);
}

static int run_storage(struct ctx *c, bool planned)
{
    for (size_t i = 0; i < c->p->n; i++) /* before anything changes */
        for (size_t k = 0; k < c->p->steps[i].n; k++) {
            struct sides sd;
            sides_of(c, i, k, &sd);
            if (elsewhere(sd.to))
                return failed(c, i, 0, NULL, "step %zu: %s is on another "
                              "host: break and serve it there (snapfs mirror "
                              "break); nothing was changed", i + 1, sd.to);
        }
    for (size_t i = 0; i < c->p->n; i++)
        for (size_t k = 0; planned && k < c->p->steps[i].n; k++)
            if (final_update(c, i, k)) {
                if (!any_broken(c))
                    undo_migration(c);
                return -EIO;
            }
    for (size_t i = 0; i < c->p->n; i++)
        for (size_t k = 0; k < c->p->steps[i].n; k++)
            if (break_member(c, i, k))
                return -EIO;
    return 0;
}

/* Steps in priority order: their volumes mounted, then the script. */
static int bring_up(struct ctx *c, bool test)
{
    for (size_t i = 0; i < c->p->n; i++) {
        for (size_t k = 0; k < c->p->steps[i].n; k++) {
            struct sides sd;
            char key[64];
            sides_of(c, i, k, &sd);
            key_of(c, key, sizeof(key), "mount", i, k);
            if (test ? test_member(c, i, k)
                     : mount_action(c, i, key, sd.to, sd.to_mount))
                return -EIO;
        }
        if (script_action(c, i, test))
            return -EIO;
    }
    return 0;
}

/* ---- reprotect ---- */

/* Member K: its serving side ("to") becomes the source of its old one
 * ("from"), which goes back to their last common snapshot and follows. */
static int reverse_member(struct ctx *c, size_t i, size_t k)
{
    struct sides sd;
    char key[64], mnt[PATH_MAX];
    if (action_done(c, i, k, "reverse", &sd, key, sizeof(key)))
        return 0;
    struct destination_info from, to;
    if (!sd.from[0])
        return failed(c, i, 0, NULL, "step %zu: %s follows a volume of "
                      "another host that the plan does not name: give the "
                      "step its \"source\" (PEER:PATH)", i + 1, sd.to);
    if (!plan_probe(sd.from, &from, &(struct exec_result){ 0 }) &&
        !plan_probe(sd.to, &to, &(struct exec_result){ 0 }) &&
        !strcmp(from.state, "follows") && !memcmp(from.source, to.uuid, 16)) {
        skipped(c, i, sd.from, "reverse resync", "follows already");
        return mark_done(c, key);
    }
    if (mount_of(sd.from, mnt, sizeof(mnt)) &&
        (remember_source_mount(c, i, k, &sd, mnt) ||
         umount_action(c, i, sd.from, mnt)))
        return -EIO;
    char *argv[] = { "mirror", "reverse-resync", (char *)sd.to,
                     (char *)sd.from, "--yes", NULL };
    if (self_action(c, i, sd.from, "reverse resync", argv))
        return -EIO;
    return mark_done(c, key);
}

static int reprotect(struct ctx *c)
{
    for (size_t i = 0; i < c->p->n; i++)
        for (size_t k = 0; k < c->p->steps[i].n; k++)
            if (reverse_member(c, i, k))
                return -EIO;
    return 0;
}

/* ---- operations ---- */

static const char *op_name(enum plan_op op)
{
    static const char *const names[] = { "test", "cleanup", "run",
                                         "reprotect", "failback" };
    return names[op];
}

/* Refuse OP in the state C has (nothing changed): -EBUSY with why. */
static int refuse(struct ctx *c, enum plan_op op)
{
    const struct plan_state *s = &c->st;
    const char *name = c->p->name, *why = NULL;
    char buf[512];
    bool resuming = !strcmp(s->operation, op_name(op));
    if (s->operation[0] && !resuming && op != OP_CLEANUP) {
        snprintf(buf, sizeof(buf), "its %s stopped in the middle; finish it "
                 "first (snapfs plan %s %s)", s->operation,
                 !strcmp(s->operation, "run") ? "run" : s->operation, name);
        why = buf;
    } else if (op == OP_CLEANUP && s->operation[0] &&
               strcmp(s->operation, "test") && !resuming) {
        snprintf(buf, sizeof(buf), "its %s is in progress, not a test",
                 s->operation);
        why = buf;
    } else if (resuming) {
        return 0;
    } else if (op == OP_TEST && s->test_active) {
        why = "a test is active; snapfs plan cleanup first";
    } else if (op == OP_TEST && s->failed_over) {
        why = "it has failed over: nothing follows to test with "
              "(reprotect first)";
    } else if (op == OP_CLEANUP && !s->test_active) {
        why = "no test is active";
    } else if ((op == OP_RUN || op == OP_REPROTECT || op == OP_FAILBACK) &&
               s->test_active) {
        why = "a test is active; snapfs plan cleanup first";
    } else if (op == OP_RUN && s->failed_over) {
        why = "it has failed over already (plan reprotect, then plan "
              "failback)";
    } else if (op == OP_REPROTECT && !s->failed_over) {
        why = "it has not failed over: nothing to reprotect (plan run "
              "first)";
    } else if (op == OP_FAILBACK && (!s->reversed || s->failed_over)) {
        why = s->failed_over ? "reprotect it first: the original sources "
                               "must follow before failing back"
                             : "it runs in its original direction already";
    }
    if (!why)
        return 0;
    snprintf(c->rep->error, sizeof(c->rep->error), "plan %s: %s", name, why);
    return -EBUSY;
}

static int begin(struct ctx *c, enum plan_op op, const char *mode)
{
    if (!strcmp(c->st.operation, op_name(op)) &&
        (!mode || !strcmp(c->st.mode, mode)))
        return 0;
    snprintf(c->st.operation, sizeof(c->st.operation), "%s", op_name(op));
    snprintf(c->st.mode, sizeof(c->st.mode), "%s", mode ? mode : "");
    return save(c);
}

/* OP is over: its keys go. */
static int end(struct ctx *c)
{
    c->st.operation[0] = 0;
    c->st.mode[0] = 0;
    json_object_clear(c->st.done);
    return save(c);
}

static int do_operate(struct ctx *c, enum plan_op op, enum run_mode mode)
{
    const char *mname = mode == MODE_PLANNED ? "planned-migration"
                                             : "disaster";
    int rc = begin(c, op, op == OP_RUN ? mname : NULL);
    if (rc)
        return rc;
    switch (op) {
    case OP_TEST:
        c->phase = "test";
        c->st.test_active = true;
        if (save(c) || bring_up(c, true))
            return -EIO;
        break;
    case OP_CLEANUP:
        for (size_t i = c->p->n; i-- > 0;)
            for (size_t k = 0; k < c->p->steps[i].n; k++)
                if (cleanup_member(c, i, k))
                    return -EIO;
        c->st.test_active = false;
        break;
    case OP_RUN:
        c->phase = mname;
        if (run_storage(c, mode == MODE_PLANNED) || bring_up(c, false))
            return -EIO;
        c->st.failed_over = true;
        break;
    case OP_REPROTECT:
        if (reprotect(c))
            return -EIO;
        c->st.reversed = !c->st.reversed;
        c->st.failed_over = false;
        break;
    case OP_FAILBACK:
        c->phase = "failback";
        if (!json_object_get(c->st.done, "failback-over")) {
            if (run_storage(c, true) || bring_up(c, false) ||
                mark_done(c, "failback-over"))
                return -EIO;
        }
        c->prefix = "failback-";
        if (reprotect(c))
            return -EIO;
        c->st.reversed = false;
        break;
    }
    return end(c);
}

int plan_operate(const struct plan *p, enum plan_op op, enum run_mode mode,
                 struct plan_report *rep)
{
    struct ctx c = { .p = p, .rep = rep, .prefix = "" };
    rep->actions = json_array();
    int rc = plan_state_load(p->name, &c.st);
    if (rc) {
        snprintf(rep->error, sizeof(rep->error), "plan %s: reading its "
                 "state: %s", p->name, strerror(-rc));
        return rc;
    }
    rc = refuse(&c, op);
    if (!rc)
        rc = do_operate(&c, op, mode);
    plan_state_free(&c.st);
    return rc;
}
