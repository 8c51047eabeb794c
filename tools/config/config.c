/*
 * config.c - the configuration document: each volume's configuration read
 * from its store (settings, policies with their hooks, qtrees), the whole
 * document (with the host's records of config_host.c and the sealed
 * secrets of config_secret.c) written as JSON and read back with every
 * member checked, and a volume compared with the document to give the
 * steps (snapfs commands) that make it match.
 *
 * Guarantees:
 *   - the text is parsed by jansson (cfg_parse): one object or array and
 *     nothing after it, no key twice, no NUL, valid UTF-8, nesting within
 *     jansson's depth; what is wrong is named with its line and column;
 *   - the document carries its version ("snapfs_config": 2; 1 has
 *     volumes only and is read as well); a newer one
 *     is refused naming both versions, and so is any member this version
 *     does not know, anywhere, naming where: nothing is guessed;
 *   - every value is checked as the commands check it (setting names and
 *     values, schedules, keep, prefixes, hook commands, qtree styles)
 *     before any step is planned; a file with secrets opens only with
 *     its passphrase (else it is refused as a whole);
 *   - a plan creates what the volume lacks, changes what differs and
 *     lists what is already so (CFG_SAME); it
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
#include <openssl/crypto.h>

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

static json_t *policy_json(const struct sfs_policy *p)
{
    char sched[SFS_SCHEDULE_TEXT_MAX];
    sfs_schedule_format(&p->sched, sched, sizeof(sched));
    json_t *j = json_pack("{s:s, s:s, s:I, s:s}", "name", p->name,
                          "schedule", sched, "keep", (json_int_t)p->keep,
                          "prefix", p->prefix);
    if (j && sfs_hooks_any(&p->hooks))
        json_object_set_new(
            j, "hooks",
            json_pack("{s:s, s:s, s:I, s:s}", "pre", p->hooks.pre, "post",
                      p->hooks.post, "timeout",
                      (json_int_t)(p->hooks.timeout ? p->hooks.timeout
                                                    : SFS_HOOK_TIMEOUT_DEFAULT),
                      "on_failure",
                      p->hooks.on_failure == SFS_HOOK_CRASH_CONSISTENT
                          ? "crash-consistent" : "abandon"));
    return j;
}

static json_t *volume_json(const struct cfg_volume *v)
{
    json_t *settings = json_object(), *policies = json_array(),
           *qtrees = json_array();
    for (size_t i = 0; i < v->nsettings; i++)
        json_object_set_new(settings, v->settings[i].name,
                            json_string(v->settings[i].value));
    for (size_t i = 0; i < v->npolicies; i++)
        json_array_append_new(policies, policy_json(&v->policies[i]));
    for (size_t i = 0; i < v->nqtrees; i++)
        json_array_append_new(
            qtrees, json_pack("{s:s, s:s, s:I}", "name", v->qtrees[i].name,
                              "security_style",
                              sfs_qtree_style_name(v->qtrees[i].style),
                              "quota_bytes", (json_int_t)v->qtrees[i].quota));
    return json_pack("{s:s, s:s, s:o, s:o, s:o}", "store", v->store, "uuid",
                     v->uuid, "settings", settings, "policies", policies,
                     "qtrees", qtrees);
}

int cfg_write(FILE *out, const struct cfg_doc *d, const char *pass,
              size_t plen)
{
    json_t *doc = json_pack("{s:i}", "snapfs_config", CONFIG_VERSION);
    json_t *vols = json_array();
    for (size_t i = 0; i < d->nvols; i++)
        json_array_append_new(vols, volume_json(&d->vols[i]));
    json_object_set_new(doc, "volumes", vols);
    if (d->has_host) {
        json_t *host = cfg_host_json(&d->host);
        json_object_update(doc, host);
        json_decref(host);
    }
    int rc = 0;
    if (d->has_secrets) {
        json_t *secrets = cfg_host_secrets_json(&d->host);
        char *plain = json_dumps(secrets, JSON_COMPACT);
        json_t *sealed = plain ? cfg_seal(plain, strlen(plain), pass, plen)
                               : NULL;
        if (plain)
            OPENSSL_cleanse(plain, strlen(plain));
        free(plain);
        json_decref(secrets);
        if (!sealed)
            rc = -EIO;
        else
            json_object_set_new(doc, "secrets", sealed);
    }
    if (!rc && (json_dumpf(doc, out, JSON_INDENT(2)) || fputc('\n', out) < 0
                || fflush(out)))
        rc = -EIO;
    json_decref(doc);
    return rc;
}

/* ---- reading a document ---- */

int cfg_bad(struct cfg_ctx *c, const char *where, const char *what)
{
    snprintf(c->err, c->cap, "%s: %s", where, what);
    return -EINVAL;
}

/* J is an object whose keys are all among KNOWN (NULL-terminated). */
int cfg_only_keys(struct cfg_ctx *c, const char *where, const json_t *j,
                     const char *const *known)
{
    if (!json_is_object(j))
        return cfg_bad(c, where, "an object expected");
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
            return cfg_bad(c, where, what);
        }
    }
    return 0;
}

int cfg_get_string(struct cfg_ctx *c, const char *where, const json_t *o,
                      const char *key, char *out, size_t cap, bool required)
{
    const json_t *j = json_object_get(o, key);
    char w[512];
    snprintf(w, sizeof(w), "%s.%s", where, key);
    if (!j)
        return required ? cfg_bad(c, w, "missing") : 0;
    if (!json_is_string(j))
        return cfg_bad(c, w, "a string expected");
    if (json_string_length(j) >= cap)
        return cfg_bad(c, w, "too long");
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

int cfg_get_uint(struct cfg_ctx *c, const char *where, const json_t *o,
                    const char *key, uint64_t max, uint64_t *out)
{
    const json_t *j = json_object_get(o, key);
    char w[512];
    snprintf(w, sizeof(w), "%s.%s", where, key);
    if (!j)
        return cfg_bad(c, w, "missing");
    if (!whole_number(j, max, out))
        return cfg_bad(c, w, "a whole number in range expected");
    return 0;
}

static int read_hooks(struct cfg_ctx *c, const char *where, const json_t *j,
                      struct sfs_hookspec *h)
{
    static const char *const keys[] = { "pre", "post", "timeout",
                                        "on_failure", NULL };
    char failure[32] = "abandon";
    uint64_t timeout;
    int rc = cfg_only_keys(c, where, j, keys);
    if (!rc)
        rc = cfg_get_string(c, where, j, "pre", h->pre, sizeof(h->pre), false);
    if (!rc)
        rc = cfg_get_string(c, where, j, "post", h->post, sizeof(h->post), false);
    if (!rc)
        rc = cfg_get_uint(c, where, j, "timeout", SFS_HOOK_TIMEOUT_MAX, &timeout);
    if (!rc)
        rc = cfg_get_string(c, where, j, "on_failure", failure, sizeof(failure),
                        false);
    if (rc)
        return rc;
    h->timeout = (uint32_t)timeout;
    if (!strcmp(failure, "crash-consistent"))
        h->on_failure = SFS_HOOK_CRASH_CONSISTENT;
    else if (strcmp(failure, "abandon"))
        return cfg_bad(c, where, "on_failure must be abandon or crash-consistent");
    if (sfs_hooks_valid(h) || !sfs_hooks_any(h))
        return cfg_bad(c, where, "hooks need a pre or a post command without "
                             "control characters");
    return 0;
}

static int read_policy(struct cfg_ctx *c, const char *where, const json_t *j,
                       struct sfs_policy *p)
{
    static const char *const keys[] = { "name", "schedule", "keep", "prefix",
                                        "hooks", NULL };
    char sched[SFS_SCHEDULE_TEXT_MAX];
    uint64_t keep;
    memset(p, 0, sizeof(*p));
    int rc = cfg_only_keys(c, where, j, keys);
    if (!rc)
        rc = cfg_get_string(c, where, j, "name", p->name, sizeof(p->name), true);
    if (!rc)
        rc = cfg_get_string(c, where, j, "schedule", sched, sizeof(sched), true);
    if (!rc)
        rc = cfg_get_uint(c, where, j, "keep", SFS_POLICY_KEEP_MAX, &keep);
    if (!rc)
        rc = cfg_get_string(c, where, j, "prefix", p->prefix, sizeof(p->prefix),
                        true);
    if (rc)
        return rc;
    p->keep = (uint32_t)keep;
    if (sfs_policy_name_valid(p->name))
        return cfg_bad(c, where, "not a valid policy name");
    if (sfs_schedule_parse(sched, &p->sched))
        return cfg_bad(c, where, "not a schedule");
    if (sfs_policy_keep_valid(p->keep) || sfs_policy_prefix_valid(p->prefix))
        return cfg_bad(c, where, "keep or prefix out of range");
    const json_t *h = json_object_get(j, "hooks");
    char w[512];
    snprintf(w, sizeof(w), "%s.hooks", where);
    return h ? read_hooks(c, w, h, &p->hooks) : 0;
}

static int read_qtree(struct cfg_ctx *c, const char *where, const json_t *j,
                      struct cfg_qtree *q)
{
    static const char *const keys[] = { "name", "security_style",
                                        "quota_bytes", NULL };
    char style[16];
    memset(q, 0, sizeof(*q));
    int rc = cfg_only_keys(c, where, j, keys);
    if (!rc)
        rc = cfg_get_string(c, where, j, "name", q->name, sizeof(q->name), true);
    if (!rc)
        rc = cfg_get_string(c, where, j, "security_style", style, sizeof(style),
                        true);
    if (!rc)
        rc = cfg_get_uint(c, where, j, "quota_bytes", UINT64_MAX / 2, &q->quota);
    if (rc)
        return rc;
    if (sfs_qtree_style_parse(style, &q->style))
        return cfg_bad(c, where, "security_style must be unix, ntfs or mixed");
    if (!q->name[0] || strchr(q->name, '/'))
        return cfg_bad(c, where, "not a qtree name");
    return 0;
}

static int read_settings(struct cfg_ctx *c, const char *where, const json_t *j,
                         struct cfg_volume *v)
{
    if (!json_is_object(j))
        return cfg_bad(c, where, "an object expected");
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)j, key, value) {
        struct cfg_setting s;
        char w[512];
        snprintf(w, sizeof(w), "%.200s.%.64s", where, key);
        if (!json_is_string(value))
            return cfg_bad(c, w, "a string expected");
        if (strlen(key) >= sizeof(s.name) ||
            json_string_length(value) >= sizeof(s.value))
            return cfg_bad(c, w, "too long");
        snprintf(s.name, sizeof(s.name), "%s", key);
        snprintf(s.value, sizeof(s.value), "%s", json_string_value(value));
        int rc = sfs_setting_check(s.name, s.value);
        if (rc == -ENOENT)
            return cfg_bad(c, w, "no such setting");
        if (rc)
            return cfg_bad(c, w, "a value this setting does not allow");
        if (array_append(&v->settings, &v->nsettings, &v->capsettings, &s,
                         sizeof(s)))
            return -ENOMEM;
    }
    return 0;
}

int cfg_get_bool(struct cfg_ctx *c, const char *where, const json_t *o,
                 const char *key, bool *out)
{
    const json_t *j = json_object_get(o, key);
    char w[512];
    snprintf(w, sizeof(w), "%s.%s", where, key);
    if (!j)
        return 0;
    if (!json_is_boolean(j))
        return cfg_bad(c, w, "true or false expected");
    *out = json_is_true(j);
    return 0;
}

int cfg_each(struct cfg_ctx *c, const char *where, const json_t *o,
             const char *key,
             int (*fn)(struct cfg_ctx *, const char *, const json_t *,
                       void *),
             void *arg)
{
    const json_t *j = json_object_get(o, key);
    if (!j)
        return 0;
    char w[512];
    snprintf(w, sizeof(w), "%s.%s", where, key);
    if (!json_is_array(j))
        return cfg_bad(c, w, "an array expected");
    for (size_t i = 0; i < json_array_size(j); i++) {
        char e[600];
        snprintf(e, sizeof(e), "%s[%zu]", w, i);
        int rc = fn(c, e, json_array_get(j, i), arg);
        if (rc)
            return rc;
    }
    return 0;
}

static int policy_fn(struct cfg_ctx *c, const char *w, const json_t *j,
                     void *arg)
{
    struct cfg_volume *v = arg;
    struct sfs_policy p;
    int rc = read_policy(c, w, j, &p);
    return rc ? rc : array_append(&v->policies, &v->npolicies,
                                  &v->cappolicies, &p, sizeof(p));
}

static int qtree_fn(struct cfg_ctx *c, const char *w, const json_t *j,
                    void *arg)
{
    struct cfg_volume *v = arg;
    struct cfg_qtree q;
    int rc = read_qtree(c, w, j, &q);
    return rc ? rc : array_append(&v->qtrees, &v->nqtrees, &v->capqtrees,
                                  &q, sizeof(q));
}

static int read_volume(struct cfg_ctx *c, const char *where, const json_t *j,
                       struct cfg_volume *v)
{
    static const char *const keys[] = { "store", "uuid", "settings",
                                        "policies", "qtrees", NULL };
    memset(v, 0, sizeof(*v));
    int rc = cfg_only_keys(c, where, j, keys);
    if (!rc)
        rc = cfg_get_string(c, where, j, "store", v->store, sizeof(v->store),
                            true);
    if (!rc)
        rc = cfg_get_string(c, where, j, "uuid", v->uuid, sizeof(v->uuid),
                            false);
    const json_t *s = json_object_get(j, "settings");
    char w[512];
    snprintf(w, sizeof(w), "%s.settings", where);
    if (!rc && s)
        rc = read_settings(c, w, s, v);
    if (!rc)
        rc = cfg_each(c, where, j, "policies", policy_fn, v);
    if (!rc)
        rc = cfg_each(c, where, j, "qtrees", qtree_fn, v);
    return rc;
}

static int volume_fn(struct cfg_ctx *c, const char *w, const json_t *j,
                     void *arg)
{
    struct cfg_doc *d = arg;
    struct cfg_volume v;
    int rc = read_volume(c, w, j, &v);
    if (!rc)
        rc = array_append(&d->vols, &d->nvols, &d->capvols, &v, sizeof(v));
    if (rc)
        cfg_volume_free(&v);
    return rc;
}

/* The version member of DOC: 0, or why not in C. */
static int check_version(struct cfg_ctx *c, const json_t *doc, int *version)
{
    const json_t *ver = json_object_get(doc, "snapfs_config");
    if (!json_is_number(ver))
        return cfg_bad(c, "the file", "not a snapfs configuration (no "
                                      "\"snapfs_config\" version)");
    if (json_number_value(ver) > CONFIG_VERSION) {
        snprintf(c->err, c->cap, "the file is configuration version %g, "
                 "newer than the version %d this snapfs reads; use a newer "
                 "snapfs", json_number_value(ver), CONFIG_VERSION);
        return -EINVAL;
    }
    if (json_number_value(ver) != 1 && json_number_value(ver) != 2)
        return cfg_bad(c, "snapfs_config", "not a version this snapfs knows");
    *version = (int)json_number_value(ver);
    return 0;
}

/* Version 1 has volumes only; version 2 adds the host's records and the
 * sealed secrets. */
static int check_members(struct cfg_ctx *c, const json_t *doc, int version)
{
    static const char *const v1[] = { "snapfs_config", "volumes", NULL };
    const char *v2[32] = { "snapfs_config", "volumes", "secrets" };
    size_t n = 3;
    for (size_t i = 0; cfg_host_keys[i] && n < 31; i++)
        v2[n++] = cfg_host_keys[i];
    v2[n] = NULL;
    return cfg_only_keys(c, "the file", doc, version == 1 ? v1 : v2);
}

static int read_secrets(struct cfg_ctx *c, const json_t *sealed,
                        struct cfg_doc *d, cfg_pass_fn pass, void *pass_arg)
{
    char buf[CONFIG_PASS_MAX];
    size_t plen = pass ? pass(pass_arg, buf, sizeof(buf)) : 0;
    if (!plen)
        return cfg_bad(c, "secrets", "the file holds sealed secrets and no "
                                     "passphrase was given");
    char *plain = NULL;
    size_t len = 0;
    int rc = cfg_unseal(c, sealed, buf, plen, &plain, &len);
    OPENSSL_cleanse(buf, sizeof(buf));
    if (rc)
        return -EINVAL;
    json_error_t e;
    json_t *j = json_loadb(plain, len, JSON_REJECT_DUPLICATES, &e);
    OPENSSL_cleanse(plain, len);
    free(plain);
    if (!j)
        return cfg_bad(c, "secrets", "the sealed secrets are not JSON");
    rc = cfg_host_secrets_parse(c, j, &d->host);
    json_decref(j);
    d->has_secrets = !rc;
    return rc;
}

/* The parsed document DOC into D (see cfg_parse). */
static int read_document(struct cfg_ctx *c, const json_t *doc,
                         struct cfg_doc *d, cfg_pass_fn pass,
                         void *pass_arg)
{
    int version = 0;
    int rc = check_version(c, doc, &version);
    if (!rc)
        rc = check_members(c, doc, version);
    if (!rc && !json_is_array(json_object_get(doc, "volumes")))
        rc = cfg_bad(c, "volumes", "an array expected");
    if (!rc)
        rc = cfg_each(c, "the file", doc, "volumes", volume_fn, d);
    if (!rc && version >= 2) {
        d->has_host = true;
        rc = cfg_host_parse(c, doc, &d->host);
    }
    const json_t *sealed = json_object_get(doc, "secrets");
    if (!rc && sealed)
        rc = read_secrets(c, sealed, d, pass, pass_arg);
    return rc;
}

int cfg_parse(const char *text, size_t len, struct cfg_doc *d,
              cfg_pass_fn pass, void *pass_arg, char *err, size_t cap)
{
    struct cfg_ctx c = { err, cap };
    json_error_t e;
    /* One object or array and nothing after it (jansson's EOF check),
     * no key twice, no NUL in a string or key (no JSON_ALLOW_NUL), valid
     * UTF-8, nesting at most JSON_PARSER_MAX_DEPTH. */
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
    memset(d, 0, sizeof(*d));
    if (!doc) {
        snprintf(err, cap, "not JSON at line %d, column %d: %s", e.line,
                 e.column, e.text);
        return -EINVAL;
    }
    int rc = read_document(&c, doc, d, pass, pass_arg);
    json_decref(doc);
    if (rc)
        cfg_doc_free(d);
    return rc;
}

void cfg_doc_free(struct cfg_doc *d)
{
    for (size_t i = 0; i < d->nvols; i++)
        cfg_volume_free(&d->vols[i]);
    free(d->vols);
    cfg_host_free(&d->host);
    memset(d, 0, sizeof(*d));
}

/* ---- planning ---- */

struct cfg_step *cfg_step_add(struct cfg_plan *p, int kind,
                              const char *target, const char *what)
{
    struct cfg_step s = { .kind = kind };
    snprintf(s.target, sizeof(s.target), "%s", target);
    snprintf(s.what, sizeof(s.what), "%s", what);
    if (array_append(&p->v, &p->n, &p->cap, &s, sizeof(s)))
        return NULL;
    return &p->v[p->n - 1];
}

void cfg_step_arg(struct cfg_step *s, const char *a)
{
    if (s && s->argc < 23)
        s->argv[s->argc++] = strdup(a);
}

int cfg_step_item(struct cfg_step *s, const void *item, size_t size)
{
    if (!s || !(s->item = malloc(size)))
        return -ENOMEM;
    memcpy(s->item, item, size);
    s->item_size = size;
    return 0;
}

void cfg_plan_free(struct cfg_plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        for (int a = 0; a < p->v[i].argc; a++)
            free(p->v[i].argv[a]);
        if (p->v[i].item)
            OPENSSL_cleanse(p->v[i].item, p->v[i].item_size);
        free(p->v[i].item);
    }
    free(p->v);
    memset(p, 0, sizeof(*p));
}

static const char *setting_of(const struct cfg_volume *v, const char *name)
{
    for (size_t i = 0; i < v->nsettings; i++)
        if (!strcmp(v->settings[i].name, name))
            return v->settings[i].value;
    return NULL;
}

static void plan_settings(struct cfg_plan *pl, const char *vol,
                          const struct cfg_volume *cur,
                          const struct cfg_volume *want)
{
    for (size_t i = 0; i < want->nsettings; i++) {
        const struct cfg_setting *s = &want->settings[i];
        const char *now = setting_of(cur, s->name);
        char what[512], assign[2 * SFS_SETTING_VALUE_MAX + 2];
        if (now && !strcmp(now, s->value)) {
            snprintf(what, sizeof(what), "setting %s: %s", s->name, now);
            cfg_step_add(pl, CFG_SAME, vol, what);
            continue;
        }
        snprintf(what, sizeof(what), "setting %s: %s -> %s", s->name,
                 now ? now : "(unset)", s->value);
        snprintf(assign, sizeof(assign), "%s=%s", s->name, s->value);
        struct cfg_step *st = cfg_step_add(pl, CFG_CHANGE, vol, what);
        cfg_step_arg(st, "set");
        cfg_step_arg(st, vol);
        cfg_step_arg(st, assign);
    }
}

static void policy_args(struct cfg_step *s, const struct sfs_policy *p,
                        bool clear_hooks)
{
    char sched[SFS_SCHEDULE_TEXT_MAX], keep[16], timeout[16];
    sfs_schedule_format(&p->sched, sched, sizeof(sched));
    snprintf(keep, sizeof(keep), "%u", p->keep);
    cfg_step_arg(s, "--schedule");
    cfg_step_arg(s, sched);
    cfg_step_arg(s, "--keep");
    cfg_step_arg(s, keep);
    cfg_step_arg(s, "--prefix");
    cfg_step_arg(s, p->prefix);
    if (!sfs_hooks_any(&p->hooks) && !clear_hooks)
        return;
    cfg_step_arg(s, "--pre");
    cfg_step_arg(s, p->hooks.pre);
    cfg_step_arg(s, "--post");
    cfg_step_arg(s, p->hooks.post);
    if (!sfs_hooks_any(&p->hooks))
        return;
    snprintf(timeout, sizeof(timeout), "%u",
             p->hooks.timeout ? p->hooks.timeout : SFS_HOOK_TIMEOUT_DEFAULT);
    cfg_step_arg(s, "--hook-timeout");
    cfg_step_arg(s, timeout);
    cfg_step_arg(s, "--on-hook-failure");
    cfg_step_arg(s, p->hooks.on_failure == SFS_HOOK_CRASH_CONSISTENT
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

static bool same_policy(const struct sfs_policy *a, const struct sfs_policy *b)
{
    return !memcmp(&a->sched, &b->sched, sizeof(a->sched)) &&
           a->keep == b->keep && !strcmp(a->prefix, b->prefix) &&
           same_hooks(&a->hooks, &b->hooks);
}

/* A step creating (or, when NOW, changing) NAME of VOL with `snapfs CMD
 * create|modify VOL NAME`; the caller adds the options. */
static struct cfg_step *command_step(struct cfg_plan *pl, const void *now,
                                     const char *vol, const char *what,
                                     const char *cmd, const char *name)
{
    struct cfg_step *s =
        cfg_step_add(pl, now ? CFG_CHANGE : CFG_CREATE, vol, what);
    cfg_step_arg(s, cmd);
    cfg_step_arg(s, now ? "modify" : "create");
    cfg_step_arg(s, vol);
    cfg_step_arg(s, name);
    return s;
}

/* Another policy of CUR uses P's prefix: a REFUSE step, true. */
static bool prefix_taken(struct cfg_plan *pl, const char *vol,
                         const struct cfg_volume *cur,
                         const struct sfs_policy *p)
{
    for (size_t k = 0; k < cur->npolicies; k++)
        if (strcmp(cur->policies[k].name, p->name) &&
            !strcmp(cur->policies[k].prefix, p->prefix)) {
            char what[512];
            snprintf(what, sizeof(what), "policy %s", p->name);
            struct cfg_step *s = cfg_step_add(pl, CFG_REFUSE, vol, what);
            if (s)
                snprintf(s->why, sizeof(s->why), "its prefix '%s' is policy "
                         "%s's on this volume", p->prefix,
                         cur->policies[k].name);
            return true;
        }
    return false;
}

static void plan_policies(struct cfg_plan *pl, const char *vol,
                          const struct cfg_volume *cur,
                          const struct cfg_volume *want)
{
    for (size_t i = 0; i < want->npolicies; i++) {
        const struct sfs_policy *p = &want->policies[i], *now = NULL;
        for (size_t k = 0; k < cur->npolicies; k++)
            if (!strcmp(cur->policies[k].name, p->name))
                now = &cur->policies[k];
        if (prefix_taken(pl, vol, cur, p))
            continue;
        char what[512];
        if (now && same_policy(now, p)) {
            snprintf(what, sizeof(what), "policy %s", p->name);
            cfg_step_add(pl, CFG_SAME, vol, what);
            continue;
        }
        snprintf(what, sizeof(what), "policy %s%s", p->name,
                 now ? ": schedule, keep, prefix or hooks differ" : "");
        struct cfg_step *s = command_step(pl, now, vol, what, "policy",
                                          p->name);
        policy_args(s, p, now && sfs_hooks_any(&now->hooks));
    }
}

static void plan_qtrees(struct cfg_plan *pl, const char *vol,
                        const struct cfg_volume *cur,
                        const struct cfg_volume *want)
{
    for (size_t i = 0; i < want->nqtrees; i++) {
        const struct cfg_qtree *q = &want->qtrees[i], *now = NULL;
        for (size_t k = 0; k < cur->nqtrees; k++)
            if (!strcmp(cur->qtrees[k].name, q->name))
                now = &cur->qtrees[k];
        char what[512], quota[32];
        snprintf(what, sizeof(what), "qtree %s (%s, quota %" PRIu64 ")",
                 q->name, sfs_qtree_style_name(q->style), q->quota);
        if (now && now->style == q->style && now->quota == q->quota) {
            cfg_step_add(pl, CFG_SAME, vol, what);
            continue;
        }
        if (q->quota)
            snprintf(quota, sizeof(quota), "%" PRIu64, q->quota);
        else
            snprintf(quota, sizeof(quota), "none");
        struct cfg_step *s = command_step(pl, now, vol, what, "qtree",
                                          q->name);
        cfg_step_arg(s, "--security-style");
        cfg_step_arg(s, sfs_qtree_style_name(q->style));
        cfg_step_arg(s, "--quota");
        cfg_step_arg(s, quota);
    }
}

void cfg_plan_volume(struct cfg_plan *p, const char *vol,
                     const struct cfg_volume *cur,
                     const struct cfg_volume *want)
{
    plan_settings(p, vol, cur, want);
    plan_policies(p, vol, cur, want);
    plan_qtrees(p, vol, cur, want);
}
