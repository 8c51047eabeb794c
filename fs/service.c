/*
 * service.c - the daemon of a mounted volume as a systemd service
 * (Type=notify): READY=1 only once the mount answers, STOPPING=1 when its
 * loop ends and the last commit begins.
 *
 * Guarantees: READY=1 is sent after a stat(2) of the mountpoint returned,
 * which the kernel can only answer once this daemon's loop has taken the
 * FUSE handshake (INIT) and answered a GETATTR of the root; so a unit
 * ordered after snapfs@NAME.service finds the volume serving, not an
 * empty directory or a mount that blocks.  Outside a notify service
 * ($NOTIFY_SOCKET unset) nothing is sent and no thread is started.  The
 * notification protocol is libsystemd's sd_notify().
 */
#define _GNU_SOURCE
#include "service.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

struct ready_wait {
    char *store, *mountpoint;
};

static void *wait_until_answering(void *arg)
{
    struct ready_wait *w = arg;
    struct stat sb;
    if (stat(w->mountpoint, &sb) == 0)
        sd_notifyf(0, "READY=1\nSTATUS=serving %s on %s", w->store,
                   w->mountpoint);
    else
        fprintf(stderr, "snapfs: %s: the mount does not answer (%s); not "
                        "telling systemd it is ready\n", w->mountpoint,
                strerror(errno));
    free(w->store);
    free(w->mountpoint);
    free(w);
    return NULL;
}

int service_ready_when_answering(const char *store, const char *mountpoint)
{
    if (!getenv("NOTIFY_SOCKET"))
        return 0;
    struct ready_wait *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->store = strdup(store);
    w->mountpoint = strdup(mountpoint);
    pthread_t t;
    int rc = w->store && w->mountpoint ? 0 : ENOMEM;
    if (!rc)
        rc = pthread_create(&t, NULL, wait_until_answering, w);
    if (rc) {
        free(w->store);
        free(w->mountpoint);
        free(w);
        return -rc;
    }
    pthread_detach(t);
    return 0;
}

void service_stopping(const char *store)
{
    if (getenv("NOTIFY_SOCKET"))
        sd_notifyf(0, "STOPPING=1\nSTATUS=unmounted; committing %s", store);
}
