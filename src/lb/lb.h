/* lb.h: backend selection for one upstream. A balancer is an ops table (new_state + pick +
 * free_state) with one static instance per strategy, one file per strategy, listed in an explicit
 * name table in lb.c.
 *
 * Pure: strategies never read a clock (now is a parameter), never log, never lock. A struct sp_lb
 * belongs to one worker thread and one upstream; the backend view it picks from is owned by the
 * caller and passed on every call, so health, breakers and weights stay with their owners. */
#ifndef SP_LB_LB_H
#define SP_LB_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* The view of one backend that a strategy sees; an array of these is owned by the caller. */
struct sp_lb_backend {
    unsigned weight;   /* >= 1; 0 is treated as 1 */
    bool eligible;     /* false: down, disabled or breaker open: never picked */
    unsigned inflight; /* requests in flight (for later strategies) */
};

/* One balancer: one per upstream per worker. Opaque. */
struct sp_lb;

/* One strategy. Implementations are static const instances listed in lb.c's name table. */
struct sp_lb_ops {
    const char *name; /* config spelling, e.g. "round_robin" */
    /* Allocates per-balancer state for nbackends backends (nbackends >= 1). On success returns
     * 0 and writes *ret_state (may be NULL for stateless strategies); or -ENOMEM. */
    int (*new_state)(size_t nbackends, void **ret_state);
    /* Picks one eligible backend among b[0..n) (n equals the nbackends given to new_state).
     * Returns 0 and writes *ret_index, or -EAGAIN when no backend is eligible. */
    int (*pick)(void *state, const struct sp_lb_backend *b, size_t n, uint64_t now_ns,
                size_t *ret_index);
    /* Frees what new_state allocated. NULL is fine. */
    void (*free_state)(void *state);
};

/* Smooth weighted round-robin (round_robin.c). */
extern const struct sp_lb_ops sp_lb_round_robin_ops;

/* Weighted random (random.c). */
extern const struct sp_lb_ops sp_lb_random_ops;

/* Creates a balancer of strategy `kind` for an upstream with nbackends backends.
 * On success returns 0 and *ret (owned by the caller, free with sp_lb_free).
 * Returns -EINVAL for an unknown kind or nbackends == 0, -ENOMEM when the strategy's state cannot
 * be allocated; *ret untouched on error. The owning worker thread. */
int sp_lb_new(enum sp_lb_kind kind, size_t nbackends, struct sp_lb **ret);

/* Returns the strategy called `name` ("round_robin", "random"), or NULL if unknown.
 * The result is static. Any thread. */
const struct sp_lb_ops *sp_lb_ops_by_name(const char *name);

/* Picks a backend among b[0..n), the caller's current view of the upstream's backends (borrowed
 * for the call only). now_ns is the caller's clock (sp_time_t ns); strategies may ignore it.
 * Returns 0 and writes *ret_index (< n, always an eligible backend); -EAGAIN when no backend is
 * eligible; -EINVAL when n differs from the nbackends given to sp_lb_new (a caller bug: the
 * backend list changes only on reload, which builds a new balancer). The owning worker thread. */
int sp_lb_pick(struct sp_lb *lb, const struct sp_lb_backend *b, size_t n, uint64_t now_ns,
               size_t *ret_index);

/* Frees a balancer and its strategy state. NULL is fine. The owning worker thread. */
void sp_lb_free(struct sp_lb *lb);

#endif
