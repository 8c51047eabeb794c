#!/bin/bash
# A crash loop (issue 14, part 7): the daemon killed with SIGKILL at a
# random point during writes on a nearly full volume, a snapshot delete,
# a receive into a mounted destination, a dump (whose context restarts),
# and a clone; a clone process killed too.  After each: fsck finds the
# store clean; every fsync'd byte is there; a snapshot is either whole or
# absent; no hold or partial clone is left behind, or the next mount
# cleans it and says so.  CRASH_ROUNDS rounds (1; SOAK=1: 8); the kill
# points are random (the experiment itself: a delay after the operation
# began), drawn from CRASH_SEED (printed; set it to replay a run).
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }

ROUNDS=${CRASH_ROUNDS:-1}
[ -n "$SOAK" ] && ROUNDS=${CRASH_ROUNDS:-8}
SEED=${CRASH_SEED:-$RANDOM}
say "# CRASH_SEED=$SEED"
MiB=$((1024 * 1024))
FILL="python3 $TEST_DIR/fill.py"
SYNCED="python3 $TEST_DIR/synced.py"
DST=$TEST_TMP/dst.store DMNT=$TEST_TMP/dst.mnt
vol_create --size 256M || test_bail "cannot create a volume"

# delay NAME MIN MAX: a random delay (seconds), the same for a seed
delay() {
	python3 -c "import random; random.seed('$SEED-$1'); print(round(random.uniform($2, $3), 2))"
}
# crash [STORE MNT]: kill -9 the daemon of STORE (default $STORE) and
# take its mount away
crash() {
	local store=${1:-$STORE} mnt=${2:-$MNT} pid
	pid=$(cat "$store/daemon.pid") &&
	kill -9 "$pid" &&
	{ fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt"; } &&
	wait_gone "$pid"
}
# kill_after NAME MIN MAX [STORE MNT]: crash the daemon at a random
# moment of the operation that was just started
kill_after() {
	sleep "$(delay "$1" "$2" "$3")" && crash "$4" "$5"
}
# recovered [STORE MNT]: the store checks clean and mounts again
recovered() {
	local store=${1:-$STORE} mnt=${2:-$MNT}
	cd "$TEST_TMP" && "$SNAPFS" fsck "$store" >/dev/null &&
	vol_mount "$store" "$mnt" 2>"$REF/mount.err" && cd "$MNT"
}
# started FILE: wait (30 s) until FILE exists and is not empty
started() {
	local i
	for i in $(seq 300); do
		test -s "$1" && return 0
		sleep 0.1
	done
	say "nothing in $1 after 30 s" >&2
	return 1
}
# durable: commit everything changed so far (an fsync of the root
# directory; sync(1) does not reach the daemon)
durable() { python3 -c 'import os; os.fsync(os.open(".", os.O_RDONLY))'; }
# no_holds: no snapshot of the volume is held
no_holds() {
	local s
	for s in $(snaps); do
		assert_eq "" "$("$SNAPFS" snapshot holds "$MNT" "$s")" "holds of $s" || return 1
	done
}

test_expect_success 'set up: a nearly full volume, a destination that follows it' '
	$FILL --limit 120M base >/dev/null &&
	rand_file "$REF/sent" $((24 * MiB)) && cp "$REF/sent" sent &&
	"$SNAPFS" snapshot create "$MNT" r0 >/dev/null &&
	"$SNAPFS" mkfs "$DST" --size 512M >/dev/null &&
	"$SNAPFS" send "$MNT" r0 | "$SNAPFS" receive "$DST" &&
	vol_mount "$DST" "$DMNT"
'

for r in $(seq 1 "$ROUNDS"); do
test_expect_success "round $r: killed during writes on a nearly full volume: fsync'd data intact" '
	mkdir -p w$r && : >"$TEST_TMP/synced.$r" &&
	{ $SYNCED write "$MNT/w$r" "$TEST_TMP/synced.$r" 0 2>/dev/null & } &&
	writers=$! &&
	{ $FILL noise$r >/dev/null 2>&1 & } &&
	writers="$writers $!" &&
	started "$TEST_TMP/synced.$r" &&
	kill_after writes$r 0.1 1.5 &&
	# a writer of a dead mount waits for its dirty pages for ever
	{ kill -9 $writers 2>/dev/null || :; } && wait &&
	recovered &&
	$SYNCED verify "$MNT/w$r" "$TEST_TMP/synced.$r" &&
	rm -rf noise$r w$r && durable
'

test_expect_success "round $r: killed during a snapshot delete: the snapshot is whole or gone" '
	rand_file "$REF/old" $((30 * MiB)) && cp "$REF/old" old &&
	mkdir many && python3 -c "
for i in range(1500): open(\"many/%d\" % i, \"w\").write(str(i))" &&
	"$SNAPFS" snapshot create "$MNT" doomed$r >/dev/null && rm -r old many && durable &&
	{ "$SNAPFS" snapshot delete "$MNT" doomed$r >/dev/null 2>&1 & } &&
	kill_after delete$r 0 0.15 &&
	wait &&
	recovered &&
	if snaps | grep -qw doomed$r; then
		say "the snapshot was whole" &&
		assert_cmp "$REF/old" .snapshot/doomed$r/old &&
		assert_eq 1499 "$(cat .snapshot/doomed$r/many/1499)" &&
		"$SNAPFS" snapshot delete "$MNT" doomed$r >/dev/null
	fi &&
	! snaps | grep -qw doomed$r
'

test_expect_success "round $r: killed during a receive into a mounted destination: nothing half-made" '
	prev=$(snaps "$DMNT" | tr " " "\n" | tail -1) &&
	rand_file "$REF/r$r" $((24 * MiB)) && cp "$REF/r$r" r$r &&
	"$SNAPFS" snapshot create "$MNT" r$r >/dev/null &&
	{ "$SNAPFS" send "$MNT" r$r --from $prev | "$SNAPFS" receive "$DMNT" >/dev/null 2>&1 & } &&
	kill_after receive$r 0 0.5 "$DST" "$DMNT" &&
	wait &&
	recovered "$DST" "$DMNT" &&
	last=$(snaps "$DMNT" | tr " " "\n" | tail -1) &&
	if [ "$last" = r$r ]; then
		say "the receive was complete" &&
		assert_cmp "$REF/r$r" "$DMNT/r$r"
	else
		say "the receive was cut" &&
		assert_eq "$prev" "$last" "the destination shows its last whole snapshot" &&
		assert_missing "$DMNT/r$r" &&
		token=$("$SNAPFS" receive "$DMNT" --resume-token 2>/dev/null) ||
			token= &&	# none: the receive had not begun
		if [ -n "$token" ]; then
			"$SNAPFS" send "$MNT" r$r --from $prev --resume "$token"
		else
			"$SNAPFS" send "$MNT" r$r --from $prev
		fi | "$SNAPFS" receive "$DMNT" &&
		assert_cmp "$REF/r$r" "$DMNT/r$r"
	fi &&
	rm r$r && durable &&
	# the older increments go: the newest is the next one'"'"'s base
	if [ "$prev" != r0 ]; then
		"$SNAPFS" snapshot delete "$MNT" $prev >/dev/null &&
		"$SNAPFS" snapshot delete "$DMNT" $prev >/dev/null
	fi
'

test_expect_success "round $r: killed with a dump running: its context restarts, no hold is left" '
	rm -f "$REF/d0.$r" "$REF/d1.$r" &&
	{ "$SNAPFS" dump -0 -f "$REF/d0.$r" "$MNT" >/dev/null 2>&1 & } &&
	dump=$! &&
	started "$REF/d0.$r" &&
	kill_after dump$r 0 0.5 &&
	{ kill -9 $dump 2>/dev/null || :; } && wait &&	# the dump dies too
	recovered &&
	for id in $("$SNAPFS" dump contexts "$MNT" | sed 1d | cut -d" " -f1); do
		if "$SNAPFS" dump --restart $id -f "$REF/d1.$r" "$MNT" >/dev/null 2>&1; then
			say "dump context $id restarted" &&
			"$SNAPFS" restore -t -f "$REF/d0.$r" -f "$REF/d1.$r" >"$REF/toc" &&
			assert_grep "\./sent$" "$REF/toc" || exit 1
		else
			say "dump context $id abandoned" &&
			"$SNAPFS" dump contexts delete "$MNT" $id >/dev/null || exit 1
		fi
	done &&
	assert_eq 1 "$("$SNAPFS" dump contexts "$MNT" | wc -l)" "no context left" &&
	! snaps | grep -q snapshot_for_backup &&
	no_holds
'

test_expect_success "round $r: killed during a clone: a whole clone or none, no hold left" '
	rm -rf "$TEST_TMP/clone$r"* &&
	{ "$SNAPFS" clone "$MNT" r0 "$TEST_TMP/clone$r" >/dev/null 2>&1 & } &&
	kill_after clone$r 0 0.8 &&
	wait &&
	recovered &&
	no_holds &&
	assert_eq "" "$(ls -d "$TEST_TMP/clone$r".partial-* 2>/dev/null)" &&
	if test -d "$TEST_TMP/clone$r"; then
		say "the clone was made" &&
		"$SNAPFS" fsck "$TEST_TMP/clone$r" >/dev/null &&
		vol_mount "$TEST_TMP/clone$r" "$TEST_TMP/cmnt" &&
		assert_cmp "$REF/sent" "$TEST_TMP/cmnt/sent" &&
		vol_umount "$TEST_TMP/cmnt"
	fi
'

test_expect_success "round $r: a clone killed itself: the next mount releases its hold and removes it" '
	rm -rf "$TEST_TMP/lost$r"* &&
	{ "$SNAPFS" clone "$MNT" r0 "$TEST_TMP/lost$r" >/dev/null 2>&1 & } &&
	clone=$! &&
	for i in $(seq 300); do
		holds=$("$SNAPFS" snapshot holds "$MNT" r0) || exit 1
		test -n "$holds" && break
		sleep 0.1
	done &&
	kill -9 $clone && wait_gone $clone &&
	if test -d "$TEST_TMP/lost$r"; then exit 0; fi &&	# it was done already
	cd "$TEST_TMP" && vol_umount "$MNT" && recovered &&
	assert_grep "released the hold .clone:$clone:.* on snapshot r0 (the clone is gone)" "$REF/mount.err" &&
	no_holds &&
	assert_eq "" "$(ls -d "$TEST_TMP/lost$r".partial-* 2>/dev/null)"
'
done

test_expect_success 'after the crashes both volumes check clean' '
	cd "$TEST_TMP" && vol_umount "$DMNT" && "$SNAPFS" fsck "$DST" >/dev/null
'

test_done
