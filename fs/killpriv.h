/*
 * killpriv.h - setuid, setgid and capabilities cleared by the daemon
 * (FUSE_HANDLE_KILLPRIV_V2); see killpriv.c.
 */
#ifndef SNAPFS_KILLPRIV_H
#define SNAPFS_KILLPRIV_H

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

/* Read and write SE's channel through killpriv.c (after
 * fuse_session_mount).  Returns 0, or a negative errno from libfuse. */
int killpriv_attach(struct fuse_session *se);

/* Did the kernel take FUSE_HANDLE_KILLPRIV_V2 (so the daemon clears)? */
bool killpriv_active(void);

/* Does the request this thread is handling ask to clear setuid and setgid
 * (a write, truncate or O_TRUNC open by a caller without CAP_FSETID)?
 * Read it on the request's own thread, before handing work to another. */
bool killpriv_request_kills_suidgid(void);

/* MODE without setuid, and without setgid if group-executable. */
uint32_t killpriv_cleared_mode(uint32_t mode);

#endif
