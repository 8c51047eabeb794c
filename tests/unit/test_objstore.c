/*
 * test_objstore.c - the vault's object store (tools/vault/objstore.h).
 *
 * Without arguments (as `make unit` runs it): the file:// backend in a
 * scratch directory: targets and names refused, put/get/range/stat/
 * delete/list, put_if_absent, asynchronous transfers and their callback
 * rules, locks (exclusive, shared, stale, foreign, refresh, races), and
 * atomicity: readers racing a writer, and writers killed with SIGKILL at
 * random moments, only ever see whole objects.
 *
 * With arguments it is the driver of tests/integration/t32-objstore.sh:
 * `test_objstore TARGET COMMAND ARGS...` runs one command against any
 * target (the S3 servers there), options from the environment; see
 * usage().  Errors: "test_objstore: COMMAND: ENAME: why" on stderr, exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "objstore.h"
#include "objstore_s3.h"

static char scratch[256];

static char *target_for(const char *sub)
{
    static char t[512];
    snprintf(t, sizeof(t), "file://%s/%s", scratch, sub);
    return t;
}

static struct objstore *open_or_die(const char *target)
{
    struct objstore *os;
    int rc = objstore_open(target, NULL, &os);
    if (rc) {
        fprintf(stderr, "objstore_open %s: %d %s\n", target, rc, objstore_why(NULL));
        exit(1);
    }
    return os;
}

static void fill(char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)((i * 31 + seed * 7 + (i >> 9)) & 0xff);
}

static bool got(struct objstore *os, const char *name, const void *want, size_t len)
{
    void *buf;
    size_t n;
    int rc = objstore_get(os, name, &buf, &n);
    bool same = rc == 0 && n == len && memcmp(buf, want, len) == 0;
    free(buf);
    return same;
}

/* ---- targets and names ---- */

static void test_targets(void)
{
    struct objstore *os;
    CHECK(objstore_open("file://relative/path", NULL, &os) == -EINVAL && !os, "relative");
    CHECK(strstr(objstore_why(NULL), "file:///absolute/path"), "why: %s", objstore_why(NULL));
    CHECK(objstore_open("ftp://host/x", NULL, &os) == -EINVAL, "ftp");
    CHECK(objstore_open("/plain/path", NULL, &os) == -EINVAL, "no scheme");
    struct objstore_opts bad = { .path_style = 2 };
    CHECK(objstore_open(target_for("x"), &bad, &os) == -EINVAL, "path_style 2");

    char file[512];
    snprintf(file, sizeof(file), "%s/a-file", scratch);
    int fd = open(file, O_CREAT | O_WRONLY, 0600);
    close(fd);
    CHECK(objstore_open(target_for("a-file"), NULL, &os) == -ENOTDIR, "a file");
    CHECK(objstore_open(target_for("a-file/below"), NULL, &os) == -ENOTDIR, "below a file");
    CHECK(strstr(objstore_why(NULL), "a-file"), "why: %s", objstore_why(NULL));

    os = open_or_die(target_for("lazy/not/yet"));
    struct stat st;
    CHECK(stat(target_for("lazy") + 7, &st) == -1, "open makes no directory");
    CHECK_RC(objstore_put(os, "x", "1", 1));
    CHECK(stat(target_for("lazy/not/yet/x") + 7, &st) == 0 && (st.st_mode & 0777) == 0600,
          "put made the tree, file 0600");
    CHECK(stat(target_for("lazy/not/yet") + 7, &st) == 0 && (st.st_mode & 0777) == 0700,
          "directories 0700");
    CHECK(strcmp(objstore_target(os), target_for("lazy/not/yet")) == 0, "target");
    objstore_close(os);
}

static void test_names(void)
{
    struct objstore *os = open_or_die(target_for("names"));
    static const char *bad[] = { "", "/a", "a/", "a//b", "..", "../x", "a/../b", ".hidden",
                                 "a/.b", "a b", "a\nb", "a%b", "é", "a+b", "a:b", "a=b", "a@b", "a,b" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        CHECK(objstore_put(os, bad[i], "x", 1) == -EINVAL, "put '%s'", bad[i]);
        CHECK(strstr(objstore_why(os), "not a valid"), "why: %s", objstore_why(os));
        uint64_t size;
        CHECK(objstore_stat(os, bad[i], &size) == -EINVAL, "stat '%s'", bad[i]);
    }
    char longname[OBJSTORE_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    CHECK(objstore_put(os, longname, "x", 1) == -EINVAL, "too long");
    for (int i = 100; i < OBJSTORE_NAME_MAX; i += 100)
        longname[i] = '/';
    longname[OBJSTORE_NAME_MAX] = 0;
    CHECK_RC(objstore_put(os, longname, "x", 1));
    CHECK(got(os, longname, "x", 1), "longest name");
    CHECK_RC(objstore_put(os, "ok/A-Z_0.9~-", "y", 1));
    CHECK(objstore_list(os, "/x", NULL, NULL) == -EINVAL, "bad prefix");
    CHECK(objstore_list(os, "a//", NULL, NULL) == -EINVAL, "bad prefix //");
    objstore_close(os);
}

/* ---- the blocking calls ---- */

static void test_put_get(void)
{
    struct objstore *os = open_or_die(target_for("basic"));
    size_t big = 3u << 20;
    char *data = malloc(big);
    fill(data, big, 1);
    CHECK_RC(objstore_put(os, "packs/ab/pack1", data, big));
    CHECK(got(os, "packs/ab/pack1", data, big), "big roundtrip");
    CHECK_RC(objstore_put(os, "empty", "", 0));
    CHECK(got(os, "empty", "", 0), "empty object");
    CHECK_RC(objstore_put(os, "config", "one", 3));
    CHECK_RC(objstore_put(os, "config", "second", 6));
    CHECK(got(os, "config", "second", 6), "replaced");

    void *buf = (void *)1;
    size_t len = 9;
    CHECK(objstore_get(os, "missing", &buf, &len) == -ENOENT && !buf && !len, "missing");
    CHECK(strstr(objstore_why(os), "missing"), "why: %s", objstore_why(os));
    CHECK(objstore_get(os, "packs", &buf, &len) == -ENOENT, "a directory is no object");
    CHECK(objstore_get(os, "config/below", &buf, &len) == -ENOENT, "below an object");

    char part[100];
    CHECK_RC(objstore_get_range(os, "packs/ab/pack1", 1000, sizeof(part), part));
    CHECK(memcmp(part, data + 1000, sizeof(part)) == 0, "range");
    CHECK_RC(objstore_get_range(os, "packs/ab/pack1", big - 100, 100, part));
    CHECK(memcmp(part, data + big - 100, 100) == 0, "range at the end");
    CHECK_RC(objstore_get_range(os, "packs/ab/pack1", big, 0, part));
    CHECK(objstore_get_range(os, "packs/ab/pack1", big - 99, 100, part) == -ERANGE, "past end");
    CHECK(objstore_get_range(os, "packs/ab/pack1", big + 1, 0, part) == -ERANGE, "beyond");
    CHECK(objstore_get_range(os, "nope", 0, 1, part) == -ENOENT, "range of missing");
    CHECK(objstore_get_range(os, "packs/ab/pack1", UINT64_MAX, 2, part) == -EINVAL, "overflow");

    uint64_t size;
    CHECK(objstore_stat(os, "packs/ab/pack1", &size) == 0 && size == big, "stat");
    CHECK(objstore_stat(os, "empty", &size) == 0 && size == 0, "stat empty");
    CHECK(objstore_stat(os, "nope", &size) == -ENOENT, "stat missing");

    CHECK_RC(objstore_delete(os, "config"));
    CHECK(objstore_stat(os, "config", &size) == -ENOENT, "deleted");
    CHECK_RC(objstore_delete(os, "config"));
    CHECK_RC(objstore_delete(os, "never/was"));
    CHECK_RC(objstore_delete(os, "packs"));
    CHECK(got(os, "packs/ab/pack1", data, big), "deleting a directory name deletes nothing");

    CHECK_RC(objstore_put_if_absent(os, "once", "first", 5));
    CHECK(objstore_put_if_absent(os, "once", "again", 5) == -EEXIST, "exists");
    CHECK(got(os, "once", "first", 5), "kept the first");
    CHECK_RC(objstore_put_if_absent(os, "new/dir/once", "x", 1));
    free(data);
    objstore_close(os);
}

/* ---- listing ---- */

struct listing {
    char names[64][64];
    uint64_t sizes[64];
    int n, stop_after;
};

static int collect(void *arg, const char *name, uint64_t size)
{
    struct listing *l = arg;
    if (l->n == 64)
        return -ENOSPC;
    snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
    l->sizes[l->n++] = size;
    return l->stop_after && l->n == l->stop_after ? 42 : 0;
}

static uint64_t listed(struct listing *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->names[i], name))
            return l->sizes[i] + 1; /* 0: not listed */
    return 0;
}

static void test_list(void)
{
    struct objstore *os = open_or_die(target_for("list"));
    struct listing l = { 0 };
    CHECK(objstore_list(os, "", collect, &l) == 0 && l.n == 0, "nothing yet, not even a directory");
    const char *names[] = { "config", "keys/k1", "packs/00/p1", "packs/00/p2", "packs/ff/p3",
                            "packsplit", "pa", "index/i1", "locks/l1" };
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
        CHECK_RC(objstore_put(os, names[i], "0123456789", i));
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s/list/packs/00/.objstore-tmp-abcdef", scratch);
    close(open(tmp, O_CREAT | O_WRONLY, 0600));

    memset(&l, 0, sizeof(l));
    CHECK_RC(objstore_list(os, "", collect, &l));
    CHECK(l.n == 9, "all 9, listed %d", l.n);
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
        CHECK(listed(&l, names[i]) == i + 1, "%s with its size", names[i]);

    memset(&l, 0, sizeof(l));
    CHECK_RC(objstore_list(os, "packs/", collect, &l));
    CHECK(l.n == 3 && listed(&l, "packs/00/p1") && listed(&l, "packs/ff/p3"), "packs/: %d", l.n);
    memset(&l, 0, sizeof(l));
    CHECK_RC(objstore_list(os, "packs/0", collect, &l));
    CHECK(l.n == 2 && listed(&l, "packs/00/p2"), "packs/0: %d", l.n);
    memset(&l, 0, sizeof(l));
    CHECK_RC(objstore_list(os, "pa", collect, &l));
    CHECK(l.n == 5 && listed(&l, "pa") && listed(&l, "packsplit"), "pa: %d", l.n);
    memset(&l, 0, sizeof(l));
    CHECK_RC(objstore_list(os, "packs/00/p2", collect, &l));
    CHECK(l.n == 1, "a whole name: %d", l.n);
    memset(&l, 0, sizeof(l));
    CHECK_RC(objstore_list(os, "nothing/here/", collect, &l));
    CHECK(l.n == 0, "no such prefix");
    memset(&l, 0, sizeof(l));
    l.stop_after = 2;
    CHECK(objstore_list(os, "", collect, &l) == 42 && l.n == 2, "stopped by the callback");
    objstore_close(os);
}

/* ---- asynchronous transfers ---- */

struct async_state {
    struct objstore *os;
    int done, failed, last_rc, blocking_rc;
    bool submit_more;
};

static void count_done(void *arg, int rc)
{
    struct async_state *s = arg;
    s->done++;
    s->last_rc = rc;
    if (rc)
        s->failed++;
    uint64_t size;
    s->blocking_rc = objstore_stat(s->os, "a/0", &size);
    if (s->submit_more) {
        s->submit_more = false;
        CHECK(objstore_put_async(s->os, "a/from-callback", "cb", 2, count_done, s) == 0,
              "submit from a callback");
    }
}

static void test_async(void)
{
    struct objstore *os = open_or_die(target_for("async"));
    struct async_state s = { .os = os };
    enum { N = 40, SZ = 5000 };
    static char bufs[N][SZ], back[N][SZ];
    char name[32];
    for (int i = 0; i < N; i++) {
        fill(bufs[i], SZ, (unsigned)i);
        snprintf(name, sizeof(name), "a/%d", i);
        CHECK_RC(objstore_put_async(os, name, bufs[i], SZ, count_done, &s));
    }
    CHECK(s.done < N, "not every done ran at submit (%d)", s.done);
    CHECK(objstore_put_async(os, "../x", "", 0, count_done, &s) == -EINVAL, "bad name");
    CHECK(objstore_put_async(os, "x", "", 0, NULL, NULL) == -EINVAL, "no callback");
    CHECK_RC(objstore_wait(os));
    CHECK(s.done == N && s.failed == 0, "all done: %d, %d failed", s.done, s.failed);
    CHECK(s.blocking_rc == -EDEADLK, "a blocking call in a callback: %d", s.blocking_rc);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "a/%d", i);
        CHECK(got(os, name, bufs[i], SZ), "%s", name);
    }

    s.done = 0;
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "a/%d", i);
        CHECK_RC(objstore_get_async(os, name, 100, SZ - 100, back[i], count_done, &s));
    }
    CHECK_RC(objstore_wait(os));
    CHECK(s.done == N && s.failed == 0, "gets done: %d", s.done);
    for (int i = 0; i < N; i++)
        CHECK(memcmp(back[i], bufs[i] + 100, SZ - 100) == 0, "get_async %d", i);

    s.done = 0;
    s.submit_more = true;
    CHECK_RC(objstore_get_async(os, "a/missing", 0, 10, back[0], count_done, &s));
    CHECK_RC(objstore_get_async(os, "a/1", 0, 10, back[1], count_done, &s));
    CHECK(objstore_wait(os) == -ENOENT, "the first error");
    CHECK(strstr(objstore_why(os), "a/missing"), "why: %s", objstore_why(os));
    CHECK(s.done == 3 && s.failed == 1, "the callback's submit ran too: %d", s.done);
    CHECK(got(os, "a/from-callback", "cb", 2), "put from a callback");
    CHECK_RC(objstore_wait(os));

    s.done = 0;
    CHECK_RC(objstore_put_async(os, "a/at-close", "z", 1, count_done, &s));
    objstore_close(os);
    CHECK(s.done == 1, "close ran the pending done");
    os = open_or_die(target_for("async"));
    CHECK(got(os, "a/at-close", "z", 1), "put before close");
    objstore_close(os);
}

/* wait_below: transfers end oldest first until fewer than the limit are
 * left, the rest go on; an error of one that ended there is kept for
 * objstore_wait, which names it. */
static void test_wait_below(void)
{
    struct objstore *os = open_or_die(target_for("below"));
    struct async_state s = { .os = os };
    enum { N = 12, SZ = 3000 };
    static char bufs[N][SZ];
    char name[32];
    for (int i = 0; i < N; i++) {
        fill(bufs[i], SZ, (unsigned)i + 100);
        snprintf(name, sizeof(name), "b/%d", i);
        CHECK_RC(objstore_put_async(os, name, bufs[i], SZ, count_done, &s));
    }
    objstore_wait_below(os, 3);
    CHECK(s.done >= N - 2, "fewer than 3 puts left running: %d of %d done",
          s.done, N);
    CHECK_RC(objstore_wait(os));
    CHECK(s.done == N && s.failed == 0, "then all done: %d, %d failed",
          s.done, s.failed);
    int whole = 0;
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "b/%d", i);
        whole += got(os, name, bufs[i], SZ);
    }
    CHECK(whole == N, "every object is stored whole (%d of %d)", whole, N);

    s.done = s.failed = 0;
    CHECK_RC(objstore_put(os, "b/file", "f", 1));
    CHECK_RC(objstore_put_async(os, "b/file/under", "u", 1, count_done, &s));
    objstore_wait_below(os, 1);
    CHECK(s.done == 1 && s.failed == 1, "a put under a file ended in error: "
          "%d done, %d failed", s.done, s.failed);
    CHECK(objstore_wait(os) == -ENOTDIR, "objstore_wait reports it");
    CHECK(strstr(objstore_why(os), "b/file"), "naming it: %s",
          objstore_why(os));
    CHECK_RC(objstore_wait(os));
    objstore_close(os);
}

/* ---- locks ---- */

static void put_lock_text(struct objstore *os, const char *name, long long age, int excl)
{
    char text[200];
    int n = snprintf(text, sizeof(text), "snapfs-lock 1\nexclusive %d\nrefreshed %lld\nholder old\n",
                     excl, (long long)time(NULL) - age);
    CHECK_RC(objstore_put(os, name, text, (size_t)n));
}

static int count_locks(struct objstore *os)
{
    struct listing l = { 0 };
    CHECK_RC(objstore_list(os, "locks/", collect, &l));
    return l.n;
}

static void test_locks(void)
{
    struct objstore *os = open_or_die(target_for("locks"));
    struct objstore_lock *a, *b, *c;
    CHECK_RC(objstore_lock(os, "locks", true, "host1 pid 1: backup", 60, &a));
    CHECK(count_locks(os) == 1, "one lock object");
    CHECK(objstore_lock(os, "locks", true, "host2 pid 2: prune", 60, &b) == -EBUSY && !b, "second writer");
    CHECK(strstr(objstore_why(os), "locked by host1 pid 1: backup (an exclusive lock locks/"),
          "why: %s", objstore_why(os));
    CHECK(objstore_lock(os, "locks", false, "reader", 60, &b) == -EBUSY, "shared vs exclusive");
    CHECK(count_locks(os) == 1, "the refused left nothing");
    CHECK_RC(objstore_lock_refresh(a));
    CHECK_RC(objstore_unlock(a));
    CHECK(count_locks(os) == 0, "unlocked");

    CHECK_RC(objstore_lock(os, "locks", false, "reader 1", 60, &a));
    CHECK_RC(objstore_lock(os, "locks", false, "reader\n2", 60, &b));
    CHECK(objstore_lock(os, "locks", true, "writer", 60, &c) == -EBUSY, "exclusive vs shared");
    CHECK(strstr(objstore_why(os), "a shared lock"), "why: %s", objstore_why(os));
    CHECK_RC(objstore_unlock(a));
    CHECK_RC(objstore_unlock(b));

    put_lock_text(os, "locks/0123stale", 120, 1);
    CHECK_RC(objstore_lock(os, "locks", true, "after a crash", 60, &a));
    uint64_t size;
    CHECK(objstore_stat(os, "locks/0123stale", &size) == -ENOENT, "the stale lock was deleted");
    struct listing l = { 0 };
    CHECK_RC(objstore_list(os, "locks/", collect, &l));
    CHECK(l.n == 1, "only the new lock: %d", l.n);
    CHECK_RC(objstore_delete(os, l.names[0]));
    CHECK(objstore_lock_refresh(a) == -ESTALE, "refresh of a deleted lock");
    CHECK(strstr(objstore_why(os), "is gone"), "why: %s", objstore_why(os));
    CHECK_RC(objstore_unlock(a));
    put_lock_text(os, "locks/fresh", 5, 0);
    CHECK(objstore_lock(os, "locks", true, "w", 60, &b) == -EBUSY, "a fresh shared lock");
    CHECK(strstr(objstore_why(os), "locked by old (a shared lock locks/fresh, refreshed 5 s ago)"),
          "why: %s", objstore_why(os));
    CHECK_RC(objstore_delete(os, "locks/fresh"));

    CHECK_RC(objstore_put(os, "locks/README", "not a lock", 10));
    CHECK(objstore_lock(os, "locks", false, "r", 60, &a) == -EBUSY, "a foreign object");
    CHECK(strstr(objstore_why(os), "locks/README is not a snapfs lock"), "why: %s", objstore_why(os));
    CHECK_RC(objstore_delete(os, "locks/README"));
    CHECK(objstore_lock(os, "bad/../dir", true, "x", 60, &a) == -EINVAL, "bad dir");
    CHECK(objstore_lock(os, "locks", true, "x", 0, &a) == -EINVAL, "stale 0");
    objstore_close(os);
}

/* Lockers in several processes, started together: never two winners. */
static void test_lock_race(void)
{
    enum { LOCKERS = 4, ROUNDS = 15 };
    int max_winners = 0, rounds_won = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int go[2];
        CHECK_RC(pipe(go));
        pid_t pids[LOCKERS];
        for (int i = 0; i < LOCKERS; i++) {
            if ((pids[i] = fork()) == 0) {
                char c;
                close(go[1]);
                struct objstore *os = open_or_die(target_for("race"));
                if (read(go[0], &c, 1) != 0)
                    _exit(3);
                struct objstore_lock *l;
                int rc = objstore_lock(os, "locks", true, "racer", 60, &l);
                if (rc == 0) {
                    usleep(300 * 1000); /* hold it while the others try */
                    objstore_unlock(l);
                }
                objstore_close(os);
                _exit(rc == 0 ? 0 : rc == -EBUSY ? 1 : 2);
            }
        }
        close(go[0]);
        close(go[1]); /* all start */
        int winners = 0, odd = 0;
        for (int i = 0; i < LOCKERS; i++) {
            int st;
            waitpid(pids[i], &st, 0);
            winners += WIFEXITED(st) && WEXITSTATUS(st) == 0;
            odd += !WIFEXITED(st) || WEXITSTATUS(st) > 1;
        }
        CHECK(odd == 0, "round %d: a locker failed otherwise", round);
        max_winners = winners > max_winners ? winners : max_winners;
        rounds_won += winners == 1;
    }
    CHECK(max_winners <= 1, "%d lockers won at once", max_winners);
    CHECK(rounds_won > 0, "no round had a winner");
}

/* ---- atomicity ---- */

enum { ATOM_SIZE = 4 << 20 };

/* Put "atom/obj" over and over, each time all bytes equal to a new value. */
static void __attribute__((noreturn)) atom_writer(void)
{
    struct objstore *os = open_or_die(target_for("atom"));
    char *buf = malloc(ATOM_SIZE);
    for (unsigned k = 1;; k++) {
        memset(buf, (int)(k % 250) + 1, ATOM_SIZE);
        if (objstore_put(os, "atom/obj", buf, ATOM_SIZE))
            _exit(2);
    }
}

static bool atom_whole(struct objstore *os, bool may_be_missing)
{
    void *buf;
    size_t len;
    int rc = objstore_get(os, "atom/obj", &buf, &len);
    if (rc == -ENOENT)
        return may_be_missing;
    bool whole = rc == 0 && len == ATOM_SIZE;
    for (size_t i = 0; whole && i < len; i += 4096)
        whole = ((char *)buf)[i] == ((char *)buf)[0] && ((char *)buf)[len - 1] == ((char *)buf)[0];
    if (whole)
        whole = memcmp(buf, (char *)buf + 1, len - 1) == 0;
    free(buf);
    return whole;
}

static void test_atomic(void)
{
    struct objstore *os = open_or_die(target_for("atom"));
    pid_t w = fork();
    if (w == 0)
        atom_writer();
    int reads = 0, bad = 0;
    uint64_t size;
    while (objstore_stat(os, "atom/obj", &size) == -ENOENT)
        usleep(1000);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        bad += !atom_whole(os, false);
        reads++;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (t.tv_sec - t0.tv_sec < 2);
    kill(w, SIGKILL);
    waitpid(w, NULL, 0);
    CHECK(bad == 0, "%d of %d reads racing a writer saw a partial object", bad, reads);

    srand((unsigned)getpid());
    int kills = 0;
    for (int i = 0; i < 12; i++) {
        if ((w = fork()) == 0)
            atom_writer();
        usleep((useconds_t)(rand() % 60000));
        kill(w, SIGKILL);
        waitpid(w, NULL, 0);
        kills++;
        CHECK(atom_whole(os, false), "after SIGKILL %d the object is whole", i);
    }
    struct listing l = { 0 };
    CHECK_RC(objstore_list(os, "", collect, &l));
    CHECK(l.n == 1 && !strcmp(l.names[0], "atom/obj") && l.sizes[0] == ATOM_SIZE,
          "only the whole object is listed after %d kills (%d)", kills, l.n);
    objstore_close(os);
}

/* ---- the s3 backend's parsers (no server needed) ---- */

static bool xml_is(const char *xml, const char *tag, const char *want)
{
    char out[64];
    return xml_text(xml, xml + strlen(xml), tag, out, sizeof(out)) && !strcmp(out, want);
}

static void test_xml(void)
{
    const char *err = "<?xml version=\"1.0\"?>\n<Error><Code>SlowDown</Code>"
                      "<Message>a &lt;b&gt; &amp; &quot;c&quot; &#65;&#x42; &#x20AC;</Message>"
                      "<KeyMarker>no</KeyMarker><Key>yes</Key><Empty/></Error>";
    CHECK(xml_is(err, "Code", "SlowDown"), "code");
    CHECK(xml_is(err, "Message", "a <b> & \"c\" AB \xe2\x82\xac"), "entities");
    CHECK(xml_is(err, "Key", "yes"), "Key is not KeyMarker");
    CHECK(xml_is(err, "Empty", ""), "an empty element");
    char out[8];
    CHECK(!xml_text(err, err + strlen(err), "Missing", out, sizeof(out)), "absent");
    CHECK(!xml_text(err, err + strlen(err), "Message", out, sizeof(out)), "too long for OUT");
    const char *bad[] = { "<Code>open", "<Code>a &bogus; b</Code>", "<Code>&#0;</Code>",
                          "<Code>&#x110000;</Code>", "<Code>a<b/>c</Code>", "<Code", "<Code>&amp" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        CHECK(!xml_text(bad[i], bad[i] + strlen(bad[i]), "Code", out, sizeof(out)),
              "malformed reads as absent: %s", bad[i]);
    /* bounded: the end given is respected even without a NUL */
    char cut[] = { '<', 'C', 'o', 'd', 'e', '>', 'x', '<', '/', 'C', 'o', 'd', 'e', '>' };
    CHECK(!xml_text(cut, cut + sizeof(cut) - 1, "Code", out, sizeof(out)), "cut before '>'");
    CHECK(xml_text(cut, cut + sizeof(cut), "Code", out, sizeof(out)) && !strcmp(out, "x"), "whole");

    const char *page = "<ListBucketResult><IsTruncated>true</IsTruncated>"
                       "<Contents><Key>p/a</Key><Size>1</Size></Contents>"
                       "<Contents><Key>p/b&amp;c</Key><Size>22</Size></Contents>"
                       "<NextContinuationToken>t+/=</NextContinuationToken></ListBucketResult>";
    const char *p = page, *end = page + strlen(page), *in, *in_end;
    int n = 0;
    while (xml_next(&p, end, "Contents", &in, &in_end)) {
        char key[16];
        CHECK(xml_text(in, in_end, "Key", key, sizeof(key)), "key %d", n);
        CHECK(!strcmp(key, n ? "p/b&c" : "p/a"), "key %d: %s", n, key);
        n++;
    }
    CHECK(n == 2, "two Contents: %d", n);
    CHECK(xml_is(page, "NextContinuationToken", "t+/="), "token");
}

static void test_uri_encode(void)
{
    char buf[64];
    size_t len = 0;
    CHECK(s3_uri_encode(buf, sizeof(buf), &len, "a/b c+d=~._-", true) &&
          !strcmp(buf, "a/b%20c%2Bd%3D~._-"), "path: %s", buf);
    len = 0;
    CHECK(s3_uri_encode(buf, sizeof(buf), &len, "pre/fix/", false) && !strcmp(buf, "pre%2Ffix%2F"),
          "query: %s", buf);
    len = 0;
    CHECK(!s3_uri_encode(buf, 8, &len, "abc/def", false), "does not fit");
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_creds(void)
{
    char cred[600], conf[600], why[512], region[64];
    struct s3_creds c;
    snprintf(cred, sizeof(cred), "%s/credentials", scratch);
    snprintf(conf, sizeof(conf), "%s/config", scratch);
    write_text(cred, "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s1\n"
                     "; comment\n[work]\n  aws_access_key_id=AKIAWORK  \naws_secret_access_key = s2=\n"
                     "aws_session_token = tok\n[half]\naws_access_key_id = AKIAHALF\n");
    write_text(conf, "[default]\nregion = eu-west-1\n[profile work]\nregion=us-west-2\n"
                     "[profile cfg]\naws_access_key_id = AKIACFG\naws_secret_access_key = s3\n"
                     "[profile bad]\nregion = us_west\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
    setenv("AWS_CONFIG_FILE", conf, 1);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");

    CHECK(s3_load_creds(NULL, &c, why, sizeof(why)) == 0 && !strcmp(c.key_id, "AKIADEFAULT") &&
          !strcmp(c.secret, "s1") && !c.token[0], "default profile");
    CHECK(s3_load_creds("work", &c, why, sizeof(why)) == 0 && !strcmp(c.key_id, "AKIAWORK") &&
          !strcmp(c.secret, "s2=") && !strcmp(c.token, "tok"), "named profile");
    CHECK(s3_load_creds("cfg", &c, why, sizeof(why)) == 0 && !strcmp(c.key_id, "AKIACFG"),
          "keys in the config file");
    CHECK(s3_load_creds("half", &c, why, sizeof(why)) == -EACCES && !c.key_id[0], "no secret");
    CHECK(strstr(why, "profile half of") && !strstr(why, "AKIAHALF"), "why: %s", why);
    setenv("AWS_PROFILE", "work", 1);
    CHECK(s3_load_creds(NULL, &c, why, sizeof(why)) == 0 && !strcmp(c.key_id, "AKIAWORK"), "AWS_PROFILE");
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    CHECK(s3_load_creds(NULL, &c, why, sizeof(why)) == -EACCES, "an id without a secret");
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    setenv("AWS_SESSION_TOKEN", "envtoken", 1);
    CHECK(s3_load_creds(NULL, &c, why, sizeof(why)) == 0 && !strcmp(c.key_id, "AKIAENV") &&
          !strcmp(c.token, "envtoken"), "the environment wins");
    CHECK(s3_load_creds("default", &c, why, sizeof(why)) == 0 && !strcmp(c.key_id, "AKIADEFAULT"),
          "an explicit profile wins over the environment");

    CHECK(s3_load_region(NULL, NULL, region, sizeof(region), why, sizeof(why)) == 0 &&
          !strcmp(region, "us-west-2"), "AWS_PROFILE's region: %s", region);
    unsetenv("AWS_PROFILE");
    CHECK(s3_load_region(NULL, NULL, region, sizeof(region), why, sizeof(why)) == 0 &&
          !strcmp(region, "eu-west-1"), "default's region: %s", region);
    CHECK(s3_load_region(NULL, "nosuch", region, sizeof(region), why, sizeof(why)) == 0 &&
          !strcmp(region, "us-east-1"), "us-east-1 at last: %s", region);
    CHECK(s3_load_region(NULL, "bad", region, sizeof(region), why, sizeof(why)) == -EINVAL, "bad");
    setenv("AWS_DEFAULT_REGION", "ap-south-1", 1);
    CHECK(s3_load_region(NULL, NULL, region, sizeof(region), why, sizeof(why)) == 0 &&
          !strcmp(region, "ap-south-1"), "AWS_DEFAULT_REGION");
    setenv("AWS_REGION", "ca-central-1", 1);
    CHECK(s3_load_region(NULL, NULL, region, sizeof(region), why, sizeof(why)) == 0 &&
          !strcmp(region, "ca-central-1"), "AWS_REGION first");
    CHECK(s3_load_region("x:y", NULL, region, sizeof(region), why, sizeof(why)) == -EINVAL,
          "a region with ':' would break the signature");
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");

    /* open refuses bad targets and options before any request */
    struct objstore *os;
    struct objstore_opts o = OBJSTORE_OPTS_INIT;
    CHECK(objstore_open("s3://", &o, &os) == -EINVAL, "no bucket");
    CHECK(objstore_open("s3://bad bucket/x", &o, &os) == -EINVAL, "bad bucket");
    CHECK(objstore_open("s3://b/a/../c", &o, &os) == -EINVAL, "bad prefix");
    CHECK(strstr(objstore_why(NULL), "prefix"), "why: %s", objstore_why(NULL));
    o.endpoint = "ftp://host";
    CHECK(objstore_open("s3://b/p", &o, &os) == -EINVAL, "ftp endpoint");
    o.endpoint = "http://host/path";
    CHECK(objstore_open("s3://b/p", &o, &os) == -EINVAL, "an endpoint with a path");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    o.endpoint = "http://127.0.0.1:9";
    CHECK(objstore_open("s3://b/p", &o, &os) == -EACCES, "no credentials");
    CHECK(strstr(objstore_why(NULL), "no credentials"), "why: %s", objstore_why(NULL));
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    unsetenv("AWS_CONFIG_FILE");
}

/* ---- the driver of the integration tests ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: test_objstore TARGET COMMAND ARGS...\n"
            "  open | put NAME FILE | put-if-absent NAME FILE | get NAME (to stdout)\n"
            "  range NAME OFF LEN | stat NAME | delete NAME | list [PREFIX]\n"
            "  put-many PREFIX COUNT SIZE | check-many PREFIX COUNT SIZE (async)\n"
            "  lock DIR HOLDER HOLD_SECONDS (exclusive, stale after 60 s)\n"
            "environment: OBJSTORE_ENDPOINT, OBJSTORE_REGION, OBJSTORE_PROFILE,\n"
            "  OBJSTORE_PATH_STYLE (-1, 0, 1), OBJSTORE_PARALLEL, OBJSTORE_RETRIES,\n"
            "  OBJSTORE_TIMEOUT (seconds), OBJSTORE_CA_FILE\n");
    exit(2);
}

static unsigned env_unsigned(const char *name)
{
    const char *v = getenv(name);
    return v ? (unsigned)strtoul(v, NULL, 10) : 0;
}

static int fail(const char *cmd, int rc, struct objstore *os)
{
    fprintf(stderr, "test_objstore: %s: %s: %s\n", cmd, strerrorname_np(-rc), objstore_why(os));
    return 1;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    char *buf = malloc(*len ? *len : 1);
    if (!buf || fread(buf, 1, *len, f) != *len) {
        perror(path);
        exit(1);
    }
    fclose(f);
    return buf;
}

static int print_entry(void *arg, const char *name, uint64_t size)
{
    (void)arg;
    printf("%s %llu\n", name, (unsigned long long)size);
    return 0;
}

struct many {
    int done, failed;
    char **bufs;
};

static void many_done(void *arg, int rc)
{
    struct many *m = arg;
    m->done++;
    m->failed += rc != 0;
}

/* put-many / check-many: COUNT objects PREFIX/I of SIZE bytes of fill(I),
 * all submitted at once, through the async calls. */
static int drive_many(struct objstore *os, bool put, const char *prefix, int count, size_t size)
{
    struct many m = { .bufs = calloc((size_t)count, sizeof(char *)) };
    char name[300];
    for (int i = 0; i < count; i++) {
        m.bufs[i] = malloc(size ? size : 1);
        if (put)
            fill(m.bufs[i], size, (unsigned)i);
        snprintf(name, sizeof(name), "%s/%d", prefix, i);
        int rc = put ? objstore_put_async(os, name, m.bufs[i], size, many_done, &m)
                     : objstore_get_async(os, name, 0, size, m.bufs[i], many_done, &m);
        if (rc)
            return fail(put ? "put-many" : "check-many", rc, os);
    }
    int rc = objstore_wait(os), bad = 0;
    char *want = malloc(size ? size : 1);
    for (int i = 0; i < count; i++) {
        fill(want, size, (unsigned)i);
        bad += !put && memcmp(want, m.bufs[i], size) != 0;
        free(m.bufs[i]);
    }
    free(want);
    free(m.bufs);
    if (rc)
        return fail(put ? "put-many" : "check-many", rc, os);
    printf("%d done, %d failed, %d differ\n", m.done, m.failed, bad);
    return m.done == count && !m.failed && !bad ? 0 : 1;
}

static int drive_lock(struct objstore *os, const char *dir, const char *holder, unsigned hold)
{
    struct objstore_lock *l;
    int rc = objstore_lock(os, dir, true, holder, 60, &l);
    if (rc)
        return fail("lock", rc, os);
    printf("locked\n");
    fflush(stdout);
    sleep(hold);
    rc = objstore_unlock(l);
    return rc ? fail("unlock", rc, os) : 0;
}

static int drive_get(struct objstore *os, const char *name, uint64_t off, size_t len, bool range)
{
    void *buf = NULL;
    size_t n = len;
    int rc = range ? objstore_get_range(os, name, off, len, buf = malloc(len ? len : 1))
                   : objstore_get(os, name, &buf, &n);
    if (!rc)
        fwrite(buf, 1, n, stdout);
    free(buf);
    return rc ? fail(range ? "range" : "get", rc, os) : 0;
}

static int drive_put(struct objstore *os, const char *name, const char *file, bool if_absent)
{
    size_t len;
    char *buf = read_file(file, &len);
    int rc = if_absent ? objstore_put_if_absent(os, name, buf, len)
                       : objstore_put(os, name, buf, len);
    free(buf);
    return rc ? fail(if_absent ? "put-if-absent" : "put", rc, os) : 0;
}

static int drive_command(struct objstore *os, int argc, char **argv)
{
    const char *cmd = argv[0];
    uint64_t size;
    int rc;
    if (!strcmp(cmd, "open") && argc == 1)
        return 0;
    if ((!strcmp(cmd, "put") || !strcmp(cmd, "put-if-absent")) && argc == 3)
        return drive_put(os, argv[1], argv[2], cmd[3] == '-');
    if (!strcmp(cmd, "get") && argc == 2)
        return drive_get(os, argv[1], 0, 0, false);
    if (!strcmp(cmd, "range") && argc == 4)
        return drive_get(os, argv[1], strtoull(argv[2], NULL, 10), strtoul(argv[3], NULL, 10), true);
    if (!strcmp(cmd, "stat") && argc == 2) {
        if ((rc = objstore_stat(os, argv[1], &size)))
            return fail(cmd, rc, os);
        printf("%llu\n", (unsigned long long)size);
        return 0;
    }
    if (!strcmp(cmd, "delete") && argc == 2)
        return (rc = objstore_delete(os, argv[1])) ? fail(cmd, rc, os) : 0;
    if (!strcmp(cmd, "list") && argc <= 2)
        return (rc = objstore_list(os, argc == 2 ? argv[1] : "", print_entry, NULL))
                   ? fail(cmd, rc, os) : 0;
    if ((!strcmp(cmd, "put-many") || !strcmp(cmd, "check-many")) && argc == 4)
        return drive_many(os, cmd[0] == 'p', argv[1], atoi(argv[2]), strtoul(argv[3], NULL, 10));
    if (!strcmp(cmd, "lock") && argc == 4)
        return drive_lock(os, argv[1], argv[2], (unsigned)atoi(argv[3]));
    usage();
    return 2;
}

static int drive(int argc, char **argv)
{
    if (argc < 2)
        usage();
    struct objstore_opts o = OBJSTORE_OPTS_INIT;
    o.endpoint = getenv("OBJSTORE_ENDPOINT");
    o.region = getenv("OBJSTORE_REGION");
    o.profile = getenv("OBJSTORE_PROFILE");
    if (getenv("OBJSTORE_PATH_STYLE"))
        o.path_style = atoi(getenv("OBJSTORE_PATH_STYLE"));
    o.parallel = env_unsigned("OBJSTORE_PARALLEL");
    o.retries = env_unsigned("OBJSTORE_RETRIES");
    o.timeout = env_unsigned("OBJSTORE_TIMEOUT");
    o.ca_file = getenv("OBJSTORE_CA_FILE");
    struct objstore *os;
    int rc = objstore_open(argv[0], &o, &os);
    if (rc)
        return fail("open", rc, NULL);
    rc = drive_command(os, argc - 1, argv + 1);
    objstore_close(os);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return drive(argc - 1, argv + 1);
    snprintf(scratch, sizeof(scratch), "%s/test_objstore.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(scratch)) {
        perror("mkdtemp");
        return 1;
    }
    test_targets();
    test_names();
    test_put_get();
    test_list();
    test_async();
    test_wait_below();
    test_locks();
    test_lock_race();
    test_atomic();
    test_xml();
    test_uri_encode();
    test_creds();
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
    if (system(cmd))
        fprintf(stderr, "could not remove %s\n", scratch);
    return test_done("test_objstore");
}
