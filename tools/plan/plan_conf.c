/*
 * plan_conf.c - recovery plans on disk: the plan each `plan create` made
 * and the state of what has been done of it.
 *
 * They live beside the peers' configuration, host-level:
 * $SNAPFS_CONFIG_DIR/plans (default /var/lib/snapfs/peers/plans, 0700):
 *
 *   NAME.plan   the plan: JSON {"format": 1, "name", "steps": [{"priority",
 *               "group", "script", "timeout", "members": [{"source",
 *               "destination", "mount", "test_mount", "source_mount"}]}]}
 *   NAME.state  what has been done (plan_state_to_json); missing: nothing
 *   NAME.lock   flock(2)ed by the one plan command running on NAME
 *
 * Guarantees: every file is replaced whole (a temporary file, fsync,
 * rename, fsync of the directory), so a crash or kill -9 leaves the old
 * file or the new one, never a mix; a plan is created only complete and
 * never over another (link(2)); a plan is checked when it is made: every
 * relationship and group it names exists in this host's mirror registry,
 * none twice.  Nothing here prints.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvfile.h"
#include "plan_cli.h"
#include "mirror/mirror.h"
#include "mirror/replicate.h"
#include "peer/peer.h"
#include "plan.h"

#define PLANS_LEAF "plans"

bool plan_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > PLAN_NAME_MAX || name[0] == '.' || name[0] == '-')
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
            return false;
    return true;
}

/* ---- files ---- */

static int plans_dir(char *out, size_t cap)
{
    int rc = peer_config_make();
    if (!rc)
        rc = peer_config_path(out, cap, PLANS_LEAF);
    if (!rc && mkdir(out, 0700) && errno != EEXIST)
        rc = -errno;
    return rc;
}

static int plan_path(const char *name, const char *ext, char *out, size_t cap)
{
    char dir[PATH_MAX];
    int rc = plans_dir(dir, sizeof(dir));
    if (rc)
        return rc;
    int n = snprintf(out, cap, "%s/%s.%s", dir, name, ext);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int sync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

/* PATH gets J's text, whole: replacing what is there, or (NEW_ONLY)
 * -EEXIST if something is. */
static int write_json_file(const char *path, json_t *j, bool new_only)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text)
        return -ENOMEM;
    size_t len = strlen(text);
    char *line = realloc(text, len + 2); /* the text and a newline */
    if (!line) {
        free(text);
        return -ENOMEM;
    }
    memcpy(line + len, "\n", 2);
    int rc = kv_write_file(path, line, len + 1, !new_only);
    free(line);
    return rc ? rc : sync_dir_of(path);
}

static int read_json_file(const char *path, json_t **out, char *why,
                          size_t cap)
{
    json_error_t e;
    *out = json_load_file(path, 0, &e);
    if (*out)
        return 0;
    if (access(path, F_OK))
        return -errno;
    snprintf(why, cap, "%s: line %d: %s", path, e.line, e.text);
    return -EINVAL;
}

/* ---- a plan from its description ---- */

static int fail(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static char *dup_or_empty(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        abort(); /* out of memory for a path: nothing sensible remains */
    return d;
}

/* The string of KEY in step object S ("" if absent): 0 or -EINVAL. */
static int step_string(json_t *s, const char *key, const char **out,
                       size_t idx, char *why, size_t cap)
{
    json_t *v = json_object_get(s, key);
    *out = "";
    if (!v)
        return 0;
    if (!json_is_string(v))
        return fail(why, cap, "step %zu: \"%s\" is not a string", idx, key);
    *out = json_string_value(v);
    if (strlen(*out) >= PATH_MAX)
        return fail(why, cap, "step %zu: \"%s\" is too long", idx, key);
    return 0;
}

static int step_int(json_t *s, const char *key, int dflt, int min, int max,
                    int *out, size_t idx, char *why, size_t cap)
{
    json_t *v = json_object_get(s, key);
    *out = dflt;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min ||
        json_integer_value(v) > max)
        return fail(why, cap, "step %zu: \"%s\" is not a whole number from "
                    "%d to %d", idx, key, min, max);
    *out = (int)json_integer_value(v);
    return 0;
}

static const char *const step_keys[] = {
    "relationship", "group", "priority", "mount", "test_mount",
    "source_mount", "script", "timeout", "source", NULL
};

static int check_keys(json_t *s, size_t idx, char *why, size_t cap)
{
    const char *key;
    json_t *v;
    json_object_foreach(s, key, v) {
        size_t k = 0;
        while (step_keys[k] && strcmp(step_keys[k], key))
            k++;
        if (!step_keys[k])
            return fail(why, cap, "step %zu: unknown key \"%s\" (a step has "
                        "relationship or group, priority, mount, test_mount, "
                        "source_mount, script, timeout, source)", idx, key);
    }
    return 0;
}

/* "/a/b/vol1.store" -> "vol1": a member's name under a group's mount. */
static void member_leaf(const char *dst, char *out, size_t cap)
{
    const char *base = strrchr(dst, '/');
    snprintf(out, cap, "%s", base ? base + 1 : dst);
    size_t n = strlen(out);
    if (n > 6 && !strcmp(out + n - 6, ".store"))
        out[n - 6] = 0;
}

static char *joined(const char *a, const char *b, const char *c)
{
    char *s;
    if (asprintf(&s, "%s%s%s", a, b, c) < 0)
        abort();
    return s;
}

/* Member I of a step from relationship R and the step's paths. */
static void member_from(struct plan_member *mb, const struct mirror_rel *r,
                        bool in_group, const char *mount, const char *tmount,
                        const char *smount)
{
    char leaf[PATH_MAX];
    member_leaf(r->dst, leaf, sizeof(leaf));
    mb->src = dup_or_empty(r->src);
    mb->dst = dup_or_empty(r->dst);
    if (!in_group) {
        mb->mount = dup_or_empty(mount);
        mb->test_mount = tmount[0] ? dup_or_empty(tmount)
                         : mount[0] ? joined(mount, ".test", "")
                                    : joined(r->dst, ".test-mnt", "");
        mb->source_mount = dup_or_empty(smount);
        return;
    }
    mb->mount = mount[0] ? joined(mount, "/", leaf) : dup_or_empty("");
    mb->test_mount = tmount[0] ? joined(tmount, "/", leaf)
                     : mount[0] ? joined(mount, ".test/", leaf)
                                : joined(r->dst, ".test-mnt", "");
    mb->source_mount = smount[0] ? joined(smount, "/", leaf)
                                 : dup_or_empty("");
}

/* DST (given as REL), which no relationship of this host names: a
 * local mirror destination following a volume of another host (the DR
 * host's view), its source "" or the step's "source" (PEER:PATH). */
static int remote_relationship(json_t *s, size_t idx, const char *rel,
                               const char *dst, struct mirror_rel *out,
                               char *why, size_t cap)
{
    struct destination_info d;
    struct exec_result r;
    const char *source;
    int rc = step_string(s, "source", &source, idx, why, cap);
    if (rc)
        return rc;
    if (dst[0] != '/' || plan_probe(dst, &d, &r) ||
        (strcmp(d.state, "follows") && strcmp(d.state, "broken")))
        return fail(why, cap, "step %zu: %s: no mirror relationship has "
                    "this destination (snapfs mirror show lists them), and "
                    "it is no mirror destination of this host", idx, rel);
    if (source[0] && (source[0] == '/' || !strchr(source, ':')))
        return fail(why, cap, "step %zu: \"source\" %s: give the source's "
                    "host as PEER:PATH", idx, source);
    memset(out, 0, sizeof(*out));
    snprintf(out->dst, sizeof(out->dst), "%s", dst);
    snprintf(out->src, sizeof(out->src), "%s", source);
    return 1; /* remote */
}

/* The relationships of step S: one, or a group's members.  1: the one
 * relationship is another host's (remote_relationship). */
static int step_relationships(json_t *s, size_t idx, struct mirror_rel **rels,
                              size_t *n, const char **group, char *why,
                              size_t cap)
{
    const char *rel;
    int rc = step_string(s, "relationship", &rel, idx, why, cap);
    if (!rc)
        rc = step_string(s, "group", group, idx, why, cap);
    if (rc)
        return rc;
    if (!rel[0] == !(*group)[0])
        return fail(why, cap, "step %zu: give a relationship (its "
                    "destination) or a group, one of the two", idx);
    if ((*group)[0]) {
        rc = mirror_group_members(*group, rels, n);
        if (rc)
            return fail(why, cap, "step %zu: reading the mirror "
                        "relationships: %s", idx, strerror(-rc));
        if (*n == 0) {
            free(*rels);
            return fail(why, cap, "step %zu: no mirror group named '%s' on "
                        "this host (snapfs mirror show lists them)", idx,
                        *group);
        }
        return 0;
    }
    char dst[PATH_MAX], id[MIRROR_ID_LEN + 1];
    mirror_canonical_dst(rel, false, dst, sizeof(dst));
    mirror_id(dst, id);
    *rels = calloc(1, sizeof(**rels));
    *n = 1;
    if (!*rels)
        return -ENOMEM;
    rc = mirror_rel_load(id, *rels);
    if (rc == -ENOENT)
        rc = remote_relationship(s, idx, rel, dst, *rels, why, cap);
    else if (!rc && (*rels)->group[0])
        rc = fail(why, cap, "step %zu: %s is a member of group %s: name the "
                  "group (\"group\": \"%s\")", idx, rel, (*rels)->group,
                  (*rels)->group);
    else if (rc < 0)
        rc = fail(why, cap, "step %zu: %s: %s", idx, rel, strerror(-rc));
    else if (!rc && json_object_get(s, "source"))
        rc = fail(why, cap, "step %zu: \"source\" names the source of a "
                  "relationship of another host; %s is this host's", idx,
                  rel);
    if (rc < 0)
        free(*rels);
    return rc;
}

/* A plan brings destinations up on this host: each must be local. */
static int check_local(const struct mirror_rel *rels, size_t n, size_t idx,
                       char *why, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        char peer[PEER_NAME_MAX + 1], path[PATH_MAX];
        enum dst_kind k = mirror_dst_kind(&rels[i], peer, path);
        if (k == DST_PEER)
            return fail(why, cap, "step %zu: %s is on peer %s: a plan "
                        "clones, breaks and mounts destinations on the host "
                        "it runs on, so they must be volumes of this host",
                        idx, rels[i].dst, peer);
        if (k == DST_VIA)
            return fail(why, cap, "step %zu: %s is reached through a --via "
                        "command: a plan needs destinations on this host",
                        idx, rels[i].dst);
    }
    return 0;
}

static int step_from_json(json_t *s, size_t idx, struct plan_step *st,
                          char *why, size_t cap)
{
    if (!json_is_object(s))
        return fail(why, cap, "step %zu: not an object", idx);
    const char *group, *mount, *tmount, *smount, *script;
    int rc = check_keys(s, idx, why, cap);
    if (!rc)
        rc = step_int(s, "priority", 1, 0, 1000000, &st->priority, idx, why,
                      cap);
    if (!rc)
        rc = step_int(s, "timeout", PLAN_TIMEOUT_DEFAULT, 1, 86400,
                      &st->timeout, idx, why, cap);
    if (!rc)
        rc = step_string(s, "mount", &mount, idx, why, cap);
    if (!rc)
        rc = step_string(s, "test_mount", &tmount, idx, why, cap);
    if (!rc)
        rc = step_string(s, "source_mount", &smount, idx, why, cap);
    if (!rc)
        rc = step_string(s, "script", &script, idx, why, cap);
    const char *const paths[] = { mount, tmount, smount };
    for (size_t k = 0; !rc && k < 3; k++)
        if (paths[k][0] && paths[k][0] != '/')
            rc = fail(why, cap, "step %zu: %s: mountpoints are absolute "
                      "paths", idx, paths[k]);
    struct mirror_rel *rels = NULL;
    if (!rc)
        rc = step_relationships(s, idx, &rels, &st->n, &group, why, cap);
    if (rc < 0)
        return rc;
    bool remote = rc == 1;
    rc = check_local(rels, st->n, idx, why, cap);
    if (rc) {
        free(rels);
        return rc;
    }
    st->group = dup_or_empty(group);
    st->script = dup_or_empty(script);
    st->m = calloc(st->n, sizeof(*st->m));
    if (!st->m)
        abort();
    for (size_t i = 0; i < st->n; i++) {
        member_from(&st->m[i], &rels[i], group[0], mount, tmount, smount);
        st->m[i].remote = remote;
    }
    free(rels);
    return 0;
}

/* No destination, mountpoint or test mountpoint twice in P. */
static int check_unique(const struct plan *p, char *why, size_t cap)
{
    for (size_t a = 0; a < p->n; a++)
        for (size_t i = 0; i < p->steps[a].n; i++)
            for (size_t b = a; b < p->n; b++)
                for (size_t k = b == a ? i + 1 : 0; k < p->steps[b].n; k++) {
                    const struct plan_member *x = &p->steps[a].m[i],
                                             *y = &p->steps[b].m[k];
                    if (!strcmp(x->dst, y->dst))
                        return fail(why, cap, "steps %zu and %zu: both name "
                                    "%s", a + 1, b + 1, x->dst);
                    if (x->mount[0] && !strcmp(x->mount, y->mount))
                        return fail(why, cap, "steps %zu and %zu: both mount "
                                    "on %s", a + 1, b + 1, x->mount);
                    if (!strcmp(x->test_mount, y->test_mount))
                        return fail(why, cap, "steps %zu and %zu: both test "
                                    "on %s", a + 1, b + 1, x->test_mount);
                }
    return 0;
}

static int by_priority(const void *a, const void *b)
{
    const struct plan_step *x = a, *y = b;
    return (x->priority > y->priority) - (x->priority < y->priority);
}

int plan_from_json(const char *name, json_t *j, struct plan *p, char *why,
                   size_t cap)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    json_t *steps = json_is_object(j) ? json_object_get(j, "steps") : NULL;
    if (!json_is_array(steps) || json_array_size(steps) == 0)
        return fail(why, cap, "a plan is an object with \"steps\": a "
                    "non-empty list of steps");
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        if (strcmp(key, "steps") && strcmp(key, "format") &&
            strcmp(key, "name"))
            return fail(why, cap, "unknown key \"%s\" (a plan has steps)",
                        key);
    }
    p->steps = calloc(json_array_size(steps), sizeof(*p->steps));
    if (!p->steps)
        return -ENOMEM;
    size_t i;
    json_array_foreach(steps, i, v) {
        int rc = step_from_json(v, i + 1, &p->steps[i], why, cap);
        if (rc) {
            plan_free(p);
            return rc;
        }
        p->n++;
    }
    int rc = check_unique(p, why, cap);
    if (rc) {
        plan_free(p);
        return rc;
    }
    /* insertion sort: stable, so equal priorities keep the given order */
    for (size_t a = 1; a < p->n; a++)
        for (size_t b = a; b > 0 && by_priority(&p->steps[b - 1],
                                                &p->steps[b]) > 0; b--) {
            struct plan_step t = p->steps[b];
            p->steps[b] = p->steps[b - 1];
            p->steps[b - 1] = t;
        }
    return 0;
}

void plan_free(struct plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        struct plan_step *s = &p->steps[i];
        for (size_t k = 0; k < s->n; k++) {
            free(s->m[k].src);
            free(s->m[k].dst);
            free(s->m[k].mount);
            free(s->m[k].test_mount);
            free(s->m[k].source_mount);
        }
        free(s->m);
        free(s->group);
        free(s->script);
    }
    free(p->steps);
    p->steps = NULL;
    p->n = 0;
}

/* ---- the stored form ---- */

json_t *plan_to_json(const struct plan *p)
{
    json_t *steps = json_array();
    for (size_t i = 0; i < p->n; i++) {
        const struct plan_step *s = &p->steps[i];
        json_t *members = json_array();
        for (size_t k = 0; k < s->n; k++)
            json_array_append_new(members, json_pack(
                "{s:s, s:s, s:s, s:s, s:s, s:b}", "source", s->m[k].src,
                "destination", s->m[k].dst, "mount", s->m[k].mount,
                "test_mount", s->m[k].test_mount, "source_mount",
                s->m[k].source_mount, "remote", s->m[k].remote));
        json_array_append_new(steps, json_pack(
            "{s:i, s:i, s:s, s:s, s:i, s:o}", "step", (int)i + 1,
            "priority", s->priority, "group", s->group, "script", s->script,
            "timeout", s->timeout, "members", members));
    }
    return json_pack("{s:i, s:s, s:o}", "format", PLAN_FORMAT, "name",
                     p->name, "steps", steps);
}

static int stored_string(json_t *o, const char *key, char **out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return -EINVAL;
    *out = dup_or_empty(json_string_value(v));
    return 0;
}

static int stored_step(json_t *s, struct plan_step *st)
{
    json_t *members = json_object_get(s, "members");
    if (!json_is_array(members) || !json_array_size(members) ||
        !json_is_integer(json_object_get(s, "priority")) ||
        !json_is_integer(json_object_get(s, "timeout")))
        return -EINVAL;
    st->priority = (int)json_integer_value(json_object_get(s, "priority"));
    st->timeout = (int)json_integer_value(json_object_get(s, "timeout"));
    if (stored_string(s, "group", &st->group) ||
        stored_string(s, "script", &st->script))
        return -EINVAL;
    st->m = calloc(json_array_size(members), sizeof(*st->m));
    if (!st->m)
        return -ENOMEM;
    size_t k;
    json_t *v;
    json_array_foreach(members, k, v) {
        struct plan_member *mb = &st->m[k];
        st->n++;
        if (stored_string(v, "source", &mb->src) ||
            stored_string(v, "destination", &mb->dst) ||
            stored_string(v, "mount", &mb->mount) ||
            stored_string(v, "test_mount", &mb->test_mount) ||
            stored_string(v, "source_mount", &mb->source_mount))
            return -EINVAL;
        mb->remote = json_is_true(json_object_get(v, "remote"));
    }
    return 0;
}

int plan_load(const char *name, struct plan *p, char *why, size_t cap)
{
    char path[PATH_MAX];
    memset(p, 0, sizeof(*p));
    int rc = plan_path(name, "plan", path, sizeof(path));
    json_t *j = NULL;
    if (!rc)
        rc = read_json_file(path, &j, why, cap);
    if (rc)
        return rc;
    json_t *f = json_object_get(j, "format"), *steps;
    if (json_is_integer(f) && json_integer_value(f) > PLAN_FORMAT) {
        snprintf(why, cap, "%s: format %lld, newer than this snapfs reads "
                 "(%d)", path, (long long)json_integer_value(f), PLAN_FORMAT);
        json_decref(j);
        return -EPROTONOSUPPORT;
    }
    snprintf(p->name, sizeof(p->name), "%s", name);
    steps = json_object_get(j, "steps");
    size_t n = json_array_size(steps), i;
    p->steps = calloc(n ? n : 1, sizeof(*p->steps));
    rc = p->steps && n ? 0 : -EINVAL;
    json_t *v;
    json_array_foreach(steps, i, v) {
        if (rc)
            break;
        p->n++;
        rc = stored_step(v, &p->steps[i]);
    }
    json_decref(j);
    if (rc) {
        snprintf(why, cap, "%s: not a plan this snapfs wrote", path);
        plan_free(p);
    }
    return rc;
}

int plan_store_new(const struct plan *p)
{
    char path[PATH_MAX];
    int rc = plan_path(p->name, "plan", path, sizeof(path));
    if (rc)
        return rc;
    json_t *j = plan_to_json(p);
    rc = j ? write_json_file(path, j, true) : -ENOMEM;
    json_decref(j);
    return rc;
}

int plan_delete(const char *name)
{
    char path[PATH_MAX], state[PATH_MAX];
    int rc = plan_path(name, "plan", path, sizeof(path));
    if (!rc)
        rc = plan_path(name, "state", state, sizeof(state));
    if (rc)
        return rc;
    if (unlink(path))
        return -errno;
    if (unlink(state) && errno != ENOENT)
        return -errno;
    return sync_dir_of(path);
}

int plan_names(char ***names, size_t *n)
{
    char dir[PATH_MAX];
    *names = NULL;
    *n = 0;
    int rc = plans_dir(dir, sizeof(dir));
    DIR *d = rc ? NULL : opendir(dir);
    if (!d)
        return rc ? rc : -errno;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= 5 || strcmp(e->d_name + len - 5, ".plan"))
            continue;
        char *name = strndup(e->d_name, len - 5);
        if (!name || array_append(names, n, &cap, &name, sizeof(name))) {
            free(name);
            rc = -ENOMEM;
            break;
        }
    }
    closedir(d);
    for (size_t a = 1; a < *n; a++) /* few: an insertion sort */
        for (size_t b = a; b > 0 && strcmp((*names)[b - 1], (*names)[b]) > 0;
             b--) {
            char *t = (*names)[b];
            (*names)[b] = (*names)[b - 1];
            (*names)[b - 1] = t;
        }
    return rc;
}

/* ---- state ---- */

json_t *plan_state_to_json(const struct plan_state *s)
{
    return json_pack("{s:i, s:s, s:s, s:b, s:b, s:b, s:O, s:O}", "format",
                     PLAN_FORMAT, "operation", s->operation, "mode", s->mode,
                     "test_active", s->test_active, "failed_over",
                     s->failed_over, "reversed", s->reversed, "done",
                     s->done, "found", s->found);
}

int plan_state_load(const char *name, struct plan_state *s)
{
    memset(s, 0, sizeof(*s));
    char path[PATH_MAX], why[256];
    json_t *j = NULL;
    int rc = plan_path(name, "state", path, sizeof(path));
    if (!rc)
        rc = read_json_file(path, &j, why, sizeof(why));
    if (rc == -ENOENT) {
        s->done = json_object();
        s->found = json_object();
        return 0;
    }
    if (rc)
        return rc;
    const char *op = json_string_value(json_object_get(j, "operation"));
    const char *mode = json_string_value(json_object_get(j, "mode"));
    snprintf(s->operation, sizeof(s->operation), "%s", op ? op : "");
    snprintf(s->mode, sizeof(s->mode), "%s", mode ? mode : "");
    s->test_active = json_is_true(json_object_get(j, "test_active"));
    s->failed_over = json_is_true(json_object_get(j, "failed_over"));
    s->reversed = json_is_true(json_object_get(j, "reversed"));
    s->done = json_incref(json_object_get(j, "done"));
    s->found = json_incref(json_object_get(j, "found"));
    json_decref(j);
    if (!json_is_object(s->done) || !json_is_object(s->found)) {
        plan_state_free(s);
        return -EINVAL;
    }
    return 0;
}

int plan_state_store(const char *name, const struct plan_state *s)
{
    char path[PATH_MAX];
    int rc = plan_path(name, "state", path, sizeof(path));
    if (rc)
        return rc;
    json_t *j = plan_state_to_json(s);
    rc = j ? write_json_file(path, j, false) : -ENOMEM;
    json_decref(j);
    return rc;
}

void plan_state_free(struct plan_state *s)
{
    json_decref(s->done);
    json_decref(s->found);
    s->done = s->found = NULL;
}

int plan_lock(const char *name)
{
    char path[PATH_MAX];
    int rc = plan_path(name, "lock", path, sizeof(path));
    if (rc)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        rc = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
        close(fd);
        return rc;
    }
    return fd;
}
