/*
 * objstore_s3.c - the s3:// backend: the objstore operations as S3
 * requests (objstore_s3req.c runs them): PUT, multipart upload, GET (whole
 * or a range), HEAD, DELETE, ListObjectsV2; the target, endpoint and
 * addressing style; the bucket check at open.
 *
 * Object NAME is the key PREFIX/NAME.  Path-style URLs are
 * ENDPOINT/BUCKET/KEY, virtual-host ones BUCKET.ENDPOINT/KEY.
 *
 * Guarantees: an object appears whole or not at all: one PUT up to
 * OBJSTORE_PART_SIZE, above it a multipart upload of parts of that size
 * (more if 10000 parts would not hold it) of which at most `parallel`
 * are in flight, completed only when every part is stored, and aborted
 * (its parts deleted) when anything fails; every payload is signed with
 * its SHA-256, so a body damaged in transit is refused by the server.
 * A listing follows every page (continuation tokens).  A range read
 * delivers exactly the bytes asked for or -ERANGE.  Memory: a listing
 * page at most S3_LISTBODY_MAX; uploads and ranged reads work in the
 * caller's buffer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "objstore_s3.h"

#define S3_MAX_PARTS 10000
#define S3_MAX_OBJECT (5ull << 40)
#define UPLOAD_ID_MAX 1024
#define ETAG_MAX 128
_Static_assert(sizeof(((struct s3_req *)0)->etag) == ETAG_MAX, "ETags fit");
#define DEFAULT_RETRIES 5
#define DEFAULT_TIMEOUT 30

static struct s3 *s3_of(struct objstore *os)
{
    return os->priv;
}

/* ---- transfers: what the asynchronous calls and their blocking twins share ---- */

struct xfer {
    struct s3 *s3;
    objstore_done_fn *done;
    void *arg;
    bool sync; /* a blocking call waits: no async error recorded */
};

static void xfer_begin(struct xfer *x, struct s3 *s3, objstore_done_fn *done, void *arg,
                       bool sync)
{
    *x = (struct xfer){ .s3 = s3, .done = done, .arg = arg, .sync = sync };
    s3->transfers++;
}

static void xfer_end(const struct xfer *x, int rc, const char *why)
{
    struct objstore *os = x->s3->os;
    x->s3->transfers--;
    if (!x->sync) {
        objstore_complete(os, x->done, x->arg, rc, why);
        return;
    }
    if (rc < 0)
        objstore_fail(os, rc, "%s", why);
    x->done(x->arg, rc);
}

struct sync_wait {
    bool done;
    int rc;
};

static void sync_done(void *arg, int rc)
{
    struct sync_wait *w = arg;
    w->done = true;
    w->rc = rc;
}

static bool sync_finished(void *arg)
{
    return ((struct sync_wait *)arg)->done;
}

/* ---- one-request transfers: a PUT, a ranged GET ---- */

struct single {
    struct xfer x;
    uint64_t want; /* a ranged GET: the bytes it must bring */
    uint64_t off;
};

static void single_put_finished(struct s3_req *r)
{
    struct single *s = r->ctx;
    if (r->rc == -EEXIST)
        s3req_say(r, "exists already");
    xfer_end(&s->x, r->rc, r->why);
    free(s);
    s3req_free(r);
}

static void range_finished(struct s3_req *r)
{
    struct single *s = r->ctx;
    int rc = r->rc;
    uint64_t size = r->content_length < 0 ? 0 : (uint64_t)r->content_length;
    bool head = !strcmp(r->method, "HEAD");
    if (!rc && ((head && s->off > size) || (!head && r->out_len != s->want))) {
        rc = -ERANGE;
        s3req_say(r, "no range [%" PRIu64 ", +%" PRIu64 ") in it", s->off, s->want);
    } else if (rc == -ERANGE) {
        objstore_format(r->why + strlen(r->why), sizeof(r->why) - strlen(r->why),
                        " (the range [%" PRIu64 ", +%" PRIu64 ") is not in it)", s->off, s->want);
    }
    xfer_end(&s->x, rc, r->why);
    free(s);
    s3req_free(r);
}

static int start_single(struct s3_req *r, struct single *s, void (*finished)(struct s3_req *))
{
    if (!r || !s) {
        free(s);
        s3req_free(r);
        return -ENOMEM;
    }
    r->ctx = s;
    r->finish = finished;
    s3req_submit(r);
    return 0;
}

static int put_single(struct s3 *s3, const char *name, const void *buf, size_t len,
                      bool if_absent, objstore_done_fn *done, void *arg, bool sync)
{
    struct s3_req *r = s3req_new(s3, "PUT", name, NULL);
    struct single *s = calloc(1, sizeof(*s));
    if (r) {
        r->body = buf;
        r->body_len = len;
        r->content_type = "application/octet-stream";
        r->if_none_match = if_absent;
    }
    if (s)
        xfer_begin(&s->x, s3, done, arg, sync);
    int rc = start_single(r, s, single_put_finished);
    if (rc && s)
        s3->transfers--;
    return rc;
}

static int get_range(struct s3 *s3, const char *name, uint64_t off, size_t len, void *buf,
                     objstore_done_fn *done, void *arg, bool sync)
{
    /* nothing to read: a HEAD says whether the object and OFF exist */
    struct s3_req *r = s3req_new(s3, len ? "GET" : "HEAD", name, NULL);
    struct single *s = calloc(1, sizeof(*s));
    if (r && len) {
        snprintf(r->range, sizeof(r->range), "%" PRIu64 "-%" PRIu64, off, off + len - 1);
        r->range_off = off;
        r->out = buf;
        r->out_cap = len;
        r->out_fixed = true;
    }
    if (s) {
        s->want = len;
        s->off = off;
        xfer_begin(&s->x, s3, done, arg, sync);
    }
    int rc = start_single(r, s, range_finished);
    if (rc && s)
        s3->transfers--;
    return rc;
}

/* ---- multipart upload ---- */

struct upload {
    struct xfer x;
    char name[OBJSTORE_NAME_MAX + 1];
    const char *buf;
    size_t len, part_size;
    unsigned nparts, submitted, running, finished;
    bool if_absent;
    char upload_id[UPLOAD_ID_MAX];
    char (*etags)[ETAG_MAX];
    char *complete_body;
    int rc;
    char why[OBJSTORE_WHY_SIZE];
};

static void upload_end(struct upload *u)
{
    xfer_end(&u->x, u->rc, u->why);
    free(u->etags);
    free(u->complete_body);
    free(u);
}

/* The first error of the upload is the one reported. */
static void upload_failed(struct upload *u, int rc, const char *why)
{
    if (u->rc)
        return;
    u->rc = rc;
    objstore_format(u->why, sizeof(u->why), "%s", why);
}

static void upload_oom(struct upload *u)
{
    char why[OBJSTORE_WHY_SIZE];
    objstore_format(why, sizeof(why), "%s: %s: out of memory", u->x.s3->os->target, u->name);
    upload_failed(u, -ENOMEM, why);
}

/* A request of upload U with the query "[partNumber=N&]uploadId=ID". */
static struct s3_req *upload_req(struct upload *u, const char *method, unsigned part,
                                 void (*finished)(struct s3_req *))
{
    char query[3 * UPLOAD_ID_MAX + 64];
    size_t len = part ? (size_t)snprintf(query, sizeof(query), "partNumber=%u&", part) : 0;
    len += (size_t)snprintf(query + len, sizeof(query) - len, "uploadId=");
    if (!s3_uri_encode(query, sizeof(query), &len, u->upload_id, false))
        return NULL;
    struct s3_req *r = s3req_new(u->x.s3, method, u->name, query);
    if (r) {
        r->ctx = u;
        r->finish = finished;
    }
    return r;
}

static void aborted(struct s3_req *r)
{
    struct upload *u = r->ctx;
    s3req_free(r);
    upload_end(u);
}

/* Abort the upload (its parts are deleted), then end with its error. */
static void upload_abort(struct upload *u)
{
    struct s3_req *r = upload_req(u, "DELETE", 0, aborted);
    if (!r) {
        upload_end(u); /* the parts stay until the bucket's lifecycle rules */
        return;
    }
    s3req_submit(r);
}

/* After a retried CompleteMultipartUpload was told NoSuchUpload: the
 * first attempt may have completed it unseen.  The object there with the
 * upload's size is the upload's; anything else keeps the error. */
static void completion_checked(struct s3_req *r)
{
    struct upload *u = r->ctx;
    if (!r->rc && r->content_length == (curl_off_t)u->len)
        u->rc = 0;
    s3req_free(r);
    upload_end(u); /* the upload is gone: nothing to abort */
}

static bool completed_unseen(struct upload *u, struct s3_req *r)
{
    if (r->rc != -ENOENT || strcmp(r->code, "NoSuchUpload") || r->attempt < 2)
        return false;
    struct s3_req *head = s3req_new(u->x.s3, "HEAD", u->name, NULL);
    if (!head)
        return false;
    head->ctx = u;
    head->finish = completion_checked;
    s3req_submit(head);
    return true;
}

static void completed(struct s3_req *r)
{
    struct upload *u = r->ctx;
    if (r->rc == -EEXIST)
        s3req_say(r, "exists already");
    if (r->rc)
        upload_failed(u, r->rc, r->why);
    bool checking = completed_unseen(u, r);
    s3req_free(r);
    if (checking)
        return;
    if (u->rc)
        upload_abort(u);
    else
        upload_end(u);
}

static bool xml_escape_ok(const char *s)
{
    return !strpbrk(s, "<>&");
}

static void upload_complete(struct upload *u)
{
    size_t size = 128 + (size_t)u->nparts * (ETAG_MAX + 64), len = 0;
    u->complete_body = malloc(size);
    struct s3_req *r = u->complete_body ? upload_req(u, "POST", 0, completed) : NULL;
    if (!r) {
        upload_oom(u);
        upload_abort(u);
        return;
    }
    len += (size_t)snprintf(u->complete_body, size, "<CompleteMultipartUpload>");
    for (unsigned i = 0; i < u->nparts; i++)
        len += (size_t)snprintf(u->complete_body + len, size - len,
                                "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>", i + 1,
                                u->etags[i]);
    len += (size_t)snprintf(u->complete_body + len, size - len, "</CompleteMultipartUpload>");
    r->body = u->complete_body;
    r->body_len = len;
    r->content_type = "application/xml";
    r->if_none_match = u->if_absent;
    s3req_submit(r);
}

static bool submit_part(struct upload *u);

/* No part of U runs any more: complete it, or abort it on an error. */
static void parts_over(struct upload *u)
{
    if (u->rc)
        upload_abort(u);
    else
        upload_complete(u);
}

static void part_finished(struct s3_req *r)
{
    struct upload *u = r->ctx;
    unsigned part = (unsigned)((r->body - u->buf) / u->part_size);
    if (!r->rc && (!r->etag[0] || !xml_escape_ok(r->etag))) {
        s3req_say(r, "part %u: no usable ETag in the answer", part + 1);
        r->rc = -EPROTO;
    }
    if (r->rc)
        upload_failed(u, r->rc, r->why);
    else
        memcpy(u->etags[part], r->etag, ETAG_MAX);
    s3req_free(r);
    u->running--;
    u->finished++;
    if (!u->rc && u->submitted < u->nparts)
        submit_part(u);
    if (!u->running)
        parts_over(u);
}

/* Submit U's next part; false (U's error set) when out of memory. */
static bool submit_part(struct upload *u)
{
    unsigned i = u->submitted;
    struct s3_req *r = upload_req(u, "PUT", i + 1, part_finished);
    if (!r) {
        upload_oom(u);
        return false;
    }
    u->submitted++;
    u->running++;
    r->body = u->buf + (size_t)i * u->part_size;
    r->body_len = i + 1 < u->nparts ? u->part_size : u->len - (size_t)i * u->part_size;
    s3req_submit(r);
    return true;
}

static void initiated(struct s3_req *r)
{
    struct upload *u = r->ctx;
    bool got_id = !r->rc && r->out &&
                  xml_text(r->out, r->out + r->out_len, "UploadId", u->upload_id,
                           sizeof(u->upload_id)) && u->upload_id[0];
    if (r->rc) {
        upload_failed(u, r->rc, r->why);
    } else if (!got_id) {
        s3req_say(r, "no UploadId in the answer");
        upload_failed(u, -EPROTO, r->why);
    }
    s3req_free(r);
    if (u->rc) {
        upload_end(u); /* nothing to abort */
        return;
    }
    for (unsigned i = 0; i < u->x.s3->parallel && u->submitted < u->nparts; i++)
        if (!submit_part(u))
            break;
    if (!u->running)
        parts_over(u);
}

static size_t part_size_for(size_t len)
{
    size_t ps = OBJSTORE_PART_SIZE;
    if (len / ps >= S3_MAX_PARTS)
        ps = ((len / S3_MAX_PARTS) | ((1u << 20) - 1)) + 1; /* whole MiB */
    return ps;
}

static int put_multipart(struct s3 *s3, const char *name, const void *buf, size_t len,
                         bool if_absent, objstore_done_fn *done, void *arg, bool sync)
{
    struct upload *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    snprintf(u->name, sizeof(u->name), "%s", name);
    u->buf = buf;
    u->len = len;
    u->part_size = part_size_for(len);
    u->nparts = (unsigned)((len + u->part_size - 1) / u->part_size);
    u->if_absent = if_absent;
    u->etags = calloc(u->nparts, ETAG_MAX);
    struct s3_req *r = u->etags ? s3req_new(s3, "POST", name, "uploads=") : NULL;
    if (!r) {
        free(u->etags);
        free(u);
        return -ENOMEM;
    }
    xfer_begin(&u->x, s3, done, arg, sync);
    r->ctx = u;
    r->finish = initiated;
    r->content_type = "application/octet-stream";
    s3req_submit(r);
    return 0;
}

static int start_put(struct s3 *s3, const char *name, const void *buf, size_t len,
                     bool if_absent, objstore_done_fn *done, void *arg, bool sync)
{
    if ((uint64_t)len > S3_MAX_OBJECT)
        return objstore_fail(s3->os, -EFBIG, "%s: %s: %zu bytes is beyond S3's 5 TiB",
                             s3->os->target, name, len);
    int rc = len > OBJSTORE_PART_SIZE
                 ? put_multipart(s3, name, buf, len, if_absent, done, arg, sync)
                 : put_single(s3, name, buf, len, if_absent, done, arg, sync);
    if (rc == -ENOMEM)
        objstore_fail(s3->os, rc, "%s: %s: out of memory", s3->os->target, name);
    return rc;
}

/* ---- the backend's calls ---- */

static int s3_put(struct objstore *os, const char *name, const void *buf, size_t len,
                  bool if_absent)
{
    struct sync_wait w = { 0 };
    int rc = start_put(s3_of(os), name, buf, len, if_absent, sync_done, &w, true);
    if (rc)
        return rc;
    s3_drive(s3_of(os), sync_finished, &w);
    return w.rc;
}

static int s3_put_async(struct objstore *os, const char *name, const void *buf, size_t len,
                        objstore_done_fn *done, void *arg)
{
    return start_put(s3_of(os), name, buf, len, false, done, arg, false);
}

static int s3_get_range(struct objstore *os, const char *name, uint64_t off, size_t len,
                        void *buf)
{
    struct sync_wait w = { 0 };
    int rc = get_range(s3_of(os), name, off, len, buf, sync_done, &w, true);
    if (rc)
        return objstore_fail(os, rc, "%s: %s: out of memory", os->target, name);
    s3_drive(s3_of(os), sync_finished, &w);
    return w.rc;
}

static int s3_get_async(struct objstore *os, const char *name, uint64_t off, size_t len,
                        void *buf, objstore_done_fn *done, void *arg)
{
    int rc = get_range(s3_of(os), name, off, len, buf, done, arg, false);
    return rc ? objstore_fail(os, rc, "%s: %s: out of memory", os->target, name) : 0;
}

static int oom(struct objstore *os, const char *name)
{
    return objstore_fail(os, -ENOMEM, "%s: %s: out of memory", os->target, name);
}

static int s3_get(struct objstore *os, const char *name, void **buf, size_t *len)
{
    struct s3_req *r = s3req_new(s3_of(os), "GET", name, NULL);
    if (!r)
        return oom(os, name);
    r->out_max = SIZE_MAX - 1;
    int rc = s3req_run(r);
    if (!rc && !r->out && !(r->out = malloc(1)))
        rc = oom(os, name);
    if (!rc) {
        *buf = r->out;
        *len = r->out_len;
        r->out = NULL;
    }
    s3req_free(r);
    return rc;
}

static int s3_stat(struct objstore *os, const char *name, uint64_t *size)
{
    struct s3_req *r = s3req_new(s3_of(os), "HEAD", name, NULL);
    if (!r)
        return oom(os, name);
    int rc = s3req_run(r);
    if (!rc && r->content_length < 0)
        rc = objstore_fail(os, -EPROTO, "%s: %s: HEAD: no Content-Length in the answer",
                           os->target, name);
    if (!rc)
        *size = (uint64_t)r->content_length;
    s3req_free(r);
    return rc;
}

static int s3_del(struct objstore *os, const char *name)
{
    struct s3_req *r = s3req_new(s3_of(os), "DELETE", name, NULL);
    if (!r)
        return oom(os, name);
    int rc = s3req_run(r);
    if (rc == -ENOENT && strcmp(r->code, "NoSuchBucket"))
        rc = 0; /* S3 itself answers 204 for a missing key; some servers 404 */
    s3req_free(r);
    return rc;
}

/* ---- listing ---- */

/* ListObjectsV2's query for keys beginning with KEY_PREFIX, from TOKEN
 * ("" for the first page); MAX_KEYS 0 for the server's default.  The
 * parameters in canonical order. */
static bool list_query(char *q, size_t size, const char *key_prefix, const char *token,
                       unsigned max_keys)
{
    size_t len = 0;
    if (*token) {
        len = (size_t)snprintf(q, size, "continuation-token=");
        if (!s3_uri_encode(q, size, &len, token, false) || len + 1 >= size)
            return false;
        q[len++] = '&';
    }
    int n = max_keys ? snprintf(q + len, size - len, "list-type=2&max-keys=%u&prefix=", max_keys)
                     : snprintf(q + len, size - len, "list-type=2&prefix=");
    if (n < 0 || (size_t)n >= size - len)
        return false;
    len += (size_t)n;
    return s3_uri_encode(q, size, &len, key_prefix, false);
}

/* Call FN for each <Contents> of the page [P, END); non-zero stops. */
static int list_page(struct s3 *s3, const char *p, const char *end, objstore_list_fn *fn,
                     void *arg)
{
    size_t skip = *s3->prefix ? strlen(s3->prefix) + 1 : 0;
    const char *in, *in_end;
    while (xml_next(&p, end, "Contents", &in, &in_end)) {
        char key[2 * S3_KEY_MAX], size[32];
        if (!xml_text(in, in_end, "Key", key, sizeof(key)) ||
            !xml_text(in, in_end, "Size", size, sizeof(size)))
            return objstore_fail(s3->os, -EPROTO, "%s: listing: a <Contents> without Key or Size",
                                 s3->os->target);
        if (strlen(key) <= skip || strncmp(key, s3->prefix, skip ? skip - 1 : 0) ||
            (skip && key[skip - 1] != '/'))
            continue;
        int rc = fn(arg, key + skip, strtoull(size, NULL, 10));
        if (rc)
            return rc;
    }
    return 0;
}

/* Read page TOKEN of the listing; the next page's token in TOKEN ("" if
 * it was the last). */
static int list_one_page(struct s3 *s3, const char *key_prefix, char *token, size_t tokensz,
                         objstore_list_fn *fn, void *arg)
{
    char query[4 * S3_KEY_MAX + 3 * 1024 + 64];
    struct s3_req *r = list_query(query, sizeof(query), key_prefix, token, 0)
                           ? s3req_new(s3, "GET", NULL, query) : NULL;
    if (!r)
        return objstore_fail(s3->os, -ENOMEM, "%s: listing: out of memory", s3->os->target);
    r->out_max = S3_LISTBODY_MAX;
    int rc = s3req_run(r);
    const char *body = r->out ? r->out : "", *end = body + r->out_len;
    char truncated[8] = "";
    if (!rc)
        rc = list_page(s3, body, end, fn, arg);
    if (!rc && xml_text(body, end, "IsTruncated", truncated, sizeof(truncated)) &&
        !strcmp(truncated, "true")) {
        if (!xml_text(body, end, "NextContinuationToken", token, tokensz) || !*token)
            rc = objstore_fail(s3->os, -EPROTO,
                               "%s: listing: truncated without a continuation token",
                               s3->os->target);
    } else {
        *token = 0;
    }
    s3req_free(r);
    return rc;
}

static int s3_list(struct objstore *os, const char *prefix, objstore_list_fn *fn, void *arg)
{
    struct s3 *s3 = s3_of(os);
    char key_prefix[S3_KEY_MAX + 2], token[1024] = "";
    snprintf(key_prefix, sizeof(key_prefix), "%s%s%s", s3->prefix, *s3->prefix ? "/" : "",
             prefix);
    int rc;
    do
        rc = list_one_page(s3, key_prefix, token, sizeof(token), fn, arg);
    while (!rc && *token);
    return rc;
}

/* ---- open and close ---- */

struct drain_until {
    struct s3 *s3;
    unsigned limit;
};

static bool drained(void *arg)
{
    struct drain_until *d = arg;
    return d->limit ? d->s3->transfers < d->limit : d->s3->transfers == 0;
}

static void s3_drain(struct objstore *os, unsigned limit)
{
    struct drain_until d = { s3_of(os), limit };
    s3_drive(d.s3, drained, &d);
}

static void s3_close(struct objstore *os)
{
    struct s3 *s3 = s3_of(os);
    if (!s3)
        return;
    if (s3->multi)
        curl_multi_cleanup(s3->multi);
    OPENSSL_cleanse(&s3->creds, sizeof(s3->creds));
    free(s3->ca_file);
    free(s3);
}

static const struct objstore_backend s3_backend = {
    .put = s3_put,
    .get = s3_get,
    .get_range = s3_get_range,
    .stat = s3_stat,
    .del = s3_del,
    .list = s3_list,
    .put_async = s3_put_async,
    .get_async = s3_get_async,
    .drain = s3_drain,
    .close = s3_close,
};

static bool bucket_ok(const char *b, size_t len)
{
    if (len < 1 || len > 63)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_", b[i]))
            return false;
    return true;
}

/* "BUCKET[/PREFIX]" into the store: -EINVAL if malformed. */
static int parse_target(struct s3 *s3, const char *bp)
{
    size_t blen = strcspn(bp, "/");
    if (!bucket_ok(bp, blen))
        return objstore_fail(s3->os, -EINVAL, "%s: not a bucket name: s3://BUCKET/PREFIX",
                             s3->os->target);
    memcpy(s3->bucket, bp, blen);
    s3->bucket[blen] = 0;
    const char *prefix = bp[blen] ? bp + blen + 1 : "";
    size_t plen = strlen(prefix);
    while (plen && prefix[plen - 1] == '/')
        plen--;
    if (plen + 2 + OBJSTORE_NAME_MAX > S3_KEY_MAX)
        return objstore_fail(s3->os, -EINVAL, "%s: the prefix is too long (%zu bytes at most)",
                             s3->os->target, (size_t)(S3_KEY_MAX - 2 - OBJSTORE_NAME_MAX));
    memcpy(s3->prefix, prefix, plen);
    s3->prefix[plen] = 0;
    if (plen && !objstore_name_ok(s3->prefix, false))
        return objstore_fail(s3->os, -EINVAL, "%s: the prefix is not a valid name",
                             s3->os->target);
    return 0;
}

/* The base URL from the endpoint (NULL: AWS in REGION) and the style. */
static int parse_endpoint(struct s3 *s3, const char *endpoint, const char *region,
                          int path_style)
{
    const char *scheme = "https", *host = endpoint;
    char aws[128];
    if (!endpoint) {
        snprintf(aws, sizeof(aws), "s3.%s.amazonaws.com", region);
        host = aws;
    } else if (!strncmp(endpoint, "http://", 7) || !strncmp(endpoint, "https://", 8)) {
        scheme = endpoint[4] == 's' ? "https" : "http";
        host = strstr(endpoint, "://") + 3;
    } else if (strstr(endpoint, "://")) {
        return objstore_fail(s3->os, -EINVAL, "endpoint %s: only http:// and https://", endpoint);
    }
    size_t hlen = strlen(host);
    while (hlen && host[hlen - 1] == '/')
        hlen--;
    if (!hlen || hlen > 255 || memchr(host, '/', hlen) || memchr(host, '@', hlen))
        return objstore_fail(s3->os, -EINVAL, "endpoint %s: not http[s]://HOST[:PORT]",
                             endpoint);
    s3->path_style = path_style == 1 || (path_style == -1 && (endpoint || strchr(s3->bucket, '.')));
    snprintf(s3->base_url, sizeof(s3->base_url), "%s://%s%s%.*s", scheme,
             s3->path_style ? "" : s3->bucket, s3->path_style ? "" : ".", (int)hlen, host);
    return 0;
}

/* One listing of at most one key: the bucket exists, the credentials
 * and the region are right. */
static int check_bucket(struct s3 *s3)
{
    char query[3 * S3_KEY_MAX + 64], key_prefix[S3_KEY_MAX + 1];
    snprintf(key_prefix, sizeof(key_prefix), "%s%s", s3->prefix, *s3->prefix ? "/" : "");
    struct s3_req *r = list_query(query, sizeof(query), key_prefix, "", 1)
                           ? s3req_new(s3, "GET", NULL, query) : NULL;
    if (!r)
        return objstore_fail(s3->os, -ENOMEM, "%s: out of memory", s3->os->target);
    r->out_max = S3_LISTBODY_MAX;
    int rc = s3req_run(r);
    s3req_free(r);
    return rc;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void init_curl(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* libcurl loaded (objstore_curl.h) and initialized, once per process. */
static int start_curl(struct objstore *os)
{
    char why[256];
    if (curl_dl_load(why, sizeof(why)))
        return objstore_fail(os, -ELIBACC, "s3:// needs libcurl (%s)", why);
    pthread_once(&curl_once, init_curl);
    if (curl_init_rc != CURLE_OK)
        return objstore_fail(os, -ENOMEM, "libcurl: %s", curl_easy_strerror(curl_init_rc));
    return 0;
}

static int configure(struct s3 *s3, const char *bucket_prefix, const struct objstore_opts *o)
{
    char why[OBJSTORE_WHY_SIZE - 200], region[64];
    int rc = parse_target(s3, bucket_prefix);
    if (rc)
        return rc;
    if ((rc = s3_load_creds(o->profile, &s3->creds, why, sizeof(why))) ||
        (rc = s3_load_region(o->region, o->profile, region, sizeof(region), why, sizeof(why))))
        return objstore_fail(s3->os, rc, "%s: %s", s3->os->target, why);
    if ((rc = parse_endpoint(s3, o->endpoint, region, o->path_style)))
        return rc;
    snprintf(s3->sigv4, sizeof(s3->sigv4), "aws:amz:%s:s3", region);
    s3->parallel = o->parallel;
    s3->retries = o->retries ? o->retries : DEFAULT_RETRIES;
    s3->timeout = o->timeout ? o->timeout : DEFAULT_TIMEOUT;
    if (o->ca_file && !(s3->ca_file = strdup(o->ca_file)))
        return objstore_fail(s3->os, -ENOMEM, "out of memory");
    return 0;
}

int objstore_s3_open(struct objstore *os, const char *bucket_prefix,
                     const struct objstore_opts *o)
{
    os->be = &s3_backend;
    int crc = start_curl(os);
    if (crc)
        return crc;
    struct s3 *s3 = calloc(1, sizeof(*s3));
    if (!s3)
        return objstore_fail(os, -ENOMEM, "out of memory");
    os->priv = s3;
    s3->os = os;
    s3->ready_tail = &s3->ready;
    int rc = configure(s3, bucket_prefix, o);
    if (rc)
        return rc;
    if (!(s3->multi = curl_multi_init()))
        return objstore_fail(os, -ENOMEM, "libcurl: no multi handle");
    curl_multi_setopt(s3->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)s3->parallel);
    curl_multi_setopt(s3->multi, CURLMOPT_MAXCONNECTS, (long)s3->parallel);
    return check_bucket(s3);
}
