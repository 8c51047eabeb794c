/*
 * internal.h - declarations shared by the store's own files only.
 */
#ifndef SNAPFS_STORE_INTERNAL_H
#define SNAPFS_STORE_INTERNAL_H

#include <string.h>

#include "store.h"

/* What a version of KEY costs in logical bytes (extent data, xattr value);
 * 0 for inodes and directory entries. */
uint64_t sfs_rec_logical_size(const MDB_val *key, const MDB_val *payload);
/* Drop the block references a version holds, as it is freed; LIVE: it
 * was the live version (else one in history). */
int sfs_rec_release_w(struct sfs_store *st, MDB_txn *txn, const MDB_val *key,
                      const MDB_val *payload, bool live);
/* The live version moves to history: its block reference stops being a
 * live one (the ledger, blocks.c). */
int sfs_rec_to_history_w(struct sfs_store *st, MDB_txn *txn,
                         const MDB_val *key, const MDB_val *payload);
/* Take the references a copy of a version holds (the reverse of
 * sfs_rec_release_w): a block reference, or the inline bytes counted. */
int sfs_rec_addref_w(struct sfs_store *st, MDB_txn *txn, const MDB_val *key,
                     const MDB_val *payload);
/* One more reference to a block that is stored; -EIO if it is not. */
int sfs_block_addref_w(struct sfs_store *st, MDB_txn *txn,
                       const uint8_t hash[SFS_HASH_LEN]);
/* Kill every live record with PREFIX (key >= START), in batches. */
int sfs_vrec_kill_prefix_w(struct sfs_store *st, MDB_txn *txn,
                           const uint8_t *prefix, size_t plen,
                           const uint8_t *start, size_t slen);
/* The block a version refers to, if any: 1 and *hash set, or 0. */
int sfs_rec_blockref(const MDB_val *key, const MDB_val *payload,
                     uint8_t hash[SFS_HASH_LEN]);
/* Read the stored block HASH's dedup record into the page cache, and with
 * BYTES start reading its bytes (asynchronously); quietly nothing if it
 * is not stored. */
void sfs_block_touch(struct sfs_store *st, MDB_txn *txn,
                     const uint8_t hash[SFS_HASH_LEN], bool bytes);
/* Read into the page cache what replacing or killing the live version of
 * KEY looks up: the live version, its block's dedup record, and the place
 * of KEY in the history table.  Advice only: errors are ignored. */
void sfs_vrec_touch(struct sfs_store *st, MDB_txn *txn, const void *key,
                    size_t klen);

/* The snapshot a destination exposes while it holds newer ones back
 * (stream.c, "Held back"): 0 and *EPOCH, or -ENOENT (none held back). */
int sfs_recv_fence(struct sfs_store *st, MDB_txn *txn, uint64_t *epoch);

/* prefetch.c: helpers reading ahead of an incremental stream's sender,
 * which starts at PHASE (0 deadlist, 1 birth index) and index row KEY
 * (KLEN 0: the first row after FROM_EPOCH).  0 or -ENOMEM/-EINVAL. */
struct sfs_prefetch;
int sfs_prefetch_start(struct sfs_store *st, uint64_t from_epoch,
                       uint64_t to_epoch, unsigned phase, const void *key,
                       size_t klen, struct sfs_prefetch **out);
/* The sender is past ROWS index rows since its start. */
void sfs_prefetch_progress(struct sfs_prefetch *p, uint64_t rows);
/* End the helpers and free P (NULL: nothing). */
void sfs_prefetch_stop(struct sfs_prefetch *p);

/* What an inode record charges to a qtree: its qtree and its bytes
 * (blocks * 512); zero for other records and for inodes in no qtree. */
struct sfs_qcharge {
    uint64_t qtree;
    uint64_t bytes;
};
void sfs_qtree_charge_of(const MDB_val *key, const void *payload, size_t len,
                         struct sfs_qcharge *out);
/* A live inode record changed from OLD's charge to NEW's: move the usage
 * of their qtrees (vrec.c calls this for every put and delete). */
int sfs_qtree_account_w(struct sfs_store *st, MDB_txn *txn,
                        const struct sfs_qcharge *old,
                        const struct sfs_qcharge *new);

/* Before writing inode INO: -EDQUOT if it is in a qtree with a quota and
 * its growth over the live record would take the usage past the quota. */
int sfs_qtree_check_growth(struct sfs_store *st, MDB_txn *txn,
                           const struct sfs_inode *ino);

/* Every record of table DBI whose key starts with PREFIX (and is longer),
 * in key order.  CB returns 0 to go on, 1 to stop, or a negative errno,
 * which is returned. */
typedef int (*sfs_table_cb)(void *arg, const MDB_val *key, const MDB_val *val);
int sfs_table_scan_prefix(MDB_txn *txn, MDB_dbi dbi, const void *prefix,
                          size_t plen, sfs_table_cb cb, void *arg);

/* The value of lower-case hex digit CH, or -1. */
static inline int sfs_hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}


/* Delete a snapshot whatever holds it (the reclaim dry run). */
int sfs_snap_delete_unheld_w(struct sfs_store *st, MDB_txn *txn,
                             uint64_t epoch);

/* restore.c: make the live version of KEY hold TARGET (NULL: absent);
 * 1 changed, 0 already so (see restore.c). */
int sfs_rec_set_live_w(struct sfs_store *st, MDB_txn *txn, const uint8_t *key,
                       size_t klen, const void *target, size_t tlen,
                       bool ref_taken);
/* Orphans whose inode is gone or linked again leave the orphans table. */
int sfs_orphans_prune_w(struct sfs_store *st, MDB_txn *txn);

/* Give the snapshot at EPOCH another creation time (a received snapshot
 * keeps its source's).  -ENOENT if there is none. */
int sfs_snap_set_ctime_w(struct sfs_store *st, MDB_txn *txn, uint64_t epoch,
                         int64_t sec, uint32_t nsec);

/* Layout of a stored version: the birth epoch, then the payload. */
#define SFS_VHDR 8

static inline uint64_t sfs_vbirth(const MDB_val *v)
{
    uint64_t b;
    memcpy(&b, v->mv_data, 8);
    return b;
}
static inline MDB_val sfs_vpayload(const MDB_val *v)
{
    MDB_val p = { v->mv_size - SFS_VHDR, (uint8_t *)v->mv_data + SFS_VHDR };
    return p;
}

/* store.c, for compact.c: -ENOENT/-ENOTDIR/-EMEDIUMTYPE unless PATH is a
 * store directory; the store's lock (flock on PATH/lock) into *FD, or
 * -EBUSY when another process has it. */
int sfs_check_is_store(const char *path);
int sfs_lock_store(const char *path, int *fd);
/* store.c, for format.c: write st->super into TXN. */
int sfs_super_put_w(struct sfs_store *st, MDB_txn *txn);
/* format.c, for store.c: may an open with FLAGS use this store (its
 * version, features, an unfinished upgrade)?  0, -EMEDIUMTYPE, or
 * -EPROTONOSUPPORT with sfs_open_why set.  Fills st->features. */
int sfs_format_check_open(struct sfs_store *st, MDB_txn *txn, int flags);
void sfs_open_why_clear(void);
/* compact.c: remove a killed compact's temporary file from DIR (the
 * caller holds the store's lock): 1 if there was one, 0, or -errno. */
int sfs_compact_leftover_remove(const char *dir);

#endif
