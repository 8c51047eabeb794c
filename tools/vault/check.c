/*
 * check.c - the checker: is every snapshot of the vault restorable?
 *
 * Checked, each problem reported and the check going on: every key
 * object parses; every index object authenticates; every pack the index
 * lists exists with its indexed size and a trailer that authenticates and
 * lists the blobs the index places in it, and every pack in the store is
 * indexed (one that is not is reported as left by an interrupted backup,
 * not as a problem: the next backup indexes it); every manifest
 * authenticates; every snapshot's metadata chain joins up, every link's
 * records arrive whole, in order, counted by their end; every block a
 * snapshot's records name is indexed as a data blob.  With READ_DATA,
 * every pack is read whole: its SHA-256 must be its name, and every blob
 * in it must open (its MAC) and decode to bytes whose keyed hash is its
 * id.  Links shared by several snapshots are checked once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo.h"

struct checker {
    struct vault *v;
    bool read_data;
    vault_problem_fn report;
    void *arg;
    struct vault_check_stats *stats;
    int problems;
    struct vault_index *links_seen;
    uint8_t *listed;             /* per indexed pack: seen in the store */
    uint64_t missing;            /* blocks of the link being checked */
    int err;                     /* what stopped a listing */
};

static void problem(struct checker *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void problem(struct checker *c, const char *fmt, ...)
{
    char msg[VAULT_WHY_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->problems++;
    c->report(c->arg, msg);
}

/* ---- keys and indexes ---- */

static int count_key(void *arg, const struct vault_key_line *k)
{
    (void)k;
    ((struct checker *)arg)->stats->keys++;
    return 0;
}

static void check_keys(struct checker *c)
{
    if (vault_keys_list(c->v, count_key, c))
        problem(c, "%s", vault_why(c->v));
}

static void bad_index(void *arg, const char *why)
{
    problem(arg, "%s", why);
}

static int check_indexes(struct checker *c)
{
    return vault_read_indexes(c->v, bad_index, c, &c->stats->indexes);
}

/* ---- packs ---- */

/* Are the trailer's entries where the index puts them? */
static void compare_trailer(struct checker *c, const char *name, uint32_t no,
                            const struct vault_pack_entry *e, size_t n)
{
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) {
        const struct vault_loc *l = vault_index_find(c->v->index, e[i].id);
        if (!l || l->type != e[i].type ||
            (l->pack == no && (l->offset != e[i].offset ||
                               l->length != e[i].length)))
            wrong++;
    }
    if (wrong)
        problem(c, "%s: %zu of its blobs are not where the index says",
                name, wrong);
    c->stats->blobs += n;
}

/* Read the whole pack: its name is its hash, every blob decodes. */
static void read_pack(struct checker *c, const char *name,
                      const uint8_t id[VC_ID], uint64_t size)
{
    struct vault *v = c->v;
    void *buf;
    size_t len;
    int rc = objstore_get(v->os, name, &buf, &len);
    if (rc) {
        problem(c, "%s: cannot be read: %s", name, objstore_why(v->os));
        return;
    }
    c->stats->data_read += len;
    uint8_t sha[VC_ID];
    vc_sha256(buf, len, sha);
    struct vault_pack_entry *e = NULL;
    size_t n = 0, bad = 0;
    uint32_t tlen;
    if (memcmp(sha, id, VC_ID) || len != size || len < 4 ||
        vault_trailer_len((uint8_t *)buf + len - 4, len, &tlen) ||
        vault_trailer_open(&v->keys, (uint8_t *)buf + len - 4 - tlen, tlen,
                           len, &e, &n))
        bad = 1;
    for (size_t i = 0; !bad && i < n; i++) {
        uint8_t *plain, *out = malloc(e[i].lsize + 1);
        struct vault_stored s;
        if (!out || vault_blob_open(&v->keys, e[i].type, e[i].id,
                                    (uint8_t *)buf + e[i].offset,
                                    e[i].length, &plain, &s)) {
            bad++;
        } else {
            bad += s.lsize != e[i].lsize ||
                   vault_stored_decode(&v->keys, e[i].id, &s, out, NULL);
            free(plain);
        }
        free(out);
    }
    if (bad)
        problem(c, "%s: damaged (its content does not match its name, or "
                "a blob in it does not authenticate or decode)", name);
    free(e);
    free(buf);
}

static void check_pack(struct checker *c, const char *name,
                       const uint8_t id[VC_ID], uint64_t size)
{
    uint32_t no;
    if (vault_index_pack_find(c->v->index, id, &no)) {
        c->stats->unindexed++;
        return;
    }
    c->listed[no] = 1;
    c->stats->packs++;
    if (vault_index_pack_size(c->v->index, no) != size) {
        problem(c, "%s: %llu bytes, the index says %llu (truncated or "
                "replaced)", name, (unsigned long long)size,
                (unsigned long long)vault_index_pack_size(c->v->index, no));
        return;
    }
    struct vault_pack_entry *e;
    size_t n;
    if (vault_read_trailer(c->v, id, size, &e, &n)) {
        problem(c, "%s", vault_why(c->v));
        return;
    }
    compare_trailer(c, name, no, e, n);
    free(e);
    if (c->read_data)
        read_pack(c, name, id, size);
}

static int pack_listed(void *arg, const char *name, uint64_t size)
{
    struct checker *c = arg;
    uint8_t id[VC_ID];
    if ((c->err = vault_keep_lock(c->v)))
        return 1; /* the lock is lost: another writer may be at work */
    if (strlen(name) != 8 + 64 || vc_unhex(name + 8, id, VC_ID) ||
        strncmp(name + 5, name + 8, 2)) {
        problem(c, "%s: not a pack's name", name);
        return 0;
    }
    check_pack(c, name, id, size);
    return 0;
}

static int check_packs(struct checker *c)
{
    struct vault *v = c->v;
    size_t np = vault_index_npacks(v->index);
    c->listed = calloc(np + 1, 1);
    if (!c->listed)
        return -ENOMEM;
    int rc = objstore_list(v->os, "data/", pack_listed, c);
    if (rc)
        return c->err ? c->err : vault_os_fail(v, rc);
    for (uint32_t no = 0; no < np; no++) {
        if (c->listed[no])
            continue;
        char name[128];
        vault_pack_name(vault_index_pack_id(v->index, no), name, sizeof(name));
        problem(c, "%s: missing (the index lists it)", name);
    }
    return 0;
}

/* ---- snapshots ---- */

static int check_record(void *arg, const struct sfs_stream_frame *f)
{
    struct checker *c = arg;
    c->stats->records += f->type == SFS_FRAME_PUT || f->type == SFS_FRAME_KILL;
    if (f->type != SFS_FRAME_PUT || !f->blockref)
        return 0;
    uint8_t id[VC_ID];
    vc_blob_id(&c->v->keys, f->hash, id);
    const struct vault_loc *l = vault_index_find(c->v->index, id);
    c->missing += !l || l->type != VB_DATA;
    return 0;
}

static void check_chain(struct checker *c, const char *what,
                        const struct vault_manifest *m)
{
    struct vault_link *links;
    size_t n;
    if (vault_load_chain(c->v, m, &links, &n)) {
        problem(c, "%s: %s", what, vault_why(c->v));
        return;
    }
    for (size_t i = n; i-- > 0;) {
        uint8_t lid[VC_ID];
        memcpy(lid, i + 1 < n ? links[i + 1].prev : m->link, VC_ID);
        if (vault_index_find(c->links_seen, lid))
            break; /* this link and the ones before it: checked */
        c->missing = 0;
        c->stats->links++;
        if (vault_link_replay(c->v, m, &links[i], check_record, c))
            problem(c, "%s: %s", what, vault_why(c->v));
        else if (c->missing)
            problem(c, "%s: %llu blocks it refers to are not in the vault",
                    what, (unsigned long long)c->missing);
        struct vault_loc seen = { 0 };
        vault_index_add(c->links_seen, lid, &seen);
    }
    vault_links_free(links, n);
}

static int check_manifest(void *arg, const uint8_t id[VC_ID],
                          const struct vault_manifest *m)
{
    struct checker *c = arg;
    char hex[VC_HEX], what[SFS_NAME_MAX + 64];
    vc_hex(id, VC_ID, hex);
    if (!m) {
        problem(c, "%s", vault_why(c->v));
        return 0;
    }
    c->stats->snapshots++;
    snprintf(what, sizeof(what), "snapshot %s (%.8s)", m->name, hex);
    check_chain(c, what, m);
    return 0;
}

int vault_check(struct vault *v, bool read_data, vault_problem_fn report,
                void *arg, struct vault_check_stats *stats)
{
    memset(stats, 0, sizeof(*stats));
    struct checker c = { v, read_data, report, arg, stats, 0,
                         vault_index_new(), NULL, 0, 0 };
    if (!c.links_seen)
        return -ENOMEM;
    check_keys(&c);
    int rc = check_indexes(&c);
    if (!rc)
        rc = check_packs(&c);
    if (!rc)
        rc = vault_each_manifest(v, true, check_manifest, &c);
    vault_index_free(c.links_seen);
    free(c.listed);
    return rc < 0 ? rc : c.problems;
}
