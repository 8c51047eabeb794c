#!/bin/bash
# Peers: two "hosts" on loopback, each with its own config dir
# (SNAPFS_CONFIG_DIR).  `peer passphrase NAME` makes peer NAME's own
# passphrase, shown once, and keeps only a 0600 key; `peer create` stores
# a peer from a passphrase read on stdin or from a file; `peer list` never
# shows a secret; `peer serve` speaks TLS 1.3 with the peers' keys only,
# runs allowlisted subcommands that a grant allows and passes back their
# output, exit status and stderr; a wrong passphrase, a refused command,
# plain TCP and TLS 1.2 are turned away while it keeps serving; a new
# passphrase for one peer locks out only its old one; SIGTERM stops it.
# Grants in depth are t31's; the relay of large streams both ways is
# tested by the unit test test_peer (64 MiB each way).
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 64M

SRV=$TEST_TMP/host-srv CLI=$TEST_TMP/host-cli VOL=$TEST_TMP/vol.store
srv() { SNAPFS_CONFIG_DIR=$SRV "$SNAPFS" "$@"; }
cli() { SNAPFS_CONFIG_DIR=$CLI "$SNAPFS" "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
test_lazy_prereq OPENSSL 'command -v openssl'

stop_servers() {
	local f
	for f in "$SRV/serve.pid" "$TEST_TMP/srv2/serve.pid"; do
		[ -s "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null
	done
	return 0
}
test_at_exit stop_servers

test_expect_success 'peer passphrase NAME prints 6 groups of 5 characters and keeps only a 0600 key of its own' '
	srv peer passphrase a >"$REF/pass" 2>"$REF/err" &&
	assert_one_line "$REF/pass" &&
	grep -Eqx "[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){5}" "$REF/pass" &&
	assert_grep "a can connect, and do nothing until granted: snapfs peer allow a" "$REF/err" &&
	assert_stat "$SRV" %a 700 &&
	assert_stat "$SRV/clients" %a 700 &&
	assert_stat "$SRV/clients/a.key" %a 600 &&
	! grep -rqF "$(cat "$REF/pass")" "$SRV" &&
	srv peer passphrase b >"$REF/passb" 2>/dev/null &&
	assert_stat "$SRV/clients/b.key" %a 600 &&
	assert_ne "$(cat "$REF/pass")" "$(cat "$REF/passb")" "two peers, two passphrases" &&
	cp "$REF/pass" "$REF/pass2"
'

test_expect_success 'peer passphrase without a NAME, with a bad one, or the reserved legacy is refused; nothing is made' '
	{ srv peer passphrase >"$REF/out" 2>"$REF/err"; rc=$?; } &&
	assert_eq 2 "$rc" && ! test -s "$REF/out" &&
	assert_grep "give the NAME of the peer it is for" "$REF/err" &&
	{ srv peer passphrase ../x >"$REF/out" 2>"$REF/err"; rc=$?; } &&
	assert_eq 2 "$rc" && ! test -s "$REF/out" &&
	{ srv peer passphrase legacy >"$REF/out" 2>"$REF/err"; rc=$?; } &&
	assert_eq 2 "$rc" && ! test -s "$REF/out" &&
	assert_grep "host passphrase of an earlier snapfs" "$REF/err" &&
	assert_eq "a.key b.key" "$(ls "$SRV/clients" | tr "\n" " " | sed "s/ $//")" &&
	assert_missing "$SRV/serve.key"
'

PORT=$(peer_server_start "$SRV" serve)
[ -n "$PORT" ] || test_bail "peer serve did not start: $(cat "$TEST_TMP/serve.log")"

test_expect_success 'peer create reads the passphrase from stdin or a file and stores the peer 0600' '
	cli peer create a "127.0.0.1:$PORT" <"$REF/pass2" >"$REF/out" &&
	assert_grep "created peer a (127.0.0.1:$PORT)" "$REF/out" &&
	cli peer create b "127.0.0.1:$PORT" --passphrase-file "$REF/passb" </dev/null &&
	assert_stat "$CLI/a.peer" %a 600 && assert_stat "$CLI/b.peer" %a 600 &&
	assert_grep "^protocol 2$" "$CLI/a.peer" &&
	! grep -rqF "$(cat "$REF/pass2")" "$CLI" && ! grep -rqF "$(cat "$REF/passb")" "$CLI"
'

test_expect_success 'peer list shows names and addresses, or grant counts, never the passphrase or the key' '
	cli peer list >"$REF/list" && cli peer list --json >"$REF/list.json" &&
	assert_grep "^a  *127.0.0.1:$PORT$" "$REF/list" &&
	assert_grep "^b  *127.0.0.1:$PORT$" "$REF/list" &&
	assert_eq "[{\"name\":\"a\",\"direction\":\"outgoing\",\"address\":\"127.0.0.1:$PORT\"},{\"name\":\"b\",\"direction\":\"outgoing\",\"address\":\"127.0.0.1:$PORT\"}]" \
		"$(cat "$REF/list.json")" &&
	srv peer list >"$REF/slist" && srv peer list --json >"$REF/slist.json" &&
	assert_grep "^a  *none yet: it can only connect$" "$REF/slist" &&
	assert_eq "[{\"name\":\"a\",\"direction\":\"incoming\",\"grants\":0,\"legacy\":false},{\"name\":\"b\",\"direction\":\"incoming\",\"grants\":0,\"legacy\":false}]" \
		"$(cat "$REF/slist.json")" &&
	key=$(sed -n "s/^key //p" "$CLI/a.peer") && test ${#key} = 64 &&
	skey=$(cat "$SRV/clients/a.key") && assert_eq "$key" "$skey" "the two ends hold one key" &&
	for f in "$REF/list" "$REF/list.json" "$REF/slist" "$REF/slist.json"; do
		! grep -qiF "$key" "$f" && ! grep -qF "$(cat "$REF/pass2")" "$f" || exit 1
	done
'

test_expect_success 'peer create refuses a malformed passphrase, a taken name, a bad name; nothing is stored' '
	echo "ABCDE-FGHJK" >"$REF/short" &&
	assert_fails cli peer create c "127.0.0.1:$PORT" <"$REF/short" 2>"$REF/err" &&
	assert_grep "^snapfs peer create: c: that is not a snapfs passphrase" "$REF/err" &&
	assert_fails cli peer create a "127.0.0.1:1" <"$REF/pass2" 2>"$REF/err" &&
	assert_grep "a: a peer of that name exists" "$REF/err" &&
	{ cli peer create ../x "127.0.0.1:$PORT" <"$REF/pass2" 2>"$REF/err"; test $? = 2; } &&
	assert_missing "$CLI/c.peer" && assert_missing "$TEST_TMP/x.peer" &&
	assert_grep "address 127.0.0.1:$PORT" "$CLI/a.peer"
'

test_expect_success 'peer run NAME -- info STORE prints what a local info prints' '
	"$SNAPFS" mkfs "$VOL" --size 256M >/dev/null &&
	srv peer allow a send "$VOL" >/dev/null && srv peer allow b send "$VOL" >/dev/null &&
	"$SNAPFS" info "$VOL" >"$REF/local" &&
	cli peer run a -- info "$VOL" >"$REF/remote" 2>"$REF/err" &&
	! test -s "$REF/err" &&
	assert_cmp "$REF/local" "$REF/remote" &&
	"$SNAPFS" snapshot create "$VOL" s1 >/dev/null &&
	"$SNAPFS" snapshot list "$VOL" --json >"$REF/local" &&
	cli peer run a snapshot list "$VOL" --json >"$REF/remote" &&
	assert_cmp "$REF/local" "$REF/remote"
'

test_expect_success 'the remote exit status and stderr message come back' '
	want=0 && { "$SNAPFS" send "$VOL" nosuch >/dev/null 2>"$REF/local.err" || want=$?; } &&
	assert_eq 1 "$want" "local exit status" &&
	{ cli peer run a -- send "$VOL" nosuch >"$REF/out" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" "exit status" &&
	assert_cmp "$REF/local.err" "$REF/err" &&
	! test -s "$REF/out" &&
	{ cli peer run a -- send "$VOL" s1 -I s0 --resume x 2>"$REF/err"; rc=$?; } &&
	assert_eq 2 "$rc" "a usage error of the remote command" &&
	assert_grep "^snapfs send: --resume sends one stream" "$REF/err"
'

test_expect_success 'a command the allowlist does not name is refused, logged, and nothing is created' '
	{ cli peer run a -- mkfs "$TEST_TMP/x.store" >"$REF/out" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" &&
	assert_one_line "$REF/err" &&
	assert_grep "^snapfs peer run: a: the peer refused the command: .mkfs $TEST_TMP/x.store. is not allowed" "$REF/err" &&
	assert_missing "$TEST_TMP/x.store" &&
	assert_fails cli peer run a -- snapshot delete "$VOL" s1 2>"$REF/err" &&
	assert_grep "not allowed" "$REF/err" &&
	"$SNAPFS" snapshot list "$VOL" | grep -q "^s1 " &&
	assert_grep "127.0.0.1:[0-9]* peer a: refused .mkfs $TEST_TMP/x.store.: .mkfs $TEST_TMP/x.store. is not allowed" "$TEST_TMP/serve.log"
'

test_expect_success 'a wrong passphrase fails with "authentication failed", and the server keeps serving' '
	sed "y/0123456789ABCDEFGHJKMNPQRSTVWXYZ/123456789ABCDEFGHJKMNPQRSTVWXYZ0/" "$REF/pass2" >"$REF/wrong" &&
	cli peer create wrong "127.0.0.1:$PORT" <"$REF/wrong" >/dev/null &&
	{ timeout 20 env SNAPFS_CONFIG_DIR="$CLI" "$SNAPFS" peer run wrong -- info "$VOL" >"$REF/out" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" &&
	assert_one_line "$REF/err" &&
	assert_grep "^snapfs peer run: wrong: authentication failed" "$REF/err" &&
	! test -s "$REF/out" &&
	assert_grep "handshake failed (authentication failed)" "$TEST_TMP/serve.log" &&
	cli peer run a -- info "$VOL" >/dev/null
'

test_expect_success 'an unknown peer and a port nobody listens on give one clear message each' '
	assert_fails cli peer run nosuch -- info "$VOL" 2>"$REF/err" &&
	assert_grep "^snapfs peer run: nosuch: no such peer" "$REF/err" &&
	cli peer create closed "127.0.0.1:$(free_port)" <"$REF/pass2" >/dev/null &&
	assert_fails cli peer run closed -- info "$VOL" 2>"$REF/err" &&
	assert_grep "^snapfs peer run: closed: connection refused" "$REF/err"
'

# psk_of KEYFILE: "IDENTITY PSK" of the peer key in KEYFILE, by RFC 5869
# written out here (HKDF-SHA256, salt snapfs-peer-v2): what peer_tls.c
# derives with OpenSSL's HKDF, so that any TLS 1.3 client can connect.
psk_of() {
	python3 - "$1" <<-\EOF
	import hashlib, hmac, sys
	key = bytes.fromhex(open(sys.argv[1]).read().strip())
	prk = hmac.new(b"snapfs-peer-v2", key, hashlib.sha256).digest()
	okm = lambda info, n: hmac.new(prk, info + b"\x01", hashlib.sha256).digest()[:n]
	print("snapfs-peer-v2:" + okm(b"identity", 16).hex(), okm(b"tls13 external psk", 32).hex())
	EOF
}

test_expect_success OPENSSL 'the wire is TLS 1.3 with a peer'"'"'s key, and nothing else is accepted' '
	set -- $(psk_of "$SRV/clients/a.key") &&
	echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -tls1_3 \
		-psk "$2" -psk_identity "$1" >"$REF/ok" 2>&1 &&
	assert_grep "^Reused, TLSv1.3, Cipher is TLS_AES_128_GCM_SHA256$" "$REF/ok" &&
	! echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -tls1_2 >"$REF/t12" 2>&1 &&
	! echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -tls1_3 >"$REF/nokey" 2>&1 &&
	assert_grep "alert" "$REF/t12" &&
	cli peer run a -- info "$VOL" >/dev/null
'

test_expect_success 'a plain TCP client sending garbage is disconnected; the server keeps serving' '
	python3 - "$PORT" <<-\EOF &&
	import socket, sys
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
	s.sendall(b"GET / HTTP/1.0\r\n\r\n" + b"x" * 5000)
	got = b""
	while True:
	    try:
	        d = s.recv(4096)
	    except ConnectionResetError:
	        break
	    if not d:
	        break
	    got += d
	assert b"snapfs" not in got and len(got) < 100, got
	EOF
	cli peer run a -- info "$VOL" >/dev/null &&
	assert_grep "handshake failed (not TLS 1.3 with a peer key)" "$TEST_TMP/serve.log"
'

test_expect_success 'a new passphrase for one peer locks out its old one only; its grants stay' '
	srv peer passphrase a >"$REF/pass3" 2>"$REF/err" &&
	assert_grep "replaces a.s previous passphrase (no other peer.s); its grants stay" "$REF/err" &&
	assert_fails cli peer run a -- info "$VOL" 2>"$REF/err" &&
	assert_grep "authentication failed" "$REF/err" &&
	cli peer run b -- info "$VOL" >/dev/null &&
	cli peer delete a >"$REF/out" && assert_grep "deleted peer a" "$REF/out" &&
	assert_missing "$CLI/a.peer" &&
	cli peer create a "127.0.0.1:$PORT" <"$REF/pass3" >/dev/null &&
	cli peer run a -- info "$VOL" >/dev/null &&
	assert_fails cli peer delete a-never-made 2>"$REF/err" &&
	assert_grep "^snapfs peer delete: a-never-made: no such peer" "$REF/err"
'

test_expect_success 'a second server of the same config dir is refused' '
	{ srv peer serve --listen 127.0.0.1:0 --foreground >/dev/null 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" &&
	assert_grep "runs already (pid $(cat "$SRV/serve.pid"))" "$REF/err"
'

test_expect_success 'without --foreground the server detaches, writes its pidfile and log, and stops on SIGTERM' '
	D=$TEST_TMP/srv2 &&
	SNAPFS_CONFIG_DIR=$D "$SNAPFS" peer passphrase two >"$REF/pass4" 2>/dev/null &&
	SNAPFS_CONFIG_DIR=$D "$SNAPFS" peer allow two send "$VOL" >/dev/null &&
	SNAPFS_CONFIG_DIR=$D "$SNAPFS" peer serve --listen 127.0.0.1:0 >"$REF/out" &&
	pid=$(cat "$D/serve.pid") && kill -0 "$pid" &&
	assert_grep "^listening on 127.0.0.1:[0-9]* (pid $pid)$" "$REF/out" &&
	port=$(sed -n "s/.*:\([0-9]*\) (pid.*/\1/p" "$REF/out") &&
	cli peer create two "127.0.0.1:$port" <"$REF/pass4" >/dev/null &&
	cli peer run two -- info "$VOL" >/dev/null &&
	kill -TERM "$pid" &&
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done &&
	assert_gone "$pid" &&
	assert_missing "$D/serve.pid" &&
	assert_grep "127.0.0.1:[0-9]* peer two: .info $VOL.: exit 0" "$D/serve.log" &&
	assert_grep "stopped by signal 15" "$D/serve.log" &&
	assert_fails cli peer run two -- info "$VOL" 2>"$REF/err" &&
	assert_grep "connection refused" "$REF/err"
'

test_expect_success 'SIGTERM stops the foreground server and its open connections: exit 0, pidfile removed, port closed' '
	cd "$TEST_TMP" && pid=$(cat "$SRV/serve.pid") &&
	cat >"$REF/idle.py" <<-\EOF &&
	import socket, sys, time
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
	print("connected", flush=True)
	t = time.time()
	try:
	    while s.recv(4096):
	        pass
	except ConnectionResetError:
	    pass
	print("closed after %d s" % (time.time() - t))
	EOF
	{ python3 "$REF/idle.py" "$PORT" >"$REF/idle" & } &&
	idle=$! &&
	for _ in $(seq 100); do grep -q connected "$REF/idle" && break; sleep 0.1; done &&
	sleep 0.5 && kill -TERM "$pid" &&
	for _ in $(seq 100); do test -e "$TEST_TMP/serve.rc" && break; sleep 0.1; done &&
	wait $idle &&
	assert_grep "^closed after [0-2] s$" "$REF/idle" &&
	assert_eq 0 "$(cat "$TEST_TMP/serve.rc")" &&
	assert_gone "$pid" &&
	assert_missing "$SRV/serve.pid" &&
	assert_fails cli peer run a -- info "$VOL" 2>"$REF/err" &&
	assert_grep "connection refused" "$REF/err"
'

test_done
