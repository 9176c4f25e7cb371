/* random.c: weighted random choice among eligible backends. Stateless: each pick draws from
 * sp_random_u64 (per-thread generator) and maps the draw onto the cumulative effective weights. */
#include <stddef.h>

#include "lb/lb_strategy.h"

static int random_new_state(const struct sp_lb_params *p, size_t n, void **ret_state)
{
    (void)p;
    (void)n;
    *ret_state = NULL;
    return 0;
}

static void random_pick(void *state, const struct sp_lb_pick_in *in, size_t *ret_index)
{
    (void)state;
    *ret_index = sp_lb_pick_weighted(in);
}

static void random_free_state(void *state)
{
    (void)state;
}

const struct sp_lb_ops sp_lb_random_ops = {
    .name = "random",
    .new_state = random_new_state,
    .pick = random_pick,
    .free_state = random_free_state,
};
