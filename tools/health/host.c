/*
 * host.c - the checks of `snapfs health` that belong to the host rather
 * than to one volume: mirror relationships (their lag against their
 * schedule), the peers this host connects to (reachable?), and TLS
 * certificates (days to expiry).
 *
 * Guarantees: nothing is changed; a peer is tried with one TCP connection
 * that is closed at once (no TLS, no key used) and given at most
 * o->peer_timeout_ms; a relationship's lag is its recorded newest
 * destination snapshot's age (what `mirror show` reports after the last
 * transfer), measured by the policy clock (SNAPFS_CLOCK_FILE in tests).
 *
 * Lag against the schedule: a relationship updated every period P is at
 * most about P behind when all is well (the newest snapshot was taken at
 * the last slot).  It is a warning past HEALTH_LAG_WARN periods (a slot
 * was missed) and critical past HEALTH_LAG_CRIT.  Relationships without a
 * schedule are listed, never judged; uninitialized ones are warnings.
 */
#define _GNU_SOURCE
#include "health/health.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "mirror/mirror.h"
#include "peer/peer.h"

/* ---- mirrors ---- */

/* The period of schedule TEXT around NOW, in seconds (0: none). */
static int64_t schedule_period(const char *text, int64_t now)
{
    struct sfs_schedule s;
    if (!*text || sfs_schedule_parse(text, &s))
        return 0;
    int64_t prev = sfs_schedule_prev(&s, now);
    return sfs_schedule_next(&s, prev) - prev;
}

static void format_age(int64_t secs, char *out, size_t cap)
{
    if (secs < 3600)
        snprintf(out, cap, "%lld min", (long long)(secs / 60));
    else if (secs < 3 * 86400)
        snprintf(out, cap, "%.1f h", (double)secs / 3600);
    else
        snprintf(out, cap, "%.1f days", (double)secs / 86400);
}

static void check_mirror(const char *id, const char *store,
                         const struct health_opts *o, health_report rep,
                         void *arg)
{
    struct mirror_rel m;
    struct mirror_state s;
    if (mirror_rel_load(id, &m))
        return;
    if (store && strcmp(m.src, store))
        return;
    if (mirror_state_load(id, &s))
        memset(&s, 0, sizeof(s));
    char subject[2 * PATH_MAX + 8], lag[32], period[32];
    snprintf(subject, sizeof(subject), "%s -> %s", m.src, m.dst);
    if (!s.newest[0]) {
        health_add(rep, arg, "mirror", subject, HEALTH_WARNING, "not "
                   "initialized (no snapshot at the destination yet)%s%s",
                   s.last_error[0] ? "; last error: " : "", s.last_error);
        return;
    }
    int64_t age = o->now - s.newest_ctime;
    format_age(age < 0 ? 0 : age, lag, sizeof(lag));
    int64_t p = schedule_period(m.schedule, o->now);
    if (!p) {
        health_add(rep, arg, "mirror", subject, HEALTH_OK, "lag %s (newest "
                   "%s); no schedule to judge it by", lag, s.newest);
        return;
    }
    format_age(p, period, sizeof(period));
    int level = age > HEALTH_LAG_CRIT * p   ? HEALTH_CRITICAL
                : age > HEALTH_LAG_WARN * p ? HEALTH_WARNING : HEALTH_OK;
    health_add(rep, arg, "mirror", subject, level, "lag %s (newest %s), "
               "schedule %s (every %s)%s%s%s", lag, s.newest, m.schedule,
               period, level ? ": past its schedule" : "",
               s.last_error[0] ? "; last error: " : "", s.last_error);
}

void health_mirrors(const char *store, const struct health_opts *o,
                    health_report rep, void *arg)
{
    char **ids = NULL;
    size_t n = 0;
    if (mirror_rel_ids(&ids, &n))
        return; /* no registry here: no relationship */
    for (size_t i = 0; i < n; i++) {
        check_mirror(ids[i], store, o, rep, arg);
        free(ids[i]);
    }
    free(ids);
}

/* ---- peers ---- */

/* One TCP connection to HOST:PORT within TIMEOUT_MS: 0 or a negative
 * errno (-ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, ...). */
static int tcp_reach(const char *host, const char *port, unsigned timeout_ms)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
    if (getaddrinfo(host, port, &hints, &ai))
        return -EHOSTUNREACH;
    int rc = -EHOSTUNREACH;
    for (struct addrinfo *a = ai; a && rc; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK |
                        SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        if (!connect(fd, a->ai_addr, a->ai_addrlen)) {
            rc = 0;
        } else if (errno == EINPROGRESS) {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            int err = 0;
            socklen_t len = sizeof(err);
            if (poll(&p, 1, (int)timeout_ms) <= 0)
                rc = -ETIMEDOUT;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) || err)
                rc = -(err ? err : errno);
            else
                rc = 0;
        } else {
            rc = -errno;
        }
        close(fd);
    }
    freeaddrinfo(ai);
    return rc;
}

void health_peers(const struct health_opts *o, health_report rep, void *arg)
{
    char **names = NULL;
    size_t n = 0;
    if (peer_record_names(&names, &n))
        return;
    for (size_t i = 0; i < n; i++) {
        struct peer_record r;
        char host[PEER_ADDRESS_MAX], port[16];
        if (peer_record_load(names[i], &r) ||
            peer_address_split(r.address, host, sizeof(host), port,
                               sizeof(port))) {
            health_add(rep, arg, "peer", names[i], HEALTH_WARNING,
                       "its record cannot be read");
        } else {
            int rc = tcp_reach(host, port, o->peer_timeout_ms);
            if (rc)
                health_add(rep, arg, "peer", names[i], HEALTH_WARNING,
                           "%s is not reachable: %s", r.address,
                           rc == -ETIMEDOUT ? "no answer within the timeout"
                                            : strerror(-rc));
            else
                health_add(rep, arg, "peer", names[i], HEALTH_OK,
                           "%s answers", r.address);
        }
        OPENSSL_cleanse(&r, sizeof(r)); /* it held the peer's key */
        free(names[i]);
    }
    free(names);
}

/* ---- certificates ---- */

static void check_cert_file(const char *path, const struct health_opts *o,
                            health_report rep, void *arg)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        health_add(rep, arg, "certificate", path, HEALTH_WARNING,
                   "cannot be read: %s", strerror(errno));
        return;
    }
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!x) {
        health_add(rep, arg, "certificate", path, HEALTH_WARNING,
                   "no PEM certificate in it");
        return;
    }
    ASN1_TIME *now = ASN1_TIME_set(NULL, (time_t)o->now);
    int days = 0, secs = 0;
    bool ok = now && ASN1_TIME_diff(&days, &secs, now, X509_get0_notAfter(x));
    char subject[256] = "";
    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
    if (!ok) {
        health_add(rep, arg, "certificate", path, HEALTH_WARNING,
                   "its expiry date cannot be read");
    } else {
        double left = days + secs / 86400.0;
        int level = left < HEALTH_CERT_CRIT_DAYS   ? HEALTH_CRITICAL
                    : left < HEALTH_CERT_WARN_DAYS ? HEALTH_WARNING : HEALTH_OK;
        if (left < 0)
            health_add(rep, arg, "certificate", path, level, "%s expired "
                       "%.1f days ago", subject, -left);
        else
            health_add(rep, arg, "certificate", path, level, "%s expires in "
                       "%.1f days", subject, left);
    }
    ASN1_TIME_free(now);
    X509_free(x);
}

static bool cert_name(const char *name)
{
    size_t n = strlen(name);
    return (n > 4 && !strcmp(name + n - 4, ".crt")) ||
           (n > 4 && !strcmp(name + n - 4, ".pem"));
}

void health_certificates(const struct health_opts *o, health_report rep,
                         void *arg)
{
    for (size_t i = 0; i < o->ncerts; i++)
        check_cert_file(o->certs[i], o, rep, arg);
    const char *dir = peer_config_dir();
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    closedir(d);
    for (int i = 0; i < n; i++) {
        if (cert_name(list[i]->d_name)) {
            char path[PATH_MAX];
            snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
            check_cert_file(path, o, rep, arg);
        }
        free(list[i]);
    }
    if (n > 0)
        free(list);
}
