#!/bin/bash
# Consistency-group snapshots (snapshot create --group): while a writer
# puts counter n into A/c and then into B/c, every group snapshot of A and
# B holds A's counter equal to B's or one ahead (a snapshot of A and then
# of B would have B ahead); the writer is delayed, never failed; mounted
# and unmounted members mix; bad input names the member and leaves no
# member with the snapshot; a freeze ends when its client goes or its
# timeout passes; snapshot list shows the group.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
test_have_prereq PYTHON || { say "# skipping: needs python3"; test_done; }
vol_create --size 1G

B=$TEST_TMP/mntB C=$TEST_TMP/storeC
"$SNAPFS" mkfs "$TEST_TMP/storeB" --size 1G >/dev/null &&
vol_mount "$TEST_TMP/storeB" "$B" &&
"$SNAPFS" mkfs "$C" --size 1G >/dev/null || test_bail "cannot make volumes B and C"

# names VOL: the snapshot names of VOL, in order
names() { "$SNAPFS" snapshot list "$1" --json | python3 -c "import json,sys; print(' '.join(s['name'] for s in json.load(sys.stdin)))"; }
uuid() { "$SNAPFS" info "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['uuid'])"; }
# group VOL NAME: the member UUIDs recorded with snapshot NAME of VOL
group() { "$SNAPFS" snapshot list "$1" --json | python3 -c "
import json,sys
g=[s['group'] for s in json.load(sys.stdin) if s['name']=='$2'][0]
print(' '.join(g['members']) if g else '-')"; }

# The daemon side of a freeze, as the tool (or a dying or slow one) uses
# it: freeze.py STORE TIMEOUT_MS SECONDS [THAW]: freeze and print the
# reply; then hold the connection SECONDS, or until the file THAW exists,
# when it sends "thaw" and prints that reply; then close it.
cat >"$TEST_TMP/freeze.py" <<'EOF'
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1] + "/control.sock")
f = s.makefile("r")
def send(line):
    try:
        s.sendall(line.encode())
    except BrokenPipeError:   # refused before it read us: the reply waits
        pass
send("freeze\t%s\n" % sys.argv[2])
print(f.readline().strip(), flush=True)
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    if len(sys.argv) > 4 and os.path.exists(sys.argv[4]):
        send("thaw\n")
        print(f.readline().strip(), flush=True)
        break
    time.sleep(0.05)
s.close()
EOF

# wait_line FILE: until FILE has a line (the freeze's reply), 10 s at most
wait_line() {
	local i=0
	until grep -q . "$1" 2>/dev/null; do
		i=$((i + 1)) && [ $i -le 200 ] || { say "no reply in $1" >&2; return 1; }
		sleep 0.05
	done
}

# writer.py A B STOP: n = 1, 2, ... into A, then into B, until STOP
# exists; prints the last n.  O_DIRECT: each write returns when the daemon
# acknowledged it, and the next starts only then (no page cache between,
# and no commit per write, so that many writes fall between two snapshots
# taken one after the other, as a non-atomic group would take them).
cat >"$TEST_TMP/writer.py" <<'EOF'
import os, sys
fa, fb = (os.open(p, os.O_RDWR | os.O_DIRECT) for p in sys.argv[1:3])
n = 0
while not os.path.exists(sys.argv[3]):
    n += 1
    os.pwrite(fa, b"%08d" % n, 0)
    os.pwrite(fb, b"%08d" % n, 0)
print(n)
EOF

test_expect_success 'every group snapshot of A and B taken under a writer holds A = B or A = B + 1' '
	printf %08d 0 >"$MNT/c" && printf %08d 0 >"$B/c" &&
	{ python3 "$TEST_TMP/writer.py" "$MNT/c" "$B/c" "$REF/stop" \
		>"$REF/writer.out" 2>"$REF/writer.err" & } &&
	writer=$! &&
	i=0 && until [ "$(cat "$B/c")" != 00000000 ]; do
		i=$((i + 1)) && [ $i -le 200 ] || { touch "$REF/stop"; exit 1; }
		sleep 0.05
	done &&
	for i in 1 2 3 4 5 6 7 8 9 10; do
		"$SNAPFS" snapshot create --group "$MNT,$B" "g$i" >/dev/null ||
			{ touch "$REF/stop"; exit 1; }
		sleep 0.2
	done &&
	touch "$REF/stop" &&
	wait $writer &&
	cat "$REF/writer.err" &&
	assert_eq "" "$(cat "$REF/writer.err")" "the writer saw no error" &&
	last=$(cat "$REF/writer.out") &&
	for i in 1 2 3 4 5 6 7 8 9 10; do
		a=$(cat "$MNT/.snapshot/g$i/c") && b=$(cat "$B/.snapshot/g$i/c") &&
		say "g$i: A $a B $b" &&
		d=$((10#$a - 10#$b)) &&
		{ [ $d = 0 ] || [ $d = 1 ]; } ||
			{ say "g$i: A - B = $d, not 0 or 1" >&2; exit 1; }
	done &&
	first=$(cat "$B/.snapshot/g1/c") &&
	assert_le 1 $((10#$first)) "the writer had begun at g1" &&
	assert_le $((10#$(cat "$MNT/.snapshot/g10/c") + 1)) "$last" "it wrote on after g10" &&
	assert_le $((10#$first + 10)) $((10#$(cat "$B/.snapshot/g10/c"))) "it went on between g1 and g10"
'

test_expect_success 'snapshot list shows the members of the group, on every member' '
	members="$(uuid "$MNT") $(uuid "$B")" &&
	assert_eq "$members" "$(group "$MNT" g1)" &&
	assert_eq "$members" "$(group "$B" g10)" &&
	"$SNAPFS" snapshot create "$MNT" alone &&
	assert_eq - "$(group "$MNT" alone)" &&
	"$SNAPFS" snapshot list "$MNT" >"$REF/list" &&
	short="$(uuid "$MNT" | cut -c1-8),$(uuid "$B" | cut -c1-8)" &&
	assert_grep "^g1 .* no  *$short$" "$REF/list" &&
	assert_grep "^alone .* no  *-$" "$REF/list"
'

test_expect_success 'a member snapshot renamed stays in the group; deleted, its record goes' '
	"$SNAPFS" snapshot rename "$B" g2 g2-renamed &&
	assert_eq "$(uuid "$MNT") $(uuid "$B")" "$(group "$B" g2-renamed)" &&
	for i in 3 4 5 6 7 8 9; do
		"$SNAPFS" snapshot delete "$MNT" "g$i" >/dev/null &&
		"$SNAPFS" snapshot delete "$B" "g$i" >/dev/null || exit 1
	done &&
	"$SNAPFS" snapshot create "$MNT" g3 &&
	assert_eq - "$(group "$MNT" g3)" "a new g3 is no group member"
'

test_expect_success 'a mounted and an unmounted member together' '
	echo mounted-before >"$MNT/m" &&
	"$SNAPFS" snapshot create --group "$C,$MNT" mixed >"$REF/out" &&
	assert_eq 2 "$(grep -c "created snapshot mixed of" "$REF/out")" &&
	echo mounted-after >"$MNT/m" &&
	assert_eq mounted-before "$(cat "$MNT/.snapshot/mixed/m")" &&
	assert_eq mixed "$(names "$C")" &&
	assert_eq "$(uuid "$C") $(uuid "$MNT")" "$(group "$C" mixed)" &&
	assert_eq "$(uuid "$C") $(uuid "$MNT")" "$(group "$MNT" mixed)"
'

# refused MESSAGE VOL,VOL,... NAME: exit 1 with MESSAGE as the one line
refused() {
	local want=$1 rc=0
	shift
	"$SNAPFS" snapshot create --group "$@" >"$REF/out" 2>"$REF/err" || rc=$?
	assert_eq 1 "$rc" "exit status" &&
	assert_one_line "$REF/err" &&
	assert_eq "$want" "$(cat "$REF/err")"
}

test_expect_success 'bad members and taken names are refused, naming the member; no member gets the snapshot' '
	before="$(names "$MNT")|$(names "$B")|$(names "$C")" &&
	refused "snapfs snapshot create: $TEST_TMP/nosuch: no such directory" \
		"$MNT,$B,$TEST_TMP/nosuch" bad1 &&
	"$SNAPFS" snapshot create "$B" taken >/dev/null &&
	before="$(names "$MNT")|$(names "$B")|$(names "$C")" &&
	refused "snapfs snapshot create: $B: a snapshot named '\''taken'\'' already exists" \
		"$MNT,$B" taken &&
	refused "snapfs snapshot create: $MNT: given twice (the same volume as $MNT)" \
		"$MNT,$B,$MNT" bad2 &&
	refused "snapfs snapshot create: $TEST_TMP/store: given twice (the same volume as $MNT)" \
		"$MNT,$TEST_TMP/store" bad3 &&
	refused "snapfs snapshot create: '\''a/b'\'' is not a valid snapshot name (1 to 255 bytes, no '\''/'\'', not '\''.'\'' or '\''..'\'')" \
		"$MNT,$C" a/b &&
	assert_eq "$before" "$(names "$MNT")|$(names "$B")|$(names "$C")" &&
	rc=0 && "$SNAPFS" snapshot create --group "$MNT,,$B" bad4 2>/dev/null || rc=$? &&
	assert_eq 2 "$rc" "an empty member is a usage error"
'

test_expect_success 'a write while frozen waits, and completes when the freeze is thawed' '
	echo old >"$MNT/w" && rm -f "$REF/fz" &&
	{ python3 "$TEST_TMP/freeze.py" "$STORE" 20000 15 "$REF/thaw" >"$REF/fz" & } &&
	fz=$! &&
	wait_line "$REF/fz" &&
	{ echo new >"$MNT/w" & } && w=$! &&
	sleep 1 &&
	kill -0 $w && assert_eq old "$(cat "$MNT/w")" "the write waits" &&
	touch "$REF/thaw" &&
	wait $fz &&
	wait $w && assert_eq new "$(cat "$MNT/w")" &&
	assert_eq "OK OK" "$(echo $(cat "$REF/fz"))" "frozen, then thawed"
'

# frozen_write TIMEOUT_MS SECONDS TEXT: freeze the volume (freeze.py in the
# background, pid $fz), then write TEXT into w, which must wait; sets $ms
# to the time the write took.
frozen_write() {
	rm -f "$REF/fz" &&	# the job truncates it later: no stale reply
	{ python3 "$TEST_TMP/freeze.py" "$STORE" "$1" "$2" >"$REF/fz" & } &&
	fz=$! &&
	wait_line "$REF/fz" && assert_eq OK "$(cat "$REF/fz")" "frozen" &&
	local t0=$(date +%s%N) &&
	timeout 10 sh -c "echo $3 >\"$MNT/w\"" &&
	ms=$(( ($(date +%s%N) - t0) / 1000000 )) && say "write took $ms ms" &&
	assert_eq "$3" "$(cat "$MNT/w")" &&
	assert_le 500 $ms "it waited for the freeze"
}

test_expect_success 'a client that dies while the volume is frozen does not leave it frozen' '
	frozen_write 30000 1 after-death &&
	wait $fz &&
	assert_le $ms 5000 "it went on when the client closed, long before 30 s"
'

test_expect_success 'a freeze ends by itself at its timeout, while its client still holds it' '
	frozen_write 1500 8 after-timeout &&
	kill -0 $fz && { kill $fz; wait $fz; true; } &&
	assert_le $ms 4000 "it went on at the timeout, with the client still there"
'

test_expect_success NOBODY 'only root or the owner of the store may freeze it, even when it can reach the socket' '
	mode=$(stat -c %a "$STORE") &&
	chmod o+x "$STORE" &&
	{ as_nobody "$TEST_PYTHON" "$TEST_TMP/freeze.py" "$STORE" 5000 0 >"$REF/fz"
	  rc=$?; chmod "$mode" "$STORE"; [ $rc = 0 ]; } &&
	assert_eq "ERR 13" "$(cat "$REF/fz")" &&
	timeout 5 sh -c "echo not-frozen >\"$MNT/w\"" &&
	assert_eq not-frozen "$(cat "$MNT/w")"
'

test_expect_success 'the other volumes are clean' '
	vol_umount "$B" &&
	"$SNAPFS" fsck "$TEST_TMP/storeB" &&
	"$SNAPFS" fsck "$C"
'

test_done
