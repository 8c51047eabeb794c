/*
 * peer_conf.c - the peer config dir: passphrases, the keys of the peers
 * that connect to this host's `peer serve`, and the records of the peers
 * this host connects to.
 *
 * The dir is $SNAPFS_CONFIG_DIR or /var/lib/snapfs/peers (mode 0700):
 *
 *   clients/NAME.key  the key of peer NAME, which may connect here
 *                     (hex, 0600; `peer passphrase NAME`)
 *   serve.key         the one host key of earlier versions, still
 *                     accepted as the peer "legacy" until revoked
 *   NAME.peer         a peer this host connects to: "address HOST:PORT",
 *                     "key HEX" and "protocol 2" lines (0600; a record
 *                     without "protocol" was made before peers had keys
 *                     of their own and authenticates as they did)
 *   grants            what each peer may do here (peer_grants.c)
 *   serve.pid         the running server (peer_serve.c), serve.log its log
 *
 * Guarantees: a passphrase is never stored, only the key derived from it;
 * every file holding a key is created 0600 and replaced whole (written to
 * a temporary file, synced, renamed), so a crash leaves the old file or
 * the new one; each peer's key is a file of its own, so replacing or
 * revoking one touches no other; nothing here prints.
 *
 * A passphrase is 30 characters of Crockford's base32 alphabet (no I, L,
 * O, U) drawn from OpenSSL's random generator: 150 bits, shown as six
 * groups of five.  The key is PBKDF2-HMAC-SHA256 of the normalized
 * characters with a fixed salt; with 150 bits of entropy the work factor
 * only adds margin, the fixed salt is harmless because passphrases are
 * never chosen by people.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cli.h"
#include "kvfile.h"
#include "peer.h"

#define PASS_CHARS 30
#define PASS_GROUP 5
#define KDF_SALT "snapfs-peer-v1"
#define KDF_ROUNDS 100000
#define INBOUND_DIR "clients"

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

const char *peer_config_dir(void)
{
    const char *d = getenv("SNAPFS_CONFIG_DIR");
    return d && *d ? d : "/var/lib/snapfs/peers";
}

int peer_config_path(char *out, size_t cap, const char *leaf)
{
    int n = snprintf(out, cap, "%s/%s", peer_config_dir(), leaf);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int peer_config_make(void)
{
    return kv_make_dirs(peer_config_dir(), 0700);
}

bool peer_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > PEER_NAME_MAX || name[0] == '.')
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
            return false;
    return true;
}

static int copy_part(char *out, size_t cap, const char *s, size_t n)
{
    if (n == 0 || n >= cap)
        return -EINVAL;
    memcpy(out, s, n);
    out[n] = 0;
    return 0;
}

static bool port_valid(const char *port)
{
    char *end;
    long v = strtol(port, &end, 10);
    return *port && !*end && v >= 0 && v <= 65535;
}

int peer_address_split(const char *addr, char *host, size_t hostcap,
                       char *port, size_t portcap)
{
    const char *colon;
    int rc;
    if (addr[0] == '[') { /* [v6]:port */
        const char *close = strchr(addr, ']');
        if (!close)
            return -EINVAL;
        rc = copy_part(host, hostcap, addr + 1, (size_t)(close - addr - 1));
        colon = close[1] == ':' ? close + 1 : NULL;
        if (!rc && close[1] && !colon)
            rc = -EINVAL;
    } else {
        colon = strrchr(addr, ':');
        if (colon && strchr(addr, ':') != colon)
            return -EINVAL; /* a bare v6 address needs brackets */
        rc = copy_part(host, hostcap, addr,
                       colon ? (size_t)(colon - addr) : strlen(addr));
    }
    if (rc)
        return rc;
    const char *p = colon ? colon + 1 : PEER_DEFAULT_PORT;
    if (!port_valid(p) || copy_part(port, portcap, p, strlen(p)))
        return -EINVAL;
    return 0;
}

/* ---- passphrases and keys ---- */

int peer_passphrase_generate(char out[PEER_PASSPHRASE_SIZE])
{
    unsigned char r[PASS_CHARS];
    if (RAND_bytes(r, sizeof(r)) != 1)
        return -EIO;
    char *o = out;
    for (int i = 0; i < PASS_CHARS; i++) {
        if (i && i % PASS_GROUP == 0)
            *o++ = '-';
        *o++ = crockford[r[i] & 31]; /* 256 is a multiple of 32: uniform */
    }
    *o = 0;
    OPENSSL_cleanse(r, sizeof(r));
    return 0;
}

/* The canonical character of C, or 0 if it is no base32 character. */
static char canonical_char(char c)
{
    c = (char)toupper((unsigned char)c);
    if (c == 'O')
        return '0';
    if (c == 'I' || c == 'L')
        return '1';
    return c && strchr(crockford, c) ? c : 0;
}

int peer_passphrase_key(const char *pass, uint8_t key[PEER_KEY_LEN])
{
    char norm[PASS_CHARS];
    size_t n = 0;
    int rc = 0;
    for (const char *p = pass; *p && !rc; p++) {
        if (*p == '-' || isspace((unsigned char)*p))
            continue;
        char c = canonical_char(*p);
        if (!c || n == PASS_CHARS)
            rc = -EINVAL;
        else
            norm[n++] = c;
    }
    if (!rc && n != PASS_CHARS)
        rc = -EINVAL;
    if (!rc && !PKCS5_PBKDF2_HMAC(norm, PASS_CHARS,
                                  (const unsigned char *)KDF_SALT,
                                  (int)strlen(KDF_SALT), KDF_ROUNDS,
                                  EVP_sha256(), PEER_KEY_LEN, key))
        rc = -EIO;
    OPENSSL_cleanse(norm, sizeof(norm));
    return rc;
}

static void key_to_hex(const uint8_t key[PEER_KEY_LEN], char hex[2 * PEER_KEY_LEN + 1])
{
    for (int i = 0; i < PEER_KEY_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
}

static int key_from_hex(const char *hex, uint8_t key[PEER_KEY_LEN])
{
    for (int i = 0; i < PEER_KEY_LEN; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)hex[2 * i]) ||
            !isxdigit((unsigned char)hex[2 * i + 1]) ||
            sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -EINVAL;
        key[i] = (uint8_t)v;
    }
    return hex[2 * PEER_KEY_LEN] == 0 || hex[2 * PEER_KEY_LEN] == '\n'
               ? 0 : -EINVAL;
}

/* ---- files ---- */

/* Replace DIR/LEAF with TEXT: a 0600 temporary file, synced, renamed. */
static int write_secret_file(const char *leaf, const char *text, bool replace)
{
    char path[PATH_MAX];
    int rc = peer_config_make();
    if (!rc)
        rc = peer_config_path(path, sizeof(path), leaf);
    if (rc)
        return rc;
    if (!replace && access(path, F_OK) == 0)
        return -EEXIST;
    return kv_write_file(path, text, strlen(text), replace);
}

int peer_config_replace(const char *leaf, const char *text)
{
    return write_secret_file(leaf, text, true);
}

/* DIR/LEAF into BUF (NUL-terminated); -ENOENT, -EFBIG, ... */
static int read_config_file(const char *leaf, char *buf, size_t cap)
{
    char path[PATH_MAX];
    int rc = peer_config_path(path, sizeof(path), leaf);
    if (rc)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, cap - 1);
    rc = n < 0 ? -errno : (size_t)n == cap - 1 ? -EFBIG : 0;
    close(fd);
    if (!rc)
        buf[n] = 0;
    return rc;
}

/* ---- lists of names ---- */

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sort_names(char **names, size_t n)
{
    if (n)
        qsort(names, n, sizeof(*names), compare_names);
}

/* Append a copy of NAME to *NAMES (*N of them). */
static int add_name(char ***names, size_t *n, const char *name)
{
    char *copy = strdup(name);
    size_t cap = *n; /* array_append doubles when n == cap */
    int rc = copy ? array_append(names, n, &cap, &copy, sizeof(copy)) : -ENOMEM;
    if (rc)
        free(copy);
    return rc;
}

/* The valid peer names N of the files N.SUFFIX in DIR (unsorted; none
 * if DIR is missing). */
static int list_names(const char *dir, const char *suffix, char ***names,
                      size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    size_t slen = strlen(suffix);
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= slen || strcmp(e->d_name + len - slen, suffix))
            continue;
        char name[PEER_NAME_MAX + 1];
        if (len - slen <= PEER_NAME_MAX) {
            snprintf(name, sizeof(name), "%.*s", (int)(len - slen), e->d_name);
            if (peer_name_valid(name))
                rc = add_name(names, n, name);
        }
    }
    closedir(d);
    return rc;
}

int peer_record_names(char ***names, size_t *n)
{
    int rc = list_names(peer_config_dir(), ".peer", names, n);
    if (!rc)
        sort_names(*names, *n);
    return rc;
}

/* ---- the peers that connect here, and their keys ---- */

/* DIR/clients/NAME.key, or DIR/serve.key for PEER_LEGACY_NAME. */
static int inbound_leaf(const char *name, char *leaf, size_t cap)
{
    if (!strcmp(name, PEER_LEGACY_NAME)) {
        snprintf(leaf, cap, "serve.key");
        return 0;
    }
    if (!peer_name_valid(name))
        return -EINVAL;
    snprintf(leaf, cap, INBOUND_DIR "/%s.key", name);
    return 0;
}

int peer_inbound_store(const char *name, const uint8_t key[PEER_KEY_LEN])
{
    char dir[PATH_MAX], hex[2 * PEER_KEY_LEN + 2], leaf[PEER_NAME_MAX + 16];
    if (!peer_name_valid(name) || !strcmp(name, PEER_LEGACY_NAME))
        return -EINVAL;
    int rc = peer_config_make();
    if (!rc)
        rc = peer_config_path(dir, sizeof(dir), INBOUND_DIR);
    if (!rc)
        rc = kv_make_dirs(dir, 0700);
    if (rc)
        return rc;
    inbound_leaf(name, leaf, sizeof(leaf));
    key_to_hex(key, hex);
    strcat(hex, "\n");
    rc = write_secret_file(leaf, hex, true);
    OPENSSL_cleanse(hex, sizeof(hex));
    return rc;
}

int peer_inbound_load(const char *name, uint8_t key[PEER_KEY_LEN])
{
    char buf[256], leaf[PEER_NAME_MAX + 16];
    if (inbound_leaf(name, leaf, sizeof(leaf)))
        return -ENOENT;
    int rc = read_config_file(leaf, buf, sizeof(buf));
    if (!rc)
        rc = key_from_hex(buf, key) ? -EBADMSG : 0;
    else if (rc == -EFBIG)
        rc = -EBADMSG;
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

int peer_inbound_delete(const char *name)
{
    char leaf[PEER_NAME_MAX + 16], path[PATH_MAX];
    int rc = inbound_leaf(name, leaf, sizeof(leaf));
    if (rc)
        return -ENOENT;
    rc = peer_config_path(path, sizeof(path), leaf);
    if (!rc && unlink(path))
        rc = -errno;
    return rc;
}

bool peer_inbound_exists(const char *name)
{
    char leaf[PEER_NAME_MAX + 16], path[PATH_MAX];
    return !inbound_leaf(name, leaf, sizeof(leaf)) &&
           !peer_config_path(path, sizeof(path), leaf) &&
           access(path, F_OK) == 0;
}

int peer_inbound_names(char ***names, size_t *n)
{
    char dir[PATH_MAX];
    int rc = peer_config_path(dir, sizeof(dir), INBOUND_DIR);
    if (!rc)
        rc = list_names(dir, ".key", names, n);
    if (!rc && peer_inbound_exists(PEER_LEGACY_NAME))
        rc = add_name(names, n, PEER_LEGACY_NAME);
    if (!rc)
        sort_names(*names, *n);
    return rc;
}

int peer_inbound_keys(struct peer_key **keys, size_t *n)
{
    char **names;
    size_t count;
    *keys = NULL;
    *n = 0;
    int rc = peer_inbound_names(&names, &count);
    if (rc)
        return rc;
    *keys = OPENSSL_secure_zalloc(count ? count * sizeof(**keys) : 1);
    for (size_t i = 0; i < count; i++) {
        struct peer_key *k = &(*keys)[*n];
        if (*keys && !peer_inbound_load(names[i], k->key)) {
            snprintf(k->name, sizeof(k->name), "%s", names[i]);
            k->legacy = !strcmp(names[i], PEER_LEGACY_NAME);
            (*n)++; /* a damaged key file lets no one in */
        }
        free(names[i]);
    }
    free(names);
    return *keys ? 0 : -ENOMEM;
}

void peer_inbound_keys_free(struct peer_key *keys, size_t n)
{
    if (keys)
        OPENSSL_secure_clear_free(keys, n ? n * sizeof(*keys) : 1);
}

static int record_leaf(const char *name, char *leaf, size_t cap)
{
    if (!peer_name_valid(name))
        return -EINVAL;
    snprintf(leaf, cap, "%s.peer", name);
    return 0;
}

int peer_record_store(const struct peer_record *r)
{
    char leaf[PEER_NAME_MAX + 8], host[PEER_ADDRESS_MAX], port[16];
    char hex[2 * PEER_KEY_LEN + 1], text[PEER_ADDRESS_MAX + 128];
    int rc = record_leaf(r->name, leaf, sizeof(leaf));
    if (!rc)
        rc = peer_address_split(r->address, host, sizeof(host), port,
                                sizeof(port));
    if (rc)
        return rc;
    key_to_hex(r->key, hex);
    snprintf(text, sizeof(text), "address %s\nkey %s\n%s", r->address, hex,
             r->legacy ? "" : "protocol 2\n");
    rc = write_secret_file(leaf, text, false);
    OPENSSL_cleanse(hex, sizeof(hex));
    OPENSSL_cleanse(text, sizeof(text));
    return rc;
}

/* The value of the line "WORD VALUE" of TEXT (up to the newline). */
static const char *record_field(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : l)
        if (!strncmp(l, word, n) && l[n] == ' ')
            return l + n + 1;
    return NULL;
}

int peer_record_load(const char *name, struct peer_record *r)
{
    char leaf[PEER_NAME_MAX + 8], text[PEER_ADDRESS_MAX + 128];
    int rc = record_leaf(name, leaf, sizeof(leaf));
    if (rc)
        return rc == -EINVAL ? -ENOENT : rc;
    rc = read_config_file(leaf, text, sizeof(text));
    if (rc)
        return rc == -EFBIG ? -EINVAL : rc;
    const char *addr = record_field(text, "address");
    const char *key = record_field(text, "key");
    const char *protocol = record_field(text, "protocol");
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->legacy = !protocol; /* made before peers had keys of their own */
    if (protocol && strncmp(protocol, "2\n", 2))
        rc = -EINVAL;
    if (!rc)
        rc = addr && key ? key_from_hex(key, r->key) : -EINVAL;
    if (!rc && copy_part(r->address, sizeof(r->address), addr,
                         strcspn(addr, "\n")))
        rc = -EINVAL;
    OPENSSL_cleanse(text, sizeof(text));
    return rc;
}

int peer_record_delete(const char *name)
{
    char leaf[PEER_NAME_MAX + 8], path[PATH_MAX];
    int rc = record_leaf(name, leaf, sizeof(leaf));
    if (rc)
        return rc == -EINVAL ? -ENOENT : rc;
    rc = peer_config_path(path, sizeof(path), leaf);
    if (!rc && unlink(path))
        rc = -errno;
    return rc;
}

