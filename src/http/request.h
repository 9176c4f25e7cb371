/* request.h: the one check a client's request passes before spooky routes it or picks a backend.
 *
 * It accepts exactly the requests every upstream writer (HTTP/3, HTTP/2, HTTP/1.1) can forward
 * as they are, so a malformed request is the client's fault, answered 400, and never a failure
 * charged to a backend. nghttp3 already refuses much of this on receipt (RFC 9114 §4.1.2); the
 * check does not rely on it. Pure: no allocation, no state, no logging. Any thread. */
#ifndef SP_HTTP_REQUEST_H
#define SP_HTTP_REQUEST_H

#include "http/fields.h"

/* Checks the header section of one HTTP/3 request (headers: borrowed, pseudo-fields included,
 * in wire order). Returns 0 when it may be forwarded, or -EINVAL and, when ret_reason is not
 * NULL, the first rule broken in *ret_reason (a static string, safe to log):
 *   "pseudo_field"     a pseudo-field after a regular field, unknown (:protocol, :status, ...),
 *                      repeated, or :method/:scheme/:path missing (RFC 9114 §4.3, §4.3.1)
 *   "method"           :method not a token (RFC 9110 §9.1), or CONNECT (not proxied)
 *   "scheme"           :scheme not "http" or "https" (case-insensitive)
 *   "path"             :path not origin-form, or "*" for OPTIONS (syntax.h)
 *   "authority"        :authority not a valid authority (syntax.h: no userinfo, port 1-65535,
 *                      ...), or neither :authority nor host present (RFC 9114 §4.3.1)
 *   "host"             host repeated, invalid, or differing from :authority (RFC 9114 §4.3.1)
 *   "field_name"       a name that is not a lowercase token (RFC 9110 §5.1, RFC 9114 §4.2)
 *   "field_value"      a value with controls or surrounding whitespace (RFC 9110 §5.5)
 *   "connection_field" a connection-specific field, or te other than "trailers" (RFC 9114 §4.2)
 *   "content_length"   a content-length that is not a number or differs from another one
 *                      (RFC 9110 §8.6)
 * *ret_reason is left alone when the request is valid. */
int sp_request_validate(const struct sp_fields *headers, const char **ret_reason);

#endif
