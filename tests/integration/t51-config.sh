#!/bin/bash
# snapfs config export|import: a mounted volume's settings, policies (with
# hooks) and qtrees exported as versioned JSON; imported onto another
# (unmounted) volume, a dry run first that lists what it would create and
# change and changes nothing, then --apply, after which a dry run has
# nothing left to do and the volume lists the same configuration; an
# import onto the volume the file names puts back what was changed since;
# a step that cannot be done is refused and then nothing is applied; a
# newer version, an unknown key, a bad value, a file that is not JSON and
# a file of two volumes given one VOLUME are refused with one message; so
# are JSON's own faults (a key twice, text after the document, bad UTF-8,
# a \u0000, nesting past jansson's depth), naming the line and column.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
test_have_prereq PYTHON || { say "# skipping: needs python3"; test_done; }
export SNAPFS_CONFIG_DIR=$TEST_TMP/config SNAPFS_MIRROR_DIR=$TEST_TMP/mirrors
vol_create --size 1G
B=$TEST_TMP/b.store
"$SNAPFS" mkfs "$B" --size 1G >/dev/null || test_bail "cannot make volume B"

# conf VOL: its policies, qtrees and snapdir, as one comparable text
conf() {
	{ "$SNAPFS" policy list "$1" --json | python3 -c "
import json,sys
for p in json.load(sys.stdin):
    print(p['name'], p['schedule'], p['keep'], p['prefix'], json.dumps(p.get('hooks'), sort_keys=True))"
	  "$SNAPFS" qtree list "$1" --json | python3 -c "
import json,sys
for q in json.load(sys.stdin): print(q['name'], q['security_style'], q['quota_bytes'])"
	  "$SNAPFS" get "$1" snapdir; } 2>&1
}

test_expect_success 'config export writes the volume'"'"'s settings, policies with hooks and qtrees as versioned JSON' '
	"$SNAPFS" set "$MNT" snapdir=hidden snapshot-reserve=10% >/dev/null &&
	"$SNAPFS" policy create "$MNT" nightly --schedule daily@01:00 --keep 7 \
		--pre "/usr/bin/true pre" --post "/usr/bin/true post" --hook-timeout 30 >/dev/null &&
	"$SNAPFS" policy create "$MNT" quarter --schedule every:15 --keep 4 --prefix q >/dev/null &&
	"$SNAPFS" qtree create "$MNT" proj --quota 100M --security-style ntfs >/dev/null &&
	"$SNAPFS" config export "$MNT" >"$REF/a.json" &&
	python3 -c "
import json
d = json.load(open(\"$REF/a.json\"))
assert d[\"snapfs_config\"] == 2, d
v, = d[\"volumes\"]
assert v[\"store\"] == \"$STORE\" and len(v[\"uuid\"]) == 36, v
assert v[\"settings\"][\"snapdir\"] == \"hidden\" and v[\"settings\"][\"snapshot-reserve\"] == \"10%\", v
p = {p[\"name\"]: p for p in v[\"policies\"]}
assert p[\"nightly\"][\"hooks\"] == {\"pre\": \"/usr/bin/true pre\", \"post\": \"/usr/bin/true post\", \"timeout\": 30, \"on_failure\": \"abandon\"}, p
assert p[\"quarter\"] == {\"name\": \"quarter\", \"schedule\": \"every:15\", \"keep\": 4, \"prefix\": \"q\"}, p
assert v[\"qtrees\"] == [{\"name\": \"proj\", \"security_style\": \"ntfs\", \"quota_bytes\": 104857600}], v"
'

test_expect_success 'import onto another volume: a dry run lists what it would do and changes nothing' '
	conf "$B" >"$REF/b.before" &&
	"$SNAPFS" config import "$REF/a.json" "$B" >"$REF/out" &&
	cat "$REF/out" &&
	assert_grep "^$B: change setting snapdir: visible -> hidden$" "$REF/out" &&
	assert_grep "^$B: change setting snapshot-reserve: 0% -> 10%$" "$REF/out" &&
	assert_grep "^$B: create policy nightly$" "$REF/out" &&
	assert_grep "^$B: create policy quarter$" "$REF/out" &&
	assert_grep "^$B: create qtree proj (ntfs, quota 104857600)$" "$REF/out" &&
	assert_grep "^snapfs config import: 3 to create, 2 to change, 3 unchanged, 0 refused (a dry run: nothing was changed; --apply changes it)$" "$REF/out" &&
	conf "$B" >"$REF/b.after" &&
	assert_cmp "$REF/b.before" "$REF/b.after"
'

test_expect_success '--apply makes it so: the volume then lists the same configuration and a dry run has nothing left' '
	"$SNAPFS" config import "$REF/a.json" "$B" --apply >"$REF/out" &&
	assert_grep "created policy nightly of $B" "$REF/out" &&
	conf "$MNT" >"$REF/a.conf" && conf "$B" >"$REF/b.conf" &&
	assert_cmp "$REF/a.conf" "$REF/b.conf" &&
	"$SNAPFS" config import "$REF/a.json" "$B" >"$REF/out" &&
	assert_grep "^snapfs config import: 0 to create, 0 to change, 8 unchanged, 0 refused" "$REF/out"
'

test_expect_success 'import onto the volume the file names puts back what changed since, and leaves what the file does not name' '
	"$SNAPFS" policy modify "$MNT" nightly --keep 3 --pre "" >/dev/null &&
	"$SNAPFS" qtree modify "$MNT" proj --quota none >/dev/null &&
	"$SNAPFS" policy create "$MNT" extra --schedule hourly --keep 2 >/dev/null &&
	"$SNAPFS" config import "$REF/a.json" --apply >"$REF/out" &&
	assert_grep "^$STORE: change policy nightly: schedule, keep, prefix or hooks differ$" "$REF/out" &&
	assert_grep "^$STORE: change qtree proj (ntfs, quota 104857600)$" "$REF/out" &&
	conf "$MNT" | grep -v "^extra " >"$REF/a.again" &&
	assert_cmp "$REF/a.conf" "$REF/a.again" &&
	conf "$MNT" | grep -q "^extra hourly@00 2 extra null$"
'

test_expect_success 'a step that cannot be done is refused, and then --apply applies nothing' '
	"$SNAPFS" policy create "$B" other --schedule hourly --keep 2 --prefix night >/dev/null &&
	python3 -c "
import json
d = json.load(open(\"$REF/a.json\"))
d[\"volumes\"][0][\"policies\"].append({\"name\": \"late\", \"schedule\": \"daily@23:00\", \"keep\": 1, \"prefix\": \"night\"})
d[\"volumes\"][0][\"settings\"][\"snapdir\"] = \"visible\"
json.dump(d, open(\"$REF/c.json\", \"w\"))" &&
	conf "$B" >"$REF/b.before" &&
	assert_fails "$SNAPFS" config import "$REF/c.json" "$B" --apply >"$REF/out" 2>"$REF/err" &&
	assert_grep "^$B: refused: policy late: its prefix .night. is policy other.s on this volume$" "$REF/out" &&
	assert_grep "1 item refused: nothing applied" "$REF/err" &&
	conf "$B" >"$REF/b.after" &&
	assert_cmp "$REF/b.before" "$REF/b.after"
'

test_expect_success 'a newer version, an unknown key, a bad value, not JSON, two volumes onto one: one message each, nothing changed' '
	conf "$B" >"$REF/b.before" &&
	sed "s/\"snapfs_config\": 2/\"snapfs_config\": 3/" "$REF/a.json" >"$REF/v3.json" &&
	assert_fails "$SNAPFS" config import "$REF/v3.json" "$B" --apply 2>"$REF/err" &&
	assert_one_line "$REF/err" &&
	assert_grep "configuration version 3, newer than the version 2 this snapfs reads" "$REF/err" &&
	sed "s/\"keep\": 4,/\"keep\": 4, \"colour\": \"red\",/" "$REF/a.json" >"$REF/uk.json" &&
	assert_fails "$SNAPFS" config import "$REF/uk.json" "$B" --apply 2>"$REF/err" &&
	assert_one_line "$REF/err" &&
	assert_grep "volumes\[0\].policies\[1\]: unknown key .colour." "$REF/err" &&
	sed "s/\"snapdir\": \"hidden\"/\"snapdir\": \"sideways\"/" "$REF/a.json" >"$REF/bv.json" &&
	assert_fails "$SNAPFS" config import "$REF/bv.json" "$B" --apply 2>"$REF/err" &&
	assert_grep "volumes\[0\].settings.snapdir: a value this setting does not allow; nothing changed" "$REF/err" &&
	head -c 100 "$REF/a.json" >"$REF/cut.json" &&
	assert_fails "$SNAPFS" config import "$REF/cut.json" "$B" --apply 2>"$REF/err" &&
	assert_one_line "$REF/err" &&
	assert_grep "^snapfs config import: $REF/cut.json: not JSON at line [1-9][0-9]*, column [0-9]*: .*; nothing changed$" "$REF/err" &&
	"$SNAPFS" config export "$MNT" "$B" >"$REF/two.json" &&
	assert_fails "$SNAPFS" config import "$REF/two.json" "$B" --apply 2>"$REF/err" &&
	assert_grep "holds 2 volumes: with VOLUME give a file of one volume; nothing changed" "$REF/err" &&
	conf "$B" >"$REF/b.after" &&
	assert_cmp "$REF/b.before" "$REF/b.after"
'

# refused NAME MESSAGE: importing $REF/NAME.json onto B fails with exactly
# that one message (file named) and B is as it was
refused() {
	conf "$B" >"$REF/b.before" &&
	assert_fails "$SNAPFS" config import "$REF/$1.json" "$B" --apply 2>"$REF/err" &&
	assert_eq "snapfs config import: $REF/$1.json: $2; nothing changed" "$(cat "$REF/err")" "$1" &&
	conf "$B" >"$REF/b.after" &&
	assert_cmp "$REF/b.before" "$REF/b.after"
}

# json_faults: JSON's own faults, each refused naming the line and column
json_faults() {
	printf '{"snapfs_config": 1,\n "volumes": [], "volumes": []}\n' >"$REF/dup.json" &&
	refused dup "not JSON at line 2, column 25: duplicate object key near '\"volumes\"'" &&
	printf '{"snapfs_config": 1, "volumes": []}\n{}\n' >"$REF/after.json" &&
	refused after "not JSON at line 2, column 1: end of file expected near '{'" &&
	printf '{"snapfs_config": 1,\n "volumes": [{"store": "/x\377"}]}\n' >"$REF/utf8.json" &&
	refused utf8 "not JSON at line 2, column 26: unable to decode byte 0xff near '\"/x'" &&
	printf '{"snapfs_config": 1, "volumes": [{"store": "/x\\u0000y"}]}\n' >"$REF/nul.json" &&
	refused nul "not JSON at line 1, column 54: \\u0000 is not allowed without JSON_ALLOW_NUL near '\"/x\\u0000y\"'" &&
	{ printf '{"snapfs_config": 1, "volumes": ' && head -c 3000 /dev/zero | tr '\0' '['; } >"$REF/deep.json" &&
	refused deep "not JSON at line 1, column 2080: maximum parsing depth reached near '['"
}

test_expect_success 'a key twice, text after the document, bad UTF-8, a \u0000 and nesting past 2048 are refused naming line and column' '
	json_faults
'

test_done
