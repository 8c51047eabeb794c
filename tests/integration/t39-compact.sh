#!/bin/bash
# snapfs compact: an unmounted store file shrinks to the pages in use, as
# `snapfs info` predicts, keeping every snapshot, hold, qtree, policy and
# setting; refused while the volume is mounted or open elsewhere, for what
# is not a store and without room for the copy; a compact killed with
# SIGKILL leaves a working store, and the next compact or mount removes
# its temporary file.  snapfs only.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: compact is a snapfs command"; test_done; }
vol_create --size 1G || test_bail "cannot create a volume"

MiB=$((1024 * 1024))
TEMP=data.mdb.compact

# field FILE NAME: NAME of the JSON object in FILE
field() {
	"$TEST_PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# everything a user sees of the volume mounted on $1: the live tree, each
# snapshot's tree, and the lists of snapshots, holds, qtrees, policies and
# settings
volume_view() {
	local m=$1 s
	"$TEST_PYTHON" "$TEST_DIR/treelist.py" "$m" &&
	for s in s1 s2; do
		echo "== snapshot $s" &&
		"$TEST_PYTHON" "$TEST_DIR/treelist.py" "$m/.snapshot/$s" || return 1
	done &&
	"$SNAPFS" snapshot list "$m" --json &&
	"$SNAPFS" snapshot holds "$m" s2 &&
	"$SNAPFS" qtree list "$m" --json &&
	"$SNAPFS" policy list "$m" --json &&
	"$SNAPFS" get "$m" &&
	"$SNAPFS" info "$m" --json | field /dev/stdin uuid
}

# the store's data file, as a checksum
data_sum() { sha256sum <"$1/data.mdb" | cut -d" " -f1; }

# wait_open PID FILE: until process PID has FILE open
wait_open() {
	local i
	for i in $(seq 1 600); do
		ls -l "/proc/$1/fd" 2>/dev/null | grep -q -- "$2" && return 0
		pid_running "$1" || return 1
		sleep 0.05
	done
	return 1
}

# stop_mid_copy STORE: start a compact of STORE, stop it (SIGSTOP) the
# moment its temporary file appears, and print its pid; fails if the
# compact ended first
stop_mid_copy() {
	local pid
	"$SNAPFS" compact "$1" >"$REF/killed.out" 2>&1 &
	pid=$!
	while ! [ -e "$1/$TEMP" ] && pid_running "$pid"; do :; done
	kill -STOP "$pid" 2>/dev/null
	if ! [ -e "$1/$TEMP" ]; then
		say "compact ended before it could be stopped mid-copy" >&2
		kill -KILL "$pid" 2>/dev/null
		return 1
	fi
	echo "$pid"
}

test_expect_success 'setup: files, a qtree, two snapshots, a hold, a policy, a setting' '
	"$SNAPFS" qtree create "$MNT" proj --quota 500M &&
	rand_file proj/keep.bin $((96 * MiB)) &&
	for i in $(seq 1 50); do echo "file $i" >small.$i; done &&
	mkdir -p d/e && ln -s ../small.1 d/e/link && setfattr -n user.k -v v small.2 &&
	"$SNAPFS" snapshot create "$MNT" s1 &&
	for i in $(seq 1 10); do echo "changed $i" >small.$i; done &&
	rm small.20 &&
	"$SNAPFS" snapshot create "$MNT" s2 &&
	"$SNAPFS" snapshot hold "$MNT" s2 audit &&
	"$SNAPFS" policy create "$MNT" nightly --schedule daily@00:10 --keep 7 &&
	"$SNAPFS" set "$MNT" snapdir=hidden snapshot-reserve=5%
'

test_expect_success 'a volume filled and then mostly emptied: info shows free pages that compaction would give back' '
	for i in 1 2 3; do rand_file junk.$i $((64 * MiB)) || exit 1; done &&
	sync -f . && rm junk.* && sync -f . &&
	"$SNAPFS" info "$MNT" --json >"$REF/mounted.json" &&
	"$SNAPFS" info "$MNT" >"$REF/mounted.txt" && cat "$REF/mounted.txt" &&
	assert_grep "^store pages: .* in use, .* free" "$REF/mounted.txt" &&
	assert_grep "^compaction: *would give back" "$REF/mounted.txt" &&
	assert_grep "^store cost: .* bytes per file, .* bytes per logical byte" "$REF/mounted.txt" &&
	free=$(field "$REF/mounted.json" pages_free) &&
	gain=$(field "$REF/mounted.json" compact_gain_bytes) &&
	assert_le $((100 * MiB)) "$gain" "what compaction would give back" &&
	assert_le $((100 * MiB / 4096)) "$free" "free pages"
'

test_expect_success 'compact is refused while the volume is mounted, by mountpoint or by store' '
	sum=$(data_sum "$STORE") &&
	assert_fails "$SNAPFS" compact "$MNT" 2>"$REF/err1" &&
	cat "$REF/err1" &&
	assert_grep "is mounted; unmount it first" "$REF/err1" &&
	assert_fails "$SNAPFS" compact "$STORE" 2>"$REF/err2" &&
	cat "$REF/err2" &&
	assert_grep "mounted or in use by another snapfs command.*nothing was changed" "$REF/err2" &&
	mountpoint -q "$MNT" && cat small.1 >/dev/null &&
	assert_eq "$sum" "$(data_sum "$STORE")" &&
	assert_missing "$STORE/$TEMP"
'

test_expect_success 'what the volume shows before compaction is recorded' '
	volume_view "$MNT" >"$REF/view.before" &&
	grep -q "^== snapshot s2" "$REF/view.before" &&
	cd "$TEST_TMP" && vol_umount "$MNT" &&
	"$SNAPFS" info "$STORE" --json >"$REF/before.json" &&
	cat "$REF/before.json"
'

test_expect_success 'compact is refused while another process has the store open (mdb_dump reading it)' '
	sum=$(data_sum "$STORE") &&
	mkfifo "$REF/fifo" && exec 7<>"$REF/fifo" || exit 1
	mdb_dump -a "$STORE" >"$REF/fifo" 2>/dev/null &
	pid=$! &&
	wait_open "$pid" data.mdb &&
	assert_fails "$SNAPFS" compact "$STORE" 2>"$REF/err3" &&
	kill -KILL "$pid" && exec 7>&- || exit 1
	wait "$pid" 2>/dev/null || :
	cat "$REF/err3" &&
	assert_grep "the store is open in process $pid (mdb_dump).*nothing was changed" "$REF/err3" &&
	assert_eq "$sum" "$(data_sum "$STORE")" &&
	assert_missing "$STORE/$TEMP"
'

test_expect_success 'compact shrinks the store file to the size info predicted' '
	predicted=$(field "$REF/before.json" compact_bytes) &&
	old=$(stat -c %s "$STORE/data.mdb") &&
	assert_eq "$old" "$(field "$REF/before.json" store_file_size)" &&
	"$SNAPFS" compact "$STORE" >"$REF/compact.out" &&
	cat "$REF/compact.out" &&
	assert_grep "compacted: .* given back" "$REF/compact.out" &&
	new=$(stat -c %s "$STORE/data.mdb") &&
	say "file $old -> $new bytes, predicted $predicted" &&
	assert_eq "$predicted" "$new" "the compacted size" &&
	assert_le $((new + 100 * MiB)) "$old" &&
	assert_missing "$STORE/$TEMP" &&
	"$SNAPFS" info "$STORE" --json >"$REF/after.json" &&
	assert_eq 0 "$(field "$REF/after.json" pages_free)" "free pages after compact" &&
	assert_eq "$new" "$(field "$REF/after.json" compact_bytes)"
'

test_expect_success 'after compaction fsck is clean and every snapshot, hold, qtree, policy and setting is as before' '
	"$SNAPFS" fsck "$STORE" &&
	vol_mount "$STORE" "$MNT" &&
	volume_view "$MNT" >"$REF/view.after" &&
	diff -u "$REF/view.before" "$REF/view.after" &&
	assert_cmp "$REF/view.before" "$REF/view.after"
'

test_expect_success 'the compacted volume takes writes and snapshots' '
	rand_file "$REF/new" $((3 * MiB)) &&
	cp "$REF/new" new && sync -f . &&
	"$SNAPFS" snapshot create "$MNT" s3 &&
	assert_cmp "$REF/new" .snapshot/s3/new &&
	rm new && "$SNAPFS" snapshot delete "$MNT" s3 &&
	volume_view "$MNT" >"$REF/view.written" &&
	cd "$TEST_TMP" && vol_umount "$MNT" && "$SNAPFS" fsck "$STORE"
'

test_expect_success 'a compact killed mid-copy leaves the old store; the next compact removes its temporary file' '
	sum=$(data_sum "$STORE") &&
	pid=$(stop_mid_copy "$STORE") &&
	say "stopped compact $pid with $(stat -c %s "$STORE/$TEMP") bytes copied" &&
	kill -KILL "$pid" && wait_gone "$pid" &&
	test -e "$STORE/$TEMP" &&
	assert_eq "$sum" "$(data_sum "$STORE")" "the old data file" &&
	"$SNAPFS" fsck "$STORE" &&
	"$SNAPFS" compact "$STORE" >"$REF/compact2.out" &&
	cat "$REF/compact2.out" &&
	assert_grep "removed the temporary file of a compact that did not finish" "$REF/compact2.out" &&
	assert_missing "$STORE/$TEMP" &&
	"$SNAPFS" fsck "$STORE"
'

test_expect_success 'a compact killed mid-copy leaves the old store; the next mount removes its temporary file' '
	pid=$(stop_mid_copy "$STORE") &&
	kill -KILL "$pid" && wait_gone "$pid" &&
	test -e "$STORE/$TEMP" &&
	vol_mount "$STORE" "$MNT" &&
	assert_missing "$STORE/$TEMP" &&
	volume_view "$MNT" >"$REF/view.killed" &&
	assert_cmp "$REF/view.written" "$REF/view.killed" &&
	cd "$TEST_TMP" && vol_umount "$MNT"
'

test_expect_success 'compacts killed at other points leave the old store or the new one, never neither' '
	for delay in 0.01 0.05 0.1 0.2 0.4; do
		"$SNAPFS" compact "$STORE" >/dev/null 2>&1 &
		pid=$! &&
		sleep $delay &&
		{ kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; } || :
		"$SNAPFS" fsck "$STORE" >/dev/null || exit 1
	done &&
	vol_mount "$STORE" "$MNT" &&
	assert_missing "$STORE/$TEMP" &&
	volume_view "$MNT" >"$REF/view.kills" &&
	assert_cmp "$REF/view.written" "$REF/view.kills" &&
	cd "$TEST_TMP" && vol_umount "$MNT"
'

test_expect_success 'compact --to writes the compacted store elsewhere and leaves the original' '
	sum=$(data_sum "$STORE") &&
	"$SNAPFS" compact "$STORE" --to "$TEST_TMP/copy" >"$REF/to.out" &&
	cat "$REF/to.out" &&
	assert_grep "compacted into $TEST_TMP/copy" "$REF/to.out" &&
	assert_eq "$sum" "$(data_sum "$STORE")" &&
	"$SNAPFS" fsck "$TEST_TMP/copy" &&
	vol_mount "$TEST_TMP/copy" "$TEST_TMP/mnt-copy" &&
	volume_view "$TEST_TMP/mnt-copy" >"$REF/view.copy" &&
	vol_umount "$TEST_TMP/mnt-copy" &&
	assert_cmp "$REF/view.written" "$REF/view.copy" &&
	assert_fails "$SNAPFS" compact "$STORE" --to "$TEST_TMP/copy" 2>"$REF/err4" &&
	assert_grep "copy: already exists; nothing was changed" "$REF/err4"
'

test_expect_success 'bad input: no such store, not a store, a file, no argument, an unknown option' '
	assert_fails "$SNAPFS" compact "$TEST_TMP/nothing" 2>"$REF/e1" &&
	assert_grep "nothing: no such directory; nothing was changed" "$REF/e1" &&
	mkdir "$TEST_TMP/plain" && echo x >"$TEST_TMP/plain/f" &&
	assert_fails "$SNAPFS" compact "$TEST_TMP/plain" 2>"$REF/e2" &&
	assert_grep "plain: not a snapfs volume; nothing was changed" "$REF/e2" &&
	assert_eq x "$(cat "$TEST_TMP/plain/f")" &&
	assert_missing "$TEST_TMP/plain/$TEMP" &&
	assert_fails "$SNAPFS" compact "$TEST_TMP/plain/f" 2>"$REF/e3" &&
	assert_grep "f: not a directory" "$REF/e3" &&
	rc=0 && { "$SNAPFS" compact >/dev/null 2>&1 || rc=$?; } &&
	assert_eq 2 "$rc" "exit status without an argument" &&
	rc=0 && { "$SNAPFS" compact "$STORE" --bogus >/dev/null 2>&1 || rc=$?; } &&
	assert_eq 2 "$rc" "exit status with an unknown option"
'

test_expect_success ROOT 'without room for the copy compact is refused and changes nothing; --to elsewhere works' '
	small=$TEST_TMP/small && mkdir "$small" &&
	mount -t tmpfs -o size=40m tmpfs "$small" &&
	echo "$small" >>"$TEST_TMP/.mounts" &&
	"$SNAPFS" mkfs "$small/st" --size 1G >/dev/null &&
	vol_mount "$small/st" "$TEST_TMP/mnt-small" &&
	rand_file "$TEST_TMP/mnt-small/big" $((22 * MiB)) &&
	vol_umount "$TEST_TMP/mnt-small" &&
	sum=$(data_sum "$small/st") &&
	assert_fails "$SNAPFS" compact "$small/st" 2>"$REF/e5" &&
	cat "$REF/e5" &&
	assert_grep "not enough space in .*small/st for the compacted copy (needs .*, .* free); nothing was changed" "$REF/e5" &&
	assert_eq "$sum" "$(data_sum "$small/st")" &&
	assert_missing "$small/st/$TEMP" &&
	"$SNAPFS" compact "$small/st" --to "$TEST_TMP/small-copy" &&
	"$SNAPFS" fsck "$TEST_TMP/small-copy" &&
	umount "$small"
'

vol_mount "$STORE" "$MNT"
test_done
