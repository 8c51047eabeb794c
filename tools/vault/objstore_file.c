/*
 * objstore_file.c - the file:// backend: object NAME is the file
 * ROOT/NAME, directories made as puts need them (mode 0700, files 0600:
 * a vault is private to the user who writes it).
 *
 * Guarantees: an object appears whole or not at all, and once put
 * returns it survives a crash: the content goes to a temporary file
 * ".objstore-tmp-XXXXXX" in the object's directory, which is fsynced and
 * renamed over the name (put_if_absent: hard-linked to it, which fails if
 * the name exists), then the directory is fsynced; a directory made for
 * it is fsynced into its parent.  Readers never see a temporary file:
 * names starting with '.' are not valid object names and list skips them.
 * A put interrupted by a crash leaves its temporary file behind, which
 * nothing lists or reads.  Asynchronous gets are done at submit
 * (objstore.c defers their DONE); asynchronous puts are written, synced
 * and renamed in submit order by a writer thread of the store's own,
 * their DONE run on the caller's thread by the next drain (a submit
 * that finds too many queued, objstore_wait, close).
 *
 * THEORY (the writer).  Writing a pack is a copy into the page cache and
 * an fsync that waits for the disk: done at submit, a backup's thread
 * stopped for both while its pack, and the blocks behind it, waited;
 * on the writer the backup goes on packing while the disk writes (the
 * uploads in flight are bounded by the caller, blobio.c: 4 packs).  The
 * writer works on a handle of its own that shares only the backend's
 * state (the root, read only), so its error messages never race the
 * caller's; each put's message travels with it to its DONE.  A put's
 * guarantees are the blocking put's: whole or not at all, durable before
 * its DONE reports success.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "objstore_int.h"

#define TMP_TEMPLATE ".objstore-tmp-XXXXXX"

/* An asynchronous put, queued, then written, then completed. */
struct file_job {
    struct file_job *next;
    const void *buf;
    size_t len;
    objstore_done_fn *done;
    void *arg;
    int rc;
    char why[OBJSTORE_WHY_SIZE];
    char name[];
};

struct file_writer {
    pthread_t thread;
    bool started, stop;
    pthread_mutex_t mu;
    pthread_cond_t work, written;
    struct file_job *queued, **queued_tail;     /* submitted, in order */
    struct file_job *done, **done_tail;     /* written, DONE not run */
    unsigned pending;                       /* submitted, DONE not run */
    struct objstore own;                    /* the writer's handle */
};

struct file_store {
    char root[PATH_MAX];
    size_t rootlen;
    struct file_writer w;
};

static struct file_store *fs_of(struct objstore *os)
{
    return os->priv;
}

static int sys_fail(struct objstore *os, int err, const char *what,
                    const char *path)
{
    return objstore_fail(os, -err, "%s: %s: %s", path, what, strerror(err));
}

/* ROOT/NAME into PATH (it fits: the root's length is checked at open). */
static void object_path(struct objstore *os, const char *name, char *path)
{
    size_t rootlen = fs_of(os)->rootlen;
    memcpy(path, fs_of(os)->root, rootlen);
    path[rootlen] = '/';
    memcpy(path + rootlen + 1, name, strlen(name) + 1);
}

/* DIR/.objstore-tmp-XXXXXX into TMP, DIR being an object's directory. */
static void temp_template(const char *dir, char *tmp)
{
    size_t dirlen = strlen(dir);
    memcpy(tmp, dir, dirlen);
    memcpy(tmp + dirlen, "/" TMP_TEMPLATE, sizeof("/" TMP_TEMPLATE));
}

/* Cut PATH to the directory that holds it ("/a" to "/"). */
static void cut_to_parent(char *path)
{
    char *slash = strrchr(path, '/');
    slash[slash == path] = 0;
}

/* ---- writing ---- */

static int fsync_dir(struct objstore *os, const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return sys_fail(os, errno, "open directory", dir);
    int rc = fsync(fd) ? sys_fail(os, errno, "fsync directory", dir) : 0;
    close(fd);
    return rc;
}

/* mkdir -p DIR (0700), fsyncing each parent that got a new directory. */
static int make_dirs(struct objstore *os, char *dir)
{
    for (char *p = dir + 1;; p++) {
        if (*p && *p != '/')
            continue;
        char saved = *p;
        *p = 0;
        int rc = 0;
        if (mkdir(dir, 0700) == 0) {
            char parent[PATH_MAX];
            memcpy(parent, dir, p - dir + 1);
            cut_to_parent(parent);
            rc = fsync_dir(os, parent);
        } else if (errno != EEXIST) {
            rc = sys_fail(os, errno, "mkdir", dir);
        }
        *p = saved;
        if (rc || !saved)
            return rc;
    }
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A temporary file in DIR holding BUF, fsynced; its path in TMP. */
static int write_temp(struct objstore *os, char *dir, char *tmp, const void *buf,
                      size_t len)
{
    temp_template(dir, tmp);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        int rc = make_dirs(os, dir);
        if (rc)
            return rc;
        temp_template(dir, tmp);
        fd = mkostemp(tmp, O_CLOEXEC);
    }
    if (fd < 0)
        return sys_fail(os, errno, "create a temporary file", dir);
    int err = write_all(fd, buf, len);
    const char *what = "write";
    if (!err && fsync(fd)) {
        err = -errno;
        what = "fsync";
    }
    if (close(fd) && !err) {
        err = -errno;
        what = "close";
    }
    if (err) {
        unlink(tmp);
        return sys_fail(os, -err, what, tmp);
    }
    return 0;
}

/* The temporary file TMP becomes PATH: renamed over it, or (IF_ABSENT)
 * hard-linked to it, which fails with EEXIST when PATH exists. */
static int publish(struct objstore *os, const char *tmp, const char *path,
                   const char *name, bool if_absent)
{
    if (!if_absent) {
        if (rename(tmp, path))
            return sys_fail(os, errno, "rename a temporary file to", path);
        return 0;
    }
    int rc = 0;
    if (link(tmp, path))
        rc = errno == EEXIST ? objstore_fail(os, -EEXIST, "%s: exists already", name)
                             : sys_fail(os, errno, "link a temporary file to", path);
    unlink(tmp);
    return rc;
}

static int file_put(struct objstore *os, const char *name, const void *buf,
                    size_t len, bool if_absent)
{
    char path[PATH_MAX], dir[PATH_MAX], tmp[PATH_MAX];
    object_path(os, name, path);
    memcpy(dir, path, sizeof(dir));
    cut_to_parent(dir);
    int rc = write_temp(os, dir, tmp, buf, len);
    if (rc)
        return rc;
    rc = publish(os, tmp, path, name, if_absent);
    if (rc) {
        unlink(tmp);
        return rc;
    }
    return fsync_dir(os, dir);
}

/* ---- asynchronous puts: the writer (theory at the top) ---- */

/* Append J to the list whose tail pointer is *TAIL. */
static void job_append(struct file_job ***tail, struct file_job *j)
{
    j->next = NULL;
    **tail = j;
    *tail = &j->next;
}

/* The first job of the list HEAD (tail TAIL), taken off it. */
static struct file_job *job_pop(struct file_job **head,
                                struct file_job ***tail)
{
    struct file_job *j = *head;
    if (j && !(*head = j->next))
        *tail = head;
    return j;
}

static void *writer_main(void *arg)
{
    struct file_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct file_job *j = job_pop(&w->queued, &w->queued_tail);
        if (!j && w->stop)
            break;
        if (!j) {
            pthread_cond_wait(&w->work, &w->mu);
            continue;
        }
        pthread_mutex_unlock(&w->mu);
        w->own.why[0] = 0;
        j->rc = file_put(&w->own, j->name, j->buf, j->len, false);
        memcpy(j->why, w->own.why, sizeof(j->why));
        pthread_mutex_lock(&w->mu);
        job_append(&w->done_tail, j);
        pthread_cond_broadcast(&w->written);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int writer_start(struct objstore *os, struct file_writer *w)
{
    w->own.be = os->be;
    w->own.priv = os->priv;
    int rc = -pthread_create(&w->thread, NULL, writer_main, w);
    if (rc)
        return objstore_fail(os, -ENOMEM, "starting the writer thread: %s",
                             strerror(-rc));
    w->started = true;
    return 0;
}

static int file_put_async(struct objstore *os, const char *name,
                          const void *buf, size_t len, objstore_done_fn *done,
                          void *arg)
{
    struct file_writer *w = &fs_of(os)->w;
    int rc = w->started ? 0 : writer_start(os, w);
    if (rc)
        return rc;
    size_t nlen = strlen(name) + 1;
    struct file_job *j = malloc(sizeof(*j) + nlen);
    if (!j)
        return objstore_fail(os, -ENOMEM, "out of memory");
    *j = (struct file_job){ .buf = buf, .len = len, .done = done, .arg = arg };
    memcpy(j->name, name, nlen);
    pthread_mutex_lock(&w->mu);
    job_append(&w->queued_tail, j);
    w->pending++;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* Run the DONE of every written put; while more than LIMIT puts are
 * pending (0: any), wait for the writer first.  DONE may submit more. */
static void file_drain(struct objstore *os, unsigned limit)
{
    struct file_writer *w = &fs_of(os)->w;
    if (!w->started)
        return;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct file_job *j = job_pop(&w->done, &w->done_tail);
        if (!j && w->pending && w->pending >= (limit ? limit : 1)) {
            pthread_cond_wait(&w->written, &w->mu);
            continue;
        }
        if (!j)
            break;
        w->pending--;
        pthread_mutex_unlock(&w->mu);
        objstore_complete(os, j->done, j->arg, j->rc, j->why);
        free(j);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
}

/* The writer stopped once it has written what was submitted; DONEs not
 * run yet are run (the promise: exactly once). */
static void writer_stop(struct objstore *os, struct file_writer *w)
{
    if (!w->started)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->started = false;
    struct file_job *j;
    while ((j = job_pop(&w->done, &w->done_tail))) {
        objstore_complete(os, j->done, j->arg, j->rc, j->why);
        free(j);
    }
}

/* ---- reading ---- */

/* Open object NAME for reading; its size in *SIZE. */
static int open_object(struct objstore *os, const char *name, uint64_t *size)
{
    char path[PATH_MAX];
    object_path(os, name, path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
        return objstore_fail(os, -ENOENT, "%s: no such object", name);
    if (fd < 0)
        return sys_fail(os, errno, "open", path);
    struct stat st;
    if (fstat(fd, &st)) {
        int err = errno;
        close(fd);
        return sys_fail(os, err, "stat", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return objstore_fail(os, -ENOENT, "%s: no such object (a directory)", name);
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

static int read_at(struct objstore *os, int fd, const char *name, char *buf,
                   size_t len, uint64_t off)
{
    while (len) {
        ssize_t n = pread(fd, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return sys_fail(os, errno, "read", name);
        if (n == 0)
            return objstore_fail(os, -ERANGE, "%s: ends early (changed while read?)", name);
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int file_get(struct objstore *os, const char *name, void **buf, size_t *len)
{
    uint64_t size;
    int fd = open_object(os, name, &size);
    if (fd < 0)
        return fd;
    if (size > SIZE_MAX - 1) {
        close(fd);
        return objstore_fail(os, -ENOMEM, "%s: too large for memory", name);
    }
    char *data = malloc(size ? size : 1);
    if (!data) {
        close(fd);
        return objstore_fail(os, -ENOMEM, "%s: out of memory for %llu bytes",
                             name, (unsigned long long)size);
    }
    int rc = read_at(os, fd, name, data, size, 0);
    close(fd);
    if (rc) {
        free(data);
        return rc;
    }
    *buf = data;
    *len = size;
    return 0;
}

static int file_get_range(struct objstore *os, const char *name, uint64_t off,
                          size_t len, void *buf)
{
    uint64_t size;
    int fd = open_object(os, name, &size);
    if (fd < 0)
        return fd;
    int rc;
    if (off > size || len > size - off)
        rc = objstore_fail(os, -ERANGE, "%s: %llu bytes, no range [%llu, +%zu)", name,
                           (unsigned long long)size, (unsigned long long)off, len);
    else
        rc = read_at(os, fd, name, buf, len, off);
    close(fd);
    return rc;
}

static int file_stat(struct objstore *os, const char *name, uint64_t *size)
{
    int fd = open_object(os, name, size);
    if (fd < 0)
        return fd;
    close(fd);
    return 0;
}

static int file_del(struct objstore *os, const char *name)
{
    char path[PATH_MAX];
    object_path(os, name, path);
    if (unlink(path)) {
        if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
            return 0;
        return sys_fail(os, errno, "unlink", path);
    }
    cut_to_parent(path);
    return fsync_dir(os, path);
}

/* ---- listing ---- */

struct walk {
    struct objstore *os;
    const char *prefix;
    objstore_list_fn *fn;
    void *arg;
    char *rel;            /* the name being looked at, inside path */
    char path[PATH_MAX];  /* ROOT/ and the name */
};

/* The entries of directory PATH (names not starting with '.'), as one
 * allocation of NUL-separated names; their count in *N.  A missing
 * directory has none. */
static int read_dir(struct objstore *os, const char *path, char **names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT || errno == ENOTDIR ? 0 : sys_fail(os, errno, "opendir", path);
    size_t used = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        size_t l = strlen(e->d_name) + 1;
        if (used + l > cap) {
            cap = 2 * (used + l) + 256;
            char *grown = realloc(*names, cap);
            if (!grown) {
                rc = objstore_fail(os, -ENOMEM, "%s: out of memory listing", path);
                break;
            }
            *names = grown;
        }
        memcpy(*names + used, e->d_name, l);
        used += l;
        (*n)++;
    }
    closedir(d);
    if (rc) {
        free(*names);
        *names = NULL;
    }
    return rc;
}

static int walk_dir(struct walk *w, size_t rellen, bool top);

/* The entry W->rel (RELLEN bytes) of the walk: a file is listed if its
 * name begins with the prefix, a directory walked. */
static int walk_entry(struct walk *w, size_t rellen)
{
    struct stat st;
    if (lstat(w->path, &st))
        return errno == ENOENT ? 0 : sys_fail(w->os, errno, "stat", w->path);
    if (S_ISDIR(st.st_mode))
        return walk_dir(w, rellen, false);
    if (!S_ISREG(st.st_mode) || strncmp(w->rel, w->prefix, strlen(w->prefix)))
        return 0;
    return w->fn(w->arg, w->rel, (uint64_t)st.st_size);
}

/* Walk the directory W->rel (RELLEN bytes, 0: the root); at the TOP
 * level only entries beginning with the prefix's last component. */
static int walk_dir(struct walk *w, size_t rellen, bool top)
{
    char *names;
    size_t n;
    int rc = read_dir(w->os, w->path, &names, &n);
    const char *last = strrchr(w->prefix, '/');
    last = last ? last + 1 : w->prefix;
    const char *e = names;
    for (size_t i = 0; !rc && i < n; i++, e += strlen(e) + 1) {
        size_t l = strlen(e), at = rellen ? rellen + 1 : 0;
        if ((top && strncmp(e, last, strlen(last))) || at + l > OBJSTORE_NAME_MAX)
            continue;
        if (rellen)
            w->rel[rellen] = '/';
        memcpy(w->rel + at, e, l + 1);
        rc = walk_entry(w, at + l);
        w->rel[rellen] = 0;
    }
    free(names);
    return rc;
}

static int file_list(struct objstore *os, const char *prefix, objstore_list_fn *fn,
                     void *arg)
{
    struct walk *w = malloc(sizeof(*w));
    if (!w)
        return objstore_fail(os, -ENOMEM, "out of memory listing");
    *w = (struct walk){ .os = os, .prefix = prefix, .fn = fn, .arg = arg };
    size_t rootlen = fs_of(os)->rootlen;
    memcpy(w->path, fs_of(os)->root, rootlen);
    w->path[rootlen] = '/';
    w->rel = w->path + rootlen + 1;
    const char *slash = strrchr(prefix, '/');
    size_t dirlen = slash ? (size_t)(slash - prefix) : 0;
    memcpy(w->rel, prefix, dirlen);
    w->rel[dirlen] = 0;
    int rc = walk_dir(w, dirlen, true);
    free(w);
    return rc;
}

/* ---- open and close ---- */

static void file_close(struct objstore *os)
{
    struct file_store *fs = fs_of(os);
    if (!fs)
        return;
    writer_stop(os, &fs->w);
    pthread_mutex_destroy(&fs->w.mu);
    pthread_cond_destroy(&fs->w.work);
    pthread_cond_destroy(&fs->w.written);
    free(fs);
}

static const struct objstore_backend file_backend = {
    .put = file_put,
    .get = file_get,
    .get_range = file_get_range,
    .stat = file_stat,
    .del = file_del,
    .list = file_list,
    .put_async = file_put_async,
    .drain = file_drain,
    .close = file_close,
};

int objstore_file_open(struct objstore *os, const char *path)
{
    os->be = &file_backend;
    struct file_store *fs = calloc(1, sizeof(*fs));
    if (!fs)
        return objstore_fail(os, -ENOMEM, "out of memory");
    os->priv = fs;
    pthread_mutex_init(&fs->w.mu, NULL);
    pthread_cond_init(&fs->w.work, NULL);
    pthread_cond_init(&fs->w.written, NULL);
    fs->w.queued_tail = &fs->w.queued;
    fs->w.done_tail = &fs->w.done;
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    if (len + 1 + OBJSTORE_NAME_MAX + sizeof(TMP_TEMPLATE) >= sizeof(fs->root))
        return objstore_fail(os, -EINVAL, "%s: the path is too long", path);
    if (len == 1)
        len = 0; /* file:/// : names are /NAME */
    memcpy(fs->root, path, len);
    fs->root[len] = 0;
    fs->rootlen = len;
    struct stat st;
    if (len && stat(fs->root, &st) == 0 && !S_ISDIR(st.st_mode))
        return objstore_fail(os, -ENOTDIR, "%s: not a directory", fs->root);
    if (len && stat(fs->root, &st) && errno != ENOENT)
        return sys_fail(os, errno, "stat", fs->root);
    return 0;
}
