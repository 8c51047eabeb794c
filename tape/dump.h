/*
 * dump.h - writing a snapshot of a volume (or of a directory in it) as a
 * dump that Linux restore reads.  See dump.c.
 */
#ifndef SNAPFS_DUMP_H
#define SNAPFS_DUMP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "dumpfmt.h"
#include "store.h"

struct dump_progress {
    uint64_t files;          /* inodes written (directories and files) */
    uint64_t bytes;          /* bytes handed to the output */
    uint64_t est_bytes;      /* what the whole dump will be, about */
    int phase;               /* SFS_DUMP_PHASE_* being written */
    /* Restart point: every file before it is completely on the output
     * (0: not yet past the directories). */
    uint32_t committed_next;
    uint64_t committed_files, committed_bytes;
};

struct dump_spec {
    struct sfs_store *st;    /* opened read-only is enough */
    uint64_t view;           /* the snapshot's epoch */
    uint64_t base_epoch;     /* objects born after it are dumped; 0: all */
    uint64_t root;           /* the object at the dump's root (a dir) */
    struct dump_header tape; /* TS_TAPE fields: date, ddate, level, label,
                              * filesys, dev, host, ntrec, volume, spare */
    uint32_t restart_ino;    /* 0: a whole dump; else only files from this
                              * dump inode on (a restarted dump's part) */
    /* Names left out: fnmatch(3) patterns matched against each entry's
     * name (not its path); an entry matched is neither listed in its
     * directory nor dumped, a directory with all below it.  A
     * NULL-terminated list, or NULL. */
    char *const *exclude;
    volatile sig_atomic_t *stop; /* set: stop at the next file */
    /* Called now and then (at least once per record), and when the
     * restart point moves; may be NULL. */
    void (*progress)(void *arg, const struct dump_progress *p);
    void *arg;
};

/* Where and why a dump stopped. */
struct dump_failure {
    int rc;            /* -EINTR: stopped by *stop */
    uint64_t obj;      /* the object being read or written, 0 if none */
    const char *doing; /* "reading", "writing the output", ... */
};

/* What dump_prepare found. */
struct dump_plan {
    uint32_t maxino;         /* dump inode numbers are 1..maxino */
    size_t map_bytes;
    uint8_t *present;        /* objects under the root in the snapshot */
    uint8_t *dumped;         /* what this dump carries */
    uint8_t *is_dir;
    uint64_t dirs, files;    /* dumped */
    uint64_t est_bytes;      /* the dump's size, about */
};

/*
 * Walk the snapshot from SPEC->root and decide what the dump carries: all
 * objects under it for a full dump; for an incremental, the objects born
 * after base_epoch and every directory on the way to one.  Memory: three
 * bitmaps of one bit per object id.  Returns 0, -E2BIG (object ids past
 * 2^31 - 2: the format's inode numbers are 32-bit signed), -ENOTDIR,
 * -ENOMEM, or a store error (F says which object).
 */
int dump_prepare(const struct dump_spec *spec, struct dump_plan *plan,
                 struct dump_failure *f);
/*
 * Write the dump: TS_TAPE, the maps, the directories, the files, TS_END,
 * padded to a whole record (a restarted part: TS_TAPE and the files from
 * restart_ino on).  Returns 0, -EINTR (*stop was set; F has the restart
 * point in the last progress report), the output's errno, -E2BIG (an
 * object's attributes do not fit the format), or a store error.
 */
int dump_write(const struct dump_spec *spec, const struct dump_plan *plan,
               struct dump_writer *w, struct dump_failure *f);
void dump_plan_free(struct dump_plan *plan);

/* Dump inode number of object OBJ in a dump rooted at ROOT, and back. */
uint32_t dump_ino_of(uint64_t root, uint64_t obj);
uint64_t dump_obj_of(uint64_t root, uint32_t dino);

#endif
