#!/bin/bash
# Crash safety of snapshot changes: the daemon killed with SIGKILL while it
# creates or deletes a snapshot leaves the volume in the before or the after
# state: the snapshot is there with exactly its contents, or not there at
# all; every other snapshot reads as before; fsck is clean; and reclaim
# estimates are still exact.  Several kill points each.
. "$(dirname "$0")/lib.sh"
test_have_prereq SNAPFS || { say "# skipping: needs snapfs"; test_done; }
vol_create --size 2G

phys() { "$SNAPFS" info "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['physical_bytes'])"; }
reclaim() { "$SNAPFS" snapshot reclaim "$1" "$2" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['physical_bytes'])"; }
listing() { sysc tree "$1" | sed 's/ ino=[0-9]*//'; }

# files GEN: 150 files of 64 KiB whose content follows from (file, GEN)
files() {
	python3 - "$MNT/data" "$1" <<-\EOF
	import hashlib, os, sys
	d, gen = sys.argv[1], sys.argv[2]
	os.makedirs(d, exist_ok=True)
	for i in range(150):
	    seed = hashlib.sha256(("%d/%s" % (i, gen)).encode()).digest()
	    with open(os.path.join(d, "f%03d" % i), "wb") as f:
	        f.write(seed * 2048)
	EOF
}

# kill_during DELAY COMMAND...: start the command, SIGKILL the daemon
# DELAY seconds later, and leave the volume unmounted.
kill_during() {
	local delay=$1 pid
	shift
	pid=$(daemon_pid)
	"$@" >/dev/null 2>&1 &
	local cmd=$!
	sleep "$delay"
	kill -9 "$pid"
	wait "$cmd" 2>/dev/null
	fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT"
	wait_gone "$pid"
}

test_expect_success 'setup: three generations of data in three snapshots' '
	files 1 && "$SNAPFS" snapshot create "$MNT" gen1 >/dev/null &&
	files 2 && "$SNAPFS" snapshot create "$MNT" gen2 >/dev/null &&
	files 3 && "$SNAPFS" snapshot create "$MNT" gen3 >/dev/null &&
	for s in gen1 gen2 gen3; do listing "$MNT/.snapshot/$s/data" >"$REF/$s"; done
'

round=0
for op in create delete; do
	for delay in 0 0.05 0.3; do
		round=$((round + 1))
		test_expect_success "a SIGKILL ${delay}s into a snapshot $op leaves the before or the after state (round $round)" '
			cd "$TEST_TMP" &&
			files r'"$round"' && sync -f "$MNT" &&
			listing "$MNT/data" >"$REF/live" &&
			before=$(snaps "$MNT") &&
			if [ '"$op"' = create ]; then
				victim=new'"$round"'
				kill_during '"$delay"' "$SNAPFS" snapshot create "$MNT" "$victim"
			else
				victim=$(echo $before | cut -d" " -f2)
				kill_during '"$delay"' "$SNAPFS" snapshot delete "$MNT" "$victim"
			fi &&
			"$SNAPFS" fsck "$STORE" >/dev/null &&
			vol_mount "$STORE" "$MNT" &&
			after=$(snaps "$MNT") &&
			say "before: $before; after: $after" &&
			for s in $after; do
				if [ "$s" = "$victim" ] && [ '"$op"' = create ]; then
					listing "$MNT/.snapshot/$s/data" >"$REF/got" &&
					assert_cmp "$REF/live" "$REF/got" || exit 1
					cp "$REF/got" "$REF/$s"
				else
					listing "$MNT/.snapshot/$s/data" >"$REF/got" &&
					assert_cmp "$REF/$s" "$REF/got" || exit 1
				fi
			done &&
			if [ '"$op"' = create ]; then
				case " $after " in
				*" $victim "*) assert_eq "$before $victim" "$after" ;;
				*) assert_eq "$before" "$after" ;;
				esac
			else
				case " $after " in
				*" $victim "*) assert_eq "$before" "$after" ;;
				*) assert_eq "$(echo $before | sed "s/ $victim / /")" "$after" ;;
				esac
			fi
		'
	done
done

test_expect_success 'after the crashes a delete still frees exactly its estimate' '
	cd "$TEST_TMP" &&
	first=$(snaps "$MNT" | cut -d" " -f1) &&
	est=$(reclaim "$MNT" "$first") && before=$(phys "$MNT") &&
	"$SNAPFS" snapshot delete "$MNT" "$first" >/dev/null &&
	after=$(phys "$MNT") &&
	say "estimate $est, freed $((before - after))" &&
	assert_eq "$est" "$((before - after))" &&
	test "$est" -gt 0
'

test_done
