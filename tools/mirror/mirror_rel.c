/*
 * mirror_rel.c - the checks of a new relationship's arguments, shared by
 * `mirror create` and group creation (mirror_group.c): the source is a
 * volume, the destination a volume that is not the source, or a peer that
 * grants this host receive into it (asked with a handshake, so that a
 * missing grant is named before anything is recorded), and no
 * relationship to the destination exists yet.  A refusal is one message
 * and exit 1 (die); nothing is recorded before every check passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "mirror.h"

#define CMD "mirror"

/* A local volume's store directory, or ARG as it is. */
void mirror_canonical_dst(const char *arg, bool via, char *out, size_t cap)
{
    struct stat sb;
    if (!via && !stat(arg, &sb)) {
        bool mounted;
        char *store = resolve_volume(arg, &mounted);
        snprintf(out, cap, "%s", store ? store : arg);
        free(store);
        return;
    }
    snprintf(out, cap, "%s", arg);
}

/* A destination on peer PEER: the peer must know this host and grant it
 * receive into the volume; ask it (a handshake of `receive`), or die
 * naming the grant it needs. */
static void check_peer_grant(const struct mirror_rel *m, const char *arg,
                             const char *peer)
{
    struct peer_record r;
    if (peer_record_load(peer, &r))
        die(CMD, "%s: no peer named '%s' (snapfs peer create %s "
            "HOST:PORT)", arg, peer, peer);
    OPENSSL_cleanse(&r, sizeof(r));
    char line[2048], err[1200];
    int rc = dst_hello(m, line, sizeof(line), err, sizeof(err));
    if (rc == -EPERM) /* the refusal names the grant */
        die(CMD, "%s: %s; nothing was recorded", arg, err);
    if (rc)
        die(CMD, "%s: %s; nothing was recorded (the relationship needs a "
            "receive grant for this host on %s)", arg, err, peer);
}

void mirror_check_destination(struct mirror_rel *m, const char *arg)
{
    if (m->via[0]) {
        snprintf(m->dst, sizeof(m->dst), "%s", arg);
        return;
    }
    mirror_canonical_dst(arg, false, m->dst, sizeof(m->dst));
    char peer[PEER_NAME_MAX + 1], path[PATH_MAX];
    if (mirror_dst_kind(m, peer, path) == DST_PEER) {
        check_peer_grant(m, arg, peer);
        return;
    }
    struct volume v;
    volume_open(&v, CMD, arg);
    free(v.store);
    free(v.mountpoint);
    if (!strcmp(m->dst, m->src))
        die(CMD, "%s: the destination is the source", arg);
}

void mirror_rel_check(struct mirror_rel *m, const char *src, const char *dst)
{
    struct volume v;
    volume_open(&v, CMD, src);
    snprintf(m->src, sizeof(m->src), "%s", v.store);
    free(v.store);
    free(v.mountpoint);
    mirror_check_destination(m, dst);
    mirror_id(m->dst, m->id);
    struct mirror_rel old;
    if (!mirror_rel_load(m->id, &old))
        die(CMD, "%s: a relationship to this destination exists already "
            "(from %s)", dst, old.src);
}

