#!/bin/bash
# Partial writes: small writes at any offset, reads in between, truncates
# and fsyncs, checked byte for byte against an in-memory model of the file,
# on files that fit the cache of dirty partial blocks and files that do
# not, and again after a remount.  make test runs 600 random operations
# on the small file, 300 on the large one (nearly each of its writes is a
# read-modify-write of a stored block) and 400 on the tiny one; SOAK=1
# (make soak) ten times as many, with new seeds each run (printed in the
# test names; T14_SEED=N replays seeds N+1, N+2, N+3).
. "$(dirname "$0")/lib.sh"
vol_create --size 2G

cat >"$TEST_TMP/model.py" <<'PY'
import os, random, sys
path, size, ops, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
model = bytearray(os.urandom(size))
with open(path, "wb") as f:
    f.write(model)
fd = os.open(path, os.O_RDWR)
def check(where):
    os.lseek(fd, 0, 0)
    got = b""
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        got += chunk
    if got != bytes(model):
        n = next((i for i in range(min(len(got), len(model))) if got[i] != model[i]), min(len(got), len(model)))
        sys.exit("%s: differs from the model at byte %d (file %d bytes, model %d)" % (where, n, len(got), len(model)))
for i in range(ops):
    r = rnd.random()
    if r < 0.80:
        off = rnd.randrange(0, len(model) + 70000)
        n = rnd.choice([1, 7, 512, 4096, 4096, 5000, 65536, 70000])
        data = os.urandom(n)
        os.pwrite(fd, data, off)
        if off > len(model):
            model.extend(b"\0" * (off - len(model)))
        model[off:off + n] = data
    elif r < 0.88:
        off = rnd.randrange(0, len(model) + 1)
        n = rnd.randrange(1, 100000)
        got = os.pread(fd, n, off)
        if got != bytes(model[off:off + n]):
            sys.exit("op %d: pread(%d, %d) differs from the model" % (i, n, off))
    elif r < 0.93:
        new = rnd.randrange(max(0, len(model) - 300000), len(model) + 100000)
        os.ftruncate(fd, new)
        if new < len(model):
            del model[new:]
        else:
            model.extend(b"\0" * (new - len(model)))
    elif r < 0.97:
        os.fsync(fd)
    elif len(model) < 4000000:
        check("op %d" % i)
check("end")
os.close(fd)
open(path + ".model", "wb").write(model)
print("%d operations, final size %d" % (ops, len(model)))
PY

OPS=600 SEED=0
[ -n "$SOAK" ] && OPS=6000 SEED=$(( $(date +%s) % 100000 * 10 ))
SEED=${T14_SEED:-$SEED}
for spec in "small 3000000 $OPS $((SEED + 1))" "large 40000000 $((OPS / 2)) $((SEED + 2))" \
            "tiny 5000 $((OPS * 2 / 3)) $((SEED + 3))"; do
	set -- $spec
	test_expect_success "random partial writes, reads and truncates on a $1 file match the model ($3 operations, seed $4)" '
		python3 "$TEST_TMP/model.py" "$MNT/'"$1"'" '"$2"' '"$3"' '"$4"' &&
		cmp "$MNT/'"$1"'" "$MNT/'"$1"'.model"
	'
done

test_expect_success SNAPFS 'after a remount every file still matches its model' '
	vol_remount &&
	cmp "$MNT/small" "$MNT/small.model" &&
	cmp "$MNT/large" "$MNT/large.model" &&
	cmp "$MNT/tiny" "$MNT/tiny.model"
'

test_expect_success 'an unlinked file still open keeps its partial writes across commits' '
	python3 -c "
import os, time
fd = os.open(\"tmpfile\", os.O_RDWR | os.O_CREAT, 0o600)
os.unlink(\"tmpfile\")
model = bytearray()
for i in range(40):
    off = (i * 7919) % 190000
    data = bytes([i + 1]) * 3000
    os.pwrite(fd, data, off)
    if off + 3000 > len(model):
        model.extend(bytes(off + 3000 - len(model)))
    model[off:off + 3000] = data
os.sync()        # the kernel writes its dirty pages to snapfs
time.sleep(3)    # a commit passes: cached blocks must survive it
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # read from snapfs again
got = os.pread(fd, 200000, 0)
assert got == bytes(model), \"an unlinked open file lost data\"
os.close(fd)
print(\"kept\")"
'

test_expect_success 'fio random 4 KiB writes verify (crc32c) on a file larger than the cache' '
	fio --name=v --filename=fio.dat --rw=randwrite --bs=4k --size=48M \
	    --verify=crc32c --do_verify=1 --verify_fatal=1 --overwrite=1 \
	    --fallocate=none --output="$REF/fio.out" &&
	grep -q "err= 0" "$REF/fio.out"
'

test_expect_success SNAPFS 'st_blocks counts cached writes once they are stored' '
	python3 -c "
import os
fd = os.open(\"blk\", os.O_WRONLY | os.O_CREAT, 0o644)
os.pwrite(fd, b\"x\" * 3000, 200000)
os.fsync(fd)
os.close(fd)" &&
	vol_remount &&
	assert_eq 200000 "$(cmp -n 200000 blk /dev/zero && echo 200000)" &&
	assert_le 1 "$(stat -c %b blk)" &&
	assert_le "$(stat -c %b blk)" 16
'

test_done
