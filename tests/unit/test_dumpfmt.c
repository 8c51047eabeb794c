/*
 * test_dumpfmt.c - the dump format codecs: headers round-trip and carry a
 * checksum that catches any changed byte; headers of the other byte order
 * are read; directory blocks never split an entry and round-trip names of
 * every length; attribute records round-trip every namespace and an ACL
 * of 1,024 entries, read records that Linux dump wrote, and refuse
 * malformed ones; the record layer writes whole records only.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "dumpfmt.h"

static void fill_header(struct dump_header *h)
{
    memset(h, 0, sizeof(*h));
    h->type = TS_INODE;
    h->date = 1795349851;
    h->ddate = 1795340000;
    h->volume = 1;
    h->tapea = 12345;
    h->ino = 77;
    h->di.mode = S_IFREG | 0640;
    h->di.nlink = 3;
    h->di.size = 0x123456789aull;
    h->di.mtime_sec = 1577934245;
    h->di.mtime_usec = 123456;
    h->di.uid = 1000;
    h->di.gid = 100;
    h->di.db[0] = 259;
    h->count = 3;
    h->addr[0] = h->addr[2] = 1;
    strcpy(h->label, "nightly");
    h->level = 3;
    strcpy(h->filesys, "/qt1");
    strcpy(h->host, "filer1");
    h->flags = DR_NEWINODEFMT;
    h->ntrec = 64;
    h->spare[5] = -7;
}

static void test_headers(void)
{
    struct dump_header h, g;
    uint8_t blk[DUMP_TP_BSIZE];
    fill_header(&h);
    dump_header_encode(&h, blk);
    CHECK(dump_header_decode(blk, &g) == 0, "decode");
    CHECK(!memcmp(&h, &g, sizeof(h)), "round trip differs");

    /* Any single changed byte is caught. */
    int caught = 0;
    for (int i = 0; i < DUMP_TP_BSIZE; i++) {
        blk[i] ^= 0x10;
        caught += dump_header_decode(blk, &g) == -EBADMSG;
        blk[i] ^= 0x10;
    }
    CHECK(caught == DUMP_TP_BSIZE, "%d of %d corruptions caught", caught,
          DUMP_TP_BSIZE);

    /* The same header written big-endian reads the same. */
    uint8_t be[DUMP_TP_BSIZE];
    memcpy(be, blk, sizeof(be));
    for (int i = 0; i < DUMP_TP_BSIZE; i += 4) {
        bool strings = (i >= 676 && i < 692) || (i >= 696 && i < 888) ||
                       (i >= 164 && i < 676);
        if (strings)
            continue;
        uint8_t t = be[i];
        be[i] = be[i + 3];
        be[i + 3] = t;
        t = be[i + 1];
        be[i + 1] = be[i + 2];
        be[i + 2] = t;
    }
    /* 16-bit fields: mode and nlink share a word; swap them as halves. */
    uint8_t m0 = be[32], m1 = be[33];
    be[32] = be[34]; be[33] = be[35]; be[34] = m0; be[35] = m1;
    /* di_size is one 64-bit field: its words trade places. */
    uint8_t w[4];
    memcpy(w, be + 40, 4);
    memcpy(be + 40, be + 44, 4);
    memcpy(be + 44, w, 4);
    /* A big-endian writer sums its own words, strings included. */
    memset(be + 28, 0, 4);
    uint32_t sum = 0;
    for (int i = 0; i < DUMP_TP_BSIZE; i += 4)
        sum += (uint32_t)be[i] << 24 | (uint32_t)be[i + 1] << 16 |
               (uint32_t)be[i + 2] << 8 | be[i + 3];
    uint32_t ck = DUMP_CHECKSUM - sum;
    be[28] = (uint8_t)(ck >> 24);
    be[29] = (uint8_t)(ck >> 16);
    be[30] = (uint8_t)(ck >> 8);
    be[31] = (uint8_t)ck;
    CHECK(dump_header_decode(be, &g) == 0, "big-endian header refused");
    CHECK(g.di.size == h.di.size && g.di.mode == h.di.mode &&
          g.di.nlink == h.di.nlink && g.tapea == h.tapea &&
          g.spare[5] == -7, "big-endian header misread");

    memset(blk, 0, sizeof(blk));
    CHECK(dump_header_decode(blk, &g) == -EBADMSG, "zeros are no header");
    CHECK(!strcmp(dump_type_name(TS_CLRI), "TS_CLRI"), "type name");
}

static void test_dirs(void)
{
    struct dump_dirbuf b;
    memset(&b, 0, sizeof(b));
    char name[256];
    int n = 0;
    CHECK_RC(dump_dir_add(&b, 2, DT_DIR, ".", 1));
    CHECK_RC(dump_dir_add(&b, 2, DT_DIR, "..", 2));
    for (int len = 1; len <= 255; len += 7, n++) {
        memset(name, 'a' + n % 26, (size_t)len);
        CHECK_RC(dump_dir_add(&b, (uint32_t)(100 + n), DT_REG, name,
                              (size_t)len));
    }
    dump_dir_finish(&b);
    CHECK(b.len % DUMP_DIRBLKSIZ == 0, "length %zu", b.len);
    CHECK(dump_dir_add(&b, 5, DT_REG, name, 0) == -E2BIG, "empty name");
    memset(name, 'x', 256);
    CHECK(dump_dir_add(&b, 5, DT_REG, name, 256) == -E2BIG, "long name");

    size_t pos = 0;
    struct dump_dirent e;
    int seen = 0, rc;
    while ((rc = dump_dir_next(b.data, b.len, &pos, &e)) == 1) {
        if (seen == 0)
            CHECK(!strcmp(e.name, ".") && e.ino == 2, "first is .");
        if (seen >= 2) {
            int k = seen - 2;
            CHECK(e.ino == (uint32_t)(100 + k) && e.namelen == 1 + 7 * k &&
                  e.name[0] == 'a' + k % 26 && e.dtype == DT_REG,
                  "entry %d: ino %u len %u", k, e.ino, e.namelen);
        }
        seen++;
    }
    CHECK(rc == 0 && seen == n + 2, "rc %d, %d of %d entries", rc, seen,
          n + 2);

    /* An entry that claims to cross its block is refused. */
    b.data[4] = 0x00;
    b.data[5] = 0x04; /* reclen 1024 */
    pos = 0;
    CHECK(dump_dir_next(b.data, b.len, &pos, &e) == -EBADMSG,
          "crossing entry");
    dump_dir_free(&b);

    /* A directory block as Linux dump wrote it (d1: ., .., d2, f). */
    static const uint8_t linux_dir[48] = {
        0x0e,0,0,0, 0x0c,0, 4,1, '.',0,0x06,0x73,
        0x02,0,0,0, 0x0c,0, 4,2, '.','.',0,0,
        0x0f,0,0,0, 0x0c,0, 4,2, 'd','2',0,0x74,
        0x10,0,0,0, 0xdc,0x01, 8,1, 'f',0,0,0 };
    uint8_t blk[DUMP_DIRBLKSIZ];
    memset(blk, 0, sizeof(blk));
    memcpy(blk, linux_dir, sizeof(linux_dir));
    pos = 0;
    const char *want[] = { ".", "..", "d2", "f" };
    uint32_t want_ino[] = { 14, 2, 15, 16 };
    for (int i = 0; i < 4; i++) {
        CHECK(dump_dir_next(blk, sizeof(blk), &pos, &e) == 1 &&
              !strcmp(e.name, want[i]) && e.ino == want_ino[i],
              "linux entry %d", i);
    }
    CHECK(dump_dir_next(blk, sizeof(blk), &pos, &e) == 0, "linux end");
}

struct seen {
    int n;
    char names[8][64];
    uint8_t values[8][9000];
    size_t sizes[8];
};

static int collect(void *arg, const char *name, const void *value,
                   size_t size)
{
    struct seen *s = arg;
    if (s->n == 8 || size > sizeof(s->values[0]))
        return -E2BIG;
    snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
    memcpy(s->values[s->n], value, size);
    s->sizes[s->n++] = size;
    return 0;
}

/* A Linux xattr ACL of N entries: owner, N-4 named users, group, mask,
 * other. */
static size_t make_acl(uint8_t *buf, int n)
{
    size_t o = 4;
    uint32_t v = 2;
    memcpy(buf, &v, 4);
    struct { uint16_t tag, perm; uint32_t id; } e;
    e = (typeof(e)){ 1, 7, (uint32_t)-1 };
    memcpy(buf + o, &e, 8), o += 8;
    for (int i = 0; i < n - 4; i++) {
        e = (typeof(e)){ 2, (uint16_t)(i % 8), (uint32_t)(1000 + i) };
        memcpy(buf + o, &e, 8), o += 8;
    }
    e = (typeof(e)){ 4, 5, (uint32_t)-1 };
    memcpy(buf + o, &e, 8), o += 8;
    e = (typeof(e)){ 0x10, 7, (uint32_t)-1 };
    memcpy(buf + o, &e, 8), o += 8;
    e = (typeof(e)){ 0x20, 4, (uint32_t)-1 };
    memcpy(buf + o, &e, 8), o += 8;
    return o;
}

static void test_xattrs(void)
{
    static uint8_t acl[4 + 8 * 1024], dflt[4 + 8 * 5];
    size_t acl_len = make_acl(acl, 1024), dflt_len = make_acl(dflt, 5);
    static const uint8_t dos[] = { 0, 0, 4, 0, 4, 0, 0, 0, 0x11, 0, 0, 0 };
    struct dump_xattr xs[] = {
        { "user.DOSATTRIB", dos, sizeof(dos) },
        { "system.posix_acl_access", acl, acl_len },
        { "system.posix_acl_default", dflt, dflt_len },
        { "trusted.snapfs.qtree", "style=unix quota=1048576", 24 },
        { "security.selinux", "x", 1 },
        { "user.empty", "", 0 },
    };
    uint8_t *rec;
    size_t len;
    CHECK_RC(dump_xattr_encode(xs, 6, &rec, &len));
    for (size_t k = 0; k <= 6; k++) {
        uint8_t *part;
        size_t plen;
        CHECK_RC(dump_xattr_encode(xs, k, &part, &plen));
        CHECK(dump_xattr_record_size(xs, k) == plen,
              "size of %zu attributes: %zu, encoded %zu", k,
              dump_xattr_record_size(xs, k), plen);
        free(part);
    }
    static struct seen s;
    memset(&s, 0, sizeof(s));
    CHECK(dump_xattr_decode(rec, len, collect, &s, NULL) == 0, "decode");
    CHECK(s.n == 6, "%d attributes", s.n);
    for (int i = 0; i < 6 && i < s.n; i++)
        CHECK(!strcmp(s.names[i], xs[i].name) && s.sizes[i] == xs[i].size &&
              !memcmp(s.values[i], xs[i].value, xs[i].size),
              "attribute %d (%s) differs", i, xs[i].name);
    /* Cut anywhere, the record is refused or read short, never overrun
     * (ASan watches the reads). */
    int refused = 0;
    for (size_t cut = 0; cut < len; cut += 97) {
        uint8_t *part = malloc(cut ? cut : 1);
        memcpy(part, rec, cut);
        memset(&s, 0, sizeof(s));
        refused += dump_xattr_decode(part, cut, collect, &s, NULL) ==
                   -EBADMSG;
        free(part);
    }
    CHECK(refused == (int)((len + 96) / 97), "%d cuts refused", refused);
    free(rec);

    struct dump_xattr odd = { "os2.foo", "x", 1 };
    CHECK(dump_xattr_encode(&odd, 1, &rec, &len) == -EOPNOTSUPP,
          "unknown namespace");
    CHECK(dump_xattr_record_size(&odd, 1) == SIZE_MAX, "unknown namespace");
    static uint8_t huge[70000];
    struct dump_xattr big = { "user.big", huge, sizeof(huge) };
    CHECK(dump_xattr_encode(&big, 1, &rec, &len) == -E2BIG, "too big");

    /* The record Linux dump wrote for a file with user.foo=bar and the
     * ACL u::rw-,u:1000:rw-,g::r--,g:100:r--,m::rw-,o::r--. */
    static const uint8_t linux_rec[] = {
        0x01,0x00,0x02,0xea,0x03,0x01,0x58,0x00,0x00,0x00,0x00,0x00,0x03,
        0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x66,0x6f,0x6f,0x00,0x00,0x02,
        0x34,0x00,0x00,0x00,0x00,0x00,0x24,0x00,0x00,0x00,0x00,0x00,0x00,
        0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,
        0x00,0x00,0x00,0x00,0x01,0x00,0x00,0x00,0x01,0x00,0x06,0x00,0x02,
        0x00,0x06,0x00,0xe8,0x03,0x00,0x00,0x04,0x00,0x04,0x00,0x08,0x00,
        0x04,0x00,0x64,0x00,0x00,0x00,0x10,0x00,0x06,0x00,0x20,0x00,0x04,
        0x00,0x62,0x61,0x72,0x00 };
    memset(&s, 0, sizeof(s));
    CHECK(dump_xattr_decode(linux_rec, sizeof(linux_rec), collect, &s,
                            NULL) == 0, "linux record");
    CHECK(s.n == 2 && !strcmp(s.names[0], "user.foo") && s.sizes[0] == 3 &&
          !memcmp(s.values[0], "bar", 3), "linux user.foo");
    CHECK(s.n == 2 && !strcmp(s.names[1], "system.posix_acl_access") &&
          s.sizes[1] == 4 + 6 * 8, "linux ACL of %zu bytes", s.sizes[1]);
    uint32_t id;
    memcpy(&id, s.values[1] + 4 + 8 + 4, 4);
    CHECK(id == 1000, "named user %u", id);
}

static void test_records(void)
{
    char path[] = "/tmp/test_dumpfmt.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    unlink(path);
    struct dump_writer w;
    CHECK_RC(dump_writer_init(&w, fd, 4, false));
    uint8_t blk[DUMP_TP_BSIZE];
    for (int i = 0; i < 6; i++) {
        memset(blk, i + 1, sizeof(blk));
        CHECK_RC(dump_write_block(&w, blk));
        struct stat st;
        fstat(fd, &st);
        CHECK(st.st_size % (4 * DUMP_TP_BSIZE) == 0, "partial record");
    }
    CHECK(dump_writer_room(&w) == 2, "room %d", dump_writer_room(&w));
    CHECK_RC(dump_writer_flush(&w));
    dump_writer_free(&w);
    struct stat st;
    fstat(fd, &st);
    CHECK(st.st_size == 8 * DUMP_TP_BSIZE, "size %lld",
          (long long)st.st_size);

    lseek(fd, 0, SEEK_SET);
    struct dump_reader r;
    CHECK_RC(dump_reader_init(&r, fd, 4));
    int n = 0, rc;
    while ((rc = dump_read_block(&r, blk)) == 0) {
        CHECK(blk[0] == (n < 6 ? n + 1 : 0), "block %d holds %d", n, blk[0]);
        n++;
    }
    CHECK(rc == -ENODATA && n == 8, "rc %d after %d blocks", rc, n);
    dump_reader_free(&r);

    /* A torn last block is an error, not a silent end. */
    CHECK(ftruncate(fd, 3 * DUMP_TP_BSIZE + 100) == 0, "truncate");
    lseek(fd, 0, SEEK_SET);
    CHECK_RC(dump_reader_init(&r, fd, 4));
    for (n = 0; (rc = dump_read_block(&r, blk)) == 0; n++)
        ;
    CHECK(rc == -EIO && n == 3, "torn: rc %d after %d", rc, n);
    dump_reader_free(&r);
    close(fd);
}

int main(void)
{
    test_headers();
    test_dirs();
    test_xattrs();
    test_records();
    return test_done("test_dumpfmt");
}
