/*
 * policy.c - snapshot policies: named schedules with retention, kept in the
 * meta table under "policy/NAME", and the run that takes and prunes their
 * snapshots.
 *
 * Guarantees:
 *   - a policy's snapshots are named PREFIX.YYYY-MM-DD_HHMM after the
 *     scheduled time (local time) they were taken for; retention considers
 *     exactly the snapshots whose names have that form, never others;
 *   - a run is one change in the caller's transaction: the snapshots taken,
 *     the runs recorded and the snapshots deleted commit together or not;
 *   - a held snapshot is never deleted: it is reported and stays.
 *
 * THEORY.  A schedule is a set of instants ("slots"), whole minutes of
 * local time.  sfs_schedule_prev(NOW) is the latest slot <= NOW: it builds
 * the slot of the current period (this hour, day, week or month) and, if
 * that is still ahead of NOW, steps one period back; mktime() normalizes
 * the broken-down time (day 0 is the last day of the previous month, month
 * -1 is December of the year before), so month and year ends need no
 * special cases.  sfs_schedule_next(NOW) is that slot stepped one period
 * forward.  every:N slots are the minutes of each day that are multiples
 * of N, so a step past midnight lands on midnight.
 *
 * Daylight saving: slots are times of the local clock, and each is one
 * instant, chosen the same way every time (at_local).  When the clocks
 * go back, an hour of clock times happens twice: a slot in it is its
 * first happening, so the second is never a new slot (a daily@01:30, an
 * hourly or an every:N policy runs once for each clock time of that
 * hour, not twice).  When they go forward, an hour of clock times does
 * not happen: a slot in it is the instant that clock time names in
 * standard time, just after the jump (daily@02:30 runs once that day, at
 * 03:30 summer time, and its snapshot is named for 03:30), and an hourly
 * slot landing on the next one's instant is one slot, not two.
 *
 * A policy is due at NOW when prev(NOW) is later than both its creation
 * and its last run; the run takes one snapshot, for prev(NOW), and records
 * prev(NOW) as its last run.  A volume that was unmounted across several
 * slots therefore catches up with one snapshot, not one per missed slot,
 * and running again at the same NOW does nothing: runs are idempotent.
 * Retention orders a policy's snapshots by the time in their names (the
 * fixed-width stamp sorts as text), so renaming or re-creating one cannot
 * make it look newer than it is.
 *
 * A mirror destination that follows its source runs no policy: its
 * snapshots are the source's, and one taken there would make the next
 * transfer find a diverged destination.  Its policies (kept, or brought
 * by a configuration) are due again once it is broken off.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"

/* ---- schedules ---- */

static const char *const day_names[7] = { "sun", "mon", "tue", "wed",
                                          "thu", "fri", "sat" };

/* Exactly the digits of [S, S+LEN), 1 to MAXDIGITS of them, <= MAX. */
static int parse_num(const char *s, size_t len, size_t maxdigits,
                     uint32_t max, uint32_t *out)
{
    if (len == 0 || len > maxdigits)
        return -EINVAL;
    uint32_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -EINVAL;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* "HH:MM" (H:MM allowed). */
static int parse_time(const char *s, struct sfs_schedule *out)
{
    const char *colon = strchr(s, ':');
    if (!colon || strlen(colon + 1) != 2)
        return -EINVAL;
    if (parse_num(s, (size_t)(colon - s), 2, 23, &out->hour) ||
        parse_num(colon + 1, 2, 2, 59, &out->minute))
        return -EINVAL;
    return 0;
}

static int parse_day(const char *s, size_t len, uint32_t *out)
{
    for (uint32_t d = 0; d < 7; d++)
        if (len == 3 && !strncasecmp(s, day_names[d], 3)) {
            *out = d;
            return 0;
        }
    return -EINVAL;
}

/* ARGS: the text after "weekly@" or "monthly@": FIRST[@HH:MM]. */
static int parse_day_and_time(const char *args, struct sfs_schedule *out)
{
    const char *at = strchr(args, '@');
    size_t len = at ? (size_t)(at - args) : strlen(args);
    int rc = out->kind == SFS_SCHED_WEEKLY
                 ? parse_day(args, len, &out->wday)
                 : parse_num(args, len, 2, 28, &out->mday);
    if (rc || (out->kind == SFS_SCHED_MONTHLY && out->mday == 0))
        return -EINVAL;
    return at ? parse_time(at + 1, out) : 0;
}

int sfs_schedule_parse(const char *text, struct sfs_schedule *out)
{
    struct sfs_schedule s = { 0 };
    const char *at = strchr(text, '@');
    size_t kw = at ? (size_t)(at - text) : strlen(text);
    const char *args = at ? at + 1 : NULL;
    int rc = 0;
    if (!strncmp(text, "every:", 6) && !at) {
        s.kind = SFS_SCHED_EVERY;
        rc = parse_num(text + 6, strlen(text + 6), 4, 1440, &s.period);
        if (!rc && s.period == 0)
            rc = -EINVAL;
    } else if (kw == 6 && !strncmp(text, "hourly", 6)) {
        s.kind = SFS_SCHED_HOURLY;
        if (args)
            rc = parse_num(args, strlen(args), 2, 59, &s.minute);
    } else if (kw == 5 && !strncmp(text, "daily", 5)) {
        s.kind = SFS_SCHED_DAILY;
        if (args)
            rc = parse_time(args, &s);
    } else if (kw == 6 && !strncmp(text, "weekly", 6)) {
        s.kind = SFS_SCHED_WEEKLY;
        if (args)
            rc = parse_day_and_time(args, &s);
    } else if (kw == 7 && !strncmp(text, "monthly", 7)) {
        s.kind = SFS_SCHED_MONTHLY;
        s.mday = 1;
        if (args)
            rc = parse_day_and_time(args, &s);
    } else {
        rc = -EINVAL;
    }
    if (!rc)
        *out = s;
    return rc;
}

void sfs_schedule_format(const struct sfs_schedule *s, char *out, size_t cap)
{
    switch (s->kind) {
    case SFS_SCHED_EVERY:
        snprintf(out, cap, "every:%u", s->period);
        break;
    case SFS_SCHED_HOURLY:
        snprintf(out, cap, "hourly@%02u", s->minute);
        break;
    case SFS_SCHED_DAILY:
        snprintf(out, cap, "daily@%02u:%02u", s->hour, s->minute);
        break;
    case SFS_SCHED_WEEKLY:
        snprintf(out, cap, "weekly@%s@%02u:%02u", day_names[s->wday % 7],
                 s->hour, s->minute);
        break;
    case SFS_SCHED_MONTHLY:
        snprintf(out, cap, "monthly@%u@%02u:%02u", s->mday, s->hour,
                 s->minute);
        break;
    default:
        snprintf(out, cap, "?");
    }
}

/* TM's date and wall-clock time, normalized (day 0, hour 24 and such). */
static struct tm wall_normalized(const struct tm *tm)
{
    struct tm c = *tm, out;
    c.tm_isdst = 0;
    time_t t = timegm(&c); /* calendar arithmetic only: no zone */
    gmtime_r(&t, &out);
    return out;
}

static int wall_cmp(const struct tm *a, const struct tm *b)
{
    int ka[] = { a->tm_year, a->tm_mon, a->tm_mday, a->tm_hour, a->tm_min };
    int kb[] = { b->tm_year, b->tm_mon, b->tm_mday, b->tm_hour, b->tm_min };
    for (int i = 0; i < 5; i++)
        if (ka[i] != kb[i])
            return ka[i] < kb[i] ? -1 : 1;
    return 0;
}

/*
 * The instant local time reads TM (date, hour, minute), decided the same
 * way every time (see THEORY, daylight saving): when the clocks go back
 * and that time happens twice, the first; when they go forward over it,
 * the instant it names in standard time, which lies after the jump.
 * (mktime with tm_isdst -1 picks one of two by what it was asked last.)
 */
static int64_t at_local(struct tm tm)
{
    struct tm want = wall_normalized(&tm);
    int64_t first = INT64_MAX, after = INT64_MAX;
    for (int dst = 0; dst <= 1; dst++) {
        struct tm c = want, shown;
        c.tm_isdst = dst;
        time_t t = mktime(&c);
        if (t == (time_t)-1)
            continue;
        localtime_r(&t, &shown);
        int cmp = wall_cmp(&shown, &want);
        if (cmp == 0 && t < first)
            first = t;
        else if (cmp > 0 && t < after)
            after = t;
    }
    return first != INT64_MAX ? first : after;
}

/* The slot of the current period of NOW (it may be later than NOW). */
static struct tm period_slot(const struct sfs_schedule *s, int64_t now)
{
    time_t t = (time_t)now;
    struct tm tm;
    localtime_r(&t, &tm);
    tm.tm_sec = 0;
    switch (s->kind) {
    case SFS_SCHED_EVERY: {
        int m = tm.tm_hour * 60 + tm.tm_min;
        m -= m % (int)s->period;
        tm.tm_hour = m / 60;
        tm.tm_min = m % 60;
        break;
    }
    case SFS_SCHED_HOURLY:
        tm.tm_min = (int)s->minute;
        break;
    case SFS_SCHED_WEEKLY:
        tm.tm_mday -= (tm.tm_wday - (int)s->wday + 7) % 7;
        tm.tm_hour = (int)s->hour;
        tm.tm_min = (int)s->minute;
        break;
    case SFS_SCHED_MONTHLY:
        tm.tm_mday = (int)s->mday;
        /* fall through */
    case SFS_SCHED_DAILY:
        tm.tm_hour = (int)s->hour;
        tm.tm_min = (int)s->minute;
        break;
    }
    return tm;
}

/* Move TM one period forward (DIR 1) or back (DIR -1). */
static void step_period(const struct sfs_schedule *s, struct tm *tm, int dir)
{
    switch (s->kind) {
    case SFS_SCHED_EVERY: {
        int m = tm->tm_hour * 60 + tm->tm_min + dir * (int)s->period;
        if (m >= 24 * 60) { /* the count restarts at midnight */
            tm->tm_mday++;
            m = 0;
        }
        tm->tm_hour = m / 60;
        tm->tm_min = m % 60;
        break;
    }
    case SFS_SCHED_HOURLY: tm->tm_hour += dir; break;
    case SFS_SCHED_DAILY: tm->tm_mday += dir; break;
    case SFS_SCHED_WEEKLY: tm->tm_mday += 7 * dir; break;
    case SFS_SCHED_MONTHLY: tm->tm_mon += dir; break;
    }
}

/* The broken-down latest slot <= NOW.  A slot skipped by the clocks
 * going forward lands after the jump, so the one before may be needed. */
static struct tm latest_slot(const struct sfs_schedule *s, int64_t now)
{
    struct tm tm = period_slot(s, now);
    for (int i = 0; i < 3 && at_local(tm) > now; i++)
        step_period(s, &tm, -1);
    return tm;
}

int64_t sfs_schedule_prev(const struct sfs_schedule *s, int64_t now)
{
    return at_local(latest_slot(s, now));
}

int64_t sfs_schedule_next(const struct sfs_schedule *s, int64_t now)
{
    struct tm tm = latest_slot(s, now);
    int64_t t;
    int i = 0;
    do { /* a skipped slot may land on the one after it: the next later */
        step_period(s, &tm, 1);
        t = at_local(tm);
    } while (t <= now && ++i < 3);
    return t;
}

/* ---- policy names, prefixes, snapshot names ---- */

int sfs_policy_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > SFS_POLICY_NAME_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
            return -EINVAL;
    return 0;
}

int sfs_policy_prefix_valid(const char *prefix)
{
    size_t n = strlen(prefix);
    if (n == 0 || n > SFS_POLICY_PREFIX_MAX || strchr(prefix, '/'))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)prefix[i] < 0x20 || prefix[i] == 0x7f)
            return -EINVAL;
    return 0;
}

int sfs_policy_keep_valid(uint32_t keep)
{
    return keep >= 1 && keep <= SFS_POLICY_KEEP_MAX ? 0 : -EINVAL;
}

static int schedule_valid(const struct sfs_schedule *s)
{
    char text[SFS_SCHEDULE_TEXT_MAX];
    struct sfs_schedule back;
    sfs_schedule_format(s, text, sizeof(text));
    if (sfs_schedule_parse(text, &back) || memcmp(&back, s, sizeof(back)))
        return -EINVAL;
    return 0;
}

/* ---- hooks (application-consistent snapshots; run by fs/hooks.c) ---- */

bool sfs_hooks_any(const struct sfs_hookspec *h)
{
    return h->pre[0] || h->post[0];
}

static int hook_cmd_valid(const char *cmd, size_t cap)
{
    size_t n = strnlen(cmd, cap);
    if (n == cap)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)cmd[i] < 0x20 || cmd[i] == 0x7f)
            return -EINVAL;
    return 0;
}

int sfs_hooks_valid(const struct sfs_hookspec *h)
{
    if (hook_cmd_valid(h->pre, sizeof(h->pre)) ||
        hook_cmd_valid(h->post, sizeof(h->post)) ||
        h->timeout > SFS_HOOK_TIMEOUT_MAX ||
        h->on_failure > SFS_HOOK_CRASH_CONSISTENT)
        return -EINVAL;
    return 0;
}

static char *hex_put(char *o, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        o += sprintf(o, "%02x", *p);
    return o;
}

void sfs_hooks_format(const struct sfs_hookspec *h, char *out, size_t cap)
{
    char buf[SFS_HOOKS_WORD_MAX];
    char *o = buf + sprintf(buf, "%u:%u:", h->timeout, h->on_failure);
    o = hex_put(o, h->pre);
    *o++ = ':';
    o = hex_put(o, h->post);
    *o = 0;
    snprintf(out, cap, "%s", buf);
}

/* Hex digits [S, S+LEN) into the string OUT of CAP bytes. */
static int hex_get(const char *s, size_t len, char *out, size_t cap)
{
    if (len % 2 || len / 2 >= cap)
        return -EINVAL;
    for (size_t i = 0; i < len; i += 2) {
        int hi = sfs_hex_digit(s[i]);
        int lo = hi < 0 ? -1 : sfs_hex_digit(s[i + 1]);
        if (lo < 0)
            return -EINVAL;
        out[i / 2] = (char)(hi << 4 | lo);
    }
    out[len / 2] = 0;
    return 0;
}

int sfs_hooks_parse(const char *word, struct sfs_hookspec *h)
{
    memset(h, 0, sizeof(*h));
    unsigned timeout, failure;
    int pos = 0;
    if (sscanf(word, "%u:%u:%n", &timeout, &failure, &pos) != 2 || !pos)
        return -EINVAL;
    const char *pre = word + pos, *colon = strchr(pre, ':');
    if (!colon)
        return -EINVAL;
    const char *post = colon + 1;
    if (hex_get(pre, (size_t)(colon - pre), h->pre, sizeof(h->pre)) ||
        hex_get(post, strlen(post), h->post, sizeof(h->post)))
        return -EINVAL;
    h->timeout = timeout;
    h->on_failure = failure;
    return sfs_hooks_valid(h);
}

bool sfs_policy_owns(const struct sfs_policy *p, const char *snap)
{
    /* the stamp: ".YYYY-MM-DD_HHMM", D a digit */
    static const char form[] = ".DDDD-DD-DD_DDDD";
    size_t n = strlen(p->prefix);
    if (strncmp(snap, p->prefix, n) || strlen(snap + n) != sizeof(form) - 1)
        return false;
    for (size_t i = 0; i < sizeof(form) - 1; i++) {
        char c = snap[n + i];
        if (form[i] == 'D' ? !isdigit((unsigned char)c) : c != form[i])
            return false;
    }
    return true;
}

void sfs_policy_snap_name(const struct sfs_policy *p, int64_t when, char *out,
                          size_t cap)
{
    time_t t = (time_t)when;
    struct tm tm;
    char stamp[32];
    localtime_r(&t, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%d_%H%M", &tm);
    snprintf(out, cap, "%s.%.15s", p->prefix, stamp); /* years 0-9999 */
}

int64_t sfs_policy_due(const struct sfs_policy *p, int64_t now)
{
    int64_t slot = sfs_schedule_prev(&p->sched, now);
    int64_t since = p->last_run > p->created ? p->last_run : p->created;
    return slot > since ? slot : 0;
}

/* ---- records: meta "policy/" NAME -> struct sfs_policy ---- */

#define POLICY_PREFIX "policy/"
#define POLICY_PLEN 7

static MDB_val policy_key(const char *name, char *buf)
{
    size_t n = strlen(name);
    memcpy(buf, POLICY_PREFIX, POLICY_PLEN);
    memcpy(buf + POLICY_PLEN, name, n);
    MDB_val k = { POLICY_PLEN + n, buf };
    return k;
}

static int policy_put(struct sfs_store *st, MDB_txn *txn,
                      const struct sfs_policy *p, unsigned flags)
{
    char kb[POLICY_PLEN + SFS_POLICY_NAME_MAX];
    MDB_val k = policy_key(p->name, kb);
    MDB_val v = { sizeof(*p), (void *)p };
    return sfs_mdb_errno(mdb_put(txn, st->db_meta, &k, &v, flags));
}

static void policy_decode(const MDB_val *v, struct sfs_policy *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out, v->mv_data, v->mv_size < sizeof(*out) ? v->mv_size
                                                       : sizeof(*out));
    out->name[SFS_POLICY_NAME_MAX] = 0;
    out->prefix[SFS_POLICY_PREFIX_MAX] = 0;
}

int sfs_policy_get(struct sfs_store *st, MDB_txn *txn, const char *name,
                   struct sfs_policy *out)
{
    if (sfs_policy_name_valid(name))
        return -ENOENT;
    char kb[POLICY_PLEN + SFS_POLICY_NAME_MAX];
    MDB_val k = policy_key(name, kb), v;
    int rc = sfs_mdb_errno(mdb_get(txn, st->db_meta, &k, &v));
    if (!rc)
        policy_decode(&v, out);
    return rc;
}

struct policy_scan {
    sfs_policy_cb cb;
    void *arg;
};

static int policy_scan_cb(void *arg, const MDB_val *key, const MDB_val *val)
{
    struct policy_scan *ps = arg;
    struct sfs_policy p;
    policy_decode(val, &p);
    return ps->cb(ps->arg, &p);
}

int sfs_policy_foreach(struct sfs_store *st, MDB_txn *txn, sfs_policy_cb cb,
                       void *arg)
{
    struct policy_scan ps = { cb, arg };
    return sfs_table_scan_prefix(txn, st->db_meta, POLICY_PREFIX, POLICY_PLEN,
                                 policy_scan_cb, &ps);
}

static int prefix_taken_cb(void *arg, const struct sfs_policy *p)
{
    return strcmp(p->prefix, arg) ? 0 : -EEXIST;
}

int sfs_policy_create_w(struct sfs_store *st, MDB_txn *txn,
                        const struct sfs_policy *p)
{
    if (sfs_policy_name_valid(p->name) || sfs_policy_prefix_valid(p->prefix) ||
        sfs_policy_keep_valid(p->keep) || schedule_valid(&p->sched) ||
        sfs_hooks_valid(&p->hooks))
        return -EINVAL;
    int rc = sfs_policy_foreach(st, txn, prefix_taken_cb, (void *)p->prefix);
    if (rc)
        return rc;
    struct sfs_policy rec;
    memset(&rec, 0, sizeof(rec)); /* no stray bytes on disk */
    memcpy(rec.name, p->name, strlen(p->name));
    memcpy(rec.prefix, p->prefix, strlen(p->prefix));
    rec.sched = p->sched;
    rec.keep = p->keep;
    rec.created = p->created;
    rec.last_run = p->last_run;
    rec.hooks = p->hooks;
    return policy_put(st, txn, &rec, MDB_NOOVERWRITE);
}

struct prefix_other {
    const char *name, *prefix;
};

static int prefix_of_other_cb(void *arg, const struct sfs_policy *p)
{
    const struct prefix_other *po = arg;
    return strcmp(p->name, po->name) && !strcmp(p->prefix, po->prefix)
               ? -EEXIST : 0;
}

int sfs_policy_modify_w(struct sfs_store *st, MDB_txn *txn,
                        const struct sfs_policy *p, int64_t now)
{
    struct sfs_policy rec;
    int rc = sfs_policy_get(st, txn, p->name, &rec);
    if (rc)
        return rc;
    if (sfs_policy_prefix_valid(p->prefix) || sfs_policy_keep_valid(p->keep) ||
        schedule_valid(&p->sched))
        return -EINVAL;
    struct prefix_other po = { p->name, p->prefix };
    rc = sfs_policy_foreach(st, txn, prefix_of_other_cb, &po);
    if (rc)
        return rc;
    if (memcmp(&rec.sched, &p->sched, sizeof(rec.sched)))
        rec.created = now; /* the new schedule starts now */
    rec.sched = p->sched;
    rec.keep = p->keep;
    memset(rec.prefix, 0, sizeof(rec.prefix));
    memcpy(rec.prefix, p->prefix, strlen(p->prefix));
    return policy_put(st, txn, &rec, 0);
}

int sfs_policy_hooks_set_w(struct sfs_store *st, MDB_txn *txn,
                           const char *name, const struct sfs_hookspec *h)
{
    struct sfs_policy rec;
    int rc = sfs_policy_get(st, txn, name, &rec);
    if (rc)
        return rc;
    if (sfs_hooks_valid(h))
        return -EINVAL;
    memset(&rec.hooks, 0, sizeof(rec.hooks)); /* no stray bytes on disk */
    memcpy(rec.hooks.pre, h->pre, strlen(h->pre));
    memcpy(rec.hooks.post, h->post, strlen(h->post));
    rec.hooks.timeout = h->timeout;
    rec.hooks.on_failure = h->on_failure;
    return policy_put(st, txn, &rec, 0);
}

int sfs_policy_delete_w(struct sfs_store *st, MDB_txn *txn, const char *name)
{
    if (sfs_policy_name_valid(name))
        return -ENOENT;
    char kb[POLICY_PLEN + SFS_POLICY_NAME_MAX];
    MDB_val k = policy_key(name, kb);
    return sfs_mdb_errno(mdb_del(txn, st->db_meta, &k, NULL));
}

/* ---- the snapshots a policy owns ---- */

/* Room for element N of the growing array *V of *CAP elements of SIZE. */
static int reserve(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t more = *cap ? 2 * *cap : 8;
    void *q = realloc(*v, more * size);
    if (!q)
        return -ENOMEM;
    *v = q;
    *cap = more;
    return 0;
}

struct owned {
    const struct sfs_policy *p;
    struct sfs_snap_rec *snaps;
    size_t n, cap;
};

static int owned_add(void *arg, const struct sfs_snap_rec *s)
{
    struct owned *o = arg;
    if (!sfs_policy_owns(o->p, s->name))
        return 0;
    if (reserve((void **)&o->snaps, &o->cap, o->n, sizeof(*o->snaps)))
        return -ENOMEM;
    o->snaps[o->n++] = *s;
    return 0;
}

static int oldest_first(const void *a, const void *b)
{
    const struct sfs_snap_rec *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->epoch > y->epoch) - (x->epoch < y->epoch);
}

/* P's snapshots, oldest first, into *O (caller frees o->snaps). */
static int owned_collect(struct sfs_store *st, MDB_txn *txn,
                         const struct sfs_policy *p, struct owned *o)
{
    memset(o, 0, sizeof(*o));
    o->p = p;
    int rc = sfs_snap_foreach(st, txn, owned_add, o);
    if (!rc && o->n)
        qsort(o->snaps, o->n, sizeof(*o->snaps), oldest_first);
    return rc;
}

/* ---- listing ---- */

struct list_ctx {
    struct sfs_store *st;
    MDB_txn *txn;
    int64_t now;
    sfs_policy_line_cb cb;
    void *arg;
};

static int list_one(void *arg, const struct sfs_policy *p)
{
    struct list_ctx *lc = arg;
    struct sfs_policy_line l = { .p = *p };
    struct owned o;
    int rc = owned_collect(lc->st, lc->txn, p, &o);
    free(o.snaps);
    if (rc)
        return rc;
    l.snapshots = (uint32_t)o.n;
    int64_t due = sfs_policy_due(p, lc->now);
    int64_t since = p->last_run > p->created ? p->last_run : p->created;
    l.due = due != 0;
    l.next_run = due ? due
                     : sfs_schedule_next(&p->sched,
                                         since > lc->now ? since : lc->now);
    return lc->cb(lc->arg, &l);
}

int sfs_policy_list(struct sfs_store *st, MDB_txn *txn, int64_t now,
                    sfs_policy_line_cb cb, void *arg)
{
    struct list_ctx lc = { st, txn, now, cb, arg };
    return sfs_policy_foreach(st, txn, list_one, &lc);
}

void sfs_policy_line_format(const struct sfs_policy_line *l, FILE *out)
{
    char sched[SFS_SCHEDULE_TEXT_MAX];
    sfs_schedule_format(&l->p.sched, sched, sizeof(sched));
    fprintf(out, "%s\t%s\t%u\t%lld\t%lld\t%lld\t%d\t%u\t%s", l->p.name,
            sched, l->p.keep, (long long)l->p.created,
            (long long)l->p.last_run, (long long)l->next_run, l->due ? 1 : 0,
            l->snapshots, l->p.prefix);
    if (sfs_hooks_any(&l->p.hooks)) { /* after the prefix (no tab in it) */
        char word[SFS_HOOKS_WORD_MAX];
        sfs_hooks_format(&l->p.hooks, word, sizeof(word));
        fprintf(out, "\t%s", word);
    }
    fputc('\n', out);
}

int sfs_policy_line_parse(const char *line, struct sfs_policy_line *l)
{
    char name[SFS_POLICY_NAME_MAX + 1], sched[SFS_SCHEDULE_TEXT_MAX];
    long long created, last, next;
    unsigned keep, snaps;
    int due, pos = 0;
    memset(l, 0, sizeof(*l));
    /* the prefix, last, is taken verbatim: %n stops before its tab */
    if (sscanf(line, "%64[^\t]\t%31[^\t]\t%u\t%lld\t%lld\t%lld\t%d\t%u%n",
               name, sched, &keep, &created, &last, &next, &due, &snaps,
               &pos) != 8 || line[pos] != '\t')
        return -EINVAL;
    pos++;
    size_t n = strcspn(line + pos, "\t\n");
    if (n > SFS_POLICY_PREFIX_MAX || sfs_schedule_parse(sched, &l->p.sched))
        return -EINVAL;
    memcpy(l->p.prefix, line + pos, n);
    if (line[pos + n] == '\t') { /* the hooks (sfs_policy_line_format) */
        char word[SFS_HOOKS_WORD_MAX];
        size_t w = strcspn(line + pos + n + 1, "\n");
        if (w >= sizeof(word))
            return -EINVAL;
        memcpy(word, line + pos + n + 1, w);
        word[w] = 0;
        if (sfs_hooks_parse(word, &l->p.hooks))
            return -EINVAL;
    }
    memcpy(l->p.name, name, strlen(name));
    l->p.keep = keep;
    l->p.created = created;
    l->p.last_run = last;
    l->next_run = next;
    l->due = due != 0;
    l->snapshots = snaps;
    return 0;
}

/* ---- running ---- */

struct run_ctx {
    struct sfs_store *st;
    MDB_txn *txn;
    sfs_policy_report report;
    void *arg;
    int changes;
};

static int report(struct run_ctx *rc, int event, const struct sfs_policy *p,
                  const char *snap)
{
    return rc->report ? rc->report(rc->arg, event, p->name, snap) : 0;
}

/* Keep the newest KEEP of P's snapshots; delete the older unheld ones. */
static int apply_retention(struct run_ctx *rc, const struct sfs_policy *p)
{
    struct owned o;
    int err = owned_collect(rc->st, rc->txn, p, &o);
    for (size_t i = 0; !err && i + p->keep < o.n; i++) {
        err = sfs_snap_delete_w(rc->st, rc->txn, o.snaps[i].epoch);
        if (err == -EBUSY) {
            err = report(rc, SFS_POLICY_HELD, p, o.snaps[i].name);
        } else if (!err) {
            rc->changes++;
            err = report(rc, SFS_POLICY_DELETED, p, o.snaps[i].name);
        }
    }
    free(o.snaps);
    return err;
}

static int run_one(struct run_ctx *rc, struct sfs_policy *p, int64_t slot,
                   const char *labels, bool abandon)
{
    char name[SFS_NAME_MAX + 1];
    sfs_policy_snap_name(p, slot, name, sizeof(name));
    if (abandon) {
        p->last_run = slot;
        int err = policy_put(rc->st, rc->txn, p, 0);
        rc->changes++;
        return err ? err : report(rc, SFS_POLICY_ABANDONED, p, name);
    }
    int err = sfs_snap_take_labelled_w(rc->st, rc->txn, name, NULL, labels,
                                       NULL);
    if (err == -EEXIST) {
        err = report(rc, SFS_POLICY_EXISTED, p, name);
    } else if (!err) {
        rc->changes++;
        err = report(rc, SFS_POLICY_CREATED, p, name);
    }
    if (err)
        return err;
    p->last_run = slot;
    err = policy_put(rc->st, rc->txn, p, 0);
    return err ? err : apply_retention(rc, p);
}

struct policies {
    struct sfs_policy *v;
    size_t n, cap;
};

static int policies_add(void *arg, const struct sfs_policy *p)
{
    struct policies *ps = arg;
    if (reserve((void **)&ps->v, &ps->cap, ps->n, sizeof(*ps->v)))
        return -ENOMEM;
    ps->v[ps->n++] = *p;
    return 0;
}

bool sfs_policy_paused(struct sfs_store *st, MDB_txn *txn)
{
    struct sfs_recv_state rs;
    return !sfs_recv_state(st, txn, &rs) && rs.follows && !rs.writable;
}

int sfs_policy_run_due_w(struct sfs_store *st, MDB_txn *txn, int64_t now,
                         sfs_policy_report rep, void *arg)
{
    if (sfs_policy_paused(st, txn))
        return 0;
    struct policies ps = { 0 };
    struct run_ctx rc = { st, txn, rep, arg, 0 };
    /* collected first: runs write the records the cursor would walk */
    int err = sfs_policy_foreach(st, txn, policies_add, &ps);
    for (size_t i = 0; !err && i < ps.n; i++) {
        int64_t slot = sfs_policy_due(&ps.v[i], now);
        if (slot && !sfs_hooks_any(&ps.v[i].hooks))
            err = run_one(&rc, &ps.v[i], slot, NULL, false);
    }
    free(ps.v);
    return err ? err : rc.changes;
}

int sfs_policy_run_one_w(struct sfs_store *st, MDB_txn *txn, const char *name,
                         int64_t now, const char *labels, bool abandon,
                         sfs_policy_report rep, void *arg)
{
    struct sfs_policy p;
    struct run_ctx rc = { st, txn, rep, arg, 0 };
    int err = sfs_policy_get(st, txn, name, &p);
    if (err)
        return err;
    int64_t slot = sfs_policy_paused(st, txn) ? 0 : sfs_policy_due(&p, now);
    if (slot)
        err = run_one(&rc, &p, slot, labels, abandon);
    return err ? err : rc.changes;
}

struct hooked_list {
    int64_t now;
    struct sfs_policy_hooked *v;
    size_t n, cap;
};

static int hooked_add(void *arg, const struct sfs_policy *p)
{
    struct hooked_list *hl = arg;
    int64_t slot = sfs_policy_due(p, hl->now);
    if (!slot || !sfs_hooks_any(&p->hooks))
        return 0;
    if (reserve((void **)&hl->v, &hl->cap, hl->n, sizeof(*hl->v)))
        return -ENOMEM;
    hl->v[hl->n].p = *p;
    sfs_policy_snap_name(p, slot, hl->v[hl->n].snap, sizeof(hl->v[hl->n].snap));
    hl->n++;
    return 0;
}

int sfs_policy_hooked_due(struct sfs_store *st, MDB_txn *txn, int64_t now,
                          struct sfs_policy_hooked **out, size_t *n)
{
    struct hooked_list hl = { .now = now };
    int rc = sfs_policy_paused(st, txn)
                 ? 0 : sfs_policy_foreach(st, txn, hooked_add, &hl);
    if (rc) {
        free(hl.v);
        hl.v = NULL;
        hl.n = 0;
    }
    *out = hl.v;
    *n = hl.n;
    return rc;
}

struct due_arg {
    int64_t now;
    bool due;
};

static int due_cb(void *arg, const struct sfs_policy *p)
{
    struct due_arg *a = arg;
    a->due = sfs_policy_due(p, a->now) != 0;
    return a->due ? 1 : 0; /* 1 stops the walk */
}

int sfs_policy_any_due(struct sfs_store *st, MDB_txn *txn, int64_t now)
{
    struct due_arg a = { now, false };
    int rc = sfs_policy_paused(st, txn)
                 ? 0 : sfs_policy_foreach(st, txn, due_cb, &a);
    return rc ? rc : a.due;
}

/* ---- event lines ---- */

static const char *const event_words[] = {
    [SFS_POLICY_CREATED] = "created", [SFS_POLICY_EXISTED] = "existed",
    [SFS_POLICY_DELETED] = "deleted", [SFS_POLICY_HELD] = "held",
    [SFS_POLICY_ABANDONED] = "abandoned",
};

int sfs_policy_event_write(void *file, int event, const char *policy,
                           const char *snap)
{
    fprintf(file, "%s\t%s\t%s\n", event_words[event], policy, snap);
    return 0;
}

int sfs_policy_event_parse(char *line, int *event, char **policy, char **snap)
{
    char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
    if (!t2)
        return -EINVAL;
    *t1 = *t2 = 0;
    for (int e = SFS_POLICY_CREATED; e <= SFS_POLICY_ABANDONED; e++)
        if (!strcmp(line, event_words[e])) {
            *event = e;
            *policy = t1 + 1;
            *snap = t2 + 1;
            return 0;
        }
    return -EINVAL;
}
