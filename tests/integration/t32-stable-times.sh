#!/bin/bash
# Stable times: after sync, the mtime and ctime a file shows are, to the
# nanosecond, those its copy in a snapshot taken then has and those it
# shows after an unmount and mount, whoever stamped them: the kernel's
# writeback cache (the default mount) or the daemon (-o
# no_writeback_cache).  Every way of changing a file's data is covered:
# write(2) through the page cache, stores through mmap, O_DIRECT,
# truncate, fallocate (punching holes) and copy_file_range; and each of
# them still moves the file's mtime.
. "$(dirname "$0")/lib.sh"
vol_create || test_bail "cannot create a volume"

N=40		# files of the issue's pattern, per cache mode
K=8		# files per other kind of change

# in_mode MODE: the mountpoint of the volume of MODE (wb or nowb)
in_mode() { [ "$1" = wb ] && echo "$MNT" || echo "$TEST_TMP/mnt-nowb"; }

# times_in DIR: "path mtime ctime" of every regular file under DIR
# (.snapshot is not descended into), both with their nine digits of
# nanoseconds, sorted by path.
times_in() {
	(cd "$1" && find . -name .snapshot -prune -o -type f -print0 | sort -z |
		xargs -0r stat -c '%n %.9Y %.9Z') || return 1
}

# remount_mode MODE: unmount and mount the volume of MODE again
remount_mode() {
	if [ "$1" = wb ]; then
		vol_remount
	else
		vol_umount "$TEST_TMP/mnt-nowb" &&
		SNAPFS_MOUNT_OPTS=no_writeback_cache vol_mount "$TEST_TMP/store-nowb" "$TEST_TMP/mnt-nowb"
	fi
}

# pokes DIR PREFIX COUNT: the issue's writes, COUNT files
pokes() {
	local i
	for i in $(seq "$3"); do
		truncate -s 1M "$1/$2$i" &&
		printf x | dd of="$1/$2$i" bs=1 seek=300000 conv=notrunc status=none ||
			return 1
	done
}

# mmap_stores DIR PREFIX COUNT: stores through a shared mapping, some
# synced with msync and some left to writeback, then unmapped
mmap_stores() {
	python3 - "$@" <<-\EOF
	import mmap, os, sys
	d, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
	for i in range(1, count + 1):
	    fd = os.open("%s/%s%d" % (d, prefix, i), os.O_RDWR | os.O_CREAT, 0o644)
	    os.ftruncate(fd, 1 << 20)
	    m = mmap.mmap(fd, 1 << 20, mmap.MAP_SHARED)
	    m[300000:300005] = b"mmap!"
	    m[700000:700001] = b"y"
	    if i % 2:
	        m.flush()
	    m.close()
	    os.close(fd)
	EOF
}

# direct_writes DIR PREFIX COUNT: O_DIRECT writes of whole pages, the
# first right after a truncation
direct_writes() {
	local i
	for i in $(seq "$3"); do
		truncate -s 1M "$1/$2$i" &&
		dd if=/dev/urandom of="$1/$2$i" bs=4096 count=1 seek=70 \
			oflag=direct conv=notrunc status=none &&
		dd if=/dev/urandom of="$1/$2$i" bs=4096 count=2 seek=300 \
			oflag=direct conv=notrunc status=none || return 1
	done
}

# truncations DIR PREFIX COUNT: grow, write, shrink, and truncate(2)
# to the size the file has
truncations() {
	local i
	for i in $(seq "$3"); do
		printf 'some bytes' >"$1/$2$i" &&
		truncate -s 200K "$1/$2$i" &&
		printf z | dd of="$1/$2$i" bs=1 seek=150000 conv=notrunc status=none &&
		truncate -s 100001 "$1/$2$i" &&
		python3 -c 'import os, sys; os.truncate(sys.argv[1], 100001)' "$1/$2$i" ||
			return 1
	done
}

# punches DIR PREFIX COUNT: holes punched into written files
punches() {
	local i
	for i in $(seq "$3"); do
		head -c 400000 /dev/urandom >"$1/$2$i" &&
		fallocate -p -o 70000 -l 140000 "$1/$2$i" &&
		fallocate -p -o 390000 -l 5000 "$1/$2$i" || return 1
	done
}

# copies DIR PREFIX COUNT: copy_file_range into new files and into the
# middle of existing ones
copies() {
	python3 - "$@" <<-\EOF
	import os, sys
	d, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
	src = "%s/%ssrc" % (d, prefix)
	with open(src, "wb") as f:
	    f.write(os.urandom(300000))
	for i in range(1, count + 1):
	    s = os.open(src, os.O_RDONLY)
	    t = os.open("%s/%s%d" % (d, prefix, i), os.O_RDWR | os.O_CREAT, 0o644)
	    if i % 2:
	        os.pwrite(t, b"old" * 50000, 0)
	    done = 0
	    while done < 200000:
	        n = os.copy_file_range(s, t, 200000 - done, 1000 + done, 5000 + done)
	        if n <= 0:
	            sys.exit("copy_file_range stopped at %d" % done)
	        done += n
	    os.close(t)
	    os.close(s)
	EOF
}

# all_changes DIR TAG: every kind of change, files named TAG-KIND-N
all_changes() {
	pokes "$1" "$2-poke-" "$N" &&
	mmap_stores "$1" "$2-mmap-" "$K" &&
	direct_writes "$1" "$2-direct-" "$K" &&
	truncations "$1" "$2-trunc-" "$K" &&
	punches "$1" "$2-punch-" "$K" &&
	copies "$1" "$2-copy-" "$K"
}

# same_times WHAT EXPECTED ACTUAL: equal listings, or the lines that differ
same_times() {
	cmp -s "$2" "$3" && return 0
	say "$1: the times differ (expected, then actual):" >&2
	diff "$2" "$3" | head -20 >&2
	say "$(diff "$2" "$3" | grep -c '^<') of $(wc -l <"$2") files differ" >&2
	return 1
}

for mode in wb nowb; do
	case $mode in
	wb) what='with the writeback cache' ;;
	nowb) what='without the writeback cache' ;;
	esac

	if [ "$mode" = nowb ]; then
		test_expect_success SNAPFS "setup: a volume mounted $what" '
			"$SNAPFS" mkfs "$TEST_TMP/store-nowb" --size 1G >/dev/null &&
			SNAPFS_MOUNT_OPTS=no_writeback_cache vol_mount "$TEST_TMP/store-nowb" "$TEST_TMP/mnt-nowb"
		'
	fi

	test_expect_success SNAPFS "$what: a snapshot taken after sync holds the times every changed file shows" '
		d=$(in_mode '$mode') &&
		all_changes "$d" a &&
		sync &&
		times_in "$d" >"$REF/'$mode'.live" &&
		test "$(wc -l <"$REF/'$mode'.live")" -ge $((N + 5 * K)) &&
		"$SNAPFS" snapshot create "$d" synced >/dev/null &&
		times_in "$d/.snapshot/synced" >"$REF/'$mode'.snap" &&
		same_times "the snapshot" "$REF/'$mode'.live" "$REF/'$mode'.snap" &&
		times_in "$d" >"$REF/'$mode'.live2" &&
		same_times "the live tree after the snapshot" "$REF/'$mode'.live" "$REF/'$mode'.live2"
	'

	test_expect_success SNAPFS "$what: a snapshot taken right after the changes, without sync, holds the times they show" '
		d=$(in_mode '$mode') &&
		all_changes "$d" b &&
		times_in "$d" >"$REF/'$mode'.before" &&
		"$SNAPFS" snapshot create "$d" unsynced >/dev/null &&
		times_in "$d/.snapshot/unsynced" >"$REF/'$mode'.snap3" &&
		same_times "the snapshot" "$REF/'$mode'.before" "$REF/'$mode'.snap3" &&
		times_in "$d" >"$REF/'$mode'.live3" &&
		same_times "the live tree after the snapshot" "$REF/'$mode'.before" "$REF/'$mode'.live3"
	'

	test_expect_success SNAPFS "$what: after an unmount and mount every file shows the times it showed" '
		d=$(in_mode '$mode') &&
		remount_mode '$mode' &&
		times_in "$d" >"$REF/'$mode'.remounted" &&
		same_times "after the remount" "$REF/'$mode'.before" "$REF/'$mode'.remounted" &&
		times_in "$d/.snapshot/synced" >"$REF/'$mode'.snap-remounted" &&
		same_times "the snapshot after the remount" "$REF/'$mode'.snap" "$REF/'$mode'.snap-remounted"
	'

	test_expect_success SNAPFS "$what: each kind of change moves the mtime of a file dated 2001" '
		d=$(in_mode '$mode') &&
		start=$(date +%s) &&
		for f in a-poke-1 a-mmap-1 a-direct-1 a-trunc-1 a-punch-1 a-copy-1; do
			touch -d @1000000000 "$d/$f" || exit 1
		done &&
		printf q | dd of="$d/a-poke-1" bs=1 seek=5 conv=notrunc status=none &&
		python3 -c "
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 0, mmap.MAP_SHARED)
m[10:11] = b\"m\"
m.close()
os.close(fd)" "$d/a-mmap-1" &&
		dd if=/dev/zero of="$d/a-direct-1" bs=4096 count=1 oflag=direct conv=notrunc status=none &&
		truncate -s 5000 "$d/a-trunc-1" &&
		fallocate -p -o 0 -l 65536 "$d/a-punch-1" &&
		python3 -c "
import os, sys
s = os.open(sys.argv[1], os.O_RDONLY)
t = os.open(sys.argv[2], os.O_WRONLY)
assert os.copy_file_range(s, t, 100, 0, 0) == 100" "$d/a-copy-src" "$d/a-copy-1" &&
		sync &&
		for f in a-poke-1 a-mmap-1 a-direct-1 a-trunc-1 a-punch-1 a-copy-1; do
			m=$(stat -c %Y "$d/$f") &&
			assert_le "$start" "$m" "mtime of $f" || exit 1
		done &&
		times_in "$d" >"$REF/'$mode'.moved" &&
		remount_mode '$mode' &&
		times_in "$d" >"$REF/'$mode'.moved-remounted" &&
		same_times "after the remount" "$REF/'$mode'.moved" "$REF/'$mode'.moved-remounted"
	'
done

test_expect_success SNAPFS 'the volume without the writeback cache unmounts and checks clean' '
	vol_umount "$TEST_TMP/mnt-nowb" &&
	"$SNAPFS" fsck "$TEST_TMP/store-nowb"
'

test_done
