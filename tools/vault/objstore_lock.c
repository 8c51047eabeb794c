/*
 * objstore_lock.c - exclusive and shared locks over a vault, built on
 * plain put, list, get and delete so that they hold on every backend and
 * every S3 server (conditional writes are not everywhere, and a server
 * that ignores If-None-Match would make a lock built on them silently
 * wrong).
 *
 * A lock is the object DIR/ID, ID 32 random hex digits, holding text:
 *     snapfs-lock 1
 *     exclusive 0|1
 *     refreshed UNIX-SECONDS
 *     holder TEXT
 * Taking one: look for a conflicting fresh lock (fail without writing if
 * there is one), write our own, look again (fail, deleting ours, if there
 * is one now).  Locks conflict when either is exclusive.
 *
 * Guarantee: two lockers whose locks conflict never both succeed.  Each
 * writes its lock before its second look; with read-after-write and
 * list-after-write consistency the second of the two writes is followed
 * by a listing that shows the first lock, so at least one of the two sees
 * the other and fails (both may fail: callers try again later).  A lock
 * not refreshed for the stale time is ignored and deleted; that is only
 * safe if holders refresh in time and the hosts' clocks agree to well
 * within it.  An object in DIR that is not a lock counts as a conflicting
 * fresh lock (it is never deleted): a vault is never unlocked by mistake.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "objstore_int.h"

#define LOCK_ID_BYTES 16
#define LOCK_MAGIC "snapfs-lock 1\n"
#define LOCK_HOLDER_MAX 200

struct objstore_lock {
    struct objstore *os;
    bool exclusive;
    char holder[LOCK_HOLDER_MAX + 1];
    char name[OBJSTORE_NAME_MAX + 1];
};

struct lock_info {
    bool exclusive;
    int64_t refreshed;
    char holder[LOCK_HOLDER_MAX + 1];
};

/* The holder text on one line, at most LOCK_HOLDER_MAX bytes. */
static void copy_holder(char *dst, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i < LOCK_HOLDER_MAX; i++)
        dst[i] = src[i] == '\n' || src[i] == '\r' ? ' ' : src[i];
    dst[i] = 0;
}

static int write_lock(struct objstore_lock *l)
{
    char text[64 + LOCK_HOLDER_MAX];
    int n = snprintf(text, sizeof(text), LOCK_MAGIC "exclusive %d\nrefreshed %lld\nholder %s\n",
                     l->exclusive, (long long)time(NULL), l->holder);
    return objstore_put(l->os, l->name, text, (size_t)n);
}

/* Parse a lock object's TEXT; false if it is not one. */
static bool parse_lock(const char *text, size_t len, struct lock_info *li)
{
    char buf[64 + LOCK_HOLDER_MAX];
    if (len >= sizeof(buf) || len < strlen(LOCK_MAGIC) ||
        memcmp(text, LOCK_MAGIC, strlen(LOCK_MAGIC)))
        return false;
    memcpy(buf, text, len);
    buf[len] = 0;
    int excl, pos = 0;
    long long refreshed;
    if (sscanf(buf + strlen(LOCK_MAGIC), "exclusive %d\nrefreshed %lld\nholder %n",
               &excl, &refreshed, &pos) != 2 || !pos)
        return false;
    char *holder = buf + strlen(LOCK_MAGIC) + pos;
    holder[strcspn(holder, "\n")] = 0;
    li->exclusive = excl != 0;
    li->refreshed = refreshed;
    copy_holder(li->holder, holder);
    return true;
}

/* ---- looking for conflicts ---- */

struct lock_scan {
    struct objstore_lock *self;
    unsigned stale;
    char (*names)[OBJSTORE_NAME_MAX + 1];
    size_t n, cap;
};

static int collect_name(void *arg, const char *name, uint64_t size)
{
    struct lock_scan *s = arg;
    (void)size;
    if (!strcmp(name, s->self->name))
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        void *grown = realloc(s->names, cap * sizeof(*s->names));
        if (!grown)
            return -ENOMEM;
        s->names = grown;
        s->cap = cap;
    }
    snprintf(s->names[s->n++], sizeof(*s->names), "%s", name);
    return 0;
}

/* Is the other lock NAME a conflict?  1 yes (why says whose), 0 no (it
 * is gone, compatible, or stale and now deleted), < 0 an error. */
static int check_other(struct lock_scan *s, const char *name)
{
    struct objstore *os = s->self->os;
    void *text;
    size_t len;
    int rc = objstore_get(os, name, &text, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    struct lock_info li;
    bool ok = parse_lock(text, len, &li);
    free(text);
    if (!ok) {
        objstore_fail(os, -EBUSY, "%s: locked: %s is not a snapfs lock", objstore_target(os), name);
        return 1;
    }
    int64_t age = (int64_t)time(NULL) - li.refreshed;
    if (age > (int64_t)s->stale) {
        rc = objstore_delete(os, name);
        return rc < 0 ? rc : 0;
    }
    if (!li.exclusive && !s->self->exclusive)
        return 0;
    objstore_fail(os, -EBUSY, "%s: locked by %s (%s lock %s, refreshed %lld s ago)",
                  objstore_target(os), li.holder, li.exclusive ? "an exclusive" : "a shared",
                  name, (long long)(age < 0 ? 0 : age));
    return 1;
}

/* 0 if no other lock in the directory conflicts with SELF, -EBUSY (why
 * says whose) if one does, or the error that prevented looking. */
static int find_conflict(struct objstore_lock *self, const char *dir, unsigned stale)
{
    struct lock_scan s = { .self = self, .stale = stale };
    char prefix[OBJSTORE_NAME_MAX + 2];
    snprintf(prefix, sizeof(prefix), "%s/", dir);
    int rc = objstore_list(self->os, prefix, collect_name, &s);
    if (rc == -ENOMEM)
        objstore_fail(self->os, rc, "out of memory listing locks");
    for (size_t i = 0; rc == 0 && i < s.n; i++) {
        rc = check_other(&s, s.names[i]);
        if (rc == 1)
            rc = -EBUSY;
    }
    free(s.names);
    return rc;
}

/* ---- the API ---- */

int objstore_lock(struct objstore *os, const char *dir, bool exclusive,
                  const char *holder, unsigned stale_seconds,
                  struct objstore_lock **out)
{
    *out = NULL;
    if (os->in_callback)
        return objstore_fail(os, -EDEADLK, "a blocking objstore call inside a done callback");
    if (!objstore_name_ok(dir, false) || strlen(dir) + 1 + 2 * LOCK_ID_BYTES > OBJSTORE_NAME_MAX)
        return objstore_fail(os, -EINVAL, "'%s' is not a valid lock directory", dir);
    if (!stale_seconds)
        return objstore_fail(os, -EINVAL, "a lock's stale time must be more than 0 s");
    struct objstore_lock *l = calloc(1, sizeof(*l));
    if (!l)
        return objstore_fail(os, -ENOMEM, "out of memory");
    char id[2 * LOCK_ID_BYTES + 1];
    int rc = objstore_random_hex(id, LOCK_ID_BYTES);
    if (rc) {
        free(l);
        return objstore_fail(os, rc, "no random numbers for a lock id");
    }
    *l = (struct objstore_lock){ .os = os, .exclusive = exclusive };
    copy_holder(l->holder, holder);
    snprintf(l->name, sizeof(l->name), "%s/%s", dir, id);
    rc = find_conflict(l, dir, stale_seconds);
    if (!rc)
        rc = write_lock(l);
    if (!rc) {
        rc = find_conflict(l, dir, stale_seconds);
        if (rc) {
            char why[OBJSTORE_WHY_SIZE];
            memcpy(why, os->why, sizeof(why));
            objstore_delete(os, l->name);
            memcpy(os->why, why, sizeof(why));
        }
    }
    if (rc) {
        free(l);
        return rc;
    }
    *out = l;
    return 0;
}

int objstore_lock_refresh(struct objstore_lock *l)
{
    uint64_t size;
    int rc = objstore_stat(l->os, l->name, &size);
    if (rc == -ENOENT)
        return objstore_fail(l->os, -ESTALE,
                             "%s: lock %s is gone: another locker found it stale",
                             objstore_target(l->os), l->name);
    return rc < 0 ? rc : write_lock(l);
}

int objstore_unlock(struct objstore_lock *l)
{
    if (!l)
        return 0;
    int rc = objstore_delete(l->os, l->name);
    free(l);
    return rc;
}
