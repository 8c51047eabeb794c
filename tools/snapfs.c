/*
 * snapfs.c - the `snapfs` command: mkfs, mount, umount, info, fsck.
 *
 * This is the command layer: the only place that turns the negative errno
 * values of the libraries into messages.  Every failure prints one line,
 * "snapfs CMD: OBJECT: why", and exits non-zero (2 for usage errors, 1
 * otherwise), and a refused command leaves every volume as it was: checks
 * come before the first change.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ops.h"
#include "store.h"
#include "cli.h"
#include "peer/peer.h"
#include <stdarg.h>

/* ---- mkfs ---- */

static int cmd_mkfs(int argc, char **argv)
{
    static const struct option lo[] = {
        { "size", required_argument, NULL, 's' },
        { "block-size", required_argument, NULL, 'b' },
        { "compress", required_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 },
    };
    struct sfs_mkfs_opts o = { .codec = SFS_CODEC_ZSTD, .codec_level = 1 };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
        uint64_t v;
        switch (c) {
        case 's':
            if (parse_size(optarg, &v) || v < (16u << 20))
                die_usage("mkfs", "--size %s: give a size of at least 16M, "
                                  "e.g. 64G", optarg);
            o.volume_size = v;
            break;
        case 'b':
            if (parse_size(optarg, &v) || v < SFS_BLOCK_SIZE_MIN ||
                v > SFS_BLOCK_SIZE_MAX || (v & (v - 1)))
                die_usage("mkfs", "--block-size %s: give a power of two "
                                  "from 4K to 1M", optarg);
            o.block_size = (uint32_t)v;
            break;
        case 'c':
            if (!strcmp(optarg, "none")) {
                o.codec = SFS_CODEC_NONE;
            } else if (!strncmp(optarg, "zstd", 4) &&
                       (!optarg[4] || optarg[4] == ':')) {
                o.codec = SFS_CODEC_ZSTD;
                if (optarg[4]) {
                    char *end;
                    long lvl = strtol(optarg + 5, &end, 10);
                    if (*end || lvl < 1 || lvl > 19)
                        die_usage("mkfs", "--compress %s: zstd levels are 1 "
                                          "to 19", optarg);
                    o.codec_level = (int)lvl;
                }
            } else {
                die_usage("mkfs", "--compress %s: give zstd, zstd:LEVEL or "
                                  "none", optarg);
            }
            break;
        case ':':
            die_usage("mkfs", "%s needs a value", argv[optind - 1]);
        default:
            die_usage("mkfs", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        die_usage("mkfs", "give exactly one STORE directory");
    const char *path = argv[optind];
    int rc = sfs_mkfs(path, &o);
    if (rc == -EEXIST) {
        /* Look, without opening it: opening would touch LMDB's lock file. */
        char data[PATH_MAX];
        struct stat sb;
        snprintf(data, sizeof(data), "%s/data.mdb", path);
        die("mkfs", "%s: %s", path,
            stat(data, &sb) == 0 ? "already holds a snapfs volume; nothing "
                                   "was changed"
                                 : "directory is not empty");
    }
    if (rc == -EINVAL)
        die("mkfs", "%s: the volume would be smaller than 16M", path);
    if (rc)
        die("mkfs", "%s: %s", path, strerror(-rc));
    printf("snapfs: created volume %s\n", path);
    return 0;
}

/* ---- mount ---- */

/* Options the kernel or libfuse understand, and our own. */
static bool mount_option_known(const char *opt)
{
    static const char *flags[] = {
        "allow_other", "allow_root", "default_permissions", "ro", "rw",
        "nosuid", "suid", "nodev", "dev", "noexec", "exec", "atime",
        "noatime", "relatime", "strictatime", "nodiratime", "sync", "async",
        "dirsync", "auto_unmount", "no_writeback_cache", "nostats",
        "noreadaround", "_netdev",
        "auto", "noauto", "user", "nouser", "users", "defaults", "nofail",
    };
    static const char *keyed[] = { "max_read=", "blksize=", "fsname=",
                                   "subtype=", "x-", "comment=" };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (!strcmp(opt, flags[i]))
            return true;
    for (size_t i = 0; i < sizeof(keyed) / sizeof(keyed[0]); i++)
        if (!strncmp(opt, keyed[i], strlen(keyed[i])))
            return true;
    return false;
}

/* Drop what fstab passes but the kernel must not see. */
static char *filter_mount_options(const char *opts)
{
    static const char *drop[] = { "_netdev", "auto", "noauto", "user",
                                  "nouser", "users", "defaults", "nofail",
                                  "rw" };
    char *copy = strdup(opts), *save = NULL;
    char *out = calloc(1, strlen(opts) + 1);
    if (!copy || !out)
        exit(1);
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!mount_option_known(t))
            die_usage("mount", "unknown mount option '%s'", t);
        bool skip = !strncmp(t, "x-", 2) || !strncmp(t, "comment=", 8);
        for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
            skip |= !strcmp(t, drop[i]);
        if (skip)
            continue;
        if (*out)
            strcat(out, ",");
        strcat(out, t);
    }
    free(copy);
    return out;
}

static int cmd_mount(int argc, char **argv)
{
    bool foreground = false;
    static char *opts; /* static: still reachable when a check dies */
    opts = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt(argc, argv, ":fo:")) != -1) {
        switch (c) {
        case 'f': foreground = true; break;
        case 'o': {
            char *f = filter_mount_options(optarg);
            if (opts && *f) {
                char *j;
                if (asprintf(&j, "%s,%s", opts, f) < 0)
                    exit(1);
                free(opts);
                free(f);
                opts = j;
            } else if (!opts) {
                opts = f;
            } else {
                free(f);
            }
            break;
        }
        case ':':
            die_usage("mount", "-o needs a list of options");
        default:
            die_usage("mount", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 2)
        die_usage("mount", "give STORE and MOUNTPOINT");
    char store[PATH_MAX], mnt[PATH_MAX];
    if (!realpath(argv[optind], store))
        die("mount", "%s: %s", argv[optind], strerror(errno));
    if (!realpath(argv[optind + 1], mnt))
        die("mount", "%s: mountpoint: %s", argv[optind + 1], strerror(errno));
    struct sfs_store *st;
    int rc = sfs_open(store, SFS_OPEN_RDONLY, &st);
    if (rc)
        die("mount", "%s: %s", store, open_error(rc));
    sfs_close(st);
    char *already = mounted_store(mnt);
    if (already)
        die("mount", "%s: a snapfs volume (%s) is already mounted here", mnt,
            already);

    vault_daemon_install();
    if (foreground) {
        int status = snapfs_serve(store, mnt, opts, -1);
        free(opts);
        return status;
    }

    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC))
        die("mount", "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die("mount", "fork: %s", strerror(errno));
    if (pid == 0) {
        close(pipefd[0]);
        setsid();
        if (chdir("/"))
            _exit(1);
        _exit(snapfs_serve(store, mnt, opts, pipefd[1]));
    }
    close(pipefd[1]);
    unsigned char status = 1;
    ssize_t n = read(pipefd[0], &status, 1);
    close(pipefd[0]);
    if (n != 1 || status != 0) {
        int ws;
        waitpid(pid, &ws, 0);
        return 1; /* the daemon printed why */
    }
    free(opts);
    return 0;
}

/* ---- umount ---- */

static pid_t read_pid(const char *store)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/daemon.pid", store);
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return pid;
}

/* Whether PID still runs.  A zombie does not: it has exited, closed its
 * files and released its lock, and only waits for its parent to collect
 * it.  The daemon's parent is init (the mount command exits), which on
 * some systems collects its children a second or more late. */
static bool still_running(pid_t pid)
{
    if (kill(pid, 0) != 0)
        return errno == EPERM;
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno != ENOENT; /* no /proc: trust kill */
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* "PID (COMM) STATE ..." */
    if (!p || p[1] != ' ')
        return true;
    return p[2] != 'Z' && p[2] != 'X';
}

static int cmd_umount(int argc, char **argv)
{
    if (argc == 2 && argv[1][0] == '-')
        die_usage("umount", "unknown option '%s'", argv[1]);
    if (argc != 2)
        die_usage("umount", "give one MOUNTPOINT");
    char *store = mounted_store(argv[1]);
    if (!store)
        die("umount", "%s: no snapfs volume is mounted there", argv[1]);
    pid_t pid = read_pid(store);
    char mnt[PATH_MAX];
    if (!realpath(argv[1], mnt))
        die("umount", "%s: %s", argv[1], strerror(errno));
    int rc = geteuid() == 0 ? umount2(mnt, 0) : -1;
    if (rc && geteuid() == 0 && errno == EBUSY)
        die("umount", "%s: busy (files are open or a process is inside it)",
            mnt);
    if (rc) {
        pid_t child = fork();
        if (child == 0) {
            execlp("fusermount3", "fusermount3", "-u", mnt, (char *)NULL);
            _exit(127);
        }
        int ws;
        waitpid(child, &ws, 0);
        if (!WIFEXITED(ws) || WEXITSTATUS(ws))
            die("umount", "%s: could not unmount", mnt);
    }
    /* Wait for the daemon to commit and exit. */
    for (int i = 0; pid > 0 && i < 6000 && still_running(pid); i++)
        usleep(10000);
    if (pid > 0 && still_running(pid))
        die("umount", "%s: unmounted, but the daemon (pid %d) has not exited "
                      "after 60 s", mnt, (int)pid);
    free(store);
    return 0;
}

/* ---- help and dispatch ---- */

static void usage(FILE *out)
{
    fputs("usage: snapfs COMMAND [ARGS]\n"
          "\n"
          "  mkfs STORE [--size SIZE] [--block-size N] [--compress zstd[:LEVEL]|none]\n"
          "  mount STORE MOUNTPOINT [-f] [-o OPTIONS]\n"
          "  umount MOUNTPOINT\n"
          "  info STORE|MOUNTPOINT [--json]\n"
          "  stats VOL [--json | --prometheus] [--watch [SECONDS] [--count K]]\n"
          "  stats VOL --listen 127.0.0.1:PORT [--allow-remote]   GET /metrics\n"
          "    a mounted volume's operations, latencies, bytes, dedup, compression,\n"
          "    cache, commits and space, counted since its mount\n"
          "  fsck STORE\n"
          "  health [VOL...|--all] [--json] [--fix] [--full] [--cert FILE]... [--peer-timeout MS]\n"
          "    checks for monitoring: exit 0 ok, 1 warning, 2 critical\n"
          "  config export VOL...|--all [--with-secrets [--passphrase-file F]] > FILE\n"
          "  config import FILE [VOL] [--apply] [--json] [--passphrase-file F]\n"
          "    volumes' settings, policies and qtrees, and this host's mirrors, peers,\n"
          "    vault stores and NDMP users as versioned JSON (secrets only sealed,\n"
          "    with --with-secrets); import is a dry run unless --apply\n"
          "  compact STORE [--to NEWSTORE]\n"
          "    offline: give the store file's free pages back (LMDB's compacting\n"
          "    copy, every snapshot and setting kept); --to writes the copy as\n"
          "    a new store directory and leaves STORE as it is\n"
          "  upgrade --check STORE [--json] | upgrade STORE\n"
          "    offline: is the store ready for this snapfs's on-disk format (reads\n"
          "    it all, changes nothing; exit 0 ready), and the upgrade in place\n"
          "  snapshot create VOL NAME | list VOL [--json] | delete VOL NAME...\n"
          "  snapshot create --group VOL,VOL,... NAME\n"
          "    one snapshot NAME of each VOL, all at one point in time (a\n"
          "    consistency group: mounted VOLs are frozen together for an instant)\n"
          "  snapshot create ... [--pre CMD] [--post CMD] [--hook-timeout SECONDS]\n"
          "                  [--on-hook-failure abandon|crash-consistent]\n"
          "    application-consistent: CMD run before and after, the result labelled\n"
          "  snapshot rename VOL OLD NEW | reclaim VOL NAME... [--json]\n"
          "  snapshot hold VOL NAME TAG | release VOL NAME TAG | holds VOL NAME\n"
          "  snapshot diff VOL A [B] [--json] [--stats]\n"
          "  snapshot restore VOL NAME | restore-file VOL NAME PATH [--to DEST]\n"
          "  clone VOL NAME NEWSTORE\n"
          "  set VOL NAME=VALUE... | get VOL [NAME]    e.g. snapdir=visible|hidden|disabled\n"
          "  policy create VOL NAME --schedule SCHEDULE --keep N [--prefix P]\n"
          "  policy modify VOL NAME [--schedule S] [--keep N] [--prefix P] [--label L]\n"
          "  policy list VOL [--json] | delete VOL NAME | run VOL [--now 'YYYY-MM-DD HH:MM']\n"
          "  policy create|modify ... [--pre CMD] [--post CMD] [--hook-timeout S]\n"
          "                [--on-hook-failure abandon|crash-consistent]   ('' removes a hook)\n"
          "    SCHEDULE: every:N (minutes), hourly[@MM], daily[@HH:MM],\n"
          "    weekly[@DAY[@HH:MM]], monthly[@D[@HH:MM]] (D 1-28)\n"
          "  send VOL SNAP [--from BASE | -I BASE] [--resume TOKEN] [-v] > STREAM\n"
          "  receive DST [-v] [--hold-back] [--publish] < STREAM\n"
          "  receive DST --resume-token | --abort\n"
          "  receive DST --config < DOCUMENT   (what mirror --with-config carries)\n"
          "  mirror create SRC DST [--policy mirror|vault|mirror-vault] [--keep LABEL=N,...]\n"
          "                [--schedule SCHEDULE] [--via CMD]   DST: a volume or PEER:PATH\n"
          "                [--with-config]   the source's configuration goes along\n"
          "  mirror create SRC1,SRC2,... DST1,DST2,... --group NAME [--schedule SCHEDULE]\n"
          "  mirror initialize|update|quiesce|resume|delete DST | update --due\n"
          "  mirror break DST | resync DST [--yes] | show [DST] [--json]\n"
          "  mirror reverse-resync NEWSRC NEWDST [--via CMD] [--yes]\n"
          "  mirror restore DST SNAP --to VOL | test-failover DST [--to PATH] | test-cleanup DST\n"
          "  plan create NAME [--json] --file PLAN.json | --step DST|group:NAME [--priority N]\n"
          "    [--mount DIR] [--test-mount DIR] [--source-mount DIR] [--source PEER:PATH]\n"
          "    [--script CMD] [--timeout S]\n"
          "  plan list [--json] | show NAME [--json] | delete NAME [--json]\n"
          "  plan test|cleanup|reprotect|failback NAME [--json]\n"
          "  plan run NAME --planned-migration|--disaster [--json]   recovery plans\n"
          "  dump -LEVEL [-b BLOCKING] [-f OUT] [-L LABEL] [--snapshot NAME]\n"
          "       [--no-dates] [--since TOKEN] [--exclude PATTERN]... VOL[/PATH]\n"
          "  dump --restart ID [-f OUT] VOL | dump dates VOL [--json]\n"
          "  dump contexts VOL [--json] | dump contexts delete VOL ID\n"
          "  qtree create VOL NAME [--security-style unix|ntfs|mixed] [--quota SIZE]\n"
          "  qtree list VOL [--json] | delete VOL NAME\n"
          "  qtree modify VOL NAME [--quota SIZE|none] [--security-style STYLE]\n"
          "  restore -t|-r|-x [-f IN]... [-b BLOCKING] [--into DEST|VOL[/PATH]]\n"
          "          [--rename-to NAME] [--force] [-v] [PATH...]\n"
          "    read a dump (ours or Linux dump's): list, restore (levels in order),\n"
          "    extract PATHs; several -f are the parts of one restarted dump\n"
          "  peer passphrase NAME | revoke NAME   on the serving host: peer NAME's own\n"
          "    passphrase (printed once), or NAME and its grants gone\n"
          "  peer allow NAME send|receive VOLUME... | deny NAME [send|receive [VOLUME...]]\n"
          "  peer grants [NAME] [--json]          what each peer may do here\n"
          "  peer serve [--listen ADDR:PORT] [--foreground] [--max-per-peer N]\n"
          "             [--idle-timeout SECONDS]   (default 0.0.0.0:11104, 4, 600)\n"
          "  peer create NAME HOST[:PORT] [--passphrase-file F]   (else read from stdin)\n"
          "  peer list [--json] | delete NAME\n"
          "  peer run NAME -- SUBCOMMAND [ARGS...]   run send, receive, snapshot list or\n"
          "    info on the peer, stdin and stdout relayed (TLS 1.3, pre-shared key)\n"
          "  share smb DIR [--name SHARE]          an smb.conf share of a mounted\n"
          "    volume (Previous Versions from .snapshot, DOS attributes in xattrs)\n"
          "  share nfs DIR [--name PSEUDO] [--id N] an NFS-Ganesha EXPORT block\n"
          "  vault init TARGET            TARGET: s3://BUCKET[/PREFIX] or file:///PATH\n"
          "  vault key list|add TARGET | key remove TARGET KEYID\n"
          "  vault backup VOL SNAPSHOT TARGET [--label L]... [--pack-size SIZE] [--progress]\n"
          "  vault restore TARGET SNAPSHOT NEWSTORE [--progress]\n"
          "  vault restore-file TARGET SNAPSHOT PATH --to DEST   a file or a tree, out\n"
          "  vault list TARGET [--json] | show TARGET SNAPSHOT [--json]\n"
          "  vault check TARGET [--read-data]\n"
          "  vault forget TARGET SNAPSHOT... | --keep-last|-daily|-weekly|-monthly N\n"
          "               --keep-label LABEL=N [--dry-run] [--prune]\n"
          "  vault prune TARGET [--dry-run]   delete what no snapshot refers to\n"
          "  vault diff TARGET SNAP1 SNAP2 [--json]   as snapshot diff, from the vault\n"
          "  vault mount TARGET MOUNTPOINT [--cache-size BYTES] [--cache DIR [--keep-cache]] [-f]\n"
          "                               every snapshot, read-only, fetched as read\n"
          "    every vault command: [--endpoint URL] [--region R] [--passphrase-file F]\n"
          "    (or SNAPFS_VAULT_PASSPHRASE, or a prompt); encrypted, incremental forever;\n"
          "    TARGET may be an object store's NAME\n"
          "  vault store add NAME TARGET [--endpoint URL] [--region R] [--profile P]\n"
          "               [--passphrase-file F] [--init] | store list [--json] | store remove NAME\n"
          "  vault policy create NAME --rule LABEL=KEEP... | policy list [--json] | policy delete NAME\n"
          "  vault protect VOL... --store NAME [--policy DailyBackup|NAME]\n"
          "  vault relationship list [--json] | relationship delete VOL --store NAME [--forget]\n"
          "  vault update VOL [--store NAME] [--progress]   back up what the policy selects\n"
          "  ndmp serve [--port N] [--listen ADDR] [--max-sessions N] [--tape-dir DIR]\n"
          "             [--tape-device DEV]... [--volume STORE]... [--allow-text] [-f]\n"
          "             NDMPv4 for backup\n"
          "             applications (port 10000)\n"
          "  ndmp password USER   an NDMP user's generated password, printed once\n"
          "  help\n", out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "snapfs: give a command (see 'snapfs help')\n");
        return 2;
    }
    const char *cmd = argv[1];
    argc--;
    argv++;
    if (!peer_guard_install()) {
        fprintf(stderr, "snapfs: %s: not a volume identity; this command may "
                        "reach no volume\n", PEER_GUARD_ENV);
        return 1;
    }
    if (!strcmp(cmd, "mkfs"))
        return cmd_mkfs(argc, argv);
    if (!strcmp(cmd, "mount"))
        return cmd_mount(argc, argv);
    if (!strcmp(cmd, "umount") || !strcmp(cmd, "unmount"))
        return cmd_umount(argc, argv);
    if (!strcmp(cmd, "info"))
        return cmd_info(argc, argv);
    if (!strcmp(cmd, "fsck"))
        return cmd_fsck(argc, argv);
    if (!strcmp(cmd, "compact"))
        return cmd_compact(argc, argv);
    if (!strcmp(cmd, "upgrade"))
        return cmd_upgrade(argc, argv);
    if (!strcmp(cmd, "snapshot"))
        return cmd_snapshot(argc, argv);
    if (!strcmp(cmd, "set"))
        return cmd_set(argc, argv);
    if (!strcmp(cmd, "get"))
        return cmd_get(argc, argv);
    if (!strcmp(cmd, "policy"))
        return cmd_policy(argc, argv);
    if (!strcmp(cmd, "dump"))
        return cmd_dump(argc, argv);
    if (!strcmp(cmd, "clone"))
        return cmd_clone(argc, argv);
    if (!strcmp(cmd, "send"))
        return cmd_send(argc, argv);
    if (!strcmp(cmd, "receive") || !strcmp(cmd, "recv"))
        return cmd_receive(argc, argv);
    if (!strcmp(cmd, "qtree"))
        return cmd_qtree(argc, argv);
    if (!strcmp(cmd, "restore"))
        return cmd_tape_restore(argc, argv);
    if (!strcmp(cmd, "peer"))
        return cmd_peer(argc, argv);
    if (!strcmp(cmd, "mirror"))
        return cmd_mirror(argc, argv);
    if (!strcmp(cmd, "plan"))
        return cmd_plan(argc, argv);
    if (!strcmp(cmd, "share"))
        return cmd_share(argc, argv);
    if (!strcmp(cmd, "vault"))
        return cmd_vault(argc, argv);
    if (!strcmp(cmd, "health"))
        return cmd_health(argc, argv);
    if (!strcmp(cmd, "config"))
        return cmd_config(argc, argv);
    if (!strcmp(cmd, "ndmp"))
        return cmd_ndmp(argc, argv);
    if (!strcmp(cmd, "stats"))
        return cmd_stats(argc, argv);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "snapfs: unknown command '%s' (see 'snapfs help')\n", cmd);
    return 2;
}
