#!/bin/bash
# readdir: a listing resumed between getdents64 calls returns every entry
# that was not touched meanwhile exactly once, while other entries are
# created and removed between the calls (POSIX leaves only those open).
. "$(dirname "$0")/lib.sh"
vol_create

cat >"$TEST_TMP/listing.py" <<'PY'
import ctypes, os, random, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
SYS_getdents64 = 217  # x86_64
d = sys.argv[1]
os.mkdir(d)
stable = ["stable-%04d" % i for i in range(1500)]
for n in stable:
    open(os.path.join(d, n), "w").close()
churn = ["churn-%04d" % i for i in range(1500)]
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
buf = ctypes.create_string_buffer(1024)  # a few entries per call
seen = {}
rnd = random.Random(7)
calls = 0
while True:
    n = libc.syscall(SYS_getdents64, fd, buf, len(buf))
    if n < 0:
        sys.exit("getdents64: errno %d" % ctypes.get_errno())
    if n == 0:
        break
    calls += 1
    pos = 0
    raw = buf.raw
    while pos < n:
        ino, off, reclen, typ = struct.unpack_from("QqHB", raw, pos)
        name = raw[pos + 19:pos + reclen].split(b"\0", 1)[0].decode()
        seen[name] = seen.get(name, 0) + 1
        pos += reclen
    # change the directory between calls
    for _ in range(5):
        c = rnd.choice(churn)
        p = os.path.join(d, c)
        if os.path.exists(p):
            os.unlink(p)
        else:
            open(p, "w").close()
os.close(fd)
missing = [s for s in stable if seen.get(s, 0) == 0]
twice = [s for s in stable if seen.get(s, 0) > 1]
if missing or twice or seen.get(".") != 1 or seen.get("..") != 1:
    sys.exit("missing %d (%s), twice %d (%s), . %s, .. %s" % (
        len(missing), missing[:3], len(twice), twice[:3], seen.get("."), seen.get("..")))
print("%d getdents64 calls; every untouched entry exactly once" % calls)
PY

test_expect_success 'a listing survives creations and removals between getdents64 calls' '
	python3 "$TEST_TMP/listing.py" "$MNT/busy"
'

test_done
