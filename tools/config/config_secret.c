/*
 * config_secret.c - the secrets of a configuration document sealed under
 * a passphrase, with the vault's primitives (tools/vault/crypto.c): a key
 * from scrypt of the passphrase and a random 16-byte salt, AES-256-GCM of
 * the secrets (a JSON object) with a random nonce, the document's version
 * bound as additional data.
 *
 * In the document:
 *   "secrets": {"kdf": "scrypt", "n": 32768, "r": 8, "p": 1,
 *               "salt": HEX, "cipher": "aes-256-gcm", "sealed": HEX}
 *
 * Guarantees: the plaintext and the key are wiped after use; a wrong
 * passphrase, a flipped bit anywhere in salt or sealed bytes, or sealed
 * bytes of another version fail as one thing (-EACCES), never as partial
 * secrets; scrypt parameters are bounded on reading so that a file
 * cannot make import allocate without limit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "vault/crypto.h"

#define KDF_N 32768
#define KDF_R 8
#define KDF_P 1
#define KDF_N_MAX (1u << 20)
#define SALT_LEN 16
#define AAD "snapfs-config-secrets-v2"

json_t *cfg_seal(const char *plain, size_t len, const char *pass,
                 size_t plen)
{
    uint8_t salt[SALT_LEN], key[VC_KEY];
    uint8_t *sealed = malloc(len + VC_OVERHEAD);
    char *hex = malloc(2 * (len + VC_OVERHEAD) + 1), salthex[2 * SALT_LEN + 1];
    json_t *j = NULL;
    if (sealed && hex && !vc_random(salt, sizeof(salt)) &&
        !vc_scrypt(pass, plen, salt, sizeof(salt), KDF_N, KDF_R, KDF_P, key) &&
        !vc_seal(key, AAD, strlen(AAD), plain, len, sealed)) {
        vc_hex(salt, sizeof(salt), salthex);
        vc_hex(sealed, len + VC_OVERHEAD, hex);
        j = json_pack("{s:s, s:i, s:i, s:i, s:s, s:s, s:s}", "kdf", "scrypt",
                      "n", KDF_N, "r", KDF_R, "p", KDF_P, "salt", salthex,
                      "cipher", "aes-256-gcm", "sealed", hex);
    }
    vc_wipe(key, sizeof(key));
    free(sealed);
    free(hex);
    return j;
}

/* The hex member KEY of J into a malloc'd buffer of *LEN bytes. */
static int get_hex(struct cfg_ctx *c, const json_t *j, const char *key,
                   uint8_t **out, size_t *len)
{
    const json_t *h = json_object_get(j, key);
    char where[64];
    snprintf(where, sizeof(where), "secrets.%s", key);
    size_t n = json_string_length(h);
    if (!json_is_string(h) || !n || n % 2)
        return cfg_bad(c, where, "hex digits expected");
    *len = n / 2;
    *out = malloc(*len);
    if (!*out)
        return -ENOMEM;
    if (vc_unhex(json_string_value(h), *out, *len)) {
        free(*out);
        return cfg_bad(c, where, "hex digits expected");
    }
    return 0;
}

static int check_params(struct cfg_ctx *c, const json_t *j, uint64_t *n,
                        uint64_t *r, uint64_t *p)
{
    static const char *const keys[] = { "kdf", "n", "r", "p", "salt",
                                        "cipher", "sealed", NULL };
    char kdf[16], cipher[16];
    int rc = cfg_only_keys(c, "secrets", j, keys);
    if (!rc)
        rc = cfg_get_string(c, "secrets", j, "kdf", kdf, sizeof(kdf), true);
    if (!rc)
        rc = cfg_get_string(c, "secrets", j, "cipher", cipher,
                            sizeof(cipher), true);
    if (!rc)
        rc = cfg_get_uint(c, "secrets", j, "n", KDF_N_MAX, n);
    if (!rc)
        rc = cfg_get_uint(c, "secrets", j, "r", 32, r);
    if (!rc)
        rc = cfg_get_uint(c, "secrets", j, "p", 16, p);
    if (rc)
        return rc;
    if (strcmp(kdf, "scrypt") || strcmp(cipher, "aes-256-gcm"))
        return cfg_bad(c, "secrets", "only scrypt and aes-256-gcm are known");
    if (*n < 2 || (*n & (*n - 1)) || !*r || !*p)
        return cfg_bad(c, "secrets", "scrypt parameters out of range");
    return 0;
}

int cfg_unseal(struct cfg_ctx *c, const json_t *j, const char *pass,
               size_t plen, char **out, size_t *len)
{
    uint64_t n, r, p;
    uint8_t *salt = NULL, *sealed = NULL, key[VC_KEY];
    size_t saltlen = 0, slen = 0;
    int rc = check_params(c, j, &n, &r, &p);
    if (!rc)
        rc = get_hex(c, j, "salt", &salt, &saltlen);
    if (!rc)
        rc = get_hex(c, j, "sealed", &sealed, &slen);
    if (!rc && slen <= VC_OVERHEAD)
        rc = cfg_bad(c, "secrets.sealed", "too short");
    if (!rc && vc_scrypt(pass, plen, salt, saltlen, n, (uint32_t)r,
                         (uint32_t)p, key))
        rc = cfg_bad(c, "secrets", "scrypt refused its parameters");
    char *plain = rc ? NULL : malloc(slen - VC_OVERHEAD + 1);
    if (!rc && !plain)
        rc = -ENOMEM;
    if (!rc && vc_open(key, AAD, strlen(AAD), sealed, slen, (uint8_t *)plain)) {
        snprintf(c->err, c->cap, "secrets: a wrong passphrase (or the sealed "
                 "secrets were altered)");
        rc = -EACCES;
    }
    vc_wipe(key, sizeof(key));
    free(salt);
    free(sealed);
    if (rc) {
        free(plain);
        return rc;
    }
    plain[slen - VC_OVERHEAD] = 0;
    *out = plain;
    *len = slen - VC_OVERHEAD;
    return 0;
}
