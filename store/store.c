/*
 * store.c - the LMDB environment of one volume: creating it (mkfs),
 * opening it, its tables, the superblock, the volume state and space.
 *
 * Guarantees:
 *  - A store directory holds `data.mdb`, `lock.mdb` (LMDB's) and `lock`
 *    (ours: an flock held by the one process that may write).  Everything
 *    that must survive a restart is inside the environment.
 *  - The environment runs with MDB_NOMETASYNC: each commit syncs its data
 *    pages and writes the meta page unsynced, so a crash leaves the store
 *    as of some committed transaction (at worst the one before the last);
 *    callers that need durability call mdb_env_sync(env, 1) after commit.
 *    Never MDB_NOSYNC (a system crash could corrupt) nor MDB_WRITEMAP (a
 *    full disk would kill the process with SIGBUS).
 *  - The volume state (epochs, id counters, space counters) lives in
 *    st->state between transactions and is written into every write
 *    transaction just before it commits, so it is exactly as durable and
 *    atomic as the changes it counts.
 *
 * Space.  The volume has a size fixed at mkfs.  "Used" is the bytes of
 * LMDB pages that all tables occupy (mdb_stat: O(1) per table), so
 * metadata counts as well as data.  The LMDB map is sized well above the
 * volume size, so the map never fills before the volume does.
 *
 * THEORY: THE RESERVE.  A full volume must still let its owner clean up:
 * delete files and snapshots, rename, change attributes, truncate, take
 * a snapshot before cleaning up.  Those changes need a little space
 * themselves (LMDB copies the pages it changes; with snapshots, a
 * deleted file's records move to history rather than going away).  So
 * ordinary growth (new blocks, new objects) stops while the reserve, the
 * slop (1/32 of the size, as ZFS's spa_slop_shift=5, at least 1 MiB),
 * is still free; the changes above are not checked at all, and the few
 * allocations they make (the trimmed last block of a truncation) may use
 * half of it (SFS_SPACE_RESERVED).  Only changes that add something can
 * use the reserve, and each adds at most a few records, so a reserve of
 * 1/32 covers many thousands of them: snapshot creation is the only one
 * that can repeat without end, and it is an administrator's command.
 *
 * The snapshot reserve (setting snapshot-reserve, N% of the size) is
 * space only snapshots may use, as on ONTAP: the live tree sees a volume
 * of the rest (df's size), and ordinary writes leave the part of the
 * reserve that snapshots do not use yet (what only snapshots hold is the
 * ledger of blocks.c plus the history tables: sfs_snap_space).  When
 * snapshots hold more than the reserve they spill into the live tree's
 * share, which then has that much less.
 *
 * THEORY: ONE ENVIRONMENT PER STORE PER PROCESS.  LMDB forbids opening
 * one environment twice in a process: its lock file is guarded by POSIX
 * record locks, which belong to the process, so closing the second
 * environment's lock.mdb drops the locks the first still relies on.  The
 * next process to open the store then believes it is alone, resets the
 * reader table, and a writer may reuse pages a reader of ours still
 * reads.  Commands do open a store twice (an offline dump reads it and
 * saves its restart point through a short exclusive write handle; send
 * holds snapshots while it reads), so sfs_open shares one MDB_env among
 * the handles of one process on the same data.mdb (by device and inode,
 * and by process: a forked child never uses its parent's environment),
 * counted, closed with the last handle.  The shared environment is opened
 * read-write whenever the files allow it, so a read-only handle and a
 * writer can share it; a handle's read-only promise is st->readonly,
 * which sfs_txn_begin enforces.  The map is sized once, when the
 * environment is opened (mdb_env_set_mapsize needs no live transaction
 * in the process).
 *
 * Reservations.  A daemon keeps some written data in memory before
 * storing it (cached partial blocks, fs/wcache.c) and has acknowledged
 * it; storing it later must not fail.  So it reserves the space first
 * (sfs_space_reserve: ordinary writes see that much less), and stores
 * the data as SFS_SPACE_RESERVED, which does not count the reservations.
 * Since every reservation was taken out of the space ordinary writes
 * could use, and each is what storing its block is checked against
 * (sfs_block_cost), the reserved data always fits, with half the slop
 * to spare for its records and B-tree splits.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <pthread.h>
#include <openssl/rand.h>

#define META_SUPER "super"
#define META_STATE "state"

void sfs_log_corruption(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("snapfs: corruption: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int sfs_mdb_errno(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_NOTFOUND:
        return -ENOENT;
    case MDB_KEYEXIST:
        return -EEXIST;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
        return -ENOSPC;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_BAD_TXN:
        return -EIO;
    case MDB_VERSION_MISMATCH:
    case MDB_INVALID:
        return -EMEDIUMTYPE;
    case MDB_READERS_FULL:
    case MDB_DBS_FULL:
        return -EAGAIN;
    case MDB_BAD_VALSIZE:
        return -ENAMETOOLONG;
    default:
        return rc > 0 ? -rc : -EIO;
    }
}

uint64_t sfs_slop_bytes(const struct sfs_store *st)
{
    uint64_t slop = st->super.volume_size >> 5;
    return slop < (1u << 20) ? (1u << 20) : slop;
}

/* The map: generous headroom over the volume for page rounding, B-tree
 * slack, free pages awaiting reuse and history kept for snapshots. */
static uint64_t map_size_for(uint64_t volume_size)
{
    uint64_t m = volume_size * 2 + ((uint64_t)1 << 30);
    return (m + 0xfffff) & ~(uint64_t)0xfffff;
}

static int open_tables(struct sfs_store *st, MDB_txn *txn, unsigned create)
{
    struct { const char *name; MDB_dbi *dbi; } tables[] = {
        { "meta", &st->db_meta },     { "live", &st->db_live },
        { "hist", &st->db_hist },     { "dead", &st->db_dead },
        { "born", &st->db_born },     { "deadstat", &st->db_deadstat },
        { "blobs", &st->db_blobs },   { "dedup", &st->db_dedup },
        { "snaps", &st->db_snaps },   { "orphans", &st->db_orphans },
    };
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        int rc = mdb_dbi_open(txn, tables[i].name, create, tables[i].dbi);
        if (rc == MDB_NOTFOUND)
            return -EMEDIUMTYPE;
        if (rc)
            return sfs_mdb_errno(rc);
    }
    return 0;
}

static int env_open(const char *path, bool readonly, uint64_t map_size,
                    MDB_env **out)
{
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc)
        return sfs_mdb_errno(rc);
    mdb_env_set_maxdbs(env, 16);
    mdb_env_set_maxreaders(env, 256);
    if (map_size)
        mdb_env_set_mapsize(env, map_size);
    unsigned flags = MDB_NOTLS | MDB_NOMETASYNC;
    if (readonly)
        flags |= MDB_RDONLY;
    rc = mdb_env_open(env, path, flags, 0600);
    if (rc) {
        mdb_env_close(env);
        return sfs_mdb_errno(rc);
    }
    *out = env;
    return 0;
}

/* The environments this process has open (THEORY: ONE ENVIRONMENT PER
 * STORE PER PROCESS). */
struct shared_env {
    dev_t dev;
    ino_t ino;
    pid_t pid;
    MDB_env *env;
    bool readonly;          /* opened MDB_RDONLY: the files allow no more */
    unsigned refs;
    struct shared_env *next;
};

static struct shared_env *shared_envs;
static pthread_mutex_t shared_envs_lock = PTHREAD_MUTEX_INITIALIZER;

/* May this process write the store at PATH (its files and directory)? */
static bool store_writable(const char *path)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/data.mdb", path);
    if (access(p, W_OK) || access(path, W_OK))
        return false;
    snprintf(p, sizeof(p), "%s/lock.mdb", path);
    return access(p, W_OK) == 0 || errno == ENOENT;
}

/*
 * The environment of the store at PATH for a new handle: this process's
 * open one, or a new one (*FRESH).  READONLY: the handle only reads.
 * Returns 0, -EROFS if the shared environment is read-only and the handle
 * would write, or an LMDB/system error.
 */
static int shared_env_get(const char *path, bool readonly, MDB_env **env,
                          bool *fresh)
{
    char p[PATH_MAX];
    struct stat sb;
    snprintf(p, sizeof(p), "%s/data.mdb", path);
    if (stat(p, &sb))
        return -errno;
    pthread_mutex_lock(&shared_envs_lock);
    pid_t me = getpid();
    struct shared_env *e = shared_envs;
    while (e && !(e->dev == sb.st_dev && e->ino == sb.st_ino && e->pid == me))
        e = e->next;
    int rc = 0;
    if (e) {
        if (e->readonly && !readonly) {
            rc = -EROFS;
        } else {
            e->refs++;
            *env = e->env;
            *fresh = false;
        }
    } else if (!(e = calloc(1, sizeof(*e)))) {
        rc = -ENOMEM;
    } else {
        e->readonly = readonly && !store_writable(path);
        rc = env_open(path, e->readonly, 0, &e->env);
        if (rc) {
            free(e);
        } else {
            *e = (struct shared_env){ sb.st_dev, sb.st_ino, me, e->env,
                                      e->readonly, 1, shared_envs };
            shared_envs = e;
            *env = e->env;
            *fresh = true;
        }
    }
    pthread_mutex_unlock(&shared_envs_lock);
    return rc;
}

/* A handle is done with ENV: close it with the last one. */
static void shared_env_put(MDB_env *env)
{
    pthread_mutex_lock(&shared_envs_lock);
    struct shared_env **pe = &shared_envs;
    while (*pe && (*pe)->env != env)
        pe = &(*pe)->next;
    struct shared_env *e = *pe;
    bool last = !e || --e->refs == 0;
    if (e && last)
        *pe = e->next;
    pthread_mutex_unlock(&shared_envs_lock);
    if (last) {
        mdb_env_close(env);
        free(e);
    }
}

static int dir_is_empty_or_missing(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 1 : -errno;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = 0;
            break;
        }
    closedir(d);
    return empty;
}

static int put_meta(struct sfs_store *st, MDB_txn *txn, const char *name,
                    const void *val, size_t len)
{
    MDB_val k = { strlen(name), (void *)name };
    MDB_val v = { len, (void *)val };
    return sfs_mdb_errno(mdb_put(txn, st->db_meta, &k, &v, 0));
}

static int get_meta(struct sfs_store *st, MDB_txn *txn, const char *name,
                    void *val, size_t len)
{
    MDB_val k = { strlen(name), (void *)name };
    MDB_val v;
    int rc = mdb_get(txn, st->db_meta, &k, &v);
    if (rc)
        return rc == MDB_NOTFOUND ? -EMEDIUMTYPE : sfs_mdb_errno(rc);
    memset(val, 0, len);
    memcpy(val, v.mv_data, v.mv_size < len ? v.mv_size : len);
    return 0;
}

int sfs_state_save(struct sfs_store *st, MDB_txn *txn)
{
    return put_meta(st, txn, META_STATE, &st->state, sizeof(st->state));
}

/* The root directory: inode 1, mode 0755, owned by the creator. */
static int make_root(struct sfs_store *st, MDB_txn *txn)
{
    struct sfs_inode root = { 0 };
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    root.ino = SFS_ROOT_INO;
    root.mode = S_IFDIR | 0755;
    root.uid = getuid();
    root.gid = getgid();
    root.nlink = 2;
    root.parent = SFS_ROOT_INO;
    root.atime_sec = root.mtime_sec = root.ctime_sec = root.btime_sec =
        now.tv_sec;
    root.atime_nsec = root.mtime_nsec = root.ctime_nsec = root.btime_nsec =
        (uint32_t)now.tv_nsec;
    st->state.live_inodes = 1;
    return sfs_inode_put_w(st, txn, &root);
}

int sfs_mkfs(const char *path, const struct sfs_mkfs_opts *o)
{
    uint32_t bs = o->block_size ? o->block_size : SFS_BLOCK_SIZE_DEFAULT;
    if (bs < SFS_BLOCK_SIZE_MIN || bs > SFS_BLOCK_SIZE_MAX || (bs & (bs - 1)))
        return -EINVAL;
    if (o->codec != SFS_CODEC_NONE && o->codec != SFS_CODEC_ZSTD)
        return -EINVAL;

    int empty = dir_is_empty_or_missing(path);
    if (empty < 0)
        return empty;
    if (!empty)
        return -EEXIST;
    if (mkdir(path, 0700) && errno != EEXIST)
        return -errno;

    uint64_t size = o->volume_size;
    if (!size) {
        struct statvfs sv;
        if (statvfs(path, &sv))
            return -errno;
        size = (uint64_t)sv.f_blocks * sv.f_frsize;
    }
    if (size < (16u << 20))
        return -EINVAL;

    struct sfs_store st = { 0 };
    int rc = env_open(path, false, map_size_for(size), &st.env);
    if (rc)
        return rc;
    MDB_txn *txn;
    rc = sfs_mdb_errno(mdb_txn_begin(st.env, NULL, 0, &txn));
    if (rc)
        goto out_env;
    rc = open_tables(&st, txn, MDB_CREATE);
    if (rc)
        goto out_txn;

    memcpy(st.super.magic, SFS_MAGIC, sizeof(SFS_MAGIC) - 1);
    st.super.format_version = SFS_FORMAT_VERSION;
    st.super.block_size = bs;
    st.super.codec = (uint32_t)o->codec;
    st.super.codec_level = o->codec_level ? o->codec_level : 1;
    st.super.volume_size = size;
    st.super.created_sec = time(NULL);
    if (RAND_bytes(st.super.uuid, sizeof(st.super.uuid)) != 1) {
        rc = -EIO;
        goto out_txn;
    }
    st.state.cur_epoch = 1;
    st.state.next_ino = SFS_ROOT_INO + 1;
    st.state.next_blob = 1;
    st.state.next_snap_id = 1;
    st.state.flags = SFS_STATE_LEDGER; /* an empty ledger is counted */

    sfs_features_current(&st.features);
    rc = put_meta(&st, txn, META_SUPER, &st.super, sizeof(st.super));
    if (!rc)
        rc = sfs_features_put_w(&st, txn, &st.features);
    if (!rc)
        rc = make_root(&st, txn);
    if (!rc)
        rc = sfs_state_save(&st, txn);
    if (rc)
        goto out_txn;
    rc = sfs_mdb_errno(mdb_txn_commit(txn));
    if (!rc)
        rc = sfs_mdb_errno(mdb_env_sync(st.env, 1));
    goto out_env;
out_txn:
    mdb_txn_abort(txn);
out_env:
    mdb_env_close(st.env);
    return rc;
}

int sfs_check_is_store(const char *path)
{
    struct stat sb;
    if (stat(path, &sb))
        return -errno;
    if (!S_ISDIR(sb.st_mode))
        return -ENOTDIR;
    char *data;
    if (asprintf(&data, "%s/data.mdb", path) < 0)
        return -ENOMEM;
    int rc = stat(data, &sb) ? (errno == ENOENT ? -EMEDIUMTYPE : -errno) : 0;
    free(data);
    return rc;
}

int sfs_lock_store(const char *path, int *fd)
{
    char *lp;
    if (asprintf(&lp, "%s/lock", path) < 0)
        return -ENOMEM;
    *fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(lp);
    if (*fd < 0)
        return -errno;
    if (flock(*fd, LOCK_EX | LOCK_NB))
        return errno == EWOULDBLOCK ? -EBUSY : -errno;
    return 0;
}

/* The lock is ours: no compact runs beside us, so a temporary file of
 * one is a leftover of a compact that was killed. */
static int take_lock(struct sfs_store *st, const char *path)
{
    int rc = sfs_lock_store(path, &st->lock_fd);
    if (!rc)
        rc = sfs_compact_leftover_remove(path);
    return rc < 0 ? rc : 0;
}

int sfs_super_put_w(struct sfs_store *st, MDB_txn *txn)
{
    return put_meta(st, txn, META_SUPER, &st->super, sizeof(st->super));
}

static int load_super(struct sfs_store *st, int flags)
{
    MDB_txn *txn;
    int rc = sfs_mdb_errno(mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn));
    if (rc)
        return rc;
    rc = open_tables(st, txn, 0);
    if (!rc)
        rc = get_meta(st, txn, META_SUPER, &st->super, sizeof(st->super));
    if (!rc && memcmp(st->super.magic, SFS_MAGIC, sizeof(SFS_MAGIC) - 1))
        rc = -EMEDIUMTYPE;
    if (!rc)
        rc = sfs_format_check_open(st, txn, flags);
    if (!rc)
        rc = get_meta(st, txn, META_STATE, &st->state, sizeof(st->state));
    /* Table handles opened in a read txn stay valid after it commits. */
    int crc = mdb_txn_commit(txn);
    return rc ? rc : sfs_mdb_errno(crc);
}

static int (*open_check)(const struct sfs_store *st);

void sfs_set_open_check(int (*check)(const struct sfs_store *st))
{
    open_check = check;
}

int sfs_open(const char *path, int flags, struct sfs_store **out)
{
    sfs_open_why_clear();
    int rc = sfs_check_is_store(path);
    if (rc)
        return rc;
    struct sfs_store *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->lock_fd = -1;
    st->readonly = flags & SFS_OPEN_RDONLY;
    st->path = strdup(path);
    if (!st->path) {
        rc = -ENOMEM;
        goto fail;
    }
    if (flags & SFS_OPEN_EXCLUSIVE) {
        rc = take_lock(st, path);
        if (rc)
            goto fail;
    }
    /* A new environment opens with a small map to read the superblock,
     * then grows; a shared one is already sized. */
    bool fresh;
    rc = shared_env_get(path, st->readonly, &st->env, &fresh);
    if (rc)
        goto fail;
    rc = load_super(st, flags);
    if (!rc && open_check)
        rc = open_check(st);
    if (rc)
        goto fail;
    st->map_size = map_size_for(st->super.volume_size);
    MDB_envinfo ei;
    mdb_env_info(st->env, &ei);
    if (fresh && ei.me_mapsize < st->map_size) {
        rc = sfs_mdb_errno(mdb_env_set_mapsize(st->env, st->map_size));
        if (rc)
            goto fail;
    }
    int dead;
    if (!(flags & SFS_OPEN_KEEP_READERS))
        mdb_reader_check(st->env, &dead);
    *out = st;
    return 0;
fail:
    sfs_close(st);
    return rc;
}

void sfs_close(struct sfs_store *st)
{
    if (!st)
        return;
    if (st->env)
        shared_env_put(st->env);
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    free(st->path);
    free(st);
}

/*
 * Where LMDB mapped data.mdb.  LMDB does not say (mdb_env_info reports an
 * address only for MDB_FIXEDMAP), so look for the mapping of that file in
 * /proc/self/maps.  The map moves only when the map size changes.
 */
int sfs_map_region(struct sfs_store *st, void **addr, size_t *len)
{
    return sfs_env_map_region(st->env, addr, len);
}

int sfs_env_map_region(MDB_env *env, void **addr, size_t *len)
{
    char dir[PATH_MAX], want[PATH_MAX + 16], line[PATH_MAX + 256];
    const char *env_dir;
    if (mdb_env_get_path(env, &env_dir))
        return -ENOENT;
    if (!realpath(env_dir, dir)) /* the maps name files by absolute paths */
        return -errno;
    snprintf(want, sizeof(want), "%s/data.mdb", dir);
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -errno;
    int rc = -ENOENT;
    while (rc && fgets(line, sizeof(line), f)) {
        unsigned long start, end;
        char *path = strchr(line, '/');
        if (!path || sscanf(line, "%lx-%lx", &start, &end) != 2)
            continue;
        path[strcspn(path, "\n")] = 0;
        if (strcmp(path, want))
            continue;
        *addr = (void *)start;
        *len = end - start;
        rc = 0;
    }
    fclose(f);
    return rc;
}

void sfs_map_trim_begin(struct sfs_store *st, struct sfs_map_trim *t)
{
    t->steps = 0;
    if (sfs_map_region(st, &t->addr, &t->len))
        t->addr = NULL;
}

void sfs_map_trim_step(struct sfs_map_trim *t)
{
    if (t->addr && ++t->steps % SFS_MAP_TRIM_EVERY == 0)
        madvise(t->addr, t->len, MADV_DONTNEED);
}

int sfs_advise_access(struct sfs_store *st, enum sfs_access pattern)
{
    void *addr;
    size_t len;
    int rc = sfs_map_region(st, &addr, &len);
    if (rc)
        return rc;
    int advice = pattern == SFS_ACCESS_SCATTERED ? MADV_RANDOM : MADV_NORMAL;
    return madvise(addr, len, advice) ? -errno : 0;
}

int sfs_state_reload(struct sfs_store *st)
{
    MDB_txn *txn;
    int rc = sfs_mdb_errno(mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn));
    if (rc)
        return rc;
    rc = get_meta(st, txn, META_STATE, &st->state, sizeof(st->state));
    mdb_txn_abort(txn);
    return rc;
}

int sfs_txn_begin(struct sfs_store *st, MDB_txn *parent, bool write,
                  MDB_txn **out)
{
    if (write && st->readonly)
        return -EROFS;
    int rc = mdb_txn_begin(st->env, parent, write ? 0 : MDB_RDONLY, out);
    if (rc)
        return sfs_mdb_errno(rc);
    if (write && !parent) {
        rc = get_meta(st, *out, META_STATE, &st->state, sizeof(st->state));
        if (rc) {
            mdb_txn_abort(*out);
            return rc;
        }
    }
    return 0;
}

int sfs_txn_commit(struct sfs_store *st, MDB_txn *txn)
{
    int rc = sfs_state_save(st, txn);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return sfs_mdb_errno(mdb_txn_commit(txn));
}

int sfs_table_scan_prefix(MDB_txn *txn, MDB_dbi dbi, const void *prefix,
                          size_t plen, sfs_table_cb cb, void *arg)
{
    MDB_cursor *c;
    int rc = sfs_mdb_errno(mdb_cursor_open(txn, dbi, &c));
    if (rc)
        return rc;
    MDB_val k = { plen, (void *)prefix }, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (!mrc && k.mv_size > plen && !memcmp(k.mv_data, prefix, plen)) {
        if ((rc = cb(arg, &k, &v)))
            break;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc)
        return rc > 0 ? 0 : rc;
    return mrc == MDB_NOTFOUND ? 0 : sfs_mdb_errno(mrc);
}

int sfs_used_bytes(struct sfs_store *st, MDB_txn *txn, uint64_t *out)
{
    MDB_dbi dbis[] = { st->db_meta, st->db_live, st->db_hist, st->db_dead,
                       st->db_born, st->db_deadstat, st->db_blobs,
                       st->db_dedup, st->db_snaps, st->db_orphans };
    uint64_t pages = 0;
    unsigned psize = 4096;
    for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
        MDB_stat ms;
        int rc = mdb_stat(txn, dbis[i], &ms);
        if (rc)
            return sfs_mdb_errno(rc);
        psize = ms.ms_psize;
        pages += ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
    }
    *out = pages * psize;
    return 0;
}

uint64_t sfs_block_cost(const struct sfs_store *st)
{
    /* What block_store_new checks: its bytes and two pages (LMDB's page
     * header, the rounding); its few records (extent, dedup, born) share
     * pages with others and are covered by the half of the slop that
     * SFS_SPACE_RESERVED leaves. */
    return (uint64_t)st->super.block_size + 8192;
}

/* The snapshot reserve (snapshot-reserve), and the part of it that
 * snapshots do not use, which the live tree must leave them. */
static int snap_reserve(struct sfs_store *st, MDB_txn *txn, uint64_t *reserve,
                        uint64_t *snapshots, uint64_t *unused)
{
    uint32_t pct;
    *reserve = *snapshots = *unused = 0;
    int rc = sfs_setting_percent(st, txn, "snapshot-reserve", &pct);
    if (!rc)
        rc = sfs_snap_space(st, txn, snapshots);
    if (rc)
        return rc;
    *reserve = st->super.volume_size * pct / 100;
    *unused = *snapshots < *reserve ? *reserve - *snapshots : 0;
    return 0;
}

int sfs_space_left(struct sfs_store *st, MDB_txn *txn, enum sfs_space_use use,
                   uint64_t *out)
{
    uint64_t used, reserve, snapshots, unused = 0;
    int rc = sfs_used_bytes(st, txn, &used);
    if (!rc && use == SFS_SPACE_ORDINARY)
        rc = snap_reserve(st, txn, &reserve, &snapshots, &unused);
    if (rc)
        return rc;
    uint64_t slop = sfs_slop_bytes(st), taken = used;
    if (use == SFS_SPACE_ORDINARY)
        taken += __atomic_load_n(&st->space_reserved, __ATOMIC_RELAXED) +
                 unused;
    else
        slop /= 2;
    uint64_t limit = st->super.volume_size - slop;
    *out = taken >= limit ? 0 : limit - taken;
    return 0;
}

int sfs_space_avail(struct sfs_store *st, MDB_txn *txn, uint64_t *out)
{
    return sfs_space_left(st, txn, SFS_SPACE_ORDINARY, out);
}

int sfs_space_get(struct sfs_store *st, MDB_txn *txn, struct sfs_space *out)
{
    uint64_t unused;
    memset(out, 0, sizeof(*out));
    out->size = st->super.volume_size;
    int rc = sfs_used_bytes(st, txn, &out->used);
    if (!rc)
        rc = snap_reserve(st, txn, &out->reserve, &out->snapshots, &unused);
    if (!rc)
        rc = sfs_space_avail(st, txn, &out->avail);
    if (rc)
        return rc;
    out->live_size = out->size - out->reserve;
    uint64_t in_reserve = out->snapshots < out->reserve ? out->snapshots
                                                        : out->reserve;
    uint64_t live_used = out->used - in_reserve;
    out->live_free = live_used < out->live_size ? out->live_size - live_used
                                                : 0;
    return 0;
}

int sfs_space_reserve(struct sfs_store *st, MDB_txn *txn, uint64_t bytes)
{
    uint64_t avail;
    int rc = sfs_space_avail(st, txn, &avail);
    if (rc)
        return rc;
    if (bytes > avail)
        return -ENOSPC;
    __atomic_add_fetch(&st->space_reserved, bytes, __ATOMIC_RELAXED);
    return 0;
}

void sfs_space_unreserve(struct sfs_store *st, uint64_t bytes)
{
    __atomic_sub_fetch(&st->space_reserved, bytes, __ATOMIC_RELAXED);
}
