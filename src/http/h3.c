#include "http/h3.h"
#include "core/bodybuf.h"
#include "core/log.h"
#include "core/util.h"
#include "http/headers.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp3/nghttp3.h>

/* Response fields never exceed this many when we build them (status + caller's fields). */
#define MAX_OUT_FIELDS 256

struct sp_h3_stream {
    struct sp_h3_conn *conn;          /* borrowed; owner */
    struct sp_h3_stream *prev, *next; /* conn's list */
    int64_t id;
    const struct sp_h3_stream_ops *ops; /* borrowed; NULL = detached */
    void *user;                         /* borrowed */
    struct sp_fields headers;
    struct sp_fields trailers;
    nghttp3_rcbuf **refs; /* owned array of refs held for the fields' bytes */
    size_t nrefs, caprefs;
    struct sp_bodybuf out;    /* body bytes to send */
    nghttp3_nv *out_trailers; /* owned; one block holding nv array and bytes */
    size_t n_out_trailers;
    bool has_out_trailers;
    bool submitted;   /* headers submitted (we have a data reader) */
    bool in_trailers; /* receiving the trailer section */
    bool too_large;   /* received section exceeded the limits */
    bool reset_sent;
    bool peer_ended;      /* the peer's side finished cleanly */
    bool fin_handed;      /* read_data told nghttp3 the body ended (END_STREAM follows) */
    bool fin_written;     /* ngtcp2 took the stream's FIN */
    bool sent_any;        /* ngtcp2 took some of the stream's bytes (the peer may have them) */
    bool write_shut;      /* our sending side is reset (the peer's STOP_SENDING, or ours) */
    bool read_stopped;    /* we sent STOP_SENDING: the peer's bytes are dropped */
    uint64_t ack_held;    /* acknowledged bytes not yet passed to nghttp3 (see on_acked) */
    uint64_t in_data;     /* body bytes delivered to the user (on_data) */
    uint64_t in_credited; /* of those, credit returned (sp_h3_stream_consume) */
    unsigned status;      /* client: final response status */
};

struct sp_h3_conn {
    struct sp_quic_conn qc; /* embedded; the QUIC app ops find us with container_of */
    nghttp3_conn *h3;       /* owned; NULL until the handshake completes */
    bool server;
    const struct sp_h3_server_ops *sops; /* borrowed */
    const struct sp_h3_client_ops *cops; /* borrowed */
    void *ctx;                           /* borrowed */
    struct sp_h3_limits lim;
    struct sp_h3_stream *streams; /* owned list */
    struct sp_h3_stream *last_tx; /* borrowed: the stream on_written saw last (a lookup cache) */
    size_t nstreams;
    bool goaway;                    /* no new requests (sent or received GOAWAY) */
    bool read_blocked;              /* a read_data call ran out of body bytes (see pull) */
    char peer_ip[INET6_ADDRSTRLEN]; /* the peer's address as text, "" until first asked */
    bool closed;                    /* on_conn_closed delivered */
};

static struct sp_h3_conn *conn_of(struct sp_quic_conn *qc)
{
    return SP_CONTAINER_OF(qc, struct sp_h3_conn, qc);
}

struct sp_quic_conn *sp_h3_conn_quic(struct sp_h3_conn *c)
{
    return &c->qc;
}

/* ---- streams ---------------------------------------------------------------------------- */

static struct sp_h3_stream *stream_new(struct sp_h3_conn *c, int64_t id)
{
    struct sp_h3_stream *s = sp_xcalloc(1, sizeof(*s));

    s->conn = c;
    s->id = id;
    sp_bodybuf_init(&s->out);
    s->next = c->streams;
    if (c->streams != NULL)
        c->streams->prev = s;
    c->streams = s;
    c->nstreams++;
    return s;
}

static void stream_free(struct sp_h3_stream *s)
{
    struct sp_h3_conn *c = s->conn;

    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        c->streams = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    c->nstreams--;
    if (c->last_tx == s)
        c->last_tx = NULL;
    /* ngtcp2 hands this pointer to on_acked: never leave it dangling. Fails only for a stream
     * ngtcp2 already forgot, which then calls nothing more. */
    if (c->qc.conn != NULL && s->id >= 0)
        (void)ngtcp2_conn_set_stream_user_data(c->qc.conn, s->id, NULL);
    for (size_t i = 0; i < s->nrefs; i++)
        nghttp3_rcbuf_decref(s->refs[i]);
    free(s->refs);
    sp_fields_fini(&s->headers);
    sp_fields_fini(&s->trailers);
    sp_bodybuf_fini(&s->out);
    free(s->out_trailers);
    free(s);
}

/* Tells the user the stream is gone, then frees it. */
static void stream_finish(struct sp_h3_stream *s, uint64_t app_error)
{
    const struct sp_h3_stream_ops *ops = s->ops;

    /* Bytes the user still held when the stream went away would never be credited: give the
     * connection-level credit back now, or the connection window leaks shut over time (a
     * client connection returned it on receipt already, see cb_recv_data). */
    if (s->conn->server && s->in_data > s->in_credited)
        sp_quic_conn_consume(&s->conn->qc, -1, s->in_data - s->in_credited);
    s->in_credited = s->in_data;

    s->ops = NULL;
    if (ops != NULL)
        ops->on_close(s, s->user, app_error);
    stream_free(s);
}

static void keep_ref(struct sp_h3_stream *s, nghttp3_rcbuf *rc)
{
    if (s->nrefs == s->caprefs) {
        s->caprefs = s->caprefs ? s->caprefs * 2 : 16;
        s->refs = sp_xrealloc(s->refs, s->caprefs * sizeof(*s->refs));
    }
    nghttp3_rcbuf_incref(rc);
    s->refs[s->nrefs++] = rc;
}

static void fields_add(struct sp_h3_stream *s, struct sp_fields *f, nghttp3_rcbuf *name,
                       nghttp3_rcbuf *value)
{
    nghttp3_vec n = nghttp3_rcbuf_get_buf(name);
    nghttp3_vec v = nghttp3_rcbuf_get_buf(value);
    const struct sp_h3_limits *lim = &s->conn->lim;

    /* RFC 9114 §4.2.2: section size counts name + value + 32 per field. */
    f->bytes += n.len + v.len + 32;
    if (f->count >= lim->max_headers || f->bytes > lim->max_header_bytes) {
        s->too_large = true;
        return;
    }
    if (f->count == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->items = sp_xrealloc(f->items, f->cap * sizeof(*f->items));
    }
    keep_ref(s, name);
    keep_ref(s, value);
    f->items[f->count].name = n.base;
    f->items[f->count].name_len = n.len;
    f->items[f->count].value = v.base;
    f->items[f->count].value_len = v.len;
    f->count++;
}

static unsigned parse_status(const struct sp_fields *f)
{
    const struct sp_field *st = sp_fields_find(f, ":status");
    unsigned v = 0;

    if (st == NULL || st->value_len != 3)
        return 0;
    for (size_t i = 0; i < 3; i++)
        v = v * 10 + (unsigned)(st->value[i] - '0');
    return v;
}

/* ---- nghttp3 callbacks ------------------------------------------------------------------ */

static struct sp_h3_conn *h3_user(void *conn_user_data)
{
    return conn_user_data;
}

static int cb_acked_stream_data(nghttp3_conn *h3, int64_t stream_id, uint64_t datalen,
                                void *conn_user_data, void *stream_user_data)
{
    struct sp_h3_stream *s = stream_user_data;

    (void)h3;
    (void)stream_id;
    (void)conn_user_data;
    if (s == NULL)
        return 0;
    sp_bodybuf_ack(&s->out, datalen);
    if (s->ops != NULL && s->ops->on_sent != NULL)
        s->ops->on_sent(s, s->user, datalen);
    return 0;
}

static int cb_stream_close(nghttp3_conn *h3, int64_t stream_id, uint64_t app_error_code,
                           void *conn_user_data, void *stream_user_data)
{
    struct sp_h3_conn *c = h3_user(conn_user_data);
    struct sp_h3_stream *s = stream_user_data;

    (void)h3;
    if (s != NULL)
        stream_finish(s, app_error_code == SP_H3_NO_ERROR ? 0 : app_error_code);
    if (c->server) {
        /* RFC 9000 §4.6: let the client open a new request stream in its place. */
        if (ngtcp2_is_bidi_stream(stream_id))
            (void)ngtcp2_conn_extend_max_streams_bidi(c->qc.conn, 1);
    } else if (c->cops->on_streams_available != NULL) {
        /* Also after GOAWAY: the owner learns the connection may now be idle. */
        c->cops->on_streams_available(c, c->ctx);
    }
    return 0;
}

static int cb_recv_data(nghttp3_conn *h3, int64_t stream_id, const uint8_t *data, size_t datalen,
                        void *conn_user_data, void *stream_user_data)
{
    struct sp_h3_conn *c = h3_user(conn_user_data);
    struct sp_h3_stream *s = stream_user_data;

    (void)h3;
    if (s == NULL || s->ops == NULL || s->ops->on_data == NULL || s->read_stopped) {
        /* Nobody reads this stream any more: discard, but keep flow control open. */
        sp_quic_conn_consume(&c->qc, stream_id, datalen);
        return 0;
    }
    s->in_data += datalen;
    /* A client (backend) connection carries many clients' responses: one client that does not
     * read must not starve the others, so the connection's credit returns as soon as the bytes
     * are taken (each stream's own credit still waits for its client: the stream window bounds
     * what one request can make us hold). RFC 9000 §4.1 lets the two levels move apart. */
    if (!c->server)
        sp_quic_conn_consume(&c->qc, -1, datalen);
    s->ops->on_data(s, s->user, data, datalen);
    return 0;
}

static int cb_deferred_consume(nghttp3_conn *h3, int64_t stream_id, size_t consumed,
                               void *conn_user_data, void *stream_user_data)
{
    struct sp_h3_conn *c = h3_user(conn_user_data);

    (void)h3;
    (void)stream_user_data;
    sp_quic_conn_consume(&c->qc, stream_id, consumed);
    return 0;
}

static int cb_begin_headers(nghttp3_conn *h3, int64_t stream_id, void *conn_user_data,
                            void *stream_user_data)
{
    struct sp_h3_conn *c = h3_user(conn_user_data);
    struct sp_h3_stream *s;

    (void)stream_user_data;
    if (!c->server)
        return 0;
    s = stream_new(c, stream_id);
    if (nghttp3_conn_set_stream_user_data(h3, stream_id, s) != 0 ||
        ngtcp2_conn_set_stream_user_data(c->qc.conn, stream_id, s) != 0) {
        stream_free(s);
        return NGHTTP3_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int cb_recv_header(nghttp3_conn *h3, int64_t stream_id, int32_t token, nghttp3_rcbuf *name,
                          nghttp3_rcbuf *value, uint8_t flags, void *conn_user_data,
                          void *stream_user_data)
{
    struct sp_h3_stream *s = stream_user_data;

    (void)h3;
    (void)stream_id;
    (void)token;
    (void)flags;
    (void)conn_user_data;
    if (s == NULL)
        return 0;
    fields_add(s, s->in_trailers ? &s->trailers : &s->headers, name, value);
    return 0;
}

/* Server: a request whose section broke our limits gets 431 and no handler (RFC 6585 §5). */
static void reject_too_large(struct sp_h3_stream *s)
{
    static const uint8_t cl_name[] = "content-length", cl_value[] = "0";
    struct sp_field f = {cl_name, sizeof(cl_name) - 1, cl_value, sizeof(cl_value) - 1};

    SP_LOG_DEBUG("http", "event=request_rejected stream=%lld reason=header_section_too_large",
                 (long long)s->id);
    if (sp_h3_stream_respond(s, 431, &f, 1, false) != 0)
        sp_h3_stream_reset(s, SP_H3_EXCESSIVE_LOAD);
    /* RFC 9114 §4.1.1: we answered early, the rest of the request is not needed. */
    (void)ngtcp2_conn_shutdown_stream_read(s->conn->qc.conn, s->id, SP_H3_NO_ERROR);
}

static int cb_end_headers(nghttp3_conn *h3, int64_t stream_id, int fin, void *conn_user_data,
                          void *stream_user_data)
{
    struct sp_h3_conn *c = h3_user(conn_user_data);
    struct sp_h3_stream *s = stream_user_data;

    (void)h3;
    (void)stream_id;
    (void)fin;
    if (s == NULL)
        return 0;
    if (c->server) {
        if (s->too_large) {
            reject_too_large(s);
            return 0;
        }
        c->sops->on_request(c, s, c->ctx);
        return 0;
    }
    if (s->too_large) {
        sp_h3_stream_reset(s, SP_H3_EXCESSIVE_LOAD);
        return 0;
    }
    s->status = parse_status(&s->headers);
    if (s->status < 200) {
        /* Interim response (RFC 9114 §4.1): not forwarded; wait for the final one. */
        sp_fields_fini(&s->headers);
        s->status = 0;
        return 0;
    }
    if (s->ops != NULL)
        s->ops->on_headers(s, s->user);
    return 0;
}

static int cb_begin_trailers(nghttp3_conn *h3, int64_t stream_id, void *conn_user_data,
                             void *stream_user_data)
{
    struct sp_h3_stream *s = stream_user_data;

    (void)h3;
    (void)stream_id;
    (void)conn_user_data;
    if (s != NULL)
        s->in_trailers = true;
    return 0;
}

static int cb_end_trailers(nghttp3_conn *h3, int64_t stream_id, int fin, void *conn_user_data,
                           void *stream_user_data)
{
    struct sp_h3_stream *s = stream_user_data;

    (void)h3;
    (void)stream_id;
    (void)fin;
    (void)conn_user_data;
    if (s == NULL || s->ops == NULL)
        return 0;
    if (s->too_large) {
        sp_h3_stream_reset(s, SP_H3_EXCESSIVE_LOAD);
        return 0;
    }
    if (s->ops->on_trailers != NULL)
        s->ops->on_trailers(s, s->user);
    return 0;
}

static int cb_stop_sending(nghttp3_conn *h3, int64_t stream_id, uint64_t app_error_code,
                           void *conn_user_data, void *stream_user_data)
{
    struct sp_h3_conn *c = h3_user(conn_user_data);

    (void)h3;
    (void)stream_user_data;
    (void)ngtcp2_conn_shutdown_stream_read(c->qc.conn, stream_id, app_error_code);
    return 0;
}

static int cb_end_stream(nghttp3_conn *h3, int64_t stream_id, void *conn_user_data,
                         void *stream_user_data)
{
    struct sp_h3_stream *s = stream_user_data;

    (void)h3;
    (void)stream_id;
    (void)conn_user_data;
    if (s != NULL)
        s->peer_ended = true;
    if (s != NULL && s->ops != NULL && s->ops->on_end != NULL)
        s->ops->on_end(s, s->user);
    return 0;
}

static int cb_reset_stream(nghttp3_conn *h3, int64_t stream_id, uint64_t app_error_code,
                           void *conn_user_data, void *stream_user_data)
{
    struct sp_h3_conn *c = h3_user(conn_user_data);

    (void)h3;
    (void)stream_user_data;
    (void)ngtcp2_conn_shutdown_stream_write(c->qc.conn, stream_id, app_error_code);
    return 0;
}

static struct sp_h3_stream *first_at_or_above(struct sp_h3_conn *c, int64_t id)
{
    for (struct sp_h3_stream *s = c->streams; s != NULL; s = s->next) {
        if (s->id >= id)
            return s;
    }
    return NULL;
}

static int cb_shutdown(nghttp3_conn *h3, int64_t id, void *conn_user_data)
{
    struct sp_h3_conn *c = h3_user(conn_user_data);
    struct sp_h3_stream *s;

    /* RFC 9114 §5.2: the peer is going away; open no new requests here. */
    c->goaway = true;
    if (c->server)
        return 0;
    if (c->cops->on_goaway != NULL)
        c->cops->on_goaway(c, c->ctx);
    /* The server will not process our requests on streams at or above its GOAWAY's id: they may
     * go elsewhere whatever their method. End them now as rejected (nghttp3 0.8 leaves them
     * open), from the first one each time since a user's on_close may end others. */
    while ((s = first_at_or_above(c, id)) != NULL) {
        (void)nghttp3_conn_set_stream_user_data(h3, s->id, NULL);
        sp_quic_conn_shutdown_stream(&c->qc, s->id, SP_H3_REQUEST_CANCELLED);
        stream_finish(s, SP_H3_REQUEST_REJECTED);
    }
    return 0;
}

static const nghttp3_callbacks h3_callbacks = {
    .acked_stream_data = cb_acked_stream_data,
    .stream_close = cb_stream_close,
    .recv_data = cb_recv_data,
    .deferred_consume = cb_deferred_consume,
    .begin_headers = cb_begin_headers,
    .recv_header = cb_recv_header,
    .end_headers = cb_end_headers,
    .begin_trailers = cb_begin_trailers,
    .recv_trailer = cb_recv_header,
    .end_trailers = cb_end_trailers,
    .stop_sending = cb_stop_sending,
    .end_stream = cb_end_stream,
    .reset_stream = cb_reset_stream,
    .shutdown = cb_shutdown,
};

/* ---- data reader ------------------------------------------------------------------------ */

static nghttp3_ssize read_data(nghttp3_conn *h3, int64_t stream_id, nghttp3_vec *vec, size_t veccnt,
                               uint32_t *pflags, void *conn_user_data, void *stream_user_data)
{
    struct sp_h3_stream *s = stream_user_data;
    struct sp_bodybuf_vec bv[16];
    size_t n, total = 0;

    (void)conn_user_data;
    if (s == NULL) {
        *pflags |= NGHTTP3_DATA_FLAG_EOF;
        return 0;
    }
    n = sp_bodybuf_peek(&s->out, bv, SP_MIN(veccnt, SP_ARRAY_LEN(bv)));
    for (size_t i = 0; i < n; i++) {
        vec[i].base = (uint8_t *)bv[i].base;
        vec[i].len = bv[i].len;
        total += bv[i].len;
    }
    sp_bodybuf_advance(&s->out, total);
    if (s->out.eof && sp_bodybuf_pending(&s->out) == 0) {
        *pflags |= NGHTTP3_DATA_FLAG_EOF;
        if (!s->has_out_trailers)
            s->fin_handed = true;
        if (s->has_out_trailers) {
            *pflags |= NGHTTP3_DATA_FLAG_NO_END_STREAM;
            if (nghttp3_conn_submit_trailers(h3, stream_id, s->out_trailers, s->n_out_trailers) !=
                0)
                return NGHTTP3_ERR_CALLBACK_FAILURE;
        }
        return (nghttp3_ssize)n;
    }
    if (n == 0) {
        s->conn->read_blocked = true;
        return NGHTTP3_ERR_WOULDBLOCK;
    }
    return (nghttp3_ssize)n;
}

static const nghttp3_data_reader data_reader = {.read_data = read_data};

/* ---- QUIC application ops --------------------------------------------------------------- */

static int h3_error(struct sp_h3_conn *c, int liberr, const char *what)
{
    SP_LOG_DEBUG("http", "event=h3_error op=%s err=\"%s\"", what, nghttp3_strerror(liberr));
    ngtcp2_connection_close_error_set_application_error(
        &c->qc.last_error, nghttp3_err_infer_quic_app_error_code(liberr), NULL, 0);
    return -EPROTO;
}

static int setup_h3(struct sp_h3_conn *c)
{
    nghttp3_settings settings;
    int64_t ctrl, qenc, qdec;
    int rv;

    if (c->h3 != NULL)
        return 0;
    nghttp3_settings_default(&settings);
    settings.max_field_section_size = c->lim.max_header_bytes;
    settings.qpack_max_dtable_capacity = 4096;
    settings.qpack_blocked_streams = 100;
    if (c->server)
        rv = nghttp3_conn_server_new(&c->h3, &h3_callbacks, &settings, NULL, c);
    else
        rv = nghttp3_conn_client_new(&c->h3, &h3_callbacks, &settings, NULL, c);
    if (rv != 0)
        return h3_error(c, rv, "conn_new");
    if (c->server) {
        const ngtcp2_transport_params *tp = ngtcp2_conn_get_local_transport_params(c->qc.conn);

        nghttp3_conn_set_max_client_streams_bidi(c->h3, tp->initial_max_streams_bidi);
    }
    /* RFC 9114 §6.2.1 and RFC 9204 §4.2: control stream and the two QPACK streams. */
    if (ngtcp2_conn_open_uni_stream(c->qc.conn, &ctrl, NULL) != 0 ||
        ngtcp2_conn_open_uni_stream(c->qc.conn, &qenc, NULL) != 0 ||
        ngtcp2_conn_open_uni_stream(c->qc.conn, &qdec, NULL) != 0)
        return -EPROTO;
    rv = nghttp3_conn_bind_control_stream(c->h3, ctrl);
    if (rv == 0)
        rv = nghttp3_conn_bind_qpack_streams(c->h3, qenc, qdec);
    if (rv != 0)
        return h3_error(c, rv, "bind_streams");
    return 0;
}

static int on_handshake_completed(struct sp_quic_conn *qc)
{
    struct sp_h3_conn *c = conn_of(qc);
    int rv = setup_h3(c);

    if (rv != 0)
        return rv;
    if (c->server)
        c->sops->on_handshake(c, c->ctx);
    else if (c->cops->on_ready != NULL)
        c->cops->on_ready(c, c->ctx);
    return 0;
}

static int on_stream_data(struct sp_quic_conn *qc, int64_t stream_id, const uint8_t *data,
                          size_t len, bool fin, void *stream_user_data)
{
    struct sp_h3_conn *c = conn_of(qc);
    nghttp3_ssize n;
    int rv;

    (void)stream_user_data;
    rv = setup_h3(c);
    if (rv != 0)
        return rv;
    n = nghttp3_conn_read_stream(c->h3, stream_id, data, len, fin);
    if (n == NGHTTP3_ERR_MALFORMED_HTTP_MESSAGING && ngtcp2_is_bidi_stream(stream_id)) {
        /* RFC 9114 §4.1.2: a body that disagrees with content-length makes the message
         * malformed, which is a stream error, not a connection error. */
        SP_LOG_DEBUG("http", "event=malformed_message stream=%lld", (long long)stream_id);
        (void)nghttp3_conn_shutdown_stream_read(c->h3, stream_id);
        sp_quic_conn_shutdown_stream(qc, stream_id, SP_H3_MESSAGE_ERROR);
        sp_quic_conn_consume(qc, -1, len);
        return 0;
    }
    if (n < 0)
        return h3_error(c, (int)n, "read_stream");
    /* Frame overhead and QPACK bytes are ours to release; DATA payload is the user's. */
    sp_quic_conn_consume(qc, stream_id, (uint64_t)n);
    return 0;
}

/* nghttp3 0.8 loses a FIN that is queued on its own: when read_data ends a body with no bytes
 * left to hand out, nghttp3 queues an empty entry that carries the FIN, and an acknowledgement
 * that reaches the end of the bytes before it pops that entry too if it has not been written yet
 * (congestion-limited, so the FIN waits). The FIN is then never sent and the peer waits for the
 * end of the message until it gives up (fixed upstream in nghttp3 1.10.0, "Do not ack 0-byte
 * vector with fin which has not been handed out"). From the moment the FIN is handed to nghttp3
 * until ngtcp2 has taken it, one acknowledged byte is held back, so nghttp3's ack offset never
 * reaches the FIN's entry; the byte is passed on with the next acknowledgement after the FIN went
 * out (ngtcp2 reports the FIN's own acknowledgement, with len 0 if need be). Returns how many
 * bytes to pass to nghttp3 now. */
uint64_t sp_h3_ack_filter(struct sp_h3_ack_hold *h, uint64_t len)
{
    if (!h->fin_handed)
        return len;
    len += h->held;
    h->held = 0;
    if (!h->fin_written && len > 0) {
        h->held = 1;
        len--;
    }
    return len;
}

static int on_acked(struct sp_quic_conn *qc, int64_t stream_id, uint64_t len,
                    void *stream_user_data)
{
    struct sp_h3_conn *c = conn_of(qc);
    struct sp_h3_stream *s = stream_user_data;
    int rv;

    if (c->h3 == NULL)
        return 0;
    if (s != NULL) {
        struct sp_h3_ack_hold h = {s->fin_handed, s->fin_written, s->ack_held};
        uint64_t given = len;

        len = sp_h3_ack_filter(&h, len);
        s->ack_held = h.held;
        if (len == 0 && given > 0)
            return 0; /* all of it held back */
    }
    rv = nghttp3_conn_add_ack_offset(c->h3, stream_id, len);
    return rv == 0 ? 0 : h3_error(c, rv, "add_ack_offset");
}

static int on_stream_close(struct sp_quic_conn *qc, int64_t stream_id, bool has_app_error,
                           uint64_t app_error_code, void *stream_user_data)
{
    struct sp_h3_conn *c = conn_of(qc);
    int rv;

    (void)stream_user_data;
    if (c->h3 == NULL)
        return 0;
    if (!has_app_error)
        app_error_code = SP_H3_NO_ERROR;
    rv = nghttp3_conn_close_stream(c->h3, stream_id, app_error_code);
    if (rv != 0 && rv != NGHTTP3_ERR_STREAM_NOT_FOUND)
        return h3_error(c, rv, "close_stream");
    return 0;
}

static int on_stream_reset(struct sp_quic_conn *qc, int64_t stream_id, uint64_t app_error_code,
                           void *stream_user_data)
{
    struct sp_h3_conn *c = conn_of(qc);

    (void)app_error_code;
    (void)stream_user_data;
    if (c->h3 != NULL && nghttp3_conn_shutdown_stream_read(c->h3, stream_id) != 0)
        return -EPROTO;
    return 0;
}

static int on_extend_max_stream_data(struct sp_quic_conn *qc, int64_t stream_id,
                                     void *stream_user_data)
{
    struct sp_h3_conn *c = conn_of(qc);

    (void)stream_user_data;
    if (c->h3 != NULL && nghttp3_conn_unblock_stream(c->h3, stream_id) != 0)
        return -EPROTO;
    return 0;
}

static int on_extend_max_streams_bidi(struct sp_quic_conn *qc, uint64_t max_streams)
{
    struct sp_h3_conn *c = conn_of(qc);

    if (c->server) {
        if (c->h3 != NULL)
            nghttp3_conn_set_max_client_streams_bidi(c->h3, max_streams);
    } else if (c->h3 != NULL && !c->goaway && c->cops->on_streams_available != NULL) {
        c->cops->on_streams_available(c, c->ctx);
    }
    return 0;
}

static int pull(struct sp_quic_conn *qc, int64_t *ret_stream_id, bool *ret_fin, ngtcp2_vec *vec,
                size_t veccnt)
{
    struct sp_h3_conn *c = conn_of(qc);
    nghttp3_ssize n;
    int fin = 0;

    *ret_stream_id = -1;
    *ret_fin = false;
    if (c->h3 == NULL)
        return 0;
    /* nghttp3 looks at the first scheduled stream only: when that one runs out of body bytes
     * (read_data blocks) it is unscheduled and the call returns nothing, although other streams
     * may have data. Ask again then, or the write ends with their bytes unsent and nothing left
     * to wake it. Each retry unscheduled one stream, so this ends. */
    do {
        c->read_blocked = false;
        n = nghttp3_conn_writev_stream(c->h3, ret_stream_id, &fin, (nghttp3_vec *)(void *)vec,
                                       veccnt);
    } while (n == 0 && *ret_stream_id == -1 && c->read_blocked);
    if (n < 0)
        return h3_error(c, (int)n, "writev_stream");
    *ret_fin = fin != 0;
    return (int)n;
}

/* The request stream with this id, or NULL. A walk, so only for rare events. */
static struct sp_h3_stream *find_stream(struct sp_h3_conn *c, int64_t id)
{
    for (struct sp_h3_stream *s = c->streams; s != NULL; s = s->next) {
        if (s->id == id)
            return s;
    }
    return NULL;
}

static int on_written(struct sp_quic_conn *qc, int64_t stream_id, size_t len, bool fin)
{
    struct sp_h3_conn *c = conn_of(qc);
    int rv;

    if (c->h3 == NULL || stream_id < 0)
        return 0;
    rv = nghttp3_conn_add_write_offset(c->h3, stream_id, len);
    if (rv != 0)
        return h3_error(c, rv, "add_write_offset");
    if (ngtcp2_is_bidi_stream(stream_id) && (len > 0 || fin)) {
        /* Streams are written in runs: the cache makes this lookup a compare. */
        struct sp_h3_stream *s = c->last_tx != NULL && c->last_tx->id == stream_id
                                     ? c->last_tx
                                     : find_stream(c, stream_id);

        c->last_tx = s;
        if (s != NULL) {
            s->sent_any = true;
            s->fin_written = s->fin_written || fin; /* on_acked may pass its held byte on */
        }
    }
    return 0;
}

static void on_blocked(struct sp_quic_conn *qc, int64_t stream_id, bool shut)
{
    struct sp_h3_conn *c = conn_of(qc);

    if (c->h3 == NULL)
        return;
    if (!shut) {
        nghttp3_conn_block_stream(c->h3, stream_id);
        return;
    }
    nghttp3_conn_shutdown_stream_write(c->h3, stream_id);
    if (ngtcp2_is_bidi_stream(stream_id)) {
        /* ngtcp2 reset our side after the peer's STOP_SENDING: tell the user, once, unless the
         * reset was ours. */
        struct sp_h3_stream *s = find_stream(c, stream_id);

        if (s != NULL && !s->write_shut) {
            s->write_shut = true;
            if (!s->reset_sent && s->ops != NULL && s->ops->on_stop != NULL)
                s->ops->on_stop(s, s->user);
        }
    }
}

static void on_closed(struct sp_quic_conn *qc, const char *reason)
{
    struct sp_h3_conn *c = conn_of(qc);

    c->goaway = true;
    while (c->streams != NULL) {
        struct sp_h3_stream *s = c->streams;
        /* A peer may close the connection right after reading everything (before our FIN is
         * acknowledged): that exchange still completed. */
        bool complete =
            s->peer_ended && s->out.eof && !s->reset_sent && sp_bodybuf_pending(&s->out) == 0;

        stream_finish(s, complete ? 0 : SP_H3_INTERNAL_ERROR);
    }
    c->closed = true;
    if (c->server)
        c->sops->on_conn_closed(c, c->ctx, reason);
    else
        c->cops->on_conn_closed(c, c->ctx, reason);
}

static const struct sp_quic_app_ops h3_app_ops = {
    .on_handshake_completed = on_handshake_completed,
    .on_stream_data = on_stream_data,
    .on_acked = on_acked,
    .on_stream_close = on_stream_close,
    .on_stream_reset = on_stream_reset,
    .on_stop_sending = on_stream_reset,
    .on_extend_max_stream_data = on_extend_max_stream_data,
    .on_extend_max_streams_bidi = on_extend_max_streams_bidi,
    .pull = pull,
    .on_written = on_written,
    .on_blocked = on_blocked,
    .on_closed = on_closed,
};

/* ---- public API ------------------------------------------------------------------------- */

int sp_h3_conn_new_server(struct ev_loop *loop, struct sp_quic_endpoint *ep,
                          const struct sockaddr *remote, socklen_t remote_len,
                          const ngtcp2_pkt_hd *hd, const ngtcp2_cid *scid,
                          const struct sp_quic_conn_params *params, const struct sp_h3_limits *lim,
                          gnutls_session_t tls, const struct sp_h3_server_ops *ops, void *ctx,
                          struct sp_h3_conn **ret)
{
    struct sp_h3_conn *c = sp_xcalloc(1, sizeof(*c));
    int rv;

    rv = sp_quic_conn_init_server(&c->qc, loop, ep, remote, remote_len, hd, scid, params, tls,
                                  &h3_app_ops);
    if (rv != 0) {
        free(c);
        return rv;
    }
    gnutls_session_set_ptr(tls, &c->qc.conn_ref);
    c->server = true;
    c->sops = ops;
    c->ctx = ctx;
    c->lim = *lim;
    *ret = c;
    return 0;
}

int sp_h3_conn_new_client(struct ev_loop *loop, struct sp_quic_endpoint *ep,
                          const struct sockaddr *remote, socklen_t remote_len,
                          const struct sp_quic_conn_params *params, const struct sp_h3_limits *lim,
                          gnutls_session_t tls, const struct sp_h3_client_ops *ops, void *ctx,
                          struct sp_h3_conn **ret)
{
    struct sp_h3_conn *c = sp_xcalloc(1, sizeof(*c));
    int rv;

    gnutls_session_set_ptr(tls, &c->qc.conn_ref);
    rv = sp_quic_conn_init_client(&c->qc, loop, ep, remote, remote_len, params, tls, &h3_app_ops);
    if (rv != 0) {
        free(c);
        return rv;
    }
    c->cops = ops;
    c->ctx = ctx;
    c->lim = *lim;
    *ret = c;
    return 0;
}

void sp_h3_conn_free(struct sp_h3_conn *c)
{
    if (c == NULL)
        return;
    /* Streams are normally gone already (on_closed); this covers a conn freed while open. */
    c->closed = true;
    while (c->streams != NULL) {
        struct sp_h3_stream *s = c->streams;

        s->ops = NULL;
        stream_free(s);
    }
    nghttp3_conn_del(c->h3);
    c->h3 = NULL;
    sp_quic_conn_fini(&c->qc);
    free(c);
}

uint64_t sp_h3_conn_streams_left(struct sp_h3_conn *c)
{
    if (c->h3 == NULL || c->goaway || c->qc.state != SP_QUIC_CONN_ESTABLISHED)
        return 0;
    return ngtcp2_conn_get_streams_bidi_left(c->qc.conn);
}

static void to_nv(nghttp3_nv *nv, const struct sp_field *f)
{
    nv->name = (uint8_t *)f->name;
    nv->namelen = f->name_len;
    nv->value = (uint8_t *)f->value;
    nv->valuelen = f->value_len;
    nv->flags = NGHTTP3_NV_FLAG_NONE;
}

int sp_h3_conn_submit_request(struct sp_h3_conn *c, const struct sp_field *fields, size_t n,
                              bool has_body, const struct sp_h3_stream_ops *ops, void *user,
                              struct sp_h3_stream **ret_stream)
{
    nghttp3_nv nva[MAX_OUT_FIELDS];
    struct sp_h3_stream *s;
    int64_t id;
    int rv;

    if (n > MAX_OUT_FIELDS)
        return -EINVAL;
    if (sp_h3_conn_streams_left(c) == 0)
        return -EAGAIN;
    s = stream_new(c, -1);
    if (ngtcp2_conn_open_bidi_stream(c->qc.conn, &id, s) != 0) {
        stream_free(s);
        return -EAGAIN;
    }
    s->id = id;
    for (size_t i = 0; i < n; i++)
        to_nv(&nva[i], &fields[i]);
    s->ops = ops;
    s->user = user;
    s->submitted = true;
    rv = nghttp3_conn_submit_request(c->h3, id, nva, n, has_body ? &data_reader : NULL, s);
    if (rv != 0) {
        (void)ngtcp2_conn_shutdown_stream(c->qc.conn, id, SP_H3_INTERNAL_ERROR);
        s->ops = NULL;
        stream_free(s);
        return -EPROTO;
    }
    if (!has_body)
        s->out.eof = true;
    *ret_stream = s;
    sp_quic_conn_write(&c->qc);
    return 0;
}

void sp_h3_conn_shutdown(struct sp_h3_conn *c)
{
    if (c->h3 == NULL || c->qc.state != SP_QUIC_CONN_ESTABLISHED)
        return;
    c->goaway = true;
    (void)nghttp3_conn_submit_shutdown_notice(c->h3);
    sp_quic_conn_write(&c->qc);
}

void sp_h3_conn_shutdown_final(struct sp_h3_conn *c)
{
    if (c->h3 == NULL || c->qc.state != SP_QUIC_CONN_ESTABLISHED)
        return;
    c->goaway = true;
    /* RFC 9114 §5.2: the id of the first request stream we have not seen; nghttp3 rejects later
     * ones with H3_REQUEST_REJECTED. */
    if (nghttp3_conn_shutdown(c->h3) != 0)
        return;
    sp_quic_conn_write(&c->qc);
}

void sp_h3_conn_close(struct sp_h3_conn *c, const char *reason)
{
    sp_quic_conn_close(&c->qc, SP_H3_NO_ERROR, reason);
}

size_t sp_h3_conn_active_streams(const struct sp_h3_conn *c)
{
    return c->nstreams;
}

void sp_h3_stream_set_user(struct sp_h3_stream *s, const struct sp_h3_stream_ops *ops, void *user)
{
    s->ops = ops;
    s->user = user;
}

int sp_h3_stream_respond(struct sp_h3_stream *s, unsigned status, const struct sp_field *fields,
                         size_t n, bool has_body)
{
    nghttp3_nv nva[MAX_OUT_FIELDS + 1];
    char st[4];
    int rv;

    if (n > MAX_OUT_FIELDS || status < 100 || status > 599)
        return -EINVAL;
    snprintf(st, sizeof(st), "%03u", status);
    nva[0] = (nghttp3_nv){.name = (uint8_t *)":status",
                          .namelen = 7,
                          .value = (uint8_t *)st,
                          .valuelen = 3,
                          .flags = NGHTTP3_NV_FLAG_NONE};
    for (size_t i = 0; i < n; i++)
        to_nv(&nva[i + 1], &fields[i]);
    rv = nghttp3_conn_submit_response(s->conn->h3, s->id, nva, n + 1,
                                      has_body ? &data_reader : NULL);
    if (rv != 0)
        return -EPROTO;
    s->submitted = true;
    if (!has_body)
        s->out.eof = true;
    sp_quic_conn_write(&s->conn->qc);
    return 0;
}

static void resume(struct sp_h3_stream *s)
{
    if (s->submitted && s->conn->h3 != NULL) {
        (void)nghttp3_conn_resume_stream(s->conn->h3, s->id);
        sp_quic_conn_write(&s->conn->qc);
    }
}

void sp_h3_stream_write(struct sp_h3_stream *s, const uint8_t *data, size_t len)
{
    if (s->out.eof || s->reset_sent || len == 0)
        return;
    sp_bodybuf_append(&s->out, data, len);
    resume(s);
}

static nghttp3_nv *copy_trailers(const struct sp_field *f, size_t n)
{
    size_t bytes = n * sizeof(nghttp3_nv);
    nghttp3_nv *nv;
    uint8_t *p;

    for (size_t i = 0; i < n; i++)
        bytes += f[i].name_len + f[i].value_len;
    nv = sp_xmalloc(bytes);
    p = (uint8_t *)(nv + n);
    for (size_t i = 0; i < n; i++) {
        memcpy(p, f[i].name, f[i].name_len);
        nv[i].name = p;
        nv[i].namelen = f[i].name_len;
        p += f[i].name_len;
        memcpy(p, f[i].value, f[i].value_len);
        nv[i].value = p;
        nv[i].valuelen = f[i].value_len;
        p += f[i].value_len;
        nv[i].flags = NGHTTP3_NV_FLAG_NONE;
    }
    return nv;
}

void sp_h3_stream_end(struct sp_h3_stream *s, const struct sp_field *trailers, size_t n)
{
    if (s->out.eof || s->reset_sent)
        return;
    if (n > 0) {
        s->out_trailers = copy_trailers(trailers, n);
        s->n_out_trailers = n;
        s->has_out_trailers = true;
    }
    s->out.eof = true;
    resume(s);
}

void sp_h3_stream_consume(struct sp_h3_stream *s, uint64_t len)
{
    len = SP_MIN(len, s->in_data - s->in_credited); /* never more than was delivered */
    if (len == 0)
        return;
    s->in_credited += len;
    if (s->conn->server)
        sp_quic_conn_consume(&s->conn->qc, s->id, len);
    else
        sp_quic_conn_consume_stream(&s->conn->qc, s->id, len); /* the connection's went already */
    /* Credit is worth sending promptly: the peer may be blocked on it. */
    sp_quic_conn_write(&s->conn->qc);
}

void sp_h3_stream_stop_reading(struct sp_h3_stream *s, uint64_t app_error)
{
    if (s->read_stopped || s->reset_sent || s->peer_ended)
        return;
    s->read_stopped = true;
    /* What the user still holds will not be passed on: its credit comes back now. */
    if (s->in_data > s->in_credited)
        sp_h3_stream_consume(s, s->in_data - s->in_credited);
    if (s->conn->h3 != NULL)
        (void)nghttp3_conn_shutdown_stream_read(s->conn->h3, s->id);
    if (s->conn->qc.state != SP_QUIC_CONN_CLOSED)
        (void)ngtcp2_conn_shutdown_stream_read(s->conn->qc.conn, s->id, app_error);
    sp_quic_conn_write(&s->conn->qc);
}

void sp_h3_stream_reset(struct sp_h3_stream *s, uint64_t app_error)
{
    if (s->reset_sent)
        return;
    s->reset_sent = true;
    if (s->conn->h3 != NULL)
        (void)nghttp3_conn_shutdown_stream_read(s->conn->h3, s->id);
    sp_quic_conn_shutdown_stream(&s->conn->qc, s->id, app_error);
    sp_quic_conn_write(&s->conn->qc);
}

const struct sp_fields *sp_h3_stream_headers(const struct sp_h3_stream *s)
{
    return &s->headers;
}

const struct sp_fields *sp_h3_stream_trailers(const struct sp_h3_stream *s)
{
    return &s->trailers;
}

uint64_t sp_h3_stream_unacked(const struct sp_h3_stream *s)
{
    return sp_bodybuf_held(&s->out);
}

bool sp_h3_stream_sent_any(const struct sp_h3_stream *s)
{
    return s->sent_any;
}

unsigned sp_h3_stream_status(const struct sp_h3_stream *s)
{
    return s->status;
}

struct sp_h3_conn *sp_h3_stream_conn(const struct sp_h3_stream *s)
{
    return s->conn;
}

int sp_h3_stream_describe(const struct sp_h3_stream *s, char *buf, size_t len)
{
    ngtcp2_conn *qc = s->conn->qc.conn;
    ngtcp2_conn_stat st;
    bool open = s->conn->qc.state != SP_QUIC_CONN_CLOSED;

    if (open)
        ngtcp2_conn_get_conn_stat(qc, &st);
    else
        memset(&st, 0, sizeof(st));
    return snprintf(
        buf, len,
        "stream=%lld out_written=%llu out_sent=%llu out_acked=%llu out_eof=%d fin_sent=%d "
        "in_data=%llu in_credited=%llu peer_ended=%d tx_stream_credit=%llu "
        "tx_conn_credit=%llu cwnd_left=%llu in_flight=%llu",
        (long long)s->id, (unsigned long long)s->out.written, (unsigned long long)s->out.read,
        (unsigned long long)s->out.acked, s->out.eof, s->fin_written,
        (unsigned long long)s->in_data, (unsigned long long)s->in_credited, s->peer_ended,
        (unsigned long long)(open ? ngtcp2_conn_get_max_stream_data_left(qc, s->id) : 0),
        (unsigned long long)(open ? ngtcp2_conn_get_max_data_left(qc) : 0),
        (unsigned long long)(open ? ngtcp2_conn_get_cwnd_left(qc) : 0),
        (unsigned long long)st.bytes_in_flight);
}

const char *sp_h3_conn_peer_ip(struct sp_h3_conn *c)
{
    if (c->peer_ip[0] == '\0')
        sp_headers_format_ip((const struct sockaddr *)&c->qc.remote, c->peer_ip,
                             sizeof(c->peer_ip));
    return c->peer_ip;
}
