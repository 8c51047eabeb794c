#!/bin/bash
# Bad input: every refusal exits non-zero with one message on stderr, and
# changes nothing - no store, mount or daemon appears or goes away.
. "$(dirname "$0")/lib.sh"
vol_create || test_bail "cannot create a volume"

S2=$TEST_TMP/store2	# a second store, not mounted
M2=$TEST_TMP/mnt2	# an empty directory that is not mounted
mkdir -p "$M2"

# refuse NAME COMMAND...: run a snapfs command that must be refused:
# exit status non-zero (and not a crash or a hang), exactly one line on
# stderr.  Its outputs are kept in $REF/NAME.{out,err}.
refuse() {
	local name=$1 rc
	shift
	if timeout 30 "$@" >"$REF/$name.out" 2>"$REF/$name.err" </dev/null
	then rc=0
	else rc=$?
	fi
	say "exit $rc; stderr: $(cat "$REF/$name.err")"
	assert_ne 0 "$rc" "exit status of: $*" &&
	assert_ne 124 "$rc" "timed out: $*" &&
	assert_le "$rc" 125 "killed by a signal: $*" &&
	assert_one_line "$REF/$name.err"
}

# unmounted DIR: DIR is not a mount point
unmounted() {
	! mountpoint -q "$1" || { say "$1 is a mount point" >&2; return 1; }
}

# names DIR: names and types, for a store a daemon may be writing to
names() { (cd "$1" && find . -printf '%p %y\n' | sort); }

test_expect_success SNAPFS 'setup: a second store, unmounted, holding a file' '
	"$SNAPFS" mkfs "$S2" &&
	vol_mount "$S2" "$M2" &&
	echo second >"$M2/file" &&
	vol_umount "$M2" &&
	store_listing "$S2" >"$REF/s2.before" &&
	test -s "$REF/s2.before"
'

test_expect_success SNAPFS 'mount of a missing store directory is refused' '
	refuse m-missing "$SNAPFS" mount "$TEST_TMP/no-such-store" "$M2" &&
	test ! -e "$TEST_TMP/no-such-store" &&
	unmounted "$M2" &&
	assert_eq "" "$(ls -A "$M2")"
'

test_expect_success SNAPFS 'mount on a missing mount point is refused' '
	refuse m-nomnt "$SNAPFS" mount "$S2" "$TEST_TMP/no-such-mnt" &&
	test ! -e "$TEST_TMP/no-such-mnt" &&
	store_listing "$S2" | cmp - "$REF/s2.before"
'

test_expect_success SNAPFS 'mount of an empty directory that is not a store is refused' '
	mkdir "$TEST_TMP/empty-dir" &&
	refuse m-empty "$SNAPFS" mount "$TEST_TMP/empty-dir" "$M2" &&
	assert_eq "" "$(ls -A "$TEST_TMP/empty-dir")" &&
	unmounted "$M2"
'

test_expect_success SNAPFS 'mount of a directory of other files is refused and leaves them alone' '
	mkdir "$TEST_TMP/not-a-store" &&
	echo data >"$TEST_TMP/not-a-store/some-file" &&
	mkdir "$TEST_TMP/not-a-store/subdir" &&
	store_listing "$TEST_TMP/not-a-store" >"$REF/nas.before" &&
	refuse m-other "$SNAPFS" mount "$TEST_TMP/not-a-store" "$M2" &&
	store_listing "$TEST_TMP/not-a-store" | cmp - "$REF/nas.before" &&
	unmounted "$M2"
'

test_expect_success SNAPFS 'mount of a store that is already mounted is refused' '
	echo first >"$MNT/first" &&
	pid=$(daemon_pid) &&
	names "$STORE" >"$REF/s1.names" &&
	refuse m-twice "$SNAPFS" mount "$STORE" "$M2" &&
	unmounted "$M2" &&
	assert_eq "$pid" "$(daemon_pid)" &&
	kill -0 "$pid" &&
	names "$STORE" | cmp - "$REF/s1.names" &&
	mountpoint -q "$MNT" &&
	assert_eq first "$(cat "$MNT/first")" &&
	echo still-writable >"$MNT/after" &&
	assert_eq still-writable "$(cat "$MNT/after")"
'

test_expect_success SNAPFS 'mkfs over an existing (unmounted) store is refused and changes nothing' '
	refuse mkfs-over "$SNAPFS" mkfs "$S2" &&
	store_listing "$S2" | cmp - "$REF/s2.before" &&
	refuse mkfs-over2 "$SNAPFS" mkfs "$S2" --size 64M --compress none &&
	store_listing "$S2" | cmp - "$REF/s2.before"
'

test_expect_success SNAPFS 'mkfs over the store of a mounted volume is refused' '
	names "$STORE" >"$REF/s1.names" &&
	refuse mkfs-mounted "$SNAPFS" mkfs "$STORE" &&
	names "$STORE" | cmp - "$REF/s1.names" &&
	assert_eq first "$(cat "$MNT/first")"
'

test_expect_success SNAPFS 'mkfs in a non-empty directory that is not a store is refused' '
	refuse mkfs-nonempty "$SNAPFS" mkfs "$TEST_TMP/not-a-store" &&
	store_listing "$TEST_TMP/not-a-store" | cmp - "$REF/nas.before"
'

test_expect_success SNAPFS 'the second store still mounts and holds its file' '
	vol_mount "$S2" "$M2" &&
	assert_eq second "$(cat "$M2/file")" &&
	vol_umount "$M2" &&
	store_listing "$S2" >"$REF/s2.before"
'

test_expect_success SNAPFS 'mkfs with an unknown option is refused and creates nothing' '
	refuse mkfs-opt "$SNAPFS" mkfs "$TEST_TMP/new1" --no-such-option &&
	test ! -e "$TEST_TMP/new1" &&
	refuse mkfs-opt2 "$SNAPFS" mkfs --bogus=1 "$TEST_TMP/new1" &&
	test ! -e "$TEST_TMP/new1"
'

test_expect_success SNAPFS 'mkfs with a bad --size, --block-size or --compress value is refused' '
	refuse mkfs-size "$SNAPFS" mkfs "$TEST_TMP/new2" --size banana &&
	test ! -e "$TEST_TMP/new2" &&
	refuse mkfs-bs "$SNAPFS" mkfs "$TEST_TMP/new2" --block-size banana &&
	test ! -e "$TEST_TMP/new2" &&
	refuse mkfs-comp "$SNAPFS" mkfs "$TEST_TMP/new2" --compress lzbogus &&
	test ! -e "$TEST_TMP/new2" &&
	refuse mkfs-noval "$SNAPFS" mkfs "$TEST_TMP/new2" --size &&
	test ! -e "$TEST_TMP/new2"
'

test_expect_success SNAPFS 'mount with an unknown option is refused and mounts nothing' '
	refuse mount-opt "$SNAPFS" mount "$S2" "$M2" --no-such-option &&
	unmounted "$M2" &&
	store_listing "$S2" | cmp - "$REF/s2.before"
'

test_expect_success SNAPFS 'umount, info and fsck with an unknown option are refused' '
	refuse umount-opt "$SNAPFS" umount "$MNT" --no-such-option &&
	mountpoint -q "$MNT" &&
	assert_eq first "$(cat "$MNT/first")" &&
	refuse info-opt "$SNAPFS" info "$S2" --no-such-option &&
	refuse fsck-opt "$SNAPFS" fsck "$S2" --no-such-option &&
	store_listing "$S2" | cmp - "$REF/s2.before"
'

test_expect_success SNAPFS 'an unknown command, or none at all, is refused' '
	refuse cmd-unknown "$SNAPFS" frobnicate "$S2" &&
	refuse cmd-none "$SNAPFS" &&
	store_listing "$S2" | cmp - "$REF/s2.before"
'

test_expect_success SNAPFS 'commands with missing arguments are refused' '
	refuse mkfs-noarg "$SNAPFS" mkfs &&
	refuse mount-noarg "$SNAPFS" mount "$S2" &&
	unmounted "$M2" &&
	refuse umount-noarg "$SNAPFS" umount &&
	mountpoint -q "$MNT"
'

test_expect_success SNAPFS 'umount of a directory that is not mounted is refused' '
	refuse umount-not "$SNAPFS" umount "$M2" &&
	refuse umount-missing "$SNAPFS" umount "$TEST_TMP/no-such-mnt"
'

test_expect_success SNAPFS 'info and fsck of a directory that is not a store are refused' '
	refuse info-not "$SNAPFS" info "$TEST_TMP/not-a-store" &&
	refuse fsck-not "$SNAPFS" fsck "$TEST_TMP/not-a-store" &&
	refuse fsck-missing "$SNAPFS" fsck "$TEST_TMP/no-such-store" &&
	store_listing "$TEST_TMP/not-a-store" | cmp - "$REF/nas.before"
'

test_expect_success SNAPFS 'after all the refusals both stores are intact' '
	store_listing "$S2" | cmp - "$REF/s2.before" &&
	"$SNAPFS" fsck "$S2" &&
	assert_eq first "$(cat "$MNT/first")" &&
	assert_eq "" "$(ls -A "$M2")"
'

test_done
