/*
 * share.c - `snapfs share smb PATH [--name SHARE]` and `snapfs share nfs
 * PATH [--name PSEUDO] [--id N]`: the definition of a share of a mounted
 * volume, printed for the administrator to put into Samba's smb.conf (a
 * share section) or NFS-Ganesha's configuration (an EXPORT block).
 *
 * Guarantees:
 *  - PATH must be a directory of a mounted snapfs volume, outside
 *    .snapshot (the mount holding it is the longest mountpoint of
 *    /proc/self/mountinfo above it, and must be fuse.snapfs); a name or
 *    id that the server would misread is refused.  A refusal is one
 *    message and prints nothing.  Nothing is changed, ever.
 *  - Samba: Windows "Previous Versions" come from vfs_shadow_copy2 over
 *    MOUNT/.snapshot.  A snapshot is a previous version when its name is
 *    PREFIX.YYYY-MM-DD_HHMM with PREFIX free of dots (as snapshot
 *    policies name them), the time read as UTC (shadow:localtime = no):
 *    Samba 4.17's lookup of a version by its token (with a snapprefix)
 *    compares the token with the server's local time, so with localtime
 *    a server not in UTC lists versions it cannot open; read as UTC,
 *    every listed version opens, and its time is exact when the snapfs
 *    daemon runs in UTC (policies name snapshots in its local time).
 *    Other names (before-upgrade, snapmirror.*, a dump's
 *    snapshot_for_backup.*) are not versions and stay reachable in
 *    .snapshot.
 *    The volume's snapdir setting applies as it is when a client asks:
 *    hidden hides .snapshot from listings while previous versions work
 *    (they are reached by path), disabled removes both.  DOS attributes
 *    are stored in the user.DOSATTRIB xattr (store dos attributes, none
 *    mapped onto mode bits), which dump and the vault carry.
 *  - NFS: an NFS-Ganesha export through FSAL_VFS (file handles from
 *    name_to_handle_at, which snapfs keeps valid across inode eviction and
 *    daemon restarts).  FUSE gives each mount a new device number and no
 *    statfs fsid, so the handles Ganesha makes would change with a
 *    remount: the export indexes the volume by the device's major number
 *    alone (fsid_type = Major64, 0 for every FUSE mount: one snapfs
 *    volume per Ganesha), and clients see a Filesystem_Id derived from
 *    the volume's UUID.  A client's handles are then the same before and
 *    after the volume is remounted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "store.h"

#define SHARE_NAME_MAX 80
#define SNAPDIR_NAME ".snapshot" /* as fs/snapdir.h names it */

struct share_opts {
    const char *kind;  /* "smb" or "nfs" */
    const char *path;
    const char *name;  /* --name */
    const char *id;    /* --id (nfs) */
};

struct share_target {
    char real[PATH_MAX];  /* PATH resolved */
    char mount[PATH_MAX]; /* the snapfs mountpoint holding it */
    char snapdir[32];     /* the volume's snapdir setting */
    uint8_t uuid[16];
};

/* ---- where PATH is ---- */

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_octal(char *s)
{
    char *out = s;
    for (char *in = s; *in; in++) {
        if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' &&
            in[2] <= '7' && in[3] >= '0' && in[3] <= '7') {
            *out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
            in += 3;
        } else {
            *out++ = *in;
        }
    }
    *out = 0;
}

/* Is directory MNT PATH itself or above it? */
static bool holds(const char *mnt, const char *path)
{
    size_t n = strlen(mnt);
    if (!strcmp(mnt, "/"))
        return true;
    return !strncmp(mnt, path, n) && (path[n] == '/' || path[n] == 0);
}

/* The mount holding PATH: its mountpoint into MNT and whether it is a
 * snapfs volume.  -ENOENT when mountinfo cannot be read. */
static int mount_of(const char *path, char *mnt, size_t cap, bool *snapfs)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return -ENOENT;
    char line[3 * PATH_MAX];
    size_t best = 0;
    while (fgets(line, sizeof(line), f)) {
        char point[PATH_MAX], fstype[64];
        char *dash = strstr(line, " - ");
        if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 || !dash ||
            sscanf(dash + 3, "%63s", fstype) != 1)
            continue;
        unescape_octal(point);
        /* the longest wins; of equals, the last mounted (it covers) */
        if (!holds(point, path) || strlen(point) < best)
            continue;
        best = strlen(point);
        snprintf(mnt, cap, "%s", point);
        *snapfs = !strcmp(fstype, "fuse.snapfs");
    }
    fclose(f);
    return best ? 0 : -ENOENT;
}

/* Resolve PATH and find its volume; dies naming what is wrong. */
static void find_target(const char *cmd, const struct share_opts *o,
                        struct share_target *t)
{
    struct stat st;
    if (!realpath(o->path, t->real) || stat(t->real, &st))
        die(cmd, "%s: %s", o->path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        die(cmd, "%s: not a directory", o->path);
    bool snapfs = false;
    if (mount_of(t->real, t->mount, sizeof(t->mount), &snapfs) || !snapfs)
        die(cmd, "%s: not on a mounted snapfs volume (mount the volume with "
                 "'snapfs mount STORE MOUNTPOINT' and share the mountpoint)",
            o->path);
    const char *rest = t->real + strlen(t->mount);
    char pat[] = "/" SNAPDIR_NAME;
    for (const char *p = strstr(rest, pat); p; p = strstr(p + 1, pat))
        if (p[sizeof(pat) - 1] == '/' || p[sizeof(pat) - 1] == 0)
            die(cmd, "%s: inside %s (snapshots are served read-only through "
                     "the share of the volume)", o->path, SNAPDIR_NAME);
    if (strpbrk(t->real, "\n\"\\"))
        die(cmd, "%s: a path with a newline, '\"' or '\\' cannot be written "
                 "into a server's configuration", o->path);
}

/* The volume's snapdir setting and UUID. */
static void read_volume(const char *cmd, struct share_target *t)
{
    struct volume vol;
    volume_open(&vol, cmd, t->mount);
    int rc = volume_setting(&vol, cmd, "snapdir", t->snapdir,
                            sizeof(t->snapdir));
    if (rc)
        die(cmd, "%s: cannot read the snapdir setting: %s", t->mount,
            strerror(-rc));
    struct sfs_store *st = volume_read_store(&vol, cmd, "read");
    memcpy(t->uuid, st->super.uuid, sizeof(t->uuid));
    sfs_close(st);
    free(vol.store);
    free(vol.mountpoint);
}

/* ---- names ---- */

/* A share or export name the servers read back as given. */
static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > SHARE_NAME_MAX || name[0] == ' ' || name[n - 1] == ' ')
        return false;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f ||
            strchr("[]\"/\\:;|=,+*?<>%{}#$'", *p))
            return false;
    return true;
}

static const char *default_name(const struct share_target *t)
{
    const char *slash = strrchr(t->real, '/');
    return slash && slash[1] ? slash + 1 : "snapfs";
}

/* ---- Samba ---- */

static const char *snapdir_effect(const char *snapdir)
{
    if (!strcmp(snapdir, "hidden"))
        return "Previous Versions work; .snapshot is not listed";
    if (!strcmp(snapdir, "disabled"))
        return "no Previous Versions and no .snapshot (until it is enabled)";
    return "Previous Versions work; .snapshot is listed at the volume root";
}

static void print_smb(const struct share_target *t, const char *name)
{
    printf("# snapfs share smb: %s on the snapfs volume mounted at %s\n"
           "# snapdir=%s: %s (snapfs set %s snapdir=...)\n"
           "[%s]\n"
           "\tpath = %s\n"
           "\tread only = no\n"
           "\tvfs objects = shadow_copy2\n"
           "\t# Previous Versions: the snapshots named PREFIX.YYYY-MM-DD_HHMM\n"
           "\t# (policy snapshots), the time read as UTC (run snapfs in UTC)\n"
           "\tshadow:mountpoint = %s\n"
           "\tshadow:snapdir = %s\n"
           "\tshadow:snapprefix = ^[^.]\\{1,\\}$\n"
           "\tshadow:delimiter = .\n"
           "\tshadow:format = .%%Y-%%m-%%d_%%H%%M\n"
           "\tshadow:localtime = no\n"
           "\tshadow:sort = desc\n"
           "\t# DOS attributes in the user.DOSATTRIB xattr (dump and vault carry it)\n"
           "\tea support = yes\n"
           "\tstore dos attributes = yes\n"
           "\tmap archive = no\n"
           "\tmap hidden = no\n"
           "\tmap readonly = no\n"
           "\tmap system = no\n",
           t->real, t->mount, t->snapdir, snapdir_effect(t->snapdir), t->mount,
           name, t->real, t->mount, SNAPDIR_NAME);
}

/* ---- NFS-Ganesha ---- */

/* A Filesystem_Id MAJOR.MINOR from the volume's UUID. */
static void fsid_of(const uint8_t *uuid, unsigned long long *major,
                    unsigned long long *minor)
{
    *major = *minor = 0;
    for (int i = 0; i < 4; i++) {
        *major = *major << 8 | uuid[i];
        *minor = *minor << 8 | uuid[4 + i];
    }
}

/* Export ids 1-65535 (0 is the pseudo root): --id, or one from the UUID. */
static unsigned export_id(const char *cmd, const char *id, const uint8_t *uuid)
{
    if (!id)
        return 1u + ((unsigned)uuid[8] << 8 | uuid[9]) % 65535u;
    char *end;
    errno = 0;
    unsigned long v = strtoul(id, &end, 10);
    if (errno || *end || end == id || id[0] == '-' || v < 1 || v > 65535)
        die_usage(cmd, "--id '%s' is not an export id (1 to 65535)", id);
    return (unsigned)v;
}

static void print_nfs(const char *cmd, const struct share_target *t,
                      const char *name, const char *id)
{
    unsigned long long major, minor;
    fsid_of(t->uuid, &major, &minor);
    printf("# snapfs share nfs: %s on the snapfs volume mounted at %s\n"
           "# snapdir=%s: %s\n"
           "EXPORT {\n"
           "\tExport_Id = %u;\n"
           "\tPath = \"%s\";\n"
           "\tPseudo = \"/%s\";\n"
           "\tAccess_Type = RW;\n"
           "\tSquash = No_Root_Squash;\n"
           "\tSecType = sys;\n"
           "\tProtocols = 3, 4;\n"
           "\tTransports = TCP;\n"
           "\t# the same fsid and file handles after a remount (FUSE gives each\n"
           "\t# mount a new device): one snapfs volume per NFS-Ganesha\n"
           "\tFilesystem_Id = %llu.%llu;\n"
           "\tFSAL {\n"
           "\t\tName = VFS;\n"
           "\t\tfsid_type = Major64;\n"
           "\t}\n"
           "}\n",
           t->real, t->mount, t->snapdir,
           !strcmp(t->snapdir, "visible")
               ? ".snapshot is listed at the volume root"
               : !strcmp(t->snapdir, "hidden")
                     ? ".snapshot is reached by name only"
                     : "no .snapshot",
           export_id(cmd, id, t->uuid), t->real, name, major, minor);
}

/* ---- the command ---- */

static void parse_opts(const char *cmd, int argc, char **argv,
                       struct share_opts *o)
{
    memset(o, 0, sizeof(*o));
    if (argc < 2 || (strcmp(argv[1], "smb") && strcmp(argv[1], "nfs")))
        die_usage(cmd, "give smb or nfs, then the directory to share");
    o->kind = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *v;
        if ((v = option_value(cmd, "--name", argc, argv, &i)))
            o->name = v;
        else if (!strcmp(o->kind, "nfs") &&
                 (v = option_value(cmd, "--id", argc, argv, &i)))
            o->id = v;
        else if (argv[i][0] == '-')
            die_usage(cmd, "unknown option '%s'", argv[i]);
        else if (o->path)
            die_usage(cmd, "give one directory ('%s' is a second)", argv[i]);
        else
            o->path = argv[i];
    }
    if (!o->path)
        die_usage(cmd, "give the directory to share (a mounted volume)");
    if (o->name && !name_ok(o->name))
        die_usage(cmd, "--name '%s' is not a share name (1 to %d characters, "
                       "none of []\"/\\:;|=,+*?<>%%{}#$' or control characters)",
                  o->name, SHARE_NAME_MAX);
}

int cmd_share(int argc, char **argv)
{
    const char *cmd = "share";
    struct share_opts o;
    parse_opts(cmd, argc, argv, &o);
    struct share_target t;
    find_target(cmd, &o, &t);
    const char *name = o.name ? o.name : default_name(&t);
    if (!name_ok(name))
        die_usage(cmd, "%s: '%s' is not a share name; give one with --name",
                  o.path, name);
    read_volume(cmd, &t);
    if (!strcmp(o.kind, "smb"))
        print_smb(&t, name);
    else
        print_nfs(cmd, &t, name, o.id);
    return 0;
}
