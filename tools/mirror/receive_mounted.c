/*
 * receive_mounted.c - `snapfs receive` into a mounted volume, and what it
 * shares with the offline receive (send.c): the per-snapshot reports, the
 * messages, the --handshake hello, the token and abort answers.
 *
 * A mounted destination is changed only by its daemon: the command passes
 * its standard input to the daemon over the control socket (SCM_RIGHTS,
 * `receive FLAGS`, protocol in fs/control.c), and relays what the daemon
 * reports, one line per snapshot received and a status at the end, as the
 * offline receive would print it: the same lines, the same messages, the
 * same exit status.  The daemon applies the stream between its clients'
 * requests and publishes each snapshot as it completes (fs/receive.c).
 * The command must live until the daemon answers: if it is killed, the
 * daemon stops the receive at its next step, keeping the last checkpoint.
 */
#define _GNU_SOURCE
#include "receive_mounted.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "replicate.h"

/* ---- shared with the offline receive ---- */

void receive_report(bool verbose, bool handshake, const char *to,
                    const char *from, const struct sfs_stream_stats *s)
{
    if (handshake) {
        printf("ok %s %llu %llu\n", to, (unsigned long long)s->bytes,
               (unsigned long long)s->pruned);
        fflush(stdout);
    }
    if (verbose) {
        char size[32];
        format_bytes(s->bytes, size, sizeof(size));
        fprintf(stderr, "received %s%s%s: %llu records, %llu removed, %s\n",
                to, from ? " from " : "", from ? from : "",
                (unsigned long long)s->records, (unsigned long long)s->kills,
                size);
        if (s->pruned)
            fprintf(stderr, "retention deleted %llu older snapshot%s\n",
                    (unsigned long long)s->pruned, s->pruned == 1 ? "" : "s");
    }
}

void receive_die(const char *dst, const char *why, int rc)
{
    if (!why && rc == -ENODATA)
        why = "no stream on standard input";
    if (!why && rc == -ENOSPC)
        why = "the destination is full; it stays at its last complete "
              "snapshot";
    if (!why && rc == -EIO)
        why = "a block of the stream does not match its hash";
    die("receive", "%s: %s", dst, why ? why : strerror(-rc));
}

int receive_print_hello(struct sfs_store *st, uint64_t after_epoch)
{
    MDB_txn *txn;
    int rc = sfs_txn_begin(st, NULL, false, &txn);
    if (rc)
        return rc;
    struct destination_info d;
    rc = destination_info_read(st, txn, after_epoch, &d);
    mdb_txn_abort(txn);
    if (!rc) {
        destination_info_print(&d, stdout);
        fflush(stdout);
    }
    return rc;
}

int receive_state_done(const struct volume *vol, bool abort, int rc,
                       const char *token)
{
    if (rc == -EBUSY)
        die("receive", "%s: the unfinished receive is of a full stream, "
            "which cannot be rolled back; make a new destination volume",
            vol->arg);
    if (rc == -EINPROGRESS)
        die("receive", "%s: a receive into it is running", vol->arg);
    if (rc && rc != -ENOENT)
        die("receive", "%s: %s", vol->arg, strerror(-rc));
    if (rc == -ENOENT)
        die("receive", "%s: no unfinished receive", vol->arg);
    if (abort)
        fprintf(stderr, "receive: %s: the unfinished receive was discarded\n",
                vol->arg);
    else
        printf("%s\n", token);
    return 0;
}

/* ---- through the daemon ---- */

/* What the daemon refuses of its own (the store's refusals come with
 * their reason). */
static void die_mounted(const struct volume *vol, const char *why, int rc)
{
    if (rc == -EACCES)
        die("receive", "%s: permission denied (only root or the volume's "
            "owner may receive into it)", vol->arg);
    if (rc == -EPERM)
        die("receive", "%s: is mounted read-write (it follows no source "
            "yet): receive its first, full stream unmounted (snapfs umount "
            "it first)", vol->arg);
    if (rc == -EINPROGRESS)
        die("receive", "%s: another receive into it is running", vol->arg);
    if (rc == -ETIMEDOUT)
        die("receive", "%s: the stream stalled in the middle of a batch; "
            "the destination keeps its last checkpoint (resume it with "
            "--resume-token)", vol->arg);
    if (rc == -ECANCELED)
        die("receive", "%s: the volume was unmounted during the receive; "
            "it keeps its last checkpoint (resume it with --resume-token)",
            vol->arg);
    if (rc == -EOPNOTSUPP)
        die("receive", "%s: its daemon cannot receive (an older snapfs "
            "serves it): unmount it first", vol->arg);
    receive_die(vol->arg, why, rc);
}

/* A name of a report line, in hex ("-": none), into OUT. */
static int unhex_name(const char *hex, char *out, size_t cap, bool *none)
{
    *none = !strcmp(hex, "-");
    size_t n = strlen(hex);
    if (*none)
        n = 0;
    if (n % 2 || n / 2 >= cap)
        return -EPROTO;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -EPROTO;
        out[i] = (char)v;
    }
    out[n / 2] = 0;
    return 0;
}

/* "received TO FROM BYTES RECORDS KILLS" (fs/receive.c): report it. */
static int relay_received(char *line, bool verbose, bool handshake)
{
    char *f[6], *save = NULL;
    int n = 0;
    for (char *w = strtok_r(line, "\t", &save); w && n < 6;
         w = strtok_r(NULL, "\t", &save))
        f[n++] = w;
    char to[SFS_NAME_MAX + 1], from[SFS_NAME_MAX + 1];
    bool no_to, full;
    struct sfs_stream_stats s = { 0 };
    unsigned long long bytes, records, kills;
    if (n != 6 || unhex_name(f[1], to, sizeof(to), &no_to) || no_to ||
        unhex_name(f[2], from, sizeof(from), &full) ||
        sscanf(f[3], "%llu", &bytes) != 1 ||
        sscanf(f[4], "%llu", &records) != 1 ||
        sscanf(f[5], "%llu", &kills) != 1)
        return -EPROTO;
    s.bytes = bytes;
    s.records = records;
    s.kills = kills;
    receive_report(verbose, handshake, to, full ? NULL : from, &s);
    return 0;
}

/* Read the daemon's reports until its status; *WHY gets the store's
 * reason for an error (malloc'd).  -ECONNABORTED: no status came. */
static int relay_reports(int fd, bool verbose, bool handshake, char **why)
{
    FILE *in = fdopen(fd, "r");
    if (!in)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = -ECONNABORTED;
    while ((len = getline(&line, &cap, in)) > 0) {
        line[strcspn(line, "\n")] = 0;
        int err;
        if (!strncmp(line, "received\t", 9)) {
            if (relay_received(line, verbose, handshake))
                break;
        } else if (!strncmp(line, "why\t", 4)) {
            free(*why);
            *why = strdup(line + 4);
        } else if (!strcmp(line, "OK")) {
            rc = 0;
            break;
        } else if (sscanf(line, "ERR %d", &err) == 1 && err > 0) {
            rc = -err;
            break;
        } else {
            rc = -EPROTO;
            break;
        }
    }
    free(line);
    fclose(in);
    return rc;
}

int receive_mounted(struct volume *vol, const struct receive_flags *f)
{
    bool verbose = f->verbose, handshake = f->handshake;
    if (handshake) {
        /* After the daemon committed: its hello is what it holds. */
        struct sfs_store *st = volume_read_store(vol, "receive",
                                                 "receive into");
        int rc = receive_print_hello(st, 0);
        sfs_close(st);
        if (rc)
            die("receive", "%s: %s", vol->arg, strerror(-rc));
    }
    int fd = control_connect(vol->store);
    if (fd < 0)
        die("receive", "%s: its daemon cannot be reached: %s", vol->arg,
            strerror(-fd));
    char flags[16]; /* fs/receive.h: RECV_FLAG_* */
    snprintf(flags, sizeof(flags), "%d", (f->hold_back ? 1 : 0) |
             (f->publish ? 2 : 0) | (handshake || f->publish ? 4 : 0));
    char *words[] = { "receive", flags };
    int in = STDIN_FILENO;
    int rc = control_send_fds(fd, words, 2, &in, 1);
    char *why = NULL;
    if (rc)
        close(fd);
    else
        rc = relay_reports(fd, verbose, handshake, &why);
    if (rc == -ECONNABORTED)
        die("receive", "%s: its daemon ended the receive without an answer "
            "(see %s/daemon.log)", vol->arg, vol->store);
    if (rc == -EPROTO)
        die("receive", "%s: its daemon answered something this snapfs does "
            "not understand", vol->arg);
    if (rc)
        die_mounted(vol, why, rc);
    free(why);
    free(vol->store);
    return 0;
}

int receive_mounted_state(struct volume *vol, bool abort)
{
    char *words[] = { abort ? "receive-abort" : "receive-token" };
    char *data = NULL;
    int rc = volume_request(vol, words, 1, &data);
    if (rc == -EACCES)
        die("receive", "%s: permission denied (only root or the volume's "
            "owner may receive into it)", vol->arg);
    char *token = data && data[0] ? strtok(data, "\n") : NULL;
    if (!rc && !abort && !token)
        rc = -ENOENT;
    int status = receive_state_done(vol, abort, rc, token);
    free(data);
    free(vol->store);
    return status;
}
