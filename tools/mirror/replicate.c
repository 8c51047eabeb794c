/*
 * replicate.c - the parts of replication that `send`, `receive` and the
 * mirror engine share: file descriptors as stream ends (interrupted by
 * SIGINT and SIGTERM), sending one whole stream under renewed read
 * transactions, and the one-line description of a destination that
 * `receive --handshake` prints first (replicate.h has its format).
 *
 * Guarantees: a send stopped by a signal or a closed reader returns a
 * negative errno and has written only whole frames before the failing
 * write; the description line parses back to what was printed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "replicate.h"
#include "store.h"

#define SEND_STEP_RECORDS 4096

/* ---- file descriptors as stream ends ---- */

/* SIGINT or SIGTERM: send stops at its next write and releases its holds. */
static volatile sig_atomic_t send_interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    send_interrupted = 1;
}

void send_catch_interrupts(void)
{
    struct sigaction sa = { .sa_handler = on_interrupt };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool send_was_interrupted(void)
{
    return send_interrupted;
}

int fd_write_all(void *arg, const void *buf, size_t len)
{
    int fd = *(int *)arg;
    const char *p = buf;
    while (len) {
        if (send_interrupted)
            return -EINTR;
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fd_reader_read(void *arg, void *buf, size_t len)
{
    struct fd_reader *r = arg;
    size_t got = 0;
    char *out = buf;
    while (got < len) {
        if (r->pos == r->end) {
            ssize_t n = read(r->fd, r->buf, sizeof(r->buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return -errno;
            if (n == 0)
                return got ? -EPIPE : -ENODATA;
            r->pos = 0;
            r->end = (size_t)n;
        }
        size_t take = r->end - r->pos;
        if (take > len - got)
            take = len - got;
        memcpy(out + got, r->buf + r->pos, take);
        r->pos += take;
        got += take;
    }
    return 0;
}

/* Send one stream; 0 or a negative errno (-EINTR: interrupted). */
int send_stream(struct sfs_store *st, uint64_t from, uint64_t to,
                const struct sfs_stream_pos *resume,
                const struct sfs_retention *ret, int fd,
                struct sfs_stream_stats *stats)
{
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, false, &txn);
    if (rc)
        return rc;
    struct sfs_sender *s = NULL;
    rc = sfs_send_new(st, txn, from, to, resume, fd_write_all, &fd, &s);
    if (!rc)
        rc = sfs_send_set_retention(s, ret);
    while (!rc) {
        rc = sfs_send_step(s, txn, SEND_STEP_RECORDS);
        if (rc)
            break;
        mdb_txn_reset(txn);
        rc = sfs_mdb_errno(mdb_txn_renew(txn));
    }
    mdb_txn_abort(txn);
    if (s && stats)
        sfs_send_stats(s, stats);
    sfs_send_free(s);
    return rc < 0 ? rc : 0;
}

/* ---- the destination's description (--handshake) ---- */

void uuid_format(const uint8_t uuid[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        sprintf(out + 2 * i, "%02x", uuid[i]);
}

int uuid_parse(const char *text, uint8_t uuid[16])
{
    if (strlen(text) != 32)
        return -EINVAL;
    for (int i = 0; i < 16; i++) {
        unsigned v;
        if (sscanf(text + 2 * i, "%2x", &v) != 1)
            return -EINVAL;
        uuid[i] = (uint8_t)v;
    }
    return 0;
}

struct received_walk {
    struct sfs_store *st;
    MDB_txn *txn;
    struct destination_info *d;
    uint64_t after;   /* list the snapshots after this epoch (0: see below) */
};

static void note_newer(struct destination_info *d, const char *name)
{
    size_t len = strlen(d->newer);
    if (len + strlen(name) + 2 < sizeof(d->newer))
        snprintf(d->newer + len, sizeof(d->newer) - len, "%s%s",
                 len ? "," : "", name);
}

/* In epoch order: note the newest received snapshot; list the ones after. */
static int received_cb(void *a, const struct sfs_snap_rec *s)
{
    struct received_walk *w = a;
    uint64_t src;
    int rc = sfs_recv_source_epoch(w->st, w->txn, s->epoch, &src);
    if (rc && rc != -ENOENT)
        return rc;
    if (!rc) {
        w->d->newest_src_epoch = src;
        snprintf(w->d->newest, sizeof(w->d->newest), "%s", s->name);
        if (!w->after)
            w->d->newer[0] = 0;
    }
    if (w->after ? s->epoch > w->after : rc == -ENOENT)
        note_newer(w->d, s->name);
    return 0;
}

int destination_info_read(struct sfs_store *st, MDB_txn *txn,
                          uint64_t after_epoch, struct destination_info *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->uuid, st->super.uuid, 16);
    out->block_size = st->super.block_size;
    struct sfs_recv_state rs;
    int rc = sfs_recv_state(st, txn, &rs);
    if (rc)
        return rc;
    memcpy(out->source, rs.src_uuid, 16);
    snprintf(out->newest, sizeof(out->newest), "-");
    snprintf(out->token, sizeof(out->token), "-");
    if (rs.partial)
        sfs_stream_token_format(&rs, out->token);
    struct received_walk w = { st, txn, out, after_epoch };
    rc = sfs_snap_foreach(st, txn, received_cb, &w);
    if (rc)
        return rc;
    if (!out->newer[0])
        snprintf(out->newer, sizeof(out->newer), "-");
    out->changed = rs.partial ? 0 : sfs_live_changed(st, txn);
    if (out->changed < 0)
        return out->changed;
    int empty = sfs_volume_is_empty(st, txn);
    if (empty < 0)
        return empty;
    const char *state = rs.follows ? (rs.writable ? "broken" : "follows")
                        : empty || rs.partial ? "empty" : "other";
    snprintf(out->state, sizeof(out->state), "%s", state);
    return 0;
}

void destination_info_print(const struct destination_info *d, FILE *out)
{
    char u[33], s[33];
    uuid_format(d->uuid, u);
    uuid_format(d->source, s);
    fprintf(out, "snapfs-receive 1 %s %s %s %llu %s %s %u %s %d\n", u,
            d->state, s, (unsigned long long)d->newest_src_epoch, d->newest,
            d->token, d->block_size, d->newer, d->changed);
}

int destination_info_parse(const char *line, struct destination_info *d)
{
    char u[64], s[64];
    unsigned long long epoch;
    memset(d, 0, sizeof(*d));
    if (sscanf(line, "snapfs-receive 1 %63s %7s %63s %llu %255s %1023s %u "
               "%1023s %d", u, d->state, s, &epoch, d->newest, d->token,
               &d->block_size, d->newer, &d->changed) != 9 ||
        uuid_parse(u, d->uuid) || uuid_parse(s, d->source))
        return -EPROTO;
    d->newest_src_epoch = epoch;
    return 0;
}
