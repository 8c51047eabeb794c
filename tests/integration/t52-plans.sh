#!/bin/bash
# Recovery plans: `snapfs plan` over two mirrored volume pairs on one
# host.  A test clones the newest mirrored snapshots, mounts them and runs
# the step scripts against them while replication goes on, and cleanup
# leaves nothing behind; a planned migration carries the newest source
# data in a final update, breaks, mounts and runs the steps in priority
# order; a failing step stops the plan naming the step, its exit status
# and its last line of stderr, and the next run resumes there; reprotect
# makes the old sources follow, failback returns to the original
# direction with the data intact; a disaster run breaks without the
# source store and resumes after kill -9; bad input changes nothing.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 1G

export SNAPFS_MIRROR_DIR=$TEST_TMP/mirrors SNAPFS_CONFIG_DIR=$TEST_TMP/config
TREELIST=$(cd "$(dirname "$0")" && pwd)/treelist.py
tree() { python3 "$TREELIST" "$1" --usec; }
# content DIR: its tree without its root (whose mtime a step script's
# marker changes) and without the markers
content() { tree "$1" | grep -v -e "^\\. " -e "^marker-"; }
S1=$STORE M1=$MNT
S2=$TEST_TMP/db.store M2=$TEST_TMP/db.mnt
D1=$TEST_TMP/dr-app.store DM1=$TEST_TMP/dr/app
D2=$TEST_TMP/dr-db.store DM2=$TEST_TMP/dr/db
LOG=$TEST_TMP/steps.log
# every mountpoint the plans use is unmounted at exit
GS1=$TEST_TMP/ga-src.store GS2=$TEST_TMP/gb-src.store GM1=$TEST_TMP/ga.mnt GM2=$TEST_TMP/gb.mnt
GD1=$TEST_TMP/grp-a.store GD2=$TEST_TMP/grp-b.store GDM=$TEST_TMP/drg
for m in "$M2" "$DM1" "$DM2" "$DM1.test" "$DM2.test" "$TEST_TMP/check" "$GM1" "$GM2" \
	"$GDM/grp-a" "$GDM/grp-b" "$GDM.test/grp-a" "$GDM.test/grp-b"; do
	echo "$m" >>"$TEST_TMP/.mounts"
done

# the step script: a marker file in the volume it brought up, and a line
# in $LOG; fails (exit 3) while $TEST_TMP/fail-$STEP exists, and waits
# while $TEST_TMP/hang exists
cat >"$TEST_TMP/step.sh" <<EOF
#!/bin/sh
echo "\$SNAPFS_PLAN_PHASE \$SNAPFS_PLAN_STEP \$SNAPFS_PLAN_STORE_1" >>"$LOG"
if [ -e "$TEST_TMP/hang" ]; then
	ps -o pgid= -p \$\$ | tr -d " " >"$TEST_TMP/hung.pgid"; sleep 60
fi
if [ -e "$TEST_TMP/fail-\$SNAPFS_PLAN_STEP" ]; then
	echo "starting the application" >&2
	echo "database would not start" >&2
	exit 3
fi
echo "\$SNAPFS_PLAN_PHASE" >"\$SNAPFS_PLAN_MOUNT_1/marker-\$SNAPFS_PLAN_PHASE"
EOF
chmod +x "$TEST_TMP/step.sh"

# jfield FILE EXPR: a value of the JSON in FILE (EXPR on j, Python)
jfield() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
# rel_source DST: the source of DST's relationship
rel_source() { mirror_field "$1" source; }
plan_state() { "$SNAPFS" plan show "$1" --json >"$REF/show.json" && jfield "$REF/show.json" 'j["state"]["summary"]'; }

test_expect_success 'set up two source volumes with data, each mirrored to an empty destination' '
	"$SNAPFS" mkfs "$S2" --size 1G >/dev/null && vol_mount "$S2" "$M2" &&
	echo app-v1 >app.conf && head -c 200000 /dev/urandom >app.bin &&
	echo rows-v1 >"$M2/table" && mkdir "$M2/wal" && echo 1 >"$M2/wal/1" &&
	"$SNAPFS" mkfs "$D1" --size 1G >/dev/null && "$SNAPFS" mkfs "$D2" --size 1G >/dev/null &&
	"$SNAPFS" mirror create "$M1" "$D1" >/dev/null &&
	"$SNAPFS" mirror create "$M2" "$D2" >/dev/null &&
	"$SNAPFS" mirror initialize "$D1" >/dev/null &&
	"$SNAPFS" mirror initialize "$D2" >/dev/null &&
	assert_eq snapmirrored "$(mirror_field "$D1" state)"
'

test_expect_success 'bad plans are refused with one message and nothing is stored' '
	assert_fails "$SNAPFS" plan create p1 --step "$TEST_TMP/nowhere.store" 2>"$REF/e1" &&
	assert_grep "step 1: .*nowhere.store: no mirror relationship has this destination" "$REF/e1" &&
	assert_fails "$SNAPFS" plan create p1 --priority 1 --step "$D1" 2>"$REF/e2" &&
	assert_grep "give --step first" "$REF/e2" &&
	assert_fails "$SNAPFS" plan create p1 --step "$D1" --step "$D1" 2>"$REF/e3" &&
	assert_grep "steps 1 and 2: both name $D1" "$REF/e3" &&
	assert_fails "$SNAPFS" plan create p1 --step group:erp 2>"$REF/e4" &&
	assert_grep "no mirror group named .erp." "$REF/e4" &&
	echo "{\"steps\": [{\"relationship\": \"$D1\", \"prio\": 2}]}" >"$TEST_TMP/bad.json" &&
	assert_fails "$SNAPFS" plan create p1 --file "$TEST_TMP/bad.json" 2>"$REF/e5" &&
	assert_grep "step 1: unknown key \"prio\"" "$REF/e5" &&
	echo "{\"steps\": [" >"$TEST_TMP/broken.json" &&
	assert_fails "$SNAPFS" plan create p1 --file "$TEST_TMP/broken.json" 2>"$REF/e6" &&
	assert_grep "broken.json: line" "$REF/e6" &&
	assert_fails "$SNAPFS" plan create "../x" --step "$D1" 2>"$REF/e7" &&
	assert_grep "not a plan name" "$REF/e7" &&
	assert_fails "$SNAPFS" plan create p1 --step "$D1" --mount relative/dir 2>"$REF/e8" &&
	assert_grep "mountpoints are absolute paths" "$REF/e8" &&
	assert_fails "$SNAPFS" plan test nosuch 2>"$REF/e9" &&
	assert_grep "nosuch: no such plan" "$REF/e9" &&
	"$SNAPFS" plan list >"$REF/list" && assert_grep "no recovery plans" "$REF/list"
'

test_expect_success 'a plan is created from a file, steps sorted by priority; a second of that name is refused' '
	cat >"$TEST_TMP/dr.json" <<-EOF &&
	{"steps": [
	  {"relationship": "$D1", "priority": 2, "mount": "$DM1", "script": "$TEST_TMP/step.sh"},
	  {"relationship": "$D2", "priority": 1, "mount": "$DM2", "script": "$TEST_TMP/step.sh", "timeout": 30}
	]}
	EOF
	"$SNAPFS" plan create dr --file "$TEST_TMP/dr.json" --json >"$REF/show.json" &&
	assert_eq "dr 2" "$(jfield "$REF/show.json" "j[\"name\"], len(j[\"steps\"])")" &&
	"$SNAPFS" plan show dr >"$REF/show.txt" &&
	assert_grep "^Plan: dr (ready)$" "$REF/show.txt" &&
	assert_grep "^step 1  priority 1  script: $TEST_TMP/step.sh  timeout 30 s$" "$REF/show.txt" &&
	"$SNAPFS" plan show dr --json >"$REF/show.json" &&
	assert_eq "$D2 $D1" "$(jfield "$REF/show.json" "\" \".join(s[\"members\"][0][\"destination\"] for s in j[\"steps\"])")" &&
	assert_eq "$S2" "$(jfield "$REF/show.json" "j[\"steps\"][0][\"members\"][0][\"source\"]")" &&
	assert_eq "$DM1.test" "$(jfield "$REF/show.json" "j[\"steps\"][1][\"members\"][0][\"test_mount\"]")" &&
	assert_eq ready "$(plan_state dr)" &&
	assert_fails "$SNAPFS" plan create dr --step "$D1" 2>"$REF/err" &&
	assert_grep "a plan of this name exists" "$REF/err" &&
	"$SNAPFS" plan list >"$REF/list" && assert_grep "^dr  *2  *ready$" "$REF/list"
'

test_expect_success 'plan test: clones of the newest mirrored snapshots, mounted, equal to them; the steps ran against the clones in priority order' '
	cd "$TEST_TMP" &&
	n1=$(mirror_field "$D1" newest_snapshot) && n2=$(mirror_field "$D2" newest_snapshot) &&
	"$SNAPFS" plan test dr --json >"$REF/test.json" &&
	assert_eq ok "$(jfield "$REF/test.json" "j[\"result\"]")" &&
	assert_eq "clone mount script clone mount script" "$(jfield "$REF/test.json" "\" \".join(a[\"action\"] for a in j[\"actions\"])")" &&
	assert_eq "1 1 1 2 2 2" "$(jfield "$REF/test.json" "\" \".join(str(a[\"step\"]) for a in j[\"actions\"])")" &&
	assert_eq "test 1 $D2.test-dr
test 2 $D1.test-dr" "$(cat "$LOG")" &&
	mountpoint -q "$DM1.test" && mountpoint -q "$DM2.test" &&
	content "$M1/.snapshot/$n1" >"$REF/a1" && content "$DM1.test" >"$REF/b1" &&
	diff -u "$REF/a1" "$REF/b1" >&2 &&
	content "$M2/.snapshot/$n2" >"$REF/a2" && content "$DM2.test" >"$REF/b2" &&
	diff -u "$REF/a2" "$REF/b2" >&2 &&
	assert_eq test "$(cat "$DM1.test/marker-test")" &&
	assert_eq testing "$(plan_state dr)"
'

test_expect_success 'replication goes on during the test: an update carries a change; the clones stay as they were' '
	echo app-v2 >"$M1/app.conf" &&
	"$SNAPFS" mirror update "$D1" >/dev/null &&
	assert_eq snapmirrored "$(mirror_field "$D1" state)" &&
	n1=$(mirror_field "$D1" newest_snapshot) &&
	assert_eq app-v2 "$(cat "$M1/.snapshot/$n1/app.conf")" &&
	assert_eq app-v1 "$(cat "$DM1.test/app.conf")"
'

test_expect_success 'a run, a second test or a delete while a test is active is refused, changing nothing' '
	assert_fails "$SNAPFS" plan delete dr 2>"$REF/err3" &&
	assert_grep "dr: a test is active; nothing was deleted" "$REF/err3" &&
	assert_fails "$SNAPFS" plan run dr --planned-migration 2>"$REF/err" &&
	assert_grep "plan dr: a test is active; snapfs plan cleanup first" "$REF/err" &&
	assert_eq snapmirrored "$(mirror_field "$D1" state)" &&
	assert_fails "$SNAPFS" plan test dr 2>"$REF/err2" &&
	assert_grep "a test is active" "$REF/err2"
'

test_expect_success 'plan cleanup unmounts and removes the clones: nothing is left' '
	cd "$TEST_TMP" &&
	"$SNAPFS" plan cleanup dr >"$REF/out" &&
	assert_grep "cleanup done" "$REF/out" &&
	! mountpoint -q "$DM1.test" 2>/dev/null && ! mountpoint -q "$DM2.test" 2>/dev/null &&
	assert_missing "$D1.test-dr" && assert_missing "$D2.test-dr" &&
	assert_missing "$DM1.test" && assert_missing "$DM2.test" &&
	! grep -q "test-dr" /proc/self/mountinfo &&
	assert_eq ready "$(plan_state dr)" &&
	assert_fails "$SNAPFS" plan cleanup dr 2>"$REF/err" &&
	assert_grep "no test is active" "$REF/err"
'

test_expect_success 'a plan over a consistency group, made with --step options: one step, each member on MOUNT/MEMBER' '
	cd "$TEST_TMP" &&
	"$SNAPFS" mkfs "$GS1" --size 256M >/dev/null && "$SNAPFS" mkfs "$GS2" --size 256M >/dev/null &&
	"$SNAPFS" mkfs "$GD1" --size 256M >/dev/null && "$SNAPFS" mkfs "$GD2" --size 256M >/dev/null &&
	vol_mount "$GS1" "$GM1" && vol_mount "$GS2" "$GM2" &&
	echo ga >"$GM1/a" && echo gb >"$GM2/b" &&
	"$SNAPFS" mirror create "$GM1,$GM2" "$GD1,$GD2" --group erp >/dev/null &&
	"$SNAPFS" mirror initialize "$GD1" >/dev/null &&
	assert_fails "$SNAPFS" plan create grp --step "$GD1" 2>"$REF/err" &&
	assert_grep "is a member of group erp: name the group" "$REF/err" &&
	"$SNAPFS" plan create grp --step group:erp --mount "$GDM" --script "$TEST_TMP/step.sh" --timeout 5 >/dev/null &&
	"$SNAPFS" plan show grp --json >"$REF/g.json" &&
	assert_eq "erp 2 5" "$(jfield "$REF/g.json" "j[\"steps\"][0][\"group\"], len(j[\"steps\"][0][\"members\"]), j[\"steps\"][0][\"timeout\"]")" &&
	assert_eq "$GDM/grp-a $GDM/grp-b" "$(jfield "$REF/g.json" "\" \".join(m[\"mount\"] for m in j[\"steps\"][0][\"members\"])")" &&
	"$SNAPFS" plan test grp >/dev/null &&
	assert_eq ga "$(cat "$GDM.test/grp-a/a")" && assert_eq gb "$(cat "$GDM.test/grp-b/b")" &&
	assert_eq test "$(cat "$GDM.test/grp-a/marker-test")" &&
	"$SNAPFS" plan cleanup grp >/dev/null &&
	assert_missing "$GD1.test-grp" && assert_missing "$GDM.test"
'

test_expect_success 'a step script past its timeout is killed and the step fails; the next run resumes and the whole group is up' '
	cd "$TEST_TMP" && touch "$TEST_TMP/hang" &&
	assert_fails "$SNAPFS" plan run grp --disaster --json >"$REF/g.json" 2>/dev/null &&
	assert_eq "failed 1 124" "$(jfield "$REF/g.json" "j[\"result\"], j[\"failed_step\"], j[\"exit_code\"]")" &&
	assert_eq "timed out after 5 seconds (its processes were killed)" "$(jfield "$REF/g.json" "j[\"stderr\"]")" &&
	pg=$(cat "$TEST_TMP/hung.pgid") &&
	for _ in $(seq 100); do kill -0 -- "-$pg" 2>/dev/null || break; sleep 0.1; done &&
	! kill -0 -- "-$pg" 2>/dev/null &&
	rm "$TEST_TMP/hang" "$TEST_TMP/hung.pgid" &&
	assert_eq broken-off "$(mirror_field "$GD1" state)" && assert_eq broken-off "$(mirror_field "$GD2" state)" &&
	"$SNAPFS" plan run grp --disaster >/dev/null &&
	assert_eq disaster "$(cat "$GDM/grp-a/marker-disaster")" && assert_eq gb "$(cat "$GDM/grp-b/b")" &&
	echo w >"$GDM/grp-b/written" &&
	"$SNAPFS" umount "$GDM/grp-a" && "$SNAPFS" umount "$GDM/grp-b"
'

test_expect_success 'a group plan reprotects member by member and fails back: the sources serve again where they were, with what was written at DR' '
	cd "$TEST_TMP" &&
	"$SNAPFS" plan reprotect grp >/dev/null &&
	assert_eq "$GD1" "$(rel_source "$GS1")" && assert_eq "$GD2" "$(rel_source "$GS2")" &&
	! mountpoint -q "$GM1" &&
	"$SNAPFS" plan failback grp >/dev/null &&
	mountpoint -q "$GM1" && mountpoint -q "$GM2" &&
	assert_eq w "$(cat "$GM2/written")" && assert_eq ga "$(cat "$GM1/a")" &&
	assert_eq "$GS1" "$(rel_source "$GD1")" && assert_eq "$GS2" "$(rel_source "$GD2")" &&
	assert_eq "" "$(mirror_field "$GD1" group)" &&
	echo gb2 >"$GM2/b" && "$SNAPFS" mirror update "$GD2" >/dev/null &&
	assert_eq ready "$(plan_state grp)"
'

test_expect_success 'plan run needs a mode, one of the two' '
	assert_fails "$SNAPFS" plan run dr 2>"$REF/e1" &&
	assert_grep "give --planned-migration (the sources answer) or --disaster" "$REF/e1" &&
	assert_fails "$SNAPFS" plan run dr --planned-migration --disaster 2>"$REF/e2" &&
	assert_grep "one of the two" "$REF/e2"
'

test_expect_success 'a planned migration whose step fails stops there, naming the step, its exit status and last line of stderr' '
	cd "$TEST_TMP" && : >"$LOG" &&
	echo app-v3 >"$M1/app.conf" && echo rows-v3 >"$M2/table" &&
	touch "$TEST_TMP/fail-2" &&
	assert_fails "$SNAPFS" plan run dr --planned-migration >"$REF/out" 2>"$REF/err" &&
	assert_grep "plan dr: step 2: its script exited 3: database would not start" "$REF/err" &&
	assert_grep "script .*: failed" "$REF/out" &&
	assert_eq run-stopped "$(plan_state dr)" &&
	assert_eq "planned-migration 1 $D2
planned-migration 2 $D1" "$(cat "$LOG")" &&
	assert_eq broken-off "$(mirror_field "$D1" state)" &&
	assert_fails "$SNAPFS" plan test dr 2>"$REF/err2" &&
	assert_grep "its run stopped in the middle; finish it first" "$REF/err2"
'

test_expect_success 'the next run resumes at the failed step: the final update carried the newest data, the destinations are mounted and writable' '
	cd "$TEST_TMP" && rm "$TEST_TMP/fail-2" &&
	"$SNAPFS" plan run dr --planned-migration --json >"$REF/run.json" &&
	assert_eq ok "$(jfield "$REF/run.json" "j[\"result\"]")" &&
	assert_eq "script" "$(jfield "$REF/run.json" "\" \".join(a[\"action\"] for a in j[\"actions\"])")" &&
	assert_eq "planned-migration 1 $D2
planned-migration 2 $D1
planned-migration 2 $D1" "$(cat "$LOG")" &&
	assert_eq app-v3 "$(cat "$DM1/app.conf")" && assert_eq rows-v3 "$(cat "$DM2/table")" &&
	assert_eq planned-migration "$(cat "$DM1/marker-planned-migration")" &&
	assert_eq planned-migration "$(cat "$DM2/marker-planned-migration")" &&
	echo written-at-dr >"$DM1/dr-file" && echo rows-dr >"$DM2/table" &&
	! mountpoint -q "$M1" && ! mountpoint -q "$M2" &&
	assert_eq failed-over "$(plan_state dr)" &&
	assert_fails "$SNAPFS" plan run dr --planned-migration 2>"$REF/err" &&
	assert_grep "has failed over already" "$REF/err"
'

test_expect_success 'reprotect: the old sources follow the new ones; a change at the new side arrives at the old after an update' '
	cd "$TEST_TMP" &&
	assert_fails "$SNAPFS" plan failback dr 2>"$REF/err" &&
	assert_grep "reprotect it first" "$REF/err" &&
	"$SNAPFS" plan reprotect dr >"$REF/out" &&
	assert_grep "reverse resync .*: ok" "$REF/out" &&
	assert_eq snapmirrored "$(mirror_field "$S1" state)" &&
	assert_eq "$D1" "$(rel_source "$S1")" && assert_eq "$D2" "$(rel_source "$S2")" &&
	echo later-at-dr >"$DM1/later" &&
	"$SNAPFS" mirror update "$S1" >/dev/null &&
	vol_mount "$S1" "$TEST_TMP/check" &&
	assert_eq later-at-dr "$(cat "$TEST_TMP/check/later")" &&
	assert_eq written-at-dr "$(cat "$TEST_TMP/check/dr-file")" &&
	! echo x 2>/dev/null >"$TEST_TMP/check/ro" &&
	vol_umount "$TEST_TMP/check" &&
	assert_eq reprotected "$(plan_state dr)"
'

test_expect_success 'failback: back to the original direction, served where they were, data intact; the destinations follow again' '
	cd "$TEST_TMP" && : >"$LOG" &&
	echo last-at-dr >"$DM2/last" &&
	"$SNAPFS" plan failback dr >"$REF/out" &&
	assert_grep "failback done" "$REF/out" &&
	mountpoint -q "$M1" && mountpoint -q "$M2" &&
	assert_eq later-at-dr "$(cat "$M1/later")" && assert_eq last-at-dr "$(cat "$M2/last")" &&
	assert_eq rows-dr "$(cat "$M2/table")" && assert_eq failback "$(cat "$M1/marker-failback")" &&
	echo back-home >"$M1/home" &&
	assert_eq "failback 1 $S2
failback 2 $S1" "$(cat "$LOG")" &&
	assert_eq "$S1" "$(rel_source "$D1")" && assert_eq "$S2" "$(rel_source "$D2")" &&
	"$SNAPFS" mirror update "$D1" >/dev/null &&
	assert_eq snapmirrored "$(mirror_field "$D1" state)" &&
	n1=$(mirror_field "$D1" newest_snapshot) &&
	assert_eq back-home "$(cat "$M1/.snapshot/$n1/home")" &&
	! mountpoint -q "$DM1" && assert_eq ready "$(plan_state dr)"
'

test_expect_success 'a planned migration whose second update fails mounts the first source again where it was, and the plan is as before' '
	cd "$TEST_TMP" && "$SNAPFS" mirror quiesce "$D1" >/dev/null &&
	assert_fails "$SNAPFS" plan run dr --planned-migration >"$REF/out" 2>"$REF/err" &&
	assert_grep "plan dr: step 2: the final update of $D1 failed: nothing was broken off .*quiesced" "$REF/err" &&
	assert_grep "unmount .*$S2: ok" "$REF/out" &&
	assert_grep "mount source again .*$S2: ok" "$REF/out" &&
	mountpoint -q "$M2" && mountpoint -q "$M1" &&
	assert_eq snapmirrored "$(mirror_field "$D2" state)" &&
	assert_eq ready "$(plan_state dr)" &&
	"$SNAPFS" mirror resume "$D1" >/dev/null
'

test_expect_success 'with a source store gone, a planned migration refuses before breaking anything' '
	cd "$TEST_TMP" && "$SNAPFS" mirror update "$D2" >/dev/null &&
	vol_umount "$M2" && mv "$S2" "$S2.away" &&
	assert_fails "$SNAPFS" plan run dr --planned-migration 2>"$REF/err" &&
	assert_grep "plan dr: step 1: the final update of $D2 failed: nothing was broken off (if $S2 is lost, plan run --disaster): " "$REF/err" &&
	assert_eq snapmirrored "$(mirror_field "$D1" state)" &&
	assert_eq snapmirrored "$(mirror_field "$D2" state)" &&
	mountpoint -q "$M1" && assert_eq ready "$(plan_state dr)"
'

test_expect_success 'a disaster run without the source store, killed -9 in a step, resumes from where it stopped' '
	cd "$TEST_TMP" && : >"$LOG" && touch "$TEST_TMP/hang" &&
	{ "$SNAPFS" plan run dr --disaster >"$REF/out1" 2>&1 & } && pid=$! &&
	for _ in $(seq 300); do test -s "$TEST_TMP/hung.pgid" && break; sleep 0.1; done &&
	test -s "$TEST_TMP/hung.pgid" &&
	kill -9 "$pid" && { wait "$pid" 2>/dev/null || :; } && rm "$TEST_TMP/hang" &&
	kill -- "-$(cat "$TEST_TMP/hung.pgid")" && rm "$TEST_TMP/hung.pgid" &&
	assert_eq run-stopped "$(plan_state dr)" &&
	mountpoint -q "$DM2" &&
	"$SNAPFS" plan run dr --disaster --json >"$REF/run.json" &&
	assert_eq ok "$(jfield "$REF/run.json" "j[\"result\"]")" &&
	assert_eq "script mount script" "$(jfield "$REF/run.json" "\" \".join(a[\"action\"] for a in j[\"actions\"])")" &&
	assert_eq disaster "$(cat "$DM2/marker-disaster")" &&
	assert_eq disaster "$(cat "$DM1/marker-disaster")" &&
	assert_eq rows-dr "$(cat "$DM2/table")" && assert_eq back-home "$(cat "$DM1/home")" &&
	echo after-disaster >"$DM2/new" &&
	assert_eq broken-off "$(mirror_field "$D2" state)" &&
	assert_eq failed-over "$(plan_state dr)"
'

test_expect_success 'delete removes the plan and leaves its relationships and volumes as they are' '
	cd "$TEST_TMP" && mv "$S2.away" "$S2" &&
	"$SNAPFS" plan delete dr --json >"$REF/out" &&
	assert_eq "dr True" "$(jfield "$REF/out" "j[\"plan\"], j[\"deleted\"]")" &&
	assert_fails "$SNAPFS" plan show dr 2>"$REF/err" &&
	assert_grep "no such plan" "$REF/err" &&
	assert_eq broken-off "$(mirror_field "$D1" state)" &&
	assert_eq after-disaster "$(cat "$DM2/new")" &&
	"$SNAPFS" umount "$DM1" && "$SNAPFS" umount "$DM2"
'

# Across a TLS peer, from the DR host: the relationship is the production
# host's; the DR host's plan names its local destination and the source
# on the peer.  Both hosts are config dirs of this machine, each serving
# the other on loopback.
PROD=$TEST_TMP/prod-cfg DRC=$TEST_TMP/dr-cfg
XS=$TEST_TMP/x-src.store XM=$TEST_TMP/x.mnt XD=$TEST_TMP/x-dst.store XDM=$TEST_TMP/xdr
for m in "$XM" "$XDM" "$XDM.test" "$TEST_TMP/xcheck"; do echo "$m" >>"$TEST_TMP/.mounts"; done
prod() { SNAPFS_CONFIG_DIR=$PROD SNAPFS_MIRROR_DIR=$TEST_TMP/prod-mirrors "$SNAPFS" "$@"; }
dr() { SNAPFS_CONFIG_DIR=$DRC SNAPFS_MIRROR_DIR=$TEST_TMP/dr-mirrors "$SNAPFS" "$@"; }
stop_servers() {
	local d
	for d in "$PROD" "$DRC"; do
		[ -s "$d/serve.pid" ] && kill -TERM "$(cat "$d/serve.pid")" 2>/dev/null
	done
	return 0
}
test_at_exit stop_servers
# serve_port OUTPUT: the port `peer serve` said it listens on
serve_port() { sed -n "s/^listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p" "$1"; }

test_expect_success 'across a TLS peer: production mirrors to the DR host, each host serving the other' '
	cd "$TEST_TMP" &&
	"$SNAPFS" mkfs "$XS" --size 256M >/dev/null && "$SNAPFS" mkfs "$XD" --size 256M >/dev/null &&
	vol_mount "$XS" "$XM" && echo x-v1 >"$XM/data" &&
	dr peer passphrase prod >"$REF/pass-prod" 2>/dev/null &&
	dr peer allow prod receive "$XD" >/dev/null &&
	dr peer serve --listen 127.0.0.1:0 >"$REF/serve-dr" &&
	prod peer create dr "127.0.0.1:$(serve_port "$REF/serve-dr")" <"$REF/pass-prod" >/dev/null &&
	prod peer passphrase dr >"$REF/pass-dr" 2>/dev/null &&
	prod peer allow dr receive "$XS" >/dev/null &&
	prod peer serve --listen 127.0.0.1:0 >"$REF/serve-prod" &&
	dr peer create prod "127.0.0.1:$(serve_port "$REF/serve-prod")" <"$REF/pass-dr" >/dev/null &&
	prod mirror create "$XM" "dr:$XD" >/dev/null &&
	prod mirror initialize "dr:$XD" >/dev/null &&
	assert_eq snapmirrored "$(SNAPFS_CONFIG_DIR=$PROD SNAPFS_MIRROR_DIR=$TEST_TMP/prod-mirrors mirror_field "dr:$XD" state)"
'

test_expect_success 'across a TLS peer: production refuses a plan over a peer destination; the DR host makes it, naming the source on the peer' '
	assert_fails prod plan create x --step "dr:$XD" 2>"$REF/err" &&
	assert_grep "dr:$XD is on peer dr: a plan clones, breaks and mounts destinations on the host it runs on" "$REF/err" &&
	assert_fails dr plan create x --step "$XD" --source "$XS" 2>"$REF/err2" &&
	assert_grep "give the source.s host as PEER:PATH" "$REF/err2" &&
	assert_fails dr plan create x --step "$TEST_TMP/x-none.store" 2>"$REF/err3" &&
	assert_grep "no mirror relationship has this destination .*, and it is no mirror destination of this host" "$REF/err3" &&
	dr plan create x --step "$XD" --mount "$XDM" --script "$TEST_TMP/step.sh" --source "prod:$XS" >/dev/null &&
	dr plan show x --json >"$REF/x.json" &&
	assert_eq "prod:$XS True" "$(jfield "$REF/x.json" "j[\"steps\"][0][\"members\"][0][\"source\"], j[\"steps\"][0][\"members\"][0][\"remote\"]")"
'

test_expect_success 'across a TLS peer: the DR host tests its plan while production goes on mirroring, and cleans up' '
	cd "$TEST_TMP" &&
	dr plan test x >/dev/null &&
	assert_eq x-v1 "$(cat "$XDM.test/data")" && assert_eq test "$(cat "$XDM.test/marker-test")" &&
	echo x-v2 >"$XM/data" && prod mirror update "dr:$XD" >/dev/null &&
	assert_eq x-v1 "$(cat "$XDM.test/data")" &&
	dr plan cleanup x >/dev/null && assert_missing "$XD.test-x"
'

test_expect_success 'across a TLS peer: a planned migration from the DR host is refused; after the disaster the DR host breaks, mounts and runs its step' '
	cd "$TEST_TMP" &&
	assert_fails dr plan run x --planned-migration 2>"$REF/err" &&
	assert_grep "follows a volume of another host, whose relationship is there: run its final update there" "$REF/err" &&
	echo x-v3 >"$XM/data" && prod mirror update "dr:$XD" >/dev/null &&
	vol_umount "$XM" &&
	dr plan run x --disaster >/dev/null &&
	assert_eq x-v3 "$(cat "$XDM/data")" && assert_eq disaster "$(cat "$XDM/marker-disaster")" &&
	echo at-dr >"$XDM/dr-file"
'

test_expect_success 'across a TLS peer: reprotect makes the production volume follow the DR one over TLS; failback from here is refused' '
	cd "$TEST_TMP" &&
	dr plan reprotect x >"$REF/out" &&
	assert_grep "reverse resync .*prod:$XS: ok" "$REF/out" &&
	echo later >"$XDM/later" && dr mirror update "prod:$XS" >/dev/null &&
	vol_mount "$XS" "$TEST_TMP/xcheck" &&
	assert_eq later "$(cat "$TEST_TMP/xcheck/later")" && assert_eq at-dr "$(cat "$TEST_TMP/xcheck/dr-file")" &&
	vol_umount "$TEST_TMP/xcheck" &&
	assert_fails dr plan failback x 2>"$REF/err" &&
	assert_grep "prod:$XS is on another host: break and serve it there" "$REF/err" &&
	"$SNAPFS" umount "$XDM"
'

test_done
