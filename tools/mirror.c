/*
 * mirror.c - `snapfs mirror`: relationships in which a destination volume
 * follows a source volume snapshot by snapshot, as SnapMirror and
 * SnapVault do, built on replication streams (send.c, store/stream.c).
 *
 *   mirror create SRC DST [--policy mirror|vault|mirror-vault]
 *                 [--keep LABEL=N,...] [--schedule S] [--via CMD]
 *                 [--with-config]   (the source's configuration travels
 *                 with the data to the destination's host, local, peer
 *                 or via, applied when the destination is activated
 *                 there: mirror_config.c)
 *   mirror create SRC1,SRC2,... DST1,DST2,... --group NAME [...]
 *                 (a consistency group: mirror_group.c)
 *   mirror initialize DST | update DST | update --due
 *   mirror quiesce DST | resume DST
 *   mirror break DST                 (on the destination's host)
 *   mirror resync DST [--yes]
 *   mirror reverse-resync NEWSRC NEWDST [--via CMD] [--yes]
 *   mirror restore DST SNAP --to VOL
 *   mirror show [DST] [--json] | delete DST
 *   mirror test-failover DST [--to PATH] | test-cleanup DST
 *
 * Relationships live in this host's registry (mirror_conf.c) and are run
 * from the source's host: the source is a local volume; the destination
 * is a local volume, PEER:PATH on a peer (TLS, peer.h), or whatever a
 * --via command reaches.  What the destination is (following, broken
 * off, its newest snapshot) is always asked of the destination itself,
 * never assumed from the registry.  The transfer is mirror_xfer.c.  A
 * command given a member of a group runs for the whole group.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "mirror/mirror.h"
#include "mirror/replicate.h"
#include "scheduler.h"

#define CMD "mirror"

/* ---- finding relationships ---- */

static void rel_get(const char *arg, struct mirror_rel *m)
{
    char dst[PATH_MAX], id[MIRROR_ID_LEN + 1];
    mirror_canonical_dst(arg, false, dst, sizeof(dst));
    mirror_id(dst, id);
    int rc = mirror_rel_load(id, m);
    if (rc == -ENOENT && strcmp(dst, arg)) {
        mirror_id(arg, id);
        rc = mirror_rel_load(id, m);
    }
    if (rc == -ENOENT)
        die(CMD, "%s: no mirror relationship has this destination "
            "(snapfs mirror show lists them)", arg);
    if (rc)
        die(CMD, "%s: reading the relationship: %s", arg, strerror(-rc));
}

/* M, or every member of its group: a malloc'd array of *N. */
static struct mirror_rel *rel_all(const struct mirror_rel *m, size_t *n)
{
    struct mirror_rel *v;
    if (m->group[0]) {
        int rc = mirror_group_members(m->group, &v, n);
        if (rc)
            die(CMD, "group %s: reading the relationships: %s", m->group,
                strerror(-rc));
        return v;
    }
    v = malloc(sizeof(*v));
    if (!v)
        die(CMD, "out of memory");
    *v = *m;
    *n = 1;
    return v;
}

static int lock_or_die(const struct mirror_rel *m)
{
    int fd = mirror_lock(m->id);
    if (fd == -EWOULDBLOCK)
        die(CMD, "%s: a transfer is running; wait for it (snapfs mirror "
            "show %s)", m->dst, m->dst);
    if (fd < 0)
        die(CMD, "%s: locking the relationship: %s", m->dst, strerror(-fd));
    return fd;
}

static const char *next_opt(int argc, char **argv, int *i, const char *opt)
{
    return option_value(CMD, opt, argc, argv, i);
}

/* ---- create ---- */

static void check_policy(const struct mirror_rel *m)
{
    int kind = mirror_policy_kind(m->policy);
    if (!kind)
        die_usage(CMD, "--policy %s: not mirror, vault or mirror-vault",
                  m->policy);
    struct sfs_retention ret;
    char why[256];
    if (mirror_parse_keep(m->keep, &ret, why, sizeof(why)))
        die_usage(CMD, "--keep %s: %s", m->keep, why);
    if (kind == SFS_KEEP_MIRROR && ret.nrules)
        die_usage(CMD, "--keep is the retention of the vault policies "
                  "(vault, mirror-vault); policy mirror keeps what the "
                  "source keeps");
    if (kind == SFS_KEEP_VAULT && !ret.nrules)
        die_usage(CMD, "policy vault needs --keep LABEL=N,... (which "
                  "snapshots it keeps, by label)");
    struct sfs_schedule s;
    if (m->schedule[0] && sfs_schedule_parse(m->schedule, &s))
        die_usage(CMD, "--schedule %s: not a schedule (every:MINUTES, "
                  "hourly, daily, weekly, monthly; see snapfs policy)",
                  m->schedule);
}

static int mirror_create(int argc, char **argv)
{
    static struct mirror_rel m;
    const char *pos[2], *group = NULL;
    int npos = 0;
    snprintf(m.policy, sizeof(m.policy), "mirror");
    for (int i = 2; i < argc; i++) {
        const char *v;
        if ((v = next_opt(argc, argv, &i, "--group")))
            group = v;
        else if ((v = next_opt(argc, argv, &i, "--policy")))
            snprintf(m.policy, sizeof(m.policy), "%s", v);
        else if ((v = next_opt(argc, argv, &i, "--keep")))
            snprintf(m.keep, sizeof(m.keep), "%s", v);
        else if ((v = next_opt(argc, argv, &i, "--schedule")))
            snprintf(m.schedule, sizeof(m.schedule), "%s", v);
        else if ((v = next_opt(argc, argv, &i, "--via")))
            snprintf(m.via, sizeof(m.via), "%s", v);
        else if (!strcmp(argv[i], "--with-config"))
            m.with_config = true;
        else if (argv[i][0] == '-' || npos == 2)
            die_usage(CMD, "usage: snapfs mirror create SRC DST [--policy "
                      "mirror|vault|mirror-vault] [--keep LABEL=N,...] "
                      "[--schedule S] [--via CMD] [--group NAME] "
                      "[--with-config]");
        else
            pos[npos++] = argv[i];
    }
    if (npos != 2)
        die_usage(CMD, "give the source volume and the destination");
    check_policy(&m);
    if (group)
        return mirror_group_create(group, pos[0], pos[1], &m);
    mirror_rel_check(&m, pos[0], pos[1]);
    int rc = mirror_rel_store(&m);
    if (rc)
        die(CMD, "%s: recording the relationship: %s", pos[1], strerror(-rc));
    printf("snapfs mirror: %s -> %s created (policy %s%s%s%s); "
           "snapfs mirror initialize %s starts it\n", m.src, m.dst, m.policy,
           m.keep[0] ? ", keep " : "", m.keep,
           m.with_config ? ", with its configuration" : "", pos[1]);
    char peer[PEER_NAME_MAX + 1], path[PATH_MAX];
    if (mirror_dst_kind(&m, peer, path) == DST_PEER)
        printf("snapfs mirror: it uses this host's receive grant for %s on "
               "peer %s (a mirror restore from there needs a send grant "
               "too)\n", path, peer);
    return 0;
}

/* ---- transfers ---- */

static int mirror_run(const char *arg, enum xfer_kind kind, bool yes)
{
    static struct mirror_rel m;
    rel_get(arg, &m);
    if (m.group[0])
        return mirror_group_transfer(&m, kind, yes);
    if (m.quiesced && kind != XFER_RESYNC)
        die(CMD, "%s: the relationship is quiesced; snapfs mirror resume "
            "%s first", arg, arg);
    int lock = lock_or_die(&m);
    struct xfer_opts o = { .yes = yes };
    mirror_transfer(&m, kind, &o);
    close(lock);
    return 0;
}

/* The schedule's SLOT was run for M (for all of its group). */
static void mark_served(const struct mirror_rel *m, int64_t slot)
{
    size_t n;
    struct mirror_rel *v = rel_all(m, &n);
    for (size_t i = 0; i < n; i++) {
        struct mirror_state st;
        mirror_state_load(v[i].id, &st);
        st.last_sched = slot;
        mirror_state_store(v[i].id, &st);
    }
    free(v);
}

/* One scheduled update in a child, so that one failure stops no other;
 * a group's runs once, for its first member. */
static int run_due_one(struct mirror_rel *m, int64_t now)
{
    struct sfs_schedule s;
    if (!m->schedule[0] || m->quiesced || sfs_schedule_parse(m->schedule, &s))
        return 0;
    struct mirror_state st;
    mirror_state_load(m->id, &st);
    int64_t slot = sfs_schedule_prev(&s, now);
    struct mirror_rel *v = NULL;
    size_t n = 0;
    bool first = !m->group[0] ||
                 (!mirror_group_members(m->group, &v, &n) && n &&
                  !strcmp(v[0].id, m->id));
    free(v);
    if (!first)
        return 0;
    if (slot <= st.last_sched)
        return 0;
    int lock = m->group[0] ? -1 : mirror_lock(m->id);
    if (lock < 0 && !m->group[0])
        return 0; /* a transfer runs: this slot is being served */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct xfer_opts o = { 0 };
        if (m->group[0]) /* it takes every member's lock itself */
            exit(mirror_group_transfer(m, XFER_UPDATE, false));
        mirror_transfer(m, XFER_UPDATE, &o);
        exit(0);
    }
    int status = 1;
    if (pid > 0)
        waitpid(pid, &status, 0);
    mark_served(m, slot);
    if (lock >= 0)
        close(lock);
    return pid > 0 && WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : 1;
}

static int mirror_update_due(void)
{
    int64_t now;
    int rc = scheduler_clock(&now);
    if (rc)
        die(CMD, "reading the clock: %s", strerror(-rc));
    char **ids;
    size_t n;
    rc = mirror_rel_ids(&ids, &n);
    if (rc)
        die(CMD, "reading the relationships: %s", strerror(-rc));
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        static struct mirror_rel m;
        if (!mirror_rel_load(ids[i], &m))
            failed |= run_due_one(&m, now);
        free(ids[i]);
    }
    free(ids);
    return failed;
}

static int mirror_set_quiesced(const char *arg, bool quiesced)
{
    static struct mirror_rel m, *v;
    rel_get(arg, &m);
    size_t n;
    v = rel_all(&m, &n);
    for (size_t i = 0; i < n; i++) {
        v[i].quiesced = quiesced;
        int rc = mirror_rel_store(&v[i]);
        if (rc)
            die(CMD, "%s: %s", v[i].dst, strerror(-rc));
        printf("snapfs mirror: %s: %s%s\n", v[i].dst,
               quiesced ? "quiesced: no transfer starts until snapfs mirror "
                          "resume" : "resumed: transfers start again",
               quiesced && mirror_transferring(v[i].id)
                   ? " (the transfer running now finishes)" : "");
    }
    free(v);
    return 0;
}

/* ---- break (on the destination's host) ---- */

struct break_arg {
    struct sfs_recv_state rs;
    bool publish;   /* a group member with a committed snapshot */
};

static int offline_break(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    struct break_arg *b = arg;
    int rc = sfs_recv_state(st, txn, &b->rs);
    if (rc)
        return rc;
    if (!b->rs.follows)
        return -ENOTCONN;
    if (b->rs.writable)
        return -EALREADY;
    rc = b->publish ? sfs_recv_publish_w(st, txn) : 0;
    return rc ? rc : sfs_recv_break_w(st, txn);
}

/* Break the destination ARG (a local volume).  PUBLISH: a group member
 * whose committed snapshot is not published yet publishes it first. */
/* Open the destination ARG, which a break needs unmounted. */
static void open_unmounted(struct volume *vol, const char *arg)
{
    volume_open(vol, CMD, arg);
    if (vol->mounted)
        die(CMD, "%s: is mounted (read-only, as a mirror); unmount it, "
            "break, and mount it again to write", arg);
}

static int break_one(const char *arg, bool publish, bool in_group)
{
    static struct volume vol;
    open_unmounted(&vol, arg);
    struct break_arg b = { .publish = publish };
    int rc = volume_offline(&vol, CMD, offline_break, &b, true);
    if (rc == -ENOTCONN)
        die(CMD, "%s: is not a mirror destination (it follows no volume)",
            arg);
    if (rc == -EALREADY && in_group) { /* a group break that stopped */
        printf("snapfs mirror: %s: broken off already\n", arg);
        free(vol.store);
        return 0;
    }
    if (rc == -EALREADY)
        die(CMD, "%s: is broken off already (writable)", arg);
    if (rc == -EBUSY)
        die(CMD, "%s: holds part of its first transfer only: nothing to "
            "serve; initialize it again", arg);
    if (rc == -ENOMSG)
        die(CMD, "%s: its group's baseline has not reached every member: "
            "nothing to serve; update the group first", arg);
    if (rc)
        die(CMD, "%s: %s", arg, open_error(rc));
    printf("snapfs mirror: %s: broken off: writable now, at its newest "
           "%ssnapshot; snapfs mirror resync %s makes it follow again\n",
           arg, b.rs.held_back ? "published " : "", arg);
    free(vol.store);
    return 0;
}

/* M's carried configuration made true on TARGET (activated). */
static void activate_config(const struct mirror_rel *m, const char *target)
{
    char err[1024];
    if (!m->with_config)
        return;
    if (mirror_config_activate(m, target, err, sizeof(err)))
        die(CMD, "%s: applying the configuration carried from %s: %s "
            "(snapfs config import shows what it holds)", target, m->src,
            err);
    printf("snapfs mirror: %s: the configuration of %s applied (its "
           "settings, snapshot policies and qtrees)\n", target, m->src);
}

/* The destination DST (its store; ID its id), of no relationship here
 * (its source is on another host): the configuration carried to it, if
 * any, made true on TARGET. */
static void activate_carried(const char *id, const char *dst,
                             const char *target)
{
    char err[1024] = "";
    int rc = mirror_config_activate_carried(id, dst, target, err,
                                            sizeof(err));
    if (rc == 1)
        return;
    if (rc == 2) {
        printf("snapfs mirror: %s: not applied: %s\n", target, err);
        return;
    }
    if (rc)
        die(CMD, "%s: applying the configuration carried with its data: %s "
            "(snapfs config import shows what it holds)", target, err);
    printf("snapfs mirror: %s: the configuration carried with its data "
           "applied (its source's settings, snapshot policies and "
           "qtrees)\n", target);
}

static int mirror_break(const char *arg)
{
    static struct mirror_rel m, *v;
    char dst[PATH_MAX], id[MIRROR_ID_LEN + 1];
    mirror_canonical_dst(arg, false, dst, sizeof(dst));
    mirror_id(dst, id);
    if (mirror_rel_load(id, &m)) { /* of another host's */
        break_one(arg, false, false);
        activate_carried(id, dst, arg);
        return 0;
    }
    size_t n;
    v = rel_all(&m, &n);
    static int locks[SFS_CGROUP_MAX];
    for (size_t i = 0; i < n; i++) {
        char peer[PEER_NAME_MAX + 1], path[PATH_MAX];
        if (n > 1 && mirror_dst_kind(&v[i], peer, path) != DST_LOCAL)
            die(CMD, "group %s: %s is not a local volume; break each member "
                "on its own host", m.group, v[i].dst);
        locks[i] = lock_or_die(&v[i]);
        static struct volume member; /* checked before any member changes */
        open_unmounted(&member, n == 1 ? arg : v[i].dst);
        free(member.store);
        free(member.mountpoint);
    }
    /* one member marked to publish means every member has the snapshot
     * (mirror_group.c, THEORY): then every member publishes it first */
    bool committed = false;
    for (size_t i = 0; i < n; i++) {
        struct mirror_state st;
        mirror_state_load(v[i].id, &st);
        committed |= st.to_publish;
    }
    for (size_t i = 0; i < n; i++) {
        break_one(n == 1 ? arg : v[i].dst, committed, n > 1);
        activate_config(&v[i], n == 1 ? arg : v[i].dst);
        struct mirror_state st;
        mirror_state_load(v[i].id, &st);
        if (st.to_publish) { /* published by the break */
            st.to_publish = false;
            mirror_state_store(v[i].id, &st);
        }
    }
    for (size_t i = 0; i < n; i++)
        close(locks[i]);
    free(v);
    return 0;
}

/* ---- reverse resync ---- */

/* The newest snapshot NEWSRC received and its epochs there and at its
 * source; dies unless NEWSRC is a (broken-off) destination. */
static void received_base(struct volume *vol, uint8_t src_uuid[16],
                          uint64_t *own_epoch, uint64_t *src_epoch)
{
    struct sfs_store *st = volume_read_store(vol, CMD, "read");
    MDB_txn *txn;
    struct destination_info d;
    struct sfs_snap_rec s;
    int rc = sfs_txn_begin(st, NULL, false, &txn);
    if (!rc) {
        rc = destination_info_read(st, txn, 0, &d);
        if (!rc && d.newest_src_epoch)
            rc = sfs_snap_find(st, txn, d.newest, &s);
        mdb_txn_abort(txn);
    }
    sfs_close(st);
    if (rc)
        die(CMD, "%s: %s", vol->arg, strerror(-rc));
    if (strcmp(d.state, "broken") && strcmp(d.state, "follows"))
        die(CMD, "%s: never received a snapshot from another volume: "
            "nothing to reverse", vol->arg);
    if (!d.newest_src_epoch)
        die(CMD, "%s: has no received snapshot left: nothing in common with "
            "its old source", vol->arg);
    memcpy(src_uuid, d.source, 16);
    *own_epoch = s.epoch;
    *src_epoch = d.newest_src_epoch;
}

/* The relationship OLD_ID (NEWDST -> NEWSRC) goes: its hold on NEWDST too,
 * when NEWDST is local. */
static void forget_old(const char *newdst_store, const char *newsrc)
{
    char id[MIRROR_ID_LEN + 1];
    mirror_id(newsrc, id);
    struct mirror_rel old;
    if (mirror_rel_load(id, &old) || strcmp(old.src, newdst_store))
        return;
    struct mirror_state st;
    mirror_state_load(id, &st);
    struct volume v;
    volume_open(&v, CMD, old.src);
    char tag[64];
    snprintf(tag, sizeof(tag), "mirror:%s", id);
    if (st.held[0])
        volume_hold(&v, CMD, st.held, tag, false);
    free(v.store);
    free(v.mountpoint);
    mirror_rel_delete(id);
}

static int mirror_reverse(int argc, char **argv)
{
    static struct mirror_rel m;
    const char *pos[2];
    int npos = 0;
    bool yes = false;
    for (int i = 2; i < argc; i++) {
        const char *v;
        if ((v = next_opt(argc, argv, &i, "--via")))
            snprintf(m.via, sizeof(m.via), "%s", v);
        else if (!strcmp(argv[i], "--yes"))
            yes = true;
        else if (argv[i][0] == '-' || npos == 2)
            die_usage(CMD, "usage: snapfs mirror reverse-resync NEWSRC "
                      "NEWDST [--via CMD] [--yes]");
        else
            pos[npos++] = argv[i];
    }
    if (npos != 2)
        die_usage(CMD, "give the new source (the broken-off destination) "
                  "and the new destination (its old source)");
    static struct volume vol;
    volume_open(&vol, CMD, pos[0]);
    snprintf(m.src, sizeof(m.src), "%s", vol.store);
    snprintf(m.policy, sizeof(m.policy), "mirror");
    mirror_check_destination(&m, pos[1]);
    mirror_id(m.dst, m.id);
    uint8_t old_source[16];
    uint64_t own_epoch, src_epoch;
    received_base(&vol, old_source, &own_epoch, &src_epoch);
    char peer[PEER_NAME_MAX + 1], path[PATH_MAX];
    bool local = mirror_dst_kind(&m, peer, path) == DST_LOCAL;
    static struct volume nd;
    if (local) {
        volume_open(&nd, CMD, pos[1]);
        if (nd.mounted)
            die(CMD, "%s: is mounted; unmount it: it becomes a read-only "
                "mirror of %s", pos[1], pos[0]);
    }
    struct mirror_rel existing;
    if (!mirror_rel_load(m.id, &existing) && strcmp(existing.src, m.src))
        die(CMD, "%s: is the destination of a relationship from %s already",
            pos[1], existing.src);
    int lock = lock_or_die(&m);
    struct mirror_adopt adopt = { .epoch = src_epoch, .base = own_epoch };
    memcpy(adopt.old_source, old_source, 16);
    struct xfer_opts o = { .yes = yes, .adopt = &adopt };
    mirror_transfer(&m, XFER_REVERSE, &o);
    /* only now, with the new direction in place, the old one goes */
    if (local)
        forget_old(nd.store, m.src);
    int rc = mirror_rel_store(&m);
    if (rc)
        die(CMD, "%s: recording the relationship: %s", pos[1], strerror(-rc));
    close(lock);
    free(nd.store);
    free(nd.mountpoint);
    return 0;
}

/* ---- restore ---- */

static int offline_forget(struct sfs_store *st, MDB_txn *txn, void *arg)
{
    (void)arg;
    return sfs_recv_forget_w(st, txn);
}

static int target_state(struct volume *vol, const char *snap, bool *has,
                        bool *empty)
{
    struct sfs_store *st = volume_read_store(vol, CMD, "read");
    MDB_txn *txn;
    struct sfs_snap_rec s;
    int rc = sfs_txn_begin(st, NULL, false, &txn);
    if (!rc) {
        int f = sfs_snap_find(st, txn, snap, &s);
        *has = f == 0;
        int e = sfs_volume_is_empty(st, txn);
        *empty = e == 1;
        rc = f && f != -ENOENT ? f : e < 0 ? e : 0;
        mdb_txn_abort(txn);
    }
    sfs_close(st);
    return rc;
}

static int mirror_restore(int argc, char **argv)
{
    const char *pos[2], *to = NULL;
    int npos = 0;
    for (int i = 2; i < argc; i++) {
        const char *v;
        if ((v = next_opt(argc, argv, &i, "--to")))
            to = v;
        else if (argv[i][0] == '-' || npos == 2)
            die_usage(CMD, "usage: snapfs mirror restore DST SNAP --to VOL");
        else
            pos[npos++] = argv[i];
    }
    if (npos != 2 || !to)
        die_usage(CMD, "usage: snapfs mirror restore DST SNAP --to VOL");
    static struct volume target;
    volume_open(&target, CMD, to);
    bool has = false, empty = false;
    int rc = target_state(&target, pos[1], &has, &empty);
    if (rc)
        die(CMD, "%s: %s", to, strerror(-rc));
    char err[512];
    if (has) { /* the source still has it: roll its live tree back */
        char *args[] = { "snapshot", "restore", (char *)to, (char *)pos[1],
                         NULL };
        if (run_self(args, err, sizeof(err)))
            die(CMD, "%s: restoring %s: %s", to, pos[1], err);
        printf("snapfs mirror: %s: rolled back to its snapshot %s (the same "
               "as %s's)\n", to, pos[1], pos[0]);
        return 0;
    }
    if (!empty)
        die(CMD, "%s: has no snapshot %s and is not empty: restore into a "
            "new volume (snapfs mkfs; --to NEWVOL), and copy from it what "
            "you need", to, pos[1]);
    if (target.mounted)
        die(CMD, "%s: is mounted; unmount the new volume for the restore",
            to);
    struct mirror_rel from = { 0 };
    mirror_canonical_dst(pos[0], false, from.dst, sizeof(from.dst));
    rc = pipe_stream(&from, pos[1], target.store, err, sizeof(err));
    if (rc)
        die(CMD, "%s: restoring %s from %s: %s", to, pos[1], pos[0], err);
    rc = volume_offline(&target, CMD, offline_forget, NULL, true);
    if (rc)
        die(CMD, "%s: making it writable: %s", to, strerror(-rc));
    printf("snapfs mirror: %s: restored snapshot %s of %s; a writable "
           "volume\n", to, pos[1], pos[0]);
    return 0;
}

/* ---- test failover ---- */

static int failover_path(const char *id, char *out, size_t cap)
{
    char dir[PATH_MAX];
    int rc = mirror_dir(dir, sizeof(dir));
    if (rc)
        return rc;
    return (size_t)snprintf(out, cap, "%s/%s.failover", dir, id) >= cap
               ? -ENAMETOOLONG : 0;
}

static int mirror_test_failover(int argc, char **argv)
{
    const char *dst = NULL, *to = NULL;
    for (int i = 2; i < argc; i++) {
        const char *v;
        if ((v = next_opt(argc, argv, &i, "--to")))
            to = v;
        else if (argv[i][0] == '-' || dst)
            die_usage(CMD, "usage: snapfs mirror test-failover DST [--to "
                      "PATH]");
        else
            dst = argv[i];
    }
    if (!dst)
        die_usage(CMD, "usage: snapfs mirror test-failover DST [--to PATH]");
    static struct volume vol;
    volume_open(&vol, CMD, dst);
    struct sfs_store *st = volume_read_store(&vol, CMD, "read");
    MDB_txn *txn;
    struct destination_info d;
    int rc = sfs_txn_begin(st, NULL, false, &txn);
    if (!rc) {
        rc = destination_info_read(st, txn, 0, &d);
        mdb_txn_abort(txn);
    }
    sfs_close(st);
    if (rc)
        die(CMD, "%s: %s", dst, strerror(-rc));
    if (!d.newest_src_epoch)
        die(CMD, "%s: holds no mirrored snapshot", dst);
    char id[MIRROR_ID_LEN + 1], record[PATH_MAX], clone[PATH_MAX];
    mirror_id(vol.store, id);
    snprintf(clone, sizeof(clone), "%s", to ? to : vol.store);
    if (!to)
        strncat(clone, ".failover", sizeof(clone) - strlen(clone) - 1);
    rc = failover_path(id, record, sizeof(record));
    if (rc)
        die(CMD, "%s: the mirror registry: %s", dst, strerror(-rc));
    struct stat sb;
    if (!stat(record, &sb))
        die(CMD, "%s: a test failover exists already; snapfs mirror "
            "test-cleanup %s first", dst, dst);
    char err[512];
    char *args[] = { "clone", vol.store, d.newest, clone, NULL };
    if (run_self(args, err, sizeof(err)))
        die(CMD, "%s: %s", dst, err);
    static struct mirror_rel rel;
    if (!mirror_rel_load(id, &rel))
        activate_config(&rel, clone);
    else
        activate_carried(id, vol.store, clone);
    FILE *f = fopen(record, "we");
    if (!f || fprintf(f, "%s\n", clone) < 0 || fclose(f))
        die(CMD, "%s: recording the test failover: %s", dst, strerror(errno));
    printf("snapfs mirror: %s: %s is a writable clone of snapshot %s for "
           "testing (mount it); mirroring goes on; snapfs mirror "
           "test-cleanup %s discards it\n", dst, clone, d.newest, dst);
    free(vol.store);
    return 0;
}

static int mirror_test_cleanup(const char *dst)
{
    static struct volume vol;
    volume_open(&vol, CMD, dst);
    char id[MIRROR_ID_LEN + 1], record[PATH_MAX], clone[PATH_MAX] = "";
    mirror_id(vol.store, id);
    int rc = failover_path(id, record, sizeof(record));
    FILE *f = rc ? NULL : fopen(record, "re");
    if (!f)
        die(CMD, "%s: has no test failover", dst);
    if (!fgets(clone, sizeof(clone), f))
        clone[0] = 0;
    fclose(f);
    clone[strcspn(clone, "\n")] = 0;
    struct stat sb;
    char data[PATH_MAX + 16];
    snprintf(data, sizeof(data), "%s/data.mdb", clone);
    if (clone[0] && !stat(clone, &sb)) {
        if (stat(data, &sb))
            die(CMD, "%s: %s is not a volume any more; nothing was removed",
                dst, clone);
        int fd = control_connect(clone); /* a daemon serves it */
        if (fd >= 0) {
            close(fd);
            die(CMD, "%s: the test clone %s is mounted; unmount it first",
                dst, clone);
        }
        rc = remove_tree(clone);
        if (rc)
            die(CMD, "%s: removing %s: %s", dst, clone, strerror(-rc));
    }
    unlink(record);
    printf("snapfs mirror: %s: test failover %s discarded\n", dst, clone);
    free(vol.store);
    return 0;
}

/* ---- show ---- */

struct shown {
    const char *state;
    char reason[512];
    struct destination_info d;
    bool have_d;
};

static void ask_destination(const struct mirror_rel *m, struct shown *s)
{
    if (mirror_transferring(m->id)) {
        s->state = "transferring";
        return;
    }
    char line[2048];
    int rc = dst_hello(m, line, sizeof(line), s->reason, sizeof(s->reason));
    if (!rc && destination_info_parse(line, &s->d))
        rc = -EPROTO;
    if (rc) {
        s->state = "unknown";
        if (rc == -EPROTO)
            snprintf(s->reason, sizeof(s->reason), "the destination does not "
                     "speak the mirror protocol");
        return;
    }
    s->have_d = true;
    s->state = !strcmp(s->d.state, "broken") ? "broken-off"
               : !strcmp(s->d.state, "other") ? "invalid"
               : m->quiesced                  ? "quiesced"
               : !s->d.newest_src_epoch       ? "uninitialized"
                                              : "snapmirrored";
    if (!strcmp(s->d.state, "other"))
        snprintf(s->reason, sizeof(s->reason),
                 "the destination holds data of its own");
}

static void format_time(int64_t t, char *out, size_t cap)
{
    if (!t) {
        snprintf(out, cap, "-");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    strftime(out, cap, "%Y-%m-%d %H:%M:%S", localtime_r(&tt, &tm));
}

static const char *transport(const struct mirror_rel *m, char *buf,
                             size_t cap)
{
    char peer[PEER_NAME_MAX + 1], path[PATH_MAX];
    switch (mirror_dst_kind(m, peer, path)) {
    case DST_VIA:
        snprintf(buf, cap, "via %s", m->via);
        break;
    case DST_PEER:
        snprintf(buf, cap, "peer %s (TLS 1.3)", peer);
        break;
    default:
        snprintf(buf, cap, "local");
    }
    return buf;
}

static void show_text(const struct mirror_rel *m, const struct mirror_state *st,
                      const struct shown *s, int64_t now)
{
    char t1[64], t2[64], size[32], total[32], resent[32], tr[1100];
    format_time(st->newest_ctime, t1, sizeof(t1));
    format_time(st->last_end, t2, sizeof(t2));
    format_bytes(st->last_bytes, size, sizeof(size));
    format_bytes(st->total_bytes, total, sizeof(total));
    format_bytes(st->resent_bytes, resent, sizeof(resent));
    printf("Source:             %s\n", m->src);
    printf("Destination:        %s\n", m->dst);
    printf("Transport:          %s\n", transport(m, tr, sizeof(tr)));
    printf("Policy:             %s%s%s\n", m->policy, m->keep[0] ? ", keep " : "",
           m->keep);
    if (m->group[0])
        printf("Group:              %s\n", m->group);
    if (m->with_config)
        printf("Configuration:      carried with the data, applied when "
               "the destination is activated\n");
    printf("Schedule:           %s\n", m->schedule[0] ? m->schedule : "none");
    printf("State:              %s%s%s\n", s->state, s->reason[0] ? ": " : "",
           s->reason);
    printf("Newest snapshot:    %s (%s)\n",
           s->have_d ? s->d.newest : st->newest[0] ? st->newest : "-", t1);
    if (st->newest_ctime)
        printf("Lag:                %lld s\n",
               (long long)(now - st->newest_ctime));
    else
        printf("Lag:                -\n");
    printf("Last transfer:      %s in %.1f s, ended %s\n", size,
           st->last_seconds, t2);
    printf("Transferred:        %s in %llu transfers\n", total,
           (unsigned long long)st->transfers);
    printf("Resent:             %s\n", resent);
    if (s->have_d && strcmp(s->d.token, "-"))
        printf("Unfinished:         a cut transfer; the next update "
               "resumes it\n");
    if (st->to_publish)
        printf("Held back:          %s reached every member; the next "
               "update publishes it\n", st->newest);
    if (st->last_error[0])
        printf("Last error:         %s\n", st->last_error);
}

static void json_kv(const char *key, const char *val, bool comma)
{
    printf("\"%s\": ", key);
    print_json_string(val);
    if (comma)
        printf(", ");
}

static void show_json(const struct mirror_rel *m, const struct mirror_state *st,
                      const struct shown *s, int64_t now)
{
    char tr[1100];
    printf("{");
    json_kv("source", m->src, true);
    json_kv("destination", m->dst, true);
    json_kv("transport", transport(m, tr, sizeof(tr)), true);
    json_kv("policy", m->policy, true);
    json_kv("keep", m->keep, true);
    json_kv("schedule", m->schedule, true);
    json_kv("group", m->group, true);
    printf("\"with_config\": %s, ", m->with_config ? "true" : "false");
    json_kv("state", s->state, true);
    json_kv("reason", s->reason, true);
    json_kv("newest_snapshot",
            s->have_d ? s->d.newest : st->newest, true);
    printf("\"lag_seconds\": %lld, ", st->newest_ctime
           ? (long long)(now - st->newest_ctime) : -1LL);
    printf("\"last_transfer_bytes\": %llu, \"last_transfer_seconds\": %.3f, "
           "\"last_transfer_end\": %lld, \"bytes_transferred\": %llu, "
           "\"bytes_resent\": %llu, \"transfers\": %llu, ",
           (unsigned long long)st->last_bytes, st->last_seconds,
           (long long)st->last_end, (unsigned long long)st->total_bytes,
           (unsigned long long)st->resent_bytes,
           (unsigned long long)st->transfers);
    printf("\"unfinished\": %s, ",
           s->have_d && strcmp(s->d.token, "-") ? "true" : "false");
    json_kv("last_error", st->last_error, false);
    printf("}");
}

static int mirror_show(int argc, char **argv)
{
    bool json = false;
    const char *dst = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (argv[i][0] == '-' || dst)
            die_usage(CMD, "usage: snapfs mirror show [DST] [--json]");
        else
            dst = argv[i];
    }
    char **ids = NULL;
    size_t n = 0;
    static struct mirror_rel one;
    if (dst) {
        rel_get(dst, &one);
        ids = malloc(sizeof(*ids));
        if (!ids || !(ids[0] = strdup(one.id)))
            die(CMD, "out of memory");
        n = 1;
    } else {
        int rc = mirror_rel_ids(&ids, &n);
        if (rc)
            die(CMD, "reading the relationships: %s", strerror(-rc));
    }
    int64_t now = time(NULL);
    if (json)
        printf("[");
    for (size_t i = 0; i < n; i++) {
        static struct mirror_rel m;
        struct mirror_state st;
        struct shown s = { 0 };
        if (!mirror_rel_load(ids[i], &m)) {
            mirror_state_load(ids[i], &st);
            ask_destination(&m, &s);
            if (json) {
                printf("%s", i ? ", " : "");
                show_json(&m, &st, &s, now);
            } else {
                printf("%s", i ? "\n" : "");
                show_text(&m, &st, &s, now);
            }
        }
        free(ids[i]);
    }
    if (json)
        printf("]\n");
    else if (!n)
        printf("no mirror relationships\n");
    free(ids);
    return 0;
}

/* ---- delete ---- */

static int mirror_delete(const char *arg)
{
    static struct mirror_rel m, *v;
    rel_get(arg, &m);
    size_t n;
    v = rel_all(&m, &n);
    for (size_t i = 0; i < n; i++) {
        int lock = lock_or_die(&v[i]);
        mirror_release_source(&v[i]);
        int rc = mirror_rel_delete(v[i].id);
        if (rc)
            die(CMD, "%s: %s", v[i].dst, strerror(-rc));
        close(lock);
        printf("snapfs mirror: %s -> %s deleted; the destination keeps its "
               "snapshots (snapfs mirror break makes it writable)\n",
               v[i].src, v[i].dst);
    }
    free(v);
    return 0;
}

/* ---- dispatch ---- */

static void usage(void) __attribute__((noreturn));

static void usage(void)
{
    die_usage(CMD, "usage: snapfs mirror create|initialize|update|quiesce|"
              "resume|break|resync|reverse-resync|restore|show|delete|"
              "test-failover|test-cleanup ... (snapfs help)");
}

static const char *only_arg(int argc, char **argv)
{
    if (argc != 3 || argv[2][0] == '-')
        die_usage(CMD, "usage: snapfs mirror %s DST", argv[1]);
    return argv[2];
}

int cmd_mirror(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *sub = argv[1];
    if (!strcmp(sub, "create"))
        return mirror_create(argc, argv);
    if (!strcmp(sub, "initialize"))
        return mirror_run(only_arg(argc, argv), XFER_INIT, false);
    if (!strcmp(sub, "update") && argc == 3 && !strcmp(argv[2], "--due"))
        return mirror_update_due();
    if (!strcmp(sub, "update"))
        return mirror_run(only_arg(argc, argv), XFER_UPDATE, false);
    if (!strcmp(sub, "resync")) {
        bool yes = argc == 4 && !strcmp(argv[3], "--yes");
        if (argc != 3 + yes)
            die_usage(CMD, "usage: snapfs mirror resync DST [--yes]");
        return mirror_run(argv[2], XFER_RESYNC, yes);
    }
    if (!strcmp(sub, "quiesce") || !strcmp(sub, "resume"))
        return mirror_set_quiesced(only_arg(argc, argv),
                                   !strcmp(sub, "quiesce"));
    if (!strcmp(sub, "break"))
        return mirror_break(only_arg(argc, argv));
    if (!strcmp(sub, "reverse-resync"))
        return mirror_reverse(argc, argv);
    if (!strcmp(sub, "restore"))
        return mirror_restore(argc, argv);
    if (!strcmp(sub, "show"))
        return mirror_show(argc, argv);
    if (!strcmp(sub, "delete"))
        return mirror_delete(only_arg(argc, argv));
    if (!strcmp(sub, "test-failover"))
        return mirror_test_failover(argc, argv);
    if (!strcmp(sub, "test-cleanup"))
        return mirror_test_cleanup(only_arg(argc, argv));
    usage();
}
