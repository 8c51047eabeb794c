#!/bin/bash
# Directories, names, hard links, symbolic links and special files behave
# as POSIX says.
. "$(dirname "$0")/lib.sh"
vol_create || test_bail "cannot create a volume"

# ------------------------------------------------------------ directories

test_expect_success 'mkdir makes an empty directory and rmdir removes it' '
	mkdir d &&
	assert_stat d %F directory &&
	assert_eq "" "$(ls -A d)" &&
	rmdir d &&
	assert_missing d
'

test_expect_success 'mkdir -p makes nested directories' '
	mkdir -p a/b/c/d/e &&
	assert_stat a/b/c/d/e %F directory &&
	echo deep >a/b/c/d/e/f &&
	assert_eq deep "$(cat a/b/c/d/e/f)"
'

test_expect_success 'rmdir of a non-empty directory fails with ENOTEMPTY' '
	assert_errno ENOTEMPTY rmdir a/b/c/d/e &&
	assert_eq deep "$(cat a/b/c/d/e/f)"
'

test_expect_success 'mkdir over an existing directory or file fails with EEXIST' '
	assert_errno EEXIST mkdir a &&
	assert_errno EEXIST mkdir a/b/c/d/e/f
'

test_expect_success 'missing entries give ENOENT' '
	assert_errno ENOENT rmdir nothere &&
	assert_errno ENOENT stat nothere &&
	assert_errno ENOENT unlink nothere &&
	assert_errno ENOENT mkdir nothere/sub &&
	assert_errno ENOENT open nothere/file wc
'

test_expect_success 'using a file as a directory gives ENOTDIR' '
	echo x >plain &&
	assert_errno ENOTDIR mkdir plain/sub &&
	assert_errno ENOTDIR stat plain/x &&
	assert_errno ENOTDIR open plain/x wc &&
	assert_errno ENOTDIR rmdir plain &&
	assert_errno ENOTDIR open plain rd
'

test_expect_success 'writing to or unlinking a directory gives EISDIR' '
	assert_errno EISDIR open a w &&
	assert_errno EISDIR open a rw &&
	assert_errno EISDIR unlink a
'

test_expect_success 'rmdir of . fails with EINVAL' '
	mkdir dot && cd dot &&
	assert_errno EINVAL rmdir . &&
	cd .. && rmdir dot
'

test_expect_success 'a directory of 2000 entries lists each name exactly once' '
	mkdir big &&
	seq -f "entry-with-a-rather-long-name-to-fill-buffers-%04g" 1 2000 >"$REF/names" &&
	(cd big && xargs touch <"$REF/names") &&
	find big -mindepth 1 -maxdepth 1 -printf "%f\n" | sort >"$REF/listed" &&
	sort "$REF/names" >"$REF/expected" &&
	assert_cmp "$REF/expected" "$REF/listed" &&
	assert_eq 2000 "$(ls -f big | grep -c "^entry-")" &&
	assert_eq "" "$(ls -f big | sort | uniq -d)"
'

test_expect_success 'every one of the 2000 entries can be looked up by name' '
	cd big &&
	xargs stat -c %n <"$REF/names" | sort | cmp - "$REF/expected"
'

test_expect_success 'after removing every 20th entry of the 2000, the rest is listed exactly' '
	cd big &&
	sed -n "1~20p" "$REF/names" | xargs rm &&
	ls | sort >"$REF/listed2" &&
	sed "1~20d" "$REF/names" | sort >"$REF/expected2" &&
	assert_eq 1900 "$(wc -l <"$REF/listed2")" &&
	assert_cmp "$REF/expected2" "$REF/listed2"
'

test_expect_success 'rm -r removes a tree of 150 entries entirely' '
	mkdir -p rmtree/sub1 rmtree/sub2 &&
	seq -f "a-longer-name-so-that-readdir-takes-several-calls-%03g" 1 100 |
		(cd rmtree/sub1 && xargs touch) &&
	seq -f "a-longer-name-so-that-readdir-takes-several-calls-%03g" 1 48 |
		(cd rmtree/sub2 && xargs mkdir) &&
	rm -r rmtree &&
	assert_missing rmtree
'

test_expect_success 'a new directory has nlink 2' '
	mkdir nl &&
	assert_stat nl %h 2
'

test_expect_success 'subdirectories add to the nlink of their parent, files do not' '
	mkdir nl/s1 nl/s2 nl/s3 &&
	touch nl/f1 nl/f2 &&
	assert_stat nl %h 5 &&
	rmdir nl/s2 &&
	assert_stat nl %h 4 &&
	rm nl/f1 &&
	assert_stat nl %h 4
'

test_expect_success 'the root directory nlink is 2 + its subdirectories' '
	n=$(find . -mindepth 1 -maxdepth 1 -type d | wc -l) &&
	assert_stat . %h $((2 + n))
'

test_expect_success '.. of a subdirectory is its parent' '
	assert_eq "$(stat -c %i nl)" "$(stat -c %i nl/s1/..)" &&
	assert_eq "$(stat -c %i .)" "$(stat -c %i nl/..)"
'

test_expect_success 'readdir shows the types of entries (find -type)' '
	mkdir types && cd types &&
	mkdir d && touch f && ln -s f l && mkfifo p &&
	assert_eq "d d
f f
l l
p p" "$(find . -mindepth 1 -printf "%f %y\n" | sort)"
'

# -------------------------------------------------------------------- names

n255=$(long_name 255)
n256=$(long_name 256)
test_expect_success 'a 255-byte name works for files, directories and symlinks' '
	echo ok >"$n255" &&
	assert_eq ok "$(cat "$n255")" &&
	mkdir names && mkdir "names/$n255" &&
	ln -s target "names/$n255/$n255" &&
	assert_eq target "$(readlink "names/$n255/$n255")" &&
	ls | grep -qx "$n255" &&
	rm "$n255"
'

test_expect_success 'a 255-byte name of multi-byte UTF-8 characters works' '
	u=$(printf "\xc3\xa9%.0s" $(seq 1 127))x &&
	assert_eq 255 "$(printf %s "$u" | wc -c)" &&
	echo utf >"$u" && assert_eq utf "$(cat "$u")" && rm "$u"
'

test_expect_success 'a 256-byte name gives ENAMETOOLONG everywhere' '
	echo x >short &&
	assert_errno ENAMETOOLONG open "$n256" wc &&
	assert_errno ENAMETOOLONG mkdir "$n256" &&
	assert_errno ENAMETOOLONG rename short "$n256" &&
	assert_errno ENAMETOOLONG symlink short "$n256" &&
	assert_errno ENAMETOOLONG link short "$n256" &&
	assert_errno ENAMETOOLONG stat "$n256" &&
	assert_errno ENAMETOOLONG lstat "names/$n256" &&
	assert_errno ENAMETOOLONG mknod "$n256" p 644 &&
	assert_eq "" "$(find . -name "n*" | awk -F/ "length(\$NF) > 255")"
'

# -------------------------------------------------------------- hard links

test_expect_success 'a hard link shares inode and contents, and counts in nlink' '
	echo linked >orig &&
	assert_stat orig %h 1 &&
	ln orig hl &&
	assert_stat orig %h 2 &&
	assert_stat hl %h 2 &&
	assert_eq "$(stat -c %i orig)" "$(stat -c %i hl)" &&
	echo more >>hl &&
	assert_eq "$(printf "linked\nmore")" "$(cat orig)"
'

test_expect_success 'hard links across directories; removing one link decrements nlink' '
	mkdir ldir &&
	ln orig ldir/third &&
	assert_stat orig %h 3 &&
	rm hl &&
	assert_stat orig %h 2 &&
	rm orig &&
	assert_stat ldir/third %h 1 &&
	assert_eq "$(printf "linked\nmore")" "$(cat ldir/third)"
'

test_expect_success 'link to a directory fails with EPERM, to a missing file with ENOENT' '
	assert_errno EPERM link ldir ldir2 &&
	assert_errno ENOENT link nothere x &&
	assert_errno EEXIST link ldir/third short
'

# ---------------------------------------------------------------- symlinks

test_expect_success 'a symlink reads back its target and resolves to it' '
	echo target-data >tgt &&
	ln -s tgt sl &&
	assert_stat sl %F "symbolic link" &&
	assert_eq tgt "$(readlink sl)" &&
	assert_eq target-data "$(cat sl)" &&
	assert_stat sl %s 3 &&
	assert_eq "OK tgt" "$(sysc readlink sl)"
'

test_expect_success 'a symlink to a directory can be followed' '
	ln -s a adir &&
	assert_eq deep "$(cat adir/b/c/d/e/f)"
'

test_expect_success 'a dangling symlink: lstat works, stat gives ENOENT' '
	ln -s does/not/exist dangling &&
	assert_errno OK lstat dangling &&
	assert_errno ENOENT stat dangling &&
	assert_eq does/not/exist "$(readlink dangling)"
'

test_expect_success 'readlink of a non-symlink gives EINVAL' '
	assert_errno EINVAL readlink tgt
'

test_expect_success 'a symlink with a 4000-byte target reads back exactly' '
	t=$(long_name 4000 / | sed "s|//|/a|g") &&
	assert_eq 4000 ${#t} &&
	ln -s "$t" longlink &&
	assert_eq "$t" "$(readlink longlink)" &&
	assert_stat longlink %s 4000
'

test_expect_success 'a symlink target of 4096 bytes or more gives ENAMETOOLONG' '
	assert_errno ENAMETOOLONG symlink "$(long_name 4096 x)" toolong
'

test_expect_success 'O_NOFOLLOW on a symlink gives ELOOP' '
	assert_errno ELOOP open sl rn
'

# ---------------------------------------------------------- special files

test_expect_success ROOT 'mknod makes a character device with the given rdev' '
	mknod chr c 250 7 &&
	assert_stat chr %F "character special file" &&
	assert_stat chr "%t %T" "fa 7" &&
	mknod chr2 c 1 3 &&
	assert_stat chr2 "%t %T" "1 3"
'

test_expect_success ROOT 'mknod makes a block device with the given rdev' '
	mknod blk b 8 17 &&
	assert_stat blk %F "block special file" &&
	assert_stat blk "%t %T" "8 11"
'

test_expect_success 'mkfifo makes a fifo, and data passes through it' '
	mkfifo fifo &&
	assert_stat fifo %F fifo &&
	assert_stat fifo %s 0 &&
	(echo through-the-fifo >fifo &) &&
	assert_eq through-the-fifo "$(timeout 10 cat fifo)"
'

test_expect_success 'mknod of an existing name gives EEXIST' '
	assert_errno EEXIST mknod fifo p 644
'

test_done
