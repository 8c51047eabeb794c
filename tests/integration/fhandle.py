#!/usr/bin/env python3
"""fhandle.py - file handles as an NFS server uses them (root only).

    fhandle.py get PATH...      one line per PATH: "PATH TYPE:HEX", the handle
                                name_to_handle_at() gives (not following a
                                final symlink)
    fhandle.py open MOUNT TYPE:HEX
                                open_by_handle_at() on the filesystem of MOUNT
                                and print what the handle names: "file
                                SHA256", "dir NAME,NAME,..." (sorted, without
                                . and ..), "link TARGET"; or the errno's name
                                (ESTALE...) and exit 1

Standard library only (ctypes).
"""
import ctypes
import errno
import hashlib
import os
import stat
import sys

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
AT_SYMLINK_FOLLOW = 0x400
MAX_HANDLE_SZ = 128


class FileHandle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint),
                ("handle_type", ctypes.c_int),
                ("f_handle", ctypes.c_ubyte * MAX_HANDLE_SZ)]


def fail(err):
    print(errno.errorcode.get(err, str(err)))
    sys.exit(1)


def get(path):
    fh = FileHandle(handle_bytes=MAX_HANDLE_SZ)
    mount_id = ctypes.c_int()
    if libc.name_to_handle_at(AT_FDCWD, path.encode(), ctypes.byref(fh),
                              ctypes.byref(mount_id), 0) != 0:
        fail(ctypes.get_errno())
    raw = bytes(fh.f_handle[:fh.handle_bytes])
    print("%s %d:%s" % (path, fh.handle_type, raw.hex()))


def describe(fd):
    st = os.fstat(fd)
    if stat.S_ISLNK(st.st_mode):
        return "link " + os.readlink("", dir_fd=fd)
    if stat.S_ISDIR(st.st_mode):
        return "dir " + ",".join(sorted(os.listdir(fd)))
    if stat.S_ISREG(st.st_mode):
        h = hashlib.sha256()
        with os.fdopen(os.dup(fd), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return "file " + h.hexdigest()
    return "other %o" % stat.S_IFMT(st.st_mode)


def open_handle(mount, spec):
    htype, hexs = spec.split(":", 1)
    raw = bytes.fromhex(hexs)
    fh = FileHandle(handle_bytes=len(raw), handle_type=int(htype))
    ctypes.memmove(fh.f_handle, raw, len(raw))
    mfd = os.open(mount, os.O_RDONLY | os.O_DIRECTORY)
    # O_PATH first: it opens any type (a symlink too); then the real open
    fd = libc.open_by_handle_at(mfd, ctypes.byref(fh), os.O_PATH)
    if fd < 0:
        fail(ctypes.get_errno())
    st = os.fstat(fd)
    if not stat.S_ISLNK(st.st_mode):
        os.close(fd)
        flags = os.O_RDONLY | (os.O_DIRECTORY if stat.S_ISDIR(st.st_mode) else 0)
        fd = libc.open_by_handle_at(mfd, ctypes.byref(fh), flags)
        if fd < 0:
            fail(ctypes.get_errno())
    print(describe(fd))


def main(argv):
    if len(argv) >= 2 and argv[0] == "get":
        for p in argv[1:]:
            get(p)
    elif len(argv) == 3 and argv[0] == "open":
        open_handle(argv[1], argv[2])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
