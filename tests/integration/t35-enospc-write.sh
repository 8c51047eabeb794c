#!/bin/bash
# ENOSPC at write() (issue 14, part 1): writers that never stop get ENOSPC
# from write() itself, not past df's available space, with and without
# the kernel's writeback cache, one writer and eight at once; fsync and
# close then succeed (nothing write() accepted was lost), and after a
# remount every file is exactly what its writer wrote (fill.py --verify).
# Near full, new O_WRONLY opens get direct I/O and use the volume to its
# last block; the mount's dirty limit is lowered near full and given back
# once space is freed, and is untouched while the volume has room (the
# bound raised with more room is t60).
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
test_have_prereq ROOT || { say "# skipping: needs root (only a daemon run by root may lower the mount's dirty limit, which the bounds asserted here rely on)"; test_done; }

MiB=$((1024 * 1024))
FILL="python3 $TEST_DIR/fill.py"
SIZE=256M
vol_create --size $SIZE || test_bail "cannot create a volume"

avail() { echo $(( $(stat -f -c '%a' "$MNT") * $(stat -f -c '%S' "$MNT") )); }
# the mount's bdi, whose dirty limit space.c lowers near full
bdi() {
	echo "/sys/class/bdi/$(awk -v m="$MNT" '$5 == m && / - fuse\.snapfs / { d = $3 } END { print d }' /proc/self/mountinfo)"
}
# fresh [MOUNT OPTIONS]: a new, empty volume on $MNT
fresh() {
	cd "$TEST_TMP" && vol_umount "$MNT" && rm -rf "$STORE" &&
	"$SNAPFS" mkfs "$STORE" --size $SIZE >/dev/null &&
	SNAPFS_MOUNT_OPTS=$1 vol_mount "$STORE" "$MNT" && cd "$MNT"
}
# endless NAME FILL-ARGS...: fill until write() fails; every writer must
# have met ENOSPC at write() with fsync and close succeeding, all of them
# together at most 4 MiB past what df said was available, and at least
# 85% of it less 1 MiB (a block costs its bytes and a page of header; a
# write is refused whole).
endless() {
	local name=$1 a0 w
	shift
	sync && a0=$(avail) &&
	$FILL --limit 600M "$@" >"$REF/$name" || return 1	# 600M: not endless
	cat "$REF/$name" &&
	! grep -v "write=ENOSPC fsync=OK close=OK" "$REF/$name" || return 1
	w=$(awk '{ split($2, a, "="); s += a[2] } END { print s }' "$REF/$name")
	say "available before: $a0, written: $w, overshoot: $((w - a0))"
	assert_le "$w" $((a0 + 4 * MiB)) "written (past df's available)" &&
	assert_le $((a0 * 85 / 100 - MiB)) "$w" "written (85% of df's available)"
}
# kept NAME: after a remount each file of fill NAME holds what write()
# accepted, exactly
kept() {
	vol_remount &&
	awk '{ print $1, $2 }' "$REF/$1" | sed "s/written=/size=/" >"$REF/$1.want" &&
	$FILL --verify $(awk '{ print $1 }' "$REF/$1") >"$REF/$1.got" &&
	sed "s/ prefix=yes//" "$REF/$1.got" >"$REF/$1.kept" &&
	assert_cmp "$REF/$1.want" "$REF/$1.kept"
}

test_expect_success 'with room, the dirty limit of the mount is the kernel'"'"'s' '
	bdi=$(bdi) && test -d "$bdi" &&
	cat "$bdi/max_ratio_fine" >"$REF/ratio.mounted" &&
	rand_file "$REF/r" $((8 * MiB)) && cp "$REF/r" r && sync &&
	assert_eq "$(cat "$REF/ratio.mounted")" "$(cat "$bdi/max_ratio_fine")" &&
	rm r
'

test_expect_success 'one endless writer (writeback cache) gets ENOSPC from write()' '
	endless one w1
'

test_expect_success 'near full, the mount'"'"'s dirty limit is lowered' '
	assert_le "$(cat "$(bdi)/max_bytes")" $((3 * MiB)) "the dirty limit (2 MiB as a ratio)"
'

test_expect_success 'near full, a new O_WRONLY writer gets direct I/O and uses the rest' '
	endless direct --chunk 64K d1 &&
	sync && assert_le "$(avail)" $((256 * 1024)) "available at the end"
'

test_expect_success REMOUNT 'after a remount every file holds what write() accepted' '
	kept one && kept direct
'

test_expect_success 'freeing space gives the mount its dirty limit back' '
	rm w1 d1 && sync &&
	$FILL --limit 1M poke >/dev/null &&	# an open: the daemon measures

	assert_eq "$(cat "$REF/ratio.mounted")" "$(cat "$(bdi)/max_ratio_fine")"
'

test_expect_success 'eight endless writers (writeback cache) get ENOSPC from write()' '
	fresh &&
	endless eight w1 w2 w3 w4 w5 w6 w7 w8
'

test_expect_success REMOUNT 'after a remount the eight files hold what write() accepted' '
	kept eight
'

test_expect_success 'eight endless O_RDWR writers (never direct I/O) get ENOSPC from write()' '
	fresh &&
	endless rdwr --rdwr w1 w2 w3 w4 w5 w6 w7 w8 &&
	kept rdwr
'

test_expect_success 'one endless writer without the writeback cache gets ENOSPC from write()' '
	fresh no_writeback_cache &&
	endless nowb1 w1 &&
	kept nowb1
'

test_expect_success 'eight endless writers without the writeback cache get ENOSPC from write()' '
	fresh no_writeback_cache &&
	endless nowb8 w1 w2 w3 w4 w5 w6 w7 w8 &&
	kept nowb8
'

test_done
