/*
 * ndmp_data.c - the DATA service: a backup is `snapfs dump` run as a
 * child whose output the service moves to the data connection; a recover
 * is `snapfs restore` run as a child fed from the data connection.
 *
 * THEORY.  The dump and restore commands are the engines, whole: the
 * dump takes and holds its snapshot, records the dump date, and deletes
 * the snapshot at the end; restore checks the level chain and writes
 * through POSIX calls.  The service only maps the NDMP environment to
 * their arguments, moves bytes (a bounded buffer between the child's pipe
 * and the data connection, which is a TCP socket for a three-way backup
 * or one end of a socketpair whose other end the session's own mover
 * holds, NDMP's LOCAL connection), relays the child's messages to the DMA
 * as LOG_MESSAGE posts, and when HIST=y reads the dump as it passes
 * (ndmp_fh.c) to post file history with each inode's position.  A
 * RECOVER_FILEHIST reads an image through that same reader alone: the
 * DMA gets the history of a tape it has no index of, nothing is
 * restored.
 *
 * A backup to this server's own mover without file history passes
 * through nothing of ours: the dump's stdout is the data end of the
 * LOCAL socketpair itself (no pipe, no buffer, two copies and two system
 * calls fewer per block), the bytes moved are the mover's count, and the
 * service keeps its own descriptor of that end open until the dump has
 * ended, so that the mover's end of file means the dump is done; to stop
 * such a dump it shuts the connection down for writing, which fails the
 * dump's next write (and one it is blocked in) as closing its pipe does.
 * When a backup to this server's mover ends, however it ends, the mover
 * writes what is left, syncs the tape and halts before DATA_HALTED is
 * posted: the DMA hears the backup is done once the image is on tape, and
 * both notices reach it in that order (NOTIFY_MOVER_HALTED, then
 * NOTIFY_DATA_HALTED) while it waits for them.
 *
 * A backup that stops early (ABORT, the DMA gone, the connection lost)
 * gets SIGTERM; the dump then leaves a restartable context holding its
 * snapshot, and says which in its last message.  With HIST=y and this
 * server's mover the context is kept, its restart point moved back to
 * the first file not wholly on the tape (ndmp_restart.c, theory comment);
 * GET_ENV gives RESTART_CONTEXT (its id), RESTART_INODE and
 * RESTART_OFFSET (the bytes on tape), and a START_BACKUP with
 * RESTART_CONTEXT=ID runs `dump --restart ID`, the next part.  Otherwise
 * the context is deleted (with the snapshot the dump made), so that such
 * a backup leaves no snapshot and no hold behind.
 *
 * Environment (butype "dump"): FILESYSTEM (a volume's mountpoint or
 * store, or a directory in one: a qtree or a path), LEVEL (0-31), UPDATE
 * (y: record the dump date, the default; n: do not), HIST (y: file
 * history), BLOCKSIZE (KiB per record, 4-256, when the mover is not this
 * server's; with the local mover the mover's record size is used when it
 * is a whole number of KiB in that range), SNAPSHOT (dump that snapshot
 * instead of taking one), EXCLUDE (names left out: comma-separated
 * patterns, `dump --exclude`), BASE_DATE (token-based incrementals: 0 a
 * full backup, -1 or none: LEVEL and the dump dates alone, a DUMP_DATE
 * token of an earlier backup: what changed since it, `dump --since`).
 * A finished backup's DUMP_DATE (its since-token, which the dump prints
 * last) is in GET_ENV, for the DMA to give back as BASE_DATE.  Recover: the names' destination paths (or
 * PREFIX, or FILESYSTEM for a full restore) say where to; when every name
 * carries its position (fh_info, from the history) the image is read by
 * position (ndmp_dar.c) unless DIRECT=n.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dumpfmt.h"
#include "ndmp_dar.h"
#include "ndmp_fh.h"
#include "ndmp_int.h"

#define ENV_MAX 256
#define NAMES_MAX 1024
#define STRING_MAX 4096
#define LEVEL_MAX 31
#define PIPE_BYTES (1 << 20)
#define EXCLUDE_MAX 32
#define SINCE_TOKEN "snapfs dump: since-token "

void data_init(struct data_svc *d)
{
    memset(d, 0, sizeof(*d));
    d->listen_fd = d->conn_fd = d->child_io = d->child_err = -1;
    d->child = -1;
}

static uint32_t reply_error(struct xdr_out *out, uint32_t err)
{
    xout_u32(out, err);
    return NDMP_NO_ERR;
}

static void free_request(struct data_svc *d)
{
    for (size_t i = 0; i < d->nenv; i++) {
        free(d->env[i].name);
        free(d->env[i].value);
    }
    free(d->env);
    d->env = NULL;
    d->nenv = 0;
    for (size_t i = 0; i < d->nnames; i++) {
        free(d->names[i].original);
        free(d->names[i].destination);
    }
    free(d->names);
    d->names = NULL;
    d->nnames = 0;
    free(d->exclude);
    d->exclude = NULL;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* The bytes of the image moved so far: counted as they pass, or, when
 * the dump writes into this server's mover itself, the mover's count. */
static uint64_t data_bytes(const struct session *s)
{
    if (s->data.direct)
        return s->mover.bytes_moved + s->mover.rec_fill;
    return s->data.bytes;
}

/* ---- state, env, connections ---- */

uint32_t data_get_state(struct session *s, struct xdr_in *x,
                        struct xdr_out *out)
{
    const struct data_svc *d = &s->data;
    xout_u32(out, 0x3);        /* no estimates of what remains */
    xout_u32(out, NDMP_NO_ERR);
    xout_u32(out, (uint32_t)d->op);
    xout_u32(out, (uint32_t)d->state);
    xout_u32(out, (uint32_t)d->halt_reason);
    xout_u64(out, data_bytes(s));
    xout_u64(out, 0);
    xout_u32(out, 0);
    ndmp_put_addr(out, &d->addr);
    xout_u64(out, d->read_offset);
    xout_u64(out, d->read_length);
    return NDMP_NO_ERR;
}

/* NAME one of the variables the server sets (and has a value for)? */
static bool is_ours(const char *name, const char *const ours[4],
                    char vals[4][48])
{
    for (size_t k = 0; name && k < 4; k++)
        if (vals[k][0] && !strcasecmp(name, ours[k]))
            return true;
    return false;
}

uint32_t data_get_env(struct session *s, struct xdr_in *x,
                      struct xdr_out *out)
{
    const struct data_svc *d = &s->data;
    if (d->op != DATA_OP_BACKUP ||
        (d->state != DATA_ACTIVE && d->state != DATA_HALTED)) {
        xout_u32(out, NDMP_ILLEGAL_STATE_ERR);
        xout_u32(out, 0);
        return NDMP_NO_ERR;
    }
    /* the request's variables, but for those the server sets */
    static const char *const ours[] = { "DUMP_DATE", "RESTART_CONTEXT",
                                        "RESTART_INODE", "RESTART_OFFSET" };
    char vals[4][48] = { "" };
    snprintf(vals[0], sizeof(vals[0]), "%s", d->dump_date);
    if (d->state == DATA_HALTED && d->restart_id) {
        snprintf(vals[1], sizeof(vals[1]), "%u", d->restart_id);
        snprintf(vals[2], sizeof(vals[2]), "%u", d->restart_ino);
        snprintf(vals[3], sizeof(vals[3]), "%llu",
                 (unsigned long long)d->restart_offset);
    }
    size_t n = 0, set = 0;
    for (size_t k = 0; k < 4; k++)
        set += vals[k][0] != 0;
    for (size_t i = 0; i < d->nenv; i++)
        n += !is_ours(d->env[i].name, ours, vals);
    xout_u32(out, NDMP_NO_ERR);
    xout_u32(out, (uint32_t)(n + set));
    for (size_t i = 0; i < d->nenv; i++) {
        if (is_ours(d->env[i].name, ours, vals))
            continue;
        xout_string(out, d->env[i].name);
        xout_string(out, d->env[i].value);
    }
    for (size_t k = 0; k < 4; k++) {
        if (!vals[k][0])
            continue;
        xout_string(out, ours[k]);
        xout_string(out, vals[k]);
    }
    return NDMP_NO_ERR;
}

uint32_t data_listen(struct session *s, struct xdr_in *x,
                     struct xdr_out *out)
{
    uint32_t type = xin_u32(x);
    if (x->bad)
        return NDMP_XDR_DECODE_ERR;
    struct data_svc *d = &s->data;
    uint32_t err = NDMP_NO_ERR;
    if (d->state != DATA_IDLE)
        err = NDMP_ILLEGAL_STATE_ERR;
    else if (type == NDMP_ADDR_LOCAL) {
        d->addr = (struct ndmp_addr){ .type = NDMP_ADDR_LOCAL };
        d->state = DATA_LISTEN;    /* this server's mover will connect */
    } else if (type != NDMP_ADDR_TCP)
        err = NDMP_ILLEGAL_ARGS_ERR;
    else {
        int fd = ndmp_tcp_listen(s, &d->addr);
        if (fd < 0)
            err = fd == -EAFNOSUPPORT ? NDMP_NOT_SUPPORTED_ERR
                                      : NDMP_CONNECT_ERR;
        else {
            d->listen_fd = fd;
            d->state = DATA_LISTEN;
        }
    }
    xout_u32(out, err);
    /* an error's address: a valid union arm, so that the reply decodes */
    static const struct ndmp_addr none = { .type = NDMP_ADDR_LOCAL };
    ndmp_put_addr(out, err ? &none : &d->addr);
    return NDMP_NO_ERR;
}

bool data_local_listening(const struct session *s)
{
    return s->data.state == DATA_LISTEN &&
           s->data.addr.type == NDMP_ADDR_LOCAL;
}

void data_local_accept(struct session *s, int fd)
{
    s->data.conn_fd = fd;
    s->data.state = DATA_CONNECTED;
}

uint32_t data_connect(struct session *s, struct xdr_in *x,
                      struct xdr_out *out)
{
    struct ndmp_addr a;
    int rc = ndmp_get_addr(x, &a);
    if (rc == -EBADMSG || x->bad)
        return NDMP_XDR_DECODE_ERR;
    struct data_svc *d = &s->data;
    if (rc)
        return reply_error(out, NDMP_ILLEGAL_ARGS_ERR);
    if (d->state != DATA_IDLE)
        return reply_error(out, NDMP_ILLEGAL_STATE_ERR);
    int fd;
    if (a.type == NDMP_ADDR_LOCAL) {
        if (!mover_local_listening(s))
            return reply_error(out, NDMP_ILLEGAL_STATE_ERR);
        fd = mover_local_connect(s);
    } else {
        fd = ndmp_tcp_connect(&a);
    }
    if (fd < 0) {
        ndmp_log(s->o->log_fd, "%s: data connection: %s", s->peer,
                 strerror(-fd));
        return reply_error(out, NDMP_CONNECT_ERR);
    }
    d->conn_fd = fd;
    d->addr = a;
    d->state = DATA_CONNECTED;
    return reply_error(out, NDMP_NO_ERR);
}

/* ---- starting the child ---- */

/* An array's count (at most MAX) and zeroed room for it, SIZE bytes an
 * element: 0, -EBADMSG or -ENOMEM. */
static int read_count(struct xdr_in *x, uint32_t max, size_t size,
                      void **out, uint32_t *n)
{
    *n = xin_u32(x);
    if (x->bad || *n > max)
        return -EBADMSG;
    *out = calloc(*n ? *n : 1, size);
    return *out ? 0 : -ENOMEM;
}

static int read_env(struct xdr_in *x, struct data_svc *d)
{
    uint32_t n;
    int rc = read_count(x, ENV_MAX, sizeof(*d->env), (void **)&d->env, &n);
    if (rc)
        return rc;
    for (; d->nenv < n && !x->bad; d->nenv++) {
        d->env[d->nenv].name = xin_string(x, STRING_MAX);
        d->env[d->nenv].value = xin_string(x, STRING_MAX);
    }
    return x->bad ? -EBADMSG : 0;
}

static const char *env_get(const struct data_svc *d, const char *name)
{
    for (size_t i = d->nenv; i-- > 0;)
        if (d->env[i].name && !strcasecmp(d->env[i].name, name))
            return d->env[i].value;
    return NULL;
}

static bool env_yes(const struct data_svc *d, const char *name, bool dflt)
{
    const char *v = env_get(d, name);
    if (!v || !*v)
        return dflt;
    return strchr("yYtT1", v[0]) != NULL;
}

/* Run ARGV (the snapfs binary first) with its stdin or stdout on a pipe
 * whose other end becomes d->child_io, and its stderr on d->child_err;
 * or, OUT_FD >= 0, with its stdout on OUT_FD itself (no pipe). */
static int spawn(struct session *s, char *const argv[], bool to_child,
                 int out_fd)
{
    struct data_svc *d = &s->data;
    int io[2] = { -1, -1 }, err[2];
    if (out_fd < 0 && pipe2(io, O_CLOEXEC))
        return -errno;
    if (pipe2(err, O_CLOEXEC)) {
        int rc = -errno;
        close_fd(&io[0]);
        close_fd(&io[1]);
        return rc;
    }
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(to_child ? io[0] : null, 0);
        dup2(to_child ? null : out_fd >= 0 ? out_fd : io[1], 1);
        dup2(err[1], 2);
        signal(SIGPIPE, SIG_DFL);
        execv(s->o->self, argv);
        dprintf(2, "snapfs ndmp: cannot run %s: %s\n", s->o->self,
                strerror(errno));
        _exit(127);
    }
    int rc = pid < 0 ? -errno : 0;
    close_fd(to_child ? &io[0] : &io[1]);
    close(err[1]);
    if (rc) {
        close_fd(to_child ? &io[1] : &io[0]);
        close(err[0]);
        return rc;
    }
    d->child = pid;
    d->direct = out_fd >= 0;
    d->child_io = to_child ? io[1] : io[0];
    d->child_err = err[0];
    if (d->child_io >= 0) {
        fcntl(d->child_io, F_SETFL, O_NONBLOCK);
        fcntl(d->child_io, F_SETPIPE_SZ, PIPE_BYTES);  /* fewer wake-ups */
    }
    fcntl(d->child_err, F_SETFL, O_NONBLOCK);
    d->errlen = 0;
    d->last_error[0] = 0;
    d->restart_id = d->restart_ino = 0;
    d->restart_offset = 0;
    d->conn_eof = d->child_eof = false;
    d->bytes = 0;
    d->pump.head = d->pump.tail = 0;
    clock_gettime(CLOCK_MONOTONIC, &d->started);
    return 0;
}

static int blocking_factor(struct session *s)
{
    const char *v = env_get(&s->data, "BLOCKSIZE");
    if (v && *v) {
        char *end;
        long b = strtol(v, &end, 10);
        return *end || b < 4 || b > 256 ? -1 : (int)b;
    }
    uint32_t rs = s->mover.record_size;
    if (s->data.addr.type == NDMP_ADDR_LOCAL && rs % 1024 == 0 &&
        rs / 1024 >= 4 && rs / 1024 <= 256)
        return (int)(rs / 1024);
    return 64;
}

/* What a backup's environment asks of the dump. */
struct backup_req {
    int level, blocking;
    const char *since;              /* BASE_DATE's token, or NULL */
    char *exclude[EXCLUDE_MAX];     /* into d->exclude */
    int nexclude;
};

/* BASE_DATE: none or -1, the dump dates; 0, a full backup (a token
 * chain's first); a DUMP_DATE token (DATE-EPOCH), an incremental of
 * what changed since, at LEVEL or 1. */
static uint32_t base_date_args(struct data_svc *d, bool level_given,
                               struct backup_req *r, const char **why)
{
    const char *v = env_get(d, "BASE_DATE");
    if (!v || !*v || !strcmp(v, "-1"))
        return NDMP_NO_ERR;
    if (!strcmp(v, "0")) {
        if (level_given && r->level) {
            *why = "BASE_DATE=0 starts a token chain with a full backup: "
                   "give LEVEL 0 or none";
            return NDMP_ILLEGAL_ARGS_ERR;
        }
        r->level = 0;
        return NDMP_NO_ERR;
    }
    size_t date = strspn(v, "0123456789");
    if (!date || v[date] != '-' || !v[date + 1] ||
        v[date + 1 + strspn(v + date + 1, "0123456789")]) {
        *why = "BASE_DATE: give 0, -1 or the DUMP_DATE of an earlier backup";
        return NDMP_ILLEGAL_ARGS_ERR;
    }
    if (level_given && !r->level) {
        *why = "BASE_DATE: a token makes an incremental; LEVEL 0 is a full "
               "backup";
        return NDMP_ILLEGAL_ARGS_ERR;
    }
    if (!level_given)
        r->level = 1;
    r->since = v;
    return NDMP_NO_ERR;
}

/* EXCLUDE: name patterns separated by commas, in one variable or in
 * several (ndmjob's -e sends one per pattern); into d->exclude, one
 * pattern after the other, each ended by a NUL. */
static uint32_t exclude_args(struct data_svc *d, struct backup_req *r,
                             const char **why)
{
    size_t len = 0;
    for (size_t i = 0; i < d->nenv; i++)
        if (d->env[i].name && !strcasecmp(d->env[i].name, "EXCLUDE"))
            len += strlen(d->env[i].value) + 1;
    if (!len)
        return NDMP_NO_ERR;
    free(d->exclude);
    if (!(d->exclude = malloc(len)))
        return NDMP_NO_MEM_ERR;
    char *p = d->exclude;
    for (size_t i = 0; i < d->nenv; i++) {
        if (!d->env[i].name || strcasecmp(d->env[i].name, "EXCLUDE"))
            continue;
        strcpy(p, d->env[i].value);
        char *save = NULL;
        for (char *e = strtok_r(p, ",", &save); e;
             e = strtok_r(NULL, ",", &save)) {
            e += strspn(e, " ");
            if (!*e)
                continue;
            if (strchr(e, '/')) {
                *why = "EXCLUDE: names are matched, not paths (no '/')";
                return NDMP_ILLEGAL_ARGS_ERR;
            }
            if (r->nexclude == EXCLUDE_MAX) {
                *why = "EXCLUDE: at most 32 patterns";
                return NDMP_ILLEGAL_ARGS_ERR;
            }
            r->exclude[r->nexclude++] = e;
        }
        p += strlen(d->env[i].value) + 1;
    }
    return NDMP_NO_ERR;
}

/* Check the backup's environment; the reason into WHY. */
static uint32_t backup_args(struct session *s, struct backup_req *r,
                            const char **why)
{
    struct data_svc *d = &s->data;
    int *level = &r->level, *blocking = &r->blocking;
    const char *fs = env_get(d, "FILESYSTEM");
    const char *lv = env_get(d, "LEVEL");
    *level = 0;
    if (lv && *lv) {
        char *end;
        long l = strtol(lv, &end, 10);
        if (*end || l < 0 || l > LEVEL_MAX) {
            *why = "LEVEL: give 0 to 31";
            return NDMP_ILLEGAL_ARGS_ERR;
        }
        *level = (int)l;
    }
    *blocking = blocking_factor(s);
    if (!fs || !*fs) {
        *why = "FILESYSTEM: give the volume, qtree or directory to dump";
        return NDMP_ILLEGAL_ARGS_ERR;
    }
    if (strlen(fs) >= sizeof(d->filesystem)) {
        *why = "FILESYSTEM: too long";
        return NDMP_ILLEGAL_ARGS_ERR;
    }
    uint32_t err = base_date_args(d, lv && *lv, r, why);
    if (!err)
        err = exclude_args(d, r, why);
    if (err)
        return err;
    if (*blocking < 0) {
        *why = "BLOCKSIZE: give 4 to 256 (KiB per record)";
        return NDMP_ILLEGAL_ARGS_ERR;
    }
    snprintf(d->filesystem, sizeof(d->filesystem), "%s", fs);
    return NDMP_NO_ERR;
}

/* RESTART_CONTEXT=ID: continue a stopped backup from its context (dump
 * --restart); its level, base, snapshot and exclusions are the
 * context's, so none may be given.  *ID 0: a new backup. */
static uint32_t restart_args(struct data_svc *d, uint32_t *id,
                             const char **why)
{
    static const char *const fixed[] = { "LEVEL", "BASE_DATE", "SNAPSHOT",
                                         "EXCLUDE" };
    const char *v = env_get(d, "RESTART_CONTEXT");
    *id = 0;
    if (!v || !*v)
        return NDMP_NO_ERR;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end || !n || n > UINT32_MAX) {
        *why = "RESTART_CONTEXT: give the id of a stopped backup's context "
               "(DATA_GET_ENV after the backup halted, or snapfs dump "
               "contexts)";
        return NDMP_ILLEGAL_ARGS_ERR;
    }
    for (size_t i = 0; i < sizeof(fixed) / sizeof(*fixed); i++) {
        const char *f = env_get(d, fixed[i]);
        if (f && *f) {
            *why = "RESTART_CONTEXT continues a backup: its LEVEL, "
                   "BASE_DATE, SNAPSHOT and EXCLUDE are the context's; "
                   "give none of them";
            return NDMP_ILLEGAL_ARGS_ERR;
        }
    }
    *id = (uint32_t)n;
    return NDMP_NO_ERR;
}

static bool butype_is_dump(struct xdr_in *x, char **butype)
{
    *butype = xin_string(x, 64);
    return *butype && !strcmp(*butype, "dump");
}

uint32_t data_start_backup(struct session *s, struct xdr_in *x,
                           struct xdr_out *out)
{
    struct data_svc *d = &s->data;
    char *butype;
    bool dump = butype_is_dump(x, &butype);
    free(butype);
    free_request(d);
    if (read_env(x, d) == -EBADMSG || x->bad)
        return NDMP_XDR_DECODE_ERR;
    if (d->state != DATA_CONNECTED)
        return reply_error(out, NDMP_ILLEGAL_STATE_ERR);
    if (!dump) {
        ndmp_log_message(s, NDMP_LOG_ERROR, "only the backup type \"dump\" "
                                            "is offered");
        return reply_error(out, NDMP_ILLEGAL_ARGS_ERR);
    }
    struct backup_req r = { 0 };
    const char *why = NULL;
    uint32_t restart;
    uint32_t err = restart_args(d, &restart, &why);
    if (!err)
        err = backup_args(s, &r, &why);
    if (err) {
        ndmp_log_message(s, NDMP_LOG_ERROR, "%s", why);
        ndmp_log(s->o->log_fd, "%s: backup refused: %s", s->peer, why);
        return reply_error(out, err);
    }
    d->hist = env_yes(d, "HIST", false);
    char lv[8], bf[8], rs[16];
    snprintf(lv, sizeof(lv), "-%d", r.level);
    snprintf(bf, sizeof(bf), "%d", r.blocking);
    snprintf(rs, sizeof(rs), "%u", restart);
    char *argv[16 + 2 * EXCLUDE_MAX];
    int n = 0;
    argv[n++] = "snapfs";
    argv[n++] = "dump";
    if (restart) {
        argv[n++] = "--restart";     /* its record size is the context's */
        argv[n++] = rs;
    } else {
        argv[n++] = lv;
    }
    argv[n++] = "-b";
    argv[n++] = bf;
    argv[n++] = "-f";
    argv[n++] = "-";
    if (!env_yes(d, "UPDATE", true))
        argv[n++] = "--no-dates";
    const char *snap = env_get(d, "SNAPSHOT");
    if (snap && *snap) {
        argv[n++] = "--snapshot";     /* dump it; none is made or deleted */
        argv[n++] = (char *)snap;
    }
    if (r.since) {
        argv[n++] = "--since";        /* BASE_DATE: the base is the token */
        argv[n++] = (char *)r.since;
    }
    for (int i = 0; i < r.nexclude; i++) {
        argv[n++] = "--exclude";
        argv[n++] = r.exclude[i];
    }
    argv[n++] = d->filesystem;
    argv[n] = NULL;
    if (!d->pump.buf && !(d->pump.buf = malloc(PUMP_BYTES)))
        return reply_error(out, NDMP_NO_MEM_ERR);
    if (d->hist && !(d->fh = fh_parser_new()))
        return reply_error(out, NDMP_NO_MEM_ERR);
    restart_map_free(&d->rmap);
    if (d->fh && d->addr.type == NDMP_ADDR_LOCAL)
        fh_set_map(d->fh, &d->rmap);
    /* to this server's mover without file history: the dump writes
     * into the data connection itself (see the theory comment) */
    bool direct = d->addr.type == NDMP_ADDR_LOCAL && !d->hist;
    if (spawn(s, argv, false, direct ? d->conn_fd : -1))
        return reply_error(out, NDMP_UNDEFINED_ERR);
    if (direct)
        d->child_eof = true;      /* no pipe of ours to read */
    d->op = DATA_OP_BACKUP;
    d->state = DATA_ACTIVE;
    d->halt_reason = DATA_HALT_NA;
    d->dump_date[0] = 0;
    if (restart)
        ndmp_log(s->o->log_fd, "%s: backup of %s restarted from context "
                               "%u, history %s (process %d)", s->peer,
                 d->filesystem, restart, d->hist ? "on" : "off",
                 (int)d->child);
    else
        ndmp_log(s->o->log_fd, "%s: backup of %s started: level %d%s%s, "
                               "%d KiB records, %d names excluded, history "
                               "%s, dates %s (process %d)",
                 s->peer, d->filesystem, r.level, r.since ? " since " : "",
                 r.since ? r.since : "", r.blocking, r.nexclude,
                 d->hist ? "on" : "off",
                 env_yes(d, "UPDATE", true) ? "recorded" : "not recorded",
                 (int)d->child);
    return reply_error(out, NDMP_NO_ERR);
}

static int read_names(struct xdr_in *x, struct data_svc *d)
{
    uint32_t n;
    int rc = read_count(x, NAMES_MAX, sizeof(*d->names),
                        (void **)&d->names, &n);
    if (rc)
        return rc;
    for (; d->nnames < n && !x->bad; d->nnames++) {
        struct ndmp_name *nm = &d->names[d->nnames];
        nm->original = xin_string(x, STRING_MAX);
        nm->destination = xin_string(x, STRING_MAX);
        free(xin_string(x, STRING_MAX));   /* name */
        free(xin_string(x, STRING_MAX));   /* other_name */
        xin_u64(x);                        /* node */
        nm->fh_info = xin_u64(x);
    }
    return x->bad ? -EBADMSG : 0;
}

/* "a/b" of a path given as "/a/b", "./a/b" or "a/b/" ("" for the root). */
static void dump_relative(const char *in, char *out, size_t cap)
{
    while (*in == '/' || (in[0] == '.' && (in[1] == '/' || !in[1])))
        in++;
    snprintf(out, cap, "%s", in);
    size_t n = strlen(out);
    while (n && out[n - 1] == '/')
        out[--n] = 0;
}

struct recover_plan {
    char root[STRING_MAX];        /* --into */
    char rename_to[STRING_MAX];   /* --rename-to, or "" */
    char (*paths)[STRING_MAX];    /* -x PATH... (none: -r) */
    size_t npaths;
};

/* The root a name restores under: DESTINATION minus the dump path at its
 * end; or, when it does not end so, its parent (and a new name). */
static int name_root(const struct ndmp_name *nm, const char *rel,
                     char *root, char *rename_to)
{
    const char *dst = nm->destination;
    size_t dl = strlen(dst), rl = strlen(rel);
    while (dl > 1 && dst[dl - 1] == '/')
        dl--;
    rename_to[0] = 0;
    if (!rl) {
        snprintf(root, STRING_MAX, "%.*s", (int)dl, dst);
        return 0;
    }
    if (dl > rl && !strncmp(dst + dl - rl, rel, rl) &&
        dst[dl - rl - 1] == '/') {
        snprintf(root, STRING_MAX, "%.*s", (int)(dl - rl - 1), dst);
        if (!root[0])
            snprintf(root, STRING_MAX, "/");
        return 0;
    }
    const char *slash = memrchr(dst, '/', dl);
    if (!slash || slash[1] == 0)
        return -EINVAL;
    snprintf(root, STRING_MAX, "%.*s", (int)(slash - dst) ? (int)(slash - dst)
                                                         : 1, dst);
    snprintf(rename_to, STRING_MAX, "%.*s", (int)(dl - (size_t)(slash - dst) - 1),
             slash + 1);
    return 0;
}

static uint32_t plan_recover(struct data_svc *d, struct recover_plan *p,
                             const char **why)
{
    memset(p, 0, sizeof(*p));
    if (!d->nnames) {
        const char *dst = env_get(d, "PREFIX");
        if (!dst || !*dst)
            dst = env_get(d, "FILESYSTEM");
        if (!dst || !*dst) {
            *why = "give the names to recover, or PREFIX (where to restore)";
            return NDMP_ILLEGAL_ARGS_ERR;
        }
        snprintf(p->root, sizeof(p->root), "%s", dst);
        return NDMP_NO_ERR;
    }
    p->paths = calloc(d->nnames, sizeof(*p->paths));
    if (!p->paths)
        return NDMP_NO_MEM_ERR;
    for (size_t i = 0; i < d->nnames; i++) {
        struct ndmp_name *nm = &d->names[i];
        char rel[STRING_MAX], root[STRING_MAX], rename_to[STRING_MAX];
        if (!nm->original || !nm->destination || !nm->destination[0]) {
            *why = "a name without its destination path";
            return NDMP_ILLEGAL_ARGS_ERR;
        }
        dump_relative(nm->original, rel, sizeof(rel));
        if (name_root(nm, rel, root, rename_to)) {
            *why = "a destination path that names no directory";
            return NDMP_ILLEGAL_ARGS_ERR;
        }
        if (i && (strcmp(root, p->root) || rename_to[0] || p->rename_to[0])) {
            *why = "names restored under different directories (or renamed) "
                   "must be recovered one at a time";
            return NDMP_ILLEGAL_ARGS_ERR;
        }
        if (!rel[0] && d->nnames > 1) {
            *why = "the whole dump and single names in one recover";
            return NDMP_ILLEGAL_ARGS_ERR;
        }
        snprintf(p->root, sizeof(p->root), "%s", root);
        snprintf(p->rename_to, sizeof(p->rename_to), "%s", rename_to);
        if (rel[0])
            snprintf(p->paths[p->npaths++], STRING_MAX, "%s", rel);
    }
    return NDMP_NO_ERR;
}

static void post_data_read(struct session *s, uint64_t offset,
                           uint64_t length)
{
    struct xdr_out b = { 0 };
    xout_u64(&b, offset);
    xout_u64(&b, length);
    ndmp_post(s, NDMP_NOTIFY_DATA_READ, &b);
    xout_free(&b);
}

static uint32_t start_recover_child(struct session *s,
                                    const struct recover_plan *p)
{
    char **argv = calloc(p->npaths + 12, sizeof(char *));
    if (!argv)
        return NDMP_NO_MEM_ERR;
    int n = 0;
    argv[n++] = "snapfs";
    argv[n++] = "restore";
    argv[n++] = p->npaths ? "-x" : "-r";
    argv[n++] = "-f";
    argv[n++] = "-";
    argv[n++] = "--into";
    argv[n++] = (char *)p->root;
    if (p->rename_to[0]) {
        argv[n++] = "--rename-to";
        argv[n++] = (char *)p->rename_to;
    }
    argv[n++] = "--";
    for (size_t i = 0; i < p->npaths; i++)
        argv[n++] = (char *)p->paths[i];
    argv[n] = NULL;
    int rc = spawn(s, argv, true, -1);
    free(argv);
    return rc ? NDMP_UNDEFINED_ERR : NDMP_NO_ERR;
}

/* Every name has its position from the file history (and DIRECT is not
 * "n"): the recover reads by position. */
static bool by_position(const struct data_svc *d)
{
    if (!env_yes(d, "DIRECT", true))
        return false;
    for (size_t i = 0; i < d->nnames; i++)
        if (d->names[i].fh_info == UINT64_MAX || !d->names[i].fh_info)
            return false;
    return d->nnames > 0;
}

static struct dar *dar_of(const struct data_svc *d)
{
    uint64_t *off = calloc(d->nnames, sizeof(uint64_t));
    if (!off)
        return NULL;
    for (size_t i = 0; i < d->nnames; i++)
        off[i] = d->names[i].fh_info;
    struct dar *dar = dar_new(off, d->nnames);
    free(off);
    return dar;
}

/* A recover request's body (environment, names, backup type) into S's
 * data service, and the checks both recover forms make: true to go on,
 * else false with *REPLY the answer (a decode error, no memory, the
 * wrong state, a backup type other than "dump"). */
static bool take_recover_request(struct session *s, struct xdr_in *x,
                                 struct xdr_out *out, uint32_t *reply)
{
    struct data_svc *d = &s->data;
    free_request(d);
    int rc = read_env(x, d);
    if (!rc)
        rc = read_names(x, d);
    char *butype;
    bool dump = butype_is_dump(x, &butype);
    free(butype);
    if (rc == -EBADMSG || x->bad) {
        *reply = NDMP_XDR_DECODE_ERR;
    } else if (rc) {
        *reply = reply_error(out, NDMP_NO_MEM_ERR);
    } else if (d->state != DATA_CONNECTED) {
        *reply = reply_error(out, NDMP_ILLEGAL_STATE_ERR);
    } else if (!dump) {
        ndmp_log_message(s, NDMP_LOG_ERROR, "only the backup type \"dump\" "
                                            "is offered");
        *reply = reply_error(out, NDMP_ILLEGAL_ARGS_ERR);
    } else {
        return true;
    }
    return false;
}

uint32_t data_start_recover(struct session *s, struct xdr_in *x,
                            struct xdr_out *out)
{
    struct data_svc *d = &s->data;
    uint32_t reply;
    if (!take_recover_request(s, x, out, &reply))
        return reply;
    struct recover_plan p;
    const char *why = NULL;
    uint32_t err = plan_recover(d, &p, &why);
    if (err && why) {
        ndmp_log_message(s, NDMP_LOG_ERROR, "%s", why);
        ndmp_log(s->o->log_fd, "%s: recover refused: %s", s->peer, why);
    }
    if (!err && !d->pump.buf && !(d->pump.buf = malloc(PUMP_BYTES)))
        err = NDMP_NO_MEM_ERR;
    if (!err && p.npaths && by_position(d) && !(d->dar = dar_of(d)))
        err = NDMP_NO_MEM_ERR;
    if (!err)
        err = start_recover_child(s, &p);
    if (!err) {
        d->op = DATA_OP_RECOVER;
        d->state = DATA_ACTIVE;
        d->halt_reason = DATA_HALT_NA;
        ndmp_log(s->o->log_fd, "%s: recover into %s started: %s%zu names%s "
                               "(process %d)", s->peer, p.root,
                 p.npaths ? "" : "everything, ", p.npaths,
                 d->dar ? ", read by position (direct access)" : "",
                 (int)d->child);
        d->read_offset = 0;
        d->read_length = NDMP_LENGTH_INFINITY;
        if (d->dar)
            dar_first_read(d->dar, &d->read_offset, &d->read_length);
        d->pending_read = true;
    }
    free(p.paths);
    return reply_error(out, err);
}

/* File history of an image on tape (the DMA lists a tape it has no
 * index of): the image read through the history reader, nothing
 * restored. */
uint32_t data_start_recover_filehist(struct session *s, struct xdr_in *x,
                                     struct xdr_out *out)
{
    struct data_svc *d = &s->data;
    uint32_t reply;
    if (!take_recover_request(s, x, out, &reply))
        return reply;
    if (!(d->fh = fh_parser_new()))
        return reply_error(out, NDMP_NO_MEM_ERR);
    d->op = DATA_OP_RECOVER_FILEHIST;
    d->state = DATA_ACTIVE;
    d->halt_reason = DATA_HALT_NA;
    d->bytes = 0;
    d->conn_eof = false;
    clock_gettime(CLOCK_MONOTONIC, &d->started);
    d->read_offset = 0;
    d->read_length = NDMP_LENGTH_INFINITY;
    d->pending_read = true;
    ndmp_log(s->o->log_fd, "%s: file history of a tape started", s->peer);
    return reply_error(out, NDMP_NO_ERR);
}

/* ---- the end of an operation ---- */

static void post_halted(struct session *s, int reason)
{
    struct data_svc *d = &s->data;
    d->state = DATA_HALTED;
    d->halt_reason = reason;
    close_fd(&d->conn_fd);
    close_fd(&d->listen_fd);
    struct xdr_out b = { 0 };
    xout_u32(&b, (uint32_t)reason);
    ndmp_post(s, NDMP_NOTIFY_DATA_HALTED, &b);
    xout_free(&b);
}

static void post_log_files(struct session *s, bool ok)
{
    struct data_svc *d = &s->data;
    for (size_t i = 0; i < d->nnames; i++) {
        struct xdr_out b = { 0 };
        xout_string(&b, d->names[i].original);
        xout_u32(&b, ok ? 0 : 6);   /* SUCCESSFUL, FAILED_UNDEFINED */
        ndmp_post(s, NDMP_LOG_FILE, &b);
        xout_free(&b);
    }
}

/* The child ended (its stderr closed): wait for it and halt. */
static void child_finished(struct session *s, int forced_reason)
{
    struct data_svc *d = &s->data;
    int status = 0;
    if (d->child > 0)
        waitpid(d->child, &status, 0);
    d->child = -1;
    close_fd(&d->child_io);
    close_fd(&d->child_err);
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    dar_free(d->dar);
    d->dar = NULL;
    if (d->fh) {
        fh_flush(d->fh, s);
        fh_parser_free(d->fh);
        d->fh = NULL;
    }
    if (!ok && d->op == DATA_OP_BACKUP && d->last_error[0])
        restart_after_stop(s, d->last_error);
    restart_map_free(&d->rmap);
    if (d->op == DATA_OP_RECOVER)
        post_log_files(s, ok && !forced_reason);
    if (d->op == DATA_OP_BACKUP && d->addr.type == NDMP_ADDR_LOCAL) {
        /* this server's mover writes what is left and syncs the tape
         * now: DATA_HALTED comes after MOVER_HALTED, the image on tape */
        close_fd(&d->conn_fd);
        mover_finish_local(s);
    }
    uint64_t bytes = data_bytes(s);
    int reason = forced_reason ? forced_reason
                 : ok          ? DATA_HALT_SUCCESSFUL
                               : DATA_HALT_INTERNAL_ERROR;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double secs = (double)(now.tv_sec - d->started.tv_sec) +
                  (double)(now.tv_nsec - d->started.tv_nsec) / 1e9;
    ndmp_log(s->o->log_fd, "%s: %s %s: %llu bytes in %.2f s (%.1f MB/s)%s%s",
             s->peer, d->op == DATA_OP_BACKUP    ? "backup"
                      : d->op == DATA_OP_RECOVER ? "recover"
                                                 : "file history",
             reason == DATA_HALT_SUCCESSFUL ? "done"
             : reason == DATA_HALT_ABORTED  ? "aborted"
                                            : "failed",
             (unsigned long long)bytes, secs,
             secs > 0 ? (double)bytes / secs / 1e6 : 0.0, ok ? "" : ": ",
             ok ? "" : d->last_error[0] ? d->last_error : "no message");
    post_halted(s, reason);
}

/* Stop the child (SIGTERM) and wait for it to end. */
static void stop_child(struct session *s, int reason)
{
    struct data_svc *d = &s->data;
    if (d->child > 0)
        kill(d->child, SIGTERM);
    /* A dump writing into the data connection itself: its writes fail
     * from now on (EPIPE) rather than wait for a mover that is not read
     * while we wait for the dump, as closing its pipe does otherwise. */
    if (d->direct && d->conn_fd >= 0)
        shutdown(d->conn_fd, SHUT_WR);
    /* Its last words say which context it left: read them all. */
    if (d->child_err >= 0)
        fcntl(d->child_err, F_SETFL, 0);
    close_fd(&d->child_io);
    char buf[1024];
    ssize_t n;
    while (d->child_err >= 0 && (n = read(d->child_err, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\n' && d->errlen < sizeof(d->errline) - 1) {
                d->errline[d->errlen++] = buf[i];
            } else if (buf[i] == '\n') {
                d->errline[d->errlen] = 0;
                snprintf(d->last_error, sizeof(d->last_error), "%s",
                         d->errline);
                d->errlen = 0;
            }
        }
    }
    child_finished(s, reason);
}

uint32_t data_abort(struct session *s, struct xdr_in *x,
                    struct xdr_out *out)
{
    struct data_svc *d = &s->data;
    if (d->state == DATA_IDLE || d->state == DATA_HALTED)
        return reply_error(out, NDMP_ILLEGAL_STATE_ERR);
    if (d->state == DATA_ACTIVE)
        stop_child(s, DATA_HALT_ABORTED);
    else
        post_halted(s, DATA_HALT_ABORTED);
    return reply_error(out, NDMP_NO_ERR);
}

uint32_t data_stop(struct session *s, struct xdr_in *x, struct xdr_out *out)
{
    struct data_svc *d = &s->data;
    if (d->state != DATA_HALTED)
        return reply_error(out, NDMP_ILLEGAL_STATE_ERR);
    free_request(d);
    d->state = DATA_IDLE;
    d->op = DATA_OP_NOACTION;
    d->halt_reason = DATA_HALT_NA;
    d->addr = (struct ndmp_addr){ 0 };
    d->bytes = 0;
    return reply_error(out, NDMP_NO_ERR);
}

void data_shutdown(struct session *s)
{
    struct data_svc *d = &s->data;
    if (d->state == DATA_ACTIVE) {
        ndmp_log(s->o->log_fd, "%s: the DMA left during the %s; stopping "
                               "it", s->peer,
                 d->op == DATA_OP_BACKUP ? "backup" : "recover");
        s->closing = true;
        stop_child(s, DATA_HALT_ABORTED);
    }
    close_fd(&d->conn_fd);
    close_fd(&d->listen_fd);
    free_request(d);
    free(d->pump.buf);
    d->pump.buf = NULL;
}

/* ---- moving bytes ---- */

/* The child's stderr: each line to the DMA and to the log. */
static void read_child_messages(struct session *s)
{
    struct data_svc *d = &s->data;
    char buf[1024];
    ssize_t n = read(d->child_err, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        close_fd(&d->child_err);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] != '\n') {
            if (d->errlen < sizeof(d->errline) - 1)
                d->errline[d->errlen++] = buf[i];
            continue;
        }
        d->errline[d->errlen] = 0;
        d->errlen = 0;
        if (!d->errline[0] || !strncmp(d->errline, "\r", 1))
            continue;
        snprintf(d->last_error, sizeof(d->last_error), "%s", d->errline);
        if (!strncmp(d->errline, SINCE_TOKEN, strlen(SINCE_TOKEN)))
            sscanf(d->errline + strlen(SINCE_TOKEN), "%47[0-9-]",
                   d->dump_date);
        ndmp_log_message(s, NDMP_LOG_NORMAL, "%s", d->errline);
        ndmp_log(s->o->log_fd, "%s: %s", s->peer, d->errline);
    }
}

/* Backup: child -> buffer -> connection.  Recover: the reverse. */
static void pump_emit(void *arg, const uint8_t *p, size_t n)
{
    struct pump *pump = arg;
    memcpy(pump->buf + pump->tail, p, n);
    pump->tail += n;
}

/* A recover by position: the bytes of the part asked for go through the
 * DAR reader; the next part is asked for once this one is in. */
static void dar_input(struct session *s, const uint8_t *in, ssize_t n)
{
    struct data_svc *d = &s->data;
    if (n > 0 && !dar_done(d->dar))
        dar_feed(d->dar, in, (size_t)n, pump_emit, &d->pump);
    if (n > 0 && dar_next_read(d->dar, &d->read_offset, &d->read_length))
        post_data_read(s, d->read_offset, d->read_length);
    if (n <= 0 || dar_done(d->dar)) {
        dar_finish(d->dar, pump_emit, &d->pump);
        d->conn_eof = true;
    }
}

static void pump_in(struct session *s, int from)
{
    struct data_svc *d = &s->data;
    struct pump *p = &d->pump;
    if (p->head == p->tail)
        p->head = p->tail = 0;
    if (d->dar) {
        /* room for what the reader passes on, and the TS_END it adds */
        static uint8_t in[PUMP_BYTES];
        size_t cap = PUMP_BYTES - p->tail;
        if (cap <= 2 * DUMP_TP_BSIZE)
            return;
        ssize_t n = read(from, in, cap - DUMP_TP_BSIZE);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n > 0)
            d->bytes += (uint64_t)n;
        dar_input(s, in, n);
        return;
    }
    ssize_t n = read(from, p->buf + p->tail, PUMP_BYTES - p->tail);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        if (d->op == DATA_OP_BACKUP)
            d->child_eof = true;
        else
            d->conn_eof = true;
        return;
    }
    if (d->fh) {
        fh_feed(d->fh, s, p->buf + p->tail, (size_t)n);
        restart_map_trim(&d->rmap, restart_on_tape(s));
    }
    p->tail += (size_t)n;
    d->bytes += (uint64_t)n;
}

static int pump_out(struct session *s, int to)
{
    struct pump *p = &s->data.pump;
    ssize_t n = send(to, p->buf + p->head, p->tail - p->head,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK)
        n = write(to, p->buf + p->head, p->tail - p->head);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n < 0)
        return -errno;
    p->head += (size_t)n;
    return 0;
}

static bool room(const struct data_svc *d)
{
    const struct pump *p = &d->pump;
    size_t need = d->dar ? 2 * DUMP_TP_BSIZE + 1 : 1;
    return p->head == p->tail || PUMP_BYTES - p->tail >= need;
}

int data_poll_fds(struct session *s, struct pollfd *p, int n)
{
    struct data_svc *d = &s->data;
    int k = 0;
    if (d->pending_read) {
        d->pending_read = false;
        post_data_read(s, d->read_offset, d->read_length);
    }
    if (d->state == DATA_LISTEN && d->listen_fd >= 0)
        p[k++] = (struct pollfd){ .fd = d->listen_fd, .events = POLLIN };
    if (d->state != DATA_ACTIVE)
        return k;
    if (d->op == DATA_OP_RECOVER_FILEHIST) {
        if (d->conn_fd >= 0 && k < n)
            p[k++] = (struct pollfd){ .fd = d->conn_fd, .events = POLLIN };
        return k;
    }
    bool pending = d->pump.head != d->pump.tail;
    bool backup = d->op == DATA_OP_BACKUP;
    int src = backup ? d->child_io : d->conn_fd;
    int dst = backup ? d->conn_fd : d->child_io;
    bool src_open = backup ? !d->child_eof : !d->conn_eof;
    if (src >= 0 && src_open && room(d) && k < n)
        p[k++] = (struct pollfd){ .fd = src, .events = POLLIN };
    if (dst >= 0 && pending && k < n)
        p[k++] = (struct pollfd){ .fd = dst, .events = POLLOUT };
    if (d->child_err >= 0 && k < n)
        p[k++] = (struct pollfd){ .fd = d->child_err, .events = POLLIN };
    return k;
}

/* RECOVER_FILEHIST: the image goes through the history reader only;
 * its end (TS_END, or the mover closing) ends the operation. */
static void history_input(struct session *s)
{
    struct data_svc *d = &s->data;
    static uint8_t in[PUMP_BYTES];
    ssize_t n = read(d->conn_fd, in, sizeof(in));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        d->bytes += (uint64_t)n;
        fh_feed(d->fh, s, in, (size_t)n);
    }
    if (n <= 0 || fh_ended(d->fh))
        child_finished(s, n < 0 ? DATA_HALT_CONNECT_ERROR : 0);
}

static short revents_of(const struct pollfd *p, int n, int fd)
{
    short r = 0;
    for (int i = 0; fd >= 0 && i < n; i++)
        if (p[i].fd == fd)
            r |= p[i].revents;
    return r;
}

void data_poll_done(struct session *s, const struct pollfd *p, int n)
{
    struct data_svc *d = &s->data;
    if (d->state == DATA_LISTEN && d->listen_fd >= 0 &&
        revents_of(p, n, d->listen_fd)) {
        int c = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0) {
            close_fd(&d->listen_fd);
            d->conn_fd = c;
            d->state = DATA_CONNECTED;
        }
        return;
    }
    if (d->state != DATA_ACTIVE)
        return;
    if (d->op == DATA_OP_RECOVER_FILEHIST) {
        if (revents_of(p, n, d->conn_fd))
            history_input(s);
        return;
    }
    bool backup = d->op == DATA_OP_BACKUP;
    int src = backup ? d->child_io : d->conn_fd;
    int dst = backup ? d->conn_fd : d->child_io;
    short rs = revents_of(p, n, src), rd = revents_of(p, n, dst);
    if (rs & (POLLIN | POLLHUP | POLLERR))
        pump_in(s, src);
    if ((rd & (POLLOUT | POLLERR | POLLHUP)) && pump_out(s, dst)) {
        /* the connection (backup) or the restore (recover) went away */
        if (backup) {
            stop_child(s, DATA_HALT_CONNECT_ERROR);
            return;
        }
        d->pump.head = d->pump.tail;
        d->conn_eof = true;
    }
    if (revents_of(p, n, d->child_err))
        read_child_messages(s);
    bool drained = d->pump.head == d->pump.tail;
    if (!backup && d->conn_eof && drained)
        close_fd(&d->child_io);   /* the restore reads its end of input */
    if (d->child_err < 0 && (!backup || (d->child_eof && drained)))
        child_finished(s, 0);
}
