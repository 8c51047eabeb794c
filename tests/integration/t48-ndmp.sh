#!/bin/bash
# NDMP: `snapfs ndmp serve` on loopback, driven by a real DMA, Amanda's
# ndmjob.  Its queries see MD5 authentication only, the "dump" backup
# type with its environment, the mounted volume and an unmounted one; a
# backup through the server's own mover onto a file tape is a dump that
# Debian's restore reads, with file history for the DMA's index (and
# the same history read back from the tape, ndmjob -t); a full
# restore and a single-file restore through NDMP give back the source
# attribute by attribute, and by position (DAR) from the DMA's index;
# ndmjob's DATA and MOVER conformance series pass; three-way backups
# stream to a remote mover over TCP (ndmjob's own, and a bare listener)
# and restore back; a level 1 after changes carries the changes; a wrong
# password and text authentication are refused and logged without a
# secret; a malformed message and one of absurd length are answered or
# closed cleanly while other sessions go on; a DMA that disconnects in
# the middle of a backup, like one aborted by DATA_ABORT, leaves no
# snapshot, hold or dump context.  Restartable backups: an ndmjob killed
# in a HIST=y backup's files phase leaves a restartable context whose
# restart file starts on the tape; RESTART_CONTEXT continues it onto a
# second tape and ends it (nothing left); the two parts restore as the
# source with snapfs restore, part 1 reads in Debian's restore; bad ids
# are refused with nothing changed; DATA_ABORT gives the RESTART_
# variables in GET_ENV; a three-way backup's context is deleted.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
NDMJOB=$(dpkg -L amanda-common 2>/dev/null | grep '/ndmjob$' | head -1)
[ -x "$NDMJOB" ] || { say "# skipping: needs ndmjob (Debian's amanda-common)"; test_done; }
command -v restore >/dev/null || { say "# skipping: needs Debian's dump package"; test_done; }
# ndmjob writes its debug log under /var/log/amanda/client, which only
# root (or Amanda's backup user) may create and write
[ -w /var/log/amanda/client ] || [ -w /var/log/amanda ] || [ -w /var/log ] ||
	{ say "# skipping: ndmjob needs to write its log under /var/log/amanda (run as root)"; test_done; }
vol_create --size 1G

TREE=$(cd "$(dirname "$0")" && pwd)/treelist.py
CLIENT=$(cd "$(dirname "$0")" && pwd)/ndmpclient.py
OUT=$TEST_TMP/out
TAPES=$TEST_TMP/tapes
CONF=$TEST_TMP/conf
VOL2=$TEST_TMP/vol2.store
MNT2=$TEST_TMP/vol2
mkdir -p "$OUT" "$TAPES"
export SNAPFS_CONFIG_DIR=$CONF

listing() {
	python3 "$TREE" "$1" --usec --skip .snapfs-restoresymtable "${@:2}"
}

# agent USER PASSWORD [FLAGS]: ndmjob's -D argument for our server
agent() { echo "127.0.0.1:$PORT/${3:-4m},$1,$2"; }

# dma ARGS...: ndmjob -v; its output in $OUT/last (and appended to
# $OUT/dma.log).  ndmjob always exits 0: success is its closing line
# "Operation complete" (not "... but had problems.").
dma() {
	(cd "$TEST_TMP" && "$NDMJOB" -v "$@") >"$OUT/last" 2>&1
	{ echo "== ndmjob $*"; cat "$OUT/last"; } >>"$OUT/dma.log"
	grep -q '"Operation complete"$' "$OUT/last"
}

# no_backup_left: the volume has no backup snapshot (so no hold on one)
# and no dump context
no_backup_left() {
	"$SNAPFS" snapshot list "$MNT" >"$OUT/snaps" &&
	! grep -q snapshot_for_backup "$OUT/snaps" &&
	"$SNAPFS" dump contexts "$MNT" >"$OUT/ctx" &&
	assert_eq 1 "$(wc -l <"$OUT/ctx")" "only the header line"
}

server_start() {
	( cd / && exec "$SNAPFS" ndmp serve --port 0 --listen 127.0.0.1 \
		--tape-dir "$TAPES" --max-sessions 8 --volume "$IDLE" -f \
		>"$TEST_TMP/server.out" 2>"$TEST_TMP/server.log" </dev/null ) &
	SERVER_PID=$!
	for _ in $(seq 200); do
		grep -q '^snapfs ndmp: listening on port ' "$TEST_TMP/server.out" 2>/dev/null && break
		sleep 0.05
	done
	PORT=$(sed -n 's/^snapfs ndmp: listening on port //p' "$TEST_TMP/server.out")
}
test_at_exit '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null'

IDLE=$TEST_TMP/idle.store	# a volume that is not mounted
mkdir -p "$IDLE" && "$SNAPFS" mkfs "$IDLE" --size 512M >/dev/null
(cd "$TEST_TMP" && "$SNAPFS" ndmp password backup >"$OUT/pw" 2>"$OUT/pw.err")
PW=$(cat "$OUT/pw")
server_start

test_expect_success 'setup: a volume with files, links, xattrs and ACLs; a second volume; an NDMP user' '
	mkdir -p d1/d2 eng &&
	echo hello >d1/f && echo spec >eng/spec &&
	head -c 3000000 /dev/urandom >big &&
	ln d1/f hardlink && ln -s d1/f symlink && mkfifo fifo &&
	setfattr -n user.foo -v bar d1/f &&
	setfacl -m u:1000:rw d1/f &&
	touch -d "2020-01-02 03:04:05" d1/f &&
	mkdir -p "$VOL2" && "$SNAPFS" mkfs "$VOL2" --size 1G >/dev/null &&
	vol_mount "$VOL2" "$MNT2"
'

test_expect_success 'ndmp password prints a generated password once and keeps it in a 0600 file; the server listens' '
	assert_eq 1 "$(wc -l <"$OUT/pw")" &&
	assert_grep "shown once" "$OUT/pw.err" &&
	assert_eq 24 "${#PW}" &&
	assert_eq 600 "$(stat -c %a "$CONF/ndmp.users")" &&
	assert_eq 700 "$(stat -c %a "$CONF")" &&
	test -n "$PORT" && pid_running "$SERVER_PID"
'

test_expect_success 'ndmjob -q sees MD5 authentication only, the dump backup type with its environment, the mounted volume and an unmounted one with its size' '
	dma -q -D "$(agent backup "$PW")" &&
	cp "$OUT/last" "$OUT/q" &&
	assert_grep "MD5" "$OUT/q" &&
	! grep -q "AUTH_TEXT\|TEXT" "$OUT/q" &&
	assert_grep "dump" "$OUT/q" &&
	assert_grep "FILESYSTEM" "$OUT/q" &&
	assert_grep "LEVEL" "$OUT/q" &&
	assert_grep "File system $MNT\"$" "$OUT/q" &&
	assert_grep "File system $IDLE\"$" "$OUT/q" &&
	sed -n "\|File system $IDLE\"\$|,/^QR \"\"/p" "$OUT/q" >"$OUT/qidle" &&
	assert_grep "status     unmounted" "$OUT/qidle" &&
	assert_grep "space      536870912 total" "$OUT/qidle" &&
	assert_grep "LOCAL" "$OUT/q" && assert_grep "TCP" "$OUT/q"
'

test_expect_success 'a wrong password is refused: ndmjob fails, ndmjob reports the failed authentication, the server logs the user and the reason, never a secret' '
	: >"$TAPES/refused" &&
	! dma -c -D "$(agent backup WRONGPASSWORD123)" -B dump -f "$TAPES/refused" -C "$MNT" &&
	assert_grep "connect-auth-md5-failed" "$OUT/last" &&
	assert_grep "Operation complete but had problems" "$OUT/last" &&
	assert_grep "authentication of user .backup. failed: wrong password" "$TEST_TMP/server.log" &&
	! test -s "$TAPES/refused" &&
	! grep -q "WRONGPASSWORD123" "$TEST_TMP/server.log" &&
	! grep -qF "$PW" "$TEST_TMP/server.log"
'

test_expect_success 'CONNECT_SERVER_AUTH: the server proves itself with MD5 over the DMA'"'"'s challenge and the user'"'"'s password (a wrong password gives another digest); refused before the DMA authenticated' '
	echo WRONGPASSWORDWRONGPASSWO >"$OUT/wrongpw" &&
	python3 "$CLIENT" serverauth "$PORT" backup "$OUT/pw" "$OUT/wrongpw" >"$OUT/sauth" &&
	cat >"$OUT/sauth.want" <<-\EOF &&
	before 4
	user backup
	right password: match
	wrong password: differs
	EOF
	assert_cmp "$OUT/sauth.want" "$OUT/sauth" &&
	assert_grep "the server proved itself to user .backup. (md5)" "$TEST_TMP/server.log" &&
	! grep -qF "$PW" "$TEST_TMP/server.log"
'

test_expect_success 'text authentication is refused unless enabled, an unknown user too' '
	! dma -c -D "$(agent backup "$PW" 4t)" -B dump -f "$TAPES/refused" -C "$MNT" &&
	assert_grep "text authentication is disabled" "$TEST_TMP/server.log" &&
	! dma -c -D "$(agent nobody "$PW")" -B dump -f "$TAPES/refused" -C "$MNT" &&
	assert_grep "user .nobody. failed: no such user" "$TEST_TMP/server.log" &&
	! grep -qF "$PW" "$TEST_TMP/server.log"
'

test_expect_success 'ndmjob -o test-data: the DATA conformance series passes, LOCAL and TCP addressing' '
	dma -o test-data -D "$(agent backup "$PW")" -B dump &&
	assert_grep "FINAL test-data Passed -- pass=[0-9]* warn=0 fail=0" "$OUT/last" &&
	assert_grep "LOCAL and TCP addressing tested" "$OUT/last"
'

test_expect_success 'ndmjob -o test-mover: the MOVER conformance series passes on a file tape' '
	: >"$TAPES/conformance" &&
	dma -o test-mover -D "$(agent backup "$PW")" -f "$TAPES/conformance" &&
	assert_grep "FINAL test-mover Passed -- pass=[0-9]* warn=0 fail=0" "$OUT/last"
'

# ndmjob's test-tape cannot send a zero-length TAPE_WRITE (T-BW #6): its
# request translation allocates the data with glib's g_malloc, which
# returns NULL for 0 bytes, and ndmjob takes that for a failure before
# anything is sent.  A g_malloc that allocates 1 byte for 0 (what
# glibc's malloc does) is preloaded, so that the series reaches the server.
GMALLOC=$TEST_TMP/gmalloc0.so
printf '%s\n' '#include <stdlib.h>' \
	'void *g_malloc(size_t n) { void *p = malloc(n ? n : 1); if (!p) abort(); return p; }' \
	>"$TEST_TMP/gmalloc0.c"
if cc -shared -fPIC -o "$GMALLOC" "$TEST_TMP/gmalloc0.c" 2>/dev/null; then
	test_set_prereq GMALLOC0
else
	say "# skipping ndmjob's test-tape past T-BW #6: no C compiler (cc) for the g_malloc shim"
fi

test_expect_success 'ndmjob -o test-tape as shipped stops at its own zero-length write (T-BW #6: its last request sent is still the TAPE_OPEN before it)' '
	: >"$TAPES/tt" &&
	! dma -o test-tape -D "$(agent backup "$PW")" -f "$TAPES/tt" &&
	assert_grep "Test T-OC Passed -- pass=8 warn=0 fail=0" "$OUT/last" &&
	assert_grep "Test T-BGS Passed -- pass=4 warn=0 fail=0" "$OUT/last" &&
	assert_grep "T-BW #6 -- Failed NDMP4_TAPE_OPEN/NDMP9_NO_ERR got NDMP9_NO_ERR" "$OUT/last"
'

test_expect_success GMALLOC0 'ndmjob -o test-tape: T-OC, T-BGS, T-BW (the zero-length write answered) and T-BR pass; T-BWR stops at ndmjob'"'"'s signed-char compare of bytes the server returned right' '
	: >"$TAPES/tt" &&
	! (cd "$TEST_TMP" && LD_PRELOAD=$GMALLOC "$NDMJOB" -v -d6 -o test-tape \
		-D "$(agent backup "$PW")" -f "$TAPES/tt") >"$OUT/last" 2>&1 &&
	assert_grep "Test T-OC Passed -- pass=8 warn=0 fail=0" "$OUT/last" &&
	assert_grep "Test T-BGS Passed -- pass=4 warn=0 fail=0" "$OUT/last" &&
	assert_grep "Test T-BW Passed -- pass=13 warn=0 fail=0" "$OUT/last" &&
	assert_grep "Test T-BR Passed -- pass=20 warn=0 fail=0" "$OUT/last" &&
	assert_grep "T-BWR #23 -- Failed NDMP4_TAPE_READ/NDMP9_NO_ERR Failed compare" "$OUT/last" &&
	# (ndmjob exits 1: a test failed.)  It compares a char (signed here)
	# with (i - 4) & 0xff: every byte
	# of 0x80 and above differs for it, although it is the byte written
	log=$(ls -t $(grep -l "Opening tape drive $TAPES/tt " /var/log/amanda/client/ndmjob.*.debug) | head -1) &&
	assert_grep "ndmjob: DATA 0: 0xfc => 0xfffffffc$" "$log" &&
	! grep "ndmjob: DATA [0-9]*: " "$log" | grep -v ": 0x\([89a-f][0-9a-f]\) => 0xffffff\1$" | grep -q . &&
	# and the tape holds exactly those 1024 bytes
	python3 -c "import sys; d=open(sys.argv[1],\"rb\").read(); sys.exit(d != bytes((i - 4) & 255 for i in range(1024)))" "$TAPES/tt"
'

test_expect_success 'the rest of the tape series (T-WRITE, T-READ, T-MTIO: 9 files of 1 to 100 records, positions, EOF and EOM, FSF/FSR/BSR with residuals) passes on a file tape' '
	: >"$TAPES/series" &&
	python3 "$CLIENT" tapeseries "$PORT" backup "$OUT/pw" series >"$OUT/series" &&
	assert_grep "^passed [0-9]* checks$" "$OUT/series" &&
	test "$(sed -n "s/^passed \([0-9]*\) checks$/\1/p" "$OUT/series")" -gt 3000 &&
	assert_eq $(( 512 + 100 * 1024 + 512 + 100 * 139 + 512 + 99 * 10240 + 512 + 3 * 32768 + 512 )) \
		"$(stat -c %s "$TAPES/series")"
'

test_expect_success 'a file tape keeps records and filemarks: reads stop at each (before a filemark until FSF crosses it), FSR/BSR/FSF/BSF move over them, the data is the records in a row' '
	: >"$TAPES/rec" &&
	python3 "$CLIENT" tape "$PORT" backup "$OUT/pw" "$TAPES/rec" >"$OUT/tape" &&
	cat >"$OUT/tape.want" <<-\EOF &&
	open 0
	write 0 3000
	write 0 100
	eof 0 0
	write 0 50
	rew 0 0
	fsr 0 3
	bsr 0 0
	read 0 100
	read 12 0
	read 12 0
	fsf 0 0
	read 0 50
	read 13 0
	read 13 0
	bsf 0 1
	fsf 0 0
	read 0 10
	EOF
	assert_cmp "$OUT/tape.want" "$OUT/tape" &&
	assert_eq 3150 "$(stat -c %s "$TAPES/rec")" &&
	assert_eq 0 "$(tr -d xy <"$TAPES/rec" | wc -c)"
'

test_expect_success 'serve --tape-device takes character devices only; one that is no tape drive (/dev/null) is refused at TAPE_OPEN, and the log says why' '
	assert_fails "$SNAPFS" ndmp serve --tape-device "$TAPES" -f 2>"$OUT/edev" &&
	assert_grep "^snapfs ndmp: --tape-device $TAPES: not a character device" "$OUT/edev"
	( cd / && exec "$SNAPFS" ndmp serve --port 0 --listen 127.0.0.1 --tape-device /dev/null -f \
		>"$TEST_TMP/dev.out" 2>"$TEST_TMP/dev.log" </dev/null ) &
	dv=$! &&
	for _ in $(seq 200); do grep -q "listening on port" "$TEST_TMP/dev.out" && break; sleep 0.05; done &&
	python3 "$CLIENT" open "$(sed -n "s/.*listening on port //p" "$TEST_TMP/dev.out")" backup "$OUT/pw" /dev/null >"$OUT/devopen" &&
	kill $dv && wait_gone $dv 10 &&
	assert_eq "open 16" "$(cat "$OUT/devopen")" "NDMP_NO_DEVICE_ERR" &&
	assert_grep "tape ./dev/null. refused: not a tape drive" "$TEST_TMP/dev.log"
'

# A tape drive: this machine's, if it has one (scsi_debug ptype=1 emulates
# one where the kernel has the module).
NST=$(ls /dev/nst[0-9]* 2>/dev/null | head -1)
if [ -c "$NST" ]; then
	test_set_prereq TAPEDRIVE
else
	say "# skipping the tape drive test: no /dev/nst* here (and no kernel modules for scsi_debug to emulate one)"
fi

test_expect_success TAPEDRIVE 'on a tape drive (--tape-device): the tape series passes, and a backup through the mover restores equal to the source' '
	( cd / && exec "$SNAPFS" ndmp serve --port 0 --listen 127.0.0.1 --tape-device "$NST" -f \
		>"$TEST_TMP/drv.out" 2>"$TEST_TMP/drv.log" </dev/null ) &
	drv=$! &&
	for _ in $(seq 200); do grep -q "listening on port" "$TEST_TMP/drv.out" && break; sleep 0.05; done &&
	dport=$(sed -n "s/.*listening on port //p" "$TEST_TMP/drv.out") &&
	python3 "$CLIENT" tapeseries "$dport" backup "$OUT/pw" "$NST" >"$OUT/drvseries" &&
	assert_grep "^passed [0-9]* checks$" "$OUT/drvseries" &&
	dma -c -D "127.0.0.1:$dport/4m,backup,$PW" -B dump -f "$NST" -C "$MNT" -E UPDATE=n &&
	mkdir "$MNT2/drive" &&
	dma -x -D "127.0.0.1:$dport/4m,backup,$PW" -B dump -f "$NST" -C "$MNT2/drive" &&
	kill $drv && wait_gone $drv 10 &&
	listing "$MNT" >"$OUT/a" && listing "$MNT2/drive" >"$OUT/b" &&
	assert_cmp "$OUT/a" "$OUT/b"
'

test_expect_success 'a level 0 backup through the server mover onto a file tape ends OKAY, with file history' '
	: >"$TAPES/t0" &&
	dma -c -D "$(agent backup "$PW")" -B dump -f "$TAPES/t0" -C "$MNT" \
		-E LEVEL=0 -I "$OUT/index0" &&
	assert_grep "Operation ended OKAY" "$OUT/last" &&
	test -s "$TAPES/t0" &&
	assert_grep "backup done: [0-9]* bytes" "$TEST_TMP/server.log"
'

test_expect_success 'the tape is a dump that Debian restore -t lists, every name' '
	restore -t -f "$TAPES/t0" >"$OUT/t0" 2>&1 &&
	assert_grep "^Level 0 dump of / on " "$OUT/t0" &&
	sed -n "s/^ *[0-9][0-9]*	//p" "$OUT/t0" | sort >"$OUT/names" &&
	(cd "$MNT" && find . -path ./.snapshot -prune -o -print | sort) >"$OUT/want" &&
	assert_cmp "$OUT/want" "$OUT/names"
'

test_expect_success 'the file history reached the index: every directory entry, and every inode with its position' '
	assert_grep "^DHd 2 d1 UNIX [0-9]" "$OUT/index0" &&
	assert_grep "^DHd 2 hardlink UNIX [0-9]" "$OUT/index0" &&
	assert_grep "^DHd [0-9]* spec UNIX [0-9]" "$OUT/index0" &&
	assert_eq "$(sed -n "s/^ *\([0-9]*\)	.*/\1/p" "$OUT/t0" | sort -un | wc -l)" \
		"$(grep -c "^DHn [0-9]* UNIX .*@[1-9][0-9]*$" "$OUT/index0")" "a node with its position per inode"
'

test_expect_success 'ndmjob -t lists the tape (DATA_START_RECOVER_FILEHIST): the same history as the backup gave' '
	dma -t -D "$(agent backup "$PW")" -B dump -f "$TAPES/t0" -I "$OUT/toc0" &&
	grep "^DH[dn] " "$OUT/index0" | sort >"$OUT/h.backup" &&
	grep "^DH[dn] " "$OUT/toc0" | sort >"$OUT/h.toc" &&
	test -s "$OUT/h.toc" &&
	assert_cmp "$OUT/h.backup" "$OUT/h.toc" &&
	assert_grep "file history done: [0-9]* bytes" "$TEST_TMP/server.log"
'

test_expect_success 'the backup snapshot is gone and the dump date is recorded' '
	"$SNAPFS" snapshot list "$MNT" >"$OUT/snaps" &&
	! grep -q snapshot_for_backup "$OUT/snaps" &&
	"$SNAPFS" dump dates "$MNT" >"$OUT/dates" &&
	assert_grep "^/  *0  " "$OUT/dates"
'

test_expect_success 'a full restore through NDMP gives back the source attribute by attribute' '
	mkdir "$MNT2/full" &&
	dma -x -D "$(agent backup "$PW")" -B dump -f "$TAPES/t0" -C "$MNT2/full" &&
	assert_grep "recover into $MNT2/full started" "$TEST_TMP/server.log" &&
	assert_grep "recover done" "$TEST_TMP/server.log" &&
	listing "$MNT" >"$OUT/a" &&
	listing "$MNT2/full" >"$OUT/b" &&
	assert_cmp "$OUT/a" "$OUT/b"
'

test_expect_success 'a single-file restore through NDMP brings back that file alone, whole' '
	mkdir "$MNT2/one" &&
	dma -x -D "$(agent backup "$PW")" -B dump -f "$TAPES/t0" -C "$MNT2/one" d1/f &&
	cmp "$MNT/d1/f" "$MNT2/one/d1/f" &&
	assert_eq bar "$(getfattr --only-values -n user.foo "$MNT2/one/d1/f")" &&
	assert_missing "$MNT2/one/big" &&
	assert_missing "$MNT2/one/eng"
'

test_expect_success 'with the index (-J), a single file is recovered by position (DAR): the head and that file read, not the whole tape' '
	mkdir "$MNT2/dar" &&
	dma -x -D "$(agent backup "$PW")" -B dump -f "$TAPES/t0" -C "$MNT2/dar" \
		-J "$OUT/index0" d1/f &&
	assert_grep "read by position (direct access)" "$TEST_TMP/server.log" &&
	cmp "$MNT/d1/f" "$MNT2/dar/d1/f" &&
	assert_eq bar "$(getfattr --only-values -n user.foo "$MNT2/dar/d1/f")" &&
	assert_missing "$MNT2/dar/big" &&
	read=$(sed -n "s/.*recover done: \([0-9]*\) bytes.*/\1/p" "$TEST_TMP/server.log" | tail -1) &&
	test "$read" -gt 0 && test "$read" -lt $(( $(stat -c %s "$TAPES/t0") / 2 ))
'

test_expect_success 'a file recovered under another name (NEW=OLD) lands there, whole' '
	mkdir -p "$MNT2/ren" &&
	dma -x -D "$(agent backup "$PW")" -B dump -f "$TAPES/t0" -C "$MNT2/ren" "spec.old=eng/spec" &&
	cmp "$MNT/eng/spec" "$MNT2/ren/spec.old" &&
	assert_missing "$MNT2/ren/eng"
'

test_expect_success 'a recover that the restore refuses fails at the DMA with the restore message, per name' '
	! dma -x -D "$(agent backup "$PW")" -B dump -f "$TAPES/t0" -C "$MNT2/missing" d1/f &&
	assert_grep "snapfs restore: $MNT2/missing: no such directory" "$OUT/last" &&
	assert_grep "DLF .*d1/f" "$OUT/last" &&
	assert_missing "$MNT2/missing"
'

test_expect_success 'SNAPSHOT=NAME backs up that snapshot (none is taken), and leaves it unheld' '
	"$SNAPFS" snapshot create "$MNT" before &&
	echo after >"$MNT/later" &&
	: >"$TAPES/snap" &&
	dma -c -D "$(agent backup "$PW")" -B dump -f "$TAPES/snap" -C "$MNT" -E SNAPSHOT=before -E UPDATE=n &&
	restore -t -f "$TAPES/snap" >"$OUT/tsnap" 2>&1 &&
	grep -q "	./d1/f$" "$OUT/tsnap" && ! grep -q "	./later$" "$OUT/tsnap" &&
	assert_eq "" "$("$SNAPFS" snapshot holds "$MNT" before)" &&
	! "$SNAPFS" snapshot list "$MNT" | grep -q snapshot_for_backup &&
	"$SNAPFS" snapshot delete "$MNT" before && rm "$MNT/later"
'

test_expect_success 'a level 1 after changes carries the changes only, and restores on top of the level 0' '
	echo changed >d1/f && echo new >eng/new && rm fifo &&
	: >"$TAPES/t1" &&
	dma -c -D "$(agent backup "$PW")" -B dump -f "$TAPES/t1" -C "$MNT" -E LEVEL=1 &&
	restore -t -f "$TAPES/t1" >"$OUT/t1" 2>&1 &&
	assert_grep "^Level 1 dump of / on " "$OUT/t1" &&
	assert_grep "	./eng/new$" "$OUT/t1" &&
	! grep -q "	./big$" "$OUT/t1" &&
	dma -x -D "$(agent backup "$PW")" -B dump -f "$TAPES/t1" -C "$MNT2/full" &&
	listing "$MNT" >"$OUT/a" &&
	listing "$MNT2/full" >"$OUT/b" &&
	assert_cmp "$OUT/a" "$OUT/b"
'

test_expect_success 'a three-way backup of a qtree: the data service connects over TCP to a remote mover (ndmjob tape-tcp), the stream is a dump; UPDATE=n records no date' '
	rm -f "$OUT/sinkport"
	python3 "$CLIENT" sink "$OUT/sinkport" "$OUT/threeway" &
	for _ in $(seq 200); do test -s "$OUT/sinkport" && break; sleep 0.05; done &&
	dma -c -D "$(agent backup "$PW")" -B dump -f unused -C "$MNT/eng" \
		-E UPDATE=n -o tape-tcp=127.0.0.1:$(cat "$OUT/sinkport") &&
	wait &&
	restore -t -f "$OUT/threeway" >"$OUT/t3" 2>&1 &&
	assert_grep "	./spec$" "$OUT/t3" &&
	! grep -q "	./big$" "$OUT/t3" &&
	"$SNAPFS" dump dates "$MNT" >"$OUT/dates" &&
	! grep -q "^/eng " "$OUT/dates"
'

test_expect_success 'BASE_DATE=0 is a full backup that hands the DMA its DUMP_DATE token (GET_ENV, in its index)' '
	: >"$TAPES/tok0" &&
	dma -c -D "$(agent backup "$PW")" -B dump -f "$TAPES/tok0" -C "$MNT" \
		-E BASE_DATE=0 -E UPDATE=n -I "$OUT/itok0" &&
	assert_grep "^DE DUMP_DATE=[0-9]*-[0-9]*$" "$OUT/itok0" &&
	restore -t -f "$TAPES/tok0" >"$OUT/ttok0" 2>&1 &&
	assert_grep "^Level 0 dump of / on " "$OUT/ttok0" &&
	assert_grep "	./big$" "$OUT/ttok0"
'

test_expect_success 'BASE_DATE=that token backs up only what changed since it (not since the dump dates), and restores on top of the full' '
	tok=$(sed -n "s/^DE DUMP_DATE=//p" "$OUT/itok0") &&
	echo token >d1/f && echo added >eng/added &&
	: >"$TAPES/tok1" &&
	dma -c -D "$(agent backup "$PW")" -B dump -f "$TAPES/tok1" -C "$MNT" \
		-E BASE_DATE="$tok" -E UPDATE=n -I "$OUT/itok1" &&
	assert_grep "^DE DUMP_DATE=[0-9]*-[0-9]*$" "$OUT/itok1" &&
	! grep -q "^DE DUMP_DATE=$tok$" "$OUT/itok1" &&
	restore -t -f "$TAPES/tok1" >"$OUT/ttok1" 2>&1 &&
	assert_grep "^Level 1 dump of / on " "$OUT/ttok1" &&
	assert_grep "	./eng/added$" "$OUT/ttok1" &&
	assert_grep "	./d1/f$" "$OUT/ttok1" &&
	! grep -q "	./big$" "$OUT/ttok1" &&
	! grep -q "	./eng/new$" "$OUT/ttok1" &&
	mkdir "$MNT2/tok" &&
	dma -x -D "$(agent backup "$PW")" -B dump -f "$TAPES/tok0" -C "$MNT2/tok" &&
	dma -x -D "$(agent backup "$PW")" -B dump -f "$TAPES/tok1" -C "$MNT2/tok" &&
	listing "$MNT" >"$OUT/a" &&
	listing "$MNT2/tok" >"$OUT/b" &&
	assert_cmp "$OUT/a" "$OUT/b"
'

test_expect_success 'EXCLUDE (ndmjob -e, several, wildcards) leaves those files and directories off the tape; a restore has the rest, whole' '
	echo junk >d1/junk.tmp && echo keep >d1/keep.txt &&
	: >"$TAPES/excl" &&
	dma -c -D "$(agent backup "$PW")" -B dump -f "$TAPES/excl" -C "$MNT" \
		-e "*.tmp" -e eng -E UPDATE=n &&
	restore -t -f "$TAPES/excl" >"$OUT/texcl" 2>&1 &&
	! grep -q "junk.tmp\|	./eng" "$OUT/texcl" &&
	assert_grep "	./d1/keep.txt$" "$OUT/texcl" &&
	mkdir "$MNT2/excl" &&
	dma -x -D "$(agent backup "$PW")" -B dump -f "$TAPES/excl" -C "$MNT2/excl" &&
	assert_missing "$MNT2/excl/eng" &&
	assert_missing "$MNT2/excl/d1/junk.tmp" &&
	cmp "$MNT/big" "$MNT2/excl/big" &&
	listing "$MNT/d1" --skip junk.tmp >"$OUT/a" &&
	listing "$MNT2/excl/d1" >"$OUT/b" &&
	assert_cmp "$OUT/a" "$OUT/b" &&
	rm d1/junk.tmp d1/keep.txt
'

test_expect_success 'a BASE_DATE that is no token, a token with LEVEL=0, and an EXCLUDE path are refused with the reason; nothing is dumped' '
	: >"$TAPES/bad" &&
	! dma -c -D "$(agent backup "$PW")" -B dump -f "$TAPES/bad" -C "$MNT" -E BASE_DATE=yesterday &&
	assert_grep "BASE_DATE: give 0, -1 or the DUMP_DATE of an earlier backup" "$OUT/last" &&
	! dma -c -D "$(agent backup "$PW")" -B dump -f "$TAPES/bad" -C "$MNT" -E BASE_DATE=12-1 -E LEVEL=0 &&
	assert_grep "BASE_DATE: a token makes an incremental; LEVEL 0 is a full backup" "$OUT/last" &&
	! dma -c -D "$(agent backup "$PW")" -B dump -f "$TAPES/bad" -C "$MNT" -e d1/f &&
	assert_grep "EXCLUDE: names are matched, not paths" "$OUT/last" &&
	! test -s "$TAPES/bad" &&
	no_backup_left
'

test_expect_success 'past --max-sessions a connection is told it is refused; the others stay served' '
	python3 "$CLIENT" greet 127.0.0.1 "$PORT" 8 >"$OUT/greet" &&
	assert_eq "refused 4 too many sessions" "$(cat "$OUT/greet")" &&
	assert_grep "refused: 8 sessions already (--max-sessions)" "$TEST_TMP/server.log" &&
	# once the held sessions have ended, a connection is served again
	for _ in $(seq 100); do
		python3 "$CLIENT" greet 127.0.0.1 "$PORT" >"$OUT/greet" &&
		grep -q "^connected" "$OUT/greet" && break
		sleep 0.1
	done &&
	assert_eq "connected 4 snapfs NDMP server" "$(cat "$OUT/greet")"
'

test_expect_success 'with --allow-text, text authentication is offered and works; MD5 still does' '
	( cd / && exec "$SNAPFS" ndmp serve --port 0 --listen 127.0.0.1 --allow-text -f \
		>"$TEST_TMP/text.out" 2>"$TEST_TMP/text.log" </dev/null ) &
	tx=$! &&
	for _ in $(seq 200); do grep -q "listening on port" "$TEST_TMP/text.out" && break; sleep 0.05; done &&
	txport=$(sed -n "s/.*listening on port //p" "$TEST_TMP/text.out") &&
	dma -q -D "127.0.0.1:$txport/4t,backup,$PW" &&
	cp "$OUT/last" "$OUT/qtext" &&
	dma -q -D "127.0.0.1:$txport/4m,backup,$PW" &&
	kill $tx && wait_gone $tx 10 &&
	assert_grep "NDMP4_AUTH_MD5 NDMP4_AUTH_TEXT" "$OUT/qtext" &&
	assert_grep "user .backup. authenticated (text)" "$TEST_TMP/text.log" &&
	assert_grep "user .backup. authenticated (md5)" "$TEST_TMP/text.log" &&
	! grep -qF "$PW" "$TEST_TMP/text.log"
'

test_expect_success 'the server listens on IPv6 too' '
	( cd / && exec "$SNAPFS" ndmp serve --port 0 --listen ::1 -f \
		>"$TEST_TMP/v6.out" 2>"$TEST_TMP/v6.log" </dev/null ) &
	v6=$! &&
	for _ in $(seq 200); do grep -q "listening on port" "$TEST_TMP/v6.out" && break; sleep 0.05; done &&
	python3 "$CLIENT" greet ::1 "$(sed -n "s/.*listening on port //p" "$TEST_TMP/v6.out")" >"$OUT/greet6" &&
	kill $v6 && wait_gone $v6 10 &&
	assert_eq "connected 4 snapfs NDMP server" "$(cat "$OUT/greet6")" &&
	assert_grep "::1 port [0-9]*: session started" "$TEST_TMP/v6.log"
'

test_expect_success 'three-way with ndmjob'"'"'s own tape agent (-T .): our data service connects over TCP to the DMA'"'"'s mover, backs up and restores the volume' '
	touch "$OUT/simtape" &&
	# the whole volume: a backup that halts before ndmjob starts watching
	# it costs ndmjob a 30 s wait for a notice it already had
	dma -c -T . -D "$(agent backup "$PW")" -B dump -f "$OUT/simtape" -C "$MNT" -E UPDATE=n &&
	assert_grep "Operation ended OKAY" "$OUT/last" &&
	mkdir "$MNT2/three" &&
	dma -x -T . -D "$(agent backup "$PW")" -B dump -f "$OUT/simtape" -C "$MNT2/three" &&
	listing "$MNT" >"$OUT/a" &&
	listing "$MNT2/three" >"$OUT/b" &&
	assert_cmp "$OUT/a" "$OUT/b"
'

test_expect_success 'swap-connect (DATA_LISTEN, MOVER_CONNECT, both LOCAL): the backup is the same dump' '
	: >"$TAPES/swap" &&
	dma -c -o swap-connect -D "$(agent backup "$PW")" -B dump -f "$TAPES/swap" -C "$MNT/eng" -E UPDATE=n &&
	restore -t -f "$TAPES/swap" >"$OUT/tswap" 2>&1 &&
	assert_grep "	./spec$" "$OUT/tswap" && assert_grep "	./new$" "$OUT/tswap"
'

test_expect_success 'a malformed message is answered XDR_DECODE_ERR, the session goes on; an absurd length closes it' '
	python3 "$CLIENT" malformed "$PORT" backup "$OUT/pw" >"$OUT/mal" &&
	assert_grep "^reply error 18$" "$OUT/mal" &&
	assert_grep "^answering " "$OUT/mal" &&
	assert_grep "^closed$" "$OUT/mal" &&
	assert_grep "does not decode; answered XDR_DECODE_ERR" "$TEST_TMP/server.log" &&
	assert_grep "a message over [0-9]* bytes; closing" "$TEST_TMP/server.log" &&
	dma -q -D "$(agent backup "$PW")" &&
	pid_running "$SERVER_PID"
'

test_expect_success 'a DMA that disconnects mid-backup leaves no snapshot, hold or dump context' '
	head -c 24000000 /dev/urandom >bulk &&
	python3 "$CLIENT" hangup "$PORT" backup "$OUT/pw" "$MNT" >"$OUT/hang" &&
	assert_grep "^active [1-9]" "$OUT/hang" &&
	# the server sees the DMA gone (or its data connection closed) first
	for _ in $(seq 600); do
		grep -q "backup \(aborted\|failed\)" "$TEST_TMP/server.log" && break
		sleep 0.05
	done &&
	assert_grep "backup \(aborted\|failed\): [1-9][0-9]* bytes" "$TEST_TMP/server.log" &&
	assert_grep "the stopped dump.s context [0-9]* of $MNT was deleted with its snapshot" "$TEST_TMP/server.log" &&
	no_backup_left &&
	rm bulk
'

test_expect_success 'bad arguments get one message each and change nothing' '
	assert_fails "$SNAPFS" ndmp serve --port 70000 2>"$OUT/e1" &&
	assert_grep "^snapfs ndmp: --port .70000.: give 0 to 65535" "$OUT/e1" &&
	assert_fails "$SNAPFS" ndmp serve --tape-dir "$TEST_TMP/none" 2>"$OUT/e2" &&
	assert_grep "tape-dir $TEST_TMP/none: not a directory" "$OUT/e2" &&
	assert_fails "$SNAPFS" ndmp serve --port "$PORT" --listen 127.0.0.1 2>"$OUT/e3" &&
	assert_grep "^snapfs ndmp: cannot listen: 127.0.0.1 port $PORT: Address already in use" "$OUT/e3" &&
	cp "$CONF/ndmp.users" "$OUT/users.before" &&
	assert_fails "$SNAPFS" ndmp password "bad/user" 2>"$OUT/e4" &&
	assert_grep "a user name is 1 to 64 of" "$OUT/e4" &&
	assert_cmp "$OUT/users.before" "$CONF/ndmp.users"
'

test_expect_success 'without -f the server detaches once it listens, and logs to the config dir' '
	"$SNAPFS" ndmp serve --port 0 --listen 127.0.0.1 >"$OUT/bg" &&
	bg=$(sed -n "s/.*(process \([0-9]*\), log .*/\1/p" "$OUT/bg") &&
	bgport=$(sed -n "s/.*serving on port \([0-9]*\) .*/\1/p" "$OUT/bg") &&
	pid_running "$bg" &&
	python3 "$CLIENT" greet 127.0.0.1 "$bgport" >"$OUT/greetbg" &&
	kill "$bg" && wait_gone "$bg" 10 &&
	assert_eq "connected 4 snapfs NDMP server" "$(cat "$OUT/greetbg")" &&
	assert_grep "serving NDMPv4 on port $bgport" "$CONF/ndmp.log" &&
	assert_eq 600 "$(stat -c %a "$CONF/ndmp.log")"
'

test_expect_success 'DATA_ABORT of a running backup halts it ABORTED, DATA_STOP makes it idle, and nothing is left behind' '
	head -c 24000000 /dev/urandom >bulk &&
	python3 "$CLIENT" abort "$PORT" backup "$OUT/pw" "$MNT" >"$OUT/abort" &&
	assert_grep "^active [1-9]" "$OUT/abort" &&
	assert_grep "^halted 2$" "$OUT/abort" &&
	assert_grep "^stopped 0$" "$OUT/abort" &&
	assert_grep "backup aborted: [1-9][0-9]* bytes" "$TEST_TMP/server.log" &&
	no_backup_left &&
	rm bulk
'

# context_of LOG: the context id the server kept for the last stopped
# backup ("the stopped backup is restartable: context N of ...")
context_of() {
	sed -n "s/.*the stopped backup is restartable: context \([0-9]*\) .*/\1/p" "$1" | tail -1
}

test_expect_success 'a HIST=y backup whose DMA is killed in the files phase keeps its context (restartable, snapshot held), its restart point within what the tape holds' '
	mkdir -p many &&
	for i in $(seq 24); do head -c 4000000 /dev/urandom >many/f$i || return 1; done &&
	: >"$TAPES/r1" || return 1
	before=$(wc -l <"$TEST_TMP/server.log")
	(cd "$TEST_TMP" && exec "$NDMJOB" -v -c -D "$(agent backup "$PW")" -B dump \
		-f "$TAPES/r1" -C "$MNT" -E HIST=y -I "$OUT/ridx1" >"$OUT/r1.out" 2>&1) &
	job=$!
	# once the tape holds 2 MB of the 96 MB (the files phase), the dump
	# (a child of the server) is paused so that the backup cannot end
	# before the DMA is killed; it goes on (and sees its SIGTERM) once
	# the server has seen the DMA gone
	child=
	for _ in $(seq 3000); do
		child=$(tail -n +$((before + 1)) "$TEST_TMP/server.log" |
			sed -n "s/.*backup of .* started: .* (process \([0-9]*\))$/\1/p")
		test -n "$child" && break
		pid_running "$job" || break
		sleep 0.01
	done
	while test -n "$child" && test "$(stat -c %s "$TAPES/r1")" -lt 2000000 &&
		pid_running "$job"; do :; done
	test -n "$child" && kill -STOP "$child"
	kill -KILL "$job" || true
	wait "$job" 2>/dev/null || true
	for _ in $(seq 600); do
		grep -q "the DMA left during the backup" "$TEST_TMP/server.log" && break
		sleep 0.05
	done
	test -n "$child" && kill -CONT "$child"
	for _ in $(seq 600); do
		tail -n +$((before + 1)) "$TEST_TMP/server.log" >"$OUT/rlog"
		grep -q "backup \(aborted\|failed\|done\)" "$OUT/rlog" && break
		sleep 0.05
	done
	assert_grep "backup aborted: [1-9][0-9]* bytes" "$OUT/rlog" &&
	id=$(context_of "$OUT/rlog") && test -n "$id" &&
	echo "$id" >"$OUT/rid" &&
	"$SNAPFS" dump contexts "$MNT" >"$OUT/ctx" &&
	assert_grep "^$id  *restartable  *0  */  *snapshot_for_backup\.[0-9]* " "$OUT/ctx" &&
	"$SNAPFS" snapshot list "$MNT" >"$OUT/snaps" &&
	assert_grep snapshot_for_backup "$OUT/snaps" &&
	ino=$(sed -n "s/.*context $id of .*, from inode \([0-9]*\) (the tape holds \([0-9]*\) bytes.*/\1 \2/p" "$OUT/rlog") &&
	set -- $ino && test -n "$2" && echo "$1" >"$OUT/rino" &&
	test "$2" -le "$(stat -c %s "$TAPES/r1")" &&
	# the first file from the restart point on (the point may name an
	# inode the dump has no file of) begins on the tape, below what the
	# tape holds (its history, read back from the tape with ndmjob -t):
	# every file before it is whole on the tape
	{ dma -t -D "$(agent backup "$PW")" -B dump -f "$TAPES/r1" -I "$OUT/rtoc1" || true; } &&
	pos=$(awk -v from="$1" '"'"'$1 == "DHn" && $2 >= from && $4 == "f-" { sub(/.*@/, "", $NF); print $NF; exit }'"'"' "$OUT/rtoc1") &&
	# (ndmjob may read back less history from a tape cut in the middle;
	# the restore of both parts below shows that no file is skipped)
	{ test -z "$pos" || test "$pos" -lt "$2"; }
'

test_expect_success 'a restart with an unknown or malformed context id is refused with the reason; the kept context, its snapshot and the volume are unchanged' '
	id=$(cat "$OUT/rid") &&
	"$SNAPFS" dump contexts "$MNT" >"$OUT/ctx.before" &&
	"$SNAPFS" snapshot list "$MNT" >"$OUT/snaps.before" &&
	: >"$TAPES/rbad" &&
	! dma -c -D "$(agent backup "$PW")" -B dump -f "$TAPES/rbad" -C "$MNT" \
		-E HIST=y -E RESTART_CONTEXT=4000 &&
	assert_grep "no dump context 4000 (see snapfs dump contexts)" "$OUT/last" &&
	! dma -c -D "$(agent backup "$PW")" -B dump -f "$TAPES/rbad" -C "$MNT" \
		-E RESTART_CONTEXT=x1 &&
	assert_grep "RESTART_CONTEXT: give the id of a stopped backup" "$OUT/last" &&
	! dma -c -D "$(agent backup "$PW")" -B dump -f "$TAPES/rbad" -C "$MNT" \
		-E RESTART_CONTEXT="$id" -E LEVEL=1 &&
	assert_grep "RESTART_CONTEXT continues a backup: its LEVEL" "$OUT/last" &&
	"$SNAPFS" dump contexts "$MNT" >"$OUT/ctx.after" &&
	"$SNAPFS" snapshot list "$MNT" >"$OUT/snaps.after" &&
	assert_cmp "$OUT/ctx.before" "$OUT/ctx.after" &&
	assert_cmp "$OUT/snaps.before" "$OUT/snaps.after"
'

test_expect_success 'RESTART_CONTEXT=ID continues the backup onto a new tape and ends it: no snapshot, hold or context left' '
	id=$(cat "$OUT/rid") &&
	: >"$TAPES/r2" &&
	dma -c -D "$(agent backup "$PW")" -B dump -f "$TAPES/r2" -C "$MNT" \
		-E HIST=y -E RESTART_CONTEXT="$id" -I "$OUT/ridx2" &&
	assert_grep "Operation ended OKAY" "$OUT/last" &&
	assert_grep "backup of $MNT restarted from context $id" "$TEST_TMP/server.log" &&
	no_backup_left
'

test_expect_success 'the two tape parts, in order, restore as the whole tree (snapfs restore -r), attribute by attribute' '
	mkdir "$MNT2/rparts" &&
	"$SNAPFS" restore -r -f "$TAPES/r1" -f "$TAPES/r2" --into "$MNT2/rparts" 2>"$OUT/rparts.err" &&
	listing "$MNT" >"$OUT/a" &&
	listing "$MNT2/rparts" >"$OUT/b" &&
	assert_cmp "$OUT/a" "$OUT/b"
'

test_expect_success 'Debian restore reads part 1 as a dump: every name listed, and the files before the restart point restored whole' '
	restore -t -f "$TAPES/r1" </dev/null >"$OUT/rt1" 2>&1 &&
	sed -n "s/^ *[0-9][0-9]*	//p" "$OUT/rt1" | sort >"$OUT/names1" &&
	(cd "$MNT" && find . -path ./.snapshot -prune -o -print | sort) >"$OUT/want1" &&
	assert_cmp "$OUT/want1" "$OUT/names1" &&
	mkdir "$TEST_TMP/lr1" &&
	# at the end of part 1 restore asks for the next volume: none
	(cd "$TEST_TMP/lr1" && echo none | restore -r -y -f "$TAPES/r1" >"$OUT/lr1" 2>&1) &&
	rino=$(cat "$OUT/rino") && n=0 &&
	for name in $(awk -v r="$rino" "\$1 < r {print \$2}" "$OUT/rt1"); do
		test -f "$MNT/$name" && ! test -L "$MNT/$name" || continue
		cmp "$MNT/$name" "$TEST_TMP/lr1/$name" || return 1
		n=$((n + 1))
	done &&
	test "$n" -gt 0
'

test_expect_success 'DATA_ABORT of a HIST=y backup through the server mover: GET_ENV gives RESTART_CONTEXT, RESTART_INODE and RESTART_OFFSET; contexts delete releases its snapshot' '
	: >"$TAPES/r3" &&
	python3 "$CLIENT" restartable "$PORT" backup "$OUT/pw" "$MNT" "$TAPES/r3" >"$OUT/r3" &&
	assert_grep "^halted 2$" "$OUT/r3" &&
	id=$(sed -n "s/^RESTART_CONTEXT=//p" "$OUT/r3") && test -n "$id" &&
	ino=$(sed -n "s/^RESTART_INODE=//p" "$OUT/r3") && test "$ino" -gt 2 &&
	off=$(sed -n "s/^RESTART_OFFSET=//p" "$OUT/r3") && test "$off" -gt 8000000 &&
	test "$off" -le "$(stat -c %s "$TAPES/r3")" &&
	assert_grep "context $id of $MNT, from inode $ino (the tape holds $off bytes" "$TEST_TMP/server.log" &&
	"$SNAPFS" dump contexts "$MNT" >"$OUT/ctx" &&
	assert_grep "^$id  *restartable " "$OUT/ctx" &&
	"$SNAPFS" dump contexts delete "$MNT" "$id" >"$OUT/del" &&
	assert_grep "deleted dump context $id of $MNT (snapshot snapshot_for_backup\.[0-9]* deleted)" "$OUT/del" &&
	no_backup_left
'

test_expect_success 'a HIST=y backup to another host'"'"'s mover (three-way, TCP) that is aborted has its context deleted, and the log says why' '
	python3 "$CLIENT" abort "$PORT" backup "$OUT/pw" "$MNT" HIST=y >"$OUT/abort3" &&
	assert_grep "^halted 2$" "$OUT/abort3" &&
	assert_grep "context [0-9]* of $MNT was deleted with its snapshot (not restartable: the tape is another host.s (three-way)" "$TEST_TMP/server.log" &&
	no_backup_left
'

test_expect_success 'cleanup: the restart tests'"'"' files' '
	rm -r many
'

test_expect_success 'the server still serves, and stops on SIGTERM' '
	dma -q -D "$(agent backup "$PW")" &&
	kill "$SERVER_PID" && wait_gone "$SERVER_PID" 10
'

test_done
