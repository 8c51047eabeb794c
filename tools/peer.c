/*
 * peer.c - `snapfs peer passphrase|create|list|delete|serve|run`: the
 * command layer of the peer transport (peer.h).
 *
 * `passphrase` is the only command that ever shows a secret: it prints
 * the passphrase it just made, once, and keeps only the key derived from
 * it.  `create` reads a passphrase from a file or standard input (never
 * from the command line, which other users see in ps) and stores the key
 * with the peer's address.  `list` shows names and addresses only.
 * `run` relays its own stdin and stdout to a command on the peer, prints
 * the remote stderr on its stderr and exits with the remote status.
 * Errors: one line "snapfs peer CMD: OBJECT: why", exit 1 (usage 2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "peer.h"

#define REMOTE_STDERR_MAX (64u << 10)

static void no_more_args(const char *cmd, int argc, char **argv, int want)
{
    if (argc > want && argv[want][0] == '-')
        die_usage(cmd, "unknown option '%s'", argv[want]);
    if (argc != want)
        die_usage(cmd, "wrong number of arguments");
}

/* ---- passphrase ---- */

static int peer_passphrase(int argc, char **argv)
{
    no_more_args("peer passphrase", argc, argv, 1);
    char pass[PEER_PASSPHRASE_SIZE];
    uint8_t key[PEER_KEY_LEN], old[PEER_KEY_LEN];
    bool replaced = peer_serve_key_load(old) == 0;
    OPENSSL_cleanse(old, sizeof(old));
    int rc = peer_passphrase_generate(pass);
    if (!rc)
        rc = peer_passphrase_key(pass, key);
    if (!rc)
        rc = peer_serve_key_store(key);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc) {
        OPENSSL_cleanse(pass, sizeof(pass));
        die("peer passphrase", "%s: %s", peer_config_dir(), strerror(-rc));
    }
    printf("%s\n", pass);
    fflush(stdout);
    OPENSSL_cleanse(pass, sizeof(pass));
    if (replaced)
        fprintf(stderr, "snapfs peer passphrase: replaces the previous "
                        "passphrase; peers created with it can no longer "
                        "connect\n");
    return 0;
}

/* ---- create ---- */

/* The first line of FD into BUF; echo off while a terminal is read. */
static int read_passphrase(int fd, char *buf, size_t cap)
{
    struct termios saved, quiet;
    bool tty = isatty(fd) && tcgetattr(fd, &saved) == 0;
    if (tty) {
        fprintf(stderr, "passphrase: ");
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    size_t n = 0;
    ssize_t r = 0;
    while (n + 1 < cap && (r = read(fd, buf + n, 1)) == 1 && buf[n] != '\n')
        n++;
    buf[n] = 0;
    if (tty) {
        tcsetattr(fd, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    return r < 0 ? -errno : 0;
}

static int peer_create(int argc, char **argv)
{
    const char *cmd = "peer create", *file = NULL, *pos[2];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = option_value(cmd, "--passphrase-file", argc, argv, &i);
        if (v)
            file = v;
        else if (argv[i][0] == '-')
            die_usage(cmd, "unknown option '%s'", argv[i]);
        else if (npos < 2)
            pos[npos++] = argv[i];
        else
            die_usage(cmd, "give NAME and HOST:PORT");
    }
    if (npos != 2)
        die_usage(cmd, "give NAME and HOST:PORT");
    struct peer_record r = { 0 };
    char host[PEER_ADDRESS_MAX], port[16], pass[256];
    if (!peer_name_valid(pos[0]))
        die_usage(cmd, "'%s': a peer name is 1 to %d letters, digits, '.', "
                       "'_' or '-', not starting with '.'", pos[0], PEER_NAME_MAX);
    if (peer_address_split(pos[1], host, sizeof(host), port, sizeof(port)) ||
        strlen(pos[1]) >= sizeof(r.address))
        die_usage(cmd, "'%s': give HOST:PORT or HOST (port %s)", pos[1],
                  PEER_DEFAULT_PORT);
    snprintf(r.name, sizeof(r.name), "%s", pos[0]);
    snprintf(r.address, sizeof(r.address), "%s", pos[1]);
    FILE *f = file ? fopen(file, "r") : stdin;
    if (!f)
        die(cmd, "%s: %s", file, strerror(errno));
    int rc = read_passphrase(fileno(f), pass, sizeof(pass));
    if (file)
        fclose(f);
    if (rc)
        die(cmd, "%s: %s", file ? file : "standard input", strerror(-rc));
    rc = peer_passphrase_key(pass, r.key);
    OPENSSL_cleanse(pass, sizeof(pass));
    if (rc == -EINVAL)
        die(cmd, "%s: that is not a snapfs passphrase (6 groups of 5 "
                 "characters, as 'snapfs peer passphrase' prints)", r.name);
    if (!rc)
        rc = peer_record_store(&r);
    OPENSSL_cleanse(r.key, sizeof(r.key));
    if (rc == -EEXIST)
        die(cmd, "%s: a peer of that name exists (delete it first)", r.name);
    if (rc)
        die(cmd, "%s: %s", r.name, strerror(-rc));
    printf("snapfs: created peer %s (%s)\n", r.name, r.address);
    return 0;
}

/* ---- list, delete ---- */

static int peer_list(int argc, char **argv)
{
    bool json = argc == 2 && !strcmp(argv[1], "--json");
    if (!json)
        no_more_args("peer list", argc, argv, 1);
    char **names;
    size_t n;
    int rc = peer_record_names(&names, &n);
    if (rc)
        die("peer list", "%s: %s", peer_config_dir(), strerror(-rc));
    if (json)
        printf("[");
    else
        printf("%-24s %s\n", "NAME", "ADDRESS");
    for (size_t i = 0; i < n; i++) {
        struct peer_record r;
        rc = peer_record_load(names[i], &r);
        OPENSSL_cleanse(r.key, sizeof(r.key));
        const char *addr = rc ? "(damaged record)" : r.address;
        if (json) {
            printf("%s{\"name\":", i ? "," : "");
            json_string(names[i]);
            printf(",\"address\":");
            json_string(addr);
            printf("}");
        } else {
            printf("%-24s %s\n", names[i], addr);
        }
        free(names[i]);
    }
    if (json)
        printf("]\n");
    free(names);
    return 0;
}

static int peer_delete(int argc, char **argv)
{
    no_more_args("peer delete", argc, argv, 2);
    int rc = peer_record_delete(argv[1]);
    if (rc == -ENOENT)
        die("peer delete", "%s: no such peer", argv[1]);
    if (rc)
        die("peer delete", "%s: %s", argv[1], strerror(-rc));
    printf("snapfs: deleted peer %s\n", argv[1]);
    return 0;
}

/* ---- serve ---- */

static int peer_serve(int argc, char **argv)
{
    const char *cmd = "peer serve", *listen = NULL;
    bool foreground = false;
    for (int i = 1; i < argc; i++) {
        const char *v = option_value(cmd, "--listen", argc, argv, &i);
        if (v)
            listen = v;
        else if (!strcmp(argv[i], "--foreground") || !strcmp(argv[i], "-f"))
            foreground = true;
        else
            die_usage(cmd, "unknown argument '%s'", argv[i]);
    }
    struct peer_server *s;
    char bound[300], why[4200];
    int rc = peer_serve_open(listen, &s, bound, sizeof(bound), why, sizeof(why));
    if (rc == -ENOKEY)
        die(cmd, "%s: no passphrase yet (run 'snapfs peer passphrase' first)", why);
    if (rc == -EBADMSG)
        die(cmd, "%s/serve.key: damaged (run 'snapfs peer passphrase' to make "
                 "a new one)", why);
    if (rc == -EALREADY)
        die(cmd, "%s: a server of this config dir runs already (pid %s)",
            peer_config_dir(), why);
    if (rc == -EINVAL)
        die_usage(cmd, "--listen %s: give ADDR:PORT with a numeric address", why);
    if (rc)
        die(cmd, "%s: %s", why, strerror(-rc));
    if (!foreground) {
        pid_t pid = peer_serve_daemonize(s);
        if (pid < 0)
            die(cmd, "%s: cannot start the daemon: %s", peer_config_dir(),
                strerror((int)-pid));
        if (pid > 0) {
            printf("listening on %s (pid %d)\n", bound, (int)pid);
            peer_serve_close(s);
            return 0;
        }
    } else {
        printf("listening on %s\n", bound);
        fflush(stdout);
    }
    rc = peer_serve_run(s);
    peer_serve_close(s);
    return rc ? 1 : 0;
}

/* ---- run ---- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

struct stdio_relay {
    int chan;
    bool in_open;       /* still reading our stdin */
    char in[65536];     /* read from stdin, not yet sent */
    size_t in_off, in_len;
    char out[65536];
};

/* Our stdin into CHAN: read when the last piece went out, send what
 * CHAN takes; at the end of stdin, end-of-file for the command. */
static void stdin_to_chan(struct stdio_relay *s, short revents_in,
                          short revents_chan)
{
    if (s->in_open && s->in_len == 0 && revents_in) {
        ssize_t r = read(0, s->in, sizeof(s->in));
        if (r <= 0) {
            s->in_open = false;
            shutdown(s->chan, SHUT_WR);
        } else {
            s->in_off = 0;
            s->in_len = (size_t)r;
        }
    }
    if (s->in_len && (revents_chan & (POLLOUT | POLLERR | POLLHUP))) {
        ssize_t w = send(s->chan, s->in + s->in_off, s->in_len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            s->in_len = 0; /* the command is gone: stop feeding it */
            s->in_open = false;
        } else if (w > 0) {
            s->in_off += (size_t)w;
            s->in_len -= (size_t)w;
        }
    }
}

/* Relay stdin to the command and its stdout to ours until it ends. */
static int relay_stdio(int chan)
{
    struct stdio_relay *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->chan = chan;
    s->in_open = true;
    int rc = 0;
    for (;;) {
        struct pollfd p[2] = {
            { .fd = s->in_open && !s->in_len ? 0 : -1, .events = POLLIN },
            { .fd = chan, .events = (short)(POLLIN | (s->in_len ? POLLOUT : 0)) },
        };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        stdin_to_chan(s, p[0].revents, p[1].revents);
        if (!(p[1].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t r = read(chan, s->out, sizeof(s->out));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || (rc = write_all(1, s->out, (size_t)r)))
            break; /* the command's stdout ended (or ours broke) */
    }
    free(s);
    return rc;
}

static int peer_run(int argc, char **argv)
{
    const char *cmd = "peer run";
    if (argc < 2 || argv[1][0] == '-')
        die_usage(cmd, "give NAME -- SUBCOMMAND [ARGS...]");
    const char *name = argv[1];
    int first = argc > 2 && !strcmp(argv[2], "--") ? 3 : 2;
    if (first >= argc)
        die_usage(cmd, "give the snapfs subcommand to run on %s", name);
    struct peer_chan c;
    int rc = peer_spawn(name, argv + first, &c);
    if (rc == -EPERM)
        die(cmd, "%s: the peer refused the command: %s", name, c.refusal);
    if (rc)
        die(cmd, "%s: %s", name, peer_strerror(rc));
    int relay_rc = relay_stdio(c.fd);
    char *err = malloc(REMOTE_STDERR_MAX + 1);
    int status;
    rc = peer_wait(&c, &status, err, err ? REMOTE_STDERR_MAX + 1 : 0);
    if (err && *err) {
        fputs(err, stderr);
        if (err[strlen(err) - 1] != '\n')
            fputc('\n', stderr);
    }
    free(err);
    if (rc)
        die(cmd, "%s: %s", name, peer_strerror(rc));
    if (relay_rc)
        die(cmd, "standard output: %s", strerror(-relay_rc));
    return status;
}

int cmd_peer(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } subs[] = {
        { "passphrase", peer_passphrase }, { "create", peer_create },
        { "list", peer_list }, { "delete", peer_delete },
        { "serve", peer_serve }, { "run", peer_run },
    };
    if (argc < 2)
        die_usage("peer", "give passphrase, create, list, delete, serve or run");
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
        if (!strcmp(argv[1], subs[i].name))
            return subs[i].fn(argc - 1, argv + 1);
    die_usage("peer", "unknown subcommand '%s'", argv[1]);
}
