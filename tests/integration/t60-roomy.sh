#!/bin/bash
# The strict dirty limit off while the volume has room (fs/space.c,
# THEORY, ROOMY): on a volume whose room covers all the system may hold
# dirty, the mount's bdi has no strict limit; four endless writers fill
# it, the limit comes back on before the volume is near full, every
# writer still meets ENOSPC at write() with fsync and close succeeding,
# not past df's available space, and after a remount every file holds
# exactly what write() accepted.  The volume is sized from the system's
# own dirty threshold (/proc/vmstat: no knob can stand in for it, since
# the kernel bounds the mount by the real one), so this writes about a
# third of the machine's memory and more.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
test_have_prereq ROOT || { say "# skipping: needs root (only root may turn a mount's strict dirty limit off)"; test_done; }

MiB=$((1024 * 1024))
GiB=$((1024 * MiB))
threshold=$(awk '$1 == "nr_dirty_threshold" { print $2 * 4096 }' /proc/vmstat)
[ -n "$threshold" ] && [ "$threshold" -gt 0 ] ||
	{ say "# skipping: /proc/vmstat has no nr_dirty_threshold"; test_done; }
# space.c's floor: the threshold and a quarter, at 8 KiB per 64 KiB block,
# and the margins; the volume has 1.5 GiB more.
floor=$((threshold / 4 * 5 * 9 / 8 + 64 * MiB))
size_mib=$(( (floor + 3 * GiB / 2) / MiB ))
free_mib=$(( $(stat -f -c '%a' "$TEST_TMP") * $(stat -f -c '%S' "$TEST_TMP") / MiB ))
[ "$free_mib" -gt $((size_mib + 2048)) ] ||
	{ say "# skipping: needs $((size_mib + 2048)) MiB free under $TEST_TMP, has $free_mib"; test_done; }
say "# system dirty threshold $((threshold / MiB)) MiB: a volume of $size_mib MiB"
vol_create --size ${size_mib}M || test_bail "cannot create a volume"

FILL="python3 $TEST_DIR/fill.py"
avail() { echo $(( $(stat -f -c '%a' "$MNT") * $(stat -f -c '%S' "$MNT") )); }
bdi() {
	echo "/sys/class/bdi/$(awk -v m="$MNT" '$5 == m && / - fuse\.snapfs / { d = $3 } END { print d }' /proc/self/mountinfo)"
}
[ -f "$(bdi)/strict_limit" ] ||
	{ say "# skipping: the kernel has no strict_limit for a bdi (Linux 6.2 and later)"; test_done; }

test_expect_success 'with room for all the system may hold dirty, the mount has no strict dirty limit' '
	assert_eq 0 "$(cat "$(bdi)/strict_limit")"
'

test_expect_success 'four endless writers get ENOSPC from write(), and the strict limit is back on' '
	sync && a0=$(avail) &&
	$FILL --limit $((size_mib * 2))M w1 w2 w3 w4 >"$REF/fill" &&
	cat "$REF/fill" &&
	! grep -v "write=ENOSPC fsync=OK close=OK" "$REF/fill" &&
	w=$(awk "{ split(\$2, a, \"=\"); s += a[2] } END { print s }" "$REF/fill") &&
	say "available before: $a0, written: $w, overshoot: $((w - a0))" &&
	assert_le "$w" $((a0 + 4 * MiB)) "written (past df'"'"'s available)" &&
	assert_le $((a0 * 85 / 100 - MiB)) "$w" "written (85% of df'"'"'s available)" &&
	assert_eq 1 "$(cat "$(bdi)/strict_limit")" &&
	assert_grep "strict dirty limit is on again" "$STORE/daemon.log"
'

test_expect_success REMOUNT 'after a remount every file holds what write() accepted' '
	vol_remount &&
	awk "{ print \$1, \$2 }" "$REF/fill" | sed "s/written=/size=/" >"$REF/want" &&
	$FILL --verify w1 w2 w3 w4 >"$REF/got" &&
	sed "s/ prefix=yes//" "$REF/got" >"$REF/kept" &&
	assert_cmp "$REF/want" "$REF/kept"
'

test_expect_success 'freeing the space turns the strict limit off again' '
	rm w1 w2 w3 w4 && sync &&
	$FILL --limit 1M poke >/dev/null &&
	sleep 1.2 && $FILL --limit 1M poke >/dev/null &&
	assert_eq 0 "$(cat "$(bdi)/strict_limit")"
'

test_done
