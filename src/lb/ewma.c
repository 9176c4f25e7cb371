/* ewma.c: the eligible backend with the lowest expected cost, peak-EWMA latency (latency.h) times
 * (inflight + 1) / weight, over all backends. The in-flight factor keeps a fast backend from
 * taking every request until its latency rises; ties are broken at random. A backend that comes
 * back after being down forgets its old samples. */
#include <stdlib.h>

#include "core/util.h"
#include "lb/latency.h"
#include "lb/lb_strategy.h"

static int ewma_new_state(const struct sp_lb_params *p, size_t n, void **ret_state)
{
    struct sp_lb_latencies *l = sp_xcalloc(1, sizeof(*l));
    int rv = sp_lb_latencies_init(l, p, n);

    if (rv < 0)
        goto out_free_state;
    *ret_state = l;
    return 0;

out_free_state:
    free(l);
    return rv;
}

static double cost(const struct sp_lb_latencies *l, const struct sp_lb_pick_in *in, size_t i)
{
    return sp_lb_latencies_estimate(l, i, in->now) * ((double)in->b[i].inflight + 1) /
           (double)in->w[i];
}

static void ewma_pick(void *state, const struct sp_lb_pick_in *in, size_t *ret_index)
{
    const struct sp_lb_latencies *l = state;
    double best_cost = 0;
    size_t best = SIZE_MAX, ties = 0;

    for (size_t i = 0; i < in->n; i++) {
        double c;

        if (in->w[i] == 0)
            continue;
        c = cost(l, in, i);
        if (best == SIZE_MAX || c < best_cost) {
            best = i;
            best_cost = c;
            ties = 1;
        } else if (c == best_cost && sp_lb_random_below(++ties) == 0) {
            best = i; /* reservoir sampling: each tied backend kept with probability 1/ties */
        }
    }
    *ret_index = best;
}

static void ewma_report(void *state, size_t index, sp_time_t latency_ns, bool ok, sp_time_t now)
{
    sp_lb_latencies_observe(state, index, latency_ns, ok, now);
}

static void ewma_seed_rtt(void *state, size_t index, sp_time_t rtt_ns)
{
    sp_lb_latencies_seed(state, index, rtt_ns);
}

static void ewma_reset(void *state, size_t index, sp_time_t now)
{
    (void)now;
    sp_lb_latencies_forget(state, index);
}

static void ewma_free_state(void *state)
{
    struct sp_lb_latencies *l = state;

    if (l == NULL)
        return;
    sp_lb_latencies_fini(l);
    free(l);
}

const struct sp_lb_ops sp_lb_ewma_ops = {
    .name = "ewma",
    .new_state = ewma_new_state,
    .pick = ewma_pick,
    .report = ewma_report,
    .seed_rtt = ewma_seed_rtt,
    .reset = ewma_reset,
    .free_state = ewma_free_state,
};
