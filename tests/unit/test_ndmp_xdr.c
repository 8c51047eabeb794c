/*
 * test_ndmp_xdr.c - the NDMP engine's XDR and record marking
 * (tools/ndmp/ndmp_xdr.c).  Checked: what is encoded decodes to the same
 * values (integers, 64-bit integers, strings padded to 4 bytes, fixed
 * opaques, an empty opaque without a buffer); every read past the end of a message, a string longer than
 * its bound or than the message, and a string with a NUL inside mark
 * the message bad instead of reading beyond it; the record reader
 * assembles a message sent in several fragments and in pieces of one
 * byte, hands out each message of a stream in turn, refuses a fragment
 * over its limit (-EMSGSIZE) before allocating it, and reports the
 * peer's close (-ECONNRESET); rm_write sends the record mark and the
 * message in one writev and finishes a message that signals cut into
 * partial writes, intact.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "../../tools/ndmp/ndmp.h"

static void test_roundtrip(void)
{
    struct xdr_out o = { 0 };
    xout_u32(&o, 0x900);
    xout_u64(&o, 0x0123456789abcdefull);
    xout_string(&o, "dump");
    xout_string(&o, "FILESYSTEM");
    uint8_t ch[64];
    for (int i = 0; i < 64; i++)
        ch[i] = (uint8_t)i;
    xout_fixed(&o, ch, sizeof(ch));
    CHECK(!o.bad && o.len == 4 + 8 + 8 + 16 + 64, "len %zu", o.len);
    struct xdr_in x = { .p = o.buf, .end = o.buf + o.len };
    CHECK(xin_u32(&x) == 0x900, "u32");
    CHECK(xin_u64(&x) == 0x0123456789abcdefull, "u64");
    char *a = xin_string(&x, 64), *b = xin_string(&x, 64);
    CHECK(a && !strcmp(a, "dump"), "string 1");
    CHECK(b && !strcmp(b, "FILESYSTEM"), "string 2 after padding");
    uint8_t back[64];
    xin_fixed(&x, back, sizeof(back));
    CHECK(!memcmp(back, ch, sizeof(ch)) && !x.bad && x.p == x.end,
          "fixed opaque");
    free(a);
    free(b);
    xin_u32(&x);
    CHECK(x.bad, "a read past the end marks the message bad");
    xout_free(&o);
    /* an empty opaque with no buffer behind it (a reply with no data) */
    xout_opaque(&o, NULL, 0);
    CHECK(!o.bad && o.len == 4, "empty opaque: len %zu", o.len);
    xout_free(&o);
}

static void test_bounds(void)
{
    /* a string claiming 1000 bytes in a message of 8 */
    uint8_t m1[8] = { 0, 0, 0x03, 0xe8, 'a', 'b', 'c', 'd' };
    struct xdr_in x = { .p = m1, .end = m1 + sizeof(m1) };
    CHECK(!xin_string(&x, 4096) && x.bad, "a string longer than the message");
    /* a string over its bound */
    struct xdr_out o = { 0 };
    xout_string(&o, "0123456789");
    x = (struct xdr_in){ .p = o.buf, .end = o.buf + o.len };
    CHECK(!xin_string(&x, 9) && x.bad, "a string over its bound");
    xout_free(&o);
    /* a NUL inside a string */
    uint8_t m2[8] = { 0, 0, 0, 3, 'a', 0, 'b', 0 };
    x = (struct xdr_in){ .p = m2, .end = m2 + sizeof(m2) };
    CHECK(!xin_string(&x, 64) && x.bad, "a NUL inside a string");
    /* the header of a message too short to hold one */
    struct ndmp_header h;
    x = (struct xdr_in){ .p = m2, .end = m2 + sizeof(m2) };
    CHECK(ndmp_header_get(&x, &h) == -EBADMSG, "a short header");
}

static void put_fragment(int fd, const void *p, uint32_t len, bool last)
{
    uint32_t v = (last ? 0x80000000u : 0) | len;
    uint8_t hdr[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
                       (uint8_t)(v >> 8), (uint8_t)v };
    CHECK(write(fd, hdr, 4) == 4 && write(fd, p, len) == (ssize_t)len,
          "write");
}

static int read_until(struct rm_reader *rm, int fd)
{
    int rc;
    while ((rc = rm_read(rm, fd)) == 0)
        ;
    return rc;
}

static void test_record_marking(void)
{
    int sp[2];
    CHECK_RC(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
    struct rm_reader rm = { .max = 1024 };
    /* two fragments make one message */
    put_fragment(sp[1], "hello ", 6, false);
    put_fragment(sp[1], "world", 5, true);
    CHECK(read_until(&rm, sp[0]) == 1 && rm.len == 11 &&
          !memcmp(rm.msg, "hello world", 11), "fragments");
    rm_reset(&rm);
    /* a message as rm_write sends it, then one read a byte at a time */
    CHECK_RC(rm_write(sp[1], (const uint8_t *)"abc", 3) ? -1 : 0);
    CHECK(read_until(&rm, sp[0]) == 1 && rm.len == 3, "whole message");
    rm_reset(&rm);
    uint8_t msg[] = { 0x80, 0, 0, 2, 'x', 'y' };
    for (size_t i = 0; i < sizeof(msg); i++) {
        CHECK(write(sp[1], msg + i, 1) == 1, "write");
        int rc = rm_read(&rm, sp[0]);
        CHECK(rc == (i + 1 == sizeof(msg)), "byte %zu: %d", i, rc);
    }
    CHECK(rm.len == 2 && !memcmp(rm.msg, "xy", 2), "byte by byte");
    rm_reset(&rm);
    /* 2 GiB announced: refused before anything is allocated */
    uint8_t absurd[4] = { 0xff, 0xff, 0xff, 0xff };
    CHECK(write(sp[1], absurd, 4) == 4, "write");
    CHECK(read_until(&rm, sp[0]) == -EMSGSIZE && rm.cap < 1024,
          "an absurd length");
    rm_reset(&rm);
    close(sp[1]);
    CHECK(read_until(&rm, sp[0]) == -ECONNRESET, "the peer closed");
    rm_free(&rm);
    close(sp[0]);
}

static void on_alarm(int sig)
{
    (void)sig;
}

/* A message larger than the socket's buffer, written while a timer's
 * signals (no SA_RESTART) cut the writev short again and again: the
 * reader gets it whole. */
static void test_large_interrupted_write(void)
{
    enum { LEN = 3 << 20 };
    uint8_t *msg = malloc(LEN);
    CHECK(msg != NULL, "malloc");
    if (!msg)
        return;
    for (size_t i = 0; i < LEN; i++)
        msg[i] = (uint8_t)(i * 7 + i / 4096);
    int sp[2];
    CHECK_RC(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
    pid_t pid = fork();
    if (pid == 0) {
        close(sp[0]);
        struct sigaction sa = { .sa_handler = on_alarm };   /* no restart */
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval it = { { 0, 200 }, { 0, 200 } };
        setitimer(ITIMER_REAL, &it, NULL);
        int rc = rm_write(sp[1], msg, LEN);
        _exit(rc ? 1 : 0);
    }
    close(sp[1]);
    struct rm_reader rm = { .max = LEN };
    int rc = read_until(&rm, sp[0]);
    CHECK(rc == 1 && rm.len == LEN && !memcmp(rm.msg, msg, LEN),
          "a 3 MiB message through interrupted writes: rc %d, %zu bytes",
          rc, rm.len);
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "rm_write finished the message (status 0x%x)", status);
    rm_free(&rm);
    close(sp[0]);
    free(msg);
}

int main(void)
{
    test_roundtrip();
    test_bounds();
    test_record_marking();
    test_large_interrupted_write();
    return test_done("test_ndmp_xdr");
}
