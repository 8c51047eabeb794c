#!/bin/bash
# Samba over a snapfs volume, with the share `snapfs share smb` prints:
# smbd on loopback on a port of its own with a private configuration,
# state and user database; smbclient as the client.  Snapshots named as
# policies name them are Windows "Previous Versions" (one @GMT token each,
# and only those), read by token equal to the snapshot's file, directories
# too, read-only; a token of no snapshot is refused; DOS attributes set by
# the client land in user.DOSATTRIB and survive a dump and restore; writes
# land in the volume; the snapdir setting applies (hidden: versions work,
# .snapshot not listed; disabled: neither).  Bad input to `snapfs share`
# is refused with one message and prints nothing.
. "$(dirname "$0")/lib.sh"
. "$TEST_DIR/nas.sh"
nas_skip_unless "needs snapfs" "test_have_prereq SNAPFS"
nas_skip_unless "smbd with a user of its own database needs root" "test_have_prereq ROOT"
nas_skip_unless "samba, smbclient or attr missing (make deps installs them)" \
	"command -v smbd" "command -v smbclient" "command -v smbpasswd" \
	"command -v testparm" "command -v getfattr"
nas_skip_unless "Samba's shadow_copy2 module is missing (make deps installs samba-vfs-modules)" \
	'test -e "$(smbd -b | sed -n "s/^ *MODULESDIR: //p")/vfs/shadow_copy2.so"'
vol_create --size 1G

SMB=$TEST_TMP/smb
PASS=snapfs-test-pw
mkdir -p "$SMB"/lock "$SMB"/state "$SMB"/cache "$SMB"/pid "$SMB"/private "$SMB"/ncalrpc

# smb_conf: the private global section, then the share `snapfs share` prints
smb_conf() {
	cat <<-EOF
	[global]
		server role = standalone server
		interfaces = lo
		bind interfaces only = yes
		smb ports = $SMB_PORT
		disable netbios = yes
		server min protocol = SMB2
		lock directory = $SMB/lock
		state directory = $SMB/state
		cache directory = $SMB/cache
		pid directory = $SMB/pid
		private dir = $SMB/private
		ncalrpc dir = $SMB/ncalrpc
		passdb backend = tdbsam:$SMB/private/passdb.tdb
		log file = $SMB/smbd.log
		load printers = no
		printing = bsd
		printcap name = /dev/null
		disable spoolss = yes
	EOF
	cat "$SMB/share.conf"
}

# smbc COMMANDS: smbclient on the share as the test's user; its output
smbc() {
	smbclient -s "$SMB/smb.conf" -p "$SMB_PORT" "//127.0.0.1/${SHARE:-vol}" \
		-U "root%$PASS" -c "$1" 2>&1
}

# tokens PATH: the @GMT tokens allinfo lists for PATH, one a line, sorted
tokens() { smbc "allinfo \"$1\"" | grep -o '^@GMT-[0-9.-]*$' | sort; }

# dosattr PATH: the attribute bits in PATH's user.DOSATTRIB (hex), read
# from the volume (the xattr_DOSATTRIB blob of version 5: attrib at 12)
dosattr() {
	getfattr --only-values -n user.DOSATTRIB "$1" |
	python3 -c 'import sys; b = sys.stdin.buffer.read(); print("%x" % int.from_bytes(b[12:16], "little"))'
}

# smb_attrs PATH: the attributes smbclient's allinfo shows for PATH
smb_attrs() { smbc "allinfo \"$1\"" | sed -n 's/^attributes: \([A-Z]*\) .*/\1/p' | head -1; }

D1=daily.2026-12-01_0010 T1=@GMT-2026.12.01-00.10.00
H2=hourly.2026-12-02_1300 T2=@GMT-2026.12.02-13.00.00
W3=weekly.2026-11-29_0000 T3=@GMT-2026.11.29-00.00.00

test_expect_success '`snapfs share smb` prints a share that testparm reads: shadow_copy2 over .snapshot, DOS attributes in xattrs' '
	"$SNAPFS" share smb "$MNT" --name vol >"$SMB/share.conf" &&
	cat "$SMB/share.conf" &&
	mkdir -p d && "$SNAPFS" share smb "$MNT/d" --name sub >>"$SMB/share.conf" &&
	assert_grep "^\[vol\]$" "$SMB/share.conf" &&
	assert_grep "path = $MNT$" "$SMB/share.conf" &&
	assert_grep "vfs objects = shadow_copy2" "$SMB/share.conf" &&
	assert_grep "shadow:snapdir = .snapshot" "$SMB/share.conf" &&
	assert_grep "store dos attributes = yes" "$SMB/share.conf" &&
	SMB_PORT=$(free_port) && echo "$SMB_PORT" >"$SMB/port" &&
	smb_conf >"$SMB/smb.conf" &&
	testparm -s "$SMB/smb.conf" >"$SMB/testparm.out" 2>&1 &&
	assert_grep "shadow:format = .%Y-%m-%d_%H%M" "$SMB/testparm.out"
'
SMB_PORT=$(cat "$SMB/port" 2>/dev/null)

test_expect_success 'contrib/samba/snapfs-share.conf is the share `snapfs share smb` prints' '
	sed -e "/^#/d" -e "s|@SHARE@|vol|" -e "s|@PATH@|$MNT|" -e "s|@MOUNT@|$MNT|" \
		"$TEST_DIR/../../contrib/samba/snapfs-share.conf" >"$REF/template" &&
	"$SNAPFS" share smb "$MNT" --name vol | sed -e "/^[[:space:]]*#/d" >"$REF/printed" &&
	assert_cmp "$REF/template" "$REF/printed"
'

test_expect_success 'smbd serves the share on loopback, on a port of its own' '
	printf "%s\n%s\n" "$PASS" "$PASS" | smbpasswd -c "$SMB/smb.conf" -s -a root &&
	server_start smbd smbd -F --no-process-group -s "$SMB/smb.conf" &&
	wait_port "$SMB_PORT" "$SERVER_PID" &&
	smbc "ls" >"$SMB/ls" &&
	assert_grep "blocks of size" "$SMB/ls"
'

test_expect_success 'each snapshot named as a policy names it is one @GMT token, and only those' '
	mkdir -p d && echo v0 >d/f && echo only-in-w3 >d/gone &&
	"$SNAPFS" snapshot create "$MNT" "$W3" &&
	rm d/gone && echo v1 >d/f && mkdir d/sub && echo s >d/sub/s &&
	"$SNAPFS" snapshot create "$MNT" "$D1" &&
	echo v2 >d/f &&
	"$SNAPFS" snapshot create "$MNT" "$H2" &&
	echo v3 >d/f &&
	"$SNAPFS" snapshot create "$MNT" before-upgrade &&
	"$SNAPFS" snapshot create "$MNT" snapmirror.1.20261203.4 &&
	"$SNAPFS" snapshot create "$MNT" "x.y.2026-12-04_0000" &&
	printf "%s\n" "$T3" "$T1" "$T2" | sort >"$REF/want" &&
	tokens d/f >"$REF/got" &&
	assert_cmp "$REF/want" "$REF/got" &&
	tokens d >"$REF/got" &&
	assert_cmp "$REF/want" "$REF/got"
'

test_expect_success 'a snapshot a policy takes is the previous version of its scheduled time' '
	"$SNAPFS" policy create "$MNT" nightly --schedule daily@00:10 --keep 3 &&
	echo v3 >d/f &&
	# due at the first 00:10 after its creation; a later --now takes
	# the snapshot of the latest scheduled time (the test runs in UTC)
	"$SNAPFS" policy run "$MNT" --now "2030-01-01 00:10" &&
	assert_eq nightly.2030-01-01_0010 "$(ls .snapshot | grep ^nightly)" &&
	printf "%s\n" "$T3" "$T1" "$T2" @GMT-2030.01.01-00.10.00 | sort >"$REF/want" &&
	tokens d/f >"$REF/got" &&
	assert_cmp "$REF/want" "$REF/got" &&
	rm -f "$REF/got" && smbc "get @GMT-2030.01.01-00.10.00/d/f $REF/got" &&
	assert_eq v3 "$(cat "$REF/got")"
'

test_expect_success 'an old version read by its token equals the snapshot file' '
	for s in "$T1 $D1 v1" "$T2 $H2 v2" "$T3 $W3 v0"; do
		set -- $s &&
		rm -f "$REF/got" &&
		smbc "get $1/d/f $REF/got" &&
		assert_cmp "$MNT/.snapshot/$2/d/f" "$REF/got" &&
		assert_eq "$3" "$(cat "$REF/got")" || exit 1
	done &&
	smbc "get d/f $REF/live" && assert_eq v3 "$(cat "$REF/live")"
'

test_expect_success 'a directory'"'"'s previous version lists what the snapshot holds' '
	smbc "ls $T3/d/*" >"$REF/ls3" &&
	assert_grep " gone " "$REF/ls3" &&
	! grep -q " sub " "$REF/ls3" &&
	smbc "ls $T1/d/*" >"$REF/ls1" &&
	assert_grep " sub " "$REF/ls1" &&
	! grep -q " gone " "$REF/ls1" &&
	smbc "get $T1/d/sub/s $REF/s" && assert_eq s "$(cat "$REF/s")" &&
	smbc "ls $T3/d/gone" | grep -q " gone " &&
	! smbc "ls d/*" | grep -q " gone "
'

test_expect_success 'a previous version is read-only' '
	echo intruder >"$REF/up" &&
	smbc "put $REF/up $T1/d/f" >"$REF/out1" || : &&
	assert_grep "NT_STATUS_\(MEDIA_WRITE_PROTECTED\|ACCESS_DENIED\)" "$REF/out1" &&
	smbc "put $REF/up $T1/d/new" >"$REF/out2" || : &&
	assert_grep "NT_STATUS_" "$REF/out2" &&
	smbc "del $T1/d/f" >"$REF/out3" || : &&
	assert_grep "NT_STATUS_\(MEDIA_WRITE_PROTECTED\|ACCESS_DENIED\)" "$REF/out3" &&
	smbc "setmode $T1/d/f +h" >"$REF/out4" || : &&
	assert_grep "NT_STATUS_" "$REF/out4" &&
	assert_eq v1 "$(cat "$MNT/.snapshot/$D1/d/f")" &&
	assert_missing "$MNT/.snapshot/$D1/d/new"
'

test_expect_success 'a @GMT token of no snapshot is refused, and nothing is fetched' '
	rm -f "$REF/none" &&
	smbc "get @GMT-2026.12.03-13.00.00/d/f $REF/none" >"$REF/out" || : &&
	assert_grep "NT_STATUS_" "$REF/out" &&
	test ! -e "$REF/none" &&
	smbc "ls @GMT-2026.12.03-13.00.00/d/*" >"$REF/out" || : &&
	assert_grep "NT_STATUS_" "$REF/out" &&
	! grep -q " f " "$REF/out"
'

test_expect_success 'writes through the share land in the volume' '
	rand_file "$REF/big" 3000000 &&
	smbc "mkdir w; put $REF/big w/big; put $REF/up w/small; rename w/small w/renamed; mkdir w/gone; rmdir w/gone" &&
	assert_cmp "$REF/big" "$MNT/w/big" &&
	assert_cmp "$REF/up" "$MNT/w/renamed" &&
	assert_missing "$MNT/w/small" &&
	assert_missing "$MNT/w/gone" &&
	smbc "del w/renamed" && assert_missing "$MNT/w/renamed"
'

test_expect_success 'setmode +h +a +r +s round-trips through user.DOSATTRIB' '
	smbc "put $REF/up w/attrs" &&
	smbc "setmode w/attrs -a" &&
	mode=$(stat -c %a w/attrs) &&
	assert_eq "" "$(smb_attrs w/attrs)" &&
	assert_eq 0 "$(dosattr w/attrs)" &&
	# DOS attribute bits: R 1, H 2, S 4, A 0x20
	smbc "setmode w/attrs +h" && assert_eq H "$(smb_attrs w/attrs)" &&
	assert_eq 2 "$(dosattr w/attrs)" &&
	smbc "setmode w/attrs +a" && assert_eq HA "$(smb_attrs w/attrs)" &&
	assert_eq 22 "$(dosattr w/attrs)" &&
	smbc "setmode w/attrs +s" && assert_eq HSA "$(smb_attrs w/attrs)" &&
	assert_eq 26 "$(dosattr w/attrs)" &&
	smbc "setmode w/attrs +r" && assert_eq RHSA "$(smb_attrs w/attrs)" &&
	assert_eq 27 "$(dosattr w/attrs)" &&
	# on the volume they are an xattr only: the mode is as it was
	assert_stat w/attrs %a "$mode" &&
	smbc "setmode w/attrs -rs" && assert_eq HA "$(smb_attrs w/attrs)" &&
	assert_eq 22 "$(dosattr w/attrs)" &&
	smbc "setmode w/attrs +s" && assert_eq 26 "$(dosattr w/attrs)"
'

test_expect_success 'DOS attributes survive a dump and a restore' '
	"$SNAPFS" dump -0 -f "$TEST_TMP/dump0" "$MNT" >"$REF/dump.out" 2>&1 &&
	mkdir "$REF/restored" &&
	"$SNAPFS" restore -r -f "$TEST_TMP/dump0" --into "$REF/restored" >"$REF/restore.out" 2>&1 &&
	assert_eq 26 "$(dosattr "$REF/restored/w/attrs")" &&
	assert_cmp "$REF/up" "$REF/restored/w/attrs"
'

test_expect_success 'snapdir=hidden: Previous Versions work, .snapshot is not listed' '
	"$SNAPFS" set "$MNT" snapdir=hidden &&
	! smbc "ls" | grep -q "\.snapshot" &&
	tokens d/f >"$REF/got" && assert_cmp "$REF/want" "$REF/got" &&
	rm -f "$REF/got" && smbc "get $T2/d/f $REF/got" &&
	assert_eq v2 "$(cat "$REF/got")"
'

test_expect_success 'snapdir=disabled: no Previous Versions and no .snapshot' '
	"$SNAPFS" set "$MNT" snapdir=disabled &&
	! smbc "ls" | grep -q "\.snapshot" &&
	assert_eq "" "$(tokens d/f)" &&
	rm -f "$REF/got" &&
	smbc "get $T2/d/f $REF/got" >"$REF/out" || : &&
	assert_grep "NT_STATUS_" "$REF/out" && test ! -e "$REF/got" &&
	smbc "ls .snapshot/*" >"$REF/out" || : &&
	assert_grep "NT_STATUS_" "$REF/out"
'

test_expect_success 'snapdir=visible again: .snapshot listed (hidden to Windows as a dot file) and the versions back' '
	"$SNAPFS" set "$MNT" snapdir=visible &&
	smbc "ls" | grep -q "^  \.snapshot  *DH " &&
	tokens d/f >"$REF/got" && assert_cmp "$REF/want" "$REF/got"
'

# share_refused WHY ARGS...: `snapfs share ARGS` fails, one line on stderr
# containing WHY, nothing on stdout
share_refused() {
	local why=$1 rc=0
	shift
	"$SNAPFS" share "$@" >"$REF/share.out" 2>"$REF/share.err" || rc=$?
	[ "$rc" != 0 ] || { say "snapfs share $* succeeded" >&2; return 1; }
	assert_eq "" "$(cat "$REF/share.out")" "stdout of snapfs share $*" &&
	assert_one_line "$REF/share.err" &&
	assert_grep "$why" "$REF/share.err"
}

test_expect_success 'a share of what is not a mounted snapfs directory is refused with one message' '
	mkdir -p "$REF/plain" &&
	share_refused "not on a mounted snapfs volume" smb "$REF/plain" &&
	share_refused "not on a mounted snapfs volume" smb "$STORE" &&
	share_refused "not on a mounted snapfs volume" nfs / &&
	share_refused "No such file or directory" smb "$MNT/nowhere" &&
	share_refused "not a directory" smb "$MNT/d/f" &&
	share_refused "inside .snapshot" smb "$MNT/.snapshot/$D1" &&
	share_refused "inside .snapshot" smb "$MNT/d/.snapshot/$D1/sub" &&
	share_refused "not a share name" smb "$MNT" --name "a]b" &&
	share_refused "not a share name" smb "$MNT" --name "" &&
	share_refused "give smb or nfs" ftp "$MNT" &&
	share_refused "give the directory" smb &&
	share_refused "unknown option" smb "$MNT" --id 3 &&
	share_refused "not an export id" nfs "$MNT" --id 65536
'

test_expect_success 'a share of a directory inside the volume has the Previous Versions of its files' '
	assert_grep "path = $MNT/d$" "$SMB/share.conf" &&
	SHARE=sub tokens f >"$REF/got" && assert_cmp "$REF/want" "$REF/got" &&
	rm -f "$REF/got" && SHARE=sub smbc "get $T1/f $REF/got" &&
	assert_eq v1 "$(cat "$REF/got")"
'

test_expect_success 'the tokens are the names'"'"' times read as UTC, and every one opens, whatever smbd'"'"'s time zone' '
	server_stop smbd &&
	TZ=Asia/Kolkata server_start smbd smbd -F --no-process-group -s "$SMB/smb.conf" &&
	wait_port "$SMB_PORT" "$SERVER_PID" &&
	tokens d/f >"$REF/got" &&
	assert_cmp "$REF/want" "$REF/got" &&
	for s in "$T1 v1" "$T2 v2" "$T3 v0"; do
		set -- $s &&
		rm -f "$REF/got" && smbc "get $1/d/f $REF/got" &&
		assert_eq "$2" "$(cat "$REF/got")" || exit 1
	done
'

test_expect_success 'smbd stops, and whatever it forked with it' '
	pid=$(cat "$TEST_TMP/smbd.pid") && test -n "$pid" &&
	server_stop smbd &&
	! pgrep -s "$pid" >/dev/null
'

test_done
