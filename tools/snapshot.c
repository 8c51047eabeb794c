/*
 * snapshot.c - `snapfs snapshot create|list|delete|rename|reclaim`.
 *
 * VOL is a store or a mountpoint.  On a mounted volume the command first
 * syncs the mountpoint (the kernel's writeback cache) and then asks the
 * daemon through STORE/control.sock, so a snapshot holds every write
 * acknowledged before the command began.  On an unmounted volume it opens
 * the store itself.  Names are checked against the listing first, so that
 * a refusal names what is wrong and nothing is changed; except by create,
 * which costs one request and one durable commit whatever the volume
 * holds: the store refuses a taken name in the create's own transaction
 * (with hooks, one lookup by name first, so that no hook runs for a name
 * that cannot be taken).  `create --group`
 * (several volumes at one point in time) is group.c's; `list` shows the
 * group each snapshot was taken in, and its labels.  `create --pre CMD
 * --post CMD` runs hooks around the snapshot (hookopt.c, fs/hooks.c):
 * the pre hook after the name was checked, the snapshot with the labels
 * it decided (consistency=application or crash), then the post hook.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hooks.h"
#include "store.h"

/* ---- the listing (also used to check names) ---- */

struct labelled {
    uint64_t epoch;
    char labels[SFS_LABELS_MAX + 1];
};

struct listing {
    struct sfs_snap_line *lines;
    size_t n, cap;
    struct labelled *labels; /* the snapshots that have labels */
    size_t nl, capl;
};

static int labels_add(void *arg, uint64_t epoch, const char *labels)
{
    struct listing *ls = arg;
    struct labelled l = { .epoch = epoch };
    snprintf(l.labels, sizeof(l.labels), "%s", labels);
    return array_append(&ls->labels, &ls->nl, &ls->capl, &l, sizeof(l));
}

static const char *labels_of(const struct listing *ls, uint64_t epoch)
{
    for (size_t i = 0; i < ls->nl; i++)
        if (ls->labels[i].epoch == epoch)
            return ls->labels[i].labels;
    return "";
}

/* The labels of a mounted volume's snapshots (a daemon that predates
 * labels answers EOPNOTSUPP: none). */
static int mounted_labels(struct volume *vol, struct listing *ls)
{
    char *data = NULL, *words[] = { "snapshot-labels" };
    int rc = volume_request(vol, words, 1, &data);
    for (char *save = NULL, *line = !rc && data ? strtok_r(data, "\n", &save)
                                                : NULL;
         !rc && line; line = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(line, '\t');
        if (!tab)
            rc = -EPROTO;
        else
            rc = labels_add(ls, strtoull(line, NULL, 10), tab + 1);
    }
    free(data);
    return rc == -EOPNOTSUPP ? 0 : rc;
}

static int listing_add(void *arg, const struct sfs_snap_line *l)
{
    struct listing *ls = arg;
    return array_append(&ls->lines, &ls->n, &ls->cap, l, sizeof(*l));
}

static int offline_list(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    int rc = sfs_snap_list(st, txn, listing_add, arg);
    return rc ? rc : sfs_snap_labels_foreach(st, txn, labels_add, arg);
}

/* The listing of VOL; on failure the command dies saying what it was
 * DOING ("creating snapshot X"), since the listing is a step of that. */
static void get_listing(struct volume *vol, const char *cmd, const char *doing,
                        struct listing *ls)
{
    memset(ls, 0, sizeof(*ls));
    int rc;
    if (vol->mounted) {
        char *data = NULL;
        char *words[] = { "snapshot-list" };
        rc = volume_request(vol, words, 1, &data);
        for (char *save = NULL, *line = data ? strtok_r(data, "\n", &save) : NULL;
             !rc && line; line = strtok_r(NULL, "\n", &save)) {
            struct sfs_snap_line l;
            rc = sfs_snap_line_parse(line, &l);
            if (!rc)
                rc = listing_add(ls, &l);
        }
        free(data);
        if (!rc)
            rc = mounted_labels(vol, ls);
    } else {
        rc = volume_offline(vol, cmd, offline_list, ls, false);
    }
    if (rc)
        die(cmd, "%s: %s: %s", vol->arg, doing, snapshot_error(rc));
}

static const struct sfs_snap_line *find_name(const struct listing *ls,
                                             const char *name)
{
    for (size_t i = 0; i < ls->n; i++)
        if (!strcmp(ls->lines[i].rec.name, name))
            return &ls->lines[i];
    return NULL;
}

static void check_new_name(const struct listing *ls, const char *cmd,
                           const char *vol, const char *name)
{
    if (sfs_snap_name_valid(name))
        die(cmd, "'%s' is not a valid snapshot name (1 to 255 bytes, no '/', "
                 "not '.' or '..')", name);
    if (find_name(ls, name))
        die(cmd, "%s: a snapshot named '%s' already exists", vol, name);
}

/* Whether VOL has a snapshot named NAME: 0 no, 1 yes, or a negative
 * errno.  One lookup by name, not the listing: the listing estimates what
 * each snapshot alone holds (a dry-run delete per snapshot), which a
 * create has no use for and which grows with the snapshots and their
 * changes. */
static int offline_find(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct sfs_snap_rec s;
    return sfs_snap_find(st, txn, arg, &s);
}

static int name_taken(struct volume *vol, const char *cmd, const char *name)
{
    int rc;
    if (vol->mounted) {
        char *data = NULL, *words[] = { "snapshot-find", (char *)name };
        rc = volume_ask(vol, words, 2, &data);
        free(data);
    } else {
        rc = volume_offline(vol, cmd, offline_find, (void *)name, false);
    }
    return rc == -ENOENT ? 0 : rc == 0 ? 1 : rc;
}

void snapshot_check_new_name(struct volume *vol, const char *cmd,
                             const char *name)
{
    if (sfs_snap_name_valid(name))
        die(cmd, "'%s' is not a valid snapshot name (1 to 255 bytes, no '/', "
                 "not '.' or '..')", name);
    int rc = name_taken(vol, cmd, name);
    if (rc < 0)
        die(cmd, "%s: creating snapshot %s: %s", vol->arg, name,
            snapshot_error(rc));
    if (rc)
        die(cmd, "%s: a snapshot named '%s' already exists", vol->arg, name);
}

static void check_existing(const struct listing *ls, const char *cmd,
                           const char *vol, int n, char **names)
{
    for (int i = 0; i < n; i++)
        if (!find_name(ls, names[i]))
            die(cmd, "%s: no snapshot named '%s'", vol, names[i]);
}

/* ---- the subcommands ---- */

struct names {
    int n;
    char **v;
};

static int epochs_of(struct sfs_store *st, MDB_txn *txn, struct names *nm,
                     uint64_t *epochs)
{
    for (int i = 0; i < nm->n; i++) {
        struct sfs_snap_rec s;
        int rc = sfs_snap_find(st, txn, nm->v[i], &s);
        if (rc)
            return rc;
        epochs[i] = s.epoch;
    }
    return 0;
}

static int offline_create(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct names *nm = arg;
    return sfs_snap_take_labelled_w(st, txn, nm->v[0], NULL,
                                    nm->n > 1 ? nm->v[1] : NULL, NULL);
}

static int offline_delete(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct names *nm = arg;
    uint64_t epochs[nm->n];
    int rc = epochs_of(st, txn, nm, epochs);
    for (int i = 0; !rc && i < nm->n; i++)
        rc = sfs_snap_delete_w(st, txn, epochs[i]);
    return rc;
}

static int offline_rename(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct names *nm = arg;
    return sfs_snap_rename_w(st, txn, nm->v[0], nm->v[1]);
}

static int offline_hold(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct names *nm = arg;
    return sfs_snap_hold_w(st, txn, nm->v[0], nm->v[1]);
}

static int offline_release(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct names *nm = arg;
    return sfs_snap_release_w(st, txn, nm->v[0], nm->v[1]);
}

/* The tags holding snapshot NAME, comma-separated, into *OUT. */
struct tags_arg {
    const char *name;
    char *buf;
    size_t len;
    FILE *f;
};

static int tag_cb(void *arg, const char *tag)
{
    struct tags_arg *ta = arg;
    fprintf(ta->f, "%s%s", ftell(ta->f) ? ", " : "", tag);
    return 0;
}

static int offline_tags(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct tags_arg *ta = arg;
    struct sfs_snap_rec s;
    int rc = sfs_snap_find(st, txn, ta->name, &s);
    if (!rc)
        rc = sfs_snap_holds(st, txn, s.epoch, tag_cb, ta);
    return rc < 0 ? rc : 0;
}

static char *holds_of(struct volume *vol, const char *cmd, const char *name)
{
    struct tags_arg ta = { .name = name };
    ta.f = open_memstream(&ta.buf, &ta.len);
    int rc;
    if (vol->mounted) {
        char *words[] = { "snapshot-holds", (char *)name }, *data = NULL;
        rc = volume_request(vol, words, 2, &data);
        for (char *save = NULL, *t = data ? strtok_r(data, "\n", &save) : NULL;
             !rc && t; t = strtok_r(NULL, "\n", &save))
            tag_cb(&ta, t);
        free(data);
    } else {
        rc = volume_offline(vol, cmd, offline_tags, &ta, false);
    }
    fclose(ta.f);
    if (rc)
        die(cmd, "%s: holds of '%s': %s", vol->arg, name, strerror(-rc));
    return ta.buf;
}

/* A delete of held snapshots is refused before anything changes. */
static void check_not_held(struct volume *vol, const struct listing *ls,
                           const char *cmd, int n, char **names)
{
    for (int i = 0; i < n; i++) {
        const struct sfs_snap_line *l = find_name(ls, names[i]);
        if (l && l->holds)
            die(cmd, "%s: snapshot '%s' is held by %s; release the hold%s "
                     "first (snapfs snapshot release)", vol->arg, names[i],
                holds_of(vol, cmd, names[i]), l->holds > 1 ? "s" : "");
    }
}

struct reclaim_arg {
    struct names nm;
    struct sfs_reclaim r;
};

static int offline_reclaim(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct reclaim_arg *ra = arg;
    uint64_t epochs[ra->nm.n];
    int rc = epochs_of(st, txn, &ra->nm, epochs);
    return rc ? rc : sfs_snap_reclaim(st, txn, epochs, (size_t)ra->nm.n, &ra->r);
}

/* Run a change: through the daemon, or on the store. */
static int run_change(struct volume *vol, const char *cmd, const char *op,
                      int (*fn)(struct sfs_store *, MDB_txn *, void *),
                      struct names *nm)
{
    if (!vol->mounted)
        return volume_offline(vol, cmd, fn, nm, true);
    char *words[nm->n + 1];
    words[0] = (char *)op;
    for (int i = 0; i < nm->n; i++)
        words[i + 1] = nm->v[i];
    char *data = NULL;
    int rc = volume_request(vol, words, nm->n + 1, &data);
    free(data);
    return rc;
}

/* The consistency group of a snapshot: in JSON, null or {"created",
 * "members": [UUID...]}; as text, "-" or the first 8 digits of each
 * member's UUID, comma-separated (`snapfs info` shows a volume's). */
static void print_group(const struct sfs_cgroup *g, bool json)
{
    if (!g->count) {
        printf(json ? "null" : "-");
        return;
    }
    if (json)
        printf("{\"created\":%lld,\"members\":[", (long long)g->created_sec);
    for (uint32_t i = 0; i < g->count; i++) {
        char u[SFS_UUID_TEXT];
        sfs_uuid_format(g->members[i], u);
        if (json)
            printf("%s\"%s\"", i ? "," : "", u);
        else
            printf("%s%.8s", i ? "," : "", u);
    }
    if (json)
        printf("]}");
}

/* Labels "k=v,k=v" as a JSON object. */
static void print_labels_json(const char *labels)
{
    printf("{");
    for (const char *p = labels; *p;) {
        size_t n = strcspn(p, ","), k = strcspn(p, "=");
        char word[SFS_LABELS_MAX + 1];
        snprintf(word, sizeof(word), "%.*s", (int)k, p);
        printf("%s", p == labels ? "" : ",");
        print_json_string(word);
        snprintf(word, sizeof(word), "%.*s", (int)(n - k - 1), p + k + 1);
        printf(":");
        print_json_string(word);
        p += n + (p[n] == ',');
    }
    printf("}");
}

static void print_list(const struct listing *ls, bool json)
{
    bool labels = ls->nl > 0; /* the LABELS column: only when used */
    if (json)
        printf("[");
    else
        printf("%-32s %-19s %8s %14s %-4s %s%s\n", "NAME", "CREATED", "EPOCH",
               "UNIQUE", "HELD", labels ? "GROUP     " : "GROUP",
               labels ? "LABELS" : "");
    for (size_t i = 0; i < ls->n; i++) {
        const struct sfs_snap_line *l = &ls->lines[i];
        char when[32], size[32];
        time_t t = (time_t)l->rec.ctime_sec;
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        format_bytes(l->unique_physical, size, sizeof(size));
        if (json)
            printf("%s{\"name\":\"%s\",\"created\":%lld,\"epoch\":%llu,"
                   "\"unique_bytes\":%llu,\"unique_logical_bytes\":%llu,"
                   "\"held\":%s,\"holds\":%u,\"group\":", i ? "," : "",
                   l->rec.name,
                   (long long)l->rec.ctime_sec,
                   (unsigned long long)l->rec.epoch,
                   (unsigned long long)l->unique_physical,
                   (unsigned long long)l->unique_logical,
                   l->holds ? "true" : "false", l->holds);
        else
            printf("%-32s %-19s %8llu %14s %-4s ", l->rec.name, when,
                   (unsigned long long)l->rec.epoch, size,
                   l->holds ? "yes" : "no");
        print_group(&l->group, json);
        const char *lab = labels_of(ls, l->rec.epoch);
        if (json) {
            printf(",\"labels\":");
            print_labels_json(lab);
        } else if (labels) {
            printf(" %s", *lab ? lab : "-");
        }
        printf(json ? "}" : "\n");
    }
    if (json)
        printf("]\n");
}

/* What subcommand SUB does to NM, for its error messages: a failure
 * anywhere in a create says "creating snapshot NAME: REASON". */
static void describe(const char *sub, const struct names *nm, char *out,
                     size_t cap)
{
    const char *first = nm->n ? nm->v[0] : "";
    if (!strcmp(sub, "create"))
        snprintf(out, cap, "creating snapshot %s", first);
    else if (!strcmp(sub, "delete") && nm->n > 1)
        snprintf(out, cap, "deleting %d snapshots", nm->n);
    else if (!strcmp(sub, "delete"))
        snprintf(out, cap, "deleting snapshot %s", first);
    else if (!strcmp(sub, "rename"))
        snprintf(out, cap, "renaming snapshot %s", first);
    else if (!strcmp(sub, "hold"))
        snprintf(out, cap, "placing a hold on snapshot %s", first);
    else if (!strcmp(sub, "release"))
        snprintf(out, cap, "releasing a hold on snapshot %s", first);
    else if (!strcmp(sub, "holds"))
        snprintf(out, cap, "listing the holds of snapshot %s", first);
    else if (!strcmp(sub, "reclaim"))
        snprintf(out, cap, "estimating what deleting frees");
    else
        snprintf(out, cap, "listing snapshots");
}

int cmd_snapshot(int argc, char **argv)
{
    if (argc < 2)
        die_usage("snapshot", "give create, list, delete, rename, reclaim, "
                              "hold, release, holds, diff, restore or "
                              "restore-file");
    const char *sub = argv[1];
    if (!strcmp(sub, "diff"))
        return cmd_snapshot_diff(argc - 1, argv + 1);
    if (!strcmp(sub, "restore") || !strcmp(sub, "restore-file"))
        return cmd_snapshot_restore(argc, argv);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "snapshot %s", sub);
    bool json = false;
    const char *group = NULL, *value;
    struct hook_options hopt = { 0 };
    int n = 0;
    char **args = calloc((size_t)argc, sizeof(*args));
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(sub, "create") &&
                 (value = option_value(cmd, "--group", argc, argv, &i)))
            group = value;
        else if (!strcmp(sub, "create") &&
                 hook_option(cmd, argc, argv, &i, &hopt))
            ;
        else if (argv[i][0] == '-' && argv[i][1])
            die_usage(cmd, "unknown option '%s'", argv[i]);
        else
            args[n++] = argv[i];
    }
    bool known = !strcmp(sub, "create") || !strcmp(sub, "list") ||
                 !strcmp(sub, "delete") || !strcmp(sub, "rename") ||
                 !strcmp(sub, "reclaim") || !strcmp(sub, "hold") ||
                 !strcmp(sub, "release") || !strcmp(sub, "holds");
    if (!known)
        die_usage("snapshot", "unknown subcommand '%s'", sub);
    struct sfs_hookspec spec = { .timeout = 0 };
    /* here, not in a block: a die() at the end still runs its post hook */
    struct hooks_run hooks = { .spec = &spec };
    bool hooked = hook_options_given(&hopt);
    if (hooked) {
        hook_options_apply(cmd, &hopt, &spec);
        if (!sfs_hooks_any(&spec))
            die_usage(cmd, "--hook-timeout and --on-hook-failure need --pre "
                           "or --post");
    }
    if (group) {
        if (n != 1)
            die_usage(cmd, "with --group VOL,VOL,... give one snapshot name");
        int grc = snapshot_create_group(cmd, group, args[0],
                                        hooked ? &spec : NULL);
        free(args);
        return grc;
    }
    if (n < 1)
        die_usage(cmd, "give the volume (a store or its mountpoint)");
    struct volume vol;
    volume_open(&vol, cmd, args[0]);
    struct names nm = { n - 1, args + 1 };
    char doing[SFS_NAME_MAX + 64];
    describe(sub, &nm, doing, sizeof(doing));
    struct listing ls = { 0 };
    bool create = !strcmp(sub, "create");
    if (!create) /* a create checks its one name alone (below) */
        get_listing(&vol, cmd, doing, &ls);
    int rc = 0;
    if (!strcmp(sub, "list")) {
        if (nm.n)
            die_usage(cmd, "takes only the volume");
        print_list(&ls, json);
    } else if (create) {
        if (nm.n != 1)
            die_usage(cmd, "give the volume and one snapshot name");
        char *cwords[2] = { nm.v[0], NULL };
        struct names cnm = { 1, cwords };
        if (hooked) {
            /* the hooks run only for a name that can be taken */
            snapshot_check_new_name(&vol, cmd, nm.v[0]);
            hooks_start(&hooks, cmd, vol.arg, nm.v[0]); /* dies if abandoned */
            cwords[1] = hooks.labels;
            cnm.n = 2;
        } else if (sfs_snap_name_valid(nm.v[0])) {
            check_new_name(&ls, cmd, vol.arg, nm.v[0]); /* says why */
        }
        /* the store refuses a taken name (EEXIST) in the create itself:
         * one request, one transaction */
        rc = run_change(&vol, cmd, "snapshot-create", offline_create, &cnm);
        if (rc == -EEXIST)
            die(cmd, "%s: a snapshot named '%s' already exists", vol.arg,
                nm.v[0]);
        if (!rc)
            printf("snapfs: created snapshot %s of %s%s%s\n", nm.v[0],
                   vol.arg, hooked ? ", " : "", hooked ? hooks.labels : "");
        if (!rc && hooked)
            hooks_finish(&hooks, cmd);
    } else if (!strcmp(sub, "delete")) {
        if (nm.n < 1)
            die_usage(cmd, "give the volume and one or more snapshot names");
        check_existing(&ls, cmd, vol.arg, nm.n, nm.v);
        check_not_held(&vol, &ls, cmd, nm.n, nm.v);
        rc = run_change(&vol, cmd, "snapshot-delete", offline_delete, &nm);
        for (int i = 0; !rc && i < nm.n; i++)
            printf("snapfs: deleted snapshot %s of %s\n", nm.v[i], vol.arg);
    } else if (!strcmp(sub, "hold") || !strcmp(sub, "release")) {
        bool hold = !strcmp(sub, "hold");
        if (nm.n != 2)
            die_usage(cmd, "give the volume, the snapshot and a tag");
        check_existing(&ls, cmd, vol.arg, 1, nm.v);
        rc = run_change(&vol, cmd, hold ? "snapshot-hold" : "snapshot-release",
                        hold ? offline_hold : offline_release, &nm);
        if (rc == -EEXIST)
            die(cmd, "%s: snapshot '%s' already has the hold '%s'", vol.arg,
                nm.v[0], nm.v[1]);
        if (rc == -ENODATA)
            die(cmd, "%s: snapshot '%s' has no hold '%s'", vol.arg, nm.v[0],
                nm.v[1]);
        if (rc == -EINVAL)
            die(cmd, "'%s' is not a valid hold tag (1 to 200 bytes, no tab "
                     "or newline)", nm.v[1]);
        if (!rc)
            printf("snapfs: %s '%s' on snapshot %s\n",
                   hold ? "placed hold" : "released hold", nm.v[1], nm.v[0]);
    } else if (!strcmp(sub, "holds")) {
        if (nm.n != 1)
            die_usage(cmd, "give the volume and one snapshot");
        check_existing(&ls, cmd, vol.arg, 1, nm.v);
        char *tags = holds_of(&vol, cmd, nm.v[0]);
        if (*tags)
            printf("%s\n", tags);
        free(tags);
    } else if (!strcmp(sub, "rename")) {
        if (nm.n != 2)
            die_usage(cmd, "give the volume, the old name and the new name");
        check_existing(&ls, cmd, vol.arg, 1, nm.v);
        check_new_name(&ls, cmd, vol.arg, nm.v[1]);
        rc = run_change(&vol, cmd, "snapshot-rename", offline_rename, &nm);
        if (!rc)
            printf("snapfs: renamed snapshot %s to %s\n", nm.v[0], nm.v[1]);
    } else {
        if (nm.n < 1)
            die_usage(cmd, "give the volume and one or more snapshot names");
        check_existing(&ls, cmd, vol.arg, nm.n, nm.v);
        struct reclaim_arg ra = { .nm = nm };
        if (vol.mounted) {
            char *words[nm.n + 1], *data = NULL;
            words[0] = "snapshot-reclaim";
            for (int i = 0; i < nm.n; i++)
                words[i + 1] = nm.v[i];
            rc = volume_request(&vol, words, nm.n + 1, &data);
            unsigned long long p = 0, l = 0;
            if (!rc && sscanf(data, "%llu %llu", &p, &l) != 2)
                rc = -EPROTO;
            ra.r.physical = p;
            ra.r.logical = l;
            free(data);
        } else {
            rc = volume_offline(&vol, cmd, offline_reclaim, &ra, false);
        }
        if (!rc && json) {
            printf("{\"physical_bytes\":%llu,\"logical_bytes\":%llu}\n",
                   (unsigned long long)ra.r.physical,
                   (unsigned long long)ra.r.logical);
        } else if (!rc) {
            char p[32], l[32];
            format_bytes(ra.r.physical, p, sizeof(p));
            format_bytes(ra.r.logical, l, sizeof(l));
            printf("deleting %d snapshot%s would free %s (%llu bytes) of "
                   "stored data, %s (%llu bytes) logical\n", nm.n,
                   nm.n == 1 ? "" : "s", p, (unsigned long long)ra.r.physical,
                   l, (unsigned long long)ra.r.logical);
        }
    }
    if (rc)
        die(cmd, "%s: %s: %s", vol.arg, doing, snapshot_error(rc));
    free(ls.lines);
    free(ls.labels);
    free(args);
    free(vol.store);
    free(vol.mountpoint);
    return 0;
}
