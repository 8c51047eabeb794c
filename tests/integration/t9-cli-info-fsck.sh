#!/bin/bash
# The command line: mkfs options, mount (daemon, -f, mount options),
# umount, info and fsck do what the contract says.  snapfs only.
. "$(dirname "$0")/lib.sh"
vol_create || test_bail "cannot create a volume"

MiB=$((1024 * 1024))

# json_ok FILE: FILE holds one JSON object
json_ok() {
	"$TEST_PYTHON" -c '
import json, sys
with open(sys.argv[1]) as f:
    v = json.load(f)
assert isinstance(v, dict) and v, "not a non-empty JSON object: %r" % (v,)
' "$1"
}

# roundtrip NAME MKFS-OPTIONS...: make a store with these options, write
# random and compressible data, remount, read it back, fsck it.
roundtrip() {
	local name=$1 s m
	shift
	s=$TEST_TMP/st-$name m=$TEST_TMP/mnt-$name
	"$SNAPFS" mkfs "$s" "$@" &&
	vol_mount "$s" "$m" &&
	cp "$REF/rand" "$REF/text" "$m/" &&
	mkdir "$m/d" && echo small >"$m/d/small" &&
	vol_umount "$m" &&
	"$SNAPFS" fsck "$s" &&
	vol_mount "$s" "$m" &&
	assert_cmp "$REF/rand" "$m/rand" &&
	assert_cmp "$REF/text" "$m/text" &&
	assert_eq small "$(cat "$m/d/small")" &&
	vol_umount "$m" &&
	"$SNAPFS" fsck "$s" &&
	"$SNAPFS" info "$s" --json >"$REF/info-$name.json" &&
	json_ok "$REF/info-$name.json"
}

test_expect_success SNAPFS 'setup: reference data' '
	rand_file "$REF/rand" $((2 * MiB + 12345)) &&
	yes "the quick brown fox jumps over the lazy dog" | head -c $((4 * MiB)) >"$REF/text"
'

test_expect_success SNAPFS 'mount writes the daemon pid to STORE/daemon.pid' '
	pid=$(daemon_pid) &&
	test -n "$pid" &&
	kill -0 "$pid"
'

test_expect_success SNAPFS,ROOT 'as root the volume is mounted with default_permissions and allow_other' '
	opts=$(awk -v m="$MNT" "\$2 == m { print \$4 }" /proc/self/mounts) &&
	say "mount options: $opts" &&
	case ",$opts," in *,default_permissions,*) ;; *) exit 1 ;; esac &&
	case ",$opts," in *,allow_other,*) ;; *) exit 1 ;; esac &&
	assert_grep " $MNT fuse" /proc/self/mounts
'

test_expect_success SNAPFS,ROOT 'another user can list and read the volume' '
	echo for-everyone >public && chmod 644 public &&
	as_nobody ls "$MNT" >/dev/null &&
	assert_eq for-everyone "$(as_nobody cat "$MNT/public")"
'

test_expect_success SNAPFS 'info STORE prints something and exits 0' '
	"$SNAPFS" info "$STORE" >"$REF/info.out" 2>"$REF/info.err" &&
	test -s "$REF/info.out" &&
	cat "$REF/info.out"
'

test_expect_success SNAPFS 'info MNT prints something and exits 0' '
	"$SNAPFS" info "$MNT" >"$REF/info-mnt.out" &&
	test -s "$REF/info-mnt.out"
'

test_expect_success SNAPFS 'info --json prints a JSON object, for STORE and for MNT' '
	"$SNAPFS" info "$STORE" --json >"$REF/info.json" &&
	cat "$REF/info.json" &&
	json_ok "$REF/info.json" &&
	"$SNAPFS" info "$MNT" --json >"$REF/info-mnt.json" &&
	json_ok "$REF/info-mnt.json"
'

test_expect_success SNAPFS 'mkfs creates a missing store directory' '
	test ! -e "$TEST_TMP/fresh" &&
	"$SNAPFS" mkfs "$TEST_TMP/fresh" &&
	test -d "$TEST_TMP/fresh" &&
	"$SNAPFS" fsck "$TEST_TMP/fresh"
'

test_expect_success SNAPFS 'mkfs accepts an existing empty directory' '
	mkdir "$TEST_TMP/emptydir" &&
	"$SNAPFS" mkfs "$TEST_TMP/emptydir" &&
	test -n "$(ls -A "$TEST_TMP/emptydir")" &&
	"$SNAPFS" fsck "$TEST_TMP/emptydir"
'

test_expect_success SNAPFS 'a new volume holds only an empty .snapshot, and its root is a directory of mode 755 owned by the mounter' '
	vol_mount "$TEST_TMP/fresh" "$TEST_TMP/mnt-fresh" &&
	assert_eq ".snapshot" "$(ls -A "$TEST_TMP/mnt-fresh")" &&
	assert_eq "" "$(ls -A "$TEST_TMP/mnt-fresh/.snapshot")" &&
	assert_stat "$TEST_TMP/mnt-fresh" "%F %a %u %g" "directory 755 $(id -u) $(id -g)" &&
	vol_umount "$TEST_TMP/mnt-fresh"
'

test_expect_success SNAPFS 'fsck of a fresh store exits 0' '
	"$SNAPFS" fsck "$TEST_TMP/fresh"
'

test_expect_success SNAPFS 'mkfs --compress none: data round-trips' '
	roundtrip none --compress none
'

test_expect_success SNAPFS 'mkfs --block-size 4096: data round-trips' '
	roundtrip bs4k --block-size 4096
'

test_expect_success SNAPFS 'mkfs --block-size 16384 --compress zstd:3 --size 256M: data round-trips' '
	roundtrip combo --block-size 16384 --compress zstd:3 --size 256M
'

test_expect_success SNAPFS 'with zstd, 20 MiB of text takes much less space than 20 MiB' '
	s=$TEST_TMP/st-cz m=$TEST_TMP/mnt-cz &&
	"$SNAPFS" mkfs "$s" --size 128M --compress zstd &&
	vol_mount "$s" "$m" &&
	sync && before=$(( $(stat -f -c "%a * %S" "$m") )) &&
	yes "compressible text compressible text" | head -c $((20 * MiB)) >"$m/text" &&
	sync && after=$(( $(stat -f -c "%a * %S" "$m") )) &&
	say "available before $before, after $after" &&
	assert_le $((before - after)) $((8 * MiB)) "space used by 20 MiB of text" &&
	vol_umount "$m"
'

test_expect_success SNAPFS 'mount -f stays in the foreground until umount' '
	cd "$TEST_TMP" &&
	"$SNAPFS" mkfs "$TEST_TMP/st-fg" &&
	mkdir "$TEST_TMP/mnt-fg" &&
	echo "$TEST_TMP/mnt-fg" >>"$TEST_TMP/.mounts" &&
	{ "$SNAPFS" mount "$TEST_TMP/st-fg" "$TEST_TMP/mnt-fg" -f >"$REF/fg.out" 2>&1 & } &&
	fg=$! &&
	for i in $(seq 1 200); do
		mountpoint -q "$TEST_TMP/mnt-fg" && break
		kill -0 $fg || { say "mount -f exited early:"; cat "$REF/fg.out"; exit 1; }
		sleep 0.1
	done &&
	{ mountpoint -q "$TEST_TMP/mnt-fg" || { say "not mounted after 20 s:"; cat "$REF/fg.out"; exit 1; }; } &&
	{ kill -0 $fg || { say "mount -f is not running any more:"; cat "$REF/fg.out"; exit 1; }; } &&
	echo fg >"$TEST_TMP/mnt-fg/f" &&
	assert_eq fg "$(cat "$TEST_TMP/mnt-fg/f")" &&
	vol_umount "$TEST_TMP/mnt-fg" &&
	{ wait $fg || { say "mount -f exited with status $?:"; cat "$REF/fg.out"; exit 1; }; }
'

test_expect_success SNAPFS 'umount waits until the daemon has exited' '
	"$SNAPFS" mkfs "$TEST_TMP/st-wait" &&
	vol_mount "$TEST_TMP/st-wait" "$TEST_TMP/mnt-wait" &&
	pid=$(cat "$TEST_TMP/st-wait/daemon.pid") &&
	kill -0 "$pid" &&
	rand_file "$TEST_TMP/mnt-wait/data" $((8 * MiB)) &&
	vol_umount "$TEST_TMP/mnt-wait" &&
	assert_gone "$pid" &&
	"$SNAPFS" fsck "$TEST_TMP/st-wait"
'

test_expect_success SNAPFS 'the daemon does not keep busy the directory it was started from' '
	"$SNAPFS" mkfs "$TEST_TMP/st-a" && "$SNAPFS" mkfs "$TEST_TMP/st-b" &&
	vol_mount "$TEST_TMP/st-a" "$TEST_TMP/mnt-a" &&
	mkdir "$TEST_TMP/mnt-a/sub" "$TEST_TMP/mnt-b" &&
	echo "$TEST_TMP/mnt-b" >>"$TEST_TMP/.mounts" &&
	(cd "$TEST_TMP/mnt-a/sub" && "$SNAPFS" mount "$TEST_TMP/st-b" "$TEST_TMP/mnt-b") &&
	mountpoint -q "$TEST_TMP/mnt-b" &&
	vol_umount "$TEST_TMP/mnt-a" &&
	vol_umount "$TEST_TMP/mnt-b"
'

test_expect_success SNAPFS 'fsck of the main store after a remount is clean and info still works' '
	mkdir -p a/b && echo x >a/b/x && ln a/b/x a/y && ln -s b a/s &&
	vol_remount &&
	"$SNAPFS" info "$STORE" >/dev/null &&
	cd "$TEST_TMP" &&
	vol_umount "$MNT" &&
	"$SNAPFS" fsck "$STORE" >"$REF/fsck.out" 2>&1 &&
	"$SNAPFS" info "$STORE" >/dev/null &&
	vol_mount "$STORE" "$MNT" &&
	assert_eq x "$(cat "$MNT/a/y")"
'

test_done
