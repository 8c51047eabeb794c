/*
 * qtree.c - `snapfs qtree create|list|modify|delete`: qtrees, directories
 * at the volume root whose space is limited by a quota (see
 * store/qtree.c for what a qtree is on disk).
 *
 * A mounted volume is changed through its control socket, an unmounted
 * one in one write transaction of its store.  Every argument is checked,
 * and the name against the volume's entries, before anything changes: a
 * refused command prints one message naming what is wrong and why, exits
 * 1 (2 for a malformed command line), and leaves the volume as it was.
 * `delete` removes only an empty qtree (NetApp removes the contents too;
 * here a forgotten `rm -rf` costs nothing, and snapshots keep the rest).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store.h"

#define NAME_HELP                                                           \
    "1 to 255 bytes, no '/' or control characters, not '.', '..' or "      \
    "'.snapshot'"

struct qtree_args {
    const char *pos[2];
    int npos;
    const char *style, *quota;
    bool json;
};

static void parse_args(const char *cmd, int argc, char **argv,
                       struct qtree_args *a)
{
    memset(a, 0, sizeof(*a));
    for (int i = 2; i < argc; i++) {
        const char *v;
        if ((v = option_value(cmd, "--security-style", argc, argv, &i)))
            a->style = v;
        else if ((v = option_value(cmd, "--quota", argc, argv, &i)))
            a->quota = v;
        else if (!strcmp(argv[i], "--json"))
            a->json = true;
        else if (argv[i][0] == '-' && argv[i][1])
            die_usage(cmd, "unknown option '%s'", argv[i]);
        else if (a->npos < 2)
            a->pos[a->npos++] = argv[i];
        else
            die_usage(cmd, "too many arguments ('%s')", argv[i]);
    }
}

/* The style and quota the options ask for, into INFO (unset ones stay). */
static void build_info(const char *cmd, const struct qtree_args *a,
                       struct sfs_qtree_info *info)
{
    if (a->style && sfs_qtree_style_parse(a->style, &info->style))
        die(cmd, "--security-style '%s': give unix, ntfs or mixed", a->style);
    if (!a->quota)
        return;
    uint64_t q = 0;
    if (strcmp(a->quota, "none") &&
        (!isdigit((unsigned char)a->quota[0]) || parse_size(a->quota, &q)))
        die(cmd, "--quota '%s': give a size such as 500M, 10G or 1T, or none",
            a->quota);
    info->quota_bytes = q;
}

static const char *change_error(int rc)
{
    switch (rc) {
    case -EACCES:
        return "permission denied (only root or the volume's owner may "
               "manage qtrees)";
    case -ENOSPC: return "the volume is full";
    case -ENOTEMPTY:
        return "the qtree is not empty: remove its contents first";
    case -EEXIST:
        return "the name exists already at the volume root (not a qtree)";
    case -ENOENT: return "no such qtree (it was removed meanwhile)";
    default: return strerror(-rc);
    }
}

/* ---- the listing ---- */

struct qlisting {
    struct sfs_qtree_info *q;
    size_t n, cap;
};

static int qlisting_add(void *arg, const struct sfs_qtree_info *q)
{
    struct qlisting *ls = arg;
    return array_append(&ls->q, &ls->n, &ls->cap, q, sizeof(*q));
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct sfs_qtree_info *)a)->name,
                  ((const struct sfs_qtree_info *)b)->name);
}

/* What an offline command works on. */
struct offline {
    const char *name;
    struct sfs_qtree_info info;
    struct qlisting *ls;
};

static int offline_list(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct offline *o = arg;
    return sfs_qtree_list(st, txn, SFS_VIEW_LIVE, qlisting_add, o->ls);
}

/* The qtrees of VOL, sorted by name. */
static void get_qtrees(struct volume *vol, const char *cmd,
                       struct qlisting *ls)
{
    memset(ls, 0, sizeof(*ls));
    struct offline o = { .ls = ls };
    int rc;
    if (vol->mounted) {
        char *words[] = { "qtree-list" }, *data = NULL;
        rc = volume_request(vol, words, 1, &data);
        for (char *save = NULL, *line = data ? strtok_r(data, "\n", &save) : NULL;
             !rc && line; line = strtok_r(NULL, "\n", &save)) {
            struct sfs_qtree_info q;
            rc = sfs_qtree_line_parse(line, &q);
            if (rc)
                rc = -EPROTO;
            if (!rc)
                rc = qlisting_add(ls, &q);
        }
        free(data);
    } else {
        rc = volume_offline(vol, cmd, offline_list, &o, false);
    }
    if (rc)
        die(cmd, "%s: listing qtrees: %s", vol->arg, change_error(rc));
    if (ls->n)
        qsort(ls->q, ls->n, sizeof(*ls->q), by_name);
}

static const struct sfs_qtree_info *find(const struct qlisting *ls,
                                         const char *name)
{
    for (size_t i = 0; i < ls->n; i++)
        if (!strcmp(ls->q[i].name, name))
            return &ls->q[i];
    return NULL;
}

static void print_json(const struct qlisting *ls)
{
    printf("[");
    for (size_t i = 0; i < ls->n; i++) {
        const struct sfs_qtree_info *q = &ls->q[i];
        printf("%s{\"name\":", i ? "," : "");
        print_json_string(q->name);
        printf(",\"id\":%" PRIu64 ",\"security_style\":\"%s\",\"quota_bytes\":"
               "%" PRIu64 ",\"used_bytes\":%" PRIu64 "}", q->ino,
               sfs_qtree_style_name(q->style), q->quota_bytes, q->used_bytes);
    }
    printf("]\n");
}

static void print_table(const struct qlisting *ls)
{
    printf("%-24s %-6s %12s %12s %16s\n", "NAME", "STYLE", "QUOTA", "USED",
           "USED BYTES");
    for (size_t i = 0; i < ls->n; i++) {
        const struct sfs_qtree_info *q = &ls->q[i];
        char quota[32], used[32];
        if (q->quota_bytes)
            format_bytes(q->quota_bytes, quota, sizeof(quota));
        else
            snprintf(quota, sizeof(quota), "none");
        format_bytes(q->used_bytes, used, sizeof(used));
        printf("%-24s %-6s %12s %12s %16" PRIu64 "\n", q->name,
               sfs_qtree_style_name(q->style), quota, used, q->used_bytes);
    }
}

/* ---- the changes ---- */

static int offline_create(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct offline *o = arg;
    return sfs_qtree_create_w(st, txn, o->name, &o->info, NULL);
}

static int offline_modify(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct offline *o = arg;
    struct sfs_qtree_info q;
    int rc = sfs_qtree_find(st, txn, SFS_VIEW_LIVE, o->name, &q);
    return rc ? rc : sfs_qtree_modify_w(st, txn, q.ino, &o->info);
}

static int offline_delete(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    return sfs_qtree_delete_w(st, txn, ((struct offline *)arg)->name, NULL);
}

/* Run the change: the control request WORD NAME [STYLE QUOTA], or FN. */
static void run_change(struct volume *vol, const char *cmd, const char *word,
                       struct offline *o,
                       int (*fn)(struct sfs_store *, MDB_txn *, void *))
{
    int rc;
    if (vol->mounted) {
        char quota[24], *data = NULL;
        snprintf(quota, sizeof(quota), "%" PRIu64, o->info.quota_bytes);
        char *words[] = { (char *)word, (char *)o->name,
                          (char *)sfs_qtree_style_name(o->info.style), quota };
        rc = volume_request(vol, words, strcmp(word, "qtree-delete") ? 4 : 2,
                            &data);
        free(data);
    } else {
        rc = volume_offline(vol, cmd, fn, o, true);
    }
    if (rc)
        die(cmd, "%s: qtree '%s': %s", vol->arg, o->name, change_error(rc));
}

static void describe(const struct sfs_qtree_info *info, char *out, size_t cap)
{
    char quota[32];
    if (info->quota_bytes)
        format_bytes(info->quota_bytes, quota, sizeof(quota));
    snprintf(out, cap, "security style %s, %s%s",
             sfs_qtree_style_name(info->style),
             info->quota_bytes ? "quota " : "no quota",
             info->quota_bytes ? quota : "");
}

int cmd_qtree(int argc, char **argv)
{
    if (argc < 2)
        die_usage("qtree", "give create, list, modify or delete");
    const char *sub = argv[1];
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "qtree %s", sub);
    int want = 2;
    const char *allowed = "";
    if (!strcmp(sub, "create"))
        allowed = "sq";
    else if (!strcmp(sub, "modify"))
        allowed = "sq";
    else if (!strcmp(sub, "list"))
        want = 1, allowed = "j";
    else if (strcmp(sub, "delete"))
        die_usage("qtree", "unknown subcommand '%s'", sub);
    struct qtree_args a;
    parse_args(cmd, argc, argv, &a);
    if ((a.style && !strchr(allowed, 's')) ||
        (a.quota && !strchr(allowed, 'q')) || (a.json && !strchr(allowed, 'j')))
        die_usage(cmd, "%s does not apply here",
                  a.style && !strchr(allowed, 's') ? "--security-style"
                  : a.quota && !strchr(allowed, 'q') ? "--quota" : "--json");
    if (a.npos != want)
        die_usage(cmd, want == 2 ? "give the volume and the qtree name"
                                 : "give the volume (a store or its mountpoint)");
    if (!strcmp(sub, "modify") && !a.style && !a.quota)
        die_usage(cmd, "give --quota or --security-style");
    /* Bad input is refused before the volume is touched. */
    struct offline o = { .name = a.pos[1] };
    if (want == 2 && sfs_qtree_name_valid(o.name))
        die(cmd, "'%s' is not a valid qtree name (" NAME_HELP ")", o.name);
    build_info(cmd, &a, &o.info);

    struct volume vol;
    volume_open(&vol, cmd, a.pos[0]);
    struct qlisting ls;
    get_qtrees(&vol, cmd, &ls);
    const struct sfs_qtree_info *q = o.name ? find(&ls, o.name) : NULL;
    char what[96];
    if (!strcmp(sub, "list")) {
        if (a.json)
            print_json(&ls);
        else
            print_table(&ls);
    } else if (!strcmp(sub, "create")) {
        if (q)
            die(cmd, "%s: a qtree named '%s' exists already", vol.arg, o.name);
        run_change(&vol, cmd, "qtree-create", &o, offline_create);
        describe(&o.info, what, sizeof(what));
        printf("snapfs: created qtree %s of %s: %s\n", o.name, vol.arg, what);
    } else if (!q) {
        die(cmd, "%s: no qtree named '%s'", vol.arg, o.name);
    } else if (!strcmp(sub, "modify")) {
        struct sfs_qtree_info next = *q;
        if (a.style)
            next.style = o.info.style;
        if (a.quota)
            next.quota_bytes = o.info.quota_bytes;
        o.info = next;
        run_change(&vol, cmd, "qtree-modify", &o, offline_modify);
        describe(&o.info, what, sizeof(what));
        printf("snapfs: qtree %s of %s: %s\n", o.name, vol.arg, what);
    } else {
        run_change(&vol, cmd, "qtree-delete", &o, offline_delete);
        printf("snapfs: deleted qtree %s of %s\n", o.name, vol.arg);
    }
    free(ls.q);
    free(vol.store);
    free(vol.mountpoint);
    return 0;
}
