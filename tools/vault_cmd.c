/*
 * vault_cmd.c - `snapfs vault ...`: the command layer of the vault engine
 * (tools/vault/, whose vault.h is all it uses of it).
 *
 *   vault init TARGET                     a new vault; the first passphrase
 *   vault key list|add TARGET | key remove TARGET KEYID
 *   vault backup VOL SNAPSHOT TARGET [--label L]... [--pack-size SIZE]
 *   vault restore TARGET SNAPSHOT NEWSTORE
 *   vault restore-file TARGET SNAPSHOT PATH --to DEST
 *   vault list TARGET [--json] | show TARGET SNAPSHOT [--json]
 *   vault check TARGET [--read-data]
 *   vault forget TARGET SNAPSHOT... | --keep-last/daily/weekly/monthly N
 *                --keep-label LABEL=N [--dry-run] [--prune]
 *   vault prune TARGET [--dry-run]
 *   vault mount TARGET MOUNTPOINT [--cache-size BYTES] [--cache DIR]
 *               [--keep-cache] [-f]
 *   every one: [--endpoint URL] [--region R] [--passphrase-file FILE]
 *   (vault_ops.c: store, policy, protect, relationship, update, diff)
 *
 * TARGET is a URL (s3://BUCKET/PREFIX, file:///PATH) or the name of an
 * object store (`vault store add`): its target, endpoint, region, AWS
 * profile and passphrase file, unless the command line gives them.
 * backup, restore and restore-file take --progress: the progress lines
 * even when stderr is not a terminal.
 *
 * Passphrases come from --passphrase-file (its first line), the
 * environment (SNAPFS_VAULT_PASSPHRASE; SNAPFS_VAULT_NEW_PASSPHRASE and
 * --new-passphrase-file for `key add`), or a prompt on the terminal with
 * echo off - never from the command line; they are wiped from memory
 * once used and never printed.  Messages are "snapfs vault CMD: why",
 * exit 1 (2 for usage).  backup holds the snapshot it reads (tag
 * vault:PID; holds of killed earlier backups are released when the next
 * one starts), and shows progress (bytes, rate, time left) only on a
 * terminal.  restore builds NEWSTORE under NEWSTORE.partial-PID and
 * renames it when complete: a failed restore leaves no NEWSTORE.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "vault/vmount.h"
#include "vault_cmd.h"

#define PASS_MAX VAULT_PASS_MAX
#define LABELS_MAX 15

/* ---- options ---- */

enum { O_JSON = 1, O_READ_DATA = 2, O_LABEL = 4, O_PACK = 8, O_NEWPASS = 16,
       O_KEEP = 32, O_DRY = 64, O_TO = 128, O_PROGRESS = 256 };
#define POS_MAX 64

struct vopts {
    const char *cmd;           /* "vault backup", for messages */
    const char *endpoint, *region, *pass_file, *new_pass_file, *to;
    uint64_t pack_size;
    bool json, read_data, progress;
    const char *labels[LABELS_MAX];
    uint32_t nlabels;
    struct vault_keep_policy keep;
    bool keep_given, dry_run, prune;
    char *pos[POS_MAX];
    int npos;
};

/* --keep-label LABEL=N */
static void keep_label(struct vopts *o, const char *v)
{
    const char *eq = strrchr(v, '=');
    char *end;
    unsigned long n = eq ? strtoul(eq + 1, &end, 10) : 0;
    if (!eq || eq == v || !eq[1] || *end || !n || n > UINT32_MAX ||
        (size_t)(eq - v) > SFS_NAME_MAX)
        die_usage(o->cmd, "--keep-label %s: give LABEL=N (N >= 1)", v);
    if (o->keep.nlabels == VAULT_KEEP_LABELS)
        die_usage(o->cmd, "at most %d --keep-label", VAULT_KEEP_LABELS);
    snprintf(o->keep.labels[o->keep.nlabels].label, SFS_NAME_MAX + 1, "%.*s",
             (int)(eq - v), v);
    o->keep.labels[o->keep.nlabels++].keep = (uint32_t)n;
    o->keep_given = true;
}

/* --keep-last/daily/weekly/monthly N at ARGV[*I]: true if one. */
static bool keep_rule(struct vopts *o, int argc, char **argv, int *i)
{
    static const char *const names[] = { "--keep-last", "--keep-daily",
                                         "--keep-weekly", "--keep-monthly" };
    uint32_t *slots[] = { &o->keep.last, &o->keep.daily, &o->keep.weekly,
                          &o->keep.monthly };
    for (int k = 0; k < 4; k++) {
        const char *v = option_value(o->cmd, names[k], argc, argv, i);
        if (!v)
            continue;
        char *end;
        unsigned long n = strtoul(v, &end, 10);
        if (!*v || *end || !n || n > UINT32_MAX)
            die_usage(o->cmd, "%s %s: give a count of 1 or more", names[k], v);
        *slots[k] = (uint32_t)n;
        o->keep_given = true;
        return true;
    }
    const char *v = option_value(o->cmd, "--keep-label", argc, argv, i);
    if (v)
        keep_label(o, v);
    return v != NULL;
}

static void check_label(const char *cmd, const char *l)
{
    if (!*l || strlen(l) > SFS_NAME_MAX || strchr(l, '.'))
        die_usage(cmd, "--label %s: give 1-255 bytes without a '.'", l);
    for (const char *p = l; *p; p++)
        if ((unsigned char)*p < 0x20)
            die_usage(cmd, "--label: no control characters");
}

/* One option at ARGV[*I], if it is one SUB allows: true. */
static bool parse_option(struct vopts *o, unsigned allowed, int argc,
                         char **argv, int *i)
{
    const char *v;
    if ((v = option_value(o->cmd, "--endpoint", argc, argv, i)))
        o->endpoint = v;
    else if ((v = option_value(o->cmd, "--region", argc, argv, i)))
        o->region = v;
    else if ((v = option_value(o->cmd, "--passphrase-file", argc, argv, i)))
        o->pass_file = v;
    else if ((allowed & O_NEWPASS) &&
             (v = option_value(o->cmd, "--new-passphrase-file", argc, argv, i)))
        o->new_pass_file = v;
    else if ((allowed & O_JSON) && !strcmp(argv[*i], "--json"))
        o->json = true;
    else if ((allowed & O_READ_DATA) && !strcmp(argv[*i], "--read-data"))
        o->read_data = true;
    else if ((allowed & O_PROGRESS) && !strcmp(argv[*i], "--progress"))
        o->progress = true;
    else if ((allowed & O_LABEL) &&
             (v = option_value(o->cmd, "--label", argc, argv, i))) {
        check_label(o->cmd, v);
        if (o->nlabels == LABELS_MAX)
            die_usage(o->cmd, "at most %d --label", LABELS_MAX);
        o->labels[o->nlabels++] = v;
    } else if ((allowed & O_PACK) &&
               (v = option_value(o->cmd, "--pack-size", argc, argv, i))) {
        if (parse_size(v, &o->pack_size) || o->pack_size < VAULT_PACK_MIN ||
            o->pack_size > VAULT_PACK_MAX)
            die_usage(o->cmd, "--pack-size %s: give 1M to 128M", v);
    } else if ((allowed & O_KEEP) && keep_rule(o, argc, argv, i)) {
    } else if ((allowed & O_KEEP) && !strcmp(argv[*i], "--prune")) {
        o->prune = true;
    } else if ((allowed & O_DRY) && !strcmp(argv[*i], "--dry-run")) {
        o->dry_run = true;
    } else if ((allowed & O_TO) &&
               (v = option_value(o->cmd, "--to", argc, argv, i))) {
        o->to = v;
    } else
        return false;
    return true;
}

/* Parse ARGV (from 1) into O: MIN to MAX positional arguments. */
static void parse_some(struct vopts *o, const char *cmd, unsigned allowed,
                       int min, int max, const char *usage, int argc,
                       char **argv)
{
    memset(o, 0, sizeof(*o));
    o->cmd = cmd;
    for (int i = 1; i < argc; i++) {
        if (parse_option(o, allowed, argc, argv, &i))
            continue;
        if ((argv[i][0] == '-' && argv[i][1]) || o->npos == max)
            die_usage(cmd, "usage: snapfs %s %s", cmd, usage);
        o->pos[o->npos++] = argv[i];
    }
    if (o->npos < min)
        die_usage(cmd, "usage: snapfs %s %s", cmd, usage);
}

/* Exactly NPOS positional arguments. */
static void parse_args(struct vopts *o, const char *cmd, unsigned allowed,
                       int npos, const char *usage, int argc, char **argv)
{
    parse_some(o, cmd, allowed, npos, npos, usage, argc, argv);
}

/* ---- passphrases ---- */

/* The first line of FILE into BUF. */
static size_t secret_from_file(const char *cmd, const char *file, char *buf)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die(cmd, "%s: %s", file, strerror(errno));
    ssize_t n = read(fd, buf, PASS_MAX);
    close(fd);
    if (n < 0)
        die(cmd, "%s: %s", file, strerror(errno));
    buf[n < PASS_MAX ? n : PASS_MAX - 1] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
    return strlen(buf);
}

/* One line from the terminal with echo off, after PROMPT (ENV: the
 * variable that could have given it). */
static size_t secret_from_tty(const char *cmd, const char *env,
                              const char *prompt, char *buf)
{
    FILE *tty = fopen("/dev/tty", "r+");
    if (!tty)
        die(cmd, "no passphrase: give --passphrase-file FILE or set "
            "%s (or run on a terminal)", env);
    struct termios old, quiet;
    bool restore = !tcgetattr(fileno(tty), &old);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    if (restore)
        tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
    fputs(prompt, tty);
    fflush(tty);
    if (!fgets(buf, PASS_MAX, tty))
        buf[0] = 0;
    if (restore)
        tcsetattr(fileno(tty), TCSAFLUSH, &old);
    fputc('\n', tty);
    fclose(tty);
    buf[strcspn(buf, "\r\n")] = 0;
    return strlen(buf);
}

size_t vault_cmd_secret(const char *cmd, const char *file, const char *env,
                          const char *prompt, bool confirm, char *buf)
{
    size_t n;
    const char *e = getenv(env);
    if (file) {
        n = secret_from_file(cmd, file, buf);
    } else if (e) {
        n = strlen(e);
        if (n >= PASS_MAX)
            die(cmd, "%s: longer than %d bytes", env, PASS_MAX - 1);
        memcpy(buf, e, n + 1);
    } else {
        n = secret_from_tty(cmd, env, prompt, buf);
        if (confirm && n) {
            char again[PASS_MAX];
            size_t m = secret_from_tty(cmd, env, "Again: ", again);
            bool same = m == n && !memcmp(again, buf, n);
            vc_wipe(again, sizeof(again));
            if (!same)
                die(cmd, "the two passphrases differ; nothing was changed");
        }
    }
    if (!n)
        die(cmd, "an empty passphrase is refused");
    return n;
}

size_t vault_cmd_passphrase(const char *cmd, const char *file, bool confirm,
                            char *buf)
{
    return vault_cmd_secret(cmd, file, "SNAPFS_VAULT_PASSPHRASE",
                       confirm ? "New vault passphrase: "
                               : "Vault passphrase: ", confirm, buf);
}

/* ---- what a command holds until it ends ---- */

struct holder {
    struct volume *vol;
    const char *cmd;
    char tag[32];
};

/* The vault's lock and a snapshot hold are released however the command
 * ends: normally, or through die() (exit runs release_at_exit, registered
 * when a vault is opened). */
static struct {
    struct vault *v;                 /* its lock */
    struct holder *hold;             /* holds snapshot NAME */
    char name[SFS_NAME_MAX + 1];
} held;

static void release_at_exit(void)
{
    struct vault *v = held.v;
    struct holder *h = held.hold;
    held.v = NULL;
    held.hold = NULL;
    if (h)
        volume_hold(h->vol, h->cmd, held.name, h->tag, false);
    if (v)
        vault_unlock(v);
}

void vault_cmd_close(struct vault *v)
{
    if (held.v == v)
        held.v = NULL;
    vault_close(v);
}

/* ---- reaching the vault ---- */

void vault_where_resolve(const char *cmd, const char *arg,
                         const char *endpoint, const char *region,
                         const char *pass_file, struct vault_where *w)
{
    memset(w, 0, sizeof(*w));
    w->so = (struct objstore_opts)OBJSTORE_OPTS_INIT;
    w->target = arg;
    w->pass_file = pass_file;
    if (!strstr(arg, "://")) {
        int rc = vault_store_load(arg, &w->conf);
        if (rc == -ENOENT)
            die(cmd, "%s: no object store of that name (see snapfs vault "
                "store list), and no target (s3://BUCKET/PREFIX or "
                "file:///PATH)", arg);
        if (rc)
            die(cmd, "object store %s: %s", arg, strerror(-rc));
        w->store = arg;
        w->target = w->conf.target;
        w->so = vault_store_opts(&w->conf);
        if (!pass_file &&
            !vault_store_pass_path(arg, w->pass_path, sizeof(w->pass_path)))
            w->pass_file = w->pass_path;
    }
    if (endpoint)
        w->so.endpoint = endpoint;
    if (region)
        w->so.region = region;
}

static struct vault_where *where_of(const struct vopts *o, const char *arg)
{
    static struct vault_where w; /* one vault a command */
    vault_where_resolve(o->cmd, arg, o->endpoint, o->region, o->pass_file, &w);
    return &w;
}

void vault_cmd_die(const char *cmd, struct vault *v, int rc)
{
    const char *why = vault_why(v);
    char msg[1200];
    snprintf(msg, sizeof(msg), "%s", why && *why ? why : strerror(-rc));
    vault_cmd_close(v);
    die(cmd, "%s", msg);
}

struct vault *vault_cmd_open(const char *cmd, const struct vault_where *w,
                             int lock, const char *what)
{
    struct vault *v;
    int rc = vault_connect(w->target, &w->so, &v);
    if (rc)
        vault_cmd_die(cmd, v, rc);
    char pass[PASS_MAX];
    size_t plen = vault_cmd_secret(cmd, w->pass_file, "SNAPFS_VAULT_PASSPHRASE",
                              "Vault passphrase: ", false, pass);
    rc = vault_open_keys(v, pass, plen);
    vc_wipe(pass, sizeof(pass));
    if (!rc && lock)
        rc = vault_lock(v, lock > 0, what);
    if (rc)
        vault_cmd_die(cmd, v, rc);
    /* Registered now, after the libraries the object store set up
     * registered their own clean-up: exit handlers run newest first, so
     * ours runs while the store can still delete the lock object. */
    static bool registered;
    if (!registered && !atexit(release_at_exit))
        registered = true;
    held.v = v;
    return v;
}
/* Open TARGET with the passphrase; with a lock when LOCK (NO_LOCK: none). */
static struct vault *open_vault(const struct vopts *o, const char *target,
                                int lock, const char *what)
{
    return vault_cmd_open(o->cmd, where_of(o, target), lock, what);
}

void short_vault_id(const uint8_t id[VC_ID], char out[9])
{
    char hex[VC_HEX];
    vc_hex(id, VC_ID, hex);
    snprintf(out, 9, "%.8s", hex);
}

void vault_local_time(int64_t sec, char *out, size_t cap)
{
    time_t t = (time_t)sec;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

/* ---- init and keys ---- */

static int vault_init_cmd(int argc, char **argv)
{
    struct vopts o;
    parse_args(&o, "vault init", 0, 1, "TARGET [--endpoint URL] [--region R] "
               "[--passphrase-file FILE]", argc, argv);
    char pass[PASS_MAX];
    size_t plen = vault_cmd_secret(o.cmd, o.pass_file, "SNAPFS_VAULT_PASSPHRASE",
                              "New vault passphrase: ", true, pass);
    struct objstore_opts so = OBJSTORE_OPTS_INIT;
    so.endpoint = o.endpoint;
    so.region = o.region;
    struct vault *v;
    int rc = vault_init(o.pos[0], &so, pass, plen, NULL, &v);
    vc_wipe(pass, sizeof(pass));
    if (rc)
        vault_cmd_die(o.cmd, v, rc);
    char id[VC_HEX];
    vault_id_hex(v, id);
    printf("snapfs: created vault %.8s at %s\n", id, o.pos[0]);
    printf("  keep the passphrase safe: without it the vault's data cannot "
           "be read by anyone\n");
    vault_cmd_close(v);
    return 0;
}

struct key_print {
    bool json;
    int n;
};

static int print_key(void *arg, const struct vault_key_line *k)
{
    struct key_print *p = arg;
    char when[32];
    vault_local_time(k->info.created, when, sizeof(when));
    if (p->json) {
        printf("%s{\"id\":\"%s\",\"current\":%s,\"created\":%lld,\"host\":",
               p->n ? "," : "", k->id, k->current ? "true" : "false",
               (long long)k->info.created);
        print_json_string(k->info.host);
        printf(",\"user\":");
        print_json_string(k->info.user);
        printf(",\"kdf\":{\"name\":\"scrypt\",\"N\":%llu,\"r\":%u,\"p\":%u}}",
               (unsigned long long)k->info.kdf.n, k->info.kdf.r,
               k->info.kdf.p);
    } else {
        printf("%s %-8.8s  %-19s  %-16s %s\n", k->current ? "*" : " ", k->id,
               when, k->info.user, k->info.host);
    }
    p->n++;
    return 0;
}

static int key_list(int argc, char **argv)
{
    struct vopts o;
    parse_args(&o, "vault key list", O_JSON, 1, "TARGET [--json]", argc, argv);
    struct vault *v = open_vault(&o, o.pos[0], NO_LOCK, NULL);
    struct key_print p = { o.json, 0 };
    if (o.json)
        printf("[");
    else
        printf("  %-8s  %-19s  %-16s %s\n", "ID", "CREATED", "USER", "HOST");
    int rc = vault_keys_list(v, print_key, &p);
    if (rc)
        vault_cmd_die(o.cmd, v, rc);
    if (o.json)
        printf("]\n");
    vault_cmd_close(v);
    return 0;
}

static int key_add(int argc, char **argv)
{
    struct vopts o;
    parse_args(&o, "vault key add", O_NEWPASS, 1, "TARGET "
               "[--new-passphrase-file FILE]", argc, argv);
    struct vault *v = open_vault(&o, o.pos[0], WRITE_LOCK, "key add");
    char pass[PASS_MAX], id[VC_HEX];
    size_t plen = vault_cmd_secret(o.cmd, o.new_pass_file,
                              "SNAPFS_VAULT_NEW_PASSPHRASE",
                              "New passphrase: ", true, pass);
    int rc = vault_key_add(v, pass, plen, NULL, id);
    vc_wipe(pass, sizeof(pass));
    if (rc)
        vault_cmd_die(o.cmd, v, rc);
    printf("snapfs: added key %.8s to %s\n", id, o.pos[0]);
    vault_cmd_close(v);
    return 0;
}

static int key_remove(int argc, char **argv)
{
    struct vopts o;
    parse_args(&o, "vault key remove", 0, 2, "TARGET KEYID", argc, argv);
    struct vault *v = open_vault(&o, o.pos[0], WRITE_LOCK, "key remove");
    char id[VC_HEX];
    int rc = vault_key_remove(v, o.pos[1], id);
    if (rc)
        vault_cmd_die(o.cmd, v, rc);
    printf("snapfs: removed key %.8s from %s\n", id, o.pos[0]);
    vault_cmd_close(v);
    return 0;
}

static int vault_key_cmd(int argc, char **argv)
{
    if (argc < 2)
        die_usage("vault key", "give list, add or remove");
    if (!strcmp(argv[1], "list"))
        return key_list(argc - 1, argv + 1);
    if (!strcmp(argv[1], "add"))
        return key_add(argc - 1, argv + 1);
    if (!strcmp(argv[1], "remove"))
        return key_remove(argc - 1, argv + 1);
    die_usage("vault key", "unknown subcommand '%s' (list, add, remove)",
              argv[1]);
}

/* ---- backup ---- */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int hold_cb(void *arg, const char *name, bool hold)
{
    struct holder *h = arg;
    return volume_hold(h->vol, h->cmd, name, h->tag, hold);
}

struct stale_hold {
    char name[SFS_NAME_MAX + 1];
    char tag[32];
};

struct stale_holds {
    struct stale_hold *h;
    size_t n, cap;
    const char *snap;
};

/* A tag vault:PID of a process that is gone. */
static int stale_tag_cb(void *arg, const char *tag)
{
    struct stale_holds *s = arg;
    int pid;
    char end;
    if (sscanf(tag, "vault:%d%c", &pid, &end) != 1 || pid <= 0 ||
        !kill(pid, 0) || errno != ESRCH || strlen(tag) >= 32)
        return 0;
    struct stale_hold h;
    snprintf(h.name, sizeof(h.name), "%s", s->snap);
    snprintf(h.tag, sizeof(h.tag), "%s", tag);
    return array_append(&s->h, &s->n, &s->cap, &h, sizeof(h));
}

struct stale_walk {
    struct sfs_store *st;
    MDB_txn *txn;
    struct stale_holds *h;
};

static int stale_snap_cb(void *arg, const struct sfs_snap_rec *s)
{
    struct stale_walk *w = arg;
    w->h->snap = s->name;
    int rc = sfs_snap_holds(w->st, w->txn, s->epoch, stale_tag_cb, w->h);
    return rc < 0 ? rc : 0;
}

/* Release the holds of earlier backups that were killed (kill -9). */
static void release_stale_holds(struct volume *vol, struct sfs_store *st,
                                const char *cmd)
{
    struct stale_holds h = { 0 };
    struct stale_walk w = { st, NULL, &h };
    if (sfs_txn_begin(st, NULL, false, &w.txn))
        return;
    sfs_snap_foreach(st, w.txn, stale_snap_cb, &w);
    mdb_txn_abort(w.txn);
    for (size_t i = 0; i < h.n; i++)
        volume_hold(vol, cmd, h.h[i].name, h.h[i].tag, false);
    free(h.h);
}

struct progress_arg {
    struct progress p;
};

static void progress_cb(void *arg, uint64_t bytes, uint64_t total,
                        uint64_t files)
{
    struct progress_arg *a = arg;
    a->p.total = total;
    progress_update(&a->p, bytes, files);
}

/* Hold snapshot NAME of VOL for the backup and read its record. */
static void hold_snapshot(struct holder *h, struct sfs_store *st,
                          const char *name, struct sfs_snap_rec *snap)
{
    int rc = volume_hold(h->vol, h->cmd, name, h->tag, true);
    if (rc == -ENOENT)
        die(h->cmd, "%s: no snapshot named %s", h->vol->arg, name);
    if (rc)
        die(h->cmd, "%s: holding snapshot %s: %s", h->vol->arg, name,
            snapshot_error(rc));
    held.hold = h;
    snprintf(held.name, sizeof(held.name), "%s", name);
    MDB_txn *txn;
    rc = sfs_txn_begin(st, NULL, false, &txn);
    if (!rc) {
        rc = sfs_snap_find(st, txn, name, snap);
        mdb_txn_abort(txn);
    }
    if (rc)
        die(h->cmd, "%s: snapshot %s: %s", h->vol->arg, name,
            rc == -ENOENT ? "not found" : strerror(-rc));
}

void vault_cmd_print_backup(const char *target, const char *volarg,
                            const struct vault_backup_result *r, double secs)
{
    char id[9], blocks[32], up[32], meta[32];
    short_vault_id(r->snap.id, id);
    if (r->already) {
        printf("snapfs: snapshot %s of %s is in the vault already (%s); "
               "nothing was uploaded\n", r->snap.m.name, volarg, id);
        return;
    }
    format_bytes(r->block_bytes_new, blocks, sizeof(blocks));
    format_bytes(r->uploaded, up, sizeof(up));
    format_bytes(r->meta_bytes, meta, sizeof(meta));
    printf("snapfs: backed up snapshot %s of %s into %s as %s (%s%s)\n",
           r->snap.m.name, volarg, target, id,
           r->base[0] ? "incremental from " : "full",
           r->base[0] ? r->base : "");
    printf("  records: %llu (%s of metadata)\n",
           (unsigned long long)r->records, meta);
    printf("  blocks: %llu referred to, %llu new (%s), %llu already in the "
           "vault\n", (unsigned long long)r->blocks,
           (unsigned long long)r->blocks_new, blocks,
           (unsigned long long)(r->blocks - r->blocks_new));
    printf("  uploaded: %s (%llu bytes) in %llu packs, %.1f s\n", up,
           (unsigned long long)r->uploaded, (unsigned long long)r->packs,
           secs);
    if (r->recovered)
        printf("  resumed: %llu packs an interrupted backup had uploaded "
               "were indexed and used again\n",
               (unsigned long long)r->recovered);
}

const char *vault_cmd_backup_error(int rc)
{
    return rc == -EINTR ? "interrupted; what was uploaded is kept and the "
                          "next backup uses it again"
                        : NULL;
}

static void catch_interrupts(void)
{
    struct sigaction sa = { .sa_handler = on_interrupt };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

struct sfs_store *vault_cmd_source(const char *cmd, struct volume *vol,
                                   const char *arg)
{
    volume_open(vol, cmd, arg);
    struct sfs_store *st = volume_read_store(vol, cmd, "back up");
    release_stale_holds(vol, st, cmd);
    return st;
}

int vault_cmd_backup_one(const struct vault_cmd_backup *b, struct vault *v,
                         const char *name, struct vault_backup_result *r,
                         double *secs)
{
    static struct holder h; /* held.hold points here until released */
    h = (struct holder){ b->vol, b->cmd, "" };
    snprintf(h.tag, sizeof(h.tag), "vault:%d", (int)getpid());
    struct sfs_snap_rec snap;
    catch_interrupts();
    hold_snapshot(&h, b->st, name, &snap);
    struct progress_arg pa;
    progress_start(&pa.p, b->what ? b->what : "backup", 0);
    if (b->progress)
        progress_force(&pa.p);
    struct vault_backup_opts bo = {
        .pack_size = b->pack_size, .labels = b->labels,
        .nlabels = b->nlabels, .hold = hold_cb, .hold_arg = &h,
        .progress = progress_cb, .progress_arg = &pa,
        .interrupted = &interrupted,
    };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = vault_backup(v, b->st, &snap, &bo, r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    progress_clear(&pa.p);
    held.hold = NULL;
    volume_hold(b->vol, b->cmd, snap.name, h.tag, false);
    *secs = (double)(t1.tv_sec - t0.tv_sec) +
            (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return rc;
}

static int vault_backup_cmd(int argc, char **argv)
{
    struct vopts o;
    parse_args(&o, "vault backup", O_LABEL | O_PACK | O_PROGRESS, 3,
               "VOL SNAPSHOT TARGET [--label LABEL]... [--pack-size SIZE] "
               "[--progress]", argc, argv);
    static struct volume vol; /* static: reachable when a check dies */
    struct sfs_store *st = vault_cmd_source(o.cmd, &vol, o.pos[0]);
    struct vault *v = open_vault(&o, o.pos[2], WRITE_LOCK, "backup");
    struct vault_cmd_backup b = {
        .cmd = o.cmd, .vol = &vol, .st = st, .labels = o.labels,
        .nlabels = o.nlabels, .pack_size = (uint32_t)o.pack_size,
        .progress = o.progress,
    };
    struct vault_backup_result r;
    double secs;
    int rc = vault_cmd_backup_one(&b, v, o.pos[1], &r, &secs);
    sfs_close(st);
    if (rc) {
        const char *why = vault_cmd_backup_error(rc);
        if (why)
            die(o.cmd, "%s", why);
        vault_cmd_die(o.cmd, v, rc);
    }
    vault_cmd_print_backup(o.pos[2], vol.arg, &r, secs);
    vault_cmd_close(v);
    return 0;
}

/* ---- list and show ---- */

static void uuid_text(const uint8_t *u, char *out)
{
    sfs_uuid_format(u, out);
}

static void json_manifest(const struct vault_snapshot *s)
{
    const struct vault_manifest *m = &s->m;
    char id[VC_HEX], uuid[SFS_UUID_TEXT];
    vc_hex(s->id, VC_ID, id);
    uuid_text(m->volume, uuid);
    printf("{\"id\":\"%s\",\"name\":", id);
    print_json_string(m->name);
    printf(",\"created\":%lld,\"created_nsec\":%u,\"epoch\":%llu,"
           "\"volume\":\"%s\",\"labels\":[", (long long)m->ctime_sec,
           m->ctime_nsec, (unsigned long long)m->epoch, uuid);
    for (uint32_t i = 0; i < m->nlabels; i++) {
        printf(i ? "," : "");
        print_json_string(m->labels[i]);
    }
    printf("],\"backup_time\":%lld,\"host\":", (long long)m->backup_time);
    print_json_string(m->host);
    printf(",\"incremental\":%s,\"base_epoch\":%llu,\"chain_depth\":%u,"
           "\"logical_bytes\":%llu,\"files\":%llu,\"added_bytes\":%llu,"
           "\"stored_bytes\":%llu,\"block_size\":%u}",
           m->base_epoch ? "true" : "false",
           (unsigned long long)m->base_epoch, m->depth,
           (unsigned long long)m->logical, (unsigned long long)m->files,
           (unsigned long long)m->added, (unsigned long long)m->stored,
           m->block_size);
}

static void list_line(const struct vault_snapshot *s)
{
    const struct vault_manifest *m = &s->m;
    char id[9], when[32], uuid[SFS_UUID_TEXT], logical[32], added[32],
        stored[32];
    short_vault_id(s->id, id);
    vault_local_time(m->ctime_sec, when, sizeof(when));
    uuid_text(m->volume, uuid);
    format_bytes(m->logical, logical, sizeof(logical));
    format_bytes(m->added, added, sizeof(added));
    format_bytes(m->stored, stored, sizeof(stored));
    printf("%-8s  %-19s  %.8s  %-4s  %12s %12s %12s  %s\n", id, when, uuid,
           m->base_epoch ? "incr" : "full", logical, added, stored, m->name);
}

static int vault_list_cmd(int argc, char **argv)
{
    struct vopts o;
    parse_args(&o, "vault list", O_JSON, 1, "TARGET [--json]", argc, argv);
    struct vault *v = open_vault(&o, o.pos[0], NO_LOCK, NULL);
    struct vault_snapshot *s;
    size_t n, bad;
    int rc = vault_snapshots(v, &s, &n, &bad);
    if (rc)
        vault_cmd_die(o.cmd, v, rc);
    if (o.json)
        printf("[");
    else
        printf("%-8s  %-19s  %-8s  %-4s  %12s %12s %12s  %s\n", "ID",
               "CREATED", "VOLUME", "KIND", "LOGICAL", "ADDED", "STORED",
               "NAME");
    for (size_t i = 0; i < n; i++) {
        if (o.json) {
            printf(i ? "," : "");
            json_manifest(&s[i]);
        } else {
            list_line(&s[i]);
        }
    }
    if (o.json)
        printf("]\n");
    free(s);
    if (bad) {
        fflush(stdout);
        vault_cmd_die(o.cmd, v, -EBADMSG);
    }
    vault_cmd_close(v);
    return 0;
}

static void show_text(const struct vault_snapshot *s)
{
    const struct vault_manifest *m = &s->m;
    char id[VC_HEX], uuid[SFS_UUID_TEXT], created[32], backed[32], b[4][32];
    vc_hex(s->id, VC_ID, id);
    uuid_text(m->volume, uuid);
    vault_local_time(m->ctime_sec, created, sizeof(created));
    vault_local_time(m->backup_time, backed, sizeof(backed));
    format_bytes(m->logical, b[0], sizeof(b[0]));
    format_bytes(m->added, b[1], sizeof(b[1]));
    format_bytes(m->stored, b[2], sizeof(b[2]));
    printf("id:           %s\n", id);
    printf("snapshot:     %s\n", m->name);
    printf("created:      %s.%09u\n", created, m->ctime_nsec);
    printf("volume:       %s (epoch %llu)\n", uuid,
           (unsigned long long)m->epoch);
    printf("labels:      ");
    for (uint32_t i = 0; i < m->nlabels; i++)
        printf(" %s", m->labels[i]);
    printf("\nbacked up:    %s on %s\n", backed, m->host);
    if (m->base_epoch)
        printf("kind:         incremental from epoch %llu (link %u of its "
               "chain)\n", (unsigned long long)m->base_epoch, m->depth);
    else
        printf("kind:         full\n");
    printf("logical:      %s (%llu bytes) in %llu files\n", b[0],
           (unsigned long long)m->logical, (unsigned long long)m->files);
    printf("new data:     %s (%llu bytes)\n", b[1],
           (unsigned long long)m->added);
    printf("stored:       %s (%llu bytes)\n", b[2],
           (unsigned long long)m->stored);
    printf("block size:   %u\n", m->block_size);
}

static int vault_show_cmd(int argc, char **argv)
{
    struct vopts o;
    parse_args(&o, "vault show", O_JSON, 2, "TARGET SNAPSHOT [--json]", argc,
               argv);
    struct vault *v = open_vault(&o, o.pos[0], NO_LOCK, NULL);
    struct vault_snapshot s;
    int rc = vault_find_snapshot(v, o.pos[1], &s);
    if (rc)
        vault_cmd_die(o.cmd, v, rc);
    if (o.json) {
        json_manifest(&s);
        printf("\n");
    } else {
        show_text(&s);
    }
    vault_cmd_close(v);
    return 0;
}

/* ---- restore ---- */

static int vault_restore_cmd(int argc, char **argv)
{
    struct vopts o;
    parse_args(&o, "vault restore", O_PROGRESS, 3, "TARGET SNAPSHOT NEWSTORE "
               "[--progress]", argc, argv);
    const char *newstore = o.pos[2];
    store_dir_check_new(o.cmd, newstore);
    struct vault *v = open_vault(&o, o.pos[0], READ_LOCK, "restore");
    struct vault_snapshot s;
    int rc = vault_find_snapshot(v, o.pos[1], &s);
    if (rc)
        vault_cmd_die(o.cmd, v, rc);
    char partial[PATH_MAX], scratch[PATH_MAX];
    if (snprintf(partial, sizeof(partial), "%s.partial-%d", newstore,
                 (int)getpid()) >= (int)sizeof(partial) ||
        snprintf(scratch, sizeof(scratch), "%s.scratch-%d", newstore,
                 (int)getpid()) >= (int)sizeof(scratch))
        die(o.cmd, "%s: name too long", newstore);
    struct progress_arg pa;
    progress_start(&pa.p, "restore", s.m.logical);
    if (o.progress)
        progress_force(&pa.p);
    catch_interrupts();
    struct vault_restore_opts ro = { progress_cb, &pa, &interrupted };
    struct vault_restore_result r;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = vault_restore(v, &s, partial, scratch, &ro, &r);
    if (!rc)
        rc = store_dir_publish(partial, newstore);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    progress_clear(&pa.p);
    if (rc) {
        store_dir_remove(partial);
        if (rc == -EEXIST)
            die(o.cmd, "%s: was created meanwhile; nothing was changed",
                newstore);
        char why[1200];
        snprintf(why, sizeof(why), "%s", vault_why(v)[0] ? vault_why(v)
                                                          : strerror(-rc));
        vault_cmd_close(v);
        die(o.cmd, "%s; nothing was restored", why);
    }
    char id[9], got[32];
    short_vault_id(s.id, id);
    format_bytes(r.fetched, got, sizeof(got));
    printf("snapfs: restored snapshot %s (%s) into %s: %llu files, %llu "
           "blocks, %s read from the vault in %.1f s\n", s.m.name, id,
           newstore, (unsigned long long)r.files,
           (unsigned long long)r.blocks, got,
           (double)(t1.tv_sec - t0.tv_sec) +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    vault_cmd_close(v);
    return 0;
}

/* ---- restore-file ---- */

static int vault_restore_file_cmd(int argc, char **argv)
{
    struct vopts o;
    const char *usage = "TARGET SNAPSHOT PATH --to DEST [--progress]";
    parse_args(&o, "vault restore-file", O_TO | O_PROGRESS, 3, usage, argc,
               argv);
    if (!o.to)
        die_usage(o.cmd, "usage: snapfs %s %s", o.cmd, usage);
    struct stat sb;
    if (!lstat(o.to, &sb))
        die(o.cmd, "%s: already exists; nothing was restored", o.to);
    store_dir_check_new(o.cmd, o.to);
    struct vault *v = open_vault(&o, o.pos[0], READ_LOCK, "restore-file");
    struct vault_snapshot s;
    int rc = vault_find_snapshot(v, o.pos[1], &s);
    if (rc)
        vault_cmd_die(o.cmd, v, rc);
    const char *tmp = getenv("TMPDIR");
    char scratch[PATH_MAX];
    snprintf(scratch, sizeof(scratch), "%s/snapfs-vault-%d",
             tmp && *tmp ? tmp : "/tmp", (int)getpid());
    struct progress_arg pa;
    progress_start(&pa.p, "restore", 0);
    if (o.progress)
        progress_force(&pa.p);
    catch_interrupts();
    struct vault_restore_opts ro = { progress_cb, &pa, &interrupted };
    struct vault_extract_result r;
    rc = vault_restore_file(v, &s, o.pos[2], o.to, scratch, &ro, &r);
    progress_clear(&pa.p);
    if (rc) {
        char why[1200];
        snprintf(why, sizeof(why), "%s", vault_why(v)[0] ? vault_why(v)
                                                          : strerror(-rc));
        vault_cmd_close(v);
        die(o.cmd, "%s; nothing was restored", why);
    }
    char id[9], bytes[32], got[32];
    short_vault_id(s.id, id);
    format_bytes(r.bytes, bytes, sizeof(bytes));
    format_bytes(r.fetched, got, sizeof(got));
    printf("snapfs: restored %s of snapshot %s (%s) as %s: %llu objects, %s "
           "of data (%llu blocks, %s read from the vault)\n", o.pos[2],
           s.m.name, id, o.to, (unsigned long long)r.objects, bytes,
           (unsigned long long)r.blocks, got);
    if (r.not_owned)
        printf("  owners not restored on %llu objects (only root may give "
               "files away)\n", (unsigned long long)r.not_owned);
    vault_cmd_close(v);
    return 0;
}

/* ---- check ---- */

static void print_problem(void *arg, const char *problem)
{
    (void)arg;
    printf("problem: %s\n", problem);
    fflush(stdout);
}

static int vault_check_cmd(int argc, char **argv)
{
    struct vopts o;
    parse_args(&o, "vault check", O_READ_DATA, 1, "TARGET [--read-data]",
               argc, argv);
    struct vault *v = open_vault(&o, o.pos[0], WRITE_LOCK, "check");
    struct vault_check_stats st;
    int rc = vault_check(v, o.read_data, print_problem, NULL, &st);
    if (rc < 0)
        vault_cmd_die(o.cmd, v, rc);
    char read[32];
    format_bytes(st.data_read, read, sizeof(read));
    printf("checked %llu keys, %llu snapshots, %llu metadata links (%llu "
           "records), %llu indexes, %llu packs, %llu blobs",
           (unsigned long long)st.keys, (unsigned long long)st.snapshots,
           (unsigned long long)st.links, (unsigned long long)st.records,
           (unsigned long long)st.indexes, (unsigned long long)st.packs,
           (unsigned long long)st.blobs);
    if (o.read_data)
        printf(", read %s of data", read);
    printf("\n");
    if (st.unindexed)
        printf("note: %llu packs are in no index (left by an interrupted "
               "backup; the next backup indexes them)\n",
               (unsigned long long)st.unindexed);
    vault_cmd_close(v);
    if (rc) {
        printf("%d problem%s found\n", rc, rc == 1 ? "" : "s");
        return 1;
    }
    printf("no problems found\n");
    return 0;
}

/* ---- forget and prune ---- */

static void print_prune(const struct vault_prune_stats *st, bool dry_run)
{
    char unused[32], freed[32], moved[32], written[32];
    format_bytes(st->unused_bytes, unused, sizeof(unused));
    format_bytes(st->bytes_freed, freed, sizeof(freed));
    format_bytes(st->bytes_moved, moved, sizeof(moved));
    format_bytes(st->bytes_written, written, sizeof(written));
    printf("%s: %llu snapshots keep what they refer to; %llu packs, %s in "
           "blobs nothing refers to\n", dry_run ? "would prune" : "pruned",
           (unsigned long long)st->snapshots, (unsigned long long)st->packs,
           unused);
    printf("  packs %s: %llu (nothing in them referred to), repacked: %llu "
           "(%s moved)\n", dry_run ? "to delete" : "deleted",
           (unsigned long long)st->packs_deleted,
           (unsigned long long)st->packs_repacked, moved);
    if (!dry_run)
        printf("  freed %s, wrote %s\n", freed, written);
    if (st->recovered)
        printf("  %llu packs an interrupted backup left were indexed first\n",
               (unsigned long long)st->recovered);
}

static void prune_now(const struct vopts *o, struct vault *v)
{
    int rc = vault_lock_readers(v, "prune");
    struct vault_prune_stats st;
    if (!rc)
        rc = vault_prune(v, o->dry_run, &st);
    if (rc)
        vault_cmd_die(o->cmd, v, rc);
    print_prune(&st, o->dry_run);
}

static int vault_prune_cmd(int argc, char **argv)
{
    struct vopts o;
    parse_args(&o, "vault prune", O_DRY, 1, "TARGET [--dry-run]", argc, argv);
    struct vault *v = open_vault(&o, o.pos[0], WRITE_LOCK, "prune");
    prune_now(&o, v);
    vault_cmd_close(v);
    return 0;
}

static void reasons(unsigned why, char *out, size_t cap)
{
    static const char *const names[] = { "last", "daily", "weekly",
                                         "monthly", "label" };
    out[0] = 0;
    for (int k = 0; k < 5; k++)
        if (why & (1u << k)) {
            size_t n = strlen(out);
            snprintf(out + n, cap - n, "%s%s", n ? "," : "", names[k]);
        }
}

static void forget_line(const struct vault_snapshot *s, unsigned why,
                        bool dry_run)
{
    char id[9], when[32], uuid[SFS_UUID_TEXT], r[64];
    short_vault_id(s->id, id);
    vault_local_time(s->m.ctime_sec, when, sizeof(when));
    sfs_uuid_format(s->m.volume, uuid);
    reasons(why, r, sizeof(r));
    printf("%-6s  %-8s  %-19s  %.8s  %s%s%s%s\n",
           why ? "keep" : dry_run ? "forget?" : "forget", id, when, uuid,
           s->m.name, why ? " (" : "", r, why ? ")" : "");
}

/* Forget what the keep rules do not keep. */
static int forget_by_policy(const struct vopts *o, struct vault *v,
                            const struct vault_snapshot *s, size_t n)
{
    unsigned *keep = calloc(n + 1, sizeof(*keep));
    int rc = keep ? vault_policy_apply(&o->keep, s, n, keep) : -ENOMEM;
    int forgotten = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        forget_line(&s[i], keep[i], o->dry_run);
        if (!keep[i] && !o->dry_run)
            rc = vault_forget(v, &s[i]);
        forgotten += !keep[i] && !rc;
    }
    free(keep);
    if (rc)
        vault_cmd_die(o->cmd, v, rc);
    return forgotten;
}

/* Forget the snapshots the arguments name. */
static int forget_named(const struct vopts *o, struct vault *v)
{
    int forgotten = 0;
    for (int i = 1; i < o->npos; i++) {
        struct vault_snapshot s;
        int rc = vault_find_snapshot(v, o->pos[i], &s);
        if (!rc && !o->dry_run)
            rc = vault_forget(v, &s);
        if (rc)
            vault_cmd_die(o->cmd, v, rc);
        forget_line(&s, 0, o->dry_run);
        forgotten++;
    }
    return forgotten;
}

static int vault_forget_cmd(int argc, char **argv)
{
    struct vopts o;
    const char *usage = "TARGET [SNAPSHOT...] [--keep-last N] [--keep-daily "
                        "N] [--keep-weekly N] [--keep-monthly N] "
                        "[--keep-label LABEL=N]... [--dry-run] [--prune]";
    parse_some(&o, "vault forget", O_KEEP | O_DRY, 1, POS_MAX, usage, argc,
               argv);
    if ((o.npos > 1) == o.keep_given)
        die_usage(o.cmd, "give the snapshots to forget, or keep rules (not "
                  "both): snapfs vault forget %s", usage);
    struct vault *v = open_vault(&o, o.pos[0], WRITE_LOCK, "forget");
    struct vault_snapshot *s = NULL;
    size_t n = 0, bad = 0;
    int rc = o.keep_given ? vault_snapshots(v, &s, &n, &bad) : 0;
    if (rc)
        vault_cmd_die(o.cmd, v, rc);
    if (bad)
        fprintf(stderr, "snapfs vault forget: left alone: %s\n", vault_why(v));
    int forgotten = o.keep_given ? forget_by_policy(&o, v, s, n)
                                 : forget_named(&o, v);
    free(s);
    printf("%s %d snapshot%s\n", o.dry_run ? "would forget" : "forgot",
           forgotten, forgotten == 1 ? "" : "s");
    if (o.prune)
        prune_now(&o, v);
    else if (forgotten && !o.dry_run)
        printf("  their data stays until snapfs vault prune %s\n", o.pos[0]);
    vault_cmd_close(v);
    return 0;
}

/* ---- mount ---- */

#define MOUNT_USAGE "TARGET MOUNTPOINT [--cache-size BYTES] [--cache DIR] " \
                    "[--keep-cache] [-f]"

/* The mount's own options out of ARGV into MO; the others into REST. */
static int mount_options(int argc, char **argv, struct vault_mount_opts *mo,
                         char **rest)
{
    const char *cmd = "vault mount", *v;
    int n = 0;
    *mo = (struct vault_mount_opts){ .cache_size = VAULT_MOUNT_CACHE_DEFAULT };
    for (int i = 0; i < argc; i++) {
        if (!i) {
            rest[n++] = argv[i];
        } else if ((v = option_value(cmd, "--cache-size", argc, argv, &i))) {
            if (parse_size(v, &mo->cache_size) ||
                mo->cache_size < VAULT_MOUNT_CACHE_MIN)
                die_usage(cmd, "--cache-size %s: give 1M or more", v);
        } else if ((v = option_value(cmd, "--cache", argc, argv, &i))) {
            mo->cache_dir = v;
        } else if (!strcmp(argv[i], "--keep-cache")) {
            mo->keep_cache = true;
        } else if (!strcmp(argv[i], "-f")) {
            mo->foreground = true;
        } else {
            rest[n++] = argv[i];
        }
    }
    rest[n] = NULL;
    if (mo->keep_cache && !mo->cache_dir)
        die_usage(cmd, "--keep-cache needs --cache DIR (where to keep it)");
    return n;
}

static int vault_mount_cmd(int argc, char **argv)
{
    struct vault_mount_opts mo;
    char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    if (!rest)
        die("vault mount", "out of memory");
    int nrest = mount_options(argc, argv, &mo, rest);
    struct vopts o;
    parse_args(&o, "vault mount", 0, 2, MOUNT_USAGE, nrest, rest);
    const char *mountpoint = o.pos[1];
    struct stat sb;
    int serr = stat(mountpoint, &sb) ? errno : 0;
    if (serr || !S_ISDIR(sb.st_mode))
        die(o.cmd, "%s: mountpoint %s; nothing was mounted", mountpoint,
            !serr || serr == ENOENT ? "does not exist or is not a directory"
                                    : strerror(serr));
    struct vault *v = open_vault(&o, o.pos[0], NO_LOCK, "mount");
    char why[1200];
    int rc = vault_mount(v, mountpoint, &mo, why, sizeof(why));
    free(rest);
    vault_cmd_close(v);
    if (rc && why[0])
        die(o.cmd, "%s; nothing was mounted", why);
    if (rc)
        die(o.cmd, "%s", strerror(-rc));
    return 0;
}

/* ---- dispatch ---- */

int cmd_vault(int argc, char **argv)
{
    if (argc < 2)
        die_usage("vault", "give init, key, backup, restore, restore-file, "
                  "list, show, diff, check, forget, prune, mount, store, "
                  "policy, protect, relationship or update");
    const char *sub = argv[1];
    argc--;
    argv++;
    if (!strcmp(sub, "init"))
        return vault_init_cmd(argc, argv);
    if (!strcmp(sub, "key"))
        return vault_key_cmd(argc, argv);
    if (!strcmp(sub, "backup"))
        return vault_backup_cmd(argc, argv);
    if (!strcmp(sub, "restore"))
        return vault_restore_cmd(argc, argv);
    if (!strcmp(sub, "restore-file"))
        return vault_restore_file_cmd(argc, argv);
    if (!strcmp(sub, "list"))
        return vault_list_cmd(argc, argv);
    if (!strcmp(sub, "show"))
        return vault_show_cmd(argc, argv);
    if (!strcmp(sub, "check"))
        return vault_check_cmd(argc, argv);
    if (!strcmp(sub, "forget"))
        return vault_forget_cmd(argc, argv);
    if (!strcmp(sub, "prune"))
        return vault_prune_cmd(argc, argv);
    if (!strcmp(sub, "mount"))
        return vault_mount_cmd(argc, argv);
    if (!strcmp(sub, "diff"))
        return cmd_vault_diff(argc, argv);
    if (!strcmp(sub, "store"))
        return cmd_vault_store(argc, argv);
    if (!strcmp(sub, "policy"))
        return cmd_vault_policy(argc, argv);
    if (!strcmp(sub, "protect"))
        return cmd_vault_protect(argc, argv);
    if (!strcmp(sub, "relationship"))
        return cmd_vault_relationship(argc, argv);
    if (!strcmp(sub, "update"))
        return cmd_vault_update(argc, argv);
    die_usage("vault", "unknown subcommand '%s'", sub);
}
