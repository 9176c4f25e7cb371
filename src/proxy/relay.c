/* relay.c: moving one request's bytes between its client stream and its backend stream:
 * building the forwarded fields, submitting the request (and replaying its held body on a
 * retry), and the two streams' callbacks, with end-to-end flow control. State changes go
 * through proxy.c (sp_proxy_req_enter / _fail / _retry). */
#include "core/bodybuf.h"
#include "core/log.h"
#include "core/util.h"
#include "http/headers.h"
#include "proxy/proxy_internal.h"
#include "upstream/pool.h"
#include "upstream/upstream.h"

#include <stdlib.h>
#include <string.h>

static const struct sp_ustream_cbs upstream_cbs;

static struct req *req_of(void *user)
{
    return user;
}

/* ---- forwarding the request --------------------------------------------------------------- */

static bool name_is(const struct sp_field *f, const char *name)
{
    size_t n = strlen(name);

    return f->name_len == n && memcmp(f->name, name, n) == 0;
}

/* Builds the forwarded field list: end-to-end fields as received, hop-by-hop fields dropped
 * (RFC 9110 §7.6.1), forwarding fields set by policy. Returns the count; out has room for
 * in->count + ADDED_FIELDS. */
static size_t build_request_fields(struct req *r, const struct sp_fields *in, struct sp_field *out)
{
    const struct sp_field *xff = NULL, *via = NULL;
    size_t n = 0;

    for (size_t i = 0; i < in->count; i++) {
        const struct sp_field *f = &in->items[i];

        if (f->name_len > 0 && f->name[0] == ':') {
            out[n++] = *f;
        } else if (name_is(f, "te")) {
            /* RFC 9114 §4.2: only "trailers" is allowed; nghttp3 rejects anything else. */
            out[n++] = *f;
        } else if (sp_headers_is_hop_by_hop(f->name, f->name_len)) {
            continue;
        } else if (name_is(f, "x-forwarded-for")) {
            if (xff == NULL)
                xff = f;
        } else if (name_is(f, "via")) {
            if (via == NULL)
                via = f;
        } else if (name_is(f, "x-forwarded-proto") || name_is(f, "x-request-id")) {
            continue;
        } else {
            out[n++] = *f;
        }
    }
    /* A retry on another backend rebuilds the fields: drop the previous try's values. */
    free(r->xff);
    free(r->via);
    r->xff = sp_headers_xff_append(xff ? xff->value : NULL, xff ? xff->value_len : 0, r->client_ip);
    r->via = sp_headers_via_append(via ? via->value : NULL, via ? via->value_len : 0);
    out[n++] = sp_field_str("x-forwarded-for", r->xff);
    out[n++] = sp_field_str("x-forwarded-proto", "https");
    out[n++] = sp_field_str("x-request-id", r->request_id);
    out[n++] = sp_field_str("via", r->via);
    return n;
}

/* The body outgrew the replay limit: a retry can no longer send it again; what every try
 * already has is freed (bytes not yet sent stay until they are). */
static void replay_drop(struct req *r)
{
    r->replay_lost = true;
    sp_bodybuf_ack(&r->pending, r->pending.read - r->pending.acked);
}

/* Until the first response teaches the latency strategies, the transport's RTT to the backend
 * tells a near one from a far one. */
static void seed_rtt(struct req *r, struct sp_pool_conn *c)
{
    struct upstream_rt *u = &r->px->ups[r->up];
    sp_time_t rtt;

    if (u->rtt_seeded[r->be])
        return;
    rtt = sp_pool_conn_rtt_ns(c);
    if (rtt > 0) {
        sp_lb_seed_rtt(u->lb, (size_t)r->be, rtt);
        u->rtt_seeded[r->be] = true;
    }
}

void sp_proxy_req_submit(struct req *r, struct sp_pool_conn *c)
{
    const struct sp_fields *in = sp_h3_stream_headers(r->cs);
    struct sp_field *fields = sp_xmalloc((in->count + ADDED_FIELDS) * sizeof(*fields));
    struct sp_bodybuf_vec v[8];
    size_t n = build_request_fields(r, in, fields);
    bool has_body;
    int rv;

    if (!r->replay_lost)
        sp_bodybuf_rewind(&r->pending); /* a retry sends the whole body again */
    has_body = !r->req_done || sp_bodybuf_pending(&r->pending) > 0 ||
               sp_h3_stream_trailers(r->cs)->count > 0;
    r->try_acked = 0;
    r->us.cbs = &upstream_cbs;
    r->us.user = r;
    rv = sp_pool_submit(c, fields, n, has_body, &r->us);
    free(fields);
    if (rv != 0) {
        sp_proxy_req_fail(r, SP_CAUSE_PROTOCOL);
        return;
    }
    r->counted = true;
    r->conn_serial = sp_pool_conn_serial(c);
    seed_rtt(r, c);
    sp_pool_request_started(r->px->ups[r->up].pool, (size_t)r->be);
    sp_proxy_req_enter(r, REQ_SENT);
    /* Body bytes that arrived while we waited for a stream (or a retry's replay): hand them
     * over; they stay held while a later retry may need them. */
    while ((n = sp_bodybuf_peek(&r->pending, v, SP_ARRAY_LEN(v))) > 0) {
        size_t total = 0;

        for (size_t i = 0; i < n; i++) {
            sp_ustream_write(&r->us, v[i].base, v[i].len);
            total += v[i].len;
        }
        sp_bodybuf_advance(&r->pending, total);
        if (r->replay_lost)
            sp_bodybuf_ack(&r->pending, total);
    }
    if (r->req_done && has_body) {
        const struct sp_fields *t = sp_h3_stream_trailers(r->cs);

        sp_ustream_end(&r->us, t->items, t->count);
    }
}

void sp_proxy_req_log_stall(struct req *r, sp_time_t idle_ns)
{
    char cstate[384] = "-", bstate[384];
    bool client_owes = r->cs != NULL && sp_h3_stream_unacked(r->cs) > 0;

    if (r->cs != NULL)
        (void)sp_h3_stream_describe(r->cs, cstate, sizeof(cstate));
    sp_ustream_describe(&r->us, bstate, sizeof(bstate));
    SP_LOG_WARN_LIMITED("proxy",
                        "event=body_stall request_id=%s upstream=%s backend=%s stalled_ms=%.0f "
                        "waiting_for=%s resp_done=%d client_state=\"%s\" backend_state=\"%s\"",
                        r->request_id, r->px->ups[r->up].conf->name,
                        r->px->ups[r->up].conf->backends[r->be].id, (double)idle_ns / (double)SP_MS,
                        client_owes || r->resp_done ? "client" : "backend", r->resp_done, cstate,
                        bstate);
}

/* The backend needs no more of the request body (it answered early, or stopped reading): the
 * client is told to stop sending it, without error (RFC 9114 §4.1.1), rather than upload bytes
 * nobody reads or stall on credit that never comes back. */
static void stop_client_upload(struct req *r)
{
    if (r->cs == NULL || r->req_done)
        return;
    r->req_done = true;
    sp_h3_stream_stop_reading(r->cs, SP_H3_NO_ERROR);
}

/* ---- client stream callbacks ------------------------------------------------------------- */

static void cs_on_headers(struct sp_h3_stream *s, void *user)
{
    (void)s;
    (void)user;
}

static void cs_on_data(struct sp_h3_stream *s, void *user, const uint8_t *data, size_t len)
{
    struct req *r = req_of(user);
    uint64_t max = r->px->cfg->limits.max_body_bytes;

    sp_proxy_req_progress(r);
    r->body_bytes += len;
    if (max != 0 && r->body_bytes > max && !r->resp_started) {
        sp_h3_stream_consume(s, len);
        sp_proxy_req_fail(r, SP_CAUSE_BODY_TOO_LARGE);
        return;
    }
    if (r->routed && !r->replay_lost &&
        r->body_bytes > r->px->ups[r->up].conf->retries.replay_body_bytes)
        replay_drop(r);
    if (r->us.impl != NULL) {
        /* Credit goes back to the client when the backend acknowledges (us on_sent). */
        sp_ustream_write(&r->us, data, len);
        if (!r->replay_lost) { /* kept, as sent, for a retry */
            sp_bodybuf_append(&r->pending, data, len);
            sp_bodybuf_advance(&r->pending, len);
        }
    } else if (!r->resp_done && r->state != REQ_FINISHED) {
        sp_bodybuf_append(&r->pending, data, len);
    } else {
        sp_h3_stream_consume(s, len); /* answered already: discard */
    }
}

static void cs_on_trailers(struct sp_h3_stream *s, void *user)
{
    (void)s;
    (void)user; /* forwarded at on_end, from sp_h3_stream_trailers */
}

static void cs_on_end(struct sp_h3_stream *s, void *user)
{
    struct req *r = req_of(user);

    r->req_done = true;
    if (r->us.impl != NULL) {
        const struct sp_fields *t = sp_h3_stream_trailers(s);

        sp_ustream_end(&r->us, t->items, t->count);
    }
}

static void cs_on_sent(struct sp_h3_stream *s, void *user, uint64_t len)
{
    struct req *r = req_of(user);

    (void)s;
    sp_proxy_req_progress(r);
    /* The client took `len` response bytes: let the backend send that much more. */
    sp_ustream_consume(&r->us, len);
}

static void cs_on_close(struct sp_h3_stream *s, void *user, uint64_t app_error)
{
    struct req *r = req_of(user);

    (void)s;
    r->cs = NULL;
    SP_LOG_DEBUG("proxy", "request_id=%s event=client_stream_closed err=0x%llx resp_done=%d",
                 r->request_id, (unsigned long long)app_error, r->resp_done);
    if (!r->resp_done || app_error != 0) {
        if (r->cause == SP_CAUSE_NONE) {
            r->cause = SP_CAUSE_CLIENT_ABORT;
            r->cls = SP_ERR_CLIENT_ABORT;
        }
        if (r->waiter.queued)
            sp_pool_cancel(r->px->ups[r->up].pool, &r->waiter);
        sp_proxy_req_detach_upstream(r);
    }
    sp_proxy_req_maybe_finish(r);
}

/* The client asked us to stop sending the response: it wants none of it. */
static void cs_on_stop(struct sp_h3_stream *s, void *user)
{
    struct req *r = req_of(user);

    (void)s;
    if (r->cause == SP_CAUSE_NONE) {
        r->cause = SP_CAUSE_CLIENT_ABORT;
        r->cls = SP_ERR_CLIENT_ABORT;
    }
    if (r->waiter.queued)
        sp_pool_cancel(r->px->ups[r->up].pool, &r->waiter);
    sp_proxy_req_detach_upstream(r);
    sp_proxy_req_maybe_finish(r);
}

const struct sp_h3_stream_ops sp_proxy_client_stream_ops = {
    .on_headers = cs_on_headers,
    .on_data = cs_on_data,
    .on_trailers = cs_on_trailers,
    .on_end = cs_on_end,
    .on_sent = cs_on_sent,
    .on_close = cs_on_close,
    .on_stop = cs_on_stop,
};

/* ---- upstream stream callbacks ----------------------------------------------------------- */

static void us_on_headers(struct sp_ustream *s, void *user)
{
    struct req *r = req_of(user);
    const struct sp_fields *in = sp_ustream_headers(s);
    struct sp_field *out;
    size_t n = 0;

    if (r->cs == NULL || r->resp_started)
        return;
    out = sp_xmalloc((in->count + 2) * sizeof(*out));
    for (size_t i = 0; i < in->count; i++) {
        const struct sp_field *f = &in->items[i];

        if ((f->name_len > 0 && f->name[0] == ':') ||
            sp_headers_is_hop_by_hop(f->name, f->name_len) || name_is(f, "alt-svc"))
            continue;
        out[n++] = *f;
    }
    if (r->px->alt_svc[0] != '\0')
        out[n++] = sp_field_str("alt-svc", r->px->alt_svc);
    if (r->set_cookie != NULL)
        out[n++] = sp_field_str("set-cookie", r->set_cookie);
    r->status = sp_ustream_status(s);
    r->resp_started = true;
    sp_proxy_req_enter(r, REQ_STREAMING);
    sp_proxy_req_report_latency(r, r->status < 500);
    if (r->status >= 500)
        r->cls = SP_ERR_BACKEND_5XX;
    sp_proxy_req_end_try(r, r->cls);
    if (sp_h3_stream_respond(r->cs, r->status, out, n, true) != 0)
        sp_proxy_req_fail(r, SP_CAUSE_PROTOCOL);
    free(out);
}

static void us_on_data(struct sp_ustream *s, void *user, const uint8_t *data, size_t len)
{
    struct req *r = req_of(user);

    sp_proxy_req_progress(r);
    if (r->cs == NULL || !r->resp_started) {
        sp_ustream_consume(s, len);
        return;
    }
    sp_h3_stream_write(r->cs, data, len);
}

static void us_on_end(struct sp_ustream *s, void *user)
{
    struct req *r = req_of(user);
    const struct sp_fields *t = sp_ustream_trailers(s);

    if (r->cs == NULL || !r->resp_started || r->resp_done)
        return;
    /* Trailers are copied by sp_h3_stream_end: the upstream stream may go first. */
    sp_h3_stream_end(r->cs, t->items, t->count);
    r->resp_done = true;
}

static void us_on_sent(struct sp_ustream *s, void *user, uint64_t len)
{
    struct req *r = req_of(user);

    (void)s;
    sp_proxy_req_progress(r);
    /* A retry sends bytes the client already got credit for: only new ones earn credit. */
    r->try_acked += len;
    if (r->cs != NULL && r->try_acked > r->body_credited) {
        sp_h3_stream_consume(r->cs, r->try_acked - r->body_credited);
        r->body_credited = r->try_acked;
    }
}

static void us_on_close(struct sp_ustream *s, void *user, enum sp_ustream_error err)
{
    struct req *r = req_of(user);
    enum sp_cause cause;

    (void)s;
    if (r->counted) {
        r->counted = false;
        sp_pool_request_finished(r->px->ups[r->up].pool, (size_t)r->be);
    }
    if (r->resp_done) {
        stop_client_upload(r); /* the backend answered and is gone: the rest is not needed */
        sp_proxy_req_maybe_finish(r);
        return;
    }
    cause = err == SP_USTREAM_PROTOCOL    ? SP_CAUSE_PROTOCOL
            : err == SP_USTREAM_CONN_LOST ? SP_CAUSE_CONN_LOST
            : err == SP_USTREAM_REFUSED   ? SP_CAUSE_REFUSED
                                          : SP_CAUSE_RESET;
    /* REFUSED: the backend did not process it (H3_REQUEST_REJECTED, REFUSED_STREAM, above
     * GOAWAY, never sent) and is not to blame; anything else counts against it. */
    sp_proxy_req_end_try(r, err == SP_USTREAM_REFUSED ? SP_ERR_INTERNAL : sp_cause_class(cause));
    if (sp_proxy_req_retry(r, cause, err == SP_USTREAM_REFUSED,
                           err == SP_USTREAM_CONN_LOST ? r->conn_serial : 0))
        return;
    sp_proxy_req_fail(r, cause);
}

static void us_on_stop(struct sp_ustream *s, void *user)
{
    (void)s;
    stop_client_upload(req_of(user));
}

static const struct sp_ustream_cbs upstream_cbs = {
    .on_headers = us_on_headers,
    .on_data = us_on_data,
    .on_end = us_on_end,
    .on_sent = us_on_sent,
    .on_close = us_on_close,
    .on_stop = us_on_stop,
};
