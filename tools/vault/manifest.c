/*
 * manifest.c - snapshot manifests: what the vault says of each snapshot
 * it holds (see format.h), sealed as the object snapshots/ID.
 *
 *   "SFSVSNAP" u32 version, str name, i64 ctime_sec, u32 ctime_nsec,
 *   u64 epoch, volume[16], u32 nlabels, str labels..., i64 backup_time,
 *   str host, u64 base_epoch, u32 block_size, u32 codec, i32 level,
 *   u64 volume_size, u64 next_ino, u64 logical, u64 files, u64 added,
 *   u64 stored, link[32], u32 depth, u64 chain_bytes, u64 full_bytes
 *
 * Guarantees: a manifest decodes only if it is authentic (sealed with
 * this vault's key as a "snapshot"), of a format this program knows, and
 * complete, with a name the store would accept and a block size a store
 * can have.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

static const char snap_magic[8] = { 'S', 'F', 'S', 'V', 'S', 'N', 'A', 'P' };

void vault_label_of(const char *name, char *out)
{
    size_t n = strcspn(name, ".");
    memcpy(out, name, n);
    out[n] = 0;
}

static void put_identity(struct vw *w, const struct vault_manifest *m)
{
    vw_str(w, m->name);
    vw_u64(w, (uint64_t)m->ctime_sec);
    vw_u32(w, m->ctime_nsec);
    vw_u64(w, m->epoch);
    vw_bytes(w, m->volume, 16);
    vw_u32(w, m->nlabels);
    for (uint32_t i = 0; i < m->nlabels && i < VAULT_LABELS_MAX; i++)
        vw_str(w, m->labels[i]);
}

static void put_backup(struct vw *w, const struct vault_manifest *m)
{
    vw_u64(w, (uint64_t)m->backup_time);
    vw_str(w, m->host);
    vw_u64(w, m->base_epoch);
    vw_u32(w, m->block_size);
    vw_u32(w, m->codec);
    vw_u32(w, (uint32_t)m->codec_level);
    vw_u64(w, m->volume_size);
    vw_u64(w, m->next_ino);
    vw_u64(w, m->logical);
    vw_u64(w, m->files);
    vw_u64(w, m->added);
    vw_u64(w, m->stored);
    vw_bytes(w, m->link, VC_ID);
    vw_u32(w, m->depth);
    vw_u64(w, m->chain_bytes);
    vw_u64(w, m->full_bytes);
}

int vault_manifest_encode(const struct vault_keys *k,
                          const struct vault_manifest *m, struct vw *out)
{
    if (m->nlabels > VAULT_LABELS_MAX)
        return -EINVAL;
    struct vw w = { 0 };
    vw_bytes(&w, snap_magic, sizeof(snap_magic));
    vw_u32(&w, VAULT_FORMAT);
    put_identity(&w, m);
    put_backup(&w, m);
    int rc = w.failed ? -ENOMEM
                      : vault_obj_seal(k, "snapshot", w.p, w.len, out);
    vw_free(&w);
    return rc;
}

static void get_identity(struct vr *r, struct vault_manifest *m)
{
    vr_str(r, m->name, sizeof(m->name));
    m->ctime_sec = (int64_t)vr_u64(r);
    m->ctime_nsec = vr_u32(r);
    m->epoch = vr_u64(r);
    const uint8_t *u = vr_bytes(r, 16);
    if (u)
        memcpy(m->volume, u, 16);
    m->nlabels = vr_u32(r);
    if (m->nlabels > VAULT_LABELS_MAX)
        r->bad = true;
    for (uint32_t i = 0; !r->bad && i < m->nlabels; i++)
        vr_str(r, m->labels[i], sizeof(m->labels[i]));
}

static void get_backup(struct vr *r, struct vault_manifest *m)
{
    m->backup_time = (int64_t)vr_u64(r);
    vr_str(r, m->host, sizeof(m->host));
    m->base_epoch = vr_u64(r);
    m->block_size = vr_u32(r);
    m->codec = vr_u32(r);
    m->codec_level = (int32_t)vr_u32(r);
    m->volume_size = vr_u64(r);
    m->next_ino = vr_u64(r);
    m->logical = vr_u64(r);
    m->files = vr_u64(r);
    m->added = vr_u64(r);
    m->stored = vr_u64(r);
    const uint8_t *l = vr_bytes(r, VC_ID);
    if (l)
        memcpy(m->link, l, VC_ID);
    m->depth = vr_u32(r);
    m->chain_bytes = vr_u64(r);
    m->full_bytes = vr_u64(r);
}

static bool manifest_sane(const struct vault_manifest *m)
{
    return !sfs_snap_name_valid(m->name) && m->epoch &&
           m->block_size >= SFS_BLOCK_SIZE_MIN &&
           m->block_size <= SFS_BLOCK_SIZE_MAX &&
           !(m->block_size & (m->block_size - 1)) && m->depth >= 1 &&
           (m->base_epoch == 0) == (m->depth == 1) &&
           m->base_epoch < m->epoch && m->ctime_nsec < 1000000000u;
}

int vault_manifest_decode(const struct vault_keys *k, const void *obj,
                          size_t len, struct vault_manifest *m)
{
    uint8_t *plain;
    size_t plen;
    int rc = vault_obj_open(k, "snapshot", obj, len, &plain, &plen);
    if (rc)
        return rc;
    memset(m, 0, sizeof(*m));
    struct vr r = vr_init(plain, plen);
    const uint8_t *magic = vr_bytes(&r, sizeof(snap_magic));
    uint32_t version = vr_u32(&r);
    if (r.bad || memcmp(magic, snap_magic, sizeof(snap_magic)) || !version)
        rc = -EBADMSG;
    else if (version > VAULT_FORMAT)
        rc = -EPROTONOSUPPORT;
    if (!rc) {
        get_identity(&r, m);
        get_backup(&r, m);
        rc = vr_done(&r) && manifest_sane(m) ? 0 : -EBADMSG;
    }
    free(plain);
    return rc;
}
