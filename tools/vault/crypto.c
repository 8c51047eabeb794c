/*
 * crypto.c - the vault's cryptography over OpenSSL (see crypto.h).
 *
 * Guarantees: nothing is encrypted without authentication; every sealed
 * message has its own random 96-bit nonce (so keys never need counters
 * kept anywhere; the birthday bound of random nonces allows 2^32 messages
 * per key at a collision chance below 2^-32, which the README states as a
 * limit); a message opens only with the key, the nonce, the tag and the
 * additional data it was sealed with, else -EBADMSG with nothing of OUT
 * to be trusted.  No function here prints.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "crypto.h"

int vc_random(void *buf, size_t n)
{
    return n > INT32_MAX || RAND_bytes(buf, (int)n) != 1 ? -EIO : 0;
}

/* One GCM pass: encrypt (ENC) or decrypt the message IN (LEN bytes)
 * then MORE (MORELEN bytes, encryption only), with AAD. */
static int gcm(bool enc, const uint8_t *key, const uint8_t *nonce,
               const void *aad, size_t aadlen, const void *in, size_t len,
               const void *more, size_t morelen, uint8_t *out, uint8_t *tag)
{
    if (len > INT32_MAX || morelen > INT32_MAX - len || aadlen > INT32_MAX)
        return -EINVAL;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        return -ENOMEM;
    int n, ok = (enc ? EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key,
                                          nonce)
                     : EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key,
                                          nonce)) == 1;
    if (ok && aadlen)
        ok = (enc ? EVP_EncryptUpdate(c, NULL, &n, aad, (int)aadlen)
                  : EVP_DecryptUpdate(c, NULL, &n, aad, (int)aadlen)) == 1;
    if (ok && len)
        ok = (enc ? EVP_EncryptUpdate(c, out, &n, in, (int)len)
                  : EVP_DecryptUpdate(c, out, &n, in, (int)len)) == 1;
    if (ok && enc && morelen)
        ok = EVP_EncryptUpdate(c, out + len, &n, more, (int)morelen) == 1;
    len += enc ? morelen : 0;
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, VC_TAG, tag) == 1;
    if (ok)
        ok = (enc ? EVP_EncryptFinal_ex(c, out + len, &n)
                  : EVP_DecryptFinal_ex(c, out + len, &n)) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, VC_TAG, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : enc ? -EIO : -EBADMSG;
}

int vc_seal(const uint8_t key[VC_KEY], const void *aad, size_t aadlen,
            const void *in, size_t len, uint8_t *out)
{
    return vc_seal2(key, aad, aadlen, in, len, NULL, 0, out);
}

int vc_seal2(const uint8_t key[VC_KEY], const void *aad, size_t aadlen,
             const void *head, size_t hlen, const void *body, size_t blen,
             uint8_t *out)
{
    int rc = vc_random(out, VC_NONCE);
    if (rc)
        return rc;
    return gcm(true, key, out, aad, aadlen, head, hlen, body, blen,
               out + VC_NONCE, out + VC_NONCE + hlen + blen);
}

int vc_open(const uint8_t key[VC_KEY], const void *aad, size_t aadlen,
            const void *in, size_t len, uint8_t *out)
{
    if (len < VC_OVERHEAD)
        return -EBADMSG;
    const uint8_t *p = in;
    size_t clen = len - VC_OVERHEAD;
    uint8_t tag[VC_TAG];
    memcpy(tag, p + VC_NONCE + clen, VC_TAG);
    int rc = gcm(false, key, p, aad, aadlen, p + VC_NONCE, clen, NULL, 0, out,
                 tag);
    if (rc)
        vc_wipe(out, clen);
    return rc;
}

void vc_sha256(const void *data, size_t len, uint8_t out[VC_ID])
{
    unsigned n = VC_ID;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

void vc_blob_id(const struct vault_keys *k, const uint8_t sha[VC_ID],
                uint8_t id[VC_ID])
{
    unsigned n = VC_ID;
    HMAC(EVP_sha256(), k->mac, VC_KEY, sha, VC_ID, id, &n);
}

int vc_scrypt(const char *pass, size_t plen, const uint8_t *salt,
              size_t slen, uint64_t n, uint32_t r, uint32_t p,
              uint8_t out[VC_KEY])
{
    /* scrypt needs 128 * r * (n + p + 2) bytes; allow that and a margin,
     * but refuse what no key of ours asks for (a tampered key object
     * could ask for terabytes). */
    if (n < 2 || (n & (n - 1)) || n > (1u << 24) || !r || r > 64 || !p ||
        p > 16)
        return -EINVAL;
    uint64_t mem = 128ull * r * (n + p + 2) + (1u << 20);
    if (EVP_PBE_scrypt(pass, plen, salt, slen, n, r, p, mem, out, VC_KEY) != 1)
        return -ENOMEM;
    return 0;
}

void vc_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int vc_unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void vc_wipe(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}
