/*
 * config.c - a volume's configuration as a document: read from the store
 * (settings, policies with their hooks, qtrees), written as JSON, read
 * back from JSON with every member checked, and compared with a volume to
 * give the steps (snapfs commands) that make it match.
 *
 * Guarantees:
 *   - the text is parsed by jansson (cfg_parse): one object or array and
 *     nothing after it, no key twice, no NUL, valid UTF-8, nesting within
 *     jansson's depth; what is wrong is named with its line and column;
 *   - the document carries its version ("snapfs_config": 1); a newer one
 *     is refused naming both versions, and so is any member this version
 *     does not know, anywhere, naming where: nothing is guessed;
 *   - every value is checked as the commands check it (setting names and
 *     values, schedules, keep, prefixes, hook commands, qtree styles)
 *     before any step is planned;
 *   - a plan creates what the volume lacks and changes what differs; it
 *     never deletes (a policy or qtree the document does not name stays);
 *     what cannot be done is a REFUSE step, so that the caller applies
 *     nothing when anything is refused.
 */
#define _GNU_SOURCE
#include "config/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#include <jansson.h>

/* ---- reading a volume ---- */

static int add_setting(void *arg, const char *name, const char *value,
                       const char *dflt, const char *allowed,
                       const char *what)
{
    struct cfg_volume *v = arg;
    struct cfg_setting s;
    snprintf(s.name, sizeof(s.name), "%s", name);
    snprintf(s.value, sizeof(s.value), "%s", value);
    return array_append(&v->settings, &v->nsettings, &v->capsettings, &s,
                        sizeof(s));
}

static int add_policy(void *arg, const struct sfs_policy *p)
{
    struct cfg_volume *v = arg;
    return array_append(&v->policies, &v->npolicies, &v->cappolicies, p,
                        sizeof(*p));
}

static int add_qtree(void *arg, const struct sfs_qtree_info *q)
{
    struct cfg_volume *v = arg;
    struct cfg_qtree c = { .style = q->style, .quota = q->quota_bytes };
    snprintf(c.name, sizeof(c.name), "%s", q->name);
    return array_append(&v->qtrees, &v->nqtrees, &v->capqtrees, &c,
                        sizeof(c));
}

int cfg_read(struct sfs_store *st, const char *store, struct cfg_volume *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->store, sizeof(out->store), "%s", store);
    sfs_uuid_format(st->super.uuid, out->uuid);
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, false, &txn);
    if (rc)
        return rc;
    rc = sfs_setting_foreach(st, txn, add_setting, out);
    if (!rc)
        rc = sfs_policy_foreach(st, txn, add_policy, out);
    if (!rc)
        rc = sfs_qtree_list(st, txn, SFS_VIEW_LIVE, add_qtree, out);
    mdb_txn_abort(txn);
    return rc;
}

void cfg_volume_free(struct cfg_volume *v)
{
    free(v->settings);
    free(v->policies);
    free(v->qtrees);
}

/* ---- writing ---- */

static void write_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void write_policy(FILE *out, const struct sfs_policy *p, bool last)
{
    char sched[SFS_SCHEDULE_TEXT_MAX];
    sfs_schedule_format(&p->sched, sched, sizeof(sched));
    fprintf(out, "        {\"name\": ");
    write_string(out, p->name);
    fprintf(out, ", \"schedule\": \"%s\", \"keep\": %u, \"prefix\": ", sched,
            p->keep);
    write_string(out, p->prefix);
    if (sfs_hooks_any(&p->hooks)) {
        fprintf(out, ",\n         \"hooks\": {\"pre\": ");
        write_string(out, p->hooks.pre);
        fprintf(out, ", \"post\": ");
        write_string(out, p->hooks.post);
        fprintf(out, ", \"timeout\": %u, \"on_failure\": \"%s\"}",
                p->hooks.timeout ? p->hooks.timeout : SFS_HOOK_TIMEOUT_DEFAULT,
                p->hooks.on_failure == SFS_HOOK_CRASH_CONSISTENT
                    ? "crash-consistent" : "abandon");
    }
    fprintf(out, "}%s\n", last ? "" : ",");
}

static void write_volume(FILE *out, const struct cfg_volume *v, bool last)
{
    fprintf(out, "    {\n      \"store\": ");
    write_string(out, v->store);
    fprintf(out, ",\n      \"uuid\": \"%s\",\n      \"settings\": {", v->uuid);
    for (size_t i = 0; i < v->nsettings; i++) {
        fprintf(out, "%s\n        ", i ? "," : "");
        write_string(out, v->settings[i].name);
        fprintf(out, ": ");
        write_string(out, v->settings[i].value);
    }
    fprintf(out, "\n      },\n      \"policies\": [\n");
    for (size_t i = 0; i < v->npolicies; i++)
        write_policy(out, &v->policies[i], i + 1 == v->npolicies);
    fprintf(out, "      ],\n      \"qtrees\": [\n");
    for (size_t i = 0; i < v->nqtrees; i++) {
        fprintf(out, "        {\"name\": ");
        write_string(out, v->qtrees[i].name);
        fprintf(out, ", \"security_style\": \"%s\", \"quota_bytes\": %" PRIu64
                "}%s\n", sfs_qtree_style_name(v->qtrees[i].style),
                v->qtrees[i].quota, i + 1 == v->nqtrees ? "" : ",");
    }
    fprintf(out, "      ]\n    }%s\n", last ? "" : ",");
}

void cfg_write(FILE *out, const struct cfg_volume *v, size_t n)
{
    fprintf(out, "{\n  \"snapfs_config\": %d,\n  \"volumes\": [\n",
            CONFIG_VERSION);
    for (size_t i = 0; i < n; i++)
        write_volume(out, &v[i], i + 1 == n);
    fprintf(out, "  ]\n}\n");
}

/* ---- reading a document ---- */

struct ctx {
    char *err;
    size_t cap;
};

static int bad(struct ctx *c, const char *where, const char *what)
{
    snprintf(c->err, c->cap, "%s: %s", where, what);
    return -EINVAL;
}

/* J is an object whose keys are all among KNOWN (NULL-terminated). */
static int only_keys(struct ctx *c, const char *where, const json_t *j,
                     const char *const *known)
{
    if (!json_is_object(j))
        return bad(c, where, "an object expected");
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)j, key, value) {
        size_t k = 0;
        while (known[k] && strcmp(known[k], key))
            k++;
        if (!known[k]) {
            char what[300];
            snprintf(what, sizeof(what), "unknown key '%.200s' (this snapfs "
                     "reads configuration version %d)", key, CONFIG_VERSION);
            return bad(c, where, what);
        }
    }
    return 0;
}

static int get_string(struct ctx *c, const char *where, const json_t *o,
                      const char *key, char *out, size_t cap, bool required)
{
    const json_t *j = json_object_get(o, key);
    char w[512];
    snprintf(w, sizeof(w), "%s.%s", where, key);
    if (!j)
        return required ? bad(c, w, "missing") : 0;
    if (!json_is_string(j))
        return bad(c, w, "a string expected");
    if (json_string_length(j) >= cap)
        return bad(c, w, "too long");
    memcpy(out, json_string_value(j), json_string_length(j) + 1);
    return 0;
}

/* A whole number from 0 to MAX: an integer, or a real with no fraction. */
static bool whole_number(const json_t *j, uint64_t max, uint64_t *out)
{
    if (json_is_integer(j)) {
        json_int_t v = json_integer_value(j);
        *out = (uint64_t)v;
        return v >= 0 && (uint64_t)v <= max;
    }
    double d = json_real_value(j);  /* 0 when J is not a real */
    if (!json_is_real(j) || !(d >= 0 && d <= (double)max))
        return false;
    *out = (uint64_t)d;
    return *out <= max && (double)*out == d;
}

static int get_uint(struct ctx *c, const char *where, const json_t *o,
                    const char *key, uint64_t max, uint64_t *out)
{
    const json_t *j = json_object_get(o, key);
    char w[512];
    snprintf(w, sizeof(w), "%s.%s", where, key);
    if (!j)
        return bad(c, w, "missing");
    if (!whole_number(j, max, out))
        return bad(c, w, "a whole number in range expected");
    return 0;
}

static int read_hooks(struct ctx *c, const char *where, const json_t *j,
                      struct sfs_hookspec *h)
{
    static const char *const keys[] = { "pre", "post", "timeout",
                                        "on_failure", NULL };
    char failure[32] = "abandon";
    uint64_t timeout;
    int rc = only_keys(c, where, j, keys);
    if (!rc)
        rc = get_string(c, where, j, "pre", h->pre, sizeof(h->pre), false);
    if (!rc)
        rc = get_string(c, where, j, "post", h->post, sizeof(h->post), false);
    if (!rc)
        rc = get_uint(c, where, j, "timeout", SFS_HOOK_TIMEOUT_MAX, &timeout);
    if (!rc)
        rc = get_string(c, where, j, "on_failure", failure, sizeof(failure),
                        false);
    if (rc)
        return rc;
    h->timeout = (uint32_t)timeout;
    if (!strcmp(failure, "crash-consistent"))
        h->on_failure = SFS_HOOK_CRASH_CONSISTENT;
    else if (strcmp(failure, "abandon"))
        return bad(c, where, "on_failure must be abandon or crash-consistent");
    if (sfs_hooks_valid(h) || !sfs_hooks_any(h))
        return bad(c, where, "hooks need a pre or a post command without "
                             "control characters");
    return 0;
}

static int read_policy(struct ctx *c, const char *where, const json_t *j,
                       struct sfs_policy *p)
{
    static const char *const keys[] = { "name", "schedule", "keep", "prefix",
                                        "hooks", NULL };
    char sched[SFS_SCHEDULE_TEXT_MAX];
    uint64_t keep;
    memset(p, 0, sizeof(*p));
    int rc = only_keys(c, where, j, keys);
    if (!rc)
        rc = get_string(c, where, j, "name", p->name, sizeof(p->name), true);
    if (!rc)
        rc = get_string(c, where, j, "schedule", sched, sizeof(sched), true);
    if (!rc)
        rc = get_uint(c, where, j, "keep", SFS_POLICY_KEEP_MAX, &keep);
    if (!rc)
        rc = get_string(c, where, j, "prefix", p->prefix, sizeof(p->prefix),
                        true);
    if (rc)
        return rc;
    p->keep = (uint32_t)keep;
    if (sfs_policy_name_valid(p->name))
        return bad(c, where, "not a valid policy name");
    if (sfs_schedule_parse(sched, &p->sched))
        return bad(c, where, "not a schedule");
    if (sfs_policy_keep_valid(p->keep) || sfs_policy_prefix_valid(p->prefix))
        return bad(c, where, "keep or prefix out of range");
    const json_t *h = json_object_get(j, "hooks");
    char w[512];
    snprintf(w, sizeof(w), "%s.hooks", where);
    return h ? read_hooks(c, w, h, &p->hooks) : 0;
}

static int read_qtree(struct ctx *c, const char *where, const json_t *j,
                      struct cfg_qtree *q)
{
    static const char *const keys[] = { "name", "security_style",
                                        "quota_bytes", NULL };
    char style[16];
    memset(q, 0, sizeof(*q));
    int rc = only_keys(c, where, j, keys);
    if (!rc)
        rc = get_string(c, where, j, "name", q->name, sizeof(q->name), true);
    if (!rc)
        rc = get_string(c, where, j, "security_style", style, sizeof(style),
                        true);
    if (!rc)
        rc = get_uint(c, where, j, "quota_bytes", UINT64_MAX / 2, &q->quota);
    if (rc)
        return rc;
    if (sfs_qtree_style_parse(style, &q->style))
        return bad(c, where, "security_style must be unix, ntfs or mixed");
    if (!q->name[0] || strchr(q->name, '/'))
        return bad(c, where, "not a qtree name");
    return 0;
}

static int read_settings(struct ctx *c, const char *where, const json_t *j,
                         struct cfg_volume *v)
{
    if (!json_is_object(j))
        return bad(c, where, "an object expected");
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)j, key, value) {
        struct cfg_setting s;
        char w[512];
        snprintf(w, sizeof(w), "%.200s.%.64s", where, key);
        if (!json_is_string(value))
            return bad(c, w, "a string expected");
        if (strlen(key) >= sizeof(s.name) ||
            json_string_length(value) >= sizeof(s.value))
            return bad(c, w, "too long");
        snprintf(s.name, sizeof(s.name), "%s", key);
        snprintf(s.value, sizeof(s.value), "%s", json_string_value(value));
        int rc = sfs_setting_check(s.name, s.value);
        if (rc == -ENOENT)
            return bad(c, w, "no such setting");
        if (rc)
            return bad(c, w, "a value this setting does not allow");
        if (array_append(&v->settings, &v->nsettings, &v->capsettings, &s,
                         sizeof(s)))
            return -ENOMEM;
    }
    return 0;
}

/* The array member KEY of O, each element read by FN into the array. */
static int read_list(struct ctx *c, const char *where, const json_t *o,
                     const char *key, int (*fn)(struct ctx *, const char *,
                                                const json_t *, void *),
                     void *items, size_t *n, size_t *cap, size_t size)
{
    const json_t *j = json_object_get(o, key);
    if (!j)
        return 0;
    char w[512];
    snprintf(w, sizeof(w), "%s.%s", where, key);
    if (!json_is_array(j))
        return bad(c, w, "an array expected");
    for (size_t i = 0; i < json_array_size(j); i++) {
        char e[600];
        union {
            struct sfs_policy p;
            struct cfg_qtree q;
        } buf;
        snprintf(e, sizeof(e), "%s[%zu]", w, i);
        int rc = fn(c, e, json_array_get(j, i), &buf);
        if (!rc)
            rc = array_append(items, n, cap, &buf, size);
        if (rc)
            return rc;
    }
    return 0;
}

static int policy_fn(struct ctx *c, const char *w, const json_t *j, void *out)
{
    return read_policy(c, w, j, out);
}

static int qtree_fn(struct ctx *c, const char *w, const json_t *j, void *out)
{
    return read_qtree(c, w, j, out);
}

static int read_volume(struct ctx *c, const char *where, const json_t *j,
                       struct cfg_volume *v)
{
    static const char *const keys[] = { "store", "uuid", "settings",
                                        "policies", "qtrees", NULL };
    memset(v, 0, sizeof(*v));
    int rc = only_keys(c, where, j, keys);
    if (!rc)
        rc = get_string(c, where, j, "store", v->store, sizeof(v->store),
                        true);
    if (!rc)
        rc = get_string(c, where, j, "uuid", v->uuid, sizeof(v->uuid), false);
    const json_t *s = json_object_get(j, "settings");
    char w[512];
    snprintf(w, sizeof(w), "%s.settings", where);
    if (!rc && s)
        rc = read_settings(c, w, s, v);
    if (!rc)
        rc = read_list(c, where, j, "policies", policy_fn, &v->policies,
                       &v->npolicies, &v->cappolicies, sizeof(*v->policies));
    if (!rc)
        rc = read_list(c, where, j, "qtrees", qtree_fn, &v->qtrees,
                       &v->nqtrees, &v->capqtrees, sizeof(*v->qtrees));
    return rc;
}

/* The parsed document DOC into volumes (see cfg_parse). */
static int read_document(struct ctx *c, const json_t *doc,
                         struct cfg_volume **out, size_t *n)
{
    static const char *const keys[] = { "snapfs_config", "volumes", NULL };
    const json_t *ver = json_object_get(doc, "snapfs_config");
    if (!json_is_number(ver))
        return bad(c, "the file", "not a snapfs configuration (no "
                                  "\"snapfs_config\" version)");
    if (json_number_value(ver) > CONFIG_VERSION) {
        snprintf(c->err, c->cap, "the file is configuration version %g, "
                 "newer than the version %d this snapfs reads; use a newer "
                 "snapfs", json_number_value(ver), CONFIG_VERSION);
        return -EINVAL;
    }
    if (json_number_value(ver) != CONFIG_VERSION)
        return bad(c, "snapfs_config", "not a version this snapfs knows");
    int rc = only_keys(c, "the file", doc, keys);
    const json_t *vols = json_object_get(doc, "volumes");
    if (!rc && !json_is_array(vols))
        rc = bad(c, "volumes", "an array expected");
    size_t capv = 0;
    for (size_t i = 0; !rc && i < json_array_size(vols); i++) {
        struct cfg_volume v;
        char w[64];
        snprintf(w, sizeof(w), "volumes[%zu]", i);
        rc = read_volume(c, w, json_array_get(vols, i), &v);
        if (!rc)
            rc = array_append(out, n, &capv, &v, sizeof(v));
        else
            cfg_volume_free(&v);
    }
    return rc;
}

int cfg_parse(const char *text, size_t len, struct cfg_volume **out,
              size_t *n, char *err, size_t cap)
{
    struct ctx c = { err, cap };
    json_error_t e;
    /* One object or array and nothing after it (jansson's EOF check),
     * no key twice, no NUL in a string or key (no JSON_ALLOW_NUL), valid
     * UTF-8, nesting at most JSON_PARSER_MAX_DEPTH. */
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
    *out = NULL;
    *n = 0;
    if (!doc) {
        snprintf(err, cap, "not JSON at line %d, column %d: %s", e.line,
                 e.column, e.text);
        return -EINVAL;
    }
    int rc = read_document(&c, doc, out, n);
    json_decref(doc);
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            cfg_volume_free(&(*out)[i]);
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- planning ---- */

struct plan {
    struct cfg_step *v;
    size_t n, cap;
};

static struct cfg_step *step(struct plan *pl, int kind, const char *what)
{
    struct cfg_step s = { .kind = kind };
    snprintf(s.what, sizeof(s.what), "%s", what);
    if (array_append(&pl->v, &pl->n, &pl->cap, &s, sizeof(s)))
        return NULL;
    return &pl->v[pl->n - 1];
}

static void arg(struct cfg_step *s, const char *a)
{
    if (s && s->argc < 23)
        s->argv[s->argc++] = strdup(a);
}

static const char *setting_of(const struct cfg_volume *v, const char *name)
{
    for (size_t i = 0; i < v->nsettings; i++)
        if (!strcmp(v->settings[i].name, name))
            return v->settings[i].value;
    return NULL;
}

static void plan_settings(struct plan *pl, const char *vol,
                          const struct cfg_volume *cur,
                          const struct cfg_volume *want)
{
    for (size_t i = 0; i < want->nsettings; i++) {
        const struct cfg_setting *s = &want->settings[i];
        const char *now = setting_of(cur, s->name);
        if (now && !strcmp(now, s->value))
            continue;
        char what[512], assign[2 * SFS_SETTING_VALUE_MAX + 2];
        snprintf(what, sizeof(what), "setting %s: %s -> %s", s->name,
                 now ? now : "(unset)", s->value);
        snprintf(assign, sizeof(assign), "%s=%s", s->name, s->value);
        struct cfg_step *st = step(pl, CFG_CHANGE, what);
        arg(st, "set");
        arg(st, vol);
        arg(st, assign);
    }
}

static void policy_args(struct cfg_step *s, const struct sfs_policy *p,
                        bool clear_hooks)
{
    char sched[SFS_SCHEDULE_TEXT_MAX], keep[16], timeout[16];
    sfs_schedule_format(&p->sched, sched, sizeof(sched));
    snprintf(keep, sizeof(keep), "%u", p->keep);
    arg(s, "--schedule");
    arg(s, sched);
    arg(s, "--keep");
    arg(s, keep);
    arg(s, "--prefix");
    arg(s, p->prefix);
    if (!sfs_hooks_any(&p->hooks) && !clear_hooks)
        return;
    arg(s, "--pre");
    arg(s, p->hooks.pre);
    arg(s, "--post");
    arg(s, p->hooks.post);
    if (!sfs_hooks_any(&p->hooks))
        return;
    snprintf(timeout, sizeof(timeout), "%u",
             p->hooks.timeout ? p->hooks.timeout : SFS_HOOK_TIMEOUT_DEFAULT);
    arg(s, "--hook-timeout");
    arg(s, timeout);
    arg(s, "--on-hook-failure");
    arg(s, p->hooks.on_failure == SFS_HOOK_CRASH_CONSISTENT
               ? "crash-consistent" : "abandon");
}

static bool same_hooks(const struct sfs_hookspec *a,
                       const struct sfs_hookspec *b)
{
    if (!sfs_hooks_any(a) || !sfs_hooks_any(b))
        return sfs_hooks_any(a) == sfs_hooks_any(b);
    unsigned ta = a->timeout ? a->timeout : SFS_HOOK_TIMEOUT_DEFAULT;
    unsigned tb = b->timeout ? b->timeout : SFS_HOOK_TIMEOUT_DEFAULT;
    return !strcmp(a->pre, b->pre) && !strcmp(a->post, b->post) && ta == tb &&
           a->on_failure == b->on_failure;
}

static void plan_policies(struct plan *pl, const char *vol,
                          const struct cfg_volume *cur,
                          const struct cfg_volume *want)
{
    for (size_t i = 0; i < want->npolicies; i++) {
        const struct sfs_policy *p = &want->policies[i], *now = NULL;
        for (size_t k = 0; k < cur->npolicies; k++)
            if (!strcmp(cur->policies[k].name, p->name))
                now = &cur->policies[k];
        for (size_t k = 0; k < cur->npolicies; k++)
            if (strcmp(cur->policies[k].name, p->name) &&
                !strcmp(cur->policies[k].prefix, p->prefix)) {
                char what[512];
                snprintf(what, sizeof(what), "policy %s: its prefix '%s' is "
                         "policy %s's on this volume", p->name, p->prefix,
                         cur->policies[k].name);
                step(pl, CFG_REFUSE, what);
                now = p; /* nothing more for it */
            }
        if (now == p)
            continue;
        char what[512];
        if (now && !memcmp(&now->sched, &p->sched, sizeof(p->sched)) &&
            now->keep == p->keep && !strcmp(now->prefix, p->prefix) &&
            same_hooks(&now->hooks, &p->hooks))
            continue;
        snprintf(what, sizeof(what), "policy %s%s", p->name,
                 now ? ": schedule, keep, prefix or hooks differ" : "");
        struct cfg_step *s = step(pl, now ? CFG_CHANGE : CFG_CREATE, what);
        arg(s, "policy");
        arg(s, now ? "modify" : "create");
        arg(s, vol);
        arg(s, p->name);
        policy_args(s, p, now && sfs_hooks_any(&now->hooks));
    }
}

static void plan_qtrees(struct plan *pl, const char *vol,
                        const struct cfg_volume *cur,
                        const struct cfg_volume *want)
{
    for (size_t i = 0; i < want->nqtrees; i++) {
        const struct cfg_qtree *q = &want->qtrees[i], *now = NULL;
        for (size_t k = 0; k < cur->nqtrees; k++)
            if (!strcmp(cur->qtrees[k].name, q->name))
                now = &cur->qtrees[k];
        if (now && now->style == q->style && now->quota == q->quota)
            continue;
        char what[512], quota[32];
        snprintf(what, sizeof(what), "qtree %s (%s, quota %" PRIu64 ")",
                 q->name, sfs_qtree_style_name(q->style), q->quota);
        if (q->quota)
            snprintf(quota, sizeof(quota), "%" PRIu64, q->quota);
        else
            snprintf(quota, sizeof(quota), "none");
        struct cfg_step *s = step(pl, now ? CFG_CHANGE : CFG_CREATE, what);
        arg(s, "qtree");
        arg(s, now ? "modify" : "create");
        arg(s, vol);
        arg(s, q->name);
        arg(s, "--security-style");
        arg(s, sfs_qtree_style_name(q->style));
        arg(s, "--quota");
        arg(s, quota);
    }
}

int cfg_plan(const char *vol, const struct cfg_volume *cur,
             const struct cfg_volume *want, struct cfg_step **out, size_t *n)
{
    struct plan pl = { 0 };
    plan_settings(&pl, vol, cur, want);
    plan_policies(&pl, vol, cur, want);
    plan_qtrees(&pl, vol, cur, want);
    *out = pl.v;
    *n = pl.n;
    return 0;
}

void cfg_steps_free(struct cfg_step *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < s[i].argc; a++)
            free(s[i].argv[a]);
    free(s);
}
