/*
 * zlevel.h - the zstd level the daemon compresses new blocks at, chosen
 * by measured throughput (theory in zlevel.c).
 */
#ifndef SNAPFS_ZLEVEL_H
#define SNAPFS_ZLEVEL_H

#include <stdint.h>

/* The level to compress at now, for a volume made with CONFIGURED. */
int zlevel_now(int configured);
/* BYTES were compressed (or found incompressible) in NS nanoseconds. */
void zlevel_measured(int configured, uint64_t bytes, uint64_t ns);

#endif
