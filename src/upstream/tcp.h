/* tcp.h: a non-blocking TCP connection to a backend, optionally inside TLS (GnuTLS), for the
 * HTTP/2 and HTTP/1.1 backend protocols. Byte-stream I/O driven by the worker's libev loop.
 *
 * Connect is non-blocking with a timeout (timeouts.connect_ms covers TCP connect and the TLS
 * handshake); sockets get TCP_NODELAY, TCP keep-alive and, when asked, TCP_USER_TIMEOUT (a dead
 * peer that stops acknowledging is found in that time, like the QUIC side's dead_after). With TLS,
 * the handshake verifies the backend certificate against verify_name (unless the credentials
 * disable verification) and offers one ALPN protocol. Events are delivered to the owner (the h2/h1
 * connection), which must not free the sp_tcp from inside an event: it calls sp_tcp_free from a
 * deferred context. Single-threaded. */
#ifndef SP_UPSTREAM_TCP_H
#define SP_UPSTREAM_TCP_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/time.h"
#include "tls/tls.h"

struct sp_tcp;

struct sp_tcp_events {
    /* TCP connected and, with TLS, the handshake done (ALPN checked). */
    void (*on_connected)(void *ctx);
    /* Bytes (or EOF) may be read: call sp_tcp_read until it returns -EAGAIN. */
    void (*on_readable)(void *ctx);
    /* After sp_tcp_write returned -EAGAIN or a short count: the socket takes more now. */
    void (*on_writable)(void *ctx);
    /* Connect refused/timed out, TLS failure, or an I/O error. reason is static: "connect",
     * "connect_timeout", "handshake", "tls_error", "io_error". No event follows. */
    void (*on_error)(void *ctx, const char *reason);
};

struct sp_tcp_params {
    struct ev_loop *loop;        /* borrowed */
    const struct sockaddr *addr; /* borrowed; copied */
    socklen_t addrlen;
    sp_time_t connect_timeout_ns;       /* TCP connect + TLS handshake */
    const struct sp_tls_client *tls;    /* borrowed; NULL = cleartext */
    const char *verify_name;            /* SNI / certificate name (TLS only) */
    const char *alpn;                   /* e.g. "h2" or "http/1.1" (TLS only); mandatory */
    sp_time_t keepalive_ns;             /* TCP keep-alive probes after the shorter of this and
                                           user_timeout_ns idle (whole seconds, at least 1); both 0 =
                                           after 30 s */
    sp_time_t user_timeout_ns;          /* TCP_USER_TIMEOUT: unacknowledged data this long ends the
                                           connection (-ETIMEDOUT); 0 = the kernel's default */
    const struct sp_tcp_events *events; /* borrowed */
    void *ctx;                          /* borrowed; passed to events */
};

/* Starts connecting. Returns 0 with *ret, or negative errno (nothing allocated). */
int sp_tcp_open(const struct sp_tcp_params *p, struct sp_tcp **ret);

/* Reads up to cap bytes. Returns the count (> 0), 0 on orderly EOF from the peer, -EAGAIN when
 * nothing is available, or another negative errno (-ECONNRESET, -EPROTO for TLS errors). */
ssize_t sp_tcp_read(struct sp_tcp *t, uint8_t *buf, size_t cap);

/* Writes up to len bytes. Returns how many were taken (may be fewer than len; then on_writable
 * follows when more fit), -EAGAIN when none, or another negative errno. With TLS, a record that
 * was partly sent must be retried with the same data (GnuTLS rule): keep the bytes until taken. */
ssize_t sp_tcp_write(struct sp_tcp *t, const uint8_t *data, size_t len);

/* Stops (paused) or restarts reading events: how a protocol stops taking bytes from a backend
 * while the client side has not consumed what it already has. Resuming does not replay
 * readiness (TLS may hold decrypted bytes): the owner reads once itself after resuming. */
void sp_tcp_pause_read(struct sp_tcp *t, bool paused);

/* Closes the socket (TLS close_notify best effort) and frees. NULL is fine. Never from inside
 * one of t's own events: defer it. */
void sp_tcp_free(struct sp_tcp *t);

/* Stops all events (use before deferring sp_tcp_free). */
void sp_tcp_stop(struct sp_tcp *t);

/* The connection-close reason for a read or write error (negative errno): "peer_reset"
 * (ECONNRESET, EPIPE), "unresponsive" (ETIMEDOUT: TCP_USER_TIMEOUT or keep-alive probes
 * unanswered), "host_unreachable" (EHOSTUNREACH, ENETUNREACH), else "io_error". Static. */
const char *sp_tcp_error_reason(ssize_t err);

/* Connect + handshake duration (0 until connected). */
sp_time_t sp_tcp_handshake_ns(const struct sp_tcp *t);

#endif
