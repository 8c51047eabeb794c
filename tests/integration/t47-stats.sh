#!/bin/bash
# snapfs stats: after a known workload (creates, directories, new,
# duplicate, compressible, zero and small data written, fsyncs, a rename,
# an unlink, a setxattr, O_DIRECT reads) the daemon's counters equal what
# was done where they are exact, and its latencies are plausible; the
# table, --watch (rates per interval), --prometheus (parsed line by line)
# and the HTTP listener show them; space and snapshots; every figure
# starts again at a remount; bad input, a volume mounted with -o nostats,
# a read of a damaged block in the health, and the control socket's
# credential rules (root or the store's owner).
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 256M

cp "$TEST_DIR/statscheck.py" "$TEST_TMP/bin/statscheck.py"
statscheck() { python3 "$TEST_TMP/bin/statscheck.py" "$@"; }
stats() { "$SNAPFS" stats "$@"; }
# json_get FILE EXPR: a value of the JSON in FILE (EXPR on `s`)
json_get() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print($2)" "$1"; }

test_expect_success 'the workload is counted exactly: operations, bytes, new, deduplicated, compressed, zero and inline blocks' '
	stats "$MNT" --json >"$REF/before.json" &&
	statscheck workload "$MNT" >"$REF/done.json" &&
	stats "$MNT" --json >"$REF/after.json" &&
	cat "$REF/done.json" &&
	statscheck exact "$REF/before.json" "$REF/after.json" "$REF/done.json"
'

test_expect_success 'latencies are > 0 and their percentiles ordered, for every operation that ran; the store path reaches the same daemon' '
	statscheck plausible "$REF/after.json" &&
	assert_eq "$STORE" "$(json_get "$REF/after.json" "s[\"volume\"]")" &&
	stats "$STORE" --json >"$REF/by-store.json" &&
	assert_eq 24 "$(json_get "$REF/by-store.json" "s[\"operations\"][\"create\"][\"count\"]")" &&
	assert_eq True "$(json_get "$REF/after.json" "s[\"health\"][\"ok\"]")"
'

test_expect_success '--prometheus parses: every line, TYPE before samples, _total counters, cumulative buckets up to +Inf equal to _count' '
	stats "$MNT" --prometheus >"$REF/metrics.txt" &&
	statscheck prom "$REF/metrics.txt" create=24 mkdir=2 fsync=4 rename=1 \
		unlink=1 setxattr=1 &&
	grep -q "^snapfs_written_bytes_total{volume=\"$STORE\"} 919504$" "$REF/metrics.txt" &&
	grep -q "^snapfs_dedup_bytes_total{volume=\"$STORE\"} 262144$" "$REF/metrics.txt" &&
	grep -q "^snapfs_operation_duration_seconds_bucket{volume=\"$STORE\",op=\"create\",le=\"+Inf\"} 24$" "$REF/metrics.txt"
'

test_expect_success 'the table shows each operation, the data, blocks, cache, commits, space and health' '
	stats "$MNT" >"$REF/table" &&
	cat "$REF/table" &&
	assert_eq 24 "$(awk "\$1 == \"create\" { print \$2 }" "$REF/table")" &&
	assert_eq 2 "$(awk "\$1 == \"mkdir\" { print \$2 }" "$REF/table")" &&
	assert_grep "^volume: *$STORE\$" "$REF/table" &&
	assert_grep "^data: *read 512.10 KiB, written 897.95 KiB\$" "$REF/table" &&
	assert_grep "^blocks: *8 new, 512.00 KiB before compression" "$REF/table" &&
	assert_grep "^ *4 deduplicated (256.00 KiB), 128.00 KiB of zeros" "$REF/table" &&
	assert_grep "^write cache: " "$REF/table" &&
	assert_grep "^commits: " "$REF/table" &&
	assert_grep "^space: *256.00 MiB size" "$REF/table" &&
	assert_grep "^health: *ok\$" "$REF/table"
'

test_expect_success 'partial writes go through the write cache: a miss, then hits, then the block is stored' '
	stats "$MNT" --json >"$REF/c0.json" &&
	python3 -c "
import os
fd = os.open(\"part.bin\", os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, os.urandom(200000))
os.fsync(fd)
os.close(fd)
fd = os.open(\"part.bin\", os.O_RDWR | os.O_DIRECT)
import mmap
b = mmap.mmap(-1, 4096)
for i in range(4):
    os.pwritev(fd, [b], 65536 + 8192 * i)
os.fsync(fd)
os.close(fd)
" &&
	stats "$MNT" --json >"$REF/c1.json" &&
	d() { python3 -c "import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); print(b[\"write_cache\"][sys.argv[3]] - a[\"write_cache\"][sys.argv[3]])" "$REF/c0.json" "$REF/c1.json" "$1"; } &&
	# one block, written 4 times: a miss loads it, hits merge into it (a
	# commit in between stores it: the next write misses again)
	misses=$(d misses) hits=$(d hits) &&
	assert_eq 4 "$((misses + hits))" &&
	assert_le 1 "$misses" &&
	assert_eq "$misses" "$(d stored_blocks)" &&
	assert_eq 0 "$(json_get "$REF/c1.json" "s[\"write_cache\"][\"cached_bytes\"]")"
'

test_expect_success 'space: the volume size, used and available within it; snapshots hold what was deleted after one' '
	assert_eq 268435456 "$(json_get "$REF/after.json" "s[\"space\"][\"size\"]")" &&
	assert_eq True "$(json_get "$REF/after.json" "0 < s[\"space\"][\"used\"] and 0 < s[\"space\"][\"available\"] and s[\"space\"][\"used\"] + s[\"space\"][\"available\"] <= s[\"space\"][\"size\"]")" &&
	assert_eq 0 "$(json_get "$REF/after.json" "s[\"space\"][\"snapshots\"]")" &&
	"$SNAPFS" snapshot create "$MNT" s1 &&
	rm text.bin &&
	stats "$MNT" --json >"$REF/snap.json" &&
	assert_eq 1 "$(json_get "$REF/snap.json" "s[\"space\"][\"snapshot_count\"]")" &&
	assert_eq True "$(json_get "$REF/snap.json" "s[\"space\"][\"snapshots\"] > 0")"
'

test_expect_success '--watch --count 2 prints a header and two intervals of rates; --json one object per interval' '
	mkdir w && : >"$REF/go"
	( i=0; while [ -e "$REF/go" ]; do : >"w/f$i"; i=$((i + 1)); done ) &
	stats "$MNT" --watch 0.3 --count 2 >"$REF/watch" &&
	stats "$MNT" --watch 0.3 --count 2 --json >"$REF/watch.json" &&
	rm "$REF/go" && wait &&
	cat "$REF/watch" "$REF/watch.json" &&
	assert_eq 3 "$(wc -l <"$REF/watch")" &&
	head -1 "$REF/watch" | grep -q "^time  *ops/s  *read MiB/s" &&
	assert_eq 2 "$(grep -cE "^[0-9]{2}:[0-9]{2}:[0-9]{2} +[0-9]+\.[0-9] " "$REF/watch")" &&
	assert_eq 2 "$(wc -l <"$REF/watch.json")" &&
	python3 -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert all(0.25 < r[\"interval_seconds\"] < 5 for r in rows), rows
assert any(r[\"operations_per_second\"][\"create\"] > 0 for r in rows), rows
assert all(0 < v[\"p50\"] <= v[\"p99\"] <= v[\"max\"] for r in rows for v in r[\"latency_us\"].values()), rows
" "$REF/watch.json"
'

test_expect_success '--listen serves /metrics over HTTP on loopback; other paths are 404' '
	( cd / && exec "$SNAPFS" stats "$MNT" --listen 127.0.0.1:0 >"$REF/listen.out" 2>&1 ) &
	pid=$! && echo "$pid" >"$REF/listen.pid" &&
	for _ in $(seq 100); do grep -q "^listening on port" "$REF/listen.out" && break; sleep 0.1; done &&
	port=$(sed -n "s/^listening on port \([0-9]*\):.*/\1/p" "$REF/listen.out") &&
	test -n "$port" &&
	curl -sS -D "$REF/headers" "http://127.0.0.1:$port/metrics" >"$REF/scraped.txt" &&
	grep -qi "^content-type: text/plain; version=0.0.4" "$REF/headers" &&
	statscheck prom "$REF/scraped.txt" &&
	assert_eq 404 "$(curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$port/")" &&
	kill "$pid" && { wait "$pid" 2>/dev/null || :; }
'
test_at_exit 'test -s "$REF/listen.pid" && kill "$(cat "$REF/listen.pid")" 2>/dev/null'

test_lazy_prereq NODE_EXPORTER 'command -v prometheus-node-exporter && command -v curl'
test_expect_success NODE_EXPORTER 'node_exporter'"'"'s textfile collector reads what --prometheus writes (the documented timer path)' '
	mkdir -p "$REF/textfile" &&
	stats "$MNT" --prometheus >"$REF/textfile/snapfs.prom.tmp" &&
	mv "$REF/textfile/snapfs.prom.tmp" "$REF/textfile/snapfs.prom"
	port=$(python3 -c "import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])")
	( cd / && exec prometheus-node-exporter --web.listen-address="127.0.0.1:$port" \
		--collector.disable-defaults --collector.textfile \
		--collector.textfile.directory="$REF/textfile" >"$REF/node.log" 2>&1 ) &
	pid=$! && echo "$pid" >"$REF/node.pid" &&
	for _ in $(seq 100); do
		curl -sf "http://127.0.0.1:$port/metrics" >"$REF/node.txt" && break
		sleep 0.1
	done &&
	kill "$pid" && { wait "$pid" 2>/dev/null || :; } &&
	grep "snapfs_written_bytes_total\|textfile_scrape_error" "$REF/node.txt" &&
	grep -qx "node_textfile_scrape_error 0" "$REF/node.txt" &&
	grep -q "^snapfs_written_bytes_total{volume=\"$STORE\"} " "$REF/node.txt" &&
	grep -q "^snapfs_operation_duration_seconds_bucket{.*op=\"create\".*le=\"+Inf\"} " "$REF/node.txt"
'
test_at_exit 'test -s "$REF/node.pid" && kill "$(cat "$REF/node.pid")" 2>/dev/null'

test_expect_success 'bad input: one message naming the path, non-zero exit, nothing printed' '
	"$SNAPFS" mkfs "$TEST_TMP/idle.store" --size 64M >/dev/null &&
	mkdir -p "$TEST_TMP/plain" &&
	for args in "$TEST_TMP/plain" "$TEST_TMP/idle.store" "$TEST_TMP/nothing" \
		"$MNT --bogus" "$MNT --watch 0" "$MNT --count 2" "" \
		"$MNT --json --prometheus" "$MNT --listen 0.0.0.0:0" \
		"$MNT --listen nowhere"; do
		rc=0; stats $args >"$REF/bad.out" 2>"$REF/bad.err" || rc=$?
		say "stats $args: exit $rc: $(cat "$REF/bad.err")"
		test "$rc" -ne 0 && test ! -s "$REF/bad.out" && assert_one_line "$REF/bad.err" ||
			exit 1
	done &&
	stats "$TEST_TMP/idle.store" 2>&1 | grep -qx "snapfs stats: $TEST_TMP/idle.store: not mounted (statistics are kept by the daemon of a mounted volume)" &&
	stats "$TEST_TMP/plain" 2>&1 | grep -q "^snapfs stats: $TEST_TMP/plain: " &&
	stats "$MNT" --bogus 2>&1 | grep -q "unknown option .--bogus."
'

test_expect_success 'a volume mounted with -o nostats says its statistics are off' '
	"$SNAPFS" mkfs "$TEST_TMP/quiet.store" --size 64M >/dev/null &&
	SNAPFS_MOUNT_OPTS=nostats vol_mount "$TEST_TMP/quiet.store" "$TEST_TMP/quiet" &&
	echo x >"$TEST_TMP/quiet/f" &&
	rc=0 && stats "$TEST_TMP/quiet" 2>"$REF/quiet.err" || rc=$? &&
	assert_eq 1 "$rc" &&
	grep -qx "snapfs stats: $TEST_TMP/quiet: statistics are off: the volume was mounted with -o nostats" "$REF/quiet.err" &&
	vol_umount "$TEST_TMP/quiet"
'

DAMAGE=${SNAPFS_DAMAGE:-$(dirname "$SNAPFS")/snapfs-damage}
test_expect_success 'a read that meets a damaged block is counted, and the health says so' '
	"$SNAPFS" mkfs "$TEST_TMP/hurt.store" --size 64M >/dev/null &&
	vol_mount "$TEST_TMP/hurt.store" "$TEST_TMP/hurt" &&
	rand_file "$TEST_TMP/hurt/f" 200000 &&
	vol_umount "$TEST_TMP/hurt" &&
	"$DAMAGE" "$TEST_TMP/hurt.store" /f 70000 &&
	vol_mount "$TEST_TMP/hurt.store" "$TEST_TMP/hurt" &&
	assert_fails cat "$TEST_TMP/hurt/f" >/dev/null &&
	stats "$TEST_TMP/hurt" --json >"$REF/hurt.json" &&
	assert_eq False "$(json_get "$REF/hurt.json" "s[\"health\"][\"ok\"]")" &&
	assert_eq True "$(json_get "$REF/hurt.json" "s[\"health\"][\"damaged_reads\"] >= 1")" &&
	stats "$TEST_TMP/hurt" | grep "^health: *[0-9]* reads met a damaged block (snapfs fsck names the files)$" &&
	vol_umount "$TEST_TMP/hurt"
'

test_expect_success NOBODY 'another user than root or the store owner is refused, as by every control request' '
	rc=0 && as_nobody "$SNAPFS" stats "$MNT" >"$REF/nobody.out" 2>"$REF/nobody.err" || rc=$? &&
	assert_eq 1 "$rc" &&
	grep -qx "snapfs stats: $MNT: permission denied (only root or the owner of the store may read its statistics)" "$REF/nobody.err"
'

test_expect_success REMOUNT 'every figure starts again at a remount; the store owner may read them' '
	up=$(json_get "$REF/snap.json" "s[\"uptime_seconds\"]") &&
	root_chown 65534 "$STORE" &&
	vol_remount &&
	if test_have_prereq NOBODY; then
		as_nobody "$SNAPFS" stats "$MNT" --json >"$REF/fresh.json"
	else
		stats "$MNT" --json >"$REF/fresh.json"
	fi &&
	root_chown 0 "$STORE" &&
	assert_eq 0 "$(json_get "$REF/fresh.json" "s[\"operations\"][\"create\"][\"count\"]")" &&
	assert_eq 0 "$(json_get "$REF/fresh.json" "s[\"bytes\"][\"written\"]")" &&
	assert_eq True "$(json_get "$REF/fresh.json" "s[\"uptime_seconds\"] < $up")"
'

test_done
