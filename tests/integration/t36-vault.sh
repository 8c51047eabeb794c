#!/bin/bash
# Vaults: `snapfs vault` backs snapshots up into an object store (file://
# here), encrypted, incremental forever; every backup restores on its own
# into a new volume that lists exactly as the source snapshot (contents,
# holes, hard links, owners, modes, nanosecond times, xattrs, ACLs, DOS
# attributes, a qtree with its quota and style); the store holds no
# plaintext; an incremental uploads about the change; damage, a wrong
# passphrase, a newer format and a second writer are refused with one
# message; a backup killed with kill -9 resumes without uploading again.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 3G

TREELIST=$(cd "$(dirname "$0")" && pwd)/treelist.py
tree() { python3 "$TREELIST" "$1" --holes; }
VDIR=$TEST_TMP/vault
V=file://$VDIR
PASS='correct horse battery staple'
export SNAPFS_VAULT_PASSPHRASE=$PASS
MARKER=Zq7-vault-plaintext-marker-Kx9
RMNT=$TEST_TMP/r.mnt

# restored NAME STORE: the restored STORE's snapshot NAME, and its live
# tree, list exactly as the source's snapshot NAME
restored() {
	tree "$MNT/.snapshot/$1" >"$REF/src.tree" &&
	vol_mount "$2" "$RMNT" &&
	tree "$RMNT/.snapshot/$1" >"$REF/snap.tree" &&
	tree "$RMNT" >"$REF/live.tree" &&
	vol_umount "$RMNT" &&
	diff -u "$REF/src.tree" "$REF/snap.tree" >&2 &&
	diff -u "$REF/src.tree" "$REF/live.tree" >&2
}
# uploaded OUTFILE: the bytes a backup says it uploaded
uploaded() { sed -n 's/.*uploaded: .*(\([0-9]*\) bytes).*/\1/p' "$1"; }
# json_field JSON FIELD
json_field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
# flip FILE [OFFSET]: change one byte (default: the middle)
flip() {
	python3 -c "
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
at = int(sys.argv[2]) if len(sys.argv) > 2 else len(b) // 2
b[at] ^= 0x40
open(p, 'wb').write(b)" "$@"
}
largest_pack() { find "$1/data" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2; }
# no_store_made DIR: nothing named DIR, DIR.partial-* or DIR.scratch-*
no_store_made() { ! ls -d "$1" "$1".partial-* "$1".scratch-* 2>/dev/null | grep -q .; }

test_expect_success 'set up a volume: data, holes, hard links, owners, modes, times, xattrs, ACLs, DOS attributes, a qtree, a marker' '
	mkdir -p dir/sub && echo a >dir/a && ln dir/a dir/sub/a.link &&
	head -c 3000000 /dev/urandom >dir/big && ln -s ../mod dir/sym && mkfifo dir/fifo &&
	root_mknod dir/null c 1 3 && echo one >mod &&
	setfacl -m u:65534:rw dir/a && setfacl -d -m g:65534:rx dir/sub &&
	setfattr -n user.DOSATTRIB -v 0x22 dir/a && setfattr -n user.color -v blue dir/big &&
	truncate -s 5M sparse && printf x | dd of=sparse bs=1 seek=3000000 conv=notrunc 2>/dev/null &&
	root_chown 65534:65534 dir/sub && chmod 4750 mod &&
	touch -h -d "2001-02-03 04:05:06.789123456" dir/sym dir/a mod &&
	"$SNAPFS" qtree create "$MNT" proj --quota 100M --security-style ntfs >/dev/null &&
	echo q >proj/file &&
	{ for i in $(seq 2000); do echo "$MARKER line $i"; done; } >proj/"$MARKER.txt" &&
	setfattr -n user.note -v "$MARKER" proj/file &&
	head -c 20000000 /dev/urandom >data20m &&
	"$SNAPFS" snapshot create "$MNT" s1 >/dev/null
'

test_expect_success 'vault init creates a vault, and a second init of the same target is refused' '
	"$SNAPFS" vault init "$V" >"$REF/out" &&
	assert_grep "created vault [0-9a-f]\{8\} at $V" "$REF/out" &&
	test -f "$VDIR/config" && ls "$VDIR/keys" | grep -q "^[0-9a-f]\{64\}$" &&
	{ rc=0; "$SNAPFS" vault init "$V" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "holds a vault already" "$REF/err"
'

test_expect_success 'a full backup uploads every block and the vault lists the snapshot' '
	"$SNAPFS" vault backup "$MNT" s1 "$V" >"$REF/out" &&
	assert_grep "backed up snapshot s1 of .* as [0-9a-f]\{8\} (full)" "$REF/out" &&
	up=$(uploaded "$REF/out") && test "$up" -gt 23000000 &&
	"$SNAPFS" vault list "$V" >"$REF/list" &&
	assert_grep "full .* s1$" "$REF/list"
'

test_expect_success 'the vault holds no plaintext: no object contains the marker written in contents, a name and an xattr' '
	! grep -r -a -l -F "$MARKER" "$VDIR" &&
	! grep -r -a -l -F "line 1999" "$VDIR" &&
	! grep -r -a -l -F "DOSATTRIB" "$VDIR"
'

test_expect_success 'the full backup restored into a new volume lists exactly as the source snapshot, qtree and creation time included' '
	"$SNAPFS" vault restore "$V" s1 "$TEST_TMP/r1.store" >"$REF/out" &&
	assert_grep "restored snapshot s1 ([0-9a-f]*) into $TEST_TMP/r1.store" "$REF/out" &&
	restored s1 "$TEST_TMP/r1.store" &&
	"$SNAPFS" qtree list "$TEST_TMP/r1.store" >"$REF/q" && assert_grep "proj.*ntfs" "$REF/q" &&
	"$SNAPFS" qtree list "$TEST_TMP/r1.store" --json | grep -q "104857600" &&
	"$SNAPFS" snapshot list "$MNT" --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"created\"])" >"$REF/c1" &&
	"$SNAPFS" snapshot list "$TEST_TMP/r1.store" --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"created\"])" >"$REF/c2" &&
	assert_cmp "$REF/c1" "$REF/c2" &&
	"$SNAPFS" fsck "$TEST_TMP/r1.store" >/dev/null
'

test_expect_success 'the restored volume is an ordinary writable volume' '
	vol_mount "$TEST_TMP/r1.store" "$RMNT" &&
	echo new >"$RMNT/written" && assert_eq new "$(cat "$RMNT/written")" &&
	vol_umount "$RMNT"
'

test_expect_success 'an incremental backup uploads about the changed bytes, not the volume' '
	dd if=/dev/urandom of=data20m bs=1M count=1 seek=7 conv=notrunc 2>/dev/null &&
	echo two >mod && rm dir/sub/a.link && setfattr -n user.color -v red dir/big &&
	"$SNAPFS" snapshot create "$MNT" s2 >/dev/null &&
	"$SNAPFS" vault backup "$MNT" s2 "$V" >"$REF/out" &&
	assert_grep "(incremental from s1)" "$REF/out" &&
	up=$(uploaded "$REF/out") &&
	test "$up" -gt 1000000 && test "$up" -lt 1400000
'

test_expect_success 'a second incremental: renames, deletions, modes, owners, ACLs, xattrs, truncation, new files' '
	mv dir/sub moved && echo new >moved/new && truncate -s 1M dir/big &&
	setfacl -b dir/a && chmod 600 mod && root_chown 65534 mod &&
	setfattr -x user.DOSATTRIB dir/a && setfattr -n user.DOSATTRIB -v 0x20 moved/new &&
	rm sparse && echo more >>proj/file && touch -d "1999-12-31 23:59:59.5" moved &&
	"$SNAPFS" snapshot create "$MNT" daily.s3 >/dev/null &&
	"$SNAPFS" vault backup "$MNT" daily.s3 "$V" --label keep >"$REF/out" &&
	assert_grep "(incremental from s2)" "$REF/out" &&
	up=$(uploaded "$REF/out") && test "$up" -lt 200000
'

test_expect_success 'each backup of the chain restores on its own to its source snapshot' '
	"$SNAPFS" vault restore "$V" s2 "$TEST_TMP/r2.store" >/dev/null &&
	restored s2 "$TEST_TMP/r2.store" &&
	"$SNAPFS" vault restore "$V" daily.s3 "$TEST_TMP/r3.store" >/dev/null &&
	restored daily.s3 "$TEST_TMP/r3.store" &&
	"$SNAPFS" qtree list "$TEST_TMP/r3.store" >"$REF/q" && assert_grep "proj.*ntfs" "$REF/q"
'

test_expect_success 'restore-file copies a directory and a file of a vaulted snapshot out as the snapshot has them, fetching only their blocks' '
	mkdir "$TEST_TMP/rf-tmp" &&
	TMPDIR=$TEST_TMP/rf-tmp "$SNAPFS" vault restore-file "$V" s1 /dir --to "$MNT/got-dir" >"$REF/out" &&
	! ls -A "$TEST_TMP/rf-tmp" | grep -q . &&
	assert_grep "restored /dir of snapshot s1 ([0-9a-f]*) as $MNT/got-dir" "$REF/out" &&
	blocks=$(sed -n "s/.*data (\([0-9]*\) blocks.*/\1/p" "$REF/out") &&
	test "$blocks" -ge 46 && test "$blocks" -lt 60 &&
	tree "$MNT/.snapshot/s1/dir" >"$REF/src.tree" && tree "$MNT/got-dir" >"$REF/got.tree" &&
	diff -u "$REF/src.tree" "$REF/got.tree" >&2 &&
	"$SNAPFS" vault restore-file "$V" s1 sparse --to "$MNT/got-sparse" >/dev/null &&
	cmp "$MNT/.snapshot/s1/sparse" "$MNT/got-sparse" &&
	assert_eq "$(stat -c "%a %u %g %s %y" "$MNT/.snapshot/s1/sparse")" "$(stat -c "%a %u %g %s %y" "$MNT/got-sparse")" &&
	{ rc=0; "$SNAPFS" vault restore-file "$V" s1 /nosuch --to "$MNT/got-x" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" && assert_grep "/nosuch: not in the snapshot" "$REF/err" &&
	assert_missing "$MNT/got-x" &&
	{ rc=0; "$SNAPFS" vault restore-file "$V" s1 /mod --to "$MNT/got-sparse" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "already exists" "$REF/err" &&
	rm -rf "$MNT/got-dir" "$MNT/got-sparse"
'

test_expect_success 'vault show and list --json tell identity, labels, kind and sizes' '
	uuid=$("$SNAPFS" info "$MNT" --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"uuid\"])") &&
	js=$("$SNAPFS" vault show "$V" daily.s3 --json) &&
	assert_eq daily.s3 "$(json_field "$js" name)" &&
	assert_eq "$uuid" "$(json_field "$js" volume)" &&
	assert_eq True "$(json_field "$js" incremental)" &&
	python3 -c "import json,sys; assert json.loads(sys.argv[1])[\"labels\"] == [\"daily\", \"keep\"]" "$js" &&
	logical=$(python3 -c "
import os, stat, sys
seen, total = set(), 0
for d, _, fs in os.walk(sys.argv[1]):
    for f in fs:
        st = os.lstat(os.path.join(d, f))
        if stat.S_ISREG(st.st_mode) and st.st_ino not in seen:
            seen.add(st.st_ino); total += st.st_size
print(total)" "$MNT/.snapshot/daily.s3") &&
	assert_eq "$logical" "$(json_field "$js" logical_bytes)" &&
	test "$(json_field "$js" stored_bytes)" -gt 0 &&
	"$SNAPFS" vault list "$V" --json | python3 -c "
import json, sys
l = json.load(sys.stdin)
assert [s[\"name\"] for s in l] == [\"s1\", \"s2\", \"daily.s3\"], l
assert [s[\"incremental\"] for s in l] == [False, True, True]
assert l[0][\"added_bytes\"] > 23000000 and l[1][\"added_bytes\"] < 1200000" &&
	"$SNAPFS" vault show "$V" s2 >"$REF/show" &&
	assert_grep "^kind: *incremental" "$REF/show" && assert_grep "^logical:" "$REF/show"
'

test_expect_success 'backing up a snapshot the vault has already uploads nothing' '
	"$SNAPFS" vault backup "$MNT" s2 "$V" >"$REF/out" &&
	assert_grep "is in the vault already" "$REF/out" &&
	assert_eq 3 "$("$SNAPFS" vault list "$V" --json | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")"
'

test_expect_success 'vault check reads every blob of a healthy vault and finds no problem' '
	"$SNAPFS" vault check "$V" --read-data >"$REF/out" &&
	assert_grep "checked 1 keys, 3 snapshots, 3 metadata links" "$REF/out" &&
	assert_grep "no problems found" "$REF/out" &&
	"$SNAPFS" vault check "$V" >/dev/null
'

# ---- passphrases and keys

test_expect_success 'a wrong passphrase is one clear message and exit 1, for every command' '
	for c in "list $V" "show $V s1" "check $V" "restore $V s1 $TEST_TMP/nope" "backup $MNT s1 $V" "key list $V"; do
		rc=0; SNAPFS_VAULT_PASSPHRASE=wrong "$SNAPFS" vault $c >/dev/null 2>"$REF/err" || rc=$?
		assert_eq 1 "$rc" "$c" && assert_one_line "$REF/err" &&
		assert_grep "wrong passphrase" "$REF/err" || exit 1
	done &&
	no_store_made "$TEST_TMP/nope"
'

# on_tty ANSWER COMMAND...: run COMMAND on a new terminal, type ANSWER
# once it prompts ("passphrase: "), and print everything it showed
on_tty() {
	python3 -c "
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
out = b\"\"
def read():
    global out
    try:
        b = os.read(fd, 4096)
    except OSError:
        return False
    out += b
    return bool(b)
while b\"passphrase: \" not in out and read():
    pass
os.write(fd, sys.argv[1].encode() + b\"\\n\")
while read():
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors=\"replace\"))
sys.exit(os.waitstatus_to_exitcode(status))" "$@"
}

test_expect_success PYTHON 'the passphrase comes from a file, or from a prompt on a terminal without echo, and is never printed' '
	printf "%s\n" "$PASS" >"$TEST_TMP/pass" &&
	(unset SNAPFS_VAULT_PASSPHRASE; "$SNAPFS" vault list "$V" --passphrase-file "$TEST_TMP/pass") >"$REF/list" &&
	assert_grep " s1$" "$REF/list" &&
	(unset SNAPFS_VAULT_PASSPHRASE; on_tty "$PASS" "$SNAPFS" vault list "$V") >"$REF/tty" &&
	assert_grep "Vault passphrase:" "$REF/tty" && assert_grep " s1" "$REF/tty" &&
	! grep -q -F "$PASS" "$REF/tty" &&
	{ rc=0; (unset SNAPFS_VAULT_PASSPHRASE; setsid -w "$SNAPFS" vault list "$V" </dev/null >/dev/null 2>"$REF/err") || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "no passphrase: give --passphrase-file" "$REF/err"
'

test_expect_success 'key add gives a second passphrase; key remove refuses the key in use and the last key' '
	SNAPFS_VAULT_NEW_PASSPHRASE=second "$SNAPFS" vault key add "$V" >"$REF/out" &&
	assert_grep "added key [0-9a-f]\{8\}" "$REF/out" &&
	"$SNAPFS" vault key list "$V" --json >"$REF/keys" &&
	assert_eq 2 "$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$REF/keys")" &&
	SNAPFS_VAULT_PASSPHRASE=second "$SNAPFS" vault list "$V" >/dev/null &&
	first=$(python3 -c "import json,sys; print([k[\"id\"] for k in json.load(open(sys.argv[1])) if k[\"current\"]][0])" "$REF/keys") &&
	{ rc=0; "$SNAPFS" vault key remove "$V" "${first:0:8}" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "the key this passphrase opened" "$REF/err" &&
	SNAPFS_VAULT_PASSPHRASE=second "$SNAPFS" vault key remove "$V" "${first:0:8}" >"$REF/out" &&
	assert_grep "removed key ${first:0:8}" "$REF/out" &&
	{ rc=0; "$SNAPFS" vault list "$V" >/dev/null 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "wrong passphrase" "$REF/err" &&
	second=$(SNAPFS_VAULT_PASSPHRASE=second "$SNAPFS" vault key list "$V" --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"id\"])") &&
	{ rc=0; SNAPFS_VAULT_PASSPHRASE=second "$SNAPFS" vault key remove "$V" "${second:0:8}" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "only key" "$REF/err" &&
	SNAPFS_VAULT_PASSPHRASE=second SNAPFS_VAULT_NEW_PASSPHRASE="$PASS" "$SNAPFS" vault key add "$V" >/dev/null &&
	"$SNAPFS" vault list "$V" >/dev/null
'

test_expect_success 'a vault of a newer format is refused before any passphrase is asked for' '
	cp -a "$VDIR" "$TEST_TMP/newer" &&
	flip "$TEST_TMP/newer/config" 11 &&
	{ rc=0; (unset SNAPFS_VAULT_PASSPHRASE; "$SNAPFS" vault list "file://$TEST_TMP/newer" </dev/null 2>"$REF/err") || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "newer than this snapfs reads" "$REF/err" &&
	rm -rf "$TEST_TMP/newer"
'

test_expect_success 'a target that holds no vault is one message' '
	{ rc=0; "$SNAPFS" vault list "file://$TEST_TMP/empty" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" && assert_grep "no vault here" "$REF/err"
'

# ---- damage: one message, non-zero exit, nothing restored wrongly

# damaged_copy NAME: a copy of the vault to damage, at $TEST_TMP/NAME
damaged_copy() { rm -rf "$TEST_TMP/$1" && cp -a "$VDIR" "$TEST_TMP/$1"; }

test_expect_success 'a flipped byte in a pack: check --read-data names the pack, a restore fails and makes nothing' '
	damaged_copy bad1 && pack=$(largest_pack "$TEST_TMP/bad1") && flip "$pack" &&
	{ rc=0; "$SNAPFS" vault check "file://$TEST_TMP/bad1" --read-data >"$REF/out" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "problem: data/.*/$(basename "$pack"): damaged" "$REF/out" &&
	{ rc=0; "$SNAPFS" vault restore "file://$TEST_TMP/bad1" s1 "$TEST_TMP/bad1.store" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "$(basename "$pack"): damaged.*nothing was restored" "$REF/err" &&
	no_store_made "$TEST_TMP/bad1.store"
'

test_expect_success 'a truncated pack and a missing pack: check and restore say so, nothing is made' '
	damaged_copy bad2 && pack=$(largest_pack "$TEST_TMP/bad2") &&
	truncate -s 100000 "$pack" &&
	{ rc=0; "$SNAPFS" vault check "file://$TEST_TMP/bad2" >"$REF/out" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "truncated" "$REF/out" &&
	{ rc=0; "$SNAPFS" vault restore "file://$TEST_TMP/bad2" s1 "$TEST_TMP/bad2.store" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" && assert_grep "truncated\|damaged" "$REF/err" &&
	no_store_made "$TEST_TMP/bad2.store" &&
	rm "$pack" &&
	{ rc=0; "$SNAPFS" vault check "file://$TEST_TMP/bad2" >"$REF/out" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "missing" "$REF/out" &&
	{ rc=0; "$SNAPFS" vault restore "file://$TEST_TMP/bad2" s1 "$TEST_TMP/bad2.store" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" && assert_grep "missing" "$REF/err" &&
	no_store_made "$TEST_TMP/bad2.store"
'

test_expect_success 'a tampered manifest is refused by name; the other snapshots stay listed and restorable' '
	damaged_copy bad3 &&
	id=$("$SNAPFS" vault show "$V" s2 --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"id\"])") &&
	flip "$TEST_TMP/bad3/snapshots/$id" &&
	{ rc=0; "$SNAPFS" vault list "file://$TEST_TMP/bad3" >"$REF/list" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "snapshots/$id: damaged" "$REF/err" &&
	assert_grep " s1$" "$REF/list" && assert_grep " daily.s3$" "$REF/list" && ! grep -q " s2$" "$REF/list" &&
	{ rc=0; "$SNAPFS" vault restore "file://$TEST_TMP/bad3" s2 "$TEST_TMP/bad3.store" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" && assert_grep "damaged" "$REF/err" &&
	no_store_made "$TEST_TMP/bad3.store" &&
	"$SNAPFS" vault restore "file://$TEST_TMP/bad3" daily.s3 "$TEST_TMP/bad3.store" >/dev/null &&
	restored daily.s3 "$TEST_TMP/bad3.store" &&
	{ rc=0; "$SNAPFS" vault check "file://$TEST_TMP/bad3" >"$REF/out" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "problem: snapshots/$id: damaged" "$REF/out"
'

test_expect_success 'a tampered index and a tampered metadata blob: one message, nothing restored' '
	damaged_copy bad4 && idx=$(ls "$TEST_TMP/bad4/index" | head -1) &&
	flip "$TEST_TMP/bad4/index/$idx" &&
	{ rc=0; "$SNAPFS" vault restore "file://$TEST_TMP/bad4" s1 "$TEST_TMP/bad4.store" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" && assert_grep "index/$idx: damaged" "$REF/err" &&
	no_store_made "$TEST_TMP/bad4.store" &&
	{ rc=0; "$SNAPFS" vault check "file://$TEST_TMP/bad4" >"$REF/out" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "problem: index/$idx: damaged" "$REF/out" &&
	damaged_copy bad5 &&
	for p in $(find "$TEST_TMP/bad5/data" -type f -size -200k); do flip "$p" 40 || exit 1; done &&
	{ rc=0; "$SNAPFS" vault restore "file://$TEST_TMP/bad5" s1 "$TEST_TMP/bad5.store" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" && assert_grep "damaged" "$REF/err" &&
	no_store_made "$TEST_TMP/bad5.store"
'

# ---- writers and interruptions

# wait_for COUNT DIR [SECONDS]: until DIR holds at least COUNT files
wait_for() {
	local i
	for i in $(seq $((${3:-60} * 100))); do
		[ "$(find "$2" -type f ! -name ".*" 2>/dev/null | wc -l)" -ge "$1" ] && return 0
		sleep 0.01
	done
	say "wait_for: $2 has fewer than $1 files" >&2
	return 1
}

test_expect_success 'a second writer is refused while a backup runs, with a message naming the holder' '
	head -c 150000000 /dev/urandom >bulk1 && "$SNAPFS" snapshot create "$MNT" s4 >/dev/null
	"$SNAPFS" vault backup "$MNT" s4 "$V" --pack-size 1M >"$REF/out1" 2>&1 &
	pid=$!
	wait_for 1 "$VDIR/locks/write" && kill -STOP $pid &&
	{ rc=0; "$SNAPFS" vault backup "$MNT" s4 "$V" 2>"$REF/err" || rc=$?; } &&
	{ rc2=0; "$SNAPFS" vault key add "$V" 2>"$REF/err2" || rc2=$?; } &&
	kill -CONT $pid && wait $pid &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "locked by snapfs vault backup (pid $pid" "$REF/err" &&
	assert_eq 1 "$rc2" && assert_grep "locked by" "$REF/err2" &&
	assert_grep "backed up snapshot s4" "$REF/out1" &&
	! ls "$VDIR/locks/write" | grep -q .
'

test_expect_success 'a backup killed with kill -9 leaves the vault as it was, and the next backup resumes without uploading its packs again' '
	head -c 120000000 /dev/urandom >bulk2 && "$SNAPFS" snapshot create "$MNT" s5 >/dev/null &&
	"$SNAPFS" vault list "$V" >"$REF/before" &&
	n=$(find "$VDIR/data" -type f | wc -l)
	"$SNAPFS" vault backup "$MNT" s5 "$V" --pack-size 1M >/dev/null 2>&1 &
	pid=$!
	wait_for $((n + 20)) "$VDIR/data" && kill -STOP $pid &&
	! "$SNAPFS" vault list "$V" --json 2>/dev/null | grep -q "\"s5\"" &&
	kill -KILL $pid && { wait $pid || :; } &&
	"$SNAPFS" snapshot holds "$MNT" s5 >"$REF/holds" && assert_grep "vault:$pid" "$REF/holds" &&
	"$SNAPFS" vault list "$V" >"$REF/after" && assert_cmp "$REF/before" "$REF/after" &&
	"$SNAPFS" vault restore "$V" s2 "$TEST_TMP/r2b.store" >/dev/null && restored s2 "$TEST_TMP/r2b.store" &&
	"$SNAPFS" vault backup "$MNT" s5 "$V" --pack-size 1M >"$REF/out" &&
	assert_grep "resumed: [1-9][0-9]* packs an interrupted backup had uploaded" "$REF/out" &&
	up=$(uploaded "$REF/out") && test "$up" -lt 105000000 &&
	grep "blocks:" "$REF/out" | grep -q "[1-9][0-9]* already in the vault" &&
	"$SNAPFS" snapshot holds "$MNT" s5 >"$REF/holds" && ! grep -q "vault:" "$REF/holds" &&
	"$SNAPFS" vault restore "$V" s5 "$TEST_TMP/r5.store" >/dev/null && restored s5 "$TEST_TMP/r5.store" &&
	"$SNAPFS" vault check "$V" >"$REF/out" && assert_grep "no problems found" "$REF/out"
'

test_expect_success 'a backup makes no pack larger than its pack size, and one index object per 64 packs it writes' '
	"$SNAPFS" vault init "file://$TEST_TMP/v64" >/dev/null &&
	"$SNAPFS" vault backup "$MNT" s5 "file://$TEST_TMP/v64" --pack-size 1M >"$REF/out" &&
	packs=$(sed -n "s/.*uploaded: .* in \([0-9]*\) packs.*/\1/p" "$REF/out") &&
	test "$packs" -gt 128 &&
	assert_eq "$packs" "$(find "$TEST_TMP/v64/data" -type f | wc -l)" &&
	assert_eq "" "$(find "$TEST_TMP/v64/data" -type f -size +1048576c)" &&
	assert_eq $(((packs + 63) / 64)) "$(ls "$TEST_TMP/v64/index" | wc -l)" &&
	"$SNAPFS" vault restore "file://$TEST_TMP/v64" s5 "$TEST_TMP/r64.store" >/dev/null &&
	restored s5 "$TEST_TMP/r64.store"
'

test_expect_success 'an interrupted restore (SIGINT) says so and leaves nothing behind' '
	"$SNAPFS" vault restore "$V" s5 "$TEST_TMP/int.store" >"$REF/out" 2>"$REF/err" &
	pid=$!
	for i in $(seq 3000); do
		ls -d "$TEST_TMP"/int.store.partial-* >/dev/null 2>&1 && break
		sleep 0.01
	done
	kill -STOP $pid && kill -INT $pid && kill -CONT $pid &&
	{ rc=0; wait $pid || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "interrupted; nothing was restored" "$REF/err" &&
	no_store_made "$TEST_TMP/int.store"
'

test_expect_success 'an unmounted volume is backed up from its store, and restores to its snapshot' '
	rm bulk1 bulk2 && echo offline >offline &&
	cd "$TEST_TMP" && vol_umount "$MNT" &&
	"$SNAPFS" snapshot create "$STORE" s6 >/dev/null &&
	"$SNAPFS" vault backup "$STORE" s6 "$V" >"$REF/out" &&
	assert_grep "(incremental from s5)" "$REF/out" &&
	vol_mount "$STORE" "$MNT" && cd "$MNT" &&
	"$SNAPFS" vault restore "$V" s6 "$TEST_TMP/r6.store" >/dev/null && restored s6 "$TEST_TMP/r6.store"
'

test_expect_success 'when the source no longer has the base, the metadata goes whole but no block is uploaded again' '
	for s in s1 s2 daily.s3 s4 s5 s6; do "$SNAPFS" snapshot delete "$MNT" $s >/dev/null || exit 1; done &&
	"$SNAPFS" snapshot create "$MNT" s7 >/dev/null &&
	"$SNAPFS" vault backup "$MNT" s7 "$V" >"$REF/out" &&
	assert_grep "(full)" "$REF/out" &&
	assert_grep "blocks: [0-9]* referred to, 0 new" "$REF/out" &&
	up=$(uploaded "$REF/out") && test "$up" -lt 300000 &&
	"$SNAPFS" vault restore "$V" s7 "$TEST_TMP/r7.store" >/dev/null && restored s7 "$TEST_TMP/r7.store"
'

test_expect_success 'a backup of a snapshot that does not exist, and bad arguments, are refused' '
	{ rc=0; "$SNAPFS" vault backup "$MNT" nosuch "$V" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "no snapshot named nosuch" "$REF/err" &&
	{ rc=0; "$SNAPFS" vault restore "$V" s7 "$TEST_TMP/r7.store" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "already exists" "$REF/err" &&
	{ rc=0; "$SNAPFS" vault restore "$V" nosuch "$TEST_TMP/x.store" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_grep "no such snapshot in the vault" "$REF/err" &&
	{ rc=0; "$SNAPFS" vault backup "$MNT" s7 "$V" --pack-size 1K 2>"$REF/err" || rc=$?; } &&
	assert_eq 2 "$rc" && assert_grep "pack-size" "$REF/err" &&
	{ rc=0; "$SNAPFS" vault list 2>"$REF/err" || rc=$?; } && assert_eq 2 "$rc" &&
	{ rc=0; "$SNAPFS" vault list "s3://" 2>"$REF/err" || rc=$?; } && assert_eq 1 "$rc"
'

# ---- retention: forget and prune

# same_restored NAME A B: snapshot NAME of the restored stores A and B lists the same
same_restored() {
	vol_mount "$2" "$RMNT" && tree "$RMNT/.snapshot/$1" >"$REF/a.tree" && vol_umount "$RMNT" &&
	vol_mount "$3" "$RMNT" && tree "$RMNT/.snapshot/$1" >"$REF/b.tree" && vol_umount "$RMNT" &&
	diff -u "$REF/a.tree" "$REF/b.tree" >&2
}
names() { "$SNAPFS" vault list "$V" --json | python3 -c "import json,sys; print(' '.join(s[\"name\"] for s in json.load(sys.stdin)))"; }

DAMAGE=${SNAPFS_DAMAGE:-$(dirname "$SNAPFS")/snapfs-damage}
test -x "$DAMAGE" && test_set_prereq DAMAGE
test_expect_success DAMAGE 'a block the volume holds damaged fails the backup with one message, and no snapshot is stored' '
	D=$TEST_TMP/damaged.store && "$SNAPFS" mkfs "$D" --size 1G >/dev/null &&
	vol_mount "$D" "$TEST_TMP/damaged.mnt" &&
	yes "a line of text the volume compresses" | head -c 300000 >"$TEST_TMP/damaged.mnt/text" &&
	"$SNAPFS" snapshot create "$TEST_TMP/damaged.mnt" d1 >/dev/null &&
	vol_umount "$TEST_TMP/damaged.mnt" &&
	"$DAMAGE" "$D" /text 65536 >/dev/null &&
	{ rc=0; "$SNAPFS" vault backup "$D" d1 "$V" >"$REF/out" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" &&
	assert_grep "a block of the snapshot: it does not match its hash" "$REF/err" &&
	"$SNAPFS" vault list "$V" >"$REF/list" &&
	! grep -q " d1$" "$REF/list"
'

test_expect_success 'forget --dry-run lists what the rules keep and forgets nothing' '
	before=$(names) &&
	"$SNAPFS" vault forget "$V" --keep-last 1 --keep-label daily=1 --dry-run >"$REF/out" &&
	assert_grep "^keep .* s7 (last)" "$REF/out" && assert_grep "^keep .* daily.s3 (label)" "$REF/out" &&
	assert_grep "^forget? .* s2$" "$REF/out" && assert_grep "would forget 5 snapshots" "$REF/out" &&
	assert_eq "$before" "$(names)"
'

test_expect_success 'forget by rules, then prune: space comes back, every kept snapshot restores as before, check reads it all' '
	size0=$(du -sb "$VDIR" | cut -f1) &&
	"$SNAPFS" vault forget "$V" --keep-last 1 --keep-label daily=1 >"$REF/out" &&
	assert_grep "forgot 5 snapshots" "$REF/out" && assert_grep "stays until snapfs vault prune" "$REF/out" &&
	assert_eq "daily.s3 s7" "$(names)" &&
	test "$(du -sb "$VDIR" | cut -f1)" -ge $((size0 - 100000)) &&
	"$SNAPFS" vault prune "$V" >"$REF/out" &&
	assert_grep "pruned: 2 snapshots" "$REF/out" &&
	size1=$(du -sb "$VDIR" | cut -f1) && test "$size1" -lt $((size0 - 200000000)) &&
	"$SNAPFS" vault check "$V" --read-data >"$REF/out" && assert_grep "no problems found" "$REF/out" &&
	"$SNAPFS" vault restore "$V" daily.s3 "$TEST_TMP/p3.store" >/dev/null &&
	same_restored daily.s3 "$TEST_TMP/r3.store" "$TEST_TMP/p3.store" &&
	"$SNAPFS" vault restore "$V" s7 "$TEST_TMP/p7.store" >/dev/null && restored s7 "$TEST_TMP/p7.store" &&
	"$SNAPFS" vault prune "$V" >"$REF/out" && assert_grep "deleted: 0 .* repacked: 0" "$REF/out"
'

test_expect_success 'forget by name, and a prune that a running restore would see is refused' '
	"$SNAPFS" vault forget "$V" daily.s3 >"$REF/out" && assert_grep "forgot 1 snapshot$" "$REF/out" &&
	assert_eq "s7" "$(names)" &&
	{ rc=0; "$SNAPFS" vault forget "$V" 2>"$REF/err" || rc=$?; } && assert_eq 2 "$rc" &&
	{ rc=0; "$SNAPFS" vault forget "$V" s7 --keep-last 1 2>"$REF/err" || rc=$?; } && assert_eq 2 "$rc" &&
	mkdir -p "$VDIR/locks/read" &&
	printf "snapfs-lock 1\nexclusive 0\nrefreshed %s\nholder snapfs vault restore (pid 1, host elsewhere, boot x)\n" "$(date +%s)" \
		>"$VDIR/locks/read/0123456789abcdef0123456789abcdef" &&
	{ rc=0; "$SNAPFS" vault prune "$V" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" && assert_grep "locked by snapfs vault restore" "$REF/err" &&
	rm "$VDIR/locks/read/0123456789abcdef0123456789abcdef" &&
	"$SNAPFS" vault prune "$V" >"$REF/out" && assert_grep "pruned: 1 snapshots" "$REF/out" &&
	"$SNAPFS" vault check "$V" --read-data >"$REF/out" && assert_grep "no problems found" "$REF/out" &&
	"$SNAPFS" vault restore "$V" s7 "$TEST_TMP/q7.store" >/dev/null && restored s7 "$TEST_TMP/q7.store"
'

test_expect_success 'prune repacks a pack mostly unreferenced, keeping what a snapshot needs' '
	V2=file://$TEST_TMP/vault2 && "$SNAPFS" vault init "$V2" >/dev/null &&
	mkdir rp && head -c 6000000 /dev/urandom >rp/A && head -c 10000000 /dev/urandom >rp/B &&
	"$SNAPFS" snapshot create "$MNT" rp1 >/dev/null &&
	"$SNAPFS" vault backup "$MNT" rp1 "$V2" --pack-size 64M >/dev/null &&
	rm rp/B && "$SNAPFS" snapshot delete "$MNT" rp1 >/dev/null &&
	"$SNAPFS" snapshot create "$MNT" rp2 >/dev/null &&
	"$SNAPFS" vault backup "$MNT" rp2 "$V2" >"$REF/out" && assert_grep "(full)" "$REF/out" &&
	"$SNAPFS" vault forget "$V2" rp1 >/dev/null &&
	size0=$(du -sb "$TEST_TMP/vault2" | cut -f1) &&
	"$SNAPFS" vault prune "$V2" >"$REF/out" &&
	assert_grep "9\.[0-9]* MiB in blobs nothing refers to" "$REF/out" &&
	assert_grep "repacked: 1 " "$REF/out" &&
	test "$(du -sb "$TEST_TMP/vault2" | cut -f1)" -lt $((size0 - 9500000)) &&
	"$SNAPFS" vault check "$V2" --read-data >"$REF/out" && assert_grep "no problems found" "$REF/out" &&
	"$SNAPFS" vault restore "$V2" rp2 "$TEST_TMP/rp2.store" >/dev/null && restored rp2 "$TEST_TMP/rp2.store" &&
	rm -r rp && "$SNAPFS" snapshot delete "$MNT" rp2 >/dev/null
'

test_expect_success PYTHON 'progress (bytes, rate) shows on a terminal, and nothing of it elsewhere' '
	V2=file://$TEST_TMP/vault2 &&
	"$SNAPFS" snapshot create "$MNT" tty1 >/dev/null &&
	(unset SNAPFS_VAULT_PASSPHRASE; on_tty "$PASS" "$SNAPFS" vault backup "$MNT" tty1 "$V2") >"$REF/tty" &&
	assert_grep "backup: [0-9.]* MiB, [0-9]* files, [0-9.]* MB/s" "$REF/tty" &&
	assert_grep "backed up snapshot tty1" "$REF/tty" &&
	echo more >>mod && "$SNAPFS" snapshot create "$MNT" tty2 >/dev/null &&
	"$SNAPFS" vault backup "$MNT" tty2 "$V2" >"$REF/out" 2>"$REF/err" &&
	! test -s "$REF/err" && ! grep -q "MB/s" "$REF/out" &&
	"$SNAPFS" snapshot delete "$MNT" tty1 >/dev/null && "$SNAPFS" snapshot delete "$MNT" tty2 >/dev/null
'

# ---- s3:// against moto_server on loopback (moto.sh)

. "$TEST_DIR/moto.sh"
moto_start vaults
S3=s3://vaults/nas1/vol1

test_expect_success MOTO 's3://: a full and an incremental backup into moto restore to their source snapshots' '
	"$SNAPFS" vault init "$S3" --endpoint "$ENDPOINT" >/dev/null &&
	"$SNAPFS" vault backup "$MNT" s7 "$S3" --endpoint "$ENDPOINT" >"$REF/out" &&
	assert_grep "(full)" "$REF/out" &&
	dd if=/dev/urandom of=data20m bs=1M count=2 seek=3 conv=notrunc 2>/dev/null &&
	setfattr -n user.DOSATTRIB -v 0x21 mod &&
	"$SNAPFS" snapshot create "$MNT" s8 >/dev/null &&
	"$SNAPFS" vault backup "$MNT" s8 "$S3" --endpoint "$ENDPOINT" >"$REF/out" &&
	assert_grep "(incremental from s7)" "$REF/out" &&
	up=$(uploaded "$REF/out") && test "$up" -gt 2000000 && test "$up" -lt 2500000 &&
	"$SNAPFS" vault restore "$S3" s7 "$TEST_TMP/s3r7.store" --endpoint "$ENDPOINT" >/dev/null &&
	restored s7 "$TEST_TMP/s3r7.store" &&
	"$SNAPFS" vault restore "$S3" s8 "$TEST_TMP/s3r8.store" --endpoint "$ENDPOINT" >/dev/null &&
	restored s8 "$TEST_TMP/s3r8.store" &&
	"$SNAPFS" vault check "$S3" --read-data --endpoint "$ENDPOINT" >"$REF/out" &&
	assert_grep "no problems found" "$REF/out"
'

test_expect_success MOTO,AWSCLI 's3://: the aws CLI lists the vault'"'"'s objects and none holds plaintext' '
	aws --endpoint-url "$ENDPOINT" s3 ls "s3://vaults/nas1/vol1/" --recursive >"$REF/ls" &&
	assert_grep "nas1/vol1/config$" "$REF/ls" && assert_grep "nas1/vol1/snapshots/[0-9a-f]\{64\}$" "$REF/ls" &&
	assert_grep "nas1/vol1/data/[0-9a-f][0-9a-f]/[0-9a-f]\{64\}$" "$REF/ls" &&
	aws --endpoint-url "$ENDPOINT" s3 cp "s3://vaults/nas1/vol1" "$TEST_TMP/s3copy" --recursive >/dev/null &&
	test "$(find "$TEST_TMP/s3copy" -type f | wc -l)" -gt 5 &&
	! grep -r -a -l -F "$MARKER" "$TEST_TMP/s3copy" &&
	! grep -r -a -l -F "DOSATTRIB" "$TEST_TMP/s3copy"
'

test_expect_success MOTO 's3://: a wrong passphrase, a missing bucket and a missing snapshot are one message each, and leave no lock' '
	{ rc=0; SNAPFS_VAULT_PASSPHRASE=wrong "$SNAPFS" vault list "$S3" --endpoint "$ENDPOINT" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" && assert_grep "wrong passphrase" "$REF/err" &&
	{ rc=0; "$SNAPFS" vault backup "$MNT" nosuch "$S3" --endpoint "$ENDPOINT" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err" && assert_grep "no snapshot named nosuch" "$REF/err" &&
	{ ! test_have_prereq AWSCLI ||
	  ! aws --endpoint-url "$ENDPOINT" s3 ls "s3://vaults/nas1/vol1/locks/" --recursive | grep -q .; } &&
	{ rc=0; "$SNAPFS" vault list s3://nosuchbucket/x --endpoint "$ENDPOINT" 2>"$REF/err" || rc=$?; } &&
	assert_eq 1 "$rc" && assert_one_line "$REF/err"
'

test_expect_success 'no vault command left a lock behind' '
	! find "$VDIR/locks" "$TEST_TMP/vault2/locks" -type f | grep -q .
'

test_done
