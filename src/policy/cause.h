/* cause.h: why a request ended, the one list (the shape of nginx's NGX_HTTP_UPSTREAM_FT_*).
 * Each cause has one row: its stable name (access log `cause=`, metric labels), its error class
 * (blame and retry eligibility, policy/errclass.h), the status spooky answers with when it makes
 * the response itself, and whether a request ending so provably never reached a backend (then it
 * may go to another whatever its method). Pure: no state; any thread. */
#ifndef SP_POLICY_CAUSE_H
#define SP_POLICY_CAUSE_H

#include <stdbool.h>

#include "policy/errclass.h"

enum sp_cause {
    SP_CAUSE_NONE = 0,                 /* "-": the response went through */
    SP_CAUSE_CONNECT = 1,              /* no connection to the backend (refused, unreachable) */
    SP_CAUSE_HANDSHAKE = 2,            /* the QUIC/TLS handshake failed or timed out */
    SP_CAUSE_REFUSED = 3,              /* the backend refused the stream or was going away */
    SP_CAUSE_RESET = 4,                /* the backend reset the stream */
    SP_CAUSE_PROTOCOL = 5,             /* the backend broke the protocol */
    SP_CAUSE_CONN_LOST = 6,            /* the connection died under the request */
    SP_CAUSE_TIMEOUT = 7,              /* no response headers within response_ms */
    SP_CAUSE_TRY_TIMEOUT = 8,          /* no response headers within try_ms */
    SP_CAUSE_BACKEND_BODY_TIMEOUT = 9, /* the backend's body stopped for body_idle_ms */
    SP_CAUSE_REQUEST_TIMEOUT = 10,     /* the whole request outlived request_ms */
    SP_CAUSE_CLIENT_BODY_TIMEOUT = 11, /* the client stopped sending or reading */
    SP_CAUSE_CLIENT_ABORT = 12,        /* the client reset or left */
    SP_CAUSE_INVALID_REQUEST = 13,     /* malformed request (http/request.h) */
    SP_CAUSE_BODY_TOO_LARGE = 14,      /* limits.max_body_bytes */
    SP_CAUSE_NO_ROUTE = 15,            /* no route and no default upstream */
    SP_CAUSE_CONNECT_UNSUPPORTED = 16, /* CONNECT */
    SP_CAUSE_NO_BACKEND = 17,          /* no eligible backend */
    SP_CAUSE_BREAKER_OPEN = 18,        /* every eligible backend's breaker refused */
    SP_CAUSE_QUEUE_FULL = 19,          /* pool.max_queue or breaker.max_pending */
    SP_CAUSE_SHUTDOWN = 20,            /* spooky is shutting down */
};
#define SP_CAUSE_COUNT 21

struct sp_cause_info {
    const char *name;      /* static, stable */
    enum sp_err_class cls; /* its error class */
    unsigned status;       /* spooky's own answer; 0 for SP_CAUSE_NONE */
    bool never_processed;  /* no backend can have processed the request */
};

/* The row of cause c; c outside the enum gets an "unknown" internal row. Static storage. */
const struct sp_cause_info *sp_cause_info(enum sp_cause c);

/* Shorthands for the row's fields. */
const char *sp_cause_name(enum sp_cause c);
enum sp_err_class sp_cause_class(enum sp_cause c);

#endif
