/*
 * vmount.h - `snapfs vault mount`: every snapshot of a vault as a
 * read-only FUSE filesystem (vmount.c), for the command layer.
 */
#ifndef SNAPFS_VAULT_VMOUNT_H
#define SNAPFS_VAULT_VMOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vault.h"

#define VAULT_MOUNT_CACHE_DEFAULT (256ull << 20)
#define VAULT_MOUNT_CACHE_MIN (1ull << 20)

struct vault_mount_opts {
    const char *cache_dir;  /* NULL: a new directory in $TMPDIR (or /tmp) */
    uint64_t cache_size;    /* bytes of cache files at most */
    bool keep_cache;        /* keep the cached blocks at unmount */
    bool foreground;        /* else the mount goes on in the background */
};

/*
 * vault_mount - serve every snapshot of V (opened with its keys) read-only
 * at MOUNTPOINT until it is unmounted (fusermount3 -u) or the process is
 * told to stop (SIGINT, SIGTERM, SIGHUP); then the cache is removed (its
 * blocks kept with KEEP_CACHE).  Returns when the mount has ended; in the
 * background the calling process exits (0) once the mount is up, and a
 * child of it serves and returns at the end.  What stops it
 * from starting goes to WHY (CAP bytes) with a negative errno: -EBUSY
 * (another mount uses the cache directory), the vault's errors (its
 * index or manifests), -EIO (the mount itself failed).  Once mounted,
 * errors answered to readers as EIO and the figures at unmount go to
 * standard error in the foreground, else to syslog.
 */
int vault_mount(struct vault *v, const char *mountpoint,
                const struct vault_mount_opts *o, char *why, size_t cap);

#endif
