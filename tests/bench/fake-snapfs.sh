#!/usr/bin/env bash
# fake-snapfs.sh - stand-in for the snapfs binary, for validating the bench
# harness before snapfs exists.  It implements the same CLI contract
# (mkfs / mount / umount / info) on top of libfuse's passthrough_ll example:
#
#   mkfs STORE [--size S] [--block-size N] [--compress C]
#        creates STORE/data (the passthrough source dir); options are recorded
#        in STORE/fake.conf and otherwise ignored
#   mount STORE MNT [-f] [-o OPTS]
#        runs passthrough_ll over STORE/data on MNT (multithreaded,
#        cache=always,writeback), writes its pid to STORE/daemon.pid and
#        returns once MNT is mounted; with -f it stays in the foreground.
#        -o OPTS are accepted and ignored.
#   umount MNT
#        unmounts and waits for the daemon to exit
#   info STORE|MNT
#        prints a few figures
#
# The passthrough_ll binary is taken from $PASSTHROUGH_LL if that is an
# executable, otherwise compiled once into STORE/.fake/ from libfuse's
# example source.
#
# This is NOT snapfs and measures nothing about snapfs: benchmark results
# with it only show the harness's own noise (snapfs/passthrough ~ 1.0).
set -euo pipefail

prog=fake-snapfs
die() { echo "$prog: $*" >&2; exit 1; }

example_src() {
	local d=/usr/share/doc/libfuse3-dev/examples
	if [[ -f $d/passthrough_ll.c ]]; then
		cat "$d/passthrough_ll.c"
	elif [[ -f $d/passthrough_ll.c.gz ]]; then
		gzip -dc "$d/passthrough_ll.c.gz"
	else
		die "passthrough_ll.c not found in $d (install libfuse3-dev)"
	fi
}

# print the path of a usable passthrough_ll binary
ptll_bin() {
	local store=$1
	if [[ -n ${PASSTHROUGH_LL:-} && -x ${PASSTHROUGH_LL} ]]; then
		echo "$PASSTHROUGH_LL"
		return
	fi
	local out=$store/.fake/passthrough_ll
	if [[ ! -x $out ]]; then
		local d=/usr/share/doc/libfuse3-dev/examples
		mkdir -p "$store/.fake"
		example_src >"$store/.fake/passthrough_ll.c"
		# the example includes passthrough_helpers.h from its own dir
		local hdr=$d/passthrough_helpers.h
		if [[ -f $hdr ]]; then
			cp "$hdr" "$store/.fake/"
		elif [[ -f $hdr.gz ]]; then
			gzip -dc "$hdr.gz" >"$store/.fake/passthrough_helpers.h"
		fi
		# shellcheck disable=SC2046
		cc -O2 -o "$out" "$store/.fake/passthrough_ll.c" \
			$(pkg-config --cflags --libs fuse3) >&2 ||
			die "cannot compile passthrough_ll"
	fi
	echo "$out"
}

# store directory of a mounted MNT (from the fsname= we gave it)
store_of_mnt() {
	local mnt
	mnt=$(realpath -e "$1") || return 1
	awk -v m="$mnt" '$2 == m && $3 ~ /fakesnapfs/ { print $1 }' /proc/mounts | tail -n1
}

cmd_mkfs() {
	local store="" size="" bs="" comp=""
	while (($#)); do
		case $1 in
		--size) size=$2; shift 2 ;;
		--size=*) size=${1#*=}; shift ;;
		--block-size) bs=$2; shift 2 ;;
		--block-size=*) bs=${1#*=}; shift ;;
		--compress) comp=$2; shift 2 ;;
		--compress=*) comp=${1#*=}; shift ;;
		-*) die "mkfs: unknown option $1" ;;
		*) [[ -z $store ]] || die "mkfs: extra argument $1"; store=$1; shift ;;
		esac
	done
	[[ -n $store ]] || die "usage: mkfs STORE [--size S] [--block-size N] [--compress C]"
	mkdir -p "$store"
	[[ ! -e $store/data ]] || die "mkfs: $store already holds a volume"
	mkdir "$store/data"
	printf 'size %s\nblock_size %s\ncompress %s\n' \
		"${size:-default}" "${bs:-default}" "${comp:-default}" >"$store/fake.conf"
	ptll_bin "$store" >/dev/null
}

cmd_mount() {
	local store="" mnt="" fg=0
	while (($#)); do
		case $1 in
		-f) fg=1; shift ;;
		-o) shift 2 ;;          # accepted, ignored
		-o*) shift ;;
		-*) die "mount: unknown option $1" ;;
		*)
			if [[ -z $store ]]; then store=$1
			elif [[ -z $mnt ]]; then mnt=$1
			else die "mount: extra argument $1"; fi
			shift ;;
		esac
	done
	[[ -n $store && -n $mnt ]] || die "usage: mount STORE MNT [-f] [-o OPTS]"
	store=$(realpath -e "$store") || die "no store $store"
	mnt=$(realpath -e "$mnt") || die "no mountpoint $mnt"
	[[ -d $store/data ]] || die "mount: $store is not a volume (run mkfs)"
	! mountpoint -q "$mnt" || die "mount: $mnt is already a mountpoint"
	local bin
	bin=$(ptll_bin "$store")
	local opts="source=$store/data,cache=always,writeback,clone_fd,fsname=$store,subtype=fakesnapfs"
	if ((fg)); then
		echo $$ >"$store/daemon.pid"
		exec "$bin" -f -o "$opts" "$mnt"
	fi
	# setsid: detach from the caller's session like a real daemon.  In a
	# non-interactive shell the background child is not a process-group
	# leader, so setsid does not fork and $! is the daemon's pid.
	setsid "$bin" -f -o "$opts" "$mnt" </dev/null >>"$store/daemon.log" 2>&1 &
	local pid=$!
	echo "$pid" >"$store/daemon.pid"
	local i
	for ((i = 0; i < 200; i++)); do
		if mountpoint -q "$mnt"; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || die "mount: daemon exited (see $store/daemon.log)"
		sleep 0.05
	done
	kill "$pid" 2>/dev/null || true
	die "mount: $mnt not mounted after 10s"
}

cmd_umount() {
	[[ $# -eq 1 ]] || die "usage: umount MNT"
	local mnt=$1 store pid=""
	store=$(store_of_mnt "$mnt") || true
	[[ -n $store ]] || die "umount: $mnt is not a fake-snapfs mount"
	[[ -f $store/daemon.pid ]] && pid=$(<"$store/daemon.pid")
	fusermount3 -u "$mnt"
	if [[ -n $pid ]]; then
		local i
		for ((i = 0; i < 600; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		! kill -0 "$pid" 2>/dev/null || die "umount: daemon $pid still running"
	fi
}

cmd_info() {
	[[ $# -eq 1 ]] || die "usage: info STORE|MNT"
	local store=$1
	if [[ ! -d $store/data ]]; then
		store=$(store_of_mnt "$1") || true
		[[ -n $store ]] || die "info: $1 is neither a store nor a mount"
	fi
	echo "fake-snapfs volume $store (passthrough_ll over $store/data)"
	cat "$store/fake.conf"
	echo "used_bytes $(du -sb "$store/data" | cut -f1)"
	echo "files $(find "$store/data" -xdev | wc -l)"
}

(($#)) || die "usage: $prog mkfs|mount|umount|info ..."
cmd=$1
shift
case $cmd in
mkfs | mount | umount | info) "cmd_$cmd" "$@" ;;
*) die "unknown command $cmd" ;;
esac
