# moto.sh - moto_server on loopback for the s3:// tests of the vault
# (sourced by t36 and t44 after lib.sh).
#
#   start_moto           start moto_server on a port the system picks, with
#                        a bucket "vaults"; sets ENDPOINT (http://127.0.0.1:PORT)
#                        and the prerequisite MOTO, or says why the s3://
#                        tests skip; the server is stopped at exit
#   AWS_* variables      test credentials, and no credentials file or
#                        profile of the host is read
#
# moto runs without IAM here, so it does not verify signatures: a vault
# lists by directory (keys/, index/...), which moto's signature check
# refuses for every client (see tools/vault/README.md); t32 tests the
# signatures themselves.

MOTO_PID=
# the server runs in a process group of its own (a version manager's shim
# may fork it): the whole group is stopped at exit
stop_moto() { [ -z "$MOTO_PID" ] || kill -- "-$MOTO_PID" 2>/dev/null; return 0; }
test_at_exit stop_moto

moto_run() {
	command -v moto_server >/dev/null && command -v curl >/dev/null || return 1
	set -m
	moto_server -H 127.0.0.1 -p 0 >"$TEST_TMP/moto.log" 2>&1 </dev/null &
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
	curl -sf -X PUT "$ENDPOINT/vaults" >/dev/null
}

start_moto() {
	if moto_run; then test_set_prereq MOTO
	else say "# moto_server cannot be started here: the s3:// tests skip"; fi
}

unset AWS_PROFILE AWS_SESSION_TOKEN
export AWS_ACCESS_KEY_ID=vaulttest AWS_SECRET_ACCESS_KEY=vaulttest AWS_REGION=us-east-1
export AWS_SHARED_CREDENTIALS_FILE=$TEST_TMP/no-aws-credentials AWS_CONFIG_FILE=$TEST_TMP/no-aws-config
