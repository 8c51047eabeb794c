/*
 * restore_tree.c - the symbol table of a restore: the entries of every
 * directory of a dump (the name tree), its index (where each inode is:
 * parent and name of each of its links), and the state file that keeps
 * the tree between the levels of an incremental restore.
 *
 * Guarantees: memory is proportional to the number of entries; walks from
 * the root visit each directory once, so a malformed dump whose entries
 * form a cycle cannot loop; the state file is replaced atomically (written
 * beside it, fsync'd, renamed), and a state file that does not parse is
 * reported as -EBADMSG, never half-used.
 *
 * State file format (text, one record a line):
 *   snapfs-restoresymtable 1
 *   date DATE level LEVEL uuid HEX32|-
 *   d INO                       a directory; its entries follow
 *   e INO DTYPE NAME            an entry, NAME %-escaped (bytes <= ' ',
 *                               '%' and 0x7f as %XX)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "restore.h"

/* ---- the tree: a hash of directories ---- */

static size_t hash_ino(uint32_t ino, size_t cap)
{
    return (size_t)(ino * 2654435761u) & (cap - 1);
}

struct rst_dir *rst_tree_dir(const struct rst_tree *t, uint32_t ino)
{
    if (!t->dcap)
        return NULL;
    for (size_t i = hash_ino(ino, t->dcap);; i = (i + 1) & (t->dcap - 1)) {
        if (!t->dirs[i])
            return NULL;
        if (t->dirs[i]->ino == ino)
            return t->dirs[i];
    }
}

static int tree_grow(struct rst_tree *t)
{
    size_t cap = t->dcap ? t->dcap * 2 : 64;
    struct rst_dir **d = calloc(cap, sizeof(*d));
    if (!d)
        return -ENOMEM;
    for (size_t i = 0; i < t->dcap; i++) {
        if (!t->dirs[i])
            continue;
        size_t j = hash_ino(t->dirs[i]->ino, cap);
        while (d[j])
            j = (j + 1) & (cap - 1);
        d[j] = t->dirs[i];
    }
    free(t->dirs);
    t->dirs = d;
    t->dcap = cap;
    return 0;
}

static void dir_clear(struct rst_dir *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->ents[i].name);
    d->n = 0;
}

struct rst_dir *rst_tree_put_dir(struct rst_tree *t, uint32_t ino)
{
    struct rst_dir *d = rst_tree_dir(t, ino);
    if (d) {
        dir_clear(d);
        return d;
    }
    if ((t->ndirs + 1) * 2 > t->dcap && tree_grow(t))
        return NULL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->ino = ino;
    size_t j = hash_ino(ino, t->dcap);
    while (t->dirs[j])
        j = (j + 1) & (t->dcap - 1);
    t->dirs[j] = d;
    t->ndirs++;
    return d;
}

int rst_grow(void *array, size_t n, size_t *cap, size_t size)
{
    void **a = array;
    if (n < *cap)
        return 0;
    size_t want = *cap ? *cap * 2 : 16;
    void *p = realloc(*a, want * size);
    if (!p)
        return -ENOMEM;
    *a = p;
    *cap = want;
    return 0;
}

int rst_dir_add(struct rst_dir *d, uint32_t ino, uint8_t dtype,
                const char *name)
{
    if (rst_grow(&d->ents, d->n, &d->cap, sizeof(*d->ents)))
        return -ENOMEM;
    char *copy = strdup(name);
    if (!copy)
        return -ENOMEM;
    d->ents[d->n++] = (struct rst_entry){ ino, dtype, copy };
    return 0;
}

void rst_tree_each_dir(const struct rst_tree *t,
                       void (*fn)(void *arg, struct rst_dir *d), void *arg)
{
    for (size_t i = 0; i < t->dcap; i++)
        if (t->dirs[i])
            fn(arg, t->dirs[i]);
}

void rst_tree_free(struct rst_tree *t)
{
    for (size_t i = 0; i < t->dcap; i++) {
        if (!t->dirs[i])
            continue;
        dir_clear(t->dirs[i]);
        free(t->dirs[i]->ents);
        free(t->dirs[i]);
    }
    free(t->dirs);
    memset(t, 0, sizeof(*t));
}

/* ---- the index: links of every inode reachable from the root ---- */

static struct rst_node *index_slot(struct rst_index *ix, uint32_t ino)
{
    size_t i = hash_ino(ino, ix->cap);
    while (ix->nodes[i].ino && ix->nodes[i].ino != ino)
        i = (i + 1) & (ix->cap - 1);
    return &ix->nodes[i];
}

struct rst_node *rst_index_get(const struct rst_index *ix, uint32_t ino)
{
    if (!ix->cap || !ino)
        return NULL;
    struct rst_node *n = index_slot((struct rst_index *)ix, ino);
    return n->ino ? n : NULL;
}

static int index_grow(struct rst_index *ix)
{
    struct rst_index bigger = { .cap = ix->cap ? ix->cap * 2 : 256 };
    bigger.nodes = calloc(bigger.cap, sizeof(*bigger.nodes));
    if (!bigger.nodes)
        return -ENOMEM;
    for (size_t i = 0; i < ix->cap; i++)
        if (ix->nodes[i].ino)
            *index_slot(&bigger, ix->nodes[i].ino) = ix->nodes[i];
    free(ix->nodes);
    ix->nodes = bigger.nodes;
    ix->cap = bigger.cap;
    return 0;
}

/* The node of INO, created (with no links) when new; NULL: -ENOMEM. */
static struct rst_node *index_add(struct rst_index *ix, uint32_t ino,
                                  uint8_t dtype, bool *created)
{
    if ((ix->n + 1) * 2 > ix->cap && index_grow(ix))
        return NULL;
    struct rst_node *n = index_slot(ix, ino);
    *created = !n->ino;
    if (*created) {
        n->ino = ino;
        n->dtype = dtype;
        ix->n++;
        uint32_t *o = realloc(ix->order, (ix->norder + 1) * sizeof(*o));
        if (!o)
            return NULL;
        ix->order = o;
        ix->order[ix->norder++] = ino;
    }
    return n;
}

static int node_link(struct rst_node *n, uint32_t parent, const char *name)
{
    struct rst_link *l = realloc(n->links, (n->nlinks + 1) * sizeof(*l));
    if (!l)
        return -ENOMEM;
    n->links = l;
    n->links[n->nlinks++] = (struct rst_link){ parent, name };
    return 0;
}

static bool is_dot(const char *name)
{
    return !strcmp(name, ".") || !strcmp(name, "..");
}

/* Index the entries of directory D; new subdirectories are appended to
 * the walk order (and so visited later, breadth first). */
static int index_dir(const struct rst_tree *t, struct rst_index *ix,
                     const struct rst_dir *d)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct rst_entry *e = &d->ents[i];
        if (is_dot(e->name) || e->ino == RST_ROOT_INO)
            continue;
        bool isdir = rst_tree_dir(t, e->ino) != NULL, created;
        uint8_t dtype = isdir ? DT_DIR : e->dtype == DT_DIR ? DT_UNKNOWN
                                                            : e->dtype;
        struct rst_node *n = index_add(ix, e->ino, dtype, &created);
        if (!n)
            return -ENOMEM;
        if (isdir && !created)
            continue;  /* a directory has one name: the first one met */
        if (node_link(rst_index_get(ix, e->ino), d->ino, e->name))
            return -ENOMEM;
    }
    return 0;
}

int rst_index_build(const struct rst_tree *t, struct rst_index *ix)
{
    memset(ix, 0, sizeof(*ix));
    bool created;
    if (!index_add(ix, RST_ROOT_INO, DT_DIR, &created))
        return -ENOMEM;
    for (size_t k = 0; k < ix->norder; k++) {
        const struct rst_dir *d = rst_tree_dir(t, ix->order[k]);
        if (!d)
            continue;
        int rc = index_dir(t, ix, d);
        if (rc)
            return rc;
    }
    return 0;
}

int rst_index_path(const struct rst_index *ix, uint32_t ino, char *out,
                   size_t cap)
{
    /* Collect the names from INO up to the root, then join them. */
    const char *names[1024];
    size_t depth = 0;
    while (ino != RST_ROOT_INO) {
        const struct rst_node *n = rst_index_get(ix, ino);
        if (!n || !n->nlinks)
            return -ENOENT;
        if (depth == sizeof(names) / sizeof(names[0]))
            return -ENAMETOOLONG;
        names[depth++] = n->links[0].name;
        ino = n->links[0].parent;
    }
    size_t len = 0;
    out[0] = 0;
    while (depth--) {
        size_t nl = strlen(names[depth]);
        if (len + nl + 2 > cap)
            return -ENAMETOOLONG;
        if (len)
            out[len++] = '/';
        memcpy(out + len, names[depth], nl + 1);
        len += nl;
    }
    return 0;
}

bool rst_index_has_link(const struct rst_node *n, uint32_t parent,
                        const char *name)
{
    for (size_t i = 0; n && i < n->nlinks; i++)
        if (n->links[i].parent == parent && !strcmp(n->links[i].name, name))
            return true;
    return false;
}

void rst_index_free(struct rst_index *ix)
{
    for (size_t i = 0; i < ix->cap; i++)
        free(ix->nodes[i].links);
    free(ix->nodes);
    free(ix->order);
    memset(ix, 0, sizeof(*ix));
}

/* ---- the state file ---- */

static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == '%' || c == 0x7f)
            fprintf(f, "%%%02X", c);
        else
            fputc(c, f);
    }
}

/* Undo put_escaped in place; -EBADMSG on a bad escape. */
static int unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s != '%') {
            *o++ = *s;
            continue;
        }
        unsigned v;
        if (sscanf(s + 1, "%2X", &v) != 1 || !v || !s[1] || !s[2])
            return -EBADMSG;
        *o++ = (char)v;
        s += 2;
    }
    *o = 0;
    return 0;
}

struct save_ctx {
    FILE *f;
};

static void save_dir(void *arg, struct rst_dir *d)
{
    struct save_ctx *c = arg;
    fprintf(c->f, "d %u\n", d->ino);
    for (size_t i = 0; i < d->n; i++) {
        fprintf(c->f, "e %u %u ", d->ents[i].ino, d->ents[i].dtype);
        put_escaped(c->f, d->ents[i].name);
        fputc('\n', c->f);
    }
}

int rst_state_save(int dirfd, const struct rst_state *s)
{
    const char *tmp = RST_STATE_FILE ".new";
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    0600);
    if (fd < 0)
        return -errno;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    fprintf(f, "snapfs-restoresymtable 1\ndate %d level %d uuid ", s->date,
            s->level);
    if (s->has_uuid)
        for (int i = 0; i < 16; i++)
            fprintf(f, "%02x", s->uuid[i]);
    else
        fputc('-', f);
    fputc('\n', f);
    struct save_ctx c = { f };
    rst_tree_each_dir(&s->tree, save_dir, &c);
    int rc = fflush(f) || fsync(fd) ? -errno : 0;
    if (fclose(f) && !rc)
        rc = -errno;
    if (!rc && renameat(dirfd, tmp, dirfd, RST_STATE_FILE))
        rc = -errno;
    if (rc)
        unlinkat(dirfd, tmp, 0);
    return rc;
}

static int parse_uuid(const char *hex, struct rst_state *s)
{
    if (!strcmp(hex, "-")) {
        s->has_uuid = false;
        return 0;
    }
    if (strlen(hex) != 32)
        return -EBADMSG;
    for (int i = 0; i < 16; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -EBADMSG;
        s->uuid[i] = (uint8_t)v;
    }
    s->has_uuid = true;
    return 0;
}

static int parse_state_line(char *line, struct rst_state *s,
                            struct rst_dir **cur)
{
    unsigned ino, dtype;
    int used = 0;
    if (sscanf(line, "d %u%n", &ino, &used) == 1 && !line[used]) {
        if (rst_tree_dir(&s->tree, ino))
            return -EBADMSG;
        *cur = rst_tree_put_dir(&s->tree, ino);
        return *cur ? 0 : -ENOMEM;
    }
    if (sscanf(line, "e %u %u %n", &ino, &dtype, &used) == 2 && *cur &&
        line[used] && dtype < 256) {
        char *name = line + used;
        if (unescape(name) || strchr(name, '/') || !ino)
            return -EBADMSG;
        return rst_dir_add(*cur, ino, (uint8_t)dtype, name);
    }
    return -EBADMSG;
}

int rst_state_load(int dirfd, struct rst_state *s)
{
    memset(s, 0, sizeof(*s));
    int fd = openat(dirfd, RST_STATE_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return -ENOMEM;
    }
    char *line = NULL, uuid[40];
    size_t cap = 0;
    int rc = -EBADMSG;
    struct rst_dir *cur = NULL;
    if (getline(&line, &cap, f) > 0 &&
        !strcmp(line, "snapfs-restoresymtable 1\n") &&
        getline(&line, &cap, f) > 0 &&
        sscanf(line, "date %d level %d uuid %39s", &s->date, &s->level,
               uuid) == 3 && !parse_uuid(uuid, s)) {
        rc = 0;
        ssize_t n;
        while (!rc && (n = getline(&line, &cap, f)) > 0) {
            if (line[n - 1] != '\n') {
                rc = -EBADMSG;
                break;
            }
            line[n - 1] = 0;
            rc = parse_state_line(line, s, &cur);
        }
        if (!rc && !rst_tree_dir(&s->tree, RST_ROOT_INO))
            rc = -EBADMSG;
    }
    free(line);
    fclose(f);
    if (rc)
        rst_state_free(s);
    return rc;
}

void rst_state_free(struct rst_state *s)
{
    rst_tree_free(&s->tree);
}
