/*
 * kvfile.c - "key=value" record files (see kvfile.h).  Guarantees: a file
 * is replaced whole (temporary file, fsync, rename), created 0600; a value
 * never spans lines; a reader takes what it knows and ignores the rest,
 * so older and newer versions read each other's files.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvfile.h"

static void field_set(const struct kv_field *f, void *base, const char *val)
{
    char *p = (char *)base + f->off;
    switch (f->type) {
    case KV_STR:
        snprintf(p, f->size, "%s", val);
        break;
    case KV_BOOL:
        *(bool *)p = !strcmp(val, "1");
        break;
    case KV_I64:
        *(int64_t *)p = strtoll(val, NULL, 10);
        break;
    case KV_U64:
        *(uint64_t *)p = strtoull(val, NULL, 10);
        break;
    case KV_DBL:
        *(double *)p = strtod(val, NULL);
        break;
    }
}

static void field_print(const struct kv_field *f, const void *base, FILE *out)
{
    const char *p = (const char *)base + f->off;
    switch (f->type) {
    case KV_STR:
        fprintf(out, "%s=", f->key);
        for (const char *c = p; *c; c++) /* one line per field */
            fputc(*c == '\n' || *c == '\r' ? ' ' : *c, out);
        fputc('\n', out);
        break;
    case KV_BOOL:
        fprintf(out, "%s=%d\n", f->key, *(const bool *)p ? 1 : 0);
        break;
    case KV_I64:
        fprintf(out, "%s=%lld\n", f->key, (long long)*(const int64_t *)p);
        break;
    case KV_U64:
        fprintf(out, "%s=%llu\n", f->key,
                (unsigned long long)*(const uint64_t *)p);
        break;
    case KV_DBL:
        fprintf(out, "%s=%.3f\n", f->key, *(const double *)p);
        break;
    }
}

int kv_load(const char *path, const struct kv_field *fields, size_t n,
            void *base)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char line[2048];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = 0;
        for (size_t i = 0; i < n; i++)
            if (!strcmp(fields[i].key, line))
                field_set(&fields[i], base, eq + 1);
    }
    int rc = ferror(f) ? -EIO : 0;
    fclose(f);
    return rc;
}

/* A new temporary file TMP for writing (O_EXCL: a leftover of a process
 * that had our pid is removed first): a descriptor or a negative errno. */
static int open_fresh(const char *tmp)
{
    int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int fd = open(tmp, flags, 0600);
    if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
        fd = open(tmp, flags, 0600);
    return fd < 0 ? -errno : fd;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int kv_write_file(const char *path, const void *text, size_t len,
                  bool replace)
{
    char tmp[PATH_MAX + 16];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid()) >=
        (int)sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open_fresh(tmp);
    if (fd < 0)
        return fd;
    int rc = write_all(fd, text, len);
    if (!rc && fsync(fd))
        rc = -errno;
    if (close(fd) && !rc)
        rc = -errno;
    if (!rc && (replace ? rename(tmp, path) : link(tmp, path)))
        rc = -errno;
    unlink(tmp); /* after a rename: already gone */
    return rc;
}

int kv_store(const char *path, const struct kv_field *fields, size_t n,
             const void *base)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        field_print(&fields[i], base, f);
    int rc = fclose(f) ? -ENOMEM : kv_write_file(path, text, len, true);
    free(text);
    return rc;
}

int kv_make_dirs(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, mode) && errno != EEXIST)
        return -errno;
    return 0;
}
