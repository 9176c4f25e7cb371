/* errclass.h: the one error taxonomy of a request's outcome (issue 5, DESIGN.md §5). Every
 * request ends with exactly one class; it goes into the access log, the metrics label and the
 * retry decision. Pure: no clock, no logging, no state; any thread. */
#ifndef SP_POLICY_ERRCLASS_H
#define SP_POLICY_ERRCLASS_H

#include <stdbool.h>
#include <stddef.h>

enum sp_err_class {
    SP_ERR_NONE = 0,             /* success: a complete response was relayed */
    SP_ERR_CLIENT_ABORT = 1,     /* the client went away or reset the request */
    SP_ERR_CLIENT_TIMEOUT = 2,   /* the client stalled: its upload, or reading the response */
    SP_ERR_CLIENT_INVALID = 3,   /* the client's request is malformed, too large or unroutable */
    SP_ERR_BACKEND_CONNECT = 4,  /* no connection or stream to the backend (never processed) */
    SP_ERR_BACKEND_PROTOCOL = 5, /* stream reset, GOAWAY, malformed response, connection lost */
    SP_ERR_BACKEND_TIMEOUT = 6,  /* a backend phase timed out (handshake, headers, body idle) */
    SP_ERR_BACKEND_5XX = 7,      /* the backend answered with a 5xx status */
    SP_ERR_INTERNAL = 8,         /* our own failure (caps reached, no route state, bug) */
};

/* Number of classes, for arrays indexed by class (metrics). */
#define SP_ERR_CLASS_COUNT 9

/* Returns the class's stable lower-case name for logs and metric labels ("none",
 * "client_abort", "client_timeout", "client_invalid", "backend_connect", "backend_protocol",
 * "backend_timeout", "backend_5xx", "internal"), or "unknown" for a value outside the enum.
 * Static string. */
const char *sp_err_class_name(enum sp_err_class c);

/* Returns true for the classes that count against a backend (connect, protocol, timeout, 5xx):
 * these are the failures fed to its circuit breaker and passive health. */
bool sp_err_is_backend(enum sp_err_class c);

/* Returns true for the client classes (abort, timeout, invalid): the client's fault, never
 * charged to a backend nor retried elsewhere. */
bool sp_err_is_client(enum sp_err_class c);

/* Returns the status spooky answers with when it must make the response itself: 502 for connect,
 * protocol and 5xx failures, 504 for a backend timeout, 400 for an invalid request, 408 for a
 * client that stalled (RFC 9110 §15.5.9), 499 for one that went away (never sent), 500 for an
 * internal error, 0 for SP_ERR_NONE (the backend's own response went through). */
unsigned sp_err_status(enum sp_err_class c);

/* Returns true when `method` (len bytes, not NUL-terminated, case-sensitive per RFC 9110 §9.1) is
 * idempotent per RFC 9110 §9.2.2: GET, HEAD, OPTIONS, TRACE, PUT, DELETE. */
bool sp_err_method_idempotent(const char *method, size_t len);

/* Decides whether a failed try may be retried on another backend (issue 5):
 * - never once a response byte went to the client (response_started), nor for SP_ERR_NONE, the
 *   client classes and SP_ERR_INTERNAL;
 * - a request the backend provably never processed (never_processed: refused stream,
 *   H3_REQUEST_REJECTED, REFUSED_STREAM, above a GOAWAY's last id; and every
 *   SP_ERR_BACKEND_CONNECT) is retried whatever its method and body;
 * - otherwise only an idempotent request whose body is still replayable.
 * The caller still applies the per-route maximum and the retry budget. */
bool sp_err_retryable(enum sp_err_class c, bool never_processed, bool idempotent,
                      bool body_replayable, bool response_started);

#endif
