/*
 * config_cmd.c - `snapfs config export [VOLUME...|--all] [--with-secrets
 * [--passphrase-file F]]` and `snapfs config import FILE [VOLUME]
 * [--apply] [--json] [--passphrase-file F]`: volumes' settings, snapshot
 * policies (with their hooks) and qtrees, and this host's mirror
 * relationships, peers, vault stores, policies and relationships and
 * NDMP users, as one versioned JSON document (tools/config/), and that
 * document made true on this host.
 *
 * Secrets (peers' keys, vault stores' passphrases, NDMP passwords) are in
 * the document only with --with-secrets, sealed under a passphrase taken
 * from --passphrase-file, SNAPFS_CONFIG_PASSPHRASE or the terminal, never
 * from the command line; nothing here prints one.
 *
 * Import is a dry run unless --apply: it reads and checks the whole file
 * first (a newer version, an unknown key, a bad value, a wrong
 * passphrase: one message, exit 1, nothing changed), then plans every
 * item and prints it (created, changed, unchanged, refused with why).
 * With --apply and nothing refused, each step is done: a volume's as the
 * snapfs command that does it (so it is checked and reported as that
 * command is, mounted or not), the host's by the engine's own function;
 * anything refused means nothing is applied.  Import never deletes.
 * With VOLUME, the file's one volume is made true on VOLUME (one
 * volume's configuration onto another).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cli.h"
#include "config/config.h"
#include "vault_cmd.h"

#define CONFIG_FILE_MAX (16 << 20)
#define PASS_ENV "SNAPFS_CONFIG_PASSPHRASE"

extern char **environ;

static void read_volume(const char *cmd, const char *arg,
                        struct cfg_volume *out)
{
    struct volume vol;
    volume_open(&vol, cmd, arg);
    struct sfs_store *st = volume_read_store(&vol, cmd, "read");
    int rc = cfg_read(st, vol.store, out);
    sfs_close(st);
    if (rc)
        die(cmd, "%s: reading its configuration: %s", arg, strerror(-rc));
    free(vol.store);
    free(vol.mountpoint);
}

struct export_opts {
    bool all, secrets;
    const char *pass_file;
    char **vols;
    size_t n;
};

static void export_args(int argc, char **argv, struct export_opts *o)
{
    const char *cmd = "config export";
    o->vols = calloc((size_t)argc + 1, sizeof(*o->vols));
    for (int i = 2; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "--all"))
            o->all = true;
        else if (!strcmp(argv[i], "--with-secrets"))
            o->secrets = true;
        else if ((v = option_value(cmd, "--passphrase-file", argc, argv, &i)))
            o->pass_file = v;
        else if (argv[i][0] == '-' && argv[i][1])
            die_usage(cmd, "unknown option '%s'", argv[i]);
        else
            o->vols[o->n++] = argv[i];
    }
    if (o->all == (o->n > 0))
        die_usage(cmd, "give volumes, or --all (every mounted volume)");
    if (o->pass_file && !o->secrets)
        die_usage(cmd, "--passphrase-file seals the secrets: give "
                       "--with-secrets too");
}

static int config_export(int argc, char **argv)
{
    const char *cmd = "config export";
    struct export_opts o = { 0 };
    export_args(argc, argv, &o);
    if (o.all) {
        free(o.vols);
        o.n = mounted_volumes(&o.vols);
    }
    struct cfg_doc d = { .has_host = true, .has_secrets = o.secrets };
    d.vols = calloc(o.n + 1, sizeof(*d.vols));
    if (!d.vols)
        die(cmd, "out of memory");
    for (size_t i = 0; i < o.n; i++)
        read_volume(cmd, o.vols[i], &d.vols[d.nvols++]);
    char err[512], pass[CONFIG_PASS_MAX];
    size_t plen = 0;
    if (cfg_host_read(&d.host, o.secrets, err, sizeof(err)))
        die(cmd, "%s", err);
    if (o.secrets)
        plen = vault_cmd_secret(cmd, o.pass_file, PASS_ENV,
                                "Passphrase for the configuration's "
                                "secrets: ", true, pass);
    int rc = cfg_write(stdout, &d, pass, plen);
    vc_wipe(pass, sizeof(pass));
    cfg_doc_free(&d);
    free(o.vols);
    if (rc)
        die(cmd, "writing the document: %s", strerror(-rc));
    return 0;
}

/* ---- import ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("config import", "%s: %s", path, strerror(errno));
    char *buf = malloc(CONFIG_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, CONFIG_FILE_MAX + 1, f) : 0;
    bool err = ferror(f);
    fclose(f);
    if (!buf || err)
        die("config import", "%s: cannot be read", path);
    if (n > CONFIG_FILE_MAX)
        die("config import", "%s: larger than %d MiB: not a configuration",
            path, CONFIG_FILE_MAX >> 20);
    if (memchr(buf, 0, n))
        die("config import", "%s: a NUL byte: not a configuration", path);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Run snapfs with ARGV (this very binary): its exit status.  QUIET: its
 * standard output goes to /dev/null (a --json report is being printed). */
static int run_snapfs(char **argv, int argc, bool quiet)
{
    char *full[32] = { "snapfs" };
    for (int i = 0; i < argc && i < 30; i++)
        full[i + 1] = argv[i];
    full[argc + 1] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (quiet)
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    fflush(stdout);
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, full, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        return 127;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static bool volume_there(const char *arg, char *why, size_t cap)
{
    bool mounted;
    char *store = resolve_volume(arg, &mounted);
    struct sfs_store *st;
    int rc = store ? sfs_open(store, SFS_OPEN_RDONLY, &st) : -ENOMEM;
    free(store);
    if (rc) {
        snprintf(why, cap, "%s", open_error(rc));
        return false;
    }
    sfs_close(st);
    return true;
}

static void plan_volume(struct cfg_plan *p, const char *vol,
                        const struct cfg_volume *want)
{
    char why[512];
    if (!volume_there(vol, why, sizeof(why))) {
        struct cfg_step *s = cfg_step_add(p, CFG_REFUSE, vol, "volume");
        if (s)
            snprintf(s->why, sizeof(s->why), "cannot be opened: %.400s", why);
        return;
    }
    struct cfg_volume cur;
    read_volume("config import", vol, &cur);
    cfg_plan_volume(p, vol, &cur, want);
    cfg_volume_free(&cur);
}

struct import_opts {
    const char *file, *onto, *pass_file;
    bool apply, json;
};

static size_t ask_pass(void *arg, char *buf, size_t cap)
{
    const struct import_opts *o = arg;
    (void)cap; /* CONFIG_PASS_MAX == VAULT_PASS_MAX */
    return vault_cmd_secret("config import", o->pass_file, PASS_ENV,
                            "Passphrase of the configuration's secrets: ",
                            false, buf);
}

static const char *const kind_words[] = { "", "create", "change",
                                          "unchanged", "refused" };

static void print_text(const struct cfg_plan *p, const size_t count[5],
                       bool apply)
{
    for (size_t i = 0; i < p->n; i++) {
        const struct cfg_step *s = &p->v[i];
        if (s->kind == CFG_REFUSE)
            printf("%s: refused: %s: %s\n", s->target, s->what, s->why);
        else
            printf("%s: %s %s\n", s->target, kind_words[s->kind], s->what);
    }
    printf("snapfs config import: %zu to create, %zu to change, %zu "
           "unchanged, %zu refused%s\n", count[CFG_CREATE], count[CFG_CHANGE],
           count[CFG_SAME], count[CFG_REFUSE],
           apply ? "" : " (a dry run: nothing was changed; --apply "
                        "changes it)");
}

static void print_json(const struct cfg_plan *p, const size_t count[5],
                       bool apply)
{
    json_t *items = json_array();
    for (size_t i = 0; i < p->n; i++) {
        const struct cfg_step *s = &p->v[i];
        json_t *it = json_pack("{s:s, s:s, s:s}", "target", s->target,
                               "action", kind_words[s->kind], "item",
                               s->what);
        if (s->kind == CFG_REFUSE)
            json_object_set_new(it, "why", json_string(s->why));
        json_array_append_new(items, it);
    }
    json_t *j = json_pack("{s:b, s:o, s:I, s:I, s:I, s:I}", "dry_run", !apply,
                          "items", items, "create",
                          (json_int_t)count[CFG_CREATE], "change",
                          (json_int_t)count[CFG_CHANGE], "unchanged",
                          (json_int_t)count[CFG_SAME], "refused",
                          (json_int_t)count[CFG_REFUSE]);
    json_dumpf(j, stdout, JSON_INDENT(2));
    printf("\n");
    json_decref(j);
}

static void import_args(int argc, char **argv, struct import_opts *o)
{
    const char *cmd = "config import";
    for (int i = 2; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "--apply"))
            o->apply = true;
        else if (!strcmp(argv[i], "--json"))
            o->json = true;
        else if ((v = option_value(cmd, "--passphrase-file", argc, argv, &i)))
            o->pass_file = v;
        else if (argv[i][0] == '-' && argv[i][1])
            die_usage(cmd, "unknown option '%s'", argv[i]);
        else if (!o->file)
            o->file = argv[i];
        else if (!o->onto)
            o->onto = argv[i];
        else
            die_usage(cmd, "too many arguments ('%s')", argv[i]);
    }
    if (!o->file)
        die_usage(cmd, "give the configuration file (and a VOLUME to put "
                       "its one volume's configuration on)");
}

/* Do every step of P (nothing refused): dies at the first that fails. */
static void apply_plan(struct cfg_plan *p, const char *file, bool quiet)
{
    const char *cmd = "config import";
    for (size_t i = 0; i < p->n; i++) {
        struct cfg_step *s = &p->v[i];
        char err[600] = "";
        if (s->kind == CFG_SAME)
            continue;
        if (s->apply && s->apply(s, err, sizeof(err))) {
            fflush(stdout);
            die(cmd, "%s: %s %s: %s; the steps before it were applied", file,
                kind_words[s->kind], s->what, err);
        }
        if (s->apply && !quiet)
            printf("snapfs config import: %s: %sd %s\n", s->target,
                   kind_words[s->kind], s->what);
        if (!s->apply && run_snapfs(s->argv, s->argc, quiet)) {
            fflush(stdout);
            die(cmd, "%s: %s failed (above); the steps before it were "
                     "applied", s->target, s->what);
        }
    }
}

static int config_import(int argc, char **argv)
{
    const char *cmd = "config import";
    struct import_opts o = { 0 };
    import_args(argc, argv, &o);
    size_t len;
    char *text = read_file(o.file, &len), err[600];
    struct cfg_doc d;
    int rc = cfg_parse(text, len, &d, ask_pass, &o, err, sizeof(err));
    free(text);
    if (rc)
        die(cmd, "%s: %s; nothing changed", o.file, err);
    if (o.onto && d.nvols != 1)
        die(cmd, "%s holds %zu volumes: with VOLUME give a file of one "
                 "volume; nothing changed", o.file, d.nvols);
    struct cfg_plan p = { 0 };
    cfg_plan_host(&p, &d.host);
    for (size_t i = 0; i < d.nvols; i++)
        plan_volume(&p, o.onto ? o.onto : d.vols[i].store, &d.vols[i]);
    size_t count[5] = { 0 };
    for (size_t i = 0; i < p.n; i++)
        count[p.v[i].kind]++;
    if (o.json)
        print_json(&p, count, o.apply);
    else
        print_text(&p, count, o.apply);
    if (o.apply && count[CFG_REFUSE]) {
        fflush(stdout);
        die(cmd, "%s: %zu item%s refused: nothing applied", o.file,
            count[CFG_REFUSE], count[CFG_REFUSE] == 1 ? "" : "s");
    }
    if (o.apply)
        apply_plan(&p, o.file, o.json);
    cfg_plan_free(&p);
    cfg_doc_free(&d);
    return 0;
}

int cmd_config(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "export"))
        return config_export(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "import"))
        return config_import(argc, argv);
    die_usage("config", "give export or import");
}
