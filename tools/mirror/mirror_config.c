/*
 * mirror_config.c - a relationship created with --with-config carries the
 * source volume's configuration with its data, as a storage VM DR
 * relationship does: after each transfer the source's settings (snapdir
 * among them, which is what shares of the volume follow), snapshot
 * policies and qtrees with their styles and quotas are kept as a
 * configuration document (tools/config/) on the destination's host, in
 * its mirror registry as DIR/ID.config (ID: the id of the destination's
 * store directory, which for a local destination is the relationship's
 * own id); activating the destination there (mirror break, a test
 * failover's clone, and so `plan run`) makes it true with `config import
 * ID.config TARGET --apply`.
 *
 * To a peer (PEER:PATH) or through a --via command the document travels
 * as `snapfs receive --config DST` run where the destination is, on the
 * same authenticated channel as the data, its stdin the document; that
 * request needs the very grant a transfer into DST needs (receive), so
 * a peer can carry a configuration only to a volume it may receive into.
 *
 * THEORY (what a document from another host may hold).  Whatever a peer
 * sends is applied with this host's authority when the destination is
 * activated here.  So the receiving end keeps a document only if it is
 * exactly one volume's configuration and nothing else: no host records
 * (relationships, peers, grants, vault stores, NDMP users: a peer must
 * not grant itself anything here), no secrets, no policy hooks (commands
 * this host would run as root: the sending end leaves them out, the
 * receiving end refuses a document that has them), and the volume it
 * describes is the one the destination follows (its UUID is the
 * destination's source).  It keeps what it checked: the document
 * re-written from what was parsed, not the bytes received.  Activation
 * on that host checks the volume again: a document left by an earlier
 * relationship of another source is not applied.
 *
 * Guarantees: a document is replaced whole (written to a temporary file,
 * synced, renamed), so a crash leaves the one of the transfer before or
 * the one of this transfer; a transfer whose document cannot be kept
 * still succeeds (its data is there) and says so; activation applies all
 * of the document or nothing (config import refuses as a whole), and a
 * destination that already matches is left as it is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config/config.h"
#include "kvfile.h"
#include "mirror.h"

#define CARRIED_MAX (1u << 20) /* a document from elsewhere, at most */

/* DIR/ID.config of the destination whose id is ID; MAKE: the registry
 * made if missing (to keep one, not to look for one). */
static int carried_path(const char *id, bool make, char *out, size_t cap)
{
    char dir[PATH_MAX];
    int rc = make ? mirror_dir(dir, sizeof(dir))
                  : mirror_dir_name(dir, sizeof(dir));
    if (rc)
        return rc;
    return (size_t)snprintf(out, cap, "%s/%s.config", dir, id) >= cap
               ? -ENAMETOOLONG : 0;
}

int mirror_config_path(const struct mirror_rel *m, char *out, size_t cap)
{
    return carried_path(m->id, true, out, cap);
}

/* D (one volume, nothing else) as JSON text: malloc'd into *TEXT. */
static int document_text(const struct cfg_volume *v, char **text,
                         size_t *len)
{
    struct cfg_doc d = { 0 };
    d.vols = (struct cfg_volume *)v;
    d.nvols = 1;
    FILE *f = open_memstream(text, len);
    if (!f)
        return -ENOMEM;
    int rc = cfg_write(f, &d, NULL, 0);
    if (fclose(f) && !rc)
        rc = -ENOMEM;
    if (rc) {
        free(*text);
        *text = NULL;
    }
    return rc;
}

/* The source SRC's configuration as a document; without HOOKS its
 * policies' hooks left out. */
static int source_document(const char *src, bool hooks, char **text,
                           size_t *len)
{
    struct sfs_store *st;
    struct cfg_volume v;
    int rc = sfs_open(src, SFS_OPEN_RDONLY, &st);
    if (rc)
        return rc;
    rc = cfg_read(st, src, &v);
    sfs_close(st);
    if (rc)
        return rc;
    for (size_t i = 0; !hooks && i < v.npolicies; i++)
        memset(&v.policies[i].hooks, 0, sizeof(v.policies[i].hooks));
    rc = document_text(&v, text, len);
    cfg_volume_free(&v);
    return rc;
}

/* TEXT to M's destination's host: `receive --config DST` there. */
static int send_document(const struct mirror_rel *m, const char *text,
                         size_t len, char *err, size_t cap)
{
    const char *extra[] = { "--config", NULL };
    struct dst_conn c;
    char why[512] = "";
    int rc = dst_open(m, extra, &c, why, sizeof(why));
    if (rc) {
        snprintf(err, cap, "sending %s's configuration: %s", m->src, why);
        return rc;
    }
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    for (size_t at = 0; at < len;) {
        ssize_t w = write(c.in_fd, text + at, len - at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* the far end's status says why */
        at += (size_t)w;
    }
    dst_end_input(&c);
    int status = dst_close(&c, why, sizeof(why));
    signal(SIGPIPE, old);
    if (status) {
        snprintf(err, cap, "%s did not keep %s's configuration: %s", m->dst,
                 m->src, why[0] ? why : "it failed");
        return -EREMOTEIO;
    }
    return 0;
}

int mirror_config_carry(const struct mirror_rel *m, char *err, size_t cap)
{
    char peer[PEER_NAME_MAX + 1], where[PATH_MAX], path[PATH_MAX];
    bool local = mirror_dst_kind(m, peer, where) == DST_LOCAL;
    char *text = NULL;
    size_t len = 0;
    int rc = source_document(m->src, local, &text, &len);
    if (rc) {
        snprintf(err, cap, "reading %s's configuration: %s", m->src,
                 strerror(-rc));
        return rc;
    }
    if (!local) {
        rc = send_document(m, text, len, err, cap);
        free(text);
        return rc;
    }
    rc = mirror_config_path(m, path, sizeof(path));
    if (!rc)
        rc = kv_write_file(path, text, len, true);
    free(text);
    if (rc)
        snprintf(err, cap, "keeping %s's configuration: %s", m->src,
                 strerror(-rc));
    return rc;
}

/* ---- the receiving end ---- */

/* Up to CARRIED_MAX bytes of FD: malloc'd, NUL-terminated. */
static int read_document(int fd, char **text, size_t *len)
{
    char *buf = malloc(CARRIED_MAX + 1);
    size_t n = 0;
    if (!buf)
        return -ENOMEM;
    for (;;) {
        ssize_t got = read(fd, buf + n, CARRIED_MAX + 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int rc = -errno;
            free(buf);
            return rc;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > CARRIED_MAX) {
            free(buf);
            return -EFBIG;
        }
    }
    buf[n] = 0;
    *text = buf;
    *len = n;
    return 0;
}

static bool host_records(const struct cfg_host *h)
{
    return h->nmirrors || h->npeers || h->nclients || h->ngrants ||
           h->nvstores || h->nvpolicies || h->nvrels || h->nnusers;
}

/* D is one volume's configuration, of volume SRC_UUID, and nothing else
 * (see THEORY); else -EPERM with why in ERR. */
static int check_carried(const struct cfg_doc *d, const uint8_t src_uuid[16],
                         char *err, size_t cap)
{
    if (d->nvols != 1) {
        snprintf(err, cap, "it holds %zu volumes (a carried configuration "
                 "is the source volume's)", d->nvols);
        return -EPERM;
    }
    if (d->has_secrets || host_records(&d->host)) {
        snprintf(err, cap, "it holds host records or secrets (a carried "
                 "configuration holds the volume's settings, policies and "
                 "qtrees only)");
        return -EPERM;
    }
    const struct cfg_volume *v = &d->vols[0];
    for (size_t i = 0; i < v->npolicies; i++)
        if (sfs_hooks_any(&v->policies[i].hooks)) {
            snprintf(err, cap, "its policy %s has hooks (commands: they "
                     "do not travel to another host)",
                     v->policies[i].name);
            return -EPERM;
        }
    uint8_t uuid[16];
    char follows[SFS_UUID_TEXT];
    sfs_uuid_format(src_uuid, follows);
    if (sfs_uuid_parse(v->uuid, uuid) || memcmp(uuid, src_uuid, 16)) {
        snprintf(err, cap, "it is the configuration of volume %s, and the "
                 "destination follows volume %s", v->uuid, follows);
        return -EPERM;
    }
    return 0;
}

int mirror_config_receive(const char *store, const uint8_t src_uuid[16],
                          int fd, char *err, size_t cap)
{
    char *text = NULL, why[600];
    size_t len = 0;
    int rc = read_document(fd, &text, &len);
    if (rc) {
        if (rc == -EFBIG)
            snprintf(err, cap, "larger than %u KiB: not a carried "
                     "configuration", CARRIED_MAX >> 10);
        else
            snprintf(err, cap, "reading it: %s", strerror(-rc));
        return rc;
    }
    struct cfg_doc d;
    rc = cfg_parse(text, len, &d, NULL, NULL, why, sizeof(why));
    free(text);
    if (rc) {
        snprintf(err, cap, "%s", why);
        return rc;
    }
    rc = check_carried(&d, src_uuid, err, cap);
    char *kept = NULL, id[MIRROR_ID_LEN + 1], path[PATH_MAX];
    if (!rc)
        rc = document_text(&d.vols[0], &kept, &len);
    cfg_doc_free(&d);
    if (rc == -EPERM)
        return rc;
    mirror_id(store, id);
    if (!rc)
        rc = carried_path(id, true, path, sizeof(path));
    if (!rc)
        rc = kv_write_file(path, kept, len, true);
    free(kept);
    if (rc)
        snprintf(err, cap, "keeping it: %s", strerror(-rc));
    return rc;
}

/* ---- activation ---- */

/* `config import PATH TARGET --apply`. */
static int apply_document(const char *path, const char *target, char *err,
                          size_t cap)
{
    char *argv[] = { "config", "import", (char *)path, (char *)target,
                     "--apply", NULL };
    return run_self(argv, err, cap);
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
    return apply_document(path, target, err, cap);
}

/* The source volume STORE follows (its UUID as text): 0, -ENOTCONN if
 * it follows none, or a negative errno. */
static int followed_source(const char *store, char out[SFS_UUID_TEXT])
{
    struct sfs_store *st;
    struct sfs_recv_state rs;
    MDB_txn *txn;
    int rc = sfs_open(store, SFS_OPEN_RDONLY, &st);
    if (rc)
        return rc;
    rc = sfs_txn_begin(st, NULL, false, &txn);
    if (!rc) {
        rc = sfs_recv_state(st, txn, &rs);
        mdb_txn_abort(txn);
    }
    sfs_close(st);
    if (!rc && !rs.follows)
        rc = -ENOTCONN;
    if (!rc)
        sfs_uuid_format(rs.src_uuid, out);
    return rc;
}

/* The volume whose configuration the document PATH is (UUID text). */
static int document_volume(const char *path, char out[SFS_UUID_TEXT],
                           char *err, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char *text = NULL;
    size_t len = 0;
    int rc = read_document(fd, &text, &len);
    close(fd);
    struct cfg_doc d;
    if (!rc)
        rc = cfg_parse(text, len, &d, NULL, NULL, err, cap);
    free(text);
    if (rc)
        return rc;
    rc = d.nvols == 1 ? 0 : -EINVAL;
    if (!rc)
        snprintf(out, SFS_UUID_TEXT, "%s", d.vols[0].uuid);
    else
        snprintf(err, cap, "%s holds %zu volumes", path, d.nvols);
    cfg_doc_free(&d);
    return rc;
}

int mirror_config_activate_carried(const char *id, const char *dst,
                                   const char *target, char *err, size_t cap)
{
    char path[PATH_MAX], doc[SFS_UUID_TEXT], follows[SFS_UUID_TEXT];
    int rc = carried_path(id, false, path, sizeof(path));
    if (rc) {
        snprintf(err, cap, "the mirror registry: %s", strerror(-rc));
        return rc;
    }
    if (access(path, F_OK))
        return 1;
    rc = document_volume(path, doc, err, cap);
    if (rc && !err[0])
        snprintf(err, cap, "%s: %s", path, strerror(-rc));
    if (rc)
        return rc;
    rc = followed_source(dst, follows);
    if (rc == -ENOTCONN)
        return 1; /* it never followed: nothing was carried to it */
    if (rc) {
        snprintf(err, cap, "%s: %s", dst, strerror(-rc));
        return rc;
    }
    if (strcmp(doc, follows)) {
        snprintf(err, cap, "the configuration %s holds is of volume %s, "
                 "and %s follows volume %s (left from an earlier "
                 "relationship)", path, doc, dst, follows);
        return 2;
    }
    return apply_document(path, target, err, cap);
}
