#!/bin/bash
# Blocks: content-addressed, deduplicated, compressed, verified.  A damaged
# block reads as EIO (never wrong bytes) and fsck names the file; the same
# data written twice is stored once; zeros and text cost far less than
# their size.  Sizes: make test writes 96 MiB twice and 128 MiB of zeros
# and of text, each several 32 MiB commit batches; SOAK=1 (make soak) the
# full 256 MiB and 1 GiB.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 4G

MiB=$((1024 * 1024))
DEDUP_MIB=96 BIG_MIB=128
[ -n "$SOAK" ] && DEDUP_MIB=256 BIG_MIB=1024
DAMAGE=${SNAPFS_DAMAGE:-$(dirname "$SNAPFS")/snapfs-damage}

# info_field NAME: a number from `snapfs info --json` of the mounted volume.
info_field() {
	"$SNAPFS" info "$MNT" --json |
		python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}

test_expect_success 'a 3-block file of random data is stored in 64 KiB blocks' '
	head -c $((3 * 65536)) /dev/urandom >"$REF/three" &&
	cp "$REF/three" three &&
	cmp three "$REF/three" &&
	assert_eq 3 "$(info_field blocks)"
'

test_expect_success 'a damaged block reads as EIO and the other blocks still read' '
	cd "$TEST_TMP" &&
	vol_umount "$MNT" &&
	"$DAMAGE" "$STORE" /three 65536 &&
	vol_mount "$STORE" "$MNT" &&
	dd if="$MNT/three" of="$REF/b0" bs=65536 count=1 2>/dev/null &&
	head -c 65536 "$REF/three" | cmp - "$REF/b0" &&
	dd if="$MNT/three" of="$REF/b2" bs=65536 skip=2 count=1 2>/dev/null &&
	tail -c 65536 "$REF/three" | cmp - "$REF/b2" &&
	! dd if="$MNT/three" of="$REF/b1" bs=65536 skip=1 count=1 2>"$REF/dd.err" &&
	grep -q "Input/output error" "$REF/dd.err" &&
	! cat "$MNT/three" >/dev/null 2>&1
'

test_expect_success 'fsck of the damaged volume exits 1 and names the damaged file' '
	cd "$TEST_TMP" &&
	vol_umount "$MNT" &&
	rc=0 &&
	{ "$SNAPFS" fsck "$STORE" >"$REF/fsck.out" 2>"$REF/fsck.err" || rc=$?; } &&
	cat "$REF/fsck.out" &&
	assert_eq 1 "$rc" &&
	grep -q "^/three: block 1 is damaged" "$REF/fsck.out" &&
	grep -q "problem" "$REF/fsck.err" &&
	vol_mount "$STORE" "$MNT"
'

test_expect_success 'removing the damaged file makes fsck clean again' '
	rm "$MNT/three" &&
	cd "$TEST_TMP" && vol_umount "$MNT" &&
	"$SNAPFS" fsck "$STORE" &&
	vol_mount "$STORE" "$MNT"
'

test_expect_success "the same $DEDUP_MIB MiB written twice under two names is stored once" '
	head -c $((DEDUP_MIB * MiB)) /dev/urandom >"$REF/big" &&
	cp "$REF/big" one &&
	p1=$(info_field physical_bytes) &&
	cp "$REF/big" two &&
	p2=$(info_field physical_bytes) &&
	say "physical after one copy: $p1, after two: $p2" &&
	assert_le $((DEDUP_MIB * MiB)) "$p1" "random data does not compress" &&
	assert_le $((p2 - p1)) $((1 * MiB)) "the second copy costs under 1 MiB" &&
	python3 -c "import sys; sys.exit(0 if $(info_field dedup_ratio) >= 1.9 else 1)" &&
	cmp one "$REF/big" && cmp two "$REF/big" &&
	rm one two && rm "$REF/big"
'

test_expect_success 'deleting both copies frees their space' '
	sync &&
	for i in $(seq 50); do
		[ "$(info_field physical_bytes)" -le $((1 * MiB)) ] && break
		sleep 0.2
	done &&
	assert_le "$(info_field physical_bytes)" $((1 * MiB))
'

test_expect_success "$BIG_MIB MiB of zeros costs almost nothing (holes)" '
	dd if=/dev/zero of=zeros bs=1M count=$BIG_MIB 2>/dev/null &&
	assert_eq $((BIG_MIB * MiB)) "$(stat -c %s zeros)" &&
	assert_le "$(info_field physical_bytes)" $((1 * MiB)) &&
	assert_le "$(stat -c %b zeros)" 8 "st_blocks of an all-zero file" &&
	cmp zeros /dev/zero 2>&1 | grep -q EOF
'

test_expect_success "$BIG_MIB MiB of text costs well under half of it (compression)" '
	rm zeros &&
	seq 1 200000000 | head -c $((BIG_MIB * MiB)) >text &&
	assert_eq $((BIG_MIB * MiB)) "$(stat -c %s text)" &&
	p=$(info_field physical_bytes) &&
	say "$BIG_MIB MiB of text is stored in $p bytes" &&
	assert_le "$p" $((BIG_MIB * 400 / 1024 * MiB)) &&
	seq 1 200000000 | head -c $((BIG_MIB * MiB)) | cmp - text &&
	rm text
'

test_expect_success 'a volume made with --compress none stores text as it is' '
	cd "$TEST_TMP" &&
	"$SNAPFS" mkfs "$TEST_TMP/raw.store" --size 1G --compress none >/dev/null &&
	mkdir -p "$TEST_TMP/raw.mnt" &&
	vol_mount "$TEST_TMP/raw.store" "$TEST_TMP/raw.mnt" &&
	seq 1 5000000 | head -c $((16 * MiB)) >"$TEST_TMP/raw.mnt/text" &&
	p=$("$SNAPFS" info "$TEST_TMP/raw.mnt" --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"physical_bytes\"])") &&
	assert_eq $((16 * MiB)) "$p" &&
	vol_umount "$TEST_TMP/raw.mnt"
'

test_done
