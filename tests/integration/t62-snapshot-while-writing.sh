#!/bin/bash
# Snapshots created while writers keep writing small pieces (the write
# cache full of partial blocks, stored by the drainer and by the create
# outside the files' locks, fs/wcache.c): each snapshot holds the direct
# writer's writes up to one instant and none after it, every byte as
# written; the live files match their models; and O_DIRECT writes
# submitted many at once (libaio, sent one by one since the daemon turns
# off the kernel's asynchronous direct I/O) read back as written.
. "$(dirname "$0")/lib.sh"
vol_create --size 2G || test_bail "cannot create a volume"

MiB=$((1024 * 1024))

# seq.py write FILE SLOTS OPS SEED SECONDS: overwrite 4 KiB slots of
# FILE with O_DIRECT, write i (1..OPS) into a slot chosen by SEED, the
# slot filled with the pair (i, slot), for SECONDS at most; the file
# starts as zeros.  Prints how many writes it made.
# seq.py check FILE SLOTS OPS SEED [K]: FILE must be the state after the
# first k writes for some k (the largest write number it holds; K if
# given); prints k.
cat >"$TEST_TMP/seq.py" <<'PY'
import mmap, os, random, struct, sys
mode, path, slots, ops, seed = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
rnd = random.Random(seed)
order = [rnd.randrange(slots) for _ in range(ops)]
if mode == "write":
    import time
    end = time.time() + float(sys.argv[6])
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, 4096)
    made = 0
    for i, slot in enumerate(order, 1):
        buf.seek(0)
        buf.write(struct.pack("<QQ", i, slot) * 256)
        os.pwritev(fd, [buf], slot * 4096)
        made = i
        if time.time() > end:
            break
    os.close(fd)
    print(made)
    sys.exit(0)
data = open(path, "rb").read()
if len(data) != slots * 4096:
    sys.exit("%s: %d bytes, not %d" % (path, len(data), slots * 4096))
held = []
for s in range(slots):
    page = data[s * 4096:(s + 1) * 4096]
    if page != page[:16] * 256:
        sys.exit("%s: slot %d is torn" % (path, s))
    i, slot = struct.unpack("<QQ", page[:16])
    if i and slot != s:
        sys.exit("%s: slot %d holds slot %d's write" % (path, s, slot))
    held.append(i)
k = int(sys.argv[6]) if len(sys.argv) > 6 else max(held)
want = [0] * slots
for i, slot in enumerate(order[:k], 1):
    want[slot] = i
bad = [s for s in range(slots) if held[s] != want[s]]
if bad:
    sys.exit("%s: not the state after write %d: slot %d holds write %d, not %d"
             % (path, k, bad[0], held[bad[0]], want[bad[0]]))
print(k)
PY

# scatter.py FILE MB SEED SECONDS: buffered 4 KiB overwrites at random
# places of FILE (MB MiB) for SECONDS, then fsync; the same writes into
# FILE.model.
cat >"$TEST_TMP/scatter.py" <<'PY'
import os, random, sys, time
path, mb, seed, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
rnd = random.Random(seed)
fd = os.open(path, os.O_RDWR)
md = os.open(path + ".model", os.O_RDWR)
end = time.time() + secs
while time.time() < end:
    for _ in range(256):
        off = rnd.randrange(mb * 256) * 4096 + rnd.randrange(16) * 16
        data = rnd.randbytes(rnd.choice((512, 4096, 3000)))
        os.pwrite(fd, data, off)
        os.pwrite(md, data, off)
os.fsync(fd)
os.close(fd)
os.close(md)
PY

test_expect_success 'a direct writer and a buffered one lay down their files' '
	dd if=/dev/zero of=seq.dat bs=1M count=8 status=none &&
	head -c $((64 * MiB)) /dev/urandom >"$TEST_TMP/bulk" &&
	cp "$TEST_TMP/bulk" bulk.dat &&
	cp "$TEST_TMP/bulk" bulk.dat.model &&
	sync
'

test_expect_success 'snapshots created while both write hold the direct writes up to one instant' '
	python3 "$TEST_TMP/scatter.py" bulk.dat 64 7 12 &
	scatter=$! &&
	python3 "$TEST_TMP/seq.py" write seq.dat 2048 300000 11 10 >"$TEST_TMP/made" &
	writer=$! &&
	for i in 1 2 3 4 5 6; do
		sleep 1 &&
		"$SNAPFS" snapshot create "$MNT" w$i >/dev/null || break
	done &&
	wait $writer && wait $scatter &&
	made=$(cat "$TEST_TMP/made") &&
	echo "the direct writer made $made writes" &&
	last=0 && amid=0 &&
	for i in 1 2 3 4 5 6; do
		k=$(python3 "$TEST_TMP/seq.py" check .snapshot/w$i/seq.dat 2048 300000 11) &&
		echo "snapshot w$i holds writes 1..$k" &&
		test "$k" -ge "$last" && test "$k" -le "$made" &&
		if test "$k" -gt 0 && test "$k" -lt "$made"; then amid=$((amid + 1)); fi &&
		last=$k || return 1
	done &&
	test "$amid" -ge 2 &&
	python3 "$TEST_TMP/seq.py" check seq.dat 2048 300000 11 "$made" >/dev/null &&
	cmp bulk.dat bulk.dat.model
'

test_expect_success 'the files match their models after a remount' '
	vol_remount &&
	python3 "$TEST_TMP/seq.py" check seq.dat 2048 300000 11 "$(cat "$TEST_TMP/made")" >/dev/null &&
	cmp bulk.dat bulk.dat.model &&
	python3 "$TEST_TMP/seq.py" check .snapshot/w6/seq.dat 2048 300000 11 >/dev/null
'

test_expect_success 'O_DIRECT writes many at once (libaio, iodepth 16) read back as written' '
	fio --name=aio --filename=aio.dat --rw=randwrite --bs=4k --size=16M \
		--ioengine=libaio --iodepth=16 --direct=1 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --output="$TEST_TMP/aio.txt" &&
	! grep -q "verify: bad" "$TEST_TMP/aio.txt"
'

test_done
