#!/bin/bash
# The mount helper: `mount -t fuse.snapfs STORE DIR` and an fstab line of
# type fuse.snapfs mount a volume through contrib/mount.fuse.snapfs, with
# options passed through, and `umount` works on it.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
test_have_prereq ROOT || { say "# skipping: needs root (it installs /sbin/mount.fuse.snapfs and mounts through mount(8))"; test_done; }

HELPER=$(cd "$(dirname "$0")/../../contrib" && pwd)/mount.fuse.snapfs
INSTALLED=
cleanup_helper() {
	[ -n "$INSTALLED" ] && rm -f /sbin/mount.fuse.snapfs
}
trap 'cleanup_helper; vol_cleanup' EXIT

"$SNAPFS" mkfs "$STORE" --size 256M >/dev/null
mkdir -p "$MNT"

test_expect_success 'the helper is installed where mount(8) looks for it' '
	if ! [ -e /sbin/mount.fuse.snapfs ]; then
		ln -s "$HELPER" /sbin/mount.fuse.snapfs && INSTALLED=t
	fi &&
	test -x /sbin/mount.fuse.snapfs
'
INSTALLED=$([ -L /sbin/mount.fuse.snapfs ] && [ "$(readlink /sbin/mount.fuse.snapfs)" = "$HELPER" ] && echo t)

test_expect_success 'mount -t fuse.snapfs STORE DIR mounts the volume' '
	cd "$TEST_TMP" &&
	SNAPFS="$SNAPFS" mount -t fuse.snapfs "$STORE" "$MNT" &&
	say "$MNT" >>"$TEST_TMP/.mounts" &&
	mountpoint -q "$MNT" &&
	grep -q " $MNT fuse.snapfs " /proc/mounts &&
	echo via-mount >"$MNT/f" &&
	assert_eq via-mount "$(cat "$MNT/f")"
'

test_expect_success 'umount(8) unmounts it and the data stays' '
	cd "$TEST_TMP" &&
	umount "$MNT" &&
	! mountpoint -q "$MNT" &&
	for i in $(seq 50); do [ -e "$STORE/daemon.pid" ] || break; sleep 0.1; done &&
	! [ -e "$STORE/daemon.pid" ] &&
	vol_mount "$STORE" "$MNT" &&
	assert_eq via-mount "$(cat "$MNT/f")" &&
	vol_umount "$MNT"
'

test_expect_success 'an fstab line of type fuse.snapfs mounts with its options' '
	cd "$TEST_TMP" &&
	printf "%s %s fuse.snapfs defaults,_netdev,noatime,ro 0 0\n" "$STORE" "$MNT" >"$TEST_TMP/fstab" &&
	SNAPFS="$SNAPFS" mount -T "$TEST_TMP/fstab" "$MNT" &&
	mountpoint -q "$MNT" &&
	grep " $MNT fuse.snapfs " /proc/mounts | grep -q "ro," &&
	assert_eq via-mount "$(cat "$MNT/f")" &&
	! (echo x >"$MNT/g") 2>/dev/null &&
	umount "$MNT"
'

test_expect_success 'an unknown option in fstab is refused with one message' '
	cd "$TEST_TMP" &&
	printf "%s %s fuse.snapfs bogus_option 0 0\n" "$STORE" "$MNT" >"$TEST_TMP/fstab2" &&
	! SNAPFS="$SNAPFS" mount -T "$TEST_TMP/fstab2" "$MNT" 2>"$REF/err" &&
	cat "$REF/err" &&
	grep -q "unknown mount option .bogus_option." "$REF/err" &&
	! mountpoint -q "$MNT"
'

test_done
