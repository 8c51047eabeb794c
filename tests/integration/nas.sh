# nas.sh - what the NAS server tests (t41 Samba, t42 NFS-Ganesha) share,
# sourced after lib.sh: real servers on loopback, on ports of their own,
# with private configuration and state, stopped when the script ends.
#
#   free_port             a TCP port of 127.0.0.1 free now (the system's pick)
#   server_start NAME COMMAND...
#                         COMMAND in the background in a session of its
#                         own (the server and whatever it forks), output
#                         in $TEST_TMP/NAME.out; its pid in SERVER_PID and
#                         in $TEST_TMP/NAME.pid.  Every one is stopped at
#                         exit (TERM to its group, then KILL).
#   server_stop NAME      stop it now and wait until it is gone
#   wait_port PORT PID    until 127.0.0.1:PORT accepts connections (30 s
#                         at most, and only while PID runs)
#   nas_skip_unless WHY TEST...
#                         unless each TEST (a shell condition) holds, say
#                         "skipping: WHY" and end the script (test_done)

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

server_start() {
	local name=$1 pidfile=$TEST_TMP/$1.pid
	shift
	rm -f "$pidfile"
	echo "$name" >>"$TEST_TMP/servers"
	# the session leader writes its own pid (setsid forks when it must)
	setsid sh -c 'echo $$ >"$0.new" && mv "$0.new" "$0" && exec "$@"' \
		"$pidfile" "$@" >"$TEST_TMP/$name.out" 2>&1 </dev/null &
	for _ in $(seq 100); do
		[ -s "$pidfile" ] && break
		sleep 0.05
	done
	SERVER_PID=$(cat "$pidfile" 2>/dev/null)
	[ -n "$SERVER_PID" ]
}

server_stop() {
	local pid
	pid=$(cat "$TEST_TMP/$1.pid" 2>/dev/null) || return 0
	rm -f "$TEST_TMP/$1.pid"
	kill -TERM -- "-$pid" 2>/dev/null || return 0
	wait_gone "$pid" 20 || kill -KILL -- "-$pid" 2>/dev/null
	# what it forked may linger a moment after it
	for _ in $(seq 100); do
		pgrep -s "$pid" >/dev/null || return 0
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null
	return 0
}

servers_stop_all() {
	local n
	[ -s "$TEST_TMP/servers" ] || return 0
	for n in $(cat "$TEST_TMP/servers"); do server_stop "$n"; done
}
test_at_exit servers_stop_all

wait_port() {
	for _ in $(seq 300); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		pid_running "$2" || return 1
		sleep 0.1
	done
	return 1
}

nas_skip_unless() {
	local why=$1 t
	shift
	for t; do
		eval "$t" >/dev/null 2>&1 && continue
		say "# skipping: $why"
		test_done
	done
}
