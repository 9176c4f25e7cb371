/* h3.h: HTTP/3 (RFC 9114) on top of a QUIC connection, for both roles, on nghttp3.
 *
 * A struct sp_h3_conn embeds the QUIC connection and implements its application ops. Each
 * request/response exchange is a struct sp_h3_stream, owned by the h3 conn: it lives until the
 * QUIC stream closes (or the connection dies), and its user hears about that in on_close and
 * must drop its pointer then. Received field sections are kept as zero-copy references into
 * nghttp3's buffers. Outgoing body bytes are copied once into a bounded sp_bodybuf and freed when
 * the peer acknowledges them; received body bytes are handed over in on_data and their flow
 * control credit returns only when the user calls sp_h3_stream_consume, which is how a slow
 * reader on one side slows the writer on the other. Single-threaded: one worker. */
#ifndef SP_HTTP_H3_H
#define SP_HTTP_H3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/fields.h"
#include "quic/conn.h"

struct sp_h3_conn;
struct sp_h3_stream;

/* RFC 9114 §8.1 error codes used across modules. */
#define SP_H3_NO_ERROR 0x0100
#define SP_H3_INTERNAL_ERROR 0x0102
#define SP_H3_EXCESSIVE_LOAD 0x0107
#define SP_H3_REQUEST_REJECTED 0x010b
#define SP_H3_REQUEST_CANCELLED 0x010c
#define SP_H3_REQUEST_INCOMPLETE 0x010d
#define SP_H3_MESSAGE_ERROR 0x010e

struct sp_h3_stream_ops {
    /* Headers complete: request headers (server) or final response headers (client). */
    void (*on_headers)(struct sp_h3_stream *s, void *user);
    /* Body bytes. Give the credit back with sp_h3_stream_consume once they are passed on. */
    void (*on_data)(struct sp_h3_stream *s, void *user, const uint8_t *data, size_t len);
    /* Trailers complete (sp_h3_stream_trailers). */
    void (*on_trailers)(struct sp_h3_stream *s, void *user);
    /* The peer finished its side of the exchange. */
    void (*on_end)(struct sp_h3_stream *s, void *user);
    /* The peer acknowledged `len` more body bytes we wrote (they are freed now). */
    void (*on_sent)(struct sp_h3_stream *s, void *user, uint64_t len);
    /* The stream is gone. app_error is 0 for a clean close, else the H3 error code of a reset
     * (ours or the peer's) or SP_H3_INTERNAL_ERROR when the connection died. The stream pointer
     * is invalid once this returns. */
    void (*on_close)(struct sp_h3_stream *s, void *user, uint64_t app_error);
    /* Optional: the peer asked us to stop sending (STOP_SENDING; our write side is reset): it
     * wants no more of our body. The stream lives on for the other direction. */
    void (*on_stop)(struct sp_h3_stream *s, void *user);
};

/* Server side: called when a request's headers are complete and valid. The handler must call
 * sp_h3_stream_set_user (or respond/reset). */
struct sp_h3_server_ops {
    /* The QUIC handshake completed. */
    void (*on_handshake)(struct sp_h3_conn *c, void *ctx);
    void (*on_request)(struct sp_h3_conn *c, struct sp_h3_stream *s, void *ctx);
    /* The connection is gone; c is invalid after this returns. */
    void (*on_conn_closed)(struct sp_h3_conn *c, void *ctx, const char *reason);
};

/* Client side: connection-level events for the upstream pool. */
struct sp_h3_client_ops {
    /* Handshake done and the peer may have streams available. */
    void (*on_ready)(struct sp_h3_conn *c, void *ctx);
    /* More request streams can be opened (MAX_STREAMS grew or a stream closed); after GOAWAY
     * it still reports stream closes, so the owner can close the connection once idle. */
    void (*on_streams_available)(struct sp_h3_conn *c, void *ctx);
    /* The peer sent GOAWAY: no new requests on this connection. */
    void (*on_goaway)(struct sp_h3_conn *c, void *ctx);
    /* The connection is gone; c is invalid after this returns. */
    void (*on_conn_closed)(struct sp_h3_conn *c, void *ctx, const char *reason);
};

struct sp_h3_limits {
    uint64_t max_header_bytes; /* received field section size (RFC 9114 §4.2.2) */
    unsigned max_headers;      /* received fields per section */
};

/* Creates a server-side h3 connection for an accepted Initial; see sp_quic_conn_init_server.
 * ops/ctx are borrowed. Returns 0 or negative errno; on error nothing is left allocated except
 * that tls is still owned by the caller. The caller sets qc->on_dead / qc->on_cid via
 * sp_h3_conn_quic(). Worker thread. */
int sp_h3_conn_new_server(struct ev_loop *loop, struct sp_quic_endpoint *ep,
                          const struct sockaddr *remote, socklen_t remote_len,
                          const ngtcp2_pkt_hd *hd, const ngtcp2_cid *scid,
                          const struct sp_quic_conn_params *params, const struct sp_h3_limits *lim,
                          gnutls_session_t tls, const struct sp_h3_server_ops *ops, void *ctx,
                          struct sp_h3_conn **ret);

/* Creates a client-side h3 connection; takes ownership of tls. Starts the handshake on the next
 * sp_quic_conn_write. Returns 0 or negative errno. Worker thread. */
int sp_h3_conn_new_client(struct ev_loop *loop, struct sp_quic_endpoint *ep,
                          const struct sockaddr *remote, socklen_t remote_len,
                          const struct sp_quic_conn_params *params, const struct sp_h3_limits *lim,
                          gnutls_session_t tls, const struct sp_h3_client_ops *ops, void *ctx,
                          struct sp_h3_conn **ret);

/* Frees a dead connection (after on_conn_closed, from a deferred context). NULL is fine. */
void sp_h3_conn_free(struct sp_h3_conn *c);

/* The QUIC connection inside (for I/O wiring). */
struct sp_quic_conn *sp_h3_conn_quic(struct sp_h3_conn *c);

/* Client: how many more requests may be opened right now (peer MAX_STREAMS left), 0 when
 * the connection is not ready or is going away. */
uint64_t sp_h3_conn_streams_left(struct sp_h3_conn *c);

/* Client: opens a request stream and submits the header fields (exactly as given: the caller
 * supplies the pseudo-fields). has_body=false ends the stream after the headers. Returns 0,
 * -EAGAIN when no stream is available, or -EPROTO. Worker thread. */
int sp_h3_conn_submit_request(struct sp_h3_conn *c, const struct sp_field *fields, size_t n,
                              bool has_body, const struct sp_h3_stream_ops *ops, void *user,
                              struct sp_h3_stream **ret_stream);

/* Server: starts a graceful shutdown (GOAWAY, RFC 9114 §5.2). */
void sp_h3_conn_shutdown(struct sp_h3_conn *c);

/* Server: the second step of a graceful shutdown: GOAWAY with the id of the first request stream
 * not yet received; requests on that or later streams are rejected (H3_REQUEST_REJECTED) and
 * the client may retry them elsewhere (RFC 9114 §5.2). */
void sp_h3_conn_shutdown_final(struct sp_h3_conn *c);

/* Closes the whole connection now with H3_NO_ERROR. */
void sp_h3_conn_close(struct sp_h3_conn *c, const char *reason);

/* The peer's IP address as text (no port), formatted once per connection. */
const char *sp_h3_conn_peer_ip(struct sp_h3_conn *c);

/* Number of open request streams. */
size_t sp_h3_conn_active_streams(const struct sp_h3_conn *c);

/* Server: attaches the user to a request stream (in or after on_request). */
void sp_h3_stream_set_user(struct sp_h3_stream *s, const struct sp_h3_stream_ops *ops, void *user);

/* Server: submits response headers; status 100..599 plus fields (no pseudo-fields). has_body
 * false ends the stream after the headers. Returns 0 or -EPROTO. */
int sp_h3_stream_respond(struct sp_h3_stream *s, unsigned status, const struct sp_field *fields,
                         size_t n, bool has_body);

/* Appends body bytes to send (copied). */
void sp_h3_stream_write(struct sp_h3_stream *s, const uint8_t *data, size_t len);

/* Ends the body, optionally with trailers (copied). */
void sp_h3_stream_end(struct sp_h3_stream *s, const struct sp_field *trailers, size_t n);

/* Returns flow-control credit for `len` received body bytes. Credit still outstanding when the
 * stream closes is returned to the connection automatically. */
void sp_h3_stream_consume(struct sp_h3_stream *s, uint64_t len);

/* Stops reading the peer's side of the stream with STOP_SENDING(app_error) (RFC 9114 §4.1.1: a
 * server that answered may stop a request body it does not need, with H3_NO_ERROR); bytes that
 * still arrive are dropped and their credit returned. Our own side carries on. */
void sp_h3_stream_stop_reading(struct sp_h3_stream *s, uint64_t app_error);

/* Aborts the stream in both directions with an H3 error code. The user's on_close follows
 * (possibly later); the user may detach first with sp_h3_stream_set_user(s, NULL, NULL). */
void sp_h3_stream_reset(struct sp_h3_stream *s, uint64_t app_error);

/* Received sections. */
const struct sp_fields *sp_h3_stream_headers(const struct sp_h3_stream *s);
const struct sp_fields *sp_h3_stream_trailers(const struct sp_h3_stream *s);

/* Bytes written with sp_h3_stream_write but not yet acknowledged by the peer. */
uint64_t sp_h3_stream_unacked(const struct sp_h3_stream *s);

/* The FIN hold-back of one request stream (see sp_h3_ack_filter). */
struct sp_h3_ack_hold {
    bool fin_handed;  /* the end of the body was handed to nghttp3 */
    bool fin_written; /* ngtcp2 took the FIN */
    uint64_t held;    /* acknowledged bytes not yet passed to nghttp3 */
};

/* Works around nghttp3 0.8 dropping a FIN queued on its own (h3.c says how): takes `len` newly
 * acknowledged bytes of a stream and returns how many to pass to nghttp3_conn_add_ack_offset
 * now, holding one byte back from the moment the FIN was handed over until ngtcp2 took it.
 * Pure; exported for its unit test. */
uint64_t sp_h3_ack_filter(struct sp_h3_ack_hold *h, uint64_t len);

/* Writes a one-line key=value summary of the stream's and its connection's flow-control state
 * into buf (for stall diagnostics). Returns what snprintf returns. */
int sp_h3_stream_describe(const struct sp_h3_stream *s, char *buf, size_t len);

/* True once some of the stream's bytes went to the network: before that, the peer cannot have
 * seen the request (a request that never left may go elsewhere whatever its method). */
bool sp_h3_stream_sent_any(const struct sp_h3_stream *s);

/* Client: the response status (0 before on_headers). */
unsigned sp_h3_stream_status(const struct sp_h3_stream *s);

/* The connection a stream belongs to. */
struct sp_h3_conn *sp_h3_stream_conn(const struct sp_h3_stream *s);

#endif
