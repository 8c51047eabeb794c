/*
 * peer_guard.c - which volume a command run for a peer may reach, checked
 * on what the command actually opened.
 *
 * A volume's identity here is its UUID and the device and inode number
 * of its data file (STORE/data.mdb) as opened.  `peer serve` decides
 * which volume a request may use (peer_grants.c) and starts the command
 * with that identity in the environment (PEER_GUARD_ENV).  The command,
 * at its start (peer_guard_install), then checks every store it opens
 * (after opening it: sfs_set_open_check) and every control socket it
 * connects to (through the store directory it opened and checked:
 * control_set_check) against that identity.
 *
 * Guarantees: a path that resolves elsewhere between the server's check
 * and the command's use (a symlink or a store replaced, a bind mount
 * over it) makes the command's open fail with -EPERM before it reads or
 * writes anything there; an environment value that does not parse lets
 * the command reach nothing (fail closed); without the variable nothing
 * is checked.  Nothing here prints.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "peer.h"

int peer_volume_id_of(const struct sfs_store *st, struct peer_volume_id *id)
{
    int fd;
    struct stat sb;
    if (mdb_env_get_fd(st->env, &fd) || fstat(fd, &sb))
        return -EIO;
    memcpy(id->uuid, st->super.uuid, sizeof(id->uuid));
    id->dev = sb.st_dev;
    id->ino = sb.st_ino;
    return 0;
}

int peer_volume_id_at(const char *store, struct peer_volume_id *id)
{
    struct sfs_store *st;
    int rc = sfs_open(store, SFS_OPEN_RDONLY, &st);
    if (rc)
        return rc;
    rc = peer_volume_id_of(st, id);
    sfs_close(st);
    return rc;
}

/* DIR's data file is the one of ID (no UUID: nothing was opened yet). */
static bool same_data_file(int dirfd, const struct peer_volume_id *id)
{
    struct stat sb;
    return !fstatat(dirfd, "data.mdb", &sb, 0) && sb.st_dev == id->dev &&
           sb.st_ino == id->ino;
}

bool peer_volume_id_equal(const struct peer_volume_id *a,
                          const struct peer_volume_id *b)
{
    return !memcmp(a->uuid, b->uuid, sizeof(a->uuid)) && a->dev == b->dev &&
           a->ino == b->ino;
}

void peer_volume_id_format(const struct peer_volume_id *id, char *out,
                           size_t cap)
{
    char uuid[SFS_UUID_TEXT];
    sfs_uuid_format(id->uuid, uuid);
    snprintf(out, cap, "%s:%" PRIu64 ":%" PRIu64, uuid, (uint64_t)id->dev,
             (uint64_t)id->ino);
}

int peer_volume_id_parse(const char *text, struct peer_volume_id *id)
{
    char uuid[SFS_UUID_TEXT];
    uint64_t dev, ino;
    int end = 0;
    if (sscanf(text, "%36[0-9a-f-]:%" SCNu64 ":%" SCNu64 "%n", uuid, &dev,
               &ino, &end) != 3 || text[end] || sfs_uuid_parse(uuid, id->uuid))
        return -EINVAL;
    id->dev = (dev_t)dev;
    id->ino = (ino_t)ino;
    return 0;
}

/* ---- in the command ---- */

static struct peer_volume_id allowed;
static bool allowed_valid; /* false: the variable did not parse */

static int check_store(const struct sfs_store *st)
{
    struct peer_volume_id id;
    if (!allowed_valid || peer_volume_id_of(st, &id) ||
        !peer_volume_id_equal(&id, &allowed))
        return -EPERM;
    return 0;
}

static int check_dir(int dirfd)
{
    return allowed_valid && same_data_file(dirfd, &allowed) ? 0 : -EPERM;
}

bool peer_guard_install(void)
{
    const char *text = getenv(PEER_GUARD_ENV);
    if (!text)
        return true;
    allowed_valid = !peer_volume_id_parse(text, &allowed);
    sfs_set_open_check(check_store);
    control_set_check(check_dir);
    return allowed_valid;
}
