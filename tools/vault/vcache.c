/*
 * vcache.c - the vault mount's on-disk cache: blocks read from the vault
 * (kept sealed, as the vault stores them: a cache left on a disk reveals
 * no more than the vault) and the snapshots' metadata tables, together
 * under one bound in bytes, the least recently used evicted first.
 *
 * Guarantees: the files of the cache never exceed the bound, except by
 * the one entry pinned (the metadata table of the snapshot being read,
 * which cannot be read without it); a block is written under a temporary
 * name and renamed, so a killed mount leaves whole blocks or none (and a
 * damaged one fails to open: browse.c drops it and fetches it again);
 * one mount at a time uses a directory (its lock file, MARKER, which also
 * says the directory is a cache: a directory holding other things is
 * refused, and nothing but the cache's own files is ever removed from
 * it).  Memory: ~100 bytes
 * an entry.  Not thread-safe: the mount serves one request at a time.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "browse.h"

#define BUCKETS 65536u
#define MARKER ".snapfs-vault-cache"

struct ventry {
    uint8_t id[VC_ID];
    uint64_t bytes;
    vcache_evict_fn evict;     /* NULL: a block file */
    void *owner;
    struct ventry *prev, *next; /* LRU: head most recent */
    struct ventry *hnext;
    int64_t mtime;             /* kept blocks, at open: their order */
};

struct vcache {
    char *dir;
    int lock_fd;
    uint64_t bound, bytes, blocks;
    struct ventry *head, *tail;
    struct ventry *table[BUCKETS];
    const void *pinned;
};

static unsigned bucket(const uint8_t id[VC_ID])
{
    return ((unsigned)id[0] << 8 | id[1]) % BUCKETS;
}

static struct ventry *find(struct vcache *c, const uint8_t id[VC_ID])
{
    for (struct ventry *e = c->table[bucket(id)]; e; e = e->hnext)
        if (!memcmp(e->id, id, VC_ID))
            return e;
    return NULL;
}

static void lru_unlink(struct vcache *c, struct ventry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_front(struct vcache *c, struct ventry *e)
{
    e->next = c->head;
    e->prev = NULL;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static void block_path(const struct vcache *c, const uint8_t id[VC_ID],
                       char *out, size_t cap)
{
    char hex[VC_HEX];
    vc_hex(id, VC_ID, hex);
    snprintf(out, cap, "%s/blocks/%s", c->dir, hex);
}

/* Take E out of the cache: its file removed (a block) or its owner told. */
static void remove_entry(struct vcache *c, struct ventry *e, bool tell)
{
    struct ventry **p = &c->table[bucket(e->id)];
    while (*p != e)
        p = &(*p)->hnext;
    *p = e->hnext;
    lru_unlink(c, e);
    c->bytes -= e->bytes;
    if (!e->evict) {
        char path[PATH_MAX];
        block_path(c, e->id, path, sizeof(path));
        unlink(path);
        c->blocks--;
    } else if (tell) {
        e->evict(e->owner);
    }
    free(e);
}

/* Evict from the least recently used end until NEED more bytes fit;
 * never KEEP nor the pinned entry.  false: they cannot fit. */
static bool make_room(struct vcache *c, uint64_t need, const struct ventry *keep)
{
    struct ventry *e = c->tail;
    while (e && c->bytes + need > c->bound) {
        struct ventry *prev = e->prev;
        if (e != keep && (!e->owner || e->owner != c->pinned))
            remove_entry(c, e, true);
        e = prev;
    }
    return c->bytes + need <= c->bound;
}

static struct ventry *add_entry(struct vcache *c, const uint8_t id[VC_ID],
                                uint64_t bytes)
{
    struct ventry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    memcpy(e->id, id, VC_ID);
    e->bytes = bytes;
    unsigned b = bucket(id);
    e->hnext = c->table[b];
    c->table[b] = e;
    lru_front(c, e);
    c->bytes += bytes;
    return e;
}

/* ---- opening: the lock, blocks a kept cache holds ---- */

static int make_dir(const char *path)
{
    return mkdir(path, 0700) && errno != EEXIST ? -errno : 0;
}

static int remove_one(const char *path, const struct stat *sb, int flag,
                      struct FTW *ftw)
{
    (void)sb;
    if (ftw->level == 0)
        return 0;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Everything under DIR, DIR itself kept. */
static void empty_dir(const char *dir)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* DIR is empty, or a cache (it has MARKER): else -ENOTEMPTY. */
static int check_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    bool other = false, marked = false;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, MARKER))
            marked = true;
        else if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            other = true;
    }
    closedir(d);
    return other && !marked ? -ENOTEMPTY : 0;
}

static int by_mtime(const void *a, const void *b)
{
    const struct ventry *x = *(struct ventry *const *)a,
                        *y = *(struct ventry *const *)b;
    return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* The blocks a kept cache holds, oldest first into the LRU. */
static int take_up_blocks(struct vcache *c)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/blocks", c->dir);
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    struct ventry **found = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(d))) {
        uint8_t id[VC_ID];
        struct stat sb;
        if (de->d_name[0] == '.')
            continue;
        if (strlen(de->d_name) != 2 * VC_ID ||
            vc_unhex(de->d_name, id, VC_ID) ||
            fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) ||
            !S_ISREG(sb.st_mode)) {
            unlinkat(dirfd(d), de->d_name, 0); /* a partial write */
            continue;
        }
        struct ventry *e = calloc(1, sizeof(*e));
        if (!e || vault_grow(&found, &cap, n, sizeof(*found))) {
            free(e);
            rc = -ENOMEM;
            break;
        }
        memcpy(e->id, id, VC_ID);
        e->bytes = (uint64_t)sb.st_size;
        e->mtime = sb.st_mtim.tv_sec;
        found[n++] = e;
    }
    closedir(d);
    if (n)
        qsort(found, n, sizeof(*found), by_mtime);
    for (size_t i = 0; i < n; i++) {
        struct ventry *e = found[i];
        if (rc || find(c, e->id)) {
            free(e);
            continue;
        }
        unsigned b = bucket(e->id);
        e->hnext = c->table[b];
        c->table[b] = e;
        lru_front(c, e);
        c->bytes += e->bytes;
        c->blocks++;
    }
    free(found);
    make_room(c, 0, NULL);
    return rc;
}

int vcache_open(const char *dir, uint64_t bound, struct vcache **out)
{
    struct vcache *c = calloc(1, sizeof(*c));
    if (!c || !(c->dir = strdup(dir))) {
        free(c);
        return -ENOMEM;
    }
    c->bound = bound;
    c->lock_fd = -1;
    char path[PATH_MAX];
    int rc = make_dir(dir);
    if (!rc) {
        rc = check_dir(dir);
        snprintf(path, sizeof(path), "%s/" MARKER, dir);
    }
    if (!rc) {
        c->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (c->lock_fd < 0)
            rc = -errno;
        else if (flock(c->lock_fd, LOCK_EX | LOCK_NB))
            rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
    }
    if (!rc) {
        snprintf(path, sizeof(path), "%s/meta", dir);
        rc = make_dir(path);
        empty_dir(path); /* tables of a killed mount */
    }
    if (!rc) {
        snprintf(path, sizeof(path), "%s/blocks", dir);
        rc = make_dir(path);
    }
    if (!rc)
        rc = take_up_blocks(c);
    if (rc) {
        if (c->lock_fd >= 0)
            close(c->lock_fd);
        c->lock_fd = -1;
        vcache_close(c, true, false);
        return rc;
    }
    *out = c;
    return 0;
}

void vcache_close(struct vcache *c, bool keep_blocks, bool remove_dir)
{
    if (!c)
        return;
    while (c->head) {
        struct ventry *e = c->head;
        if (!e->evict && keep_blocks) {
            struct ventry **p = &c->table[bucket(e->id)];
            while (*p != e)
                p = &(*p)->hnext;
            *p = e->hnext;
            lru_unlink(c, e);
            free(e);
        } else {
            remove_entry(c, e, true);
        }
    }
    if (c->lock_fd >= 0) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/meta", c->dir);
        rmdir(path);
        if (!keep_blocks) {
            snprintf(path, sizeof(path), "%s/blocks", c->dir);
            empty_dir(path);
            rmdir(path);
            snprintf(path, sizeof(path), "%s/" MARKER, c->dir);
            unlink(path);
            if (remove_dir)
                rmdir(c->dir);
        }
        close(c->lock_fd);
    }
    free(c->dir);
    free(c);
}

/* ---- blocks ---- */

int vcache_get(struct vcache *c, const uint8_t id[VC_ID], uint8_t **buf,
               size_t *len)
{
    struct ventry *e = find(c, id);
    if (!e || e->evict)
        return -ENOENT;
    char path[PATH_MAX];
    block_path(c, id, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint8_t *b = e->bytes ? malloc(e->bytes) : NULL;
    ssize_t got = fd >= 0 && b ? pread(fd, b, e->bytes, 0) : -1;
    if (fd >= 0)
        close(fd);
    if (got < 0 || (uint64_t)got != e->bytes) {
        free(b);
        remove_entry(c, e, false);
        return -ENOENT;
    }
    lru_unlink(c, e);
    lru_front(c, e);
    *buf = b;
    *len = e->bytes;
    return 0;
}

void vcache_put(struct vcache *c, const uint8_t id[VC_ID], const void *buf,
                size_t len)
{
    if (len > c->bound || find(c, id) || !make_room(c, len, NULL))
        return; /* one larger than the bound evicts nothing */
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    block_path(c, id, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    bool ok = write(fd, buf, len) == (ssize_t)len;
    ok &= !close(fd);
    if (!ok || rename(tmp, path) || !add_entry(c, id, len)) {
        unlink(tmp);
        unlink(path);
        return;
    }
    c->blocks++;
}

void vcache_drop(struct vcache *c, const uint8_t id[VC_ID])
{
    struct ventry *e = find(c, id);
    if (e && !e->evict)
        remove_entry(c, e, false);
}

/* ---- metadata tables ---- */

void vcache_meta_dir(const struct vcache *c, const uint8_t id[VC_ID],
                     char *out, size_t cap)
{
    char hex[VC_HEX];
    vc_hex(id, VC_ID, hex);
    snprintf(out, cap, "%s/meta/%s", c->dir, hex);
}

int vcache_charge(struct vcache *c, const uint8_t id[VC_ID], uint64_t bytes,
                  vcache_evict_fn evict, void *owner)
{
    struct ventry *e = find(c, id);
    if (e)
        remove_entry(c, e, false);
    e = add_entry(c, id, bytes);
    if (!e)
        return -ENOMEM;
    e->evict = evict;
    e->owner = owner;
    make_room(c, 0, e);
    return 0;
}

void vcache_touch(struct vcache *c, const uint8_t id[VC_ID])
{
    struct ventry *e = find(c, id);
    if (e) {
        lru_unlink(c, e);
        lru_front(c, e);
    }
}

void vcache_forget(struct vcache *c, const uint8_t id[VC_ID])
{
    struct ventry *e = find(c, id);
    if (e && e->evict)
        remove_entry(c, e, false);
}

void vcache_pin(struct vcache *c, const void *owner)
{
    c->pinned = owner;
}

uint64_t vcache_bytes(const struct vcache *c)
{
    return c->bytes;
}

uint64_t vcache_blocks(const struct vcache *c)
{
    return c->blocks;
}
