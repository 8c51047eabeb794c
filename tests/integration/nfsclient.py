#!/usr/bin/env python3
"""nfsclient.py - what libnfs-utils cannot do, through libnfs itself.

    nfsclient.py fh URL PATH...
        mount the export of URL (nfs://HOST/EXPORT?..., with libnfs's
        options such as version=4, nfsport=N), open each PATH (a file,
        relative to the export) and print "PATH HEX": the file handle the
        server gave for it (libnfs-utils has no command that shows one)
    nfsclient.py put URL LOCAL PATH
        write the file LOCAL to PATH in the export, 2 KiB per WRITE:
        libnfs 4.0 (Debian 12) fails to encode an NFSv4 WRITE of 4 KiB
        or more ("Failed to encode COMPOUND4args"), so nfs-cp cannot
        write a file larger than that over NFSv4, whatever the server

Errors print "PATH ERROR: message" and exit 1.  ctypes, standard library.
"""
import ctypes
import os
import sys


class NfsUrl(ctypes.Structure):
    _fields_ = [("server", ctypes.c_char_p), ("path", ctypes.c_char_p),
                ("file", ctypes.c_char_p)]


class NfsFh(ctypes.Structure):
    _fields_ = [("len", ctypes.c_int), ("val", ctypes.POINTER(ctypes.c_ubyte))]


def load():
    lib = ctypes.CDLL("libnfs.so.13")
    lib.nfs_init_context.restype = ctypes.c_void_p
    lib.nfs_destroy_context.argtypes = [ctypes.c_void_p]
    lib.nfs_parse_url_dir.restype = ctypes.POINTER(NfsUrl)
    lib.nfs_parse_url_dir.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.nfs_mount.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    lib.nfs_open.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                             ctypes.POINTER(ctypes.c_void_p)]
    lib.nfs_close.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.nfs_get_fh.restype = ctypes.POINTER(NfsFh)
    lib.nfs_get_fh.argtypes = [ctypes.c_void_p]
    lib.nfs_get_error.restype = ctypes.c_char_p
    lib.nfs_get_error.argtypes = [ctypes.c_void_p]
    # libnfs 4.0: (nfs, fh, offset, count, buf)
    lib.nfs_pwrite.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                               ctypes.c_uint64, ctypes.c_uint64,
                               ctypes.c_char_p]
    return lib


def error(lib, nfs, what):
    print("%s ERROR: %s" % (what, lib.nfs_get_error(nfs).decode()))
    return 1


def mount(lib, url_text):
    nfs = lib.nfs_init_context()
    url = lib.nfs_parse_url_dir(nfs, url_text.encode())
    if not url:
        return nfs, error(lib, nfs, "URL")
    if lib.nfs_mount(nfs, url.contents.server, url.contents.path) != 0:
        return nfs, error(lib, nfs, "MOUNT")
    return nfs, 0


def put(lib, nfs, local, path):
    data = open(local, "rb").read()
    fh = ctypes.c_void_p()
    if lib.nfs_open(nfs, ("/" + path).encode(),
                    os.O_WRONLY | os.O_CREAT | os.O_TRUNC, ctypes.byref(fh)):
        return error(lib, nfs, path)
    off = 0
    while off < len(data):
        piece = data[off:off + 2048]
        n = lib.nfs_pwrite(nfs, fh, off, len(piece), piece)
        if n <= 0:
            return error(lib, nfs, path)
        off += n
    lib.nfs_close(nfs, fh)
    return 0


def handles(lib, nfs, paths):
    rc = 0
    for path in paths:
        fh = ctypes.c_void_p()
        if lib.nfs_open(nfs, ("/" + path).encode(), os.O_RDONLY,
                        ctypes.byref(fh)) != 0:
            rc = error(lib, nfs, path)
            continue
        h = lib.nfs_get_fh(fh).contents
        print("%s %s" % (path, bytes(h.val[:h.len]).hex()))
        lib.nfs_close(nfs, fh)
    return rc


def main(argv):
    if len(argv) < 3 or argv[0] not in ("fh", "put") or \
            (argv[0] == "put" and len(argv) != 4):
        sys.stderr.write(__doc__)
        return 2
    lib = load()
    nfs, rc = mount(lib, argv[1])
    if not rc:
        rc = handles(lib, nfs, argv[2:]) if argv[0] == "fh" else \
            put(lib, nfs, argv[2], argv[3])
    lib.nfs_destroy_context(nfs)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
