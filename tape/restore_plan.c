/*
 * restore_plan.c - incremental reconciliation: the tree after a level N
 * dump, and what must be taken away from the destination to get there.
 * Pure logic on trees and maps; no system calls.
 *
 * THEORY
 *
 * Between levels, the destination holds the tree of the dumps restored so
 * far; the state file keeps its name tree (the entries of each directory,
 * by dump inode number).  A level N dump carries three things:
 *
 *   USED (TS_CLRI)    the inodes in use when it was made.  Linux dump
 *                     writes this map there (the name is historical: we
 *                     checked dumps made by Debian's dump 0.4b47);
 *   DUMPED (TS_BITS)  the inodes on this dump: whatever changed since the
 *                     base dump, and every directory on the way to them;
 *   the entries of every dumped directory.
 *
 * A directory that is not on the dump did not change, so its entries are
 * those of the old tree.  The new tree is therefore the old one with each
 * dumped directory's entries replaced, and the directories no longer in
 * use dropped (rst_merge).  Walking the new tree from the root gives every
 * inode its new links; walking the old one its old links.
 *
 * An inode "survives" when it keeps its identity on disk: it is in both
 * trees, is a directory in both or a non-directory in both, and, if it is
 * not a directory, its contents are not on this dump (a file on the dump
 * is written anew, at all its links).  Then:
 *
 *   - an old link that the new tree also has stays where it is;
 *   - the other old links are removed; but if a surviving inode keeps none
 *     of its old links (it was renamed or moved), the first of them is
 *     moved aside to a staging directory instead (RST_OP_STAGE), to be
 *     renamed to its new place once the new directories exist;
 *   - an inode that does not survive loses all its links: a directory is
 *     moved aside whole (RST_OP_DOOM) and removed with what is left in it
 *     once the survivors inside it have been moved aside too.
 *
 * Links inside a directory that does not survive need no operation: they
 * go with it.  The operations are listed in the old tree's walk order
 * (parents first), so that the path of a link can be found by following
 * where each directory is at that moment.  After this step every remaining
 * old entry on disk is an entry of the new tree, and placing the new tree
 * top-down (mkdir, rename from staging, link, write) cannot meet a name
 * that is still taken by something else.  Renames of whole directories
 * are thus renames (their contents are not copied), and swaps and moves
 * into a former child work, because everything that moves passes through
 * the staging directory.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "restore.h"

static bool map_has(const uint8_t *map, size_t bytes, uint32_t ino)
{
    return !map || dump_map_isset(map, bytes, ino);
}

static int copy_dir(struct rst_tree *out, const struct rst_dir *d,
                    const uint8_t *used, size_t mapbytes)
{
    struct rst_dir *c = rst_tree_put_dir(out, d->ino);
    if (!c)
        return -ENOMEM;
    for (size_t i = 0; i < d->n; i++) {
        const struct rst_entry *e = &d->ents[i];
        bool dot = !strcmp(e->name, ".") || !strcmp(e->name, "..");
        if (!dot && !map_has(used, mapbytes, e->ino))
            continue;
        int rc = rst_dir_add(c, e->ino, e->dtype, e->name);
        if (rc)
            return rc;
    }
    return 0;
}

struct merge_ctx {
    struct rst_tree *out;
    const uint8_t *used, *dumped;
    size_t mapbytes;
    int rc;
};

static void merge_old_dir(void *arg, struct rst_dir *d)
{
    struct merge_ctx *m = arg;
    if (m->rc || !map_has(m->used, m->mapbytes, d->ino) ||
        dump_map_isset(m->dumped, m->mapbytes, d->ino))
        return;
    m->rc = copy_dir(m->out, d, m->used, m->mapbytes);
}

static void merge_dumped_dir(void *arg, struct rst_dir *d)
{
    struct merge_ctx *m = arg;
    if (!m->rc)
        m->rc = copy_dir(m->out, d, NULL, 0);
}

int rst_merge(const struct rst_tree *old, const struct rst_tree *dumped_dirs,
              const uint8_t *used, const uint8_t *dumped, size_t mapbytes,
              struct rst_tree *out)
{
    memset(out, 0, sizeof(*out));
    struct merge_ctx m = { out, used, dumped, mapbytes, 0 };
    rst_tree_each_dir(old, merge_old_dir, &m);
    rst_tree_each_dir(dumped_dirs, merge_dumped_dir, &m);
    if (m.rc)
        rst_tree_free(out);
    return m.rc;
}

static bool is_dir(const struct rst_node *n)
{
    return n->dtype == DT_DIR;
}

bool rst_survives(const struct rst_node *old, const struct rst_node *new,
                  const uint8_t *dumped, size_t mapbytes)
{
    if (!old || !new || is_dir(old) != is_dir(new))
        return false;
    return is_dir(old) || !dump_map_isset(dumped, mapbytes, old->ino);
}

static int plan_add(struct rst_plan *p, enum rst_op_kind kind, uint32_t ino,
                    const struct rst_link *l)
{
    if (rst_grow(&p->ops, p->n, &p->cap, sizeof(*p->ops)))
        return -ENOMEM;
    p->ops[p->n++] = (struct rst_op){ kind, ino, l->parent, l->name };
    return 0;
}

/* Is the link inside a directory that goes away (and takes it along)? */
static bool in_doomed_dir(const struct rst_index *old,
                          const struct rst_index *new, const uint8_t *dumped,
                          size_t mapbytes, const struct rst_link *l)
{
    const struct rst_node *p = rst_index_get(old, l->parent);
    return l->parent != RST_ROOT_INO &&
           !rst_survives(p, rst_index_get(new, l->parent), dumped, mapbytes);
}

static int plan_inode(const struct rst_index *old, const struct rst_index *new,
                      const uint8_t *dumped, size_t mapbytes,
                      const struct rst_node *on, struct rst_plan *plan)
{
    const struct rst_node *nn = rst_index_get(new, on->ino);
    bool survives = rst_survives(on, nn, dumped, mapbytes), kept = false;
    for (size_t i = 0; survives && i < on->nlinks; i++)
        kept |= rst_index_has_link(nn, on->links[i].parent,
                                   on->links[i].name);
    bool staged = false;
    for (size_t i = 0; i < on->nlinks; i++) {
        const struct rst_link *l = &on->links[i];
        if (survives && rst_index_has_link(nn, l->parent, l->name))
            continue;
        bool goes_along = in_doomed_dir(old, new, dumped, mapbytes, l);
        enum rst_op_kind kind;
        if (survives && !kept && !staged)
            kind = RST_OP_STAGE, staged = true;
        else if (goes_along)
            continue;
        else
            kind = is_dir(on) ? RST_OP_DOOM : RST_OP_UNLINK;
        int rc = plan_add(plan, kind, on->ino, l);
        if (rc)
            return rc;
    }
    return 0;
}

int rst_plan_takeaway(const struct rst_index *old, const struct rst_index *new,
                      const uint8_t *dumped, size_t mapbytes,
                      struct rst_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
    for (size_t k = 0; k < old->norder; k++) {
        const struct rst_node *on = rst_index_get(old, old->order[k]);
        if (on->ino == RST_ROOT_INO)
            continue;
        int rc = plan_inode(old, new, dumped, mapbytes, on, plan);
        if (rc) {
            rst_plan_free(plan);
            return rc;
        }
    }
    return 0;
}

void rst_plan_free(struct rst_plan *p)
{
    free(p->ops);
    memset(p, 0, sizeof(*p));
}
