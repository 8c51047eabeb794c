#!/bin/bash
# NDMP, what makes a DMA's job fast besides the data: requests and
# replies go back and forth without a pause (each message one segment,
# TCP_NODELAY), so that the many small requests of a job (connect,
# authenticate, open and rewind the tape, the states asked while it runs,
# the shutdown) cost milliseconds, not the 40 ms of a delayed ACK each;
# an ndmjob backup through the server's mover (the dump writing into the
# mover's connection itself) ends promptly after its data phase, which
# ends with the tape synced, the mover halted before DATA_HALTED; and a
# DMA that disconnects in the middle of such a backup leaves no
# snapshot, hold or dump context, the server serving on.  The
# throughput figure itself is tests/bench/ndmpbench.sh's.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
NDMJOB=$(dpkg -L amanda-common 2>/dev/null | grep '/ndmjob$' | head -1)
[ -x "$NDMJOB" ] || { say "# skipping: needs ndmjob (Debian's amanda-common)"; test_done; }
[ -w /var/log/amanda/client ] || [ -w /var/log/amanda ] || [ -w /var/log ] ||
	{ say "# skipping: ndmjob needs to write its log under /var/log/amanda (run as root)"; test_done; }
vol_create --size 1G

CLIENT=$(cd "$(dirname "$0")" && pwd)/ndmpclient.py
OUT=$TEST_TMP/out
TAPES=$TEST_TMP/tapes
export SNAPFS_CONFIG_DIR=$TEST_TMP/conf
mkdir -p "$OUT" "$TAPES"

( cd / && exec "$SNAPFS" ndmp serve --port 0 --listen 127.0.0.1 \
	--tape-dir "$TAPES" -f >"$TEST_TMP/server.out" 2>"$TEST_TMP/server.log" </dev/null ) &
SERVER_PID=$!
test_at_exit '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null'
for _ in $(seq 200); do
	grep -q '^snapfs ndmp: listening on port ' "$TEST_TMP/server.out" 2>/dev/null && break
	sleep 0.05
done
PORT=$(sed -n 's/^snapfs ndmp: listening on port //p' "$TEST_TMP/server.out")
(cd "$TEST_TMP" && "$SNAPFS" ndmp password backup >"$OUT/pw" 2>/dev/null)
PW=$(cat "$OUT/pw")

# ms FILE: the S of FILE's "answered N in S", in milliseconds
ms() { awk '{ printf "%d\n", $4 * 1000 }' "$1"; }

test_expect_success 'setup: a volume with 8 MB in a file and 200 small ones, and 300 MB more in a directory of its own; the server listens' '
	mkdir small large &&
	for i in $(seq 200); do echo "$i" >small/$i || return 1; done &&
	head -c 8000000 /dev/urandom >big &&
	for i in 1 2 3; do head -c 100000000 /dev/urandom >large/f$i || return 1; done &&
	test -n "$PORT" && pid_running "$SERVER_PID"
'

test_expect_success '200 requests of one session are answered in turn without a pause each (under 4 s; 8 s or more if every reply waited for a delayed ACK)' '
	python3 "$CLIENT" requests "$PORT" backup "$OUT/pw" 200 >"$OUT/req" &&
	cat "$OUT/req" &&
	assert_grep "^answered 200 in " "$OUT/req" &&
	test "$(ms "$OUT/req")" -lt 4000
'

# ndmjob_debug PID MARK: the debug log of the ndmjob process PID, made
# after the file MARK (ndmjob writes one per run under
# /var/log/amanda/client, with -d 5 its monitor's waits too; other runs'
# logs there may name the same pid)
ndmjob_debug() {
	find /var/log/amanda/client -name "ndmjob.*.debug" -newer "$2" \
		-exec grep -l "pid $1: " {} + 2>/dev/null | head -1
}

test_expect_success 'an ndmjob backup through the server mover ends OKAY with the whole dump on tape; ndmjob hears the end at once (its shutdown does not sit out its 2 s wait) and the job ends within 3 s of its data phase' '
	: >"$TAPES/t0" && : >"$OUT/mark" &&
	start=$(date +%s%N) &&
	{ (cd "$TEST_TMP" && exec "$NDMJOB" -d 5 -v -c -D "127.0.0.1:$PORT/4m,backup,$PW" \
		-B dump -b 128 -f "$TAPES/t0" -C "$MNT/small" -E UPDATE=n) >"$OUT/job" 2>&1 & } &&
	job=$! &&
	wait $job &&
	end=$(date +%s%N) &&
	assert_grep "Operation ended OKAY" "$OUT/job" &&
	bytes=$(sed -n "s/.*backup done: \([0-9]*\) bytes in \([0-9.]*\) s.*/\1/p" "$TEST_TMP/server.log") &&
	data=$(sed -n "s/.*backup done: \([0-9]*\) bytes in \([0-9.]*\) s.*/\2/p" "$TEST_TMP/server.log") &&
	test "$bytes" -gt 200000 &&
	test "$(stat -c %s "$TAPES/t0")" -ge "$bytes" &&
	debug=$(ndmjob_debug $job "$OUT/mark") && test -n "$debug" &&
	sed -n "/Waiting for operation to halt/,/Operation halted/p" "$debug" >"$OUT/halt" &&
	assert_grep "mon_wait_for_something() happened, resid=2$" "$OUT/halt" &&
	job_ms=$(( (end - start) / 1000000 )) &&
	data_ms=$(awk -v s="$data" "BEGIN { printf \"%d\", s * 1000 }") &&
	say "# job ${job_ms} ms, data phase ${data_ms} ms" &&
	test $((job_ms - data_ms)) -lt 3000
'

# no_backup_left: the volume has no backup snapshot (so no hold on one)
# and no dump context
no_backup_left() {
	"$SNAPFS" snapshot list "$MNT" >"$OUT/snaps" &&
	! grep -q snapshot_for_backup "$OUT/snaps" &&
	"$SNAPFS" dump contexts "$MNT" >"$OUT/ctx" &&
	assert_eq 1 "$(wc -l <"$OUT/ctx")" "only the header line"
}

test_expect_success 'a DMA killed in the middle of a backup to the server mover: the dump is stopped, its snapshot and context deleted, the session ends and the server serves on' '
	: >"$TAPES/t1" &&
	{ (cd "$TEST_TMP" && exec "$NDMJOB" -v -c -D "127.0.0.1:$PORT/4m,backup,$PW" \
		-B dump -b 128 -f "$TAPES/t1" -C "$MNT" -E UPDATE=n) >"$OUT/killed" 2>&1 & } &&
	dma=$! &&
	for _ in $(seq 1200); do
		test "$(stat -c %s "$TAPES/t1")" -gt 20000000 && break
		sleep 0.05
	done &&
	test "$(stat -c %s "$TAPES/t1")" -gt 20000000 &&
	kill -9 $dma &&
	{ wait $dma; true; } &&
	for _ in $(seq 1200); do
		test "$(grep -c "session ended" "$TEST_TMP/server.log")" -ge 3 && break
		sleep 0.05
	done &&
	assert_grep "the DMA left during the backup; stopping it" "$TEST_TMP/server.log" &&
	assert_grep "backup aborted: " "$TEST_TMP/server.log" &&
	assert_grep "context [0-9]* of $MNT was deleted with its snapshot" "$TEST_TMP/server.log" &&
	no_backup_left &&
	python3 "$CLIENT" requests "$PORT" backup "$OUT/pw" 1 >"$OUT/req1" &&
	assert_grep "^answered 1 in " "$OUT/req1"
'

test_done
