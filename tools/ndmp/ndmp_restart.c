/*
 * ndmp_restart.c - restartable NDMP backups: what a backup stopped early
 * leaves (its dump context, kept with a restart point the tape holds, or
 * deleted), and the offset map that restart point is computed from.
 *
 * THEORY.  The dump's own restart point counts the bytes it handed to its
 * pipe; behind that pipe lie this server's buffer, the LOCAL data
 * connection and the mover's record being filled, so it may be ahead of
 * the tape.  What is on the tape is the mover's bytes_moved: whole
 * records only (a partial record is written at the end of a backup, not
 * when it stops), made durable by tape_sync.  With HIST=y the history
 * reader sees every inode header go by with its offset in the image; the
 * files (the non-directories, written after every directory, in inode
 * order) go into an offset map.  When the backup stops, the restart
 * point is the last file whose header starts before the tape's end: that
 * file may be cut, so the restart writes it again, whole, and every file
 * after it; nothing is skipped.  The map only keeps the files from that
 * point on (it is trimmed as the tape grows), so it holds what is in
 * flight, not the whole dump.
 *
 * The context is kept only when all of this is known: HIST=y, this
 * server's mover (LOCAL: for a three-way backup over TCP the tape is
 * another host's and NDMPv4 gives no count of what it made durable), the
 * tape synced, and a file's header on it (before that the dump is in its
 * maps and directories: not restartable, as ONTAP's dump is restartable
 * only in its files phase).  Otherwise the context is deleted with the
 * snapshot the dump made, as before, and the log says why.  A kept
 * context holds its snapshot until a restart finishes it or
 * `snapfs dump contexts delete` abandons it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ndmp_int.h"

#define VOL_MAX 4096

void restart_map_add(struct restart_map *m, uint32_t ino, uint64_t pos)
{
    if (m->broken)
        return;
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 256;
        struct restart_entry *e = realloc(m->e, cap * sizeof(*e));
        if (!e) {
            m->broken = true;     /* no restart point: the context goes */
            return;
        }
        m->e = e;
        m->cap = cap;
    }
    m->e[m->n++] = (struct restart_entry){ .ino = ino, .pos = pos };
}

/* The index of the last file whose header starts before ON_TAPE, or -1. */
static ssize_t last_started(const struct restart_map *m, uint64_t on_tape)
{
    ssize_t k = -1;
    for (size_t i = 0; i < m->n && m->e[i].pos < on_tape; i++)
        k = (ssize_t)i;
    return k;
}

void restart_map_trim(struct restart_map *m, uint64_t on_tape)
{
    ssize_t k = last_started(m, on_tape);
    if (k <= 0)
        return;
    memmove(m->e, m->e + k, (m->n - (size_t)k) * sizeof(*m->e));
    m->n -= (size_t)k;
}

void restart_map_free(struct restart_map *m)
{
    free(m->e);
    memset(m, 0, sizeof(*m));
}

uint64_t restart_on_tape(const struct session *s)
{
    const struct mover_svc *m = &s->mover;
    if (s->data.addr.type != NDMP_ADDR_LOCAL || m->mode != MOVER_MODE_READ)
        return 0;
    return m->bytes_moved;
}

/* Run `snapfs dump contexts WHAT VOL ID [INODE]`: its exit status; the
 * first line it prints into LINE (CAP bytes, may be 0). */
static int run_contexts(struct session *s, const char *what, char *vol,
                        char *id, char *ino, char *line, size_t cap)
{
    char *argv[] = { "snapfs", "dump", "contexts", (char *)what, vol, id,
                     ino, NULL };
    int out[2];
    if (pipe2(out, O_CLOEXEC))
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(out[1], 1);
        dup2(s->o->log_fd, 2);
        execv(s->o->self, argv);
        _exit(127);
    }
    close(out[1]);
    size_t have = 0;
    bool whole = !cap;            /* the first line is in */
    ssize_t n;
    char buf[256];
    while ((n = read(out[0], buf, sizeof(buf))) > 0)
        for (ssize_t i = 0; i < n && !whole; i++) {
            if (buf[i] == '\n')
                whole = true;
            else if (have + 1 < cap)
                line[have++] = buf[i];
        }
    close(out[0]);
    if (cap)
        line[have] = 0;
    int status = 1;
    if (pid > 0)
        waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* "... (or snapfs dump contexts delete VOL ID)", the dump's last words
 * when it left a context: VOL and ID out of it; false if it left none. */
static bool left_context(const char *msg, char *vol, uint32_t *id)
{
    const char *key = "snapfs dump contexts delete ";
    const char *p = strstr(msg, key);
    if (!p)
        return false;
    snprintf(vol, VOL_MAX, "%s", p + strlen(key));
    char *close_paren = strrchr(vol, ')');
    if (close_paren)
        *close_paren = 0;
    char *space = strrchr(vol, ' ');
    if (!space)
        return false;
    *space = 0;
    char *end;
    unsigned long v = strtoul(space + 1, &end, 10);
    *id = (uint32_t)v;
    return !*end && v && v <= UINT32_MAX;
}

/* Why the context cannot be kept, or NULL (and *INO the restart point). */
static const char *not_keepable(struct session *s, uint64_t *on_tape,
                                uint32_t *ino)
{
    struct data_svc *d = &s->data;
    if (!d->hist)
        return "no file history (HIST=y), hence no offset map";
    if (d->addr.type != NDMP_ADDR_LOCAL)
        return "the tape is another host's (three-way): what reached it "
               "is not known here";
    if (d->rmap.broken)
        return "the offset map ran out of memory";
    if (tape_sync(&s->tape))
        return "the tape could not be synced";
    *on_tape = restart_on_tape(s);
    ssize_t k = last_started(&d->rmap, *on_tape);
    if (k < 0)
        return "the tape ends before the dump's first file (restartable "
               "only in the files phase)";
    *ino = d->rmap.e[k].ino;
    return NULL;
}

void restart_after_stop(struct session *s, const char *msg)
{
    struct data_svc *d = &s->data;
    char vol[VOL_MAX], ids[16], inos[16];
    uint32_t id, ino = 0;
    uint64_t on_tape = 0;
    if (!left_context(msg, vol, &id))
        return;
    snprintf(ids, sizeof(ids), "%u", id);
    const char *why = not_keepable(s, &on_tape, &ino);
    if (!why) {
        /* "... restarts at inode N": ours, or the dump's if earlier */
        char line[VOL_MAX + 128];
        const char *at;
        snprintf(inos, sizeof(inos), "%u", ino);
        if (run_contexts(s, "rewind", vol, ids, inos, line, sizeof(line)) ||
            !(at = strstr(line, " restarts at inode ")) ||
            sscanf(at, " restarts at inode %u", &ino) != 1)
            why = "its restart point could not be set (see the log)";
    }
    if (why) {
        int rc = run_contexts(s, "delete", vol, ids, NULL, NULL, 0);
        ndmp_log(s->o->log_fd, "%s: the stopped dump's context %u of %s %s "
                               "(not restartable: %s)", s->peer, id, vol,
                 rc == 0 ? "was deleted with its snapshot"
                         : "could not be deleted (see snapfs dump contexts)",
                 why);
        return;
    }
    d->restart_id = id;
    d->restart_ino = ino;
    d->restart_offset = on_tape;
    ndmp_log(s->o->log_fd, "%s: the stopped backup is restartable: context "
                           "%u of %s, from inode %u (the tape holds %llu "
                           "bytes of it); RESTART_CONTEXT=%u continues it",
             s->peer, id, vol, ino, (unsigned long long)on_tape, id);
    if (!s->closing)
        ndmp_log_message(s, NDMP_LOG_NORMAL, "the backup is restartable: "
                         "RESTART_CONTEXT=%u (from inode %u; the tape holds "
                         "%llu bytes of it)", id, ino,
                         (unsigned long long)on_tape);
}
