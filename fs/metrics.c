/*
 * metrics.c - the statistics of a mounted volume: counters, latency and
 * size histograms, kept by the daemon from the moment it serves until it
 * stops (nothing survives a remount: every figure starts at zero).
 *
 * THEORY
 *
 * The FUSE threads count every request, so counting must cost next to
 * nothing and never make two threads wait for each other.  Every thread
 * that counts gets a shard of its own (struct shard, found through a
 * thread-local pointer): one writer per shard, so an increment is a
 * relaxed atomic load and store of a word no other thread writes (a plain
 * load and store on x86 and arm64, no lock prefix, no shared cache line
 * bouncing), and readers (the control thread answering `stats`) sum the
 * shards with relaxed loads, which never tear a 64-bit word.  A sum read
 * while requests run is a sum of values each of which was true at some
 * instant of the read; figures read while nothing runs are exact.
 * FUSE threads come and go (libfuse's loop starts and ends them as load
 * changes); the shard of a thread that ended is handed to the next new
 * one with its counts (they belong to the volume, not to the thread), so
 * memory is bounded by the most threads ever alive at once (a shard is
 * about 40 KiB: 16 FUSE threads and the daemon's own, under 1 MiB).  Shards are
 * taken and handed over under a mutex: once per thread, never per count.
 *
 * Histograms are log-scale with four buckets per power of two (each
 * bucket's bounds about 19% apart), over integers: bucket i holds values
 * v with upper(i-1) < v <= upper(i), the upper bounds being 1, 2, 3, 4,
 * 5, 6, 7, 8, 10, 12, 14, 16, 20, ... (every fourth a power of two), up
 * to 2^41; larger values go to the last bucket, reported as +Inf.
 * Latencies are in nanoseconds from the operation's start to the return
 * of its handler (after the reply was sent), commit sizes in bytes.  A
 * percentile read from them (tools/stats) is exact to the bucket and
 * interpolated within it.
 *
 * The reply to `stats` (control.c), one item a line, words separated by
 * tabs:
 *   snapfs-stats 1                 the format's version
 *   uptime_ns N                    since the daemon began serving
 *   started S                      that instant, seconds since the epoch
 *   counter NAME N                 a monotonic count (metrics.h)
 *   hist NAME COUNT SUM MAX BUCKETS
 *                                  NAME op.OPERATION (ns), commit.ns,
 *                                  commit.bytes; BUCKETS the non-empty
 *                                  buckets "LE:N,LE:N,..." ("-" if none),
 *                                  LE the inclusive upper bound or +Inf
 *   gauge NAME N                   a value now (added by control.c:
 *                                  space, memory, health)
 */
#define _GNU_SOURCE
#include "metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HIST_BUCKETS 160 /* upper bound of the last: 2^41 */

struct hist {
    uint64_t bucket[HIST_BUCKETS];
    uint64_t sum, max;
};

struct shard {
    uint64_t counter[MC_COUNT];
    struct hist op[MOP_COUNT];
    struct hist commit_ns, commit_bytes;
    struct shard *next;
    bool idle; /* its thread ended; under shards_lock */
};

bool metrics_enabled = true;

static struct shard *shards;
static pthread_mutex_t shards_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t shard_key;
static pthread_once_t shard_once = PTHREAD_ONCE_INIT;
static __thread struct shard *mine;
static uint64_t started_ns, started_unix;

static const char *const op_names[MOP_COUNT] = {
    "lookup", "forget", "getattr", "setattr", "readlink", "mknod", "mkdir",
    "unlink", "rmdir", "symlink", "rename", "link", "open", "read", "write",
    "flush", "release", "fsync", "readdir", "readdirplus", "fsyncdir",
    "statfs", "setxattr", "getxattr", "listxattr", "removexattr", "create",
    "fallocate",
};

static const char *const counter_names[MC_COUNT] = {
    "read_bytes", "write_bytes", "new_blocks", "new_logical_bytes",
    "new_stored_bytes", "new_compressed_blocks", "dedup_blocks",
    "dedup_bytes", "zero_bytes", "inline_bytes", "wcache_hits",
    "wcache_misses", "wcache_bypasses", "wcache_stored_blocks",
    "wcache_read_overlays", "commits_interval", "commits_size",
    "commits_sync", "commits_unmount", "commit_errors", "damaged_reads",
    "readaround_bytes",
};

uint64_t metrics_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- shards (THEORY) ---- */

static void shard_release(void *p)
{
    struct shard *s = p;
    pthread_mutex_lock(&shards_lock);
    s->idle = true;
    pthread_mutex_unlock(&shards_lock);
}

static void shard_key_init(void)
{
    pthread_key_create(&shard_key, shard_release);
}

/* This thread's shard: an idle one, or a new one; NULL without memory. */
static struct shard *my_shard(void)
{
    if (mine)
        return mine;
    pthread_once(&shard_once, shard_key_init);
    pthread_mutex_lock(&shards_lock);
    struct shard *s = shards;
    while (s && !s->idle)
        s = s->next;
    if (!s && (s = calloc(1, sizeof(*s)))) {
        s->next = shards;
        shards = s;
    }
    if (s)
        s->idle = false;
    pthread_mutex_unlock(&shards_lock);
    if (s) {
        mine = s;
        pthread_setspecific(shard_key, s);
    }
    return s;
}

/* One writer per word: a relaxed load and store, no read-modify-write. */
static void bump(uint64_t *word, uint64_t n)
{
    __atomic_store_n(word, __atomic_load_n(word, __ATOMIC_RELAXED) + n,
                     __ATOMIC_RELAXED);
}

static uint64_t peek(const uint64_t *word)
{
    return __atomic_load_n(word, __ATOMIC_RELAXED);
}

/* ---- histograms ---- */

static unsigned hist_index(uint64_t v)
{
    uint64_t x = v ? v - 1 : 0;
    if (x < 4)
        return (unsigned)x;
    unsigned e = 63u - (unsigned)__builtin_clzll(x);
    unsigned i = 4 * (e - 1) + (unsigned)((x >> (e - 2)) & 3);
    return i < HIST_BUCKETS ? i : HIST_BUCKETS - 1;
}

static uint64_t hist_upper(unsigned i)
{
    if (i < 4)
        return i + 1;
    unsigned e = i / 4 + 1, sub = i % 4;
    return (uint64_t)(5 + sub) << (e - 2);
}

static void hist_add(struct hist *h, uint64_t v)
{
    bump(&h->bucket[hist_index(v)], 1);
    bump(&h->sum, v);
    if (v > peek(&h->max))
        __atomic_store_n(&h->max, v, __ATOMIC_RELAXED);
}

static void hist_sum_into(struct hist *to, const struct hist *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        to->bucket[i] += peek(&from->bucket[i]);
    to->sum += peek(&from->sum);
    uint64_t m = peek(&from->max);
    if (m > to->max)
        to->max = m;
}

static void hist_write(FILE *out, const char *prefix, const char *name,
                       const struct hist *h)
{
    uint64_t count = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        count += h->bucket[i];
    fprintf(out, "hist\t%s%s\t%llu\t%llu\t%llu\t", prefix, name,
            (unsigned long long)count, (unsigned long long)h->sum,
            (unsigned long long)h->max);
    bool any = false;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        if (!h->bucket[i])
            continue;
        if (i == HIST_BUCKETS - 1)
            fprintf(out, "%s+Inf:%llu", any ? "," : "",
                    (unsigned long long)h->bucket[i]);
        else
            fprintf(out, "%s%llu:%llu", any ? "," : "",
                    (unsigned long long)hist_upper(i),
                    (unsigned long long)h->bucket[i]);
        any = true;
    }
    fputs(any ? "\n" : "-\n", out);
}

/* ---- counting ---- */

void metrics_add(enum metrics_counter c, uint64_t n)
{
    struct shard *s;
    if (!metrics_enabled || !n || !(s = my_shard()))
        return;
    bump(&s->counter[c], n);
}

void metrics_op_done(enum metrics_op op, uint64_t t0)
{
    uint64_t ns = metrics_clock() - t0;
    struct shard *s = my_shard();
    if (s)
        hist_add(&s->op[op], ns);
}

void metrics_commit(enum metrics_commit_trigger why, uint64_t ns,
                    uint64_t bytes, int rc)
{
    static const enum metrics_counter by_trigger[] = {
        [MCT_INTERVAL] = MC_COMMITS_INTERVAL, [MCT_SIZE] = MC_COMMITS_SIZE,
        [MCT_SYNC] = MC_COMMITS_SYNC, [MCT_UNMOUNT] = MC_COMMITS_UNMOUNT,
    };
    struct shard *s;
    if (!metrics_enabled || !(s = my_shard()))
        return;
    bump(&s->counter[by_trigger[why]], 1);
    if (rc)
        bump(&s->counter[MC_COMMIT_ERRORS], 1);
    hist_add(&s->commit_ns, ns);
    hist_add(&s->commit_bytes, bytes);
}

void metrics_start(void)
{
    started_ns = metrics_clock();
    started_unix = (uint64_t)time(NULL);
}

/* ---- the reply ---- */

void metrics_write(FILE *out)
{
    struct shard *sum = calloc(1, sizeof(*sum));
    if (!sum)
        return;
    pthread_mutex_lock(&shards_lock);
    for (struct shard *s = shards; s; s = s->next) {
        for (unsigned c = 0; c < MC_COUNT; c++)
            sum->counter[c] += peek(&s->counter[c]);
        for (unsigned o = 0; o < MOP_COUNT; o++)
            hist_sum_into(&sum->op[o], &s->op[o]);
        hist_sum_into(&sum->commit_ns, &s->commit_ns);
        hist_sum_into(&sum->commit_bytes, &s->commit_bytes);
    }
    pthread_mutex_unlock(&shards_lock);
    fprintf(out, "snapfs-stats\t1\n");
    fprintf(out, "uptime_ns\t%llu\n",
            (unsigned long long)(metrics_clock() - started_ns));
    fprintf(out, "started\t%llu\n", (unsigned long long)started_unix);
    for (unsigned c = 0; c < MC_COUNT; c++)
        fprintf(out, "counter\t%s\t%llu\n", counter_names[c],
                (unsigned long long)sum->counter[c]);
    for (unsigned o = 0; o < MOP_COUNT; o++)
        hist_write(out, "op.", op_names[o], &sum->op[o]);
    hist_write(out, "commit.", "ns", &sum->commit_ns);
    hist_write(out, "commit.", "bytes", &sum->commit_bytes);
    free(sum);
}
