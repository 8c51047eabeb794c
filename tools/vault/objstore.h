/*
 * objstore.h - the vault's object store: whole objects by name, in an S3
 * bucket (s3://BUCKET/PREFIX, any S3-compatible server, through libcurl
 * with AWS SigV4) or in a local or mounted directory (file:///abs/path,
 * the embedded default, no server).  The repository layer builds packs,
 * indexes and manifests on top of this; nothing here knows their format.
 *
 * Names are relative to the target's prefix: '/'-separated components,
 * each 1 to 255 bytes of [A-Za-z0-9._~-], none starting with '.' (so
 * neither '.' nor '..'), at most OBJSTORE_NAME_MAX bytes in all: the
 * characters that need no escaping in a URL, a path or XML, so that every
 * S3-compatible server and filesystem sees the same name.  An
 * object appears whole or not at all: a reader sees the old content or
 * the new one, never part of either.
 *
 * Every function returns 0 or a negative errno value; objstore_why()
 * gives the detail of the last error (the object, the server's error code
 * and message) and never contains a credential.  The errors each function
 * can return are listed with it; besides those, every call on an s3://
 * store can fail with the transport errors below, after retrying the ones
 * marked (retried) with exponential backoff and jitter, at most `retries`
 * times and never after OBJSTORE_RETRY_WINDOW_MS since the first attempt:
 *   -ETIMEDOUT    (retried) no connection or no progress for `timeout`
 *                 seconds, or the server's RequestTimeout
 *   -ECONNREFUSED (retried) nothing listens at the endpoint
 *   -ECONNRESET   (retried) the connection broke, or the answer was cut
 *   -EHOSTUNREACH (retried) the endpoint's host name does not resolve
 *   -EIO          (retried) the server kept answering 5xx, 429 or SlowDown;
 *                 or an answer that is not S3's (why: the HTTP status)
 *   -EACCES       the server refused the credentials or the request:
 *                 403 (SignatureDoesNotMatch, InvalidAccessKeyId,
 *                 AccessDenied...), ExpiredToken, InvalidToken; or there
 *                 are no credentials at all (why says where they were
 *                 looked for)
 *   -EPROTO       TLS failed (certificate, handshake) or the server's
 *                 answer is malformed
 *   -EINVAL       the server rejected the request as invalid (a 400 other
 *                 than the above; a redirect: the bucket lives in another
 *                 region or at another endpoint)
 *   -ENOENT       the bucket does not exist (NoSuchBucket, why names it)
 *   -ENOMEM       out of memory
 * A file:// store reports the errors of the system calls (-EACCES,
 * -ENOSPC, -EIO, -EROFS, -ENOTDIR, ...), why naming the path.  Unlike a
 * bucket, a directory cannot hold both "a" and "a/b": the second put
 * fails (-ENOTDIR or -EISDIR), so callers should not use a name as both
 * an object and a directory.
 *
 * A handle is used by one thread at a time.  Asynchronous transfers
 * complete on that thread: their done callback runs inside
 * objstore_wait() or inside any later call on the handle that waits for
 * the network, never inside the call that submitted it.  A done callback
 * may submit more asynchronous transfers but may not call the blocking
 * functions (they return -EDEADLK there).
 */
#ifndef SNAPFS_OBJSTORE_H
#define SNAPFS_OBJSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OBJSTORE_NAME_MAX 900          /* bytes of a name, prefix not counted */
#define OBJSTORE_PART_SIZE (16u << 20) /* s3: larger objects go multipart */
#define OBJSTORE_RETRY_WINDOW_MS 300000u /* s3: no retry begins after this */

struct objstore;

struct objstore_opts {
    /* s3: "http://host:port" or "https://host[:port]" ("host[:port]"
     * means https); NULL: AWS, https://s3.REGION.amazonaws.com */
    const char *endpoint;
    /* s3: NULL: AWS_REGION, AWS_DEFAULT_REGION, the profile's region in
     * AWS_CONFIG_FILE or ~/.aws/config, else us-east-1 */
    const char *region;
    /* s3: 1 path-style (ENDPOINT/BUCKET/KEY), 0 virtual-host
     * (BUCKET.ENDPOINT/KEY), -1 auto: path-style when an endpoint is given
     * or the bucket's name has a dot, else virtual-host */
    int path_style;
    /* s3: the profile of the credentials and config files; NULL: the
     * environment's keys if AWS_ACCESS_KEY_ID is set, else AWS_PROFILE,
     * else "default" */
    const char *profile;
    unsigned parallel; /* s3: requests in flight at most; 0: 8 */
    unsigned retries;  /* s3: retries of one request at most; 0: 5 */
    unsigned timeout;  /* s3: seconds without progress; 0: 30 */
    /* s3 over https: the CA certificates (PEM) that vouch for the
     * endpoint, for a private CA; NULL: the system's */
    const char *ca_file;
};
/* The defaults: what a NULL opts means. */
#define OBJSTORE_OPTS_INIT { .path_style = -1 }

/*
 * Open TARGET: "s3://BUCKET" or "s3://BUCKET/PREFIX" or "file:///abs/path".
 * O may be NULL (the defaults).  For s3:// the credentials and region are
 * read (environment, AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials,
 * AWS_CONFIG_FILE or ~/.aws/config) and one listing request checks the
 * bucket, the credentials and the region.  A file:// directory need not
 * exist yet: it is made by the first put.  On failure *OUT is NULL and
 * objstore_why(NULL) says why (per thread).
 *   -EINVAL   TARGET or an option is malformed (why says which)
 *   -ENOTDIR  file://: the path, or a directory on it, is not a directory
 *   -EACCES   s3: no credentials, or the server refused them
 *   -ENOENT   s3: no such bucket
 *   and the transport errors above.
 */
int objstore_open(const char *target, const struct objstore_opts *o,
                  struct objstore **out);

/* Wait for the asynchronous transfers still running (as objstore_wait, its
 * result lost), release everything, forget the credentials.  NULL is a
 * no-op.  Never from a done callback. */
void objstore_close(struct objstore *os);

/* The detail of the last error on OS (NULL: of the last failed
 * objstore_open on this thread); "" if there was none.  Valid until the
 * next call on OS. */
const char *objstore_why(const struct objstore *os);

/* The target as given to objstore_open, for messages. */
const char *objstore_target(const struct objstore *os);

/*
 * Store LEN bytes of BUF as NAME, replacing an object of that name.  The
 * object appears whole or not at all (file://: a temporary file written,
 * fsynced, renamed, the directory fsynced; s3: a single PUT, or above
 * OBJSTORE_PART_SIZE a multipart upload, aborted if it fails).
 *   -EINVAL   NAME is not a valid name
 *   -EFBIG    s3: LEN is beyond S3's 5 TiB
 *   -EDEADLK  called from a done callback
 */
int objstore_put(struct objstore *os, const char *name, const void *buf,
                 size_t len);

/*
 * As objstore_put, but only if no object NAME exists: the building block
 * of "create once" objects.  s3: `If-None-Match: *` (AWS since 2024,
 * MinIO, recent Ceph); a server that does not implement it says so
 * (-EOPNOTSUPP), but some servers silently ignore the header and replace
 * the object (s3rver does): objstore_lock below is built on plain puts
 * and a listing so that it is correct on every server.  A put retried
 * after its first attempt succeeded unseen (the answer lost) reports
 * -EEXIST: a caller that must know reads the object back.
 *   -EEXIST      an object NAME exists (412 PreconditionFailed)
 *   -EOPNOTSUPP  the server does not implement conditional writes
 *   -EINVAL, -EFBIG, -EDEADLK as objstore_put
 */
int objstore_put_if_absent(struct objstore *os, const char *name,
                           const void *buf, size_t len);

/*
 * Read the whole object NAME into a new buffer *BUF (malloc'd, the caller
 * frees it; not NUL-terminated) of *LEN bytes.
 *   -ENOENT   no object NAME
 *   -EINVAL   NAME is not a valid name
 *   -EDEADLK  called from a done callback
 */
int objstore_get(struct objstore *os, const char *name, void **buf, size_t *len);

/*
 * Read LEN bytes of object NAME from offset OFF into BUF.
 *   -ENOENT   no object NAME
 *   -ERANGE   the object ends before OFF + LEN (BUF's content unspecified)
 *   -EINVAL   NAME is not a valid name, or OFF + LEN overflows
 *   -EDEADLK  called from a done callback
 */
int objstore_get_range(struct objstore *os, const char *name, uint64_t off,
                       size_t len, void *buf);

/*
 * The size of object NAME in *SIZE.
 *   -ENOENT   no object NAME
 *   -EINVAL, -EDEADLK as objstore_get
 */
int objstore_stat(struct objstore *os, const char *name, uint64_t *size);

/*
 * Delete object NAME; an object that does not exist is deleted already (0).
 *   -EINVAL, -EDEADLK as objstore_get
 */
int objstore_delete(struct objstore *os, const char *name);

/*
 * Call FN(ARG, NAME, SIZE) for every object whose name begins with PREFIX
 * ("" for all; a prefix need not end at a '/'), names relative to the
 * target as everywhere.  Order: s3 lists in byte order, file:// in
 * directory order; callers must not rely on it.  s3 follows every page
 * (ListObjectsV2 continuation tokens); file:// walks the tree, skipping
 * names that start with '.' (its temporary files among them).  An
 * object put or deleted while the listing runs may or may not be listed.
 * FN returning non-zero stops the listing, which returns that value.
 *   -EINVAL   PREFIX cannot begin a valid name
 *   -EDEADLK  called from a done callback
 */
typedef int objstore_list_fn(void *arg, const char *name, uint64_t size);
int objstore_list(struct objstore *os, const char *prefix,
                  objstore_list_fn *fn, void *arg);

/*
 * Asynchronous put and ranged get: BUF stays the caller's, untouched (put)
 * or filled (get), until DONE(ARG, RC) runs with what the blocking call
 * would have returned.  At most `parallel` requests are in flight (file://
 * writes puts on a thread of its own, in order, and does gets at once;
 * DONE runs on the caller's thread in both); a submit waits while 2 x
 * `parallel` transfers are already queued, running earlier DONEs then.
 * The submit itself fails only with -EINVAL (bad name, DONE NULL, the
 * range overflows), -EFBIG (s3: beyond 5 TiB) or -ENOMEM, and then DONE
 * never runs.
 */
typedef void objstore_done_fn(void *arg, int rc);
int objstore_put_async(struct objstore *os, const char *name, const void *buf,
                       size_t len, objstore_done_fn *done, void *arg);
int objstore_get_async(struct objstore *os, const char *name, uint64_t off,
                       size_t len, void *buf, objstore_done_fn *done, void *arg);

/*
 * Run until every asynchronous transfer has completed and its DONE has
 * run.  Returns the first error of those completed since the previous
 * objstore_wait (objstore_why tells which), or 0.
 *   -EDEADLK  called from a done callback
 */
int objstore_wait(struct objstore *os);
/* Run until fewer than LIMIT (at least 1) asynchronous transfers are
 * queued or running, the DONE of those ended run; their errors are kept
 * for objstore_wait.  Nothing inside a done callback. */
void objstore_wait_below(struct objstore *os, unsigned limit);

/*
 * Locks: exclusive (one writer) or shared (many, none while an exclusive
 * lock is held) over a vault, for the repository layer.  A lock is an
 * object DIR/ID (ID random) holding the holder's description and the
 * time it was last refreshed.  objstore_lock looks for a conflicting
 * fresh lock in DIR (and fails if there is one), writes its own, and
 * looks again: if one conflicts now, its own is deleted again and the
 * call fails.  Two lockers racing may both fail,
 * never both succeed (S3 has read-after-write and list-after-write
 * consistency since 2020, as MinIO, Ceph and moto do).  A lock not
 * refreshed for STALE_SECONDS (by the locker's clock; the hosts' clocks
 * must agree to well within it) is stale: it is ignored and deleted.  The
 * holder must call objstore_lock_refresh more often than that.
 */
struct objstore_lock;

/*
 * Take a lock in directory DIR (a name, e.g. "locks"); HOLDER describes
 * the holder for other lockers' messages (e.g. "host pid 42: backup").
 *   -EBUSY    a conflicting fresh lock is held; why names its holder,
 *             its age and its object
 *   -EINVAL   DIR is not a valid name, STALE_SECONDS is 0
 *   -EDEADLK  called from a done callback
 */
int objstore_lock(struct objstore *os, const char *dir, bool exclusive,
                  const char *holder, unsigned stale_seconds,
                  struct objstore_lock **out);

/* Write the lock again with the current time.
 *   -ESTALE   the lock object is gone (another locker found it stale and
 *             deleted it): the holder must stop writing */
int objstore_lock_refresh(struct objstore_lock *lock);

/* Delete the lock object and free LOCK (NULL: no-op).  Returns the
 * delete's result; LOCK is freed in every case. */
int objstore_unlock(struct objstore_lock *lock);

#endif
