/*
 * test_node_table.c - the daemon's node table (fs/volume.c, THEORY: THE
 * NODE TABLE) against a model: 400,000 random lookups, forgets, opens,
 * closes, pins, unpins and unlinks over 3,000 inode numbers (spread over
 * 64 bits, so that probes collide and wrap) answer, at every step, what
 * the model says: an orphan is to be destroyed exactly at its last
 * forget, close or unpin, and never before; the inodes the table lists as
 * referenced and open are the model's; a node pinned stays the same node
 * until unpinned.  Then 200,000 inodes held and forgotten: the table
 * grows to about 20 bytes an inode and gives its memory back.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "testvol.h"
#include "volume.h"

#define INOS 3000
#define STEPS 400000

struct model {
    uint64_t ino;
    uint64_t nlookup;
    uint32_t nopen;
    uint32_t npins;
    struct node *pins[8]; /* the nodes pinned, for node_unpin */
    bool orphan;
};

static struct model m[INOS];

static bool referenced(const struct model *x)
{
    return x->nlookup || x->nopen || x->npins;
}

/* The model's side of a reference going: was it an orphan's last? */
static bool model_released(struct model *x)
{
    if (referenced(x) || !x->orphan)
        return false;
    x->orphan = false; /* destroyed */
    return true;
}

static uint64_t rand64(void)
{
    return (uint64_t)random() << 33 ^ (uint64_t)random() << 11 ^
           (uint64_t)random();
}

static void one_step(struct vol *v, struct model *x)
{
    switch (random() % 7) {
    case 0: {
        uint64_t c = 1 + random() % 3;
        node_add_lookup(v, x->ino, c);
        x->nlookup += c;
        break;
    }
    case 1: {
        uint64_t c = 1 + random() % 3;
        bool destroy = node_forget(v, x->ino, c);
        x->nlookup = c > x->nlookup ? 0 : x->nlookup - c;
        CHECK(destroy == model_released(x), "forget of %llx",
              (unsigned long long)x->ino);
        break;
    }
    case 2:
        if (x->nopen < 5) {
            node_open(v, x->ino, 1);
            x->nopen++;
        }
        break;
    case 3:
        if (x->nopen) {
            x->nopen--;
            bool destroy = node_open(v, x->ino, -1);
            CHECK(destroy == model_released(x), "close of %llx",
                  (unsigned long long)x->ino);
        }
        break;
    case 4:
        if (x->npins < 8) {
            struct node *n = node_pin(v, x->ino);
            CHECK(n && n->ino == x->ino, "pin of %llx",
                  (unsigned long long)x->ino);
            CHECK(!x->npins || n == x->pins[0], "one node while pinned");
            x->pins[x->npins++] = n;
        }
        break;
    case 5:
        if (x->npins) {
            struct node *n = x->pins[--x->npins];
            bool destroy = node_unpin(v, n);
            CHECK(destroy == model_released(x), "unpin of %llx",
                  (unsigned long long)x->ino);
        }
        break;
    case 6: {
        bool ref = node_mark_orphan_if_referenced(v, x->ino);
        CHECK(ref == referenced(x), "unlink of %llx",
              (unsigned long long)x->ino);
        if (ref)
            x->orphan = true;
        break;
    }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The table lists what the model holds: referenced and open inodes. */
static void check_lists(struct vol *v)
{
    size_t nref, nopen, want_ref = 0, want_open = 0, held = 0;
    uint64_t *ref = node_list_referenced(v, &nref);
    uint64_t *open = node_list_open(v, &nopen);
    CHECK(ref && open, "lists");
    qsort(ref, nref, sizeof(*ref), cmp_u64);
    qsort(open, nopen, sizeof(*open), cmp_u64);
    for (int i = 0; i < INOS; i++) {
        held += referenced(&m[i]);
        if (m[i].nlookup) {
            want_ref++;
            CHECK(bsearch(&m[i].ino, ref, nref, sizeof(*ref), cmp_u64),
                  "%llx referenced", (unsigned long long)m[i].ino);
        }
        if (m[i].nopen) {
            want_open++;
            CHECK(bsearch(&m[i].ino, open, nopen, sizeof(*open), cmp_u64),
                  "%llx open", (unsigned long long)m[i].ino);
        }
    }
    CHECK(nref == want_ref, "%zu referenced, want %zu", nref, want_ref);
    CHECK(nopen == want_open, "%zu open, want %zu", nopen, want_open);
    uint64_t inodes, bytes;
    node_table_usage(v, &inodes, &bytes);
    CHECK(inodes == held, "%llu inodes in the table, want %zu",
          (unsigned long long)inodes, held);
    free(ref);
    free(open);
}

/* Everything the model holds goes: the destroys come where it says. */
static void release_all(struct vol *v)
{
    for (int i = 0; i < INOS; i++) {
        struct model *x = &m[i];
        while (x->npins) {
            bool destroy = node_unpin(v, x->pins[--x->npins]);
            CHECK(destroy == model_released(x), "final unpin");
        }
        while (x->nopen) {
            x->nopen--;
            CHECK(node_open(v, x->ino, -1) == model_released(x),
                  "final close");
        }
        if (x->nlookup) {
            bool destroy = node_forget(v, x->ino, x->nlookup);
            x->nlookup = 0;
            CHECK(destroy == model_released(x), "final forget");
        }
    }
}

static void test_against_model(struct vol *v)
{
    srandom(17);
    for (int i = 0; i < INOS; i++)
        m[i].ino = i < 100 ? (uint64_t)i + 1 : rand64() | 1;
    for (int s = 0; s < STEPS; s++) {
        one_step(v, &m[random() % INOS]);
        if (s % 50000 == 0)
            check_lists(v);
    }
    check_lists(v);
    release_all(v);
    uint64_t inodes, bytes;
    node_table_usage(v, &inodes, &bytes);
    CHECK(inodes == 0, "%llu inodes left", (unsigned long long)inodes);
}

static void test_memory(struct vol *v)
{
    enum { N = 200000 };
    for (uint64_t ino = 1; ino <= N; ino++)
        node_add_lookup(v, ino, 1);
    uint64_t inodes, bytes;
    node_table_usage(v, &inodes, &bytes);
    CHECK(inodes == N, "%llu inodes held", (unsigned long long)inodes);
    CHECK(bytes <= N * 32ull, "%llu bytes for %d inodes",
          (unsigned long long)bytes, N);
    /* an inode in use costs a node while pinned, and only then */
    struct node *n = node_pin(v, 77);
    uint64_t pinned;
    node_table_usage(v, &inodes, &pinned);
    CHECK(pinned > bytes, "a pinned inode is a node");
    CHECK(!node_unpin(v, n), "not an orphan");
    node_table_usage(v, &inodes, &pinned);
    CHECK(pinned == bytes, "unpinned: an entry again");
    for (uint64_t ino = 1; ino <= N; ino++)
        CHECK(!node_forget(v, ino, 1), "forget %llu", (unsigned long long)ino);
    node_table_usage(v, &inodes, &bytes);
    CHECK(inodes == 0 && bytes <= 65536, "%llu inodes, %llu bytes left",
          (unsigned long long)inodes, (unsigned long long)bytes);
}

int main(void)
{
    char dir[256];
    struct sfs_store *st = testvol_create(dir, sizeof(dir), 4096, 0);
    static struct vol v;
    CHECK_RC(vol_start(&v, st, NULL));
    test_against_model(&v);
    test_memory(&v);
    CHECK_RC(vol_stop(&v));
    testvol_remove(st, dir);
    return test_done("test_node_table");
}
