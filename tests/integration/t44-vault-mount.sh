#!/bin/bash
# Browsing a vault: `snapfs vault mount` shows every vaulted snapshot,
# read-only, under VOLUME-UUID/SNAPSHOT; a full and an incremental backup
# list exactly as their source snapshots (contents, hard links, owners,
# modes, times, symlinks, devices, xattrs, ACLs, DOS attributes); reading
# one small file fetches its block and no more; the cache stays under its
# bound and goes at unmount (or stays, asked to); every change is EROFS;
# a damaged pack is EIO for the file it holds, and the others read right;
# a prune meanwhile gives EIO, never wrong bytes; bad input is one message.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
command -v fusermount3 >/dev/null || { say "# skipping: needs fusermount3"; test_done; }
vol_create --size 2G

TREELIST=$(cd "$(dirname "$0")" && pwd)/treelist.py
tree() { python3 "$TREELIST" "$1" --holes; }
VDIR=$TEST_TMP/vault
V=file://$VDIR
export SNAPFS_VAULT_PASSPHRASE='vault mount test passphrase'
VM=$TEST_TMP/vm
CACHE=$TEST_TMP/cache
LOG=$TEST_TMP/vm.log
mkdir -p "$VM"

# vm_start [TARGET] [OPTIONS...]: the vault mounted at $VM by a mount in
# the foreground of a background job (its pid in $VM_PIDFILE, its
# messages in $LOG), once it is mounted.  A test's body is a subshell:
# the job outlives it, and a later test stops it (vm_stop).
VM_PIDFILE=$TEST_TMP/vm.pid
vm_start() {
	local target=$V pid i
	case $1 in file://*|s3://*) target=$1; shift ;; esac
	"$SNAPFS" vault mount "$target" "$VM" -f "$@" 2>"$LOG" &
	pid=$!
	echo "$pid" >"$VM_PIDFILE"
	for i in $(seq 400); do
		mountpoint -q "$VM" && return 0
		pid_running "$pid" || { cat "$LOG" >&2; return 1; }
		sleep 0.05
	done
	say "vm_start: $VM not mounted after 20 s" >&2
	return 1
}
# vm_stop: unmounted, and the mount's process gone
vm_stop() { fusermount3 -u "$VM" && wait_gone "$(cat "$VM_PIDFILE")" 30; }
vm_cleanup() {
	mountpoint -q "$VM" && fusermount3 -uz "$VM"
	[ -s "$VM_PIDFILE" ] && wait_gone "$(cat "$VM_PIDFILE")" 10
	return 0
}
test_at_exit vm_cleanup
# files_in DIR: how many files are under DIR; bytes_in DIR: their bytes
files_in() { find "$1" -type f | wc -l; }
bytes_in() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
# fetched: the bytes the last mount says it read from the vault
fetched() { sed -n 's/.* \([0-9]*\) bytes read from the vault.*/\1/p' "$LOG"; }
flip() {
	python3 -c "
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0x40
open(p, 'wb').write(b)" "$1"
}

test_expect_success 'set up two vaulted snapshots: a full backup and an incremental one' '
	mkdir -p dir/sub data && echo a >dir/a && ln dir/a dir/sub/a.link &&
	ln -s ../small dir/sym && mkfifo dir/fifo && root_mknod dir/null c 1 3 &&
	echo small >small && chmod 4750 small && root_chown 65534:65534 dir/sub &&
	setfacl -m u:65534:rw dir/a && setfacl -d -m g:65534:rx dir/sub &&
	setfattr -n user.DOSATTRIB -v 0x22 dir/a && setfattr -n user.color -v blue small &&
	truncate -s 3M sparse && printf x | dd of=sparse bs=1 seek=2000000 conv=notrunc 2>/dev/null &&
	for i in 1 2 3 4; do head -c 4000000 /dev/urandom >data/big$i || exit 1; done &&
	head -c 5000 /dev/urandom >data/small5k &&
	touch -h -d "2001-02-03 04:05:06.789123456" dir/sym dir/a small &&
	"$SNAPFS" snapshot create "$MNT" s1 >/dev/null &&
	"$SNAPFS" vault init "$V" >/dev/null &&
	"$SNAPFS" vault backup "$MNT" s1 "$V" --pack-size 1M >/dev/null &&
	dd if=/dev/urandom of=data/big1 bs=64K count=3 seek=5 conv=notrunc 2>/dev/null &&
	rm dir/sub/a.link && echo new >dir/new && setfattr -n user.color -v red small &&
	mv dir/sub dir/moved && chmod 600 dir/a && rm data/big4 &&
	"$SNAPFS" snapshot create "$MNT" s2 >/dev/null &&
	"$SNAPFS" vault backup "$MNT" s2 "$V" --pack-size 1M >"$REF/out" &&
	assert_grep "(incremental from s1)" "$REF/out" &&
	test "$(find "$VDIR/data" -type f | wc -l)" -gt 12
'

UUID=$("$SNAPFS" info "$MNT" --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"uuid\"])")

test_expect_success 'the mount shows a directory per volume and one per snapshot, fetching no snapshot metadata for it' '
	vm_start --cache "$CACHE" &&
	assert_eq "$UUID" "$(ls "$VM")" &&
	assert_eq "s1 s2" "$(ls "$VM/$UUID" | tr "\n" " " | sed "s/ $//")" &&
	stat "$VM/$UUID/s1" "$VM/$UUID/s2" >/dev/null &&
	assert_stat "$VM/$UUID/s1" %a 555 &&
	assert_eq 0 "$(files_in "$CACHE/meta")"
'

test_expect_success 'the full backup lists exactly as its source snapshot once entered' '
	ls "$VM/$UUID/s1" >/dev/null &&
	assert_eq 2 "$(files_in "$CACHE/meta")" &&
	tree "$MNT/.snapshot/s1" >"$REF/src.tree" && tree "$VM/$UUID/s1" >"$REF/vm.tree" &&
	diff -u "$REF/src.tree" "$REF/vm.tree" >&2 &&
	assert_grep "system.posix_acl_access" "$REF/vm.tree" && assert_grep "user.DOSATTRIB" "$REF/vm.tree"
'

test_expect_success 'the incremental backup lists exactly as its source snapshot' '
	ls "$VM/$UUID/s2" >/dev/null &&
	tree "$MNT/.snapshot/s2" >"$REF/src.tree" && tree "$VM/$UUID/s2" >"$REF/vm.tree" &&
	diff -u "$REF/src.tree" "$REF/vm.tree" >&2
'

test_expect_success 'hard links share an inode number within a snapshot, and no two snapshots share one' '
	assert_eq "$(stat -c %i "$VM/$UUID/s1/dir/a")" "$(stat -c %i "$VM/$UUID/s1/dir/sub/a.link")" &&
	assert_ne "$(stat -c %i "$VM/$UUID/s1/dir/a")" "$(stat -c %i "$VM/$UUID/s2/dir/a")"
'

test_expect_success 'every change is refused with EROFS' '
	f=$VM/$UUID/s1/small &&
	assert_errno EROFS write "$f" more &&
	assert_errno EROFS truncate "$f" 0 &&
	assert_errno EROFS chmod "$f" 644 &&
	assert_errno EROFS setxattr "$f" user.x y &&
	assert_errno EROFS removexattr "$f" user.color &&
	assert_errno EROFS unlink "$f" &&
	assert_errno EROFS rename "$f" "$VM/$UUID/s1/other" &&
	assert_errno EROFS link "$f" "$VM/$UUID/s1/other" &&
	assert_errno EROFS symlink x "$VM/$UUID/s1/other" &&
	assert_errno EROFS mkdir "$VM/$UUID/s1/newdir" &&
	assert_errno EROFS mkdir "$VM/newvol" &&
	assert_errno EROFS rmdir "$VM/$UUID/s1/dir" &&
	assert_eq small "$(cat "$f")"
'

test_expect_success 'at unmount the cache directory is emptied' '
	vm_stop &&
	assert_grep "unmounted; 2 snapshot(s) entered" "$LOG" &&
	assert_eq 0 "$(files_in "$CACHE")"
'

test_expect_success 'SIGTERM ends a mount as unmounting does: unmounted, its cache emptied' '
	vm_start --cache "$CACHE" &&
	cmp "$MNT/.snapshot/s2/data/small5k" "$VM/$UUID/s2/data/small5k" &&
	test "$(files_in "$CACHE")" -gt 1 &&
	kill -TERM "$(cat "$VM_PIDFILE")" && wait_gone "$(cat "$VM_PIDFILE")" 30 &&
	! mountpoint -q "$VM" && assert_eq 0 "$(files_in "$CACHE")" &&
	assert_grep "unmounted; 1 snapshot(s) entered, 1 block(s) fetched" "$LOG"
'

test_expect_success 'reading one small file of a large volume fetches its one block, not the volume' '
	vm_start --cache "$CACHE" --keep-cache &&
	cmp "$MNT/.snapshot/s1/data/small5k" "$VM/$UUID/s1/data/small5k" &&
	assert_eq 1 "$(files_in "$CACHE/blocks")" &&
	vm_stop &&
	assert_grep " 1 block(s) fetched" "$LOG" &&
	vault=$(du -sb "$VDIR" | cut -f1) && got=$(fetched) &&
	test "$vault" -gt 16000000 && test "$got" -lt 200000
'

test_expect_success 'a cache kept at unmount serves the next mount without fetching the block again' '
	assert_eq 1 "$(files_in "$CACHE/blocks")" &&
	vm_start --cache "$CACHE" &&
	cmp "$MNT/.snapshot/s1/data/small5k" "$VM/$UUID/s1/data/small5k" &&
	vm_stop &&
	assert_grep " 0 block(s) fetched, 1 read from the cache" "$LOG" &&
	assert_eq 0 "$(files_in "$CACHE")"
'

test_expect_success 'reading more than the cache holds keeps the cache under its bound, and every byte right' '
	vm_start --cache "$CACHE" --cache-size 2M &&
	for i in 1 2 3; do
		cmp "$MNT/.snapshot/s2/data/big$i" "$VM/$UUID/s2/data/big$i" || exit 1
		test "$(bytes_in "$CACHE")" -le 2097152 || exit 1
	done &&
	test "$(files_in "$CACHE/blocks")" -gt 5 &&
	vm_stop &&
	assert_grep " 0 error(s)" "$LOG"
'

test_expect_success 'a damaged pack is EIO for the file whose block it damages; the other files read right' '
	flip "$(find "$VDIR/data" -type f -size +500k | sort | head -1)" &&
	vm_start --cache "$CACHE" &&
	bad=0 good=0 &&
	for f in small sparse data/small5k data/big1 data/big2 data/big3 data/big4; do
		if cat "$VM/$UUID/s1/$f" >"$TEST_TMP/got" 2>"$REF/err"; then
			cmp "$MNT/.snapshot/s1/$f" "$TEST_TMP/got" || exit 1
			good=$((good + 1))
		else
			assert_grep "Input/output error" "$REF/err" || exit 1
			bad=$((bad + 1)) failed=$f
		fi
	done &&
	assert_eq 1 "$bad" && assert_eq 6 "$good" &&
	vm_stop &&
	assert_grep "snapshot s1 of volume $UUID: /$failed: reading a block: data/.*: damaged" "$LOG"
'

test_expect_success 'damaged metadata is EIO for the snapshot it belongs to (the incremental s2: its pack is the smallest); s1 reads on' '
	flip "$(find "$VDIR/data" -type f -printf "%s %p\n" | sort -n | head -1 | cut -d" " -f2)" &&
	vm_start --cache "$CACHE" &&
	{ ! ls "$VM/$UUID/s2" >/dev/null 2>"$REF/err"; } &&
	assert_grep "Input/output error" "$REF/err" &&
	cmp "$MNT/.snapshot/s1/data/small5k" "$VM/$UUID/s1/data/small5k" &&
	vm_stop &&
	assert_grep "snapshot s2 of volume $UUID: its metadata cannot be read: .*damaged" "$LOG" &&
	assert_grep "unmounted; 1 snapshot(s) entered" "$LOG"
'

test_expect_success 'a prune meanwhile: blocks it deleted are EIO, blocks it moved are found at their new place, never other bytes' '
	rm -rf "$VDIR" && "$SNAPFS" vault init "$V" >/dev/null &&
	"$SNAPFS" vault backup "$MNT" s1 "$V" --pack-size 1M >/dev/null &&
	vm_start --cache "$CACHE" &&
	ls "$VM/$UUID/s1/data" >/dev/null &&
	"$SNAPFS" vault forget "$V" s1 >/dev/null &&
	"$SNAPFS" vault backup "$MNT" s2 "$V" --pack-size 1M >"$REF/out" &&
	assert_grep "(full)" "$REF/out" &&
	"$SNAPFS" vault prune "$V" >"$REF/out" &&
	assert_grep "packs deleted: [1-9]" "$REF/out" && assert_grep "repacked: [1-9]" "$REF/out" &&
	for f in data/big2 data/big3 data/small5k sparse; do
		cmp "$MNT/.snapshot/s1/$f" "$VM/$UUID/s1/$f" || exit 1
	done &&
	{ ! cat "$VM/$UUID/s1/data/big4" >/dev/null 2>"$REF/err"; } &&
	assert_grep "Input/output error" "$REF/err" &&
	vm_stop &&
	assert_grep "/data/big4: reading a block: .*\(missing\|in no index of the vault\)" "$LOG" &&
	! grep -q "/data/big[23]\|small5k\|sparse" "$LOG"
'

test_expect_success 'a backup made while mounted shows in its volume'"'"'s directory and lists as its source' '
	vm_start --cache "$CACHE" &&
	ls "$VM/$UUID/s2" >/dev/null &&
	head -c 100000 /dev/urandom >dir/three && setfattr -n user.DOSATTRIB -v 0x20 dir/three &&
	"$SNAPFS" snapshot create "$MNT" s3 >/dev/null &&
	"$SNAPFS" vault backup "$MNT" s3 "$V" >/dev/null &&
	for i in $(seq 200); do
		ls "$VM/$UUID" | grep -qx s3 && break
		sleep 0.05
	done &&
	ls "$VM/$UUID" | grep -qx s3 &&
	ls "$VM/$UUID/s3" >/dev/null &&
	tree "$MNT/.snapshot/s3" >"$REF/src.tree" && tree "$VM/$UUID/s3" >"$REF/vm.tree" &&
	diff -u "$REF/src.tree" "$REF/vm.tree" >&2 &&
	vm_stop && assert_grep " 0 error(s)" "$LOG"
'

test_expect_success 'a background mount returns once mounted, and unmounting ends it and removes its cache' '
	mkdir -p "$TEST_TMP/bg" &&
	TMPDIR=$TEST_TMP/bg "$SNAPFS" vault mount "$V" "$VM" 2>"$REF/err" &&
	! test -s "$REF/err" && mountpoint -q "$VM" &&
	cmp "$MNT/.snapshot/s2/small" "$VM/$UUID/s2/small" &&
	test "$(ls "$TEST_TMP/bg" | wc -l)" = 1 &&
	fusermount3 -u "$VM" &&
	for i in $(seq 200); do
		test -z "$(ls -A "$TEST_TMP/bg")" && break
		sleep 0.05
	done &&
	test -z "$(ls -A "$TEST_TMP/bg")"
'

test_expect_success 'bad input: a wrong passphrase, not a vault, no mountpoint, a cache directory in use or holding other files: one message, nothing mounted' '
	{ rc=0; SNAPFS_VAULT_PASSPHRASE=wrong "$SNAPFS" vault mount "$V" "$VM" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" && assert_grep "passphrase" "$REF/err" &&
	! mountpoint -q "$VM" &&
	mkdir -p "$TEST_TMP/empty" &&
	{ rc=0; "$SNAPFS" vault mount "file://$TEST_TMP/empty" "$VM" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" && assert_grep "no vault" "$REF/err" &&
	{ rc=0; "$SNAPFS" vault mount "$V" "$TEST_TMP/nosuch" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "nosuch: mountpoint does not exist" "$REF/err" &&
	mkdir -p "$TEST_TMP/mine" && echo keep >"$TEST_TMP/mine/file" &&
	{ rc=0; "$SNAPFS" vault mount "$V" "$VM" --cache "$TEST_TMP/mine" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" && assert_grep "holds other files than a vault mount" "$REF/err" &&
	assert_eq keep "$(cat "$TEST_TMP/mine/file")" && assert_eq file "$(ls -A "$TEST_TMP/mine")" &&
	{ rc=0; "$SNAPFS" vault mount "$V" "$VM" --cache-size 10 2>"$REF/err" || rc=$?; } &&
	assert_eq 2 "$rc" && assert_grep "cache-size" "$REF/err" &&
	vm_start --cache "$CACHE" &&
	mkdir -p "$TEST_TMP/vm2" &&
	{ rc=0; "$SNAPFS" vault mount "$V" "$TEST_TMP/vm2" --cache "$CACHE" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" && assert_grep "another vault mount uses" "$REF/err" &&
	! mountpoint -q "$TEST_TMP/vm2" &&
	vm_stop
'

test_expect_success 'two vaulted snapshots of one name show as NAME@ID, each with its own tree' '
	cp "$MNT/.snapshot/s2/small" "$TEST_TMP/small.s2" &&
	"$SNAPFS" snapshot delete "$MNT" s2 >/dev/null &&
	echo changed >small && "$SNAPFS" snapshot create "$MNT" s2 >/dev/null &&
	"$SNAPFS" vault backup "$MNT" s2 "$V" >/dev/null &&
	ids=$("$SNAPFS" vault list "$V" --json | python3 -c "
import json, sys
print(\" \".join(s[\"id\"][:8] for s in json.load(sys.stdin) if s[\"name\"] == \"s2\"))") &&
	set -- $ids && test $# = 2 &&
	vm_start --cache "$CACHE" &&
	assert_eq "$(printf "%s\n" "s2@$1" "s2@$2" | sort)" "$(ls "$VM/$UUID" | grep "^s2")" &&
	cmp "$TEST_TMP/small.s2" "$VM/$UUID/s2@$1/small" &&
	assert_eq changed "$(cat "$VM/$UUID/s2@$2/small")" &&
	vm_stop
'

# ---- s3:// against moto_server on loopback (moto.sh)
. "$TEST_DIR/moto.sh"
moto_start vaults
S3=s3://vaults/mount/vol1

test_expect_success MOTO 's3://: a vault in moto mounts, and a snapshot lists exactly as its source' '
	"$SNAPFS" vault init "$S3" --endpoint "$ENDPOINT" >/dev/null &&
	"$SNAPFS" vault backup "$MNT" s2 "$S3" --endpoint "$ENDPOINT" >/dev/null &&
	vm_start "$S3" --endpoint "$ENDPOINT" --cache "$CACHE" &&
	ls "$VM/$UUID/s2" >/dev/null &&
	tree "$MNT/.snapshot/s2" >"$REF/src.tree" && tree "$VM/$UUID/s2" >"$REF/vm.tree" &&
	diff -u "$REF/src.tree" "$REF/vm.tree" >&2 &&
	vm_stop && assert_grep " 0 error(s)" "$LOG"
'

test_done
