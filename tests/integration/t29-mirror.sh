#!/bin/bash
# Mirror relationships: `snapfs mirror` keeps a destination volume
# following a source snapshot by snapshot.  The destination's snapshots
# list exactly as the source's; mirror retention drops what the source
# dropped, vault retention keeps N per label; quiesce stops transfers; a
# transfer cut in the middle leaves the destination at its last complete
# snapshot and the next update resumes it (show reports what was resent);
# break makes the destination writable, resync says what it discards and
# asks, reverse-resync turns the relationship round and back (fail over,
# fail back); restore, test failover, schedules, peers over TLS and --via
# commands; bad input is refused with one message and nothing changed.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 2G

export SNAPFS_MIRROR_DIR=$TEST_TMP/mirrors
TREELIST=$(cd "$(dirname "$0")" && pwd)/treelist.py
tree() { python3 "$TREELIST" "$1" --usec --holes; }
DST=$TEST_TMP/dst.store DMNT=$TEST_TMP/dst.mnt
# same_as_source STORE [SNAP]: STORE's snapshot SNAP (default: the newest it
# received) lists exactly as the source's
same_as_source() {
	local s=${2:-$(mirror_field "$1" newest_snapshot)}
	tree "$MNT/.snapshot/$s" >"$REF/src.tree" &&
	vol_mount "$1" "$DMNT" &&
	tree "$DMNT/.snapshot/$s" >"$REF/dst.tree" &&
	vol_umount "$DMNT" &&
	diff -u "$REF/src.tree" "$REF/dst.tree" >&2
}

test_expect_success 'set up a source with data, attributes, ACLs, hard links and a user snapshot' '
	mkdir -p dir/sub && echo a >dir/a && ln dir/a dir/sub/a.link &&
	head -c 2000000 /dev/urandom >dir/big && setfacl -m u:65534:rw dir/a &&
	setfattr -n user.DOSATTRIB -v 0x22 dir/a && truncate -s 3M sparse &&
	"$SNAPFS" snapshot create "$MNT" daily.1 >/dev/null &&
	"$SNAPFS" mkfs "$DST" --size 2G >/dev/null
'

test_expect_success 'mirror create refuses a bad policy, a vault without retention and an unknown destination, recording nothing' '
	assert_fails "$SNAPFS" mirror create "$MNT" "$DST" --policy copy 2>"$REF/e1" &&
	assert_grep "not mirror, vault or mirror-vault" "$REF/e1" &&
	assert_fails "$SNAPFS" mirror create "$MNT" "$DST" --policy vault 2>"$REF/e2" &&
	assert_grep "needs --keep" "$REF/e2" &&
	assert_fails "$SNAPFS" mirror create "$MNT" nopeer:/x 2>"$REF/e3" &&
	assert_grep "no peer named" "$REF/e3" &&
	assert_fails "$SNAPFS" mirror create "$MNT" "$MNT" 2>"$REF/e4" &&
	assert_grep "is the source" "$REF/e4" &&
	"$SNAPFS" mirror show >"$REF/show" &&
	assert_grep "no mirror relationships" "$REF/show"
'

test_expect_success 'initialize transfers every source snapshot and a new one; the destination lists as the source' '
	"$SNAPFS" mirror create "$MNT" "$DST" --policy mirror >/dev/null &&
	assert_eq uninitialized "$(mirror_field "$DST" state)" &&
	"$SNAPFS" mirror initialize "$DST" >"$REF/out" &&
	assert_grep "initialized to snapmirror\..*: 2 snapshots" "$REF/out" &&
	assert_eq snapmirrored "$(mirror_field "$DST" state)" &&
	same_as_source "$DST" && same_as_source "$DST" daily.1 &&
	test "$(mirror_field "$DST" bytes_transferred)" -gt 2000000
'

test_expect_success 'a mounted destination is read-only, at its newest snapshot' '
	vol_mount "$DST" "$DMNT" &&
	assert_cmp dir/big "$DMNT/dir/big" &&
	! echo x 2>/dev/null >"$DMNT/new" &&
	ls "$DMNT/.snapshot" >"$REF/ls" &&
	assert_grep "^daily.1$" "$REF/ls" &&
	vol_umount "$DMNT"
'

test_expect_success 'update carries only the change; mirror retention drops what the source dropped, and the older snapmirror snapshot' '
	echo changed >dir/a && rm dir/sub/a.link && mkdir newdir && echo n >newdir/f &&
	"$SNAPFS" snapshot create "$MNT" daily.2 >/dev/null &&
	"$SNAPFS" snapshot delete "$MNT" daily.1 >/dev/null &&
	"$SNAPFS" mirror update "$DST" >"$REF/out" &&
	test "$(mirror_field "$DST" last_transfer_bytes)" -lt 200000 &&
	same_as_source "$DST" && same_as_source "$DST" daily.2 &&
	newest=$(mirror_field "$DST" newest_snapshot) &&
	assert_eq "daily.2 $newest" "$(snaps "$DST")" &&
	assert_eq "daily.2 $newest" "$(snaps "$MNT")" &&
	"$SNAPFS" snapshot list "$MNT" --json | python3 -c "import json,sys; print([s[\"name\"] for s in json.load(sys.stdin) if s[\"held\"]])" >"$REF/held" &&
	assert_grep "$newest" "$REF/held"
'

test_expect_success 'quiesce stops transfers until resume' '
	"$SNAPFS" mirror quiesce "$DST" >/dev/null &&
	assert_eq quiesced "$(mirror_field "$DST" state)" &&
	assert_fails "$SNAPFS" mirror update "$DST" 2>"$REF/err" &&
	assert_grep "quiesced; snapfs mirror resume" "$REF/err" &&
	"$SNAPFS" mirror resume "$DST" >/dev/null &&
	"$SNAPFS" mirror update "$DST" >/dev/null &&
	assert_eq snapmirrored "$(mirror_field "$DST" state)"
'

test_expect_success 'a destination with data of its own, or following another volume, is refused and unchanged' '
	"$SNAPFS" mkfs "$TEST_TMP/other.store" --size 1G >/dev/null &&
	vol_mount "$TEST_TMP/other.store" "$DMNT" && echo mine >"$DMNT/mine" && vol_umount "$DMNT" &&
	"$SNAPFS" mirror create "$MNT" "$TEST_TMP/other.store" >/dev/null &&
	assert_fails "$SNAPFS" mirror initialize "$TEST_TMP/other.store" 2>"$REF/err" &&
	assert_grep "holds data of its own" "$REF/err" &&
	assert_eq "" "$(snaps "$TEST_TMP/other.store")" &&
	"$SNAPFS" mirror delete "$TEST_TMP/other.store" >/dev/null &&
	"$SNAPFS" mkfs "$TEST_TMP/src2.store" --size 1G >/dev/null &&
	"$SNAPFS" snapshot create "$TEST_TMP/src2.store" x >/dev/null &&
	before=$(snaps "$DST") &&
	"$SNAPFS" mirror create "$TEST_TMP/src2.store" second --via "$SNAPFS receive --handshake $DST" >/dev/null &&
	assert_fails "$SNAPFS" mirror initialize second 2>"$REF/err2" &&
	assert_grep "follows volume .*, not $TEST_TMP/src2.store" "$REF/err2" &&
	assert_eq "$before" "$(snaps "$DST")" &&
	"$SNAPFS" mirror delete second >/dev/null
'

test_expect_success 'vault keeps the newest N snapshots per label, longer than the source does' '
	V=$TEST_TMP/vault.store && "$SNAPFS" mkfs "$V" --size 2G >/dev/null &&
	"$SNAPFS" mirror create "$MNT" "$V" --policy vault --keep daily=2 >/dev/null &&
	"$SNAPFS" mirror initialize "$V" >/dev/null &&
	assert_eq "daily.2" "$(snaps "$V")" &&
	assert_fails "$SNAPFS" snapshot delete "$MNT" daily.2 2>"$REF/err" &&
	assert_grep "held by mirror:" "$REF/err" &&
	for i in 3 4 5; do
		echo $i >>dir/a && "$SNAPFS" snapshot create "$MNT" daily.$i >/dev/null &&
		"$SNAPFS" snapshot create "$MNT" hourly.$i >/dev/null &&
		"$SNAPFS" mirror update "$V" >/dev/null &&
		"$SNAPFS" snapshot delete "$MNT" daily.$((i - 1)) >/dev/null || return 1
	done &&
	assert_eq "daily.4 daily.5" "$(snaps "$V")" &&
	same_as_source "$V" daily.5
'

cat >"$TEST_TMP/flaky" <<EOF
#!/bin/sh
# a connection that breaks after 40 MB while $TEST_TMP/cut exists
if [ -e "$TEST_TMP/cut" ]; then
	head -c 40000000 | "$SNAPFS" receive --handshake "\$@"
else
	exec "$SNAPFS" receive --handshake "\$@"
fi
EOF
chmod +x "$TEST_TMP/flaky"
F=$TEST_TMP/flaky.store

test_expect_success 'a --via command carries the transfer' '
	"$SNAPFS" mkfs "$F" --size 2G >/dev/null &&
	"$SNAPFS" mirror create "$MNT" drhost:flaky --via "$TEST_TMP/flaky $F" >/dev/null &&
	"$SNAPFS" mirror initialize drhost:flaky >/dev/null &&
	assert_eq "via $TEST_TMP/flaky $F" "$(mirror_field drhost:flaky transport)" &&
	same_as_source "$F"
'

test_expect_success 'a transfer cut in the middle leaves the destination at its last snapshot; the next update resumes, resending at most a batch' '
	before=$(mirror_field drhost:flaky newest_snapshot) &&
	head -c 60000000 /dev/urandom >dir/huge &&
	touch "$TEST_TMP/cut" &&
	assert_fails "$SNAPFS" mirror update drhost:flaky 2>"$REF/err" &&
	assert_grep "truncated" "$REF/err" &&
	assert_eq "$before" "$(mirror_field drhost:flaky newest_snapshot)" &&
	assert_eq True "$(mirror_field drhost:flaky unfinished)" &&
	vol_mount "$F" "$DMNT" && assert_missing "$DMNT/dir/huge" && vol_umount "$DMNT" &&
	rm "$TEST_TMP/cut" &&
	"$SNAPFS" mirror update drhost:flaky >"$REF/out" &&
	sent=$(mirror_field drhost:flaky last_transfer_bytes) &&
	resent=$(mirror_field drhost:flaky bytes_resent) &&
	# the receiver commits every 32 MiB: what was cut after that is resent
	test "$sent" -lt 40000000 && test "$resent" -gt 0 && test "$resent" -lt 36000000 &&
	same_as_source "$F" && "$SNAPFS" fsck "$F" >/dev/null &&
	"$SNAPFS" mirror delete drhost:flaky >/dev/null && rm dir/huge
'

test_expect_success 'test-failover clones the newest mirrored snapshot writable while mirroring goes on; test-cleanup discards it' '
	"$SNAPFS" mirror test-failover "$DST" >"$REF/out" &&
	assert_grep "writable clone" "$REF/out" &&
	vol_mount "$DST.failover" "$DMNT" && echo test >"$DMNT/trial" &&
	assert_cmp dir/big "$DMNT/dir/big" && vol_umount "$DMNT" &&
	echo more >newdir/g && "$SNAPFS" mirror update "$DST" >/dev/null &&
	same_as_source "$DST" &&
	"$SNAPFS" mirror test-cleanup "$DST" >/dev/null &&
	assert_missing "$DST.failover"
'

test_expect_success 'break makes the destination writable; update then refuses it' '
	"$SNAPFS" mirror break "$DST" >"$REF/out" &&
	assert_grep "broken off" "$REF/out" &&
	assert_eq broken-off "$(mirror_field "$DST" state)" &&
	vol_mount "$DST" "$DMNT" && echo local >"$DMNT/written-at-dr" && vol_umount "$DMNT" &&
	assert_fails "$SNAPFS" mirror update "$DST" 2>"$REF/err" &&
	assert_grep "broken off" "$REF/err"
'

test_expect_success 'resync states what it discards and, unconfirmed, changes nothing; with --yes the destination follows again' '
	assert_fails "$SNAPFS" mirror resync "$DST" </dev/null 2>"$REF/err" &&
	assert_grep "this discards the changes written there" "$REF/err" &&
	assert_grep "not confirmed: nothing was changed" "$REF/err" &&
	vol_mount "$DST" "$DMNT" && test -e "$DMNT/written-at-dr" && vol_umount "$DMNT" &&
	"$SNAPFS" mirror resync "$DST" --yes >/dev/null 2>&1 &&
	assert_eq snapmirrored "$(mirror_field "$DST" state)" &&
	same_as_source "$DST" &&
	vol_mount "$DST" "$DMNT" && assert_missing "$DMNT/written-at-dr" && vol_umount "$DMNT"
'

test_expect_success 'a destination following its source runs no policy: policy run says why and takes nothing, and updates go on' '
	"$SNAPFS" policy create "$DST" hourly --schedule hourly --keep 2 --prefix hourly >/dev/null &&
	before=$(snaps "$DST") &&
	"$SNAPFS" policy run "$DST" --now "2031-01-11 00:31" >"$REF/out" &&
	assert_grep "a mirror destination following its source" "$REF/out" &&
	assert_eq "$before" "$(snaps "$DST")" &&
	"$SNAPFS" mirror update "$DST" >/dev/null &&
	assert_eq snapmirrored "$(mirror_field "$DST" state)" &&
	"$SNAPFS" policy delete "$DST" hourly >/dev/null
'

test_expect_success 'restore: into a new volume (writable), and onto the source by rolling back to a snapshot it still has' '
	"$SNAPFS" mkfs "$TEST_TMP/new.store" --size 1G >/dev/null &&
	V=$TEST_TMP/vault.store &&
	"$SNAPFS" mirror restore "$V" daily.4 --to "$TEST_TMP/new.store" >/dev/null &&
	vol_mount "$V" "$DMNT" && tree "$DMNT/.snapshot/daily.4" >"$REF/a" && vol_umount "$DMNT" &&
	vol_mount "$TEST_TMP/new.store" "$DMNT" && tree "$DMNT" >"$REF/b" &&
	echo w >"$DMNT/writable" && vol_umount "$DMNT" &&
	diff -u "$REF/a" "$REF/b" >&2 &&
	assert_fails "$SNAPFS" mirror restore "$V" daily.4 --to "$MNT" 2>"$REF/err0" &&
	assert_grep "has no snapshot daily.4 and is not empty" "$REF/err0" &&
	echo gone >dir/a &&
	"$SNAPFS" mirror restore "$DST" daily.5 --to "$MNT" >/dev/null &&
	assert_cmp "$MNT/.snapshot/daily.5/dir/a" dir/a &&
	assert_fails "$SNAPFS" mirror restore "$V" daily.4 --to "$TEST_TMP/other.store" 2>"$REF/err" &&
	assert_grep "restore into a new volume" "$REF/err"
'

test_expect_success 'fail over and fail back: break, reverse-resync to the old source (refused into another volume, or unconfirmed, with nothing changed), and round again' '
	echo last >dir/last && "$SNAPFS" mirror update "$DST" >/dev/null &&
	cd "$TEST_TMP" && vol_umount "$MNT" &&
	"$SNAPFS" mirror break "$DST" >/dev/null &&
	vol_mount "$DST" "$DMNT" && echo at-dr >"$DMNT/dr-file" && vol_umount "$DMNT" &&
	vol_mount "$STORE" "$MNT" && echo lost >"$MNT/lost-at-source" && vol_umount "$MNT" &&
	before=$(snaps "$TEST_TMP/new.store") &&
	assert_fails "$SNAPFS" mirror reverse-resync "$DST" "$TEST_TMP/new.store" --yes 2>"$REF/err0" &&
	assert_grep "not .*, the volume $DST was mirrored from" "$REF/err0" &&
	assert_eq "$before" "$(snaps "$TEST_TMP/new.store")" &&
	assert_fails "$SNAPFS" mirror show "$TEST_TMP/new.store" 2>/dev/null &&
	assert_fails "$SNAPFS" mirror reverse-resync "$DST" "$STORE" </dev/null 2>"$REF/err1" &&
	assert_grep "not confirmed: nothing was changed" "$REF/err1" &&
	assert_eq broken-off "$(mirror_field "$DST" state)" &&
	"$SNAPFS" mirror reverse-resync "$DST" "$STORE" --yes >/dev/null 2>"$REF/err" &&
	assert_grep "this discards the changes written there" "$REF/err" &&
	assert_eq snapmirrored "$(mirror_field "$STORE" state)" &&
	vol_mount "$STORE" "$MNT" && assert_eq at-dr "$(cat "$MNT/dr-file")" &&
	assert_missing "$MNT/lost-at-source" && ! echo x 2>/dev/null >"$MNT/ro" &&
	vol_umount "$MNT" &&
	"$SNAPFS" mirror break "$STORE" >/dev/null &&
	"$SNAPFS" mirror reverse-resync "$STORE" "$DST" --yes >/dev/null 2>&1 &&
	vol_mount "$STORE" "$MNT" && cd "$MNT" && echo back >back &&
	"$SNAPFS" mirror update "$DST" >/dev/null &&
	same_as_source "$DST" &&
	assert_eq snapmirrored "$(mirror_field "$DST" state)" &&
	"$SNAPFS" mirror show "$DST" >"$REF/show" && assert_grep "Source: *$STORE" "$REF/show"
'

# frozen COMMAND...: run COMMAND with the mirror clock standing still, at
# the second of $TEST_TMP/frozen (2027-01-15 08:00:00 UTC)
frozen() { SNAPFS_CLOCK_FILE=$TEST_TMP/frozen "$@"; }
echo 1800000000 >"$TEST_TMP/frozen"

# made_name OUTPUT: the snapshot an update or initialize said it went to
made_name() { sed -n "s/^snapfs mirror: .*: [a-z]* to \([^:]*\): .*/\1/p" "$1"; }

test_expect_success 'updates within one second of the clock all succeed, each taking a snapshot of a name never used before' '
	for i in 1 2 3; do
		echo "$i" >"same-second-$i" &&
		frozen "$SNAPFS" mirror update "$DST" >"$REF/same$i" || exit 1
	done &&
	for f in "$REF"/same[123]; do made_name "$f"; done >"$REF/names" &&
	assert_eq 3 "$(sort -u "$REF/names" | grep -c "^snapmirror\.[0-9a-f]*\.2027-01-15_080000\.[0-9]*$")" &&
	assert_eq "$(tail -n 1 "$REF/names")" "$(mirror_field "$DST" newest_snapshot)" &&
	same_as_source "$DST"
'

test_expect_success 'a fail-over and fail-back round within one second of the clock succeeds, and updates go on' '
	echo round >round && frozen "$SNAPFS" mirror update "$DST" >/dev/null &&
	cd "$TEST_TMP" && vol_umount "$MNT" &&
	frozen "$SNAPFS" mirror break "$DST" >/dev/null &&
	frozen "$SNAPFS" mirror reverse-resync "$DST" "$STORE" --yes >/dev/null 2>&1 &&
	frozen "$SNAPFS" mirror break "$STORE" >/dev/null &&
	frozen "$SNAPFS" mirror reverse-resync "$STORE" "$DST" --yes >/dev/null 2>&1 &&
	vol_mount "$STORE" "$MNT" && cd "$MNT" &&
	for i in 1 2; do
		echo "$i" >>round && frozen "$SNAPFS" mirror update "$DST" >/dev/null || exit 1
	done &&
	same_as_source "$DST" &&
	assert_eq snapmirrored "$(mirror_field "$DST" state)"
'

test_expect_success 'update --due runs a scheduled relationship once per slot of the clock, the first time as its baseline' '
	echo 1700000000 >"$TEST_TMP/clock" &&
	"$SNAPFS" mkfs "$TEST_TMP/sched.store" --size 1G >/dev/null &&
	"$SNAPFS" mirror create "$MNT" "$TEST_TMP/sched.store" --schedule every:10 >/dev/null &&
	SNAPFS_CLOCK_FILE=$TEST_TMP/clock "$SNAPFS" mirror update --due >"$REF/o1" &&
	assert_grep "initialized to snapmirror" "$REF/o1" &&
	SNAPFS_CLOCK_FILE=$TEST_TMP/clock "$SNAPFS" mirror update --due >"$REF/o2" &&
	! test -s "$REF/o2" &&
	echo 1700000600 >"$TEST_TMP/clock" && echo tick >tick &&
	SNAPFS_CLOCK_FILE=$TEST_TMP/clock "$SNAPFS" mirror update --due >"$REF/o3" &&
	assert_grep "updated to snapmirror" "$REF/o3" &&
	same_as_source "$TEST_TMP/sched.store"
'

SRV=$TEST_TMP/host-srv CLI=$TEST_TMP/host-cli
stop_server() { [ -s "$SRV/serve.pid" ] && kill -TERM "$(cat "$SRV/serve.pid")" 2>/dev/null; return 0; }
test_at_exit stop_server
test_expect_success 'a peer destination: created once the peer grants receive (the refusal names the grant); the transfer runs over TLS with the peer'"'"'s key; a wrong passphrase is refused' '
	SNAPFS_CONFIG_DIR=$SRV "$SNAPFS" peer passphrase prod >"$REF/pass" 2>/dev/null &&
	SNAPFS_CONFIG_DIR=$SRV "$SNAPFS" peer serve --listen 127.0.0.1:0 >"$REF/serve" &&
	port=$(sed -n "s/^listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p" "$REF/serve") &&
	test -n "$port" &&
	SNAPFS_CONFIG_DIR=$CLI "$SNAPFS" peer create dr "127.0.0.1:$port" <"$REF/pass" >/dev/null &&
	P=$TEST_TMP/peer.store && "$SNAPFS" mkfs "$P" --size 1G >/dev/null &&
	assert_fails env SNAPFS_CONFIG_DIR=$CLI "$SNAPFS" mirror create "$MNT" "dr:$P" 2>"$REF/err" &&
	assert_one_line "$REF/err" &&
	assert_grep "^snapfs mirror: dr:$P: peer dr: the peer refused the command: peer prod has no grant on this host: it may only connect (its administrator grants with: snapfs peer allow prod send|receive VOLUME); nothing was recorded$" "$REF/err" &&
	assert_fails "$SNAPFS" mirror show "dr:$P" 2>"$REF/err2" &&
	assert_grep "no mirror relationship has this destination" "$REF/err2" &&
	SNAPFS_CONFIG_DIR=$SRV "$SNAPFS" peer allow prod send "$MNT" >/dev/null &&
	assert_fails env SNAPFS_CONFIG_DIR=$CLI "$SNAPFS" mirror create "$MNT" "dr:$P" 2>"$REF/err" &&
	assert_grep "peer prod has no receive grant for $P on this host (its administrator grants it with: snapfs peer allow prod receive $P)" "$REF/err" &&
	SNAPFS_CONFIG_DIR=$SRV "$SNAPFS" peer allow prod receive "$P" >/dev/null &&
	SNAPFS_CONFIG_DIR=$CLI "$SNAPFS" mirror create "$MNT" "dr:$P" >"$REF/out" &&
	assert_grep "uses this host.s receive grant for $P on peer dr" "$REF/out" &&
	SNAPFS_CONFIG_DIR=$CLI "$SNAPFS" mirror initialize "dr:$P" >/dev/null &&
	same_as_source "$P" &&
	echo peer >peerfile &&
	SNAPFS_CONFIG_DIR=$CLI "$SNAPFS" mirror update "dr:$P" >/dev/null &&
	same_as_source "$P" &&
	before=$(snaps "$P") &&
	SNAPFS_CONFIG_DIR=$CLI "$SNAPFS" peer delete dr >/dev/null &&
	echo AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA | SNAPFS_CONFIG_DIR=$CLI "$SNAPFS" peer create dr "127.0.0.1:$port" >/dev/null &&
	assert_fails env SNAPFS_CONFIG_DIR=$CLI "$SNAPFS" mirror update "dr:$P" 2>"$REF/err" &&
	assert_grep "authentication failed" "$REF/err" &&
	assert_eq "$before" "$(snaps "$P")"
'

test_expect_success 'delete ends the relationship: the source'"'"'s hold and snapmirror snapshots go, the destination keeps its snapshots' '
	kept=$(snaps "$DST") && newest=$(mirror_field "$DST" newest_snapshot) &&
	"$SNAPFS" mirror delete "$DST" >/dev/null &&
	assert_eq "$kept" "$(snaps "$DST")" &&
	! snaps "$MNT" | grep -q "${newest%.*}" &&
	assert_fails "$SNAPFS" mirror show "$DST" 2>"$REF/err" &&
	assert_grep "no mirror relationship" "$REF/err"
'

test_expect_success 'every destination is fsck clean' '
	for s in "$DST" "$TEST_TMP/vault.store" "$TEST_TMP/new.store" "$TEST_TMP/peer.store"; do
		"$SNAPFS" fsck "$s" >/dev/null || return 1
	done
'

test_done
