/*
 * volref.c - reaching a volume from a command: VOL is a store directory or
 * the mountpoint of a mounted one.
 *
 * A mounted volume is changed only through its daemon's control socket
 * (STORE/control.sock), after a syncfs of the mountpoint so that the
 * kernel's writeback cache is in the daemon first; an unmounted one is
 * opened directly, exclusively, and changed in one write transaction.
 * Either way a change is all or nothing.  A program may set a check of
 * the store directory every control socket is reached through
 * (control_set_check: a command run for a peer, peer_guard.c); the
 * directory is then opened first and the socket reached inside the very
 * directory that was checked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "store.h"

/* ---- talking to the daemon ---- */

static int (*control_check)(int dirfd);

void control_set_check(int (*check)(int dirfd))
{
    control_check = check;
}

/* The socket's address: STORE/control.sock; with a check, the store
 * directory is opened first (*DIRFD), checked, and the socket reached
 * through it, so that what was checked is what is connected to. */
static int control_address(const char *store, struct sockaddr_un *addr,
                           int *dirfd)
{
    *dirfd = -1;
    if (!control_check) {
        snprintf(addr->sun_path, sizeof(addr->sun_path), "%s/control.sock",
                 store);
        return 0;
    }
    *dirfd = open(store, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*dirfd < 0)
        return -errno;
    snprintf(addr->sun_path, sizeof(addr->sun_path),
             "/proc/self/fd/%d/control.sock", *dirfd);
    return control_check(*dirfd);
}

int control_connect(const char *store)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int dirfd, fd = -1;
    int rc = control_address(store, &addr, &dirfd);
    if (!rc) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        rc = fd < 0 ? -errno : 0;
    }
    if (!rc && connect(fd, (struct sockaddr *)&addr, sizeof(addr)))
        rc = -errno;
    if (dirfd >= 0)
        close(dirfd);
    if (rc && fd >= 0)
        close(fd);
    return rc ? rc : fd;
}

int control_send(int fd, char **words, int n)
{
    return control_send_fds(fd, words, n, NULL, 0);
}

int control_send_fds(int fd, char **words, int n, const int *fds, int nfds)
{
    if (nfds < 0 || nfds > 4)
        return -EINVAL;
    char *req = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&req, &len);
    if (!f)
        return -ENOMEM;
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? "\t" : "", words[i]);
    fputc('\n', f);
    fclose(f);
    union {
        char bytes[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = { req, len };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds > 0) {
        m.msg_control = ctl.bytes;
        m.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    int rc = sendmsg(fd, &m, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -EPIPE;
    free(req);
    return rc;
}

int control_status(int fd, int timeout_ms)
{
    char line[64];
    size_t used = 0;
    while (used < sizeof(line) - 1) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int ready = poll(&p, 1, timeout_ms);
        if (ready <= 0)
            return ready ? -errno : -ETIMEDOUT;
        ssize_t got = read(fd, line + used, 1); /* one line, nothing more */
        if (got <= 0)
            return -EPIPE; /* the daemon ended the session */
        if (line[used] == '\n')
            break;
        used++;
    }
    line[used] = 0;
    int err;
    if (!strcmp(line, "OK"))
        return 0;
    return sscanf(line, "ERR %d", &err) == 1 && err > 0 ? -err : -EPROTO;
}

void volume_syncfs(struct volume *vol)
{
    if (!vol->mountpoint)
        return;
    int mfd = open(vol->mountpoint, O_RDONLY | O_DIRECTORY);
    if (mfd >= 0) {
        syncfs(mfd);
        close(mfd);
    }
}

int volume_request(struct volume *vol, char **words, int n, char **data)
{
    volume_syncfs(vol);
    return volume_ask(vol, words, n, data);
}

/* Send a request (words joined by tabs); collect the data lines into
 * *DATA.  Returns 0 or the negative errno the daemon answered. */
int volume_ask(struct volume *vol, char **words, int n, char **data)
{
    int fd = control_connect(vol->store);
    if (fd < 0)
        return fd;
    int rc = control_send(fd, words, n);
    char *reply = NULL;
    size_t rlen = 0;
    FILE *r = open_memstream(&reply, &rlen);
    char buf[4096];
    ssize_t got;
    while (!rc && (got = read(fd, buf, sizeof(buf))) > 0)
        fwrite(buf, 1, (size_t)got, r);
    fclose(r);
    close(fd);
    if (rc) {
        free(reply);
        return rc;
    }
    /* The last line is the status. */
    char *end = reply + rlen;
    while (end > reply && end[-1] == '\n')
        *--end = 0;
    char *last = strrchr(reply, '\n');
    last = last ? last + 1 : reply;
    int err = 0;
    if (!strcmp(last, "OK"))
        rc = 0;
    else if (sscanf(last, "ERR %d", &err) == 1)
        rc = -err;
    else
        rc = -EPROTO;
    *last = 0;
    *data = reply;
    return rc;
}

/* ---- resolving VOL ---- */

void volume_open(struct volume *vol, const char *cmd, const char *arg)
{
    vol->arg = arg;
    vol->store = resolve_volume(arg, &vol->mounted);
    vol->mountpoint = vol->mounted ? strdup(arg) : NULL;
    if (!vol->mounted) {
        int fd = control_connect(vol->store);
        if (fd >= 0) {
            vol->mounted = true;
            close(fd);
        }
    }
    if (!vol->mounted) {
        struct sfs_store *st;
        int rc = sfs_open(vol->store, SFS_OPEN_RDONLY, &st);
        if (rc)
            die(cmd, "%s: %s", arg, open_error(rc));
        sfs_close(st);
    }
}

/* Offline: run FN in a write transaction of the store; KEEP commits. */
int volume_offline(struct volume *vol, const char *cmd,
                   int (*fn)(struct sfs_store *, MDB_txn *, void *),
                   void *arg, bool keep)
{
    struct sfs_store *st;
    int rc = sfs_open(vol->store, SFS_OPEN_EXCLUSIVE, &st);
    if (rc)
        die(cmd, "%s: %s", vol->arg, open_error(rc));
    MDB_txn *txn;
    rc = sfs_txn_begin(st, NULL, true, &txn);
    if (!rc) {
        rc = fn(st, txn, arg);
        if (!rc && keep) {
            rc = sfs_txn_commit(st, txn);
            if (!rc)
                rc = sfs_mdb_errno(mdb_env_sync(st->env, 1));
        } else {
            mdb_txn_abort(txn);
        }
    }
    sfs_close(st);
    return rc;
}

struct sfs_store *volume_read_store(struct volume *vol, const char *cmd,
                                    const char *verb)
{
    if (vol->mounted) {
        char *words[] = { "sync" }, *data = NULL;
        int rc = volume_request(vol, words, 1, &data);
        free(data);
        if (rc == -EACCES)
            die(cmd, "%s: permission denied (only root or the volume's owner "
                "may %s it)", vol->arg, verb);
        if (rc)
            die(cmd, "%s: %s", vol->arg, strerror(-rc));
    }
    struct sfs_store *st;
    int rc = sfs_open(vol->store, SFS_OPEN_RDONLY, &st);
    if (rc)
        die(cmd, "%s: %s", vol->arg, open_error(rc));
    return st;
}

struct hold_arg {
    const char *name, *tag;
    bool hold;
};

static int offline_hold(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct hold_arg *h = arg;
    return h->hold ? sfs_snap_hold_w(st, txn, h->name, h->tag)
                   : sfs_snap_release_w(st, txn, h->name, h->tag);
}

int volume_hold(struct volume *vol, const char *cmd, const char *name,
                const char *tag, bool hold)
{
    int fd = control_connect(vol->store);
    if (fd >= 0) {
        close(fd);
        char *words[] = { hold ? "snapshot-hold" : "snapshot-release",
                          (char *)name, (char *)tag }, *data = NULL;
        int rc = volume_request(vol, words, 3, &data);
        free(data);
        return rc;
    }
    struct hold_arg h = { name, tag, hold };
    return volume_offline(vol, cmd, offline_hold, &h, true);
}

/* Is DIR a volume: a snapfs mountpoint, or a store directory? */
static bool is_volume(const char *dir)
{
    char *store = mounted_store(dir);
    if (store) {
        free(store);
        return true;
    }
    char p[PATH_MAX + 16];
    struct stat sb;
    snprintf(p, sizeof(p), "%s/data.mdb", dir);
    return !stat(p, &sb) && S_ISREG(sb.st_mode);
}

void volume_open_path(struct volume *vol, const char *cmd, const char *arg,
                      char **path)
{
    char *prefix = strdup(arg);
    if (!prefix)
        die(cmd, "%s: out of memory", arg);
    size_t n = strlen(prefix);
    while (n > 1 && prefix[n - 1] == '/')
        prefix[--n] = 0;
    for (;;) {
        if (is_volume(prefix))
            break;
        char *slash = strrchr(prefix, '/');
        if (!slash || slash == prefix)
            die(cmd, "%s: not a snapfs volume or a directory in one", arg);
        *slash = 0;
    }
    const char *rest = arg + strlen(prefix);
    while (rest[0] == '/' && rest[1] == '/')
        rest++;
    if (asprintf(path, "%s", rest[0] ? rest : "/") < 0)
        die(cmd, "%s: out of memory", arg);
    n = strlen(*path);
    while (n > 1 && (*path)[n - 1] == '/')
        (*path)[--n] = 0;
    volume_open(vol, cmd, prefix); /* keeps PREFIX as vol->arg */
}

/* Every mounted snapfs volume's mountpoint. */
size_t mounted_volumes(char ***out)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[8192];
    size_t n = 0, cap = 0;
    *out = NULL;
    while (f && fgets(line, sizeof(line), f)) {
        char mnt[PATH_MAX], fstype[64];
        char *dash = strstr(line, " - ");
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 || !dash ||
            sscanf(dash + 3, "%63s", fstype) != 1 ||
            strcmp(fstype, "fuse.snapfs"))
            continue;
        char *copy = strdup(mnt);
        if (!copy || array_append(out, &n, &cap, &copy, sizeof(copy)))
            die("snapfs", "out of memory");
    }
    if (f)
        fclose(f);
    return n;
}
