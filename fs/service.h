/*
 * service.h - telling a service manager (systemd, Type=notify) how the
 * daemon of a mounted volume is doing.
 */
#ifndef SNAPFS_SERVICE_H
#define SNAPFS_SERVICE_H

/* Once MOUNTPOINT answers (a stat of it, served by this daemon's loop),
 * tell the manager READY=1 with a status naming STORE; a thread of its
 * own waits for that.  Nothing happens outside a Type=notify service
 * ($NOTIFY_SOCKET unset).  Returns 0 or a negative errno. */
int service_ready_when_answering(const char *store, const char *mountpoint);

/* The loop has ended: STOPPING=1, with what the daemon does now. */
void service_stopping(const char *store);

#endif
