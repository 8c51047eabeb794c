/*
 * space.c - on a full volume write() itself answers ENOSPC, with the
 * kernel's writeback cache too, and nothing write() accepted is lost for
 * want of space.
 *
 * THEORY
 *
 * Without the writeback cache every write(2) is a request that the
 * daemon answers after storing it or refusing it for space: ENOSPC
 * reaches write() by itself.  With the cache, write() copies into the
 * kernel's page cache and returns; the kernel sends the pages later
 * (writeback), and a failure then reaches only fsync() and close().  How
 * much it may hold so is bounded: the kernel keeps the dirty and
 * in-writeback pages of a FUSE mount (its bdi, which has a strict limit)
 * under max_bytes of /sys/class/bdi/MAJ:MIN, 1% of the system's dirty
 * threshold by default (tens of MiB).  Call that the bound.  While the
 * volume's room exceeds the bound, plus what write(2) calls under way may
 * add (SPACE_WRITES_UNDER_WAY), at the worst cost per byte, nothing needs
 * doing: whatever the kernel holds will fit.  That costs nothing: the
 * daemon counts what is written against the room it measured, and
 * measures again only when the count runs out (or a second passed).
 *
 * Below that the volume is *near full*, and three things keep write()
 * honest:
 *   1. New opens for writing only (O_WRONLY: copies, loggers, streams)
 *      get direct I/O: their writes are requests, refused exactly when
 *      the space is gone.  O_RDWR opens keep the cache: the kernel
 *      refuses a shared mapping of a direct-I/O file, and programs that
 *      read and write a file (databases) map it.
 *   2. The bound shrinks: the daemon lowers the mount's max_bytes to
 *      SPACE_DIRTY_NEAR_FULL (when it may: as root), so the kernel
 *      throttles writers to what it can send soon.  Pages dirtied before
 *      are still to come, but every byte of writeback received since was
 *      one of them until the new bound is reached, so the bound decays
 *      by what arrives: max(new bound, old bound - arrived).  And the
 *      mount cannot hold more than the whole system's dirty and
 *      in-writeback pages (/proc/meminfo), usually far less than the
 *      bound: what the kernel may hold is the smaller of the two.
 *   3. Every write(2) through the cache asks first.  The kernel refreshes
 *      a file's size and mode before a cached write when its attributes
 *      are stale; near full they are never kept (timeout 0, and those of
 *      files open at the change are invalidated), and that GETATTR names
 *      the file handle.  It is the gate: it answers ENOSPC, failing the
 *      write(2) before anything is copied, unless the room covers the
 *      bound plus SPACE_WRITES_UNDER_WAY at the worst cost per byte.
 * So what the kernel may still send always fits, and a writer through
 * the cache stops with up to that much still free (about 11 MiB once the
 * bound is lowered), which direct-I/O writers and the reserve's changes
 * can use.  Near full ends SPACE_LEAVE_MARGIN above where it began (the
 * bdi gets its bound back), so that a volume at the edge does not flap.
 *
 * ROOMY
 *
 * The bound costs speed where nothing is at stake: with 47 MiB a writer
 * that dirties pages faster than the daemon stores them (4 KiB random
 * overwrites: each a request of its own) is paced by the kernel at its
 * first estimate of the mount's bandwidth (measured 2026-12-07: 19,000
 * IOPS, against 100,000-112,000 with a bound of 1 GiB).  So while the
 * volume's room covers SPACE_DIRTY_ROOMY (1 GiB) plus the writes under
 * way, at the worst cost per byte, plus SPACE_LEAVE_MARGIN, the daemon
 * (as root) raises the mount's max_bytes to SPACE_DIRTY_ROOMY, keeping
 * the strict limit: the bound stays one the kernel enforces and this
 * file counts against (turning the strict limit off instead, which
 * leaves only the system's threshold, was as fast for random writes and
 * 15-20% slower for sequential ones).  Under the strict limit the
 * kernel gives a bdi the share of the system's dirty threshold that its
 * writeback completes, and the daemon's own writes to the disk under the
 * store complete as much again, so the mount gets far less than
 * max_bytes: 4 KiB overwrites of a 4 GiB file, 2026-12-07, gave 3,739
 * IOPS, and 13,585 with the share guaranteed (min_bytes) at 1 GiB.  But
 * a guaranteed share also delays writeback (the kernel starts it at half
 * the bdi's limit), and sequential 1 MiB writes were 15% slower with it
 * (eight alternating runs: 204-250 MiB/s against 232-291).  So the share
 * follows the writes: while, over a measure's interval (about a second,
 * SMALL_CHOICE_BYTES at least), writes smaller than a block (scattered
 * pages: each a read-modify-write, which the page cache would rather
 * merge) are most of what the kernel wrote back, min_bytes is set to the
 * raised bound (halved until the kernel takes it, or none); once whole
 * blocks are most, it is given back.  A guaranteed share never raises
 * the bound.  When the room falls below that floor it gives the bdi its
 * ratio back, before near full can begin, and
 * carries what the kernel may still hold from before: the smaller of
 * the raised bound and the system's dirty and in-writeback pages at that
 * moment, less every byte of writeback received since (each was one of
 * them), until it is no more than the bdi's own bound.  Near full counts
 * that carry in its bound, so the guarantee above is unchanged.
 *
 * Limits: one write(2) passes the gate once, so a single call larger
 * than SPACE_WRITES_UNDER_WAY can still meet a full volume at writeback
 * (the error reaches fsync and close, and ops.c cuts the file to what
 * was stored), as can writes through a shared mapping, which do not ask.
 * An lseek(SEEK_END) of a file open for writing refreshes the size too:
 * near full it answers ENOSPC where a write would.
 */
#define _GNU_SOURCE
#include "space.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Cache writes a choice of the guaranteed share needs (see ROOMY). */
#define SMALL_CHOICE_BYTES (4u << 20)

/* ---- the bdi's files ---- */

static int read_text(const char *dir, const char *name, char *buf, size_t cap)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, cap - 1);
    int rc = n < 0 ? -errno : 0;
    close(fd);
    if (rc)
        return rc;
    buf[n] = 0;
    buf[strcspn(buf, "\n")] = 0;
    return 0;
}

static int write_text(const char *dir, const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, text, strlen(text));
    int rc = n < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* The kernel's bound for the mount now (its max_bytes), or 0. */
static uint64_t bdi_bound(const struct space *sp)
{
    char buf[32];
    if (!sp->bdi[0] || read_text(sp->bdi, "max_bytes", buf, sizeof(buf)))
        return 0;
    return strtoull(buf, NULL, 10);
}

/* MOUNTPOINT's device as /proc/self/mountinfo has it ("0:52"), without
 * a stat, which would wait for our own loop. */
static int mount_device(const char *mountpoint, char *dev, size_t cap)
{
    char real[PATH_MAX];
    if (!realpath(mountpoint, real))
        return -errno;
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t len = 0;
    int rc = -ENOENT;
    while (getline(&line, &len, f) > 0) {
        char devno[32], point[PATH_MAX];
        if (sscanf(line, "%*s %*s %31s %*s %4095s", devno, point) != 2)
            continue;
        /* Octal escapes (\040 for a space) compare as they are: a path
         * with them just finds no bdi. */
        if (!strcmp(point, real) && strstr(line, " fuse.snapfs ")) {
            snprintf(dev, cap, "%s", devno);
            rc = 0; /* the last one: ours, mounted over any older */
        }
    }
    free(line);
    fclose(f);
    return rc;
}

/* ---- measuring ---- */

/* What storing BYTES of data may cost at most (blocks, headers). */
static uint64_t cost_of(struct space *sp, uint64_t bytes)
{
    uint64_t bs = sp->vol->st->super.block_size;
    return bytes + (bytes + bs - 1) / bs * 8192;
}

/* What the kernel may still hold from roomy time (see ROOMY). */
static uint64_t carry_left(struct space *sp)
{
    uint64_t carry = __atomic_load_n(&sp->carry, __ATOMIC_RELAXED);
    uint64_t arrived = __atomic_load_n(&sp->carry_arrived, __ATOMIC_RELAXED);
    return arrived < carry ? carry - arrived : 0;
}

/* The bound the kernel keeps for the mount, before any lowering: the
 * raised one while roomy, else the bdi's or what is left from roomy
 * time, whichever is more. */
static uint64_t mode_bound(struct space *sp)
{
    if (sp->roomy)
        return sp->roomy_bound;
    uint64_t left = carry_left(sp);
    return left > sp->bound ? left : sp->bound;
}

/* Dirty and in-writeback pages of the whole system (/proc/meminfo):
 * the mount's cannot be more.  UINT64_MAX if unknown. */
static uint64_t system_dirty(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return UINT64_MAX;
    char line[128];
    uint64_t sum = 0;
    int found = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned long long kb;
        if (sscanf(line, "Dirty: %llu kB", &kb) == 1 ||
            sscanf(line, "Writeback: %llu kB", &kb) == 1 ||
            sscanf(line, "WritebackTmp: %llu kB", &kb) == 1) {
            sum += (uint64_t)kb << 10;
            found++;
        }
    }
    fclose(f);
    return found ? sum : UINT64_MAX;
}

/* What the kernel may hold that we have not seen (see THEORY, 2). */
static uint64_t kernel_may_hold(struct space *sp)
{
    uint64_t held = mode_bound(sp);
    if (sp->lowered) {
        uint64_t arrived = __atomic_load_n(&sp->arrived, __ATOMIC_RELAXED);
        held = arrived < sp->lowered_from ? sp->lowered_from - arrived : 0;
        if (held < SPACE_DIRTY_NEAR_FULL)
            held = SPACE_DIRTY_NEAR_FULL;
    }
    uint64_t system = system_dirty();
    return system < held ? system : held;
}

/* The room a cache write needs: what the kernel may send, and what
 * write(2) calls past the gate may add. */
static uint64_t room_needed(struct space *sp)
{
    return cost_of(sp, kernel_may_hold(sp) + SPACE_WRITES_UNDER_WAY);
}

/* Near full begins below this (one 1 MiB request may cross it). */
static uint64_t near_full_below(struct space *sp)
{
    return cost_of(sp, mode_bound(sp) + SPACE_WRITES_UNDER_WAY) + (1u << 20);
}

/* While roomy, the room must stay above this (see ROOMY). */
static uint64_t roomy_floor(struct space *sp)
{
    return cost_of(sp, (uint64_t)SPACE_DIRTY_ROOMY + SPACE_WRITES_UNDER_WAY) +
           (1u << 20) + SPACE_LEAVE_MARGIN;
}

static uint64_t available(struct space *sp)
{
    uint64_t avail = 0;
    MDB_txn *txn = vol_read_begin(sp->vol);
    if (sfs_space_avail(sp->vol->st, txn, &avail))
        avail = 0; /* unknown: the safe side */
    vol_read_end(sp->vol);
    return avail;
}

/* ---- near full: in and out ---- */

/* The kernel asks before the next cached write to every open file. */
static void invalidate_open_files(struct space *sp)
{
    size_t count;
    uint64_t *ids = node_list_open(sp->vol, &count);
    for (size_t i = 0; ids && i < count; i++)
        fuse_lowlevel_notify_inval_inode(sp->se, ids[i], -1, 0);
    free(ids);
}

/* Set the bdi's bound to BYTES, keeping its ratio in SAVED (CAP bytes)
 * to give it back; -errno if it may not (not root: the kernel keeps it). */
static int set_bdi_bound(struct space *sp, uint64_t bytes, char *saved,
                         size_t cap)
{
    char text[32];
    snprintf(text, sizeof(text), "%llu", (unsigned long long)bytes);
    if (!sp->bdi[0])
        return -ENOENT;
    int rc = read_text(sp->bdi, "max_ratio_fine", saved, cap);
    return rc ? rc : write_text(sp->bdi, "max_bytes", text);
}

/* Guarantee the bdi up to BYTES of the system's dirty threshold
 * (min_bytes), halving what the kernel refuses (the guarantees of all
 * devices may not pass the threshold); what it took, 0 for none. */
static uint64_t guarantee_share(struct space *sp, uint64_t bytes)
{
    for (; bytes >= SPACE_DIRTY_ROOMY / 8; bytes /= 2) {
        char text[32];
        snprintf(text, sizeof(text), "%llu", (unsigned long long)bytes);
        if (!write_text(sp->bdi, "min_bytes", text))
            return bytes;
    }
    return 0;
}

/* Give the guaranteed share back (before any bound is lowered: the
 * kernel refuses a bound below it). */
static void release_share(struct space *sp)
{
    if (sp->roomy_min && !write_text(sp->bdi, "min_bytes", "0"))
        sp->roomy_min = 0;
}

static void lower_bound(struct space *sp)
{
    release_share(sp);
    if (set_bdi_bound(sp, SPACE_DIRTY_NEAR_FULL, sp->saved_ratio,
                      sizeof(sp->saved_ratio)))
        return; /* not root: the kernel keeps its bound */
    sp->lowered_from = mode_bound(sp);
    __atomic_store_n(&sp->arrived, 0, __ATOMIC_RELAXED);
    sp->lowered = true;
}

static void enter(struct space *sp)
{
    lower_bound(sp);
    __atomic_store_n(&sp->near_full, true, __ATOMIC_RELEASE);
    invalidate_open_files(sp);
}

static void leave(struct space *sp)
{
    if (sp->lowered && write_text(sp->bdi, "max_ratio_fine", sp->saved_ratio))
        fprintf(stderr, "snapfs: %s: could not give back the dirty limit "
                        "(max_ratio_fine %s)\n", sp->bdi, sp->saved_ratio);
    sp->lowered = false;
    __atomic_store_n(&sp->near_full, false, __ATOMIC_RELEASE);
}

/* ---- roomy: the bound raised and given back ---- */

static void roomy_enter(struct space *sp, uint64_t avail)
{
    if (set_bdi_bound(sp, SPACE_DIRTY_ROOMY, sp->roomy_saved_ratio,
                      sizeof(sp->roomy_saved_ratio)))
        return; /* not root: the kernel keeps its bound */
    uint64_t now = bdi_bound(sp);
    sp->roomy_bound = now > SPACE_DIRTY_ROOMY ? now : SPACE_DIRTY_ROOMY;
    sp->roomy = true;
    /* the share is chosen on what arrives from now on */
    __atomic_store_n(&sp->small_bytes, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&sp->cache_bytes, 0, __ATOMIC_RELAXED);
    if (sp->started) /* at mount: the mount command's terminal, not a log */
        fprintf(stderr, "snapfs: %s: %.1f GiB free: the mount's dirty "
                        "bound is raised to %u MiB\n", sp->bdi,
                (double)avail / (1u << 30), SPACE_DIRTY_ROOMY >> 20);
}

/* While roomy: guarantee the share while small writes are most of what
 * arrived since the last choice, give it back when they are not (see
 * ROOMY). */
static void choose_share(struct space *sp)
{
    uint64_t all = __atomic_load_n(&sp->cache_bytes, __ATOMIC_RELAXED);
    if (all < SMALL_CHOICE_BYTES)
        return;
    uint64_t small = __atomic_exchange_n(&sp->small_bytes, 0,
                                         __ATOMIC_RELAXED);
    __atomic_sub_fetch(&sp->cache_bytes, all, __ATOMIC_RELAXED);
    bool scattered = 2 * small > all;
    if (scattered && !sp->roomy_min) {
        sp->roomy_min = guarantee_share(sp, SPACE_DIRTY_ROOMY);
        if (sp->roomy_min)
            fprintf(stderr, "snapfs: %s: writes are scattered: %llu MiB of "
                            "the dirty bound is guaranteed\n", sp->bdi,
                    (unsigned long long)(sp->roomy_min >> 20));
    } else if (!scattered && sp->roomy_min) {
        release_share(sp);
        fprintf(stderr, "snapfs: %s: writes are whole blocks: the dirty "
                        "bound's guarantee is given back\n", sp->bdi);
    }
}

static void roomy_leave(struct space *sp, uint64_t avail)
{
    release_share(sp);
    if (write_text(sp->bdi, "max_ratio_fine", sp->roomy_saved_ratio)) {
        fprintf(stderr, "snapfs: %s: could not give back the dirty bound "
                        "(max_ratio_fine %s)\n", sp->bdi,
                sp->roomy_saved_ratio);
        return; /* still roomy: counted so, and tried at each measure */
    }
    uint64_t system = system_dirty();
    __atomic_store_n(&sp->carry_arrived, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&sp->carry, system < sp->roomy_bound
                                     ? system : sp->roomy_bound,
                     __ATOMIC_RELAXED);
    sp->roomy = false;
    uint64_t now = bdi_bound(sp);
    if (now)
        sp->bound = now; /* the kernel's own again */
    fprintf(stderr, "snapfs: %s: %.1f GiB free: the mount's dirty bound "
                    "is the kernel's again\n", sp->bdi,
            (double)avail / (1u << 30));
}

/* Raise the bound or give it back as the room allows (see ROOMY). */
static void roomy_check(struct space *sp, uint64_t avail)
{
    if (!carry_left(sp))
        __atomic_store_n(&sp->carry, 0, __ATOMIC_RELAXED);
    if (!sp->bdi[0])
        return;
    if (sp->roomy) {
        uint64_t now = bdi_bound(sp);
        if (now > sp->roomy_bound)
            sp->roomy_bound = now; /* the system's threshold grew */
    }
    uint64_t floor = roomy_floor(sp);
    if (sp->roomy && avail >= floor)
        choose_share(sp);
    if (sp->roomy && avail < floor)
        roomy_leave(sp, avail);
    else if (!sp->roomy &&
             !__atomic_load_n(&sp->near_full, __ATOMIC_ACQUIRE) &&
             avail >= floor + SPACE_LEAVE_MARGIN)
        roomy_enter(sp, avail);
}

/* Measure the room, change mode if it crossed a threshold, and set how
 * much may be written before the next measure.  Returns the room; with
 * NEEDED, also what a cached write needs now (0 when not near full). */
static uint64_t measure(struct space *sp, uint64_t *needed)
{
    pthread_mutex_lock(&sp->lock);
    uint64_t now = sp->lowered || sp->roomy ? 0 : bdi_bound(sp);
    if (now > sp->bound)
        sp->bound = now; /* the system's dirty threshold grew */
    uint64_t avail = available(sp);
    roomy_check(sp, avail);
    uint64_t below = near_full_below(sp);
    bool near = __atomic_load_n(&sp->near_full, __ATOMIC_ACQUIRE);
    if (!near && avail < below)
        enter(sp);
    else if (near && avail >= below + SPACE_LEAVE_MARGIN)
        leave(sp);
    near = __atomic_load_n(&sp->near_full, __ATOMIC_ACQUIRE);
    uint64_t floor = sp->roomy ? roomy_floor(sp) : below;
    int64_t room = near ? 0 : (int64_t)(avail - floor);
    __atomic_store_n(&sp->room, room, __ATOMIC_RELAXED);
    __atomic_store_n(&sp->measured_ms, vol_now_ms(), __ATOMIC_RELAXED);
    if (needed)
        *needed = near ? room_needed(sp) : 0;
    pthread_mutex_unlock(&sp->lock);
    return avail;
}

/* ---- the hooks ---- */

void space_start(struct space *sp, struct vol *v, struct fuse_session *se,
                 const char *mountpoint, bool writeback)
{
    memset(sp, 0, sizeof(*sp));
    pthread_mutex_init(&sp->lock, NULL);
    sp->vol = v;
    sp->se = se;
    sp->enabled = writeback;
    if (!writeback)
        return;
    char dev[32];
    if (!mount_device(mountpoint, dev, sizeof(dev)))
        snprintf(sp->bdi, sizeof(sp->bdi), "/sys/class/bdi/%s", dev);
    sp->bound = bdi_bound(sp);
    if (!sp->bound)
        sp->bound = SPACE_DIRTY_UNKNOWN;
    measure(sp, NULL);
    sp->started = true;
}

void space_stop(struct space *sp)
{
    pthread_mutex_lock(&sp->lock);
    if (sp->lowered)
        leave(sp);
    if (sp->roomy) {
        release_share(sp);
        write_text(sp->bdi, "max_ratio_fine", sp->roomy_saved_ratio);
    }
    pthread_mutex_unlock(&sp->lock);
    pthread_mutex_destroy(&sp->lock);
}

/* Count USED bytes against the room; measure when it ran out (always,
 * near full) or a while passed.  The cost while there is room: two
 * atomic operations and a clock read. */
static void spend(struct space *sp, uint64_t used)
{
    int64_t left = __atomic_sub_fetch(&sp->room, (int64_t)used,
                                      __ATOMIC_RELAXED);
    uint64_t age = vol_now_ms() -
                   __atomic_load_n(&sp->measured_ms, __ATOMIC_RELAXED);
    if (left <= 0 || age >= SPACE_MEASURE_MS)
        measure(sp, NULL);
}

void space_wrote(struct space *sp, size_t bytes, bool cache_write)
{
    if (!sp->enabled)
        return;
    if (cache_write && sp->lowered)
        __atomic_add_fetch(&sp->arrived, bytes, __ATOMIC_RELAXED);
    if (cache_write && __atomic_load_n(&sp->carry, __ATOMIC_RELAXED))
        __atomic_add_fetch(&sp->carry_arrived, bytes, __ATOMIC_RELAXED);
    if (cache_write) {
        __atomic_add_fetch(&sp->cache_bytes, bytes, __ATOMIC_RELAXED);
        if (bytes < sp->vol->st->super.block_size)
            __atomic_add_fetch(&sp->small_bytes, bytes, __ATOMIC_RELAXED);
    }
    /* Each write may also reserve its two partial blocks (wcache.c). */
    spend(sp, cost_of(sp, bytes) + 2 * sfs_block_cost(sp->vol->st));
}

bool space_direct_open(struct space *sp, int flags)
{
    if (!sp->enabled || (flags & O_ACCMODE) != O_WRONLY)
        return false;
    spend(sp, 0); /* near full, or freed space ending it: measured */
    return __atomic_load_n(&sp->near_full, __ATOMIC_ACQUIRE);
}

int space_gate(struct space *sp, uint64_t *need)
{
    if (!sp->enabled || !__atomic_load_n(&sp->near_full, __ATOMIC_ACQUIRE))
        return 0;
    uint64_t avail = measure(sp, need);
    return avail >= *need ? 0 : -ENOSPC; /* need 0: it just ended */
}

double space_attr_timeout(struct space *sp, mode_t mode, double normal)
{
    bool near = sp->enabled &&
                __atomic_load_n(&sp->near_full, __ATOMIC_ACQUIRE);
    return near && S_ISREG(mode) ? 0.0 : normal;
}
