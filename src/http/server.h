/* server.h: a worker's HTTP/3 server on one listener: accepts QUIC connections, runs the h3
 * layer on each and hands every valid request to the installed handler (sp_h3_server_ops),
 * which knows nothing about sockets. Owns its connections and frees them deferred.
 * Single-threaded: one worker. */
#ifndef SP_HTTP_SERVER_H
#define SP_HTTP_SERVER_H

#include <ev.h>
#include <stddef.h>

#include "core/defer.h"
#include "http/h3.h"
#include "tls/tls.h"

struct sp_h3_server;

/* Request handler installed by main (the proxy, or a test backend). */
struct sp_h3_handler {
    void (*on_request)(struct sp_h3_conn *c, struct sp_h3_stream *s, void *ctx);
    /* Optional: a client's QUIC handshake completed. */
    void (*on_handshake)(void *ctx);
    void *ctx; /* borrowed */
};

struct sp_h3_server_conf {
    const struct sockaddr *addr; /* borrowed; where to listen */
    socklen_t addrlen;
    const struct sp_tls_server *tls;   /* borrowed; certificate */
    struct sp_quic_conn_params params; /* windows, streams, idle timeout */
    struct sp_h3_limits limits;        /* header limits */
    size_t max_connections;            /* new conns beyond this are refused */
};

/* Opens the listener and starts serving. Returns 0 or negative errno. Worker thread. */
int sp_h3_server_new(struct ev_loop *loop, struct sp_defer *defer,
                     const struct sp_h3_server_conf *conf, const struct sp_h3_handler *handler,
                     struct sp_h3_server **ret);

/* Stops accepting and sends GOAWAY on every connection (RFC 9114 §5.2). */
void sp_h3_server_shutdown(struct sp_h3_server *s);

/* Closes every connection that has no request in flight (used while draining). */
void sp_h3_server_close_idle(struct sp_h3_server *s);

/* Open client connections. */
size_t sp_h3_server_conn_count(const struct sp_h3_server *s);

/* Closes every connection and frees the server. NULL is fine. */
void sp_h3_server_free(struct sp_h3_server *s);

#endif
