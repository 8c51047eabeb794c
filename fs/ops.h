/*
 * ops.h - the FUSE filesystem of a mounted volume.
 */
#ifndef SNAPFS_OPS_H
#define SNAPFS_OPS_H

#include <fuse_lowlevel.h>

#include "snapdir.h"
#include "space.h"
#include "volume.h"

/*
 * The kernel's background requests (writeback, readahead, async reads) in
 * flight at most, and the daemon's threads: more threads than background
 * requests, so that the requests a process waits for (the getxattr of
 * `security.capability` before each write(2), lookups, reads) always
 * find a free thread, even when every background write waits for a
 * commit.  Threads beyond the busy ones exit when idle (libfuse).
 *
 * Measured on an idle 2-core machine (2026-12-07 16:02, randio.sh), 16
 * threads made 4 KiB overwrites on a 4 KiB-block volume 3x faster than
 * these 80 (13,284 against 4,534 IOPS: the threads contend for the locks)
 * for 14% less on 64 KiB blocks, but with 16 threads t56's snapshot
 * under three writers once left the writers stalled for good (one run in
 * two, cause not found): the spare threads stay until that is understood.
 */
#define SNAPFS_MAX_BACKGROUND 64
#define SNAPFS_MAX_THREADS (SNAPFS_MAX_BACKGROUND + 16)

/* Everything a FUSE request can reach: fuse_req_userdata() points here. */
struct snapfs_fs {
    struct vol vol;
    struct snapdirs snapdirs; /* .snapshot (snapdir.c) */
    struct space space;       /* ENOSPC at write() near full (space.c) */
    bool no_writeback;   /* -o no_writeback_cache given */
    unsigned conn_want;  /* capabilities granted at init */
};

extern const struct fuse_lowlevel_ops snapfs_ops;

/* Mount STORE on MOUNTPOINT and serve it until unmounted.  OPTIONS are
 * extra -o options.  When READY_FD >= 0, one byte (0 = ok) is written to it
 * once the mount is serving or has failed, and the daemon detaches.
 * Messages go to stderr; returns a process exit status. */
int snapfs_serve(const char *store, const char *mountpoint, const char *options,
                 int ready_fd);

#endif
