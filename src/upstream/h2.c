/* h2.c: the HTTP/2 backend protocol (RFC 9113) on nghttp2 over sp_tcp: TLS with ALPN "h2"
 * (protocol h2) or cleartext with prior knowledge (h2c, RFC 9113 §3.3), adapted to the neutral
 * upstream contract (upstream.h). One connection carries many requests, up to the backend's
 * SETTINGS_MAX_CONCURRENT_STREAMS. Request streams live in h2_stream.c.
 *
 * I/O: everything nghttp2 wants to send during a loop turn is framed into one output buffer and
 * written once at the end of the turn (sp_defer), so small frames share TCP segments and TLS
 * records. The buffer is bounded (SP_UH2_OBUF_HIGH): beyond it nghttp2 keeps its frames queued and
 * the request bodies stay in their sp_bodybuf until the socket drains. Flow control is end to end:
 * automatic WINDOW_UPDATEs are off, and credit for response bytes returns only when the proxy
 * consumes them (h2_stream.c). Liveness: once ready, a tick every backend_idle_ms/3: a tick that
 * saw no bytes from the backend sends a PING, and the next tick without any bytes closes the
 * connection ("ping_timeout"). */
#include "core/log.h"
#include "core/util.h"
#include "upstream/h2_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RX_BUDGET 64             /* reads per readable event before yielding */
#define FLUSH_ROUNDS 256         /* send passes per flush; each frames up to the buffer cap */
#define MIN_PING_INTERVAL_S 0.05 /* floor of the liveness tick for tiny backend_idle_ms */
#define MAX_STREAM_ID INT32_C(0x7fffffff)

static void conn_down(struct uh2_conn *c, const char *reason);
static void flush_now(struct uh2_conn *c);

/* ---- output buffer ------------------------------------------------------------------------- */

size_t sp_uh2_obuf_pending(const struct uh2_conn *c)
{
    return c->olen - c->ooff;
}

void sp_uh2_obuf_append(struct uh2_conn *c, const uint8_t *data, size_t len)
{
    if (c->olen + len > c->ocap && c->ooff > 0) {
        /* Slide the unsent bytes down. Their content is unchanged, which is all a TLS retry of
         * an EAGAIN write needs (GnuTLS has the record already). */
        memmove(c->obuf, c->obuf + c->ooff, c->olen - c->ooff);
        c->olen -= c->ooff;
        c->ooff = 0;
    }
    if (c->olen + len > c->ocap) {
        c->ocap = SP_MAX(c->ocap * 2, c->olen + len);
        c->obuf = sp_xrealloc(c->obuf, c->ocap);
    }
    memcpy(c->obuf + c->olen, data, len);
    c->olen += len;
}

/* Writes the output buffer. Returns 0 once empty, -EAGAIN when the socket is full (on_writable
 * follows), or another negative errno. */
static int write_out(struct uh2_conn *c)
{
    /* Bounded: every pass either takes bytes or returns. */
    while (c->ooff < c->olen) {
        /* GnuTLS rule (tcp.h): a write that returned EAGAIN is retried with the same length. */
        size_t len = c->retry_len > 0 ? c->retry_len : c->olen - c->ooff;
        ssize_t n = sp_tcp_write(c->tcp, c->obuf + c->ooff, len);

        if (n == -EAGAIN || n == 0) {
            c->retry_len = len;
            return -EAGAIN;
        }
        if (n < 0)
            return (int)n;
        c->retry_len = 0;
        c->ooff += (size_t)n;
    }
    c->ooff = 0;
    c->olen = 0;
    return 0;
}

/* ---- owner notifications ------------------------------------------------------------------- */

static void start_liveness(struct uh2_conn *c)
{
    ev_timer_stop(c->loop, &c->timer);
    ev_timer_set(&c->timer, c->ping_interval_s, c->ping_interval_s);
    ev_timer_start(c->loop, &c->timer);
}

/* Gives the owner what the last nghttp2 call produced, outside nghttp2 (the owner may submit,
 * or close us, from these events). */
static void notify_owner(struct uh2_conn *c)
{
    if (c->down_reason != NULL) {
        conn_down(c, c->down_reason);
        return;
    }
    if (c->notify_ready && !c->closed) {
        c->notify_ready = false;
        start_liveness(c);
        c->ev->on_ready(c->ctx);
    }
    if (c->notify_goaway && !c->closed) {
        c->notify_goaway = false;
        c->ev->on_goaway(c->ctx);
    }
    if (c->notify_streams && !c->closed) {
        c->notify_streams = false;
        c->ev->on_streams_available(c->ctx);
    }
}

/* ---- flush --------------------------------------------------------------------------------- */

static void on_flush(void *arg)
{
    struct uh2_conn *c = arg;

    c->flush_scheduled = false;
    flush_now(c);
}

void sp_uh2_schedule_flush(struct uh2_conn *c)
{
    /* A closed conn queues nothing, and a queued flush runs before the conn's deferred free
     * (queued later, by the owner's on_closed), so the flush never sees freed memory. */
    if (c->closed || c->flush_scheduled || !c->tcp_up)
        return;
    c->flush_scheduled = true;
    sp_defer_add(c->defer, on_flush, c);
}

/* Frames what nghttp2 has into the output buffer. Returns 0 or -EPROTO. */
static int frame_out(struct uh2_conn *c)
{
    int rv;

    c->in_ng++;
    rv = nghttp2_session_send(c->ng);
    c->in_ng--;
    if (rv != 0) {
        SP_LOG_DEBUG("upstream", "event=h2_error op=send err=\"%s\"", nghttp2_strerror(rv));
        return -EPROTO;
    }
    return 0;
}

static void flush_now(struct uh2_conn *c)
{
    bool more = true; /* the round budget ran out with bytes still coming */
    int rv = 0;

    if (c->closed || !c->tcp_up)
        return;
    for (int round = 0; round < FLUSH_ROUNDS && more; round++) {
        rv = write_out(c);
        /* want_write can stay true with nothing sendable (streams blocked on the peer's
         * limits): an empty pass ends the flush, new work schedules another one. */
        more = rv == 0 && c->down_reason == NULL && nghttp2_session_want_write(c->ng);
        if (more) {
            rv = frame_out(c);
            more = rv == 0 && sp_uh2_obuf_pending(c) > 0;
        }
    }
    if (rv != 0 && rv != -EAGAIN) {
        conn_down(c, rv == -EPROTO ? "protocol_error" : sp_tcp_error_reason(rv));
        return;
    }
    if (more)
        sp_uh2_schedule_flush(c); /* round budget used up: carry on later this turn */
    c->in_ng++;                   /* the users' on_sent may not tear the list down under us */
    sp_uh2_streams_report_sent(c);
    c->in_ng--;
    notify_owner(c);
    if (!c->closed && !nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng))
        conn_down(c, c->goaway ? "goaway" : "protocol_error"); /* the session is over */
}

/* ---- nghttp2 callbacks --------------------------------------------------------------------- */

static ssize_t cb_send(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                       void *user_data)
{
    struct uh2_conn *c = user_data;

    (void)session;
    (void)flags;
    if (sp_uh2_obuf_pending(c) >= SP_UH2_OBUF_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    sp_uh2_obuf_append(c, data, length);
    return (ssize_t)length;
}

static struct uh2_stream *stream_of(nghttp2_session *session, int32_t id)
{
    return id > 0 ? nghttp2_session_get_stream_user_data(session, id) : NULL;
}

static void on_settings(struct uh2_conn *c)
{
    if (!c->ready) {
        /* The backend's SETTINGS prove it speaks HTTP/2 (for h2c, the only proof) and carry
         * its MAX_CONCURRENT_STREAMS: only now may requests go. */
        c->ready = true;
        c->handshake_ns = sp_time_now() - c->started_ns;
        c->notify_ready = true;
    } else {
        c->notify_streams = true; /* MAX_CONCURRENT_STREAMS may have grown */
    }
}

static int cb_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct uh2_conn *c = user_data;
    struct uh2_stream *s;

    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0)
            on_settings(c);
        return 0;
    case NGHTTP2_GOAWAY:
        /* RFC 9113 §6.8: nothing new here; nghttp2 closes our streams above last_stream_id
         * with REFUSED_STREAM, which the proxy retries elsewhere. */
        c->goaway = true;
        c->goaway_last_id = frame->goaway.last_stream_id;
        c->notify_goaway = true;
        return 0;
    case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0)
            c->ping_outstanding = false;
        return 0;
    default:
        break;
    }
    s = stream_of(session, frame->hd.stream_id);
    if (s != NULL)
        sp_uh2_stream_on_frame(s, frame);
    return 0;
}

static int cb_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct uh2_stream *s;

    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    s = stream_of(session, frame->hd.stream_id);
    if (s != NULL)
        s->headers_sent = true;
    return 0;
}

static int cb_frame_not_send(nghttp2_session *session, const nghttp2_frame *frame,
                             int lib_error_code, void *user_data)
{
    struct uh2_conn *c = user_data;
    struct uh2_stream *s;

    (void)session;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    /* The request never left (GOAWAY received, cancelled, ...): nghttp2 has no stream for it,
     * so look it up in our list. */
    s = sp_uh2_stream_find(c, frame->hd.stream_id);
    SP_LOG_DEBUG("upstream", "event=h2_request_not_sent stream=%d err=\"%s\"",
                 (int)frame->hd.stream_id, nghttp2_strerror(lib_error_code));
    if (s != NULL && !s->headers_sent) {
        sp_uh2_stream_not_sent(s);
        c->notify_streams = true;
    }
    return 0;
}

static int cb_invalid_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
                                 int lib_error_code, void *user_data)
{
    struct uh2_stream *s = stream_of(session, frame->hd.stream_id);

    (void)user_data;
    SP_LOG_DEBUG("upstream", "event=h2_invalid_frame type=%u stream=%d err=\"%s\"",
                 (unsigned)frame->hd.type, (int)frame->hd.stream_id,
                 nghttp2_strerror(lib_error_code));
    if (s != NULL)
        s->malformed = true; /* nghttp2 resets the stream with PROTOCOL_ERROR */
    return 0;
}

static int cb_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                              const uint8_t *data, size_t len, void *user_data)
{
    struct uh2_stream *s = stream_of(session, stream_id);

    (void)flags;
    (void)user_data;
    if (s == NULL) {
        (void)nghttp2_session_consume(session, stream_id, len); /* nobody's: keep windows open */
        return 0;
    }
    sp_uh2_stream_on_data(s, data, len);
    return 0;
}

static int cb_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    struct uh2_conn *c = user_data;
    struct uh2_stream *s = stream_of(session, stream_id);

    if (s != NULL)
        sp_uh2_stream_on_close(s, error_code);
    /* Also after GOAWAY: the owner learns the connection may now be idle. */
    c->notify_streams = true;
    return 0;
}

static int cb_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct uh2_stream *s = stream_of(session, frame->hd.stream_id);

    (void)user_data;
    if (s != NULL && frame->hd.type == NGHTTP2_HEADERS)
        sp_uh2_stream_on_begin_headers(s);
    return 0;
}

static int cb_header(nghttp2_session *session, const nghttp2_frame *frame, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *user_data)
{
    struct uh2_stream *s = stream_of(session, frame->hd.stream_id);

    (void)flags;
    (void)user_data;
    if (s != NULL && frame->hd.type == NGHTTP2_HEADERS)
        sp_uh2_stream_on_header(s, name, value);
    return 0;
}

static nghttp2_session_callbacks *make_callbacks(void)
{
    nghttp2_session_callbacks *cbs;

    if (nghttp2_session_callbacks_new(&cbs) != 0)
        abort(); /* only fails on OOM: see sp_xmalloc */
    nghttp2_session_callbacks_set_send_callback(cbs, cb_send);
    nghttp2_session_callbacks_set_send_data_callback(cbs, sp_uh2_send_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cb_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, cb_frame_send);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, cb_frame_not_send);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, cb_invalid_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cb_data_chunk_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cb_stream_close);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, cb_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cbs, cb_header);
    return cbs;
}

/* Creates the nghttp2 session with our SETTINGS queued (sent after the preface once connected).
 * Returns 0 or -ENOMEM. */
static int session_new(struct uh2_conn *c, const struct sp_limits_conf *lim)
{
    nghttp2_session_callbacks *cbs = make_callbacks();
    nghttp2_option *opt;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)lim->stream_window_bytes},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)lim->max_header_bytes},
    };
    int rv;

    if (nghttp2_option_new(&opt) != 0)
        abort(); /* only fails on OOM */
    /* Credit returns only when the proxy consumes (end-to-end backpressure). */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    rv = nghttp2_session_client_new2(&c->ng, cbs, c, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0)
        return -ENOMEM;
    /* Both only queue frames; they fail on OOM alone (stream_window <= 2^31-1 by config). */
    rv = nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, SP_ARRAY_LEN(iv));
    if (rv == 0)
        rv = nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0,
                                                   (int32_t)lim->connection_window_bytes);
    if (rv != 0) {
        nghttp2_session_del(c->ng);
        c->ng = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* ---- transport events ---------------------------------------------------------------------- */

static void conn_down(struct uh2_conn *c, const char *reason)
{
    if (c->closed)
        return;
    if (c->in_ng > 0) {
        /* Never tear nghttp2 down from inside it: finish when the call returns. */
        if (c->down_reason == NULL)
            c->down_reason = reason;
        return;
    }
    c->closed = true;
    c->goaway = true;
    ev_timer_stop(c->loop, &c->timer);
    sp_tcp_stop(c->tcp);
    sp_uh2_streams_lost(c);
    c->ev->on_closed(c->ctx, reason);
}

static void on_connected(void *ctx)
{
    struct uh2_conn *c = ctx;

    /* The client preface and our SETTINGS go now (RFC 9113 §3.4); the backend's SETTINGS,
     * awaited under the same deadline, make us ready. */
    c->tcp_up = true;
    flush_now(c);
}

static void on_readable(void *ctx)
{
    struct uh2_conn *c = ctx;
    static _Thread_local uint8_t buf[65536];

    for (int i = 0; i < RX_BUDGET && !c->closed && c->down_reason == NULL; i++) {
        ssize_t n = sp_tcp_read(c->tcp, buf, sizeof(buf));
        ssize_t used;

        if (n == -EAGAIN)
            break;
        if (n <= 0) {
            /* What the batch brought (a GOAWAY before the close, say) reaches the owner first. */
            notify_owner(c);
            conn_down(c, !c->ready   ? "handshake"
                         : n < 0     ? sp_tcp_error_reason(n)
                         : c->goaway ? "goaway"
                                     : "peer_closed");
            return;
        }
        c->rx_seen = true;
        c->in_ng++;
        used = nghttp2_session_mem_recv(c->ng, buf, (size_t)n);
        c->in_ng--;
        if (used < 0) {
            SP_LOG_DEBUG("upstream", "event=h2_error op=recv err=\"%s\"",
                         nghttp2_strerror((int)used));
            conn_down(c, c->ready ? "protocol_error" : "handshake");
            return;
        }
    }
    notify_owner(c);
    sp_uh2_schedule_flush(c); /* SETTINGS/PING acks, WINDOW_UPDATEs, what the events queued */
}

static void on_writable(void *ctx)
{
    flush_now(ctx);
}

static void on_tcp_error(void *ctx, const char *reason)
{
    conn_down(ctx, reason);
}

static const struct sp_tcp_events tcp_events = {
    .on_connected = on_connected,
    .on_readable = on_readable,
    .on_writable = on_writable,
    .on_error = on_tcp_error,
};

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct uh2_conn *c = SP_CONTAINER_OF(w, struct uh2_conn, timer);

    (void)loop;
    (void)revents;
    if (!c->ready) {
        /* No SETTINGS within connect_ms: a handshake problem once TCP (and TLS) is up. */
        conn_down(c, c->tcp_up ? "handshake" : "connect_timeout");
        return;
    }
    if (c->rx_seen) {
        c->rx_seen = false;
        c->ping_outstanding = false;
        return;
    }
    if (c->ping_outstanding) {
        conn_down(c, "ping_timeout");
        return;
    }
    /* Silent for a whole tick: ask (RFC 9113 §6.7). Any bytes back count as an answer. */
    if (nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE, NULL) == 0) {
        c->ping_outstanding = true;
        sp_uh2_schedule_flush(c);
    }
}

/* ---- connection ops ------------------------------------------------------------------------ */

static int c_open(const struct sp_uconn_params *p, void **ret_impl)
{
    struct uh2_conn *c = sp_xcalloc(1, sizeof(*c));
    struct sp_tcp_params tp = {
        .loop = p->loop,
        .addr = (const struct sockaddr *)&p->backend->addr,
        .addrlen = p->backend->addrlen,
        .connect_timeout_ns = p->timeouts->connect_ms * SP_MS,
        .tls = p->backend->tls ? p->tls : NULL, /* h2: TLS + ALPN h2; h2c: prior knowledge */
        .verify_name = p->verify_name,
        .alpn = "h2",
        .keepalive_ns = p->pool->keepalive_ms * SP_MS,
        .user_timeout_ns = p->pool->dead_after_ms * SP_MS,
        .events = &tcp_events,
        .ctx = c,
    };
    double connect_s = (double)p->timeouts->connect_ms / 1e3;
    int rv;

    c->loop = p->loop;
    c->defer = p->defer;
    c->ev = p->events;
    c->ctx = p->ctx;
    c->limits = p->limits;
    c->goaway_last_id = -1;
    c->started_ns = sp_time_now();
    c->ping_interval_s =
        SP_MAX((double)p->timeouts->backend_idle_ms / 3e3, (double)MIN_PING_INTERVAL_S);
    rv = session_new(c, p->limits);
    if (rv != 0)
        goto out_free;
    rv = sp_tcp_open(&tp, &c->tcp);
    if (rv != 0)
        goto out_del_session;
    ev_timer_init(&c->timer, on_timer, connect_s, 0.);
    ev_timer_start(c->loop, &c->timer);
    *ret_impl = c;
    return 0;

out_del_session:
    nghttp2_session_del(c->ng);
out_free:
    free(c);
    return rv;
}

static void c_close(void *impl, const char *reason)
{
    struct uh2_conn *c = impl;

    if (c->closed)
        return;
    if (c->in_ng == 0 && c->tcp_up) {
        /* Best effort, now: GOAWAY(NO_ERROR) (RFC 9113 §6.8), then the socket closes. */
        (void)nghttp2_session_terminate_session(c->ng, NGHTTP2_NO_ERROR);
        if (frame_out(c) == 0)
            (void)write_out(c);
    }
    conn_down(c, reason);
}

static void c_free(void *impl)
{
    struct uh2_conn *c = impl;

    ev_timer_stop(c->loop, &c->timer);
    sp_tcp_free(c->tcp);
    c->tcp = NULL;
    sp_uh2_streams_free(c);
    nghttp2_session_del(c->ng);
    c->ng = NULL;
    free(c->obuf);
    c->obuf = NULL;
    free(c);
}

static size_t c_active(const void *impl)
{
    const struct uh2_conn *c = impl;

    return c->nstreams;
}

uint64_t sp_uh2_streams_left(const struct uh2_conn *c)
{
    uint32_t max, next;
    uint64_t left, ids;

    if (!c->ready || c->goaway || c->closed)
        return 0;
    max = nghttp2_session_get_remote_settings(c->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    next = nghttp2_session_get_next_stream_id(c->ng);
    left = max > c->nstreams ? max - c->nstreams : 0;
    /* Client stream ids are odd and end at 2^31-1 (RFC 9113 §5.1.1); an exhausted connection
     * takes no more and is reaped once idle. */
    ids = next <= (uint32_t)MAX_STREAM_ID ? ((uint32_t)MAX_STREAM_ID - next) / 2 + 1 : 0;
    return SP_MIN(left, ids);
}

static uint64_t c_streams_left(const void *impl)
{
    return sp_uh2_streams_left(impl);
}

static int c_submit(void *impl, const struct sp_field *fields, size_t n, bool has_body,
                    struct sp_ustream *s)
{
    return sp_uh2_submit(impl, fields, n, has_body, s);
}

static sp_time_t c_handshake_ns(const void *impl)
{
    const struct uh2_conn *c = impl;

    return c->ready ? c->handshake_ns : 0;
}

const struct sp_uconn_ops sp_uconn_h2_ops = {
    .name = "h2",
    .open = c_open,
    .close = c_close,
    .free = c_free,
    .active = c_active,
    .streams_left = c_streams_left,
    .submit = c_submit,
    .handshake_ns = c_handshake_ns,
};
