/*
 * dump.c - `snapfs dump`: a snapshot of a volume, a qtree or a subtree
 * written to a file, a pipe or a tape in the format Linux restore reads.
 *
 *   dump -LEVEL [-b BLOCKING] [-f OUT] [-L LABEL] [--snapshot NAME]
 *        [--no-dates] [--since TOKEN] [--exclude PATTERN]... VOL[/PATH]
 *   dump --restart ID [-b BLOCKING] [-f OUT] VOL
 *   dump dates VOL [--json]
 *   dump contexts VOL [--json]
 *   dump contexts delete VOL ID
 *   dump contexts rewind VOL ID INODE
 *
 * Guarantees:
 *   - every argument is checked before the volume is touched; a refused
 *     dump leaves the volume as it was;
 *   - the snapshot is held (tag dump:ID) from the first block written to
 *     the end; a snapshot the dump created (snapshot_for_backup.N) is
 *     deleted at the end, with the hold, in one transaction that also
 *     records the dump date;
 *   - an interrupted dump (SIGINT, SIGTERM, a write error, or killed)
 *     that got past its directories leaves its context: the restart point
 *     it records is never ahead of what is on the output, so a restart
 *     from it loses nothing (it may repeat a few files, which restore
 *     overwrites);
 *   - a finished dump prints its since-token (DATE-EPOCH: the snapshot's
 *     date and epoch); --since TOKEN makes an incremental of what changed
 *     after that dump, whatever the dump dates say (NDMP's BASE_DATE);
 *   - contexts rewind moves a restartable context's restart point back
 *     (never forward) to INODE, for a caller that knows less reached the
 *     medium than the dump handed to its output (the NDMP server, whose
 *     tape lies behind its own buffers and the mover's);
 *   - --exclude leaves out the entries whose names match (the engine's
 *     spec->exclude); such a dump is not restartable, since its context
 *     does not keep the patterns;
 *   - the volume is read through the store (read-only, short read
 *     transactions), never through the mount, so clients are not slowed
 *     by a lock, and a mounted volume's daemon only serves the begin,
 *     progress and end requests.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "dump.h"
#include "progress.h"
#include "store.h"

#define CMD "dump"
#define CONTEXT_SAVE_NS 1000000000ll
#define DUMP_EXCLUDE_MAX 32

static volatile sig_atomic_t dump_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    dump_stop = 1;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the dump engine's requests: through the daemon or offline ---- */

static int offline_begin(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    return sfs_dump_begin_w(st, txn, arg);
}

static int offline_update(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    const struct sfs_dumpctx *c = arg;
    struct sfs_dumpctx old;
    int rc = sfs_dumpctx_get(st, txn, c->id, &old);
    return rc ? rc : sfs_dumpctx_put_w(st, txn, c);
}

struct end_arg {
    uint32_t id;
    bool finish, record;
};

static int offline_end(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct end_arg *e = arg;
    return e->finish ? sfs_dump_finish_w(st, txn, e->id, e->record)
                     : sfs_dumpctx_delete_w(st, txn, e->id);
}

/* Send WORDS to a mounted volume's daemon, or run FN on the store. */
static int engine_request(struct volume *vol, char **words, int n,
                          char **data, int (*fn)(struct sfs_store *,
                                                 MDB_txn *, void *),
                          void *arg)
{
    int fd = control_connect(vol->store);
    if (fd >= 0) {
        close(fd);
        return volume_request(vol, words, n, data);
    }
    return volume_offline(vol, CMD, fn, arg, true);
}

static int ctx_begin(struct volume *vol, struct sfs_dumpctx *c)
{
    char hex[2 * sizeof(*c) + 1], *data = NULL;
    sfs_dumpctx_to_hex(c, hex);
    char *words[] = { "dump-begin", hex };
    int rc = engine_request(vol, words, 2, &data, offline_begin, c);
    if (!rc && data) {
        char *nl = strchr(data, '\n');
        if (nl)
            *nl = 0;
        rc = sfs_dumpctx_from_hex(data, c) ? -EPROTO : 0;
    }
    free(data);
    return rc;
}

static int ctx_update(struct volume *vol, struct sfs_dumpctx *c)
{
    char hex[2 * sizeof(*c) + 1], *data = NULL;
    c->updated = time(NULL);
    sfs_dumpctx_to_hex(c, hex);
    char *words[] = { "dump-update", hex };
    int rc = engine_request(vol, words, 2, &data, offline_update, c);
    free(data);
    return rc;
}

static int ctx_end(struct volume *vol, uint32_t id, bool finish, bool record)
{
    char ids[16], *data = NULL;
    snprintf(ids, sizeof(ids), "%u", id);
    char *fwords[] = { "dump-finish", ids, record ? "1" : "0" };
    char *dwords[] = { "dump-context-delete", ids };
    struct end_arg e = { id, finish, record };
    int rc = finish ? engine_request(vol, fwords, 3, &data, offline_end, &e)
                    : engine_request(vol, dwords, 2, &data, offline_end, &e);
    free(data);
    return rc;
}

/* ---- reading the store ---- */

/* The store, read-only; a mounted volume's daemon commits what it holds
 * first, so that the store shows every acknowledged change. */
static struct sfs_store *open_store(struct volume *vol)
{
    return volume_read_store(vol, CMD, "dump");
}

/* The directory PATH in VIEW: its object id, or die naming the problem. */
static uint64_t find_dir(struct sfs_store *st, uint64_t view,
                         const struct volume *vol, const char *path)
{
    MDB_txn *txn;
    uint64_t ino = 0;
    struct sfs_inode i;
    int rc = sfs_txn_begin(st, NULL, false, &txn);
    if (!rc) {
        rc = sfs_path_lookup(st, txn, view, path, &ino, NULL, NULL);
        if (!rc)
            rc = sfs_inode_get(st, txn, view, ino, &i);
        mdb_txn_abort(txn);
    }
    if (!rc && !S_ISDIR(i.mode))
        rc = -ENOTDIR;
    if (rc == -ENOENT)
        die(CMD, "%s: %s: no such directory", vol->arg, path);
    if (rc == -ENOTDIR)
        die(CMD, "%s: %s: not a directory (dump takes a volume, a qtree "
                 "or a directory)", vol->arg, path);
    if (rc)
        die(CMD, "%s: %s: %s", vol->arg, path, strerror(-rc));
    return ino;
}

static void format_date(int64_t t, char *out, size_t cap)
{
    if (!t) {
        snprintf(out, cap, "the epoch");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(out, cap, "%a %b %e %H:%M:%S %Y %z", &tm);
}

/* ---- options ---- */

struct dump_opts {
    int level;            /* -1: not given */
    int ntrec;
    const char *out;
    const char *label;
    const char *snapshot;
    uint32_t restart;
    const char *target;
    bool no_dates;        /* do not record the dump date (NDMP UPDATE=n) */
    const char *since;    /* a since-token: the base instead of the dates */
    int64_t since_date;   /* and what it says */
    uint64_t since_epoch;
    char *exclude[DUMP_EXCLUDE_MAX + 1]; /* NULL-terminated patterns */
    int nexclude;
};

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

/* "DATE-EPOCH": 0 or -EINVAL. */
static int parse_since(const char *tok, int64_t *date, uint64_t *epoch)
{
    char *end;
    errno = 0;
    long long d = strtoll(tok, &end, 10);
    if (errno || end == tok || *end != '-' || d <= 0)
        return -EINVAL;
    const char *e = end + 1;
    unsigned long long ep = strtoull(e, &end, 10);
    if (errno || end == e || *end || *e == '-' || ep == 0)
        return -EINVAL;
    *date = d;
    *epoch = ep;
    return 0;
}

static const char *next_arg(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc)
        die_usage(CMD, "%s needs a value", argv[*i]);
    return argv[++*i];
}

static void parse_opts(int argc, char **argv, struct dump_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->level = -1;
    o->ntrec = DUMP_NTREC_DEFAULT;
    o->out = "-";
    o->label = "none";
    long v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] >= '0' && a[1] <= '9') {
            if (parse_int(a + 1, 0, SFS_DUMP_LEVEL_MAX, &v))
                die_usage(CMD, "level '%s': give -0 to -%d", a + 1,
                          SFS_DUMP_LEVEL_MAX);
            o->level = (int)v;
        } else if (!strcmp(a, "-b")) {
            const char *b = next_arg(argc, argv, &i);
            if (parse_int(b, DUMP_NTREC_MIN, DUMP_NTREC_MAX, &v))
                die_usage(CMD, "blocking factor '%s': give %d to %d tape "
                               "blocks of 1 KiB per record", b,
                          DUMP_NTREC_MIN, DUMP_NTREC_MAX);
            o->ntrec = (int)v;
        } else if (!strcmp(a, "-f")) {
            o->out = next_arg(argc, argv, &i);
        } else if (!strcmp(a, "-L")) {
            o->label = next_arg(argc, argv, &i);
            if (!o->label[0] || strlen(o->label) > 15)
                die_usage(CMD, "label '%s': give 1 to 15 characters",
                          o->label);
        } else if (!strcmp(a, "--no-dates")) {
            o->no_dates = true;
        } else if (!strcmp(a, "--snapshot")) {
            o->snapshot = next_arg(argc, argv, &i);
        } else if (!strcmp(a, "--since")) {
            o->since = next_arg(argc, argv, &i);
            if (parse_since(o->since, &o->since_date, &o->since_epoch))
                die_usage(CMD, "--since '%s': not a since-token (DATE-EPOCH, "
                               "as a finished dump prints it)", o->since);
        } else if (!strcmp(a, "--exclude")) {
            const char *e = next_arg(argc, argv, &i);
            if (!e[0] || strchr(e, '/'))
                die_usage(CMD, "--exclude '%s': give a name pattern (names "
                               "are matched, not paths)", e);
            if (o->nexclude == DUMP_EXCLUDE_MAX)
                die_usage(CMD, "--exclude: at most %d patterns",
                          DUMP_EXCLUDE_MAX);
            o->exclude[o->nexclude++] = (char *)e;
        } else if (!strcmp(a, "--restart")) {
            const char *r = next_arg(argc, argv, &i);
            if (parse_int(r, 1, UINT32_MAX, &v))
                die_usage(CMD, "context id '%s': see snapfs dump contexts",
                          r);
            o->restart = (uint32_t)v;
        } else if (a[0] == '-' && a[1]) {
            die_usage(CMD, "unknown option '%s'", a);
        } else if (o->target) {
            die_usage(CMD, "give one VOL[/PATH]");
        } else {
            o->target = a;
        }
    }
    if (!o->target)
        die_usage(CMD, "give the volume (VOL or VOL/PATH) to dump");
    if (o->restart && (o->level >= 0 || o->snapshot || o->since ||
                       o->nexclude))
        die_usage(CMD, "--restart continues a dump: its level, snapshot "
                       "and base are the context's");
    if (o->since && o->level == 0)
        die_usage(CMD, "--since makes an incremental: give a level of 1 "
                       "or more");
    if (!o->restart && o->level < 0)
        die_usage(CMD, "give the level, -0 (full) to -%d",
                  SFS_DUMP_LEVEL_MAX);
}

/* ---- the output ---- */

struct output {
    int fd;
    bool tape;
    bool is_stdout;
};

static void open_output(const char *path, struct output *o)
{
    memset(o, 0, sizeof(*o));
    if (!strcmp(path, "-")) {
        if (isatty(STDOUT_FILENO))
            die(CMD, "standard output is a terminal; give -f FILE or "
                     "redirect it");
        o->fd = STDOUT_FILENO;
        o->is_stdout = true;
        return;
    }
    o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (o->fd < 0)
        die(CMD, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (!fstat(o->fd, &sb) && S_ISCHR(sb.st_mode))
        o->tape = true;
}

/* Refuse an output we cannot write before anything else happens. */
static void check_output(const char *path)
{
    if (!strcmp(path, "-"))
        return;
    struct stat sb;
    if (!stat(path, &sb)) {
        if (S_ISDIR(sb.st_mode))
            die(CMD, "%s: is a directory", path);
        if (access(path, W_OK))
            die(CMD, "%s: %s", path, strerror(errno));
        return;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = 0;
    if (access(slash ? dir : ".", W_OK))
        die(CMD, "%s: cannot create it: %s", path, strerror(errno));
}

/* ---- progress ---- */

struct run {
    struct volume *vol;
    struct sfs_dumpctx ctx;
    struct dump_progress last;
    uint64_t files_before, bytes_before; /* earlier parts */
    int64_t saved_ns;
    struct progress prog;
    int save_error;
    bool no_dates;                       /* the date is not recorded */
    char *const *exclude;                /* names left out, or NULL */
};

/* Save the restart point in the context, at most once a second. */
static void save_point(struct run *r, const struct dump_progress *p,
                       bool now)
{
    if (p->committed_next == r->ctx.next_ino && p->phase == (int)r->ctx.phase)
        return;
    int64_t t = mono_ns();
    /* Reaching the files makes the dump restartable: say so at once. */
    if (!now && t - r->saved_ns < CONTEXT_SAVE_NS &&
        !(p->committed_next && r->ctx.phase != SFS_DUMP_PHASE_FILES))
        return;
    r->saved_ns = t;
    if (p->committed_next) {
        r->ctx.phase = SFS_DUMP_PHASE_FILES;
        r->ctx.next_ino = p->committed_next;
        r->ctx.files = r->files_before + p->committed_files;
        r->ctx.bytes = r->bytes_before + p->committed_bytes;
    }
    int rc = ctx_update(r->vol, &r->ctx);
    if (rc)
        r->save_error = rc;
}

static void on_progress(void *arg, const struct dump_progress *p)
{
    struct run *r = arg;
    r->last = *p;
    r->prog.total = p->est_bytes;
    progress_update(&r->prog, p->bytes, p->files);
    save_point(r, p, false);
}

/* ---- one dump, or one part of a restarted one ---- */

/* A string into a fixed header field, cut to fit (the format's names
 * are 15 or 63 bytes; the full path is in the dump dates). */
static void copy_field(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

static void fill_tape_header(struct run *r, struct sfs_store *st,
                             const char *path, const struct dump_plan *plan,
                             struct dump_header *t)
{
    memset(t, 0, sizeof(*t));
    t->date = (int32_t)r->ctx.date;
    t->ddate = (int32_t)r->ctx.ddate;
    t->volume = (int32_t)r->ctx.parts + 1;
    t->level = r->ctx.level;
    t->ntrec = (int32_t)r->ctx.ntrec;
    copy_field(t->label, sizeof(t->label), r->ctx.label);
    copy_field(t->filesys, sizeof(t->filesys), path);
    copy_field(t->dev, sizeof(t->dev), r->vol->store);
    if (gethostname(t->host, sizeof(t->host) - 1))
        snprintf(t->host, sizeof(t->host), "localhost");
    struct dump_snapfs_ext x = { .est_bytes = plan->est_bytes,
                                 .part = r->ctx.parts,
                                 .context = r->ctx.id };
    memcpy(x.uuid, st->super.uuid, sizeof(x.uuid));
    dump_ext_put(t, &x);
}

static const char *failure_reason(int rc)
{
    switch (rc) {
    case -EINTR: return "interrupted";
    case -E2BIG: return "does not fit the dump format";
    case -EIO: return "a block of the snapshot is damaged (see snapfs fsck)";
    case -ENOSPC: return "the output is full (end of tape?)";
    case -EPIPE: return "the output was closed";
    default: return strerror(-rc);
    }
}

/* After a failed run: keep a restartable context, or remove it. */
static void fail(struct run *r, const char *out, const struct dump_failure *f)
{
    progress_clear(&r->prog);
    bool output_side = f->rc == -EINTR || (f->doing &&
                       !strcmp(f->doing, "writing the output"));
    save_point(r, &r->last, true);
    char where[64] = "";
    if (output_side)
        ;
    else if (f->obj)
        snprintf(where, sizeof(where), " (object %llu, %s)",
                 (unsigned long long)f->obj, f->doing ? f->doing : "");
    else if (f->doing && !output_side)
        snprintf(where, sizeof(where), " (%s)", f->doing);
    if (output_side && r->ctx.phase == SFS_DUMP_PHASE_FILES &&
        !r->save_error && !r->exclude) {
        fprintf(stderr, "snapfs dump: %s: %s%s after %llu files; the dump "
                        "is restartable: snapfs dump --restart %u -f OUT2 "
                        "%s (or snapfs dump contexts delete %s %u)\n",
                out, failure_reason(f->rc), where,
                (unsigned long long)r->ctx.files, r->ctx.id, r->vol->arg,
                r->vol->arg, r->ctx.id);
        exit(1);
    }
    int rc = ctx_end(r->vol, r->ctx.id, false, false);
    fprintf(stderr, "snapfs dump: %s: %s%s; nothing to restart%s%s\n",
            r->vol->arg, failure_reason(f->rc), where,
            r->exclude ? " (a dump with --exclude is not restartable)" : "",
            rc ? " (the dump context could not be removed: see snapfs dump "
                 "contexts)" : "");
    exit(1);
}

static void summary(struct run *r, const char *path, uint64_t files,
                    uint64_t bytes)
{
    progress_clear(&r->prog);
    fprintf(stderr, "snapfs dump: level %d dump of %s:%s (snapshot %s%s) "
                    "done\n", r->ctx.level, r->vol->arg, path,
            r->ctx.snapshot, r->ctx.auto_snapshot ? ", now deleted" : "");
    progress_finish(&r->prog, "snapfs dump: dumped", bytes, files);
    fprintf(stderr, "snapfs dump: since-token %lld-%llu (snapfs dump "
                    "--since it: what changes after this dump)\n",
            (long long)r->ctx.date, (unsigned long long)r->ctx.epoch);
}

static void run_dump(struct run *r, const char *outpath, uint32_t from_ino)
{
    struct sfs_store *st = open_store(r->vol);
    const char *path = r->ctx.path;
    uint64_t root = find_dir(st, r->ctx.epoch, r->vol, path);
    struct dump_spec spec = { .st = st, .view = r->ctx.epoch,
                              .base_epoch = r->ctx.base_epoch, .root = root,
                              .restart_ino = from_ino, .stop = &dump_stop,
                              .exclude = r->exclude,
                              .progress = on_progress, .arg = r };
    struct dump_plan plan;
    struct dump_failure f;
    if (dump_prepare(&spec, &plan, &f)) {
        sfs_close(st);
        fail(r, outpath, &f);
    }
    fill_tape_header(r, st, path, &plan, &spec.tape);
    struct output out;
    open_output(outpath, &out);
    struct dump_writer w;
    if (dump_writer_init(&w, out.fd, (int)r->ctx.ntrec, out.tape))
        die(CMD, "out of memory");
    w.stop = &dump_stop;
    int rc = dump_write(&spec, &plan, &w, &f);
    dump_writer_free(&w);
    dump_plan_free(&plan);
    sfs_close(st);
    if (!rc && !out.is_stdout && (fsync(out.fd) && errno != EINVAL &&
                                  errno != EROFS)) {
        f.rc = rc = -errno;
        f.doing = "writing the output";
    }
    if (!out.is_stdout && close(out.fd) && !rc) {
        f.rc = rc = -errno;
        f.doing = "writing the output";
    }
    if (rc)
        fail(r, outpath, &f);
    uint64_t files = r->files_before + r->last.files;
    uint64_t bytes = r->bytes_before + w.bytes_out;
    rc = ctx_end(r->vol, r->ctx.id, true, !r->no_dates);
    if (rc)
        die(CMD, "%s: the dump is complete but its date could not be "
                 "recorded: %s (context %u is left; see snapfs dump "
                 "contexts)", r->vol->arg, strerror(-rc), r->ctx.id);
    summary(r, path, files, bytes);
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static const char *begin_error(int rc, const struct dump_opts *o)
{
    static char buf[512];
    switch (rc) {
    case -ENOENT:
        snprintf(buf, sizeof(buf), "no snapshot named '%s'", o->snapshot);
        return buf;
    case -EACCES:
        return "permission denied (only root or the volume's owner may "
               "dump it)";
    case -ENOSPC: return "the volume is full: no room for the dump's "
                         "snapshot";
    default: return strerror(-rc);
    }
}

/* Make the begun dump an incremental from the dump of DATE and EPOCH:
 * the objects born after EPOCH; the header's ddate DATE, which a
 * restore checks against the dump restored before. */
static int since_base(struct run *r, int64_t date, uint64_t epoch)
{
    struct sfs_dumpctx *c = &r->ctx;
    if (epoch >= c->epoch || date > c->date)
        return -ERANGE;
    c->ddate = date;
    c->base_epoch = epoch;
    c->base_level = c->level - 1;
    return ctx_update(r->vol, c);
}

static int dump_new(struct dump_opts *o)
{
    struct volume vol;
    char *path;
    volume_open_path(&vol, CMD, o->target, &path);
    if (sfs_dump_path_valid(path))
        die(CMD, "%s: path too long", o->target);
    check_output(o->out);
    struct sfs_store *st = open_store(&vol);
    find_dir(st, SFS_VIEW_LIVE, &vol, path);
    sfs_close(st);

    struct run r = { .vol = &vol, .no_dates = o->no_dates,
                     .exclude = o->nexclude ? o->exclude : NULL };
    struct sfs_dumpctx *c = &r.ctx;
    snprintf(c->path, sizeof(c->path), "%s", path);
    snprintf(c->label, sizeof(c->label), "%s", o->label);
    c->level = o->level;
    c->ntrec = (uint32_t)o->ntrec;
    c->pid = (int32_t)getpid();
    c->created = c->updated = time(NULL);
    c->auto_snapshot = !o->snapshot;
    if (o->snapshot)
        snprintf(c->snapshot, sizeof(c->snapshot), "%s", o->snapshot);
    catch_signals();
    int rc = ctx_begin(&vol, c);
    if (rc)
        die(CMD, "%s: %s", vol.arg, begin_error(rc, o));
    if (o->since && (rc = since_base(&r, o->since_date, o->since_epoch))) {
        int end = ctx_end(&vol, c->id, false, false);
        die(CMD, "%s: --since %s: %s%s", vol.arg, o->since,
            rc == -ERANGE ? "that dump is not older than this one's "
                            "snapshot (a token of another volume?)"
                          : strerror(-rc),
            end ? " (the dump context could not be removed: see snapfs "
                  "dump contexts)" : "");
    }
    if (o->level > 0 && c->base_level < 0 && !o->since)
        fprintf(stderr, "snapfs dump: %s:%s has no dump of a level below "
                        "%d; this dump holds everything\n", vol.arg, path,
                o->level);
    r.saved_ns = mono_ns();
    progress_start(&r.prog, "snapfs dump", 0);
    run_dump(&r, o->out, 0);
    free(path);
    free((char *)vol.arg); /* volume_open_path's copy */
    free(vol.store);
    free(vol.mountpoint);
    return 0;
}

static bool process_alive(int pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static int dump_restart(struct dump_opts *o)
{
    struct volume vol;
    volume_open(&vol, CMD, o->target);
    check_output(o->out);
    struct run r = { .vol = &vol };
    struct sfs_store *st = open_store(&vol);
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, false, &txn);
    if (!rc) {
        rc = sfs_dumpctx_get(st, txn, o->restart, &r.ctx);
        mdb_txn_abort(txn);
    }
    sfs_close(st);
    if (rc == -ENOENT)
        die(CMD, "%s: no dump context %u (see snapfs dump contexts)",
            vol.arg, o->restart);
    if (rc)
        die(CMD, "%s: %s", vol.arg, strerror(-rc));
    if (r.ctx.pid != (int32_t)getpid() && process_alive(r.ctx.pid))
        die(CMD, "%s: dump %u is still running (process %d)", vol.arg,
            r.ctx.id, r.ctx.pid);
    if (r.ctx.phase != SFS_DUMP_PHASE_FILES || !r.ctx.next_ino)
        die(CMD, "%s: dump %u stopped before its directories were written; "
                 "it cannot be restarted (delete it with snapfs dump "
                 "contexts delete)", vol.arg, r.ctx.id);
    r.ctx.pid = (int32_t)getpid();
    r.ctx.parts++;
    r.files_before = r.ctx.files;
    r.bytes_before = r.ctx.bytes;
    catch_signals();
    rc = ctx_update(&vol, &r.ctx);
    if (rc)
        die(CMD, "%s: %s", vol.arg, strerror(-rc));
    r.saved_ns = mono_ns();
    progress_start(&r.prog, "snapfs dump", 0);
    run_dump(&r, o->out, r.ctx.next_ino);
    free(vol.store);
    free(vol.mountpoint);
    return 0;
}

/* ---- dates and contexts ---- */

struct list_arg {
    bool json;
    int n;
};

static int date_line(void *arg, const struct sfs_dumpdate *d)
{
    struct list_arg *l = arg;
    char when[64];
    format_date(d->date, when, sizeof(when));
    if (l->json) {
        printf("%s{\"path\":", l->n ? "," : "");
        print_json_string(d->path);
        printf(",\"level\":%d,\"date\":%lld,\"snapshot\":", d->level,
               (long long)d->date);
        print_json_string(d->snapshot);
        putchar('}');
    } else {
        printf("%-24s %2d  %s\n", d->path, d->level, when);
    }
    l->n++;
    return 0;
}

static const char *ctx_state(const struct sfs_dumpctx *c)
{
    if (process_alive(c->pid))
        return "running";
    return c->phase == SFS_DUMP_PHASE_FILES ? "restartable"
                                            : "not-restartable";
}

static int ctx_line(void *arg, const struct sfs_dumpctx *c)
{
    struct list_arg *l = arg;
    char size[32], when[64];
    format_bytes(c->bytes, size, sizeof(size));
    format_date(c->updated, when, sizeof(when));
    if (l->json) {
        printf("%s{\"id\":%u,\"state\":\"%s\",\"level\":%d,\"path\":",
               l->n ? "," : "", c->id, ctx_state(c), c->level);
        print_json_string(c->path);
        printf(",\"snapshot\":");
        print_json_string(c->snapshot);
        printf(",\"snapshot_created\":%s,\"files\":%llu,\"bytes\":%llu,"
               "\"parts\":%u,\"updated\":%lld}",
               c->auto_snapshot ? "true" : "false",
               (unsigned long long)c->files, (unsigned long long)c->bytes,
               c->parts + 1, (long long)c->updated);
    } else {
        printf("%-4u %-15s %2d  %-20s %-24s %8llu files %10s  %s\n", c->id,
               ctx_state(c), c->level, c->path, c->snapshot,
               (unsigned long long)c->files, size, when);
    }
    l->n++;
    return 0;
}

static int list_meta(int argc, char **argv, bool dates)
{
    const char *sub = dates ? "dates" : "contexts";
    const char *target = NULL;
    struct list_arg l = { 0 };
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            l.json = true;
        else if (argv[i][0] == '-')
            die_usage(CMD, "%s: unknown option '%s'", sub, argv[i]);
        else if (target)
            die_usage(CMD, "%s: give one volume", sub);
        else
            target = argv[i];
    }
    if (!target)
        die_usage(CMD, "%s: give the volume", sub);
    struct volume vol;
    volume_open(&vol, CMD, target);
    struct sfs_store *st = open_store(&vol);
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, false, &txn);
    if (!rc) {
        if (l.json)
            putchar('[');
        else if (dates)
            printf("%-24s %s  %s\n", "PATH", "LV", "DATE");
        else
            printf("%-4s %-15s %s  %-20s %-24s %14s %10s  %s\n", "ID",
                   "STATE", "LV", "PATH", "SNAPSHOT", "FILES", "BYTES",
                   "UPDATED");
        rc = dates ? sfs_dumpdate_foreach(st, txn, date_line, &l)
                   : sfs_dumpctx_foreach(st, txn, ctx_line, &l);
        if (l.json)
            puts("]");
        mdb_txn_abort(txn);
    }
    sfs_close(st);
    if (rc)
        die(CMD, "%s: %s", vol.arg, strerror(-rc));
    free(vol.store);
    free(vol.mountpoint);
    return 0;
}

/* Dump context ID of VOL into C: 0 or -errno (-ENOENT: none). */
static int read_context(struct volume *vol, uint32_t id,
                        struct sfs_dumpctx *c)
{
    struct sfs_store *st = open_store(vol);
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, false, &txn);
    if (!rc) {
        rc = sfs_dumpctx_get(st, txn, id, c);
        mdb_txn_abort(txn);
    }
    sfs_close(st);
    return rc;
}

static int delete_context(int argc, char **argv)
{
    if (argc != 5)
        die_usage(CMD, "contexts delete: give the volume and the context id");
    long id;
    if (parse_int(argv[4], 1, UINT32_MAX, &id))
        die_usage(CMD, "context id '%s': see snapfs dump contexts", argv[4]);
    struct volume vol;
    volume_open(&vol, CMD, argv[3]);
    struct sfs_dumpctx c;
    int rc = read_context(&vol, (uint32_t)id, &c);
    if (!rc && process_alive(c.pid) && c.pid != (int32_t)getpid())
        die(CMD, "%s: dump %ld is running (process %d); stop it first",
            vol.arg, id, c.pid);
    if (!rc)
        rc = ctx_end(&vol, (uint32_t)id, false, false);
    if (rc == -ENOENT)
        die(CMD, "%s: no dump context %ld", vol.arg, id);
    if (rc)
        die(CMD, "%s: %s", vol.arg, strerror(-rc));
    printf("snapfs: deleted dump context %ld of %s (snapshot %s %s)\n", id,
           vol.arg, c.snapshot, c.auto_snapshot ? "deleted" : "released");
    free(vol.store);
    free(vol.mountpoint);
    return 0;
}

/* contexts rewind VOL ID INODE: the restart point moved back to INODE
 * (the first file not wholly on the medium), never forward; prints the
 * point it has now. */
static int rewind_context(int argc, char **argv)
{
    if (argc != 6)
        die_usage(CMD, "contexts rewind: give the volume, the context id "
                       "and the inode to restart at");
    long id, ino;
    if (parse_int(argv[4], 1, UINT32_MAX, &id))
        die_usage(CMD, "context id '%s': see snapfs dump contexts", argv[4]);
    if (parse_int(argv[5], 1, UINT32_MAX, &ino))
        die_usage(CMD, "inode '%s': give a dump inode number", argv[5]);
    struct volume vol;
    volume_open(&vol, CMD, argv[3]);
    struct sfs_dumpctx c;
    int rc = read_context(&vol, (uint32_t)id, &c);
    if (rc == -ENOENT)
        die(CMD, "%s: no dump context %ld", vol.arg, id);
    if (rc)
        die(CMD, "%s: %s", vol.arg, strerror(-rc));
    if (process_alive(c.pid) && c.pid != (int32_t)getpid())
        die(CMD, "%s: dump %ld is running (process %d); stop it first",
            vol.arg, id, c.pid);
    if (c.phase != SFS_DUMP_PHASE_FILES || !c.next_ino)
        die(CMD, "%s: dump %ld is not restartable (it stopped before its "
                 "files)", vol.arg, id);
    /* a point already before INODE stays: it loses nothing either */
    if ((uint32_t)ino < c.next_ino) {
        c.next_ino = (uint32_t)ino;
        rc = ctx_update(&vol, &c);
        if (rc)
            die(CMD, "%s: %s", vol.arg, strerror(-rc));
    }
    printf("snapfs: dump context %ld of %s restarts at inode %u\n", id,
           vol.arg, c.next_ino);
    free(vol.store);
    free(vol.mountpoint);
    return 0;
}

int cmd_dump(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "contexts") &&
        !strcmp(argv[2], "rewind"))
        return rewind_context(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "dates"))
        return list_meta(argc, argv, true);
    if (argc >= 3 && !strcmp(argv[1], "contexts") &&
        !strcmp(argv[2], "delete"))
        return delete_context(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "contexts"))
        return list_meta(argc, argv, false);
    struct dump_opts o;
    parse_opts(argc, argv, &o);
    return o.restart ? dump_restart(&o) : dump_new(&o);
}
