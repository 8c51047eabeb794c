/*
 * send.c - `snapfs send` and `snapfs receive`: replication streams on
 * stdout and stdin (the format and its guarantees are in store/stream.c).
 *
 *   send VOL SNAP [--from BASE | -I BASE] [--resume TOKEN] [-v]
 *   receive DST [-v] [--handshake]
 *   receive DST --resume-token | --abort
 *   receive DST --config      (a mirror --with-config: the source's
 *                              configuration document on stdin, kept for
 *                              the destination's activation:
 *                              mirror_config.c)
 *
 * send holds the snapshots it reads (tag send:PID) until it ends, and
 * reads a mounted volume's store after the daemon committed what it
 * holds.  receive applies into an unmounted store opened exclusively (a
 * mounted one's daemon applies it: receive_mounted.c); each snapshot is
 * applied in batches and taken in the last, so the destination's newest
 * snapshot is always complete, and an interrupted receive resumes with
 * `send --resume $(snapfs receive DST --resume-token)`.
 *
 * --handshake is the receiving end of a mirror transfer (mirror.c): before
 * reading, receive writes one line describing the destination on stdout,
 * and one line per snapshot applied ("ok NAME BYTES"), so that a sender
 * reaching it through a pipe, ssh or a peer knows where to start.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mirror/mirror.h"
#include "mirror/recv_ahead.h"
#include "mirror/receive_mounted.h"
#include "mirror/replicate.h"
#include "store.h"

#define RECV_BATCH_BYTES (32u << 20)

/* ---- sending ---- */

struct send_plan {
    struct sfs_snap_rec *snaps; /* the snapshots to send, oldest first */
    size_t n, cap;
    uint64_t base;              /* epoch of the first one's base, or 0 */
};

static int collect_cb(void *a, const struct sfs_snap_rec *s)
{
    struct send_plan *p = a;
    return array_append(&p->snaps, &p->n, &p->cap, s, sizeof(*s));
}

static void find_snapshot(struct sfs_store *st, const char *cmd,
                          const struct volume *vol, const char *name,
                          struct sfs_snap_rec *out)
{
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, false, &txn);
    if (!rc) {
        rc = sfs_snap_find(st, txn, name, out);
        mdb_txn_abort(txn);
    }
    if (rc == -ENOENT)
        die(cmd, "%s: no snapshot named %s", vol->arg, name);
    if (rc)
        die(cmd, "%s: %s", vol->arg, strerror(-rc));
}

/* The snapshots after BASE up to TO (all of them with -I, else TO). */
static void plan_sends(struct sfs_store *st, const struct sfs_snap_rec *base,
                       const struct sfs_snap_rec *to, bool intermediate,
                       struct send_plan *plan)
{
    plan->base = base ? base->epoch : 0;
    struct send_plan all = { 0 };
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, false, &txn);
    if (!rc) {
        rc = sfs_snap_foreach(st, txn, collect_cb, &all);
        mdb_txn_abort(txn);
    }
    if (rc)
        die("send", "%s", strerror(-rc));
    for (size_t i = 0; i < all.n; i++) {
        const struct sfs_snap_rec *s = &all.snaps[i];
        if (s->epoch <= plan->base || s->epoch > to->epoch)
            continue;
        if ((s->epoch == to->epoch || intermediate) &&
            array_append(&plan->snaps, &plan->n, &plan->cap, s, sizeof(*s)))
            die("send", "out of memory");
    }
    free(all.snaps);
}

static void hold_all(struct volume *vol, const struct send_plan *plan,
                     const char *tag, bool hold)
{
    for (size_t i = 0; i < plan->n; i++) {
        int rc = volume_hold(vol, "send", plan->snaps[i].name, tag, hold);
        if (rc && hold)
            die("send", "%s: cannot hold snapshot %s: %s", vol->arg,
                plan->snaps[i].name, strerror(-rc));
    }
}

static void usage_send(void)
{
    die_usage("send", "usage: snapfs send VOL SNAP [--from BASE | -I BASE] "
              "[--resume TOKEN] [-v]");
}

/* --resume TOKEN: check it against the snapshots named. */
static void parse_resume(const char *token, struct sfs_store *st,
                         const struct sfs_snap_rec *base,
                         const struct sfs_snap_rec *to,
                         struct sfs_stream_pos *pos)
{
    uint8_t uuid[16];
    uint64_t from_epoch, to_epoch;
    if (sfs_stream_token_parse(token, uuid, &from_epoch, &to_epoch, pos))
        die_usage("send", "--resume: not a resume token (snapfs receive DST "
                  "--resume-token prints one)");
    if (memcmp(uuid, st->super.uuid, 16) || to_epoch != to->epoch ||
        from_epoch != (base ? base->epoch : 0))
        die("send", "--resume: the token is of another stream (another "
            "volume, or other snapshots than %s%s%s)", base ? base->name : "",
            base ? " to " : "", to->name);
}

int cmd_send(int argc, char **argv)
{
    const char *from = NULL, *token = NULL;
    bool intermediate = false, verbose = false;
    char *pos_args[2];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = option_value("send", "--from", argc, argv, &i))) {
            from = v;
        } else if ((v = option_value("send", "-I", argc, argv, &i))) {
            from = v;
            intermediate = true;
        } else if ((v = option_value("send", "--resume", argc, argv, &i))) {
            token = v;
        } else if (!strcmp(argv[i], "-v")) {
            verbose = true;
        } else if (argv[i][0] == '-' || npos == 2) {
            usage_send();
        } else {
            pos_args[npos++] = argv[i];
        }
    }
    if (npos != 2)
        usage_send();
    if (isatty(STDOUT_FILENO))
        die("send", "refusing to write a replication stream to a terminal "
            "(pipe it into snapfs receive)");
    if (token && intermediate)
        die_usage("send", "--resume sends one stream: use --from, not -I");
    static struct volume vol; /* static: reachable when a check dies */
    volume_open(&vol, "send", pos_args[0]);
    struct sfs_store *st = volume_read_store(&vol, "send", "send");
    struct sfs_snap_rec to, base;
    find_snapshot(st, "send", &vol, pos_args[1], &to);
    if (from) {
        find_snapshot(st, "send", &vol, from, &base);
        if (base.epoch >= to.epoch)
            die("send", "%s: the base %s is not older than %s", vol.arg, from,
                to.name);
    }
    struct sfs_stream_pos pos;
    if (token)
        parse_resume(token, st, from ? &base : NULL, &to, &pos);
    struct send_plan plan = { 0 };
    plan_sends(st, from ? &base : NULL, &to, intermediate, &plan);
    char tag[32];
    snprintf(tag, sizeof(tag), "send:%d", (int)getpid());
    signal(SIGPIPE, SIG_IGN);
    send_catch_interrupts();
    hold_all(&vol, &plan, tag, true);
    if (from)
        volume_hold(&vol, "send", base.name, tag, true);
    int rc = 0;
    uint64_t prev = plan.base;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct sfs_stream_stats total = { 0 };
    for (size_t i = 0; !rc && i < plan.n; i++) {
        struct sfs_stream_stats stats;
        rc = send_stream(st, prev, plan.snaps[i].epoch, token ? &pos : NULL, NULL,
                         STDOUT_FILENO, &stats);
        prev = plan.snaps[i].epoch;
        total.bytes += stats.bytes;
        total.records += stats.records + stats.kills;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    hold_all(&vol, &plan, tag, false);
    if (from)
        volume_hold(&vol, "send", base.name, tag, false);
    sfs_close(st);
    if (rc == -EPIPE)
        die("send", "%s: the receiving end closed the stream", vol.arg);
    if (rc == -EINTR)
        die("send", "%s: interrupted; the receiver keeps what reached its "
            "last checkpoint (resume with --resume)", vol.arg);
    if (rc)
        die("send", "%s: %s", vol.arg, strerror(-rc));
    if (verbose) {
        double secs = (double)(t1.tv_sec - t0.tv_sec) +
                      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        char size[32];
        format_bytes(total.bytes, size, sizeof(size));
        fprintf(stderr, "sent %zu snapshot%s of %s: %llu records, %s in "
                "%.2f s\n", plan.n, plan.n == 1 ? "" : "s", vol.arg,
                (unsigned long long)total.records, size, secs);
    }
    free(plan.snaps);
    free(vol.store);
    free(vol.mountpoint);
    return 0;
}

/* ---- receiving ---- */

/* Apply one stream R into ST (offline); 0 or a negative errno. */
static int recv_offline(struct sfs_store *st, struct sfs_receiver *r,
                        struct sfs_codec_ctx *cc)
{
    /* As for sending (sfs_send_new): an incremental stream looks up a
     * few records per change, scattered over the store. */
    sfs_advise_access(st, sfs_recv_header(r)->from_epoch
                              ? SFS_ACCESS_SCATTERED : SFS_ACCESS_NORMAL);
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, true, &txn);
    if (rc)
        return rc;
    rc = sfs_recv_begin_w(st, txn, r);
    for (;;) {
        if (rc < 0) {
            mdb_txn_abort(txn);
            return rc;
        }
        int crc = sfs_txn_commit(st, txn);
        if (crc)
            return crc;
        if (rc == 1)
            return sfs_mdb_errno(mdb_env_sync(st->env, 1));
        rc = sfs_txn_begin(st, NULL, true, &txn);
        if (rc)
            return rc;
        rc = sfs_recv_step_w(st, txn, r, cc, RECV_BATCH_BYTES);
    }
}

struct recv_opts {
    struct receive_flags f;
    unsigned mode;          /* SFS_RECV_RESYNC, SFS_RECV_ADOPT */
    uint64_t adopt_epoch;
};

static int publish_offline(struct sfs_store *st)
{
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, true, &txn);
    if (rc)
        return rc;
    rc = sfs_recv_publish_w(st, txn);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = sfs_txn_commit(st, txn);
    return rc ? rc : sfs_mdb_errno(mdb_env_sync(st->env, 1));
}

static void report_received(const struct recv_opts *o,
                            struct sfs_receiver *r)
{
    const struct sfs_stream_hdr *h = sfs_recv_header(r);
    struct sfs_stream_stats s;
    sfs_recv_stats(r, &s);
    receive_report(o->f.verbose, o->f.handshake, h->to_name,
                   h->from_epoch ? h->from_name : NULL, &s);
}

/*
 * LMDB copies every page a write transaction changes into memory it
 * allocates with malloc, and a receive changes pages all over the store:
 * in a fresh process each is a page fault and a zeroed 4 KiB page, which
 * cost the receive of a 1% change of a large volume a third of its time.
 * So the receive keeps its heap on transparent huge pages (one fault per
 * 2 MiB; glibc's hugetlb tunable does the same, but only from the
 * environment), keeps LMDB's multi-page allocations in it instead of
 * fresh mappings, and does not give it back between transactions.  The
 * heap is address space until it is written: memory stays what the
 * transactions use.  Without transparent huge pages this changes nothing.
 */
static void heap_on_huge_pages(void)
{
    const uintptr_t huge = 2u << 20;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    mallopt(M_TOP_PAD, 512 << 20);
    void *top = sbrk(0);
    if (top == (void *)-1)
        return;
    void *volatile grow = malloc(8u << 20); /* more than the heap has: it */
    free(grow);                             /* grows, by the pad */
    uintptr_t start = ((uintptr_t)top + huge - 1) & ~(huge - 1);
    uintptr_t end = (uintptr_t)sbrk(0);
    if (end > start)
        madvise((void *)start, end - start, MADV_HUGEPAGE);
}

static int receive_offline(const char *dst, struct volume *vol,
                           const struct recv_opts *o)
{
    heap_on_huge_pages();
    struct sfs_store *st;
    int rc = sfs_open(vol->store, SFS_OPEN_EXCLUSIVE, &st);
    if (rc)
        die("receive", "%s: %s", dst, open_error(rc));
    if (o->f.handshake && (rc = receive_print_hello(st, o->adopt_epoch)))
        die("receive", "%s: %s", dst, strerror(-rc));
    if (o->f.publish && (rc = publish_offline(st)))
        die("receive", "%s: publishing the snapshots held back: %s", dst,
            strerror(-rc));
    struct sfs_codec_ctx *cc = sfs_codec_ctx_new();
    struct fd_reader *in = calloc(1, sizeof(*in));
    if (!cc || !in)
        die("receive", "out of memory");
    in->fd = STDIN_FILENO;
    struct recv_ahead *ahead = NULL; /* from the first incremental on */
    sfs_stream_read_fn read_fn = fd_reader_read;
    void *read_arg = in;
    int count = 0;
    for (;;) {
        struct sfs_receiver *r = NULL;
        rc = sfs_recv_new(read_fn, read_arg, &r);
        if (rc == -ENODATA && (count > 0 || o->f.handshake || o->f.publish)) {
            sfs_recv_free(r);
            break;
        }
        if (!rc && !ahead && sfs_recv_header(r)->from_epoch &&
            !recv_ahead_start(STDIN_FILENO, st, in->buf + in->pos,
                              in->end - in->pos, &ahead)) {
            in->pos = in->end; /* handed over */
            read_fn = recv_ahead_read;
            read_arg = ahead;
            sfs_recv_set_reader(r, read_fn, read_arg);
        }
        if (!rc) {
            sfs_recv_set_mode(r, o->mode, o->adopt_epoch);
            sfs_recv_hold_back(r, o->f.hold_back);
            rc = recv_offline(st, r, cc);
        }
        if (rc) {
            recv_ahead_stop(ahead);
            sfs_close(st);
            receive_die(dst, sfs_recv_why(r), rc);
        }
        report_received(o, r);
        sfs_recv_free(r);
        count++;
    }
    recv_ahead_stop(ahead);
    free(in);
    sfs_codec_ctx_free(cc);
    sfs_close(st);
    free(vol->store);
    return 0;
}

struct state_arg {
    struct sfs_recv_state rs;
    bool abort;
};

static int offline_state(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct state_arg *a = arg;
    int rc = sfs_recv_state(st, txn, &a->rs);
    if (!rc && a->abort && a->rs.partial)
        rc = sfs_recv_abort_w(st, txn);
    return rc;
}

static int token_or_abort(const struct volume *vol, bool abort)
{
    struct state_arg a = { .abort = abort };
    struct volume v = *vol;
    int rc = volume_offline(&v, "receive", offline_state, &a, abort);
    char token[SFS_STREAM_TOKEN_MAX];
    if (!rc && !a.rs.partial)
        rc = -ENOENT;
    if (!rc)
        sfs_stream_token_format(&a.rs, token);
    int status = receive_state_done(vol, abort, rc, token);
    free(vol->store);
    return status;
}

/* --config: the configuration carried to the destination VOL, kept if
 * VOL is a following destination and the document is its source's. */
static int receive_config(struct volume *vol)
{
    struct sfs_store *st = volume_read_store(vol, "receive", "receive into");
    struct sfs_recv_state rs;
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, false, &txn);
    if (!rc) {
        rc = sfs_recv_state(st, txn, &rs);
        mdb_txn_abort(txn);
    }
    sfs_close(st);
    if (rc)
        die("receive", "%s: %s", vol->arg, strerror(-rc));
    if (!rs.follows || rs.writable)
        die("receive", "%s: %s; a configuration is carried to a mirror "
            "destination only; nothing kept", vol->arg,
            !rs.follows ? "is not a mirror destination (it follows no volume)"
                        : "is broken off (writable)");
    char err[1024];
    rc = mirror_config_receive(vol->store, rs.src_uuid, STDIN_FILENO, err,
                               sizeof(err));
    if (rc)
        die("receive", "%s: the configuration carried with the data is "
            "refused: %s; nothing kept", vol->arg, err);
    free(vol->store);
    return 0;
}

int cmd_receive(int argc, char **argv)
{
    struct recv_opts o = { 0 };
    bool want_token = false, abort = false, config = false;
    const char *dst = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v"))
            o.f.verbose = true;
        else if (!strcmp(argv[i], "--handshake"))
            o.f.handshake = true;
        else if (!strcmp(argv[i], "--hold-back"))
            o.f.hold_back = true;
        else if (!strcmp(argv[i], "--publish"))
            o.f.publish = true;
        else if (!strcmp(argv[i], "--resume-token"))
            want_token = true;
        else if (!strcmp(argv[i], "--abort"))
            abort = true;
        else if (!strcmp(argv[i], "--config"))
            config = true;
        else if (!strcmp(argv[i], "--resync"))
            o.mode = SFS_RECV_RESYNC;
        else if (!strcmp(argv[i], "--adopt") && i + 1 < argc) {
            o.mode = SFS_RECV_ADOPT;
            char *end;
            errno = 0;
            o.adopt_epoch = strtoull(argv[++i], &end, 10);
            if (errno || *end || !o.adopt_epoch)
                die_usage("receive", "--adopt %s: not a snapshot epoch",
                          argv[i]);
        } else if (argv[i][0] == '-' || dst)
            die_usage("receive", "usage: snapfs receive DST [-v] "
                      "[--handshake] [--hold-back] [--publish] "
                      "[--resync | --adopt EPOCH] | "
                      "DST --resume-token | DST --abort | DST --config");
        else
            dst = argv[i];
    }
    if (!dst)
        die_usage("receive", "usage: snapfs receive DST [-v] [--handshake]");
    if (config && (want_token || abort || o.mode || o.f.hold_back ||
                   o.f.publish))
        die_usage("receive", "--config takes a configuration, no stream: "
                  "give it alone (with --handshake at most)");
    static struct volume vol; /* static: reachable when a check dies */
    volume_open(&vol, "receive", dst);
    if (config)
        return receive_config(&vol);
    if (want_token || abort)
        return vol.mounted ? receive_mounted_state(&vol, abort)
                           : token_or_abort(&vol, abort);
    if (vol.mounted && o.mode)
        die("receive", "%s: is mounted; a resync or reverse resync goes "
            "into an unmounted destination (snapfs umount it first)", dst);
    if (vol.mounted)
        return receive_mounted(&vol, &o.f);
    return receive_offline(dst, &vol, &o);
}
