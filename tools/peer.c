/*
 * peer.c - `snapfs peer ...`: the command layer of the peer transport
 * (peer.h).
 *
 * On the host that serves, for each peer that connects to it:
 *   passphrase NAME   make (or replace) NAME's own passphrase: printed
 *                     once, only the key derived from it is kept
 *   revoke NAME       NAME's key and grants go; no other peer is touched
 *   allow NAME send|receive VOLUME...   grants, by volume identity
 *   deny NAME [send|receive [VOLUME...]]   removes grants
 *   grants [NAME] [--json]   the grants, and the peers with none yet
 *   serve             the server (peer_serve.c)
 * On the host that connects:
 *   create NAME HOST:PORT   reads the passphrase from a file or standard
 *                     input (never from the command line, which other
 *                     users see in ps) and stores the key with the address
 *   delete NAME, run NAME -- SUBCOMMAND...
 * And `list`: both kinds, names and addresses or grant counts, never a
 * secret.  `passphrase` is the only command that ever shows a secret.
 * `run` relays its own stdin and stdout to a command on the peer, prints
 * the remote stderr on its stderr and exits with the remote status.
 * Errors: one line "snapfs peer CMD: OBJECT: why", exit 1 (usage 2); a
 * refused command changes nothing.
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
#include "peer/peer.h"

#define REMOTE_STDERR_MAX (64u << 10)

static void no_more_args(const char *cmd, int argc, char **argv, int want)
{
    if (argc > want && argv[want][0] == '-')
        die_usage(cmd, "unknown option '%s'", argv[want]);
    if (argc != want)
        die_usage(cmd, "wrong number of arguments");
}

/* ---- the peers that connect here ---- */

/* NAME as the name of a peer that connects here, or a usage error. */
static void check_inbound_name(const char *cmd, const char *name)
{
    if (!strcmp(name, PEER_LEGACY_NAME))
        die_usage(cmd, "'%s' names the host passphrase of an earlier snapfs "
                  "(peers made with it); choose another name", name);
    if (!peer_name_valid(name))
        die_usage(cmd, "'%s': a peer name is 1 to %d letters, digits, '.', "
                  "'_' or '-', not starting with '.'", name, PEER_NAME_MAX);
}

/* NAME may connect here (or is the legacy host key), or die. */
static void need_inbound(const char *cmd, const char *name)
{
    if (!peer_inbound_exists(name))
        die(cmd, "%s: no such peer connects here (snapfs peer passphrase %s "
            "makes one; snapfs peer list shows them)", name, name);
}

static int peer_passphrase(int argc, char **argv)
{
    const char *cmd = "peer passphrase";
    if (argc == 1)
        die_usage(cmd, "give the NAME of the peer it is for: each peer that "
                  "connects here has a passphrase of its own");
    no_more_args(cmd, argc, argv, 2);
    const char *name = argv[1];
    check_inbound_name(cmd, name);
    char pass[PEER_PASSPHRASE_SIZE];
    uint8_t key[PEER_KEY_LEN];
    bool replaced = peer_inbound_exists(name);
    int rc = peer_passphrase_generate(pass);
    if (!rc)
        rc = peer_passphrase_key(pass, key);
    if (!rc)
        rc = peer_inbound_store(name, key);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc) {
        OPENSSL_cleanse(pass, sizeof(pass));
        die(cmd, "%s: %s", peer_config_dir(), strerror(-rc));
    }
    printf("%s\n", pass);
    fflush(stdout);
    OPENSSL_cleanse(pass, sizeof(pass));
    if (replaced)
        fprintf(stderr, "snapfs peer passphrase: replaces %s's previous "
                        "passphrase (no other peer's); its grants stay\n", name);
    else
        fprintf(stderr, "snapfs peer passphrase: %s can connect, and do "
                        "nothing until granted: snapfs peer allow %s "
                        "send|receive VOLUME\n", name, name);
    return 0;
}

static int peer_revoke(int argc, char **argv)
{
    const char *cmd = "peer revoke";
    no_more_args(cmd, argc, argv, 2);
    const char *name = argv[1];
    need_inbound(cmd, name);
    struct peer_grant all = { .op = PEER_OP_LOOK };
    snprintf(all.peer, sizeof(all.peer), "%s", name);
    size_t removed, unmatched;
    int rc = peer_grants_remove(&all, 1, &removed, &unmatched);
    if (rc == -ENOENT)
        rc = 0; /* it had none */
    if (rc == -EBADMSG)
        die(cmd, "%s/grants: damaged; nothing was revoked", peer_config_dir());
    if (!rc)
        rc = peer_inbound_delete(name);
    if (rc)
        die(cmd, "%s: %s", name, strerror(-rc));
    printf("snapfs: revoked peer %s (%zu grant%s removed); it can no longer "
           "connect\n", name, removed, removed == 1 ? "" : "s");
    return 0;
}

/* ---- grants ---- */

static const char *resolve_error(int rc)
{
    return rc == -EINVAL ? "a path with a newline cannot be granted"
                         : open_error(rc);
}

static int peer_allow(int argc, char **argv)
{
    const char *cmd = "peer allow";
    if (argc < 4)
        die_usage(cmd, "give NAME send|receive VOLUME...");
    const char *name = argv[1];
    struct peer_grant *g = calloc((size_t)argc, sizeof(*g));
    if (!g)
        die(cmd, "out of memory");
    enum peer_op op;
    if (peer_op_parse(argv[2], &op))
        die_usage(cmd, "'%s': give send or receive", argv[2]);
    for (int i = 3; i < argc; i++)
        if (argv[i][0] == '-')
            die_usage(cmd, "unknown option '%s'", argv[i]);
    need_inbound(cmd, name);
    size_t n = 0;
    for (int i = 3; i < argc; i++, n++) {
        int rc = peer_grant_resolve(argv[i], &g[n]);
        if (rc)
            die(cmd, "%s: %s; nothing was granted", argv[i], resolve_error(rc));
        snprintf(g[n].peer, sizeof(g[n].peer), "%s", name);
        g[n].op = op;
    }
    size_t added;
    int rc = peer_grants_add(g, n, &added);
    if (rc == -EBADMSG)
        die(cmd, "%s/grants: damaged; nothing was granted", peer_config_dir());
    if (rc)
        die(cmd, "%s/grants: %s; nothing was granted", peer_config_dir(),
            strerror(-rc));
    for (size_t i = 0; i < n; i++) {
        char uuid[SFS_UUID_TEXT];
        sfs_uuid_format(g[i].uuid, uuid);
        printf("snapfs: peer %s may %s %s (volume %s)\n", name,
               op == PEER_OP_SEND ? "send from" : "receive into", g[i].path,
               uuid);
    }
    free(g);
    return 0;
}

/* VOLUME as peer deny matches it: resolved when it still is a volume,
 * else its absolute path as written. */
static void deny_pattern(const char *volume, struct peer_grant *p)
{
    if (!peer_grant_resolve(volume, p))
        return;
    char cwd[PATH_MAX] = "";
    if (volume[0] != '/' && !getcwd(cwd, sizeof(cwd)))
        cwd[0] = 0;
    if (snprintf(p->path, sizeof(p->path), "%s%s%s", cwd, cwd[0] ? "/" : "",
                 volume) >= (int)sizeof(p->path))
        die_usage("peer deny", "%s: the path is too long", volume);
    size_t n = strlen(p->path);
    while (n > 1 && p->path[n - 1] == '/')
        p->path[--n] = 0;
}

static int peer_deny(int argc, char **argv)
{
    const char *cmd = "peer deny";
    if (argc < 2)
        die_usage(cmd, "give NAME [send|receive [VOLUME...]]");
    const char *name = argv[1];
    enum peer_op op = PEER_OP_LOOK;
    if (argc > 2 && peer_op_parse(argv[2], &op))
        die_usage(cmd, "'%s': give send or receive", argv[2]);
    size_t n = argc > 3 ? (size_t)argc - 3 : 1;
    struct peer_grant *p = calloc(n, sizeof(*p));
    if (!p)
        die(cmd, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (argc > 3)
            deny_pattern(argv[3 + i], &p[i]);
        snprintf(p[i].peer, sizeof(p[i].peer), "%s", name);
        p[i].op = op;
    }
    size_t removed, unmatched;
    int rc = peer_grants_remove(p, n, &removed, &unmatched);
    if (rc == -ENOENT && argc > 3)
        die(cmd, "%s: peer %s has no %s grant for it (snapfs peer grants %s "
            "lists them); nothing was removed", argv[3 + unmatched], name,
            peer_op_name(op), name);
    if (rc == -ENOENT)
        die(cmd, "%s: has no %s%sgrant (snapfs peer grants lists them)", name,
            argc > 2 ? argv[2] : "", argc > 2 ? " " : "");
    if (rc)
        die(cmd, "%s/grants: %s; nothing was removed", peer_config_dir(),
            rc == -EBADMSG ? "damaged" : strerror(-rc));
    printf("snapfs: peer %s: %zu grant%s removed\n", name, removed,
           removed == 1 ? "" : "s");
    free(p);
    return 0;
}

/* Whether G's volume is still there: "ok", "missing", or "replaced" (by
 * another volume at its path). */
static const char *grant_state(const struct peer_grant *g)
{
    struct peer_volume_id id;
    if (peer_volume_id_at(g->path, &id))
        return "missing";
    return memcmp(id.uuid, g->uuid, sizeof(id.uuid)) ? "replaced" : "ok";
}

static void grants_text(const struct peer_grants *t, char **names, size_t n)
{
    printf("%-16s %-9s %-8s %-36s %s\n", "PEER", "OPERATION", "STATE", "UUID",
           "VOLUME");
    for (size_t i = 0; i < t->n; i++) {
        char uuid[SFS_UUID_TEXT];
        sfs_uuid_format(t->g[i].uuid, uuid);
        printf("%-16s %-9s %-8s %-36s %s\n", t->g[i].peer,
               peer_op_name(t->g[i].op), grant_state(&t->g[i]), uuid,
               t->g[i].path);
    }
    for (size_t i = 0; i < n; i++)
        if (!peer_grants_count(t, names[i]))
            printf("%-16s no grant yet: it can only connect\n", names[i]);
}

static void grants_json(const struct peer_grants *t, char **names, size_t n)
{
    printf("{\"grants\":[");
    for (size_t i = 0; i < t->n; i++) {
        char uuid[SFS_UUID_TEXT];
        sfs_uuid_format(t->g[i].uuid, uuid);
        printf("%s{\"peer\":", i ? "," : "");
        print_json_string(t->g[i].peer);
        printf(",\"operation\":\"%s\",\"volume\":", peer_op_name(t->g[i].op));
        print_json_string(t->g[i].path);
        printf(",\"uuid\":\"%s\",\"state\":\"%s\"}", uuid,
               grant_state(&t->g[i]));
    }
    printf("],\"without_grant\":[");
    for (size_t i = 0, shown = 0; i < n; i++)
        if (!peer_grants_count(t, names[i])) {
            printf("%s", shown++ ? "," : "");
            print_json_string(names[i]);
        }
    printf("]}\n");
}

/* Keep only NAME's grants and name (none if NAME is NULL). */
static void only_peer(struct peer_grants *t, char **names, size_t *n,
                      const char *name)
{
    size_t kept = 0;
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->g[i].peer, name))
            t->g[kept++] = t->g[i];
    t->n = kept;
    kept = 0;
    for (size_t i = 0; i < *n; i++) {
        if (!strcmp(names[i], name))
            names[kept++] = names[i];
        else
            free(names[i]);
    }
    *n = kept;
}

static int peer_grants(int argc, char **argv)
{
    const char *cmd = "peer grants", *name = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (argv[i][0] == '-')
            die_usage(cmd, "unknown option '%s'", argv[i]);
        else if (!name)
            name = argv[i];
        else
            die_usage(cmd, "give at most one peer NAME");
    }
    struct peer_grants t;
    char **names;
    size_t n;
    int rc = peer_inbound_names(&names, &n);
    if (rc)
        die(cmd, "%s: %s", peer_config_dir(), strerror(-rc));
    rc = peer_grants_load(&t);
    if (rc == -EBADMSG)
        die(cmd, "%s/grants: damaged at line %d", peer_config_dir(), t.bad_line);
    if (rc)
        die(cmd, "%s/grants: %s", peer_config_dir(), strerror(-rc));
    if (name) {
        if (!peer_inbound_exists(name) && !peer_grants_count(&t, name))
            die(cmd, "%s: no such peer connects here (snapfs peer list shows "
                "them)", name);
        only_peer(&t, names, &n, name);
    }
    if (json)
        grants_json(&t, names, n);
    else
        grants_text(&t, names, n);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    peer_grants_free(&t);
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

/* The peers this host connects to: NAME ADDRESS. */
static void list_outgoing(bool json, bool *first)
{
    char **names;
    size_t n;
    int rc = peer_record_names(&names, &n);
    if (rc)
        die("peer list", "%s: %s", peer_config_dir(), strerror(-rc));
    if (!json)
        printf("%-24s %s\n", "NAME", "ADDRESS");
    for (size_t i = 0; i < n; i++) {
        struct peer_record r;
        rc = peer_record_load(names[i], &r);
        OPENSSL_cleanse(r.key, sizeof(r.key));
        const char *addr = rc ? "(damaged record)" : r.address;
        if (json) {
            printf("%s{\"name\":", *first ? "" : ",");
            print_json_string(names[i]);
            printf(",\"direction\":\"outgoing\",\"address\":");
            print_json_string(addr);
            printf("}");
            *first = false;
        } else {
            printf("%-24s %s\n", names[i], addr);
        }
        free(names[i]);
    }
    free(names);
}

/* The peers that connect here: NAME and how many grants it has. */
static void list_incoming(bool json, bool *first)
{
    char **names;
    size_t n;
    struct peer_grants t;
    int rc = peer_inbound_names(&names, &n);
    if (rc)
        die("peer list", "%s: %s", peer_config_dir(), strerror(-rc));
    rc = peer_grants_load(&t);
    if (rc)
        die("peer list", "%s/grants: %s", peer_config_dir(),
            rc == -EBADMSG ? "damaged" : strerror(-rc));
    if (!json && n)
        printf("\n%-24s %s\n", "CONNECTS HERE", "GRANTS");
    for (size_t i = 0; i < n; i++) {
        size_t count = peer_grants_count(&t, names[i]);
        if (json) {
            printf("%s{\"name\":", *first ? "" : ",");
            print_json_string(names[i]);
            printf(",\"direction\":\"incoming\",\"grants\":%zu,"
                   "\"legacy\":%s}", count,
                   strcmp(names[i], PEER_LEGACY_NAME) ? "false" : "true");
            *first = false;
        } else if (count) {
            printf("%-24s %zu\n", names[i], count);
        } else {
            printf("%-24s none yet: it can only connect\n", names[i]);
        }
        free(names[i]);
    }
    free(names);
    peer_grants_free(&t);
}

static int peer_list(int argc, char **argv)
{
    bool json = argc == 2 && !strcmp(argv[1], "--json"), first = true;
    if (!json)
        no_more_args("peer list", argc, argv, 1);
    if (json)
        printf("[");
    list_outgoing(json, &first);
    list_incoming(json, &first);
    if (json)
        printf("]\n");
    return 0;
}

static int peer_delete(int argc, char **argv)
{
    no_more_args("peer delete", argc, argv, 2);
    int rc = peer_record_delete(argv[1]);
    if (rc == -ENOENT && peer_inbound_exists(argv[1]))
        die("peer delete", "%s: no such peer this host connects to (a peer "
            "that connects here goes with snapfs peer revoke %s)", argv[1],
            argv[1]);
    if (rc == -ENOENT)
        die("peer delete", "%s: no such peer", argv[1]);
    if (rc)
        die("peer delete", "%s: %s", argv[1], strerror(-rc));
    printf("snapfs: deleted peer %s\n", argv[1]);
    return 0;
}

/* ---- serve ---- */

/* The value of OPT, an integer in [MIN, MAX], or a usage error. */
static int int_option(const char *cmd, const char *opt, const char *v, int min,
                      int max)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < min || n > max)
        die_usage(cmd, "%s %s: give a whole number from %d to %d", opt, v, min,
                  max);
    return (int)n;
}

static int peer_serve(int argc, char **argv)
{
    const char *cmd = "peer serve", *v;
    struct peer_serve_opts o = { .per_peer = PEER_PER_PEER_DEFAULT,
                                 .idle_seconds = PEER_IDLE_DEFAULT };
    bool foreground = false;
    for (int i = 1; i < argc; i++) {
        if ((v = option_value(cmd, "--listen", argc, argv, &i)))
            o.listen = v;
        else if ((v = option_value(cmd, "--max-per-peer", argc, argv, &i)))
            o.per_peer = int_option(cmd, "--max-per-peer", v, 1, 16);
        else if ((v = option_value(cmd, "--idle-timeout", argc, argv, &i)))
            o.idle_seconds = int_option(cmd, "--idle-timeout", v, 1, 86400);
        else if (!strcmp(argv[i], "--foreground") || !strcmp(argv[i], "-f"))
            foreground = true;
        else
            die_usage(cmd, "unknown argument '%s'", argv[i]);
    }
    struct peer_server *s;
    char bound[300], why[4200];
    int rc = peer_serve_open(&o, &s, bound, sizeof(bound), why, sizeof(why));
    if (rc == -ENOKEY)
        die(cmd, "%s: no peer may connect yet (make one with 'snapfs peer "
                 "passphrase NAME')", why);
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
        { "passphrase", peer_passphrase }, { "revoke", peer_revoke },
        { "allow", peer_allow }, { "deny", peer_deny },
        { "grants", peer_grants }, { "create", peer_create },
        { "list", peer_list }, { "delete", peer_delete },
        { "serve", peer_serve }, { "run", peer_run },
    };
    if (argc < 2)
        die_usage("peer", "give passphrase, revoke, allow, deny, grants, "
                  "create, list, delete, serve or run");
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
        if (!strcmp(argv[1], subs[i].name))
            return subs[i].fn(argc - 1, argv + 1);
    die_usage("peer", "unknown subcommand '%s'", argv[1]);
}
