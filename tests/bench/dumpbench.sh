#!/bin/bash
# snapfs dump benchmark: `snapfs dump -0` of a tree holding one large file
# and many small ones, beside `tar -cf` of the same tree (read through the
# snapfs mount, as a user without dump would) and Linux `dump -0` of an
# ext4 image of it, in one run.  Every output goes through a pipe to
# `cat >/dev/null` (GNU tar skips reading files it writes to /dev/null),
# and the page cache is dropped before each run, so all three read cold.
# See tests/bench/README.md.
#
#   SNAPFS=path/to/snapfs bash tests/bench/dumpbench.sh
#
# Knobs: DUMPBENCH_DIR (/var/tmp/snapfs-dumpbench), DUMPBENCH_BIG_MB (1024),
# DUMPBENCH_FILES (20000 files of 1-8 KiB), DUMPBENCH_REPS (3; the median
# is reported).
#
# It prints, for each tool, the median seconds and MB/s (logical bytes of
# the tree per second), and each tool's time over snapfs dump's.
set -u
SNAPFS=${SNAPFS:-$(cd "$(dirname "$0")/../.." && pwd)/build/release/snapfs}
DIR=${DUMPBENCH_DIR:-/var/tmp/snapfs-dumpbench}
BIG_MB=${DUMPBENCH_BIG_MB:-1024}
FILES=${DUMPBENCH_FILES:-20000}
REPS=${DUMPBENCH_REPS:-3}
LOOP=

log() { printf '[dumpbench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
now() { date +%s.%N; }
drop_caches() { sync; [ "$(id -u)" = 0 ] && echo 3 >/proc/sys/vm/drop_caches; }

cleanup() {
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	mountpoint -q "$DIR/mnt" && "$SNAPFS" umount "$DIR/mnt" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT

for t in dump tar mkfs.ext4 losetup; do
	command -v $t >/dev/null || die "needs $t (make deps)"
done
[ "$(id -u)" = 0 ] || die "needs root (losetup, drop_caches)"

# median_of COMMAND: median seconds over REPS cold runs of COMMAND (a
# string for bash -c, whose output is already piped away)
median_of() {
	local i t
	for ((i = 0; i < REPS; i++)); do
		drop_caches
		t=$(now)
		bash -c "$1" || die "failed: $1"
		echo "$(now) - $t" | bc -l
	done | sort -n | awk '{ a[NR] = $1 } END { printf "%.3f\n", a[int((NR + 1) / 2)] }'
}

rm -rf "$DIR" && mkdir -p "$DIR/mnt" || die "cannot make $DIR"
log "volume: one ${BIG_MB} MiB file and $FILES small files"
"$SNAPFS" mkfs "$DIR/store" --size $((BIG_MB * 3 + 2048))M >/dev/null || die mkfs
"$SNAPFS" mount "$DIR/store" "$DIR/mnt" || die mount
head -c $((BIG_MB << 20)) /dev/urandom >"$DIR/mnt/big" || die "writing big"
python3 - "$DIR/mnt" "$FILES" <<'PY' || die "writing small files"
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
for i in range(n):
    d = os.path.join(root, "small", "d%03d" % (i % 200))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(1024, 8192)))
PY
sync
BYTES=$(du -sb --apparent-size "$DIR/mnt" | cut -f1)

log "ext4 image of the same tree"
mkfs.ext4 -q -F -d "$DIR/mnt" "$DIR/ext4.img" $((BIG_MB + BIG_MB / 4 + 512))M ||
	die "mkfs.ext4 -d"
LOOP=$(losetup -f --show "$DIR/ext4.img") || die losetup

log "snapfs dump -0 ($REPS cold runs each, median)"
t_snap=$(median_of "'$SNAPFS' dump -0 -f - '$DIR/mnt' 2>/dev/null | cat >/dev/null")
log "tar -cf through the mount"
t_tar=$(median_of "tar -C '$DIR/mnt' --exclude=./.snapshot -cf - . | cat >/dev/null")
log "Linux dump -0 of the ext4 image"
t_ldump=$(median_of "dump -0 -q -f - '$LOOP' 2>/dev/null | cat >/dev/null")

mbs() { echo "$BYTES / $1 / 1000000" | bc -l; }
printf '\n%-34s %10s %10s %12s\n' "tree: $(echo "$BYTES / 1048576" | bc) MiB, $FILES small files" seconds "MB/s" "time/snapfs"
for row in "snapfs dump -0:$t_snap" "tar -cf (through the mount):$t_tar" "Linux dump -0 (ext4 image):$t_ldump"; do
	name=${row%%:*} t=${row##*:}
	printf '%-34s %10.2f %10.1f %11.2fx\n' "$name" "$t" "$(mbs "$t")" "$(echo "$t / $t_snap" | bc -l)"
done
