#!/bin/bash
# Restore: `snapshot restore` rolls the live tree back to a snapshot,
# mounted or not, and keeps every snapshot reading as before; `snapshot
# restore-file` brings back one file (in place, same inode) or a directory
# (hard links and ACLs kept); `clone` makes an independent volume of a
# snapshot, also of a mounted source.  Trees are compared through a listing
# of path, type, mode, owner, size, mtime, link count, hard-link group,
# content checksum, symlink target and every xattr (ACLs included).  Bad
# input changes nothing; a SIGKILL of the daemon during a large rollback
# leaves the tree before or after it, fsck clean.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 1G

TREELIST=$(cd "$(dirname "$0")" && pwd)/treelist.py
tree() { python3 "$TREELIST" "${1:-$MNT}"; }
# same_tree LISTING [DIR]: DIR (default $MNT) lists exactly as LISTING
same_tree() {
	tree "${2:-$MNT}" >"$REF/now.tree" &&
	diff -u "$1" "$REF/now.tree" >&2
}

test_expect_success 'set up a tree: contents, modes, owners, times, xattrs, ACLs, hard links, holes' '
	echo one >mod && ln mod mod.link &&
	echo "bring me back" >gone &&
	mkdir -p dir/sub && echo a >dir/a && ln dir/a dir/sub/a.link &&
	head -c 200000 /dev/urandom >dir/big && ln -s ../mod dir/sym && mkfifo dir/fifo &&
	setfacl -m u:65534:rw dir/a && setfacl -d -m g:65534:rx dir/sub &&
	setfattr -n user.color -v blue dir/big &&
	truncate -s 5M sparse && printf x | dd of=sparse bs=1 seek=3000000 conv=notrunc 2>/dev/null &&
	root_chown 65534:65534 dir/sub && chmod 4750 mod &&
	touch -h -d "2001-02-03 04:05:06.789" dir/sym dir/a mod &&
	tree >"$REF/s1.tree" && "$SNAPFS" snapshot create "$MNT" s1 >/dev/null &&
	echo two >mod && rm gone dir/sub/a.link && setfacl -b dir/a &&
	setfattr -n user.color -v red dir/big && head -c 100 /dev/urandom >>dir/big &&
	chmod 600 dir/big && mkdir new && echo fresh >new/f && rm -r dir/sub &&
	tree >"$REF/s2.tree" && "$SNAPFS" snapshot create "$MNT" s2 >/dev/null &&
	echo three >mod && echo later >later && rm sparse &&
	tree >"$REF/live.tree" &&
	! cmp -s "$REF/s1.tree" "$REF/s2.tree" && ! cmp -s "$REF/s2.tree" "$REF/live.tree"
'

test_expect_success 'rollback of a mounted volume brings back the tree of the snapshot exactly' '
	"$SNAPFS" snapshot restore "$MNT" s1 >"$REF/out" 2>"$REF/err" &&
	assert_grep "rolled .* back to snapshot s1: [1-9][0-9]* records restored, [1-9][0-9]* removed" "$REF/out" &&
	assert_grep "discarded" "$REF/err" &&
	vol_remount &&
	same_tree "$REF/s1.tree" &&
	assert_eq "bring me back" "$(cat gone)" &&
	assert_eq "user::rw-,user:65534:rw-,group::r--,mask::rw-,other::r--" \
		"$(getfacl -ncp dir/a | grep -v "^$" | paste -sd,)" &&
	assert_missing new && assert_missing later
'

test_expect_success 'the mounted tree shows a rollback without a remount' '
	# the kernel caches attributes, entries and pages for a day: the
	# daemon invalidates them after a rollback
	cat mod dir/a >/dev/null && stat dir/sub >/dev/null &&
	"$SNAPFS" snapshot restore "$MNT" s2 >/dev/null 2>&1 &&
	assert_eq two "$(cat mod)" &&
	assert_missing dir/sub &&
	same_tree "$REF/s2.tree"
'

test_expect_success 'every snapshot is kept, and rolling back and forth reads each exactly' '
	"$SNAPFS" snapshot restore "$MNT" s2 >/dev/null 2>&1 &&
	vol_remount && same_tree "$REF/s2.tree" &&
	"$SNAPFS" snapshot restore "$MNT" s1 >/dev/null 2>&1 &&
	vol_remount && same_tree "$REF/s1.tree" &&
	assert_eq "s1 s2" "$(snaps)"
'

test_expect_success 'rollback of an unmounted volume, then fsck is clean' '
	cd "$TEST_TMP" && vol_umount "$MNT" &&
	"$SNAPFS" snapshot restore "$STORE" s2 >"$REF/out" 2>/dev/null &&
	assert_grep "rolled .* back to snapshot s2" "$REF/out" &&
	"$SNAPFS" fsck "$STORE" &&
	vol_mount "$STORE" "$MNT" && same_tree "$REF/s2.tree"
'

test_expect_success 'restore-file brings back a deleted file with its attributes' '
	"$SNAPFS" snapshot restore-file "$MNT" s1 gone >"$REF/out" &&
	assert_grep "restored gone from snapshot s1 to gone (1 object)" "$REF/out" &&
	assert_eq "bring me back" "$(cat gone)" &&
	grep "^gone " "$REF/s1.tree" >"$REF/want" && tree | grep "^gone " >"$REF/got" &&
	assert_cmp "$REF/want" "$REF/got"
'

test_expect_success 'restore-file overwrites a modified file in place: same inode, other links see it' '
	ino=$(stat -c %i mod) &&
	"$SNAPFS" snapshot restore-file "$MNT" s1 "$MNT/mod" >"$REF/out" &&
	assert_grep "over /mod (same file)" "$REF/out" &&
	vol_remount &&
	assert_eq "$ino" "$(stat -c %i mod)" &&
	assert_eq one "$(cat mod)" && assert_eq one "$(cat mod.link)" &&
	assert_stat mod %a 4750 &&
	assert_eq "$(grep "^mod " "$REF/s1.tree")" "$(tree | grep "^mod ")"
'

test_expect_success 'restore-file of a directory to --to keeps hard links, ACLs, xattrs and holes' '
	"$SNAPFS" snapshot restore-file "$MNT" s1 dir --to dir.back >"$REF/out" &&
	assert_grep "restored dir from snapshot s1 to dir.back (6 objects)" "$REF/out" &&
	python3 - "$REF/s1.tree" >"$REF/want" <<-\PY &&
	import sys
	for l in open(sys.argv[1]):
	    if l.startswith("dir/"):
	        print(l.replace("dir/", "dir.back/").rstrip("\n"))
	PY
	tree | grep "^dir.back/" >"$REF/got" &&
	diff -u "$REF/want" "$REF/got" >&2 &&
	assert_eq "$(stat -c %i dir.back/a)" "$(stat -c %i dir.back/sub/a.link)" &&
	assert_stat dir.back/a %h 2 &&
	getfacl -ncp dir.back/sub | grep -q "^default:group:65534:r-x" &&
	"$SNAPFS" snapshot restore-file "$MNT" s1 sparse --to sparse.back >/dev/null &&
	assert_zeros sparse.back 0 3000000 && assert_le "$(stat -c %b sparse.back)" 1024
'

test_expect_success 'bad input: one message, non-zero exit, nothing changed' '
	vol_remount &&	# needs notify_changed: restore-file touched / behind the kernel
	tree >"$REF/before" && "$SNAPFS" snapshot list "$MNT" --json >"$REF/snaps.before" &&
	for args in "restore $MNT nosuch" "restore-file $MNT nosuch gone" \
		    "restore-file $MNT s1 not/there" "restore-file $MNT s1 gone --to no/parent/x" \
		    "restore-file $MNT s1 dir" "restore-file $MNT s1 dir --to mod" \
		    "restore-file $MNT s1 mod --to dir" "restore-file $MNT s1 dir/sym" \
		    "restore-file $MNT s1 ../x" "restore $MNT"; do
		if "$SNAPFS" snapshot $args >"$REF/out" 2>"$REF/err"; then
			say "succeeded: $args"; exit 1
		fi
		assert_one_line "$REF/err" || exit 1
	done &&
	"$SNAPFS" snapshot restore-file "$MNT" s1 not/there 2>&1 | grep -q "does not exist in snapshot" &&
	"$SNAPFS" snapshot restore-file "$MNT" s1 gone --to no/parent/x 2>&1 | grep -q "parent directory does not exist" &&
	"$SNAPFS" snapshot restore-file "$MNT" s1 dir 2>&1 | grep -q "existing directory; restore to a new name with --to" &&
	"$SNAPFS" snapshot restore "$MNT" nosuch 2>&1 | grep -q "no snapshot named .nosuch." &&
	mkdir "$REF/taken" &&
	assert_fails "$SNAPFS" clone "$MNT" s1 "$REF/taken" 2>"$REF/err" &&
	assert_grep "already exists; nothing was changed" "$REF/err" &&
	assert_fails "$SNAPFS" clone "$MNT" nosuch "$REF/c0" 2>"$REF/err" &&
	assert_one_line "$REF/err" && assert_grep "no snapshot named" "$REF/err" &&
	assert_fails "$SNAPFS" clone "$MNT" s1 "$REF/no/parent" 2>"$REF/err" &&
	assert_one_line "$REF/err" &&
	assert_eq "" "$(ls "$REF" | grep -e "^c0" -e partial)" &&
	same_tree "$REF/before" &&
	"$SNAPFS" snapshot list "$MNT" --json >"$REF/snaps.after" &&
	assert_cmp "$REF/snaps.before" "$REF/snaps.after"
'

test_expect_success 'clone of an unmounted volume: same tree, independent, fsck clean on both' '
	cd "$TEST_TMP" && tree >"$REF/src.tree" && vol_umount "$MNT" &&
	"$SNAPFS" clone "$STORE" s1 "$TEST_TMP/clone1" >"$REF/out" &&
	assert_grep "cloned snapshot s1" "$REF/out" &&
	"$SNAPFS" fsck "$TEST_TMP/clone1" && "$SNAPFS" fsck "$STORE" &&
	assert_eq "" "$("$SNAPFS" snapshot holds "$STORE" s1)" &&
	vol_mount "$TEST_TMP/clone1" "$TEST_TMP/cmnt" &&
	same_tree "$REF/s1.tree" "$TEST_TMP/cmnt" &&
	echo clone-only >"$TEST_TMP/cmnt/mod" && rm "$TEST_TMP/cmnt/gone" &&
	vol_umount "$TEST_TMP/cmnt" && "$SNAPFS" fsck "$TEST_TMP/clone1" &&
	vol_mount "$STORE" "$MNT" && same_tree "$REF/src.tree"
'

test_expect_success 'clone of a mounted volume in use: the snapshot is held meanwhile, then released' '
	( for i in $(seq 200); do head -c 65536 /dev/urandom >"$MNT/busy.$((i % 5))"; done ) &
	writer=$! &&
	"$SNAPFS" clone "$MNT" s2 "$TEST_TMP/clone2" >"$REF/out" &&
	wait $writer &&
	assert_eq "" "$("$SNAPFS" snapshot holds "$MNT" s2)" &&
	"$SNAPFS" fsck "$TEST_TMP/clone2" &&
	vol_mount "$TEST_TMP/clone2" "$TEST_TMP/cmnt" &&
	same_tree "$REF/s2.tree" "$TEST_TMP/cmnt" &&
	assert_eq "$(stat -c %i "$MNT/mod")" "$(stat -c %i "$TEST_TMP/cmnt/mod")" &&
	vol_umount "$TEST_TMP/cmnt"
'

test_expect_success 'a SIGKILL during a large rollback leaves the tree before or after it, fsck clean' '
	cd "$TEST_TMP" && rm -f "$MNT"/busy.* &&
	# thousands of extent records (deduplicated, so cheap to store)
	yes a | head -c 256M >"$MNT/stream" &&
	"$SNAPFS" snapshot create "$MNT" big0 >/dev/null &&
	vol_remount && cd "$TEST_TMP" &&	# times as stored, not as cached
	tree >"$REF/big0.tree" &&
	yes b | head -c 256M >"$MNT/stream" && mkdir "$MNT/many" &&
	for i in $(seq 100); do echo $i >"$MNT/many/f$i"; done &&
	echo changed >"$MNT/mod" &&
	vol_remount && cd "$TEST_TMP" &&	# the kernel holds no newer times
	tree >"$REF/big1.tree" &&
	pid=$(daemon_pid) &&
	( "$SNAPFS" snapshot restore "$MNT" big0 >/dev/null 2>&1 & ) &&
	sleep 0.$((RANDOM % 4)) && kill -9 "$pid" &&
	{ fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT"; } &&
	wait_gone "$pid" &&
	"$SNAPFS" fsck "$STORE" &&
	vol_mount "$STORE" "$MNT" &&
	tree >"$REF/after.tree" &&
	if cmp -s "$REF/big0.tree" "$REF/after.tree"; then say "after the rollback"
	else assert_cmp "$REF/big1.tree" "$REF/after.tree" && say "before the rollback"; fi
'

test_done
