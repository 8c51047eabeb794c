#!/bin/bash
# Regular files: contents written are the contents read, whatever the
# offsets, sizes, holes and truncations.
. "$(dirname "$0")/lib.sh"
vol_create || test_bail "cannot create a volume"

test_expect_success 'a small file written with echo reads back' '
	echo "hello, snapfs" >small &&
	assert_eq "hello, snapfs" "$(cat small)" &&
	assert_stat small %s 14
'

test_expect_success 'an empty file has size 0 and reads as nothing' '
	: >empty &&
	assert_stat empty %s 0 &&
	assert_eq 0 "$(wc -c <empty)"
'

test_expect_success 'a 3 MiB file of random data reads back identical' '
	rand_file "$REF/r3m" $((3 * 1024 * 1024 + 17)) &&
	cp "$REF/r3m" r3m &&
	assert_cmp "$REF/r3m" r3m &&
	assert_stat r3m %s $((3 * 1024 * 1024 + 17))
'

test_expect_success 'files written in odd-sized chunks read back identical' '
	rand_file "$REF/chunky" 1000003 &&
	dd if="$REF/chunky" of=chunky bs=4097 status=none &&
	assert_cmp "$REF/chunky" chunky &&
	dd if=chunky bs=777 status=none | cmp - "$REF/chunky"
'

test_expect_success 'appending with >> adds to the end' '
	echo one >app &&
	echo two >>app &&
	printf "three" >>app &&
	assert_eq "$(printf "one\ntwo\nthree")" "$(cat app)" &&
	assert_stat app %s 13
'

test_expect_success 'O_APPEND writes go to the end even after a seek elsewhere' '
	rand_file "$REF/app2" 70000 &&
	cp "$REF/app2" app2 &&
	echo tail-data | dd of=app2 oflag=append conv=notrunc status=none &&
	echo tail-data >>"$REF/app2" &&
	assert_cmp "$REF/app2" app2
'

test_expect_success 'O_CREAT|O_EXCL on an existing file fails with EEXIST' '
	assert_errno EEXIST open small wcx &&
	assert_errno OK open brand-new wcx &&
	assert_stat brand-new %s 0
'

test_expect_success 'opening a missing file without O_CREAT fails with ENOENT' '
	assert_errno ENOENT open no-such-file r
'

test_expect_success 'O_TRUNC empties a file' '
	echo something >trunc-me &&
	assert_errno OK open trunc-me wt &&
	assert_stat trunc-me %s 0
'

test_expect_success 'a sparse file reads holes as zeros and uses few blocks' '
	truncate -s 100M sparse &&
	printf middle | dd of=sparse bs=1 seek=$((50 * 1024 * 1024)) conv=notrunc status=none &&
	assert_stat sparse %s $((100 * 1024 * 1024)) &&
	assert_zeros sparse 0 $((50 * 1024 * 1024)) &&
	assert_eq 6d6964646c65 "$(sysc pread sparse $((50 * 1024 * 1024)) 6 | cut -d" " -f2)" &&
	assert_zeros sparse $((50 * 1024 * 1024 + 6)) $((50 * 1024 * 1024 - 6)) &&
	blocks=$(stat -c %b sparse) &&
	assert_le "$blocks" 2048 "512-byte blocks used by a 100 MiB file with 6 bytes of data"
'

test_expect_success SPARSE_5G 'a sparse file over 4 GiB: bytes written at 5 GiB read back' '
	off=$((5 * 1024 * 1024 * 1024)) &&
	printf "far away" | dd of=huge bs=1 seek=$off conv=notrunc status=none &&
	assert_stat huge %s $((off + 8)) &&
	assert_eq "far away" "$(tail -c 8 huge)" &&
	assert_eq "$(printf "far away" | od -An -tx1 | tr -d " \n")" \
		"$(sysc pread huge $off 8 | cut -d" " -f2)" &&
	assert_eq 0000000000000000 "$(sysc pread huge $((4 * 1024 * 1024 * 1024 - 4)) 8 | cut -d" " -f2)" &&
	assert_zeros huge $((off - 65536)) 65536 &&
	assert_le "$(stat -c %b huge)" 2048 "blocks of a 5 GiB file with 8 bytes" &&
	rm huge
'

test_expect_success 'a write just past 4 GiB does not wrap around to offset 0' '
	printf AAAA >wrap &&
	sysc pwrite wrap $((4 * 1024 * 1024 * 1024)) BBBB &&
	assert_eq 41414141 "$(sysc pread wrap 0 4 | cut -d" " -f2)" &&
	assert_eq 42424242 "$(sysc pread wrap $((4 * 1024 * 1024 * 1024)) 4 | cut -d" " -f2)" &&
	assert_stat wrap %s $((4 * 1024 * 1024 * 1024 + 4)) &&
	rm wrap
'

test_expect_success 'truncate down keeps the head of the file' '
	rand_file "$REF/t" 300000 &&
	cp "$REF/t" t &&
	truncate -s 123457 t &&
	assert_stat t %s 123457 &&
	head -c 123457 "$REF/t" >"$REF/t.head" &&
	assert_cmp "$REF/t.head" t
'

test_expect_success 'truncate up extends with zeros' '
	truncate -s 1000000 t &&
	assert_stat t %s 1000000 &&
	cmp -n 123457 "$REF/t" t &&
	assert_zeros t 123457 $((1000000 - 123457))
'

test_expect_success 'data cut off by truncate down does not come back on truncate up' '
	rand_file "$REF/tu" 65536 &&
	cp "$REF/tu" tu &&
	truncate -s 1000 tu &&
	truncate -s 65536 tu &&
	cmp -n 1000 "$REF/tu" tu &&
	assert_zeros tu 1000 64536 &&
	truncate -s 5 tu &&
	printf X | dd of=tu bs=1 seek=40000 conv=notrunc status=none &&
	assert_zeros tu 5 39995 &&
	assert_stat tu %s 40001
'

test_expect_success 'truncate to 0 then rewrite' '
	truncate -s 0 t &&
	assert_stat t %s 0 &&
	echo again >t &&
	assert_eq again "$(cat t)"
'

test_expect_success 'overwriting in the middle of a large file changes only that range' '
	rand_file "$REF/big" $((20 * 1024 * 1024)) &&
	cp "$REF/big" big &&
	rand_file "$REF/patch" 300001 &&
	for off in 7777777 0 $((20 * 1024 * 1024 - 300001)) 131071; do
		dd if="$REF/patch" of=big bs=1M seek=$off oflag=seek_bytes conv=notrunc status=none &&
		dd if="$REF/patch" of="$REF/big" bs=1M seek=$off oflag=seek_bytes conv=notrunc status=none ||
		exit 1
	done &&
	assert_stat big %s $((20 * 1024 * 1024)) &&
	assert_eq "$(sha256sum <"$REF/big")" "$(sha256sum <big)"
'

test_expect_success 'a write beyond the end of file leaves a zero-filled gap' '
	echo start >gap &&
	sysc pwrite gap 100000 end &&
	assert_stat gap %s 100003 &&
	assert_zeros gap 6 99994 &&
	assert_eq 656e64 "$(sysc pread gap 100000 3 | cut -d" " -f2)"
'

test_expect_success 'writes through a shared mmap are seen by read' '
	rand_file "$REF/mm" 200000 &&
	cp "$REF/mm" mm &&
	assert_errno OK mmapwrite mm 150001 MMAPPED &&
	printf MMAPPED | dd of="$REF/mm" bs=1 seek=150001 conv=notrunc status=none &&
	assert_cmp "$REF/mm" mm
'

test_expect_success 'an unlinked file stays readable through an open descriptor' '
	rand_file "$REF/ul" 100000 &&
	cp "$REF/ul" ul &&
	out=$(sysc unlinked-read ul) &&
	assert_eq "OK exists=0 nlink=0 sha256=$(sha256sum <"$REF/ul" | cut -d" " -f1)" "$out" &&
	assert_missing ul
'

test_expect_success 'cp of many small files reads back (directory of 100 files)' '
	mkdir "$REF/many" many &&
	for i in $(seq 1 100); do
		head -c $((i * 37)) /dev/urandom >"$REF/many/f$i" || exit 1
	done &&
	cp "$REF"/many/* many/ &&
	(cd "$REF/many" && sha256sum *) >"$REF/many.sum" &&
	(cd many && sha256sum -c --quiet "$REF/many.sum")
'

test_expect_success 'removing a file frees its name' '
	rm r3m &&
	assert_missing r3m &&
	echo new >r3m &&
	assert_eq new "$(cat r3m)"
'

test_done
