/* h1.c: the HTTP/1.1 backend protocol: one TCP (or TLS, ALPN "http/1.1") connection per
 * sp_uconn, carrying one request at a time and kept alive between requests (RFC 9112 §9.3),
 * adapted to the neutral upstream contract (upstream.h). Framing is h1_codec's; this file moves
 * bytes and decides when a connection may be reused.
 *
 * Reuse is the dangerous part (request smuggling, response desync): a connection returns to the
 * pool only when the declared request body was written exactly, the response ended on its own
 * framing with no byte to spare, and neither side asked to close. Anything else - an abort, a
 * body that disagrees with its length, a parse error, bytes that arrive before the request or
 * after the response - closes the connection.
 *
 * Backpressure: request body bytes are queued in an sp_bodybuf and written as the socket takes
 * them (on_sent then returns the client's credit); response body bytes go up through on_data and
 * reading stops while more than a bound of them are unconsumed. Writes are coalesced to the end
 * of the loop turn (sp_defer). */
#include "core/bodybuf.h"
#include "core/log.h"
#include "core/util.h"
#include "upstream/h1_codec.h"
#include "upstream/tcp.h"
#include "upstream/upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_BUF_BYTES 65536
#define READ_BUDGET 16    /* reads per readable event */
#define WRITE_BUDGET 1024 /* write steps per flush before yielding to the loop */
#define MIN_UNCONSUMED_BOUND (64 * 1024)

enum h1_state {
    H1_CONNECTING = 0, /* TCP connect / TLS handshake */
    H1_IDLE = 1,       /* ready, no request */
    H1_ACTIVE = 2,     /* a request is on it */
    H1_CLOSED = 3,     /* on_closed delivered; waiting for free */
};

/* The one request on a connection. */
struct h1_stream {
    struct sp_ustream *us;          /* borrowed; NULL when there is none or it was cancelled */
    struct sp_h1_request_info info; /* framing of the request body */
    struct sp_h1_buf head;          /* owned: the request head; head_off bytes written */
    size_t head_off;
    struct sp_h1_buf frame; /* owned: chunk lines and the last chunk; frame_off bytes written */
    size_t frame_off;
    struct sp_h1_buf tail;  /* owned: last chunk + trailers, built at end, written after data */
    struct sp_bodybuf body; /* request payload not yet taken by the socket */
    uint64_t body_in;       /* payload bytes the caller wrote */
    uint64_t chunk_left;    /* payload bytes of the announced chunk still to write */
    uint64_t unconsumed;    /* response bytes passed up and not yet consumed */
    bool chunk_open;        /* a chunk was announced and its closing CRLF is not yet queued */
    bool req_end;           /* no more payload will come (end called, or no body) */
    bool end_framed;        /* the end of the body is queued in frame */
    bool req_sent;          /* every request byte was taken by the socket */
    bool any_sent;          /* some request byte was taken by the socket */
};

struct h1_conn {
    struct sp_tcp *tcp;               /* owned */
    struct sp_h1_parser *parser;      /* owned */
    struct ev_loop *loop;             /* borrowed */
    struct sp_defer *defer;           /* borrowed */
    const struct sp_uconn_events *ev; /* borrowed */
    void *ctx;                        /* borrowed; passed to ev */
    enum h1_state state;
    struct h1_stream st;
    ev_timer io_timer;         /* an active request made no progress for backend_idle_ms */
    uint64_t unconsumed_bound; /* bytes; reading pauses above this */
    size_t retry_len;          /* TLS: length of the write that returned -EAGAIN, else 0 */
    uint64_t served;           /* requests completed on this connection */
    bool read_paused;
    bool must_close; /* the current request is the last one */
    bool flush_scheduled, read_scheduled, close_scheduled;
    const char *close_reason;        /* static; for a deferred close */
    enum sp_ustream_error close_err; /* for a deferred close */
};

static const struct sp_ustream_ops stream_ops;

static struct h1_conn *conn_of(void *impl)
{
    return SP_CONTAINER_OF(impl, struct h1_conn, st);
}

static const struct h1_conn *const_conn_of(const void *impl)
{
    return SP_CONTAINER_OF(impl, const struct h1_conn, st);
}

/* ---- stream state ---------------------------------------------------------------------- */

static void stream_clear(struct h1_stream *st)
{
    sp_bodybuf_fini(&st->body);
    sp_bodybuf_init(&st->body);
    st->us = NULL;
    st->head.len = st->frame.len = st->tail.len = 0;
    st->head_off = st->frame_off = 0;
    st->body_in = st->chunk_left = st->unconsumed = 0;
    st->chunk_open = st->req_end = st->end_framed = st->req_sent = st->any_sent = false;
    memset(&st->info, 0, sizeof(st->info));
}

static void pause_read(struct h1_conn *c, bool paused)
{
    if (c->read_paused == paused)
        return;
    c->read_paused = paused;
    sp_tcp_pause_read(c->tcp, paused);
}

static void io_progress(struct h1_conn *c)
{
    if (c->state == H1_ACTIVE && c->io_timer.repeat > 0)
        ev_timer_again(c->loop, &c->io_timer);
}

/* Detaches the request and tells its owner why it ended. */
static void stream_close(struct h1_conn *c, enum sp_ustream_error err)
{
    struct sp_ustream *us = c->st.us;

    stream_clear(&c->st);
    if (us == NULL)
        return;
    us->impl = NULL;
    us->cbs->on_close(us, us->user, err);
}

/* Closes the connection now: the request (if any) ends with err, then the pool hears
 * on_closed. Idempotent. */
static void conn_fail(struct h1_conn *c, const char *reason, enum sp_ustream_error err)
{
    if (c->state == H1_CLOSED)
        return;
    c->state = H1_CLOSED;
    sp_tcp_stop(c->tcp);
    ev_timer_stop(c->loop, &c->io_timer);
    SP_LOG_DEBUG("upstream", "event=h1_close reason=%s stream_err=%d", reason, (int)err);
    stream_close(c, err == SP_USTREAM_OK ? SP_USTREAM_CONN_LOST : err);
    c->ev->on_closed(c->ctx, reason);
}

static void on_deferred_close(void *arg)
{
    struct h1_conn *c = arg;

    c->close_scheduled = false;
    conn_fail(c, c->close_reason, c->close_err);
}

/* Closes at the end of the loop turn: used from the caller's calls into us (write, end,
 * cancel), so its callbacks never run inside its own call. */
static void schedule_close(struct h1_conn *c, const char *reason, enum sp_ustream_error err)
{
    c->must_close = true;
    if (c->close_scheduled || c->state == H1_CLOSED)
        return;
    c->close_scheduled = true;
    c->close_reason = reason;
    c->close_err = err;
    sp_defer_add(c->defer, on_deferred_close, c);
}

/* Both directions are complete: hand the request back, then reuse or close the connection. */
static void exchange_done(struct h1_conn *c, const char *why_close)
{
    c->served++;
    ev_timer_stop(c->loop, &c->io_timer);
    pause_read(c, false);
    if (!c->must_close)
        c->state = H1_IDLE;
    stream_close(c, SP_USTREAM_OK);
    if (c->state == H1_CLOSED)
        return;
    if (c->must_close) {
        conn_fail(c, why_close, SP_USTREAM_OK);
        return;
    }
    if (c->state == H1_IDLE) /* the owner may have submitted again from on_close */
        c->ev->on_streams_available(c->ctx);
}

/* How a request ends when the connection dies under it. Nothing sent: refused, as long as no
 * body byte was taken from the caller either (it could not send those again). On a reused
 * connection that closes before any response byte, an idempotent request without a body is
 * the keep-alive race of RFC 9112 §9.3.1, which that section lets a client retry: refused too,
 * so the proxy sends it again. Anything else keeps `e`. */
static enum sp_ustream_error lost_error(const struct h1_conn *c, enum sp_ustream_error e)
{
    const struct h1_stream *st = &c->st;

    if (!st->any_sent && st->body_in == 0)
        return SP_USTREAM_REFUSED;
    if (c->served > 0 && !sp_h1_parser_started(c->parser) && st->info.idempotent &&
        st->info.framing == SP_H1_FRAMING_NONE)
        return SP_USTREAM_REFUSED;
    return e;
}

/* ---- reading --------------------------------------------------------------------------- */

static void read_pass(struct h1_conn *c);

static void on_deferred_read(void *arg)
{
    struct h1_conn *c = arg;

    c->read_scheduled = false;
    read_pass(c);
}

static void schedule_read(struct h1_conn *c)
{
    if (c->read_scheduled || c->state == H1_CLOSED)
        return;
    c->read_scheduled = true;
    sp_defer_add(c->defer, on_deferred_read, c);
}

static bool still_attached(const struct h1_conn *c, const struct sp_ustream *us)
{
    return c->state == H1_ACTIVE && c->st.us == us && us != NULL;
}

/* The response is complete. leftover: bytes followed it in the same read. */
static int response_done(struct h1_conn *c, bool leftover, const char *why_close)
{
    struct sp_ustream *us = c->st.us;

    if (leftover || !sp_h1_parser_keep_alive(c->parser))
        c->must_close = true;
    us->cbs->on_end(us, us->user);
    if (!still_attached(c, us))
        return -1;
    /* The backend answered before taking the whole request: it may or may not read the rest,
     * so the connection's framing is unknown from here. */
    if (!c->st.req_sent)
        c->must_close = true;
    exchange_done(c, leftover ? "protocol" : why_close);
    return -1; /* stop parsing: nothing else in this read belongs to the request */
}

static int deliver(struct h1_conn *c, const struct sp_h1_event *e, bool leftover)
{
    struct sp_ustream *us = c->st.us;

    switch (e->type) {
    case SP_H1_EV_NONE:
        return 0;
    case SP_H1_EV_HEADERS:
        us->cbs->on_headers(us, us->user);
        break;
    case SP_H1_EV_DATA:
        c->st.unconsumed += e->len;
        us->cbs->on_data(us, us->user, e->data, e->len);
        if (still_attached(c, us) && c->st.unconsumed > c->unconsumed_bound)
            pause_read(c, true);
        break;
    case SP_H1_EV_END:
        return response_done(c, leftover, "not_reusable");
    }
    return still_attached(c, us) ? 0 : -1;
}

/* Parses bytes from the backend. Returns 0 to keep reading, -1 to stop. */
static int on_bytes(struct h1_conn *c, const uint8_t *data, size_t len)
{
    size_t off = 0;

    if (c->state != H1_ACTIVE || c->st.us == NULL || !c->st.any_sent) {
        /* Unsolicited bytes: a desynchronised backend. Before any byte of the request left,
         * the request is safe to send elsewhere. */
        conn_fail(c, "protocol", lost_error(c, SP_USTREAM_PROTOCOL));
        return -1;
    }
    for (size_t guard = 0; off < len && guard <= 2 * len + 4; guard++) {
        struct sp_h1_event e;
        ssize_t n = sp_h1_parser_feed(c->parser, data + off, len - off, &e);

        if (n < 0) {
            SP_LOG_DEBUG("upstream", "event=h1_parse_error offset=%zu", off);
            conn_fail(c, "protocol", SP_USTREAM_PROTOCOL);
            return -1;
        }
        off += (size_t)n;
        if (deliver(c, &e, off < len) != 0)
            return -1;
    }
    if (off < len) {
        conn_fail(c, "protocol", SP_USTREAM_PROTOCOL);
        return -1;
    }
    return 0;
}

static void on_eof(struct h1_conn *c)
{
    struct sp_h1_event e;

    if (c->state != H1_ACTIVE || c->st.us == NULL) {
        conn_fail(c, "peer_closed", SP_USTREAM_OK);
        return;
    }
    if (sp_h1_parser_eof(c->parser, &e) != 0 || e.type != SP_H1_EV_END) {
        /* No response (a close between requests) or a truncated one. */
        conn_fail(c, "peer_closed", lost_error(c, SP_USTREAM_CONN_LOST));
        return;
    }
    c->must_close = true; /* a body delimited by close */
    (void)response_done(c, false, "peer_closed");
}

static void on_read_error(struct h1_conn *c, ssize_t err)
{
    enum sp_ustream_error e = err == -ECONNRESET ? SP_USTREAM_RESET : SP_USTREAM_CONN_LOST;

    conn_fail(c, sp_tcp_error_reason(err), lost_error(c, e));
}

static void read_pass(struct h1_conn *c)
{
    /* Every byte read is parsed and passed up before the next read, and reads never start from
     * inside a caller's call, so one buffer per thread serves every connection. */
    static _Thread_local uint8_t buf[READ_BUF_BYTES];

    for (int i = 0; i < READ_BUDGET; i++) {
        ssize_t n;

        if (c->state == H1_CLOSED || c->state == H1_CONNECTING || c->read_paused)
            return;
        n = sp_tcp_read(c->tcp, buf, sizeof(buf));
        if (n == -EAGAIN)
            return;
        if (n < 0) {
            on_read_error(c, n);
            return;
        }
        if (n == 0) {
            on_eof(c);
            return;
        }
        io_progress(c);
        if (on_bytes(c, buf, (size_t)n) != 0)
            return;
    }
    schedule_read(c); /* budget spent; TLS may hold bytes the socket no longer signals */
}

/* ---- writing --------------------------------------------------------------------------- */

/* One write. Returns bytes taken (0 when the socket is full) or negative errno. */
static ssize_t tcp_put(struct h1_conn *c, const uint8_t *data, size_t len)
{
    ssize_t n;

    /* GnuTLS: after -EAGAIN the same record must be offered again, not a longer one. */
    if (c->retry_len != 0 && len > c->retry_len)
        len = c->retry_len;
    n = sp_tcp_write(c->tcp, data, len);
    if (n == -EAGAIN) {
        c->retry_len = len;
        return 0;
    }
    if (n < 0)
        return n;
    c->retry_len = 0;
    if (n > 0) {
        c->st.any_sent = true;
        io_progress(c);
    }
    return n;
}

/* Writes the rest of buf from *off. Returns 1 on progress, 0 when blocked, or negative errno. */
static int put_buf(struct h1_conn *c, struct sp_h1_buf *b, size_t *off)
{
    ssize_t n = tcp_put(c, b->data + *off, b->len - *off);

    if (n <= 0)
        return (int)n;
    *off += (size_t)n;
    if (*off == b->len)
        b->len = *off = 0;
    return 1;
}

static int put_payload(struct h1_conn *c)
{
    struct h1_stream *st = &c->st;
    struct sp_ustream *us = st->us;
    struct sp_bodybuf_vec v;
    size_t len;
    ssize_t n;

    if (sp_bodybuf_peek(&st->body, &v, 1) == 0)
        return 0;
    len = v.len;
    if (st->info.framing == SP_H1_FRAMING_CHUNKED && len > st->chunk_left)
        len = (size_t)st->chunk_left;
    n = tcp_put(c, v.base, len);
    if (n <= 0)
        return (int)n;
    sp_bodybuf_advance(&st->body, (size_t)n);
    sp_bodybuf_ack(&st->body, (uint64_t)n);
    if (st->info.framing == SP_H1_FRAMING_CHUNKED)
        st->chunk_left -= (uint64_t)n;
    us->cbs->on_sent(us, us->user, (uint64_t)n);
    return 1;
}

/* Queues the next framing bytes of a chunked body. Returns 1 when something was queued. */
static int frame_chunked(struct h1_stream *st)
{
    uint64_t pending = sp_bodybuf_pending(&st->body);
    uint8_t line[SP_H1_CHUNK_HEADER_MAX];

    if (pending > 0) {
        size_t n = sp_h1_chunk_header(pending, st->chunk_open, line);

        sp_h1_buf_append(&st->frame, line, n);
        st->chunk_left = pending;
        st->chunk_open = true;
        return 1;
    }
    if (st->req_end && !st->end_framed) {
        if (st->chunk_open)
            sp_h1_buf_append(&st->frame, "\r\n", 2);
        sp_h1_buf_append(&st->frame, st->tail.data, st->tail.len);
        st->chunk_open = false;
        st->end_framed = true;
        return 1;
    }
    return 0;
}

/* One step of the writer. Returns 1 on progress, 0 when blocked or done, or negative errno. */
static int write_step(struct h1_conn *c)
{
    struct h1_stream *st = &c->st;
    bool chunked = st->info.framing == SP_H1_FRAMING_CHUNKED;

    if (st->info.open)
        return 0; /* framing undecided: nothing goes before the first body byte or the end */
    if (st->head_off < st->head.len)
        return put_buf(c, &st->head, &st->head_off);
    if (st->frame_off < st->frame.len)
        return put_buf(c, &st->frame, &st->frame_off);
    if (sp_bodybuf_pending(&st->body) > 0 && (!chunked || st->chunk_left > 0))
        return put_payload(c);
    if (chunked && frame_chunked(st))
        return 1;
    /* A length-delimited body is complete at its last byte, whether or not end came yet: the
     * backend may answer (and the exchange finish) before the caller's end arrives. */
    if (sp_bodybuf_pending(&st->body) == 0 &&
        (st->req_end ||
         (st->info.framing == SP_H1_FRAMING_LENGTH && st->body_in == st->info.content_length)))
        st->req_sent = true;
    return 0;
}

static void write_failed(struct h1_conn *c, int err)
{
    enum sp_ustream_error e = err == -ECONNRESET ? SP_USTREAM_RESET : SP_USTREAM_CONN_LOST;

    /* e.g. EPIPE on a connection the backend had closed while it idled */
    conn_fail(c, sp_tcp_error_reason(err), lost_error(c, e));
}

static void flush(struct h1_conn *c)
{
    if (c->state == H1_ACTIVE && !c->st.any_sent) {
        /* A reused connection may have been closed by the backend while idle: notice it now,
         * while the request can still go elsewhere (RFC 9112 §9.3.1). */
        read_pass(c);
    }
    for (int i = 0; i < WRITE_BUDGET; i++) {
        int rv;

        if (c->state != H1_ACTIVE || c->st.us == NULL || c->st.req_sent)
            return;
        rv = write_step(c);
        if (rv == 0)
            return;
        if (rv < 0) {
            write_failed(c, rv);
            return;
        }
    }
}

static void on_flush(void *arg)
{
    struct h1_conn *c = arg;

    c->flush_scheduled = false;
    flush(c);
}

static void schedule_flush(struct h1_conn *c)
{
    if (c->flush_scheduled || c->state == H1_CLOSED)
        return;
    c->flush_scheduled = true;
    sp_defer_add(c->defer, on_flush, c);
}

/* ---- request stream ops ---------------------------------------------------------------- */

static void s_write(void *impl, const uint8_t *data, size_t len)
{
    struct h1_stream *st = impl;
    struct h1_conn *c = conn_of(st);

    if (c->state != H1_ACTIVE || st->us == NULL || len == 0)
        return;
    sp_h1_request_head_close(&st->head, &st->info, false); /* a body byte: chunked */
    if (st->req_end || st->info.framing == SP_H1_FRAMING_NONE ||
        (st->info.framing == SP_H1_FRAMING_LENGTH && len > st->info.content_length - st->body_in)) {
        schedule_close(c, "request_mismatch", SP_USTREAM_RESET);
        return;
    }
    sp_bodybuf_append(&st->body, data, len);
    st->body_in += len;
    schedule_flush(c);
}

static void s_end(void *impl, const struct sp_field *trailers, size_t n)
{
    struct h1_stream *st = impl;
    struct h1_conn *c = conn_of(st);

    if (c->state != H1_ACTIVE || st->us == NULL || st->req_end)
        return;
    /* No body byte came: send the request without a body rather than an empty chunked one. */
    sp_h1_request_head_close(&st->head, &st->info, st->body_in == 0 && n == 0);
    if (st->info.framing == SP_H1_FRAMING_LENGTH && st->body_in != st->info.content_length) {
        schedule_close(c, "request_mismatch", SP_USTREAM_RESET);
        return;
    }
    /* Trailers travel only in a chunked body; with content-length they are dropped. */
    if (st->info.framing == SP_H1_FRAMING_CHUNKED &&
        sp_h1_chunk_last(trailers, n, false, &st->tail) != 0) {
        schedule_close(c, "request_mismatch", SP_USTREAM_RESET);
        return;
    }
    st->req_end = true;
    schedule_flush(c);
}

static void s_consume(void *impl, uint64_t len)
{
    struct h1_stream *st = impl;
    struct h1_conn *c = conn_of(st);

    st->unconsumed -= SP_MIN(len, st->unconsumed);
    io_progress(c);
    /* Resume at half the bound, so a steady stream does not toggle the watcher per read. */
    if (c->read_paused && st->unconsumed <= c->unconsumed_bound / 2) {
        pause_read(c, false);
        schedule_read(c); /* TLS may hold bytes the socket will not signal again */
    }
}

static void s_cancel(void *impl)
{
    struct h1_stream *st = impl;
    struct h1_conn *c = conn_of(st);

    /* The owner let go mid-exchange: the connection's framing is unknown from here. */
    st->us = NULL;
    schedule_close(c, "cancelled", SP_USTREAM_OK);
}

static unsigned s_status(const void *impl)
{
    return sp_h1_parser_status(const_conn_of(impl)->parser);
}

static const struct sp_fields *s_headers(const void *impl)
{
    return sp_h1_parser_headers(const_conn_of(impl)->parser);
}

static const struct sp_fields *s_trailers(const void *impl)
{
    return sp_h1_parser_trailers(const_conn_of(impl)->parser);
}

static int s_describe(const void *impl, char *buf, size_t len)
{
    const struct h1_stream *st = impl;
    const struct h1_conn *c = const_conn_of(impl);

    return snprintf(buf, len,
                    "out_written=%llu out_sent=%llu req_end=%d req_sent=%d unconsumed=%llu "
                    "read_paused=%d",
                    (unsigned long long)st->body_in, (unsigned long long)st->body.acked,
                    st->req_end, st->req_sent, (unsigned long long)st->unconsumed, c->read_paused);
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

/* ---- transport events ------------------------------------------------------------------ */

static void on_connected(void *ctx)
{
    struct h1_conn *c = ctx;

    c->state = H1_IDLE;
    c->ev->on_ready(c->ctx);
}

static void on_readable(void *ctx)
{
    read_pass(ctx);
}

static void on_writable(void *ctx)
{
    flush(ctx);
}

static void on_tcp_error(void *ctx, const char *reason)
{
    struct h1_conn *c = ctx;

    conn_fail(c, reason, lost_error(c, SP_USTREAM_CONN_LOST));
}

static const struct sp_tcp_events tcp_events = {
    .on_connected = on_connected,
    .on_readable = on_readable,
    .on_writable = on_writable,
    .on_error = on_tcp_error,
};

static void on_io_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct h1_conn *c = SP_CONTAINER_OF(w, struct h1_conn, io_timer);

    (void)revents;
    ev_timer_stop(loop, w);
    if (c->state == H1_ACTIVE)
        conn_fail(c, "timeout", c->st.any_sent ? SP_USTREAM_CONN_LOST : SP_USTREAM_REFUSED);
}

/* ---- connection ops -------------------------------------------------------------------- */

static int c_open(const struct sp_uconn_params *p, void **ret_impl)
{
    struct h1_conn *c = sp_xcalloc(1, sizeof(*c));
    struct sp_h1_parser_limits lim = {.max_header_bytes = p->limits->max_header_bytes,
                                      .max_headers = p->limits->max_headers};
    struct sp_tcp_params tp = {
        .loop = p->loop,
        .addr = (const struct sockaddr *)&p->backend->addr,
        .addrlen = p->backend->addrlen,
        .connect_timeout_ns = p->timeouts->connect_ms * SP_MS,
        .tls = p->backend->tls ? p->tls : NULL,
        .verify_name = p->verify_name,
        .alpn = "http/1.1",
        .keepalive_ns = p->pool->keepalive_ms * SP_MS,
        .user_timeout_ns = p->pool->dead_after_ms * SP_MS,
        .events = &tcp_events,
        .ctx = c,
    };
    int rv;

    c->loop = p->loop;
    c->defer = p->defer;
    c->ev = p->events;
    c->ctx = p->ctx;
    c->unconsumed_bound = SP_MAX(p->limits->stream_window_bytes, MIN_UNCONSUMED_BOUND);
    sp_bodybuf_init(&c->st.body);
    ev_init(&c->io_timer, on_io_timeout);
    c->io_timer.repeat = (double)p->timeouts->backend_idle_ms / 1e3;
    rv = sp_h1_parser_new(&lim, &c->parser);
    if (rv != 0)
        goto out_free;
    rv = sp_tcp_open(&tp, &c->tcp);
    if (rv != 0)
        goto out_free_parser;
    *ret_impl = c;
    return 0;

out_free_parser:
    sp_h1_parser_free(c->parser);
out_free:
    free(c);
    return rv;
}

static void c_close(void *impl, const char *reason)
{
    conn_fail(impl, reason, SP_USTREAM_CONN_LOST);
}

static void c_free(void *impl)
{
    struct h1_conn *c = impl;

    ev_timer_stop(c->loop, &c->io_timer);
    sp_tcp_free(c->tcp);
    sp_h1_parser_free(c->parser);
    sp_bodybuf_fini(&c->st.body);
    sp_h1_buf_fini(&c->st.head);
    sp_h1_buf_fini(&c->st.frame);
    sp_h1_buf_fini(&c->st.tail);
    free(c);
}

static size_t c_active(const void *impl)
{
    const struct h1_conn *c = impl;

    return c->state == H1_ACTIVE ? 1 : 0;
}

static uint64_t c_streams_left(const void *impl)
{
    const struct h1_conn *c = impl;

    return c->state == H1_IDLE && !c->must_close ? 1 : 0;
}

/* Returns 0, -EAGAIN when a request is already on the connection, or -EINVAL when the request
 * cannot be written as HTTP/1.1 safely (see sp_h1_request_head). */
static int c_submit(void *impl, const struct sp_field *fields, size_t n, bool has_body,
                    struct sp_ustream *s)
{
    struct h1_conn *c = impl;
    struct h1_stream *st = &c->st;

    if (c->state != H1_IDLE || c->must_close)
        return -EAGAIN;
    stream_clear(st);
    if (sp_h1_request_head(fields, n, has_body, &st->head, &st->info) != 0)
        return -EINVAL;
    sp_h1_parser_start(c->parser, st->info.head);
    st->us = s;
    st->req_end = st->info.framing == SP_H1_FRAMING_NONE;
    c->state = H1_ACTIVE;
    c->retry_len = 0;
    s->ops = &stream_ops;
    s->impl = st;
    io_progress(c);
    schedule_flush(c);
    return 0;
}

static bool c_held_by_client(const void *impl)
{
    const struct h1_conn *c = impl;

    return c->state == H1_ACTIVE && c->read_paused;
}

static sp_time_t c_handshake_ns(const void *impl)
{
    const struct h1_conn *c = impl;

    return c->state == H1_CONNECTING ? 0 : sp_tcp_handshake_ns(c->tcp);
}

const struct sp_uconn_ops sp_uconn_h1_ops = {
    .name = "http1",
    .reuse_races = true,
    .open = c_open,
    .close = c_close,
    .free = c_free,
    .active = c_active,
    .streams_left = c_streams_left,
    .submit = c_submit,
    .handshake_ns = c_handshake_ns,
    .held_by_client = c_held_by_client,
};
