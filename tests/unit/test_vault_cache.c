/*
 * test_vault_cache.c - the vault mount's cache (vcache.c): blocks kept
 * under the bound, the least recently used going first (a read counts as
 * a use); a metadata table counted with them, its owner told when it is
 * evicted, never while pinned; a block larger than the bound not kept;
 * one mount per directory; blocks kept at close taken up again by the
 * next open (a partial write removed), oldest first out; the directory
 * emptied, or removed, at close; a directory holding other files is
 * refused.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "../../tools/vault/browse.h"

#define BOUND 10000

static void id_of(int n, uint8_t id[VC_ID])
{
    memset(id, 0, VC_ID);
    id[0] = (uint8_t)(n * 37);
    id[1] = (uint8_t)n;
    id[31] = (uint8_t)n;
}

static void put(struct vcache *c, int n, size_t len)
{
    uint8_t id[VC_ID], *buf = malloc(len);
    id_of(n, id);
    memset(buf, n, len);
    vcache_put(c, id, buf, len);
    free(buf);
}

/* 1 if block N is cached with its bytes, 0 if not. */
static int has(struct vcache *c, int n)
{
    uint8_t id[VC_ID], *buf;
    size_t len;
    id_of(n, id);
    if (vcache_get(c, id, &buf, &len))
        return 0;
    int ok = len > 0 && buf[0] == (uint8_t)n && buf[len - 1] == (uint8_t)n;
    free(buf);
    CHECK(ok, "block %d reads back as written", n);
    return 1;
}

static int files_in(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static int evicted;
static void on_evict(void *owner)
{
    evicted += *(int *)owner;
}

static void test_lru(const char *dir)
{
    struct vcache *c, *other;
    char blocks[512];
    snprintf(blocks, sizeof(blocks), "%s/blocks", dir);
    CHECK_RC(vcache_open(dir, BOUND, &c));
    CHECK(vcache_open(dir, BOUND, &other) == -EBUSY,
          "a second open of the directory is refused");
    for (int n = 1; n <= 3; n++)
        put(c, n, 3000);
    CHECK(vcache_bytes(c) == 9000 && vcache_blocks(c) == 3, "three blocks");
    CHECK(has(c, 1), "block 1 is there (and now used last)");
    put(c, 4, 3000);
    CHECK(!has(c, 2) && has(c, 1) && has(c, 3) && has(c, 4),
          "the least recently used (2) went for the fourth");
    CHECK(vcache_bytes(c) <= BOUND && files_in(blocks) == 3,
          "the files stay under the bound (%d files)", files_in(blocks));
    put(c, 5, BOUND + 1);
    CHECK(!has(c, 5) && vcache_blocks(c) == 3,
          "a block larger than the bound is not kept");

    /* a table of 4000 bytes, pinned: blocks go around it */
    uint8_t tid[VC_ID];
    int owner = 1;
    id_of(100, tid);
    CHECK_RC(vcache_charge(c, tid, 4000, on_evict, &owner));
    vcache_pin(c, &owner);
    CHECK(vcache_bytes(c) <= BOUND && !evicted,
          "charging the table evicted blocks, not the table");
    put(c, 6, 3000);
    put(c, 7, 3000);
    CHECK(!evicted && has(c, 6) && vcache_bytes(c) <= BOUND,
          "the pinned table stays while blocks come and go");
    vcache_pin(c, NULL);
    put(c, 8, 3000);
    put(c, 9, 3000);
    CHECK(evicted == 1, "unpinned, the table was evicted in its turn");
    CHECK(vcache_bytes(c) <= BOUND, "under the bound");
    uint8_t id[VC_ID];
    id_of(9, id);
    vcache_drop(c, id);
    CHECK(!has(c, 9), "a dropped block is gone");
    vcache_close(c, true, false);
    CHECK(files_in(blocks) >= 1, "blocks kept at close");
}

static void test_kept(const char *dir)
{
    char path[600], blocks[512];
    snprintf(blocks, sizeof(blocks), "%s/blocks", dir);
    snprintf(path, sizeof(path), "%s/partial.tmp", blocks);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0 && write(fd, "x", 1) == 1, "a partial write left");
    close(fd);
    int before = files_in(blocks) - 1;
    struct vcache *c;
    CHECK_RC(vcache_open(dir, BOUND, &c));
    CHECK(access(path, F_OK) != 0, "the partial write is removed at open");
    CHECK((int)vcache_blocks(c) == before && has(c, 8),
          "the kept blocks are taken up again (%d)", (int)vcache_blocks(c));
    vcache_close(c, false, true);
    CHECK(access(dir, F_OK) != 0, "closed without keeping: the directory "
          "is removed");
}

int main(void)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/snapfs-unit-XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror(dir);
        return 1;
    }
    strcat(dir, "/cache");
    test_lru(dir);
    test_kept(dir);
    /* a directory holding something else is no cache */
    struct vcache *c;
    char file[300];
    CHECK(!mkdir(dir, 0700), "%s made", dir);
    snprintf(file, sizeof(file), "%s/mine", dir);
    close(open(file, O_WRONLY | O_CREAT, 0600));
    CHECK(vcache_open(dir, BOUND, &c) == -ENOTEMPTY, "a directory holding "
          "other files is refused");
    CHECK(access(file, F_OK) == 0, "and its files are left alone");
    unlink(file);
    rmdir(dir);
    *strrchr(dir, '/') = 0;
    rmdir(dir);
    return test_done("test_vault_cache");
}
