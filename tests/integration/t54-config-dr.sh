#!/bin/bash
# Configuration backup and DR: `config export` of a host with a mirror
# relationship, a peer it connects to, a peer that connects to it (with a
# grant and the fingerprints of their keys), a vault
# store, policy and relationship and an NDMP user names them all and holds
# none of their secrets; --with-secrets seals the secrets under a
# passphrase (none readable in the file); `config import` on a second host
# (another SNAPFS_CONFIG_DIR and mirror registry) lists each item as it
# would create it and changes nothing, --apply makes the second host's
# records the same as the first's (keys, passphrase and password
# included), after which every item is unchanged; a changed address is
# changed with the key kept, a vault policy's rules changed; a key that is not the one the file's
# fingerprint names is refused; --json reports the same; a file without the
# secrets, a wrong passphrase, a newer version, an unknown key and a
# relationship naming a missing volume are refused with one message and
# nothing changed; a consistency group travels as its members.  A mirror
# relationship --with-config carries the
# source's settings, policies and qtrees: the destination shows none of
# them while it follows, and all of them once broken off, whether by
# mirror break, by a test failover's clone or by `plan run`; to a TLS peer
# on loopback (and through a --via command) the configuration travels with
# each transfer, is kept on the peer's host without hooks or secrets, and
# a test failover and a break there apply it; a peer without the receive
# grant for a volume is refused, and a granted one cannot slip host
# records, hooks or another volume's configuration in.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
test_have_prereq PYTHON || { say "# skipping: needs python3"; test_done; }

HA=$TEST_TMP/hostA HB=$TEST_TMP/hostB
A=$TEST_TMP/a.store B=$TEST_TMP/b.store C=$TEST_TMP/c.store
mkdir -p "$HA" "$HB"
for s in "$A" "$B" "$C"; do
	"$SNAPFS" mkfs "$s" --size 256M >/dev/null || test_bail "cannot make $s"
done
# on HOST (hostA or hostB): the command, with that host's records
on() { h=$1; shift; SNAPFS_CONFIG_DIR=$TEST_TMP/$h/config SNAPFS_MIRROR_DIR=$TEST_TMP/$h/mirrors "$@"; }
# records HOST: every file of the host's records with its contents' hash
records() { (cd "$TEST_TMP/$1" && find . -type f ! -name "*.lock" -print0 | sort -z | xargs -0r sha256sum); }
# conf VOL: its policies, qtrees and snapdir, as one comparable text
conf() {
	{ "$SNAPFS" policy list "$1" --json | python3 -c "
import json,sys
for p in json.load(sys.stdin): print(p['name'], p['schedule'], p['keep'], p['prefix'])"
	  "$SNAPFS" qtree list "$1" --json | python3 -c "
import json,sys
for q in json.load(sys.stdin): print(q['name'], q['security_style'], q['quota_bytes'])"
	  "$SNAPFS" get "$1" snapdir; } 2>&1
}
echo "config-secret-pass" >"$TEST_TMP/cpass"
echo "vault-pass-4711" >"$TEST_TMP/vpass"

test_expect_success 'set up host A: a mirror relationship, two peers and a grant, a vault store, policy and relationship, an NDMP user' '
	on hostA "$SNAPFS" peer passphrase west >"$TEST_TMP/west.pass" 2>/dev/null &&
	on hostA "$SNAPFS" peer create east 127.0.0.1:7000 --passphrase-file "$TEST_TMP/west.pass" >/dev/null &&
	on hostA "$SNAPFS" peer allow west send "$A" >/dev/null &&
	on hostA "$SNAPFS" vault store add s1 "file://$TEST_TMP/vault" --passphrase-file "$TEST_TMP/vpass" --init >/dev/null &&
	on hostA "$SNAPFS" vault policy create weekly --rule weekly=4 >/dev/null &&
	on hostA "$SNAPFS" vault protect "$A" --store s1 --policy weekly >/dev/null &&
	on hostA "$SNAPFS" ndmp password bob >"$TEST_TMP/bob.pw" 2>/dev/null &&
	on hostA "$SNAPFS" mirror create "$A" "$B" --schedule hourly >/dev/null &&
	test -s "$TEST_TMP/west.pass" && test -s "$TEST_TMP/bob.pw"
'

# the secrets of host A, one a line: the peer passphrase, the keys, the
# vault passphrase, the NDMP password
secrets() {
	cat "$TEST_TMP/west.pass" "$TEST_TMP/vpass" "$TEST_TMP/bob.pw" "$HA/config/clients/west.key"
	sed -n "s/^key //p" "$HA/config/east.peer"
	cut -d" " -f2 "$HA/config/ndmp.users"
}

test_expect_success 'export names each of them and holds none of their secrets' '
	on hostA "$SNAPFS" config export "$A" >"$REF/plain.json" &&
	python3 -c "
import hashlib, json
d = json.load(open(\"$REF/plain.json\"))
assert d[\"snapfs_config\"] == 2, d
assert \"secrets\" not in d, d
m, = d[\"mirrors\"]
assert (m[\"source\"], m[\"destination\"], m[\"schedule\"], m[\"with_config\"]) == (\"$A\", \"$B\", \"hourly\", False), m
fp = hashlib.sha256(bytes.fromhex(open(\"$HA/config/clients/west.key\").read().strip())).hexdigest()[:16]
assert d[\"peers\"] == [{\"name\": \"east\", \"address\": \"127.0.0.1:7000\", \"fingerprint\": fp}], d
assert d[\"peer_clients\"] == [{\"name\": \"west\", \"fingerprint\": fp}], d
assert d[\"peer_grants\"] == [{\"peer\": \"west\", \"op\": \"send\", \"volume\": \"$A\"}], d
v = d[\"vault\"]
assert v[\"stores\"] == [{\"name\": \"s1\", \"target\": \"file://$TEST_TMP/vault\", \"endpoint\": \"\", \"region\": \"\", \"profile\": \"\"}], v
assert v[\"policies\"] == [{\"name\": \"weekly\", \"keep\": {\"weekly\": 4}}], v
assert v[\"relationships\"] == [{\"volume\": \"$A\", \"store\": \"s1\", \"policy\": \"weekly\"}], v
assert d[\"ndmp_users\"] == [{\"name\": \"bob\"}], d" &&
	secrets >"$REF/secrets" && test $(wc -l <"$REF/secrets") -eq 6 &&
	while read -r s; do
		test -n "$s" && ! grep -qiF "$s" "$REF/plain.json" || { echo "secret in the file: $s"; exit 1; }
	done <"$REF/secrets"
'

test_expect_success '--with-secrets seals them: the file has a sealed part and still none of them readable' '
	on hostA "$SNAPFS" config export "$A" --with-secrets --passphrase-file "$TEST_TMP/cpass" >"$REF/sealed.json" &&
	python3 -c "
import json
s = json.load(open(\"$REF/sealed.json\"))[\"secrets\"]
assert (s[\"kdf\"], s[\"cipher\"]) == (\"scrypt\", \"aes-256-gcm\"), s
assert len(s[\"sealed\"]) > 200, s" &&
	while read -r s; do
		! grep -qiF "$s" "$REF/sealed.json" || { echo "secret in the file: $s"; exit 1; }
	done <"$REF/secrets" &&
	assert_fails "$SNAPFS" config export "$A" --passphrase-file "$TEST_TMP/cpass" 2>"$REF/err" &&
	assert_grep "give --with-secrets too" "$REF/err"
'

test_expect_success 'import on host B is a dry run listing each item it would create, and changes nothing' '
	records hostB >"$REF/b.before" &&
	on hostB "$SNAPFS" config import "$REF/sealed.json" --passphrase-file "$TEST_TMP/cpass" >"$REF/out" &&
	cat "$REF/out" &&
	assert_grep "^host: create peer east (127.0.0.1:7000)$" "$REF/out" &&
	assert_grep "^host: create peer client west$" "$REF/out" &&
	assert_grep "^host: create peer grant west send $A$" "$REF/out" &&
	assert_grep "^host: create vault store s1 (file://$TEST_TMP/vault)$" "$REF/out" &&
	assert_grep "^host: create vault policy weekly (weekly=4)$" "$REF/out" &&
	assert_grep "^host: create vault relationship $A -> s1 (policy weekly)$" "$REF/out" &&
	assert_grep "^host: create mirror $A -> $B (policy mirror)$" "$REF/out" &&
	assert_grep "^host: create ndmp user bob$" "$REF/out" &&
	assert_grep "^snapfs config import: 8 to create, 0 to change, 5 unchanged, 0 refused (a dry run" "$REF/out" &&
	records hostB >"$REF/b.after" &&
	assert_cmp "$REF/b.before" "$REF/b.after" &&
	test ! -e "$HB/config" && test ! -e "$HB/mirrors"
'

test_expect_success 'the same file read without its passphrase, with a wrong one or with one sealed byte altered is refused, nothing changed' '
	echo "not the passphrase" >"$TEST_TMP/wrong" &&
	assert_fails on hostB "$SNAPFS" config import "$REF/sealed.json" --passphrase-file "$TEST_TMP/wrong" --apply 2>"$REF/err" &&
	assert_eq "snapfs config import: $REF/sealed.json: secrets: a wrong passphrase (or the sealed secrets were altered); nothing changed" "$(cat "$REF/err")" &&
	python3 -c "
import json
d = json.load(open(\"$REF/sealed.json\"))
h = d[\"secrets\"][\"sealed\"]; i = len(h) // 2
d[\"secrets\"][\"sealed\"] = h[:i] + (\"0\" if h[i] != \"0\" else \"1\") + h[i + 1:]
json.dump(d, open(\"$REF/flipped.json\", \"w\"))" &&
	assert_fails on hostB "$SNAPFS" config import "$REF/flipped.json" --passphrase-file "$TEST_TMP/cpass" --apply 2>"$REF/err" &&
	assert_eq "snapfs config import: $REF/flipped.json: secrets: a wrong passphrase (or the sealed secrets were altered); nothing changed" "$(cat "$REF/err")" &&
	assert_fails on hostB env -u SNAPFS_CONFIG_PASSPHRASE setsid "$SNAPFS" config import "$REF/sealed.json" --apply </dev/null 2>"$REF/err" &&
	assert_one_line "$REF/err" &&
	assert_grep "no passphrase: give --passphrase-file FILE or set SNAPFS_CONFIG_PASSPHRASE" "$REF/err" &&
	records hostB >"$REF/b.after" &&
	assert_cmp "$REF/b.before" "$REF/b.after"
'

test_expect_success '--apply (passphrase from SNAPFS_CONFIG_PASSPHRASE) gives host B the same records, keys, passphrase and password' '
	SNAPFS_CONFIG_PASSPHRASE=config-secret-pass on hostB "$SNAPFS" config import "$REF/sealed.json" --apply >"$REF/out" &&
	assert_grep "^snapfs config import: host: created peer east (127.0.0.1:7000)$" "$REF/out" &&
	assert_grep "^snapfs config import: host: created ndmp user bob$" "$REF/out" &&
	for f in east.peer clients/west.key grants ndmp.users vault/stores/s1.store vault/stores/s1.pass \
		vault/policies/weekly.policy; do
		test -f "$HB/config/$f" || { echo "missing $f"; exit 1; }
		test "$f" = vault/stores/s1.store || cmp "$HA/config/$f" "$HB/config/$f" || exit 1
	done &&
	assert_stat "$HB/config/east.peer" "%a" 600 &&
	assert_stat "$HB/config/vault/stores/s1.pass" "%a" 600 &&
	cmp "$HA/mirrors/$(cd "$HA/mirrors" && ls *.mirror)" "$HB/mirrors/$(cd "$HB/mirrors" && ls *.mirror)" &&
	on hostA "$SNAPFS" vault relationship list --json >"$REF/rel.a" &&
	on hostB "$SNAPFS" vault relationship list --json >"$REF/rel.b" &&
	python3 -c "
import json
a = json.load(open(\"$REF/rel.a\")); b = json.load(open(\"$REF/rel.b\"))
key = lambda l: [(r[\"source\"], r[\"store\"], r[\"policy\"]) for r in l]
assert key(a) == key(b) and len(a) == 1, (a, b)" &&
	on hostB "$SNAPFS" mirror show "$B" --json >"$REF/m.b" &&
	assert_grep "\"source\": \"$A\"" "$REF/m.b" &&
	on hostB "$SNAPFS" vault store list >"$REF/stores" &&
	assert_grep "^s1 " "$REF/stores"
'

test_expect_success 'a second import finds every item unchanged (--json reports the same)' '
	on hostB "$SNAPFS" config import "$REF/sealed.json" --passphrase-file "$TEST_TMP/cpass" --json >"$REF/again.json" &&
	python3 -c "
import json
d = json.load(open(\"$REF/again.json\"))
assert d[\"dry_run\"] is True and (d[\"create\"], d[\"change\"], d[\"unchanged\"], d[\"refused\"]) == (0, 0, 13, 0), d
acts = {(i[\"target\"], i[\"action\"], i[\"item\"]) for i in d[\"items\"]}
assert (\"host\", \"unchanged\", \"peer east (127.0.0.1:7000)\") in acts, acts
assert (\"host\", \"unchanged\", \"ndmp user bob\") in acts, acts
assert (\"$A\", \"unchanged\", \"setting snapdir: visible\") in acts, acts"
'

test_expect_success 'a peer whose address differs and a vault policy whose rules differ are changed (the key kept); --json of --apply prints only the report' '
	sed -e "s/127.0.0.1:7000/127.0.0.1:7001/" -e "s/\"weekly\": 4/\"weekly\": 5/" "$REF/plain.json" >"$REF/moved.json" &&
	on hostB "$SNAPFS" config import "$REF/moved.json" --apply --json >"$REF/moved.out" &&
	python3 -c "
import json
d = json.load(open(\"$REF/moved.out\"))
assert d[\"dry_run\"] is False and d[\"change\"] == 2 and d[\"refused\"] == 0, d
c = sorted(i[\"item\"] for i in d[\"items\"] if i[\"action\"] == \"change\")
assert c == [\"peer east (127.0.0.1:7001)\", \"vault policy weekly (weekly=5)\"], c" &&
	on hostB "$SNAPFS" vault policy list >"$REF/pol" &&
	assert_grep "^weekly .*weekly=5" "$REF/pol" &&
	assert_grep "^address 127.0.0.1:7001$" "$HB/config/east.peer" &&
	assert_eq "$(sed -n "s/^key //p" "$HA/config/east.peer")" "$(sed -n "s/^key //p" "$HB/config/east.peer")"
'

test_expect_success 'without the secrets, a key here that is not the one the file'"'"'s fingerprint names is refused' '
	on hostB "$SNAPFS" peer passphrase west >/dev/null 2>&1 &&
	records hostB >"$REF/b.before" &&
	fp=$(sha256sum <"$HA/config/clients/west.key" | cut -c1-16) &&
	assert_fails on hostB "$SNAPFS" config import "$REF/plain.json" --apply >"$REF/out" 2>"$REF/err" &&
	assert_grep "^host: refused: peer client west: this host holds another key for it (fingerprint [0-9a-f]\{16\}, the file.s [0-9a-f]\{16\}); export with --with-secrets to replace it$" "$REF/out" &&
	assert_grep "^host: change peer east (127.0.0.1:7000)$" "$REF/out" &&
	assert_grep "1 item refused: nothing applied" "$REF/err" &&
	records hostB >"$REF/b.after" &&
	assert_cmp "$REF/b.before" "$REF/b.after" &&
	SNAPFS_CONFIG_PASSPHRASE=config-secret-pass on hostB "$SNAPFS" config import "$REF/sealed.json" --apply >"$REF/out" &&
	assert_grep "^snapfs config import: host: changed peer client west$" "$REF/out" &&
	cmp "$HA/config/clients/west.key" "$HB/config/clients/west.key"
'

test_expect_success 'without the secrets, what a new host lacks and needs a secret for is refused with why, and nothing applied' '
	on hostC "$SNAPFS" config import "$REF/plain.json" >"$REF/out" &&
	assert_grep "^host: refused: peer east (127.0.0.1:7000): its key is not in the file (export with --with-secrets, or snapfs peer create east here)$" "$REF/out" &&
	assert_grep "^host: refused: peer client west: its key is not in the file" "$REF/out" &&
	assert_grep "^host: refused: vault store s1 (file://$TEST_TMP/vault): its passphrase is not in the file" "$REF/out" &&
	assert_grep "^host: refused: ndmp user bob: its password is not in the file" "$REF/out" &&
	assert_grep "^host: create vault relationship $A -> s1 (policy weekly)$" "$REF/out" &&
	assert_grep "^host: create peer grant west send $A$" "$REF/out" &&
	assert_grep "^snapfs config import: 4 to create, 0 to change, 5 unchanged, 4 refused" "$REF/out" &&
	assert_fails on hostC "$SNAPFS" config import "$REF/plain.json" --apply >/dev/null 2>"$REF/err" &&
	assert_eq "snapfs config import: $REF/plain.json: 4 items refused: nothing applied" "$(cat "$REF/err")" &&
	test ! -e "$TEST_TMP/hostC"
'

test_expect_success 'a relationship naming a missing volume, a newer version and an unknown key: one message each, host B unchanged' '
	records hostB >"$REF/b.before" &&
	sed "s|\"destination\": \"$B\"|\"destination\": \"$TEST_TMP/gone.store\"|" "$REF/sealed.json" >"$REF/gone.json" &&
	assert_fails on hostB "$SNAPFS" config import "$REF/gone.json" --passphrase-file "$TEST_TMP/cpass" --apply >"$REF/out" 2>"$REF/err" &&
	assert_grep "^host: refused: mirror $A -> $TEST_TMP/gone.store (policy mirror): no destination volume $TEST_TMP/gone.store here: " "$REF/out" &&
	assert_eq "snapfs config import: $REF/gone.json: 1 item refused: nothing applied" "$(cat "$REF/err")" &&
	sed "s/\"snapfs_config\": 2/\"snapfs_config\": 3/" "$REF/sealed.json" >"$REF/v3.json" &&
	assert_fails on hostB "$SNAPFS" config import "$REF/v3.json" --passphrase-file "$TEST_TMP/cpass" --apply 2>"$REF/err" &&
	assert_eq "snapfs config import: $REF/v3.json: the file is configuration version 3, newer than the version 2 this snapfs reads; use a newer snapfs; nothing changed" "$(cat "$REF/err")" &&
	sed "s/\"schedule\": \"hourly\",/\"schedule\": \"hourly\", \"colour\": \"red\",/" "$REF/sealed.json" >"$REF/uk.json" &&
	assert_fails on hostB "$SNAPFS" config import "$REF/uk.json" --passphrase-file "$TEST_TMP/cpass" --apply 2>"$REF/err" &&
	assert_eq "snapfs config import: $REF/uk.json: the file.mirrors[0]: unknown key '"'"'colour'"'"' (this snapfs reads configuration version 2); nothing changed" "$(cat "$REF/err")" &&
	records hostB >"$REF/b.after" &&
	assert_cmp "$REF/b.before" "$REF/b.after"
'

test_expect_success 'mirror --with-config: the source'"'"'s policies and settings are not on the destination while it follows (its qtrees come with the data)' '
	"$SNAPFS" set "$A" snapdir=hidden >/dev/null &&
	"$SNAPFS" policy create "$A" nightly --schedule daily@01:00 --keep 7 >/dev/null &&
	"$SNAPFS" qtree create "$A" proj --quota 100M --security-style ntfs >/dev/null &&
	on hostA "$SNAPFS" mirror delete "$B" >/dev/null &&
	on hostA "$SNAPFS" mirror create "$A" "$B" --with-config >"$REF/out" &&
	assert_grep "(policy mirror, with its configuration)" "$REF/out" &&
	on hostA "$SNAPFS" mirror initialize "$B" >/dev/null &&
	conf "$A" >"$REF/a.conf" &&
	conf "$B" >"$REF/b.conf" &&
	cat "$REF/b.conf" &&
	grep -q "^nightly " "$REF/a.conf" && ! grep -q "^nightly " "$REF/b.conf" &&
	assert_eq visible "$("$SNAPFS" get "$B" snapdir)" &&
	on hostA "$SNAPFS" mirror show "$B" >"$REF/show" &&
	assert_grep "^Configuration: *carried with the data" "$REF/show"
'

test_expect_success 'a test failover'"'"'s clone shows the source'"'"'s settings, policies and qtrees' '
	on hostA "$SNAPFS" mirror test-failover "$B" --to "$TEST_TMP/b.clone" >"$REF/out" &&
	assert_grep "the configuration of $A applied" "$REF/out" &&
	conf "$TEST_TMP/b.clone" >"$REF/clone.conf" &&
	assert_cmp "$REF/a.conf" "$REF/clone.conf" &&
	on hostA "$SNAPFS" mirror test-cleanup "$B" >/dev/null
'

test_expect_success 'the configuration travels with each update: after break the destination shows the source'"'"'s as of the last transfer' '
	"$SNAPFS" policy modify "$A" nightly --keep 5 >/dev/null &&
	"$SNAPFS" qtree create "$A" docs --security-style mixed >/dev/null &&
	on hostA "$SNAPFS" mirror update "$B" >/dev/null &&
	"$SNAPFS" policy create "$A" late --schedule hourly --keep 1 >/dev/null &&
	conf "$A" | grep -v "^late " >"$REF/a.conf" &&
	on hostA "$SNAPFS" mirror break "$B" >"$REF/out" &&
	assert_grep "^snapfs mirror: $B: the configuration of $A applied" "$REF/out" &&
	conf "$B" >"$REF/b.conf" &&
	assert_cmp "$REF/a.conf" "$REF/b.conf" &&
	grep -q "^nightly daily@01:00 5 nightly$" "$REF/b.conf" &&
	grep -q "^docs mixed 0$" "$REF/b.conf" &&
	grep -q "^hidden$" "$REF/b.conf"
'

test_expect_success 'plan run activates a --with-config destination with the source'"'"'s configuration' '
	on hostA "$SNAPFS" mirror create "$A" "$C" --with-config >/dev/null &&
	on hostA "$SNAPFS" mirror initialize "$C" >/dev/null &&
	on hostA "$SNAPFS" plan create dr --step "$C" >/dev/null &&
	"$SNAPFS" set "$A" snapdir=disabled >/dev/null &&
	on hostA "$SNAPFS" mirror update "$C" >/dev/null &&
	assert_eq visible "$("$SNAPFS" get "$C" snapdir)" &&
	on hostA "$SNAPFS" plan run dr --disaster >"$REF/out" &&
	assert_eq disabled "$("$SNAPFS" get "$C" snapdir)" &&
	conf "$A" >"$REF/a.conf" && conf "$C" >"$REF/c.conf" &&
	assert_cmp "$REF/a.conf" "$REF/c.conf"
'

# To a peer: host P (its own config dir and mirror registry) serves host A
# over TLS on loopback and grants A (its peer "prod") receive into PD only.
HP=$TEST_TMP/hostP S=$TEST_TMP/s.store PD=$TEST_TMP/pd.store PX=$TEST_TMP/px.store
stop_peer() { [ -s "$HP/config/serve.pid" ] && kill -TERM "$(cat "$HP/config/serve.pid")" 2>/dev/null; return 0; }
test_at_exit stop_peer
# the carried document host P keeps for its volume STORE (none: nothing)
kept() { cat "$HP/mirrors/$(printf %s "$1" | sha256sum | cut -c1-16).config" 2>/dev/null; }

test_expect_success 'set up host P serving host A over TLS, granting it receive into one volume' '
	for s in "$S" "$PD" "$PX"; do "$SNAPFS" mkfs "$s" --size 256M >/dev/null || exit 1; done &&
	"$SNAPFS" set "$S" snapdir=hidden >/dev/null &&
	"$SNAPFS" policy create "$S" nightly --schedule daily@02:00 --keep 6 --pre "echo pre-secret-hook" >/dev/null &&
	"$SNAPFS" qtree create "$S" eng --quota 50M --security-style ntfs >/dev/null &&
	on hostP "$SNAPFS" peer passphrase prod >"$TEST_TMP/prod.pass" 2>/dev/null &&
	on hostP "$SNAPFS" peer allow prod receive "$PD" >/dev/null &&
	port=$(export SNAPFS_MIRROR_DIR=$HP/mirrors; peer_server_start "$HP/config" hostP) &&
	test -n "$port" &&
	on hostA "$SNAPFS" peer create dr "127.0.0.1:$port" --passphrase-file "$TEST_TMP/prod.pass" >/dev/null
'

test_expect_success 'mirror --with-config to a peer: the configuration travels with each transfer and host P keeps it, without hooks or secrets; the destination shows none of it while it follows' '
	on hostA "$SNAPFS" mirror create "$S" "dr:$PD" --with-config >"$REF/out" &&
	assert_grep "(policy mirror, with its configuration)" "$REF/out" &&
	on hostA "$SNAPFS" mirror initialize "dr:$PD" >/dev/null &&
	kept "$PD" >"$REF/kept.json" &&
	python3 -c "
import json
d = json.load(open(\"$REF/kept.json\"))
assert sorted(d) == [\"snapfs_config\", \"volumes\"], d
v, = d[\"volumes\"]
assert v[\"settings\"][\"snapdir\"] == \"hidden\", v
p, = v[\"policies\"]
assert (p[\"name\"], p[\"keep\"]) == (\"nightly\", 6) and \"hooks\" not in p, p
assert [q[\"name\"] for q in v[\"qtrees\"]] == [\"eng\"], v" &&
	assert_stat "$(ls "$HP"/mirrors/*.config)" "%a" 600 &&
	{ cat "$TEST_TMP/prod.pass" "$HP/config/clients/prod.key"; sed -n "s/^key //p" "$HA/config/dr.peer"; echo pre-secret-hook; } >"$REF/secrets" &&
	test $(grep -c . "$REF/secrets") -eq 4 &&
	while read -r s; do
		! grep -qiF "$s" "$REF/kept.json" || { echo "secret in the file: $s"; exit 1; }
	done <"$REF/secrets" &&
	assert_eq visible "$("$SNAPFS" get "$PD" snapdir)" &&
	! conf "$PD" | grep -q "^nightly "
'

test_expect_success 'on host P, a test failover'"'"'s clone and a break show the source'"'"'s policies, qtrees and snapdir as of the last transfer' '
	"$SNAPFS" policy modify "$S" nightly --keep 4 >/dev/null &&
	"$SNAPFS" qtree create "$S" ops --security-style unix >/dev/null &&
	on hostA "$SNAPFS" mirror update "dr:$PD" >/dev/null &&
	conf "$S" >"$REF/s.conf" &&
	grep -q "^nightly daily@02:00 4 nightly$" "$REF/s.conf" && grep -q "^ops unix 0$" "$REF/s.conf" &&
	on hostP "$SNAPFS" mirror test-failover "$PD" --to "$TEST_TMP/pd.clone" >"$REF/out" &&
	assert_grep "^snapfs mirror: $TEST_TMP/pd.clone: the configuration carried with its data applied" "$REF/out" &&
	conf "$TEST_TMP/pd.clone" >"$REF/clone.conf" &&
	assert_cmp "$REF/s.conf" "$REF/clone.conf" &&
	on hostP "$SNAPFS" mirror test-cleanup "$PD" >/dev/null &&
	"$SNAPFS" set "$S" snapdir=disabled >/dev/null &&
	on hostP "$SNAPFS" mirror break "$PD" >"$REF/out" &&
	assert_grep "^snapfs mirror: $PD: broken off" "$REF/out" &&
	assert_grep "^snapfs mirror: $PD: the configuration carried with its data applied" "$REF/out" &&
	conf "$PD" >"$REF/pd.conf" &&
	assert_cmp "$REF/s.conf" "$REF/pd.conf" &&
	grep -q "^hidden$" "$REF/pd.conf" &&
	"$SNAPFS" policy list "$PD" --json >"$REF/pol.json" &&
	! grep -q pre-secret-hook "$REF/pol.json"
'

test_expect_success 'a peer without the receive grant for a volume cannot carry a configuration to it: refused with a clear message, nothing kept' '
	kept "$PD" >"$REF/kept.json" &&
	"$SNAPFS" snapshot create "$S" px-base >/dev/null &&
	"$SNAPFS" send "$S" px-base | "$SNAPFS" receive "$PX" &&
	assert_fails on hostA "$SNAPFS" peer run dr -- receive --config "$PX" <"$REF/kept.json" >"$REF/out" 2>"$REF/err" &&
	assert_one_line "$REF/err" &&
	assert_grep "^snapfs peer run: dr: the peer refused the command: peer prod has no receive grant for $PX on this host (its administrator grants it with: snapfs peer allow prod receive $PX)$" "$REF/err" &&
	test -z "$(kept "$PX")" &&
	assert_fails on hostA "$SNAPFS" mirror create "$S" "dr:$PX" --with-config 2>"$REF/err" &&
	assert_grep "no receive grant for $PX" "$REF/err" &&
	on hostP "$SNAPFS" mirror break "$PX" >"$REF/out" &&
	! grep -q configuration "$REF/out" &&
	assert_eq visible "$("$SNAPFS" get "$PX" snapdir)"
'

test_expect_success 'a granted peer cannot slip host records, hooks, another volume'"'"'s configuration, text that is not JSON or an oversized document into what host P keeps' '
	"$SNAPFS" mkfs "$TEST_TMP/pd2.store" --size 256M >/dev/null &&
	on hostP "$SNAPFS" peer allow prod receive "$TEST_TMP/pd2.store" >/dev/null &&
	on hostA "$SNAPFS" mirror create "$S" "dr:$TEST_TMP/pd2.store" --with-config >/dev/null &&
	on hostA "$SNAPFS" mirror initialize "dr:$TEST_TMP/pd2.store" >/dev/null &&
	kept "$TEST_TMP/pd2.store" >"$REF/good.json" && test -s "$REF/good.json" &&
	python3 -c "
import json
d = json.load(open(\"$REF/good.json\"))
g = dict(d, peer_grants=[{\"peer\": \"prod\", \"op\": \"send\", \"volume\": \"$TEST_TMP/hostP\"}])
json.dump(g, open(\"$REF/grant.json\", \"w\"))
h = json.loads(json.dumps(d)); h[\"volumes\"][0][\"policies\"][0][\"hooks\"] = {\"pre\": \"touch $TEST_TMP/owned\", \"post\": \"\", \"timeout\": 60, \"on_failure\": \"abandon\"}
json.dump(h, open(\"$REF/hook.json\", \"w\"))
o = json.loads(json.dumps(d)); o[\"volumes\"][0][\"uuid\"] = \"00000000-0000-0000-0000-000000000001\"
json.dump(o, open(\"$REF/other.json\", \"w\"))" &&
	echo "{\"snapfs_config\": 2," >"$REF/junk.json" &&
	head -c 1100000 /dev/zero | tr "\\0" " " >"$REF/big.json" &&
	for f in grant hook other junk big; do
		assert_fails on hostA "$SNAPFS" peer run dr -- receive --config "$TEST_TMP/pd2.store" <"$REF/$f.json" 2>"$REF/err.$f" || exit 1
		assert_one_line "$REF/err.$f" || exit 1
	done &&
	assert_grep "the configuration carried with the data is refused: it holds host records or secrets" "$REF/err.grant" &&
	assert_grep "the configuration carried with the data is refused: its policy nightly has hooks" "$REF/err.hook" &&
	assert_grep "the configuration carried with the data is refused: it is the configuration of volume 00000000-0000-0000-0000-000000000001, and the destination follows volume " "$REF/err.other" &&
	assert_grep "the configuration carried with the data is refused: not JSON at line 2" "$REF/err.junk" &&
	assert_grep "the configuration carried with the data is refused: larger than 1024 KiB: not a carried configuration; nothing kept" "$REF/err.big" &&
	kept "$TEST_TMP/pd2.store" >"$REF/after.json" &&
	assert_cmp "$REF/good.json" "$REF/after.json" &&
	! grep -q " send " "$HP/config/grants"
'

test_expect_success 'on host P, plan run --disaster (no relationship there) applies the configuration carried to its destination' '
	P2=$TEST_TMP/pd2.store &&
	on hostP "$SNAPFS" plan create dr2 --step "$P2" --source "prod:$S" >/dev/null &&
	assert_eq visible "$("$SNAPFS" get "$P2" snapdir)" &&
	on hostP "$SNAPFS" plan run dr2 --disaster >"$REF/out" &&
	conf "$P2" >"$REF/p2.conf" &&
	conf "$S" >"$REF/s.conf" &&
	assert_cmp "$REF/s.conf" "$REF/p2.conf" &&
	grep -q "^disabled$" "$REF/p2.conf"
'

test_expect_success 'a configuration left on host P by an earlier relationship of another source volume is not applied by a break there' '
	Q=$TEST_TMP/q.store QD=$TEST_TMP/qd.store &&
	"$SNAPFS" mkfs "$Q" --size 256M >/dev/null && "$SNAPFS" mkfs "$QD" --size 256M >/dev/null &&
	"$SNAPFS" snapshot create "$Q" q1 >/dev/null &&
	"$SNAPFS" send "$Q" q1 | "$SNAPFS" receive "$QD" &&
	kept "$TEST_TMP/pd2.store" >"$HP/mirrors/$(printf %s "$QD" | sha256sum | cut -c1-16).config" &&
	on hostP "$SNAPFS" mirror break "$QD" >"$REF/out" &&
	assert_grep "^snapfs mirror: $QD: broken off" "$REF/out" &&
	assert_grep "^snapfs mirror: $QD: not applied: the configuration .* holds is of volume $("$SNAPFS" info "$S" --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"uuid\"])"), and $QD follows volume $("$SNAPFS" info "$Q" --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"uuid\"])") (left from an earlier relationship)$" "$REF/out" &&
	assert_eq visible "$("$SNAPFS" get "$QD" snapdir)" &&
	! "$SNAPFS" policy list "$QD" --json | grep -q nightly
'

test_expect_success 'through a --via command the configuration travels the same way and the break there applies it' '
	V=$TEST_TMP/v.store && "$SNAPFS" mkfs "$V" --size 256M >/dev/null &&
	mkdir -p "$TEST_TMP/hostV" &&
	on hostA "$SNAPFS" mirror create "$S" viahost:v --via "env SNAPFS_MIRROR_DIR=$TEST_TMP/hostV/mirrors $SNAPFS receive --handshake $V" --with-config >/dev/null &&
	on hostA "$SNAPFS" mirror initialize viahost:v >/dev/null &&
	on hostA "$SNAPFS" mirror show viahost:v >"$REF/show" &&
	assert_grep "^Configuration: *carried with the data" "$REF/show" &&
	on hostV "$SNAPFS" mirror break "$V" >"$REF/out" &&
	assert_grep "^snapfs mirror: $V: the configuration carried with its data applied" "$REF/out" &&
	conf "$S" >"$REF/s.conf" && conf "$V" >"$REF/v.conf" &&
	assert_cmp "$REF/s.conf" "$REF/v.conf"
'

test_expect_success 'a consistency group'"'"'s relationships travel as its members, and import there makes the same group' '
	for v in g1 g2 gd1 gd2; do
		"$SNAPFS" mkfs "$TEST_TMP/$v.store" --size 256M >/dev/null || exit 1
	done &&
	mkdir -p "$TEST_TMP/hostD" &&
	on hostD "$SNAPFS" mirror create "$TEST_TMP/g1.store,$TEST_TMP/g2.store" \
		"$TEST_TMP/gd1.store,$TEST_TMP/gd2.store" --group app --schedule hourly >/dev/null &&
	on hostD "$SNAPFS" config export "$A" >"$REF/group.json" &&
	python3 -c "
import json
m = json.load(open(\"$REF/group.json\"))[\"mirrors\"]
assert sorted((r[\"destination\"], r[\"group\"]) for r in m) == [(\"$TEST_TMP/gd1.store\", \"app\"), (\"$TEST_TMP/gd2.store\", \"app\")], m" &&
	on hostE "$SNAPFS" config import "$REF/group.json" --apply >/dev/null &&
	on hostD "$SNAPFS" mirror show --json >"$REF/d.json" &&
	on hostE "$SNAPFS" mirror show --json >"$REF/e.json" &&
	python3 -c "
import json
key = lambda f: sorted((r[\"source\"], r[\"destination\"], r[\"group\"], r[\"schedule\"]) for r in json.load(open(f)))
d, e = key(\"$REF/d.json\"), key(\"$REF/e.json\")
assert d == e and len(d) == 2, (d, e)"
'

test_done
