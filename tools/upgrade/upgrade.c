/*
 * upgrade.c - the upgrade engine: the readiness check of a store and its
 * in-place upgrade to this snapfs's on-disk format.
 *
 * Guarantees:
 *  - The check opens the store read-only (keeping LMDB's reader slots as
 *    they are) and writes nothing: data.mdb keeps its bytes and mtime.
 *    It reads every record through fsck (blocks decoded and verified,
 *    references resolved, the tree walked, history and counters
 *    checked), and names every reason the upgrade would be refused.
 *  - The upgrade runs only on a store the check found ready, with the
 *    store's lock held (nothing else has it open for writing, no daemon
 *    serves it) and refuses otherwise with nothing changed.  Its steps
 *    are transactions of store/format.c's scheme: a kill at any moment
 *    leaves format 1, a store marked as being upgraded (which only this
 *    engine opens, and which running it again finishes), or format 2.
 *
 * The migration from format 1 to 2 (store/format.c): the ledger of what
 * only snapshots hold is counted if the store was made before it (in
 * batches, each its own transaction: sfs_ledger_count_batched), then the
 * features record and the version are written in one transaction.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "upgrade.h"

/* Pages an upgrade dirties besides the ledger's: the superblock, the
 * state, the records of format.c, and the trees above them. */
#define UPGRADE_FIXED_PAGES 16
/* What a committed transaction costs (a sync of its pages), and what one
 * record of the ledger's passes costs (a dedup record rewritten, or a
 * reference looked up and its record rewritten), in seconds: measured on
 * the development machine with the ASan build (0.37-0.44 s for 132,000
 * of them); a release build takes less. */
#define COMMIT_SECONDS 0.01
#define LEDGER_RECORD_SECONDS 3e-6

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((format(printf, 4, 5)))
static void add_line(char ***arr, size_t *n, size_t *cap, const char *fmt,
                     ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (s && array_append(arr, n, cap, &s, sizeof(s)))
        free(s);
}
#define REASON(r, ...) \
    add_line(&(r)->reasons, &(r)->nreasons, &(r)->reasons_cap, __VA_ARGS__)
#define STEP(r, ...) \
    add_line(&(r)->steps, &(r)->nsteps, &(r)->steps_cap, __VA_ARGS__)

void upgrade_report_free(struct upgrade_report *r)
{
    for (size_t i = 0; i < r->nreasons; i++)
        free(r->reasons[i]);
    for (size_t i = 0; i < r->nsteps; i++)
        free(r->steps[i]);
    free(r->reasons);
    free(r->steps);
    memset(r, 0, sizeof(*r));
}

/* Is the store's lock held by another process (a daemon, an offline
 * command)?  Tested without creating the lock file. */
static bool store_in_use(const char *store)
{
    char *path;
    if (asprintf(&path, "%s/lock", store) < 0)
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return false;
    bool busy = flock(fd, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK;
    close(fd); /* releases it if we took it */
    return busy;
}

/* fsck's problems become reasons (the first few; the count says all),
 * except in a store whose upgrade was interrupted: it was checked before
 * it was marked, and a store left marked opens nowhere, so damage found
 * since does not keep the upgrade from finishing (describe_damage). */
#define PROBLEMS_LISTED 20
static void collect_problem(void *arg, const char *problem)
{
    struct upgrade_report *r = arg;
    if (++r->problems <= PROBLEMS_LISTED && !r->interrupted)
        REASON(r, "damaged: %s", problem);
}

static void describe_damage(struct upgrade_report *r)
{
    if (r->problems && r->interrupted)
        STEP(r, "finish although fsck found %d problem%s since the store "
                "was marked (snapfs fsck lists them once it is format %u)",
             r->problems, r->problems == 1 ? "" : "s", r->target);
    else if (r->problems > PROBLEMS_LISTED)
        REASON(r, "damaged: %d problems in all (snapfs fsck lists them)",
               r->problems);
}

/* The records of table DBI and its pages. */
static int table_size(MDB_txn *txn, MDB_dbi dbi, uint64_t *count,
                      uint64_t *pages)
{
    MDB_stat ms;
    int rc = mdb_stat(txn, dbi, &ms);
    if (rc)
        return sfs_mdb_errno(rc);
    *count = ms.ms_entries;
    *pages = ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
    return 0;
}

static size_t ledger_batch_size(void)
{
    const char *e = getenv("SNAPFS_UPGRADE_BATCH");
    long n = e ? atol(e) : 0;
    return n > 0 ? (size_t)n : 50000;
}

/* The room and the time the upgrade needs, from the sizes of the tables
 * it walks. */
static int estimate(const char *store, struct sfs_store *st,
                    struct upgrade_report *r, bool count_ledger,
                    double t_check)
{
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, false, &txn);
    if (rc)
        return rc;
    uint64_t blocks, dedup_pages = 0;
    rc = table_size(txn, st->db_dedup, &blocks, &dedup_pages);
    struct sfs_file_pages fp;
    if (!rc)
        rc = sfs_file_pages(st, txn, &fp);
    mdb_txn_abort(txn);
    if (rc)
        return rc;
    /* The ledger rewrites every dedup record twice (reset, count), each
     * page copied once per transaction (LMDB copies on write): at worst
     * twice the table's pages, less the free pages the file has. */
    uint64_t pages = UPGRADE_FIXED_PAGES + (count_ledger ? 2 * dedup_pages : 0);
    uint64_t need = pages * fp.page_size;
    uint64_t in_file = fp.free_pages * fp.page_size;
    r->need_bytes = need > in_file ? need - in_file : 0;
    struct statvfs sv;
    if (statvfs(store, &sv))
        return -errno;
    r->free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
    size_t batch = ledger_batch_size();
    uint64_t commits = 2, ledger_records = 0;
    if (count_ledger) {
        commits += (r->blocks / batch + 1) * 2 + r->records / batch + 1;
        ledger_records = 2 * r->blocks + r->records; /* reset, count */
    }
    /* The upgrade runs this check first (its time so far), then the
     * ledger's passes and the commits. */
    r->estimate_seconds = (now_seconds() - t_check) +
                          (double)ledger_records * LEDGER_RECORD_SECONDS +
                          (double)commits * COMMIT_SECONDS;
    if (r->need_bytes > r->free_bytes) {
        char a[32], b[32];
        format_bytes(r->need_bytes, a, sizeof(a));
        format_bytes(r->free_bytes, b, sizeof(b));
        REASON(r, "no room: the upgrade needs up to %s more on the "
                  "filesystem holding the store, %s free", a, b);
    }
    return 0;
}

/* The version, the resume point, the tables' sizes, of an opened store. */
static int read_state(struct sfs_store *st, struct upgrade_report *r)
{
    uint32_t v = st->super.format_version;
    r->interrupted = v & SFS_FORMAT_UPGRADING;
    r->format = v & ~SFS_FORMAT_UPGRADING;
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, false, &txn);
    if (rc)
        return rc;
    uint64_t pages;
    rc = table_size(txn, st->db_dedup, &r->blocks, &pages);
    if (!rc)
        rc = table_size(txn, st->db_live, &r->records, &pages);
    struct sfs_upgrade u;
    if (!rc && r->interrupted) {
        rc = sfs_upgrade_get(st, txn, &u);
        rc = rc == -ENOENT ? -EIO : rc;
        r->format = u.from;
        snprintf(r->resume_step, sizeof(r->resume_step), "%s", u.step);
    }
    mdb_txn_abort(txn);
    r->current = !r->interrupted && r->format == SFS_FORMAT_VERSION;
    return rc;
}

/* The steps the upgrade of an opened store takes. */
static void describe_steps(struct upgrade_report *r, bool count_ledger)
{
    if (r->current)
        return;
    if (r->interrupted)
        STEP(r, "resume the upgrade from format %u to %u left at step '%s'",
             r->format, r->target, r->resume_step);
    else
        STEP(r, "mark the store as being upgraded (only snapfs upgrade "
                "opens it until the end)");
    if (count_ledger)
        STEP(r, "count the ledger of what only snapshots hold: %llu blocks "
                "and %llu live records", (unsigned long long)r->blocks,
             (unsigned long long)r->records);
    STEP(r, "write the features record (ledger ro-compat) and format %u",
         r->target);
}

int upgrade_check(const char *store, struct upgrade_report *r)
{
    memset(r, 0, sizeof(*r));
    r->target = SFS_FORMAT_VERSION;
    double t0 = now_seconds();
    struct sfs_store *st;
    int rc = sfs_open(store, SFS_OPEN_RDONLY | SFS_OPEN_UPGRADE |
                                 SFS_OPEN_KEEP_READERS, &st);
    if (rc == -EPROTONOSUPPORT) {
        REASON(r, "%s", sfs_open_why());
        r->check_seconds = now_seconds() - t0;
        return 0;
    }
    if (rc)
        return rc;
    r->readable = true;
    bool count_ledger = !(st->state.flags & SFS_STATE_LEDGER);
    rc = read_state(st, r);
    if (!rc)
        describe_steps(r, count_ledger);
    if (!rc && store_in_use(store))
        REASON(r, "in use: the volume is mounted or another snapfs command "
                  "has it open; unmount it first");
    if (!rc) {
        int n = sfs_fsck(st, collect_problem, r);
        rc = n < 0 ? n : 0;
        describe_damage(r);
    }
    if (!rc && !r->current)
        rc = estimate(store, st, r, count_ledger, t0);
    sfs_close(st);
    r->ready = !rc && r->nreasons == 0;
    r->check_seconds = now_seconds() - t0;
    return rc;
}

/* ---- the upgrade ---- */

struct run {
    struct sfs_store *st;
    upgrade_progress_fn progress;
    void *arg;
    long kill_at;     /* SNAPFS_UPGRADE_KILL_AT, 0: none */
    long commits;     /* transactions committed so far */
    uint64_t batches; /* of the ledger */
};

/* After every commit: the fault injection of the crash tests. */
static int committed(void *arg)
{
    struct run *u = arg;
    u->commits++;
    if (u->kill_at && u->commits == u->kill_at)
        raise(SIGKILL);
    return 0;
}

static int ledger_committed(void *arg)
{
    struct run *u = arg;
    u->batches++;
    return committed(u);
}

__attribute__((format(printf, 2, 3)))
static void say(struct run *u, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (u->progress)
        u->progress(u->arg, line);
}

/* One transaction: FN(st, txn, ARG), committed and synced. */
static int in_txn(struct run *u, int (*fn)(struct sfs_store *, MDB_txn *,
                                           const void *), const void *arg)
{
    MDB_txn *txn;
    int rc = sfs_txn_begin(u->st, NULL, true, &txn);
    if (rc)
        return rc;
    rc = fn(u->st, txn, arg);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = sfs_txn_commit(u->st, txn);
    if (!rc)
        rc = sfs_mdb_errno(mdb_env_sync(u->st->env, 1));
    if (!rc)
        committed(u);
    return rc;
}

static int begin_fn(struct sfs_store *st, MDB_txn *txn, const void *arg)
{
    return sfs_upgrade_begin_w(st, txn, arg);
}

static int finish_fn(struct sfs_store *st, MDB_txn *txn, const void *arg)
{
    return sfs_upgrade_finish_w(st, txn);
}

static int step_fn(struct sfs_store *st, MDB_txn *txn, const void *arg)
{
    return sfs_upgrade_step_w(st, txn, arg);
}

static int migrate(struct run *u, struct upgrade_report *r)
{
    struct sfs_store *st = u->st;
    int rc = 0;
    if (!(st->super.format_version & SFS_FORMAT_UPGRADING)) {
        struct sfs_upgrade rec = { .from = r->format, .to = r->target,
                                   .started = time(NULL) };
        snprintf(rec.step, sizeof(rec.step), "ledger");
        rc = in_txn(u, begin_fn, &rec);
        if (rc)
            return rc;
        r->marked = true;
        say(u, "marked as being upgraded from format %u to %u", rec.from,
            rec.to);
    } else {
        r->marked = true;
        say(u, "resuming the upgrade from format %u to %u at step '%s'",
            r->format, r->target, r->resume_step);
    }
    if (!(st->state.flags & SFS_STATE_LEDGER)) {
        double t0 = now_seconds();
        rc = sfs_ledger_count_batched(st, ledger_batch_size(),
                                      ledger_committed, u);
        if (rc < 0)
            return rc;
        say(u, "counted the ledger of what only snapshots hold in %llu "
               "transactions (%.2f s)", (unsigned long long)u->batches,
            now_seconds() - t0);
        rc = in_txn(u, step_fn, "features");
        if (rc)
            return rc;
    }
    rc = in_txn(u, finish_fn, NULL);
    if (rc)
        return rc;
    r->marked = false;
    say(u, "wrote the features record and format %u", r->target);
    return 0;
}

int upgrade_run(const char *store, struct upgrade_report *r,
                upgrade_progress_fn progress, void *arg)
{
    int rc = upgrade_check(store, r);
    if (rc)
        return rc;
    if (!r->ready)
        return -EAGAIN;
    if (r->current)
        return 0;
    const char *k = getenv("SNAPFS_UPGRADE_KILL_AT");
    struct run u = { .progress = progress, .arg = arg,
                     .kill_at = k ? atol(k) : 0 };
    rc = sfs_open(store, SFS_OPEN_EXCLUSIVE | SFS_OPEN_UPGRADE, &u.st);
    if (rc)
        return rc;
    rc = migrate(&u, r);
    sfs_close(u.st);
    return rc;
}
