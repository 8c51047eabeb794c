#!/bin/bash
# Sequential writes whose whole blocks are stored outside the file's lock,
# several requests at once (fs/wrun.c): several threads writing 1 MiB
# pieces of one file, with unaligned writes, reads and truncation around
# them, match a model, with and without the kernel's writeback cache and
# after a remount; a snapshot taken while they write holds every write
# that returned before it, none begun after it, and of those in between
# each block old or new; a SIGKILL loses nothing fsync'd; a file that
# turns from random data to text is compressed again (the streak of raw
# blocks ends); a capability set on a file written before is seen by the
# kernel, which removes it at the next write.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 2G || test_bail "cannot create a volume"

MiB=$((1024 * 1024))

# seqw.py: threads writing 1 MiB pieces of one file; the content of a
# piece is a function of (thread, piece, pass), so a checker can tell
# which write a block came from.
#   seqw.py model FILE THREADS PIECES PASSES   the model after PASSES
#   seqw.py write FILE THREADS PIECES PASSES [--fsync-log LOG] [--log LOG]
#     thread t writes pieces t, t+THREADS, ... (PIECES in all) in order,
#     pass after pass, with an unaligned write and a read of its own
#     bytes after each piece (the read compared with what it wrote);
#     --fsync-log: fsync after each pass and log "PASS" once it returned;
#     --log: log "t piece pass start end" (monotonic) of every piece
#     written; PASSES 0: until killed or told to stop (a file FILE.stop)
#   seqw.py snapcheck SNAPFILE LOG T0 T1 THREADS PIECES: each block of
#     the snapshot's file holds the last write of it that ended before
#     T0, or one that began before T1 (in flight during the snapshot,
#     perhaps without its small write)
#   seqw.py synccheck FILE LOG THREADS PIECES: each block holds the pass
#     fsync'd last or a later one
cat >"$TEST_TMP/seqw.py" <<'PY'
import os, random, sys, threading, time
MiB, BS = 1 << 20, 64 << 10

def piece(t, k, p):
    return random.Random(t * 1000003 + k * 1009 + p * 7).randbytes(MiB)

def small(t, k, p):
    r = random.Random(-(t * 1000003 + k * 1009 + p * 7) - 1)
    return r.randrange(0, MiB - 5000), r.randbytes(r.choice([1, 100, 4095, 4999]))

def content(t, k, p):
    data = bytearray(piece(t, k, p))
    off, b = small(t, k, p)
    data[off:off + len(b)] = b
    return bytes(data)

def pieces_of(t, threads, pieces):
    return [k for k in range(pieces) if k % threads == t]

cmd = sys.argv[1]
if cmd == "model":
    path, threads, pieces, passes = sys.argv[2], *map(int, sys.argv[3:6])
    out = bytearray(pieces * MiB)
    for k in range(pieces):
        out[k * MiB:(k + 1) * MiB] = content(k % threads, k, passes - 1)
    open(path, "wb").write(out)
elif cmd == "write":
    path, threads, pieces, passes = sys.argv[2], *map(int, sys.argv[3:6])
    flog = sys.argv[sys.argv.index("--fsync-log") + 1] if "--fsync-log" in sys.argv else None
    wlog = open(sys.argv[sys.argv.index("--log") + 1], "a", buffering=1) if "--log" in sys.argv else None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    errors, lock = [], threading.Lock()
    barrier = threading.Barrier(threads)
    def writer(t):
        try:
            p = 0
            while passes == 0 or p < passes:
                for k in pieces_of(t, threads, pieces):
                    if os.path.exists(path + ".stop"):
                        return
                    t0 = time.monotonic()
                    os.pwrite(fd, piece(t, k, p), k * MiB)
                    off, b = small(t, k, p)
                    os.pwrite(fd, b, k * MiB + off)
                    t1 = time.monotonic()
                    if wlog:
                        with lock:
                            wlog.write("%d %d %d %.6f %.6f\n" % (t, k, p, t0, t1))
                    if os.pread(fd, MiB, k * MiB) != content(t, k, p):
                        raise Exception("thread %d: piece %d of pass %d reads back wrong" % (t, k, p))
                barrier.wait()
                if flog and t == 0:
                    os.fsync(fd)
                    with open(flog, "a") as f:
                        f.write("%d\n" % p)
                barrier.wait()
                p += 1
        except threading.BrokenBarrierError:
            pass
        except Exception as e:
            errors.append(str(e))
            barrier.abort()
    ts = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for x in ts: x.start()
    for x in ts: x.join()
    try:
        os.close(fd)
    except OSError:
        pass  # the daemon was killed: what counts is what it had synced
    if errors:
        sys.exit(errors[0])
elif cmd == "snapcheck":
    snap, log = sys.argv[2], sys.argv[3]
    t0, t1 = float(sys.argv[4]), float(sys.argv[5])
    threads, pieces = int(sys.argv[6]), int(sys.argv[7])
    writes = {}
    for line in open(log):
        t, k, p, s, e = line.split()
        writes.setdefault(int(k), []).append((int(p), float(s), float(e)))
    data = open(snap, "rb").read()
    before = inflight = 0
    for k in range(pieces):
        ws = sorted(writes.get(k, []))
        done = [p for p, s, e in ws if e < t0]
        maybe = [p for p, s, e in ws if e >= t0 and s <= t1]
        cands = ([content(k % threads, k, done[-1])] if done else [bytes(MiB)])
        for p in maybe:  # the whole piece may be in without the small write
            cands += [content(k % threads, k, p), piece(k % threads, k, p)]
        got = data[k * MiB:(k + 1) * MiB].ljust(MiB, b"\0")
        for b in range(0, MiB, BS):
            if not any(got[b:b + BS] == c[b:b + BS] for c in cands):
                sys.exit("piece %d, block at %d: neither the write done before the snapshot nor one in flight" % (k, b))
        if got == cands[0]:
            before += 1
        else:
            inflight += 1
    if before == 0:
        sys.exit("no piece written before the snapshot: the check checked nothing")
    print("%d pieces as before the snapshot, %d from writes in flight" % (before, inflight))
elif cmd == "synccheck":
    path, log = sys.argv[2], sys.argv[3]
    threads, pieces = int(sys.argv[4]), int(sys.argv[5])
    synced = int(open(log).read().split()[-1])
    data = open(path, "rb").read()
    for k in range(pieces):
        got = data[k * MiB:(k + 1) * MiB]
        cands = [content(k % threads, k, synced)]
        for p in (synced + 1, synced + 2):  # later, maybe without the small write
            cands += [content(k % threads, k, p), piece(k % threads, k, p)]
        for b in range(0, MiB, BS):
            if not any(got[b:b + BS] == c[b:b + BS] for c in cands):
                sys.exit("piece %d, block at %d: not the pass fsync'd (%d) nor a later one" % (k, b, synced))
    print("every block of pass %d or later" % synced)
PY
SEQW="python3 $TEST_TMP/seqw.py"

test_expect_success 'four threads writing 1 MiB pieces of one file (no writeback cache) match the model, read back as written' '
	"$SNAPFS" mkfs "$TEST_TMP/nwb" --size 1G >/dev/null &&
	SNAPFS_MOUNT_OPTS=no_writeback_cache vol_mount "$TEST_TMP/nwb" "$TEST_TMP/nwbm" &&
	$SEQW write "$TEST_TMP/nwbm/f" 4 32 3 &&
	$SEQW model "$REF/f.model" 4 32 3 &&
	cmp "$TEST_TMP/nwbm/f" "$REF/f.model"
'

test_expect_success 'truncating and extending that file afterwards gives the model cut and extended' '
	truncate -s $((5 * MiB + 12345)) "$TEST_TMP/nwbm/f" &&
	truncate -s $((5 * MiB + 12345)) "$REF/f.model" &&
	cmp "$TEST_TMP/nwbm/f" "$REF/f.model" &&
	head -c $((3 * MiB)) /dev/urandom >"$REF/tail" &&
	cat "$REF/tail" >>"$TEST_TMP/nwbm/f" && cat "$REF/tail" >>"$REF/f.model" &&
	cmp "$TEST_TMP/nwbm/f" "$REF/f.model"
'

test_expect_success 'a snapshot taken while three threads write holds every write done before it, none begun after it' '
	rm -f "$REF/w.log" "$TEST_TMP/nwbm/g.stop"
	$SEQW write "$TEST_TMP/nwbm/g" 3 24 0 --log "$REF/w.log" &
	writer=$! &&
	while [ "$(cat "$REF/w.log" 2>/dev/null | wc -l)" -lt 30 ]; do
		pid_running "$writer" || exit 1
		sleep 0.05
	done &&
	t0=$(python3 -c "import time; print(time.monotonic())") &&
	"$SNAPFS" snapshot create "$TEST_TMP/nwbm" during &&
	t1=$(python3 -c "import time; print(time.monotonic())") &&
	n=$(wc -l <"$REF/w.log") &&
	while [ "$(wc -l <"$REF/w.log")" -lt $((n + 10)) ]; do
		pid_running "$writer" || exit 1
		sleep 0.05
	done &&
	touch "$TEST_TMP/nwbm/g.stop" && wait "$writer" &&
	$SEQW snapcheck "$TEST_TMP/nwbm/.snapshot/during/g" "$REF/w.log" "$t0" "$t1" 3 24
'

test_expect_success 'after a remount the files and the snapshot read the same, and fsck is clean' '
	cp "$TEST_TMP/nwbm/.snapshot/during/g" "$REF/g.during" &&
	cp "$TEST_TMP/nwbm/g" "$REF/g.live" &&
	vol_umount "$TEST_TMP/nwbm" &&
	"$SNAPFS" fsck "$TEST_TMP/nwb" &&
	vol_mount "$TEST_TMP/nwb" "$TEST_TMP/nwbm" &&
	cmp "$TEST_TMP/nwbm/f" "$REF/f.model" &&
	cmp "$TEST_TMP/nwbm/g" "$REF/g.live" &&
	cmp "$TEST_TMP/nwbm/.snapshot/during/g" "$REF/g.during" &&
	vol_umount "$TEST_TMP/nwbm"
'

test_expect_success 'the same writers through the writeback cache match the model after fsync and after a remount' '
	$SEQW write "$MNT/h" 4 32 2 --fsync-log "$REF/h.synced" &&
	$SEQW model "$REF/h.model" 4 32 2 &&
	cmp "$MNT/h" "$REF/h.model" &&
	vol_remount &&
	cmp "$MNT/h" "$REF/h.model"
'

test_expect_success 'a SIGKILL while threads write and fsync pass after pass loses nothing fsync'"'"'d' '
	rm -f "$REF/k.synced"
	$SEQW write "$MNT/k" 3 24 0 --fsync-log "$REF/k.synced" &
	writer=$! &&
	while [ "$(cat "$REF/k.synced" 2>/dev/null | wc -l)" -lt 2 ]; do
		pid_running "$writer" || exit 1
		sleep 0.05
	done &&
	pid=$(daemon_pid) &&
	kill -9 "$pid" && wait_gone "$pid" &&
	{ wait "$writer" 2>/dev/null; :; } &&
	cd "$TEST_TMP" &&
	{ fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT"; } &&
	"$SNAPFS" fsck "$STORE" &&
	vol_mount "$STORE" "$MNT" &&
	$SEQW synccheck "$MNT/k" "$REF/k.synced" 3 24 &&
	cmp "$MNT/h" "$REF/h.model"
'

# The kernel asks for security.capability before each write(2), to
# remove it; the daemon keeps "none" per file, and must forget it when
# the xattr is set.  CAP: cap_net_raw permitted (VFS revision 2).
CAP=0x0000000200200000000000000000000000000000
test_expect_success 'a capability set on a file already written is seen, and the next write removes it' '
	echo one >"$MNT/capf" && echo two >>"$MNT/capf" &&
	setfattr -n security.capability -v $CAP "$MNT/capf" &&
	getfattr -e hex -n security.capability "$MNT/capf" >"$REF/cap.out" &&
	grep -q "security.capability=$CAP" "$REF/cap.out" &&
	echo three >>"$MNT/capf" &&
	! getfattr -n security.capability "$MNT/capf" 2>"$REF/cap.err" &&
	grep -q "No such attribute" "$REF/cap.err" &&
	printf "one\ntwo\nthree\n" >"$REF/capf" && cmp "$MNT/capf" "$REF/capf"
'

# The daemon takes FUSE_HANDLE_KILLPRIV_V2 (fs/killpriv.c): the kernel
# then asks for security.capability once per file, not per write(2).
# getxattr_count: how many getxattr requests the daemon answered so far.
getxattr_count() {
	"$SNAPFS" stats "$MNT" --json |
	python3 -c "import json,sys; print(json.load(sys.stdin)[\"operations\"].get(\"getxattr\", {}).get(\"count\", 0))"
}
test_expect_success 'two hundred write(2) calls into a file ask for its capability at most twice' '
	before=$(getxattr_count) &&
	dd if=/dev/zero of="$MNT/kp" bs=4k count=200 2>/dev/null &&
	dd if=/dev/urandom of="$MNT/kp" bs=4k count=200 conv=notrunc 2>/dev/null &&
	after=$(getxattr_count) &&
	say "# getxattr requests for 400 writes: $((after - before))" &&
	test $((after - before)) -le 2 &&
	setfattr -n security.capability -v $CAP "$MNT/kp" &&
	dd if=/dev/zero of="$MNT/kp" bs=4k count=1 conv=notrunc 2>/dev/null &&
	! getfattr -n security.capability "$MNT/kp" 2>/dev/null
'

# compressed COUNT: how many new blocks the daemon compressed so far
compressed() {
	"$SNAPFS" stats "$MNT" | sed -n "s/^blocks:.*; \([0-9]*\) compressed).*/\1/p"
}

test_expect_success 'a file that turns from random data to text is compressed again after the random part' '
	before=$(compressed) &&
	head -c $((8 * MiB)) /dev/urandom >"$REF/mixed" &&
	python3 -c "
import random, sys
r = random.Random(5)
words = [\"request\", \"block\", \"snapshot\", \"error\", \"value\", \"commit\", \"the\", \"of\"]
out = bytearray()
while len(out) < 8 << 20:
    out += (\" \".join(r.choice(words) for _ in range(12)) + \" %d\n\" % r.randrange(10**6)).encode()
sys.stdout.buffer.write(out[:8 << 20])
" >>"$REF/mixed" &&
	dd if="$REF/mixed" of="$MNT/mixed" bs=1M conv=fsync 2>/dev/null &&
	cmp "$MNT/mixed" "$REF/mixed" &&
	after=$(compressed) &&
	say "# compressed blocks: $before before, $after after" &&
	test $((after - before)) -ge 112
'

test_done
