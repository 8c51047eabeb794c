#!/bin/bash
# A full volume behaves like a trusted filesystem (issue 14): once it is
# full, what the owner needs to clean up still works, as root and as a
# user: snapshot create, list, hold, release and delete, the scheduled
# snapshots of a policy with their retention, rename, chmod, chown, utimes,
# truncate to smaller, unlink and rmdir (the reserve, store.c); a file cut
# short by ENOSPC has the size of what was stored, never a tail of zeros
# (checked after a remount, against the data the writer wrote); a failing
# snapshot create says "creating snapshot NAME: REASON".
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
test_have_prereq ROOT || { say "# skipping: needs root (root fills the volume past the users' share, and the daemon must be root to use the reserve as tested)"; test_done; }

use_policy_clock '2031-01-01 00:00'
vol_create --size 64M || test_bail "cannot create a 64 MiB volume"

MiB=$((1024 * 1024))
FILL="python3 $TEST_DIR/fill.py"
avail() { echo $(( $(stat -f -c '%a' "$MNT") * $(stat -f -c '%S' "$MNT") )); }

test_expect_success 'before filling: files of root and of a user, a snapshot' '
	mkdir -p keep/sub rootdir/sub &&
	rand_file keep/a 300000 && cp keep/a "$REF/a" &&
	rand_file rootdir/part 300000 && cp rootdir/part "$REF/part" &&
	echo one >rootdir/one && echo two >rootdir/two &&
	mkdir user && chown 65534:65534 user &&
	as_nobody sh -c "mkdir user/d user/gone && echo u >user/f && head -c 200000 /dev/urandom >user/big" &&
	cp user/big "$REF/ubig" &&
	rand_file old $((4 * MiB)) && cp old "$REF/old" &&
	"$SNAPFS" snapshot create "$MNT" before >/dev/null
'

test_expect_success 'filling the volume ends in ENOSPC' '
	$FILL --limit 160M fill1 >"$REF/fill1" &&
	cat "$REF/fill1" &&
	assert_grep "ENOSPC" "$REF/fill1" &&
	assert_fails dd if=/dev/urandom of=fill2 bs=64k oflag=direct status=none 2>"$REF/dd.err" &&
	assert_grep "No space left on device" "$REF/dd.err" &&
	sync &&
	assert_le "$(avail)" $((256 * 1024)) "available after the fill"
'

test_expect_success 'partial overwrites on the full volume are refused with ENOSPC or kept' '
	for i in 1 2 3 4 5 6 7 8; do
		r=$(sysc pwrite keep/a $((i * 30000 + 17)) xxxx) || exit 1
		case $r in OK*|ENOSPC) ;; *) echo "pwrite: $r"; exit 1 ;; esac
	done
'

test_expect_success 'overwriting a file the snapshot holds fails for space and keeps its size' '
	rand_file "$REF/new" $((4 * MiB)) &&
	assert_fails dd if="$REF/new" of=old bs=1M conv=notrunc,fsync status=none 2>"$REF/dd.err" &&
	assert_grep "No space left on device" "$REF/dd.err" &&
	assert_eq $((4 * MiB)) "$(stat -c %s old)"
'

test_expect_success 'snapshot create, list, hold, holds and release work on the full volume' '
	"$SNAPFS" snapshot create "$MNT" full1 >"$REF/out" 2>"$REF/err" &&
	assert_eq "snapfs: created snapshot full1 of $MNT" "$(cat "$REF/out")" &&
	"$SNAPFS" snapshot create "$MNT" full2 >/dev/null &&
	assert_eq "before full1 full2" "$(snaps)" &&
	"$SNAPFS" snapshot hold "$MNT" full1 audit >/dev/null &&
	assert_eq audit "$("$SNAPFS" snapshot holds "$MNT" full1)" &&
	"$SNAPFS" snapshot release "$MNT" full1 audit >/dev/null &&
	"$SNAPFS" snapshot rename "$MNT" full2 full2b >/dev/null &&
	assert_eq "before full1 full2b" "$(snaps)"
'

test_expect_success 'root: rename, chmod, chown, utimes, truncate, unlink, rmdir on the full volume' '
	mv rootdir/one rootdir/uno &&
	chmod 600 rootdir/uno && assert_stat rootdir/uno %a 600 &&
	chown 123:456 rootdir/uno && assert_stat rootdir/uno %u:%g 123:456 &&
	touch -d "2001-02-03 04:05:06 UTC" rootdir/uno &&
	assert_stat rootdir/uno %Y 981173106 &&
	truncate -s 100001 rootdir/part &&
	head -c 100001 "$REF/part" >"$REF/part.short" &&
	assert_cmp "$REF/part.short" rootdir/part &&
	rm rootdir/two && rmdir rootdir/sub &&
	assert_missing rootdir/two && assert_missing rootdir/sub
'

test_expect_success NOBODY 'a user: rename, chmod, utimes, truncate, unlink, rmdir on the full volume' '
	as_nobody mv user/f user/g &&
	as_nobody chmod 640 user/g && assert_stat user/g %a 640 &&
	as_nobody touch -d "2002-01-01 00:00:00 UTC" user/g &&
	assert_stat user/g %Y 1009843200 &&
	as_nobody truncate -s 70001 user/big &&
	head -c 70001 "$REF/ubig" >"$REF/ubig.short" &&
	assert_cmp "$REF/ubig.short" user/big &&
	as_nobody rmdir user/gone && as_nobody rm user/g &&
	assert_missing user/gone && assert_missing user/g
'

test_expect_success 'a policy takes its scheduled snapshots on the full volume and prunes them' '
	"$SNAPFS" policy create "$MNT" minutely --schedule every:1 --keep 1 --prefix m >/dev/null &&
	set_clock "2031-01-01 00:01" &&
	wait_snaps "before full1 full2b m.2031-01-01_0001" &&
	set_clock "2031-01-01 00:02" &&
	wait_snaps "before full1 full2b m.2031-01-01_0002" &&
	assert_grep "policy minutely: created snapshot m.2031-01-01_0002" "$STORE/daemon.log" &&
	assert_grep "policy minutely: deleted snapshot m.2031-01-01_0001" "$STORE/daemon.log" &&
	"$SNAPFS" policy delete "$MNT" minutely >/dev/null
'

test_expect_success NOBODY 'a failing snapshot create says "creating snapshot NAME: REASON"' '
	assert_fails as_nobody "$SNAPFS" snapshot create "$MNT" nope 2>"$REF/err" &&
	assert_one_line "$REF/err" &&
	assert_grep "^snapfs snapshot create: $MNT: creating snapshot nope: permission denied" "$REF/err" &&
	assert_eq "before full1 full2b m.2031-01-01_0002" "$(snaps)"
'

test_expect_success REMOUNT 'after a remount a file cut short by ENOSPC is exactly what was stored' '
	vol_remount &&
	$FILL --verify fill1 >"$REF/out" && cat "$REF/out" &&
	assert_grep "prefix=yes" "$REF/out" &&
	assert_le $((40 * MiB)) "$(stat -c %s fill1)" "the fill kept most of the volume"
'

test_expect_success REMOUNT 'the overwritten file has its size and each block old or new, never zeros' '
	assert_eq $((4 * MiB)) "$(stat -c %s old)" &&
	python3 -c "
import sys
old, new, now = (open(p, \"rb\").read() for p in sys.argv[1:])
bs = 64 * 1024
bad = [o for o in range(0, len(now), bs)
       if now[o:o + bs] not in (old[o:o + bs], new[o:o + bs])]
print(\"blocks neither old nor new:\", bad)
sys.exit(1 if bad else 0)
" "$REF/old" "$REF/new" old
'

test_expect_success REMOUNT 'the changes made on the full volume are there after the remount' '
	assert_cmp "$REF/part.short" rootdir/part &&
	assert_cmp "$REF/ubig.short" user/big &&
	assert_cmp "$REF/a" .snapshot/before/keep/a
'

test_expect_success 'deleting the files and the snapshots that hold them gives the space back' '
	rm fill1 fill2 &&
	"$SNAPFS" snapshot delete "$MNT" full1 full2b m.2031-01-01_0002 >/dev/null &&
	sync &&
	assert_le $((40 * MiB)) "$(avail)" "available after the deletes" &&
	rand_file "$REF/again" $((16 * MiB)) &&
	cp "$REF/again" again && sync &&
	assert_cmp "$REF/again" again
'

test_done
