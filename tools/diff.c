/*
 * diff.c - `snapfs snapshot diff VOL A [B] [--json] [--stats]`: the paths
 * created, deleted, modified and renamed between snapshot A and snapshot
 * B, or the live volume when B is omitted.
 *
 * Output, like zfs diff: one line per change, sorted by path,
 *   +<tab>/path   -<tab>/path   M<tab>/path   R<tab>/old -> /new
 * with space, tab, newline, backslash and non-printable bytes of names as
 * \ooo (octal), so every line splits on whitespace.  --json prints an
 * array of {"change","path"[,"new_path"]} with the same escaped paths.
 * --stats tells on stderr how many records the diff read.
 *
 * On a mounted volume the daemon computes it (after storing its write
 * cache, so the live view holds every acknowledged write); on an unmounted
 * one the store is opened and nothing is changed.  The names are checked
 * first: an unknown snapshot, a snapshot given twice, or A newer than B is
 * refused with a message naming the problem.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store.h"

/* ---- snapshot names to epochs ---- */

struct find_req {
    const char *name;
    uint64_t epoch;
};

static int offline_find(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct find_req *fr = arg;
    struct sfs_snap_rec s;
    int rc = sfs_snap_find(st, txn, fr->name, &s);
    if (!rc)
        fr->epoch = s.epoch;
    return rc;
}

static int find_epoch(struct volume *vol, const char *cmd, const char *name,
                      uint64_t *epoch)
{
    struct find_req fr = { name, 0 };
    int rc;
    if (vol->mounted) {
        char *words[] = { "snapshot-find", (char *)name }, *data = NULL;
        unsigned long long e = 0;
        rc = volume_request(vol, words, 2, &data);
        if (!rc && sscanf(data, "%llu", &e) != 1)
            rc = -EPROTO;
        fr.epoch = e;
        free(data);
    } else {
        rc = volume_offline(vol, cmd, offline_find, &fr, false);
    }
    *epoch = fr.epoch;
    return rc;
}

/* ---- the diff, as lines ---- */

struct diff_req {
    uint64_t a, b;
    FILE *out;
};

static int offline_diff(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct diff_req *dr = arg;
    return sfs_diff_write(st, txn, dr->a, dr->b, dr->out);
}

/* The lines of sfs_diff_write into *DATA (malloc'd). */
static int diff_lines(struct volume *vol, const char *cmd, char **names,
                      int n, uint64_t a, uint64_t b, char **data)
{
    if (vol->mounted) {
        char *words[3] = { "snapshot-diff", names[0], n > 1 ? names[1] : NULL };
        return volume_request(vol, words, n + 1, data);
    }
    size_t len = 0;
    struct diff_req dr = { a, b, open_memstream(data, &len) };
    if (!dr.out)
        return -ENOMEM;
    int rc = volume_offline(vol, cmd, offline_diff, &dr, false);
    fclose(dr.out);
    return rc;
}

/* ---- printing ---- */

/* A change line "C<tab>PATH[ -> NEW]" as a JSON object. */
static void print_json_change(char *line, bool first)
{
    char *path = line + 2, *arrow = NULL;
    if (line[0] == 'R' && (arrow = strstr(path, " -> ")))
        *arrow = 0;
    printf("%s{\"change\":\"%c\",\"path\":", first ? "" : ",", line[0]);
    print_json_string(path);
    if (arrow) {
        printf(",\"new_path\":");
        print_json_string(arrow + 4);
    }
    putchar('}');
}

int diff_print_changes(char *data, bool json, struct sfs_diff_stats *stats)
{
    int rc = -EPROTO, count = 0;
    if (json)
        putchar('[');
    for (char *save = NULL, *line = strtok_r(data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "examined\t", 9)) {
            rc = sfs_diff_stats_parse(line, stats);
            continue;
        }
        if (strlen(line) < 3 || line[1] != '\t' || !strchr("+-MR", line[0]))
            return -EPROTO;
        if (json)
            print_json_change(line, count == 0);
        else
            puts(line);
        count++;
    }
    if (json)
        puts("]");
    return rc;
}

static const char *diff_error(int rc)
{
    switch (rc) {
    case -EACCES:
        return "permission denied (only root or the volume's owner may "
               "manage snapshots)";
    case -ENOENT: return "no such snapshot (it was removed meanwhile)";
    default: return strerror(-rc);
    }
}

/* argv: "diff" VOL A [B] and options. */
int cmd_snapshot_diff(int argc, char **argv)
{
    const char *cmd = "snapshot diff";
    bool json = false, want_stats = false;
    char *args[3];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--stats"))
            want_stats = true;
        else if (argv[i][0] == '-' && argv[i][1])
            die_usage(cmd, "unknown option '%s'", argv[i]);
        else if (n == 3)
            die_usage(cmd, "give the volume, snapshot A and at most one "
                           "snapshot B");
        else
            args[n++] = argv[i];
    }
    if (n < 2)
        die_usage(cmd, "give the volume and a snapshot (and a later snapshot, "
                       "or none for the live volume)");
    struct volume vol;
    volume_open(&vol, cmd, args[0]);
    char **names = args + 1;
    int nn = n - 1;
    if (nn == 2 && !strcmp(names[0], names[1]))
        die(cmd, "%s: snapshot '%s' is given twice; give two different "
                 "snapshots, or one to compare with the live volume",
            vol.arg, names[0]);
    uint64_t epochs[2] = { 0, SFS_VIEW_LIVE };
    for (int i = 0; i < nn; i++) {
        int rc = find_epoch(&vol, cmd, names[i], &epochs[i]);
        if (rc == -ENOENT)
            die(cmd, "%s: no snapshot named '%s'", vol.arg, names[i]);
        if (rc)
            die(cmd, "%s: %s", vol.arg, diff_error(rc));
    }
    if (epochs[0] > epochs[1])
        die(cmd, "%s: snapshot '%s' is newer than '%s'; give the older one "
                 "first: snapfs snapshot diff %s %s %s", vol.arg, names[0],
            names[1], vol.arg, names[1], names[0]);
    char *data = NULL;
    struct sfs_diff_stats stats;
    int rc = diff_lines(&vol, cmd, names, nn, epochs[0], epochs[1], &data);
    if (!rc)
        rc = diff_print_changes(data, json, &stats);
    free(data);
    if (rc)
        die(cmd, "%s: %s", vol.arg, diff_error(rc));
    if (want_stats)
        fprintf(stderr, "snapfs %s: examined %llu records (%llu index rows, "
                        "%llu directory entries; %llu keys compared)\n", cmd,
                (unsigned long long)(stats.index_rows + stats.entries),
                (unsigned long long)stats.index_rows,
                (unsigned long long)stats.entries,
                (unsigned long long)stats.keys);
    free(vol.store);
    free(vol.mountpoint);
    return 0;
}
