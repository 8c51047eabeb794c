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
 * notification protocol is libsystemd's sd_notify(), loaded with
 * dlopen(3) only inside a notify service: linked in, libsystemd and the
 * libraries it brings would cost every snapfs command their loading.
 */
#define _GNU_SOURCE
#include "service.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dlfcn.h>
#include <systemd/sd-daemon.h>

/* Send STATE to systemd (sd_notifyf's format and arguments); a missing
 * libsystemd is reported once and the notification dropped. */
static int (*notifyf)(int unset_environment, const char *format, ...);
static pthread_once_t notifyf_once = PTHREAD_ONCE_INIT;

static void load_notifyf(void)
{
    void *lib = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
    if (lib)
        *(void **)&notifyf = dlsym(lib, "sd_notifyf");
    if (!notifyf)
        fprintf(stderr, "snapfs: cannot notify systemd: %s\n",
                lib ? "libsystemd.so.0 has no sd_notifyf" : dlerror());
}

static void notify(const char *fmt, const char *a, const char *b)
{
    pthread_once(&notifyf_once, load_notifyf);
    if (notifyf)
        notifyf(0, fmt, a, b);
}

struct ready_wait {
    char *store, *mountpoint;
};

static void *wait_until_answering(void *arg)
{
    struct ready_wait *w = arg;
    struct stat sb;
    if (stat(w->mountpoint, &sb) == 0)
        notify("READY=1\nSTATUS=serving %s on %s", w->store, w->mountpoint);
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
        notify("STOPPING=1\nSTATUS=unmounted; committing %s", store, "");
}
