#!/bin/bash
# On-disk format: a store written by a newer snapfs (a higher format
# version) is refused by every command with one clear message, and is left
# exactly as it was.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
DAMAGE=${SNAPFS_DAMAGE:-$(dirname "$SNAPFS")/snapfs-damage}

listing() { (cd "$1" && find . -type f -printf "%p %s\n" | sort && sha256sum data.mdb); }

test_expect_success 'setup: a store marked with a newer on-disk format' '
	cd "$TEST_TMP" &&
	"$SNAPFS" mkfs "$STORE" --size 64M >/dev/null &&
	"$DAMAGE" "$STORE" --format-version 99 &&
	listing "$STORE" >"$REF/before"
'

for cmd in mount info fsck; do
	test_expect_success "$cmd of a newer-format store is refused and changes nothing" '
		cd "$TEST_TMP" && mkdir -p "$MNT" &&
		case '"$cmd"' in
		mount) set -- mount "$STORE" "$MNT" ;;
		*) set -- '"$cmd"' "$STORE" ;;
		esac &&
		! "$SNAPFS" "$@" >"$REF/out" 2>"$REF/err" &&
		cat "$REF/err" &&
		assert_eq 1 "$(wc -l <"$REF/err")" &&
		grep -q "newer on-disk format" "$REF/err" &&
		! mountpoint -q "$MNT" &&
		listing "$STORE" | cmp - "$REF/before"
	'
done

test_done
