/* h1_codec.h: HTTP/1.1 message framing for the HTTP/1.1 backend protocol, socket-free.
 *
 * The request writer turns the fields of an HTTP/3 request into an HTTP/1.1 request head
 * (RFC 9112 §3): request line from :method and :path, Host from :authority, field names
 * lowercase, cookie fields joined (RFC 9114 §4.2.1), connection-specific fields dropped, and the
 * body framing chosen here (content-length, chunked, or none). It never emits CR, LF or NUL
 * inside a line: a request that would need them is refused with -EINVAL. The chunk encoder
 * frames body bytes of unknown length (RFC 9112 §7.1).
 *
 * The response parser (Debian's http-parser underneath) reads one response per request:
 * interim 1xx responses are skipped, HEAD/204/304 have no body, bodies are delimited by
 * content-length, chunked coding (with trailers) or connection close. It is strict: anything
 * http-parser flags, plus both content-length and transfer-encoding, a transfer coding other
 * than chunked, obs-fold, bare CR or LF, control bytes and other HTTP versions are protocol
 * errors. It reports whether the connection may carry another request.
 *
 * Pure: no clock, no socket, no logging. Single-threaded per object. */
#ifndef SP_UPSTREAM_H1_CODEC_H
#define SP_UPSTREAM_H1_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http/fields.h"

/* A growable byte buffer for framing bytes (request heads, chunk lines, trailer sections). */
struct sp_h1_buf {
    uint8_t *data; /* owned */
    size_t len;
    size_t cap;
};

/* Frees the bytes. A zeroed buffer is fine. */
void sp_h1_buf_fini(struct sp_h1_buf *b);

/* Appends n bytes (copied). Aborts only on OOM. */
void sp_h1_buf_append(struct sp_h1_buf *b, const void *data, size_t n);

/* ---- request writer ----------------------------------------------------------------------- */

/* How the request body is delimited on the wire. */
enum sp_h1_framing {
    SP_H1_FRAMING_NONE = 0,    /* no body: nothing may follow the head */
    SP_H1_FRAMING_LENGTH = 1,  /* exactly content_length bytes follow */
    SP_H1_FRAMING_CHUNKED = 2, /* chunks (sp_h1_chunk_header), then sp_h1_chunk_last */
};

struct sp_h1_request_info {
    enum sp_h1_framing framing;
    uint64_t content_length; /* LENGTH: bytes the body must have; 0 otherwise */
    bool head;               /* a HEAD request: its response has no body */
    bool idempotent;         /* GET, HEAD, OPTIONS, TRACE, PUT, DELETE (RFC 9110 §9.2.2) */
    /* The head still lacks its framing line and final CRLF: finish it with
     * sp_h1_request_head_close once it is known whether a body follows. */
    bool open;
    /* The method defines a body (POST, PUT, PATCH): an empty one is sent as
     * "content-length: 0" (RFC 9110 §8.6). */
    bool wants_length;
};

/* Appends the HTTP/1.1 request head for the HTTP/3 request `fields` (n entries, borrowed,
 * pseudo-fields included) to out. has_body says whether body bytes (or trailers) may follow:
 * with a valid content-length field the body is framed by length; without one the head is left
 * open (info->open) until the caller knows whether any body byte comes (a client that has not
 * ended its stream yet often sends none, and "transfer-encoding: chunked" on a GET is what
 * lenient servers misread). Without a body no framing field is sent except "content-length: 0"
 * for POST, PUT and PATCH. Returns 0 and fills *ret_info, or -EINVAL (out unchanged) when the
 * request cannot be written safely: a missing or invalid :method, :path or authority, CONNECT,
 * an unknown pseudo-field, a field name that is not a token, a value with CR, LF, NUL or
 * another control byte or with surrounding whitespace, differing or invalid content-length
 * values, or a content-length that contradicts has_body. The grammar is http/syntax.h's, shared
 * with the request validator (http/request.h) that runs before a backend is chosen: these
 * refusals are defence in depth. */
int sp_h1_request_head(const struct sp_field *fields, size_t n, bool has_body,
                       struct sp_h1_buf *out, struct sp_h1_request_info *ret_info);

/* Finishes an open head (info->open) in out: with a body, "transfer-encoding: chunked"
 * (info->framing CHUNKED); for an empty body, no framing (NONE, plus "content-length: 0" when
 * info->wants_length). Clears info->open. A head that is not open is left alone. */
void sp_h1_request_head_close(struct sp_h1_buf *out, struct sp_h1_request_info *info,
                              bool empty_body);

/* Longest chunk line sp_h1_chunk_header writes: CRLF, 16 hex digits, CRLF. */
#define SP_H1_CHUNK_HEADER_MAX 20

/* Writes the line that opens a chunk of len (> 0) bytes into out (at least
 * SP_H1_CHUNK_HEADER_MAX bytes), preceded by the CRLF that closes the previous chunk's data when
 * close_previous is set. Returns the bytes written. */
size_t sp_h1_chunk_header(uint64_t len, bool close_previous, uint8_t *out);

/* Appends the end of a chunked body to out: the CRLF closing the previous chunk (when
 * close_previous), the last chunk "0", the trailer section (trailers: n fields, borrowed;
 * pseudo-fields and fields not allowed in trailers, RFC 9110 §6.5.1, are dropped) and the final
 * CRLF. Returns 0, or -EINVAL (out unchanged) when a trailer has an invalid name or value. */
int sp_h1_chunk_last(const struct sp_field *trailers, size_t n, bool close_previous,
                     struct sp_h1_buf *out);

/* ---- response parser ---------------------------------------------------------------------- */

struct sp_h1_parser;

struct sp_h1_parser_limits {
    uint64_t max_header_bytes; /* per field section, RFC 9114 §4.2.2 size (name+value+32) */
    unsigned max_headers;      /* fields per section */
};

enum sp_h1_event_type {
    SP_H1_EV_NONE = 0, /* everything given was consumed; more bytes are needed */
    SP_H1_EV_HEADERS,  /* the final response head is complete: status and headers are valid */
    SP_H1_EV_DATA,     /* body bytes: data/len point into the bytes given to feed */
    SP_H1_EV_END,      /* the response is complete: trailers and keep_alive are valid */
};

struct sp_h1_event {
    enum sp_h1_event_type type;
    const uint8_t *data; /* borrowed from the caller's input; SP_H1_EV_DATA only */
    size_t len;
};

/* Creates a parser with limits (copied). Returns 0 or -ENOMEM. */
int sp_h1_parser_new(const struct sp_h1_parser_limits *lim, struct sp_h1_parser **ret);

/* Frees the parser and every field it holds. NULL is fine. */
void sp_h1_parser_free(struct sp_h1_parser *p);

/* Prepares for the response to a new request (head_request: the request was HEAD, so the
 * response has no body whatever its framing fields say). Forgets the previous response. */
void sp_h1_parser_start(struct sp_h1_parser *p, bool head_request);

/* Parses up to len bytes of response. Returns how many bytes were consumed (0..len) and the
 * event they completed in *ret_ev, or -EPROTO when the response is malformed (the parser is
 * then dead: the connection must close). Call again with the rest after each event; after
 * SP_H1_EV_END any further byte is -EPROTO (it belongs to no request). */
ssize_t sp_h1_parser_feed(struct sp_h1_parser *p, const uint8_t *data, size_t len,
                          struct sp_h1_event *ret_ev);

/* The peer closed the connection. Returns 0 with SP_H1_EV_END in *ret_ev when that ends a body
 * delimited by close; 0 with SP_H1_EV_NONE when no byte of a response had arrived; -EPROTO when
 * the response was cut short. */
int sp_h1_parser_eof(struct sp_h1_parser *p, struct sp_h1_event *ret_ev);

/* True once any byte of the current response (interim ones included) has been consumed. */
bool sp_h1_parser_started(const struct sp_h1_parser *p);

/* Status code of the final response (0 before SP_H1_EV_HEADERS). */
unsigned sp_h1_parser_status(const struct sp_h1_parser *p);

/* Response header fields, names lowercase, values trimmed, fields named by Connection removed
 * (RFC 9110 §7.6.1). Valid from SP_H1_EV_HEADERS until the next start or free. */
const struct sp_fields *sp_h1_parser_headers(const struct sp_h1_parser *p);

/* Trailer fields of a chunked response (possibly none). Valid from SP_H1_EV_END until the next
 * start or free. */
const struct sp_fields *sp_h1_parser_trailers(const struct sp_h1_parser *p);

/* After SP_H1_EV_END: true when the connection may carry another request (HTTP/1.1 persistence,
 * RFC 9112 §9.3: no "close" connection option, a body not delimited by close). */
bool sp_h1_parser_keep_alive(const struct sp_h1_parser *p);

#endif
