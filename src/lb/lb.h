/* lb.h: backend selection for one upstream (DESIGN.md §4). A balancer wraps one strategy, an ops
 * table (lb_strategy.h) with one static instance per strategy, one file per strategy, listed in
 * an explicit name table in lb.c:
 *
 *   random                weighted random
 *   round_robin           smooth weighted round-robin; equal weights give plain in-order rotation
 *   weighted_round_robin  the same smooth algorithm under the name that says so (see round_robin.c)
 *   least_conn            lowest (in-flight + 1) / weight, ties broken at random
 *   p2c                   power of two choices: two distinct backends sampled by weight, the lower
 *                         latency * (in-flight + 1) / weight wins
 *   ewma                  lowest peak-EWMA latency * (in-flight + 1) / weight over all backends
 *   rendezvous            weighted highest-random-weight hashing on an affinity key
 *
 * The wrapper owns what every strategy shares: effective weights (weight, clamped, times the slow
 * start ramp; 0 for an ineligible backend), eligibility transitions (tracked from the views it is
 * given) and the stable identity hash of each backend id.
 *
 * Pure: never reads a clock (now is a parameter), never logs, never locks. A struct sp_lb belongs
 * to one worker thread and one upstream; the backend view it picks from is owned by the caller and
 * passed on every call, so health, breakers and weights stay with their owners. */
#ifndef SP_LB_LB_H
#define SP_LB_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/time.h"

/* A strategy, as the config names it. The values follow the order of lb.c's name table, which is
 * the order docs and config errors list the names in. */
enum sp_lb_kind {
    SP_LB_ROUND_ROBIN = 0,          /* smooth weighted round-robin */
    SP_LB_WEIGHTED_ROUND_ROBIN = 1, /* same algorithm as round_robin (kept as a name) */
    SP_LB_RANDOM = 2,               /* weighted random */
    SP_LB_LEAST_CONN = 3,           /* fewest in-flight requests per weight */
    SP_LB_P2C = 4,                  /* power of two choices */
    SP_LB_EWMA = 5,                 /* peak-EWMA latency x in-flight */
    SP_LB_RENDEZVOUS = 6,           /* weighted highest-random-weight hashing on hash_key */
};

/* Weights above this are clamped to it, so effective weights and load products fit in 64 bits. */
#define SP_LB_WEIGHT_MAX 1048576u

/* Defaults applied for zero fields of struct sp_lb_params. */
#define SP_LB_EWMA_DECAY_DEFAULT_NS (10 * SP_SEC)
#define SP_LB_EWMA_INITIAL_DEFAULT_NS (1 * SP_MS)

/* The view of one backend that a strategy sees; an array of these is owned by the caller. */
struct sp_lb_backend {
    unsigned weight;   /* >= 1; 0 is treated as 1; above SP_LB_WEIGHT_MAX clamped */
    bool eligible;     /* false: down, disabled or breaker open: never picked */
    unsigned inflight; /* requests in flight to this backend from this worker */
};

/* Tunables of one balancer. All-zero is valid and means the defaults. */
struct sp_lb_params {
    sp_time_t slow_start_ns;   /* 0 = off; else a backend that becomes eligible again ramps its
                                  effective weight linearly from 10% to 100% over this window */
    sp_time_t ewma_decay_ns;   /* p2c/ewma time constant of the latency average; 0 = default */
    sp_time_t ewma_initial_ns; /* p2c/ewma latency assumed for a never-measured backend when no
                                  other backend has been measured either; 0 = default */
    /* The random source of draws and tie-breaks (tests pass a seeded one); NULL = the calling
     * thread's generator (sp_random_u64). random_ctx is borrowed and passed to it. */
    uint64_t (*random_u64)(void *ctx);
    void *random_ctx;
};

/* One balancer: one per upstream per worker. Opaque. */
struct sp_lb;

/* One strategy (lb_strategy.h). Opaque here; the instances are listed in lb.c's name table. */
struct sp_lb_ops;

extern const struct sp_lb_ops sp_lb_random_ops;
extern const struct sp_lb_ops sp_lb_round_robin_ops;
extern const struct sp_lb_ops sp_lb_weighted_round_robin_ops;
extern const struct sp_lb_ops sp_lb_least_conn_ops;
extern const struct sp_lb_ops sp_lb_p2c_ops;
extern const struct sp_lb_ops sp_lb_ewma_ops;
extern const struct sp_lb_ops sp_lb_rendezvous_ops;

/* Returns the strategy called `name` (one of the names above), or NULL if unknown. The result is
 * static. Config validation can use it to reject an unknown strategy name. Any thread. */
const struct sp_lb_ops *sp_lb_ops_by_name(const char *name);

/* The name of strategy `kind` ("round_robin", ...), or NULL past the last kind: the config lists
 * and parses the names with it. Any thread. */
const char *sp_lb_kind_name(enum sp_lb_kind kind);

/* Creates a balancer running strategy `name` for an upstream with nbackends backends.
 * params: borrowed for the call; NULL means all defaults.
 * ids: borrowed for the call; ids[i] is backend i's config id, hashed into a stable identity for
 * rendezvous (so a key keeps its backend across reloads and across workers, whatever the order of
 * the backends); NULL means the decimal index is the identity (stable only while the order is).
 * On success returns 0 and *ret (owned by the caller, free with sp_lb_free).
 * Returns -EINVAL for an unknown name, a NULL name or nbackends == 0; -ENOMEM when nbackends is
 * too large to allocate for; *ret untouched on error. The owning worker thread. */
int sp_lb_new_by_name(const char *name, const struct sp_lb_params *params, const char *const *ids,
                      size_t nbackends, struct sp_lb **ret);

/* Compatibility wrapper: sp_lb_new_by_name() with the name of `kind`, default params and no
 * ids. Returns what sp_lb_new_by_name returns; -EINVAL also for an unknown kind. */
int sp_lb_new(enum sp_lb_kind kind, size_t nbackends, struct sp_lb **ret);

/* True when the balancer's strategy picks by an affinity key (rendezvous): the caller should then
 * extract one (affinity.h) and use sp_lb_pick_key. */
bool sp_lb_uses_key(const struct sp_lb *lb);

/* Picks a backend among b[0..n), the caller's current view of the upstream's backends (borrowed
 * for the call only). now_ns is the caller's clock (sp_time_t ns), used for slow start and
 * latency decay; it must not go backwards between calls on one balancer.
 * Returns 0 and writes *ret_index (< n, always an eligible backend); -EAGAIN when no backend is
 * eligible; -EINVAL when n differs from the nbackends given at creation (a caller bug: the
 * backend list changes only on reload, which builds a new balancer). The owning worker thread. */
int sp_lb_pick(struct sp_lb *lb, const struct sp_lb_backend *b, size_t n, uint64_t now_ns,
               size_t *ret_index);

/* sp_lb_pick() with an affinity key (key[0..key_len), borrowed for the call). Strategies that
 * hash (rendezvous) map equal keys to the same backend while it stays eligible; without a key
 * (key NULL) rendezvous falls back to weighted random. Other strategies ignore the key. Same
 * return codes as sp_lb_pick. The owning worker thread. */
int sp_lb_pick_key(struct sp_lb *lb, const struct sp_lb_backend *b, size_t n, const uint8_t *key,
                   size_t key_len, uint64_t now_ns, size_t *ret_index);

/* Feeds back the outcome of a request sent to backend `index`: latency_ns from sending the
 * request to the response headers (or to the failure), ok false for a failure (connect error,
 * reset, timeout, 5xx from the backend), which counts as at least twice the current estimate.
 * Strategies without latency state ignore it; an index >= nbackends is ignored. The owning
 * worker thread. */
void sp_lb_report(struct sp_lb *lb, size_t index, sp_time_t latency_ns, bool ok, sp_time_t now_ns);

/* Seeds backend `index`'s latency estimate from the smoothed RTT of a QUIC connection to it, used
 * only until the first sp_lb_report for it. Ignored by strategies without latency state and for
 * an index >= nbackends. The owning worker thread. */
void sp_lb_seed_rtt(struct sp_lb *lb, size_t index, sp_time_t rtt_ns);

/* Frees a balancer and its strategy state. NULL is fine. The owning worker thread. */
void sp_lb_free(struct sp_lb *lb);

#endif
