#!/usr/bin/env python3
"""s3fault.py - misbehaving S3 endpoints on loopback for t32-objstore.sh.

    s3fault.py silent
        accepts connections and never answers a byte
    s3fault.py proxy UPSTREAM_PORT LOG MODE
        forwards every request to the S3 server on 127.0.0.1:UPSTREAM_PORT
        unchanged (the Host header too, so that its signature still
        verifies), except the ones MODE fails:
          first500   the first time each request (method and URL) is seen:
                     500 InternalError
          first503   the same with 503 SlowDown
          part2      every upload of part 2 of a multipart upload: 500
          lostcomplete  the first CompleteMultipartUpload of each upload is
                     forwarded (the upload completes), and its answer
                     replaced by a 500, as if the answer had been lost;
                     a repeat gets 404 NoSuchUpload, as from AWS once an
                     upload is complete (moto would answer 200 again)
          pass       none
        and writes "STATUS METHOD URL [N]" for every request to LOG, N the
        number of requests it was handling when this one arrived (itself
        included).

Both print the port they listen on (chosen by the system) as their first
line, and run until killed.  Standard library only.
"""
import http.client
import http.server
import socket
import sys
import threading


def serve_silent():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    print(s.getsockname()[1], flush=True)
    held = []
    while True:
        conn, _ = s.accept()
        held.append(conn)  # kept open, never read, never answered


def error_xml(code):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            '<Message>injected by s3fault.py</Message></Error>' % code).encode()


def make_handler(upstream, log, mode):
    seen = set()
    lock = threading.Lock()
    active = [0]

    def injected(method, url):
        if mode in ("pass", "lostcomplete"):
            return False
        if mode == "part2":
            return method == "PUT" and "partNumber=2&" in url
        with lock:
            first = (method, url) not in seen
            seen.add((method, url))
        return first

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def note(self, status):
            with lock:
                log.write("%d %s %s [%d]\n" % (status, self.command, self.path, self.arrived))
                log.flush()

        def fail(self, status=None, code=None):
            if status is None:
                status, code = (503, "SlowDown") if mode == "first503" else (500, "InternalError")
            body = error_xml(code)
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.note(status)

        def is_complete(self):
            return mode == "lostcomplete" and self.command == "POST" and "uploadId=" in self.path

        def answer_lost(self):
            if not self.is_complete():
                return False
            with lock:
                first = ("complete", self.path) not in seen
                seen.add(("complete", self.path))
            return first

        def forward(self, body):
            conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("expect", "connection")}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if self.answer_lost():
                conn.close()
                self.fail()
                return
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() in ("transfer-encoding", "connection"):
                    continue
                if k.lower() == "content-length" and self.command != "HEAD":
                    continue
                self.send_header(k, v)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()
            self.note(resp.status)

        def handle_any(self):
            with lock:
                active[0] += 1
                self.arrived = active[0]
            try:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                if injected(self.command, self.path):
                    self.fail()
                elif self.is_complete() and ("complete", self.path) in seen:
                    self.fail(404, "NoSuchUpload")
                else:
                    self.forward(body)
            finally:
                with lock:
                    active[0] -= 1

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

    return Handler


def serve_proxy(upstream, log_path, mode):
    log = open(log_path, "a")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             make_handler(upstream, log, mode))
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1:] == ["silent"]:
        serve_silent()
    elif len(sys.argv) == 5 and sys.argv[1] == "proxy":
        serve_proxy(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
