/*
 * metrics_ops.c - the FUSE operations counted and timed: a table of
 * wrappers around ops.c's, each of which reads the clock, calls the
 * operation and records its latency (metrics.c).  The daemon serves this
 * table unless the mount has `-o nostats`, which serves ops.c's own and
 * so costs nothing at all.
 *
 * A wrapper adds two clock reads (vDSO, no system call) and three
 * increments of its thread's own shard; it holds no lock.  The latency
 * is the handler's: from the request's arrival in the daemon to the
 * return after the reply was sent, waits for the volume lock, the freeze
 * gate and a commit (fsync) included; the kernel's queueing is not.
 */
#include "metrics_ops.h"

#include "metrics.h"

/* The operations wrapped (a copy of the table given, set once, before
 * the session starts). */
static struct fuse_lowlevel_ops inner;

#define TIMED(field, op, params, args)                                      \
    static void timed_##field params                                        \
    {                                                                       \
        uint64_t t0 = metrics_clock();                                      \
        inner.field args;                                                   \
        metrics_op_done(op, t0);                                            \
    }

TIMED(lookup, MOP_LOOKUP, (fuse_req_t req, fuse_ino_t parent,
                           const char *name), (req, parent, name))
TIMED(forget, MOP_FORGET, (fuse_req_t req, fuse_ino_t ino, uint64_t n),
      (req, ino, n))
TIMED(forget_multi, MOP_FORGET, (fuse_req_t req, size_t count,
                                 struct fuse_forget_data *forgets),
      (req, count, forgets))
TIMED(getattr, MOP_GETATTR, (fuse_req_t req, fuse_ino_t ino,
                             struct fuse_file_info *fi), (req, ino, fi))
TIMED(setattr, MOP_SETATTR, (fuse_req_t req, fuse_ino_t ino,
                             struct stat *attr, int to_set,
                             struct fuse_file_info *fi),
      (req, ino, attr, to_set, fi))
TIMED(readlink, MOP_READLINK, (fuse_req_t req, fuse_ino_t ino), (req, ino))
TIMED(mknod, MOP_MKNOD, (fuse_req_t req, fuse_ino_t parent, const char *name,
                         mode_t mode, dev_t rdev),
      (req, parent, name, mode, rdev))
TIMED(mkdir, MOP_MKDIR, (fuse_req_t req, fuse_ino_t parent, const char *name,
                         mode_t mode), (req, parent, name, mode))
TIMED(unlink, MOP_UNLINK, (fuse_req_t req, fuse_ino_t parent,
                           const char *name), (req, parent, name))
TIMED(rmdir, MOP_RMDIR, (fuse_req_t req, fuse_ino_t parent, const char *name),
      (req, parent, name))
TIMED(symlink, MOP_SYMLINK, (fuse_req_t req, const char *link,
                             fuse_ino_t parent, const char *name),
      (req, link, parent, name))
TIMED(rename, MOP_RENAME, (fuse_req_t req, fuse_ino_t parent,
                           const char *name, fuse_ino_t newparent,
                           const char *newname, unsigned int flags),
      (req, parent, name, newparent, newname, flags))
TIMED(link, MOP_LINK, (fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                       const char *newname), (req, ino, newparent, newname))
TIMED(open, MOP_OPEN, (fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi), (req, ino, fi))
TIMED(read, MOP_READ, (fuse_req_t req, fuse_ino_t ino, size_t size,
                       off_t off, struct fuse_file_info *fi),
      (req, ino, size, off, fi))
TIMED(write, MOP_WRITE, (fuse_req_t req, fuse_ino_t ino, const char *buf,
                         size_t size, off_t off, struct fuse_file_info *fi),
      (req, ino, buf, size, off, fi))
TIMED(flush, MOP_FLUSH, (fuse_req_t req, fuse_ino_t ino,
                         struct fuse_file_info *fi), (req, ino, fi))
TIMED(release, MOP_RELEASE, (fuse_req_t req, fuse_ino_t ino,
                             struct fuse_file_info *fi), (req, ino, fi))
TIMED(fsync, MOP_FSYNC, (fuse_req_t req, fuse_ino_t ino, int datasync,
                         struct fuse_file_info *fi), (req, ino, datasync, fi))
TIMED(readdir, MOP_READDIR, (fuse_req_t req, fuse_ino_t ino, size_t size,
                             off_t off, struct fuse_file_info *fi),
      (req, ino, size, off, fi))
TIMED(readdirplus, MOP_READDIRPLUS, (fuse_req_t req, fuse_ino_t ino,
                                     size_t size, off_t off,
                                     struct fuse_file_info *fi),
      (req, ino, size, off, fi))
TIMED(fsyncdir, MOP_FSYNCDIR, (fuse_req_t req, fuse_ino_t ino, int datasync,
                               struct fuse_file_info *fi),
      (req, ino, datasync, fi))
TIMED(statfs, MOP_STATFS, (fuse_req_t req, fuse_ino_t ino), (req, ino))
TIMED(setxattr, MOP_SETXATTR, (fuse_req_t req, fuse_ino_t ino,
                               const char *name, const char *value,
                               size_t size, int flags),
      (req, ino, name, value, size, flags))
TIMED(getxattr, MOP_GETXATTR, (fuse_req_t req, fuse_ino_t ino,
                               const char *name, size_t size),
      (req, ino, name, size))
TIMED(listxattr, MOP_LISTXATTR, (fuse_req_t req, fuse_ino_t ino,
                                 size_t size), (req, ino, size))
TIMED(removexattr, MOP_REMOVEXATTR, (fuse_req_t req, fuse_ino_t ino,
                                     const char *name), (req, ino, name))
TIMED(create, MOP_CREATE, (fuse_req_t req, fuse_ino_t parent,
                           const char *name, mode_t mode,
                           struct fuse_file_info *fi),
      (req, parent, name, mode, fi))
TIMED(fallocate, MOP_FALLOCATE, (fuse_req_t req, fuse_ino_t ino, int mode,
                                 off_t offset, off_t length,
                                 struct fuse_file_info *fi),
      (req, ino, mode, offset, length, fi))

/* OUT->FIELD becomes its wrapper where OPS has the operation. */
#define WRAP(field)                                                         \
    do {                                                                    \
        if (ops->field)                                                     \
            out->field = timed_##field;                                     \
    } while (0)

void metrics_wrap_ops(const struct fuse_lowlevel_ops *ops,
                      struct fuse_lowlevel_ops *out)
{
    inner = *ops;
    *out = *ops;
    WRAP(lookup); WRAP(forget); WRAP(forget_multi); WRAP(getattr);
    WRAP(setattr); WRAP(readlink); WRAP(mknod); WRAP(mkdir); WRAP(unlink);
    WRAP(rmdir); WRAP(symlink); WRAP(rename); WRAP(link); WRAP(open);
    WRAP(read); WRAP(write); WRAP(flush); WRAP(release); WRAP(fsync);
    WRAP(readdir); WRAP(readdirplus); WRAP(fsyncdir); WRAP(statfs);
    WRAP(setxattr); WRAP(getxattr); WRAP(listxattr); WRAP(removexattr);
    WRAP(create); WRAP(fallocate);
}
