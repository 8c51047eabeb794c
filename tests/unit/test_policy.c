/*
 * test_policy.c - snapshot policies: the schedule arithmetic on concrete
 * dates (month and year ends, leap years, weeks, every:N alignment), the
 * schedule syntax, and runs on a scratch volume: a snapshot per slot named
 * after it, one snapshot on catch-up, idempotent runs, retention by the
 * time in the names, held snapshots kept and reported, foreign names left
 * alone; daylight saving (POSIX TZ rules, US and European): a skipped or
 * repeated slot runs once; modify (schedule, keep, prefix).  Runs with
 * TZ=UTC but for the daylight-saving cases.
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

/* ---- daylight saving ---- */

/* The policy clock in zone TZ: run SCHED minute by minute from FROM to TO
 * (UTC), as the scheduler does, and give the names of the snapshots it
 * takes ("a b c").  Every slot it runs for is <= the minute it runs at,
 * and every next slot is later than the minute. */
static const char *dst_runs(const char *tz, const char *sched,
                            const char *from, const char *to)
{
    static char names[1024];
    setenv("TZ", tz, 1);
    tzset();
    struct sfs_policy p = make_policy("p", sched, 1, "p", from);
    names[0] = 0;
    for (int64_t now = T(from); now < T(to); now += 60) {
        int64_t prev = sfs_schedule_prev(&p.sched, now);
        int64_t next = sfs_schedule_next(&p.sched, now);
        CHECK(prev <= now && next > now, "%s %s at %s: prev %s, next %s", tz,
              sched, show(now), show(prev), show(next));
        int64_t slot = sfs_policy_due(&p, now);
        if (!slot)
            continue;
        char name[SFS_NAME_MAX + 1];
        sfs_policy_snap_name(&p, slot, name, sizeof(name));
        size_t n = strlen(names);
        snprintf(names + n, sizeof(names) - n, "%s%s", n ? " " : "", name);
        p.last_run = slot;
    }
    setenv("TZ", "UTC", 1);
    tzset();
    return names;
}

/* Spring forward skips 02:00-03:00, fall back repeats 01:00-02:00 (US
 * rules, POSIX TZ strings: no zone files needed); Central Europe's
 * change at 02:00/03:00 the other way round. */
#define US "EST5EDT,M3.2.0,M11.1.0"
#define EU "CET-1CEST,M3.5.0,M10.5.0/3"

static void test_dst(void)
{
    static const struct {
        const char *tz, *sched, *from, *to, *want;
    } cases[] = {
        /* a daily slot the clocks skip runs once, just after the jump */
        { US, "daily@02:30", "2031-03-08 12:00", "2031-03-10 18:00",
          "p.2031-03-09_0330 p.2031-03-10_0230" },
        { EU, "daily@02:30", "2031-03-29 12:00", "2031-03-31 12:00",
          "p.2031-03-30_0330 p.2031-03-31_0230" },
        /* a daily slot the clocks repeat runs once, the first time */
        { US, "daily@01:30", "2031-11-01 12:00", "2031-11-03 18:00",
          "p.2031-11-02_0130 p.2031-11-03_0130" },
        { EU, "daily@02:30", "2031-10-25 12:00", "2031-10-27 12:00",
          "p.2031-10-26_0230 p.2031-10-27_0230" },
        /* hourly: the skipped hour's slot is the next one's, the
         * repeated hour's runs once */
        { US, "hourly@30", "2031-03-09 05:00", "2031-03-09 09:00",
          "p.2031-03-09_0030 p.2031-03-09_0130 p.2031-03-09_0330 "
          "p.2031-03-09_0430" },
        { US, "hourly@30", "2031-11-02 04:00", "2031-11-02 09:00",
          "p.2031-11-02_0030 p.2031-11-02_0130 p.2031-11-02_0230 "
          "p.2031-11-02_0330" },
        /* every:30 through the repeated hour: each clock time once */
        { US, "every:30", "2031-11-02 04:45", "2031-11-02 07:45",
          "p.2031-11-02_0100 p.2031-11-02_0130 p.2031-11-02_0200 "
          "p.2031-11-02_0230" },
        /* a weekly slot on a change day */
        { US, "weekly@sun@01:30", "2031-11-01 12:00", "2031-11-03 12:00",
          "p.2031-11-02_0130" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        EXPECT_STR(cases[i].want, dst_runs(cases[i].tz, cases[i].sched,
                                           cases[i].from, cases[i].to));
}

/* ---- modify ---- */

static void test_modify(void)
{
    char dir[256];
    st = testvol_create(dir, sizeof(dir), 4096, SFS_CODEC_NONE);
    struct sfs_policy p = make_policy("nightly", "daily@00:10", 3, "d",
                                      "2031-01-01 00:00");
    struct sfs_policy other = make_policy("other", "monthly@28", 1, "o",
                                          "2031-01-01 00:00");
    IN_TXN(sfs_policy_create_w(st, txn, &p));
    IN_TXN(sfs_policy_create_w(st, txn, &other));
    CHECK(run_at("2031-01-01 00:10") == 1, "first slot");
    CHECK(run_at("2031-01-02 00:10") == 1, "second slot");

    /* a new schedule starts at the change: no run for a slot before it */
    struct sfs_policy m = p;
    CHECK_RC(sfs_schedule_parse("daily@06:00", &m.sched));
    IN_TXN(sfs_policy_modify_w(st, txn, &m, T("2031-01-02 07:00")));
    CHECK(run_at("2031-01-02 07:01") == 0, "the 06:00 before the change");
    CHECK(run_at("2031-01-03 06:00") == 1, "the new schedule");
    EXPECT_STR("created d.2031-01-03_0600", events);

    /* a smaller keep applies at the next run */
    m.keep = 1;
    IN_TXN(sfs_policy_modify_w(st, txn, &m, T("2031-01-03 07:00")));
    EXPECT_STR("d.2031-01-01_0010 d.2031-01-02_0010 d.2031-01-03_0600",
               snapshots());
    CHECK(run_at("2031-01-04 06:00") == 4, "retention by the new keep");
    EXPECT_STR("d.2031-01-04_0600", snapshots());

    /* a new prefix names the next snapshots; the old ones stay */
    snprintf(m.prefix, sizeof(m.prefix), "daily.db");
    IN_TXN(sfs_policy_modify_w(st, txn, &m, T("2031-01-04 07:00")));
    CHECK(run_at("2031-01-05 06:00") == 1, "new prefix");
    EXPECT_STR("d.2031-01-04_0600 daily.db.2031-01-05_0600", snapshots());

    /* refused: another policy's prefix, a bad keep, an unknown policy */
    MDB_txn *txn;
    CHECK_RC(sfs_txn_begin(st, NULL, true, &txn));
    struct sfs_policy bad = m;
    snprintf(bad.prefix, sizeof(bad.prefix), "o");
    CHECK(sfs_policy_modify_w(st, txn, &bad, 0) == -EEXIST, "prefix taken");
    bad = m;
    bad.keep = 0;
    CHECK(sfs_policy_modify_w(st, txn, &bad, 0) == -EINVAL, "keep 0");
    bad = m;
    snprintf(bad.name, sizeof(bad.name), "nope");
    CHECK(sfs_policy_modify_w(st, txn, &bad, 0) == -ENOENT, "no policy");
    struct sfs_policy got;
    CHECK_RC(sfs_policy_get(st, txn, "nightly", &got));
    CHECK(got.keep == 1 && !strcmp(got.prefix, "daily.db") &&
          got.last_run == T("2031-01-05 06:00"), "the record after modify");
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
    test_dst();
    test_modify();
    return test_done("test_policy");
}
