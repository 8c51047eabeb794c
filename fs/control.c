/*
 * control.c - the control socket of a mounted volume: STORE/control.sock.
 *
 * Administrative commands on a mounted volume (snapshots, policies,
 * settings, dumps, qtrees, replication streams received) come here, so
 * that they run inside the daemon's batch and see every acknowledged
 * write.  Guarantees:
 *   - only root or the owner of the store directory may connect and change
 *     anything (SO_PEERCRED, checked on every connection; others get EACCES);
 *   - a change runs after every cached block is stored, as one nested
 *     transaction in the batch, and is committed and synced before the
 *     reply: "OK" means durable;
 *   - one request per connection, one at a time (a receive goes on in a
 *     thread of its own: below).
 *
 * Protocol: a request is one line of tab-separated words.  The reply is
 * zero or more data lines, then "OK" or "ERR <errno>" (a positive errno).
 *   snapshot-create NAME [LABELS]  LABELS: sfs_labels_valid's list
 *   snapshot-delete NAME...        all or none
 *   snapshot-rename OLD NEW
 *   snapshot-reclaim NAME...       data: "<physical> <logical>"
 *   snapshot-list                  data: one sfs_snap_line per snapshot
 *   snapshot-hold NAME TAG
 *   snapshot-release NAME TAG
 *   snapshot-holds NAME            data: one tag per line
 *   snapshot-labels                data: "EPOCH LABELS" per snapshot
 *                                  that has labels
 *   set NAME VALUE                 a volume setting (store/settings.c)
 *   settings                       data: NAME VALUE DEFAULT ALLOWED WHAT
 *   snapshot-find NAME             data: "<epoch>"
 *   snapshot-diff A [B]            data: sfs_diff_write lines (B: live)
 *   policy-create NAME SCHEDULE KEEP PREFIX [NOW [HOOKS]]
 *   policy-delete NAME             the policy only; its snapshots stay
 *   policy-modify NAME SCHEDULE KEEP PREFIX [NOW [HOOKS]]
 *                                  all three replaced (sfs_policy_modify_w);
 *                                  HOOKS (sfs_hooks_format's word) replaces
 *                                  the hooks, which stay without it
 *   policy-list [NOW]              data: one sfs_policy_line per policy
 *   policy-run [NOW]               data: one sfs_policy_event line each
 *   snapshot-restore NAME          roll the live tree back to NAME;
 *                                  data: "<restored> <removed>" records
 *   snapshot-restore-file NAME PATH DEST
 *                                  copy PATH of NAME to DEST (restore.c);
 *                                  data: "<objects> <in place: 0|1>"
 *   dump-begin CTX                 start a dump (sfs_dump_begin_w); CTX
 *                                  is a context in hex; data: the context
 *                                  as begun, in hex
 *   dump-update CTX                replace a dump context (progress)
 *   dump-finish ID RECORD          end dump ID; RECORD 1: note its date
 *   dump-context-delete ID         abandon dump ID (release, delete)
 *   qtree-create NAME STYLE QUOTA  a qtree at the root (store/qtree.c)
 *   qtree-modify NAME STYLE QUOTA
 *   qtree-delete NAME              an empty qtree
 *   qtree-list                     data: one sfs_qtree_line per qtree
 *   sync                           store and commit everything
 *   stats                          the statistics (metrics.c: the
 *                                  format), then the volume's state now
 *                                  as "gauge NAME N" lines (volume_gauges);
 *                                  stores and commits nothing; ENODATA:
 *                                  the mount has -o nostats
 *   freeze [TIMEOUT_MS]            a freeze session (below)
 *   receive FLAGS [N1 [N2]]        receive the streams on the descriptor
 *                                  passed with the request (below)
 *   receive-token                  data: the resume token of an unfinished
 *                                  receive (nothing when there is none)
 *   receive-abort                  discard an unfinished receive (ENOENT:
 *                                  none; EBUSY: of a full stream)
 * NOW is seconds since the epoch; without it, or "-", the policy clock
 * (see scheduler.c).  policy-run runs the policies with hooks one by one,
 * their hooks around them, on this thread (scheduler.c).
 *
 * RECEIVE (tools/receive_mounted.c, fs/receive.c).  The request carries
 * one file descriptor (SCM_RIGHTS, with the request's bytes): the stream's
 * input, the command's stdin.  FLAGS is a decimal bit mask of receive
 * options (receive.h: 1 hold back, 2 publish first, 4 no stream is fine)
 * and N1, N2 decimal numbers for options that need them (none yet); a
 * daemon answers ERR EINVAL to a bit or a number it does not know, so a
 * newer command never has an option silently ignored.
 * The connection then belongs to the receive, on a thread of its own
 * (the control thread serves other requests meanwhile; one receive at a
 * time, a second gets ERR EINPROGRESS), which answers with lines
 *   received TO FROM BYTES RECORDS KILLS   per snapshot received and
 *                                  published: names in hex, FROM "-" for
 *                                  a full stream, the stream's counts
 *   why TEXT                       the store's reason, before an ERR
 * and the status line.  Errors of the daemon's own: EPERM (the volume
 * serves its live tree: it follows no source yet), ETIMEDOUT (the stream
 * stalled inside a batch), ECANCELED (unmounted meanwhile).  A client that
 * closes the connection stops the receive at its next step.  While a
 * receive runs, snapshot-create (also in a freeze session),
 * snapshot-restore, snapshot-restore-file, dump-begin, qtree-create,
 * qtree-modify, qtree-delete, policy-run and receive-abort answer ERR
 * EINPROGRESS, and the policy scheduler waits: they would write or
 * snapshot a half-received live tree.
 *
 * FREEZE SESSIONS (consistency-group snapshots, tools/group.c).
 * `freeze [TIMEOUT_MS]` (default CONTROL_FREEZE_DEFAULT_MS, at most
 * CONTROL_FREEZE_MAX_MS) keeps the connection open for more requests, each
 * answered by one line "OK" or "ERR <errno>", one at a time (send the next
 * after reading the reply):
 *   freeze [TIMEOUT_MS]   close the freeze gate (fs/volume.c: new client
 *                         changes wait, they do not fail), wait for the
 *                         changes in flight, store every cached block and
 *                         commit: "OK" means frozen, with every write
 *                         acknowledged so far in the committed store
 *   snapshot-create NAME [GROUP [LABELS]]
 *                         take snapshot NAME of the frozen live tree, as
 *                         member of GROUP (sfs_cgroup_format's word; "-"
 *                         none), with LABELS
 *   thaw                  open the gate, answer "OK", end the session
 * The session ends, thawing, also when the client closes the connection
 * (it died), sends something else than a request, or TIMEOUT_MS after the
 * freeze began, whichever comes first; the gate itself opens at that
 * deadline even if this thread is stuck (volume.c).  A snapshot-create
 * after the deadline answers ERR ETIMEDOUT and takes nothing, so a tool
 * never gets a snapshot of a volume that moved after its instant.  The
 * session holds the change lock (control changes and the policy scheduler
 * wait; it is taken before the gate, the only order); other connections
 * wait in the listen queue until it ends.  The kernel is told about the
 * new snapshot (snapdir.c) after the thaw: its invalidations may need
 * directory locks that a client change blocked at the gate holds.
 */
#define _GNU_SOURCE
#include "control.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <unistd.h>

#include "metrics.h"
#include "scheduler.h"
#include "wcache.h"

#define MAX_REQUEST 65536
#define MAX_WORDS 1024
#define CONTROL_FREEZE_DEFAULT_MS 5000
#define CONTROL_FREEZE_MAX_MS 60000

/* Control changes run one at a time (the control thread and the policy
 * scheduler both make them); a freeze session holds this throughout. */
static pthread_mutex_t changes_lock = PTHREAD_MUTEX_INITIALIZER;

static bool peer_allowed(struct control *c, int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
        return false;
    return cred.uid == 0 || cred.uid == c->owner_uid;
}

/* File descriptors passed with a request (SCM_RIGHTS): `receive` takes
 * one, every other request none (any passed are closed). */
#define MAX_PASSED_FDS 2
struct passed_fds {
    int fd[MAX_PASSED_FDS];
    int n;
};

static void passed_fds_close(struct passed_fds *p)
{
    for (int i = 0; i < p->n; i++)
        close(p->fd[i]);
    p->n = 0;
}

/* Keep the descriptors a message carried (closing any beyond the few). */
static void take_fds(struct msghdr *m, struct passed_fds *fds)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (fds && fds->n < MAX_PASSED_FDS)
                fds->fd[fds->n++] = fd;
            else
                close(fd);
        }
    }
}

/* One request line into BUF, waiting at most TIMEOUT_MS for each read;
 * descriptors passed with it into FDS (NULL: closed). */
static int read_request(int fd, char *buf, size_t cap, int timeout_ms,
                        struct passed_fds *fds)
{
    size_t used = 0;
    while (used < cap - 1) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, timeout_ms) <= 0)
            return -ETIMEDOUT;
        union {
            char bytes[CMSG_SPACE(8 * sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = { buf + used, cap - 1 - used };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
                            .msg_control = ctl.bytes,
                            .msg_controllen = sizeof(ctl.bytes) };
        ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
        if (n > 0)
            take_fds(&m, fds);
        if (n <= 0)
            return n == 0 ? -EPIPE : -errno;
        used += (size_t)n;
        char *nl = memchr(buf, '\n', used);
        if (nl) {
            *nl = 0;
            return 0;
        }
    }
    return -E2BIG;
}

static int split_words(char *line, char **words)
{
    int n = 0;
    for (char *save = NULL, *w = strtok_r(line, "\t", &save);
         w && n < MAX_WORDS; w = strtok_r(NULL, "\t", &save))
        words[n++] = w;
    return n;
}

/*
 * Run FN in one nested transaction of the batch, then make it durable.
 * Every cached block must be in the batch first (a snapshot must not hold
 * a file's new size with its old bytes): writers are told to write
 * through meanwhile (the barrier), the kernel's writeback waits for the
 * barrier to drop (vol_barrier_wait: its pages came after the command's
 * syncfs), and the check is repeated under the volume lock, where no
 * write can complete.  Changes run one at a time
 * (the control thread and the policy scheduler both make them).
 */
static int change_locked(struct vol *v,
                         int (*fn)(struct vol *, MDB_txn *, void *), void *arg)
{
    vol_barrier_set(v, true);
    int rc = -EAGAIN;
    for (int attempt = 0; rc == -EAGAIN && attempt < 100; attempt++) {
        MDB_txn *txn;
        rc = wcache_flush_all(v, true);
        if (!rc)
            rc = vol_change_begin(v, &txn);
        if (rc)
            break;
        if (__atomic_load_n(&v->wcache_bytes, __ATOMIC_ACQUIRE)) {
            vol_change_end(v, -EAGAIN, 0); /* a write slipped in: again */
            rc = -EAGAIN;
            continue;
        }
        vol_xattrs_changed(v); /* a restore, a rollback may set them */
        rc = vol_change_end(v, fn(v, txn, arg), 0);
    }
    vol_barrier_set(v, false);
    return rc ? rc : vol_sync(v);
}

void control_changes_lock(void)
{
    pthread_mutex_lock(&changes_lock);
}

void control_changes_unlock(void)
{
    pthread_mutex_unlock(&changes_lock);
}

int control_change(struct vol *v, int (*fn)(struct vol *, MDB_txn *, void *),
                   void *arg)
{
    pthread_mutex_lock(&changes_lock);
    int rc = change_locked(v, fn, arg);
    pthread_mutex_unlock(&changes_lock);
    return rc;
}

/* Store every cached block and commit: what `sync` and a freeze do. */
static int store_and_sync(struct vol *v)
{
    int rc = wcache_flush_all(v, true);
    return rc ? rc : vol_sync(v);
}

/* A command's change: FN with the words of the request. */
struct words_change {
    int (*fn)(struct vol *, MDB_txn *, int, char **);
    int argc;
    char **argv;
};

static int call_with_words(struct vol *v, MDB_txn *txn, void *arg)
{
    struct words_change *w = arg;
    return w->fn(v, txn, w->argc, w->argv);
}

static int change(struct vol *v, int (*fn)(struct vol *, MDB_txn *, int,
                                           char **),
                  int argc, char **argv)
{
    struct words_change w = { fn, argc, argv };
    return control_change(v, call_with_words, &w);
}

static int find_epochs(struct vol *v, MDB_txn *txn, int argc, char **argv,
                       uint64_t *epochs)
{
    for (int i = 0; i < argc; i++) {
        struct sfs_snap_rec s;
        int rc = sfs_snap_find(v->st, txn, argv[i], &s);
        if (rc)
            return rc;
        epochs[i] = s.epoch;
    }
    return 0;
}

static int do_create(struct vol *v, MDB_txn *txn, int argc, char **argv)
{
    if (argc != 1 && argc != 2)
        return -EINVAL;
    return sfs_snap_take_labelled_w(v->st, txn, argv[0], NULL,
                                    argc == 2 ? argv[1] : NULL, NULL);
}

static int do_delete(struct vol *v, MDB_txn *txn, int argc, char **argv)
{
    uint64_t *epochs = calloc((size_t)argc + 1, sizeof(*epochs));
    int rc = epochs ? find_epochs(v, txn, argc, argv, epochs) : -ENOMEM;
    for (int i = 0; !rc && i < argc; i++)
        rc = sfs_snap_delete_w(v->st, txn, epochs[i]);
    free(epochs);
    return rc;
}

static int do_rename(struct vol *v, MDB_txn *txn, int argc, char **argv)
{
    return argc == 2 ? sfs_snap_rename_w(v->st, txn, argv[0], argv[1])
                     : -EINVAL;
}

static int do_hold(struct vol *v, MDB_txn *txn, int argc, char **argv)
{
    return argc == 2 ? sfs_snap_hold_w(v->st, txn, argv[0], argv[1]) : -EINVAL;
}

static int do_release(struct vol *v, MDB_txn *txn, int argc, char **argv)
{
    return argc == 2 ? sfs_snap_release_w(v->st, txn, argv[0], argv[1])
                     : -EINVAL;
}

static int do_set(struct vol *v, MDB_txn *txn, int argc, char **argv)
{
    return argc == 2 ? sfs_setting_set_w(v->st, txn, argv[0], argv[1])
                     : -EINVAL;
}

/* After a change the kernel cannot see: tell the FUSE layer (snapdir.c). */
static int notify(struct vol *v, int rc, unsigned what)
{
    if (!rc && v->notify_changed)
        v->notify_changed(v, what);
    return rc;
}

/* The counts of the last restore, for its reply (the control thread
 * serves one request at a time). */
static uint64_t restore_counts[2];

static int do_restore(struct vol *v, MDB_txn *txn, int argc, char **argv)
{
    struct sfs_snap_rec s;
    struct sfs_rollback_stats rs;
    int rc = argc == 1 ? sfs_snap_find(v->st, txn, argv[0], &s) : -EINVAL;
    if (!rc)
        rc = sfs_rollback_w(v->st, txn, s.epoch, &rs);
    restore_counts[0] = rc ? 0 : rs.restored;
    restore_counts[1] = rc ? 0 : rs.removed;
    return rc;
}

static int do_restore_file(struct vol *v, MDB_txn *txn, int argc,
                           char **argv)
{
    struct sfs_snap_rec s;
    struct sfs_restore_stats rs;
    int rc = argc == 3 ? sfs_snap_find(v->st, txn, argv[0], &s) : -EINVAL;
    if (!rc)
        rc = sfs_restore_path_w(v->st, txn, s.epoch, argv[1], argv[2], &rs);
    restore_counts[0] = rc ? 0 : rs.objects;
    restore_counts[1] = rc ? 0 : rs.in_place;
    return rc;
}

/* A restore changes the live tree behind the kernel's back. */
static int restore(struct vol *v, FILE *out,
                   int (*fn)(struct vol *, MDB_txn *, int, char **),
                   int argc, char **argv)
{
    notify(v, 0, VOL_CHANGING_LIVE); /* note what the kernel holds now */
    int rc = change(v, fn, argc, argv);
    if (rc)
        return rc;
    notify(v, 0, VOL_CHANGED_LIVE);
    fprintf(out, "%llu %llu\n", (unsigned long long)restore_counts[0],
            (unsigned long long)restore_counts[1]);
    return 0;
}

/* ---- dumps: contexts and dates (store/dumpmeta.c) ---- */

/* The context of the last dump-begin, for its reply. */
static struct sfs_dumpctx dump_begun;

static int do_dump_begin(struct vol *v, MDB_txn *txn, int argc, char **argv)
{
    int rc = argc == 1 ? sfs_dumpctx_from_hex(argv[0], &dump_begun)
                       : -EINVAL;
    return rc ? rc : sfs_dump_begin_w(v->st, txn, &dump_begun);
}

static int dump_begin(struct vol *v, FILE *out, int argc, char **argv)
{
    int rc = notify(v, change(v, do_dump_begin, argc, argv),
                    VOL_CHANGED_SNAPSHOTS);
    if (!rc) {
        char hex[2 * sizeof(dump_begun) + 1];
        sfs_dumpctx_to_hex(&dump_begun, hex);
        fprintf(out, "%s\n", hex);
    }
    return rc;
}

static int do_dump_update(struct vol *v, MDB_txn *txn, int argc, char **argv)
{
    struct sfs_dumpctx c, old;
    int rc = argc == 1 ? sfs_dumpctx_from_hex(argv[0], &c) : -EINVAL;
    if (!rc)
        rc = sfs_dumpctx_get(v->st, txn, c.id, &old);
    return rc ? rc : sfs_dumpctx_put_w(v->st, txn, &c);
}

static int parse_ctx_id(const char *word, uint32_t *id)
{
    char *end;
    unsigned long n = strtoul(word, &end, 10);
    if (end == word || *end || n == 0 || n > UINT32_MAX)
        return -EINVAL;
    *id = (uint32_t)n;
    return 0;
}

static int do_dump_finish(struct vol *v, MDB_txn *txn, int argc, char **argv)
{
    uint32_t id;
    int rc = argc == 2 ? parse_ctx_id(argv[0], &id) : -EINVAL;
    return rc ? rc : sfs_dump_finish_w(v->st, txn, id, !strcmp(argv[1], "1"));
}

static int do_dump_ctx_delete(struct vol *v, MDB_txn *txn, int argc,
                              char **argv)
{
    uint32_t id;
    int rc = argc == 1 ? parse_ctx_id(argv[0], &id) : -EINVAL;
    return rc ? rc : sfs_dumpctx_delete_w(v->st, txn, id);
}

/* ---- qtrees ---- */

/* STYLE QUOTA words into INFO. */
static int qtree_words(char **words, struct sfs_qtree_info *info)
{
    char *end;
    memset(info, 0, sizeof(*info));
    if (sfs_qtree_style_parse(words[0], &info->style))
        return -EINVAL;
    errno = 0;
    info->quota_bytes = strtoull(words[1], &end, 10);
    return errno || end == words[1] || *end || words[1][0] == '-' ? -EINVAL
                                                                  : 0;
}

static int do_qtree_create(struct vol *v, MDB_txn *txn, int argc, char **argv)
{
    struct sfs_qtree_info info;
    int rc = argc == 3 ? qtree_words(argv + 1, &info) : -EINVAL;
    return rc ? rc : sfs_qtree_create_w(v->st, txn, argv[0], &info, NULL);
}

static int do_qtree_modify(struct vol *v, MDB_txn *txn, int argc, char **argv)
{
    struct sfs_qtree_info info, q;
    int rc = argc == 3 ? qtree_words(argv + 1, &info) : -EINVAL;
    if (!rc)
        rc = sfs_qtree_find(v->st, txn, SFS_VIEW_LIVE, argv[0], &q);
    return rc ? rc : sfs_qtree_modify_w(v->st, txn, q.ino, &info);
}

static int do_qtree_delete(struct vol *v, MDB_txn *txn, int argc, char **argv)
{
    return argc == 1 ? sfs_qtree_delete_w(v->st, txn, argv[0], NULL)
                     : -EINVAL;
}

/* A change of the root entry ARGV[0]: the kernel drops its entry (a
 * cached negative one would hide a new qtree, a positive one keep a
 * deleted qtree). */
static int root_entry_change(struct vol *v,
                             int (*fn)(struct vol *, MDB_txn *, int, char **),
                             int argc, char **argv)
{
    int rc = change(v, fn, argc, argv);
    if (!rc && argc >= 1 && v->notify_entry)
        v->notify_entry(v, SFS_ROOT_INO, argv[0]);
    return rc;
}

/* Read-only queries run in a nested transaction that is always aborted. */
static int query(struct vol *v, FILE *out,
                 int (*fn)(struct vol *, MDB_txn *, FILE *, int, char **),
                 int argc, char **argv)
{
    int rc = wcache_flush_all(v, true);
    MDB_txn *txn;
    if (!rc)
        rc = vol_change_begin(v, &txn);
    if (rc)
        return rc;
    rc = fn(v, txn, out, argc, argv);
    vol_change_end(v, rc ? rc : -ECANCELED, 0); /* never keep anything */
    return rc;
}

static int q_reclaim(struct vol *v, MDB_txn *txn, FILE *out, int argc,
                     char **argv)
{
    uint64_t *epochs = calloc((size_t)argc + 1, sizeof(*epochs));
    int rc = epochs ? find_epochs(v, txn, argc, argv, epochs) : -ENOMEM;
    struct sfs_reclaim r;
    if (!rc)
        rc = sfs_snap_reclaim(v->st, txn, epochs, (size_t)argc, &r);
    if (!rc)
        fprintf(out, "%llu %llu\n", (unsigned long long)r.physical,
                (unsigned long long)r.logical);
    free(epochs);
    return rc;
}

static int q_list_line(void *arg, const struct sfs_snap_line *l)
{
    sfs_snap_line_format(l, arg);
    return 0;
}

static int q_list(struct vol *v, MDB_txn *txn, FILE *out, int argc,
                  char **argv)
{
    return sfs_snap_list(v->st, txn, q_list_line, out);
}

static int q_labels_line(void *arg, uint64_t epoch, const char *labels)
{
    fprintf(arg, "%llu\t%s\n", (unsigned long long)epoch, labels);
    return 0;
}

static int q_labels(struct vol *v, MDB_txn *txn, FILE *out, int argc,
                    char **argv)
{
    return argc ? -EINVAL
                : sfs_snap_labels_foreach(v->st, txn, q_labels_line, out);
}

static int q_hold_line(void *arg, const char *tag)
{
    fprintf(arg, "%s\n", tag);
    return 0;
}

static int q_holds(struct vol *v, MDB_txn *txn, FILE *out, int argc,
                   char **argv)
{
    struct sfs_snap_rec s;
    int rc = argc == 1 ? sfs_snap_find(v->st, txn, argv[0], &s) : -EINVAL;
    if (!rc)
        rc = sfs_snap_holds(v->st, txn, s.epoch, q_hold_line, out);
    return rc < 0 ? rc : 0;
}

static int q_setting_line(void *arg, const char *name, const char *value,
                          const char *dflt, const char *allowed,
                          const char *what)
{
    fprintf(arg, "%s\t%s\t%s\t%s\t%s\n", name, value, dflt, allowed, what);
    return 0;
}

static int q_settings(struct vol *v, MDB_txn *txn, FILE *out, int argc,
                      char **argv)
{
    return sfs_setting_foreach(v->st, txn, q_setting_line, out);
}

static int q_find(struct vol *v, MDB_txn *txn, FILE *out, int argc,
                  char **argv)
{
    struct sfs_snap_rec s;
    int rc = argc == 1 ? sfs_snap_find(v->st, txn, argv[0], &s) : -EINVAL;
    if (!rc)
        fprintf(out, "%llu\n", (unsigned long long)s.epoch);
    return rc;
}

static int q_diff(struct vol *v, MDB_txn *txn, FILE *out, int argc,
                  char **argv)
{
    uint64_t epochs[2] = { 0, SFS_VIEW_LIVE };
    int rc = argc == 1 || argc == 2 ? find_epochs(v, txn, argc, argv, epochs)
                                    : -EINVAL;
    return rc ? rc : sfs_diff_write(v->st, txn, epochs[0], epochs[1], out);
}

/* ---- policies ---- */

/* NOW from ARGV[I] when given (the last word, or followed by the HOOKS
 * word when HOOKS_OK); else, or "-", the policy clock. */
static int policy_now_hooks(int argc, char **argv, int i, bool hooks_ok,
                            int64_t *now)
{
    if (i + 1 < argc && !(hooks_ok && i + 2 == argc))
        return -EINVAL;
    if (i >= argc || !strcmp(argv[i], "-"))
        return scheduler_clock(now);
    char *end;
    long long t = strtoll(argv[i], &end, 10);
    if (end == argv[i] || *end || t <= 0)
        return -EINVAL;
    *now = t;
    return 0;
}

static int policy_now(int argc, char **argv, int i, int64_t *now)
{
    return policy_now_hooks(argc, argv, i, false, now);
}

/* The HOOKS word after NOW (ARGV[5]): 1 and *H, or 0 when not given. */
static int policy_hooks_word(int argc, char **argv, struct sfs_hookspec *h)
{
    if (argc < 6)
        return 0;
    return sfs_hooks_parse(argv[5], h) ? -EINVAL : 1;
}

/* NAME SCHEDULE KEEP PREFIX into *P (the words of create and modify). */
static int policy_words(int argc, char **argv, struct sfs_policy *p)
{
    memset(p, 0, sizeof(*p));
    if (argc < 4 || strlen(argv[0]) > SFS_POLICY_NAME_MAX ||
        strlen(argv[3]) > SFS_POLICY_PREFIX_MAX)
        return -EINVAL;
    char *end;
    unsigned long keep = strtoul(argv[2], &end, 10);
    int rc = *end || keep > SFS_POLICY_KEEP_MAX
                 ? -EINVAL : sfs_schedule_parse(argv[1], &p->sched);
    if (rc)
        return rc;
    memcpy(p->name, argv[0], strlen(argv[0]));
    memcpy(p->prefix, argv[3], strlen(argv[3]));
    p->keep = (uint32_t)keep;
    return 0;
}

static int do_policy_create(struct vol *v, MDB_txn *txn, int argc, char **argv)
{
    struct sfs_policy p;
    int rc = policy_words(argc, argv, &p);
    if (!rc)
        rc = policy_now_hooks(argc, argv, 4, true, &p.created);
    if (!rc)
        rc = policy_hooks_word(argc, argv, &p.hooks);
    return rc < 0 ? rc : sfs_policy_create_w(v->st, txn, &p);
}

static int do_policy_modify(struct vol *v, MDB_txn *txn, int argc, char **argv)
{
    struct sfs_policy p;
    struct sfs_hookspec h;
    int64_t now;
    int rc = policy_words(argc, argv, &p);
    if (!rc)
        rc = policy_now_hooks(argc, argv, 4, true, &now);
    int hooks = rc ? rc : policy_hooks_word(argc, argv, &h);
    if (hooks < 0)
        return hooks;
    rc = sfs_policy_modify_w(v->st, txn, &p, now);
    if (!rc && hooks)
        rc = sfs_policy_hooks_set_w(v->st, txn, p.name, &h);
    return rc;
}

static int do_policy_delete(struct vol *v, MDB_txn *txn, int argc, char **argv)
{
    return argc == 1 ? sfs_policy_delete_w(v->st, txn, argv[0]) : -EINVAL;
}

static int q_policy_line(void *arg, const struct sfs_policy_line *l)
{
    sfs_policy_line_format(l, arg);
    return 0;
}

static int q_policy_list(struct vol *v, MDB_txn *txn, FILE *out, int argc,
                         char **argv)
{
    int64_t now;
    int rc = policy_now(argc, argv, 0, &now);
    return rc ? rc : sfs_policy_list(v->st, txn, now, q_policy_line, out);
}

static int q_qtree_line(void *arg, const struct sfs_qtree_info *q)
{
    sfs_qtree_line_format(q, arg);
    return 0;
}

static int q_qtree_list(struct vol *v, MDB_txn *txn, FILE *out, int argc,
                        char **argv)
{
    return argc ? -EINVAL
                : sfs_qtree_list(v->st, txn, SFS_VIEW_LIVE, q_qtree_line, out);
}

static int policy_run(struct vol *v, FILE *out, int argc, char **argv)
{
    int64_t now;
    char *events = NULL;
    int rc = policy_now(argc, argv, 0, &now);
    if (!rc)
        rc = scheduler_run(v, now, &events);
    if (!rc && events)
        fputs(events, out);
    free(events);
    return rc;
}

/* ---- receives (receive.c runs them) ---- */

static int q_recv_token(struct vol *v, MDB_txn *txn, FILE *out, int argc,
                        char **argv)
{
    struct sfs_recv_state rs;
    int rc = argc ? -EINVAL : sfs_recv_state(v->st, txn, &rs);
    if (!rc && rs.partial) {
        char token[SFS_STREAM_TOKEN_MAX];
        sfs_stream_token_format(&rs, token);
        fprintf(out, "%s\n", token);
    }
    return rc;
}

static int do_recv_abort(struct vol *v, MDB_txn *txn, int argc, char **argv)
{
    struct sfs_recv_state rs;
    int rc = argc ? -EINVAL : sfs_recv_state(v->st, txn, &rs);
    if (!rc && !rs.partial)
        rc = -ENOENT;
    return rc ? rc : sfs_recv_abort_w(v->st, txn);
}

/* `receive FLAGS [NUMBER...]` with the stream's descriptor: the receive
 * goes on in a thread of its own (receive.c), which then owns FD. */
static int start_receive(struct control *c, int fd, int argc, char **argv,
                         struct passed_fds *fds)
{
    uint64_t words[3];
    if (fds->n != 1 || argc < 1 || argc > 3)
        return -EINVAL;
    for (int i = 0; i < argc; i++) {
        char *end;
        errno = 0;
        words[i] = strtoull(argv[i], &end, 10);
        if (errno || end == argv[i] || *end || argv[i][0] == '-')
            return -EINVAL;
    }
    int rc = recv_start(&c->recv, c->vol, fd, fds->fd[0], words[0],
                        words + 1, argc - 1);
    if (!rc)
        fds->n = 0; /* the receive's now */
    return rc;
}

/* ---- statistics (metrics.c) ---- */

static void gauge(FILE *out, const char *name, uint64_t value)
{
    fprintf(out, "gauge\t%s\t%llu\n", name, (unsigned long long)value);
}

/* The daemon's resident memory, from /proc/self/statm (0 if unknown). */
static uint64_t resident_bytes(void)
{
    unsigned long long size, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static int count_snapshot(void *arg, const struct sfs_snap_rec *s)
{
    (*(uint64_t *)arg)++;
    return 0;
}

/* Space (store.c's figures, as df and snapfs info show them) and
 * snapshots, read in the batch under the volume lock, briefly. */
static int space_gauges(struct vol *v, FILE *out)
{
    struct sfs_space sp;
    uint64_t snapshots = 0;
    MDB_txn *txn = vol_read_begin(v);
    int rc = txn ? sfs_space_get(v->st, txn, &sp) : -EROFS;
    if (!rc)
        rc = sfs_snap_foreach(v->st, txn, count_snapshot, &snapshots);
    vol_read_end(v);
    if (rc)
        return rc;
    gauge(out, "space_size", sp.size);
    gauge(out, "space_used", sp.used);
    gauge(out, "space_available", sp.avail);
    gauge(out, "space_snapshot_reserve", sp.reserve);
    gauge(out, "space_snapshots", sp.snapshots);
    gauge(out, "snapshots", snapshots);
    return 0;
}

/* What the volume holds in memory and its health, now. */
static void volume_gauges(struct vol *v, FILE *out)
{
    pthread_mutex_lock(&v->lock);
    uint64_t batch = v->dirty ? v->dirty_bytes : 0;
    int commit_error = v->commit_error;
    pthread_mutex_unlock(&v->lock);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru))
        memset(&ru, 0, sizeof(ru));
    gauge(out, "batch_bytes", batch);
    gauge(out, "wcache_bytes", __atomic_load_n(&v->wcache_bytes,
                                               __ATOMIC_RELAXED));
    gauge(out, "resident_bytes", resident_bytes());
    uint64_t inodes, node_bytes;
    node_table_usage(v, &inodes, &node_bytes);
    gauge(out, "inodes_held", inodes);
    gauge(out, "node_bytes", node_bytes);
    gauge(out, "major_faults", (uint64_t)ru.ru_majflt);
    gauge(out, "commit_error", (uint64_t)-commit_error);
    gauge(out, "frozen", vol_frozen(v));
    gauge(out, "receiving", __atomic_load_n(&v->receiving, __ATOMIC_ACQUIRE));
}

static int stats(struct vol *v, FILE *out)
{
    if (!metrics_enabled)
        return -ENODATA;
    metrics_write(out);
    volume_gauges(v, out);
    return space_gauges(v, out);
}

/* What would write the live tree or snapshot it: not while a stream is
 * being received into it (a snapshot would hold part of a stream). */
static bool disturbs_receive(const char *cmd)
{
    static const char *const cmds[] = {
        "snapshot-create", "snapshot-restore", "snapshot-restore-file",
        "dump-begin", "qtree-create", "qtree-modify", "qtree-delete",
        "policy-run", "receive-abort", NULL
    };
    for (int i = 0; cmds[i]; i++)
        if (!strcmp(cmd, cmds[i]))
            return true;
    return false;
}

static int dispatch(struct control *c, FILE *out, int argc, char **argv)
{
    struct vol *v = c->vol;
    if (argc < 1)
        return -EINVAL;
    const char *cmd = argv[0];
    argc--;
    argv++;
    if (disturbs_receive(cmd) &&
        __atomic_load_n(&v->receiving, __ATOMIC_ACQUIRE))
        return -EINPROGRESS;
    if (!strcmp(cmd, "snapshot-create"))
        return notify(v, change(v, do_create, argc, argv),
                      VOL_CHANGED_SNAPSHOTS);
    if (!strcmp(cmd, "snapshot-delete") && argc >= 1)
        return notify(v, change(v, do_delete, argc, argv),
                      VOL_CHANGED_SNAPSHOTS);
    if (!strcmp(cmd, "snapshot-rename"))
        return notify(v, change(v, do_rename, argc, argv),
                      VOL_CHANGED_SNAPSHOTS);
    if (!strcmp(cmd, "set"))
        return notify(v, change(v, do_set, argc, argv), VOL_CHANGED_SNAPDIR);
    if (!strcmp(cmd, "settings"))
        return query(v, out, q_settings, argc, argv);
    if (!strcmp(cmd, "snapshot-reclaim") && argc >= 1)
        return query(v, out, q_reclaim, argc, argv);
    if (!strcmp(cmd, "snapshot-list"))
        return query(v, out, q_list, argc, argv);
    if (!strcmp(cmd, "snapshot-hold"))
        return change(v, do_hold, argc, argv);
    if (!strcmp(cmd, "snapshot-release"))
        return change(v, do_release, argc, argv);
    if (!strcmp(cmd, "snapshot-holds"))
        return query(v, out, q_holds, argc, argv);
    if (!strcmp(cmd, "snapshot-labels"))
        return query(v, out, q_labels, argc, argv);
    if (!strcmp(cmd, "snapshot-find"))
        return query(v, out, q_find, argc, argv);
    if (!strcmp(cmd, "snapshot-diff"))
        return query(v, out, q_diff, argc, argv);
    if (!strcmp(cmd, "policy-create"))
        return change(v, do_policy_create, argc, argv);
    if (!strcmp(cmd, "policy-delete"))
        return change(v, do_policy_delete, argc, argv);
    if (!strcmp(cmd, "policy-modify"))
        return change(v, do_policy_modify, argc, argv);
    if (!strcmp(cmd, "policy-list"))
        return query(v, out, q_policy_list, argc, argv);
    if (!strcmp(cmd, "policy-run"))
        return policy_run(v, out, argc, argv);
    if (!strcmp(cmd, "snapshot-restore"))
        return restore(v, out, do_restore, argc, argv);
    if (!strcmp(cmd, "snapshot-restore-file"))
        return restore(v, out, do_restore_file, argc, argv);
    if (!strcmp(cmd, "dump-begin"))
        return dump_begin(v, out, argc, argv);
    if (!strcmp(cmd, "dump-update"))
        return change(v, do_dump_update, argc, argv);
    if (!strcmp(cmd, "dump-finish"))
        return notify(v, change(v, do_dump_finish, argc, argv),
                      VOL_CHANGED_SNAPSHOTS);
    if (!strcmp(cmd, "dump-context-delete"))
        return notify(v, change(v, do_dump_ctx_delete, argc, argv),
                      VOL_CHANGED_SNAPSHOTS);
    if (!strcmp(cmd, "qtree-create"))
        return root_entry_change(v, do_qtree_create, argc, argv);
    if (!strcmp(cmd, "qtree-modify"))
        return change(v, do_qtree_modify, argc, argv);
    if (!strcmp(cmd, "qtree-delete"))
        return root_entry_change(v, do_qtree_delete, argc, argv);
    if (!strcmp(cmd, "qtree-list"))
        return query(v, out, q_qtree_list, argc, argv);
    if (!strcmp(cmd, "receive-token"))
        return query(v, out, q_recv_token, argc, argv);
    if (!strcmp(cmd, "receive-abort"))
        return change(v, do_recv_abort, argc, argv);
    if (!strcmp(cmd, "sync"))
        return store_and_sync(v);
    if (!strcmp(cmd, "stats"))
        return argc ? -EINVAL : stats(v, out);
    return -EOPNOTSUPP;
}

int control_reply_status(int fd, int rc)
{
    char tail[32];
    int n = rc ? snprintf(tail, sizeof(tail), "ERR %d\n", -rc)
               : snprintf(tail, sizeof(tail), "OK\n");
    return send(fd, tail, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -EPIPE;
}

/* ---- freeze sessions (theory at the top) ---- */

static int do_frozen_create(struct vol *v, MDB_txn *txn, void *arg)
{
    char **argv = arg;
    struct sfs_cgroup g = { .count = 0 };
    int rc = argv[1] ? sfs_cgroup_parse(argv[1], &g) : 0;
    return rc ? rc : sfs_snap_take_labelled_w(v->st, txn, argv[0],
                                              g.count ? &g : NULL, argv[2],
                                              NULL);
}

/* snapshot-create NAME [GROUP [LABELS]] inside the session: only while
 * frozen. */
static int frozen_create(struct vol *v, int argc, char **argv)
{
    if (argc < 1 || argc > 3)
        return -EINVAL;
    char *words[4] = { argv[0], argc >= 2 ? argv[1] : NULL,
                       argc == 3 ? argv[2] : NULL, NULL };
    if (__atomic_load_n(&v->receiving, __ATOMIC_ACQUIRE))
        return -EINPROGRESS;
    int rc = vol_freeze_pin(v);
    if (rc)
        return rc;
    rc = change_locked(v, do_frozen_create, words);
    vol_freeze_unpin(v);
    return rc;
}

static int freeze_timeout(int argc, char **argv, uint64_t *ms)
{
    *ms = CONTROL_FREEZE_DEFAULT_MS;
    if (argc == 0)
        return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(argv[0], &end, 10);
    if (argc > 1 || errno || end == argv[0] || *end || argv[0][0] == '-' ||
        n == 0 || n > CONTROL_FREEZE_MAX_MS)
        return -EINVAL;
    *ms = n;
    return 0;
}

static void freeze_session(struct control *c, int fd, char *buf, int argc,
                           char **argv)
{
    struct vol *v = c->vol;
    uint64_t timeout;
    int rc = freeze_timeout(argc, argv, &timeout);
    if (rc) {
        control_reply_status(fd, rc);
        return;
    }
    pthread_mutex_lock(&changes_lock);
    uint64_t deadline = vol_now_ms() + timeout;
    rc = vol_freeze(v, timeout);
    if (!rc) {
        rc = store_and_sync(v);
        vol_freeze_unpin(v);
    }
    bool took = false, thaw_asked = false;
    if (!rc && !control_reply_status(fd, 0)) {
        char *words[MAX_WORDS];
        for (;;) {
            uint64_t now = vol_now_ms();
            if (now >= deadline ||
                read_request(fd, buf, MAX_REQUEST, (int)(deadline - now),
                             NULL))
                break; /* expired, closed, or garbage: thaw */
            int n = split_words(buf, words);
            if (n == 1 && !strcmp(words[0], "thaw")) {
                thaw_asked = true;
                break;
            }
            int crc = n >= 1 && !strcmp(words[0], "snapshot-create")
                          ? frozen_create(v, n - 1, words + 1) : -EOPNOTSUPP;
            took |= !crc;
            if (control_reply_status(fd, crc))
                break;
        }
    } else if (rc) {
        control_reply_status(fd, rc);
    }
    vol_thaw(v);
    pthread_mutex_unlock(&changes_lock);
    if (took)
        notify(v, 0, VOL_CHANGED_SNAPSHOTS);
    if (thaw_asked) /* after the notice: the snapshot shows when we answer */
        control_reply_status(fd, 0);
}

/* Serve the connection FD: false when a receive took it over. */
static bool serve_one(struct control *c, int fd)
{
    char *buf = malloc(MAX_REQUEST);
    char *words[MAX_WORDS];
    char *data = NULL;
    size_t data_len = 0;
    struct passed_fds fds = { .n = 0 };
    bool taken = false;
    FILE *out = open_memstream(&data, &data_len);
    int rc = buf && out ? 0 : -ENOMEM;
    if (!rc && !peer_allowed(c, fd))
        rc = -EACCES;
    if (!rc)
        rc = read_request(fd, buf, MAX_REQUEST, 10000, &fds);
    int n = rc ? 0 : split_words(buf, words);
    if (n >= 1 && !strcmp(words[0], "freeze")) {
        freeze_session(c, fd, buf, n - 1, words + 1);
    } else if (n >= 1 && !strcmp(words[0], "receive")) {
        rc = start_receive(c, fd, n - 1, words + 1, &fds);
        taken = rc == 0;
        if (rc)
            control_reply_status(fd, rc);
    } else {
        if (!rc)
            rc = dispatch(c, out, n, words);
        if (out)
            fclose(out);
        out = NULL;
        if (!rc && data_len && write(fd, data, data_len) != (ssize_t)data_len)
            rc = -EPIPE;
        control_reply_status(fd, rc);
    }
    passed_fds_close(&fds);
    if (out)
        fclose(out);
    free(data);
    free(buf);
    return !taken;
}

static void *control_main(void *arg)
{
    struct control *c = arg;
    for (;;) {
        int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* shut down */
        }
        if (serve_one(c, fd))
            close(fd);
    }
    return NULL;
}

/* Bind and listen on STORE/control.sock: 0 or a negative errno. */
static int listen_on(struct control *c, const char *store)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if ((size_t)snprintf(addr.sun_path, sizeof(addr.sun_path),
                         "%s/control.sock", store) >= sizeof(addr.sun_path))
        return -ENAMETOOLONG;
    snprintf(c->path, sizeof(c->path), "%s", addr.sun_path);
    unlink(c->path); /* a stale socket of a crashed daemon */
    c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->listen_fd < 0)
        return -errno;
    if (bind(c->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) ||
        chmod(c->path, 0600 | 0066) || listen(c->listen_fd, 16)) {
        int rc = -errno;
        close(c->listen_fd);
        c->listen_fd = -1;
        return rc;
    }
    return 0;
}

int control_start(struct control *c, struct vol *v, const char *store)
{
    struct stat sb;
    memset(c, 0, sizeof(*c));
    c->vol = v;
    c->listen_fd = -1;
    if (stat(store, &sb))
        return -errno;
    c->owner_uid = sb.st_uid;
    int rc = listen_on(c, store);
    if (!rc)
        rc = recv_slot_init(&c->recv);
    if (!rc)
        rc = -pthread_create(&c->thread, NULL, control_main, c);
    if (rc) {
        if (c->listen_fd >= 0)
            close(c->listen_fd);
        c->listen_fd = -1;
        return rc;
    }
    c->running = true;
    return 0;
}

/* The receive is stopped after the control thread, which may be starting
 * one; it keeps its last checkpoint, committed by vol_stop. */
void control_stop(struct control *c)
{
    if (!c->running)
        return;
    shutdown(c->listen_fd, SHUT_RDWR);
    pthread_join(c->thread, NULL);
    recv_slot_destroy(&c->recv);
    close(c->listen_fd);
    unlink(c->path);
    c->running = false;
}
