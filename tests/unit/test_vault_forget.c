/*
 * test_vault_forget.c - which snapshots retention rules keep
 * (vault_policy_apply).  Checked on snapshots every 6 hours for 70 days
 * of two volumes, given in shuffled order: --keep-last keeps the newest N
 * of each volume; --keep-daily N the newest of each of the N newest days;
 * weekly and monthly likewise (ISO weeks, calendar months); --keep-label
 * the N newest with the label; a snapshot two rules keep says both; an
 * empty policy keeps nothing; no rule ever keeps more than its N.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "../../tools/vault/vault.h"

#define DAYS 70
#define PER_DAY 4
#define PER_VOL (DAYS * PER_DAY)
#define N (2 * PER_VOL)

static struct vault_snapshot snaps[N];
static unsigned keep[N];
static int64_t base;

/* Snapshot I of volume VOL: every 6 hours from BASE, the ones at 06:00
 * labelled "daily". */
static void make(int vol, int i, struct vault_snapshot *s)
{
    memset(s, 0, sizeof(*s));
    s->m.volume[0] = (uint8_t)(vol + 1);
    s->m.ctime_sec = base + (int64_t)i * 6 * 3600;
    s->m.epoch = (uint64_t)i + 1;
    s->id[0] = (uint8_t)vol;
    s->id[1] = (uint8_t)(i >> 8);
    s->id[2] = (uint8_t)i;
    snprintf(s->m.name, sizeof(s->m.name), "%s.%d",
             i % PER_DAY == 1 ? "daily" : "hourly", i);
    vault_label_of(s->m.name, s->m.labels[0]);
    s->m.nlabels = 1;
}

static void shuffle(void)
{
    srand(7);
    for (int i = N - 1; i > 0; i--) {
        int j = rand() % (i + 1);
        struct vault_snapshot t = snaps[i];
        snaps[i] = snaps[j];
        snaps[j] = t;
    }
}

/* How many of volume VOL's snapshots have reason WHY; the newest of them
 * (index in its volume's order) in *NEWEST. */
static int kept(int vol, unsigned why, int *newest)
{
    int n = 0;
    *newest = -1;
    for (int k = 0; k < N; k++) {
        if (snaps[k].m.volume[0] != vol + 1 || !(keep[k] & why))
            continue;
        n++;
        int i = (int)snaps[k].m.epoch - 1;
        if (i > *newest)
            *newest = i;
    }
    return n;
}

static void test_rules(void)
{
    struct vault_keep_policy p = { .last = 3, .daily = 5, .weekly = 2,
                                   .monthly = 2, .nlabels = 1 };
    snprintf(p.labels[0].label, sizeof(p.labels[0].label), "daily");
    p.labels[0].keep = 4;
    CHECK_RC(vault_policy_apply(&p, snaps, N, keep));
    for (int vol = 0; vol < 2; vol++) {
        int newest;
        CHECK(kept(vol, VAULT_KEPT_LAST, &newest) == 3 &&
              newest == PER_VOL - 1, "volume %d: the 3 newest", vol);
        CHECK(kept(vol, VAULT_KEPT_DAILY, &newest) == 5 &&
              newest == PER_VOL - 1, "volume %d: 5 days", vol);
        CHECK(kept(vol, VAULT_KEPT_WEEKLY, &newest) == 2, "2 weeks");
        CHECK(kept(vol, VAULT_KEPT_MONTHLY, &newest) == 2, "2 months");
        CHECK(kept(vol, VAULT_KEPT_LABEL, &newest) == 4 &&
              newest == PER_VOL - 3, "volume %d: the 4 newest daily.*: %d",
              vol, newest);
    }
    /* the days kept are the 5 newest, one snapshot each (the last of it) */
    int days = 0;
    for (int k = 0; k < N; k++) {
        if (snaps[k].m.volume[0] != 1 || !(keep[k] & VAULT_KEPT_DAILY))
            continue;
        int i = (int)snaps[k].m.epoch - 1;
        days += i % PER_DAY == PER_DAY - 1 && i >= PER_VOL - 5 * PER_DAY;
    }
    CHECK(days == 5, "each kept day by its last snapshot (%d)", days);
    bool both = false;
    for (int k = 0; k < N; k++)
        both |= (keep[k] & (VAULT_KEPT_LAST | VAULT_KEPT_DAILY)) ==
                (VAULT_KEPT_LAST | VAULT_KEPT_DAILY);
    CHECK(both, "a snapshot two rules keep says both");
}

static void test_nothing(void)
{
    struct vault_keep_policy p = { 0 };
    CHECK_RC(vault_policy_apply(&p, snaps, N, keep));
    int any = 0;
    for (int k = 0; k < N; k++)
        any += keep[k] != 0;
    CHECK(any == 0, "an empty policy keeps nothing");
    p.last = 1000;
    CHECK_RC(vault_policy_apply(&p, snaps, N, keep));
    any = 0;
    for (int k = 0; k < N; k++)
        any += keep[k] == VAULT_KEPT_LAST;
    CHECK(any == N, "more than there are keeps all");
    CHECK_RC(vault_policy_apply(&p, snaps, 0, keep));
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    struct tm tm = { .tm_year = 126, .tm_mon = 0, .tm_mday = 1 };
    base = (int64_t)timegm(&tm);
    for (int vol = 0; vol < 2; vol++)
        for (int i = 0; i < PER_VOL; i++)
            make(vol, i, &snaps[vol * PER_VOL + i]);
    shuffle();
    test_rules();
    test_nothing();
    return test_done("test_vault_forget");
}
