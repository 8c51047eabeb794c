/*
 * mirror_config.c - a relationship created with --with-config carries the
 * source volume's configuration with its data, as a storage VM DR
 * relationship does: after each transfer the source's settings (snapdir
 * among them, which is what shares of the volume follow), snapshot
 * policies with their hooks and qtrees with their styles and quotas are
 * kept as a configuration document (tools/config/) in the registry,
 * DIR/ID.config; activating the destination (mirror break, a test
 * failover's clone, and so `plan run`) makes it true there with `config
 * import ID.config TARGET --apply`.
 *
 * Guarantees: the document is replaced whole (written to a temporary
 * file, synced, renamed), so a crash leaves the one of the transfer
 * before or the one of this transfer; a transfer whose document cannot be
 * written still succeeds (its data is there) and says so; activation
 * applies all of the document or nothing (config import refuses as a
 * whole), and a destination that already matches is left as it is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config/config.h"
#include "mirror.h"

int mirror_config_path(const struct mirror_rel *m, char *out, size_t cap)
{
    char dir[PATH_MAX];
    int rc = mirror_dir(dir, sizeof(dir));
    if (rc)
        return rc;
    return (size_t)snprintf(out, cap, "%s/%s.config", dir, m->id) >= cap
               ? -ENAMETOOLONG : 0;
}

/* The source's configuration document into the open file F. */
static int write_document(const struct mirror_rel *m, FILE *f)
{
    struct sfs_store *st;
    struct cfg_doc d = { 0 };
    struct cfg_volume v;
    int rc = sfs_open(m->src, SFS_OPEN_RDONLY, &st);
    if (rc)
        return rc;
    rc = cfg_read(st, m->src, &v);
    sfs_close(st);
    if (rc)
        return rc;
    d.vols = &v;
    d.nvols = 1;
    rc = cfg_write(f, &d, NULL, 0);
    cfg_volume_free(&v);
    return rc;
}

int mirror_config_carry(const struct mirror_rel *m, char *err, size_t cap)
{
    char path[PATH_MAX], tmp[PATH_MAX + 16];
    int rc = mirror_config_path(m, path, sizeof(path));
    if (rc) {
        snprintf(err, cap, "the mirror registry: %s", strerror(-rc));
        return rc;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    if (!f) {
        rc = -errno;
        if (fd >= 0)
            close(fd);
        snprintf(err, cap, "%s: %s", tmp, strerror(-rc));
        return rc;
    }
    rc = write_document(m, f);
    if (!rc && (fflush(f) || fsync(fileno(f))))
        rc = -errno;
    if (fclose(f) && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path))
        rc = -errno;
    if (rc) {
        unlink(tmp);
        snprintf(err, cap, "keeping %s's configuration: %s", m->src,
                 strerror(-rc));
    }
    return rc;
}

int mirror_config_activate(const struct mirror_rel *m, const char *target,
                           char *err, size_t cap)
{
    char path[PATH_MAX];
    if (!m->with_config)
        return 0;
    int rc = mirror_config_path(m, path, sizeof(path));
    if (rc) {
        snprintf(err, cap, "the mirror registry: %s", strerror(-rc));
        return rc;
    }
    if (access(path, F_OK)) {
        snprintf(err, cap, "no configuration of %s was carried yet (no "
                 "transfer since the relationship carries it)", m->src);
        return -ENOENT;
    }
    char *argv[] = { "config", "import", path, (char *)target, "--apply",
                     NULL };
    return run_self(argv, err, cap);
}
