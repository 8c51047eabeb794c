/*
 * upgrade_cmd.c - `snapfs upgrade --check STORE [--json]` and `snapfs
 * upgrade STORE`: the command front of tools/upgrade/ (the readiness
 * report and its exit code, the upgrade's progress lines, one message
 * for a refusal or a failure).
 *
 * Exit codes: 0 ready (--check) or upgraded or already current; 1 not
 * ready (the reasons listed; nothing changed) or failed; 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "upgrade/upgrade.h"

#define CMD "upgrade"

static void print_list_json(const char *name, char **items, size_t n)
{
    printf(",\"%s\":[", name);
    for (size_t i = 0; i < n; i++) {
        if (i)
            putchar(',');
        print_json_string(items[i]);
    }
    putchar(']');
}

static void print_json(const char *store, const struct upgrade_report *r)
{
    printf("{\"store\":");
    print_json_string(store);
    printf(",\"format\":%u,\"target\":%u,\"readable\":%s,"
           "\"interrupted\":%s,\"current\":%s,\"ready\":%s",
           r->format, r->target, r->readable ? "true" : "false",
           r->interrupted ? "true" : "false", r->current ? "true" : "false",
           r->ready ? "true" : "false");
    print_list_json("reasons", r->reasons, r->nreasons);
    print_list_json("steps", r->steps, r->nsteps);
    printf(",\"problems\":%d,\"blocks\":%llu,\"records\":%llu,"
           "\"need_bytes\":%llu,\"free_bytes\":%llu,"
           "\"estimate_seconds\":%.3f,\"check_seconds\":%.3f}\n",
           r->problems, (unsigned long long)r->blocks,
           (unsigned long long)r->records, (unsigned long long)r->need_bytes,
           (unsigned long long)r->free_bytes, r->estimate_seconds,
           r->check_seconds);
}

static void print_text(const char *store, const struct upgrade_report *r)
{
    if (!r->readable)
        printf("%s: not ready: this snapfs cannot read it\n", store);
    else if (r->current)
        printf("%s: format %u, the format of this snapfs: nothing to "
               "upgrade\n", store, r->format);
    else
        printf("%s: format %u%s, this snapfs writes format %u: %s\n", store,
               r->format, r->interrupted ? " (an upgrade did not finish)" : "",
               r->target, r->ready ? "ready to upgrade" : "not ready");
    for (size_t i = 0; i < r->nreasons; i++)
        printf("  not ready: %s\n", r->reasons[i]);
    for (size_t i = 0; i < r->nsteps; i++)
        printf("  step: %s\n", r->steps[i]);
    if (r->readable && !r->current) {
        char need[32], avail[32];
        format_bytes(r->need_bytes, need, sizeof(need));
        format_bytes(r->free_bytes, avail, sizeof(avail));
        printf("  needs: up to %s more on the filesystem holding the store "
               "(%s free), about %.1f s\n", need, avail, r->estimate_seconds);
    }
    printf("  checked: %d problem%s found by reading the whole store "
           "(%.2f s)\n", r->problems, r->problems == 1 ? "" : "s",
           r->check_seconds);
}

static void progress_line(void *arg, const char *line)
{
    printf("%s: %s\n", (const char *)arg, line);
    fflush(stdout);
}

static void die_not_ready(const char *store, const struct upgrade_report *r)
{
    if (r->nreasons == 1)
        die(CMD, "%s: not ready to upgrade to format %u: %s; nothing was "
                 "changed", store, r->target, r->reasons[0]);
    fprintf(stderr, "snapfs upgrade: %s: not ready to upgrade to format %u "
                    "(%zu reasons); nothing was changed:\n", store, r->target,
            r->nreasons);
    for (size_t i = 0; i < r->nreasons; i++)
        fprintf(stderr, "  %s\n", r->reasons[i]);
    exit(1);
}

int cmd_upgrade(int argc, char **argv)
{
    bool check = false, json = false;
    const char *arg = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--check"))
            check = true;
        else if (!strcmp(argv[i], "--json"))
            json = true;
        else if (argv[i][0] == '-' && argv[i][1])
            die_usage(CMD, "unknown option '%s'", argv[i]);
        else if (arg)
            die_usage(CMD, "give one STORE");
        else
            arg = argv[i];
    }
    if (!arg)
        die_usage(CMD, "give one STORE");
    if (json && !check)
        die_usage(CMD, "--json goes with --check");
    bool mounted;
    char *store = resolve_volume(arg, &mounted);
    if (mounted && !check)
        die(CMD, "%s: the volume is mounted; unmount it first (the upgrade "
                 "works offline); nothing was changed", arg);
    struct upgrade_report r;
    int rc = check ? upgrade_check(store, &r)
                   : upgrade_run(store, &r, progress_line, (void *)arg);
    if (rc && rc != -EAGAIN)
        die(CMD, "%s: %s; %s", arg, open_error(rc),
            r.marked ? "the upgrade stopped: running snapfs upgrade again "
                       "finishes it"
                     : "nothing was changed");
    if (check) {
        if (json)
            print_json(arg, &r);
        else
            print_text(arg, &r);
    } else if (rc == -EAGAIN) {
        die_not_ready(arg, &r);
    } else if (r.current) {
        printf("%s: already format %u: nothing to upgrade\n", arg, r.format);
    } else {
        printf("%s: upgraded from format %u to %u\n", arg, r.format,
               r.target);
    }
    int status = r.ready ? 0 : 1;
    upgrade_report_free(&r);
    free(store);
    return status;
}
