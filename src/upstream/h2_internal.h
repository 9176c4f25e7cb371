/* h2_internal.h: what the two halves of the HTTP/2 backend protocol share; private to
 * src/upstream. h2.c owns the connection (sp_tcp transport, nghttp2 session, output buffer,
 * liveness PINGs, the sp_uconn_ops); h2_stream.c owns the request streams (request fields, body
 * provider, response sections, the sp_ustream_ops). Single-threaded: one worker. */
#ifndef SP_UPSTREAM_H2_INTERNAL_H
#define SP_UPSTREAM_H2_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "core/bodybuf.h"
#include "upstream/tcp.h"
#include "upstream/upstream.h"

struct uh2_conn;

/* Output buffer bytes beyond which nghttp2 must wait for the socket (frames stay queued in
 * nghttp2, request bodies in their sp_bodybuf). */
#define SP_UH2_OBUF_HIGH (128 * 1024)

/* One request. Lives from submit until nghttp2 closes the stream (or never sends its HEADERS, or
 * the connection dies); its sp_ustream hears on_close then and lets go. */
struct uh2_stream {
    struct uh2_conn *conn;          /* borrowed; owner */
    struct uh2_stream *prev, *next; /* conn's list */
    int32_t id;                     /* assigned by nghttp2 at submit */
    struct sp_ustream *us;          /* borrowed; NULL once cancelled (detached) */
    struct sp_fields headers;       /* final response section; bytes in refs */
    struct sp_fields trailers;      /* response trailers; bytes in refs */
    nghttp2_rcbuf **refs;           /* owned array; refs held for the fields' bytes */
    size_t nrefs, caprefs;
    struct sp_bodybuf out;    /* request body not yet framed; out.eof = no more writes */
    nghttp2_nv *out_trailers; /* owned; one block holding the nv array and its bytes */
    size_t n_out_trailers;
    uint64_t in_data;         /* response body bytes passed up in on_data */
    uint64_t in_credited;     /* of those, credit returned (consume) */
    uint64_t sent_unreported; /* request body bytes framed but not yet told (on_sent) */
    unsigned status;          /* final response status; 0 before it */
    bool deferred;            /* the body provider returned NGHTTP2_ERR_DEFERRED */
    bool headers_sent;        /* our HEADERS left: the backend may have seen the request */
    bool in_trailers;         /* receiving the trailer section */
    bool too_large;           /* a received section broke limits.max_header{s,_bytes} */
    bool malformed;           /* nghttp2 found the response malformed (RFC 9113 §8.1.1) */
    bool peer_reset;          /* the backend sent RST_STREAM */
    bool peer_ended;          /* the response is complete (END_STREAM received) */
};

struct uh2_conn {
    struct sp_tcp *tcp;                  /* owned */
    nghttp2_session *ng;                 /* owned */
    struct ev_loop *loop;                /* borrowed */
    struct sp_defer *defer;              /* borrowed; runs the coalesced flush */
    const struct sp_uconn_events *ev;    /* borrowed */
    void *ctx;                           /* borrowed; passed to ev */
    const struct sp_limits_conf *limits; /* borrowed; header limits */
    ev_timer timer;             /* until ready: SETTINGS deadline; then the liveness tick */
    double ping_interval_s;     /* liveness tick: a PING after one silent tick, close after two */
    uint8_t *obuf;              /* owned; framed bytes not yet taken by the socket */
    size_t olen, ooff, ocap;    /* obuf: end of data, first unsent byte, allocated bytes */
    size_t retry_len;           /* TLS: length of a write that returned EAGAIN (retry it as is) */
    struct uh2_stream *streams; /* owned list */
    size_t nstreams;
    sp_time_t started_ns;    /* sp_time_now() at open */
    sp_time_t handshake_ns;  /* open -> the backend's first SETTINGS */
    int32_t goaway_last_id;  /* last_stream_id of the backend's GOAWAY */
    unsigned in_ng;          /* > 0 while inside nghttp2 (no re-entry, no teardown) */
    const char *down_reason; /* teardown requested while inside nghttp2 */
    bool tcp_up;             /* sp_tcp connected (TLS done) */
    bool ready;              /* the backend's SETTINGS arrived: requests may go */
    bool goaway;             /* no new requests (GOAWAY received, or closed) */
    bool closed;             /* on_closed delivered (or about to be) */
    bool flush_scheduled;    /* a flush is queued on defer */
    bool rx_seen;            /* bytes arrived since the last liveness tick */
    bool ping_outstanding;   /* a PING is unanswered */
    bool notify_ready, notify_goaway, notify_streams; /* events to give the owner after I/O */
};

/* Queues a flush of the session for the end of this loop turn (coalesced). h2.c. */
void sp_uh2_schedule_flush(struct uh2_conn *c);

/* Appends bytes to the output buffer. h2.c. */
void sp_uh2_obuf_append(struct uh2_conn *c, const uint8_t *data, size_t len);

/* Bytes in the output buffer not yet taken by the socket. h2.c. */
size_t sp_uh2_obuf_pending(const struct uh2_conn *c);

/* More requests the backend allows now. h2.c. */
uint64_t sp_uh2_streams_left(const struct uh2_conn *c);

/* Submits a request (the sp_uconn_ops submit). Returns 0, -EAGAIN or -EPROTO. h2_stream.c. */
int sp_uh2_submit(struct uh2_conn *c, const struct sp_field *fields, size_t n, bool has_body,
                  struct sp_ustream *us);

/* nghttp2 stream events, dispatched by h2.c's session callbacks. h2_stream.c. */
void sp_uh2_stream_on_begin_headers(struct uh2_stream *s);
void sp_uh2_stream_on_header(struct uh2_stream *s, nghttp2_rcbuf *name, nghttp2_rcbuf *value);
void sp_uh2_stream_on_frame(struct uh2_stream *s, const nghttp2_frame *frame);
void sp_uh2_stream_on_data(struct uh2_stream *s, const uint8_t *data, size_t len);
/* nghttp2 closed the stream with error_code (RFC 9113 §7). Frees s. */
void sp_uh2_stream_on_close(struct uh2_stream *s, uint32_t error_code);
/* Our request HEADERS will never be sent: the backend never saw it. Frees s. */
void sp_uh2_stream_not_sent(struct uh2_stream *s);
/* The connection is gone: ends every stream (refused when never sent, else lost). */
void sp_uh2_streams_lost(struct uh2_conn *c);
/* Frees every stream without callbacks (connection free). */
void sp_uh2_streams_free(struct uh2_conn *c);
/* Tells each stream's user about request body bytes framed since the last call. */
void sp_uh2_streams_report_sent(struct uh2_conn *c);
/* Finds a stream by id in c's list (for HEADERS nghttp2 has not opened a stream for). */
struct uh2_stream *sp_uh2_stream_find(struct uh2_conn *c, int32_t id);

/* nghttp2 send_data_callback: frames request body bytes straight from the stream's bodybuf into
 * the output buffer (NGHTTP2_DATA_FLAG_NO_COPY). h2_stream.c. */
int sp_uh2_send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                     size_t length, nghttp2_data_source *source, void *user_data);

#endif
