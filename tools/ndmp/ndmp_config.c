/*
 * ndmp_config.c - the CONFIG service: host and server information, the
 * connection types, the "dump" backup type with its environment
 * variables, the snapfs volumes (fs info) and the file tapes.
 *
 * Guarantees: what is announced is what the server does: the auth types
 * are those a client may use (md5, and text only with --allow-text); the
 * butype attributes name only what the DATA service implements; the
 * file systems are the snapfs volumes mounted on this host, with the
 * sizes statvfs(2) gives for them.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "ndmp_int.h"
#include "store.h"

/* butype attributes (ndmp.x) */
#define BUTYPE_RECOVER_FILELIST 0x0004
#define BUTYPE_BACKUP_INCREMENTAL 0x0020
#define BUTYPE_RECOVER_INCREMENTAL 0x0040
#define BUTYPE_BACKUP_FH_DIR 0x0400
#define BUTYPE_RECOVER_FILEHIST 0x0800

#define FS_MAX 256

uint32_t config_host_info(struct session *s, struct xdr_in *x,
                          struct xdr_out *out)
{
    struct utsname u;
    char host[256] = "localhost", id[16];
    if (uname(&u))
        memset(&u, 0, sizeof(u));
    gethostname(host, sizeof(host) - 1);
    snprintf(id, sizeof(id), "%08lx", (unsigned long)gethostid() & 0xffffffff);
    xout_u32(out, NDMP_NO_ERR);
    xout_string(out, host);
    xout_string(out, u.sysname);
    xout_string(out, u.release);
    xout_string(out, id);
    return NDMP_NO_ERR;
}

uint32_t config_server_info(struct session *s, struct xdr_in *x,
                            struct xdr_out *out)
{
    xout_u32(out, NDMP_NO_ERR);
    xout_string(out, "snapfs");
    xout_string(out, "snapfs NDMP data and tape server");
    xout_string(out, "1");
    xout_u32(out, s->o->allow_text ? 2 : 1);
    xout_u32(out, NDMP_AUTH_MD5);
    if (s->o->allow_text)
        xout_u32(out, NDMP_AUTH_TEXT);
    return NDMP_NO_ERR;
}

uint32_t config_connection_type(struct session *s, struct xdr_in *x,
                                struct xdr_out *out)
{
    xout_u32(out, NDMP_NO_ERR);
    xout_u32(out, 2);
    xout_u32(out, NDMP_ADDR_LOCAL);
    xout_u32(out, NDMP_ADDR_TCP);
    return NDMP_NO_ERR;
}

static void put_pval(struct xdr_out *out, const char *name, const char *value)
{
    xout_string(out, name);
    xout_string(out, value);
}

uint32_t config_butype_info(struct session *s, struct xdr_in *x,
                            struct xdr_out *out)
{
    static const char *const env[][2] = {
        { "FILESYSTEM", "" },   /* a volume, a qtree or a directory */
        { "LEVEL", "0" },       /* 0-31 */
        { "UPDATE", "y" },      /* record the dump date */
        { "HIST", "n" },        /* file history for the DMA's index */
        { "BLOCKSIZE", "64" },  /* KiB per record when the mover is remote */
        { "SNAPSHOT", "" },     /* a snapshot to dump instead of a new one */
        { "DIRECT", "y" },      /* recover by position when names have it */
        { "BASE_DATE", "-1" },  /* 0 or a DUMP_DATE: token incrementals */
        { "EXCLUDE", "" },      /* name patterns left out, comma-separated */
    };
    size_t n = sizeof(env) / sizeof(env[0]);
    xout_u32(out, NDMP_NO_ERR);
    xout_u32(out, 1);
    xout_string(out, "dump");
    xout_u32(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        put_pval(out, env[i][0], env[i][1]);
    xout_u32(out, BUTYPE_RECOVER_FILELIST | BUTYPE_BACKUP_INCREMENTAL |
                     BUTYPE_RECOVER_INCREMENTAL | BUTYPE_BACKUP_FH_DIR |
                     BUTYPE_RECOVER_FILEHIST);
    return NDMP_NO_ERR;
}

struct fs_entry {
    char mountpoint[PATH_MAX];
    char store[PATH_MAX];
};

/* The snapfs volumes mounted here (/proc/self/mountinfo). */
static size_t mounted_volumes(struct fs_entry *v, size_t cap)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return 0;
    size_t n = 0;
    char line[3 * PATH_MAX];
    while (n < cap && fgets(line, sizeof(line), f)) {
        char fstype[64];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", v[n].mountpoint) != 1)
            continue;
        char *dash = strstr(line, " - ");
        if (!dash || sscanf(dash + 3, "%63s %4095s", fstype,
                            v[n].store) != 2)
            continue;
        if (!strcmp(fstype, "fuse.snapfs"))
            n++;
    }
    fclose(f);
    return n;
}

static bool is_mounted(const struct fs_entry *v, size_t n, const char *store)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].store, store))
            return true;
    return false;
}

/* A store given with --volume that is not mounted: its sizes from the
 * store itself (opened read-only); inodes are not counted. */
static void put_unmounted(struct xdr_out *out, const char *store)
{
    struct sfs_store *st = NULL;
    struct sfs_space sp = { 0 };
    MDB_txn *txn;
    int rc = sfs_open(store, SFS_OPEN_RDONLY, &st);
    if (!rc && !(rc = sfs_txn_begin(st, NULL, false, &txn))) {
        rc = sfs_space_get(st, txn, &sp);
        mdb_txn_abort(txn);
    }
    if (st)
        sfs_close(st);
    xout_u32(out, rc ? 0x1f : 0x18);   /* the _UNS bits */
    xout_string(out, "snapfs");
    xout_string(out, store);
    xout_string(out, store);
    xout_u64(out, sp.size);
    xout_u64(out, sp.used);
    xout_u64(out, sp.avail);
    xout_u64(out, 0);
    xout_u64(out, 0);
    xout_u32(out, 1);
    put_pval(out, "TYPE", "dump");
    char status[160];
    snprintf(status, sizeof(status), "%s%s", rc ? "unavailable: " : "unmounted",
             rc ? strerror(-rc) : "");
    xout_string(out, status);
}

uint32_t config_fs_info(struct session *s, struct xdr_in *x,
                        struct xdr_out *out)
{
    struct fs_entry *v = calloc(FS_MAX, sizeof(*v));
    if (!v)
        return NDMP_NO_MEM_ERR;
    size_t n = mounted_volumes(v, FS_MAX);
    uint32_t unmounted = 0;
    for (int i = 0; i < s->o->nvolumes; i++)
        unmounted += !is_mounted(v, n, s->o->volumes[i]);
    xout_u32(out, NDMP_NO_ERR);
    xout_u32(out, (uint32_t)n + unmounted);
    for (int i = 0; i < s->o->nvolumes; i++)
        if (!is_mounted(v, n, s->o->volumes[i]))
            put_unmounted(out, s->o->volumes[i]);
    for (size_t i = 0; i < n; i++) {
        struct statvfs sv;
        bool known = !statvfs(v[i].mountpoint, &sv);
        uint64_t unit = known ? sv.f_frsize : 0;
        xout_u32(out, known ? 0 : 0x1f);   /* the _UNS bits */
        xout_string(out, "snapfs");
        xout_string(out, v[i].mountpoint);
        xout_string(out, v[i].store);
        xout_u64(out, known ? sv.f_blocks * unit : 0);
        xout_u64(out, known ? (sv.f_blocks - sv.f_bfree) * unit : 0);
        xout_u64(out, known ? sv.f_bavail * unit : 0);
        xout_u64(out, known ? sv.f_files : 0);
        xout_u64(out, known ? sv.f_files - sv.f_ffree : 0);
        xout_u32(out, 1);
        put_pval(out, "TYPE", "dump");
        xout_string(out, known ? "online" : "unreachable");
    }
    free(v);
    return NDMP_NO_ERR;
}

uint32_t config_tape_info(struct session *s, struct xdr_in *x,
                          struct xdr_out *out)
{
    DIR *d = s->o->tape_dir ? opendir(s->o->tape_dir) : NULL;
    char (*names)[NAME_MAX + 1] = calloc(FS_MAX, sizeof(*names));
    size_t n = 0;
    for (struct dirent *e; d && names && n < FS_MAX && (e = readdir(d));) {
        struct stat sb;
        if (e->d_name[0] == '.' ||
            fstatat(dirfd(d), e->d_name, &sb, 0) || !S_ISREG(sb.st_mode))
            continue;
        snprintf(names[n++], NAME_MAX + 1, "%s", e->d_name);
    }
    if (d)
        closedir(d);
    if (!names)
        return NDMP_NO_MEM_ERR;
    xout_u32(out, NDMP_NO_ERR);
    xout_u32(out, (uint32_t)(n + (size_t)s->o->ntape_devices));
    for (int i = 0; i < s->o->ntape_devices; i++) {
        xout_string(out, "tape drive");
        xout_u32(out, 1);
        xout_string(out, s->o->tape_devices[i]);
        xout_u32(out, 0);
        xout_u32(out, 0);
    }
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX + NAME_MAX + 2];
        snprintf(path, sizeof(path), "%s/%s", s->o->tape_dir, names[i]);
        xout_string(out, "snapfs file tape");
        xout_u32(out, 1);
        xout_string(out, path);
        xout_u32(out, 0);
        xout_u32(out, 0);
    }
    free(names);
    return NDMP_NO_ERR;
}

uint32_t config_scsi_info(struct session *s, struct xdr_in *x,
                          struct xdr_out *out)
{
    xout_u32(out, NDMP_NO_ERR);
    xout_u32(out, 0);           /* no SCSI devices are offered */
    return NDMP_NO_ERR;
}
