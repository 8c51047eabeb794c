/*
 * mirror_group.c - consistency group relationships: several volumes of
 * this host mirrored together, so that their destinations only ever
 * expose snapshots of one point in time.
 *
 *   mirror create SRC1,SRC2,... DST1,DST2,... --group NAME [--schedule S]
 *
 * A group is a set of ordinary relationships (mirror.c, one per pair,
 * each with its own state, lock and destination) that carry the group's
 * name; every transfer command given any member's destination runs for
 * the whole group.
 *
 * THEORY: TWO PHASES
 *
 * A member's destination exposes its published snapshot (store/stream.c,
 * "Held back").  A group transfer:
 *   1. locks every member (one group transfer at a time, and no member
 *      transfer beside it);
 *   2. publishes what an earlier transfer left committed but unpublished
 *      (phase 2 below, cut short);
 *   3. takes one group snapshot, snapmirror.GID.TIME.N, of every source
 *      at one point in time (`snapshot create --group`, tools/group.c;
 *      names: mirror_xfer.c);
 *   4. phase 1: transfers each member up to that snapshot, held back at
 *      its destination (`receive --hold-back`): every destination takes
 *      the snapshot, none exposes it.  A member that fails stops the
 *      transfer here: every destination still exposes the group snapshot
 *      it exposed before; what was received stays and is not resent (the
 *      next transfer sends from it, and resumes a cut stream);
 *   5. the commit point: every member has the snapshot.  Each member's
 *      state records it (to_publish), durably, before any is published;
 *   6. phase 2: publishes it at each destination (`receive --publish`),
 *      then moves that member's base at its source to it.
 * So a destination exposes a group snapshot only once every member
 * received it.  Between the first and the last publish of phase 2 the
 * members differ for as long as the publishes take (each a small
 * transaction); if one cannot be reached then, the others expose the new
 * snapshot and it the old one until the next transfer publishes it first
 * (step 2), which is the one window a group leaves open.
 *
 * Groups mirror (policy mirror): a vault keeps snapshots by label, and
 * labels are per volume, not per group.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "mirror.h"
#include "replicate.h"

#define CMD "mirror"

static int by_dst(const void *a, const void *b)
{
    return strcmp(((const struct mirror_rel *)a)->dst,
                  ((const struct mirror_rel *)b)->dst);
}

int mirror_group_members(const char *group, struct mirror_rel **out,
                         size_t *n)
{
    char **ids;
    size_t nids;
    int rc = mirror_rel_ids(&ids, &nids);
    if (rc)
        return rc;
    struct mirror_rel *v = calloc(nids ? nids : 1, sizeof(*v));
    *n = 0;
    for (size_t i = 0; i < nids; i++) {
        if (v && !mirror_rel_load(ids[i], &v[*n]) &&
            !strcmp(v[*n].group, group))
            (*n)++;
        free(ids[i]);
    }
    free(ids);
    if (!v)
        return -ENOMEM;
    qsort(v, *n, sizeof(*v), by_dst);
    *out = v;
    return 0;
}

/* ---- create ---- */

/* Split a comma list into at most MAX parts (pointers into TEXT). */
static size_t split(char *text, char **parts, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(text, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        if (n == max)
            return max + 1;
        parts[n++] = t;
    }
    return n;
}

int mirror_group_create(const char *group, const char *srcs,
                        const char *dsts, const struct mirror_rel *proto)
{
    if (!group[0] || strlen(group) >= sizeof(proto->group) ||
        strpbrk(group, "/ \t\n"))
        die_usage(CMD, "--group %s: a group name is 1 to %zu characters, "
                  "without '/' or blanks", group, sizeof(proto->group) - 1);
    if (strcmp(proto->policy, "mirror"))
        die_usage(CMD, "--group: a consistency group mirrors (policy "
                  "mirror); vault labels are kept per volume, not per group");
    if (proto->via[0])
        die_usage(CMD, "--group: give each member's destination as a local "
                  "volume or PEER:PATH; one --via command cannot reach "
                  "several destinations");
    struct mirror_rel *have;
    size_t nhave;
    int rc = mirror_group_members(group, &have, &nhave);
    if (rc)
        die(CMD, "reading the relationships: %s", strerror(-rc));
    free(have);
    if (nhave)
        die(CMD, "group %s exists already (snapfs mirror show)", group);
    static char srcbuf[8192], dstbuf[8192];
    static char *s[SFS_CGROUP_MAX + 1], *d[SFS_CGROUP_MAX + 1];
    snprintf(srcbuf, sizeof(srcbuf), "%s", srcs);
    snprintf(dstbuf, sizeof(dstbuf), "%s", dsts);
    size_t ns = split(srcbuf, s, SFS_CGROUP_MAX);
    size_t nd = split(dstbuf, d, SFS_CGROUP_MAX);
    if (ns < 2 || ns > SFS_CGROUP_MAX)
        die_usage(CMD, "--group: give 2 to %d sources, separated by commas",
                  SFS_CGROUP_MAX);
    if (nd != ns)
        die_usage(CMD, "--group: %zu sources but %zu destinations; they "
                  "pair in order", ns, nd);
    static struct mirror_rel m[SFS_CGROUP_MAX];
    for (size_t i = 0; i < ns; i++) {
        m[i] = *proto;
        snprintf(m[i].group, sizeof(m[i].group), "%s", group);
        mirror_rel_check(&m[i], s[i], d[i]);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(m[i].src, m[j].src) || !strcmp(m[i].dst, m[j].dst))
                die_usage(CMD, "--group: %s is given twice",
                          !strcmp(m[i].src, m[j].src) ? s[i] : d[i]);
    }
    for (size_t i = 0; i < ns; i++) {
        rc = mirror_rel_store(&m[i]);
        if (rc)
            die(CMD, "%s: recording the relationship: %s", d[i],
                strerror(-rc));
    }
    printf("snapfs mirror: group %s created: %zu members (", group, ns);
    for (size_t i = 0; i < ns; i++)
        printf("%s%s -> %s", i ? ", " : "", m[i].src, m[i].dst);
    printf("); snapfs mirror initialize %s starts it\n", d[0]);
    return 0;
}

/* ---- transfers ---- */

/* Run FN(M, ARG) in a child, so that a member's failure (which exits)
 * stops only it: true if it succeeded. */
static bool in_child(void (*fn)(struct mirror_rel *, const void *),
                     struct mirror_rel *m, const void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        fn(m, arg);
        fflush(NULL);
        _exit(0);
    }
    int status = 1;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct member_xfer {
    enum xfer_kind kind;
    bool yes;
    const char *snap;
};

static void transfer_member(struct mirror_rel *m, const void *arg)
{
    const struct member_xfer *mx = arg;
    struct xfer_opts o = { .yes = mx->yes, .group_snap = mx->snap };
    mirror_transfer(m, mx->kind, &o);
}

static void publish_member(struct mirror_rel *m, const void *arg)
{
    mirror_publish(m, arg);
}

/* Phase 2 (see THEORY).  One member marked to publish S proves that
 * every member received S (the marks are written after phase 1 ended
 * everywhere, one file at a time, so a crash may have left only some):
 * then every member publishes S. */
static int publish_committed(struct mirror_rel *v, size_t n)
{
    char snap[SFS_NAME_MAX + 1] = "";
    for (size_t i = 0; i < n && !snap[0]; i++) {
        struct mirror_state st;
        mirror_state_load(v[i].id, &st);
        if (st.to_publish)
            snprintf(snap, sizeof(snap), "%s", st.newest);
    }
    int failed = 0;
    for (size_t i = 0; snap[0] && i < n; i++) {
        struct mirror_state st;
        mirror_state_load(v[i].id, &st);
        if (!st.to_publish || strcmp(st.newest, snap)) {
            st.to_publish = true;
            snprintf(st.newest, sizeof(st.newest), "%s", snap);
            mirror_state_store(v[i].id, &st);
        }
        if (!in_child(publish_member, &v[i], snap)) {
            fprintf(stderr, "snapfs mirror: group %s: %s could not publish "
                    "%s; the next update publishes it first\n", v[i].group,
                    v[i].dst, snap);
            failed = 1;
        }
    }
    return failed;
}

/* Take snapmirror.GID.TIME.N of every source at one point in time. */
static void take_group_snapshot(const struct mirror_rel *v, size_t n,
                                char *name, size_t cap)
{
    char owner[MIRROR_ID_LEN + 1], srcs[8192] = "";
    mirror_snap_owner(&v[0], owner);
    uint64_t seq = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(srcs);
        snprintf(srcs + len, sizeof(srcs) - len, "%s%s", i ? "," : "",
                 v[i].src);
        uint64_t s = mirror_source_seq(v[i].src);
        if (s > seq)
            seq = s;
    }
    char err[512];
    char *argv[] = { "snapshot", "create", "--group", srcs, NULL, NULL };
    if (mirror_take_snapshot(argv, 4, owner, seq, name, cap, err,
                             sizeof(err)))
        die(CMD, "group %s: taking the group snapshot %s: %s", v[0].group,
            name, err);
}

static void lock_all(const struct mirror_rel *v, size_t n, int *locks)
{
    for (size_t i = 0; i < n; i++) {
        locks[i] = mirror_lock(v[i].id);
        if (locks[i] == -EWOULDBLOCK)
            die(CMD, "group %s: a transfer of %s is running; wait for it",
                v[i].group, v[i].dst);
        if (locks[i] < 0)
            die(CMD, "group %s: locking %s: %s", v[i].group, v[i].dst,
                strerror(-locks[i]));
    }
}

int mirror_group_transfer(const struct mirror_rel *m, enum xfer_kind kind,
                          bool yes)
{
    static struct mirror_rel *v;
    size_t n;
    int rc = mirror_group_members(m->group, &v, &n);
    if (rc)
        die(CMD, "group %s: reading the relationships: %s", m->group,
            strerror(-rc));
    if (kind == XFER_REVERSE)
        die(CMD, "group %s: reverse the members one by one (snapfs mirror "
            "reverse-resync), then make a new group of them", m->group);
    for (size_t i = 0; i < n; i++)
        if (v[i].quiesced && kind != XFER_RESYNC)
            die(CMD, "group %s: %s is quiesced; snapfs mirror resume %s "
                "first", m->group, v[i].dst, v[i].dst);
    static int locks[SFS_CGROUP_MAX];
    lock_all(v, n, locks);
    if (publish_committed(v, n))
        die(CMD, "group %s: not updated: a member could not publish the "
            "snapshot every member has", m->group);
    char snap[SFS_NAME_MAX + 1];
    take_group_snapshot(v, n, snap, sizeof(snap));
    /* a member not yet initialized gets its baseline as an update does */
    struct member_xfer mx = { kind == XFER_INIT ? XFER_UPDATE : kind, yes,
                              snap };
    for (size_t i = 0; i < n; i++)
        if (!in_child(transfer_member, &v[i], &mx))
            die(CMD, "group %s: %s did not receive %s; no member exposes "
                "it (each still exposes the group's previous snapshot), and "
                "the next update goes on from what arrived", m->group,
                v[i].dst, snap);
    for (size_t i = 0; i < n; i++) { /* the commit point */
        struct mirror_state st;
        mirror_state_load(v[i].id, &st);
        st.to_publish = true;
        snprintf(st.newest, sizeof(st.newest), "%s", snap);
        rc = mirror_state_store(v[i].id, &st);
        if (rc)
            die(CMD, "group %s: recording that every member has %s: %s",
                m->group, snap, strerror(-rc));
    }
    int failed = publish_committed(v, n);
    if (!failed)
        printf("snapfs mirror: group %s: %zu members at %s\n", m->group, n,
               snap);
    for (size_t i = 0; i < n; i++)
        close(locks[i]);
    free(v);
    return failed;
}
