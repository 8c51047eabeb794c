/*
 * slabel.c - snapshot labels: KEY=VALUE words recorded with a snapshot
 * (`snapshot list` shows them), such as the consistency an
 * application-consistent snapshot reached (consistency=application, or
 * consistency=crash when its pre hook failed; fs/hooks.c).
 *
 * Guarantees:
 *   - labels are written in the transaction that takes the snapshot
 *     (sfs_snap_take_labelled_w), so a snapshot never exists without the
 *     labels it was taken with, and deleting the snapshot deletes them in
 *     the same transaction (sfs_snap_delete_unheld_w), whoever deletes it;
 *   - keyed by the snapshot's epoch, so a rename keeps them;
 *   - a label list is checked whole before anything is written: keys of
 *     [a-z0-9._-], values of printable bytes without ',' '=' or space, so
 *     the list is one word in every text form (control lines, tables).
 *
 * Layout: meta key "slabel/" epoch(be64) -> the list as text, no NUL.
 * A snapshot without labels has no record (stores made before labels
 * existed read as snapshots without labels).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define SL_PREFIX "slabel/"
#define SL_PLEN 7
#define SL_KEY_MAX 32
#define SL_VALUE_MAX 64

static void sl_key(uint8_t *k, uint64_t epoch)
{
    memcpy(k, SL_PREFIX, SL_PLEN);
    sfs_put_be64(k + SL_PLEN, epoch);
}

static bool key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static bool value_char(char c)
{
    return c > 0x20 && c < 0x7f && c != ',' && c != '=';
}

/* The KEY=VALUE word [W, W+LEN): 0 and its key length, or -EINVAL. */
static int word_valid(const char *w, size_t len, size_t *klen)
{
    const char *eq = memchr(w, '=', len);
    if (!eq || eq == w || (size_t)(eq - w) > SL_KEY_MAX)
        return -EINVAL;
    size_t vlen = len - (size_t)(eq - w) - 1;
    if (vlen == 0 || vlen > SL_VALUE_MAX)
        return -EINVAL;
    for (const char *p = w; p < eq; p++)
        if (!key_char(*p))
            return -EINVAL;
    for (const char *p = eq + 1; p < w + len; p++)
        if (!value_char(*p))
            return -EINVAL;
    *klen = (size_t)(eq - w);
    return 0;
}

/* Is key [K, K+KLEN) also the key of a word of [TEXT, END)? */
static bool key_before(const char *text, const char *end, const char *k,
                       size_t klen)
{
    for (const char *p = text; p < end;) {
        size_t n = strcspn(p, "=");
        if (n == klen && !memcmp(p, k, klen))
            return true;
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    return false;
}

int sfs_labels_valid(const char *text)
{
    size_t total = strnlen(text, SFS_LABELS_MAX + 1);
    if (total > SFS_LABELS_MAX)
        return -EINVAL;
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, ","), klen;
        if (word_valid(p, len, &klen) || key_before(text, p, p, klen))
            return -EINVAL;
        p += len;
        if (*p == ',' && !*++p)
            return -EINVAL; /* a trailing comma */
    }
    return 0;
}

int sfs_snap_take_labelled_w(struct sfs_store *st, MDB_txn *txn,
                             const char *name, const struct sfs_cgroup *g,
                             const char *labels, struct sfs_snap_rec *out)
{
    if (labels && sfs_labels_valid(labels))
        return -EINVAL;
    struct sfs_snap_rec s;
    int rc = g ? sfs_cgroup_take_w(st, txn, name, g, &s)
               : sfs_snap_take_w(st, txn, name, &s);
    if (rc)
        return rc;
    if (labels && *labels) {
        uint8_t k[SL_PLEN + 8];
        sl_key(k, s.epoch);
        MDB_val key = { sizeof(k), k };
        MDB_val val = { strlen(labels), (void *)labels };
        rc = sfs_mdb_errno(mdb_put(txn, st->db_meta, &key, &val, 0));
    }
    if (!rc && out)
        *out = s;
    return rc;
}

int sfs_snap_labels_get(struct sfs_store *st, MDB_txn *txn, uint64_t epoch,
                        char *out)
{
    uint8_t k[SL_PLEN + 8];
    sl_key(k, epoch);
    MDB_val key = { sizeof(k), k }, val;
    out[0] = 0;
    int rc = mdb_get(txn, st->db_meta, &key, &val);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return sfs_mdb_errno(rc);
    if (val.mv_size == 0 || val.mv_size > SFS_LABELS_MAX) {
        sfs_log_corruption("labels of snapshot %llu have %zu bytes",
                           (unsigned long long)epoch, val.mv_size);
        return -EIO;
    }
    memcpy(out, val.mv_data, val.mv_size);
    out[val.mv_size] = 0;
    return 0;
}

int sfs_snap_labels_delete_w(struct sfs_store *st, MDB_txn *txn,
                             uint64_t epoch)
{
    uint8_t k[SL_PLEN + 8];
    sl_key(k, epoch);
    MDB_val key = { sizeof(k), k };
    int rc = mdb_del(txn, st->db_meta, &key, NULL);
    return rc == MDB_NOTFOUND ? 0 : sfs_mdb_errno(rc);
}

struct labels_scan {
    sfs_labels_cb cb;
    void *arg;
};

static int labels_of_key(void *arg, const MDB_val *key, const MDB_val *val)
{
    struct labels_scan *ls = arg;
    char text[SFS_LABELS_MAX + 1];
    if (key->mv_size != SL_PLEN + 8 || val->mv_size == 0 ||
        val->mv_size > SFS_LABELS_MAX)
        return 0; /* not ours to judge here; sfs_snap_labels_get reports */
    memcpy(text, val->mv_data, val->mv_size);
    text[val->mv_size] = 0;
    const uint8_t *k = key->mv_data;
    return ls->cb(ls->arg, sfs_get_be64(k + SL_PLEN), text);
}

int sfs_snap_labels_foreach(struct sfs_store *st, MDB_txn *txn,
                            sfs_labels_cb cb, void *arg)
{
    struct labels_scan ls = { cb, arg };
    return sfs_table_scan_prefix(txn, st->db_meta, SL_PREFIX, SL_PLEN,
                                 labels_of_key, &ls);
}
