/* upstream.h: the protocol-neutral contract between the pool/proxy and one backend protocol
 * (HTTP/3, HTTP/2 and HTTP/1.1 implement the same ops).
 *
 * A backend connection (struct sp_uconn) is created by a protocol's ops->open, reports its life
 * through struct sp_uconn_events to its owner (the pool), and carries requests. A request on it is
 * a struct sp_ustream, embedded in the caller's request object: the caller fills cbs/user, the
 * protocol fills ops/impl on submit. Body bytes the caller writes are copied once and freed when
 * the backend has taken them; received body bytes are passed up in on_data and their
 * flow-control credit returns only when the caller calls consume (end-to-end backpressure).
 * Single-threaded: one worker owns its connections. */
#ifndef SP_UPSTREAM_UPSTREAM_H
#define SP_UPSTREAM_UPSTREAM_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"
#include "core/defer.h"
#include "core/time.h"
#include "http/fields.h"
#include "tls/tls.h"

struct sp_ustream;

/* Why a request stream ended without a complete response. */
enum sp_ustream_error {
    SP_USTREAM_OK = 0,
    SP_USTREAM_REFUSED = 1,   /* the backend provably did not process it: safe to retry anywhere
                                 (H3_REQUEST_REJECTED, REFUSED_STREAM, above GOAWAY's last id) */
    SP_USTREAM_RESET = 2,     /* the backend reset the stream */
    SP_USTREAM_CONN_LOST = 3, /* the connection died under the request */
    SP_USTREAM_PROTOCOL = 4,  /* the backend broke the protocol (malformed response, ...) */
};

/* Events for the caller (the proxy). `user` is sp_ustream.user. */
struct sp_ustream_cbs {
    /* Final response headers complete: sp_ustream_status/headers are valid. */
    void (*on_headers)(struct sp_ustream *s, void *user);
    /* Response body bytes; give the credit back with sp_ustream_consume once passed on. */
    void (*on_data)(struct sp_ustream *s, void *user, const uint8_t *data, size_t len);
    /* The response is complete; trailers (possibly none) are in sp_ustream_trailers. */
    void (*on_end)(struct sp_ustream *s, void *user);
    /* The backend took `len` more request body bytes (they are freed now). */
    void (*on_sent)(struct sp_ustream *s, void *user, uint64_t len);
    /* The stream is gone (after on_end when complete). err says why it ended early. */
    void (*on_close)(struct sp_ustream *s, void *user, enum sp_ustream_error err);
    /* The backend wants no more of the request body (HTTP/3 STOP_SENDING): it may still answer,
     * or has. */
    void (*on_stop)(struct sp_ustream *s, void *user);
};

/* What a protocol implements per request stream. impl is its stream object. */
struct sp_ustream_ops {
    void (*write)(void *impl, const uint8_t *data, size_t len);
    void (*end)(void *impl, const struct sp_field *trailers, size_t n);
    void (*consume)(void *impl, uint64_t len);
    /* Aborts the request; no callback follows (the caller has already let go). */
    void (*cancel)(void *impl);
    unsigned (*status)(const void *impl);
    const struct sp_fields *(*headers)(const void *impl);
    const struct sp_fields *(*trailers)(const void *impl);
    /* Writes a one-line key=value summary of the stream's transfer and flow-control state
     * (stall diagnostics). Returns what snprintf returns. */
    int (*describe)(const void *impl, char *buf, size_t len);
};

/* One request on a backend connection. Embedded in the caller's request object. */
struct sp_ustream {
    const struct sp_ustream_cbs *cbs; /* borrowed; set by the caller before submit */
    void *user;                       /* borrowed; set by the caller */
    const struct sp_ustream_ops *ops; /* set by the protocol on submit */
    void *impl;                       /* the protocol's stream; NULL once closed or cancelled */
};

/* Request stream calls: thin wrappers over ops, safe on a closed stream (no-ops). */
void sp_ustream_write(struct sp_ustream *s, const uint8_t *data, size_t len);
void sp_ustream_end(struct sp_ustream *s, const struct sp_field *trailers, size_t n);
void sp_ustream_consume(struct sp_ustream *s, uint64_t len);
/* Aborts the request and detaches it: no callback follows; s->impl becomes NULL. */
void sp_ustream_cancel(struct sp_ustream *s);
unsigned sp_ustream_status(const struct sp_ustream *s);
const struct sp_fields *sp_ustream_headers(const struct sp_ustream *s);
const struct sp_fields *sp_ustream_trailers(const struct sp_ustream *s);
/* The protocol's state summary (describe), or "-" once the stream is gone. */
void sp_ustream_describe(const struct sp_ustream *s, char *buf, size_t len);

/* Connection events for the owner (the pool). */
struct sp_uconn_events {
    void (*on_ready)(void *ctx);             /* connected and handshaken: requests may go */
    void (*on_streams_available)(void *ctx); /* a stream closed or the peer allowed more */
    void (*on_goaway)(void *ctx);            /* no new requests on this connection */
    /* The connection is gone (`reason` is a static string: "idle", "connect", "handshake",
     * "tls_error", "peer_closed", ...). The impl must not be used afterwards except for free. */
    void (*on_closed)(void *ctx, const char *reason);
};

/* Everything a protocol needs to open a connection to one backend. All borrowed. */
struct sp_uconn_params {
    struct ev_loop *loop;
    struct sp_defer *defer;
    const struct sp_backend_conf *backend;
    const struct sp_tls_client *tls;
    const char *verify_name; /* SNI / certificate name */
    const struct sp_timeouts_conf *timeouts;
    const struct sp_limits_conf *limits;
    const struct sp_pool_conf *pool; /* keepalive_ms, dead_after_ms */
    const struct sp_uconn_events *events;
    void *ctx; /* passed to the events */
};

/* One backend protocol. */
struct sp_uconn_ops {
    const char *name;
    /* A kept-alive connection may be closed by the backend just as a request leaves (HTTP/1.1):
     * the pool gives a retry of such a request a fresh connection (sp_pool_waiter.fresh). */
    bool reuse_races;
    /* Starts connecting. Returns 0 with *ret_impl, or negative errno (nothing to free). */
    int (*open)(const struct sp_uconn_params *p, void **ret_impl);
    /* Closes now; on_closed follows (possibly synchronously). Idempotent. */
    void (*close)(void *impl, const char *reason);
    /* Frees a closed connection (from a deferred context). */
    void (*free)(void *impl);
    /* Requests open on it now. */
    size_t (*active)(const void *impl);
    /* More requests the backend allows right now (0 when not ready or going away). */
    uint64_t (*streams_left)(const void *impl);
    /* Sends a request (fields exactly as given; the caller supplies the pseudo-fields). Fills
     * s->ops and s->impl. Returns 0, -EAGAIN when no stream is free, or -EPROTO. */
    int (*submit)(void *impl, const struct sp_field *fields, size_t n, bool has_body,
                  struct sp_ustream *s);
    /* Handshake duration (0 until ready). */
    sp_time_t (*handshake_ns)(const void *impl);
    /* True when the connection is busy only because its client does not read the response
     * (HTTP/1.1 with reading paused): it then does not count against the connection cap.
     * NULL when a protocol multiplexes (a slow reader never holds a whole connection). */
    bool (*held_by_client)(const void *impl);
    /* Smoothed RTT the transport measured (0 = unknown). NULL when the protocol has none. */
    sp_time_t (*rtt_ns)(const void *impl);
};

/* The HTTP/3 implementation (upstream/h3.c). */
extern const struct sp_uconn_ops sp_uconn_h3_ops;
/* The HTTP/2 implementation, TLS (h2) or cleartext (h2c) (upstream/h2.c). */
extern const struct sp_uconn_ops sp_uconn_h2_ops;
/* The HTTP/1.1 implementation (upstream/h1.c). */
extern const struct sp_uconn_ops sp_uconn_h1_ops;

/* The ops for a configured protocol. */
const struct sp_uconn_ops *sp_uconn_ops_for(enum sp_backend_proto proto);

#endif
