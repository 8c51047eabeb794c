#!/bin/bash
# Small random overwrites (the write cache keeps them as extents and merges
# them into blocks later): byte for byte against a model of the file
# across fsync, snapshots, a remount, a SIGKILL of the daemon after fsync,
# more written than the cache holds, unaligned writes that reach the daemon
# as they are (no writeback cache), and in what send/receive and dump carry
# of such files.
. "$(dirname "$0")/lib.sh"
vol_create --size 2G || test_bail "cannot create a volume"

MiB=$((1024 * 1024))

# rw.py FILE MODEL OPS SEED [--unaligned] [--after-sync LOG]: random
# overwrites of FILE (which holds MODEL's bytes) with reads in between,
# each read compared with the model; ends with fsync and writes the model
# back to MODEL.  --after-sync LOG: after that fsync, overwrite 200 more
# pages (4 KiB, each once) without syncing, list them in LOG with their
# new content's SHA-256, and wait for the kill.
cat >"$TEST_TMP/rw.py" <<'PY'
import hashlib, os, random, sys, time
path, model_path, ops, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
unaligned = "--unaligned" in sys.argv
after = sys.argv[sys.argv.index("--after-sync") + 1] if "--after-sync" in sys.argv else None
rnd = random.Random(seed)
model = bytearray(open(model_path, "rb").read())
fd = os.open(path, os.O_RDWR)
size = len(model)
for i in range(ops):
    r = rnd.random()
    if r < 0.85:
        if unaligned:
            n = rnd.choice([1, 7, 100, 511, 4096, 3000, 5000, 12345])
            off = rnd.randrange(0, size - n)
        else:
            n = 4096 * rnd.choice([1, 1, 1, 1, 2, 3])
            off = 4096 * rnd.randrange(0, size // 4096 - 3)
        data = rnd.randbytes(n)
        os.pwrite(fd, data, off)
        model[off:off + n] = data
    elif r < 0.97:
        n = rnd.choice([1, 4096, 65536, 200000])
        off = rnd.randrange(0, size - n)
        if os.pread(fd, n, off) != bytes(model[off:off + n]):
            sys.exit("op %d: pread(%d, %d) differs from the model" % (i, n, off))
    else:
        os.fsync(fd)
os.fsync(fd)
open(model_path + ".new", "wb").write(model)
os.rename(model_path + ".new", model_path)
if after:
    pages = rnd.sample(range(size // 4096), 200)
    with open(after + ".new", "w") as log:
        for p in pages:
            data = rnd.randbytes(4096)
            os.pwrite(fd, data, p * 4096)
            log.write("%d %s\n" % (p, hashlib.sha256(data).hexdigest()))
    os.rename(after + ".new", after)
    time.sleep(600)
os.close(fd)
PY

# check_after_kill FILE MODEL LOG: each page FILE has is the model's
# (synced) or, for a page LOG lists, the one written after the sync
cat >"$TEST_TMP/after.py" <<'PY'
import hashlib, sys
path, model_path, log = sys.argv[1:4]
got, model = open(path, "rb").read(), open(model_path, "rb").read()
late = {int(p): h for p, h in (line.split() for line in open(log))}
if len(got) != len(model):
    sys.exit("size %d, the model's %d" % (len(got), len(model)))
newer = 0
for p in range(len(model) // 4096):
    a, b = got[p * 4096:(p + 1) * 4096], model[p * 4096:(p + 1) * 4096]
    if a == b:
        continue
    if p in late and hashlib.sha256(a).hexdigest() == late[p]:
        newer += 1
        continue
    sys.exit("page %d is neither the synced content nor a later write" % p)
print("every page synced or later (%d of %d later pages stored)" % (newer, len(late)))
PY

# start FILE BYTES: a file of random bytes and its model beside it in $REF
start() {
	rand_file "$REF/$1.model" "$2" && cp "$REF/$1.model" "$1"
}

test_expect_success 'random 4 KiB overwrites with reads in between match the model, and after fsync' '
	start f 8388608 &&
	python3 "$TEST_TMP/rw.py" f "$REF/f.model" 3000 1 &&
	cmp f "$REF/f.model"
'

test_expect_success 'more overwrites than the cache holds (64 MiB file, 20,000 writes) match the model' '
	start big $((64 * MiB)) &&
	python3 "$TEST_TMP/rw.py" big "$REF/big.model" 20000 2 &&
	cmp big "$REF/big.model"
'

test_expect_success SNAPFS 'snapshots taken between rounds of overwrites hold each round exactly' '
	cp "$REF/f.model" "$REF/f.a" &&
	"$SNAPFS" snapshot create "$MNT" a &&
	python3 "$TEST_TMP/rw.py" f "$REF/f.model" 2000 3 &&
	cp "$REF/f.model" "$REF/f.b" &&
	"$SNAPFS" snapshot create "$MNT" b &&
	python3 "$TEST_TMP/rw.py" f "$REF/f.model" 2000 4 &&
	cmp .snapshot/a/f "$REF/f.a" &&
	cmp .snapshot/b/f "$REF/f.b" &&
	cmp f "$REF/f.model" &&
	! cmp -s "$REF/f.a" "$REF/f.b"
'

test_expect_success SNAPFS 'after a remount the live file and both snapshots still match' '
	vol_remount &&
	cmp f "$REF/f.model" &&
	cmp big "$REF/big.model" &&
	cmp .snapshot/a/f "$REF/f.a" &&
	cmp .snapshot/b/f "$REF/f.b"
'

test_expect_success SNAPFS 'a SIGKILL of the daemon after fsync: every synced byte is there, later pages old or new' '
	start k $((16 * MiB))
	python3 "$TEST_TMP/rw.py" k "$REF/k.model" 3000 5 --after-sync "$REF/k.late" &
	writer=$! &&
	while ! [ -e "$REF/k.late" ]; do
		pid_running "$writer" || exit 1
		sleep 0.05
	done &&
	crash_remount "$writer" &&
	python3 "$TEST_TMP/after.py" "$MNT/k" "$REF/k.model" "$REF/k.late" &&
	cmp "$MNT/f" "$REF/f.model" &&
	cmp "$MNT/.snapshot/b/f" "$REF/f.b"
'

test_expect_success SNAPFS 'send and receive carry the overwritten files of each snapshot exactly' '
	"$SNAPFS" snapshot create "$MNT" c &&
	"$SNAPFS" mkfs "$TEST_TMP/dst" --size 1G >/dev/null &&
	"$SNAPFS" send "$MNT" a >"$REF/a.stream" &&
	"$SNAPFS" receive "$TEST_TMP/dst" <"$REF/a.stream" &&
	"$SNAPFS" send "$MNT" c --from a | "$SNAPFS" receive "$TEST_TMP/dst" &&
	vol_mount "$TEST_TMP/dst" "$TEST_TMP/dmnt" &&
	cmp "$TEST_TMP/dmnt/.snapshot/a/f" "$REF/f.a" &&
	cmp "$TEST_TMP/dmnt/.snapshot/c/f" "$REF/f.model" &&
	cmp "$TEST_TMP/dmnt/.snapshot/c/big" "$REF/big.model" &&
	vol_umount "$TEST_TMP/dmnt" &&
	"$SNAPFS" fsck "$TEST_TMP/dst"
'

test_expect_success SNAPFS 'a dump of the volume restores the overwritten files exactly' '
	"$SNAPFS" dump -0 -f "$REF/full.dump" "$MNT" 2>/dev/null &&
	mkdir "$REF/restored" &&
	"$SNAPFS" restore -r -f "$REF/full.dump" --into "$REF/restored" >/dev/null 2>&1 &&
	cmp "$REF/restored/f" "$REF/f.model" &&
	cmp "$REF/restored/big" "$REF/big.model"
'

test_expect_success SNAPFS 'unaligned small writes reaching the daemon as they are (no writeback cache) match the model' '
	"$SNAPFS" mkfs "$TEST_TMP/nwb" --size 1G >/dev/null &&
	SNAPFS_MOUNT_OPTS=no_writeback_cache vol_mount "$TEST_TMP/nwb" "$TEST_TMP/nwbm" &&
	rand_file "$REF/u.model" $((3 * MiB)) && cp "$REF/u.model" "$TEST_TMP/nwbm/u" &&
	python3 "$TEST_TMP/rw.py" "$TEST_TMP/nwbm/u" "$REF/u.model" 4000 6 --unaligned &&
	cmp "$TEST_TMP/nwbm/u" "$REF/u.model" &&
	"$SNAPFS" snapshot create "$TEST_TMP/nwbm" s &&
	cp "$REF/u.model" "$REF/u.s" &&
	python3 "$TEST_TMP/rw.py" "$TEST_TMP/nwbm/u" "$REF/u.model" 1000 7 --unaligned &&
	vol_umount "$TEST_TMP/nwbm" &&
	"$SNAPFS" fsck "$TEST_TMP/nwb" &&
	vol_mount "$TEST_TMP/nwb" "$TEST_TMP/nwbm" &&
	cmp "$TEST_TMP/nwbm/u" "$REF/u.model" &&
	cmp "$TEST_TMP/nwbm/.snapshot/s/u" "$REF/u.s" &&
	vol_umount "$TEST_TMP/nwbm"
'

test_done
