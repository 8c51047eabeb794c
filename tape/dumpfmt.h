/*
 * dumpfmt.h - the BSD "new" dump format as Linux dump 0.4b47 writes it and
 * its restore reads it: headers, inode maps, directory blocks, extended
 * attribute records, and the record (blocking) layer.
 *
 * See dumpfmt.c for the theory of the format.  Everything here is our own
 * description of the layout, written from the published headers and from
 * dumps made by Debian's dump; no code of that program is used.
 *
 * Errors are negative errno values:
 *   -EBADMSG   a header with a wrong magic or checksum, or a malformed
 *              directory block or attribute record
 *   -E2BIG     something that does not fit the format (a name over 255
 *              bytes, attributes over 64 KiB, an inode number over 2^31)
 *   -EOPNOTSUPP an xattr namespace the format cannot name
 *   -EIO       a read or write that failed (errno of the system call is
 *              returned instead when there is one)
 *   -ENODATA   the end of the input
 */
#ifndef SNAPFS_DUMPFMT_H
#define SNAPFS_DUMPFMT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DUMP_TP_BSIZE 1024          /* a tape block */
#define DUMP_TP_NINDIR 512          /* c_addr entries per header */
#define DUMP_NFS_MAGIC 60012        /* the "new" format */
#define DUMP_CHECKSUM 84446         /* header words sum to this */
#define DUMP_ROOTINO 2              /* the root directory's inode */
#define DUMP_DIRBLKSIZ 512          /* a directory block on tape */
#define DUMP_MAXNAMLEN 255
#define DUMP_NTREC_DEFAULT 64       /* our default blocking factor */
#define DUMP_NTREC_MIN 4            /* the range dump engines accept */
#define DUMP_NTREC_MAX 256
#define DUMP_XATTR_MAX 65536        /* e_value_offs is 16 bits */

enum dump_type {
    TS_TAPE = 1,   /* the volume header, first block of each volume */
    TS_INODE = 2,  /* an inode, its first TP_NINDIR blocks follow */
    TS_BITS = 3,   /* the map of inodes on this dump */
    TS_ADDR = 4,   /* the continuation of an inode's blocks */
    TS_END = 5,    /* the end of the dump */
    TS_CLRI = 6,   /* the map of inodes in use at dump time */
};

/* c_flags */
#define DR_NEWHEADER 0x0001
#define DR_NEWINODEFMT 0x0002
#define DR_EXTATTRIBUTES 0x8000
/* c_extattributes */
#define EXT_XATTR 3
/* Attributes too large for Linux restore (which takes records of at most
 * DUMP_XATTR_LINUX_MAX bytes): same layout, a value Linux restore skips
 * ("unexpected inode extension") and snapfs restore reads. */
#define EXT_SNAPFS_XATTR 0x534e
#define DUMP_XATTR_LINUX_MAX 4096

/* ext2's in-inode attribute magic, which Linux dump writes */
#define DUMP_XATTR_MAGIC_INODE 0xEA020001u
#define DUMP_XATTR_MAGIC_BLOCK 0xEA020000u

/* The inode part of a header (struct new_bsd_inode, 128 bytes). */
struct dump_inode {
    uint16_t mode;
    int16_t nlink;
    uint32_t inumber;
    uint64_t size;
    uint32_t atime_sec, atime_usec;
    uint32_t mtime_sec, mtime_usec;
    uint32_t ctime_sec, ctime_usec;
    uint32_t db[12];       /* db[0] is the device number of a device */
    uint32_t ib[3];
    uint32_t flags;
    int32_t blocks;        /* 512-byte units, informational */
    int32_t gen;
    uint32_t uid, gid;
    int32_t spare[2];
};

/* One header block (struct s_spcl, 1,024 bytes), decoded. */
struct dump_header {
    int32_t type;
    int32_t date;           /* this dump's date */
    int32_t ddate;          /* the date of the dump it is based on */
    int32_t volume;         /* volume number, from 1 */
    uint32_t tapea;         /* this header's block number in the dump */
    uint32_t ino;
    struct dump_inode di;
    int32_t count;          /* valid entries of addr (or map blocks) */
    uint8_t addr[DUMP_TP_NINDIR]; /* 1: a data block follows, 0: a hole */
    char label[16];
    int32_t level;
    char filesys[64];
    char dev[64];
    char host[64];
    int32_t flags;
    int32_t firstrec;
    int32_t ntrec;          /* the blocking factor */
    int32_t extattributes;
    int32_t spare[30];
};

/*
 * What snapfs adds to a TS_TAPE header, in c_spare (which Linux restore
 * ignores): a mark, the volume's uuid (so that restore can refuse an
 * incremental of another volume), the bytes the dump will hold (so that
 * restore can check the room it needs before it starts), for the parts
 * of a restarted dump, the part number and the context's id, and the
 * version of snapfs's extensions of the dump format.
 *
 * The extensions, version 1: this header; EXT_SNAPFS_XATTR records
 * (attributes too large for Linux restore); qtrees as the attribute
 * SFS_QTREE_XATTR of a directory at the root.  Dumps made before the
 * version was written carry 0 there: version 1.  A later snapfs that
 * changes what they mean raises DUMP_SNAPFS_EXT_VERSION, and a restore
 * meeting a newer version refuses the whole dump before it writes
 * anything (the plain dump is still Linux restore's to read).
 */
#define DUMP_SNAPFS_MARK 0x53464e53u /* "SNFS" */
#define DUMP_SNAPFS_EXT_VERSION 1
struct dump_snapfs_ext {
    uint8_t uuid[16];
    uint64_t est_bytes;
    uint32_t part;          /* 0: an uninterrupted dump or its first part */
    uint32_t context;       /* the restartable context's id, or 0 */
    uint32_t version;       /* of the extensions (put: always the current) */
};
void dump_ext_put(struct dump_header *h, const struct dump_snapfs_ext *x);
/* 0, or -ENOENT when H carries no snapfs extension. */
int dump_ext_get(const struct dump_header *h, struct dump_snapfs_ext *x);

/* Encode H into OUT with its checksum.  Strings are truncated to fit. */
void dump_header_encode(const struct dump_header *h,
                        uint8_t out[DUMP_TP_BSIZE]);
/*
 * Decode IN.  Headers written on a machine of the other byte order are
 * swapped.  Returns 0, or -EBADMSG when the magic or the checksum is
 * wrong (IN is then not a header).
 */
int dump_header_decode(const uint8_t in[DUMP_TP_BSIZE],
                       struct dump_header *h);
/* "TS_INODE" etc. for messages. */
const char *dump_type_name(int32_t type);

/* ---- directory blocks ---- */

/* DT_* values of a mode, as the d_type of an entry. */
uint8_t dump_dtype_of_mode(uint32_t mode);

struct dump_dirbuf {
    uint8_t *data;   /* whole DUMP_DIRBLKSIZ blocks */
    size_t len;      /* bytes used, a multiple of DUMP_DIRBLKSIZ when closed */
    size_t cap;
    size_t last;     /* offset of the last entry in the open block */
    bool open;       /* a block is being filled */
};
/* Append an entry; 0, -E2BIG (name too long), -ENOMEM. */
int dump_dir_add(struct dump_dirbuf *b, uint32_t ino, uint8_t dtype,
                 const char *name, size_t namelen);
/* Close the last block (its last entry spans to the block's end). */
void dump_dir_finish(struct dump_dirbuf *b);
void dump_dir_free(struct dump_dirbuf *b);

struct dump_dirent {
    uint32_t ino;
    uint8_t dtype;
    uint8_t namelen;
    char name[DUMP_MAXNAMLEN + 1];
};
/*
 * Walk the entries of a directory's contents DATA (LEN bytes).  *POS is
 * the cursor (start at 0).  Returns 1 with *E filled, 0 at the end, or
 * -EBADMSG for a malformed block (*POS then names the offset).  Empty
 * slots (ino 0) are skipped.
 */
int dump_dir_next(const uint8_t *data, size_t len, size_t *pos,
                  struct dump_dirent *e);

/* ---- extended attribute records ---- */

struct dump_xattr {
    const char *name;   /* "user.foo", "system.posix_acl_access", ... */
    const void *value;  /* in the Linux xattr layout (ACLs: version 2) */
    size_t size;
};
/*
 * Encode N attributes the way Linux dump records them (ext2's in-inode
 * layout; POSIX ACLs converted to ext2's on-disk ACL form).  *OUT is
 * malloc'd, *OUTLEN its length.  Returns 0, -E2BIG (over DUMP_XATTR_MAX),
 * -EOPNOTSUPP (a namespace ext2 cannot name), -EINVAL (a malformed ACL),
 * -ENOMEM.
 */
/* The length dump_xattr_encode gives XS, without encoding; SIZE_MAX when
 * it would refuse them. */
size_t dump_xattr_record_size(const struct dump_xattr *xs, size_t n);
int dump_xattr_encode(const struct dump_xattr *xs, size_t n, uint8_t **out,
                      size_t *outlen);
/*
 * Decode an attribute record.  FN is called for each attribute with its
 * full name and its value in the Linux xattr layout (ACLs converted
 * back); a non-zero return from FN stops the walk and is returned.
 * Returns 0 or -EBADMSG (where: *BADOFF, when not NULL).
 */
int dump_xattr_decode(const uint8_t *data, size_t len,
                      int (*fn)(void *arg, const char *name,
                                const void *value, size_t size),
                      void *arg, size_t *badoff);

/* ---- inode maps ---- */

/* Bytes of a map for inodes 1..MAXINO, rounded up to whole tape blocks. */
size_t dump_map_bytes(uint32_t maxino);
static inline void dump_map_set(uint8_t *map, uint32_t ino)
{
    map[(ino - 1) / 8] |= (uint8_t)(1u << ((ino - 1) % 8));
}
static inline bool dump_map_isset(const uint8_t *map, size_t bytes,
                                  uint32_t ino)
{
    return ino && (ino - 1) / 8 < bytes &&
           (map[(ino - 1) / 8] >> ((ino - 1) % 8)) & 1;
}

/* ---- the record layer ---- */

struct dump_writer {
    int fd;
    int ntrec;             /* blocks per record */
    bool exact_records;    /* a tape: every write is exactly one record */
    uint8_t *rec;          /* the record being filled */
    int fill;              /* blocks in it */
    uint64_t blocks;       /* blocks written or buffered so far */
    uint64_t bytes_out;    /* bytes handed to write(2) */
    int error;             /* the first write error, sticky */
    /* When set and a write is interrupted by a signal: -EINTR (NULL:
     * interrupted writes are retried). */
    volatile sig_atomic_t *stop;
};
/* 0 or -ENOMEM. */
int dump_writer_init(struct dump_writer *w, int fd, int ntrec,
                     bool exact_records);
/* Append one block; writes a record when it is full.  0 or -errno. */
int dump_write_block(struct dump_writer *w, const void *blk);
/* Blocks still free in the current record (ntrec when it is empty). */
int dump_writer_room(const struct dump_writer *w);
/* Write a final partial record (padded with zeros); 0 or -errno. */
int dump_writer_flush(struct dump_writer *w);
void dump_writer_free(struct dump_writer *w);

struct dump_reader {
    int fd;
    int ntrec;             /* from the first header, or as given */
    uint8_t *rec;
    size_t have;           /* bytes in rec */
    size_t pos;            /* next byte in rec */
    uint64_t block;        /* blocks consumed: the next block's number */
    bool eof;
};
/* 0 or -ENOMEM.  NTREC is the largest record expected (read size). */
int dump_reader_init(struct dump_reader *r, int fd, int ntrec);
/* Read the next block into BLK: 0, -ENODATA at the end, -EIO for a
 * partial block at the end, or -errno of read(2). */
int dump_read_block(struct dump_reader *r, uint8_t blk[DUMP_TP_BSIZE]);
void dump_reader_free(struct dump_reader *r);

#endif
