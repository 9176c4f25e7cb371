/* proxy_internal.h: the proxy's request and upstream state, shared by the proxy's own files
 * (proxy.c: request lifecycle; select.c: backend choice). Not for other modules. */
#ifndef SP_PROXY_PROXY_INTERNAL_H
#define SP_PROXY_PROXY_INTERNAL_H

#include <arpa/inet.h>
#include <ev.h>
#include <stdbool.h>
#include <sys/types.h>

#include "config/config.h"
#include "core/bodybuf.h"
#include "core/time.h"
#include "http/h3.h"
#include "http/server.h"
#include "lb/lb.h"
#include "lb/sticky.h"
#include "policy/cause.h"
#include "policy/errclass.h"
#include "policy/retry_budget.h"
#include "proxy/router.h"
#include "upstream/pool.h"
#include "upstream/upstream.h"

/* Extra fields spooky adds to a forwarded request. */
#define ADDED_FIELDS 4

struct upstream_rt {
    const struct sp_upstream_conf *conf; /* borrowed */
    struct sp_pool *pool;                /* owned */
    struct sp_lb *lb;                    /* owned */
    struct sp_lb_backend *view;          /* owned scratch: the balancer's view */
    const char **ids;                    /* owned array of borrowed backend ids */
    bool *rtt_seeded;                    /* owned array: the balancer has the backend's RTT */
    struct sp_lb_sticky_key sticky_key;  /* borrowed bytes: conf->sticky.secret */
    struct sp_budget budget;             /* retries in flight vs requests in flight */
    uint64_t death_serial; /* the last dead connection a retry was charged for (charge_budget) */
    bool death_granted;    /* and whether the budget let its requests retry */
};

struct sp_proxy {
    struct ev_loop *loop;        /* borrowed */
    struct sp_defer *defer;      /* borrowed */
    const struct sp_config *cfg; /* borrowed */
    struct sp_router *router;    /* owned */
    struct upstream_rt *ups;     /* owned array, one per upstream */
    size_t nups;
    struct sp_h3_handler handler;
    char alt_svc[64]; /* alt-svc value, empty when disabled */
    int default_up;   /* upstream for unrouted requests, -1 = answer 404 */
    size_t inflight;
};

struct req {
    struct sp_proxy *px;          /* borrowed */
    struct sp_h3_stream *cs;      /* borrowed; client stream, NULL once closed */
    struct sp_ustream us;         /* the backend request; us.impl NULL until submitted/closed */
    struct sp_pool_waiter waiter; /* queued for a stream */
    ev_timer timer;               /* response_ms: arrival -> response headers, all tries */
    struct sp_bodybuf pending;    /* request body: bytes not yet sent to the current try, and
                                     while replayable every byte received (read position =
                                     what the current try has; rewound for a retry) */
    size_t up;                    /* upstream index, valid when routed */
    ssize_t be;                   /* backend index or -1 */
    bool routed, req_done, resp_started, resp_done, counted, finished;
    unsigned status;                 /* status sent to the client */
    unsigned tries;                  /* backends tried */
    uint64_t body_bytes;             /* request body bytes received */
    enum sp_cause cause;             /* why it ended; SP_CAUSE_NONE when fine */
    char *xff, *via;                 /* owned; built header values */
    char *set_cookie;                /* owned; sticky cookie to set on the response, or NULL */
    struct sp_h3_conn *conn;         /* borrowed; the client connection (valid while cs is) */
    sp_time_t submit_ns;             /* when the current try was sent to the backend */
    uint64_t conn_serial;            /* the pooled connection of the current try */
    ev_timer backoff;                /* delay before a retry */
    ev_timer idle;                   /* body_idle_ms: no body byte moved either way */
    ev_timer total;                  /* request_ms: the whole request */
    ev_timer try_timer;              /* try_ms: the current try, submit -> response headers */
    ev_timer stall;                  /* stall_warn_ms: checks that a started response moves */
    sp_time_t progress_ns;           /* when a body byte last moved (either direction) */
    bool stall_logged;               /* the current stall was logged; a byte ends it */
    ssize_t avoid_be;                /* backend a retry should avoid (the one that failed) */
    bool admitted;                   /* the current try holds a breaker admission */
    bool retrying;                   /* the current try counts against the retry budget */
    bool replay_lost;                /* the body outgrew retries.replay_body_bytes: no replay */
    uint64_t try_acked;              /* body bytes the current try's backend acknowledged */
    uint64_t body_credited;          /* body bytes whose flow-control credit the client got */
    enum sp_err_class cls;           /* the request's error class (access log) */
    char *method, *authority, *path; /* owned copies for the access log */
    char request_id[129];
    char client_ip[INET6_ADDRSTRLEN];
    sp_time_t start_ns;
};

/* Picks the backend for request r in upstream u: a valid sticky cookie first, then the hash key
 * (rendezvous), then the strategy alone, among the backends u->view marks eligible. May set
 * r->set_cookie. Returns 0 with *ret, or -EAGAIN when no backend is eligible. */
int sp_proxy_select_backend(struct req *r, struct upstream_rt *u, sp_time_t now, size_t *ret);

#endif
