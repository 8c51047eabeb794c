#!/bin/bash
# Vault relationships, as ONTAP's cloud backup has them: named object
# stores (checked when added, the passphrase kept 0600 and never shown,
# refused removal while used), DailyBackup and custom vault policies by
# snapshot label, several volumes protected at once, updates that back up
# only the labelled snapshots and keep a per-label history in the vault
# longer than the source's, the daemon running them when its policies
# take such a snapshot (test clock), deleting a relationship, the diff of
# two vaulted snapshots from the vault alone, a restore into another
# volume, progress only when asked off a terminal, and bad input refused
# with one message, changing nothing.  file://, and s3:// against moto.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }

export TZ=UTC SNAPFS_CONFIG_DIR=$TEST_TMP/conf
use_policy_clock '2026-12-01 12:00'
# moto first: the daemons run their updates with the credentials of the
# environment they were mounted in
. "$TEST_DIR/moto.sh"
moto_start vaults
# a server that accepts connections and never answers (an object store
# that stops answering), stopped at exit
SILENT_PID=
stop_silent() { [ -z "$SILENT_PID" ] || kill "$SILENT_PID" 2>/dev/null; return 0; }
test_at_exit stop_silent
(cd "$TEST_TMP" && exec python3 "$TEST_DIR/s3fault.py" silent >"$TEST_TMP/silent.out") &
SILENT_PID=$!
vol_create --size 1G
B=$TEST_TMP/b.store BMNT=$TEST_TMP/b.mnt
"$SNAPFS" mkfs "$B" --size 1G >/dev/null && vol_mount "$B" "$BMNT" ||
	test_bail "a second volume"

TREELIST=$TEST_DIR/treelist.py
tree() { python3 "$TREELIST" "$1" --holes; }
V=file://$TEST_TMP/vault
CONF=$SNAPFS_CONFIG_DIR/vault
PASS='vault ops passphrase 43'
printf '%s\n' "$PASS" >"$TEST_TMP/pass"
printf 'not it\n' >"$TEST_TMP/wrong"
unset SNAPFS_VAULT_PASSPHRASE
# field JSON_CMD... : run a command printing JSON, then a python expression
# over it as j: "snapfs vault relationship list --json" | jpy 'EXPR'
jpy() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
rels() { "$SNAPFS" vault relationship list --json; }
# vnames [STORE]: the names of the snapshots in the store's vault, sorted
vnames() { "$SNAPFS" vault list "${1:-nas1}" --json | jpy '" ".join(sorted(s["name"] for s in j))'; }
# refused EXIT MESSAGE COMMAND...: exits EXIT with one line of stderr
# holding MESSAGE (fixed string)
refused() {
	local want=$1 msg=$2 rc=0
	shift 2
	"$SNAPFS" "$@" >"$REF/out" 2>"$REF/err" || rc=$?
	assert_eq "$want" "$rc" "exit of $*" && assert_one_line "$REF/err" &&
	{ grep -qF -- "$msg" "$REF/err" || { say "expected: $msg" >&2; cat "$REF/err" >&2; false; }; }
}
# conf_listing: every file of the vault's config dir, with its contents
conf_listing() { (cd "$CONF" && find . -type f | sort | while read -r f; do echo "== $f"; cat "$f"; done); }

test_expect_success 'store add --init makes the vault; the passphrase is kept 0600 in a 0700 dir and never printed' '
	"$SNAPFS" vault store add nas1 "$V" --init --passphrase-file "$TEST_TMP/pass" >"$REF/out" 2>&1 &&
	assert_grep "^snapfs: added object store nas1: $V (new vault [0-9a-f]\{8\})$" "$REF/out" &&
	! grep -qF "$PASS" "$REF/out" &&
	assert_eq 700 "$(stat -c %a "$CONF")" && assert_eq 700 "$(stat -c %a "$CONF/stores")" &&
	assert_eq 600 "$(stat -c %a "$CONF/stores/nas1.pass")" &&
	assert_eq "$PASS" "$(cat "$CONF/stores/nas1.pass")" &&
	! grep -rqF "$PASS" "$CONF/stores/nas1.store" &&
	"$SNAPFS" vault store add other "$V" --passphrase-file "$TEST_TMP/pass" >"$REF/out" &&
	assert_grep "added object store other: $V (its vault" "$REF/out"
'

test_expect_success 'store add refuses a wrong passphrase file, a taken name, a bad name or target, and changes nothing' '
	conf_listing >"$REF/before" &&
	refused 1 "wrong passphrase" vault store add bad "$V" --passphrase-file "$TEST_TMP/wrong" &&
	assert_grep "the store was not added" "$REF/err" &&
	refused 1 "object store nas1 exists already ($V); nothing was changed" \
		vault store add nas1 "$V" --passphrase-file "$TEST_TMP/pass" &&
	refused 2 "store name '"'"'a/b'"'"'" vault store add a/b "$V" --passphrase-file "$TEST_TMP/pass" &&
	refused 2 "give the target as s3://BUCKET[/PREFIX] or file:///PATH" \
		vault store add x /tmp/x --passphrase-file "$TEST_TMP/pass" &&
	refused 1 "$TEST_TMP/nofile: No such file or directory" \
		vault store add y "$V" --passphrase-file "$TEST_TMP/nofile" &&
	conf_listing >"$REF/after" && assert_cmp "$REF/before" "$REF/after"
'

test_expect_success 'store list shows each store; --json gives its fields and never the passphrase' '
	"$SNAPFS" vault store list >"$REF/out" &&
	assert_grep "^nas1 .*$V .* 0$" "$REF/out" && ! grep -qF "$PASS" "$REF/out" &&
	"$SNAPFS" vault store list --json >"$REF/j" && ! grep -qF "$PASS" "$REF/j" &&
	assert_eq "nas1:$V:None:0 other:$V:None:0" \
		"$(jpy "\" \".join(\"%s:%s:%s:%d\" % (s[\"name\"], s[\"target\"], s[\"endpoint\"], s[\"relationships\"]) for s in j)" <"$REF/j")"
'

test_expect_success 'vault policies: DailyBackup is built in (daily, keep 7); custom ones by label; bad ones refused' '
	"$SNAPFS" vault policy create keep2 --rule daily=2 --rule weekly=1 >"$REF/out" &&
	assert_grep "^snapfs: created vault policy keep2: daily=2,weekly=1$" "$REF/out" &&
	"$SNAPFS" vault policy create spare --rule monthly=12 >/dev/null &&
	"$SNAPFS" vault policy list --json >"$REF/j" &&
	assert_eq "DailyBackup:True:daily=7 keep2:False:daily=2,weekly=1 spare:False:monthly=12" \
		"$(jpy "\" \".join(\"%s:%s:%s\" % (p[\"name\"], p[\"builtin\"], \",\".join(\"%s=%d\" % (r[\"label\"], r[\"keep\"]) for r in p[\"rules\"])) for p in j)" <"$REF/j")" &&
	refused 1 "vault policy DailyBackup exists already (built in)" vault policy create DailyBackup --rule daily=1 &&
	refused 2 "--rule daily: give LABEL=KEEP" vault policy create p1 --rule daily &&
	refused 2 "a label has no" vault policy create p1 --rule d.x=2 &&
	refused 1 "vault policy DailyBackup is built in and cannot be deleted" vault policy delete DailyBackup &&
	"$SNAPFS" vault policy delete spare >"$REF/out" && assert_grep "deleted vault policy spare" "$REF/out"
'

test_expect_success 'protect: an unknown store or policy, a non-volume among the volumes, or one given twice protect nothing' '
	mkdir "$TEST_TMP/plain" &&
	refused 1 "no object store named nope (see snapfs vault store list); nothing was changed" \
		vault protect "$MNT" "$BMNT" --store nope &&
	refused 1 "no vault policy named nope (DailyBackup, or one of snapfs vault policy list); nothing was changed" \
		vault protect "$MNT" --store nas1 --policy nope &&
	refused 1 "$TEST_TMP/plain: not a snapfs volume" vault protect "$MNT" "$TEST_TMP/plain" --store nas1 &&
	refused 1 "$MNT and $STORE are the same volume; nothing was changed" vault protect "$MNT" "$STORE" --store nas1 &&
	! ls "$CONF/relationships" 2>/dev/null | grep -q . &&
	refused 1 "$MNT is not protected (snapfs vault protect $MNT --store NAME); nothing was changed" vault update "$MNT"
'

test_expect_success 'protect two volumes at once; relationship list --json shows both, not yet updated' '
	"$SNAPFS" vault protect "$MNT" "$BMNT" --store nas1 --policy keep2 >"$REF/out" &&
	assert_grep "^snapfs: $MNT is protected in object store nas1, policy keep2 (daily=2,weekly=1)$" "$REF/out" &&
	assert_grep "^snapfs: $BMNT is protected in object store nas1, policy keep2" "$REF/out" &&
	refused 1 "$MNT is protected in object store nas1 already (policy keep2); nothing was changed" \
		vault protect "$MNT" --store nas1 &&
	rels >"$REF/j" &&
	assert_eq "$B nas1 keep2 uninitialized None None|$STORE nas1 keep2 uninitialized None None" \
		"$(jpy "\"|\".join(\" \".join(str(r[k]) for k in (\"source\", \"store\", \"policy\", \"state\", \"last_snapshot\", \"lag_seconds\")) for r in j)" <"$REF/j")" &&
	jpy "all(len(r[\"volume\"]) == 36 and r[\"total_bytes\"] == 0 for r in j)" <"$REF/j" | grep -qx True
'

test_expect_success 'a store or a policy in use is not removed; the message names the relationships' '
	ua=$(rels | jpy "[r[\"volume\"][:8] for r in j if r[\"source\"] == \"$STORE\"][0]") &&
	ub=$(rels | jpy "[r[\"volume\"][:8] for r in j if r[\"source\"] == \"$B\"][0]") &&
	refused 1 "object store nas1 is used by 2 relationships: $B ($ub), $STORE ($ua); delete them first (snapfs vault relationship delete VOLUME --store nas1); nothing was changed" \
		vault store remove nas1 &&
	refused 1 "vault policy keep2 is used by 2 relationships: $B ($ub), $STORE ($ua); nothing was changed" \
		vault policy delete keep2 &&
	test -f "$CONF/stores/nas1.store" && test -f "$CONF/policies/keep2.policy" &&
	refused 1 "no object store named nope" vault store remove nope &&
	"$SNAPFS" vault store remove other >"$REF/out" &&
	assert_grep "removed object store other (the vault at $V is left as it is)" "$REF/out" &&
	! test -e "$CONF/stores/other.pass"
'

test_expect_success 'update backs up only what the policy selects, the newest of each label, oldest first' '
	echo one >mod.txt && echo bye >gone.txt && echo moved >old-name &&
	"$SNAPFS" snapshot create "$MNT" daily.1 >/dev/null &&
	echo x >>mod.txt && "$SNAPFS" snapshot create "$MNT" hourly.1 >/dev/null &&
	echo y >>mod.txt && "$SNAPFS" snapshot create "$MNT" daily.2 >/dev/null &&
	"$SNAPFS" snapshot create "$MNT" weekly.1 >/dev/null &&
	echo z >>mod.txt && "$SNAPFS" snapshot create "$MNT" daily.3 >/dev/null &&
	"$SNAPFS" vault update "$MNT" >"$REF/out" 2>"$REF/err" &&
	! test -s "$REF/err" &&
	grep "^snapfs: backed up snapshot" "$REF/out" | sed "s/^snapfs: backed up snapshot \([^ ]*\) .*/\1/" >"$REF/got" &&
	printf "%s\n" daily.2 weekly.1 daily.3 >"$REF/want" && assert_cmp "$REF/want" "$REF/got" &&
	assert_grep "^snapfs: updated $STORE in object store nas1 (policy keep2): 3 snapshots backed up (.* uploaded), 0 forgotten; newest in the vault: daily.3$" "$REF/out" &&
	assert_eq "daily.2 daily.3 weekly.1" "$(vnames)" &&
	rels | jpy "[(r[\"state\"], r[\"last_snapshot\"], r[\"last_bytes\"] > 0 and r[\"total_bytes\"] == r[\"last_bytes\"], r[\"lag_seconds\"] >= 0, r[\"updates\"]) for r in j if r[\"source\"] == \"$STORE\"][0]" >"$REF/r" &&
	assert_eq "('"'"'idle'"'"', '"'"'daily.3'"'"', True, True, 1)" "$(cat "$REF/r")" &&
	"$SNAPFS" vault update "$MNT" --store nas1 >"$REF/out" &&
	assert_grep "0 snapshots backed up (0 B uploaded), 0 forgotten; newest in the vault: daily.3" "$REF/out"
'

test_expect_success 'one update per relationship: while one holds its lock, another is refused naming it, and the state is transferring' '
	ua=$(rels | jpy "[r[\"volume\"].replace(\"-\", \"\") for r in j if r[\"source\"] == \"$STORE\"][0]") &&
	lock=$CONF/relationships/$ua.nas1.lock && test -f "$lock" &&
	echo 4242 >"$lock" &&
	{ python3 -c "import fcntl, sys, time; f = open(sys.argv[1], \"r+\"); fcntl.flock(f, fcntl.LOCK_EX); time.sleep(60)" "$lock" & } &&
	holder=$! &&
	for i in $(seq 300); do
		[ "$(rels | jpy "[r[\"state\"] for r in j if r[\"source\"] == \"$STORE\"][0]")" = transferring ] && break
		sleep 0.1
	done &&
	refused 1 "an update of $STORE to object store nas1 runs already (pid 4242)" vault update "$MNT" &&
	refused 1 "an update of $MNT to object store nas1 runs (pid 4242); nothing was changed" \
		vault relationship delete "$MNT" --store nas1 &&
	kill "$holder" && { wait "$holder" 2>/dev/null || :; } &&
	assert_eq idle "$(rels | jpy "[r[\"state\"] for r in j if r[\"source\"] == \"$STORE\"][0]")"
'

test_expect_success 'vault diff of two vaulted snapshots: created, deleted, modified and renamed paths, as snapshot diff prints them' '
	echo new >new.txt && rm gone.txt && echo changed >mod.txt && mv old-name new-name &&
	"$SNAPFS" snapshot create "$MNT" daily.4 >/dev/null &&
	"$SNAPFS" vault update "$MNT" >"$REF/out" &&
	assert_grep "^snapfs: forgot snapshot daily.2 ([0-9a-f]*): policy keep2 keeps fewer of its label$" "$REF/out" &&
	"$SNAPFS" snapshot diff "$MNT" daily.3 daily.4 >"$REF/src" &&
	"$SNAPFS" vault diff nas1 daily.3 daily.4 >"$REF/vault" &&
	assert_cmp "$REF/src" "$REF/vault" &&
	printf "M\t/\n-\t/gone.txt\nM\t/mod.txt\n+\t/new.txt\nR\t/old-name -> /new-name\n" >"$REF/want" &&
	assert_cmp "$REF/want" "$REF/vault" &&
	"$SNAPFS" snapshot diff "$MNT" daily.3 daily.4 --json >"$REF/src.j" &&
	"$SNAPFS" vault diff nas1 daily.3 daily.4 --json >"$REF/vault.j" &&
	assert_cmp "$REF/src.j" "$REF/vault.j" &&
	"$SNAPFS" vault diff "$V" weekly.1 daily.4 --passphrase-file "$TEST_TMP/pass" >"$REF/v14" &&
	"$SNAPFS" snapshot diff "$MNT" weekly.1 daily.4 >"$REF/s14" && assert_cmp "$REF/s14" "$REF/v14" &&
	grep -q "^M	/mod.txt$" "$REF/v14"
'

test_expect_success 'retention in the vault: per label, a longer history than the source keeps; manual backups stay' '
	"$SNAPFS" vault backup "$MNT" hourly.1 nas1 >/dev/null &&
	for s in daily.1 daily.2 daily.3; do "$SNAPFS" snapshot delete "$MNT" $s >/dev/null || exit 1; done &&
	echo five >>mod.txt && "$SNAPFS" snapshot create "$MNT" daily.5 >/dev/null &&
	"$SNAPFS" vault update "$MNT" >"$REF/out" &&
	assert_grep "^snapfs: forgot snapshot daily.3 " "$REF/out" &&
	assert_grep "1 snapshot backed up (.*), 1 forgotten; newest in the vault: daily.5" "$REF/out" &&
	assert_eq "daily.4 daily.5 hourly.1 weekly.1" "$(vnames)" &&
	"$SNAPFS" snapshot delete "$MNT" daily.4 >/dev/null &&
	"$SNAPFS" vault diff nas1 daily.4 daily.5 >"$REF/out" &&
	assert_eq "$(printf "M\t/mod.txt")" "$(cat "$REF/out")"
'

test_expect_success 'diff refuses snapshots given twice, the newer first, or unknown, with one message' '
	refused 1 "daily.4 is given twice; give two different snapshots" vault diff nas1 daily.4 daily.4 &&
	refused 1 "daily.5 is newer than daily.4; give the older one first" vault diff nas1 daily.5 daily.4 &&
	refused 1 "nosuch" vault diff nas1 daily.4 nosuch &&
	refused 1 "nope: no object store of that name" vault diff nope daily.4 daily.5 &&
	! ls "$TMPDIR" 2>/dev/null | grep -q "snapfs-vault-diff"
'

test_expect_success 'a vaulted snapshot restored into a different volume lists as its source snapshot, attribute by attribute' '
	mkdir -p d/sub && echo a >d/a && ln d/a d/sub/a.link && ln -s ../mod.txt d/sym &&
	head -c 2000000 /dev/urandom >d/big &&
	setfattr -n user.color -v blue d/a && chmod 640 d/a && setfacl -m u:65534:r d/a &&
	truncate -s 3M d/sparse && printf x | dd of=d/sparse bs=1 seek=2000000 conv=notrunc 2>/dev/null &&
	touch -h -d "2001-02-03 04:05:06.789123456" d/sym d/a &&
	"$SNAPFS" snapshot create "$MNT" daily.6 >/dev/null &&
	"$SNAPFS" vault update "$MNT" >/dev/null &&
	"$SNAPFS" vault restore nas1 daily.6 "$TEST_TMP/r.store" >"$REF/out" 2>"$REF/err" &&
	! test -s "$REF/err" &&
	vol_mount "$TEST_TMP/r.store" "$TEST_TMP/r.mnt" &&
	tree "$MNT/.snapshot/daily.6" >"$REF/src.tree" && tree "$TEST_TMP/r.mnt" >"$REF/r.tree" &&
	vol_umount "$TEST_TMP/r.mnt" &&
	diff -u "$REF/src.tree" "$REF/r.tree" >&2 && grep -q "user.color" "$REF/r.tree"
'

test_expect_success 'progress: nothing off a terminal, lines of bytes and rate with --progress' '
	"$SNAPFS" vault restore nas1 daily.6 "$TEST_TMP/p.store" --progress >"$REF/out" 2>"$REF/err" &&
	assert_grep "^restore: [0-9.]* MiB, [0-9]* files, [0-9.]* MB/s" "$REF/err" &&
	echo more >>mod.txt && "$SNAPFS" snapshot create "$MNT" t.1 >/dev/null &&
	"$SNAPFS" vault backup "$MNT" t.1 nas1 --progress >"$REF/out" 2>"$REF/err" &&
	assert_grep "^backup: [0-9.]* MiB, [0-9]* files, [0-9.]* MB/s" "$REF/err" &&
	! grep -q "MB/s" "$REF/out" &&
	"$SNAPFS" snapshot create "$MNT" daily.6a >/dev/null &&
	"$SNAPFS" vault update "$MNT" >"$REF/out" 2>"$REF/err" && ! test -s "$REF/err" &&
	"$SNAPFS" snapshot delete "$MNT" daily.6a >/dev/null &&
	"$SNAPFS" snapshot create "$MNT" daily.6b >/dev/null &&
	"$SNAPFS" vault update "$MNT" --progress >"$REF/out" 2>"$REF/err" &&
	assert_grep "^backup daily.6b (1 of 1): [0-9.]* MiB, [0-9]* files, [0-9.]* MB/s" "$REF/err" &&
	"$SNAPFS" snapshot delete "$MNT" daily.6b >/dev/null
'

test_expect_success 'the daemon runs the update when the volume'"'"'s policy takes a snapshot the vault policy selects' '
	"$SNAPFS" policy create "$BMNT" nightly --schedule daily@00:10 --keep 3 --prefix daily >/dev/null &&
	echo b >"$BMNT/file" &&
	set_clock "2026-12-02 00:11" &&
	wait_snaps daily.2026-12-02_0010 "$BMNT" &&
	for i in $(seq 600); do
		last=$(rels | jpy "[r[\"last_snapshot\"] for r in j if r[\"source\"] == \"$B\"][0]")
		[ "$last" = daily.2026-12-02_0010 ] && break
		sleep 0.1
	done &&
	assert_eq daily.2026-12-02_0010 "$last" &&
	for i in $(seq 100); do grep -q "vault: update to object store nas1 (pid [0-9]*) ended: exit 0" "$B/daemon.log" && break; sleep 0.1; done &&
	assert_grep "vault: update to object store nas1 started (pid [0-9]*)" "$B/daemon.log" &&
	assert_grep "vault: update to object store nas1 (pid [0-9]*) ended: exit 0" "$B/daemon.log" &&
	assert_grep "backed up snapshot daily.2026-12-02_0010 of $B into nas1" "$B/daemon.log" &&
	bu=$(rels | jpy "[r[\"volume\"] for r in j if r[\"source\"] == \"$B\"][0]") &&
	"$SNAPFS" vault list nas1 --json | jpy "[s[\"volume\"] for s in j if s[\"name\"] == \"daily.2026-12-02_0010\"][0]" >"$REF/u" &&
	assert_eq "$bu" "$(cat "$REF/u")" &&
	"$SNAPFS" policy create "$BMNT" hours --schedule hourly --keep 2 --prefix hourly >/dev/null &&
	set_clock "2026-12-02 05:01" &&
	wait_snaps "daily.2026-12-02_0010 hourly.2026-12-02_0500" "$BMNT" &&
	set_clock "2026-12-03 00:11" &&
	for i in $(seq 300); do snaps "$BMNT" | grep -q "daily.2026-12-03_0010" && break; sleep 0.1; done &&
	snaps "$BMNT" | grep -q "hourly.2026-12-03_0000" &&
	for i in $(seq 600); do
		[ "$(grep -c "vault: update to object store nas1 (pid [0-9]*) ended: exit 0" "$B/daemon.log")" = 2 ] && break
		sleep 0.1
	done &&
	assert_eq 2 "$(grep -c "vault: update to object store nas1 started" "$B/daemon.log")" "updates started: the hourly one started none" &&
	assert_eq 2 "$(grep -c "vault: update to object store nas1 (pid [0-9]*) ended: exit 0" "$B/daemon.log")" &&
	assert_grep "backed up snapshot daily.2026-12-03_0010 of $B into nas1" "$B/daemon.log" &&
	! grep -q "backed up snapshot hourly" "$B/daemon.log"
'

test_expect_success 'a wrong passphrase in the store'"'"'s file fails the update: recorded as failed, the vault unchanged' '
	cp "$CONF/stores/nas1.pass" "$TEST_TMP/saved" && cp "$TEST_TMP/wrong" "$CONF/stores/nas1.pass" &&
	echo w >>mod.txt && "$SNAPFS" snapshot create "$MNT" daily.7 >/dev/null &&
	refused 1 "wrong passphrase" vault update "$MNT" &&
	rels | jpy "[(r[\"state\"], \"wrong passphrase\" in r[\"error\"]) for r in j if r[\"source\"] == \"$STORE\"][0]" >"$REF/r" &&
	assert_eq "('"'"'failed'"'"', True)" "$(cat "$REF/r")" &&
	cp "$TEST_TMP/saved" "$CONF/stores/nas1.pass" &&
	! vnames | grep -q daily.7 &&
	"$SNAPFS" vault update "$MNT" >/dev/null && vnames | grep -q daily.7 &&
	assert_eq idle "$(rels | jpy "[r[\"state\"] for r in j if r[\"source\"] == \"$STORE\"][0]")"
'

test_expect_success 'relationship delete keeps the vaulted snapshots; then the volume is not protected' '
	refused 1 "$BMNT is not protected in object store nope" vault relationship delete "$BMNT" --store nope &&
	"$SNAPFS" vault relationship delete "$BMNT" --store nas1 >"$REF/out" &&
	assert_grep "^snapfs: deleted the relationship of $B with object store nas1$" "$REF/out" &&
	assert_grep "its vaulted snapshots stay in the store" "$REF/out" &&
	vnames | grep -q daily.2026-12-03_0010 &&
	assert_eq "$STORE" "$(rels | jpy "\" \".join(r[\"source\"] for r in j)")" &&
	refused 1 "$BMNT is not protected (snapfs vault protect $BMNT --store NAME); nothing was changed" vault update "$BMNT" &&
	"$SNAPFS" vault policy create gone --rule daily=1 >/dev/null && "$SNAPFS" vault policy delete gone >/dev/null
'

test_expect_success 'policy run of an unmounted volume (a timer'"'"'s) updates its relationships after the snapshots it takes; a volume gone is unprotected by its path' '
	C=$TEST_TMP/c.store &&
	"$SNAPFS" mkfs "$C" --size 1G >/dev/null &&
	"$SNAPFS" vault protect "$C" --store nas1 >/dev/null &&
	"$SNAPFS" policy create "$C" nightly --schedule daily@00:10 --keep 2 --prefix daily --now "2027-01-01 12:00" >/dev/null &&
	"$SNAPFS" policy create "$C" hours --schedule hourly --keep 2 --prefix hourly --now "2027-01-01 12:00" >/dev/null &&
	"$SNAPFS" policy run "$C" --now "2027-01-01 13:01" >"$REF/out" &&
	assert_grep "created snapshot hourly.2027-01-01_1300" "$REF/out" && ! grep -q "backed up" "$REF/out" &&
	"$SNAPFS" policy run "$C" --now "2027-01-02 00:11" >"$REF/out" &&
	assert_grep "^snapfs: policy nightly: created snapshot daily.2027-01-02_0010$" "$REF/out" &&
	assert_grep "^snapfs: backed up snapshot daily.2027-01-02_0010 of $C into nas1 as [0-9a-f]* (full)$" "$REF/out" &&
	assert_grep "^snapfs: updated $C in object store nas1 (policy DailyBackup): 1 snapshot backed up" "$REF/out" &&
	vnames | grep -q "daily.2027-01-02_0010" && ! vnames | grep -q "hourly.2027" &&
	rm -r "$C" &&
	"$SNAPFS" vault relationship delete "$C" --store nas1 >"$REF/out" &&
	assert_grep "^snapfs: deleted the relationship of $C with object store nas1$" "$REF/out" &&
	vnames | grep -q "daily.2027-01-02_0010"
'

test_expect_success MOTO 's3://: a store on moto, a volume protected with DailyBackup; an update without --store updates each of its relationships' '
	"$SNAPFS" vault store add s3 s3://vaults/t43 --endpoint "$ENDPOINT" --region us-east-1 --init \
		--passphrase-file "$TEST_TMP/pass" >"$REF/out" &&
	assert_grep "added object store s3: s3://vaults/t43 (new vault" "$REF/out" &&
	"$SNAPFS" vault store list --json | jpy "[(s[\"endpoint\"], s[\"region\"]) for s in j if s[\"name\"] == \"s3\"][0]" >"$REF/s" &&
	assert_eq "('"'"'$ENDPOINT'"'"', '"'"'us-east-1'"'"')" "$(cat "$REF/s")" &&
	"$SNAPFS" vault protect "$MNT" --store s3 >"$REF/out" &&
	assert_grep "policy DailyBackup (daily=7)" "$REF/out" &&
	"$SNAPFS" vault update "$MNT" >"$REF/out" &&
	assert_grep "^snapfs: updated $STORE in object store nas1 (policy keep2): 0 snapshots backed up" "$REF/out" &&
	assert_grep "^snapfs: updated $STORE in object store s3 (policy DailyBackup): 3 snapshots backed up" "$REF/out" &&
	assert_grep "backed up snapshot daily.5 " "$REF/out" && assert_grep "backed up snapshot daily.7 " "$REF/out" &&
	! grep -q "weekly.1\|hourly.1\|t.1" "$REF/out" &&
	assert_eq "daily.5 daily.6 daily.7" "$(vnames s3)" &&
	"$SNAPFS" vault diff s3 daily.5 daily.6 >"$REF/v" && "$SNAPFS" snapshot diff "$MNT" daily.5 daily.6 >"$REF/s" &&
	assert_cmp "$REF/s" "$REF/v"
'

test_expect_success MOTO 'relationship delete --forget forgets the volume'"'"'s snapshots in that store only' '
	"$SNAPFS" vault relationship delete "$MNT" --store s3 --forget >"$REF/out" &&
	assert_grep "forgot its 3 vaulted snapshots; their data stays until snapfs vault prune s3" "$REF/out" &&
	assert_eq "" "$(vnames s3)" && vnames | grep -q daily.7 &&
	assert_eq "$STORE" "$(rels | jpy "\" \".join(r[\"source\"] for r in j)")"
'

test_expect_success MOTO 'an update stuck on a store that stops answering blocks neither clients nor policies, and unmount stops it' '
	"$SNAPFS" vault store add hang s3://vaults/hang --endpoint "$ENDPOINT" --init \
		--passphrase-file "$TEST_TMP/pass" >/dev/null &&
	"$SNAPFS" vault protect "$BMNT" --store hang >/dev/null &&
	for i in $(seq 100); do port=$(head -1 "$TEST_TMP/silent.out"); [ -n "$port" ] && break; sleep 0.1; done &&
	test -n "$port" &&
	sed -i "s|^endpoint=.*|endpoint=http://127.0.0.1:$port|" "$CONF/stores/hang.store" &&
	set_clock "2026-12-04 00:11" &&
	for i in $(seq 300); do grep -q "vault: update to object store hang started" "$B/daemon.log" && break; sleep 0.1; done &&
	assert_grep "vault: update to object store hang started" "$B/daemon.log" &&
	set_clock "2026-12-04 01:01" &&
	for i in $(seq 300); do snaps "$BMNT" | grep -q "hourly.2026-12-04_0100" && break; sleep 0.1; done &&
	snaps "$BMNT" | grep -q "hourly.2026-12-04_0100" &&
	echo still >"$BMNT/written" && assert_eq still "$(cat "$BMNT/written")" &&
	! grep -q "vault: update to object store hang (pid [0-9]*) ended" "$B/daemon.log" &&
	start=$(date +%s) && vol_umount "$BMNT" && end=$(date +%s) &&
	assert_le $((end - start)) 20 "seconds to unmount" &&
	assert_grep "vault: update to object store hang (pid [0-9]*) ended: \(signal 15\|exit 1\)" "$B/daemon.log" &&
	"$SNAPFS" vault relationship delete "$B" --store hang >/dev/null
'

test_expect_success 'no command left a vault lock or an update lock held' '
	! find "$TEST_TMP/vault/locks" -type f 2>/dev/null | grep -q . &&
	assert_eq True "$(rels | jpy "all(r[\"state\"] == \"idle\" for r in j) and len(j) >= 1")" &&
	! find "$CONF/relationships" -name "*.new*" | grep -q .
'

test_done
