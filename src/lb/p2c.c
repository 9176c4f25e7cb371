/* p2c.c: power of two choices. Two distinct eligible backends are drawn with probability
 * proportional to their effective weight; the one with the lower cost, peak-EWMA latency
 * (latency.h) times (inflight + 1) / weight, wins, and an exact tie goes to the first draw (so
 * an idle upstream is served exactly by weight). With no latency feedback every estimate is the
 * same and the cost is (inflight + 1) / weight. Sampling is O(1) when every backend is eligible
 * with the same weight, else one pass per draw. A backend that comes back forgets its samples. */
#include <stdlib.h>

#include "core/util.h"
#include "lb/latency.h"
#include "lb/lb_strategy.h"

/* A weighted draw among the eligible backends other than `skip` (SIZE_MAX: none), of which the
 * caller knows there is one. */
static size_t draw(const struct sp_lb_pick_in *in, size_t skip)
{
    uint64_t r;

    if (in->uniform && in->eligible == in->n) {
        size_t i = (size_t)sp_lb_random_below(in, skip == SIZE_MAX ? in->n : in->n - 1);

        return skip != SIZE_MAX && i >= skip ? i + 1 : i;
    }
    r = sp_lb_random_below(in, in->total - (skip == SIZE_MAX ? 0 : in->w[skip]));
    for (size_t i = 0; i < in->n; i++) {
        if (i == skip)
            continue;
        if (r < in->w[i])
            return i;
        r -= in->w[i];
    }
    return 0; /* unreachable: r < the total over the candidates */
}

static void p2c_pick(void *state, const struct sp_lb_pick_in *in, size_t *ret_index)
{
    const struct sp_lb_latencies *l = state;
    size_t a, b;

    a = draw(in, SIZE_MAX);
    if (in->eligible == 1) {
        *ret_index = a;
        return;
    }
    b = draw(in, a);
    *ret_index = sp_lb_latencies_cost(l, in, b) < sp_lb_latencies_cost(l, in, a) ? b : a;
}

const struct sp_lb_ops sp_lb_p2c_ops = {
    .name = "p2c",
    .new_state = sp_lb_latencies_new_state,
    .pick = p2c_pick,
    .report = sp_lb_latencies_report_op,
    .seed_rtt = sp_lb_latencies_seed_op,
    .reset = sp_lb_latencies_reset_op,
    .free_state = sp_lb_latencies_free_state,
};
