# moto.sh - moto_server on loopback for the vault tests (t36, t43, t44),
# sourced after lib.sh.  moto runs without IAM here, so it does not verify
# signatures: a vault lists by directory (keys/, index/...), which moto's
# signature check refuses for every client (see tools/vault/README.md);
# t33 tests the signatures themselves.
#
#   moto_start BUCKET     moto_server on a port the system picks, in a
#                         process group of its own (a version manager's
#                         shim may fork it), stopped whole at exit; BUCKET
#                         made; ENDPOINT set; the AWS variables set to a
#                         test key (no profile, no credentials files).
#                         Sets prereq MOTO, or says why the s3:// tests
#                         skip.  Prereq AWSCLI when the aws CLI is there.

MOTO_PID=
moto_stop() { [ -z "$MOTO_PID" ] || kill -- "-$MOTO_PID" 2>/dev/null; return 0; }
test_at_exit moto_stop

moto_run() {
	command -v moto_server >/dev/null && command -v curl >/dev/null || return 1
	set -m
	(cd "$TEST_TMP" && exec moto_server -H 127.0.0.1 -p 0 >"$TEST_TMP/moto.log" 2>&1 </dev/null) &
	MOTO_PID=$!
	set +m
	local i port=
	for i in $(seq 100); do
		port=$(sed -n "s|.*Running on http://127\.0\.0\.1:\([0-9]*\).*|\1|p" "$TEST_TMP/moto.log" 2>/dev/null)
		[ -n "$port" ] && break
		pid_running "$MOTO_PID" || return 1
		sleep 0.1
	done
	[ -n "$port" ] && ENDPOINT=http://127.0.0.1:$port &&
	curl -sf -X PUT "$ENDPOINT/$1" >/dev/null
}

moto_start() {
	unset AWS_PROFILE AWS_SESSION_TOKEN
	export AWS_ACCESS_KEY_ID=vaulttest AWS_SECRET_ACCESS_KEY=vaulttest AWS_REGION=us-east-1
	export AWS_SHARED_CREDENTIALS_FILE=$TEST_TMP/no-aws-credentials AWS_CONFIG_FILE=$TEST_TMP/no-aws-config
	if moto_run "$1"; then test_set_prereq MOTO
	else say "# moto_server cannot be started here: the s3:// tests skip"; fi
	command -v aws >/dev/null && test_set_prereq AWSCLI
	return 0
}
