/*
 * restore.h - reading a dump back into a directory tree: list (-t), full
 * and incremental restore (-r), extraction of chosen paths (-x).
 *
 * The library writes with POSIX calls relative to a destination directory
 * and prints nothing: every function returns 0 or a negative errno, and on
 * failure fills a struct rst_error (what went wrong, where in the dump,
 * which file) that the command layer turns into a message.
 */
#ifndef SNAPFS_RESTORE_H
#define SNAPFS_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dumpfmt.h"

#define RST_STATE_FILE ".snapfs-restoresymtable"
#define RST_ROOT_INO DUMP_ROOTINO

/* Make room for one more element in *ARRAY (N used of *CAP, each SIZE
 * bytes), doubling it; 0 or -ENOMEM. */
int rst_grow(void *array, size_t n, size_t *cap, size_t size);

/* ---- the symbol table: directories' entries and inode types ---- */

struct rst_entry {
    uint32_t ino;
    uint8_t dtype;
    char *name;
};

struct rst_dir {
    uint32_t ino;
    struct rst_entry *ents;
    size_t n, cap;
};

/* The name tree of one dump, or of what a destination holds. */
struct rst_tree {
    struct rst_dir **dirs;    /* open-addressing hash of directories */
    size_t dcap, ndirs;
};

/* A directory's entries (NULL: not a directory of the tree). */
struct rst_dir *rst_tree_dir(const struct rst_tree *t, uint32_t ino);
/* Create (or empty, when it exists) directory INO; NULL for -ENOMEM. */
struct rst_dir *rst_tree_put_dir(struct rst_tree *t, uint32_t ino);
/* 0 or -ENOMEM. */
int rst_dir_add(struct rst_dir *d, uint32_t ino, uint8_t dtype,
                const char *name);
void rst_tree_free(struct rst_tree *t);
/* Call FN for each directory (unordered). */
void rst_tree_each_dir(const struct rst_tree *t,
                       void (*fn)(void *arg, struct rst_dir *d), void *arg);

/*
 * Where each inode of a tree is: its links (parent directory, name),
 * found by walking from the root, so that unreachable entries are left
 * out and every directory has exactly one link (the first one met).
 */
struct rst_link {
    uint32_t parent;
    const char *name;         /* points into the tree's entries */
};
struct rst_node {
    uint32_t ino;
    uint8_t dtype;
    struct rst_link *links;
    size_t nlinks;
};
struct rst_index {
    struct rst_node *nodes;   /* open-addressing hash by ino */
    size_t cap, n;
    uint32_t *order;          /* inos in the order of the walk (root first,
                                 parents before children) */
    size_t norder;
};
/* Build the index of T from the root; 0 or -ENOMEM. */
int rst_index_build(const struct rst_tree *t, struct rst_index *ix);
struct rst_node *rst_index_get(const struct rst_index *ix, uint32_t ino);
/* "a/b/c" of INO (root: ""), into OUT; -ENAMETOOLONG, -ENOENT. */
int rst_index_path(const struct rst_index *ix, uint32_t ino, char *out,
                   size_t cap);
bool rst_index_has_link(const struct rst_node *n, uint32_t parent,
                        const char *name);
void rst_index_free(struct rst_index *ix);

/* ---- the state kept in the destination between levels ---- */

struct rst_state {
    int32_t date;             /* c_date of the last dump restored */
    int32_t level;
    bool has_uuid;
    uint8_t uuid[16];
    struct rst_tree tree;     /* the names as restored */
};
/* Load DIRFD/.snapfs-restoresymtable: 0, -ENOENT, -EBADMSG, -errno. */
int rst_state_load(int dirfd, struct rst_state *s);
/* Write it (through a temporary file and a rename); 0 or -errno. */
int rst_state_save(int dirfd, const struct rst_state *s);
void rst_state_free(struct rst_state *s);

/*
 * THE INCREMENTAL MERGE (pure logic, see restore_plan.c): the tree after
 * an incremental is the old tree with the dumped directories' entries
 * replaced by those on the dump and the inodes no longer in use dropped.
 * USED and DUMPED are the dump's TS_CLRI (in use) and TS_BITS (on this
 * dump) maps of MAPBYTES bytes.  *OUT is a new tree.  0 or -ENOMEM.
 */
int rst_merge(const struct rst_tree *old, const struct rst_tree *dumped_dirs,
              const uint8_t *used, const uint8_t *dumped, size_t mapbytes,
              struct rst_tree *out);

/*
 * What must change on disk to go from OLD to NEW: the plan of step A
 * (take away).  For every inode of OLD, an old link that NEW lacks is
 * either unlinked, or (for the first such link of an inode that survives
 * with none of its old links) moved aside to the staging directory; an
 * inode that does not survive (no longer in use, another type, or a file
 * whose contents are on this dump) loses all its links, a directory by
 * being moved aside and removed with what is left in it.
 */
enum rst_op_kind { RST_OP_UNLINK, RST_OP_STAGE, RST_OP_DOOM };
struct rst_op {
    enum rst_op_kind kind;
    uint32_t ino;
    uint32_t parent;          /* the old link */
    const char *name;
};
struct rst_plan {
    struct rst_op *ops;
    size_t n, cap;
};
int rst_plan_takeaway(const struct rst_index *old, const struct rst_index *new,
                      const uint8_t *dumped, size_t mapbytes,
                      struct rst_plan *plan);
void rst_plan_free(struct rst_plan *p);
/* Does INO keep its identity on disk (same type, contents not on the
 * dump, or a directory)? */
bool rst_survives(const struct rst_node *old, const struct rst_node *new,
                  const uint8_t *dumped, size_t mapbytes);

/* ---- the restore itself ---- */

enum rst_mode { RST_LIST, RST_RESTORE, RST_EXTRACT };

enum rst_err_kind {
    RST_E_NONE,
    RST_E_READ,          /* read(2) failed: errno */
    RST_E_NOT_DUMP,      /* the first block is no dump header */
    RST_E_BAD_HEADER,    /* a header expected at BLOCK fails its checksum */
    RST_E_UNEXPECTED,    /* a header of an unexpected type at BLOCK */
    RST_E_TRUNCATED,     /* the dump ends before its TS_END */
    RST_E_BLOCKING,      /* -b differs from c_ntrec: GOT, WANT */
    RST_E_BAD_DIR,       /* a malformed directory block (inode INO) */
    RST_E_BAD_XATTR,     /* a malformed attribute record (inode INO) */
    RST_E_GAP,           /* a gap in the level chain */
    RST_E_NO_STATE,      /* an incremental with nothing restored before */
    RST_E_OTHER_VOLUME,  /* an incremental of another volume */
    RST_E_PART,          /* a continuation part that does not match */
    RST_E_FIRST_PART,    /* the first input is a later part: volume GOT */
    RST_E_EXT_VERSION,   /* snapfs's extensions of version GOT, newer than
                          * WANT, the version this snapfs reads */
    RST_E_STATE,         /* the state file is unreadable (errno) */
    RST_E_DEST,          /* a system call on the destination failed */
    RST_E_NOSPACE,       /* the destination lacks room: NEED, AVAIL */
    RST_E_NOT_FOUND,     /* a PATH of -x is not on the dump */
    RST_E_INCOMPLETE,    /* the restore ended with files left incomplete */
};

struct rst_incomplete {
    char *path;               /* relative to the destination */
    uint64_t written, size;
};

struct rst_error {
    enum rst_err_kind kind;
    int err;                  /* the errno, when there is one */
    int part;                 /* which input (0-based) */
    uint64_t block;           /* block number in that input */
    uint32_t ino;
    char path[4096];          /* the file or object concerned */
    const char *op;           /* the system call that failed (RST_E_DEST) */
    int64_t got, want;        /* blocking factors, sizes */
    /* RST_E_GAP/RST_E_PART: the dump's and the state's dates and levels */
    int32_t date, ddate, level, prev_date, prev_level;
    struct rst_incomplete *incomplete;  /* files left incomplete */
    size_t nincomplete;
};
void rst_error_free(struct rst_error *e);

/* What a TS_TAPE says, for headers and checks. */
struct rst_volinfo {
    struct dump_header tape;
    bool has_ext;
    struct dump_snapfs_ext ext;
};

struct rst_options {
    enum rst_mode mode;
    const int *fds;           /* the parts of the dump, in order */
    int nfds;
    int blocking;             /* -b, or 0 */
    int destfd;               /* the destination directory */
    const char *destpath;     /* its absolute path (for lsetxattr) */
    const char *const *paths; /* -t/-x: paths in the dump ("a/b"), or none */
    int npaths;
    const char *rename_to;    /* -x of one path: its new name, or NULL */
    bool force;               /* skip the space check */
    /* The size of the input when known (a regular file), else 0. */
    uint64_t input_bytes;
    /* Called once the TS_TAPE of the first part is read; a non-zero
     * return stops. */
    int (*on_volume)(void *arg, const struct rst_volinfo *v);
    /* -t: one line per inode reached. */
    int (*on_list)(void *arg, uint32_t ino, const char *path, bool dir);
    /* Directory PATH (relative to the destination) carries a qtree's
     * description (trusted.snapfs.qtree) in the dump; called before PATH
     * is created (it may create it), only for a direct child of the
     * destination (AT_TOP).  The attribute itself is never set. */
    int (*on_qtree)(void *arg, const char *path, const char *desc,
                    bool at_top);
    /* Progress: bytes and files restored so far. */
    void (*on_progress)(void *arg, uint64_t bytes, uint64_t files);
    void *arg;
};

struct rst_stats {
    uint64_t files, bytes;
    uint64_t removed, moved;  /* incremental changes */
};

/*
 * Run a restore.  Returns 0, or a negative errno with *ERR filled.  A
 * restore that stops leaves the files it could not finish listed in
 * ERR->incomplete.
 */
int rst_run(const struct rst_options *o, struct rst_stats *stats,
            struct rst_error *err);

#endif
