#include "upstream/pool_rules.h"

#define DOWN_BASE_NS (500 * SP_MS)
#define DOWN_MAX_NS (10 * SP_SEC)

bool sp_pool_conn_has_capacity(const struct sp_pool_conn_view *c, const struct sp_pool_limits *l)
{
    return c->ready && !c->draining && c->active < l->max_streams && c->peer_streams_left > 0;
}

bool sp_pool_may_queue(const struct sp_pool_limits *l, size_t nconns, size_t connecting,
                       size_t backend_waiting, size_t pool_waiting)
{
    size_t growable = nconns < l->max_connections ? 1 : 0;
    size_t coming = (connecting + growable) * l->max_streams;

    return backend_waiting < coming || pool_waiting < l->max_queue;
}

bool sp_pool_should_open(const struct sp_pool_limits *l, size_t nconns, size_t connecting,
                         size_t backend_waiting)
{
    return backend_waiting > connecting * l->max_streams && nconns < l->max_connections;
}

sp_time_t sp_pool_down_backoff(unsigned failures)
{
    unsigned shift = failures > 0 ? failures - 1 : 0;
    sp_time_t t;

    if (shift > 5)
        shift = 5;
    t = DOWN_BASE_NS << shift;
    return t < DOWN_MAX_NS ? t : DOWN_MAX_NS;
}
