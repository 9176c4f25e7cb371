/* pool.h: a worker's pooled, multiplexed connections to the backends of one upstream.
 *
 * Connections are opened on demand, reused for many concurrent requests up to the smaller of
 * the configured per-connection stream cap and the backend's MAX_STREAMS, and reaped after an
 * idle time. When every connection of a backend is full, another is opened up to
 * max_connections_per_backend; beyond that requests wait in a bounded queue. A connection that
 * fails, times out or receives GOAWAY leaves rotation; requests still waiting for it go to the
 * caller's on_fail so they can be sent elsewhere. A backend whose connection attempts fail is
 * held down for a backoff period (passive health) so the balancer skips it. With an upstream
 * health_check, the pool also owns one active prober per backend (upstream/probe.h).
 * Single-threaded: each worker owns its pools; nothing here takes a lock. */
#ifndef SP_UPSTREAM_POOL_H
#define SP_UPSTREAM_POOL_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/defer.h"
#include "core/time.h"
#include "policy/cause.h"
#include "policy/errclass.h"
#include "tls/tls.h"
#include "upstream/upstream.h"

struct sp_pool;
struct sp_pool_conn; /* one pooled backend connection, any protocol */

/* A request waiting for a stream. Embedded in the caller's request object. */
struct sp_pool_waiter {
    struct sp_pool_waiter *prev, *next; /* pool's queue; internal */
    size_t backend;                     /* which backend it waits for; internal */
    bool queued;                        /* internal */
    bool fresh; /* set by the caller: only a connection that carried no request yet will do,
                   for protocols whose kept-alive connections race the backend's close
                   (HTTP/1.1, RFC 9112 §9.3.1): a retry must not meet the same race again */
    /* A connection with a free stream: submit on it now (synchronously). */
    void (*on_ready)(struct sp_pool_waiter *w, struct sp_pool_conn *c);
    /* No stream will come: cause is SP_CAUSE_CONNECT, _HANDSHAKE or _SHUTDOWN. */
    void (*on_fail)(struct sp_pool_waiter *w, enum sp_cause cause);
};

/* Per-backend counters the balancer and the tests read. */
struct sp_pool_backend_stats {
    size_t connections;  /* open or connecting */
    uint64_t handshakes; /* completed handshakes since start */
    unsigned inflight;   /* requests holding a stream */
    bool down;           /* connect failures: held out of rotation until down_until */
    sp_time_t rtt_ns;    /* smoothed RTT of the last active probe's connection (QUIC); 0 =
                            unknown (no probes, or a protocol that does not measure it) */
};

/* Creates the pool for upstream conf (borrowed, must outlive the pool) with client TLS
 * credentials (borrowed), and starts its active probers when conf->health_check is enabled.
 * timeouts (borrowed) are the upstream's effective ones (conf->timeouts in the proxy): connect_ms
 * bounds connecting and handshakes, backend_idle_ms idle connections.
 * Returns 0 or negative errno. Worker thread. */
int sp_pool_new(struct ev_loop *loop, struct sp_defer *defer, const struct sp_upstream_conf *conf,
                const struct sp_timeouts_conf *timeouts, const struct sp_limits_conf *limits,
                const struct sp_tls_client *tls, struct sp_pool **ret);

/* Closes every connection (waiters get on_fail "shutdown") and frees the pool. NULL is fine. */
void sp_pool_free(struct sp_pool *p);

/* Gets a stream on backend `backend`. Returns 0 with *ret_conn set when a connection has a
 * free stream now (submit on it before returning to the loop); -EINPROGRESS when the waiter is
 * queued (on_ready or on_fail follows); -EBUSY when the queue is full. */
int sp_pool_acquire(struct sp_pool *p, size_t backend, struct sp_pool_waiter *w,
                    struct sp_pool_conn **ret_conn);

/* Sends a request on a connection that acquire or on_ready handed out (fields exactly as given,
 * see sp_uconn_ops.submit); fills s->ops/impl. Returns 0, -EAGAIN or -EPROTO. */
int sp_pool_submit(struct sp_pool_conn *c, const struct sp_field *fields, size_t n, bool has_body,
                   struct sp_ustream *s);

/* Removes a queued waiter (its request went away). No-op if not queued. */
void sp_pool_cancel(struct sp_pool *p, struct sp_pool_waiter *w);

/* Request accounting for the balancer: a stream was taken / given back on backend. */
void sp_pool_request_started(struct sp_pool *p, size_t backend);
void sp_pool_request_finished(struct sp_pool *p, size_t backend);

/* True when backend is usable now: not held down after connect failures, not ejected by passive
 * health (unless the pool is in panic), and its breaker not open (or open but due for a trial). */
bool sp_pool_backend_eligible(struct sp_pool *p, size_t backend, sp_time_t now);

/* The share of its weight a backend gets from passive health: 100 when healthy, less when
 * degraded or recovering (never 0); an ejected backend gets 100 while the pool is in panic. */
unsigned sp_pool_backend_weight_pct(const struct sp_pool *p, size_t backend);

/* Panic mode (passive_health.panic_threshold_pct): recomputes whether fewer than that share of the
 * backends are healthy or degraded by their health machines (sp_health_panic). While in panic,
 * sp_pool_backend_eligible ignores health ejections, so the balancer spreads the load over every
 * backend rather than overload the few; the connect-failure hold-down and open breakers still
 * count. Logs at warn only when the pool enters or leaves panic. Returns the new state. Call
 * before each pick. */
bool sp_pool_update_panic(struct sp_pool *p);

/* Asks the backend's circuit breaker to let one request through (it may move OPEN -> HALF_OPEN).
 * True when admitted; the caller then reports the request's end with sp_pool_outcome(admitted =
 * true) exactly once. */
bool sp_pool_admit(struct sp_pool *p, size_t backend, sp_time_t now);

/* How a request on backend ended, for the breaker and passive health: SP_ERR_NONE for a response
 * below 500, SP_ERR_BACKEND_5XX for a 5xx, the failure's class otherwise. A client class (the
 * client went away) blames nobody. Logs breaker and health transitions (once each, at info). */
void sp_pool_outcome(struct sp_pool *p, size_t backend, bool admitted, enum sp_err_class cls,
                     sp_time_t now);

/* Requests in flight on backend (the balancer's load signal); cheaper than the full stats. */
unsigned sp_pool_backend_inflight(const struct sp_pool *p, size_t backend);

void sp_pool_backend_stats(const struct sp_pool *p, size_t backend,
                           struct sp_pool_backend_stats *ret);

/* Active probes (upstream/probe.c): when the backend's next probe is due (SP_HEALTH_NEVER when
 * none is scheduled). */
sp_time_t sp_pool_next_probe_at(const struct sp_pool *p, size_t backend);

/* Active probes: feeds one probe's result to the backend's health machine (logs a transition
 * once at info, as sp_pool_outcome does) and records rtt_ns (0 = unknown, keeps the last one). */
void sp_pool_probe_result(struct sp_pool *p, size_t backend, bool ok, sp_time_t rtt_ns,
                          sp_time_t now);

/* Takes c out of rotation, as a GOAWAY would: requests on it finish, new ones get another
 * connection, and it closes once idle. For a connection suspected dead (a probe timed out). */
void sp_pool_conn_retire(struct sp_pool_conn *c);

/* A number no other connection of the pool has: the proxy names a connection's death with it,
 * so that the requests it carried count once against the retry budget. */
uint64_t sp_pool_conn_serial(const struct sp_pool_conn *c);

/* The handshake time and the transport's smoothed RTT of c (0 = unknown). */
sp_time_t sp_pool_conn_handshake_ns(const struct sp_pool_conn *c);
sp_time_t sp_pool_conn_rtt_ns(const struct sp_pool_conn *c);

/* Stops the probers, sends GOAWAY-equivalent closes to idle connections and stops opening new
 * ones. */
void sp_pool_shutdown(struct sp_pool *p);

#endif
