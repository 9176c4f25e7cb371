/* h3.c: the HTTP/3 backend protocol: a connected UDP socket per connection, QUIC + HTTP/3 through
 * http/h3.h, adapted to the neutral upstream contract (upstream.h). */
#include "core/log.h"
#include "core/util.h"
#include "http/h3.h"
#include "upstream/upstream.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RX_BUDGET 64
/* Liveness checks per dead_after period (the detection lag is at most one tick). */
#define LIVENESS_TICKS 4

struct uh3_conn {
    struct sp_h3_conn *h3;            /* owned */
    struct sp_quic_endpoint ep;       /* owns ep.fd: a connected UDP socket */
    ev_io io;                         /* readable socket */
    struct ev_loop *loop;             /* borrowed */
    const struct sp_uconn_events *ev; /* borrowed */
    void *ctx;                        /* borrowed */
    ev_timer live;                    /* liveness checks while ready (pool.dead_after_ms) */
    sp_time_t dead_after_ns;          /* pool.dead_after_ms; 0 = no liveness checks */
    sp_time_t last_rx_ns;             /* when the last datagram arrived */
    bool ready;
};

/* ---- request streams ---------------------------------------------------------------------- */

static struct sp_ustream *us_of(void *user)
{
    return user;
}

static void a_on_headers(struct sp_h3_stream *s, void *user)
{
    struct sp_ustream *us = us_of(user);

    (void)s;
    us->cbs->on_headers(us, us->user);
}

static void a_on_data(struct sp_h3_stream *s, void *user, const uint8_t *data, size_t len)
{
    struct sp_ustream *us = us_of(user);

    (void)s;
    us->cbs->on_data(us, us->user, data, len);
}

static void a_on_trailers(struct sp_h3_stream *s, void *user)
{
    (void)s;
    (void)user; /* delivered with on_end */
}

static void a_on_end(struct sp_h3_stream *s, void *user)
{
    struct sp_ustream *us = us_of(user);

    (void)s;
    us->cbs->on_end(us, us->user);
}

static void a_on_sent(struct sp_h3_stream *s, void *user, uint64_t len)
{
    struct sp_ustream *us = us_of(user);

    (void)s;
    us->cbs->on_sent(us, us->user, len);
}

static void a_on_close(struct sp_h3_stream *s, void *user, uint64_t app_error)
{
    struct sp_ustream *us = us_of(user);
    struct sp_quic_conn *qc = sp_h3_conn_quic(sp_h3_stream_conn(s));
    enum sp_ustream_error err = SP_USTREAM_OK;

    if (app_error == SP_H3_REQUEST_REJECTED)
        err = SP_USTREAM_REFUSED; /* RFC 9114 §8.1, §5.2: not processed, safe to retry */
    else if (app_error != 0 && !sp_h3_stream_sent_any(s))
        err = SP_USTREAM_REFUSED; /* no byte of it ever left: the backend never saw it */
    else if (app_error != 0)
        err = qc->state == SP_QUIC_CONN_CLOSED ? SP_USTREAM_CONN_LOST : SP_USTREAM_RESET;
    if (app_error != 0)
        SP_LOG_DEBUG("upstream", "event=stream_closed proto=h3 app_error=0x%llx sent=%d err=%d",
                     (unsigned long long)app_error, sp_h3_stream_sent_any(s), (int)err);
    us->impl = NULL;
    us->cbs->on_close(us, us->user, err);
}

static void a_on_stop(struct sp_h3_stream *s, void *user)
{
    struct sp_ustream *us = us_of(user);

    (void)s;
    if (us->cbs->on_stop != NULL)
        us->cbs->on_stop(us, us->user);
}

static const struct sp_h3_stream_ops adapter_ops = {
    .on_headers = a_on_headers,
    .on_data = a_on_data,
    .on_trailers = a_on_trailers,
    .on_end = a_on_end,
    .on_sent = a_on_sent,
    .on_close = a_on_close,
    .on_stop = a_on_stop,
};

static void s_write(void *impl, const uint8_t *data, size_t len)
{
    sp_h3_stream_write(impl, data, len);
}

static void s_end(void *impl, const struct sp_field *trailers, size_t n)
{
    sp_h3_stream_end(impl, trailers, n);
}

static void s_consume(void *impl, uint64_t len)
{
    sp_h3_stream_consume(impl, len);
}

static void s_cancel(void *impl)
{
    sp_h3_stream_set_user(impl, NULL, NULL);
    sp_h3_stream_reset(impl, SP_H3_REQUEST_CANCELLED);
}

static unsigned s_status(const void *impl)
{
    return sp_h3_stream_status(impl);
}

static const struct sp_fields *s_headers(const void *impl)
{
    return sp_h3_stream_headers(impl);
}

static const struct sp_fields *s_trailers(const void *impl)
{
    return sp_h3_stream_trailers(impl);
}

static int s_describe(const void *impl, char *buf, size_t len)
{
    return sp_h3_stream_describe(impl, buf, len);
}

static const struct sp_ustream_ops stream_ops = {
    .write = s_write,
    .end = s_end,
    .consume = s_consume,
    .cancel = s_cancel,
    .status = s_status,
    .headers = s_headers,
    .trailers = s_trailers,
    .describe = s_describe,
};

/* ---- connection events -------------------------------------------------------------------- */

/* Liveness (DESIGN §5: failures are found by the transport, not by request timeouts): a
 * connection whose sent data stays unacknowledged past max(3 PTO, dead_after) is dead; one that
 * carries requests but has heard nothing for half of dead_after is PINGed, so that a backend
 * that vanished while computing a response is noticed too. */
static void on_live(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct uh3_conn *u = SP_CONTAINER_OF(w, struct uh3_conn, live);
    struct sp_quic_conn *qc = sp_h3_conn_quic(u->h3);
    sp_time_t now = sp_time_now();

    (void)loop;
    (void)revents;
    if (sp_quic_conn_unresponsive(qc, now, u->dead_after_ns)) {
        sp_quic_conn_close(qc, SP_H3_NO_ERROR, "unresponsive");
        return;
    }
    if (sp_h3_conn_active_streams(u->h3) > 0 && now - u->last_rx_ns >= u->dead_after_ns / 2)
        sp_quic_conn_ping(qc);
}

static void on_ready(struct sp_h3_conn *c, void *ctx)
{
    struct uh3_conn *u = ctx;

    (void)c;
    u->ready = true;
    if (u->dead_after_ns > 0) {
        double tick = (double)u->dead_after_ns / LIVENESS_TICKS / (double)SP_SEC;

        ev_timer_init(&u->live, on_live, tick, tick);
        ev_timer_start(u->loop, &u->live);
    }
    u->ev->on_ready(u->ctx);
}

static void on_streams_available(struct sp_h3_conn *c, void *ctx)
{
    struct uh3_conn *u = ctx;

    (void)c;
    u->ev->on_streams_available(u->ctx);
}

static void on_goaway(struct sp_h3_conn *c, void *ctx)
{
    struct uh3_conn *u = ctx;

    (void)c;
    u->ev->on_goaway(u->ctx);
}

static void on_conn_closed(struct sp_h3_conn *c, void *ctx, const char *reason)
{
    struct uh3_conn *u = ctx;

    (void)c;
    ev_io_stop(u->loop, &u->io);
    ev_timer_stop(u->loop, &u->live);
    u->ev->on_closed(u->ctx, reason);
}

static const struct sp_h3_client_ops client_ops = {
    .on_ready = on_ready,
    .on_streams_available = on_streams_available,
    .on_goaway = on_goaway,
    .on_conn_closed = on_conn_closed,
};

/* Reads the socket's error queue (IP_RECVERR) empty; returns the last ICMP error's errno that
 * says the backend cannot be reached (0 when none). */
static int drain_errors(int fd)
{
    int fatal = 0;

    for (int i = 0; i < RX_BUDGET; i++) {
        union {
            char buf[CMSG_SPACE(sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in6))];
            struct cmsghdr align;
        } ctl;
        uint8_t data[64];
        struct iovec iov = {data, sizeof(data)};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = ctl.buf,
                             .msg_controllen = sizeof(ctl.buf)};

        if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) == -1)
            break;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
            const struct sock_extended_err *ee = (const void *)CMSG_DATA(cm);

            if (ee->ee_origin != SO_EE_ORIGIN_ICMP && ee->ee_origin != SO_EE_ORIGIN_ICMP6)
                continue;
            if (ee->ee_errno == ECONNREFUSED || ee->ee_errno == EHOSTUNREACH ||
                ee->ee_errno == ENETUNREACH || ee->ee_errno == EHOSTDOWN)
                fatal = (int)ee->ee_errno;
        }
    }
    return fatal;
}

/* A receive error on the connected socket. ICMP port, host or network unreachable (RFC 1122
 * §4.1.3.3: a UDP application is told) means the backend is gone: fail the connection now,
 * whatever its state, so its requests fail over at once rather than wait for a timeout. Other
 * errors (a too-big report for path MTU, a transient one) leave it to QUIC. */
static bool on_socket_error(struct uh3_conn *u, int err)
{
    struct sp_quic_conn *qc = sp_h3_conn_quic(u->h3);
    int icmp = drain_errors(u->ep.fd);

    if (icmp == 0 && (err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH))
        icmp = err;
    if (icmp == 0)
        return false;
    sp_quic_conn_close(qc, SP_H3_NO_ERROR,
                       !u->ready              ? "connect"
                       : icmp == ECONNREFUSED ? "port_unreachable"
                                              : "host_unreachable");
    return true;
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct uh3_conn *u = SP_CONTAINER_OF(w, struct uh3_conn, io);
    struct sp_quic_conn *qc = sp_h3_conn_quic(u->h3);
    static _Thread_local uint8_t buf[65536];

    (void)loop;
    (void)revents;
    for (int i = 0; i < RX_BUDGET; i++) {
        ssize_t n = recv(u->ep.fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (n == -1) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                on_socket_error(u, errno))
                return;
            break; /* drained: now send the ACKs and whatever the packets unblocked */
        }
        u->last_rx_ns = sp_time_now();
        if (sp_quic_conn_read(qc, (struct sockaddr *)&qc->remote, qc->remote_len, buf, (size_t)n,
                              0) != 0)
            return;
    }
    sp_quic_conn_write(qc);
}

/* ---- connection ops ----------------------------------------------------------------------- */

static int open_socket(struct uh3_conn *u, const struct sp_backend_conf *be)
{
    int fd = socket(be->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd == -1)
        return -errno;
    if (connect(fd, (const struct sockaddr *)&be->addr, be->addrlen) == -1) {
        int rv = -errno;

        (void)close(fd);
        return rv;
    }
    /* ICMP errors (port, host, network unreachable) reach us as receive errors even when the
     * kernel deems them soft (host and network unreachable): the backend is gone, act now. */
    if (be->addr.ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &(int){1}, sizeof(int));
    else
        (void)setsockopt(fd, IPPROTO_IP, IP_RECVERR, &(int){1}, sizeof(int));
    u->ep.fd = fd;
    u->ep.connected = true;
    u->ep.local_len = sizeof(u->ep.local);
    (void)getsockname(fd, (struct sockaddr *)&u->ep.local, &u->ep.local_len);
    return 0;
}

static int c_open(const struct sp_uconn_params *p, void **ret_impl)
{
    struct uh3_conn *u = sp_xcalloc(1, sizeof(*u));
    struct sp_quic_conn_params qp = {
        .stream_window_bytes = p->limits->stream_window_bytes,
        .connection_window_bytes = p->limits->connection_window_bytes,
        .max_streams_bidi = 0, /* backends do not open request streams to us */
        .idle_timeout_ns = p->timeouts->backend_idle_ms * SP_MS,
        .handshake_timeout_ns = p->timeouts->connect_ms * SP_MS,
        .keepalive_ns = p->pool->keepalive_ms * SP_MS,
    };
    struct sp_h3_limits lim = {.max_header_bytes = p->limits->max_header_bytes,
                               .max_headers = p->limits->max_headers};
    gnutls_session_t tls;
    int rv;

    u->loop = p->loop;
    u->ev = p->events;
    u->ctx = p->ctx;
    u->dead_after_ns = p->pool->dead_after_ms * SP_MS;
    u->last_rx_ns = sp_time_now();
    ev_init(&u->live, on_live);
    rv = open_socket(u, p->backend);
    if (rv != 0)
        goto out_free;
    rv = sp_tls_client_session_new(p->tls, p->verify_name, NULL, &tls);
    if (rv != 0)
        goto out_close;
    rv = sp_h3_conn_new_client(p->loop, &u->ep, (const struct sockaddr *)&p->backend->addr,
                               p->backend->addrlen, &qp, &lim, tls, &client_ops, u, &u->h3);
    if (rv != 0)
        goto out_close;
    sp_h3_conn_quic(u->h3)->defer = p->defer;
    ev_io_init(&u->io, on_readable, u->ep.fd, EV_READ);
    ev_io_start(p->loop, &u->io);
    sp_quic_conn_write(sp_h3_conn_quic(u->h3));
    *ret_impl = u;
    return 0;

out_close:
    (void)close(u->ep.fd);
out_free:
    free(u);
    return rv;
}

static void c_close(void *impl, const char *reason)
{
    struct uh3_conn *u = impl;

    sp_h3_conn_close(u->h3, reason);
}

static void c_free(void *impl)
{
    struct uh3_conn *u = impl;

    ev_io_stop(u->loop, &u->io);
    ev_timer_stop(u->loop, &u->live);
    sp_h3_conn_free(u->h3);
    (void)close(u->ep.fd);
    free(u);
}

static size_t c_active(const void *impl)
{
    const struct uh3_conn *u = impl;

    return sp_h3_conn_active_streams(u->h3);
}

static uint64_t c_streams_left(const void *impl)
{
    const struct uh3_conn *u = impl;

    return u->ready ? sp_h3_conn_streams_left(u->h3) : 0;
}

static int c_submit(void *impl, const struct sp_field *fields, size_t n, bool has_body,
                    struct sp_ustream *s)
{
    struct uh3_conn *u = impl;
    struct sp_h3_stream *hs;
    int rv = sp_h3_conn_submit_request(u->h3, fields, n, has_body, &adapter_ops, s, &hs);

    if (rv != 0)
        return rv;
    s->ops = &stream_ops;
    s->impl = hs;
    return 0;
}

static sp_time_t c_handshake_ns(const void *impl)
{
    const struct uh3_conn *u = impl;

    return sp_h3_conn_quic(u->h3)->handshake_ns;
}

static sp_time_t c_rtt_ns(const void *impl)
{
    const struct uh3_conn *u = impl;

    return sp_quic_conn_rtt_ns(sp_h3_conn_quic(u->h3));
}

const struct sp_uconn_ops sp_uconn_h3_ops = {
    .name = "h3",
    .open = c_open,
    .close = c_close,
    .free = c_free,
    .active = c_active,
    .streams_left = c_streams_left,
    .submit = c_submit,
    .handshake_ns = c_handshake_ns,
    .rtt_ns = c_rtt_ns,
};
