#!/usr/bin/env python3
"""snapcreate.py - what `snapshot create` costs on a mounted volume, and
what a writer sees while snapshots are taken.  Used by snapbench.sh and
scalebench.sh.

    snapcreate.py SNAPFS MOUNTPOINT STORE [--creates N] [--idle N]
                  [--prefix P] [--writer-seconds S]

It prints `key value` lines (times in milliseconds):

  start     N runs of `snapfs help`: what starting the command costs
            (the program and its shared libraries), p50 / p99 / max;
  idle      N creates (--idle) with nothing else running, one after the
            other: the whole command (`snapfs snapshot create`, process
            start included) and, separately, the daemon's part (the
            request on STORE/control.sock until its OK: no process start,
            no syncfs), median / p99 / max;
  writer    a writer process alone for --writer-seconds: each operation
            creates a 4 KiB file (open O_CREAT, write, close: the close
            hands the kernel's cached pages to the daemon), times it, and
            deletes the file 64 operations later, so that the volume does
            not grow; p50 / p99 / max of its operations;
  during    the same writer while N creates (--creates) run one after the
            other: the creates' median / p99 / max, and the writer's
            p50 / p99 / max over the operations that overlapped them.

A stall of the writer shows as its max (and p99 when stalls are
frequent); the writer alone gives the baseline to compare with.
"""
import argparse
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def run_create(snapfs, mnt, name):
    t = time.perf_counter()
    r = subprocess.run([snapfs, "snapshot", "create", mnt, name],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ms = (time.perf_counter() - t) * 1000.0
    if r.returncode:
        sys.exit("snapshot create %s failed: %s" % (name, r.stderr.decode()))
    return ms


def daemon_create(store, name):
    """The daemon's part: one request on the control socket."""
    t = time.perf_counter()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.path.join(store, "control.sock"))
    s.sendall(("snapshot-create\t%s\n" % name).encode())
    reply = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    s.close()
    ms = (time.perf_counter() - t) * 1000.0
    if reply.strip().split(b"\n")[-1] != b"OK":
        sys.exit("snapshot-create %s: daemon answered %r" % (name, reply))
    return ms


def writer(directory, stop, out):
    """Create 4 KiB files until STOP is set; (start, seconds) per op."""
    os.makedirs(directory, exist_ok=True)
    data = os.urandom(4096)
    lat = []
    i = 0
    while not stop.is_set():
        path = "%s/w%07d" % (directory, i)
        t = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.close(fd)
        lat.append((t, time.perf_counter() - t))
        if i >= 64:
            os.unlink("%s/w%07d" % (directory, i - 64))
        i += 1
    out.put(lat)


def start_writer(directory):
    stop = mp.Event()
    q = mp.Queue()
    p = mp.Process(target=writer, args=(directory, stop, q))
    p.start()
    return p, stop, q


def stop_writer(p, stop, q):
    stop.set()
    lat = q.get()
    p.join()
    return lat


def summary(prefix, values):
    print("%s_p50_ms %.3f" % (prefix, pct(values, 50)))
    print("%s_p99_ms %.3f" % (prefix, pct(values, 99)))
    print("%s_max_ms %.3f" % (prefix, max(values) if values else float("nan")))
    print("%s_count %d" % (prefix, len(values)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("snapfs")
    ap.add_argument("mnt")
    ap.add_argument("store")
    ap.add_argument("--creates", type=int, default=100)
    ap.add_argument("--idle", type=int, default=20)
    ap.add_argument("--prefix", default="sc")
    ap.add_argument("--writer-seconds", type=float, default=5.0)
    a = ap.parse_args()

    start = []
    for _ in range(a.idle):
        t = time.perf_counter()
        subprocess.run([a.snapfs, "help"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        start.append((time.perf_counter() - t) * 1000.0)
    summary("start", start)
    idle = [run_create(a.snapfs, a.mnt, "%s-i%d" % (a.prefix, i))
            for i in range(a.idle)]
    summary("create_idle", idle)
    dmn = [daemon_create(a.store, "%s-d%d" % (a.prefix, i))
           for i in range(a.idle)]
    summary("create_daemon_idle", dmn)

    wdir = os.path.join(a.mnt, "%s-writer" % a.prefix)
    p, stop, q = start_writer(wdir)
    time.sleep(a.writer_seconds)
    alone = [s * 1000.0 for _, s in stop_writer(p, stop, q)]
    summary("writer_alone", alone)

    p, stop, q = start_writer(wdir)
    time.sleep(0.5)  # the writer is under way
    t0 = time.perf_counter()
    during = [run_create(a.snapfs, a.mnt, "%s-w%d" % (a.prefix, i))
              for i in range(a.creates)]
    t1 = time.perf_counter()
    lat = stop_writer(p, stop, q)
    summary("create_writing", during)
    overlapped = [s * 1000.0 for t, s in lat if t + s >= t0 and t <= t1]
    summary("writer_during", overlapped)
    for name in os.listdir(wdir):
        os.unlink(os.path.join(wdir, name))
    os.rmdir(wdir)


if __name__ == "__main__":
    main()
