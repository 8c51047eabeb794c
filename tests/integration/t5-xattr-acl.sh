#!/bin/bash
# Extended attributes and POSIX ACLs: values round-trip in every namespace,
# and ACLs grant, deny and are inherited as POSIX.1e says.
. "$(dirname "$0")/lib.sh"
vol_create || test_bail "cannot create a volume"

# ------------------------------------------------------------------ xattrs

test_expect_success XATTR_USER 'a user. xattr can be set, read back and listed' '
	echo data >f &&
	setfattr -n user.color -v blue f &&
	assert_eq blue "$(getfattr --only-values -n user.color f)" &&
	setfattr -n user.shape -v round f &&
	getfattr --absolute-names -d f >"$REF/dump" &&
	assert_grep "^user.color=\"blue\"$" "$REF/dump" &&
	assert_grep "^user.shape=\"round\"$" "$REF/dump" &&
	assert_eq "OK user.color user.shape" "$(sysc listxattr f)"
'

test_expect_success XATTR_USER 'setting an xattr again replaces its value' '
	setfattr -n user.color -v "a much longer value than before" f &&
	assert_eq "a much longer value than before" "$(getfattr --only-values -n user.color f)" &&
	setfattr -n user.color -v red f &&
	assert_eq red "$(getfattr --only-values -n user.color f)"
'

test_expect_success XATTR_USER 'a removed xattr is gone: ENODATA' '
	setfattr -x user.shape f &&
	assert_errno ENODATA getxattr f user.shape &&
	assert_eq "OK user.color" "$(sysc listxattr f)" &&
	assert_fails getfattr -n user.shape f
'

test_expect_success XATTR_USER 'a missing xattr gives ENODATA for get and remove' '
	assert_errno ENODATA getxattr f user.never-set &&
	assert_errno ENODATA removexattr f user.never-set
'

test_expect_success XATTR_USER 'XATTR_CREATE on an existing name gives EEXIST, XATTR_REPLACE on a missing one ENODATA' '
	assert_errno EEXIST setxattr f user.color x create &&
	assert_errno ENODATA setxattr f user.none x replace &&
	assert_errno OK setxattr f user.color green replace &&
	assert_errno OK setxattr f user.fresh new create &&
	assert_eq green "$(getfattr --only-values -n user.color f)"
'

test_expect_success XATTR_USER 'an empty value and a binary value round-trip' '
	sysc setxattr f user.empty "" &&
	assert_eq "OK 0 $(printf "" | sha256sum | cut -d" " -f1)" "$(sysc getxattr f user.empty)" &&
	head -c 256 /dev/urandom >"$REF/bin" &&
	sysc setxattr f user.bin "@$REF/bin" &&
	assert_eq "OK 256 $(sha256sum <"$REF/bin" | cut -d" " -f1)" "$(sysc getxattr f user.bin)"
'

test_expect_success XATTR_USER 'xattrs on a directory' '
	mkdir xd &&
	setfattr -n user.dir -v yes xd &&
	assert_eq yes "$(getfattr --only-values -n user.dir xd)"
'

test_expect_success XATTR_USER 'an xattr name over 255 bytes gives ERANGE' '
	assert_errno ERANGE setxattr f "user.$(long_name 251)" v
'

test_expect_success BIG_XATTR 'a 60 KiB xattr value round-trips' '
	rand_file "$REF/big" 61440 &&
	assert_errno OK setxattr f user.big "@$REF/big" &&
	assert_eq "OK 61440 $(sha256sum <"$REF/big" | cut -d" " -f1)" "$(sysc getxattr f user.big)" &&
	getfattr --only-values -n user.big f >"$REF/big.back" &&
	assert_cmp "$REF/big" "$REF/big.back" &&
	setfattr -x user.big f &&
	assert_errno ENODATA getxattr f user.big
'

test_expect_success ROOT,XATTR_TRUSTED 'a trusted. xattr can be set, read, listed and removed by root' '
	setfattr -n trusted.t1 -v tvalue f &&
	assert_eq tvalue "$(getfattr --only-values -n trusted.t1 f)" &&
	getfattr -m - --absolute-names -d f >"$REF/dump" &&
	assert_grep "^trusted.t1=\"tvalue\"$" "$REF/dump" &&
	setfattr -x trusted.t1 f &&
	assert_errno ENODATA getxattr f trusted.t1
'

test_expect_success ROOT,XATTR_SECURITY 'a security. xattr can be set, read, listed and removed' '
	setfattr -n security.s1 -v svalue f &&
	assert_eq svalue "$(getfattr --only-values -n security.s1 f)" &&
	getfattr -m - --absolute-names -d f >"$REF/dump" &&
	assert_grep "^security.s1=\"svalue\"$" "$REF/dump" &&
	setfattr -x security.s1 f &&
	assert_errno ENODATA getxattr f security.s1
'

test_expect_success ROOT,NOBODY,XATTR_TRUSTED 'ordinary users may not set (EPERM) or get (ENODATA) trusted. xattrs' '
	mkdir -p own && chmod 777 own && as_nobody touch own/nf &&
	setfattr -n trusted.hidden -v h own/nf &&
	assert_errno EPERM --nobody setxattr own/nf trusted.x v &&
	assert_errno ENODATA --nobody getxattr own/nf trusted.hidden &&
	assert_errno OK --nobody setxattr own/nf user.mine v
'

test_expect_success ROOT,NOBODY,XATTR_TRUSTED 'trusted. xattrs are not listed to ordinary users' '
	assert_eq "OK user.mine" "$(as_nobody sysc listxattr own/nf)" &&
	assert_eq "OK trusted.hidden user.mine" "$(sysc listxattr own/nf)"
'

test_expect_success ROOT,NOBODY,XATTR_USER 'user. xattrs need write permission to set' '
	echo x >ro && chmod 644 ro &&
	assert_errno EACCES --nobody setxattr ro user.a v &&
	setfattr -n user.readable -v r ro &&
	assert_eq "OK 1 $(printf r | sha256sum | cut -d" " -f1)" "$(as_nobody sysc getxattr ro user.readable)"
'

test_expect_success XATTR_USER 'a user. xattr on a symlink gives EPERM' '
	ln -s f sl &&
	assert_errno EPERM setxattr sl user.x v
'

test_expect_success XATTR_USER 'setting an xattr changes ctime, not mtime' '
	touch -d "2003-03-03" f &&
	m=$(mtime_ns f) && c=$(ctime_ns f) && sleep 0.02 &&
	setfattr -n user.ct -v 1 f &&
	assert_eq "$m" "$(mtime_ns f)" &&
	assert_ne "$c" "$(ctime_ns f)"
'

test_expect_success XATTR_USER 'xattrs follow the file through rename and hard links, and go with it' '
	echo r >xr && setfattr -n user.k -v v1 xr &&
	mv xr xr2 && ln xr2 xr3 &&
	assert_eq v1 "$(getfattr --only-values -n user.k xr3)" &&
	rm xr2 xr3 &&
	echo r >xr2 &&
	assert_errno ENODATA getxattr xr2 user.k
'

test_expect_success XATTR_USER 'many xattrs on one file are all listed' '
	touch many &&
	for i in $(seq 1 50); do setfattr -n "user.attr$i" -v "value$i" many || exit 1; done &&
	assert_eq 50 "$(getfattr --absolute-names -d many | grep -c "^user.attr")" &&
	assert_eq value37 "$(getfattr --only-values -n user.attr37 many)"
'

# -------------------------------------------------------------------- ACLs

tab=$(printf "\t")

test_expect_success ACL,ROOT,NOBODY 'without an ACL a mode 600 file denies another user: EACCES' '
	echo secret >acl-file && chmod 600 acl-file &&
	assert_errno EACCES --nobody open acl-file r &&
	assert_fails as_nobody cat acl-file
'

test_expect_success ACL,ROOT,NOBODY 'an ACL entry for user 65534 lets that user read a mode 600 file' '
	setfacl -m u:65534:r acl-file &&
	assert_eq secret "$(as_nobody cat acl-file)" &&
	assert_errno EACCES --nobody open acl-file w &&
	getfacl -cn acl-file >"$REF/acl" &&
	assert_grep "^user:65534:r--$" "$REF/acl" &&
	assert_grep "^mask::r--$" "$REF/acl" &&
	assert_stat acl-file %A -rw-r-----
'

test_expect_success ACL,ROOT,NOBODY 'an ACL entry with no rights denies a user that "other" would allow' '
	echo public >acl-deny && chmod 644 acl-deny &&
	as_nobody cat acl-deny >/dev/null &&
	setfacl -m u:65534:- acl-deny &&
	assert_errno EACCES --nobody open acl-deny r
'

test_expect_success ACL,ROOT,NOBODY 'setfacl -b removes the ACL and the mode rules again' '
	setfacl -b acl-file &&
	assert_eq "" "$(getfacl -cns acl-file)" &&
	assert_stat acl-file %a 600 &&
	assert_errno EACCES --nobody open acl-file r
'

test_expect_success ACL,ROOT,NOBODY 'chmod updates the ACL mask, and so the rights of named users' '
	echo w >acl-mask && chmod 644 acl-mask &&
	setfacl -m u:65534:rw acl-mask &&
	assert_stat acl-mask %A -rw-rw-r-- &&
	assert_errno OK --nobody open acl-mask w &&
	chmod 640 acl-mask &&
	printf "user::rw-\nuser:65534:rw-\t#effective:r--\ngroup::r--\nmask::r--\nother::---\n\n" >"$REF/expect" &&
	getfacl -cn acl-mask >"$REF/actual" &&
	assert_cmp "$REF/expect" "$REF/actual" &&
	assert_errno EACCES --nobody open acl-mask w &&
	assert_errno OK --nobody open acl-mask r
'

test_expect_success ACL,ROOT 'a default ACL on a directory is inherited by new files' '
	mkdir inherit && chmod 755 inherit &&
	setfacl -d -m u:65534:rwx inherit &&
	umask 022 &&
	touch inherit/newfile &&
	printf "user::rw-\nuser:65534:rwx\t#effective:rw-\ngroup::r-x\t#effective:r--\nmask::rw-\nother::r--\n\n" >"$REF/expect" &&
	getfacl -cn inherit/newfile >"$REF/actual" &&
	assert_cmp "$REF/expect" "$REF/actual" &&
	assert_stat inherit/newfile %A -rw-rw-r--
'

test_expect_success ACL,ROOT 'a default ACL is inherited by new subdirectories, as access and default ACL' '
	umask 022 &&
	mkdir inherit/sub &&
	printf "%s\n" user::rwx user:65534:rwx group::r-x mask::rwx other::r-x \
		default:user::rwx default:user:65534:rwx default:group::r-x \
		default:mask::rwx default:other::r-x "" >"$REF/expect" &&
	getfacl -cn inherit/sub >"$REF/actual" &&
	assert_cmp "$REF/expect" "$REF/actual" &&
	assert_stat inherit/sub %A drwxrwxr-x &&
	touch inherit/sub/deeper &&
	getfacl -cn inherit/sub/deeper >"$REF/actual2" &&
	assert_grep "^user:65534:rwx${tab}#effective:rw-$" "$REF/actual2"
'

test_expect_success ACL,ROOT,NOBODY 'the inherited ACL is enforced: user 65534 may write the new file' '
	assert_errno OK --nobody write inherit/newfile hello &&
	assert_eq hello "$(cat inherit/newfile)"
'

test_expect_success ACL,ROOT 'a mode given at creation is masked by the default ACL, not the umask' '
	umask 077 &&
	touch inherit/masked &&
	assert_stat inherit/masked %A -rw-rw-r-- &&
	assert_errno OK open inherit/m400 wcx 400 &&
	assert_stat inherit/m400 %A -r--------
'

test_expect_success ACL,ROOT 'the ACL is kept in system.posix_acl_access' '
	getfattr -m - --absolute-names -d acl-mask >"$REF/dump" &&
	assert_grep "^system.posix_acl_access=" "$REF/dump" &&
	getfattr -m - --absolute-names -d inherit >"$REF/dump" &&
	assert_grep "^system.posix_acl_default=" "$REF/dump"
'

test_expect_success ACL,ROOT,NOBODY 'an ACL on a directory grants traversal' '
	mkdir locked && chmod 700 locked && echo in >locked/f && chmod 644 locked/f &&
	assert_fails as_nobody cat locked/f &&
	setfacl -m u:65534:x locked &&
	assert_eq in "$(as_nobody cat locked/f)"
'

test_done
