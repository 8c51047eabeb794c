/*
 * peer_grants.c - what each peer may do on this host: the grants that
 * `snapfs peer allow` and `peer deny` keep, the commands a peer may ask
 * for, and the decision on one request.
 *
 * A grant lets one peer (by the name it authenticates as) send from, or
 * receive into, one volume.  The volume is named by its identity, not by
 * a string: the UUID of its store and the path of the store directory as
 * the filesystem resolved it when the grant was made.  A request names a
 * volume by a path of its own; the decision opens the store that path
 * resolves to (symlinks, "..", mountpoints and bind mounts resolved as
 * the filesystem resolves them) and allows the request only if a grant
 * of that peer for that operation has the same UUID and its path leads,
 * now, to the very data file that was opened (device and inode).  The
 * command then runs with that identity and checks it again on everything
 * it opens (peer_guard.c), so a path changed after the decision reaches
 * nothing either.
 *
 *   DIR/grants       "PEER send|receive UUID PATH" lines (0600), replaced
 *                    whole (temporary file, fsync, rename) under an flock
 *                    of DIR/grants.lock, so concurrent changes serialize
 *                    and a crash leaves the old table or the new one
 *
 * Commands a peer may ask for, each with the grant it needs: `send VOL
 * SNAP` a send grant; `receive DST` a receive grant; `info VOL` and
 * `snapshot list VOL` either.  Their options are known here one by one,
 * so the word that names the volume is found as the command finds it;
 * anything else is refused.  Guarantees: without a grant a peer can run
 * nothing; a damaged grants file allows nothing; nothing here prints.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "peer.h"

#define GRANTS_LEAF "grants"
#define GRANTS_LOCK_LEAF "grants.lock"
#define GRANTS_HEADER "# snapfs peer grants: PEER send|receive UUID PATH " \
                      "(snapfs peer allow, deny)\n"

/* ---- operations ---- */

const char *peer_op_name(enum peer_op op)
{
    switch (op) {
    case PEER_OP_SEND:
        return "send";
    case PEER_OP_RECEIVE:
        return "receive";
    default:
        return "send or receive";
    }
}

int peer_op_parse(const char *word, enum peer_op *op)
{
    if (!strcmp(word, "send"))
        *op = PEER_OP_SEND;
    else if (!strcmp(word, "receive"))
        *op = PEER_OP_RECEIVE;
    else
        return -EINVAL;
    return 0;
}

/* ---- the table ---- */

void peer_grants_free(struct peer_grants *t)
{
    free(t->g);
    memset(t, 0, sizeof(*t));
}

static int table_add(struct peer_grants *t, const struct peer_grant *g)
{
    return array_append(&t->g, &t->n, &t->cap, g, sizeof(*g));
}

/* One line "PEER OP UUID PATH" (no newline) into G. */
static int parse_line(char *line, struct peer_grant *g)
{
    char *save, *peer = strtok_r(line, " ", &save);
    char *op = peer ? strtok_r(NULL, " ", &save) : NULL;
    char *uuid = op ? strtok_r(NULL, " ", &save) : NULL;
    char *path = uuid ? save : NULL;
    memset(g, 0, sizeof(*g));
    if (!path || !peer_name_valid(peer) || peer_op_parse(op, &g->op) ||
        sfs_uuid_parse(uuid, g->uuid) || path[0] != '/' ||
        strlen(path) >= sizeof(g->path))
        return -EBADMSG;
    snprintf(g->peer, sizeof(g->peer), "%s", peer);
    snprintf(g->path, sizeof(g->path), "%s", path);
    return 0;
}

static int parse_table(FILE *f, struct peer_grants *t)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0, number = 0;
    while (!rc && (len = getline(&line, &cap, f)) >= 0) {
        number++;
        if (len && line[len - 1] == '\n')
            line[--len] = 0;
        if (!len || line[0] == '#')
            continue;
        struct peer_grant g;
        rc = parse_line(line, &g);
        if (!rc)
            rc = table_add(t, &g);
        if (rc == -EBADMSG)
            t->bad_line = number;
    }
    free(line);
    return rc;
}

int peer_grants_load(struct peer_grants *t)
{
    char path[PATH_MAX];
    memset(t, 0, sizeof(*t));
    int rc = peer_config_path(path, sizeof(path), GRANTS_LEAF);
    FILE *f = rc ? NULL : fopen(path, "re");
    if (!rc && !f)
        return errno == ENOENT ? 0 : -errno;
    if (!rc)
        rc = parse_table(f, t);
    if (f)
        fclose(f);
    if (rc) {
        int bad = t->bad_line;
        peer_grants_free(t);
        t->bad_line = bad;
    }
    return rc;
}

static int write_table(const struct peer_grants *t)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return -ENOMEM;
    fputs(GRANTS_HEADER, f);
    for (size_t i = 0; i < t->n; i++) {
        char uuid[SFS_UUID_TEXT];
        sfs_uuid_format(t->g[i].uuid, uuid);
        fprintf(f, "%s %s %s %s\n", t->g[i].peer, peer_op_name(t->g[i].op),
                uuid, t->g[i].path);
    }
    int rc = fclose(f) ? -ENOMEM : peer_config_replace(GRANTS_LEAF, text);
    free(text);
    return rc;
}

/* Hold DIR/grants.lock for a change of the table: an fd, or -errno. */
static int lock_table(void)
{
    char path[PATH_MAX];
    int rc = peer_config_make();
    if (!rc)
        rc = peer_config_path(path, sizeof(path), GRANTS_LOCK_LEAF);
    if (rc)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX)) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* Load the table under its lock, let EDIT change it, write it back if
 * EDIT returned 0: all or nothing. */
static int edit_table(int (*edit)(struct peer_grants *, void *), void *arg)
{
    int lock = lock_table();
    if (lock < 0)
        return lock;
    struct peer_grants t;
    int rc = peer_grants_load(&t);
    if (!rc)
        rc = edit(&t, arg);
    if (!rc)
        rc = write_table(&t);
    peer_grants_free(&t);
    close(lock);
    return rc;
}

/* ---- volumes ---- */

int peer_grant_resolve(const char *volume, struct peer_grant *g)
{
    bool mounted;
    char *store = resolve_volume(volume, &mounted);
    if (!store)
        return -ENOMEM;
    struct peer_volume_id id;
    int rc = strlen(store) < sizeof(g->path) ? 0 : -ENAMETOOLONG;
    if (!rc)
        rc = peer_volume_id_at(store, &id);
    if (!rc && (store[0] != '/' || strchr(store, '\n')))
        rc = -EINVAL; /* no path a grants line can hold */
    if (!rc) {
        snprintf(g->path, sizeof(g->path), "%s", store);
        memcpy(g->uuid, id.uuid, sizeof(g->uuid));
    }
    free(store);
    return rc;
}

/* G's volume is, now, the one of ID: the same UUID, and G's path leads
 * to the very data file that was opened. */
static bool grant_is(const struct peer_grant *g, const struct peer_volume_id *id)
{
    char data[PATH_MAX + 16];
    struct stat sb;
    snprintf(data, sizeof(data), "%s/data.mdb", g->path);
    return !memcmp(g->uuid, id->uuid, sizeof(g->uuid)) && !stat(data, &sb) &&
           sb.st_dev == id->dev && sb.st_ino == id->ino;
}

size_t peer_grants_count(const struct peer_grants *t, const char *peer)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        n += !strcmp(t->g[i].peer, peer);
    return n;
}

/* ---- changing the table ---- */

static bool same_grant(const struct peer_grant *a, const struct peer_grant *b)
{
    return !strcmp(a->peer, b->peer) && a->op == b->op &&
           !memcmp(a->uuid, b->uuid, sizeof(a->uuid)) &&
           !strcmp(a->path, b->path);
}

struct grant_list {
    const struct peer_grant *g;
    size_t n, done;
};

static int add_new(struct peer_grants *t, void *arg)
{
    struct grant_list *l = arg;
    for (size_t i = 0; i < l->n; i++) {
        bool have = false;
        for (size_t j = 0; j < t->n && !have; j++)
            have = same_grant(&t->g[j], &l->g[i]);
        int rc = have ? 0 : table_add(t, &l->g[i]);
        if (rc)
            return rc;
        l->done += !have;
    }
    return 0;
}

int peer_grants_add(const struct peer_grant *g, size_t n, size_t *added)
{
    struct grant_list l = { g, n, 0 };
    int rc = edit_table(add_new, &l);
    *added = rc ? 0 : l.done;
    return rc;
}

/* Does grant G fall under PATTERN of peer_grants_remove? */
static bool removes(const struct peer_grant *g, const struct peer_grant *p)
{
    if (strcmp(g->peer, p->peer) || !(g->op & p->op))
        return false;
    if (!p->path[0])
        return true; /* every volume */
    static const uint8_t none[16];
    bool by_uuid = memcmp(p->uuid, none, sizeof(none)) &&
                   !memcmp(g->uuid, p->uuid, sizeof(none));
    return by_uuid || !strcmp(g->path, p->path);
}

struct removal {
    const struct peer_grant *patterns;
    size_t n, removed;
    size_t unmatched; /* the first pattern that removes nothing, or n */
};

static int remove_matching(struct peer_grants *t, void *arg)
{
    struct removal *r = arg;
    bool *hit = calloc(r->n ? r->n : 1, sizeof(*hit));
    if (!hit)
        return -ENOMEM;
    size_t kept = 0;
    for (size_t i = 0; i < t->n; i++) {
        bool drop = false;
        for (size_t j = 0; j < r->n; j++)
            if (removes(&t->g[i], &r->patterns[j]))
                drop = hit[j] = true;
        if (!drop)
            t->g[kept++] = t->g[i];
    }
    r->removed = t->n - kept;
    t->n = kept;
    for (r->unmatched = 0; r->unmatched < r->n && hit[r->unmatched];)
        r->unmatched++;
    free(hit);
    return r->unmatched < r->n ? -ENOENT : 0;
}

int peer_grants_remove(const struct peer_grant *patterns, size_t n,
                       size_t *removed, size_t *unmatched)
{
    struct removal r = { patterns, n, 0, n };
    int rc = edit_table(remove_matching, &r);
    *removed = rc ? 0 : r.removed;
    *unmatched = r.unmatched;
    return rc;
}

/* ---- requests ---- */

/*
 * What a peer may run: the words of the command, the grant it needs, how
 * many volume-and-other words it takes after its options, and its
 * options (a trailing '=' marks one that takes a value: "--from X" or
 * "--from=X").  The first of those words names the volume.  `receive
 * --config` (a mirror's configuration carried with the data) needs the
 * receive grant as any receive does: a peer carries a configuration only
 * to a volume it may receive into (mirror_config.c checks what it is).
 */
#define PEER_OPTIONS_MAX 10
static const struct peer_command {
    const char *command, *subcommand;
    enum peer_op need;
    int min_words, max_words;
    const char *options[PEER_OPTIONS_MAX];
} commands[] = {
    { "send", NULL, PEER_OP_SEND, 2, 2,
      { "--from=", "-I=", "--resume=", "-v" } },
    { "receive", NULL, PEER_OP_RECEIVE, 1, 1,
      { "-v", "--handshake", "--hold-back", "--publish", "--resume-token",
        "--abort", "--resync", "--adopt=", "--config" } },
    { "snapshot", "list", PEER_OP_LOOK, 1, INT_MAX, { "--json" } },
    { "info", NULL, PEER_OP_LOOK, 1, 1, { "--json" } },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct peer_command *find_command(char *const argv[])
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const struct peer_command *c = &commands[i];
        if (!strcmp(argv[0], c->command) &&
            (!c->subcommand || (argv[1] && !strcmp(argv[1], c->subcommand))))
            return c;
    }
    return NULL;
}

static void list_commands(char *out, size_t cap)
{
    size_t at = 0;
    for (size_t i = 0; i < NCOMMANDS && at < cap; i++) {
        int w = snprintf(out + at, cap - at, "%s%s%s%s", i ? ", " : "",
                         commands[i].command, commands[i].subcommand ? " " : "",
                         commands[i].subcommand ? commands[i].subcommand : "");
        at += w > 0 ? (size_t)w : 0;
    }
}

/* ARG as one of C's options: 0 a flag, 1 an option that takes the next
 * word as its value, 2 one with its value in ARG ("--opt=V"), -1 none. */
static int option_kind(const struct peer_command *c, const char *arg)
{
    for (size_t i = 0; i < PEER_OPTIONS_MAX && c->options[i]; i++) {
        const char *o = c->options[i];
        size_t n = strlen(o);
        bool valued = o[n - 1] == '=';
        if (!valued && !strcmp(arg, o))
            return 0;
        if (valued && !strncmp(arg, o, n - 1) && !arg[n - 1])
            return 1;
        if (valued && !strncmp(arg, o, n))
            return 2;
    }
    return -1;
}

int peer_request_parse(char *const argv[], struct peer_request *req,
                       char *why, size_t cap)
{
    const struct peer_command *c = find_command(argv);
    if (!c) {
        char allowed[200];
        list_commands(allowed, sizeof(allowed));
        snprintf(why, cap, "'%s%s%s' is not allowed through a peer (allowed: "
                 "%s)", argv[0], argv[1] ? " " : "", argv[1] ? argv[1] : "",
                 allowed);
        return -EPERM;
    }
    int words = 0;
    req->need = c->need;
    req->volume = NULL;
    for (int i = c->subcommand ? 2 : 1; argv[i]; i++) {
        int kind = argv[i][0] == '-' && argv[i][1] ? option_kind(c, argv[i]) : 3;
        if (kind < 0) {
            snprintf(why, cap, "%s: option '%.100s' is not one a peer may give",
                     argv[0], argv[i]);
            return -EINVAL;
        }
        if (kind == 1 && !argv[++i]) {
            snprintf(why, cap, "%s: %s needs a value", argv[0], argv[i - 1]);
            return -EINVAL;
        }
        if (kind == 3 && words++ == 0)
            req->volume = argv[i];
    }
    if (words < c->min_words || words > c->max_words) {
        snprintf(why, cap, "%s%s%s: give the volume%s", c->command,
                 c->subcommand ? " " : "", c->subcommand ? c->subcommand : "",
                 c->min_words > 1 ? " and the snapshot" : " (one)");
        return -EINVAL;
    }
    return 0;
}

int peer_request_allowed(const char *peer, const struct peer_request *req,
                         struct peer_volume_id *id, char *why, size_t cap)
{
    struct peer_grants t;
    int rc = peer_grants_load(&t);
    if (rc) {
        snprintf(why, cap, "the grants file cannot be read (%s%s%d)",
                 rc == -EBADMSG ? "damaged" : strerror(-rc),
                 rc == -EBADMSG ? " at line " : ", ", t.bad_line);
        return rc;
    }
    if (!peer_grants_count(&t, peer)) {
        snprintf(why, cap, "peer %s has no grant yet", peer);
        peer_grants_free(&t);
        return -ENOENT;
    }
    bool mounted;
    char *store = resolve_volume(req->volume, &mounted);
    rc = store ? peer_volume_id_at(store, id) : -ENOMEM;
    if (rc)
        snprintf(why, cap, "%.1000s: %s", store ? store : req->volume,
                 open_error(rc));
    for (size_t i = 0; !rc && i < t.n; i++)
        if (!strcmp(t.g[i].peer, peer) && (t.g[i].op & req->need) &&
            grant_is(&t.g[i], id)) {
            peer_grants_free(&t);
            free(store);
            return 0;
        }
    if (!rc) {
        char uuid[SFS_UUID_TEXT];
        sfs_uuid_format(id->uuid, uuid);
        snprintf(why, cap, "%.1000s is volume %s, which no %s grant of %s names",
                 store, uuid, peer_op_name(req->need), peer);
    }
    peer_grants_free(&t);
    free(store);
    return -EACCES;
}
