/*
 * health.h - the checks of `snapfs health` (tools/health_cmd.c is the
 * front end): each check gives a level (ok, warning, critical), its name,
 * what it looked at and one line saying what it found.
 */
#ifndef SNAPFS_HEALTH_H
#define SNAPFS_HEALTH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

enum health_level { HEALTH_OK = 0, HEALTH_WARNING = 1, HEALTH_CRITICAL = 2 };

struct health_result {
    const char *check;        /* space, consistency, snapshots, ... */
    char subject[PATH_MAX];   /* the volume, relationship, peer or file */
    int level;                /* enum health_level */
    char message[768];
};
typedef void (*health_report)(void *arg, const struct health_result *r);
/* Give REP one result, its message formatted from FMT. */
void health_add(health_report rep, void *arg, const char *check,
                const char *subject, int level, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

struct health_opts {
    bool full;             /* the full fsck instead of the quick check */
    bool fix;              /* clean what can be cleaned */
    int64_t now;           /* the clock the ages are measured by */
    unsigned peer_timeout_ms;
    const char *const *certs; /* certificate files named on the command line */
    size_t ncerts;
};

/* A volume's own checks, on its store opened read-only (a mounted one
 * after its daemon committed); SUBJECT names it in the results.
 * With O->fix, reader slots of dead processes are cleared; the holds of
 * clones that are gone are the front end's to release (leftovers.h). */
void health_volume(struct sfs_store *st, const char *subject,
                   const struct health_opts *o, health_report rep, void *arg);

/* The relationships whose source is STORE (NULL: all), their lag against
 * their schedule. */
void health_mirrors(const char *store, const struct health_opts *o,
                    health_report rep, void *arg);
/* Every peer this host connects to: reachable within the timeout? */
void health_peers(const struct health_opts *o, health_report rep, void *arg);
/* Certificates: the files named, and the *.crt and *.pem files of the
 * peer config dir: days to expiry. */
void health_certificates(const struct health_opts *o, health_report rep,
                         void *arg);

/* Warning and critical thresholds. */
#define HEALTH_SPACE_WARN_PCT 85      /* of the live share used */
#define HEALTH_SPACE_CRIT_PCT 95
#define HEALTH_FULL_WARN_DAYS 30      /* full within, at the trend */
#define HEALTH_FULL_CRIT_DAYS 7
#define HEALTH_TREND_DAYS 7           /* the samples the trend reads */
#define HEALTH_IDS_WARN_PCT 90        /* snapshot ids used */
#define HEALTH_IDS_CRIT_PCT 99
#define HEALTH_DUMP_WARN_DAYS 8       /* newest dump of a path older */
#define HEALTH_DUMP_CRIT_DAYS 32
#define HEALTH_LAG_WARN 2             /* schedule periods of lag */
#define HEALTH_LAG_CRIT 4
#define HEALTH_CERT_WARN_DAYS 30
#define HEALTH_CERT_CRIT_DAYS 7

#endif
