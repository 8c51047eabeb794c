/*
 * relation.c - what a vault relationship's update chooses: which source
 * snapshots to back up and which vaulted ones its policy's retention
 * forgets (see relation.h).  Pure functions over lists: no I/O.
 *
 * Guarantees: only snapshots whose label (the name's part before its
 * first dot, as snapshot policies name them) has a rule in the policy
 * are ever chosen, either way; a vaulted snapshot of another volume, or
 * one of this volume without such a label (a manual `vault backup`), is
 * never forgotten; nothing older than what the vault already holds of
 * the volume under the policy's labels is sent again, so retention and
 * updates never undo each other (a manual backup of a newer snapshot
 * does not make the update skip the policy's); the newest KEEP of a
 * label are never forgotten.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "relation.h"

static int rule_of(const struct vault_keep_policy *k, const char *label)
{
    for (uint32_t i = 0; i < k->nlabels; i++)
        if (!strcmp(k->labels[i].label, label))
            return (int)i;
    return -1;
}

bool vault_rel_selects(const struct vault_rel_policy *p, const char *name)
{
    char label[SFS_NAME_MAX + 1];
    vault_label_of(name, label);
    return rule_of(&p->keep, label) >= 0;
}

static bool has_rule_label(const struct vault_keep_policy *k,
                           const struct vault_manifest *m)
{
    for (uint32_t i = 0; i < m->nlabels; i++)
        if (rule_of(k, m->labels[i]) >= 0)
            return true;
    return false;
}

/* Source snapshots, newest first. */
static int source_newest_first(const void *a, const void *b)
{
    const struct vault_rel_source *x = *(const struct vault_rel_source *const *)a;
    const struct vault_rel_source *y = *(const struct vault_rel_source *const *)b;
    return x->epoch > y->epoch ? -1 : x->epoch < y->epoch;
}

int vault_rel_to_back_up(const struct vault_rel_policy *p,
                         const uint8_t volume[16],
                         const struct vault_rel_source *src, size_t n,
                         const struct vault_snapshot *vs, size_t nv,
                         bool *pick)
{
    uint64_t newest = 0; /* of the policy's own: not a manual backup's */
    for (size_t i = 0; i < nv; i++)
        if (!memcmp(vs[i].m.volume, volume, 16) && vs[i].m.epoch > newest &&
            has_rule_label(&p->keep, &vs[i].m))
            newest = vs[i].m.epoch;
    const struct vault_rel_source **order = malloc((n + 1) * sizeof(*order));
    if (!order)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        order[i] = &src[i];
    if (n)
        qsort(order, n, sizeof(*order), source_newest_first);
    uint32_t taken[VAULT_KEEP_LABELS] = { 0 };
    int picked = 0;
    for (size_t i = 0; i < n; i++) {
        const struct vault_rel_source *s = order[i];
        char label[SFS_NAME_MAX + 1];
        vault_label_of(s->name, label);
        int r = rule_of(&p->keep, label);
        bool take = r >= 0 && s->epoch > newest &&
                    taken[r] < p->keep.labels[r].keep;
        if (take)
            taken[r]++;
        pick[s - src] = take;
        picked += take;
    }
    free(order);
    return picked;
}

int vault_rel_to_forget(const struct vault_rel_policy *p,
                        const uint8_t volume[16],
                        const struct vault_snapshot *vs, size_t nv,
                        bool *forget)
{
    /* The policy's snapshots of the volume, on their own, under its
     * label rules only (forget.c's walk, newest first). */
    struct vault_snapshot *mine = calloc(nv + 1, sizeof(*mine));
    size_t *at = malloc((nv + 1) * sizeof(*at));
    unsigned *keep = calloc(nv + 1, sizeof(*keep));
    int rc = mine && at && keep ? 0 : -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; !rc && i < nv; i++) {
        forget[i] = false;
        if (memcmp(vs[i].m.volume, volume, 16) ||
            !has_rule_label(&p->keep, &vs[i].m))
            continue;
        mine[n] = vs[i];
        at[n++] = i;
    }
    struct vault_keep_policy labels_only = { .nlabels = p->keep.nlabels };
    memcpy(labels_only.labels, p->keep.labels, sizeof(labels_only.labels));
    if (!rc)
        rc = vault_policy_apply(&labels_only, mine, n, keep);
    int count = 0;
    for (size_t j = 0; !rc && j < n; j++)
        if (!keep[j]) {
            forget[at[j]] = true;
            count++;
        }
    free(mine);
    free(at);
    free(keep);
    return rc ? rc : count;
}
