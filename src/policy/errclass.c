/* errclass.c: names, status mapping and retry eligibility of the error classes. */
#include "policy/errclass.h"

#include <string.h>

const char *sp_err_class_name(enum sp_err_class c)
{
    switch (c) {
    case SP_ERR_NONE:
        return "none";
    case SP_ERR_CLIENT_ABORT:
        return "client_abort";
    case SP_ERR_CLIENT_TIMEOUT:
        return "client_timeout";
    case SP_ERR_CLIENT_INVALID:
        return "client_invalid";
    case SP_ERR_BACKEND_CONNECT:
        return "backend_connect";
    case SP_ERR_BACKEND_PROTOCOL:
        return "backend_protocol";
    case SP_ERR_BACKEND_TIMEOUT:
        return "backend_timeout";
    case SP_ERR_BACKEND_5XX:
        return "backend_5xx";
    case SP_ERR_INTERNAL:
        return "internal";
    }
    return "unknown";
}

bool sp_err_is_backend(enum sp_err_class c)
{
    switch (c) {
    case SP_ERR_BACKEND_CONNECT:
    case SP_ERR_BACKEND_PROTOCOL:
    case SP_ERR_BACKEND_TIMEOUT:
    case SP_ERR_BACKEND_5XX:
        return true;
    case SP_ERR_NONE:
    case SP_ERR_CLIENT_ABORT:
    case SP_ERR_CLIENT_TIMEOUT:
    case SP_ERR_CLIENT_INVALID:
    case SP_ERR_INTERNAL:
        return false;
    }
    return false;
}

bool sp_err_is_client(enum sp_err_class c)
{
    return c == SP_ERR_CLIENT_ABORT || c == SP_ERR_CLIENT_TIMEOUT || c == SP_ERR_CLIENT_INVALID;
}

unsigned sp_err_status(enum sp_err_class c)
{
    switch (c) {
    case SP_ERR_NONE:
        return 0;
    case SP_ERR_CLIENT_ABORT:
        return 499;
    case SP_ERR_CLIENT_TIMEOUT:
        return 408;
    case SP_ERR_CLIENT_INVALID:
        return 400;
    case SP_ERR_BACKEND_CONNECT:
    case SP_ERR_BACKEND_PROTOCOL:
    case SP_ERR_BACKEND_5XX:
        return 502;
    case SP_ERR_BACKEND_TIMEOUT:
        return 504;
    case SP_ERR_INTERNAL:
        return 500;
    }
    return 500;
}

bool sp_err_method_idempotent(const char *method, size_t len)
{
    /* RFC 9110 §9.2.2: the safe methods (§9.2.1: GET, HEAD, OPTIONS, TRACE) plus PUT and DELETE.
     * Method names are case-sensitive (§9.1), so "get" is not GET. */
    static const char *const idempotent[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};

    if (method == NULL)
        return false;
    for (size_t i = 0; i < sizeof(idempotent) / sizeof(idempotent[0]); i++) {
        if (strlen(idempotent[i]) == len && memcmp(idempotent[i], method, len) == 0)
            return true;
    }
    return false;
}

bool sp_err_retryable(enum sp_err_class c, bool never_processed, bool idempotent,
                      bool body_replayable, bool response_started)
{
    /* Once the client has seen part of a response, another backend's answer cannot be spliced
     * in: the failure is final whatever its class. */
    if (response_started || !sp_err_is_backend(c))
        return false;
    /* A connect failure means no request left us, so it is never-processed by definition. */
    if (never_processed || c == SP_ERR_BACKEND_CONNECT)
        return true;
    return idempotent && body_replayable;
}
