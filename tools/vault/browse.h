/*
 * browse.h - the vault's snapshots as one read-only tree (browse.c) over
 * a bounded on-disk cache (vcache.c): what `snapfs vault mount` serves
 * (vmount.c, the FUSE front, is the only file that knows FUSE).
 *
 * Node ids: 1 is the top; a volume's directory is 2 + its index; an
 * object of a snapshot is (1 + the snapshot's index) << SFS_INO_BITS | its
 * object id, the snapshot's own directory being its root (object 1).  So
 * hard links of a snapshot share a number, and no two snapshots do.
 * Every function returns 0 (or a count) or a negative errno.
 */
#ifndef SNAPFS_VAULT_BROWSE_H
#define SNAPFS_VAULT_BROWSE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "repo.h"

/* ---- the cache (vcache.c) ---- */

/* An entry's owner is told when its entry is evicted (a metadata table:
 * it closes it); blocks have none. */
typedef void (*vcache_evict_fn)(void *owner);

struct vcache;
/* The cache in directory DIR (made if missing: DIR/blocks, DIR/meta),
 * at most BOUND bytes of files; blocks a kept cache holds are taken up
 * again (oldest first out).  -EBUSY: another mount uses DIR;
 * -ENOTEMPTY: DIR holds other things than a cache. */
int vcache_open(const char *dir, uint64_t bound, struct vcache **out);
/* Remove what the cache holds (its blocks too unless KEEP_BLOCKS; DIR
 * itself when REMOVE_DIR and nothing is kept) and free it. */
void vcache_close(struct vcache *c, bool keep_blocks, bool remove_dir);
/* The sealed blob ID (*BUF malloc'd): 0, or -ENOENT. */
int vcache_get(struct vcache *c, const uint8_t id[VC_ID], uint8_t **buf,
               size_t *len);
/* Keep the sealed blob ID (evicting the least recently used first);
 * quietly nothing if it does not fit or cannot be written. */
void vcache_put(struct vcache *c, const uint8_t id[VC_ID], const void *buf,
                size_t len);
/* Forget the blob ID (damaged in the cache). */
void vcache_drop(struct vcache *c, const uint8_t id[VC_ID]);
/* A directory for a metadata table, DIR/meta/HEX (PATH_MAX bytes). */
void vcache_meta_dir(const struct vcache *c, const uint8_t id[VC_ID],
                     char *out, size_t cap);
/* Count BYTES of a metadata table of OWNER (keyed ID) in the cache,
 * evicting others when over the bound; EVICT closes it when its turn
 * comes.  vcache_touch marks it used; vcache_forget removes the entry
 * without calling EVICT.  PIN: the one entry never evicted (NULL: none). */
int vcache_charge(struct vcache *c, const uint8_t id[VC_ID], uint64_t bytes,
                  vcache_evict_fn evict, void *owner);
void vcache_touch(struct vcache *c, const uint8_t id[VC_ID]);
void vcache_forget(struct vcache *c, const uint8_t id[VC_ID]);
void vcache_pin(struct vcache *c, const void *owner);
/* Bytes and block files held now. */
uint64_t vcache_bytes(const struct vcache *c);
uint64_t vcache_blocks(const struct vcache *c);

/* ---- the tree (browse.c) ---- */

#define VB_TOP 1

struct vbrowse;
struct vb_stats {
    uint64_t snapshots;   /* snapshots whose metadata was replayed */
    uint64_t blocks;      /* blocks fetched from the vault */
    uint64_t cache_hits;  /* blocks read from the cache */
    uint64_t fetched;     /* bytes read from the object store */
    uint64_t errors;      /* reads answered with EIO */
};
typedef void (*vb_log_fn)(const char *msg);

/* The tree of every snapshot of V (its index loaded here) over cache C;
 * LOG hears every error answered as EIO (why, naming the file). */
int vb_open(struct vault *v, struct vcache *c, vb_log_fn log,
            struct vbrowse **out);
void vb_close(struct vbrowse *b);
void vb_stats(const struct vbrowse *b, struct vb_stats *out);

/* Attributes of node NODE; *STABLE: they never change (else they may,
 * once the snapshot's metadata is in). */
int vb_getattr(struct vbrowse *b, uint64_t node, struct stat *st,
               bool *stable);
/* NAME in directory PARENT: its attributes (st_ino is its node). */
int vb_lookup(struct vbrowse *b, uint64_t parent, const char *name,
              struct stat *st, bool *stable);
/* Make sure directory NODE can be listed (a snapshot's metadata is
 * replayed when its directory is first entered). */
int vb_opendir(struct vbrowse *b, uint64_t node);
/* Entries of NODE after position OFF ("." 1, ".." 2, then its own),
 * each to CB with the position of the next; CB returns 1 when full. */
typedef int (*vb_dirent_fn)(void *arg, const char *name, uint64_t node,
                            mode_t type, uint64_t next);
int vb_readdir(struct vbrowse *b, uint64_t node, uint64_t off,
               vb_dirent_fn cb, void *arg);
/* Up to LEN bytes at OFF of regular file NODE into BUF: bytes read. */
int vb_read(struct vbrowse *b, uint64_t node, uint64_t off, size_t len,
            void *buf);
/* A symlink's target into BUF (CAP > SFS_SYMLINK_MAX). */
int vb_readlink(struct vbrowse *b, uint64_t node, char *buf, size_t cap);
/* As getxattr(2)/listxattr(2): the length (copied when CAP > 0), -ERANGE,
 * -ENODATA. */
int vb_getxattr(struct vbrowse *b, uint64_t node, const char *name,
                void *buf, size_t cap);
/* trusted.* names only WITH_TRUSTED (the caller is the superuser, as a
 * volume's own mount shows them). */
int vb_listxattr(struct vbrowse *b, uint64_t node, char *buf, size_t cap,
                 bool with_trusted);
/* statfs: the block size of the vault's snapshots (the largest). */
uint32_t vb_block_size(const struct vbrowse *b);

#endif
