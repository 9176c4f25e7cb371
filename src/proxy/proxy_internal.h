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
    uint64_t transitions[7][7]; /* [from][to] request state transitions (REQ_STATE_COUNT) */
};

/* Where a request is in its life (the one transition function is sp_proxy_req_enter). */
enum req_state {
    REQ_ROUTING = 0,   /* headers in: validating, routing, picking a backend */
    REQ_QUEUED = 1,    /* waiting in the pool for a stream to a backend */
    REQ_BACKOFF = 2,   /* a try failed: waiting before the next one */
    REQ_SENT = 3,      /* with a backend, before its response headers */
    REQ_STREAMING = 4, /* the backend's response is being relayed */
    REQ_ANSWERED = 5,  /* ended by spooky (its own answer or a reset): streams closing */
    REQ_FINISHED = 6,  /* logged; freed at the end of the loop turn */
};
#define REQ_STATE_COUNT 7

struct req {
    struct sp_proxy *px;          /* borrowed */
    struct sp_h3_stream *cs;      /* borrowed; client stream, NULL once closed */
    struct sp_ustream us;         /* the backend request; us.impl NULL until submitted/closed */
    struct sp_pool_waiter waiter; /* queued for a stream */
    enum req_state state;
    ev_timer deadline;         /* the one timer: the nearest deadline of the state (below) */
    struct sp_bodybuf pending; /* request body: bytes not yet sent to the current try, and
                                  while replayable every byte received (read position =
                                  what the current try has; rewound for a retry) */
    size_t up;                 /* upstream index, valid when routed */
    ssize_t be;                /* backend index or -1 */
    bool routed;               /* up is valid */
    bool req_done;             /* the client finished its request (body and trailers) */
    bool resp_started;         /* the client got a status (the backend's or spooky's) */
    bool resp_done;            /* the client's response is complete on our side */
    unsigned status;           /* status sent to the client */
    unsigned tries;            /* backends tried */
    uint64_t body_bytes;       /* request body bytes received */
    enum sp_cause cause;       /* why it ended; SP_CAUSE_NONE when fine */
    enum sp_err_class cls;     /* the request's error class (access log) */
    char *xff, *via;           /* owned; built header values */
    char *set_cookie;          /* owned; sticky cookie to set on the response, or NULL */
    struct sp_h3_conn *conn;   /* borrowed; the client connection (valid while cs is) */
    /* deadlines (ns, sp_time_now clock): each counts only in the states that say so */
    sp_time_t start_ns;    /* arrival: response_ms (QUEUED..SENT) and request_ms run from it */
    sp_time_t submit_ns;   /* the current try was sent: try_ms (SENT); 0 once reported */
    sp_time_t progress_ns; /* a body byte last moved: body_idle_ms (SENT, STREAMING),
                              stall_warn_ms (STREAMING) */
    sp_time_t backoff_ns;  /* when the next try may go (BACKOFF) */
    /* resources the current try holds, released once each (end_try, detach_upstream) */
    bool counted;                    /* the pool counts it in flight on be */
    bool admitted;                   /* it holds a breaker admission */
    bool retrying;                   /* it counts against the retry budget */
    bool stall_logged;               /* the current stall was logged; a byte ends it */
    uint64_t conn_serial;            /* the pooled connection of the current try */
    ssize_t avoid_be;                /* backend a retry should avoid (the one that failed) */
    bool replay_lost;                /* the body outgrew retries.replay_body_bytes: no replay */
    uint64_t try_acked;              /* body bytes the current try's backend acknowledged */
    uint64_t body_credited;          /* body bytes whose flow-control credit the client got */
    char *method, *authority, *path; /* owned copies for the access log */
    char request_id[129];
    char client_ip[INET6_ADDRSTRLEN];
};

/* ---- proxy.c: the lifecycle ---- */

/* The one transition function: moves r to `to`, does the state's entry bookkeeping, logs it at
 * debug, counts it, and arms the deadline timer for the new state. */
void sp_proxy_req_enter(struct req *r, enum req_state to);

/* Ends the request with cause: spooky's own answer (the cause's status) before the response
 * started, a reset client stream after; then ANSWERED (or FINISHED once nothing refers to r). */
void sp_proxy_req_fail(struct req *r, enum sp_cause cause);

/* Tries another backend when the retry rules allow (DESIGN §5); returns true when a retry is
 * scheduled (BACKOFF). conn_death names a dead connection (0 = not a connection's death). */
bool sp_proxy_req_retry(struct req *r, enum sp_cause cause, bool never_processed,
                        uint64_t conn_death);

/* Ends the current try's breaker admission, passive health and budget accounting with cls. */
void sp_proxy_req_end_try(struct req *r, enum sp_err_class cls);

/* Lets go of the backend request (cancelling it if open) and of its pool accounting. */
void sp_proxy_req_detach_upstream(struct req *r);

/* Feeds the balancer the time to response headers, or a failure. */
void sp_proxy_req_report_latency(struct req *r, bool ok);

/* Frees the request once neither stream nor the pool refers to it. */
void sp_proxy_req_maybe_finish(struct req *r);

/* A body byte moved either way: the idle and stall clocks start over. */
void sp_proxy_req_progress(struct req *r);

/* ---- relay.c: forwarding ---- */

/* The client stream's callbacks (installed at the request's arrival). */
extern const struct sp_h3_stream_ops sp_proxy_client_stream_ops;

/* Sends the request on a pooled connection's free stream: headers, the body held so far, the
 * end if the client finished. SENT on success; fails the request otherwise. */
void sp_proxy_req_submit(struct req *r, struct sp_pool_conn *c);

/* Writes a warn line for a stalled response (timeouts.stall_warn_ms) with both streams' state. */
void sp_proxy_req_log_stall(struct req *r, sp_time_t idle_ns);

/* Picks the backend for request r in upstream u: a valid sticky cookie first, then the hash key
 * (rendezvous), then the strategy alone, among the backends u->view marks eligible. May set
 * r->set_cookie. Returns 0 with *ret, or -EAGAIN when no backend is eligible. */
int sp_proxy_select_backend(struct req *r, struct upstream_rt *u, sp_time_t now, size_t *ret);

#endif
