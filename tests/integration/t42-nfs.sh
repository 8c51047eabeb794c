#!/bin/bash
# NFS-Ganesha (FSAL_VFS) re-exporting a snapfs volume with the EXPORT
# block `snapfs share nfs` prints: ganesha.nfsd on loopback on a port of
# its own, with a private configuration, log and recovery directory;
# libnfs-utils (nfs-ls, nfs-cat, nfs-cp) as the client.  Files read and
# written, .snapshot listed and an old version read; no ESTALE after the
# kernel evicted the inodes under the running server; the file handles a
# client holds are the same after the volume was remounted (and Ganesha
# restarted, as it holds the exported directory); the snapdir setting as
# NFS clients see it.  NFSv4 only: see the note printed below for v3.
. "$(dirname "$0")/lib.sh"
. "$TEST_DIR/nas.sh"
nas_skip_unless "needs snapfs" "test_have_prereq SNAPFS"
nas_skip_unless "NFS-Ganesha's FSAL_VFS opens files by handle, which needs root" \
	"test_have_prereq ROOT"
nas_skip_unless "nfs-ganesha, nfs-ganesha-vfs or libnfs-utils missing (make deps installs them)" \
	"command -v ganesha.nfsd" "ls /usr/lib/*/ganesha/libfsalvfs.so" \
	"command -v nfs-ls" "command -v nfs-cat" "command -v nfs-cp" \
	"python3 -c 'import ctypes; ctypes.CDLL(\"libnfs.so.13\")'"
say "# NFSv3 is not tested: NFS-Ganesha registers NFSv3 with rpcbind (a system service on port 111) when it starts and exits without one; NFSv4 needs no rpcbind"
test_lazy_prereq DROP_CACHES 'test -w /proc/sys/vm/drop_caches'
vol_create --size 1G

NFS=$TEST_TMP/nfs
mkdir -p "$NFS/recovery"
cp "$TEST_DIR/nfsclient.py" "$TEST_TMP/bin/nfsclient.py"
nfsclient() { timeout 60 python3 "$TEST_TMP/bin/nfsclient.py" "$@"; }

# ganesha_conf: a private core (loopback, our port, NFSv4 only, no grace
# period), then the export `snapfs share nfs` prints
ganesha_conf() {
	cat <<-EOF
	NFS_CORE_PARAM {
		Bind_addr = 127.0.0.1;
		NFS_Port = $NFS_PORT;
		Protocols = 4;
		Enable_UDP = false;
		Enable_NLM = false;
		Enable_RQUOTA = false;
	}
	NFSV4 {
		Graceless = true;
		RecoveryBackend = fs;
		RecoveryRoot = "$NFS/recovery";
		Only_Numeric_Owners = true;
	}
	EXPORT_DEFAULTS {
		Attr_Expiration_Time = 0;
	}
	LOG {
		Default_Log_Level = EVENT;
	}
	EOF
	cat "$NFS/export.conf"
}

ganesha_start() {
	server_start ganesha ganesha.nfsd -F -L "$NFS/ganesha.log" \
		-f "$NFS/ganesha.conf" -p "$NFS/ganesha.pid" &&
	wait_port "$NFS_PORT" "$SERVER_PID"
}

# url PATH: the libnfs URL of PATH in the export
url() { echo "nfs://127.0.0.1/vol/$1?version=4&nfsport=$NFS_PORT"; }
ncat() { timeout 60 nfs-cat "$(url "$1")"; }
nls() { timeout 60 nfs-ls "$(url "$1")" | awk '{ print $NF }' | sort; }

# evict: the kernel forgets every unused dentry and inode
evict() { sync && echo 2 >/proc/sys/vm/drop_caches; }

test_expect_success '`snapfs share nfs` prints an EXPORT that NFS-Ganesha serves on loopback' '
	"$SNAPFS" share nfs "$MNT" --name vol --id 1 >"$NFS/export.conf" &&
	cat "$NFS/export.conf" &&
	assert_grep "Path = \"$MNT\";" "$NFS/export.conf" &&
	assert_grep "Pseudo = \"/vol\";" "$NFS/export.conf" &&
	assert_grep "Name = VFS;" "$NFS/export.conf" &&
	assert_grep "fsid_type = Major64;" "$NFS/export.conf" &&
	NFS_PORT=$(free_port) && echo "$NFS_PORT" >"$NFS/port" &&
	ganesha_conf >"$NFS/ganesha.conf" &&
	ganesha_start
'
NFS_PORT=$(cat "$NFS/port" 2>/dev/null)

test_expect_success 'contrib/nfs/ganesha.conf holds the EXPORT `snapfs share nfs` prints' '
	fsid=$(sed -n "s/.*Filesystem_Id = \(.*\);/\1/p" "$NFS/export.conf") &&
	sed -n "/^EXPORT {/,/^}/p" "$TEST_DIR/../../contrib/nfs/ganesha.conf" |
	sed -e "s|@ID@|1|" -e "s|@PATH@|$MNT|" -e "s|@NAME@|vol|" -e "s|@FSID@|$fsid|" >"$REF/template" &&
	sed -e "/^[[:space:]]*#/d" "$NFS/export.conf" >"$REF/printed" &&
	assert_cmp "$REF/template" "$REF/printed"
'

test_expect_success 'files written through NFS land in the volume; the volume'"'"'s files read back' '
	mkdir -p d/e && echo v1 >d/f && echo deep >d/e/deep && ln -s f d/l &&
	echo small >"$REF/small" &&
	timeout 60 nfs-cp "$REF/small" "$(url small)" &&
	assert_cmp "$REF/small" small &&
	# libnfs 4.0 sends no NFSv4 WRITE of 4 KiB or more (see nfsclient.py)
	rand_file "$REF/big" 3000000 &&
	nfsclient put "$(url "")" "$REF/big" d/big &&
	assert_cmp "$REF/big" d/big &&
	assert_eq v1 "$(ncat d/f)" &&
	timeout 60 nfs-cp "$(url d/big)" "$REF/big.back" &&
	assert_cmp "$REF/big" "$REF/big.back" &&
	printf "%s\n" .snapshot d small | sort >"$REF/want" &&
	nls "" >"$REF/got" &&
	assert_cmp "$REF/want" "$REF/got"
'

test_expect_success '.snapshot lists the snapshots and an old version reads as the snapshot holds it' '
	"$SNAPFS" snapshot create "$MNT" s1 &&
	echo v2 >d/f && rm d/e/deep &&
	"$SNAPFS" snapshot create "$MNT" s2 &&
	printf "%s\n" s1 s2 >"$REF/want" &&
	nls .snapshot >"$REF/got" && assert_cmp "$REF/want" "$REF/got" &&
	assert_eq v1 "$(ncat .snapshot/s1/d/f)" &&
	assert_eq v2 "$(ncat d/f)" &&
	assert_eq deep "$(ncat .snapshot/s1/d/e/deep)" &&
	timeout 60 nfs-cp "$(url .snapshot/s1/d/big)" "$REF/big.s1" &&
	assert_cmp "$REF/big" "$REF/big.s1" &&
	assert_eq "" "$(nls .snapshot/s2/d/e)"
'

test_expect_success 'a snapshot is read-only through NFS' '
	! timeout 60 nfs-cp "$REF/small" "$(url .snapshot/s1/d/new)" 2>"$REF/err" &&
	assert_missing .snapshot/s1/d/new &&
	! timeout 60 nfs-cp "$REF/small" "$(url .snapshot/s1/d/f)" 2>"$REF/err" &&
	assert_eq v1 "$(cat .snapshot/s1/d/f)"
'

# each PATH read (a file) or listed (a directory) through NFS, after the
# kernel evicted the inodes, equals what the volume holds
check_evicted() {
	local p bad=0 got want
	for p; do
		evict
		if [ -d "$MNT/$p" ]; then
			got=$(nls "$p" 2>&1) want=$(ls -A "$MNT/$p" | sort)
		else
			got=$(ncat "$p" 2>&1 | sha256sum) want=$(sha256sum <"$MNT/$p")
		fi
		[ "$got" = "$want" ] && continue
		say "$p through NFS after eviction: '$got', expected '$want'" >&2
		bad=1
	done
	return $bad
}

PATHS="d/f d/big small d d/e .snapshot/s1/d/f .snapshot/s1/d/big
	.snapshot/s1/d/e/deep .snapshot/s1/d .snapshot/s1 .snapshot"

test_expect_success DROP_CACHES 'no ESTALE after the kernel evicted the inodes under the running server' '
	check_evicted $PATHS &&
	check_evicted $PATHS
'

test_expect_success 'the volume cannot be unmounted under the running server (it holds the export)' '
	! timeout 60 "$SNAPFS" umount "$MNT" 2>"$REF/err" &&
	assert_grep busy "$REF/err" &&
	mountpoint -q "$MNT" &&
	assert_eq v2 "$(ncat d/f)"
'

test_expect_success 'after a remount the handles a client holds are the ones the server gives, and they read' '
	FILES="d/f d/big small .snapshot/s1/d/f .snapshot/s1/d/e/deep .snapshot/s2/d/big" &&
	nfsclient fh "$(url "")" $FILES >"$REF/fh.before" &&
	cat "$REF/fh.before" &&
	server_stop ganesha &&
	vol_remount &&
	ganesha_start &&
	nfsclient fh "$(url "")" $FILES >"$REF/fh.after" &&
	assert_cmp "$REF/fh.before" "$REF/fh.after" &&
	check_evicted $PATHS
'

test_expect_success DROP_CACHES 'no ESTALE after eviction once remounted' '
	check_evicted $PATHS
'

test_expect_success 'snapdir=hidden: .snapshot is not listed, and is reached by name' '
	"$SNAPFS" set "$MNT" snapdir=hidden &&
	printf "%s\n" d small >"$REF/want" &&
	nls "" >"$REF/got" && assert_cmp "$REF/want" "$REF/got" &&
	assert_eq v1 "$(ncat .snapshot/s1/d/f)" &&
	printf "%s\n" s1 s2 >"$REF/want" &&
	nls .snapshot >"$REF/got" && assert_cmp "$REF/want" "$REF/got"
'

test_expect_success DROP_CACHES 'snapdir=hidden: after eviction, files under .snapshot read' '
	check_evicted .snapshot/s1/d/f .snapshot/s1/d/e/deep d d/f
'

test_expect_success DROP_CACHES 'snapdir=hidden: after eviction, directories under .snapshot list to a client that looks them up by name' '
	check_evicted .snapshot/s1/d .snapshot/s1 .snapshot
'

test_expect_success 'snapdir=disabled: no .snapshot' '
	"$SNAPFS" set "$MNT" snapdir=disabled &&
	printf "%s\n" d small >"$REF/want" &&
	nls "" >"$REF/got" && assert_cmp "$REF/want" "$REF/got" &&
	! ncat .snapshot/s1/d/f >"$REF/out" 2>&1 &&
	! grep -q v1 "$REF/out" &&
	"$SNAPFS" set "$MNT" snapdir=visible &&
	assert_eq v1 "$(ncat .snapshot/s1/d/f)"
'

test_expect_success 'a snapshot created under the running server is listed at once' '
	"$SNAPFS" snapshot create "$MNT" s3 &&
	printf "%s\n" s1 s2 s3 >"$REF/want" &&
	nls .snapshot >"$REF/got" && assert_cmp "$REF/want" "$REF/got" &&
	assert_eq v2 "$(ncat .snapshot/s3/d/f)"
'

test_expect_success 'NFS-Ganesha stops, and whatever it forked with it' '
	pid=$(cat "$TEST_TMP/ganesha.pid") && test -n "$pid" &&
	server_stop ganesha &&
	! pgrep -s "$pid" >/dev/null
'

test_done
