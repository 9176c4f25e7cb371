/* latency.h: per-backend peak-EWMA latency estimates, shared by the p2c and ewma strategies.
 * Only src/lb includes this header. Pure: time is a parameter.
 *
 * Peak EWMA (as in Finagle's and Linkerd's balancers): a sample above the estimate replaces it at
 * once (a backend that slows down is avoided at its first slow response), a sample below it pulls
 * the estimate down by an average whose weight decays with the time since the last sample,
 * w = e^(-dt / decay). Between samples the estimate relaxes towards the mean of the other
 * backends with the same time constant, so a backend that was avoided for being slow is tried
 * again once its bad sample is old, but never looks better than a typical backend while unmeasured
 * (no herd onto it). A never-measured backend is estimated at its seeded QUIC RTT, else the mean
 * of the measured ones, else the configured initial latency: optimistic, not infinitely. */
#ifndef SP_LB_LATENCY_H
#define SP_LB_LATENCY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/time.h"
#include "lb/lb.h"

struct sp_lb_latency {
    double cost_ns;  /* the estimate at `stamp`, when measured */
    double seed_ns;  /* QUIC RTT seed; 0 = none */
    sp_time_t stamp; /* time of the last sample */
    bool measured;   /* at least one sample since creation or the last forget */
};

struct sp_lb_latencies {
    struct sp_lb_latency *v; /* owned array of n */
    size_t n;
    size_t measured;    /* backends with measured == true */
    double sum_cost_ns; /* sum of cost_ns over measured backends */
    double decay_ns;    /* time constant */
    double initial_ns;  /* estimate when nothing is measured */
};

/* Allocates n estimates. Returns 0, or -ENOMEM when n is too large. */
int sp_lb_latencies_init(struct sp_lb_latencies *l, const struct sp_lb_params *p, size_t n);

/* Frees the estimates. A zeroed struct is fine. */
void sp_lb_latencies_fini(struct sp_lb_latencies *l);

/* Returns backend i's latency estimate at now, in ns (> 0). */
double sp_lb_latencies_estimate(const struct sp_lb_latencies *l, size_t i, sp_time_t now);

/* Feeds one sample for backend i; a failure counts as at least twice the current estimate. */
void sp_lb_latencies_observe(struct sp_lb_latencies *l, size_t i, sp_time_t latency_ns, bool ok,
                             sp_time_t now);

/* Seeds backend i's estimate with a QUIC RTT until its first sample. */
void sp_lb_latencies_seed(struct sp_lb_latencies *l, size_t i, sp_time_t rtt_ns);

/* Forgets backend i's samples (it was down: they are stale); keeps its seed. */
void sp_lb_latencies_forget(struct sp_lb_latencies *l, size_t i);

struct sp_lb_pick_in;

/* Load score of backend i for a pick: estimated latency x (in-flight + 1) / effective weight;
 * lower is better (p2c and ewma). */
double sp_lb_latencies_cost(const struct sp_lb_latencies *l, const struct sp_lb_pick_in *in,
                            size_t i);

/* The strategy-state hooks shared by the latency-driven strategies (p2c, ewma): their state is a
 * struct sp_lb_latencies, so allocation, feedback, seeding, reset and free are the same. */
int sp_lb_latencies_new_state(const struct sp_lb_params *p, size_t n, void **ret_state);
void sp_lb_latencies_report_op(void *state, size_t index, sp_time_t latency_ns, bool ok,
                               sp_time_t now);
void sp_lb_latencies_seed_op(void *state, size_t index, sp_time_t rtt_ns);
void sp_lb_latencies_reset_op(void *state, size_t index, sp_time_t now);
void sp_lb_latencies_free_state(void *state);

#endif
