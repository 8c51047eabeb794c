/*
 * cgroup.c - consistency groups: the record that says a snapshot was taken
 * together with snapshots of other volumes, at one point in time
 * (`snapfs snapshot create --group`; the freeze that makes the point is
 * the daemon's, fs/control.c, and the tool's, tools/group.c).
 *
 * Guarantees:
 *   - the record is written in the transaction that takes the snapshot
 *     (sfs_cgroup_take_w), so a snapshot never exists without its record,
 *     nor a record without its snapshot: deleting the snapshot deletes the
 *     record in the same transaction (sfs_snap_delete_unheld_w calls
 *     sfs_cgroup_delete_w), whoever deletes it (the command, a policy's
 *     retention, a dump's end);
 *   - it is keyed by the snapshot's epoch, not its name, so a renamed
 *     member stays a member;
 *   - it names every member by volume UUID (the superblock's, which never
 *     changes), in the order the members were given, this volume among
 *     them, with the time the group was taken, the same on every member.
 *
 * Layout: meta key "cgroup/" epoch(be64) -> created(be64, seconds since
 * the epoch, two's complement) count(be64) count * uuid(16 bytes).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define CG_PREFIX "cgroup/"
#define CG_PLEN 7

static void cg_key(uint8_t *k, uint64_t epoch)
{
    memcpy(k, CG_PREFIX, CG_PLEN);
    sfs_put_be64(k + CG_PLEN, epoch);
}

/* 0 if G is a group this volume may record: 1 to SFS_CGROUP_MAX distinct
 * members, this volume among them. */
static int cg_valid(struct sfs_store *st, const struct sfs_cgroup *g)
{
    bool self = false;
    if (g->count == 0 || g->count > SFS_CGROUP_MAX)
        return -EINVAL;
    for (uint32_t i = 0; i < g->count; i++) {
        self |= !memcmp(g->members[i], st->super.uuid, 16);
        for (uint32_t j = 0; j < i; j++)
            if (!memcmp(g->members[i], g->members[j], 16))
                return -EINVAL;
    }
    return self ? 0 : -EINVAL;
}

int sfs_cgroup_take_w(struct sfs_store *st, MDB_txn *txn, const char *name,
                      const struct sfs_cgroup *g, struct sfs_snap_rec *out)
{
    int rc = cg_valid(st, g);
    struct sfs_snap_rec s;
    if (!rc)
        rc = sfs_snap_take_w(st, txn, name, &s);
    if (rc)
        return rc;
    uint8_t k[CG_PLEN + 8], v[16 + 16 * SFS_CGROUP_MAX];
    cg_key(k, s.epoch);
    sfs_put_be64(v, (uint64_t)g->created_sec);
    sfs_put_be64(v + 8, g->count);
    memcpy(v + 16, g->members, 16 * (size_t)g->count);
    MDB_val key = { sizeof(k), k }, val = { 16 + 16 * (size_t)g->count, v };
    rc = sfs_mdb_errno(mdb_put(txn, st->db_meta, &key, &val, 0));
    if (!rc && out)
        *out = s;
    return rc;
}

int sfs_cgroup_get(struct sfs_store *st, MDB_txn *txn, uint64_t epoch,
                   struct sfs_cgroup *out)
{
    uint8_t k[CG_PLEN + 8];
    cg_key(k, epoch);
    MDB_val key = { sizeof(k), k }, val;
    memset(out, 0, sizeof(*out));
    int rc = mdb_get(txn, st->db_meta, &key, &val);
    if (rc)
        return rc == MDB_NOTFOUND ? -ENOENT : sfs_mdb_errno(rc);
    const uint8_t *p = val.mv_data;
    uint64_t count = val.mv_size >= 16 ? sfs_get_be64(p + 8) : 0;
    if (count == 0 || count > SFS_CGROUP_MAX || val.mv_size != 16 + 16 * count) {
        sfs_log_corruption("group record of snapshot %llu has %zu bytes",
                           (unsigned long long)epoch, val.mv_size);
        return -EIO;
    }
    out->created_sec = (int64_t)sfs_get_be64(p);
    out->count = (uint32_t)count;
    memcpy(out->members, p + 16, 16 * (size_t)count);
    return 0;
}

int sfs_cgroup_delete_w(struct sfs_store *st, MDB_txn *txn, uint64_t epoch)
{
    uint8_t k[CG_PLEN + 8];
    cg_key(k, epoch);
    MDB_val key = { sizeof(k), k };
    int rc = mdb_del(txn, st->db_meta, &key, NULL);
    return rc == MDB_NOTFOUND ? 0 : sfs_mdb_errno(rc);
}

struct epochs_ctx {
    int (*cb)(void *arg, uint64_t epoch);
    void *arg;
};

static int epoch_of_key(void *arg, const MDB_val *key, const MDB_val *val)
{
    struct epochs_ctx *ec = arg;
    if (key->mv_size != CG_PLEN + 8)
        return ec->cb(ec->arg, 0); /* no snapshot has epoch 0 */
    return ec->cb(ec->arg, sfs_get_be64((const uint8_t *)key->mv_data + CG_PLEN));
}

int sfs_cgroup_foreach_epoch(struct sfs_store *st, MDB_txn *txn,
                             int (*cb)(void *arg, uint64_t epoch), void *arg)
{
    struct epochs_ctx ec = { cb, arg };
    return sfs_table_scan_prefix(txn, st->db_meta, CG_PREFIX, CG_PLEN,
                                 epoch_of_key, &ec);
}

/* Where sfs_uuid_format puts its dashes: before these bytes. */
static bool dash_before(int i)
{
    return i == 4 || i == 6 || i == 8 || i == 10;
}

void sfs_uuid_format(const uint8_t *uuid, char *out)
{
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (dash_before(i))
            *o++ = '-';
        o += sprintf(o, "%02x", uuid[i]);
    }
    *o = 0;
}

int sfs_uuid_parse(const char *text, uint8_t *uuid)
{
    for (int i = 0; i < 16; i++) {
        if (dash_before(i) && *text++ != '-')
            return -EINVAL;
        int hi = sfs_hex_digit(text[0]), lo = hi < 0 ? -1 : sfs_hex_digit(text[1]);
        if (lo < 0)
            return -EINVAL;
        uuid[i] = (uint8_t)(hi << 4 | lo);
        text += 2;
    }
    return *text ? -EINVAL : 0;
}

void sfs_cgroup_format(const struct sfs_cgroup *g, FILE *out)
{
    if (!g->count) {
        fputc('-', out);
        return;
    }
    fprintf(out, "%lld", (long long)g->created_sec);
    for (uint32_t i = 0; i < g->count; i++) {
        char u[SFS_UUID_TEXT];
        sfs_uuid_format(g->members[i], u);
        fprintf(out, "%c%s", i ? ',' : ':', u);
    }
}

int sfs_cgroup_parse(const char *text, struct sfs_cgroup *g)
{
    memset(g, 0, sizeof(*g));
    if (!strcmp(text, "-"))
        return 0;
    long long created;
    int pos = 0;
    if (sscanf(text, "%lld:%n", &created, &pos) != 1 || !pos)
        return -EINVAL;
    g->created_sec = created;
    for (const char *p = text + pos;; g->count++) {
        char u[SFS_UUID_TEXT];
        size_t n = strcspn(p, ",");
        if (g->count == SFS_CGROUP_MAX || n >= sizeof(u))
            return -EINVAL;
        memcpy(u, p, n);
        u[n] = 0;
        if (sfs_uuid_parse(u, g->members[g->count]))
            return -EINVAL;
        if (!p[n]) {
            g->count++;
            return 0;
        }
        p += n + 1;
    }
}
