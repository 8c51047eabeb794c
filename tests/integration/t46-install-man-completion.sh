#!/bin/bash
# make install and what it installs: every file in place with its mode
# (DESTDIR, PREFIX), the installed paths written into the helpers, units
# and pages, make uninstall; a man page for every command of snapfs's
# dispatch and every option its parsers know, clean under mandoc -T lint
# and man -l; the bash completion answering commands, subcommands,
# options, volumes, snapshots, relationships and peers.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
command -v make >/dev/null || { say "# skipping: needs make"; test_done; }

SRC=$(cd "$TEST_DIR/../.." && pwd)
ROOT=$TEST_TMP/root
MAN8=$ROOT/usr/share/man/man8
vol_create --size 256M

# the commands of tools/snapfs.c's dispatch (not help)
dispatch_commands() {
	grep -o '!strcmp(cmd, "[a-z]*")' "$SRC/tools/snapfs.c" |
		sed 's/.*"\(.*\)".*/\1/' | grep -vx help
}

test_expect_success 'make install DESTDIR=... PREFIX=/usr puts every file in place' '
	make -s -C "$SRC" install DESTDIR="$ROOT" PREFIX=/usr INSTALL_BIN="$SNAPFS" >"$REF/install.out" 2>&1 ||
		{ cat "$REF/install.out"; exit 1; }
	for f in usr/bin/snapfs sbin/mount.fuse.snapfs usr/lib/snapfs/snapfs-unit; do
		assert_stat "$ROOT/$f" "%F %a" "regular file 755" || exit 1
	done &&
	assert_eq mount.fuse.snapfs "$(readlink "$ROOT/sbin/mount.snapfs")" &&
	for f in snapfs@.service snapfs-dump@.service snapfs-dump@.timer \
	         snapfs-mirror@.service snapfs-mirror@.timer; do
		assert_stat "$ROOT/usr/lib/systemd/system/$f" "%F %a" "regular file 644" || exit 1
	done &&
	assert_stat "$ROOT/usr/share/bash-completion/completions/snapfs" "%F %a" "regular file 644" &&
	assert_stat "$ROOT/usr/share/doc/snapfs/volume.conf.example" "%F %a" "regular file 644" &&
	assert_stat "$ROOT/etc/snapfs/volumes" "%F" "directory" &&
	for p in "$SRC"/contrib/man/*.8; do
		if [ -L "$p" ]; then
			assert_eq "$(readlink "$p")" "$(readlink "$MAN8/${p##*/}")" || exit 1
			test -f "$MAN8/${p##*/}" || exit 1
		else
			assert_stat "$MAN8/${p##*/}" "%F %a" "regular file 644" || exit 1
		fi
	done &&
	cmp "$SNAPFS" "$ROOT/usr/bin/snapfs"
'

test_expect_success 'the installed helpers, units and pages name the installed paths' '
	! grep -rl "@[A-Z]*DIR@" "$ROOT" &&
	grep -q "^SNAPFS=\${SNAPFS:-\${BINDIR:+\$BINDIR/}snapfs}" "$ROOT/usr/lib/snapfs/snapfs-unit" &&
	grep -q "^BINDIR=/usr/bin SYSCONFDIR=/etc$" "$ROOT/usr/lib/snapfs/snapfs-unit" &&
	grep -q "^BINDIR=/usr/bin$" "$ROOT/sbin/mount.fuse.snapfs" &&
	grep -qx "ExecStart=/usr/lib/snapfs/snapfs-unit mount %i" "$ROOT/usr/lib/systemd/system/snapfs@.service" &&
	grep -q "/etc/snapfs/volumes/NAME.conf" "$MAN8/snapfs-units.8"
'

test_expect_success 'every command of the dispatch has a man page that shows it' '
	cmds=$(dispatch_commands) &&
	test $(echo $cmds | wc -w) -ge 20 &&
	for c in $cmds; do
		test -e "$MAN8/snapfs-$c.8" ||
			{ echo "no man page snapfs-$c.8 for the command $c"; exit 1; }
		(cd "$ROOT/usr/share/man" && MANWIDTH=100 man -l "man8/snapfs-$c.8" 2>&1) |
			col -b >"$REF/page.$c" &&
		grep -q "snapfs $c" "$REF/page.$c" ||
			{ echo "man snapfs-$c does not show \"snapfs $c\""; exit 1; }
	done
'

# help_subcommands: "COMMAND SUBCOMMAND" for each subcommand the help names
# (the first word of each "|" part of a line of a dispatched command)
help_subcommands() {
	"$SNAPFS" help | awk -v cmds="$(dispatch_commands | tr "\n" " ")" '
	BEGIN { n = split(cmds, c, " "); for (i = 1; i <= n; i++) known[c[i]] = 1 }
	/^  [a-z]/ {
		line = substr($0, 3); split(line, w, " "); cmd = w[1]
		if (!(cmd in known)) next
		nseg = split(substr(line, length(cmd) + 2), seg, / \| /)
		for (s = 1; s <= nseg; s++) {
			split(seg[s], t, " "); word = t[1]
			if (word == cmd) word = t[2]
			nalt = split(word, alt, "|")
			for (a = 1; a <= nalt; a++)
				if (alt[a] ~ /^[a-z][a-z-]*$/) print cmd, alt[a]
		}
	}' | sort -u
}

test_expect_success 'every subcommand the help names is in its command'"'"'s page' '
	help_subcommands >"$REF/subs" &&
	test $(wc -l <"$REF/subs") -ge 50 &&
	missing= &&
	while read -r c sub; do
		(cd "$ROOT/usr/share/man" && MANWIDTH=200 man -l "man8/snapfs-$c.8" 2>/dev/null) |
			col -b | grep -qw -- "$sub" || missing="$missing $c:$sub"
	done <"$REF/subs" &&
	assert_eq "" "$missing" "subcommands in no page of their command"
'

test_expect_success 'every option of the help and of the parsers is in a man page' '
	(cd "$ROOT/usr/share/man" &&
	 for p in man8/*.8; do MANWIDTH=200 man -l "$p" 2>/dev/null; done) | col -b >"$REF/all-pages" &&
	{ "$SNAPFS" help | grep -o -- "--[a-z][a-z-]*"
	  ls "$SRC"/tools/*.c "$SRC"/tools/*/*.c | grep -v /damage.c | xargs cat |
		grep -o -- "\"--[a-z][a-z-]*\"" | tr -d "\""; } | sort -u >"$REF/options" &&
	test $(wc -l <"$REF/options") -ge 40 &&
	missing= &&
	while read -r o; do
		grep -q -- "$o\\b" "$REF/all-pages" || missing="$missing $o"
	done <"$REF/options" &&
	assert_eq "" "$missing" "options in no man page"
'

test_expect_success 'mandoc -T lint finds nothing in any page' '
	command -v mandoc || { echo "mandoc is missing (make deps installs it)"; exit 1; }
	cd "$ROOT/usr/share/man" &&
	mandoc -T lint -W style man8/*.8 >"$REF/lint" 2>&1
	cat "$REF/lint" &&
	! test -s "$REF/lint"
'

test_expect_success 'man -l renders every page without a warning' '
	cd "$ROOT/usr/share/man" &&
	for p in man8/*.8; do
		MANWIDTH=80 man --warnings -l "$p" >"$REF/out" 2>"$REF/warn" ||
			{ echo "man -l $p failed"; cat "$REF/warn"; exit 1; }
		test -s "$REF/out" || { echo "$p renders nothing"; exit 1; }
		test ! -s "$REF/warn" || { echo "$p:"; cat "$REF/warn"; exit 1; }
	done
'

# complete WORDS...: run the completion on the words (the last one is the
# word being completed), the candidates one a line, sorted
complete_words() {
	bash -c '
		. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		_snapfs snapfs "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		printf "%s\n" "${COMPREPLY[@]}"
	' complete "$ROOT/usr/share/bash-completion/completions/snapfs" "$@" | sort
}

test_expect_success 'completion: commands, subcommands and options' '
	assert_eq snapshot "$(complete_words "$SNAPFS" sn)" &&
	assert_eq "$(printf "%s\n" restore restore-file)" "$(complete_words "$SNAPFS" snapshot res)" &&
	assert_eq "$(printf "%s\n" --schedule)" "$(complete_words "$SNAPFS" policy create "$MNT" n --sch)" &&
	assert_eq "$(printf "%s\n" --compress)" "$(complete_words "$SNAPFS" mkfs /x --com)" &&
	complete_words "$SNAPFS" dump -- >"$REF/c" &&
	assert_grep "^--snapshot$" "$REF/c" && assert_grep "^--restart$" "$REF/c" &&
	assert_grep "^--no-dates$" "$REF/c" &&
	assert_grep "^--since$" "$REF/c" && assert_grep "^--exclude$" "$REF/c" &&
	assert_eq "$(printf "%s\n" password serve)" "$(complete_words "$SNAPFS" ndmp "")" &&
	assert_eq "$(printf "%s\n" --tape-device --tape-dir)" "$(complete_words "$SNAPFS" ndmp serve -f --port 10000 --ta)" &&
	mkdir -p "$TEST_TMP/tapes" && : >"$TEST_TMP/tapefile" &&
	assert_eq "$TEST_TMP/tapes" "$(complete_words "$SNAPFS" ndmp serve --tape-dir "$TEST_TMP/tape")" &&
	assert_eq "$(printf "%s\n" "$TEST_TMP/tapefile" "$TEST_TMP/tapes")" \
		"$(complete_words "$SNAPFS" ndmp serve --volume "$TEST_TMP/tape")" &&
	assert_eq "$(printf "%s\n" mirror mirror-vault)" "$(complete_words "$SNAPFS" mirror create a b --policy mi)" &&
	assert_eq "$(printf "%s\n" disabled hidden visible)" \
		"$(complete_words "$SNAPFS" set "$MNT" snapdir = "")" "bash splits at =" &&
	assert_eq hidden "$(complete_words "$SNAPFS" set "$MNT" snapdir = h)" &&
	assert_eq snapshot-autodelete-trigger= "$(complete_words "$SNAPFS" set "$MNT" snapdir = hidden snapshot-autodelete-tr)"
'

test_expect_success 'completion: mounted volumes and their snapshots' '
	"$SNAPFS" snapshot create "$MNT" alpha >/dev/null &&
	"$SNAPFS" snapshot create "$MNT" beta.2026-12-07_0100 >/dev/null &&
	complete_words "$SNAPFS" snapshot delete "" >"$REF/c" &&
	assert_grep "^$MNT\$" "$REF/c" &&
	assert_eq "$(printf "%s\n" alpha beta.2026-12-07_0100)" \
		"$(complete_words "$SNAPFS" snapshot delete "$MNT" "")" &&
	assert_eq beta.2026-12-07_0100 "$(complete_words "$SNAPFS" send "$MNT" alpha --from b)" &&
	assert_eq alpha "$(complete_words "$SNAPFS" clone "$MNT" a)"
'

test_expect_success 'completion: stats, its options and the mounted volumes it reads' '
	assert_eq stats "$(complete_words "$SNAPFS" sta)" &&
	assert_eq "$(printf "%s\n" --allow-remote --count --json --listen --prometheus --watch)" \
		"$(complete_words "$SNAPFS" stats "$MNT" --)" &&
	complete_words "$SNAPFS" stats "" >"$REF/c" &&
	assert_grep "^$MNT\$" "$REF/c" &&
	complete_words "$SNAPFS" stats --watch 5 "" >"$REF/c" &&
	assert_grep "^$MNT\$" "$REF/c" &&
	assert_eq "" "$(complete_words "$SNAPFS" stats "$MNT" "")" "one volume only" &&
	assert_eq "" "$(complete_words "$SNAPFS" stats "$MNT" --watch --count "")" "--count takes a number"
'

test_expect_success 'completion: mirror relationships and peers' '
	export SNAPFS_MIRROR_DIR=$TEST_TMP/mirrors SNAPFS_CONFIG_DIR=$TEST_TMP/peers &&
	"$SNAPFS" mkfs "$TEST_TMP/dst.store" --size 64M >/dev/null &&
	"$SNAPFS" mirror create "$MNT" "$TEST_TMP/dst.store" >/dev/null &&
	"$SNAPFS" peer passphrase prod >/dev/null &&
	assert_eq "$TEST_TMP/dst.store" "$(complete_words "$SNAPFS" mirror update "")" &&
	assert_eq prod "$(complete_words "$SNAPFS" peer revoke p)" &&
	assert_eq "$(printf "%s\n" receive send)" "$(complete_words "$SNAPFS" peer allow prod "")"
'

test_expect_success 'make uninstall removes what make install put there' '
	make -s -C "$SRC" uninstall DESTDIR="$ROOT" PREFIX=/usr >/dev/null &&
	find "$ROOT" ! -type d >"$REF/left" &&
	assert_eq "" "$(cat "$REF/left")"
'

test_done
