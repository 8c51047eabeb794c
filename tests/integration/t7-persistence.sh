#!/bin/bash
# Persistence: after umount and mount everything is as it was - contents,
# modes, owners, times to the nanosecond, xattrs, ACLs, link counts and
# inode numbers.
#
# With TEST_BACKEND=dir there is nothing to remount: the tree is still
# built and the snapshot machinery is checked (a snapshot taken twice is
# identical), but the tests across a remount (prerequisite REMOUNT) skip.
. "$(dirname "$0")/lib.sh"
vol_create || test_bail "cannot create a volume"

# snapshot NAME: record the whole volume in $REF/NAME.{tree,find,xattr,acl}
snapshot() {
	local s=$REF/$1
	(
		cd "$MNT" &&
		sysc tree . >"$s.tree" &&
		find . -printf '%p %y %m %U %G %n %i %s %T@ %C@ %l\n' | sort >"$s.find" &&
		find . -print0 | sort -z |
			xargs -0 getfattr -h -d -m - -e hex --absolute-names >"$s.xattr" 2>&1 &&
		find . ! -type l -print0 | sort -z |
			xargs -0 getfacl -n --absolute-names >"$s.acl" 2>&1
	)
}

# snapshot_cmp KIND A B: the KIND (tree, find, xattr, acl) parts are equal
snapshot_cmp() {
	diff -u "$REF/$2.$1" "$REF/$3.$1" >&2 && return 0
	say "snapshots $2 and $3 differ ($1)" >&2
	return 1
}

# non-directories with their atimes, taken without reading anything
atimes() { find . ! -type d -printf '%p %A@\n' | sort; }

# ---------------------------------------------------- building the tree

test_expect_success 'setup: regular files of many shapes' '
	echo small >small &&
	: >empty &&
	rand_file "$REF/r1" 1048576 && cp "$REF/r1" r1 &&
	rand_file r5 5242880 &&
	printf PATCH | dd of=r5 bs=1 seek=3000001 conv=notrunc status=none &&
	truncate -s 20M sparse &&
	printf middle | dd of=sparse bs=1 seek=10485760 conv=notrunc status=none &&
	rand_file trunc 100000 && truncate -s 33333 trunc && truncate -s 66666 trunc &&
	yes "a compressible line of text" | head -c 3000000 >text &&
	echo doomed >gone && rm gone &&
	echo renamed >r-old && mv r-old r-new &&
	echo long >"$(long_name 255)"
'

test_expect_success SPARSE_5G 'setup: a sparse file of 5 GiB' '
	printf "at five gigs" | dd of=huge bs=1 seek=$((5 * 1024 * 1024 * 1024)) conv=notrunc status=none
'

test_expect_success 'setup: directories, a big one, and modes' '
	mkdir -p tree/a/b/c tree/x/y &&
	echo leaf >tree/a/b/c/leaf &&
	mkdir bigdir &&
	seq -f "name-%05g" 1 300 | (cd bigdir && xargs touch) &&
	rm bigdir/name-00250 &&
	mkdir private && chmod 700 private &&
	mkdir sticky && chmod 1777 sticky &&
	touch m000 && chmod 0 m000 &&
	touch suid && chmod 4755 suid &&
	touch sgid && chmod 2750 sgid &&
	touch all && chmod 7777 all
'

test_expect_success 'setup: hard links and symlinks' '
	echo shared >tree/hard1 &&
	ln tree/hard1 tree/a/hard2 && ln tree/hard1 tree/x/y/hard3 &&
	ln -s ../small tree/rel-link &&
	ln -s "$MNT/small" abs-link &&
	ln -s no/such/target dangling &&
	ln -s "$(long_name 4000 l)" long-link &&
	ln -s tree dir-link
'

test_expect_success 'setup: a fifo' '
	mkfifo fifo
'

test_expect_success ROOT 'setup: device nodes' '
	mknod chr c 250 7 &&
	mknod blk b 8 17
'

test_expect_success ROOT 'setup: owners' '
	touch owned && chown 1234:5678 owned &&
	chown -h 42:43 dangling &&
	mkdir nobodys && chown 65534:65534 nobodys &&
	chown 99:99 chr 2>/dev/null || :
'

test_expect_success XATTR_USER 'setup: user xattrs' '
	setfattr -n user.one -v 1 small &&
	setfattr -n user.empty small &&
	setfattr -n user.dir -v d tree &&
	for i in $(seq 1 20); do setfattr -n "user.k$i" -v "value $i" r1 || exit 1; done &&
	head -c 200 /dev/urandom >"$REF/bin" && sysc setxattr text user.bin "@$REF/bin"
'

test_expect_success ROOT,XATTR_TRUSTED 'setup: trusted xattrs' '
	setfattr -n trusted.t -v trusted-value small
'

test_expect_success ROOT,XATTR_SECURITY 'setup: security xattrs' '
	setfattr -n security.s -v security-value small
'

test_expect_success BIG_XATTR 'setup: a 60 KiB xattr' '
	rand_file "$REF/bigx" 61440 &&
	sysc setxattr r5 user.big "@$REF/bigx"
'

test_expect_success ACL,ROOT 'setup: access and default ACLs' '
	echo acl >acl-file && chmod 600 acl-file &&
	setfacl -m u:65534:r,g:4321:rw acl-file &&
	mkdir acl-dir &&
	setfacl -m u:65534:rwx -d -m u:65534:rx,g::rwx acl-dir &&
	touch acl-dir/inherited && mkdir acl-dir/subdir
'

test_expect_success 'setup: timestamps with nanoseconds' '
	touch -d "2021-03-04 05:06:07.123456789" small &&
	touch -a -d "2019-01-01 00:00:00.000000001" small &&
	touch -d "2001-09-09 01:46:40.999999999" tree/a/b/c/leaf &&
	touch -h -d "2011-11-11 11:11:11.111111111" abs-link &&
	touch -d "2012-12-12 12:12:12.121212121" tree/x &&
	touch -a -d "1999-12-31 23:59:59.5" fifo
'

test_expect_success TIME_PRE1970 'setup: a time before 1970' '
	touch -d "1960-01-01 00:00:00.25" old
'

test_expect_success TIME_POST2038 'setup: a time after 2038' '
	touch -d "2100-01-01 00:00:00.75" future
'

# ------------------------------------------------------------ the checks

test_expect_success 'a snapshot of the volume is the same when taken twice' '
	snapshot s1 &&
	snapshot s2 &&
	snapshot_cmp tree s1 s2 &&
	snapshot_cmp find s1 s2 &&
	snapshot_cmp xattr s1 s2 &&
	snapshot_cmp acl s1 s2 &&
	test -s "$REF/s1.tree" && test -s "$REF/s1.xattr" &&
	assert_grep "^small .*sha256=" "$REF/s1.tree"
'

test_expect_success 'the snapshot shows what was built' '
	assert_grep "^small -rw-r--r-- 644 .* size=6 .*sha256=$(echo small | sha256sum | cut -d" " -f1)" "$REF/s1.tree" &&
	assert_grep "^tree/hard1 .* nlink=3 " "$REF/s1.tree" &&
	assert_grep "^dangling .*target=no/such/target" "$REF/s1.tree" &&
	assert_grep "^sparse .* size=20971520 " "$REF/s1.tree" &&
	assert_eq 299 "$(grep -c "^bigdir/name-" "$REF/s1.tree")"
'

test_expect_success REMOUNT 'umount and mount again; every atime and the file written last are kept' '
	echo "written just before umount, without sync" >last-minute &&
	snapshot pre &&
	atimes >"$REF/atimes.pre" &&
	vol_remount &&
	atimes >"$REF/atimes.post" &&
	diff -u "$REF/atimes.pre" "$REF/atimes.post" &&
	assert_eq "written just before umount, without sync" "$(cat last-minute)"
'

test_expect_success REMOUNT 'after remount: types, modes, owners, nlink, inode numbers, sizes, times, contents are unchanged' '
	snapshot post &&
	snapshot_cmp tree pre post
'

test_expect_success REMOUNT 'after remount: the find -printf listing is unchanged' '
	snapshot_cmp find pre post
'

test_expect_success REMOUNT 'after remount: all xattrs are unchanged' '
	snapshot_cmp xattr pre post
'

test_expect_success REMOUNT 'after remount: all ACLs are unchanged' '
	snapshot_cmp acl pre post
'

test_expect_success REMOUNT 'after remount: timestamps read back to the nanosecond (atime of a fifo, never read)' '
	assert_stat small %y "2021-03-04 05:06:07.123456789 +0000" &&
	assert_stat tree/a/b/c/leaf %y "2001-09-09 01:46:40.999999999 +0000" &&
	assert_stat abs-link %y "2011-11-11 11:11:11.111111111 +0000" &&
	assert_stat tree/x %y "2012-12-12 12:12:12.121212121 +0000" &&
	assert_stat fifo %x "1999-12-31 23:59:59.500000000 +0000"
'

test_expect_success REMOUNT,TIME_PRE1970,TIME_POST2038 'after remount: times before 1970 and after 2038 are kept' '
	assert_stat old %y "1960-01-01 00:00:00.250000000 +0000" &&
	assert_stat future %y "2100-01-01 00:00:00.750000000 +0000"
'

test_expect_success REMOUNT 'after remount: contents compare equal to the originals' '
	assert_cmp "$REF/r1" r1 &&
	assert_zeros sparse 0 10485760 &&
	assert_eq middle "$(dd if=sparse bs=1 skip=10485760 count=6 status=none)" &&
	assert_eq 66666 "$(stat -c %s trunc)" &&
	assert_zeros trunc 33333 33333
'

test_expect_success REMOUNT,SPARSE_5G 'after remount: the 5 GiB sparse file reads back' '
	assert_stat huge %s $((5 * 1024 * 1024 * 1024 + 12)) &&
	assert_eq "at five gigs" "$(tail -c 12 huge)"
'

test_expect_success REMOUNT 'after remount: a deleted file has not come back' '
	assert_missing gone &&
	assert_missing r-old &&
	assert_missing bigdir/name-00250
'

test_expect_success REMOUNT 'after remount: new files get inode numbers no other file has' '
	find . -printf "%i\n" | sort -u >"$REF/old-inos" &&
	mkdir fresh &&
	for i in $(seq 1 100); do : >"fresh/f$i" || exit 1; done &&
	find fresh -printf "%i\n" | sort >"$REF/new-inos" &&
	assert_eq 101 "$(sort -u "$REF/new-inos" | wc -l)" "distinct new inode numbers" &&
	assert_eq "" "$(comm -12 "$REF/old-inos" "$REF/new-inos")" "inode numbers reused"
'

test_expect_success REMOUNT 'after remount: the volume is writable and keeps its hard links together' '
	echo appended >>tree/a/hard2 &&
	assert_eq "$(printf "shared\nappended")" "$(cat tree/x/y/hard3)" &&
	assert_stat tree/hard1 %h 3
'

test_expect_success REMOUNT 'changes made after a remount persist across the next one' '
	rm -r tree/x small r1 &&
	mv r5 r5-renamed &&
	printf OVER | dd of=r5-renamed bs=1 seek=10 conv=notrunc status=none &&
	truncate -s 1000 text &&
	chmod 640 trunc &&
	{ ! test -e acl-file || setfacl -b acl-file; } &&
	{ ! test -e acl-file || setfattr -n user.new -v new acl-file; } &&
	rm bigdir/name-0000[1-9] && touch bigdir/new-one &&
	snapshot pre2 &&
	vol_remount &&
	snapshot post2 &&
	snapshot_cmp tree pre2 post2 &&
	snapshot_cmp find pre2 post2 &&
	snapshot_cmp xattr pre2 post2 &&
	snapshot_cmp acl pre2 post2 &&
	assert_missing small && assert_missing tree/x
'

test_expect_success REMOUNT 'two more remounts in a row change nothing' '
	vol_remount && vol_remount &&
	snapshot post3 &&
	snapshot_cmp tree pre2 post3 &&
	snapshot_cmp xattr pre2 post3 &&
	snapshot_cmp acl pre2 post3
'

test_expect_success REMOUNT 'the attributes of the root directory survive a remount' '
	chmod 750 . && touch -d "2005-05-05 05:05:05.5" . &&
	stat -c "%a %h %U %G %y %i" . >"$REF/root.pre" &&
	vol_remount &&
	stat -c "%a %h %U %G %y %i" "$MNT" >"$REF/root.post" &&
	assert_cmp "$REF/root.pre" "$REF/root.post" &&
	chmod 755 "$MNT"
'

test_done
