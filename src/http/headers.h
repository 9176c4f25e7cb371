/* headers.h: field rules for proxying a request or response: which fields are never forwarded,
 * and the values spooky adds (X-Forwarded-For, Via, X-Request-Id). Pure functions on byte
 * strings: no nghttp3 types, no logging, no state. Any thread. */
#ifndef SP_HTTP_HEADERS_H
#define SP_HTTP_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* Bytes needed by sp_headers_request_id_new: 32 hex digits and a NUL. */
#define SP_HEADERS_REQUEST_ID_SIZE 33

/* Longest client-supplied x-request-id we keep, in bytes. */
#define SP_HEADERS_REQUEST_ID_MAX_BYTES 128

/* Our Via entry, RFC 9110 §7.6.3: received-protocol "3" (HTTP/3), received-by "spooky". */
#define SP_HEADERS_VIA_ENTRY "3 spooky"

/* Returns true when the field `name` (len bytes, lowercase as HTTP/3 requires, not
 * NUL-terminated) must not be forwarded as is: the connection-specific fields of RFC 9110
 * §7.6.1 and RFC 9114 §4.2 (connection, keep-alive, proxy-connection, transfer-encoding,
 * upgrade, te) and host. The caller handles two of them: te may pass when its value is exactly
 * "trailers", and host is dropped when :authority is present (HTTP/3 carries it there). */
bool sp_headers_is_hop_by_hop(const uint8_t *name, size_t len);

/* Returns a newly allocated, NUL-terminated X-Forwarded-For value (the caller frees it): the
 * existing value (borrowed, existing_len bytes, optional whitespace around it trimmed) followed
 * by ", " and client_ip, or just client_ip when existing is NULL, empty or only whitespace.
 * client_ip is a NUL-terminated string, e.g. from sp_headers_format_ip. Aborts only on OOM. */
char *sp_headers_xff_append(const uint8_t *existing, size_t existing_len, const char *client_ip);

/* Returns a newly allocated, NUL-terminated Via value (the caller frees it): the existing value
 * (borrowed, trimmed as above) followed by ", 3 spooky", or just "3 spooky" when there is none.
 * Aborts only on OOM. */
char *sp_headers_via_append(const uint8_t *existing, size_t existing_len);

/* Returns true when a client-supplied x-request-id may be kept: 1 to 128 bytes, each visible
 * ASCII (0x21-0x7e). Rejects spaces, controls (CR, LF, NUL) and non-ASCII bytes, so the value is
 * safe to log and to forward. v is borrowed and need not be NUL-terminated. */
bool sp_headers_request_id_valid(const uint8_t *v, size_t len);

/* Writes a new random request id, 32 lowercase hex digits (128 bits from the system RNG) and a
 * NUL, into out. */
void sp_headers_request_id_new(char out[SP_HEADERS_REQUEST_ID_SIZE]);

/* Formats the IP address of sa (AF_INET or AF_INET6, no port) into out (cap bytes;
 * INET6_ADDRSTRLEN always suffices). IPv4-mapped IPv6 addresses are written as IPv4
 * ("::ffff:192.0.2.1" -> "192.0.2.1"), as X-Forwarded-For readers expect. Another family writes
 * "unknown"; a cap too small writes "" (when cap > 0). Returns out. */
char *sp_headers_format_ip(const struct sockaddr *sa, char *out, size_t cap);

#endif
