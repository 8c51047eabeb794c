#!/bin/bash
# snapfs snapshot benchmark: the cost of snapshot operations against the
# size of the volume and the size of the change, measured side by side in
# one run.  See tests/bench/README.md.
#
#   SNAPFS=path/to/snapfs bash tests/bench/snapbench.sh
#
# Knobs: SNAPBENCH_DIR (/var/tmp/snapfs-snapbench), SNAPBENCH_FILES
# (200000 files of 4 KiB), SNAPBENCH_BIG_MB (3300: one large file, so that
# the volume holds about 4 GiB), SNAPBENCH_REPS (15 creates per
# measurement; the median is reported), SNAPBENCH_SCALE_FILES (2000000:
# a third volume of that many 1 KiB files, 100 a directory, for the
# create at scale; 0 leaves it out), SNAPBENCH_CREATES (100 creates
# while a writer runs, on each volume).
#
# What it prints:
#   create   median time of `snapfs snapshot create` on an empty volume and
#            on the full one (aim: the same; it is O(1))
#   at scale on the empty volume, the full one and the one of
#            SNAPBENCH_SCALE_FILES files (snapcreate.py): create median
#            and p99, the whole command and the daemon's part, idle and
#            while a writer creates 4 KiB files; the writer's p99 and
#            max with and without the creates (aim: flat across the
#            volumes; the writer's stalls no longer than one commit)
#   reclaim  time of `snapshot reclaim` and `snapshot delete` of a snapshot
#            after changing 1% of the full volume, beside the time the same
#            commands take after changing 10% (they follow the change)
#   read     cold sequential read of the large file through .snapshot
#            beside the live file (aim: at least 0.9x)
set -u
SNAPFS=${SNAPFS:-$(cd "$(dirname "$0")/../.." && pwd)/build/release/snapfs}
DIR=${SNAPBENCH_DIR:-/var/tmp/snapfs-snapbench}
FILES=${SNAPBENCH_FILES:-200000}
BIG_MB=${SNAPBENCH_BIG_MB:-3300}
REPS=${SNAPBENCH_REPS:-15}
SCALE_FILES=${SNAPBENCH_SCALE_FILES:-2000000}
CREATES=${SNAPBENCH_CREATES:-100}
HERE=$(cd "$(dirname "$0")" && pwd)

log() { printf '[snapbench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l; }
drop_caches() { sync; [ "$(id -u)" = 0 ] && echo 3 >/proc/sys/vm/drop_caches; }

cleanup() {
	local m
	for m in "$DIR/mnt" "$DIR/mnt-empty" "$DIR/mnt-scale"; do
		mountpoint -q "$m" && "$SNAPFS" umount "$m" >/dev/null 2>&1
	done
	rm -rf "$DIR"
}
trap cleanup EXIT

# median_create MNT PREFIX: median seconds of REPS snapshot creates
median_create() {
	local t i
	for ((i = 0; i < REPS; i++)); do
		t=$(now)
		"$SNAPFS" snapshot create "$1" "$2.$i" >/dev/null || die "snapshot create failed"
		since "$t"
	done | sort -n | awk '{ a[NR] = $1 } END { printf "%.4f\n", a[int((NR + 1) / 2)] }'
}

# timed COMMAND...: seconds the command took
timed() {
	local t
	t=$(now)
	"$@" >/dev/null || die "$* failed"
	printf '%.4f\n' "$(since "$t")"
}

# change PERCENT: rewrite PERCENT% of the small files and of the large file
change() {
	python3 - "$DIR/mnt" "$FILES" "$BIG_MB" "$1" <<-\EOF
	import os, sys
	mnt, files, big_mb, pct = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
	step = 100 // pct
	for i in range(0, files, step):
	    with open("%s/d%03d/f%06d" % (mnt, i % 200, i), "r+b") as f:
	        f.write(os.urandom(4096))
	with open(mnt + "/big", "r+b") as f:
	    for mb in range(0, big_mb, step):
	        f.seek(mb << 20)
	        f.write(os.urandom(1 << 20))
	EOF
	sync -f "$DIR/mnt"
}

# read_mibs PATH: MiB/s of a cold sequential read
read_mibs() {
	drop_caches
	local t
	t=$(now)
	dd if="$1" of=/dev/null bs=1M status=none || die "reading $1 failed"
	echo "$BIG_MB / $(since "$t")" | bc -l | xargs printf '%.0f\n'
}

command -v bc >/dev/null || die "needs bc"
[ -x "$SNAPFS" ] || die "no snapfs binary at $SNAPFS"
cleanup
mkdir -p "$DIR/mnt" "$DIR/mnt-empty" || die "cannot make $DIR"

"$SNAPFS" mkfs "$DIR/empty.store" --size 8G >/dev/null || die "mkfs failed"
"$SNAPFS" mkfs "$DIR/full.store" --size 16G >/dev/null || die "mkfs failed"
"$SNAPFS" mount "$DIR/empty.store" "$DIR/mnt-empty" || die "mount failed"
"$SNAPFS" mount "$DIR/full.store" "$DIR/mnt" || die "mount failed"

log "filling: $FILES files of 4 KiB in 200 directories and one $BIG_MB MiB file"
python3 - "$DIR/mnt" "$FILES" <<-\EOF || die "filling failed"
import os, sys
mnt, files = sys.argv[1], int(sys.argv[2])
for d in range(200):
    os.mkdir("%s/d%03d" % (mnt, d))
for i in range(files):
    with open("%s/d%03d/f%06d" % (mnt, i % 200, i), "wb") as f:
        f.write(os.urandom(4096))
EOF
dd if=/dev/urandom of="$DIR/mnt/big" bs=1M count="$BIG_MB" status=none || die "writing big failed"
sync -f "$DIR/mnt"

log "snapshot create, $REPS times each: empty volume, full volume"
create_empty=$(median_create "$DIR/mnt-empty" e)
create_full=$(median_create "$DIR/mnt" f)

# at_scale NAME MNT STORE: snapcreate.py's figures as AT[NAME.key]
declare -A AT
at_scale() {
	local key value
	log "snapshot create at scale ($1): 20 idle, $CREATES while a writer runs"
	while read -r key value; do
		AT[$1.$key]=$value
	done < <(python3 "$HERE/snapcreate.py" "$SNAPFS" "$2" "$3" --creates "$CREATES" \
		--idle 20 --prefix "sc$1" || die "snapcreate.py failed")
	[ -n "${AT[$1.create_writing_p99_ms]:-}" ] || die "snapcreate.py gave no figures"
}
at_scale 0 "$DIR/mnt-empty" "$DIR/empty.store"
at_scale "$FILES" "$DIR/mnt" "$DIR/full.store"
SCALES="0 $FILES"
if [ "$SCALE_FILES" -gt 0 ]; then
	log "filling a third volume: $SCALE_FILES files of 1 KiB, 100 a directory"
	"$SNAPFS" mkfs "$DIR/scale.store" --size 16G >/dev/null || die "mkfs failed"
	mkdir -p "$DIR/mnt-scale"
	"$SNAPFS" mount "$DIR/scale.store" "$DIR/mnt-scale" || die "mount failed"
	python3 "$HERE/scalefill.py" fill "$DIR/mnt-scale" "$SCALE_FILES" 100 1024 >/dev/null ||
		die "filling failed"
	sync -f "$DIR/mnt-scale"
	at_scale "$SCALE_FILES" "$DIR/mnt-scale" "$DIR/scale.store"
	"$SNAPFS" umount "$DIR/mnt-scale" >/dev/null
	SCALES="$SCALES $SCALE_FILES"
fi

"$SNAPFS" snapshot create "$DIR/mnt" base >/dev/null || die "create failed"
log "changing 1% of the full volume"
change 1
"$SNAPFS" snapshot create "$DIR/mnt" after1 >/dev/null
change 1
"$SNAPFS" snapshot create "$DIR/mnt" after1b >/dev/null
reclaim1=$(timed "$SNAPFS" snapshot reclaim "$DIR/mnt" after1)
delete1=$(timed "$SNAPFS" snapshot delete "$DIR/mnt" after1)
log "changing 10% of the full volume"
change 10
"$SNAPFS" snapshot create "$DIR/mnt" after10 >/dev/null
change 10
"$SNAPFS" snapshot create "$DIR/mnt" after10b >/dev/null
reclaim10=$(timed "$SNAPFS" snapshot reclaim "$DIR/mnt" after10)
delete10=$(timed "$SNAPFS" snapshot delete "$DIR/mnt" after10)

log "cold sequential reads of the large file: live, then through .snapshot"
"$SNAPFS" snapshot create "$DIR/mnt" readback >/dev/null
live_read=$(read_mibs "$DIR/mnt/big")
snap_read=$(read_mibs "$DIR/mnt/.snapshot/readback/big")
live_read2=$(read_mibs "$DIR/mnt/big")
snap_read2=$(read_mibs "$DIR/mnt/.snapshot/readback/big")

ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
printf 'snapshot create, empty volume:            %s s (median of %s)\n' "$create_empty" "$REPS"
printf 'snapshot create, %s files + %s MiB:  %s s (ratio full/empty %s)\n' "$FILES" "$BIG_MB" "$create_full" "$(ratio "$create_full" "$create_empty")"
printf 'reclaim estimate after a 1%% change:       %s s; after a 10%% change: %s s\n' "$reclaim1" "$reclaim10"
printf 'snapshot delete after a 1%% change:        %s s; after a 10%% change: %s s\n' "$delete1" "$delete10"
printf 'cold read of %s MiB, live:               %s, %s MiB/s\n' "$BIG_MB" "$live_read" "$live_read2"
printf 'cold read through .snapshot:              %s, %s MiB/s (ratio %s, %s)\n' "$snap_read" "$snap_read2" \
	"$(ratio "$snap_read" "$live_read")" "$(ratio "$snap_read2" "$live_read2")"
printf '\nsnapshot create at scale (ms; %s creates while a writer runs)\n' "$CREATES"
printf '%-44s' "files in the volume"
for n in $SCALES; do printf ' %10s' "$n"; done
printf '\n'
for row in "start_p50_ms|process start (snapfs help), p50" "create_idle_p50_ms|create, idle, p50" "create_idle_p99_ms|create, idle, p99" \
	"create_daemon_idle_p50_ms|  the daemon's part, p50" "create_daemon_idle_p99_ms|  the daemon's part, p99" \
	"create_writing_p50_ms|create, writer running, p50" "create_writing_p99_ms|create, writer running, p99" \
	"writer_alone_p99_ms|writer op p99, no creates" "writer_during_p99_ms|writer op p99, during creates" \
	"writer_alone_max_ms|writer op max, no creates" "writer_during_max_ms|writer op max, during creates"; do
	IFS='|' read -r key label <<<"$row"
	printf '%-44s' "$label"
	for n in $SCALES; do printf ' %10s' "${AT[$n.$key]:-NA}"; done
	printf '\n'
done
