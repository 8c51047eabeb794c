/*
 * seqtext.c - the compressible sequential write of bench.sh: SIZE MiB of
 * text (lines of words and numbers from a seeded generator, like logs or
 * source) written to FILE in 1 MiB write(2) calls, then fsync(2); prints
 * "MiBps N" for the whole, the fsync included.
 *
 *   seqtext [-s MIB] FILE
 *
 * The text is made before the clock starts: a 64 MiB buffer, written over
 * and over from a start that moves by a prime number of bytes each pass,
 * so that no two 4 KiB-aligned pieces of the file are alike (a filesystem
 * that deduplicates blocks finds nothing to share) while every piece
 * compresses like text.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POOL (64u << 20)
#define CHUNK (1u << 20)
#define SHIFT 7919u

static const char *const words[] = {
    "the", "of", "and", "to", "in", "is", "for", "that", "with", "on",
    "request", "write", "block", "file", "error", "status", "user", "time",
    "value", "return", "struct", "static", "int", "const", "char", "if",
    "else", "while", "size", "buffer", "offset", "length", "commit",
    "snapshot", "volume", "server", "client", "connection", "started",
    "finished", "failed", "retry", "cache", "page", "memory", "disk",
    "INFO", "WARN", "DEBUG", "GET", "POST", "/api/v1/items", "200", "404",
    "latency", "ms", "bytes", "from", "into", "after", "before", "count",
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* One line of text into P (at most 160 bytes); its length. */
static size_t line(char *p)
{
    size_t n = (size_t)sprintf(p, "%06llu ", (unsigned long long)(next() % 1000000));
    int count = 4 + (int)(next() % 14);
    for (int i = 0; i < count; i++) {
        const char *w = words[next() % (sizeof(words) / sizeof(words[0]))];
        size_t len = strlen(w);
        memcpy(p + n, w, len);
        n += len;
        p[n++] = next() % 9 ? ' ' : '=';
    }
    p[n - 1] = '\n';
    return n;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    unsigned long mib = 1024;
    int opt;
    while ((opt = getopt(argc, argv, "s:")) != -1) {
        if (opt != 's' || (mib = strtoul(optarg, NULL, 10)) == 0) {
            fprintf(stderr, "usage: seqtext [-s MIB] FILE\n");
            return 2;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: seqtext [-s MIB] FILE\n");
        return 2;
    }
    char *pool = malloc(POOL + CHUNK + 256);
    if (!pool) {
        perror("seqtext: malloc");
        return 1;
    }
    size_t used = 0;
    while (used < POOL + CHUNK)
        used += line(pool + used);
    int fd = open(argv[optind], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        fprintf(stderr, "seqtext: %s: %s\n", argv[optind], strerror(errno));
        return 1;
    }
    double t0 = now();
    size_t start = 0;
    for (unsigned long i = 0; i < mib; i++) {
        if (start >= POOL)
            start = (start + SHIFT) % POOL;
        ssize_t w = write(fd, pool + start, CHUNK);
        if (w != (ssize_t)CHUNK) {
            fprintf(stderr, "seqtext: write: %s\n", w < 0 ? strerror(errno) : "short");
            return 1;
        }
        start += CHUNK;
    }
    if (fsync(fd) || close(fd)) {
        fprintf(stderr, "seqtext: fsync: %s\n", strerror(errno));
        return 1;
    }
    printf("MiBps %.1f\n", (double)mib / (now() - t0));
    free(pool);
    return 0;
}
