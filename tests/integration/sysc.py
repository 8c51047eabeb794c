#!/usr/bin/env python3
"""sysc: perform one system call and print the outcome.

Usage: sysc OP ARGS...

On success most operations print "OK" (some print a result after it);
on failure the symbolic errno name (e.g. ENAMETOOLONG) is printed and the
exit status is still 0, so that the caller can compare the name.  A usage
error exits with status 2.

Part of the snapfs integration tests (tests/integration/lib.sh).
"""
import ctypes
import errno
import hashlib
import os
import stat
import sys

UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
RENAME_WHITEOUT = 4
SYS_renameat2_x86_64 = 316

_libc = ctypes.CDLL(None, use_errno=True)  # the C library already loaded


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _oserror():
    e = ctypes.get_errno()
    raise OSError(e, os.strerror(e))


def _renameat2(old, new, flags):
    fn = getattr(_libc, "renameat2", None)
    o, n = os.fsencode(old), os.fsencode(new)
    if fn is not None:
        r = fn(AT_FDCWD, o, AT_FDCWD, n, ctypes.c_uint(flags))
    else:
        r = _libc.syscall(SYS_renameat2_x86_64, AT_FDCWD, o, AT_FDCWD, n,
                          ctypes.c_uint(flags))
    if r != 0:
        _oserror()


def _ts(spec):
    if spec == "now":
        return Timespec(0, UTIME_NOW)
    if spec == "omit":
        return Timespec(0, UTIME_OMIT)
    ns = int(spec)
    sec, nsec = divmod(ns, 1000000000)  # floor division: nsec is in [0, 1e9)
    return Timespec(sec, nsec)


def _utimensat(path, atime, mtime, nofollow=False):
    times = (Timespec * 2)(_ts(atime), _ts(mtime))
    flags = AT_SYMLINK_NOFOLLOW if nofollow else 0
    r = _libc.utimensat(AT_FDCWD, os.fsencode(path), times, flags)
    if r != 0:
        _oserror()


def _open_flags(s):
    acc = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}
    mode = "rw" if "r" in s and "w" in s else ("w" if "w" in s else "r")
    f = acc[mode]
    for ch, bit in (("c", os.O_CREAT), ("x", os.O_EXCL), ("t", os.O_TRUNC),
                    ("a", os.O_APPEND), ("d", os.O_DIRECTORY),
                    ("n", os.O_NOFOLLOW)):
        if ch in s:
            f |= bit
    return f


def _value(v):
    if v.startswith("@"):
        with open(v[1:], "rb") as fh:
            return fh.read()
    return os.fsencode(v)


def _fmt_time(ns):
    return "%d" % ns


BIG_FILE = 256 << 20


def tree(top):
    """Print a canonical listing of everything under top.

    Metadata of every entry is collected first, then contents are hashed,
    so that reading does not disturb the metadata being recorded.  atime is
    deliberately left out (it legitimately moves when things are read).
    Files over BIG_FILE bytes are hashed by their first and last MiB."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in [None] + sorted(dirnames + filenames):
            p = dirpath if name is None else os.path.join(dirpath, name)
            if name is None and dirpath != top:
                continue  # directories are listed by their parent
            entries.append(p)
    rows = []
    for p in entries:
        st = os.lstat(p)
        rel = os.path.relpath(p, top)
        row = [rel, stat.filemode(st.st_mode), "%o" % stat.S_IMODE(st.st_mode),
               "uid=%d" % st.st_uid, "gid=%d" % st.st_gid,
               "nlink=%d" % st.st_nlink, "ino=%d" % st.st_ino,
               "mtime=" + _fmt_time(st.st_mtime_ns),
               "ctime=" + _fmt_time(st.st_ctime_ns)]
        if not stat.S_ISDIR(st.st_mode):
            row.append("size=%d" % st.st_size)
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            row.append("rdev=%d:%d" % (os.major(st.st_rdev),
                                       os.minor(st.st_rdev)))
        if stat.S_ISLNK(st.st_mode):
            row.append("target=%s" % os.readlink(p))
        try:
            names = sorted(os.listxattr(p, follow_symlinks=False))
        except OSError as e:
            names = ["<" + errno.errorcode.get(e.errno, str(e.errno)) + ">"]
        for n in names:
            if n.startswith("<"):
                row.append("xattrs=" + n)
                continue
            v = os.getxattr(p, n, follow_symlinks=False)
            row.append("xattr:%s=%s" % (n, hashlib.sha256(v).hexdigest()[:16]))
        rows.append((p, st, row))
    for p, st, row in rows:
        if stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            try:
                fh = open(p, "rb")
            except PermissionError:
                # a file its mode keeps from us (not root): say so, the
                # same way each time, rather than stop the listing
                row.append("content=<EACCES>")
                print(" ".join(row))
                continue
            with fh:
                if st.st_size > BIG_FILE:
                    # only the first and last MiB of very large (sparse)
                    # files, to keep snapshots fast
                    h.update(fh.read(1 << 20))
                    fh.seek(st.st_size - (1 << 20))
                    h.update(fh.read(1 << 20))
                    tag = "sha256-ends="
                else:
                    tag = "sha256="
                    while True:
                        b = fh.read(1 << 20)
                        if not b:
                            break
                        h.update(b)
            row.append(tag + h.hexdigest())
        print(" ".join(row))


def run(op, a):
    if op == "open":
        mode = int(a[2], 8) if len(a) > 2 else 0o666
        fd = os.open(a[0], _open_flags(a[1]), mode)
        os.close(fd)
    elif op == "read":
        with open(a[0], "rb") as fh:
            fh.read()
    elif op == "write":  # write PATH DATA: open O_WRONLY|O_APPEND, write
        fd = os.open(a[0], os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, os.fsencode(a[1]))
        finally:
            os.close(fd)
    elif op == "mkdir":
        os.mkdir(a[0], int(a[1], 8) if len(a) > 1 else 0o777)
    elif op == "rmdir":
        os.rmdir(a[0])
    elif op == "unlink":
        os.unlink(a[0])
    elif op == "rename":
        os.rename(a[0], a[1])
    elif op == "renameat2":
        flags = 0
        for f in a[2].split(","):
            flags |= {"noreplace": RENAME_NOREPLACE,
                      "exchange": RENAME_EXCHANGE,
                      "whiteout": RENAME_WHITEOUT, "0": 0}[f]
        _renameat2(a[0], a[1], flags)
    elif op == "link":
        os.link(a[0], a[1], follow_symlinks=False)
    elif op == "symlink":
        os.symlink(a[0], a[1])
    elif op == "readlink":
        return "OK " + os.readlink(a[0])
    elif op == "stat":
        os.stat(a[0])
    elif op == "lstat":
        os.lstat(a[0])
    elif op == "truncate":
        os.truncate(a[0], int(a[1]))
    elif op == "mknod":  # mknod PATH c|b|p MODE [MAJOR MINOR]
        kind = {"c": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[a[1]]
        dev = os.makedev(int(a[3]), int(a[4])) if len(a) > 4 else 0
        os.mknod(a[0], kind | int(a[2], 8), dev)
    elif op == "chmod":
        os.chmod(a[0], int(a[1], 8))
    elif op == "chown":
        os.chown(a[0], int(a[1]), int(a[2]), follow_symlinks=False)
    elif op == "setxattr":  # setxattr PATH NAME VALUE|@FILE [create|replace]
        flags = 0
        if len(a) > 3:
            flags = {"create": os.XATTR_CREATE,
                     "replace": os.XATTR_REPLACE}[a[3]]
        os.setxattr(a[0], a[1], _value(a[2]), flags, follow_symlinks=False)
    elif op == "getxattr":  # prints OK LENGTH SHA256
        v = os.getxattr(a[0], a[1], follow_symlinks=False)
        return "OK %d %s" % (len(v), hashlib.sha256(v).hexdigest())
    elif op == "listxattr":
        return "OK " + " ".join(sorted(os.listxattr(a[0],
                                                    follow_symlinks=False)))
    elif op == "removexattr":
        os.removexattr(a[0], a[1], follow_symlinks=False)
    elif op == "utimens":  # utimens PATH ATIME MTIME (ns | now | omit)
        _utimensat(a[0], a[1], a[2])
    elif op == "lutimens":
        _utimensat(a[0], a[1], a[2], nofollow=True)
    elif op == "times":  # prints OK ATIME_NS MTIME_NS CTIME_NS
        st = os.lstat(a[0])
        return "OK %d %d %d" % (st.st_atime_ns, st.st_mtime_ns,
                                st.st_ctime_ns)
    elif op == "pwrite":  # pwrite PATH OFFSET DATA (no truncation)
        fd = os.open(a[0], os.O_WRONLY | os.O_CREAT, 0o666)
        try:
            os.pwrite(fd, os.fsencode(a[2]), int(a[1]))
        finally:
            os.close(fd)
    elif op == "pread":  # pread PATH OFFSET LEN: prints OK DATA(repr-hex)
        fd = os.open(a[0], os.O_RDONLY)
        try:
            b = os.pread(fd, int(a[2]), int(a[1]))
        finally:
            os.close(fd)
        return "OK " + b.hex()
    elif op == "mmapwrite":  # mmapwrite PATH OFFSET DATA (shared mapping)
        import mmap
        fd = os.open(a[0], os.O_RDWR)
        try:
            data = os.fsencode(a[2])
            off = int(a[1])
            size = os.fstat(fd).st_size
            m = mmap.mmap(fd, size, mmap.MAP_SHARED,
                          mmap.PROT_READ | mmap.PROT_WRITE)
            m[off:off + len(data)] = data
            m.flush()
            m.close()
        finally:
            os.close(fd)
    elif op == "unlinked-read":  # open PATH, unlink it, read via the fd
        fd = os.open(a[0], os.O_RDONLY)
        try:
            os.unlink(a[0])
            still = os.path.lexists(a[0])
            data = b""
            while True:
                b = os.read(fd, 1 << 16)
                if not b:
                    break
                data += b
            nlink = os.fstat(fd).st_nlink
        finally:
            os.close(fd)
        return "OK exists=%d nlink=%d sha256=%s" % (
            still, nlink, hashlib.sha256(data).hexdigest())
    elif op == "tree":
        tree(a[0])
        return None
    else:
        print("sysc: unknown operation %r" % op, file=sys.stderr)
        sys.exit(2)
    return "OK"


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        out = run(sys.argv[1], sys.argv[2:])
    except OSError as e:
        out = errno.errorcode.get(e.errno, "E%d" % e.errno)
    except (IndexError, ValueError, KeyError) as e:
        print("sysc: bad arguments for %s: %s" % (sys.argv[1], e),
              file=sys.stderr)
        sys.exit(2)
    if out is not None:
        sys.stdout.write(out + "\n")


if __name__ == "__main__":
    main()
