#!/usr/bin/env python3
"""scalefill.py - the tree of scalebench.sh, written through a mount.

    scalefill.py fill   DIR FILES PER_DIR BYTES [WORKERS]
    scalefill.py change DIR FILES PER_DIR BYTES PERCENT
    scalefill.py data   DIR MIB FILE_MIB
    scalefill.py rewrite DIR MIB FILE_MIB PERCENT

fill: FILES files of BYTES bytes (random, so that nothing deduplicates or
compresses), PER_DIR to a directory d/NNNNN/fNNNNNNN, written by WORKERS
processes (2) that take whole directories in turn.  change: rewrites
PERCENT% of those files in place (every (100/PERCENT)th), new random
bytes.  data: MIB MiB of random data in files of FILE_MIB MiB under
data/.  rewrite: PERCENT% of each data file's MiB rewritten in place
(every (100/PERCENT)th MiB).  Each prints the number of files (or MiB) it
wrote; the caller times it and syncs.
"""
import multiprocessing as mp
import os
import sys


def path_of(top, i, per_dir):
    return "%s/d/%05d/f%08d" % (top, i // per_dir, i)


def fill_dirs(top, files, per_dir, nbytes, worker, workers):
    ndirs = (files + per_dir - 1) // per_dir
    buf = os.urandom(nbytes + 4096)
    for d in range(worker, ndirs, workers):
        os.mkdir("%s/d/%05d" % (top, d))
        for i in range(d * per_dir, min(files, (d + 1) * per_dir)):
            fd = os.open(path_of(top, i, per_dir),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            off = i % 4096  # a different slice of the buffer each file
            os.write(fd, buf[off:off + nbytes])
            os.close(fd)


def fill(top, files, per_dir, nbytes, workers=2):
    os.makedirs(top + "/d", exist_ok=True)
    ps = [mp.Process(target=fill_dirs,
                     args=(top, files, per_dir, nbytes, w, workers))
          for w in range(workers)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
        if p.exitcode:
            sys.exit("a filler failed")
    print(files)


def change(top, files, per_dir, nbytes, pct):
    step = max(1, 100 // pct)
    n = 0
    for i in range(0, files, step):
        with open(path_of(top, i, per_dir), "r+b") as f:
            f.write(os.urandom(nbytes))
        n += 1
    print(n)


def data(top, mib, file_mib):
    os.makedirs(top + "/data", exist_ok=True)
    left, k = mib, 0
    while left > 0:
        size = min(left, file_mib)
        with open("%s/data/big%04d" % (top, k), "wb") as f:
            for _ in range(size):
                f.write(os.urandom(1 << 20))
        left -= size
        k += 1
    print(mib)


def rewrite(top, mib, file_mib, pct):
    step = max(1, 100 // pct)
    n, k, left = 0, 0, mib
    while left > 0:
        size = min(left, file_mib)
        with open("%s/data/big%04d" % (top, k), "r+b") as f:
            for m in range(0, size, step):
                f.seek(m << 20)
                f.write(os.urandom(1 << 20))
                n += 1
        left -= size
        k += 1
    print(n)


def main():
    a = sys.argv
    if len(a) >= 6 and a[1] == "fill":
        fill(a[2], int(a[3]), int(a[4]), int(a[5]),
             int(a[6]) if len(a) > 6 else 2)
    elif len(a) == 7 and a[1] == "change":
        change(a[2], int(a[3]), int(a[4]), int(a[5]), int(a[6]))
    elif len(a) == 5 and a[1] == "data":
        data(a[2], int(a[3]), int(a[4]))
    elif len(a) == 6 and a[1] == "rewrite":
        rewrite(a[2], int(a[3]), int(a[4]), int(a[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
