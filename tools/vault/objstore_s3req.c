/*
 * objstore_s3req.c - one S3 request from queue to result: signed by
 * libcurl's SigV4 (CURLOPT_AWS_SIGV4 "aws:amz:REGION:s3", with the
 * payload's SHA-256 from OpenSSL in x-amz-content-sha256), run with
 * others on one libcurl multi handle, retried, and its answer turned
 * into 0 or a negative errno with the server's words.
 *
 * Guarantees:
 * - at most `parallel` requests in flight; the others wait in a queue;
 * - every request ends exactly once (FINISH, or DONE for the waiting
 *   submitter) with 0 or one of the errors objstore.h lists;
 * - retried, with exponential backoff (100 ms doubling, at most 8 s) and
 *   jitter (each wait between half and all of it): network timeouts,
 *   refused and broken connections, 5xx, 429, SlowDown, RequestTimeout,
 *   OperationAborted; at most `retries` times and none beginning later
 *   than OBJSTORE_RETRY_WINDOW_MS after the first attempt;
 * - an attempt that connects to nothing, or receives or sends nothing,
 *   for `timeout` seconds fails with -ETIMEDOUT (curl's connect timeout
 *   and its low-speed limit of 1 byte/s over `timeout` seconds);
 * - the credentials go to curl only (user name and password of the
 *   signature, the session token header); curl's verbose mode is never
 *   on; messages hold the target, the object, the method, the HTTP
 *   status and the server's Code and Message, nothing else;
 * - memory: an error body is kept up to S3_ERRBODY_MAX, a growing body up
 *   to its OUT_MAX; a ranged GET writes into the caller's buffer only.
 *
 * libcurl 7.88 signs the URL's path and query as they are sent, so the
 * callers give both already canonical (s3_uri_encode; queries sorted,
 * bare keys as "key="), and every header in the header list is signed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "objstore_s3.h"

#define BACKOFF_BASE_MS 100
#define BACKOFF_MAX_MS 8000
#define POLL_MAX_MS 1000

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* ---- building requests ---- */

bool s3_uri_encode(char *buf, size_t size, size_t *len, const char *text,
                   bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || strchr("-_.~", *p) ||
                     (keep_slash && *p == '/');
        if (*len + (plain ? 1 : 3) >= size)
            return false;
        if (plain) {
            buf[(*len)++] = (char)*p;
        } else {
            buf[(*len)++] = '%';
            buf[(*len)++] = hex[*p >> 4];
            buf[(*len)++] = hex[*p & 15];
        }
    }
    buf[*len] = 0;
    return true;
}

/* The URL of object NAME (NULL: the bucket) with QUERY into BUF. */
static bool make_url(struct s3 *s3, const char *name, const char *query, char *buf,
                     size_t size)
{
    int n = snprintf(buf, size, "%s/%s%s", s3->base_url, s3->path_style ? s3->bucket : "",
                     s3->path_style && name ? "/" : "");
    if (n < 0 || (size_t)n >= size)
        return false;
    size_t len = (size_t)n;
    if (name && *s3->prefix &&
        (!s3_uri_encode(buf, size, &len, s3->prefix, true) ||
         !s3_uri_encode(buf, size, &len, "/", true)))
        return false;
    if (name && !s3_uri_encode(buf, size, &len, name, true))
        return false;
    n = query ? snprintf(buf + len, size - len, "?%s", query) : 0;
    return n >= 0 && (size_t)n < size - len;
}

struct s3_req *s3req_new(struct s3 *s3, const char *method, const char *name,
                         const char *query)
{
    struct s3_req *r = calloc(1, sizeof(*r));
    char *url = malloc(4 * S3_KEY_MAX + 2048);
    if (!r || !url || !make_url(s3, name, query, url, 4 * S3_KEY_MAX + 2048)) {
        free(r);
        free(url);
        return NULL;
    }
    r->s3 = s3;
    r->method = method;
    r->url = url;
    r->content_length = -1;
    r->out_max = S3_ERRBODY_MAX; /* small XML answers; callers raise it */
    snprintf(r->what, sizeof(r->what), "%s", name ? name : "listing");
    return r;
}

void s3req_free(struct s3_req *r)
{
    if (!r)
        return;
    if (r->easy) {
        curl_multi_remove_handle(r->s3->multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->headers);
    if (!r->out_fixed)
        free(r->out);
    free(r->err);
    free(r->url);
    free(r);
}

static void sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* ---- curl's callbacks ---- */

static bool answer_ok(struct s3_req *r)
{
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    return status >= 200 && status < 300;
}

static size_t keep_error_body(struct s3_req *r, const char *data, size_t len)
{
    size_t room = S3_ERRBODY_MAX - r->err_len;
    size_t take = len < room ? len : room;
    if (!r->err && !(r->err = malloc(S3_ERRBODY_MAX)))
        return len; /* the message is lost, not the answer */
    memcpy(r->err + r->err_len, data, take);
    r->err_len += take;
    return len;
}

/* A ranged GET answered 200, the whole object: skip what comes before
 * the range. */
static size_t skip_before_range(struct s3_req *r, const char **data, size_t len)
{
    size_t skip = r->range_skip < len ? (size_t)r->range_skip : len;
    r->range_skip -= skip;
    *data += skip;
    return len - skip;
}

static bool grow_out(struct s3_req *r, size_t need)
{
    if (need > r->out_max) {
        r->write_err = -EFBIG;
        return false;
    }
    curl_off_t cl = -1;
    curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    size_t cap = r->out_cap ? 2 * r->out_cap : 64 << 10;
    if (cl >= 0 && (uint64_t)cl >= need && (uint64_t)cl <= r->out_max)
        cap = (size_t)cl;
    if (cap < need)
        cap = need;
    char *grown = realloc(r->out, cap ? cap : 1);
    if (!grown) {
        r->write_err = -ENOMEM;
        return false;
    }
    r->out = grown;
    r->out_cap = cap;
    return true;
}

static void append_out(struct s3_req *r, const char *data, size_t len)
{
    memcpy(r->out + r->out_len, data, len);
    r->out_len += len;
}

/* Into the caller's buffer: a 206 must bring the range and no more; a
 * 200 (a server that ignores Range) brings the object, of which the
 * range is kept. */
static size_t body_to_range(struct s3_req *r, const char *data, size_t len)
{
    size_t total = len;
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status == 200)
        len = skip_before_range(r, &data, len);
    size_t room = r->out_cap - r->out_len;
    if (len > room && status != 200) {
        r->write_err = -EPROTO;
        return 0;
    }
    append_out(r, data, len < room ? len : room);
    return total;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct s3_req *r = arg;
    size_t len = size * n;
    if (!answer_ok(r))
        return keep_error_body(r, data, len);
    if (r->out_fixed)
        return body_to_range(r, data, len);
    if (r->out_len + len > r->out_cap && !grow_out(r, r->out_len + len))
        return 0;
    append_out(r, data, len);
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct s3_req *r = arg;
    size_t len = size * n;
    if (len > 5 && !strncasecmp(data, "etag:", 5)) {
        const char *v = data + 5;
        size_t vl = len - 5;
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl < sizeof(r->etag)) {
            memcpy(r->etag, v, vl);
            r->etag[vl] = 0;
        }
    }
    return len;
}

static size_t on_read(char *dst, size_t size, size_t n, void *arg)
{
    struct s3_req *r = arg;
    size_t left = r->body_len - r->body_pos, take = size * n < left ? size * n : left;
    memcpy(dst, r->body + r->body_pos, take);
    r->body_pos += take;
    return take;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
    struct s3_req *r = arg;
    if (origin != SEEK_SET || off < 0 || (uint64_t)off > r->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    r->body_pos = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

/* ---- one attempt ---- */

static bool add_header(struct s3_req *r, const char *fmt, const char *value)
{
    char line[9000];
    snprintf(line, sizeof(line), fmt, value);
    struct curl_slist *l = curl_slist_append(r->headers, line);
    memset(line, 0, sizeof(line)); /* it may hold the session token */
    if (!l)
        return false;
    r->headers = l;
    return true;
}

static bool make_headers(struct s3_req *r)
{
    struct s3 *s3 = r->s3;
    if (!r->body_sha256[0])
        sha256_hex(r->body ? r->body : "", r->body_len, r->body_sha256);
    return add_header(r, "x-amz-content-sha256: %s", r->body_sha256) &&
           (!s3->creds.token[0] ||
            add_header(r, "x-amz-security-token: %s", s3->creds.token)) &&
           (!r->content_type || add_header(r, "Content-Type: %s", r->content_type)) &&
           (!r->if_none_match || add_header(r, "If-None-Match: %s", "*"));
}

static void set_method(struct s3_req *r, CURL *e)
{
    if (!strcmp(r->method, "HEAD")) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(r->method, "PUT")) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, r);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, r);
    } else if (!strcmp(r->method, "POST")) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
    } else if (strcmp(r->method, "GET")) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    }
    if (r->range[0])
        curl_easy_setopt(e, CURLOPT_RANGE, r->range);
}

static bool start_attempt(struct s3_req *r)
{
    struct s3 *s3 = r->s3;
    CURL *e = curl_easy_init();
    if (!e || !make_headers(r)) {
        curl_easy_cleanup(e);
        return false;
    }
    r->easy = e;
    r->range_skip = r->range_off;
    r->attempt++;
    if (!r->first_ms)
        r->first_ms = now_ms();
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERNAME, s3->creds.key_id);
    curl_easy_setopt(e, CURLOPT_PASSWORD, s3->creds.secret);
    curl_easy_setopt(e, CURLOPT_AWS_SIGV4, s3->sigv4);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)s3->timeout);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)s3->timeout);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (s3->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, s3->ca_file);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->curl_err);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    set_method(r, e);
    if (curl_multi_add_handle(s3->multi, e) != CURLM_OK) {
        r->easy = NULL;
        curl_easy_cleanup(e);
        return false;
    }
    s3->running++;
    return true;
}

/* Forget what an attempt left, for the next one. */
static void reset_attempt(struct s3_req *r)
{
    if (r->easy) {
        curl_multi_remove_handle(r->s3->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    r->body_pos = 0;
    r->out_len = 0;
    r->err_len = 0;
    r->write_err = 0;
    r->etag[0] = 0;
    r->status = 0;
    r->code[0] = 0;
    r->curl_err[0] = 0;
}

/* ---- what an answer means ---- */

struct verdict {
    int rc;
    bool retry;
};

void s3req_say(struct s3_req *r, const char *fmt, ...)
{
    char detail[OBJSTORE_WHY_SIZE / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    objstore_format(r->why, sizeof(r->why), "%s: %s: %s: %s", r->s3->os->target, r->what,
                    r->method, detail);
}

static struct verdict network_error(struct s3_req *r, CURLcode cc)
{
    const char *msg = r->curl_err[0] ? r->curl_err : curl_easy_strerror(cc);
    struct verdict v = { -EIO, false };
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        v = (struct verdict){ -ETIMEDOUT, true };
        break;
    case CURLE_COULDNT_CONNECT:
        v = (struct verdict){ -ECONNREFUSED, true };
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        v = (struct verdict){ -EHOSTUNREACH, true };
        break;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        v = (struct verdict){ -ECONNRESET, true };
        break;
    case CURLE_OUT_OF_MEMORY:
        v.rc = -ENOMEM;
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_WEIRD_SERVER_REPLY:
        v.rc = -EPROTO;
        break;
    case CURLE_WRITE_ERROR:
        if (r->write_err) {
            v.rc = r->write_err;
            msg = r->write_err == -EFBIG   ? "the answer is larger than expected"
                  : r->write_err == -EPROTO ? "the server sent more than the range asked for"
                                            : strerror(-r->write_err);
        }
        break;
    default:
        break;
    }
    s3req_say(r, "%s", msg);
    return v;
}

/* The verdict on an S3 error CODE (may be "") with HTTP STATUS. */
static struct verdict s3_error(long status, const char *code)
{
    static const struct {
        const char *code;
        int rc;
        bool retry;
    } codes[] = {
        { "SlowDown", -EIO, true },          { "RequestTimeout", -ETIMEDOUT, true },
        { "InternalError", -EIO, true },     { "OperationAborted", -EIO, true },
        { "ServiceUnavailable", -EIO, true }, { "ConditionalRequestConflict", -EIO, true },
        { "ExpiredToken", -EACCES, false },  { "InvalidToken", -EACCES, false },
        { "TokenRefreshRequired", -EACCES, false }, { "NoSuchBucket", -ENOENT, false },
        { "NotImplemented", -EOPNOTSUPP, false },   { "PreconditionFailed", -EEXIST, false },
    };
    for (size_t i = 0; i < sizeof(codes) / sizeof(*codes); i++)
        if (!strcmp(code, codes[i].code))
            return (struct verdict){ codes[i].rc, codes[i].retry };
    if (status >= 500 || status == 429)
        return (struct verdict){ -EIO, true };
    switch (status) {
    case 403: return (struct verdict){ -EACCES, false };
    case 404: return (struct verdict){ -ENOENT, false };
    case 412: return (struct verdict){ -EEXIST, false };
    case 416: return (struct verdict){ -ERANGE, false };
    case 501: return (struct verdict){ -EOPNOTSUPP, false };
    }
    if (status == 400 || (status >= 300 && status < 400))
        return (struct verdict){ -EINVAL, false };
    return (struct verdict){ -EIO, false };
}

static struct verdict http_error(struct s3_req *r, const char *body, size_t len)
{
    char code[64] = "", message[400] = "", bucket[80] = "", endpoint[200] = "";
    if (body) {
        xml_text(body, body + len, "Code", code, sizeof(code));
        xml_text(body, body + len, "Message", message, sizeof(message));
        xml_text(body, body + len, "BucketName", bucket, sizeof(bucket));
        xml_text(body, body + len, "Endpoint", endpoint, sizeof(endpoint));
    }
    struct verdict v = s3_error(r->status, code);
    snprintf(r->code, sizeof(r->code), "%s", code);
    char head[128];
    snprintf(head, sizeof(head), "%ld%s%s", r->status, *code ? " " : "", code);
    if (!strcmp(code, "NoSuchBucket")) {
        objstore_format(r->why, sizeof(r->why), "%s: bucket %s does not exist (%s NoSuchBucket)",
                        r->s3->os->target, *bucket ? bucket : r->s3->bucket, r->method);
    } else if (r->status == 404 && !*code) {
        s3req_say(r, "no such object");
    } else if (r->status >= 300 && r->status < 400) {
        s3req_say(r, "%s: %s; the bucket is at another endpoint or region%s%s", head, message,
                  *endpoint ? ": " : "", endpoint);
    } else {
        s3req_say(r, "%s: %s", head, *message ? message : "(no message from the server)");
    }
    return v;
}

static struct verdict judge(struct s3_req *r, CURLcode cc)
{
    if (cc != CURLE_OK)
        return network_error(r, cc);
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &r->content_length);
    if (r->status < 200 || r->status >= 300)
        return http_error(r, r->err, r->err_len);
    /* CompleteMultipartUpload can fail after its 200 has been sent */
    const char *in, *in_end, *p = r->out;
    if (!strcmp(r->method, "POST") && r->out &&
        xml_next(&p, r->out + r->out_len, "Error", &in, &in_end)) {
        r->status = 500;
        return http_error(r, r->out, r->out_len);
    }
    return (struct verdict){ 0, false };
}

/* ---- the queue ---- */

static void finish(struct s3_req *r, int rc)
{
    r->done = true;
    r->rc = rc;
    if (r->easy) {
        curl_multi_remove_handle(r->s3->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    if (r->finish)
        r->finish(r);
}

static uint64_t backoff_ms(unsigned attempt)
{
    uint64_t d = BACKOFF_BASE_MS;
    for (unsigned i = 1; i < attempt && d < BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > BACKOFF_MAX_MS)
        d = BACKOFF_MAX_MS;
    uint32_t rnd = 0;
    RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
    return d / 2 + rnd % (d / 2 + 1);
}

/* An attempt of R ended with CC: retry it later, or finish it. */
static void attempt_ended(struct s3_req *r, CURLcode cc)
{
    struct s3 *s3 = r->s3;
    s3->running--;
    struct verdict v = judge(r, cc);
    uint64_t wait = v.retry ? backoff_ms(r->attempt) : 0;
    if (v.retry && r->attempt <= s3->retries &&
        now_ms() + wait - r->first_ms <= OBJSTORE_RETRY_WINDOW_MS) {
        reset_attempt(r);
        r->due_ms = now_ms() + wait;
        r->next = s3->backoff;
        s3->backoff = r;
        return;
    }
    if (v.rc < 0 && r->attempt > 1) {
        char tries[64];
        snprintf(tries, sizeof(tries), " (%u attempts)", r->attempt);
        size_t l = strlen(r->why);
        snprintf(r->why + l, sizeof(r->why) - l, "%s", tries);
    }
    finish(r, v.rc);
}

void s3req_submit(struct s3_req *r)
{
    struct s3 *s3 = r->s3;
    r->next = NULL;
    *s3->ready_tail = r;
    s3->ready_tail = &r->next;
}

/* Requests whose backoff is over go to the end of the ready queue; the
 * milliseconds until the next one is due (POLL_MAX_MS at most). */
static long wake_backoff(struct s3 *s3)
{
    uint64_t now = now_ms(), next = now + POLL_MAX_MS;
    for (struct s3_req **pp = &s3->backoff; *pp;) {
        struct s3_req *r = *pp;
        if (r->due_ms <= now) {
            *pp = r->next;
            s3req_submit(r);
            continue;
        }
        next = r->due_ms < next ? r->due_ms : next;
        pp = &r->next;
    }
    return (long)(next - now);
}

static void start_ready(struct s3 *s3)
{
    while (s3->ready && s3->running < s3->parallel) {
        struct s3_req *r = s3->ready;
        s3->ready = r->next;
        if (!s3->ready)
            s3->ready_tail = &s3->ready;
        if (!start_attempt(r)) {
            s3req_say(r, "out of memory");
            finish(r, -ENOMEM);
        }
    }
}

static void reap(struct s3 *s3)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(s3->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct s3_req *r = NULL;
        CURLcode cc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        attempt_ended(r, cc);
    }
}

void s3_drive(struct s3 *s3, bool (*stop)(void *arg), void *arg)
{
    for (;;) {
        wake_backoff(s3);
        start_ready(s3);
        if (stop(arg) || (!s3->running && !s3->ready && !s3->backoff))
            return;
        int still;
        curl_multi_perform(s3->multi, &still);
        reap(s3);
        if (stop(arg))
            return;
        /* what the reaped requests' FINISH submitted starts at once */
        long wait = wake_backoff(s3);
        if (s3->ready && s3->running < s3->parallel)
            continue;
        if (s3->running || s3->backoff)
            curl_multi_poll(s3->multi, NULL, 0, (int)wait, NULL);
    }
}

static bool req_done(void *arg)
{
    return ((struct s3_req *)arg)->done;
}

int s3req_run(struct s3_req *r)
{
    r->finish = NULL;
    s3req_submit(r);
    s3_drive(r->s3, req_done, r);
    if (r->rc < 0)
        objstore_fail(r->s3->os, r->rc, "%s", r->why);
    return r->rc;
}
