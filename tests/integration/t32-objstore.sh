#!/bin/bash
# The vault's object store (tools/vault/objstore.h) against real S3 servers
# started here on loopback, on ports the system picks, and stopped at exit:
# moto_server (verifies SigV4, IAM users and policies, STS session tokens,
# If-None-Match) and s3rver from npm (build/npm; it checks the access key id
# but does not verify V4 signatures).  The API is driven through the unit
# test program (`test_objstore TARGET COMMAND`, options in OBJSTORE_*
# variables, credentials in AWS_* variables, never on a command line), and
# what it stored is checked with a stock client, the aws CLI.  Misbehaving
# endpoints come from s3fault.py: one that accepts and never answers, and
# a proxy in front of moto that fails requests (500, 503 SlowDown).
#
# moto 5 verifies signatures over the URL as its web framework decodes it,
# so a query value holding '/' (a listing's prefix "a/b/") fails there for
# every client, the aws CLI included: the moto tests use a bucket-wide
# target, and prefixed targets, listings by directory and locks are tested
# on s3rver.  A server that cannot start is said so, and its tests skip.
. "$(dirname "$0")/lib.sh"

ROOT=$(cd "$TEST_DIR/../.." && pwd)
OBJSTORE_TEST=${OBJSTORE_TEST:-$ROOT/build/asan/unit/test_objstore}
S3RVER=${S3RVER:-$ROOT/build/npm/node_modules/.bin/s3rver}
[ -x "$OBJSTORE_TEST" ] ||
	{ say "# skipping: $OBJSTORE_TEST is not built (make build/asan/unit/test_objstore)"; test_done; }

# Nothing of the tester's own AWS setup is read.
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE \
	AWS_REGION AWS_DEFAULT_REGION OBJSTORE_ENDPOINT OBJSTORE_REGION OBJSTORE_PROFILE \
	OBJSTORE_PATH_STYLE OBJSTORE_PARALLEL OBJSTORE_RETRIES OBJSTORE_TIMEOUT
mkdir -p "$TEST_TMP/aws" && chmod 700 "$TEST_TMP/aws"
export AWS_SHARED_CREDENTIALS_FILE=$TEST_TMP/aws/credentials AWS_CONFIG_FILE=$TEST_TMP/aws/config

# the stock client that checks what the API stored
if command -v aws >/dev/null; then test_set_prereq AWSCLI
else say "# the aws CLI is missing: the checks with a stock client skip"; fi

# start_bg LOG COMMAND...: COMMAND in the background in a process group
# of its own (a server and whatever it forks: a version manager's shim
# may), its output in LOG; its pid in BG_PID.  Every group is stopped at
# exit.
start_bg() {
	local log=$1
	shift
	set -m
	"$@" >"$log" 2>&1 </dev/null &
	BG_PID=$!
	set +m
	echo "$BG_PID" >>"$TEST_TMP/servers.pids"
}
stop_servers() {
	local p
	[ -s "$TEST_TMP/servers.pids" ] || return 0
	for p in $(cat "$TEST_TMP/servers.pids"); do kill -- "-$p" 2>/dev/null; done
	return 0
}
test_at_exit stop_servers

# wait_line FILE SED_EXPR PID: what SED_EXPR prints from FILE once it
# prints something (10 s at most, and only while PID runs).
wait_line() {
	local v
	for _ in $(seq 100); do
		v=$(sed -n "$2" "$1" 2>/dev/null)
		[ -n "$v" ] && { echo "$v"; return 0; }
		pid_running "$3" || return 1
		sleep 0.1
	done
	return 1
}

# ------------------------------------------------------------------ moto

# The first 7 actions of a fresh moto need no valid signature: they make
# the IAM user and its key, a role and a session of it, and the bucket;
# everything after is verified.
MOTO_FREE_ACTIONS=7
moto_setup_call() { # SERVICE CURL-ARGS...: one of those free actions
	curl -sf -H "Authorization: AWS4-HMAC-SHA256 Credential=AKIASETUP/20240101/us-east-1/$1/aws4_request, SignedHeaders=host, Signature=0" \
		"${@:2}"
}
xml_field() { sed -n "s:.*<$1>\([^<]*\)</$1>.*:\1:p"; }

start_moto() {
	command -v moto_server >/dev/null || { say "# moto_server is not installed: the moto tests skip"; return 1; }
	command -v curl >/dev/null || { say "# curl is missing to set moto up: the moto tests skip"; return 1; }
	start_bg "$TEST_TMP/moto.log" env INITIAL_NO_AUTH_ACTION_COUNT=$MOTO_FREE_ACTIONS \
		moto_server -H 127.0.0.1 -p 0
	local pid=$BG_PID u="http://127.0.0.1"
	MOTO_PORT=$(wait_line "$TEST_TMP/moto.log" 's|.*Running on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' $pid) ||
		{ say "# moto_server did not start: $(tail -n 3 "$TEST_TMP/moto.log")"; return 1; }
	u=$u:$MOTO_PORT
	local allow='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
	local trust='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}'
	moto_setup_call iam -d "Action=CreateUser&UserName=vault&Version=2010-05-08" "$u/" >/dev/null &&
	moto_setup_call iam -d "Action=PutUserPolicy&UserName=vault&PolicyName=all&Version=2010-05-08" \
		--data-urlencode "PolicyDocument=$allow" "$u/" >/dev/null &&
	moto_setup_call iam -d "Action=CreateAccessKey&UserName=vault&Version=2010-05-08" "$u/" \
		>"$TEST_TMP/aws/key.xml" &&
	moto_setup_call iam -d "Action=CreateRole&RoleName=vr&Version=2010-05-08" \
		--data-urlencode "AssumeRolePolicyDocument=$trust" "$u/" >/dev/null &&
	moto_setup_call iam -d "Action=PutRolePolicy&RoleName=vr&PolicyName=all&Version=2010-05-08" \
		--data-urlencode "PolicyDocument=$allow" "$u/" >/dev/null &&
	moto_setup_call sts -d "Action=AssumeRole&RoleArn=arn:aws:iam::123456789012:role/vr&RoleSessionName=t32&Version=2011-06-15" \
		"$u/" >"$TEST_TMP/aws/session.xml" &&
	moto_setup_call s3 -X PUT "$u/vault" >/dev/null ||
		{ say "# moto_server did not take the setup requests"; return 1; }
	MOTO_KEY=$(xml_field AccessKeyId <"$TEST_TMP/aws/key.xml")
	MOTO_SECRET=$(xml_field SecretAccessKey <"$TEST_TMP/aws/key.xml")
	STS_KEY=$(xml_field AccessKeyId <"$TEST_TMP/aws/session.xml")
	STS_SECRET=$(xml_field SecretAccessKey <"$TEST_TMP/aws/session.xml")
	STS_TOKEN=$(xml_field SessionToken <"$TEST_TMP/aws/session.xml")
	[ -n "$MOTO_SECRET" ] && [ -n "$STS_TOKEN" ] ||
		{ say "# moto_server gave no access key or session"; return 1; }
}
start_moto && test_set_prereq MOTO

# mo ARGS: test_objstore against moto (endpoint and keys in the environment)
mo() {
	AWS_ACCESS_KEY_ID=$MOTO_KEY AWS_SECRET_ACCESS_KEY=$MOTO_SECRET \
	OBJSTORE_ENDPOINT=${OBJSTORE_ENDPOINT:-http://127.0.0.1:$MOTO_PORT} "$OBJSTORE_TEST" "$@"
}
# awsm ARGS: the aws CLI against moto
awsm() {
	AWS_ACCESS_KEY_ID=$MOTO_KEY AWS_SECRET_ACCESS_KEY=$MOTO_SECRET AWS_DEFAULT_REGION=us-east-1 \
	aws --endpoint-url "http://127.0.0.1:$MOTO_PORT" "$@"
}
# aws_listing BUCKET_LS_OUTPUT: "KEY SIZE" lines, sorted
aws_listing() { awk '{ print $4, $3 }' | sort; }
# fault_server MODE ARGS...: start s3fault.py (stopped at exit), print
# its port
fault_server() {
	local out pid
	out=$(mktemp "$TEST_TMP/fault.XXXXXX") || return 1
	start_bg "$out" python3 "$TEST_DIR/s3fault.py" "$@"
	wait_line "$out" '1p' $BG_PID
}
ms_now() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }

test_expect_success MOTO,AWSCLI 'moto: objects put through the API are listed by the aws CLI with their sizes and read back byte for byte' '
	rand_file "$REF/small" 1000 && : >"$REF/empty" && rand_file "$REF/mid" 1048576 &&
	mo s3://vault put t1/small "$REF/small" &&
	mo s3://vault put t1/empty "$REF/empty" &&
	mo s3://vault put t1/deep/er/mid "$REF/mid" &&
	awsm s3 ls s3://vault --recursive | aws_listing | grep "^t1/" >"$REF/ls.aws" &&
	printf "t1/deep/er/mid 1048576\nt1/empty 0\nt1/small 1000\n" >"$REF/ls.want" &&
	assert_cmp "$REF/ls.want" "$REF/ls.aws" &&
	mo s3://vault list t1 | sort >"$REF/ls.api" &&
	assert_cmp "$REF/ls.want" "$REF/ls.api" &&
	awsm s3 cp s3://vault/t1/deep/er/mid "$REF/mid.aws" --quiet &&
	assert_cmp "$REF/mid" "$REF/mid.aws" &&
	mo s3://vault get t1/small >"$REF/small.api" && assert_cmp "$REF/small" "$REF/small.api" &&
	mo s3://vault get t1/empty >"$REF/empty.api" && assert_cmp "$REF/empty" "$REF/empty.api"
'

test_expect_success MOTO,AWSCLI 'moto: an object above 16 MiB goes up as a multipart upload of 3 parts and reads back whole' '
	rand_file "$REF/big" 41943040 &&
	mo s3://vault put t2/big "$REF/big" &&
	assert_grep "\"POST /vault/t2/big?uploads= " "$TEST_TMP/moto.log" &&
	assert_grep "\"PUT /vault/t2/big?partNumber=3&uploadId=" "$TEST_TMP/moto.log" &&
	! grep -q "\"PUT /vault/t2/big?partNumber=4&" "$TEST_TMP/moto.log" &&
	awsm s3 cp s3://vault/t2/big "$REF/big.aws" --quiet && assert_cmp "$REF/big" "$REF/big.aws" &&
	mo s3://vault get t2/big >"$REF/big.api" && assert_cmp "$REF/big" "$REF/big.api" &&
	assert_eq None "$(awsm s3api list-multipart-uploads --bucket vault --query Uploads --output text)" \
		"uploads left"
'

test_expect_success MOTO 'moto: a ranged read returns exactly the bytes asked for; past the end is ERANGE' '
	mo s3://vault range t1/deep/er/mid 1000 5000 >"$REF/range" &&
	tail -c +1001 "$REF/mid" | head -c 5000 >"$REF/range.want" &&
	assert_cmp "$REF/range.want" "$REF/range" &&
	mo s3://vault range t1/deep/er/mid 1048570 6 >"$REF/range" &&
	tail -c 6 "$REF/mid" >"$REF/range.want" && assert_cmp "$REF/range.want" "$REF/range" &&
	assert_fails mo s3://vault range t1/deep/er/mid 1048570 7 2>"$REF/err" &&
	assert_grep "range: ERANGE: s3://vault: t1/deep/er/mid: .*\[1048570, +7)" "$REF/err" &&
	assert_fails mo s3://vault range t1/deep/er/mid 2000000 1 2>"$REF/err" &&
	assert_grep "range: ERANGE: .*416 InvalidRange" "$REF/err"
'

test_expect_success MOTO,AWSCLI 'moto: stat gives the size; a missing object is ENOENT; deleting twice succeeds' '
	assert_eq 1000 "$(mo s3://vault stat t1/small)" &&
	mo s3://vault delete t1/small && mo s3://vault delete t1/small &&
	assert_fails mo s3://vault stat t1/small 2>"$REF/err" &&
	assert_grep "stat: ENOENT: s3://vault: t1/small: HEAD: no such object" "$REF/err" &&
	assert_fails mo s3://vault get t1/small 2>"$REF/err" &&
	assert_grep "get: ENOENT: s3://vault: t1/small: GET: 404 NoSuchKey" "$REF/err" &&
	! awsm s3 ls s3://vault --recursive | grep -q "t1/small$"
'

test_expect_success MOTO 'moto: a wrong secret is EACCES with the server'"'"'s SignatureDoesNotMatch; an unknown key id is InvalidAccessKeyId' '
	assert_fails env AWS_ACCESS_KEY_ID=$MOTO_KEY AWS_SECRET_ACCESS_KEY=not-the-secret \
		OBJSTORE_ENDPOINT=http://127.0.0.1:$MOTO_PORT "$OBJSTORE_TEST" s3://vault stat t2/big 2>"$REF/err" &&
	assert_grep "EACCES: s3://vault: listing: GET: 403 SignatureDoesNotMatch: The request signature we calculated does not match" "$REF/err" &&
	assert_fails env AWS_ACCESS_KEY_ID=AKIANOBODY AWS_SECRET_ACCESS_KEY=x \
		OBJSTORE_ENDPOINT=http://127.0.0.1:$MOTO_PORT "$OBJSTORE_TEST" s3://vault stat t2/big 2>"$REF/err" &&
	assert_grep "EACCES: .*403 InvalidAccessKeyId: The AWS Access Key Id you provided does not exist" "$REF/err" &&
	assert_fails env OBJSTORE_ENDPOINT=http://127.0.0.1:$MOTO_PORT "$OBJSTORE_TEST" s3://vault open 2>"$REF/err" &&
	assert_grep "open: EACCES: s3://vault: no credentials: set AWS_ACCESS_KEY_ID" "$REF/err"
'

test_expect_success MOTO 'moto: a missing bucket is ENOENT naming the bucket' '
	assert_fails mo s3://no-such-bucket open 2>"$REF/err" &&
	assert_grep "open: ENOENT: s3://no-such-bucket: bucket no-such-bucket does not exist" "$REF/err"
'

test_expect_success MOTO 'moto: put-if-absent does not replace an object (If-None-Match: *)' '
	echo first >"$REF/first" && echo second >"$REF/second" &&
	mo s3://vault put-if-absent t7/once "$REF/first" &&
	assert_fails mo s3://vault put-if-absent t7/once "$REF/second" 2>"$REF/err" &&
	assert_grep "put-if-absent: EEXIST: s3://vault: t7/once: PUT: exists already" "$REF/err" &&
	mo s3://vault get t7/once >"$REF/once" && assert_cmp "$REF/first" "$REF/once"
'

test_expect_success MOTO,AWSCLI 'moto: 60 objects go up and come back through the asynchronous calls' '
	mo s3://vault put-many t8 60 100000 >"$REF/out" &&
	assert_eq "60 done, 0 failed, 0 differ" "$(cat "$REF/out")" &&
	mo s3://vault check-many t8 60 100000 >"$REF/out" &&
	assert_eq "60 done, 0 failed, 0 differ" "$(cat "$REF/out")" &&
	assert_eq 60 "$(awsm s3 ls s3://vault --recursive | grep -c " t8/")"
'

test_expect_success MOTO 'asynchronous transfers keep at most `parallel` requests in flight (3 of 24 here), and more than one' '
	port=$(fault_server proxy "$MOTO_PORT" "$TEST_TMP/pass.log" pass) && test -n "$port" &&
	OBJSTORE_PARALLEL=3 OBJSTORE_ENDPOINT=http://127.0.0.1:$port mo s3://vault put-many t8p 24 300000 >"$REF/out" &&
	assert_eq "24 done, 0 failed, 0 differ" "$(cat "$REF/out")" &&
	most=$(sed -n "s/^200 PUT .* \[\([0-9]*\)\]$/\1/p" "$TEST_TMP/pass.log" | sort -n | tail -n 1) &&
	echo "at most $most in flight" && assert_le "$most" 3 && assert_le 2 "$most"
'

test_expect_success MOTO 'moto: virtual-host addressing reaches the bucket as BUCKET.localhost' '
	OBJSTORE_PATH_STYLE=0 OBJSTORE_ENDPOINT=http://localhost:$MOTO_PORT mo s3://vault stat t2/big >"$REF/size" &&
	assert_eq 41943040 "$(cat "$REF/size")" &&
	assert_grep "\"HEAD /t2/big HTTP" "$TEST_TMP/moto.log"
'

test_expect_success MOTO 'moto: credentials from a profile of the credentials file, the region from the config file, a session token from STS' '
	printf "[default]\nregion = us-east-1\n[profile other]\nregion = Not_A_Region\n" >"$AWS_CONFIG_FILE" &&
	printf "# keys\n[vault]\naws_access_key_id = %s\naws_secret_access_key=%s\n[other]\n" \
		"$MOTO_KEY" "$MOTO_SECRET" >"$AWS_SHARED_CREDENTIALS_FILE" &&
	printf "aws_access_key_id=%s\naws_secret_access_key = %s\n" \
		"$MOTO_KEY" "$MOTO_SECRET" >>"$AWS_SHARED_CREDENTIALS_FILE" &&
	url=http://127.0.0.1:$MOTO_PORT &&
	assert_eq 41943040 "$(OBJSTORE_ENDPOINT=$url OBJSTORE_PROFILE=vault "$OBJSTORE_TEST" s3://vault stat t2/big)" &&
	assert_eq 41943040 "$(OBJSTORE_ENDPOINT=$url AWS_PROFILE=vault "$OBJSTORE_TEST" s3://vault stat t2/big)" &&
	assert_fails env OBJSTORE_ENDPOINT=$url "$OBJSTORE_TEST" s3://vault open 2>"$REF/err" &&
	assert_grep "EACCES: s3://vault: no credentials: .*profile default of $AWS_SHARED_CREDENTIALS_FILE" "$REF/err" &&
	assert_fails env OBJSTORE_ENDPOINT=$url AWS_PROFILE=other "$OBJSTORE_TEST" s3://vault open 2>"$REF/err" &&
	assert_grep "EINVAL: s3://vault: the region from the config file is not a region name" "$REF/err" &&
	assert_eq 41943040 "$(AWS_ACCESS_KEY_ID=$STS_KEY AWS_SECRET_ACCESS_KEY=$STS_SECRET AWS_SESSION_TOKEN=$STS_TOKEN \
		OBJSTORE_ENDPOINT=$url "$OBJSTORE_TEST" s3://vault stat t2/big)" &&
	export AWS_ACCESS_KEY_ID=$STS_KEY AWS_SECRET_ACCESS_KEY=$STS_SECRET AWS_SESSION_TOKEN=forged \
		OBJSTORE_ENDPOINT=$url &&
	assert_fails "$OBJSTORE_TEST" s3://vault stat t2/big 2>"$REF/err" &&
	assert_grep "EACCES: .*400 InvalidToken" "$REF/err"
'

test_expect_success MOTO 'a server answering 500 (or 503 SlowDown) once to every request: each is retried and every call succeeds' '
	port=$(fault_server proxy "$MOTO_PORT" "$TEST_TMP/first500.log" first500) && test -n "$port" &&
	export OBJSTORE_ENDPOINT=http://127.0.0.1:$port &&
	mo s3://vault put t11/small "$REF/small" &&
	mo s3://vault put t11/big "$REF/big" &&
	mo s3://vault get t11/small >"$REF/back" && assert_cmp "$REF/small" "$REF/back" &&
	assert_eq 41943040 "$(mo s3://vault stat t11/big)" &&
	mo s3://vault list t11 >"$REF/list" && assert_eq 2 "$(wc -l <"$REF/list")" &&
	mo s3://vault delete t11/small &&
	log=$TEST_TMP/first500.log &&
	for req in "PUT /vault/t11/small" "POST /vault/t11/big?uploads=" "PUT /vault/t11/big?partNumber=3&" \
		"POST /vault/t11/big?uploadId=" "GET /vault/t11/small" "HEAD /vault/t11/big" \
		"GET /vault?list-type=2&prefix=t11" "DELETE /vault/t11/small"; do
		grep -qF "500 $req" "$log" && grep -F " $req" "$log" | grep -q "^20[04] " ||
			{ echo "not retried: $req"; exit 1; }
	done &&
	port=$(fault_server proxy "$MOTO_PORT" "$TEST_TMP/first503.log" first503) &&
	OBJSTORE_ENDPOINT=http://127.0.0.1:$port mo s3://vault put t11/slow "$REF/small" &&
	assert_grep "^503 PUT /vault/t11/slow" "$TEST_TMP/first503.log" &&
	assert_grep "^200 PUT /vault/t11/slow" "$TEST_TMP/first503.log"
'

test_expect_success MOTO,AWSCLI 'a multipart upload whose part 2 keeps failing is aborted: EIO with the server'"'"'s message, no upload or object left' '
	port=$(fault_server proxy "$MOTO_PORT" "$TEST_TMP/part2.log" part2) && test -n "$port" &&
	export OBJSTORE_RETRIES=1 OBJSTORE_ENDPOINT=http://127.0.0.1:$port &&
	assert_fails mo s3://vault put t12/big "$REF/big" 2>"$REF/err" &&
	assert_grep "put: EIO: s3://vault: t12/big: PUT: 500 InternalError: injected by s3fault.py (2 attempts)" "$REF/err" &&
	assert_eq 2 "$(grep -c "^500 PUT /vault/t12/big?partNumber=2&" "$TEST_TMP/part2.log")" &&
	assert_grep "^204 DELETE /vault/t12/big?uploadId=" "$TEST_TMP/part2.log" &&
	assert_eq None "$(awsm s3api list-multipart-uploads --bucket vault --query Uploads --output text)" &&
	unset OBJSTORE_ENDPOINT && assert_fails mo s3://vault stat t12/big
'

test_expect_success MOTO 'a multipart upload completed but whose answer was lost: the retry finds it done and succeeds' '
	port=$(fault_server proxy "$MOTO_PORT" "$TEST_TMP/lost.log" lostcomplete) && test -n "$port" &&
	OBJSTORE_ENDPOINT=http://127.0.0.1:$port mo s3://vault put t12/lost "$REF/big" &&
	assert_grep "^500 POST /vault/t12/lost?uploadId=" "$TEST_TMP/lost.log" &&
	assert_grep "^404 POST /vault/t12/lost?uploadId=" "$TEST_TMP/lost.log" &&
	assert_grep "^200 HEAD /vault/t12/lost " "$TEST_TMP/lost.log" &&
	mo s3://vault get t12/lost >"$REF/lost" && assert_cmp "$REF/big" "$REF/lost"
'

test_expect_success 'a server that accepts and never answers fails with ETIMEDOUT within the bound (1 s, 1 retry)' '
	port=$(fault_server silent) && test -n "$port" &&
	t0=$(ms_now) &&
	assert_fails env OBJSTORE_TIMEOUT=1 OBJSTORE_RETRIES=1 OBJSTORE_ENDPOINT=http://127.0.0.1:$port \
		AWS_ACCESS_KEY_ID=AKIAX AWS_SECRET_ACCESS_KEY=x "$OBJSTORE_TEST" s3://vault open 2>"$REF/err" &&
	took=$(( $(ms_now) - t0 )) && echo "took $took ms" &&
	assert_grep "open: ETIMEDOUT: s3://vault: listing: GET: .* (2 attempts)" "$REF/err" &&
	assert_le 1900 "$took" "two attempts of a second" && assert_le "$took" 6000 "the bound"
'

test_expect_success 'nothing listening is ECONNREFUSED after the retries' '
	port=$(python3 -c "import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])") &&
	t0=$(ms_now) &&
	assert_fails env OBJSTORE_RETRIES=2 OBJSTORE_ENDPOINT=http://127.0.0.1:$port \
		AWS_ACCESS_KEY_ID=AKIAX AWS_SECRET_ACCESS_KEY=x "$OBJSTORE_TEST" s3://vault open 2>"$REF/err" &&
	assert_grep "open: ECONNREFUSED: s3://vault: listing: GET: .* (3 attempts)" "$REF/err" &&
	took=$(( $(ms_now) - t0 )) && echo "took $took ms" &&
	assert_le 150 "$took" "two backoffs: 50-100 ms, then 100-200 ms" && assert_le "$took" 3000
'

test_expect_success MOTO 'https: with the CA in ca_file, objects go and come back; without it the endpoint is refused with EPROTO' '
	test -e "$REF/big" || rand_file "$REF/big" 41943040
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
		-keyout "$TEST_TMP/tls.key" -out "$TEST_TMP/tls.crt" 2>"$REF/openssl.err" ||
		{ cat "$REF/openssl.err"; exit 1; }
	# a second moto, without IAM: any key is accepted
	start_bg "$TEST_TMP/motos.log" moto_server -H 127.0.0.1 -p 0 \
		-c "$TEST_TMP/tls.crt" -k "$TEST_TMP/tls.key"
	port=$(wait_line "$TEST_TMP/motos.log" "s|.*Running on https://127\.0\.0\.1:\([0-9]*\).*|\1|p" $BG_PID) &&
	curl -sf --cacert "$TEST_TMP/tls.crt" -X PUT "https://127.0.0.1:$port/tlsvault" >/dev/null &&
	export OBJSTORE_ENDPOINT=https://127.0.0.1:$port OBJSTORE_RETRIES=1 &&
	assert_fails mo s3://tlsvault open 2>"$REF/err" &&
	assert_grep "open: EPROTO: s3://tlsvault: listing: GET: SSL certificate problem" "$REF/err" &&
	export OBJSTORE_CA_FILE=$TEST_TMP/tls.crt &&
	mo s3://tlsvault put over/tls "$REF/big" &&
	mo s3://tlsvault get over/tls >"$REF/tls.back" && assert_cmp "$REF/big" "$REF/tls.back"
'

# ---------------------------------------------------------------- s3rver

start_s3rver() {
	[ -x "$S3RVER" ] || { say "# s3rver is not installed in build/npm (make deps): the s3rver tests skip"; return 1; }
	mkdir -p "$TEST_TMP/s3rver"
	# its continuation tokens use DES, which Node's OpenSSL 3 keeps in
	# the legacy provider
	start_bg "$TEST_TMP/s3rver.log" env NODE_OPTIONS=--openssl-legacy-provider \
		"$S3RVER" -d "$TEST_TMP/s3rver" -a 127.0.0.1 -p 0 \
		--service-endpoint localhost --configure-bucket vault
	local pid=$BG_PID
	S3RVER_PORT=$(wait_line "$TEST_TMP/s3rver.log" 's|.*listening on 127\.0\.0\.1:\([0-9]*\).*|\1|p' $pid) ||
		{ say "# s3rver did not start: $(tail -n 3 "$TEST_TMP/s3rver.log")"; return 1; }
}
start_s3rver && test_set_prereq S3RVER

# sr ARGS: test_objstore against s3rver (its fixed account S3RVER)
sr() {
	AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER \
	OBJSTORE_ENDPOINT=${OBJSTORE_ENDPOINT:-http://127.0.0.1:$S3RVER_PORT} "$OBJSTORE_TEST" "$@"
}
awss() {
	AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1 \
	aws --endpoint-url "http://127.0.0.1:$S3RVER_PORT" "$@"
}

test_expect_success S3RVER,AWSCLI 's3rver: objects under a prefix, one of them multipart, are listed by the aws CLI with their sizes and read back' '
	rand_file "$REF/small" 1000 && rand_file "$REF/big" 41943040 &&
	sr s3://vault/backups/v1 put config "$REF/small" &&
	sr s3://vault/backups/v1 put packs/00/p1 "$REF/big" &&
	awss s3 ls s3://vault/backups/v1/ --recursive | aws_listing >"$REF/ls.aws" &&
	printf "backups/v1/config 1000\nbackups/v1/packs/00/p1 41943040\n" >"$REF/ls.want" &&
	assert_cmp "$REF/ls.want" "$REF/ls.aws" &&
	sr s3://vault/backups/v1/ list | sort >"$REF/ls.api" &&
	printf "config 1000\npacks/00/p1 41943040\n" >"$REF/ls.want" && assert_cmp "$REF/ls.want" "$REF/ls.api" &&
	sr s3://vault/backups/v1 list packs/ >"$REF/ls.api" && assert_eq "packs/00/p1 41943040" "$(cat "$REF/ls.api")" &&
	awss s3 cp s3://vault/backups/v1/packs/00/p1 "$REF/big.aws" --quiet && assert_cmp "$REF/big" "$REF/big.aws" &&
	sr s3://vault/backups/v1 get packs/00/p1 >"$REF/big.api" && assert_cmp "$REF/big" "$REF/big.api" &&
	sr s3://vault/backups/v1 range packs/00/p1 41943000 40 >"$REF/tail" &&
	tail -c 40 "$REF/big" >"$REF/tail.want" && assert_cmp "$REF/tail.want" "$REF/tail"
'

test_expect_success S3RVER,AWSCLI 's3rver: 1100 objects are listed whole, across pages of 1000 (continuation tokens)' '
	sr s3://vault/backups/v1 put-many many 1100 64 >"$REF/out" &&
	assert_eq "1100 done, 0 failed, 0 differ" "$(cat "$REF/out")" &&
	sr s3://vault/backups/v1 list many/ >"$REF/many" &&
	assert_eq 1100 "$(wc -l <"$REF/many")" &&
	assert_eq 1100 "$(sort -u "$REF/many" | wc -l)" "distinct" &&
	assert_eq 1100 "$(awss s3 ls s3://vault/backups/v1/many/ | wc -l)" "aws CLI"
'

test_expect_success S3RVER 's3rver: a second writer is refused while the first holds the lock, naming it; after the unlock the lock is free' '
	( sr s3://vault/backups/v1 lock locks "host-a pid 1: backup" 4 >"$REF/lock-a" 2>&1 ) &
	a=$! &&
	for _ in $(seq 100); do grep -q locked "$REF/lock-a" && break; sleep 0.05; done &&
	assert_grep "^locked" "$REF/lock-a" &&
	assert_fails sr s3://vault/backups/v1 lock locks "host-b pid 2: prune" 0 2>"$REF/err" &&
	assert_grep "lock: EBUSY: s3://vault/backups/v1: locked by host-a pid 1: backup (an exclusive lock locks/[0-9a-f]*, refreshed [0-9]* s ago)" "$REF/err" &&
	sr s3://vault/backups/v1 list locks/ >"$REF/locks" && assert_eq 1 "$(wc -l <"$REF/locks")" &&
	wait $a &&
	sr s3://vault/backups/v1 lock locks "host-b pid 2: prune" 0 >"$REF/lock-b" &&
	assert_grep "^locked" "$REF/lock-b" &&
	sr s3://vault/backups/v1 list locks/ >"$REF/locks" && ! test -s "$REF/locks"
'

test_expect_success S3RVER 's3rver: virtual-host addressing (BUCKET.s3.localhost); an unknown key id is EACCES; a missing bucket is ENOENT' '
	OBJSTORE_PATH_STYLE=0 OBJSTORE_ENDPOINT=http://s3.localhost:$S3RVER_PORT sr s3://vault/backups/v1 stat config >"$REF/size" &&
	assert_eq 1000 "$(cat "$REF/size")" &&
	assert_fails env AWS_ACCESS_KEY_ID=NOBODY AWS_SECRET_ACCESS_KEY=x OBJSTORE_ENDPOINT=http://127.0.0.1:$S3RVER_PORT \
		"$OBJSTORE_TEST" s3://vault/backups/v1 open 2>"$REF/err" &&
	assert_grep "open: EACCES: .*403 InvalidAccessKeyId" "$REF/err" &&
	assert_fails sr s3://nothere/x open 2>"$REF/err" &&
	assert_grep "open: ENOENT: s3://nothere/x: bucket nothere does not exist" "$REF/err"
'

# ------------------------------------------------------------------ after

test_expect_success MOTO 'no secret, session token or key file content appears in any output' '
	for s in "$MOTO_SECRET" "$STS_SECRET" "$STS_TOKEN"; do
		! grep -rqF -- "$s" "$REF" "$TEST_TMP/log" "$TEST_TMP/moto.log" "$TEST_TMP"/*.log ||
			{ echo "a secret is in the output"; exit 1; }
	done
'

test_expect_success 'no sanitizer report from test_objstore' '
	set -- "$TEST_TMP"/sanitizer/*
	test -e "$1" || exit 0
	for f; do say "== $f"; head -n 60 "$f"; done
	exit 1
'

test_done
