#!/usr/bin/env python3
"""statscheck.py - the known workload of t47-stats and checks of what
`snapfs stats` prints.

  statscheck.py workload DIR      run the workload in DIR (a directory of
                                  the volume); print what it did as JSON
  statscheck.py exact BEFORE AFTER DONE
                                  the figures AFTER - BEFORE (--json
                                  outputs) equal what DONE (the workload's
                                  JSON) says, where they are exact
  statscheck.py plausible STATS   latencies of every operation that ran
                                  are > 0 and p50 <= p90 <= p99 <= p999
                                  <= max; means within [min, max]
  statscheck.py prom FILE [OP=N...]
                                  FILE parses as the Prometheus text
                                  format (every line; TYPE before samples;
                                  counters end in _total; histograms
                                  cumulative, ending at le="+Inf" equal to
                                  _count, with a _sum); each OP=N: the
                                  operation's _count is N
Exit status 0 when everything holds; else each failure on stderr, 1.
"""
import json
import mmap
import os
import re
import sys

BLOCK = 65536


def write_file(path, data, fsync):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, data)
    if fsync:
        os.fsync(fd)
    os.close(fd)


def direct_read(path):
    """Read PATH whole with O_DIRECT (the page cache bypassed, so every
    byte is a read the daemon answers); the number of bytes read."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, 1 << 20)  # page-aligned, as O_DIRECT wants
    total = 0
    while True:
        n = os.readv(fd, [buf])
        total += n
        if n < len(buf):  # the end (and no read at an unaligned offset)
            break
    os.close(fd)
    return total


def workload(d):
    """Creates, writes of new, duplicate, compressible, zero and small
    data, fsyncs, a rename, an unlink, a setxattr, O_DIRECT reads."""
    rnd = os.urandom(4 * BLOCK)
    text = b"".join(b"line %09d of a compressible file\n" % i
                    for i in range(4 * BLOCK // 36 + 1))[:4 * BLOCK]
    zeros = bytes(2 * BLOCK)
    os.mkdir(os.path.join(d, "d1"))
    os.mkdir(os.path.join(d, "d2"))
    small = 20
    for i in range(small):
        write_file(os.path.join(d, "d1", "s%02d" % i),
                   (b"s%03d" % i) * 25, False)  # 100 bytes
    write_file(os.path.join(d, "rand.bin"), rnd, True)
    write_file(os.path.join(d, "dup.bin"), rnd, True)
    write_file(os.path.join(d, "text.bin"), text, True)
    write_file(os.path.join(d, "zero.bin"), zeros, True)
    os.rename(os.path.join(d, "d1", "s00"), os.path.join(d, "d2", "s00"))
    os.unlink(os.path.join(d, "d1", "s01"))
    os.setxattr(os.path.join(d, "rand.bin"), "user.stats", b"yes")
    read = (direct_read(os.path.join(d, "rand.bin")) +
            direct_read(os.path.join(d, "text.bin")) +
            direct_read(os.path.join(d, "d1", "s02")))
    done = {
        "ops": {"create": small + 4, "mkdir": 2, "fsync": 4, "rename": 1,
                "unlink": 1, "setxattr": 1},
        "bytes": {"read": read,
                  "written": small * 100 + 3 * len(rnd) + len(zeros)},
        "blocks": {"new": 8, "new_bytes_before_compression": 8 * BLOCK,
                   "compressed": 4, "deduplicated": 4,
                   "deduplicated_bytes": 4 * BLOCK,
                   "zero_bytes": len(zeros), "inline_bytes": small * 100},
        # rand.bin's blocks are stored raw, text.bin's compressed
        "stored_below": 8 * BLOCK, "stored_above": 4 * BLOCK,
    }
    assert read == 2 * 4 * BLOCK + 100, read
    print(json.dumps(done))


def fail(msg):
    print(msg, file=sys.stderr)
    return 1


def exact(before_path, after_path, done_path):
    before = json.load(open(before_path))
    after = json.load(open(after_path))
    done = json.load(open(done_path))
    bad = 0
    for op, n in done["ops"].items():
        got = (after["operations"][op]["count"] -
               before["operations"][op]["count"])
        if got != n:
            bad |= fail("operation %s: %d counted, %d done" % (op, got, n))
    for group in ("bytes", "blocks"):
        for key, n in done[group].items():
            got = after[group][key] - before[group][key]
            if got != n:
                bad |= fail("%s.%s: %d counted, %d expected" %
                            (group, key, got, n))
    stored = (after["blocks"]["new_bytes_after_compression"] -
              before["blocks"]["new_bytes_after_compression"])
    if not done["stored_above"] < stored < done["stored_below"]:
        bad |= fail("new bytes after compression %d not in (%d, %d)" %
                    (stored, done["stored_above"], done["stored_below"]))
    return bad


def plausible(path):
    s = json.load(open(path))
    bad = 0
    ran = 0
    for op, o in s["operations"].items():
        lat = o["latency_us"]
        if o["count"] == 0:
            if any(lat[k] != 0 for k in lat):
                bad |= fail("%s: no operations but latencies %r" % (op, lat))
            continue
        ran += 1
        seq = [lat["p50"], lat["p90"], lat["p99"], lat["p999"], lat["max"]]
        if not all(v > 0 for v in seq) or seq != sorted(seq):
            bad |= fail("%s: percentiles not > 0 and ordered: %r" % (op, lat))
        if not 0 < lat["mean"] <= lat["max"]:
            bad |= fail("%s: mean %r outside (0, max]" % (op, lat))
        if not 0 < o["per_second"]:
            bad |= fail("%s: rate %r" % (op, o["per_second"]))
    if ran < 8:
        bad |= fail("only %d kinds of operations counted" % ran)
    if not s["uptime_seconds"] > 0:
        bad |= fail("uptime %r" % s["uptime_seconds"])
    return bad


NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(?:\{(%s(?:,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))
HELP = re.compile(r"^# HELP (%s) \S.*$" % NAME)
TYPE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$"
                  % NAME)
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def family_of(name, types):
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)] if name.endswith(suffix) else None
        if base and types.get(base) == "histogram":
            return base
    return None


def prom(path, expects):
    types, bad = {}, 0
    hists = {}  # (family, labels without le) -> {"buckets": [], ...}
    samples = {}
    for no, line in enumerate(open(path).read().split("\n"), 1):
        if line == "":
            continue
        where = "line %d: %r" % (no, line)
        if line.startswith("#"):
            m = TYPE.match(line)
            if m:
                if m.group(1) in types:
                    bad |= fail("%s: a second TYPE" % where)
                types[m.group(1)] = m.group(2)
            elif not HELP.match(line):
                bad |= fail("%s: not a HELP or TYPE line" % where)
            continue
        m = SAMPLE.match(line)
        if not m:
            bad |= fail("%s: not a sample" % where)
            continue
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        try:
            v = float(value)
        except ValueError:
            bad |= fail("%s: value is not a number" % where)
            continue
        fam = family_of(name, types)
        if fam is None:
            bad |= fail("%s: no TYPE before it" % where)
            continue
        lab = dict(LABEL_RE.findall(labels))
        if "volume" not in lab:
            bad |= fail("%s: no volume label" % where)
        if types[fam] == "counter" and not name.endswith("_total"):
            bad |= fail("%s: a counter not ending in _total" % where)
        if v < 0 and types[fam] in ("counter", "histogram"):
            bad |= fail("%s: negative" % where)
        if types[fam] == "histogram":
            key = (fam, tuple(sorted((k, x) for k, x in lab.items()
                                     if k != "le")))
            h = hists.setdefault(key, {"buckets": []})
            if name == fam + "_bucket":
                if "le" not in lab:
                    bad |= fail("%s: a bucket without le" % where)
                    continue
                h["buckets"].append((float(lab["le"]), v))
            else:
                h[name[len(fam) + 1:]] = v
        samples[(name, tuple(sorted(lab.items())))] = v
    for (fam, lab), h in hists.items():
        where = "%s%r" % (fam, dict(lab))
        b = h["buckets"]
        les = [le for le, _ in b]
        if not b or les != sorted(les) or len(set(les)) != len(les):
            bad |= fail("%s: buckets missing or not in increasing le" % where)
            continue
        if b[-1][0] != float("inf"):
            bad |= fail("%s: the last bucket is not le=\"+Inf\"" % where)
        if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
            bad |= fail("%s: buckets not cumulative: %r" % (where, b))
        if "count" not in h or "sum" not in h:
            bad |= fail("%s: no _count or _sum" % where)
        elif h["count"] != b[-1][1]:
            bad |= fail("%s: _count %r != +Inf bucket %r" %
                        (where, h["count"], b[-1][1]))
    for e in expects:
        op, n = e.split("=")
        got = [v for (name, lab), v in samples.items()
               if name == "snapfs_operation_duration_seconds_count" and
               ("op", op) in lab]
        if got != [float(n)]:
            bad |= fail("operation %s: _count %r, expected %s" % (op, got, n))
    if not bad:
        print("%d families, %d histograms, %d samples" %
              (len(types), len(hists), len(samples)))
    return bad


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "workload":
        workload(args[0])
        return 0
    if cmd == "exact":
        return exact(*args)
    if cmd == "plausible":
        return plausible(args[0])
    if cmd == "prom":
        return prom(args[0], args[1:])
    return fail("unknown command %s" % cmd)


if __name__ == "__main__":
    sys.exit(main())
