#!/bin/bash
# Durability: the daemon killed with SIGKILL in the middle of heavy writes
# leaves a store that mounts and checks clean, with every byte that was
# fsync'd (or fdatasync'd) before the kill intact.  Several kill points.
# SOAK=1 runs many more rounds (make soak).
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 2G

ROUNDS=${CRASH_ROUNDS:-3}
[ -n "$SOAK" ] && ROUNDS=25

# The writer: files whose content follows from their number, each made
# durable by fsync (odd) or fdatasync (even) before its number is logged
# (the log lives outside the volume, and is synced too).
cat >"$TEST_TMP/writer.py" <<'PY'
import hashlib, os, sys
d, log, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
def content(i):
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * ((70000 + i * 131) // 32 + 1))[:70000 + i * 131]
lf = os.open(log, os.O_WRONLY | os.O_APPEND)
i = start
while True:
    p = os.path.join(d, "f%06d" % i)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, content(i))
    (os.fsync if i % 2 else os.fdatasync)(fd)
    os.close(fd)
    os.write(lf, b"%d\n" % i)
    os.fsync(lf)
    i += 1
PY
cat >"$TEST_TMP/verify.py" <<'PY'
import hashlib, os, sys
d, log = sys.argv[1], sys.argv[2]
def content(i):
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * ((70000 + i * 131) // 32 + 1))[:70000 + i * 131]
bad = 0
n = 0
for line in open(log):
    i = int(line)
    n += 1
    try:
        data = open(os.path.join(d, "f%06d" % i), "rb").read()
    except OSError as e:
        print("f%06d: %s" % (i, e)); bad += 1; continue
    if data != content(i):
        print("f%06d: content differs (%d bytes)" % (i, len(data))); bad += 1
print("checked %d synced files, %d bad" % (n, bad))
sys.exit(1 if bad else 0)
PY

crash_round() {
	local round=$1 delay=$2 pid start
	start=$(( round * 100000 ))
	mkdir -p "$MNT/r$round"
	: >"$TEST_TMP/synced.$round.log"
	# Heavy unsynced writes beside the synced ones.
	( while :; do head -c 8M /dev/urandom >"$MNT/r$round/noise.$RANDOM" || break; done ) 2>/dev/null &
	local noise=$!
	python3 "$TEST_TMP/writer.py" "$MNT/r$round" "$TEST_TMP/synced.$round.log" "$start" 2>/dev/null &
	local writer=$!
	# Kill at a random moment once some data has been made durable.
	for _ in $(seq 600); do
		[ "$(wc -l <"$TEST_TMP/synced.$round.log")" -ge 2 ] && break
		sleep 0.1
	done
	sleep "$delay"
	pid=$(daemon_pid)
	kill -9 "$pid"
	wait "$writer" "$noise" 2>/dev/null
	fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT"
	wait_gone "$pid"
}

for r in $(seq 1 "$ROUNDS"); do
	delay=$(python3 -c "import random; random.seed($r); print(round(random.uniform(0.1, 2.5), 2))")
	test_expect_success "a SIGKILL ${delay}s into heavy writes (round $r) loses no fsync'd byte and leaves fsck clean" '
		cd "$TEST_TMP" &&
		crash_round '"$r"' '"$delay"' &&
		"$SNAPFS" fsck "$STORE" &&
		vol_mount "$STORE" "$MNT" &&
		python3 "$TEST_TMP/verify.py" "$MNT/r'"$r"'" "$TEST_TMP/synced.'"$r"'.log" &&
		test $(wc -l <"$TEST_TMP/synced.'"$r"'.log") -gt 0
	'
done

test_expect_success 'after the crashes the volume still takes writes and unmounts cleanly' '
	cd "$TEST_TMP" &&
	echo after >"$MNT/after" &&
	vol_umount "$MNT" &&
	"$SNAPFS" fsck "$STORE" &&
	vol_mount "$STORE" "$MNT" &&
	assert_eq after "$(cat "$MNT/after")"
'

test_done
