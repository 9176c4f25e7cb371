#include "proxy/proxy.h"
#include "proxy/proxy_internal.h"
#include "core/bodybuf.h"
#include "core/log.h"
#include "core/util.h"
#include "policy/backoff.h"
#include "http/headers.h"
#include "http/request.h"
#include "lb/lb.h"
#include "proxy/router.h"
#include "upstream/pool.h"
#include "upstream/upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct sp_h3_stream_ops client_stream_ops;
static const struct sp_ustream_cbs upstream_cbs;

/* ---- finishing ---------------------------------------------------------------------------- */

static void req_free(void *arg)
{
    struct req *r = arg;

    sp_bodybuf_fini(&r->pending);
    free(r->xff);
    free(r->via);
    free(r->set_cookie);
    free(r->method);
    free(r->authority);
    free(r->path);
    free(r);
}

static const char *str_or_dash(const char *s)
{
    return s != NULL ? s : "-";
}

static void access_log(struct req *r)
{
    char auth[256], path[512];
    const char *upname = r->routed ? r->px->ups[r->up].conf->name : "-";
    const char *beid = r->be >= 0 ? r->px->ups[r->up].conf->backends[r->be].id : "-";
    const char *a = str_or_dash(r->authority), *p = str_or_dash(r->path);

    SP_LOG_INFO("access",
                "request_id=%s client=%s method=%s authority=\"%s\" path=\"%s\" upstream=%s "
                "backend=%s status=%u cause=%s class=%s tries=%u duration_ms=%.1f",
                r->request_id, r->client_ip, str_or_dash(r->method),
                sp_log_escape(auth, sizeof(auth), a, strlen(a)),
                sp_log_escape(path, sizeof(path), p, strlen(p)), upname, beid, r->status,
                sp_cause_name(r->cause), sp_err_class_name(r->cls), r->tries,
                (double)(sp_time_now() - r->start_ns) / (double)SP_MS);
}

/* Ends the current try: its breaker admission, passive health and retry-budget accounting. cls
 * is SP_ERR_NONE for a response below 500, SP_ERR_BACKEND_5XX for a 5xx, a client class when the
 * client is at fault (nobody else to blame). Idempotent per try. */
static void end_try(struct req *r, enum sp_err_class cls)
{
    struct upstream_rt *u;

    if (!r->routed || r->be < 0)
        return;
    u = &r->px->ups[r->up];
    if (r->admitted) {
        r->admitted = false;
        sp_pool_outcome(u->pool, (size_t)r->be, true, cls, sp_time_now());
    }
    if (r->retrying) {
        r->retrying = false;
        sp_budget_retry_finished(&u->budget);
    }
}

/* Frees the request once neither stream nor the pool refers to it. */
static void maybe_finish(struct req *r)
{
    if (r->finished || r->cs != NULL || r->us.impl != NULL || r->waiter.queued)
        return;
    r->finished = true;
    ev_timer_stop(r->px->loop, &r->timer);
    ev_timer_stop(r->px->loop, &r->backoff);
    ev_timer_stop(r->px->loop, &r->idle);
    ev_timer_stop(r->px->loop, &r->total);
    ev_timer_stop(r->px->loop, &r->try_timer);
    ev_timer_stop(r->px->loop, &r->stall);
    end_try(r, r->cls == SP_ERR_NONE ? SP_ERR_CLIENT_ABORT : r->cls);
    if (r->routed)
        sp_budget_request_finished(&r->px->ups[r->up].budget);
    if (r->status == 0)
        r->status = 499; /* client went away before any response */
    if (r->px->cfg->access_log)
        access_log(r);
    r->px->inflight--;
    sp_defer_add(r->px->defer, req_free, r);
}

/* Lets go of the backend request (cancelling it if still open) and of its accounting. */
static void detach_upstream(struct req *r)
{
    ev_timer_stop(r->px->loop, &r->try_timer);
    sp_ustream_cancel(&r->us);
    if (r->counted) {
        r->counted = false;
        sp_pool_request_finished(r->px->ups[r->up].pool, (size_t)r->be);
    }
}

/* Answers the client with a spooky-generated error (only before any response byte). */
static void respond_error(struct req *r, enum sp_cause cause)
{
    unsigned status = sp_cause_info(cause)->status;
    char body[96], len[16];
    int n;

    r->cause = cause;
    if (r->cs == NULL || r->resp_started)
        return;
    n = snprintf(body, sizeof(body), "%u %s\n", status, sp_cause_name(cause));
    snprintf(len, sizeof(len), "%d", n);
    struct sp_field f[] = {
        {(const uint8_t *)"content-type", 12, (const uint8_t *)"text/plain", 10},
        {(const uint8_t *)"content-length", 14, (const uint8_t *)len, strlen(len)},
        {(const uint8_t *)"retry-after", 11, (const uint8_t *)"1", 1},
    };
    /* RFC 9110 §15.6.4: 503 may say when to come back. */
    size_t nf = status == 503 ? 3 : 2;

    r->resp_started = true;
    r->status = status;
    if (sp_h3_stream_respond(r->cs, status, f, nf, true) != 0) {
        sp_h3_stream_reset(r->cs, SP_H3_INTERNAL_ERROR);
        return;
    }
    sp_h3_stream_write(r->cs, (const uint8_t *)body, (size_t)n);
    sp_h3_stream_end(r->cs, NULL, 0);
    r->resp_done = true;
}

static void report_latency(struct req *r, bool ok);

/* Ends the request with cause: spooky's own answer (the cause's status) before the response
 * started, a reset client stream after. */
static void fail_request(struct req *r, enum sp_cause cause)
{
    unsigned status = sp_cause_info(cause)->status;

    r->cls = sp_cause_class(cause);
    if (status >= 500)
        report_latency(r, false);
    end_try(r, r->cls);
    if (sp_log_enabled(SP_LOG_LEVEL_WARN) && status >= 500) {
        const char *beid = r->be >= 0 ? r->px->ups[r->up].conf->backends[r->be].id : "-";

        /* Once the response has started the client already has its status: say what we do
         * instead, so this line and the access line agree. */
        SP_LOG_WARN_LIMITED("proxy", "request_id=%s backend=%s status=%u cause=%s action=%s",
                            r->request_id, beid, r->resp_started ? r->status : status,
                            sp_cause_name(cause),
                            r->resp_started ? "reset_client_stream" : "respond_error");
    }
    ev_timer_stop(r->px->loop, &r->timer);
    ev_timer_stop(r->px->loop, &r->idle);
    ev_timer_stop(r->px->loop, &r->try_timer);
    ev_timer_stop(r->px->loop, &r->stall);
    if (r->waiter.queued)
        sp_pool_cancel(r->px->ups[r->up].pool, &r->waiter);
    detach_upstream(r);
    if (r->resp_started) {
        /* Too late for a status: a reset tells the client the response is incomplete. */
        r->cause = cause;
        if (r->cs != NULL && !r->resp_done)
            sp_h3_stream_reset(r->cs, SP_H3_INTERNAL_ERROR);
    } else {
        respond_error(r, cause);
    }
    maybe_finish(r);
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

static void submit(struct req *r, struct sp_pool_conn *c)
{
    const struct sp_fields *in = sp_h3_stream_headers(r->cs);
    struct sp_field *fields = sp_xmalloc((in->count + ADDED_FIELDS) * sizeof(*fields));
    struct sp_bodybuf_vec v[8];
    size_t n = build_request_fields(r, in, fields);
    uint64_t try_ms = r->px->ups[r->up].conf->timeouts.try_ms;
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
        fail_request(r, SP_CAUSE_PROTOCOL);
        return;
    }
    r->counted = true;
    r->conn_serial = sp_pool_conn_serial(c);
    if (!r->px->ups[r->up].rtt_seeded[r->be]) {
        /* Until the first response teaches the latency strategies, the transport's RTT to the
         * backend tells a near one from a far one. */
        sp_time_t rtt = sp_pool_conn_rtt_ns(c);

        if (rtt > 0) {
            sp_lb_seed_rtt(r->px->ups[r->up].lb, (size_t)r->be, rtt);
            r->px->ups[r->up].rtt_seeded[r->be] = true;
        }
    }
    r->submit_ns = sp_time_now();
    ev_timer_again(r->px->loop, &r->idle); /* the request is with a backend: bodies may stall */
    if (try_ms > 0) {
        /* Re-armed for each try; set again since libev keeps only what was left at a stop. */
        ev_timer_stop(r->px->loop, &r->try_timer);
        ev_timer_set(&r->try_timer, (double)try_ms / 1e3, 0.);
        ev_timer_start(r->px->loop, &r->try_timer);
    }
    sp_pool_request_started(r->px->ups[r->up].pool, (size_t)r->be);
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

static void on_pool_ready(struct sp_pool_waiter *w, struct sp_pool_conn *c)
{
    struct req *r = SP_CONTAINER_OF(w, struct req, waiter);

    if (r->cs == NULL) {
        maybe_finish(r);
        return;
    }
    submit(r, c);
}

static void pick_and_acquire(struct req *r);

static void on_backoff(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct req *r = SP_CONTAINER_OF(w, struct req, backoff);

    (void)loop;
    (void)revents;
    if (r->cs == NULL) {
        maybe_finish(r);
        return;
    }
    pick_and_acquire(r);
}

/* Schedules another try on a different backend when the rule allows (DESIGN §5): a request the
 * backend never processed goes again whatever its method; any other only when its method is
 * idempotent and it had no body to replay; never once the client got a response byte; at most
 * retries.max times and within the upstream's retry budget, after a jittered backoff. */
/* True when a backend other than the current one could take a retry now. */
static bool other_backend_available(const struct req *r)
{
    const struct upstream_rt *u = &r->px->ups[r->up];
    sp_time_t now = sp_time_now();

    for (size_t i = 0; i < u->conf->backends_count; i++) {
        if ((ssize_t)i != r->be && sp_pool_backend_eligible(u->pool, i, now))
            return true;
    }
    return false;
}

/* Charges the retry budget for one retry of r. A connection that dies is one event, not one per
 * request it carried: the first of its requests to retry takes the budget's decision for all of
 * them (conn_death names the connection; 0 = not a connection's death), so a connection carrying
 * 50 GETs retries all 50 or none. Returns false (and logs) when the budget refuses. */
static bool charge_budget(struct req *r, struct upstream_rt *u, enum sp_cause cause,
                          uint64_t conn_death)
{
    bool ok;

    if (conn_death != 0 && conn_death == u->death_serial) {
        ok = u->death_granted;
    } else {
        ok = sp_budget_try_retry(&u->budget);
        r->retrying = ok;
        if (conn_death != 0) {
            u->death_serial = conn_death;
            u->death_granted = ok;
        }
    }
    if (!ok)
        SP_LOG_WARN_LIMITED("proxy", "request_id=%s cause=%s action=no_retry reason=retry_budget",
                            r->request_id, sp_cause_name(cause));
    return ok;
}

static bool retry(struct req *r, enum sp_cause cause, bool never_processed, uint64_t conn_death)
{
    struct upstream_rt *u = &r->px->ups[r->up];
    const struct sp_retry_conf *rc = &u->conf->retries;
    bool idempotent = r->method != NULL && sp_err_method_idempotent(r->method, strlen(r->method));
    bool replayable = !r->replay_lost; /* the body is held in r->pending for a replay */
    sp_time_t delay;

    bool elsewhere = other_backend_available(r);

    /* With nowhere to go, the client gets this failure (502), not a 503 from the retry. A request
     * the backend never processed may go to the same backend again (say a keep-alive connection
     * it closed just as the request left), if that backend is still usable. */
    if (r->cs == NULL || r->resp_started || r->tries > rc->max ||
        !sp_err_retryable(sp_cause_class(cause), never_processed, idempotent, replayable, false) ||
        (!elsewhere &&
         !(never_processed && sp_pool_backend_eligible(u->pool, (size_t)r->be, sp_time_now()))))
        return false;
    /* The budget stops retries from multiplying load on struggling backends; a request no
     * backend processed added no load, so its retry is not counted against it. */
    if (!never_processed && !charge_budget(r, u, cause, conn_death))
        return false;
    r->avoid_be = elsewhere ? r->be : -1;
    detach_upstream(r);
    delay = sp_backoff_delay(rc->backoff_ms * SP_MS, rc->max_backoff_ms * SP_MS, r->tries,
                             sp_random_u64());
    SP_LOG_WARN_LIMITED("proxy",
                        "request_id=%s backend=%s cause=%s action=retry_next_backend delay_ms=%.1f",
                        r->request_id, u->conf->backends[r->be].id, sp_cause_name(cause),
                        (double)delay / (double)SP_MS);
    ev_timer_set(&r->backoff, (double)delay / (double)SP_SEC, 0.);
    ev_timer_start(r->px->loop, &r->backoff);
    return true;
}

static void on_pool_fail(struct sp_pool_waiter *w, enum sp_cause cause)
{
    struct req *r = SP_CONTAINER_OF(w, struct req, waiter);

    end_try(r, sp_cause_class(cause));
    if (r->cs == NULL) {
        maybe_finish(r);
        return;
    }
    /* The request never left spooky: safe to try another backend whatever the method. */
    if (retry(r, cause, true, 0))
        return;
    fail_request(r, cause);
}

/* Fills the balancer's view: weights scaled by passive health, ineligible backends marked, and
 * the backend a retry must avoid left out when another one is available. */
static void fill_view(struct req *r, struct upstream_rt *u, sp_time_t now)
{
    size_t n = u->conf->backends_count, eligible = 0;

    (void)sp_pool_update_panic(u->pool); /* the view below follows it */
    for (size_t i = 0; i < n; i++) {
        unsigned w = u->conf->backends[i].weight * sp_pool_backend_weight_pct(u->pool, i) / 100;

        u->view[i].weight = w > 0 ? w : 1;
        u->view[i].eligible = sp_pool_backend_eligible(u->pool, i, now);
        u->view[i].inflight = sp_pool_backend_inflight(u->pool, i);
        eligible += u->view[i].eligible;
    }
    if (r->avoid_be >= 0 && u->view[r->avoid_be].eligible && eligible > 1)
        u->view[r->avoid_be].eligible = false;
}

static void pick_and_acquire(struct req *r)
{
    struct upstream_rt *u = &r->px->ups[r->up];
    sp_time_t now = sp_time_now();
    struct sp_pool_conn *c;
    size_t idx;
    int rv;

    fill_view(r, u, now);
    /* A breaker may refuse the pick (half-open quota, concurrency cap): pick again without it. */
    for (size_t attempt = 0;; attempt++) {
        if (attempt == u->conf->backends_count || sp_proxy_select_backend(r, u, now, &idx) != 0) {
            fail_request(r, attempt > 0 ? SP_CAUSE_BREAKER_OPEN : SP_CAUSE_NO_BACKEND);
            return;
        }
        if (sp_pool_admit(u->pool, idx, now))
            break;
        u->view[idx].eligible = false;
    }
    r->be = (ssize_t)idx;
    r->admitted = true;
    r->tries++;
    rv = sp_pool_acquire(u->pool, idx, &r->waiter, &c);
    if (rv == 0)
        submit(r, c);
    else if (rv == -EBUSY)
        fail_request(r, SP_CAUSE_QUEUE_FULL);
}

/* ---- client stream callbacks ------------------------------------------------------------- */

static struct req *req_of(void *user)
{
    return user;
}

static void stall_arm(struct req *r, sp_time_t after)
{
    ev_timer_set(&r->stall, (double)after / (double)SP_SEC, 0.);
    ev_timer_start(r->px->loop, &r->stall);
}

/* A body byte moved (either direction): the idle clock starts over, and a logged stall ends. */
static void body_progress(struct req *r)
{
    if (ev_is_active(&r->idle))
        ev_timer_again(r->px->loop, &r->idle);
    r->progress_ns = sp_time_now();
    if (r->stall_logged) {
        r->stall_logged = false;
        SP_LOG_INFO("proxy", "event=body_stall_over request_id=%s", r->request_id);
        stall_arm(r, r->px->ups[r->up].conf->timeouts.stall_warn_ms * SP_MS);
    }
}

/* The stall check (timeouts.stall_warn_ms): lazy, it fires at most once per period and looks at
 * when a byte last moved, so moving bytes cost no timer work. A stalled response is never
 * silent: one warn line says who is waited for, with both streams' flow-control state. */
static void on_stall(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct req *r = SP_CONTAINER_OF(w, struct req, stall);
    sp_time_t warn = r->px->ups[r->up].conf->timeouts.stall_warn_ms * SP_MS;
    sp_time_t idle = sp_time_now() - r->progress_ns;
    char cstate[384] = "-", bstate[384];
    bool client_owes = r->cs != NULL && sp_h3_stream_unacked(r->cs) > 0;

    (void)loop;
    (void)revents;
    if (idle < warn) {
        stall_arm(r, warn - idle);
        return;
    }
    r->stall_logged = true; /* body_progress re-arms */
    if (r->cs != NULL)
        (void)sp_h3_stream_describe(r->cs, cstate, sizeof(cstate));
    sp_ustream_describe(&r->us, bstate, sizeof(bstate));
    SP_LOG_WARN_LIMITED("proxy",
                        "event=body_stall request_id=%s upstream=%s backend=%s stalled_ms=%.0f "
                        "waiting_for=%s resp_done=%d client_state=\"%s\" backend_state=\"%s\"",
                        r->request_id, r->px->ups[r->up].conf->name,
                        r->px->ups[r->up].conf->backends[r->be].id, (double)idle / (double)SP_MS,
                        client_owes || r->resp_done ? "client" : "backend", r->resp_done, cstate,
                        bstate);
}

static void cs_on_headers(struct sp_h3_stream *s, void *user)
{
    (void)s;
    (void)user;
}

static void cs_on_data(struct sp_h3_stream *s, void *user, const uint8_t *data, size_t len)
{
    struct req *r = req_of(user);

    body_progress(r);
    uint64_t max = r->px->cfg->limits.max_body_bytes;

    r->body_bytes += len;
    if (max != 0 && r->body_bytes > max && !r->resp_started) {
        sp_h3_stream_consume(s, len);
        fail_request(r, SP_CAUSE_BODY_TOO_LARGE);
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
    } else if (!r->resp_done && !r->finished) {
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

    body_progress(r);

    (void)s;
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
        detach_upstream(r);
    }
    maybe_finish(r);
}

static const struct sp_h3_stream_ops client_stream_ops = {
    .on_headers = cs_on_headers,
    .on_data = cs_on_data,
    .on_trailers = cs_on_trailers,
    .on_end = cs_on_end,
    .on_sent = cs_on_sent,
    .on_close = cs_on_close,
};

/* ---- upstream stream callbacks ----------------------------------------------------------- */

/* Feeds the balancer (p2c/ewma) the time to response headers, or a failure. */
static void report_latency(struct req *r, bool ok)
{
    sp_time_t now = sp_time_now();

    if (r->be < 0 || r->submit_ns == 0)
        return;
    sp_lb_report(r->px->ups[r->up].lb, (size_t)r->be, now - r->submit_ns, ok, now);
    r->submit_ns = 0;
}

static void us_on_headers(struct sp_ustream *s, void *user)
{
    struct req *r = req_of(user);
    const struct sp_fields *in = sp_ustream_headers(s);
    struct sp_field *out;
    size_t n = 0;

    ev_timer_stop(r->px->loop, &r->timer);
    ev_timer_stop(r->px->loop, &r->try_timer);
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
    if (r->px->ups[r->up].conf->timeouts.stall_warn_ms > 0) {
        r->progress_ns = sp_time_now();
        stall_arm(r, r->px->ups[r->up].conf->timeouts.stall_warn_ms * SP_MS);
    }
    report_latency(r, r->status < 500);
    if (r->status >= 500)
        r->cls = SP_ERR_BACKEND_5XX;
    end_try(r, r->cls);
    if (sp_h3_stream_respond(r->cs, r->status, out, n, true) != 0)
        fail_request(r, SP_CAUSE_PROTOCOL);
    free(out);
}

static void us_on_data(struct sp_ustream *s, void *user, const uint8_t *data, size_t len)
{
    struct req *r = req_of(user);

    body_progress(r);

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

    body_progress(r);

    (void)s;
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

    (void)s;
    if (r->counted) {
        r->counted = false;
        sp_pool_request_finished(r->px->ups[r->up].pool, (size_t)r->be);
    }
    if (!r->resp_done) {
        enum sp_cause cause = err == SP_USTREAM_PROTOCOL    ? SP_CAUSE_PROTOCOL
                              : err == SP_USTREAM_CONN_LOST ? SP_CAUSE_CONN_LOST
                              : err == SP_USTREAM_REFUSED   ? SP_CAUSE_REFUSED
                                                            : SP_CAUSE_RESET;

        /* REFUSED: the backend did not process it (H3_REQUEST_REJECTED, REFUSED_STREAM, above
         * GOAWAY, never sent) and is not to blame; anything else counts against it. */
        end_try(r, err == SP_USTREAM_REFUSED ? SP_ERR_INTERNAL : sp_cause_class(cause));
        if (retry(r, cause, err == SP_USTREAM_REFUSED,
                  err == SP_USTREAM_CONN_LOST ? r->conn_serial : 0))
            return;
        fail_request(r, cause);
        return;
    }
    maybe_finish(r);
}

static const struct sp_ustream_cbs upstream_cbs = {
    .on_headers = us_on_headers,
    .on_data = us_on_data,
    .on_end = us_on_end,
    .on_sent = us_on_sent,
    .on_close = us_on_close,
};

/* ---- request entry ------------------------------------------------------------------------ */

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct req *r = SP_CONTAINER_OF(w, struct req, timer);

    (void)loop;
    (void)revents;
    fail_request(r, SP_CAUSE_TIMEOUT);
}

/* The current try had no response headers within try_ms: give up on it, and try another backend
 * when the retry rules allow (a timeout is retried only for an idempotent request whose body is
 * still replayable); otherwise 504. response_ms and request_ms still bound the whole request. */
static void on_try_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct req *r = SP_CONTAINER_OF(w, struct req, try_timer);

    (void)loop;
    (void)revents;
    if (r->cs == NULL || r->resp_started)
        return; /* nobody to answer, or the response is already on its way */
    report_latency(r, false);
    end_try(r, SP_ERR_BACKEND_TIMEOUT);
    if (retry(r, SP_CAUSE_TRY_TIMEOUT, false, 0))
        return;
    fail_request(r, SP_CAUSE_TRY_TIMEOUT);
}

static void on_body_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct req *r = SP_CONTAINER_OF(w, struct req, idle);

    (void)loop;
    (void)revents;
    /* Who stalled: a client that stopped reading our response or sending its body, or the
     * backend (the class decides whether the backend's health pays for it). */
    if ((r->resp_started && r->cs != NULL && sp_h3_stream_unacked(r->cs) > 0) ||
        (!r->resp_started && !r->req_done))
        fail_request(r, SP_CAUSE_CLIENT_BODY_TIMEOUT);
    else
        fail_request(r, SP_CAUSE_BACKEND_BODY_TIMEOUT);
}

static void on_total_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct req *r = SP_CONTAINER_OF(w, struct req, total);

    (void)loop;
    (void)revents;
    fail_request(r, SP_CAUSE_REQUEST_TIMEOUT);
}

static char *field_dup(const struct sp_fields *f, const char *name)
{
    const struct sp_field *v = sp_fields_find(f, name);

    return v != NULL ? sp_xstrndup((const char *)v->value, v->value_len) : NULL;
}

static void init_request_id(struct req *r, const struct sp_fields *f)
{
    const struct sp_field *id = sp_fields_find(f, "x-request-id");

    if (id != NULL && sp_headers_request_id_valid(id->value, id->value_len)) {
        memcpy(r->request_id, id->value, id->value_len);
        r->request_id[id->value_len] = '\0';
    } else {
        sp_headers_request_id_new(r->request_id);
    }
}

/* Sets the request's timers (all stopped) to the timeouts t: the global ones until the request
 * is routed, then its upstream's effective ones. The try timer is set by submit(), per try. */
static void set_timeouts(struct req *r, const struct sp_timeouts_conf *t)
{
    ev_timer_set(&r->timer, (double)t->response_ms / 1e3, 0.);
    ev_timer_set(&r->idle, 0., (double)t->body_idle_ms / 1e3);
    ev_timer_set(&r->total, (double)t->request_ms / 1e3, 0.);
}

static void on_request(struct sp_h3_conn *c, struct sp_h3_stream *s, void *ctx)
{
    struct sp_proxy *px = ctx;
    const struct sp_fields *f = sp_h3_stream_headers(s);
    struct req *r = sp_xcalloc(1, sizeof(*r));
    const char *reason;
    int up;

    r->px = px;
    r->cs = s;
    r->conn = c;
    r->be = -1;
    r->cause = SP_CAUSE_NONE;
    r->start_ns = sp_time_now();
    r->waiter.on_ready = on_pool_ready;
    r->waiter.on_fail = on_pool_fail;
    sp_bodybuf_init(&r->pending);
    ev_timer_init(&r->timer, on_timeout, 0., 0.);
    ev_timer_init(&r->backoff, on_backoff, 0., 0.);
    ev_timer_init(&r->idle, on_body_idle, 0., 0.);
    ev_timer_init(&r->total, on_total_timeout, 0., 0.);
    ev_timer_init(&r->try_timer, on_try_timeout, 0., 0.);
    ev_timer_init(&r->stall, on_stall, 0., 0.);
    set_timeouts(r, &px->cfg->timeouts); /* the upstream's own, once routed */
    r->avoid_be = -1;
    memcpy(r->client_ip, sp_h3_conn_peer_ip(c), sizeof(r->client_ip));
    init_request_id(r, f);
    r->method = field_dup(f, ":method");
    r->authority = field_dup(f, ":authority");
    r->path = field_dup(f, ":path");
    px->inflight++;
    sp_h3_stream_set_user(s, &client_stream_ops, r);
    if (r->method != NULL && strcmp(r->method, "CONNECT") == 0) {
        fail_request(r, SP_CAUSE_CONNECT_UNSUPPORTED);
        return;
    }
    /* Before routing and backend choice: what no upstream writer could forward is the client's
     * fault (400), never a failure charged to a backend. */
    if (sp_request_validate(f, &reason) != 0) {
        SP_LOG_DEBUG("proxy", "request_id=%s event=invalid_request reason=%s", r->request_id,
                     reason);
        fail_request(r, SP_CAUSE_INVALID_REQUEST);
        return;
    }
    up = sp_router_match(px->router, str_or_dash(r->authority), strlen(str_or_dash(r->authority)),
                         str_or_dash(r->path), strlen(str_or_dash(r->path)), str_or_dash(r->method),
                         strlen(str_or_dash(r->method)));
    if (up < 0)
        up = px->default_up;
    if (up < 0) {
        fail_request(r, SP_CAUSE_NO_ROUTE);
        return;
    }
    r->routed = true;
    r->up = (size_t)up;
    sp_budget_request_started(&px->ups[up].budget);
    set_timeouts(r, &px->ups[up].conf->timeouts);
    /* The response and request timeouts run from now: queueing, connecting and waiting all
     * count (routing takes no time worth counting). */
    if (px->ups[up].conf->timeouts.request_ms > 0)
        ev_timer_start(px->loop, &r->total);
    ev_timer_start(px->loop, &r->timer);
    pick_and_acquire(r);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

int sp_proxy_new(struct ev_loop *loop, struct sp_defer *defer, const struct sp_config *cfg,
                 struct sp_tls_client *const *tls, struct sp_proxy **ret)
{
    struct sp_proxy *px = sp_xcalloc(1, sizeof(*px));
    struct sp_lb_params lbp = {0};
    int rv;

    px->loop = loop;
    px->defer = defer;
    px->cfg = cfg;
    px->handler.on_request = on_request;
    px->handler.ctx = px;
    if (cfg->listeners_count > 0 && cfg->listeners[0].alt_svc_max_age_s > 0)
        snprintf(px->alt_svc, sizeof(px->alt_svc), "h3=\":%u\"; ma=%u", cfg->listeners[0].port,
                 cfg->listeners[0].alt_svc_max_age_s);
    px->default_up = -1;
    for (size_t i = 0; cfg->default_upstream != NULL && i < cfg->upstreams_count; i++) {
        if (strcmp(cfg->upstreams[i].name, cfg->default_upstream) == 0)
            px->default_up = (int)i;
    }
    rv = sp_router_new(cfg, &px->router);
    if (rv != 0)
        goto out_free;
    px->nups = cfg->upstreams_count;
    px->ups = sp_xcalloc(px->nups, sizeof(*px->ups));
    for (size_t i = 0; i < px->nups; i++) {
        struct upstream_rt *u = &px->ups[i];

        u->conf = &cfg->upstreams[i];
        u->view = sp_xcalloc(u->conf->backends_count, sizeof(*u->view));
        u->ids = sp_xcalloc(u->conf->backends_count, sizeof(*u->ids));
        u->rtt_seeded = sp_xcalloc(u->conf->backends_count, sizeof(*u->rtt_seeded));
        for (size_t b = 0; b < u->conf->backends_count; b++)
            u->ids[b] = u->conf->backends[b].id;
        if (u->conf->sticky.enabled) {
            u->sticky_key.bytes = (const uint8_t *)u->conf->sticky.secret;
            u->sticky_key.len = strlen(u->conf->sticky.secret);
        }
        lbp.slow_start_ns = u->conf->slow_start_ms * SP_MS;
        rv = sp_budget_init(&u->budget,
                            &(struct sp_budget_conf){.ratio_pct = u->conf->retries.budget_pct,
                                                     .min_retries = u->conf->retries.min_retries});
        if (rv != 0)
            goto out_free;
        rv = sp_lb_new_by_name(sp_lb_kind_name(u->conf->strategy), &lbp, u->ids,
                               u->conf->backends_count, &u->lb);
        if (rv == 0)
            rv = sp_pool_new(loop, defer, u->conf, &u->conf->timeouts, &cfg->limits, tls[i],
                             &u->pool);
        if (rv != 0)
            goto out_free;
    }
    *ret = px;
    return 0;

out_free:
    sp_proxy_free(px);
    return rv;
}

const struct sp_h3_handler *sp_proxy_handler(struct sp_proxy *px)
{
    return &px->handler;
}

size_t sp_proxy_inflight(const struct sp_proxy *px)
{
    return px->inflight;
}

void sp_proxy_shutdown(struct sp_proxy *px)
{
    for (size_t i = 0; i < px->nups; i++)
        sp_pool_shutdown(px->ups[i].pool);
}

void sp_proxy_free(struct sp_proxy *px)
{
    if (px == NULL)
        return;
    for (size_t i = 0; i < px->nups; i++) {
        sp_pool_free(px->ups[i].pool);
        sp_lb_free(px->ups[i].lb);
        free(px->ups[i].view);
        free(px->ups[i].ids);
        free(px->ups[i].rtt_seeded);
    }
    free(px->ups);
    sp_router_free(px->router);
    free(px);
}
