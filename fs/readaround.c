/*
 * readaround.c - after a read, the rest of the blocks it decoded go into
 * the kernel's page cache, so that reads of those blocks that follow are
 * answered by the kernel, not by a request.  What is given to the kernel
 * is always the file's content as the daemon holds it when it is given:
 * the rules below guarantee it.
 *
 * THEORY
 *
 * A read request asks for pages; the store keeps a file in blocks of 64
 * KiB (by default), and verifies each block whole before any byte of it
 * is answered, so a 4 KiB read decodes and hashes sixteen times what it
 * returns.  Random reads of a file paid that for every page: sixteen
 * requests, sixteen decodes, for each block read whole.  So a read
 * decodes its whole blocks anyway, answers the request, then gives the
 * kernel the rest (FUSE_NOTIFY_STORE), as a filesystem with large
 * records reads the whole record into its cache.
 *
 * The kernel copies what it is given into its page cache as it stands,
 * overwriting what it holds, dirty or not.  So it must be given a file's
 * content only when nothing newer can be in the kernel or on the way:
 *
 *   1. No handle that may write the file is open (node->nwriters).  With
 *      the writeback cache a writer's bytes live in the kernel's pages
 *      until they are written back, which happens at the latest when the
 *      handle is released (the kernel writes the pages back before it
 *      sends RELEASE); a writable mapping holds its handle until it is
 *      unmapped.
 *   2. The content read is still the file's: the node's content_gen
 *      (moved when a writer comes or goes, and after a truncation by path
 *      or an O_TRUNC open) and the volume's live_gen and live view (moved
 *      after a rollback, a restore in place or a published receive, after
 *      the change and before the kernel is told to forget the live files)
 *      are taken before the read's transaction begins and compared when
 *      the push is made.
 *   3. No cached partial blocks (node->ncached): a file with them is read
 *      with the cached bytes laid over (ops.c) and gets nothing around.
 *   4. Only bytes within the file's size: the kernel would take a store
 *      past its size for growth.
 * Each push holds the node's push_lock and the volume's live_gen_lock for
 * reading from the check to the end of the push; whoever changes what
 * rules 1 and 2 look at takes the lock for writing, so a change waits for
 * the pushes under way, and pushes after it see its date.  A change after
 * the push is followed by its invalidation (or, for a writer, by its own
 * bytes), which replaces the pages.  A snapshot's files never change, and
 * no one writes them: their blocks are given without these checks.
 *
 * Locks: the kernel takes each page's lock to fill it, and a page that a
 * read request is filling stays locked until that request is answered.
 * So the request's own pages are answered first and not given again, and
 * a push holds only locks that no read request waits for: push_lock and
 * live_gen_lock are never taken by a read, and whoever takes them for
 * writing holds nothing a read needs (push_lock is taken before the
 * node's write lock, which a read of a file with cached blocks takes,
 * never after it).  Both prefer a waiting writer, so that steady reads
 * cannot hold back a rollback.  A push may still wait for a page that
 * another read request is filling; that request needs a free FUSE thread,
 * so at most PUSHES_MAX pushes are under way at once, and a read finding
 * them all busy gives nothing (it is an optimisation: nothing is lost).
 *
 * Cost: a push is a copy of at most a block into the kernel (memory the
 * kernel reclaims like any clean page).  A reader that never comes back to
 * the rest of a block pays that copy for nothing; `-o noreadaround` turns
 * it off for such a volume.
 */
#define _GNU_SOURCE
#include "readaround.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"

bool readaround_enabled = true;

/* Pushes under way at once, at most (see THEORY, Locks). */
#define PUSHES_MAX 4
static uint32_t pushes_busy;

/*
 * Fault injection for tests (t61): SNAPFS_READAROUND_DELAY_MS in the
 * daemon's environment pauses every push that long between the answer and
 * the push, so that a change can come in between: the rules must hold
 * whatever the timing.
 */
static void test_delay(void)
{
    static long delay_ms = -1;
    long ms = __atomic_load_n(&delay_ms, __ATOMIC_RELAXED);
    if (ms < 0) {
        const char *text = getenv("SNAPFS_READAROUND_DELAY_MS");
        ms = text ? strtol(text, NULL, 10) : 0;
        __atomic_store_n(&delay_ms, ms > 0 ? ms : 0, __ATOMIC_RELAXED);
    }
    if (ms > 0)
        nanosleep(&(struct timespec){ .tv_sec = ms / 1000,
                                      .tv_nsec = (ms % 1000) * 1000000 },
                  NULL);
}

static uint64_t page_size(void)
{
    static uint64_t size;
    uint64_t s = __atomic_load_n(&size, __ATOMIC_RELAXED);
    if (!s) {
        long p = sysconf(_SC_PAGESIZE);
        s = p > 0 ? (uint64_t)p : 4096;
        __atomic_store_n(&size, s, __ATOMIC_RELAXED);
    }
    return s;
}

void readaround_date(struct vol *v, struct node *n,
                     struct readaround_span *span)
{
    span->around = false;
    span->unsettled = n && __atomic_load_n(&n->nwriters, __ATOMIC_ACQUIRE);
    span->node_gen = n ? __atomic_load_n(&n->content_gen, __ATOMIC_ACQUIRE)
                       : 0;
    span->live_gen = __atomic_load_n(&v->live_gen, __ATOMIC_ACQUIRE);
    span->view = __atomic_load_n(&v->live_view, __ATOMIC_ACQUIRE);
}

void readaround_plan(bool direct, uint32_t bs, uint64_t file_size,
                     uint64_t off, size_t size, struct readaround_span *span)
{
    span->off = off;
    span->len = off >= file_size ? 0
                : (size_t)(file_size - off < size ? file_size - off : size);
    span->start = off;
    span->end = off + span->len;
    span->around = false;
    if (!readaround_enabled || direct || span->unsettled || !span->len ||
        bs <= page_size() || off % page_size())
        return;
    uint64_t start = off - off % bs;
    uint64_t end = span->end + (bs - span->end % bs) % bs;
    if (end > file_size)
        end = file_size;
    if (start == span->off && end == span->end)
        return;
    span->start = start;
    span->end = end;
    span->around = true;
}

/* Give the kernel [FROM, TO) of SPAN, held in BUF. */
static size_t store_range(struct fuse_session *se, fuse_ino_t ino,
                          const struct readaround_span *span, const char *buf,
                          uint64_t from, uint64_t to)
{
    if (from >= to)
        return 0;
    struct fuse_bufvec bv = FUSE_BUFVEC_INIT(to - from);
    bv.buf[0].mem = (void *)(buf + (from - span->start));
    int rc = fuse_lowlevel_notify_store(se, ino, (off_t)from, &bv, 0);
    return rc ? 0 : (size_t)(to - from);
}

/* Rules 1-3 of THEORY, under N's push_lock and live_gen_lock. */
static bool still_current(struct vol *v, struct node *n,
                          const struct readaround_span *span)
{
    return __atomic_load_n(&n->nwriters, __ATOMIC_ACQUIRE) == 0 &&
           __atomic_load_n(&n->content_gen, __ATOMIC_ACQUIRE) ==
               span->node_gen &&
           __atomic_load_n(&n->ncached, __ATOMIC_ACQUIRE) == 0 &&
           __atomic_load_n(&v->live_gen, __ATOMIC_ACQUIRE) == span->live_gen &&
           __atomic_load_n(&v->live_view, __ATOMIC_ACQUIRE) == span->view;
}

static size_t push_both_sides(struct fuse_session *se, fuse_ino_t ino,
                              const struct readaround_span *span,
                              const char *buf)
{
    uint64_t page = page_size();
    uint64_t after = span->off + span->len;
    after += (page - after % page) % page; /* the request's last page */
    return store_range(se, ino, span, buf, span->start, span->off) +
           store_range(se, ino, span, buf, after, span->end);
}

size_t readaround_push(struct vol *v, struct node *n, struct fuse_session *se,
                       fuse_ino_t ino, const struct readaround_span *span,
                       const char *buf)
{
    if (!span->around || !se)
        return 0;
    if (__atomic_add_fetch(&pushes_busy, 1, __ATOMIC_ACQ_REL) > PUSHES_MAX) {
        __atomic_sub_fetch(&pushes_busy, 1, __ATOMIC_ACQ_REL);
        return 0;
    }
    test_delay();
    size_t given = 0;
    if (!n) {
        given = push_both_sides(se, ino, span, buf);
    } else {
        pthread_rwlock_rdlock(&n->push_lock);
        pthread_rwlock_rdlock(&v->live_gen_lock);
        if (still_current(v, n, span))
            given = push_both_sides(se, ino, span, buf);
        pthread_rwlock_unlock(&v->live_gen_lock);
        pthread_rwlock_unlock(&n->push_lock);
    }
    __atomic_sub_fetch(&pushes_busy, 1, __ATOMIC_ACQ_REL);
    if (given)
        metrics_add(MC_READAROUND_BYTES, given);
    return given;
}

void readaround_writer(struct node *n, int delta)
{
    pthread_rwlock_wrlock(&n->push_lock);
    __atomic_store_n(&n->nwriters, (uint32_t)((int)n->nwriters + delta),
                     __ATOMIC_RELEASE);
    __atomic_add_fetch(&n->content_gen, 1, __ATOMIC_ACQ_REL);
    pthread_rwlock_unlock(&n->push_lock);
}

void readaround_change_begin(struct node *n)
{
    pthread_rwlock_wrlock(&n->push_lock);
}

void readaround_change_end(struct node *n)
{
    __atomic_add_fetch(&n->content_gen, 1, __ATOMIC_ACQ_REL);
    pthread_rwlock_unlock(&n->push_lock);
}

void readaround_live_changed(struct vol *v)
{
    pthread_rwlock_wrlock(&v->live_gen_lock);
    __atomic_add_fetch(&v->live_gen, 1, __ATOMIC_ACQ_REL);
    pthread_rwlock_unlock(&v->live_gen_lock);
}
