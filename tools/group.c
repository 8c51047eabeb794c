/*
 * group.c - `snapfs snapshot create --group VOL1,VOL2,... NAME`: snapshot
 * NAME of several volumes of this host, taken at one point in time (a
 * consistency group), all or nothing, each recorded as a member of the
 * group (store/cgroup.c; `snapshot list` shows it).
 *
 * WHAT "ONE POINT IN TIME" MEANS.  There is an instant T at which every
 * member's snapshot equals that member's state: every change a member's
 * daemon acknowledged before T is in its snapshot, and none it
 * acknowledged after T is in any.  So a write that completed on VOL1
 * before a write on VOL2 began is never missing from VOL1's snapshot
 * while the VOL2 write is in VOL2's: a group snapshot is what a power cut
 * of all members at T would have left, which is what an application
 * spread over several volumes (a database and its log) must be able to
 * restart from.
 *
 * "Acknowledged" is the daemon's reply to a request.  With the kernel's
 * writeback cache a write(2) returns once the data is in the page cache;
 * it reaches the daemon at close(2) (FUSE flushes a file's dirty pages on
 * close), fsync(2)/fdatasync(2)/syncfs(2), or the kernel's own writeback.
 * Hence:
 *   - data written and then closed or synced, metadata changes (create,
 *     rename, unlink, ...: synchronous in FUSE), and O_SYNC or O_DIRECT
 *     writes follow the rule above exactly;
 *   - data still in the page cache when the command starts is in the
 *     snapshot when VOL is given as its mountpoint: the command syncs
 *     every member's mountpoint (syncfs) before freezing any;
 *   - data written with write(2) after that syncfs and not yet closed or
 *     synced when the member freezes is not in the snapshot, and a later
 *     write on another member may be: as after a power cut, unsynced
 *     buffered data has no order.  Applications that need an order across
 *     volumes sync (or close) before the write that depends on it, which
 *     they must do for crash safety anyway.
 *
 * PROTOCOL.
 *   1. Check everything before taking anything: NAME is valid, every
 *      member is a volume, none is given twice (the same store or the
 *      same volume UUID), NAME is free on every member, there are at most
 *      SFS_CGROUP_MAX.  A refusal names the member and why (exit 1).
 *   2. Unmounted members are opened exclusively (no daemon can mount
 *      them meanwhile, so they stand still for the whole command) and the
 *      snapshot with its group record is made in each one's write
 *      transaction, not yet committed.
 *   3. Mounted members: syncfs of each mountpoint; then `freeze` to every
 *      member's control socket, all sent before any reply is read, so the
 *      members freeze (drain, store their caches, commit) in parallel.
 *      Each daemon answers when it is frozen (fs/control.c, fs/volume.c:
 *      new client changes wait, none fails).  Once all have answered, T is
 *      now: every member stands still.
 *   4. `snapshot-create NAME GROUP` on every frozen connection (again all
 *      sent, then all replies read), then `thaw` to all.  A daemon takes
 *      the snapshot only if its freeze has held without a break since it
 *      began (after its timeout it refuses), so each member stood still
 *      from before T (its answer to freeze came before T) until its
 *      snapshot (after T): the snapshot is its state at T.
 *   5. The unmounted members' transactions are committed.
 * Failure: before step 4 nothing exists, the sessions are closed (which
 * thaws) and the transactions aborted.  If a member's snapshot fails (its
 * freeze expired, the volume is full, a commit failed), the snapshots
 * taken on the other members are deleted again and the command fails
 * naming the member.
 *
 * HOOKS.  With --pre/--post (hookopt.c, fs/hooks.c) the pre hook runs once
 * for the whole group, after the checks of step 1 and before step 2 (it
 * is told SNAPFS_VOLUME=the members as given, comma-separated); every
 * member's snapshot carries the labels it decided (consistency=...), and
 * the post hook runs once after step 5, or when the command fails.
 *
 * A KILLED COMMAND.  The daemons thaw by themselves when the connection
 * closes (the kernel closes it when the process dies) and, at the latest,
 * GROUP_FREEZE_MS after the freeze began; a snapshot asked for after its
 * freeze expired is refused.  Clients are never held longer than that.
 * A command killed after step 4 leaves the snapshots it took: each is a
 * whole snapshot of its member, recorded as a group member, and `snapshot
 * list` shows which members have one.  Unmounted members' uncommitted
 * transactions die with the process.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hooks.h"
#include "store.h"

/* How long a member may stay frozen, and how long we wait for a reply. */
#define GROUP_FREEZE_MS 5000
#define GROUP_REPLY_MS (GROUP_FREEZE_MS + 10000)

struct member {
    struct volume vol;
    uint8_t uuid[16];
    struct sfs_store *st; /* unmounted: opened exclusively */
    MDB_txn *txn;         /* its transaction holding the snapshot */
    int fd;               /* mounted: the freeze session, or -1 */
    bool taken;           /* the snapshot exists (committed) */
};

struct group {
    const char *cmd, *name;
    struct member *m;
    int n;
    struct sfs_cgroup rec;
    char *word; /* the record as snapshot-create's GROUP word */
    const char *labels; /* with hooks: consistency=...; else NULL */
};

/* ---- 1: the checks ---- */

static void read_uuid(struct group *g, struct member *m)
{
    struct sfs_store *st;
    int rc = sfs_open(m->vol.store, SFS_OPEN_RDONLY, &st);
    if (rc)
        die(g->cmd, "%s: %s", m->vol.arg, open_error(rc));
    memcpy(m->uuid, st->super.uuid, sizeof(m->uuid));
    sfs_close(st);
}

static void parse_members(struct group *g, char *list)
{
    int cap = 0;
    for (char *p = list; *p; p++)
        cap += *p == ',';
    g->m = calloc((size_t)cap + 1, sizeof(*g->m));
    if (!g->m)
        die(g->cmd, "out of memory");
    for (char *arg; (arg = strsep(&list, ","));) {
        if (!*arg)
            die_usage(g->cmd, "--group: an empty member name in the list");
        if (g->n == SFS_CGROUP_MAX)
            die_usage(g->cmd, "--group: at most %d volumes", SFS_CGROUP_MAX);
        struct member *m = &g->m[g->n++];
        m->fd = -1;
        volume_open(&m->vol, g->cmd, arg);
        read_uuid(g, m);
        for (struct member *o = g->m; o < m; o++) {
            if (!strcmp(o->vol.store, m->vol.store))
                die(g->cmd, "%s: given twice (the same volume as %s)", arg,
                    o->vol.arg);
            if (!memcmp(o->uuid, m->uuid, sizeof(m->uuid)))
                die(g->cmd, "%s: has the same volume UUID as %s (a copy of "
                            "its store?); a group needs distinct volumes",
                    arg, o->vol.arg);
        }
    }
}

static void make_record(struct group *g)
{
    g->rec.created_sec = (int64_t)time(NULL);
    g->rec.count = (uint32_t)g->n;
    for (int i = 0; i < g->n; i++)
        memcpy(g->rec.members[i], g->m[i].uuid, 16);
    size_t len;
    FILE *f = open_memstream(&g->word, &len);
    if (!f)
        die(g->cmd, "out of memory");
    sfs_cgroup_format(&g->rec, f);
    fclose(f);
}

/* ---- undoing ---- */

/* Abort what is not committed and end the sessions (which thaws). */
static void release_all(struct group *g)
{
    for (int i = 0; i < g->n; i++) {
        struct member *m = &g->m[i];
        if (m->txn)
            mdb_txn_abort(m->txn);
        m->txn = NULL;
        if (m->st)
            sfs_close(m->st);
        m->st = NULL;
        if (m->fd >= 0)
            close(m->fd);
        m->fd = -1;
    }
}

static int delete_offline(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct sfs_snap_rec s;
    int rc = sfs_snap_find(st, txn, arg, &s);
    return rc ? rc : sfs_snap_delete_w(st, txn, s.epoch);
}

/* Delete the snapshots taken so far, then fail naming WHO and WHY. */
static void fail(struct group *g, struct member *who, const char *what,
                 int why)
{
    release_all(g);
    char also[512] = "";
    bool undone = false;
    for (int i = 0; i < g->n; i++) {
        struct member *m = &g->m[i];
        if (!m->taken)
            continue;
        int rc;
        if (m->vol.mounted) {
            char *words[] = { "snapshot-delete", (char *)g->name }, *data = NULL;
            rc = volume_request(&m->vol, words, 2, &data);
            free(data);
        } else {
            rc = volume_offline(&m->vol, g->cmd, delete_offline,
                                (void *)g->name, true);
        }
        undone |= !rc;
        if (rc && !*also)
            snprintf(also, sizeof(also), "; and snapshot %s of %s, already "
                     "taken, could not be deleted again: %s", g->name,
                     m->vol.arg, snapshot_error(rc));
    }
    die(g->cmd, "%s: creating snapshot %s: %s: %s%s%s", who->vol.arg, g->name,
        what,
        why == -ETIMEDOUT ? "its freeze expired (the daemon thawed it after "
                            "its timeout)" : snapshot_error(why),
        undone ? " (the group's snapshots already taken were deleted)" : "",
        also);
}

/* ---- 2: unmounted members ---- */

static void take_offline(struct group *g)
{
    for (int i = 0; i < g->n; i++) {
        struct member *m = &g->m[i];
        if (m->vol.mounted)
            continue;
        int rc = sfs_open(m->vol.store, SFS_OPEN_EXCLUSIVE, &m->st);
        if (rc) {
            m->st = NULL;
            release_all(g);
            die(g->cmd, "%s: %s", m->vol.arg, open_error(rc));
        }
        rc = sfs_txn_begin(m->st, NULL, true, &m->txn);
        if (rc)
            m->txn = NULL;
        else
            rc = sfs_snap_take_labelled_w(m->st, m->txn, g->name, &g->rec,
                                          g->labels, NULL);
        if (rc)
            fail(g, m, "taking the snapshot", rc);
    }
}

/* ---- 3, 4: mounted members ---- */

/* Send WORDS on every open session, then read every reply (all of them:
 * with TAKES, each OK is a snapshot to undo should another fail); fails
 * naming the first member that did not answer OK. */
static void round_trip(struct group *g, char **words, int nwords,
                       const char *what, bool takes)
{
    struct member *failed = NULL;
    int why = 0;
    for (int i = 0; i < g->n; i++) {
        struct member *m = &g->m[i];
        if (m->fd >= 0 && (why = control_send(m->fd, words, nwords)))
            fail(g, m, what, why == -EPIPE ? -ETIMEDOUT : why);
    }
    for (int i = 0; i < g->n; i++) {
        struct member *m = &g->m[i];
        if (m->fd < 0)
            continue;
        int rc = control_status(m->fd, GROUP_REPLY_MS);
        if (rc == -EPIPE)
            rc = -ETIMEDOUT; /* the daemon ended the session: expired */
        m->taken |= takes && !rc;
        if (rc && !failed) {
            failed = m;
            why = rc;
        }
    }
    if (failed)
        fail(g, failed, what, why);
}

/* Thaw every session (a failure only means it had thawed already). */
static void thaw_all(struct group *g)
{
    char *thaw[] = { "thaw" };
    for (int i = 0; i < g->n; i++)
        if (g->m[i].fd >= 0 && !control_send(g->m[i].fd, thaw, 1))
            control_status(g->m[i].fd, GROUP_REPLY_MS);
    for (int i = 0; i < g->n; i++)
        if (g->m[i].fd >= 0) {
            close(g->m[i].fd);
            g->m[i].fd = -1;
        }
}

static void take_mounted(struct group *g)
{
    for (int i = 0; i < g->n; i++)
        if (g->m[i].vol.mounted)
            volume_syncfs(&g->m[i].vol);
    for (int i = 0; i < g->n; i++) {
        struct member *m = &g->m[i];
        if (!m->vol.mounted)
            continue;
        m->fd = control_connect(m->vol.store);
        if (m->fd < 0)
            fail(g, m, "reaching its daemon", m->fd);
    }
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", GROUP_FREEZE_MS);
    char *freeze[] = { "freeze", timeout };
    round_trip(g, freeze, 2, "freezing it", false);
    /* T: every mounted member is frozen, every unmounted one is held. */
    char *create[] = { "snapshot-create", (char *)g->name, g->word,
                       (char *)g->labels };
    round_trip(g, create, g->labels ? 4 : 3,
               "taking the snapshot while frozen", true);
    thaw_all(g);
}

/* ---- 5: commit ---- */

static void commit_offline(struct group *g)
{
    for (int i = 0; i < g->n; i++) {
        struct member *m = &g->m[i];
        if (!m->txn)
            continue;
        int rc = sfs_txn_commit(m->st, m->txn);
        m->txn = NULL;
        if (!rc)
            rc = sfs_mdb_errno(mdb_env_sync(m->st->env, 1));
        sfs_close(m->st);
        m->st = NULL;
        m->taken = !rc;
        if (rc)
            fail(g, m, "committing the snapshot", rc);
    }
}

int snapshot_create_group(const char *cmd, const char *members,
                          const char *name, const struct sfs_hookspec *spec)
{
    struct group g = { .cmd = cmd, .name = name };
    struct hooks_run hooks = { .spec = spec };
    char *list = strdup(members);
    if (!list)
        die(cmd, "out of memory");
    parse_members(&g, list);
    for (int i = 0; i < g.n; i++)
        snapshot_check_new_name(&g.m[i].vol, cmd, name);
    make_record(&g);
    if (spec) {
        hooks_start(&hooks, cmd, members, name);
        g.labels = hooks.labels;
    }
    take_offline(&g);
    take_mounted(&g);
    commit_offline(&g);
    for (int i = 0; i < g.n; i++)
        printf("snapfs: created snapshot %s of %s (group of %d volumes)%s%s\n",
               name, g.m[i].vol.arg, g.n, spec ? ", " : "",
               spec ? hooks.labels : "");
    if (spec)
        hooks_finish(&hooks, cmd);
    for (int i = 0; i < g.n; i++) {
        free(g.m[i].vol.store);
        free(g.m[i].vol.mountpoint);
    }
    free(g.m);
    free(g.word);
    free(list);
    return 0;
}
