/* least_conn.c: the eligible backend with the fewest requests in flight relative to its weight,
 * load = (inflight + 1) / weight. The +1 counts the request being placed, so an idle heavy backend
 * beats an idle light one, and loads compare exactly by cross-multiplying (both factors fit: see
 * SP_LB_WEIGHT_MAX). Ties are broken uniformly at random, not by index: every worker starting
 * from idle would otherwise herd onto backend 0. Stateless. */
#include <stddef.h>

#include "lb/lb_strategy.h"

static int lc_new_state(const struct sp_lb_params *p, size_t n, void **ret_state)
{
    (void)p;
    (void)n;
    *ret_state = NULL;
    return 0;
}

/* <0, 0, >0 as backend i's load is below, equal to or above backend j's. */
static int load_cmp(const struct sp_lb_pick_in *in, size_t i, size_t j)
{
    uint64_t li = ((uint64_t)in->b[i].inflight + 1) * in->w[j];
    uint64_t lj = ((uint64_t)in->b[j].inflight + 1) * in->w[i];

    return li < lj ? -1 : li > lj;
}

static void lc_pick(void *state, const struct sp_lb_pick_in *in, size_t *ret_index)
{
    size_t best = SIZE_MAX, ties = 0, r;

    (void)state;
    for (size_t i = 0; i < in->n; i++) {
        int c;

        if (in->w[i] == 0)
            continue;
        c = best == SIZE_MAX ? -1 : load_cmp(in, i, best);
        if (c < 0) {
            best = i;
            ties = 1;
        } else if (c == 0) {
            ties++;
        }
    }
    if (ties == 1) {
        *ret_index = best;
        return;
    }
    /* Second pass only when tied: the r-th backend at the lowest load, from the first one on. */
    r = (size_t)sp_lb_random_below(in, ties);
    for (size_t i = best; i < in->n; i++) {
        if (in->w[i] != 0 && load_cmp(in, i, best) == 0 && r-- == 0) {
            *ret_index = i;
            return;
        }
    }
    *ret_index = best; /* unreachable: `ties` backends tie with best from best on */
}

static void lc_free_state(void *state)
{
    (void)state;
}

const struct sp_lb_ops sp_lb_least_conn_ops = {
    .name = "least_conn",
    .new_state = lc_new_state,
    .pick = lc_pick,
    .free_state = lc_free_state,
};
