/*
 * vault_ops.c - `snapfs vault store|policy|protect|relationship|update|diff`:
 * named object stores, vault policies and vault relationships, as ONTAP's
 * Cloud Object Stores, DailyBackup policy and SnapMirror Cloud
 * relationships (the records: tools/vault/relation.h), and the diff of
 * two vaulted snapshots.
 *
 *   vault store add NAME TARGET [--endpoint URL] [--region R] [--profile P]
 *                   [--passphrase-file F] [--init]
 *   vault store list [--json] | store remove NAME
 *   vault policy create NAME --rule LABEL=KEEP... | list [--json] | delete NAME
 *   vault protect VOLUME... --store NAME [--policy DailyBackup|NAME]
 *   vault relationship list [--json]
 *   vault relationship delete VOLUME --store NAME [--forget]
 *   vault update VOLUME [--store NAME] [--progress]
 *   vault diff TARGET SNAP1 SNAP2 [--json]
 *
 * Guarantees: every check comes before the first change (a store is
 * added only once its vault opens with the passphrase, or was created
 * with --init; protect records every volume's relationship or none); a
 * store or policy in use is not removed, and the message names the
 * relationships; the passphrase is read from a file, the environment or
 * a prompt, kept in the config dir 0600, and never printed.  An update
 * holds its relationship's lock (one at a time), records how it ended
 * (the state `relationship list` shows, a failure's message included),
 * and never forgets a snapshot its policy's labels do not select.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vault_cmd.h"

#define ARGS_MAX 64

/* ---- arguments ---- */

struct ops_args {
    const char *cmd;
    const char *pos[ARGS_MAX];
    int npos;
    const char *endpoint, *region, *profile, *pass_file, *store, *policy;
    const char *rules[VAULT_KEEP_LABELS];
    int nrules;
    bool json, init, forget, progress;
};

/* The options of ALLOWED ("endpoint region json ..." words) and
 * positional arguments, MIN to MAX of them. */
static void parse(struct ops_args *a, const char *cmd, const char *allowed,
                  int min, int max, const char *usage, int argc, char **argv)
{
    memset(a, 0, sizeof(*a));
    a->cmd = cmd;
    struct { const char *name; const char **slot; } vals[] = {
        { "endpoint", &a->endpoint }, { "region", &a->region },
        { "profile", &a->profile }, { "passphrase-file", &a->pass_file },
        { "store", &a->store }, { "policy", &a->policy },
    };
    struct { const char *name; bool *flag; } flags[] = {
        { "json", &a->json }, { "init", &a->init }, { "forget", &a->forget },
        { "progress", &a->progress },
    };
    for (int i = 1; i < argc; i++) {
        bool done = false;
        for (size_t k = 0; !done && k < sizeof(vals) / sizeof(vals[0]); k++) {
            char opt[32];
            snprintf(opt, sizeof(opt), "--%s", vals[k].name);
            const char *v;
            if (strstr(allowed, vals[k].name) &&
                (v = option_value(cmd, opt, argc, argv, &i))) {
                *vals[k].slot = v;
                done = true;
            }
        }
        for (size_t k = 0; !done && k < sizeof(flags) / sizeof(flags[0]); k++)
            if (strstr(allowed, flags[k].name) && argv[i][0] == '-' &&
                argv[i][1] == '-' && !strcmp(argv[i] + 2, flags[k].name))
                done = *flags[k].flag = true;
        const char *v;
        if (!done && strstr(allowed, "rule") &&
            (v = option_value(cmd, "--rule", argc, argv, &i))) {
            if (a->nrules == VAULT_KEEP_LABELS)
                die_usage(cmd, "at most %d --rule", VAULT_KEEP_LABELS);
            a->rules[a->nrules++] = v;
            done = true;
        }
        if (done)
            continue;
        if ((argv[i][0] == '-' && argv[i][1]) || a->npos == max)
            die_usage(cmd, "usage: snapfs %s %s", cmd, usage);
        a->pos[a->npos++] = argv[i];
    }
    if (a->npos < min)
        die_usage(cmd, "usage: snapfs %s %s", cmd, usage);
}

static void check_name(const char *cmd, const char *what, const char *name)
{
    if (!vault_conf_name_valid(name))
        die_usage(cmd, "%s '%s': give 1 to %d letters, digits, '.', '_' or "
                  "'-' (not first: '.' or '-')", what, name,
                  VAULT_CONF_NAME_MAX);
}

static void uuid_hex(const uint8_t u[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", u[i]);
}

static void load_store(const char *cmd, const char *name,
                       struct vault_store_conf *s)
{
    int rc = vault_store_load(name, s);
    if (rc == -ENOENT)
        die(cmd, "no object store named %s (see snapfs vault store list); "
            "nothing was changed", name);
    if (rc)
        die(cmd, "object store %s: %s", name, strerror(-rc));
}

static void load_policy(const char *cmd, const char *name,
                        struct vault_rel_policy *p)
{
    int rc = vault_rel_policy_load(name, p);
    if (rc == -ENOENT)
        die(cmd, "no vault policy named %s (DailyBackup, or one of snapfs "
            "vault policy list); nothing was changed", name);
    if (rc)
        die(cmd, "vault policy %s: %s", name, strerror(-rc));
}

static void all_relationships(const char *cmd, struct vault_relationship **r,
                              size_t *n)
{
    int rc = vault_rel_all(r, n);
    if (rc)
        die(cmd, "%s: %s", vault_conf_dir(), strerror(-rc));
}

/* "PATH (UUID8), ..." of the relationships whose FIELD is NAME (store or
 * policy) into OUT; how many. */
static int users_of(const char *cmd, bool by_store, const char *name,
                    char *out, size_t cap)
{
    struct vault_relationship *r;
    size_t n, len = 0;
    int count = 0;
    all_relationships(cmd, &r, &n);
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(by_store ? r[i].store : r[i].policy, name))
            continue;
        char hex[33];
        uuid_hex(r[i].volume, hex);
        if (len < cap)
            len += (size_t)snprintf(out + len, cap - len, "%s%s (%.8s)",
                                    count ? ", " : "", r[i].path, hex);
        count++;
    }
    free(r);
    return count;
}

/* ---- stores ---- */

/* The vault at S opens with PASS (or is made, with INIT). */
static void check_vault(const char *cmd, const struct vault_store_conf *s,
                        const char *pass, size_t plen, bool init, char id[9])
{
    struct objstore_opts so = vault_store_opts(s);
    struct vault *v;
    int rc = init ? vault_init(s->target, &so, pass, plen, NULL, &v)
                  : vault_connect(s->target, &so, &v);
    if (!rc && !init)
        rc = vault_open_keys(v, pass, plen);
    if (rc) {
        char why[1200];
        const char *w = v ? vault_why(v) : NULL;
        snprintf(why, sizeof(why), "%s", w && *w ? w : strerror(-rc));
        vault_close(v);
        die(cmd, "%s; the store was not added", why);
    }
    char hex[VC_HEX];
    vault_id_hex(v, hex);
    snprintf(id, 9, "%.8s", hex);
    vault_close(v);
}

static int store_add(int argc, char **argv)
{
    struct ops_args a;
    const char *usage = "NAME TARGET [--endpoint URL] [--region R] "
                        "[--profile P] [--passphrase-file F] [--init]";
    parse(&a, "vault store add", "endpoint region profile passphrase-file init",
          2, 2, usage, argc, argv);
    const char *name = a.pos[0], *target = a.pos[1];
    check_name(a.cmd, "store name", name);
    if (!strstr(target, "://"))
        die_usage(a.cmd, "%s: give the target as s3://BUCKET[/PREFIX] or "
                  "file:///PATH", target);
    struct vault_store_conf s;
    if (!vault_store_load(name, &s))
        die(a.cmd, "object store %s exists already (%s); nothing was changed",
            name, s.target);
    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "%s", name);
    snprintf(s.target, sizeof(s.target), "%s", target);
    snprintf(s.endpoint, sizeof(s.endpoint), "%s", a.endpoint ? a.endpoint : "");
    snprintf(s.region, sizeof(s.region), "%s", a.region ? a.region : "");
    snprintf(s.profile, sizeof(s.profile), "%s", a.profile ? a.profile : "");
    s.created = (int64_t)time(NULL);
    char pass[VAULT_PASS_MAX], id[9];
    size_t plen = vault_cmd_passphrase(a.cmd, a.pass_file, a.init, pass);
    check_vault(a.cmd, &s, pass, plen, a.init, id);
    int rc = vault_store_add(&s, pass, plen);
    vc_wipe(pass, sizeof(pass));
    if (rc == -EEXIST)
        die(a.cmd, "object store %s was added meanwhile; nothing was changed",
            name);
    if (rc)
        die(a.cmd, "%s: %s; the store was not added", vault_conf_dir(),
            strerror(-rc));
    printf("snapfs: added object store %s: %s (%s vault %s)\n", name, target,
           a.init ? "new" : "its", id);
    return 0;
}

static void json_opt(const char *key, const char *v)
{
    printf(",\"%s\":", key);
    if (*v)
        print_json_string(v);
    else
        printf("null");
}

static int store_list(int argc, char **argv)
{
    struct ops_args a;
    parse(&a, "vault store list", "json", 0, 0, "[--json]", argc, argv);
    char **names;
    size_t n;
    int rc = vault_store_names(&names, &n);
    if (rc)
        die(a.cmd, "%s: %s", vault_conf_dir(), strerror(-rc));
    if (a.json)
        printf("[");
    else
        printf("%-16s %-40s %-24s %-10s %-10s %s\n", "NAME", "TARGET",
               "ENDPOINT", "REGION", "PROFILE", "RELATIONSHIPS");
    for (size_t i = 0, shown = 0; i < n; i++) {
        struct vault_store_conf s;
        char users[64];
        if (vault_store_load(names[i], &s))
            continue;
        int used = users_of(a.cmd, true, s.name, users, sizeof(users));
        if (a.json) {
            printf("%s{\"name\":", shown++ ? "," : "");
            print_json_string(s.name);
            json_opt("target", s.target);
            json_opt("endpoint", s.endpoint);
            json_opt("region", s.region);
            json_opt("profile", s.profile);
            printf(",\"created\":%lld,\"relationships\":%d}",
                   (long long)s.created, used);
        } else {
            printf("%-16s %-40s %-24s %-10s %-10s %d\n", s.name, s.target,
                   s.endpoint[0] ? s.endpoint : "-",
                   s.region[0] ? s.region : "-",
                   s.profile[0] ? s.profile : "-", used);
        }
    }
    if (a.json)
        printf("]\n");
    vault_conf_names_free(names, n);
    return 0;
}

static int store_remove(int argc, char **argv)
{
    struct ops_args a;
    parse(&a, "vault store remove", "", 1, 1, "NAME", argc, argv);
    struct vault_store_conf s;
    load_store(a.cmd, a.pos[0], &s);
    char users[2048];
    int used = users_of(a.cmd, true, s.name, users, sizeof(users));
    if (used)
        die(a.cmd, "object store %s is used by %d relationship%s: %s; delete "
            "%s first (snapfs vault relationship delete VOLUME --store %s); "
            "nothing was changed", s.name, used, used == 1 ? "" : "s", users,
            used == 1 ? "it" : "them", s.name);
    int rc = vault_store_remove(s.name);
    if (rc)
        die(a.cmd, "object store %s: %s", s.name, strerror(-rc));
    printf("snapfs: removed object store %s (the vault at %s is left as it "
           "is)\n", s.name, s.target);
    return 0;
}

int cmd_vault_store(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "add"))
        return store_add(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "list"))
        return store_list(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "remove"))
        return store_remove(argc - 1, argv + 1);
    die_usage("vault store", "give add, list or remove");
}

/* ---- policies ---- */

/* --rule LABEL=KEEP into P. */
static void add_rule(const char *cmd, struct vault_rel_policy *p,
                     const char *rule)
{
    const char *eq = strrchr(rule, '=');
    char *end;
    unsigned long keep = eq ? strtoul(eq + 1, &end, 10) : 0;
    size_t len = eq ? (size_t)(eq - rule) : 0;
    if (!eq || !len || len > SFS_NAME_MAX || !eq[1] || *end || !keep ||
        keep > 100000)
        die_usage(cmd, "--rule %s: give LABEL=KEEP (KEEP 1 to 100000)", rule);
    char label[SFS_NAME_MAX + 1];
    snprintf(label, sizeof(label), "%.*s", (int)len, rule);
    for (const char *c = label; *c; c++)
        if (*c == '.' || (unsigned char)*c < 0x20 || *c == '/')
            die_usage(cmd, "--rule %s: a label has no '.', '/' or control "
                      "characters (it is a snapshot name's part before its "
                      "first dot)", rule);
    for (uint32_t i = 0; i < p->keep.nlabels; i++)
        if (!strcmp(p->keep.labels[i].label, label))
            die_usage(cmd, "--rule: label %s is given twice", label);
    uint32_t i = p->keep.nlabels++;
    snprintf(p->keep.labels[i].label, sizeof(p->keep.labels[i].label), "%s",
             label);
    p->keep.labels[i].keep = (uint32_t)keep;
}

static int policy_create(int argc, char **argv)
{
    struct ops_args a;
    parse(&a, "vault policy create", "rule", 1, 1,
          "NAME --rule LABEL=KEEP [--rule LABEL=KEEP]...", argc, argv);
    const char *name = a.pos[0];
    check_name(a.cmd, "policy name", name);
    if (!a.nrules)
        die_usage(a.cmd, "give at least one --rule LABEL=KEEP");
    struct vault_rel_policy p;
    if (!vault_rel_policy_load(name, &p))
        die(a.cmd, "vault policy %s exists already%s; nothing was changed",
            name, p.builtin ? " (built in)" : "");
    memset(&p, 0, sizeof(p));
    snprintf(p.name, sizeof(p.name), "%s", name);
    for (int i = 0; i < a.nrules; i++)
        add_rule(a.cmd, &p, a.rules[i]);
    int rc = vault_rel_policy_create(&p);
    if (rc)
        die(a.cmd, "vault policy %s: %s", name,
            rc == -EEXIST ? "was created meanwhile" : strerror(-rc));
    char rules[1024];
    vault_rel_policy_rules(&p, rules, sizeof(rules));
    printf("snapfs: created vault policy %s: %s\n", name, rules);
    return 0;
}

static void policy_line(const char *cmd, const struct vault_rel_policy *p,
                        bool json, bool first)
{
    char rules[1024], users[64];
    vault_rel_policy_rules(p, rules, sizeof(rules));
    int used = users_of(cmd, false, p->name, users, sizeof(users));
    if (!json) {
        printf("%-16s %-8s %-40s %d\n", p->name, p->builtin ? "yes" : "no",
               rules, used);
        return;
    }
    printf("%s{\"name\":", first ? "" : ",");
    print_json_string(p->name);
    printf(",\"builtin\":%s,\"rules\":[", p->builtin ? "true" : "false");
    for (uint32_t i = 0; i < p->keep.nlabels; i++) {
        printf("%s{\"label\":", i ? "," : "");
        print_json_string(p->keep.labels[i].label);
        printf(",\"keep\":%u}", p->keep.labels[i].keep);
    }
    printf("],\"relationships\":%d}", used);
}

static int policy_list(int argc, char **argv)
{
    struct ops_args a;
    parse(&a, "vault policy list", "json", 0, 0, "[--json]", argc, argv);
    char **names;
    size_t n;
    int rc = vault_rel_policy_names(&names, &n);
    if (rc)
        die(a.cmd, "%s: %s", vault_conf_dir(), strerror(-rc));
    if (a.json)
        printf("[");
    else
        printf("%-16s %-8s %-40s %s\n", "NAME", "BUILTIN", "RULES (LABEL=KEEP)",
               "RELATIONSHIPS");
    struct vault_rel_policy p;
    vault_rel_policy_load(VAULT_DAILY_BACKUP, &p);
    policy_line(a.cmd, &p, a.json, true);
    for (size_t i = 0; i < n; i++)
        if (!vault_rel_policy_load(names[i], &p))
            policy_line(a.cmd, &p, a.json, false);
    if (a.json)
        printf("]\n");
    vault_conf_names_free(names, n);
    return 0;
}

static int policy_delete(int argc, char **argv)
{
    struct ops_args a;
    parse(&a, "vault policy delete", "", 1, 1, "NAME", argc, argv);
    struct vault_rel_policy p;
    load_policy(a.cmd, a.pos[0], &p);
    if (p.builtin)
        die(a.cmd, "vault policy %s is built in and cannot be deleted",
            p.name);
    char users[2048];
    int used = users_of(a.cmd, false, p.name, users, sizeof(users));
    if (used)
        die(a.cmd, "vault policy %s is used by %d relationship%s: %s; "
            "nothing was changed", p.name, used, used == 1 ? "" : "s", users);
    int rc = vault_rel_policy_delete(p.name);
    if (rc)
        die(a.cmd, "vault policy %s: %s", p.name, strerror(-rc));
    printf("snapfs: deleted vault policy %s\n", p.name);
    return 0;
}

int cmd_vault_policy(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "create"))
        return policy_create(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "list"))
        return policy_list(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "delete"))
        return policy_delete(argc - 1, argv + 1);
    die_usage("vault policy", "give create, list or delete");
}

/* ---- relationships ---- */

/* The volume ARG's UUID and store directory (dies unless it is one). */
static void volume_identity(const char *cmd, const char *arg, uint8_t uuid[16],
                            char *path, size_t cap)
{
    struct volume vol;
    volume_open(&vol, cmd, arg);
    struct sfs_store *st;
    int rc = sfs_open(vol.store, SFS_OPEN_RDONLY, &st);
    if (rc)
        die(cmd, "%s: %s", arg, open_error(rc));
    memcpy(uuid, st->super.uuid, 16);
    sfs_close(st);
    snprintf(path, cap, "%s", vol.store);
    free(vol.store);
    free(vol.mountpoint);
}

static int cmd_protect(int argc, char **argv)
{
    struct ops_args a;
    parse(&a, "vault protect", "store policy", 1, ARGS_MAX,
          "VOLUME... --store NAME [--policy DailyBackup|NAME]", argc, argv);
    if (!a.store)
        die_usage(a.cmd, "give the object store: --store NAME");
    struct vault_store_conf s;
    struct vault_rel_policy p;
    load_store(a.cmd, a.store, &s);
    load_policy(a.cmd, a.policy ? a.policy : VAULT_DAILY_BACKUP, &p);
    struct vault_relationship r[ARGS_MAX];
    for (int i = 0; i < a.npos; i++) { /* every check first */
        memset(&r[i], 0, sizeof(r[i]));
        volume_identity(a.cmd, a.pos[i], r[i].volume, r[i].path,
                        sizeof(r[i].path));
        for (int j = 0; j < i; j++)
            if (!memcmp(r[j].volume, r[i].volume, 16))
                die(a.cmd, "%s and %s are the same volume; nothing was "
                    "changed", a.pos[j], a.pos[i]);
        struct vault_relationship old;
        if (!vault_rel_load(r[i].volume, s.name, &old))
            die(a.cmd, "%s is protected in object store %s already (policy "
                "%s); nothing was changed", a.pos[i], s.name, old.policy);
        snprintf(r[i].store, sizeof(r[i].store), "%s", s.name);
        snprintf(r[i].policy, sizeof(r[i].policy), "%s", p.name);
        r[i].created = (int64_t)time(NULL);
    }
    for (int i = 0; i < a.npos; i++) {
        int rc = vault_rel_create(&r[i]);
        if (rc) {
            for (int j = 0; j < i; j++)
                vault_rel_delete(&r[j]);
            die(a.cmd, "%s: %s; nothing was changed", a.pos[i],
                rc == -EEXIST ? "was protected meanwhile" : strerror(-rc));
        }
    }
    char rules[1024];
    vault_rel_policy_rules(&p, rules, sizeof(rules));
    for (int i = 0; i < a.npos; i++)
        printf("snapfs: %s is protected in object store %s, policy %s (%s)\n",
               a.pos[i], s.name, p.name, rules);
    printf("  the first update backs up its labelled snapshots: snapfs vault "
           "update VOLUME (or the mounted volume's policies, when they take "
           "one)\n");
    return 0;
}

int cmd_vault_protect(int argc, char **argv)
{
    return cmd_protect(argc, argv);
}

/* The state word: transferring while an update holds the lock. */
static const char *state_word(const struct vault_relationship *r,
                              const struct vault_rel_state *st)
{
    if (vault_rel_running(r))
        return "transferring";
    return st->state[0] ? st->state : "uninitialized";
}

static void rel_json(const struct vault_relationship *r,
                     const struct vault_rel_state *st, int64_t now,
                     bool first)
{
    char uuid[SFS_UUID_TEXT];
    sfs_uuid_format(r->volume, uuid);
    printf("%s{\"source\":", first ? "" : ",");
    print_json_string(r->path);
    printf(",\"volume\":\"%s\",\"store\":", uuid);
    print_json_string(r->store);
    printf(",\"policy\":");
    print_json_string(r->policy);
    printf(",\"state\":\"%s\",\"last_snapshot\":", state_word(r, st));
    if (st->last_snapshot[0]) {
        print_json_string(st->last_snapshot);
        printf(",\"last_snapshot_time\":%lld,\"lag_seconds\":%lld",
               (long long)st->last_ctime, (long long)(now - st->last_ctime));
    } else {
        printf("null,\"last_snapshot_time\":null,\"lag_seconds\":null");
    }
    printf(",\"last_snapshot_bytes\":%llu,\"last_update\":%lld,"
           "\"last_bytes\":%llu,\"total_bytes\":%llu,\"updates\":%llu,"
           "\"error\":", (unsigned long long)st->last_logical,
           (long long)st->last_update, (unsigned long long)st->last_bytes,
           (unsigned long long)st->total_bytes,
           (unsigned long long)st->updates);
    if (st->error[0])
        print_json_string(st->error);
    else
        printf("null");
    printf("}");
}

static void rel_text(const struct vault_relationship *r,
                     const struct vault_rel_state *st, int64_t now)
{
    char when[32] = "-", lag[32] = "-", bytes[32], total[32];
    if (st->last_snapshot[0]) {
        vault_local_time(st->last_ctime, when, sizeof(when));
        int64_t l = now - st->last_ctime;
        snprintf(lag, sizeof(lag), "%lld:%02lld:%02lld",
                 (long long)(l / 3600), (long long)(l / 60 % 60),
                 (long long)(l % 60));
    }
    format_bytes(st->last_bytes, bytes, sizeof(bytes));
    format_bytes(st->total_bytes, total, sizeof(total));
    printf("%-28s %-12s %-12s %-13s %-28s %-19s %10s %11s %11s\n", r->path,
           r->store, r->policy, state_word(r, st),
           st->last_snapshot[0] ? st->last_snapshot : "-", when, lag, bytes,
           total);
    if (st->error[0])
        printf("  last error: %s\n", st->error);
}

static int rel_list(int argc, char **argv)
{
    struct ops_args a;
    parse(&a, "vault relationship list", "json", 0, 0, "[--json]", argc,
          argv);
    struct vault_relationship *r;
    size_t n;
    all_relationships(a.cmd, &r, &n);
    int64_t now = (int64_t)time(NULL);
    if (a.json)
        printf("[");
    else
        printf("%-28s %-12s %-12s %-13s %-28s %-19s %10s %11s %11s\n",
               "SOURCE", "STORE", "POLICY", "STATE", "LAST SNAPSHOT", "CREATED",
               "LAG", "LAST BYTES", "TOTAL");
    for (size_t i = 0; i < n; i++) {
        struct vault_rel_state st;
        vault_rel_state_load(&r[i], &st);
        if (a.json)
            rel_json(&r[i], &st, now, i == 0);
        else
            rel_text(&r[i], &st, now);
    }
    if (a.json)
        printf("]\n");
    free(r);
    return 0;
}

/* The relationships of volume ARG (in STORE, if given): by the volume's
 * UUID when it opens, else by the recorded path or UUID (a volume that is
 * gone).  Dies when there is none. */
static size_t find_relationships(const char *cmd, const char *arg,
                                 const char *store,
                                 struct vault_relationship **out)
{
    struct vault_relationship *r;
    size_t n, m = 0;
    all_relationships(cmd, &r, &n);
    uint8_t uuid[16];
    char path[PATH_MAX];
    bool have_uuid = false;
    struct stat sb;
    if (!stat(arg, &sb)) { /* else a volume that is gone */
        volume_identity(cmd, arg, uuid, path, sizeof(path));
        have_uuid = true;
    }
    for (size_t i = 0; i < n; i++) {
        char hex[33], dashed[SFS_UUID_TEXT];
        uuid_hex(r[i].volume, hex);
        sfs_uuid_format(r[i].volume, dashed);
        bool same = have_uuid ? !memcmp(r[i].volume, uuid, 16)
                              : !strcmp(r[i].path, arg) ||
                                    !strcmp(hex, arg) || !strcmp(dashed, arg);
        if (same && (!store || !strcmp(r[i].store, store)))
            r[m++] = r[i];
    }
    if (!m) {
        if (store)
            die(cmd, "%s is not protected in object store %s (see snapfs "
                "vault relationship list); nothing was changed", arg, store);
        die(cmd, "%s is not protected (snapfs vault protect %s --store "
            "NAME); nothing was changed", arg, arg);
    }
    *out = r;
    return m;
}

static int rel_delete(int argc, char **argv)
{
    struct ops_args a;
    parse(&a, "vault relationship delete", "store forget", 1, 1,
          "VOLUME --store NAME [--forget]", argc, argv);
    if (!a.store)
        die_usage(a.cmd, "give the object store: --store NAME");
    struct vault_relationship *r;
    find_relationships(a.cmd, a.pos[0], a.store, &r);
    int pid, fd = vault_rel_lock(&r[0], &pid);
    if (fd == -EBUSY)
        die(a.cmd, "an update of %s to object store %s runs (pid %d); "
            "nothing was changed", a.pos[0], a.store, pid);
    if (fd < 0)
        die(a.cmd, "%s: %s", vault_conf_dir(), strerror(-fd));
    int forgotten = 0;
    if (a.forget) {
        struct vault_where w;
        vault_where_resolve(a.cmd, a.store, NULL, NULL, NULL, &w);
        struct vault *v = vault_cmd_open(a.cmd, &w, WRITE_LOCK, "forget");
        struct vault_snapshot *s;
        size_t n, bad;
        int rc = vault_snapshots(v, &s, &n, &bad);
        for (size_t i = 0; !rc && i < n; i++)
            if (!memcmp(s[i].m.volume, r[0].volume, 16)) {
                rc = vault_forget(v, &s[i]);
                forgotten += !rc;
            }
        if (rc)
            vault_cmd_die(a.cmd, v, rc);
        free(s);
        vault_cmd_close(v);
    }
    int rc = vault_rel_delete(&r[0]);
    close(fd);
    if (rc)
        die(a.cmd, "%s: %s", vault_conf_dir(), strerror(-rc));
    printf("snapfs: deleted the relationship of %s with object store %s\n",
           r[0].path, a.store);
    if (a.forget)
        printf("  forgot its %d vaulted snapshot%s; their data stays until "
               "snapfs vault prune %s\n", forgotten, forgotten == 1 ? "" : "s",
               a.store);
    else
        printf("  its vaulted snapshots stay in the store (snapfs vault list "
               "%s)\n", a.store);
    free(r);
    return 0;
}

int cmd_vault_relationship(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "list"))
        return rel_list(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "delete"))
        return rel_delete(argc - 1, argv + 1);
    die_usage("vault relationship", "give list or delete");
}

/* ---- update ---- */

struct sources {
    struct vault_rel_source *v;
    size_t n, cap;
};

static int source_cb(void *arg, const struct sfs_snap_rec *s)
{
    struct sources *src = arg;
    struct vault_rel_source one = { .epoch = s->epoch,
                                    .ctime_sec = s->ctime_sec,
                                    .ctime_nsec = s->ctime_nsec };
    snprintf(one.name, sizeof(one.name), "%s", s->name);
    return array_append(&src->v, &src->n, &src->cap, &one, sizeof(one));
}

static int by_epoch(const void *a, const void *b)
{
    const struct vault_rel_source *x = a, *y = b;
    return x->epoch < y->epoch ? -1 : x->epoch > y->epoch;
}

/* The relationship being updated, for the failure record die() makes. */
static struct {
    const struct vault_relationship *r;
    struct vault_rel_state st;
} updating;

static void record_failure(const char *cmd, const char *msg)
{
    (void)cmd;
    if (!updating.r)
        return;
    snprintf(updating.st.state, sizeof(updating.st.state), "failed");
    snprintf(updating.st.error, sizeof(updating.st.error), "%s", msg);
    updating.st.last_update = (int64_t)time(NULL);
    vault_rel_state_store(updating.r, &updating.st);
    updating.r = NULL;
}

/* The vault's snapshots (dies). */
static void vaulted(const char *cmd, struct vault *v,
                    struct vault_snapshot **s, size_t *n)
{
    size_t bad;
    int rc = vault_snapshots(v, s, n, &bad);
    if (rc)
        vault_cmd_die(cmd, v, rc);
}

/* Back up what the policy selects that the vault lacks, oldest first:
 * how many, their uploaded bytes into *BYTES. */
static int back_up_selected(const char *cmd, const struct vault_cmd_backup *b,
                            struct vault *v, const char *store,
                            const struct vault_relationship *r,
                            const struct vault_rel_policy *p, uint64_t *bytes)
{
    struct sources src = { 0 };
    MDB_txn *txn;
    int rc = sfs_txn_begin(b->st, NULL, false, &txn);
    if (!rc) {
        rc = sfs_snap_foreach(b->st, txn, source_cb, &src);
        mdb_txn_abort(txn);
    }
    if (rc < 0)
        die(cmd, "%s: listing snapshots: %s", b->vol->arg, strerror(-rc));
    if (src.n)
        qsort(src.v, src.n, sizeof(*src.v), by_epoch);
    struct vault_snapshot *vs;
    size_t nv;
    vaulted(cmd, v, &vs, &nv);
    bool *pick = calloc(src.n + 1, sizeof(*pick));
    int n = pick ? vault_rel_to_back_up(p, r->volume, src.v, src.n, vs, nv,
                                        pick)
                 : -ENOMEM;
    free(vs);
    if (n < 0)
        die(cmd, "%s", strerror(-n));
    struct vault_cmd_backup one = *b;
    char what[SFS_NAME_MAX + 48];
    one.what = what;
    for (size_t i = 0, k = 0; i < src.n; i++) {
        if (!pick[i])
            continue;
        struct vault_backup_result res;
        double secs;
        snprintf(what, sizeof(what), "backup %s (%zu of %d)", src.v[i].name,
                 ++k, n);
        rc = vault_cmd_backup_one(&one, v, src.v[i].name, &res, &secs);
        if (rc) {
            const char *why = vault_cmd_backup_error(rc);
            if (why)
                die(cmd, "%s", why);
            vault_cmd_die(cmd, v, rc);
        }
        vault_cmd_print_backup(store, b->vol->arg, &res, secs);
        fflush(stdout);
        *bytes += res.uploaded;
    }
    free(pick);
    free(src.v);
    return n;
}

/* The policy's retention in the vault; the newest snapshot of the volume
 * the vault keeps into ST.  How many were forgotten. */
static int retain(const char *cmd, struct vault *v,
                  const struct vault_relationship *r,
                  const struct vault_rel_policy *p, struct vault_rel_state *st)
{
    struct vault_snapshot *vs;
    size_t nv;
    vaulted(cmd, v, &vs, &nv);
    bool *forget = calloc(nv + 1, sizeof(*forget));
    int n = forget ? vault_rel_to_forget(p, r->volume, vs, nv, forget)
                   : -ENOMEM;
    if (n < 0)
        die(cmd, "%s", strerror(-n));
    const struct vault_snapshot *newest = NULL;
    for (size_t i = 0; i < nv; i++) {
        if (forget[i]) {
            char id[9];
            int rc = vault_forget(v, &vs[i]);
            if (rc)
                vault_cmd_die(cmd, v, rc);
            short_vault_id(vs[i].id, id);
            printf("snapfs: forgot snapshot %s (%s): policy %s keeps fewer "
                   "of its label\n", vs[i].m.name, id, p->name);
        } else if (!memcmp(vs[i].m.volume, r->volume, 16) &&
                   (!newest || vs[i].m.epoch > newest->m.epoch)) {
            newest = &vs[i];
        }
    }
    if (newest) {
        snprintf(st->last_snapshot, sizeof(st->last_snapshot), "%s",
                 newest->m.name);
        st->last_ctime = newest->m.ctime_sec;
        st->last_epoch = newest->m.epoch;
        st->last_logical = newest->m.logical;
    }
    free(forget);
    free(vs);
    return n;
}

static void update_one(const struct ops_args *a,
                       const struct vault_relationship *r)
{
    const char *cmd = a->cmd;
    int pid, fd = vault_rel_lock(r, &pid);
    if (fd == -EBUSY)
        die(cmd, "an update of %s to object store %s runs already (pid %d)",
            r->path, r->store, pid);
    if (fd < 0)
        die(cmd, "%s: %s", vault_conf_dir(), strerror(-fd));
    updating.r = r;
    vault_rel_state_load(r, &updating.st);
    die_set_hook(record_failure);
    struct vault_rel_policy p;
    load_policy(cmd, r->policy, &p);
    static struct vault_where w;
    vault_where_resolve(cmd, r->store, NULL, NULL, NULL, &w);
    static struct volume vol; /* static: reachable when a check dies */
    struct sfs_store *st = vault_cmd_source(cmd, &vol, a->pos[0]);
    if (memcmp(st->super.uuid, r->volume, 16))
        die(cmd, "%s is not the volume the relationship protects (%s)",
            a->pos[0], r->path);
    struct vault *v = vault_cmd_open(cmd, &w, WRITE_LOCK, "update");
    struct vault_cmd_backup b = { .cmd = cmd, .vol = &vol, .st = st,
                                  .progress = a->progress };
    uint64_t bytes = 0;
    int backed = back_up_selected(cmd, &b, v, r->store, r, &p, &bytes);
    sfs_close(st);
    free(vol.store); /* static, and used again by the next relationship */
    free(vol.mountpoint);
    vol.store = vol.mountpoint = NULL;
    struct vault_rel_state *s = &updating.st;
    int forgotten = retain(cmd, v, r, &p, s);
    vault_cmd_close(v);
    snprintf(s->state, sizeof(s->state), "idle");
    s->error[0] = 0;
    s->last_update = (int64_t)time(NULL);
    s->last_bytes = bytes;
    s->total_bytes += bytes;
    s->updates++;
    die_set_hook(NULL);
    updating.r = NULL;
    int rc = vault_rel_state_store(r, s);
    close(fd);
    if (rc)
        die(cmd, "%s: %s", vault_conf_dir(), strerror(-rc));
    char up[32];
    format_bytes(bytes, up, sizeof(up));
    printf("snapfs: updated %s in object store %s (policy %s): %d snapshot%s "
           "backed up (%s uploaded), %d forgotten; newest in the vault: %s\n",
           r->path, r->store, p.name, backed, backed == 1 ? "" : "s", up,
           forgotten, s->last_snapshot[0] ? s->last_snapshot : "none");
}

int cmd_vault_update(int argc, char **argv)
{
    struct ops_args a;
    parse(&a, "vault update", "store progress", 1, 1,
          "VOLUME [--store NAME] [--progress]", argc, argv);
    if (a.store)
        check_name(a.cmd, "store name", a.store);
    struct vault_relationship *r;
    size_t n = find_relationships(a.cmd, a.pos[0], a.store, &r);
    for (size_t i = 0; i < n; i++)
        update_one(&a, &r[i]);
    free(r);
    return 0;
}

/* ---- diff ---- */

int cmd_vault_diff(int argc, char **argv)
{
    struct ops_args a;
    parse(&a, "vault diff", "endpoint region passphrase-file json", 3, 3,
          "TARGET SNAPSHOT1 SNAPSHOT2 [--json]", argc, argv);
    struct vault_where w;
    vault_where_resolve(a.cmd, a.pos[0], a.endpoint, a.region, a.pass_file,
                        &w);
    struct vault *v = vault_cmd_open(a.cmd, &w, READ_LOCK, "diff");
    struct vault_snapshot s1, s2;
    int rc = vault_find_snapshot(v, a.pos[1], &s1);
    if (!rc)
        rc = vault_find_snapshot(v, a.pos[2], &s2);
    if (rc)
        vault_cmd_die(a.cmd, v, rc);
    const char *tmp = getenv("TMPDIR");
    char scratch[PATH_MAX], store[PATH_MAX + 8];
    snprintf(scratch, sizeof(scratch), "%s/snapfs-vault-diff-%d",
             tmp && *tmp ? tmp : "/tmp", (int)getpid());
    snprintf(store, sizeof(store), "%s/store", scratch);
    char *data = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&data, &len);
    rc = out ? vault_diff(v, &s1, &s2, scratch, out) : -ENOMEM;
    if (out)
        fclose(out);
    store_dir_remove(store);
    rmdir(scratch);
    if (rc) {
        free(data);
        vault_cmd_die(a.cmd, v, rc);
    }
    struct sfs_diff_stats stats;
    rc = diff_print_changes(data, a.json, &stats);
    free(data);
    if (rc)
        die(a.cmd, "the diff: %s", strerror(-rc));
    vault_cmd_close(v);
    return 0;
}
