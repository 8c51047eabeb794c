/*
 * plan.c - `snapfs plan`: recovery plans over mirror relationships and
 * groups, as a site recovery manager runs them over array replication.
 *
 *   plan create NAME --file PLAN.json [--json]
 *   plan create NAME --step DST|group:NAME [--priority N] [--mount DIR]
 *                    [--test-mount DIR] [--source-mount DIR]
 *                    [--source PEER:PATH] [--script CMD]
 *                    [--timeout SECONDS] [--step ...]
 *   plan list [--json] | show NAME [--json] | delete NAME [--json]
 *   plan test NAME | cleanup NAME [--json]
 *   plan run NAME --planned-migration|--disaster [--json]
 *   plan reprotect NAME | failback NAME [--json]
 *
 * The parsing, the messages and the reports; the plans are kept by
 * tools/plan/plan_conf.c and carried out by tools/plan/plan_ops.c.  A
 * command that fails prints one message naming the plan, the step, the
 * exit status and the last line the failing command wrote, exits 1, and
 * leaves the plan's state where the next command of the same kind
 * resumes it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plan/plan_cli.h"
#include "plan/plan.h"

#define CMD "plan"

static void print_json(json_t *j)
{
    char *t = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", t ? t : "null");
    free(t);
}

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
    die_usage(CMD, "usage: snapfs plan create|list|show|delete|test|cleanup|"
              "run|reprotect|failback ... (snapfs help)");
}

static void check_name(const char *name)
{
    if (!plan_name_valid(name))
        die_usage(CMD, "%s: not a plan name (1 to %d of A-Z a-z 0-9 . _ -, "
                  "not starting with . or -)", name, PLAN_NAME_MAX);
}

static void load_or_die(const char *name, struct plan *p)
{
    char why[1024] = "";
    check_name(name);
    int rc = plan_load(name, p, why, sizeof(why));
    if (rc == -ENOENT)
        die(CMD, "%s: no such plan (snapfs plan list)", name);
    if (rc)
        die(CMD, "%s: %s", name, why[0] ? why : strerror(-rc));
}

/* ---- create ---- */

/* The step options after --step: set on the step LAST. */
static const struct {
    const char *opt, *key;
    bool number;
} step_opts[] = {
    { "--priority", "priority", true },    { "--mount", "mount", false },
    { "--test-mount", "test_mount", false },
    { "--source-mount", "source_mount", false },
    { "--source", "source", false },
    { "--script", "script", false },       { "--timeout", "timeout", true },
};

static void set_step_opt(json_t *last, const char *opt, const char *key,
                         bool number, const char *value)
{
    if (!last)
        die_usage(CMD, "%s belongs to a step: give --step first", opt);
    if (json_object_get(last, key))
        die_usage(CMD, "%s given twice for one step", opt);
    if (!number) {
        json_object_set_new(last, key, plan_json_str(value));
        return;
    }
    char *end;
    long v = strtol(value, &end, 10);
    if (!*value || *end)
        die_usage(CMD, "%s %s: not a whole number", opt, value);
    json_object_set_new(last, key, json_integer(v));
}

static json_t *steps_from_args(int argc, char **argv, int from, bool *json)
{
    json_t *steps = json_array(), *last = NULL;
    for (int i = from; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "--json")) {
            *json = true;
            continue;
        }
        if ((v = option_value(CMD, "--step", argc, argv, &i))) {
            last = json_object();
            if (!strncmp(v, "group:", 6))
                json_object_set_new(last, "group", plan_json_str(v + 6));
            else
                json_object_set_new(last, "relationship", plan_json_str(v));
            json_array_append_new(steps, last);
            continue;
        }
        size_t k = 0, n = sizeof(step_opts) / sizeof(step_opts[0]);
        for (; k < n; k++)
            if ((v = option_value(CMD, step_opts[k].opt, argc, argv, &i)))
                break;
        if (k == n)
            die_usage(CMD, "%s: unknown option (usage: snapfs plan create "
                      "NAME --file PLAN.json | --step DST|group:NAME "
                      "[--priority N] [--mount DIR] [--test-mount DIR] "
                      "[--source-mount DIR] [--source PEER:PATH] [--script "
                      "CMD] [--timeout S] ...)", argv[i]);
        set_step_opt(last, step_opts[k].opt, step_opts[k].key,
                     step_opts[k].number, v);
    }
    json_t *plan = json_object();
    json_object_set_new(plan, "steps", steps);
    return plan;
}

static int plan_create(int argc, char **argv)
{
    if (argc < 3 || argv[2][0] == '-')
        die_usage(CMD, "usage: snapfs plan create NAME --file PLAN.json | "
                  "--step DST|group:NAME [step options] ...");
    const char *name = argv[2];
    check_name(name);
    json_t *j;
    bool json = false, has_file = false;
    const char *file = NULL;
    for (int i = 3; i < argc; i++)
        has_file |= !strcmp(argv[i], "--file");
    for (int i = 3; has_file && i < argc; i++) {
        const char *v = option_value(CMD, "--file", argc, argv, &i);
        if (v && !file)
            file = v;
        else if (!strcmp(argv[i], "--json"))
            json = true;
        else
            die_usage(CMD, "--file takes the whole plan: no other options "
                      "but --json");
    }
    if (file) {
        json_error_t e;
        j = json_load_file(file, 0, &e);
        if (!j)
            die(CMD, "%s: line %d: %s", file, e.line, e.text);
    } else {
        j = steps_from_args(argc, argv, 3, &json);
    }
    struct plan p;
    char why[1024];
    int rc = plan_from_json(name, j, &p, why, sizeof(why));
    json_decref(j);
    if (rc)
        die(CMD, "%s%s%s: %s", name, file ? ": " : "", file ? file : "",
            rc == -EINVAL ? why : strerror(-rc));
    rc = plan_store_new(&p);
    if (rc == -EEXIST)
        die(CMD, "%s: a plan of this name exists (snapfs plan delete %s "
            "first)", name, name);
    if (rc)
        die(CMD, "%s: storing the plan: %s", name, strerror(-rc));
    size_t n = 0;
    for (size_t s = 0; s < p.n; s++)
        n += p.steps[s].n;
    if (json) {
        json_t *out = plan_to_json(&p);
        print_json(out);
        json_decref(out);
    } else {
        printf("snapfs plan: %s created: %zu steps, %zu relationships\n",
               name, p.n, n);
    }
    plan_free(&p);
    return 0;
}

/* ---- list, show, delete ---- */

static const char *state_word(const struct plan_state *s)
{
    if (s->operation[0])
        return !strcmp(s->operation, "run") ? "run-stopped"
               : !strcmp(s->operation, "test") ? "test-stopped"
                                               : "stopped";
    if (s->test_active)
        return "testing";
    if (s->failed_over)
        return "failed-over";
    return s->reversed ? "reprotected" : "ready";
}

static json_t *plan_with_state(const struct plan *p)
{
    struct plan_state s;
    json_t *j = plan_to_json(p);
    if (!plan_state_load(p->name, &s)) {
        json_t *sj = plan_state_to_json(&s);
        json_object_set_new(sj, "summary", plan_json_str(state_word(&s)));
        json_object_set_new(j, "state", sj);
        plan_state_free(&s);
    }
    return j;
}

static int plan_list(int argc, char **argv)
{
    bool json = argc == 3 && !strcmp(argv[2], "--json");
    if (argc != 2 && !json)
        die_usage(CMD, "usage: snapfs plan list [--json]");
    char **names;
    size_t n;
    int rc = plan_names(&names, &n);
    if (rc)
        die(CMD, "reading the plans: %s", strerror(-rc));
    json_t *all = json_array();
    if (!json && n)
        printf("%-24s %5s  %s\n", "NAME", "STEPS", "STATE");
    for (size_t i = 0; i < n; i++) {
        struct plan p;
        char why[1024];
        if (plan_load(names[i], &p, why, sizeof(why)))
            fprintf(stderr, "snapfs plan: %s: %s\n", names[i], why);
        else if (json)
            json_array_append_new(all, plan_with_state(&p));
        else {
            struct plan_state s;
            plan_state_load(p.name, &s);
            printf("%-24s %5zu  %s\n", p.name, p.n, state_word(&s));
            plan_state_free(&s);
        }
        if (p.steps)
            plan_free(&p);
        free(names[i]);
    }
    free(names);
    if (json)
        print_json(all);
    else if (!n)
        printf("no recovery plans (snapfs plan create)\n");
    json_decref(all);
    return 0;
}

static int plan_show(int argc, char **argv)
{
    bool json = argc == 4 && !strcmp(argv[3], "--json");
    if ((argc != 3 && !json) || argv[2][0] == '-')
        die_usage(CMD, "usage: snapfs plan show NAME [--json]");
    struct plan p;
    load_or_die(argv[2], &p);
    json_t *j = plan_with_state(&p);
    if (json) {
        print_json(j);
    } else {
        json_t *st = json_object_get(j, "state");
        printf("Plan: %s (%s)\n", p.name,
               json_string_value(json_object_get(st, "summary")));
        for (size_t i = 0; i < p.n; i++) {
            const struct plan_step *s = &p.steps[i];
            printf("step %zu  priority %d%s%s  script: %s  timeout %d s\n",
                   i + 1, s->priority, s->group[0] ? "  group " : "",
                   s->group, s->script[0] ? s->script : "-", s->timeout);
            for (size_t k = 0; k < s->n; k++)
                printf("  %s -> %s  mount %s  test %s\n", s->m[k].src,
                       s->m[k].dst, s->m[k].mount[0] ? s->m[k].mount : "-",
                       s->m[k].test_mount);
        }
    }
    json_decref(j);
    plan_free(&p);
    return 0;
}

static int plan_remove(int argc, char **argv)
{
    bool json = argc == 4 && !strcmp(argv[3], "--json");
    if ((argc != 3 && !json) || argv[2][0] == '-')
        die_usage(CMD, "usage: snapfs plan delete NAME [--json]");
    struct plan p;
    load_or_die(argv[2], &p);
    int lock = plan_lock(p.name);
    if (lock == -EWOULDBLOCK)
        die(CMD, "%s: another plan command is running on it", p.name);
    struct plan_state s;
    if (plan_state_load(p.name, &s))
        die(CMD, "%s: its state cannot be read; nothing was deleted",
            p.name);
    if (s.test_active || s.operation[0])
        die(CMD, "%s: %s; nothing was deleted (finish it, or plan cleanup)",
            p.name, s.test_active ? "a test is active" : "an operation "
            "stopped in the middle");
    int rc = plan_delete(p.name);
    if (rc)
        die(CMD, "%s: %s", p.name, strerror(-rc));
    if (json)
        printf("{\"plan\": \"%s\", \"deleted\": true}\n", p.name);
    else
        printf("snapfs plan: %s deleted (its relationships are untouched)\n",
               p.name);
    plan_state_free(&s);
    plan_free(&p);
    if (lock >= 0)
        close(lock);
    return 0;
}

/* ---- operations ---- */

static void print_text_report(const struct plan_report *rep)
{
    size_t i;
    json_t *a;
    json_array_foreach(rep->actions, i, a) {
        const char *detail = json_string_value(json_object_get(a, "detail"));
        printf("step %lld (priority %lld) %-16s %s: %s (%.2f s)%s%s\n",
               (long long)json_integer_value(json_object_get(a, "step")),
               (long long)json_integer_value(json_object_get(a, "priority")),
               json_string_value(json_object_get(a, "action")),
               json_string_value(json_object_get(a, "volume")),
               json_string_value(json_object_get(a, "result")),
               json_real_value(json_object_get(a, "seconds")),
               detail && detail[0] ? ": " : "", detail ? detail : "");
    }
}

static int plan_op(int argc, char **argv, enum plan_op op)
{
    const char *name = NULL, *sub = argv[1];
    bool json = false, planned = false, disaster = false;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (op == OP_RUN && !strcmp(argv[i], "--planned-migration"))
            planned = true;
        else if (op == OP_RUN && !strcmp(argv[i], "--disaster"))
            disaster = true;
        else if (argv[i][0] == '-' || name)
            die_usage(CMD, "usage: snapfs plan %s NAME%s [--json]", sub,
                      op == OP_RUN ? " --planned-migration|--disaster" : "");
        else
            name = argv[i];
    }
    if (!name)
        die_usage(CMD, "usage: snapfs plan %s NAME%s [--json]", sub,
                  op == OP_RUN ? " --planned-migration|--disaster" : "");
    if (op == OP_RUN && planned == disaster)
        die_usage(CMD, "plan run: give --planned-migration (the sources "
                  "answer) or --disaster (they do not), one of the two");
    struct plan p;
    load_or_die(name, &p);
    int lock = plan_lock(p.name);
    if (lock == -EWOULDBLOCK)
        die(CMD, "%s: another plan command is running on it", p.name);
    if (lock < 0)
        die(CMD, "%s: locking the plan: %s", p.name, strerror(-lock));
    struct plan_report rep = { 0 };
    int rc = plan_operate(&p, op, disaster ? MODE_DISASTER : MODE_PLANNED,
                          &rep);
    if (json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:O, s:s, s:i, s:i, s:s}",
                              "plan", p.name, "operation", sub, "result",
                              !rc ? "ok" : rc == -EBUSY ? "refused"
                                                        : "failed",
                              "actions", rep.actions, "error", rep.error,
                              "failed_step", rep.failed_step, "exit_code",
                              rep.exit_code, "stderr", rep.last_err);
        print_json(j);
        json_decref(j);
    } else {
        print_text_report(&rep);
    }
    if (rc)
        fprintf(stderr, "snapfs plan: %s%s%s%s\n", rc == -EBUSY ? "" : "plan ",
                rc == -EBUSY ? "" : p.name, rc == -EBUSY ? "" : ": ",
                rep.error);
    else if (!json)
        printf("snapfs plan: %s: %s done\n", p.name, sub);
    json_decref(rep.actions);
    plan_free(&p);
    close(lock);
    return rc ? 1 : 0;
}

int cmd_plan(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *sub = argv[1];
    if (!strcmp(sub, "create"))
        return plan_create(argc, argv);
    if (!strcmp(sub, "list"))
        return plan_list(argc, argv);
    if (!strcmp(sub, "show"))
        return plan_show(argc, argv);
    if (!strcmp(sub, "delete"))
        return plan_remove(argc, argv);
    static const struct {
        const char *name;
        enum plan_op op;
    } ops[] = { { "test", OP_TEST }, { "cleanup", OP_CLEANUP },
                { "run", OP_RUN }, { "reprotect", OP_REPROTECT },
                { "failback", OP_FAILBACK } };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (!strcmp(sub, ops[i].name))
            return plan_op(argc, argv, ops[i].op);
    usage();
}
