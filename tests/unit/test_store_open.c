/*
 * test_store_open.c - one LMDB environment per store per process.
 *
 * A command that reads a store while it writes through a second handle
 * (an offline dump saving its restart point, send holding snapshots)
 * must keep LMDB's locks: after the second handle closes, another
 * process must still see this one as a user of the store (its POSIX lock
 * on lock.mdb), or it would reset the reader table under our reader.
 * Also: the handles share their environment, a read-only handle cannot
 * write through it, the reader sees what the writer committed once it
 * starts a new transaction, and a forked child opens its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "testvol.h"
#include "../../store/internal.h"

/* Does a process other than this one see a lock held on DIR/lock.mdb? */
static bool others_see_our_lock(const char *dir)
{
    pid_t child = fork();
    if (child == 0) {
        char p[600];
        snprintf(p, sizeof(p), "%s/lock.mdb", dir);
        int fd = open(p, O_RDWR);
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        if (fd < 0 || fcntl(fd, F_GETLK, &fl))
            _exit(2);
        _exit(fl.l_type == F_UNLCK ? 1 : 0);
    }
    int status;
    waitpid(child, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* A forked child opens the store itself: 0 when it could read it. */
static int child_opens(const char *dir)
{
    pid_t child = fork();
    if (child == 0) {
        struct sfs_store *st;
        int rc = sfs_open(dir, SFS_OPEN_RDONLY, &st);
        if (!rc)
            sfs_close(st);
        _exit(rc ? 1 : 0);
    }
    int status;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 3;
}

int main(void)
{
    char dir[256];
    struct sfs_store *first = testvol_create(dir, sizeof(dir), 0, 0);
    sfs_close(first);

    struct sfs_store *reader, *writer;
    CHECK_RC(sfs_open(dir, SFS_OPEN_RDONLY, &reader));
    MDB_txn *rtxn;
    CHECK_RC(sfs_txn_begin(reader, NULL, false, &rtxn));
    CHECK(others_see_our_lock(dir), "a reader's lock is visible");

    CHECK_RC(sfs_open(dir, SFS_OPEN_EXCLUSIVE, &writer));
    CHECK(writer->env == reader->env, "the handles share one environment");
    MDB_txn *wtxn;
    CHECK_RC(sfs_txn_begin(writer, NULL, true, &wtxn));
    uint64_t next_before = writer->state.next_ino;
    writer->state.next_ino++;
    CHECK_RC(sfs_txn_commit(writer, wtxn));
    sfs_close(writer);

    CHECK(others_see_our_lock(dir),
          "closing the second handle keeps the process's lock on lock.mdb");
    CHECK(sfs_txn_begin(reader, NULL, true, &wtxn) == -EROFS,
          "a read-only handle cannot write through the shared environment");
    mdb_txn_abort(rtxn);
    CHECK_RC(sfs_txn_begin(reader, NULL, false, &rtxn));
    struct sfs_state seen;
    MDB_val k = { 5, "state" }, v;
    CHECK(mdb_get(rtxn, reader->db_meta, &k, &v) == 0, "the state is read");
    memcpy(&seen, v.mv_data, v.mv_size < sizeof(seen) ? v.mv_size
                                                      : sizeof(seen));
    CHECK(seen.next_ino == next_before + 1,
          "the reader sees the writer's commit: next_ino %llu",
          (unsigned long long)seen.next_ino);
    mdb_txn_abort(rtxn);
    CHECK(child_opens(dir) == 0, "a forked child opens the store itself");
    testvol_remove(reader, dir);
    return test_done("test_store_open");
}
