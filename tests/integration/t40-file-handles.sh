#!/bin/bash
# File handles, as an NFS server keeps them (name_to_handle_at, then
# open_by_handle_at): handles of files, directories and symlinks of the
# live tree and of MOUNT/.snapshot/NAME/... name the same object after the
# kernel evicted its inodes (drop_caches) and after the daemon restarted
# (remount); a handle of an object that is gone, or of a node id reused
# by a later daemon run, is stale (ESTALE), never another object.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 1G

test_lazy_prereq HANDLES 'test_have_prereq ROOT,PYTHON && test -w /proc/sys/vm/drop_caches'
cp "$TEST_DIR/fhandle.py" "$TEST_TMP/bin/fhandle.py"
fhandle() { python3 "$TEST_TMP/bin/fhandle.py" "$@"; }

# handle_of PATH FILE: PATH's handle in FILE (lines "PATH HANDLE")
handle_of() { awk -v p="$1" '$1 == p { print $2 }' "$2"; }

# evict: the kernel forgets every unused dentry and inode of the mount
evict() { sync && echo 2 >/proc/sys/vm/drop_caches; }

# check_handles LIST: each "PATH HANDLE" of LIST opens, after an eviction
# of its own (so that no listing before it brought the inode back), to
# what $REF/expect holds for PATH
check_handles() {
	local path h got want bad=0
	while read -r path h; do
		evict
		got=$(fhandle open "$MNT" "$h") || :
		want=$(awk -F '\t' -v p="$path" '$1 == p { print $2 }' "$REF/expect")
		[ "$got" = "$want" ] && continue
		say "$path: handle opens to '$got', expected '$want'" >&2
		bad=1
	done <"$1"
	return $bad
}

PATHS="d d/e d/f d/l big .snapshot .snapshot/s1 .snapshot/s1/d
	.snapshot/s1/d/e .snapshot/s1/d/f .snapshot/s1/d/l .snapshot/s1/big
	.snapshot/s1/d/e/deep d/.snapshot/s1/f ."

test_expect_success HANDLES 'handles of the live tree and of .snapshot are taken' '
	mkdir -p d/e &&
	echo old >d/f && echo deep >d/e/deep &&
	ln -s f d/l &&
	rand_file big 3000000 &&
	"$SNAPFS" snapshot create "$MNT" s1 &&
	echo new >d/f && rand_file big 1000000 && ln -sf e d/l &&
	fhandle get $PATHS >"$REF/handles" &&
	for p in $PATHS; do
		printf "%s\t%s\n" "$p" "$(fhandle open "$MNT" "$(handle_of "$p" "$REF/handles")")"
	done >"$REF/expect" &&
	cat "$REF/expect" &&
	grep -qx "d/f	file $(sha256sum <d/f | cut -d" " -f1)" "$REF/expect" &&
	grep -qx ".snapshot/s1/d/f	file $(printf "old\n" | sha256sum | cut -d" " -f1)" "$REF/expect" &&
	grep -qx "d/l	link e" "$REF/expect" &&
	grep -qx ".snapshot/s1/d/l	link f" "$REF/expect" &&
	grep -qx "d	dir e,f,l" "$REF/expect" &&
	grep -qx ".snapshot	dir s1" "$REF/expect" &&
	grep -qx ".snapshot/s1/d/e	dir deep" "$REF/expect" &&
	# a file reached through DIR/.snapshot is the canonical node
	assert_eq "$(handle_of .snapshot/s1/d/f "$REF/handles")" \
		"$(handle_of d/.snapshot/s1/f "$REF/handles")"
'

test_expect_success HANDLES 'every handle names the same object after the kernel evicted the inodes' '
	check_handles "$REF/handles"
'

test_expect_success HANDLES,REMOUNT 'every handle names the same object after the daemon restarted' '
	vol_remount &&
	check_handles "$REF/handles"
'

test_expect_success HANDLES 'the handle of a deleted file is stale, in the live tree; its snapshot copy still opens' '
	echo doomed >gone && "$SNAPFS" snapshot create "$MNT" s2 &&
	fhandle get gone .snapshot/s2/gone >"$REF/gone" &&
	rm gone && evict &&
	r=$(fhandle open "$MNT" "$(handle_of gone "$REF/gone")") || : &&
	assert_eq ESTALE "$r" &&
	r=$(fhandle open "$MNT" "$(handle_of .snapshot/s2/gone "$REF/gone")") &&
	assert_eq "file $(printf "doomed\n" | sha256sum | cut -d" " -f1)" "$r"
'

test_expect_success HANDLES 'the handles of a deleted snapshot are stale' '
	"$SNAPFS" snapshot delete "$MNT" s2 && evict &&
	r=$(fhandle open "$MNT" "$(handle_of .snapshot/s2/gone "$REF/gone")") || : &&
	assert_eq ESTALE "$r"
'

test_expect_success HANDLES,REMOUNT 'a DIR/.snapshot/NAME handle of an earlier daemon run is stale, not the directory now behind its node id' '
	mkdir -p x y &&
	"$SNAPFS" snapshot create "$MNT" s3 &&
	fhandle get x/.snapshot/s3 >"$REF/view" &&
	r=$(fhandle open "$MNT" "$(cut -d" " -f2 "$REF/view")") &&
	assert_eq "dir " "$r" &&
	echo here >y/mark && "$SNAPFS" snapshot create "$MNT" s4 &&
	vol_remount &&
	# the new run gives its first table node id to y/.snapshot/s4
	assert_eq here "$(cat y/.snapshot/s4/mark)" &&
	r=$(fhandle open "$MNT" "$(cut -d" " -f2 "$REF/view")") || : &&
	assert_eq ESTALE "$r"
'

test_expect_success HANDLES 'with snapdir=hidden the handles of files in .snapshot survive eviction, those of its directories do not' '
	"$SNAPFS" set "$MNT" snapdir=hidden &&
	grep -e "^d/f " -e "^\.snapshot/s1/d/f " -e "^\.snapshot/s1/d/l " -e "^\.snapshot/s1/big " \
		"$REF/handles" >"$REF/files" &&
	check_handles "$REF/files" &&
	# a directory is found again through its name in its parent, and a
	# hidden .snapshot has none there: stale (the documented limit)
	evict &&
	r=$(fhandle open "$MNT" "$(handle_of .snapshot/s1/d "$REF/handles")") || : &&
	assert_eq ESTALE "$r" &&
	"$SNAPFS" set "$MNT" snapdir=visible &&
	grep "^\.snapshot/" "$REF/handles" >"$REF/snapshot" &&
	check_handles "$REF/snapshot"
'

test_expect_success HANDLES 'with snapdir=disabled the handles into .snapshot are stale, those of the live tree are not' '
	"$SNAPFS" set "$MNT" snapdir=disabled &&
	evict &&
	r=$(fhandle open "$MNT" "$(handle_of .snapshot/s1/d/f "$REF/handles")") || : &&
	assert_eq ESTALE "$r" &&
	grep -e "^d/f " -e "^d " "$REF/handles" >"$REF/live" &&
	check_handles "$REF/live" &&
	"$SNAPFS" set "$MNT" snapdir=visible
'

test_done
