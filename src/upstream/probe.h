/* probe.h: active health probes of one backend (issue 5, Health).
 *
 * A prober sends `GET <health_check.path>` to its backend through the pool, over the backend's
 * own protocol (HTTP/3 probes ride QUIC like real traffic), whenever the backend's health machine
 * says a probe is due (sp_pool_next_probe_at). It does not go through the balancer or the circuit
 * breaker: an ejected backend is probed too, since probes are how it gets readmitted. A response
 * whose status is within health_check's expected range is a good probe; any other status (404
 * included), no response within timeout_ms, a failed connect or a reset stream is a failed one.
 * The result goes back to the pool (sp_pool_probe_result), which feeds the health machine and
 * logs transitions.
 * Single-threaded: the pool's worker owns its probers. */
#ifndef SP_UPSTREAM_PROBE_H
#define SP_UPSTREAM_PROBE_H

#include <ev.h>
#include <stddef.h>

struct sp_pool;
struct sp_upstream_conf;
struct sp_prober;

/* Creates the prober of backend `backend` of `pool` (borrowed; the pool owns the prober and
 * outlives it), probing as conf->health_check says (conf borrowed, must outlive the prober;
 * health_check.enabled must be true). Nothing is sent before sp_prober_start. Returns 0 with
 * *ret (owned by the caller, free with sp_prober_free), or -EINVAL for a disabled health_check.
 * Worker thread. */
int sp_prober_new(struct ev_loop *loop, struct sp_pool *pool, size_t backend,
                  const struct sp_upstream_conf *conf, struct sp_prober **ret);

/* Arms the probe timer for the next probe the pool says is due. Worker thread. */
void sp_prober_start(struct sp_prober *pr);

/* Stops probing: a probe in flight is cancelled without a result, timers stop. Idempotent; a
 * stopped prober never starts again. Worker thread. */
void sp_prober_stop(struct sp_prober *pr);

/* Stops and frees pr. NULL is fine. Worker thread. */
void sp_prober_free(struct sp_prober *pr);

#endif
