#!/bin/bash
# snapshot diff: the paths created (+), deleted (-), modified (M) and
# renamed (R) between two snapshots or a snapshot and the live volume,
# sorted by path, with odd names escaped as \ooo; the same answer mounted
# (through the daemon) and unmounted (on the store); bad input refused with
# one message; and the work done follows the change, not the volume.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 1G

# expect NAME LINE...: the lines (fields separated by tabs) into $REF/NAME
expect() { local f=$REF/$1; shift; : >"$f"; for l in "$@"; do printf '%s\n' "$l" | tr '|' '\t' >>"$f"; done; }
# diff_is NAME ARGS...: snapfs snapshot diff ARGS prints exactly $REF/NAME
diff_is() {
	local n=$1; shift
	"$SNAPFS" snapshot diff "$@" >"$REF/$n.out" &&
	{ diff -u "$REF/$n" "$REF/$n.out" >&2 || { say "diff $* differs from $n (see above)" >&2; return 1; }; }
}

test_expect_success 'a tree, then snapshot A' '
	mkdir -p docs/old src lib &&
	echo 1 >docs/readme && echo 2 >src/main.c && echo 3 >src/util.c &&
	echo 4 >docs/old/notes && echo 5 >lib/gone && echo 6 >shared && echo 7 >keep &&
	"$SNAPFS" snapshot create "$MNT" A >/dev/null
'

test_expect_success 'the diff A to B lists every kind of change, sorted by path' '
	echo new >src/new.c &&
	mkdir -p build/obj && echo o >build/obj/x.o &&
	echo more >>src/main.c &&
	chmod 600 src/util.c &&
	setfattr -n user.tag -v 1 docs/readme &&
	rm lib/gone &&
	mv keep lib/kept &&
	mv docs/old lib/old &&
	ln shared docs/shared-link &&
	"$SNAPFS" snapshot create "$MNT" B >/dev/null &&
	expect AB "M|/" "+|/build" "+|/build/obj" "+|/build/obj/x.o" "M|/docs" \
		"R|/docs/old -> /lib/old" "M|/docs/readme" "+|/docs/shared-link" \
		"R|/keep -> /lib/kept" "M|/lib" "-|/lib/gone" "M|/src" "M|/src/main.c" \
		"+|/src/new.c" "M|/src/util.c" &&
	diff_is AB "$MNT" A B
'

test_expect_success 'without B the diff runs to the live volume, unsynced writes included' '
	rm src/new.c && echo late >late &&
	rm docs/shared-link && echo changed >>shared &&
	expect Alive "M|/" "+|/build" "+|/build/obj" "+|/build/obj/x.o" "M|/docs" \
		"R|/docs/old -> /lib/old" "M|/docs/readme" "R|/keep -> /lib/kept" \
		"+|/late" "M|/lib" "-|/lib/gone" "M|/shared" "M|/src" "M|/src/main.c" \
		"M|/src/util.c" &&
	diff_is Alive "$MNT" A
'

test_expect_success 'a file whose hinted link was removed is still named (B to live)' '
	expect Blive "M|/" "M|/docs" "-|/docs/shared-link" "+|/late" "M|/shared" \
		"M|/src" "-|/src/new.c" &&
	diff_is Blive "$MNT" B
'

test_expect_success 'an unchanged pair, and a snapshot of the unchanged live volume, diff empty' '
	"$SNAPFS" snapshot create "$MNT" C >/dev/null &&
	"$SNAPFS" snapshot create "$MNT" D >/dev/null &&
	: >"$REF/empty" &&
	diff_is empty "$MNT" C D &&
	diff_is empty "$MNT" D
'

test_expect_success 'names with space, tab, newline and backslash are escaped as octal' '
	touch "a b" "$(printf "n\nl")" "back\\slash" "$(printf "t\tab")" &&
	expect names "M|/" "+|/a\\040b" "+|/back\\134slash" "+|/n\\012l" "+|/t\\011ab" &&
	diff_is names "$MNT" D
'

test_expect_success PYTHON '--json gives change, path and new_path' '
	"$SNAPFS" snapshot diff "$MNT" A B --json >"$REF/json" &&
	python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
assert {\"change\": \"R\", \"path\": \"/keep\", \"new_path\": \"/lib/kept\"} in d, d
assert {\"change\": \"-\", \"path\": \"/lib/gone\"} in d, d
assert [c[\"path\"] for c in d] == sorted(c[\"path\"] for c in d), d
assert len(d) == 15, len(d)
" "$REF/json" &&
	"$SNAPFS" snapshot diff "$MNT" D --json >"$REF/json2" &&
	python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
assert {\"change\": \"+\", \"path\": \"/back\\\\134slash\"} in d, d
" "$REF/json2"
'

# bad_input EXPECTED-MESSAGE ARGS...: refused with exit 1 and that message
bad_input() {
	local msg=$1; shift
	"$SNAPFS" snapshot diff "$@" >"$REF/bad.out" 2>"$REF/bad.err"
	local rc=$?
	assert_eq 1 "$rc" "exit status of diff $*" &&
	assert_one_line "$REF/bad.err" &&
	assert_grep "$msg" "$REF/bad.err" &&
	assert_eq "" "$(cat "$REF/bad.out")"
}

test_expect_success 'an unknown snapshot, B older than A, or one snapshot twice is refused' '
	"$SNAPFS" snapshot list "$MNT" --json >"$REF/list.before" &&
	bad_input "no snapshot named .nope." "$MNT" A nope &&
	bad_input "no snapshot named .nope." "$MNT" nope &&
	bad_input "snapshot .B. is newer than .A.; give the older one first" "$MNT" B A &&
	bad_input "snapshot .A. is given twice" "$MNT" A A &&
	"$SNAPFS" snapshot list "$MNT" --json >"$REF/list.after" &&
	assert_cmp "$REF/list.before" "$REF/list.after"
'

test_expect_success 'unmounted, the diffs of the store are the same' '
	"$SNAPFS" snapshot diff "$MNT" A >"$REF/Alive2" &&
	cd "$TEST_TMP" && vol_umount "$MNT" &&
	diff_is AB "$STORE" A B &&
	"$SNAPFS" snapshot diff "$STORE" A >"$REF/Alive2.off" &&
	assert_cmp "$REF/Alive2" "$REF/Alive2.off" &&
	diff_is empty "$STORE" C D &&
	bad_input "snapshot .B. is newer than .A." "$STORE" B A &&
	bad_input "no snapshot named .nope." "$STORE" nope &&
	vol_mount "$STORE" "$MNT"
'

# examined ARGS...: the number of records the diff says it read
examined() { "$SNAPFS" snapshot diff "$@" --stats 2>&1 >/dev/null | sed -n "s/.*examined \([0-9]*\) records.*/\1/p"; }

# 1000 files in 20 directories: creating them costs most of this script
# under ASan; a diff of all of them reads over 3000 records, one of 3
# changes about 140 (the entries of the 3 directories and of many/).
test_expect_success PYTHON 'the records read follow the change: 3 files changed of 1000' '
	"$SNAPFS" snapshot create "$MNT" E >/dev/null &&
	python3 -c "
import os
for d in range(20):
    os.makedirs(\"many/d%02d\" % d)
    for f in range(50):
        open(\"many/d%02d/f%02d\" % (d, f), \"w\").write(\"x\")
" &&
	"$SNAPFS" snapshot create "$MNT" F >/dev/null &&
	echo y >>many/d03/f07 && echo y >>many/d17/f20 && chmod 600 many/d19/f49 &&
	"$SNAPFS" snapshot create "$MNT" G >/dev/null &&
	expect FG "M|/many/d03/f07" "M|/many/d17/f20" "M|/many/d19/f49" &&
	diff_is FG "$MNT" F G &&
	all=$(examined "$MNT" E F) && few=$(examined "$MNT" F G) &&
	say "examined: $all records for 1000 files created, $few for 3 changed" &&
	assert_le 1000 "$all" &&
	assert_le "$few" 250
'

test_expect_success 'a file deleted and made again is - then +; deleting snapshots between changes no diff' '
	rm late && echo again >late &&
	"$SNAPFS" snapshot create "$MNT" H >/dev/null &&
	"$SNAPFS" snapshot diff "$MNT" G H >"$REF/GH" &&
	printf -- "-\t/late\n+\t/late\n" >"$REF/late" &&
	grep -F /late "$REF/GH" >"$REF/GH.late" &&
	assert_cmp "$REF/late" "$REF/GH.late" &&
	"$SNAPFS" snapshot diff "$MNT" A H >"$REF/AH.before" &&
	"$SNAPFS" snapshot diff "$MNT" B >"$REF/Blive.before" &&
	"$SNAPFS" snapshot delete "$MNT" C D E F G >/dev/null &&
	diff_is AH.before "$MNT" A H &&
	diff_is Blive.before "$MNT" B
'

test_done
