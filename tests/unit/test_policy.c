/*
 * test_policy.c - snapshot policies: the schedule arithmetic on concrete
 * dates (month and year ends, leap years, weeks, every:N alignment), the
 * schedule syntax, and runs on a scratch volume: a snapshot per slot named
 * after it, one snapshot on catch-up, idempotent runs, retention by the
 * time in the names, held snapshots kept and reported, foreign names left
 * alone.  Runs with TZ=UTC.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "testvol.h"

/* "YYYY-MM-DD HH:MM[:SS]" in UTC, as seconds since the epoch. */
static int64_t T(const char *text)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(text, "%Y-%m-%d %H:%M", &tm);
    if (end && *end == ':')
        end = strptime(end + 1, "%S", &tm);
    if (!end || *end) {
        fprintf(stderr, "bad time in test: %s\n", text);
        exit(1);
    }
    return (int64_t)timegm(&tm);
}

static const char *show(int64_t t)
{
    static char buf[4][32];
    static int i;
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    i = (i + 1) % 4;
    strftime(buf[i], sizeof(buf[i]), "%Y-%m-%d %H:%M:%S", &tm);
    return buf[i];
}

/* At NOW, schedule TEXT's latest slot is PREV and its next one NEXT. */
static void check_slots(const char *text, const char *now, const char *prev,
                        const char *next)
{
    struct sfs_schedule s;
    int rc = sfs_schedule_parse(text, &s);
    CHECK(rc == 0, "parse %s: %d", text, rc);
    if (rc)
        return;
    int64_t p = sfs_schedule_prev(&s, T(now)), n = sfs_schedule_next(&s, T(now));
    CHECK(p == T(prev), "%s at %s: prev %s, want %s", text, now, show(p), prev);
    CHECK(n == T(next), "%s at %s: next %s, want %s", text, now, show(n), next);
}

static void test_arithmetic(void)
{
    /* daily: before, at and after the slot; year end */
    check_slots("daily@00:10", "2031-01-01 00:05", "2030-12-31 00:10",
                "2031-01-01 00:10");
    check_slots("daily@00:10", "2031-01-01 00:10", "2031-01-01 00:10",
                "2031-01-02 00:10");
    check_slots("daily@23:59", "2030-12-31 23:59:30", "2030-12-31 23:59",
                "2031-01-01 23:59");
    check_slots("daily", "2031-03-01 00:00", "2031-03-01 00:00",
                "2031-03-02 00:00");
    /* hourly */
    check_slots("hourly@30", "2031-01-01 10:15", "2031-01-01 09:30",
                "2031-01-01 10:30");
    check_slots("hourly", "2031-01-01 00:00:01", "2031-01-01 00:00",
                "2031-01-01 01:00");
    check_slots("hourly@45", "2031-01-01 00:10", "2030-12-31 23:45",
                "2031-01-01 00:45");
    /* every:N: aligned to the minutes of the day, restarting at midnight */
    check_slots("every:15", "2031-01-01 10:07:30", "2031-01-01 10:00",
                "2031-01-01 10:15");
    check_slots("every:15", "2031-01-01 23:50", "2031-01-01 23:45",
                "2031-01-02 00:00");
    check_slots("every:7", "2031-01-01 23:58", "2031-01-01 23:55",
                "2031-01-02 00:00");
    check_slots("every:90", "2031-01-01 23:00", "2031-01-01 22:30",
                "2031-01-02 00:00");
    check_slots("every:1", "2031-01-01 10:07:59", "2031-01-01 10:07",
                "2031-01-01 10:08");
    check_slots("every:1440", "2031-06-15 12:00", "2031-06-15 00:00",
                "2031-06-16 00:00");
    /* weekly: 2031-01-01 is a Wednesday */
    check_slots("weekly@mon@09:00", "2031-01-01 12:00", "2030-12-30 09:00",
                "2031-01-06 09:00");
    check_slots("weekly@wed@12:00", "2031-01-01 11:59", "2030-12-25 12:00",
                "2031-01-01 12:00");
    check_slots("weekly@wed@12:00", "2031-01-01 12:00", "2031-01-01 12:00",
                "2031-01-08 12:00");
    check_slots("weekly", "2031-01-01 12:00", "2030-12-29 00:00",
                "2031-01-05 00:00");
    check_slots("weekly@SAT", "2031-03-01 00:00", "2031-03-01 00:00",
                "2031-03-08 00:00");
    /* monthly: month and year ends, February of a leap year */
    check_slots("monthly@28@23:00", "2032-02-29 12:00", "2032-02-28 23:00",
                "2032-03-28 23:00");
    check_slots("monthly@28@23:00", "2031-02-28 22:59", "2031-01-28 23:00",
                "2031-02-28 23:00");
    check_slots("monthly", "2031-01-01 00:00", "2031-01-01 00:00",
                "2031-02-01 00:00");
    check_slots("monthly@15@06:30", "2031-01-10 00:00", "2030-12-15 06:30",
                "2031-01-15 06:30");
    check_slots("monthly@1", "2031-02-28 23:59:59", "2031-02-01 00:00",
                "2031-03-01 00:00");
}

static void test_syntax(void)
{
    static const char *const good[][2] = {
        { "every:15", "every:15" },       { "every:1440", "every:1440" },
        { "hourly", "hourly@00" },        { "hourly@5", "hourly@05" },
        { "daily", "daily@00:00" },       { "daily@7:05", "daily@07:05" },
        { "weekly", "weekly@sun@00:00" }, { "weekly@Fri", "weekly@fri@00:00" },
        { "weekly@mon@23:59", "weekly@mon@23:59" },
        { "monthly", "monthly@1@00:00" }, { "monthly@28", "monthly@28@00:00" },
        { "monthly@3@04:05", "monthly@3@04:05" },
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct sfs_schedule s, back;
        char text[SFS_SCHEDULE_TEXT_MAX];
        int rc = sfs_schedule_parse(good[i][0], &s);
        CHECK(rc == 0, "'%s' refused", good[i][0]);
        sfs_schedule_format(&s, text, sizeof(text));
        CHECK(!strcmp(text, good[i][1]), "'%s' formats as '%s', want '%s'",
              good[i][0], text, good[i][1]);
        rc = sfs_schedule_parse(text, &back);
        CHECK(rc == 0 && !memcmp(&s, &back, sizeof(s)), "'%s' round trip",
              text);
    }
    static const char *const bad[] = {
        "fortnightly", "", "daily@25:00", "daily@12:60", "daily@1:5",
        "daily@12", "daily@", "daily@12:00x", "every:0", "every:1441",
        "every:", "every:1x", "every:-5", "every:15@00:00", "hourly@60",
        "hourly@", "weekly@xyz", "weekly@mon@24:00", "weekly@", "monthly@29",
        "monthly@0", "monthly@", "monthly@1@", "Daily", "daily ", "yearly",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sfs_schedule s;
        CHECK(sfs_schedule_parse(bad[i], &s) == -EINVAL, "'%s' accepted",
              bad[i]);
    }
    CHECK(sfs_policy_name_valid("nightly-2.x_y") == 0, "good name");
    CHECK(sfs_policy_name_valid("a b") == -EINVAL, "space in a name");
    CHECK(sfs_policy_name_valid("") == -EINVAL, "empty name");
    CHECK(sfs_policy_prefix_valid("daily snaps") == 0, "good prefix");
    CHECK(sfs_policy_prefix_valid("a/b") == -EINVAL, "slash in a prefix");
    CHECK(sfs_policy_prefix_valid("a\tb") == -EINVAL, "tab in a prefix");
    CHECK(sfs_policy_prefix_valid("") == -EINVAL, "empty prefix");
    char longp[SFS_POLICY_PREFIX_MAX + 2];
    memset(longp, 'p', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = 0;
    CHECK(sfs_policy_prefix_valid(longp) == -EINVAL, "prefix too long");
    longp[SFS_POLICY_PREFIX_MAX] = 0;
    CHECK(sfs_policy_prefix_valid(longp) == 0, "longest prefix");
}

/* ---- runs on a volume ---- */

static struct sfs_store *st;
static char events[4096];

static int record_event(void *arg, int event, const char *policy,
                        const char *snap)
{
    static const char *const words[] = { "", "created", "existed", "deleted",
                                         "held" };
    size_t n = strlen(events);
    snprintf(events + n, sizeof(events) - n, "%s%s %s", n ? ", " : "",
             words[event], snap);
    return 0;
}

/* Run due policies at NOW in one committed transaction; the events as
 * "created X, deleted Y", and the return value. */
static int run_at(const char *now)
{
    MDB_txn *txn;
    events[0] = 0;
    CHECK_RC(sfs_txn_begin(st, NULL, true, &txn));
    int rc = sfs_policy_run_due_w(st, txn, T(now), record_event, NULL);
    CHECK(rc >= 0, "run at %s: %d", now, rc);
    CHECK_RC(sfs_txn_commit(st, txn));
    return rc;
}

static int append_name(void *arg, const struct sfs_snap_rec *s)
{
    char *out = arg;
    size_t n = strlen(out);
    snprintf(out + n, 4096 - n, "%s%s", n ? " " : "", s->name);
    return 0;
}

static const char *snapshots(void)
{
    static char names[4096];
    MDB_txn *txn;
    names[0] = 0;
    CHECK_RC(sfs_txn_begin(st, NULL, false, &txn));
    CHECK_RC(sfs_snap_foreach(st, txn, append_name, names));
    mdb_txn_abort(txn);
    return names;
}

/* One change to the store in its own transaction. */
#define IN_TXN(expr)                                                         \
    do {                                                                     \
        MDB_txn *t_;                                                         \
        CHECK_RC(sfs_txn_begin(st, NULL, true, &t_));                        \
        MDB_txn *txn = t_;                                                   \
        CHECK_RC(expr);                                                      \
        CHECK_RC(sfs_txn_commit(st, t_));                                    \
    } while (0)

#define EXPECT_STR(want, got)                                                \
    do {                                                                     \
        const char *g_ = (got);                                              \
        CHECK(!strcmp(g_, want), "got '%s', want '%s'", g_, want);           \
    } while (0)

static struct sfs_policy make_policy(const char *name, const char *sched,
                                     uint32_t keep, const char *prefix,
                                     const char *created)
{
    struct sfs_policy p;
    memset(&p, 0, sizeof(p));
    snprintf(p.name, sizeof(p.name), "%s", name);
    snprintf(p.prefix, sizeof(p.prefix), "%s", prefix);
    if (sfs_schedule_parse(sched, &p.sched))
        exit(1);
    p.keep = keep;
    p.created = T(created);
    return p;
}

static void test_runs(void)
{
    char dir[256];
    st = testvol_create(dir, sizeof(dir), 4096, SFS_CODEC_NONE);
    struct sfs_policy p = make_policy("nightly", "daily@00:10", 2, "d",
                                      "2031-01-01 00:00");
    IN_TXN(sfs_policy_create_w(st, txn, &p));
    IN_TXN(sfs_snap_take_w(st, txn, "d.manual", NULL));

    /* not due before the first slot after its creation */
    CHECK(run_at("2031-01-01 00:09") == 0, "nothing due");
    EXPECT_STR("", events);
    CHECK(run_at("2031-01-01 00:10") == 1, "first slot");
    EXPECT_STR("created d.2031-01-01_0010", events);
    CHECK(run_at("2031-01-01 12:00") == 0, "the same slot again");
    EXPECT_STR("", events);

    /* catch-up after four missed slots: one snapshot, named after the last */
    CHECK(run_at("2031-01-05 08:00") == 1, "catch-up");
    EXPECT_STR("created d.2031-01-05_0010", events);
    CHECK(run_at("2031-01-06 00:10") == 2, "retention");
    EXPECT_STR("created d.2031-01-06_0010, deleted d.2031-01-01_0010", events);
    EXPECT_STR("d.manual d.2031-01-05_0010 d.2031-01-06_0010", snapshots());

    /* a held snapshot stays, and is reported at each run until released */
    IN_TXN(sfs_snap_hold_w(st, txn, "d.2031-01-05_0010", "dump"));
    CHECK(run_at("2031-01-07 00:10") == 1, "held");
    EXPECT_STR("created d.2031-01-07_0010, held d.2031-01-05_0010", events);
    CHECK(run_at("2031-01-08 00:10") == 2, "held, next one deleted");
    EXPECT_STR("created d.2031-01-08_0010, held d.2031-01-05_0010, "
               "deleted d.2031-01-06_0010", events);
    IN_TXN(sfs_snap_release_w(st, txn, "d.2031-01-05_0010", "dump"));
    CHECK(run_at("2031-01-09 00:10") == 3, "released");
    EXPECT_STR("created d.2031-01-09_0010, deleted d.2031-01-05_0010, "
               "deleted d.2031-01-07_0010", events);
    EXPECT_STR("d.manual d.2031-01-08_0010 d.2031-01-09_0010", snapshots());

    /* a taken name is not an error: the slot counts as run */
    IN_TXN(sfs_snap_take_w(st, txn, "d.2031-01-10_0010", NULL));
    CHECK(run_at("2031-01-10 00:11") == 1, "existed");
    EXPECT_STR("existed d.2031-01-10_0010, deleted d.2031-01-08_0010", events);

    /* the record: last run, listing, prefix and name uniqueness */
    MDB_txn *txn;
    struct sfs_policy got;
    CHECK_RC(sfs_txn_begin(st, NULL, true, &txn));
    CHECK_RC(sfs_policy_get(st, txn, "nightly", &got));
    CHECK(got.last_run == T("2031-01-10 00:10"), "last run %s",
          show(got.last_run));
    struct sfs_policy same_prefix = make_policy("other", "hourly", 1, "d",
                                                "2031-01-01 00:00");
    CHECK(sfs_policy_create_w(st, txn, &same_prefix) == -EEXIST,
          "prefix taken");
    CHECK(sfs_policy_create_w(st, txn, &p) == -EEXIST, "name taken");
    struct sfs_policy zero = make_policy("zero", "hourly", 0, "z",
                                         "2031-01-01 00:00");
    CHECK(sfs_policy_create_w(st, txn, &zero) == -EINVAL, "keep 0");
    CHECK(sfs_policy_any_due(st, txn, T("2031-01-10 23:00")) == 0, "not due");
    CHECK(sfs_policy_any_due(st, txn, T("2031-01-11 00:10")) == 1, "due");
    CHECK(sfs_policy_delete_w(st, txn, "nope") == -ENOENT, "unknown policy");
    CHECK_RC(sfs_policy_delete_w(st, txn, "nightly"));
    CHECK(sfs_policy_any_due(st, txn, T("2031-01-11 00:10")) == 0, "deleted");
    mdb_txn_abort(txn);
    testvol_remove(st, dir);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    test_arithmetic();
    test_syntax();
    test_runs();
    return test_done("test_policy");
}
