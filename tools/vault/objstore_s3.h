/*
 * objstore_s3.h - private to the s3:// files: the store's state, one HTTP
 * request and its retries (objstore_s3req.c), credentials and region
 * (objstore_creds.c), the few XML elements S3 answers with
 * (objstore_xml.c).
 */
#ifndef SNAPFS_OBJSTORE_S3_H
#define SNAPFS_OBJSTORE_S3_H

#include "objstore_curl.h"

#include "objstore_int.h"

#define S3_KEY_MAX 1024
#define S3_ERRBODY_MAX (64u << 10)   /* an error's XML kept for its message */
#define S3_LISTBODY_MAX (32u << 20)  /* one listing page */

/* ---- objstore_creds.c ---- */

struct s3_creds {
    char key_id[128];
    char secret[256];
    char token[8192]; /* "" without a session token */
};

/* Credentials: PROFILE's from the files when PROFILE is given, else the
 * environment's AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN,
 * else AWS_PROFILE's (or "default") from AWS_SHARED_CREDENTIALS_FILE or
 * ~/.aws/credentials, then AWS_CONFIG_FILE or ~/.aws/config.
 * -EACCES none found (WHY says where they were looked for), -EINVAL a
 * value too long.  Nothing secret is ever put in WHY. */
int s3_load_creds(const char *profile, struct s3_creds *c, char *why, size_t whysz);

/* Region: OPT, AWS_REGION, AWS_DEFAULT_REGION, the profile's region in
 * the config file, us-east-1.  -EINVAL a malformed one. */
int s3_load_region(const char *opt, const char *profile, char *region,
                   size_t size, char *why, size_t whysz);

/* ---- objstore_xml.c ---- */

/* The next element TAG in [*P, END): its content in [*IN, *IN_END), *P
 * moved past it.  False if there is none (or it is not closed). */
bool xml_next(const char **p, const char *end, const char *tag, const char **in,
              const char **in_end);

/* The text of the first element TAG in [P, END), entities decoded, in OUT
 * (NUL-terminated); false if absent or longer than OUTSZ - 1 bytes. */
bool xml_text(const char *p, const char *end, const char *tag, char *out,
              size_t outsz);

/* ---- objstore_s3req.c: requests ---- */

struct s3;

struct s3_req {
    struct s3 *s3;
    struct s3_req *next;         /* in the ready or backoff list */
    const char *method;          /* GET HEAD PUT POST DELETE */
    char *url;
    char what[S3_KEY_MAX + 32];  /* for messages: the object or "listing" */
    /* the request */
    const char *body;
    size_t body_len, body_pos;
    char body_sha256[65];        /* "" until computed */
    const char *content_type;
    bool if_none_match;
    char range[64];
    uint64_t range_off;          /* a 200 to a ranged GET: skip this */
    uint64_t range_skip;         /* what is left to skip in this attempt */
    /* the answer */
    char *out;                   /* the body of a 2xx */
    size_t out_len, out_cap, out_max;
    bool out_fixed;              /* OUT is the caller's, OUT_CAP bytes */
    int write_err;               /* why the body was refused */
    char *err;                   /* the body of a non-2xx, bounded */
    size_t err_len;
    char etag[128];
    long status;
    char code[64];               /* S3's error code, "" if none */
    curl_off_t content_length;
    /* attempts */
    unsigned attempt;
    uint64_t first_ms, due_ms;
    CURL *easy;
    struct curl_slist *headers;
    char curl_err[CURL_ERROR_SIZE];
    /* the end */
    bool done;
    int rc;
    void (*finish)(struct s3_req *r); /* NULL: the submitter waits for DONE */
    void *ctx;
    char why[OBJSTORE_WHY_SIZE];
};

struct s3 {
    struct objstore *os;
    char bucket[64];
    char prefix[S3_KEY_MAX];     /* "" or "a/b", no '/' at the end */
    char base_url[512];          /* scheme://host[:port] (with the bucket
                                    for virtual-host style), no '/' at the end */
    bool path_style;
    char sigv4[128];             /* aws:amz:REGION:s3 */
    struct s3_creds creds;
    unsigned parallel, retries, timeout;
    char *ca_file;               /* NULL: the system's CA certificates */
    CURLM *multi;
    struct s3_req *ready, **ready_tail, *backoff;
    unsigned running;            /* requests in flight */
    unsigned transfers;          /* asynchronous transfers not yet done */
};

/* A request METHOD for object NAME (NULL: the bucket) with the query
 * QUERY (NULL or canonical: sorted, encoded, "key=" for bare keys).
 * NULL when out of memory. */
struct s3_req *s3req_new(struct s3 *s3, const char *method, const char *name,
                         const char *query);
void s3req_free(struct s3_req *r);

/* Queue R; its FINISH runs once it succeeded or failed for good. */
void s3req_submit(struct s3_req *r);

/* R's why: "TARGET: OBJECT: METHOD: " and FMT. */
void s3req_say(struct s3_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Submit R (FINISH NULL) and run until it is done; its result (R->why
 * copied to the store's why on failure).  R stays the caller's. */
int s3req_run(struct s3_req *r);

/* Run the transfers until STOP(ARG) holds or nothing is left to run. */
void s3_drive(struct s3 *s3, bool (*stop)(void *arg), void *arg);

/* Append TEXT to BUF (of SIZE, holding LEN bytes) URI-encoded as SigV4
 * wants it ('/' kept if KEEP_SLASH).  False if it does not fit. */
bool s3_uri_encode(char *buf, size_t size, size_t *len, const char *text,
                   bool keep_slash);

#endif
