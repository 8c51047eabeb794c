/*
 * stats_http.c - `snapfs stats VOLUME --listen ADDR:PORT`: the volume's
 * statistics served over HTTP for a Prometheus scraper, GET /metrics
 * answered with the text exposition format, asked of the daemon anew for
 * every request.
 *
 * Guarantees: one request per connection (HTTP/1.0, closed after the
 * answer), served one at a time; a client gets at most 5 s to send its
 * request head (at most 8 KiB), so a silent one cannot hold the listener;
 * other paths are 404, other methods 405, and a daemon that stopped
 * answering (the volume was unmounted) 503 with the reason, while the
 * listener goes on.  Whether the address may be other than loopback is
 * the caller's decision (tools/stats.c).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stats.h"

#define HEAD_MAX 8192
#define HEAD_TIMEOUT_MS 5000

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -EPIPE;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void respond(int fd, const char *status, const char *type,
                    const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.0 %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, type, len);
    if (!send_all(fd, head, (size_t)n))
        send_all(fd, body, len);
}

static void respond_text(int fd, const char *status, const char *text)
{
    respond(fd, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* The request head into BUF (NUL-terminated): 0, or -1 when the client
 * was too slow, sent too much or went away. */
static int read_head(int fd, char *buf, size_t cap)
{
    size_t used = 0;
    while (used < cap - 1) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, HEAD_TIMEOUT_MS) <= 0)
            return -1;
        ssize_t got = recv(fd, buf + used, cap - 1 - used, 0);
        if (got <= 0)
            return -1;
        used += (size_t)got;
        buf[used] = 0;
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
            return 0;
    }
    return -1;
}

static void serve_metrics(int fd, struct volume *vol)
{
    struct stats_sample s;
    int rc = stats_fetch(vol, &s);
    if (rc) {
        char why[512];
        snprintf(why, sizeof(why), "%s: %s\n", vol->arg,
                 rc == -ENOENT || rc == -ECONNREFUSED
                     ? "not mounted (no daemon answers)" : strerror(-rc));
        respond_text(fd, "503 Service Unavailable", why);
        return;
    }
    char *body = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&body, &len);
    if (f) {
        stats_print_prometheus(f, vol->store, &s);
        fclose(f);
        respond(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8",
                body, len);
    } else {
        respond_text(fd, "500 Internal Server Error", "out of memory\n");
    }
    free(body);
    stats_free(&s);
}

static void serve_connection(int fd, struct volume *vol)
{
    char head[HEAD_MAX];
    if (read_head(fd, head, sizeof(head)))
        return;
    char method[16], path[1024];
    if (sscanf(head, "%15s %1023s", method, path) != 2)
        respond_text(fd, "400 Bad Request", "bad request\n");
    else if (strcmp(method, "GET"))
        respond_text(fd, "405 Method Not Allowed", "GET /metrics\n");
    else if (strcmp(path, "/metrics") && strncmp(path, "/metrics?", 9))
        respond_text(fd, "404 Not Found", "the metrics are at /metrics\n");
    else
        serve_metrics(fd, vol);
}

/* "A.B.C.D:PORT" into SA. */
static int parse_addr(const char *addr, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof(host))
        return -EINVAL;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (!colon[1] || *end || port > 65535 ||
        inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return -EINVAL;
    return 0;
}

int stats_serve_http(struct volume *vol, const char *addr,
                     void (*ready)(int port))
{
    struct sockaddr_in sa;
    int rc = parse_addr(addr, &sa);
    if (rc)
        return rc;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (ls < 0)
        return -errno;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    socklen_t len = sizeof(sa);
    if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 16) ||
        getsockname(ls, (struct sockaddr *)&sa, &len)) {
        rc = -errno;
        close(ls);
        return rc;
    }
    if (ready)
        ready(ntohs(sa.sin_port));
    for (;;) {
        int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            rc = -errno;
            break;
        }
        serve_connection(fd, vol);
        close(fd);
    }
    close(ls);
    return rc;
}
