/*
 * qtree.c - qtrees: directories at the volume root whose space is limited
 * by a quota, as on a NetApp filer.
 *
 * What a qtree is, on disk:
 *   - its description is the xattr SFS_QTREE_XATTR of its directory, text
 *     "style=unix quota=1073741824" (quota 0: none), stored as any other
 *     xattr, so snapshots, clones, diff and dumps carry it;
 *   - its id is the directory's inode number, and every inode in it (the
 *     directory included) holds that number in sfs_inode.qtree, set at
 *     creation from the parent; links and renames across qtrees are
 *     refused by the filesystem, so it never changes afterwards;
 *   - its usage, the sum of blocks * 512 over its live inodes (what du
 *     counts), is a record "qtree-used/" + be64(id) -> uint64 in `meta`,
 *     absent when zero.
 *
 * Guarantees:
 *   - Usage is exact and crash-consistent: vrec.c calls
 *     sfs_qtree_account_w for every put and delete of a live inode record,
 *     in the same transaction, with the charge of the old and the new
 *     version.  Every path that changes inodes (writes, truncation,
 *     deletes, orphan reaping, rollback, restore-file, clones) goes
 *     through those two functions, so none can forget the accounting, and
 *     an aborted (nested) transaction takes its accounting with it.
 *   - Enforcement: sfs_inode_put_w calls sfs_qtree_check_growth, which
 *     answers -EDQUOT when an inode's growth would take its qtree past the
 *     quota.  Shrinking and rewriting in place are always allowed, so a
 *     qtree over its quota (the quota lowered) can always be cleaned up.
 *     Rollback and clones write records below sfs_inode_put_w: they put
 *     back a state and are never refused.
 *   - Functions return 0 or a negative errno and print nothing (a
 *     description that does not parse is logged as corruption).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>

#include "internal.h"

static const char *const style_names[] = { "unix", "ntfs", "mixed" };
#define NSTYLES (sizeof(style_names) / sizeof(style_names[0]))

const char *sfs_qtree_style_name(uint32_t style)
{
    return style < NSTYLES ? style_names[style] : NULL;
}

int sfs_qtree_style_parse(const char *text, uint32_t *out)
{
    for (uint32_t i = 0; i < NSTYLES; i++)
        if (!strcmp(text, style_names[i])) {
            *out = i;
            return 0;
        }
    return -EINVAL;
}

int sfs_qtree_name_valid(const char *name)
{
    size_t n = strlen(name);
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return -EINVAL;
    if (n == 0 || n > SFS_NAME_MAX || strchr(name, '/') ||
        !strcmp(name, ".") || !strcmp(name, "..") ||
        !strcmp(name, ".snapshot"))
        return -EINVAL;
    return 0;
}

int sfs_qtree_format(const struct sfs_qtree_info *info, char *buf, size_t cap)
{
    const char *style = sfs_qtree_style_name(info->style);
    if (!style)
        return -EINVAL;
    int n = snprintf(buf, cap, "style=%s quota=%" PRIu64, style,
                     info->quota_bytes);
    return n < 0 || (size_t)n >= cap ? -ERANGE : n;
}

/* A decimal uint64 of exactly LEN bytes. */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 20)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int sfs_qtree_parse(const char *text, size_t len, struct sfs_qtree_info *out)
{
    bool have_style = false, have_quota = false;
    uint32_t style = 0;
    uint64_t quota = 0;
    size_t i = 0;
    while (i < len) {
        if (text[i] == ' ') {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && text[i] != ' ')
            i++;
        const char *w = text + start, *eq = memchr(w, '=', i - start);
        if (!eq || eq == w)
            return -EINVAL;
        size_t klen = (size_t)(eq - w), vlen = i - start - klen - 1;
        const char *v = eq + 1;
        if (klen == 5 && !memcmp(w, "style", 5)) {
            char name[8];
            if (have_style || vlen >= sizeof(name))
                return -EINVAL;
            memcpy(name, v, vlen);
            name[vlen] = 0;
            if (sfs_qtree_style_parse(name, &style))
                return -EINVAL;
            have_style = true;
        } else if (klen == 5 && !memcmp(w, "quota", 5)) {
            if (have_quota || parse_u64(v, vlen, &quota))
                return -EINVAL;
            have_quota = true;
        }
    }
    if (!have_style || !have_quota)
        return -EINVAL;
    out->style = style;
    out->quota_bytes = quota;
    return 0;
}

void sfs_qtree_line_format(const struct sfs_qtree_info *q, FILE *out)
{
    const char *style = sfs_qtree_style_name(q->style);
    fprintf(out, "%" PRIu64 "\t%s\t%" PRIu64 "\t%" PRIu64 "\t%s\n", q->ino,
            style ? style : "?", q->quota_bytes, q->used_bytes, q->name);
}

int sfs_qtree_line_parse(const char *line, struct sfs_qtree_info *q)
{
    const char *f[5];
    size_t len[5];
    memset(q, 0, sizeof(*q));
    for (int i = 0; i < 5; i++) {
        const char *tab = i < 4 ? strchr(line, '\t') : NULL;
        f[i] = line;
        len[i] = tab ? (size_t)(tab - line) : strlen(line);
        if (i < 4 && !tab)
            return -EINVAL;
        line = tab ? tab + 1 : line;
    }
    char style[8];
    if (len[1] >= sizeof(style) || len[4] > SFS_NAME_MAX)
        return -EINVAL;
    memcpy(style, f[1], len[1]);
    style[len[1]] = 0;
    memcpy(q->name, f[4], len[4]);
    q->name[len[4]] = 0;
    if (parse_u64(f[0], len[0], &q->ino) ||
        sfs_qtree_style_parse(style, &q->style) ||
        parse_u64(f[2], len[2], &q->quota_bytes) ||
        parse_u64(f[3], len[3], &q->used_bytes) ||
        sfs_qtree_name_valid(q->name))
        return -EINVAL;
    return 0;
}

/* ---- usage records ---- */

#define USED_PREFIX "qtree-used/"
#define USED_PLEN 11

static MDB_val used_key(uint64_t qtree, uint8_t *buf)
{
    memcpy(buf, USED_PREFIX, USED_PLEN);
    sfs_put_be64(buf + USED_PLEN, qtree);
    MDB_val k = { USED_PLEN + 8, buf };
    return k;
}

int sfs_qtree_used(struct sfs_store *st, MDB_txn *txn, uint64_t qtree,
                   uint64_t *out)
{
    uint8_t kb[USED_PLEN + 8];
    MDB_val k = used_key(qtree, kb), v;
    int rc = mdb_get(txn, st->db_meta, &k, &v);
    *out = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return sfs_mdb_errno(rc);
    if (v.mv_size != 8) {
        sfs_log_corruption("qtree %" PRIu64 ": usage record of %zu bytes",
                           qtree, v.mv_size);
        return -EIO;
    }
    memcpy(out, v.mv_data, 8);
    return 0;
}

static int used_add(struct sfs_store *st, MDB_txn *txn, uint64_t qtree,
                    uint64_t plus, uint64_t minus)
{
    uint64_t used;
    int rc = sfs_qtree_used(st, txn, qtree, &used);
    if (rc)
        return rc;
    if (used + plus < minus) {
        sfs_log_corruption("qtree %" PRIu64 ": usage %" PRIu64
                           " would go below zero (-%" PRIu64 ")",
                           qtree, used + plus, minus);
        return -EIO;
    }
    used = used + plus - minus;
    uint8_t kb[USED_PLEN + 8];
    MDB_val k = used_key(qtree, kb), v = { 8, &used };
    if (used)
        return sfs_mdb_errno(mdb_put(txn, st->db_meta, &k, &v, 0));
    rc = mdb_del(txn, st->db_meta, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : sfs_mdb_errno(rc);
}

void sfs_qtree_charge_of(const MDB_val *key, const void *payload, size_t len,
                         struct sfs_qcharge *out)
{
    out->qtree = out->bytes = 0;
    const uint8_t *k = key->mv_data;
    if (k[0] != SFS_K_INODE || len != sizeof(struct sfs_inode))
        return;
    uint64_t blocks;
    memcpy(&out->qtree,
           (const uint8_t *)payload + offsetof(struct sfs_inode, qtree), 8);
    memcpy(&blocks,
           (const uint8_t *)payload + offsetof(struct sfs_inode, blocks), 8);
    out->bytes = out->qtree ? blocks * 512 : 0;
}

int sfs_qtree_account_w(struct sfs_store *st, MDB_txn *txn,
                        const struct sfs_qcharge *old,
                        const struct sfs_qcharge *new)
{
    if (old->qtree == new->qtree) {
        if (!old->qtree || old->bytes == new->bytes)
            return 0;
        return used_add(st, txn, old->qtree, new->bytes, old->bytes);
    }
    int rc = 0;
    if (old->qtree && old->bytes)
        rc = used_add(st, txn, old->qtree, 0, old->bytes);
    if (!rc && new->qtree && new->bytes)
        rc = used_add(st, txn, new->qtree, new->bytes, 0);
    return rc;
}

struct usage_scan {
    sfs_qtree_usage_cb cb;
    void *arg;
};

static int usage_scan_cb(void *arg, const MDB_val *key, const MDB_val *val)
{
    struct usage_scan *us = arg;
    uint64_t used = 0;
    if (key->mv_size != USED_PLEN + 8)
        return 0;
    if (val->mv_size == 8)
        memcpy(&used, val->mv_data, 8);
    return us->cb(us->arg, sfs_get_be64((uint8_t *)key->mv_data + USED_PLEN),
                  used);
}

int sfs_qtree_usage_foreach(struct sfs_store *st, MDB_txn *txn,
                            sfs_qtree_usage_cb cb, void *arg)
{
    struct usage_scan us = { cb, arg };
    return sfs_table_scan_prefix(txn, st->db_meta, USED_PREFIX, USED_PLEN,
                                 usage_scan_cb, &us);
}

/* ---- reading descriptions ---- */

int sfs_qtree_get(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                  uint64_t dir_ino, struct sfs_qtree_info *out)
{
    struct sfs_inode i;
    int rc = sfs_inode_get(st, txn, view, dir_ino, &i);
    if (rc)
        return rc;
    if (!S_ISDIR(i.mode))
        return -ENOENT;
    char text[SFS_QTREE_TEXT_MAX];
    int n = sfs_xattr_get(st, txn, view, dir_ino, SFS_QTREE_XATTR, text,
                          sizeof(text));
    if (n == -ENODATA)
        return -ENOENT;
    if (n == -ERANGE)
        n = -EINVAL;
    memset(out, 0, sizeof(*out));
    if (n >= 0)
        n = sfs_qtree_parse(text, (size_t)n, out);
    if (n == -EINVAL) {
        sfs_log_corruption("inode %" PRIu64 ": unreadable %s", dir_ino,
                           SFS_QTREE_XATTR);
        return -EIO;
    }
    if (n < 0)
        return n;
    out->ino = dir_ino;
    if (view == SFS_VIEW_LIVE)
        return sfs_qtree_used(st, txn, dir_ino, &out->used_bytes);
    return 0;
}

int sfs_qtree_find(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                   const char *name, struct sfs_qtree_info *out)
{
    if (sfs_qtree_name_valid(name))
        return -EINVAL;
    struct sfs_dirent d;
    int rc = sfs_dirent_lookup(st, txn, view, SFS_ROOT_INO, name, &d);
    if (!rc)
        rc = sfs_qtree_get(st, txn, view, d.ino, out);
    if (!rc)
        memcpy(out->name, name, strlen(name) + 1);
    return rc;
}

struct list_arg {
    struct sfs_store *st;
    MDB_txn *txn;
    uint64_t view;
    sfs_qtree_cb cb;
    void *arg;
};

static int list_entry(void *arg, const struct sfs_dirent *d)
{
    struct list_arg *la = arg;
    if (d->type != (S_IFDIR >> 12))
        return 0;
    struct sfs_qtree_info q;
    int rc = sfs_qtree_get(la->st, la->txn, la->view, d->ino, &q);
    if (rc)
        return rc == -ENOENT ? 0 : rc;
    memcpy(q.name, d->name, strlen(d->name) + 1);
    return la->cb(la->arg, &q);
}

int sfs_qtree_list(struct sfs_store *st, MDB_txn *txn, uint64_t view,
                   sfs_qtree_cb cb, void *arg)
{
    struct list_arg la = { st, txn, view, cb, arg };
    int rc = sfs_dir_list(st, txn, view, SFS_ROOT_INO, 0, list_entry, &la);
    return rc > 0 ? 0 : rc;
}

/* ---- changes ---- */

int sfs_qtree_check_growth(struct sfs_store *st, MDB_txn *txn,
                           const struct sfs_inode *ino)
{
    struct sfs_inode old;
    int rc = sfs_inode_get(st, txn, SFS_VIEW_LIVE, ino->ino, &old);
    uint64_t before = 0;
    if (!rc && old.qtree == ino->qtree)
        before = old.blocks * 512;
    else if (rc && rc != -ENOENT)
        return rc;
    uint64_t after = ino->blocks * 512;
    if (after <= before)
        return 0;
    struct sfs_qtree_info q;
    rc = sfs_qtree_get(st, txn, SFS_VIEW_LIVE, ino->qtree, &q);
    if (rc == -ENOENT)
        return 0; /* an orphan of a deleted qtree: going away */
    if (rc)
        return rc;
    if (q.quota_bytes && q.used_bytes + (after - before) > q.quota_bytes)
        return -EDQUOT;
    return 0;
}

static int set_description(struct sfs_store *st, MDB_txn *txn, uint64_t ino,
                           const struct sfs_qtree_info *info, int flags)
{
    char text[SFS_QTREE_TEXT_MAX];
    int n = sfs_qtree_format(info, text, sizeof(text));
    if (n < 0)
        return n;
    return sfs_xattr_set_w(st, txn, ino, SFS_QTREE_XATTR, text, (size_t)n,
                           flags);
}

/* The root gained or lost a subdirectory NAME. */
static int touch_root(struct sfs_store *st, MDB_txn *txn, int links)
{
    struct sfs_inode root;
    int rc = sfs_inode_get(st, txn, SFS_VIEW_LIVE, SFS_ROOT_INO, &root);
    if (rc)
        return rc;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    root.nlink = (uint32_t)((int)root.nlink + links);
    root.mtime_sec = root.ctime_sec = now.tv_sec;
    root.mtime_nsec = root.ctime_nsec = (uint32_t)now.tv_nsec;
    return sfs_inode_put_w(st, txn, &root);
}

int sfs_qtree_create_w(struct sfs_store *st, MDB_txn *txn, const char *name,
                       const struct sfs_qtree_info *info, uint64_t *ino_out)
{
    char text[SFS_QTREE_TEXT_MAX];
    if (sfs_qtree_name_valid(name) ||
        sfs_qtree_format(info, text, sizeof(text)) < 0)
        return -EINVAL;
    struct sfs_dirent d;
    int rc = sfs_dirent_lookup(st, txn, SFS_VIEW_LIVE, SFS_ROOT_INO, name, &d);
    if (rc != -ENOENT)
        return rc ? rc : -EEXIST;
    struct sfs_inode root, ni;
    rc = sfs_inode_get(st, txn, SFS_VIEW_LIVE, SFS_ROOT_INO, &root);
    if (rc)
        return rc;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    memset(&ni, 0, sizeof(ni));
    ni.mode = S_IFDIR | (root.mode & 07777);
    ni.uid = root.uid;
    ni.gid = root.gid;
    ni.nlink = 2;
    ni.parent = SFS_ROOT_INO;
    ni.atime_sec = ni.mtime_sec = ni.ctime_sec = ni.btime_sec = now.tv_sec;
    ni.atime_nsec = ni.mtime_nsec = ni.ctime_nsec = ni.btime_nsec =
        (uint32_t)now.tv_nsec;
    rc = sfs_inode_create_w(st, txn, &ni);
    if (!rc) {
        ni.qtree = ni.ino; /* its id is known only now */
        rc = sfs_inode_put_w(st, txn, &ni);
    }
    if (!rc)
        rc = set_description(st, txn, ni.ino, info, XATTR_CREATE);
    if (!rc)
        rc = sfs_dirent_add_w(st, txn, SFS_ROOT_INO, name, ni.ino,
                              S_IFDIR >> 12);
    if (!rc)
        rc = touch_root(st, txn, 1);
    if (!rc && ino_out)
        *ino_out = ni.ino;
    return rc;
}

int sfs_qtree_mark_w(struct sfs_store *st, MDB_txn *txn, uint64_t dir_ino,
                     const struct sfs_qtree_info *info)
{
    char text[SFS_QTREE_TEXT_MAX];
    if (sfs_qtree_format(info, text, sizeof(text)) < 0)
        return -EINVAL;
    struct sfs_inode i;
    int rc = sfs_inode_get(st, txn, SFS_VIEW_LIVE, dir_ino, &i);
    if (rc)
        return rc;
    if (!S_ISDIR(i.mode) || i.parent != SFS_ROOT_INO ||
        dir_ino == SFS_ROOT_INO || i.nlink == 0)
        return -EINVAL;
    rc = sfs_xattr_get(st, txn, SFS_VIEW_LIVE, dir_ino, SFS_QTREE_XATTR, NULL,
                       0);
    if (rc >= 0)
        return -EEXIST;
    if (rc != -ENODATA)
        return rc;
    if (i.qtree)
        return -EINVAL;
    rc = sfs_dir_is_empty(st, txn, SFS_VIEW_LIVE, dir_ino);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return -EINVAL;
    rc = set_description(st, txn, dir_ino, info, XATTR_CREATE);
    if (rc)
        return rc;
    i.qtree = dir_ino;
    return sfs_inode_put_w(st, txn, &i);
}

int sfs_qtree_modify_w(struct sfs_store *st, MDB_txn *txn, uint64_t dir_ino,
                       const struct sfs_qtree_info *info)
{
    struct sfs_qtree_info q;
    int rc = sfs_qtree_get(st, txn, SFS_VIEW_LIVE, dir_ino, &q);
    return rc ? rc : set_description(st, txn, dir_ino, info, XATTR_REPLACE);
}

int sfs_qtree_delete_w(struct sfs_store *st, MDB_txn *txn, const char *name,
                       uint64_t *ino_out)
{
    struct sfs_qtree_info q;
    int rc = sfs_qtree_find(st, txn, SFS_VIEW_LIVE, name, &q);
    if (rc)
        return rc;
    rc = sfs_dir_is_empty(st, txn, SFS_VIEW_LIVE, q.ino);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return -ENOTEMPTY;
    rc = sfs_dirent_remove_w(st, txn, SFS_ROOT_INO, name);
    if (!rc)
        rc = sfs_inode_destroy_w(st, txn, q.ino);
    if (!rc)
        rc = touch_root(st, txn, -1);
    if (!rc && ino_out)
        *ino_out = q.ino;
    return rc;
}
