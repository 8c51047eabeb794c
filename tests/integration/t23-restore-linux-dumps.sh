#!/bin/bash
# snapfs restore reads the dumps that Linux dump (Debian's dump 0.4b47)
# writes of an ext4 image: a level 0, then levels 1 and 2 with changed,
# deleted, renamed and new files and a moved directory, restored in order
# into a snapfs volume, give the ext4 tree at each level: contents, modes,
# owners, times to the microsecond, xattrs and ACLs, hard links, device
# numbers, and holes.  -t lists as Linux `restore -t` does; -x extracts one
# path, --rename-to under a new name, into a mounted volume or an
# unmounted store.  The space check refuses a dump that does not fit and
# changes nothing; --force restores what fits and names what did not.
# Two parts of a restarted dump (the first cut in the middle of a file
# and of a block) restore as the whole dump.  Bad input (truncated,
# corrupted header, garbage, wrong -b, a gap in the chain, another
# volume, a part that does not follow) gives one message and exit 1.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
test_have_prereq ROOT || { say "# skipping: needs root (it makes Linux dumps of an ext4 image on a loop device)"; test_done; }
for p in dump restore mkfs.ext4 losetup; do
	command -v $p >/dev/null || { say "# skipping: needs $p (make deps)"; test_done; }
done
vol_create --size 1G

IMG=$TEST_TMP/ext4.img EXT=$TEST_TMP/ext4 SRC=$TEST_TMP/src DD=$TEST_TMP/dumpdates
LOOP=
mkdir -p "$EXT" "$SRC"
ext_detach() {
	mountpoint -q "$EXT" && umount "$EXT"
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	LOOP=
}
# the image is detached before lib.sh's cleanup, whatever the way out
eval "$(declare -f vol_cleanup | sed '1s/vol_cleanup/lib_vol_cleanup/')"
vol_cleanup() { cd / && ext_detach; lib_vol_cleanup; }

cat >"$TEST_TMP/tree.py" <<'PY'
# One line per entry: path, type and mode, owner, (size, links, hard-link
# group, device), mtime and atime in microseconds, contents' checksum or
# symlink target, the allocated blocks of a sparse file, every xattr.
import hashlib, os, stat, sys
unit = int(os.environ.get("TIME_UNIT_US", "1"))
def us(ns):
    return ns // 1000 // unit
root = sys.argv[1]
skip = set(sys.argv[2:])
first = {}
def line(rel, full):
    st = os.lstat(full)
    f = [rel, oct(st.st_mode), str(st.st_uid), str(st.st_gid)]
    if not stat.S_ISDIR(st.st_mode):
        f += [str(st.st_size), str(st.st_nlink),
              "atime=%d" % us(st.st_atime_ns)]
        if st.st_nlink > 1:
            f.append("group=" + first.setdefault(st.st_ino, rel))
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        f.append("dev=%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)))
    f.append("mtime=%d" % us(st.st_mtime_ns))
    if stat.S_ISREG(st.st_mode):
        h = hashlib.sha256()
        with open(full, "rb") as fh:
            for b in iter(lambda: fh.read(1 << 20), b""):
                h.update(b)
        f.append(h.hexdigest())
        if st.st_blocks * 512 < st.st_size:
            f.append("sparse")
    elif stat.S_ISLNK(st.st_mode):
        f.append("-> " + os.readlink(full))
    for x in sorted(os.listxattr(full, follow_symlinks=False)):
        if x == "trusted.snapfs.qtree":
            continue  # a qtree's description: restore does not set it
        f.append("%s=%s" % (x, os.getxattr(full, x, follow_symlinks=False).hex()))
    print(" ".join(f))
line(".", root)
for d, dirs, files in os.walk(root):
    dirs[:] = sorted(x for x in dirs if x not in skip)
    for n in sorted(dirs + [x for x in files if x not in skip]):
        full = os.path.join(d, n)
        line(os.path.relpath(full, root), full)
PY
# Linux dump 0.4b47 records whole seconds of ext4's times (its microsecond
# fields are 0), so the trees compare times to the second; a test below
# sets microseconds in a dump's headers and checks that they are restored.
export TIME_UNIT_US=1000000
tree() { python3 "$TEST_TMP/tree.py" "$1" .snapfs-restoresymtable; }
# same_tree LISTING DIR: DIR lists exactly as LISTING
same_tree() { tree "$2" >"$REF/now.tree" && diff -u "$1" "$REF/now.tree" >&2; }

# dumptool: read and patch dump headers (offsets of struct s_spcl)
cat >"$TEST_TMP/dumptool.py" <<'PY'
import struct, sys
MAGIC, CKSUM = 60012, 84446
def blocks(d):
    for i in range(0, len(d) - 1023, 1024):
        w = struct.unpack_from("<256I", d, i)
        if w[6] == MAGIC and sum(w) & 0xffffffff == CKSUM:
            yield i // 1024, w
def fix(d, i):
    struct.pack_into("<I", d, i + 28, 0)
    s = sum(struct.unpack_from("<256I", d, i)) & 0xffffffff
    struct.pack_into("<I", d, i + 28, (CKSUM - s) & 0xffffffff)
def set_ext(d, i, uuid, part, context, volume):
    struct.pack_into("<I", d, i + 12, volume)
    struct.pack_into("<I", d, i + 904, 0x53464e53)
    d[i + 908:i + 924] = bytes.fromhex(uuid)
    struct.pack_into("<IIII", d, i + 924, 0, 0, part, context)
    fix(d, i)
cmd, path = sys.argv[1], sys.argv[2]
d = bytearray(open(path, "rb").read())
if cmd == "headers":        # block type ino flags
    for b, w in blocks(d):
        print(b, w[0], w[5], w[222])
elif cmd == "ext":          # ext FILE OUT UUID PART CONTEXT VOLUME
    set_ext(d, 0, sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]))
    open(sys.argv[3], "wb").write(d)
elif cmd == "usec":         # usec FILE OUT INO USEC: set its times' usec
    for b, w in list(blocks(d)):
        if w[0] == 2 and w[5] == int(sys.argv[4]):
            for off in (52, 60):
                struct.pack_into("<I", d, b * 1024 + off, int(sys.argv[5]))
            fix(d, b * 1024)
    open(sys.argv[3], "wb").write(d)
elif cmd == "flip":         # flip FILE BLOCK: change a byte of that block
    d[int(sys.argv[3]) * 1024 + 100] ^= 0x40
    open(path, "wb").write(d)
elif cmd == "part2":        # part2 FILE OUT FROMBLOCK UUID CONTEXT
    tape = bytearray(d[:1024])
    set_ext(tape, 0, sys.argv[5], 1, int(sys.argv[6]), 2)
    open(sys.argv[3], "wb").write(tape + d[int(sys.argv[4]) * 1024:])
PY
dumptool() { python3 "$TEST_TMP/dumptool.py" "$@"; }

ext_mount() { mount -o loop,noatime "$LOOP" "$EXT"; }
# ext_dump LEVEL OUT: unmount (so that the device is quiescent), dump, mount.
# Dump dates are whole seconds: the clock moves to a new second between the
# changes and each dump, so that two dumps never share a date (the level
# chain is told apart by dates only).
ext_dump() {
	cd "$TEST_TMP" && umount "$EXT" && next_second &&
	dump -"$1" -u -D "$DD" -b 64 -f "$2" "$LOOP" >"$REF/dump$1.log" 2>&1 ||
		{ cat "$REF/dump$1.log" >&2; return 1; }
	next_second && ext_mount
}
# restore_into ARGS: run snapfs restore, its output in $REF/out and
# $REF/err (shown in the test's log when it fails)
restore_into() {
	local rc=0
	"$SNAPFS" restore "$@" >"$REF/out" 2>"$REF/err" || rc=$?
	[ $rc = 0 ] || sed "s/^/restore exit $rc: /" "$REF/err" >&2
	return $rc
}

test_expect_success 'an ext4 image of a tree with every kind of file, attached to a loop device' '
	cd "$SRC" &&
	mkdir -p d1/sub d2 "name with spaces" "été ünïcødé" tmpdir sticky &&
	echo hello >d1/a && echo "moving soon" >d1/sub/m && echo keep >d2/k &&
	head -c $((3 << 20)) /dev/urandom >big &&
	truncate -s 2M sparse && printf start | dd of=sparse conv=notrunc status=none &&
	printf middle | dd of=sparse bs=1k seek=700 conv=notrunc status=none &&
	printf end | dd of=sparse bs=1 seek=$(( (2 << 20) - 3 )) conv=notrunc status=none &&
	ln -s d1/a link && ln -s "/nowhere/at all" dangling &&
	echo shared >d1/hard && ln d1/hard d2/hard2 && ln d1/hard hard3 &&
	mknod chr c 1 3 && mkfifo fifo &&
	echo "in spaces" >"name with spaces/f i l e" && echo utf8 >"été ünïcødé/ß" &&
	echo gone >tmpdir/x && echo "to delete" >doomed && mkdir qt && echo q >qt/q &&
	mkfs.ext4 -q -I 256 -b 4096 -d "$SRC" "$IMG" 64M &&
	LOOP=$(losetup -f --show "$IMG") && echo "$LOOP" >"$TEST_TMP/loopdev" &&
	ext_mount && cd "$EXT" &&
	chown 1234:5678 d1/a d2 chr && chown -h 1234:5678 link &&
	chmod 4755 d1/a && chmod 1777 sticky && chmod 2750 d2 && chmod 640 big &&
	setfattr -n user.color -v blue d1/a &&
	setfattr -n user.bin -v 0x00ff00fe00 big &&
	setfattr -n user.DOSATTRIB -v 0x00000400040000000100000020000000c0a2d3f5e6c7d80100000000000000000000000000000000 d1/a &&
	setfattr -n trusted.snapfs.other -v t d2/k &&
	setfattr -n trusted.snapfs.qtree -v "style=unix quota=1048576" qt &&
	setfacl -m u:1001:rw,g:2001:r d1/hard && setfacl -d -m u:1001:rwx,g:2002:rx d1 &&
	acl=$(for i in $(seq 3000 3099); do printf "u:%d:r," $i; done) &&
	setfacl -m "${acl%,}" big &&
	touch -h -d "2001-02-03 04:05:06.123456" link d1/a big chr fifo sparse &&
	touch -d "1999-12-31 23:59:58.654321" d1/sub "name with spaces" d2/hard2 &&
	touch -a -d "2010-05-06 07:08:09.000007" d1/a &&
	sync && tree "$EXT" >"$REF/l0.tree" &&
	grep -q "^sparse .* sparse" "$REF/l0.tree" &&
	grep -q "^big .*system.posix_acl_access=" "$REF/l0.tree"
'
LOOP=$(cat "$TEST_TMP/loopdev" 2>/dev/null)
[ -n "$LOOP" ] || test_bail "no ext4 image on a loop device"

test_expect_success 'Linux dump -0 of the image; changes; dump -1; more changes; dump -2' '
	ext_dump 0 "$TEST_TMP/L0" &&
	cd "$EXT" &&
	echo more >>d1/a && rm doomed && mv d2/k d2/k.renamed &&
	mv d1/sub d2/sub.moved && rm -r tmpdir && echo new >d2/new &&
	ln big d2/big.link && chmod 600 d1/hard && setfattr -n user.color -v red d1/a &&
	setfacl -x u:3050 big && mkdir fresh && echo f >fresh/f &&
	touch -d "2005-06-07 08:09:10.111213" d2/new &&
	sync && tree "$EXT" >"$REF/l1.tree" &&
	ext_dump 1 "$TEST_TMP/L1" && cd "$EXT" &&
	mv d2/sub.moved/m fresh/m2 && rm -r d2/sub.moved && mkdir doomed &&
	echo x >doomed/inside && rm d2/hard2 && mv "name with spaces" "names moved" &&
	rm big && echo replaced >d2/new &&
	sync && tree "$EXT" >"$REF/l2.tree" &&
	ext_dump 2 "$TEST_TMP/L2" &&
	test -s "$TEST_TMP/L0" && test -s "$TEST_TMP/L1" && test -s "$TEST_TMP/L2" &&
	! cmp -s "$REF/l0.tree" "$REF/l1.tree" && ! cmp -s "$REF/l1.tree" "$REF/l2.tree"
'

test_expect_success '-t lists the dump exactly as Linux restore -t does' '
	restore -tf "$TEST_TMP/L0" >"$REF/linux.list" 2>/dev/null &&
	"$SNAPFS" restore -t -f "$TEST_TMP/L0" >"$REF/ours.list" &&
	grep -q "^Level 0 dump of" "$REF/ours.list" &&
	grep -q "	./d1/sub/m$" "$REF/ours.list" &&
	diff -u "$REF/linux.list" "$REF/ours.list" >&2 &&
	restore -tf "$TEST_TMP/L1" >"$REF/linux1.list" 2>/dev/null &&
	"$SNAPFS" restore -t -f "$TEST_TMP/L1" >"$REF/ours1.list" &&
	diff -u "$REF/linux1.list" "$REF/ours1.list" >&2
'

test_expect_success 'restore -r of level 0 into a directory of the volume gives the ext4 tree' '
	mkdir "$MNT/dir" &&
	restore_into -r -f "$TEST_TMP/L0" --into "$MNT/dir" &&
	assert_grep "^restored [0-9]* files, .* MiB in .* s (.* MB/s)$" "$REF/err" &&
	same_tree "$REF/l0.tree" "$MNT/dir" &&
	! grep -q "^qtree" "$REF/out" &&
	assert_eq "" "$(getfattr --absolute-names -n trusted.snapfs.qtree "$MNT/dir/qt" 2>/dev/null)" &&
	test -f "$MNT/dir/.snapfs-restoresymtable" &&
	assert_le "$(stat -c %b "$MNT/dir/sparse")" 1000 "blocks of the sparse file"
'

test_expect_success 'times are restored to the microsecond the headers carry' '
	ino=$(awk "\$2 == \"./d1/a\" {print \$1}" "$REF/linux.list") &&
	dumptool usec "$TEST_TMP/L0" "$REF/usec" "$ino" 654321 &&
	mkdir "$MNT/usec" &&
	restore_into -x -f "$REF/usec" --into "$MNT/usec" d1/a &&
	assert_stat "$MNT/usec/d1/a" "%x %y" "2010-05-06 07:08:09.654321000 +0000 2001-02-03 04:05:06.654321000 +0000"
'

test_expect_success 'level 1 then level 2 apply changes, deletions, renames and a moved directory' '
	ino=$(stat -c %i "$MNT/dir/d1/sub/m") &&
	restore_into -r -f "$TEST_TMP/L1" --into "$MNT/dir" &&
	same_tree "$REF/l1.tree" "$MNT/dir" &&
	assert_eq "$ino" "$(stat -c %i "$MNT/dir/d2/sub.moved/m")" "the moved directory was renamed, not copied" &&
	restore_into -r -f "$TEST_TMP/L2" --into "$MNT/dir" &&
	same_tree "$REF/l2.tree" "$MNT/dir" &&
	assert_missing "$MNT/dir/.snapfs-restore-staging"
'

test_expect_success 'a level that does not follow the last one restored is refused: a gap in the chain' '
	mkdir "$MNT/gap" &&
	restore_into -r -f "$TEST_TMP/L0" --into "$MNT/gap" &&
	tree "$MNT/gap" >"$REF/gap.before" &&
	{ restore_into -r -f "$TEST_TMP/L2" --into "$MNT/gap"; test $? = 1; } &&
	assert_one_line "$REF/err" &&
	assert_grep "^snapfs restore: $TEST_TMP/L2: this is a level 2 dump based on the dump of .*, but $MNT/gap was last restored from the level 0 dump of .*; restore the missing level first$" "$REF/err" &&
	same_tree "$REF/gap.before" "$MNT/gap"
'

test_expect_success 'an incremental without a restored level 0 is refused' '
	mkdir "$MNT/none" &&
	! restore_into -r -f "$TEST_TMP/L1" --into "$MNT/none" &&
	assert_one_line "$REF/err" &&
	assert_grep "restore the level 0 dump first" "$REF/err" &&
	assert_eq "" "$(ls -A "$MNT/none")"
'

test_expect_success 'an incremental of another volume is refused (snapfs volume uuids)' '
	dumptool ext "$TEST_TMP/L0" "$REF/A0" 11111111111111111111111111111111 0 0 1 &&
	dumptool ext "$TEST_TMP/L1" "$REF/B1" 22222222222222222222222222222222 0 0 1 &&
	mkdir "$MNT/vol" &&
	restore_into -r -f "$REF/A0" --into "$MNT/vol" &&
	tree "$MNT/vol" >"$REF/vol.before" &&
	! restore_into -r -f "$REF/B1" --into "$MNT/vol" &&
	assert_one_line "$REF/err" &&
	assert_grep "^snapfs restore: $REF/B1: an incremental dump of another volume than the one $MNT/vol was restored from" "$REF/err" &&
	same_tree "$REF/vol.before" "$MNT/vol"
'

test_expect_success '-x extracts one path with the directories leading to it' '
	mkdir "$MNT/x" &&
	restore_into -x -f "$TEST_TMP/L0" --into "$MNT/x" d1/sub &&
	assert_eq "sub" "$(ls -A "$MNT/x/d1")" &&
	assert_eq "d1" "$(ls -A "$MNT/x")" &&
	grep "^d1/sub[/ ]" "$REF/l0.tree" | sed -e "s,^d1/sub ,. ," -e "s,^d1/sub/,," >"$REF/sub.tree" &&
	tree "$MNT/x/d1/sub" >"$REF/xsub.tree" &&
	diff -u "$REF/sub.tree" "$REF/xsub.tree" >&2 &&
	assert_stat "$MNT/x/d1" %U:%G root:root
'

test_expect_success '--rename-to restores the subtree under a new name; unknown paths are named' '
	mkdir "$MNT/ren" &&
	restore_into -x -f "$TEST_TMP/L0" --into "$MNT/ren" --rename-to copy "name with spaces" &&
	assert_eq "copy" "$(ls -A "$MNT/ren")" &&
	assert_cmp "$SRC/name with spaces/f i l e" "$MNT/ren/copy/f i l e" &&
	assert_stat "$MNT/ren/copy" %y "1999-12-31 23:59:58.000000000 +0000" &&
	! restore_into -x -f "$TEST_TMP/L0" --into "$MNT/ren" no/such &&
	assert_one_line "$REF/err" &&
	assert_grep "^snapfs restore: no/such: not on the dump$" "$REF/err"
'

test_expect_success '--rename-to of one link of a hard-linked file gives the file under the new name alone' '
	mkdir "$MNT/ren2" &&
	restore_into -x -f "$TEST_TMP/L0" --into "$MNT/ren2" --rename-to solo d2/hard2 &&
	assert_eq "solo" "$(ls -A "$MNT/ren2")" &&
	assert_cmp "$SRC/d1/hard" "$MNT/ren2/solo" &&
	assert_stat "$MNT/ren2/solo" %h 1
'

test_expect_success 'a qtree restored at the root of a volume is a qtree again, and reported' '
	restore_into -x -f "$TEST_TMP/L0" --into "$MNT" qt &&
	assert_eq "qtree qt: a qtree again (style=unix quota=1048576)" "$(cat "$REF/out")" &&
	assert_eq q "$(cat "$MNT/qt/q")" &&
	assert_eq "style=unix quota=1048576" "$(getfattr --only-values --absolute-names -n trusted.snapfs.qtree "$MNT/qt")" &&
	"$SNAPFS" qtree list "$MNT" | grep -q "^qt " &&
	rm -r "$MNT/qt/q" && "$SNAPFS" qtree delete "$MNT" qt
'

test_expect_success 'into an unmounted store (VOL/PATH): mounted privately, restored, unmounted' '
	"$SNAPFS" mkfs "$TEST_TMP/store2" --size 256M >/dev/null &&
	restore_into -x -f "$TEST_TMP/L0" --into "$TEST_TMP/store2/deep/er" d1 &&
	! grep -q " $TEST_TMP/store2" /proc/self/mountinfo &&
	vol_mount "$TEST_TMP/store2" "$TEST_TMP/mnt2" &&
	assert_eq hello "$(cat "$TEST_TMP/mnt2/deep/er/d1/a")" &&
	getfacl -pn "$TEST_TMP/mnt2/deep/er/d1" >"$REF/acl" &&
	assert_grep "^default:user:1001:rwx" "$REF/acl" &&
	vol_umount "$TEST_TMP/mnt2"
'

test_expect_success 'the space check refuses a dump that does not fit; --force restores what fits' '
	"$SNAPFS" mkfs "$TEST_TMP/tiny" --size 16M >/dev/null &&
	vol_mount "$TEST_TMP/tiny" "$TEST_TMP/mnt3" &&
	free=$(( $(stat -f -c %a "$TEST_TMP/mnt3") * $(stat -f -c %S "$TEST_TMP/mnt3") )) &&
	head -c $(( free - (2 << 20) )) /dev/urandom >"$TEST_TMP/mnt3/filler" &&
	mkdir "$TEST_TMP/mnt3/t" && sync &&
	! restore_into -r -f "$TEST_TMP/L0" --into "$TEST_TMP/mnt3/t" &&
	assert_one_line "$REF/err" &&
	assert_grep "^snapfs restore: $TEST_TMP/mnt3/t: needs .* MiB, only .* free; nothing was restored (use --force to restore what fits)$" "$REF/err" &&
	assert_eq "" "$(ls -A "$TEST_TMP/mnt3/t")" &&
	! restore_into -r --force -f "$TEST_TMP/L0" --into "$TEST_TMP/mnt3/t" &&
	assert_one_line "$REF/err" &&
	# big does not fit; files after it may not even be created: each is
	# named, and the reason is given once
	assert_grep "^snapfs restore: $TEST_TMP/mnt3/t/big: left incomplete (.* of 3.00 MiB)\(, [^:]*: left incomplete ([^)]*)\)*: no room left in $TEST_TMP/mnt3/t" "$REF/err" &&
	assert_cmp "$SRC/d1/a" "$TEST_TMP/mnt3/t/d1/a" &&
	vol_umount "$TEST_TMP/mnt3"
'

# block numbers of the headers: "block type ino flags"
dumptool headers "$TEST_TMP/L0" >"$REF/headers" 2>/dev/null

test_expect_success 'a restarted dump: part 1 cut inside a file and a block, part 2 repeating a file' '
	bino=$(awk "\$2 == \"./big\" {print \$1}" "$REF/linux.list") &&
	hb=$(awk -v i="$bino" "\$2 == 2 && \$3 == i && \$4 == 2 {print \$1; exit}" "$REF/headers") &&
	prev=$(awk -v h="$hb" "\$2 == 2 && \$1 < h && \$4 == 2 {p = \$1} END {print p}" "$REF/headers") &&
	test -n "$hb" && test -n "$prev" &&
	dumptool ext "$TEST_TMP/L0" "$REF/P0" 33333333333333333333333333333333 0 7 1 &&
	head -c $(( (hb + 700) * 1024 + 300 )) "$REF/P0" >"$REF/part1" &&
	dumptool part2 "$REF/P0" "$REF/part2" "$prev" 33333333333333333333333333333333 7 &&
	mkdir "$MNT/parts" &&
	restore_into -r -f "$REF/part1" -f "$REF/part2" --into "$MNT/parts" &&
	same_tree "$REF/l0.tree" "$MNT/parts" &&
	dumptool part2 "$REF/P0" "$REF/other" "$prev" 33333333333333333333333333333333 8 &&
	mkdir "$MNT/parts2" &&
	! restore_into -r -f "$REF/part1" -f "$REF/other" --into "$MNT/parts2" &&
	assert_grep "^snapfs restore: .*left incomplete.*$REF/other: not the next part of this dump" "$REF/err" &&
	assert_one_line "$REF/err" &&
	mkdir "$MNT/parts3" &&
	! restore_into -r -f "$REF/part2" --into "$MNT/parts3" &&
	assert_one_line "$REF/err" &&
	assert_grep "^snapfs restore: $REF/part2: this is volume 2 of a dump, not its first; give all its parts, in order, with one -f each$" "$REF/err" &&
	assert_eq "" "$(ls -A "$MNT/parts3")"
'

test_expect_success 'a truncated dump names the file it left incomplete and where the dump ends' '
	head -c $(( $(stat -c %s "$TEST_TMP/L0") / 2 + 100 )) "$TEST_TMP/L0" >"$REF/trunc" &&
	mkdir "$MNT/trunc" &&
	{ restore_into -r -f "$REF/trunc" --into "$MNT/trunc"; test $? = 1; } &&
	assert_one_line "$REF/err" &&
	assert_grep "^snapfs restore: $MNT/trunc/big: left incomplete (.* of 3.00 MiB): $REF/trunc: the dump ends early at block [0-9]* (byte [0-9]*)$" "$REF/err"
'

test_expect_success 'a corrupted header stops the restore before anything changes, naming the block' '
	first=$(awk "\$2 == 2 {print \$1; exit}" "$REF/headers") &&
	cp "$TEST_TMP/L0" "$REF/corrupt" && dumptool flip "$REF/corrupt" "$first" &&
	mkdir "$MNT/corrupt" &&
	! restore_into -r -f "$REF/corrupt" --into "$MNT/corrupt" &&
	assert_one_line "$REF/err" &&
	assert_grep "^snapfs restore: $REF/corrupt: corrupted header at block $first (byte $((first * 1024))): its checksum or magic number is wrong$" "$REF/err" &&
	assert_eq "" "$(ls -A "$MNT/corrupt")"
'

test_expect_success 'garbage, a wrong blocking factor and usage errors' '
	head -c 100000 /dev/urandom >"$REF/garbage" &&
	mkdir "$MNT/bad" &&
	! restore_into -r -f "$REF/garbage" --into "$MNT/bad" &&
	assert_one_line "$REF/err" &&
	assert_grep "^snapfs restore: $REF/garbage: not a dump (no dump volume header at block 0)$" "$REF/err" &&
	! restore_into -r -b 32 -f "$TEST_TMP/L0" --into "$MNT/bad" &&
	assert_one_line "$REF/err" &&
	assert_grep "^snapfs restore: $TEST_TMP/L0: written with blocking factor 64, not 32 (-b)$" "$REF/err" &&
	assert_eq "" "$(ls -A "$MNT/bad")" &&
	restore_into -r -b 64 -f "$TEST_TMP/L0" --into "$MNT/bad" &&
	for args in "-r -x" "-f $TEST_TMP/L0" "-x -f $TEST_TMP/L0" "-r -f $TEST_TMP/L0 d1" "-x --rename-to a/b -f $TEST_TMP/L0 d1" "-r -b 0"; do
		rc=0 && "$SNAPFS" restore $args 2>"$REF/err" >/dev/null || rc=$? &&
		test $rc = 2 &&
		assert_grep "^snapfs restore: .* (see .snapfs help.)$" "$REF/err" || exit 1
	done
'

test_expect_success 'restore reads the dump from standard input' '
	mkdir "$MNT/stdin" &&
	"$SNAPFS" restore -r --into "$MNT/stdin" <"$TEST_TMP/L0" 2>"$REF/err" &&
	same_tree "$REF/l0.tree" "$MNT/stdin"
'

test_done
