/*
 * tape_restore.c - `snapfs restore -t|-r|-x`: list, restore or extract a
 * dump (ours or Linux dump's) into a directory, a mounted snapfs volume,
 * or an unmounted snapfs store.
 *
 * This is the command layer of tape/restore.c: it opens the inputs and the
 * destination, turns the library's structured errors into one message
 * ("snapfs restore: OBJECT: why", exit 1; usage errors exit 2), and
 * reports progress and a summary.  A destination that is an unmounted
 * store (VOL or VOL/PATH) is mounted by running this binary's `mount` on a
 * private temporary directory, restored into, and unmounted again, also
 * when the restore fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "restore.h"

#define CMD "restore"
#define MAX_PARTS 64

struct qtree_note {
    char *name, *desc;
};

struct restore_cmd {
    enum rst_mode mode;
    const char *in_names[MAX_PARTS];
    int fds[MAX_PARTS];
    int nparts;
    int blocking;
    const char *dest_arg;     /* as given, for messages */
    char *destdir;            /* where we write */
    char *tmp_mount;          /* our private mountpoint, or NULL */
    bool at_volume_root;      /* DESTDIR is the root of a snapfs volume */
    bool verbose, force;
    const char *rename_to;
    struct qtree_note *qtrees;
    size_t nqtrees;
    struct progress prog;
};

/* ---- the qtree hook ---- */

/* Record a line for the report. */
static int note_qtree(struct restore_cmd *c, const char *name,
                      const char *what)
{
    struct qtree_note *q = realloc(c->qtrees,
                                   (c->nqtrees + 1) * sizeof(*q));
    if (!q)
        return -ENOMEM;
    c->qtrees = q;
    q[c->nqtrees].name = strdup(name);
    q[c->nqtrees].desc = strdup(what);
    if (!q[c->nqtrees].name || !q[c->nqtrees].desc)
        return -ENOMEM;
    c->nqtrees++;
    return 0;
}

/*
 * A directory carrying a qtree's description (trusted.snapfs.qtree) is
 * about to be created directly in the destination.  At the root of a
 * snapfs volume it becomes a qtree again: the volume's daemon creates it,
 * empty, with the dump's style and quota, before its files are restored
 * into it (so they count against its quota).  Deeper it is a plain
 * directory, as on NetApp.  A directory of that name that is already there
 * is kept as it is.
 */
static int restore_qtree(struct restore_cmd *c, const char *name,
                         const char *desc, bool at_top)
{
    struct sfs_qtree_info info;
    if (!at_top || !c->at_volume_root)
        return 0;
    if (sfs_qtree_parse(desc, strlen(desc), &info))
        return note_qtree(c, name, "restored as a plain directory (its "
                                   "description in the dump is malformed)");
    char quota[32];
    snprintf(quota, sizeof(quota), "%llu",
             (unsigned long long)info.quota_bytes);
    char *words[] = { "qtree-create", (char *)name,
                      (char *)sfs_qtree_style_name(info.style), quota };
    struct volume vol = { .arg = c->dest_arg };
    vol.store = mounted_store(c->destdir);
    vol.mounted = vol.store != NULL;
    vol.mountpoint = c->destdir;
    char *data = NULL;
    int rc = vol.store ? volume_request(&vol, words, 4, &data) : -ENODEV;
    free(data);
    free(vol.store);
    if (rc == -EEXIST)
        return note_qtree(c, name, "already there; kept as it is");
    if (rc)
        return note_qtree(c, name, "restored as a plain directory (the "
                                   "qtree could not be created)");
    char what[300];
    snprintf(what, sizeof(what), "a qtree again (%s)", desc);
    return note_qtree(c, name, what);
}

static int on_qtree(void *arg, const char *path, const char *desc,
                    bool at_top)
{
    return restore_qtree(arg, path, desc, at_top);
}

/* ---- listing ---- */

static void print_date(FILE *f, const char *what, int32_t date)
{
    time_t t = date;
    fprintf(f, "%s%s", what, date ? ctime(&t) : "the epoch\n");
}

static int on_volume(void *arg, const struct rst_volinfo *v)
{
    struct restore_cmd *c = arg;
    if (c->mode != RST_LIST && !c->verbose)
        return 0;
    FILE *f = c->mode == RST_LIST ? stdout : stderr;
    print_date(f, "Dump   date: ", v->tape.date);
    print_date(f, "Dumped from: ", v->tape.ddate);
    fprintf(f, "Level %d dump of %s on %s:%s\nLabel: %s\n", v->tape.level,
            v->tape.filesys, v->tape.host, v->tape.dev, v->tape.label);
    return 0;
}

static int on_list(void *arg, uint32_t ino, const char *path, bool dir)
{
    printf("%10u\t%s\n", ino, path);
    return ferror(stdout) ? -EIO : 0;
}

static void on_progress(void *arg, uint64_t bytes, uint64_t files)
{
    struct restore_cmd *c = arg;
    progress_update(&c->prog, bytes, files);
}

/* ---- messages ---- */

static const char *date_str(int32_t date, char *buf, size_t cap)
{
    time_t t = date;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

static char *size_str(uint64_t bytes)
{
    static char bufs[4][32];
    static int k;
    char *b = bufs[k++ % 4];
    format_bytes(bytes, b, sizeof(bufs[0]));
    return b;
}

/* "DEST/path", as the user would name it. */
static char *dest_path(const struct restore_cmd *c, const char *rel)
{
    char *s;
    if (asprintf(&s, "%s/%s", c->dest_arg, rel) < 0)
        exit(1);
    return s;
}

/* The problem, without the object it concerns. */
static char *problem(const struct restore_cmd *c, const struct rst_error *e)
{
    char *s = NULL, d1[32], d2[32];
    unsigned long long blk = (unsigned long long)e->block;
    unsigned long long byte = blk * DUMP_TP_BSIZE;
    int rc = 0;
    switch (e->kind) {
    case RST_E_READ:
        rc = asprintf(&s, "read error at block %llu: %s", blk,
                      strerror(e->err));
        break;
    case RST_E_NOT_DUMP:
        rc = asprintf(&s, "not a dump (no dump volume header at block %llu)",
                      blk ? blk - 1 : 0);
        break;
    case RST_E_BAD_HEADER:
        rc = asprintf(&s, "corrupted header at block %llu (byte %llu): its "
                      "checksum or magic number is wrong", blk, byte);
        break;
    case RST_E_UNEXPECTED:
        rc = asprintf(&s, "unexpected header at block %llu (inode %u)",
                      blk ? blk - 1 : 0, e->ino);
        break;
    case RST_E_INCOMPLETE:
        if (e->err != EIO) {
            rc = asprintf(&s, "no room left in %s (%s)", c->dest_arg,
                          strerror(e->err));
            break;
        }
        rc = asprintf(&s, "the dump ends early at block %llu (byte %llu), "
                      "and no later part wrote it again", blk, byte);
        break;
    case RST_E_TRUNCATED:
        rc = asprintf(&s, "the dump ends early at block %llu (byte %llu)",
                      blk, byte);
        break;
    case RST_E_BAD_DIR:
        rc = asprintf(&s, "malformed directory block of inode %u (byte %lld "
                      "of its entries), before block %llu", e->ino,
                      (long long)e->got, blk);
        break;
    case RST_E_BAD_XATTR:
        rc = asprintf(&s, "malformed attribute record of inode %u (byte %lld "
                      "of it), before block %llu", e->ino, (long long)e->got,
                      blk);
        break;
    case RST_E_BLOCKING:
        rc = asprintf(&s, "written with blocking factor %lld, not %lld (-b)",
                      (long long)e->got, (long long)e->want);
        break;
    case RST_E_GAP:
        rc = asprintf(&s, "this is a level %d dump based on the dump of %s, "
                      "but %s was last restored from the level %d dump of "
                      "%s; restore the missing level first", e->level,
                      date_str(e->ddate, d1, sizeof(d1)), c->dest_arg,
                      e->prev_level, date_str(e->prev_date, d2, sizeof(d2)));
        break;
    case RST_E_NO_STATE:
        rc = asprintf(&s, "this is a level %d dump based on the dump of %s, "
                      "but %s holds no %s (nothing was restored there "
                      "before); restore the level 0 dump first", e->level,
                      date_str(e->ddate, d1, sizeof(d1)), c->dest_arg,
                      RST_STATE_FILE);
        break;
    case RST_E_OTHER_VOLUME:
        rc = asprintf(&s, "an incremental dump of another volume than the "
                      "one %s was restored from (the level %d dump of %s)",
                      c->dest_arg, e->prev_level,
                      date_str(e->prev_date, d1, sizeof(d1)));
        break;
    case RST_E_PART:
        rc = asprintf(&s, "not the next part of this dump: it is volume %lld "
                      "of the dump of %s, expected volume %lld of the dump "
                      "of %s (same context)", (long long)e->got,
                      date_str(e->date, d1, sizeof(d1)), (long long)e->want,
                      date_str(e->prev_date, d2, sizeof(d2)));
        break;
    case RST_E_FIRST_PART:
        rc = asprintf(&s, "this is volume %lld of a dump, not its first; "
                      "give all its parts, in order, with one -f each",
                      (long long)e->got);
        break;
    case RST_E_EXT_VERSION:
        rc = asprintf(&s, "the dump's snapfs extensions are version %lld, "
                      "newer than the version %lld this snapfs reads; "
                      "nothing was restored (a newer snapfs restores it "
                      "whole; Linux restore reads the plain dump without "
                      "them)", (long long)e->got, (long long)e->want);
        break;
    case RST_E_STATE:
        rc = asprintf(&s, "%s", e->err == EBADMSG ? "malformed"
                                                  : strerror(e->err));
        break;
    case RST_E_DEST:
        rc = asprintf(&s, "%s: %s", e->op ? e->op : "write",
                      strerror(e->err));
        break;
    case RST_E_NOSPACE:
        rc = asprintf(&s, "needs %s, only %s free; nothing was restored "
                      "(use --force to restore what fits)",
                      size_str((uint64_t)e->want), size_str((uint64_t)e->got));
        break;
    case RST_E_NOT_FOUND:
        rc = asprintf(&s, "not on the dump");
        break;
    case RST_E_NONE:
        rc = asprintf(&s, "%s", strerror(e->err ? e->err : EIO));
        break;
    }
    if (rc < 0)
        exit(1);
    return s;
}

/* The object a problem concerns. */
static char *object(const struct restore_cmd *c, const struct rst_error *e)
{
    const char *in = c->in_names[e->part < c->nparts ? e->part : 0];
    switch (e->kind) {
    case RST_E_DEST:
        return dest_path(c, e->path);
    case RST_E_STATE:
        return dest_path(c, RST_STATE_FILE);
    case RST_E_NOSPACE:
        return strdup(c->dest_arg);
    case RST_E_NOT_FOUND:
        return strdup(e->path);
    default:
        return strdup(in);
    }
}

static void report_failure(struct restore_cmd *c, const struct rst_error *e)
{
    char *why = problem(c, e), *obj = object(c, e);
    fprintf(stderr, "snapfs restore: ");
    for (size_t i = 0; i < e->nincomplete; i++) {
        char *p = dest_path(c, e->incomplete[i].path);
        fprintf(stderr, "%s%s: left incomplete (%s of %s)", i ? ", " : "", p,
                size_str(e->incomplete[i].written),
                size_str(e->incomplete[i].size));
        free(p);
    }
    bool full = e->kind == RST_E_INCOMPLETE && e->err != EIO;
    if (e->nincomplete && full)
        fprintf(stderr, ": %s", why);
    else if (e->nincomplete)
        fprintf(stderr, ": %s: %s", obj, why);
    else
        fprintf(stderr, "%s: %s", obj, why);
    fputc('\n', stderr);
    free(why);
    free(obj);
}

/* ---- the destination ---- */

static bool is_store(const char *path)
{
    char data[PATH_MAX];
    struct stat sb;
    snprintf(data, sizeof(data), "%s/data.mdb", path);
    return stat(data, &sb) == 0;
}

/* The mountpoint of STORE when it is mounted, else NULL. */
static char *store_mountpoint(const char *store)
{
    char real[PATH_MAX], line[8192], *found = NULL;
    if (!realpath(store, real))
        return NULL;
    FILE *f = fopen("/proc/self/mountinfo", "r");
    while (f && fgets(line, sizeof(line), f)) {
        char mnt[PATH_MAX], fstype[64], source[PATH_MAX];
        char *dash = strstr(line, " - ");
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 || !dash ||
            sscanf(dash + 3, "%63s %4095s", fstype, source) != 2)
            continue;
        if (!strcmp(fstype, "fuse.snapfs") && !strcmp(source, real)) {
            free(found);
            found = strdup(mnt);
        }
    }
    if (f)
        fclose(f);
    return found;
}

static int run_self(const char *a1, const char *a2, const char *a3)
{
    pid_t pid = fork();
    if (pid == 0) {
        /* the daemon it may start must not hold our input or output */
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
        }
        execl("/proc/self/exe", "snapfs", a1, a2, a3, (char *)NULL);
        _exit(127);
    }
    int ws;
    if (pid < 0 || waitpid(pid, &ws, 0) < 0)
        return -1;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

static void mkdir_p(const char *cmd, char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        mkdir(path, 0755);
        *p = '/';
    }
    if (mkdir(path, 0755) && errno != EEXIST)
        die(cmd, "%s: %s", path, strerror(errno));
}

/* VOL (a store, mounted or not) and PATH inside it: where to write. */
static void open_store_dest(struct restore_cmd *c, const char *store,
                            const char *sub)
{
    char *mnt = store_mountpoint(store);
    if (!mnt) {
        char tmpl[] = "/tmp/snapfs-restore.XXXXXX";
        if (!mkdtemp(tmpl))
            die(CMD, "temporary mountpoint: %s", strerror(errno));
        if (run_self("mount", store, tmpl) != 0) {
            rmdir(tmpl);
            die(CMD, "%s: could not mount it for the restore", store);
        }
        mnt = strdup(tmpl);
        c->tmp_mount = strdup(tmpl);
    }
    c->at_volume_root = !*sub;
    if (asprintf(&c->destdir, "%s%s%s", mnt, *sub ? "/" : "", sub) < 0)
        exit(1);
    if (*sub)
        mkdir_p(CMD, c->destdir);
    free(mnt);
}

static void open_dest(struct restore_cmd *c)
{
    char *arg = strdup(c->dest_arg);
    struct stat sb;
    if (is_store(arg)) {
        open_store_dest(c, arg, "");
    } else if (stat(arg, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            die(CMD, "%s: not a directory", c->dest_arg);
        char *store = mounted_store(arg);
        c->at_volume_root = store != NULL;
        free(store);
        c->destdir = realpath(arg, NULL);
    } else {
        /* VOL/PATH: the longest prefix that is a store */
        for (char *slash = strrchr(arg, '/'); slash && slash > arg;
             slash = strrchr(arg, '/')) {
            *slash = 0;
            if (is_store(arg)) {
                open_store_dest(c, arg, c->dest_arg + (slash - arg) + 1);
                break;
            }
        }
        if (!c->destdir)
            die(CMD, "%s: no such directory", c->dest_arg);
    }
    free(arg);
    if (!c->destdir)
        die(CMD, "%s: %s", c->dest_arg, strerror(errno));
}

static void close_dest(struct restore_cmd *c)
{
    if (!c->tmp_mount)
        return;
    if (run_self("umount", c->tmp_mount, NULL) != 0)
        fprintf(stderr, "snapfs restore: %s: could not unmount the "
                        "temporary mount of the destination\n",
                c->tmp_mount);
    else
        rmdir(c->tmp_mount);
}

/* ---- arguments ---- */

static void add_input(struct restore_cmd *c, const char *name)
{
    if (c->nparts == MAX_PARTS)
        die_usage(CMD, "at most %d -f parts", MAX_PARTS);
    c->in_names[c->nparts++] = name;
}

static void parse_args(struct restore_cmd *c, int argc, char **argv)
{
    static const struct option lo[] = {
        { "into", required_argument, NULL, 'I' },
        { "rename-to", required_argument, NULL, 'R' },
        { "force", no_argument, NULL, 'F' },
        { NULL, 0, NULL, 0 },
    };
    int c_, modes = 0;
    opterr = 0;
    optind = 1;
    while ((c_ = getopt_long(argc, argv, ":trxf:b:v", lo, NULL)) != -1) {
        char *end;
        switch (c_) {
        case 't': c->mode = RST_LIST; modes++; break;
        case 'r': c->mode = RST_RESTORE; modes++; break;
        case 'x': c->mode = RST_EXTRACT; modes++; break;
        case 'f': add_input(c, optarg); break;
        case 'b': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > DUMP_NTREC_MAX)
                die_usage(CMD, "-b %s: give a blocking factor from 1 to %d",
                          optarg, DUMP_NTREC_MAX);
            c->blocking = (int)v;
            break;
        }
        case 'v': c->verbose = true; break;
        case 'I': c->dest_arg = optarg; break;
        case 'R': c->rename_to = optarg; break;
        case 'F': c->force = true; break;
        case ':': die_usage(CMD, "%s needs a value", argv[optind - 1]);
        default: die_usage(CMD, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (modes != 1)
        die_usage(CMD, "give one of -t (list), -r (restore) or -x (extract)");
    if (c->mode == RST_EXTRACT && optind == argc)
        die_usage(CMD, "-x needs the PATHs to extract");
    if (c->mode == RST_RESTORE && optind < argc)
        die_usage(CMD, "-r restores everything; use -x to extract PATHs");
    if (c->rename_to && (c->mode != RST_EXTRACT || argc - optind != 1))
        die_usage(CMD, "--rename-to goes with -x and one PATH");
    if (c->rename_to && (!*c->rename_to || strchr(c->rename_to, '/') ||
                         !strcmp(c->rename_to, ".") ||
                         !strcmp(c->rename_to, "..")))
        die_usage(CMD, "--rename-to %s: give a name, not a path",
                  c->rename_to);
    if (!c->nparts)
        add_input(c, "-");
    int stdin_parts = 0;
    for (int i = 0; i < c->nparts; i++)
        stdin_parts += !strcmp(c->in_names[i], "-");
    if (stdin_parts > 1)
        die_usage(CMD, "only one -f may be '-' (standard input)");
    if (!c->dest_arg)
        c->dest_arg = ".";
}

/* Open the parts; the sum of their sizes when all are regular files. */
static uint64_t open_inputs(struct restore_cmd *c)
{
    uint64_t total = 0;
    bool known = true;
    for (int i = 0; i < c->nparts; i++) {
        const char *n = c->in_names[i];
        c->fds[i] = strcmp(n, "-") ? open(n, O_RDONLY | O_CLOEXEC)
                                   : STDIN_FILENO;
        if (c->fds[i] < 0)
            die(CMD, "%s: %s", n, strerror(errno));
        struct stat sb;
        if (fstat(c->fds[i], &sb) == 0 && S_ISREG(sb.st_mode))
            total += (uint64_t)sb.st_size;
        else
            known = false;
    }
    return known ? total : 0;
}

int cmd_tape_restore(int argc, char **argv)
{
    struct restore_cmd c = { 0 };
    parse_args(&c, argc, argv);
    uint64_t input_bytes = open_inputs(&c);
    int destfd = -1;
    if (c.mode != RST_LIST) {
        open_dest(&c);
        destfd = open(c.destdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (destfd < 0) {
            int e = errno;
            close_dest(&c);
            die(CMD, "%s: %s", c.dest_arg, strerror(e));
        }
    }
    struct rst_options o = {
        .mode = c.mode, .fds = c.fds, .nfds = c.nparts,
        .blocking = c.blocking, .destfd = destfd, .destpath = c.destdir,
        .paths = (const char *const *)argv + optind, .npaths = argc - optind,
        .rename_to = c.rename_to, .force = c.force,
        .input_bytes = input_bytes, .on_volume = on_volume,
        .on_list = on_list, .on_qtree = on_qtree,
        .on_progress = c.mode == RST_LIST ? NULL : on_progress, .arg = &c,
    };
    struct rst_stats st;
    struct rst_error err;
    progress_start(&c.prog, CMD, input_bytes);
    int rc = rst_run(&o, &st, &err);
    fflush(stdout);
    if (destfd >= 0)
        close(destfd);
    close_dest(&c);
    free(c.tmp_mount);
    if (rc) {
        if (err.kind == RST_E_NONE)
            err.err = -rc;
        report_failure(&c, &err);
        rst_error_free(&err);
        free(c.destdir);
        return 1;
    }
    for (size_t i = 0; i < c.nqtrees; i++) {
        printf("qtree %s: %s\n", c.qtrees[i].name, c.qtrees[i].desc);
        free(c.qtrees[i].name);
        free(c.qtrees[i].desc);
    }
    free(c.qtrees);
    if (c.mode != RST_LIST)
        progress_finish(&c.prog, "restored", st.bytes, st.files);
    free(c.destdir);
    return 0;
}
