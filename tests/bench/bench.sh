#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup & co. are only reached through traps
# snapfs benchmark harness: snapfs vs. libfuse's passthrough_ll, side by side
# on the same backing filesystem.  See tests/bench/README.md.
#
# Usage: SNAPFS=path/to/snapfs bash tests/bench/bench.sh
#
# Knobs (environment):
#   SNAPFS              snapfs binary      (default: <repo>/build/release/snapfs)
#   BENCH_DIR           parent of the work dir       (/var/tmp/snapfs-bench)
#   BENCH_OUT           key/value summary file       (bench-results.txt)
#   BENCH_REPS          rounds of every workload; figures are medians (4)
#   BENCH_SIZE_MB       sequential write/read size   (1024)
#   BENCH_RAND_MB       random-write file size       (256)
#   BENCH_RAND_RUNTIME  random-write time bound, s   (30)
#   BENCH_FILES         small files                  (20000)
#   BENCH_DIRS          directories for small files  (100)
#   BENCH_RSS_MB        data written for the RSS check (4096)
#   BENCH_RSS_LIMIT_MB  RSS budget of the daemon     (256)
#   BENCH_VOLUME_SIZE   snapfs mkfs --size           (16G)
#   BENCH_MKFS_OPTS     extra snapfs mkfs options    (none)
#   BENCH_MOUNT_OPTS    snapfs mount -o options      (none)
#   BENCH_PT_OPTS       passthrough_ll -o options    (cache=always,writeback,clone_fd)
#   BENCH_REFERENCE     what snapfs is compared with: passthrough (passthrough_ll),
#                       snapfs:OPTS, a second snapfs volume mounted -o OPTS
#                       (snapfs:nostats measures what the statistics cost),
#                       or a FUSE filesystem a user might run instead:
#                       fuse2fs (an ext4 image through e2fsprogs' fuse2fs) or
#                       bindfs (a directory through bindfs, its defaults)
#   BENCH_DROP_CACHES   1/0: drop kernel caches between phases (1 if root)
#   BENCH_SMALL_CHUNK   small files: drop caches every N files (5000)
#   BENCH_SEQ_RUNTIME_CAP  time bound of each sequential fio job, s (240)
#   BENCH_KEEP_LOGS     1: keep fio/daemon logs in $BENCH_DIR/logs.* (0)
#   BENCH_WORKLOADS     which rows to run, of: seqwrite seqread randwrite
#                       smallfiles untar textwrite zerowrite rss (all of them;
#                       seqread reads what seqwrite wrote)
#   BENCH_UNTAR_SRC     tree whose tar is extracted onto each target (/usr/include)
#
# Exit status: 0 if every measurement ran (whatever the figures and the RSS
# verdict), 1 if setup failed or some measurement could not be taken.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

BENCH_DIR=${BENCH_DIR:-/var/tmp/snapfs-bench}
BENCH_OUT=${BENCH_OUT:-bench-results.txt}
SIZE_MB=${BENCH_SIZE_MB:-1024}
RAND_MB=${BENCH_RAND_MB:-256}
RAND_RUNTIME=${BENCH_RAND_RUNTIME:-30}
NFILES=${BENCH_FILES:-20000}
NDIRS=${BENCH_DIRS:-100}
RSS_MB=${BENCH_RSS_MB:-4096}
RSS_LIMIT_MB=${BENCH_RSS_LIMIT_MB:-256}
VOLSIZE=${BENCH_VOLUME_SIZE:-16G}
MKFS_OPTS=${BENCH_MKFS_OPTS:-}
MOUNT_OPTS=${BENCH_MOUNT_OPTS:-}
PT_OPTS=${BENCH_PT_OPTS:-cache=always,writeback,clone_fd}
REFERENCE=${BENCH_REFERENCE:-passthrough}
# fio stops a sequential job after this many seconds (bounds the run on a
# pathologically slow filesystem; the bandwidth figure stays valid)
SEQ_RUNTIME_CAP=${BENCH_SEQ_RUNTIME_CAP:-240}
SMALL_CHUNK=${BENCH_SMALL_CHUNK:-5000}
REPS=${BENCH_REPS:-4}
ALL_WORKLOADS="seqwrite seqread randwrite smallfiles untar textwrite zerowrite rss"
UNTAR_SRC=${BENCH_UNTAR_SRC:-/usr/include}
WORKLOADS=${BENCH_WORKLOADS:-$ALL_WORKLOADS}

EXAMPLES=/usr/share/doc/libfuse3-dev/examples

# progress goes to fd 3, a copy of the original stderr, so that lines logged
# from a trap still reach the terminal while a redirected command runs;
# commands we start get 3>&- so that no daemon keeps it open
exec 3>&2
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&3; }
die() { log "FATAL: $*"; exit 1; }
case $REFERENCE in
passthrough) REF_LABEL="passthrough_ll (-o $PT_OPTS)" REF_COL=passthrough ;;
snapfs:?*) REF_LABEL="snapfs -o ${REFERENCE#snapfs:}" REF_COL="-o ${REFERENCE#snapfs:}" ;;
fuse2fs) REF_LABEL="fuse2fs (an ext4 image)" REF_COL=fuse2fs ;;
bindfs) REF_LABEL="bindfs (defaults)" REF_COL=bindfs ;;
*) die "BENCH_REFERENCE must be passthrough, fuse2fs, bindfs or snapfs:OPTIONS (got '$REFERENCE')" ;;
esac
case $REFERENCE in
fuse2fs | bindfs)
	command -v "$REFERENCE" >/dev/null || die "missing $REFERENCE (make deps installs it)" ;;
esac
command -v mkfs.ext4 >/dev/null || [[ $REFERENCE != fuse2fs ]] || die "missing mkfs.ext4"

for w in $WORKLOADS; do
	[[ " $ALL_WORKLOADS " == *" $w "* ]] || die "BENCH_WORKLOADS: unknown workload '$w' (known: $ALL_WORKLOADS)"
done
wanted() { [[ " $WORKLOADS " == *" $1 "* ]]; }
if wanted untar; then
	[[ -d $UNTAR_SRC ]] || die "BENCH_UNTAR_SRC is not a directory: $UNTAR_SRC"
	command -v tar >/dev/null || die "missing tool: tar"
fi

for v in SIZE_MB RAND_MB RAND_RUNTIME NFILES NDIRS RSS_MB RSS_LIMIT_MB SEQ_RUNTIME_CAP SMALL_CHUNK REPS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done

# ---------------------------------------------------------------- tools ---
SNAPFS=${SNAPFS:-$repo/build/release/snapfs}
if [[ $SNAPFS == */* ]]; then
	resolved=$(realpath -e -- "$SNAPFS" 2>/dev/null) || die "SNAPFS not found: $SNAPFS (build it, or set SNAPFS)"
else
	resolved=$(command -v -- "$SNAPFS") || die "SNAPFS not found in PATH: $SNAPFS"
fi
SNAPFS=$resolved
[[ -x $SNAPFS ]] || die "SNAPFS is not executable: $SNAPFS"

for t in fio cc pkg-config fusermount3 mountpoint timeout; do
	command -v "$t" >/dev/null || die "missing tool: $t"
done
if command -v python3 >/dev/null; then
	JSON=python3
elif command -v jq >/dev/null; then
	JSON=jq
else
	die "need python3 or jq to parse fio's JSON output"
fi
pkg-config --exists fuse3 || die "pkg-config cannot find fuse3 (install libfuse3-dev)"
[[ -c /dev/fuse ]] || die "/dev/fuse is missing"

if [[ -z ${BENCH_DROP_CACHES:-} ]]; then
	if [[ -w /proc/sys/vm/drop_caches ]]; then BENCH_DROP_CACHES=1; else BENCH_DROP_CACHES=0; fi
fi
if [[ $BENCH_DROP_CACHES == 1 && ! -w /proc/sys/vm/drop_caches ]]; then
	die "BENCH_DROP_CACHES=1 but /proc/sys/vm/drop_caches is not writable (run as root)"
fi

# passthrough_ll keeps one O_PATH fd open per inode the kernel remembers, so
# a daemon needs more descriptors than there are live inodes.  Raise the
# limit (inherited by both daemons) where we may (needs CAP_SYS_RESOURCE);
# smallfiles also drops the caches every SMALL_CHUNK files to bound the
# number of live inodes (see smallfiles.c).
nofile_want=$((NFILES * 2 + 4096))
((nofile_want >= 65536)) || nofile_want=65536
nr_open=$(cat /proc/sys/fs/nr_open 2>/dev/null || echo 1048576)
((nofile_want <= nr_open)) || nofile_want=$nr_open
if (($(ulimit -n) < nofile_want)); then
	ulimit -n "$nofile_want" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
if [[ $BENCH_DROP_CACHES == 1 ]]; then live_inodes=$SMALL_CHUNK; else live_inodes=$NFILES; fi
if (($(ulimit -n) < live_inodes + 1024)); then
	log "WARNING: open-file limit $(ulimit -n) may be too low for $live_inodes live inodes" \
		"(passthrough_ll holds ~1 fd per inode); lower BENCH_SMALL_CHUNK"
fi

# resolve BENCH_OUT now, against the caller's working directory
case $BENCH_OUT in /*) ;; *) BENCH_OUT=$PWD/$BENCH_OUT ;; esac

# ------------------------------------------------------ work dir, traps ---
created_bench_dir=0
if [[ ! -d $BENCH_DIR ]]; then
	mkdir -p "$BENCH_DIR"
	created_bench_dir=1
fi
WORK=$(mktemp -d "$BENCH_DIR/run.XXXXXX")
WORK=$(realpath "$WORK")

# space: both seq files and both random-write files live at once, then the
# RSS volume alone; 25% slack for snapfs's own metadata
need_mb=$((2 * SIZE_MB + 2 * RAND_MB + 256))
((need_mb >= RSS_MB + 256)) || need_mb=$((RSS_MB + 256))
need_mb=$((need_mb * 5 / 4))
avail_mb=$(df -Pm "$WORK" | awk 'NR == 2 { print $4 }')
if ((avail_mb < need_mb)); then
	rmdir "$WORK"
	((created_bench_dir)) && rmdir "$BENCH_DIR"
	die "need ~${need_mb} MiB free under $BENCH_DIR, have ${avail_mb} MiB"
fi

PT_BIN=$WORK/bin/passthrough_ll
SF_BIN=$WORK/bin/smallfiles
TX_BIN=$WORK/bin/seqtext
PT_SRC=$WORK/pt-src
PT_MNT=$WORK/pt-mnt
SN_STORE=$WORK/snap-store
SN_MNT=$WORK/snap-mnt
RSS_STORE=$WORK/rss-store
RSS_MNT=$WORK/rss-mnt
REF_STORE=$WORK/ref-store	# BENCH_REFERENCE=snapfs:OPTS: its volume, on PT_MNT
REF_IMAGE=$WORK/ref.ext4	# BENCH_REFERENCE=fuse2fs: the ext4 image, on PT_MNT
LOGS=$WORK/logs
mkdir -p "$WORK/bin" "$PT_SRC" "$PT_MNT" "$SN_MNT" "$RSS_MNT" "$LOGS"

PT_PID=""
CHILD=""        # the workload process running now (fio, smallfiles)
SNAP_PIDS=()    # daemon pids seen, killed in cleanup only if they outlive umount

mounts_under_work() {
	awk -v w="$WORK/" 'index($2 "/", w) == 1 { print $2 }' /proc/mounts
}

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	log "cleaning up ($WORK)"
	local m i
	if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then
		kill -TERM "$CHILD" 2>/dev/null
		for ((i = 0; i < 300; i++)); do
			kill -0 "$CHILD" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$CHILD" 2>/dev/null
		wait "$CHILD" 2>/dev/null
	fi
	for m in "$SN_MNT" "$RSS_MNT"; do
		if mountpoint -q "$m"; then
			timeout -k 5 60 "$SNAPFS" umount "$m" >>"$LOGS/cleanup.log" 2>&1 3>&- ||
				fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		fi
	done
	declare -F stop_pt >/dev/null && stop_pt >/dev/null 2>&1
	local p
	for p in "${SNAP_PIDS[@]}"; do
		if kill -0 "$p" 2>/dev/null; then
			log "snapfs daemon $p still alive after unmount; killing it"
			kill "$p" 2>/dev/null; sleep 1; kill -9 "$p" 2>/dev/null
		fi
	done
	for m in $(mounts_under_work); do
		fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	if [[ -n $(mounts_under_work) ]]; then
		log "WARNING: mounts remain under $WORK; not removing it"
	else
		if [[ ${BENCH_KEEP_LOGS:-0} == 1 && -d $LOGS ]]; then
			local keep
			keep=$BENCH_DIR/logs.$(date +%Y%m%d-%H%M%S).$$
			cp -r "$LOGS" "$keep" && log "logs kept in $keep"
			created_bench_dir=0
		fi
		rm -rf --one-file-system "$WORK"
		((created_bench_dir)) && rmdir "$BENCH_DIR" 2>/dev/null
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# ---------------------------------------------------------------- build ---
log "work dir $WORK (backing fs: $(stat -f -c %T "$WORK"))"
log "snapfs binary: $SNAPFS"
log "building passthrough_ll and smallfiles"
for f in passthrough_ll.c passthrough_helpers.h; do
	if [[ -f $EXAMPLES/$f ]]; then
		cp "$EXAMPLES/$f" "$WORK/bin/$f"
	elif [[ -f $EXAMPLES/$f.gz ]]; then
		gzip -dc "$EXAMPLES/$f.gz" >"$WORK/bin/$f"
	elif [[ $f == passthrough_ll.c ]]; then
		die "$EXAMPLES/passthrough_ll.c(.gz) not found (install libfuse3-dev)"
	fi
done
# shellcheck disable=SC2046
cc -O2 -o "$PT_BIN" "$WORK/bin/passthrough_ll.c" $(pkg-config --cflags --libs fuse3) \
	>"$LOGS/build-pt.log" 2>&1 || { cat "$LOGS/build-pt.log" >&3; die "cannot build passthrough_ll"; }
cc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$SF_BIN" "$here/smallfiles.c" \
	>"$LOGS/build-sf.log" 2>&1 || { cat "$LOGS/build-sf.log" >&3; die "cannot build smallfiles"; }
cc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$TX_BIN" "$here/seqtext.c" \
	>"$LOGS/build-tx.log" 2>&1 || { cat "$LOGS/build-tx.log" >&3; die "cannot build seqtext"; }
# the fake snapfs (tests/bench/fake-snapfs.sh) reuses this binary
export PASSTHROUGH_LL=$PT_BIN

# ------------------------------------------------------- mount helpers ---
# passthrough_ll: multithreaded (no -s), -f so that $! is the daemon itself.
# setsid gives it its own session, as fuse_daemonize() would (with
# sched_autogroup that also puts it in its own scheduling group, like a
# daemonized snapfs).  The background child of a non-interactive shell is not
# a process-group leader, so setsid execs without forking and $! stays right.
# fuse2fs and bindfs run in the foreground (-f) for the same reason.
start_pt() {
	local -a daemon
	case $REFERENCE in
	snapfs:*)
		[[ -d $REF_STORE ]] || snap_mkfs "$REF_STORE"
		snap_mount "$REF_STORE" "$PT_MNT" "${REFERENCE#snapfs:}"
		return ;;
	fuse2fs)
		# an image the size of the snapfs volume, made once, kept across remounts
		if [[ ! -f $REF_IMAGE ]]; then
			truncate -s "$VOLSIZE" "$REF_IMAGE" &&
				mkfs.ext4 -q -F "$REF_IMAGE" >>"$LOGS/reference.log" 2>&1 ||
				{ log "mkfs.ext4 $REF_IMAGE failed"; return 1; }
		fi
		daemon=(fuse2fs "$REF_IMAGE" "$PT_MNT" -f -o fsname=fuse2fs-bench) ;;
	bindfs) daemon=(bindfs -f "$PT_SRC" "$PT_MNT") ;;
	*) daemon=("$PT_BIN" -f -o "source=$PT_SRC,$PT_OPTS,fsname=passthrough_ll-bench" "$PT_MNT") ;;
	esac
	setsid "${daemon[@]}" </dev/null >>"$LOGS/reference.log" 2>&1 3>&- &
	PT_PID=$!
	local i
	for ((i = 0; i < 200; i++)); do
		mountpoint -q "$PT_MNT" && return 0
		kill -0 "$PT_PID" 2>/dev/null || { PT_PID=""; cat "$LOGS/reference.log" >&3; return 1; }
		sleep 0.05
	done
	log "$REF_LABEL did not mount within 10 s"
	return 1
}

stop_pt() {
	if [[ $REFERENCE == snapfs:* ]]; then
		snap_umount "$PT_MNT"
		return
	fi
	if mountpoint -q "$PT_MNT"; then
		fusermount3 -u "$PT_MNT" || fusermount3 -u -z "$PT_MNT"
	fi
	if [[ -n $PT_PID ]]; then
		local i
		for ((i = 0; i < 200; i++)); do
			kill -0 "$PT_PID" 2>/dev/null || break
			sleep 0.05
		done
		if kill -0 "$PT_PID" 2>/dev/null; then
			kill "$PT_PID" 2>/dev/null
		fi
		wait "$PT_PID" 2>/dev/null || true
		PT_PID=""
	fi
}

# pid of the snapfs daemon serving STORE on MNT
snap_pid() {
	local store=$1 mnt=$2 pid=""
	if [[ -f $store/daemon.pid ]]; then
		pid=$(head -n1 "$store/daemon.pid" | tr -dc 0-9)
	fi
	if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
		pid=$(pgrep -f -- "snapfs mount $store" | head -n1) || true
	fi
	if [[ -z $pid ]]; then
		pid=$(fuser -m "$mnt" 2>/dev/null | tr -s ' ' '\n' | grep -x '[0-9]\+' | head -n1) || true
	fi
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

snap_mount() {   # snap_mount STORE MNT [OPTIONS, else BENCH_MOUNT_OPTS]
	local store=$1 mnt=$2 opts=${3:-$MOUNT_OPTS}
	local -a o=()
	[[ -n $opts ]] && o=(-o "$opts")
	timeout -k 5 120 "$SNAPFS" mount "$store" "$mnt" "${o[@]}" >>"$LOGS/snapfs-mount.log" 2>&1 3>&- ||
		{ tail -n 20 "$LOGS/snapfs-mount.log" >&3; log "snapfs mount $store $mnt failed"; return 1; }
	mountpoint -q "$mnt" || { log "snapfs mount returned but $mnt is not mounted"; return 1; }
	local pid
	pid=$(snap_pid "$store" "$mnt") || true
	[[ -n $pid ]] && SNAP_PIDS+=("$pid")
	return 0
}

snap_umount() {
	local mnt=$1
	mountpoint -q "$mnt" || return 0
	timeout -k 5 300 "$SNAPFS" umount "$mnt" >>"$LOGS/snapfs-mount.log" 2>&1 3>&- ||
		{ tail -n 20 "$LOGS/snapfs-mount.log" >&3; log "snapfs umount $mnt failed"; return 1; }
	! mountpoint -q "$mnt" || { log "snapfs umount returned but $mnt is still mounted"; return 1; }
}

snap_mkfs() {
	local store=$1
	mkdir -p "$store"
	# shellcheck disable=SC2086  # MKFS_OPTS is a list of words on purpose
	timeout -k 5 300 "$SNAPFS" mkfs "$store" --size "$VOLSIZE" $MKFS_OPTS \
		>>"$LOGS/snapfs-mkfs.log" 2>&1 3>&- ||
		{ tail -n 20 "$LOGS/snapfs-mkfs.log" >&3; die "snapfs mkfs $store failed"; }
}

drop_caches() {
	sync
	if [[ $BENCH_DROP_CACHES == 1 ]]; then
		echo 3 >/proc/sys/vm/drop_caches
	fi
}

# unmount + mount one target, then drop the kernel caches: the next read
# finds neither the FUSE page cache, the daemon's own caches nor the backing
# filesystem's page cache warm.
remount() {
	case $1 in
	passthrough) stop_pt && start_pt ;;
	snapfs) snap_umount "$SN_MNT" && snap_mount "$SN_STORE" "$SN_MNT" ;;
	esac || return 1
	drop_caches
}

mnt_of() {
	case $1 in
	passthrough) echo "$PT_MNT" ;;
	snapfs) echo "$SN_MNT" ;;
	esac
}

# --------------------------------------------------------- measurement ---
# run_child CMD...: runs CMD (bounded by timeout) in the background and waits
# for it, so that a TERM/INT to this script is handled at once (bash defers
# traps while a foreground child runs); cleanup() stops CHILD.
run_child() {
	timeout -k 10 900 "$@" 3>&- &
	CHILD=$!
	local rc=0
	wait "$CHILD" || rc=$?
	CHILD=""
	return "$rc"
}

declare -A R=()       # R[target.metric] = "v1 v2 ..." (one value per round, NA if failed)
FAILED=()

# json_get FILE DIR FIELD: jobs[0][DIR][FIELD] from a fio JSON file, after
# checking that the job reported no error
json_get() {
	local file=$1 dir=$2 field=$3
	if [[ $JSON == python3 ]]; then
		python3 - "$file" "$dir" "$field" <<-'EOF'
			import json, sys
			path, d, f = sys.argv[1:4]
			with open(path) as fh:
			    text = fh.read()
			# fio may print notes before the JSON document
			doc = json.loads(text[text.index("{"):])
			job = doc["jobs"][0]
			if job.get("error", 0):
			    sys.exit("fio job error %s" % job["error"])
			print(job[d][f])
		EOF
	else
		sed -n '/^{/,$p' "$file" |
			jq -er --arg d "$dir" --arg f "$field" \
				'.jobs[0] | if (.error // 0) != 0 then error("fio job error") else .[$d][$f] end'
	fi
}

# run_fio TAG ARGS...: runs fio with JSON output into $LOGS/TAG.json
run_fio() {
	local tag=$1
	shift
	local rc=0
	run_child fio --name="$tag" --output-format=json --output="$LOGS/$tag.json" \
		--ioengine=psync --direct=0 --numjobs=1 --fallocate=none --refill_buffers \
		"$@" >"$LOGS/$tag.out" 2>&1 || rc=$?
	if ((rc)); then
		log "fio $tag failed (exit $rc):"
		tail -n 20 "$LOGS/$tag.out" >&3
		return 1
	fi
}

record() {   # record TARGET METRIC VALUE
	R[$1.$2]="${R[$1.$2]:-}${R[$1.$2]:+ }$3"
	log "  $1 $2 = $3"
}

record_fail() {   # record_fail TARGET METRIC
	R[$1.$2]="${R[$1.$2]:-}${R[$1.$2]:+ }NA"
	FAILED+=("$1.$2")
	log "  $1 $2 FAILED"
}

# fio_write TARGET METRIC FILE WHAT [FIO OPTIONS]: a sequential write of
# SIZE_MB in 1 MiB writes, the final fsync timed, recorded as METRIC
fio_write() {
	local t=$1 metric=$2 file=$3 what=$4 mnt v
	shift 4
	mnt=$(mnt_of "$t")
	log "[$t] sequential write ${SIZE_MB} MiB, bs=1M, $what, end_fsync"
	drop_caches
	if run_fio "$metric-$t-r$ROUND" --filename="$mnt/$file" --rw=write --bs=1M \
		--size="${SIZE_MB}M" --end_fsync=1 --runtime="$SEQ_RUNTIME_CAP" "$@" &&
		v=$(json_get "$LOGS/$metric-$t-r$ROUND.json" write bw_bytes); then
		record "$t" "$metric" "$(awk -v b="$v" 'BEGIN { printf "%.1f", b / 1048576 }')"
	else
		record_fail "$t" "$metric"
	fi
}

bench_seq_write() {
	fio_write "$1" seq_write_mibs seq.dat incompressible
}

# Compressible sequential writes: zeros (fio --zero_buffers: a filesystem
# that stores zeros as holes writes nothing) and text (seqtext.c: lines of
# words, about 3x compressible, no two blocks alike), 1 MiB writes, the
# final fsync timed.
bench_zero_write() {
	fio_write "$1" zero_write_mibs zero.dat zeros --zero_buffers
	rm -f "$(mnt_of "$1")/zero.dat"
}

bench_text_write() {
	local t=$1 mnt v
	mnt=$(mnt_of "$t")
	log "[$t] sequential write ${SIZE_MB} MiB of text, 1 MiB writes, fsync"
	drop_caches
	if run_child "$TX_BIN" -s "$SIZE_MB" "$mnt/text.dat" >"$LOGS/textwrite-$t-r$ROUND.out" \
		2>"$LOGS/textwrite-$t-r$ROUND.err" &&
		v=$(awk '$1 == "MiBps" { print $2 }' "$LOGS/textwrite-$t-r$ROUND.out") && [[ -n $v ]]; then
		record "$t" text_write_mibs "$v"
	else
		tail -n 5 "$LOGS/textwrite-$t-r$ROUND.err" >&3
		record_fail "$t" text_write_mibs
	fi
	rm -f "$mnt/text.dat"
}

bench_seq_read() {
	local t=$1 mnt v
	mnt=$(mnt_of "$t")
	log "[$t] remount + drop caches, then sequential read ${SIZE_MB} MiB, bs=1M"
	if ! remount "$t"; then
		record_fail "$t" seq_read_mibs
		return
	fi
	if [[ ! -f $mnt/seq.dat ]]; then
		log "  $mnt/seq.dat missing (write phase failed?)"
		record_fail "$t" seq_read_mibs
		return
	fi
	if run_fio "seqread-$t-r$ROUND" --filename="$mnt/seq.dat" --rw=read --bs=1M \
		--size="${SIZE_MB}M" --runtime="$SEQ_RUNTIME_CAP" &&
		v=$(json_get "$LOGS/seqread-$t-r$ROUND.json" read bw_bytes); then
		record "$t" seq_read_mibs "$(awk -v b="$v" 'BEGIN { printf "%.1f", b / 1048576 }')"
	else
		record_fail "$t" seq_read_mibs
	fi
	rm -f "$mnt/seq.dat"
}

bench_randwrite() {
	local t=$1 mnt v
	mnt=$(mnt_of "$t")
	log "[$t] random 4 KiB overwrites in a ${RAND_MB} MiB file (<= ${RAND_RUNTIME} s), end_fsync"
	drop_caches
	# --overwrite=1: fio first lays the file out (untimed, fsynced), so the
	# timed phase overwrites existing data instead of filling holes.
	if run_fio "randwrite-$t-r$ROUND" --filename="$mnt/rand.dat" --rw=randwrite --bs=4k \
		--size="${RAND_MB}M" --overwrite=1 --end_fsync=1 --runtime="$RAND_RUNTIME" &&
		v=$(json_get "$LOGS/randwrite-$t-r$ROUND.json" write iops); then
		record "$t" randwrite_4k_iops "$(awk -v b="$v" 'BEGIN { printf "%.0f", b }')"
	else
		record_fail "$t" randwrite_4k_iops
	fi
	rm -f "$mnt/rand.dat"
}

bench_smallfiles() {
	local t=$1 mnt phase v
	mnt=$(mnt_of "$t")
	log "[$t] small files: $NFILES x 4 KiB in $NDIRS dirs (create/stat/read/rename/unlink)"
	local -a sfopt=(-n "$NFILES" -D "$NDIRS" -s 4096)
	[[ $BENCH_DROP_CACHES == 1 ]] && sfopt+=(-d -c "$SMALL_CHUNK")
	drop_caches
	mkdir -p "$mnt/small" || { for phase in create stat read rename unlink; do record_fail "$t" "small_${phase}_ops"; done; return; }
	if ! run_child "$SF_BIN" "${sfopt[@]}" "$mnt/small" >"$LOGS/smallfiles-$t-r$ROUND.out" 2>"$LOGS/smallfiles-$t-r$ROUND.err"; then
		log "smallfiles on $t failed:"
		tail -n 5 "$LOGS/smallfiles-$t-r$ROUND.err" >&3
	fi
	for phase in create stat read rename unlink; do
		v=$(awk -v p="$phase" '$1 == p { print $2 }' "$LOGS/smallfiles-$t-r$ROUND.out")
		if [[ -n $v ]]; then record "$t" "small_${phase}_ops" "$v"; else record_fail "$t" "small_${phase}_ops"; fi
	done
	rm -rf "$mnt/small"
}

# untar: the tar of a source tree (made once, on the backing fs) extracted
# onto the target from cold caches, and made durable (syncfs of the mount,
# which flushes the kernel's writeback cache and makes snapfs commit).
# The figure is entries (files, directories, links) per second.
UNTAR_TAR=""
UNTAR_ENTRIES=0
bench_untar() {
	local t=$1 mnt t0 t1 v
	mnt=$(mnt_of "$t")
	if [[ -z $UNTAR_TAR ]]; then
		UNTAR_TAR=$WORK/untar-src.tar
		tar -cf "$UNTAR_TAR" -C "$(dirname "$UNTAR_SRC")" "$(basename "$UNTAR_SRC")" 2>"$LOGS/untar-tar.err" ||
			die "cannot tar $UNTAR_SRC"
		UNTAR_ENTRIES=$(tar -tf "$UNTAR_TAR" | wc -l)
		log "untar source: $UNTAR_SRC, $UNTAR_ENTRIES entries, $(($(stat -c %s "$UNTAR_TAR") >> 20)) MiB of tar"
	fi
	log "[$t] untar of $UNTAR_SRC ($UNTAR_ENTRIES entries) + syncfs"
	mkdir -p "$mnt/untar" || { record_fail "$t" untar_ops; return; }
	drop_caches
	t0=$(date +%s%N)
	if run_child tar -xf "$UNTAR_TAR" -C "$mnt/untar" 2>"$LOGS/untar-$t-r$ROUND.err" &&
		run_child sync -f "$mnt/untar"; then
		t1=$(date +%s%N)
		v=$(awk -v n="$UNTAR_ENTRIES" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
		record "$t" untar_ops "$v"
	else
		tail -n 5 "$LOGS/untar-$t-r$ROUND.err" >&3
		record_fail "$t" untar_ops
	fi
	rm -rf "$mnt/untar"
}

# ----------------------------------------------------------------- run ---
T0=$SECONDS
log "mounting the reference, $REF_LABEL, on $PT_MNT"
start_pt || die "cannot mount the reference ($REF_LABEL)"
log "mkfs + mount snapfs (--size $VOLSIZE${MKFS_OPTS:+ $MKFS_OPTS}) on $SN_MNT"
snap_mkfs "$SN_STORE"
snap_mount "$SN_STORE" "$SN_MNT" || die "cannot mount snapfs"

# Rounds alternate which target goes first, so that drift in the machine's
# state (host caches, noisy neighbours) hits both sides alike.
for ((ROUND = 1; ROUND <= REPS; ROUND++)); do
	if ((ROUND % 2)); then TARGETS=(passthrough snapfs); else TARGETS=(snapfs passthrough); fi
	log "=== round $ROUND/$REPS (${TARGETS[*]}) ==="
	if wanted seqwrite; then for t in "${TARGETS[@]}"; do bench_seq_write "$t"; done; fi
	if wanted seqread; then for t in "${TARGETS[@]}"; do bench_seq_read "$t"; done; fi
	if wanted randwrite; then for t in "${TARGETS[@]}"; do bench_randwrite "$t"; done; fi
	if wanted smallfiles; then for t in "${TARGETS[@]}"; do bench_smallfiles "$t"; done; fi
	if wanted untar; then for t in "${TARGETS[@]}"; do bench_untar "$t"; done; fi
	if wanted textwrite; then for t in "${TARGETS[@]}"; do bench_text_write "$t"; done; fi
	if wanted zerowrite; then for t in "${TARGETS[@]}"; do bench_zero_write "$t"; done; fi
	if wanted seqwrite && ! wanted seqread; then
		for t in "${TARGETS[@]}"; do rm -f "$(mnt_of "$t")/seq.dat"; done
	fi
done

log "snapfs info after the workloads:"
timeout 60 "$SNAPFS" info "$SN_MNT" 2>&1 3>&- | sed 's/^/    /' >&3 || true
log "snapfs stats after the workloads (what the daemon counted):"
timeout 60 "$SNAPFS" stats "$SN_MNT" 2>&1 3>&- | sed 's/^/    /' >&3 || true

log "unmounting both; removing their data"
stop_pt
snap_umount "$SN_MNT" || die "cannot unmount snapfs"
rm -rf --one-file-system "$SN_STORE" "$PT_SRC" "$REF_STORE" "$REF_IMAGE"

# ------------------------------------------------------------ RSS check ---
RSS_PEAK=NA RSS_NOW=NA RSS_RESULT=NA
if ! wanted rss; then
	log "[rss] not run (BENCH_WORKLOADS)"
elif log "[rss] fresh snapfs volume; sequential write of ${RSS_MB} MiB (incompressible)" &&
	snap_mkfs "$RSS_STORE" && snap_mount "$RSS_STORE" "$RSS_MNT"; then
	pid=$(snap_pid "$RSS_STORE" "$RSS_MNT") || pid=""
	if [[ -z $pid ]]; then
		log "  cannot find the snapfs daemon's pid"
		FAILED+=(rss)
	elif run_fio "rss-write" --filename="$RSS_MNT/big.dat" --rw=write --bs=1M \
		--size="${RSS_MB}M" --end_fsync=1 --runtime=600; then
		json_get "$LOGS/rss-write.json" write bw_bytes >/dev/null || log "  (fio reported an error during the RSS write)"
		if kill -0 "$pid" 2>/dev/null; then
			hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
			rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
			RSS_PEAK=$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')
			RSS_NOW=$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')
			if awk -v p="$RSS_PEAK" -v l="$RSS_LIMIT_MB" 'BEGIN { exit !(p <= l) }'; then
				RSS_RESULT=PASS
			else
				RSS_RESULT=FAIL
			fi
			log "  daemon pid $pid: VmHWM ${RSS_PEAK} MiB, VmRSS ${RSS_NOW} MiB -> $RSS_RESULT (limit ${RSS_LIMIT_MB} MiB)"
		else
			log "  snapfs daemon $pid died during the write"
			FAILED+=(rss)
		fi
	else
		FAILED+=(rss)
	fi
	snap_umount "$RSS_MNT" || FAILED+=(rss-umount)
elif wanted rss; then
	FAILED+=(rss)
fi
rm -rf --one-file-system "$RSS_STORE"
ELAPSED=$((SECONDS - T0))

# --------------------------------------------------------------- report ---
METRICS=()
wanted seqwrite && METRICS+=(seq_write_mibs)
wanted seqread && METRICS+=(seq_read_mibs)
wanted randwrite && METRICS+=(randwrite_4k_iops)
wanted smallfiles && METRICS+=(small_create_ops small_stat_ops small_read_ops small_rename_ops small_unlink_ops)
wanted untar && METRICS+=(untar_ops)
wanted textwrite && METRICS+=(text_write_mibs)
wanted zerowrite && METRICS+=(zero_write_mibs)
declare -A LABEL=(
	[seq_write_mibs]="seq write ${SIZE_MB}M bs=1M (MiB/s)"
	[seq_read_mibs]="seq read ${SIZE_MB}M bs=1M (MiB/s)"
	[randwrite_4k_iops]="rand write 4k (IOPS)"
	[small_create_ops]="small files create (ops/s)"
	[small_stat_ops]="small files stat (ops/s)"
	[small_read_ops]="small files read (ops/s)"
	[small_rename_ops]="small files rename (ops/s)"
	[small_unlink_ops]="small files unlink (ops/s)"
	[untar_ops]="untar $(basename "$UNTAR_SRC") (entries/s)"
	[text_write_mibs]="seq write ${SIZE_MB}M text (MiB/s)"
	[zero_write_mibs]="seq write ${SIZE_MB}M zeros (MiB/s)"
)
# per-round ratios snapfs[i]/passthrough[i] (rounds where both ran)
round_ratios() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		n = split(a, x, " "); split(b, y, " ")
		for (i = 1; i <= n; i++)
			if (x[i] != "NA" && y[i] != "NA" && y[i] + 0 != 0)
				printf "%.4f\n", x[i] / y[i] }'
}
# median of the non-NA words in $1 (NA if none), printed like the inputs
median() {
	echo "$1" | tr ' ' '\n' | { grep -v -e '^NA$' -e '^$' || true; } | sort -g |
		awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "NA"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			if (v[1] ~ /\./) printf "%.1f\n", m; else printf "%.0f\n", m }'
}
# headline ratio: the median of the per-round ratios.  Each round's two
# figures were taken minutes apart at most, so pairing them cancels slow
# drift in the machine's load better than a ratio of two medians would.
ratio() {
	round_ratios "$1" "$2" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "NA"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.2f\n", m }'
}
# "min-max" of the per-round ratios
ratio_range() {
	round_ratios "$1" "$2" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) print "NA"; else printf "%.2f-%.2f\n", v[1], v[NR] }'
}

summary=$(mktemp "$WORK/summary.XXXXXX")
{
	echo "# snapfs benchmark summary: figures are medians over the rounds; ratio = median of the"
	echo "# per-round snapfs/passthrough ratios (higher is better)"
	echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "snapfs_bin $SNAPFS"
	echo "kernel $(uname -r)"
	echo "cpus $(nproc)"
	echo "backing_fs $(stat -f -c %T "$WORK")"
	echo "passthrough_opts $PT_OPTS"
	echo "reference $REFERENCE"
	echo "drop_caches $BENCH_DROP_CACHES"
	echo "seq_size_mb $SIZE_MB"
	echo "rand_size_mb $RAND_MB"
	echo "rand_runtime_s $RAND_RUNTIME"
	echo "small_files $NFILES"
	echo "small_dirs $NDIRS"
	echo "rounds $REPS"
	if wanted untar; then
		echo "untar_src $UNTAR_SRC"
		echo "untar_entries $UNTAR_ENTRIES"
	fi
	echo "small_chunk $([[ $BENCH_DROP_CACHES == 1 ]] && echo "$SMALL_CHUNK" || echo "$NFILES")"
} >"$summary"

{
	echo
	echo "snapfs benchmark: snapfs${MOUNT_OPTS:+ -o $MOUNT_OPTS} vs. $REF_LABEL, same backing fs ($(stat -f -c %T "$WORK"))"
	echo "figures: median of $REPS rounds; higher is better for every row"
	echo "ratio: median over the rounds of snapfs[i]/$REF_COL[i]; per-round: their min-max (a noise gauge)"
	echo
	printf '%-32s %12s %12s %7s %12s\n' "metric" "snapfs" "$REF_COL" "ratio" "per-round"
	printf '%-32s %12s %12s %7s %12s\n' "------" "------" "-----------" "-----" "---------"
} >&1
for m in "${METRICS[@]}"; do
	sa=${R[snapfs.$m]:-NA}
	pa=${R[passthrough.$m]:-NA}
	s=$(median "$sa")
	p=$(median "$pa")
	r=$(ratio "$sa" "$pa")
	rr=$(ratio_range "$sa" "$pa")
	printf '%-32s %12s %12s %7s %12s\n' "${LABEL[$m]}" "$s" "$p" "$r" "$rr"
	{
		printf '%s_snapfs %s\n%s_passthrough %s\n%s_ratio %s\n' "$m" "$s" "$m" "$p" "$m" "$r"
		printf '%s_snapfs_rounds %s\n%s_passthrough_rounds %s\n%s_ratio_range %s\n' \
			"$m" "${sa// /,}" "$m" "${pa// /,}" "$m" "$rr"
	} >>"$summary"
done
echo
printf 'snapfs daemon peak RSS (VmHWM) after writing %s MiB: %s MiB (limit %s MiB): %s\n' \
	"$RSS_MB" "$RSS_PEAK" "$RSS_LIMIT_MB" "$RSS_RESULT"
printf 'elapsed %s s\n' "$ELAPSED"
{
	echo "rss_written_mb $RSS_MB"
	echo "rss_peak_mib $RSS_PEAK"
	echo "rss_final_mib $RSS_NOW"
	echo "rss_limit_mib $RSS_LIMIT_MB"
	echo "rss_result $RSS_RESULT"
	echo "elapsed_s $ELAPSED"
	echo "failures ${#FAILED[@]}"
} >>"$summary"
if ((${#FAILED[@]})); then
	echo "failed measurements: ${FAILED[*]}"
	echo "failed_list ${FAILED[*]}" >>"$summary"
fi
mkdir -p "$(dirname "$BENCH_OUT")"
cat "$summary" >"$BENCH_OUT"
log "summary written to $BENCH_OUT"

if ((${#FAILED[@]})); then
	exit 1
fi
exit 0
