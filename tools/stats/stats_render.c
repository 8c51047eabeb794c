/*
 * stats_render.c - a sample of a volume's statistics shown: the table of
 * `snapfs stats`, the JSON object of `--json` (documented in README.md,
 * Metrics), the interval lines of `--watch`, and the Prometheus text
 * exposition format (version 0.0.4) of `--prometheus` and the listener.
 *
 * Latencies are shown in microseconds (table, JSON) or seconds
 * (Prometheus), percentiles read from the daemon's log-scale histograms
 * (fs/metrics.c: exact to a bucket about 19% wide, interpolated within
 * it).  Prometheus histograms carry the buckets at powers of two (of
 * nanoseconds, or of bytes for commit sizes), which the daemon's finer
 * buckets add up to exactly.
 */
#define _GNU_SOURCE
#include <math.h>
#include <string.h>
#include <time.h>

#include "stats.h"

static const double quantiles[] = { 0.5, 0.9, 0.99, 0.999 };
static const char *const quantile_names[] = { "p50", "p90", "p99", "p999" };
#define NQUANTILES 4

static double seconds_of(const struct stats_sample *s)
{
    return (double)s->uptime_ns / 1e9;
}

static double per_second(uint64_t n, double seconds)
{
    return seconds > 0 ? (double)n / seconds : 0;
}

static double mean_of(const struct stats_hist *h)
{
    return h && h->count ? (double)h->sum / (double)h->count : 0;
}

static const char *op_name(const struct stats_hist *h)
{
    return strncmp(h->name, "op.", 3) ? NULL : h->name + 3;
}

static uint64_t op_total(const struct stats_sample *s, uint64_t *sum_ns)
{
    uint64_t count = 0;
    *sum_ns = 0;
    for (size_t i = 0; i < s->nhists; i++)
        if (op_name(&s->hists[i])) {
            count += s->hists[i].count;
            *sum_ns += s->hists[i].sum;
        }
    return count;
}

static uint64_t commits(const struct stats_sample *s)
{
    return stats_counter(s, "commits_interval") +
           stats_counter(s, "commits_size") + stats_counter(s, "commits_sync") +
           stats_counter(s, "commits_unmount");
}

/* Of the partial writes, those that found their block cached (-1: none). */
static double hit_rate(const struct stats_sample *s)
{
    uint64_t hits = stats_counter(s, "wcache_hits");
    uint64_t all = hits + stats_counter(s, "wcache_misses") +
                   stats_counter(s, "wcache_bypasses");
    return all ? (double)hits / (double)all : -1;
}

/* ---- the table ---- */

static void print_duration(FILE *out, double seconds)
{
    unsigned long long t = (unsigned long long)seconds;
    if (t >= 86400)
        fprintf(out, "%llud %02lluh %02llum", t / 86400, t / 3600 % 24,
                t / 60 % 60);
    else if (t >= 3600)
        fprintf(out, "%lluh %02llum %02llus", t / 3600, t / 60 % 60, t % 60);
    else if (t >= 60)
        fprintf(out, "%llum %02llus", t / 60, t % 60);
    else
        fprintf(out, "%.1fs", seconds);
}

static void print_op_rows(FILE *out, const struct stats_sample *s)
{
    double secs = seconds_of(s);
    fprintf(out, "%-12s %10s %9s %9s %9s %9s %9s %9s %9s\n", "operation",
            "count", "per s", "mean us", "p50 us", "p90 us", "p99 us",
            "p99.9 us", "max us");
    for (size_t i = 0; i < s->nhists; i++) {
        const struct stats_hist *h = &s->hists[i];
        if (!op_name(h) || !h->count)
            continue;
        fprintf(out, "%-12s %10llu %9.1f %9.1f", op_name(h),
                (unsigned long long)h->count, per_second(h->count, secs),
                mean_of(h) / 1e3);
        for (int q = 0; q < NQUANTILES; q++)
            fprintf(out, " %9.1f", stats_quantile(h, quantiles[q]) / 1e3);
        fprintf(out, " %9.1f\n", (double)h->max / 1e3);
    }
}

static void print_bytes(FILE *out, uint64_t n)
{
    char b[32];
    format_bytes(n, b, sizeof(b));
    fputs(b, out);
}

static void print_blocks(FILE *out, const struct stats_sample *s)
{
    uint64_t before = stats_counter(s, "new_logical_bytes");
    uint64_t after = stats_counter(s, "new_stored_bytes");
    fprintf(out, "blocks:       %llu new, ",
            (unsigned long long)stats_counter(s, "new_blocks"));
    print_bytes(out, before);
    fputs(" before compression, ", out);
    print_bytes(out, after);
    fprintf(out, " after (%.2fx; %llu compressed)\n",
            after ? (double)before / (double)after : 1.0,
            (unsigned long long)stats_counter(s, "new_compressed_blocks"));
    fprintf(out, "              %llu deduplicated (",
            (unsigned long long)stats_counter(s, "dedup_blocks"));
    print_bytes(out, stats_counter(s, "dedup_bytes"));
    fputs("), ", out);
    print_bytes(out, stats_counter(s, "zero_bytes"));
    fputs(" of zeros left as holes, ", out);
    print_bytes(out, stats_counter(s, "inline_bytes"));
    fputs(" in inline tails\n", out);
}

static void print_cache(FILE *out, const struct stats_sample *s)
{
    double rate = hit_rate(s);
    if (rate < 0)
        fputs("write cache:  no partial-block writes", out);
    else
        fprintf(out, "write cache:  %.1f%% of partial-block writes hit",
                100 * rate);
    fprintf(out, " (%llu hits, %llu misses, %llu bypassed); %llu blocks "
            "stored, ", (unsigned long long)stats_counter(s, "wcache_hits"),
            (unsigned long long)stats_counter(s, "wcache_misses"),
            (unsigned long long)stats_counter(s, "wcache_bypasses"),
            (unsigned long long)stats_counter(s, "wcache_stored_blocks"));
    print_bytes(out, stats_gauge(s, "wcache_bytes"));
    fprintf(out, " cached now; %llu reads laid over cached blocks\n",
            (unsigned long long)stats_counter(s, "wcache_read_overlays"));
}

static void print_commits(FILE *out, const struct stats_sample *s)
{
    const struct stats_hist *size = stats_hist(s, "commit.bytes");
    const struct stats_hist *ns = stats_hist(s, "commit.ns");
    fprintf(out, "commits:      %llu (%llu by time, %llu by size, %llu for "
            "sync, %llu at unmount; %llu failed), ",
            (unsigned long long)commits(s),
            (unsigned long long)stats_counter(s, "commits_interval"),
            (unsigned long long)stats_counter(s, "commits_size"),
            (unsigned long long)stats_counter(s, "commits_sync"),
            (unsigned long long)stats_counter(s, "commits_unmount"),
            (unsigned long long)stats_counter(s, "commit_errors"));
    print_bytes(out, size ? size->sum : 0);
    fputs(" of data, mean ", out);
    print_bytes(out, (uint64_t)mean_of(size));
    fprintf(out, "\n              duration p50 %.1f ms, p99 %.1f ms, max %.1f "
            "ms\n", stats_quantile(ns, 0.5) / 1e6,
            stats_quantile(ns, 0.99) / 1e6, ns ? (double)ns->max / 1e6 : 0);
}

static void print_space(FILE *out, const struct stats_sample *s)
{
    fputs("space:        ", out);
    print_bytes(out, stats_gauge(s, "space_size"));
    fputs(" size, ", out);
    print_bytes(out, stats_gauge(s, "space_used"));
    fputs(" used, ", out);
    print_bytes(out, stats_gauge(s, "space_available"));
    fputs(" available; snapshots hold ", out);
    print_bytes(out, stats_gauge(s, "space_snapshots"));
    fprintf(out, " (%llu snapshots, reserve ",
            (unsigned long long)stats_gauge(s, "snapshots"));
    print_bytes(out, stats_gauge(s, "space_snapshot_reserve"));
    fputs(")\n", out);
}

static void print_health(FILE *out, const struct stats_sample *s)
{
    uint64_t err = stats_gauge(s, "commit_error");
    fputs("daemon:       ", out);
    print_bytes(out, stats_gauge(s, "resident_bytes"));
    fprintf(out, " resident, %llu major page faults (store pages read "
            "from disk), ", (unsigned long long)stats_gauge(s, "major_faults"));
    print_bytes(out, stats_gauge(s, "batch_bytes"));
    fprintf(out, " in the open batch\n              %llu inodes held by "
            "the kernel, ", (unsigned long long)stats_gauge(s, "inodes_held"));
    print_bytes(out, stats_gauge(s, "node_bytes"));
    fputs(" of node table\nhealth:       ", out);
    uint64_t damaged = stats_counter(s, "damaged_reads");
    if (err)
        fprintf(out, "commits fail: %s", strerror((int)err));
    else if (damaged)
        fprintf(out, "%llu reads met a damaged block (snapfs fsck names the "
                "files)", (unsigned long long)damaged);
    else
        fputs("ok", out);
    if (stats_gauge(s, "frozen"))
        fputs("; frozen for a group snapshot", out);
    if (stats_gauge(s, "receiving"))
        fputs("; receiving a stream", out);
    fputc('\n', out);
}

void stats_print_table(FILE *out, const char *volume,
                       const struct stats_sample *s)
{
    uint64_t sum_ns, total = op_total(s, &sum_ns);
    fprintf(out, "volume:       %s\nuptime:       ", volume);
    print_duration(out, seconds_of(s));
    fprintf(out, " (every figure counts from the mount)\n"
            "operations:   %llu, %.1f per second, mean %.1f us\n",
            (unsigned long long)total, per_second(total, seconds_of(s)),
            total ? (double)sum_ns / (double)total / 1e3 : 0);
    if (total)
        print_op_rows(out, s);
    fputs("data:         read ", out);
    print_bytes(out, stats_counter(s, "read_bytes"));
    fputs(", written ", out);
    print_bytes(out, stats_counter(s, "write_bytes"));
    if (stats_counter(s, "readaround_bytes")) {
        fputs("; ", out);
        print_bytes(out, stats_counter(s, "readaround_bytes"));
        fputs(" more of the blocks read given to the kernel's cache", out);
    }
    fputc('\n', out);
    print_blocks(out, s);
    print_cache(out, s);
    print_commits(out, s);
    print_space(out, s);
    print_health(out, s);
}

/* ---- JSON ---- */

static void json_latency(FILE *out, const struct stats_hist *h, double unit)
{
    fprintf(out, "{\"mean\":%.3f", mean_of(h) / unit);
    for (int q = 0; q < NQUANTILES; q++)
        fprintf(out, ",\"%s\":%.3f", quantile_names[q],
                stats_quantile(h, quantiles[q]) / unit);
    fprintf(out, ",\"max\":%.3f}", h ? (double)h->max / unit : 0);
}

static void json_operations(FILE *out, const struct stats_sample *s,
                            double secs)
{
    bool first = true;
    fputs("\"operations\":{", out);
    for (size_t i = 0; i < s->nhists; i++) {
        const struct stats_hist *h = &s->hists[i];
        if (!op_name(h))
            continue;
        fprintf(out, "%s\"%s\":{\"count\":%llu,\"per_second\":%.3f,"
                "\"latency_us\":", first ? "" : ",", op_name(h),
                (unsigned long long)h->count, per_second(h->count, secs));
        json_latency(out, h, 1e3);
        fputc('}', out);
        first = false;
    }
    fputs("}", out);
}

/* "NAME":N for each pair of JSON NAMES and counters or gauges. */
static void json_values(FILE *out, const struct stats_sample *s,
                        const char *const (*pairs)[2], size_t n, bool gauges)
{
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s\"%s\":%llu", i ? "," : "", pairs[i][0],
                (unsigned long long)(gauges ? stats_gauge(s, pairs[i][1])
                                            : stats_counter(s, pairs[i][1])));
}

#define NPAIRS(a) (sizeof(a) / sizeof((a)[0]))

static const char *const json_blocks[][2] = {
    { "new", "new_blocks" },
    { "new_bytes_before_compression", "new_logical_bytes" },
    { "new_bytes_after_compression", "new_stored_bytes" },
    { "compressed", "new_compressed_blocks" },
    { "deduplicated", "dedup_blocks" },
    { "deduplicated_bytes", "dedup_bytes" },
    { "zero_bytes", "zero_bytes" },
    { "inline_bytes", "inline_bytes" },
};
static const char *const json_cache[][2] = {
    { "hits", "wcache_hits" }, { "misses", "wcache_misses" },
    { "bypasses", "wcache_bypasses" },
    { "stored_blocks", "wcache_stored_blocks" },
    { "read_overlays", "wcache_read_overlays" },
};
static const char *const json_commits[][2] = {
    { "interval", "commits_interval" }, { "size", "commits_size" },
    { "sync", "commits_sync" }, { "unmount", "commits_unmount" },
    { "errors", "commit_errors" },
};
static const char *const json_space[][2] = {
    { "size", "space_size" }, { "used", "space_used" },
    { "available", "space_available" },
    { "snapshot_reserve", "space_snapshot_reserve" },
    { "snapshots", "space_snapshots" }, { "snapshot_count", "snapshots" },
};
static const char *const json_daemon[][2] = {
    { "resident_bytes", "resident_bytes" },
    { "major_faults", "major_faults" }, { "batch_bytes", "batch_bytes" },
    { "inodes_held", "inodes_held" }, { "node_bytes", "node_bytes" },
};

static void json_commits_object(FILE *out, const struct stats_sample *s)
{
    const struct stats_hist *size = stats_hist(s, "commit.bytes");
    fprintf(out, "\"commits\":{\"count\":%llu,",
            (unsigned long long)commits(s));
    json_values(out, s, json_commits, NPAIRS(json_commits), false);
    fprintf(out, ",\"bytes\":%llu,\"size_bytes\":",
            (unsigned long long)(size ? size->sum : 0));
    json_latency(out, size, 1);
    fputs(",\"duration_ms\":", out);
    json_latency(out, stats_hist(s, "commit.ns"), 1e6);
    fputc('}', out);
}

static void json_health(FILE *out, const struct stats_sample *s)
{
    uint64_t err = stats_gauge(s, "commit_error");
    uint64_t damaged = stats_counter(s, "damaged_reads");
    fprintf(out, "\"health\":{\"ok\":%s,\"damaged_reads\":%llu,"
            "\"commit_error\":", err || damaged ? "false" : "true",
            (unsigned long long)damaged);
    if (err) {
        print_json_string_to(out, strerror((int)err));
    } else {
        fputs("null", out);
    }
    fprintf(out, ",\"frozen\":%s,\"receiving\":%s}",
            stats_gauge(s, "frozen") ? "true" : "false",
            stats_gauge(s, "receiving") ? "true" : "false");
}

void stats_print_json(FILE *out, const char *volume,
                      const struct stats_sample *s)
{
    double secs = seconds_of(s), rate = hit_rate(s);
    fputs("{\"volume\":", out);
    print_json_string_to(out, volume);
    fprintf(out, ",\"uptime_seconds\":%.3f,\"started\":%llu,", secs,
            (unsigned long long)s->started);
    json_operations(out, s, secs);
    fprintf(out, ",\"bytes\":{\"read\":%llu,\"read_around\":%llu,"
            "\"written\":%llu},\"blocks\":{",
            (unsigned long long)stats_counter(s, "read_bytes"),
            (unsigned long long)stats_counter(s, "readaround_bytes"),
            (unsigned long long)stats_counter(s, "write_bytes"));
    json_values(out, s, json_blocks, NPAIRS(json_blocks), false);
    fputs("},\"write_cache\":{", out);
    json_values(out, s, json_cache, NPAIRS(json_cache), false);
    if (rate < 0)
        fputs(",\"hit_rate\":null", out);
    else
        fprintf(out, ",\"hit_rate\":%.4f", rate);
    fprintf(out, ",\"cached_bytes\":%llu},",
            (unsigned long long)stats_gauge(s, "wcache_bytes"));
    json_commits_object(out, s);
    fputs(",\"space\":{", out);
    json_values(out, s, json_space, NPAIRS(json_space), true);
    fputs("},\"daemon\":{", out);
    json_values(out, s, json_daemon, NPAIRS(json_daemon), true);
    fputs("},", out);
    json_health(out, s);
    fputs("}\n", out);
}

/* ---- intervals (--watch) ---- */

/* The busiest operations of the interval, at most 4, busiest first. */
static void print_busiest(FILE *out, const struct stats_sample *d,
                          double secs)
{
    bool shown[64] = { false };
    for (int k = 0; k < 4; k++) {
        size_t best = d->nhists;
        for (size_t i = 0; i < d->nhists && i < 64; i++)
            if (op_name(&d->hists[i]) && !shown[i] && d->hists[i].count &&
                (best == d->nhists || d->hists[i].count > d->hists[best].count))
                best = i;
        if (best == d->nhists)
            break;
        shown[best] = true;
        fprintf(out, "%s%s %.1f/s", k ? ", " : "  ", op_name(&d->hists[best]),
                per_second(d->hists[best].count, secs));
    }
}

void stats_print_interval(FILE *out, const struct stats_sample *d,
                          double secs, bool header)
{
    if (header)
        fprintf(out, "%-8s %10s %11s %11s %11s %9s %9s  %s\n", "time",
                "ops/s", "read MiB/s", "write MiB/s", "dedup MiB/s",
                "commits/s", "mean us", "busiest operations");
    uint64_t sum_ns, total = op_total(d, &sum_ns);
    char when[16];
    time_t now = time(NULL);
    strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
    fprintf(out, "%-8s %10.1f %11.2f %11.2f %11.2f %9.2f %9.1f", when,
            per_second(total, secs),
            per_second(stats_counter(d, "read_bytes"), secs) / 1048576,
            per_second(stats_counter(d, "write_bytes"), secs) / 1048576,
            per_second(stats_counter(d, "dedup_bytes"), secs) / 1048576,
            per_second(commits(d), secs),
            total ? (double)sum_ns / (double)total / 1e3 : 0);
    print_busiest(out, d, secs);
    fputc('\n', out);
    fflush(out);
}

void stats_print_interval_json(FILE *out, const char *volume,
                               const struct stats_sample *d, double secs)
{
    fputs("{\"volume\":", out);
    print_json_string_to(out, volume);
    fprintf(out, ",\"time\":%lld,\"interval_seconds\":%.3f,"
            "\"operations_per_second\":{", (long long)time(NULL), secs);
    bool first = true;
    for (size_t i = 0; i < d->nhists; i++) {
        const struct stats_hist *h = &d->hists[i];
        if (!op_name(h))
            continue;
        fprintf(out, "%s\"%s\":%.3f", first ? "" : ",", op_name(h),
                per_second(h->count, secs));
        first = false;
    }
    fputs("},\"latency_us\":{", out);
    first = true;
    for (size_t i = 0; i < d->nhists; i++) {
        const struct stats_hist *h = &d->hists[i];
        if (!op_name(h) || !h->count)
            continue;
        fprintf(out, "%s\"%s\":", first ? "" : ",", op_name(h));
        json_latency(out, h, 1e3);
        first = false;
    }
    fprintf(out, "},\"read_bytes_per_second\":%.1f,"
            "\"written_bytes_per_second\":%.1f,"
            "\"deduplicated_bytes_per_second\":%.1f,"
            "\"commits_per_second\":%.3f}\n",
            per_second(stats_counter(d, "read_bytes"), secs),
            per_second(stats_counter(d, "write_bytes"), secs),
            per_second(stats_counter(d, "dedup_bytes"), secs),
            per_second(commits(d), secs));
    fflush(out);
}

/* ---- Prometheus ---- */

/* A label value: backslash, double quote and newline escaped. */
static void prom_label_value(FILE *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(out, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", out);
        else
            fputc(*v, out);
    }
}

static void prom_family(FILE *out, const char *name, const char *type,
                        const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* NAME{volume="V"[,EXTRA]} VALUE */
static void prom_sample(FILE *out, const char *name, const char *volume,
                        const char *extra, double value)
{
    fprintf(out, "%s{volume=\"", name);
    prom_label_value(out, volume);
    fprintf(out, "\"%s%s} %.17g\n", extra ? "," : "", extra ? extra : "",
            value);
}

struct prom_metric {
    const char *name, *type, *source, *help;
    bool gauge; /* read from the gauges, else the counters */
};

static const struct prom_metric prom_metrics[] = {
    { "snapfs_read_bytes_total", "counter", "read_bytes",
      "Bytes answered to reads since the mount.", false },
    { "snapfs_read_around_bytes_total", "counter", "readaround_bytes",
      "Bytes of read blocks given to the kernel's cache beyond the "
      "requests.", false },
    { "snapfs_written_bytes_total", "counter", "write_bytes",
      "Bytes of writes accepted since the mount.", false },
    { "snapfs_new_blocks_total", "counter", "new_blocks",
      "Blocks stored new by writes.", false },
    { "snapfs_new_block_logical_bytes_total", "counter", "new_logical_bytes",
      "Bytes of the new blocks before compression.", false },
    { "snapfs_new_block_stored_bytes_total", "counter", "new_stored_bytes",
      "Bytes of the new blocks after compression.", false },
    { "snapfs_compressed_blocks_total", "counter", "new_compressed_blocks",
      "New blocks stored compressed.", false },
    { "snapfs_dedup_blocks_total", "counter", "dedup_blocks",
      "Blocks written that were already stored (deduplicated).", false },
    { "snapfs_dedup_bytes_total", "counter", "dedup_bytes",
      "Bytes of the deduplicated blocks.", false },
    { "snapfs_zero_bytes_total", "counter", "zero_bytes",
      "Bytes of zeros written, left as holes.", false },
    { "snapfs_inline_bytes_total", "counter", "inline_bytes",
      "Bytes of short tails kept in their extent records.", false },
    { "snapfs_write_cache_hits_total", "counter", "wcache_hits",
      "Partial-block writes into a block already cached.", false },
    { "snapfs_write_cache_misses_total", "counter", "wcache_misses",
      "Partial-block writes that loaded their block into the cache.", false },
    { "snapfs_write_cache_bypasses_total", "counter", "wcache_bypasses",
      "Partial-block writes stored at once for want of cache room.", false },
    { "snapfs_write_cache_stored_blocks_total", "counter",
      "wcache_stored_blocks", "Cached partial blocks stored.", false },
    { "snapfs_write_cache_read_overlays_total", "counter",
      "wcache_read_overlays", "Reads of files with cached blocks.", false },
    { "snapfs_commit_errors_total", "counter", "commit_errors",
      "Batches whose commit failed.", false },
    { "snapfs_damaged_reads_total", "counter", "damaged_reads",
      "Reads refused with EIO: a stored block failed its verification.",
      false },
    { "snapfs_major_page_faults_total", "counter", "major_faults",
      "Major page faults of the daemon (store pages read from disk).", true },
    { "snapfs_write_cache_bytes", "gauge", "wcache_bytes",
      "Bytes of partial blocks cached now.", true },
    { "snapfs_batch_bytes", "gauge", "batch_bytes",
      "Bytes written into the batch not committed yet.", true },
    { "snapfs_resident_memory_bytes", "gauge", "resident_bytes",
      "Resident memory of the daemon.", true },
    { "snapfs_inodes_held", "gauge", "inodes_held",
      "Inodes the kernel holds (or that are open or in use).", true },
    { "snapfs_node_table_bytes", "gauge", "node_bytes",
      "Memory of the daemon's node table.", true },
    { "snapfs_space_size_bytes", "gauge", "space_size",
      "Size of the volume.", true },
    { "snapfs_space_used_bytes", "gauge", "space_used",
      "Space in use, snapshots included.", true },
    { "snapfs_space_available_bytes", "gauge", "space_available",
      "Space ordinary writes may use.", true },
    { "snapfs_space_snapshot_reserve_bytes", "gauge",
      "space_snapshot_reserve", "The snapshot reserve.", true },
    { "snapfs_space_snapshots_bytes", "gauge", "space_snapshots",
      "Space only snapshots hold.", true },
    { "snapfs_snapshots", "gauge", "snapshots", "Snapshots of the volume.",
      true },
    { "snapfs_frozen", "gauge", "frozen",
      "1 while frozen for a consistency-group snapshot.", true },
    { "snapfs_receiving", "gauge", "receiving",
      "1 while a replication stream is received.", true },
};

/* Histogram H as FAMILY (with EXTRA labels), buckets at 2^FIRST ..
 * 2^LAST units of H, in units of SCALE (1e-9: ns as seconds). */
static void prom_histogram(FILE *out, const char *family, const char *volume,
                           const char *extra, const struct stats_hist *h,
                           int first, int last, double scale)
{
    char name[128], labels[256];
    uint64_t cum = 0;
    size_t b = 0;
    snprintf(name, sizeof(name), "%s_bucket", family);
    for (int k = first; k <= last + 1; k++) {
        double le = k <= last ? (double)(1ull << k) : INFINITY;
        while (h && b < h->nbuckets && h->buckets[b].le <= le)
            cum += h->buckets[b++].count;
        if (k <= last)
            snprintf(labels, sizeof(labels), "%s%sle=\"%.9g\"",
                     extra ? extra : "", extra ? "," : "", le * scale);
        else
            snprintf(labels, sizeof(labels), "%s%sle=\"+Inf\"",
                     extra ? extra : "", extra ? "," : "");
        prom_sample(out, name, volume, labels, (double)cum);
    }
    snprintf(name, sizeof(name), "%s_sum", family);
    prom_sample(out, name, volume, extra, h ? (double)h->sum * scale : 0);
    snprintf(name, sizeof(name), "%s_count", family);
    prom_sample(out, name, volume, extra, (double)cum);
}

static void prom_operations(FILE *out, const char *volume,
                            const struct stats_sample *s)
{
    prom_family(out, "snapfs_operation_duration_seconds", "histogram",
                "FUSE operations by type and how long the daemon took.");
    for (size_t i = 0; i < s->nhists; i++) {
        const struct stats_hist *h = &s->hists[i];
        char extra[64];
        if (!op_name(h))
            continue;
        snprintf(extra, sizeof(extra), "op=\"%s\"", op_name(h));
        prom_histogram(out, "snapfs_operation_duration_seconds", volume,
                       extra, h, 10, 35, 1e-9);
    }
}

static void prom_commits(FILE *out, const char *volume,
                         const struct stats_sample *s)
{
    static const char *const triggers[][2] = {
        { "interval", "commits_interval" }, { "size", "commits_size" },
        { "sync", "commits_sync" }, { "unmount", "commits_unmount" },
    };
    prom_family(out, "snapfs_commits_total", "counter",
                "Batches committed, by what triggered the commit.");
    for (size_t i = 0; i < NPAIRS(triggers); i++) {
        char extra[64];
        snprintf(extra, sizeof(extra), "trigger=\"%s\"", triggers[i][0]);
        prom_sample(out, "snapfs_commits_total", volume, extra,
                    (double)stats_counter(s, triggers[i][1]));
    }
    prom_family(out, "snapfs_commit_duration_seconds", "histogram",
                "How long each commit took.");
    prom_histogram(out, "snapfs_commit_duration_seconds", volume, NULL,
                   stats_hist(s, "commit.ns"), 16, 35, 1e-9);
    prom_family(out, "snapfs_commit_size_bytes", "histogram",
                "File data written into each committed batch (metadata "
                "not counted).");
    prom_histogram(out, "snapfs_commit_size_bytes", volume, NULL,
                   stats_hist(s, "commit.bytes"), 12, 27, 1);
}

void stats_print_prometheus(FILE *out, const char *volume,
                            const struct stats_sample *s)
{
    prom_family(out, "snapfs_uptime_seconds", "gauge",
                "Seconds since the daemon began serving (counters start "
                "then).");
    prom_sample(out, "snapfs_uptime_seconds", volume, NULL, seconds_of(s));
    prom_family(out, "snapfs_start_time_seconds", "gauge",
                "When the daemon began serving, seconds since the epoch.");
    prom_sample(out, "snapfs_start_time_seconds", volume, NULL,
                (double)s->started);
    prom_family(out, "snapfs_healthy", "gauge",
                "1 while commits succeed, 0 once one failed.");
    prom_sample(out, "snapfs_healthy", volume, NULL,
                stats_gauge(s, "commit_error") ? 0 : 1);
    prom_operations(out, volume, s);
    prom_commits(out, volume, s);
    for (size_t i = 0; i < NPAIRS(prom_metrics); i++) {
        const struct prom_metric *m = &prom_metrics[i];
        prom_family(out, m->name, m->type, m->help);
        prom_sample(out, m->name, volume, NULL,
                    (double)(m->gauge ? stats_gauge(s, m->source)
                                      : stats_counter(s, m->source)));
    }
}
