#!/usr/bin/env python3
"""randops.py DIR SEED COUNT - COUNT random filesystem changes under DIR.

Creates, overwrites, appends, truncates (into holes too), renames across
directories, unlinks, hard-links, symlinks, makes and removes directories,
sets and removes xattrs, changes modes and times: the operations whose
records a replication stream must carry.  Deterministic for a SEED and a
starting tree, so a failing run can be replayed.
"""
import os
import random
import sys

root, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)


def entries():
    files, dirs = [], [root]
    for d, ds, fs in os.walk(root):
        dirs += [os.path.join(d, x) for x in ds]
        files += [os.path.join(d, x) for x in fs]
    return files, dirs


def data(n):
    # half compressible, half not: both block paths
    return rng.randbytes(n) if rng.random() < 0.5 else bytes([rng.randrange(4)]) * n


def op():
    files, dirs = entries()
    regular = [f for f in files if os.path.isfile(f) and not os.path.islink(f)]
    k = rng.randrange(13)
    name = "n%d" % rng.randrange(1 << 30)
    d = rng.choice(dirs)
    if k == 0 or not regular:
        with open(os.path.join(d, name), "wb") as f:
            f.write(data(rng.choice([0, 10, 4000, 70000, 300000])))
    elif k == 1:
        f = rng.choice(regular)
        with open(f, "r+b") as h:
            h.seek(rng.randrange(200000))
            h.write(data(rng.randrange(1, 90000)))
    elif k == 2:
        with open(rng.choice(regular), "ab") as h:
            h.write(data(rng.randrange(1, 5000)))
    elif k == 3:
        os.truncate(rng.choice(regular), rng.choice([0, 100, 65536, 1 << 20]))
    elif k == 4:
        src = rng.choice(files + dirs[1:]) if len(dirs) > 1 else rng.choice(files)
        dst = os.path.join(rng.choice(dirs), name)
        if os.path.isdir(src) and (dst + "/").startswith(src + "/"):
            return
        os.rename(src, dst)
    elif k == 5:
        os.unlink(rng.choice(files))
    elif k == 6:
        os.link(rng.choice(regular), os.path.join(d, name))
    elif k == 7:
        os.symlink("target-" + name, os.path.join(d, name))
    elif k == 8:
        os.mkdir(os.path.join(d, name))
    elif k == 9:
        empty = [x for x in dirs[1:] if not os.listdir(x)]
        if empty:
            os.rmdir(rng.choice(empty))
    elif k == 10:
        f = rng.choice(regular + dirs)
        os.setxattr(f, "user.k%d" % rng.randrange(3), data(rng.choice([3, 2000])))
    elif k == 11:
        f = rng.choice(regular + dirs)
        names = os.listxattr(f)
        if names:
            os.removexattr(f, rng.choice(names))
    else:
        f = rng.choice(regular)
        os.chmod(f, rng.choice([0o600, 0o644, 0o755, 0o4750]))
        t = rng.randrange(1 << 31)
        os.utime(f, ns=(t * 10**9 + 123000, t * 10**9 + 456000))


for _ in range(count):
    op()
