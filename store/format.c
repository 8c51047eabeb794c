/*
 * format.c - the store's on-disk format: its version, its features, the
 * checks every open makes against them, and the records of an upgrade.
 *
 * Guarantees:
 *  - A store this snapfs cannot read correctly is never opened: a newer
 *    format version, a feature it does not know (an incompat one; a
 *    ro-compat one unless read-only), or an upgrade left half done.  The
 *    open fails with -EPROTONOSUPPORT and sfs_open_why() says which, with
 *    both versions (what the store has, what this snapfs supports).
 *  - An upgrade is marked in its first transaction and completed in its
 *    last; between the two only an open with SFS_OPEN_UPGRADE succeeds.
 *
 * THEORY: VERSIONS, FEATURES, AND AN UPGRADE THAT CANNOT BE SEEN HALF DONE
 *
 * The superblock carries format_version.  Format 1 is the layout every
 * snapfs before feature records wrote.  Format 2 adds the `features`
 * record in `meta`: one line "NAME CLASS" per feature the store uses,
 * CLASS as in ext4 and ZFS:
 *   compat     a snapfs that does not know NAME may read and write;
 *   ro-compat  it may read, never write (its writes would leave the
 *              feature's records wrong);
 *   incompat   it must not open the store at all.
 * So later changes of the format are features a binary can name when it
 * refuses a store, and a store only needs a newer binary for the features
 * it uses.  Format 2 stores have the feature `ledger` (ro-compat): every
 * block's live references and the bytes only snapshots hold are counted
 * (blocks.c) and kept by every writer.  A format-1 store may lack them
 * (made before the ledger); a format-2 store never does, so fsck reports
 * a format-2 store whose ledger is not counted.
 *
 * This snapfs reads and writes format 1 unchanged (its daemon counts the
 * ledger at mount, as before) and format 2; mkfs makes format 2.  Format
 * 1 is only ever turned into 2 by `snapfs upgrade`, never silently, so a
 * store stays readable by the older snapfs that made it until its owner
 * decides otherwise.
 *
 * An upgrade is several transactions (counting the ledger of a large
 * store is done in batches: one LMDB transaction holds a bounded number
 * of dirty pages).  A half-done store must be opened by nothing but the
 * upgrade, including by older snapfs binaries that know nothing of
 * upgrades.  So the first transaction sets the superblock's version to
 * SFS_FORMAT_UPGRADING | TARGET: a number above any real version, which
 * every snapfs refuses as a newer format, and this one recognises as an
 * interrupted upgrade (its message says to run `snapfs upgrade`).  The
 * same transaction writes the `upgrade` record (from, to, the step, the
 * start time).  Each step is idempotent and commits its own progress
 * (the ledger's flag is set in its last batch); the last transaction
 * writes the features record, the version TARGET and deletes the
 * record.  A kill -9 at any point leaves the store in format 1 (before
 * the first commit), marked (resumed by running the upgrade again,
 * which redoes the unfinished step from its start), or in format 2.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_FEATURES "features"
#define META_UPGRADE "upgrade"

static const struct sfs_feature known_features[] = {
    { "ledger", SFS_FEAT_RO_COMPAT },
};
#define N_KNOWN (sizeof(known_features) / sizeof(known_features[0]))

static __thread char open_why[256];

const char *sfs_open_why(void)
{
    return open_why;
}

__attribute__((format(printf, 1, 2)))
static int refuse(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(open_why, sizeof(open_why), fmt, ap);
    va_end(ap);
    return -EPROTONOSUPPORT;
}

void sfs_open_why_clear(void)
{
    open_why[0] = 0;
}

const char *sfs_feature_class_name(uint32_t cls)
{
    switch (cls) {
    case SFS_FEAT_COMPAT: return "compat";
    case SFS_FEAT_RO_COMPAT: return "ro-compat";
    case SFS_FEAT_INCOMPAT: return "incompat";
    default: return NULL;
    }
}

static uint32_t class_parse(const char *s, size_t len)
{
    for (uint32_t c = SFS_FEAT_COMPAT; c <= SFS_FEAT_INCOMPAT; c++)
        if (strlen(sfs_feature_class_name(c)) == len &&
            !memcmp(sfs_feature_class_name(c), s, len))
            return c;
    return SFS_FEAT_INCOMPAT; /* a class we do not know: the strictest */
}

bool sfs_feature_known(const char *name)
{
    for (size_t i = 0; i < N_KNOWN; i++)
        if (!strcmp(known_features[i].name, name))
            return true;
    return false;
}

void sfs_features_current(struct sfs_features *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < N_KNOWN; i++)
        out->f[out->n++] = known_features[i];
}

/* Parse the record's text: lines "NAME CLASS".  -EIO if malformed. */
static int features_parse(const char *text, size_t len,
                          struct sfs_features *out)
{
    memset(out, 0, sizeof(*out));
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *sp = memchr(p, ' ', (size_t)((nl ? nl : end) - p));
        if (!nl || !sp || sp == p || (size_t)(sp - p) >= SFS_FEATURE_NAME_MAX ||
            out->n == SFS_FEATURES_MAX)
            return -EIO;
        struct sfs_feature *f = &out->f[out->n++];
        memcpy(f->name, p, (size_t)(sp - p));
        f->cls = class_parse(sp + 1, (size_t)(nl - sp - 1));
        p = nl + 1;
    }
    return 0;
}

int sfs_features_get(struct sfs_store *st, MDB_txn *txn,
                     struct sfs_features *out)
{
    memset(out, 0, sizeof(*out));
    MDB_val k = { strlen(META_FEATURES), META_FEATURES }, v;
    int rc = mdb_get(txn, st->db_meta, &k, &v);
    uint32_t fv = st->super.format_version;
    if (rc == MDB_NOTFOUND) /* written by an upgrade's last transaction */
        return fv >= 2 && !(fv & SFS_FORMAT_UPGRADING) ? -EIO : 0;
    if (rc)
        return sfs_mdb_errno(rc);
    return features_parse(v.mv_data, v.mv_size, out);
}

int sfs_features_put_w(struct sfs_store *st, MDB_txn *txn,
                       const struct sfs_features *f)
{
    char text[SFS_FEATURES_MAX * (SFS_FEATURE_NAME_MAX + 16)];
    size_t len = 0;
    for (size_t i = 0; i < f->n; i++) {
        const char *cls = sfs_feature_class_name(f->f[i].cls);
        if (!cls || !f->f[i].name[0] || strchr(f->f[i].name, ' '))
            return -EINVAL;
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s %s\n",
                                f->f[i].name, cls);
    }
    MDB_val k = { strlen(META_FEATURES), META_FEATURES }, v = { len, text };
    return sfs_mdb_errno(mdb_put(txn, st->db_meta, &k, &v, 0));
}

/* ---- the upgrade record ---- */

int sfs_upgrade_get(struct sfs_store *st, MDB_txn *txn,
                    struct sfs_upgrade *out)
{
    memset(out, 0, sizeof(*out));
    MDB_val k = { strlen(META_UPGRADE), META_UPGRADE }, v;
    int rc = mdb_get(txn, st->db_meta, &k, &v);
    if (rc)
        return sfs_mdb_errno(rc);
    char text[128];
    size_t n = v.mv_size < sizeof(text) - 1 ? v.mv_size : sizeof(text) - 1;
    memcpy(text, v.mv_data, n);
    text[n] = 0;
    long long started;
    if (sscanf(text, "from=%u to=%u step=%31s started=%lld", &out->from,
               &out->to, out->step, &started) != 4)
        return -EIO;
    out->started = started;
    return 0;
}

static int upgrade_put(struct sfs_store *st, MDB_txn *txn,
                       const struct sfs_upgrade *u)
{
    char text[128];
    int n = snprintf(text, sizeof(text), "from=%u to=%u step=%s started=%lld",
                     u->from, u->to, u->step, (long long)u->started);
    MDB_val k = { strlen(META_UPGRADE), META_UPGRADE }, v = { (size_t)n, text };
    return sfs_mdb_errno(mdb_put(txn, st->db_meta, &k, &v, 0));
}

int sfs_upgrade_begin_w(struct sfs_store *st, MDB_txn *txn,
                        const struct sfs_upgrade *u)
{
    if (u->to != SFS_FORMAT_VERSION || u->from >= u->to ||
        strlen(u->step) >= sizeof(u->step))
        return -EINVAL;
    int rc = upgrade_put(st, txn, u);
    if (rc)
        return rc;
    st->super.format_version = SFS_FORMAT_UPGRADING | u->to;
    return sfs_super_put_w(st, txn);
}

int sfs_upgrade_step_w(struct sfs_store *st, MDB_txn *txn, const char *step)
{
    struct sfs_upgrade u;
    int rc = sfs_upgrade_get(st, txn, &u);
    if (rc)
        return rc;
    snprintf(u.step, sizeof(u.step), "%s", step);
    return upgrade_put(st, txn, &u);
}

int sfs_upgrade_finish_w(struct sfs_store *st, MDB_txn *txn)
{
    struct sfs_upgrade u;
    int rc = sfs_upgrade_get(st, txn, &u);
    if (rc)
        return rc;
    if (u.to != SFS_FORMAT_VERSION)
        return -EINVAL;
    if (!(st->state.flags & SFS_STATE_LEDGER))
        return -EAGAIN; /* the ledger step has not finished */
    struct sfs_features f;
    sfs_features_current(&f);
    rc = sfs_features_put_w(st, txn, &f);
    MDB_val k = { strlen(META_UPGRADE), META_UPGRADE };
    if (!rc)
        rc = sfs_mdb_errno(mdb_del(txn, st->db_meta, &k, NULL));
    if (rc)
        return rc;
    st->super.format_version = u.to;
    return sfs_super_put_w(st, txn);
}

/* ---- the checks of an open ---- */

static int check_features(struct sfs_store *st, MDB_txn *txn, bool readonly)
{
    int rc = sfs_features_get(st, txn, &st->features);
    if (rc == -EIO)
        return refuse("format %u, but its features record is missing or "
                      "malformed (damaged: snapfs fsck)",
                      st->super.format_version);
    if (rc)
        return rc;
    for (size_t i = 0; i < st->features.n; i++) {
        const struct sfs_feature *f = &st->features.f[i];
        if (sfs_feature_known(f->name) || f->cls == SFS_FEAT_COMPAT)
            continue;
        if (f->cls == SFS_FEAT_INCOMPAT)
            return refuse("volume uses the feature '%s' (format %u), which "
                          "this snapfs (formats %u to %u) does not know; "
                          "use a newer snapfs", f->name,
                          st->super.format_version, SFS_FORMAT_OLDEST,
                          SFS_FORMAT_VERSION);
        if (!readonly)
            return refuse("volume uses the feature '%s' (format %u), which "
                          "this snapfs (formats %u to %u) may read but not "
                          "write; use a newer snapfs to change the volume", f->name,
                          st->super.format_version, SFS_FORMAT_OLDEST,
                          SFS_FORMAT_VERSION);
    }
    return 0;
}

int sfs_format_check_open(struct sfs_store *st, MDB_txn *txn, int flags)
{
    uint32_t v = st->super.format_version;
    if (v & SFS_FORMAT_UPGRADING) {
        uint32_t to = v & ~SFS_FORMAT_UPGRADING;
        struct sfs_upgrade u;
        if (to > SFS_FORMAT_VERSION)
            return refuse("volume has a newer on-disk format (an upgrade to "
                          "format %u under way) than this snapfs supports "
                          "(formats %u to %u)", to, SFS_FORMAT_OLDEST,
                          SFS_FORMAT_VERSION);
        if (flags & SFS_OPEN_UPGRADE)
            return 0;
        if (sfs_upgrade_get(st, txn, &u))
            u.from = 0;
        return refuse("an upgrade of the volume from format %u to %u did not "
                      "finish; run snapfs upgrade on the store to finish it "
                      "(this snapfs supports formats %u to %u)", u.from, to,
                      SFS_FORMAT_OLDEST, SFS_FORMAT_VERSION);
    }
    if (v > SFS_FORMAT_VERSION)
        return refuse("volume has a newer on-disk format (format %u) than "
                      "this snapfs supports (formats %u to %u)", v,
                      SFS_FORMAT_OLDEST, SFS_FORMAT_VERSION);
    if (v < SFS_FORMAT_OLDEST)
        return -EMEDIUMTYPE;
    return check_features(st, txn, flags & SFS_OPEN_RDONLY);
}

int sfs_format_fsck(struct sfs_store *st, MDB_txn *txn,
                    sfs_fsck_report report, void *arg)
{
    struct sfs_features f;
    int rc = sfs_features_get(st, txn, &f);
    if (rc == -EIO) {
        report(arg, "format: the features record of a format-2 store is "
                    "missing or malformed");
        return 1;
    }
    if (rc)
        return rc;
    int problems = 0;
    bool ledger = false;
    for (size_t i = 0; i < f.n; i++)
        ledger |= !strcmp(f.f[i].name, "ledger");
    if (ledger && !(st->state.flags & SFS_STATE_LEDGER)) {
        report(arg, "format: the store has the feature 'ledger', but its "
                    "ledger is not counted");
        problems++;
    }
    return problems;
}
