/* listener.h: a worker's QUIC server socket. Receives datagrams (with UDP GRO), routes them to
 * connections by destination connection ID, accepts new connections through the owner's
 * on_accept, answers unknown versions with Version Negotiation (RFC 9000 §6) and unknown
 * short-header packets with a Stateless Reset (RFC 9000 §10.3). One per worker per configured
 * listener; the socket uses SO_REUSEPORT so every worker binds the same address.
 * Single-threaded. */
#ifndef SP_QUIC_LISTENER_H
#define SP_QUIC_LISTENER_H

#include <ev.h>
#include <stddef.h>
#include <sys/socket.h>

#include "quic/conn.h"

struct sp_quic_listener;

struct sp_quic_listener_ops {
    /* A valid client Initial for an unknown connection: create the application connection
     * (embedding an sp_quic_conn initialised with hd and scid) and return its quic part, or
     * NULL to refuse. The listener then registers the CIDs and feeds the packet. */
    struct sp_quic_conn *(*on_accept)(struct sp_quic_listener *l, void *ctx,
                                      const ngtcp2_pkt_hd *hd, const ngtcp2_cid *scid,
                                      const struct sockaddr *remote, socklen_t remote_len);
};

/* Opens the UDP socket bound to addr (SO_REUSEPORT) and starts reading. ops/ctx borrowed.
 * Returns 0 or negative errno (bind failures are -errno from bind(2)). Worker thread. */
int sp_quic_listener_new(struct ev_loop *loop, const struct sockaddr *addr, socklen_t addrlen,
                         const struct sp_quic_listener_ops *ops, void *ctx,
                         struct sp_quic_listener **ret);

/* Stops reading and closes the socket. Connections must have been forgotten first. NULL ok. */
void sp_quic_listener_free(struct sp_quic_listener *l);

/* The endpoint new connections send through. */
struct sp_quic_endpoint *sp_quic_listener_endpoint(struct sp_quic_listener *l);

/* Removes every CID of qc from the routing table; call when qc is closed, before freeing it. */
void sp_quic_listener_forget(struct sp_quic_listener *l, struct sp_quic_conn *qc);

/* Stops accepting new connections (existing ones keep being served). */
void sp_quic_listener_stop_accepting(struct sp_quic_listener *l);

#endif
