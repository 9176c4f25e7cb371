/* proxy.c: one request's life as an explicit state machine (proxy_internal.h, enum req_state):
 * arrival, validation and routing, backend choice, waiting for a pooled stream, tries and
 * retries, streaming, spooky's own answers, the access-log line. One transition function
 * (sp_proxy_req_enter) and one deadline timer per request: each state says which deadlines count
 * (response_ms, request_ms, try_ms, body_idle_ms, the retry backoff, stall_warn_ms), and the
 * timer fires at the nearest of them; moving bytes only record a timestamp. The bytes themselves
 * move in relay.c. */
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

#define NEVER UINT64_MAX

static const char *const state_names[REQ_STATE_COUNT] = {"routing",   "queued",   "backoff", "sent",
                                                         "streaming", "answered", "finished"};

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

void sp_proxy_req_end_try(struct req *r, enum sp_err_class cls)
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

void sp_proxy_req_maybe_finish(struct req *r)
{
    if (r->state == REQ_FINISHED || r->cs != NULL || r->us.impl != NULL || r->waiter.queued)
        return;
    sp_proxy_req_enter(r, REQ_FINISHED);
    sp_proxy_req_end_try(r, r->cls == SP_ERR_NONE ? SP_ERR_CLIENT_ABORT : r->cls);
    if (r->routed)
        sp_budget_request_finished(&r->px->ups[r->up].budget);
    if (r->status == 0)
        r->status = 499; /* client went away before any response */
    if (r->px->cfg->access_log)
        access_log(r);
    r->px->inflight--;
    sp_defer_add(r->px->defer, req_free, r);
}

void sp_proxy_req_detach_upstream(struct req *r)
{
    sp_ustream_cancel(&r->us);
    if (r->counted) {
        r->counted = false;
        sp_pool_request_finished(r->px->ups[r->up].pool, (size_t)r->be);
    }
}

void sp_proxy_req_report_latency(struct req *r, bool ok)
{
    sp_time_t now = sp_time_now();

    if (r->be < 0 || r->submit_ns == 0)
        return;
    sp_lb_report(r->px->ups[r->up].lb, (size_t)r->be, now - r->submit_ns, ok, now);
    r->submit_ns = 0;
}

/* ---- the state machine ---------------------------------------------------------------------- */

static const struct sp_timeouts_conf *timeouts_of(const struct req *r)
{
    return r->routed ? &r->px->ups[r->up].conf->timeouts : &r->px->cfg->timeouts;
}

static sp_time_t after(sp_time_t from, uint64_t ms)
{
    return from + ms * SP_MS;
}

/* The nearest deadline that counts in r's state (NEVER for none). */
static sp_time_t next_deadline(const struct req *r)
{
    const struct sp_timeouts_conf *t = timeouts_of(r);
    sp_time_t d = NEVER;

    switch (r->state) {
    case REQ_ROUTING:
    case REQ_ANSWERED:
    case REQ_FINISHED:
        return NEVER;
    case REQ_BACKOFF:
        d = SP_MIN(r->backoff_ns, after(r->start_ns, t->response_ms));
        break;
    case REQ_QUEUED:
        d = after(r->start_ns, t->response_ms);
        break;
    case REQ_SENT:
        d = SP_MIN(after(r->start_ns, t->response_ms), after(r->progress_ns, t->body_idle_ms));
        if (t->try_ms > 0 && r->submit_ns != 0)
            d = SP_MIN(d, after(r->submit_ns, t->try_ms));
        break;
    case REQ_STREAMING:
        d = after(r->progress_ns, t->body_idle_ms);
        if (t->stall_warn_ms > 0 && !r->stall_logged)
            d = SP_MIN(d, after(r->progress_ns, t->stall_warn_ms));
        break;
    }
    if (t->request_ms > 0)
        d = SP_MIN(d, after(r->start_ns, t->request_ms));
    return d;
}

static void arm_deadline(struct req *r)
{
    sp_time_t d = next_deadline(r), now = sp_time_now();

    ev_timer_stop(r->px->loop, &r->deadline);
    if (d == NEVER)
        return;
    ev_timer_set(&r->deadline, d > now ? (double)(d - now) / (double)SP_SEC : 0., 0.);
    ev_timer_start(r->px->loop, &r->deadline);
}

void sp_proxy_req_enter(struct req *r, enum req_state to)
{
    sp_time_t now = sp_time_now();

    SP_LOG_DEBUG("proxy", "request_id=%s event=state from=%s to=%s", r->request_id,
                 state_names[r->state], state_names[to]);
    r->px->transitions[r->state][to]++;
    r->state = to;
    switch (to) {
    case REQ_ROUTING:
    case REQ_QUEUED:
    case REQ_BACKOFF:
    case REQ_ANSWERED:
        break;
    case REQ_SENT:
        r->submit_ns = now;
        r->progress_ns = now; /* the request is with a backend: bodies may stall from now */
        break;
    case REQ_STREAMING:
        r->progress_ns = now;
        r->stall_logged = false;
        break;
    case REQ_FINISHED:
        ev_timer_stop(r->px->loop, &r->deadline);
        return;
    }
    arm_deadline(r);
}

void sp_proxy_req_progress(struct req *r)
{
    r->progress_ns = sp_time_now();
    if (r->stall_logged) {
        r->stall_logged = false;
        SP_LOG_INFO("proxy", "event=body_stall_over request_id=%s", r->request_id);
        arm_deadline(r);
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

void sp_proxy_req_fail(struct req *r, enum sp_cause cause)
{
    unsigned status = sp_cause_info(cause)->status;

    if (r->state == REQ_ANSWERED || r->state == REQ_FINISHED)
        return;
    r->cls = sp_cause_class(cause);
    if (status >= 500)
        sp_proxy_req_report_latency(r, false);
    sp_proxy_req_end_try(r, r->cls);
    if (sp_log_enabled(SP_LOG_LEVEL_WARN) && status >= 500) {
        const char *beid = r->be >= 0 ? r->px->ups[r->up].conf->backends[r->be].id : "-";

        /* Once the response has started the client already has its status: say what we do
         * instead, so this line and the access line agree. */
        SP_LOG_WARN_LIMITED("proxy", "request_id=%s backend=%s status=%u cause=%s action=%s",
                            r->request_id, beid, r->resp_started ? r->status : status,
                            sp_cause_name(cause),
                            r->resp_started ? "reset_client_stream" : "respond_error");
    }
    sp_proxy_req_enter(r, REQ_ANSWERED);
    if (r->waiter.queued)
        sp_pool_cancel(r->px->ups[r->up].pool, &r->waiter);
    sp_proxy_req_detach_upstream(r);
    if (r->resp_started) {
        /* Too late for a status: a reset tells the client the response is incomplete. */
        r->cause = cause;
        if (r->cs != NULL && !r->resp_done)
            sp_h3_stream_reset(r->cs, SP_H3_INTERNAL_ERROR);
    } else {
        respond_error(r, cause);
    }
    sp_proxy_req_maybe_finish(r);
}

/* ---- tries and retries ---------------------------------------------------------------------- */

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

/* A request the backend never processed goes again whatever its method; any other only when its
 * method is idempotent and its body is replayable; never once the client got a response byte;
 * at most retries.max times and within the upstream's retry budget, after a jittered backoff. */
bool sp_proxy_req_retry(struct req *r, enum sp_cause cause, bool never_processed,
                        uint64_t conn_death)
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
    /* A request the backend never saw goes on a connection that carried nothing yet: a kept-alive
     * HTTP/1.1 connection the backend closed is likely not the only one (RFC 9112 §9.3.1). */
    r->waiter.fresh = cause == SP_CAUSE_REFUSED;
    sp_proxy_req_detach_upstream(r);
    delay = sp_backoff_delay(rc->backoff_ms * SP_MS, rc->max_backoff_ms * SP_MS, r->tries,
                             sp_random_u64());
    SP_LOG_WARN_LIMITED("proxy",
                        "request_id=%s backend=%s cause=%s action=retry_next_backend delay_ms=%.1f",
                        r->request_id, u->conf->backends[r->be].id, sp_cause_name(cause),
                        (double)delay / (double)SP_MS);
    r->backoff_ns = sp_time_now() + delay;
    sp_proxy_req_enter(r, REQ_BACKOFF);
    return true;
}

static void on_pool_ready(struct sp_pool_waiter *w, struct sp_pool_conn *c)
{
    struct req *r = SP_CONTAINER_OF(w, struct req, waiter);

    if (r->cs == NULL) {
        sp_proxy_req_maybe_finish(r);
        return;
    }
    sp_proxy_req_submit(r, c);
}

static void on_pool_fail(struct sp_pool_waiter *w, enum sp_cause cause)
{
    struct req *r = SP_CONTAINER_OF(w, struct req, waiter);

    sp_proxy_req_end_try(r, sp_cause_class(cause));
    if (r->cs == NULL) {
        sp_proxy_req_maybe_finish(r);
        return;
    }
    /* The request never left spooky: safe to try another backend whatever the method. */
    if (sp_proxy_req_retry(r, cause, true, 0))
        return;
    sp_proxy_req_fail(r, cause);
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
            sp_proxy_req_fail(r, attempt > 0 ? SP_CAUSE_BREAKER_OPEN : SP_CAUSE_NO_BACKEND);
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
        sp_proxy_req_submit(r, c);
    else if (rv == -EBUSY)
        sp_proxy_req_fail(r, SP_CAUSE_QUEUE_FULL);
    else
        sp_proxy_req_enter(r, REQ_QUEUED);
}

/* ---- deadlines ------------------------------------------------------------------------------ */

/* The try had no response headers within try_ms: give up on it, and try another backend when the
 * retry rules allow (a timeout is retried only for an idempotent request whose body is still
 * replayable); otherwise 504. response_ms and request_ms still bound the whole request. */
static void try_timed_out(struct req *r)
{
    sp_proxy_req_report_latency(r, false);
    sp_proxy_req_end_try(r, SP_ERR_BACKEND_TIMEOUT);
    if (sp_proxy_req_retry(r, SP_CAUSE_TRY_TIMEOUT, false, 0))
        return;
    sp_proxy_req_fail(r, SP_CAUSE_TRY_TIMEOUT);
}

/* No body byte moved for body_idle_ms: who stalled, a client that stopped reading our response
 * or sending its body, or the backend (the class decides whether the backend pays for it). */
static void body_timed_out(struct req *r)
{
    if ((r->resp_started && r->cs != NULL && sp_h3_stream_unacked(r->cs) > 0) ||
        (!r->resp_started && !r->req_done))
        sp_proxy_req_fail(r, SP_CAUSE_CLIENT_BODY_TIMEOUT);
    else
        sp_proxy_req_fail(r, SP_CAUSE_BACKEND_BODY_TIMEOUT);
}

/* The one timer: act on whichever deadline of the state has passed, the whole request's first,
 * then re-arm for the next one. */
static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct req *r = SP_CONTAINER_OF(w, struct req, deadline);
    const struct sp_timeouts_conf *t = timeouts_of(r);
    sp_time_t now = sp_time_now();

    (void)loop;
    (void)revents;
    if (t->request_ms > 0 && now >= after(r->start_ns, t->request_ms)) {
        sp_proxy_req_fail(r, SP_CAUSE_REQUEST_TIMEOUT);
        return;
    }
    switch (r->state) {
    case REQ_ROUTING:
    case REQ_ANSWERED:
    case REQ_FINISHED:
        return;
    case REQ_QUEUED:
    case REQ_BACKOFF:
    case REQ_SENT:
        if (now >= after(r->start_ns, t->response_ms)) {
            sp_proxy_req_fail(r, SP_CAUSE_TIMEOUT);
            return;
        }
        if (r->state == REQ_BACKOFF && now >= r->backoff_ns) {
            if (r->cs == NULL) {
                sp_proxy_req_maybe_finish(r);
                return;
            }
            sp_proxy_req_enter(r, REQ_ROUTING);
            pick_and_acquire(r);
            return;
        }
        if (r->state == REQ_SENT && t->try_ms > 0 && r->submit_ns != 0 &&
            now >= after(r->submit_ns, t->try_ms)) {
            try_timed_out(r);
            return;
        }
        break;
    case REQ_STREAMING:
        if (t->stall_warn_ms > 0 && !r->stall_logged &&
            now >= after(r->progress_ns, t->stall_warn_ms)) {
            /* A stalled response is never silent; sp_proxy_req_progress ends the stall. */
            r->stall_logged = true;
            sp_proxy_req_log_stall(r, now - r->progress_ns);
        }
        break;
    }
    if ((r->state == REQ_SENT || r->state == REQ_STREAMING) &&
        now >= after(r->progress_ns, t->body_idle_ms)) {
        body_timed_out(r);
        return;
    }
    arm_deadline(r);
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
    r->state = REQ_ROUTING;
    sp_bodybuf_init(&r->pending);
    ev_timer_init(&r->deadline, on_deadline, 0., 0.);
    r->avoid_be = -1;
    memcpy(r->client_ip, sp_h3_conn_peer_ip(c), sizeof(r->client_ip));
    init_request_id(r, f);
    r->method = field_dup(f, ":method");
    r->authority = field_dup(f, ":authority");
    r->path = field_dup(f, ":path");
    px->inflight++;
    sp_h3_stream_set_user(s, &sp_proxy_client_stream_ops, r);
    if (r->method != NULL && strcmp(r->method, "CONNECT") == 0) {
        sp_proxy_req_fail(r, SP_CAUSE_CONNECT_UNSUPPORTED);
        return;
    }
    /* Before routing and backend choice: what no upstream writer could forward is the client's
     * fault (400), never a failure charged to a backend. */
    if (sp_request_validate(f, &reason) != 0) {
        SP_LOG_DEBUG("proxy", "request_id=%s event=invalid_request reason=%s", r->request_id,
                     reason);
        sp_proxy_req_fail(r, SP_CAUSE_INVALID_REQUEST);
        return;
    }
    up = sp_router_match(px->router, str_or_dash(r->authority), strlen(str_or_dash(r->authority)),
                         str_or_dash(r->path), strlen(str_or_dash(r->path)), str_or_dash(r->method),
                         strlen(str_or_dash(r->method)));
    if (up < 0)
        up = px->default_up;
    if (up < 0) {
        sp_proxy_req_fail(r, SP_CAUSE_NO_ROUTE);
        return;
    }
    r->routed = true;
    r->up = (size_t)up;
    sp_budget_request_started(&px->ups[up].budget);
    /* The response and request timeouts run from the arrival: queueing, connecting and waiting
     * all count (routing takes no time worth counting). */
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
