# lib.sh - a small test library for the snapfs integration tests.
#
# In the spirit of git's t/test-lib.sh.  A test script looks like:
#
#     #!/bin/bash
#     . "$(dirname "$0")/lib.sh"
#     vol_create
#     test_expect_success 'a written file reads back' '
#         echo hello >f &&
#         assert_eq hello "$(cat f)"
#     '
#     test_expect_success SNAPFS,ROOT 'only on snapfs, as root' '...'
#     test_done
#
# Each test body runs in a subshell with `set -e`, with the volume's root
# ($MNT) as its working directory, under a watchdog (TEST_TIMEOUT seconds).
# Files created by one test stay for the next ones.
#
# Environment:
#   SNAPFS          the binary (default /work/main/build/asan/snapfs)
#   TEST_BACKEND    snapfs (default) or dir: `dir` runs the tests against a
#                   plain directory of the host filesystem; tests that only
#                   make sense for snapfs (prerequisite SNAPFS, REMOUNT...)
#                   skip themselves.
#   TEST_DIR_TMPFS  with TEST_BACKEND=dir and as root, `vol_create --size S`
#                   mounts a tmpfs of that size so the ENOSPC tests can run.
#   SNAPFS_MOUNT_OPTS  passed as `-o OPTS` to `snapfs mount`.
#   TEST_PYTHON     the python3 of the tests (default /usr/bin/python3 if
#                   there, else the first on PATH).
#   TEST_TIMEOUT    seconds a single test may take (default 120).
#   TEST_TIMING     if set, each result line ends with "# N ms".
#   TMPDIR          where the per-script temporary directory is made.
# Options of every test script: -v (show output of every test), -i (stop at
# the first failure), -k (keep the temporary directory), --run=N,M (only
# run these test numbers; the others are skipped).
#
# Prerequisites (comma-separated, `!X` for "not X"): SNAPFS and REMOUNT
# (backend snapfs), ROOT, NOBODY (can act as uid 65534 on the volume),
# PYTHON, SIZED (vol_create --size is in force), and features of the
# filesystem that are required of snapfs but probed on the host with
# TEST_BACKEND=dir: XATTR_USER, XATTR_TRUSTED, XATTR_SECURITY, BIG_XATTR
# (60 KiB values), ACL, TIME_PRE1970, TIME_POST2038, SPARSE_5G.
#
# Volumes: vol_create [MKFS OPTIONS], vol_remount, vol_mount STORE MNT,
# vol_umount MNT, daemon_pid, crash_remount WRITER; everything is
# unmounted at exit (trap);
# test_at_exit 'COMMANDS' runs COMMANDS first (to stop servers).
# Assertions: assert_eq, assert_ne, assert_le, assert_stat, assert_cmp,
# assert_zeros, assert_missing, assert_fails, assert_gone, assert_errno
# (via sysc.py: one system call, prints the errno name), assert_one_line,
# assert_grep.  Helpers: pid_running, wait_gone, next_second, as_nobody,
# root_chown, root_mknod,
# rand_file, atime_ns/mtime_ns/ctime_ns, long_name, store_listing, sysc,
# snaps, mirror_field, peer_server_start, wait_snaps, use_policy_clock and
# set_clock (the policies' test clock); fill.py (in $TEST_DIR) writes
# files until the volume is full.
#
# With the snapfs backend, test_done adds three tests at the end: the
# volume unmounts and its daemon exits, fsck finds the store clean, and no
# snapfs process wrote a sanitizer report (ASAN/UBSAN log_path is set to a
# directory of the temporary directory).

TEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEST_NAME=$(basename "$0" .sh)
SNAPFS=${SNAPFS:-$(cd "$TEST_DIR/../.." && pwd)/build/asan/snapfs}
TEST_BACKEND=${TEST_BACKEND:-snapfs}
TEST_TIMEOUT=${TEST_TIMEOUT:-120}
export SNAPFS TEST_BACKEND LC_ALL=C TZ=UTC
umask 022

test_verbose= test_immediate= test_keep= test_run=
for arg in "$@"; do
	case $arg in
	-v|--verbose) test_verbose=t ;;
	-i|--immediate) test_immediate=t ;;
	-k|--keep) test_keep=t ;;
	--run=*) test_run=,${arg#--run=}, ;;
	*) echo "usage: $0 [-v] [-i] [-k] [--run=N,M,...]" >&2; exit 2 ;;
	esac
done

case $TEST_BACKEND in
snapfs|dir) ;;
*) echo "TEST_BACKEND must be snapfs or dir, not '$TEST_BACKEND'" >&2; exit 2 ;;
esac

test_count=0 test_passed=0 test_failed=0 test_skipped=0
test_vol_created= test_done_called=

say() { printf '%s\n' "$*"; }
bug() { say "BUG in test script: $*" >&2; exit 3; }

# ---------------------------------------------------------------- temp dir

TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/snapfs-$TEST_NAME.XXXXXX") ||
	{ say "cannot create a temporary directory" >&2; exit 1; }
# other users (65534) must be able to reach the volume through this path
chmod 755 "$TEST_TMP"
REF=$TEST_TMP/ref		# scratch space outside the volume
mkdir -p "$REF" "$TEST_TMP/bin" "$TEST_TMP/log"
: >"$TEST_TMP/.mounts"
STORE=$TEST_TMP/store
MNT=$TEST_TMP/mnt
export TEST_TMP REF STORE MNT

if [ -z "$TEST_PYTHON" ]; then
	if [ -x /usr/bin/python3 ]; then TEST_PYTHON=/usr/bin/python3
	else TEST_PYTHON=$(command -v python3); fi
fi
# `python3` in the tests is $TEST_PYTHON: a version manager's shim (pyenv)
# first on PATH costs most of a second a call, and the tests call python
# hundreds of times.  They use the standard library only.
[ -n "$TEST_PYTHON" ] && ln -s "$TEST_PYTHON" "$TEST_TMP/bin/python3"
cp "$TEST_DIR/sysc.py" "$TEST_TMP/bin/sysc.py"
cat >"$TEST_TMP/bin/sysc" <<EOF
#!/bin/sh
exec "$TEST_PYTHON" "$TEST_TMP/bin/sysc.py" "\$@"
EOF
chmod 755 "$TEST_TMP/bin" "$TEST_TMP/bin/sysc" "$TEST_TMP/bin/sysc.py"
PATH=$TEST_TMP/bin:$PATH
export PATH

# Sanitizer reports of every snapfs process (the daemon's stderr goes
# nowhere) are collected here; test_done fails if there are any.
mkdir -p "$TEST_TMP/sanitizer"
case ${ASAN_OPTIONS-} in *log_path=*) ;; *)
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$TEST_TMP/sanitizer/asan" ;;
esac
case ${UBSAN_OPTIONS-} in *log_path=*) ;; *)
	UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$TEST_TMP/sanitizer/ubsan" ;;
esac
export ASAN_OPTIONS UBSAN_OPTIONS

# ----------------------------------------------------------- prerequisites

test_prereqs=,
test_set_prereq() { test_prereqs="$test_prereqs$1,"; }

# test_lazy_prereq NAME 'script': NAME holds if script succeeds; evaluated
# (once) the first time a test asks for it.
test_lazy_prereq() { eval "test_lazy_$1=\$2"; }

# test_fs_prereq NAME 'probe': a feature of the filesystem under test.  It is
# required of snapfs (so a missing feature shows up as a failure), and is
# probed on the host filesystem with TEST_BACKEND=dir.
test_fs_prereq() {
	if [ "$TEST_BACKEND" = snapfs ]; then
		test_set_prereq "$1"
	else
		test_lazy_prereq "$1" "$2"
	fi
}

test_have_one_prereq() {
	case $test_prereqs in *,$1,*) return 0 ;; esac
	case $test_prereqs_missing in *,$1,*) return 1 ;; esac
	local script
	eval "script=\${test_lazy_$1-}"
	if [ -n "$script" ] &&
	   ( cd "${MNT:-$TEST_TMP}" 2>/dev/null || cd "$TEST_TMP"
	     eval "$script" ) >/dev/null 2>&1 </dev/null; then
		test_set_prereq "$1"
		return 0
	fi
	test_prereqs_missing="${test_prereqs_missing:-,}$1,"
	return 1
}

# test_have_prereq A,B,!C
test_have_prereq() {
	local p neg IFS=,
	missing_prereq=
	for p in $1; do
		neg=
		case $p in !*) neg=t p=${p#!} ;; esac
		if test_have_one_prereq "$p"; then
			[ -z "$neg" ] && continue
		else
			[ -n "$neg" ] && continue
		fi
		missing_prereq=${missing_prereq:+$missing_prereq,}${neg:+!}$p
	done
	[ -z "$missing_prereq" ]
}

[ "$TEST_BACKEND" = snapfs ] && test_set_prereq SNAPFS && test_set_prereq REMOUNT
[ "$(id -u)" = 0 ] && test_set_prereq ROOT
# NOBODY: we can run commands as uid 65534 and that user can reach $MNT.
# snapfs mounts as root with allow_other, so there it is not probed: a
# volume that other users cannot reach makes those tests fail, not skip.
if [ "$TEST_BACKEND" = snapfs ]; then
	test_lazy_prereq NOBODY '[ "$(id -u)" = 0 ] && command -v setpriv'
else
	test_lazy_prereq NOBODY '
		[ "$(id -u)" = 0 ] && command -v setpriv &&
		as_nobody test -x "$MNT" && as_nobody test -r "$MNT"
	'
fi
test_lazy_prereq PYTHON '"$TEST_PYTHON" -c "import ctypes"'
test_fs_prereq XATTR_USER 'p=$MNT/.probe-x; touch $p && setfattr -n user.p -v 1 $p; r=$?; rm -f $p; exit $r'
test_fs_prereq XATTR_TRUSTED 'p=$MNT/.probe-t; touch $p && setfattr -n trusted.p -v 1 $p; r=$?; rm -f $p; exit $r'
test_fs_prereq XATTR_SECURITY 'p=$MNT/.probe-s; touch $p && setfattr -n security.p -v 1 $p; r=$?; rm -f $p; exit $r'
test_fs_prereq BIG_XATTR 'p=$MNT/.probe-b; touch $p && head -c 61440 /dev/zero >$TEST_TMP/.pv &&
	r=$(sysc setxattr $p user.big @$TEST_TMP/.pv); rm -f $p; test "$r" = OK'
test_fs_prereq ACL 'p=$MNT/.probe-a; touch $p && setfacl -m u:65534:r $p; r=$?; rm -f $p; exit $r'
test_fs_prereq TIME_PRE1970 'p=$MNT/.probe-t1; touch -d "1960-01-01 UTC" $p && test "$(stat -c %Y $p)" = -315619200; r=$?; rm -f $p; exit $r'
test_fs_prereq TIME_POST2038 'p=$MNT/.probe-t2; touch -d "2100-01-01 UTC" $p && test "$(stat -c %Y $p)" = 4102444800; r=$?; rm -f $p; exit $r'
test_fs_prereq SPARSE_5G 'p=$MNT/.probe-sp; truncate -s 6G $p; r=$?; rm -f $p; exit $r'

# --------------------------------------------------------------- volumes

# vol_mount STORE MNT: mount a snapfs store and remember to unmount it.
vol_mount() {
	mkdir -p "$2" &&
	(cd "$TEST_TMP" &&	# so that no volume is busy because of us
	 "$SNAPFS" mount "$1" "$2" ${SNAPFS_MOUNT_OPTS:+-o "$SNAPFS_MOUNT_OPTS"}) ||
		{ say "error: '$SNAPFS mount $1 $2' failed" >&2; return 1; }
	grep -qxF -- "$2" "$TEST_TMP/.mounts" || say "$2" >>"$TEST_TMP/.mounts"
	mountpoint -q "$2" ||
		{ say "error: $2 is not a mount point after 'snapfs mount'" >&2; return 1; }
}

# vol_umount MNT: unmount with `snapfs umount`, which waits for the daemon.
vol_umount() {
	timeout 60 "$SNAPFS" umount "$1" ||
		{ say "error: '$SNAPFS umount $1' failed" >&2; return 1; }
	! mountpoint -q "$1" ||
		{ say "error: $1 still mounted after 'snapfs umount'" >&2; return 1; }
}

# vol_create [MKFS OPTIONS...]: make a fresh volume at $MNT (store $STORE).
vol_create() {
	mkdir -p "$MNT" || return 1
	test_vol_created=t
	case $TEST_BACKEND in
	dir)
		local size= prev=
		for a in "$@"; do
			[ "$prev" = --size ] && size=$a
			case $a in --size=*) size=${a#--size=} ;; esac
			prev=$a
		done
		if [ -n "$size" ] && [ -n "$TEST_DIR_TMPFS" ] && [ "$(id -u)" = 0 ]; then
			mount -t tmpfs -o "size=$size,mode=755" tmpfs "$MNT" || return 1
			say "$MNT" >>"$TEST_TMP/.mounts"
			test_set_prereq SIZED
		fi
		chmod 755 "$MNT"
		;;
	snapfs)
		test_set_prereq SIZED
		if ! [ -x "$SNAPFS" ]; then
			say "error: snapfs binary '$SNAPFS' not found (set SNAPFS=, or TEST_BACKEND=dir)" >&2
			return 1
		fi
		"$SNAPFS" mkfs "$STORE" "$@" >"$TEST_TMP/log/mkfs.out" 2>&1 || {
			cat "$TEST_TMP/log/mkfs.out" >&2
			say "error: '$SNAPFS mkfs $STORE $*' failed" >&2
			return 1
		}
		vol_mount "$STORE" "$MNT"
		;;
	esac
}

# vol_remount: unmount and mount the volume again (a no-op for dir).
vol_remount() {
	[ "$TEST_BACKEND" = dir ] && { sync; return 0; }
	local here=$PWD
	cd "$TEST_TMP" || return 1
	vol_umount "$MNT" && vol_mount "$STORE" "$MNT" || return 1
	cd "$here" 2>/dev/null || cd "$MNT"
}

# daemon_pid: the pid in STORE/daemon.pid (empty if none).
daemon_pid() { cat "$STORE/daemon.pid" 2>/dev/null; }

# crash_remount WRITER: SIGKILL the daemon of $MNT (a crash), stop the
# process WRITER (a child of the test), drop the dead mount, check the
# store with fsck and mount it again; the caller is left in $TEST_TMP.
crash_remount() {
	local pid
	pid=$(daemon_pid) && kill -9 "$pid" && wait_gone "$pid" || return 1
	{ kill "$1"; wait "$1"; } 2>/dev/null
	cd "$TEST_TMP" &&
	{ fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT"; } &&
	"$SNAPFS" fsck "$STORE" &&
	vol_mount "$STORE" "$MNT"
}

# test_at_exit 'COMMANDS': run COMMANDS when the script ends (test_done,
# test_bail, a signal), before the volumes are unmounted and the temporary
# directory is removed: to stop servers a script started.
test_at_exit_cmds=
test_at_exit() { test_at_exit_cmds="$test_at_exit_cmds$1;"; }

vol_cleanup() {
	[ -n "$test_cleaned" ] && return 0
	test_cleaned=t
	eval "$test_at_exit_cmds"
	cd / || :
	local m pid left=
	pid=$(daemon_pid)
	if [ -s "$TEST_TMP/.mounts" ]; then
		for m in $(tac "$TEST_TMP/.mounts"); do
			mountpoint -q "$m" || continue
			case $TEST_BACKEND in
			snapfs) timeout 30 "$SNAPFS" umount "$m" >/dev/null 2>&1 ;;
			dir) umount "$m" 2>/dev/null ;;
			esac
			mountpoint -q "$m" || continue
			say "warning: $m still mounted; lazy unmount" >&2
			fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		done
	fi
	# a daemon this script started must not outlive it
	if [ -n "$pid" ] && pid_running "$pid" &&
	   grep -q snapfs "/proc/$pid/cmdline" 2>/dev/null; then
		sleep 1
		pid_running "$pid" && kill -TERM "$pid" 2>/dev/null
	fi
	if grep -qF " $TEST_TMP/" /proc/self/mounts; then
		left=t
		say "warning: something is still mounted under $TEST_TMP; not removing it" >&2
	fi
	if [ -z "$left" ]; then
		if [ -n "$test_keep" ] || { [ "$test_failed" != 0 ] && [ -n "$test_immediate" ]; }; then
			say "# kept $TEST_TMP" >&2
		else
			rm -rf "$TEST_TMP"
		fi
	fi
}
trap 'vol_cleanup' EXIT
trap 'vol_cleanup; exit 130' INT TERM HUP

# ------------------------------------------------------------- assertions
# All of them print a diagnostic on stderr and return 1 on failure.

assert_eq() {	# assert_eq EXPECTED ACTUAL [WHAT]
	[ "$1" = "$2" ] && return 0
	say "assert_eq failed${3:+ ($3)}:" >&2
	say "  expected: '$1'" >&2
	say "  actual:   '$2'" >&2
	return 1
}

assert_ne() {	# assert_ne UNEXPECTED ACTUAL [WHAT]
	[ "$1" != "$2" ] && return 0
	say "assert_ne failed${3:+ ($3)}: both are '$1'" >&2
	return 1
}

assert_le() {	# assert_le A B [WHAT]: integers, A <= B
	[ "$1" -le "$2" ] && return 0
	say "assert_le failed${3:+ ($3)}: $1 > $2" >&2
	return 1
}

assert_stat() {	# assert_stat PATH FORMAT EXPECTED (lstat)
	assert_eq "$3" "$(stat -c "$2" -- "$1")" "stat -c '$2' $1"
}

assert_cmp() {	# assert_cmp EXPECTED_FILE ACTUAL_FILE
	cmp -- "$1" "$2" >&2 && return 0
	say "assert_cmp failed: $1 and $2 differ" >&2
	return 1
}

assert_zeros() { # assert_zeros FILE OFFSET LENGTH: that range reads as zeros
	cmp -n "$3" -i "$2:0" -- "$1" /dev/zero >&2 && return 0
	say "assert_zeros failed: $1 [$2, +$3) is not all zeros" >&2
	return 1
}

assert_missing() { # assert_missing PATH: no such entry (lstat fails)
	local r
	r=$(sysc lstat "$1")
	assert_eq ENOENT "$r" "lstat $1"
}

assert_fails() { # assert_fails COMMAND...: the command exits non-zero
	"$@" && { say "assert_fails: '$*' succeeded" >&2; return 1; }
	return 0
}

# pid_running PID: the process exists and has not exited.  A zombie has
# exited (its files are closed, its locks released): a daemon's parent is
# init, which here may collect it a second or more later.
pid_running() {
	kill -0 "$1" 2>/dev/null || return 1
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	case $stat in Z*|X*) return 1 ;; esac
	return 0
}

# wait_gone PID [SECONDS]: wait until the process has exited (default 60 s).
wait_gone() {
	local i
	for i in $(seq $((${2:-60} * 20))); do
		pid_running "$1" || return 0
		sleep 0.05
	done
	say "wait_gone: process $1 still running after ${2:-60} s" >&2
	return 1
}

assert_gone() { # assert_gone PID: no such process any more (or a zombie)
	pid_running "$1" || return 0
	say "assert_gone failed: process $1 is still running" >&2
	return 1
}

# assert_errno ERRNO [--nobody] OP ARGS...: run `sysc OP ARGS` (one system
# call, see sysc.py) and check that it fails with ERRNO (or succeeds: OK).
assert_errno() {
	local want=$1 r
	shift
	if [ "$1" = --nobody ]; then
		shift
		r=$(as_nobody sysc "$@") || return 1
	else
		r=$(sysc "$@") || return 1
	fi
	r=${r%% *}
	assert_eq "$want" "$r" "errno of $*"
}

assert_one_line() { # assert_one_line FILE: exactly one (non-empty) line
	local n
	n=$(grep -c '' "$1") || :
	[ "$n" = 1 ] && [ -n "$(tr -d '[:space:]' <"$1")" ] && return 0
	say "assert_one_line failed: $1 has $n lines:" >&2
	sed 's/^/  | /' "$1" >&2
	return 1
}

assert_grep() { # assert_grep PATTERN FILE
	grep -q -e "$1" -- "$2" && return 0
	say "assert_grep failed: /$1/ not in $2:" >&2
	sed 's/^/  | /' "$2" | head -20 >&2
	return 1
}

# ----------------------------------------------------------- other helpers

# next_second: wait until the clock has moved on to the next whole second,
# and a little more for the kernel's coarse clock (file times, time()):
# what is done after it is dated a later second than what was done before.
next_second() {
	local s
	s=$(date +%s)
	while [ "$(date +%s)" = "$s" ]; do sleep 0.05; done
	sleep 0.05
}

# as_nobody COMMAND...: run as uid/gid 65534 without supplementary groups.
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }

# root_chown SPEC FILE..., root_mknod ARGS...: setup steps that only root
# can take.  As another user they do nothing: the files keep the tester's
# own owner and no device node is made, and the tests compare the tree as
# it then is.  (Tests that assert the step itself take the ROOT prereq.)
root_chown() { test_have_prereq ROOT || return 0; chown "$@"; }
root_mknod() { test_have_prereq ROOT || return 0; mknod "$@"; }

# rand_file PATH SIZE_IN_BYTES: incompressible content
rand_file() { head -c "$2" /dev/urandom >"$1"; }

# mtime_ns/atime_ns/ctime_ns PATH (lstat)
atime_ns() { local r; r=$(sysc times "$1") && set -- $r && echo "$2"; }
mtime_ns() { local r; r=$(sysc times "$1") && set -- $r && echo "$3"; }
ctime_ns() { local r; r=$(sysc times "$1") && set -- $r && echo "$4"; }

# long_name N [CHAR]: a name of N bytes
long_name() { head -c "$1" /dev/zero | tr '\0' "${2:-n}"; }

# snaps [VOL]: the names of VOL's snapshots (default $MNT), oldest first
snaps() {
	"$SNAPFS" snapshot list "${1:-$MNT}" --json |
	python3 -c "import json,sys; print(' '.join(s['name'] for s in json.load(sys.stdin)))"
}
# wait_snaps 'NAMES' [VOL]: poll until VOL's snapshots are exactly NAMES (30 s)
wait_snaps() {
	local i
	for i in $(seq 300); do
		[ "$(snaps "${2:-$MNT}")" = "$1" ] && return 0
		sleep 0.1
	done
	assert_eq "$1" "$(snaps "${2:-$MNT}")" "snapshots after waiting 30 s"
}
# use_policy_clock 'YYYY-MM-DD HH:MM': daemons mounted from now on run
# their policies by the test clock $CLOCK (fs/scheduler.c), ticking every
# 50 ms, set to that time; set_clock 'YYYY-MM-DD HH:MM' moves it (the
# daemon's time from its next tick on)
use_policy_clock() {
	CLOCK=$TEST_TMP/clock
	SNAPFS_CLOCK_FILE=$CLOCK SNAPFS_POLICY_TICK_MS=50
	export CLOCK SNAPFS_CLOCK_FILE SNAPFS_POLICY_TICK_MS
	set_clock "$1"
}
set_clock() { date -u -d "$1" +%s >"$CLOCK.new" && mv "$CLOCK.new" "$CLOCK"; }
# mirror_field DST FIELD: FIELD of DST's relationship, from mirror show --json
mirror_field() {
	"$SNAPFS" mirror show "$1" --json |
	python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"$2\"])"
}

# peer_server_start DIR NAME [OPTIONS...]: `snapfs peer serve` of config
# dir DIR in the foreground, in the background, on a port of 127.0.0.1 the
# system picks (printed); its stdout, stderr (the log) and exit status in
# $TEST_TMP/NAME.out, .log and .rc.  Stop it by its DIR/serve.pid.
peer_server_start() {
	local dir=$1 name=$2
	shift 2
	( cd / &&	# so that no volume is busy because of it
	  SNAPFS_CONFIG_DIR=$dir "$SNAPFS" peer serve --listen 127.0.0.1:0 --foreground "$@" \
		>"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.log" </dev/null
	  echo $? >"$TEST_TMP/$name.rc" ) >/dev/null 2>&1 &
	for _ in $(seq 100); do
		grep -q '^listening on ' "$TEST_TMP/$name.out" 2>/dev/null && break
		sleep 0.1
	done
	sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$TEST_TMP/$name.out"
}

# store_listing DIR: names, types, sizes and checksums of all files of DIR
store_listing() {
	(cd "$1" && find . -printf '%p %y %m %s\n' | sort &&
	 find . -type f -print0 | sort -z | xargs -0r sha256sum)
}

# ------------------------------------------------------------- the runner

test_expect_success() {
	local prereq=
	[ $# = 3 ] && { prereq=$1; shift; }
	[ $# = 2 ] || bug "test_expect_success [PREREQ] DESCRIPTION BODY"
	test_count=$((test_count + 1))
	local n=$test_count desc=$1 body=$2
	if [ -n "$test_run" ]; then
		case $test_run in *,$n,*) ;; *)
			test_skipped=$((test_skipped + 1))
			say "ok $n # skip $desc (--run)"
			return 0 ;;
		esac
	fi
	if [ -n "$prereq" ] && ! test_have_prereq "$prereq"; then
		test_skipped=$((test_skipped + 1))
		say "ok $n # skip $desc (missing $missing_prereq)"
		return 0
	fi
	local log=$TEST_TMP/log/test-$n.log wd pid rc dir=$TEST_TMP
	[ -n "$test_vol_created" ] && [ -d "$MNT" ] && dir=$MNT
	local t0=${EPOCHREALTIME/./}
	set -m	# own process group for the body, so the watchdog can kill it all
	(
		cd "$dir" || exit 1
		set -e
		eval "$body"
	) </dev/null >"$log" 2>&1 &
	pid=$!
	( sleep "$TEST_TIMEOUT"
	  say "TIMEOUT: killed after $TEST_TIMEOUT s" >>"$log"
	  kill -KILL -- "-$pid" ) </dev/null >/dev/null 2>&1 &
	wd=$!
	wait "$pid" 2>/dev/null
	rc=$?
	kill -- "-$wd" 2>/dev/null
	wait "$wd" 2>/dev/null
	set +m
	local took=
	[ -n "$TEST_TIMING" ] && took=$(( (${EPOCHREALTIME/./} - t0) / 1000 )) &&
		took=" # ${took} ms"
	if [ "$rc" = 0 ]; then
		test_passed=$((test_passed + 1))
		say "ok $n - $desc$took"
		[ -n "$test_verbose" ] && [ -s "$log" ] && sed 's/^/#   /' "$log"
	else
		test_failed=$((test_failed + 1))
		say "not ok $n - $desc (exit $rc)$took"
		say "#   body:"
		printf '%s\n' "$body" | sed -e '1{/^[[:space:]]*$/d;}' -e 's/^/#   > /' 
		[ -s "$log" ] && { say "#   output:"; sed 's/^/#   | /' "$log"; }
		if [ -n "$test_immediate" ]; then
			test_done
		fi
	fi
	return 0
}

# test_done: final checks, the closing line "N passed, M failed", exit status.
test_done() {
	[ -n "$test_done_called" ] && exit 1
	test_done_called=t
	if [ "$TEST_BACKEND" = snapfs ] && [ -n "$test_vol_created" ] &&
	   [ "$test_failed" = 0 -o -z "$test_immediate" ] &&
	   mountpoint -q "$MNT"; then
		test_expect_success 'snapfs umount unmounts and waits for the daemon to exit' '
			cd "$TEST_TMP" &&
			pid=$(daemon_pid) &&
			test -n "$pid" &&
			vol_umount "$MNT" &&
			assert_gone "$pid"
		'
		test_expect_success 'fsck finds the store clean after the tests' '
			"$SNAPFS" fsck "$STORE"
		'
	fi
	if [ "$TEST_BACKEND" = snapfs ] && [ -n "$test_vol_created" ]; then
		test_expect_success 'no sanitizer report from any snapfs process' '
			set -- "$TEST_TMP"/sanitizer/*
			test -e "$1" || exit 0
			for f; do say "== $f"; head -n 80 "$f"; done
			exit 1
		'
	fi
	[ "$test_skipped" != 0 ] && say "# $test_skipped skipped"
	vol_cleanup
	say "$test_passed passed, $test_failed failed"
	[ "$test_failed" = 0 ]
	exit
}

# test_bail REASON: give up on the whole script (counts as one failure).
test_bail() {
	say "Bail out! $*"
	test_failed=$((test_failed + 1))
	test_done_called=t
	vol_cleanup
	say "$test_passed passed, $test_failed failed"
	exit 1
}
