/* h2_stream.c: request streams of the HTTP/2 backend protocol (see h2_internal.h): request fields
 * (RFC 9113 §8.2, §8.3), the request body as an nghttp2 data provider over an sp_bodybuf,
 * response sections kept as zero-copy nghttp2 rcbuf references, end-to-end flow control, and the
 * mapping of stream endings to enum sp_ustream_error. */
#include "core/log.h"
#include "core/util.h"
#include "upstream/h2_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Request fields we pass per request at most (the proxy's limits keep far below). */
#define MAX_OUT_FIELDS 256

static const struct sp_ustream_ops stream_ops;

/* ---- lifecycle ----------------------------------------------------------------------------- */

static struct uh2_stream *stream_new(struct uh2_conn *c)
{
    struct uh2_stream *s = sp_xcalloc(1, sizeof(*s));

    s->conn = c;
    sp_bodybuf_init(&s->out);
    s->next = c->streams;
    if (c->streams != NULL)
        c->streams->prev = s;
    c->streams = s;
    c->nstreams++;
    return s;
}

static void stream_free(struct uh2_stream *s)
{
    struct uh2_conn *c = s->conn;

    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        c->streams = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    c->nstreams--;
    for (size_t i = 0; i < s->nrefs; i++)
        nghttp2_rcbuf_decref(s->refs[i]);
    free(s->refs);
    sp_fields_fini(&s->headers);
    sp_fields_fini(&s->trailers);
    sp_bodybuf_fini(&s->out);
    free(s->out_trailers);
    free(s);
}

/* Tells the user the stream is gone (unless it let go first), then frees it. */
static void stream_finish(struct uh2_stream *s, enum sp_ustream_error err)
{
    struct uh2_conn *c = s->conn;
    struct sp_ustream *us = s->us;

    /* The connection-level credit of every byte went back on receipt (sp_uh2_stream_on_data). */
    s->in_credited = s->in_data;
    if (!c->closed)
        (void)nghttp2_session_set_stream_user_data(c->ng, s->id, NULL);
    s->us = NULL;
    if (us != NULL) {
        if (s->sent_unreported > 0)
            us->cbs->on_sent(us, us->user, s->sent_unreported);
        us->impl = NULL;
        us->cbs->on_close(us, us->user, err);
    }
    stream_free(s);
}

/* How a stream nghttp2 closed ended for the user (RFC 9113 §8.1, §7). */
static enum sp_ustream_error close_error(const struct uh2_stream *s, uint32_t error_code)
{
    /* A complete response stands even if the backend then reset the rest of our upload
     * (RFC 9113 §8.1: a server may answer before the request is complete). */
    if (s->peer_ended && !s->malformed && !s->too_large)
        return SP_USTREAM_OK;
    /* REFUSED_STREAM, sent by the backend or applied by nghttp2 above GOAWAY's last id: the
     * request was not processed (RFC 9113 §8.7), safe to retry anywhere. */
    if (error_code == NGHTTP2_REFUSED_STREAM)
        return SP_USTREAM_REFUSED;
    if (s->malformed || s->too_large)
        return SP_USTREAM_PROTOCOL;
    return SP_USTREAM_RESET;
}

void sp_uh2_stream_on_close(struct uh2_stream *s, uint32_t error_code)
{
    SP_LOG_DEBUG("upstream", "event=h2_stream_closed stream=%d error_code=%u peer_reset=%d",
                 (int)s->id, (unsigned)error_code, (int)s->peer_reset);
    stream_finish(s, close_error(s, error_code));
}

void sp_uh2_stream_not_sent(struct uh2_stream *s)
{
    stream_finish(s, SP_USTREAM_REFUSED);
}

void sp_uh2_streams_lost(struct uh2_conn *c)
{
    while (c->streams != NULL) {
        struct uh2_stream *s = c->streams;
        enum sp_ustream_error err = SP_USTREAM_CONN_LOST;

        /* A request whose HEADERS never left, or above GOAWAY's last id, was never processed
         * (RFC 9113 §6.8); a response that completed stands. */
        if (!s->headers_sent || (c->goaway_last_id >= 0 && s->id > c->goaway_last_id))
            err = SP_USTREAM_REFUSED;
        else if (s->peer_ended && !s->malformed && !s->too_large)
            err = SP_USTREAM_OK;
        stream_finish(s, err);
    }
}

void sp_uh2_streams_free(struct uh2_conn *c)
{
    while (c->streams != NULL)
        stream_free(c->streams);
}

void sp_uh2_streams_report_sent(struct uh2_conn *c)
{
    struct uh2_stream *s = c->streams;

    /* on_sent may end or cancel the stream it reports on, never another one: remember next. */
    while (s != NULL) {
        struct uh2_stream *next = s->next;
        uint64_t n = s->sent_unreported;

        if (n > 0 && s->us != NULL) {
            s->sent_unreported = 0;
            s->us->cbs->on_sent(s->us, s->us->user, n);
        }
        s = next;
    }
}

struct uh2_stream *sp_uh2_stream_find(struct uh2_conn *c, int32_t id)
{
    for (struct uh2_stream *s = c->streams; s != NULL; s = s->next) {
        if (s->id == id)
            return s;
    }
    return NULL;
}

/* ---- response ------------------------------------------------------------------------------ */

static void keep_ref(struct uh2_stream *s, nghttp2_rcbuf *rc)
{
    if (s->nrefs == s->caprefs) {
        s->caprefs = s->caprefs ? s->caprefs * 2 : 16;
        s->refs = sp_xrealloc(s->refs, s->caprefs * sizeof(*s->refs));
    }
    nghttp2_rcbuf_incref(rc);
    s->refs[s->nrefs++] = rc;
}

void sp_uh2_stream_on_begin_headers(struct uh2_stream *s)
{
    /* A header section after the final response is the trailer section (RFC 9113 §8.1). */
    if (s->status >= 200)
        s->in_trailers = true;
}

void sp_uh2_stream_on_header(struct uh2_stream *s, nghttp2_rcbuf *name, nghttp2_rcbuf *value)
{
    struct sp_fields *f = s->in_trailers ? &s->trailers : &s->headers;
    nghttp2_vec n = nghttp2_rcbuf_get_buf(name);
    nghttp2_vec v = nghttp2_rcbuf_get_buf(value);
    const struct sp_limits_conf *lim = s->conn->limits;

    /* Same accounting as HTTP/3 (RFC 9114 §4.2.2; RFC 9113 §6.5.2 counts alike). */
    f->bytes += n.len + v.len + 32;
    if (s->too_large || f->count >= lim->max_headers || f->bytes > lim->max_header_bytes) {
        s->too_large = true;
        return;
    }
    if (f->count == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->items = sp_xrealloc(f->items, f->cap * sizeof(*f->items));
    }
    keep_ref(s, name);
    keep_ref(s, value);
    f->items[f->count++] = (struct sp_field){n.base, n.len, v.base, v.len};
}

static unsigned parse_status(const struct sp_fields *f)
{
    const struct sp_field *st = sp_fields_find(f, ":status");
    unsigned v = 0;

    if (st == NULL || st->value_len != 3)
        return 0;
    for (size_t i = 0; i < 3; i++) {
        if (st->value[i] < '0' || st->value[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(st->value[i] - '0');
    }
    return v;
}

/* Refuses the rest of a response we cannot pass on. */
static void stream_abort(struct uh2_stream *s, uint32_t h2_error)
{
    (void)nghttp2_submit_rst_stream(s->conn->ng, NGHTTP2_FLAG_NONE, s->id, h2_error);
    sp_uh2_schedule_flush(s->conn);
}

static void on_headers_frame(struct uh2_stream *s)
{
    if (s->too_large) {
        stream_abort(s, NGHTTP2_ENHANCE_YOUR_CALM);
        return;
    }
    if (s->in_trailers)
        return; /* delivered with on_end */
    s->status = parse_status(&s->headers);
    if (s->status < 200) {
        /* Interim response (RFC 9113 §8.1, RFC 9110 §15.2): not forwarded; wait for the final
         * one. nghttp2 has checked :status is three digits. */
        sp_fields_fini(&s->headers);
        s->status = 0;
        return;
    }
    if (s->us != NULL)
        s->us->cbs->on_headers(s->us, s->us->user);
}

void sp_uh2_stream_on_frame(struct uh2_stream *s, const nghttp2_frame *frame)
{
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        on_headers_frame(s);
        break;
    case NGHTTP2_RST_STREAM:
        s->peer_reset = true;
        return;
    case NGHTTP2_DATA:
        break;
    default:
        return;
    }
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0 || s->too_large || s->status < 200)
        return;
    s->peer_ended = true;
    if (s->us != NULL)
        s->us->cbs->on_end(s->us, s->us->user);
}

void sp_uh2_stream_on_data(struct uh2_stream *s, const uint8_t *data, size_t len)
{
    struct uh2_conn *c = s->conn;

    if (s->us == NULL || s->too_large) {
        /* Nobody reads this stream any more: discard, but keep the windows open. */
        (void)nghttp2_session_consume(c->ng, s->id, len);
        return;
    }
    s->in_data += len;
    /* One client that does not read must not starve the others on this connection: the
     * connection window reopens as soon as the bytes are taken; the stream's own window waits
     * for its client (RFC 9113 §5.2.1: flow control is per stream and per connection). */
    (void)nghttp2_session_consume_connection(c->ng, len);
    sp_uh2_schedule_flush(c);
    s->us->cbs->on_data(s->us, s->us->user, data, len);
}

/* ---- request body (data provider) ---------------------------------------------------------- */

/* Hands nghttp2 the length of the next DATA frame; the bytes are copied into the output buffer
 * by sp_uh2_send_data (NO_COPY), so body bytes are copied once between client and socket. */
static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    struct uh2_stream *s = source->ptr;
    uint64_t pending = sp_bodybuf_pending(&s->out);
    size_t n = (size_t)SP_MIN((uint64_t)length, pending);

    (void)buf;
    (void)user_data;
    if (n == 0 && (!s->out.eof || s->us == NULL)) {
        s->deferred = true; /* sp_uh2 write/end resumes it */
        return NGHTTP2_ERR_DEFERRED;
    }
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (s->out.eof && n == pending) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->n_out_trailers > 0) {
            /* RFC 9113 §8.1: trailers end the stream instead of this DATA frame. */
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            if (nghttp2_submit_trailer(session, stream_id, s->out_trailers, s->n_out_trailers) != 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    }
    return (ssize_t)n;
}

static void append_body(struct uh2_conn *c, struct uh2_stream *s, size_t length)
{
    struct sp_bodybuf_vec vec[8];

    /* Bounded: each pass copies at least one non-empty vector; length <= pending. */
    while (length > 0) {
        size_t nvec = sp_bodybuf_peek(&s->out, vec, SP_ARRAY_LEN(vec));
        size_t copied = 0;

        for (size_t i = 0; i < nvec && copied < length; i++) {
            size_t take = SP_MIN(vec[i].len, length - copied);

            sp_uh2_obuf_append(c, vec[i].base, take);
            copied += take;
        }
        sp_bodybuf_advance(&s->out, copied);
        length -= copied;
    }
}

int sp_uh2_send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                     size_t length, nghttp2_data_source *source, void *user_data)
{
    static const uint8_t zeros[256];
    struct uh2_conn *c = user_data;
    struct uh2_stream *s = source->ptr;
    size_t padlen = frame->data.padlen;

    (void)session;
    if (sp_uh2_obuf_pending(c) >= SP_UH2_OBUF_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK; /* the socket is behind: keep the frame for later */
    sp_uh2_obuf_append(c, framehd, 9);
    if (padlen > 0) {
        uint8_t padlen_field = (uint8_t)(padlen - 1);

        sp_uh2_obuf_append(c, &padlen_field, 1);
    }
    append_body(c, s, length);
    if (padlen > 1)
        sp_uh2_obuf_append(c, zeros, padlen - 1);
    /* The bytes are ours now (output buffer): free them and report them sent. Choice: on_sent
     * fires when a DATA frame is framed into the bounded output buffer, not when the backend
     * has read it (TCP has no per-byte acknowledgement we could see); the backend's flow
     * control window, which nghttp2 honours before framing, is what paces the client. */
    sp_bodybuf_ack(&s->out, length);
    s->sent_unreported += length;
    return 0;
}

/* ---- stream ops (sp_ustream_ops) ----------------------------------------------------------- */

static void resume(struct uh2_stream *s)
{
    struct uh2_conn *c = s->conn;

    if (!s->deferred || c->closed)
        return;
    s->deferred = false;
    (void)nghttp2_session_resume_data(c->ng, s->id);
    sp_uh2_schedule_flush(c);
}

static void s_write(void *impl, const uint8_t *data, size_t len)
{
    struct uh2_stream *s = impl;

    if (s->out.eof || len == 0)
        return;
    sp_bodybuf_append(&s->out, data, len);
    resume(s);
}

static nghttp2_nv *copy_trailers(const struct sp_field *f, size_t n)
{
    size_t bytes = n * sizeof(nghttp2_nv);
    nghttp2_nv *nv;
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
        nv[i].flags = NGHTTP2_NV_FLAG_NONE; /* nghttp2 copies: the frame may outlive s */
    }
    return nv;
}

static void s_end(void *impl, const struct sp_field *trailers, size_t n)
{
    struct uh2_stream *s = impl;

    if (s->out.eof)
        return;
    if (n > 0) {
        s->out_trailers = copy_trailers(trailers, n);
        s->n_out_trailers = n;
    }
    s->out.eof = true;
    resume(s);
}

static void s_consume(void *impl, uint64_t len)
{
    struct uh2_stream *s = impl;
    struct uh2_conn *c = s->conn;

    s->in_credited += len;
    if (c->closed)
        return;
    /* RFC 9113 §6.9: the stream's window reopens only as the client takes the bytes. */
    (void)nghttp2_session_consume_stream(c->ng, s->id, (size_t)len);
    sp_uh2_schedule_flush(c);
}

static void s_cancel(void *impl)
{
    struct uh2_stream *s = impl;
    struct uh2_conn *c = s->conn;

    s->us = NULL;
    if (c->closed)
        return;
    /* Credit the user will never return: give it back now; later DATA is consumed on arrival.
     * nghttp2 drops a HEADERS still queued and reports it not sent (on_frame_not_send). */
    if (s->in_data > s->in_credited)
        (void)nghttp2_session_consume_stream(c->ng, s->id, (size_t)(s->in_data - s->in_credited));
    s->in_credited = s->in_data;
    (void)nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
    sp_uh2_schedule_flush(c);
}

static unsigned s_status(const void *impl)
{
    const struct uh2_stream *s = impl;

    return s->status;
}

static const struct sp_fields *s_headers(const void *impl)
{
    const struct uh2_stream *s = impl;

    return &s->headers;
}

static const struct sp_fields *s_trailers(const void *impl)
{
    const struct uh2_stream *s = impl;

    return &s->trailers;
}

static int s_describe(const void *impl, char *buf, size_t len)
{
    const struct uh2_stream *s = impl;
    nghttp2_session *ng = s->conn->ng;

    return snprintf(buf, len,
                    "stream=%d out_written=%llu out_sent=%llu out_eof=%d in_data=%llu "
                    "in_credited=%llu peer_ended=%d tx_stream_window=%d tx_conn_window=%d "
                    "obuf_pending=%zu",
                    s->id, (unsigned long long)s->out.written, (unsigned long long)s->out.read,
                    s->out.eof, (unsigned long long)s->in_data, (unsigned long long)s->in_credited,
                    s->peer_ended,
                    s->id > 0 ? nghttp2_session_get_stream_remote_window_size(ng, s->id) : -1,
                    nghttp2_session_get_remote_window_size(ng), sp_uh2_obuf_pending(s->conn));
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

/* ---- submit -------------------------------------------------------------------------------- */

static bool name_is(const struct sp_field *f, const char *name)
{
    size_t n = strlen(name);

    return f->name_len == n && strncasecmp((const char *)f->name, name, n) == 0;
}

static bool has_authority(const struct sp_field *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (name_is(&fields[i], ":authority"))
            return true;
    }
    return false;
}

/* RFC 9113 §8.2.2: connection-specific fields are never sent in HTTP/2; TE only as "trailers".
 * §8.3.1: with :authority present, a Host field is redundant (the proxy keeps :authority). */
static bool field_dropped(const struct sp_field *f, bool authority)
{
    static const char *const hop[] = {"connection", "keep-alive",        "proxy-connection",
                                      "upgrade",    "transfer-encoding", "http2-settings"};

    for (size_t i = 0; i < SP_ARRAY_LEN(hop); i++) {
        if (name_is(f, hop[i]))
            return true;
    }
    if (name_is(f, "te"))
        return !(f->value_len == 8 && strncasecmp((const char *)f->value, "trailers", 8) == 0);
    return authority && name_is(f, "host");
}

int sp_uh2_submit(struct uh2_conn *c, const struct sp_field *fields, size_t n, bool has_body,
                  struct sp_ustream *us)
{
    nghttp2_nv nva[MAX_OUT_FIELDS];
    bool authority = has_authority(fields, n);
    nghttp2_data_provider prd = {.read_callback = read_body};
    struct uh2_stream *s;
    size_t k = 0;
    int32_t id;

    if (sp_uh2_streams_left(c) == 0)
        return -EAGAIN;
    for (size_t i = 0; i < n; i++) {
        if (field_dropped(&fields[i], authority))
            continue;
        if (k == MAX_OUT_FIELDS)
            return -EPROTO;
        /* nghttp2 copies the fields at submit: the caller's bytes may go once we return. */
        nva[k++] = (nghttp2_nv){(uint8_t *)fields[i].name, (uint8_t *)fields[i].value,
                                fields[i].name_len, fields[i].value_len, NGHTTP2_NV_FLAG_NONE};
    }
    s = stream_new(c);
    prd.source.ptr = s;
    id = nghttp2_submit_request(c->ng, NULL, nva, k, has_body ? &prd : NULL, s);
    if (id < 0) {
        SP_LOG_DEBUG("upstream", "event=h2_submit_failed err=\"%s\"", nghttp2_strerror(id));
        stream_free(s);
        return id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? -EAGAIN : -EPROTO;
    }
    s->id = id;
    s->us = us;
    s->out.eof = !has_body;
    us->ops = &stream_ops;
    us->impl = s;
    sp_uh2_schedule_flush(c);
    return 0;
}
