/*
 * snapdir.h - .snapshot: snapshots browsed read-only through the mount
 * (theory in snapdir.c).
 */
#ifndef SNAPFS_SNAPDIR_H
#define SNAPFS_SNAPDIR_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "volume.h"

#define SNAPDIR_NAME ".snapshot"

enum snapdir_mode { SNAPDIR_VISIBLE, SNAPDIR_HIDDEN, SNAPDIR_DISABLED };

/* What a FUSE node id names. */
enum node_kind {
    NODE_LIVE,    /* an object of the live tree */
    NODE_SNAPDIR, /* DIR/.snapshot, for the live directory obj */
    NODE_VIEW,    /* an object as a snapshot holds it */
};

struct noderef {
    enum node_kind kind;
    uint64_t nodeid;
    uint64_t obj;   /* the object; for NODE_SNAPDIR the live directory */
    uint64_t sid;   /* NODE_VIEW: the snapshot's id */
    uint64_t view;  /* SFS_VIEW_LIVE, or the snapshot's epoch */
    uint64_t entry; /* NODE_VIEW: the live directory whose .snapshot led
                     * here (SFS_ROOT_INO for the volume's root) */
};

/* Live objects have node ids below 2^42: a plain test, no lock needed. */
static inline bool nodeid_is_live(uint64_t nodeid)
{
    return (nodeid >> SFS_INO_BITS) == 0;
}

/* Is NODEID some DIR/.snapshot?  Sets *DIR. */
static inline bool nodeid_is_snapdir(uint64_t nodeid, uint64_t *dir)
{
    uint64_t low = nodeid & (((uint64_t)1 << SFS_INO_BITS) - 1);
    if ((nodeid >> SFS_INO_BITS) != SFS_SNAP_ID_MAX ||
        (low & ((uint64_t)1 << (SFS_INO_BITS - 1))))
        return false;
    *dir = low;
    return true;
}

struct snap_entry {
    uint64_t sid, epoch;
    char *name;
};

struct view_node;

struct snapdirs {
    pthread_mutex_t lock;  /* taken inside the volume lock, never around it */
    int mode;              /* enum snapdir_mode; atomic */
    struct snap_entry *snaps; /* every snapshot, oldest first */
    size_t nsnaps;
    struct view_node **by_id, **by_key;
    size_t nbuckets, nviews;
    uint64_t next_table_id;
    uint32_t table_generation; /* of every table node of this daemon run */
    struct fuse_session *se; /* for invalidations; set once serving */
    /* Names of the live directories the kernel knows, stashed before a
     * wholesale change of the live tree (see snapdir_live_changing). */
    struct stash *stash;
};

int snapdirs_init(struct snapdirs *sd, struct vol *v);
void snapdirs_destroy(struct snapdirs *sd);

/*
 * Resolve NODEID under the volume lock (TXN from vol_read_begin or
 * vol_change_begin).  -ESTALE if it names a snapshot that is gone or a
 * view node the kernel has forgotten.
 */
int noderef_resolve(struct snapdirs *sd, struct vol *v, MDB_txn *txn,
                    uint64_t nodeid, struct noderef *out);

/* struct stat of inode I, shown with inode number ST_INO. */
void inode_stat(const struct sfs_inode *i, uint64_t st_ino,
                uint32_t block_size, struct stat *s);

/*
 * The generation the kernel gets with object I's node (and puts in file
 * handles): derived from the object's id and birth time, so it is the same
 * for every reply about that object, in every daemon run, and a node id
 * that ever named another object (histories that diverged and met again
 * in a fail-back) makes the old handle stale.  The live root's is 0, the
 * kernel's own for FUSE_ROOT_ID.
 */
uint32_t node_generation(const struct sfs_inode *i);

/* The inode number clients see for an object of R's view. */
uint64_t noderef_st_ino(const struct noderef *r, uint64_t obj);

/*
 * The entry for object I (as read in view R->view) reached from directory
 * R: its node id (counting a kernel reference where one is tracked) and
 * attributes.  Returns 0 or -ENOMEM.
 */
int snapdir_child_entry(struct snapdirs *sd, const struct noderef *r,
                        const struct sfs_inode *i, uint32_t block_size,
                        double timeout, struct fuse_entry_param *e);

/* Lookups: NAME in a snapshot directory or in DIR/.snapshot; ".snapshot"
 * in the live directory DIR.  Each replies to REQ. */
void snapdir_lookup(fuse_req_t req, struct snapdirs *sd, struct vol *v,
                    uint64_t parent, const char *name);
void snapdir_lookup_from_live(fuse_req_t req, struct snapdirs *sd,
                              struct vol *v, uint64_t dir);
/* getattr of a node that is not live. */
void snapdir_getattr(fuse_req_t req, struct snapdirs *sd, struct vol *v,
                     uint64_t nodeid);
/* readdir of DIR/.snapshot: one entry per snapshot that holds DIR. */
int snapdir_list(struct snapdirs *sd, struct vol *v, MDB_txn *txn,
                 const struct noderef *r, fuse_req_t req, char *buf,
                 size_t size, off_t off, bool plus, size_t *used);
/* forget of a node that is not live. */
void snapdir_forget(struct snapdirs *sd, uint64_t nodeid, uint64_t nlookup);

/* The root's listing shows ".snapshot" (at this offset, after every
 * entry) only when the setting is visible. */
#define SNAPDIR_LIST_OFFSET ((off_t)((uint64_t)1 << 62) + 4)
bool snapdir_listed(struct snapdirs *sd);
enum snapdir_mode snapdir_mode(struct snapdirs *sd);
/* Is NAME the reserved name in a live directory?  The errno to refuse
 * creating it with (EEXIST, or EPERM while .snapshot is disabled). */
int snapdir_reserved(struct snapdirs *sd, const char *name);

/*
 * Invalidation of the kernel's caches (the volume's notify_changed hook):
 * after snapshots were created, deleted or renamed, the setting changed,
 * or the live tree was changed wholesale.  snapdir_live_changing is
 * called before such a live change, to remember the names the kernel may
 * hold; VOL_PUBLISH_NEWEST remembers them and publishes the newest
 * snapshot in one step (a mirror destination's receive).
 */
void snapdir_notify(struct snapdirs *sd, struct vol *v, unsigned what);
/* The live entry NAME of directory PARENT was added or removed behind the
 * kernel's back: drop the entry and PARENT's attributes. */
void snapdir_notify_entry(struct snapdirs *sd, uint64_t parent,
                          const char *name);
void snapdir_live_changing(struct snapdirs *sd, struct vol *v);

#endif
