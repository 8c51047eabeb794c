#!/bin/bash
# Dump: `snapfs dump` writes a snapshot of a volume or of a directory in it
# in the format that Debian's restore reads.  Linux restore lists and
# restores our full and incremental dumps into another snapfs volume, and
# the restored tree equals the source in contents, modes, owners, times
# (to the microsecond the format keeps), xattrs, ACLs, hard links, device
# numbers and holes.  Increment chains follow the most recent lower level
# (0 2 3 1 4), dump dates are kept in the volume, the dump's own snapshot
# exists only while it runs, records are exactly -b KiB, an interrupted
# dump leaves a restartable context that holds its snapshot, and bad
# arguments change nothing.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
command -v restore >/dev/null || { say "# skipping: needs Debian's dump package"; test_done; }
vol_create --size 2G

TREE=$(cd "$(dirname "$0")" && pwd)/treelist.py
OUT=$TEST_TMP/out
VOL2=$TEST_TMP/vol2.store
MNT2=$TEST_TMP/vol2
mkdir -p "$OUT"

# A Samba "vfs_xattr" DOS attribute blob (NDR, version 4: attributes 0x21,
# creation time), as smbd writes it into user.DOSATTRIB.
DOSATTRIB=0sAAAEAAQAAAAhAAAAIQAAAAAAAAAAAAAAAAAAAAAAAAAAgPkXi9rYAQ==

# The source tree: every kind of object and attribute the format carries.
make_tree() {
	mkdir -p d1/d2 "with space" "ünïcødé"
	echo hello >d1/f
	head -c 3145728 /dev/urandom >big
	truncate -s 2M sparse && echo tail >>sparse
	dd if=/dev/urandom of=sparse bs=1k seek=300 count=5 conv=notrunc 2>/dev/null
	truncate -s 1G allhole
	ln d1/f hardlink
	ln -s d1/f symlink
	ln -s /nowhere/at/all dangling
	mkfifo fifo
	mknod chardev c 1 3
	mknod blockdev b 7 200
	echo s >"with space/file name" && echo u >"ünïcødé/é"
	touch setuid && chmod 4755 setuid
	chmod 1777 d1/d2
	chown 1234:5678 big && chown -h 42:43 symlink
	setfattr -n user.foo -v bar d1/f
	setfattr -n user.DOSATTRIB -v "$DOSATTRIB" big
	setfattr -n user.huge -v "$(head -c 5000 /dev/zero | tr '\0' y)" sparse
	setfacl -m u:1000:rw,g:100:r d1/f
	setfacl -d -m u:1000:rwx,g:100:rx d1
	setfacl -m "$(seq 2000 2400 | sed 's/^/u:/; s/$/:r/' | paste -sd,)" big
	touch -h -d '2020-01-02 03:04:05.123456789' d1/f symlink
	touch -d '1999-12-31 23:59:59.5' d1/d2 "ünïcødé"
}

# listing DIR: the tree as treelist.py sees it, at the format's precision.
listing() {
	python3 "$TREE" "$1" --usec --holes --skip restoresymtable "${@:2}"
}

test_expect_success 'setup: a volume holding every kind of object' '
	make_tree &&
	vol_mount "$(mkdir -p "$VOL2" && "$SNAPFS" mkfs "$VOL2" --size 2G >/dev/null && echo "$VOL2")" "$MNT2"
'

test_expect_success 'a level 0 dump of the volume is listed by Linux restore -t, every name' '
	"$SNAPFS" dump -0 -f "$OUT/full0" "$MNT" 2>"$OUT/full0.err" &&
	assert_grep "level 0 dump of .* done$" "$OUT/full0.err" &&
	assert_grep "^snapfs dump: dumped [0-9]* files, .* MiB in .* s (.* MB/s)$" "$OUT/full0.err" &&
	restore -tf "$OUT/full0" >"$OUT/t" 2>&1 &&
	assert_grep "^Level 0 dump of / on " "$OUT/t" &&
	sed -n "s/^ *[0-9][0-9]*	//p" "$OUT/t" | sort >"$OUT/names" &&
	(cd "$MNT" && find . -path ./.snapshot -prune -o -print | sort) >"$OUT/want" &&
	assert_cmp "$OUT/want" "$OUT/names"
'

test_expect_success 'Linux restore -r of it into another volume gives the same tree' '
	mkdir "$MNT2/r0" && cd "$MNT2/r0" &&
	restore -rf "$OUT/full0" >"$OUT/r0.log" 2>&1 &&
	listing "$MNT" --skip-xattr user.huge >"$OUT/a" &&
	listing "$MNT2/r0" >"$OUT/b" &&
	assert_cmp "$OUT/a" "$OUT/b"
'

test_expect_success 'an attribute larger than Linux restore takes is skipped by it, named, and nothing else lost' '
	assert_grep "unexpected inode extension" "$OUT/r0.log" &&
	assert_fails getfattr -n user.huge "$MNT2/r0/sparse" &&
	cmp "$MNT/sparse" "$MNT2/r0/sparse"
'

test_expect_success 'the dump made its snapshot_for_backup snapshot, held it, and deleted it at the end' '
	"$SNAPFS" snapshot list "$MNT" >"$OUT/snaps" &&
	! grep -q snapshot_for_backup "$OUT/snaps" &&
	"$SNAPFS" dump contexts "$MNT" >"$OUT/ctx" &&
	assert_eq 1 "$(wc -l <"$OUT/ctx")" "only the header line"
'

test_expect_success 'dump --snapshot dumps that snapshot, creates none and leaves it unheld' '
	"$SNAPFS" snapshot create "$MNT" mine &&
	echo later >"$MNT/later" &&
	"$SNAPFS" dump -0 --snapshot mine -f "$OUT/mine" "$MNT" 2>/dev/null &&
	restore -tf "$OUT/mine" >"$OUT/t" &&
	! grep -q later "$OUT/t" && grep -q "	./d1/f$" "$OUT/t" &&
	"$SNAPFS" snapshot list "$MNT" >"$OUT/snaps" &&
	! grep -q snapshot_for_backup "$OUT/snaps" &&
	assert_eq "" "$("$SNAPFS" snapshot holds "$MNT" mine)" &&
	"$SNAPFS" snapshot delete "$MNT" mine && rm "$MNT/later"
'

test_expect_success 'a qtree (kept for the tests below) goes to tape with its description, which Linux restore sets on ext4' '
	"$SNAPFS" qtree create "$MNT" eng --security-style ntfs --quota 64M &&
	echo spec >"$MNT/eng/spec" &&
	"$SNAPFS" dump -0 -f "$OUT/qt" "$MNT/eng" 2>/dev/null &&
	mkdir "$OUT/qt.r" && cd "$OUT/qt.r" &&
	restore -rf "$OUT/qt" >/dev/null 2>&1 &&
	assert_eq spec "$(cat spec)"
'

# only root sets (and reads) trusted.* attributes
test_expect_success ROOT 'Linux restore set the qtree description on ext4' '
	assert_eq "style=ntfs quota=67108864" \
		"$(getfattr --only-values -n trusted.snapfs.qtree "$OUT/qt.r")"
'

test_expect_success 'snapfs restore reads our full dump back identically, attributes over 4 KiB included' '
	"$SNAPFS" dump -0 -f "$OUT/full1" "$MNT" 2>/dev/null &&
	mkdir "$MNT2/s0" &&
	"$SNAPFS" restore -r -f "$OUT/full1" --into "$MNT2/s0" 2>"$OUT/s0.err" &&
	assert_grep "^restored [0-9]* files" "$OUT/s0.err" &&
	listing "$MNT" --skip-xattr trusted.snapfs.qtree >"$OUT/a" &&
	listing "$MNT2/s0" --skip .snapfs-restoresymtable >"$OUT/b" &&
	assert_cmp "$OUT/a" "$OUT/b" &&
	grep -q "user.huge=" "$OUT/b"
'

test_expect_success 'an inode extension other than attributes (Mac OS Finder data) is skipped by snapfs restore' '
	python3 - "$OUT/full1" "$OUT/finder" <<-\PY &&
	import struct, sys
	d = bytearray(open(sys.argv[1], "rb").read())
	n = 0
	for off in range(0, len(d), 1024):
	    if struct.unpack_from("<i", d, off + 24)[0] != 60012:
	        continue
	    if struct.unpack_from("<i", d, off + 900)[0] == 0x534e:
	        struct.pack_into("<i", d, off + 900, 1)
	        struct.pack_into("<i", d, off + 28, 0)
	        words = struct.unpack_from("<256I", d, off)
	        struct.pack_into("<I", d, off + 28, (84446 - sum(words)) & 0xffffffff)
	        n += 1
	assert n == 1, n
	open(sys.argv[2], "wb").write(d)
	PY
	mkdir "$MNT2/finder" &&
	"$SNAPFS" restore -r -f "$OUT/finder" --into "$MNT2/finder" 2>/dev/null &&
	listing "$MNT2/finder" --skip .snapfs-restoresymtable >"$OUT/c" &&
	sed "s/ user.huge=[0-9a-f]*//" "$OUT/b" >"$OUT/b2" &&
	assert_cmp "$OUT/b2" "$OUT/c"
'

test_expect_success 'a qtree restored at a volume root is a qtree again, with its style and quota' '
	VOL3=$TEST_TMP/vol3.store &&
	"$SNAPFS" mkfs "$VOL3" --size 1G >/dev/null &&
	"$SNAPFS" restore -r -f "$OUT/full1" --into "$VOL3" >"$OUT/q.out" 2>&1 &&
	assert_grep "^qtree eng: a qtree again (style=ntfs quota=67108864)" "$OUT/q.out" &&
	"$SNAPFS" qtree list "$VOL3" --json >"$OUT/q.json" &&
	python3 -c "import json,sys; q=json.load(open(sys.argv[1])); e=[x for x in q if x[\"name\"]==\"eng\"][0]; assert e[\"security_style\"]==\"ntfs\" and e[\"quota_bytes\"]==67108864 and e[\"used_bytes\"]>0, q" "$OUT/q.json"
'

test_expect_success 'restored deeper, a qtree is a plain directory' '
	! "$SNAPFS" qtree list "$MNT2" | grep -q "^eng" &&
	test -f "$MNT2/s0/eng/spec" &&
	assert_fails getfattr -n trusted.snapfs.qtree "$MNT2/s0/eng"
'

# What a dump carries: the ./names restore -t lists, without ".".
names_in() { restore -tf "$1" | sed -n "s/^ *[0-9][0-9]*	\.\///p" | sort | paste -sd " "; }

test_expect_success 'the chain 0 2 3 1 4: each level holds what changed since the most recent lower level' '
	mkdir "$MNT/chain" && echo A >"$MNT/chain/A" &&
	"$SNAPFS" dump -0 -f "$OUT/c0" "$MNT/chain" 2>/dev/null &&
	next_second && echo B >"$MNT/chain/B" &&
	"$SNAPFS" dump -2 -f "$OUT/c2" "$MNT/chain" 2>/dev/null &&
	next_second && echo C >"$MNT/chain/C" &&
	"$SNAPFS" dump -3 -f "$OUT/c3" "$MNT/chain" 2>/dev/null &&
	next_second && echo D >"$MNT/chain/D" &&
	"$SNAPFS" dump -1 -f "$OUT/c1" "$MNT/chain" 2>/dev/null &&
	next_second && echo E >"$MNT/chain/E" &&
	"$SNAPFS" dump -4 -f "$OUT/c4" "$MNT/chain" 2>/dev/null &&
	assert_eq "A" "$(names_in "$OUT/c0")" "level 0" &&
	assert_eq "B" "$(names_in "$OUT/c2")" "level 2, based on 0" &&
	assert_eq "C" "$(names_in "$OUT/c3")" "level 3, based on 2" &&
	assert_eq "B C D" "$(names_in "$OUT/c1")" "level 1, based on 0" &&
	assert_eq "E" "$(names_in "$OUT/c4")" "level 4, based on 1"
'

test_expect_success 'dump dates lists the last dump of each path and level' '
	"$SNAPFS" dump dates "$MNT" >"$OUT/dates" &&
	for l in 0 1 2 3 4; do
		grep -q "^/chain  *$l  " "$OUT/dates" || { cat "$OUT/dates"; exit 1; }
	done &&
	grep -q "^/  *0  " "$OUT/dates" &&
	"$SNAPFS" dump dates "$MNT" --json >"$OUT/dates.json" &&
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert {(x[\"path\"], x[\"level\"]) for x in d} >= {(\"/chain\", 4), (\"/\", 0)}" "$OUT/dates.json"
'

test_expect_success 'Linux restore -r applies the chain 0 1 4 with a deletion and a rename' '
	echo F >"$MNT/chain/F" && mkdir "$MNT/chain/sub" && echo G >"$MNT/chain/sub/G" &&
	"$SNAPFS" dump -1 -f "$OUT/c1b" "$MNT/chain" 2>/dev/null &&
	next_second && rm "$MNT/chain/A" && mv "$MNT/chain/sub" "$MNT/chain/moved" &&
	mv "$MNT/chain/B" "$MNT/chain/moved/B2" && echo more >>"$MNT/chain/C" &&
	"$SNAPFS" dump -4 -f "$OUT/c4b" "$MNT/chain" 2>/dev/null &&
	mkdir "$MNT2/chain" && cd "$MNT2/chain" &&
	restore -rf "$OUT/c0" >/dev/null 2>&1 &&
	restore -rf "$OUT/c1b" >/dev/null 2>&1 &&
	restore -rf "$OUT/c4b" >/dev/null 2>&1 &&
	listing "$MNT/chain" >"$OUT/a" && listing "$MNT2/chain" >"$OUT/b" &&
	assert_cmp "$OUT/a" "$OUT/b"
'

test_expect_success 'snapfs restore applies the same chain 0 1 4 as Linux restore does' '
	mkdir "$MNT2/schain" &&
	for l in c0 c1b c4b; do
		"$SNAPFS" restore -r -f "$OUT/$l" --into "$MNT2/schain" 2>/dev/null || exit 1
	done &&
	listing "$MNT2/schain" --skip .snapfs-restoresymtable >"$OUT/c" &&
	assert_cmp "$OUT/a" "$OUT/c"
'

test_expect_success 'a dump of a subtree has the subtree at its root' '
	"$SNAPFS" dump -0 -f "$OUT/sub" "$MNT/d1" 2>/dev/null &&
	assert_eq "d2 f" "$(names_in "$OUT/sub")" &&
	assert_grep "^Level 0 dump of /d1 on " <(restore -tf "$OUT/sub")
'

test_expect_success 'dump --exclude leaves out the entries whose names match (a directory whole; a leading dot only matched explicitly); Linux restore gives the rest' '
	mkdir -p d1/cache/deep && echo c >d1/cache/deep/c && echo t >d1/x.tmp && echo h >d1/.h.tmp &&
	"$SNAPFS" dump -0 --no-dates --exclude "*.tmp" --exclude cache -f "$OUT/excl" "$MNT/d1" 2>"$OUT/excl.err" &&
	restore -tf "$OUT/excl" >"$OUT/texcl" 2>&1 &&
	assert_grep "	./f$" "$OUT/texcl" && assert_grep "	./d2$" "$OUT/texcl" &&
	assert_grep "	./.h.tmp$" "$OUT/texcl" &&
	! grep -q "x.tmp\|cache\|deep" "$OUT/texcl" &&
	mkdir "$MNT2/excl" && (cd "$MNT2/excl" && restore -rf "$OUT/excl" >/dev/null 2>&1) &&
	cmp d1/f "$MNT2/excl/f" && assert_missing "$MNT2/excl/cache" &&
	assert_missing "$MNT2/excl/x.tmp" &&
	rm -r d1/cache d1/x.tmp d1/.h.tmp
'

test_expect_success 'dump --since the token a dump printed holds what changed after that dump, whatever the dump dates say' '
	"$SNAPFS" dump -0 --no-dates -f "$OUT/s0" "$MNT/d1" 2>"$OUT/s0.err" &&
	tok=$(sed -n "s/^snapfs dump: since-token \([0-9]*-[0-9]*\) .*/\1/p" "$OUT/s0.err") &&
	test -n "$tok" &&
	echo later >d1/since &&
	"$SNAPFS" dump -3 --no-dates --since "$tok" -f "$OUT/s1" "$MNT/d1" 2>/dev/null &&
	assert_eq "since" "$(names_in "$OUT/s1")" &&
	assert_grep "^Level 3 dump of /d1 on " <(restore -tf "$OUT/s1") &&
	assert_eq "$(restore -tf "$OUT/s0" 2>&1 | sed -n "s/^Dump   date: //p")" \
		"$(restore -tf "$OUT/s1" 2>&1 | sed -n "s/^Dumped from: //p")" &&
	rm d1/since
'

test_expect_success 'dump --since refuses a token that is no token, one not older than the snapshot, and a level 0; nothing left behind' '
	"$SNAPFS" snapshot list "$MNT" >"$OUT/snaps.before" &&
	assert_fails "$SNAPFS" dump -1 --since yesterday -f "$OUT/bad" "$MNT" 2>"$OUT/e1" &&
	assert_grep "since .yesterday.: not a since-token" "$OUT/e1" &&
	assert_fails "$SNAPFS" dump -1 --since 1-999999 -f "$OUT/bad" "$MNT" 2>"$OUT/e2" &&
	assert_grep "that dump is not older than this one.s snapshot" "$OUT/e2" &&
	assert_fails "$SNAPFS" dump -0 --since 1-1 -f "$OUT/bad" "$MNT" 2>"$OUT/e3" &&
	assert_grep "since makes an incremental" "$OUT/e3" &&
	"$SNAPFS" snapshot list "$MNT" >"$OUT/snaps.after" &&
	assert_cmp "$OUT/snaps.before" "$OUT/snaps.after" &&
	"$SNAPFS" dump contexts "$MNT" >"$OUT/ctx" && assert_eq 1 "$(wc -l <"$OUT/ctx")"
'

test_expect_success 'every write is one record of -b KiB, and restore -b reads it' '
	ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0 strace -f -qq -e trace=write -o "$OUT/strace" \
		"$SNAPFS" dump -0 -b 16 -f "$OUT/b16" "$MNT/d1" 2>/dev/null &&
	records=$(grep -c "^[0-9]* *write([0-9]*, .*= 16384$" "$OUT/strace") &&
	size=$(stat -c %s "$OUT/b16") &&
	assert_eq "$size" $((records * 16384)) "the dump is its 16 KiB writes" &&
	restore -t -b 16 -f "$OUT/b16" >/dev/null
'

test_expect_success 'a dump of an unmounted volume gives the same dump contents' '
	cd "$TEST_TMP" && vol_umount "$MNT" &&
	"$SNAPFS" dump -0 -f "$OUT/offline" "$STORE/d1" 2>/dev/null &&
	vol_mount "$STORE" "$MNT" &&
	assert_eq "$(names_in "$OUT/sub")" "$(names_in "$OUT/offline")"
'

test_expect_success 'bad arguments: one message each, exit 2 or 1, and no snapshot left behind' '
	before=$("$SNAPFS" snapshot list "$MNT") &&
	for args in "-32 $MNT" "-0 -b 3 $MNT" "-0 -b 300 $MNT" "-0" "$MNT" \
		    "-0 -x $MNT" "-0 -L waytoolongalabel $MNT"; do
		rc=0; "$SNAPFS" dump $args -f "$OUT/bad" 2>"$OUT/err" || rc=$?
		assert_eq 2 "$rc" "dump $args" && assert_one_line "$OUT/err" || exit 1
	done &&
	rc=0; "$SNAPFS" dump -0 -f "$OUT/bad" "$MNT/nosuchdir" 2>"$OUT/err" || rc=$?
	assert_eq 1 "$rc" && assert_grep "nosuchdir: no such directory" "$OUT/err" &&
	rc=0; "$SNAPFS" dump -0 -f "$OUT/bad" "$MNT/d1/f" 2>"$OUT/err" || rc=$?
	assert_eq 1 "$rc" && assert_grep "not a directory" "$OUT/err" &&
	rc=0; "$SNAPFS" dump -0 --snapshot nosuch -f "$OUT/bad" "$MNT" 2>"$OUT/err" || rc=$?
	assert_eq 1 "$rc" && assert_grep "no snapshot named .nosuch." "$OUT/err" &&
	rc=0; "$SNAPFS" dump -0 -f "$OUT" "$MNT" 2>"$OUT/err" || rc=$?
	assert_eq 1 "$rc" && assert_grep "is a directory" "$OUT/err" &&
	rc=0; "$SNAPFS" dump -1 -f "$OUT/bad" "$TEST_TMP" 2>"$OUT/err" || rc=$?
	assert_eq 1 "$rc" && assert_grep "not a snapfs volume" "$OUT/err" &&
	assert_eq "$before" "$("$SNAPFS" snapshot list "$MNT")"
'

# A reader that takes 256 KiB, then waits to be killed (exec: the job's
# pid is the reader's, and it keeps no volume busy).
slow_reader() { cd "$TEST_TMP" && exec python3 -c "
import sys, time
sys.stdin.buffer.read(262144)
open(sys.argv[1], 'w').close()
time.sleep(120)" "$1"; }

# A reader that saves what it reads, slowly, until the end of its input.
throttled_reader() { cd "$TEST_TMP" && exec python3 -c "
import sys, time
out, n, told = open(sys.argv[1], 'wb'), 0, False
while True:
    b = sys.stdin.buffer.read(65536)
    if not b:
        break
    out.write(b)
    n += len(b)
    if n >= 262144 and not told:
        open(sys.argv[2], 'w').close()
        told = True
    time.sleep(0.05)" "$1" "$2"; }

test_expect_success 'SIGINT while writing files leaves a restartable context that holds the snapshot' '
	head -c 40000000 /dev/urandom >"$MNT/d1/bigger" &&
	mkfifo "$OUT/pipe"
	(rc=0; "$SNAPFS" dump -0 -b 64 -f "$OUT/pipe" "$MNT" 2>"$OUT/int.err" || rc=$?; echo $rc >"$OUT/int.rc") &
	throttled_reader "$OUT/part1" "$OUT/started" <"$OUT/pipe" &
	reader=$!
	while ! test -e "$OUT/started"; do sleep 0.1; done && sleep 1.5 &&
	pkill -INT -f "snapfs dump -0 -b 64 -f $OUT/pipe" &&
	while ! test -s "$OUT/int.rc"; do sleep 0.1; done &&
	wait $reader &&
	assert_eq 1 "$(cat "$OUT/int.rc")" &&
	assert_grep "interrupted.*restartable: snapfs dump --restart 1 " "$OUT/int.err" &&
	"$SNAPFS" dump contexts "$MNT" >"$OUT/ctx" &&
	assert_grep "^1  *restartable  *0  */  *snapshot_for_backup\.[1-9][0-9]* " "$OUT/ctx" &&
	awk '"'"'$1 == 1 { print $5 }'"'"' "$OUT/ctx" >"$OUT/sfb1" &&
	assert_eq "dump:1" "$("$SNAPFS" snapshot holds "$MNT" "$(cat "$OUT/sfb1")")" &&
	assert_fails "$SNAPFS" snapshot delete "$MNT" "$(cat "$OUT/sfb1")"
'

test_expect_success 'dump --restart writes the rest as part 2 and ends the context' '
	"$SNAPFS" dump --restart 1 -f "$OUT/part2" "$MNT" 2>"$OUT/p2.err" &&
	assert_grep "done$" "$OUT/p2.err" &&
	"$SNAPFS" dump contexts "$MNT" >"$OUT/ctx" &&
	assert_eq 1 "$(wc -l <"$OUT/ctx")" &&
	! "$SNAPFS" snapshot list "$MNT" | grep -q snapshot_for_backup
'

test_expect_success 'the two parts restore together as one uninterrupted dump' '
	size1=$(stat -c %s "$OUT/part1") && test "$size1" -lt 40000000 &&
	mkdir "$MNT2/parts" &&
	"$SNAPFS" restore -r -f "$OUT/part1" -f "$OUT/part2" --into "$MNT2/parts" 2>"$OUT/parts.err" &&
	listing "$MNT" --skip-xattr trusted.snapfs.qtree >"$OUT/a" &&
	listing "$MNT2/parts" --skip .snapfs-restoresymtable >"$OUT/b" &&
	assert_cmp "$OUT/a" "$OUT/b"
'

test_expect_success 'a killed dump leaves its context, its snapshot named anew; contexts delete releases and deletes it' '
	rm -f "$OUT/started"
	("$SNAPFS" dump -0 -b 64 -f "$OUT/pipe" "$MNT" 2>/dev/null; true) &
	dumper=$!
	slow_reader "$OUT/started" <"$OUT/pipe" &
	reader=$!
	while ! test -e "$OUT/started"; do sleep 0.1; done && sleep 1.5 &&
	pkill -KILL -f "snapfs dump -0 -b 64 -f $OUT/pipe" && wait $dumper && kill $reader &&
	"$SNAPFS" dump contexts "$MNT" >"$OUT/ctx" &&
	assert_grep "^2  *restartable " "$OUT/ctx" &&
	sfb2=$(awk '"'"'$1 == 2 { print $5 }'"'"' "$OUT/ctx") &&
	assert_ne "$(cat "$OUT/sfb1")" "$sfb2" "the name the first dump'"'"'s snapshot had" &&
	"$SNAPFS" dump contexts delete "$MNT" 2 >"$OUT/del" &&
	assert_grep "deleted dump context 2 .*$sfb2 deleted" "$OUT/del" &&
	! "$SNAPFS" snapshot list "$MNT" | grep -q snapshot_for_backup &&
	rc=0; "$SNAPFS" dump contexts delete "$MNT" 2 2>"$OUT/err" || rc=$?
	assert_eq 1 "$rc" && assert_grep "no dump context 2" "$OUT/err" &&
	rm "$MNT/d1/bigger"
'

test_expect_success 'on a terminal dump and restore show their progress on stderr' '
	script -qec "$SNAPFS dump -0 -f $OUT/tty $MNT/d1" /dev/null >"$OUT/tty.out" &&
	assert_grep "snapfs dump: .* MiB, [0-9]* files, .* MB/s" "$OUT/tty.out" &&
	mkdir "$MNT2/tty" &&
	script -qec "$SNAPFS restore -r -f $OUT/tty --into $MNT2/tty" /dev/null >"$OUT/rtty.out" &&
	assert_grep "restore: .* MiB, [0-9]* files, .* MB/s" "$OUT/rtty.out" &&
	assert_grep "restored [0-9]* files, .* MiB in .* s (.* MB/s)" "$OUT/rtty.out"
'

test_done
