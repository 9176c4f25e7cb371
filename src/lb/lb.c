/* lb.c: the strategy name table and the struct sp_lb wrapper around one strategy's state. */
#include "lb/lb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

struct sp_lb {
    const struct sp_lb_ops *ops; /* borrowed; static */
    void *state;                 /* owned through ops->free_state; may be NULL */
    size_t nbackends;            /* the n every pick must be called with */
};

/* The explicit name table, indexed by enum sp_lb_kind. */
static const struct sp_lb_ops *const strategies[] = {
    [SP_LB_ROUND_ROBIN] = &sp_lb_round_robin_ops,
    [SP_LB_RANDOM] = &sp_lb_random_ops,
};

int sp_lb_new(enum sp_lb_kind kind, size_t nbackends, struct sp_lb **ret)
{
    const struct sp_lb_ops *ops;
    struct sp_lb *lb;
    int rv;

    if ((size_t)kind >= SP_ARRAY_LEN(strategies) || strategies[kind] == NULL || nbackends == 0)
        return -EINVAL;
    ops = strategies[kind];
    lb = sp_xcalloc(1, sizeof(*lb));
    lb->ops = ops;
    lb->nbackends = nbackends;
    rv = ops->new_state(nbackends, &lb->state);
    if (rv < 0)
        goto out_free_lb;
    *ret = lb;
    return 0;

out_free_lb:
    free(lb);
    return rv;
}

const struct sp_lb_ops *sp_lb_ops_by_name(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < SP_ARRAY_LEN(strategies); i++) {
        if (strategies[i] != NULL && strcmp(strategies[i]->name, name) == 0)
            return strategies[i];
    }
    return NULL;
}

int sp_lb_pick(struct sp_lb *lb, const struct sp_lb_backend *b, size_t n, uint64_t now_ns,
               size_t *ret_index)
{
    if (n != lb->nbackends)
        return -EINVAL;
    return lb->ops->pick(lb->state, b, n, now_ns, ret_index);
}

void sp_lb_free(struct sp_lb *lb)
{
    if (lb == NULL)
        return;
    lb->ops->free_state(lb->state);
    lb->state = NULL;
    free(lb);
}
