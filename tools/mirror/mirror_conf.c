/*
 * mirror_conf.c - the registry of mirror relationships on this host: one
 * pair of small text files per relationship in $SNAPFS_MIRROR_DIR
 * (default /var/lib/snapfs/mirrors, 0700):
 *
 *   ID.mirror   what `mirror create` set (and quiesce/resume change):
 *               source, destination, transport, policy, retention, schedule
 *   ID.state    what the transfers left: the last one's size and times,
 *               totals, the source snapshot held as the base, a cut
 *               transfer's position (for "bytes resent"), the last error
 *   ID.lock     flock(2)ed by the process transferring
 *
 * ID is the first 16 hex digits of SHA-256 of the destination.  Files are
 * "key=value" lines, replaced whole (write, fsync, rename), so a reader
 * sees the old or the new one and a crash leaves one of them.  The two
 * files have different writers (the command changing the relationship,
 * the transfer holding the lock), so neither overwrites the other's
 * fields.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "mirror.h"

enum field_type { FT_STR, FT_BOOL, FT_I64, FT_U64, FT_DBL };

struct field {
    const char *key;
    enum field_type type;
    size_t off, size;
};

#define FIELD(st, name, type) \
    { #name, type, offsetof(struct st, name), sizeof(((struct st *)0)->name) }

static const struct field rel_fields[] = {
    FIELD(mirror_rel, src, FT_STR),
    FIELD(mirror_rel, dst, FT_STR),
    FIELD(mirror_rel, via, FT_STR),
    FIELD(mirror_rel, policy, FT_STR),
    FIELD(mirror_rel, keep, FT_STR),
    FIELD(mirror_rel, schedule, FT_STR),
    FIELD(mirror_rel, quiesced, FT_BOOL),
    FIELD(mirror_rel, group, FT_STR),
};

static const struct field state_fields[] = {
    FIELD(mirror_state, last_start, FT_I64),
    FIELD(mirror_state, last_end, FT_I64),
    FIELD(mirror_state, last_sched, FT_I64),
    FIELD(mirror_state, last_seconds, FT_DBL),
    FIELD(mirror_state, last_bytes, FT_U64),
    FIELD(mirror_state, total_bytes, FT_U64),
    FIELD(mirror_state, resent_bytes, FT_U64),
    FIELD(mirror_state, transfers, FT_U64),
    FIELD(mirror_state, newest, FT_STR),
    FIELD(mirror_state, newest_ctime, FT_I64),
    FIELD(mirror_state, held, FT_STR),
    FIELD(mirror_state, attempt_to, FT_U64),
    FIELD(mirror_state, attempt_bytes, FT_U64),
    FIELD(mirror_state, last_error, FT_STR),
    FIELD(mirror_state, to_publish, FT_BOOL),
};

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

int mirror_dir(char *out, size_t cap)
{
    const char *dir = getenv("SNAPFS_MIRROR_DIR");
    if (!dir || !*dir)
        dir = MIRROR_DIR_DEFAULT;
    if ((size_t)snprintf(out, cap, "%s", dir) >= cap)
        return -ENAMETOOLONG;
    if (mkdir(out, 0700) && errno != EEXIST)
        return -errno;
    return 0;
}

void mirror_id(const char *dst, char id[MIRROR_ID_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(dst, strlen(dst), md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < MIRROR_ID_LEN / 2; i++)
        sprintf(id + 2 * i, "%02x", md[i]);
}

void mirror_snap_owner(const struct mirror_rel *m,
                       char owner[MIRROR_ID_LEN + 1])
{
    if (!m->group[0]) {
        memcpy(owner, m->id, MIRROR_ID_LEN + 1);
        return;
    }
    char key[sizeof(m->group) + 8];
    snprintf(key, sizeof(key), "group:%s", m->group);
    mirror_id(key, owner);
}

static int file_path(char *out, size_t cap, const char *id, const char *ext)
{
    char dir[PATH_MAX];
    int rc = mirror_dir(dir, sizeof(dir));
    if (rc)
        return rc;
    return (size_t)snprintf(out, cap, "%s/%s.%s", dir, id, ext) >= cap
               ? -ENAMETOOLONG : 0;
}

static void field_set(const struct field *f, void *base, const char *val)
{
    char *p = (char *)base + f->off;
    switch (f->type) {
    case FT_STR:
        snprintf(p, f->size, "%s", val);
        break;
    case FT_BOOL:
        *(bool *)p = !strcmp(val, "1");
        break;
    case FT_I64:
        *(int64_t *)p = strtoll(val, NULL, 10);
        break;
    case FT_U64:
        *(uint64_t *)p = strtoull(val, NULL, 10);
        break;
    case FT_DBL:
        *(double *)p = strtod(val, NULL);
        break;
    }
}

static void field_print(const struct field *f, const void *base, FILE *out)
{
    const char *p = (const char *)base + f->off;
    switch (f->type) {
    case FT_STR:
        fprintf(out, "%s=", f->key);
        for (const char *c = p; *c; c++) /* one line per field */
            fputc(*c == '\n' || *c == '\r' ? ' ' : *c, out);
        fputc('\n', out);
        break;
    case FT_BOOL:
        fprintf(out, "%s=%d\n", f->key, *(const bool *)p ? 1 : 0);
        break;
    case FT_I64:
        fprintf(out, "%s=%lld\n", f->key, (long long)*(const int64_t *)p);
        break;
    case FT_U64:
        fprintf(out, "%s=%llu\n", f->key,
                (unsigned long long)*(const uint64_t *)p);
        break;
    case FT_DBL:
        fprintf(out, "%s=%.3f\n", f->key, *(const double *)p);
        break;
    }
}

static int load_fields(const char *path, const struct field *fields, size_t n,
                       void *base)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char line[2048];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = 0;
        for (size_t i = 0; i < n; i++)
            if (!strcmp(fields[i].key, line))
                field_set(&fields[i], base, eq + 1);
    }
    int rc = ferror(f) ? -EIO : 0;
    fclose(f);
    return rc;
}

static int store_fields(const char *path, const struct field *fields, size_t n,
                        const void *base)
{
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        field_print(&fields[i], base, f);
    int rc = fflush(f) || fsync(fd) ? -errno : 0;
    if (fclose(f) && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path))
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc;
}

int mirror_rel_load(const char *id, struct mirror_rel *m)
{
    char path[PATH_MAX];
    int rc = file_path(path, sizeof(path), id, "mirror");
    memset(m, 0, sizeof(*m));
    if (!rc)
        rc = load_fields(path, rel_fields, NFIELDS(rel_fields), m);
    snprintf(m->id, sizeof(m->id), "%s", id);
    return rc;
}

int mirror_rel_store(const struct mirror_rel *m)
{
    char path[PATH_MAX];
    int rc = file_path(path, sizeof(path), m->id, "mirror");
    return rc ? rc : store_fields(path, rel_fields, NFIELDS(rel_fields), m);
}

int mirror_rel_delete(const char *id)
{
    static const char *const exts[] = { "mirror", "state", "lock" };
    for (size_t i = 0; i < 3; i++) {
        char path[PATH_MAX];
        int rc = file_path(path, sizeof(path), id, exts[i]);
        if (rc)
            return rc;
        if (unlink(path) && errno != ENOENT)
            return -errno;
    }
    return 0;
}

int mirror_state_load(const char *id, struct mirror_state *s)
{
    char path[PATH_MAX];
    memset(s, 0, sizeof(*s));
    int rc = file_path(path, sizeof(path), id, "state");
    if (!rc)
        rc = load_fields(path, state_fields, NFIELDS(state_fields), s);
    return rc == -ENOENT ? 0 : rc;
}

int mirror_state_store(const char *id, const struct mirror_state *s)
{
    char path[PATH_MAX];
    int rc = file_path(path, sizeof(path), id, "state");
    return rc ? rc
              : store_fields(path, state_fields, NFIELDS(state_fields), s);
}

int mirror_rel_ids(char ***ids, size_t *n)
{
    char dir[PATH_MAX];
    *ids = NULL;
    *n = 0;
    int rc = mirror_dir(dir, sizeof(dir));
    if (rc)
        return rc;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    size_t cap = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len != MIRROR_ID_LEN + 7 || strcmp(e->d_name + MIRROR_ID_LEN,
                                               ".mirror"))
            continue;
        char *id = strndup(e->d_name, MIRROR_ID_LEN);
        rc = id ? array_append(ids, n, &cap, &id, sizeof(id)) : -ENOMEM;
    }
    closedir(d);
    return rc;
}

static int lock_open(const char *id)
{
    char path[PATH_MAX];
    int rc = file_path(path, sizeof(path), id, "lock");
    if (rc)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    return fd < 0 ? -errno : fd;
}

int mirror_lock(const char *id)
{
    int fd = lock_open(id);
    if (fd < 0)
        return fd;
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

int mirror_transferring(const char *id)
{
    int fd = lock_open(id);
    if (fd < 0)
        return 0;
    int busy = flock(fd, LOCK_SH | LOCK_NB) && errno == EWOULDBLOCK;
    close(fd);
    return busy;
}
