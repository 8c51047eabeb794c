#!/bin/bash
# snapfs scale benchmark (`make bench-scale`): how each cost grows with the
# number of files.  For each file count (SCALEBENCH_FILES, "200000 2000000")
# it makes a volume of that many small files, PER_DIR to a directory, plus
# data files in proportion (SCALEBENCH_DATA_MB at the largest count), and
# measures, on the same volume:
#
#   create     small files created per second through the mount (two
#              writer processes, the final sync included); the data's MiB/s
#   mount      `snapfs mount` of the full volume (cold: page cache dropped)
#   find       names listed per second by `find` of the whole tree, cold
#   ls -lR     entries per second of `ls -lR` of the whole tree, cold
#              (a stat of every file: a lookup and a getattr each)
#   snapshot   `snapshot create` (whole command and the daemon's part),
#              idle and while a writer runs, and the writer's latency
#              with and without creates (snapcreate.py)
#   reclaim    after changing 1% of the small files and of the data
#              between two snapshots: the time of `snapshot reclaim` (the
#              estimate) and of `snapshot delete` (the reclaim itself),
#              the bytes estimated and the bytes the delete gave back
#   memory     the daemon's peak resident set (VmHWM) in each phase
#              (fill; find; ls -lR; snapshot creates with the writer; the
#              change, reclaim and delete), the peak reset between phases
#              (clear_refs), against SCALEBENCH_RSS_LIMIT_MB (256); and
#              what the inodes the kernel holds after the `find` and
#              after the `ls -lR` cost: the resident set (VmRSS), the
#              growth of its anonymous part (RssAnon: less the store's
#              mapped pages) per name listed, and the daemon's own count
#              of the inodes and its node table's bytes (`snapfs stats
#              --json`: daemon inodes_held, node_bytes; NA from a daemon
#              without them)
#   space      the store's pages in use per logical byte written
#
# and prints a table with one column per count and the ratio of the last
# to the first.  Rates, snapshot times, mount time, memory and bytes per
# byte should stay flat; the reclaim follows the change (ten times the
# files, ten times the change).
#
#   SNAPFS=build/release/snapfs bash tests/bench/scalebench.sh      # full, ~40 min
#   SCALEBENCH_FILES="2000 20000" SCALEBENCH_DATA_MB=64 SCALEBENCH_CREATES=10 \
#       bash tests/bench/scalebench.sh                               # smoke, ~1 min
#
# Knobs: SCALEBENCH_DIR (/var/tmp/snapfs-scalebench; the work dir is made
# under it and removed at the end), SCALEBENCH_FILES, SCALEBENCH_PER_DIR
# (100), SCALEBENCH_FILE_BYTES (1024), SCALEBENCH_DATA_MB (20480),
# SCALEBENCH_DATA_FILE_MB (1024), SCALEBENCH_CREATES (100),
# SCALEBENCH_RSS_LIMIT_MB (256), SCALEBENCH_OUT
# (scalebench-results.txt), SCALEBENCH_KEEP (1: keep the work dir),
# SCALEBENCH_DROP_CACHES (1 as root; 0: never drop the page cache).
# It needs /dev/fuse and python3, and root to drop the page cache (without
# it the listings are warm, and the summary says drop_caches 0).
set -u
BENCH_NAME=scalebench
SNAPFS=${SNAPFS:-$(cd "$(dirname "$0")/../.." && pwd)/build/release/snapfs}
BASE_DIR=${SCALEBENCH_DIR:-/var/tmp/snapfs-scalebench}
COUNTS=${SCALEBENCH_FILES:-200000 2000000}
PER_DIR=${SCALEBENCH_PER_DIR:-100}
FILE_BYTES=${SCALEBENCH_FILE_BYTES:-1024}
DATA_MB=${SCALEBENCH_DATA_MB:-20480}
DATA_FILE_MB=${SCALEBENCH_DATA_FILE_MB:-1024}
CREATES=${SCALEBENCH_CREATES:-100}
RSS_LIMIT_MB=${SCALEBENCH_RSS_LIMIT_MB:-256}
OUT=${SCALEBENCH_OUT:-scalebench-results.txt}
BENCH_KEEP=${SCALEBENCH_KEEP:-0}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/benchlib.sh"

[ -x "$SNAPFS" ] || die "no snapfs binary at $SNAPFS"
[ -e /dev/fuse ] || die "needs /dev/fuse"
command -v python3 >/dev/null || die "needs python3"
mkdir -p "$BASE_DIR" && W=$(mktemp -d "$BASE_DIR/run.XXXXXX") || die "cannot make a work dir under $BASE_DIR"
LARGEST=$(printf '%s\n' $COUNTS | sort -n | tail -1)
DROP=0
[ "$(id -u)" = 0 ] && DROP=${SCALEBENCH_DROP_CACHES:-1}

elapsed() { calc "$(now) - $1" 3; }
# the daemon of STORE: its pid, from STORE/daemon.pid
daemon_pid() { cat "$1/daemon.pid" 2>/dev/null; }
# VmHWM of PID in MiB
hwm_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null; }
# VmRSS of PID in KiB
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
# RssAnon of PID in KiB (the resident set less the store's mapped pages)
anon_kib() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
# stats_daemon MNT FIELD: a field of `snapfs stats --json`'s daemon
# object, NA if the daemon has no such field
stats_daemon() {
	"$SNAPFS" stats "$1" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["daemon"].get(sys.argv[1], "NA"))' "$2"
}
# peak KEY STORE: the daemon's peak resident set since the last peak (or
# its start) as KEY, then the peak starts again from what is resident now
# (clear_refs 5: the kernel's reset of VmHWM)
peak() {
	local pid
	pid=$(daemon_pid "$2")
	put "$1" "$(hwm_mib "$pid")"
	echo 5 >"/proc/$pid/clear_refs" 2>/dev/null
}
info_field() { # MNT FIELD: a number from `snapfs info --json`
	"$SNAPFS" info "$1" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}
# remount STORE MNT cold; seconds the mount took (into MOUNT_SECS)
remount_cold() {
	umount_vol "$2"
	[ "$DROP" = 1 ] && drop_caches
	local t
	t=$(now)
	"$SNAPFS" mount "$1" "$2" || die "mount $1 on $2 failed"
	stat "$2" >/dev/null || die "the mount $2 does not answer"
	MOUNT_SECS=$(elapsed "$t")
}

# put_held_memory PHASE N MNT PID ANON0_KIB NAMES: what the inodes the
# listing PHASE left the kernel holding cost the daemon (keys PHASE_..._N)
put_held_memory() {
	local p=$1 n=$2 inodes bytes
	put "${p}_rss_mib_$n" "$(calc "$(rss_kib "$4") / 1024" 1)"
	put "${p}_anon_growth_per_name_bytes_$n" "$(calc "($(anon_kib "$4") - $5) * 1024 / $6" 1)"
	inodes=$(stats_daemon "$3" inodes_held) && bytes=$(stats_daemon "$3" node_bytes) || die "snapfs stats failed"
	put "${p}_inodes_held_$n" "$inodes"
	put "${p}_node_bytes_$n" "$bytes"
	if [ "$inodes" != NA ] && [ "$inodes" -gt 0 ]; then
		put "${p}_node_bytes_per_inode_$n" "$(calc "$bytes / $inodes" 1)"
	else
		put "${p}_node_bytes_per_inode_$n" NA
	fi
}

# one_count N: every measurement for a volume of N files (keys _N)
one_count() {
	local n=$1 st="$W/st.$1" mnt="$W/mnt.$1" t pid
	local data_mb=$(( DATA_MB * n / LARGEST ))
	[ "$data_mb" -ge 1 ] || data_mb=1
	local size_gb=$(( (data_mb * 3 + n * 20 / 1024) / 1024 + 4 ))
	log "$n files: mkfs (--size ${size_gb}G), fill with $n files of $FILE_BYTES bytes, $PER_DIR a directory, and $data_mb MiB of data"
	"$SNAPFS" mkfs "$st" --size "${size_gb}G" >/dev/null || die "mkfs failed"
	mount_vol "$st" "$mnt"

	t=$(now)
	python3 "$HERE/scalefill.py" fill "$mnt" "$n" "$PER_DIR" "$FILE_BYTES" >/dev/null || die "filling failed"
	sync -f "$mnt"
	local secs
	secs=$(elapsed "$t")
	put "create_files_per_sec_$n" "$(calc "$n / $secs" 0)"
	put "create_secs_$n" "$secs"
	t=$(now)
	python3 "$HERE/scalefill.py" data "$mnt" "$data_mb" "$DATA_FILE_MB" >/dev/null || die "writing data failed"
	sync -f "$mnt"
	put "data_mib_per_sec_$n" "$(calc "$data_mb / $(elapsed "$t")" 1)"
	local logical=$(( n * FILE_BYTES + data_mb * 1048576 ))
	local pages psize
	pages=$(info_field "$mnt" pages_in_use) && psize=$(info_field "$mnt" page_size) || die "snapfs info failed"
	put "logical_bytes_$n" "$logical"
	put "store_bytes_in_use_$n" "$(( pages * psize ))"
	put "store_bytes_per_logical_byte_$n" "$(calc "$pages * $psize / $logical" 4)"
	peak "rss_fill_mib_$n" "$st"
	log "$n files: created at ${R[create_files_per_sec_$n]}/s, data at ${R[data_mib_per_sec_$n]} MiB/s, peak RSS ${R[rss_fill_mib_$n]} MiB"

	remount_cold "$st" "$mnt"
	put "mount_secs_$n" "$MOUNT_SECS"
	pid=$(daemon_pid "$st")
	local anon0
	anon0=$(anon_kib "$pid")
	t=$(now)
	local names
	names=$(find "$mnt" -name .snapshot -prune -o -print | wc -l)
	secs=$(elapsed "$t")
	put "find_names_$n" "$names"
	put "find_names_per_sec_$n" "$(calc "$names / $secs" 0)"
	put "find_secs_$n" "$secs"
	put_held_memory find "$n" "$mnt" "$pid" "$anon0" "$names"
	peak "rss_find_mib_$n" "$st"
	remount_cold "$st" "$mnt"
	put "mount2_secs_$n" "$MOUNT_SECS"
	pid=$(daemon_pid "$st")
	anon0=$(anon_kib "$pid")
	t=$(now)
	local lines
	lines=$(cd "$mnt" && ls -lR . | grep -c '^[-dl]')
	secs=$(elapsed "$t")
	put_held_memory ls_lR "$n" "$mnt" "$pid" "$anon0" "$lines"
	put "ls_lR_entries_$n" "$lines"
	put "ls_lR_entries_per_sec_$n" "$(calc "$lines / $secs" 0)"
	put "ls_lR_secs_$n" "$secs"
	peak "rss_ls_lR_mib_$n" "$st"
	log "$n files: mount ${R[mount_secs_$n]} s, find ${R[find_names_per_sec_$n]} names/s, ls -lR ${R[ls_lR_entries_per_sec_$n]} entries/s"

	local key value
	while read -r key value; do
		put "${key}_$n" "$value"
	done < <(python3 "$HERE/snapcreate.py" "$SNAPFS" "$mnt" "$st" --creates "$CREATES" \
		--idle 20 --prefix sc || die "snapcreate.py failed")
	peak "rss_snapshots_mib_$n" "$st"
	log "$n files: snapshot create ${R[create_idle_p50_ms_$n]} ms (daemon ${R[create_daemon_idle_p50_ms_$n]}), while writing ${R[create_writing_p50_ms_$n]}/${R[create_writing_p99_ms_$n]} ms; writer p99 ${R[writer_alone_p99_ms_$n]} -> ${R[writer_during_p99_ms_$n]} ms"

	# the snapshots of the create test go first, so that "before" alone
	# holds what the change replaces
	local sc
	sc=$("$SNAPFS" snapshot list "$mnt" --json | python3 -c 'import json, sys; print(" ".join(s["name"] for s in json.load(sys.stdin) if s["name"].startswith("sc-")))') || die "snapshot list failed"
	t=$(now)
	"$SNAPFS" snapshot delete "$mnt" $sc >/dev/null || die "snapshot delete failed"
	put "delete_create_test_snapshots_secs_$n" "$(elapsed "$t")"
	put "create_test_snapshots_$n" "$(echo $sc | wc -w)"
	"$SNAPFS" snapshot create "$mnt" before >/dev/null || die "snapshot create failed"
	local changed
	changed=$(python3 "$HERE/scalefill.py" change "$mnt" "$n" "$PER_DIR" "$FILE_BYTES" 1) || die "changing failed"
	python3 "$HERE/scalefill.py" rewrite "$mnt" "$data_mb" "$DATA_FILE_MB" 1 >/dev/null || die "rewriting failed"
	sync -f "$mnt"
	"$SNAPFS" snapshot create "$mnt" after >/dev/null || die "snapshot create failed"
	put "changed_files_$n" "$changed"
	t=$(now)
	local est
	est=$("$SNAPFS" snapshot reclaim "$mnt" before --json) || die "snapshot reclaim failed"
	put "reclaim_estimate_secs_$n" "$(elapsed "$t")"
	put "reclaim_estimate_bytes_$n" "$(printf '%s' "$est" | python3 -c 'import json, sys; print(json.load(sys.stdin)["physical_bytes"])')"
	local used0 used1
	used0=$(info_field "$mnt" used)
	t=$(now)
	"$SNAPFS" snapshot delete "$mnt" before >/dev/null || die "snapshot delete failed"
	put "reclaim_delete_secs_$n" "$(elapsed "$t")"
	used1=$(info_field "$mnt" used)
	put "reclaim_freed_bytes_$n" "$(( used0 - used1 ))"
	put "reclaim_ms_per_changed_file_$n" "$(calc "${R[reclaim_delete_secs_$n]} * 1000 / $changed" 4)"
	peak "rss_change_reclaim_mib_$n" "$st"
	log "$n files: reclaim estimate ${R[reclaim_estimate_secs_$n]} s, delete ${R[reclaim_delete_secs_$n]} s ($changed files changed); peak RSS: find ${R[rss_find_mib_$n]}, ls -lR ${R[rss_ls_lR_mib_$n]}, snapshots ${R[rss_snapshots_mib_$n]}, change and reclaim ${R[rss_change_reclaim_mib_$n]} MiB"

	umount_vol "$mnt"
	rm -rf "$st"
}

log "counts: $COUNTS; $FILE_BYTES-byte files, $PER_DIR a directory; $DATA_MB MiB of data at $LARGEST files; drop_caches $DROP"
for n in $COUNTS; do
	one_count "$n"
done

# ---- the table and the summary ----
FIRST=$(printf '%s\n' $COUNTS | head -1)
rows=(
	"create_files_per_sec|small files created (/s)|flat"
	"data_mib_per_sec|data written (MiB/s)|flat"
	"mount_secs|mount, cold (s)|flat"
	"find_names_per_sec|find, cold (names/s)|flat"
	"ls_lR_entries_per_sec|ls -lR, cold (entries/s)|flat"
	"start_p50_ms|process start (snapfs help), p50 (ms)|flat"
	"create_idle_p50_ms|snapshot create, idle, p50 (ms)|flat"
	"create_idle_p99_ms|snapshot create, idle, p99 (ms)|flat"
	"create_daemon_idle_p50_ms|  the daemon's part, p50 (ms)|flat"
	"create_writing_p50_ms|snapshot create, writer running, p50 (ms)|flat"
	"create_writing_p99_ms|snapshot create, writer running, p99 (ms)|flat"
	"writer_alone_p99_ms|writer op p99, no creates (ms)|flat"
	"writer_during_p99_ms|writer op p99, during creates (ms)|flat"
	"writer_during_max_ms|writer op max, during creates (ms)|flat"
	"reclaim_estimate_secs|reclaim estimate after 1% (s)|follows the change"
	"reclaim_delete_secs|snapshot delete after 1% (s)|follows the change"
	"reclaim_ms_per_changed_file|  delete per changed file (ms)|flat"
	"reclaim_freed_bytes|  bytes given back by the delete|follows the change"
	"rss_fill_mib|daemon peak RSS: fill (MiB)|flat"
	"rss_find_mib|  find (MiB)|flat"
	"rss_ls_lR_mib|  ls -lR (MiB)|flat"
	"rss_snapshots_mib|  snapshot creates, writer (MiB)|flat"
	"rss_change_reclaim_mib|  1% change, reclaim, delete (MiB)|flat"
	"find_rss_mib|daemon RSS after find (MiB)|the inodes held"
	"find_anon_growth_per_name_bytes|  anonymous memory grown per name (bytes)|flat"
	"find_inodes_held|  inodes held by the kernel|follows the files"
	"find_node_bytes_per_inode|  node table bytes per inode held|flat"
	"ls_lR_rss_mib|daemon RSS after ls -lR (MiB)|the inodes held"
	"ls_lR_anon_growth_per_name_bytes|  anonymous memory grown per entry (bytes)|flat"
	"ls_lR_inodes_held|  inodes held by the kernel|follows the files"
	"ls_lR_node_bytes_per_inode|  node table bytes per inode held|flat"
	"store_bytes_per_logical_byte|store bytes per logical byte|flat"
)
{
	printf '%-44s' "snapfs at scale"
	for n in $COUNTS; do printf ' %14s' "$n files"; done
	printf ' %10s  %s\n' "$LARGEST/$FIRST" "expected"
	for row in "${rows[@]}"; do
		IFS='|' read -r key label expect <<<"$row"
		printf '%-44s' "$label"
		for n in $COUNTS; do printf ' %14s' "${R[${key}_$n]:-NA}"; done
		a=${R[${key}_$FIRST]:-} b=${R[${key}_$LARGEST]:-}
		if [ -n "$a" ] && [ -n "$b" ] && awk "BEGIN { exit !($a > 0) }"; then
			printf ' %10s  %s\n' "$(calc "$b / $a" 2)" "$expect"
		else
			printf ' %10s  %s\n' NA "$expect"
		fi
	done
	printf 'load average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$W/table"

put counts "$(echo $COUNTS | tr ' ' ,)"
put per_dir "$PER_DIR"
put file_bytes "$FILE_BYTES"
put data_mb_at_largest "$DATA_MB"
put rss_limit_mib "$RSS_LIMIT_MB"
peak=0
for n in $COUNTS; do
	for k in rss_fill_mib rss_find_mib rss_ls_lR_mib rss_snapshots_mib rss_change_reclaim_mib; do
		v=${R[${k}_$n]:-0}
		awk "BEGIN { exit !($v > $peak) }" && peak=$v
	done
done
put rss_peak_mib "$peak"
put rss_result "$(awk "BEGIN { print ($peak <= $RSS_LIMIT_MB) ? \"PASS\" : \"FAIL\" }")"
put drop_caches "$DROP"
put kernel "$(uname -r)"
put backing_fs "$(stat -f -c %T "$BASE_DIR")"
put loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
missing=0
for k in "${KEYS[@]}"; do
	[ -n "${R[$k]}" ] || missing=$((missing + 1))
done
put missing "$missing"
for k in "${KEYS[@]}"; do printf '%s %s\n' "$k" "${R[$k]}"; done >"$OUT"
log "summary in $OUT"
[ "$missing" = 0 ] || die "$missing figures missing"
