#!/bin/bash
# Read-around (fs/readaround.c): a read decodes its whole 64 KiB blocks,
# answers the request and gives the kernel the rest of them, so random
# 4 KiB reads of a block become one request.  Every byte read is the
# file's, and what the kernel is given never overwrites something newer:
# with the push held back by SNAPFS_READAROUND_DELAY_MS, a writer that
# comes and goes, a truncation by path and a rollback of the volume in
# between all stay visible afterwards.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 1G || test_bail "cannot create a volume"

MiB=$((1024 * 1024))

# rr.py FILE MODEL: read every 4 KiB page of FILE once, in random order,
# each compared with MODEL's
cat >"$TEST_TMP/rr.py" <<'PY'
import os, random, sys
fd, model = os.open(sys.argv[1], os.O_RDONLY), open(sys.argv[2], "rb").read()
pages = list(range((len(model) + 4095) // 4096))
random.Random(7).shuffle(pages)
for p in pages:
    if os.pread(fd, 4096, p * 4096) != model[p * 4096:(p + 1) * 4096]:
        sys.exit("page %d reads differently from the model" % p)
PY

# field JSON PATH...: a number in `snapfs stats --json`
field() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    d = d[k]
print(d)' "$@"
}

test_expect_success 'random 4 KiB reads of a cold file: right bytes, one request per block or so' '
	rand_file "$REF/f" $((8 * MiB)) && cp "$REF/f" f && sync &&
	vol_remount &&
	"$SNAPFS" stats "$MNT" --json >"$REF/s0.json" &&
	python3 "$TEST_TMP/rr.py" f "$REF/f" &&
	"$SNAPFS" stats "$MNT" --json >"$REF/s1.json" &&
	reads=$(( $(field "$REF/s1.json" operations read count) - $(field "$REF/s0.json" operations read count) )) &&
	around=$(( $(field "$REF/s1.json" bytes read_around) - $(field "$REF/s0.json" bytes read_around) )) &&
	say "# $reads read requests for 2048 pages; $around bytes filled around them" &&
	assert_le "$reads" 400 "read requests for 128 blocks" &&
	assert_le $((6 * MiB)) "$around" "bytes filled around the reads" &&
	"$SNAPFS" stats "$MNT" >"$REF/table" &&
	assert_grep "^data: .*; [0-9.]* MiB more of the blocks read given to the kernel.s cache\$" "$REF/table"
'

test_expect_success 'the same through .snapshot: a snapshot'"'"'s blocks are filled around too' '
	"$SNAPFS" snapshot create "$MNT" s1 &&
	vol_remount &&
	"$SNAPFS" stats "$MNT" --json >"$REF/s0.json" &&
	python3 "$TEST_TMP/rr.py" .snapshot/s1/f "$REF/f" &&
	"$SNAPFS" stats "$MNT" --json >"$REF/s1.json" &&
	reads=$(( $(field "$REF/s1.json" operations read count) - $(field "$REF/s0.json" operations read count) )) &&
	assert_le "$reads" 400 "read requests for 128 blocks of a snapshot"
'

test_expect_success 'a file ending inside a block reads right to its last byte' '
	rand_file "$REF/tail" $((3 * 65536 + 5000)) && cp "$REF/tail" tail && sync &&
	vol_remount &&
	python3 "$TEST_TMP/rr.py" tail "$REF/tail" &&
	assert_eq $((3 * 65536 + 5000)) "$(stat -c %s tail)" &&
	cmp tail "$REF/tail"
'

test_expect_success 'with -o noreadaround nothing is filled around, and every page is a request' '
	cd "$TEST_TMP" && vol_umount "$MNT" &&
	SNAPFS_MOUNT_OPTS=noreadaround vol_mount "$STORE" "$MNT" && cd "$MNT" &&
	python3 "$TEST_TMP/rr.py" f "$REF/f" &&
	"$SNAPFS" stats "$MNT" --json >"$REF/s1.json" &&
	assert_eq 0 "$(field "$REF/s1.json" bytes read_around)" &&
	assert_le 1500 "$(field "$REF/s1.json" operations read count)" "read requests, one per page"
'

# race.py FILE MODE: read page 0 of FILE (its block's push is held back
# by the daemon), then, before the push, change page 5 of the same block
# by MODE: "writer" opens, writes and closes; "truncate" cuts the file to
# nothing by path and back to its size (zeros); "rollback" runs the
# command in $ROLLBACK (a rollback, a receive), after which page 5 must be
# EXPECTED's.  After the push is due, page 5 must read as the
# change left it.
cat >"$TEST_TMP/race.py" <<'PY'
import os, subprocess, sys, time
path, mode = sys.argv[1], sys.argv[2]
size = os.path.getsize(path)
fd = os.open(path, os.O_RDONLY)
os.pread(fd, 4096, 0)                  # answered; the push waits
if mode == "writer":
    new = os.urandom(4096)
    w = os.open(path, os.O_RDWR)
    os.pwrite(w, new, 5 * 4096)
    os.close(w)
elif mode == "truncate":
    new = bytes(4096)
    os.truncate(path, 0)
    os.truncate(path, size)
else:
    new = open(sys.argv[3], "rb").read()[5 * 4096:6 * 4096]
    subprocess.run(os.environ["ROLLBACK"], shell=True, check=True)
time.sleep(float(os.environ["SNAPFS_READAROUND_DELAY_MS"]) / 1000 + 1)
got = os.pread(fd, 4096, 5 * 4096)
if got != new:
    sys.exit("page 5 after the push: %s" %
             ("the bytes from before the change" if got else "nothing"))
PY

# delayed_remount: a remount (every file cold) whose daemon holds each
# push back by 1.5 s
delayed_remount() {
	cd "$TEST_TMP" && vol_umount "$MNT" &&
	SNAPFS_READAROUND_DELAY_MS=1500 vol_mount "$STORE" "$MNT" && cd "$MNT"
}

test_expect_success 'a writer between a read and its push: its bytes stay' '
	rand_file "$REF/g" $((1 * MiB)) && cp "$REF/g" g && sync &&
	delayed_remount &&
	SNAPFS_READAROUND_DELAY_MS=1500 python3 "$TEST_TMP/race.py" g writer
'

test_expect_success 'a truncation by path between a read and its push: the zeros stay' '
	delayed_remount &&
	SNAPFS_READAROUND_DELAY_MS=1500 python3 "$TEST_TMP/race.py" g truncate &&
	assert_zeros g 0 $((1 * MiB))
'

test_expect_success 'a rollback between a read and its push: the snapshot'"'"'s bytes stay' '
	rand_file "$REF/k.old" $((1 * MiB)) && cp "$REF/k.old" k && sync &&
	"$SNAPFS" snapshot create "$MNT" before &&
	rand_file "$REF/k.new" $((1 * MiB)) && cp "$REF/k.new" k && sync &&
	delayed_remount &&
	ROLLBACK="\"$SNAPFS\" snapshot restore \"$MNT\" before >/dev/null" \
	SNAPFS_READAROUND_DELAY_MS=1500 python3 "$TEST_TMP/race.py" k rollback "$REF/k.old" &&
	cmp k "$REF/k.old"
'

test_expect_success 'a mirror destination publishing a snapshot between a read and its push: the new bytes stay' '
	DST=$TEST_TMP/dst.store DMNT=$TEST_TMP/dst.mnt &&
	rand_file "$REF/mr.old" $((1 * MiB)) && cp "$REF/mr.old" mr &&
	"$SNAPFS" snapshot create "$MNT" m1 >/dev/null &&
	"$SNAPFS" mkfs "$DST" --size 1G >/dev/null &&
	"$SNAPFS" send "$MNT" m1 | "$SNAPFS" receive "$DST" &&
	rand_file "$REF/mr.new" $((1 * MiB)) && cp "$REF/mr.new" mr &&
	"$SNAPFS" snapshot create "$MNT" m2 >/dev/null &&
	"$SNAPFS" send "$MNT" m2 --from m1 >"$TEST_TMP/m12.stream" &&
	SNAPFS_READAROUND_DELAY_MS=1500 vol_mount "$DST" "$DMNT" &&
	ROLLBACK="\"$SNAPFS\" receive \"$DMNT\" <\"$TEST_TMP/m12.stream\"" \
	SNAPFS_READAROUND_DELAY_MS=1500 python3 "$TEST_TMP/race.py" "$DMNT/mr" rollback "$REF/mr.new" &&
	cmp "$DMNT/mr" "$REF/mr.new" &&
	vol_umount "$DMNT"
'

# Readers of a file while a writer opens it, overwrites random pages and
# closes it, again and again: the file read through the kernel's cache
# afterwards is the model, page for page.
cat >"$TEST_TMP/mix.py" <<'PY'
import os, random, sys, time
path, model_path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
pages = os.path.getsize(model_path) // 4096
kids = []
for k in range(2):
    pid = os.fork()
    if pid == 0:
        rnd, fd = random.Random(k), os.open(path, os.O_RDONLY)
        end = time.time() + seconds
        while time.time() < end:
            os.pread(fd, 4096, rnd.randrange(pages) * 4096)
        os._exit(0)
    kids.append(pid)
rnd, md = random.Random(9), os.open(model_path, os.O_RDWR)
end = time.time() + seconds
while time.time() < end:
    fd = os.open(path, os.O_RDWR)
    for i in range(20):
        p, data = rnd.randrange(pages), rnd.randbytes(4096)
        os.pwrite(fd, data, p * 4096)
        os.pwrite(md, data, p * 4096)
    os.close(fd)
for pid in kids:
    os.waitpid(pid, 0)
fd, model = os.open(path, os.O_RDONLY), open(model_path, "rb").read()
for p in range(pages):
    if os.pread(fd, 4096, p * 4096) != model[p * 4096:(p + 1) * 4096]:
        sys.exit("page %d is not the last written" % p)
PY

test_expect_success 'readers while a writer comes and goes: every page is the last written' '
	vol_remount &&
	rand_file "$REF/m" $((4 * MiB)) && cp "$REF/m" m && sync &&
	python3 "$TEST_TMP/mix.py" m "$REF/m" 8 &&
	vol_remount &&
	cmp m "$REF/m"
'

test_done
