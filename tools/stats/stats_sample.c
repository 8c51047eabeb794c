/*
 * stats_sample.c - a sample of a mounted volume's statistics: asked of
 * its daemon (`stats` on the control socket, without a syncfs, so that
 * asking changes nothing it counts), parsed, compared with an earlier
 * one, and the percentiles of its histograms.
 *
 * The reply's format is fs/metrics.c's.  A line of a kind this command
 * does not know is skipped (a newer daemon may say more); a malformed
 * line of a known kind, or a version other than 1, is -EPROTO.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

static int parse_u64(const char *w, uint64_t *out)
{
    char *end;
    if (!w || !*w || *w == '-')
        return -EPROTO;
    errno = 0;
    unsigned long long v = strtoull(w, &end, 10);
    if (errno || *end)
        return -EPROTO;
    *out = v;
    return 0;
}

static int add_value(struct stats_value **arr, size_t *n, size_t *cap,
                     const char *name, const char *value)
{
    struct stats_value v = { .value = 0 };
    if (!name || strlen(name) >= sizeof(v.name) || parse_u64(value, &v.value))
        return -EPROTO;
    strcpy(v.name, name);
    return array_append(arr, n, cap, &v, sizeof(v));
}

/* "LE:N,LE:N,..." (or "-") into H's buckets. */
static int parse_buckets(char *text, struct stats_hist *h)
{
    size_t cap = 0;
    if (!strcmp(text, "-"))
        return 0;
    for (char *save = NULL, *b = strtok_r(text, ",", &save); b;
         b = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(b, ':');
        struct stats_bucket k;
        if (!colon)
            return -EPROTO;
        *colon = 0;
        uint64_t le;
        if (!strcmp(b, "+Inf"))
            k.le = INFINITY;
        else if (!parse_u64(b, &le))
            k.le = (double)le;
        else
            return -EPROTO;
        if (parse_u64(colon + 1, &k.count) ||
            (h->nbuckets && !(k.le > h->buckets[h->nbuckets - 1].le)))
            return -EPROTO;
        if (array_append(&h->buckets, &h->nbuckets, &cap, &k, sizeof(k)))
            return -ENOMEM;
    }
    return 0;
}

static int add_hist(struct stats_sample *s, char **w, int n)
{
    struct stats_hist h = { .nbuckets = 0 };
    if (n != 6 || strlen(w[1]) >= sizeof(h.name) || parse_u64(w[2], &h.count) ||
        parse_u64(w[3], &h.sum) || parse_u64(w[4], &h.max))
        return -EPROTO;
    strcpy(h.name, w[1]);
    int rc = parse_buckets(w[5], &h);
    uint64_t total = 0;
    for (size_t i = 0; !rc && i < h.nbuckets; i++)
        total += h.buckets[i].count;
    if (!rc && total != h.count)
        rc = -EPROTO;
    if (!rc)
        rc = array_append(&s->hists, &s->nhists, &s->cap_hists, &h,
                          sizeof(h));
    if (rc)
        free(h.buckets);
    return rc;
}

static int parse_line(char *line, struct stats_sample *s, bool *versioned)
{
    char *w[8];
    int n = 0;
    for (char *save = NULL, *t = strtok_r(line, "\t", &save); t && n < 8;
         t = strtok_r(NULL, "\t", &save))
        w[n++] = t;
    if (n == 0)
        return 0;
    if (!strcmp(w[0], "snapfs-stats")) {
        *versioned = n == 2 && !strcmp(w[1], "1");
        return *versioned ? 0 : -EPROTO;
    }
    if (!*versioned)
        return -EPROTO;
    if (!strcmp(w[0], "uptime_ns"))
        return n == 2 ? parse_u64(w[1], &s->uptime_ns) : -EPROTO;
    if (!strcmp(w[0], "started"))
        return n == 2 ? parse_u64(w[1], &s->started) : -EPROTO;
    if (!strcmp(w[0], "counter"))
        return n == 3 ? add_value(&s->counters, &s->ncounters,
                                  &s->cap_counters, w[1], w[2])
                      : -EPROTO;
    if (!strcmp(w[0], "gauge"))
        return n == 3 ? add_value(&s->gauges, &s->ngauges, &s->cap_gauges,
                                  w[1], w[2])
                      : -EPROTO;
    if (!strcmp(w[0], "hist"))
        return add_hist(s, w, n);
    return 0; /* a newer daemon's: not ours to read */
}

int stats_parse(char *text, struct stats_sample *s)
{
    memset(s, 0, sizeof(*s));
    bool versioned = false;
    int rc = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save);
         line && !rc; line = strtok_r(NULL, "\n", &save))
        rc = parse_line(line, s, &versioned);
    if (!rc && !versioned)
        rc = -EPROTO;
    if (rc)
        stats_free(s);
    return rc;
}

int stats_fetch(struct volume *vol, struct stats_sample *s)
{
    char *words[] = { "stats" }, *data = NULL;
    int rc = volume_ask(vol, words, 1, &data);
    if (!rc)
        rc = stats_parse(data, s);
    free(data);
    return rc;
}

void stats_free(struct stats_sample *s)
{
    for (size_t i = 0; i < s->nhists; i++)
        free(s->hists[i].buckets);
    free(s->hists);
    free(s->counters);
    free(s->gauges);
    memset(s, 0, sizeof(*s));
}

/* ---- lookups ---- */

static uint64_t find_value(const struct stats_value *arr, size_t n,
                           const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(arr[i].name, name))
            return arr[i].value;
    return 0;
}

uint64_t stats_counter(const struct stats_sample *s, const char *name)
{
    return find_value(s->counters, s->ncounters, name);
}

uint64_t stats_gauge(const struct stats_sample *s, const char *name)
{
    return find_value(s->gauges, s->ngauges, name);
}

const struct stats_hist *stats_hist(const struct stats_sample *s,
                                    const char *name)
{
    for (size_t i = 0; i < s->nhists; i++)
        if (!strcmp(s->hists[i].name, name))
            return &s->hists[i];
    return NULL;
}

double stats_quantile(const struct stats_hist *h, double q)
{
    if (!h || !h->count)
        return 0;
    double rank = (double)(uint64_t)(q * (double)h->count); /* ceil */
    if (rank < q * (double)h->count)
        rank += 1;
    if (rank < 1)
        rank = 1;
    double below = 0, lo = 0;
    for (size_t i = 0; i < h->nbuckets; i++) {
        const struct stats_bucket *b = &h->buckets[i];
        if (below + (double)b->count >= rank) {
            double hi = isinf(b->le) ? (double)h->max : b->le;
            double v = lo + (hi - lo) * (rank - below) / (double)b->count;
            return v < (double)h->max ? v : (double)h->max;
        }
        below += (double)b->count;
        lo = b->le;
    }
    return (double)h->max;
}

/* ---- intervals ---- */

static int delta_values(const struct stats_value *now, size_t n,
                        const struct stats_value *then, size_t nthen,
                        struct stats_value **out, size_t *nout)
{
    *out = calloc(n ? n : 1, sizeof(**out));
    if (!*out)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint64_t before = find_value(then, nthen, now[i].name);
        (*out)[i] = now[i];
        (*out)[i].value = now[i].value >= before ? now[i].value - before : 0;
    }
    *nout = n;
    return 0;
}

/* The count THEN's histogram H has in the bucket of bound LE. */
static uint64_t bucket_count(const struct stats_hist *h, double le)
{
    for (size_t i = 0; h && i < h->nbuckets; i++)
        if (h->buckets[i].le == le)
            return h->buckets[i].count;
    return 0;
}

static int delta_hist(const struct stats_hist *now,
                      const struct stats_hist *then, struct stats_hist *out)
{
    *out = *now;
    out->nbuckets = 0;
    out->buckets = calloc(now->nbuckets ? now->nbuckets : 1,
                          sizeof(*out->buckets));
    if (!out->buckets)
        return -ENOMEM;
    out->count = 0;
    for (size_t i = 0; i < now->nbuckets; i++) {
        uint64_t before = bucket_count(then, now->buckets[i].le);
        uint64_t c = now->buckets[i].count >= before
                         ? now->buckets[i].count - before : 0;
        if (!c)
            continue;
        out->buckets[out->nbuckets].le = now->buckets[i].le;
        out->buckets[out->nbuckets++].count = c;
        out->count += c;
    }
    out->sum = then && now->sum >= then->sum ? now->sum - then->sum : now->sum;
    if (out->count && out->nbuckets) { /* the interval's maximum, bounded */
        double top = out->buckets[out->nbuckets - 1].le;
        if (!isinf(top) && top < (double)out->max)
            out->max = (uint64_t)top;
    } else {
        out->max = 0;
    }
    return 0;
}

int stats_delta(const struct stats_sample *now,
                const struct stats_sample *then, struct stats_sample *out)
{
    memset(out, 0, sizeof(*out));
    out->uptime_ns = now->uptime_ns;
    out->started = now->started;
    int rc = delta_values(now->counters, now->ncounters, then->counters,
                          then->ncounters, &out->counters, &out->ncounters);
    if (!rc) {
        out->gauges = calloc(now->ngauges ? now->ngauges : 1,
                             sizeof(*out->gauges));
        rc = out->gauges ? 0 : -ENOMEM;
    }
    if (!rc) {
        memcpy(out->gauges, now->gauges, now->ngauges * sizeof(*out->gauges));
        out->ngauges = now->ngauges;
        out->hists = calloc(now->nhists ? now->nhists : 1,
                            sizeof(*out->hists));
        rc = out->hists ? 0 : -ENOMEM;
    }
    for (size_t i = 0; !rc && i < now->nhists; i++) {
        rc = delta_hist(&now->hists[i], stats_hist(then, now->hists[i].name),
                        &out->hists[i]);
        if (!rc)
            out->nhists++;
    }
    if (rc)
        stats_free(out);
    return rc;
}
