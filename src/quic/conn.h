/* conn.h: one QUIC connection (server or client side) on ngtcp2 + GnuTLS, driven by a worker's
 * libev loop.
 *
 * The connection owns the ngtcp2_conn, the TLS session and the expiry timer, and does all packet
 * I/O through its endpoint (a UDP socket). It knows nothing about HTTP: the application on top
 * (http/h3.c) embeds a struct sp_quic_conn and implements struct sp_quic_app_ops, whose callbacks
 * recover the application object with SP_CONTAINER_OF. Single-threaded: one worker owns it. */
#ifndef SP_QUIC_CONN_H
#define SP_QUIC_CONN_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "core/time.h"

struct sp_quic_conn;
struct sp_quic_listener;
struct sp_defer;

/* A UDP socket plus its local address. Server endpoints are shared by every connection of a
 * worker's listener; a client connection has its own connected endpoint. */
struct sp_quic_endpoint {
    int fd;                        /* owned by whoever created the endpoint */
    struct sockaddr_storage local; /* bound address */
    socklen_t local_len;
    bool connected; /* connect(2)ed: send without a destination */
    bool gso;       /* UDP_SEGMENT works on this socket */
};

/* What the application above QUIC implements. All return 0 or a negative errno; any error
 * closes the connection with an internal error. stream_user_data is what the application set
 * with sp_quic_conn_set_stream_user_data (NULL before). */
struct sp_quic_app_ops {
    /* Handshake finished; the application may open its control streams. */
    int (*on_handshake_completed)(struct sp_quic_conn *qc);
    /* Stream bytes arrived in order. The application must later give the bytes back with
     * sp_quic_conn_consume() to reopen flow control. */
    int (*on_stream_data)(struct sp_quic_conn *qc, int64_t stream_id, const uint8_t *data,
                          size_t len, bool fin, void *stream_user_data);
    /* The peer acknowledged `len` more bytes of what we sent on the stream. */
    int (*on_acked)(struct sp_quic_conn *qc, int64_t stream_id, uint64_t len,
                    void *stream_user_data);
    /* The stream is closed in both directions; app_error_code is set when it was reset. */
    int (*on_stream_close)(struct sp_quic_conn *qc, int64_t stream_id, bool has_app_error,
                           uint64_t app_error_code, void *stream_user_data);
    /* The peer reset its sending side (RESET_STREAM). */
    int (*on_stream_reset)(struct sp_quic_conn *qc, int64_t stream_id, uint64_t app_error_code,
                           void *stream_user_data);
    /* The peer asked us to stop sending (STOP_SENDING). */
    int (*on_stop_sending)(struct sp_quic_conn *qc, int64_t stream_id, uint64_t app_error_code,
                           void *stream_user_data);
    /* The peer raised a stream's flow-control limit: blocked data may go again. */
    int (*on_extend_max_stream_data)(struct sp_quic_conn *qc, int64_t stream_id,
                                     void *stream_user_data);
    /* The peer allowed more bidirectional streams (client side: MAX_STREAMS). */
    int (*on_extend_max_streams_bidi)(struct sp_quic_conn *qc, uint64_t max_streams);
    /* Fills vec with the next stream data to send. Returns the vector count (>= 0) and sets
     * *ret_stream_id (-1 for none) and *ret_fin; negative errno on failure. */
    int (*pull)(struct sp_quic_conn *qc, int64_t *ret_stream_id, bool *ret_fin, ngtcp2_vec *vec,
                size_t veccnt);
    /* ngtcp2 took `len` bytes of the stream (after pull); fin is true when the stream's FIN
     * went with them. */
    int (*on_written)(struct sp_quic_conn *qc, int64_t stream_id, size_t len, bool fin);
    /* The stream cannot take more data now (flow control) or its write side is shut. */
    void (*on_blocked)(struct sp_quic_conn *qc, int64_t stream_id, bool shut);
    /* The connection is finished (closed, drained, timed out or failed). The application must
     * drop every reference to its streams; the conn itself is freed by sp_quic_conn_fini. */
    void (*on_closed)(struct sp_quic_conn *qc, const char *reason);
};

enum sp_quic_conn_state {
    SP_QUIC_CONN_HANDSHAKING = 0,
    SP_QUIC_CONN_ESTABLISHED = 1,
    SP_QUIC_CONN_CLOSED = 2, /* terminal: waiting to be reaped */
};

struct sp_quic_conn {
    ngtcp2_crypto_conn_ref conn_ref; /* must stay first-class: GnuTLS finds us via it */
    ngtcp2_conn *conn;               /* owned */
    gnutls_session_t tls;            /* owned */
    struct ev_loop *loop;            /* borrowed; the worker's loop */
    ev_timer timer;                  /* ngtcp2 expiry */
    struct sp_quic_endpoint *ep;     /* borrowed */
    struct sockaddr_storage remote;  /* peer address */
    socklen_t remote_len;
    const struct sp_quic_app_ops *app; /* borrowed; static ops */
    enum sp_quic_conn_state state;
    ngtcp2_connection_close_error last_error; /* what we send in CONNECTION_CLOSE */
    bool is_server;
    bool in_write;           /* re-entrancy guard for sp_quic_conn_write */
    bool in_read;            /* inside ngtcp2_conn_read_pkt */
    bool write_scheduled;    /* a deferred flush is queued on defer */
    bool write_again;        /* a write was requested during a read or write */
    bool ping_pending;       /* sp_quic_conn_ping: the next write sends an ack-eliciting packet */
    bool stateless_reset;    /* the peer answered with a stateless reset (RFC 9000 §10.3) */
    sp_time_t keepalive_ns;  /* ngtcp2 keep-alive timeout; 0 = off */
    sp_time_t unacked_since; /* sp_quic_conn_unresponsive: since when no ACK made progress */
    sp_time_t created_ns;    /* when the conn object was created */
    sp_time_t handshake_ns;  /* handshake duration, 0 until complete */
    /* Set by a server owner: a connection ID was issued (add) or retired; keeps the CID map in
     * step. Returns 0 or -ENOMEM. NULL for client connections. */
    int (*on_cid)(struct sp_quic_conn *qc, const ngtcp2_cid *cid, bool add);
    struct sp_defer *defer;            /* borrowed, optional: when set, writes are coalesced
                                          to the end of the loop turn */
    struct sp_quic_listener *listener; /* borrowed; server conns: where our CIDs route */
    ngtcp2_cid odcid;                  /* server conns: the client's original DCID */
};

/* Settings shared by the constructors. Windows are in bytes. */
struct sp_quic_conn_params {
    uint64_t stream_window_bytes;     /* per-stream receive window */
    uint64_t connection_window_bytes; /* per-connection receive window */
    uint64_t max_streams_bidi;        /* peer-initiated bidi streams we allow */
    uint64_t idle_timeout_ns;         /* QUIC max_idle_timeout */
    uint64_t handshake_timeout_ns;    /* 0 = ngtcp2 default */
    uint64_t keepalive_ns;            /* a PING after this long without packets; 0 = off */
};

/* Creates a server connection for an accepted Initial (hd from ngtcp2_accept). scid is our new
 * connection ID. Returns 0, or -ENOMEM/-EINVAL. The caller sets on_cid and then feeds the
 * packet with sp_quic_conn_read. Worker thread. */
int sp_quic_conn_init_server(struct sp_quic_conn *qc, struct ev_loop *loop,
                             struct sp_quic_endpoint *ep, const struct sockaddr *remote,
                             socklen_t remote_len, const ngtcp2_pkt_hd *hd, const ngtcp2_cid *scid,
                             const struct sp_quic_conn_params *params, gnutls_session_t tls,
                             const struct sp_quic_app_ops *app);

/* Creates a client connection to remote over ep (a connected socket). Takes ownership of tls.
 * Returns 0 or negative errno. Worker thread. */
int sp_quic_conn_init_client(struct sp_quic_conn *qc, struct ev_loop *loop,
                             struct sp_quic_endpoint *ep, const struct sockaddr *remote,
                             socklen_t remote_len, const struct sp_quic_conn_params *params,
                             gnutls_session_t tls, const struct sp_quic_app_ops *app);

/* Releases everything. The conn must not be referenced by any watcher afterwards. Zeroed is
 * fine. */
void sp_quic_conn_fini(struct sp_quic_conn *qc);

/* Feeds one received datagram. On a fatal error the connection is closed (app on_closed is called)
 * and -ECONNABORTED is returned. */
int sp_quic_conn_read(struct sp_quic_conn *qc, const struct sockaddr *remote, socklen_t remote_len,
                      const uint8_t *data, size_t len, uint8_t ecn);

/* Sends whatever ngtcp2 and the application have pending and re-arms the timer. With qc->defer
 * set, the send happens once at the end of the loop turn however often this is called. Safe to
 * call from application callbacks (never re-enters ngtcp2). */
void sp_quic_conn_write(struct sp_quic_conn *qc);

/* Closes the connection with an application error (e.g. H3_NO_ERROR), sending CONNECTION_CLOSE.
 * Calls the app's on_closed. Idempotent. */
void sp_quic_conn_close(struct sp_quic_conn *qc, uint64_t app_error_code, const char *reason);

/* Gives `len` bytes of a stream back to the stream's flow control only (the connection's credit
 * was returned separately). */
void sp_quic_conn_consume_stream(struct sp_quic_conn *qc, int64_t stream_id, uint64_t len);

/* Gives `len` bytes of a stream back to flow control (after the application consumed them). */
void sp_quic_conn_consume(struct sp_quic_conn *qc, int64_t stream_id, uint64_t len);

/* Shuts both directions of a stream with app_error_code (RESET_STREAM + STOP_SENDING). */
void sp_quic_conn_shutdown_stream(struct sp_quic_conn *qc, int64_t stream_id,
                                  uint64_t app_error_code);

/* Sends an ack-eliciting packet (a PING unless data goes anyway) on the next write, so that a
 * live peer answers with an ACK. */
void sp_quic_conn_ping(struct sp_quic_conn *qc);

/* Liveness: true when sent data has gone unacknowledged (RFC 9002 loss detection keeps probing)
 * for at least max(3 PTO, floor_ns) at now: the peer is gone or unreachable. Call it
 * periodically (it remembers since when no ACK made progress); false before the handshake. */
bool sp_quic_conn_unresponsive(struct sp_quic_conn *qc, sp_time_t now, sp_time_t floor_ns);

/* Returns the smoothed RTT (RFC 9002 §5.3) of qc, or 0 before the handshake completed. */
sp_time_t sp_quic_conn_rtt_ns(const struct sp_quic_conn *qc);

#endif
