#!/bin/bash
# Consistency group mirrors: two source volumes mirrored as one group.
# Every update takes one group snapshot of both sources; each destination
# receives it held back and exposes it only once both have it, so the
# destinations never show snapshots of different times: a member that
# fails leaves both at the group's previous snapshot (mounted or not, in
# the tree and in .snapshot), and the next update goes on from what
# arrived.  Held-back receives by hand (receive --hold-back, --publish);
# quiesce, break, resync, schedules and delete act on the whole group;
# bad group definitions are refused with one message and nothing recorded;
# a group on a peer needs the peer's receive grant for every member.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 1G

export SNAPFS_MIRROR_DIR=$TEST_TMP/mirrors
TREELIST=$(cd "$(dirname "$0")" && pwd)/treelist.py
tree() { python3 "$TREELIST" "$1" --usec --holes; }
S2=$TEST_TMP/src2.store S2MNT=$TEST_TMP/src2.mnt
G1=$TEST_TMP/g1.store G2=$TEST_TMP/g2.store
M1=$TEST_TMP/g1.mnt M2=$TEST_TMP/g2.mnt
# shows MOUNT SRCMNT SNAP: the mounted destination lists as SRCMNT's SNAP
shows() {
	tree "$2/.snapshot/$3" >"$REF/src.tree" &&
	tree "$1" >"$REF/dst.tree" &&
	diff -u "$REF/src.tree" "$REF/dst.tree" >&2
}
# block STORE: hold STORE's lock (an offline receive waiting for input)
block() {
	mkfifo "$TEST_TMP/blockfifo" &&
	{ "$SNAPFS" receive "$1" <"$TEST_TMP/blockfifo" >/dev/null 2>&1 & } &&
	exec 4>"$TEST_TMP/blockfifo" &&
	# until the receive holds the store's lock (read from /proc/locks:
	# trying the lock ourselves could make the receive find it taken)
	local ino
	for _ in $(seq 200); do
		ino=$(stat -c %i "$1/lock" 2>/dev/null) &&
			grep -q "^[0-9]*: FLOCK .*:$ino " /proc/locks && return 0
		sleep 0.05
	done
	say "block: the receive never took $1/lock" >&2
	return 1
}
unblock() { exec 4>&- 2>/dev/null; wait; rm -f "$TEST_TMP/blockfifo"; }
test_at_exit unblock
stop_s2() { mountpoint -q "$S2MNT" && "$SNAPFS" umount "$S2MNT"; return 0; }
test_at_exit stop_s2

test_expect_success 'set up two source volumes with data, and two empty destinations' '
	"$SNAPFS" mkfs "$S2" --size 1G >/dev/null && vol_mount "$S2" "$S2MNT" &&
	echo db >data && head -c 300000 /dev/urandom >table &&
	echo log >"$S2MNT/log" && mkdir "$S2MNT/wal" && echo 1 >"$S2MNT/wal/000001" &&
	"$SNAPFS" mkfs "$G1" --size 1G >/dev/null && "$SNAPFS" mkfs "$G2" --size 1G >/dev/null
'

test_expect_success 'a group of another policy, with --via, with unpaired or repeated members is refused and nothing recorded' '
	assert_fails "$SNAPFS" mirror create "$MNT,$S2MNT" "$G1,$G2" --group app --policy vault --keep daily=2 2>"$REF/e1" &&
	assert_grep "a consistency group mirrors" "$REF/e1" &&
	assert_fails "$SNAPFS" mirror create "$MNT,$S2MNT" "$G1" --group app 2>"$REF/e2" &&
	assert_grep "2 sources but 1 destinations" "$REF/e2" &&
	assert_fails "$SNAPFS" mirror create "$MNT,$MNT" "$G1,$G2" --group app 2>"$REF/e3" &&
	assert_grep "is given twice" "$REF/e3" &&
	assert_fails "$SNAPFS" mirror create "$MNT,$S2MNT" "a:b,c:d" --group app --via "ssh x" 2>"$REF/e4" &&
	assert_grep "one --via command cannot reach several" "$REF/e4" &&
	"$SNAPFS" mirror show >"$REF/show" &&
	assert_grep "no mirror relationships" "$REF/show"
'

test_expect_success 'initialize brings both destinations to one group snapshot of both sources' '
	"$SNAPFS" mirror create "$MNT,$S2MNT" "$G1,$G2" --group app >"$REF/out" &&
	assert_grep "group app created: 2 members" "$REF/out" &&
	"$SNAPFS" mirror initialize "$G2" >"$REF/out" &&
	assert_grep "group app: 2 members at snapmirror\." "$REF/out" &&
	s=$(mirror_field "$G1" newest_snapshot) &&
	assert_eq "$s" "$(mirror_field "$G2" newest_snapshot)" &&
	assert_eq app "$(mirror_field "$G1" group)" &&
	"$SNAPFS" snapshot list "$MNT" --json | grep -q "\"group\":{" &&
	vol_mount "$G1" "$M1" && vol_mount "$G2" "$M2" &&
	shows "$M1" "$MNT" "$s" && shows "$M2" "$S2MNT" "$s"
'

test_expect_success 'a member that fails leaves both destinations exposing the previous group snapshot, mounted, in the tree and in .snapshot' '
	before=$(mirror_field "$G1" newest_snapshot) &&
	head -c 3000000 /dev/urandom >table && echo 2 >"$S2MNT/wal/000002" &&
	vol_umount "$M2" && block "$G2" &&
	assert_fails "$SNAPFS" mirror update "$G1" >"$REF/out" 2>"$REF/err" &&
	unblock &&
	assert_grep "did not receive .*; no member exposes it" "$REF/err" &&
	new=$(mirror_field "$G1" newest_snapshot) && test "$new" != "$before" &&
	shows "$M1" "$MNT" "$before" &&
	ls "$M1/.snapshot" >"$REF/ls1" && assert_grep "^$before$" "$REF/ls1" &&
	! grep -q "^$new$" "$REF/ls1" &&
	vol_mount "$G2" "$M2" && shows "$M2" "$S2MNT" "$before" && vol_umount "$M2"
'

test_expect_success 'the next update sends on from what arrived, and both expose the new group snapshot together' '
	"$SNAPFS" mirror update "$G1" >"$REF/out" &&
	assert_grep "group app: 2 members at" "$REF/out" &&
	s=$(mirror_field "$G1" newest_snapshot) &&
	assert_eq "$s" "$(mirror_field "$G2" newest_snapshot)" &&
	test "$(mirror_field "$G1" last_transfer_bytes)" -lt 1000000 &&
	shows "$M1" "$MNT" "$s" &&
	vol_mount "$G2" "$M2" && shows "$M2" "$S2MNT" "$s" && vol_umount "$M2" &&
	assert_cmp table "$M1/table" &&
	# only the newest group snapshot stays at the sources and destinations
	assert_eq "$s" "$(snaps "$MNT")" && assert_eq "$s" "$(snaps "$S2MNT")" &&
	assert_eq "$s" "$(snaps "$G2")"
'

test_expect_success 'receive --hold-back takes a snapshot without exposing it (nor lets it be deleted); --publish exposes it, and changes nothing on a writable volume; break goes back to what was exposed' '
	vol_umount "$M1" &&
	H=$TEST_TMP/hb.store && "$SNAPFS" mkfs "$H" --size 1G >/dev/null &&
	"$SNAPFS" snapshot create "$MNT" hb.1 >/dev/null &&
	"$SNAPFS" send "$MNT" hb.1 | "$SNAPFS" receive "$H" --hold-back &&
	assert_fails "$SNAPFS" mount "$H" "$M1" 2>"$REF/err" &&
	assert_grep "baseline has not reached every member" "$REF/err" &&
	"$SNAPFS" receive "$H" --publish </dev/null &&
	vol_mount "$H" "$M1" && shows "$M1" "$MNT" hb.1 &&
	echo after >data && "$SNAPFS" snapshot create "$MNT" hb.2 >/dev/null &&
	"$SNAPFS" send "$MNT" hb.2 --from hb.1 | "$SNAPFS" receive "$H" --hold-back &&
	shows "$M1" "$MNT" hb.1 && ! test -e "$M1/.snapshot/hb.2" &&
	vol_umount "$M1" && vol_mount "$H" "$M1" && shows "$M1" "$MNT" hb.1 && vol_umount "$M1" &&
	assert_fails "$SNAPFS" snapshot delete "$H" hb.1 2>"$REF/err" &&
	assert_eq "hb.1 hb.2" "$(snaps "$H")" &&
	"$SNAPFS" mirror break "$H" >/dev/null &&
	assert_eq hb.1 "$(snaps "$H")" &&
	vol_mount "$H" "$M1" && assert_eq db "$(cat "$M1/data")" &&
	echo written >"$M1/dr" && "$SNAPFS" receive "$H" --publish </dev/null &&
	assert_eq written "$(cat "$M1/dr")" && echo again >"$M1/dr2" && vol_umount "$M1" &&
	"$SNAPFS" snapshot delete "$MNT" hb.1 >/dev/null && "$SNAPFS" snapshot delete "$MNT" hb.2 >/dev/null
'

test_expect_success 'quiesce and resume act on every member' '
	"$SNAPFS" mirror quiesce "$G2" >/dev/null &&
	assert_eq quiesced "$(mirror_field "$G1" state)" &&
	assert_fails "$SNAPFS" mirror update "$G1" 2>"$REF/err" &&
	assert_grep "is quiesced" "$REF/err" &&
	"$SNAPFS" mirror resume "$G1" >/dev/null &&
	assert_eq snapmirrored "$(mirror_field "$G2" state)"
'

test_expect_success 'break makes every member writable at the group snapshot, discarding what was held back; resync makes them follow again' '
	s=$(mirror_field "$G1" newest_snapshot) &&
	echo later >"$S2MNT/log" && block "$G2" &&
	assert_fails "$SNAPFS" mirror update "$G1" 2>/dev/null && unblock &&
	"$SNAPFS" mirror break "$G1" >"$REF/out" &&
	assert_eq 2 "$(grep -c "broken off" "$REF/out")" &&
	assert_eq broken-off "$(mirror_field "$G1" state)" &&
	assert_eq broken-off "$(mirror_field "$G2" state)" &&
	assert_eq "$s" "$(snaps "$G1")" && assert_eq "$s" "$(snaps "$G2")" &&
	vol_mount "$G1" "$M1" && echo dr >"$M1/written-at-dr" && vol_umount "$M1" &&
	assert_fails "$SNAPFS" mirror update "$G1" 2>"$REF/err" &&
	assert_grep "broken off" "$REF/err" &&
	"$SNAPFS" mirror resync "$G1" --yes >/dev/null 2>"$REF/err" &&
	assert_grep "discards the changes written there" "$REF/err" &&
	s=$(mirror_field "$G1" newest_snapshot) &&
	assert_eq "$s" "$(mirror_field "$G2" newest_snapshot)" &&
	vol_mount "$G1" "$M1" && shows "$M1" "$MNT" "$s" && assert_missing "$M1/written-at-dr" && vol_umount "$M1" &&
	vol_mount "$G2" "$M2" && shows "$M2" "$S2MNT" "$s" && assert_eq later "$(cat "$M2/log")" && vol_umount "$M2"
'

test_expect_success 'group updates within one second of the clock all succeed, each group snapshot named anew' '
	echo 1800000000 >"$TEST_TMP/frozen" &&
	for i in 1 2 3; do
		echo "$i" >>"$S2MNT/log" &&
		SNAPFS_CLOCK_FILE=$TEST_TMP/frozen "$SNAPFS" mirror update "$G1" >"$REF/same$i" || exit 1
	done &&
	sed -n "s/^snapfs mirror: group app: 2 members at //p" "$REF"/same[123] >"$REF/names" &&
	assert_eq 3 "$(sort -u "$REF/names" | grep -c "^snapmirror\.[0-9a-f]*\.2027-01-15_080000\.[0-9]*$")" &&
	s=$(tail -n 1 "$REF/names") &&
	assert_eq "$s" "$(mirror_field "$G1" newest_snapshot)" &&
	assert_eq "$s" "$(mirror_field "$G2" newest_snapshot)" &&
	vol_mount "$G2" "$M2" && shows "$M2" "$S2MNT" "$s" && vol_umount "$M2"
'

test_expect_success 'update --due runs a scheduled group once per slot' '
	"$SNAPFS" mkfs "$TEST_TMP/d1.store" --size 1G >/dev/null &&
	"$SNAPFS" mkfs "$TEST_TMP/d2.store" --size 1G >/dev/null &&
	"$SNAPFS" mirror create "$MNT,$S2MNT" "$TEST_TMP/d1.store,$TEST_TMP/d2.store" --group nightly --schedule every:10 >/dev/null &&
	echo 1700000000 >"$TEST_TMP/clock" &&
	SNAPFS_CLOCK_FILE=$TEST_TMP/clock "$SNAPFS" mirror update --due >"$REF/o1" &&
	assert_eq 1 "$(grep -c "group nightly: 2 members at" "$REF/o1")" &&
	SNAPFS_CLOCK_FILE=$TEST_TMP/clock "$SNAPFS" mirror update --due >"$REF/o2" &&
	! test -s "$REF/o2" &&
	assert_eq "$(mirror_field "$TEST_TMP/d1.store" newest_snapshot)" "$(mirror_field "$TEST_TMP/d2.store" newest_snapshot)"
'

test_expect_success 'delete ends every member: the sources keep no snapmirror snapshot of the group, the destinations keep theirs' '
	s=$(mirror_field "$G1" newest_snapshot) &&
	"$SNAPFS" mirror delete "$G2" >"$REF/out" &&
	assert_eq 2 "$(grep -c deleted "$REF/out")" &&
	assert_fails "$SNAPFS" mirror show "$G1" 2>/dev/null &&
	! snaps "$MNT" | grep -q "$s" && ! snaps "$S2MNT" | grep -q "$s" &&
	assert_eq "$s" "$(snaps "$G1")" && assert_eq "$s" "$(snaps "$G2")" &&
	"$SNAPFS" mirror delete "$TEST_TMP/d1.store" >/dev/null
'

SRV=$TEST_TMP/host-srv P1=$TEST_TMP/p1.store P2=$TEST_TMP/p2.store
stop_server() { [ -s "$SRV/serve.pid" ] && kill -TERM "$(cat "$SRV/serve.pid")" 2>/dev/null; return 0; }
test_at_exit stop_server
test_expect_success 'a group on a peer: refused, naming the grant, until the peer grants every member; then mirrored through it' '
	export SNAPFS_CONFIG_DIR=$TEST_TMP/host-cli &&
	"$SNAPFS" mkfs "$P1" --size 1G >/dev/null && "$SNAPFS" mkfs "$P2" --size 1G >/dev/null &&
	srv() { SNAPFS_CONFIG_DIR=$SRV "$SNAPFS" "$@"; } &&
	srv peer passphrase prod >"$REF/pass" 2>/dev/null &&
	srv peer allow prod receive "$P1" >/dev/null &&
	port=$(peer_server_start "$SRV" serve) && test -n "$port" &&
	"$SNAPFS" peer create dr "127.0.0.1:$port" <"$REF/pass" >/dev/null &&
	{ "$SNAPFS" mirror create "$MNT,$S2MNT" "dr:$P1,dr:$P2" --group peered 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "^snapfs mirror: dr:$P2: .*peer prod has no receive grant for $P2 on this host (its administrator grants it with: snapfs peer allow prod receive $P2); nothing was recorded$" "$REF/err" &&
	"$SNAPFS" mirror show >"$REF/show" && assert_grep "no mirror relationships" "$REF/show" &&
	srv peer allow prod receive "$P2" >/dev/null &&
	"$SNAPFS" mirror create "$MNT,$S2MNT" "dr:$P1,dr:$P2" --group peered >/dev/null &&
	"$SNAPFS" mirror initialize "dr:$P2" >"$REF/out" &&
	assert_grep "group peered: 2 members at snapmirror\." "$REF/out" &&
	echo more >data && "$SNAPFS" mirror update "dr:$P1" >/dev/null &&
	s=$(mirror_field "dr:$P1" newest_snapshot) &&
	assert_eq "$s" "$(snaps "$P1")" && assert_eq "$s" "$(snaps "$P2")" &&
	vol_mount "$P1" "$M1" && assert_eq more "$(cat "$M1/data")" && vol_umount "$M1" &&
	"$SNAPFS" mirror delete "dr:$P1" >/dev/null &&
	assert_grep "peer prod: refused .receive --handshake $P2.: " "$TEST_TMP/serve.log"
'

test_expect_success 'every destination is fsck clean' '
	for v in "$G1" "$G2" "$TEST_TMP/hb.store" "$TEST_TMP/d1.store" "$TEST_TMP/d2.store" "$P1" "$P2"; do
		"$SNAPFS" fsck "$v" >/dev/null || return 1
	done
'

test_done
