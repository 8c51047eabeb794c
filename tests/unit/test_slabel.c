/*
 * test_slabel.c - snapshot labels (store/slabel.c), the hooks of a policy
 * record (store/policy.c) and the space log (store/spacelog.c): label
 * lists are accepted and refused as documented; a labelled snapshot keeps
 * its labels across a rename, loses them with its deletion, and a refused
 * list takes no snapshot; fsck finds labels without their snapshot; the
 * hooks word round-trips any command and refuses malformed words; a policy
 * record written before hooks existed (its old, shorter size) reads as a
 * policy without hooks, and hooks set on a policy survive a modify; a
 * hooked policy is left to sfs_policy_run_one_w, which takes its snapshot
 * with the labels given, or abandons the slot; the space log takes one
 * sample an hour, none for a clock set back, and keeps the newest 336.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "check.h"
#include "testvol.h"

static void test_label_lists(void)
{
    const char *good[] = { "", "consistency=application",
                           "consistency=crash,pre-hook=exit-3",
                           "a=b,c.d_e-f=\"x\"" };
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
        CHECK(sfs_labels_valid(good[i]) == 0, "'%s' is a list", good[i]);
    char longval[80], longlist[300];
    memset(longval, 0, sizeof(longval));
    memcpy(longval, "k=", 2);
    memset(longval + 2, 'v', 65);
    memset(longlist, 0, sizeof(longlist));
    for (int i = 0; i < 30; i++)
        snprintf(longlist + strlen(longlist), sizeof(longlist) - strlen(longlist),
                 "%sk%d=vvvvv", i ? "," : "", i);
    const char *bad[] = { "x", "=v", "k=", "K=v", "k=v,", ",k=v", "k=v,k=w",
                          "k=a b", "k=a=b", "k=\t", longval, longlist,
                          "k234567890123456789012345678901234=v" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        CHECK(sfs_labels_valid(bad[i]) == -EINVAL, "'%s' is refused", bad[i]);
}

static void test_hooks_word(void)
{
    struct sfs_hookspec h = { .timeout = 30,
                              .on_failure = SFS_HOOK_CRASH_CONSISTENT }, back;
    snprintf(h.pre, sizeof(h.pre), "pg pre -h '/run/x y' -p 5432; echo \"$A\"");
    char word[SFS_HOOKS_WORD_MAX];
    sfs_hooks_format(&h, word, sizeof(word));
    CHECK(!strchr(word, '\t') && !strchr(word, ' '), "one word: %s", word);
    CHECK(sfs_hooks_parse(word, &back) == 0 && !strcmp(back.pre, h.pre) &&
          back.post[0] == 0 && back.timeout == 30 &&
          back.on_failure == SFS_HOOK_CRASH_CONSISTENT, "round trip %s", word);
    memset(h.post, 'x', SFS_HOOK_CMD_MAX);
    sfs_hooks_format(&h, word, sizeof(word));
    CHECK(sfs_hooks_parse(word, &back) == 0 && strlen(back.post) ==
          SFS_HOOK_CMD_MAX, "a command of the largest size");
    const char *bad[] = { "", "1:0", "1:0:6", "1:0:zz:", "1:2::", "x:0::",
                          "99999999:0::", "1:0:0a:" /* a newline */ };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        CHECK(sfs_hooks_parse(bad[i], &back) == -EINVAL, "'%s' refused",
              bad[i]);
}

static int in_txn(struct sfs_store *st,
                  int (*fn)(struct sfs_store *, MDB_txn *, void *), void *arg)
{
    MDB_txn *txn;
    CHECK_RC(sfs_txn_begin(st, NULL, true, &txn));
    int rc = fn(st, txn, arg);
    if (rc < 0)
        mdb_txn_abort(txn);
    else
        CHECK_RC(sfs_txn_commit(st, txn));
    return rc;
}

struct take {
    const char *name, *labels;
    struct sfs_snap_rec s;
};

static int do_take(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct take *t = arg;
    return sfs_snap_take_labelled_w(st, txn, t->name, NULL, t->labels, &t->s);
}

static int do_rename(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    return sfs_snap_rename_w(st, txn, "l1", "l2");
}

static int do_delete(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    return sfs_snap_delete_w(st, txn, *(uint64_t *)arg);
}

static void labels_at(struct sfs_store *st, uint64_t epoch, char *out)
{
    MDB_txn *txn;
    CHECK_RC(sfs_txn_begin(st, NULL, false, &txn));
    CHECK_RC(sfs_snap_labels_get(st, txn, epoch, out));
    mdb_txn_abort(txn);
}

static int do_stray(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    uint8_t k[7 + 8];
    memcpy(k, "slabel/", 7);
    sfs_put_be64(k + 7, 999);
    MDB_val key = { sizeof(k), k }, val = { 3, "a=b" };
    return mdb_put(txn, st->db_meta, &key, &val, 0) ? -EIO : 0;
}

static void report(void *arg, const char *problem)
{
    printf("(fsck, expected) %s\n", problem);
}

static void test_labelled_snapshots(void)
{
    char dir[256], got[SFS_LABELS_MAX + 1];
    struct sfs_store *st = testvol_create(dir, sizeof(dir), 0, SFS_CODEC_ZSTD);
    struct take bad = { .name = "l0", .labels = "consistency" },
                t = { .name = "l1", .labels = "consistency=crash,pre-hook=timeout" },
                plain = { .name = "p1" };
    CHECK(in_txn(st, do_take, &bad) == -EINVAL, "a bad list is refused");
    MDB_txn *txn;
    struct sfs_snap_rec none;
    CHECK_RC(sfs_txn_begin(st, NULL, false, &txn));
    CHECK(sfs_snap_find(st, txn, "l0", &none) == -ENOENT, "and took nothing");
    mdb_txn_abort(txn);
    CHECK(in_txn(st, do_take, &t) == 0, "take l1");
    CHECK(in_txn(st, do_take, &plain) == 0, "take p1");
    labels_at(st, t.s.epoch, got);
    CHECK(!strcmp(got, t.labels), "l1's labels: '%s'", got);
    labels_at(st, plain.s.epoch, got);
    CHECK(!strcmp(got, ""), "p1 has none: '%s'", got);
    CHECK(in_txn(st, do_rename, NULL) == 0, "rename l1 to l2");
    labels_at(st, t.s.epoch, got);
    CHECK(!strcmp(got, t.labels), "kept across the rename: '%s'", got);
    CHECK(sfs_fsck(st, report, NULL) == 0, "fsck clean");
    CHECK(in_txn(st, do_delete, &t.s.epoch) == 0, "delete l2");
    labels_at(st, t.s.epoch, got);
    CHECK(!strcmp(got, ""), "gone with the snapshot: '%s'", got);
    CHECK(in_txn(st, do_stray, NULL) == 0, "a stray label record");
    CHECK(sfs_fsck(st, report, NULL) == 1, "fsck finds it");
    testvol_remove(st, dir);
}

/* ---- policies with hooks ---- */

/* The size of a policy record before hooks were appended. */
#define OLD_POLICY_SIZE offsetof(struct sfs_policy, hooks)

static int do_old_record(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct sfs_policy p;
    memset(&p, 0, sizeof(p));
    snprintf(p.name, sizeof(p.name), "old");
    snprintf(p.prefix, sizeof(p.prefix), "old");
    CHECK_RC(sfs_schedule_parse("hourly", &p.sched));
    p.keep = 3;
    p.created = 1000;
    MDB_val k = { 10, "policy/old" }, v = { OLD_POLICY_SIZE, &p };
    return mdb_put(txn, st->db_meta, &k, &v, 0) ? -EIO : 0;
}

static int do_hooked(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct sfs_policy p;
    memset(&p, 0, sizeof(p));
    snprintf(p.name, sizeof(p.name), "app");
    snprintf(p.prefix, sizeof(p.prefix), "app");
    CHECK_RC(sfs_schedule_parse("hourly", &p.sched));
    p.keep = 2;
    p.created = 1000;
    snprintf(p.hooks.pre, sizeof(p.hooks.pre), "true");
    p.hooks.timeout = 5;
    return sfs_policy_create_w(st, txn, &p);
}

static int do_modify_old(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct sfs_policy p;
    int rc = sfs_policy_get(st, txn, "app", &p);
    p.keep = 4;
    return rc ? rc : sfs_policy_modify_w(st, txn, &p, 2000);
}

struct run {
    int64_t now;
    const char *name, *labels;
    bool abandon;
    int events[8], n;
};

static int note(void *arg, int event, const char *policy, const char *snap)
{
    struct run *r = arg;
    if (r->n < 8)
        r->events[r->n++] = event;
    return 0;
}

static int do_run_due(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct run *r = arg;
    return sfs_policy_run_due_w(st, txn, r->now, note, r);
}

static int do_run_one(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct run *r = arg;
    return sfs_policy_run_one_w(st, txn, r->name, r->now, r->labels,
                                r->abandon, note, r);
}

static void test_policy_hooks(void)
{
    char dir[256], got[SFS_LABELS_MAX + 1], name[SFS_NAME_MAX + 1];
    struct sfs_store *st = testvol_create(dir, sizeof(dir), 0, SFS_CODEC_ZSTD);
    CHECK(in_txn(st, do_old_record, NULL) == 0, "an old policy record");
    CHECK(in_txn(st, do_hooked, NULL) == 0, "a policy with hooks");
    MDB_txn *txn;
    struct sfs_policy old, app;
    CHECK_RC(sfs_txn_begin(st, NULL, false, &txn));
    CHECK_RC(sfs_policy_get(st, txn, "old", &old));
    CHECK_RC(sfs_policy_get(st, txn, "app", &app));
    mdb_txn_abort(txn);
    CHECK(old.keep == 3 && !sfs_hooks_any(&old.hooks) && old.hooks.timeout == 0,
          "the old record reads without hooks");
    CHECK(!strcmp(app.hooks.pre, "true") && app.hooks.timeout == 5,
          "the hooks are kept");
    CHECK(in_txn(st, do_modify_old, NULL) == 0, "modify app's keep");
    CHECK_RC(sfs_txn_begin(st, NULL, false, &txn));
    CHECK_RC(sfs_policy_get(st, txn, "app", &app));
    mdb_txn_abort(txn);
    CHECK(app.keep == 4 && !strcmp(app.hooks.pre, "true"),
          "a modify keeps the hooks");

    int64_t now = 1000 + 2 * 3600;
    struct run due = { .now = now };
    CHECK(in_txn(st, do_run_due, &due) == 1 && due.n == 1 &&
          due.events[0] == SFS_POLICY_CREATED,
          "run_due runs the old policy only (%d events)", due.n);
    struct run one = { .now = now, .name = "app",
                       .labels = "consistency=application" };
    CHECK(in_txn(st, do_run_one, &one) == 1 && one.n == 1 &&
          one.events[0] == SFS_POLICY_CREATED, "run_one takes app's snapshot");
    sfs_policy_snap_name(&app, sfs_schedule_prev(&app.sched, now), name,
                         sizeof(name));
    struct sfs_snap_rec s;
    CHECK_RC(sfs_txn_begin(st, NULL, false, &txn));
    CHECK_RC(sfs_snap_find(st, txn, name, &s));
    mdb_txn_abort(txn);
    labels_at(st, s.epoch, got);
    CHECK(!strcmp(got, "consistency=application"), "labelled: '%s'", got);
    struct run again = one;
    again.n = 0;
    CHECK(in_txn(st, do_run_one, &again) == 0 && again.n == 0,
          "not due twice for a slot");
    struct run abandon = { .now = now + 3600, .name = "app", .abandon = true };
    CHECK(in_txn(st, do_run_one, &abandon) == 1 && abandon.n == 1 &&
          abandon.events[0] == SFS_POLICY_ABANDONED, "an abandoned slot");
    sfs_policy_snap_name(&app, sfs_schedule_prev(&app.sched, now + 3600), name,
                         sizeof(name));
    CHECK_RC(sfs_txn_begin(st, NULL, false, &txn));
    CHECK(sfs_snap_find(st, txn, name, &s) == -ENOENT, "took nothing");
    mdb_txn_abort(txn);
    abandon.n = 0;
    CHECK(in_txn(st, do_run_one, &abandon) == 0 && abandon.n == 0,
          "and counts as run");
    testvol_remove(st, dir);
}

/* ---- the space log ---- */

static int do_sample(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    return sfs_spacelog_record_w(st, txn, *(int64_t *)arg);
}

static int count_sample(void *arg, const struct sfs_space_sample *s)
{
    int64_t *c = arg;
    CHECK(s->size > 0 && s->used + s->avail <= s->size, "a sample's figures");
    c[0]++;
    c[1] = s->when;
    if (!c[2])
        c[2] = s->when;
    return 0;
}

static void samples(struct sfs_store *st, int64_t *count, int64_t *newest,
                    int64_t *oldest)
{
    int64_t c[3] = { 0, 0, 0 };
    MDB_txn *txn;
    CHECK_RC(sfs_txn_begin(st, NULL, false, &txn));
    CHECK_RC(sfs_spacelog_foreach(st, txn, count_sample, c));
    mdb_txn_abort(txn);
    *count = c[0];
    *newest = c[1];
    *oldest = c[2];
}

static void test_spacelog(void)
{
    char dir[256];
    struct sfs_store *st = testvol_create(dir, sizeof(dir), 0, SFS_CODEC_ZSTD);
    int64_t t = 1800000000, n, newest, oldest;
    CHECK(in_txn(st, do_sample, &t) == 1, "the first sample");
    int64_t soon = t + 1800, back = t - 7200;
    CHECK(in_txn(st, do_sample, &soon) == 0, "none half an hour later");
    CHECK(in_txn(st, do_sample, &back) == 0, "none for a clock set back");
    for (int i = 1; i <= SFS_SPACELOG_KEEP + 5; i++) {
        int64_t when = t + (int64_t)i * SFS_SPACELOG_INTERVAL;
        CHECK(in_txn(st, do_sample, &when) == 1, "sample %d", i);
    }
    samples(st, &n, &newest, &oldest);
    CHECK(n == SFS_SPACELOG_KEEP, "%lld samples kept", (long long)n);
    CHECK(newest == t + (SFS_SPACELOG_KEEP + 5) * (int64_t)SFS_SPACELOG_INTERVAL &&
          oldest == newest - (SFS_SPACELOG_KEEP - 1) * (int64_t)SFS_SPACELOG_INTERVAL,
          "the newest kept, oldest first");
    testvol_remove(st, dir);
}

int main(void)
{
    test_label_lists();
    test_hooks_word();
    test_labelled_snapshots();
    test_policy_hooks();
    test_spacelog();
    return test_done("test_slabel");
}
