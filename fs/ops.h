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
 * flight at most, and the daemon's threads.  More threads than background
 * requests (80) would let the getxattr before each write(2) always find a
 * free thread, but measured on an idle 2-core machine (2026-12-07 16:02,
 * randio.sh) 80 threads made 4 KiB overwrites on a 4 KiB-block volume 3x
 * slower than 16 (4,534 against 13,284 IOPS: the threads contend for the
 * file and volume locks) for 16% more on 64 KiB blocks; 32 was between.
 * Threads beyond the busy ones exit when idle (libfuse).
 */
#define SNAPFS_MAX_BACKGROUND 64
#define SNAPFS_MAX_THREADS 16

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
