/* h3.c: the HTTP/3 backend protocol: a connected UDP socket per connection, QUIC + HTTP/3 through
 * http/h3.h, adapted to the neutral upstream contract (upstream.h). */
#include "core/log.h"
#include "core/util.h"
#include "http/h3.h"
#include "upstream/upstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RX_BUDGET 64

struct uh3_conn {
    struct sp_h3_conn *h3;            /* owned */
    struct sp_quic_endpoint ep;       /* owns ep.fd: a connected UDP socket */
    ev_io io;                         /* readable socket */
    struct ev_loop *loop;             /* borrowed */
    const struct sp_uconn_events *ev; /* borrowed */
    void *ctx;                        /* borrowed */
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
        err = SP_USTREAM_REFUSED; /* RFC 9114 §8.1: not processed, safe to retry */
    else if (app_error != 0)
        err = qc->state == SP_QUIC_CONN_CLOSED ? SP_USTREAM_CONN_LOST : SP_USTREAM_RESET;
    us->impl = NULL;
    us->cbs->on_close(us, us->user, err);
}

static const struct sp_h3_stream_ops adapter_ops = {
    .on_headers = a_on_headers,
    .on_data = a_on_data,
    .on_trailers = a_on_trailers,
    .on_end = a_on_end,
    .on_sent = a_on_sent,
    .on_close = a_on_close,
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

static void on_ready(struct sp_h3_conn *c, void *ctx)
{
    struct uh3_conn *u = ctx;

    (void)c;
    u->ready = true;
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
    u->ev->on_closed(u->ctx, reason);
}

static const struct sp_h3_client_ops client_ops = {
    .on_ready = on_ready,
    .on_streams_available = on_streams_available,
    .on_goaway = on_goaway,
    .on_conn_closed = on_conn_closed,
};

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
            /* ECONNREFUSED (ICMP port unreachable) means nobody listens: fail fast. */
            if (errno == ECONNREFUSED && !u->ready) {
                sp_quic_conn_close(qc, 0, "connect");
                return;
            }
            break; /* drained: now send the ACKs and whatever the packets unblocked */
        }
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
    };
    struct sp_h3_limits lim = {.max_header_bytes = p->limits->max_header_bytes,
                               .max_headers = p->limits->max_headers};
    gnutls_session_t tls;
    int rv;

    u->loop = p->loop;
    u->ev = p->events;
    u->ctx = p->ctx;
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
