#!/usr/bin/env bash
# snaplat.sh - snapshot creation while writers run (issue 17, part 4): how
# long `snapfs snapshot create` takes as a whole command, and what it does
# to the writers' latency, against the same writers with no snapshots.
#
# Usage: SNAPFS=build/release/snapfs bash tests/bench/snaplat.sh
#
# One volume; a fio writer of 4 KiB random writes (buffered, one job, and
# a second job with O_DIRECT, whose every write is a request to the
# daemon) runs SNAPLAT_RUNTIME seconds twice: once alone, once while
# SNAPLAT_SNAPSHOTS snapshots are created one after the other (each a
# whole `snapfs snapshot create` command, timed from outside).  Prints the
# commands' median, p99 and max, fio's completion-latency percentiles of
# both runs, and the daemon's commit durations (`snapfs stats`), so that
# a write stall can be set beside one commit.
#
# Knobs: SNAPLAT_DIR (/var/tmp/snapfs-snaplat), SNAPLAT_RUNTIME (40),
# SNAPLAT_SNAPSHOTS (100), SNAPLAT_MB (256: the file each job writes).
set -euo pipefail

SNAPFS=$(realpath -e "${SNAPFS:-build/release/snapfs}")
DIR=${SNAPLAT_DIR:-/var/tmp/snapfs-snaplat}
RUNTIME=${SNAPLAT_RUNTIME:-40}
SNAPSHOTS=${SNAPLAT_SNAPSHOTS:-100}
MB=${SNAPLAT_MB:-256}

log() { printf '[snaplat %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
for t in fio python3 mountpoint; do command -v "$t" >/dev/null || die "missing tool: $t"; done

mkdir -p "$DIR"
WORK=$(mktemp -d -p "$DIR")
MNT=$WORK/mnt STORE=$WORK/store
mkdir -p "$MNT"
cleanup() {
	set +e
	mountpoint -q "$MNT" && "$SNAPFS" umount "$MNT"
	mountpoint -q "$MNT" || rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

"$SNAPFS" mkfs "$STORE" --size 16G >/dev/null
"$SNAPFS" mount "$STORE" "$MNT"
for j in buffered direct; do
	fio --name=lay --filename="$MNT/$j.dat" --rw=write --bs=1M --size="${MB}M" \
		--end_fsync=1 >/dev/null
done

# writers NAME: both fio jobs for RUNTIME seconds, JSON to $WORK/NAME.json
writers() {
	fio --output-format=json --output="$WORK/$1.json" \
		--name=buffered --filename="$MNT/buffered.dat" --rw=randwrite --bs=4k \
		--size="${MB}M" --time_based --runtime="$RUNTIME" \
		--name=direct --filename="$MNT/direct.dat" --rw=randwrite --bs=4k \
		--size="${MB}M" --direct=1 --time_based --runtime="$RUNTIME" >/dev/null
}

log "writers alone, ${RUNTIME} s"
writers alone
"$SNAPFS" stats "$MNT" --json >"$WORK/stats0.json"

log "writers with $SNAPSHOTS snapshot creates"
writers with &
fio_pid=$!
sleep 2
: >"$WORK/creates"
for ((i = 1; i <= SNAPSHOTS; i++)); do
	t0=${EPOCHREALTIME/./}
	"$SNAPFS" snapshot create "$MNT" "s$i" >/dev/null
	t1=${EPOCHREALTIME/./}
	echo $((t1 - t0)) >>"$WORK/creates"
	kill -0 "$fio_pid" 2>/dev/null || break
done
wait "$fio_pid"
"$SNAPFS" stats "$MNT" --json >"$WORK/stats1.json"
made=$(wc -l <"$WORK/creates")
[[ $made -eq $SNAPSHOTS ]] || log "only $made creates fitted in the run (raise SNAPLAT_RUNTIME)"

python3 - "$WORK" <<'EOF'
import json, statistics, sys
work = sys.argv[1]
c = sorted(int(x) / 1000 for x in open(work + "/creates"))
def pct(v, p): return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
print("snapshot create, whole command (%d): median %.1f ms, p99 %.1f ms, max %.1f ms"
      % (len(c), statistics.median(c), pct(c, 99), c[-1]))
for run in ("alone", "with"):
    d = json.load(open("%s/%s.json" % (work, run)))
    for job in d["jobs"]:
        w = job["write"]; q = w["clat_ns"]["percentile"]
        print("writes %-5s %-8s %8.0f IOPS  p50 %7.1f us  p99 %8.1f us  p99.9 %8.1f us  max %8.1f ms"
              % (run, job["jobname"], w["iops"], q["50.000000"] / 1e3, q["99.000000"] / 1e3,
                 q["99.900000"] / 1e3, w["clat_ns"]["max"] / 1e6))
c = json.load(open(work + "/stats1.json")).get("commits", {})
d = c.get("duration_ms", {})
print("commits of the mount (both runs): %s; duration p50 %s ms, p99 %s ms, max %s ms"
      % (c.get("count"), d.get("p50"), d.get("p99"), d.get("max")))
EOF
