#!/usr/bin/env python3
"""vaulttree.py: the volume of vaultbench.sh, and its change.

  vaulttree.py fill ROOT MANIFEST TOTAL_MIB NFILES SEED
  vaulttree.py change ROOT MANIFEST PCT SEED TAG

fill writes about TOTAL_MIB MiB under ROOT, a mix meant to look like a
file server's volume (every byte from a seeded generator, so the same
arguments make the same tree):

  - NFILES small files, log-uniformly 256 B - 64 KiB (mean about 12 KiB),
    about 100 per directory in a two-level tree: 50% text (source code
    and prose from a Zipf-weighted vocabulary), 15% structured text (CSV
    and JSON records), 25% already compressed (random bytes: images,
    archives), 10% binaries (code-like bytes: small integers, zero runs,
    strings, some random);
  - large files for the rest of the total: 30% text logs (3 files, timed
    lines of a web server and its application), 35% already compressed
    media (6 files, random bytes), 20% a virtual disk image (1 file: runs
    of zeros, 60% of it, between regions of text, binary and random
    data, written out, not sparse), 15% a database file (1 file, 8 KiB
    pages of fixed-size records: sequential ids, times, amounts, names).

The kinds and paths go to MANIFEST ("KIND PATH" a line).  fill prints
"files N bytes B".

change changes about PCT% of the volume: PCT% of the small files (40%
rewritten whole at a new size, 15% appended to, 20% new files, 20%
deleted, 5% renamed into another directory, each of its own kind), and
about PCT% of the large files' bytes: half of it as lines appended to
the logs, a quarter as database pages rewritten in place, a quarter as a
region of a media file rewritten.  It rewrites MANIFEST and prints
"files F bytes B" (F: small files touched, B: bytes written).  The same
SEED gives the same change to the same tree.
"""
import math
import os
import random
import struct
import sys

SMALL_MIN, SMALL_MAX = 256, 64 << 10
TOP_DIRS, PER_DIR = 50, 100
MiB = 1 << 20
SMALL_KINDS = (("text", 50), ("data", 15), ("packed", 25), ("binary", 10))
LARGE_KINDS = (("log", 30, 3), ("media", 35, 6), ("image", 20, 1),
               ("db", 15, 1))


class Words:
    """A vocabulary of made-up words drawn with Zipf-like weights."""

    SYL = ("ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "an", "el",
           "in", "or", "us", "ba", "de", "fo", "gu", "he", "jo", "ti", "pre",
           "con", "ter", "ing", "ment", "str", "ion", "al", "er")

    def __init__(self, rnd, n=6000):
        words = set()
        while len(words) < n:
            words.add("".join(rnd.choice(self.SYL)
                              for _ in range(rnd.randint(1, 4))))
        self.words = sorted(words)
        rnd.shuffle(self.words)
        self.cum = []
        total = 0.0
        for i in range(n):
            total += 1.0 / (i + 1) ** 1.05
            self.cum.append(total)

    def pick(self, rnd, k):
        return rnd.choices(self.words, cum_weights=self.cum, k=k)


def prose(rnd, w, size):
    out, n = [], 0
    while n < size:
        ws = w.pick(rnd, rnd.randint(6, 18))
        ws[0] = ws[0].capitalize()
        s = " ".join(ws) + rnd.choice((". ", ". ", ", ", "; ", ".\n\n"))
        out.append(s)
        n += len(s)
    return "".join(out).encode()[:size]


def code(rnd, w, size):
    out, n, depth = [], 0, 1
    ops = (" = ", " == ", " + ", " < ", " -> ", ", ")
    while n < size:
        a, b, c, d = w.pick(rnd, 4)
        r = rnd.random()
        if r < 0.15:
            s = "%sif (%s_%s%s%d) {\n" % ("    " * depth, a, b,
                                          rnd.choice(ops), rnd.randint(0, 4096))
            depth = min(depth + 1, 6)
        elif r < 0.3 and depth > 1:
            depth -= 1
            s = "%s}\n" % ("    " * depth)
        elif r < 0.4:
            s = "%s/* %s */\n" % ("    " * depth,
                                   " ".join(w.pick(rnd, rnd.randint(3, 10))))
        else:
            s = "%s%s_%s(%s, %s->%s);\n" % ("    " * depth, a, b, c, d,
                                            rnd.choice(w.words[:200]))
        out.append(s)
        n += len(s)
    return "".join(out).encode()[:size]


def records(rnd, w, size):
    out, n, i = [], 0, rnd.randint(1, 10 ** 6)
    as_json = rnd.random() < 0.5
    while n < size:
        name, city = w.pick(rnd, 2)
        i += 1
        if as_json:
            s = ('{"id": %d, "name": "%s", "city": "%s", "amount": %.2f, '
                 '"active": %s}\n' % (i, name, city, rnd.random() * 1000,
                                      rnd.choice(("true", "false"))))
        else:
            s = "%d,%s,%s,%.2f,%d\n" % (i, name, city, rnd.random() * 1000,
                                        rnd.randint(0, 99))
        out.append(s)
        n += len(s)
    return "".join(out).encode()[:size]


OPCODES = (0x48, 0x89, 0x8b, 0xe8, 0x0f, 0xc3, 0x00, 0x01, 0x24, 0x45, 0x85,
           0xc0, 0x74, 0x75, 0xff, 0x31, 0x83, 0xec, 0x5d, 0x41)
VOCAB_SEED = 2  # fill and change draw words from the same vocabulary


def binary(rnd, w, size):
    out, n = [], 0
    while n < size:
        r = rnd.random()
        if r < 0.45:  # instructions: small integers, repeated opcodes
            k = rnd.randint(64, 2048)
            b = bytes(rnd.choices(OPCODES, k=k))
        elif r < 0.65:
            b = bytes(rnd.randint(64, 4096))
        elif r < 0.85:
            b = b"\0".join(x.encode() for x in w.pick(rnd, rnd.randint(8, 64)))
        else:
            b = rnd.randbytes(rnd.randint(64, 2048))
        out.append(b)
        n += len(b)
    return b"".join(out)[:size]


def packed(rnd, w, size):
    return rnd.randbytes(size)


def small_text(rnd, w, size):
    return code(rnd, w, size) if rnd.random() < 0.6 else prose(rnd, w, size)


SMALL_MAKERS = {"text": small_text, "data": records, "packed": packed,
                "binary": binary}

PATHS = ("/", "/api/v1/items", "/api/v1/users", "/static/app.js",
         "/static/style.css", "/login", "/search", "/api/v2/orders",
         "/health", "/images/logo.png")
AGENTS = ("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
          "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0",
          "curl/8.5.0", "python-requests/2.31", "Go-http-client/1.1")


class Log:
    """Lines of a web server and its application, in time order."""

    def __init__(self, rnd, w, t0):
        self.rnd, self.w, self.t = rnd, w, t0

    def chunk(self, size):
        rnd, w = self.rnd, self.w
        out, n = [], 0
        while n < size:
            self.t += rnd.expovariate(50.0)
            t = self.t
            ts = "2026-12-%02dT%02d:%02d:%06.3fZ" % (
                1 + int(t // 86400) % 28, int(t // 3600) % 24,
                int(t // 60) % 60, t % 60)
            if rnd.random() < 0.7:
                s = '%s web%02d nginx: 10.%d.%d.%d - - "%s %s?id=%d HTTP/1.1" ' \
                    '%d %d %.3f "%s"\n' % (
                        ts, rnd.randint(1, 12), rnd.randint(0, 3),
                        rnd.randint(0, 255), rnd.randint(1, 254),
                        rnd.choice(("GET", "GET", "GET", "POST", "PUT")),
                        rnd.choice(PATHS), rnd.randint(1, 99999),
                        rnd.choice((200, 200, 200, 200, 304, 404, 500)),
                        rnd.randint(120, 60000), rnd.random() * 0.5,
                        rnd.choice(AGENTS))
            else:
                s = "%s app%02d api[%d]: %s %s: %s\n" % (
                    ts, rnd.randint(1, 4), rnd.randint(1000, 9999),
                    rnd.choice(("INFO", "INFO", "DEBUG", "WARN", "ERROR")),
                    ".".join(w.pick(rnd, 2)),
                    " ".join(w.pick(rnd, rnd.randint(4, 12))))
            out.append(s)
            n += len(s)
        return "".join(out).encode()


def db_page(rnd, w, no):
    rows = [struct.pack("<QQI", no, rnd.getrandbits(64), 0)]
    rid = no * 100
    for _ in range(100):
        rid += 1
        name = w.pick(rnd, 1)[0].encode()[:23]
        rows.append(struct.pack("<QqdH24s", rid, 1764000000 + rid * 7,
                                round(rnd.random() * 10000, 2),
                                rnd.randint(0, 40), name))
    page = b"".join(rows)
    return page + bytes(8192 - len(page))


def write_large(path, kind, size, rnd, w):
    with open(path, "wb") as f:
        n = 0
        if kind == "log":
            log = Log(rnd, w, rnd.randint(0, 10 ** 6))
        while n < size:
            step = min(MiB, size - n)
            if kind == "log":
                b = log.chunk(step)[:step]
            elif kind == "media":
                b = rnd.randbytes(step)
            elif kind == "db":
                b = b"".join(db_page(rnd, w, (n >> 13) + i)
                             for i in range((step + 8191) >> 13))[:step]
            else:  # image: zeros, then text, binary or random regions
                r = rnd.random()
                b = (bytes(step) if r < 0.6 else
                     prose(rnd, w, step) if r < 0.75 else
                     binary(rnd, w, step) if r < 0.9 else rnd.randbytes(step))
            f.write(b)
            n += len(b)
    return n


def small_size(rnd):
    return int(math.exp(rnd.uniform(math.log(SMALL_MIN), math.log(SMALL_MAX))))


def pick_kind(rnd, kinds):
    return rnd.choices([k[0] for k in kinds], weights=[k[1] for k in kinds])[0]


def fill(root, manifest, total_mib, nfiles, seed):
    rnd = random.Random(seed)
    w = Words(random.Random(VOCAB_SEED))
    leaves = max(1, (nfiles + PER_DIR - 1) // PER_DIR)
    subs = max(1, (leaves + TOP_DIRS - 1) // TOP_DIRS)
    lines, written = [], 0
    for i in range(nfiles):
        leaf = i % leaves
        d = "d%02d/s%03d" % (leaf % TOP_DIRS, leaf // TOP_DIRS % subs)
        if i < leaves:
            os.makedirs(os.path.join(root, d), exist_ok=True)
        kind = pick_kind(rnd, SMALL_KINDS)
        rel = "%s/f%06d.%s" % (d, i, kind)
        data = SMALL_MAKERS[kind](rnd, w, small_size(rnd))
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)
        lines.append("%s %s" % (kind, rel))
        written += len(data)
    large = max(total_mib * MiB - written, 8 * MiB)
    os.makedirs(os.path.join(root, "large"), exist_ok=True)
    for kind, share, count in LARGE_KINDS:
        for j in range(count):
            rel = "large/%s%d" % (kind, j)
            size = large * share // 100 // count
            written += write_large(os.path.join(root, rel), kind, size, rnd, w)
            lines.append("%s %s" % (kind, rel))
    with open(manifest, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("files %d bytes %d" % (len(lines), written))


def change_small(root, entries, count, rnd, w, tag):
    n_ren = max(1, round(count * 0.05)) if count >= 4 else 0
    n_del = round(count * 0.20)
    n_new = round(count * 0.20)
    n_app = round(count * 0.15)
    n_rw = max(0, count - n_ren - n_del - n_new - n_app)
    small = [i for i, (k, _) in enumerate(entries) if k in SMALL_MAKERS]
    victims = rnd.sample(small, n_rw + n_app + n_del + n_ren)
    dirs = sorted({os.path.dirname(entries[i][1]) for i in small})
    written, k, gone = 0, 0, set()
    for j in range(n_rw + n_app):
        kind, rel = entries[victims[k]]
        k += 1
        data = SMALL_MAKERS[kind](rnd, w, small_size(rnd) // (1 if j < n_rw else 4))
        with open(os.path.join(root, rel), "wb" if j < n_rw else "ab") as f:
            f.write(data)
        written += len(data)
    for j in range(n_del):
        os.unlink(os.path.join(root, entries[victims[k]][1]))
        gone.add(victims[k])
        k += 1
    for j in range(n_ren):
        kind, old = entries[victims[k]]
        new = "%s/r%s%05d.%s" % (rnd.choice(dirs), tag, j, kind)
        os.rename(os.path.join(root, old), os.path.join(root, new))
        entries[victims[k]] = (kind, new)
        k += 1
    for j in range(n_new):
        kind = pick_kind(rnd, SMALL_KINDS)
        rel = "%s/n%s%05d.%s" % (rnd.choice(dirs), tag, j, kind)
        data = SMALL_MAKERS[kind](rnd, w, small_size(rnd))
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)
        entries.append((kind, rel))
        written += len(data)
    return [e for i, e in enumerate(entries) if i not in gone], count, written


def change_large(root, entries, budget, rnd, w):
    by_kind = {}
    for kind, rel in entries:
        by_kind.setdefault(kind, []).append(rel)
    written = 0
    logs = by_kind.get("log", [])
    for rel in logs:  # half: appended log lines
        log = Log(rnd, w, 10 ** 7)
        data = log.chunk(budget // 2 // len(logs))
        with open(os.path.join(root, rel), "ab") as f:
            f.write(data)
        written += len(data)
    for rel in by_kind.get("db", [])[:1]:  # a quarter: pages rewritten
        path = os.path.join(root, rel)
        pages = os.stat(path).st_size >> 13
        with open(path, "r+b") as f:
            for _ in range(max(1, budget // 4 // 8192)):
                no = rnd.randrange(pages)
                f.seek(no << 13)
                f.write(db_page(rnd, w, no))
                written += 8192
    for rel in by_kind.get("media", [])[:1]:  # a quarter: a region rewritten
        path = os.path.join(root, rel)
        size = os.stat(path).st_size
        n = min(budget // 4, size)
        with open(path, "r+b") as f:
            f.seek(rnd.randrange(0, size - n + 1) & ~4095)
            f.write(rnd.randbytes(n))
        written += n
    return written


def change(root, manifest, pct, seed, tag):
    with open(manifest) as f:
        entries = [tuple(line.split(" ", 1)) for line in f.read().splitlines()]
    rnd = random.Random(seed)
    w = Words(random.Random(VOCAB_SEED))
    nsmall = sum(1 for k, _ in entries if k in SMALL_MAKERS)
    large_bytes = sum(os.stat(os.path.join(root, rel)).st_size
                      for k, rel in entries if k not in SMALL_MAKERS)
    count = max(1, round(nsmall * pct / 100))
    entries, files, written = change_small(root, entries, count, rnd, w, tag)
    written += change_large(root, entries, int(large_bytes * pct / 100), rnd, w)
    with open(manifest, "w") as f:
        f.write("\n".join("%s %s" % e for e in entries) + "\n")
    print("files %d bytes %d" % (files, written))


def main():
    a = sys.argv[1:]
    if len(a) == 6 and a[0] == "fill":
        fill(a[1], a[2], int(a[3]), int(a[4]), int(a[5]))
    elif len(a) == 6 and a[0] == "change":
        change(a[1], a[2], float(a[3]), int(a[4]), a[5])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
