#!/bin/bash
# Snapshots: create, list, rename and delete on a mounted volume (through
# the control socket) and an unmounted one (on the store); the reclaim
# estimate equals, to the byte, what the delete then frees, for single
# snapshots, non-adjacent sets, ranges and all but the newest, with blocks
# deduplicated between files and between snapshots; bad names and unknown
# snapshots are refused and change nothing.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 1G

KiB=1024
phys() { "$SNAPFS" info "$MNT" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['physical_bytes'])"; }
reclaim() { "$SNAPFS" snapshot reclaim "$MNT" "$@" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['physical_bytes'])"; }
# blocks N SEED: N distinct 64 KiB random blocks, the same for the same SEED
blocks() { python3 -c "import random,sys; r=random.Random($2); sys.stdout.buffer.write(bytes(r.getrandbits(8) for _ in range($1*65536)))"; }

# expect_exact SNAP...: the estimate for deleting SNAP... equals what the delete frees
expect_exact() {
	local est before after
	est=$(reclaim "$@") && before=$(phys) &&
	"$SNAPFS" snapshot delete "$MNT" "$@" >/dev/null &&
	after=$(phys) &&
	say "estimate $est, freed $((before - after)) for: $*" &&
	assert_eq "$est" "$((before - after))"
}

test_expect_success 'a snapshot holds every write acknowledged before the command, unsynced or not' '
	blocks 8 1 >a &&
	"$SNAPFS" snapshot create "$MNT" s1 &&
	rm a &&
	assert_eq $((8 * 64 * KiB)) "$(reclaim s1)"
'

test_expect_success 'snapshot list shows names in order of creation, with unique bytes' '
	blocks 4 2 >b &&
	"$SNAPFS" snapshot create "$MNT" s2 &&
	assert_eq "s1 s2" "$(snaps)" &&
	"$SNAPFS" snapshot list "$MNT" >"$REF/list" &&
	grep -q "^s1 .* 512.00 KiB no  *-$" "$REF/list"
'

test_expect_success 'deleting one snapshot frees exactly its estimate' '
	expect_exact s1 &&
	assert_eq "s2" "$(snaps)"
'

test_expect_success 'blocks shared between files and snapshots are freed only with their last reference' '
	blocks 6 3 >c1 && cp c1 c2 &&
	"$SNAPFS" snapshot create "$MNT" t1 &&
	rm c1 &&
	"$SNAPFS" snapshot create "$MNT" t2 &&
	rm c2 &&
	"$SNAPFS" snapshot create "$MNT" t3 &&
	assert_eq 0 "$(reclaim t1)" "t2 still holds the shared blocks" &&
	assert_eq 0 "$(reclaim t2)" "t1 still holds them" &&
	assert_eq $((6 * 64 * KiB)) "$(reclaim t1 t2)" &&
	expect_exact t1 t2
'

test_expect_success 'non-adjacent sets, ranges and all but the newest are exact' '
	for i in 1 2 3 4 5 6; do
		blocks 2 $((10 + i)) >"g$i" &&
		blocks 1 3 >"dup$i" &&
		"$SNAPFS" snapshot create "$MNT" "u$i" &&
		rm "g$i" || exit 1
		[ $i -gt 2 ] && rm -f "dup$((i - 2))"
	done &&
	expect_exact u2 u4 &&
	expect_exact u1 u3 u5 &&
	"$SNAPFS" snapshot create "$MNT" newest &&
	expect_exact $(snaps | tr " " "\n" | grep -v "^newest$") &&
	assert_eq "newest" "$(snaps)"
'

test_expect_success 'rename keeps the snapshot and its contents' '
	blocks 3 40 >r && "$SNAPFS" snapshot create "$MNT" before-rename && rm r &&
	"$SNAPFS" snapshot rename "$MNT" before-rename after-rename &&
	assert_eq "newest after-rename" "$(snaps)" &&
	assert_eq $((3 * 64 * KiB)) "$(reclaim after-rename)"
'

test_expect_success 'bad names, duplicates and unknown snapshots are refused with one message' '
	listing=$(snaps) &&
	for bad in "a/b" "." ".." "$(printf "%0256d" 0)"; do
		! "$SNAPFS" snapshot create "$MNT" "$bad" 2>"$REF/err" &&
		assert_one_line "$REF/err" && grep -q "not a valid snapshot name" "$REF/err" || exit 1
	done &&
	! "$SNAPFS" snapshot create "$MNT" newest 2>"$REF/err" &&
	grep -q "already exists" "$REF/err" &&
	! "$SNAPFS" snapshot delete "$MNT" newest nope 2>"$REF/err" &&
	assert_one_line "$REF/err" && grep -q "no snapshot named .nope." "$REF/err" &&
	! "$SNAPFS" snapshot rename "$MNT" nope x 2>"$REF/err" &&
	! "$SNAPFS" snapshot rename "$MNT" newest after-rename 2>"$REF/err" &&
	grep -q "already exists" "$REF/err" &&
	! "$SNAPFS" snapshot frobnicate "$MNT" 2>"$REF/err" &&
	assert_one_line "$REF/err" &&
	assert_eq "$listing" "$(snaps)"
'

test_expect_success 'snapshot commands work on an unmounted volume too' '
	cd "$TEST_TMP" && vol_umount "$MNT" &&
	"$SNAPFS" snapshot create "$STORE" offline1 &&
	"$SNAPFS" snapshot list "$STORE" | grep -q "^offline1 " &&
	"$SNAPFS" snapshot rename "$STORE" offline1 offline2 &&
	"$SNAPFS" snapshot delete "$STORE" offline2 &&
	! "$SNAPFS" snapshot list "$STORE" | grep -q offline &&
	"$SNAPFS" fsck "$STORE" &&
	vol_mount "$STORE" "$MNT"
'

test_expect_success 'a held snapshot cannot be deleted; the refusal names its holds' '
	blocks 2 50 >held && "$SNAPFS" snapshot create "$MNT" kept && rm held &&
	"$SNAPFS" snapshot hold "$MNT" kept nightly-dump &&
	"$SNAPFS" snapshot hold "$MNT" kept mirror-update &&
	assert_eq "mirror-update, nightly-dump" "$("$SNAPFS" snapshot holds "$MNT" kept)" &&
	"$SNAPFS" snapshot list "$MNT" | grep -q "^kept .* yes  *-$" &&
	before=$(phys) &&
	! "$SNAPFS" snapshot delete "$MNT" kept 2>"$REF/err" &&
	assert_one_line "$REF/err" &&
	grep -q "held by mirror-update, nightly-dump" "$REF/err" &&
	assert_eq "$before" "$(phys)" &&
	assert_eq $((2 * 64 * KiB)) "$(reclaim kept)" "estimates still work on held snapshots"
'

test_expect_success 'holds are refused twice, released once, and then the delete frees the estimate' '
	! "$SNAPFS" snapshot hold "$MNT" kept nightly-dump 2>"$REF/err" &&
	grep -q "already has the hold" "$REF/err" &&
	"$SNAPFS" snapshot release "$MNT" kept nightly-dump &&
	! "$SNAPFS" snapshot release "$MNT" kept nightly-dump 2>"$REF/err" &&
	grep -q "has no hold" "$REF/err" &&
	! "$SNAPFS" snapshot delete "$MNT" kept 2>/dev/null &&
	"$SNAPFS" snapshot release "$MNT" kept mirror-update &&
	expect_exact kept
'

test_expect_success 'only root or the volume owner may use the control socket' '
	! as_nobody "$SNAPFS" snapshot create "$STORE" byothers 2>"$REF/err" &&
	! "$SNAPFS" snapshot list "$MNT" | grep -q byothers
'

test_done
