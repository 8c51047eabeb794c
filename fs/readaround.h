/*
 * readaround.h - after a read, the rest of the blocks it decoded go into
 * the kernel's page cache (FUSE_NOTIFY_STORE), so that the next reads of
 * those blocks are not requests at all.  Theory in readaround.c.
 */
#ifndef SNAPFS_READAROUND_H
#define SNAPFS_READAROUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fuse_lowlevel.h>

#include "volume.h"

/* False (set before serving) when the mount has `-o noreadaround`. */
extern bool readaround_enabled;

/* What a read decodes: the request's bytes, or the whole blocks they lie
 * in (clipped to the file's size). */
struct readaround_span {
    uint64_t start, end;   /* what to decode */
    uint64_t off;          /* the request's offset, and its length */
    size_t len;            /* clipped to the file's size */
    bool around;           /* [start, end) is more than the request */
    /* Taken before the read began (readaround_date): whether the file
     * may hold newer bytes than the store's (a writer had it open, or it
     * has cached blocks: ops.c sets that), and the dates of its content
     * (THEORY). */
    bool unsettled;
    uint64_t node_gen, live_gen, view;
};

/* Before a read's transaction begins: note in SPAN what the file's
 * content is as of now.  N is the live file's node (pinned), or NULL for
 * a snapshot's file. */
void readaround_date(struct vol *v, struct node *n,
                     struct readaround_span *span);

/*
 * Plan a read of SIZE bytes at OFF of a file of FILE_SIZE bytes stored in
 * blocks of BS bytes (SPAN dated): around when read-around may help
 * (enabled, the handle uses the page cache (not DIRECT), no writer, blocks
 * larger than a page, the request not covering them whole).
 */
void readaround_plan(bool direct, uint32_t bs, uint64_t file_size,
                     uint64_t off, size_t size, struct readaround_span *span);

/*
 * The bytes of SPAN outside the request, from BUF (which holds
 * [start, end)), into the kernel's cache of INO, after the request was
 * answered.  For a live file (N not NULL) only if nothing changed its
 * content since readaround_date and no one may write it: see THEORY.
 * Returns the bytes given to the kernel (0 when it gave none).
 */
size_t readaround_push(struct vol *v, struct node *n, struct fuse_session *se,
                       fuse_ino_t ino, const struct readaround_span *span,
                       const char *buf);

/* Node N is opened (DELTA 1) or closed (-1) by a handle that may write:
 * read-around stops for it while one is open.  Takes N's push_lock; never
 * called with N's write lock held. */
void readaround_writer(struct node *n, int delta);
/* Around a change of N's content other than by a write through a handle
 * (a truncation by path, an O_TRUNC open): begin before taking N's write
 * lock (it waits for the pushes under way), end after the change. */
void readaround_change_begin(struct node *n);
void readaround_change_end(struct node *n);
/* The live tree changed behind the kernel (rollback, restore, a receive
 * published): after the change, and the switch of the live view, and
 * before the kernel is told to forget what it caches (snapdir.c). */
void readaround_live_changed(struct vol *v);

#endif
