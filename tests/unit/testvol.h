/*
 * testvol.h - make and remove a scratch volume for a unit test.
 */
#ifndef SNAPFS_TESTVOL_H
#define SNAPFS_TESTVOL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* A new empty regular file in the root (inode only), in TXN. */
static inline uint64_t testvol_new_file(struct sfs_store *st, MDB_txn *txn)
{
    struct sfs_inode ni;
    memset(&ni, 0, sizeof(ni));
    ni.mode = S_IFREG | 0644;
    ni.nlink = 1;
    ni.parent = SFS_ROOT_INO;
    if (sfs_inode_create_w(st, txn, &ni)) {
        fprintf(stderr, "testvol: cannot create a file\n");
        exit(1);
    }
    return ni.ino;
}

/* N pseudo-random bytes from SEED (incompressible). */
static inline void testvol_fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (uint8_t)(seed >> 56);
    }
}

#endif
