/*
 * info.c - `snapfs info` (what a volume holds and what it costs) and
 * `snapfs fsck` (is it intact).
 *
 * Both read the store directly.  On a mounted volume, info first asks the
 * daemon to commit (syncfs and fsync of the mount root), so the figures
 * include every write acknowledged before the command started.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "store.h"

struct volume_figures {
    uint64_t size, used, avail, phys, stored_logical, ref_logical, inline_bytes;
    uint64_t logical, blocks, inodes, snapshots, file_bytes, free_pages;
    uint64_t snap_bytes, reserve; /* only snapshots hold; their reserve */
    struct sfs_file_pages pages;  /* the store file (store/compact.c) */
    uint32_t block_size;
    const char *codec;
    int level;
    char uuid[SFS_UUID_TEXT];
    uint32_t format;              /* on-disk format version */
    struct sfs_features features; /* none in format 1 */
};

static int count_snap(void *arg, const struct sfs_snap_rec *s)
{
    (void)s;
    (*(uint64_t *)arg)++;
    return 0;
}

static int gather(struct sfs_store *st, struct volume_figures *f)
{
    MDB_txn *txn;
    int rc = sfs_state_reload(st);
    if (!rc)
        rc = sfs_txn_begin(st, NULL, false, &txn);
    if (rc)
        return rc;
    memset(f, 0, sizeof(*f));
    struct sfs_space sp;
    rc = sfs_space_get(st, txn, &sp);
    f->used = sp.used;
    f->avail = sp.avail;
    f->snap_bytes = sp.snapshots;
    f->reserve = sp.reserve;
    if (!rc)
        rc = sfs_snap_foreach(st, txn, count_snap, &f->snapshots);
    if (!rc)
        rc = sfs_file_pages(st, txn, &f->pages);
    f->file_bytes = f->pages.file_pages * f->pages.page_size;
    mdb_txn_abort(txn);
    const struct sfs_state *s = &st->state;
    sfs_uuid_format(st->super.uuid, f->uuid);
    f->format = st->super.format_version;
    f->features = st->features;
    f->size = st->super.volume_size;
    f->block_size = st->super.block_size;
    f->codec = st->super.codec == SFS_CODEC_ZSTD ? "zstd" : "none";
    f->level = st->super.codec_level;
    f->phys = s->phys_bytes + s->inline_bytes;
    f->stored_logical = s->stored_logical + s->inline_bytes;
    f->ref_logical = s->ref_logical;
    f->logical = s->ref_logical + s->inline_bytes;
    f->inline_bytes = s->inline_bytes;
    f->blocks = s->blob_count;
    f->inodes = s->live_inodes;
    return rc;
}

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 1.0;
}

/* What compaction would give back, and the file's size after it. */
static uint64_t compact_size(const struct volume_figures *f)
{
    return f->pages.compact_pages * f->pages.page_size;
}

static uint64_t compact_gain(const struct volume_figures *f)
{
    uint64_t after = compact_size(f);
    return f->pages.file_bytes > after ? f->pages.file_bytes - after : 0;
}

/* Bytes of store (the pages all tables use) per file and per logical
 * byte. */
static double per_file(const struct volume_figures *f)
{
    return f->inodes ? (double)f->used / (double)f->inodes : 0;
}

static double per_logical(const struct volume_figures *f)
{
    return f->logical ? (double)f->used / (double)f->logical : 0;
}

static void print_pages(const struct volume_figures *f)
{
    char a[32], b[32], c[32];
    const struct sfs_file_pages *p = &f->pages;
    format_bytes(p->file_bytes, a, sizeof(a));
    printf("store file size:  %s (%llu bytes)\n", a,
           (unsigned long long)p->file_bytes);
    printf("store pages:      %llu in use, %llu free (of %llu, %llu bytes "
           "each)\n",
           (unsigned long long)p->used_pages, (unsigned long long)p->free_pages,
           (unsigned long long)p->file_pages,
           (unsigned long long)p->page_size);
    format_bytes(compact_gain(f), b, sizeof(b));
    format_bytes(compact_size(f), c, sizeof(c));
    printf("compaction:       would give back %s (the file would be %s; "
           "snapfs compact)\n", b, c);
    printf("store cost:       %.0f bytes per file, %.3f bytes per logical "
           "byte\n", per_file(f), per_logical(f));
}

static void print_text(const char *store, bool mounted,
                       const struct volume_figures *f)
{
    char a[32], b[32], c[32], d[32], e[32];
    format_bytes(f->size, a, sizeof(a));
    format_bytes(f->used, b, sizeof(b));
    format_bytes(f->avail, c, sizeof(c));
    printf("volume:           %s%s\n", store, mounted ? " (mounted)" : "");
    printf("uuid:             %s\n", f->uuid);
    printf("format:           %u", f->format);
    for (size_t i = 0; i < f->features.n; i++)
        printf("%s%s", i ? ", " : " (features: ", f->features.f[i].name);
    printf("%s\n", f->features.n ? ")" : "");
    printf("size:             %s, %s used, %s available\n", a, b, c);
    format_bytes(f->logical, a, sizeof(a));
    format_bytes(f->phys, b, sizeof(b));
    format_bytes(f->stored_logical, c, sizeof(c));
    printf("logical data:     %s (%llu bytes)\n", a,
           (unsigned long long)f->logical);
    printf("physical data:    %s (%llu bytes)\n", b,
           (unsigned long long)f->phys);
    printf("unique data:      %s before compression\n", c);
    printf("compression:      %s level %d, ratio %.2fx\n", f->codec, f->level,
           ratio(f->stored_logical, f->phys));
    printf("deduplication:    ratio %.2fx\n",
           ratio(f->logical, f->stored_logical));
    printf("blocks:           %llu stored, %u-byte block size\n",
           (unsigned long long)f->blocks, f->block_size);
    printf("files:            %llu\n", (unsigned long long)f->inodes);
    format_bytes(f->snap_bytes, a, sizeof(a));
    format_bytes(f->reserve, b, sizeof(b));
    printf("snapshots:        %llu, holding %s only they use",
           (unsigned long long)f->snapshots, a);
    if (f->reserve)
        printf(" (reserve %s)", b);
    printf("\n");
    format_bytes(f->file_bytes, d, sizeof(d));
    format_bytes(f->used, e, sizeof(e));
    printf("store file:       %s for %s in use (%.2fx)\n", d, e,
           ratio(f->file_bytes, f->used));
    print_pages(f);
}

static void print_json(const char *store, bool mounted,
                       const struct volume_figures *f)
{
    printf("{\"volume\":\"%s\",\"mounted\":%s,\"uuid\":\"%s\","
           "\"format\":%u,\"features\":[", store, mounted ? "true" : "false",
           f->uuid, f->format);
    for (size_t i = 0; i < f->features.n; i++)
        printf("%s\"%s\"", i ? "," : "", f->features.f[i].name);
    printf("],\"size\":%llu,\"used\":%llu,"
           "\"available\":%llu,\"logical_bytes\":%llu,\"physical_bytes\":%llu,"
           "\"unique_logical_bytes\":%llu,\"compression\":\"%s\","
           "\"compression_level\":%d,\"compression_ratio\":%.4f,"
           "\"dedup_ratio\":%.4f,\"blocks\":%llu,\"block_size\":%u,"
           "\"files\":%llu,\"snapshots\":%llu,\"snapshot_bytes\":%llu,"
           "\"snapshot_reserve\":%llu,\"store_file_bytes\":%llu,"
           "\"store_file_size\":%llu,\"page_size\":%llu,"
           "\"pages_in_file\":%llu,\"pages_in_use\":%llu,"
           "\"pages_free\":%llu,\"compact_bytes\":%llu,"
           "\"compact_gain_bytes\":%llu,\"store_bytes_per_file\":%.1f,"
           "\"store_bytes_per_logical_byte\":%.4f}\n",
           (unsigned long long)f->size,
           (unsigned long long)f->used, (unsigned long long)f->avail,
           (unsigned long long)f->logical, (unsigned long long)f->phys,
           (unsigned long long)f->stored_logical, f->codec, f->level,
           ratio(f->stored_logical, f->phys), ratio(f->logical, f->stored_logical),
           (unsigned long long)f->blocks, f->block_size,
           (unsigned long long)f->inodes, (unsigned long long)f->snapshots,
           (unsigned long long)f->snap_bytes, (unsigned long long)f->reserve,
           (unsigned long long)f->file_bytes,
           (unsigned long long)f->pages.file_bytes,
           (unsigned long long)f->pages.page_size,
           (unsigned long long)f->pages.file_pages,
           (unsigned long long)f->pages.used_pages,
           (unsigned long long)f->pages.free_pages,
           (unsigned long long)compact_size(f),
           (unsigned long long)compact_gain(f), per_file(f), per_logical(f));
}

/* Ask the daemon of a mounted volume to commit what it holds. */
static void flush_mount(const char *mnt)
{
    int fd = open(mnt, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return;
    syncfs(fd);
    fsync(fd);
    close(fd);
}

int cmd_info(int argc, char **argv)
{
    bool json = false;
    const char *arg = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (argv[i][0] == '-')
            die_usage("info", "unknown option '%s'", argv[i]);
        else if (arg)
            die_usage("info", "give one STORE or MOUNTPOINT");
        else
            arg = argv[i];
    }
    if (!arg)
        die_usage("info", "give one STORE or MOUNTPOINT");
    bool mounted;
    char *store = resolve_volume(arg, &mounted);
    if (mounted)
        flush_mount(arg);
    struct sfs_store *st;
    int rc = sfs_open(store, SFS_OPEN_RDONLY, &st);
    if (rc)
        die("info", "%s: %s", arg, open_error(rc));
    struct volume_figures f;
    rc = gather(st, &f);
    sfs_close(st);
    if (rc)
        die("info", "%s: %s", arg, strerror(-rc));
    if (json)
        print_json(store, mounted, &f);
    else
        print_text(store, mounted, &f);
    free(store);
    return 0;
}

static void print_problem(void *arg, const char *problem)
{
    (void)arg;
    printf("%s\n", problem);
}

int cmd_fsck(int argc, char **argv)
{
    if (argc == 2 && argv[1][0] == '-')
        die_usage("fsck", "unknown option '%s'", argv[1]);
    if (argc != 2)
        die_usage("fsck", "give one STORE");
    bool mounted;
    char *store = resolve_volume(argv[1], &mounted);
    if (mounted)
        flush_mount(argv[1]);
    struct sfs_store *st;
    int rc = sfs_open(store, SFS_OPEN_RDONLY, &st);
    if (rc)
        die("fsck", "%s: %s", argv[1], open_error(rc));
    rc = sfs_fsck(st, print_problem, NULL);
    sfs_close(st);
    if (rc < 0)
        die("fsck", "%s: %s", argv[1], strerror(-rc));
    if (rc > 0) {
        fprintf(stderr, "snapfs fsck: %s: %d problem%s found\n", argv[1], rc,
                rc == 1 ? "" : "s");
        free(store);
        return 1;
    }
    printf("%s: clean\n", store);
    free(store);
    return 0;
}
