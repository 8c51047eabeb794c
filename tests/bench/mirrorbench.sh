#!/bin/bash
# snapfs replication benchmark: `snapfs send | snapfs receive` through a
# local pipe beside `rsync -a` of the same tree from the source mount into
# another snapfs mount (what a user without send/receive would run), for a
# volume of 20,000 files and one of 200,000 in one run: the baseline (whole
# tree), the incremental after changing 1% of the files, and a change of a
# fixed number of files in both volumes.  Caches are dropped before every
# timed phase; after the incremental and after the last fixed change the
# received volume and the rsync copy are checked equal to the source's
# snapshot.  See tests/bench/README.md.
#
#   SNAPFS=path/to/snapfs bash tests/bench/mirrorbench.sh
#
# Knobs: MIRRORBENCH_DIR (/var/tmp/snapfs-mirrorbench), MIRRORBENCH_FILES
# ("20000 200000": one volume per count), MIRRORBENCH_AVG_BYTES (10737: the
# mean file size, so that 200,000 files hold 2 GiB), MIRRORBENCH_CHANGE_PCT
# (1), MIRRORBENCH_FIXED (200 files changed in each volume),
# MIRRORBENCH_REPS (3 rounds of the fixed change; medians), MIRRORBENCH_OUT
# (mirrorbench-results.txt), MIRRORBENCH_VOLUME_SIZE (16G), MIRRORBENCH_KEEP
# (1: keep the work dir, its volumes unmounted, for a look afterwards).
set -u
SNAPFS=${SNAPFS:-$(cd "$(dirname "$0")/../.." && pwd)/build/release/snapfs}
HERE=$(cd "$(dirname "$0")" && pwd)
TREE=$HERE/mirrortree.py
TREELIST=$HERE/../integration/treelist.py
BASE_DIR=${MIRRORBENCH_DIR:-/var/tmp/snapfs-mirrorbench}
read -r -a SIZES <<<"${MIRRORBENCH_FILES:-20000 200000}"
AVG=${MIRRORBENCH_AVG_BYTES:-10737}
PCT=${MIRRORBENCH_CHANGE_PCT:-1}
FIXED=${MIRRORBENCH_FIXED:-200}
REPS=${MIRRORBENCH_REPS:-3}
OUT=${MIRRORBENCH_OUT:-mirrorbench-results.txt}
VOLSIZE=${MIRRORBENCH_VOLUME_SIZE:-16G}
BENCH_NAME=mirrorbench BENCH_KEEP=${MIRRORBENCH_KEEP:-0}
. "$HERE/benchlib.sh"

# sendrecv N SNAP [BASE]: time `send SNAP [--from BASE] | receive` of
# volume N into its destination, cold; sets SECS and BYTES (the stream).
sendrecv() {
	local n=$1 snap=$2 base=${3:-} t log=$W/logs/sendrecv.$1.$2
	drop_caches
	t=$(now)
	"$SNAPFS" send "$W/src$n.mnt" "$snap" ${base:+--from "$base"} -v 2>"$log.send" |
		"$SNAPFS" receive "$W/dst$n.store" -v --handshake >"$log.hs" 2>"$log.recv"
	local ps=("${PIPESTATUS[@]}")
	SECS=$(calc "$(now) - $t")
	if [ "${ps[0]}" != 0 ] || [ "${ps[1]}" != 0 ]; then
		cat "$log.send" "$log.recv" >&2
		die "send $snap${base:+ --from $base} | receive of the $n-file volume failed"
	fi
	# receive --handshake prints "ok NAME STREAM_BYTES" for each snapshot
	BYTES=$(awk '$1 == "ok" { b += $3 } END { printf "%.0f\n", b }' "$log.hs")
	[ "$BYTES" -gt 0 ] || die "no stream byte count in $log.hs"
	log "  $n files: send $snap${base:+ --from $base} | receive: $SECS s, $BYTES stream bytes ($(tr -d '\n' <"$log.send"); $(tr -d '\n' <"$log.recv"))"
}

# rsync_to N: time `rsync -a --delete` of the live source tree of volume N
# into its rsync copy, cold, with the copy's data committed (syncfs, then
# fsync of its root: snapfs commits everything); sets SECS.
# --modify-window=-1 compares nanoseconds: without it rsync (since 3.1.3)
# takes a directory whose mtime matches to the second as up to date and
# leaves it a fraction of a second off, so the copy would not be equal.
rsync_to() {
	local n=$1 t
	drop_caches
	t=$(now)
	rsync -a --delete --modify-window=-1 --exclude=/.snapshot "$W/src$n.mnt/" "$W/rs$n.mnt/" ||
		die "rsync of the $n-file volume failed"
	sync -f "$W/rs$n.mnt" && sync "$W/rs$n.mnt" || die "sync of $W/rs$n.mnt failed"
	SECS=$(calc "$(now) - $t")
	log "  $n files: rsync -a --delete: $SECS s"
}

# change N COUNT SEED TAG SNAP: COUNT changes to volume N, then snapshot
# SNAP; sets CHANGED_BYTES.
change() {
	local n=$1 out
	out=$(python3 "$TREE" change "$W/src$n.mnt" "$W/manifest.$n" "$2" "$3" "$4") ||
		die "changing the $n-file volume failed"
	CHANGED_BYTES=$(echo "$out" | awk '{ print $NF }')
	log "  $n files: $out"
	"$SNAPFS" snapshot create "$W/src$n.mnt" "$5" >/dev/null || die "snapshot $5 failed"
}

# verify N SNAP: the received volume (mounted read-only: its newest
# snapshot) and the rsync copy both list as the source's snapshot SNAP.
verify() {
	local n=$1 snap=$2 l=$W/logs/list.$1.$2
	mount_vol "$W/dst$n.store" "$W/dst$n.mnt" ro
	python3 "$TREELIST" "$W/src$n.mnt/.snapshot/$snap" >"$l.src" &
	local p1=$!
	python3 "$TREELIST" "$W/dst$n.mnt" >"$l.dst" &
	local p2=$!
	python3 "$TREELIST" "$W/rs$n.mnt" >"$l.rs" || die "listing $W/rs$n.mnt failed"
	wait $p1 || die "listing the source snapshot $snap failed"
	wait $p2 || die "listing the received volume failed"
	umount_vol "$W/dst$n.mnt"
	local lines
	lines=$(wc -l <"$l.src")
	[ "$lines" -gt "$n" ] || die "the listing of snapshot $snap has only $lines lines"
	cmp -s "$l.src" "$l.dst" || {
		diff "$l.src" "$l.dst" | head -20 >&2
		die "$n files: the received volume differs from the source's snapshot $snap"
	}
	cmp -s "$l.src" "$l.rs" || {
		diff "$l.src" "$l.rs" | head -20 >&2
		die "$n files: the rsync copy differs from the source's snapshot $snap"
	}
	log "  $n files: received volume and rsync copy equal snapshot $snap ($lines entries)"
}

for t in rsync python3 awk mountpoint; do
	command -v $t >/dev/null || die "needs $t (make deps)"
done
[ -x "$SNAPFS" ] || die "no snapfs binary at $SNAPFS"
[ "$(id -u)" = 0 ] || log "not root: caches are not dropped"
mkdir -p "$BASE_DIR" && W=$(mktemp -d "$BASE_DIR/run.XXXXXX") || die "cannot make a work dir under $BASE_DIR"
mkdir -p "$W/logs"

log "volumes: ${SIZES[*]} files, ${AVG} bytes each on average; work dir $W"
for n in "${SIZES[@]}"; do
	for v in src rs dst; do
		"$SNAPFS" mkfs "$W/$v$n.store" --size "$VOLSIZE" >/dev/null || die "mkfs $v$n failed"
	done
	mount_vol "$W/src$n.store" "$W/src$n.mnt"
	mount_vol "$W/rs$n.store" "$W/rs$n.mnt"
done
for n in "${SIZES[@]}"; do
	log "filling the $n-file volume"
	out=$(python3 "$TREE" fill "$W/src$n.mnt" "$W/manifest.$n" "$n" $((n * AVG)) 1) ||
		die "filling the $n-file volume failed"
	put "data_bytes_$n" "$(echo "$out" | awk '{ print $NF }')"
	"$SNAPFS" snapshot create "$W/src$n.mnt" A >/dev/null || die "snapshot A failed"
done

log "baseline: send A | receive, then rsync -a into an empty volume"
for n in "${SIZES[@]}"; do
	sendrecv "$n" A
	put "base_secs_$n" "$SECS"
	put "base_stream_bytes_$n" "$BYTES"
	rsync_to "$n"
	put "rsync_base_secs_$n" "$SECS"
done

log "incremental: change $PCT% of the files, snapshot B, send B --from A | receive, rsync"
for n in "${SIZES[@]}"; do
	k=$((n * PCT / 100))
	change "$n" "$k" 2 b B
	put "incr_files_$n" "$k"
	put "incr_data_bytes_$n" "$CHANGED_BYTES"
done
for n in "${SIZES[@]}"; do
	sendrecv "$n" B A
	put "incr_secs_$n" "$SECS"
	put "incr_stream_bytes_$n" "$BYTES"
	rsync_to "$n"
	put "rsync_incr_secs_$n" "$SECS"
done
log "checking the received volumes and the rsync copies against snapshot B"
for n in "${SIZES[@]}"; do
	verify "$n" B
done

log "fixed change: $FIXED files in every volume, $REPS rounds"
declare -A fs fb fr
prev=B
for ((r = 1; r <= REPS; r++)); do
	for n in "${SIZES[@]}"; do
		change "$n" "$FIXED" $((100 + r)) "c$r" "C$r"
		sendrecv "$n" "C$r" "$prev"
		fs[$n]+=" $SECS"
		fb[$n]+=" $BYTES"
		rsync_to "$n"
		fr[$n]+=" $SECS"
	done
	prev=C$r
done
for n in "${SIZES[@]}"; do
	put "fixed_files_$n" "$FIXED"
	put "fixed_secs_$n" "$(echo "${fs[$n]}" | median)"
	put "fixed_secs_rounds_$n" "$(echo ${fs[$n]} | tr ' ' ,)"
	put "fixed_stream_bytes_$n" "$(echo "${fb[$n]}" | median | cut -d. -f1)"
	put "rsync_fixed_secs_$n" "$(echo "${fr[$n]}" | median)"
	put "rsync_fixed_secs_rounds_$n" "$(echo ${fr[$n]} | tr ' ' ,)"
done
log "checking the received volumes and the rsync copies against snapshot $prev"
for n in "${SIZES[@]}"; do
	verify "$n" "$prev"
done

# derived figures
for n in "${SIZES[@]}"; do
	put "base_mbs_$n" "$(calc "${R[base_stream_bytes_$n]} / ${R[base_secs_$n]} / 1e6" 1)"
	put "incr_mbs_$n" "$(calc "${R[incr_stream_bytes_$n]} / ${R[incr_secs_$n]} / 1e6" 1)"
	put "incr_ms_per_file_$n" "$(calc "${R[incr_secs_$n]} * 1000 / ${R[incr_files_$n]}" 2)"
	put "rsync_incr_ms_per_file_$n" "$(calc "${R[rsync_incr_secs_$n]} * 1000 / ${R[incr_files_$n]}" 2)"
	put "base_ratio_rsync_$n" "$(calc "${R[rsync_base_secs_$n]} / ${R[base_secs_$n]}" 2)"
	put "incr_ratio_rsync_$n" "$(calc "${R[rsync_incr_secs_$n]} / ${R[incr_secs_$n]}" 2)"
	put "fixed_ratio_rsync_$n" "$(calc "${R[rsync_fixed_secs_$n]} / ${R[fixed_secs_$n]}" 2)"
done

for n in "${SIZES[@]}"; do put "data_mib_$n" "$(calc "${R[data_bytes_$n]} / 1048576" 1)"; done

# the table: one column per volume, then the last over the first
first=${SIZES[0]} last=${SIZES[${#SIZES[@]} - 1]}
row() { # LABEL KEY FORMAT
	local n line
	line=$(printf '%-44s' "$1")
	for n in "${SIZES[@]}"; do
		line+=$(printf " %14${3}" "${R[$2_$n]}")
	done
	[ "$first" != "$last" ] && line+=$(printf ' %11.2f' "$(calc "${R[$2_$last]} / ${R[$2_$first]}" 4)")
	echo "$line"
}
{
	echo
	line=$(printf '%-44s' "snapfs send|receive vs rsync -a, cold")
	for n in "${SIZES[@]}"; do line+=$(printf ' %8s files' "$n"); done
	[ "$first" != "$last" ] && line+=$(printf ' %11s' "$last/$first")
	echo "$line"
	row "tree (MiB)" data_mib .1f
	row "baseline send|receive (s)" base_secs .2f
	row "  stream (bytes)" base_stream_bytes .0f
	row "  MB/s" base_mbs .1f
	row "baseline rsync -a (s)" rsync_base_secs .2f
	row "  rsync / snapfs" base_ratio_rsync .2f
	row "$PCT% change: files changed" incr_files .0f
	row "  bytes written" incr_data_bytes .0f
	row "incremental send|receive (s)" incr_secs .3f
	row "  stream (bytes)" incr_stream_bytes .0f
	row "  MB/s" incr_mbs .1f
	row "  ms per changed file" incr_ms_per_file .2f
	row "incremental rsync -a --delete (s)" rsync_incr_secs .2f
	row "  rsync / snapfs (aim >= 10)" incr_ratio_rsync .2f
	row "fixed change: files changed" fixed_files .0f
	row "  send|receive (s, median of $REPS)" fixed_secs .3f
	row "  stream (bytes)" fixed_stream_bytes .0f
	row "  rsync -a --delete (s, median)" rsync_fixed_secs .2f
	row "  rsync / snapfs" fixed_ratio_rsync .2f
	if [ "$first" != "$last" ]; then
		echo
		echo "last column: the $last-file volume over the $first-file one. The $PCT% change is"
		echo "$(calc "$last / $first" 0)x as many files, so its send|receive should grow about that much"
		echo "(per changed file: about 1x); the fixed change should not grow."
	fi
} | tee "$W/table"

{
	for k in "${KEYS[@]}"; do echo "$k ${R[$k]}"; done
	echo "files ${SIZES[*]}" | tr ' ' , | sed 's/,/ /'
	echo "change_pct $PCT"
	echo "reps $REPS"
	echo "drop_caches $([ "$(id -u)" = 0 ] && echo 1 || echo 0)"
	echo "snapfs $SNAPFS"
	echo "rsync $(rsync --version | head -1 | awk '{ print $3 }')"
	echo "kernel $(uname -r)"
	echo "backing_fs $(df -T "$BASE_DIR" | awk 'NR == 2 { print $2 }')"
	echo "nproc $(nproc)"
	echo "loadavg $(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
} >"$OUT" || die "cannot write $OUT"
log "summary in $OUT"
