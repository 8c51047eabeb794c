/*
 * acl.h - POSIX ACLs in xattr form: validation, inheritance, chmod.
 */
#ifndef SNAPFS_ACL_H
#define SNAPFS_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ACL_XATTR_ACCESS "system.posix_acl_access"
#define ACL_XATTR_DEFAULT "system.posix_acl_default"

/* 0 if ACL is a well-formed ACL, -EINVAL or -EOPNOTSUPP otherwise. */
int acl_valid(const void *acl, size_t len);
/* Set the permission bits of *MODE from ACL; 1 if the ACL says more than
 * a mode can (named entries or a mask), 0 if it is equivalent. */
int acl_equiv_mode(const void *acl, size_t len, uint32_t *mode);
/* Turn a copy of a default ACL into a new node's access ACL, masking it
 * with *MODE and narrowing *MODE to it.  1 if the result must be stored,
 * 0 if the mode alone says it all, -EINVAL if malformed. */
int acl_create_masq(void *acl, size_t len, uint32_t *mode);
/* Rewrite the owner, mask/group and other entries from MODE. */
void acl_chmod(void *acl, size_t len, uint32_t mode);

#endif
