/*
 * policy.c - `snapfs policy create|modify|list|delete|run`: snapshot
 * policies, named schedules with retention (see store/policy.c for the
 * rules).  A policy's label, by which a vault keeps its snapshots, is
 * its snapshots' name up to the first '.': the first part of its prefix
 * (`modify --label` changes that part).
 *
 * A mounted volume runs its due policies itself (fs/scheduler.c); these
 * commands go through its control socket.  On an unmounted volume they
 * open the store, and `policy run` is what a systemd timer or cron job
 * calls to take the due snapshots.  --now 'YYYY-MM-DD HH:MM' sets the
 * clock the command works by (catching up, testing).  Every argument is
 * checked, and the name and prefix against the existing policies, before
 * anything changes: a refused command names what is wrong and why, and
 * leaves the volume as it was.
 *
 * Hooks (`--pre CMD --post CMD --hook-timeout S --on-hook-failure
 * abandon|crash-consistent`, hookopt.c) make a policy's snapshots
 * application-consistent: the daemon runs them at the policy's slot
 * (fs/scheduler.c); `policy run` on an unmounted volume runs them here,
 * around each hooked policy's own transaction.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "hooks.h"
#include "store.h"

#define SCHEDULE_HELP                                                       \
    "every:N (N minutes, 1-1440), hourly[@MM], daily[@HH:MM], "             \
    "weekly[@DAY[@HH:MM]] (DAY mon..sun) or monthly[@D[@HH:MM]] (D 1-28)"

/* ---- arguments ---- */

struct policy_args {
    const char *pos[3];
    int npos;
    const char *schedule, *keep, *prefix, *label, *now;
    struct hook_options hooks;
    bool json;
};

static void parse_args(const char *cmd, int argc, char **argv,
                       struct policy_args *a)
{
    memset(a, 0, sizeof(*a));
    for (int i = 2; i < argc; i++) {
        const char *v;
        if ((v = option_value(cmd, "--schedule", argc, argv, &i)))
            a->schedule = v;
        else if ((v = option_value(cmd, "--keep", argc, argv, &i)))
            a->keep = v;
        else if ((v = option_value(cmd, "--prefix", argc, argv, &i)))
            a->prefix = v;
        else if ((v = option_value(cmd, "--label", argc, argv, &i)))
            a->label = v;
        else if ((v = option_value(cmd, "--now", argc, argv, &i)))
            a->now = v;
        else if (hook_option(cmd, argc, argv, &i, &a->hooks))
            ;
        else if (!strcmp(argv[i], "--json"))
            a->json = true;
        else if (argv[i][0] == '-' && argv[i][1])
            die_usage(cmd, "unknown option '%s'", argv[i]);
        else if (a->npos < 3)
            a->pos[a->npos++] = argv[i];
        else
            die_usage(cmd, "too many arguments ('%s')", argv[i]);
    }
}

/* Refuse the options SUB does not take (ALLOWED: a string of their
 * letters: s chedule, k eep, p refix, l abel, n ow, j son, h ooks). */
static void only_options(const char *cmd, const struct policy_args *a,
                         const char *allowed)
{
    const struct { const char *set; char letter; const char *name; } opts[] = {
        { a->schedule, 's', "--schedule" }, { a->keep, 'k', "--keep" },
        { a->prefix, 'p', "--prefix" },     { a->label, 'l', "--label" },
        { a->now, 'n', "--now" },           { a->json ? "" : NULL, 'j', "--json" },
        { hook_options_given(&a->hooks) ? "" : NULL, 'h', "--pre, --post, "
          "--hook-timeout and --on-hook-failure" },
    };
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        if (opts[i].set && !strchr(allowed, opts[i].letter))
            die_usage(cmd, "%s does not apply here", opts[i].name);
}

/* --now 'YYYY-MM-DD HH:MM[:SS]', local time. */
static int64_t parse_now(const char *cmd, const char *text)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(text, "%Y-%m-%d %H:%M", &tm);
    if (end && *end == ':')
        end = strptime(end + 1, "%S", &tm);
    tm.tm_isdst = -1;
    time_t t = end && !*end ? mktime(&tm) : (time_t)-1;
    if (t <= 0)
        die_usage(cmd, "--now '%s': give a time as 'YYYY-MM-DD HH:MM'", text);
    return (int64_t)t;
}

static void format_time(int64_t when, char *out, size_t cap)
{
    time_t t = (time_t)when;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M", &tm);
}

static void check_schedule(const char *cmd, const char *text,
                           struct sfs_schedule *out)
{
    if (sfs_schedule_parse(text, out))
        die_usage(cmd, "--schedule '%s' is not a schedule; give "
                       SCHEDULE_HELP, text);
}

static uint32_t check_keep(const char *cmd, const char *text)
{
    char *end;
    unsigned long keep = strtoul(text, &end, 10);
    if (end == text || *end || text[0] == '-' ||
        sfs_policy_keep_valid(keep > SFS_POLICY_KEEP_MAX ? 0 : (uint32_t)keep))
        die_usage(cmd, "--keep '%s': give the number of snapshots to keep, "
                       "1 to %d", text, SFS_POLICY_KEEP_MAX);
    return (uint32_t)keep;
}

static void set_prefix(const char *cmd, const char *prefix,
                       struct sfs_policy *p)
{
    if (sfs_policy_prefix_valid(prefix))
        die_usage(cmd, "--prefix '%s' is not a valid snapshot name prefix "
                       "(1 to %d bytes, no '/' or control characters)",
                  prefix, SFS_POLICY_PREFIX_MAX);
    memset(p->prefix, 0, sizeof(p->prefix));
    memcpy(p->prefix, prefix, strlen(prefix));
}

/* --label L: the prefix's part up to its first '.' becomes L. */
static void set_label(const char *cmd, const char *label, struct sfs_policy *p)
{
    const char *rest = strchr(p->prefix, '.');
    char prefix[SFS_POLICY_PREFIX_MAX + 2];
    if (!*label || strchr(label, '.') ||
        snprintf(prefix, sizeof(prefix), "%s%s", label, rest ? rest : "") >
            SFS_POLICY_PREFIX_MAX)
        die_usage(cmd, "--label '%s' is not a label (1 or more bytes, no '.', "
                       "and with the rest of the prefix at most %d)", label,
                  SFS_POLICY_PREFIX_MAX);
    set_prefix(cmd, prefix, p);
}

/* The policy create asks for, every field checked. */
static void build_policy(const char *cmd, const struct policy_args *a,
                         struct sfs_policy *p)
{
    memset(p, 0, sizeof(*p));
    const char *name = a->pos[1];
    if (sfs_policy_name_valid(name))
        die_usage(cmd, "'%s' is not a valid policy name (1 to %d letters, "
                       "digits, '.', '-' or '_')", name, SFS_POLICY_NAME_MAX);
    if (!a->schedule || !a->keep)
        die_usage(cmd, "give --schedule and --keep");
    check_schedule(cmd, a->schedule, &p->sched);
    p->keep = check_keep(cmd, a->keep);
    set_prefix(cmd, a->prefix ? a->prefix : name, p);
    memcpy(p->name, name, strlen(name));
    hook_options_apply(cmd, &a->hooks, &p->hooks);
    if (hook_options_given(&a->hooks) && !sfs_hooks_any(&p->hooks))
        die_usage(cmd, "--hook-timeout and --on-hook-failure need --pre or "
                       "--post");
}

/* ---- the listing (also used to check names and prefixes) ---- */

struct plisting {
    struct sfs_policy_line *lines;
    size_t n, cap;
};

static int plisting_add(void *arg, const struct sfs_policy_line *l)
{
    struct plisting *ls = arg;
    return array_append(&ls->lines, &ls->n, &ls->cap, l, sizeof(*l));
}

/* What an offline command works on: its policy, clock, listing, events. */
struct offline {
    struct sfs_policy p;
    int64_t now;
    struct plisting *ls;
    FILE *events;
    const char *name;
    bool set_hooks;     /* modify: the hooks are replaced too */
    const char *labels; /* run_one: the hooked snapshot's labels */
    bool abandon;       /* run_one: its pre hook failed, abandon it */
};

static int offline_list(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct offline *o = arg;
    return sfs_policy_list(st, txn, o->now, plisting_add, o->ls);
}

static const char *change_error(int rc)
{
    switch (rc) {
    case -EACCES:
        return "permission denied (only root or the volume's owner may "
               "manage policies)";
    case -ENOENT: return "no such policy (it was removed meanwhile)";
    case -EEXIST: return "that name or prefix was taken meanwhile";
    case -ENOSPC: return "the volume is full";
    default: return strerror(-rc);
    }
}

/* NOW as the daemon's word, or nothing when the daemon's clock is meant. */
static int now_word(const struct policy_args *a, int64_t now, char *buf,
                    size_t cap, char **words, int n)
{
    if (!a->now)
        return n;
    snprintf(buf, cap, "%lld", (long long)now);
    words[n] = buf;
    return n + 1;
}

static void get_policies(struct volume *vol, const char *cmd,
                         const struct policy_args *a, int64_t now,
                         struct plisting *ls)
{
    memset(ls, 0, sizeof(*ls));
    int rc;
    if (vol->mounted) {
        char *words[2] = { "policy-list" }, nbuf[32], *data = NULL;
        int n = now_word(a, now, nbuf, sizeof(nbuf), words, 1);
        rc = volume_request(vol, words, n, &data);
        for (char *save = NULL, *line = data ? strtok_r(data, "\n", &save) : NULL;
             !rc && line; line = strtok_r(NULL, "\n", &save)) {
            struct sfs_policy_line l;
            rc = sfs_policy_line_parse(line, &l);
            if (!rc)
                rc = plisting_add(ls, &l);
        }
        free(data);
    } else {
        struct offline o = { .now = now, .ls = ls };
        rc = volume_offline(vol, cmd, offline_list, &o, false);
    }
    if (rc)
        die(cmd, "%s: listing policies: %s", vol->arg, change_error(rc));
}

static const struct sfs_policy_line *find_policy(const struct plisting *ls,
                                                 const char *name)
{
    for (size_t i = 0; i < ls->n; i++)
        if (!strcmp(ls->lines[i].p.name, name))
            return &ls->lines[i];
    return NULL;
}

/* ---- printing ---- */

/* A policy's hooks in JSON: {"pre","post","timeout","on_failure"} (a
 * command not set is null). */
static void print_hooks_json(const struct sfs_hookspec *h)
{
    printf("{\"pre\":");
    if (h->pre[0])
        print_json_string(h->pre);
    else
        printf("null");
    printf(",\"post\":");
    if (h->post[0])
        print_json_string(h->post);
    else
        printf("null");
    printf(",\"timeout\":%u,\"on_failure\":\"%s\"}",
           h->timeout ? h->timeout : SFS_HOOK_TIMEOUT_DEFAULT,
           hook_failure_word(h->on_failure));
}

static void print_json(const struct plisting *ls)
{
    printf("[");
    for (size_t i = 0; i < ls->n; i++) {
        const struct sfs_policy_line *l = &ls->lines[i];
        char sched[SFS_SCHEDULE_TEXT_MAX];
        sfs_schedule_format(&l->p.sched, sched, sizeof(sched));
        printf("%s{\"name\":", i ? "," : "");
        print_json_string(l->p.name);
        printf(",\"schedule\":\"%s\",\"keep\":%u,\"prefix\":", sched,
               l->p.keep);
        print_json_string(l->p.prefix);
        char label[SFS_POLICY_PREFIX_MAX + 1];
        snprintf(label, sizeof(label), "%.*s",
                 (int)strcspn(l->p.prefix, "."), l->p.prefix);
        printf(",\"label\":");
        print_json_string(label);
        printf(",\"snapshots\":%u,\"created\":%lld,\"last_run\":", l->snapshots,
               (long long)l->p.created);
        if (l->p.last_run)
            printf("%lld", (long long)l->p.last_run);
        else
            printf("null");
        printf(",\"next_run\":%lld,\"due\":%s", (long long)l->next_run,
               l->due ? "true" : "false");
        if (sfs_hooks_any(&l->p.hooks)) {
            printf(",\"hooks\":");
            print_hooks_json(&l->p.hooks);
        }
        printf("}");
    }
    printf("]\n");
}

static void print_table(const struct plisting *ls)
{
    printf("%-20s %-18s %5s %-20s %9s %-16s %s\n", "NAME", "SCHEDULE", "KEEP",
           "PREFIX", "SNAPSHOTS", "LAST RUN", "NEXT RUN");
    for (size_t i = 0; i < ls->n; i++) {
        const struct sfs_policy_line *l = &ls->lines[i];
        char sched[SFS_SCHEDULE_TEXT_MAX], last[32], next[32];
        sfs_schedule_format(&l->p.sched, sched, sizeof(sched));
        if (l->p.last_run)
            format_time(l->p.last_run, last, sizeof(last));
        else
            snprintf(last, sizeof(last), "never");
        format_time(l->next_run, next, sizeof(next));
        printf("%-20s %-18s %5u %-20s %9u %-16s %s%s\n", l->p.name, sched,
               l->p.keep, l->p.prefix, l->snapshots, last, next,
               l->due ? " (due)" : "");
        const struct sfs_hookspec *h = &l->p.hooks;
        if (h->pre[0])
            printf("    pre hook:  %s\n", h->pre);
        if (h->post[0])
            printf("    post hook: %s\n", h->post);
        if (sfs_hooks_any(h))
            printf("    hook timeout %u s, on failure: %s\n",
                   h->timeout ? h->timeout : SFS_HOOK_TIMEOUT_DEFAULT,
                   hook_failure_word(h->on_failure));
    }
}

/* Print the event lines of a run; returns how many there were.  The
 * snapshots created are left in CREATED (into EVENTS, *N of CAP). */
static int print_events(const char *vol, char *events, char **created,
                        size_t cap, size_t *n)
{
    int count = 0;
    for (char *save = NULL, *line = events ? strtok_r(events, "\n", &save)
                                           : NULL;
         line; line = strtok_r(NULL, "\n", &save)) {
        int event;
        char *policy, *snap;
        if (sfs_policy_event_parse(line, &event, &policy, &snap))
            continue;
        count++;
        printf("snapfs: policy %s: ", policy);
        switch (event) {
        case SFS_POLICY_CREATED:
            printf("created snapshot %s\n", snap);
            if (*n < cap)
                created[(*n)++] = snap;
            break;
        case SFS_POLICY_DELETED: printf("deleted snapshot %s\n", snap); break;
        case SFS_POLICY_EXISTED:
            printf("snapshot %s exists already; counted as this run's\n", snap);
            break;
        case SFS_POLICY_HELD:
            printf("kept snapshot %s beyond --keep: it is held (see snapfs "
                   "snapshot holds %s %s)\n", snap, vol, snap);
            break;
        case SFS_POLICY_ABANDONED:
            printf("abandoned snapshot %s: its pre hook failed (see the "
                   "log); nothing taken\n", snap);
            break;
        }
    }
    return count;
}

/* ---- the subcommands ---- */

static int offline_create(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct offline *o = arg;
    o->p.created = o->now;
    return sfs_policy_create_w(st, txn, &o->p);
}

static int offline_modify(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct offline *o = arg;
    int rc = sfs_policy_modify_w(st, txn, &o->p, o->now);
    if (!rc && o->set_hooks)
        rc = sfs_policy_hooks_set_w(st, txn, o->p.name, &o->p.hooks);
    return rc;
}

static int offline_delete(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    return sfs_policy_delete_w(st, txn, ((struct offline *)arg)->name);
}

static int offline_run(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct offline *o = arg;
    int rc = sfs_policy_run_due_w(st, txn, o->now, sfs_policy_event_write,
                                  o->events);
    return rc < 0 ? rc : 0;
}

/* ---- policies with hooks, on an unmounted volume ---- */

struct hooked_list {
    struct sfs_policy_hooked *v;
    size_t n;
    int64_t now;
};

static int offline_hooked(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct hooked_list *hl = arg;
    return sfs_policy_hooked_due(st, txn, hl->now, &hl->v, &hl->n);
}

static int offline_run_one(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct offline *o = arg;
    int rc = sfs_policy_run_one_w(st, txn, o->name, o->now, o->labels,
                                  o->abandon, sfs_policy_event_write,
                                  o->events);
    return rc < 0 ? rc : 0;
}

/* Run the due policies with hooks one by one, each in its own
 * transaction with its hooks around it; events to EVENTS.  Returns how
 * many had a hook fail (told on stderr), or dies. */
static int run_hooked(struct volume *vol, const char *cmd, int64_t now,
                      FILE *events)
{
    struct hooked_list hl = { .now = now };
    int failed = 0, rc = volume_offline(vol, cmd, offline_hooked, &hl, false);
    for (size_t i = 0; !rc && i < hl.n; i++) {
        struct sfs_policy_hooked *h = &hl.v[i];
        struct hooks_run r = { .spec = &h->p.hooks, .volume = vol->arg,
                               .snapshot = h->snap, .log = hook_log_stderr,
                               .log_arg = (void *)cmd };
        hooks_after_at_exit(&r);
        hooks_before(&r);
        struct offline o = { .now = now, .name = h->p.name, .events = events,
                             .labels = r.labels,
                             .abandon = r.verdict == HOOKS_ABANDONED };
        rc = volume_offline(vol, cmd, offline_run_one, &o, true);
        hooks_after(&r, rc ? "failed" : hooks_result_word(r.verdict));
        hooks_after_at_exit(NULL);
        if (r.why[0] || r.post_why[0]) {
            failed++;
            fprintf(stderr, "snapfs %s: %s: policy %s: %s%s%s\n", cmd,
                    vol->arg, h->p.name, r.why,
                    r.why[0] && r.post_why[0] ? "; " : "", r.post_why);
        }
    }
    free(hl.v);
    if (rc)
        die(cmd, "%s: running policies: %s", vol->arg, change_error(rc));
    return failed;
}

/* Write policy O->p: through the daemon (request WORD) or offline (FN);
 * then say it was VERBED. */
static void put_policy(struct volume *vol, const char *cmd,
                       const struct policy_args *a, struct offline *o,
                       const char *word,
                       int (*fn)(struct sfs_store *, MDB_txn *, void *),
                       const char *verbed)
{
    char sched[SFS_SCHEDULE_TEXT_MAX];
    sfs_schedule_format(&o->p.sched, sched, sizeof(sched));
    int rc;
    if (vol->mounted) {
        char keep[16], nbuf[32], *data = NULL, hooks[SFS_HOOKS_WORD_MAX];
        snprintf(keep, sizeof(keep), "%u", o->p.keep);
        char *words[7] = { (char *)word, o->p.name, sched, keep, o->p.prefix };
        int n = now_word(a, o->now, nbuf, sizeof(nbuf), words, 5);
        if (o->set_hooks) { /* NOW, or "-" (the daemon's clock), then HOOKS */
            if (n == 5)
                words[n++] = "-";
            sfs_hooks_format(&o->p.hooks, hooks, sizeof(hooks));
            words[n++] = hooks;
        }
        rc = volume_request(vol, words, n, &data);
        free(data);
    } else {
        rc = volume_offline(vol, cmd, fn, o, true);
    }
    if (rc)
        die(cmd, "%s: %s", vol->arg, change_error(rc));
    printf("snapfs: %s policy %s of %s: %s, keeping %u snapshots named "
           "%s.YYYY-MM-DD_HHMM%s\n", verbed, o->p.name, vol->arg, sched,
           o->p.keep, o->p.prefix,
           sfs_hooks_any(&o->p.hooks) ? ", with hooks" : "");
}

static void policy_create(struct volume *vol, const char *cmd,
                          const struct policy_args *a, int64_t now,
                          const struct sfs_policy *p, const struct plisting *ls)
{
    struct offline o = { .p = *p, .now = now,
                         .set_hooks = sfs_hooks_any(&p->hooks) };
    if (find_policy(ls, o.p.name))
        die(cmd, "%s: a policy named '%s' already exists", vol->arg, o.p.name);
    for (size_t i = 0; i < ls->n; i++)
        if (!strcmp(ls->lines[i].p.prefix, o.p.prefix))
            die(cmd, "%s: policy '%s' already uses the prefix '%s'", vol->arg,
                ls->lines[i].p.name, o.p.prefix);
    put_policy(vol, cmd, a, &o, "policy-create", offline_create, "created");
}

/* The policy modify asks for: the existing one with the options given. */
static void modified_policy(struct volume *vol, const char *cmd,
                            const struct policy_args *a,
                            const struct plisting *ls, struct sfs_policy *p)
{
    if (!a->schedule && !a->keep && !a->prefix && !a->label &&
        !hook_options_given(&a->hooks))
        die_usage(cmd, "give --schedule, --keep, --prefix or --label (or "
                       "hook options)");
    const struct sfs_policy_line *l = find_policy(ls, a->pos[1]);
    if (!l)
        die(cmd, "%s: no policy named '%s'", vol->arg, a->pos[1]);
    *p = l->p;
    if (a->schedule)
        check_schedule(cmd, a->schedule, &p->sched);
    if (a->keep)
        p->keep = check_keep(cmd, a->keep);
    if (a->prefix)
        set_prefix(cmd, a->prefix, p);
    if (a->label)
        set_label(cmd, a->label, p);
    hook_options_apply(cmd, &a->hooks, &p->hooks);
    if ((a->hooks.timeout || a->hooks.on_failure) && !sfs_hooks_any(&p->hooks))
        die_usage(cmd, "--hook-timeout and --on-hook-failure need --pre or "
                       "--post");
    for (size_t i = 0; i < ls->n; i++)
        if (strcmp(ls->lines[i].p.name, p->name) &&
            !strcmp(ls->lines[i].p.prefix, p->prefix))
            die(cmd, "%s: policy '%s' already uses the prefix '%s'", vol->arg,
                ls->lines[i].p.name, p->prefix);
}

static void policy_modify(struct volume *vol, const char *cmd,
                          const struct policy_args *a, int64_t now,
                          const struct plisting *ls)
{
    struct offline o = { .now = now,
                         .set_hooks = hook_options_given(&a->hooks) };
    modified_policy(vol, cmd, a, ls, &o.p);
    put_policy(vol, cmd, a, &o, "policy-modify", offline_modify, "modified");
}

static void policy_delete(struct volume *vol, const char *cmd,
                          const char *name, const struct plisting *ls)
{
    const struct sfs_policy_line *l = find_policy(ls, name);
    if (!l)
        die(cmd, "%s: no policy named '%s'", vol->arg, name);
    uint32_t snaps = l->snapshots;
    int rc;
    if (vol->mounted) {
        char *words[] = { "policy-delete", (char *)name }, *data = NULL;
        rc = volume_request(vol, words, 2, &data);
        free(data);
    } else {
        struct offline o = { .name = name };
        rc = volume_offline(vol, cmd, offline_delete, &o, true);
    }
    if (rc)
        die(cmd, "%s: %s", vol->arg, change_error(rc));
    printf("snapfs: deleted policy %s of %s (its %u snapshot%s stay)\n", name,
           vol->arg, snaps, snaps == 1 ? "" : "s");
}

/* The vault relationships whose policies select the snapshots the run
 * created are updated now, as the daemon does for a mounted volume's own
 * runs (tools/vault_daemon.c): how many updates failed. */
static int run_vault_updates(struct volume *vol, const char *cmd,
                             char *const *created, size_t n)
{
    struct sfs_store *st;
    int rc = sfs_open(vol->store, SFS_OPEN_RDONLY, &st);
    if (rc)
        die(cmd, "%s: %s", vol->arg, open_error(rc));
    uint8_t uuid[16];
    memcpy(uuid, st->super.uuid, 16);
    sfs_close(st);
    fflush(stdout);
    return vault_updates_run(vol->arg, uuid, created, n);
}

/* Is VOL a mirror destination following its source (no policy runs)? */
static bool policies_paused(struct volume *vol, const char *cmd)
{
    struct sfs_store *st = volume_read_store(vol, cmd, "read");
    MDB_txn *txn;
    bool paused = false;
    if (!sfs_txn_begin(st, NULL, false, &txn)) {
        paused = sfs_policy_paused(st, txn);
        mdb_txn_abort(txn);
    }
    sfs_close(st);
    return paused;
}

static void policy_run(struct volume *vol, const char *cmd,
                       const struct policy_args *a, int64_t now)
{
    char *events = NULL;
    int rc, hook_failures = 0;
    if (policies_paused(vol, cmd)) {
        printf("snapfs: %s: a mirror destination following its source: "
               "its snapshots come from the source, and its policies run "
               "once it is broken off\n", vol->arg);
        return;
    }
    if (vol->mounted) {
        char *words[2] = { "policy-run" }, nbuf[32];
        int n = now_word(a, now, nbuf, sizeof(nbuf), words, 1);
        rc = volume_request(vol, words, n, &events);
    } else {
        size_t len = 0;
        struct offline o = { .now = now };
        o.events = open_memstream(&events, &len);
        if (!o.events)
            die(cmd, "%s: %s", vol->arg, strerror(ENOMEM));
        rc = volume_offline(vol, cmd, offline_run, &o, true);
        if (!rc)
            hook_failures = run_hooked(vol, cmd, now, o.events);
        fclose(o.events);
    }
    if (rc)
        die(cmd, "%s: running policies: %s", vol->arg, change_error(rc));
    char *created[64];
    size_t n = 0;
    if (!print_events(vol->arg, events, created, 64, &n))
        printf("snapfs: %s: no policy is due\n", vol->arg);
    int failed = n ? run_vault_updates(vol, cmd, created, n) : 0;
    free(events);
    if (failed || hook_failures)
        exit(1);
}

int cmd_policy(int argc, char **argv)
{
    if (argc < 2)
        die_usage("policy", "give create, modify, list, delete or run");
    const char *sub = argv[1];
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "policy %s", sub);
    struct policy_args a;
    int want; /* positional arguments */
    if (!strcmp(sub, "create") || !strcmp(sub, "modify") ||
        !strcmp(sub, "delete"))
        want = 2;
    else if (!strcmp(sub, "list") || !strcmp(sub, "run"))
        want = 1;
    else
        die_usage("policy", "unknown subcommand '%s'", sub);
    parse_args(cmd, argc, argv, &a);
    only_options(cmd, &a, !strcmp(sub, "create") ? "skpnh"
                          : !strcmp(sub, "modify") ? "skplnh"
                          : !strcmp(sub, "list") ? "nj"
                          : !strcmp(sub, "run")  ? "n" : "");
    if (a.npos != want)
        die_usage(cmd, want == 2 ? "give the volume and the policy name"
                                 : "give the volume (a store or its mountpoint)");
    int64_t now = a.now ? parse_now(cmd, a.now) : (int64_t)time(NULL);
    struct sfs_policy p;
    if (!strcmp(sub, "create"))
        build_policy(cmd, &a, &p); /* bad input: before the volume */
    struct volume vol;
    volume_open(&vol, cmd, a.pos[0]);
    struct plisting ls = { 0 };
    if (strcmp(sub, "run"))
        get_policies(&vol, cmd, &a, now, &ls);
    if (!strcmp(sub, "create"))
        policy_create(&vol, cmd, &a, now, &p, &ls);
    else if (!strcmp(sub, "modify"))
        policy_modify(&vol, cmd, &a, now, &ls);
    else if (!strcmp(sub, "delete"))
        policy_delete(&vol, cmd, a.pos[1], &ls);
    else if (!strcmp(sub, "run"))
        policy_run(&vol, cmd, &a, now);
    else if (a.json)
        print_json(&ls);
    else
        print_table(&ls);
    free(ls.lines);
    free(vol.store);
    free(vol.mountpoint);
    return 0;
}
