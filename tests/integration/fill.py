#!/usr/bin/env python3
"""fill: write files until the volume is full, and check what was kept.

Usage: fill.py [--chunk N] [--limit N] [--rdwr] [--mid FILE] PATH...
       fill.py --verify PATH...

Write mode: each PATH is created (truncated) and written from offset 0
by a thread of its own, so several writers fill the volume at once, in
write() calls of CHUNK bytes (default 1 MiB) of pseudo-random data that
depends only on the file's name (no two blocks alike: nothing
deduplicates), until write() fails or LIMIT bytes were written.  Then the
file is fsync'd and closed.  One line per PATH, in the order given:

    NAME written=BYTES write=ERR fsync=ERR close=ERR

where BYTES is what write() accepted and each ERR is OK, the symbolic
errno name (ENOSPC), or - (not reached: an earlier step failed with an
error other than ENOSPC).  --rdwr opens O_RDWR instead of O_WRONLY (the
kernel then never switches the file to direct I/O).  With --mid FILE,
the line "mid" is written to FILE once every writer has written its
first chunk (to act while the writers run).  Exit status 0 unless a
write failed with something else than ENOSPC or EDQUOT.

Verify mode: for each PATH print

    NAME size=BYTES prefix=yes

if the file holds exactly the first BYTES of its name's data, else
prefix=no:OFFSET with the first offset that differs.

Part of the snapfs integration tests (tests/integration/lib.sh).
"""
import errno
import os
import random
import sys
import threading

STREAM_SEED = "snapfs-fill:"


def stream(name):
    """The pseudo-random bytes of file NAME, as an iterator of chunks."""
    rng = random.Random(STREAM_SEED + os.path.basename(name))
    while True:
        yield rng.randbytes(1 << 20)


def err_name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


class Writer(threading.Thread):
    def __init__(self, path, chunk, limit, rdwr, started):
        super().__init__()
        self.path, self.chunk, self.limit = path, chunk, limit
        self.rdwr, self.started = rdwr, started
        self.written = 0
        self.result = {"write": "-", "fsync": "-", "close": "-"}
        self.bad = False

    def chunks(self):
        """CHUNK-sized pieces of the file's stream."""
        buf = b""
        for piece in stream(self.path):
            buf += piece
            while len(buf) >= self.chunk:
                yield buf[:self.chunk]
                buf = buf[self.chunk:]

    def write_all(self, fd):
        first = True
        for data in self.chunks():
            if self.limit is not None and self.written >= self.limit:
                return "OK"
            if self.limit is not None:
                data = data[:self.limit - self.written]
            while data:  # a short write: the next one says why
                try:
                    n = os.write(fd, data)
                except OSError as e:
                    return err_name(e)
                finally:
                    if first:
                        first = False
                        self.started.release()
                self.written += n
                data = data[n:]
        return "OK"

    def run(self):
        flags = os.O_CREAT | os.O_TRUNC | (os.O_RDWR if self.rdwr else os.O_WRONLY)
        fd = os.open(self.path, flags, 0o644)
        w = self.write_all(fd)
        self.result["write"] = w
        if w not in ("OK", "ENOSPC", "EDQUOT"):
            self.bad = True
        try:
            os.fsync(fd)
            self.result["fsync"] = "OK"
        except OSError as e:
            self.result["fsync"] = err_name(e)
        try:
            os.close(fd)
            self.result["close"] = "OK"
        except OSError as e:
            self.result["close"] = err_name(e)

    def line(self):
        r = self.result
        return "%s written=%d write=%s fsync=%s close=%s" % (
            os.path.basename(self.path), self.written, r["write"], r["fsync"],
            r["close"])


def verify(path):
    size = os.path.getsize(path)
    off = 0
    with open(path, "rb") as f:
        for want in stream(path):
            got = f.read(len(want))
            if got != want[:len(got)]:
                for i, (a, b) in enumerate(zip(got, want)):
                    if a != b:
                        return "%s size=%d prefix=no:%d" % (
                            os.path.basename(path), size, off + i)
            off += len(got)
            if len(got) < len(want):
                break
    return "%s size=%d prefix=yes" % (os.path.basename(path), size)


def number(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def main(argv):
    chunk, limit, rdwr, mid, paths, mode = 1 << 20, None, False, None, [], "write"
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--chunk", "--limit", "--mid") and i + 1 < len(argv):
            i += 1
            if a == "--chunk":
                chunk = number(argv[i])
            elif a == "--limit":
                limit = number(argv[i])
            else:
                mid = argv[i]
        elif a == "--rdwr":
            rdwr = True
        elif a == "--verify":
            mode = "verify"
        elif a.startswith("-"):
            print(__doc__, file=sys.stderr)
            return 2
        else:
            paths.append(a)
        i += 1
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    if mode == "verify":
        for p in paths:
            print(verify(p))
        return 0
    started = threading.Semaphore(0)
    writers = [Writer(p, chunk, limit, rdwr, started) for p in paths]
    for w in writers:
        w.start()
    if mid:
        for _ in writers:
            started.acquire()
        with open(mid + ".new", "w") as f:
            f.write("mid\n")
        os.rename(mid + ".new", mid)
    for w in writers:
        w.join()
    for w in writers:
        print(w.line())
    return 1 if any(w.bad for w in writers) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
