/*
 * receive.c - replication streams received into a mounted volume: the
 * daemon's side of `snapfs receive DST` when DST is mounted (the command
 * passes its stdin over the control socket, control.c).
 *
 * Guarantees, the same as an offline receive's (tools/send.c) plus those
 * a mounted volume owes its clients:
 *   - the stream is applied with the store's receiver (store/stream.c) in
 *     nested transactions of the daemon's batch, one per checkpoint of
 *     the stream, each holding the volume lock only while it applies
 *     bytes already read: a slow or stalled sender never holds the lock;
 *   - the batch commits as any batch does (every 2 s, at 32 MiB, the
 *     offline receive's RECV_BATCH_BYTES too), always between two
 *     checkpoints, so a kill of the daemon leaves the destination at its
 *     newest complete snapshot with a resume token for the rest;
 *   - clients keep reading the published view (the newest snapshot,
 *     daemon.c) while the live tree fills; when a snapshot is complete it
 *     is committed and synced, the published view moves to it, and the
 *     kernel drops the names, attributes and pages it cached of the old
 *     one (snapdir.c), so clients see the old snapshot, consistently,
 *     until the switch and the new one after it;
 *   - a sender that goes away, a client that goes away and an unmount all
 *     stop the receive at its next read or step, keeping its last
 *     checkpoint; the daemon stays healthy.
 *
 * THEORY: READING OUTSIDE THE LOCK
 *
 * sfs_recv_step_w reads the stream through a callback while it applies
 * it, inside the caller's transaction, that is under the volume lock.  A
 * read from a pipe there could wait for as long as the sender likes, with
 * every FUSE request queued behind it.  So the stream is read ahead into
 * a buffer outside the lock: before each step the buffer is filled until
 * it holds the frames up to and including the next checkpoint or end
 * frame (the frame layout, [type u8 | flags u8 | 0 u16 | length u32]
 * payload [crc32c u32], is stream.c's), and the step, which stops at the
 * first checkpoint, then reads only memory.  The sender puts a checkpoint
 * at least every 8 MiB of stream and a frame is at most 4 MiB, so
 * RECV_BUFFER_BYTES holds any step of a well-formed stream.  A stream
 * whose checkpoints are further apart (damaged, or not ours) still gets
 * the rest of its step read under the lock, but each such step may wait
 * RECV_STALL_MS in all before it fails with ETIMEDOUT; the destination
 * keeps its last checkpoint.
 *
 * The header of each stream (sfs_recv_new) is read outside any
 * transaction, so a sender that pauses between the streams of `-I` (or
 * waits for a mirror's acknowledgement) holds nothing.
 *
 * What may run meanwhile: FUSE requests between steps; other control
 * requests on the control thread (each change waits for the step in
 * progress, through control.c's change lock); a second receive, an abort
 * and changes that would write the live tree or take a snapshot under
 * the receive are refused with EINPROGRESS (control.c).
 */
#define _GNU_SOURCE
#include "receive.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control.h"

#define RECV_BUFFER_BYTES (16u << 20)
#define RECV_STALL_MS 5000
#define FRAME_HDR 8
#define FRAME_CRC 4
#define FRAME_CHECKPOINT 'C'
#define FRAME_END 'Z'

/* ---- the stream, read ahead outside the lock ---- */

struct stream_in {
    int fd;             /* the stream: the client's stdin */
    int conn;           /* the client: its hangup cancels the receive */
    int cancel_fd;      /* readable once the daemon stops */
    uint8_t *buf;
    size_t pos, end;    /* unread bytes: buf[pos, end) */
    bool eof;
    bool bounded;       /* inside a step (under the lock): wait no longer
                         * than until deadline_ms */
    uint64_t deadline_ms;
};

/* Has the client gone, or the daemon begun to stop?  0 or an errno. */
static int check_events(struct pollfd *p)
{
    if (p[2].revents)
        return -ECANCELED;
    if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR))
        return -ECONNRESET;
    return 0;
}

static int wait_ms(const struct stream_in *in)
{
    if (!in->bounded)
        return -1;
    uint64_t now = vol_now_ms();
    return now >= in->deadline_ms ? 0 : (int)(in->deadline_ms - now);
}

/* Read what the stream has now into the buffer (waiting for some). */
static int fill_once(struct stream_in *in)
{
    if (in->pos > 0 && (in->pos == in->end || in->end == RECV_BUFFER_BYTES)) {
        memmove(in->buf, in->buf + in->pos, in->end - in->pos);
        in->end -= in->pos;
        in->pos = 0;
    }
    if (in->end == RECV_BUFFER_BYTES)
        return -ENOBUFS; /* callers read or scan what it holds first */
    struct pollfd p[3] = { { .fd = in->fd, .events = POLLIN },
                           { .fd = in->conn, .events = POLLRDHUP },
                           { .fd = in->cancel_fd, .events = POLLIN } };
    int n = poll(p, 3, wait_ms(in));
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    if (n == 0)
        return -ETIMEDOUT;
    int rc = check_events(p);
    if (rc || !p[0].revents)
        return rc;
    ssize_t got = read(in->fd, in->buf + in->end, RECV_BUFFER_BYTES - in->end);
    if (got < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : -errno;
    in->eof = got == 0;
    in->end += (size_t)got;
    return 0;
}

/* sfs_stream_read_fn: exactly LEN bytes, from the buffer first. */
static int stream_read(void *arg, void *out, size_t len)
{
    struct stream_in *in = arg;
    size_t got = 0;
    while (got < len) {
        if (in->pos == in->end) {
            if (in->eof)
                return got ? -EPIPE : -ENODATA;
            int rc = fill_once(in);
            if (rc)
                return rc;
            continue;
        }
        size_t take = in->end - in->pos;
        if (take > len - got)
            take = len - got;
        memcpy((uint8_t *)out + got, in->buf + in->pos, take);
        in->pos += take;
        got += take;
    }
    return 0;
}

/* Does the buffer hold every frame up to a checkpoint or the end? */
static bool step_buffered(const struct stream_in *in)
{
    size_t at = in->pos;
    while (in->end - at >= FRAME_HDR) {
        const uint8_t *h = in->buf + at;
        size_t len = (size_t)h[4] << 24 | (size_t)h[5] << 16 |
                     (size_t)h[6] << 8 | h[7];
        if (len > RECV_BUFFER_BYTES || in->end - at < FRAME_HDR + len + FRAME_CRC)
            return false;
        if (h[0] == FRAME_CHECKPOINT || h[0] == FRAME_END)
            return true;
        at += FRAME_HDR + len + FRAME_CRC;
    }
    return false;
}

/* Outside the lock: read until the next step is in memory, the buffer is
 * full, or the stream ends (see THEORY). */
static int read_ahead(struct stream_in *in)
{
    while (!in->eof && !step_buffered(in) &&
           !(in->pos == 0 && in->end == RECV_BUFFER_BYTES)) {
        int rc = fill_once(in);
        if (rc)
            return rc;
    }
    return 0;
}

/* Between steps: stop if the client went away or the daemon stops. */
static int still_wanted(const struct stream_in *in)
{
    struct pollfd p[3] = { { .fd = -1 },
                           { .fd = in->conn, .events = POLLRDHUP },
                           { .fd = in->cancel_fd, .events = POLLIN } };
    int n = poll(p, 3, 0);
    return n < 0 ? (errno == EINTR ? 0 : -errno) : check_events(p);
}

/* ---- applying, one nested transaction per step ---- */

struct session {
    struct recv_slot *slot;
    struct vol *v;
    int conn;
    struct stream_in in;
    struct sfs_codec_ctx *cc;
    struct sfs_receiver *r;
    uint64_t flags;     /* RECV_FLAG_* */
};

/* A stream is applied to the live tree behind a published snapshot; a
 * volume that serves its live tree (it follows nothing yet, or was broken
 * off) would show clients a half-received tree.  The store refuses a
 * broken-off one first (ESTALE, "resync first"). */
static int begin_fn(struct session *s, MDB_txn *txn)
{
    int rc = sfs_recv_begin_w(s->v->st, txn, s->r);
    return !rc && s->v->live_view == SFS_VIEW_LIVE ? -EPERM : rc;
}

static int publish_fn(struct session *s, MDB_txn *txn)
{
    return sfs_recv_publish_w(s->v->st, txn);
}

static int step_fn(struct session *s, MDB_txn *txn)
{
    return sfs_recv_step_w(s->v->st, txn, s->r, s->cc, 1);
}

static uint64_t stream_bytes(const struct session *s)
{
    struct sfs_stream_stats st = { 0 };
    if (s->r)
        sfs_recv_stats(s->r, &st);
    return st.bytes;
}

/* FN in one nested transaction of the batch, after the control change in
 * progress: kept when FN returns >= 0, with the stream bytes it read
 * counted toward the batch's commit. */
static int in_batch(struct session *s, int (*fn)(struct session *, MDB_txn *))
{
    control_changes_lock();
    MDB_txn *txn;
    uint64_t before = stream_bytes(s);
    int rc = vol_change_begin(s->v, &txn);
    if (!rc) {
        vol_xattrs_changed(s->v); /* received records may set them */
        s->in.bounded = true;
        s->in.deadline_ms = vol_now_ms() + RECV_STALL_MS;
        rc = fn(s, txn);
        s->in.bounded = false;
        int end = vol_change_end(s->v, rc < 0 ? rc : 0,
                                 stream_bytes(s) - before);
        if (rc >= 0 && end)
            rc = end;
    }
    control_changes_unlock();
    return rc;
}

/* The snapshot is taken: make it durable, then publish it. */
static int publish(struct vol *v)
{
    int rc = vol_sync(v);
    if (!rc && v->notify_changed)
        v->notify_changed(v, VOL_PUBLISH_NEWEST | VOL_CHANGED_SNAPSHOTS |
                             VOL_CHANGED_LIVE);
    return rc;
}

/* Apply the stream whose header S->r holds: 0 once it is published (or,
 * held back, taken). */
static int apply_stream(struct session *s)
{
    sfs_recv_hold_back(s->r, s->flags & RECV_FLAG_HOLD_BACK);
    int rc = in_batch(s, begin_fn);
    while (rc == 0) {
        rc = still_wanted(&s->in);
        if (!rc)
            rc = read_ahead(&s->in);
        if (!rc)
            rc = in_batch(s, step_fn);
    }
    return rc == 1 ? publish(s->v) : rc;
}

/* ---- replies (protocol in control.c) ---- */

/* A client that went away learns nothing more; the receive stops at its
 * next step (still_wanted). */
static void reply(struct session *s, const char *line, size_t len)
{
    (void)!send(s->conn, line, len, MSG_NOSIGNAL);
}

static void put_hex(char *out, const char *name)
{
    if (!*name) {
        strcpy(out, "-");
        return;
    }
    for (; *name; name++, out += 2)
        sprintf(out, "%02x", (unsigned char)*name);
}

/* "received TO FROM BYTES RECORDS KILLS", names in hex ("-": none). */
static void report_received(struct session *s)
{
    const struct sfs_stream_hdr *h = sfs_recv_header(s->r);
    struct sfs_stream_stats st;
    sfs_recv_stats(s->r, &st);
    char to[2 * SFS_NAME_MAX + 2], from[2 * SFS_NAME_MAX + 2];
    put_hex(to, h->to_name);
    put_hex(from, h->from_epoch ? h->from_name : "");
    char line[4 * SFS_NAME_MAX + 128];
    int n = snprintf(line, sizeof(line), "received\t%s\t%s\t%llu\t%llu\t%llu\n",
                     to, from, (unsigned long long)st.bytes,
                     (unsigned long long)st.records,
                     (unsigned long long)st.kills);
    reply(s, line, (size_t)n);
}

/* "why TEXT": the store's reason for refusing the stream, on one line. */
static void report_why(struct session *s)
{
    const char *why = sfs_recv_why(s->r);
    if (!why)
        return;
    char line[512];
    int n = snprintf(line, sizeof(line), "why\t%s\n", why);
    if (n >= (int)sizeof(line))
        n = (int)sizeof(line) - 1;
    for (int i = 4; i < n - 1; i++)
        if (line[i] == '\n' || line[i] == '\t')
            line[i] = ' ';
    reply(s, line, (size_t)n);
}

/* ---- the session ---- */

static int receive_streams(struct session *s)
{
    /* a volume serving its live tree (broken off) holds nothing back */
    if (s->flags & RECV_FLAG_PUBLISH && s->v->live_view != SFS_VIEW_LIVE) {
        int rc = in_batch(s, publish_fn);
        if (!rc)
            rc = publish(s->v);
        if (rc)
            return rc;
    }
    for (int count = 0;; count++) {
        int rc = sfs_recv_new(stream_read, &s->in, &s->r);
        if (rc == -ENODATA && (count > 0 || s->flags & RECV_FLAG_ANY_COUNT))
            return 0;
        if (!rc)
            rc = apply_stream(s);
        if (rc) {
            report_why(s);
            return rc;
        }
        report_received(s);
        sfs_recv_free(s->r);
        s->r = NULL;
    }
}

static void session_free(struct session *s)
{
    sfs_recv_free(s->r);
    sfs_codec_ctx_free(s->cc);
    free(s->in.buf);
    if (s->in.fd >= 0)
        close(s->in.fd);
    if (s->conn >= 0)
        close(s->conn);
    free(s);
}

static void *receive_main(void *arg)
{
    struct session *s = arg;
    int rc = receive_streams(s);
    /* Whatever happened, the last checkpoint is durable, so that a resume
     * token read now matches what a restarted daemon would hold. */
    int sync = vol_sync(s->v);
    close(s->in.fd); /* the sender sees EPIPE at once */
    s->in.fd = -1;
    control_reply_status(s->conn, rc ? rc : sync);
    struct recv_slot *slot = s->slot;
    __atomic_store_n(&s->v->receiving, false, __ATOMIC_RELEASE);
    session_free(s);
    pthread_mutex_lock(&slot->lock);
    slot->busy = false;
    pthread_mutex_unlock(&slot->lock);
    return NULL;
}

static int check_options(uint64_t flags, const uint64_t *nums, int nnums)
{
    (void)nums;
    const uint64_t known = RECV_FLAG_HOLD_BACK | RECV_FLAG_PUBLISH |
                           RECV_FLAG_ANY_COUNT;
    return flags & ~known || nnums ? -EINVAL : 0;
}

int recv_start(struct recv_slot *sl, struct vol *v, int conn, int in_fd,
               uint64_t flags, const uint64_t *nums, int nnums)
{
    int rc = check_options(flags, nums, nnums);
    if (rc)
        return rc;
    struct session *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->slot = sl;
    s->v = v;
    s->conn = conn;
    s->flags = flags;
    s->in.fd = in_fd;
    s->in.conn = conn;
    s->in.cancel_fd = sl->cancel_fd;
    s->in.buf = malloc(RECV_BUFFER_BYTES);
    s->cc = sfs_codec_ctx_new();
    if (!s->in.buf || !s->cc) {
        free(s->in.buf);
        sfs_codec_ctx_free(s->cc);
        free(s);
        return -ENOMEM;
    }
    pthread_mutex_lock(&sl->lock);
    rc = sl->busy ? -EINPROGRESS : 0;
    if (!rc && sl->joinable) {
        pthread_join(sl->thread, NULL); /* ended: it cleared busy */
        sl->joinable = false;
    }
    if (!rc) {
        __atomic_store_n(&v->receiving, true, __ATOMIC_RELEASE);
        rc = -pthread_create(&sl->thread, NULL, receive_main, s);
    }
    if (!rc)
        sl->busy = sl->joinable = true;
    else if (rc != -EINPROGRESS)
        __atomic_store_n(&v->receiving, false, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&sl->lock);
    if (rc) {
        s->in.fd = s->conn = -1; /* the caller keeps them */
        session_free(s);
    }
    return rc;
}

int recv_slot_init(struct recv_slot *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->cancel_fd = eventfd(0, EFD_CLOEXEC);
    return s->cancel_fd < 0 ? -errno : 0;
}

bool recv_slot_busy(struct recv_slot *s)
{
    pthread_mutex_lock(&s->lock);
    bool busy = s->busy;
    pthread_mutex_unlock(&s->lock);
    return busy;
}

void recv_slot_destroy(struct recv_slot *s)
{
    uint64_t one = 1;
    if (s->cancel_fd >= 0 && write(s->cancel_fd, &one, sizeof(one)) < 0)
        perror("snapfs: stopping a receive");
    pthread_mutex_lock(&s->lock);
    bool join = s->joinable;
    s->joinable = false;
    pthread_mutex_unlock(&s->lock);
    if (join)
        pthread_join(s->thread, NULL);
    if (s->cancel_fd >= 0)
        close(s->cancel_fd);
    s->cancel_fd = -1;
    pthread_mutex_destroy(&s->lock);
}
