/*
 * test_restore_plan.c - the pure logic of an incremental restore: the
 * name tree's index (paths, hard links, a directory met twice), the state
 * file's round trip (odd names) and its refusal of malformed contents,
 * the merge of an old tree with a level's dumped directories, and the
 * take-away plan: renames and moves are staged, deletions unlinked,
 * removed directories doomed whole with their surviving contents staged
 * out first, and files whose contents are on the dump lose all old links.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "restore.h"

static void add(struct rst_tree *t, uint32_t dir, uint32_t ino, uint8_t dt,
                const char *name)
{
    struct rst_dir *d = rst_tree_dir(t, dir);
    if (!d) {
        d = rst_tree_put_dir(t, dir);
        CHECK_RC(rst_dir_add(d, dir, DT_DIR, "."));
    }
    CHECK_RC(rst_dir_add(d, ino, dt, name));
}

static void mkdir_in(struct rst_tree *t, uint32_t parent, uint32_t ino,
                     const char *name)
{
    add(t, parent, ino, DT_DIR, name);
    struct rst_dir *d = rst_tree_put_dir(t, ino);
    CHECK_RC(rst_dir_add(d, ino, DT_DIR, "."));
    CHECK_RC(rst_dir_add(d, parent, DT_DIR, ".."));
}

/*
 * The tree of level 0:
 *   2 /        3 a/   4 a/f   5 a/g (also b/g2)   6 b/   7 b/sub/
 *   8 b/sub/x  9 gone  10 c/ (removed later)  11 c/keep  12 c/drop
 */
static void level0(struct rst_tree *t)
{
    memset(t, 0, sizeof(*t));
    mkdir_in(t, 2, 3, "a");
    add(t, 3, 4, DT_REG, "f");
    add(t, 3, 5, DT_REG, "g");
    mkdir_in(t, 2, 6, "b");
    add(t, 6, 5, DT_REG, "g2");
    mkdir_in(t, 6, 7, "sub");
    add(t, 7, 8, DT_REG, "x");
    add(t, 2, 9, DT_REG, "gone");
    mkdir_in(t, 2, 10, "c");
    add(t, 10, 11, DT_REG, "keep");
    add(t, 10, 12, DT_REG, "drop");
}

static void test_index(void)
{
    struct rst_tree t;
    struct rst_index ix;
    char path[256];
    level0(&t);
    /* a malformed dump: directory 7 also listed in a/ - one name only */
    add(&t, 3, 7, DT_DIR, "again");
    CHECK_RC(rst_index_build(&t, &ix));
    /* breadth first from the root: a/ is read before b/ */
    CHECK(rst_index_path(&ix, 8, path, sizeof(path)) == 0 &&
          !strcmp(path, "a/again/x"), "path of 8: %s", path);
    CHECK(rst_index_path(&ix, 4, path, sizeof(path)) == 0 &&
          !strcmp(path, "a/f"), "path of 4: %s", path);
    CHECK(rst_index_get(&ix, 5)->nlinks == 2, "two links of 5");
    CHECK(rst_index_get(&ix, 7)->nlinks == 1, "a directory has one name");
    CHECK(rst_index_path(&ix, 2, path, sizeof(path)) == 0 && !path[0],
          "the root's path is empty");
    CHECK(rst_index_path(&ix, 99, path, sizeof(path)) == -ENOENT,
          "unknown inode");
    CHECK(rst_index_path(&ix, 8, path, 5) == -ENAMETOOLONG, "short buffer");
    CHECK(ix.order[0] == 2, "the walk starts at the root");
    rst_index_free(&ix);
    rst_tree_free(&t);
}

static void test_state_file(void)
{
    char dir[] = "/tmp/test_restore_plan.XXXXXX";
    CHECK_RC(mkdtemp(dir) ? 0 : -errno);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    struct rst_state s = { .date = 1795349851, .level = 3, .has_uuid = true };
    for (int i = 0; i < 16; i++)
        s.uuid[i] = (uint8_t)(i * 17);
    level0(&s.tree);
    const char *odd = "a b%c\n\td\x7f \xc3\xa9t\xc3\xa9";
    add(&s.tree, 2, 20, DT_REG, odd);
    CHECK_RC(rst_state_save(fd, &s));
    struct rst_state l;
    CHECK_RC(rst_state_load(fd, &l));
    CHECK(l.date == s.date && l.level == 3 && l.has_uuid &&
          !memcmp(l.uuid, s.uuid, 16), "header round trip");
    const struct rst_dir *root = rst_tree_dir(&l.tree, 2);
    bool found = false;
    for (size_t i = 0; root && i < root->n; i++)
        found |= root->ents[i].ino == 20 && !strcmp(root->ents[i].name, odd);
    CHECK(found, "an odd name survives the state file");
    CHECK(l.tree.ndirs == s.tree.ndirs, "%zu directories", l.tree.ndirs);
    rst_state_free(&l);

    /* malformed: refused whole */
    const char *bad[] = {
        "nonsense\n",
        "snapfs-restoresymtable 1\ndate 1 level 0 uuid -\ne 3 4 x\n",
        "snapfs-restoresymtable 1\ndate 1 level 0 uuid -\nd 2\ne 3 4 a/b\n",
        "snapfs-restoresymtable 1\ndate 1 level 0 uuid -\nd 2\ne 3 4 %zz\n",
        "snapfs-restoresymtable 1\ndate 1 level 0 uuid -\nd 2\ne 3 4 x",
        "snapfs-restoresymtable 1\ndate 1 level 0 uuid -\nd 5\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int f = openat(fd, RST_STATE_FILE, O_WRONLY | O_TRUNC);
        CHECK(write(f, bad[i], strlen(bad[i])) == (ssize_t)strlen(bad[i]),
              "write");
        close(f);
        CHECK(rst_state_load(fd, &l) == -EBADMSG, "malformed state %zu", i);
    }
    unlinkat(fd, RST_STATE_FILE, 0);
    CHECK(rst_state_load(fd, &l) == -ENOENT, "no state file");
    rst_state_free(&s);
    close(fd);
    rmdir(dir);
}

/*
 * Level 1, made from level 0 by:
 *   mv a/f b/f.renamed      (4: a file renamed into another directory)
 *   mv b/sub a/sub          (7: a directory moved)
 *   rm gone                 (9 no longer in use)
 *   rm b/g2                 (5 keeps a/g: a link removed)
 *   mv c/keep keep; rm -r c (10 and 12 go; 11 survives, moved out)
 *   echo >>a/g              (5 changed: on the dump)
 *   mkdir new; echo >new/n  (13, 14 new)
 * Dumped: the root, a, b, new (changed directories), 5, 13, 14.
 */
static void level1(struct rst_tree *dumped, uint8_t *used, uint8_t *dmap)
{
    memset(dumped, 0, sizeof(*dumped));
    mkdir_in(dumped, 2, 3, "a");
    add(dumped, 3, 5, DT_REG, "g");
    add(dumped, 3, 7, DT_DIR, "sub");
    mkdir_in(dumped, 2, 6, "b");
    add(dumped, 6, 4, DT_REG, "f.renamed");
    add(dumped, 2, 11, DT_REG, "keep");
    mkdir_in(dumped, 2, 13, "new");
    add(dumped, 13, 14, DT_REG, "n");
    uint32_t in_use[] = { 2, 3, 4, 5, 6, 7, 8, 11, 13, 14 };
    for (size_t i = 0; i < sizeof(in_use) / sizeof(in_use[0]); i++)
        dump_map_set(used, in_use[i]);
    uint32_t on_dump[] = { 2, 3, 5, 6, 13, 14 };
    for (size_t i = 0; i < sizeof(on_dump) / sizeof(on_dump[0]); i++)
        dump_map_set(dmap, on_dump[i]);
}

static const struct rst_op *find_op(const struct rst_plan *p, uint32_t ino,
                                    const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->ops[i].ino == ino && !strcmp(p->ops[i].name, name))
            return &p->ops[i];
    return NULL;
}

static void test_merge_and_plan(void)
{
    struct rst_tree old, dumped, merged;
    uint8_t used[DUMP_TP_BSIZE] = { 0 }, dmap[DUMP_TP_BSIZE] = { 0 };
    level0(&old);
    level1(&dumped, used, dmap);
    CHECK_RC(rst_merge(&old, &dumped, used, dmap, sizeof(used), &merged));
    CHECK(rst_tree_dir(&merged, 10) == NULL, "c/ is gone");
    CHECK(rst_tree_dir(&merged, 7) != NULL, "sub/ (not dumped) is kept");
    CHECK(rst_tree_dir(&merged, 7)->n == 3, "with its entries");

    struct rst_index oix, nix;
    CHECK_RC(rst_index_build(&old, &oix));
    CHECK_RC(rst_index_build(&merged, &nix));
    char path[256];
    CHECK(rst_index_path(&nix, 8, path, sizeof(path)) == 0 &&
          !strcmp(path, "a/sub/x"), "x follows its directory: %s", path);

    struct rst_plan p;
    CHECK_RC(rst_plan_takeaway(&oix, &nix, dmap, sizeof(dmap), &p));
    const struct rst_op *op;
    CHECK((op = find_op(&p, 4, "f")) && op->kind == RST_OP_STAGE &&
          op->parent == 3, "a renamed file is staged");
    CHECK((op = find_op(&p, 7, "sub")) && op->kind == RST_OP_STAGE,
          "a moved directory is staged");
    CHECK((op = find_op(&p, 9, "gone")) && op->kind == RST_OP_UNLINK,
          "a removed file is unlinked");
    CHECK((op = find_op(&p, 5, "g")) && op->kind == RST_OP_UNLINK,
          "a file on the dump loses its old links");
    CHECK((op = find_op(&p, 5, "g2")) && op->kind == RST_OP_UNLINK,
          "all of them");
    CHECK((op = find_op(&p, 10, "c")) && op->kind == RST_OP_DOOM,
          "a removed directory is doomed");
    CHECK((op = find_op(&p, 11, "keep")) && op->kind == RST_OP_STAGE,
          "a survivor inside it is staged out");
    CHECK(!find_op(&p, 12, "drop"), "what is inside goes with it");
    CHECK(!find_op(&p, 8, "x"), "what moves with its directory stays");
    CHECK(p.n == 7, "%zu operations", p.n);
    /* parents first: the doomed directory before its staged child */
    size_t doom = 0, child = 0;
    for (size_t i = 0; i < p.n; i++) {
        if (p.ops[i].ino == 10)
            doom = i;
        if (p.ops[i].ino == 11)
            child = i;
    }
    CHECK(doom < child, "c/ (%zu) before c/keep (%zu)", doom, child);

    /* survival rules */
    CHECK(rst_survives(rst_index_get(&oix, 3), rst_index_get(&nix, 3), dmap,
                       sizeof(dmap)), "a dumped directory survives");
    CHECK(!rst_survives(rst_index_get(&oix, 5), rst_index_get(&nix, 5), dmap,
                        sizeof(dmap)), "a dumped file does not");
    CHECK(!rst_survives(rst_index_get(&oix, 9), NULL, dmap, sizeof(dmap)),
          "a removed one does not");

    rst_plan_free(&p);
    rst_index_free(&oix);
    rst_index_free(&nix);
    rst_tree_free(&old);
    rst_tree_free(&dumped);
    rst_tree_free(&merged);
}

/* A file replaced by a directory under the same inode number (reused). */
static void test_type_change(void)
{
    struct rst_tree old = { 0 }, dumped = { 0 }, merged;
    uint8_t used[DUMP_TP_BSIZE] = { 0 }, dmap[DUMP_TP_BSIZE] = { 0 };
    add(&old, 2, 5, DT_REG, "thing");
    mkdir_in(&dumped, 2, 5, "thing");
    dump_map_set(used, 2);
    dump_map_set(used, 5);
    dump_map_set(dmap, 2);
    dump_map_set(dmap, 5);
    CHECK_RC(rst_merge(&old, &dumped, used, dmap, sizeof(used), &merged));
    struct rst_index oix, nix;
    CHECK_RC(rst_index_build(&old, &oix));
    CHECK_RC(rst_index_build(&merged, &nix));
    struct rst_plan p;
    CHECK_RC(rst_plan_takeaway(&oix, &nix, dmap, sizeof(dmap), &p));
    CHECK(p.n == 1 && p.ops[0].kind == RST_OP_UNLINK,
          "the old file is removed to make room for the directory");
    rst_plan_free(&p);
    rst_index_free(&oix);
    rst_index_free(&nix);
    rst_tree_free(&old);
    rst_tree_free(&dumped);
    rst_tree_free(&merged);
}

int main(void)
{
    test_index();
    test_state_file();
    test_merge_and_plan();
    test_type_change();
    return test_done("test_restore_plan");
}
