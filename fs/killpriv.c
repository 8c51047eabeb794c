/*
 * killpriv.c - the daemon, not the kernel, clears setuid, setgid and file
 * capabilities when a file is written, truncated or given away
 * (FUSE_HANDLE_KILLPRIV_V2), so that a write(2) costs no round trip to ask
 * for security.capability first.
 *
 * THEORY
 *
 * Before every write(2) into a file, the VFS asks whether the write must
 * clear the file's privileges (file_remove_privs): whether it is setuid or
 * setgid, and whether it has a security.capability attribute.  A local
 * filesystem marks an inode that has neither (S_NOSEC) and skips the
 * question from then on; FUSE gives up that mark, so every write(2) asked
 * the daemon for security.capability: a round trip, two thread wake-ups,
 * on the writer's path, which for 4 KiB writes through the page cache was
 * most of the time each write(2) took.  A filesystem that takes
 * FUSE_HANDLE_KILLPRIV_V2 promises to clear the privileges itself, and the
 * kernel then keeps the mark: it asks once per inode.
 *
 * libfuse 3.14 (Debian 12) knows neither the flag nor the per-request
 * flags that come with it, and masks them out of what it hands the
 * operations.  It does let a filesystem supply the reads and writes of the
 * /dev/fuse channel (fuse_session_custom_io), so this file reads each
 * request itself and notes, for the thread that will handle it (libfuse's
 * loop handles a request on the thread that read it), whether the kernel
 * asked to clear setuid and setgid:
 *   - FUSE_WRITE_KILL_SUIDGID in a write (the writer lacks CAP_FSETID; the
 *     kernel sends such writes through, not through its cache);
 *   - FATTR_KILL_SUIDGID in a setattr (a truncate by such a caller);
 *   - FUSE_OPEN_KILL_SUIDGID in an open or create with O_TRUNC.
 * It takes the flag in the INIT reply only when the kernel offered it.
 * What the operations must then do (ops.c: clear_suidgid, op_setattr),
 * as the VFS would: setuid is cleared, setgid only with group execute
 * permission; a change of owner or group clears them whoever asks; the
 * capability attribute goes with any write, truncate or change of owner,
 * and the kernel still removes it itself when it finds one (it asks once
 * per inode, and again after a security.* attribute is set).
 *
 * Nothing here changes a reply but the INIT one, and a read or write of
 * the channel fails exactly as libfuse's own would.
 */
#define _GNU_SOURCE
#include "killpriv.h"

#include <linux/fuse.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

static __thread bool request_kills_suidgid;
static uint64_t init_unique;       /* the INIT request's, while it is open */
static bool kernel_offers_v2;
static bool v2_taken;

/* Is MASK set in the 32-bit flags at offset AT of an argument of ARGN
 * bytes that must be at least NEED long (else: not set)? */
static bool flag_set(const char *arg, size_t argn, size_t need, size_t at,
                     uint32_t mask)
{
    uint32_t flags;
    if (argn < need)
        return false;
    memcpy(&flags, arg + at, sizeof(flags));
    return (flags & mask) != 0;
}

/* Note what the request in BUF (N bytes, as read) asks of killpriv. */
static void inspect_request(const void *buf, size_t n)
{
    const struct fuse_in_header *h = buf;
    const char *arg = (const char *)buf + sizeof(*h);
    size_t argn = n - sizeof(*h);
    bool kills = false;
    switch (h->opcode) {
    case FUSE_INIT:
        if (argn >= offsetof(struct fuse_init_in, flags) + sizeof(uint32_t)) {
            __atomic_store_n(&kernel_offers_v2,
                             flag_set(arg, argn, argn,
                                      offsetof(struct fuse_init_in, flags),
                                      FUSE_HANDLE_KILLPRIV_V2),
                             __ATOMIC_RELEASE);
            __atomic_store_n(&init_unique, h->unique, __ATOMIC_RELEASE);
        }
        break;
    case FUSE_WRITE:
        kills = flag_set(arg, argn, sizeof(struct fuse_write_in),
                         offsetof(struct fuse_write_in, write_flags),
                         FUSE_WRITE_KILL_SUIDGID);
        break;
    case FUSE_SETATTR:
        kills = flag_set(arg, argn, sizeof(struct fuse_setattr_in),
                         offsetof(struct fuse_setattr_in, valid),
                         FATTR_KILL_SUIDGID);
        break;
    case FUSE_OPEN:
        kills = flag_set(arg, argn, sizeof(struct fuse_open_in),
                         offsetof(struct fuse_open_in, open_flags),
                         FUSE_OPEN_KILL_SUIDGID);
        break;
    case FUSE_CREATE:
        kills = flag_set(arg, argn, sizeof(struct fuse_create_in),
                         offsetof(struct fuse_create_in, open_flags),
                         FUSE_OPEN_KILL_SUIDGID);
        break;
    default:
        break;
    }
    request_kills_suidgid = kills;
}

static ssize_t channel_read(int fd, void *buf, size_t len, void *userdata)
{
    (void)userdata;
    ssize_t n = read(fd, buf, len);
    if (n >= (ssize_t)sizeof(struct fuse_in_header))
        inspect_request(buf, (size_t)n);
    else
        request_kills_suidgid = false;
    return n;
}

/* Take FUSE_HANDLE_KILLPRIV_V2 in the reply to INIT, if offered. */
static void amend_init_reply(struct iovec *iov, int count)
{
    if (count < 2 || iov[0].iov_len < sizeof(struct fuse_out_header))
        return;
    const struct fuse_out_header *out = iov[0].iov_base;
    uint64_t unique = __atomic_load_n(&init_unique, __ATOMIC_ACQUIRE);
    if (!unique || out->unique != unique || out->error)
        return;
    __atomic_store_n(&init_unique, 0, __ATOMIC_RELEASE);
    if (!__atomic_load_n(&kernel_offers_v2, __ATOMIC_ACQUIRE) ||
        iov[1].iov_len < offsetof(struct fuse_init_out, flags) + sizeof(uint32_t))
        return;
    struct fuse_init_out *init = iov[1].iov_base;
    init->flags |= FUSE_HANDLE_KILLPRIV_V2;
    __atomic_store_n(&v2_taken, true, __ATOMIC_RELEASE);
}

static ssize_t channel_writev(int fd, struct iovec *iov, int count,
                              void *userdata)
{
    (void)userdata;
    if (__atomic_load_n(&init_unique, __ATOMIC_RELAXED))
        amend_init_reply(iov, count);
    return writev(fd, iov, count);
}

int killpriv_attach(struct fuse_session *se)
{
    static const struct fuse_custom_io io = {
        .read = channel_read,
        .writev = channel_writev,
    };
    return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

bool killpriv_active(void)
{
    return __atomic_load_n(&v2_taken, __ATOMIC_ACQUIRE);
}

bool killpriv_request_kills_suidgid(void)
{
    return killpriv_active() && request_kills_suidgid;
}

uint32_t killpriv_cleared_mode(uint32_t mode)
{
    mode &= ~(uint32_t)S_ISUID;
    if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
        mode &= ~(uint32_t)S_ISGID;
    return mode;
}
