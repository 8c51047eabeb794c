/*
 * check.h - the tiny assertion kit of the unit tests: CHECK(cond, fmt...)
 * reports the file, line and message of a failed condition and counts it;
 * test_done() prints "N passed, M failed" and returns the exit status.
 */
#ifndef SNAPFS_CHECK_H
#define SNAPFS_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int checks_passed, checks_failed;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) {                                                          \
            checks_passed++;                                                 \
        } else {                                                             \
            checks_failed++;                                                 \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            if (checks_failed > 20)                                          \
                exit(1);                                                     \
        }                                                                    \
    } while (0)

#define CHECK_RC(expr)                                                       \
    do {                                                                     \
        int rc_ = (expr);                                                    \
        CHECK(rc_ == 0, "%s returned %d", #expr, rc_);                       \
        if (rc_)                                                             \
            exit(1);                                                         \
    } while (0)

static inline int test_done(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, checks_passed, checks_failed);
    return checks_failed ? 1 : 0;
}

#endif
