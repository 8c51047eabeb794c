#!/bin/bash
# Application-consistent snapshots: a real PostgreSQL (Debian's) with its
# data directory on a snapfs volume, pgbench and a writer of a numbered
# table running, snapshots taken with contrib/hooks/postgresql around them;
# a clone of such a snapshot starts as a second server on another port,
# pg_amcheck finds it clean, and it holds every row committed before the
# snapshot and none committed after.  A hanging pre hook is killed with its
# process group at the timeout: the snapshot is abandoned (nothing taken,
# one message, exit 1) or taken and labelled consistency=crash; a failing
# pre hook likewise; the post hook always runs, with the result; hooks get
# only the documented environment; a policy runs its hooks in the daemon at
# its slot; groups and unmounted stores too; bad hook options are refused.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$PGBIN/initdb" ] && command -v psql >/dev/null ||
	{ say "# skipping: PostgreSQL is not installed (make deps installs postgresql)"; test_done; }
use_policy_clock '2026-12-07 10:00'
vol_create --size 2G

HOOK=$(cd "$TEST_DIR/../.." && pwd)/contrib/hooks/postgresql
# the server runs as nobody when we are root (it refuses root), else as us
if [ "$(id -u)" = 0 ]; then
	as_pg() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
	pg_own() { chown 65534:65534 "$@"; }
else
	as_pg() { "$@"; }
	pg_own() { :; }
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT1=$(free_port) PORT2=$(free_port)
SOCK=$TEST_TMP/pgsock PGLOG=$TEST_TMP/pglog
mkdir -p "$SOCK" "$PGLOG" "$MNT/pgdata" && pg_own "$SOCK" "$PGLOG" "$MNT/pgdata" &&
chmod 700 "$MNT/pgdata" || test_bail "cannot prepare the PostgreSQL directories"

# pg_start DATADIR PORT NAME / pg_stop DATADIR: a server on the private
# socket directory, TCP off
pg_start() {
	as_pg "$PGBIN/pg_ctl" -D "$1" -w -t 60 -l "$PGLOG/$3.log" \
		-o "-p $2 -k $SOCK -c listen_addresses=" start >/dev/null
}
pg_stop() { as_pg "$PGBIN/pg_ctl" -D "$1" -m immediate -w stop >/dev/null 2>&1; }
# q PORT SQL: one value
q() { psql -X -q -A -t -h "$SOCK" -p "$1" -U snapfs -d postgres -v ON_ERROR_STOP=1 -c "$2"; }
# label VOL SNAP: the labels of snapshot SNAP as k=v,k=v ("-" none)
label() { "$SNAPFS" snapshot list "$1" --json | python3 -c "
import json,sys
l=[s['labels'] for s in json.load(sys.stdin) if s['name']=='$2'][0]
print(','.join('%s=%s' % kv for kv in l.items()) or '-')"; }

as_pg "$PGBIN/initdb" -D "$MNT/pgdata" -U snapfs -A trust -E UTF8 --locale=C \
	>"$PGLOG/initdb.log" 2>&1 &&
pg_start "$MNT/pgdata" "$PORT1" main || {
	say "# skipping: PostgreSQL cannot start here: $(tail -n 3 "$PGLOG"/*.log | tr '\n' ' ')"
	test_done
}
test_at_exit 'touch "$REF/stop"; pg_stop "$TEST_TMP/clone.mnt/pgdata"; pg_stop "$MNT/pgdata"'
PRE="$HOOK pre -h $SOCK -p $PORT1 -U snapfs -d postgres"
POST="$HOOK post -h $SOCK -p $PORT1 -U snapfs -d postgres"

test_expect_success 'a snapshot taken with the PostgreSQL hook while pgbench and a writer run is labelled consistency=application' '
	q $PORT1 "CREATE TABLE seq (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())"
	pgbench -i -s 1 -q -h "$SOCK" -p $PORT1 -U snapfs postgres >"$REF/pgbench-init" 2>&1
	# the writer: one row a transaction, in one session, ids in commit
	# order, until $REF/stop exists
	( while [ ! -e "$REF/stop" ]; do echo "INSERT INTO seq DEFAULT VALUES;"; done |
	  psql -X -q -h "$SOCK" -p $PORT1 -U snapfs -d postgres >/dev/null 2>&1 ) &
	pgbench -c 2 -T 10 -h "$SOCK" -p $PORT1 -U snapfs postgres >"$REF/pgbench" 2>&1 &
	bench=$!
	for i in $(seq 300); do
		[ "$(q $PORT1 "SELECT count(*) >= 50 FROM seq")" = t ] && break
		sleep 0.1
	done &&
	q $PORT1 "SELECT max(id) FROM seq" >"$REF/before" &&
	"$SNAPFS" snapshot create "$MNT" app1 --pre "$PRE" --post "$POST" \
		>"$REF/out" 2>"$REF/err" &&
	q $PORT1 "SELECT max(id) FROM seq" >"$REF/after" &&
	wait $bench &&
	assert_grep "processed: " "$REF/pgbench" &&
	assert_grep "created snapshot app1 of $MNT, consistency=application" "$REF/out" &&
	assert_grep "pre hook: postgresql: checkpoint at" "$REF/err" &&
	assert_grep "post hook: postgresql: snapshot app1: application" "$REF/err" &&
	assert_eq consistency=application "$(label "$MNT" app1)" &&
	assert_le "$(cat "$REF/before")" "$(cat "$REF/after")"
'

test_expect_success 'a clone of that snapshot starts as a second server: pg_amcheck is clean, pgbench tables whole, the numbered rows exactly those of the snapshot moment' '
	touch "$REF/stop" &&
	"$SNAPFS" clone "$MNT" app1 "$TEST_TMP/clone.store" >/dev/null &&
	vol_mount "$TEST_TMP/clone.store" "$TEST_TMP/clone.mnt" &&
	# the clone holds the running server'"'"'s lock file: a new server
	# must not take it for a live one
	rm -f "$TEST_TMP/clone.mnt/pgdata/postmaster.pid" &&
	pg_start "$TEST_TMP/clone.mnt/pgdata" $PORT2 clone &&
	assert_grep "ready to accept connections" "$PGLOG/clone.log" &&
	"$PGBIN/pg_amcheck" -h "$SOCK" -p $PORT2 -U snapfs --all --install-missing >"$REF/amcheck" 2>&1 ||
		{ cat "$REF/amcheck"; exit 1; } &&
	assert_eq 100000 "$(q $PORT2 "SELECT count(*) FROM pgbench_accounts")" &&
	assert_eq 1 "$(q $PORT2 "SELECT count(*) FROM pgbench_branches")" &&
	clone_max=$(q $PORT2 "SELECT max(id) FROM seq") &&
	echo "before $(cat "$REF/before") clone $clone_max after $(cat "$REF/after")" &&
	assert_le "$(cat "$REF/before")" "$clone_max" "every row committed before the snapshot" &&
	assert_le "$clone_max" "$(cat "$REF/after")" "no row committed after it" &&
	assert_eq "$clone_max" "$(q $PORT2 "SELECT count(*) FROM seq")" "no gap in the numbered rows" &&
	pg_stop "$TEST_TMP/clone.mnt/pgdata" &&
	vol_umount "$TEST_TMP/clone.mnt"
'

# hooks that record what they saw: RECORD PHASE writes its environment
cat >"$TEST_TMP/record" <<EOF
#!/bin/sh
env | sort >"$TEST_TMP/\$1.env"
echo "record: \$1 \${SNAPFS_RESULT:-}"
EOF
chmod 755 "$TEST_TMP/record"
REC=$TEST_TMP/record

test_expect_success 'a hanging pre hook is killed with its process group at the timeout; the snapshot is abandoned and the post hook runs' '
	rm -f "$TEST_TMP"/*.env &&
	start=$(date +%s) &&
	assert_fails "$SNAPFS" snapshot create "$MNT" hang1 --hook-timeout 2 \
		--pre "echo hanging; sleep 300 & echo \$! >$TEST_TMP/hang.child; wait" \
		--post "$REC post" >"$REF/out" 2>"$REF/err" &&
	took=$(( $(date +%s) - start )) &&
	assert_le "$took" 30 "seconds the command took" &&
	assert_grep "snapshot hang1 abandoned: the pre hook did not finish within 2 s and was killed with its process group; nothing was taken" "$REF/err" &&
	assert_grep "pre hook: hanging" "$REF/err" &&
	assert_grep "post hook: record: post abandoned" "$REF/err" &&
	! snaps | grep -qw hang1 &&
	wait_gone "$(cat "$TEST_TMP/hang.child")" &&
	assert_grep "^SNAPFS_RESULT=abandoned$" "$TEST_TMP/post.env" &&
	assert_grep "^SNAPFS_PHASE=post$" "$TEST_TMP/post.env"
'

test_expect_success 'with --on-hook-failure crash-consistent the same hang gives a snapshot labelled consistency=crash' '
	"$SNAPFS" snapshot create "$MNT" hang2 --hook-timeout 1 --on-hook-failure crash-consistent \
		--pre "sleep 300" --post "$REC post" >"$REF/out" 2>"$REF/err" &&
	assert_grep "snapshot hang2 taken crash-consistent" "$REF/err" &&
	assert_eq consistency=crash,pre-hook=timeout "$(label "$MNT" hang2)" &&
	assert_grep "^SNAPFS_RESULT=crash$" "$TEST_TMP/post.env"
'

test_expect_success 'a failing pre hook abandons the snapshot, its output in the message stream, the post hook told' '
	assert_fails "$SNAPFS" snapshot create "$MNT" fail1 --pre "echo cannot quiesce >&2; exit 3" \
		--post "$REC post" >"$REF/out" 2>"$REF/err" &&
	assert_grep "pre hook: cannot quiesce" "$REF/err" &&
	assert_grep "snapshot fail1 abandoned: the pre hook exited with status 3; nothing was taken" "$REF/err" &&
	! snaps | grep -qw fail1 &&
	assert_grep "^SNAPFS_RESULT=abandoned$" "$TEST_TMP/post.env" &&
	"$SNAPFS" snapshot create "$MNT" fail2 --pre "exit 3" --on-hook-failure crash-consistent >/dev/null 2>&1 &&
	assert_eq consistency=crash,pre-hook=exit-3 "$(label "$MNT" fail2)"
'

test_expect_success 'hooks get only the documented environment, in /, with nothing of the caller'"'"'s' '
	SNAPFS_TEST_SECRET=hunter2 "$SNAPFS" snapshot create "$MNT" env1 \
		--pre "$REC pre; pwd >$TEST_TMP/pre.pwd" --post "$REC post" --hook-timeout 30 >/dev/null 2>&1 &&
	assert_grep "^SNAPFS_VOLUME=$MNT$" "$TEST_TMP/pre.env" &&
	assert_grep "^SNAPFS_SNAPSHOT=env1$" "$TEST_TMP/pre.env" &&
	assert_grep "^SNAPFS_PHASE=pre$" "$TEST_TMP/pre.env" &&
	assert_grep "^SNAPFS_HOOK_TIMEOUT=30$" "$TEST_TMP/pre.env" &&
	! grep -q "SNAPFS_RESULT\|hunter2\|ASAN_OPTIONS\|TEST_TMP" "$TEST_TMP/pre.env" &&
	assert_grep "^SNAPFS_RESULT=application$" "$TEST_TMP/post.env" &&
	assert_eq / "$(cat "$TEST_TMP/pre.pwd")" &&
	names=$(cut -d= -f1 "$TEST_TMP/post.env" | grep -v "^_$\|^PWD$\|^SHLVL$" | tr "\n" " ") &&
	assert_eq "HOME LC_ALL LOGNAME PATH SNAPFS_HOOK_TIMEOUT SNAPFS_PHASE SNAPFS_RESULT SNAPFS_SNAPSHOT SNAPFS_VOLUME " "$names"
'

test_expect_success 'a policy with hooks runs them in the daemon at its slot: labelled snapshot, hooks in the log, a failing pre hook abandons that slot only' '
	"$SNAPFS" policy create "$MNT" pg --schedule hourly --keep 5 --pre "$PRE" --post "$POST" \
		--hook-timeout 60 >"$REF/out" &&
	assert_grep "with hooks" "$REF/out" &&
	"$SNAPFS" policy list "$MNT" >"$REF/list" &&
	assert_grep "pre hook:  $PRE" "$REF/list" &&
	"$SNAPFS" policy list "$MNT" --json | python3 -c "
import json,sys
h=json.load(sys.stdin)[0][\"hooks\"]
assert h[\"post\"] == \"$POST\" and h[\"timeout\"] == 60 and h[\"on_failure\"] == \"abandon\", h" &&
	set_clock "2026-12-07 11:00" &&
	for i in $(seq 300); do snaps | grep -qw pg.2026-12-07_1100 && break; sleep 0.1; done &&
	assert_eq consistency=application "$(label "$MNT" pg.2026-12-07_1100)" &&
	assert_grep "policy pg: pre hook: postgresql: checkpoint at" "$STORE/daemon.log" &&
	assert_grep "policy pg: post hook: postgresql: snapshot pg.2026-12-07_1100: application" "$STORE/daemon.log" &&
	"$SNAPFS" policy modify "$MNT" pg --pre "exit 4" >/dev/null &&
	set_clock "2026-12-07 12:00" &&
	for i in $(seq 300); do grep -q "abandoned snapshot.*pg.2026-12-07_1200" "$STORE/daemon.log" && break; sleep 0.1; done &&
	assert_grep "policy pg: abandoned snapshot (its pre hook failed; nothing taken): pg.2026-12-07_1200" "$STORE/daemon.log" &&
	assert_grep "policy pg: pre hook: exited with status 4" "$STORE/daemon.log" &&
	! snaps | grep -qw pg.2026-12-07_1200 &&
	"$SNAPFS" policy modify "$MNT" pg --pre "" --post "" >/dev/null &&
	"$SNAPFS" policy list "$MNT" --json | python3 -c "
import json,sys; assert \"hooks\" not in json.load(sys.stdin)[0]"
'

test_expect_success 'a group snapshot runs the hooks once around all members, each labelled' '
	"$SNAPFS" mkfs "$TEST_TMP/g2.store" --size 1G >/dev/null &&
	"$SNAPFS" snapshot create --group "$MNT,$TEST_TMP/g2.store" grp1 \
		--pre "$REC pre" --post "$REC post" >"$REF/out" 2>"$REF/err" &&
	assert_eq 1 "$(grep -c "pre hook: record: pre" "$REF/err")" &&
	assert_eq 1 "$(grep -c "post hook: record: post application" "$REF/err")" &&
	assert_grep "^SNAPFS_VOLUME=$MNT,$TEST_TMP/g2.store$" "$TEST_TMP/pre.env" &&
	assert_eq consistency=application "$(label "$MNT" grp1)" &&
	assert_eq consistency=application "$(label "$TEST_TMP/g2.store" grp1)"
'

test_expect_success 'policy run on an unmounted store runs the hooks of a due policy' '
	"$SNAPFS" policy create "$TEST_TMP/g2.store" h --schedule hourly --keep 2 \
		--pre "$REC pre" --post "$REC post" --now "2026-12-07 09:30" >/dev/null &&
	"$SNAPFS" policy run "$TEST_TMP/g2.store" --now "2026-12-07 10:05" >"$REF/out" 2>"$REF/err" &&
	assert_grep "policy h: created snapshot h.2026-12-07_1000" "$REF/out" &&
	assert_grep "post hook: record: post application" "$REF/err" &&
	assert_eq consistency=application "$(label "$TEST_TMP/g2.store" h.2026-12-07_1000)" &&
	"$SNAPFS" policy modify "$TEST_TMP/g2.store" h --pre "exit 5" >/dev/null &&
	assert_fails "$SNAPFS" policy run "$TEST_TMP/g2.store" --now "2026-12-07 11:05" >"$REF/out" 2>"$REF/err" &&
	assert_grep "policy h: abandoned snapshot h.2026-12-07_1100" "$REF/out" &&
	assert_grep "policy h: the pre hook exited with status 5" "$REF/err" &&
	"$SNAPFS" fsck "$TEST_TMP/g2.store" >/dev/null
'

test_expect_success 'bad hook options are refused with one message, nothing run or taken' '
	for args in "--hook-timeout 0 --pre true" "--hook-timeout 99999999 --pre true" \
		    "--on-hook-failure maybe --pre true" "--hook-timeout 5"; do
		assert_fails "$SNAPFS" snapshot create "$MNT" bad1 $args 2>"$REF/err" &&
		assert_one_line "$REF/err" || exit 1
	done &&
	assert_grep "hook-timeout and --on-hook-failure need --pre or --post" "$REF/err" &&
	rm -f "$TEST_TMP/pre.env" &&
	assert_fails "$SNAPFS" snapshot create "$MNT" app1 --pre "$REC pre" 2>"$REF/err" &&
	assert_grep "already exists" "$REF/err" &&
	assert_missing "$TEST_TMP/pre.env" &&
	! snaps | grep -qw bad1 &&
	assert_fails "$SNAPFS" policy create "$MNT" p2 --schedule hourly --keep 1 --on-hook-failure x --pre true 2>"$REF/err" &&
	assert_one_line "$REF/err" &&
	! "$SNAPFS" policy list "$MNT" | grep -q "^p2 "
'

# MariaDB: its data directory on the volume too, a private socket, no
# TCP; the hook holds FLUSH TABLES WITH READ LOCK across the snapshot
MYSQLD=$(command -v mariadbd || command -v mysqld)
MYSQL=$(command -v mariadb || command -v mysql)
INSTALL_DB=$(command -v mariadb-install-db || command -v mysql_install_db)
MHOOK=$(cd "$TEST_DIR/../.." && pwd)/contrib/hooks/mariadb
MSOCK=$SOCK/mariadb.sock
my() { "$MYSQL" --no-defaults --socket="$MSOCK" -uroot --batch --skip-column-names "$@"; }
if [ -n "$MYSQLD" ] && [ -n "$MYSQL" ] && [ -n "$INSTALL_DB" ] && [ "$(id -u)" = 0 ] &&
   mkdir -p "$MNT/mariadb" "$TEST_TMP/mhook" && pg_own "$MNT/mariadb" &&
   TMPDIR=$PGLOG "$INSTALL_DB" --no-defaults --datadir="$MNT/mariadb" --user=nobody \
	--auth-root-authentication-method=normal --skip-test-db >"$PGLOG/mariadb-install.log" 2>&1; then
	( cd / && TMPDIR=$PGLOG exec "$MYSQLD" --no-defaults --datadir="$MNT/mariadb" --user=nobody \
		--socket="$MSOCK" --skip-networking --pid-file="$SOCK/mariadb.pid" \
		--log-error="$PGLOG/mariadb.log" ) </dev/null >/dev/null 2>&1 &
	test_at_exit '[ -s "$SOCK/mariadb.pid" ] && kill "$(cat "$SOCK/mariadb.pid")" 2>/dev/null; sleep 1'
	for i in $(seq 300); do my -e "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
	my -e "SELECT 1" >/dev/null 2>&1 && test_set_prereq MARIADB
fi
test_have_prereq MARIADB ||
	say "# skipping the MariaDB hook tests: no MariaDB server here, or it did not start (as root, with mariadb-server)"
MPRE="$MHOOK pre --state-dir=$TEST_TMP/mhook --max-hold=60 --socket=$MSOCK -uroot"
MPOST="$MHOOK post --state-dir=$TEST_TMP/mhook"

test_expect_success MARIADB 'the MariaDB hook holds FLUSH TABLES WITH READ LOCK across the snapshot: a write waits until the post hook, the snapshot is labelled application' '
	my -e "CREATE DATABASE d; CREATE TABLE d.t (i INT) ENGINE=MyISAM; INSERT INTO d.t VALUES (1)" &&
	# between the hooks: an insert from another session must wait for the lock
	"$SNAPFS" snapshot create "$MNT" my1 --pre "$MPRE" \
		--post "timeout 3 $MYSQL --no-defaults --socket=$MSOCK -uroot -e \"INSERT INTO d.t VALUES (2)\"; echo \$? >$TEST_TMP/insert.rc; $MPOST" \
		>"$REF/out" 2>"$REF/err" &&
	cat "$REF/err" &&
	assert_grep "pre hook: mariadb: tables flushed and locked for snapshot my1" "$REF/err" &&
	assert_eq 124 "$(cat "$TEST_TMP/insert.rc")" "the insert waited for the lock (timeout)" &&
	assert_grep "post hook: mariadb: tables unlocked" "$REF/err" &&
	assert_eq consistency=application "$(label "$MNT" my1)" &&
	my -e "INSERT INTO d.t VALUES (3)" &&
	assert_eq 2 "$(my -e "SELECT count(*) FROM d.t WHERE i IN (1, 3)")" &&
	assert_eq "" "$(ls "$TEST_TMP/mhook")" "the session is gone" &&
	test -f "$MNT/.snapshot/my1/mariadb/d/t.MYD"
'

test_expect_success MARIADB 'a MariaDB pre hook that times out is killed with its session: the lock goes with it' '
	"$SNAPFS" snapshot create "$MNT" my2 --hook-timeout 2 --on-hook-failure crash-consistent \
		--pre "$MPRE; sleep 30" --post "$MPOST" >"$REF/out" 2>"$REF/err" &&
	assert_eq consistency=crash,pre-hook=timeout "$(label "$MNT" my2)" &&
	timeout 10 "$MYSQL" --no-defaults --socket=$MSOCK -uroot -e "INSERT INTO d.t VALUES (4)" &&
	assert_eq 1 "$(my -e "SELECT count(*) FROM d.t WHERE i = 4")" &&
	assert_eq "" "$(ls "$TEST_TMP/mhook")" "no session left"
'

test_expect_success 'the first server stops cleanly (the volume is then free to unmount)' '
	touch "$REF/stop" &&
	{ ! test -s "$SOCK/mariadb.pid" || { pid=$(cat "$SOCK/mariadb.pid") && kill $pid && wait_gone $pid; }; } &&
	as_pg "$PGBIN/pg_ctl" -D "$MNT/pgdata" -m fast -w stop >/dev/null &&
	assert_grep "database system is shut down" "$PGLOG/main.log"
'

test_done
