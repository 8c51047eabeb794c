/*
 * hookopt.c - the hook options of the snapshot and policy commands
 * (`--pre CMD --post CMD --hook-timeout SECONDS --on-hook-failure
 * abandon|crash-consistent`), checked before anything runs, and the
 * messages of a snapshot taken with hooks.  The hooks themselves run in
 * fs/hooks.c; their output goes to the command's stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hooks.h"

bool hook_option(const char *cmd, int argc, char **argv, int *i,
                 struct hook_options *o)
{
    const char *v;
    if ((v = option_value(cmd, "--pre", argc, argv, i)))
        o->pre = v;
    else if ((v = option_value(cmd, "--post", argc, argv, i)))
        o->post = v;
    else if ((v = option_value(cmd, "--hook-timeout", argc, argv, i)))
        o->timeout = v;
    else if ((v = option_value(cmd, "--on-hook-failure", argc, argv, i)))
        o->on_failure = v;
    else
        return false;
    return true;
}

bool hook_options_given(const struct hook_options *o)
{
    return o->pre || o->post || o->timeout || o->on_failure;
}

static void set_command(const char *cmd, const char *opt, const char *value,
                        char *out, size_t cap)
{
    size_t n = strlen(value);
    if (n >= cap)
        die_usage(cmd, "%s: the command is longer than %zu bytes", opt,
                  cap - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
            die_usage(cmd, "%s: the command has a control character (a "
                           "newline or tab?); give one command line", opt);
    memcpy(out, value, n + 1);
}

void hook_options_apply(const char *cmd, const struct hook_options *o,
                        struct sfs_hookspec *h)
{
    if (o->pre)
        set_command(cmd, "--pre", o->pre, h->pre, sizeof(h->pre));
    if (o->post)
        set_command(cmd, "--post", o->post, h->post, sizeof(h->post));
    if (o->timeout) {
        char *end;
        unsigned long t = strtoul(o->timeout, &end, 10);
        if (end == o->timeout || *end || o->timeout[0] == '-' || t < 1 ||
            t > SFS_HOOK_TIMEOUT_MAX)
            die_usage(cmd, "--hook-timeout '%s': give seconds, 1 to %d",
                      o->timeout, SFS_HOOK_TIMEOUT_MAX);
        h->timeout = (uint32_t)t;
    }
    if (o->on_failure) {
        if (!strcmp(o->on_failure, "abandon"))
            h->on_failure = SFS_HOOK_ABANDON;
        else if (!strcmp(o->on_failure, "crash-consistent"))
            h->on_failure = SFS_HOOK_CRASH_CONSISTENT;
        else
            die_usage(cmd, "--on-hook-failure '%s': give abandon or "
                           "crash-consistent", o->on_failure);
    }
}

const char *hook_failure_word(uint32_t on_failure)
{
    return on_failure == SFS_HOOK_CRASH_CONSISTENT ? "crash-consistent"
                                                   : "abandon";
}

void hook_log_stderr(void *arg, const char *line)
{
    fprintf(stderr, "snapfs %s: %s\n", (const char *)arg, line);
}

void hooks_start(struct hooks_run *r, const char *cmd, const char *volume,
                 const char *snapshot)
{
    r->volume = volume;
    r->snapshot = snapshot;
    r->log = hook_log_stderr;
    r->log_arg = (void *)cmd;
    hooks_after_at_exit(r); /* a die() from here on still runs post */
    hooks_before(r);
    if (r->verdict != HOOKS_ABANDONED)
        return;
    hooks_after(r, "abandoned");
    die(cmd, "%s: snapshot %s abandoned: %s; nothing was taken (the hooks' "
             "output is above)", volume, snapshot, r->why);
}

void hooks_finish(struct hooks_run *r, const char *cmd)
{
    hooks_after(r, hooks_result_word(r->verdict));
    if (r->verdict == HOOKS_CRASH && r->why[0])
        fprintf(stderr, "snapfs %s: %s: snapshot %s taken crash-consistent "
                        "(labelled consistency=crash): %s\n", cmd, r->volume,
                r->snapshot, r->why);
    if (r->post_why[0])
        die(cmd, "%s: snapshot %s was taken (%s), but %s", r->volume,
            r->snapshot, r->labels, r->post_why);
}
