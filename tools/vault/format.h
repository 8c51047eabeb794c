/*
 * format.h - the vault's objects as bytes: the config, key objects,
 * blobs, packs, indexes, metadata chains and snapshot manifests.  Pure
 * functions over memory (no I/O); the repository (repo.c) stores and
 * fetches them.  tools/vault/README.md draws the layout.
 *
 * Every parser checks every length against the bytes it has and answers
 * -EBADMSG for anything malformed or not authentic, -EPROTONOSUPPORT for
 * an object of a newer format version than this program writes.
 */
#ifndef SNAPFS_VAULT_FORMAT_H
#define SNAPFS_VAULT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "store.h"
#include "wire.h"

#define VAULT_FORMAT 1 /* of the config, keys, packs, indexes, manifests */

/* ---- keys.c: the config and key objects ---- */

struct vault_kdf {
    uint64_t n;
    uint32_t r, p;
};
/* scrypt's parameters for new keys: 32 MiB and about 0.1 s a try. */
#define VAULT_KDF_N 32768
#define VAULT_KDF_R 8
#define VAULT_KDF_P 1
#define VAULT_SALT 32
#define VAULT_HOST_MAX 64
#define VAULT_USER_MAX 64

/* What a key object says in the clear (authenticated with its wrapped
 * master key). */
struct vault_keyinfo {
    struct vault_kdf kdf;
    uint8_t salt[VAULT_SALT];
    int64_t created;
    char host[VAULT_HOST_MAX + 1];
    char user[VAULT_USER_MAX + 1];
};

/*
 * vault_key_make - a key object: KEYS wrapped (AES-256-GCM) with the key
 * scrypt derives from PASS, INFO->kdf and a fresh salt (set in INFO).
 * INFO's created, host and user are stored as given.  Into OUT.
 */
int vault_key_make(const struct vault_keys *keys, const char *pass,
                   size_t plen, struct vault_keyinfo *info, struct vw *out);
/* The clear part of a key object. */
int vault_key_parse(const void *obj, size_t len, struct vault_keyinfo *info);
/* The master key inside, if PASS opens it: 0, -EACCES (it does not), or
 * vault_key_parse's and vc_scrypt's errors. */
int vault_key_open(const void *obj, size_t len, const char *pass,
                   size_t plen, struct vault_keys *out);

/* The config object: the format version in the clear (so that a newer
 * vault is refused before any key is tried), the rest sealed. */
struct vault_config {
    uint32_t version;
    uint8_t id[VC_ID];   /* the vault's id, random */
    int64_t created;
};
int vault_config_make(const struct vault_keys *keys,
                      const struct vault_config *c, struct vw *out);
/* The version a config object declares (-EBADMSG: not a vault config). */
int vault_config_version(const void *obj, size_t len, uint32_t *version);
/* -EPROTONOSUPPORT for a newer version; -EBADMSG. */
int vault_config_open(const struct vault_keys *keys, const void *obj,
                      size_t len, struct vault_config *out);

/* ---- pack.c: sealed objects, blobs and packs ---- */

/*
 * Whole objects (indexes, manifests): seal(plaintext) with the type as
 * additional data ("snapfs-vault TYPE"); their name is the SHA-256 of
 * the stored bytes.  open: *PLAIN malloc'd (the caller frees).
 */
int vault_obj_seal(const struct vault_keys *k, const char *type,
                   const void *plain, size_t len, struct vw *out);
int vault_obj_open(const struct vault_keys *k, const char *type,
                   const void *obj, size_t len, uint8_t **plain,
                   size_t *plen);

/* Blobs: the pieces packs hold, each sealed on its own with its type and
 * id as additional data, so that no blob reads as another. */
enum vault_blob_type {
    VB_DATA = 1,  /* a block of the volume, named by its keyed hash */
    VB_META = 2,  /* a piece of a metadata stream */
    VB_CHAIN = 3, /* a metadata chain link (struct vault_chain) */
};
#define VB_TYPE_MAX VB_CHAIN
#define VAULT_BLOB_LSIZE_MAX (8u << 20) /* what one blob may decode to */

/* A blob's contents: the block in a stored form (a codec of store.h:
 * none or zstd) and the length it decodes to. */
struct vault_stored {
    uint8_t codec;
    uint32_t lsize;
    const void *bytes;
    uint32_t csize;
};
/* LEN bytes of PLAIN compressed with zstd into OUT when that saves at
 * least an eighth, else as they are; S points into OUT or PLAIN. */
int vault_compress(const void *plain, uint32_t len, struct vw *out,
                   struct vault_stored *s);
/*
 * A block in the form the vault stores it (pack.c's THEORY): IN, the
 * block whose SHA-256 is SHA as the volume stores it (zstd or raw),
 * compressed again at the codec's LEVEL when that makes it smaller; S
 * points into OUT or at IN's bytes.  -EBADMSG for an IN that does not
 * decode to the block (damaged, another codec), -ENOMEM.  A codec keeps
 * zstd's contexts and a buffer from block to block (one user at a time).
 */
struct vault_codec;
struct vault_codec *vault_codec_new(int level);
void vault_codec_free(struct vault_codec *c);
int vault_codec_pack(struct vault_codec *c, const uint8_t sha[VC_ID],
                     const struct vault_stored *in, struct vw *out,
                     struct vault_stored *s);
/* Decode S into PLAIN (S->lsize bytes) and check that its keyed hash is
 * ID (and, when SHA is not NULL, give its SHA-256): 0 or -EBADMSG. */
int vault_stored_decode(const struct vault_keys *k, const uint8_t *id,
                        const struct vault_stored *s, void *plain,
                        uint8_t *sha);
/* The sealed size of a blob holding CSIZE stored bytes. */
size_t vault_blob_size(uint32_t csize);
int vault_blob_seal(const struct vault_keys *k, uint8_t type,
                    const uint8_t id[VC_ID], const struct vault_stored *s,
                    struct vw *out);
/* Open a sealed blob into *PLAIN (malloc'd); S points into it. */
int vault_blob_open(const struct vault_keys *k, uint8_t type,
                    const uint8_t id[VC_ID], const void *sealed, size_t len,
                    uint8_t **plain, struct vault_stored *s);

/* A blob's place in its pack. */
struct vault_pack_entry {
    uint8_t type;
    uint8_t id[VC_ID];
    uint32_t offset, length; /* of the sealed blob in the pack */
    uint32_t lsize;          /* what it decodes to */
};

/* An entry as packs' trailers and index objects list it: type u8, id,
 * offset u32, length u32, lsize u32. */
#define VAULT_ENTRY_BYTES (1 + VC_ID + 4 + 4 + 4)
void vault_entry_write(struct vw *w, const struct vault_pack_entry *e);
void vault_entry_read(struct vr *r, struct vault_pack_entry *e);

/*
 * A pack being filled: blobs one after the other, then the sealed
 * trailer listing them, then the trailer's length (u32).  finish appends
 * the trailer and names the pack (SHA-256 of its bytes, in BUF).
 */
struct vault_packer {
    struct vw buf;
    struct vault_pack_entry *ents;
    size_t n, cap;
    uint64_t lsize; /* decoded bytes of the blobs in it */
};
int vault_packer_add(struct vault_packer *p, const struct vault_keys *k,
                     uint8_t type, const uint8_t id[VC_ID],
                     const struct vault_stored *s);
/* A blob as another pack holds it (E, its sealed bytes SEALED): moved
 * as it is (a blob's sealing does not depend on its place). */
int vault_packer_add_sealed(struct vault_packer *p,
                            const struct vault_pack_entry *e,
                            const uint8_t *sealed);
int vault_packer_finish(struct vault_packer *p, const struct vault_keys *k,
                        uint8_t pack_id[VC_ID]);
/* The size the pack would have, trailer included, with one more blob of
 * BLOB_LEN sealed bytes (0: as it is). */
uint64_t vault_packer_size_with(const struct vault_packer *p, size_t blob_len);
/* Empty it for the next pack (keeps the memory). */
void vault_packer_reset(struct vault_packer *p);
void vault_packer_free(struct vault_packer *p);

/* The trailer: its sealed length, from a pack's last 4 bytes; then the
 * entries of the sealed trailer TRAILER (LEN bytes) of a pack of
 * PACK_SIZE bytes, checked to cover the pack before it exactly, blob
 * after blob (*ENTS malloc'd). */
#define VAULT_TRAILER_MAX (64u << 20)
int vault_trailer_len(const uint8_t last4[4], uint64_t pack_size,
                      uint32_t *len);
int vault_trailer_open(const struct vault_keys *k, const void *trailer,
                       size_t len, uint64_t pack_size,
                       struct vault_pack_entry **ents, size_t *n);

/* ---- index.c: where every blob is ---- */

/*
 * The index in memory: blob id -> pack, offset, length, decoded size.
 * Memory is proportional to the number of blobs (about 60 bytes each:
 * the entry, and a slot of a hash table at most half full) plus 40 bytes
 * a pack; see the README for why not bounded.
 */
struct vault_loc {
    uint32_t pack;   /* the pack's number in this index */
    uint32_t offset, length, lsize;
    uint8_t type;
};
struct vault_index;
struct vault_index *vault_index_new(void);
void vault_index_free(struct vault_index *x);
/* The number of pack ID (added if new, with its SIZE in bytes). */
int vault_index_pack(struct vault_index *x, const uint8_t id[VC_ID],
                     uint64_t size, uint32_t *no);
/* Is pack ID in the index?  Its number, or -ENOENT. */
int vault_index_pack_find(const struct vault_index *x,
                          const uint8_t id[VC_ID], uint32_t *no);
const uint8_t *vault_index_pack_id(const struct vault_index *x, uint32_t no);
uint64_t vault_index_pack_size(const struct vault_index *x, uint32_t no);
size_t vault_index_npacks(const struct vault_index *x);
size_t vault_index_count(const struct vault_index *x);
/* Add blob ID at LOC: 1 added, 0 known already (the first place stays),
 * -ENOMEM. */
int vault_index_add(struct vault_index *x, const uint8_t id[VC_ID],
                    const struct vault_loc *loc);
/* Blob ID moves to LOC (its pack was written): 0 or -ENOENT. */
int vault_index_set(struct vault_index *x, const uint8_t id[VC_ID],
                    const struct vault_loc *loc);
#define VAULT_PACK_PENDING UINT32_MAX /* in a pack not written yet */
/* Where blob ID is, or NULL. */
const struct vault_loc *vault_index_find(const struct vault_index *x,
                                         const uint8_t id[VC_ID]);

/* A pack as an index object lists it. */
struct vault_pack_desc {
    uint8_t id[VC_ID];
    uint64_t size;
    struct vault_pack_entry *ents;
    size_t n;
};
/* An index object (sealed, "index") listing PACKS. */
int vault_index_encode(const struct vault_keys *k,
                       const struct vault_pack_desc *packs, size_t n,
                       struct vw *out);
/* Open an index object and call CB for each of its packs (entries valid
 * during the call only); CB returns 0 or a negative errno, returned. */
int vault_index_decode(const struct vault_keys *k, const void *obj,
                       size_t len,
                       int (*cb)(void *arg, const struct vault_pack_desc *p),
                       void *arg);
/* Add every blob of pack P to X. */
int vault_index_add_pack(struct vault_index *x,
                         const struct vault_pack_desc *p);

/* ---- meta.c: the metadata of snapshots as chains of streams ---- */

/*
 * A snapshot's metadata is a chain of links: a full one (the records of a
 * full replication stream) and the incrementals after it, each holding the
 * records of the stream from the previous link's snapshot to its own.  A
 * link is a VB_CHAIN blob; its stream is cut into VB_META blobs (chunks)
 * of about VAULT_CHUNK bytes before compression.  See backup.c's THEORY.
 */
#define VAULT_CHUNK (1u << 20)
#define VAULT_CHUNKS_MAX (1u << 20)
enum { VAULT_LINK_FULL = 1, VAULT_LINK_INCR = 2 };
struct vault_link {
    uint8_t kind;              /* VAULT_LINK_* */
    uint64_t from_epoch;       /* incremental: the base's source epoch */
    uint64_t to_epoch;
    uint8_t prev[VC_ID];       /* incremental: the base's link */
    uint32_t depth;            /* links from the full one, this included */
    uint64_t bytes;            /* this link's stream bytes */
    uint64_t chain_bytes;      /* the incrementals' bytes, this included */
    uint64_t full_bytes;       /* the full link's bytes */
    uint64_t records;          /* puts and kills of this link's stream */
    uint32_t nchunks;
    uint8_t (*chunks)[VC_ID];  /* malloc'd */
};
int vault_link_encode(const struct vault_link *l, struct vw *out);
/* -EBADMSG, -EPROTONOSUPPORT; l->chunks malloc'd (vault_link_free). */
int vault_link_decode(const void *p, size_t len, struct vault_link *l);
void vault_link_free(struct vault_link *l);

/* Cutting a byte stream into chunks of VAULT_CHUNK bytes for EMIT. */
struct vault_chunker {
    struct vw buf;
    int (*emit)(void *arg, const void *chunk, size_t len);
    void *arg;
    uint64_t bytes; /* fed so far */
};
int vault_chunker_add(struct vault_chunker *c, const void *p, size_t n);
/* The last, short chunk (if any bytes are left). */
int vault_chunker_flush(struct vault_chunker *c);
void vault_chunker_free(struct vault_chunker *c);

/* Splitting bytes back into stream frames (which may straddle chunks):
 * CB gets each whole frame, parsed; -EBADMSG for bytes that are no
 * frame.  vault_frames_end: -EBADMSG if a frame was left unfinished. */
typedef int (*vault_frame_cb)(void *arg, const struct sfs_stream_frame *f);
struct vault_frames {
    struct vw buf;
    size_t off;
};
int vault_frames_feed(struct vault_frames *f, const void *p, size_t n,
                      vault_frame_cb cb, void *arg);
int vault_frames_end(struct vault_frames *f);
void vault_frames_free(struct vault_frames *f);

/* ---- manifest.c: snapshot manifests (snapshots/ID) ---- */

#define VAULT_LABELS_MAX 16
struct vault_manifest {
    /* the snapshot's identity at its source */
    char name[SFS_NAME_MAX + 1];
    int64_t ctime_sec;
    uint32_t ctime_nsec;
    uint64_t epoch;                 /* at the source */
    uint8_t volume[16];             /* the source volume's UUID */
    uint32_t nlabels;
    char labels[VAULT_LABELS_MAX][SFS_NAME_MAX + 1];
    /* the backup */
    int64_t backup_time;
    char host[VAULT_HOST_MAX + 1];
    uint64_t base_epoch;            /* 0: its metadata is a full link */
    /* what a restore makes the new volume with */
    uint32_t block_size, codec;
    int32_t codec_level;
    uint64_t volume_size, next_ino;
    /* sizes */
    uint64_t logical;               /* bytes of its files (apparent sizes) */
    uint64_t files;                 /* its objects: files, directories... */
    uint64_t added;                 /* new data: bytes of blocks uploaded */
    uint64_t stored;                /* bytes the backup added to the vault */
    /* its metadata: the chain's last link, and copies of its counts */
    uint8_t link[VC_ID];
    uint32_t depth;
    uint64_t chain_bytes, full_bytes;
};
/* A manifest as a sealed object ("snapshot"). */
int vault_manifest_encode(const struct vault_keys *k,
                          const struct vault_manifest *m, struct vw *out);
int vault_manifest_decode(const struct vault_keys *k, const void *obj,
                          size_t len, struct vault_manifest *m);
/* The label of a snapshot name: up to its first '.' (daily.2026-... is
 * daily), as mirror retention labels snapshots. */
void vault_label_of(const char *name, char *out);

#endif
