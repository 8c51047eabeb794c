/*
 * config_cmd.c - `snapfs config export [VOLUME...|--all]` and `snapfs
 * config import FILE [VOLUME] [--apply]`: a volume's settings, snapshot
 * policies (with their hooks) and qtrees as one versioned JSON document
 * (tools/config/config.c), and that document made true on this host.
 *
 * Import is a dry run unless --apply: it reads and checks the whole file
 * first (a newer version, an unknown key, a bad value: one message, exit
 * 1, nothing changed), then plans every volume's steps and prints them
 * (create, change, refused).  With --apply and nothing refused, each step
 * runs as the snapfs command that does it (so it is checked and reported
 * as that command is, mounted or not); anything refused means nothing is
 * applied.  Import never deletes: what the volume has and the file does
 * not name stays.  With VOLUME, the file's one volume is made true on
 * VOLUME (one volume's configuration onto another).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cli.h"
#include "config/config.h"

#define CONFIG_FILE_MAX (16 << 20)

extern char **environ;

static void read_volume(const char *arg, struct cfg_volume *out)
{
    struct volume vol;
    volume_open(&vol, "config", arg);
    struct sfs_store *st = volume_read_store(&vol, "config", "read");
    int rc = cfg_read(st, vol.store, out);
    sfs_close(st);
    if (rc)
        die("config", "%s: reading its configuration: %s", arg,
            strerror(-rc));
    free(vol.store);
    free(vol.mountpoint);
}

static int config_export(int argc, char **argv)
{
    bool all = false;
    char **vols = calloc((size_t)argc + 1, sizeof(*vols));
    size_t n = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--all"))
            all = true;
        else if (argv[i][0] == '-' && argv[i][1])
            die_usage("config export", "unknown option '%s'", argv[i]);
        else
            vols[n++] = argv[i];
    }
    if (all == (n > 0))
        die_usage("config export", "give volumes, or --all (every mounted "
                                   "volume)");
    if (all) {
        free(vols);
        n = mounted_volumes(&vols);
    }
    struct cfg_volume *v = calloc(n + 1, sizeof(*v));
    if (!v)
        die("config export", "out of memory");
    for (size_t i = 0; i < n; i++)
        read_volume(vols[i], &v[i]);
    cfg_write(stdout, v, n);
    for (size_t i = 0; i < n; i++)
        cfg_volume_free(&v[i]);
    free(v);
    free(vols);
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

/* Run snapfs with ARGV (this very binary): its exit status. */
static int run_snapfs(char **argv, int argc)
{
    char *full[32] = { "snapfs" };
    for (int i = 0; i < argc && i < 30; i++)
        full[i + 1] = argv[i];
    full[argc + 1] = NULL;
    pid_t pid;
    fflush(stdout);
    if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, full, environ))
        return 127;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

struct target {
    const char *vol;
    struct cfg_step *steps;
    size_t n;
};

static bool volume_there(const char *arg, char *why, size_t cap)
{
    bool mounted;
    char *store = resolve_volume(arg, &mounted);
    struct sfs_store *st;
    int rc = store ? sfs_open(store, SFS_OPEN_RDONLY, &st) : -ENOMEM;
    free(store);
    if (rc) {
        snprintf(why, cap, "volume %s: %s", arg, open_error(rc));
        return false;
    }
    sfs_close(st);
    return true;
}

static void plan_target(struct target *t, const struct cfg_volume *want)
{
    char why[512];
    if (!volume_there(t->vol, why, sizeof(why))) {
        t->steps = calloc(1, sizeof(*t->steps));
        if (!t->steps)
            die("config import", "out of memory");
        t->steps[0].kind = CFG_REFUSE;
        snprintf(t->steps[0].what, sizeof(t->steps[0].what), "%s", why);
        t->n = 1;
        return;
    }
    struct cfg_volume cur;
    read_volume(t->vol, &cur);
    cfg_plan(t->vol, &cur, want, &t->steps, &t->n);
    cfg_volume_free(&cur);
}

static int config_import(int argc, char **argv)
{
    const char *cmd = "config import", *file = NULL, *onto = NULL;
    bool apply = false;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--apply"))
            apply = true;
        else if (argv[i][0] == '-' && argv[i][1])
            die_usage(cmd, "unknown option '%s'", argv[i]);
        else if (!file)
            file = argv[i];
        else if (!onto)
            onto = argv[i];
        else
            die_usage(cmd, "too many arguments ('%s')", argv[i]);
    }
    if (!file)
        die_usage(cmd, "give the configuration file (and a VOLUME to put "
                       "its one volume's configuration on)");
    size_t len;
    char *text = read_file(file, &len), err[512];
    struct cfg_volume *want;
    size_t n;
    int rc = cfg_parse(text, len, &want, &n, err, sizeof(err));
    free(text);
    if (rc)
        die(cmd, "%s: %s; nothing changed", file, err);
    if (onto && n != 1)
        die(cmd, "%s holds %zu volumes: with VOLUME give a file of one "
                 "volume; nothing changed", file, n);
    struct target *t = calloc(n + 1, sizeof(*t));
    if (!t)
        die(cmd, "out of memory");
    size_t creates = 0, changes = 0, refused = 0;
    for (size_t i = 0; i < n; i++) {
        t[i].vol = onto ? onto : want[i].store;
        plan_target(&t[i], &want[i]);
        for (size_t k = 0; k < t[i].n; k++) {
            const struct cfg_step *s = &t[i].steps[k];
            creates += s->kind == CFG_CREATE;
            changes += s->kind == CFG_CHANGE;
            refused += s->kind == CFG_REFUSE;
            printf("%s: %s %s\n", t[i].vol,
                   s->kind == CFG_CREATE ? "create"
                   : s->kind == CFG_CHANGE ? "change" : "refused:", s->what);
        }
    }
    printf("snapfs config import: %zu to create, %zu to change, %zu refused",
           creates, changes, refused);
    if (!apply)
        printf(" (a dry run: nothing was changed; --apply changes it)\n");
    else
        printf("\n");
    int status = 0;
    if (apply && refused) {
        fflush(stdout);
        die(cmd, "%s: %zu step%s refused: nothing applied", file, refused,
            refused == 1 ? "" : "s");
    }
    for (size_t i = 0; apply && !status && i < n; i++)
        for (size_t k = 0; !status && k < t[i].n; k++)
            if (run_snapfs(t[i].steps[k].argv, t[i].steps[k].argc)) {
                fflush(stdout);
                die(cmd, "%s: %s failed (above); the steps before it were "
                         "applied", t[i].vol, t[i].steps[k].what);
            }
    for (size_t i = 0; i < n; i++) {
        cfg_steps_free(t[i].steps, t[i].n);
        cfg_volume_free(&want[i]);
    }
    free(t);
    free(want);
    return status;
}

int cmd_config(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "export"))
        return config_export(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "import"))
        return config_import(argc, argv);
    die_usage("config", "give export or import");
}
