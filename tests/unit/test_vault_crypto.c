/*
 * test_vault_crypto.c - the vault's cryptography and the objects that
 * open a vault.  Checked: sealed messages open to what was sealed and
 * fail with -EBADMSG when any byte (nonce, ciphertext, tag) flips, when
 * the additional data differs or under another key; two seals of the
 * same bytes differ (fresh nonces); blob ids are keyed (another MAC key,
 * another id); scrypt refuses absurd parameters; a key object opens with
 * its passphrase only (-EACCES otherwise, also after any byte of it
 * flips), gives back the master key, and says its host and user in the
 * clear; the config keeps its version in the clear, refuses a newer
 * version (-EPROTONOSUPPORT) and a version changed on the way (-EBADMSG);
 * hex round trips.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "check.h"
#include "../../tools/vault/format.h"

/* Fast scrypt parameters for the tests' key objects. */
static const struct vault_kdf test_kdf = { 1024, 8, 1 };

static void test_seal(void)
{
    uint8_t key[VC_KEY], other[VC_KEY], msg[1000], sealed[1000 + VC_OVERHEAD],
        again[1000 + VC_OVERHEAD], out[1000];
    CHECK_RC(vc_random(key, sizeof(key)));
    CHECK_RC(vc_random(other, sizeof(other)));
    CHECK_RC(vc_random(msg, sizeof(msg)));
    CHECK_RC(vc_seal(key, "aad", 3, msg, sizeof(msg), sealed));
    CHECK(vc_open(key, "aad", 3, sealed, sizeof(sealed), out) == 0,
          "a sealed message opens");
    CHECK(!memcmp(out, msg, sizeof(msg)), "to what was sealed");
    CHECK_RC(vc_seal(key, "aad", 3, msg, sizeof(msg), again));
    CHECK(memcmp(sealed, again, sizeof(sealed)),
          "two seals of the same bytes differ");
    int bad = 0;
    for (size_t i = 0; i < sizeof(sealed); i += 37) {
        sealed[i] ^= 0x01;
        bad += vc_open(key, "aad", 3, sealed, sizeof(sealed), out) == -EBADMSG;
        sealed[i] ^= 0x01;
    }
    CHECK(bad == (int)((sizeof(sealed) + 36) / 37),
          "every flipped byte is detected (%d)", bad);
    CHECK(vc_open(key, "aaD", 3, sealed, sizeof(sealed), out) == -EBADMSG,
          "other additional data fails");
    CHECK(vc_open(other, "aad", 3, sealed, sizeof(sealed), out) == -EBADMSG,
          "another key fails");
    CHECK(vc_open(key, "aad", 3, sealed, VC_OVERHEAD - 1, out) == -EBADMSG,
          "too short to be sealed");
    uint8_t empty[VC_OVERHEAD];
    CHECK_RC(vc_seal(key, NULL, 0, NULL, 0, empty));
    CHECK(vc_open(key, NULL, 0, empty, sizeof(empty), out) == 0,
          "an empty message seals and opens");
}

/* A message sealed from two pieces opens to the two joined, and is
 * authenticated as one message. */
static void test_seal_two_pieces(void)
{
    uint8_t key[VC_KEY], msg[700], sealed[700 + VC_OVERHEAD], out[700];
    CHECK_RC(vc_random(key, sizeof(key)));
    CHECK_RC(vc_random(msg, sizeof(msg)));
    size_t cuts[] = { 0, 1, 5, 16, 17, 699, 700 };
    int opened = 0, refused = 0;
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        size_t h = cuts[i];
        CHECK_RC(vc_seal2(key, "ad", 2, msg, h, msg + h, sizeof(msg) - h,
                          sealed));
        memset(out, 0, sizeof(out));
        opened += vc_open(key, "ad", 2, sealed, sizeof(sealed), out) == 0 &&
                  !memcmp(out, msg, sizeof(msg));
        sealed[VC_NONCE + h % sizeof(msg)] ^= 0x80;
        refused += vc_open(key, "ad", 2, sealed, sizeof(sealed), out) ==
                   -EBADMSG;
    }
    CHECK(opened == 7, "sealed in two pieces, cut anywhere, it opens to the "
          "whole message (%d of 7)", opened);
    CHECK(refused == 7, "a flipped byte in either piece is detected (%d of 7)",
          refused);
}

static void test_ids(void)
{
    struct vault_keys a, b;
    CHECK_RC(vc_random(&a, sizeof(a)));
    b = a;
    b.mac[0] ^= 1;
    uint8_t sha[VC_ID], ia[VC_ID], ib[VC_ID], ia2[VC_ID];
    vc_sha256("block", 5, sha);
    vc_blob_id(&a, sha, ia);
    vc_blob_id(&a, sha, ia2);
    vc_blob_id(&b, sha, ib);
    CHECK(!memcmp(ia, ia2, VC_ID), "ids are deterministic");
    CHECK(memcmp(ia, ib, VC_ID), "another MAC key, another id");
    CHECK(memcmp(ia, sha, VC_ID), "the id is not the hash");
    char hex[VC_HEX];
    uint8_t back[VC_ID];
    vc_hex(ia, VC_ID, hex);
    CHECK(strlen(hex) == 64 && vc_unhex(hex, back, VC_ID) == 0 &&
          !memcmp(back, ia, VC_ID), "hex round trips");
    hex[5] = 'G';
    CHECK(vc_unhex(hex, back, VC_ID) == -EINVAL, "bad hex refused");
    CHECK(vc_unhex("abc", back, VC_ID) == -EINVAL, "short hex refused");
}

static void test_scrypt(void)
{
    uint8_t salt[VAULT_SALT] = { 1 }, k1[VC_KEY], k2[VC_KEY];
    CHECK_RC(vc_scrypt("pass", 4, salt, sizeof(salt), 1024, 8, 1, k1));
    CHECK_RC(vc_scrypt("pass", 4, salt, sizeof(salt), 1024, 8, 1, k2));
    CHECK(!memcmp(k1, k2, VC_KEY), "scrypt is deterministic");
    salt[0] = 2;
    CHECK_RC(vc_scrypt("pass", 4, salt, sizeof(salt), 1024, 8, 1, k2));
    CHECK(memcmp(k1, k2, VC_KEY), "another salt, another key");
    CHECK(vc_scrypt("p", 1, salt, 32, 1000, 8, 1, k1) == -EINVAL,
          "N not a power of two refused");
    CHECK(vc_scrypt("p", 1, salt, 32, 1ull << 40, 8, 1, k1) == -EINVAL,
          "absurd N refused");
    CHECK(vc_scrypt("p", 1, salt, 32, 1024, 0, 1, k1) == -EINVAL,
          "r 0 refused");
}

static void test_key_objects(void)
{
    struct vault_keys master, got;
    CHECK_RC(vc_random(&master, sizeof(master)));
    struct vault_keyinfo info = { .kdf = test_kdf, .created = 1234567 };
    snprintf(info.host, sizeof(info.host), "nas1");
    snprintf(info.user, sizeof(info.user), "root");
    struct vw obj = { 0 };
    CHECK_RC(vault_key_make(&master, "correct horse", 13, &info, &obj));
    CHECK(vault_key_open(obj.p, obj.len, "correct horse", 13, &got) == 0,
          "the key object opens with its passphrase");
    CHECK(!memcmp(&got, &master, sizeof(got)), "and gives the master key");
    CHECK(vault_key_open(obj.p, obj.len, "correct horsE", 13, &got) ==
          -EACCES, "a wrong passphrase is -EACCES");
    CHECK(vault_key_open(obj.p, obj.len, "", 0, &got) == -EACCES,
          "an empty passphrase is -EACCES");
    struct vault_keyinfo seen;
    CHECK(vault_key_parse(obj.p, obj.len, &seen) == 0 &&
          !strcmp(seen.host, "nas1") && !strcmp(seen.user, "root") &&
          seen.created == 1234567 && seen.kdf.n == 1024,
          "the clear part reads back");
    CHECK(!memmem(obj.p, obj.len, master.enc, 8) &&
          !memmem(obj.p, obj.len, master.mac, 8),
          "the master key is not in the clear");
    int refused = 0, tried = 0;
    for (size_t i = 8; i < obj.len; i += 7, tried++) {
        obj.p[i] ^= 0x20;
        int rc = vault_key_open(obj.p, obj.len, "correct horse", 13, &got);
        refused += rc < 0;
        obj.p[i] ^= 0x20;
    }
    CHECK(refused == tried, "a flipped byte anywhere: refused (%d of %d)",
          refused, tried);
    obj.p[0] ^= 1;
    CHECK(vault_key_parse(obj.p, obj.len, &seen) == -EBADMSG,
          "not a key object");
    obj.p[0] ^= 1;
    CHECK(vault_key_parse(obj.p, obj.len - 1, &seen) == -EBADMSG,
          "a truncated key object");
    obj.p[11] = 2; /* the version's low byte */
    CHECK(vault_key_parse(obj.p, obj.len, &seen) == -EPROTONOSUPPORT,
          "a newer key object is -EPROTONOSUPPORT");
    vw_free(&obj);
}

static void test_config(void)
{
    struct vault_keys k, other;
    CHECK_RC(vc_random(&k, sizeof(k)));
    CHECK_RC(vc_random(&other, sizeof(other)));
    struct vault_config c = { .version = VAULT_FORMAT, .created = 42 }, got;
    CHECK_RC(vc_random(c.id, sizeof(c.id)));
    struct vw obj = { 0 };
    CHECK_RC(vault_config_make(&k, &c, &obj));
    uint32_t v;
    CHECK(vault_config_version(obj.p, obj.len, &v) == 0 && v == VAULT_FORMAT,
          "the version reads without a key");
    CHECK(vault_config_open(&k, obj.p, obj.len, &got) == 0 &&
          !memcmp(got.id, c.id, VC_ID) && got.created == 42,
          "the config opens");
    CHECK(vault_config_open(&other, obj.p, obj.len, &got) == -EBADMSG,
          "not with another key");
    obj.p[11] = VAULT_FORMAT + 1;
    CHECK(vault_config_open(&k, obj.p, obj.len, &got) == -EPROTONOSUPPORT,
          "a newer format is refused");
    obj.p[11] = VAULT_FORMAT;
    obj.p[obj.len - 1] ^= 1;
    CHECK(vault_config_open(&k, obj.p, obj.len, &got) == -EBADMSG,
          "a damaged config");
    vw_free(&obj);
    c.version = VAULT_FORMAT + 1;
    CHECK_RC(vault_config_make(&k, &c, &obj));
    obj.p[11] = VAULT_FORMAT; /* a newer vault made to look older */
    CHECK(vault_config_open(&k, obj.p, obj.len, &got) == -EBADMSG,
          "a version changed on the way fails to open");
    vw_free(&obj);
}

int main(void)
{
    test_seal();
    test_seal_two_pieces();
    test_ids();
    test_scrypt();
    test_key_objects();
    test_config();
    return test_done("test_vault_crypto");
}
