/*
 * config_host.c - this host's records in the configuration document:
 * mirror relationships (and so their groups), the peers it connects to,
 * the peers that may connect to it, vault stores, vault policies and
 * vault relationships, NDMP users.  Read from their registries (the
 * engines' own functions), written as JSON, read back with every member
 * checked, and compared with this host to give the steps that make it
 * match, each done here by the engine's own function.
 *
 * Guarantees:
 *   - without secrets the document names things only: a peer's address,
 *     a store's target, endpoint, region and profile name, a user's name;
 *     keys, passphrases and passwords are only in the sealed "secrets"
 *     (config_secret.c), matched to their items by name;
 *   - a plan creates what is missing, changes what differs and lists what
 *     is so; what cannot be done is refused with why (a relationship
 *     naming a volume that is not here, a peer or user whose secret the
 *     file lacks, a store whose target differs), so that the caller
 *     applies nothing; nothing is ever deleted;
 *   - every check that can fail is made while planning, so that applying
 *     meets only the failures of the writes themselves.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config/config.h"
#include "kvfile.h"
#include "vault/crypto.h"

#define HOST "host"

const char *const cfg_host_keys[] = { "mirrors", "peers", "peer_clients",
                                      "peer_grants", "vault", "ndmp_users",
                                      NULL };

static void fingerprint(const uint8_t key[PEER_KEY_LEN],
                        char out[CFG_FINGERPRINT_LEN + 1])
{
    uint8_t md[VC_ID];
    char hex[VC_HEX];
    vc_sha256(key, PEER_KEY_LEN, md);
    vc_hex(md, sizeof(md), hex);
    memcpy(out, hex, CFG_FINGERPRINT_LEN);
    out[CFG_FINGERPRINT_LEN] = 0;
}

void cfg_host_free(struct cfg_host *h)
{
    if (h->peers)
        vc_wipe(h->peers, h->npeers * sizeof(*h->peers));
    if (h->clients)
        vc_wipe(h->clients, h->nclients * sizeof(*h->clients));
    if (h->vstores)
        vc_wipe(h->vstores, h->nvstores * sizeof(*h->vstores));
    if (h->nusers)
        vc_wipe(h->nusers, h->nnusers * sizeof(*h->nusers));
    free(h->mirrors);
    free(h->peers);
    free(h->clients);
    free(h->grants);
    free(h->vstores);
    free(h->vpolicies);
    free(h->vrels);
    free(h->nusers);
    memset(h, 0, sizeof(*h));
}

/* ---- reading this host ---- */

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The mirror registry exists (looking must not make it). */
static bool mirror_registry(void)
{
    char dir[PATH_MAX];
    struct stat sb;
    return !mirror_dir_name(dir, sizeof(dir)) && !stat(dir, &sb);
}

static int read_mirrors(struct cfg_host *h)
{
    if (!mirror_registry())
        return 0; /* no registry: no relationships */
    char **ids;
    size_t n;
    int rc = mirror_rel_ids(&ids, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        struct mirror_rel m;
        rc = mirror_rel_load(ids[i], &m);
        if (!rc)
            rc = array_append(&h->mirrors, &h->nmirrors, &h->capmirrors, &m,
                              sizeof(m));
    }
    if (!rc)
        free_names(ids, n);
    return rc;
}

static int read_peers(struct cfg_host *h, bool secrets)
{
    char **names;
    size_t n;
    int rc = peer_record_names(&names, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        struct peer_record r;
        struct cfg_peer p = { 0 };
        rc = peer_record_load(names[i], &r);
        if (rc)
            break;
        snprintf(p.name, sizeof(p.name), "%s", r.name);
        snprintf(p.address, sizeof(p.address), "%s", r.address);
        p.legacy = r.legacy;
        fingerprint(r.key, p.fingerprint);
        p.has_key = secrets;
        if (secrets)
            memcpy(p.key, r.key, sizeof(p.key));
        vc_wipe(&r, sizeof(r));
        rc = array_append(&h->peers, &h->npeers, &h->cappeers, &p, sizeof(p));
        vc_wipe(&p, sizeof(p));
    }
    if (!rc)
        free_names(names, n);
    return rc;
}

static int read_clients(struct cfg_host *h, bool secrets)
{
    char **names;
    size_t n;
    int rc = peer_inbound_names(&names, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        struct cfg_client c = { 0 };
        if (!strcmp(names[i], PEER_LEGACY_NAME))
            continue; /* the one host key of earlier versions: not made anew */
        snprintf(c.name, sizeof(c.name), "%s", names[i]);
        rc = peer_inbound_load(names[i], c.key);
        if (!rc)
            fingerprint(c.key, c.fingerprint);
        if (!secrets)
            vc_wipe(c.key, sizeof(c.key));
        c.has_key = secrets;
        if (!rc)
            rc = array_append(&h->clients, &h->nclients, &h->capclients, &c,
                              sizeof(c));
        vc_wipe(&c, sizeof(c));
    }
    if (!rc)
        free_names(names, n);
    return rc;
}

static int read_grants(struct cfg_host *h)
{
    struct peer_grants t = { 0 };
    int rc = peer_grants_load(&t);
    for (size_t i = 0; !rc && i < t.n; i++) {
        struct cfg_grant g = { .op = t.g[i].op };
        snprintf(g.peer, sizeof(g.peer), "%s", t.g[i].peer);
        snprintf(g.volume, sizeof(g.volume), "%s", t.g[i].path);
        rc = array_append(&h->grants, &h->ngrants, &h->capgrants, &g,
                          sizeof(g));
    }
    peer_grants_free(&t);
    return rc;
}

/* The first line of store NAME's passphrase file into S. */
static int read_store_pass(const char *name, struct cfg_vstore *s)
{
    char path[PATH_MAX];
    int rc = vault_store_pass_path(name, path, sizeof(path));
    int fd = rc ? -1 : open(path, O_RDONLY | O_CLOEXEC);
    if (!rc && fd < 0)
        rc = -errno;
    if (rc)
        return rc;
    ssize_t got = read(fd, s->pass, sizeof(s->pass) - 1);
    close(fd);
    if (got < 0)
        return -errno;
    s->pass[got] = 0;
    s->plen = strcspn(s->pass, "\n");
    s->pass[s->plen] = 0;
    s->has_pass = true;
    return 0;
}

static int read_vault(struct cfg_host *h, bool secrets)
{
    char **names;
    size_t n;
    int rc = vault_store_names(&names, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        struct cfg_vstore s = { 0 };
        rc = vault_store_load(names[i], &s.conf);
        if (!rc && secrets)
            rc = read_store_pass(names[i], &s);
        if (!rc)
            rc = array_append(&h->vstores, &h->nvstores, &h->capvstores, &s,
                              sizeof(s));
        vc_wipe(&s, sizeof(s));
    }
    if (!rc) {
        vault_conf_names_free(names, n);
        rc = vault_rel_policy_names(&names, &n);
    }
    for (size_t i = 0; !rc && i < n; i++) {
        struct vault_rel_policy p;
        rc = vault_rel_policy_load(names[i], &p);
        if (!rc)
            rc = array_append(&h->vpolicies, &h->nvpolicies, &h->capvpolicies,
                              &p, sizeof(p));
    }
    if (!rc)
        vault_conf_names_free(names, n);
    struct vault_relationship *r = NULL;
    size_t nr = 0;
    if (!rc)
        rc = vault_rel_all(&r, &nr);
    for (size_t i = 0; !rc && i < nr; i++) {
        struct cfg_vrel v = { 0 };
        snprintf(v.path, sizeof(v.path), "%s", r[i].path);
        snprintf(v.store, sizeof(v.store), "%s", r[i].store);
        snprintf(v.policy, sizeof(v.policy), "%s", r[i].policy);
        rc = array_append(&h->vrels, &h->nvrels, &h->capvrels, &v, sizeof(v));
    }
    free(r);
    return rc;
}

static int read_nusers(struct cfg_host *h, bool secrets)
{
    char **names;
    size_t n;
    int rc = ndmp_user_names(&names, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        struct cfg_nuser u = { 0 };
        snprintf(u.name, sizeof(u.name), "%s", names[i]);
        if (secrets)
            rc = ndmp_password_get(names[i], u.password, sizeof(u.password));
        u.has_password = secrets;
        if (!rc)
            rc = array_append(&h->nusers, &h->nnusers, &h->capnusers, &u,
                              sizeof(u));
        vc_wipe(&u, sizeof(u));
    }
    if (!rc)
        free_names(names, n);
    return rc;
}

int cfg_host_read(struct cfg_host *h, bool secrets, char *err, size_t cap)
{
    memset(h, 0, sizeof(*h));
    const char *what = "the mirror relationships";
    int rc = read_mirrors(h);
    if (!rc && (what = "the peers", 1))
        rc = read_peers(h, secrets);
    if (!rc && (what = "the peers that connect here", 1))
        rc = read_clients(h, secrets);
    if (!rc && (what = "the peers' grants", 1))
        rc = read_grants(h);
    if (!rc && (what = "the vault's stores, policies and relationships", 1))
        rc = read_vault(h, secrets);
    if (!rc && (what = "the NDMP users", 1))
        rc = read_nusers(h, secrets);
    if (rc) {
        snprintf(err, cap, "reading %s: %s", what, strerror(-rc));
        cfg_host_free(h);
    }
    return rc;
}

/* ---- writing ---- */

static json_t *mirror_json(const struct mirror_rel *m)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "source",
                     m->src, "destination", m->dst, "via", m->via, "policy",
                     m->policy, "keep", m->keep, "schedule", m->schedule,
                     "group", m->group, "with_config", m->with_config);
}

static json_t *vault_json(const struct cfg_host *h)
{
    json_t *stores = json_array(), *policies = json_array(),
           *rels = json_array();
    for (size_t i = 0; i < h->nvstores; i++) {
        const struct vault_store_conf *s = &h->vstores[i].conf;
        json_array_append_new(
            stores, json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", s->name,
                              "target", s->target, "endpoint", s->endpoint,
                              "region", s->region, "profile", s->profile));
    }
    for (size_t i = 0; i < h->nvpolicies; i++) {
        const struct vault_rel_policy *p = &h->vpolicies[i];
        json_t *keep = json_object();
        for (uint32_t k = 0; k < p->keep.nlabels; k++)
            json_object_set_new(keep, p->keep.labels[k].label,
                                json_integer(p->keep.labels[k].keep));
        json_array_append_new(policies, json_pack("{s:s, s:o}", "name",
                                                  p->name, "keep", keep));
    }
    for (size_t i = 0; i < h->nvrels; i++)
        json_array_append_new(
            rels, json_pack("{s:s, s:s, s:s}", "volume", h->vrels[i].path,
                            "store", h->vrels[i].store, "policy",
                            h->vrels[i].policy));
    return json_pack("{s:o, s:o, s:o}", "stores", stores, "policies",
                     policies, "relationships", rels);
}

json_t *cfg_host_json(const struct cfg_host *h)
{
    json_t *mirrors = json_array(), *peers = json_array(),
           *clients = json_array(), *grants = json_array(),
           *users = json_array();
    for (size_t i = 0; i < h->nmirrors; i++)
        json_array_append_new(mirrors, mirror_json(&h->mirrors[i]));
    for (size_t i = 0; i < h->npeers; i++) {
        json_t *p = json_pack("{s:s, s:s, s:s}", "name", h->peers[i].name,
                              "address", h->peers[i].address, "fingerprint",
                              h->peers[i].fingerprint);
        if (h->peers[i].legacy)
            json_object_set_new(p, "legacy", json_true());
        json_array_append_new(peers, p);
    }
    for (size_t i = 0; i < h->nclients; i++)
        json_array_append_new(clients,
                              json_pack("{s:s, s:s}", "name",
                                        h->clients[i].name, "fingerprint",
                                        h->clients[i].fingerprint));
    for (size_t i = 0; i < h->ngrants; i++)
        json_array_append_new(grants,
                              json_pack("{s:s, s:s, s:s}", "peer",
                                        h->grants[i].peer, "op",
                                        peer_op_name(h->grants[i].op),
                                        "volume", h->grants[i].volume));
    for (size_t i = 0; i < h->nnusers; i++)
        json_array_append_new(users,
                              json_pack("{s:s}", "name", h->nusers[i].name));
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "mirrors", mirrors,
                     "peers", peers, "peer_clients", clients, "peer_grants",
                     grants, "vault", vault_json(h), "ndmp_users", users);
}

static void set_hex(json_t *o, const char *name, const uint8_t key[PEER_KEY_LEN])
{
    char hex[2 * PEER_KEY_LEN + 1];
    vc_hex(key, PEER_KEY_LEN, hex);
    json_object_set_new(o, name, json_string(hex));
    vc_wipe(hex, sizeof(hex));
}

json_t *cfg_host_secrets_json(const struct cfg_host *h)
{
    json_t *peers = json_object(), *clients = json_object(),
           *stores = json_object(), *users = json_object();
    for (size_t i = 0; i < h->npeers; i++)
        if (h->peers[i].has_key)
            set_hex(peers, h->peers[i].name, h->peers[i].key);
    for (size_t i = 0; i < h->nclients; i++)
        if (h->clients[i].has_key)
            set_hex(clients, h->clients[i].name, h->clients[i].key);
    for (size_t i = 0; i < h->nvstores; i++)
        if (h->vstores[i].has_pass)
            json_object_set_new(stores, h->vstores[i].conf.name,
                                json_stringn(h->vstores[i].pass,
                                             h->vstores[i].plen));
    for (size_t i = 0; i < h->nnusers; i++)
        if (h->nusers[i].has_password)
            json_object_set_new(users, h->nusers[i].name,
                                json_string(h->nusers[i].password));
    return json_pack("{s:o, s:o, s:o, s:o}", "peers", peers, "peer_clients",
                     clients, "vault_stores", stores, "ndmp_users", users);
}

/* ---- reading a document ---- */

static int mirror_fn(struct cfg_ctx *c, const char *w, const json_t *j,
                     void *arg)
{
    static const char *const keys[] = { "source", "destination", "via",
                                        "policy", "keep", "schedule",
                                        "group", "with_config", NULL };
    struct cfg_host *h = arg;
    struct mirror_rel m = { 0 };
    int rc = cfg_only_keys(c, w, j, keys);
    if (!rc)
        rc = cfg_get_string(c, w, j, "source", m.src, sizeof(m.src), true);
    if (!rc)
        rc = cfg_get_string(c, w, j, "destination", m.dst, sizeof(m.dst),
                            true);
    if (!rc)
        rc = cfg_get_string(c, w, j, "via", m.via, sizeof(m.via), false);
    if (!rc)
        rc = cfg_get_string(c, w, j, "policy", m.policy, sizeof(m.policy),
                            true);
    if (!rc)
        rc = cfg_get_string(c, w, j, "keep", m.keep, sizeof(m.keep), false);
    if (!rc)
        rc = cfg_get_string(c, w, j, "schedule", m.schedule,
                            sizeof(m.schedule), false);
    if (!rc)
        rc = cfg_get_string(c, w, j, "group", m.group, sizeof(m.group), false);
    if (!rc)
        rc = cfg_get_bool(c, w, j, "with_config", &m.with_config);
    if (rc)
        return rc;
    struct sfs_retention ret;
    struct sfs_schedule s;
    char why[256];
    if (!mirror_policy_kind(m.policy))
        return cfg_bad(c, w, "policy must be mirror, vault or mirror-vault");
    if (mirror_parse_keep(m.keep, &ret, why, sizeof(why)))
        return cfg_bad(c, w, "keep is not LABEL=N,...");
    if (m.schedule[0] && sfs_schedule_parse(m.schedule, &s))
        return cfg_bad(c, w, "not a schedule");
    if (!m.src[0] || !m.dst[0])
        return cfg_bad(c, w, "source and destination may not be empty");
    mirror_id(m.dst, m.id);
    return array_append(&h->mirrors, &h->nmirrors, &h->capmirrors, &m,
                        sizeof(m));
}

/* The optional member "fingerprint" of J: 16 lower-case hex digits. */
static int get_fingerprint(struct cfg_ctx *c, const char *w, const json_t *j,
                           char out[CFG_FINGERPRINT_LEN + 1])
{
    int rc = cfg_get_string(c, w, j, "fingerprint", out,
                            CFG_FINGERPRINT_LEN + 1, false);
    if (!rc && *out && (strlen(out) != CFG_FINGERPRINT_LEN ||
                        strspn(out, "0123456789abcdef") != CFG_FINGERPRINT_LEN))
        return cfg_bad(c, w, "fingerprint: 16 hex digits expected");
    return rc;
}

static int peer_fn(struct cfg_ctx *c, const char *w, const json_t *j,
                   void *arg)
{
    static const char *const keys[] = { "name", "address", "fingerprint",
                                        "legacy", NULL };
    struct cfg_host *h = arg;
    struct cfg_peer p = { 0 };
    char host[PEER_ADDRESS_MAX], port[16];
    int rc = cfg_only_keys(c, w, j, keys);
    if (!rc)
        rc = cfg_get_string(c, w, j, "name", p.name, sizeof(p.name), true);
    if (!rc)
        rc = cfg_get_string(c, w, j, "address", p.address, sizeof(p.address),
                            true);
    if (!rc)
        rc = get_fingerprint(c, w, j, p.fingerprint);
    if (!rc)
        rc = cfg_get_bool(c, w, j, "legacy", &p.legacy);
    if (rc)
        return rc;
    if (!peer_name_valid(p.name))
        return cfg_bad(c, w, "not a peer name");
    if (peer_address_split(p.address, host, sizeof(host), port, sizeof(port)))
        return cfg_bad(c, w, "not HOST[:PORT]");
    return array_append(&h->peers, &h->npeers, &h->cappeers, &p, sizeof(p));
}

static int client_fn(struct cfg_ctx *c, const char *w, const json_t *j,
                     void *arg)
{
    static const char *const keys[] = { "name", "fingerprint", NULL };
    struct cfg_host *h = arg;
    struct cfg_client p = { 0 };
    int rc = cfg_only_keys(c, w, j, keys);
    if (!rc)
        rc = cfg_get_string(c, w, j, "name", p.name, sizeof(p.name), true);
    if (!rc)
        rc = get_fingerprint(c, w, j, p.fingerprint);
    if (rc)
        return rc;
    if (!peer_name_valid(p.name) || !strcmp(p.name, PEER_LEGACY_NAME))
        return cfg_bad(c, w, "not a peer name");
    return array_append(&h->clients, &h->nclients, &h->capclients, &p,
                        sizeof(p));
}

static int grant_fn(struct cfg_ctx *c, const char *w, const json_t *j,
                    void *arg)
{
    static const char *const keys[] = { "peer", "op", "volume", NULL };
    struct cfg_host *h = arg;
    struct cfg_grant g = { 0 };
    char op[16];
    int rc = cfg_only_keys(c, w, j, keys);
    if (!rc)
        rc = cfg_get_string(c, w, j, "peer", g.peer, sizeof(g.peer), true);
    if (!rc)
        rc = cfg_get_string(c, w, j, "op", op, sizeof(op), true);
    if (!rc)
        rc = cfg_get_string(c, w, j, "volume", g.volume, sizeof(g.volume),
                            true);
    if (rc)
        return rc;
    if (!peer_name_valid(g.peer))
        return cfg_bad(c, w, "not a peer name");
    if (peer_op_parse(op, &g.op))
        return cfg_bad(c, w, "op must be send or receive");
    return array_append(&h->grants, &h->ngrants, &h->capgrants, &g,
                        sizeof(g));
}

static int vstore_fn(struct cfg_ctx *c, const char *w, const json_t *j,
                     void *arg)
{
    static const char *const keys[] = { "name", "target", "endpoint",
                                        "region", "profile", NULL };
    struct cfg_host *h = arg;
    struct cfg_vstore s = { 0 };
    struct vault_store_conf *v = &s.conf;
    int rc = cfg_only_keys(c, w, j, keys);
    if (!rc)
        rc = cfg_get_string(c, w, j, "name", v->name, sizeof(v->name), true);
    if (!rc)
        rc = cfg_get_string(c, w, j, "target", v->target, sizeof(v->target),
                            true);
    if (!rc)
        rc = cfg_get_string(c, w, j, "endpoint", v->endpoint,
                            sizeof(v->endpoint), false);
    if (!rc)
        rc = cfg_get_string(c, w, j, "region", v->region, sizeof(v->region),
                            false);
    if (!rc)
        rc = cfg_get_string(c, w, j, "profile", v->profile,
                            sizeof(v->profile), false);
    if (rc)
        return rc;
    if (!vault_conf_name_valid(v->name))
        return cfg_bad(c, w, "not a store name");
    if (!strstr(v->target, "://"))
        return cfg_bad(c, w, "target is not s3://BUCKET[/PREFIX] or "
                             "file:///PATH");
    return array_append(&h->vstores, &h->nvstores, &h->capvstores, &s,
                        sizeof(s));
}

static int vpolicy_keep(struct cfg_ctx *c, const char *w, const json_t *keep,
                        struct vault_rel_policy *p)
{
    char where[600];
    snprintf(where, sizeof(where), "%s.keep", w);
    if (!json_is_object(keep) || !json_object_size(keep))
        return cfg_bad(c, where, "an object of LABEL: KEEP expected");
    const char *label;
    json_t *v;
    json_object_foreach((json_t *)keep, label, v) {
        uint64_t n;
        if (p->keep.nlabels == VAULT_KEEP_LABELS)
            return cfg_bad(c, where, "too many labels");
        if (!*label || strlen(label) > SFS_NAME_MAX || strpbrk(label, "=,"))
            return cfg_bad(c, where, "not a label");
        if (cfg_get_uint(c, where, keep, label, UINT32_MAX, &n) || !n)
            return cfg_bad(c, where, "a keep of 1 or more expected");
        uint32_t i = p->keep.nlabels++;
        snprintf(p->keep.labels[i].label, sizeof(p->keep.labels[i].label),
                 "%s", label);
        p->keep.labels[i].keep = (uint32_t)n;
    }
    return 0;
}

static int vpolicy_fn(struct cfg_ctx *c, const char *w, const json_t *j,
                      void *arg)
{
    static const char *const keys[] = { "name", "keep", NULL };
    struct cfg_host *h = arg;
    struct vault_rel_policy p = { 0 };
    int rc = cfg_only_keys(c, w, j, keys);
    if (!rc)
        rc = cfg_get_string(c, w, j, "name", p.name, sizeof(p.name), true);
    if (!rc)
        rc = vpolicy_keep(c, w, json_object_get(j, "keep"), &p);
    if (rc)
        return rc;
    if (!vault_conf_name_valid(p.name) || !strcmp(p.name, VAULT_DAILY_BACKUP))
        return cfg_bad(c, w, "not a policy name (DailyBackup is built in)");
    return array_append(&h->vpolicies, &h->nvpolicies, &h->capvpolicies, &p,
                        sizeof(p));
}

static int vrel_fn(struct cfg_ctx *c, const char *w, const json_t *j,
                   void *arg)
{
    static const char *const keys[] = { "volume", "store", "policy", NULL };
    struct cfg_host *h = arg;
    struct cfg_vrel r = { 0 };
    int rc = cfg_only_keys(c, w, j, keys);
    if (!rc)
        rc = cfg_get_string(c, w, j, "volume", r.path, sizeof(r.path), true);
    if (!rc)
        rc = cfg_get_string(c, w, j, "store", r.store, sizeof(r.store), true);
    if (!rc)
        rc = cfg_get_string(c, w, j, "policy", r.policy, sizeof(r.policy),
                            true);
    if (rc)
        return rc;
    if (!vault_conf_name_valid(r.store) || !vault_conf_name_valid(r.policy))
        return cfg_bad(c, w, "not a store or policy name");
    return array_append(&h->vrels, &h->nvrels, &h->capvrels, &r, sizeof(r));
}

static int nuser_fn(struct cfg_ctx *c, const char *w, const json_t *j,
                    void *arg)
{
    static const char *const keys[] = { "name", NULL };
    struct cfg_host *h = arg;
    struct cfg_nuser u = { 0 };
    int rc = cfg_only_keys(c, w, j, keys);
    if (!rc)
        rc = cfg_get_string(c, w, j, "name", u.name, sizeof(u.name), true);
    if (rc)
        return rc;
    if (!ndmp_user_valid(u.name))
        return cfg_bad(c, w, "not an NDMP user name");
    return array_append(&h->nusers, &h->nnusers, &h->capnusers, &u,
                        sizeof(u));
}

int cfg_host_parse(struct cfg_ctx *c, const json_t *doc, struct cfg_host *h)
{
    static const char *const vkeys[] = { "stores", "policies",
                                         "relationships", NULL };
    const json_t *vault = json_object_get(doc, "vault");
    int rc = cfg_each(c, "the file", doc, "mirrors", mirror_fn, h);
    if (!rc)
        rc = cfg_each(c, "the file", doc, "peers", peer_fn, h);
    if (!rc)
        rc = cfg_each(c, "the file", doc, "peer_clients", client_fn, h);
    if (!rc)
        rc = cfg_each(c, "the file", doc, "peer_grants", grant_fn, h);
    if (!rc && vault)
        rc = cfg_only_keys(c, "vault", vault, vkeys);
    if (!rc && vault)
        rc = cfg_each(c, "vault", vault, "stores", vstore_fn, h);
    if (!rc && vault)
        rc = cfg_each(c, "vault", vault, "policies", vpolicy_fn, h);
    if (!rc && vault)
        rc = cfg_each(c, "vault", vault, "relationships", vrel_fn, h);
    if (!rc)
        rc = cfg_each(c, "the file", doc, "ndmp_users", nuser_fn, h);
    return rc;
}

/* ---- the sealed secrets back onto their items ---- */

/* Each member of the object KEY of J: its name and string value to FN. */
static int each_secret(struct cfg_ctx *c, const json_t *j, const char *key,
                       int (*fn)(struct cfg_ctx *, const char *, const char *,
                                 size_t, struct cfg_host *),
                       struct cfg_host *h)
{
    const json_t *o = json_object_get(j, key);
    char where[128];
    snprintf(where, sizeof(where), "secrets.%s", key);
    if (!o)
        return 0;
    if (!json_is_object(o))
        return cfg_bad(c, where, "an object expected");
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)o, name, v) {
        if (!json_is_string(v))
            return cfg_bad(c, where, "a string expected");
        int rc = fn(c, name, json_string_value(v), json_string_length(v), h);
        if (rc)
            return rc;
    }
    return 0;
}

static int unknown_secret(struct cfg_ctx *c, const char *kind,
                          const char *name)
{
    char what[300];
    snprintf(what, sizeof(what), "a secret of %.64s '%.100s', which the file "
             "does not list", kind, name);
    return cfg_bad(c, "secrets", what);
}

/* KEY is the one FP (if given) names. */
static int key_matches(struct cfg_ctx *c, const char *kind, const char *name,
                       const uint8_t key[PEER_KEY_LEN], const char *fp)
{
    char mine[CFG_FINGERPRINT_LEN + 1], what[300];
    fingerprint(key, mine);
    if (!*fp || !strcmp(fp, mine))
        return 0;
    snprintf(what, sizeof(what), "the key of %s %.100s is not the one its "
             "fingerprint names", kind, name);
    return cfg_bad(c, "secrets", what);
}

static int peer_secret(struct cfg_ctx *c, const char *name, const char *v,
                       size_t len, struct cfg_host *h)
{
    for (size_t i = 0; i < h->npeers; i++)
        if (!strcmp(h->peers[i].name, name)) {
            if (len != 2 * PEER_KEY_LEN ||
                vc_unhex(v, h->peers[i].key, PEER_KEY_LEN))
                return cfg_bad(c, "secrets.peers", "a key is 64 hex digits");
            h->peers[i].has_key = true;
            return key_matches(c, "peer", name, h->peers[i].key,
                               h->peers[i].fingerprint);
        }
    return unknown_secret(c, "peer", name);
}

static int client_secret(struct cfg_ctx *c, const char *name, const char *v,
                         size_t len, struct cfg_host *h)
{
    for (size_t i = 0; i < h->nclients; i++)
        if (!strcmp(h->clients[i].name, name)) {
            if (len != 2 * PEER_KEY_LEN ||
                vc_unhex(v, h->clients[i].key, PEER_KEY_LEN))
                return cfg_bad(c, "secrets.peer_clients",
                               "a key is 64 hex digits");
            h->clients[i].has_key = true;
            return key_matches(c, "peer client", name, h->clients[i].key,
                               h->clients[i].fingerprint);
        }
    return unknown_secret(c, "peer client", name);
}

static int store_secret(struct cfg_ctx *c, const char *name, const char *v,
                        size_t len, struct cfg_host *h)
{
    for (size_t i = 0; i < h->nvstores; i++)
        if (!strcmp(h->vstores[i].conf.name, name)) {
            if (!len || len >= CONFIG_PASS_MAX || memchr(v, '\n', len))
                return cfg_bad(c, "secrets.vault_stores",
                               "not a passphrase");
            memcpy(h->vstores[i].pass, v, len + 1);
            h->vstores[i].plen = len;
            h->vstores[i].has_pass = true;
            return 0;
        }
    return unknown_secret(c, "vault store", name);
}

static int user_secret(struct cfg_ctx *c, const char *name, const char *v,
                       size_t len, struct cfg_host *h)
{
    for (size_t i = 0; i < h->nnusers; i++)
        if (!strcmp(h->nusers[i].name, name)) {
            if (!len || len > NDMP_USER_MAX || strpbrk(v, " \n\r"))
                return cfg_bad(c, "secrets.ndmp_users", "not a password");
            memcpy(h->nusers[i].password, v, len + 1);
            h->nusers[i].has_password = true;
            return 0;
        }
    return unknown_secret(c, "NDMP user", name);
}

int cfg_host_secrets_parse(struct cfg_ctx *c, const json_t *j,
                           struct cfg_host *h)
{
    static const char *const keys[] = { "peers", "peer_clients",
                                        "vault_stores", "ndmp_users", NULL };
    int rc = cfg_only_keys(c, "secrets", j, keys);
    if (!rc)
        rc = each_secret(c, j, "peers", peer_secret, h);
    if (!rc)
        rc = each_secret(c, j, "peer_clients", client_secret, h);
    if (!rc)
        rc = each_secret(c, j, "vault_stores", store_secret, h);
    if (!rc)
        rc = each_secret(c, j, "ndmp_users", user_secret, h);
    return rc;
}

/* ---- planning and applying ---- */

static struct cfg_step *host_step(struct cfg_plan *p, int kind,
                                  const char *what, const void *item,
                                  size_t size, cfg_apply_fn apply)
{
    struct cfg_step *s = cfg_step_add(p, kind, HOST, what);
    if (s && item && kind != CFG_SAME && kind != CFG_REFUSE) {
        s->apply = apply;
        if (cfg_step_item(s, item, size))
            s->kind = CFG_REFUSE, snprintf(s->why, sizeof(s->why),
                                           "out of memory");
    }
    return s;
}

static void refuse(struct cfg_plan *p, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(struct cfg_plan *p, const char *what, const char *fmt, ...)
{
    struct cfg_step *s = cfg_step_add(p, CFG_REFUSE, HOST, what);
    if (!s)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
}

static int say(int rc, char *err, size_t cap, const char *what)
{
    if (rc)
        snprintf(err, cap, "%s: %s", what, strerror(-rc));
    return rc;
}

/* Without the key in the file (*HAS_KEY false), this host's key NOW is
 * not the one the file's fingerprint FP names: refused, true. */
static bool other_key(struct cfg_plan *pl, const char *what,
                      const uint8_t now[PEER_KEY_LEN], const bool *has_key,
                      const char *fp)
{
    char here[CFG_FINGERPRINT_LEN + 1];
    fingerprint(now, here);
    if (*has_key || !*fp || !strcmp(here, fp))
        return false;
    refuse(pl, what, "this host holds another key for it (fingerprint %s, "
           "the file's %s); export with --with-secrets to replace it", here,
           fp);
    return true;
}

static int apply_peer(const struct cfg_step *s, char *err, size_t cap)
{
    const struct cfg_peer *p = s->item;
    struct peer_record r = { 0 };
    snprintf(r.name, sizeof(r.name), "%s", p->name);
    snprintf(r.address, sizeof(r.address), "%s", p->address);
    memcpy(r.key, p->key, sizeof(r.key));
    r.legacy = p->legacy;
    struct peer_record old;
    int rc = peer_config_make();
    if (!rc && s->kind == CFG_CHANGE) /* kept to put back on a failure */
        rc = peer_record_load(p->name, &old);
    if (!rc && s->kind == CFG_CHANGE)
        rc = peer_record_delete(p->name);
    if (!rc && (rc = peer_record_store(&r)) && s->kind == CFG_CHANGE)
        peer_record_store(&old);
    vc_wipe(&r, sizeof(r));
    vc_wipe(&old, sizeof(old));
    return say(rc, err, cap, "writing the peer's record");
}

static void plan_peers(struct cfg_plan *pl, const struct cfg_host *want)
{
    for (size_t i = 0; i < want->npeers; i++) {
        struct cfg_peer p = want->peers[i];
        struct peer_record now;
        char what[512];
        snprintf(what, sizeof(what), "peer %s (%s)", p.name, p.address);
        int rc = peer_record_load(p.name, &now);
        if (rc == -ENOENT && !p.has_key)
            refuse(pl, what, "its key is not in the file (export with "
                   "--with-secrets, or snapfs peer create %s here)", p.name);
        else if (rc && rc != -ENOENT)
            refuse(pl, what, "its record here cannot be read: %s",
                   strerror(-rc));
        else if (rc == -ENOENT)
            host_step(pl, CFG_CREATE, what, &p, sizeof(p), apply_peer);
        else if (other_key(pl, what, now.key, &p.has_key, p.fingerprint))
            ;
        else if (!strcmp(now.address, p.address) && now.legacy == p.legacy &&
                 (!p.has_key || !memcmp(now.key, p.key, sizeof(p.key))))
            host_step(pl, CFG_SAME, what, NULL, 0, NULL);
        else {
            if (!p.has_key) /* the address changes, the key stays */
                memcpy(p.key, now.key, sizeof(p.key));
            host_step(pl, CFG_CHANGE, what, &p, sizeof(p), apply_peer);
        }
        vc_wipe(&now, sizeof(now));
        vc_wipe(&p, sizeof(p));
    }
}

static int apply_client(const struct cfg_step *s, char *err, size_t cap)
{
    const struct cfg_client *c = s->item;
    int rc = peer_config_make();
    return say(rc ? rc : peer_inbound_store(c->name, c->key), err, cap,
               "writing the peer's key");
}

static void plan_clients(struct cfg_plan *pl, const struct cfg_host *want)
{
    for (size_t i = 0; i < want->nclients; i++) {
        const struct cfg_client *c = &want->clients[i];
        uint8_t now[PEER_KEY_LEN];
        char what[512];
        snprintf(what, sizeof(what), "peer client %s", c->name);
        int rc = peer_inbound_load(c->name, now);
        if (rc == -ENOENT && !c->has_key)
            refuse(pl, what, "its key is not in the file (export with "
                   "--with-secrets, or snapfs peer passphrase %s here)",
                   c->name);
        else if (rc && rc != -ENOENT)
            refuse(pl, what, "its key here cannot be read: %s",
                   strerror(-rc));
        else if (rc == -ENOENT)
            host_step(pl, CFG_CREATE, what, c, sizeof(*c), apply_client);
        else if (other_key(pl, what, now, &c->has_key, c->fingerprint))
            ;
        else if (!c->has_key || !memcmp(now, c->key, sizeof(now)))
            host_step(pl, CFG_SAME, what, NULL, 0, NULL);
        else
            host_step(pl, CFG_CHANGE, what, c, sizeof(*c), apply_client);
        vc_wipe(now, sizeof(now));
    }
}

static int apply_grant(const struct cfg_step *s, char *err, size_t cap)
{
    size_t added;
    int rc = peer_config_make();
    return say(rc ? rc : peer_grants_add(s->item, 1, &added), err, cap,
               "writing the grants");
}

static bool granted(const struct peer_grants *t, const struct peer_grant *g)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->g[i].peer, g->peer) && t->g[i].op == g->op &&
            !memcmp(t->g[i].uuid, g->uuid, sizeof(g->uuid)))
            return true;
    return false;
}

static void plan_grants(struct cfg_plan *pl, const struct cfg_host *want)
{
    struct peer_grants t = { 0 };
    int lrc = want->ngrants ? peer_grants_load(&t) : 0;
    for (size_t i = 0; i < want->ngrants; i++) {
        const struct cfg_grant *w = &want->grants[i];
        struct peer_grant g = { .op = w->op };
        char what[512];
        snprintf(what, sizeof(what), "peer grant %s %s %.300s", w->peer,
                 peer_op_name(w->op), w->volume);
        snprintf(g.peer, sizeof(g.peer), "%s", w->peer);
        int rc = peer_grant_resolve(w->volume, &g);
        if (lrc)
            refuse(pl, what, "this host's grants cannot be read: %s",
                   strerror(-lrc));
        else if (rc)
            refuse(pl, what, "no volume %.300s here: %s", w->volume,
                   open_error(rc));
        else if (granted(&t, &g))
            host_step(pl, CFG_SAME, what, NULL, 0, NULL);
        else
            host_step(pl, CFG_CREATE, what, &g, sizeof(g), apply_grant);
    }
    peer_grants_free(&t);
}

static int apply_vstore(const struct cfg_step *s, char *err, size_t cap)
{
    struct cfg_vstore v = *(const struct cfg_vstore *)s->item;
    v.conf.created = (int64_t)time(NULL);
    int rc = vault_store_add(&v.conf, v.pass, v.plen);
    vc_wipe(&v, sizeof(v));
    return say(rc, err, cap, "adding the store");
}

static bool same_store(const struct vault_store_conf *a,
                       const struct vault_store_conf *b)
{
    return !strcmp(a->target, b->target) && !strcmp(a->endpoint, b->endpoint)
           && !strcmp(a->region, b->region) && !strcmp(a->profile, b->profile);
}

static void plan_vstores(struct cfg_plan *pl, const struct cfg_host *want)
{
    for (size_t i = 0; i < want->nvstores; i++) {
        const struct cfg_vstore *v = &want->vstores[i];
        struct vault_store_conf now;
        char what[512];
        snprintf(what, sizeof(what), "vault store %s (%.300s)", v->conf.name,
                 v->conf.target);
        int rc = vault_store_load(v->conf.name, &now);
        if (rc == -ENOENT && !v->has_pass)
            refuse(pl, what, "its passphrase is not in the file (export with "
                   "--with-secrets, or snapfs vault store add it here)");
        else if (rc && rc != -ENOENT)
            refuse(pl, what, "its record here cannot be read: %s",
                   strerror(-rc));
        else if (rc == -ENOENT)
            host_step(pl, CFG_CREATE, what, v, sizeof(*v), apply_vstore);
        else if (same_store(&now, &v->conf))
            host_step(pl, CFG_SAME, what, NULL, 0, NULL);
        else
            refuse(pl, what, "this host has a store of that name with "
                   "target %.200s (or another endpoint, region or profile); "
                   "snapfs vault store remove %s first to replace it",
                   now.target, v->conf.name);
    }
}

static int apply_vpolicy(const struct cfg_step *s, char *err, size_t cap)
{
    const struct vault_rel_policy *p = s->item;
    struct vault_rel_policy old;
    int rc = 0;
    if (s->kind == CFG_CHANGE) /* kept to put back on a failure */
        rc = vault_rel_policy_load(p->name, &old);
    if (!rc && s->kind == CFG_CHANGE)
        rc = vault_rel_policy_delete(p->name);
    if (!rc && (rc = vault_rel_policy_create(p)) && s->kind == CFG_CHANGE)
        vault_rel_policy_create(&old);
    return say(rc, err, cap, "writing the vault policy");
}

static void plan_vpolicies(struct cfg_plan *pl, const struct cfg_host *want)
{
    for (size_t i = 0; i < want->nvpolicies; i++) {
        const struct vault_rel_policy *p = &want->vpolicies[i];
        struct vault_rel_policy now;
        char what[512], rules[1024];
        vault_rel_policy_rules(p, rules, sizeof(rules));
        snprintf(what, sizeof(what), "vault policy %s (%.400s)", p->name, rules);
        int rc = vault_rel_policy_load(p->name, &now);
        if (rc && rc != -ENOENT)
            refuse(pl, what, "its record here cannot be read: %s",
                   strerror(-rc));
        else if (rc == -ENOENT)
            host_step(pl, CFG_CREATE, what, p, sizeof(*p), apply_vpolicy);
        else if (now.keep.nlabels == p->keep.nlabels &&
                 !memcmp(now.keep.labels, p->keep.labels,
                         p->keep.nlabels * sizeof(p->keep.labels[0])))
            host_step(pl, CFG_SAME, what, NULL, 0, NULL);
        else
            host_step(pl, CFG_CHANGE, what, p, sizeof(*p), apply_vpolicy);
    }
}

/* The store directory and UUID of the volume ARG here: 0 or an error of
 * sfs_open. */
static int volume_here(const char *arg, char *store, size_t cap,
                       uint8_t uuid[16])
{
    bool mounted;
    char *dir = resolve_volume(arg, &mounted);
    struct sfs_store *st;
    int rc = dir ? sfs_open(dir, SFS_OPEN_RDONLY, &st) : -ENOMEM;
    if (!rc) {
        snprintf(store, cap, "%s", dir);
        if (uuid)
            memcpy(uuid, st->super.uuid, 16);
        sfs_close(st);
    }
    free(dir);
    return rc;
}

static bool vstore_known(const struct cfg_host *want, const char *name)
{
    struct vault_store_conf s;
    for (size_t i = 0; i < want->nvstores; i++)
        if (!strcmp(want->vstores[i].conf.name, name))
            return true;
    return !vault_store_load(name, &s);
}

static bool vpolicy_known(const struct cfg_host *want, const char *name)
{
    struct vault_rel_policy p;
    for (size_t i = 0; i < want->nvpolicies; i++)
        if (!strcmp(want->vpolicies[i].name, name))
            return true;
    return !vault_rel_policy_load(name, &p);
}

static int apply_vrel(const struct cfg_step *s, char *err, size_t cap)
{
    struct vault_relationship r = *(const struct vault_relationship *)s->item;
    r.created = (int64_t)time(NULL);
    return say(vault_rel_create(&r), err, cap, "writing the relationship");
}

static void plan_vrels(struct cfg_plan *pl, const struct cfg_host *want)
{
    for (size_t i = 0; i < want->nvrels; i++) {
        const struct cfg_vrel *v = &want->vrels[i];
        struct vault_relationship r = { 0 }, now;
        char what[512];
        snprintf(what, sizeof(what), "vault relationship %.250s -> %s "
                 "(policy %s)", v->path, v->store, v->policy);
        int rc = volume_here(v->path, r.path, sizeof(r.path), r.volume);
        snprintf(r.store, sizeof(r.store), "%s", v->store);
        snprintf(r.policy, sizeof(r.policy), "%s", v->policy);
        if (rc)
            refuse(pl, what, "no volume %s here: %s", v->path,
                   open_error(rc));
        else if (!vstore_known(want, v->store))
            refuse(pl, what, "no vault store %s here or in the file",
                   v->store);
        else if (!vpolicy_known(want, v->policy))
            refuse(pl, what, "no vault policy %s here or in the file",
                   v->policy);
        else if ((rc = vault_rel_load(r.volume, r.store, &now)) == -ENOENT)
            host_step(pl, CFG_CREATE, what, &r, sizeof(r), apply_vrel);
        else if (rc)
            refuse(pl, what, "its record here cannot be read: %s",
                   strerror(-rc));
        else if (!strcmp(now.policy, v->policy))
            host_step(pl, CFG_SAME, what, NULL, 0, NULL);
        else
            refuse(pl, what, "protected here with policy %s; delete that "
                   "relationship first to change it", now.policy);
    }
}

static int apply_mirror(const struct cfg_step *s, char *err, size_t cap)
{
    char dir[PATH_MAX];
    int rc = mirror_dir_name(dir, sizeof(dir));
    if (!rc) /* the registry of a new host: its parents too */
        rc = kv_make_dirs(dir, 0700);
    return say(rc ? rc : mirror_rel_store(s->item), err, cap,
               "recording the relationship");
}

static bool same_mirror(const struct mirror_rel *a, const struct mirror_rel *b)
{
    return !strcmp(a->src, b->src) && !strcmp(a->dst, b->dst) &&
           !strcmp(a->via, b->via) && !strcmp(a->policy, b->policy) &&
           !strcmp(a->keep, b->keep) && !strcmp(a->schedule, b->schedule) &&
           !strcmp(a->group, b->group) && a->with_config == b->with_config;
}

static bool peer_known(const struct cfg_host *want, const char *name)
{
    struct peer_record r;
    for (size_t i = 0; i < want->npeers; i++)
        if (!strcmp(want->peers[i].name, name))
            return true;
    bool here = !peer_record_load(name, &r);
    vc_wipe(&r, sizeof(r));
    return here;
}

/* Why the relationship M cannot be made here, into WHY; false if it can. */
static bool mirror_unfit(const struct cfg_host *want,
                         const struct mirror_rel *m, char *why, size_t cap)
{
    char store[PATH_MAX], peer[PEER_NAME_MAX + 1], path[PATH_MAX];
    int rc = volume_here(m->src, store, sizeof(store), NULL);
    if (rc) {
        snprintf(why, cap, "no source volume %s here: %s", m->src,
                 open_error(rc));
        return true;
    }
    enum dst_kind kind = mirror_dst_kind(m, peer, path);
    if (kind == DST_LOCAL &&
        (rc = volume_here(m->dst, store, sizeof(store), NULL))) {
        snprintf(why, cap, "no destination volume %s here: %s", m->dst,
                 open_error(rc));
        return true;
    }
    if (kind == DST_PEER && !peer_known(want, peer)) {
        snprintf(why, cap, "no peer %s here or in the file", peer);
        return true;
    }
    return false;
}

static void plan_mirrors(struct cfg_plan *pl, const struct cfg_host *want)
{
    for (size_t i = 0; i < want->nmirrors; i++) {
        struct mirror_rel m = want->mirrors[i], now;
        char what[512], why[PATH_MAX + 128];
        snprintf(what, sizeof(what), "mirror %.180s -> %.180s (policy "
                 "%s%s%.64s%s)",
                 m.src, m.dst, m.policy, m.group[0] ? ", group " : "",
                 m.group, m.with_config ? ", with its configuration" : "");
        int rc = mirror_registry() ? mirror_rel_load(m.id, &now) : -ENOENT;
        if (rc && rc != -ENOENT)
            refuse(pl, what, "its record here cannot be read: %s",
                   strerror(-rc));
        else if (!rc && same_mirror(&now, &m))
            host_step(pl, CFG_SAME, what, NULL, 0, NULL);
        else if (mirror_unfit(want, &m, why, sizeof(why)))
            refuse(pl, what, "%s", why);
        else {
            if (!rc)
                m.quiesced = now.quiesced;
            host_step(pl, rc ? CFG_CREATE : CFG_CHANGE, what, &m, sizeof(m),
                      apply_mirror);
        }
    }
}

static int apply_nuser(const struct cfg_step *s, char *err, size_t cap)
{
    const struct cfg_nuser *u = s->item;
    return say(ndmp_password_put(u->name, u->password), err, cap,
               "writing the NDMP users file");
}

static void plan_nusers(struct cfg_plan *pl, const struct cfg_host *want)
{
    for (size_t i = 0; i < want->nnusers; i++) {
        const struct cfg_nuser *u = &want->nusers[i];
        char now[NDMP_USER_MAX + 1], what[512];
        snprintf(what, sizeof(what), "ndmp user %s", u->name);
        int rc = ndmp_password_get(u->name, now, sizeof(now));
        if (rc == -ENOENT && !u->has_password)
            refuse(pl, what, "its password is not in the file (export with "
                   "--with-secrets, or snapfs ndmp password %s here)",
                   u->name);
        else if (rc && rc != -ENOENT)
            refuse(pl, what, "the users file cannot be read: %s",
                   strerror(-rc));
        else if (rc == -ENOENT)
            host_step(pl, CFG_CREATE, what, u, sizeof(*u), apply_nuser);
        else if (!u->has_password || !strcmp(now, u->password))
            host_step(pl, CFG_SAME, what, NULL, 0, NULL);
        else
            host_step(pl, CFG_CHANGE, what, u, sizeof(*u), apply_nuser);
        vc_wipe(now, sizeof(now));
    }
}

void cfg_plan_host(struct cfg_plan *p, const struct cfg_host *want)
{
    plan_peers(p, want);
    plan_clients(p, want);
    plan_grants(p, want);
    plan_vstores(p, want);
    plan_vpolicies(p, want);
    plan_vrels(p, want);
    plan_mirrors(p, want);
    plan_nusers(p, want);
}
