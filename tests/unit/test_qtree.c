/*
 * test_qtree.c - qtrees in the store: the description text (format,
 * parse, every malformed form refused), names, the control line; and on a
 * scratch volume: create, mark, modify, delete with each error they
 * document, usage kept exact through writes, truncation, destruction and
 * rollback, EDQUOT at the quota (the failed change undone with its nested
 * transaction), the list of a snapshot's view, and fsck finding a wrong
 * usage record.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "internal.h"
#include "testvol.h"

#define BS 4096

static void test_text(void)
{
    struct sfs_qtree_info q = { 0 }, p;
    char buf[SFS_QTREE_TEXT_MAX];
    const uint64_t quotas[] = { 0, 1, 1073741824, UINT64_MAX };
    for (uint32_t style = 0; style < 3; style++)
        for (size_t i = 0; i < 4; i++) {
            q.style = style;
            q.quota_bytes = quotas[i];
            int n = sfs_qtree_format(&q, buf, sizeof(buf));
            CHECK(n > 0 && (size_t)n == strlen(buf), "format: %d", n);
            memset(&p, 0, sizeof(p));
            CHECK(sfs_qtree_parse(buf, (size_t)n, &p) == 0, "parse %s", buf);
            CHECK(p.style == style && p.quota_bytes == quotas[i],
                  "round trip of %s", buf);
        }
    q.style = 1;
    q.quota_bytes = 1073741824;
    sfs_qtree_format(&q, buf, sizeof(buf));
    CHECK(!strcmp(buf, "style=ntfs quota=1073741824"), "text: %s", buf);
    CHECK(sfs_qtree_format(&q, buf, 10) == -ERANGE, "small buffer");
    q.style = 7;
    CHECK(sfs_qtree_format(&q, buf, sizeof(buf)) == -EINVAL, "bad style");

    const char *bad[] = {
        "", "style=unix", "quota=5", "style=posix quota=1",
        "style=unix quota=-1", "style=unix quota=18446744073709551616",
        "style=unix style=ntfs quota=1", "style=unix quota=1x",
        "style=unix quota=", "=unix quota=1", "style=unix quota=1 quota=2",
        "style unix quota 1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(sfs_qtree_parse(bad[i], strlen(bad[i]), &p) == -EINVAL,
              "'%s' refused", bad[i]);
    const char *later = "  quota=5 style=mixed owner=x  ";
    CHECK(sfs_qtree_parse(later, strlen(later), &p) == 0 && p.style == 2 &&
          p.quota_bytes == 5, "unknown keys ignored, any order");
    /* LEN counts, not the NUL: a value cut short is another value. */
    CHECK(sfs_qtree_parse("style=unix quota=123", 18, &p) == 0 &&
          p.quota_bytes == 1, "LEN bounds the text");

    uint32_t s;
    CHECK(sfs_qtree_style_parse("mixed", &s) == 0 && s == SFS_QTREE_MIXED,
          "mixed");
    CHECK(sfs_qtree_style_parse("UNIX", &s) == -EINVAL, "case matters");
    CHECK(sfs_qtree_style_name(3) == NULL, "no style 3");

    char longname[300];
    memset(longname, 'n', sizeof(longname));
    longname[255] = 0;
    CHECK(sfs_qtree_name_valid(longname) == 0, "255 bytes");
    longname[255] = 'n';
    longname[256] = 0;
    CHECK(sfs_qtree_name_valid(longname) == -EINVAL, "256 bytes");
    const char *badnames[] = { "", "/", "a/b", ".", "..", ".snapshot",
                               "a\tb", "a\nb" };
    for (size_t i = 0; i < sizeof(badnames) / sizeof(badnames[0]); i++)
        CHECK(sfs_qtree_name_valid(badnames[i]) == -EINVAL, "name %zu", i);
    CHECK(sfs_qtree_name_valid(".snapshots") == 0 &&
          sfs_qtree_name_valid("my qtree") == 0, "ordinary names");

    struct sfs_qtree_info l = { .ino = 42, .style = 2, .quota_bytes = 7,
                                .used_bytes = 3 }, m;
    strcpy(l.name, " spaced name ");
    char *line = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&line, &len);
    sfs_qtree_line_format(&l, f);
    fclose(f);
    line[len - 1] = 0; /* the newline */
    CHECK(sfs_qtree_line_parse(line, &m) == 0 && m.ino == 42 &&
          m.style == 2 && m.quota_bytes == 7 && m.used_bytes == 3 &&
          !strcmp(m.name, " spaced name "), "line round trip: %s", line);
    free(line);
    CHECK(sfs_qtree_line_parse("42\tunix\t7\t3", &m) == -EINVAL, "no name");
    CHECK(sfs_qtree_line_parse("x\tunix\t7\t3\tq", &m) == -EINVAL, "bad id");
    CHECK(sfs_qtree_line_parse("1\tposix\t7\t3\tq", &m) == -EINVAL,
          "bad style");
}

/* ---- on a volume ---- */

static struct sfs_store *st;
static struct sfs_codec_ctx *cc;

/* A new object NAME in DIR, in DIR's qtree, as the filesystem makes it. */
static uint64_t mkobj(MDB_txn *txn, uint64_t dir, const char *name,
                      uint32_t mode)
{
    struct sfs_inode pi, ni;
    CHECK_RC(sfs_inode_get(st, txn, SFS_VIEW_LIVE, dir, &pi));
    memset(&ni, 0, sizeof(ni));
    ni.mode = mode;
    ni.nlink = S_ISDIR(mode) ? 2 : 1;
    ni.parent = dir;
    ni.qtree = pi.qtree;
    CHECK_RC(sfs_inode_create_w(st, txn, &ni));
    CHECK_RC(sfs_dirent_add_w(st, txn, dir, name, ni.ino, (mode & S_IFMT) >> 12));
    if (S_ISDIR(mode)) {
        pi.nlink++;
        CHECK_RC(sfs_inode_put_w(st, txn, &pi));
    }
    return ni.ino;
}

static uint64_t used(MDB_txn *txn, uint64_t q)
{
    uint64_t u = UINT64_MAX;
    CHECK_RC(sfs_qtree_used(st, txn, q, &u));
    return u;
}

/* Write LEN bytes of a pattern at OFF in a nested transaction, kept only
 * if the write succeeds.  Returns the write's result. */
static int write_nested(MDB_txn *txn, uint64_t ino, uint64_t off, size_t len)
{
    uint8_t *buf = malloc(len);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 7 + off + 1);
    MDB_txn *sub;
    CHECK_RC(sfs_txn_begin(st, txn, true, &sub));
    int rc = sfs_file_write_w(st, sub, cc, ino, off, buf, len);
    if (rc)
        mdb_txn_abort(sub);
    else
        CHECK_RC(sfs_mdb_errno(mdb_txn_commit(sub)));
    free(buf);
    return rc;
}

static int count_cb(void *arg, const struct sfs_qtree_info *q)
{
    (void)q;
    ++*(int *)arg;
    return 0;
}

static int count_qtrees(MDB_txn *txn, uint64_t view)
{
    int n = 0;
    CHECK_RC(sfs_qtree_list(st, txn, view, count_cb, &n));
    return n;
}

static void report(void *arg, const char *problem)
{
    ++*(int *)arg;
    fprintf(stderr, "  (fsck, expected below) %s\n", problem);
}

static void test_volume(void)
{
    char dir[256];
    st = testvol_create(dir, sizeof(dir), BS, SFS_CODEC_NONE);
    cc = sfs_codec_ctx_new();
    MDB_txn *txn;
    CHECK_RC(sfs_txn_begin(st, NULL, true, &txn));

    struct sfs_qtree_info info = { .style = SFS_QTREE_UNIX,
                                   .quota_bytes = 3 * BS }, q;
    uint64_t q1;
    CHECK_RC(sfs_qtree_create_w(st, txn, "q1", &info, &q1));
    CHECK(sfs_qtree_create_w(st, txn, "q1", &info, NULL) == -EEXIST, "dup");
    CHECK(sfs_qtree_create_w(st, txn, ".snapshot", &info, NULL) == -EINVAL,
          ".snapshot");
    struct sfs_qtree_info badstyle = { .style = 9 };
    CHECK(sfs_qtree_create_w(st, txn, "q2", &badstyle, NULL) == -EINVAL,
          "bad style");
    CHECK_RC(sfs_qtree_find(st, txn, SFS_VIEW_LIVE, "q1", &q));
    CHECK(q.ino == q1 && q.quota_bytes == 3 * BS && q.used_bytes == 0 &&
          !strcmp(q.name, "q1"), "find q1");
    struct sfs_inode di;
    CHECK_RC(sfs_inode_get(st, txn, SFS_VIEW_LIVE, q1, &di));
    CHECK(di.qtree == q1 && di.parent == SFS_ROOT_INO && S_ISDIR(di.mode),
          "q1's directory carries its own id");

    /* Usage follows writes; growth past the quota is EDQUOT, undone. */
    uint64_t sub = mkobj(txn, q1, "sub", S_IFDIR | 0755);
    uint64_t f = mkobj(txn, sub, "f", S_IFREG | 0644);
    CHECK(write_nested(txn, f, 0, 2 * BS) == 0, "two blocks fit");
    CHECK(used(txn, q1) == 2 * BS, "used %llu",
          (unsigned long long)used(txn, q1));
    CHECK(write_nested(txn, f, 2 * BS, 2 * BS) == -EDQUOT, "two more do not");
    CHECK(used(txn, q1) == 2 * BS, "unchanged by the refused write");
    CHECK(write_nested(txn, f, 0, BS) == 0, "rewriting in place is allowed");
    CHECK(write_nested(txn, f, 2 * BS, 100) == 0, "a 100-byte tail fits");
    CHECK(used(txn, q1) == 2 * BS + 512, "the tail counts 512");
    uint64_t outside = mkobj(txn, SFS_ROOT_INO, "outside", S_IFREG | 0644);
    CHECK(write_nested(txn, outside, 0, 8 * BS) == 0, "outside: no quota");
    CHECK(used(txn, q1) == 2 * BS + 512, "outside is not counted");

    /* Lowering the quota below the usage stops growth only. */
    info.quota_bytes = BS;
    CHECK_RC(sfs_qtree_modify_w(st, txn, q1, &info));
    CHECK(write_nested(txn, f, 3 * BS, 1) == -EDQUOT, "over quota: no growth");
    struct sfs_inode fi;
    CHECK_RC(sfs_inode_get(st, txn, SFS_VIEW_LIVE, f, &fi));
    CHECK_RC(sfs_file_truncate_w(st, txn, cc, &fi, BS));
    CHECK_RC(sfs_inode_put_w(st, txn, &fi));
    CHECK(used(txn, q1) == BS, "truncation gives back");
    info.quota_bytes = 0;
    info.style = SFS_QTREE_NTFS;
    CHECK_RC(sfs_qtree_modify_w(st, txn, q1, &info));
    CHECK(write_nested(txn, f, 0, 10 * BS) == 0, "no quota: anything");
    CHECK(used(txn, q1) == 10 * BS, "used 10 blocks");
    CHECK(sfs_qtree_modify_w(st, txn, sub, &info) == -ENOENT, "sub is none");

    /* mark: an empty directory at the root only. */
    uint64_t plain = mkobj(txn, SFS_ROOT_INO, "plain", S_IFDIR | 0755);
    uint64_t deep = mkobj(txn, plain, "deep", S_IFDIR | 0755);
    CHECK(sfs_qtree_mark_w(st, txn, plain, &info) == -EINVAL, "not empty");
    CHECK(sfs_qtree_mark_w(st, txn, deep, &info) == -EINVAL, "not at root");
    CHECK(sfs_qtree_mark_w(st, txn, outside, &info) == -EINVAL, "a file");
    CHECK(sfs_qtree_mark_w(st, txn, q1, &info) == -EEXIST, "a qtree");
    CHECK(sfs_qtree_mark_w(st, txn, 999999, &info) == -ENOENT, "no inode");
    uint64_t restored = mkobj(txn, SFS_ROOT_INO, "restored", S_IFDIR | 0755);
    CHECK_RC(sfs_qtree_mark_w(st, txn, restored, &info));
    CHECK_RC(sfs_qtree_get(st, txn, SFS_VIEW_LIVE, restored, &q));
    CHECK(q.style == SFS_QTREE_NTFS && q.quota_bytes == 0, "marked");
    CHECK_RC(sfs_inode_get(st, txn, SFS_VIEW_LIVE, restored, &di));
    CHECK(di.qtree == restored, "marked: carries its id");
    uint64_t rf = mkobj(txn, restored, "f", S_IFREG | 0644);
    CHECK(write_nested(txn, rf, 0, BS) == 0 && used(txn, restored) == BS,
          "a marked qtree counts");
    CHECK(count_qtrees(txn, SFS_VIEW_LIVE) == 2, "q1 and restored");
    CHECK_RC(sfs_txn_commit(st, txn));

    /* Rollback puts the usage back; a deleted qtree comes back too. */
    CHECK_RC(sfs_txn_begin(st, NULL, true, &txn));
    struct sfs_snap_rec snap;
    CHECK_RC(sfs_snap_take_w(st, txn, "s1", &snap));
    uint64_t u1 = used(txn, q1);
    CHECK(write_nested(txn, f, 20 * BS, 3 * BS) == 0, "more after s1");
    CHECK(used(txn, q1) == u1 + 3 * BS, "grown");
    CHECK_RC(sfs_inode_get(st, txn, SFS_VIEW_LIVE, rf, &fi));
    CHECK_RC(sfs_dirent_remove_w(st, txn, restored, "f"));
    CHECK_RC(sfs_inode_destroy_w(st, txn, rf));
    CHECK(used(txn, restored) == 0, "destroy gives back");
    CHECK(sfs_qtree_delete_w(st, txn, "q1", NULL) == -ENOTEMPTY, "q1 full");
    CHECK(sfs_qtree_delete_w(st, txn, "nosuch", NULL) == -ENOENT, "nosuch");
    CHECK(sfs_qtree_delete_w(st, txn, "plain", NULL) == -ENOENT, "plain");
    CHECK(sfs_qtree_delete_w(st, txn, "a/b", NULL) == -EINVAL, "bad name");
    uint64_t gone;
    CHECK_RC(sfs_qtree_delete_w(st, txn, "restored", &gone));
    CHECK(gone == restored && count_qtrees(txn, SFS_VIEW_LIVE) == 1 &&
          count_qtrees(txn, snap.epoch) == 2, "the snapshot keeps it");
    CHECK_RC(sfs_qtree_get(st, txn, snap.epoch, restored, &q));
    CHECK(q.used_bytes == 0 && q.style == SFS_QTREE_NTFS, "snapshot view");
    CHECK_RC(sfs_rollback_w(st, txn, snap.epoch, NULL));
    CHECK(used(txn, q1) == u1, "rollback: q1's usage");
    CHECK(used(txn, restored) == BS, "rollback: restored's usage");
    CHECK(count_qtrees(txn, SFS_VIEW_LIVE) == 2, "rollback: both qtrees");
    CHECK_RC(sfs_txn_commit(st, txn));

    int problems = 0;
    CHECK(sfs_fsck(st, report, &problems) == 0 && problems == 0,
          "fsck clean: %d", problems);

    /* fsck can tell: skew a usage record. */
    CHECK_RC(sfs_txn_begin(st, NULL, true, &txn));
    struct sfs_qcharge none = { 0, 0 }, skew = { q1, 512 };
    CHECK_RC(sfs_qtree_account_w(st, txn, &none, &skew));
    CHECK_RC(sfs_txn_commit(st, txn));
    problems = 0;
    CHECK(sfs_fsck(st, report, &problems) == 1 && problems == 1,
          "fsck finds the skewed usage");

    sfs_codec_ctx_free(cc);
    testvol_remove(st, dir);
}

int main(void)
{
    test_text();
    test_volume();
    return test_done("test_qtree");
}
