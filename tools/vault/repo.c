/*
 * repo.c - the vault repository: creating and opening a vault, its
 * passphrases, its locks, its snapshot manifests.  The main file of the
 * vault engine; blobio.c moves blobs, backup.c, restore.c and check.c are
 * the engine's work.
 *
 * THEORY
 *
 * Objects.  A vault is a set of objects in an object store (objstore.h),
 * each written once and never changed, as restic's repository is:
 *
 *   config                   format version (clear), vault id (sealed)
 *   keys/ID                  the master key wrapped by one passphrase
 *   data/XX/ID               packs of blobs (XX: the first two digits)
 *   index/ID                 which blob is where: pack, offset, length
 *   snapshots/ID             a manifest per snapshot backed up
 *   locks/write/ID, locks/read/ID   who is working on the vault
 *
 * Every object but the config's version, the key objects' clear part and
 * the locks is sealed with AES-256-GCM under the vault's master key, with
 * a fresh random nonce and its kind (and a blob's type and id) as
 * additional data; object names are the SHA-256 of the stored bytes (so
 * an object under another name is caught), blob names a keyed hash
 * (HMAC-SHA256 with the master MAC key) of the block's SHA-256, so neither
 * names nor indexes say anything about the plaintext.  Nothing of a
 * volume - names, contents, sizes of files - is stored in the clear.
 *
 * Snapshots as streams.  A snapshot's metadata is what a replication
 * stream (store/stream.c) carries, without its blocks: the sender omits
 * them, the vault stores each block once as a data blob, and the records
 * (which name blocks by hash) as metadata blobs.  A restore writes a full
 * stream again and lets a receiver fetch the blocks (a block source), so
 * what a restored volume holds is exactly what a received one would -
 * data, holes, hard links, owners, modes, nanosecond times, xattrs, ACLs,
 * DOS attributes, qtrees with their quotas - through code that replication
 * already tests.  How incremental streams make chains, and why, is
 * backup.c's THEORY.
 *
 * Index.  A backup must know, for every block it meets, whether the vault
 * has it; a restore where each blob is.  Both load every index object into
 * memory (index.c: about 60 bytes per blob - 1 MiB per 16 GiB of distinct
 * 64 KiB blocks - plus 40 per pack).  It is proportional, not bounded:
 * the answer must be exact (a "have" that is wrong loses data; a filter
 * with false positives would), the whole index is read from the store
 * anyway, and a disk-backed table would trade memory for a random read
 * per block.  The limit is stated in the README.
 *
 * Crash safety.  A backup writes packs, then index objects listing them
 * (one per VAULT_INDEX_EVERY packs, the last after its last pack), then
 * the snapshot's manifest: a snapshot exists once its manifest does, and
 * everything it refers to was written before.  Killed anywhere, it
 * leaves packs (with or without an index) and no manifest; the next
 * backup loads the index objects, reads the trailers of packs no index
 * lists (blobio.c), and so uploads none of them again.  A backup deletes
 * nothing but its lock; only `forget` (manifests) and `prune` (packs
 * nothing kept refers to, prune.c) delete more.
 *
 * Locks.  One writer at a time (objstore_lock, exclusive, in locks/write):
 * backup, key changes, check, forget and prune; restores take a shared
 * lock in locks/read, which prune takes exclusively.  A lock holder
 * says who it is ("pid P, host H, boot B"); a lock of a process of this
 * host that no longer runs is removed before trying (kill -9 must not
 * leave a vault locked for the stale time), others are stale after
 * VAULT_LOCK_STALE seconds without refresh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "repo.h"

#define LOCK_WRITE_DIR "locks/write"
#define LOCK_READ_DIR "locks/read"

int vault_fail(struct vault *v, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why, sizeof(v->why), fmt, ap);
    va_end(ap);
    return rc;
}

int vault_os_fail(struct vault *v, int rc)
{
    snprintf(v->why, sizeof(v->why), "%s", objstore_why(v->os));
    return rc;
}

void vault_env_release(MDB_env *env)
{
    MDB_envinfo info;
    MDB_stat stat;
    void *addr;
    size_t len;
    if (mdb_env_info(env, &info) || mdb_env_stat(env, &stat) ||
        sfs_env_map_region(env, &addr, &len))
        return;
    size_t used = ((size_t)info.me_last_pgno + 1) * stat.ms_psize;
    /* advice: its errors change nothing */
    madvise(addr, used < len ? used : len, MADV_DONTNEED);
}

void vault_map_release(struct sfs_store *st)
{
    vault_env_release(st->env);
}

const char *vault_why(const struct vault *v)
{
    return v ? v->why : "";
}

void vault_id_hex(const struct vault *v, char out[VC_HEX])
{
    vc_hex(v->config.id, VC_ID, out);
}

void vault_obj_name(const char *dir, const uint8_t id[VC_ID], char *out,
                    size_t cap)
{
    char hex[VC_HEX];
    vc_hex(id, VC_ID, hex);
    snprintf(out, cap, "%s/%s", dir, hex);
}

void vault_pack_name(const uint8_t id[VC_ID], char *out, size_t cap)
{
    char hex[VC_HEX];
    vc_hex(id, VC_ID, hex);
    snprintf(out, cap, "data/%.2s/%s", hex, hex);
}

int vault_put_object(struct vault *v, const char *dir, const struct vw *obj,
                     uint8_t *id)
{
    uint8_t sha[VC_ID];
    char name[128];
    vc_sha256(obj->p, obj->len, sha);
    vault_obj_name(dir, sha, name, sizeof(name));
    int rc = objstore_put(v->os, name, obj->p, obj->len);
    if (rc)
        return vault_os_fail(v, rc);
    v->uploaded += obj->len;
    if (id)
        memcpy(id, sha, VC_ID);
    return 0;
}

struct id_scan {
    size_t skip;              /* "DIR/" */
    uint8_t (*ids)[VC_ID];
    size_t n, cap;
};

static int collect_id(void *arg, const char *name, uint64_t size)
{
    struct id_scan *s = arg;
    uint8_t id[VC_ID];
    if (vc_unhex(name + s->skip, id, VC_ID))
        return 0;
    if (vault_grow(&s->ids, &s->cap, s->n, VC_ID))
        return -ENOMEM;
    memcpy(s->ids[s->n++], id, VC_ID);
    return 0;
}

int vault_list_ids(struct vault *v, const char *dir, uint8_t (**ids)[VC_ID],
                   size_t *n)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "%s/", dir);
    struct id_scan s = { strlen(prefix), NULL, 0, 0 };
    int rc = objstore_list(v->os, prefix, collect_id, &s);
    if (rc) {
        free(s.ids);
        return rc == -ENOMEM ? rc : vault_os_fail(v, rc);
    }
    *ids = s.ids;
    *n = s.n;
    return 0;
}

/* ---- creating and opening ---- */

static struct vault *vault_new(void)
{
    struct vault *v = calloc(1, sizeof(*v));
    if (v)
        v->pack_size = 16u << 20;
    return v;
}

void vault_close(struct vault *v)
{
    if (!v)
        return;
    if (v->os)
        objstore_wait(v->os); /* completions still use V */
    vault_unlock(v);
    for (size_t i = 0; i < v->nsession; i++)
        free(v->session[i].d.ents);
    free(v->session);
    free(v->session_indexes);
    vault_packer_free(&v->packers[0]);
    vault_packer_free(&v->packers[1]);
    vault_index_free(v->index);
    for (unsigned i = 0; i < VAULT_WINDOWS; i++)
        free(v->win[i].buf);
    free(v->config_obj);
    objstore_close(v->os);
    for (unsigned i = 0; i < v->nspare; i++)
        vw_free(&v->spare[i]);
    vc_wipe(&v->keys, sizeof(v->keys));
    free(v);
}

/* Open the object store at TARGET into a new vault handle. */
static int open_store(const char *target, const struct objstore_opts *o,
                      struct vault **out)
{
    struct vault *v = vault_new();
    *out = v;
    if (!v)
        return -ENOMEM;
    int rc = objstore_open(target, o, &v->os);
    if (rc)
        vault_fail(v, rc, "%s", objstore_why(NULL));
    return rc;
}

static void key_info_now(struct vault_keyinfo *info, const struct vault_kdf *kdf)
{
    static const struct vault_kdf dflt = { VAULT_KDF_N, VAULT_KDF_R,
                                           VAULT_KDF_P };
    memset(info, 0, sizeof(*info));
    info->kdf = kdf ? *kdf : dflt;
    info->created = time(NULL);
    if (gethostname(info->host, sizeof(info->host)))
        snprintf(info->host, sizeof(info->host), "unknown");
    info->host[VAULT_HOST_MAX] = 0;
    struct passwd *pw = getpwuid(getuid());
    snprintf(info->user, sizeof(info->user), "%s",
             pw ? pw->pw_name : "unknown");
}

/* Write a key object wrapping V's master key with PASS (id into ID). */
static int write_key(struct vault *v, const char *pass, size_t plen,
                     const struct vault_kdf *kdf, char id[VC_HEX])
{
    struct vault_keyinfo info;
    key_info_now(&info, kdf);
    struct vw obj = { 0 };
    int rc = vault_key_make(&v->keys, pass, plen, &info, &obj);
    uint8_t sha[VC_ID];
    if (rc)
        vault_fail(v, rc, "making a key object: %s", strerror(-rc));
    else
        rc = vault_put_object(v, "keys", &obj, sha);
    vw_free(&obj);
    if (!rc)
        vc_hex(sha, VC_ID, id);
    return rc;
}

/* Write the config only if there is none: -EEXIST if there is. */
static int write_config(struct vault *v)
{
    struct vw obj = { 0 };
    int rc = vault_config_make(&v->keys, &v->config, &obj);
    if (!rc) {
        rc = objstore_put_if_absent(v->os, "config", obj.p, obj.len);
        if (rc == -EOPNOTSUPP) { /* a server without conditional writes */
            uint64_t size;
            rc = objstore_stat(v->os, "config", &size);
            rc = rc == -ENOENT ? objstore_put(v->os, "config", obj.p, obj.len)
                 : rc ? rc : -EEXIST;
        }
        if (rc == -EEXIST)
            vault_fail(v, rc, "%s: holds a vault already",
                       objstore_target(v->os));
        else if (rc)
            vault_os_fail(v, rc);
    }
    vw_free(&obj);
    return rc;
}

int vault_init(const char *target, const struct objstore_opts *o,
               const char *pass, size_t plen, const struct vault_kdf *kdf,
               struct vault **out)
{
    int rc = open_store(target, o, out);
    if (rc)
        return rc;
    struct vault *v = *out;
    uint64_t size;
    rc = objstore_stat(v->os, "config", &size);
    if (rc == 0)
        return vault_fail(v, -EEXIST, "%s: holds a vault already", target);
    if (rc != -ENOENT)
        return vault_os_fail(v, rc);
    v->config.version = VAULT_FORMAT;
    v->config.created = time(NULL);
    rc = vc_random(&v->keys, sizeof(v->keys));
    if (!rc)
        rc = vc_random(v->config.id, VC_ID);
    if (rc)
        return vault_fail(v, rc, "no random numbers");
    rc = write_key(v, pass, plen, kdf, v->key_id);
    if (!rc)
        rc = write_config(v);
    if (rc == -EEXIST) { /* another init won the race: take ours back */
        char name[128];
        snprintf(name, sizeof(name), "keys/%s", v->key_id);
        objstore_delete(v->os, name);
    }
    return rc;
}

struct key_try {
    struct vault *v;
    const char *pass;
    size_t plen;
    const uint8_t *config;
    size_t config_len;
    int opened;          /* keys the passphrase opened */
    int found;           /* 1: a key opened the config */
    int err;
};

/* Try the passphrase on the key object NAME; 1 stops the listing. */
static int try_key(void *arg, const char *name, uint64_t size)
{
    struct key_try *t = arg;
    struct vault *v = t->v;
    void *obj;
    size_t len;
    if (size > 4096)
        return 0; /* no key object is that large */
    int rc = objstore_get(v->os, name, &obj, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc) {
        t->err = vault_os_fail(v, rc);
        return 1;
    }
    struct vault_keys k;
    rc = vault_key_open(obj, len, t->pass, t->plen, &k);
    free(obj);
    if (rc)
        return 0; /* another passphrase's key, or damaged: try the next */
    t->opened++;
    rc = vault_config_open(&k, t->config, t->config_len, &v->config);
    if (rc) {
        vc_wipe(&k, sizeof(k));
        return 0;
    }
    v->keys = k;
    vc_wipe(&k, sizeof(k));
    snprintf(v->key_id, sizeof(v->key_id), "%s", name + strlen("keys/"));
    t->found = 1;
    return 1;
}

/* The config object, its version checked before any key is tried. */
static int read_config(struct vault *v, void **obj, size_t *len)
{
    int rc = objstore_get(v->os, "config", obj, len);
    if (rc == -ENOENT)
        return vault_fail(v, rc, "%s: no vault here (snapfs vault init "
                          "makes one)", objstore_target(v->os));
    if (rc)
        return vault_os_fail(v, rc);
    uint32_t version;
    rc = vault_config_version(*obj, *len, &version);
    if (rc)
        rc = vault_fail(v, rc, "%s: config: not a snapfs vault config",
                        objstore_target(v->os));
    else if (version > VAULT_FORMAT)
        rc = vault_fail(v, -EPROTONOSUPPORT, "%s: the vault has format %u, "
                        "newer than this snapfs reads (%u): use a newer "
                        "snapfs", objstore_target(v->os), version,
                        VAULT_FORMAT);
    if (rc) {
        free(*obj);
        *obj = NULL;
    }
    return rc;
}

int vault_connect(const char *target, const struct objstore_opts *o,
                  struct vault **out)
{
    int rc = open_store(target, o, out);
    return rc ? rc : read_config(*out, &(*out)->config_obj,
                                 &(*out)->config_len);
}

int vault_open_keys(struct vault *v, const char *pass, size_t plen)
{
    struct key_try t = { v, pass, plen, v->config_obj, v->config_len, 0, 0,
                         0 };
    int rc = objstore_list(v->os, "keys/", try_key, &t);
    if (rc < 0)
        return t.err ? t.err : vault_os_fail(v, rc);
    if (t.found)
        return 0;
    const char *target = objstore_target(v->os);
    if (t.opened)
        return vault_fail(v, -EBADMSG, "%s: config: damaged (the passphrase "
                          "opens a key, but the config does not open with "
                          "it)", target);
    return vault_fail(v, -EACCES, "%s: wrong passphrase (no key of the vault "
                      "opens with it)", target);
}

/* ---- locks ---- */

static void boot_id(char *out, size_t cap)
{
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f || !fgets(out, (int)cap, f))
        snprintf(out, cap, "-");
    out[strcspn(out, "\n")] = 0;
    if (f)
        fclose(f);
}

static void lock_holder(const char *what, char *out, size_t cap)
{
    char host[VAULT_HOST_MAX + 1] = "unknown", boot[64];
    gethostname(host, sizeof(host) - 1);
    boot_id(boot, sizeof(boot));
    snprintf(out, cap, "snapfs vault %s (pid %d, host %s, boot %s)", what,
             (int)getpid(), host, boot);
}

/* Is the holder of the lock text TEXT a process of this host (this boot)
 * that has ended? */
static bool holder_gone(const char *text, size_t len)
{
    char buf[512], host[VAULT_HOST_MAX + 1] = "", boot[64], mine[64];
    char myhost[VAULT_HOST_MAX + 1] = "";
    if (len >= sizeof(buf))
        return false;
    memcpy(buf, text, len);
    buf[len] = 0;
    const char *h = strstr(buf, "\nholder snapfs vault ");
    const char *p = h ? strstr(h, " (pid ") : NULL;
    int pid;
    if (!p || sscanf(p, " (pid %d, host %64[^,], boot %63[^)])", &pid, host,
                     boot) != 3 || pid <= 0)
        return false;
    gethostname(myhost, sizeof(myhost) - 1);
    boot_id(mine, sizeof(mine));
    return !strcmp(host, myhost) && !strcmp(boot, mine) && pid != getpid() &&
           kill(pid, 0) && errno == ESRCH;
}

struct dead_scan {
    struct vault *v;
    int removed;
};

static int remove_if_dead(void *arg, const char *name, uint64_t size)
{
    struct dead_scan *d = arg;
    void *text;
    size_t len;
    if (size > 4096 || objstore_get(d->v->os, name, &text, &len))
        return 0;
    bool gone = holder_gone(text, len);
    free(text);
    if (gone && !objstore_delete(d->v->os, name))
        d->removed++;
    return 0;
}

/* A lock in DIR, after the locks of processes gone are removed. */
static int take_lock(struct vault *v, const char *dir, bool exclusive,
                     const char *what, struct objstore_lock **out)
{
    char holder[256];
    lock_holder(what, holder, sizeof(holder));
    struct dead_scan d = { v, 0 };
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "%s/", dir);
    objstore_list(v->os, prefix, remove_if_dead, &d);
    int rc = objstore_lock(v->os, dir, exclusive, holder, VAULT_LOCK_STALE,
                           out);
    if (rc == -EBUSY)
        return vault_fail(v, rc, "%s", objstore_why(v->os));
    if (rc)
        return vault_os_fail(v, rc);
    v->lock_refreshed = time(NULL);
    return 0;
}

int vault_lock(struct vault *v, bool write, const char *what)
{
    return take_lock(v, write ? LOCK_WRITE_DIR : LOCK_READ_DIR, write, what,
                     &v->lock);
}

int vault_lock_readers(struct vault *v, const char *what)
{
    return take_lock(v, LOCK_READ_DIR, true, what, &v->readers_lock);
}

int vault_keep_lock(struct vault *v)
{
    if (time(NULL) - v->lock_refreshed < VAULT_LOCK_REFRESH)
        return 0;
    int rc = v->lock ? objstore_lock_refresh(v->lock) : 0;
    if (!rc && v->readers_lock)
        rc = objstore_lock_refresh(v->readers_lock);
    if (rc)
        return vault_os_fail(v, rc);
    v->lock_refreshed = time(NULL);
    return 0;
}

int vault_unlock(struct vault *v)
{
    struct objstore_lock *l = v->lock, *r = v->readers_lock;
    v->lock = v->readers_lock = NULL;
    int rc = r ? objstore_unlock(r) : 0;
    int wrc = l ? objstore_unlock(l) : 0;
    return rc ? rc : wrc;
}

/* ---- keys ---- */

struct key_names {
    char (*names)[VC_HEX];
    size_t n, cap;
};

static int collect_key(void *arg, const char *name, uint64_t size)
{
    struct key_names *k = arg;
    const char *id = name + strlen("keys/");
    uint8_t bin[VC_ID];
    if (vc_unhex(id, bin, VC_ID))
        return 0; /* not a key object's name */
    if (vault_grow(&k->names, &k->cap, k->n, sizeof(*k->names)))
        return -ENOMEM;
    snprintf(k->names[k->n++], VC_HEX, "%s", id);
    return 0;
}

static int cmp_key_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int list_keys(struct vault *v, struct key_names *k)
{
    memset(k, 0, sizeof(*k));
    int rc = objstore_list(v->os, "keys/", collect_key, k);
    if (rc) {
        free(k->names);
        return rc == -ENOMEM ? rc : vault_os_fail(v, rc);
    }
    if (k->n)
        qsort(k->names, k->n, VC_HEX, cmp_key_name);
    return 0;
}

int vault_keys_list(struct vault *v,
                    int (*cb)(void *arg, const struct vault_key_line *k),
                    void *arg)
{
    struct key_names k;
    int rc = list_keys(v, &k);
    for (size_t i = 0; !rc && i < k.n; i++) {
        char name[128];
        snprintf(name, sizeof(name), "keys/%s", k.names[i]);
        void *obj;
        size_t len;
        struct vault_key_line line = { .current = !strcmp(k.names[i],
                                                          v->key_id) };
        snprintf(line.id, sizeof(line.id), "%s", k.names[i]);
        rc = objstore_get(v->os, name, &obj, &len);
        if (rc == -ENOENT) {
            rc = 0;
            continue;
        }
        if (rc) {
            rc = vault_os_fail(v, rc);
            break;
        }
        rc = vault_key_parse(obj, len, &line.info);
        free(obj);
        if (rc)
            rc = vault_fail(v, rc, "%s: damaged key object", name);
        else
            rc = cb(arg, &line);
    }
    free(k.names);
    return rc;
}

int vault_key_add(struct vault *v, const char *pass, size_t plen,
                  const struct vault_kdf *kdf, char id[VC_HEX])
{
    return write_key(v, pass, plen, kdf, id);
}

int vault_key_remove(struct vault *v, const char *prefix, char id[VC_HEX])
{
    size_t plen = strlen(prefix);
    if (plen < 4 || plen > 64)
        return vault_fail(v, -EINVAL, "%s: give at least 4 digits of a key "
                          "id (snapfs vault key list shows them)", prefix);
    struct key_names k;
    int rc = list_keys(v, &k);
    if (rc)
        return rc;
    size_t match = 0, which = 0;
    for (size_t i = 0; i < k.n; i++)
        if (!strncmp(k.names[i], prefix, plen)) {
            match++;
            which = i;
        }
    if (match == 0)
        rc = vault_fail(v, -ENOENT, "%s: no key has this id", prefix);
    else if (match > 1)
        rc = vault_fail(v, -EINVAL, "%s: %zu keys have ids beginning so; "
                        "give more digits", prefix, match);
    else if (k.n == 1)
        rc = vault_fail(v, -EBUSY, "%s: the vault's only key: removing it "
                        "would lock everyone out", prefix);
    else if (!strcmp(k.names[which], v->key_id))
        rc = vault_fail(v, -EPERM, "%s: the key this passphrase opened; "
                        "remove it with another passphrase", prefix);
    if (!rc) {
        char name[128];
        snprintf(name, sizeof(name), "keys/%s", k.names[which]);
        snprintf(id, VC_HEX, "%s", k.names[which]);
        rc = objstore_delete(v->os, name);
        if (rc)
            vault_os_fail(v, rc);
    }
    free(k.names);
    return rc;
}

/* ---- manifests ---- */

struct manifest_scan {
    struct vault *v;
    bool with_bad;
    vault_manifest_cb cb;
    void *arg;
    int err;
};

int vault_manifest_read(struct vault *v, const uint8_t id[VC_ID],
                        struct vault_manifest *m)
{
    char name[128];
    vault_obj_name("snapshots", id, name, sizeof(name));
    void *obj;
    size_t len;
    int rc = objstore_get(v->os, name, &obj, &len);
    if (rc == -ENOENT)
        return rc;
    if (rc)
        return vault_os_fail(v, rc);
    uint8_t sha[VC_ID];
    vc_sha256(obj, len, sha);
    rc = memcmp(sha, id, VC_ID) ? -EBADMSG
                                : vault_manifest_decode(&v->keys, obj, len, m);
    free(obj);
    if (rc)
        vault_fail(v, rc, "%s: %s", name,
                   rc == -EPROTONOSUPPORT ? "made by a newer snapfs"
                                          : "damaged (it does not "
                                            "authenticate)");
    return rc;
}

static int manifest_one(void *arg, const char *name, uint64_t size)
{
    struct manifest_scan *s = arg;
    struct vault *v = s->v;
    uint8_t id[VC_ID];
    if (vc_unhex(name + strlen("snapshots/"), id, VC_ID))
        return 0; /* not a manifest's name */
    struct vault_manifest m;
    int rc = vault_manifest_read(v, id, &m);
    if (rc == -ENOENT)
        return 0; /* forgotten meanwhile */
    if (rc && rc != -EBADMSG && rc != -EPROTONOSUPPORT) {
        s->err = rc;
        return 1;
    }
    if (rc && !s->with_bad) {
        s->err = rc;
        return 1;
    }
    rc = s->cb(s->arg, id, rc ? NULL : &m);
    if (rc)
        s->err = rc;
    return rc ? 1 : 0;
}

int vault_each_manifest(struct vault *v, bool with_bad, vault_manifest_cb cb,
                        void *arg)
{
    struct manifest_scan s = { v, with_bad, cb, arg, 0 };
    int rc = objstore_list(v->os, "snapshots/", manifest_one, &s);
    if (s.err)
        return s.err;
    return rc < 0 ? vault_os_fail(v, rc) : 0;
}

struct snap_array {
    struct vault *v;
    struct vault_snapshot *s;
    size_t n, cap, bad;
    char first_bad[VAULT_WHY_MAX];
};

static int collect_snapshot(void *arg, const uint8_t id[VC_ID],
                            const struct vault_manifest *m)
{
    struct snap_array *a = arg;
    if (!m) {
        if (!a->bad++)
            snprintf(a->first_bad, sizeof(a->first_bad), "%s", a->v->why);
        return 0;
    }
    if (vault_grow(&a->s, &a->cap, a->n, sizeof(*a->s)))
        return -ENOMEM;
    memcpy(a->s[a->n].id, id, VC_ID);
    a->s[a->n++].m = *m;
    return 0;
}

static int cmp_snapshot(const void *a, const void *b)
{
    const struct vault_snapshot *x = a, *y = b;
    if (x->m.backup_time != y->m.backup_time)
        return x->m.backup_time < y->m.backup_time ? -1 : 1;
    int c = memcmp(x->m.volume, y->m.volume, 16);
    if (c)
        return c;
    return x->m.epoch < y->m.epoch ? -1 : x->m.epoch > y->m.epoch;
}

int vault_snapshots(struct vault *v, struct vault_snapshot **out, size_t *n,
                    size_t *bad)
{
    struct snap_array a = { .v = v };
    int rc = vault_each_manifest(v, true, collect_snapshot, &a);
    if (rc) {
        free(a.s);
        return rc;
    }
    if (a.n)
        qsort(a.s, a.n, sizeof(*a.s), cmp_snapshot);
    *out = a.s;
    *n = a.n;
    *bad = a.bad;
    if (a.bad)
        vault_fail(v, 0, "%s%s", a.first_bad,
                   a.bad > 1 ? " (and other manifests)" : "");
    return 0;
}

/* Does SPEC name S: its name, or 4 hex digits and more of its id? */
static bool snapshot_matches(const struct vault_snapshot *s, const char *spec)
{
    if (!strcmp(s->m.name, spec))
        return true;
    char hex[VC_HEX];
    vc_hex(s->id, VC_ID, hex);
    size_t n = strlen(spec);
    return n >= 4 && n <= 64 && !strncmp(hex, spec, n);
}

int vault_find_snapshot(struct vault *v, const char *spec,
                        struct vault_snapshot *out)
{
    struct vault_snapshot *all;
    size_t n, bad, match = 0;
    int rc = vault_snapshots(v, &all, &n, &bad);
    if (rc)
        return rc;
    char damaged[VAULT_WHY_MAX];
    snprintf(damaged, sizeof(damaged), "%s", v->why);
    char ids[512] = "";
    for (size_t i = 0; i < n; i++) {
        if (!snapshot_matches(&all[i], spec))
            continue;
        if (!match++)
            *out = all[i];
        char hex[VC_HEX];
        vc_hex(all[i].id, VC_ID, hex);
        size_t used = strlen(ids);
        snprintf(ids + used, sizeof(ids) - used, "%s%.8s", used ? ", " : "",
                 hex);
    }
    free(all);
    if (!match && bad)
        return vault_fail(v, -ENOENT, "%s: not among the snapshots whose "
                          "manifest can be read; %s", spec, damaged);
    if (!match)
        return vault_fail(v, -ENOENT, "%s: no such snapshot in the vault "
                          "(snapfs vault list shows them)", spec);
    if (match > 1)
        return vault_fail(v, -EINVAL, "%s: %zu snapshots match (%s); give "
                          "the id", spec, match, ids);
    return 0;
}
