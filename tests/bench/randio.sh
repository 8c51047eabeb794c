#!/usr/bin/env bash
# randio.sh - 4 KiB random overwrites and 4 KiB random reads of one file,
# on one or more snapfs binaries beside libfuse's passthrough_ll, in one
# run on the same disk, ROUNDS rounds in rotating order; prints each
# round's figures, the medians, the per-round ranges and the ratios to
# passthrough_ll (per round, so that the machine's noise shows).
#
# Usage: bash tests/bench/randio.sh NAME=SNAPFS_BINARY [NAME=SNAPFS_BINARY...]
#   e.g. randio.sh before=/work/main/build/release/snapfs after=build/release/snapfs
#
# Each round and target: a fresh volume (or a fresh passthrough source),
# fio lays the file out (untimed, fsynced), then random 4 KiB overwrites
# (--overwrite=1, --end_fsync=1: the final fsync is in the figure), a
# remount (the FUSE page cache and the daemon's caches are cold; the
# backing filesystem's page cache is not dropped, for both alike), and
# random 4 KiB reads of the whole file once (fio's random map).
#
# Knobs: RANDIO_DIR (/var/tmp/snapfs-randio), RANDIO_MB (256),
# RANDIO_RUNTIME (30 s bound of each fio job), RANDIO_ROUNDS (3),
# RANDIO_PT_OPTS (cache=always,writeback,clone_fd), RANDIO_MKFS_OPTS,
# RANDIO_VOLUME_SIZE (64G: the store is sparse; a volume with more than
# about 1.2 GiB free has its mount's dirty bound raised, fs/space.c, ROOMY).
set -euo pipefail

DIR=${RANDIO_DIR:-/var/tmp/snapfs-randio}
MB=${RANDIO_MB:-256}
RUNTIME=${RANDIO_RUNTIME:-30}
ROUNDS=${RANDIO_ROUNDS:-3}
PT_OPTS=${RANDIO_PT_OPTS:-cache=always,writeback,clone_fd}
MKFS_OPTS=${RANDIO_MKFS_OPTS:-}
VOLUME_SIZE=${RANDIO_VOLUME_SIZE:-64G}
EXAMPLES=/usr/share/doc/libfuse3-dev/examples

log() { printf '[randio %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

[[ $# -ge 1 ]] || die "usage: randio.sh NAME=SNAPFS_BINARY..."
declare -A BIN=()
TARGETS=(passthrough)
for a in "$@"; do
	[[ $a == *=* ]] || die "not NAME=BINARY: $a"
	name=${a%%=*} bin=$(realpath -e -- "${a#*=}") || die "no such binary: ${a#*=}"
	[[ -x $bin ]] || die "not executable: $bin"
	BIN[$name]=$bin
	TARGETS+=("$name")
done
for t in fio cc pkg-config fusermount3 mountpoint python3; do
	command -v "$t" >/dev/null || die "missing tool: $t"
done

mkdir -p "$DIR"
WORK=$(mktemp -d "$DIR/run.XXXXXX")
PT_BIN=$WORK/passthrough_ll PT_PID="" MNT=$WORK/mnt
mkdir -p "$MNT"

cleanup() {
	set +e
	if mountpoint -q "$MNT"; then
		if [[ -n $PT_PID ]]; then fusermount3 -u "$MNT"; wait "$PT_PID"
		else "${BIN[$CUR]}" umount "$MNT"; fi
	fi
	mountpoint -q "$MNT" || rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

for f in passthrough_ll.c passthrough_helpers.h; do
	if [[ -f $EXAMPLES/$f ]]; then cp "$EXAMPLES/$f" "$WORK/"
	elif [[ -f $EXAMPLES/$f.gz ]]; then gzip -dc "$EXAMPLES/$f.gz" >"$WORK/$f"
	elif [[ $f == passthrough_ll.c ]]; then die "no $EXAMPLES/passthrough_ll.c (install libfuse3-dev)"; fi
done
# shellcheck disable=SC2046
cc -O2 -o "$PT_BIN" "$WORK/passthrough_ll.c" $(pkg-config --cflags --libs fuse3) ||
	die "cannot build passthrough_ll"

CUR=""
mount_target() {	# mount_target NAME FRESH(1/0)
	CUR=$1
	if [[ $1 == passthrough ]]; then
		[[ $2 == 1 ]] && rm -rf "$WORK/src" && mkdir "$WORK/src"
		setsid "$PT_BIN" -f -o "source=$WORK/src,$PT_OPTS" "$MNT" </dev/null >/dev/null 2>&1 &
		PT_PID=$!
		local i
		for ((i = 0; i < 200; i++)); do mountpoint -q "$MNT" && return 0; sleep 0.05; done
		die "passthrough_ll did not mount"
	fi
	PT_PID=""
	if [[ $2 == 1 ]]; then
		rm -rf "$WORK/store"
		# shellcheck disable=SC2086
		"${BIN[$1]}" mkfs "$WORK/store" --size "$VOLUME_SIZE" $MKFS_OPTS >/dev/null
	fi
	"${BIN[$1]}" mount "$WORK/store" "$MNT"
}

umount_target() {
	if [[ -n $PT_PID ]]; then
		fusermount3 -u "$MNT"
		wait "$PT_PID" || true
		PT_PID=""
	else
		"${BIN[$CUR]}" umount "$MNT"
	fi
}

iops() {	# iops FILE DIR
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))["jobs"][0]
assert d["error"] == 0, "fio error %d" % d["error"]
print("%.0f" % d[sys.argv[2]]["iops"])' "$1" "$2"
}

declare -A W=() R=()
for ((round = 1; round <= ROUNDS; round++)); do
	n=${#TARGETS[@]}
	for ((k = 0; k < n; k++)); do
		t=${TARGETS[$(((k + round - 1) % n))]}
		mount_target "$t" 1
		fio --name=w --filename="$MNT/rand.dat" --rw=randwrite --bs=4k --size="${MB}M" \
			--overwrite=1 --end_fsync=1 --runtime="$RUNTIME" \
			--output-format=json --output="$WORK/w.json" >/dev/null
		umount_target
		mount_target "$t" 0
		fio --name=r --filename="$MNT/rand.dat" --rw=randread --bs=4k --size="${MB}M" \
			--runtime="$RUNTIME" --output-format=json --output="$WORK/r.json" >/dev/null
		umount_target
		W[$t]="${W[$t]:-} $(iops "$WORK/w.json" write)"
		R[$t]="${R[$t]:-} $(iops "$WORK/r.json" read)"
		log "round $round $t: randwrite $(iops "$WORK/w.json" write) IOPS, randread $(iops "$WORK/r.json" read) IOPS"
	done
done

# summary: median and range per target, ratio to passthrough per round
python3 - "$ROUNDS" "${TARGETS[@]}" <<EOF
import statistics, sys
rounds, targets = int(sys.argv[1]), sys.argv[2:]
W = {$(for t in "${TARGETS[@]}"; do printf '"%s": [%s], ' "$t" "$(echo ${W[$t]} | tr ' ' ,)"; done)}
R = {$(for t in "${TARGETS[@]}"; do printf '"%s": [%s], ' "$t" "$(echo ${R[$t]} | tr ' ' ,)"; done)}
print("%d MiB file, %d rounds, 4 KiB random I/O" % ($MB, rounds))
for what, d in (("randwrite", W), ("randread", R)):
    for t in targets:
        v = d[t]
        line = "%-10s %-12s median %8.0f IOPS  range %.0f-%.0f" % (what, t, statistics.median(v), min(v), max(v))
        if t != "passthrough":
            r = [a / b for a, b in zip(v, d["passthrough"])]
            line += "  ratio %.2f (per round %.2f-%.2f)" % (statistics.median(r), min(r), max(r))
        print(line)
EOF
