#include "main/worker.h"
#include "core/bodybuf.h"
#include "core/defer.h"
#include "core/log.h"
#include "core/util.h"
#include "http/server.h"
#include "proxy/proxy.h"

#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* While draining, how often we look for connections that went idle. */
#define DRAIN_POLL_S 0.05

struct sp_worker {
    unsigned id;
    const struct sp_config *cfg; /* borrowed */
    struct ev_loop *loop;        /* owned */
    struct sp_defer defer;
    struct sp_proxy *proxy;        /* owned */
    struct sp_h3_server **servers; /* owned array, one per listener */
    size_t nservers;
    ev_async stop;  /* cross-thread stop request */
    ev_timer drain; /* drain progress and deadline */
    sp_time_t deadline_ns;
    pthread_t thread;
    bool started;
};

static size_t total_conns(const struct sp_worker *w)
{
    size_t n = 0;

    for (size_t i = 0; i < w->nservers; i++)
        n += sp_h3_server_conn_count(w->servers[i]);
    return n;
}

static void on_drain(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct sp_worker *w = SP_CONTAINER_OF(t, struct sp_worker, drain);

    (void)revents;
    for (size_t i = 0; i < w->nservers; i++)
        sp_h3_server_close_idle(w->servers[i]);
    if (total_conns(w) > 0 && sp_time_now() < w->deadline_ns)
        return;
    if (total_conns(w) > 0)
        SP_LOG_WARN("main", "event=drain_timeout worker=%u connections=%zu action=close", w->id,
                    total_conns(w));
    ev_timer_stop(loop, t);
    ev_break(loop, EVBREAK_ALL);
}

static void on_stop(struct ev_loop *loop, ev_async *a, int revents)
{
    struct sp_worker *w = SP_CONTAINER_OF(a, struct sp_worker, stop);

    (void)revents;
    ev_async_stop(loop, a);
    w->deadline_ns = sp_time_now() + w->cfg->timeouts.shutdown_ms * SP_MS;
    /* RFC 9114 §5.2: GOAWAY first, then close connections as their requests finish. */
    for (size_t i = 0; i < w->nservers; i++)
        sp_h3_server_shutdown(w->servers[i]);
    sp_proxy_shutdown(w->proxy);
    ev_timer_init(&w->drain, on_drain, 0., DRAIN_POLL_S);
    ev_timer_again(loop, &w->drain);
}

int sp_worker_new(unsigned id, const struct sp_config *cfg, struct sp_tls_server *const *stls,
                  struct sp_tls_client *const *ctls, struct sp_worker **ret, char *errbuf,
                  size_t errcap)
{
    struct sp_worker *w = sp_xcalloc(1, sizeof(*w));
    int rv;

    w->id = id;
    w->cfg = cfg;
    w->loop = ev_loop_new(EVFLAG_AUTO);
    if (w->loop == NULL) {
        free(w);
        snprintf(errbuf, errcap, "cannot create event loop");
        return -ENOMEM;
    }
    sp_defer_init(&w->defer, w->loop);
    rv = sp_proxy_new(w->loop, &w->defer, cfg, ctls, &w->proxy);
    if (rv != 0) {
        snprintf(errbuf, errcap, "cannot build proxy: %s", strerror(-rv));
        goto out_free;
    }
    w->servers = sp_xcalloc(cfg->listeners_count, sizeof(*w->servers));
    for (size_t i = 0; i < cfg->listeners_count; i++) {
        const struct sp_listener_conf *lc = &cfg->listeners[i];
        struct sp_h3_server_conf sc = {
            .addr = (const struct sockaddr *)&lc->addr,
            .addrlen = lc->addrlen,
            .tls = stls[i],
            .params = {.stream_window_bytes = cfg->limits.stream_window_bytes,
                       .connection_window_bytes = cfg->limits.connection_window_bytes,
                       .max_streams_bidi = cfg->limits.max_streams_per_connection,
                       .idle_timeout_ns = cfg->timeouts.client_idle_ms * SP_MS,
                       .handshake_timeout_ns = 0},
            .limits = {.max_header_bytes = cfg->limits.max_header_bytes,
                       .max_headers = cfg->limits.max_headers},
            .max_connections = cfg->limits.max_connections,
        };

        rv = sp_h3_server_new(w->loop, &w->defer, &sc, sp_proxy_handler(w->proxy), &w->servers[i]);
        if (rv != 0) {
            snprintf(errbuf, errcap, "cannot listen on %s port %u: %s", lc->address, lc->port,
                     strerror(-rv));
            goto out_free;
        }
        w->nservers++;
    }
    ev_async_init(&w->stop, on_stop);
    ev_async_start(w->loop, &w->stop);
    *ret = w;
    return 0;

out_free:
    sp_worker_join_free(w);
    return rv;
}

static void *worker_main(void *arg)
{
    struct sp_worker *w = arg;

    sp_log_set_worker((int)w->id);
    ev_run(w->loop, 0);
    sp_bodybuf_thread_cleanup();
    return NULL;
}

int sp_worker_start(struct sp_worker *w)
{
    int rv = pthread_create(&w->thread, NULL, worker_main, w);

    if (rv != 0)
        return -rv;
    w->started = true;
    return 0;
}

void sp_worker_stop(struct sp_worker *w)
{
    ev_async_send(w->loop, &w->stop);
}

void sp_worker_join_free(struct sp_worker *w)
{
    if (w == NULL)
        return;
    if (w->started)
        (void)pthread_join(w->thread, NULL);
    for (size_t i = 0; i < w->nservers; i++)
        sp_h3_server_free(w->servers[i]);
    free(w->servers);
    sp_proxy_free(w->proxy);
    sp_defer_fini(&w->defer);
    ev_async_stop(w->loop, &w->stop);
    ev_loop_destroy(w->loop);
    free(w);
}
