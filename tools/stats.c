/*
 * stats.c - `snapfs stats VOLUME [--json] [--watch [SECONDS]] [--count K]
 * [--prometheus] [--listen ADDR:PORT [--allow-remote]]`: the statistics
 * the daemon of a mounted volume keeps (fs/metrics.c), asked over its
 * control socket (root or the store's owner, as every request there).
 *
 * The front end: arguments, the volume, the messages, the --watch loop.
 * Reading, rendering and serving are tools/stats/.  Asking changes
 * nothing the daemon counts: no syncfs, no commit.  An interval of
 * --watch is measured by the daemon's own clock (the difference of its
 * uptimes), so a slow answer does not distort the rates; a daemon that
 * restarted meanwhile (uptime went back) starts the rates again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "stats/stats.h"

struct stats_opts {
    bool json, prometheus, watch, allow_remote;
    double interval;       /* --watch SECONDS (default 1) */
    unsigned long count;   /* --count K: intervals, 0 = until interrupted */
    const char *listen;    /* --listen ADDR:PORT */
    const char *volume;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* "--watch [SECONDS]": the optional number that follows. */
static void watch_interval(int argc, char **argv, int *i, double *out)
{
    *out = 1;
    if (*i + 1 >= argc || argv[*i + 1][0] == '-')
        return;
    char *end;
    double v = strtod(argv[*i + 1], &end);
    if (end == argv[*i + 1] || *end)
        return; /* not a number: the VOLUME */
    if (!(v >= 0.1 && v <= 86400))
        die_usage("stats", "--watch %s: give an interval from 0.1 to 86400 "
                  "seconds", argv[*i + 1]);
    *out = v;
    ++*i;
}

static void parse_count(const char *v, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || n == 0)
        die_usage("stats", "--count %s: give a positive number of intervals",
                  v);
    *out = n;
}

static void parse_args(int argc, char **argv, struct stats_opts *o)
{
    const char *v;
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            o->json = true;
        else if (!strcmp(argv[i], "--prometheus"))
            o->prometheus = true;
        else if (!strcmp(argv[i], "--allow-remote"))
            o->allow_remote = true;
        else if (!strcmp(argv[i], "--watch")) {
            o->watch = true;
            watch_interval(argc, argv, &i, &o->interval);
        } else if ((v = option_value("stats", "--count", argc, argv, &i)))
            parse_count(v, &o->count);
        else if ((v = option_value("stats", "--listen", argc, argv, &i)))
            o->listen = v;
        else if (argv[i][0] == '-')
            die_usage("stats", "unknown option '%s'", argv[i]);
        else if (o->volume)
            die_usage("stats", "give one VOLUME (a mountpoint or a store)");
        else
            o->volume = argv[i];
    }
    if (!o->volume)
        die_usage("stats", "give one VOLUME (a mountpoint or a store)");
    if (o->json + o->prometheus + !!o->listen > 1)
        die_usage("stats", "--json, --prometheus and --listen exclude each "
                  "other");
    if (o->watch && (o->prometheus || o->listen))
        die_usage("stats", "--watch prints rates; Prometheus computes its own "
                  "from --prometheus or --listen");
    if (o->count && !o->watch)
        die_usage("stats", "--count goes with --watch");
    if (o->allow_remote && !o->listen)
        die_usage("stats", "--allow-remote goes with --listen");
}

/* The message for a failed request; dies. */
static void die_fetch(const struct volume *vol, int rc)
{
    switch (rc) {
    case -EACCES:
        die("stats", "%s: permission denied (only root or the owner of the "
            "store may read its statistics)", vol->arg);
    case -ENODATA:
        die("stats", "%s: statistics are off: the volume was mounted with "
            "-o nostats", vol->arg);
    case -EOPNOTSUPP:
        die("stats", "%s: the daemon serving it is older than snapfs stats; "
            "remount the volume", vol->arg);
    case -ENOENT:
    case -ECONNREFUSED:
        die("stats", "%s: not mounted (statistics are kept by the daemon of "
            "a mounted volume)", vol->arg);
    case -EPROTO:
        die("stats", "%s: the daemon's answer is not one this snapfs reads",
            vol->arg);
    default:
        die("stats", "%s: %s", vol->arg, strerror(-rc));
    }
}

static void fetch(struct volume *vol, struct stats_sample *s)
{
    int rc = stats_fetch(vol, s);
    if (rc)
        die_fetch(vol, rc);
}

static void sleep_seconds(double seconds)
{
    struct timespec ts = { (time_t)seconds,
                           (long)((seconds - (double)(time_t)seconds) * 1e9) };
    while (!interrupted && nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static void watch(struct volume *vol, const struct stats_opts *o)
{
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct stats_sample then, now, delta;
    fetch(vol, &then);
    for (unsigned long n = 0; !o->count || n < o->count;) {
        sleep_seconds(o->interval);
        if (interrupted)
            break;
        fetch(vol, &now);
        if (now.uptime_ns <= then.uptime_ns) { /* remounted meanwhile */
            fprintf(stderr, "snapfs stats: %s: mounted again; rates start "
                    "over\n", vol->arg);
            stats_free(&then);
            then = now;
            continue;
        }
        if (stats_delta(&now, &then, &delta))
            die("stats", "%s: out of memory", vol->arg);
        double secs = (double)(now.uptime_ns - then.uptime_ns) / 1e9;
        if (o->json)
            stats_print_interval_json(stdout, vol->store, &delta, secs);
        else
            stats_print_interval(stdout, &delta, secs, n == 0);
        stats_free(&delta);
        stats_free(&then);
        then = now;
        n++;
    }
    stats_free(&then);
}

static void announce(int port)
{
    printf("listening on port %d: GET /metrics\n", port);
    fflush(stdout);
}

static void listen_http(struct volume *vol, const struct stats_opts *o)
{
    struct stats_sample s;
    fetch(vol, &s); /* a volume that answers, before listening */
    stats_free(&s);
    int rc = stats_serve_http(vol, o->listen, announce);
    if (rc == -EINVAL)
        die_usage("stats", "--listen %s: give an IPv4 ADDRESS:PORT, such as "
                  "127.0.0.1:9101", o->listen);
    die("stats", "--listen %s: %s", o->listen, strerror(-rc));
}

/* Loopback unless --allow-remote: the figures name the volume's paths. */
static void check_listen_address(const struct stats_opts *o)
{
    if (o->listen && !o->allow_remote && strncmp(o->listen, "127.", 4))
        die_usage("stats", "--listen %s: not a loopback address (127.x.x.x); "
                  "add --allow-remote to serve other hosts", o->listen);
}

int cmd_stats(int argc, char **argv)
{
    struct stats_opts o;
    struct volume vol;
    parse_args(argc, argv, &o);
    check_listen_address(&o);
    volume_open(&vol, "stats", o.volume);
    if (!vol.mounted)
        die("stats", "%s: not mounted (statistics are kept by the daemon of "
            "a mounted volume)", o.volume);
    if (o.listen)
        listen_http(&vol, &o);
    if (o.watch) {
        watch(&vol, &o);
    } else {
        struct stats_sample s;
        fetch(&vol, &s);
        if (o.json)
            stats_print_json(stdout, vol.store, &s);
        else if (o.prometheus)
            stats_print_prometheus(stdout, vol.store, &s);
        else
            stats_print_table(stdout, vol.store, &s);
        stats_free(&s);
    }
    free(vol.store);
    free(vol.mountpoint);
    return 0;
}
