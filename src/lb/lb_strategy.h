/* lb_strategy.h: the interface between the balancer wrapper (lb.c) and one strategy, and the
 * helpers strategies share (lb_util.c). Only src/lb includes this header.
 *
 * The wrapper computes what every strategy needs once per pick (struct sp_lb_pick_in) and calls
 * the strategy only when at least one backend is eligible, so a strategy's pick never fails. */
#ifndef SP_LB_LB_STRATEGY_H
#define SP_LB_LB_STRATEGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/time.h"
#include "lb/lb.h"

/* Effective weights are config weights times this, so a slow start ramp keeps integer precision. */
#define SP_LB_WEIGHT_SCALE 1024u

/* Everything a strategy sees for one pick. Built by lb.c, valid for the call only. */
struct sp_lb_pick_in {
    const struct sp_lb_backend *b;     /* borrowed: the caller's view, b[0..n) */
    const uint64_t *w;                 /* borrowed: effective weights, 0 = not eligible, else
                                          <= SP_LB_WEIGHT_MAX * SP_LB_WEIGHT_SCALE */
    const uint64_t *id_hash;           /* borrowed: stable identity hash of each backend */
    size_t n;                          /* number of backends */
    size_t eligible;                   /* backends with w > 0; always >= 1 */
    uint64_t total;                    /* sum of w */
    bool uniform;                      /* every eligible backend has the same w */
    bool has_key;                      /* key_hash is meaningful */
    uint64_t key_hash;                 /* sp_lb_hash() of the affinity key */
    sp_time_t now;                     /* the caller's clock, ns */
    uint64_t (*random_u64)(void *ctx); /* the balancer's random source (never NULL) */
    void *random_ctx;
};

struct sp_lb_ops {
    const char *name; /* config spelling, e.g. "round_robin" */
    bool uses_key;    /* picks by affinity key */
    /* Allocates per-balancer state for n >= 1 backends. Returns 0 and writes *ret_state (NULL for
     * stateless strategies), or -ENOMEM when n is too large. */
    int (*new_state)(const struct sp_lb_params *p, size_t n, void **ret_state);
    /* Writes the index of an eligible backend (in->w[index] > 0) to *ret_index. */
    void (*pick)(void *state, const struct sp_lb_pick_in *in, size_t *ret_index);
    /* Optional (NULL = ignored): latency feedback, index < n. */
    void (*report)(void *state, size_t index, sp_time_t latency_ns, bool ok, sp_time_t now);
    /* Optional: a QUIC RTT to seed an unmeasured backend's latency, index < n. */
    void (*seed_rtt)(void *state, size_t index, sp_time_t rtt_ns);
    /* Optional: backend index became eligible again at time now; forget what went stale. */
    void (*reset)(void *state, size_t index, sp_time_t now);
    /* Frees what new_state allocated. NULL is fine. */
    void (*free_state)(void *state);
};

/* Returns a 64-bit hash of data[0..len) (non-cryptographic, stable across runs and machines). */
uint64_t sp_lb_hash(const void *data, size_t len);

/* A bijective 64-bit finalizer (murmur3 fmix64): combines a key hash with an identity hash. */
uint64_t sp_lb_mix64(uint64_t x);

/* Returns a uniform value in [0, bound), bound >= 1 (per-thread generator, unbiased). */
uint64_t sp_lb_random_below(const struct sp_lb_pick_in *in, uint64_t bound);

/* Natural logarithm of x > 0, within ~1e-13 relative error; no libm. */
double sp_lb_ln(double x);

/* e^-x for x >= 0 within ~1e-14 relative error; no libm. */
double sp_lb_exp_neg(double x);

/* Weighted random choice among the eligible backends of in (used by random and as the keyless
 * fallback of rendezvous). */
size_t sp_lb_pick_weighted(const struct sp_lb_pick_in *in);

#endif
