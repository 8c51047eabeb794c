# benchlib.sh - what the benchmarks that put snapfs beside another tool
# share (mirrorbench.sh, vaultbench.sh): log lines, timing, dropping the
# page cache, mounts unmounted and the work dir removed at exit, results.
#
# The sourcing script sets BENCH_NAME (for log lines), SNAPFS, BASE_DIR
# (the work dir W is made under it) and BENCH_KEEP (1: keep W), may
# define cleanup_extra (run at exit, before the mounts go), and keeps its
# figures with put KEY VALUE in R, KEYS holding the keys in order.

log() { printf '[%s %s] %s\n' "$BENCH_NAME" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }
drop_caches() { sync; [ "$(id -u)" = 0 ] && echo 3 >/proc/sys/vm/drop_caches; }

W=
MOUNTED=()
cleanup() {
	local m
	declare -F cleanup_extra >/dev/null && cleanup_extra
	for m in "${MOUNTED[@]}"; do
		mountpoint -q "$m" || continue
		"$SNAPFS" umount "$m" >/dev/null 2>&1 || fusermount3 -uz "$m"
	done
	if [ -n "$W" ] && [ "${BENCH_KEEP:-0}" = 1 ]; then
		log "kept the work dir $W (volumes unmounted)"
	elif [ -n "$W" ]; then
		rm -rf "$W"
		rmdir "$BASE_DIR" 2>/dev/null
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mount_vol() { # STORE MNT [OPTS]
	mkdir -p "$2" || die "mkdir $2"
	"$SNAPFS" mount "$1" "$2" ${3:+-o "$3"} || die "mount $1 on $2 failed"
	MOUNTED+=("$2")
}
umount_vol() { "$SNAPFS" umount "$1" >/dev/null || die "umount $1 failed"; }

# Results: R[key]=value, KEYS in order (for the summary file).
declare -A R
KEYS=()
put() { [ -n "${R[$1]+x}" ] || KEYS+=("$1"); R[$1]=$2; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { printf "%.3f", a[int((NR + 1) / 2)] }'; }
