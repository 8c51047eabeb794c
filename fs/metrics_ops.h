/*
 * metrics_ops.h - the FUSE operations counted and timed (metrics_ops.c).
 */
#ifndef SNAPFS_METRICS_OPS_H
#define SNAPFS_METRICS_OPS_H

#include <fuse_lowlevel.h>

/* OUT: OPS with every operation wrapped so that it is counted and timed
 * (metrics.h); OPS's functions are called through a copy kept inside. */
void metrics_wrap_ops(const struct fuse_lowlevel_ops *ops,
                      struct fuse_lowlevel_ops *out);

#endif
