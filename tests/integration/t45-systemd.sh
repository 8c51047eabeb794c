#!/bin/bash
# The systemd units of snapfs and what they run: systemd-analyze verify on
# every unit; snapfs@.service's ExecStart and ExecStop run by hand under
# the unit's capability bounding set (the mount answers before READY=1
# reaches the notify socket, the stop returns after the daemon's last
# commit, a file written before the stop is there after a remount, a dead
# daemon's mount is detached for the restart); the dump rotation's level
# on given dates and real dumps of it; mirror updates; mount -t
# fuse.snapfs through the installed helper; bad configuration
# refused with one message; a real start under systemd where it is PID 1.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
command -v make >/dev/null || { say "# skipping: needs make"; test_done; }

SRC=$(cd "$TEST_DIR/../.." && pwd)
PREFIX=$TEST_TMP/prefix		# installed with real paths: verify checks them
UNITDIR=$PREFIX/lib/systemd/system
UNIT=$PREFIX/lib/snapfs/snapfs-unit
export SNAPFS_VOLUMES_DIR=$TEST_TMP/volumes
mkdir -p "$SNAPFS_VOLUMES_DIR"
make -s -C "$SRC" install PREFIX="$PREFIX" SYSCONFDIR="$TEST_TMP/etc" \
	MOUNTHELPERDIR="$PREFIX/sbin" INSTALL_BIN="$SNAPFS" >"$TEST_TMP/install.out" 2>&1 ||
	{ cat "$TEST_TMP/install.out"; test_bail "make install failed"; }

vol_create --size 256M
V2=$TEST_TMP/v2.store M2=$TEST_TMP/v2.mnt
"$SNAPFS" mkfs "$V2" --size 256M >/dev/null && mkdir -p "$M2"
cat >"$SNAPFS_VOLUMES_DIR/v2.conf" <<CONF
# the second volume of t45
STORE=$V2
MOUNTPOINT="$M2"
MOUNT_OPTIONS=noatime
CONF

# the notify socket of a Type=notify service: a listener that appends each
# message to $TEST_TMP/notify.log
# (its pid in a file: the listener starts inside a test's subshell)
notify_listen() {
	rm -f "$TEST_TMP/notify.sock" "$TEST_TMP/notify.log"
	( cd / && exec python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2] + ".up", "w").close()
while True:
    m = s.recv(4096).decode()
    with open(sys.argv[2], "a") as f:
        f.write(m.replace("\n", " ") + "\n")
' "$TEST_TMP/notify.sock" "$TEST_TMP/notify.log" ) &
	echo $! >"$TEST_TMP/notify.pid"
	for _ in $(seq 600); do [ -e "$TEST_TMP/notify.log.up" ] && return 0; sleep 0.05; done
	return 1
}
test_at_exit '[ -f "$TEST_TMP/notify.pid" ] && kill "$(cat "$TEST_TMP/notify.pid")" 2>/dev/null'
# wait_notify PATTERN: until a message matching PATTERN arrived (30 s)
wait_notify() {
	for _ in $(seq 600); do
		grep -q -- "$1" "$TEST_TMP/notify.log" 2>/dev/null && return 0
		sleep 0.05
	done
	say "no notify message /$1/ after 30 s" >&2
	return 1
}

# the unit's CapabilityBoundingSet as setpriv's --bounding-set
unit_bounding_set() {
	sed -n 's/^CapabilityBoundingSet=//p' "$UNITDIR/snapfs@.service" |
		tr ' ' '\n' | sed 's/^CAP_//' | tr 'A-Z' 'a-z' | sed 's/^/+/' | paste -sd, | sed 's/^/-all,/'
}

test_expect_success 'systemd-analyze verify accepts every unit' '
	command -v systemd-analyze || { echo "systemd-analyze is missing (make deps installs systemd)"; exit 1; }
	mkdir -p "$TEST_TMP/verify" &&
	for u in "$UNITDIR"/*; do cp "$u" "$TEST_TMP/verify/"; done &&
	cd "$TEST_TMP/verify" &&
	units= &&
	for u in *; do units="$units $PWD/${u/@./@v2.}"; done &&
	MANPATH=$PREFIX/share/man SYSTEMD_LOG_LEVEL=notice \
		systemd-analyze verify --man=yes $units >"$REF/verify" 2>&1
	rc=$?
	cat "$REF/verify"
	test $rc = 0 && ! grep -v "^$" "$REF/verify"
'

# (as root only: the unit's capability bounding set is set with capsh,
# which another user cannot do)
test_expect_success ROOT 'ExecStart mounts in the foreground and READY=1 comes once the mount answers' '
	notify_listen
	bset=$(unit_bounding_set)
	echo "bounding set: $bset"
	( cd / && NOTIFY_SOCKET=$TEST_TMP/notify.sock exec setpriv --no-new-privs \
		--bounding-set "$bset" "$UNIT" mount v2 ) >"$TEST_TMP/v2.out" 2>&1 </dev/null &
	pid=$! && echo $pid >"$TEST_TMP/v2.pid" &&
	say "$M2" >>"$TEST_TMP/.mounts" &&
	wait_notify READY=1 &&
	grep " $M2 fuse.snapfs " /proc/mounts &&
	assert_eq "$pid" "$(cat "$V2/daemon.pid")" "the daemon is the main process (ExecStart execs it)" &&
	assert_grep "READY=1 STATUS=serving $V2 on $M2" "$TEST_TMP/notify.log" &&
	echo before-stop >"$M2/kept" &&
	assert_eq before-stop "$(cat "$M2/kept")"
'

test_expect_success ROOT 'ExecStop unmounts and returns after the last commit and the exit' '
	pid=$(cat "$TEST_TMP/v2.pid") &&
	setpriv --no-new-privs --bounding-set "$(unit_bounding_set)" "$UNIT" umount v2 &&
	! mountpoint -q "$M2" &&
	assert_gone "$pid" &&
	wait_notify STOPPING=1 &&
	! test -e "$V2/daemon.pid" &&
	"$SNAPFS" fsck "$V2" &&
	vol_mount "$V2" "$M2" &&
	assert_eq before-stop "$(cat "$M2/kept")" &&
	vol_umount "$M2"
'

test_expect_success 'ExecStop of a volume that is not mounted does nothing' '
	"$UNIT" umount v2 2>"$REF/err" &&
	! test -s "$REF/err"
'

test_expect_success 'a daemon that died leaves a mount the restart detaches' '
	( cd / && exec "$UNIT" mount v2 ) >"$TEST_TMP/v2.out" 2>&1 </dev/null &
	pid=$! &&
	for _ in $(seq 600); do mountpoint -q "$M2" && test -s "$V2/daemon.pid" && break; sleep 0.05; done &&
	dd if=/dev/urandom of="$M2/synced" bs=64k count=4 conv=fsync 2>/dev/null &&
	cp "$M2/synced" "$REF/synced" &&
	kill -KILL "$pid"
	wait "$pid" || :
	! stat "$M2" 2>/dev/null
	( cd / && exec "$UNIT" mount v2 ) >"$TEST_TMP/v2.out2" 2>&1 </dev/null &
	pid=$! && echo $pid >"$TEST_TMP/v2.pid" &&
	for _ in $(seq 600); do stat "$M2/synced" >/dev/null 2>&1 && break; sleep 0.05; done &&
	assert_cmp "$REF/synced" "$M2/synced" &&
	assert_grep "the daemon of this mount has died; detaching it" "$TEST_TMP/v2.out2" &&
	"$UNIT" umount v2 &&
	assert_gone "$pid"
'

test_expect_success 'a unit for a volume that does not exist fails with one message' '
	test_must_refuse() { ! "$@" 2>"$REF/err" >"$REF/out"; }
	test_must_refuse "$UNIT" mount nosuch &&
	assert_one_line "$REF/err" &&
	assert_grep "snapfs-unit: nosuch: no such volume: $SNAPFS_VOLUMES_DIR/nosuch.conf does not exist" "$REF/err" &&
	printf "STORE=%s\nMOUNTPOINT=%s\n" "$TEST_TMP/gone.store" "$M2" >"$SNAPFS_VOLUMES_DIR/gone.conf" &&
	test_must_refuse "$UNIT" mount gone &&
	assert_one_line "$REF/err" &&
	assert_grep "gone.conf line 1: STORE=$TEST_TMP/gone.store: no such directory" "$REF/err" &&
	printf "STORE=%s\nMOUNTPOINT=%s\nMOUNTPIONT=x\n" "$V2" "$M2" >"$SNAPFS_VOLUMES_DIR/typo.conf" &&
	test_must_refuse "$UNIT" mount typo &&
	assert_grep "typo.conf line 3: unknown key MOUNTPIONT" "$REF/err" &&
	printf "STORE=%s\nMOUNTPOINT=%s\n" "$V2" "$TEST_TMP/nodir" >"$SNAPFS_VOLUMES_DIR/nodir.conf" &&
	test_must_refuse "$UNIT" mount nodir &&
	assert_grep "MOUNTPOINT=$TEST_TMP/nodir: no such directory" "$REF/err" &&
	printf "STORE=%s\nMOUNTPOINT=%s\nDUMP_FULL_DAY=someday\n" "$V2" "$M2" >"$SNAPFS_VOLUMES_DIR/badday.conf" &&
	test_must_refuse "$UNIT" dump-level badday &&
	assert_grep "DUMP_FULL_DAY: give a day, mon to sun" "$REF/err" &&
	rc=0 && { "$UNIT" mount "../v2" 2>"$REF/err" || rc=$?; } &&
	assert_eq 2 "$rc" "exit status of a bad name" &&
	assert_grep "a volume name is" "$REF/err" &&
	! mountpoint -q "$M2" &&
	assert_eq "" "$("$SNAPFS" snapshot list "$V2" --json | tr -d "[]\n")"
'

# level NAME TODAY LAST_FULL: the level the rotation chooses
level() { "$UNIT" dump-level "$1" --today "$2" --last-full "$3" | cut -d" " -f1; }

test_expect_success 'the rotation: level 0 on the full day, then one level a day' '
	printf "STORE=%s\nDUMP_TO=%s\n" "$V2" "$TEST_TMP" >"$SNAPFS_VOLUMES_DIR/rot.conf" &&
	assert_eq 0 "$(level rot 2026-12-06 2026-11-29)" "a Sunday" &&
	assert_eq 1 "$(level rot 2026-12-07 2026-12-06)" "Monday" &&
	assert_eq 3 "$(level rot 2026-12-09 2026-12-06)" "Wednesday" &&
	assert_eq 6 "$(level rot 2026-12-12 2026-12-06)" "Saturday" &&
	assert_eq 0 "$(level rot 2026-12-09 none)" "no level 0 dump yet" &&
	assert_eq 0 "$(level rot 2026-12-14 2026-12-06)" "Monday after a missed Sunday" &&
	assert_eq 1 "$(level rot 2026-12-15 2026-12-14)" "the day after the make-up" &&
	assert_eq 0 "$(level rot 2026-12-20 2026-12-14)" "the next Sunday" &&
	"$UNIT" dump-level rot --today 2026-12-14 --last-full 2026-12-06 >"$REF/why" &&
	assert_grep "^0 the last level 0 dump of / (2026-12-06) is not of the 6 days before" "$REF/why"
'

test_expect_success 'the rotation: another full day, differential, across a DST change' '
	printf "STORE=%s\nDUMP_FULL_DAY=Wednesday\nDUMP_INCREMENTALS=differential\n" "$V2" \
		>"$SNAPFS_VOLUMES_DIR/diff.conf" &&
	assert_eq 0 "$(level diff 2026-12-09 2026-12-02)" &&
	assert_eq 1 "$(level diff 2026-12-10 2026-12-09)" &&
	assert_eq 1 "$(level diff 2026-12-15 2026-12-09)" &&
	assert_eq 1 "$(TZ=Europe/Berlin level rot 2027-03-29 2027-03-28)" "after the spring change" &&
	assert_eq 2 "$(TZ=America/New_York level rot 2026-11-03 2026-11-01)" "after the autumn change"
'

test_expect_success 'dump runs the rotation on the volume: its dump dates choose the level' '
	today=$(date +%F) &&
	tomorrow=$(date -d "$today + 1 day" +%F) &&
	fullday=$(date -d "$today + 3 days" +%a | tr A-Z a-z) &&
	mkdir -p "$TEST_TMP/dumps" &&
	printf "STORE=%s\nMOUNTPOINT=%s\nDUMP_TO=%s\nDUMP_FULL_DAY=%s\nDUMP_LABEL=t45\n" \
		"$STORE" "$MNT" "$TEST_TMP/dumps" "$fullday" >"$SNAPFS_VOLUMES_DIR/main.conf" &&
	echo one >"$MNT/one" &&
	"$UNIT" dump main >"$REF/out" 2>&1 &&
	assert_grep "level 0 dump of $STORE to $TEST_TMP/dumps/main.$today.level0.dump (no level 0 dump of / is recorded)" "$REF/out" &&
	"$SNAPFS" restore -t -f "$TEST_TMP/dumps/main.$today.level0.dump" >"$REF/list" &&
	assert_grep "\./one$" "$REF/list" &&
	assert_grep "^Level 0" "$REF/list" &&
	assert_eq "1 day 1 after the level 0 dump of $today" "$("$UNIT" dump-level main --today "$tomorrow")" &&
	echo two >"$MNT/two" &&
	"$UNIT" dump main --today "$tomorrow" >"$REF/out" 2>&1 &&
	"$SNAPFS" restore -t -f "$TEST_TMP/dumps/main.$tomorrow.level1.dump" >"$REF/list1" &&
	assert_grep "^Level 1" "$REF/list1" &&
	assert_grep "\./two$" "$REF/list1" &&
	! grep -q "\./one$" "$REF/list1" &&
	"$SNAPFS" dump dates "$MNT" >"$REF/dates" &&
	assert_grep "^/  *1  " "$REF/dates" &&
	! ls "$TEST_TMP/dumps" | grep partial
'

test_expect_success 'a tape (a character device) gets the dump of DUMP_PATH as given' '
	today=$(date +%F) &&
	tomorrow=$(date -d "$today + 1 day" +%F) &&
	fullday=$(date -d "$today + 3 days" +%a) &&
	mkdir -p "$MNT/eng" && echo e >"$MNT/eng/f" &&
	printf "STORE=%s\nMOUNTPOINT=%s\nDUMP_TO=/dev/null\nDUMP_PATH=eng/\nDUMP_FULL_DAY=%s\n" \
		"$STORE" "$MNT" "$fullday" >"$SNAPFS_VOLUMES_DIR/tape.conf" &&
	"$UNIT" check tape >"$REF/out" &&
	assert_grep "tape.conf is right: STORE=$STORE MOUNTPOINT=$MNT\$" "$REF/out" &&
	"$UNIT" check rot >"$REF/out" &&
	assert_grep "rot.conf is right: STORE=$V2 (no MOUNTPOINT: snapfs@rot.service cannot mount it)" "$REF/out" &&
	"$UNIT" dump tape >"$REF/out" 2>&1 &&
	assert_grep "level 0 dump of $STORE/eng to /dev/null (no level 0 dump of /eng is recorded)" "$REF/out" &&
	"$SNAPFS" dump dates "$MNT" >"$REF/dates" &&
	assert_grep "^/eng  *0  " "$REF/dates" &&
	assert_eq "1 day 1 after the level 0 dump of $today" \
		"$("$UNIT" dump-level tape --today "$tomorrow")"
'

test_expect_success 'dump refuses to overwrite a dump file and a target that is neither tape nor directory' '
	tomorrow=$(date -d "$(date +%F) + 1 day" +%F) &&
	! "$UNIT" dump main --today "$tomorrow" 2>"$REF/err" &&
	assert_one_line "$REF/err" &&
	assert_grep "main.$tomorrow.level1.dump already exists; nothing was dumped" "$REF/err" &&
	printf "STORE=%s\nDUMP_TO=%s\n" "$STORE" "$TEST_TMP/dumps/main.$(date +%F).level0.dump" \
		>"$SNAPFS_VOLUMES_DIR/badto.conf" &&
	n=$("$SNAPFS" dump dates "$MNT" --json | grep -o level | wc -l) &&
	! "$UNIT" dump badto 2>"$REF/err" &&
	assert_grep "DUMP_TO=.*: neither a tape device nor a directory" "$REF/err" &&
	assert_eq "$n" "$("$SNAPFS" dump dates "$MNT" --json | grep -o level | wc -l)"
'

test_expect_success 'mirror updates each destination, and one that fails stops no other' '
	export SNAPFS_MIRROR_DIR=$TEST_TMP/mirrors &&
	"$SNAPFS" mkfs "$TEST_TMP/dr.store" --size 256M >/dev/null &&
	"$SNAPFS" mirror create "$MNT" "$TEST_TMP/dr.store" >/dev/null &&
	"$SNAPFS" mirror initialize "$TEST_TMP/dr.store" >/dev/null &&
	echo mirrored >"$MNT/mirrored" &&
	printf "STORE=%s\nMIRROR_DESTINATIONS=\"%s %s\"\n" "$STORE" "$TEST_TMP/nosuch.store" \
		"$TEST_TMP/dr.store" >"$SNAPFS_VOLUMES_DIR/mir.conf" &&
	! "$UNIT" mirror mir >"$REF/out" 2>"$REF/err" &&
	assert_grep "mir: the update of $TEST_TMP/nosuch.store failed" "$REF/err" &&
	mkdir -p "$TEST_TMP/dr.mnt" &&
	vol_mount "$TEST_TMP/dr.store" "$TEST_TMP/dr.mnt" &&
	assert_eq mirrored "$(cat "$TEST_TMP/dr.mnt/mirrored")" &&
	vol_umount "$TEST_TMP/dr.mnt"
'

test_expect_success ROOT 'mount -t fuse.snapfs and -t snapfs run the installed helper, and umount keeps the data' '
	made= &&
	for h in mount.fuse.snapfs mount.snapfs; do
		if ! [ -e /sbin/$h ]; then ln -s "$PREFIX/sbin/$h" /sbin/$h && made="$made /sbin/$h"; fi
	done &&
	trap "rm -f $made" EXIT &&
	cd "$TEST_TMP" &&
	SNAPFS=$SNAPFS mount -t fuse.snapfs -o noatime,x-systemd.requires=network-online.target,_netdev "$V2" "$M2" &&
	say "$M2" >>"$TEST_TMP/.mounts" &&
	grep " $M2 fuse.snapfs " /proc/mounts | grep -q noatime &&
	pid=$(cat "$V2/daemon.pid") &&
	dd if=/dev/urandom of="$M2/via-fstab" bs=1M count=4 2>/dev/null &&
	cp "$M2/via-fstab" "$REF/via-fstab" &&
	umount "$M2" &&
	wait_gone "$pid" &&
	SNAPFS=$SNAPFS mount -t snapfs "$V2" "$M2" &&
	grep " $M2 fuse.snapfs " /proc/mounts &&
	assert_cmp "$REF/via-fstab" "$M2/via-fstab" &&
	vol_umount "$M2"
'

if [ "$(cat /proc/1/comm)" = systemd ]; then
	test_set_prereq SYSTEMD
else
	say "# skipped below: a real start of snapfs@.service (systemd is not PID 1 here, PID 1 is $(cat /proc/1/comm))"
fi
test_expect_success ROOT,SYSTEMD 'a real start and stop of snapfs@.service under systemd' '
	cleanup() {
		systemctl stop snapfs@t45v2.service snapfs@t45none.service 2>/dev/null
		rm -rf /run/systemd/system/snapfs@.service /run/systemd/system/snapfs@.service.d
		systemctl daemon-reload
	}
	trap cleanup EXIT
	cp "$UNITDIR/snapfs@.service" /run/systemd/system/ &&
	mkdir -p /run/systemd/system/snapfs@.service.d &&
	printf "[Service]\nEnvironment=SNAPFS=%s SNAPFS_VOLUMES_DIR=%s\n" "$SNAPFS" "$SNAPFS_VOLUMES_DIR" \
		>/run/systemd/system/snapfs@.service.d/t45.conf &&
	cp "$SNAPFS_VOLUMES_DIR/v2.conf" "$SNAPFS_VOLUMES_DIR/t45v2.conf" &&
	systemctl daemon-reload &&
	systemctl start snapfs@t45v2.service &&
	systemctl is-active snapfs@t45v2.service &&
	grep " $M2 fuse.snapfs " /proc/mounts &&
	echo under-systemd >"$M2/unit" &&
	systemctl stop snapfs@t45v2.service &&
	! mountpoint -q "$M2" &&
	vol_mount "$V2" "$M2" && assert_eq under-systemd "$(cat "$M2/unit")" && vol_umount "$M2" &&
	! systemctl start snapfs@t45none.service &&
	journalctl -u snapfs@t45none.service --no-pager | grep "no such volume"
'

test_done
