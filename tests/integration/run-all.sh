#!/bin/bash
# run-all.sh - run every tests/integration/t*.sh and total the results.
#
#   tests/integration/run-all.sh [-v] [-i] [-k] [t3 t7 ...]
#
# Options are passed to each script (-v: show every test's output; -i:
# stop a script at its first failure; -k: keep temporary directories).
# Naming scripts (t3, t3-rename or t3-rename.sh) runs only those.
# Each script's result line is printed, with the details of its failures;
# the last line is the total "N passed, M failed".  Exit status 1 if any
# test failed or a script ended without its result line.
# Environment: see lib.sh (SNAPFS, TEST_BACKEND=dir, TEST_TIMEOUT, TMPDIR).

cd "$(dirname "$0")" || exit 2

opts=() only=() verbose=
for a in "$@"; do
	case $a in
	-v) verbose=t; opts+=("$a") ;;
	-*) opts+=("$a") ;;
	*) only+=("${a%.sh}") ;;
	esac
done

scripts=()
for t in $(printf '%s\n' t[0-9]*.sh | sort -V); do
	if [ ${#only[@]} -gt 0 ]; then
		keep=
		for o in "${only[@]}"; do
			case ${t%.sh} in "$o"|"$o"-*) keep=t ;; esac
		done
		[ -n "$keep" ] || continue
	fi
	scripts+=("$t")
done
[ ${#scripts[@]} -gt 0 ] || { echo "no test scripts match" >&2; exit 2; }

log=$(mktemp -p "${TMPDIR:-/tmp}") || exit 2
trap 'rm -f "$log"' EXIT

# fuse_preflight: can this user mount a snapfs volume at all?  Where FUSE
# cannot be used, every script would fail at its first mount; say once
# why, with the fix, and stop.
fuse_preflight() {
	[ "${TEST_BACKEND:-snapfs}" = snapfs ] || return 0
	local snapfs=${SNAPFS:-$(cd .. && cd .. && pwd)/build/asan/snapfs}
	if ! [ -x "$snapfs" ]; then
		echo "run-all: the snapfs binary '$snapfs' is missing (make build/asan/snapfs, or set SNAPFS=)" >&2
		return 1
	fi
	local d err why=
	d=$(mktemp -d -p "${TMPDIR:-/tmp}" snapfs-preflight.XXXXXX) || return 1
	if ! err=$("$snapfs" mkfs "$d/store" --size 64M 2>&1 >/dev/null); then
		why="snapfs mkfs failed: $err"
	elif mkdir "$d/mnt" && ! err=$(cd "$d" && "$snapfs" mount "$d/store" "$d/mnt" 2>&1); then
		why=$err
	else
		"$snapfs" umount "$d/mnt" >/dev/null 2>&1
	fi
	rm -rf "$d"
	[ -z "$why" ] && return 0
	{
		echo "run-all: FUSE cannot be used here, so no test can run: $why"
		if ! [ -e /dev/fuse ]; then
			echo "  fix: there is no /dev/fuse: load the module (modprobe fuse), or run the container with --device /dev/fuse --cap-add SYS_ADMIN"
		elif ! [ -r /dev/fuse ] || ! [ -w /dev/fuse ]; then
			echo "  fix: $(id -un) cannot open /dev/fuse ($(stat -c '%A %U:%G' /dev/fuse)): make it crw-rw-rw- as Debian does (chmod 666 /dev/fuse), or run the tests as root"
		elif [ "$(id -u)" != 0 ] && ! [ -u "$(command -v fusermount3 2>/dev/null || echo /nonexistent)" ]; then
			echo "  fix: mounting as $(id -un) needs the setuid fusermount3 of Debian's fuse3 package (make deps)"
		else
			echo "  fix: check that the fuse module is loaded and that this user may mount FUSE filesystems"
		fi
	} >&2
	return 1
}
fuse_preflight || exit 1

total_pass=0 total_fail=0 bad_scripts= skipped_scripts=
start_all=$(date +%s)
echo "# backend: ${TEST_BACKEND:-snapfs}${SNAPFS:+, SNAPFS=$SNAPFS}"
for t in "${scripts[@]}"; do
	[ -e "$t" ] || continue		# removed since the list was made
	start=$(date +%s)
	if [ -n "$verbose" ]; then
		bash "./$t" "${opts[@]}" 2>&1 | tee "$log"
		rc=${PIPESTATUS[0]}
	else
		bash "./$t" "${opts[@]}" >"$log" 2>&1
		rc=$?
	fi
	secs=$(( $(date +%s) - start ))
	result=$(tail -n 1 "$log")
	skipped=$(sed -n 's/^# \([0-9]*\) skipped$/\1/p' "$log")
	# a script that cannot run here says why ("# skipping: needs root")
	why=$(sed -n 's/^# skipping: //p' "$log" | head -n 1)
	if [[ $result =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]}
		if [ "$f" = 0 ] && [ "$rc" != 0 ]; then
			f=1	# exited non-zero although no test failed
			result="$result, but exit status $rc"
		fi
	else
		p=0 f=1
		result="no result line (exit status $rc)"
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	printf '%-28s %s%s%s (%ss)\n' "$t" "$result" "${skipped:+, $skipped skipped}" \
		"${why:+, all skipped: $why}" "$secs"
	[ -n "$why" ] && skipped_scripts="$skipped_scripts ${t%.sh}"
	if [ "$f" != 0 ]; then
		bad_scripts="$bad_scripts ${t%.sh}"
		if [ -z "$verbose" ] && [ "$p$f" = 01 ] && [[ $result = no* ]]; then
			tail -n 30 "$log" | sed 's/^/    /'
		elif [ -z "$verbose" ]; then
			# the failures with their diagnostics; passing and skipped lines out
			grep -v -e '^ok ' "$log" | sed -e '$d' -e 's/^/    /'
		fi
	fi
done
echo "# $(( $(date +%s) - start_all ))s in all${skipped_scripts:+; skipped here:$skipped_scripts}${bad_scripts:+; failing:$bad_scripts}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
