#include "upstream/pool.h"
#include "core/log.h"
#include "core/util.h"
#include "upstream/pool_rules.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct backend;

struct bconn {
    struct bconn *prev, *next;  /* backend's list */
    struct backend *be;         /* borrowed */
    struct sp_h3_conn *h3;      /* owned */
    struct sp_quic_endpoint ep; /* owns ep.fd: a connected UDP socket */
    ev_io io;                   /* readable socket */
    ev_timer idle;              /* reaps the conn when it has been idle long enough */
    bool ready;                 /* handshake done */
    bool goaway;                /* out of rotation */
    bool closing;               /* close requested by us */
    const char *close_reason;   /* static string for the log */
};

struct backend {
    struct sp_pool *pool;               /* borrowed */
    const struct sp_backend_conf *conf; /* borrowed */
    size_t index;
    struct bconn *conns; /* owned list */
    size_t nconns;
    size_t connecting;                    /* conns not yet ready */
    struct sp_pool_waiter *qhead, *qtail; /* waiters for this backend */
    size_t qlen;                          /* waiters in that queue */
    char verify_name[64];                 /* SNI / certificate name: server_name or the IP */
    uint64_t handshakes;
    unsigned inflight;
    unsigned failures; /* consecutive connect failures */
    sp_time_t down_until;
};

struct sp_pool {
    struct ev_loop *loop;                /* borrowed */
    struct sp_defer *defer;              /* borrowed */
    const struct sp_upstream_conf *conf; /* borrowed */
    const struct sp_tls_client *tls;     /* borrowed */
    struct sp_quic_conn_params params;
    struct sp_h3_limits limits;
    struct sp_pool_limits rules; /* the conf's caps, in the rules' terms */
    struct backend *backends;    /* owned array */
    size_t nbackends;
    size_t queued; /* waiters across backends */
    bool shutting_down;
};

static const struct sp_h3_client_ops client_ops;

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

/* True when bc can take one more request now. */
static bool has_capacity(struct bconn *bc)
{
    struct sp_pool_conn_view v = {
        .ready = bc->ready,
        .draining = bc->goaway || bc->closing,
        .active = sp_h3_conn_active_streams(bc->h3),
        .peer_streams_left = bc->ready ? sp_h3_conn_streams_left(bc->h3) : 0,
    };

    return sp_pool_conn_has_capacity(&v, &bc->be->pool->rules);
}

static void idle_update(struct bconn *bc)
{
    const struct sp_pool *p = bc->be->pool;

    if (bc->ready && sp_h3_conn_active_streams(bc->h3) == 0) {
        /* A connection the backend is leaving (GOAWAY) closes as soon as it is idle; from the
         * timer, never from inside the conn's own callbacks. */
        bc->idle.repeat = bc->goaway ? 1e-6 : (double)p->conf->pool.idle_timeout_ms / 1e3;
        ev_timer_again(p->loop, &bc->idle);
    } else {
        ev_timer_stop(p->loop, &bc->idle);
    }
}

static void bconn_close(struct bconn *bc, const char *reason)
{
    if (bc->closing)
        return;
    bc->closing = true;
    bc->close_reason = reason;
    sp_h3_conn_close(bc->h3, reason);
}

static void on_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct bconn *bc = SP_CONTAINER_OF(w, struct bconn, idle);

    (void)loop;
    (void)revents;
    ev_timer_stop(loop, w);
    if (sp_h3_conn_active_streams(bc->h3) == 0)
        bconn_close(bc, bc->goaway ? "goaway" : "idle");
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct bconn *bc = SP_CONTAINER_OF(w, struct bconn, io);
    struct sp_quic_conn *qc = sp_h3_conn_quic(bc->h3);
    static _Thread_local uint8_t buf[65536];

    (void)loop;
    (void)revents;
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(bc->ep.fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (n == -1) {
            /* ECONNREFUSED (ICMP port unreachable) means nobody listens: fail fast. */
            if (errno == ECONNREFUSED && !bc->ready) {
                bconn_close(bc, "connect");
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

static int open_socket(struct bconn *bc)
{
    const struct sp_backend_conf *bcf = bc->be->conf;
    int fd = socket(bcf->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd == -1)
        return -errno;
    if (connect(fd, (const struct sockaddr *)&bcf->addr, bcf->addrlen) == -1) {
        int rv = -errno;

        (void)close(fd);
        return rv;
    }
    bc->ep.fd = fd;
    bc->ep.connected = true;
    bc->ep.local_len = sizeof(bc->ep.local);
    (void)getsockname(fd, (struct sockaddr *)&bc->ep.local, &bc->ep.local_len);
    return 0;
}

/* Passive health: a backend whose connects fail is skipped for a growing backoff. */
static void backend_failed(struct backend *be, sp_time_t now)
{
    be->failures++;
    be->down_until = now + sp_pool_down_backoff(be->failures);
}

static int bconn_open(struct backend *be)
{
    struct sp_pool *p = be->pool;
    struct bconn *bc = sp_xcalloc(1, sizeof(*bc));
    gnutls_session_t tls;
    int rv;

    bc->be = be;
    rv = open_socket(bc);
    if (rv != 0)
        goto out_free;
    rv = sp_tls_client_session_new(p->tls, be->verify_name, NULL, &tls);
    if (rv != 0)
        goto out_close;
    rv = sp_h3_conn_new_client(p->loop, &bc->ep, (struct sockaddr *)&be->conf->addr,
                               be->conf->addrlen, &p->params, &p->limits, tls, &client_ops, bc,
                               &bc->h3);
    if (rv != 0)
        goto out_close;
    sp_h3_conn_quic(bc->h3)->defer = p->defer;
    ev_io_init(&bc->io, on_readable, bc->ep.fd, EV_READ);
    ev_io_start(p->loop, &bc->io);
    ev_init(&bc->idle, on_idle);
    bc->next = be->conns;
    if (be->conns != NULL)
        be->conns->prev = bc;
    be->conns = bc;
    be->nconns++;
    be->connecting++;
    SP_LOG_DEBUG("upstream", "event=connecting backend=%s", be->conf->id);
    sp_quic_conn_write(sp_h3_conn_quic(bc->h3));
    return 0;

out_close:
    (void)close(bc->ep.fd);
out_free:
    free(bc);
    SP_LOG_WARN("upstream", "event=connect_failed backend=%s err=\"%s\"", be->conf->id,
                strerror(-rv));
    return rv;
}

/* Hands free streams of ready connections to queued waiters, opening connections as needed. */
static void backend_dispatch(struct backend *be)
{
    struct sp_pool *p = be->pool;

    while (be->qhead != NULL) {
        struct bconn *bc = be->conns;
        struct sp_pool_waiter *w;

        while (bc != NULL && !has_capacity(bc))
            bc = bc->next;
        if (bc == NULL)
            break;
        w = be->qhead;
        queue_remove(be, w);
        w->on_ready(w, bc->h3);
        idle_update(bc);
    }
    /* Open connections while waiters exceed what the handshakes under way will carry. */
    while (!p->shutting_down &&
           sp_pool_should_open(&p->rules, be->nconns, be->connecting, be->qlen))
        if (bconn_open(be) != 0)
            break;
}

static void fail_waiters(struct backend *be, const char *cause)
{
    while (be->qhead != NULL) {
        struct sp_pool_waiter *w = be->qhead;

        queue_remove(be, w);
        w->on_fail(w, cause);
    }
}

static struct bconn *bconn_of(void *ctx)
{
    return ctx;
}

static void on_ready(struct sp_h3_conn *c, void *ctx)
{
    struct bconn *bc = bconn_of(ctx);
    struct backend *be = bc->be;
    struct sp_quic_conn *qc = sp_h3_conn_quic(c);

    bc->ready = true;
    be->connecting--;
    be->handshakes++;
    be->failures = 0;
    be->down_until = 0;
    SP_LOG_INFO("upstream", "event=connected backend=%s handshake_ms=%.1f", be->conf->id,
                (double)qc->handshake_ns / (double)SP_MS);
    backend_dispatch(be);
    idle_update(bc);
}

static void on_streams_available(struct sp_h3_conn *c, void *ctx)
{
    struct bconn *bc = bconn_of(ctx);

    (void)c;
    if (bc->ready) {
        backend_dispatch(bc->be);
        idle_update(bc);
    }
}

static void on_goaway(struct sp_h3_conn *c, void *ctx)
{
    struct bconn *bc = bconn_of(ctx);

    (void)c;
    /* RFC 9114 §5.2: finish what is in flight here, send everything new elsewhere. */
    bc->goaway = true;
    bc->close_reason = "goaway";
    SP_LOG_INFO("upstream", "event=goaway backend=%s", bc->be->conf->id);
    backend_dispatch(bc->be);
    idle_update(bc);
}

static void free_bconn(void *arg)
{
    struct bconn *bc = arg;

    sp_h3_conn_free(bc->h3);
    (void)close(bc->ep.fd);
    free(bc);
}

/* Classifies why a connection never became ready: no answer at all ("connect") or a QUIC/TLS
 * handshake that started and failed ("handshake"). */
static const char *connect_cause(const char *why)
{
    if (strcmp(why, "handshake_timeout") == 0 || strcmp(why, "tls_error") == 0)
        return "handshake";
    return "connect";
}

static void on_conn_closed(struct sp_h3_conn *c, void *ctx, const char *reason)
{
    struct bconn *bc = bconn_of(ctx);
    struct backend *be = bc->be;
    struct sp_pool *p = be->pool;
    const char *why = bc->close_reason != NULL ? bc->close_reason : reason;

    (void)c;
    ev_io_stop(p->loop, &bc->io);
    ev_timer_stop(p->loop, &bc->idle);
    if (bc->prev != NULL)
        bc->prev->next = bc->next;
    else
        be->conns = bc->next;
    if (bc->next != NULL)
        bc->next->prev = bc->prev;
    be->nconns--;
    if (!bc->ready) {
        be->connecting--;
        if (!p->shutting_down) {
            backend_failed(be, sp_time_now());
            SP_LOG_WARN("upstream", "event=connect_failed backend=%s reason=%s action=mark_down",
                        be->conf->id, why);
        }
    }
    SP_LOG_INFO("upstream", "event=closed backend=%s reason=%s", be->conf->id,
                bc->ready ? why : "connect");
    sp_defer_add(p->defer, free_bconn, bc);
    if (!bc->ready && be->connecting == 0)
        fail_waiters(be, connect_cause(why));
    else
        backend_dispatch(be);
}

static const struct sp_h3_client_ops client_ops = {
    .on_ready = on_ready,
    .on_streams_available = on_streams_available,
    .on_goaway = on_goaway,
    .on_conn_closed = on_conn_closed,
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

int sp_pool_new(struct ev_loop *loop, struct sp_defer *defer, const struct sp_upstream_conf *conf,
                const struct sp_timeouts_conf *timeouts, const struct sp_limits_conf *limits,
                const struct sp_tls_client *tls, struct sp_pool **ret)
{
    struct sp_pool *p = sp_xcalloc(1, sizeof(*p));

    p->loop = loop;
    p->defer = defer;
    p->conf = conf;
    p->tls = tls;
    p->params.stream_window_bytes = limits->stream_window_bytes;
    p->params.connection_window_bytes = limits->connection_window_bytes;
    p->params.max_streams_bidi = 0; /* backends do not open request streams to us */
    p->params.idle_timeout_ns = timeouts->backend_idle_ms * SP_MS;
    p->params.handshake_timeout_ns = timeouts->connect_ms * SP_MS;
    p->limits.max_header_bytes = limits->max_header_bytes;
    p->limits.max_headers = limits->max_headers;
    p->rules.max_connections = conf->pool.max_connections_per_backend;
    p->rules.max_streams = conf->pool.max_streams_per_connection;
    p->rules.max_queue = conf->pool.max_queue;
    p->nbackends = conf->backends_count;
    p->backends = sp_xcalloc(p->nbackends, sizeof(*p->backends));
    for (size_t i = 0; i < p->nbackends; i++) {
        p->backends[i].pool = p;
        p->backends[i].conf = &conf->backends[i];
        p->backends[i].index = i;
        set_verify_name(&p->backends[i], conf->tls.server_name);
    }
    *ret = p;
    return 0;
}

void sp_pool_shutdown(struct sp_pool *p)
{
    p->shutting_down = true;
    for (size_t i = 0; i < p->nbackends; i++) {
        struct backend *be = &p->backends[i];

        fail_waiters(be, "shutdown");
        for (struct bconn *bc = be->conns; bc != NULL; bc = bc->next) {
            if (bc->ready && sp_h3_conn_active_streams(bc->h3) == 0)
                bconn_close(bc, "shutdown");
        }
    }
}

void sp_pool_free(struct sp_pool *p)
{
    if (p == NULL)
        return;
    p->shutting_down = true;
    for (size_t i = 0; i < p->nbackends; i++) {
        struct backend *be = &p->backends[i];

        fail_waiters(be, "shutdown");
        /* Each close unlinks the conn (on_conn_closed) and defers its free. */
        while (be->conns != NULL) {
            struct bconn *bc = be->conns;

            bc->closing = false;
            bconn_close(bc, "shutdown");
        }
    }
    sp_defer_run(p->defer);
    free(p->backends);
    free(p);
}

int sp_pool_acquire(struct sp_pool *p, size_t backend, struct sp_pool_waiter *w,
                    struct sp_h3_conn **ret_conn)
{
    struct backend *be = &p->backends[backend];

    for (struct bconn *bc = be->conns; bc != NULL; bc = bc->next) {
        if (has_capacity(bc)) {
            ev_timer_stop(p->loop, &bc->idle);
            *ret_conn = bc->h3;
            return 0;
        }
    }
    if (p->shutting_down ||
        !sp_pool_may_queue(&p->rules, be->nconns, be->connecting, be->qlen, p->queued))
        return -EBUSY;
    w->backend = backend;
    queue_push(be, w);
    backend_dispatch(be);
    /* Nothing had capacity above, so on_ready cannot have run synchronously. */
    return -EINPROGRESS;
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
    struct backend *be = &p->backends[backend];

    /* Idle timers restart from on_streams_available once the stream is really gone. */
    be->inflight--;
}

bool sp_pool_backend_eligible(struct sp_pool *p, size_t backend, sp_time_t now)
{
    return p->backends[backend].down_until <= now;
}

void sp_pool_backend_stats(const struct sp_pool *p, size_t backend,
                           struct sp_pool_backend_stats *ret)
{
    const struct backend *be = &p->backends[backend];

    ret->connections = be->nconns;
    ret->handshakes = be->handshakes;
    ret->inflight = be->inflight;
    ret->down = be->down_until > sp_time_now();
}
