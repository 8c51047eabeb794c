#!/bin/bash
# Peer grants: what a peer may do on the host that serves it.  Two "hosts"
# on loopback with their own config dirs (SNAPFS_CONFIG_DIR), the serving
# one holding three volumes: dr/vol1 (a mirror destination), dr/vol2
# (with a snapshot) and payroll (with a snapshot, granted to no one).  A
# peer without a grant is refused every command; a granted peer reaches
# only the volume and the operation of a grant, however the path is
# written (.., symlinks in the volume or in a parent, bind mounts over or
# beside a granted path, a mountpoint, a symlink flipped between the
# server's check and the command's use); a mirror runs through a grant,
# into a mounted destination too, and fails naming the grant once it is
# gone; revoking one peer leaves another working; peers of an earlier
# snapfs (one host passphrase) can do nothing until granted, then only
# that; the server's limits (words, request size, connections per peer,
# idle timeout); bad input to allow/deny/grants changes nothing; a
# damaged grants file allows nothing; the log names the peer in every
# refusal and holds no secret.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 512M

export SNAPFS_MIRROR_DIR=$TEST_TMP/mirrors
SRV=$TEST_TMP/host-srv CLI=$TEST_TMP/host-cli CLI2=$TEST_TMP/host-cli2
D=$TEST_TMP/dr PAY=$TEST_TMP/payroll.store
V1=$D/vol1.store V2=$D/vol2.store
srv() { SNAPFS_CONFIG_DIR=$SRV "$SNAPFS" "$@"; }
cli() { SNAPFS_CONFIG_DIR=$CLI "$SNAPFS" "$@"; }	# the host that is peer a
cli2() { SNAPFS_CONFIG_DIR=$CLI2 "$SNAPFS" "$@"; }	# the host that is peer b

stop_servers() {
	local f
	for f in "$SRV/serve.pid" "$TEST_TMP/host-lim/serve.pid"; do
		[ -s "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null
	done
	for m in "$V2" "$D/alias.store"; do
		mountpoint -q "$m" && umount "$m"
	done
	[ -s "$TEST_TMP/flipper.pid" ] && kill "$(cat "$TEST_TMP/flipper.pid")" 2>/dev/null
	return 0
}
test_at_exit stop_servers

# refused WANT [--as CLIENTFN] SUBCOMMAND...: `peer run srv` (from the
# host of peer a, or CLIENTFN's) exits 1 with the one line "the peer
# refused the command: WANT...", and prints nothing on stdout.
refused() {
	local want=$1 fn=cli rc=0
	shift
	[ "$1" = --as ] && { fn=$2; shift 2; }
	"$fn" peer run srv -- "$@" </dev/null >"$REF/r.out" 2>"$REF/r.err" || rc=$?
	assert_eq 1 "$rc" "exit status of peer run $*" &&
	assert_one_line "$REF/r.err" &&
	assert_grep "^snapfs peer run: srv: the peer refused the command: $want" "$REF/r.err" &&
	! test -s "$REF/r.out"
}
# fill STORE: a file of its own and snapshot s1 (by a mount)
fill() {
	"$SNAPFS" mkfs "$1" --size 256M >/dev/null &&
	vol_mount "$1" "$TEST_TMP/fill.mnt" &&
	echo "$2" >"$TEST_TMP/fill.mnt/owner" &&
	head -c "$3" /dev/urandom >"$TEST_TMP/fill.mnt/data" &&
	"$SNAPFS" snapshot create "$TEST_TMP/fill.mnt" s1 >/dev/null &&
	vol_umount "$TEST_TMP/fill.mnt"
}
# volume_id STORE: the identity peer serve hands a command (UUID:DEV:INO)
volume_id() {
	echo "$("$SNAPFS" info "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])'):$(stat -c %d:%i "$1/data.mdb")"
}

test_expect_success 'set up: three volumes on the serving host, peers a and b with passphrases of their own' '
	mkdir -p "$D" &&
	"$SNAPFS" mkfs "$V1" --size 512M >/dev/null &&
	fill "$V2" vol2 20000 && fill "$PAY" payroll 300000 &&
	"$SNAPFS" send "$V2" s1 >"$REF/vol2.stream" &&
	"$SNAPFS" send "$PAY" s1 >"$REF/pay.stream" &&
	! cmp -s "$REF/vol2.stream" "$REF/pay.stream" &&
	srv peer passphrase a >"$REF/pass.a" 2>/dev/null &&
	srv peer passphrase b >"$REF/pass.b" 2>/dev/null
'

PORT=$(peer_server_start "$SRV" serve)
[ -n "$PORT" ] || test_bail "peer serve did not start: $(cat "$TEST_TMP/serve.log")"
cli peer create srv "127.0.0.1:$PORT" <"$REF/pass.a" >/dev/null &&
cli2 peer create srv "127.0.0.1:$PORT" <"$REF/pass.b" >/dev/null ||
	test_bail "peer create failed"

test_expect_success 'the server logs at its start which peers have no grant yet; peer list and peer grants say so' '
	assert_grep "peer a has no grant yet: it can only connect" "$TEST_TMP/serve.log" &&
	assert_grep "peer b has no grant yet: it can only connect" "$TEST_TMP/serve.log" &&
	srv peer list >"$REF/list" &&
	assert_grep "^a  *none yet: it can only connect$" "$REF/list" &&
	srv peer grants >"$REF/grants" &&
	assert_grep "^a  *no grant yet: it can only connect$" "$REF/grants" &&
	assert_eq "{\"grants\":[],\"without_grant\":[\"a\",\"b\"]}" "$(srv peer grants --json)"
'

test_expect_success 'a peer without a grant can only connect: send, receive, info and snapshot list are refused and logged; nothing changes' '
	no="peer a has no grant on this host: it may only connect (its administrator grants with: snapfs peer allow a send|receive VOLUME)$" &&
	refused "$no" info "$V2" &&
	refused "$no" snapshot list "$V2" --json &&
	refused "$no" send "$V2" s1 &&
	{ cli peer run srv -- receive "$V1" <"$REF/vol2.stream" >"$REF/out" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" &&
	assert_grep "the peer refused the command: $no" "$REF/err" &&
	assert_eq "" "$(snaps "$V1")" &&
	for what in "info $V2" "snapshot list $V2 --json" "send $V2 s1" "receive $V1"; do
		assert_grep "127.0.0.1:[0-9]* peer a: refused .$what.: peer a has no grant yet$" "$TEST_TMP/serve.log" || exit 1
	done
'

test_expect_success 'peer allow grants by volume identity: the store path as resolved and its UUID' '
	srv peer allow a receive "$V1" >"$REF/out" &&
	uuid1=$("$SNAPFS" info "$V1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"uuid\"])") &&
	assert_eq "snapfs: peer a may receive into $V1 (volume $uuid1)" "$(cat "$REF/out")" &&
	srv peer allow a send "$D/../dr/./vol2.store/" >/dev/null &&
	srv peer allow a send "$V2" >"$REF/again" &&
	srv peer grants --json >"$REF/g.json" &&
	python3 - "$REF/g.json" "$V1" "$V2" "$uuid1" <<-\EOF
	import json, sys
	g = json.load(open(sys.argv[1]))
	got = [(x["peer"], x["operation"], x["volume"], x["state"]) for x in g["grants"]]
	assert got == [("a", "receive", sys.argv[2], "ok"), ("a", "send", sys.argv[3], "ok")], got
	assert g["grants"][0]["uuid"] == sys.argv[4], g
	assert g["without_grant"] == ["b"], g
	EOF
	assert_eq 2 "$(grep -c "^a " "$SRV/grants")" &&
	assert_stat "$SRV/grants" %a 600
'

test_expect_success 'a granted peer reaches the volume and operation of its grants only' '
	cli peer run srv -- info "$V2" >"$REF/info" && assert_grep "^volume: *$V2$" "$REF/info" &&
	cli peer run srv -- snapshot list "$V1" --json >/dev/null &&
	cli peer run srv -- send "$V2" s1 >"$REF/got" && assert_cmp "$REF/vol2.stream" "$REF/got" &&
	refused "peer a has no send or receive grant for $PAY on this host (its administrator grants it with: snapfs peer allow a send|receive $PAY)$" info "$PAY" &&
	refused "peer a has no send or receive grant for $PAY" snapshot list "$PAY" &&
	refused "peer a has no send grant for $PAY on this host (its administrator grants it with: snapfs peer allow a send $PAY)$" send "$PAY" s1 &&
	refused "peer a has no send grant for $V1" send "$V1" s1 &&
	{ cli peer run srv -- receive "$V2" <"$REF/pay.stream" >/dev/null 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "peer a has no receive grant for $V2" "$REF/err" &&
	{ cli peer run srv -- receive "$PAY" <"$REF/vol2.stream" >/dev/null 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "peer a has no receive grant for $PAY" "$REF/err" &&
	assert_eq s1 "$(snaps "$V2")" && assert_eq s1 "$(snaps "$PAY")" &&
	refused "peer a has no send or receive grant for $TEST_TMP/nothing-here" info "$TEST_TMP/nothing-here"
'

test_expect_success 'paths are checked as the filesystem resolves them: .., symlinks, a symlinked parent' '
	refused "peer a has no send grant for $V2/../../payroll.store" send "$V2/../../payroll.store" s1 &&
	ln -s "$PAY" "$D/link.store" && ln -s "$TEST_TMP" "$D/up" &&
	refused "peer a has no send grant for $D/link.store" send "$D/link.store" s1 &&
	refused "peer a has no send grant for $D/up/payroll.store" send "$D/up/payroll.store" s1 &&
	refused "peer a has no send or receive grant for $D/link.store" info "$D/link.store" &&
	ln -s vol2.store "$D/alias-link.store" &&
	cli peer run srv -- send "$D/alias-link.store" s1 >"$REF/got" && assert_cmp "$REF/vol2.stream" "$REF/got" &&
	cli peer run srv -- send "$D/up/dr/vol2.store" s1 >"$REF/got" && assert_cmp "$REF/vol2.stream" "$REF/got" &&
	cd / && cli peer run srv -- send "${V2#/}" s1 >"$REF/got" && assert_cmp "$REF/vol2.stream" "$REF/got"
'

test_expect_success ROOT 'bind mounts: the payroll volume bound over a granted path is refused; the granted volume bound elsewhere is itself' '
	mount --bind "$PAY" "$V2" &&
	refused "peer a has no send grant for $V2" send "$V2" s1 &&
	srv peer grants >"$REF/g" && assert_grep "^a  *send  *replaced  *" "$REF/g" &&
	umount "$V2" &&
	mkdir "$D/alias.store" && mount --bind "$V2" "$D/alias.store" &&
	cli peer run srv -- send "$D/alias.store" s1 >"$REF/got" &&
	umount "$D/alias.store" &&
	assert_cmp "$REF/vol2.stream" "$REF/got"
'

test_expect_success 'a store replaced after the grant is refused, and peer grants says replaced' '
	mv "$V2" "$D/vol2.away" && cp -a "$PAY" "$V2" &&
	refused "peer a has no send grant for $V2" send "$V2" s1 &&
	srv peer grants >"$REF/g" && assert_grep "^a  *send  *replaced " "$REF/g" &&
	rm -rf "$V2" &&
	srv peer grants >"$REF/g" && assert_grep "^a  *send  *missing " "$REF/g" &&
	mv "$D/vol2.away" "$V2" &&
	cli peer run srv -- send "$V2" s1 >"$REF/got" && assert_cmp "$REF/vol2.stream" "$REF/got"
'

test_expect_success 'a mountpoint names its store: the mounted payroll volume is refused' '
	vol_mount "$PAY" "$TEST_TMP/pay.mnt" &&
	refused "peer a has no send or receive grant for $TEST_TMP/pay.mnt" snapshot list "$TEST_TMP/pay.mnt" &&
	refused "peer a has no send grant for $TEST_TMP/pay.mnt" send "$TEST_TMP/pay.mnt" s1 &&
	vol_umount "$TEST_TMP/pay.mnt"
'

test_expect_success 'the command checks what it opened: given one volume, any other path is refused (a store, a mount)' '
	id=$(volume_id "$V2") &&
	{ SNAPFS_PEER_VOLUME=$id "$SNAPFS" send "$PAY" s1 >"$REF/out" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && ! test -s "$REF/out" &&
	assert_grep "^snapfs send: $PAY: not the volume the peer.s grant names" "$REF/err" &&
	SNAPFS_PEER_VOLUME=$id "$SNAPFS" send "$V2" s1 >"$REF/got" && assert_cmp "$REF/vol2.stream" "$REF/got" &&
	vol_mount "$PAY" "$TEST_TMP/pay.mnt" &&
	{ SNAPFS_PEER_VOLUME=$id "$SNAPFS" snapshot list "$TEST_TMP/pay.mnt" >"$REF/out" 2>&1; rc=$?; } &&
	vol_umount "$TEST_TMP/pay.mnt" &&
	assert_eq 1 "$rc" && assert_grep "not permitted\|not the volume" "$REF/out" &&
	{ SNAPFS_PEER_VOLUME=nonsense "$SNAPFS" info "$V2" >"$REF/out" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && ! test -s "$REF/out" &&
	assert_grep "SNAPFS_PEER_VOLUME: not a volume identity" "$REF/err"
'

test_expect_success 'a symlink flipped between payroll and a granted volume while the peer asks: never a byte of payroll' '
	python3 -c "
import os, sys
d, pay = sys.argv[1], sys.argv[2]
while True:
    for target in (pay, \"vol2.store\"):
        os.symlink(target, d + \"/flip.new\")
        os.replace(d + \"/flip.new\", d + \"/flip.store\")
" "$D" "$PAY" &
	flipper=$! && echo "$flipper" >"$TEST_TMP/flipper.pid" &&
	sent=0 refused=0 tripped=0 &&
	for i in $(seq 24); do
		rc=0 && cli peer run srv -- send "$D/flip.store" s1 >"$REF/got" 2>"$REF/err" || rc=$?
		if [ "$rc" = 0 ]; then
			assert_cmp "$REF/vol2.stream" "$REF/got" || exit 1
			sent=$((sent + 1))
		else
			! test -s "$REF/got" || exit 1
			grep -q "not the volume the peer.s grant names\|no send grant for" "$REF/err" || { cat "$REF/err"; exit 1; }
			grep -q "not the volume" "$REF/err" && tripped=$((tripped + 1))
			refused=$((refused + 1))
		fi
	done
	kill "$flipper" && { wait "$flipper" 2>/dev/null || :; } &&
	say "# sent vol2 $sent times, refused $refused (the command itself $tripped)" &&
	assert_eq 24 $((sent + refused))
'

test_expect_success 'a mirror runs through the receive grant, into a mounted destination too; without it, update fails naming the grant' '
	echo one >f && mkdir -p sub && head -c 500000 /dev/urandom >sub/big &&
	cli mirror create "$MNT" "srv:$V1" >"$REF/out" &&
	assert_grep "uses this host.s receive grant for $V1 on peer srv" "$REF/out" &&
	cli mirror initialize "srv:$V1" >/dev/null &&
	newest=$(snaps "$V1") && assert_eq "$(snaps "$MNT")" "$newest" &&
	vol_mount "$V1" "$TEST_TMP/v1.mnt" &&
	echo two >f &&
	cli mirror update "srv:$V1" >/dev/null &&
	assert_eq two "$(cat "$TEST_TMP/v1.mnt/f")" &&
	assert_cmp sub/big "$TEST_TMP/v1.mnt/sub/big" &&
	vol_umount "$TEST_TMP/v1.mnt" &&
	srv peer deny a receive "$V1" >"$REF/out" &&
	assert_eq "snapfs: peer a: 1 grant removed" "$(cat "$REF/out")" &&
	before=$(snaps "$V1") && echo three >f &&
	{ cli mirror update "srv:$V1" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" &&
	assert_grep "peer a has no receive grant for $V1 on this host (its administrator grants it with: snapfs peer allow a receive $V1)" "$REF/err" &&
	assert_eq "$before" "$(snaps "$V1")" &&
	srv peer allow a receive "$V1" >/dev/null &&
	cli mirror update "srv:$V1" >/dev/null &&
	vol_mount "$V1" "$TEST_TMP/v1.mnt" && assert_eq three "$(cat "$TEST_TMP/v1.mnt/f")" &&
	vol_umount "$TEST_TMP/v1.mnt"
'

test_expect_success 'the server'"'"'s limits: words, word size and request size are refused with one log line each, a newline in a word too' '
	refused "the request has 41 words (the server takes at most 32)" info $(seq 40) &&
	long=$(long_name 5000) &&
	refused "word 2 of the request is 5000 bytes (the server takes at most 4096)" info "$long" &&
	big=$(for i in $(seq 30); do printf "%s " "$(long_name 3000)"; done) &&
	refused "larger than the server takes (65536 bytes)" info $big &&
	assert_grep "peer a: refused .a request of [0-9]* bytes.: larger than the server takes" "$TEST_TMP/serve.log" &&
	assert_grep "peer a: refused .info 1 2 3 .*: the request has 41 words" "$TEST_TMP/serve.log" &&
	refused "peer a has no send or receive grant for x?FAKE" info "$(printf "x\nFAKE")" &&
	assert_grep "peer a: refused .info x?FAKE.: " "$TEST_TMP/serve.log" &&
	! grep -q "^FAKE" "$TEST_TMP/serve.log"
'

test_expect_success 'connections per peer and the idle timeout: a third connection is refused, idle ones are closed' '
	cd "$TEST_TMP" && L=$TEST_TMP/host-lim C=$TEST_TMP/host-c &&
	SNAPFS_CONFIG_DIR=$L "$SNAPFS" peer passphrase c >"$REF/pass.c" 2>/dev/null &&
	for i in 1 2; do
		"$SNAPFS" mkfs "$TEST_TMP/l$i.store" --size 256M >/dev/null &&
		SNAPFS_CONFIG_DIR=$L "$SNAPFS" peer allow c receive "$TEST_TMP/l$i.store" >/dev/null || exit 1
	done &&
	port=$(peer_server_start "$L" lim --max-per-peer 2 --idle-timeout 4) && test -n "$port" &&
	SNAPFS_CONFIG_DIR=$C "$SNAPFS" peer create lim "127.0.0.1:$port" <"$REF/pass.c" >/dev/null &&
	mkfifo "$TEST_TMP/hold1" "$TEST_TMP/hold2" &&
	for i in 1 2; do
		{ SNAPFS_CONFIG_DIR=$C "$SNAPFS" peer run lim -- receive --handshake "$TEST_TMP/l$i.store" \
			<"$TEST_TMP/hold$i" >"$REF/hold$i.out" 2>"$REF/hold$i.err"; echo $? >"$REF/hold$i.rc"; } &
		exec {fd}>"$TEST_TMP/hold$i" || exit 1
		eval "holdfd$i=\$fd"
	done &&
	for _ in $(seq 100); do
		[ "$(grep -c "^snapfs-receive" "$REF"/hold*.out 2>/dev/null | grep -c ":1$")" = 2 ] && break
		sleep 0.1
	done &&
	{ SNAPFS_CONFIG_DIR=$C "$SNAPFS" peer run lim -- info "$TEST_TMP/l1.store" >"$REF/out" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" &&
	assert_grep "^snapfs peer run: lim: the peer refused the command: peer c has 2 connections open here already (the server takes at most 2 at once)$" "$REF/err" &&
	for i in 1 2; do
		for _ in $(seq 200); do test -s "$REF/hold$i.rc" && break; sleep 0.1; done
		assert_eq 1 "$(cat "$REF/hold$i.rc")" "the idle connection $i ended" &&
		assert_grep "the connection was lost" "$REF/hold$i.err" || exit 1
	done &&
	eval "exec $holdfd1>&- $holdfd2>&-" &&
	assert_grep "peer c: refused .a connection.: peer c has 2 connections open here already" "$TEST_TMP/lim.log" &&
	assert_eq 2 "$(grep -c "peer c: .receive --handshake .*: the connection was idle too long; the command was stopped" "$TEST_TMP/lim.log")" &&
	SNAPFS_CONFIG_DIR=$C "$SNAPFS" peer run lim -- info "$TEST_TMP/l1.store" >/dev/null &&
	assert_eq "" "$(snaps "$TEST_TMP/l1.store")" &&
	kill -TERM "$(cat "$L/serve.pid")"
'

test_expect_success 'revoking one peer leaves the other working; its key and grants go, the other'"'"'s stay' '
	srv peer allow b send "$V2" >/dev/null &&
	cli2 peer run srv -- send "$V2" s1 >"$REF/got" && assert_cmp "$REF/vol2.stream" "$REF/got" &&
	sum=$(sha256sum <"$SRV/clients/b.key") &&
	srv peer revoke a >"$REF/out" &&
	assert_eq "snapfs: revoked peer a (2 grants removed); it can no longer connect" "$(cat "$REF/out")" &&
	assert_missing "$SRV/clients/a.key" &&
	! grep -q "^a " "$SRV/grants" && grep -q "^b send " "$SRV/grants" &&
	assert_eq "$sum" "$(sha256sum <"$SRV/clients/b.key")" &&
	{ cli peer run srv -- info "$V2" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "authentication failed" "$REF/err" &&
	cli2 peer run srv -- send "$V2" s1 >"$REF/got" && assert_cmp "$REF/vol2.stream" "$REF/got" &&
	{ cli mirror update "srv:$V1" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "authentication failed" "$REF/err"
'

# The passphrase of an earlier snapfs and what it stored: the host key
# (PBKDF2-HMAC-SHA256 of the passphrase) in serve.key, and on the other
# host a record without a protocol line.
OLDPASS=4XJ7Q-M2K9D-ABCDE-FGHJK-MNPQR-STVWX
old_key() {
	python3 -c 'import hashlib,sys; print(hashlib.pbkdf2_hmac("sha256", sys.argv[1].replace("-","").encode(), b"snapfs-peer-v1", 100000, 32).hex())' "$OLDPASS"
}
test_expect_success 'peers of an earlier snapfs (one host passphrase) keep working only where granted, as peer legacy' '
	OLD=$TEST_TMP/host-old && mkdir -m 700 "$OLD" &&
	old_key >"$SRV/serve.key" && chmod 600 "$SRV/serve.key" &&
	printf "address 127.0.0.1:%s\nkey %s\n" "$PORT" "$(old_key)" >"$OLD/srv.peer" && chmod 600 "$OLD/srv.peer" &&
	srv peer list >"$REF/list" && assert_grep "^legacy  *none yet: it can only connect$" "$REF/list" &&
	srv peer grants --json >"$REF/g.json" && assert_grep "\"without_grant\":\[\"legacy\"\]" "$REF/g.json" &&
	old() { SNAPFS_CONFIG_DIR=$OLD "$SNAPFS" "$@"; } &&
	{ old peer run srv -- info "$V2" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "peer legacy has no grant on this host: it may only connect" "$REF/err" &&
	srv peer allow legacy send "$V2" >/dev/null &&
	old peer run srv -- send "$V2" s1 >"$REF/got" && assert_cmp "$REF/vol2.stream" "$REF/got" &&
	{ old peer run srv -- send "$PAY" s1 >"$REF/out" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && ! test -s "$REF/out" && assert_grep "peer legacy has no send grant for $PAY" "$REF/err" &&
	echo "$OLDPASS" | old peer create renewed "127.0.0.1:$PORT" >/dev/null &&
	assert_grep "^protocol 2$" "$OLD/renewed.peer" &&
	old peer run renewed -- send "$V2" s1 >"$REF/got" && assert_cmp "$REF/vol2.stream" "$REF/got" &&
	assert_grep "peer legacy: .send $V2 s1.: exit 0" "$TEST_TMP/serve.log" &&
	srv peer revoke legacy >/dev/null && assert_missing "$SRV/serve.key" &&
	{ old peer run srv -- info "$V2" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "authentication failed" "$REF/err" &&
	cli2 peer run srv -- info "$V2" >/dev/null
'

test_expect_success 'bad input to allow, deny, grants and revoke: one message, non-zero exit, nothing changed' '
	cp "$SRV/grants" "$REF/grants.before" &&
	{ srv peer allow nobody send "$V2" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "^snapfs peer allow: nobody: no such peer connects here" "$REF/err" &&
	{ srv peer allow b copy "$V2" 2>"$REF/err"; rc=$?; } &&
	assert_eq 2 "$rc" && assert_grep "^snapfs peer allow: .copy.: give send or receive" "$REF/err" &&
	{ srv peer allow b receive "$V1" "$TEST_TMP/not-a-volume" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "^snapfs peer allow: $TEST_TMP/not-a-volume: no such directory; nothing was granted$" "$REF/err" &&
	mkdir -p "$TEST_TMP/plain" &&
	{ srv peer allow b receive "$TEST_TMP/plain" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "plain: not a snapfs volume; nothing was granted" "$REF/err" &&
	{ srv peer allow b send 2>"$REF/err"; rc=$?; } && assert_eq 2 "$rc" &&
	{ srv peer deny b receive "$V1" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "^snapfs peer deny: $V1: peer b has no receive grant for it (snapfs peer grants b lists them); nothing was removed$" "$REF/err" &&
	{ srv peer deny b send "$V2" "$V1" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "nothing was removed" "$REF/err" &&
	{ srv peer grants nobody 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "^snapfs peer grants: nobody: no such peer connects here" "$REF/err" &&
	{ srv peer revoke nobody 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "^snapfs peer revoke: nobody: no such peer connects here" "$REF/err" &&
	{ srv peer delete b 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "^snapfs peer delete: b: no such peer this host connects to (a peer that connects here goes with snapfs peer revoke b)$" "$REF/err" &&
	test -e "$SRV/clients/b.key" &&
	{ srv peer serve --max-per-peer 0 2>"$REF/err"; rc=$?; } &&
	assert_eq 2 "$rc" && assert_grep "give a whole number from 1 to 16" "$REF/err" &&
	assert_cmp "$REF/grants.before" "$SRV/grants" &&
	cli2 peer run srv -- info "$V2" >/dev/null
'

test_expect_success 'a damaged grants file allows nothing, and says where it is damaged' '
	cp "$SRV/grants" "$REF/grants.good" &&
	echo "b send not-a-uuid $V2" >>"$SRV/grants" &&
	refused "the grants of this host cannot be read; nothing is allowed until its administrator repairs them" --as cli2 info "$V2" &&
	{ srv peer grants 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "grants: damaged at line 3" "$REF/err" &&
	{ srv peer allow b receive "$V1" 2>"$REF/err"; rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "grants: damaged; nothing was granted" "$REF/err" &&
	cp "$REF/grants.good" "$SRV/grants" &&
	cli2 peer run srv -- info "$V2" >/dev/null
'

test_expect_success 'the log names the peer in every refusal and holds no passphrase and no key' '
	grep "refused" "$TEST_TMP/serve.log" >"$REF/refusals" &&
	test "$(wc -l <"$REF/refusals")" -gt 20 &&
	! grep -v "127.0.0.1:[0-9]* peer [a-z]*: refused " "$REF/refusals" &&
	for secret in "$(cat "$REF/pass.a")" "$(cat "$REF/pass.b")" "$OLDPASS" "$(old_key)" \
	              "$(cat "$SRV/clients/b.key")" "$(sed -n "s/^key //p" "$CLI/srv.peer")"; do
		! grep -qiF "$secret" "$TEST_TMP/serve.log" "$TEST_TMP/lim.log" || exit 1
	done
'

test_expect_success 'every volume is fsck clean' '
	for s in "$V1" "$V2" "$PAY"; do "$SNAPFS" fsck "$s" >/dev/null || exit 1; done
'

test_done
