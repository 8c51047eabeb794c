/*
 * snapshot.c - snapshot operations above the epoch mechanics of vrec.c:
 * rename, and the exact estimate of what deleting a set frees.
 *
 * Reclaim.  The bytes a delete would free are found by doing the delete,
 * in a nested transaction that is then aborted: the deletes walk exactly
 * the deadlist rows they would walk for real (cost in proportion to the
 * change between each snapshot and its neighbours, never the volume), the
 * space counters say what went, and nothing is kept.  The estimate is
 * therefore the real figure by construction, for any set, with shared and
 * deduplicated blocks counted once, when their last reference goes.
 * Deleting a set one snapshot at a time frees the same whatever the order:
 * in the end a version goes exactly when every snapshot that saw it is
 * gone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

int sfs_snap_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > SFS_NAME_MAX || strchr(name, '/') ||
        !strcmp(name, ".") || !strcmp(name, ".."))
        return -EINVAL;
    return 0;
}

int sfs_snap_rename_w(struct sfs_store *st, MDB_txn *txn, const char *from,
                      const char *to)
{
    struct sfs_snap_rec s, other;
    int rc = sfs_snap_name_valid(to);
    if (rc)
        return rc;
    rc = sfs_snap_find(st, txn, from, &s);
    if (rc)
        return rc;
    rc = sfs_snap_find(st, txn, to, &other);
    if (rc == 0)
        return -EEXIST;
    if (rc != -ENOENT)
        return rc;
    memset(s.name, 0, sizeof(s.name));
    memcpy(s.name, to, strlen(to));
    uint8_t k[8];
    sfs_put_be64(k, s.epoch);
    MDB_val key = { 8, k }, val = { sizeof(s), &s };
    return sfs_mdb_errno(mdb_put(txn, st->db_snaps, &key, &val, 0));
}

int sfs_snap_reclaim(struct sfs_store *st, MDB_txn *txn, const uint64_t *epochs,
                     size_t n, struct sfs_reclaim *out)
{
    struct sfs_state saved = st->state;
    MDB_txn *dry;
    int rc = sfs_txn_begin(st, txn, true, &dry);
    if (rc)
        return rc;
    for (size_t i = 0; !rc && i < n; i++)
        rc = sfs_snap_delete_unheld_w(st, dry, epochs[i]);
    if (!rc) {
        out->physical = saved.phys_bytes + saved.inline_bytes -
                        st->state.phys_bytes - st->state.inline_bytes;
        out->logical = saved.ref_logical + saved.inline_bytes -
                       st->state.ref_logical - st->state.inline_bytes;
    }
    mdb_txn_abort(dry);
    st->state = saved;
    return rc;
}

struct list_ctx {
    struct sfs_store *st;
    MDB_txn *txn;
    sfs_snap_line_cb cb;
    void *arg;
};

static int list_one(void *a, const struct sfs_snap_rec *s)
{
    struct list_ctx *lc = a;
    struct sfs_snap_line l = { .rec = *s };
    struct sfs_reclaim r;
    int rc = sfs_snap_reclaim(lc->st, lc->txn, &s->epoch, 1, &r);
    if (rc)
        return rc;
    l.unique_physical = r.physical;
    l.unique_logical = r.logical;
    rc = sfs_snap_holds(lc->st, lc->txn, s->epoch, NULL, NULL);
    if (rc < 0)
        return rc;
    l.holds = (uint32_t)rc;
    rc = sfs_cgroup_get(lc->st, lc->txn, s->epoch, &l.group);
    if (rc && rc != -ENOENT)
        return rc;
    return lc->cb(lc->arg, &l);
}

int sfs_snap_list(struct sfs_store *st, MDB_txn *txn, sfs_snap_line_cb cb,
                  void *arg)
{
    struct list_ctx lc = { st, txn, cb, arg };
    return sfs_snap_foreach(st, txn, list_one, &lc);
}

void sfs_snap_line_format(const struct sfs_snap_line *l, FILE *out)
{
    fprintf(out, "%llu\t%llu\t%lld\t%u\t%llu\t%llu\t%u\t",
            (unsigned long long)l->rec.epoch, (unsigned long long)l->rec.id,
            (long long)l->rec.ctime_sec, l->rec.ctime_nsec,
            (unsigned long long)l->unique_physical,
            (unsigned long long)l->unique_logical, l->holds);
    sfs_cgroup_format(&l->group, out);
    fprintf(out, "\t%s\n", l->rec.name);
}

int sfs_snap_line_parse(const char *line, struct sfs_snap_line *l)
{
    unsigned long long epoch, id, phys, logical;
    long long sec;
    unsigned nsec, holds;
    int pos = 0;
    memset(l, 0, sizeof(*l));
    if (sscanf(line, "%llu\t%llu\t%lld\t%u\t%llu\t%llu\t%u\t%n", &epoch, &id,
               &sec, &nsec, &phys, &logical, &holds, &pos) != 7 || !pos)
        return -EINVAL;
    l->holds = holds;
    char group[32 + SFS_CGROUP_MAX * SFS_UUID_TEXT];
    size_t glen = strcspn(line + pos, "\t");
    if (glen >= sizeof(group) || line[pos + glen] != '\t')
        return -EINVAL;
    memcpy(group, line + pos, glen);
    group[glen] = 0;
    if (sfs_cgroup_parse(group, &l->group))
        return -EINVAL;
    pos += (int)glen + 1;
    size_t n = strcspn(line + pos, "\n");
    if (n > SFS_NAME_MAX)
        return -EINVAL;
    memcpy(l->rec.name, line + pos, n);
    l->rec.epoch = epoch;
    l->rec.id = id;
    l->rec.ctime_sec = sec;
    l->rec.ctime_nsec = nsec;
    l->unique_physical = phys;
    l->unique_logical = logical;
    return 0;
}

/* ---- holds: meta keys "hold/" epoch(be64) tag -> () ---- */

#define HOLD_PREFIX "hold/"
#define HOLD_PLEN 5
#define HOLD_TAG_MAX 200

static int hold_key(uint8_t *k, uint64_t epoch, const char *tag)
{
    size_t n = strlen(tag);
    if (n == 0 || n > HOLD_TAG_MAX || strchr(tag, '\t') || strchr(tag, '\n'))
        return -EINVAL;
    memcpy(k, HOLD_PREFIX, HOLD_PLEN);
    sfs_put_be64(k + HOLD_PLEN, epoch);
    memcpy(k + HOLD_PLEN + 8, tag, n);
    return (int)(HOLD_PLEN + 8 + n);
}

/* The hold key of TAG on snapshot NAME: its length, or a negative errno. */
static int hold_key_of(struct sfs_store *st, MDB_txn *txn, const char *name,
                       const char *tag, uint8_t *k)
{
    struct sfs_snap_rec s;
    int rc = sfs_snap_find(st, txn, name, &s);
    return rc ? rc : hold_key(k, s.epoch, tag);
}

int sfs_snap_hold_w(struct sfs_store *st, MDB_txn *txn, const char *name,
                    const char *tag)
{
    uint8_t k[HOLD_PLEN + 8 + HOLD_TAG_MAX];
    int klen = hold_key_of(st, txn, name, tag, k);
    if (klen < 0)
        return klen;
    MDB_val key = { (size_t)klen, k }, val = { 0, NULL };
    return sfs_mdb_errno(mdb_put(txn, st->db_meta, &key, &val, MDB_NOOVERWRITE));
}

int sfs_snap_release_w(struct sfs_store *st, MDB_txn *txn, const char *name,
                       const char *tag)
{
    uint8_t k[HOLD_PLEN + 8 + HOLD_TAG_MAX];
    int klen = hold_key_of(st, txn, name, tag, k);
    if (klen < 0)
        return klen;
    MDB_val key = { (size_t)klen, k };
    int rc = mdb_del(txn, st->db_meta, &key, NULL);
    return rc == MDB_NOTFOUND ? -ENODATA : sfs_mdb_errno(rc);
}

int sfs_snap_holds(struct sfs_store *st, MDB_txn *txn, uint64_t epoch,
                   sfs_hold_cb cb, void *arg)
{
    uint8_t p[HOLD_PLEN + 8];
    memcpy(p, HOLD_PREFIX, HOLD_PLEN);
    sfs_put_be64(p + HOLD_PLEN, epoch);
    MDB_cursor *c;
    int rc = sfs_mdb_errno(mdb_cursor_open(txn, st->db_meta, &c));
    if (rc)
        return rc;
    MDB_val k = { sizeof(p), p }, v;
    int count = 0;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (!mrc && k.mv_size > sizeof(p) && !memcmp(k.mv_data, p, sizeof(p))) {
        char tag[HOLD_TAG_MAX + 1];
        size_t n = k.mv_size - sizeof(p);
        memcpy(tag, (uint8_t *)k.mv_data + sizeof(p), n);
        tag[n] = 0;
        count++;
        if (cb && (rc = cb(arg, tag)))
            break;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc)
        return rc < 0 ? rc : count;
    if (mrc && mrc != MDB_NOTFOUND)
        return sfs_mdb_errno(mrc);
    return count;
}
