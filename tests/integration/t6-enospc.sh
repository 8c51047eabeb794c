#!/bin/bash
# Space: statfs reports the volume's geometry, a full volume says ENOSPC,
# and it stays usable and recovers when files are deleted.
. "$(dirname "$0")/lib.sh"
vol_create --size 64M || test_bail "cannot create a 64 MiB volume"

MiB=$((1024 * 1024))
free_bytes() { echo $(( $(stat -f -c '%a' .) * $(stat -f -c '%S' .) )); }

# ------------------------------------------------------------------ statfs

test_expect_success 'statfs reports a maximum name length of 255' '
	assert_eq 255 "$(stat -f -c %l .)"
'

test_expect_success 'statfs sizes are sane: free <= total, available <= free' '
	set -- $(stat -f -c "%S %b %f %a %c %d" .) &&
	bsize=$1 blocks=$2 bfree=$3 bavail=$4 files=$5 ffree=$6 &&
	assert_le 512 "$bsize" "block size" &&
	assert_le 1 "$blocks" "total blocks" &&
	assert_le "$bfree" "$blocks" "free <= total" &&
	assert_le "$bavail" "$bfree" "available <= free" &&
	assert_le "$ffree" "$files" "free inodes <= inodes"
'

test_expect_success SIZED 'statfs total size is about the --size given at mkfs (64 MiB)' '
	total=$(( $(stat -f -c %b .) * $(stat -f -c %S .) )) &&
	assert_le $((48 * MiB)) "$total" "total >= 48 MiB" &&
	assert_le "$total" $((68 * MiB)) "total <= 68 MiB" &&
	assert_le $((40 * MiB)) "$(free_bytes)" "an empty volume has most of its space free"
'

test_expect_success SIZED 'writing 8 MiB of random data lowers the free space' '
	sync && before=$(free_bytes) &&
	head -c $((8 * MiB)) /dev/urandom | dd of=eight bs=1M iflag=fullblock conv=fsync status=none &&
	sync && after=$(free_bytes) &&
	assert_le $((after + 6 * MiB)) "$before" "free space went down by >= 6 MiB" &&
	rm eight && sync
'

# ------------------------------------------------------------------ ENOSPC

test_expect_success SIZED 'writing 200 MiB of random data to a 64 MiB volume fails with ENOSPC' '
	echo keep >small-before &&
	set +e
	head -c $((200 * MiB)) /dev/urandom |
		dd of=huge bs=1M iflag=fullblock conv=fsync status=none 2>"$REF/dd.err"
	rc=${PIPESTATUS[1]}
	set -e
	cat "$REF/dd.err" &&
	assert_ne 0 "$rc" "exit status of dd" &&
	assert_grep "No space left on device" "$REF/dd.err"
'

test_expect_success SIZED 'a full volume still lists, stats and reads' '
	ls -la >/dev/null &&
	stat huge >/dev/null &&
	assert_eq keep "$(cat small-before)" &&
	cat huge >/dev/null
'

test_expect_success SIZED 'a full volume reports (almost) no available space' '
	sync &&
	assert_le "$(free_bytes)" $((8 * MiB))
'

test_expect_success SIZED 'appending to a file on the full volume fails with ENOSPC (at write, fsync or close)' '
	set +e
	head -c $((16 * MiB)) /dev/urandom |
		dd of=small-before bs=1M iflag=fullblock oflag=append conv=notrunc,fsync status=none 2>"$REF/dd2.err"
	rc=${PIPESTATUS[1]}
	set -e
	assert_ne 0 "$rc" &&
	assert_grep "No space left on device" "$REF/dd2.err" &&
	assert_eq keep "$(head -n 1 small-before)"
'

test_expect_success SIZED 'after deleting the big file, 16 MiB can be written and read back' '
	rm huge &&
	truncate -s 5 small-before &&
	sync &&
	echo small-after >small-after &&
	assert_eq small-after "$(cat small-after)" &&
	rand_file "$REF/sixteen" $((16 * MiB)) &&
	dd if="$REF/sixteen" of=sixteen bs=1M conv=fsync status=none &&
	assert_cmp "$REF/sixteen" sixteen &&
	assert_eq keep "$(head -n 1 small-before)"
'

test_expect_success SIZED 'the volume can be filled and emptied again a second time' '
	set +e
	head -c $((80 * MiB)) /dev/urandom |
		dd of=huge2 bs=1M iflag=fullblock conv=fsync status=none 2>"$REF/dd3.err"
	rc=${PIPESTATUS[1]}
	set -e
	assert_ne 0 "$rc" &&
	assert_grep "No space left on device" "$REF/dd3.err" &&
	rm huge2 sixteen && sync &&
	dd if="$REF/sixteen" of=sixteen-again bs=1M conv=fsync status=none &&
	assert_cmp "$REF/sixteen" sixteen-again
'

test_expect_success SIZED 'creating many empty files on a full volume gives ENOSPC or succeeds, never corrupts' '
	set +e
	head -c $((80 * MiB)) /dev/urandom |
		dd of=huge3 bs=1M iflag=fullblock conv=fsync status=none 2>/dev/null
	set -e
	mkdir -p emptyfiles 2>"$REF/mkdir.err" || assert_grep "No space left on device" "$REF/mkdir.err"
	for i in $(seq 1 50); do
		r=$(sysc open "emptyfiles/e$i" wc) || exit 1
		case $r in OK|ENOSPC|ENOENT) ;; *) echo "unexpected: $r"; exit 1 ;; esac
	done
	rm -rf huge3 emptyfiles &&
	sync &&
	echo fine >fine && assert_eq fine "$(cat fine)"
'

test_done
