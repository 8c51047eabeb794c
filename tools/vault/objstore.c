/*
 * objstore.c - the object store's front: parses the target, opens the
 * backend (objstore_file.c, objstore_s3.c), checks every name and the
 * callback rule before a backend sees the call, keeps the error detail,
 * and runs asynchronous transfers for a backend that has none of its own
 * (file://: the work is done at submit, DONE deferred to objstore_wait).
 *
 * Guarantees: a backend is only called with valid names and never from
 * inside a DONE callback (-EDEADLK there); objstore_why() never holds a
 * credential (backends put only names, paths, server codes and messages
 * in it); every DONE runs exactly once, never inside the call that
 * submitted it; objstore_wait reports the first error since the previous
 * wait.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "objstore_int.h"

#define DEFAULT_PARALLEL 8

static __thread char open_why[OBJSTORE_WHY_SIZE];

struct objstore_deferred {
    struct objstore_deferred *next;
    objstore_done_fn *done;
    void *arg;
    int rc;
    char why[];
};

int objstore_fail(struct objstore *os, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(os->why, sizeof(os->why), fmt, ap);
    va_end(ap);
    return rc;
}

void objstore_format(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

/* ---- names ---- */

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~' || c == '-';
}

bool objstore_name_ok(const char *name, bool prefix)
{
    size_t n = strlen(name), comp = 0;
    if (n > OBJSTORE_NAME_MAX || (!prefix && n == 0))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c == '/') {
            if (comp == 0)
                return false; /* leading '/' or "//" */
            comp = 0;
            continue;
        }
        if (!name_char_ok(c) || (comp == 0 && c == '.') || ++comp > 255)
            return false;
    }
    return prefix || comp > 0; /* a name does not end in '/' */
}

int objstore_random_hex(char *buf, size_t n)
{
    unsigned char raw[64];
    if (n > sizeof(raw) || RAND_bytes(raw, (int)n) != 1)
        return -EIO;
    for (size_t i = 0; i < n; i++)
        snprintf(buf + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

/* ---- open and close ---- */

static int open_fail(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int open_fail(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(open_why, sizeof(open_why), fmt, ap);
    va_end(ap);
    return rc;
}

static int open_backend(struct objstore *os, const char *target,
                        const struct objstore_opts *o)
{
    if (!strncmp(target, "file://", 7)) {
        if (target[7] != '/')
            return objstore_fail(os, -EINVAL,
                                 "%s: a file:// target is file:///absolute/path",
                                 target);
        return objstore_file_open(os, target + 7);
    }
    if (!strncmp(target, "s3://", 5))
        return objstore_s3_open(os, target + 5, o);
    return objstore_fail(os, -EINVAL,
                         "%s: a target is s3://BUCKET/PREFIX or file:///path",
                         target);
}

int objstore_open(const char *target, const struct objstore_opts *o,
                  struct objstore **out)
{
    static const struct objstore_opts defaults = OBJSTORE_OPTS_INIT;
    struct objstore_opts opts = o ? *o : defaults;
    *out = NULL;
    open_why[0] = 0;
    if (opts.path_style < -1 || opts.path_style > 1)
        return open_fail(-EINVAL, "path_style is -1, 0 or 1, not %d",
                         opts.path_style);
    if (!opts.parallel)
        opts.parallel = DEFAULT_PARALLEL;
    struct objstore *os = calloc(1, sizeof(*os));
    if (!os || !(os->target = strdup(target))) {
        free(os);
        return open_fail(-ENOMEM, "%s: out of memory", target);
    }
    os->parallel = opts.parallel;
    os->deferred_tail = &os->deferred;
    int rc = open_backend(os, target, &opts);
    if (rc < 0) {
        open_fail(rc, "%s", os->why);
        if (os->be)
            os->be->close(os);
        free(os->target);
        free(os);
        return rc;
    }
    *out = os;
    return 0;
}

static void run_deferred(struct objstore *os);

void objstore_close(struct objstore *os)
{
    if (!os)
        return;
    if (!os->in_callback) {
        os->be->drain(os, 0);
        run_deferred(os);
    }
    os->be->close(os);
    free(os->target);
    free(os);
}

const char *objstore_why(const struct objstore *os)
{
    return os ? os->why : open_why;
}

const char *objstore_target(const struct objstore *os)
{
    return os->target;
}

/* ---- the checks before every call ---- */

static int enter(struct objstore *os, const char *name, bool prefix)
{
    if (os->in_callback)
        return objstore_fail(os, -EDEADLK,
                             "a blocking objstore call inside a done callback");
    os->why[0] = 0;
    if (name && !objstore_name_ok(name, prefix))
        return objstore_fail(os, -EINVAL, "'%s' is not a valid object %s", name,
                             prefix ? "prefix" : "name");
    return 0;
}

int objstore_put(struct objstore *os, const char *name, const void *buf,
                 size_t len)
{
    int rc = enter(os, name, false);
    return rc ? rc : os->be->put(os, name, buf, len, false);
}

int objstore_put_if_absent(struct objstore *os, const char *name,
                           const void *buf, size_t len)
{
    int rc = enter(os, name, false);
    return rc ? rc : os->be->put(os, name, buf, len, true);
}

int objstore_get(struct objstore *os, const char *name, void **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    int rc = enter(os, name, false);
    return rc ? rc : os->be->get(os, name, buf, len);
}

static int check_range(struct objstore *os, uint64_t off, size_t len)
{
    if (len && off > UINT64_MAX - len)
        return objstore_fail(os, -EINVAL, "the range [%llu, +%zu) overflows",
                             (unsigned long long)off, len);
    return 0;
}

int objstore_get_range(struct objstore *os, const char *name, uint64_t off,
                       size_t len, void *buf)
{
    int rc = enter(os, name, false);
    if (!rc)
        rc = check_range(os, off, len);
    return rc ? rc : os->be->get_range(os, name, off, len, buf);
}

int objstore_stat(struct objstore *os, const char *name, uint64_t *size)
{
    int rc = enter(os, name, false);
    return rc ? rc : os->be->stat(os, name, size);
}

int objstore_delete(struct objstore *os, const char *name)
{
    int rc = enter(os, name, false);
    return rc ? rc : os->be->del(os, name);
}

int objstore_list(struct objstore *os, const char *prefix, objstore_list_fn *fn,
                  void *arg)
{
    int rc = enter(os, prefix, true);
    return rc ? rc : os->be->list(os, prefix, fn, arg);
}

/* ---- asynchronous transfers ---- */

void objstore_complete(struct objstore *os, objstore_done_fn *done, void *arg,
                       int rc, const char *why)
{
    if (rc < 0 && !os->async_rc) {
        os->async_rc = rc;
        snprintf(os->async_why, sizeof(os->async_why), "%s", why);
    }
    os->in_callback++;
    done(arg, rc);
    os->in_callback--;
}

static void run_deferred(struct objstore *os)
{
    struct objstore_deferred *d;
    while ((d = os->deferred)) {
        os->deferred = d->next;
        if (!os->deferred)
            os->deferred_tail = &os->deferred;
        os->ndeferred--;
        objstore_complete(os, d->done, d->arg, d->rc, d->why);
        free(d);
    }
}

/* A transfer done at submit: its DONE waits in the deferred queue.  With
 * no memory for the queue entry, DONE runs now (the only way to keep the
 * promise that it runs exactly once). */
static void defer_done(struct objstore *os, objstore_done_fn *done, void *arg,
                       int rc)
{
    size_t whylen = rc < 0 ? strlen(os->why) + 1 : 1;
    struct objstore_deferred *d = malloc(sizeof(*d) + whylen);
    if (!d) {
        objstore_complete(os, done, arg, rc, os->why);
        return;
    }
    *d = (struct objstore_deferred){ .done = done, .arg = arg, .rc = rc };
    memcpy(d->why, rc < 0 ? os->why : "", whylen);
    *os->deferred_tail = d;
    os->deferred_tail = &d->next;
    os->ndeferred++;
}

/* Room for one more submit: wait while 2 x parallel are queued.  Inside a
 * DONE nothing waits (the queue may grow by what callbacks submit). */
static void make_room(struct objstore *os)
{
    if (os->in_callback)
        return;
    os->be->drain(os, 2 * os->parallel);
    if (os->ndeferred >= 2 * os->parallel)
        run_deferred(os);
}

static int check_async(struct objstore *os, const char *name,
                       objstore_done_fn *done)
{
    if (!done)
        return objstore_fail(os, -EINVAL, "an async transfer without a done callback");
    if (!objstore_name_ok(name, false))
        return objstore_fail(os, -EINVAL, "'%s' is not a valid object name", name);
    return 0;
}

int objstore_put_async(struct objstore *os, const char *name, const void *buf,
                       size_t len, objstore_done_fn *done, void *arg)
{
    int rc = check_async(os, name, done);
    if (rc)
        return rc;
    make_room(os);
    if (os->be->put_async)
        return os->be->put_async(os, name, buf, len, done, arg);
    defer_done(os, done, arg, os->be->put(os, name, buf, len, false));
    return 0;
}

int objstore_get_async(struct objstore *os, const char *name, uint64_t off,
                       size_t len, void *buf, objstore_done_fn *done, void *arg)
{
    int rc = check_async(os, name, done);
    if (!rc)
        rc = check_range(os, off, len);
    if (rc)
        return rc;
    make_room(os);
    if (os->be->get_async)
        return os->be->get_async(os, name, off, len, buf, done, arg);
    defer_done(os, done, arg, os->be->get_range(os, name, off, len, buf));
    return 0;
}

void objstore_wait_below(struct objstore *os, unsigned limit)
{
    if (os->in_callback)
        return;
    os->be->drain(os, limit ? limit : 1);
    run_deferred(os);
}

int objstore_wait(struct objstore *os)
{
    int rc = enter(os, NULL, false);
    if (rc)
        return rc;
    /* DONEs may submit more (to the backend, or deferred): until a pass
     * finds nothing queued or deferred */
    unsigned ran;
    do {
        os->be->drain(os, 0);
        ran = os->ndeferred;
        run_deferred(os);
    } while (ran);
    rc = os->async_rc;
    if (rc < 0)
        snprintf(os->why, sizeof(os->why), "%s", os->async_why);
    os->async_rc = 0;
    os->async_why[0] = 0;
    return rc;
}
