#!/bin/bash
# The scale benchmark's short run (tests/bench/scalebench.sh, `make
# bench-scale`): on two small volumes it takes every figure, `find` and
# `ls -lR` see every file and directory, the snapshot creates and the
# writer beside them all happen, the delete after a 1% change gives back
# what the estimate said it would, and the daemon's peak resident set
# stays under the 256 MiB budget in every phase.
. "$(dirname "$0")/lib.sh"
vol_create # for the checks at the end (no sanitizer report); the run makes its own

BENCH=$TEST_DIR/../bench/scalebench.sh
OUT=$TEST_TMP/scale.txt
# 1,000 and 3,000 files of 1 KiB (100 to a directory) and 6 MiB of data
# at the larger count (2 MiB at the smaller), in 1 MiB data files
COUNTS="1000 3000"
test_lazy_prereq NOT_ASAN '! nm -D "$SNAPFS" 2>/dev/null | grep -q __asan_init'

field() { awk -v k="$1" '$1 == k { print $2 }' "$OUT"; }

test_expect_success SNAPFS,ROOT 'the short scale run takes every figure' '
	SCALEBENCH_DIR=$TEST_TMP/bench SCALEBENCH_FILES="$COUNTS" \
	SCALEBENCH_DATA_MB=6 SCALEBENCH_DATA_FILE_MB=1 SCALEBENCH_CREATES=5 \
	SCALEBENCH_DROP_CACHES=0 SCALEBENCH_OUT=$OUT \
		bash "$BENCH" >"$TEST_TMP/table" 2>"$TEST_TMP/bench.log" &&
	assert_eq 0 "$(field missing)" "figures missing" &&
	# a per-inode figure is NA only when the kernel held no inode then
	for ph in find ls_lR; do
		for n in $COUNTS; do
			test "$(field ${ph}_inodes_held_$n)" = 0 ||
			test "$(field ${ph}_node_bytes_per_inode_$n)" != NA || return 1
		done
	done &&
	! grep " NA" "$TEST_TMP/table" | grep -qv "bytes per inode held" &&
	assert_grep "^create_files_per_sec_3000 " "$OUT" &&
	assert_grep "^writer_during_p99_ms_3000 " "$OUT" &&
	assert_grep "^store_bytes_per_logical_byte_3000 " "$OUT"
'

test_expect_success SNAPFS,ROOT 'find and ls -lR list every file and directory' '
	for n in $COUNTS; do
		data=$((6 * n / 3000)) &&
		# the root, d/, the directories of 100, the files, data/ and
		# its files of 1 MiB
		want=$((1 + 1 + n / 100 + n + 1 + data)) &&
		assert_eq $want "$(field find_names_$n)" "names find saw, $n files" &&
		assert_eq $((want - 1)) "$(field ls_lR_entries_$n)" "entries of ls -lR, $n files" || return 1
	done
'

test_expect_success SNAPFS,ROOT 'every snapshot create ran, with the writer beside them' '
	for n in $COUNTS; do
		assert_eq 20 "$(field create_idle_count_$n)" &&
		assert_eq 5 "$(field create_writing_count_$n)" &&
		assert_eq 45 "$(field create_test_snapshots_$n)" "snapshots deleted (20 + 20 idle, 5 writing)" &&
		test "$(field writer_during_count_$n)" -gt 0 || return 1
	done
'

test_expect_success SNAPFS,ROOT 'the delete after a 1% change gives back what the estimate said' '
	for n in $COUNTS; do
		est=$(field reclaim_estimate_bytes_$n) freed=$(field reclaim_freed_bytes_$n) &&
		assert_eq $((n / 100)) "$(field changed_files_$n)" &&
		test "$est" -gt 0 &&
		assert_le "$est" "$freed" "estimate against what the delete freed" || return 1
	done
'

test_expect_success SNAPFS,ROOT,NOT_ASAN 'the daemon stays under its memory budget in every phase' '
	assert_eq PASS "$(field rss_result)" "peak $(field rss_peak_mib) MiB"
'

test_expect_success SNAPFS,ROOT 'the run unmounted and removed its volumes' '
	! grep -q "$TEST_TMP/bench" /proc/mounts &&
	assert_eq "" "$(ls -A "$TEST_TMP/bench" 2>/dev/null)"
'

test_done
