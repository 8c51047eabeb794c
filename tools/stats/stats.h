/*
 * stats.h - the statistics of a mounted volume as the command sees them:
 * one sample read from the daemon (stats_sample.c), the difference of
 * two (an interval, for --watch), and their renderings (stats_render.c):
 * a table, JSON, an interval line, the Prometheus text format; and the
 * HTTP listener that serves the latter (stats_http.c).
 */
#ifndef SNAPFS_TOOLS_STATS_H
#define SNAPFS_TOOLS_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"

struct stats_bucket {
    double le;      /* inclusive upper bound; INFINITY for +Inf */
    uint64_t count; /* values in this bucket (not cumulative) */
};

struct stats_hist {
    char name[48];  /* "op.lookup", "commit.ns", "commit.bytes" */
    uint64_t count, sum, max;
    size_t nbuckets;
    struct stats_bucket *buckets; /* ascending le, non-empty ones */
};

struct stats_value {
    char name[48];
    uint64_t value;
};

struct stats_sample {
    uint64_t uptime_ns, started;
    struct stats_value *counters, *gauges;
    size_t ncounters, ngauges, cap_counters, cap_gauges;
    struct stats_hist *hists;
    size_t nhists, cap_hists;
};

/*
 * Ask the daemon of VOL for a sample: 0, or -ENODATA (the mount has -o
 * nostats), -EACCES (neither root nor the store's owner), -EPROTO (a
 * reply this command cannot read), or another negative errno.
 */
int stats_fetch(struct volume *vol, struct stats_sample *s);
/* Parse the daemon's reply TEXT (format in fs/metrics.c). */
int stats_parse(char *text, struct stats_sample *s);
void stats_free(struct stats_sample *s);
/* NOW - THEN, counter by counter and bucket by bucket (an interval);
 * gauges and the maxima are NOW's. */
int stats_delta(const struct stats_sample *now,
                const struct stats_sample *then, struct stats_sample *out);

/* A counter or gauge by name (0 when absent); a histogram (NULL). */
uint64_t stats_counter(const struct stats_sample *s, const char *name);
uint64_t stats_gauge(const struct stats_sample *s, const char *name);
const struct stats_hist *stats_hist(const struct stats_sample *s,
                                    const char *name);
/* The Q-quantile (0 < Q <= 1) of H, interpolated within its bucket and
 * at most the maximum seen; 0 for an empty histogram. */
double stats_quantile(const struct stats_hist *h, double q);

/* Renderings of a sample of VOLUME (its store path). */
void stats_print_table(FILE *out, const char *volume,
                       const struct stats_sample *s);
void stats_print_json(FILE *out, const char *volume,
                      const struct stats_sample *s);
/* One interval of --watch: a line of rates (ending with the local time
 * now), or a JSON object on one line; HEADER: a header line first. */
void stats_print_interval(FILE *out, const struct stats_sample *delta,
                          double seconds, bool header);
void stats_print_interval_json(FILE *out, const char *volume,
                               const struct stats_sample *delta,
                               double seconds);
/* The Prometheus text exposition format (version 0.0.4). */
void stats_print_prometheus(FILE *out, const char *volume,
                            const struct stats_sample *s);

/*
 * Serve GET /metrics on ADDR (IPv4 "A.B.C.D:PORT") over HTTP/1.0: each
 * request asks the daemon anew and answers the Prometheus text; other
 * paths 404.  Runs until a signal ends the process; a failure to listen
 * is a negative errno.  READY (may be NULL) is called once listening,
 * with the port bound.
 */
int stats_serve_http(struct volume *vol, const char *addr,
                     void (*ready)(int port));

#endif
