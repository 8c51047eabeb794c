#!/usr/bin/env python3
"""mirrortree.py: the file trees of mirrorbench.sh.

  mirrortree.py fill ROOT MANIFEST N TOTAL_BYTES SEED
  mirrortree.py change ROOT MANIFEST COUNT SEED TAG

fill writes N files of random (incompressible) data under ROOT, about
TOTAL_BYTES in all: most of them 1-16 KiB, a few (as many as it takes to
reach the total on average) log-uniformly 32 KiB-4 MiB, about 100 per
directory in a two-level tree (50 top directories).  The relative path of
every file goes to MANIFEST, one a line.

change applies COUNT changes to files picked at random from MANIFEST, spread
over the tree: 40% rewrites (a small file rewritten whole at a new size, a
large one overwritten in 1-4 places of 4 KiB), 15% appends of 1-16 KiB, 20%
new files, 20% deletes, 5% renames into another directory.  It rewrites
MANIFEST and prints "rewrite R append A create C delete D rename M bytes B"
(B: the bytes written).  The same COUNT and SEED give the same operations
and sizes whatever the tree, only the files picked differ.
"""
import math
import os
import random
import sys

SMALL_MIN, SMALL_MAX = 1024, 16384
LARGE_MIN, LARGE_MAX = 32 << 10, 4 << 20
TOP_DIRS, PER_DIR = 50, 100


def small_size(rnd):
    return rnd.randint(SMALL_MIN, SMALL_MAX)


def large_size(rnd):
    return int(math.exp(rnd.uniform(math.log(LARGE_MIN), math.log(LARGE_MAX))))


def write_file(path, data, mode="wb"):
    with open(path, mode) as f:
        f.write(data)


def fill(root, manifest, n, total, seed):
    rnd = random.Random(seed)
    small_mean = (SMALL_MIN + SMALL_MAX) / 2
    large_mean = (LARGE_MAX - LARGE_MIN) / math.log(LARGE_MAX / LARGE_MIN)
    # the share of large files that makes the mean size total / n
    p = min(1.0, max(0.0, (total / n - small_mean) / (large_mean - small_mean)))
    leaves = max(1, (n + PER_DIR - 1) // PER_DIR)
    subs = max(1, (leaves + TOP_DIRS - 1) // TOP_DIRS)
    paths, written = [], 0
    for i in range(n):
        leaf = i % leaves
        d = "d%02d/s%03d" % (leaf % TOP_DIRS, leaf // TOP_DIRS % subs)
        if i < leaves:
            os.makedirs(os.path.join(root, d), exist_ok=True)
        rel = "%s/f%07d" % (d, i)
        size = large_size(rnd) if rnd.random() < p else small_size(rnd)
        write_file(os.path.join(root, rel), rnd.randbytes(size))
        paths.append(rel)
        written += size
    with open(manifest, "w") as f:
        f.write("\n".join(paths) + "\n")
    print("files %d bytes %d" % (n, written))


def change(root, manifest, count, seed, tag):
    with open(manifest) as f:
        paths = f.read().split()
    rnd = random.Random(seed)          # operations and sizes
    pick = random.Random(seed * 7919 + len(paths))  # which files
    n_ren = max(1, round(count * 0.05)) if count >= 4 else 0
    n_del = round(count * 0.20)
    n_new = round(count * 0.20)
    n_app = round(count * 0.15)
    n_rw = max(0, count - n_ren - n_del - n_new - n_app)
    victims = pick.sample(range(len(paths)), n_rw + n_app + n_del + n_ren)
    dirs = sorted({os.path.dirname(p) for p in paths})
    written = 0
    gone = set()
    k = 0
    for j in range(n_rw):
        full = os.path.join(root, paths[victims[k]])
        k += 1
        size = os.stat(full).st_size
        if size <= SMALL_MAX:
            data = rnd.randbytes(small_size(rnd))
            write_file(full, data)
            written += len(data)
        else:
            with open(full, "r+b") as f:
                for _ in range(rnd.randint(1, 4)):
                    f.seek(rnd.randrange(0, size - 4096) & ~4095)
                    f.write(rnd.randbytes(4096))
                    written += 4096
    for j in range(n_app):
        data = rnd.randbytes(small_size(rnd))
        write_file(os.path.join(root, paths[victims[k]]), data, "ab")
        k += 1
        written += len(data)
    for j in range(n_del):
        os.unlink(os.path.join(root, paths[victims[k]]))
        gone.add(victims[k])
        k += 1
    for j in range(n_ren):
        old = paths[victims[k]]
        new = "%s/r%s%05d" % (pick.choice(dirs), tag, j)
        os.rename(os.path.join(root, old), os.path.join(root, new))
        paths[victims[k]] = new
        k += 1
    for j in range(n_new):
        rel = "%s/n%s%05d" % (pick.choice(dirs), tag, j)
        data = rnd.randbytes(small_size(rnd))
        write_file(os.path.join(root, rel), data)
        paths.append(rel)
        written += len(data)
    with open(manifest, "w") as f:
        f.write("\n".join(p for i, p in enumerate(paths) if i not in gone) + "\n")
    print("rewrite %d append %d create %d delete %d rename %d bytes %d" %
          (n_rw, n_app, n_new, n_del, n_ren, written))


def main():
    a = sys.argv[1:]
    if len(a) == 6 and a[0] == "fill":
        fill(a[1], a[2], int(a[3]), int(a[4]), int(a[5]))
    elif len(a) == 6 and a[0] == "change":
        change(a[1], a[2], int(a[3]), int(a[4]), a[5])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
