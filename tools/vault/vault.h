/*
 * vault.h - the vault engine as the command layer sees it (tools/vault_cmd.c):
 * encrypted, incremental-forever snapshot backup of snapfs volumes to an
 * object store.  The design is in repo.c's and backup.c's THEORY
 * comments; the format in tools/vault/README.md.
 *
 * Every function returns 0 (or a count) or a negative errno; vault_why()
 * says more about the last error (the object, the server's message), and
 * nothing here prints.  Passphrases are the caller's to obtain; they are
 * never stored, printed or logged here.
 */
#ifndef SNAPFS_VAULT_H
#define SNAPFS_VAULT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "format.h"
#include "objstore.h"
#include "store.h"

struct vault;

/*
 * vault_init - make a new vault at TARGET: a random master key, wrapped
 * by PASS (scrypt with KDF, NULL: the defaults) in the first key object,
 * and the config.  -EEXIST if TARGET holds a vault already.
 * vault_connect - reach the vault at TARGET and read its config: -ENOENT
 * (no vault there), -EPROTONOSUPPORT (made by a newer snapfs: refused
 * before any passphrase is asked for), -EBADMSG (not a vault config), or
 * the object store's errors.  Then vault_open_keys opens it with PASS:
 * -EACCES (no key of the vault opens with PASS), -EBADMSG (a key opens
 * but the config does not: damaged).  init and connect set *OUT even on
 * failure (for vault_why; vault_close it), except on -ENOMEM.
 */
int vault_init(const char *target, const struct objstore_opts *o,
               const char *pass, size_t plen, const struct vault_kdf *kdf,
               struct vault **out);
int vault_connect(const char *target, const struct objstore_opts *o,
                  struct vault **out);
int vault_open_keys(struct vault *v, const char *pass, size_t plen);
void vault_close(struct vault *v);
const char *vault_why(const struct vault *v);
/* The vault's id, hex. */
void vault_id_hex(const struct vault *v, char out[VC_HEX]);

/*
 * Locks.  Writers (backup, key changes, check, forget, prune) take the
 * write lock, exclusive; readers (restore) the read lock, shared.  A lock whose
 * holder was a process of this host that is gone is removed (after a
 * kill -9); one of another host after VAULT_LOCK_STALE seconds without
 * a refresh.  -EBUSY: why says who holds it.
 */
int vault_lock(struct vault *v, bool write, const char *what);
/* The read lock too, exclusively (prune: no restore may read a pack it
 * deletes).  -EBUSY: why says who reads. */
int vault_lock_readers(struct vault *v, const char *what);
int vault_unlock(struct vault *v);

/* ---- keys ---- */

struct vault_key_line {
    char id[VC_HEX];
    struct vault_keyinfo info;
    bool current;               /* the key that opened this session */
};
/* Every key object, in id order; CB returns 0 or an error, returned. */
int vault_keys_list(struct vault *v,
                    int (*cb)(void *arg, const struct vault_key_line *k),
                    void *arg);
/* Wrap the master key with PASS in a new key object (its id into ID). */
int vault_key_add(struct vault *v, const char *pass, size_t plen,
                  const struct vault_kdf *kdf, char id[VC_HEX]);
/* Remove the key whose id starts with PREFIX (4 digits at least):
 * -ENOENT (none), -EINVAL (several; why lists them), -EBUSY (the last
 * key), -EPERM (the key this session opened with). */
int vault_key_remove(struct vault *v, const char *prefix, char id[VC_HEX]);

/* ---- snapshots ---- */

struct vault_snapshot {
    uint8_t id[VC_ID];
    struct vault_manifest m;
};
/* Every snapshot, oldest backup first (*OUT malloc'd).  Manifests that
 * do not authenticate (or are of a newer format) are left out and counted
 * in *BAD, why naming the first: the others stay listable and
 * restorable. */
int vault_snapshots(struct vault *v, struct vault_snapshot **out, size_t *n,
                    size_t *bad);
/* SPEC: a snapshot's id (4 hex digits at least of it) or its name, among
 * the manifests that can be read.  -ENOENT (why also names a damaged
 * manifest, if there is one), -EINVAL (several match: why lists their
 * ids). */
int vault_find_snapshot(struct vault *v, const char *spec,
                        struct vault_snapshot *out);

/* ---- retention (forget.c) ---- */

#define VAULT_KEEP_LABELS 16
struct vault_keep_policy {
    uint32_t last, daily, weekly, monthly;
    uint32_t nlabels;
    struct {
        char label[SFS_NAME_MAX + 1];
        uint32_t keep;
    } labels[VAULT_KEEP_LABELS];
};
/* Why a policy keeps a snapshot (0: it does not). */
enum { VAULT_KEPT_LAST = 1, VAULT_KEPT_DAILY = 2, VAULT_KEPT_WEEKLY = 4,
       VAULT_KEPT_MONTHLY = 8, VAULT_KEPT_LABEL = 16 };
/* KEEP[i]: why P keeps S[i], each source volume's snapshots taken on
 * their own, newest first (see forget.c).  0 or -ENOMEM. */
int vault_policy_apply(const struct vault_keep_policy *p,
                       const struct vault_snapshot *s, size_t n,
                       unsigned *keep);
/* Forget S: delete its manifest (V locked for writing).  What it refers
 * to stays until vault_prune. */
int vault_forget(struct vault *v, const struct vault_snapshot *s);

/* ---- prune (prune.c) ---- */

struct vault_prune_stats {
    uint64_t snapshots;       /* manifests whose references were marked */
    uint64_t packs;           /* packs indexed */
    uint64_t packs_deleted;   /* nothing in them referenced */
    uint64_t packs_repacked;  /* over a quarter of them unreferenced */
    uint64_t unused_bytes;    /* of unreferenced blobs, in all packs */
    uint64_t bytes_moved;     /* referenced blobs copied into new packs */
    uint64_t bytes_written;   /* new packs and index objects */
    uint64_t bytes_freed;     /* old packs deleted */
    uint64_t recovered;       /* packs no index listed, indexed first */
};
/*
 * vault_prune - delete what no snapshot refers to (V locked for writing
 * and its readers locked out: vault_lock_readers): see prune.c.  With
 * DRY_RUN only the figures.  Refused (-EBADMSG, nothing deleted) when a
 * manifest, a link or a metadata chunk cannot be read.
 */
int vault_prune(struct vault *v, bool dry_run, struct vault_prune_stats *st);

/* ---- backup (backup.c) ---- */

typedef int (*vault_hold_fn)(void *arg, const char *name, bool hold);
typedef void (*vault_progress_fn)(void *arg, uint64_t bytes, uint64_t total,
                                  uint64_t files);
#define VAULT_PACK_DEFAULT (16u << 20)
#define VAULT_PACK_MIN (1u << 20)
#define VAULT_PACK_MAX (128u << 20)
struct vault_backup_opts {
    uint32_t pack_size;            /* 0: VAULT_PACK_DEFAULT */
    const char *const *labels;     /* besides the name's own label */
    uint32_t nlabels;
    vault_hold_fn hold;            /* holds the base snapshot meanwhile */
    void *hold_arg;
    vault_progress_fn progress;
    void *progress_arg;
    const volatile sig_atomic_t *interrupted; /* set: stop (-EINTR) */
};
struct vault_backup_result {
    struct vault_snapshot snap;   /* the new manifest */
    bool already;                 /* the vault had this snapshot: nothing done */
    char base[SFS_NAME_MAX + 1];  /* the base ("": a full backup) */
    uint64_t records;             /* metadata records sent */
    uint64_t blocks;              /* blocks the snapshot's change refers to */
    uint64_t blocks_new;          /* of those, uploaded */
    uint64_t block_bytes_new;     /* their logical bytes */
    uint64_t meta_bytes;          /* metadata stream bytes */
    uint64_t uploaded;            /* bytes put (packs, indexes, manifest) */
    uint64_t packs;               /* packs written */
    uint64_t recovered;           /* packs an interrupted backup left
                                     without an index, indexed again */
};
/*
 * vault_backup - back the snapshot SNAP of the store ST (opened read-only
 * by the caller, SNAP held by the caller) up into V, which the caller has
 * locked for writing.  Incremental from the vault's newest backup of the
 * same volume older than SNAP that ST still has (held through O->hold
 * while it is read), else the metadata is sent whole; either way only
 * blocks the vault lacks are uploaded.  The manifest is written last:
 * until then the vault lists nothing new, and a backup interrupted
 * anywhere leaves every earlier snapshot as it was; what it uploaded is
 * used again by the next backup.
 */
int vault_backup(struct vault *v, struct sfs_store *st,
                 const struct sfs_snap_rec *snap,
                 const struct vault_backup_opts *o,
                 struct vault_backup_result *r);

/* ---- restore (restore.c) ---- */

struct vault_restore_result {
    uint64_t records;    /* records applied */
    uint64_t files;      /* objects (inodes) */
    uint64_t blocks;     /* blocks fetched from the vault */
    uint64_t fetched;    /* bytes read from the object store */
    uint32_t links;      /* metadata links replayed */
};
/*
 * vault_restore - make the new store NEWSTORE (a path that does not exist)
 * hold snapshot S as its source had it, and a live tree equal to it.
 * SCRATCH is a directory path (not existing) for the restore's work
 * space, removed at the end.  On failure NEWSTORE may be left partly
 * made: the caller builds it under a temporary name.
 */
struct vault_restore_opts {
    vault_progress_fn progress;
    void *progress_arg;
    const volatile sig_atomic_t *interrupted; /* set: stop (-EINTR) */
};
int vault_restore(struct vault *v, const struct vault_snapshot *s,
                  const char *newstore, const char *scratch,
                  const struct vault_restore_opts *o,
                  struct vault_restore_result *r);

/* ---- restore-file (extract.c) ---- */

struct vault_extract_result {
    uint64_t objects;    /* files, directories, links... made */
    uint64_t bytes;      /* of file data written */
    uint64_t not_owned;  /* owners that could not be set (not root) */
    uint64_t blocks;     /* blocks fetched from the vault */
    uint64_t fetched;    /* bytes read from the object store */
};
/*
 * vault_restore_file - copy PATH ("/a/b" or "a/b") of snapshot S out to
 * DEST (a path that does not exist; its parent a directory): a file, or a
 * directory with everything under it, with contents (holes kept), hard
 * links inside it, xattrs (ACLs, DOS attributes), owners (as root), modes
 * and nanosecond times; only its own blocks are fetched.  SCRATCH as for
 * vault_restore (SCRATCH.names and SCRATCH.files are used too).  -ENOENT
 * (PATH is not in the snapshot); a failure removes DEST again.
 */
int vault_restore_file(struct vault *v, const struct vault_snapshot *s,
                       const char *path, const char *dest,
                       const char *scratch,
                       const struct vault_restore_opts *o,
                       struct vault_extract_result *r);

/* ---- check (check.c) ---- */

typedef void (*vault_problem_fn)(void *arg, const char *problem);
struct vault_check_stats {
    uint64_t keys, snapshots, links, indexes, packs, blobs, records;
    uint64_t data_read;  /* bytes of packs read whole (--read-data) */
    uint64_t unindexed;  /* packs no index lists (an interrupted backup) */
};
/* Check V (locked for writing): every manifest, link, index and pack
 * trailer, every metadata stream, every block a snapshot refers to
 * indexed; with READ_DATA every pack read whole, every blob opened and
 * decoded.  Each problem goes to REPORT.  Returns the number of
 * problems, or a negative errno that stopped the check. */
int vault_check(struct vault *v, bool read_data, vault_problem_fn report,
                void *arg, struct vault_check_stats *stats);

/* ---- diff (vdiff.c) ---- */

/*
 * vault_diff - what changed between the vaulted snapshots A and B (A the
 * older, both of one volume), from the vault alone: sfs_diff_write's
 * lines ("C<tab>PATH", "R<tab>OLD -> NEW", then the "examined" line)
 * into OUT.  SCRATCH is a directory path (not existing) for the work
 * space, left for the caller to remove (SCRATCH/store is a store).
 * -EXDEV (two volumes), -EINVAL (A is B, or newer), the restorer's
 * errors.
 */
int vault_diff(struct vault *v, const struct vault_snapshot *a,
               const struct vault_snapshot *b, const char *scratch,
               FILE *out);

#endif
