#!/bin/bash
# snapfs health: a healthy volume exits 0 with one OK line per check; each
# condition made here gives its level, check name and message, and the
# exit status of the worst (1 warning, 2 critical): a volume nearly full,
# free space shrinking fast (the daemon's samples, by the test clock), an
# LMDB reader slot of a killed process, a clone killed before it ended
# (its hold and partial store), a certificate about to expire, a mirror
# lagging past its schedule, a peer that does not answer, an old dump;
# --fix cleans the reader slot and the clone's leftovers; bad options exit
# 3 with one message.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
test_have_prereq PYTHON || { say "# skipping: needs python3"; test_done; }
export SNAPFS_CONFIG_DIR=$TEST_TMP/peers SNAPFS_MIRROR_DIR=$TEST_TMP/mirrors
mkdir -p "$SNAPFS_CONFIG_DIR" "$SNAPFS_MIRROR_DIR" && chmod 700 "$SNAPFS_CONFIG_DIR"
use_policy_clock "$(date -u -d @$(date +%s) '+%Y-%m-%d %H:%M')"
T0=$(cat "$CLOCK")
vol_create --size 1G
at() { echo $((T0 + $1)) >"$CLOCK.new" && mv "$CLOCK.new" "$CLOCK"; }
test_at_exit 'f=$TEST_TMP/srv/serve.pid; [ -s "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null'

# health ARGS...: run it, output in $REF/h, exit status in $REF/rc
health() { "$SNAPFS" health "$@" >"$REF/h" 2>"$REF/h.err"; echo $? >"$REF/rc"; }
rc() { cat "$REF/rc"; }

test_expect_success 'a healthy volume: exit 0, one OK line per check' '
	echo hello >a &&
	health "$MNT" &&
	cat "$REF/h" &&
	assert_eq 0 "$(rc)" &&
	for check in space consistency snapshots dumps leftovers readers; do
		assert_eq 1 "$(grep -c "^OK $check $MNT: " "$REF/h")" "$check" || exit 1
	done &&
	assert_grep "^OK space $MNT: [0-9]% of 1.00 GiB used" "$REF/h" &&
	assert_grep "^OK consistency $MNT: quick check clean" "$REF/h" &&
	health "$MNT" --full && assert_eq 0 "$(rc)" &&
	assert_grep "^OK consistency $MNT: fsck clean" "$REF/h" &&
	health "$MNT" --json && assert_eq 0 "$(rc)" &&
	python3 -c "
import json
d=json.load(open(\"$REF/h\"))
assert d[\"status\"] == \"ok\", d
assert {c[\"check\"] for c in d[\"checks\"]} >= {\"space\", \"readers\", \"leftovers\"}, d"
'

test_expect_success 'free space shrinking fast: the trend from the daemon'"'"'s hourly samples is critical when it gives less than 7 days' '
	health "$MNT" && assert_grep "trend not known yet (1 sample;" "$REF/h" &&
	head -c 60M /dev/urandom >big1 && sync &&
	at 7200 &&
	for i in $(seq 100); do health "$MNT"; grep -q "(2 samples)\|2 samples;" "$REF/h" && break; sleep 0.1; done &&
	head -c 60M /dev/urandom >big2 && sync &&
	at 14400 &&
	for i in $(seq 100); do health "$MNT"; grep -q "(3 samples)" "$REF/h" && break; sleep 0.1; done &&
	cat "$REF/h" &&
	assert_eq 2 "$(rc)" &&
	assert_grep "^CRITICAL space $MNT: [0-9]*% of 1.00 GiB used, .* available; trend +[0-9.]* MiB a day over 0.2 days (3 samples), full in about [0-9.]* days" "$REF/h" &&
	rm big1 big2 && at 3600000 &&
	for i in $(seq 100); do health "$MNT"; [ "$(rc)" = 0 ] && break; sleep 0.1; done &&
	assert_eq 0 "$(rc)"
'

# (as root only: where writes stop depends on the reserve a daemon run by
# root keeps, as in t34 and t35)
test_expect_success ROOT 'a nearly full volume: a warning from 85% used, critical from 95%' '
	"$SNAPFS" mkfs "$TEST_TMP/small.store" --size 256M >/dev/null &&
	vol_mount "$TEST_TMP/small.store" "$TEST_TMP/small" &&
	python3 "$TEST_DIR/fill.py" "$TEST_TMP/small/fill" >/dev/null &&
	health "$TEST_TMP/small" &&
	cat "$REF/h" &&
	# where write() meets ENOSPC varies a little (t35): 85% or more used
	# is a warning, 95% or more critical
	pct=$(sed -n "s|^[A-Z]* space $TEST_TMP/small: \([0-9]*\)% of 256.00 MiB used.*|\1|p" "$REF/h") &&
	assert_le 85 "$pct" "percent used when full" &&
	if [ "$pct" -ge 95 ]; then level=CRITICAL code=2; else level=WARNING code=1; fi &&
	assert_eq $code "$(rc)" &&
	assert_grep "^$level space $TEST_TMP/small: $pct% of 256.00 MiB used" "$REF/h" &&
	rm "$TEST_TMP/small/fill" && vol_umount "$TEST_TMP/small"
'

# reader.py STORE: a process with a read transaction open on STORE (LMDB
# through ctypes), which says "reading" and waits to be killed
cat >"$TEST_TMP/reader.py" <<'EOF'
import ctypes, sys, time
lmdb = ctypes.CDLL("liblmdb.so.0")
env, txn = ctypes.c_void_p(), ctypes.c_void_p()
MDB_RDONLY, MDB_NOTLS = 0x20000, 0x200000
assert lmdb.mdb_env_create(ctypes.byref(env)) == 0
assert lmdb.mdb_env_set_maxdbs(env, 32) == 0
assert lmdb.mdb_env_open(env, sys.argv[1].encode(), MDB_RDONLY | MDB_NOTLS, 0o600) == 0
assert lmdb.mdb_txn_begin(env, None, MDB_RDONLY, ctypes.byref(txn)) == 0
print("reading", flush=True)
time.sleep(300)
EOF

test_expect_success 'an LMDB reader slot of a killed process is a warning; --fix clears it' '
	python3 "$TEST_TMP/reader.py" "$STORE" >"$REF/reader" &
	reader=$!
	for i in $(seq 100); do grep -q reading "$REF/reader" && break; sleep 0.1; done
	mdb_stat -r "$STORE" | grep -q "^ *$reader " &&
	kill -9 $reader && { wait $reader; wait_gone $reader; } &&
	health "$MNT" &&
	assert_eq 1 "$(rc)" &&
	assert_grep "^WARNING readers $MNT: 1 LMDB reader slot held by dead processes (pid $reader)" "$REF/h" &&
	health "$MNT" --fix &&
	assert_grep "^OK readers $MNT: cleared 1 LMDB reader slot of dead processes (pid $reader)" "$REF/h" &&
	assert_eq 0 "$(rc)" &&
	health "$MNT" && assert_eq 0 "$(rc)" &&
	! mdb_stat -r "$STORE" | grep -q "^ *$reader "
'

test_expect_success 'a clone killed before it ended: its hold and partial store are a warning; --fix releases and removes them' '
	"$SNAPFS" snapshot create "$MNT" s1 >/dev/null &&
	# the clone is held at its last step (publishing: a rename) and killed
	( cd / && exec strace -f -qq -o /dev/null -e trace=rename,renameat,renameat2 \
		-e inject=rename,renameat,renameat2:delay_enter=60000000 \
		"$SNAPFS" clone "$MNT" s1 "$TEST_TMP/cl" >/dev/null 2>&1 ) &
	tracer=$!
	for i in $(seq 600); do
		ls -d "$TEST_TMP"/cl.partial-* >/dev/null 2>&1 &&
		holds=$("$SNAPFS" snapshot holds "$MNT" s1) && test -n "$holds" && break
		sleep 0.1
	done
	pid=${holds#clone:} && pid=${pid%%:*} &&
	test -n "$pid" &&
	# a tracee stopped in its syscall dies with its tracer
	kill -9 $tracer "$pid" && { wait $tracer; wait_gone "$pid"; } &&
	partial=$(ls -d "$TEST_TMP"/cl.partial-*) &&
	health "$MNT" &&
	assert_eq 1 "$(rc)" &&
	assert_grep "^WARNING leftovers $MNT: snapshot s1 is held by .clone:$pid:$partial., a clone that is gone; its partial store is left: $partial (--fix releases it and removes the partial store)" "$REF/h" &&
	health "$MNT" --fix &&
	assert_grep "^OK leftovers $MNT: fixed: released the hold .clone:$pid:$partial. on snapshot s1 and removed its partial store" "$REF/h" &&
	assert_eq 0 "$(rc)" &&
	assert_missing "$partial" &&
	assert_eq "" "$("$SNAPFS" snapshot holds "$MNT" s1)" &&
	"$SNAPFS" snapshot delete "$MNT" s1 >/dev/null
'

test_expect_success 'certificates: expired or within 7 days critical, within 30 days a warning, else OK' '
	date +%s >"$CLOCK" &&
	mkcert() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout /dev/null -out "$1" -days "$2" -subj "/CN=$3" 2>/dev/null; } &&
	mkcert "$TEST_TMP/long.pem" 365 long &&
	health "$MNT" --cert "$TEST_TMP/long.pem" &&
	assert_eq 0 "$(rc)" &&
	assert_grep "^OK certificate $TEST_TMP/long.pem: /CN=long expires in 36[45].[0-9] days" "$REF/h" &&
	mkcert "$SNAPFS_CONFIG_DIR/soon.crt" 20 soon &&
	health "$MNT" && assert_eq 1 "$(rc)" &&
	assert_grep "^WARNING certificate $SNAPFS_CONFIG_DIR/soon.crt: /CN=soon expires in 19.[0-9]* days\|^WARNING certificate $SNAPFS_CONFIG_DIR/soon.crt: /CN=soon expires in 20.0 days" "$REF/h" &&
	mkcert "$SNAPFS_CONFIG_DIR/soon.crt" 3 soon &&
	health "$MNT" && assert_eq 2 "$(rc)" &&
	assert_grep "^CRITICAL certificate $SNAPFS_CONFIG_DIR/soon.crt: /CN=soon expires in [23].[0-9] days" "$REF/h" &&
	rm "$SNAPFS_CONFIG_DIR/soon.crt"
'

test_expect_success 'a peer that does not answer is a warning, one that does is OK' '
	SNAPFS_CONFIG_DIR=$TEST_TMP/srv "$SNAPFS" peer passphrase here >"$REF/pass" 2>/dev/null &&
	port=$(peer_server_start "$TEST_TMP/srv" srv) && test -n "$port" &&
	"$SNAPFS" peer create up "127.0.0.1:$port" <"$REF/pass" >/dev/null &&
	closed=$(python3 -c "import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])") &&
	"$SNAPFS" peer create down "127.0.0.1:$closed" <"$REF/pass" >/dev/null &&
	health "$MNT" --peer-timeout 2000 &&
	assert_eq 1 "$(rc)" &&
	assert_grep "^OK peer up: 127.0.0.1:$port answers" "$REF/h" &&
	assert_grep "^WARNING peer down: 127.0.0.1:$closed is not reachable: Connection refused" "$REF/h" &&
	! grep -qi "key\|passphrase" "$REF/h" &&
	"$SNAPFS" peer delete down >/dev/null &&
	health "$MNT" && assert_eq 0 "$(rc)" &&
	kill -TERM "$(cat "$TEST_TMP/srv/serve.pid")" &&
	"$SNAPFS" peer delete up >/dev/null
'

test_expect_success 'a mirror lagging past its schedule (the test clock): warning past 2 periods, critical past 4' '
	"$SNAPFS" mkfs "$TEST_TMP/dst.store" --size 1G >/dev/null &&
	"$SNAPFS" mirror create "$MNT" "$TEST_TMP/dst.store" --schedule hourly >/dev/null &&
	"$SNAPFS" mirror initialize "$TEST_TMP/dst.store" >/dev/null &&
	newest=$("$SNAPFS" snapshot list "$TEST_TMP/dst.store" --json | python3 -c "import json,sys; print(json.load(sys.stdin)[-1][\"created\"])") &&
	echo $((newest + 1800)) >"$CLOCK" &&
	health "$MNT" && assert_eq 0 "$(rc)" &&
	assert_grep "^OK mirror $STORE -> $TEST_TMP/dst.store: lag [23][0-9] min (newest snapmirror\..*), schedule hourly (every 1.0 h)$" "$REF/h" &&
	echo $((newest + 3 * 3600)) >"$CLOCK" &&
	health "$MNT" && assert_eq 1 "$(rc)" &&
	assert_grep "^WARNING mirror $STORE -> $TEST_TMP/dst.store: lag [23].[0-9] h .*: past its schedule" "$REF/h" &&
	echo $((newest + 5 * 3600)) >"$CLOCK" &&
	health "$MNT" && assert_eq 2 "$(rc)" &&
	assert_grep "^CRITICAL mirror $STORE -> $TEST_TMP/dst.store: lag [45].[0-9] h" "$REF/h" &&
	"$SNAPFS" mirror delete "$TEST_TMP/dst.store" >/dev/null &&
	health "$MNT" && assert_eq 0 "$(rc)"
'

test_expect_success 'the last dumps: their age per level; a newest dump older than 8 days is a warning' '
	"$SNAPFS" dump -0 -f "$TEST_TMP/full0" "$MNT" 2>/dev/null &&
	date=$(date +%s) &&
	echo $((date + 3600)) >"$CLOCK" &&
	health "$MNT" && assert_eq 0 "$(rc)" &&
	assert_grep "^OK dumps $MNT: newest dump 0.0 days ago; last dump per path and level: / level 0 0.0 days ago" "$REF/h" &&
	echo $((date + 10 * 86400)) >"$CLOCK" &&
	health "$MNT" && assert_eq 1 "$(rc)" &&
	assert_grep "^WARNING dumps $MNT: newest dump 10.0 days ago" "$REF/h"
'

test_expect_success 'a volume that is not one is critical; bad options exit 3 with one message' '
	health "$TEST_TMP/nowhere" && assert_eq 2 "$(rc)" &&
	assert_grep "^CRITICAL volume $TEST_TMP/nowhere: cannot be opened: no such directory" "$REF/h" &&
	health "$MNT" --frobnicate && assert_eq 3 "$(rc)" && assert_one_line "$REF/h.err" &&
	health "$MNT" --peer-timeout 0 && assert_eq 3 "$(rc)" && assert_one_line "$REF/h.err" &&
	health "$MNT" --cert && assert_eq 3 "$(rc)" && assert_grep "needs a value" "$REF/h.err" &&
	health "$MNT" --all && assert_eq 3 "$(rc)" && assert_one_line "$REF/h.err"
'

test_done
