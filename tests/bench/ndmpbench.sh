#!/bin/bash
# NDMP benchmark: a level 0 backup of one volume driven by Amanda's ndmjob
# through `snapfs ndmp serve` (the server's own mover writing a file tape,
# NDMP's LOCAL connection), beside `snapfs dump -0` of the same volume to
# a file in the same directory, in one run, cold caches, the order of the
# two alternating from round to round (dump first in odd rounds).  Both
# end with the image synced (the dump fsyncs its file, the mover its
# tape before it reports MOVER_HALTED), both in 64 KiB records.
#
#   SNAPFS=path/to/snapfs bash tests/bench/ndmpbench.sh
#
# Knobs: NDMPBENCH_DIR (/var/tmp/snapfs-ndmpbench), NDMPBENCH_MB (1024,
# in files of 100 MB), NDMPBENCH_FILES (2000 small files), NDMPBENCH_REPS (3),
# NDMPBENCH_HIST (0; 1: the NDMP job with file history, ndmjob's -I).
# Prints each round, then medians: the dump's time; the NDMP job's time
# (ndmjob started to ndmjob ended: connect, authenticate, open the tape,
# back up, the DMA's shutdown); the NDMP data phase (START_BACKUP to
# DATA_HALTED, the tape synced, from the server's log); and the
# throughput ratios NDMP / dump, each the median of the rounds' ratios
# with their lowest and highest (the aim: 0.9 or more for the whole job).
set -u
SNAPFS=${SNAPFS:-build/release/snapfs}
DIR=${NDMPBENCH_DIR:-/var/tmp/snapfs-ndmpbench}
MB=${NDMPBENCH_MB:-1024}
FILES=${NDMPBENCH_FILES:-2000}
REPS=${NDMPBENCH_REPS:-3}
HIST=${NDMPBENCH_HIST:-0}
NDMJOB=$(dpkg -L amanda-common 2>/dev/null | grep '/ndmjob$' | head -1)
SERVER=

log() { printf '[ndmpbench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
now() { date +%s.%N; }
drop_caches() { sync; [ "$(id -u)" = 0 ] && echo 3 >/proc/sys/vm/drop_caches; }
median() { sort -n | awk '{ a[NR] = $1 } END { printf "%.3f\n", a[int((NR + 1) / 2)] }'; }

cleanup() {
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
	mountpoint -q "$DIR/mnt" && "$SNAPFS" umount "$DIR/mnt" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT

[ -x "$NDMJOB" ] || die "needs ndmjob (amanda-common: make deps)"
rm -rf "$DIR" && mkdir -p "$DIR/mnt" "$DIR/tapes" "$DIR/conf" || die "cannot make $DIR"
export SNAPFS_CONFIG_DIR=$DIR/conf
log "volume: $MB MB in files of 100 MB and $FILES small files"
"$SNAPFS" mkfs "$DIR/store" --size $((MB * 2 + 1024))M >/dev/null || die mkfs
"$SNAPFS" mount "$DIR/store" "$DIR/mnt" || die mount
for ((i = 0; i < MB / 100; i++)); do
	head -c 100000000 /dev/urandom >"$DIR/mnt/f$i" || die "writing f$i"
done
mkdir "$DIR/mnt/small" && for ((i = 0; i < FILES; i++)); do echo "$i" >"$DIR/mnt/small/$i"; done
sync

"$SNAPFS" ndmp password bench >"$DIR/pw" 2>/dev/null || die "ndmp password"
( cd / && exec "$SNAPFS" ndmp serve --port 0 --listen 127.0.0.1 --tape-dir "$DIR/tapes" -f \
	>"$DIR/server.out" 2>"$DIR/server.log" </dev/null ) &
SERVER=$!
for _ in $(seq 100); do grep -q "listening on port" "$DIR/server.out" && break; sleep 0.1; done
PORT=$(sed -n 's/.*listening on port //p' "$DIR/server.out")
[ -n "$PORT" ] || die "the server did not start: $(cat "$DIR/server.log")"
AGENT="127.0.0.1:$PORT/4m,bench,$(cat "$DIR/pw")"

: >"$DIR/t.dump" >"$DIR/t.job" >"$DIR/t.data" >"$DIR/r.job" >"$DIR/r.data"
run_dump() {
	rm -f "$DIR/dump.0" && drop_caches
	local t=$(now)
	"$SNAPFS" dump -0 -b 64 -f "$DIR/dump.0" "$DIR/mnt" 2>/dev/null || die "snapfs dump"
	echo "$(now) - $t" | bc -l >>"$DIR/t.dump"
}
run_ndmp() {
	: >"$DIR/tapes/t0" && drop_caches
	local t=$(now)
	local index=()
	[ "$HIST" = 1 ] && rm -f "$DIR/index" && index=(-I "$DIR/index")
	"$NDMJOB" -v -c -D "$AGENT" -B dump -b 128 -f "$DIR/tapes/t0" -C "$DIR/mnt" "${index[@]}" >"$DIR/job.out" 2>&1
	echo "$(now) - $t" | bc -l >>"$DIR/t.job"
	grep -q "Operation ended OKAY" "$DIR/job.out" || die "the NDMP backup failed: $(tail -5 "$DIR/job.out")"
	sed -n 's/.*backup done: [0-9]* bytes in \([0-9.]*\) s.*/\1/p' "$DIR/server.log" | tail -1 >>"$DIR/t.data"
}
log "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= REPS; r++)); do
	if ((r % 2)); then run_dump; run_ndmp; else run_ndmp; run_dump; fi
	d=$(tail -1 "$DIR/t.dump") j=$(tail -1 "$DIR/t.job") p=$(tail -1 "$DIR/t.data")
	echo "$d / $j" | bc -l >>"$DIR/r.job"
	echo "$d / $p" | bc -l >>"$DIR/r.data"
	log "round $r ($( ((r % 2)) && echo "dump first" || echo "NDMP first")): dump $d s, NDMP job $j s (ratio $(printf %.2f "$(tail -1 "$DIR/r.job")")), data phase $p s; load $(cut -d' ' -f1 /proc/loadavg)"
done
range() { sort -g "$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }'; }
ratio() { sort -g "$1" | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] }'; }
BYTES=$(stat -c %s "$DIR/dump.0")
d=$(median <"$DIR/t.dump") j=$(median <"$DIR/t.job") p=$(median <"$DIR/t.data")
printf '%-34s %8s s %8.1f MB/s\n' "snapfs dump -0 -f FILE" "$d" "$(echo "$BYTES / $d / 1000000" | bc -l)"
printf '%-34s %8s s %8.1f MB/s\n' "NDMP job (ndmjob, LOCAL$([ "$HIST" = 1 ] && echo ", HIST=y" || echo " mover"))" "$j" "$(echo "$BYTES / $j / 1000000" | bc -l)"
printf '%-34s %8s s %8.1f MB/s\n' "NDMP data phase" "$p" "$(echo "$BYTES / $p / 1000000" | bc -l)"
printf 'ratio NDMP job / dump (throughput):        %s   per round %s\n' "$(ratio "$DIR/r.job")" "$(range "$DIR/r.job")"
printf 'ratio NDMP data phase / dump (throughput): %s   per round %s\n' "$(ratio "$DIR/r.data")" "$(range "$DIR/r.data")"
printf '%d rounds of %s bytes; load average at the end: %s on %s cores\n' "$REPS" "$BYTES" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
