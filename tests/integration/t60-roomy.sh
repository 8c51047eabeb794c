#!/bin/bash
# The mount's dirty bound raised while the volume has room (fs/space.c,
# THEORY, ROOMY): on a volume whose room covers 1 GiB of dirty pages and
# more, the mount's bdi may hold 1 GiB; four endless writers fill it, the
# kernel's own bound comes back before the volume is near full, every
# writer still meets ENOSPC at write() with fsync and close succeeding,
# not past df's available space, and after a remount every file holds
# exactly what write() accepted; freeing the space raises the bound again.
# The writers go through the kernel's writeback cache with runs of whole
# blocks and partial blocks cached between them: the fill also guards the
# size noted for a cached block before a run lets go of the file's lock
# (a flush in between dropped it: 64 KiB tails lost, 2026-12-07).
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
test_have_prereq ROOT || { say "# skipping: needs root (only root may raise a mount's dirty bound)"; test_done; }

MiB=$((1024 * 1024))
SIZE_MIB=2600
free_mib=$(( $(stat -f -c '%a' "$TEST_TMP") * $(stat -f -c '%S' "$TEST_TMP") / MiB ))
[ "$free_mib" -gt $((SIZE_MIB + 1024)) ] ||
	{ say "# skipping: needs $((SIZE_MIB + 1024)) MiB free under $TEST_TMP, has $free_mib"; test_done; }
vol_create --size ${SIZE_MIB}M || test_bail "cannot create a volume"

FILL="python3 $TEST_DIR/fill.py"
avail() { echo $(( $(stat -f -c '%a' "$MNT") * $(stat -f -c '%S' "$MNT") )); }
bdi() {
	echo "/sys/class/bdi/$(awk -v m="$MNT" '$5 == m && / - fuse\.snapfs / { d = $3 } END { print d }' /proc/self/mountinfo)"
}
[ -f "$(bdi)/max_bytes" ] ||
	{ say "# skipping: the kernel has no max_bytes for a bdi (Linux 6.2 and later)"; test_done; }

test_expect_success 'with room for 1 GiB of dirty pages, the mount may hold 1 GiB' '
	assert_le $((1000 * MiB)) "$(cat "$(bdi)/max_bytes")" "the raised bound" &&
	assert_eq 0 "$(cat "$(bdi)/min_bytes")" "the share guaranteed before any write"
'

# scattered.py FILE SECONDS: 4 KiB pages of FILE (64 MiB) overwritten at
# random, 256 between fsyncs, for SECONDS
cat >"$TEST_TMP/scattered.py" <<'PY'
import os, random, sys, time
fd, end = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644), time.time() + float(sys.argv[2])
os.ftruncate(fd, 64 << 20)
while time.time() < end:
    for i in range(256):
        os.pwrite(fd, os.urandom(4096), random.randrange(16384) * 4096)
    os.fsync(fd)
os.close(fd)
PY

test_expect_success 'scattered 4 KiB writes get a share of the system'"'"'s dirty pages guaranteed; whole blocks give it back' '
	python3 "$TEST_TMP/scattered.py" scattered 3 &&
	assert_le $((120 * MiB)) "$(cat "$(bdi)/min_bytes")" "the guaranteed share" &&
	assert_grep "writes are scattered: [0-9]* MiB of the dirty bound is guaranteed" "$STORE/daemon.log" &&
	end=$(( $(date +%s) + 3 )) &&
	while [ "$(date +%s)" -lt "$end" ]; do
		dd if=/dev/zero of=whole bs=1M count=32 conv=fsync status=none || return 1
	done &&
	assert_eq 0 "$(cat "$(bdi)/min_bytes")" "the share after whole blocks" &&
	assert_grep "writes are whole blocks: the dirty bound.s guarantee is given back" "$STORE/daemon.log" &&
	rm scattered whole
'

# With the kernel's own small bound (set back by hand: the daemon keeps
# counting 1 GiB), writeback comes in pieces of odd sizes, out of order:
# four writers of 520 MiB, then every byte read back after a remount.
test_expect_success 'four writers under a 48 MiB bound: after a remount every byte is as written' '
	saved=$(cat "$(bdi)/max_ratio_fine") && saved_min=$(cat "$(bdi)/min_bytes") &&
	echo 0 >"$(bdi)/min_bytes" &&
	echo $((48 * MiB)) >"$(bdi)/max_bytes" &&
	$FILL --limit 520M s1 s2 s3 s4 >"$REF/strict" &&
	echo "$saved" >"$(bdi)/max_ratio_fine" &&
	echo "$saved_min" >"$(bdi)/min_bytes" &&
	! grep -v "write=OK fsync=OK close=OK" "$REF/strict" &&
	vol_remount &&
	$FILL --verify s1 s2 s3 s4 >"$REF/strict.got" &&
	cat "$REF/strict.got" &&
	! grep -v "prefix=yes" "$REF/strict.got" &&
	rm s1 s2 s3 s4
'

test_expect_success 'four endless writers get ENOSPC from write(), and the bound is the kernel'"'"'s again' '
	sync && a0=$(avail) &&
	$FILL --limit $((SIZE_MIB * 2))M w1 w2 w3 w4 >"$REF/fill" &&
	cat "$REF/fill" &&
	! grep -v "write=ENOSPC fsync=OK close=OK" "$REF/fill" &&
	w=$(awk "{ split(\$2, a, \"=\"); s += a[2] } END { print s }" "$REF/fill") &&
	say "available before: $a0, written: $w, overshoot: $((w - a0))" &&
	assert_le "$w" $((a0 + 4 * MiB)) "written (past df'"'"'s available)" &&
	assert_le $((a0 * 85 / 100 - MiB)) "$w" "written (85% of df'"'"'s available)" &&
	assert_le "$(cat "$(bdi)/max_bytes")" $((512 * MiB)) "the bound given back" &&
	assert_eq 0 "$(cat "$(bdi)/min_bytes")" "the share given back" &&
	assert_grep "dirty bound is the kernel.s again" "$STORE/daemon.log"
'

test_expect_success REMOUNT 'after a remount every file holds what write() accepted' '
	vol_remount &&
	awk "{ print \$1, \$2 }" "$REF/fill" | sed "s/written=/size=/" >"$REF/want" &&
	$FILL --verify w1 w2 w3 w4 >"$REF/got" &&
	sed "s/ prefix=yes//" "$REF/got" >"$REF/kept" &&
	assert_cmp "$REF/want" "$REF/kept"
'

test_expect_success 'freeing the space raises the bound again' '
	rm w1 w2 w3 w4 && sync &&
	$FILL --limit 1M poke >/dev/null &&
	sleep 1.2 && $FILL --limit 1M poke >/dev/null &&
	sleep 1.2 && $FILL --limit 1M poke >/dev/null &&
	assert_le $((1000 * MiB)) "$(cat "$(bdi)/max_bytes")" "the raised bound"
'

test_done
