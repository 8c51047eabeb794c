#!/bin/bash
# snapfs vault benchmark: `snapfs vault` beside restic (Debian's) backing
# up the same volume to the same kind of target, in one run: a full
# backup, an incremental after a 1% change, and a restore of the
# incremental's snapshot, each timed cold; the bytes each stores and the
# incremental uploads; on s3:// against a moto_server started here on
# loopback, the requests each sends per GiB (and by method and kind of
# object, to tell which requests they are).  Rounds alternate which tool
# goes first; ratios are medians of the per-round ratios, with their
# range.  See tests/bench/README.md.
#
#   SNAPFS=path/to/snapfs bash tests/bench/vaultbench.sh
#
# Knobs: VAULT_BENCH_MIB (2048: the volume's data), VAULT_BENCH_FILES
# (20000 small files; the rest of the data in large ones),
# VAULT_BENCH_CHANGE_PCT (1), VAULT_BENCH_ROUNDS (3, on file://),
# VAULT_BENCH_S3 (1: one more round on s3:// against moto_server; 0: none),
# VAULT_BENCH_VERIFY (1: the first round's restores are compared with the
# snapshot, file by file), VAULT_BENCH_DIR (/var/tmp/snapfs-vaultbench),
# VAULT_BENCH_OUT (vaultbench-results.txt), VAULT_BENCH_VOLUME_SIZE (16G),
# VAULT_BENCH_KEEP (1: keep the work dir).
set -u
SNAPFS=${SNAPFS:-$(cd "$(dirname "$0")/../.." && pwd)/build/release/snapfs}
HERE=$(cd "$(dirname "$0")" && pwd)
TREE=$HERE/vaulttree.py
BASE_DIR=${VAULT_BENCH_DIR:-/var/tmp/snapfs-vaultbench}
MIB=${VAULT_BENCH_MIB:-2048}
FILES=${VAULT_BENCH_FILES:-20000}
PCT=${VAULT_BENCH_CHANGE_PCT:-1}
ROUNDS=${VAULT_BENCH_ROUNDS:-3}
S3=${VAULT_BENCH_S3:-1}
VERIFY=${VAULT_BENCH_VERIFY:-1}
OUT=${VAULT_BENCH_OUT:-vaultbench-results.txt}
VOLSIZE=${VAULT_BENCH_VOLUME_SIZE:-16G}
MNT=
MOTO_PID=
BENCH_NAME=vaultbench BENCH_KEEP=${VAULT_BENCH_KEEP:-0}
. "$HERE/benchlib.sh"
cleanup_extra() { [ -z "$MOTO_PID" ] || kill -- "-$MOTO_PID" 2>/dev/null; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,; }
add() { put "$1" "${R[$1]:+${R[$1]} }$2"; } # a per-round list
range() { tr ' ' '\n' | grep . | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }'; }
bytes_of() { du -sb --apparent-size "$1" | cut -f1; }
objects_of() { find "$1" -type f | wc -l; }

# ---- the two tools: TOOL is vault or restic; TARGET is file or s3 ----

# The vault's target, the restic repository of round N.
vault_url() { [ "$2" = s3 ] && echo "s3://vbench/r$1" || echo "file://$W/r$1/vault"; }
restic_repo() { [ "$2" = s3 ] && echo "s3:$ENDPOINT/rbench/r$1" || echo "$W/r$1/restic"; }
# the commands, as argument lists (run times them with /usr/bin/time)
vault() { VCMD=("$SNAPFS" vault "$@" ${ENDPOINT:+--endpoint "$ENDPOINT"}); }
restic_() { VCMD=(restic -r "$REPO" "$@"); }

# run LOG: run the command VCMD, its output into LOG, timed into SECS, its
# peak resident memory (KiB) into RSS
run() {
	local log=$1 t
	t=$(now)
	/usr/bin/time -f %M -o "$log.rss" "${VCMD[@]}" >"$log" 2>&1 ||
		{ tail -n 20 "$log" >&2; die "failed: ${VCMD[*]} (log $log)"; }
	SECS=$(calc "$(now) - $t")
	RSS=$(tail -n 1 "$log.rss")
}

# The moto requests to BUCKET logged so far (werkzeug's access lines).
requests() { grep -c "\"[A-Z]* /$1[/? ]" "$W/moto.log"; }
# kinds BUCKET LINE: the requests to BUCKET logged after line LINE, counted
# by method and object kind (the repository's top directory: data, index,
# snapshots, keys, locks, config; "listing" for a bucket listing)
kinds() {
	tail -n +"$(($2 + 1))" "$W/moto.log" | grep -o "\"[A-Z]* /$1[/? ][^ ]*" |
		sed -E 's|^"([A-Z]+) /[a-z0-9]+\?.*|\1 listing|; s|^"([A-Z]+) /[a-z0-9]+/r[0-9]+/([a-z]+).*|\1 \2|; s|^"([A-Z]+) .*|\1 other|' |
		sort | uniq -c | awk '{ printf "%s%s %s %s", (NR > 1 ? ", " : ""), $2, $3, $1 }'
}

# phase TOOL N TARGET WHAT: time one phase of tool TOOL in round N, cold,
# and put its figures: WHAT is full, incr or restore.
phase() {
	local tool=$1 n=$2 tgt=$3 what=$4 log=$W/logs/$1.$3.$2.$4 before=0 req=0 bucket
	local vt rdir size0 size1 lines=0
	vt=$(vault_url "$n" "$tgt")
	REPO=$(restic_repo "$n" "$tgt")
	[ "$tool" = vault ] && bucket=vbench || bucket=rbench
	[ "$tgt" = s3 ] && before=$(requests $bucket) && lines=$(wc -l <"$W/moto.log")
	[ "$tgt" = file ] && size0=$(bytes_of "$W/r$n/$tool")
	drop_caches
	case $tool.$what in
	vault.full) vault backup "$MNT" A "$vt" && run "$log" ;;
	vault.incr) vault backup "$MNT" "B$n" "$vt" && run "$log" ;;
	vault.restore)
		vault restore "$vt" "B$n" "$W/r$n/vr.store" && run "$log" ;;
	restic.full | restic.incr)
		restic_ backup "$MNT" --exclude "$MNT/.snapshot" --host vaultbench --json --quiet &&
			run "$log" ;;
	restic.restore)
		rdir=$W/r$n/rr
		t0=$(now)
		restic_ restore latest --target "$rdir" && run "$log"
		sync -f "$rdir" || die "sync -f $rdir"
		SECS=$(calc "$(now) - $t0") ;;
	esac
	add "$tgt.$tool.$what.rss" "$(calc "$RSS / 1024" 1)"
	put "$tgt.$tool.$what.secs.$n" "$SECS"
	add "$tgt.$tool.$what.secs" "$SECS"
	if [ "$tgt" = s3 ]; then
		req=$(($(requests $bucket) - before))
		put "$tgt.$tool.$what.requests" "$req"
		put "$tgt.$tool.$what.kinds" "$(kinds $bucket "$lines")"
	fi
	if [ "$tgt" = file ] && [ "$what" != restore ]; then
		size1=$(bytes_of "$W/r$n/$tool")
		add "$tgt.$tool.$what.added" "$((size1 - size0))"
		add "$tgt.$tool.$what.stored" "$size1"
		add "$tgt.$tool.$what.objects" "$(objects_of "$W/r$n/$tool")"
	fi
	log "  round $n $tgt: $tool $what: $SECS s${req:+, $req requests} (load $(loadavg))"
}

# init_targets N TARGET: an empty vault and restic repository for round N.
init_targets() {
	local n=$1 tgt=$2
	mkdir -p "$W/r$n"
	REPO=$(restic_repo "$n" "$tgt")
	if [ "$tgt" = s3 ]; then
		curl -sf -X PUT "$ENDPOINT/vbench" >/dev/null && curl -sf -X PUT "$ENDPOINT/rbench" >/dev/null ||
			die "cannot make the buckets in moto"
	fi
	vault init "$(vault_url "$n" "$tgt")" && run "$W/logs/init.$tgt.$n"
	restic_ init && run "$W/logs/rinit.$tgt.$n"
}

# listing DIR: path, size and SHA-256 of every file under DIR
listing() {
	python3 - "$1" <<'EOF'
import hashlib, os, sys
root = sys.argv[1]
for d, dirs, files in os.walk(root):
    dirs[:] = sorted(x for x in dirs if not (d == root and x == ".snapshot"))
    for f in sorted(files):
        p = os.path.join(d, f)
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for b in iter(lambda: fh.read(1 << 20), b""):
                h.update(b)
        print(os.path.relpath(p, root), os.path.getsize(p), h.hexdigest())
EOF
}

# verify N: both restores of round N hold the files of snapshot BN
verify() {
	local n=$1 l=$W/logs/list.$1
	listing "$MNT/.snapshot/B$n" >"$l.src" || die "listing the snapshot failed"
	mount_vol "$W/r$n/vr.store" "$W/r$n/vr.mnt" ro
	listing "$W/r$n/vr.mnt" >"$l.vault" || die "listing the vault's restore failed"
	umount_vol "$W/r$n/vr.mnt"
	listing "$W/r$n/rr$MNT" >"$l.restic" || die "listing restic's restore failed"
	[ "$(wc -l <"$l.src")" -gt "$FILES" ] || die "the listing of B$n is short"
	cmp -s "$l.src" "$l.vault" || { diff "$l.src" "$l.vault" | head >&2; die "the vault's restore differs from B$n"; }
	cmp -s "$l.src" "$l.restic" || { diff "$l.src" "$l.restic" | head >&2; die "restic's restore differs from B$n"; }
	log "  round $n: both restores hold the files of B$n ($(wc -l <"$l.src") files)"
}

# round N TARGET: both tools, full, change, incremental, restore
round() {
	local n=$1 tgt=$2 first second
	if [ $((n % 2)) = 1 ]; then first=vault second=restic; else first=restic second=vault; fi
	[ "$n" = 1 ] || "$SNAPFS" snapshot restore "$MNT" A >/dev/null 2>&1 ||
		die "snapshot restore A failed"
	init_targets "$n" "$tgt"
	phase $first "$n" "$tgt" full
	phase $second "$n" "$tgt" full
	cp "$W/manifest.A" "$W/manifest.$n"
	out=$(python3 "$TREE" change "$MNT" "$W/manifest.$n" "$PCT" 7 b) || die "the change failed"
	log "  round $n: changed $out"
	put "change_bytes" "$(echo "$out" | awk '{ print $NF }')"
	put "change_files" "$(echo "$out" | awk '{ print $2 }')"
	"$SNAPFS" snapshot create "$MNT" "B$n" >/dev/null || die "snapshot B$n failed"
	phase $first "$n" "$tgt" incr
	phase $second "$n" "$tgt" incr
	[ "$tgt" = file ] && add "file.vault.incr.uploaded" \
		"$(sed -n 's/.*uploaded: .*(\([0-9]*\) bytes).*/\1/p' "$W/logs/vault.file.$n.incr")"
	phase $first "$n" "$tgt" restore
	phase $second "$n" "$tgt" restore
	[ "$VERIFY" = 1 ] && [ "$n" = 1 ] && verify "$n"
	rm -rf "$W/r$n"
}

start_moto() {
	command -v moto_server >/dev/null && command -v curl >/dev/null || return 1
	set -m
	moto_server -H 127.0.0.1 -p 0 >"$W/moto.log" 2>&1 </dev/null &
	MOTO_PID=$!
	set +m
	local i port=
	for i in $(seq 200); do
		port=$(sed -n "s|.*Running on http://127\.0\.0\.1:\([0-9]*\).*|\1|p" "$W/moto.log")
		[ -n "$port" ] && break
		kill -0 "$MOTO_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	[ -n "$port" ] && ENDPOINT=http://127.0.0.1:$port
}

for t in restic python3 awk mountpoint du /usr/bin/time; do
	command -v $t >/dev/null || die "needs $t (make deps)"
done
[ -x "$SNAPFS" ] || die "no snapfs binary at $SNAPFS"
[ "$(id -u)" = 0 ] || log "not root: caches are not dropped"
mkdir -p "$BASE_DIR" && W=$(mktemp -d "$BASE_DIR/run.XXXXXX") || die "cannot make a work dir under $BASE_DIR"
mkdir -p "$W/logs"
printf 'vaultbench\n' >"$W/pass"
export SNAPFS_VAULT_PASSPHRASE=vaultbench RESTIC_PASSWORD_FILE=$W/pass RESTIC_CACHE_DIR=$W/restic-cache
unset RESTIC_REPOSITORY RESTIC_PASSWORD AWS_PROFILE AWS_SESSION_TOKEN
export AWS_ACCESS_KEY_ID=vaultbench AWS_SECRET_ACCESS_KEY=vaultbench AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_SHARED_CREDENTIALS_FILE=$W/no-aws-credentials AWS_CONFIG_FILE=$W/no-aws-config
ENDPOINT=

log "a volume of $MIB MiB, $FILES small files; work dir $W; load $(loadavg)"
MNT=$W/src.mnt
"$SNAPFS" mkfs "$W/src.store" --size "$VOLSIZE" >/dev/null || die "mkfs failed"
mount_vol "$W/src.store" "$MNT"
t=$(now)
out=$(python3 "$TREE" fill "$MNT" "$W/manifest.A" "$MIB" "$FILES" 1) || die "filling the volume failed"
log "filled: $out in $(calc "$(now) - $t" 1) s"
"$SNAPFS" snapshot create "$MNT" A >/dev/null || die "snapshot A failed"
put data_bytes "$(echo "$out" | awk '{ print $NF }')"
put data_files "$(echo "$out" | awk '{ print $2 }')"

for ((r = 1; r <= ROUNDS; r++)); do
	log "round $r of $ROUNDS on file://"
	round "$r" file
done
if [ "$S3" = 1 ]; then
	if start_moto; then
		log "round $((ROUNDS + 1)) on s3:// against moto_server at $ENDPOINT"
		round $((ROUNDS + 1)) s3
	else
		log "moto_server cannot be started here: no s3:// round"
		S3=0
	fi
fi

# ---- figures ----
MB=1048576
# rate KEY: MiB/s of each round's figure of KEY over BYTES
rates() { local s out=; for s in $1; do out+=" $(calc "$2 / $MB / $s" 1)"; done; echo $out; }
ratios() { local a b out=; read -r -a a <<<"$1"; read -r -a b <<<"$2"; for i in "${!a[@]}"; do out+=" $(calc "${a[$i]} / ${b[$i]}" 3)"; done; echo $out; }
row() { # LABEL VAULT-LIST RESTIC-LIST RATIO-LIST FORMAT KEY
	local v r q
	v=$(echo "$2" | median) r=$(echo "$3" | median) q=$(echo "$4" | median)
	printf '%-40s %12'"$5"' %12'"$5"' %8.2f %11s\n' "$1" "$v" "$r" "$q" "$(echo "$4" | range)"
	put "$6.vault" "$v"; put "$6.restic" "$r"; put "$6.ratio" "$q"
	put "$6.vault.rounds" "$(echo $2 | tr ' ' ,)"; put "$6.restic.rounds" "$(echo $3 | tr ' ' ,)"
	put "$6.ratio.range" "$(echo "$4" | range)"
}
DATA=${R[data_bytes]}
mibs() { echo "$1" | awk -v m=$MB '{ for (i = 1; i <= NF; i++) printf "%s%.1f", (i > 1 ? " " : ""), $i / m }'; }
{
	echo
	printf '%-40s %12s %12s %8s %11s\n' "snapfs vault vs restic $(restic version | awk '{ print $2 }'), file://" vault restic ratio per-round
	printf 'volume: %s MiB in %s files; change: %s%% (%s small files, %s MiB); %s rounds\n' \
		"$(calc "$DATA / $MB" 0)" "${R[data_files]}" "$PCT" "${R[change_files]}" "$(calc "${R[change_bytes]} / $MB" 1)" "$ROUNDS"
	vb=$(rates "${R[file.vault.full.secs]}" "$DATA") rb=$(rates "${R[file.restic.full.secs]}" "$DATA")
	row "full backup (MiB/s)" "$vb" "$rb" "$(ratios "$vb" "$rb")" .1f full_mibs
	vr=$(rates "${R[file.vault.restore.secs]}" "$DATA") rr=$(rates "${R[file.restic.restore.secs]}" "$DATA")
	row "restore of the incremental (MiB/s)" "$vr" "$rr" "$(ratios "$vr" "$rr")" .1f restore_mibs
	row "incremental backup (s; ratio restic/vault)" "${R[file.vault.incr.secs]}" "${R[file.restic.incr.secs]}" \
		"$(ratios "${R[file.restic.incr.secs]}" "${R[file.vault.incr.secs]}")" .2f incr_secs
	va=$(mibs "${R[file.vault.incr.added]}") ra=$(mibs "${R[file.restic.incr.added]}")
	row "incremental: repository grew (MiB)" "$va" "$ra" "$(ratios "$va" "$ra")" .2f incr_added_mib
	vs=$(mibs "${R[file.vault.full.stored]}") rs=$(mibs "${R[file.restic.full.stored]}")
	row "stored after the full backup (MiB)" "$vs" "$rs" "$(ratios "$vs" "$rs")" .1f full_stored_mib
	vs=$(mibs "${R[file.vault.incr.stored]}") rs=$(mibs "${R[file.restic.incr.stored]}")
	row "stored after the incremental (MiB)" "$vs" "$rs" "$(ratios "$vs" "$rs")" .1f incr_stored_mib
	row "peak memory (RSS), full backup (MiB)" "${R[file.vault.full.rss]}" "${R[file.restic.full.rss]}" \
		"$(ratios "${R[file.vault.full.rss]}" "${R[file.restic.full.rss]}")" .1f full_rss_mib
	row "peak memory (RSS), restore (MiB)" "${R[file.vault.restore.rss]}" "${R[file.restic.restore.rss]}" \
		"$(ratios "${R[file.vault.restore.rss]}" "${R[file.restic.restore.rss]}")" .1f restore_rss_mib
	row "objects after the incremental" "${R[file.vault.incr.objects]}" "${R[file.restic.incr.objects]}" \
		"$(ratios "${R[file.vault.incr.objects]}" "${R[file.restic.incr.objects]}")" .0f incr_objects
	put vault_incr_uploaded_bytes "$(echo "${R[file.vault.incr.uploaded]}" | median)"
	if [ "$S3" = 1 ]; then
		n=$((ROUNDS + 1)) gib=$(calc "$DATA / 1073741824" 6)
		echo
		printf '%-40s %12s %12s %8s\n' "s3:// against moto_server, one round" vault restic ratio
		for what in full incr restore; do
			v=${R[s3.vault.$what.requests]} r=${R[s3.restic.$what.requests]}
			case $what in
			full) label="full backup: requests per GiB" ;;
			incr) label="incremental backup: requests" ;;
			restore) label="restore: requests per GiB" ;;
			esac
			if [ "$what" != incr ]; then v=$(calc "$v / $gib" 0) r=$(calc "$r / $gib" 0); fi
			printf '%-40s %12s %12s %8.2f\n' "$label" "$v" "$r" "$(calc "$v / $r" 3)"
			put "s3_${what}_requests.vault" "$v"; put "s3_${what}_requests.restic" "$r"
		done
		vb=$(rates "${R[s3.vault.full.secs.$n]}" "$DATA") rb=$(rates "${R[s3.restic.full.secs.$n]}" "$DATA")
		printf '%-40s %12.1f %12.1f %8.2f\n' "full backup (MiB/s)" "$vb" "$rb" "$(calc "$vb / $rb" 3)"
		vr=$(rates "${R[s3.vault.restore.secs.$n]}" "$DATA") rr=$(rates "${R[s3.restic.restore.secs.$n]}" "$DATA")
		printf '%-40s %12.1f %12.1f %8.2f\n' "restore (MiB/s)" "$vr" "$rr" "$(calc "$vr / $rr" 3)"
		v=${R[s3.vault.incr.secs.$n]} r=${R[s3.restic.incr.secs.$n]}
		printf '%-40s %12.2f %12.2f %8.2f\n' "incremental backup (s; restic/vault)" "$v" "$r" "$(calc "$r / $v" 3)"
		put s3_full_mibs.vault "$vb"; put s3_full_mibs.restic "$rb"
		echo "requests by method and kind:"
		for what in full incr restore; do
			for tool in vault restic; do
				printf '  %-7s %-7s %s\n' "$what" "$tool" "${R[s3.$tool.$what.kinds]}"
			done
		done
		put s3_restore_mibs.vault "$vr"; put s3_restore_mibs.restic "$rr"
	fi
	echo
	echo "ratios: vault/restic for MiB/s, stored bytes and objects (stored: aim <= 1);"
	echo "restic/vault for the incremental's time (how many times faster the vault is)."
	echo "load average at the end: $(loadavg) on $(nproc) cores"
} | tee "$W/table"

{
	for k in "${KEYS[@]}"; do echo "$k ${R[$k]}"; done
	echo "mib $MIB"
	echo "files $FILES"
	echo "change_pct $PCT"
	echo "rounds $ROUNDS"
	echo "drop_caches $([ "$(id -u)" = 0 ] && echo 1 || echo 0)"
	echo "snapfs $SNAPFS"
	echo "restic $(restic version | awk '{ print $2 }')"
	echo "kernel $(uname -r)"
	echo "backing_fs $(df -T "$BASE_DIR" | awk 'NR == 2 { print $2 }')"
	echo "nproc $(nproc)"
	echo "loadavg $(loadavg)"
} >"$OUT" || die "cannot write $OUT"
log "summary in $OUT"
