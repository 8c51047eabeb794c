#!/bin/bash
# Replication streams received into a MOUNTED destination: the daemon
# applies them while clients read the mount.  Clients see the newest
# complete snapshot, consistently, until the receive publishes the next
# (then files, open files and listed directories show the new contents and
# .snapshot the new snapshot); a paused sender freezes nothing; a cut
# stream resumes with the token while mounted; bad streams, a second
# receive, a broken-off or never-followed mounted volume are refused with
# one message and the destination unchanged.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 2G

TREELIST=$(cd "$(dirname "$0")" && pwd)/treelist.py
tree() { python3 "$TREELIST" "$1" --usec --holes; }
DST=$TEST_TMP/dst.store
DMNT=$TEST_TMP/dst.mnt
# mounted_is NAME: the mounted destination lists as the source's NAME
mounted_is() {
	tree "$MNT/.snapshot/$1" >"$REF/src.tree" &&
	tree "$DMNT" >"$REF/dst.tree" &&
	diff -u "$REF/src.tree" "$REF/dst.tree" >&2
}
# randfiles DIR N: N files of 6 MB of random data in DIR
randfiles() {
	mkdir -p "$1" && for i in $(seq "$2"); do head -c 6000000 /dev/urandom >"$1/f$i"; done
}
test_at_exit 'exec 3<&- 2>/dev/null'

test_expect_success 'set up: s1 received into the destination, which is then mounted read-only at s1' '
	mkdir -p dir/sub && echo one >dir/file && echo keep >dir/keep && ln dir/keep dir/keep.link &&
	ln -s file dir/sym && setfattr -n user.color -v blue dir/file && echo old >dir/sub/gone &&
	"$SNAPFS" snapshot create "$MNT" s1 >/dev/null &&
	"$SNAPFS" mkfs "$DST" --size 2G >/dev/null &&
	"$SNAPFS" send "$MNT" s1 | "$SNAPFS" receive "$DST" &&
	vol_mount "$DST" "$DMNT" &&
	mounted_is s1
'

test_expect_success 'a mounted volume that follows no source yet refuses a receive and stays empty' '
	"$SNAPFS" mkfs "$TEST_TMP/empty.store" >/dev/null &&
	vol_mount "$TEST_TMP/empty.store" "$TEST_TMP/empty.mnt" || exit 1
	rc=0; "$SNAPFS" send "$MNT" s1 | "$SNAPFS" receive "$TEST_TMP/empty.mnt" 2>"$REF/err" || rc=$? &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "is mounted read-write (it follows no source yet): receive its first, full stream unmounted" "$REF/err" &&
	assert_eq "" "$(snaps "$TEST_TMP/empty.mnt")" &&
	assert_eq "" "$(ls -A "$TEST_TMP/empty.mnt" | grep -v "^.snapshot$")" &&
	vol_umount "$TEST_TMP/empty.mnt"
'

test_expect_success 'an incremental received while mounted: the mount equals s2; a file kept open and a directory listed before show the new contents' '
	exec 3<"$DMNT/dir/file" &&
	assert_eq one "$(cat <&3)" && assert_eq one "$(cat "$DMNT/dir/file")" &&
	assert_eq old "$(cat "$DMNT/dir/sub/gone")" && assert_missing "$DMNT/dir/added" &&
	assert_eq "file keep keep.link sub sym" "$(ls "$DMNT/dir" | paste -sd" ")" &&
	assert_eq gone "$(ls "$DMNT/dir/sub")" &&
	printf "a longer second version\n" >dir/file && setfattr -n user.color -v red dir/file &&
	rm dir/sub/gone && echo new >dir/sub/new && echo added >dir/added && rm dir/keep.link &&
	"$SNAPFS" snapshot create "$MNT" s2 >/dev/null &&
	"$SNAPFS" send "$MNT" s2 --from s1 | "$SNAPFS" receive -v "$DMNT" 2>"$REF/err" &&
	assert_grep "^received s2 from s1: [0-9]* records, [0-9]* removed" "$REF/err" &&
	assert_eq "a longer second version" "$(python3 -c "import os; os.lseek(3, 0, 0); print(os.read(3, 100).decode(), end=\"\")")" &&
	assert_eq "a longer second version" "$(cat "$DMNT/dir/file")" &&
	assert_missing "$DMNT/dir/sub/gone" && assert_eq added "$(cat "$DMNT/dir/added")" &&
	exec 3<&- &&
	mounted_is s2 &&
	assert_eq "added file keep sub sym" "$(ls "$DMNT/dir" | paste -sd" ")" &&
	assert_eq new "$(ls "$DMNT/dir/sub")" &&
	assert_eq red "$(getfattr --only-values -n user.color "$DMNT/dir/file")" &&
	assert_eq "s1 s2" "$(ls "$DMNT/.snapshot" | paste -sd" ")" &&
	assert_eq one "$(cat "$DMNT/.snapshot/s1/dir/file")"
'

test_expect_success 'the mounted destination stays read-only: writes get EROFS' '
	assert_errno EROFS mkdir "$DMNT/x" && assert_errno EROFS unlink "$DMNT/dir/added" &&
	assert_errno EROFS open "$DMNT/dir/file" w && assert_errno EROFS open "$DMNT/newfile" wc &&
	assert_errno EROFS rename "$DMNT/dir/added" "$DMNT/dir/moved"
'

# paused_receive STREAM BYTES ERR: receive STREAM into the mount in the
# background, pausing after BYTES until `echo >$TEST_TMP/gate`; sets pid.
paused_receive() {
	rm -f "$TEST_TMP/gate" && mkfifo "$TEST_TMP/gate" || return 1
	{ head -c "$2" "$1"; read -r _ <"$TEST_TMP/gate"; tail -c +$(($2 + 1)) "$1"; } |
		"$SNAPFS" receive "$DMNT" 2>"$3" &
	pid=$!
}
# receiving: wait (10 s at most) until the daemon has taken the receive:
# an abort is then refused because a receive runs (before, with nothing
# unfinished, it finds nothing to discard: nothing changes either way).
# A resume token is no sign: a stream paused in its header has none yet.
receiving() {
	for _ in $(seq 100); do
		"$SNAPFS" receive "$DMNT" --abort 2>"$TEST_TMP/probe.err"
		grep -q "a receive into it is running" "$TEST_TMP/probe.err" && return 0
		sleep 0.1
	done
	say "no receive began" >&2
	return 1
}

test_expect_success 'while the sender pauses mid-stream, clients read the old snapshot at once; then the new one' '
	randfiles big 3 && echo three >dir/file && "$SNAPFS" snapshot create "$MNT" s3 >/dev/null &&
	"$SNAPFS" send "$MNT" s3 --from s2 >"$TEST_TMP/s23.stream" &&
	paused_receive "$TEST_TMP/s23.stream" 9000000 "$REF/err" || exit 1
	receiving &&
	timeout 2 cat "$DMNT/dir/file" >"$REF/during" &&
	assert_eq "a longer second version" "$(cat "$REF/during")" &&
	timeout 2 "$SNAPFS" snapshot list "$DMNT" >/dev/null &&
	mounted_is s2 && assert_missing "$DMNT/big" &&
	assert_eq "s1 s2" "$(ls "$DMNT/.snapshot" | paste -sd" ")" || exit 1
	echo go >"$TEST_TMP/gate" &&
	rc=0; wait $pid || rc=$?
	assert_eq 0 "$rc" && assert_eq "" "$(cat "$REF/err")" &&
	mounted_is s3 && assert_eq three "$(cat "$DMNT/dir/file")" &&
	assert_eq "s1 s2 s3" "$(ls "$DMNT/.snapshot" | paste -sd" ")"
'

test_expect_success 'a second receive while one runs is refused, and so is a snapshot of the half-received tree; a killed receive ends' '
	echo four >dir/file && "$SNAPFS" snapshot create "$MNT" s4 >/dev/null &&
	"$SNAPFS" send "$MNT" s4 --from s3 >"$TEST_TMP/s34.stream" &&
	paused_receive "$TEST_TMP/s34.stream" 100 "$REF/err1" || exit 1
	receiving || exit 1
	rc=0; "$SNAPFS" receive "$DMNT" <"$TEST_TMP/s34.stream" 2>"$REF/err" || rc=$?
	assert_eq 1 "$rc" && assert_grep "another receive into it is running" "$REF/err" || exit 1
	rc=0; "$SNAPFS" snapshot create "$DMNT" local 2>"$REF/err" || rc=$?
	assert_eq 1 "$rc" && assert_grep "a stream is being received into it" "$REF/err" || exit 1
	kill $pid || exit 1
	# the command is gone before the rest of the stream comes (wait would
	# wait for the whole pipeline, whose head waits for the gate)
	while kill -0 $pid 2>/dev/null; do sleep 0.05; done
	echo go >"$TEST_TMP/gate" || exit 1
	wait $pid || :
	assert_eq "s1 s2 s3" "$(snaps "$DMNT")" || exit 1
	for _ in $(seq 50); do	# the daemon ends the killed command'"'"'s receive
		"$SNAPFS" receive "$DMNT" <"$TEST_TMP/s34.stream" 2>"$REF/err" && break
		grep -q "another receive" "$REF/err" || exit 1
		sleep 0.1
	done
	mounted_is s4
'

test_expect_success 'a cut stream leaves the mount at its last snapshot; the token resumes it while mounted' '
	randfiles bulk 4 && "$SNAPFS" snapshot create "$MNT" s5 >/dev/null &&
	"$SNAPFS" send "$MNT" s5 --from s4 >"$TEST_TMP/s45.stream" &&
	full=$(stat -c %s "$TEST_TMP/s45.stream") || exit 1
	rc=0; head -c 20000000 "$TEST_TMP/s45.stream" | "$SNAPFS" receive "$DMNT" 2>"$REF/err" || rc=$? &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" && assert_grep truncated "$REF/err" &&
	mounted_is s4 && assert_missing "$DMNT/bulk" &&
	assert_eq "s1 s2 s3 s4" "$(ls "$DMNT/.snapshot" | paste -sd" ")" &&
	token=$("$SNAPFS" receive "$DMNT" --resume-token) &&
	"$SNAPFS" send "$MNT" s5 --from s4 --resume "$token" >"$TEST_TMP/rest.stream" &&
	rest=$(stat -c %s "$TEST_TMP/rest.stream") &&
	test "$rest" -lt $((full - 12000000)) &&
	"$SNAPFS" receive "$DMNT" <"$TEST_TMP/rest.stream" &&
	mounted_is s5 || exit 1
	rc=0; "$SNAPFS" receive "$DMNT" --resume-token 2>"$REF/err" || rc=$? &&
	assert_eq 1 "$rc" && assert_grep "no unfinished receive" "$REF/err"
'

dst_state() { snaps "$DMNT"; tree "$DMNT"; }

test_expect_success 'a damaged stream is refused at the damaged frame, the mounted destination unchanged' '
	rm -r bulk big && echo six >dir/file && "$SNAPFS" snapshot create "$MNT" s6 >/dev/null &&
	"$SNAPFS" send "$MNT" s6 --from s5 >"$TEST_TMP/s56.stream" &&
	dst_state >"$REF/before" &&
	python3 -c "
import sys
p = sys.argv[1]; b = bytearray(open(p, \"rb\").read()); b[len(b) // 2] ^= 0x40
open(p + \".bad\", \"wb\").write(b)" "$TEST_TMP/s56.stream" || exit 1
	rc=0; "$SNAPFS" receive "$DMNT" <"$TEST_TMP/s56.stream.bad" 2>"$REF/err" || rc=$? &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "^snapfs receive: .*: checksum mismatch in the frame at byte [0-9]" "$REF/err" &&
	dst_state >"$REF/after" && assert_cmp "$REF/before" "$REF/after"
'

test_expect_success 'garbage, an empty input and a truncated header are refused as offline; --abort works mounted' '
	rc=0; echo "this is not a stream" | "$SNAPFS" receive "$DMNT" 2>"$REF/err" || rc=$? &&
	assert_eq 1 "$rc" && assert_grep "not a snapfs replication stream" "$REF/err" || exit 1
	rc=0; "$SNAPFS" receive "$DMNT" </dev/null 2>"$REF/err" || rc=$? &&
	assert_eq 1 "$rc" && assert_grep "no stream on standard input" "$REF/err" || exit 1
	rc=0; head -c 300 "$TEST_TMP/s56.stream" | "$SNAPFS" receive "$DMNT" 2>"$REF/err" || rc=$? &&
	assert_eq 1 "$rc" && assert_grep truncated "$REF/err" &&
	test -n "$("$SNAPFS" receive "$DMNT" --resume-token)" &&
	"$SNAPFS" receive "$DMNT" --abort 2>"$REF/err" &&
	assert_grep "the unfinished receive was discarded" "$REF/err" || exit 1
	rc=0; "$SNAPFS" receive "$DMNT" --abort 2>"$REF/err" || rc=$? &&
	assert_eq 1 "$rc" && assert_grep "no unfinished receive" "$REF/err" &&
	dst_state >"$REF/after" && assert_cmp "$REF/before" "$REF/after"
'

test_expect_success '--handshake through the daemon: the hello line, then one ok line per snapshot' '
	"$SNAPFS" send "$MNT" s6 --from s5 | "$SNAPFS" receive --handshake "$DMNT" >"$REF/out" &&
	assert_eq 2 "$(grep -c "" "$REF/out")" &&
	head -1 "$REF/out" | grep -q "^snapfs-receive 1 [0-9a-f]* follows [0-9a-f]* [0-9]* s5 - " &&
	assert_grep "^ok s6 [0-9]* 0$" "$REF/out" &&
	mounted_is s6
'

test_expect_success 'a broken-off mounted destination refuses the stream: resync first' '
	vol_umount "$DMNT" &&
	printf "VERSION=3\nformat=print\ntype=btree\nHEADER=END\n recv/writable\n \\\\01\nDATA=END\n" |
		mdb_load -s meta "$DST" &&
	vol_mount "$DST" "$DMNT" &&
	echo seven >dir/file && "$SNAPFS" snapshot create "$MNT" s7 >/dev/null &&
	dst_state >"$REF/before" || exit 1
	rc=0; "$SNAPFS" send "$MNT" s7 --from s6 | "$SNAPFS" receive "$DMNT" 2>"$REF/err" || rc=$? &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "broken off and may have diverged (resync first)" "$REF/err" &&
	dst_state >"$REF/after" && assert_cmp "$REF/before" "$REF/after"
'

test_expect_success 'the destination unmounts and is fsck clean' '
	vol_umount "$DMNT" &&
	"$SNAPFS" fsck "$DST" >"$REF/out" && assert_grep clean "$REF/out"
'

test_done
