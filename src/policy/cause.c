/* cause.c: the table of request end causes; see cause.h. */
#include "policy/cause.h"

#include <stddef.h>

static const struct sp_cause_info table[SP_CAUSE_COUNT] = {
    [SP_CAUSE_NONE] = {"-", SP_ERR_NONE, 0, false},
    [SP_CAUSE_CONNECT] = {"connect", SP_ERR_BACKEND_CONNECT, 502, true},
    [SP_CAUSE_HANDSHAKE] = {"handshake", SP_ERR_BACKEND_CONNECT, 502, true},
    [SP_CAUSE_REFUSED] = {"refused", SP_ERR_BACKEND_CONNECT, 502, true},
    [SP_CAUSE_RESET] = {"reset", SP_ERR_BACKEND_PROTOCOL, 502, false},
    [SP_CAUSE_PROTOCOL] = {"protocol", SP_ERR_BACKEND_PROTOCOL, 502, false},
    [SP_CAUSE_CONN_LOST] = {"conn_lost", SP_ERR_BACKEND_PROTOCOL, 502, false},
    [SP_CAUSE_TIMEOUT] = {"timeout", SP_ERR_BACKEND_TIMEOUT, 504, false},
    [SP_CAUSE_TRY_TIMEOUT] = {"try_timeout", SP_ERR_BACKEND_TIMEOUT, 504, false},
    [SP_CAUSE_BACKEND_BODY_TIMEOUT] = {"backend_body_timeout", SP_ERR_BACKEND_TIMEOUT, 504, false},
    [SP_CAUSE_REQUEST_TIMEOUT] = {"request_timeout", SP_ERR_BACKEND_TIMEOUT, 504, false},
    /* RFC 9110 §15.5.9: the client did not finish its request in time. */
    [SP_CAUSE_CLIENT_BODY_TIMEOUT] = {"client_body_timeout", SP_ERR_CLIENT_TIMEOUT, 408, false},
    [SP_CAUSE_CLIENT_ABORT] = {"client_abort", SP_ERR_CLIENT_ABORT, 499, false},
    [SP_CAUSE_INVALID_REQUEST] = {"invalid_request", SP_ERR_CLIENT_INVALID, 400, true},
    [SP_CAUSE_BODY_TOO_LARGE] = {"body_too_large", SP_ERR_CLIENT_INVALID, 413, false},
    [SP_CAUSE_NO_ROUTE] = {"no_route", SP_ERR_CLIENT_INVALID, 404, true},
    [SP_CAUSE_CONNECT_UNSUPPORTED] = {"connect_unsupported", SP_ERR_CLIENT_INVALID, 501, true},
    /* RFC 9110 §15.6.4: 503 with retry-after for our own temporary refusals. */
    [SP_CAUSE_NO_BACKEND] = {"no_backend", SP_ERR_INTERNAL, 503, true},
    [SP_CAUSE_BREAKER_OPEN] = {"breaker_open", SP_ERR_INTERNAL, 503, true},
    [SP_CAUSE_QUEUE_FULL] = {"queue_full", SP_ERR_INTERNAL, 503, true},
    [SP_CAUSE_SHUTDOWN] = {"shutdown", SP_ERR_INTERNAL, 503, true},
};

static const struct sp_cause_info unknown = {"unknown", SP_ERR_INTERNAL, 500, false};

const struct sp_cause_info *sp_cause_info(enum sp_cause c)
{
    return (unsigned)c < SP_CAUSE_COUNT ? &table[c] : &unknown;
}

const char *sp_cause_name(enum sp_cause c)
{
    return sp_cause_info(c)->name;
}

enum sp_err_class sp_cause_class(enum sp_cause c)
{
    return sp_cause_info(c)->cls;
}
