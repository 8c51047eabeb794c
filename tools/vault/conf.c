/*
 * conf.c - the vault's records on this host: named object stores (with
 * the passphrase for unattended updates), custom vault policies and the
 * relationships, with their state and update lock (layout in relation.h).
 *
 * Guarantees: the config dir and its folders are made 0700 and every file
 * 0600; records are "key=value" files replaced whole (kvfile.c), so a
 * crash leaves the old record or the new one; a new store, policy or
 * relationship never replaces one of the same name (the record is linked
 * into place, failing with -EEXIST); the passphrase is written once, with
 * the store, and is read only by the commands that open the vault with
 * it; S3 credentials are never stored (the profile's name is).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvfile.h"
#include "relation.h"

#define STORES "stores"
#define POLICIES "policies"
#define RELS "relationships"

const char *vault_conf_dir(void)
{
    static char dir[PATH_MAX];
    const char *d = getenv("SNAPFS_CONFIG_DIR");
    snprintf(dir, sizeof(dir), "%s/vault", d && *d ? d : "/var/lib/snapfs");
    return dir;
}

bool vault_conf_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (!n || n > VAULT_CONF_NAME_MAX || name[0] == '.' || name[0] == '-')
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
            return false;
    return true;
}

/* DIR/SUB/LEAF into OUT; the folders made when MAKE. */
static int conf_path(char *out, size_t cap, const char *sub, const char *leaf,
                     bool make)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s/%s", vault_conf_dir(), sub) >=
        (int)sizeof(dir))
        return -ENAMETOOLONG;
    int rc = make ? kv_make_dirs(vault_conf_dir(), 0700) : 0;
    if (!rc && make)
        rc = kv_make_dirs(dir, 0700);
    if (rc)
        return rc;
    return snprintf(out, cap, "%s/%s", dir, leaf) >= (int)cap ? -ENAMETOOLONG
                                                               : 0;
}

/* Write a new record: kv_store to a private name, then linked to PATH
 * (never over another). */
static int create_record(const char *path, const struct kv_field *f,
                         size_t n, const void *base)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof(tmp), "%s.new%d", path, (int)getpid());
    int rc = kv_store(tmp, f, n, base);
    if (!rc && link(tmp, path))
        rc = -errno;
    unlink(tmp);
    return rc;
}

static int remove_file(const char *sub, const char *leaf)
{
    char path[PATH_MAX];
    int rc = conf_path(path, sizeof(path), sub, leaf, false);
    return !rc && unlink(path) && errno != ENOENT ? -errno : rc;
}

/* ---- names in a folder ---- */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void vault_conf_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The files of SUB ending in SUFFIX, the suffix cut, sorted. */
static int list_names(const char *sub, const char *suffix, char ***names,
                      size_t *n)
{
    char dir[PATH_MAX];
    *names = NULL;
    *n = 0;
    if (snprintf(dir, sizeof(dir), "%s/%s", vault_conf_dir(), sub) >=
        (int)sizeof(dir))
        return -ENAMETOOLONG;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    size_t cap = 0, slen = strlen(suffix);
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= slen || e->d_name[0] == '.' ||
            strcmp(e->d_name + len - slen, suffix))
            continue;
        char *name = strndup(e->d_name, len - slen);
        if (!name || vault_grow(names, &cap, *n, sizeof(char *))) {
            free(name);
            rc = -ENOMEM;
            break;
        }
        (*names)[(*n)++] = name;
    }
    closedir(d);
    if (rc) {
        vault_conf_names_free(*names, *n);
        *names = NULL;
        *n = 0;
    } else if (*n) {
        qsort(*names, *n, sizeof(char *), cmp_names);
    }
    return rc;
}

/* ---- stores ---- */

static const struct kv_field store_fields[] = {
    KV_FIELD(vault_store_conf, target, KV_STR),
    KV_FIELD(vault_store_conf, endpoint, KV_STR),
    KV_FIELD(vault_store_conf, region, KV_STR),
    KV_FIELD(vault_store_conf, profile, KV_STR),
    KV_FIELD(vault_store_conf, created, KV_I64),
};

int vault_store_pass_path(const char *name, char *out, size_t cap)
{
    char leaf[VAULT_CONF_NAME_MAX + 8];
    snprintf(leaf, sizeof(leaf), "%s.pass", name);
    return conf_path(out, cap, STORES, leaf, false);
}

static int write_pass(const char *name, const char *pass, size_t plen)
{
    char path[PATH_MAX];
    int rc = vault_store_pass_path(name, path, sizeof(path));
    int fd = rc ? -1 : open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                            0600);
    if (!rc && fd < 0)
        rc = -errno;
    if (rc)
        return rc;
    if (write(fd, pass, plen) != (ssize_t)plen || write(fd, "\n", 1) != 1 ||
        fsync(fd))
        rc = errno ? -errno : -EIO;
    close(fd);
    if (rc)
        unlink(path);
    return rc;
}

int vault_store_add(const struct vault_store_conf *s, const char *pass,
                    size_t plen)
{
    char path[PATH_MAX], leaf[VAULT_CONF_NAME_MAX + 8],
        pleaf[VAULT_CONF_NAME_MAX + 8];
    if (!vault_conf_name_valid(s->name))
        return -EINVAL;
    snprintf(leaf, sizeof(leaf), "%s.store", s->name);
    snprintf(pleaf, sizeof(pleaf), "%s.pass", s->name);
    int rc = conf_path(path, sizeof(path), STORES, leaf, true);
    if (!rc && !access(path, F_OK))
        return -EEXIST;
    if (!rc)
        rc = remove_file(STORES, pleaf); /* of a store added half-way */
    if (!rc)
        rc = write_pass(s->name, pass, plen);
    if (!rc) {
        rc = create_record(path, store_fields, KV_NFIELDS(store_fields), s);
        if (rc)
            remove_file(STORES, pleaf);
    }
    return rc;
}

int vault_store_load(const char *name, struct vault_store_conf *s)
{
    char path[PATH_MAX], leaf[VAULT_CONF_NAME_MAX + 8];
    memset(s, 0, sizeof(*s));
    if (!vault_conf_name_valid(name))
        return -ENOENT;
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(leaf, sizeof(leaf), "%s.store", name);
    int rc = conf_path(path, sizeof(path), STORES, leaf, false);
    return rc ? rc : kv_load(path, store_fields, KV_NFIELDS(store_fields), s);
}

int vault_store_remove(const char *name)
{
    char leaf[VAULT_CONF_NAME_MAX + 8];
    snprintf(leaf, sizeof(leaf), "%s.store", name);
    int rc = remove_file(STORES, leaf);
    snprintf(leaf, sizeof(leaf), "%s.pass", name);
    int prc = remove_file(STORES, leaf);
    return rc ? rc : prc;
}

int vault_store_names(char ***names, size_t *n)
{
    return list_names(STORES, ".store", names, n);
}

struct objstore_opts vault_store_opts(const struct vault_store_conf *s)
{
    struct objstore_opts o = OBJSTORE_OPTS_INIT;
    o.endpoint = s->endpoint[0] ? s->endpoint : NULL;
    o.region = s->region[0] ? s->region : NULL;
    o.profile = s->profile[0] ? s->profile : NULL;
    return o;
}

/* ---- policies ---- */

struct policy_record {
    char rules[VAULT_KEEP_LABELS * (SFS_NAME_MAX + 12)];
};

static const struct kv_field policy_fields[] = {
    KV_FIELD(policy_record, rules, KV_STR),
};

void vault_rel_policy_rules(const struct vault_rel_policy *p, char *out,
                            size_t cap)
{
    size_t len = 0;
    out[0] = 0;
    for (uint32_t i = 0; i < p->keep.nlabels && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s=%u", i ? "," : "",
                                p->keep.labels[i].label,
                                p->keep.labels[i].keep);
}

/* "LABEL=N,LABEL=N" into P's rules: -EBADMSG if malformed. */
static int parse_rules(char *text, struct vault_rel_policy *p)
{
    for (char *save = NULL, *r = strtok_r(text, ",", &save); r;
         r = strtok_r(NULL, ",", &save)) {
        char *eq = strrchr(r, '=');
        if (!eq || eq == r || p->keep.nlabels == VAULT_KEEP_LABELS)
            return -EBADMSG;
        *eq = 0;
        unsigned long keep = strtoul(eq + 1, NULL, 10);
        if (!keep || keep > UINT32_MAX || strlen(r) > SFS_NAME_MAX)
            return -EBADMSG;
        uint32_t i = p->keep.nlabels++;
        snprintf(p->keep.labels[i].label, sizeof(p->keep.labels[i].label),
                 "%s", r);
        p->keep.labels[i].keep = (uint32_t)keep;
    }
    return p->keep.nlabels ? 0 : -EBADMSG;
}

int vault_rel_policy_load(const char *name, struct vault_rel_policy *p)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    if (!strcmp(name, VAULT_DAILY_BACKUP)) { /* as ONTAP's: daily, keep 7 */
        p->builtin = true;
        p->keep.nlabels = 1;
        snprintf(p->keep.labels[0].label, sizeof(p->keep.labels[0].label),
                 "daily");
        p->keep.labels[0].keep = 7;
        return 0;
    }
    char path[PATH_MAX], leaf[VAULT_CONF_NAME_MAX + 8];
    if (!vault_conf_name_valid(name))
        return -ENOENT;
    snprintf(leaf, sizeof(leaf), "%s.policy", name);
    struct policy_record rec = { "" };
    int rc = conf_path(path, sizeof(path), POLICIES, leaf, false);
    if (!rc)
        rc = kv_load(path, policy_fields, KV_NFIELDS(policy_fields), &rec);
    return rc ? rc : parse_rules(rec.rules, p);
}

int vault_rel_policy_create(const struct vault_rel_policy *p)
{
    char path[PATH_MAX], leaf[VAULT_CONF_NAME_MAX + 8];
    if (!strcmp(p->name, VAULT_DAILY_BACKUP))
        return -EEXIST;
    if (!vault_conf_name_valid(p->name))
        return -EINVAL;
    snprintf(leaf, sizeof(leaf), "%s.policy", p->name);
    struct policy_record rec;
    vault_rel_policy_rules(p, rec.rules, sizeof(rec.rules));
    int rc = conf_path(path, sizeof(path), POLICIES, leaf, true);
    rc = rc ? rc : create_record(path, policy_fields,
                                 KV_NFIELDS(policy_fields), &rec);
    return rc;
}

int vault_rel_policy_delete(const char *name)
{
    char path[PATH_MAX], leaf[VAULT_CONF_NAME_MAX + 8];
    if (!strcmp(name, VAULT_DAILY_BACKUP))
        return -EPERM;
    if (!vault_conf_name_valid(name))
        return -ENOENT;
    snprintf(leaf, sizeof(leaf), "%s.policy", name);
    int rc = conf_path(path, sizeof(path), POLICIES, leaf, false);
    return !rc && unlink(path) ? -errno : rc;
}

int vault_rel_policy_names(char ***names, size_t *n)
{
    return list_names(POLICIES, ".policy", names, n);
}

/* ---- relationships ---- */

struct rel_record {
    char volume[33];
    char path[PATH_MAX];
    char store[VAULT_CONF_NAME_MAX + 1];
    char policy[VAULT_CONF_NAME_MAX + 1];
    int64_t created;
};

static const struct kv_field rel_fields[] = {
    KV_FIELD(rel_record, volume, KV_STR),
    KV_FIELD(rel_record, path, KV_STR),
    KV_FIELD(rel_record, store, KV_STR),
    KV_FIELD(rel_record, policy, KV_STR),
    KV_FIELD(rel_record, created, KV_I64),
};

static const struct kv_field state_fields[] = {
    KV_FIELD(vault_rel_state, state, KV_STR),
    KV_FIELD(vault_rel_state, last_snapshot, KV_STR),
    KV_FIELD(vault_rel_state, last_ctime, KV_I64),
    KV_FIELD(vault_rel_state, last_epoch, KV_U64),
    KV_FIELD(vault_rel_state, last_logical, KV_U64),
    KV_FIELD(vault_rel_state, last_update, KV_I64),
    KV_FIELD(vault_rel_state, last_bytes, KV_U64),
    KV_FIELD(vault_rel_state, total_bytes, KV_U64),
    KV_FIELD(vault_rel_state, updates, KV_U64),
    KV_FIELD(vault_rel_state, error, KV_STR),
};

static void uuid_hex(const uint8_t u[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", u[i]);
}

static int uuid_parse(const char *hex, uint8_t u[16])
{
    if (strlen(hex) != 32)
        return -EBADMSG;
    for (int i = 0; i < 16; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)hex[2 * i]) ||
            !isxdigit((unsigned char)hex[2 * i + 1]) ||
            sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -EBADMSG;
        u[i] = (uint8_t)v;
    }
    return 0;
}

/* RELS/UUID.STORE.EXT */
static int rel_path(const uint8_t volume[16], const char *store,
                    const char *ext, char *out, size_t cap, bool make)
{
    char leaf[VAULT_CONF_NAME_MAX + 48], hex[33];
    uuid_hex(volume, hex);
    snprintf(leaf, sizeof(leaf), "%s.%s.%s", hex, store, ext);
    return conf_path(out, cap, RELS, leaf, make);
}

int vault_rel_create(const struct vault_relationship *r)
{
    char path[PATH_MAX];
    struct rel_record rec = { .created = r->created };
    uuid_hex(r->volume, rec.volume);
    snprintf(rec.path, sizeof(rec.path), "%s", r->path);
    snprintf(rec.store, sizeof(rec.store), "%s", r->store);
    snprintf(rec.policy, sizeof(rec.policy), "%s", r->policy);
    int rc = rel_path(r->volume, r->store, "rel", path, sizeof(path), true);
    if (!rc) { /* a state left by a relationship deleted half-way */
        char state[PATH_MAX];
        if (!rel_path(r->volume, r->store, "state", state, sizeof(state),
                      false))
            unlink(state);
    }
    return rc ? rc : create_record(path, rel_fields, KV_NFIELDS(rel_fields),
                                   &rec);
}

static int rel_from_file(const char *path, struct vault_relationship *r)
{
    struct rel_record rec;
    memset(&rec, 0, sizeof(rec));
    int rc = kv_load(path, rel_fields, KV_NFIELDS(rel_fields), &rec);
    if (rc)
        return rc;
    memset(r, 0, sizeof(*r));
    snprintf(r->path, sizeof(r->path), "%s", rec.path);
    snprintf(r->store, sizeof(r->store), "%s", rec.store);
    snprintf(r->policy, sizeof(r->policy), "%s", rec.policy);
    r->created = rec.created;
    return uuid_parse(rec.volume, r->volume);
}

int vault_rel_load(const uint8_t volume[16], const char *store,
                   struct vault_relationship *r)
{
    char path[PATH_MAX];
    if (!vault_conf_name_valid(store))
        return -ENOENT;
    int rc = rel_path(volume, store, "rel", path, sizeof(path), false);
    return rc ? rc : rel_from_file(path, r);
}

int vault_rel_delete(const struct vault_relationship *r)
{
    static const char *const exts[] = { "rel", "state", "lock" };
    for (size_t i = 0; i < 3; i++) {
        char path[PATH_MAX];
        int rc = rel_path(r->volume, r->store, exts[i], path, sizeof(path),
                          false);
        if (rc)
            return rc;
        if (unlink(path) && errno != ENOENT)
            return -errno;
    }
    return 0;
}

static int rel_order(const void *a, const void *b)
{
    const struct vault_relationship *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    return c ? c : strcmp(x->store, y->store);
}

int vault_rel_all(struct vault_relationship **out, size_t *n)
{
    char **names;
    size_t nn, cap = 0;
    *out = NULL;
    *n = 0;
    int rc = list_names(RELS, ".rel", &names, &nn);
    for (size_t i = 0; !rc && i < nn; i++) {
        char path[PATH_MAX], leaf[PATH_MAX];
        snprintf(leaf, sizeof(leaf), "%s.rel", names[i]);
        struct vault_relationship r;
        if (conf_path(path, sizeof(path), RELS, leaf, false) ||
            rel_from_file(path, &r))
            continue; /* not a relationship record */
        if (vault_grow(out, &cap, *n, sizeof(**out)))
            rc = -ENOMEM;
        else
            (*out)[(*n)++] = r;
    }
    vault_conf_names_free(names, nn);
    if (!rc && *n)
        qsort(*out, *n, sizeof(**out), rel_order);
    return rc;
}

int vault_rel_state_load(const struct vault_relationship *r,
                         struct vault_rel_state *s)
{
    char path[PATH_MAX];
    memset(s, 0, sizeof(*s));
    int rc = rel_path(r->volume, r->store, "state", path, sizeof(path), false);
    if (!rc)
        rc = kv_load(path, state_fields, KV_NFIELDS(state_fields), s);
    return rc == -ENOENT ? 0 : rc;
}

int vault_rel_state_store(const struct vault_relationship *r,
                          const struct vault_rel_state *s)
{
    char path[PATH_MAX];
    int rc = rel_path(r->volume, r->store, "state", path, sizeof(path), true);
    return rc ? rc : kv_store(path, state_fields, KV_NFIELDS(state_fields), s);
}

static int lock_open(const struct vault_relationship *r)
{
    char path[PATH_MAX];
    int rc = rel_path(r->volume, r->store, "lock", path, sizeof(path), true);
    if (rc)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    return fd < 0 ? -errno : fd;
}

static int lock_holder(int fd)
{
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    return n > 0 ? atoi(buf) : 0;
}

int vault_rel_lock(const struct vault_relationship *r, int *pid)
{
    int fd = lock_open(r);
    *pid = 0;
    if (fd < 0)
        return fd;
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int err = errno;
        *pid = lock_holder(fd);
        close(fd);
        return err == EWOULDBLOCK ? -EBUSY : -err;
    }
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) || pwrite(fd, buf, (size_t)len, 0) != len) {
        int err = errno ? errno : EIO;
        close(fd);
        return -err;
    }
    return fd;
}

int vault_rel_running(const struct vault_relationship *r)
{
    int fd = lock_open(r);
    if (fd < 0)
        return 0;
    int pid = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) && errno == EWOULDBLOCK)
        pid = lock_holder(fd);
    close(fd);
    return pid;
}
