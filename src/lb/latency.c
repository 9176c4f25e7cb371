/* latency.c: peak-EWMA latency estimates (see latency.h for the model). */
#include "lb/latency.h"

#include <errno.h>
#include <stdlib.h>

#include "core/util.h"
#include "lb/lb_strategy.h"

int sp_lb_latencies_init(struct sp_lb_latencies *l, const struct sp_lb_params *p, size_t n)
{
    if (n > SIZE_MAX / sizeof(l->v[0]))
        return -ENOMEM;
    *l = (struct sp_lb_latencies){
        .v = sp_xcalloc(n, sizeof(l->v[0])),
        .n = n,
        .decay_ns = (double)(p->ewma_decay_ns ? p->ewma_decay_ns : SP_LB_EWMA_DECAY_DEFAULT_NS),
        .initial_ns =
            (double)(p->ewma_initial_ns ? p->ewma_initial_ns : SP_LB_EWMA_INITIAL_DEFAULT_NS),
    };
    return 0;
}

void sp_lb_latencies_fini(struct sp_lb_latencies *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* The mean cost of the measured backends other than i, or the initial estimate if none. */
static double mean_of_others(const struct sp_lb_latencies *l, size_t i)
{
    double sum = l->sum_cost_ns;
    size_t count = l->measured;

    if (l->v[i].measured) {
        sum -= l->v[i].cost_ns;
        count--;
    }
    return count > 0 && sum > 0 ? sum / (double)count : l->initial_ns;
}

double sp_lb_latencies_estimate(const struct sp_lb_latencies *l, size_t i, sp_time_t now)
{
    const struct sp_lb_latency *e = &l->v[i];
    double target, w;

    if (!e->measured)
        return e->seed_ns > 0 ? e->seed_ns : mean_of_others(l, i);
    target = mean_of_others(l, i);
    w = sp_lb_exp_neg((double)(now > e->stamp ? now - e->stamp : 0) / l->decay_ns);
    return target + (e->cost_ns - target) * w;
}

static void set_cost(struct sp_lb_latencies *l, size_t i, double cost_ns)
{
    struct sp_lb_latency *e = &l->v[i];

    if (e->measured)
        l->sum_cost_ns -= e->cost_ns;
    else
        l->measured++;
    e->measured = true;
    e->cost_ns = cost_ns;
    l->sum_cost_ns += cost_ns;
    if (l->sum_cost_ns < 0)
        l->sum_cost_ns = 0; /* rounding drift */
}

void sp_lb_latencies_observe(struct sp_lb_latencies *l, size_t i, sp_time_t latency_ns, bool ok,
                             sp_time_t now)
{
    struct sp_lb_latency *e = &l->v[i];
    double sample = latency_ns > 0 ? (double)latency_ns : 1;
    double cost, w;

    if (!ok) {
        /* A fast failure must not attract traffic: count it as at least twice the estimate. */
        double twice = 2 * sp_lb_latencies_estimate(l, i, now);

        sample = sample > twice ? sample : twice;
    }
    if (!e->measured) {
        cost = sample;
    } else {
        w = sp_lb_exp_neg((double)(now > e->stamp ? now - e->stamp : 0) / l->decay_ns);
        cost = sample > e->cost_ns ? sample : e->cost_ns * w + sample * (1 - w);
    }
    set_cost(l, i, cost);
    if (now > e->stamp)
        e->stamp = now;
}

void sp_lb_latencies_seed(struct sp_lb_latencies *l, size_t i, sp_time_t rtt_ns)
{
    l->v[i].seed_ns = (double)rtt_ns;
}

void sp_lb_latencies_forget(struct sp_lb_latencies *l, size_t i)
{
    struct sp_lb_latency *e = &l->v[i];

    if (e->measured) {
        l->sum_cost_ns -= e->cost_ns;
        l->measured--;
    }
    e->measured = false;
    e->cost_ns = 0;
}

int sp_lb_latencies_new_state(const struct sp_lb_params *p, size_t n, void **ret_state)
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

void sp_lb_latencies_report_op(void *state, size_t index, sp_time_t latency_ns, bool ok,
                               sp_time_t now)
{
    sp_lb_latencies_observe(state, index, latency_ns, ok, now);
}

void sp_lb_latencies_seed_op(void *state, size_t index, sp_time_t rtt_ns)
{
    sp_lb_latencies_seed(state, index, rtt_ns);
}

void sp_lb_latencies_reset_op(void *state, size_t index, sp_time_t now)
{
    (void)now;
    sp_lb_latencies_forget(state, index);
}

void sp_lb_latencies_free_state(void *state)
{
    struct sp_lb_latencies *l = state;

    if (l == NULL)
        return;
    sp_lb_latencies_fini(l);
    free(l);
}

double sp_lb_latencies_cost(const struct sp_lb_latencies *l, const struct sp_lb_pick_in *in,
                            size_t i)
{
    return sp_lb_latencies_estimate(l, i, in->now) * ((double)in->b[i].inflight + 1) /
           (double)in->w[i];
}
