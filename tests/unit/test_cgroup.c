/*
 * test_cgroup.c - consistency-group records (store/cgroup.c): the UUID and
 * group words round-trip and refuse malformed text; a group snapshot is
 * refused for a group without this volume, with a member twice or none;
 * its record is listed (and survives the control socket's line format),
 * kept across a rename and a reclaim estimate, and deleted with the
 * snapshot; a plain snapshot has none; fsck finds a record without its
 * snapshot.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "check.h"
#include "testvol.h"

static void test_words(void)
{
    uint8_t u[16], back[16];
    for (int i = 0; i < 16; i++)
        u[i] = (uint8_t)(i * 17 + 3);
    char text[SFS_UUID_TEXT];
    sfs_uuid_format(u, text);
    CHECK(!strcmp(text, "03142536-4758-697a-8b9c-adbecfe0f102"), "uuid %s",
          text);
    CHECK(sfs_uuid_parse(text, back) == 0 && !memcmp(u, back, 16),
          "uuid round trip");
    const char *bad_uuids[] = { "", "03142536", "03142536-4758-697a-8b9c-adbecfe0f10",
                                "03142536-4758-697a-8b9c-adbecfe0f1022",
                                "0314253647-58-697a-8b9c-adbecfe0f102",
                                "03142536-4758-697A-8b9c-adbecfe0f102",
                                "03142536-4758-697a-8b9c-adbecfe0f1 2" };
    for (size_t i = 0; i < sizeof(bad_uuids) / sizeof(*bad_uuids); i++)
        CHECK(sfs_uuid_parse(bad_uuids[i], back) == -EINVAL, "uuid '%s'",
              bad_uuids[i]);

    struct sfs_cgroup g = { .created_sec = 1795360766, .count = 3 }, p;
    for (uint32_t m = 0; m < g.count; m++)
        for (int i = 0; i < 16; i++)
            g.members[m][i] = (uint8_t)(m * 31 + i);
    char *word = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&word, &len);
    sfs_cgroup_format(&g, f);
    fclose(f);
    CHECK(sfs_cgroup_parse(word, &p) == 0 && p.count == 3 &&
          p.created_sec == g.created_sec &&
          !memcmp(p.members, g.members, 3 * 16), "group round trip: %s", word);
    CHECK(sfs_cgroup_parse("-", &p) == 0 && p.count == 0, "no group");
    const char *bad[] = { "", "x", "12", "12:", "12:zz", "-1x:" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        CHECK(sfs_cgroup_parse(bad[i], &p) == -EINVAL, "group '%s'", bad[i]);
    char *trailing = NULL;
    CHECK(asprintf(&trailing, "%s,", word) > 0 &&
          sfs_cgroup_parse(trailing, &p) == -EINVAL, "a trailing comma");
    free(trailing);
    free(word);
}

/* One change to the store in its own transaction: its result. */
static int in_txn(struct sfs_store *st, int (*fn)(struct sfs_store *,
                                                 MDB_txn *, void *),
                  void *arg)
{
    MDB_txn *txn;
    CHECK_RC(sfs_txn_begin(st, NULL, true, &txn));
    int rc = fn(st, txn, arg);
    if (rc)
        mdb_txn_abort(txn);
    else
        CHECK_RC(sfs_txn_commit(st, txn));
    return rc;
}

struct take {
    const char *name;
    struct sfs_cgroup g;
    struct sfs_snap_rec s;
};

static int do_take(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct take *t = arg;
    return sfs_cgroup_take_w(st, txn, t->name, &t->g, &t->s);
}

static int do_plain(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    return sfs_snap_take_w(st, txn, arg, NULL);
}

static int do_rename(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    return sfs_snap_rename_w(st, txn, "g1", arg);
}

static int do_delete(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    return sfs_snap_delete_w(st, txn, *(uint64_t *)arg);
}

/* The listing, as the control socket sends it and the tool reads it. */
struct seen {
    char name[SFS_NAME_MAX + 1];
    struct sfs_cgroup g;
    int n;
};

static int see_line(void *arg, const struct sfs_snap_line *l)
{
    struct seen *s = arg;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    sfs_snap_line_format(l, f);
    fclose(f);
    struct sfs_snap_line back;
    CHECK(sfs_snap_line_parse(text, &back) == 0, "parse '%s'", text);
    CHECK(!strcmp(back.rec.name, l->rec.name) &&
          back.group.count == l->group.count &&
          !memcmp(&back.group, &l->group, sizeof(l->group)),
          "line round trip '%s'", text);
    if (!strcmp(l->rec.name, s->name)) {
        s->g = back.group;
        s->n++;
    }
    free(text);
    return 0;
}

static int do_list(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    return sfs_snap_list(st, txn, see_line, arg);
}

static struct sfs_cgroup listed(struct sfs_store *st, const char *name)
{
    struct seen s = { .n = 0 };
    snprintf(s.name, sizeof(s.name), "%s", name);
    CHECK(in_txn(st, do_list, &s) == 0, "list");
    CHECK(s.n == 1, "%s listed %d times", name, s.n);
    return s.g;
}

static int do_get(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct take *t = arg;
    return sfs_cgroup_get(st, txn, t->s.epoch, &t->g);
}

static int do_reclaim(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct sfs_reclaim r;
    return sfs_snap_reclaim(st, txn, arg, 1, &r);
}

/* A group record of a snapshot that does not exist (epoch 999), which
 * fsck must report. */
static int do_stray(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    uint8_t k[7 + 8], v[16 + 16] = { 0 };
    memcpy(k, "cgroup/", 7);
    sfs_put_be64(k + 7, 999);
    v[15] = 1;
    MDB_val key = { sizeof(k), k }, val = { sizeof(v), v };
    return mdb_put(txn, st->db_meta, &key, &val, 0) ? -EIO : 0;
}

static void report(void *arg, const char *problem)
{
    printf("(fsck, expected) %s\n", problem);
}

static void test_records(void)
{
    char dir[256];
    struct sfs_store *st = testvol_create(dir, sizeof(dir), 0, SFS_CODEC_ZSTD);
    struct take t = { .name = "g1", .g = { .created_sec = 42, .count = 2 } };
    memset(t.g.members[0], 0xab, 16);
    memcpy(t.g.members[1], st->super.uuid, 16);
    struct take without = t, twice = t, empty = t;
    without.g.count = 1;
    memcpy(twice.g.members[0], st->super.uuid, 16);
    empty.g.count = 0;
    CHECK(in_txn(st, do_take, &without) == -EINVAL, "a group without us");
    CHECK(in_txn(st, do_take, &twice) == -EINVAL, "a member twice");
    CHECK(in_txn(st, do_take, &empty) == -EINVAL, "no members");
    struct sfs_snap_rec none;
    MDB_txn *rtxn;
    CHECK_RC(sfs_txn_begin(st, NULL, false, &rtxn));
    CHECK(sfs_snap_find(st, rtxn, "g1", &none) == -ENOENT,
          "a refused group took no snapshot");
    mdb_txn_abort(rtxn);

    CHECK(in_txn(st, do_take, &t) == 0, "take g1");
    CHECK(in_txn(st, do_plain, "plain") == 0, "take plain");
    struct sfs_cgroup g = listed(st, "g1");
    CHECK(g.count == 2 && g.created_sec == 42 &&
          !memcmp(g.members, t.g.members, 32), "g1 listed with its group");
    CHECK(listed(st, "plain").count == 0, "plain has no group");
    CHECK(in_txn(st, do_reclaim, &t.s.epoch) == 0, "reclaim estimate");
    CHECK(in_txn(st, do_rename, "g1-renamed") == 0, "rename");
    g = listed(st, "g1-renamed");
    CHECK(g.count == 2 && !memcmp(g.members, t.g.members, 32),
          "the group stays through a reclaim estimate and a rename");
    CHECK(in_txn(st, do_delete, &t.s.epoch) == 0, "delete");
    CHECK(in_txn(st, do_get, &t) == -ENOENT, "the record went with it");
    int problems = sfs_fsck(st, report, NULL);
    CHECK(problems == 0, "fsck: %d problems", problems);
    CHECK(in_txn(st, do_stray, NULL) == 0, "a stray record");
    problems = sfs_fsck(st, report, NULL);
    CHECK(problems == 1, "fsck finds the stray group record: %d", problems);
    testvol_remove(st, dir);
}

int main(void)
{
    test_words();
    test_records();
    return test_done("test_cgroup");
}
