/*
 * dumpmeta.c - what the dump engine keeps in a volume: dump dates (the
 * increment chains) and restartable dump contexts.
 *
 * Dump dates: meta "dumpdate/" PATH NUL LEVEL -> struct sfs_dumpdate.  One
 * record per path and level, replaced by the next dump of that path and
 * level, as /etc/dumpdates is by `dump -u`.  An incremental of level L is
 * based on the most recent dump of the same path at any level below L
 * (so 0, 2, 3, 1, 4 gives the chains 0-2-3 and 0-1-4).  Each record keeps
 * the epoch of the snapshot that was dumped: an object changed since that
 * dump is one whose inode version was born after that epoch, which holds
 * even when the snapshot itself is gone (births are never rewritten).
 *
 * Contexts: meta "dumpctx/" ID(be32) -> struct sfs_dumpctx.  A context
 * exists from the start of a dump to its end, holds its snapshot (tag
 * "dump:ID") and records how far the dump got, so that a dump that is
 * interrupted can be continued (--restart) or abandoned (contexts delete),
 * which releases the hold and deletes a snapshot the dump created.
 *
 * Guarantees: a context, its hold and its snapshot are created together
 * in one transaction and removed together in one, so none of them can
 * outlive the others; the dump date is recorded in the same transaction
 * that ends a dump.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define DATE_PREFIX "dumpdate/"
#define DATE_PLEN (sizeof(DATE_PREFIX) - 1)
#define CTX_PREFIX "dumpctx/"
#define CTX_PLEN (sizeof(CTX_PREFIX) - 1)
#define AUTO_SNAP_PREFIX "snapshot_for_backup."

/* Every meta record under PREFIX. */
static int meta_scan(struct sfs_store *st, MDB_txn *txn, const char *prefix,
                     sfs_table_cb cb, void *arg)
{
    return sfs_table_scan_prefix(txn, st->db_meta, prefix, strlen(prefix),
                                 cb, arg);
}

/* ---- dump dates ---- */

int sfs_dump_path_valid(const char *path)
{
    size_t n = strlen(path);
    if (n == 0 || n > SFS_DUMP_PATH_MAX || path[0] != '/' ||
        strchr(path, '\t') || strchr(path, '\n'))
        return -EINVAL;
    return 0;
}

static size_t date_key(uint8_t *buf, const char *path, int level)
{
    size_t n = strlen(path);
    memcpy(buf, DATE_PREFIX, DATE_PLEN);
    memcpy(buf + DATE_PLEN, path, n);
    buf[DATE_PLEN + n] = 0;
    buf[DATE_PLEN + n + 1] = (uint8_t)level;
    return DATE_PLEN + n + 2;
}

int sfs_dumpdate_put_w(struct sfs_store *st, MDB_txn *txn,
                       const struct sfs_dumpdate *d)
{
    if (sfs_dump_path_valid(d->path) || d->level < 0 ||
        d->level > SFS_DUMP_LEVEL_MAX)
        return -EINVAL;
    uint8_t kb[DATE_PLEN + SFS_DUMP_PATH_MAX + 2];
    MDB_val k = { date_key(kb, d->path, d->level), kb };
    MDB_val v = { sizeof(*d), (void *)d };
    return sfs_mdb_errno(mdb_put(txn, st->db_meta, &k, &v, 0));
}

static void date_decode(const MDB_val *v, struct sfs_dumpdate *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out, v->mv_data, v->mv_size < sizeof(*out) ? v->mv_size
                                                      : sizeof(*out));
    out->path[SFS_DUMP_PATH_MAX] = 0;
    out->snapshot[SFS_NAME_MAX] = 0;
}

struct foreach_date {
    sfs_dumpdate_cb cb;
    void *arg;
};

static int foreach_date_cb(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct foreach_date *f = arg;
    struct sfs_dumpdate d;
    date_decode(v, &d);
    return f->cb(f->arg, &d);
}

int sfs_dumpdate_foreach(struct sfs_store *st, MDB_txn *txn,
                         sfs_dumpdate_cb cb, void *arg)
{
    struct foreach_date f = { cb, arg };
    return meta_scan(st, txn, DATE_PREFIX, foreach_date_cb, &f);
}

struct base_arg {
    const char *path;
    int level;
    struct sfs_dumpdate *best;
    bool found;
};

static int base_cb(void *arg, const struct sfs_dumpdate *d)
{
    struct base_arg *b = arg;
    if (strcmp(d->path, b->path) || d->level >= b->level)
        return 0;
    if (!b->found || d->date > b->best->date ||
        (d->date == b->best->date && d->epoch > b->best->epoch)) {
        *b->best = *d;
        b->found = true;
    }
    return 0;
}

int sfs_dumpdate_base(struct sfs_store *st, MDB_txn *txn, const char *path,
                      int level, struct sfs_dumpdate *out)
{
    struct base_arg b = { path, level, out, false };
    int rc = sfs_dumpdate_foreach(st, txn, base_cb, &b);
    if (rc)
        return rc;
    return b.found ? 0 : -ENOENT;
}

/* ---- contexts ---- */

static MDB_val ctx_key(uint32_t id, uint8_t *buf)
{
    memcpy(buf, CTX_PREFIX, CTX_PLEN);
    for (int i = 0; i < 4; i++) /* big-endian: ids list in order */
        buf[CTX_PLEN + i] = (uint8_t)(id >> (24 - 8 * i));
    MDB_val k = { CTX_PLEN + 4, buf };
    return k;
}

static void ctx_decode(const MDB_val *v, struct sfs_dumpctx *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out, v->mv_data, v->mv_size < sizeof(*out) ? v->mv_size
                                                      : sizeof(*out));
    out->path[SFS_DUMP_PATH_MAX] = 0;
    out->snapshot[SFS_NAME_MAX] = 0;
    out->label[sizeof(out->label) - 1] = 0;
}

int sfs_dumpctx_get(struct sfs_store *st, MDB_txn *txn, uint32_t id,
                    struct sfs_dumpctx *out)
{
    uint8_t kb[CTX_PLEN + 4];
    MDB_val k = ctx_key(id, kb), v;
    int rc = mdb_get(txn, st->db_meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return -ENOENT;
    if (rc)
        return sfs_mdb_errno(rc);
    ctx_decode(&v, out);
    return 0;
}

int sfs_dumpctx_put_w(struct sfs_store *st, MDB_txn *txn,
                      const struct sfs_dumpctx *c)
{
    uint8_t kb[CTX_PLEN + 4];
    MDB_val k = ctx_key(c->id, kb), v = { sizeof(*c), (void *)c };
    return sfs_mdb_errno(mdb_put(txn, st->db_meta, &k, &v, 0));
}

struct foreach_ctx {
    sfs_dumpctx_cb cb;
    void *arg;
};

static int foreach_ctx_cb(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct foreach_ctx *f = arg;
    struct sfs_dumpctx c;
    ctx_decode(v, &c);
    return f->cb(f->arg, &c);
}

int sfs_dumpctx_foreach(struct sfs_store *st, MDB_txn *txn, sfs_dumpctx_cb cb,
                        void *arg)
{
    struct foreach_ctx f = { cb, arg };
    return meta_scan(st, txn, CTX_PREFIX, foreach_ctx_cb, &f);
}

static int max_id_cb(void *arg, const struct sfs_dumpctx *c)
{
    uint32_t *max = arg;
    if (c->id > *max)
        *max = c->id;
    return 0;
}

/* snapshot_for_backup.N, N the id the snapshot gets (or the next free
 * number above it, when that name was taken by hand): ids are never
 * reused, so a dump never makes a name an earlier dump made, which a
 * mirror destination may still hold after the source deleted it. */
static int auto_snapshot_name(struct sfs_store *st, MDB_txn *txn, char *out)
{
    uint64_t first = st->state.next_snap_id;
    for (uint64_t n = first; n < first + 100000; n++) {
        snprintf(out, SFS_NAME_MAX + 1, AUTO_SNAP_PREFIX "%llu",
                 (unsigned long long)n);
        struct sfs_snap_rec s;
        int rc = sfs_snap_find(st, txn, out, &s);
        if (rc == -ENOENT)
            return 0;
        if (rc)
            return rc;
    }
    return -ENOSPC;
}

static void hold_tag(uint32_t id, char *tag)
{
    snprintf(tag, 32, "dump:%u", id);
}

int sfs_dump_begin_w(struct sfs_store *st, MDB_txn *txn,
                     struct sfs_dumpctx *c)
{
    if (sfs_dump_path_valid(c->path) || c->level < 0 ||
        c->level > SFS_DUMP_LEVEL_MAX)
        return -EINVAL;
    uint32_t max = 0;
    int rc = sfs_dumpctx_foreach(st, txn, max_id_cb, &max);
    if (rc)
        return rc;
    c->id = max + 1;
    struct sfs_snap_rec s;
    if (c->auto_snapshot) {
        rc = auto_snapshot_name(st, txn, c->snapshot);
        if (!rc)
            rc = sfs_snap_take_w(st, txn, c->snapshot, &s);
    } else {
        rc = sfs_snap_find(st, txn, c->snapshot, &s);
    }
    if (rc)
        return rc;
    c->epoch = s.epoch;
    c->date = s.ctime_sec;
    struct sfs_dumpdate base;
    rc = c->level ? sfs_dumpdate_base(st, txn, c->path, c->level, &base)
                  : -ENOENT;
    if (rc && rc != -ENOENT)
        return rc;
    c->ddate = rc ? 0 : base.date;
    c->base_epoch = rc ? 0 : base.epoch;
    c->base_level = rc ? -1 : base.level;
    char tag[32];
    hold_tag(c->id, tag);
    rc = sfs_snap_hold_w(st, txn, c->snapshot, tag);
    if (rc)
        return rc;
    return sfs_dumpctx_put_w(st, txn, c);
}

/* Release the context's hold and delete the snapshot it created. */
static int ctx_release(struct sfs_store *st, MDB_txn *txn,
                       const struct sfs_dumpctx *c)
{
    char tag[32];
    hold_tag(c->id, tag);
    int rc = sfs_snap_release_w(st, txn, c->snapshot, tag);
    if (rc && rc != -ENODATA && rc != -ENOENT)
        return rc;
    if (!c->auto_snapshot)
        return 0;
    struct sfs_snap_rec s;
    rc = sfs_snap_find(st, txn, c->snapshot, &s);
    if (rc == -ENOENT || (!rc && s.epoch != c->epoch))
        return 0;
    if (!rc)
        rc = sfs_snap_delete_w(st, txn, s.epoch);
    return rc == -EBUSY ? 0 : rc; /* someone else holds it: it stays */
}

static int ctx_remove(struct sfs_store *st, MDB_txn *txn, uint32_t id,
                      struct sfs_dumpctx *c)
{
    int rc = sfs_dumpctx_get(st, txn, id, c);
    if (!rc)
        rc = ctx_release(st, txn, c);
    if (rc)
        return rc;
    uint8_t kb[CTX_PLEN + 4];
    MDB_val k = ctx_key(id, kb);
    return sfs_mdb_errno(mdb_del(txn, st->db_meta, &k, NULL));
}

int sfs_dump_finish_w(struct sfs_store *st, MDB_txn *txn, uint32_t id,
                      bool record_date)
{
    struct sfs_dumpctx c;
    int rc = ctx_remove(st, txn, id, &c);
    if (rc || !record_date)
        return rc;
    struct sfs_dumpdate d;
    memset(&d, 0, sizeof(d));
    snprintf(d.path, sizeof(d.path), "%s", c.path);
    snprintf(d.snapshot, sizeof(d.snapshot), "%s", c.snapshot);
    d.level = c.level;
    d.date = c.date;
    d.epoch = c.epoch;
    return sfs_dumpdate_put_w(st, txn, &d);
}

int sfs_dumpctx_delete_w(struct sfs_store *st, MDB_txn *txn, uint32_t id)
{
    struct sfs_dumpctx c;
    return ctx_remove(st, txn, id, &c);
}

void sfs_dumpctx_to_hex(const struct sfs_dumpctx *c, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *b = (const uint8_t *)c;
    for (size_t i = 0; i < sizeof(*c); i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * sizeof(*c)] = 0;
}

int sfs_dumpctx_from_hex(const char *hex, struct sfs_dumpctx *c)
{
    if (strlen(hex) != 2 * sizeof(*c))
        return -EINVAL;
    uint8_t *b = (uint8_t *)c;
    for (size_t i = 0; i < sizeof(*c); i++) {
        int hi = sfs_hex_digit(hex[2 * i]), lo = sfs_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    c->path[SFS_DUMP_PATH_MAX] = 0;
    c->snapshot[SFS_NAME_MAX] = 0;
    c->label[sizeof(c->label) - 1] = 0;
    return 0;
}
