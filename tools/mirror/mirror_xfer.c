/*
 * mirror_xfer.c - one mirror transfer: initialize, update, resync and
 * reverse resync all run here (the command layer is mirror.c).
 *
 * A transfer, holding the relationship's lock (mirror_conf.c):
 *   1. starts `receive --handshake` at the destination and reads its
 *      hello: what it follows, its newest received snapshot (the base),
 *      an unfinished receive (its resume token), what it has of its own;
 *   2. checks that the transfer applies (or, for resync, states what the
 *      destination will discard and asks);
 *   3. under the policies that mirror, takes a new source snapshot
 *      snapmirror.ID.TIME.N, so that the destination catches up to now
 *      (names: mirror_take_snapshot);
 *   4. holds every snapshot it will send (tag mirror-xfer:PID), resumes
 *      an unfinished stream at its checkpoint, then sends one stream per
 *      snapshot newer than the base that the policy transfers, each
 *      carrying the relationship's retention (sfs_retention): the
 *      destination takes each snapshot and applies retention in one
 *      transaction;
 *   5. moves the relationship's hold (mirror:ID) to the newest snapshot
 *      sent, so that the next incremental always has its base at the
 *      source, deletes the previous snapmirror snapshot, and writes the
 *      state: size, time, totals, bytes resent.
 * Guarantees: whatever stops a transfer (a signal, a lost connection, a
 * refused stream), the destination stays at a complete snapshot (the
 * receiver's), the source keeps the base it needs, the transient holds
 * are released (except after SIGKILL: `snapshot release`), and the state
 * records the error and how far the cut stream got.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mirror.h"
#include "replicate.h"
#include "scheduler.h"

struct xfer {
    struct mirror_rel *m;
    enum xfer_kind kind;
    bool yes;
    char owner[MIRROR_ID_LEN + 1]; /* of its snapmirror snapshots */
    const char *group_snap;      /* group member: the group's snapshot */
    struct mirror_state state;
    struct volume vol;           /* the source */
    struct sfs_snap_rec *snaps;  /* its snapshots, oldest first */
    size_t n, cap;
    uint64_t seq;                /* its next snapshot id, when listed */
    uint8_t src_uuid[16];
    struct sfs_retention ret;
    uint64_t *ret_epochs;
    struct dst_conn conn;
    bool conn_open;
    struct destination_info d;
    const struct mirror_adopt *adopt; /* reverse resync */
    struct sfs_store *store;     /* the source, read-only, while sending */
    char xfer_tag[64];
    char **held;                 /* names held with xfer_tag */
    size_t nheld, heldcap;
    char new_snap[SFS_NAME_MAX + 1];
    uint64_t new_snap_epoch;
};

static const char *const kind_verb[] = {
    [XFER_INIT] = "initialize", [XFER_UPDATE] = "update",
    [XFER_RESYNC] = "resync", [XFER_REVERSE] = "reverse-resync",
};

/* snapmirror.ID.*: a snapshot this relationship took at the source. */
static bool is_own_snapshot(const struct xfer *x, const char *name)
{
    char prefix[64];
    int n = snprintf(prefix, sizeof(prefix), "snapmirror.%s.", x->owner);
    return !strncmp(name, prefix, (size_t)n);
}

static void delete_at_source(struct xfer *x, const char *name)
{
    char err[512];
    char *argv[] = { "snapshot", "delete", x->m->src, (char *)name, NULL };
    if (run_self(argv, err, sizeof(err)) && !strstr(err, "no snapshot"))
        fprintf(stderr, "snapfs mirror: warning: deleting %s at the source: "
                "%s\n", name, err);
}

static void release_transient(struct xfer *x)
{
    for (size_t i = 0; i < x->nheld; i++) {
        volume_hold(&x->vol, "mirror", x->held[i], x->xfer_tag, false);
        free(x->held[i]);
    }
    x->nheld = 0;
}

/* End the transfer with MSG: state, holds, connection; exit 1. */
static void xfer_fail(struct xfer *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void xfer_fail(struct xfer *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->state.last_error, sizeof(x->state.last_error), fmt, ap);
    va_end(ap);
    if (x->store) {
        sfs_close(x->store);
        x->store = NULL;
    }
    if (x->conn_open) {
        char ignored[512];
        dst_close(&x->conn, ignored, sizeof(ignored));
        x->conn_open = false;
    }
    release_transient(x);
    if (x->new_snap_epoch && x->state.attempt_to != x->new_snap_epoch)
        delete_at_source(x, x->new_snap); /* never sent: not needed */
    mirror_state_store(x->m->id, &x->state);
    die("mirror", "%s %s: %s", kind_verb[x->kind], x->m->dst,
        x->state.last_error);
}

/* The receiving end's message without its "snapfs receive: DST: " */
static const char *remote_reason(const char *err)
{
    const char *p = strstr(err, "receive: ");
    if (p) {
        p += strlen("receive: ");
        const char *colon = strstr(p, ": ");
        if (colon)
            p = colon + 2;
    }
    return p && *p ? p : *err ? err : "the receiving end failed";
}

/* The receiving end ended early: say why in its words. */
static void fail_remote(struct xfer *x, const char *what)
{
    char err[512];
    int status = dst_close(&x->conn, err, sizeof(err));
    x->conn_open = false;
    if (!err[0])
        snprintf(err, sizeof(err), "%s (exit status %d)", what, status);
    xfer_fail(x, "%s", remote_reason(err));
}

/* ---- snapmirror names ---- */

/*
 * A transfer's snapshot is named snapmirror.OWNER.TIME.N.  TIME, local
 * time to the second by the mirror clock (scheduler_clock), is for
 * people.  N makes the name new at the sources and at every destination
 * whatever that clock says (transfers within one second, a clock set
 * back): it is the sources' next snapshot id (the highest, for a group)
 * when the transfer starts.  Ids are never reused and each such name is
 * followed by the taking of its own snapshot, which moves the id on, so
 * a source never makes one N twice; and OWNER's names reach a
 * destination only from the sources that mirror to it.  The time alone
 * repeated: a fail-over and fail-back round within a second made again,
 * at the old source, the name its first update had left at the old
 * destination.  A name taken by hand at a source moves N on.
 */
int mirror_take_snapshot(char **argv, size_t at, const char *owner,
                         uint64_t seq, char *name, size_t cap, char *err,
                         size_t errcap)
{
    int64_t now;
    int rc = scheduler_clock(&now);
    if (rc) {
        snprintf(name, cap, "snapmirror.%s", owner);
        snprintf(err, errcap, "reading the clock: %s", strerror(-rc));
        return rc;
    }
    char stamp[32];
    time_t t = (time_t)now;
    struct tm tm;
    strftime(stamp, sizeof(stamp), "%Y-%m-%d_%H%M%S", localtime_r(&t, &tm));
    for (uint64_t n = seq; n < seq + 100; n++) {
        snprintf(name, cap, "snapmirror.%s.%s.%llu", owner, stamp,
                 (unsigned long long)n);
        argv[at] = name;
        if (!run_self(argv, err, errcap))
            return 0;
        if (!strstr(err, "exists"))
            return -EIO;
    }
    snprintf(err, errcap, "every name is taken");
    return -EEXIST;
}

uint64_t mirror_source_seq(const char *src)
{
    struct volume vol;
    volume_open(&vol, "mirror", src);
    struct sfs_store *st = volume_read_store(&vol, "mirror", "read");
    uint64_t seq = st->state.next_snap_id;
    sfs_close(st);
    free(vol.store);
    free(vol.mountpoint);
    return seq;
}

/* ---- the source ---- */

static int collect_cb(void *a, const struct sfs_snap_rec *s)
{
    struct xfer *x = a;
    return array_append(&x->snaps, &x->n, &x->cap, s, sizeof(*s));
}

/* Read the source's snapshots (after a new one was taken). */
static void list_source(struct xfer *x)
{
    struct sfs_store *st = volume_read_store(&x->vol, "mirror", "read");
    memcpy(x->src_uuid, st->super.uuid, 16);
    x->seq = st->state.next_snap_id;
    MDB_txn *txn;
    x->n = 0;
    int rc = sfs_txn_begin(st, NULL, false, &txn);
    if (!rc) {
        rc = sfs_snap_foreach(st, txn, collect_cb, x);
        mdb_txn_abort(txn);
    }
    sfs_close(st);
    if (rc)
        xfer_fail(x, "reading the snapshots of %s: %s", x->m->src,
                  strerror(-rc));
}

static const struct sfs_snap_rec *source_snap(const struct xfer *x,
                                              uint64_t epoch)
{
    for (size_t i = 0; i < x->n; i++)
        if (x->snaps[i].epoch == epoch)
            return &x->snaps[i];
    return NULL;
}

/* Take snapmirror.ID.TIME.N at the source. */
static void take_source_snapshot(struct xfer *x)
{
    char err[512];
    char *argv[] = { "snapshot", "create", x->m->src, NULL, NULL };
    if (mirror_take_snapshot(argv, 3, x->owner, x->seq, x->new_snap,
                             sizeof(x->new_snap), err, sizeof(err)))
        xfer_fail(x, "taking snapshot %s of %s: %s", x->new_snap, x->m->src,
                  err);
}

/* Hold NAME for the transfer's duration. */
static void hold_for_transfer(struct xfer *x, const char *name)
{
    for (size_t i = 0; i < x->nheld; i++)
        if (!strcmp(x->held[i], name))
            return;
    int rc = volume_hold(&x->vol, "mirror", name, x->xfer_tag, true);
    if (rc == -ENOENT)
        xfer_fail(x, "snapshot %s of %s was deleted meanwhile; try again",
                  name, x->m->src);
    if (rc && rc != -EEXIST)
        xfer_fail(x, "holding snapshot %s of %s: %s", name, x->m->src,
                  snapshot_error(rc));
    char *copy = strdup(name);
    if (!copy || array_append(&x->held, &x->nheld, &x->heldcap, &copy,
                              sizeof(copy)))
        xfer_fail(x, "out of memory");
}

/* ---- retention and the plan ---- */

int mirror_policy_kind(const char *policy)
{
    return !strcmp(policy, "mirror")         ? SFS_KEEP_MIRROR
           : !strcmp(policy, "vault")        ? SFS_KEEP_VAULT
           : !strcmp(policy, "mirror-vault") ? SFS_KEEP_MIRROR_VAULT
                                             : 0;
}

int mirror_parse_keep(const char *text, struct sfs_retention *ret,
                      char *why, size_t cap)
{
    ret->nrules = 0;
    char copy[512];
    snprintf(copy, sizeof(copy), "%s", text);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        char *end = NULL;
        unsigned long keep = eq ? strtoul(eq + 1, &end, 10) : 0;
        if (!eq || eq == tok || !end || *end || keep < 1 || keep > 100000 ||
            (size_t)(eq - tok) > SFS_NAME_MAX || strchr(tok, '.')) {
            snprintf(why, cap, "'%s' is not LABEL=COUNT (a label without "
                     "dots, a count from 1)", tok);
            return -EINVAL;
        }
        if (ret->nrules == SFS_RETENTION_RULES_MAX) {
            snprintf(why, cap, "at most %d labels", SFS_RETENTION_RULES_MAX);
            return -EINVAL;
        }
        struct sfs_keep_rule *r = &ret->rules[ret->nrules++];
        snprintf(r->label, sizeof(r->label), "%.*s", (int)(eq - tok), tok);
        r->keep = (uint32_t)keep;
    }
    return 0;
}

static bool has_rule(const struct sfs_retention *ret, const char *name)
{
    size_t len = strcspn(name, ".");
    for (uint32_t i = 0; i < ret->nrules; i++)
        if (strlen(ret->rules[i].label) == len &&
            !strncmp(ret->rules[i].label, name, len))
            return true;
    return false;
}

/* Does the policy transfer source snapshot S? */
static bool transfers(const struct xfer *x, const struct sfs_snap_rec *s)
{
    if (x->ret.kind != SFS_KEEP_VAULT || !strcmp(s->name, x->new_snap))
        return true;
    return has_rule(&x->ret, s->name);
}

static void build_retention(struct xfer *x)
{
    char why[256];
    memset(&x->ret, 0, sizeof(x->ret));
    x->ret.kind = (uint8_t)mirror_policy_kind(x->m->policy);
    if (mirror_parse_keep(x->m->keep, &x->ret, why, sizeof(why)))
        xfer_fail(x, "the relationship's retention: %s", why);
    x->ret_epochs = calloc(x->n + 1, sizeof(uint64_t));
    if (!x->ret_epochs)
        xfer_fail(x, "out of memory");
    /* older snapmirror snapshots of this relationship are deleted at the
     * source after this transfer: the destination lets them go in the
     * same transaction */
    for (size_t i = 0; i < x->n && i < SFS_RETENTION_SOURCE_MAX; i++)
        if (!is_own_snapshot(x, x->snaps[i].name) ||
            !strcmp(x->snaps[i].name, x->new_snap))
            x->ret_epochs[x->ret.nsource++] = x->snaps[i].epoch;
    x->ret.source_epochs = x->ret_epochs;
}

/* ---- the destination ---- */

static void open_destination(struct xfer *x, const char *const extra[])
{
    char err[512];
    if (dst_open(x->m, extra, &x->conn, err, sizeof(err)))
        xfer_fail(x, "%s", err);
    x->conn_open = true;
    char line[2048];
    int rc = dst_read_line(&x->conn, line, sizeof(line));
    if (rc)
        fail_remote(x, "the receiving end ended before saying hello");
    if (destination_info_parse(line, &x->d))
        xfer_fail(x, "the receiving end does not speak the mirror protocol "
                  "(it said: %.80s)", line);
}

static void check_destination(struct xfer *x)
{
    const struct destination_info *d = &x->d;
    char want[33], have[33];
    uuid_format(x->src_uuid, want);
    uuid_format(d->source, have);
    if (!strcmp(d->state, "other") && x->kind != XFER_REVERSE)
        xfer_fail(x, "the destination holds data of its own; a mirror "
                  "destination is an empty volume (snapfs mkfs)");
    if (!strcmp(d->state, "empty") && x->kind == XFER_UPDATE)
        x->kind = XFER_INIT; /* an update of a new relationship is its
                                baseline, as SnapMirror's is */
    if (!strcmp(d->state, "empty") && x->kind != XFER_INIT)
        xfer_fail(x, "uninitialized: run snapfs mirror initialize %s first",
                  x->m->dst);
    if (x->kind == XFER_REVERSE) {
        uuid_format(x->adopt->old_source, want);
        uuid_format(d->uuid, have);
        if (strcmp(want, have))
            xfer_fail(x, "the destination is volume %s, not %s, the volume "
                      "%s was mirrored from", have, want, x->m->src);
        return;
    }
    if (!strcmp(d->state, "follows") || !strcmp(d->state, "broken")) {
        if (strcmp(want, have))
            xfer_fail(x, "the destination follows volume %s, not %s (%s)",
                      have, x->m->src, want);
        if (x->kind == XFER_INIT && d->newest_src_epoch)
            xfer_fail(x, "already initialized (at snapshot %s); use snapfs "
                      "mirror update", d->newest);
    }
    if (!strcmp(d->state, "broken") && x->kind != XFER_RESYNC)
        xfer_fail(x, "the destination was broken off (it is writable); "
                  "snapfs mirror resync %s makes it follow again", x->m->dst);
}

/* What a resync or reverse resync discards at the destination, into
 * OUT; false if nothing. */
static bool discards(const struct xfer *x, const char *base, char *out,
                     size_t cap)
{
    const struct destination_info *d = &x->d;
    bool newer = strcmp(d->newer, "-") != 0;
    if (!newer && !d->changed)
        return false;
    snprintf(out, cap, "%s goes back to snapshot %s; this discards %s%s%s%s",
             x->m->dst, base, newer ? "its snapshots " : "",
             newer ? d->newer : "", newer && d->changed ? " and " : "",
             d->changed ? "the changes written there since its newest "
                          "snapshot" : "");
    return true;
}

/* State what will be discarded; ask unless --yes. */
static void confirm(struct xfer *x, const char *base)
{
    char what[PATH_MAX + 2048];
    if (!discards(x, base, what, sizeof(what)))
        return;
    fprintf(stderr, "snapfs mirror %s: %s\n", kind_verb[x->kind], what);
    if (x->yes)
        return;
    if (!isatty(STDIN_FILENO))
        xfer_fail(x, "not confirmed: nothing was changed (give --yes to "
                  "discard that)");
    fprintf(stderr, "Discard it? [y/N] ");
    char answer[16] = "";
    if (!fgets(answer, sizeof(answer), stdin) ||
        (answer[0] != 'y' && answer[0] != 'Y'))
        xfer_fail(x, "not confirmed: nothing was changed");
}

/* ---- streams ---- */

struct sent {
    uint64_t bytes;          /* stream bytes sent by this transfer */
    size_t streams;
    const struct sfs_snap_rec *last;
};

static void send_one(struct xfer *x, uint64_t from, const struct sfs_snap_rec *to,
                     const struct sfs_stream_pos *resume, struct sent *sent)
{
    x->state.attempt_to = to->epoch;
    x->state.attempt_bytes = resume ? resume->bytes : 0;
    struct sfs_stream_stats stats = { 0 };
    int rc = send_stream(x->store, from, to->epoch, resume, &x->ret,
                         x->conn.in_fd, &stats);
    if (stats.bytes > x->state.attempt_bytes)
        x->state.attempt_bytes = stats.bytes;
    sent->bytes += stats.bytes - (resume ? resume->bytes : 0);
    if (rc == -EINTR || send_was_interrupted())
        xfer_fail(x, "interrupted while sending %s; the destination stays at "
                  "its last complete snapshot, and the next update resumes",
                  to->name);
    if (rc == -EPIPE)
        fail_remote(x, "the receiving end went away");
    if (rc)
        xfer_fail(x, "sending %s: %s", to->name, strerror(-rc));
    sent->streams++;
    sent->last = to;
}

/* An unfinished receive at the destination, to resume first. */
struct resume {
    uint64_t from;
    const struct sfs_snap_rec *to;
    struct sfs_stream_pos pos;
};

/* Can the unfinished receive be resumed (the source still has its
 * snapshots)?  Then hold them, count what the cut resends, fill R. */
static bool resumable(struct xfer *x, struct resume *r)
{
    if (!strcmp(x->d.token, "-"))
        return false;
    uint8_t uuid[16];
    uint64_t to;
    if (sfs_stream_token_parse(x->d.token, uuid, &r->from, &to, &r->pos) ||
        memcmp(uuid, x->src_uuid, 16))
        return false;
    r->to = source_snap(x, to);
    if (!r->to || (r->from && !source_snap(x, r->from)))
        return false; /* the receiver rolls it back when the next one comes */
    if (x->state.attempt_to == to && x->state.attempt_bytes > r->pos.bytes)
        x->state.resent_bytes += x->state.attempt_bytes - r->pos.bytes;
    if (r->from)
        hold_for_transfer(x, source_snap(x, r->from)->name);
    hold_for_transfer(x, r->to->name);
    return true;
}

/* The snapshots to send after BASE (0: a baseline), oldest first. */
static size_t plan(struct xfer *x, uint64_t base, size_t *first)
{
    size_t count = 0, start = x->n;
    for (size_t i = 0; i < x->n; i++) {
        if (x->snaps[i].epoch <= base || !transfers(x, &x->snaps[i]))
            continue;
        if (start == x->n)
            start = i;
        count++;
    }
    if (!base && x->ret.kind == SFS_KEEP_VAULT && count > 1) {
        /* a vault's baseline is its newest labelled snapshot */
        for (size_t i = x->n; i-- > 0;)
            if (transfers(x, &x->snaps[i])) {
                start = i;
                break;
            }
        count = 1;
    }
    *first = start;
    return count;
}

/* Send the resumed stream R (if any), then one stream per snapshot the
 * plan after BASE holds, from one read-only opening of the source. */
static void send_all(struct xfer *x, const struct resume *r, uint64_t base,
                     struct sent *sent)
{
    if (r)
        base = r->to->epoch;
    size_t first;
    size_t count = plan(x, base, &first);
    if (base && !source_snap(x, base))
        xfer_fail(x, "the source no longer has snapshot %s, the newest the "
                  "destination holds: there is no common snapshot (make a "
                  "new destination and initialize it)", x->d.newest);
    if (!base && !count)
        xfer_fail(x, "%s has no snapshot that policy %s transfers (labels "
                  "%s)", x->m->src, x->m->policy, x->m->keep);
    if (base)
        hold_for_transfer(x, source_snap(x, base)->name);
    for (size_t i = first, left = count; left; i++)
        if (x->snaps[i].epoch > base && transfers(x, &x->snaps[i])) {
            hold_for_transfer(x, x->snaps[i].name);
            left--;
        }
    x->store = volume_read_store(&x->vol, "mirror", "read");
    if (r)
        send_one(x, r->from, r->to, &r->pos, sent);
    uint64_t prev = base;
    for (size_t i = first, left = count; left; i++) {
        if (x->snaps[i].epoch <= base || !transfers(x, &x->snaps[i]))
            continue;
        send_one(x, prev, &x->snaps[i], NULL, sent);
        prev = x->snaps[i].epoch;
        left--;
    }
    sfs_close(x->store);
    x->store = NULL;
}

/* Read the "ok" lines to the end and wait for the receiving end. */
static size_t finish_destination(struct xfer *x, uint64_t *pruned)
{
    dst_end_input(&x->conn);
    char line[1024];
    size_t oks = 0;
    while (!dst_read_line(&x->conn, line, sizeof(line))) {
        char name[SFS_NAME_MAX + 1];
        unsigned long long bytes, p;
        if (sscanf(line, "ok %255s %llu %llu", name, &bytes, &p) == 3) {
            oks++;
            *pruned += p;
        }
    }
    char err[512];
    int status = dst_close(&x->conn, err, sizeof(err));
    x->conn_open = false;
    if (status)
        xfer_fail(x, "%s", remote_reason(err));
    return oks;
}

/* ---- after ---- */

/* The relationship's hold moves to NEWEST; its older snapmirror
 * snapshots go.  Problems here are warnings: the data is across. */
static void move_base(struct xfer *x, const struct sfs_snap_rec *newest)
{
    char tag[64];
    snprintf(tag, sizeof(tag), "mirror:%s", x->m->id);
    int rc = volume_hold(&x->vol, "mirror", newest->name, tag, true);
    if (rc && rc != -EEXIST)
        fprintf(stderr, "snapfs mirror: warning: holding %s at the source: "
                "%s\n", newest->name, snapshot_error(rc));
    if (x->state.held[0] && strcmp(x->state.held, newest->name))
        volume_hold(&x->vol, "mirror", x->state.held, tag, false);
    snprintf(x->state.held, sizeof(x->state.held), "%s", newest->name);
    for (size_t i = 0; i < x->n; i++)
        if (is_own_snapshot(x, x->snaps[i].name) &&
            strcmp(x->snaps[i].name, newest->name))
            delete_at_source(x, x->snaps[i].name);
}

static void report(struct xfer *x, const struct sent *sent, double seconds,
                   uint64_t pruned)
{
    char size[32];
    format_bytes(sent->bytes, size, sizeof(size));
    if (!sent->streams) {
        printf("snapfs mirror: %s: up to date at %s\n", x->m->dst,
               x->d.newest);
        return;
    }
    printf("snapfs mirror: %s: %s to %s: %zu snapshot%s, %s in %.1f s "
           "(%.1f MB/s)", x->m->dst,
           x->kind == XFER_INIT ? "initialized" : x->kind == XFER_UPDATE
               ? "updated" : "resynchronized", sent->last->name,
           sent->streams, sent->streams == 1 ? "" : "s", size, seconds,
           seconds > 0 ? (double)sent->bytes / seconds / 1e6 : 0.0);
    if (pruned)
        printf(", %llu older deleted by retention",
               (unsigned long long)pruned);
    printf("\n");
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The group's snapshot, taken before the transfer: the newest to send. */
static void find_group_snapshot(struct xfer *x)
{
    snprintf(x->new_snap, sizeof(x->new_snap), "%s", x->group_snap);
    for (size_t i = 0; i < x->n; i++)
        if (!strcmp(x->snaps[i].name, x->group_snap))
            return; /* new_snap_epoch stays 0: the group's to delete */
    xfer_fail(x, "the group's snapshot %s is missing at %s", x->group_snap,
              x->m->src);
}

int mirror_transfer(struct mirror_rel *m, enum xfer_kind kind,
                    const struct xfer_opts *o)
{
    static struct xfer x; /* static: reachable when a check dies */
    memset(&x, 0, sizeof(x));
    x.m = m;
    x.kind = kind;
    x.yes = o->yes;
    x.adopt = o->adopt;
    x.group_snap = o->group_snap;
    mirror_snap_owner(m, x.owner);
    const struct mirror_adopt *adopt = o->adopt;
    snprintf(x.xfer_tag, sizeof(x.xfer_tag), "mirror-xfer:%d", (int)getpid());
    mirror_state_load(m->id, &x.state);
    volume_open(&x.vol, "mirror", m->src);
    signal(SIGPIPE, SIG_IGN);
    send_catch_interrupts();
    list_source(&x);

    char epoch_arg[32];
    snprintf(epoch_arg, sizeof(epoch_arg), "%llu",
             (unsigned long long)(adopt ? adopt->epoch : 0));
    const char *resync[] = { "--resync", NULL, NULL };
    const char *adopt_args[] = { "--adopt", epoch_arg, NULL };
    const char *hold_back[] = { "--hold-back", NULL };
    if (x.group_snap)
        resync[1] = "--hold-back";
    open_destination(&x, kind == XFER_RESYNC    ? resync
                         : kind == XFER_REVERSE ? adopt_args
                         : x.group_snap         ? hold_back
                                                : NULL);
    check_destination(&x);
    if (kind == XFER_RESYNC)
        confirm(&x, x.d.newest);
    if (kind == XFER_REVERSE) {
        const struct sfs_snap_rec *b = source_snap(&x, adopt->base);
        if (!b)
            xfer_fail(&x, "%s no longer has the snapshot it received last",
                      m->src);
        confirm(&x, b->name);
    }

    double t0 = now_seconds();
    time_t start = time(NULL);
    if (x.group_snap) {
        find_group_snapshot(&x);
    } else if (mirror_policy_kind(m->policy) != SFS_KEEP_VAULT ||
               kind == XFER_RESYNC || kind == XFER_REVERSE) {
        take_source_snapshot(&x);
        list_source(&x);
        for (size_t i = 0; i < x.n; i++)
            if (!strcmp(x.snaps[i].name, x.new_snap))
                x.new_snap_epoch = x.snaps[i].epoch;
    }
    build_retention(&x);
    struct sent sent = { 0 };
    struct resume r;
    bool resume = kind != XFER_REVERSE && resumable(&x, &r);
    send_all(&x, resume ? &r : NULL,
             kind == XFER_REVERSE ? adopt->base : x.d.newest_src_epoch, &sent);
    uint64_t pruned = 0;
    finish_destination(&x, &pruned);
    release_transient(&x);

    double seconds = now_seconds() - t0;
    if (sent.last) {
        if (!x.group_snap)
            move_base(&x, sent.last); /* a group's moves when published */
        snprintf(x.state.newest, sizeof(x.state.newest), "%s", sent.last->name);
        x.state.newest_ctime = sent.last->ctime_sec;
    }
    x.state.last_start = start;
    x.state.last_end = time(NULL);
    x.state.last_seconds = seconds;
    x.state.last_bytes = sent.bytes;
    x.state.total_bytes += sent.bytes;
    x.state.transfers++;
    x.state.attempt_to = x.state.attempt_bytes = 0;
    x.state.last_error[0] = 0;
    int rc = mirror_state_store(m->id, &x.state);
    if (rc)
        fprintf(stderr, "snapfs mirror: warning: recording the transfer: "
                "%s\n", strerror(-rc));
    char cerr[PATH_MAX + 128];
    if (m->with_config && mirror_config_carry(m, cerr, sizeof(cerr)))
        fprintf(stderr, "snapfs mirror: warning: %s (the data was "
                "transferred)\n", cerr);
    report(&x, &sent, seconds, pruned);
    free(x.snaps);
    free(x.ret_epochs);
    free(x.held);
    free(x.vol.store);
    free(x.vol.mountpoint);
    return 0;
}

/* Publish at the destination: `receive --publish`, no stream. */
static void publish_destination(struct xfer *x)
{
    const char *publish[] = { "--publish", NULL };
    open_destination(x, publish);
    uint64_t pruned = 0;
    finish_destination(x, &pruned);
}

void mirror_publish(struct mirror_rel *m, const char *newest)
{
    static struct xfer x; /* static: reachable when a check dies */
    memset(&x, 0, sizeof(x));
    x.m = m;
    x.kind = XFER_UPDATE;
    mirror_snap_owner(m, x.owner);
    mirror_state_load(m->id, &x.state);
    volume_open(&x.vol, "mirror", m->src);
    signal(SIGPIPE, SIG_IGN);
    list_source(&x);
    publish_destination(&x);
    const struct sfs_snap_rec *s = NULL;
    for (size_t i = 0; i < x.n && !s; i++)
        if (!strcmp(x.snaps[i].name, newest))
            s = &x.snaps[i];
    if (s)
        move_base(&x, s);
    x.state.to_publish = false;
    x.state.last_error[0] = 0;
    int rc = mirror_state_store(m->id, &x.state);
    if (rc)
        fprintf(stderr, "snapfs mirror: warning: recording the transfer: "
                "%s\n", strerror(-rc));
    free(x.snaps);
    free(x.vol.store);
    free(x.vol.mountpoint);
}

void mirror_release_source(struct mirror_rel *m)
{
    static struct xfer x; /* static: reachable when a check dies */
    memset(&x, 0, sizeof(x));
    x.m = m;
    mirror_snap_owner(m, x.owner);
    mirror_state_load(m->id, &x.state);
    volume_open(&x.vol, "mirror", m->src);
    list_source(&x);
    char tag[64];
    snprintf(tag, sizeof(tag), "mirror:%s", m->id);
    if (x.state.held[0])
        volume_hold(&x.vol, "mirror", x.state.held, tag, false);
    for (size_t i = 0; i < x.n; i++)
        if (is_own_snapshot(&x, x.snaps[i].name))
            delete_at_source(&x, x.snaps[i].name);
    free(x.snaps);
    free(x.vol.store);
    free(x.vol.mountpoint);
}
