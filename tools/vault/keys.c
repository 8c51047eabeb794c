/*
 * keys.c - the objects that open a vault: key objects (keys/ID) and the
 * config.
 *
 * A vault has one random master key (an encryption key and a MAC key,
 * crypto.h).  Each key object holds it wrapped by a passphrase: scrypt
 * turns the passphrase and the object's own random salt into a 256-bit
 * key, which seals the master key with AES-256-GCM; everything before the
 * sealed part (format, scrypt's parameters, salt, creation time, host,
 * user) is the additional data, so no byte of the object can change
 * without the passphrase failing to open it.  Several key objects wrap
 * the same master key: adding or removing a passphrase never re-encrypts
 * data.  A wrong passphrase and a damaged key object are the same thing
 * to GCM: -EACCES.
 *
 * The config carries the format version in the clear, authenticated as
 * additional data of its sealed body (the vault id and creation time), so
 * a vault of a newer format is refused before a passphrase is asked for,
 * and a version changed on the way fails to open.
 *
 *   key:    "SFSVKEY\n" u32 version, u32 kdf (1: scrypt), u64 N, u32 r,
 *           u32 p, salt[32], i64 created, str host, str user,
 *           seal(nonce | enc key | mac key | tag)
 *   config: "SFSVCFG\n" u32 version, seal(vault id[32], i64 created)
 */
#include <errno.h>
#include <string.h>

#include "format.h"

static const char key_magic[8] = { 'S', 'F', 'S', 'V', 'K', 'E', 'Y', '\n' };
static const char cfg_magic[8] = { 'S', 'F', 'S', 'V', 'C', 'F', 'G', '\n' };
#define KDF_SCRYPT 1
#define CFG_AAD "snapfs-vault config"

/* The master key as the bytes a key object seals. */
static void keys_pack(const struct vault_keys *k, uint8_t out[2 * VC_KEY])
{
    memcpy(out, k->enc, VC_KEY);
    memcpy(out + VC_KEY, k->mac, VC_KEY);
}

static void key_clear_part(struct vw *w, const struct vault_keyinfo *info)
{
    vw_bytes(w, key_magic, sizeof(key_magic));
    vw_u32(w, VAULT_FORMAT);
    vw_u32(w, KDF_SCRYPT);
    vw_u64(w, info->kdf.n);
    vw_u32(w, info->kdf.r);
    vw_u32(w, info->kdf.p);
    vw_bytes(w, info->salt, VAULT_SALT);
    vw_u64(w, (uint64_t)info->created);
    vw_str(w, info->host);
    vw_str(w, info->user);
}

int vault_key_make(const struct vault_keys *keys, const char *pass,
                   size_t plen, struct vault_keyinfo *info, struct vw *out)
{
    uint8_t wrap[VC_KEY], plain[2 * VC_KEY];
    int rc = vc_random(info->salt, VAULT_SALT);
    if (!rc)
        rc = vc_scrypt(pass, plen, info->salt, VAULT_SALT, info->kdf.n,
                       info->kdf.r, info->kdf.p, wrap);
    if (rc)
        return rc;
    key_clear_part(out, info);
    size_t aadlen = out->len;
    uint8_t *sealed = vw_reserve(out, sizeof(plain) + VC_OVERHEAD);
    if (!sealed) {
        vc_wipe(wrap, sizeof(wrap));
        return -ENOMEM;
    }
    keys_pack(keys, plain);
    rc = vc_seal(wrap, out->p, aadlen, plain, sizeof(plain), sealed);
    vc_wipe(wrap, sizeof(wrap));
    vc_wipe(plain, sizeof(plain));
    if (!rc)
        vw_commit(out, sizeof(plain) + VC_OVERHEAD);
    return rc;
}

/* Parse the clear part; *AADLEN is its length (the sealed part follows). */
static int key_parse(const void *obj, size_t len, struct vault_keyinfo *info,
                     size_t *aadlen)
{
    struct vr r = vr_init(obj, len);
    memset(info, 0, sizeof(*info));
    const uint8_t *m = vr_bytes(&r, sizeof(key_magic));
    if (!m || memcmp(m, key_magic, sizeof(key_magic)))
        return -EBADMSG;
    uint32_t version = vr_u32(&r);
    if (!r.bad && version > VAULT_FORMAT)
        return -EPROTONOSUPPORT;
    uint32_t kdf = vr_u32(&r);
    info->kdf.n = vr_u64(&r);
    info->kdf.r = vr_u32(&r);
    info->kdf.p = vr_u32(&r);
    const uint8_t *salt = vr_bytes(&r, VAULT_SALT);
    if (salt)
        memcpy(info->salt, salt, VAULT_SALT);
    info->created = (int64_t)vr_u64(&r);
    vr_str(&r, info->host, sizeof(info->host));
    vr_str(&r, info->user, sizeof(info->user));
    if (r.bad || version == 0 || kdf != KDF_SCRYPT ||
        r.left != 2 * VC_KEY + VC_OVERHEAD)
        return -EBADMSG;
    *aadlen = len - r.left;
    return 0;
}

int vault_key_parse(const void *obj, size_t len, struct vault_keyinfo *info)
{
    size_t aadlen;
    return key_parse(obj, len, info, &aadlen);
}

int vault_key_open(const void *obj, size_t len, const char *pass,
                   size_t plen, struct vault_keys *out)
{
    struct vault_keyinfo info;
    size_t aadlen;
    int rc = key_parse(obj, len, &info, &aadlen);
    uint8_t wrap[VC_KEY], plain[2 * VC_KEY];
    if (!rc)
        rc = vc_scrypt(pass, plen, info.salt, VAULT_SALT, info.kdf.n,
                       info.kdf.r, info.kdf.p, wrap);
    if (rc)
        return rc;
    rc = vc_open(wrap, obj, aadlen, (const uint8_t *)obj + aadlen,
                 len - aadlen, plain);
    vc_wipe(wrap, sizeof(wrap));
    if (rc)
        return -EACCES;
    memcpy(out->enc, plain, VC_KEY);
    memcpy(out->mac, plain + VC_KEY, VC_KEY);
    vc_wipe(plain, sizeof(plain));
    return 0;
}

/* The config's additional data: a label and its clear header. */
static void cfg_aad(const uint8_t *hdr, uint8_t *aad)
{
    memcpy(aad, CFG_AAD, sizeof(CFG_AAD) - 1);
    memcpy(aad + sizeof(CFG_AAD) - 1, hdr, 12);
}

int vault_config_make(const struct vault_keys *keys,
                      const struct vault_config *c, struct vw *out)
{
    struct vw body = { 0 };
    vw_bytes(&body, c->id, VC_ID);
    vw_u64(&body, (uint64_t)c->created);
    vw_bytes(out, cfg_magic, sizeof(cfg_magic));
    vw_u32(out, c->version);
    uint8_t *sealed = vw_reserve(out, body.len + VC_OVERHEAD);
    int rc = body.failed || !sealed ? -ENOMEM : 0;
    uint8_t aad[sizeof(CFG_AAD) - 1 + 12];
    if (!rc) {
        cfg_aad(out->p, aad);
        rc = vc_seal(keys->enc, aad, sizeof(aad), body.p, body.len, sealed);
    }
    if (!rc)
        vw_commit(out, body.len + VC_OVERHEAD);
    vw_free(&body);
    return rc;
}

int vault_config_version(const void *obj, size_t len, uint32_t *version)
{
    struct vr r = vr_init(obj, len);
    const uint8_t *m = vr_bytes(&r, sizeof(cfg_magic));
    if (!m || memcmp(m, cfg_magic, sizeof(cfg_magic)))
        return -EBADMSG;
    *version = vr_u32(&r);
    return r.bad || !*version ? -EBADMSG : 0;
}

int vault_config_open(const struct vault_keys *keys, const void *obj,
                      size_t len, struct vault_config *out)
{
    int rc = vault_config_version(obj, len, &out->version);
    if (rc)
        return rc;
    if (out->version > VAULT_FORMAT)
        return -EPROTONOSUPPORT;
    size_t blen = len - 12;
    if (blen != VC_ID + 8 + VC_OVERHEAD)
        return -EBADMSG;
    uint8_t aad[sizeof(CFG_AAD) - 1 + 12], body[VC_ID + 8];
    cfg_aad(obj, aad);
    rc = vc_open(keys->enc, aad, sizeof(aad), (const uint8_t *)obj + 12, blen,
                 body);
    if (rc)
        return rc;
    struct vr r = vr_init(body, sizeof(body));
    memcpy(out->id, vr_bytes(&r, VC_ID), VC_ID);
    out->created = (int64_t)vr_u64(&r);
    return 0;
}
