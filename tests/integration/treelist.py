#!/usr/bin/env python3
"""treelist.py ROOT [--usec] [--holes] [--skip NAME]... [--skip-xattr NAME]...

One line per object under ROOT (sorted by path): path, mode, owner, group,
size and link count (not for directories), a hard-link group (the first
path of the inode), mtime (nanoseconds, or microseconds with --usec, the
precision of the dump format), the SHA-256 of a file's contents, a
symlink's target, a device's numbers, every xattr (name=hex, ACLs
included), and with --holes the data/hole map of each file (SEEK_DATA and
SEEK_HOLE).  Two trees are equal when their listings are.  A top-level
.snapshot directory is never listed; --skip NAME leaves out entries of
that name anywhere.
"""
import hashlib
import os
import stat
import sys

args = sys.argv[1:]
root = args.pop(0)
usec = "--usec" in args
holes = "--holes" in args
skip, skip_xattr = set(), set()
for i, a in enumerate(args):
    if a == "--skip":
        skip.add(args[i + 1])
    if a == "--skip-xattr":
        skip_xattr.add(args[i + 1])

first = {}


def hole_map(path, size):
    out = []
    fd = os.open(path, os.O_RDONLY)
    try:
        off = 0
        while off < size:
            try:
                data = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            end = os.lseek(fd, data, os.SEEK_HOLE)
            out.append("%d-%d" % (data, end))
            off = end
    finally:
        os.close(fd)
    return "data=" + ",".join(out)


def line(rel, full):
    st = os.lstat(full)
    f = [rel, oct(st.st_mode), str(st.st_uid), str(st.st_gid)]
    if not stat.S_ISDIR(st.st_mode):
        f += [str(st.st_size), str(st.st_nlink)]
        if st.st_nlink > 1:
            f.append("group=" + first.setdefault(st.st_ino, rel))
    f.append(str(st.st_mtime_ns // 1000 if usec else st.st_mtime_ns))
    if stat.S_ISREG(st.st_mode):
        h = hashlib.sha256()
        with open(full, "rb") as fh:
            for b in iter(lambda: fh.read(1 << 20), b""):
                h.update(b)
        f.append(h.hexdigest())
        if holes:
            f.append(hole_map(full, st.st_size))
    elif stat.S_ISLNK(st.st_mode):
        f.append("-> " + os.readlink(full))
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        f.append("dev=%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)))
    for x in sorted(os.listxattr(full, follow_symlinks=False)):
        if x in skip_xattr:
            continue
        v = os.getxattr(full, x, follow_symlinks=False)
        f.append("%s=%s" % (x, v.hex()))
    return " ".join(f)


out = [line(".", root)]
for d, dirs, files in os.walk(root):
    if d == root and ".snapshot" in dirs:
        dirs.remove(".snapshot")
    dirs[:] = [x for x in dirs if x not in skip]
    for name in sorted(dirs) + sorted(files):
        if name in skip:
            continue
        full = os.path.join(d, name)
        out.append(line(os.path.relpath(full, root), full))
for l in sorted(out):
    print(l)
