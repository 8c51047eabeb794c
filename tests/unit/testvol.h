/*
 * testvol.h - make and remove a scratch volume for a unit test.
 */
#ifndef SNAPFS_TESTVOL_H
#define SNAPFS_TESTVOL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store.h"

static inline struct sfs_store *testvol_create(char *dir, size_t cap,
                                               uint32_t block_size, int codec)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, cap, "%s/snapfs-unit-XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    struct sfs_mkfs_opts o = { .volume_size = 256u << 20,
                               .block_size = block_size, .codec = codec };
    int rc = sfs_mkfs(dir, &o);
    struct sfs_store *st = NULL;
    if (!rc)
        rc = sfs_open(dir, SFS_OPEN_EXCLUSIVE, &st);
    if (rc) {
        fprintf(stderr, "testvol: %s: %s\n", dir, strerror(-rc));
        exit(1);
    }
    return st;
}

static inline void testvol_remove(struct sfs_store *st, const char *dir)
{
    sfs_close(st);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "testvol: could not remove %s\n", dir);
}

#endif
