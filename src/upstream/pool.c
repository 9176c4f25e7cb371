#include "upstream/pool.h"
#include "core/log.h"
#include "core/util.h"
#include "health/state.h"
#include "policy/breaker.h"
#include "upstream/pool_rules.h"
#include "upstream/probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct backend;

struct sp_pool_conn {
    struct sp_pool_conn *prev, *next; /* backend's list */
    struct backend *be;               /* borrowed */
    void *impl;                       /* owned; the protocol's connection */
    ev_timer idle;                    /* reaps the conn when it has been idle long enough */
    bool ready;                       /* handshake done */
    bool goaway;                      /* out of rotation */
    bool closing;                     /* close requested by us */
    const char *close_reason;         /* static string for the log */
    uint64_t serial;                  /* unique in the pool: names one connection's death */
    uint64_t uses;                    /* requests submitted on it */
};

struct backend {
    struct sp_pool *pool;               /* borrowed */
    const struct sp_backend_conf *conf; /* borrowed */
    const struct sp_uconn_ops *ops;     /* borrowed; the backend's protocol */
    size_t index;
    struct sp_pool_conn *conns; /* owned list */
    size_t nconns;
    size_t connecting;                    /* conns not yet ready */
    struct sp_pool_waiter *qhead, *qtail; /* waiters for this backend */
    size_t qlen;                          /* waiters in that queue */
    char verify_name[64];                 /* SNI / certificate name: server_name or the IP */
    uint64_t handshakes;
    unsigned inflight;
    unsigned failures; /* consecutive connect failures */
    sp_time_t down_until;
    struct sp_health *health;   /* owned; passive health from request outcomes */
    struct sp_breaker *breaker; /* owned; this worker's circuit breaker */
    struct sp_prober *prober;   /* owned; active probes; NULL without health_check */
    ev_timer readmit;           /* passive health: when an ejected backend's handshake is due */
    sp_time_t rtt_ns;           /* smoothed RTT seen by the last probe; 0 = unknown */
    sp_time_t rtt_base_ns;      /* baseline RTT of probes: the lowest, drifting up slowly */
};

struct sp_pool {
    struct ev_loop *loop;                    /* borrowed */
    struct sp_defer *defer;                  /* borrowed */
    const struct sp_upstream_conf *conf;     /* borrowed */
    const struct sp_timeouts_conf *timeouts; /* borrowed */
    const struct sp_limits_conf *limits;     /* borrowed */
    const struct sp_tls_client *tls;         /* borrowed */
    struct sp_pool_limits rules;             /* the conf's caps, in the rules' terms */
    struct backend *backends;                /* owned array */
    size_t nbackends;
    size_t queued; /* waiters across backends */
    bool shutting_down;
    const struct sp_health **healths; /* owned array of borrowed machines, one per backend */
    bool panic;                       /* the last sp_pool_update_panic found the pool in panic */
    uint64_t next_serial;             /* for sp_pool_conn.serial */
};

static const struct sp_uconn_events conn_events;

static void health_event(struct backend *be, enum sp_health_event ev, sp_time_t now);
static int conn_open(struct backend *be);

/* ---- waiter queue ------------------------------------------------------------------------ */

static void queue_push(struct backend *be, struct sp_pool_waiter *w)
{
    w->prev = be->qtail;
    w->next = NULL;
    if (be->qtail != NULL)
        be->qtail->next = w;
    else
        be->qhead = w;
    be->qtail = w;
    w->queued = true;
    be->qlen++;
    be->pool->queued++;
}

static void queue_remove(struct backend *be, struct sp_pool_waiter *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        be->qhead = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        be->qtail = w->prev;
    w->prev = w->next = NULL;
    w->queued = false;
    be->qlen--;
    be->pool->queued--;
}

/* ---- connections ------------------------------------------------------------------------- */

static size_t conn_active(const struct sp_pool_conn *c)
{
    return c->be->ops->active(c->impl);
}

/* True when c can take one more request now. */
static bool has_capacity(const struct sp_pool_conn *c)
{
    struct sp_pool_conn_view v = {
        .ready = c->ready,
        .draining = c->goaway || c->closing,
        .active = conn_active(c),
        .peer_streams_left = c->ready ? c->be->ops->streams_left(c->impl) : 0,
    };

    return sp_pool_conn_has_capacity(&v, &c->be->pool->rules);
}

static void idle_update(struct sp_pool_conn *c)
{
    const struct sp_pool *p = c->be->pool;

    if (c->ready && !c->closing && conn_active(c) == 0) {
        /* A connection the backend is leaving (GOAWAY) closes as soon as it is idle; from the
         * timer, never from inside the conn's own callbacks. */
        c->idle.repeat = c->goaway ? 1e-6 : (double)p->conf->pool.idle_timeout_ms / 1e3;
        ev_timer_again(p->loop, &c->idle);
    } else {
        ev_timer_stop(p->loop, &c->idle);
    }
}

static void conn_close(struct sp_pool_conn *c, const char *reason)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_reason = reason;
    c->be->ops->close(c->impl, reason);
}

static void on_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sp_pool_conn *c = SP_CONTAINER_OF(w, struct sp_pool_conn, idle);

    (void)revents;
    ev_timer_stop(loop, w);
    if (conn_active(c) == 0)
        conn_close(c, c->goaway ? "goaway" : "idle");
}

/* Passive health: a backend whose connects fail is skipped for a growing backoff. */
static void backend_failed(struct backend *be, sp_time_t now)
{
    be->failures++;
    be->down_until = now + sp_pool_down_backoff(be->failures);
}

static int conn_open(struct backend *be)
{
    struct sp_pool *p = be->pool;
    struct sp_pool_conn *c = sp_xcalloc(1, sizeof(*c));
    struct sp_uconn_params params = {
        .loop = p->loop,
        .defer = p->defer,
        .backend = be->conf,
        .tls = p->tls,
        .verify_name = be->verify_name,
        .timeouts = p->timeouts,
        .limits = p->limits,
        .pool = &p->conf->pool,
        .events = &conn_events,
        .ctx = c,
    };
    int rv;

    c->be = be;
    c->serial = ++p->next_serial;
    ev_init(&c->idle, on_idle);
    rv = be->ops->open(&params, &c->impl);
    if (rv != 0) {
        free(c);
        SP_LOG_WARN("upstream", "event=connect_failed backend=%s err=\"%s\"", be->conf->id,
                    strerror(-rv));
        return rv;
    }
    c->next = be->conns;
    if (be->conns != NULL)
        be->conns->prev = c;
    be->conns = c;
    be->nconns++;
    be->connecting++;
    SP_LOG_DEBUG("upstream", "event=connecting backend=%s proto=%s", be->conf->id, be->ops->name);
    return 0;
}

/* Connections that count against max_connections_per_backend: all but those an HTTP/1.1
 * request holds only because its client does not read (a slow reader keeps its one connection,
 * never the backend's whole share of them). */
static size_t counted_conns(const struct backend *be)
{
    size_t held = 0;

    if (be->ops->held_by_client == NULL)
        return be->nconns;
    for (const struct sp_pool_conn *c = be->conns; c != NULL; c = c->next)
        held += c->ready && be->ops->held_by_client(c->impl);
    return be->nconns - held;
}

/* True when c may carry w's request: capacity, and fresh when w asks for it. */
static bool suits(const struct sp_pool_conn *c, const struct sp_pool_waiter *w)
{
    return has_capacity(c) && !(w->fresh && c->be->ops->reuse_races && c->uses > 0);
}

/* A waiter that needs a fresh connection while the backend's cap is reached by idle reused ones:
 * close one of those (its kept-alive state is what failed) so that a fresh one can open. */
static void make_room_for_fresh(struct backend *be)
{
    if (!be->ops->reuse_races || counted_conns(be) < be->pool->rules.max_connections)
        return;
    for (struct sp_pool_conn *c = be->conns; c != NULL; c = c->next) {
        if (c->ready && !c->closing && c->uses > 0 && conn_active(c) == 0) {
            conn_close(c, "stale_keepalive");
            return;
        }
    }
}

/* Hands free streams of ready connections to queued waiters, opening connections as needed. */
static void backend_dispatch(struct backend *be)
{
    struct sp_pool *p = be->pool;

    while (be->qhead != NULL) {
        struct sp_pool_conn *c = be->conns;
        struct sp_pool_waiter *w = be->qhead;

        while (c != NULL && !suits(c, w))
            c = c->next;
        if (c == NULL) {
            if (w->fresh)
                make_room_for_fresh(be);
            break;
        }
        queue_remove(be, w);
        w->on_ready(w, c);
        idle_update(c);
    }
    /* Open connections while waiters exceed what the handshakes under way will carry. */
    while (!p->shutting_down &&
           sp_pool_should_open(&p->rules, counted_conns(be), be->connecting, be->qlen))
        if (conn_open(be) != 0)
            break;
}

static void fail_waiters(struct backend *be, enum sp_cause cause)
{
    while (be->qhead != NULL) {
        struct sp_pool_waiter *w = be->qhead;

        queue_remove(be, w);
        w->on_fail(w, cause);
    }
}

static void ev_on_ready(void *ctx)
{
    struct sp_pool_conn *c = ctx;
    struct backend *be = c->be;

    c->ready = true;
    be->connecting--;
    be->handshakes++;
    be->failures = 0;
    be->down_until = 0;
    SP_LOG_INFO("upstream", "event=connected backend=%s proto=%s handshake_ms=%.1f", be->conf->id,
                be->ops->name, (double)be->ops->handshake_ns(c->impl) / (double)SP_MS);
    /* Passive health: an ejected backend that completes a handshake again is readmitted on
     * probation (trial traffic) once its backoff has passed. */
    if (be->prober == NULL && sp_health_state(be->health) == SP_HEALTH_UNHEALTHY)
        health_event(be, SP_HEALTH_EV_TICK, sp_time_now());
    backend_dispatch(be);
    idle_update(c);
}

static void ev_on_streams_available(void *ctx)
{
    struct sp_pool_conn *c = ctx;

    if (c->ready) {
        backend_dispatch(c->be);
        idle_update(c);
    }
}

static void ev_on_goaway(void *ctx)
{
    struct sp_pool_conn *c = ctx;

    /* RFC 9114 §5.2: finish what is in flight here, send everything new elsewhere. */
    c->goaway = true;
    SP_LOG_INFO("upstream", "event=goaway backend=%s", c->be->conf->id);
    backend_dispatch(c->be);
    idle_update(c);
}

static void free_conn(void *arg)
{
    struct sp_pool_conn *c = arg;

    c->be->ops->free(c->impl);
    free(c);
}

/* Classifies why a connection never became ready: no answer at all (connect) or a QUIC/TLS
 * handshake that started and failed (handshake). */
static enum sp_cause connect_cause(const char *why)
{
    if (strcmp(why, "handshake_timeout") == 0 || strcmp(why, "tls_error") == 0 ||
        strcmp(why, "handshake") == 0)
        return SP_CAUSE_HANDSHAKE;
    return SP_CAUSE_CONNECT;
}

static void unlink_conn(struct sp_pool_conn *c)
{
    struct backend *be = c->be;

    ev_timer_stop(be->pool->loop, &c->idle);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        be->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    be->nconns--;
}

/* Close reasons by which the transport says the backend is gone rather than that a connection
 * merely ended: ICMP unreachable, no acknowledgement for dead_after, connection refused. */
static bool backend_gone(const char *reason)
{
    static const char *const gone[] = {"unresponsive", "port_unreachable", "host_unreachable",
                                       "connect"};

    for (size_t i = 0; i < SP_ARRAY_LEN(gone); i++) {
        if (strcmp(reason, gone[i]) == 0)
            return true;
    }
    return false;
}

static void ev_on_closed(void *ctx, const char *reason)
{
    struct sp_pool_conn *c = ctx;
    struct backend *be = c->be;
    struct sp_pool *p = be->pool;
    const char *why = c->close_reason != NULL ? c->close_reason : reason;

    unlink_conn(c);
    /* Passive health hears of a dead backend from its transport at once (a connection that
     * dies of ICMP or silence ejects it now, not after N request timeouts); while ejected, any
     * failed handshake is a failed readmission. Closes we asked for say nothing. */
    if (!p->shutting_down && c->close_reason == NULL &&
        (backend_gone(reason) || (!c->ready && sp_health_state(be->health) == SP_HEALTH_UNHEALTHY)))
        health_event(be, SP_HEALTH_EV_CONN_LOST, sp_time_now());
    if (!c->ready) {
        be->connecting--;
        if (!p->shutting_down) {
            backend_failed(be, sp_time_now());
            SP_LOG_WARN("upstream", "event=connect_failed backend=%s reason=%s action=mark_down",
                        be->conf->id, reason);
        }
    }
    SP_LOG_INFO("upstream", "event=closed backend=%s reason=%s", be->conf->id,
                c->ready ? why : "connect");
    sp_defer_add(p->defer, free_conn, c);
    if (!c->ready && be->connecting == 0)
        fail_waiters(be, connect_cause(reason));
    else
        backend_dispatch(be);
}

static const struct sp_uconn_events conn_events = {
    .on_ready = ev_on_ready,
    .on_streams_available = ev_on_streams_available,
    .on_goaway = ev_on_goaway,
    .on_closed = ev_on_closed,
};

/* ---- public API ------------------------------------------------------------------------- */

/* The name a backend's certificate must carry: tls.server_name, or else the backend's own IP
 * literal (verified against the certificate's IP addresses; no SNI is sent for an IP). */
static void set_verify_name(struct backend *be, const char *server_name)
{
    const struct sockaddr_storage *ss = &be->conf->addr;

    if (server_name != NULL) {
        snprintf(be->verify_name, sizeof(be->verify_name), "%s", server_name);
        return;
    }
    if (ss->ss_family == AF_INET6)
        (void)inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, be->verify_name,
                        sizeof(be->verify_name));
    else
        (void)inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, be->verify_name,
                        sizeof(be->verify_name));
}

/* The health machine's settings from the upstream's passive_health section, plus the active
 * probes' cadence and thresholds when health_check is on (probe_interval 0 = passive only). */
static void health_conf(const struct sp_upstream_conf *conf, struct sp_health_conf *hc)
{
    const struct sp_passive_health_conf *ph = &conf->passive_health;
    const struct sp_health_check_conf *chk = &conf->health_check;

    sp_health_conf_default(hc);
    hc->probe_interval_ns = chk->enabled ? chk->interval_ms * SP_MS : 0;
    if (chk->enabled) {
        hc->probe_fall = chk->fall;
        hc->rise = chk->rise;
    }
    hc->eject_failures = ph->eject_failures;
    hc->eject_5xx = ph->eject_5xx;
    hc->degrade_failures = ph->degrade_failures;
    hc->eject_ratio_pct = ph->eject_ratio_pct;
    hc->degrade_ratio_pct = ph->degrade_ratio_pct;
    hc->min_requests = ph->min_requests;
    hc->window_ns = ph->window_ms * SP_MS;
    hc->degraded_weight_pct = ph->degraded_weight_pct;
    hc->recovery_base_ns = ph->recovery_ms * SP_MS;
    hc->recovery_cap_ns = ph->max_recovery_ms * SP_MS;
}

static void breaker_conf(const struct sp_breaker_settings *bs, struct sp_breaker_conf *bc)
{
    memset(bc, 0, sizeof(*bc));
    bc->max_failures = bs->max_failures;
    bc->failure_ratio_pct = bs->failure_ratio_pct;
    bc->min_requests = bs->min_requests;
    bc->window_ns = bs->window_ms * SP_MS;
    bc->open_ns = bs->open_ms * SP_MS;
    bc->max_open_ns = bs->max_open_ms * SP_MS;
    bc->half_open_quota = bs->half_open_requests;
    bc->half_open_successes = bs->half_open_successes;
    bc->max_concurrent = bs->max_concurrent;
}

/* Passive health: an ejected backend's readmission is due; try a handshake (a connection with
 * no request): success readmits it (ev_on_ready), failure backs off further (ev_on_closed), and
 * no client request waits on a backend that may still be gone. */
static void on_readmit(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct backend *be = SP_CONTAINER_OF(w, struct backend, readmit);

    (void)loop;
    (void)revents;
    if (be->pool->shutting_down || sp_health_state(be->health) != SP_HEALTH_UNHEALTHY)
        return;
    if (be->connecting > 0)
        return; /* a handshake is under way already; its end decides */
    if (conn_open(be) != 0)
        health_event(be, SP_HEALTH_EV_CONN_LOST, sp_time_now());
}

/* Arms the readmission handshake of an ejected backend for when its backoff ends. */
static void arm_readmit(struct backend *be, sp_time_t now)
{
    sp_time_t at = sp_health_next_probe_at(be->health);

    ev_timer_stop(be->pool->loop, &be->readmit);
    if (be->prober != NULL || sp_health_state(be->health) != SP_HEALTH_UNHEALTHY ||
        at == SP_HEALTH_NEVER)
        return;
    ev_timer_set(&be->readmit, at > now ? (double)(at - now) / (double)SP_SEC : 0., 0.);
    ev_timer_start(be->pool->loop, &be->readmit);
}

static int backend_policies(struct backend *be, const struct sp_upstream_conf *conf)
{
    struct sp_health_conf hc;
    struct sp_breaker_conf bc;
    int rv;

    health_conf(conf, &hc);
    breaker_conf(&conf->breaker, &bc);
    rv = sp_health_new(&hc, sp_time_now(), &be->health);
    if (rv == 0)
        rv = sp_breaker_new(&bc, &be->breaker);
    if (rv == 0 && conf->health_check.enabled)
        rv = sp_prober_new(be->pool->loop, be->pool, be->index, conf, &be->prober);
    return rv;
}

static void stop_probers(struct sp_pool *p)
{
    for (size_t i = 0; i < p->nbackends; i++) {
        if (p->backends[i].prober != NULL)
            sp_prober_stop(p->backends[i].prober);
    }
}

static void free_backends(struct sp_pool *p)
{
    for (size_t i = 0; i < p->nbackends; i++) {
        sp_prober_free(p->backends[i].prober);
        p->backends[i].prober = NULL;
        ev_timer_stop(p->loop, &p->backends[i].readmit);
        sp_health_free(p->backends[i].health);
        sp_breaker_free(p->backends[i].breaker);
    }
    free(p->backends);
    free(p->healths);
}

int sp_pool_new(struct ev_loop *loop, struct sp_defer *defer, const struct sp_upstream_conf *conf,
                const struct sp_timeouts_conf *timeouts, const struct sp_limits_conf *limits,
                const struct sp_tls_client *tls, struct sp_pool **ret)
{
    struct sp_pool *p = sp_xcalloc(1, sizeof(*p));

    p->loop = loop;
    p->defer = defer;
    p->conf = conf;
    p->timeouts = timeouts;
    p->limits = limits;
    p->tls = tls;
    p->rules.max_connections = conf->pool.max_connections_per_backend;
    p->rules.max_streams = conf->pool.max_streams_per_connection;
    p->rules.max_queue = conf->pool.max_queue;
    p->nbackends = conf->backends_count;
    p->backends = sp_xcalloc(p->nbackends, sizeof(*p->backends));
    p->healths = sp_xcalloc(p->nbackends, sizeof(*p->healths));
    for (size_t i = 0; i < p->nbackends; i++) {
        struct backend *be = &p->backends[i];

        be->pool = p;
        be->conf = &conf->backends[i];
        be->ops = sp_uconn_ops_for(be->conf->protocol);
        be->index = i;
        ev_init(&be->readmit, on_readmit);
        set_verify_name(be, conf->tls.server_name);
        if (be->ops == NULL || backend_policies(be, conf) != 0) {
            free_backends(p);
            free(p);
            return -EINVAL;
        }
        p->healths[i] = be->health;
    }
    for (size_t i = 0; i < p->nbackends; i++) {
        if (p->backends[i].prober != NULL)
            sp_prober_start(p->backends[i].prober);
    }
    *ret = p;
    return 0;
}

void sp_pool_shutdown(struct sp_pool *p)
{
    stop_probers(p);
    p->shutting_down = true;
    for (size_t i = 0; i < p->nbackends; i++) {
        struct backend *be = &p->backends[i];

        ev_timer_stop(p->loop, &be->readmit);
        fail_waiters(be, SP_CAUSE_SHUTDOWN);
        for (struct sp_pool_conn *c = be->conns; c != NULL; c = c->next) {
            if (c->ready && conn_active(c) == 0)
                conn_close(c, "shutdown");
        }
    }
}

void sp_pool_free(struct sp_pool *p)
{
    if (p == NULL)
        return;
    stop_probers(p); /* a probe in flight is cancelled before its connection closes */
    p->shutting_down = true;
    for (size_t i = 0; i < p->nbackends; i++) {
        struct backend *be = &p->backends[i];

        fail_waiters(be, SP_CAUSE_SHUTDOWN);
        /* Each close unlinks the conn (ev_on_closed) and defers its free. */
        while (be->conns != NULL) {
            struct sp_pool_conn *c = be->conns;

            c->closing = false;
            conn_close(c, "shutdown");
        }
    }
    sp_defer_run(p->defer);
    free_backends(p);
    free(p);
}

int sp_pool_acquire(struct sp_pool *p, size_t backend, struct sp_pool_waiter *w,
                    struct sp_pool_conn **ret_conn)
{
    struct backend *be = &p->backends[backend];

    for (struct sp_pool_conn *c = be->conns; c != NULL; c = c->next) {
        if (suits(c, w)) {
            ev_timer_stop(p->loop, &c->idle);
            *ret_conn = c;
            return 0;
        }
    }
    if (p->shutting_down ||
        (p->conf->breaker.max_pending > 0 && be->qlen >= p->conf->breaker.max_pending) ||
        !sp_pool_may_queue(&p->rules, counted_conns(be), be->connecting, be->qlen, p->queued))
        return -EBUSY;
    w->backend = backend;
    queue_push(be, w);
    backend_dispatch(be);
    /* Nothing had capacity above, so on_ready cannot have run synchronously. */
    return -EINPROGRESS;
}

int sp_pool_submit(struct sp_pool_conn *c, const struct sp_field *fields, size_t n, bool has_body,
                   struct sp_ustream *s)
{
    int rv = c->be->ops->submit(c->impl, fields, n, has_body, s);

    if (rv == 0)
        c->uses++;
    return rv;
}

void sp_pool_cancel(struct sp_pool *p, struct sp_pool_waiter *w)
{
    if (w->queued)
        queue_remove(&p->backends[w->backend], w);
}

void sp_pool_request_started(struct sp_pool *p, size_t backend)
{
    p->backends[backend].inflight++;
}

void sp_pool_request_finished(struct sp_pool *p, size_t backend)
{
    /* Idle timers restart from on_streams_available once the stream is really gone. */
    p->backends[backend].inflight--;
}

bool sp_pool_backend_eligible(struct sp_pool *p, size_t backend, sp_time_t now)
{
    const struct backend *be = &p->backends[backend];

    /* An open breaker is skipped until its open time is over (then a trial may go). */
    if (sp_breaker_state(be->breaker) == SP_BREAKER_OPEN && sp_breaker_retry_at(be->breaker) > now)
        return false;
    if (be->down_until > now)
        return false; /* connect failures: held down even in panic */
    /* An ejected backend comes back through a probe or a readmission handshake, never by
     * putting a client's request on it. */
    return p->panic || sp_health_state(be->health) != SP_HEALTH_UNHEALTHY;
}

unsigned sp_pool_backend_weight_pct(const struct sp_pool *p, size_t backend)
{
    unsigned pct = sp_health_weight_pct(p->backends[backend].health);

    if (pct == 0 && p->panic)
        return 100; /* panic: an ejected backend takes its full share of the load again */
    return pct > 0 ? pct : 1;
}

bool sp_pool_update_panic(struct sp_pool *p)
{
    bool panic =
        sp_health_panic(p->healths, p->nbackends, p->conf->passive_health.panic_threshold_pct);
    size_t healthy = 0;

    if (panic == p->panic)
        return panic;
    p->panic = panic;
    for (size_t i = 0; i < p->nbackends; i++) {
        enum sp_health_state s = sp_health_state(p->healths[i]);

        healthy += s == SP_HEALTH_HEALTHY || s == SP_HEALTH_DEGRADED;
    }
    /* Once per change, not per request: panic persists while the ejections do. */
    SP_LOG_WARN("upstream",
                "event=panic upstream=%s state=%s healthy=%zu backends=%zu threshold_pct=%u",
                p->conf->name, panic ? "on" : "off", healthy, p->nbackends,
                p->conf->passive_health.panic_threshold_pct);
    return panic;
}

/* Feeds one event to be's health machine and logs the transition it causes, once. */
static void health_event(struct backend *be, enum sp_health_event ev, sp_time_t now)
{
    const struct sp_health_transition *t;

    if (sp_health_report(be->health, ev, now, sp_random_u64())) {
        t = sp_health_last(be->health);
        /* One line per transition (STYLE: info = backend up/down). */
        SP_LOG_INFO("upstream", "event=health backend=%s from=%s to=%s reason=%s", be->conf->id,
                    sp_health_state_name(t->from), sp_health_state_name(t->to), t->reason);
    }
    /* A new ejection, or a failed readmission that backed off: the next handshake is due. */
    if (ev_is_active(&be->readmit) || sp_health_state(be->health) == SP_HEALTH_UNHEALTHY)
        arm_readmit(be, now);
}

/* Logs be's breaker transition since `before`, if any (once, at info). */
static void breaker_log(const struct backend *be, enum sp_breaker_state before)
{
    enum sp_breaker_state now_state = sp_breaker_state(be->breaker);

    if (now_state != before)
        SP_LOG_INFO("upstream", "event=breaker backend=%s from=%s to=%s reason=%s", be->conf->id,
                    sp_breaker_state_name(before), sp_breaker_state_name(now_state),
                    sp_breaker_reason(be->breaker));
}

bool sp_pool_admit(struct sp_pool *p, size_t backend, sp_time_t now)
{
    const struct backend *be = &p->backends[backend];
    enum sp_breaker_state before = sp_breaker_state(be->breaker);
    bool ok = sp_breaker_allow(be->breaker, now) == SP_BREAKER_ALLOW;

    breaker_log(be, before); /* OPEN -> HALF_OPEN happens here */
    return ok;
}

void sp_pool_outcome(struct sp_pool *p, size_t backend, bool admitted, enum sp_err_class cls,
                     sp_time_t now)
{
    struct backend *be = &p->backends[backend];
    enum sp_health_event ev;

    if (admitted) {
        if (!sp_err_is_client(cls) && cls != SP_ERR_INTERNAL) {
            enum sp_breaker_state before = sp_breaker_state(be->breaker);

            sp_breaker_report(be->breaker, cls == SP_ERR_NONE, now);
            breaker_log(be, before);
        }
        sp_breaker_release(be->breaker);
    }
    if (sp_health_event_from_err(cls, &ev))
        health_event(be, ev, now);
}

sp_time_t sp_pool_next_probe_at(const struct sp_pool *p, size_t backend)
{
    return sp_health_next_probe_at(p->backends[backend].health);
}

void sp_pool_probe_result(struct sp_pool *p, size_t backend, bool ok, sp_time_t rtt_ns,
                          sp_time_t now)
{
    struct backend *be = &p->backends[backend];

    unsigned factor = p->conf->health_check.rtt_degrade_factor;

    health_event(be, ok ? SP_HEALTH_EV_PROBE_OK : SP_HEALTH_EV_PROBE_FAIL, now);
    if (rtt_ns == 0)
        return;
    be->rtt_ns = rtt_ns;
    /* QUIC-aware health: a backend whose path got much slower (a congested link, a failover to
     * a far site) gets less traffic before its requests start timing out. */
    if (ok && factor > 0 && be->rtt_base_ns > 0 && rtt_ns > factor * be->rtt_base_ns &&
        rtt_ns > be->rtt_base_ns + 5 * SP_MS)
        health_event(be, SP_HEALTH_EV_SLOW, now);
    if (be->rtt_base_ns == 0 || rtt_ns < be->rtt_base_ns)
        be->rtt_base_ns = rtt_ns;
    else
        be->rtt_base_ns += (rtt_ns - be->rtt_base_ns) / 64; /* a lasting change becomes the base */
}

void sp_pool_conn_retire(struct sp_pool_conn *c)
{
    if (c->goaway || c->closing)
        return;
    c->goaway = true;
    SP_LOG_DEBUG("upstream", "event=retire backend=%s reason=probe_timeout", c->be->conf->id);
    backend_dispatch(c->be);
    idle_update(c);
}

uint64_t sp_pool_conn_serial(const struct sp_pool_conn *c)
{
    return c->serial;
}

sp_time_t sp_pool_conn_handshake_ns(const struct sp_pool_conn *c)
{
    return c->ready ? c->be->ops->handshake_ns(c->impl) : 0;
}

sp_time_t sp_pool_conn_rtt_ns(const struct sp_pool_conn *c)
{
    const struct sp_uconn_ops *ops = c->be->ops;

    return c->ready && ops->rtt_ns != NULL ? ops->rtt_ns(c->impl) : 0;
}

unsigned sp_pool_backend_inflight(const struct sp_pool *p, size_t backend)
{
    return p->backends[backend].inflight;
}

void sp_pool_backend_stats(const struct sp_pool *p, size_t backend,
                           struct sp_pool_backend_stats *ret)
{
    const struct backend *be = &p->backends[backend];

    ret->connections = be->nconns;
    ret->handshakes = be->handshakes;
    ret->inflight = be->inflight;
    ret->down = be->down_until > sp_time_now();
    ret->rtt_ns = be->rtt_ns;
}
