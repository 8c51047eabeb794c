/*
 * zlevel.c - the zstd level the daemon compresses new blocks at, chosen
 * by measured throughput.
 *
 * THEORY
 *
 * Compression is the dearest step of writing compressible data: at the
 * volume's level (1 by default) zstd takes several times as long per byte
 * as SHA-256 with SHA-NI, so a sequential write of text or logs is bound
 * by it, all the more on a machine whose cores are shared.  zstd's fast
 * levels (-1 to -5) compress text nearly twice as fast for a ratio about
 * a fifth lower (on the benchmark's text, 2.8x at level 1, 2.2x at -5),
 * and every level decodes the same, so the level is the daemon's choice
 * at each block, never part of the stored format.
 *
 * Every compression step of a write (ops.c, apply_plan) reports the bytes
 * it was given and the time it took; a moving average of that throughput
 * (each measure weighs 1/8) is checked every SAMPLES measures:
 *   - under TARGET_MBS (the pace the rest of the write path keeps on one
 *     core), one level faster, down to LEVEL_MIN;
 *   - over three times that, one level back toward the volume's own.
 * Incompressible data costs only the sample test (blocks.c), measures
 * fast, and so brings the level back up.  The state is three words,
 * read and written with relaxed atomics: a lost update only delays a
 * step.  Level 0 means zstd's default (3), so the steps skip it.
 */
#include "zlevel.h"

#define TARGET_MBS 400
#define LEVEL_MIN (-5)
#define SAMPLES 32

static int level_now;       /* 0: not chosen yet, the volume's */
static uint64_t rate_mbs;   /* moving average, bytes per microsecond */
static uint32_t measures;

int zlevel_now(int configured)
{
    int l = __atomic_load_n(&level_now, __ATOMIC_RELAXED);
    return l ? l : configured;
}

static int faster(int l) { return l == 1 ? -1 : l - 1; }
static int slower(int l) { return l == -1 ? 1 : l + 1; }

void zlevel_measured(int configured, uint64_t bytes, uint64_t ns)
{
    uint64_t rate = bytes * 1000 / (ns ? ns : 1);
    uint64_t avg = __atomic_load_n(&rate_mbs, __ATOMIC_RELAXED);
    avg = avg ? (avg * 7 + rate) / 8 : rate;
    __atomic_store_n(&rate_mbs, avg, __ATOMIC_RELAXED);
    if (__atomic_add_fetch(&measures, 1, __ATOMIC_RELAXED) % SAMPLES)
        return;
    int l = zlevel_now(configured);
    if (avg < TARGET_MBS && l > LEVEL_MIN)
        l = faster(l);
    else if (avg > 3 * TARGET_MBS && l < configured)
        l = slower(l);
    __atomic_store_n(&level_now, l, __ATOMIC_RELAXED);
}
