/*
 * metrics.h - the statistics a mounted volume's daemon keeps (metrics.c):
 * operations by type with their latency, bytes read and written, what the
 * store made of the writes, the write cache, commits.  Counted per thread,
 * summed when asked (`stats` on the control socket, snapfs stats).
 */
#ifndef SNAPFS_METRICS_H
#define SNAPFS_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* FUSE operations, as counted (forget_multi counts as forget). */
enum metrics_op {
    MOP_LOOKUP, MOP_FORGET, MOP_GETATTR, MOP_SETATTR, MOP_READLINK,
    MOP_MKNOD, MOP_MKDIR, MOP_UNLINK, MOP_RMDIR, MOP_SYMLINK, MOP_RENAME,
    MOP_LINK, MOP_OPEN, MOP_READ, MOP_WRITE, MOP_FLUSH, MOP_RELEASE,
    MOP_FSYNC, MOP_READDIR, MOP_READDIRPLUS, MOP_FSYNCDIR, MOP_STATFS,
    MOP_SETXATTR, MOP_GETXATTR, MOP_LISTXATTR, MOP_REMOVEXATTR, MOP_CREATE,
    MOP_FALLOCATE,
    MOP_COUNT
};

enum metrics_counter {
    MC_READ_BYTES,          /* bytes answered to reads */
    MC_WRITE_BYTES,         /* bytes of writes accepted */
    MC_NEW_BLOCKS,          /* blocks stored new */
    MC_NEW_LOGICAL,         /* their bytes before compression */
    MC_NEW_STORED,          /* and after */
    MC_NEW_COMPRESSED,      /* of them, stored compressed */
    MC_DEDUP_BLOCKS,        /* blocks written that were already stored */
    MC_DEDUP_BYTES,
    MC_ZERO_BYTES,          /* zeros written, left as holes */
    MC_INLINE_BYTES,        /* short tails kept in their extent record */
    MC_WCACHE_HITS,         /* partial writes into a block already cached */
    MC_WCACHE_MISSES,       /* partial writes that loaded their block */
    MC_WCACHE_BYPASSES,     /* partial writes stored at once (no room) */
    MC_WCACHE_STORED,       /* cached blocks stored */
    MC_WCACHE_OVERLAYS,     /* reads of a file with cached blocks */
    MC_COMMITS_INTERVAL,    /* commits by trigger: the 2 s interval, */
    MC_COMMITS_SIZE,        /* 32 MiB in the batch, */
    MC_COMMITS_SYNC,        /* fsync or a control change, */
    MC_COMMITS_UNMOUNT,     /* the last one */
    MC_COMMIT_ERRORS,
    MC_DAMAGED_READS,       /* reads refused with EIO: a block failed its
                             * verification (snapfs fsck names the file) */
    MC_READAROUND_BYTES,    /* bytes of read blocks given to the kernel's
                             * cache beyond the requests (readaround.c) */
    MC_COUNT
};

enum metrics_commit_trigger { MCT_INTERVAL, MCT_SIZE, MCT_SYNC, MCT_UNMOUNT };

/* False (set before serving) when the mount has `-o nostats`: nothing is
 * counted and the FUSE operations are not wrapped. */
extern bool metrics_enabled;

/* Monotonic nanoseconds, the latencies' clock. */
uint64_t metrics_clock(void);
void metrics_add(enum metrics_counter c, uint64_t n);
/* Operation OP, begun at T0 (metrics_clock), is done. */
void metrics_op_done(enum metrics_op op, uint64_t t0);
/* A batch of BYTES committed in NS nanoseconds (RC: its result). */
void metrics_commit(enum metrics_commit_trigger why, uint64_t ns,
                    uint64_t bytes, int rc);

/* The time serving began (for uptime). */
void metrics_start(void);

/*
 * Write every counter and histogram summed over threads, as the lines of
 * the `stats` reply (format in metrics.c): "uptime_ns", "counter NAME N",
 * "hist NAME COUNT SUM MAX LE:N,...".
 */
void metrics_write(FILE *out);

#endif
