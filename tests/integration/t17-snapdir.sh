#!/bin/bash
# .snapshot: every snapshot browsable read-only at MOUNT/.snapshot/NAME and
# DIR/.snapshot/NAME, with its original contents, modes, owners, times,
# xattrs and ACLs; writes fail with EROFS; no two different files show the
# same inode number, and hard links inside a snapshot share one; the
# snapdir setting (visible, hidden, disabled) changes at once, without a
# remount, and persists; creates, renames and deletes of snapshots are seen
# at once, even by a kernel that cached the old names.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 1G

# tree_of DIR: the canonical listing, without inode numbers (which differ
# between a file and its snapshot copy by design)
tree_of() { sysc tree "$1" | sed 's/ ino=[0-9]*//'; }
ino() { stat -c %i "$1"; }

test_expect_success 'a snapshot shows the tree as it was: contents, modes, owners, times, xattrs, ACLs' '
	mkdir -p proj/src proj/empty &&
	echo "int main;" >proj/src/main.c &&
	rand_file proj/blob 3000000 &&
	ln -s src/main.c proj/link &&
	mkfifo proj/fifo &&
	root_chown 65534:65534 proj/src/main.c && chmod 640 proj/src/main.c &&
	setfattr -n user.origin -v lab proj/blob &&
	setfacl -m u:65534:r proj/blob &&
	setfacl -d -m g:65534:rx proj/src &&
	touch -d "1999-12-31 23:59:59.123456789" proj/src/main.c &&
	tree_of proj >"$REF/before" &&
	sha256sum <proj/blob >"$REF/blob.sum" &&
	"$SNAPFS" snapshot create "$MNT" s1 &&
	echo changed >proj/src/main.c && rm proj/blob && chmod 700 proj/empty &&
	tree_of .snapshot/s1/proj >"$REF/snap" &&
	assert_cmp "$REF/before" "$REF/snap" &&
	assert_eq "int main;" "$(cat .snapshot/s1/proj/src/main.c)" &&
	assert_eq changed "$(cat proj/src/main.c)" &&
	getfacl -cn .snapshot/s1/proj/blob | grep -q "^user:65534:r--" &&
	getfacl -cdn .snapshot/s1/proj/src | grep -q "^group:65534:r-x"
'

test_expect_success 'DIR/.snapshot/NAME is DIR as that snapshot holds it, even after DIR was renamed' '
	mv proj renamed &&
	assert_eq "int main;" "$(cat renamed/.snapshot/s1/src/main.c)" &&
	assert_eq "int main;" "$(cat renamed/src/.snapshot/s1/main.c)" &&
	ls renamed/.snapshot >"$REF/names" &&
	assert_eq s1 "$(cat "$REF/names")" &&
	mv renamed proj
'

test_expect_success 'a directory made after a snapshot does not list it in its .snapshot' '
	mkdir newer &&
	assert_eq "" "$(ls newer/.snapshot)" &&
	assert_missing newer/.snapshot/s1
'

test_expect_success 'a large file reads back identically through .snapshot' '
	assert_eq "$(cat "$REF/blob.sum")" "$(sha256sum <.snapshot/s1/proj/blob)" &&
	test "$(stat -c %s .snapshot/s1/proj/blob)" = 3000000 &&
	dd if=.snapshot/s1/proj/blob bs=1M skip=1 count=1 status=none | wc -c | grep -qx 1048576
'

test_expect_success 'every change under .snapshot fails with EROFS, and nothing moves in or out (EXDEV)' '
	assert_errno EROFS open .snapshot/s1/proj/new wc &&
	assert_errno EROFS open .snapshot/s1/proj/src/main.c rt &&
	assert_errno EROFS open .snapshot/s1/proj/src/main.c w &&
	assert_errno EROFS open .snapshot/s1/proj/src/main.c rw &&
	assert_errno EROFS mkdir .snapshot/s1/proj/d &&
	# .snapshot is r-x: a user other than root is refused by the
	# permission check, which comes first, as on any directory
	if test_have_prereq ROOT; then want=EROFS; else want=EACCES; fi &&
	assert_errno $want mkdir .snapshot/new &&
	assert_errno EROFS unlink .snapshot/s1/proj/link &&
	assert_errno EROFS rmdir .snapshot/s1/proj/empty &&
	assert_errno $want rmdir .snapshot/s1 &&
	assert_errno EROFS rename .snapshot/s1/proj/link .snapshot/s1/proj/l2 &&
	assert_errno EXDEV rename .snapshot/s1/proj/link stolen &&
	assert_errno EXDEV link .snapshot/s1/proj/link stolen &&
	assert_errno EROFS link proj/src/main.c .snapshot/s1/proj/l3 &&
	assert_errno EROFS symlink x .snapshot/s1/proj/l4 &&
	assert_errno EROFS chmod .snapshot/s1/proj/src/main.c 777 &&
	assert_errno EROFS chown .snapshot/s1/proj/src/main.c "$(id -u)" "$(id -g)" &&
	assert_errno EROFS truncate .snapshot/s1/proj/src/main.c 0 &&
	assert_errno EROFS setxattr .snapshot/s1/proj/blob user.x 1 &&
	assert_errno EROFS removexattr .snapshot/s1/proj/blob user.origin &&
	assert_errno EROFS utimens .snapshot/s1/proj/blob now now &&
	assert_errno EROFS mknod .snapshot/s1/proj/p p 644 &&
	assert_errno EROFS rmdir .snapshot &&
	assert_errno EEXIST mkdir .snapshot &&
	assert_errno EEXIST mkdir proj/.snapshot &&
	assert_errno EEXIST rename proj/empty proj/.snapshot &&
	tree_of .snapshot/s1/proj >"$REF/snap2" &&
	assert_cmp "$REF/before" "$REF/snap2"
'

test_expect_success 'there is no .snapshot inside a snapshot' '
	assert_missing .snapshot/s1/.snapshot &&
	assert_missing .snapshot/s1/proj/.snapshot &&
	assert_missing proj/.snapshot/s1/.snapshot
'

test_expect_success 'a snapshot of private files' '
	chmod 600 proj/src/main.c && echo secret >top-secret && chmod 600 top-secret &&
	"$SNAPFS" snapshot create "$MNT" s2
'

test_expect_success NOBODY 'permissions hold in snapshots as in the live tree' '
	assert_fails as_nobody cat .snapshot/s2/top-secret &&
	as_nobody cat .snapshot/s1/proj/src/main.c >/dev/null
'

test_expect_success 'no two different files share an inode number; hard links in one snapshot share theirs' '
	echo shared >h1 && ln h1 h2 &&
	"$SNAPFS" snapshot create "$MNT" s3 &&
	echo more >>h1 &&
	test "$(ino h1)" = "$(ino h2)" &&
	test "$(ino .snapshot/s3/h1)" = "$(ino .snapshot/s3/h2)" &&
	test "$(ino .snapshot/s3/h1)" != "$(ino h1)" &&
	test "$(ino .snapshot/s3/proj)" != "$(ino .snapshot/s2/proj)" &&
	test "$(ino proj/.snapshot/s3)" = "$(ino .snapshot/s3/proj)" &&
	find "$MNT" -printf "%i\t%y\t%p\n" >"$REF/inodes" 2>"$REF/find.err" &&
	test ! -s "$REF/find.err" &&
	python3 - "$REF/inodes" "$MNT" <<-\EOF
	import collections, hashlib, sys
	views = collections.defaultdict(set)
	contents = collections.defaultdict(set)
	for line in open(sys.argv[1]):
	    ino, kind, path = line.rstrip("\n").split("\t", 2)
	    rel = path[len(sys.argv[2]):].split("/")
	    view = rel[rel.index(".snapshot") + 1] if ".snapshot" in rel and rel[-1] != ".snapshot" else "live"
	    views[ino].add(view)
	    if kind == "f":
	        contents[ino].add(hashlib.sha256(open(path, "rb").read()).hexdigest())
	bad = {i: v for i, v in views.items() if len(v) > 1}
	bad.update({i: c for i, c in contents.items() if len(c) > 1})
	if bad:
	    sys.exit("inode numbers shared between different files: %r" % bad)
	EOF
'

test_expect_success 'du counts a snapshot copy apart from the live file it came from' '
	rand_file big 2000000 &&
	"$SNAPFS" snapshot create "$MNT" s4 &&
	du -sb .snapshot/s4/big >"$REF/alone" &&
	du -sb big .snapshot/s4/big >"$REF/both" &&
	assert_eq "$(cut -f1 "$REF/alone")" "$(sed -n 2p "$REF/both" | cut -f1)"
'

test_expect_success 'snapdir=hidden: not listed at the root, still reachable by path' '
	ls -a >"$REF/ls" && grep -qx .snapshot "$REF/ls" &&
	ls -a proj >"$REF/ls-sub" && ! grep -qx .snapshot "$REF/ls-sub" &&
	"$SNAPFS" set "$MNT" snapdir=hidden >/dev/null &&
	ls -a >"$REF/ls" && ! grep -qx .snapshot "$REF/ls" &&
	assert_eq "int main;" "$(cat .snapshot/s1/proj/src/main.c)" &&
	assert_eq hidden "$("$SNAPFS" get "$MNT" snapdir)"
'

test_expect_success 'snapdir=disabled: .snapshot is gone at once, even where the kernel had it cached' '
	ls .snapshot proj/.snapshot >/dev/null &&
	"$SNAPFS" set "$MNT" snapdir=disabled >/dev/null &&
	assert_missing .snapshot &&
	assert_missing proj/.snapshot &&
	assert_errno ENOENT stat .snapshot/s1 &&
	assert_errno EPERM mkdir .snapshot &&
	"$SNAPFS" set "$MNT" snapdir=visible >/dev/null &&
	assert_eq "int main;" "$(cat proj/.snapshot/s1/src/main.c)"
'

test_expect_success 'the setting survives a remount and can be changed unmounted' '
	"$SNAPFS" set "$MNT" snapdir=hidden >/dev/null &&
	vol_remount &&
	assert_eq hidden "$("$SNAPFS" get "$MNT" snapdir)" &&
	ls -a >"$REF/ls" && ! grep -qx .snapshot "$REF/ls" &&
	cd "$TEST_TMP" && vol_umount "$MNT" &&
	"$SNAPFS" set "$STORE" snapdir=visible >/dev/null &&
	assert_eq visible "$("$SNAPFS" get "$STORE" snapdir)" &&
	vol_mount "$STORE" "$MNT" && cd "$MNT" &&
	ls -a >"$REF/ls" && grep -qx .snapshot "$REF/ls"
'

test_expect_success 'created, renamed and deleted snapshots show at once, though the kernel cached the old names' '
	ls .snapshot/s1 proj/.snapshot/s1 >/dev/null &&
	"$SNAPFS" snapshot rename "$MNT" s1 first &&
	assert_missing .snapshot/s1 &&
	assert_missing proj/.snapshot/s1 &&
	assert_eq "int main;" "$(cat proj/.snapshot/first/src/main.c)" &&
	"$SNAPFS" snapshot create "$MNT" s5 &&
	test -d proj/.snapshot/s5 &&
	"$SNAPFS" snapshot delete "$MNT" first &&
	assert_missing .snapshot/first &&
	assert_missing proj/.snapshot/first &&
	ls .snapshot >"$REF/names" &&
	assert_eq "s2 s3 s4 s5" "$(echo $(cat "$REF/names"))"
'

test_expect_success 'a snapshot deleted under an open directory answers errors, never other data' '
	"$SNAPFS" snapshot create "$MNT" doomed &&
	exec 7<.snapshot/doomed/proj/src/main.c &&
	(cd .snapshot/doomed/proj && "$SNAPFS" snapshot delete "$MNT" doomed >/dev/null &&
	 ! ls . >/dev/null 2>&1) &&
	! cat <&7 >/dev/null 2>&1;
	rc=$?; exec 7<&-; test $rc = 0
'

test_expect_success 'snapfs set refuses bad input with one message and changes nothing' '
	rc=0; "$SNAPFS" set "$MNT" snapdir=sideways 2>"$REF/err" || rc=$?
	assert_eq 1 $rc && assert_one_line "$REF/err" &&
	assert_grep "not allowed (one of: visible, hidden, disabled)" "$REF/err" &&
	rc=0; "$SNAPFS" set "$MNT" colour=blue 2>"$REF/err" || rc=$?
	assert_eq 1 $rc && assert_grep "unknown setting .colour." "$REF/err" &&
	rc=0; "$SNAPFS" set "$MNT" snapdir 2>"$REF/err" || rc=$?
	assert_eq 2 $rc && assert_grep "not NAME=VALUE" "$REF/err" &&
	rc=0; "$SNAPFS" set "$MNT" snapdir=hidden colour=blue 2>"$REF/err" || rc=$?
	assert_eq 1 $rc &&
	assert_eq visible "$("$SNAPFS" get "$MNT" snapdir)"
'

test_done
