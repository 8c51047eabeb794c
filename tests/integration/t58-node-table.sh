#!/bin/bash
# The daemon's memory for the inodes the kernel holds (fs/volume.c, THEORY:
# THE NODE TABLE): after a `find` of 20,000 files `snapfs stats` counts
# every inode the kernel holds at under 40 bytes each, the table gives the
# memory back when the kernel forgets them, the daemon's anonymous memory
# grows by about that much (a release build), and files unlinked while the
# kernel holds them, open or only looked up, keep their data until the
# last close or forget and give their space back then.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 1G

FILES=20000
PER_DIR=100
test_lazy_prereq NOT_ASAN '! nm -D "$SNAPFS" 2>/dev/null | grep -q __asan_init'

# daemon FIELD: a field of the daemon object of `snapfs stats --json`
daemon() {
	"$SNAPFS" stats "$MNT" --json |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["daemon"][sys.argv[1]])' "$1"
}
phys() { "$SNAPFS" info "$MNT" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['physical_bytes'])"; }
# evict: the kernel forgets every unused dentry and inode
evict() { sync && echo 2 >/proc/sys/vm/drop_caches; }
# rss_anon: the daemon's anonymous resident memory, in bytes
rss_anon() { awk '/^RssAnon:/ { print $2 * 1024 }' "/proc/$(daemon_pid)/status"; }
# wait_until CMD...: poll CMD for up to 30 s
wait_until() {
	local i
	for i in $(seq 600); do
		"$@" && return 0
		sleep 0.05
	done
	say "wait_until: still not: $*" >&2
	return 1
}
inodes_below() { local n; n=$(daemon inodes_held) && [ "$n" -lt "$1" ]; }
phys_at_most() { [ "$(phys)" -le "$1" ]; }

# tree DIR N: N empty files in DIR, PER_DIR to a directory
tree() {
	python3 -c "
import os, sys
root, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d = os.path.join(root, \"d%d\" % (i // per))
    if i % per == 0:
        os.makedirs(d)
    os.close(os.open(os.path.join(d, \"f%d\" % i), os.O_CREAT | os.O_WRONLY, 0o644))
" "$1" "$2" $PER_DIR
}

test_expect_success 'a tree of 20,000 files' '
	tree "$MNT/t" $FILES &&
	tree "$MNT/w" 2000 &&
	vol_remount &&
	inodes_below 100
'

test_expect_success 'after a find of them the daemon counts every inode the kernel holds, at under 40 bytes each' '
	# a listing first, so that the threads and buffers it needs are there
	find "$MNT/w" >/dev/null &&
	before=$(rss_anon) &&
	find "$MNT/t" >"$REF/names" &&
	after=$(rss_anon) &&
	echo "$before $after" >"$REF/rss" &&
	names=$(wc -l <"$REF/names") &&
	assert_eq $((1 + FILES / PER_DIR + FILES)) "$names" "names found" &&
	held=$(daemon inodes_held) && bytes=$(daemon node_bytes) &&
	say "$held inodes held, $bytes bytes of node table" &&
	assert_le "$names" "$held" "inodes held" &&
	assert_le "$bytes" $((held * 40)) "node table bytes"
'

test_expect_success NOT_ASAN 'the find grew the daemon'"'"'s anonymous memory by under 64 bytes an inode' '
	read -r before after <"$REF/rss" &&
	say "RssAnon $before -> $after bytes" &&
	assert_le "$((after - before))" $((FILES * 64)) "anonymous memory grown"
'

test_expect_success 'when the kernel forgets them, the table gives its memory back' '
	evict &&
	wait_until inodes_below 100 &&
	assert_le "$(daemon node_bytes)" 65536 "node table bytes"
'

test_expect_success 'files unlinked while the kernel holds them keep their data until the last close or forget, then give their space back' '
	empty=$(phys) &&
	for i in $(seq 20); do rand_file "$MNT/u$i" 262144 || return 1; done &&
	cp "$MNT/u1" "$REF/u1" &&
	sync -f "$MNT" &&
	full=$(phys) &&
	assert_le $((empty + 20 * 262144)) "$full" "space of the files" &&
	stat "$MNT"/u* >/dev/null &&
	exec 3<"$MNT/u1" &&
	rm "$MNT"/u* &&
	assert_missing "$MNT/u2" &&
	wait_until phys_at_most $((empty + 2 * 262144)) &&
	assert_le $((empty + 262144)) "$(phys)" "the open file keeps its space" &&
	cat <&3 >"$REF/u1.read" &&
	exec 3<&- &&
	assert_cmp "$REF/u1" "$REF/u1.read" &&
	wait_until phys_at_most $((empty + 65536))
'

test_done
