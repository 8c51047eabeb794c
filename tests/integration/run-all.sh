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

total_pass=0 total_fail=0 bad_scripts=
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
	printf '%-28s %s%s (%ss)\n' "$t" "$result" "${skipped:+, $skipped skipped}" "$secs"
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
echo "# $(( $(date +%s) - start_all ))s in all${bad_scripts:+; failing:$bad_scripts}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
