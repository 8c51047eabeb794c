#!/bin/bash
# rename(2) and renameat2(2): entries move atomically, replace what POSIX
# says they replace, and refuse what they must refuse.
. "$(dirname "$0")/lib.sh"
vol_create || test_bail "cannot create a volume"

test_expect_success 'rename of a file to a new name moves it, keeping the inode' '
	echo one >a &&
	ino=$(stat -c %i a) &&
	mv a b &&
	assert_missing a &&
	assert_eq one "$(cat b)" &&
	assert_stat b %i "$ino"
'

test_expect_success 'rename of a file over another file replaces it' '
	echo old >target &&
	echo new >src &&
	ino=$(stat -c %i src) &&
	assert_errno OK rename src target &&
	assert_missing src &&
	assert_eq new "$(cat target)" &&
	assert_stat target %i "$ino"
'

test_expect_success 'the replaced file stays readable through an open descriptor' '
	echo first >victim &&
	echo second >replacer &&
	exec 3<victim &&
	mv replacer victim &&
	assert_eq first "$(cat <&3)" &&
	exec 3<&- &&
	assert_eq second "$(cat victim)"
'

test_expect_success 'rename over a hard link of another file decrements its nlink' '
	echo x >hl1 && ln hl1 hl2 &&
	echo y >over &&
	assert_stat hl1 %h 2 &&
	mv over hl2 &&
	assert_stat hl1 %h 1 &&
	assert_eq y "$(cat hl2)"
'

test_expect_success 'rename between two links of the same file does nothing' '
	echo same >s1 && ln s1 s2 &&
	assert_errno OK rename s1 s2 &&
	assert_stat s1 %h 2 &&
	assert_stat s2 %h 2
'

test_expect_success 'rename of a file across directories' '
	mkdir d1 d2 &&
	echo moving >d1/f &&
	ino=$(stat -c %i d1/f) &&
	mv d1/f d2/g &&
	assert_missing d1/f &&
	assert_eq moving "$(cat d2/g)" &&
	assert_stat d2/g %i "$ino" &&
	assert_eq "" "$(ls d1)"
'

test_expect_success 'rename of a directory across directories fixes nlink and ..' '
	mkdir -p p1/child/grandchild p2 &&
	echo inside >p1/child/grandchild/file &&
	assert_stat p1 %h 3 &&
	assert_stat p2 %h 2 &&
	mv p1/child p2/moved &&
	assert_stat p1 %h 2 &&
	assert_stat p2 %h 3 &&
	assert_eq "$(stat -c %i p2)" "$(stat -c %i p2/moved/..)" &&
	assert_eq inside "$(cat p2/moved/grandchild/file)"
'

test_expect_success 'rename of a directory over an empty directory replaces it' '
	mkdir -p full/sub empty &&
	echo c >full/sub/c &&
	n=$(stat -c %h .) &&
	assert_errno OK rename full empty &&
	assert_missing full &&
	assert_eq c "$(cat empty/sub/c)" &&
	assert_stat . %h $((n - 1))
'

test_expect_success 'rename of a directory over a non-empty directory fails with ENOTEMPTY' '
	mkdir -p src-d dst-d && echo keep >dst-d/keep && echo s >src-d/s &&
	assert_errno ENOTEMPTY rename src-d dst-d &&
	assert_eq keep "$(cat dst-d/keep)" &&
	assert_eq s "$(cat src-d/s)"
'

test_expect_success 'rename of a file over a directory fails with EISDIR' '
	echo f >afile && mkdir adir &&
	assert_errno EISDIR rename afile adir
'

test_expect_success 'rename of a directory over a file fails with ENOTDIR' '
	assert_errno ENOTDIR rename adir afile
'

test_expect_success 'rename of a directory into its own subdirectory fails with EINVAL' '
	mkdir -p loop/inner &&
	assert_errno EINVAL rename loop loop/inner/x &&
	assert_stat loop/inner %F directory
'

test_expect_success 'rename of a missing entry fails with ENOENT' '
	assert_errno ENOENT rename no-such thing &&
	assert_errno ENOENT rename afile no-such-dir/x
'

test_expect_success 'rename to a 256-byte name fails with ENAMETOOLONG' '
	assert_errno ENAMETOOLONG rename afile "$(long_name 256)" &&
	assert_eq f "$(cat afile)"
'

test_expect_success 'rename of a symlink moves the link, not its target' '
	echo pointee >pointee && ln -s pointee lnk &&
	mv lnk lnk2 &&
	assert_stat lnk2 %F "symbolic link" &&
	assert_eq pointee "$(readlink lnk2)" &&
	assert_eq pointee "$(cat pointee)"
'

test_expect_success 'rename keeps the mtime and contents of the moved file' '
	echo c >ct &&
	touch -d "2001-01-01 00:00:00.25" ct &&
	mv ct ct2 &&
	assert_eq "$(date -d 2001-01-01 +%s)250000000" "$(mtime_ns ct2)" &&
	assert_eq c "$(cat ct2)"
'

test_expect_success PYTHON 'RENAME_NOREPLACE onto an existing name fails with EEXIST' '
	echo A >nr-a && echo B >nr-b &&
	assert_errno EEXIST renameat2 nr-a nr-b noreplace &&
	assert_eq A "$(cat nr-a)" &&
	assert_eq B "$(cat nr-b)"
'

test_expect_success PYTHON 'RENAME_NOREPLACE onto a free name moves the file' '
	assert_errno OK renameat2 nr-a nr-c noreplace &&
	assert_missing nr-a &&
	assert_eq A "$(cat nr-c)"
'

test_expect_success PYTHON 'RENAME_EXCHANGE swaps two files' '
	rand_file "$REF/x1" 10000 && rand_file "$REF/x2" 777 &&
	cp "$REF/x1" x1 && cp "$REF/x2" x2 &&
	i1=$(stat -c %i x1) && i2=$(stat -c %i x2) &&
	assert_errno OK renameat2 x1 x2 exchange &&
	assert_cmp "$REF/x2" x1 &&
	assert_cmp "$REF/x1" x2 &&
	assert_stat x1 %i "$i2" &&
	assert_stat x2 %i "$i1"
'

test_expect_success PYTHON 'RENAME_EXCHANGE swaps a file and a directory across directories' '
	mkdir -p ex1 ex2/dir && echo file >ex1/file && echo indir >ex2/dir/x &&
	assert_errno OK renameat2 ex1/file ex2/dir exchange &&
	assert_stat ex1/file %F directory &&
	assert_eq indir "$(cat ex1/file/x)" &&
	assert_stat ex2/dir %F "regular file" &&
	assert_eq file "$(cat ex2/dir)" &&
	assert_stat ex1 %h 3 &&
	assert_stat ex2 %h 2 &&
	assert_eq "$(stat -c %i ex1)" "$(stat -c %i ex1/file/..)"
'

test_expect_success PYTHON 'RENAME_EXCHANGE with a missing name fails with ENOENT' '
	assert_errno ENOENT renameat2 x1 no-such exchange &&
	assert_cmp "$REF/x2" x1
'

test_expect_success 'many renames in a row keep every file and its contents' '
	mkdir churn && cd churn &&
	for i in $(seq 1 50); do echo "$i" >"f$i" || exit 1; done &&
	for i in $(seq 1 50); do mv "f$i" "g$((51 - i))" || exit 1; done &&
	for i in $(seq 1 50); do
		assert_eq "$((51 - i))" "$(cat "g$i")" || exit 1
	done &&
	assert_eq 50 "$(ls | wc -l)"
'

test_done
