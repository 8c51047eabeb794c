/*
 * compact.c - what the store file is made of (LMDB pages in use and free),
 * and the compacting copy that gives the free pages back.
 *
 * Guarantees: sfs_file_pages reads the figures in one read transaction;
 * sfs_compact changes nothing unless it completes, and a kill at any point
 * leaves either the old store or the new one, with every record.
 *
 * THEORY
 *
 * LMDB never shrinks its file.  A page a transaction frees goes on the
 * free list (the free-list tree, LMDB's table 0) and is reused by later
 * commits, but the file keeps its high-water mark: after a volume was
 * filled and emptied, the file stays as large as it ever was.  Giving
 * that back while the volume is in use is not possible in general: pages
 * are addressed by number, so the free ones can be cut off only from the
 * end of the file, and live pages anywhere below them (a B-tree's root,
 * a block written late) pin the whole file; moving them would mean
 * rewriting every page that points to them, up to the roots, while
 * readers hold snapshots of the old pages.  LMDB offers no such
 * relocation (mdb_env_set_mapsize may grow the map but never truncates
 * below the high-water mark).  What it does offer is the compacting copy
 * (mdb_env_copyfd2 with MDB_CP_COMPACT): it walks every tree in one read
 * transaction and writes its pages out densely, renumbered, without the
 * free list.  So `snapfs compact` is offline:
 *
 *   1. the store's lock (the flock a daemon or an offline writer holds)
 *      is taken, and no other process may have the LMDB environment open
 *      (LMDB's lock file: every process holds a shared fcntl lock on its
 *      first byte; a read-only reader such as `snapfs info` does too);
 *   2. the copy's size is known before it starts (sfs_file_pages: the
 *      pages of every tree and the two meta pages, less the free-list
 *      tree), so a directory without room for it is refused up front;
 *   3. the copy goes to SFS_COMPACT_TEMP in the same directory (created
 *      with the old file's owner and mode), is fsynced, and is renamed
 *      over data.mdb; the directory is fsynced;
 *   4. LMDB's lock file (lock.mdb) is removed: it caches the old file's
 *      last transaction id, which means nothing for the new file (the
 *      copy starts again at transaction 1), and the next process to open
 *      the store creates it afresh from the new file.
 *
 * A kill before the rename leaves the old data.mdb and a stray temporary
 * file, which the next compact and every exclusive open (a mount) remove
 * (they hold the store's lock, so no compact is running); a kill after it
 * leaves the new data.mdb, and a lock.mdb that no process holds, which
 * LMDB's first opener reinitializes from the data file.  Either way the
 * store is whole.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* LMDB's free-list and main trees (lmdb.h keeps their numbers private;
 * they are fixed by the file format). */
#define FREE_DBI 0
#define MAIN_DBI 1

static uint64_t tree_pages(const MDB_stat *ms)
{
    return ms->ms_branch_pages + ms->ms_leaf_pages + ms->ms_overflow_pages;
}

/* Pages listed on the free list: each record is an ID list whose first
 * word is its length. */
static int count_free_pages(MDB_txn *txn, uint64_t *out)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, FREE_DBI, &c);
    if (rc)
        return sfs_mdb_errno(rc);
    MDB_val k, v;
    *out = 0;
    while (!(rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
        size_t n;
        if (v.mv_size < sizeof(n)) {
            rc = MDB_CORRUPTED;
            break;
        }
        memcpy(&n, v.mv_data, sizeof(n));
        *out += n;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : sfs_mdb_errno(rc);
}

int sfs_file_pages(struct sfs_store *st, MDB_txn *txn,
                   struct sfs_file_pages *out)
{
    memset(out, 0, sizeof(*out));
    MDB_stat ms, fs;
    int rc = mdb_stat(txn, MAIN_DBI, &ms);
    if (!rc)
        rc = mdb_stat(txn, FREE_DBI, &fs);
    if (rc)
        return sfs_mdb_errno(rc);
    uint64_t tables;
    int err = sfs_used_bytes(st, txn, &tables);
    if (!err)
        err = count_free_pages(txn, &out->free_pages);
    if (err)
        return err;
    MDB_envinfo ei;
    mdb_env_info(st->env, &ei);
    out->page_size = ms.ms_psize;
    out->file_pages = (uint64_t)ei.me_last_pgno + 1;
    out->compact_pages = 2 + tree_pages(&ms) + tables / ms.ms_psize;
    out->used_pages = out->compact_pages + tree_pages(&fs);
    char *data;
    if (asprintf(&data, "%s/data.mdb", st->path) < 0)
        return -ENOMEM;
    struct stat sb;
    if (!stat(data, &sb))
        out->file_bytes = (uint64_t)sb.st_size;
    free(data);
    return 0;
}

int sfs_compact_leftover_remove(const char *dir)
{
    char *tmp;
    if (asprintf(&tmp, "%s/%s", dir, SFS_COMPACT_TEMP) < 0)
        return -ENOMEM;
    int rc = unlink(tmp) ? (errno == ENOENT ? 0 : -errno) : 1;
    free(tmp);
    return rc;
}

/* Another process with the environment open holds a shared lock on the
 * first byte of lock.mdb (LMDB's reader lock): its pid, or 0. */
static int env_holder(const char *path)
{
    char *lp;
    if (asprintf(&lp, "%s/lock.mdb", path) < 0)
        return 0;
    int fd = open(lp, O_RDONLY | O_CLOEXEC);
    free(lp);
    if (fd < 0)
        return 0;
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                        .l_start = 0, .l_len = 1 };
    int pid = 0;
    if (!fcntl(fd, F_GETLK, &fl) && fl.l_type != F_UNLCK)
        pid = fl.l_pid ? fl.l_pid : -1;
    close(fd);
    return pid;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

static int room_for(const char *dir, uint64_t need,
                    struct sfs_compact_result *out)
{
    struct statvfs sv;
    if (statvfs(dir, &sv))
        return -errno;
    uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    if (avail >= need)
        return 0;
    out->need_bytes = need;
    out->free_bytes = avail;
    return -ENOSPC;
}

/* Write the compacting copy of ST into TMP (owner and mode of the old
 * data file), synced; its size into *SIZE. */
static int write_copy(struct sfs_store *st, const char *tmp, uint64_t *size)
{
    char *data;
    if (asprintf(&data, "%s/data.mdb", st->path) < 0)
        return -ENOMEM;
    struct stat sb;
    int rc = stat(data, &sb) ? -errno : 0;
    free(data);
    if (rc)
        return rc;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (fchown(fd, sb.st_uid, sb.st_gid) || fchmod(fd, sb.st_mode & 07777))
        rc = -errno;
    if (!rc)
        rc = sfs_mdb_errno(mdb_env_copyfd2(st->env, fd, MDB_CP_COMPACT));
    if (!rc && fsync(fd))
        rc = -errno;
    struct stat nb;
    if (!rc && fstat(fd, &nb))
        rc = -errno;
    if (close(fd) && !rc)
        rc = -errno;
    if (!rc)
        *size = (uint64_t)nb.st_size;
    return rc;
}

/* With the store's lock held: copy, and put the copy in place. */
static int compact_locked(const char *path, const char *to,
                          struct sfs_compact_result *out)
{
    const char *dest = to ? to : path;
    char *tmp = NULL, *final = NULL, *lockmdb = NULL;
    int rc = sfs_compact_leftover_remove(path);
    if (rc > 0)
        out->leftover_removed = true;
    out->holder_pid = env_holder(path);
    if (out->holder_pid)
        return -EBUSY;
    struct sfs_store *st;
    rc = sfs_open(path, SFS_OPEN_RDONLY, &st);
    if (rc)
        return rc;
    MDB_txn *txn;
    rc = sfs_txn_begin(st, NULL, false, &txn);
    if (!rc) {
        rc = sfs_file_pages(st, txn, &out->before);
        mdb_txn_abort(txn);
    }
    if (!rc)
        rc = room_for(dest, out->before.compact_pages *
                                out->before.page_size, out);
    if (!rc && (asprintf(&tmp, "%s/%s", dest, SFS_COMPACT_TEMP) < 0 ||
                asprintf(&final, "%s/data.mdb", dest) < 0 ||
                asprintf(&lockmdb, "%s/lock.mdb", path) < 0))
        rc = -ENOMEM;
    if (!rc) {
        rc = write_copy(st, tmp, &out->after_bytes);
        if (rc)
            unlink(tmp);
    }
    sfs_close(st);
    if (!rc && rename(tmp, final))
        rc = -errno;
    if (!rc && !to && unlink(lockmdb) && errno != ENOENT)
        rc = -errno;
    if (!rc)
        rc = sync_dir(dest);
    free(tmp);
    free(final);
    free(lockmdb);
    return rc;
}

int sfs_compact(const char *path, const char *to,
                struct sfs_compact_result *out)
{
    memset(out, 0, sizeof(*out));
    int rc = sfs_check_is_store(path);
    if (rc)
        return rc;
    int lock_fd = -1;
    rc = sfs_lock_store(path, &lock_fd);
    if (!rc)
        rc = compact_locked(path, to, out);
    if (lock_fd >= 0)
        close(lock_fd);
    return rc;
}
