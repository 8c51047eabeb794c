#!/bin/bash
# Upgrades and format versions.  The committed fixtures (tests/fixtures: a
# format-1 store, a stream and a dump as the snapfs of format 1 wrote
# them) are read by this snapfs: the store upgrades to format 2 in place,
# its snapshots and live tree listing as they did; the stream receives;
# the dump restores with snapfs restore and Linux restore.  upgrade
# --check reads the whole store and changes nothing; kill -9 after any
# transaction of an upgrade leaves format 1 (marked, opened by nothing
# but the upgrade) or format 2, never a mix, and running it again
# finishes.  A store, a stream, a dump or a vault of a newer version, and
# a store with a feature this snapfs does not know, are refused with one
# message naming both versions (or the feature), nothing changed.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
DAMAGE=${SNAPFS_DAMAGE:-$(dirname "$SNAPFS")/snapfs-damage}
FIX=$(cd "$TEST_DIR/../fixtures" && pwd)
V1=$TEST_TMP/v1.store		# the fixture as committed, never written
cp -a "$FIX/format1.store" "$V1"

# listing DIR OUT [TREELIST OPTIONS]: the fixtures' listing form of a tree
listing() {
	local dir=$1 out=$2
	shift 2
	python3 "$TEST_DIR/treelist.py" "$dir" --usec --skip-xattr trusted.snapfs.qtree "$@" >"$out"
}
# untouched STORE: names, sizes, mtimes and contents of the store's files
# but LMDB's lock file (its reader table is LMDB's scratch space)
untouched() { (cd "$1" && find . -name lock.mdb -prune -o -printf '%p %s %T@\n' | sort &&
	       sha256sum data.mdb); }
# json FILE FIELD: a field of a JSON object
json() { python3 -c 'import json,sys; v = json.load(open(sys.argv[1]))[sys.argv[2]]; print(json.dumps(v) if isinstance(v, (list, dict, bool)) else v)' "$1" "$2"; }
# refused EXIT PATTERN COMMAND...: the command exits EXIT with one line on
# stderr matching PATTERN
refused() {
	local want=$1 pat=$2 rc=0
	shift 2
	"$@" >"$REF/out" 2>"$REF/err" || rc=$?
	assert_eq "$want" "$rc" "exit of $*" && assert_one_line "$REF/err" &&
	assert_grep "$pat" "$REF/err"
}

test_expect_success 'the committed format-1 store opens as it is: format 1, fsck clean, its snapshots' '
	"$SNAPFS" info "$V1" --json >"$REF/info" &&
	assert_eq 1 "$(json "$REF/info" format)" &&
	assert_eq "[]" "$(json "$REF/info" features)" &&
	"$SNAPFS" fsck "$V1" &&
	"$SNAPFS" snapshot list "$V1" --json >"$REF/snaps" &&
	assert_grep "\"s1\"" "$REF/snaps" && assert_grep "\"s2\"" "$REF/snaps"
'

test_expect_success 'this snapfs mounts and writes a format-1 store as it is: it stays format 1' '
	cp -a "$V1" "$TEST_TMP/w1.store" &&
	vol_mount "$TEST_TMP/w1.store" "$TEST_TMP/w1" &&
	listing "$TEST_TMP/w1/.snapshot/s2" "$REF/w1.s2.list" &&
	assert_cmp "$FIX/format1.s2.list" "$REF/w1.s2.list" &&
	echo "written in format 1" >"$TEST_TMP/w1/new.txt" &&
	"$SNAPFS" snapshot create "$TEST_TMP/w1" s3 >/dev/null &&
	vol_umount "$TEST_TMP/w1" &&
	"$SNAPFS" info "$TEST_TMP/w1.store" --json >"$REF/info" &&
	assert_eq 1 "$(json "$REF/info" format)" &&
	"$SNAPFS" fsck "$TEST_TMP/w1.store" &&
	vol_mount "$TEST_TMP/w1.store" "$TEST_TMP/w1" &&
	assert_eq "written in format 1" "$(cat "$TEST_TMP/w1/.snapshot/s3/new.txt")" &&
	vol_umount "$TEST_TMP/w1"
'

test_expect_success 'upgrade --check reads the whole store, says it is ready, and changes nothing' '
	cp -a "$V1" "$STORE" &&
	untouched "$STORE" >"$REF/before" &&
	"$SNAPFS" upgrade --check "$STORE" >"$REF/out" &&
	assert_grep "format 1, this snapfs writes format 2: ready to upgrade" "$REF/out" &&
	assert_grep "step: write the features record (ledger ro-compat) and format 2" "$REF/out" &&
	assert_grep "needs: up to .* more on the filesystem holding the store (.* free), about" "$REF/out" &&
	assert_grep "checked: 0 problems found by reading the whole store" "$REF/out" &&
	"$SNAPFS" upgrade --check "$STORE" --json >"$REF/check" &&
	assert_eq 1 "$(json "$REF/check" format)" &&
	assert_eq 2 "$(json "$REF/check" target)" &&
	assert_eq true "$(json "$REF/check" ready)" &&
	assert_eq "[]" "$(json "$REF/check" reasons)" &&
	assert_eq 0 "$(json "$REF/check" problems)" &&
	assert_le 1 "$(json "$REF/check" records)" &&
	untouched "$STORE" | assert_cmp "$REF/before" -
'

test_expect_success 'upgrade turns it into format 2 in place; every snapshot and the live tree list as committed' '
	"$SNAPFS" upgrade "$STORE" >"$REF/out" &&
	assert_grep "upgraded from format 1 to 2" "$REF/out" &&
	"$SNAPFS" info "$STORE" --json >"$REF/info" &&
	assert_eq 2 "$(json "$REF/info" format)" &&
	assert_eq "[\"ledger\"]" "$(json "$REF/info" features)" &&
	"$SNAPFS" fsck "$STORE" &&
	vol_mount "$STORE" "$MNT" &&
	for v in s1 s2; do
		listing "$MNT/.snapshot/$v" "$REF/$v.list" &&
		assert_cmp "$FIX/format1.$v.list" "$REF/$v.list" || exit 1
	done &&
	listing "$MNT" "$REF/live.list" &&
	assert_cmp "$FIX/format1.live.list" "$REF/live.list" &&
	echo "written after the upgrade" >"$MNT/after.txt" &&
	"$SNAPFS" snapshot create "$MNT" s3 >/dev/null &&
	assert_eq "written after the upgrade" "$(cat "$MNT/.snapshot/s3/after.txt")"
'
test_vol_created=t	# $STORE on $MNT: test_done unmounts it and runs fsck

test_expect_success 'upgrade of a current store does nothing; --check says so and exits 0' '
	cp -a "$V1" "$REF/again" && "$SNAPFS" upgrade "$REF/again" >/dev/null &&
	untouched "$REF/again" >"$REF/before" &&
	"$SNAPFS" upgrade "$REF/again" >"$REF/out" &&
	assert_grep "already format 2: nothing to upgrade" "$REF/out" &&
	"$SNAPFS" upgrade --check "$REF/again" >"$REF/out" &&
	assert_grep "format 2, the format of this snapfs: nothing to upgrade" "$REF/out" &&
	untouched "$REF/again" | assert_cmp "$REF/before" -
'

test_expect_success 'a mounted volume: --check names it in use (exit 1), upgrade is refused, nothing changed' '
	cp -a "$V1" "$TEST_TMP/m1.store" && vol_mount "$TEST_TMP/m1.store" "$TEST_TMP/m1" &&
	{ rc=0; "$SNAPFS" upgrade --check "$TEST_TMP/m1.store" >"$REF/out" || rc=$?; } &&
	assert_eq 1 "$rc" &&
	assert_grep "not ready: in use: the volume is mounted or another snapfs command has it open" "$REF/out" &&
	refused 1 "the volume is mounted; unmount it first (the upgrade works offline); nothing was changed" \
		"$SNAPFS" upgrade "$TEST_TMP/m1" &&
	{ rc=0; "$SNAPFS" upgrade "$TEST_TMP/m1.store" >"$REF/out" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "not ready to upgrade to format 2: in use: .*; nothing was changed" "$REF/err" &&
	vol_umount "$TEST_TMP/m1" &&
	"$SNAPFS" info "$TEST_TMP/m1.store" --json >"$REF/info" &&
	assert_eq 1 "$(json "$REF/info" format)"
'

test_expect_success 'a damaged store: --check lists the damage (exit 1), upgrade refuses it, nothing changed' '
	cp -a "$V1" "$REF/bad" &&
	"$DAMAGE" "$REF/bad" docs/numbers.txt >/dev/null &&
	untouched "$REF/bad" >"$REF/before" &&
	{ rc=0; "$SNAPFS" upgrade --check "$REF/bad" --json >"$REF/check" || rc=$?; } &&
	assert_eq 1 "$rc" &&
	assert_eq false "$(json "$REF/check" ready)" &&
	assert_le 1 "$(json "$REF/check" problems)" &&
	assert_grep "damaged: .*docs/numbers.txt" "$REF/check" &&
	{ rc=0; "$SNAPFS" upgrade "$REF/bad" >"$REF/out" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "damaged: " "$REF/err" &&
	untouched "$REF/bad" | assert_cmp "$REF/before" -
'

test_expect_success ROOT 'no room on the filesystem holding the store: --check says how much is needed (exit 1), upgrade refuses' '
	mkdir "$TEST_TMP/small" && mount -t tmpfs -o size=1M tmpfs "$TEST_TMP/small" &&
	cp -a "$V1" "$TEST_TMP/small/v.store" &&
	"$DAMAGE" "$TEST_TMP/small/v.store" --unledger &&
	"$SNAPFS" upgrade --check "$TEST_TMP/small/v.store" --json >"$REF/check" &&
	need=$(json "$REF/check" need_bytes) && free=$(json "$REF/check" free_bytes) &&
	assert_le 4096 "$need" && assert_le "$need" "$free" &&
	head -c $((free - need + 4096)) /dev/zero >"$TEST_TMP/small/fill" &&
	untouched "$TEST_TMP/small/v.store" >"$REF/before" &&
	{ rc=0; "$SNAPFS" upgrade --check "$TEST_TMP/small/v.store" >"$REF/out" || rc=$?; } &&
	assert_eq 1 "$rc" &&
	assert_grep "not ready: no room: the upgrade needs up to .* more on the filesystem holding the store, .* free" "$REF/out" &&
	refused 1 "not ready to upgrade to format 2: no room: .*; nothing was changed" \
		"$SNAPFS" upgrade "$TEST_TMP/small/v.store" &&
	untouched "$TEST_TMP/small/v.store" | assert_cmp "$REF/before" -
'
test_at_exit 'umount "$TEST_TMP/small" 2>/dev/null'

test_expect_success 'bad input: no store, not a store, unknown options' '
	refused 1 "snapfs upgrade: $TEST_TMP/nothing: no such directory" "$SNAPFS" upgrade --check "$TEST_TMP/nothing" &&
	mkdir "$REF/plain" &&
	refused 1 "not a snapfs volume; nothing was changed" "$SNAPFS" upgrade "$REF/plain" &&
	refused 2 "unknown option .--force." "$SNAPFS" upgrade --force "$V1" &&
	refused 2 "give one STORE" "$SNAPFS" upgrade &&
	refused 2 "--json goes with --check" "$SNAPFS" upgrade --json "$V1"
'

# ---- kill -9 at every transaction of an upgrade

test_expect_success 'setup: a format-1 store from before the ledger, and its upgrade uninterrupted' '
	cp -a "$V1" "$TEST_TMP/old.store" &&
	"$DAMAGE" "$TEST_TMP/old.store" --unledger &&
	cp -a "$TEST_TMP/old.store" "$REF/whole" &&
	"$SNAPFS" upgrade --check "$REF/whole" >"$REF/out" &&
	assert_grep "step: count the ledger of what only snapshots hold: [0-9]* blocks and [0-9]* live records" "$REF/out" &&
	SNAPFS_UPGRADE_BATCH=4 "$SNAPFS" upgrade "$REF/whole" >"$REF/out" &&
	assert_grep "counted the ledger of what only snapshots hold in [0-9]* transactions" "$REF/out" &&
	"$SNAPFS" fsck "$REF/whole" &&
	"$SNAPFS" info "$REF/whole" --json >"$REF/whole.info" &&
	assert_le 1 "$(json "$REF/whole.info" snapshot_bytes)"
'

test_expect_success 'kill -9 after each transaction leaves format 1 (marked) or 2, never a mix; rerunning finishes' '
	k=1 finished= &&
	while [ -z "$finished" ] && [ $k -le 60 ]; do
		rm -rf "$REF/k" && cp -a "$TEST_TMP/old.store" "$REF/k" && mkdir -p "$REF/k.mnt" &&
		rc=0 &&
		SNAPFS_UPGRADE_BATCH=4 SNAPFS_UPGRADE_KILL_AT=$k "$SNAPFS" upgrade "$REF/k" \
			>"$REF/out" 2>/dev/null || rc=$? &&
		case $rc in
		0) finished=$k ;;
		137) ;;
		*) say "kill at $k: exit $rc" >&2; exit 1 ;;
		esac &&
		"$SNAPFS" upgrade --check "$REF/k" --json >"$REF/check" &&
		assert_eq true "$(json "$REF/check" readable)" "readable after a kill at $k" &&
		assert_eq 0 "$(json "$REF/check" problems)" "problems after a kill at $k" &&
		state=$(json "$REF/check" format)/$(json "$REF/check" interrupted)/$(json "$REF/check" current) &&
		case $state in
		1/true/false)	# marked: nothing but the upgrade opens it
			refused 1 "an upgrade of the volume from format 1 to 2 did not finish; run snapfs upgrade on the store to finish it (this snapfs supports formats 1 to 2)" \
				"$SNAPFS" fsck "$REF/k" &&
			refused 1 "did not finish" "$SNAPFS" snapshot list "$REF/k" &&
			refused 1 "did not finish" "$SNAPFS" mount "$REF/k" "$REF/k.mnt" &&
			! mountpoint -q "$REF/k.mnt" &&
			"$SNAPFS" upgrade "$REF/k" >"$REF/out" &&
			assert_grep "resuming the upgrade from format 1 to 2" "$REF/out" ;;
		2/false/true) ;;
		*) say "kill at $k: state $state" >&2; exit 1 ;;
		esac &&
		"$SNAPFS" fsck "$REF/k" >/dev/null &&
		"$SNAPFS" info "$REF/k" --json >"$REF/k.info" &&
		assert_eq 2 "$(json "$REF/k.info" format)" &&
		assert_eq "$(json "$REF/whole.info" snapshot_bytes)" "$(json "$REF/k.info" snapshot_bytes)" &&
		k=$((k + 1)) || exit 1
	done &&
	say "# the upgrade took $((finished - 1)) transactions; killed after each of them" &&
	assert_le 5 "$finished"
'

test_expect_success 'damage found after the store was marked does not keep the upgrade from finishing; fsck names it after' '
	cp -a "$TEST_TMP/old.store" "$REF/dm" &&
	rc=0 &&
	SNAPFS_UPGRADE_KILL_AT=1 "$SNAPFS" upgrade "$REF/dm" >/dev/null 2>&1 || rc=$? &&
	assert_eq 137 "$rc" &&
	"$DAMAGE" "$REF/dm" docs/numbers.txt >/dev/null &&
	"$SNAPFS" upgrade --check "$REF/dm" >"$REF/out" &&
	assert_grep "format 1 (an upgrade did not finish), this snapfs writes format 2: ready to upgrade" "$REF/out" &&
	assert_grep "step: finish although fsck found [0-9]* problems\{0,1\} since the store was marked" "$REF/out" &&
	"$SNAPFS" upgrade "$REF/dm" >"$REF/out" &&
	assert_grep "upgraded from format 1 to 2" "$REF/out" &&
	{ rc=0; "$SNAPFS" fsck "$REF/dm" >"$REF/out" 2>&1 || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "docs/numbers.txt" "$REF/out"
'

test_expect_success 'an upgrade killed twice resumes twice and its store lists as the committed fixture' '
	cp -a "$TEST_TMP/old.store" "$REF/twice" &&
	for k in 2 3; do
		rc=0 &&
		SNAPFS_UPGRADE_BATCH=4 SNAPFS_UPGRADE_KILL_AT=$k "$SNAPFS" upgrade "$REF/twice" \
			>/dev/null 2>&1 || rc=$? &&
		assert_eq 137 "$rc" || exit 1
	done &&
	"$SNAPFS" upgrade "$REF/twice" >/dev/null &&
	vol_mount "$REF/twice" "$REF/twice.mnt" &&
	listing "$REF/twice.mnt/.snapshot/s1" "$REF/t1.list" &&
	listing "$REF/twice.mnt" "$REF/tl.list" &&
	vol_umount "$REF/twice.mnt" &&
	assert_cmp "$FIX/format1.s1.list" "$REF/t1.list" &&
	assert_cmp "$FIX/format1.live.list" "$REF/tl.list"
'

test_expect_success 'kill -9 at random moments of a longer upgrade (inside transactions too): format 1 or 2, fsck-clean, finished by a rerun' '
	cp -a "$V1" "$TEST_TMP/long.store" &&
	vol_mount "$TEST_TMP/long.store" "$TEST_TMP/long" &&
	python3 -c "
import os, sys
for i in range(20):
    with open(os.path.join(sys.argv[1], \"r%d\" % i), \"wb\") as f:
        f.write(os.urandom(4096 * 25))" "$TEST_TMP/long" &&
	"$SNAPFS" snapshot create "$TEST_TMP/long" s3 >/dev/null &&
	vol_umount "$TEST_TMP/long" &&
	"$DAMAGE" "$TEST_TMP/long.store" --unledger &&
	"$SNAPFS" info "$TEST_TMP/long.store" --json >"$REF/info" &&
	assert_eq 1 "$(json "$REF/info" format)" &&
	killed=0 seen= &&
	for delay in 0.02 0.05 0.08 0.11 0.14 0.18 0.22 0.3; do
		rm -rf "$REF/l" && cp -a "$TEST_TMP/long.store" "$REF/l" &&
		# (no leak check: a kill landing in it leaves a report of its own)
		{ ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0 SNAPFS_UPGRADE_BATCH=10 \
			"$SNAPFS" upgrade "$REF/l" >/dev/null 2>&1 & pid=$!; } &&
		sleep $delay && kill -9 $pid 2>/dev/null && killed=$((killed + 1)); wait $pid
		"$SNAPFS" upgrade --check "$REF/l" --json >"$REF/check" &&
		assert_eq 0 "$(json "$REF/check" problems)" "problems after a kill at $delay s" &&
		state=$(json "$REF/check" format)/$(json "$REF/check" interrupted)/$(json "$REF/check" current) &&
		case $state in
		1/false/false) seen="$seen old" ;;
		1/true/false) seen="$seen marked" ;;
		2/false/true) seen="$seen new" ;;
		*) say "state $state" >&2; exit 1 ;;
		esac &&
		"$SNAPFS" upgrade "$REF/l" >/dev/null &&
		"$SNAPFS" fsck "$REF/l" >/dev/null &&
		"$SNAPFS" info "$REF/l" --json >"$REF/info" &&
		assert_eq 2 "$(json "$REF/info" format)" || exit 1
	done &&
	say "# killed $killed of 8 upgrades before they ended; left:$seen"
'

# ---- newer formats and unknown features

test_expect_success 'a store of a newer format is refused by every command, naming both versions; nothing changed' '
	cp -a "$V1" "$REF/newer" && "$DAMAGE" "$REF/newer" --format-version 3 &&
	untouched "$REF/newer" >"$REF/before" &&
	for c in info fsck "snapshot list" upgrade; do
		refused 1 "volume has a newer on-disk format (format 3) than this snapfs supports (formats 1 to 2)" \
			"$SNAPFS" $c "$REF/newer" || exit 1
	done &&
	{ rc=0; "$SNAPFS" upgrade --check "$REF/newer" >"$REF/out" || rc=$?; } &&
	assert_eq 1 "$rc" &&
	assert_grep "not ready: volume has a newer on-disk format (format 3) than this snapfs supports (formats 1 to 2)" "$REF/out" &&
	mkdir -p "$REF/newer.mnt" &&
	refused 1 "volume has a newer on-disk format (format 3) than this snapfs supports (formats 1 to 2)" \
		"$SNAPFS" mount "$REF/newer" "$REF/newer.mnt" &&
	untouched "$REF/newer" | assert_cmp "$REF/before" -
'

test_expect_success 'a feature this snapfs does not know: incompat refused by every command, naming it' '
	"$SNAPFS" mkfs "$REF/inc" --size 16M >/dev/null &&
	"$DAMAGE" "$REF/inc" --feature zoned-blocks incompat &&
	for c in info fsck "snapshot list"; do
		refused 1 "volume uses the feature .zoned-blocks. (format 2), which this snapfs (formats 1 to 2) does not know; use a newer snapfs" \
			"$SNAPFS" $c "$REF/inc" || exit 1
	done &&
	mkdir -p "$REF/inc.mnt" &&
	refused 1 "does not know" "$SNAPFS" mount "$REF/inc" "$REF/inc.mnt" &&
	{ rc=0; "$SNAPFS" upgrade --check "$REF/inc" >"$REF/out" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "not ready: volume uses the feature .zoned-blocks." "$REF/out"
'

test_expect_success 'an unknown ro-compat feature: read-only commands work, writing ones are refused' '
	"$SNAPFS" mkfs "$REF/roc" --size 16M >/dev/null &&
	"$DAMAGE" "$REF/roc" --feature fancy-index ro-compat &&
	"$SNAPFS" info "$REF/roc" >"$REF/out" &&
	assert_grep "format: *2 (features: ledger, fancy-index)" "$REF/out" &&
	"$SNAPFS" fsck "$REF/roc" &&
	refused 1 "volume uses the feature .fancy-index. (format 2), which this snapfs (formats 1 to 2) may read but not write" \
		"$SNAPFS" snapshot create "$REF/roc" s1 &&
	mkdir -p "$REF/roc.mnt" &&
	refused 1 "may read but not write" "$SNAPFS" mount "$REF/roc" "$REF/roc.mnt" &&
	! mountpoint -q "$REF/roc.mnt"
'

# ---- the stream

test_expect_success 'the committed stream receives; its snapshot lists as the committed s2' '
	"$SNAPFS" mkfs "$TEST_TMP/recv.store" --size 16M --block-size 4K >/dev/null &&
	"$SNAPFS" receive "$TEST_TMP/recv.store" <"$FIX/format1.stream" >"$REF/out" &&
	"$SNAPFS" snapshot list "$TEST_TMP/recv.store" --json >"$REF/snaps" &&
	assert_grep "\"s2\"" "$REF/snaps" &&
	vol_mount "$TEST_TMP/recv.store" "$TEST_TMP/recv" &&
	listing "$TEST_TMP/recv/.snapshot/s2" "$REF/recv.list" &&
	vol_umount "$TEST_TMP/recv" &&
	assert_cmp "$FIX/format1.s2.list" "$REF/recv.list"
'

test_expect_success 'a stream of a newer version is refused, naming both versions; nothing received' '
	python3 "$FIX/bump-stream.py" "$FIX/format1.stream" "$REF/newer.stream" 2 &&
	"$SNAPFS" mkfs "$REF/recv2" --size 16M --block-size 4K >/dev/null &&
	refused 1 "stream version 2 is newer than the version 1 this snapfs reads: receive it with a newer snapfs" \
		"$SNAPFS" receive "$REF/recv2" <"$REF/newer.stream" &&
	"$SNAPFS" snapshot list "$REF/recv2" --json >"$REF/snaps" &&
	assert_eq "[]" "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1])))" "$REF/snaps")"
'

# ---- the dump

test_expect_success 'the committed dump restores with snapfs restore, as the committed s2 lists' '
	mkdir "$REF/rs" &&
	"$SNAPFS" restore -r -f "$FIX/format1.dump" --into "$REF/rs" >/dev/null &&
	listing "$REF/rs" "$REF/rs.list" --skip .snapfs-restoresymtable &&
	grep -v "^\. " "$FIX/format1.s2.list" >"$REF/want" &&
	grep -v "^\. " "$REF/rs.list" | assert_cmp "$REF/want" -
'

test_expect_success 'the committed dump restores into a volume: its qtree is a qtree again, its files as committed' '
	"$SNAPFS" mkfs "$TEST_TMP/rv.store" --size 16M >/dev/null &&
	"$SNAPFS" restore -r -f "$FIX/format1.dump" --into "$TEST_TMP/rv.store" >/dev/null &&
	"$SNAPFS" qtree list "$TEST_TMP/rv.store" --json >"$REF/qtrees" &&
	python3 -c "
import json, sys
q = json.load(open(sys.argv[1]))
q = q if isinstance(q, list) else q[\"qtrees\"]
assert [(x[\"name\"], x[\"security_style\"], x[\"quota_bytes\"]) for x in q] == [(\"proj\", \"ntfs\", 4194304)], q" "$REF/qtrees" &&
	vol_mount "$TEST_TMP/rv.store" "$TEST_TMP/rv" &&
	listing "$TEST_TMP/rv" "$REF/rv.list" --skip .snapfs-restoresymtable &&
	vol_umount "$TEST_TMP/rv" &&
	grep -v "^\. " "$REF/rv.list" | assert_cmp "$REF/want" -
'

test_expect_success 'the committed dump restores with Linux restore, as the committed s2 lists' '
	command -v restore >/dev/null || { say "# skipping: no Linux restore"; exit 0; } &&
	mkdir "$REF/lr" &&
	(cd "$REF/lr" && restore -r -f "$FIX/format1.dump" >/dev/null 2>&1) &&
	listing "$REF/lr" "$REF/lr.list" --skip restoresymtable &&
	grep -v "^\. " "$REF/lr.list" | assert_cmp "$REF/want" -
'

test_expect_success 'a dump with newer snapfs extensions is refused whole, naming both versions; Linux restore still reads it' '
	python3 "$FIX/bump-dump-ext.py" "$FIX/format1.dump" "$REF/newer.dump" 2 &&
	mkdir "$REF/rn" &&
	for mode in -r -t; do
		refused 1 "the dump.s snapfs extensions are version 2, newer than the version 1 this snapfs reads; nothing was restored" \
			"$SNAPFS" restore $mode -f "$REF/newer.dump" --into "$REF/rn" || exit 1
	done &&
	assert_eq "" "$(ls -A "$REF/rn")" &&
	restore -t -f "$REF/newer.dump" >"$REF/out" 2>/dev/null &&
	assert_grep "docs/numbers.txt" "$REF/out"
'

# ---- the vault

test_expect_success 'a vault of a newer format is refused, naming both versions, before any passphrase' '
	SNAPFS_VAULT_PASSPHRASE="correct horse" "$SNAPFS" vault init "file://$REF/vault" >/dev/null &&
	python3 -c "
import struct, sys
p = sys.argv[1]; b = bytearray(open(p, \"rb\").read())
struct.pack_into(\">I\", b, 8, 2)
open(p, \"wb\").write(b)" "$REF/vault/config" &&
	refused 1 "the vault has format 2, newer than this snapfs reads (1): use a newer snapfs" \
		"$SNAPFS" vault list "file://$REF/vault" </dev/null
'

test_done
