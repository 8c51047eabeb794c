/*
 * acl.c - POSIX ACLs in their xattr form (system.posix_acl_access and
 * system.posix_acl_default), as FUSE_CAP_POSIX_ACL asks of a filesystem.
 *
 * With that capability the kernel enforces ACLs itself, from the xattrs
 * we return, but leaves three duties to us, which this file does the way
 * the kernel's fs/posix_acl.c does them for local filesystems:
 *   - inheritance: a node created in a directory with a default ACL gets
 *     that ACL as its access ACL, masked by the mode asked for (the umask
 *     is not applied), and a new directory also inherits the default ACL;
 *   - chmod: changing the mode rewrites the owner, mask (or group) and
 *     other entries of the access ACL;
 *   - setting an access ACL sets the mode from it, and an ACL that says
 *     no more than the mode is not stored at all.
 *
 * Format: a little-endian header {u32 version = 2} and entries
 * {u16 tag, u16 perm, u32 id}.
 */
#define _GNU_SOURCE
#include "acl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum {
    TAG_USER_OBJ = 0x01, TAG_USER = 0x02, TAG_GROUP_OBJ = 0x04,
    TAG_GROUP = 0x08, TAG_MASK = 0x10, TAG_OTHER = 0x20,
};

struct acl_entry {
    uint16_t tag;
    uint16_t perm;
    uint32_t id;
};

#define HDR 4
#define ENTRY 8

static size_t acl_count(const void *acl, size_t len)
{
    return (len - HDR) / ENTRY;
}

static struct acl_entry entry_at(const uint8_t *acl, size_t i)
{
    struct acl_entry e;
    memcpy(&e, acl + HDR + i * ENTRY, sizeof(e));
    return e;
}

static void entry_put(uint8_t *acl, size_t i, const struct acl_entry *e)
{
    memcpy(acl + HDR + i * ENTRY, e, sizeof(*e));
}

int acl_valid(const void *acl, size_t len)
{
    uint32_t version;
    if (len < HDR || (len - HDR) % ENTRY)
        return -EINVAL;
    memcpy(&version, acl, 4);
    if (version != 2)
        return -EOPNOTSUPP;
    int owners = 0, groups = 0, others = 0, masks = 0, named = 0;
    for (size_t i = 0; i < acl_count(acl, len); i++) {
        struct acl_entry e = entry_at(acl, i);
        if (e.perm & ~7)
            return -EINVAL;
        switch (e.tag) {
        case TAG_USER_OBJ: owners++; break;
        case TAG_GROUP_OBJ: groups++; break;
        case TAG_OTHER: others++; break;
        case TAG_MASK: masks++; break;
        case TAG_USER: case TAG_GROUP: named++; break;
        default: return -EINVAL;
        }
    }
    if (owners != 1 || groups != 1 || others != 1 || masks > 1 ||
        (named && !masks))
        return -EINVAL;
    return 0;
}

int acl_equiv_mode(const void *acl, size_t len, uint32_t *mode)
{
    uint32_t m = 0;
    int not_equiv = 0;
    for (size_t i = 0; i < acl_count(acl, len); i++) {
        struct acl_entry e = entry_at(acl, i);
        switch (e.tag) {
        case TAG_USER_OBJ: m |= (uint32_t)(e.perm & 7) << 6; break;
        case TAG_GROUP_OBJ: m |= (uint32_t)(e.perm & 7) << 3; break;
        case TAG_OTHER: m |= e.perm & 7; break;
        case TAG_MASK:
            m = (m & ~(uint32_t)S_IRWXG) | ((uint32_t)(e.perm & 7) << 3);
            not_equiv = 1;
            break;
        default: not_equiv = 1; break;
        }
    }
    *mode = (*mode & ~(uint32_t)0777) | m;
    return not_equiv;
}

int acl_create_masq(void *acl, size_t len, uint32_t *mode_p)
{
    uint32_t mode = *mode_p;
    int not_equiv = 0;
    ssize_t group_obj = -1, mask_obj = -1;
    uint8_t *a = acl;
    for (size_t i = 0; i < acl_count(acl, len); i++) {
        struct acl_entry e = entry_at(a, i);
        switch (e.tag) {
        case TAG_USER_OBJ:
            e.perm &= (uint16_t)((mode >> 6) & 7);
            mode &= ((uint32_t)e.perm << 6) | ~(uint32_t)S_IRWXU;
            break;
        case TAG_USER: case TAG_GROUP: not_equiv = 1; break;
        case TAG_GROUP_OBJ: group_obj = (ssize_t)i; break;
        case TAG_OTHER:
            e.perm &= (uint16_t)(mode & 7);
            mode &= e.perm | ~(uint32_t)S_IRWXO;
            break;
        case TAG_MASK: mask_obj = (ssize_t)i; not_equiv = 1; break;
        default: return -EINVAL;
        }
        entry_put(a, i, &e);
    }
    ssize_t g = mask_obj >= 0 ? mask_obj : group_obj;
    if (g < 0)
        return -EINVAL;
    struct acl_entry e = entry_at(a, (size_t)g);
    e.perm &= (uint16_t)((mode >> 3) & 7);
    mode &= ((uint32_t)e.perm << 3) | ~(uint32_t)S_IRWXG;
    entry_put(a, (size_t)g, &e);
    *mode_p = (*mode_p & ~(uint32_t)0777) | (mode & 0777);
    return not_equiv;
}

void acl_chmod(void *acl, size_t len, uint32_t mode)
{
    uint8_t *a = acl;
    bool has_mask = false;
    for (size_t i = 0; i < acl_count(acl, len); i++)
        if (entry_at(a, i).tag == TAG_MASK)
            has_mask = true;
    for (size_t i = 0; i < acl_count(acl, len); i++) {
        struct acl_entry e = entry_at(a, i);
        if (e.tag == TAG_USER_OBJ)
            e.perm = (uint16_t)((mode >> 6) & 7);
        else if (e.tag == TAG_OTHER)
            e.perm = (uint16_t)(mode & 7);
        else if ((e.tag == TAG_MASK) || (e.tag == TAG_GROUP_OBJ && !has_mask))
            e.perm = (uint16_t)((mode >> 3) & 7);
        entry_put(a, i, &e);
    }
}
