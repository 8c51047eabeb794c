#!/bin/bash
# Replication streams: `snapfs send` writes a snapshot (whole, or the change
# from an older one) and `snapfs receive` applies it; the destination's
# snapshot then lists exactly as the source's (contents, modes, owners,
# microsecond times, xattrs, ACLs, DOS attributes, qtrees, hard links,
# holes), a mounted destination is read-only and shows its newest complete
# snapshot, an interrupted receive resumes without resending what was
# applied, and every bad stream is refused with the destination unchanged.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 2G

TREELIST=$(cd "$(dirname "$0")" && pwd)/treelist.py
tree() { python3 "$TREELIST" "$1" --usec --holes; }
DST=$TEST_TMP/dst.store
DMNT=$TEST_TMP/dst.mnt
# same_snapshot NAME: the destination's NAME lists as the source's NAME
same_snapshot() {
	tree "$MNT/.snapshot/$1" >"$REF/src.tree" &&
	vol_mount "$DST" "$DMNT" &&
	tree "$DMNT/.snapshot/$1" >"$REF/dst.tree" &&
	vol_umount "$DMNT" &&
	diff -u "$REF/src.tree" "$REF/dst.tree" >&2
}

test_expect_success 'set up a source: data, modes, owners, times, xattrs, ACLs, DOS attributes, a qtree, hard links, holes, devices' '
	mkdir -p dir/sub && echo a >dir/a && ln dir/a dir/sub/a.link &&
	head -c 3000000 /dev/urandom >dir/big && ln -s ../mod dir/sym && mkfifo dir/fifo &&
	root_mknod dir/null c 1 3 && echo one >mod &&
	setfacl -m u:65534:rw dir/a && setfacl -d -m g:65534:rx dir/sub &&
	setfattr -n user.DOSATTRIB -v 0x22 dir/a && setfattr -n user.color -v blue dir/big &&
	truncate -s 5M sparse && printf x | dd of=sparse bs=1 seek=3000000 conv=notrunc 2>/dev/null &&
	root_chown 65534:65534 dir/sub && chmod 4750 mod &&
	touch -h -d "2001-02-03 04:05:06.789" dir/sym dir/a mod &&
	"$SNAPFS" qtree create "$MNT" proj --quota 100M --security-style ntfs >/dev/null &&
	echo q >proj/file &&
	"$SNAPFS" snapshot create "$MNT" s1 >/dev/null &&
	"$SNAPFS" mkfs "$DST" --size 2G >/dev/null
'

test_expect_success 'a full stream received into an empty volume lists exactly as the source snapshot' '
	"$SNAPFS" send "$MNT" s1 >"$TEST_TMP/s1.stream" &&
	"$SNAPFS" receive "$DST" <"$TEST_TMP/s1.stream" &&
	assert_eq "s1" "$(snaps "$DST")" &&
	same_snapshot s1
'

test_expect_success 'the received snapshot keeps the source snapshot'"'"'s creation time, and the qtree with its quota' '
	"$SNAPFS" snapshot list "$MNT" --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"created\"])" >"$REF/c1" &&
	"$SNAPFS" snapshot list "$DST" --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"created\"])" >"$REF/c2" &&
	assert_cmp "$REF/c1" "$REF/c2" &&
	"$SNAPFS" qtree list "$DST" >"$REF/q" &&
	assert_grep "proj.*ntfs" "$REF/q"
'

test_expect_success 'an incremental stream carries the change only, and the destination then equals the newer snapshot' '
	echo two >mod && rm dir/sub/a.link && setfacl -b dir/a && setfattr -n user.color -v red dir/big &&
	mv dir/sub moved && echo new >moved/new && truncate -s 1M dir/big && echo more >>proj/file &&
	"$SNAPFS" snapshot create "$MNT" s2 >/dev/null &&
	"$SNAPFS" send "$MNT" s2 --from s1 >"$TEST_TMP/s12.stream" &&
	size=$(stat -c %s "$TEST_TMP/s12.stream") &&
	test "$size" -lt 65536 &&
	"$SNAPFS" receive "$DST" <"$TEST_TMP/s12.stream" &&
	assert_eq "s1 s2" "$(snaps "$DST")" &&
	same_snapshot s2 && same_snapshot s1
'

test_expect_success '-I sends every snapshot between the base and the target, each received complete' '
	echo three >mod && "$SNAPFS" snapshot create "$MNT" s3 >/dev/null &&
	rm -r moved && "$SNAPFS" snapshot create "$MNT" s4 >/dev/null &&
	"$SNAPFS" send "$MNT" s4 -I s2 | "$SNAPFS" receive -v "$DST" 2>"$REF/err" &&
	assert_grep "received s3 from s2" "$REF/err" &&
	assert_grep "received s4 from s3" "$REF/err" &&
	assert_eq "s1 s2 s3 s4" "$(snaps "$DST")" &&
	same_snapshot s3 && same_snapshot s4
'

test_expect_success 'a mounted destination is read-only and shows its newest snapshot' '
	vol_mount "$DST" "$DMNT" &&
	assert_eq three "$(cat "$DMNT/mod")" &&
	assert_missing "$DMNT/moved" &&
	assert_errno EROFS mkdir "$DMNT/x" && assert_errno EROFS unlink "$DMNT/mod" &&
	assert_eq "s1 s2 s3 s4" "$(ls "$DMNT/.snapshot" | paste -sd" ")" &&
	vol_umount "$DMNT"
'

test_expect_success 'an interrupted send releases the snapshots it held' '
	mkfifo "$TEST_TMP/fifo"
	"$SNAPFS" send "$MNT" s4 >"$TEST_TMP/fifo" 2>"$REF/err" & pid=$!
	exec 7<"$TEST_TMP/fifo" && head -c 1000 <&7 >/dev/null &&
	"$SNAPFS" snapshot holds "$MNT" s4 >"$REF/holds" &&
	assert_grep "send:$pid" "$REF/holds" &&
	kill -INT $pid && cat <&7 >/dev/null; exec 7<&- &&
	{ rc=0; wait $pid || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "interrupted" "$REF/err" &&
	"$SNAPFS" snapshot holds "$MNT" s4 >"$REF/holds" &&
	! grep -q "send:" "$REF/holds"
'

test_expect_success 'the destination is fsck clean' '
	"$SNAPFS" fsck "$DST" >"$REF/out" && assert_grep clean "$REF/out"
'

# ---- bad input: one message, destination unchanged

dst_state() { snaps "$DST"; "$SNAPFS" info "$DST" | grep -v -i "time\|date"; }

test_expect_success 'a corrupted stream is refused at the damaged frame and changes nothing' '
	echo four >mod && "$SNAPFS" snapshot create "$MNT" s5 >/dev/null &&
	"$SNAPFS" send "$MNT" s5 --from s4 >"$TEST_TMP/s45.stream" &&
	dst_state >"$REF/before" &&
	python3 -c "
import sys
p = sys.argv[1]; b = bytearray(open(p, \"rb\").read()); b[len(b) // 2] ^= 0x40
open(p + \".bad\", \"wb\").write(b)" "$TEST_TMP/s45.stream" &&
	{ rc=0; "$SNAPFS" receive "$DST" <"$TEST_TMP/s45.stream.bad" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "checksum mismatch in the frame at byte [0-9]" "$REF/err" &&
	dst_state >"$REF/after" && assert_cmp "$REF/before" "$REF/after"
'

test_expect_success 'a truncated stream is refused as truncated and changes nothing' '
	head -c 300 "$TEST_TMP/s45.stream" >"$TEST_TMP/short.stream" &&
	{ rc=0; "$SNAPFS" receive "$DST" <"$TEST_TMP/short.stream" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "truncated" "$REF/err" &&
	"$SNAPFS" receive "$DST" --abort 2>/dev/null || : &&
	dst_state >"$REF/after" && assert_cmp "$REF/before" "$REF/after"
'

test_expect_success 'a stream whose base the destination lacks is refused' '
	"$SNAPFS" send "$MNT" s5 --from s1 >"$TEST_TMP/s15.stream" &&
	"$SNAPFS" snapshot delete "$DST" s1 >/dev/null &&
	dst_state >"$REF/before" &&
	{ rc=0; "$SNAPFS" receive "$DST" <"$TEST_TMP/s15.stream" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "lacks the stream.s base snapshot s1" "$REF/err" &&
	dst_state >"$REF/after" && assert_cmp "$REF/before" "$REF/after"
'

test_expect_success 'a stream of another volume is refused' '
	"$SNAPFS" mkfs "$TEST_TMP/other.store" >/dev/null &&
	vol_mount "$TEST_TMP/other.store" "$TEST_TMP/other.mnt" &&
	echo x >"$TEST_TMP/other.mnt/x" &&
	"$SNAPFS" snapshot create "$TEST_TMP/other.mnt" o1 >/dev/null &&
	echo y >"$TEST_TMP/other.mnt/x" &&
	"$SNAPFS" snapshot create "$TEST_TMP/other.mnt" o2 >/dev/null &&
	"$SNAPFS" send "$TEST_TMP/other.mnt" o2 --from o1 >"$TEST_TMP/o.stream" &&
	{ rc=0; "$SNAPFS" receive "$DST" <"$TEST_TMP/o.stream" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "the stream is of volume [0-9a-f]*, the destination follows volume" "$REF/err" &&
	dst_state >"$REF/after" && assert_cmp "$REF/before" "$REF/after"
'

test_expect_success 'a full stream into a volume that is not empty, and garbage, are refused' '
	"$SNAPFS" send "$TEST_TMP/other.mnt" o1 >"$TEST_TMP/o1.stream" &&
	{ rc=0; "$SNAPFS" receive "$DST" <"$TEST_TMP/o1.stream" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "not empty" "$REF/err" &&
	{ rc=0; head -c 5000 /dev/urandom | "$SNAPFS" receive "$DST" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "not a snapfs replication stream" "$REF/err" &&
	{ rc=0; "$SNAPFS" receive "$DST" </dev/null 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "no stream on standard input" "$REF/err" &&
	dst_state >"$REF/after" && assert_cmp "$REF/before" "$REF/after"
'

test_expect_success 'a destination with a snapshot of its own has diverged and is refused' '
	"$SNAPFS" send "$MNT" s5 --from s4 | "$SNAPFS" receive "$DST" &&
	echo six >mod && "$SNAPFS" snapshot create "$MNT" s6 >/dev/null &&
	"$SNAPFS" snapshot create "$DST" local >/dev/null &&
	dst_state >"$REF/before" &&
	{ rc=0; "$SNAPFS" send "$MNT" s6 --from s5 | "$SNAPFS" receive "$DST" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "diverged: snapshot local is newer than the base s5" "$REF/err" &&
	dst_state >"$REF/after" && assert_cmp "$REF/before" "$REF/after" &&
	"$SNAPFS" snapshot delete "$DST" local >/dev/null
'

test_expect_success 'send refuses a terminal, an unknown snapshot and a base that is not older' '
	{ rc=0; "$SNAPFS" send "$MNT" nosuch >/dev/null 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "no snapshot named nosuch" "$REF/err" &&
	{ rc=0; "$SNAPFS" send "$MNT" s1 --from s2 >/dev/null 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "is not older than" "$REF/err" &&
	{ rc=0; script -qc "$SNAPFS send $MNT s1" /dev/null >"$REF/tty" 2>&1 || rc=$?; } &&
	assert_grep "refusing to write a replication stream to a terminal" "$REF/tty"
'

# ---- interrupted transfers

test_expect_success 'an interrupted receive leaves the newest snapshot complete and resumes without resending' '
	"$SNAPFS" send "$MNT" s6 --from s5 | "$SNAPFS" receive "$DST" &&
	mkdir bulk && for i in 1 2 3 4 5 6 7 8; do head -c 12000000 /dev/urandom >bulk/f$i; done &&
	"$SNAPFS" snapshot create "$MNT" s7 >/dev/null &&
	"$SNAPFS" send "$MNT" s7 --from s6 >"$TEST_TMP/s67.stream" &&
	full=$(stat -c %s "$TEST_TMP/s67.stream") &&
	{ rc=0; head -c 70000000 "$TEST_TMP/s67.stream" | "$SNAPFS" receive "$DST" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep truncated "$REF/err" &&
	assert_eq "s2 s3 s4 s5 s6" "$(snaps "$DST")" &&
	vol_mount "$DST" "$DMNT" && assert_eq six "$(cat "$DMNT/mod")" && assert_missing "$DMNT/bulk" &&
	vol_umount "$DMNT" &&
	token=$("$SNAPFS" receive "$DST" --resume-token) &&
	"$SNAPFS" send "$MNT" s7 --from s6 --resume "$token" >"$TEST_TMP/rest.stream" &&
	rest=$(stat -c %s "$TEST_TMP/rest.stream") &&
	test "$rest" -lt $((full - 30000000)) &&
	"$SNAPFS" receive "$DST" <"$TEST_TMP/rest.stream" &&
	same_snapshot s7
'

test_expect_success 'send refuses a malformed resume token, and receive says when nothing is unfinished' '
	{ rc=0; "$SNAPFS" send "$MNT" s7 --from s6 --resume 00ff >/dev/null 2>"$REF/err" || rc=$?; } &&
	assert_eq 2 "$rc" && assert_grep "not a resume token" "$REF/err" &&
	{ rc=0; "$SNAPFS" receive "$DST" --resume-token 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "no unfinished receive" "$REF/err"
'

# ---- the property: a full receive of A plus the increments equals each snapshot

test_expect_success 'random changes: full A, then each increment, equals every snapshot' '
	"$SNAPFS" mkfs "$TEST_TMP/r.store" >/dev/null &&
	rm -rf bulk && mkdir rnd &&
	python3 "$(dirname "$TREELIST")/randops.py" rnd 1 120 &&
	"$SNAPFS" snapshot create "$MNT" r0 >/dev/null &&
	"$SNAPFS" send "$MNT" r0 | "$SNAPFS" receive "$TEST_TMP/r.store" &&
	prev=r0 &&
	for i in 1 2 3 4; do
		python3 "$(dirname "$TREELIST")/randops.py" rnd $((i + 1)) 120 &&
		"$SNAPFS" snapshot create "$MNT" r$i >/dev/null &&
		"$SNAPFS" send "$MNT" r$i --from $prev | "$SNAPFS" receive "$TEST_TMP/r.store" &&
		prev=r$i || return 1
	done &&
	DST=$TEST_TMP/r.store &&
	for s in r0 r1 r2 r3 r4; do same_snapshot $s || return 1; done &&
	"$SNAPFS" fsck "$TEST_TMP/r.store" >/dev/null
'

test_done
