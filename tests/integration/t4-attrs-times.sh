#!/bin/bash
# Attributes: modes, owners and timestamps are stored as set, with full
# nanosecond precision, and the kernel's permission rules hold.
. "$(dirname "$0")/lib.sh"
vol_create || test_bail "cannot create a volume"

# ------------------------------------------------------------------ modes

test_expect_success 'a new file gets mode 0666 less the umask, a directory 0777' '
	umask 022 && touch f && mkdir d &&
	assert_stat f %a 644 &&
	assert_stat d %a 755 &&
	umask 077 && touch f2 && mkdir d2 &&
	assert_stat f2 %a 600 &&
	assert_stat d2 %a 700
'

test_expect_success 'chmod sets every permission bit, special bits included' '
	for m in 0 1 7 40 400 640 755 777 1777 2755 4755 6777 7777; do
		chmod "$m" f && assert_stat f %a "$m" || exit 1
	done
'

test_expect_success 'chmod on a directory; the sticky bit shows as t' '
	chmod 1777 d &&
	assert_stat d %A drwxrwxrwt
'

test_expect_success 'chmod changes ctime but not mtime' '
	touch -d "2010-05-05 05:05:05.5" f &&
	m=$(mtime_ns f) && c=$(ctime_ns f) &&
	sleep 0.02 &&
	chmod 600 f &&
	assert_eq "$m" "$(mtime_ns f)" &&
	assert_ne "$c" "$(ctime_ns f)"
'

test_expect_success ROOT 'chown as root gives a file to another uid and gid' '
	chown 1234:5678 f &&
	assert_stat f "%u %g" "1234 5678" &&
	chown 65534 f &&
	assert_stat f "%u %g" "65534 5678" &&
	chgrp 42 f &&
	assert_stat f "%u %g" "65534 42" &&
	chown 0:0 f
'

test_expect_success ROOT 'chown -h changes a symlink, not its target' '
	ln -s f lnk &&
	chown -h 777:888 lnk &&
	assert_stat lnk "%u %g" "777 888" &&
	assert_stat f "%u %g" "0 0"
'

test_expect_success ROOT 'chown clears the setuid and setgid bits of a file' '
	touch suid && chmod 6755 suid &&
	chown 1000:1000 suid &&
	assert_stat suid %a 755
'

test_expect_success ROOT,NOBODY 'a non-owner may not chmod or chown: EPERM' '
	touch rootfile && chmod 666 rootfile &&
	assert_errno EPERM --nobody chmod rootfile 777 &&
	assert_errno EPERM --nobody chown rootfile 65534 65534 &&
	assert_stat rootfile "%a %u" "666 0"
'

test_expect_success ROOT,NOBODY 'a write by a non-owner clears setuid and setgid' '
	touch sw && chmod 6777 sw &&
	as_nobody sh -c "echo data >>sw" &&
	assert_eq data "$(cat sw)" &&
	assert_stat sw %a 777
'

test_expect_success ROOT,NOBODY 'a truncate by a non-owner clears setuid' '
	echo 12345 >st && chmod 4777 st &&
	assert_errno OK --nobody truncate st 2 &&
	assert_stat st "%a %s" "777 2"
'

test_expect_success ROOT,NOBODY 'an O_TRUNC open by a non-owner clears setuid, and setgid with group execute' '
	echo 12345 >so && chmod 6777 so &&
	as_nobody sh -c ": >so" &&
	assert_stat so "%a %s" "777 0" &&
	echo 12345 >sg2 && chmod 2767 sg2 &&
	as_nobody sh -c ": >sg2" &&
	assert_stat sg2 "%a %s" "2767 0"
'

test_expect_success ROOT 'a write by the owner (root) keeps setuid and setgid' '
	touch sk && chmod 6777 sk &&
	echo data >>sk &&
	assert_stat sk %a 6777
'

test_expect_success ROOT,NOBODY 'permission bits are enforced: EACCES for others' '
	echo secret >private && chmod 600 private &&
	assert_errno EACCES --nobody open private r &&
	chmod 604 private &&
	assert_errno OK --nobody open private r &&
	assert_errno EACCES --nobody open private w &&
	mkdir closed && chmod 700 closed && echo x >closed/x && chmod 644 closed/x &&
	assert_errno EACCES --nobody stat closed/x &&
	assert_errno EACCES --nobody open closed/new wc
'

test_expect_success ROOT,NOBODY 'the sticky bit stops others from removing a file' '
	mkdir sticky && chmod 1777 sticky && touch sticky/mine && chmod 666 sticky/mine &&
	assert_errno EPERM --nobody unlink sticky/mine &&
	as_nobody touch sticky/theirs &&
	assert_errno OK --nobody unlink sticky/theirs
'

test_expect_success ROOT,NOBODY 'new files get the uid and gid of their creator' '
	mkdir open && chmod 777 open &&
	as_nobody touch open/byn && as_nobody mkdir open/dbyn &&
	assert_stat open/byn "%u %g" "65534 65534" &&
	assert_stat open/dbyn "%u %g" "65534 65534"
'

test_expect_success ROOT,NOBODY 'a setgid directory passes its group on, and setgid to subdirectories' '
	mkdir sg && chown 0:4321 sg && chmod 2777 sg &&
	as_nobody touch sg/file && as_nobody mkdir sg/sub &&
	assert_stat sg/file "%u %g" "65534 4321" &&
	assert_stat sg/sub "%u %g %a" "65534 4321 2755"
'

# ------------------------------------------------------------------ times

test_expect_success 'touch -d with fractional seconds keeps the nanoseconds' '
	touch -d "2021-03-04 05:06:07.123456789" t &&
	assert_stat t %y "2021-03-04 05:06:07.123456789 +0000" &&
	assert_stat t %x "2021-03-04 05:06:07.123456789 +0000" &&
	assert_eq 1614834367123456789 "$(mtime_ns t)"
'

test_expect_success 'atime and mtime can be set separately with nanoseconds' '
	touch -a -d "2000-01-01 00:00:00.000000001" t &&
	touch -m -d "2030-06-15 12:00:00.999999999" t &&
	assert_stat t %x "2000-01-01 00:00:00.000000001 +0000" &&
	assert_stat t %y "2030-06-15 12:00:00.999999999 +0000"
'

test_expect_success PYTHON 'utimensat with UTIME_OMIT leaves that time alone' '
	sysc utimens t 1000000000123456789 2000000000987654321 &&
	assert_eq 1000000000123456789 "$(atime_ns t)" &&
	assert_eq 2000000000987654321 "$(mtime_ns t)" &&
	sysc utimens t omit 1500000000000000001 &&
	assert_eq 1000000000123456789 "$(atime_ns t)" &&
	assert_eq 1500000000000000001 "$(mtime_ns t)" &&
	sysc utimens t 1200000000000000002 omit &&
	assert_eq 1200000000000000002 "$(atime_ns t)" &&
	assert_eq 1500000000000000001 "$(mtime_ns t)"
'

test_expect_success PYTHON 'utimensat with UTIME_NOW sets the current time' '
	sysc utimens t 1000000000000000000 1000000000000000000 &&
	start=$(date +%s%N) &&
	sysc utimens t now omit &&
	end=$(date +%s%N) &&
	a=$(atime_ns t) &&
	assert_le $((start - 1000000000)) "$a" "atime not before the call" &&
	assert_le "$a" $((end + 1000000000)) "atime not after the call" &&
	assert_eq 1000000000000000000 "$(mtime_ns t)" &&
	sysc utimens t omit now &&
	m=$(mtime_ns t) &&
	assert_le $((start - 1000000000)) "$m" &&
	assert_eq "$a" "$(atime_ns t)"
'

test_expect_success PYTHON 'os.utime with ns= round-trips' '
	"$TEST_PYTHON" -c "import os; os.utime(\"t\", ns=(1234567890111222333, 987654321444555666))" &&
	assert_eq 1234567890111222333 "$(atime_ns t)" &&
	assert_eq 987654321444555666 "$(mtime_ns t)"
'

test_expect_success TIME_PRE1970 'times before 1970 are kept' '
	touch -d "1960-01-01 00:00:00.5" old &&
	assert_stat old %Y -315619200 &&
	assert_stat old %y "1960-01-01 00:00:00.500000000 +0000" &&
	touch -d "1901-12-13 20:45:52" older &&
	assert_stat older %Y -2147483648
'

test_expect_success TIME_POST2038 'times after 2038 are kept' '
	touch -d "2038-01-19 03:14:08" y2038 &&
	assert_stat y2038 %Y 2147483648 &&
	touch -d "2100-01-01 00:00:00.123456789" future &&
	assert_stat future %Y 4102444800 &&
	assert_stat future %y "2100-01-01 00:00:00.123456789 +0000"
'

test_expect_success 'writing a file updates mtime and ctime' '
	echo a >w && touch -d "2001-01-01" w &&
	c=$(ctime_ns w) && sleep 0.02 &&
	echo b >>w &&
	now=$(date +%s) &&
	assert_le $((now - 5)) "$(stat -c %Y w)" &&
	assert_ne "$c" "$(ctime_ns w)"
'

test_expect_success 'truncate changes size, mtime and ctime' '
	echo 0123456789 >tr && touch -d "2001-01-01" tr &&
	c=$(ctime_ns tr) && sleep 0.02 &&
	truncate -s 4 tr &&
	assert_eq 0123 "$(cat tr)" &&
	assert_le $(($(date +%s) - 5)) "$(stat -c %Y tr)" &&
	assert_ne "$c" "$(ctime_ns tr)" &&
	touch -d "2001-01-01" tr &&
	truncate -s 100 tr &&
	assert_stat tr %s 100 &&
	assert_le $(($(date +%s) - 5)) "$(stat -c %Y tr)"
'

test_expect_success 'creating and removing entries updates the directory mtime' '
	mkdir dm && touch -d "2001-01-01" dm &&
	touch dm/x &&
	assert_le $(($(date +%s) - 5)) "$(stat -c %Y dm)" &&
	touch -d "2001-01-01" dm &&
	rm dm/x &&
	assert_le $(($(date +%s) - 5)) "$(stat -c %Y dm)"
'

test_expect_success 'a new file has atime = mtime = ctime close to now' '
	before=$(date +%s) &&
	touch fresh &&
	set -- $(sysc times fresh) &&
	assert_eq "$2" "$3" && assert_eq "$3" "$4" &&
	assert_le $(((before - 2) * 1000000000)) "$3"
'

test_done
