/* worker.c: one spooky-bench thread: a libev loop, its share of the connections, and the
 * requests multiplexed on them.
 *
 * Closed loop (default): every connection keeps up to -m requests in flight and starts the next
 * one as soon as one finishes. Open loop (--rate): requests are scheduled at fixed intervals
 * from a timerfd (nanosecond wake-ups, unlike libev's millisecond timers), wait in a bounded
 * backlog until a stream is free, and their latency runs from the scheduled time, so a slow
 * server cannot hide its stalls by slowing the client down (no coordinated omission).
 *
 * Like spooky-testc, callbacks from the HTTP/3 layer only record: everything that writes
 * (submitting requests, request bodies, flow-control credit, closing and freeing connections)
 * runs from an ev_prepare watcher at the end of the loop turn, so nothing re-enters ngtcp2 or
 * nghttp3 from inside their own callbacks. The connections' sends are coalesced (qc->defer):
 * everything a loop turn produced for a connection leaves in one pass at the end of the pump,
 * not one datagram per submitted request. */
#include "bench.h"
#include "histogram.h"

#include "core/bodybuf.h"
#include "core/defer.h"
#include "core/util.h"
#include "quic/conn.h"
#include "tls/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define CHUNK_BYTES (64 * 1024)           /* request body is handed over in these units */
#define BODY_INFLIGHT_BYTES (1024 * 1024) /* request body held per stream until acked */
#define TICK_S 0.05                       /* timeouts and reconnects are checked this often */
#define MAX_CONNECT_FAILURES 5            /* consecutive failed attempts before giving up */
#define RETRY_BASE_NS (100 * SP_MS)       /* reconnect backoff, doubled per failure */
#define BACKLOG_MIN 4096                  /* --rate: scheduled requests waiting for a stream */
#define BACKLOG_MAX (1u << 20)
#define RECV_BATCH 64 /* datagrams read per wake-up before writing */

struct bconn;

/* One request slot of a connection; reused for the next request once on_close came. */
struct breq {
    struct bconn *c;        /* borrowed; owner */
    struct sp_h3_stream *s; /* borrowed; NULL when free or after on_close */
    sp_time_t start_ns;     /* submit time, or the scheduled time with --rate */
    sp_time_t end_ns;       /* the response ended (on_end); 0 before */
    uint64_t unconsumed;    /* received bytes whose flow-control credit is not back yet */
    size_t body_off;        /* request body bytes handed to the stream */
    unsigned slot;          /* index in c->reqs */
    bool measured;          /* started after the warm-up: counts in the stats */
    bool timed_out;         /* we reset it for --timeout */
    bool body_done;         /* request side ended */
    bool queued;            /* in w->pending */
};

struct bconn {
    struct bench_worker *w;     /* borrowed; owner */
    struct sp_quic_endpoint ep; /* owns ep.fd, -1 between connections */
    struct sp_h3_conn *h3;      /* owned; NULL between connections */
    ev_io io;                   /* ep.fd readable */
    struct breq *reqs;          /* owned array of o->streams */
    unsigned *free_slots;       /* owned stack of free indexes into reqs */
    unsigned nfree;             /* entries in free_slots */
    unsigned failures;          /* consecutive attempts that never became ready */
    uint64_t used;              /* requests started on this connection (--conn-requests) */
    sp_time_t connect_ns;       /* this attempt began */
    sp_time_t retry_ns;         /* earliest time for the next attempt */
    bool ready;                 /* handshake done */
    bool goaway;                /* the peer sent GOAWAY: no new requests here */
    bool closed;                /* on_conn_closed came; reaped by the pump */
    bool refused;               /* ICMP said nobody listens */
    bool queued;                /* in the dispatch ring */
    bool dead;                  /* gave up reconnecting */
    bool retire;                /* --conn-requests used up and drained: close, open a new one */
    bool opened;                /* a first attempt was made (--connect-burst defers some) */
};

struct bench_worker {
    const struct bench_opts *o;      /* borrowed */
    const struct sp_tls_client *tls; /* borrowed */
    struct bench_share share;        /* this thread's part of the load */
    struct ev_loop *loop;            /* owned */
    ev_prepare pump;                 /* all deferred writes, end of each loop turn */
    struct sp_defer defer;           /* coalesced QUIC sends (qc->defer), run by the pump */
    ev_timer tick;                   /* timeouts, reconnects, hard end */
    ev_io rate_io;                   /* --rate: timerfd readable */
    int tfd;                         /* owned; --rate timerfd, -1 otherwise */
    struct bconn *conns;             /* owned array of share.conns */
    struct bconn **ring;             /* owned; dispatch queue of conns that may take more */
    size_t ring_head, ring_len;      /* queue of share.conns entries at most */
    struct breq **pending;           /* owned; requests needing credit or body */
    size_t npending, pending_cap;    /* cap is twice the slots: see process_pending */
    sp_time_t *backlog;              /* owned ring of scheduled start times (--rate) */
    size_t bl_cap, bl_head, bl_len;  /* capacity, oldest entry, entries */
    sp_time_t rate_t0;               /* --rate: schedule origin, the first handshake; 0 before */
    uint64_t sched_k;                /* --rate: requests scheduled so far (k-th due time) */
    bool sched_done;                 /* --rate: nothing more to schedule */
    size_t next_path;                /* URL cycling */
    size_t active;                   /* requests in flight on all conns */
    bool reap;                       /* a conn closed or drained: look in the pump */
    bool stopping;                   /* the run is over: closing everything */
    bool holding;                    /* --hold: the load is over, connections kept idle */
    unsigned handshaking;            /* connections whose handshake is under way */
    sp_time_t hold_end;              /* --hold: when to stop; 0 until every handshake ended */
    struct bench_stats st;           /* results */
};

/* ---- small queues -------------------------------------------------------------------------- */

static void kick(struct bench_worker *w)
{
    ev_feed_event(w->loop, &w->pump, EV_CUSTOM);
}

static void ring_push(struct bconn *c)
{
    struct bench_worker *w = c->w;

    if (c->queued)
        return;
    c->queued = true;
    w->ring[(w->ring_head + w->ring_len++) % w->share.conns] = c;
}

static struct bconn *ring_pop(struct bench_worker *w)
{
    struct bconn *c = w->ring[w->ring_head];

    w->ring_head = (w->ring_head + 1) % w->share.conns;
    w->ring_len--;
    c->queued = false;
    return c;
}

static void pending_push(struct breq *r)
{
    struct bench_worker *w = r->c->w;

    if (r->queued)
        return;
    r->queued = true;
    w->pending[w->npending++] = r;
}

static bool can_take(struct bconn *c)
{
    uint64_t limit = c->w->o->conn_requests;

    return c->h3 != NULL && c->ready && !c->goaway && !c->closed && !c->retire && c->nfree > 0 &&
           (limit == 0 || c->used < limit) && sp_h3_conn_streams_left(c->h3) > 0;
}

/* ---- accounting -------------------------------------------------------------------------- */

/* The request is over: counts it (err < 0: a complete response with `status`) and frees its
 * slot. Called from on_close or when submitting failed. */
static void req_done(struct breq *r, sp_time_t now, unsigned status, int err)
{
    struct bconn *c = r->c;
    struct bench_stats *st = &c->w->st;

    if (r->measured) {
        if (err < 0) {
            st->status[status < SP_ARRAY_LEN(st->status) ? status : 0]++;
            if (status < 400)
                st->succeeded++;
            else
                st->failed++;
            bench_hist_record(st->latency, r->end_ns - r->start_ns);
        } else {
            st->errored++;
            st->failed++;
            st->errors[err]++;
        }
        st->measure_end = SP_MAX(st->measure_end, now);
    }
    r->s = NULL;
    c->free_slots[c->nfree++] = r->slot;
    c->w->active--;
    if (c->goaway && c->nfree == c->w->o->streams)
        c->w->reap = true; /* drained after GOAWAY: close it and reconnect */
    if (c->w->o->conn_requests != 0 && c->used >= c->w->o->conn_requests &&
        c->nfree == c->w->o->streams) {
        c->retire = true; /* --conn-requests: close it and open a new one */
        c->w->reap = true;
    }
    ring_push(c);
    kick(c->w);
}

/* A scheduled request that never got a stream (--rate): counts it as errored. */
static void backlog_fail(struct bench_worker *w, sp_time_t t, int err)
{
    if (t < w->share.warmup_end)
        return;
    w->st.errored++;
    w->st.failed++;
    w->st.errors[err]++;
}

/* ---- stream callbacks (record only) ------------------------------------------------------ */

static void on_headers(struct sp_h3_stream *s, void *user)
{
    struct breq *r = user;

    (void)s;
    if (r->measured)
        bench_hist_record(r->c->w->st.ttfb, sp_time_now() - r->start_ns);
}

static void on_data(struct sp_h3_stream *s, void *user, const uint8_t *data, size_t len)
{
    struct breq *r = user;

    (void)s;
    (void)data;
    r->unconsumed += len;
    if (r->measured)
        r->c->w->st.body_bytes += len;
    pending_push(r);
}

static void on_end(struct sp_h3_stream *s, void *user)
{
    struct breq *r = user;

    (void)s;
    r->end_ns = sp_time_now();
}

static void on_sent(struct sp_h3_stream *s, void *user, uint64_t len)
{
    struct breq *r = user;

    (void)s;
    (void)len;
    if (!r->body_done)
        pending_push(r);
}

static void on_close(struct sp_h3_stream *s, void *user, uint64_t app_error)
{
    struct breq *r = user;
    bool conn_dead = sp_h3_conn_quic(sp_h3_stream_conn(s))->state == SP_QUIC_CONN_CLOSED;
    int err;

    /* A response the peer finished counts even if the stream was reset afterwards (e.g.
     * STOP_SENDING with H3_NO_ERROR for a request body it did not need, RFC 9114 §4.1). */
    if (r->end_ns != 0 && !r->timed_out) {
        req_done(r, sp_time_now(), sp_h3_stream_status(s), -1);
        return;
    }
    if (r->timed_out)
        err = BENCH_ERR_TIMEOUT;
    else if (app_error == SP_H3_REQUEST_REJECTED)
        err = BENCH_ERR_REFUSED;
    else if (conn_dead)
        err = BENCH_ERR_CONN_LOST;
    else
        err = BENCH_ERR_RESET;
    req_done(r, sp_time_now(), 0, err);
}

static const struct sp_h3_stream_ops stream_ops = {
    .on_headers = on_headers,
    .on_data = on_data,
    .on_end = on_end,
    .on_sent = on_sent,
    .on_close = on_close,
};

/* ---- requests (pump context) ------------------------------------------------------------- */

/* Hands the stream more request body while less than BODY_INFLIGHT_BYTES are unacknowledged. */
static void fill_body(struct breq *r)
{
    const struct bench_opts *o = r->c->w->o;

    while (r->s != NULL && !r->body_done && sp_h3_stream_unacked(r->s) < BODY_INFLIGHT_BYTES) {
        size_t n = SP_MIN((size_t)CHUNK_BYTES, o->body_len - r->body_off);

        if (n == 0) {
            r->body_done = true;
            sp_h3_stream_end(r->s, NULL, 0);
            return;
        }
        sp_h3_stream_write(r->s, o->body + r->body_off, n);
        r->body_off += n;
    }
}

/* Starts one request on c (can_take(c) holds) that began, or was due, at start_ns. */
static void start_request(struct bconn *c, sp_time_t start_ns)
{
    struct bench_worker *w = c->w;
    const struct bench_opts *o = w->o;
    struct breq *r = &c->reqs[c->free_slots[--c->nfree]];
    const struct sp_field *fields = o->fields[w->next_path++ % o->npaths];

    *r = (struct breq){.c = c, .slot = r->slot, .start_ns = start_ns};
    r->measured = start_ns >= w->share.warmup_end;
    r->body_done = o->body == NULL;
    c->used++;
    if (r->measured && w->o->rate == 0)
        w->st.started++; /* with --rate, counted when scheduled */
    w->active++;
    /* The stream may close inside submit (a dying connection): on_close then frees the slot. */
    if (sp_h3_conn_submit_request(c->h3, fields, o->nfields, o->body != NULL, &stream_ops, r,
                                  &r->s) != 0) {
        req_done(r, sp_time_now(), 0, BENCH_ERR_SUBMIT);
        return;
    }
    fill_body(r);
}

/* Closed loop: whether another request may start now. */
static bool closed_loop_wants(const struct bench_worker *w, sp_time_t now)
{
    if (w->stopping || now >= w->share.hard_end)
        return false;
    if (w->share.deadline != 0 && now >= w->share.deadline)
        return false;
    if (now < w->share.warmup_end || w->share.requests == 0)
        return true; /* warm-up, or -D */
    return w->st.started < w->share.requests;
}

/* Starts requests round-robin on the conns that can take them. */
static void dispatch(struct bench_worker *w)
{
    sp_time_t now = sp_time_now();

    while (w->ring_len > 0) {
        struct bconn *c;
        sp_time_t start;

        if (w->o->rate > 0 ? w->bl_len == 0 || w->stopping : !closed_loop_wants(w, now))
            return;
        c = ring_pop(w);
        if (!can_take(c))
            continue; /* on_ready, on_streams_available or a finished request re-queues it */
        start = now;
        if (w->o->rate > 0) {
            start = w->backlog[w->bl_head];
            w->bl_head = (w->bl_head + 1) % w->bl_cap;
            w->bl_len--;
        }
        start_request(c, start);
        ring_push(c);
    }
}

/* Gives back flow-control credit and feeds request bodies. Items pushed while this runs (a
 * consume can trigger callbacks) stay for the next pass, hence the list's double capacity. */
static void process_pending(struct bench_worker *w)
{
    size_t n = w->npending;

    for (size_t i = 0; i < n; i++) {
        struct breq *r = w->pending[i];
        uint64_t credit = r->unconsumed;

        r->queued = false;
        r->unconsumed = 0;
        if (r->s != NULL && credit > 0)
            sp_h3_stream_consume(r->s, credit); /* may close r->s */
        fill_body(r);
    }
    memmove(w->pending, w->pending + n, (w->npending - n) * sizeof(*w->pending));
    w->npending -= n;
    if (w->npending > 0)
        kick(w);
}

/* ---- connections ------------------------------------------------------------------------- */

static void rate_arm(struct bench_worker *w);

static void on_ready(struct sp_h3_conn *h3, void *ctx)
{
    struct bconn *c = ctx;
    sp_time_t now = sp_time_now();

    (void)h3;
    if (!c->ready) {
        c->ready = true;
        c->failures = 0;
        c->w->handshaking--;
        if (c->w->o->connect_burst != 0)
            c->w->reap = true; /* room for the next deferred connection */
        c->w->st.handshakes++;
        if (now >= c->w->share.warmup_end)
            c->w->st.handshakes_measured++;
        bench_hist_record(c->w->st.handshake, now - c->connect_ns);
        if (c->w->tfd != -1 && c->w->rate_t0 == 0) {
            c->w->rate_t0 = now; /* the schedule starts once requests can be sent */
            rate_arm(c->w);
        }
    }
    ring_push(c);
    kick(c->w);
}

static void on_goaway(struct sp_h3_conn *h3, void *ctx)
{
    struct bconn *c = ctx;

    (void)h3;
    c->goaway = true;
    c->w->st.errors[BENCH_ERR_GOAWAY]++;
    c->w->reap = true;
    kick(c->w);
}

static void on_conn_closed(struct sp_h3_conn *h3, void *ctx, const char *reason)
{
    struct bconn *c = ctx;
    struct bench_stats *st = &c->w->st;

    (void)h3;
    (void)reason;
    c->closed = true;
    ev_io_stop(c->w->loop, &c->io);
    if (!c->ready)
        c->w->handshaking--;
    if (!c->ready && c->w->stopping) {
        /* cut off by the end of the run (--conn-requests keeps opening new ones) */
    } else if (!c->ready) {
        st->errors[c->refused ? BENCH_ERR_CONNECT : BENCH_ERR_HANDSHAKE]++;
        c->failures++;
    } else if (!c->w->stopping && !c->goaway && !c->retire) {
        st->errors[BENCH_ERR_CLOSED]++;
    }
    c->w->reap = true;
    kick(c->w);
}

static const struct sp_h3_client_ops client_ops = {
    .on_ready = on_ready,
    .on_streams_available = on_ready,
    .on_goaway = on_goaway,
    .on_conn_closed = on_conn_closed,
};

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct bconn *c = SP_CONTAINER_OF(w, struct bconn, io);
    struct sp_quic_conn *qc = sp_h3_conn_quic(c->h3);
    static _Thread_local uint8_t buf[65536];
    uint64_t rx = 0;

    (void)loop;
    (void)revents;
    for (int i = 0; i < RECV_BATCH; i++) {
        ssize_t n = recv(c->ep.fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (n == -1) {
            /* ICMP port unreachable: nobody listens there, fail now rather than time out. */
            if (errno == ECONNREFUSED && !c->ready) {
                c->refused = true;
                sp_h3_conn_close(c->h3, "connection refused");
                return;
            }
            break;
        }
        rx += (uint64_t)n;
        if (sp_quic_conn_read(qc, (struct sockaddr *)&qc->remote, qc->remote_len, buf, (size_t)n,
                              0) != 0)
            return;
    }
    if (rx > 0 && sp_time_now() >= c->w->share.warmup_end)
        c->w->st.rx_bytes += rx;
    sp_quic_conn_write(qc);
}

static int open_socket(struct bconn *c)
{
    const struct bench_opts *o = c->w->o;
    int fd = socket(o->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd == -1)
        return -errno;
    if (connect(fd, (const struct sockaddr *)&o->addr, o->addr_len) == -1) {
        int rv = -errno;

        (void)close(fd);
        return rv;
    }
    c->ep.fd = fd;
    c->ep.connected = true;
    c->ep.local_len = sizeof(c->ep.local);
    (void)getsockname(fd, (struct sockaddr *)&c->ep.local, &c->ep.local_len);
    return 0;
}

/* Starts a connection attempt. A local failure counts as a connect error and backs off. */
static void conn_open(struct bconn *c)
{
    struct bench_worker *w = c->w;
    const struct sp_quic_conn_params params = {
        .stream_window_bytes = 1024 * 1024,
        .connection_window_bytes = 16 * 1024 * 1024,
        .max_streams_bidi = 0, /* the server opens no request streams to us */
        /* --hold: idle connections must outlive a slow set-up of many and the hold itself */
        .idle_timeout_ns = (uint64_t)((w->o->hold_s > 0 ? 120 + w->o->hold_s : 30) * 1e9),
        .handshake_timeout_ns = (uint64_t)(w->o->timeout_s * 1e9),
    };
    const struct sp_h3_limits lim = {.max_header_bytes = 1024 * 1024, .max_headers = 10000};
    gnutls_session_t sess;
    int rv;

    c->connect_ns = sp_time_now();
    c->opened = true;
    c->ready = c->goaway = c->closed = c->refused = c->retire = false;
    c->used = 0;
    w->st.conns_opened++;
    rv = open_socket(c);
    if (rv == 0 && sp_tls_client_session_new(w->tls, w->o->sni, NULL, &sess) != 0)
        rv = -ENOMEM;
    else if (rv == 0)
        rv = sp_h3_conn_new_client(w->loop, &c->ep, (struct sockaddr *)&w->o->addr, w->o->addr_len,
                                   &params, &lim, sess, &client_ops, c, &c->h3);
    if (rv != 0) {
        if (c->ep.fd != -1)
            (void)close(c->ep.fd);
        c->ep.fd = -1;
        w->st.errors[BENCH_ERR_CONNECT]++;
        c->failures++;
        c->dead = c->failures >= MAX_CONNECT_FAILURES;
        c->retry_ns = c->connect_ns + (RETRY_BASE_NS << SP_MIN(c->failures, 5u));
        return;
    }
    sp_h3_conn_quic(c->h3)->defer = &w->defer;
    w->handshaking++;
    ev_io_init(&c->io, on_readable, c->ep.fd, EV_READ);
    ev_io_start(w->loop, &c->io);
    sp_quic_conn_write(sp_h3_conn_quic(c->h3));
}

/* Frees a closed connection and schedules the next attempt. Pump context only. */
static void conn_release(struct bconn *c, sp_time_t now)
{
    sp_h3_conn_free(c->h3); /* every stream saw on_close already */
    c->h3 = NULL;
    (void)close(c->ep.fd);
    c->ep.fd = -1;
    c->dead = c->failures >= MAX_CONNECT_FAILURES;
    c->retry_ns = c->failures == 0 ? now : now + (RETRY_BASE_NS << SP_MIN(c->failures - 1, 5u));
}

/* --connect-burst: whether another handshake may start now. */
static bool burst_room(const struct bench_worker *w)
{
    return w->o->connect_burst == 0 || w->handshaking < w->o->connect_burst;
}

/* Closes drained GOAWAY conns, frees closed ones and reopens those whose backoff is over. */
static void reap(struct bench_worker *w, bool reconnect)
{
    sp_time_t now;

    sp_defer_run(&w->defer); /* no flush may be queued for a conn freed below */
    now = sp_time_now();
    w->reap = false;
    for (unsigned i = 0; i < w->share.conns; i++) {
        struct bconn *c = &w->conns[i];

        if (c->h3 != NULL && c->closed)
            conn_release(c, now);
        else if (c->h3 != NULL && c->goaway && c->nfree == w->o->streams)
            sp_h3_conn_close(c->h3, "goaway"); /* on_conn_closed asks for another reap */
        else if (c->h3 != NULL && c->retire)
            sp_h3_conn_close(c->h3, "conn-requests"); /* likewise */
        if (c->h3 == NULL && !c->dead && (reconnect || !c->opened) && !w->stopping &&
            now >= c->retry_ns && burst_room(w))
            conn_open(c);
    }
}

/* ---- the run ------------------------------------------------------------------------------ */

/* Whether any work is left that a connection could still do. */
static bool work_left(const struct bench_worker *w, sp_time_t now)
{
    if (w->o->rate > 0)
        return !w->sched_done || w->bl_len > 0;
    return closed_loop_wants(w, now);
}

static bool any_conn_alive(const struct bench_worker *w)
{
    for (unsigned i = 0; i < w->share.conns; i++) {
        if (!w->conns[i].dead)
            return true;
    }
    return false;
}

/* Ends the run: fails what is left, closes every connection and leaves the loop. */
static void stop(struct bench_worker *w, int err)
{
    w->stopping = true;
    while (w->bl_len > 0) {
        backlog_fail(w, w->backlog[w->bl_head], err);
        w->bl_head = (w->bl_head + 1) % w->bl_cap;
        w->bl_len--;
    }
    if (w->share.requests > 0)
        w->st.not_started = w->share.requests - SP_MIN(w->st.started, w->share.requests);
    for (unsigned i = 0; i < w->share.conns; i++) {
        struct bconn *c = &w->conns[i];

        for (unsigned j = 0; j < w->o->streams; j++) {
            if (c->reqs[j].s != NULL)
                c->reqs[j].timed_out = true; /* cut off by the end of the run */
        }
        if (c->h3 != NULL && !c->closed)
            sp_h3_conn_close(c->h3, "done"); /* streams see on_close now */
    }
    if (w->tfd != -1)
        ev_io_stop(w->loop, &w->rate_io);
    ev_timer_stop(w->loop, &w->tick);
    ev_prepare_stop(w->loop, &w->pump);
    ev_break(w->loop, EVBREAK_ALL);
}

/* --hold: the load is over; keeps the connections open without requests. Once no handshake is
 * pending any more, says so on stderr (a script can then sample the server) and stops
 * hold_s later. Connections that close meanwhile are not reopened. */
static void hold(struct bench_worker *w, sp_time_t now)
{
    unsigned open = 0;

    w->holding = true;
    if (w->hold_end != 0) {
        if (now >= w->hold_end)
            stop(w, BENCH_ERR_TIMEOUT);
        return;
    }
    for (unsigned i = 0; i < w->share.conns; i++) {
        const struct bconn *c = &w->conns[i];

        if ((c->h3 != NULL && !c->closed && !c->ready) || (!c->opened && !c->dead))
            return; /* a handshake is still under way or to come (bounded by --timeout) */
        open += c->h3 != NULL && !c->closed;
    }
    w->hold_end = now + (sp_time_t)(w->o->hold_s * 1e9);
    fprintf(stderr, "spooky-bench: thread %u: holding %u connections idle for %gs\n", w->share.id,
            open, w->o->hold_s);
    (void)fflush(stderr);
}

static void on_pump(struct ev_loop *loop, ev_prepare *p, int revents)
{
    struct bench_worker *w = SP_CONTAINER_OF(p, struct bench_worker, pump);
    sp_time_t now = sp_time_now();

    (void)loop;
    (void)revents;
    process_pending(w);
    if (w->reap)
        reap(w, !w->holding);
    dispatch(w);
    sp_defer_run(&w->defer); /* send what this turn produced */
    if (now >= w->share.hard_end)
        stop(w, BENCH_ERR_TIMEOUT);
    else if (w->holding)
        hold(w, now);
    else if (w->active == 0 && (!work_left(w, now) || !any_conn_alive(w)))
        w->o->hold_s > 0 && any_conn_alive(w) ? hold(w, now) : stop(w, BENCH_ERR_CONNECT);
}

/* Resets requests older than --timeout and expires backlog entries that waited that long. */
static void expire(struct bench_worker *w, sp_time_t now)
{
    sp_time_t limit = (sp_time_t)(w->o->timeout_s * 1e9);

    for (unsigned i = 0; i < w->share.conns; i++) {
        struct bconn *c = &w->conns[i];

        for (unsigned j = 0; c->nfree < w->o->streams && j < w->o->streams; j++) {
            struct breq *r = &c->reqs[j];

            if (r->s != NULL && !r->timed_out && now - r->start_ns > limit) {
                r->timed_out = true;
                sp_h3_stream_reset(r->s, SP_H3_REQUEST_CANCELLED); /* on_close follows */
            }
        }
    }
    while (w->bl_len > 0 && now - w->backlog[w->bl_head] > limit) {
        backlog_fail(w, w->backlog[w->bl_head], BENCH_ERR_TIMEOUT);
        w->bl_head = (w->bl_head + 1) % w->bl_cap;
        w->bl_len--;
    }
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct bench_worker *w = SP_CONTAINER_OF(t, struct bench_worker, tick);

    (void)loop;
    (void)revents;
    expire(w, sp_time_now());
    w->reap = true; /* also retries conns whose backoff is over */
    kick(w);
}

/* --rate: the k-th request is due at t0 + k / rate. */
static sp_time_t due_time(const struct bench_worker *w, uint64_t k)
{
    return w->rate_t0 + (sp_time_t)((double)k * 1e9 / w->share.rate);
}

/* --rate: moves every request due by now into the backlog. */
static void schedule_due(struct bench_worker *w, sp_time_t now)
{
    while (!w->sched_done && w->rate_t0 != 0) {
        sp_time_t t = due_time(w, w->sched_k);
        bool measured = t >= w->share.warmup_end;

        if (t > now)
            return;
        if ((w->share.deadline != 0 && t >= w->share.deadline) ||
            (w->share.requests > 0 && measured && w->st.started == w->share.requests)) {
            w->sched_done = true;
            return;
        }
        w->sched_k++;
        if (measured)
            w->st.started++;
        if (w->bl_len == w->bl_cap) {
            backlog_fail(w, t, BENCH_ERR_BACKLOG);
            continue;
        }
        w->backlog[(w->bl_head + w->bl_len++) % w->bl_cap] = t;
    }
}

/* --rate: arms the timerfd for the next due time (absolute, CLOCK_MONOTONIC like sp_time). */
static void rate_arm(struct bench_worker *w)
{
    sp_time_t t = due_time(w, w->sched_k);
    struct itimerspec its = {
        .it_value = {.tv_sec = (time_t)(t / SP_SEC), .tv_nsec = (long)(t % SP_SEC)}};

    if (w->sched_done || w->rate_t0 == 0)
        return;
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1; /* zero would disarm */
    (void)timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void on_rate(struct ev_loop *loop, ev_io *io, int revents)
{
    struct bench_worker *w = SP_CONTAINER_OF(io, struct bench_worker, rate_io);
    uint64_t expirations;

    (void)loop;
    (void)revents;
    (void)!read(w->tfd, &expirations, sizeof(expirations)); /* EAGAIN is fine */
    schedule_due(w, sp_time_now());
    rate_arm(w);
    kick(w);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void conn_init(struct bench_worker *w, struct bconn *c)
{
    unsigned m = w->o->streams;

    c->w = w;
    c->ep.fd = -1;
    c->reqs = sp_xcalloc(m, sizeof(*c->reqs));
    c->free_slots = sp_xcalloc(m, sizeof(*c->free_slots));
    for (unsigned j = 0; j < m; j++) {
        c->reqs[j].slot = j;
        c->reqs[j].c = c;
        c->free_slots[j] = m - 1 - j; /* slot 0 is used first */
    }
    c->nfree = m;
}

static void backlog_init(struct bench_worker *w)
{
    double want = w->share.rate * w->o->timeout_s * 1.25;

    w->bl_cap = want < BACKLOG_MIN ? BACKLOG_MIN : want > BACKLOG_MAX ? BACKLOG_MAX : (size_t)want;
    w->backlog = sp_xcalloc(w->bl_cap, sizeof(*w->backlog));
    w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (w->tfd == -1) {
        perror("spooky-bench: timerfd_create");
        abort(); /* no way to keep a rate without it */
    }
    ev_io_init(&w->rate_io, on_rate, w->tfd, EV_READ);
}

struct bench_worker *bench_worker_new(const struct bench_opts *o, const struct sp_tls_client *tls,
                                      const struct bench_share *share)
{
    struct bench_worker *w = sp_xcalloc(1, sizeof(*w));
    size_t slots = (size_t)share->conns * o->streams;

    w->o = o;
    w->tls = tls;
    w->share = *share;
    w->tfd = -1;
    w->loop = ev_loop_new(EVFLAG_AUTO);
    if (w->loop == NULL)
        abort(); /* only fails without memory or file descriptors */
    w->conns = sp_xcalloc(share->conns, sizeof(*w->conns));
    for (unsigned i = 0; i < share->conns; i++)
        conn_init(w, &w->conns[i]);
    w->ring = sp_xcalloc(share->conns, sizeof(*w->ring));
    w->pending_cap = 2 * slots;
    w->pending = sp_xcalloc(w->pending_cap, sizeof(*w->pending));
    if (share->rate > 0)
        backlog_init(w);
    bench_stats_init(&w->st);
    w->st.measure_start = share->warmup_end;
    sp_defer_init(&w->defer, w->loop);
    ev_prepare_init(&w->pump, on_pump);
    ev_timer_init(&w->tick, on_tick, TICK_S, TICK_S);
    return w;
}

void *bench_worker_run(void *arg)
{
    struct bench_worker *w = arg;

    for (unsigned i = 0; i < w->share.conns && burst_room(w); i++)
        conn_open(&w->conns[i]); /* the rest, if any, from reap() as handshakes end */
    ev_prepare_start(w->loop, &w->pump);
    ev_timer_start(w->loop, &w->tick);
    if (w->tfd != -1)
        ev_io_start(w->loop, &w->rate_io); /* armed by the first handshake */
    ev_run(w->loop, 0);
    sp_bodybuf_thread_cleanup(); /* this thread's spare body chunks */
    return NULL;
}

const struct bench_stats *bench_worker_stats(const struct bench_worker *w)
{
    return &w->st;
}

void bench_worker_free(struct bench_worker *w)
{
    if (w == NULL)
        return;
    sp_defer_fini(&w->defer); /* flushes first: they reference the conns */
    for (unsigned i = 0; i < w->share.conns; i++) {
        struct bconn *c = &w->conns[i];

        if (c->h3 != NULL)
            ev_io_stop(w->loop, &c->io);
        sp_h3_conn_free(c->h3);
        c->h3 = NULL;
        if (c->ep.fd != -1)
            (void)close(c->ep.fd);
        free(c->reqs);
        free(c->free_slots);
    }
    if (w->tfd != -1)
        (void)close(w->tfd);
    free(w->conns);
    free(w->ring);
    free(w->pending);
    free(w->backlog);
    bench_stats_fini(&w->st);
    if (w->loop != NULL)
        ev_loop_destroy(w->loop);
    free(w);
}
