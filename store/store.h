/*
 * store.h - the snapfs volume store: one LMDB environment holding every
 * block and every piece of metadata of one volume.
 *
 * Layers, bottom up (each has its own .c file and theory comment):
 *
 *   store.c   the environment, its tables, the superblock and the volume
 *             state (epochs, id counters, space counters); transactions.
 *   vrec.c    versioned records: every record is a version stamped with
 *             the epoch of its birth; a replaced version either dies at
 *             once or moves to history and the deadlist.  Snapshots are
 *             epochs.
 *   blocks.c  content-addressed blocks: SHA-256, zstd, dedup refcounts,
 *             write-once blobs, verification on every read.
 *   fsmodel.c the filesystem over versioned records: inodes, directory
 *             entries, xattrs and file extents.
 *   fsck.c    the structural and content checker.
 *
 * Conventions.  Every function returns 0 (or a count) on success and a
 * negative errno on failure; nothing here prints except on corruption,
 * which is logged through sfs_log_corruption().  Functions that take an
 * MDB_txn use it and never commit or abort it: the caller owns the
 * transaction.  Functions whose name ends in _w need a write transaction.
 *
 * Epochs and views.  The live filesystem writes at st->state.cur_epoch.
 * A *view* is what a read sees: SFS_VIEW_LIVE for the live tree, or the
 * epoch of a snapshot, which shows every version with
 * birth <= epoch < death.
 */
#ifndef SNAPFS_STORE_H
#define SNAPFS_STORE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* On-disk format versions (theory in format.c): mkfs writes
 * SFS_FORMAT_VERSION; this snapfs reads and writes every version from
 * SFS_FORMAT_OLDEST on, and refuses newer ones.  A superblock version
 * with SFS_FORMAT_UPGRADING set is an upgrade to the version in the low
 * bits that has not finished: above every real version, so that every
 * snapfs refuses it. */
#define SFS_FORMAT_VERSION 2
#define SFS_FORMAT_OLDEST 1
#define SFS_FORMAT_UPGRADING 0x80000000u
#define SFS_MAGIC "snapfs-volume\n"

#define SFS_VIEW_LIVE UINT64_MAX

#define SFS_ROOT_INO 1
#define SFS_NAME_MAX 255
#define SFS_XATTR_NAME_MAX 255
#define SFS_XATTR_SIZE_MAX 65536
#define SFS_SYMLINK_MAX 4095
#define SFS_MAX_FILE_SIZE ((uint64_t)1 << 50) /* 1 PiB: EFBIG beyond */

#define SFS_BLOCK_SIZE_DEFAULT 65536
#define SFS_BLOCK_SIZE_MIN 4096
#define SFS_BLOCK_SIZE_MAX (1 << 20)

/* Extent payloads up to this many bytes live inside the extent record
 * (LMDB keeps values under ~2000 bytes inline in the B-tree page). */
#define SFS_INLINE_MAX 1536

enum sfs_codec { SFS_CODEC_NONE = 0, SFS_CODEC_ZSTD = 1 };

/* The superblock: written by mkfs, read-only afterwards. */
struct sfs_super {
    char magic[16];
    uint32_t format_version;
    uint32_t block_size;
    uint32_t codec;       /* enum sfs_codec for new blocks */
    int32_t codec_level;  /* zstd level */
    uint64_t volume_size; /* bytes the volume may hold */
    uint8_t uuid[16];
    int64_t created_sec;
};

/* The volume state: counters that change with every transaction.  Kept in
 * memory by the store handle and written back at commit. */
struct sfs_state {
    uint64_t cur_epoch;      /* epoch the live tree writes at */
    uint64_t newest_snap;    /* epoch of the newest snapshot, 0 if none */
    uint64_t next_ino;       /* next object id; ids are never reused */
    uint64_t next_blob;      /* next blob id; ids are never reused */
    uint64_t next_snap_id;   /* next snapshot id; never reused */
    uint64_t blob_count;     /* distinct stored blocks */
    uint64_t phys_bytes;     /* sum of stored (compressed) blob sizes */
    uint64_t stored_logical; /* sum of logical sizes of stored blobs */
    uint64_t ref_logical;    /* sum of logical sizes over all references */
    uint64_t inline_bytes;   /* bytes kept inline in extent records */
    uint64_t live_inodes;    /* inodes in the live tree */
    /* Appended later: stores made before read these as 0. */
    uint64_t snap_blob_bytes; /* the ledger: bytes of the blobs that only
                               * snapshots refer to (blocks.c) */
    uint64_t flags;          /* SFS_STATE_* */
};

/* sfs_state.flags: the ledger (live references per block, and
 * snap_blob_bytes) is counted.  Stores made before it was kept, or
 * written by a snapfs that did not keep it, have it clear until
 * sfs_ledger_count runs (a daemon does at mount). */
#define SFS_STATE_LEDGER 1

/* A feature of the on-disk format (format.c): a name and what a snapfs
 * that does not know it may do with the store. */
enum sfs_feature_class { SFS_FEAT_COMPAT = 0, SFS_FEAT_RO_COMPAT,
                         SFS_FEAT_INCOMPAT };
#define SFS_FEATURE_NAME_MAX 32
#define SFS_FEATURES_MAX 32
struct sfs_feature {
    char name[SFS_FEATURE_NAME_MAX];
    uint32_t cls; /* enum sfs_feature_class */
};
struct sfs_features {
    size_t n;
    struct sfs_feature f[SFS_FEATURES_MAX];
};

struct sfs_store {
    MDB_env *env;
    MDB_dbi db_meta, db_live, db_hist, db_dead, db_born, db_deadstat;
    MDB_dbi db_blobs, db_dedup, db_snaps, db_orphans;
    struct sfs_super super;
    struct sfs_state state;
    struct sfs_features features; /* as of the open (none in format 1) */
    char *path;
    int lock_fd;         /* flock on STORE/lock, held while open for writing */
    uint64_t map_size;
    bool readonly;
    uint64_t space_reserved; /* sfs_space_reserve (atomic) */
};

/* ---- store.c: environment, transactions ---- */

struct sfs_mkfs_opts {
    uint64_t volume_size; /* 0: size of the filesystem holding the store */
    uint32_t block_size;  /* 0: default */
    int codec;            /* enum sfs_codec */
    int codec_level;
};

/*
 * sfs_mkfs - create a new, empty volume in directory PATH.
 * PATH must not exist or be an empty directory.
 * Returns 0, -EEXIST if PATH already holds a store or is a non-empty
 * directory, -EINVAL on bad options, or an LMDB/system error.
 */
int sfs_mkfs(const char *path, const struct sfs_mkfs_opts *opts);

/* SFS_OPEN_KEEP_READERS: leave the LMDB reader slots of dead processes
 * as they are (an open clears them otherwise); for `snapfs health`,
 * which reports them. */
/* SFS_OPEN_UPGRADE: open a store whose upgrade did not finish (only
 * `snapfs upgrade` does; format.c). */
enum { SFS_OPEN_RDONLY = 1, SFS_OPEN_EXCLUSIVE = 2, SFS_OPEN_KEEP_READERS = 4,
       SFS_OPEN_UPGRADE = 8 };

/*
 * sfs_open - open the store in PATH.
 * SFS_OPEN_EXCLUSIVE takes the store's lock file (a daemon or an offline
 * writer); it fails with -EBUSY if another process holds it.
 * Errors: -ENOENT (no such directory), -ENOTDIR, -EMEDIUMTYPE (not a
 * store), -EPROTONOSUPPORT (a format this snapfs must not open: a newer
 * version, an unknown feature, an unfinished upgrade; sfs_open_why says
 * which, naming both versions), -EBUSY, -EIO, or a negative LMDB-derived
 * errno.
 */
int sfs_open(const char *path, int flags, struct sfs_store **out);
void sfs_close(struct sfs_store *st);

/* ---- format.c: format versions, features, upgrades ---- */

/* Why this thread's last sfs_open failed with -EPROTONOSUPPORT, one line
 * without the store's path ("" otherwise). */
const char *sfs_open_why(void);
/* "compat", "ro-compat", "incompat"; NULL for another value. */
const char *sfs_feature_class_name(uint32_t cls);
bool sfs_feature_known(const char *name);
/* The features a store of SFS_FORMAT_VERSION has (what mkfs writes). */
void sfs_features_current(struct sfs_features *out);
/* The store's features record: none for format 1; -EIO if a format-2
 * store lacks it or it is malformed. */
int sfs_features_get(struct sfs_store *st, MDB_txn *txn,
                     struct sfs_features *out);
int sfs_features_put_w(struct sfs_store *st, MDB_txn *txn,
                       const struct sfs_features *f);
/* The record of an upgrade under way (`upgrade` in meta). */
struct sfs_upgrade {
    uint32_t from, to;
    char step[32];   /* the step it is at, for reports */
    int64_t started; /* time(2) of its start */
};
/* 0, -ENOENT (no upgrade under way), -EIO (malformed). */
int sfs_upgrade_get(struct sfs_store *st, MDB_txn *txn,
                    struct sfs_upgrade *out);
/* Mark the store as being upgraded from U->from to U->to (which must be
 * SFS_FORMAT_VERSION): the record, and the superblock's version set to
 * SFS_FORMAT_UPGRADING | to.  -EINVAL for other versions. */
int sfs_upgrade_begin_w(struct sfs_store *st, MDB_txn *txn,
                        const struct sfs_upgrade *u);
/* Record that the upgrade is at STEP. */
int sfs_upgrade_step_w(struct sfs_store *st, MDB_txn *txn, const char *step);
/* Complete it: the features record, the version, the record removed.
 * -ENOENT (none under way), -EAGAIN (the ledger is not counted yet). */
int sfs_upgrade_finish_w(struct sfs_store *st, MDB_txn *txn);

/* ---- compact.c: the store file's pages, and the compacting copy ---- */

/* The temporary file of an unfinished compacting copy, in the store
 * directory (or the --to directory); removed by the next compact and by
 * every exclusive open (a mount), which no compact can be running
 * beside. */
#define SFS_COMPACT_TEMP "data.mdb.compact"

/* What the store file is made of, in LMDB pages. */
struct sfs_file_pages {
    uint64_t page_size;
    uint64_t file_bytes;    /* data.mdb's size */
    uint64_t file_pages;    /* pages up to LMDB's high-water mark */
    uint64_t used_pages;    /* every tree's pages (tables, the main and
                             * free-list trees) and the two meta pages */
    uint64_t free_pages;    /* on LMDB's free list, awaiting reuse */
    uint64_t compact_pages; /* what a compacting copy keeps: the used
                             * pages less the free-list tree's */
};
/* O(number of tables + free-list records). */
int sfs_file_pages(struct sfs_store *st, MDB_txn *txn,
                   struct sfs_file_pages *out);

struct sfs_compact_result {
    struct sfs_file_pages before;
    uint64_t after_bytes;   /* the new data.mdb's size */
    uint64_t need_bytes;    /* -ENOSPC: the room the copy needs */
    uint64_t free_bytes;    /* -ENOSPC: the room there is */
    int holder_pid;         /* -EBUSY: a process that has the store open,
                             * or 0 when it is the lock (a mount, an
                             * offline command) */
    bool leftover_removed;  /* a killed compact's temporary file went */
};
/*
 * sfs_compact - replace the store in PATH by LMDB's compacting copy of it
 * (mdb_env_copyfd2, MDB_CP_COMPACT: the used pages only, renumbered),
 * keeping every record; with TO (an existing, empty directory), write the
 * copy there as a store and leave PATH as it is.  Offline: the store must
 * not be open in any other process.  Crash-safe: the copy is written to
 * SFS_COMPACT_TEMP beside its final place, synced, and renamed over it,
 * and the directory synced: a kill at any point leaves the old store or
 * the new one.  Errors: those of sfs_open, -EBUSY (open elsewhere:
 * OUT->holder_pid), -ENOSPC (not enough room for the copy: OUT's
 * need_bytes and free_bytes; nothing changed), or an I/O errno (the
 * temporary file removed, nothing changed).
 */
int sfs_compact(const char *path, const char *to,
                struct sfs_compact_result *out);

/*
 * sfs_set_open_check - a check that every later sfs_open of this process
 * runs on the store it opened, before returning it (NULL: none).  CHECK
 * sees what was opened, whatever the path resolved to, and returns 0 or
 * a negative errno, which sfs_open then returns (the store closed).  For
 * a program that may reach only a given volume; set once, at its start.
 */
void sfs_set_open_check(int (*check)(const struct sfs_store *st));

/*
 * sfs_map_region - the address and length of LMDB's map of the store.
 * Errors: -ENOENT (not mapped: the environment is closed), or the errno
 * of reading /proc/self/maps.
 */
int sfs_map_region(struct sfs_store *st, void **addr, size_t *len);
/* The same for any LMDB environment (its directory's data.mdb). */
int sfs_env_map_region(MDB_env *env, void **addr, size_t *len);

/*
 * sfs_advise_access - tell the kernel how this process will read the
 * store.  A page fault on the map normally reads ahead up to the block
 * device's readahead window (often megabytes); that serves walks of whole
 * tables (full streams, fsck) and wastes most of the disk reads of
 * lookups scattered over a large store (incremental streams, which touch
 * a few records per changed file).  SFS_ACCESS_SCATTERED turns readahead
 * off for this process's map; SFS_ACCESS_NORMAL turns it back on.
 * Errors: those of sfs_map_region and madvise(2).
 */
enum sfs_access { SFS_ACCESS_NORMAL, SFS_ACCESS_SCATTERED };
int sfs_advise_access(struct sfs_store *st, enum sfs_access pattern);

/* Begin a transaction; a write transaction reloads st->state. */
int sfs_txn_begin(struct sfs_store *st, MDB_txn *parent, bool write,
                  MDB_txn **out);
/* Write st->state into TXN (a top-level write txn) and commit it. */
int sfs_txn_commit(struct sfs_store *st, MDB_txn *txn);
/* Reload st->state from the last committed transaction. */
int sfs_state_reload(struct sfs_store *st);
/* Write st->state into TXN without committing. */
int sfs_state_save(struct sfs_store *st, MDB_txn *txn);

/* Map an LMDB return code to a negative errno. */
int sfs_mdb_errno(int rc);

/* Bytes of LMDB pages in use by all tables, as of TXN. */
int sfs_used_bytes(struct sfs_store *st, MDB_txn *txn, uint64_t *out);
/*
 * Space (theory at the top of store.c).  What an allocation may use
 * depends on what it is for:
 *   SFS_SPACE_ORDINARY  new data and new objects: everything but the
 *                       reserve (the slop) and the space reserved by
 *                       sfs_space_reserve;
 *   SFS_SPACE_RESERVED  data whose space was reserved before (a daemon's
 *                       cached blocks) and the few allocations of changes
 *                       that must work on a full volume (the trimmed
 *                       last block of a truncation): also the
 *                       reservations and half of the reserve.
 * Deletes, renames, attribute changes and snapshot records are not
 * checked at all: they may use the whole reserve.
 */
enum sfs_space_use { SFS_SPACE_ORDINARY, SFS_SPACE_RESERVED };
/* Bytes an allocation of kind USE may still take, as of TXN. */
int sfs_space_left(struct sfs_store *st, MDB_txn *txn, enum sfs_space_use use,
                   uint64_t *out);
/* Bytes an ordinary write may still use before ENOSPC (what df shows as
 * available): sfs_space_left(SFS_SPACE_ORDINARY). */
int sfs_space_avail(struct sfs_store *st, MDB_txn *txn, uint64_t *out);
/* The volume's space as df and `snapfs info` show it. */
struct sfs_space {
    uint64_t size;      /* the volume (mkfs --size) */
    uint64_t used;      /* LMDB pages in use, all tables */
    uint64_t reserve;   /* the snapshot reserve (snapshot-reserve) */
    uint64_t snapshots; /* what only snapshots hold (sfs_snap_space) */
    uint64_t live_size; /* size - reserve: the live tree's share (df) */
    uint64_t live_free; /* of it, not used (by the live tree, or by
                         * snapshots spilling past their reserve) */
    uint64_t avail;     /* what ordinary writes may use (df) */
};
int sfs_space_get(struct sfs_store *st, MDB_txn *txn, struct sfs_space *out);
uint64_t sfs_slop_bytes(const struct sfs_store *st);
/* What storing one block of the volume's block size may cost at most:
 * its pages, a header page, and its records. */
uint64_t sfs_block_cost(const struct sfs_store *st);
/*
 * Reservations: space promised to data that is not stored yet (a
 * daemon's cached partial blocks), so that storing it later never meets
 * a full volume.  sfs_space_reserve takes BYTES out of what ordinary
 * writes may use (-ENOSPC if they are not there); sfs_space_unreserve
 * gives them back, unused, or once the data is stored.  Reservations
 * live in the handle (st->space_reserved), not in the store: they end
 * with the process.  Reserving is serialized with the writes of TXN by
 * the caller; unreserving may happen anywhere (atomic).
 */
int sfs_space_reserve(struct sfs_store *st, MDB_txn *txn, uint64_t bytes);
void sfs_space_unreserve(struct sfs_store *st, uint64_t bytes);

void sfs_log_corruption(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Big-endian key helpers. */
static inline void sfs_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}
static inline uint64_t sfs_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* ---- vrec.c: versioned records ---- */

#define SFS_KEY_MAX 300

/*
 * Record kinds: the first byte of every versioned key.
 *   'I' ino                 -> struct sfs_inode_rec
 *   'D' dir hash64 name     -> struct sfs_dirent_rec
 *   'X' ino name            -> xattr value (inline or blob reference)
 *   'E' ino blockno         -> extent (inline data or blob reference)
 */
enum { SFS_K_INODE = 'I', SFS_K_DIRENT = 'D', SFS_K_XATTR = 'X',
       SFS_K_EXTENT = 'E' };

/*
 * sfs_vrec_get - read KEY as seen by VIEW.  On success *val points into
 * the map (valid until the txn changes or ends) and *birth is set.
 * Returns 0, -ENOENT, or an LMDB-derived errno.
 */
int sfs_vrec_get(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                 const void *key, size_t klen, MDB_val *val,
                 uint64_t *birth);
/* Write a new live version of KEY at the current epoch. */
int sfs_vrec_put_w(struct sfs_store *st, MDB_txn *txn, const void *key,
                   size_t klen, const void *val, size_t vlen);
/* Kill the live version of KEY.  -ENOENT if there is none. */
int sfs_vrec_del_w(struct sfs_store *st, MDB_txn *txn, const void *key,
                   size_t klen);

/*
 * Iterate, in key order, every key with PREFIX visible in VIEW, starting
 * at the first key >= START (or the prefix itself when START is NULL).
 * The callback returns 0 to go on, 1 to stop, or a negative errno, which
 * is returned.  Keys and values point into the map.
 */
typedef int (*sfs_vrec_cb)(void *arg, const MDB_val *key, const MDB_val *val,
                           uint64_t birth);
int sfs_vrec_scan(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                  const void *prefix, size_t plen, const void *start,
                  size_t slen, sfs_vrec_cb cb, void *arg);

/* ---- snapshots as epochs (the epoch mechanics; naming lives above) ---- */

struct sfs_snap_rec {
    uint64_t epoch;
    uint64_t id;
    int64_t ctime_sec;
    uint32_t ctime_nsec;
    uint32_t flags;
    char name[SFS_NAME_MAX + 1];
};

/* Take a snapshot of the live tree: O(1).  Fills *out. */
int sfs_snap_take_w(struct sfs_store *st, MDB_txn *txn, const char *name,
                    struct sfs_snap_rec *out);
/* Delete the snapshot at EPOCH, freeing what only it could see; -EBUSY if
 * it is held. */
int sfs_snap_delete_w(struct sfs_store *st, MDB_txn *txn, uint64_t epoch);
int sfs_snap_find(struct sfs_store *st, MDB_txn *txn, const char *name,
                  struct sfs_snap_rec *out);
/* Epoch of the snapshot before / after EPOCH: 0 / the live epoch if none. */
int sfs_snap_neighbours(struct sfs_store *st, MDB_txn *txn, uint64_t epoch,
                        uint64_t *prev, uint64_t *next);
/* snapshot.c */
/* 0 if NAME may name a snapshot (1-255 bytes, no '/', not . or ..). */
int sfs_snap_name_valid(const char *name);
/* -ENOENT (no FROM), -EEXIST (TO taken), -EINVAL (bad TO). */
int sfs_snap_rename_w(struct sfs_store *st, MDB_txn *txn, const char *from,
                      const char *to);
struct sfs_reclaim {
    uint64_t physical; /* stored bytes the deletes free */
    uint64_t logical;  /* logical bytes of the references they drop */
};
/* What deleting the snapshots at EPOCHS would free, exactly; changes
 * nothing (the deletes run in a nested transaction that is aborted).
 * TXN must be a write transaction. */
int sfs_snap_reclaim(struct sfs_store *st, MDB_txn *txn, const uint64_t *epochs,
                     size_t n, struct sfs_reclaim *out);
/*
 * Holds: a held snapshot cannot be deleted (sfs_snap_delete_w answers
 * -EBUSY).  A tag is 1-200 bytes without tab or newline; -EEXIST if the
 * snapshot already has that hold, -ENODATA releasing one it has not.
 */
int sfs_snap_hold_w(struct sfs_store *st, MDB_txn *txn, const char *name,
                    const char *tag);
int sfs_snap_release_w(struct sfs_store *st, MDB_txn *txn, const char *name,
                       const char *tag);
typedef int (*sfs_hold_cb)(void *arg, const char *tag);
/* Calls CB (may be NULL) per hold of the snapshot at EPOCH; returns the
 * number of holds. */
int sfs_snap_holds(struct sfs_store *st, MDB_txn *txn, uint64_t epoch,
                   sfs_hold_cb cb, void *arg);

/* ---- autodelete.c: snapshot autodelete (settings snapshot-autodelete,
 * -trigger, -target; theory at the top of autodelete.c) ---- */

/*
 * Is a snapshot to be deleted now?  1 yes, 0 no, or a negative errno.
 * NEED: a write is about to fail unless that many bytes are available
 * (0: none is); STARTED: deleting has begun, so it goes on until the
 * target is reached even when the trigger no longer holds.  WHY (CAP
 * bytes) gets the figures that decided, for the log.
 */
int sfs_autodelete_due(struct sfs_store *st, MDB_txn *txn, uint64_t need,
                       bool started, char *why, size_t cap);
/* The snapshot autodelete deletes next: the oldest that is not held, not
 * the newest dump of a path, not a destination's newest received or
 * exposed one.  0, or -ENOENT when none may go. */
int sfs_autodelete_pick(struct sfs_store *st, MDB_txn *txn,
                        struct sfs_snap_rec *out);

/* ---- cgroup.c: consistency groups (snapshots of several volumes taken
 * at one point in time; `snapshot create --group`) ---- */

#define SFS_CGROUP_MAX 32 /* members of one group */
#define SFS_UUID_TEXT 37  /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" + NUL */

/* The group a snapshot belongs to, recorded on every member. */
struct sfs_cgroup {
    int64_t created_sec;                 /* when the group was taken */
    uint32_t count;                      /* members; 0: no group */
    uint8_t members[SFS_CGROUP_MAX][16]; /* their volume UUIDs, as given */
};
/*
 * Take snapshot NAME (sfs_snap_take_w) and record it as a member of G in
 * the same transaction.  -EINVAL if G has no members, more than
 * SFS_CGROUP_MAX, one twice, or not this volume; else sfs_snap_take_w's
 * errors.  Deleting the snapshot deletes the record.
 */
int sfs_cgroup_take_w(struct sfs_store *st, MDB_txn *txn, const char *name,
                      const struct sfs_cgroup *g, struct sfs_snap_rec *out);
/* The group of the snapshot at EPOCH: 0, or -ENOENT if it has none. */
int sfs_cgroup_get(struct sfs_store *st, MDB_txn *txn, uint64_t epoch,
                   struct sfs_cgroup *out);
/* Forget the group of the snapshot at EPOCH (none is not an error). */
int sfs_cgroup_delete_w(struct sfs_store *st, MDB_txn *txn, uint64_t epoch);
/* Calls CB with the epoch of every group record (cgroup.c; 0 for a
 * malformed key), for fsck. */
int sfs_cgroup_foreach_epoch(struct sfs_store *st, MDB_txn *txn,
                             int (*cb)(void *arg, uint64_t epoch), void *arg);
/* G as one word: "-" (no group) or "CREATED:UUID,UUID,..."; and back
 * (-EINVAL if TEXT is not such a word). */
void sfs_cgroup_format(const struct sfs_cgroup *g, FILE *out);
int sfs_cgroup_parse(const char *text, struct sfs_cgroup *g);
/* A volume UUID in the usual 8-4-4-4-12 lower-case hex form, and back. */
void sfs_uuid_format(const uint8_t *uuid, char *out);
int sfs_uuid_parse(const char *text, uint8_t *uuid);

/* ---- slabel.c: snapshot labels (KEY=VALUE words recorded with a
 * snapshot, e.g. consistency=application; theory at the top of slabel.c)
 * ---- */

#define SFS_LABELS_MAX 255 /* bytes of a snapshot's labels, "k=v,k=v" */
/* 0 if TEXT is a label list: "" or KEY=VALUE words joined by ',', each
 * KEY 1-32 of [a-z0-9._-], each VALUE 1-64 printable bytes other than
 * ',' '=' and space, no KEY twice, at most SFS_LABELS_MAX bytes. */
int sfs_labels_valid(const char *text);
/*
 * Take snapshot NAME (sfs_snap_take_w; with G, as a group member:
 * sfs_cgroup_take_w) and record LABELS ("" or NULL: none) with it in the
 * same transaction.  -EINVAL for a bad label list; else the take's errors.
 * Deleting the snapshot deletes its labels.
 */
int sfs_snap_take_labelled_w(struct sfs_store *st, MDB_txn *txn,
                             const char *name, const struct sfs_cgroup *g,
                             const char *labels, struct sfs_snap_rec *out);
/* The labels of the snapshot at EPOCH into OUT (SFS_LABELS_MAX + 1
 * bytes): 0 ("" when it has none) or a negative errno. */
int sfs_snap_labels_get(struct sfs_store *st, MDB_txn *txn, uint64_t epoch,
                        char *out);
/* Forget the labels of the snapshot at EPOCH (none is not an error). */
int sfs_snap_labels_delete_w(struct sfs_store *st, MDB_txn *txn,
                             uint64_t epoch);
/* CB(ARG, EPOCH, LABELS) for every snapshot that has labels, by epoch. */
typedef int (*sfs_labels_cb)(void *arg, uint64_t epoch, const char *labels);
int sfs_snap_labels_foreach(struct sfs_store *st, MDB_txn *txn,
                            sfs_labels_cb cb, void *arg);

/* ---- spacelog.c: samples of the volume's space over time (theory at
 * the top of spacelog.c) ---- */

#define SFS_SPACELOG_INTERVAL 3600 /* seconds between samples, at least */
#define SFS_SPACELOG_KEEP 336      /* samples kept: two weeks of hours */
struct sfs_space_sample {
    int64_t when;   /* seconds since the epoch */
    uint64_t used;  /* bytes of the live tree's share in use */
    uint64_t avail; /* bytes ordinary writes may still use */
    uint64_t size;  /* the live tree's share */
};
/* Is a sample due at NOW?  1 yes, 0 no, or a negative errno. */
int sfs_spacelog_due(struct sfs_store *st, MDB_txn *txn, int64_t now);
/* Take a sample as of NOW if one is due: 1 taken, 0 not due, or a
 * negative errno. */
int sfs_spacelog_record_w(struct sfs_store *st, MDB_txn *txn, int64_t now);
typedef int (*sfs_spacelog_cb)(void *arg, const struct sfs_space_sample *s);
/* Every sample, oldest first. */
int sfs_spacelog_foreach(struct sfs_store *st, MDB_txn *txn,
                         sfs_spacelog_cb cb, void *arg);

/* A snapshot with the bytes that only it holds (what deleting it frees)
 * and the consistency group it was taken in (count 0: none). */
struct sfs_snap_line {
    struct sfs_snap_rec rec;
    uint64_t unique_physical;
    uint64_t unique_logical;
    uint32_t holds;
    struct sfs_cgroup group;
};
typedef int (*sfs_snap_line_cb)(void *arg, const struct sfs_snap_line *l);
/* Every snapshot, oldest first; TXN must be a write transaction (the
 * unique bytes come from a dry-run delete) and is left unchanged. */
int sfs_snap_list(struct sfs_store *st, MDB_txn *txn, sfs_snap_line_cb cb,
                  void *arg);
/* One tab-separated line, as the control socket sends it. */
void sfs_snap_line_format(const struct sfs_snap_line *l, FILE *out);
int sfs_snap_line_parse(const char *line, struct sfs_snap_line *l);
typedef int (*sfs_snap_cb)(void *arg, const struct sfs_snap_rec *snap);
int sfs_snap_foreach(struct sfs_store *st, MDB_txn *txn, sfs_snap_cb cb,
                     void *arg);

/* The snapshot stored at EPOCH: 0, or -ENOENT if there is none. */
int sfs_snap_get(struct sfs_store *st, MDB_txn *txn, uint64_t epoch,
                 struct sfs_snap_rec *out);

/*
 * Identifier ranges.  Clients see one st_dev for a whole mount, so a file
 * seen through .snapshot is told apart by its inode number,
 * snapshot id << SFS_INO_BITS | object id.  Object ids stay below 2^41
 * (the other half of the 42 bits is left to the FUSE layer for node ids
 * of its own) and snapshot ids below SFS_SNAP_ID_MAX, which tags those;
 * neither is ever reused, and allocating past them fails with -EOVERFLOW.
 */
#define SFS_INO_BITS 42
#define SFS_OBJ_ID_MAX (((uint64_t)1 << (SFS_INO_BITS - 1)) - 1)
#define SFS_SNAP_ID_MAX (((uint64_t)1 << (64 - SFS_INO_BITS)) - 1)

/* ---- settings.c: volume settings (`snapfs set`) ---- */

#define SFS_SETTING_VALUE_MAX 63
/*
 * Read setting NAME (its default when unset) into BUF.  -ENOENT for an
 * unknown setting, -ERANGE if CAP is too small.
 */
int sfs_setting_get(struct sfs_store *st, MDB_txn *txn, const char *name,
                    char *buf, size_t cap);
/* -ENOENT unknown setting, -EINVAL a value the setting does not allow. */
int sfs_setting_set_w(struct sfs_store *st, MDB_txn *txn, const char *name,
                      const char *value);
typedef int (*sfs_setting_cb)(void *arg, const char *name, const char *value,
                              const char *dflt, const char *allowed,
                              const char *what);
/* Every setting with its value, default, allowed values ("a|b") and a
 * one-line description. */
int sfs_setting_foreach(struct sfs_store *st, MDB_txn *txn,
                        sfs_setting_cb cb, void *arg);
/* May NAME be set to VALUE?  0, -ENOENT (no such setting), -EINVAL. */
int sfs_setting_check(const char *name, const char *value);
/* The allowed values of NAME, comma-separated, for messages; -ENOENT. */
int sfs_setting_allowed(const char *name, char *buf, size_t cap);
/* A percentage setting's value ("N%"); -EINVAL for another setting. */
int sfs_setting_percent(struct sfs_store *st, MDB_txn *txn, const char *name,
                        uint32_t *pct);
/* 1 if setting NAME reads VALUE, 0 if not, or a negative errno. */
int sfs_setting_is(struct sfs_store *st, MDB_txn *txn, const char *name,
                   const char *value);
/* ---- policy.c: snapshot policies (named schedules with retention) ---- */

/*
 * A schedule, in local time.  Text forms (sfs_schedule_parse; the format
 * is always the full one):
 *   every:N                 every N minutes (1-1440), at the minutes of
 *                           the day that are multiples of N (every:15 at
 *                           :00 :15 :30 :45; the count restarts at midnight)
 *   hourly[@MM]             MM past every hour (default 00)
 *   daily[@HH:MM]           (default 00:00)
 *   weekly[@DAY[@HH:MM]]    DAY mon..sun (default sun 00:00)
 *   monthly[@D[@HH:MM]]     day D of the month, 1-28 (default 1 00:00)
 */
enum sfs_sched_kind { SFS_SCHED_EVERY = 1, SFS_SCHED_HOURLY, SFS_SCHED_DAILY,
                      SFS_SCHED_WEEKLY, SFS_SCHED_MONTHLY };
struct sfs_schedule {
    uint32_t kind;   /* enum sfs_sched_kind */
    uint32_t period; /* every: minutes */
    uint32_t minute; /* 0-59 */
    uint32_t hour;   /* 0-23 */
    uint32_t wday;   /* weekly: 0 = sunday .. 6 = saturday */
    uint32_t mday;   /* monthly: 1-28 */
};
#define SFS_SCHEDULE_TEXT_MAX 32
/* 0, or -EINVAL if TEXT is not a schedule (out of range included). */
int sfs_schedule_parse(const char *text, struct sfs_schedule *out);
void sfs_schedule_format(const struct sfs_schedule *s, char *out, size_t cap);
/* The latest scheduled time <= NOW, and the earliest > NOW (seconds since
 * the epoch; slots are whole minutes of local time). */
int64_t sfs_schedule_prev(const struct sfs_schedule *s, int64_t now);
int64_t sfs_schedule_next(const struct sfs_schedule *s, int64_t now);

#define SFS_POLICY_NAME_MAX 64
#define SFS_POLICY_STAMP_LEN 16 /* ".YYYY-MM-DD_HHMM" */
#define SFS_POLICY_PREFIX_MAX (SFS_NAME_MAX - SFS_POLICY_STAMP_LEN)
#define SFS_POLICY_KEEP_MAX 10000

/*
 * Hooks run around a snapshot (application-consistent snapshots; the
 * runner is fs/hooks.c).  Commands are run by /bin/sh -c; "" is none.
 */
#define SFS_HOOK_CMD_MAX 1023
#define SFS_HOOK_TIMEOUT_DEFAULT 60 /* seconds */
#define SFS_HOOK_TIMEOUT_MAX 86400
enum sfs_hook_failure {
    SFS_HOOK_ABANDON = 0,        /* a failed pre hook: no snapshot */
    SFS_HOOK_CRASH_CONSISTENT,   /* a failed pre hook: taken, labelled crash */
};
struct sfs_hookspec {
    char pre[SFS_HOOK_CMD_MAX + 1];
    char post[SFS_HOOK_CMD_MAX + 1];
    uint32_t timeout;    /* seconds; 0 reads as SFS_HOOK_TIMEOUT_DEFAULT */
    uint32_t on_failure; /* enum sfs_hook_failure */
};
/* Has H a pre or a post hook? */
bool sfs_hooks_any(const struct sfs_hookspec *h);
/* 0 if H is valid: commands without control characters, timeout 0 to
 * SFS_HOOK_TIMEOUT_MAX, a known on_failure. */
int sfs_hooks_valid(const struct sfs_hookspec *h);
/* H as one word "TIMEOUT:FAILURE:PREHEX:POSTHEX" (the commands in hex,
 * so any byte travels in a tab-separated line), and back (-EINVAL). */
#define SFS_HOOKS_WORD_MAX (32 + 4 * (SFS_HOOK_CMD_MAX + 1))
void sfs_hooks_format(const struct sfs_hookspec *h, char *out, size_t cap);
int sfs_hooks_parse(const char *word, struct sfs_hookspec *h);

/*
 * The record is this struct as stored; fields were only ever appended
 * (hooks last), and a record is read by copying the bytes it has and
 * zeroing the rest, so a record written before hooks existed reads as a
 * policy without hooks.
 */
struct sfs_policy {
    char name[SFS_POLICY_NAME_MAX + 1];
    char prefix[SFS_POLICY_PREFIX_MAX + 1];
    struct sfs_schedule sched;
    uint32_t keep;     /* snapshots of the policy retention keeps */
    int64_t created;
    int64_t last_run;  /* scheduled time of the last run; 0: none yet */
    struct sfs_hookspec hooks; /* none: a crash-consistent snapshot */
};

/* 0 if NAME may name a policy: 1-64 letters, digits, '.', '-', '_'. */
int sfs_policy_name_valid(const char *name);
/* 0 if PREFIX.YYYY-MM-DD_HHMM is a snapshot name: 1-239 bytes, no '/',
 * no control characters. */
int sfs_policy_prefix_valid(const char *prefix);
int sfs_policy_keep_valid(uint32_t keep);
/* Is SNAP named PREFIX.YYYY-MM-DD_HHMM after P's prefix? */
bool sfs_policy_owns(const struct sfs_policy *p, const char *snap);
/* The name of P's snapshot of scheduled time WHEN (local time). */
void sfs_policy_snap_name(const struct sfs_policy *p, int64_t when, char *out,
                          size_t cap);
/* The scheduled time P is due to run for as of NOW, or 0 if not due: the
 * latest slot <= NOW that is later than both its creation and last run. */
int64_t sfs_policy_due(const struct sfs_policy *p, int64_t now);

/* -EINVAL (bad field), -EEXIST (the name, or the prefix, is taken). */
int sfs_policy_create_w(struct sfs_store *st, MDB_txn *txn,
                        const struct sfs_policy *p);
/* Removes the policy, not its snapshots.  -ENOENT if there is none. */
int sfs_policy_delete_w(struct sfs_store *st, MDB_txn *txn, const char *name);
/*
 * Give policy P->name the schedule, keep and prefix of P (its creation
 * and last run are its own).  A new schedule starts at NOW: the first
 * slot after NOW is its first run (as for a new policy).  A smaller keep
 * applies at the next run's retention.  A new prefix names the snapshots
 * taken from then on; those of the old prefix are no longer the
 * policy's (retention leaves them).  -ENOENT (no such policy), -EINVAL
 * (bad field), -EEXIST (another policy has the prefix).
 */
int sfs_policy_modify_w(struct sfs_store *st, MDB_txn *txn,
                        const struct sfs_policy *p, int64_t now);
/* Give policy NAME the hooks H (the rest of it stays).  -ENOENT,
 * -EINVAL (bad hooks). */
int sfs_policy_hooks_set_w(struct sfs_store *st, MDB_txn *txn,
                           const char *name, const struct sfs_hookspec *h);
int sfs_policy_get(struct sfs_store *st, MDB_txn *txn, const char *name,
                   struct sfs_policy *out);
typedef int (*sfs_policy_cb)(void *arg, const struct sfs_policy *p);
/* Every policy in name order; CB returns 0, 1 to stop, or an error. */
int sfs_policy_foreach(struct sfs_store *st, MDB_txn *txn, sfs_policy_cb cb,
                       void *arg);

/* A policy as listed: when it runs next and how many snapshots it has. */
struct sfs_policy_line {
    struct sfs_policy p;
    int64_t next_run; /* the slot it runs for next (now, when due) */
    bool due;         /* it runs at the next chance */
    uint32_t snapshots;
};
typedef int (*sfs_policy_line_cb)(void *arg, const struct sfs_policy_line *l);
int sfs_policy_list(struct sfs_store *st, MDB_txn *txn, int64_t now,
                    sfs_policy_line_cb cb, void *arg);
/* One tab-separated line, as the control socket sends it. */
void sfs_policy_line_format(const struct sfs_policy_line *l, FILE *out);
int sfs_policy_line_parse(const char *line, struct sfs_policy_line *l);

/* What a run did, one event per snapshot. */
enum sfs_policy_event {
    SFS_POLICY_CREATED = 1, /* took the snapshot */
    SFS_POLICY_EXISTED,     /* its name was taken: nothing taken */
    SFS_POLICY_DELETED,     /* retention deleted it */
    SFS_POLICY_HELD,        /* retention would delete it, but it is held */
    SFS_POLICY_ABANDONED,   /* its pre hook failed: nothing taken */
};
typedef int (*sfs_policy_report)(void *arg, int event, const char *policy,
                                 const char *snap);
/*
 * Run every policy due at NOW: take its snapshot, named after the slot
 * (one snapshot however many slots were missed), record the run, and
 * apply retention: of the snapshots it owns, the newest KEEP stay and the
 * older ones are deleted, except held ones, which stay.  REPORT (may be
 * NULL) hears every event.  Returns the number of snapshots created and
 * deleted, or a negative errno (the caller aborts TXN: all or nothing).
 */
int sfs_policy_run_due_w(struct sfs_store *st, MDB_txn *txn, int64_t now,
                         sfs_policy_report report, void *arg);
/*
 * sfs_policy_run_due_w runs the due policies without hooks; a policy with
 * hooks runs alone, its hooks around it (outside any transaction), with
 * sfs_policy_run_one_w: if policy NAME is due at NOW, take its snapshot
 * with LABELS and apply retention, as above, or with ABANDON take
 * nothing and record the slot as run (event SFS_POLICY_ABANDONED), so a
 * failing hook is tried again at the next slot, not at every tick.
 * Returns the changes made (0: not due), or a negative errno.
 */
int sfs_policy_run_one_w(struct sfs_store *st, MDB_txn *txn, const char *name,
                         int64_t now, const char *labels, bool abandon,
                         sfs_policy_report report, void *arg);
/* A due policy with hooks and the name of the snapshot it takes. */
struct sfs_policy_hooked {
    struct sfs_policy p;
    char snap[SFS_NAME_MAX + 1];
};
/* The policies with hooks due at NOW, in name order, into *OUT
 * (malloc'd, *N of them): 0 or a negative errno. */
int sfs_policy_hooked_due(struct sfs_store *st, MDB_txn *txn, int64_t now,
                          struct sfs_policy_hooked **out, size_t *n);
/* Is any policy due at NOW?  1 yes, 0 no, or a negative errno. */
int sfs_policy_any_due(struct sfs_store *st, MDB_txn *txn, int64_t now);
/* Does ST run no policy now (a mirror destination following its source:
 * its snapshots are the source's)?  The runs above then find nothing due. */
bool sfs_policy_paused(struct sfs_store *st, MDB_txn *txn);
/* Events as tab-separated lines "EVENT POLICY SNAPSHOT" (EVENT: created,
 * existed, deleted, held).  write is a report for sfs_policy_run_due_w
 * that appends the line to the FILE * it is given; parse points *POLICY
 * and *SNAP into LINE. */
int sfs_policy_event_write(void *file, int event, const char *policy,
                           const char *snap);
int sfs_policy_event_parse(char *line, int *event, char **policy, char **snap);

/* ---- blocks.c: content-addressed blocks ---- */

#define SFS_HASH_LEN 32

struct sfs_blockref {
    uint8_t hash[SFS_HASH_LEN];
    uint32_t lsize; /* logical bytes */
};

/* Per-thread scratch state for hashing and (de)compression. */
struct sfs_codec_ctx;
struct sfs_codec_ctx *sfs_codec_ctx_new(void);
void sfs_codec_ctx_free(struct sfs_codec_ctx *c);
/* The zstd level C compresses at from now on (negative: zstd's fast
 * levels), instead of the volume's; 0: the volume's again.  Any level
 * decodes the same: the stored format does not change. */
void sfs_codec_set_level(struct sfs_codec_ctx *c, int level);

void sfs_sha256(const void *data, size_t len, uint8_t out[SFS_HASH_LEN]);
bool sfs_is_zero(const void *data, size_t len);

/*
 * A block prepared outside any transaction: hashed, and compressed when
 * that pays (saves at least a page and 12.5%).  data points at the bytes
 * to store (the compressed copy in buf, or the caller's plaintext).
 */
struct sfs_prepared_block {
    struct sfs_blockref ref;
    uint8_t codec;
    const void *data;
    uint32_t csize;
    void *buf; /* owned compressed copy, or NULL */
    bool compressed_tried;
};
/* Hash LEN bytes of PLAIN.  No compression yet. */
void sfs_block_hash(const void *plain, uint32_t len,
                    struct sfs_prepared_block *pb);
/*
 * Compress PB's plaintext if the volume compresses and it pays; PLAIN stays
 * valid.  The compressed bytes go to OUT (OUTCAP >= sfs_compress_bound) or,
 * when OUT is NULL, to a buffer PB owns.
 */
int sfs_block_compress(struct sfs_store *st, struct sfs_codec_ctx *cc,
                       const void *plain, struct sfs_prepared_block *pb,
                       void *out, size_t outcap);
size_t sfs_compress_bound(uint32_t len);
/* Does LEN bytes of P look incompressible at zstd LEVEL?  (A 4 KiB
 * sample from 8 places that does not shrink by a tenth; blocks under
 * 16 KiB are never judged so.) */
bool sfs_looks_incompressible(struct sfs_codec_ctx *cc, const void *p,
                              uint32_t len, int level);
void sfs_prepared_block_release(struct sfs_prepared_block *pb);

/* Does a block with HASH exist?  0 yes, -ENOENT no. */
int sfs_block_exists(struct sfs_store *st, MDB_txn *txn,
                     const uint8_t hash[SFS_HASH_LEN]);
/*
 * Take a reference to PB's block, storing it if new.  If the block is new
 * and PB was not compressed yet, returns -EAGAIN so that the caller can
 * compress outside the transaction and call again.
 * -ENOSPC if storing it would exceed the volume's space.
 */
int sfs_block_ref_w(struct sfs_store *st, MDB_txn *txn,
                    struct sfs_prepared_block *pb, bool allow_slop);
/* Drop one reference, held by a LIVE version or a version in history;
 * the blob is freed when none remain. */
int sfs_block_unref_w(struct sfs_store *st, MDB_txn *txn,
                      const uint8_t hash[SFS_HASH_LEN], bool live);
/* The live version holding a reference moved to history (a snapshot
 * still sees it): the reference stays, it is no longer a live one. */
int sfs_block_to_history_w(struct sfs_store *st, MDB_txn *txn,
                           const uint8_t hash[SFS_HASH_LEN]);
/* Refcount and sizes of a block, for fsck and reclaim.  Every reference
 * taken is a live version's (writes, restores, receives, clones); LIVE
 * counts those still live (the ledger; theory in blocks.c). */
struct sfs_dedup_rec {
    uint64_t blob_id;
    uint64_t refcount;
    uint32_t csize;
    uint32_t lsize;
    uint8_t codec;
    uint8_t pad[3];
    uint32_t live;   /* 0 in stores made before the ledger */
};
/* What a blob of CSIZE bytes occupies in its table (LMDB's pages). */
uint64_t sfs_blob_bytes(uint32_t csize);
/*
 * Count the ledger of a store that does not have it (SFS_STATE_LEDGER
 * clear): every block's live references and the bytes only snapshots
 * hold; nothing if it is counted.  Runs its own transactions (batches,
 * the flag set in the last); TXN-less, the store opened for writing and
 * exclusively.  Returns 1 if it counted, 0 if there was nothing to do,
 * or a negative errno.
 */
int sfs_ledger_count(struct sfs_store *st);
/* The same in batches of BATCH records per transaction, calling
 * AFTER_COMMIT (may be NULL) after each commit: a non-zero return stops
 * the count there (the flag stays clear; a later count starts over). */
int sfs_ledger_count_batched(struct sfs_store *st, size_t batch,
                             int (*after_commit)(void *arg), void *arg);
/* Bytes only snapshots hold: their blocks (the ledger) and the tables
 * of history; 0 while the ledger is not counted. */
int sfs_snap_space(struct sfs_store *st, MDB_txn *txn, uint64_t *out);
int sfs_block_info(struct sfs_store *st, MDB_txn *txn,
                   const uint8_t hash[SFS_HASH_LEN], struct sfs_dedup_rec *out);

/*
 * Copy the stored bytes of block HASH into *raw (malloc'd, caller frees);
 * done under the transaction.  sfs_block_decode then decompresses and
 * verifies outside it.  -EIO on a missing blob.
 */
struct sfs_raw_block {
    void *bytes;
    uint32_t csize;
    uint32_t lsize;
    uint8_t codec;
    bool verified;   /* set by sfs_block_verify only */
    uint8_t hash[SFS_HASH_LEN];
};
int sfs_block_fetch(struct sfs_store *st, MDB_txn *txn,
                    const uint8_t hash[SFS_HASH_LEN], struct sfs_raw_block *raw);
/* Decompress into OUT (lsize bytes) and verify.  -EIO on mismatch. */
int sfs_block_decode(struct sfs_codec_ctx *cc, const struct sfs_raw_block *raw,
                     void *out);
/*
 * sfs_block_decode, and on success RAW marked verified: its bytes decode to
 * RAW->hash, and sfs_block_put_raw_w stores them without decoding them
 * again (so a caller can check blocks on threads other than the writer's).
 * Whoever changes the bytes or the hash of a verified block clears the mark.
 */
int sfs_block_verify(struct sfs_codec_ctx *cc, struct sfs_raw_block *raw,
                     void *out);
void sfs_raw_block_release(struct sfs_raw_block *raw);
/*
 * Take a reference to the block RAW (its stored bytes as another store's
 * sfs_block_fetch copied them), storing those bytes as they are if the
 * block is new here, after checking that they decode to RAW->hash (-EIO
 * if not; a block sfs_block_verify marked was checked already).  -ENOSPC
 * as sfs_block_ref_w.
 */
int sfs_block_put_raw_w(struct sfs_store *st, MDB_txn *txn,
                        struct sfs_codec_ctx *cc,
                        const struct sfs_raw_block *raw, bool allow_slop);

/* ---- fsmodel.c: the filesystem over versioned records ---- */

struct sfs_inode {
    uint64_t ino;
    uint32_t mode;
    uint32_t uid, gid;
    uint32_t nlink;
    uint64_t size;
    uint64_t rdev;
    int64_t atime_sec, mtime_sec, ctime_sec, btime_sec;
    uint32_t atime_nsec, mtime_nsec, ctime_nsec, btime_nsec;
    /* The qtree the inode belongs to: the inode number of the qtree's
     * directory (which holds its own number), 0 for none.  Set at creation
     * from the parent directory and never changed (links and renames
     * across qtrees are refused).  Was an always-zero `flags` field: the
     * record layout is unchanged. */
    uint64_t qtree;
    uint64_t blocks; /* 512-byte units of logical data, for st_blocks */
    /* Directories: the parent directory (for "..").  Other files: a hint,
     * the directory of the link made or moved last (it may be stale when
     * that link is gone); diff and path reports use it to name a file
     * without scanning the volume. */
    uint64_t parent;
};

int sfs_inode_get(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                  uint64_t ino, struct sfs_inode *out);
/* Write an inode.  For an inode of a qtree whose blocks grow, -EDQUOT if
 * the qtree's usage would pass its quota (see qtree.c). */
int sfs_inode_put_w(struct sfs_store *st, MDB_txn *txn,
                    const struct sfs_inode *ino);
/* Allocate a fresh object id and write its inode (nlink as given). */
int sfs_inode_create_w(struct sfs_store *st, MDB_txn *txn,
                       struct sfs_inode *ino);
/* Kill every record of an inode: extents, xattrs, the inode itself. */
int sfs_inode_destroy_w(struct sfs_store *st, MDB_txn *txn, uint64_t ino);

/* Orphans: inodes with nlink 0 still open; freed at release or mount. */
int sfs_orphan_add_w(struct sfs_store *st, MDB_txn *txn, uint64_t ino);
int sfs_orphan_del_w(struct sfs_store *st, MDB_txn *txn, uint64_t ino);
/* Destroy every orphan (crash recovery at mount). Returns the count. */
int sfs_orphans_reap_w(struct sfs_store *st, MDB_txn *txn);

struct sfs_dirent {
    uint64_t ino;
    uint32_t type; /* DT_* */
    uint64_t cookie; /* stable readdir position of this entry */
    char name[SFS_NAME_MAX + 1];
};
int sfs_dirent_lookup(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                      uint64_t dir, const char *name, struct sfs_dirent *out);
int sfs_dirent_add_w(struct sfs_store *st, MDB_txn *txn, uint64_t dir,
                     const char *name, uint64_t ino, uint32_t type);
int sfs_dirent_remove_w(struct sfs_store *st, MDB_txn *txn, uint64_t dir,
                        const char *name);
/* Is directory DIR empty in VIEW?  1 yes, 0 no, <0 error. */
int sfs_dir_is_empty(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                     uint64_t dir);
/* Entries with cookie > AFTER, in cookie order; cb returns 1 to stop. */
typedef int (*sfs_dirent_cb)(void *arg, const struct sfs_dirent *d);
int sfs_dir_list(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                 uint64_t dir, uint64_t after, sfs_dirent_cb cb, void *arg);

/* Xattrs.  get: returns the value length (copied up to CAP bytes into
 * BUF when BUF is non-NULL), -ENODATA, -ERANGE if CAP is too small. */
int sfs_xattr_get(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                  uint64_t ino, const char *name, void *buf, size_t cap);
/* flags: XATTR_CREATE / XATTR_REPLACE semantics. */
int sfs_xattr_set_w(struct sfs_store *st, MDB_txn *txn, uint64_t ino,
                    const char *name, const void *val, size_t len, int flags);
int sfs_xattr_remove_w(struct sfs_store *st, MDB_txn *txn, uint64_t ino,
                       const char *name);
/* NUL-separated names; returns the total length, -ERANGE if CAP small. */
int sfs_xattr_list(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                   uint64_t ino, char *buf, size_t cap);

/*
 * File data, one block at a time.  blockno is offset / block_size.
 * An absent extent is a hole.
 */
struct sfs_extent {
    bool present;
    bool is_inline;
    uint32_t lsize;
    struct sfs_blockref ref;     /* when !is_inline */
    const uint8_t *inline_data;  /* when is_inline: points into the map */
    uint8_t inline_sum[8];
};
int sfs_extent_get(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                   uint64_t ino, uint64_t blockno, struct sfs_extent *out);
/* Point block BLOCKNO of INO at PB (taking a reference, dropping the old
 * one).  A zero-length or all-zero block becomes a hole. */
int sfs_extent_set_w(struct sfs_store *st, MDB_txn *txn, uint64_t ino,
                     uint64_t blockno, struct sfs_prepared_block *pb,
                     const void *plain, bool allow_slop);
int sfs_extent_punch_w(struct sfs_store *st, MDB_txn *txn, uint64_t ino,
                       uint64_t blockno);
/* Kill every extent with blockno >= FROM. */
int sfs_extents_truncate_w(struct sfs_store *st, MDB_txn *txn, uint64_t ino,
                           uint64_t from);
/* Iterate extents of INO in VIEW from block FROM on. */
typedef int (*sfs_extent_cb)(void *arg, uint64_t blockno,
                             const struct sfs_extent *e);
int sfs_extent_scan(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                    uint64_t ino, uint64_t from, sfs_extent_cb cb, void *arg);

/*
 * Records read raw: a flat table of one view's records (a key as above,
 * its version's payload as value: what a replication stream's puts
 * carry), read without a store - the vault's mount keeps each snapshot's
 * records so.  Keys are made and values decoded here, so that the layouts
 * stay fsmodel.c's.  Decoders answer -EIO for a malformed record.
 */
/* The 9 bytes every record of KIND about object ID starts with (the
 * entries of directory ID, the xattrs or extents of inode ID). */
size_t sfs_rec_prefix(uint8_t k[9], uint8_t kind, uint64_t id);
size_t sfs_rec_inode_key(uint8_t k[9], uint64_t ino);
/* -ENAMETOOLONG */
int sfs_rec_dirent_key(uint8_t k[SFS_KEY_MAX], uint64_t dir,
                       const char *name);
/* The first key (17 bytes) an entry of DIR with cookie > AFTER can
 * have; 0 when no entry can follow AFTER. */
size_t sfs_rec_dirent_start(uint8_t k[17], uint64_t dir, uint64_t after);
/* -ERANGE (a name longer than an xattr's) */
int sfs_rec_xattr_key(uint8_t k[SFS_KEY_MAX], uint64_t ino,
                      const char *name);
size_t sfs_rec_extent_key(uint8_t k[17], uint64_t ino, uint64_t blockno);
int sfs_rec_inode_decode(const MDB_val *val, struct sfs_inode *out);
int sfs_rec_dirent_decode(const MDB_val *key, const MDB_val *val,
                          struct sfs_dirent *out);
/* An extent record: its block number and the extent, as sfs_extent_get
 * gives it (inline_data points into VAL). */
int sfs_rec_extent_decode(const MDB_val *key, const MDB_val *val,
                          uint64_t *blockno, struct sfs_extent *out);
/* An xattr record: its name (into KEY) and its value, inline (BYTES, LEN
 * point into VAL) or in a block (REF). */
struct sfs_xattr_rec {
    const char *name;
    bool in_block;
    const uint8_t *bytes;
    size_t len;
    struct sfs_blockref ref;
};
int sfs_rec_xattr_decode(const MDB_val *key, const MDB_val *val,
                         struct sfs_xattr_rec *out);
/* Inline extent data checked against its checksum: 0 or -EIO. */
int sfs_extent_inline_check(const struct sfs_extent *e);
/* An inode's attributes as stat(2) gives them, numbered ST_INO. */
struct stat;
void sfs_inode_stat(const struct sfs_inode *i, uint64_t st_ino,
                    uint32_t block_size, struct stat *s);

/* ---- restore.c: rollback, restoring a path, cloning ---- */

/*
 * sfs_rollback_w - make the live tree read exactly as the snapshot at
 * EPOCH does, keeping every snapshot (older and newer) as it was.  The
 * changed records are written as ordinary new versions at the current
 * epoch; the cost is in proportion to the change since EPOCH.  The
 * orphans table is brought in line (inodes gone or linked again leave it,
 * the snapshot's unlinked inodes join it).  OUT (may be NULL) counts the
 * records put back and the records removed.
 */
struct sfs_rollback_stats {
    uint64_t restored; /* records given back the snapshot's version */
    uint64_t removed;  /* records the snapshot did not have */
};
int sfs_rollback_w(struct sfs_store *st, MDB_txn *txn, uint64_t epoch,
                   struct sfs_rollback_stats *out);

/*
 * sfs_path_lookup - resolve PATH ("/a/b" or "a/b"; "/" or "" is the root)
 * in VIEW.  Sets *INO, and *DIR and LEAF (SFS_NAME_MAX + 1 bytes) to the
 * directory holding the last component and its name (the root: itself,
 * ""); either may be NULL.  Returns 0; -ENOENT if the last component is
 * missing (*DIR and LEAF are still set); -ENOTDIR or -ENOENT (with *DIR
 * set to 0) if a directory on the way is not one or is missing;
 * -ENAMETOOLONG.
 */
int sfs_path_lookup(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                    const char *path, uint64_t *ino, uint64_t *dir,
                    char *leaf);

/*
 * sfs_restore_path_w - copy the object at PATH in VIEW (a file, or a
 * directory with everything under it) into the live tree at DEST, with
 * mode, owner, times, rdev and xattrs (so ACLs); the copies share their
 * blocks with the snapshot (no data is copied); hard links inside a
 * copied directory stay hard links.  If DEST does not exist it is created
 * (new inode numbers; its parent must be a directory).  If DEST is a
 * regular file and PATH is one, DEST is overwritten in place: same inode,
 * so other links and open files see the restored contents.
 * Errors: -ENOENT (PATH not in VIEW, or DEST's parent missing: see
 * sfs_path_lookup), -ENOTDIR, -EISDIR (DEST is a directory), -EEXIST
 * (DEST exists and is not a regular file, or PATH is not one), -EINVAL
 * (DEST is the root), -ENOSPC.  OUT (may be NULL): objects copied, and
 * whether DEST was overwritten in place.
 */
struct sfs_restore_stats {
    uint64_t objects;
    bool in_place;
};
int sfs_restore_path_w(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                       const char *path, const char *dest,
                       struct sfs_restore_stats *out);

/*
 * Cloning: copying every record that the snapshot at VIEW of SRC sees into
 * the live tree of DST (a new store), keeping object ids, and each block
 * they refer to as its stored bytes (verified).  The caller runs it in
 * steps, each under a read transaction of SRC and a write transaction of
 * DST, and may renew or commit those between steps.
 */
struct sfs_clone_cursor {
    int kind;                      /* index of the record kind in progress */
    uint8_t last[SFS_KEY_MAX + 1]; /* the last key copied of that kind */
    size_t last_len;               /* 0: none yet */
    uint64_t records, inodes, block_bytes; /* copied so far */
};
/* Copy records until about MAX_BYTES of blocks were stored or MAX_RECORDS
 * records copied.  Returns 1 when everything is copied, 0 if there is
 * more, or a negative errno (-EIO: a damaged block in SRC). */
int sfs_clone_step(struct sfs_store *src, MDB_txn *stxn, uint64_t view,
                   struct sfs_store *dst, MDB_txn *dtxn,
                   struct sfs_codec_ctx *cc, struct sfs_clone_cursor *cur,
                   uint64_t max_bytes, uint64_t max_records);

/* ---- stream.c: replication streams (send and receive) ---- */

/*
 * A replication stream carries one snapshot of a volume, whole or as the
 * change from an older snapshot of the same volume (see the theory in
 * stream.c).  A sender walks the source under short read transactions; a
 * receiver applies it to a destination in batches, each ending at a
 * checkpoint the stream carries, and takes the snapshot in the last one:
 * the destination's newest snapshot is always a complete one, and an
 * interrupted receive resumes at its last checkpoint.
 */
#define SFS_STREAM_VERSION 1

/* A point in a stream: the sender's walk position after some record. */
struct sfs_stream_pos {
    uint32_t phase;                    /* walk phase, from 0 */
    uint32_t len;                      /* bytes of key; 0: phase start */
    uint8_t key[SFS_KEY_MAX + 16];     /* the last record or index row */
    uint64_t records;                  /* records carried before it */
    uint64_t bytes;                    /* stream bytes before it */
};

struct sfs_stream_hdr {
    uint32_t version;
    uint32_t layout;        /* record layout signature (architecture) */
    uint8_t src_uuid[16];   /* the source volume */
    uint32_t block_size;
    uint64_t from_epoch;    /* 0: a full stream */
    uint64_t to_epoch;
    int64_t to_ctime_sec;
    uint32_t to_ctime_nsec;
    uint64_t next_ino;      /* the source's next object id */
    char from_name[SFS_NAME_MAX + 1];
    char to_name[SFS_NAME_MAX + 1];
    struct sfs_stream_pos start; /* a resumed stream starts here */
};

struct sfs_stream_stats {
    uint64_t bytes;       /* stream bytes written or read */
    uint64_t records;     /* records put */
    uint64_t kills;       /* records removed */
    uint64_t blocks;      /* blocks carried */
    uint64_t block_bytes; /* their stored bytes */
    uint64_t pruned;      /* snapshots deleted by retention (receiver) */
};

/* Write exactly LEN bytes: 0 or a negative errno. */
typedef int (*sfs_stream_write_fn)(void *arg, const void *buf, size_t len);
/* Read exactly LEN bytes: 0; -ENODATA at end of input before the first
 * byte; -EPIPE at end of input after some; or a negative errno. */
typedef int (*sfs_stream_read_fn)(void *arg, void *buf, size_t len);

struct sfs_sender;
/*
 * sfs_send_new - start the stream of the snapshot at TO_EPOCH, whole
 * (FROM_EPOCH 0) or from the older snapshot at FROM_EPOCH, from RESUME
 * (NULL: the beginning) on.  Writes the header.  The caller keeps both
 * snapshots from being deleted until the stream ends.  Sets the
 * process's access advice for ST (sfs_advise_access) to suit the stream.
 * Errors: -ENOENT (no snapshot at an epoch), -EINVAL (FROM not older than
 * TO), and those of WRITE.
 */
int sfs_send_new(struct sfs_store *st, MDB_txn *txn, uint64_t from_epoch,
                 uint64_t to_epoch, const struct sfs_stream_pos *resume,
                 sfs_stream_write_fn write, void *arg,
                 struct sfs_sender **out);
/* Send up to MAX_RECORDS more records and a checkpoint, under TXN (any
 * read transaction; it may be renewed between steps).  1 when the stream
 * is complete, 0 if there is more, or a negative errno. */
int sfs_send_step(struct sfs_sender *s, MDB_txn *txn, uint64_t max_records);
/*
 * Retention a mirror relationship asks of its destination, carried by the
 * stream ('R' frame, just before its end) and applied by the receiver in
 * the transaction that takes the snapshot, to the snapshots received from
 * the same source (never the new one, never a held one):
 *   - a snapshot whose label (its name up to the first '.') has a rule
 *     is kept if it is among the KEEP newest received with that label;
 *   - any other is kept under MIRROR and MIRROR_VAULT while the source
 *     still has it (SOURCE_EPOCHS: the source's snapshots when the stream
 *     was made), and not kept under VAULT.
 */
enum sfs_retention_kind { SFS_KEEP_MIRROR = 1, SFS_KEEP_VAULT = 2,
                          SFS_KEEP_MIRROR_VAULT = 3 };
#define SFS_RETENTION_RULES_MAX 16
#define SFS_RETENTION_SOURCE_MAX 65536
struct sfs_keep_rule {
    char label[SFS_NAME_MAX + 1];
    uint32_t keep;          /* >= 1 */
};
struct sfs_retention {
    uint8_t kind;
    uint32_t nrules;
    struct sfs_keep_rule rules[SFS_RETENTION_RULES_MAX];
    uint32_t nsource;
    const uint64_t *source_epochs;
};
/* Carry RET (copied; NULL: none) at the end of the stream: -EINVAL if it
 * has no kind, too many rules or source snapshots, -ENOMEM. */
int sfs_send_set_retention(struct sfs_sender *s,
                           const struct sfs_retention *ret);

/* Puts never carry block bytes, only the records (which name their
 * blocks by SHA-256): for a caller that keeps the blocks itself (the
 * vault).  A receiver of such a stream needs a block source
 * (sfs_recv_set_block_source). */
void sfs_send_omit_blocks(struct sfs_sender *s);

void sfs_send_stats(const struct sfs_sender *s, struct sfs_stream_stats *out);
void sfs_send_free(struct sfs_sender *s);

/*
 * Streams kept in another form.  The vault stores a stream's records
 * apart from its blocks (each block once, under a keyed name) and, to
 * restore, writes a stream of its own that a receiver applies with the
 * blocks coming from a block source.
 */
enum { SFS_FRAME_HEADER = 'H', SFS_FRAME_PUT = 'P', SFS_FRAME_KILL = 'K',
       SFS_FRAME_CHECKPOINT = 'C', SFS_FRAME_RETENTION = 'R',
       SFS_FRAME_END = 'Z' };
struct sfs_stream_frame {
    uint8_t type;                 /* SFS_FRAME_* */
    const uint8_t *payload;       /* the whole payload (all types) */
    size_t plen;
    const uint8_t *key;           /* put, kill */
    size_t klen;
    const uint8_t *val;           /* put: the record's value */
    size_t vlen;
    bool blockref;                /* put: the record refers to a block, */
    uint8_t hash[SFS_HASH_LEN];   /* this one (SHA-256 of its bytes) */
    bool carried;                 /* put: the frame carries the block's */
    struct sfs_raw_block raw;     /* stored bytes (pointing into FRAME) */
};
/* Parse the frame of LEN bytes at FRAME (LEN: sfs_stream_frame_size of
 * its first 8 bytes), checking its checksum and, for puts and kills, the
 * shape a receiver checks.  Pointers point into FRAME.  0 or -EBADMSG. */
int sfs_stream_frame_parse(const void *frame, size_t len,
                           struct sfs_stream_frame *out);
/* The contents of a header frame: 0, -EBADMSG, or -EPROTONOSUPPORT
 * (another stream version or record layout). */
int sfs_stream_header_parse(const struct sfs_stream_frame *f,
                            struct sfs_stream_hdr *out);
/* The counts of an end frame (records put, killed): 0 or -EBADMSG. */
int sfs_stream_end_parse(const struct sfs_stream_frame *f, uint64_t *puts,
                         uint64_t *kills);

/*
 * A stream written record by record (no block bytes: its receiver has a
 * block source).  new writes the header HDR (its version, layout and
 * start are set here); put and kill write a record (-EINVAL for a key or
 * value larger than a stream carries), with a checkpoint every 256
 * records so that the receiver commits in bounded batches; end
 * writes the end frame.  Errors are WRITE's, or -ENOMEM.
 */
struct sfs_stream_writer;
int sfs_stream_writer_new(const struct sfs_stream_hdr *hdr,
                          sfs_stream_write_fn write, void *arg,
                          struct sfs_stream_writer **out);
int sfs_stream_writer_put(struct sfs_stream_writer *w, const void *key,
                          size_t klen, const void *val, size_t vlen);
int sfs_stream_writer_kill(struct sfs_stream_writer *w, const void *key,
                           size_t klen);
int sfs_stream_writer_end(struct sfs_stream_writer *w);
void sfs_stream_writer_free(struct sfs_stream_writer *w);

struct sfs_receiver;
/*
 * sfs_recv_new - read a stream's header.  -ENODATA if the input ended
 * before it (no more streams), -EBADMSG (not a stream, or damaged),
 * -EPROTONOSUPPORT (another version or record layout), -EPIPE.
 */
int sfs_recv_new(sfs_stream_read_fn read, void *arg, struct sfs_receiver **out);
const struct sfs_stream_hdr *sfs_recv_header(const struct sfs_receiver *r);
/*
 * sfs_recv_begin_w - check that the stream applies to ST and prepare: a
 * partial receive of the same stream continues at its checkpoint; one of
 * another stream is rolled back.  Errors (sfs_recv_why says more):
 *   -EXDEV     the stream is of another volume than ST follows
 *   -ENOENT    ST lacks the stream's base snapshot
 *   -ESTALE    ST has diverged: changed, or snapshots newer than the base
 *   -EALREADY  ST has the stream's snapshot already
 *   -EEXIST    a full stream into a volume that is not empty
 *   -EINVAL    another block size
 *   -EBUSY     ST holds part of another full stream, or the resume
 *              point does not match what ST applied
 */
int sfs_recv_begin_w(struct sfs_store *st, MDB_txn *txn,
                     struct sfs_receiver *r);
/*
 * Apply the stream until about MAX_BYTES were read and a checkpoint came
 * (0: the caller commits TXN, and calls again), or to its end, where the
 * snapshot is taken (1: commit).  -EBADMSG (damaged: sfs_recv_why names
 * the byte offset), -EPIPE (truncated), -EIO (a block that does not
 * decode to its hash), -ENOSPC, or an error of READ.
 */
int sfs_recv_step_w(struct sfs_store *st, MDB_txn *txn,
                    struct sfs_receiver *r, struct sfs_codec_ctx *cc,
                    uint64_t max_bytes);
/*
 * How a receiver may treat a destination that the stream's checks refuse
 * (set before sfs_recv_begin_w):
 *   SFS_RECV_RESYNC  an incremental stream into a destination that was
 *                    broken off or has diverged goes back to the received
 *                    snapshot that is the stream's base first
 *                    (sfs_recv_resync_w: newer snapshots and later changes
 *                    are discarded);
 *   SFS_RECV_ADOPT   reverse resync: the destination is the stream's
 *                    source's old source; its own snapshot at ADOPT_EPOCH,
 *                    which must carry the base's name, becomes the base
 *                    (sfs_recv_adopt_w).
 */
enum { SFS_RECV_RESYNC = 1, SFS_RECV_ADOPT = 2 };
void sfs_recv_set_mode(struct sfs_receiver *r, unsigned mode,
                       uint64_t adopt_epoch);
/*
 * sfs_stream_frame_size - the whole size (header, payload, checksum) of
 * the stream frame whose first 8 bytes are HDR; 0 if HDR is not a frame
 * header.  (For readers that look ahead: see sfs_recv_touch.)
 */
size_t sfs_stream_frame_size(const uint8_t hdr[8]);
/*
 * sfs_recv_touch - read into ST's page cache what applying the frame
 * whose first LEN bytes are at FRAME will look up (for a record, up to
 * its value: the first 4 KiB of a frame are always enough), so that the
 * receiver, coming later, does not wait for those reads.  For helper
 * threads of a receive that reads its stream ahead, each in a read-only
 * transaction TXN of its own.  Advice only: a frame it cannot parse is
 * ignored (the receiver checks everything).
 */
#define SFS_RECV_TOUCH_BYTES 4096
void sfs_recv_touch(struct sfs_store *st, MDB_txn *txn, const void *frame,
                    size_t len);
/*
 * sfs_recv_hold_back - with HOLD_BACK, the snapshot the stream carries is
 * taken but not exposed: sfs_recv_published keeps answering what it did
 * before the first held-back receive, until sfs_recv_publish_w.  Without,
 * receiving the snapshot publishes everything held back.  (Consistency
 * groups: see "Held back" in stream.c.)
 */
void sfs_recv_hold_back(struct sfs_receiver *r, bool hold_back);
/* Read the rest of the stream (and nothing of it twice) through READ. */
void sfs_recv_set_reader(struct sfs_receiver *r, sfs_stream_read_fn read,
                         void *arg);
/*
 * Blocks a stream does not carry: for a record whose block ST lacks, the
 * receiver calls FN, which fills RAW (bytes malloc'd; the receiver
 * releases them) with the stored form of the block whose SHA-256 is HASH.
 * The bytes are checked against HASH before they are stored (-EIO; FN
 * may have checked them already on a thread of its own: sfs_block_verify),
 * and
 * count toward sfs_recv_step_w's MAX_BYTES as the stream's own do.  FN
 * returns 0 or a negative errno, which ends the receive (sfs_recv_why
 * then says nothing: FN's caller knows why).
 */
typedef int (*sfs_block_source_fn)(void *arg, const uint8_t hash[SFS_HASH_LEN],
                                   struct sfs_raw_block *raw);
void sfs_recv_set_block_source(struct sfs_receiver *r, sfs_block_source_fn fn,
                               void *arg);
const char *sfs_recv_why(const struct sfs_receiver *r);
void sfs_recv_stats(const struct sfs_receiver *r, struct sfs_stream_stats *out);
void sfs_recv_free(struct sfs_receiver *r);

/* What a destination knows of its source (meta "recv/..."). */
struct sfs_recv_state {
    bool follows;           /* received a full stream: has a source */
    bool writable;          /* broken off: clients may write */
    bool partial;           /* holds an unfinished receive */
    bool held_back;         /* received snapshots wait to be published */
    uint64_t published;     /* the snapshot exposed (0: none) */
    uint8_t src_uuid[16];
    uint64_t partial_from, partial_to;   /* its source epochs */
    struct sfs_stream_pos partial_pos;   /* where it resumes */
};
int sfs_recv_state(struct sfs_store *st, MDB_txn *txn,
                   struct sfs_recv_state *out);
/* The source epoch of the received snapshot at (destination) EPOCH:
 * 0, or -ENOENT (not a received snapshot). */
int sfs_recv_source_epoch(struct sfs_store *st, MDB_txn *txn, uint64_t epoch,
                          uint64_t *src_epoch);
/* The destination snapshot received as source epoch SRC_EPOCH. */
int sfs_recv_find(struct sfs_store *st, MDB_txn *txn, uint64_t src_epoch,
                  struct sfs_snap_rec *out);
/* Discard an unfinished receive: the live tree goes back to the newest
 * snapshot (-EBUSY if it was a full stream: nothing to go back to). */
int sfs_recv_abort_w(struct sfs_store *st, MDB_txn *txn);
/* The snapshot a following volume exposes to clients: its newest, or
 * while snapshots are held back the one exposed before (0: none). */
int sfs_recv_published(struct sfs_store *st, MDB_txn *txn, uint64_t *epoch);
/* Expose the snapshots held back (sfs_recv_hold_back): 0 also when none
 * are. */
int sfs_recv_publish_w(struct sfs_store *st, MDB_txn *txn);
/* Break: discard an unfinished receive and let clients write.  Snapshots
 * held back are discarded too: the volume goes back to the one it
 * exposed (-ENOMSG if it never exposed one: a held-back baseline). */
int sfs_recv_break_w(struct sfs_store *st, MDB_txn *txn);
/* Follow the source again from the received snapshot at EPOCH: delete
 * every newer snapshot (-EBUSY if one is held), roll the live tree back
 * to EPOCH and make it read-only again. */
int sfs_recv_resync_w(struct sfs_store *st, MDB_txn *txn, uint64_t epoch);
/* Make ST follow the volume SRC_UUID from its snapshot at EPOCH, which
 * the source holds as source epoch SRC_EPOCH (reverse resync: the old
 * source follows the old destination). */
int sfs_recv_adopt_w(struct sfs_store *st, MDB_txn *txn,
                     const uint8_t src_uuid[16], uint64_t epoch,
                     uint64_t src_epoch);
/* Forget the source: an ordinary, writable volume. */
int sfs_recv_forget_w(struct sfs_store *st, MDB_txn *txn);

/* Has the live tree changed since the newest snapshot?  1, 0, or a
 * negative errno. */
int sfs_live_changed(struct sfs_store *st, MDB_txn *txn);

/* Is ST empty (no snapshots, an empty root, nothing else), so that a
 * full stream may go into it?  1 yes, 0 no, or a negative errno. */
int sfs_volume_is_empty(struct sfs_store *st, MDB_txn *txn);

/* A resume point as one word of hex ("token"), and back (-EINVAL). */
#define SFS_STREAM_TOKEN_MAX 1024
void sfs_stream_token_format(const struct sfs_recv_state *s, char *out);
int sfs_stream_token_parse(const char *text, uint8_t src_uuid[16],
                           uint64_t *from_epoch, uint64_t *to_epoch,
                           struct sfs_stream_pos *pos);

/* ---- diff.c: what changed between two views ---- */

/*
 * sfs_diff - the paths created ('+'), deleted ('-'), modified ('M') and
 * renamed ('R', PATH -> NEW_PATH) between the snapshot at EPOCH_A and the
 * later view VIEW_B (a snapshot epoch or SFS_VIEW_LIVE), sorted by PATH.
 * Paths are raw bytes from the volume root ("/a/b"; "/" is the root).  The
 * cost follows the change, not the volume (see the theory in diff.c).  CB
 * returns 0 to go on, 1 to stop, or a negative errno, which is returned.
 * -EINVAL unless EPOCH_A is older than VIEW_B.  STATS (may be NULL) tells
 * what was read: index rows, keys compared, directory entries.
 */
struct sfs_diff_stats {
    uint64_t index_rows; /* born and dead rows of the interval */
    uint64_t keys;       /* distinct record keys compared */
    uint64_t entries;    /* directory entries read to name paths */
};
typedef int (*sfs_diff_cb)(void *arg, char change, uint64_t ino,
                           const char *path, const char *new_path);
int sfs_diff(struct sfs_store *st, MDB_txn *txn, uint64_t epoch_a,
             uint64_t view_b, sfs_diff_cb cb, void *arg,
             struct sfs_diff_stats *stats);
/*
 * sfs_diff_blocks_born - into *BLOCKS, how many block versions (extent
 * records) were born in (EPOCH_A, VIEW_B]: what an incremental stream from
 * A to B carries, known before it is sent (for a progress's time left).
 * An estimate from above: versions an intermediate snapshot kept count
 * too, and tails shorter than a block count whole.  The cost is the rows
 * of the interval in the born index, as sfs_diff's first step.  Errors:
 * -EINVAL (EPOCH_A not older than VIEW_B), -EIO (LMDB).
 */
int sfs_diff_blocks_born(struct sfs_store *st, MDB_txn *txn, uint64_t epoch_a,
                         uint64_t view_b, uint64_t *blocks);
/* PATH with space, tab, newline, backslash and bytes outside printable
 * ASCII as \ooo (octal), as zfs diff writes them. */
void sfs_diff_escape(FILE *out, const char *path);
/* One change as a line: "C<tab>PATH" or "R<tab>OLD -> NEW", escaped. */
void sfs_diff_line_format(FILE *out, char change, const char *path,
                          const char *new_path);
/* Every change as a line, then "examined<tab>ROWS<tab>KEYS<tab>ENTRIES"
 * (the control socket's reply to snapshot-diff). */
int sfs_diff_write(struct sfs_store *st, MDB_txn *txn, uint64_t epoch_a,
                   uint64_t view_b, FILE *out);
int sfs_diff_stats_parse(const char *line, struct sfs_diff_stats *s);

/* ---- dumpmeta.c: dump dates and restartable dump contexts ---- */

#define SFS_DUMP_PATH_MAX 1023
#define SFS_DUMP_LEVEL_MAX 31
/* 0 if PATH ("/" or "/a/b") may name what a dump covers; -EINVAL. */
int sfs_dump_path_valid(const char *path);

/* The last dump of PATH at LEVEL (the increment chains). */
struct sfs_dumpdate {
    char path[SFS_DUMP_PATH_MAX + 1];
    char snapshot[SFS_NAME_MAX + 1];  /* the snapshot it dumped */
    int32_t level;
    int64_t date;                     /* the dump's date (c_date) */
    uint64_t epoch;                   /* the dumped snapshot's epoch */
};
/* Record D, replacing the record of its path and level.  -EINVAL. */
int sfs_dumpdate_put_w(struct sfs_store *st, MDB_txn *txn,
                       const struct sfs_dumpdate *d);
typedef int (*sfs_dumpdate_cb)(void *arg, const struct sfs_dumpdate *d);
/* Every record, by path then level.  CB: 0 go on, 1 stop, <0 error. */
int sfs_dumpdate_foreach(struct sfs_store *st, MDB_txn *txn,
                         sfs_dumpdate_cb cb, void *arg);
/* The base of a level-LEVEL dump of PATH: the most recent dump of PATH
 * at a lower level.  -ENOENT if there is none. */
int sfs_dumpdate_base(struct sfs_store *st, MDB_txn *txn, const char *path,
                      int level, struct sfs_dumpdate *out);

/* A dump in progress, or interrupted and restartable. */
enum { SFS_DUMP_PHASE_DIRS = 0, SFS_DUMP_PHASE_FILES = 1 };
struct sfs_dumpctx {
    uint32_t id;
    int32_t pid;              /* the process writing it now, or last */
    int32_t level;
    int32_t base_level;       /* -1: a full dump */
    int64_t created, updated; /* seconds since the epoch */
    int64_t date, ddate;      /* c_date, and the base dump's date or 0 */
    uint64_t epoch, base_epoch;
    uint32_t phase;           /* SFS_DUMP_PHASE_* reached on the output */
    uint32_t next_ino;        /* restart at this dump inode (files phase) */
    uint32_t parts;           /* parts written so far */
    uint32_t ntrec;
    uint64_t files, bytes;    /* written and safely out, all parts */
    uint8_t auto_snapshot;    /* the dump created its snapshot */
    char snapshot[SFS_NAME_MAX + 1];
    char path[SFS_DUMP_PATH_MAX + 1];
    char label[16];
};
/*
 * Start a dump: C->path, level, label, ntrec, pid, created and either
 * C->snapshot or C->auto_snapshot are given.  In one transaction: picks
 * the id, creates snapshot_for_backup.N when auto_snapshot (N the
 * snapshot's id, never reused; the next free N above it if that name
 * was taken by hand), holds the snapshot with tag "dump:ID", finds the
 * base in the dump dates (ddate, base_epoch, base_level), and records the
 * context.
 * Errors: -EINVAL (path or level), -ENOENT (no such snapshot), -EEXIST,
 * -ENOSPC (no snapshot name free), and those of sfs_snap_take_w.
 */
int sfs_dump_begin_w(struct sfs_store *st, MDB_txn *txn,
                     struct sfs_dumpctx *c);
int sfs_dumpctx_get(struct sfs_store *st, MDB_txn *txn, uint32_t id,
                    struct sfs_dumpctx *out);
/* Replace the context C->id (progress). */
int sfs_dumpctx_put_w(struct sfs_store *st, MDB_txn *txn,
                      const struct sfs_dumpctx *c);
typedef int (*sfs_dumpctx_cb)(void *arg, const struct sfs_dumpctx *c);
int sfs_dumpctx_foreach(struct sfs_store *st, MDB_txn *txn, sfs_dumpctx_cb cb,
                        void *arg);
/* End the dump ID: release its hold, delete the snapshot it created (kept
 * if someone else holds it), remove the context and, when RECORD_DATE,
 * record its dump date.  -ENOENT if there is no such context. */
int sfs_dump_finish_w(struct sfs_store *st, MDB_txn *txn, uint32_t id,
                      bool record_date);
/* Abandon the context ID, as sfs_dump_finish_w without the date. */
int sfs_dumpctx_delete_w(struct sfs_store *st, MDB_txn *txn, uint32_t id);

/* A context as one word of lowercase hex (the control socket's form):
 * OUT holds 2 * sizeof(*c) + 1 bytes.  parse: 0 or -EINVAL. */
void sfs_dumpctx_to_hex(const struct sfs_dumpctx *c, char *out);
int sfs_dumpctx_from_hex(const char *hex, struct sfs_dumpctx *c);

/*
 * The birth epoch of INO's inode record as VIEW sees it: every change of
 * an object (data, attributes, entries of a directory) writes a new
 * inode version, so "changed after epoch E" is "birth > E".
 */
int sfs_inode_birth(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                    uint64_t ino, uint64_t *birth);
/* ---- qtree.c: qtrees (directories at the root with a quota) ---- */

/*
 * A qtree is a directory at the volume root marked by the xattr
 * SFS_QTREE_XATTR, whose value is the text "style=STYLE quota=BYTES"
 * (quota 0: none).  Its id is the directory's inode number; every inode
 * under it carries that number in sfs_inode.qtree (the directory too).
 * The store keeps each qtree's usage (the sum of blocks * 512 of its
 * inodes, as du counts) in `meta`, updated in the transaction of every
 * change of an inode record, whatever makes it (writes, deletes,
 * rollback, clones); sfs_inode_put_w refuses growth past the quota with
 * -EDQUOT.  Rollback and clones are not refused: they restore a state.
 */
#define SFS_QTREE_XATTR "trusted.snapfs.qtree"
#define SFS_QTREE_TEXT_MAX 64
enum sfs_qtree_style { SFS_QTREE_UNIX = 0, SFS_QTREE_NTFS, SFS_QTREE_MIXED };

struct sfs_qtree_info {
    uint64_t ino;                /* the qtree's id: its directory */
    char name[SFS_NAME_MAX + 1]; /* its name at the root ("" if unknown) */
    uint32_t style;              /* enum sfs_qtree_style */
    uint64_t quota_bytes;        /* 0: no quota */
    uint64_t used_bytes;         /* live usage (0 in a snapshot's view) */
};

/* "unix", "ntfs", "mixed"; NULL for an unknown style. */
const char *sfs_qtree_style_name(uint32_t style);
/* 0 and *OUT set, or -EINVAL for an unknown style name. */
int sfs_qtree_style_parse(const char *text, uint32_t *out);
/* 0 if NAME may name a qtree: 1-255 bytes, no '/' or control characters
 * (the control protocol is tab-separated lines), not ".", ".." or
 * ".snapshot"; else -EINVAL. */
int sfs_qtree_name_valid(const char *name);
/* The xattr text of INFO's style and quota into BUF (NUL-terminated);
 * returns its length, -EINVAL (unknown style), -ERANGE (CAP too small). */
int sfs_qtree_format(const struct sfs_qtree_info *info, char *buf, size_t cap);
/* Parse LEN bytes of xattr text into OUT's style and quota (other fields
 * untouched).  Words are KEY=VALUE separated by spaces; style and quota
 * must appear once each; unknown keys are ignored (later versions may add
 * some).  -EINVAL if the text is not a qtree description. */
int sfs_qtree_parse(const char *text, size_t len, struct sfs_qtree_info *out);

/*
 * sfs_qtree_get - the qtree whose directory is DIR_INO, as VIEW sees it
 * (name left "": a directory does not know its name).  Errors: -ENOENT
 * (no such inode, or not a qtree), -EIO (a description that does not
 * parse, logged as corruption), LMDB-derived errnos.
 */
int sfs_qtree_get(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                  uint64_t dir_ino, struct sfs_qtree_info *out);
/* The qtree named NAME at the root in VIEW, name filled in.  -ENOENT (no
 * such entry, or not a qtree), -EINVAL (a bad name), -EIO. */
int sfs_qtree_find(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                   const char *name, struct sfs_qtree_info *out);
typedef int (*sfs_qtree_cb)(void *arg, const struct sfs_qtree_info *q);
/* Every qtree at the root of VIEW (in directory order); CB returns 0 to
 * go on, 1 to stop, or a negative errno, which is returned. */
int sfs_qtree_list(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                   sfs_qtree_cb cb, void *arg);
/* One qtree as a tab-separated line "ID STYLE QUOTA USED NAME" (the
 * control socket's qtree-list), and back: -EINVAL if LINE is not one. */
void sfs_qtree_line_format(const struct sfs_qtree_info *q, FILE *out);
int sfs_qtree_line_parse(const char *line, struct sfs_qtree_info *q);
/* The live usage of qtree QTREE in bytes (0 when it has none). */
int sfs_qtree_used(struct sfs_store *st, MDB_txn *txn, uint64_t qtree,
                   uint64_t *out);
/* Every usage record: qtree id and bytes; CB as sfs_qtree_list's. */
typedef int (*sfs_qtree_usage_cb)(void *arg, uint64_t qtree, uint64_t bytes);
int sfs_qtree_usage_foreach(struct sfs_store *st, MDB_txn *txn,
                            sfs_qtree_usage_cb cb, void *arg);

/*
 * sfs_qtree_create_w - make directory NAME at the root (owner, group and
 * permissions those of the root) and mark it a qtree with INFO's style
 * and quota.  *INO_OUT (may be
 * NULL) gets its inode number.  Errors: -EINVAL (bad name or style),
 * -EEXIST (NAME exists at the root), -ENOSPC, -EOVERFLOW (no object ids
 * left), LMDB-derived errnos.
 */
int sfs_qtree_create_w(struct sfs_store *st, MDB_txn *txn, const char *name,
                       const struct sfs_qtree_info *info, uint64_t *ino_out);
/*
 * sfs_qtree_mark_w - make the existing empty directory DIR_INO, an entry
 * of the root, a qtree with INFO's style and quota (a dump restore puts a
 * qtree back this way).  Errors: -ENOENT (no such inode), -EINVAL (bad
 * style; not a directory; not at the root; not empty; already in a
 * qtree), -EEXIST (already a qtree), -ENOSPC, LMDB-derived errnos.
 */
int sfs_qtree_mark_w(struct sfs_store *st, MDB_txn *txn, uint64_t dir_ino,
                     const struct sfs_qtree_info *info);
/*
 * sfs_qtree_modify_w - set the style and quota of qtree DIR_INO to
 * INFO's.  A quota below the usage is allowed (NetApp's too): nothing
 * more can be written until usage falls below it.  Errors: -ENOENT (not
 * a qtree), -EINVAL (bad style), -EIO, -ENOSPC, LMDB-derived errnos.
 */
int sfs_qtree_modify_w(struct sfs_store *st, MDB_txn *txn, uint64_t dir_ino,
                       const struct sfs_qtree_info *info);
/*
 * sfs_qtree_delete_w - remove the empty qtree NAME: its entry at the root,
 * its directory and description.  Snapshots keep it.  *INO_OUT (may be
 * NULL) gets the directory's inode number.  Errors: -EINVAL (bad name),
 * -ENOENT (no such qtree), -ENOTEMPTY, LMDB-derived errnos.
 */
int sfs_qtree_delete_w(struct sfs_store *st, MDB_txn *txn, const char *name,
                       uint64_t *ino_out);

/* fsck.c */
typedef void (*sfs_fsck_report)(void *arg, const char *problem);
/* format.c, for fsck: the features record agrees with the store.
 * Returns the number of problems reported, or a negative errno. */
int sfs_format_fsck(struct sfs_store *st, MDB_txn *txn,
                    sfs_fsck_report report, void *arg);
/* Returns the number of problems found (0 = clean) or a negative errno. */
int sfs_fsck(struct sfs_store *st, sfs_fsck_report report, void *arg);

/*
 * Read and write plans.  A read or write of a byte range is split into
 * steps that need the transaction (cheap: finding extents, copying stored
 * bytes, updating records) and steps that do not (expensive: decompress,
 * verify, hash, compress), so that a daemon can run the latter outside
 * its lock and on several cores at once.
 *
 *   read:  sfs_rplan_collect (txn) -> sfs_rplan_finish (no txn)
 *   write: sfs_wplan_init -> sfs_wplan_fetch_old (txn)
 *          -> sfs_wplan_fill (no txn) -> sfs_wplan_apply (txn), which
 *          answers -EAGAIN while new blocks need compressing:
 *          sfs_wplan_compress (no txn) and apply again.
 */
struct sfs_rplan_block {
    uint64_t blockno;
    uint32_t lsize;         /* 0: hole */
    bool is_inline;
    uint8_t inline_sum[8];
    uint8_t *inline_copy;   /* malloc'd copy of inline data */
    struct sfs_raw_block raw;
};
struct sfs_rplan {
    uint64_t off;
    size_t len;             /* clipped to the file size */
    uint32_t bs;
    size_t nblocks;
    struct sfs_rplan_block *blocks;
};
int sfs_rplan_collect(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                      uint64_t ino, uint64_t file_size, uint64_t off,
                      size_t len, struct sfs_rplan *plan);
/* Decode into OUT (plan->len bytes).  -EIO on a damaged block. */
int sfs_rplan_finish(struct sfs_rplan *plan, struct sfs_codec_ctx *cc,
                     void *out);
void sfs_rplan_release(struct sfs_rplan *plan);

/* What an applied block of a write plan became (sfs_wplan_apply). */
enum sfs_stored_as {
    SFS_STORED_NOTHING = 0, /* not applied */
    SFS_STORED_HOLE,        /* all zeros: no block */
    SFS_STORED_INLINE,      /* a short tail kept in its extent record */
    SFS_STORED_DEDUP,       /* a block already stored: one more reference */
    SFS_STORED_NEW,         /* a new block (pb.csize bytes, pb.codec) */
};
struct sfs_wplan_block {
    uint64_t blockno;
    uint32_t len;           /* logical length of the new block content */
    uint32_t keep_from_old; /* bytes of old content to merge (0: none) */
    uint8_t *buf;           /* block_size bytes of new content (in plan->data) */
    struct sfs_rplan old;   /* old content of a partially written block */
    struct sfs_prepared_block pb;
    bool applied;
    uint8_t stored_as;      /* enum sfs_stored_as, set when applied */
};
struct sfs_wplan {
    uint64_t off;
    size_t len;
    uint64_t new_size;
    int64_t units_delta;    /* change of the inode's 512-byte units */
    uint32_t bs;
    size_t nblocks;
    struct sfs_wplan_block *blocks;
    uint8_t *data;          /* nblocks * bs: the blocks' new contents */
    uint8_t *cdata;         /* nblocks * compress bound, allocated lazily */
    bool reserved;          /* the caller reserved the space of its blocks
                             * (sfs_space_reserve): they are stored as
                             * SFS_SPACE_RESERVED; set after init */
};
int sfs_wplan_init(struct sfs_store *st, uint64_t file_size, uint64_t off,
                   size_t len, struct sfs_wplan *plan);
/* A plan of whole blocks (OFF and LEN multiples of the block size) that
 * hashes DATA where it is, without a copy (init and fill in one): DATA
 * must stay unchanged until the plan is released. */
int sfs_wplan_init_whole(struct sfs_store *st, uint64_t off, const void *data,
                         size_t len, struct sfs_wplan *plan);
int sfs_wplan_fetch_old(struct sfs_store *st, MDB_txn *txn, uint64_t ino,
                        uint64_t file_size, struct sfs_wplan *plan);
int sfs_wplan_fill(struct sfs_wplan *plan, struct sfs_codec_ctx *cc,
                   const void *data);
int sfs_wplan_apply(struct sfs_store *st, MDB_txn *txn, uint64_t ino,
                    struct sfs_wplan *plan);
/* Mark the blocks already stored (or inline, or holes): only the rest
 * need compressing.  Read-only; needs the transaction. */
int sfs_wplan_probe(struct sfs_store *st, MDB_txn *txn, struct sfs_wplan *plan);
int sfs_wplan_compress(struct sfs_store *st, struct sfs_codec_ctx *cc,
                       struct sfs_wplan *plan);
/* After the transaction of an apply was aborted: nothing is applied. */
void sfs_wplan_reset_applied(struct sfs_wplan *plan);
/* What an applied plan stored, by kind (for a daemon's statistics): new
 * blocks with their bytes before and after compression, blocks found
 * already stored (deduplicated), zeros left as holes, inline tails. */
struct sfs_wplan_tally {
    uint64_t new_blocks, new_logical, new_stored, new_compressed;
    uint64_t dedup_blocks, dedup_bytes;
    uint64_t zero_bytes, inline_bytes;
};
void sfs_wplan_tally(const struct sfs_wplan *plan, struct sfs_wplan_tally *t);
void sfs_wplan_release(struct sfs_wplan *plan);

/*
 * One-shot helpers for single-threaded callers (tools, tests, restore):
 * the plans above run start to end under TXN.  write updates the inode's
 * size, blocks and mtime/ctime.
 */
int sfs_file_read(struct sfs_store *st, MDB_txn *txn, struct sfs_codec_ctx *cc,
                  uint64_t view, uint64_t ino, uint64_t off, size_t len,
                  void *out, size_t *got);
int sfs_file_write_w(struct sfs_store *st, MDB_txn *txn,
                     struct sfs_codec_ctx *cc, uint64_t ino, uint64_t off,
                     const void *data, size_t len);
/* Set the size: drop blocks past it, trim the last partial block. */
int sfs_file_truncate_w(struct sfs_store *st, MDB_txn *txn,
                        struct sfs_codec_ctx *cc, struct sfs_inode *inode,
                        uint64_t size);

#endif
