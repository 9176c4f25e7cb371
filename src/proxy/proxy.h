/* proxy.h: the request lifecycle. Implements the HTTP/3 server's request handler: route, pick a
 * backend, acquire a pooled upstream stream, forward headers and body with flow control, stream
 * the response back, map failures to 502/503/504, and write one access-log line per request.
 * One per worker; single-threaded; nothing here takes a lock. */
#ifndef SP_PROXY_PROXY_H
#define SP_PROXY_PROXY_H

#include <ev.h>
#include <stddef.h>

#include "config/config.h"
#include "core/defer.h"
#include "http/server.h"
#include "tls/tls.h"

struct sp_proxy;

/* Builds the worker's proxy for cfg (borrowed; must outlive the proxy). tls[i] are the client
 * credentials of upstream i (borrowed). Returns 0 or negative errno. Worker thread. */
int sp_proxy_new(struct ev_loop *loop, struct sp_defer *defer, const struct sp_config *cfg,
                 struct sp_tls_client *const *tls, struct sp_proxy **ret);

/* The handler to install on the worker's HTTP/3 servers. */
const struct sp_h3_handler *sp_proxy_handler(struct sp_proxy *px);

/* Stops opening new backend connections and closes idle ones (graceful stop). */
void sp_proxy_shutdown(struct sp_proxy *px);

/* Frees the proxy and its pools. NULL is fine. */
void sp_proxy_free(struct sp_proxy *px);

#endif
