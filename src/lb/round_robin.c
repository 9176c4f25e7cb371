/* round_robin.c: smooth weighted round-robin, as in nginx (ngx_http_upstream_get_peer): on each
 * pick every eligible backend's current weight grows by its effective weight, the largest current
 * weight wins, and the winner pays back the total. Heavy backends are interleaved with light ones
 * instead of served in bursts, and with equal weights this is plain in-order rotation.
 *
 * Two names, one algorithm. Every strategy honours weights (DESIGN.md §4), and a "plain" rotation
 * that honours weights can only do so by sending a backend `weight` picks in a row, the burst the
 * smooth variant exists to avoid. So `round_robin` is this algorithm (with the equal weights most
 * configs have, it is exactly the plain rotation), and `weighted_round_robin` is the same ops
 * under the name that states the weighting, so either spelling in a config means the same. */
#include <errno.h>
#include <stdlib.h>

#include "core/util.h"
#include "lb/lb_strategy.h"

struct rr_state {
    size_t n;          /* number of backends */
    int64_t current[]; /* per backend; sums to 0 over eligible backends after each pick */
};

static int rr_new_state(const struct sp_lb_params *p, size_t n, void **ret_state)
{
    struct rr_state *s;

    (void)p;
    if (n > (SIZE_MAX - sizeof(*s)) / sizeof(s->current[0]))
        return -ENOMEM;
    s = sp_xcalloc(1, sizeof(*s) + n * sizeof(s->current[0]));
    s->n = n;
    *ret_state = s;
    return 0;
}

static void rr_pick(void *state, const struct sp_lb_pick_in *in, size_t *ret_index)
{
    struct rr_state *s = state;
    size_t best = SIZE_MAX;

    /* |current| stays below total <= n * SP_LB_WEIGHT_MAX * SP_LB_WEIGHT_SCALE: no overflow. */
    for (size_t i = 0; i < in->n; i++) {
        if (in->w[i] == 0) {
            /* Rejoin from zero when it comes back, without a debt or a head start. */
            s->current[i] = 0;
            continue;
        }
        s->current[i] += (int64_t)in->w[i];
        if (best == SIZE_MAX || s->current[i] > s->current[best])
            best = i; /* ties go to the lowest index */
    }
    s->current[best] -= (int64_t)in->total;
    *ret_index = best;
}

static void rr_free_state(void *state)
{
    free(state);
}

const struct sp_lb_ops sp_lb_round_robin_ops = {
    .name = "round_robin",
    .new_state = rr_new_state,
    .pick = rr_pick,
    .free_state = rr_free_state,
};

const struct sp_lb_ops sp_lb_weighted_round_robin_ops = {
    .name = "weighted_round_robin",
    .new_state = rr_new_state,
    .pick = rr_pick,
    .free_state = rr_free_state,
};
