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
 *   ID.config   with --with-config: the source's configuration as the
 *               last transfer left it (mirror_config.c)
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
#include "kvfile.h"
#include "mirror.h"

static const struct kv_field rel_fields[] = {
    KV_FIELD(mirror_rel, src, KV_STR),
    KV_FIELD(mirror_rel, dst, KV_STR),
    KV_FIELD(mirror_rel, via, KV_STR),
    KV_FIELD(mirror_rel, policy, KV_STR),
    KV_FIELD(mirror_rel, keep, KV_STR),
    KV_FIELD(mirror_rel, schedule, KV_STR),
    KV_FIELD(mirror_rel, quiesced, KV_BOOL),
    KV_FIELD(mirror_rel, group, KV_STR),
    KV_FIELD(mirror_rel, with_config, KV_BOOL),
};

static const struct kv_field state_fields[] = {
    KV_FIELD(mirror_state, last_start, KV_I64),
    KV_FIELD(mirror_state, last_end, KV_I64),
    KV_FIELD(mirror_state, last_sched, KV_I64),
    KV_FIELD(mirror_state, last_seconds, KV_DBL),
    KV_FIELD(mirror_state, last_bytes, KV_U64),
    KV_FIELD(mirror_state, total_bytes, KV_U64),
    KV_FIELD(mirror_state, resent_bytes, KV_U64),
    KV_FIELD(mirror_state, transfers, KV_U64),
    KV_FIELD(mirror_state, newest, KV_STR),
    KV_FIELD(mirror_state, newest_ctime, KV_I64),
    KV_FIELD(mirror_state, held, KV_STR),
    KV_FIELD(mirror_state, attempt_to, KV_U64),
    KV_FIELD(mirror_state, attempt_bytes, KV_U64),
    KV_FIELD(mirror_state, last_error, KV_STR),
    KV_FIELD(mirror_state, to_publish, KV_BOOL),
};

int mirror_dir_name(char *out, size_t cap)
{
    const char *dir = getenv("SNAPFS_MIRROR_DIR");
    if (!dir || !*dir)
        dir = MIRROR_DIR_DEFAULT;
    return (size_t)snprintf(out, cap, "%s", dir) >= cap ? -ENAMETOOLONG : 0;
}

int mirror_dir(char *out, size_t cap)
{
    int rc = mirror_dir_name(out, cap);
    if (rc)
        return rc;
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

int mirror_rel_load(const char *id, struct mirror_rel *m)
{
    char path[PATH_MAX];
    int rc = file_path(path, sizeof(path), id, "mirror");
    memset(m, 0, sizeof(*m));
    if (!rc)
        rc = kv_load(path, rel_fields, KV_NFIELDS(rel_fields), m);
    snprintf(m->id, sizeof(m->id), "%s", id);
    return rc;
}

int mirror_rel_store(const struct mirror_rel *m)
{
    char path[PATH_MAX];
    int rc = file_path(path, sizeof(path), m->id, "mirror");
    return rc ? rc : kv_store(path, rel_fields, KV_NFIELDS(rel_fields), m);
}

int mirror_rel_delete(const char *id)
{
    static const char *const exts[] = { "mirror", "state", "lock", "config" };
    for (size_t i = 0; i < 4; i++) {
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
        rc = kv_load(path, state_fields, KV_NFIELDS(state_fields), s);
    return rc == -ENOENT ? 0 : rc;
}

int mirror_state_store(const char *id, const struct mirror_state *s)
{
    char path[PATH_MAX];
    int rc = file_path(path, sizeof(path), id, "state");
    return rc ? rc
              : kv_store(path, state_fields, KV_NFIELDS(state_fields), s);
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
