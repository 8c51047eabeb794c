/*
 * objstore_int.h - private to the objstore files: the backend interface
 * that objstore.c dispatches to, the handle's common part, and the
 * helpers every backend uses to report errors and complete asynchronous
 * transfers.
 */
#ifndef SNAPFS_OBJSTORE_INT_H
#define SNAPFS_OBJSTORE_INT_H

#include "objstore.h"

#define OBJSTORE_WHY_SIZE 1024

struct objstore_backend {
    int (*put)(struct objstore *os, const char *name, const void *buf,
               size_t len, bool if_absent);
    int (*get)(struct objstore *os, const char *name, void **buf, size_t *len);
    int (*get_range)(struct objstore *os, const char *name, uint64_t off,
                     size_t len, void *buf);
    int (*stat)(struct objstore *os, const char *name, uint64_t *size);
    int (*del)(struct objstore *os, const char *name);
    int (*list)(struct objstore *os, const char *prefix, objstore_list_fn *fn,
                void *arg);
    /* NULL: done at once by put/get_range, DONE deferred (objstore.c) */
    int (*put_async)(struct objstore *os, const char *name, const void *buf,
                     size_t len, objstore_done_fn *done, void *arg);
    int (*get_async)(struct objstore *os, const char *name, uint64_t off,
                     size_t len, void *buf, objstore_done_fn *done, void *arg);
    /* run until the queue is shorter than LIMIT transfers (0: empty) */
    void (*drain)(struct objstore *os, unsigned limit);
    void (*close)(struct objstore *os);
};

struct objstore_deferred; /* a finished file:// transfer whose DONE waits */

struct objstore {
    const struct objstore_backend *be;
    void *priv;               /* the backend's state */
    char *target;
    unsigned parallel;
    int in_callback;          /* > 0 while a DONE runs */
    int async_rc;             /* first error since the last wait */
    char async_why[OBJSTORE_WHY_SIZE];
    struct objstore_deferred *deferred, **deferred_tail;
    unsigned ndeferred;
    char why[OBJSTORE_WHY_SIZE];
};

/* Set OS's why from FMT and return RC (a negative errno). */
int objstore_fail(struct objstore *os, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* snprintf into BUF, cut to SIZE (messages may be cut, never overrun). */
void objstore_format(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* An asynchronous transfer ended with RC (WHY its detail when RC < 0):
 * remember the first error for objstore_wait, then run DONE. */
void objstore_complete(struct objstore *os, objstore_done_fn *done, void *arg,
                       int rc, const char *why);

/* Is NAME a valid name (PREFIX: the beginning of one, "" allowed)? */
bool objstore_name_ok(const char *name, bool prefix);

/* Fill BUF with 2*N random hex digits and a NUL (OpenSSL's RAND_bytes). */
int objstore_random_hex(char *buf, size_t n);

/* The backends' constructors: TARGET's scheme removed (FILE: the absolute
 * path; S3: "BUCKET[/PREFIX]"), O with the defaults filled in. */
int objstore_file_open(struct objstore *os, const char *path);
int objstore_s3_open(struct objstore *os, const char *bucket_prefix,
                     const struct objstore_opts *o);

#endif
