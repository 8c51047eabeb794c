/*
 * repo.h - the repository: a vault opened on its object store, with the
 * key, the index, the lock and the packers the engine's files share
 * (backup.c, restore.c, check.c, keys and listings in repo.c).  The
 * command layer sees only vault.h.
 */
#ifndef SNAPFS_VAULT_REPO_H
#define SNAPFS_VAULT_REPO_H

#include <stdbool.h>
#include <stdint.h>

#include "format.h"
#include "objstore.h"
#include "vault.h"

#define VAULT_WHY_MAX 1024
#define VAULT_LOCK_STALE 1800   /* seconds: a lock not refreshed is stale */
#define VAULT_LOCK_REFRESH 300  /* seconds between refreshes */

/* A pack of this session (backup, repack). */
struct vault_session_pack {
    struct vault_pack_desc d; /* entries malloc'd */
};
#define VAULT_INDEX_EVERY 64   /* packs an index object of a session lists */
#define VAULT_INDEX_NAME (16 + VC_HEX)

/* A window of a pack sequential readers are served from (blobio.c). */
#define VAULT_WINDOWS 2
struct vault_window {
    uint32_t pack;
    uint64_t off;
    size_t len;
    uint8_t *buf;
    uint64_t used;      /* when it served last (v->win_tick) */
};

/* Buffers of written packs kept for the next packs (blobio.c). */
#define VAULT_SPARE_PACKS 2

struct vault {
    struct objstore *os;
    struct vault_keys keys;
    struct vault_config config;
    void *config_obj;             /* the config as read */
    size_t config_len;
    char key_id[VC_HEX];          /* the key object that opened it */
    struct vault_index *index;    /* NULL until vault_load_index */
    struct objstore_lock *lock;
    struct objstore_lock *readers_lock; /* prune: no reader meanwhile */
    int64_t lock_refreshed;
    char why[VAULT_WHY_MAX];
    /* writing (backup) */
    uint32_t pack_size;
    struct vault_packer packers[2]; /* [0] data, [1] metadata */
    struct vault_session_pack *session;
    size_t nsession, session_cap;
    size_t session_indexed;       /* session[0..this) are in index objects */
    char (*session_indexes)[VAULT_INDEX_NAME]; /* those objects' names */
    size_t nsession_indexes, session_indexes_cap;
    uint64_t uploaded;            /* bytes put this session */
    uint64_t packs_written;
    unsigned inflight;            /* asynchronous puts running */
    struct vw spare[VAULT_SPARE_PACKS]; /* written packs' buffers, reused */
    unsigned nspare;
    int async_rc;                 /* the first error of one (why set) */
    /* reading */
    struct vault_window win[VAULT_WINDOWS];
    uint64_t win_tick;
    bool win_next_set;            /* where the blob read last ended */
    uint32_t win_next_pack;
    uint64_t win_next;
    uint64_t fetched;             /* bytes read from the store */
};

/* Set V's why from FMT and return RC. */
int vault_fail(struct vault *v, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* RC from the object store: V's why is the store's. */
int vault_os_fail(struct vault *v, int rc);

/*
 * Drop this process's mapping of ST's pages (a store's LMDB map is read-only
 * and shared: the pages stay in the page cache, and are mapped again
 * from it when read; nothing is lost, pointers into the map stay valid).
 * A backup or restore that reads a whole volume through the map would
 * otherwise keep every page it touched resident in its own memory: the
 * engine calls this every VAULT_MAP_RELEASE bytes, so that its resident
 * memory stays bounded whatever the volume's size.
 */
#define VAULT_MAP_RELEASE (32u << 20)
void vault_map_release(struct sfs_store *st);
/* The same for any LMDB environment opened without MDB_WRITEMAP (its
 * pages in use: up to the last committed page; any thread may call it). */
void vault_env_release(MDB_env *env);

/* Object names. */
void vault_pack_name(const uint8_t id[VC_ID], char *out, size_t cap);
void vault_obj_name(const char *dir, const uint8_t id[VC_ID], char *out,
                    size_t cap);

/* The ids of the objects DIR/ID (*IDS malloc'd; names that are not an id
 * are passed over). */
int vault_list_ids(struct vault *v, const char *dir, uint8_t (**ids)[VC_ID],
                   size_t *n);
/* Store a sealed object as DIR/SHA256 (its id into ID, may be NULL). */
int vault_put_object(struct vault *v, const char *dir, const struct vw *obj,
                     uint8_t *id);

/*
 * The index: every index object read (and packs that no index lists,
 * found by listing data/ and read from their trailers, when RECOVER: a
 * backup interrupted between a pack and its index; their index is
 * written).  -EBADMSG when an index object is damaged (why names it).
 */
int vault_load_index(struct vault *v, bool recover, uint64_t *recovered);
/* A pack's trailer, read from the store (*ENTS malloc'd). */
int vault_read_trailer(struct vault *v, const uint8_t pack[VC_ID],
                       uint64_t size, struct vault_pack_entry **ents,
                       size_t *n);

/* Read blob ID of TYPE from its pack and open it into *PLAIN (malloc'd)
 * with S pointing into it: -ENOENT (no such blob: why says), -EBADMSG
 * (damaged: why names the pack). */
int vault_fetch_blob(struct vault *v, uint8_t type, const uint8_t id[VC_ID],
                     uint8_t **plain, struct vault_stored *s);
/* As vault_fetch_blob, and decoded: *OUT (malloc'd, *LEN bytes) is the
 * plaintext whose keyed hash is ID. */
int vault_read_blob(struct vault *v, uint8_t type, const uint8_t id[VC_ID],
                    uint8_t **out, size_t *len);

/*
 * Writing blobs (backup): add the blob (its id, stored form) to the
 * packer of its type unless the index has it; a full packer is written
 * (the pack; an index object once VAULT_INDEX_EVERY packs of the session
 * are stored).  1 added, 0 the vault had it.
 */
int vault_add_blob(struct vault *v, uint8_t type, const uint8_t id[VC_ID],
                   const struct vault_stored *s);
/* The two halves of vault_add_blob, for a caller that packs blobs later
 * than it learns of them (backup.c, through squeeze.c): reserve marks
 * blob ID as being packed (1; 0 if the index has it; -ENOMEM), pack adds
 * it to its packer (a full packer is written). */
int vault_reserve_blob(struct vault *v, uint8_t type, const uint8_t id[VC_ID],
                       uint32_t lsize);
int vault_pack_blob(struct vault *v, uint8_t type, const uint8_t id[VC_ID],
                    const struct vault_stored *s);
/* Plaintext PLAIN as a blob of TYPE named by its keyed hash (into ID);
 * compressed when that pays. */
int vault_add_plain(struct vault *v, uint8_t type, const void *plain,
                    uint32_t len, uint8_t id[VC_ID]);
/* Write what the packers hold, wait for every upload, then write an
 * index object for the session's packs no index object of the session
 * lists yet; the session is cleared. */
int vault_flush(struct vault *v);
/* Wait for the uploads in flight: 0 or the first error (why set). */
int vault_wait(struct vault *v);
/* Forget the session's packs (the index objects written stay). */
void vault_session_clear(struct vault *v);
/* Write what the packers hold and wait (session index objects are
 * written only for each VAULT_INDEX_EVERY packs: v->session_indexes). */
int vault_flush_packs(struct vault *v);
/* A sealed blob E (SEALED, its bytes: in an old pack when repacking, from
 * squeeze.c's workers in a backup) into the packer of its type, whatever
 * the index says; the index points at its new place once its new pack is
 * written. */
int vault_move_blob(struct vault *v, const struct vault_pack_entry *e,
                    const uint8_t *sealed);
/* Refresh the lock if it is due: -ESTALE if it was lost. */
int vault_keep_lock(struct vault *v);

/*
 * squeeze.c: blocks put into the vault's form (vault_codec_pack at LEVEL)
 * and sealed as data blobs under KEYS on worker threads, handed back to
 * DONE on the caller's thread in the order they were queued: E (type,
 * id, sealed length, lsize) and the sealed bytes SEALED (NULL when RC,
 * the codec's error, is not 0), for vault_move_blob.  add takes RAW (the
 * queue releases it) and may first hand back the oldest block; drain
 * hands back all.  A DONE error stops add and drain and is returned.
 */
struct vault_squeeze;
typedef int vault_squeezed_fn(void *arg, const struct vault_pack_entry *e,
                              const uint8_t *sealed, int rc);
int vault_squeeze_new(int level, const struct vault_keys *keys,
                      struct vault_squeeze **out);
int vault_squeeze_add(struct vault_squeeze *q, const uint8_t id[VC_ID],
                      struct sfs_raw_block *raw, vault_squeezed_fn *done,
                      void *arg);
int vault_squeeze_drain(struct vault_squeeze *q, vault_squeezed_fn *done,
                        void *arg);
void vault_squeeze_free(struct vault_squeeze *q);

/*
 * prefetch.c: a restore's blocks read and opened on a thread of their
 * own, ahead of the receiver (theory comment).  WALK runs on that thread
 * and calls WANT for each block the stream's records name, in order
 * (WANT's error, -ECANCELED when stopped, ends the walk).  take gives the
 * block HASH in its stored form (RAW's bytes malloc'd) or an error with
 * V's why set; stop joins the thread (call it before V is used again).
 */
struct vault_prefetch;
typedef int vault_want_fn(void *arg, const uint8_t hash[SFS_HASH_LEN]);
typedef int vault_walk_fn(void *arg, vault_want_fn *want, void *want_arg);
int vault_prefetch_start(struct vault *v, vault_walk_fn *walk, void *walk_arg,
                         struct vault_prefetch **out);
int vault_prefetch_take(struct vault_prefetch *pf,
                        const uint8_t hash[SFS_HASH_LEN],
                        struct sfs_raw_block *raw);
void vault_prefetch_stop(struct vault_prefetch *pf);

/* chain.c: the links of M's chain, the full one first (*LINKS
 * malloc'd: vault_links_free); each link's records through CB, checked
 * (see chain.c). */
int vault_load_chain(struct vault *v, const struct vault_manifest *m,
                     struct vault_link **links, size_t *n);
void vault_links_free(struct vault_link *links, size_t n);
int vault_link_replay(struct vault *v, const struct vault_manifest *m,
                      const struct vault_link *l, vault_frame_cb cb,
                      void *arg);

/*
 * restore.c as a tool for other restores: the snapshot S's chain
 * replayed into a scratch table in the new directory SCRATCH (removed by
 * close); then stores made from its records, KEEP (NULL: all) choosing
 * which, each block of them fetched from the vault.  R counts for all.
 */
struct vault_restorer;
typedef bool (*vault_key_filter)(void *arg, const uint8_t *key, size_t klen);
int vault_restorer_open(struct vault *v, const struct vault_snapshot *s,
                        const char *scratch,
                        const struct vault_restore_opts *o,
                        struct vault_restore_result *r,
                        struct vault_restorer **out);
int vault_restorer_store(struct vault_restorer *rs, const char *path,
                         vault_key_filter keep, void *arg);
void vault_restorer_close(struct vault_restorer *rs);
/* A new volume at PATH made as M's source was (size, block size,
 * compression), opened exclusively; why names PATH. */
int vault_mkfs_like(struct vault *v, const struct vault_manifest *m,
                    const char *path, struct sfs_store **st);
/* The table the chain was replayed into (each key of the snapshot with
 * its value), to read from (read-only transactions of ENV); valid until
 * vault_restorer_close. */
void vault_restorer_table(struct vault_restorer *rs, MDB_env **env,
                          MDB_dbi *dbi);

/* Every manifest: CB(ARG, id, manifest); a damaged one (or of a newer
 * format) fails the scan (-EBADMSG, -EPROTONOSUPPORT, why names the
 * object), or with WITH_BAD goes to CB as a NULL manifest (why set). */
typedef int (*vault_manifest_cb)(void *arg, const uint8_t id[VC_ID],
                                 const struct vault_manifest *m);
int vault_each_manifest(struct vault *v, bool with_bad, vault_manifest_cb cb,
                        void *arg);
/* The manifest snapshots/ID: -ENOENT (none), -EBADMSG, -EPROTONOSUPPORT
 * (why names it), or the store's errors. */
int vault_manifest_read(struct vault *v, const uint8_t id[VC_ID],
                        struct vault_manifest *m);
/* Read every index object into a new index for V; a damaged one goes to
 * BAD (with why) when BAD is given, else fails the read.  *COUNT (may be
 * NULL): index objects listed. */
int vault_read_indexes(struct vault *v, vault_problem_fn bad, void *arg,
                       uint64_t *count);
/* Read the index object NAME into V's index: -EBADMSG, -EPROTONOSUPPORT
 * (why names it); one deleted since it was listed is no error. */
int vault_load_index_object(struct vault *v, const char *name);

#endif
