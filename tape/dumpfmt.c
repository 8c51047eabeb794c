/*
 * dumpfmt.c - encoding and decoding of the BSD "new" dump format, as Linux
 * dump 0.4b47 writes it and its restore reads it.
 *
 * THEORY OF THE FORMAT
 *
 * A dump is a sequence of 1,024-byte tape blocks, written in records of
 * NTREC blocks (the blocking factor; one write(2) per record, which on a
 * tape drive is one tape record).  Some blocks are headers (struct s_spcl,
 * dump_header here), recognised by their magic number 60012 and a checksum:
 * the 256 little-endian 32-bit words of a header sum to 84446.  Every other
 * block is data belonging to the header before it.
 *
 * A dump of one volume is, in order:
 *
 *   TS_TAPE   the volume header: date of this dump (c_date), date of the
 *             dump it is based on (c_ddate, 0 for a full dump), level,
 *             label, file system, device and host names, blocking factor.
 *   TS_CLRI   a bitmap of the inodes that were IN USE when the dump was
 *             made (bit i-1 is inode i); c_count map blocks follow.  The
 *             name is historical: Debian's dump 0.4b47 writes its map of
 *             used inodes here (checked on its dumps of ext4), and restore
 *             of an incremental deletes the files whose inodes it lacks.
 *   TS_BITS   a bitmap of the inodes this dump carries, likewise.
 *   TS_INODE  one per directory, in inode order, then one per file, in
 *             inode order.  The header carries the inode (mode, owner,
 *             times in microseconds, size, and for devices the device
 *             number in di_db[0]) and c_addr: for each of the next c_count
 *             1 KiB pieces of the file, 1 if a data block follows, 0 for a
 *             hole.  Files longer than 512 KiB continue in TS_ADDR headers
 *             with the next 512 entries each.
 *   TS_END    fills the rest of the last record.
 *
 * Directories are dumped as their entries in BSD form: { u32 inode,
 * u16 record length, u8 type (DT_*), u8 name length, the name, a NUL,
 * padding to 4 bytes }, in 512-byte blocks that no entry crosses; the
 * last entry of a block spans to its end.  Each directory starts with "."
 * and "..".  Names come only from directories: a file's header carries no
 * name, so hard links are simply several entries naming one inode.
 *
 * Symbolic links are dumped as files whose data is the target.  Extended
 * attributes follow their inode as a second TS_INODE header for the same
 * inode with DR_EXTATTRIBUTES in c_flags, c_extattributes = EXT_XATTR and
 * di_size the length of the attribute record that follows in its data
 * blocks.  That record is ext2's in-inode attribute layout: the magic
 * 0xEA020001, then entries { u8 name length, u8 name index, u16 value
 * offset, u32 0, u32 value size, u32 hash, name padded to 4 } ended by
 * four zero bytes, then the values, each 4-byte aligned, at offsets
 * counted from the first entry.  The name index says the namespace (1
 * user., 2 system.posix_acl_access, 3 system.posix_acl_default, 4
 * trusted., 6 security., 7 system.).  ACLs are stored in ext2's on-disk
 * form: a u32 version 1, then entries of { u16 tag, u16 perm } for the
 * owner, group, mask and other entries and { u16 tag, u16 perm, u32 id }
 * for named users and groups; we convert from and to the version-2 form
 * that the Linux xattr calls use.
 *
 * All integers are in the byte order of the machine that wrote the dump;
 * we write little-endian and read either order (the magic tells which).
 * Dates are 32-bit seconds, as in the format (until 2038).
 *
 * GUARANTEES: encoders produce only what the format can carry or fail with
 * -E2BIG/-EOPNOTSUPP; decoders check every length and offset against the
 * buffer they were given and answer -EBADMSG, never read outside it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dumpfmt.h"

/* ---- little helpers: fixed-order integers ---- */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p, bool swap)
{
    return swap ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

static uint32_t get32(const uint8_t *p, bool swap)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[swap ? i : 3 - i] << (8 * (3 - i));
    return v;
}

/* ---- headers ---- */

/* Offsets of the fields of struct s_spcl. */
enum {
    O_TYPE = 0, O_DATE = 4, O_DDATE = 8, O_VOLUME = 12, O_TAPEA = 16,
    O_INO = 20, O_MAGIC = 24, O_CHECKSUM = 28, O_DINODE = 32,
    O_COUNT = 160, O_ADDR = 164, O_LABEL = 676, O_LEVEL = 692,
    O_FILESYS = 696, O_DEV = 760, O_HOST = 824, O_FLAGS = 888,
    O_FIRSTREC = 892, O_NTREC = 896, O_EXTATTR = 900, O_SPARE = 904,
};

static void put_string(uint8_t *p, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap - 1);
    memcpy(p, s, n);
    memset(p + n, 0, cap - n);
}

static void encode_inode(const struct dump_inode *di, uint8_t *p)
{
    put16(p + 0, di->mode);
    put16(p + 2, (uint16_t)di->nlink);
    put32(p + 4, di->inumber);
    put32(p + 8, (uint32_t)di->size);
    put32(p + 12, (uint32_t)(di->size >> 32));
    const uint32_t times[6] = { di->atime_sec, di->atime_usec, di->mtime_sec,
                                di->mtime_usec, di->ctime_sec,
                                di->ctime_usec };
    for (int i = 0; i < 6; i++)
        put32(p + 16 + 4 * i, times[i]);
    for (int i = 0; i < 12; i++)
        put32(p + 40 + 4 * i, di->db[i]);
    for (int i = 0; i < 3; i++)
        put32(p + 88 + 4 * i, di->ib[i]);
    put32(p + 100, di->flags);
    put32(p + 104, (uint32_t)di->blocks);
    put32(p + 108, (uint32_t)di->gen);
    put32(p + 112, di->uid);
    put32(p + 116, di->gid);
    put32(p + 120, (uint32_t)di->spare[0]);
    put32(p + 124, (uint32_t)di->spare[1]);
}

static void decode_inode(const uint8_t *p, bool sw, struct dump_inode *di)
{
    di->mode = get16(p + 0, sw);
    di->nlink = (int16_t)get16(p + 2, sw);
    di->inumber = get32(p + 4, sw);
    uint64_t lo = get32(p + 8, sw), hi = get32(p + 12, sw);
    di->size = sw ? (lo << 32 | hi) : (hi << 32 | lo);
    uint32_t *times[6] = { &di->atime_sec, &di->atime_usec, &di->mtime_sec,
                           &di->mtime_usec, &di->ctime_sec,
                           &di->ctime_usec };
    for (int i = 0; i < 6; i++)
        *times[i] = get32(p + 16 + 4 * i, sw);
    for (int i = 0; i < 12; i++)
        di->db[i] = get32(p + 40 + 4 * i, sw);
    for (int i = 0; i < 3; i++)
        di->ib[i] = get32(p + 88 + 4 * i, sw);
    di->flags = get32(p + 100, sw);
    di->blocks = (int32_t)get32(p + 104, sw);
    di->gen = (int32_t)get32(p + 108, sw);
    di->uid = get32(p + 112, sw);
    di->gid = get32(p + 116, sw);
    di->spare[0] = (int32_t)get32(p + 120, sw);
    di->spare[1] = (int32_t)get32(p + 124, sw);
}

static uint32_t word_sum(const uint8_t *b, bool swap)
{
    uint32_t sum = 0;
    for (int i = 0; i < DUMP_TP_BSIZE; i += 4)
        sum += get32(b + i, swap);
    return sum;
}

void dump_header_encode(const struct dump_header *h,
                        uint8_t out[DUMP_TP_BSIZE])
{
    memset(out, 0, DUMP_TP_BSIZE);
    put32(out + O_TYPE, (uint32_t)h->type);
    put32(out + O_DATE, (uint32_t)h->date);
    put32(out + O_DDATE, (uint32_t)h->ddate);
    put32(out + O_VOLUME, (uint32_t)h->volume);
    put32(out + O_TAPEA, h->tapea);
    put32(out + O_INO, h->ino);
    put32(out + O_MAGIC, DUMP_NFS_MAGIC);
    encode_inode(&h->di, out + O_DINODE);
    put32(out + O_COUNT, (uint32_t)h->count);
    memcpy(out + O_ADDR, h->addr, DUMP_TP_NINDIR);
    put_string(out + O_LABEL, h->label, sizeof(h->label));
    put32(out + O_LEVEL, (uint32_t)h->level);
    put_string(out + O_FILESYS, h->filesys, sizeof(h->filesys));
    put_string(out + O_DEV, h->dev, sizeof(h->dev));
    put_string(out + O_HOST, h->host, sizeof(h->host));
    put32(out + O_FLAGS, (uint32_t)h->flags);
    put32(out + O_FIRSTREC, (uint32_t)h->firstrec);
    put32(out + O_NTREC, (uint32_t)h->ntrec);
    put32(out + O_EXTATTR, (uint32_t)h->extattributes);
    for (int i = 0; i < 30; i++)
        put32(out + O_SPARE + 4 * i, (uint32_t)h->spare[i]);
    put32(out + O_CHECKSUM, DUMP_CHECKSUM - word_sum(out, false));
}

static void get_string(char *dst, const uint8_t *src, size_t cap)
{
    memcpy(dst, src, cap);
    dst[cap - 1] = 0;
}

int dump_header_decode(const uint8_t in[DUMP_TP_BSIZE], struct dump_header *h)
{
    bool sw;
    if (get32(in + O_MAGIC, false) == DUMP_NFS_MAGIC)
        sw = false;
    else if (get32(in + O_MAGIC, true) == DUMP_NFS_MAGIC)
        sw = true;
    else
        return -EBADMSG;
    if (word_sum(in, sw) != DUMP_CHECKSUM)
        return -EBADMSG;
    h->type = (int32_t)get32(in + O_TYPE, sw);
    h->date = (int32_t)get32(in + O_DATE, sw);
    h->ddate = (int32_t)get32(in + O_DDATE, sw);
    h->volume = (int32_t)get32(in + O_VOLUME, sw);
    h->tapea = get32(in + O_TAPEA, sw);
    h->ino = get32(in + O_INO, sw);
    decode_inode(in + O_DINODE, sw, &h->di);
    h->count = (int32_t)get32(in + O_COUNT, sw);
    memcpy(h->addr, in + O_ADDR, DUMP_TP_NINDIR);
    get_string(h->label, in + O_LABEL, sizeof(h->label));
    h->level = (int32_t)get32(in + O_LEVEL, sw);
    get_string(h->filesys, in + O_FILESYS, sizeof(h->filesys));
    get_string(h->dev, in + O_DEV, sizeof(h->dev));
    get_string(h->host, in + O_HOST, sizeof(h->host));
    h->flags = (int32_t)get32(in + O_FLAGS, sw);
    h->firstrec = (int32_t)get32(in + O_FIRSTREC, sw);
    h->ntrec = (int32_t)get32(in + O_NTREC, sw);
    h->extattributes = (int32_t)get32(in + O_EXTATTR, sw);
    for (int i = 0; i < 30; i++)
        h->spare[i] = (int32_t)get32(in + O_SPARE + 4 * i, sw);
    return 0;
}

void dump_ext_put(struct dump_header *h, const struct dump_snapfs_ext *x)
{
    h->spare[0] = (int32_t)DUMP_SNAPFS_MARK;
    memcpy(&h->spare[1], x->uuid, 16);
    h->spare[5] = (int32_t)(uint32_t)x->est_bytes;
    h->spare[6] = (int32_t)(uint32_t)(x->est_bytes >> 32);
    h->spare[7] = (int32_t)x->part;
    h->spare[8] = (int32_t)x->context;
    h->spare[9] = DUMP_SNAPFS_EXT_VERSION;
}

int dump_ext_get(const struct dump_header *h, struct dump_snapfs_ext *x)
{
    if ((uint32_t)h->spare[0] != DUMP_SNAPFS_MARK)
        return -ENOENT;
    memcpy(x->uuid, &h->spare[1], 16);
    x->est_bytes = (uint64_t)(uint32_t)h->spare[6] << 32 |
                   (uint32_t)h->spare[5];
    x->part = (uint32_t)h->spare[7];
    x->context = (uint32_t)h->spare[8];
    x->version = h->spare[9] ? (uint32_t)h->spare[9] : 1; /* 0: before it */
    return 0;
}

const char *dump_type_name(int32_t type)
{
    static const char *const names[] = { "?", "TS_TAPE", "TS_INODE",
                                         "TS_BITS", "TS_ADDR", "TS_END",
                                         "TS_CLRI" };
    return type >= 1 && type <= 6 ? names[type] : "an unknown header type";
}

/* ---- directory blocks ---- */

uint8_t dump_dtype_of_mode(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return DT_REG;
    case S_IFDIR: return DT_DIR;
    case S_IFLNK: return DT_LNK;
    case S_IFCHR: return DT_CHR;
    case S_IFBLK: return DT_BLK;
    case S_IFIFO: return DT_FIFO;
    case S_IFSOCK: return DT_SOCK;
    default: return DT_UNKNOWN;
    }
}

static size_t dirent_size(size_t namelen)
{
    return (8 + namelen + 1 + 3) & ~(size_t)3;
}

/* Stretch the open block's last entry to the end of its block. */
static void dir_close_block(struct dump_dirbuf *b)
{
    if (!b->open)
        return;
    size_t block_end = (b->last / DUMP_DIRBLKSIZ + 1) * DUMP_DIRBLKSIZ;
    put16(b->data + b->last + 4, (uint16_t)(block_end - b->last));
    b->len = block_end;
    b->open = false;
}

int dump_dir_add(struct dump_dirbuf *b, uint32_t ino, uint8_t dtype,
                 const char *name, size_t namelen)
{
    if (namelen == 0 || namelen > DUMP_MAXNAMLEN)
        return -E2BIG;
    size_t need = dirent_size(namelen);
    if (b->open && b->len + need > (b->last / DUMP_DIRBLKSIZ + 1) *
                                       DUMP_DIRBLKSIZ)
        dir_close_block(b);
    if (b->len + DUMP_DIRBLKSIZ > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4 * DUMP_DIRBLKSIZ;
        uint8_t *p = realloc(b->data, cap);
        if (!p)
            return -ENOMEM;
        memset(p + b->cap, 0, cap - b->cap);
        b->data = p;
        b->cap = cap;
    }
    uint8_t *e = b->data + b->len;
    put32(e, ino);
    put16(e + 4, (uint16_t)need);
    e[6] = dtype;
    e[7] = (uint8_t)namelen;
    memcpy(e + 8, name, namelen);
    memset(e + 8 + namelen, 0, need - 8 - namelen);
    b->last = b->len;
    b->len += need;
    b->open = true;
    return 0;
}

void dump_dir_finish(struct dump_dirbuf *b)
{
    dir_close_block(b);
}

void dump_dir_free(struct dump_dirbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

int dump_dir_next(const uint8_t *data, size_t len, size_t *pos,
                  struct dump_dirent *e)
{
    while (*pos + 8 <= len) {
        const uint8_t *p = data + *pos;
        size_t in_block = DUMP_DIRBLKSIZ - *pos % DUMP_DIRBLKSIZ;
        uint16_t reclen = get16(p + 4, false);
        uint8_t namelen = p[7];
        /* An entry stays inside its 512-byte block; its name inside the
         * data (a last block may be cut short by the directory's size). */
        if (reclen < 8 || reclen % 4 || reclen > in_block ||
            8u + namelen > reclen || *pos + 8 + namelen > len)
            return -EBADMSG;
        uint32_t ino = get32(p, false);
        *pos += reclen;
        if (!ino)
            continue;
        if (namelen == 0 || memchr(p + 8, 0, namelen) ||
            memchr(p + 8, '/', namelen))
            return -EBADMSG;
        e->ino = ino;
        e->dtype = p[6];
        e->namelen = namelen;
        memcpy(e->name, p + 8, namelen);
        e->name[namelen] = 0;
        return 1;
    }
    return 0;
}

/* ---- extended attributes ---- */

static const struct {
    uint8_t index;
    const char *prefix;
    bool whole;  /* the prefix is the whole name */
} xattr_ns[] = {
    { 2, "system.posix_acl_access", true },
    { 3, "system.posix_acl_default", true },
    { 1, "user.", false },
    { 4, "trusted.", false },
    { 6, "security.", false },
    { 7, "system.", false },
};
#define N_XATTR_NS (sizeof(xattr_ns) / sizeof(xattr_ns[0]))

/* The ACL tags whose entries carry an id. */
enum { ACL_T_USER_OBJ = 1, ACL_T_USER = 2, ACL_T_GROUP_OBJ = 4,
       ACL_T_GROUP = 8, ACL_T_MASK = 0x10, ACL_T_OTHER = 0x20 };

static bool acl_tag_has_id(uint16_t tag)
{
    return tag == ACL_T_USER || tag == ACL_T_GROUP;
}

/* Linux xattr ACL (version 2, 8-byte entries) to ext2's disk form. */
static int acl_to_disk(const uint8_t *in, size_t len, uint8_t *out,
                       size_t *outlen)
{
    if (len < 4 || (len - 4) % 8 || get32(in, false) != 2)
        return -EINVAL;
    size_t o = 4;
    put32(out, 1);
    for (size_t i = 4; i < len; i += 8) {
        uint16_t tag = get16(in + i, false);
        if (!(tag == ACL_T_USER_OBJ || tag == ACL_T_USER ||
              tag == ACL_T_GROUP_OBJ || tag == ACL_T_GROUP ||
              tag == ACL_T_MASK || tag == ACL_T_OTHER))
            return -EINVAL;
        memcpy(out + o, in + i, 4);
        o += 4;
        if (acl_tag_has_id(tag)) {
            memcpy(out + o, in + i + 4, 4);
            o += 4;
        }
    }
    *outlen = o;
    return 0;
}

/* ext2's disk ACL (byte order SW) back to the Linux xattr form; OUT holds
 * 2 * LEN bytes.  -EBADMSG when malformed. */
static int acl_from_disk(const uint8_t *in, size_t len, bool sw, uint8_t *out,
                         size_t *outlen)
{
    if (len < 4 || get32(in, sw) != 1)
        return -EBADMSG;
    size_t o = 4;
    put32(out, 2);
    for (size_t i = 4; i < len;) {
        if (i + 4 > len)
            return -EBADMSG;
        uint16_t tag = get16(in + i, sw), perm = get16(in + i + 2, sw);
        uint32_t id = (uint32_t)-1;
        i += 4;
        if (acl_tag_has_id(tag)) {
            if (i + 4 > len)
                return -EBADMSG;
            id = get32(in + i, sw);
            i += 4;
        }
        put16(out + o, tag);
        put16(out + o + 2, perm);
        put32(out + o + 4, id);
        o += 8;
    }
    *outlen = o;
    return 0;
}

static int xattr_split(const char *name, uint8_t *index, const char **suffix)
{
    for (size_t i = 0; i < N_XATTR_NS; i++) {
        size_t n = strlen(xattr_ns[i].prefix);
        if (strncmp(name, xattr_ns[i].prefix, n))
            continue;
        if (xattr_ns[i].whole && name[n])
            continue;
        *index = xattr_ns[i].index;
        *suffix = name + n;
        return 0;
    }
    return -EOPNOTSUPP;
}

static bool is_acl_index(uint8_t index)
{
    return index == 2 || index == 3;
}

int dump_xattr_encode(const struct dump_xattr *xs, size_t n, uint8_t **out,
                      size_t *outlen)
{
    /* Sizes first: entries, the terminator, then the values. */
    size_t entries = 0, values = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t index;
        const char *suffix;
        int rc = xattr_split(xs[i].name, &index, &suffix);
        if (rc)
            return rc;
        size_t sl = strlen(suffix);
        if (sl > 255)
            return -E2BIG;
        entries += (16 + sl + 3) & ~(size_t)3;
        values += (xs[i].size + 3) & ~(size_t)3;
    }
    size_t total = 4 + entries + 4 + values;
    if (total > DUMP_XATTR_MAX)
        return -E2BIG;
    uint8_t *buf = calloc(1, total);
    if (!buf)
        return -ENOMEM;
    put32(buf, DUMP_XATTR_MAGIC_INODE);
    size_t e = 4, v = 4 + entries + 4;
    for (size_t i = 0; i < n; i++) {
        uint8_t index;
        const char *suffix;
        xattr_split(xs[i].name, &index, &suffix);
        size_t sl = strlen(suffix), vsize = xs[i].size;
        if (is_acl_index(index)) {
            int rc = acl_to_disk(xs[i].value, xs[i].size, buf + v, &vsize);
            if (rc) {
                free(buf);
                return rc;
            }
        } else if (vsize) {
            memcpy(buf + v, xs[i].value, vsize);
        }
        buf[e] = (uint8_t)sl;
        buf[e + 1] = index;
        put16(buf + e + 2, (uint16_t)(v - 4));
        put32(buf + e + 8, (uint32_t)vsize);
        memcpy(buf + e + 16, suffix, sl);
        e += (16 + sl + 3) & ~(size_t)3;
        v += (vsize + 3) & ~(size_t)3;
    }
    *out = buf;
    *outlen = v;
    return 0;
}

/* Bytes of a Linux xattr ACL in ext2's disk form; SIZE_MAX if malformed
 * (acl_to_disk checks the tags themselves). */
static size_t acl_disk_size(const uint8_t *in, size_t len)
{
    if (len < 4 || (len - 4) % 8 || get32(in, false) != 2)
        return SIZE_MAX;
    size_t o = 4;
    for (size_t i = 4; i < len; i += 8)
        o += acl_tag_has_id(get16(in + i, false)) ? 8 : 4;
    return o;
}

size_t dump_xattr_record_size(const struct dump_xattr *xs, size_t n)
{
    size_t len = 4 + 4;
    for (size_t i = 0; i < n; i++) {
        uint8_t index;
        const char *suffix;
        if (xattr_split(xs[i].name, &index, &suffix) || strlen(suffix) > 255)
            return SIZE_MAX;
        size_t vsize = is_acl_index(index)
                           ? acl_disk_size(xs[i].value, xs[i].size)
                           : xs[i].size;
        if (vsize == SIZE_MAX)
            return SIZE_MAX;
        len += ((16 + strlen(suffix) + 3) & ~(size_t)3) +
               ((vsize + 3) & ~(size_t)3);
    }
    return len;
}

static int xattr_name(uint8_t index, const uint8_t *suffix, size_t sl,
                      char *name)
{
    for (size_t i = 0; i < N_XATTR_NS; i++) {
        if (xattr_ns[i].index != index)
            continue;
        if (xattr_ns[i].whole ? sl != 0 : sl == 0)
            return -EBADMSG;
        if (memchr(suffix, 0, sl))
            return -EBADMSG;
        size_t pl = strlen(xattr_ns[i].prefix);
        memcpy(name, xattr_ns[i].prefix, pl);
        memcpy(name + pl, suffix, sl);
        name[pl + sl] = 0;
        return 0;
    }
    return -EBADMSG;
}

int dump_xattr_decode(const uint8_t *data, size_t len,
                      int (*fn)(void *arg, const char *name,
                                const void *value, size_t size),
                      void *arg, size_t *badoff)
{
    size_t first, base, off;
    bool sw = false;
    if (len >= 4 && get32(data, false) == DUMP_XATTR_MAGIC_INODE) {
        first = 4;
        base = 4;
    } else if (len >= 4 && get32(data, true) == DUMP_XATTR_MAGIC_INODE) {
        first = base = 4;
        sw = true;
    } else if (len >= 32 && (get32(data, false) == DUMP_XATTR_MAGIC_BLOCK ||
                             get32(data, true) == DUMP_XATTR_MAGIC_BLOCK)) {
        sw = get32(data, false) != DUMP_XATTR_MAGIC_BLOCK;
        first = 32;
        base = 0;
    } else {
        off = 0;
        goto bad;
    }
    uint8_t *acl = NULL;
    for (off = first; off + 4 <= len && get32(data + off, false); ) {
        if (off + 16 > len)
            goto bad_free;
        uint8_t sl = data[off], index = data[off + 1];
        size_t voff = base + get16(data + off + 2, sw);
        size_t vsize = get32(data + off + 8, sw);
        if (off + 16 + sl > len || voff > len || vsize > len - voff ||
            get32(data + off + 4, sw) != 0)
            goto bad_free;
        char name[16 + 256];
        if (xattr_name(index, data + off + 16, sl, name))
            goto bad_free;
        const void *value = data + voff;
        size_t size = vsize;
        if (is_acl_index(index)) {
            free(acl);
            acl = malloc(2 * vsize + 8);
            if (!acl)
                return -ENOMEM;
            if (acl_from_disk(data + voff, vsize, sw, acl, &size))
                goto bad_free;
            value = acl;
        }
        int rc = fn(arg, name, value, size);
        if (rc) {
            free(acl);
            return rc;
        }
        off += (16 + sl + 3) & ~(size_t)3;
    }
    free(acl);
    if (off + 4 > len)
        goto bad;
    return 0;
bad_free:
    free(acl);
bad:
    if (badoff)
        *badoff = off;
    return -EBADMSG;
}

/* ---- inode maps ---- */

size_t dump_map_bytes(uint32_t maxino)
{
    size_t bytes = ((size_t)maxino + 7) / 8;
    return (bytes + DUMP_TP_BSIZE - 1) / DUMP_TP_BSIZE * DUMP_TP_BSIZE;
}
