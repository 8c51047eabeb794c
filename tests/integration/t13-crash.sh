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

# The writer and the check: files whose content follows from their
# number, each made durable (fsync or fdatasync) before its number is
# logged outside the volume (synced.py).
SYNCED="python3 $TEST_DIR/synced.py"

crash_round() {
	local round=$1 delay=$2 pid start
	start=$(( round * 100000 ))
	mkdir -p "$MNT/r$round"
	: >"$TEST_TMP/synced.$round.log"
	# Heavy unsynced writes beside the synced ones.
	( while :; do head -c 8M /dev/urandom >"$MNT/r$round/noise.$RANDOM" || break; done ) 2>/dev/null &
	local noise=$!
	$SYNCED write "$MNT/r$round" "$TEST_TMP/synced.$round.log" "$start" 2>/dev/null &
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
		$SYNCED verify "$MNT/r'"$r"'" "$TEST_TMP/synced.'"$r"'.log" &&
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
