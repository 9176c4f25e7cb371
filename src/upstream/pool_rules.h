/* pool_rules.h: the upstream pool's bookkeeping rules as pure functions: when a connection can
 * take a request, when a request may wait, when to open another connection, how long a failing
 * backend is held down. No sockets, no clocks, no state: pool.c feeds them its counters, and the
 * unit tests feed them tables. Any thread. */
#ifndef SP_UPSTREAM_POOL_RULES_H
#define SP_UPSTREAM_POOL_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/time.h"

struct sp_pool_limits {
    unsigned max_connections; /* per backend (per worker) */
    unsigned max_streams;     /* our cap of concurrent requests per connection */
    unsigned max_queue;       /* requests allowed to wait for a busy pool */
};

/* One connection as the rules see it. */
struct sp_pool_conn_view {
    bool ready;                 /* handshake complete */
    bool draining;              /* GOAWAY received or closing: no new requests */
    size_t active;              /* requests using it now */
    uint64_t peer_streams_left; /* streams the backend's MAX_STREAMS still allows us */
};

/* True when the connection can take one more request now: ready, not draining, below our cap
 * and below the backend's MAX_STREAMS (RFC 9000 §4.6). */
bool sp_pool_conn_has_capacity(const struct sp_pool_conn_view *c, const struct sp_pool_limits *l);

/* True when one more request may wait for this backend. Requests may always wait for streams
 * that connections being opened (or one that may still be opened) will bring; beyond that only
 * max_queue requests wait across the pool. */
bool sp_pool_may_queue(const struct sp_pool_limits *l, size_t nconns, size_t connecting,
                       size_t backend_waiting, size_t pool_waiting);

/* True when another connection should be opened for this backend: requests are waiting beyond
 * what the connections being opened will carry, and the per-backend cap allows it. */
bool sp_pool_should_open(const struct sp_pool_limits *l, size_t nconns, size_t connecting,
                         size_t backend_waiting);

/* How long a backend is held out of rotation after `failures` consecutive failed connection
 * attempts (>= 1): 500 ms doubling per failure, capped at 10 s. */
sp_time_t sp_pool_down_backoff(unsigned failures);

#endif
