/*
 * test_vault_relation.c - what a vault relationship's update chooses
 * (relation.c): only snapshots whose label the policy has a rule for are
 * backed up, only those newer than what the vault holds of the volume,
 * and only the newest KEEP of each label; retention in the vault forgets
 * the older ones of each label, never a snapshot of another volume nor
 * one of this volume without a rule's label (a manual backup), and keeps
 * a snapshot that any of its labels keeps.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "../../tools/vault/relation.h"

static const uint8_t vol_a[16] = { 0xa }, vol_b[16] = { 0xb };

static struct vault_rel_policy policy(const char *rules[][2], int n)
{
    struct vault_rel_policy p;
    memset(&p, 0, sizeof(p));
    snprintf(p.name, sizeof(p.name), "test");
    for (int i = 0; i < n; i++) {
        snprintf(p.keep.labels[i].label, sizeof(p.keep.labels[i].label), "%s",
                 rules[i][0]);
        p.keep.labels[i].keep = (uint32_t)atoi(rules[i][1]);
    }
    p.keep.nlabels = (uint32_t)n;
    return p;
}

static struct vault_rel_source src(const char *name, uint64_t epoch)
{
    struct vault_rel_source s = { .epoch = epoch,
                                  .ctime_sec = 1000 + (int64_t)epoch };
    snprintf(s.name, sizeof(s.name), "%s", name);
    return s;
}

static struct vault_snapshot vaulted(const uint8_t vol[16], const char *name,
                                     uint64_t epoch, const char *extra)
{
    struct vault_snapshot s;
    memset(&s, 0, sizeof(s));
    memcpy(s.m.volume, vol, 16);
    snprintf(s.m.name, sizeof(s.m.name), "%s", name);
    s.m.epoch = epoch;
    s.m.ctime_sec = 1000 + (int64_t)epoch;
    s.id[0] = (uint8_t)epoch;
    vault_label_of(name, s.m.labels[0]);
    s.m.nlabels = 1;
    if (extra)
        snprintf(s.m.labels[s.m.nlabels++], sizeof(s.m.labels[0]), "%s",
                 extra);
    return s;
}

static void test_daily_backup(void)
{
    struct vault_rel_policy p;
    CHECK_RC(vault_rel_policy_load(VAULT_DAILY_BACKUP, &p));
    CHECK(p.builtin && p.keep.nlabels == 1 &&
              !strcmp(p.keep.labels[0].label, "daily") &&
              p.keep.labels[0].keep == 7,
          "DailyBackup is label daily, keep 7");
    CHECK(vault_rel_selects(&p, "daily.2026-12-07_0010"), "daily.X selected");
    CHECK(vault_rel_selects(&p, "daily"), "a name without a dot is its label");
    CHECK(!vault_rel_selects(&p, "weekly.2026-12-06_0015"), "weekly is not");
    CHECK(!vault_rel_selects(&p, "dailyish.1"), "a label is the whole part");
}

static void test_to_back_up(void)
{
    const char *rules[][2] = { { "daily", "2" }, { "weekly", "1" } };
    struct vault_rel_policy p = policy(rules, 2);
    /* the source, in no order: three dailies, two weeklies, others */
    struct vault_rel_source s[] = {
        src("daily.3", 9), src("hourly.1", 2), src("daily.1", 3),
        src("weekly.1", 4), src("adhoc", 5), src("daily.2", 6),
        src("weekly.2", 7), src("daily.0", 1),
    };
    size_t n = sizeof(s) / sizeof(s[0]);
    bool pick[8];
    int got = vault_rel_to_back_up(&p, vol_a, s, n, NULL, 0, pick);
    CHECK(got == 3, "an empty vault: the newest 2 dailies and 1 weekly (%d)",
          got);
    CHECK(pick[0] && pick[5] && pick[6], "daily.3, daily.2, weekly.2");
    CHECK(!pick[1] && !pick[4], "unselected labels never");
    CHECK(!pick[2] && !pick[7] && !pick[3], "older than the newest KEEP");

    /* the vault has daily.2 (epoch 6) of this volume: only newer ones */
    struct vault_snapshot v[] = { vaulted(vol_a, "daily.2", 6, NULL),
                                  vaulted(vol_b, "daily.9", 50, NULL) };
    got = vault_rel_to_back_up(&p, vol_a, s, n, v, 2, pick);
    CHECK(got == 2 && pick[0] && pick[6],
          "after the vault's newest: daily.3 and weekly.2 (%d)", got);
    CHECK(!pick[5], "what the vault has is not sent again");

    /* a manual backup of a newer snapshot (no rule's label) does not
     * count either */
    struct vault_snapshot u[] = { vaulted(vol_a, "daily.2", 6, NULL),
                                  vaulted(vol_a, "adhoc", 20, NULL) };
    got = vault_rel_to_back_up(&p, vol_a, s, n, u, 2, pick);
    CHECK(got == 2 && pick[0] && pick[6],
          "a manual backup is no limit: daily.3 and weekly.2 (%d)", got);

    /* another volume's newer snapshots do not count */
    struct vault_snapshot w[] = { vaulted(vol_b, "daily.9", 50, NULL) };
    got = vault_rel_to_back_up(&p, vol_a, s, n, w, 1, pick);
    CHECK(got == 3, "another volume's snapshots are no base (%d)", got);
    CHECK(vault_rel_to_back_up(&p, vol_a, s, 0, NULL, 0, pick) == 0,
          "no source snapshots, nothing");
}

static void test_to_forget(void)
{
    const char *rules[][2] = { { "daily", "2" }, { "weekly", "1" } };
    struct vault_rel_policy p = policy(rules, 2);
    struct vault_snapshot v[] = {
        vaulted(vol_a, "daily.1", 1, NULL),   /* 0: third newest daily */
        vaulted(vol_a, "weekly.1", 2, NULL),  /* 1: older weekly */
        vaulted(vol_a, "manual", 3, NULL),    /* 2: no rule's label */
        vaulted(vol_a, "daily.2", 4, NULL),   /* 3: kept */
        vaulted(vol_b, "daily.0", 0, NULL),   /* 4: another volume */
        vaulted(vol_a, "weekly.2", 5, NULL),  /* 5: kept */
        vaulted(vol_a, "daily.3", 6, NULL),   /* 6: kept */
        vaulted(vol_a, "old.1", 0, "weekly"), /* 7: labelled weekly too */
    };
    size_t n = sizeof(v) / sizeof(v[0]);
    bool forget[8];
    int got = vault_rel_to_forget(&p, vol_a, v, n, forget);
    CHECK(got == 3, "three forgotten (%d)", got);
    CHECK(forget[0] && forget[1] && forget[7],
          "the third daily, the older weeklies");
    CHECK(!forget[2], "a snapshot without a rule's label stays");
    CHECK(!forget[4], "another volume's stay");
    CHECK(!forget[3] && !forget[5] && !forget[6], "the newest KEEP stay");

    const char *wide[][2] = { { "daily", "1" }, { "weekly", "5" } };
    p = policy(wide, 2);
    v[0] = vaulted(vol_a, "daily.1", 1, "weekly");
    got = vault_rel_to_forget(&p, vol_a, v, n, forget);
    CHECK(!forget[0], "kept by one of its labels, kept");
    CHECK(forget[3] && !forget[6], "daily keeps only the newest");
    CHECK(got == 1, "one forgotten (%d)", got);
}

int main(void)
{
    test_daily_backup();
    test_to_back_up();
    test_to_forget();
    return test_done("test_vault_relation");
}
