#!/bin/bash
# Snapshot policies: named schedules with retention.  The mounted daemon
# runs due policies by itself; its clock is a file the test rewrites
# (SNAPFS_CLOCK_FILE, read at every tick of SNAPFS_POLICY_TICK_MS), so
# time moves without sleeping and the test waits (with a timeout) for what
# a user would see: the snapshot appearing.  Retention keeps the newest
# --keep snapshots of the policy and deletes the older ones except held
# ones; a volume that missed several slots takes one snapshot; deleting a
# policy stops it; `policy run --now` does the same on an unmounted
# volume; bad input gets one message and changes nothing.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }

use_policy_clock '2031-01-01 00:00'
vol_create --size 1G

at() { date -u -d "$1" +%s; }	# at 'YYYY-MM-DD HH:MM': seconds since the epoch
Q="'"
policies() { "$SNAPFS" policy list "${1:-$MNT}" --json; }
# NAME:LAST_RUN of every policy
last_runs() { policies "$@" | python3 -c 'import json,sys; print(" ".join("%s:%s" % (p["name"], p["last_run"]) for p in json.load(sys.stdin)))'; }
# the volume's state, to show that a refused command changed nothing
state() { policies && snaps; }

test_expect_success 'bad schedules, keeps, prefixes and names are refused with one message each' '
	state >"$REF/before" &&
	check_refused() {	# check_refused PATTERN ARGS...
		local pat=$1; shift
		assert_fails "$SNAPFS" policy create "$MNT" "$@" 2>"$REF/err" &&
		assert_one_line "$REF/err" &&
		assert_grep "$pat" "$REF/err"
	}
	check_refused "--schedule .fortnightly. is not a schedule; give every:N" \
		nightly --schedule fortnightly --keep 7 &&
	check_refused "--schedule .daily@25:00. is not a schedule" \
		nightly --schedule daily@25:00 --keep 7 &&
	check_refused "--schedule .monthly@31. is not a schedule" \
		nightly --schedule monthly@31 --keep 7 &&
	check_refused "--schedule .every:0. is not a schedule" \
		nightly --schedule every:0 --keep 7 &&
	check_refused "--keep .0.: give the number of snapshots to keep, 1 to" \
		nightly --schedule daily --keep 0 &&
	check_refused "--keep .seven.: give the number" \
		nightly --schedule daily --keep seven &&
	check_refused "--keep .-3.: give the number" \
		nightly --schedule daily --keep -3 &&
	check_refused "--prefix .a/b. is not a valid snapshot name prefix" \
		nightly --schedule daily --keep 7 --prefix a/b &&
	check_refused "--prefix .. is not a valid snapshot name prefix" \
		nightly --schedule daily --keep 7 --prefix "" &&
	check_refused ".a b. is not a valid policy name" \
		"a b" --schedule daily --keep 7 &&
	check_refused "give --schedule and --keep" nightly --keep 7 &&
	check_refused "unknown option .--every." nightly --every 5 &&
	state >"$REF/after" &&
	assert_cmp "$REF/before" "$REF/after" &&
	assert_eq "[]" "$(policies)"
'

test_expect_success 'policy create, then list shows it (text and --json)' '
	"$SNAPFS" snapshot create "$MNT" daily.manual &&
	"$SNAPFS" policy create "$MNT" nightly --schedule daily@00:10 --keep 3 --prefix daily >out &&
	assert_eq "snapfs: created policy nightly of $MNT: daily@00:10, keeping 3 snapshots named daily.YYYY-MM-DD_HHMM" "$(cat out)" &&
	"$SNAPFS" policy list "$MNT" >out &&
	assert_eq "NAME SCHEDULE KEEP PREFIX SNAPSHOTS LAST RUN NEXT RUN" "$(head -1 out | tr -s " ")" &&
	assert_eq "nightly daily@00:10 3 daily 0 never 2031-01-01 00:10" "$(sed -n 2p out | tr -s " ")" &&
	assert_eq "[{\"name\":\"nightly\",\"schedule\":\"daily@00:10\",\"keep\":3,\"prefix\":\"daily\",\"label\":\"daily\",\"snapshots\":0,\"created\":$(at "2031-01-01 00:00"),\"last_run\":null,\"next_run\":$(at "2031-01-01 00:10"),\"due\":false}]" "$(policies)"
'

test_expect_success 'a duplicate name, a prefix in use and an unknown policy are refused' '
	state >"$REF/before" &&
	assert_fails "$SNAPFS" policy create "$MNT" nightly --schedule hourly --keep 2 --prefix other 2>err &&
	assert_eq "snapfs policy create: $MNT: a policy named ${Q}nightly${Q} already exists" "$(cat err)" &&
	assert_fails "$SNAPFS" policy create "$MNT" other --schedule hourly --keep 2 --prefix daily 2>err &&
	assert_eq "snapfs policy create: $MNT: policy ${Q}nightly${Q} already uses the prefix ${Q}daily${Q}" "$(cat err)" &&
	assert_fails "$SNAPFS" policy delete "$MNT" nosuch 2>err &&
	assert_eq "snapfs policy delete: $MNT: no policy named ${Q}nosuch${Q}" "$(cat err)" &&
	state >"$REF/after" &&
	assert_cmp "$REF/before" "$REF/after"
'

test_expect_success 'the daemon takes the snapshot at the scheduled time, named after it' '
	set_clock "2031-01-01 00:09" &&
	set_clock "2031-01-01 00:10" &&
	wait_snaps "daily.manual daily.2031-01-01_0010" &&
	assert_grep "policy nightly: created snapshot daily.2031-01-01_0010" "$STORE/daemon.log"
'

test_expect_success 'retention keeps the newest --keep and deletes the oldest; other names are left alone' '
	set_clock "2031-01-02 00:10" &&
	wait_snaps "daily.manual daily.2031-01-01_0010 daily.2031-01-02_0010" &&
	set_clock "2031-01-03 00:11" &&
	wait_snaps "daily.manual daily.2031-01-01_0010 daily.2031-01-02_0010 daily.2031-01-03_0010" &&
	set_clock "2031-01-04 00:10" &&
	wait_snaps "daily.manual daily.2031-01-02_0010 daily.2031-01-03_0010 daily.2031-01-04_0010" &&
	assert_grep "policy nightly: deleted snapshot daily.2031-01-01_0010" "$STORE/daemon.log"
'

test_expect_success 'a held snapshot is never deleted by retention, and the run reports it' '
	"$SNAPFS" snapshot hold "$MNT" daily.2031-01-02_0010 dump &&
	set_clock "2031-01-05 00:10" &&
	wait_snaps "daily.manual daily.2031-01-02_0010 daily.2031-01-03_0010 daily.2031-01-04_0010 daily.2031-01-05_0010" &&
	assert_grep "policy nightly: kept held snapshot daily.2031-01-02_0010" "$STORE/daemon.log" &&
	"$SNAPFS" snapshot release "$MNT" daily.2031-01-02_0010 dump &&
	set_clock "2031-01-06 00:10" &&
	wait_snaps "daily.manual daily.2031-01-04_0010 daily.2031-01-05_0010 daily.2031-01-06_0010"
'

test_expect_success 'after missing several slots the daemon takes one snapshot, for the latest' '
	set_clock "2031-01-10 09:00" &&
	wait_snaps "daily.manual daily.2031-01-05_0010 daily.2031-01-06_0010 daily.2031-01-10_0010" &&
	"$SNAPFS" policy list "$MNT" >out &&
	assert_eq "nightly daily@00:10 3 daily 3 2031-01-10 00:10 2031-01-11 00:10" "$(sed -n 2p out | tr -s " ")"
'

test_expect_success 'policy delete stops the policy and keeps its snapshots' '
	"$SNAPFS" policy create "$MNT" quarter --schedule every:15 --keep 2 --prefix q >/dev/null &&
	"$SNAPFS" policy delete "$MNT" nightly >out &&
	assert_eq "snapfs: deleted policy nightly of $MNT (its 3 snapshots stay)" "$(cat out)" &&
	set_clock "2031-01-11 00:20" &&
	# the quarter-hourly snapshot shows that the daemon ran at this time
	wait_snaps "daily.manual daily.2031-01-05_0010 daily.2031-01-06_0010 daily.2031-01-10_0010 q.2031-01-11_0015" &&
	assert_eq "quarter:$(at "2031-01-11 00:15")" "$(last_runs)"
'

test_expect_success 'policy run on a mounted volume runs what is due as of --now, through the daemon' '
	"$SNAPFS" policy run "$MNT" --now "2031-01-11 00:31" >out &&
	assert_eq "snapfs: policy quarter: created snapshot q.2031-01-11_0030" "$(cat out)" &&
	"$SNAPFS" policy run "$MNT" --now "2031-01-11 00:31" >out &&
	assert_eq "snapfs: $MNT: no policy is due" "$(cat out)"
'

test_expect_success 'unmounted: policy run --now takes and prunes the due snapshots offline' '
	cd "$TEST_TMP" &&
	vol_umount "$MNT" &&
	"$SNAPFS" policy create "$STORE" hourly --schedule hourly@05 --keep 2 --prefix h \
		--now "2031-02-01 08:00" >/dev/null &&
	"$SNAPFS" policy run "$STORE" --now "2031-02-01 10:00" >out &&
	assert_eq "snapfs: policy hourly: created snapshot h.2031-02-01_0905
snapfs: policy quarter: created snapshot q.2031-02-01_1000
snapfs: policy quarter: deleted snapshot q.2031-01-11_0015" "$(cat out)" &&
	"$SNAPFS" policy run "$STORE" --now "2031-02-01 10:05" >out &&
	assert_grep "created snapshot h.2031-02-01_1005" out &&
	"$SNAPFS" snapshot hold "$STORE" h.2031-02-01_0905 keep &&
	"$SNAPFS" policy run "$STORE" --now "2031-02-01 11:05" >out &&
	assert_grep "^snapfs: policy hourly: created snapshot h.2031-02-01_1105$" out &&
	assert_grep "^snapfs: policy hourly: kept snapshot h.2031-02-01_0905 beyond --keep: it is held" out &&
	assert_eq "h.2031-02-01_0905 h.2031-02-01_1005 h.2031-02-01_1105" \
		"$(snaps "$STORE" | tr " " "\n" | grep "^h\." | tr "\n" " " | sed "s/ $//")" &&
	"$SNAPFS" policy run "$STORE" --now "2031-02-01 11:05" >out &&
	assert_eq "snapfs: $STORE: no policy is due" "$(cat out)" &&
	"$SNAPFS" policy list "$STORE" --now "2031-02-01 11:05" >out &&
	assert_eq "hourly hourly@05 2 h 3 2031-02-01 11:05 2031-02-01 12:05" "$(sed -n 2p out | tr -s " ")" &&
	"$SNAPFS" policy list "$STORE" --now "2031-02-01 12:06" >out &&
	assert_eq "hourly hourly@05 2 h 3 2031-02-01 11:05 2031-02-01 12:05 (due)" "$(sed -n 2p out | tr -s " ")"
'

test_expect_success 'unmounted: bad input is refused and changes nothing' '
	cd "$TEST_TMP" &&
	sha256sum "$STORE/data.mdb" >"$REF/before" &&
	assert_fails "$SNAPFS" policy create "$STORE" hourly --schedule daily --keep 1 --prefix x 2>err &&
	assert_grep "a policy named .hourly. already exists" err &&
	assert_fails "$SNAPFS" policy run "$STORE" --now "yesterday" 2>err &&
	assert_one_line err &&
	assert_grep "give a time as .YYYY-MM-DD HH:MM." err &&
	assert_fails "$SNAPFS" policy delete "$STORE" nosuch 2>err &&
	assert_grep "no policy named .nosuch." err &&
	assert_fails "$SNAPFS" policy frob "$STORE" 2>err &&
	assert_grep "unknown subcommand .frob." err &&
	sha256sum "$STORE/data.mdb" >"$REF/after" &&
	assert_cmp "$REF/before" "$REF/after"
'

test_expect_success 'policies survive a remount and the daemon catches up at mount' '
	cd "$TEST_TMP" &&
	set_clock "2031-02-01 13:20" &&
	vol_mount "$STORE" "$MNT" &&
	cd "$MNT" &&
	wait_snaps "daily.manual daily.2031-01-05_0010 daily.2031-01-06_0010 daily.2031-01-10_0010 h.2031-02-01_0905 h.2031-02-01_1105 q.2031-02-01_1100 h.2031-02-01_1305 q.2031-02-01_1315" &&
	assert_eq "hourly:$(at "2031-02-01 13:05") quarter:$(at "2031-02-01 13:15")" "$(last_runs)" &&
	assert_grep "policy hourly: kept held snapshot h.2031-02-01_0905" "$STORE/daemon.log"
'

test_expect_success 'policy modify: schedule, keep, prefix and label; the policy keeps its runs' '
	"$SNAPFS" policy create "$MNT" mod --schedule every:15 --keep 3 --prefix m >/dev/null &&
	"$SNAPFS" policy modify "$MNT" mod --schedule hourly@40 --keep 2 >out &&
	assert_eq "snapfs: modified policy mod of $MNT: hourly@40, keeping 2 snapshots named m.YYYY-MM-DD_HHMM" "$(cat out)" &&
	set_clock "2031-02-01 13:40" &&
	for i in $(seq 300); do
		snaps | grep -qw m.2031-02-01_1340 && break
		sleep 0.1
	done &&
	snaps | grep -qw m.2031-02-01_1340 &&
	"$SNAPFS" policy modify "$MNT" mod --prefix db.m >/dev/null &&
	"$SNAPFS" policy modify "$MNT" mod --label weekly >out &&
	assert_grep "keeping 2 snapshots named weekly.m.YYYY-MM-DD_HHMM" out &&
	policies | python3 -c "import json,sys; p=[x for x in json.load(sys.stdin) if x[\"name\"]==\"mod\"][0]; print(p[\"schedule\"], p[\"keep\"], p[\"prefix\"], p[\"label\"], p[\"last_run\"])" >out &&
	assert_eq "hourly@40 2 weekly.m weekly $(at "2031-02-01 13:40")" "$(cat out)"
'

test_expect_success 'policy modify refuses bad input and changes nothing' '
	state >"$REF/before" &&
	assert_fails "$SNAPFS" policy modify "$MNT" mod 2>err &&
	assert_grep "give --schedule, --keep, --prefix or --label" err &&
	assert_fails "$SNAPFS" policy modify "$MNT" nosuch --keep 1 2>err &&
	assert_eq "snapfs policy modify: $MNT: no policy named ${Q}nosuch${Q}" "$(cat err)" &&
	assert_fails "$SNAPFS" policy modify "$MNT" mod --prefix q 2>err &&
	assert_eq "snapfs policy modify: $MNT: policy ${Q}quarter${Q} already uses the prefix ${Q}q${Q}" "$(cat err)" &&
	assert_fails "$SNAPFS" policy modify "$MNT" mod --label a.b 2>err &&
	assert_grep "is not a label" err &&
	assert_fails "$SNAPFS" policy modify "$MNT" mod --keep 0 2>err &&
	assert_grep "give the number of snapshots to keep" err &&
	assert_fails "$SNAPFS" policy modify "$MNT" mod --schedule daily@24:00 2>err &&
	assert_grep "is not a schedule" err &&
	state >"$REF/after" &&
	assert_cmp "$REF/before" "$REF/after"
'

test_expect_success 'unmounted: policy modify works on the store' '
	cd "$TEST_TMP" && vol_umount "$MNT" &&
	"$SNAPFS" policy modify "$STORE" mod --keep 5 --now "2031-02-01 14:00" >/dev/null &&
	"$SNAPFS" policy list "$STORE" --now "2031-02-01 14:00" >out &&
	assert_grep "^mod  *hourly@40  *5  *weekly.m " out &&
	vol_mount "$STORE" "$MNT"
'

# Daylight saving, by the daemon: a second volume whose daemon runs in a
# zone with US rules (a POSIX TZ string: no zone files needed).
DST_TZ="EST5EDT,M3.2.0,M11.1.0"
local_clock() { TZ=$DST_TZ date -d "$1" +%s >"$CLOCK.new" && mv "$CLOCK.new" "$CLOCK"; }

test_expect_success 'daylight saving: a repeated hour runs once, a skipped slot runs once' '
	cd "$TEST_TMP" && "$SNAPFS" mkfs "$TEST_TMP/dst.store" --size 1G >/dev/null &&
	local_clock "2031-11-02 00:10 EDT" &&
	TZ=$DST_TZ vol_mount "$TEST_TMP/dst.store" "$TEST_TMP/dst" &&
	D=$TEST_TMP/dst &&
	"$SNAPFS" policy create "$D" h --schedule hourly@30 --keep 10 >/dev/null &&
	"$SNAPFS" policy create "$D" d --schedule daily@02:30 --keep 10 >/dev/null &&
	local_clock "2031-11-02 00:30 EDT" && wait_snaps "h.2031-11-02_0030" "$D" &&
	local_clock "2031-11-02 01:30 EDT" && wait_snaps "h.2031-11-02_0030 h.2031-11-02_0130" "$D" &&
	local_clock "2031-11-02 01:31 EST" &&	# the same clock time, an hour later
	local_clock "2031-11-02 02:30 EST" &&
	wait_snaps "h.2031-11-02_0030 h.2031-11-02_0130 d.2031-11-02_0230 h.2031-11-02_0230" "$D" &&
	! grep "exists already" "$TEST_TMP/dst.store/daemon.log" &&
	"$SNAPFS" policy delete "$D" h >/dev/null &&
	local_clock "2032-03-14 01:59 EST" &&	# the day before: caught up
	wait_snaps "h.2031-11-02_0030 h.2031-11-02_0130 d.2031-11-02_0230 h.2031-11-02_0230 d.2032-03-13_0230" "$D" &&
	local_clock "2032-03-14 03:00 EDT" &&	# 02:30 EST never comes: the jump
	local_clock "2032-03-14 03:30 EDT" &&
	wait_snaps "h.2031-11-02_0030 h.2031-11-02_0130 d.2031-11-02_0230 h.2031-11-02_0230 d.2032-03-13_0230 d.2032-03-14_0330" "$D" &&
	local_clock "2032-03-14 23:00 EDT" &&
	local_clock "2032-03-15 02:30 EDT" &&
	wait_snaps "h.2031-11-02_0030 h.2031-11-02_0130 d.2031-11-02_0230 h.2031-11-02_0230 d.2032-03-13_0230 d.2032-03-14_0330 d.2032-03-15_0230" "$D" &&
	assert_eq 1 "$(grep -c "created snapshot d.2032-03-14_0330" "$TEST_TMP/dst.store/daemon.log")" &&
	vol_umount "$D" && "$SNAPFS" fsck "$TEST_TMP/dst.store" >/dev/null
'

test_done
