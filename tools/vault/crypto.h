/*
 * crypto.h - the vault's cryptography, all of it OpenSSL's: AES-256-GCM
 * for every stored byte, HMAC-SHA256 for block names, SHA-256 for object
 * names, scrypt for passphrases, the system's random generator for keys,
 * nonces and salts.
 */
#ifndef SNAPFS_VAULT_CRYPTO_H
#define SNAPFS_VAULT_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define VC_KEY 32
#define VC_NONCE 12
#define VC_TAG 16
#define VC_OVERHEAD (VC_NONCE + VC_TAG)
#define VC_ID 32     /* SHA-256 and HMAC-SHA256 */
#define VC_HEX (2 * VC_ID + 1)

/* The master key of a vault: random, never stored in the clear. */
struct vault_keys {
    uint8_t enc[VC_KEY]; /* AES-256-GCM of every object and blob */
    uint8_t mac[VC_KEY]; /* HMAC-SHA256 key of blob ids */
};

/* N random bytes: 0 or -EIO. */
int vc_random(void *buf, size_t n);

/*
 * vc_seal - encrypt and authenticate LEN bytes of IN with KEY and a fresh
 * random 96-bit nonce, binding AAD (the object's type, or a blob's type
 * and id): OUT gets nonce | ciphertext | tag, LEN + VC_OVERHEAD bytes
 * (OUT may not overlap IN).  0, -EIO or -ENOMEM.
 */
int vc_seal(const uint8_t key[VC_KEY], const void *aad, size_t aadlen,
            const void *in, size_t len, uint8_t *out);
/* vc_seal of the message HEAD (HLEN bytes) followed by BODY (BLEN bytes),
 * without joining them first: the same bytes as vc_seal of the two
 * joined (a blob's header and its stored bytes, sealed in place). */
int vc_seal2(const uint8_t key[VC_KEY], const void *aad, size_t aadlen,
             const void *head, size_t hlen, const void *body, size_t blen,
             uint8_t *out);
/*
 * vc_open - the reverse: OUT gets LEN - VC_OVERHEAD bytes.  -EBADMSG if
 * the bytes, the nonce, the tag or AAD are not what was sealed with KEY
 * (a flipped bit anywhere, a blob moved under another id, a wrong key).
 */
int vc_open(const uint8_t key[VC_KEY], const void *aad, size_t aadlen,
            const void *in, size_t len, uint8_t *out);

void vc_sha256(const void *data, size_t len, uint8_t out[VC_ID]);
/* The name of a block or metadata blob: HMAC-SHA256(mac key, SHA-256 of
 * its plaintext), so names reveal no plaintext hash. */
void vc_blob_id(const struct vault_keys *k, const uint8_t sha[VC_ID],
                uint8_t id[VC_ID]);

/* scrypt: OUT (VC_KEY bytes) from the passphrase, SALT and N, R, P.
 * 0, -EINVAL (parameters OpenSSL refuses) or -ENOMEM. */
int vc_scrypt(const char *pass, size_t plen, const uint8_t *salt,
              size_t slen, uint64_t n, uint32_t r, uint32_t p,
              uint8_t out[VC_KEY]);

/* Lower-case hex of N bytes into OUT (2N + 1 bytes). */
void vc_hex(const uint8_t *in, size_t n, char *out);
/* Exactly 2N hex digits into N bytes: 0 or -EINVAL. */
int vc_unhex(const char *s, uint8_t *out, size_t n);
/* Forget secrets: memory the compiler cannot optimise away. */
void vc_wipe(void *p, size_t n);

#endif
