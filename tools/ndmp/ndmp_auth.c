/*
 * ndmp_auth.c - NDMP users: generated passwords, the root-only file that
 * keeps them, and the NDMP MD5 challenge digest.
 *
 * THEORY.  NDMP's MD5 authentication proves that both ends know the
 * clear password: the server sends a 64-byte random challenge, the client
 * answers MD5 of a 128-byte message built from the password and the
 * challenge, and the server computes the same.  The server therefore
 * needs the clear password, not a hash of it: a salted hash would make
 * MD5 authentication impossible.  So passwords are generated (never
 * chosen by people, so never reused elsewhere: 24 characters of
 * Crockford's base32 alphabet from OpenSSL's generator, 120 bits) and
 * kept in $SNAPFS_CONFIG_DIR/ndmp.users, mode 0600 in a 0700 directory,
 * replaced whole (temporary file, fsync, rename; peer_conf.c), one line
 * "USER PASSWORD" per user.
 *
 * The 128-byte message, as the NDMP specification describes it and as
 * the ndmjob DMA implements its ambiguity: the password (at most its
 * first 32 bytes, so that every field fits) at offset 0 and again at the
 * end (offset 128 - len), the challenge at offset 64 - len, zeros
 * elsewhere.
 *
 * Guarantees: a password is printed once by the command that makes it,
 * never logged; digests are compared in constant time; nothing here
 * prints.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cli.h"
#include "ndmp.h"
#include "peer/peer.h"

#define USERS_FILE "ndmp.users"
#define USERS_MAX_BYTES (256 * 1024)

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

bool ndmp_user_valid(const char *user)
{
    size_t n = strlen(user);
    if (!n || n > NDMP_USER_MAX || user[0] == '.')
        return false;
    for (const char *p = user; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
              *p == '-'))
            return false;
    return true;
}

int ndmp_users_path(char *out, size_t cap)
{
    return peer_config_path(out, cap, USERS_FILE);
}

/* The users file into a malloc'd string ("" when it does not exist). */
static int users_load(char **text)
{
    char path[PATH_MAX];
    int rc = ndmp_users_path(path, sizeof(path));
    if (rc)
        return rc;
    char *buf = calloc(1, USERS_MAX_BYTES + 1);
    if (!buf)
        return -ENOMEM;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? 0 : -errno;
    } else {
        ssize_t n = read(fd, buf, USERS_MAX_BYTES + 1);
        rc = n < 0 ? -errno : n > USERS_MAX_BYTES ? -EFBIG : 0;
        close(fd);
    }
    if (rc) {
        free(buf);
        return rc;
    }
    *text = buf;
    return 0;
}

int ndmp_password_get(const char *user, char *out, size_t cap)
{
    char *text;
    int rc = users_load(&text);
    if (rc)
        return rc;
    rc = -ENOENT;
    size_t ulen = strlen(user);
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (!strncmp(line, user, ulen) && line[ulen] == ' ') {
            const char *pw = line + ulen + 1;
            rc = strlen(pw) < cap ? 0 : -ENAMETOOLONG;
            if (!rc)
                snprintf(out, cap, "%s", pw);
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    OPENSSL_cleanse(text, USERS_MAX_BYTES);
    free(text);
    return rc;
}

static int generate(char out[NDMP_PASSWORD_CHARS + 1])
{
    uint8_t raw[NDMP_PASSWORD_CHARS];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -EIO;
    for (int i = 0; i < NDMP_PASSWORD_CHARS; i++)
        out[i] = crockford[raw[i] & 31];
    out[NDMP_PASSWORD_CHARS] = 0;
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

int ndmp_password_put(const char *user, const char *password)
{
    if (!ndmp_user_valid(user) || !*password ||
        strcspn(password, " \n\r") != strlen(password))
        return -EINVAL;
    int rc = peer_config_make();
    char *text = NULL;
    if (!rc)
        rc = users_load(&text);
    size_t cap = USERS_MAX_BYTES + NDMP_USER_MAX + strlen(password) + 4;
    char *next = rc ? NULL : calloc(1, cap);
    if (!rc && !next)
        rc = -ENOMEM;
    if (!rc) {
        size_t ulen = strlen(user), len = 0;
        for (char *line = text; line && *line;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = 0;
            if (*line && !(!strncmp(line, user, ulen) && line[ulen] == ' '))
                len += (size_t)snprintf(next + len, cap - len, "%s\n", line);
            line = nl ? nl + 1 : NULL;
        }
        snprintf(next + len, cap - len, "%s %s\n", user, password);
        rc = peer_config_replace(USERS_FILE, next);
        OPENSSL_cleanse(next, cap);
    }
    if (text)
        OPENSSL_cleanse(text, USERS_MAX_BYTES);
    free(text);
    free(next);
    return rc;
}

int ndmp_password_set(const char *user, char out[NDMP_PASSWORD_CHARS + 1])
{
    if (!ndmp_user_valid(user))
        return -EINVAL;
    int rc = generate(out);
    return rc ? rc : ndmp_password_put(user, out);
}

int ndmp_user_names(char ***names, size_t *n)
{
    char *text;
    *names = NULL;
    *n = 0;
    int rc = users_load(&text);
    if (rc)
        return rc;
    size_t cap = 0;
    for (char *line = text; !rc && line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        char *name = strndup(line, strcspn(line, " "));
        rc = !name ? -ENOMEM
             : *name ? array_append(names, n, &cap, &name, sizeof(name)) : 0;
        if (name && (rc || !*name))
            free(name);
        line = nl ? nl + 1 : NULL;
    }
    OPENSSL_cleanse(text, USERS_MAX_BYTES);
    free(text);
    return rc;
}

void ndmp_md5_digest(const uint8_t challenge[NDMP_MD5_CHALLENGE],
                     const char *password, uint8_t digest[16])
{
    uint8_t msg[128] = { 0 };
    size_t n = strlen(password);
    if (n > 32)
        n = 32;
    memcpy(msg, password, n);
    memcpy(msg + 64 - n, challenge, NDMP_MD5_CHALLENGE);
    memcpy(msg + 128 - n, password, n);
    unsigned int dlen = 16;
    EVP_Digest(msg, sizeof(msg), digest, &dlen, EVP_md5(), NULL);
    OPENSSL_cleanse(msg, sizeof(msg));
}

bool ndmp_digest_equal(const uint8_t a[16], const uint8_t b[16])
{
    return CRYPTO_memcmp(a, b, 16) == 0;
}
