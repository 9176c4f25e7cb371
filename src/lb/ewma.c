/* ewma.c: the eligible backend with the lowest expected cost, peak-EWMA latency (latency.h) times
 * (inflight + 1) / weight, over all backends. The in-flight factor keeps a fast backend from
 * taking every request until its latency rises; ties are broken at random. A backend that comes
 * back after being down forgets its old samples. */
#include <stdlib.h>

#include "core/util.h"
#include "lb/latency.h"
#include "lb/lb_strategy.h"

static void ewma_pick(void *state, const struct sp_lb_pick_in *in, size_t *ret_index)
{
    const struct sp_lb_latencies *l = state;
    double best_cost = 0;
    size_t best = SIZE_MAX, ties = 0;

    for (size_t i = 0; i < in->n; i++) {
        double c;

        if (in->w[i] == 0)
            continue;
        c = sp_lb_latencies_cost(l, in, i);
        if (best == SIZE_MAX || c < best_cost) {
            best = i;
            best_cost = c;
            ties = 1;
        } else if (c == best_cost && sp_lb_random_below(in, ++ties) == 0) {
            best = i; /* reservoir sampling: each tied backend kept with probability 1/ties */
        }
    }
    *ret_index = best;
}

const struct sp_lb_ops sp_lb_ewma_ops = {
    .name = "ewma",
    .new_state = sp_lb_latencies_new_state,
    .pick = ewma_pick,
    .report = sp_lb_latencies_report_op,
    .seed_rtt = sp_lb_latencies_seed_op,
    .reset = sp_lb_latencies_reset_op,
    .free_state = sp_lb_latencies_free_state,
};
