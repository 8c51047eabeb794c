#!/bin/bash
# Snapshot reserve and autodelete (issue 14, part 4).  snapshot-reserve=N%
# is space only snapshots may use: df shows the rest as the volume, data
# deleted under a snapshot moves into the reserve, and writes cannot use
# the part snapshots leave free.  snapshot-autodelete=on deletes the
# oldest snapshots when the volume is full (trigger volume) while a writer
# runs, so the writer goes on; held snapshots, the newest dump's snapshot
# and a destination's newest received snapshot stay; each deletion is
# logged.  With trigger reserve, snapshots that outgrow their reserve are
# deleted, oldest first, until the target is free.  A store from before
# the ledger of what snapshots hold has it counted at its first mount.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }

export SNAPFS_POLICY_TICK_MS=50	# autodelete's ticks too
MiB=$((1024 * 1024))
SIZE=$((256 * MiB))
FILL="python3 $TEST_DIR/fill.py"
DAMAGE=${SNAPFS_DAMAGE:-$(dirname "$SNAPFS")/snapfs-damage}
vol_create --size 256M || test_bail "cannot create a volume"

avail() { echo $(( $(stat -f -c '%a' "$MNT") * $(stat -f -c '%S' "$MNT") )); }
dfsize() { echo $(( $(stat -f -c '%b' "$MNT") * $(stat -f -c '%S' "$MNT") )); }
info_json() { "$SNAPFS" info "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }
# fresh: a new, empty volume on $MNT
fresh() {
	cd "$TEST_TMP" && vol_umount "$MNT" && rm -rf "$STORE" &&
	"$SNAPFS" mkfs "$STORE" --size 256M >/dev/null &&
	vol_mount "$STORE" "$MNT" && cd "$MNT"
}
# wait_log PATTERN: until the daemon's log has it (30 s)
wait_log() {
	local i
	for i in $(seq 300); do
		grep -q -e "$1" "$STORE/daemon.log" 2>/dev/null && return 0
		sleep 0.1
	done
	assert_grep "$1" "$STORE/daemon.log"
}

test_expect_success 'bad reserve and autodelete values are refused, nothing set' '
	for bad in snapshot-reserve=91% snapshot-reserve=20 snapshot-reserve=-1% \
	           snapshot-reserve=x% snapshot-autodelete=yes \
	           snapshot-autodelete-trigger=space snapshot-autodelete-target=0%; do
		assert_fails "$SNAPFS" set "$MNT" "$bad" 2>"$REF/err" &&
		assert_one_line "$REF/err" &&
		assert_grep "is not allowed" "$REF/err" || exit 1
	done &&
	assert_eq 0% "$("$SNAPFS" get "$MNT" snapshot-reserve)" &&
	assert_eq off "$("$SNAPFS" get "$MNT" snapshot-autodelete)"
'

test_expect_success 'snapshot-reserve=25%: df shows the live tree'"'"'s three quarters' '
	a0=$(avail) &&
	"$SNAPFS" set "$MNT" snapshot-reserve=25% >/dev/null &&
	assert_eq 25% "$("$SNAPFS" get "$MNT" snapshot-reserve)" &&
	assert_eq $((SIZE * 75 / 100)) "$(dfsize)" &&
	assert_le "$(avail)" $((a0 - 63 * MiB)) "available, less the reserve"
'

test_expect_success 'data deleted under a snapshot moves into the reserve' '
	a0=$(avail) &&
	rand_file "$REF/f" $((40 * MiB)) && cp "$REF/f" f && sync &&
	a1=$(avail) &&
	assert_le $((a1 + 40 * MiB)) "$a0" "writing 40 MiB takes 40 MiB" &&
	"$SNAPFS" snapshot create "$MNT" s1 >/dev/null &&
	rm f && sync &&
	a2=$(avail) &&
	assert_le $((a0 - 2 * MiB)) "$a2" "the reserve holds it: available as before" &&
	snap=$(info_json "$MNT" snapshot_bytes) &&
	assert_le $((40 * MiB)) "$snap" "snapshots hold the file" &&
	assert_cmp "$REF/f" .snapshot/s1/f
'

test_expect_success 'writes cannot use the reserve that snapshots leave free' '
	$FILL --limit 600M w >"$REF/w" && cat "$REF/w" &&
	assert_grep "write=ENOSPC fsync=OK close=OK" "$REF/w" &&
	w=$(sed "s/.*written=\([0-9]*\).*/\1/" "$REF/w") &&
	assert_le "$w" $((175 * MiB)) "written: the live share (192 MiB of pages) at most" &&
	rm w && "$SNAPFS" snapshot delete "$MNT" s1 >/dev/null
'

test_expect_success REMOUNT 'the reserve is kept in the store (remount, offline get)' '
	vol_remount &&
	assert_eq $((SIZE * 75 / 100)) "$(dfsize)" &&
	cd "$TEST_TMP" && vol_umount "$MNT" &&
	assert_eq 25% "$("$SNAPFS" get "$STORE" snapshot-reserve)" &&
	"$SNAPFS" set "$STORE" snapshot-reserve=0% >/dev/null &&
	vol_mount "$STORE" "$MNT" &&
	assert_eq "$SIZE" "$(dfsize)"
'

test_expect_success 'a store from before the ledger has it counted at its first mount' '
	rand_file f $((10 * MiB)) && "$SNAPFS" snapshot create "$MNT" old >/dev/null &&
	rm f && sync &&
	want=$(info_json "$MNT" snapshot_bytes) &&
	assert_le $((10 * MiB)) "$want" &&
	cd "$TEST_TMP" && vol_umount "$MNT" &&
	$DAMAGE "$STORE" --unledger &&
	assert_eq 0 "$(info_json "$STORE" snapshot_bytes)" &&
	"$SNAPFS" fsck "$STORE" >/dev/null &&
	vol_mount "$STORE" "$MNT" 2>"$REF/mount.err" &&
	assert_grep "counted what only snapshots hold (once" "$REF/mount.err" &&
	assert_eq "$want" "$(info_json "$MNT" snapshot_bytes)" &&
	vol_umount "$MNT" && "$SNAPFS" fsck "$STORE" >/dev/null &&
	vol_mount "$STORE" "$MNT" 2>"$REF/mount.err" &&
	assert_eq "" "$(cat "$REF/mount.err")"
'

test_expect_success 'autodelete (volume full): the writer goes on, the oldest snapshots go' '
	fresh &&
	echo small >small && "$SNAPFS" snapshot create "$MNT" s0 >/dev/null &&
	"$SNAPFS" dump -0 --snapshot s0 -f "$REF/s0.dump" "$MNT" 2>/dev/null &&
	for i in 1 2 3; do
		rand_file f$i $((50 * MiB)) &&
		"$SNAPFS" snapshot create "$MNT" s$i >/dev/null &&
		rm f$i || exit 1
	done &&
	"$SNAPFS" snapshot hold "$MNT" s2 keep >/dev/null &&
	"$SNAPFS" set "$MNT" snapshot-autodelete=on >/dev/null &&
	sync && a0=$(avail) &&
	$FILL w >"$REF/w" && cat "$REF/w" &&
	assert_grep "write=ENOSPC fsync=OK close=OK" "$REF/w" &&
	w=$(sed "s/.*written=\([0-9]*\).*/\1/" "$REF/w") &&
	assert_le $((a0 + 60 * MiB)) "$w" "the writer went on past what was available" &&
	assert_eq "s0 s2" "$(snaps)" &&
	assert_grep "autodelete: deleted snapshot s1 (volume full: " "$STORE/daemon.log" &&
	assert_grep "autodelete: deleted snapshot s3 (volume full: " "$STORE/daemon.log" &&
	assert_grep "autodelete: no snapshot may be deleted" "$STORE/daemon.log" &&
	assert_eq 2 "$(grep -c "autodelete: deleted" "$STORE/daemon.log")"
'

test_expect_success REMOUNT 'after autodelete the files and the kept snapshots are intact' '
	vol_remount &&
	$FILL --verify w >"$REF/v" && cat "$REF/v" &&
	assert_grep "w size=$(sed "s/.*written=\([0-9]*\).*/\1/" "$REF/w") prefix=yes" "$REF/v" &&
	assert_eq small "$(cat .snapshot/s0/small)" &&
	assert_eq $((50 * MiB)) "$(stat -c %s .snapshot/s2/f2)"
'

test_expect_success 'autodelete (reserve): snapshots past their reserve go, oldest first' '
	rm w && sync &&
	"$SNAPFS" snapshot release "$MNT" s2 keep >/dev/null &&
	"$SNAPFS" snapshot delete "$MNT" s2 >/dev/null &&
	for i in 4 5 6; do
		rand_file f$i $((25 * MiB)) &&
		"$SNAPFS" snapshot create "$MNT" s$i >/dev/null &&
		rm f$i || exit 1
	done &&
	"$SNAPFS" set "$MNT" snapshot-reserve=20% snapshot-autodelete-trigger=reserve >/dev/null &&
	wait_log "autodelete: deleted snapshot s5 (snapshots hold " &&
	assert_eq "s0 s6" "$(snaps)" &&
	grep "autodelete: deleted snapshot s4 (snapshots hold " "$STORE/daemon.log"
'

test_expect_success 'autodelete keeps a destination'"'"'s newest received snapshot' '
	cd "$TEST_TMP" && vol_umount "$MNT" && rm -rf "$STORE" &&
	"$SNAPFS" mkfs "$STORE" --size 256M >/dev/null &&
	SRC=$TEST_TMP/src && "$SNAPFS" mkfs "$SRC" --size 1G >/dev/null &&
	vol_mount "$SRC" "$TEST_TMP/srcmnt" &&
	rand_file "$TEST_TMP/srcmnt/a" $((40 * MiB)) &&
	"$SNAPFS" snapshot create "$TEST_TMP/srcmnt" r1 >/dev/null &&
	rm "$TEST_TMP/srcmnt/a" &&
	rand_file "$TEST_TMP/srcmnt/b" $((40 * MiB)) &&
	"$SNAPFS" snapshot create "$TEST_TMP/srcmnt" r2 >/dev/null &&
	"$SNAPFS" send "$TEST_TMP/srcmnt" r1 | "$SNAPFS" receive "$STORE" &&
	"$SNAPFS" send "$TEST_TMP/srcmnt" r2 --from r1 | "$SNAPFS" receive "$STORE" &&
	vol_umount "$TEST_TMP/srcmnt" &&
	"$SNAPFS" mirror break "$STORE" >/dev/null &&
	"$SNAPFS" set "$STORE" snapshot-autodelete=on >/dev/null &&
	vol_mount "$STORE" "$MNT" && cd "$MNT" &&
	rm b && $FILL w >"$REF/w" && cat "$REF/w" &&
	assert_grep "write=ENOSPC" "$REF/w" &&
	assert_eq r2 "$(snaps)" &&
	assert_grep "autodelete: deleted snapshot r1 " "$STORE/daemon.log" &&
	assert_grep "autodelete: no snapshot may be deleted" "$STORE/daemon.log"
'

test_done
