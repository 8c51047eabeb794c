/*
 * ndmp.c - `snapfs ndmp`: the command front of the NDMP engine
 * (tools/ndmp/).
 *
 *   ndmp serve [--port N (0: any free port)] [--listen ADDR] [--max-sessions N]
 *              [--tape-dir DIR] [--tape-device DEV]... [--volume STORE]...
 *              [--allow-text] [-f]
 *   ndmp password USER
 *
 * Guarantees: every argument is checked before anything is bound or
 * written; a password is generated, printed once on stdout and never
 * taken on the command line; `serve` without -f detaches once it is
 * listening (so a port already in use is reported by the command itself)
 * and logs to $SNAPFS_CONFIG_DIR/ndmp.log.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "ndmp/ndmp.h"
#include "peer/peer.h"

#define CMD "ndmp"
#define SESSIONS_DEFAULT 16
#define SESSIONS_MAX 1024
#define VOLUMES_MAX 256

static long int_arg(const char *opt, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi)
        die_usage(CMD, "%s '%s': give %ld to %ld", opt, v, lo, hi);
    return n;
}

static int open_log(void)
{
    char path[PATH_MAX];
    int rc = peer_config_make();
    if (!rc)
        rc = peer_config_path(path, sizeof(path), "ndmp.log");
    if (rc)
        die(CMD, "%s: %s", peer_config_dir(), strerror(-rc));
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        die(CMD, "%s: %s", path, strerror(errno));
    return fd;
}

/* PATH's real path, which must be of file type TYPE (S_IFDIR, S_IFCHR),
 * appended to LIST (*N entries, at most VOLUMES_MAX); WHAT says what
 * OPT wants. */
static void add_real_path(const char *opt, const char *path, mode_t type,
                          const char *what, char **list, int *n)
{
    char real[PATH_MAX];
    struct stat sb;
    if (!realpath(path, real) || stat(real, &sb) ||
        (sb.st_mode & S_IFMT) != type)
        die(CMD, "%s %s: not %s", opt, path, what);
    if (*n == VOLUMES_MAX)
        die_usage(CMD, "%s: at most %d", opt, VOLUMES_MAX);
    if (!(list[*n] = strdup(real)))
        die(CMD, "out of memory");
    (*n)++;
}

/* --volume STORE: a store fs info lists even while it is not mounted. */
static void add_volume(struct ndmp_serve_opts *o, const char *store)
{
    static char *stores[VOLUMES_MAX];
    add_real_path("--volume", store, S_IFDIR, "a volume's store directory",
                  stores, &o->nvolumes);
    o->volumes = stores;
}

/* --tape-device DEV: a tape drive TAPE_OPEN may open (its real path). */
static void add_tape_device(struct ndmp_serve_opts *o, const char *dev)
{
    static char *devices[VOLUMES_MAX];
    add_real_path("--tape-device", dev, S_IFCHR,
                  "a character device (a tape drive: /dev/nstN)", devices,
                  &o->ntape_devices);
    o->tape_devices = devices;
}

static int serve(int argc, char **argv)
{
    struct ndmp_serve_opts o = { .port = NDMP_PORT_DEFAULT,
                                 .max_sessions = SESSIONS_DEFAULT,
                                 .log_fd = 2 };
    bool foreground = false;
    for (int i = 2; i < argc; i++) {
        const char *v;
        if ((v = option_value(CMD, "--port", argc, argv, &i)))
            o.port = (int)int_arg("--port", v, 0, 65535);
        else if ((v = option_value(CMD, "--listen", argc, argv, &i)))
            o.listen = v;
        else if ((v = option_value(CMD, "--max-sessions", argc, argv, &i)))
            o.max_sessions = (int)int_arg("--max-sessions", v, 1,
                                          SESSIONS_MAX);
        else if ((v = option_value(CMD, "--tape-dir", argc, argv, &i)))
            o.tape_dir = v;
        else if ((v = option_value(CMD, "--tape-device", argc, argv, &i)))
            add_tape_device(&o, v);
        else if ((v = option_value(CMD, "--volume", argc, argv, &i)))
            add_volume(&o, v);
        else if (!strcmp(argv[i], "--allow-text"))
            o.allow_text = true;
        else if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--foreground"))
            foreground = true;
        else
            die_usage(CMD, "serve: unknown argument '%s'", argv[i]);
    }
    struct stat sb;
    if (o.tape_dir && (stat(o.tape_dir, &sb) || !S_ISDIR(sb.st_mode)))
        die(CMD, "--tape-dir %s: not a directory", o.tape_dir);
    static char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        die(CMD, "cannot find the snapfs program: %s", strerror(errno));
    self[n] = 0;
    o.self = self;
    int fds[2], nfds;
    char why[512] = "";
    if (ndmp_listen(&o, fds, &nfds, why, sizeof(why)) < 0)
        die(CMD, "cannot listen: %s", why);
    o.port = ndmp_bound_port(fds[0]);    /* --port 0: the one chosen */
    if (foreground) {
        printf("snapfs ndmp: listening on port %d\n", o.port);
        fflush(stdout);
    }
    if (!foreground) {
        o.log_fd = open_log();
        pid_t pid = fork();
        if (pid < 0)
            die(CMD, "fork: %s", strerror(errno));
        if (pid > 0) {
            printf("snapfs ndmp: serving on port %d (process %d, log %s/"
                   "ndmp.log)\n", o.port, (int)pid, peer_config_dir());
            return 0;
        }
        setsid();
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(o.log_fd, 2);
    }
    int rc = ndmp_serve_run(&o, fds, nfds);
    if (rc)
        ndmp_log(o.log_fd, "stopped: %s", strerror(-rc));
    return rc ? 1 : 0;
}

static int password(int argc, char **argv)
{
    if (argc != 3)
        die_usage(CMD, "password: give the NDMP user's name");
    const char *user = argv[2];
    if (!ndmp_user_valid(user))
        die(CMD, "'%s': a user name is 1 to %d of A-Z a-z 0-9 . _ - (not "
                 "starting with a dot)", user, NDMP_USER_MAX);
    char pw[NDMP_PASSWORD_CHARS + 1], path[PATH_MAX] = "";
    ndmp_users_path(path, sizeof(path));
    int rc = ndmp_password_set(user, pw);
    if (rc)
        die(CMD, "%s: %s", path, strerror(-rc));
    printf("%s\n", pw);
    fflush(stdout);
    OPENSSL_cleanse(pw, sizeof(pw));
    fprintf(stderr, "snapfs ndmp: the password of NDMP user '%s' is above; "
                    "it is shown once. It is kept in clear in %s (mode "
                    "0600, root only), as MD5 challenge authentication "
                    "requires.\n", user, path);
    return 0;
}

int cmd_ndmp(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "serve"))
        return serve(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "password"))
        return password(argc, argv);
    die_usage(CMD, "give serve or password");
}
