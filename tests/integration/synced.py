#!/usr/bin/env python3
"""synced: files made durable one by one, and the check that they are.

Usage: synced.py write DIR LOG START
       synced.py verify DIR LOG

write: creates DIR/fNNNNNN for N = START, START+1, ..., each with content
that follows from N alone, makes it durable with fsync (odd N) or
fdatasync (even N), closes it, and only then appends N to LOG (outside
the volume), syncing LOG.  It runs until killed, or ends quietly when the
volume is full (ENOSPC or EDQUOT: that file is not logged).

verify: every file LOG names must be there with its exact content; prints
"checked N synced files, M bad" and exits 1 if any is bad.

Part of the snapfs integration tests (tests/integration/lib.sh).
"""
import errno
import hashlib
import os
import sys


def content(i):
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * ((70000 + i * 131) // 32 + 1))[:70000 + i * 131]


def write(d, log, start):
    lf = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    i = start
    while True:
        p = os.path.join(d, "f%06d" % i)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, content(i))
                (os.fsync if i % 2 else os.fdatasync)(fd)
            finally:
                os.close(fd)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                return 0
            raise
        os.write(lf, b"%d\n" % i)
        os.fsync(lf)
        i += 1


def verify(d, log):
    bad = n = 0
    for line in open(log):
        i = int(line)
        n += 1
        try:
            data = open(os.path.join(d, "f%06d" % i), "rb").read()
        except OSError as e:
            print("f%06d: %s" % (i, e))
            bad += 1
            continue
        if data != content(i):
            print("f%06d: content differs (%d bytes)" % (i, len(data)))
            bad += 1
    print("checked %d synced files, %d bad" % (n, bad))
    return 1 if bad else 0


def main(argv):
    if len(argv) == 4 and argv[0] == "write":
        return write(argv[1], argv[2], int(argv[3]))
    if len(argv) == 3 and argv[0] == "verify":
        return verify(argv[1], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
