/* syntax.h: the byte-level grammar of HTTP messages that every protocol spooky speaks shares:
 * tokens, field values, request targets, authorities (RFC 3986 §3.2 as RFC 9110 §4.2 restricts
 * it) and content-length values. One definition, used by the request validator (request.h) and
 * by the HTTP/1.1 codec. Pure predicates on borrowed byte strings (not NUL-terminated): no
 * allocation, no state, no logging. Any thread. */
#ifndef SP_HTTP_SYNTAX_H
#define SP_HTTP_SYNTAX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest decimal content-length accepted, in digits: 18 digits never overflow an int64. */
#define SP_SYNTAX_LENGTH_MAX_DIGITS 18

/* True when s (len bytes) is an RFC 9110 §5.6.2 token: one or more tchar. Methods and field
 * names are tokens. */
bool sp_syntax_is_token(const uint8_t *s, size_t len);

/* True when s (len bytes, possibly 0) is an RFC 9110 §5.5 field-value: visible ASCII, obs-text,
 * SP and HTAB only (never CR, LF, NUL, another control byte or DEL), and no leading or trailing
 * SP/HTAB (RFC 9113 §8.2.1 and RFC 9114 §4.2 make such a value malformed). */
bool sp_syntax_is_field_value(const uint8_t *s, size_t len);

/* True when s (len bytes) is a request-target spooky forwards (RFC 9112 §3.2, RFC 9114
 * §4.3.1): origin-form, i.e. '/' followed by visible ASCII other than '#' (a fragment is never
 * sent), or asterisk-form "*" when asterisk_ok (OPTIONS only). Never empty, never a space,
 * control byte or non-ASCII byte. */
bool sp_syntax_is_request_target(const uint8_t *s, size_t len, bool asterisk_ok);

/* True when s (len bytes) is an authority an http(s) request may carry (RFC 3986 §3.2 without
 * userinfo, as RFC 9110 §4.2.4 and RFC 9114 §4.3.1 require):
 *   host [ ":" port ]
 *   host = "[" IPv6address "]" / IPv4address / reg-name
 * reg-name: unreserved, pct-encoded and sub-delims (RFC 3986 §3.2.2), not empty (RFC 9110
 * §4.2.1), no empty label (no leading '.' or ".."; one trailing '.' is fine); a host of digits
 * and dots only must be a dotted-quad IPv4address. port: 1*DIGIT with a value of 1 to 65535.
 * Refused: userinfo ("@"), an empty host or port, IPvFuture and IPv6 zone identifiers (no
 * backend can use them), non-ASCII bytes (IDNs travel as A-labels, "xn--..."). */
bool sp_syntax_is_authority(const uint8_t *s, size_t len);

/* Parses a content-length value (RFC 9110 §8.6): 1 to SP_SYNTAX_LENGTH_MAX_DIGITS digits, no
 * sign, no whitespace, no list. Returns 0 and writes *ret_length, or -EINVAL. */
int sp_syntax_parse_length(const uint8_t *s, size_t len, uint64_t *ret_length);

#endif
