/* probe.c: active health probes of one backend; see probe.h. */
#include "upstream/probe.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "config/config.h"
#include "core/log.h"
#include "core/time.h"
#include "core/util.h"
#include "health/state.h"
#include "upstream/pool.h"
#include "upstream/upstream.h"

/* Where the prober is between two probes. */
enum probe_phase {
    PROBE_IDLE = 0,    /* waiting for the next probe to be due */
    PROBE_WAITING = 1, /* queued in the pool for a stream */
    PROBE_SENT = 2,    /* request on a stream, waiting for the response */
    PROBE_STOPPED = 3, /* sp_prober_stop: never probes again */
};

struct sp_prober {
    struct ev_loop *loop;                  /* borrowed */
    struct sp_pool *pool;                  /* borrowed; owns the prober */
    const struct sp_backend_conf *backend; /* borrowed */
    const struct sp_health_check_conf *hc; /* borrowed */
    size_t index;                          /* the backend's index in the pool */
    const char *authority;                 /* borrowed from the conf: :authority of probes */
    ev_timer next;                         /* fires when the next probe is due */
    ev_timer timeout;                      /* ends a probe with no response after timeout_ms */
    struct sp_pool_waiter waiter;          /* while PROBE_WAITING */
    struct sp_ustream us;                  /* while PROBE_SENT */
    struct sp_pool_conn *conn;             /* borrowed; the probe's connection while SENT */
    enum probe_phase phase;
    unsigned status;        /* response status; 0 until the headers came */
    sp_time_t started_ns;   /* when the probe began */
    sp_time_t handshake_ns; /* handshake time of the probe's connection; 0 = unknown */
    sp_time_t rtt_ns;       /* smoothed RTT of the probe's connection (QUIC); 0 = unknown */
};

static const struct sp_ustream_cbs probe_cbs;

/* Arms the next probe for when the health machine wants it. */
static void probe_schedule(struct sp_prober *pr)
{
    sp_time_t at = sp_pool_next_probe_at(pr->pool, pr->index);
    sp_time_t now = sp_time_now();

    ev_timer_stop(pr->loop, &pr->next);
    if (pr->phase == PROBE_STOPPED || at == SP_HEALTH_NEVER)
        return;
    ev_timer_set(&pr->next, at > now ? (double)(at - now) / (double)SP_SEC : 0., 0.);
    ev_timer_start(pr->loop, &pr->next);
}

/* One probe is over: its result goes to the pool, and the next one is scheduled. */
static void probe_end(struct sp_prober *pr, bool ok, const char *why)
{
    sp_time_t now = sp_time_now();

    ev_timer_stop(pr->loop, &pr->timeout);
    pr->phase = PROBE_IDLE;
    pr->conn = NULL;
    SP_LOG_DEBUG("health",
                 "event=probe backend=%s ok=%d why=%s status=%u elapsed_ms=%.1f "
                 "handshake_ms=%.1f rtt_ms=%.2f",
                 pr->backend->id, ok, why, pr->status,
                 (double)(now - pr->started_ns) / (double)SP_MS,
                 (double)pr->handshake_ns / (double)SP_MS, (double)pr->rtt_ns / (double)SP_MS);
    sp_pool_probe_result(pr->pool, pr->index, ok, pr->rtt_ns, now);
    probe_schedule(pr);
}

static void probe_submit(struct sp_prober *pr, struct sp_pool_conn *c)
{
    const struct sp_field fields[] = {
        sp_field_str(":method", "GET"),
        sp_field_str(":scheme", "https"),
        sp_field_str(":authority", pr->authority),
        sp_field_str(":path", pr->hc->path),
        sp_field_str("user-agent", "spooky-health"),
    };

    pr->us.cbs = &probe_cbs;
    pr->us.user = pr;
    pr->handshake_ns = sp_pool_conn_handshake_ns(c);
    pr->rtt_ns = sp_pool_conn_rtt_ns(c);
    if (sp_pool_submit(c, fields, SP_ARRAY_LEN(fields), false, &pr->us) != 0) {
        probe_end(pr, false, "submit");
        return;
    }
    pr->phase = PROBE_SENT;
    pr->conn = c;
}

static void on_pool_ready(struct sp_pool_waiter *w, struct sp_pool_conn *c)
{
    probe_submit(SP_CONTAINER_OF(w, struct sp_prober, waiter), c);
}

static void on_pool_fail(struct sp_pool_waiter *w, enum sp_cause cause)
{
    struct sp_prober *pr = SP_CONTAINER_OF(w, struct sp_prober, waiter);

    if (pr->phase == PROBE_WAITING)
        probe_end(pr, false, sp_cause_name(cause));
}

static void probe_begin(struct sp_prober *pr)
{
    struct sp_pool_conn *c;
    int rv;

    pr->phase = PROBE_WAITING;
    pr->status = 0;
    pr->handshake_ns = pr->rtt_ns = 0;
    pr->started_ns = sp_time_now();
    ev_timer_set(&pr->timeout, (double)pr->hc->timeout_ms / 1e3, 0.);
    ev_timer_start(pr->loop, &pr->timeout);
    /* Straight to the pool: no balancer, no breaker; an ejected backend is probed too. */
    rv = sp_pool_acquire(pr->pool, pr->index, &pr->waiter, &c);
    if (rv == 0)
        probe_submit(pr, c);
    else if (rv != -EINPROGRESS)
        probe_end(pr, false, "queue_full");
}

static void on_next(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sp_prober *pr = SP_CONTAINER_OF(w, struct sp_prober, next);

    (void)loop;
    (void)revents;
    if (pr->phase != PROBE_IDLE)
        return;
    /* Passive health may have moved the due time since the timer was armed. */
    if (sp_pool_next_probe_at(pr->pool, pr->index) > sp_time_now()) {
        probe_schedule(pr);
        return;
    }
    probe_begin(pr);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sp_prober *pr = SP_CONTAINER_OF(w, struct sp_prober, timeout);

    (void)loop;
    (void)revents;
    if (pr->phase == PROBE_WAITING) {
        sp_pool_cancel(pr->pool, &pr->waiter);
    } else if (pr->phase == PROBE_SENT) {
        struct sp_pool_conn *c = pr->conn;

        /* No answer on this connection: it may be dead without knowing (a backend that was
         * killed leaves a QUIC connection silent). New requests get a fresh one. */
        sp_ustream_cancel(&pr->us);
        sp_pool_conn_retire(c);
    }
    probe_end(pr, false, "timeout");
}

/* ---- the probe's stream ------------------------------------------------------------------ */

static void us_on_headers(struct sp_ustream *s, void *user)
{
    struct sp_prober *pr = user;

    pr->status = sp_ustream_status(s);
}

static void us_on_data(struct sp_ustream *s, void *user, const uint8_t *data, size_t len)
{
    (void)user;
    (void)data;
    sp_ustream_consume(s, len); /* the body is discarded */
}

static void us_on_end(struct sp_ustream *s, void *user)
{
    (void)s;
    (void)user; /* on_close follows and decides */
}

static void us_on_sent(struct sp_ustream *s, void *user, uint64_t len)
{
    (void)s;
    (void)user;
    (void)len; /* probes have no body */
}

static void us_on_close(struct sp_ustream *s, void *user, enum sp_ustream_error err)
{
    struct sp_prober *pr = user;
    bool in_range = pr->status >= pr->hc->status_min && pr->status <= pr->hc->status_max;

    (void)s;
    if (pr->phase != PROBE_SENT)
        return;
    if (err != SP_USTREAM_OK)
        probe_end(pr, false, "reset");
    else
        probe_end(pr, in_range, in_range ? "ok" : "status");
}

static const struct sp_ustream_cbs probe_cbs = {
    .on_headers = us_on_headers,
    .on_data = us_on_data,
    .on_end = us_on_end,
    .on_sent = us_on_sent,
    .on_close = us_on_close,
};

/* ---- public API ------------------------------------------------------------------------- */

int sp_prober_new(struct ev_loop *loop, struct sp_pool *pool, size_t backend,
                  const struct sp_upstream_conf *conf, struct sp_prober **ret)
{
    struct sp_prober *pr;

    if (!conf->health_check.enabled || backend >= conf->backends_count)
        return -EINVAL;
    pr = sp_xcalloc(1, sizeof(*pr));
    pr->loop = loop;
    pr->pool = pool;
    pr->backend = &conf->backends[backend];
    pr->hc = &conf->health_check;
    pr->index = backend;
    /* docs/config.md: host, else the name the backend's certificate is checked against, else
     * the backend's address */
    if (pr->hc->host != NULL)
        pr->authority = pr->hc->host;
    else if (conf->tls.server_name != NULL)
        pr->authority = conf->tls.server_name;
    else
        pr->authority = pr->backend->address;
    pr->waiter.on_ready = on_pool_ready;
    pr->waiter.on_fail = on_pool_fail;
    ev_init(&pr->next, on_next);
    ev_init(&pr->timeout, on_timeout);
    *ret = pr;
    return 0;
}

void sp_prober_start(struct sp_prober *pr)
{
    if (pr->phase == PROBE_IDLE && !ev_is_active(&pr->next))
        probe_schedule(pr);
}

void sp_prober_stop(struct sp_prober *pr)
{
    if (pr->phase == PROBE_WAITING)
        sp_pool_cancel(pr->pool, &pr->waiter);
    else if (pr->phase == PROBE_SENT)
        sp_ustream_cancel(&pr->us);
    pr->phase = PROBE_STOPPED;
    pr->conn = NULL;
    ev_timer_stop(pr->loop, &pr->next);
    ev_timer_stop(pr->loop, &pr->timeout);
}

void sp_prober_free(struct sp_prober *pr)
{
    if (pr == NULL)
        return;
    sp_prober_stop(pr);
    free(pr);
}
