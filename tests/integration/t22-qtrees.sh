#!/bin/bash
# Qtrees: directories at the volume root whose space is limited by a quota.
# `snapfs qtree create|list|modify|delete` on a mounted volume (through the
# control socket) and on an unmounted store; writes past the quota fail
# with EDQUOT and keep what fit; usage follows writes, deletes, a daemon
# restart and a snapshot rollback, and equals what du counts; renames and
# hard links across qtree boundaries are EXDEV, a qtree stays at the root,
# clients cannot set or remove its description xattr; snapshots carry
# qtrees; bad input gets one message and changes nothing.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 1G

MiB=$((1024 * 1024))
# qfield NAME FIELD [VOL]: a field of qtree NAME in `qtree list --json`
qfield() {
	"$SNAPFS" qtree list "${3:-$MNT}" --json |
		python3 -c 'import json,sys
q = [q for q in json.load(sys.stdin) if q["name"] == sys.argv[1]]
print(q[0][sys.argv[2]] if q else "none")' "$1" "$2"
}
qnames() { "$SNAPFS" qtree list "${1:-$MNT}" --json | python3 -c 'import json,sys; print(" ".join(q["name"] for q in json.load(sys.stdin)))'; }
# the volume as a refused command must leave it: qtrees, root entries, xattrs
state() { "$SNAPFS" qtree list "${1:-$MNT}" --json && ls -a "${2:-$MNT}" &&
	{ getfattr -d -m - "${2:-$MNT}"/* 2>/dev/null || :; }; }
du_bytes() { du -sB1 "$1" | cut -f1; }

# ------------------------------------------------------------ create, list

test_expect_success 'qtree create makes a directory at the root with its description' '
	"$SNAPFS" qtree create "$MNT" proj --quota 2M >"$REF/out" &&
	assert_grep "created qtree proj" "$REF/out" &&
	test -d proj &&
	assert_eq "$(stat -c %a .)" "$(stat -c %a proj)"
'

# trusted.* attributes are for root's eyes only (the kernel hides them)
test_expect_success ROOT 'clients read the description as trusted.snapfs.qtree' '
	assert_eq "style=unix quota=2097152" \
		"$(getfattr --only-values -n trusted.snapfs.qtree proj)"
'

test_expect_success 'qtree list shows name, style, quota and used bytes' '
	assert_missing home &&	# the kernel now holds a negative entry
	"$SNAPFS" qtree create "$MNT" home --security-style ntfs >/dev/null &&
	test -d home &&
	assert_eq "home proj" "$(qnames)" &&
	assert_eq ntfs "$(qfield home security_style)" &&
	assert_eq 0 "$(qfield home quota_bytes)" &&
	assert_eq unix "$(qfield proj security_style)" &&
	assert_eq 2097152 "$(qfield proj quota_bytes)" &&
	assert_eq 0 "$(qfield proj used_bytes)" &&
	assert_eq "$(stat -c %i proj)" "$(qfield proj id)" &&
	"$SNAPFS" qtree list "$MNT" >"$REF/table" &&
	assert_grep "^proj  *unix  *2.00 MiB  *0 B  *0$" "$REF/table" &&
	assert_grep "^home  *ntfs  *none " "$REF/table"
'

test_expect_success 'qtree modify changes the quota and the style, and --quota none removes the quota' '
	"$SNAPFS" qtree modify "$MNT" home --quota 10M >/dev/null &&
	assert_eq 10485760 "$(qfield home quota_bytes)" &&
	assert_eq ntfs "$(qfield home security_style)" &&
	"$SNAPFS" qtree modify "$MNT" home --security-style mixed >/dev/null &&
	assert_eq mixed "$(qfield home security_style)" &&
	assert_eq 10485760 "$(qfield home quota_bytes)" &&
	"$SNAPFS" qtree modify "$MNT" home --quota none >/dev/null &&
	assert_eq 0 "$(qfield home quota_bytes)"
'

test_expect_success ROOT 'the modified description is what clients read' '
	assert_eq "style=mixed quota=0" \
		"$(getfattr --only-values -n trusted.snapfs.qtree home)"
'

# ------------------------------------------------------------ the quota

test_expect_success 'writing 3 MiB through the page cache into a 2 MiB qtree fails with EDQUOT at fsync' '
	rand_file "$REF/src" $((3 * MiB)) &&
	set +e
	dd if="$REF/src" of=proj/big bs=1M conv=fsync status=none 2>"$REF/dd.err"
	rc=$?
	set -e
	cat "$REF/dd.err" &&
	assert_ne 0 "$rc" "exit status of dd" &&
	assert_grep "fsync failed for .proj/big.: Disk quota exceeded" "$REF/dd.err" &&
	assert_le $((MiB)) "$(qfield proj used_bytes)" "the first writes fit" &&
	assert_le "$(qfield proj used_bytes)" $((2 * MiB)) "usage within the quota"
'

# the 64 KiB blocks of FILE (after a remount) that hold data equal the
# source at the same offset; prints how many bytes of them there are
stored_blocks_intact() {
	python3 - "$1" "$REF/src" <<-'PY'
	import sys
	got = open(sys.argv[1], "rb").read()
	src = open(sys.argv[2], "rb").read()
	bs, data = 65536, 0
	for off in range(0, len(got), bs):
	    blk = got[off:off + bs]
	    if blk.count(0) == len(blk):
	        continue  # a write that did not fit: a hole
	    if blk != src[off:off + len(blk)]:
	        sys.exit("block at %d differs from what was written" % off)
	    data += len(blk)
	print(data)
	PY
}

test_expect_success 'what fit through the page cache is intact after a remount, and usage is what du counts' '
	vol_remount &&
	assert_eq "$(qfield proj used_bytes)" "$(stored_blocks_intact proj/big)" &&
	assert_eq "$(du_bytes proj)" "$(qfield proj used_bytes)" &&
	rm proj/big &&
	assert_eq 0 "$(qfield proj used_bytes)"
'

test_expect_success 'direct writes past the quota fail at write() with EDQUOT; the 2 MiB that fit are intact' '
	set +e
	dd if="$REF/src" of=proj/big bs=1M oflag=direct status=none 2>"$REF/dd.err"
	rc=$?
	set -e
	assert_ne 0 "$rc" "exit status of dd" &&
	assert_grep "error writing .proj/big.: Disk quota exceeded" "$REF/dd.err" &&
	assert_eq $((2 * MiB)) "$(qfield proj used_bytes)" &&
	vol_remount &&
	assert_eq $((2 * MiB)) "$(stat -c %s proj/big)" &&
	head -c $((2 * MiB)) "$REF/src" >"$REF/fit" &&
	assert_cmp "$REF/fit" proj/big
'

test_expect_success 'a full qtree refuses a direct write at write() with EDQUOT; the rest of the volume does not' '
	set +e
	dd if="$REF/src" of=proj/more bs=64K count=1 oflag=direct status=none 2>"$REF/dd.err"
	rc=$?
	set -e
	assert_ne 0 "$rc" &&
	assert_grep "error writing .*Disk quota exceeded" "$REF/dd.err" &&
	dd if="$REF/src" of=outside bs=1M count=3 conv=fsync status=none &&
	dd if="$REF/src" of=home/free bs=1M count=3 conv=fsync status=none &&
	assert_eq $((2 * MiB)) "$(qfield proj used_bytes)"
'

test_expect_success 'usage goes down after rm, and the space can be written again' '
	rm proj/big proj/more &&
	assert_eq 0 "$(qfield proj used_bytes)" &&
	mkdir -p proj/sub/deeper &&
	dd if="$REF/src" of=proj/sub/deeper/one bs=1M count=1 conv=fsync status=none &&
	printf tail >proj/sub/small &&
	sync &&
	assert_eq $((MiB + 512)) "$(qfield proj used_bytes)" &&
	assert_eq "$(du_bytes proj)" "$(qfield proj used_bytes)"
'

test_expect_success 'raising the quota lets a write through; lowering it below the usage stops growth but not deletes' '
	"$SNAPFS" qtree modify "$MNT" proj --quota 4M >/dev/null &&
	dd if="$REF/src" of=proj/two bs=1M count=2 conv=fsync status=none &&
	"$SNAPFS" qtree modify "$MNT" proj --quota 1M >/dev/null &&
	assert_fails dd if="$REF/src" of=proj/two bs=1M count=1 oflag=append conv=notrunc,fsync status=none &&
	rm proj/two &&
	assert_eq $((MiB + 512)) "$(qfield proj used_bytes)" &&
	"$SNAPFS" qtree modify "$MNT" proj --quota 2M >/dev/null
'

test_expect_success 'a small write into a full qtree fails at close() with EDQUOT, and blocks no admin command' '
	rand_file "$REF/mid" 8192 &&
	cp "$REF/mid" proj/sub/mid && sync &&
	full=$(qfield proj used_bytes) &&
	"$SNAPFS" qtree modify "$MNT" proj --quota "$full" >/dev/null &&
	python3 -c "if 1:
		import errno, os, sys
		fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
		os.write(fd, b\"x\" * 1000)
		try:
		    os.close(fd)
		    print(\"OK\")
		except OSError as e:
		    print(errno.errorcode[e.errno])" proj/sub/mid >"$REF/close" &&
	assert_eq EDQUOT "$(cat "$REF/close")" &&
	assert_eq "$full" "$(qfield proj used_bytes)" &&
	"$SNAPFS" snapshot create "$MNT" while-full >/dev/null &&
	"$SNAPFS" snapshot delete "$MNT" while-full >/dev/null &&
	"$SNAPFS" qtree modify "$MNT" proj --quota 2M >/dev/null &&
	assert_eq "$(od -An -tx1 "$REF/mid")" "$(head -c 8192 proj/sub/mid | od -An -tx1)" &&
	rm proj/sub/mid
'

# ------------------------------------------------------------ boundaries

test_expect_success 'rename across qtrees, into or out of one, is EXDEV' '
	echo data >proj/f && echo data >plain &&
	assert_errno EXDEV rename proj/f home/f &&
	assert_errno EXDEV rename proj/f f &&
	assert_errno EXDEV rename plain proj/plain &&
	assert_errno EXDEV rename proj/sub home/sub &&
	assert_errno EXDEV renameat2 proj/f plain exchange &&
	assert_errno OK rename proj/f proj/sub/f &&
	assert_errno OK rename proj/sub/f proj/f
'

test_expect_success 'hard links across qtree boundaries are EXDEV; inside one they work' '
	assert_errno EXDEV link proj/f home/f &&
	assert_errno EXDEV link proj/f f-link &&
	assert_errno EXDEV link plain proj/plain &&
	assert_errno OK link proj/f proj/sub/f2 &&
	assert_eq 2 "$(stat -c %h proj/f)" &&
	rm proj/sub/f2
'

test_expect_success 'mv across qtrees copies, and the usage moves with the data' '
	before_home=$(qfield home used_bytes) &&
	before_proj=$(qfield proj used_bytes) &&
	mv proj/sub/deeper/one home/one &&
	sync &&
	assert_eq $((before_proj - MiB)) "$(qfield proj used_bytes)" &&
	assert_eq $((before_home + MiB)) "$(qfield home used_bytes)" &&
	assert_missing proj/sub/deeper/one
'

test_expect_success 'a qtree is renamed only within the root; rmdir and rename over it are refused' '
	mkdir -p dir/sub emptyq-target &&
	assert_errno EXDEV rename proj dir/proj &&
	"$SNAPFS" qtree create "$MNT" empty >/dev/null &&
	assert_errno EPERM rmdir empty &&
	assert_errno EPERM rename emptyq-target empty &&
	assert_errno OK rename empty renamed &&
	assert_eq "home proj renamed" "$(qnames)" &&
	assert_errno OK rename renamed empty &&
	test -d empty && rmdir emptyq-target
'

test_expect_success ROOT 'clients may read but not set or remove trusted.snapfs.qtree' '
	assert_errno EPERM setxattr proj trusted.snapfs.qtree "style=unix quota=0" &&
	assert_errno EPERM setxattr dir trusted.snapfs.qtree "style=unix quota=0" &&
	assert_errno EPERM removexattr proj trusted.snapfs.qtree &&
	assert_fails setfattr -n trusted.snapfs.qtree -v "style=unix quota=0" proj 2>"$REF/err" &&
	assert_grep "Operation not permitted" "$REF/err" &&
	assert_eq "style=unix quota=2097152" \
		"$(getfattr --only-values -n trusted.snapfs.qtree proj)" &&
	assert_eq "empty home proj" "$(qnames)"
'

# ------------------------------------------------------------ snapshots

test_expect_success 'a snapshot holds the qtree with its description under .snapshot' '
	"$SNAPFS" snapshot create "$MNT" s1 >/dev/null &&
	test -d .snapshot/s1/proj &&
	assert_cmp proj/f .snapshot/s1/proj/f
'

test_expect_success ROOT 'the snapshot copy of a qtree carries its description' '
	assert_eq "style=unix quota=2097152" \
		"$(getfattr --only-values -n trusted.snapfs.qtree .snapshot/s1/proj)"
'

test_expect_success 'usage is the same after a daemon restart' '
	used=$(qfield proj used_bytes) &&
	vol_remount &&
	assert_eq "$used" "$(qfield proj used_bytes)" &&
	assert_eq "$(du_bytes proj)" "$used"
'

test_expect_success 'snapshot restore (rollback) puts usage, quota and a deleted qtree back' '
	used=$(qfield proj used_bytes) &&
	dd if="$REF/src" of=proj/after bs=64K count=3 conv=fsync status=none &&
	"$SNAPFS" qtree modify "$MNT" proj --quota 3M >/dev/null &&
	"$SNAPFS" qtree delete "$MNT" empty >/dev/null &&
	assert_eq "home proj" "$(qnames)" &&
	"$SNAPFS" snapshot restore "$MNT" s1 >/dev/null &&
	assert_eq "empty home proj" "$(qnames)" &&
	assert_eq "$used" "$(qfield proj used_bytes)" &&
	assert_eq 2097152 "$(qfield proj quota_bytes)" &&
	assert_missing proj/after &&
	assert_eq "$(du_bytes proj)" "$used" &&
	test -d empty
'

test_expect_success 'restore-file of a qtree makes a plain directory; restored into a qtree it counts there' '
	"$SNAPFS" snapshot restore-file "$MNT" s1 /proj --to /projcopy >/dev/null &&
	test -d projcopy &&
	assert_eq "empty home proj" "$(qnames)" &&
	assert_fails getfattr -n trusted.snapfs.qtree projcopy 2>/dev/null &&
	used=$(qfield home used_bytes) &&
	"$SNAPFS" snapshot restore-file "$MNT" s1 /proj/f --to /home/f >/dev/null &&
	assert_eq $((used + 512)) "$(qfield home used_bytes)" &&
	assert_errno EXDEV rename home/f projcopy/f
'

# ------------------------------------------------------------ delete

test_expect_success 'qtree delete refuses a non-empty qtree and changes nothing' '
	state >"$REF/before" &&
	assert_fails "$SNAPFS" qtree delete "$MNT" proj 2>"$REF/err" &&
	assert_one_line "$REF/err" &&
	assert_grep "^snapfs qtree delete: .*proj.*not empty" "$REF/err" &&
	state >"$REF/after" &&
	assert_cmp "$REF/before" "$REF/after"
'

test_expect_success 'qtree delete removes an empty qtree; the snapshot keeps it' '
	ls empty >/dev/null &&
	"$SNAPFS" qtree delete "$MNT" empty >"$REF/out" &&
	assert_grep "deleted qtree empty" "$REF/out" &&
	assert_missing empty &&
	assert_eq "home proj" "$(qnames)" &&
	test -d .snapshot/s1/empty
'

# ------------------------------------------------------------ bad input

test_expect_success 'bad input gets one message "snapfs qtree ...", exit 1, and changes nothing' '
	state >"$REF/before" &&
	refused() {	# refused PATTERN ARGS...
		local pat=$1 rc
		shift
		set +e
		"$SNAPFS" qtree "$@" >"$REF/out" 2>"$REF/err"
		rc=$?
		set -e
		assert_eq 1 "$rc" "exit status of snapfs qtree $*" &&
		assert_one_line "$REF/err" &&
		assert_grep "^snapfs qtree [a-z]*: .*$pat" "$REF/err" &&
		assert_eq "" "$(cat "$REF/out")"
	}
	refused "--security-style .posix.: give unix, ntfs or mixed" create "$MNT" q1 --security-style posix &&
	refused "--quota .12Q.: give a size" create "$MNT" q1 --quota 12Q &&
	refused "--quota .-5M.: give a size" create "$MNT" q1 --quota -5M &&
	refused "--quota .nan.: give a size" create "$MNT" q1 --quota nan &&
	refused "--quota .99999999T.: give a size" create "$MNT" q1 --quota 99999999T &&
	refused "a qtree named .proj. exists already" create "$MNT" proj &&
	refused "qtree .dir.: the name exists already at the volume root (not a qtree)" create "$MNT" dir &&
	refused ".a/b. is not a valid qtree name" create "$MNT" a/b &&
	refused "..snapshot. is not a valid qtree name" create "$MNT" .snapshot &&
	refused ".\.\.. is not a valid qtree name" create "$MNT" .. &&
	refused "no qtree named .nosuch." delete "$MNT" nosuch &&
	refused "no qtree named .nosuch." modify "$MNT" nosuch --quota 1M &&
	refused "no qtree named .dir." delete "$MNT" dir &&
	refused "--security-style .x.: give unix" modify "$MNT" proj --security-style x &&
	refused "nowhere: no such directory" list "$TEST_TMP/nowhere" &&
	state >"$REF/after" &&
	assert_cmp "$REF/before" "$REF/after"
'

test_expect_success 'usage errors exit 2 and change nothing' '
	state >"$REF/before" &&
	for args in "" "create" "create $MNT" "list" "bogus $MNT" \
	            "create $MNT q1 --bogus" "create $MNT q1 --json" \
	            "modify $MNT proj" "delete $MNT proj --quota 1M" \
	            "list $MNT extra" "create $MNT q1 --quota"; do
		set +e
		"$SNAPFS" qtree $args >/dev/null 2>"$REF/err"
		rc=$?
		set -e
		assert_eq 2 "$rc" "exit status of snapfs qtree $args" &&
		assert_one_line "$REF/err"
	done &&
	state >"$REF/after" &&
	assert_cmp "$REF/before" "$REF/after"
'

test_expect_success NOBODY 'only root or the owner of the volume manages qtrees' '
	assert_fails as_nobody "$SNAPFS" qtree create "$MNT" theirs 2>"$REF/err" &&
	assert_grep "permission denied" "$REF/err" &&
	assert_eq "home proj" "$(qnames)"
'

# ------------------------------------------------------------ unmounted

test_expect_success 'on an unmounted store: create, modify, list, delete, and fsck clean' '
	used=$(qfield proj used_bytes) &&
	cd "$TEST_TMP" &&
	vol_umount "$MNT" &&
	"$SNAPFS" qtree create "$STORE" offline --quota 1M --security-style mixed >/dev/null &&
	"$SNAPFS" qtree create "$STORE" gone >/dev/null &&
	"$SNAPFS" qtree modify "$STORE" offline --quota 128K >/dev/null &&
	"$SNAPFS" qtree delete "$STORE" gone >/dev/null &&
	assert_eq "home offline proj" "$(qnames "$STORE")" &&
	assert_eq 131072 "$(qfield offline quota_bytes "$STORE")" &&
	assert_eq mixed "$(qfield offline security_style "$STORE")" &&
	assert_eq "$used" "$(qfield proj used_bytes "$STORE")" &&
	assert_fails "$SNAPFS" qtree create "$STORE" offline 2>"$REF/err" &&
	assert_grep "^snapfs qtree create: .*exists already" "$REF/err" &&
	"$SNAPFS" fsck "$STORE" &&
	vol_mount "$STORE" "$MNT"
'

test_expect_success 'a qtree made offline is enforced once mounted' '
	test -d offline && assert_missing gone &&
	set +e
	dd if="$REF/src" of=offline/f bs=64K count=3 oflag=direct status=none 2>"$REF/dd.err"
	rc=$?
	set -e
	assert_ne 0 "$rc" &&
	assert_grep "error writing .*Disk quota exceeded" "$REF/dd.err" &&
	assert_eq 131072 "$(qfield offline used_bytes)" &&
	head -c 131072 "$REF/src" >"$REF/fit" &&
	assert_cmp "$REF/fit" offline/f
'

test_done
