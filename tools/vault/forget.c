/*
 * forget.c - retention: which snapshots a policy keeps, and forgetting
 * the others (deleting their manifests).
 *
 * A policy is applied to each source volume's snapshots on their own,
 * newest first (by the snapshot's creation time at its source):
 *   last N      the N newest;
 *   daily N     the newest of each of the N newest days that have one
 *               (local time), and likewise weekly N (ISO weeks) and
 *               monthly N (calendar months);
 *   label L=N   the N newest labelled L.
 * A snapshot any rule keeps stays; the rest are forgotten.  As restic
 * does; a rule never keeps more than its N, and a volume's newest
 * snapshot is kept by any rule with N >= 1 that it falls under.
 *
 * Forgetting deletes manifests only: the links, metadata and blocks a
 * forgotten snapshot referred to stay until `vault prune`, and a kept
 * snapshot whose chain passes through a forgotten one's link keeps it
 * (links are blobs, not manifests: backup.c's THEORY), so forgetting never
 * makes a kept snapshot unrestorable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repo.h"

/* Order of a volume's snapshots: the volume, then newest first. */
static int newest_first(const void *a, const void *b)
{
    const struct vault_snapshot *x = *(const struct vault_snapshot *const *)a;
    const struct vault_snapshot *y = *(const struct vault_snapshot *const *)b;
    int c = memcmp(x->m.volume, y->m.volume, 16);
    if (c)
        return c;
    if (x->m.ctime_sec != y->m.ctime_sec)
        return x->m.ctime_sec > y->m.ctime_sec ? -1 : 1;
    if (x->m.ctime_nsec != y->m.ctime_nsec)
        return x->m.ctime_nsec > y->m.ctime_nsec ? -1 : 1;
    return x->m.epoch > y->m.epoch ? -1 : x->m.epoch < y->m.epoch;
}

/* The period a time falls in, as text (day, ISO week, month). */
static void period_of(int64_t sec, const char *fmt, char *out, size_t cap)
{
    time_t t = (time_t)sec;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, cap, fmt, &tm);
}

static bool has_label(const struct vault_manifest *m, const char *label)
{
    for (uint32_t i = 0; i < m->nlabels; i++)
        if (!strcmp(m->labels[i], label))
            return true;
    return false;
}

/* Counters of one volume's walk, newest first. */
struct walk {
    uint32_t last;
    uint32_t per[3];            /* days, weeks, months kept so far */
    char seen[3][32];           /* the period of the last kept one */
    uint32_t labels[VAULT_KEEP_LABELS];
};

static const char *const period_fmt[3] = { "%Y-%m-%d", "%G-W%V", "%Y-%m" };

static unsigned keep_one(const struct vault_keep_policy *p, struct walk *w,
                         const struct vault_manifest *m)
{
    unsigned why = 0;
    if (w->last < p->last) {
        w->last++;
        why |= VAULT_KEPT_LAST;
    }
    const uint32_t want[3] = { p->daily, p->weekly, p->monthly };
    for (int k = 0; k < 3; k++) {
        char period[32];
        period_of(m->ctime_sec, period_fmt[k], period, sizeof(period));
        if (w->per[k] < want[k] && strcmp(period, w->seen[k])) {
            w->per[k]++;
            snprintf(w->seen[k], sizeof(w->seen[k]), "%s", period);
            why |= VAULT_KEPT_DAILY << k;
        }
    }
    for (uint32_t i = 0; i < p->nlabels; i++)
        if (w->labels[i] < p->labels[i].keep &&
            has_label(m, p->labels[i].label)) {
            w->labels[i]++;
            why |= VAULT_KEPT_LABEL;
        }
    return why;
}

int vault_policy_apply(const struct vault_keep_policy *p,
                       const struct vault_snapshot *s, size_t n,
                       unsigned *keep)
{
    const struct vault_snapshot **order = malloc((n + 1) * sizeof(*order));
    if (!order)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        order[i] = &s[i];
    if (n)
        qsort(order, n, sizeof(*order), newest_first);
    struct walk w;
    for (size_t i = 0; i < n; i++) {
        if (!i || memcmp(order[i]->m.volume, order[i - 1]->m.volume, 16))
            memset(&w, 0, sizeof(w));
        keep[order[i] - s] = keep_one(p, &w, &order[i]->m);
    }
    free(order);
    return 0;
}

int vault_forget(struct vault *v, const struct vault_snapshot *s)
{
    char name[128];
    vault_obj_name("snapshots", s->id, name, sizeof(name));
    int rc = objstore_delete(v->os, name);
    return rc ? vault_os_fail(v, rc) : 0;
}
