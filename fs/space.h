/*
 * space.h - write() answers ENOSPC on a full volume, with the kernel's
 * writeback cache too (theory in space.c).
 */
#ifndef SNAPFS_SPACE_H
#define SNAPFS_SPACE_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "volume.h"

/* Write(2) calls that passed the gate may still add this much. */
#define SPACE_WRITES_UNDER_WAY (8u << 20)
/* What the kernel may hold dirty for the mount while near full, when
 * the daemon may lower it (root). */
#define SPACE_DIRTY_NEAR_FULL (2u << 20)
/* The bound assumed when the mount's bdi cannot be read. */
#define SPACE_DIRTY_UNKNOWN (256u << 20)
/* Near full ends only this far above where it began. */
#define SPACE_LEAVE_MARGIN (16u << 20)
/* The mount's dirty bound while the volume is roomy (space.c, ROOMY). */
#define SPACE_DIRTY_ROOMY (1u << 30)
/* The room is measured again at least this often while writes come. */
#define SPACE_MEASURE_MS 1000

struct space {
    struct vol *vol;
    struct fuse_session *se;
    bool enabled;            /* the writeback cache is on: all below applies */
    char bdi[64];            /* /sys/class/bdi/MAJ:MIN, or "" */
    pthread_mutex_t lock;    /* measurements and changes of mode */
    uint64_t bound;          /* the kernel's dirty bound as mounted (bytes) */
    char saved_ratio[32];    /* the bdi's max_ratio_fine before lowering */
    bool lowered;            /* the bdi's bound is SPACE_DIRTY_NEAR_FULL */
    bool near_full;          /* atomic */
    int64_t room;            /* atomic: bytes to write before measuring */
    uint64_t measured_ms;    /* atomic: vol_now_ms() of the last measure */
    uint64_t arrived;        /* atomic: cache writes since lowering */
    /* Roomy (see space.c, THEORY, ROOMY): the bdi's bound is raised. */
    bool roomy;
    bool started;            /* space_start is done: transitions are logged */
    uint64_t roomy_bound;    /* the raised bound, as the kernel reads it */
    char roomy_saved_ratio[32]; /* max_ratio_fine before raising */
    uint64_t roomy_min;      /* the share guaranteed while roomy (min_bytes) */
    uint64_t small_bytes;    /* atomic: cache writes smaller than a block, */
    uint64_t cache_bytes;    /* and all cache writes, since the last choice */
    uint64_t lowered_from;   /* the bound when lowered, decaying from */
    uint64_t carry;          /* what the kernel may hold from roomy
                                time, when the bound was given back */
    uint64_t carry_arrived;  /* atomic: cache writes since then */
};

/* Start watching VOL mounted on MOUNTPOINT through SE; WRITEBACK: the
 * kernel's writeback cache is on (else nothing needs doing).  Never
 * fails: without the bdi it assumes SPACE_DIRTY_UNKNOWN. */
void space_start(struct space *sp, struct vol *v, struct fuse_session *se,
                 const char *mountpoint, bool writeback);
/* Give the bdi its bound back (if lowered). */
void space_stop(struct space *sp);
/* After a write of BYTES was stored; CACHE_WRITE: from the page cache. */
void space_wrote(struct space *sp, size_t bytes, bool cache_write);
/* At an open with FLAGS: should the file be opened for direct I/O? */
bool space_direct_open(struct space *sp, int flags);
/* The GETATTR of a handle open for writing through the cache, which the
 * kernel sends before a cached write(2): 0, or -ENOSPC to fail it, with
 * *NEED the bytes that would have to be available. */
int space_gate(struct space *sp, uint64_t *need);
/* The attribute timeout of an inode of MODE: NORMAL, or 0 near full. */
double space_attr_timeout(struct space *sp, mode_t mode, double normal);

#endif
