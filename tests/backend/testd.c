/* spooky-testd: our own HTTP/3 test backend, built on spooky's HTTP/3 server modules, for the
 * behaviours the third-party servers lack: echo of headers and body, delays, resets, trailers,
 * chosen statuses and a /stats endpoint counting handshakes. Usage:
 *   spooky-testd --address 127.0.0.1 --port P --cert C --key K --id NAME [--delay-ms N]
 *                [--fail-status CODE]
 * Endpoints: GET /size/N, POST|PUT /echo, /headers, /delay/MS, /reset, /reset-after/N,
 * /stall-after/N (N bytes then silence), /early/N (N bytes at once, then STOP_SENDING of the
 * request body with H3_NO_ERROR), /trailers, /status/CODE, /stats, /goaway (answers, then
 * sends GOAWAY), /goaway-final (answers, then sends the final GOAWAY: requests it has not received
 * yet are rejected with H3_REQUEST_REJECTED); any other path answers 200 "hello from NAME: METHOD
 * PATH". Every response carries
 * x-backend-id: NAME.
 * --delay-ms N makes a uniformly slow backend: every request, whatever its endpoint, is held N ms
 * from its arrival before it is acted on (answered, reset, or its own /delay/MS started); an /echo
 * body arriving meanwhile is kept (flow control bounds it) and echoed once the hold ends.
 * --fail-status CODE (200..599) makes a failing backend: every request that would get the "hello"
 * answer (any path not listed above) gets status CODE with body "failing: NAME" instead, so one
 * backend of a pool can answer 500 to everything; the listed endpoints still work. */
#include "core/defer.h"
#include "core/log.h"
#include "core/util.h"
#include "http/server.h"
#include "quic/secret.h"
#include "tls/tls.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz";

struct testd {
    struct ev_loop *loop;
    const char *id;
    struct sp_h3_server *srv;
    uint64_t handshakes, requests;
    double delay_s;       /* --delay-ms: hold before acting on every request */
    unsigned fail_status; /* --fail-status: the status of every "hello" answer; 0 = 200 */
};

enum kind {
    K_SIZE,
    K_EARLY,
    K_ECHO,
    K_HEADERS,
    K_DELAY,
    K_RESET,
    K_RESET_AFTER,
    K_STALL_AFTER,
    K_TRAILERS,
    K_STATUS,
    K_STATS,
    K_GOAWAY,
    K_GOAWAY_FINAL,
    K_NOT_FOUND
};

struct treq {
    struct testd *td;
    struct sp_h3_stream *s; /* NULL once closed */
    enum kind kind;
    uint64_t arg;  /* N, MS or CODE */
    uint64_t sent; /* /size and /reset-after: bytes generated so far */
    bool responded;
    bool held;      /* --delay-ms: still waiting before acting on the request */
    bool ended;     /* the request (headers, body, trailers) is complete */
    uint8_t *early; /* /echo body received while held; owned */
    size_t early_len, early_cap;
    ev_timer timer; /* /delay, and the --delay-ms hold before it */
};

static struct testd *g_td;

static struct sp_field fstr(const char *n, const char *v)
{
    struct sp_field f = {(const uint8_t *)n, strlen(n), (const uint8_t *)v, strlen(v)};
    return f;
}

static void respond_len(struct treq *r, unsigned status, const char *ctype, bool body,
                        const char *content_length)
{
    struct sp_field f[3] = {fstr("x-backend-id", r->td->id), fstr("content-type", ctype)};
    size_t n = 2;

    if (content_length != NULL)
        f[n++] = fstr("content-length", content_length);
    r->responded = true;
    (void)sp_h3_stream_respond(r->s, status, f, n, body);
}

static void respond(struct treq *r, unsigned status, const char *ctype, bool body)
{
    respond_len(r, status, ctype, body, NULL);
}

/* Generates /size and /reset-after bytes up to a bounded amount ahead of the acks. */
static void pump(struct treq *r)
{
    static uint8_t block[26 * 2520];
    uint64_t limit = r->kind == K_SIZE || r->kind == K_EARLY || r->kind == K_RESET_AFTER ||
                             r->kind == K_STALL_AFTER
                         ? r->arg
                         : 0;

    if (block[0] == 0)
        for (size_t i = 0; i < sizeof(block); i++)
            block[i] = (uint8_t)alphabet[i % 26];
    while (r->s != NULL && r->sent < limit && sp_h3_stream_unacked(r->s) < 1024 * 1024) {
        size_t n = (size_t)SP_MIN((uint64_t)sizeof(block), limit - r->sent);

        sp_h3_stream_write(r->s, block, n);
        r->sent += n;
    }
    if (r->s == NULL || r->sent < limit)
        return;
    if (r->kind == K_SIZE || r->kind == K_EARLY) {
        sp_h3_stream_end(r->s, NULL, 0);
        r->kind = K_NOT_FOUND; /* done */
    } else if (r->kind == K_RESET_AFTER && sp_h3_stream_unacked(r->s) == 0) {
        sp_h3_stream_reset(r->s, SP_H3_INTERNAL_ERROR);
        r->kind = K_NOT_FOUND;
    }
}

static void json_str(char *out, size_t cap, size_t *off, const uint8_t *s, size_t n)
{
    *off += (size_t)snprintf(out + *off, cap - *off, "\"");
    for (size_t i = 0; i < n && *off + 8 < cap; i++) {
        if (s[i] == '"' || s[i] == '\\')
            *off += (size_t)snprintf(out + *off, cap - *off, "\\%c", s[i]);
        else if (s[i] < 0x20 || s[i] >= 0x7f)
            *off += (size_t)snprintf(out + *off, cap - *off, "\\u%04x", s[i]);
        else
            out[(*off)++] = (char)s[i];
    }
    *off += (size_t)snprintf(out + *off, cap - *off, "\"");
}

static void send_text(struct treq *r, unsigned status, const char *ctype, const char *text)
{
    char len[24];

    snprintf(len, sizeof(len), "%zu", strlen(text));
    respond_len(r, status, ctype, true, len);
    sp_h3_stream_write(r->s, (const uint8_t *)text, strlen(text));
    sp_h3_stream_end(r->s, NULL, 0);
}

static void send_headers_json(struct treq *r)
{
    const struct sp_fields *f = sp_h3_stream_headers(r->s);
    size_t cap = 1024 + f->bytes * 2, off = 0;
    char *out = sp_xmalloc(cap);

    out[off++] = '[';
    for (size_t i = 0; i < f->count; i++) {
        out[off++] = i ? ',' : '[';
        if (i)
            out[off++] = '[';
        json_str(out, cap, &off, f->items[i].name, f->items[i].name_len);
        out[off++] = ',';
        json_str(out, cap, &off, f->items[i].value, f->items[i].value_len);
        out[off++] = ']';
    }
    out[off++] = ']';
    out[off] = '\0';
    send_text(r, 200, "application/json", out);
    free(out);
}

/* Any other path: a friendly greeting naming the backend (what the demo shows). */
static void send_hello(struct treq *r)
{
    const struct sp_fields *f = sp_h3_stream_headers(r->s);
    const struct sp_field *m = sp_fields_find(f, ":method");
    const struct sp_field *p = sp_fields_find(f, ":path");
    char buf[512];

    if (r->td->fail_status != 0) {
        snprintf(buf, sizeof(buf), "failing: %s\n", r->td->id);
        send_text(r, r->td->fail_status, "text/plain", buf);
        return;
    }
    snprintf(
        buf, sizeof(buf), "hello from %s: %.*s %.*s\n", r->td->id,
        m != NULL ? (int)SP_MIN(m->value_len, 16u) : 1, m != NULL ? (const char *)m->value : "-",
        p != NULL ? (int)SP_MIN(p->value_len, 256u) : 1, p != NULL ? (const char *)p->value : "-");
    send_text(r, 200, "text/plain", buf);
}

static void finish_request(struct treq *r)
{
    char buf[160];

    switch (r->kind) {
    case K_ECHO:
        sp_h3_stream_end(r->s, NULL, 0);
        break;
    case K_TRAILERS: {
        const struct sp_fields *t = sp_h3_stream_trailers(r->s);
        struct sp_field *out = sp_xcalloc(t->count + 1, sizeof(*out));
        char **names = sp_xcalloc(t->count + 1, sizeof(*names));

        out[0] = fstr("x-trailer", "yes");
        for (size_t i = 0; i < t->count; i++) {
            names[i] = sp_xmalloc(t->items[i].name_len + 8);
            snprintf(names[i], t->items[i].name_len + 8, "x-echo-%.*s", (int)t->items[i].name_len,
                     (const char *)t->items[i].name);
            out[i + 1] = t->items[i];
            out[i + 1].name = (const uint8_t *)names[i];
            out[i + 1].name_len = strlen(names[i]);
        }
        respond(r, 200, "text/plain", true);
        sp_h3_stream_write(r->s, (const uint8_t *)"ok", 2);
        sp_h3_stream_end(r->s, out, t->count + 1);
        for (size_t i = 0; i < t->count; i++)
            free(names[i]);
        free(names);
        free(out);
        break;
    }
    case K_HEADERS:
        send_headers_json(r);
        break;
    case K_STATUS:
        snprintf(buf, sizeof(buf), "status %llu", (unsigned long long)r->arg);
        send_text(r, (unsigned)r->arg, "text/plain", buf);
        break;
    case K_STATS:
        snprintf(buf, sizeof(buf),
                 "{\"handshakes\": %llu, \"requests\": %llu, "
                 "\"connections_open\": %zu}",
                 (unsigned long long)r->td->handshakes, (unsigned long long)r->td->requests,
                 sp_h3_server_conn_count(r->td->srv));
        send_text(r, 200, "application/json", buf);
        break;
    case K_GOAWAY:
        /* RFC 9114 §5.2: answer, then tell the client this connection takes no new requests. */
        send_text(r, 200, "text/plain", "goaway\n");
        sp_h3_conn_shutdown(sp_h3_stream_conn(r->s));
        break;
    case K_GOAWAY_FINAL:
        send_text(r, 200, "text/plain", "goaway\n");
        sp_h3_conn_shutdown_final(sp_h3_stream_conn(r->s));
        break;
    case K_NOT_FOUND:
        if (!r->responded)
            send_hello(r);
        break;
    case K_SIZE:
    case K_EARLY:
    case K_DELAY:
    case K_RESET:
    case K_RESET_AFTER:
    case K_STALL_AFTER:
        break;
    }
}

static struct treq *treq_of(void *user)
{
    return user;
}

static void t_on_headers(struct sp_h3_stream *s, void *user)
{
    (void)s;
    (void)user;
}

static void t_on_data(struct sp_h3_stream *s, void *user, const uint8_t *data, size_t len)
{
    struct treq *r = treq_of(user);

    if (r->kind == K_ECHO && r->held) { /* credit comes back once it is echoed and acked */
        if (r->early_len + len > r->early_cap) {
            r->early_cap = SP_MAX(2 * r->early_cap, r->early_len + len);
            r->early = sp_xrealloc(r->early, r->early_cap);
        }
        memcpy(r->early + r->early_len, data, len);
        r->early_len += len;
        return;
    }
    if (r->kind == K_ECHO) {
        if (!r->responded)
            respond(r, 200, "application/octet-stream", true);
        /* Credit returns when the client acks the echo (t_on_sent): end-to-end backpressure. */
        sp_h3_stream_write(s, data, len);
        return;
    }
    sp_h3_stream_consume(s, len);
}

static void t_on_trailers(struct sp_h3_stream *s, void *user)
{
    (void)s;
    (void)user;
}

static void t_on_end(struct sp_h3_stream *s, void *user)
{
    struct treq *r = treq_of(user);

    (void)s;
    r->ended = true;
    if (r->held)
        return; /* on_hold_end finishes it */
    if (r->kind == K_ECHO && !r->responded)
        respond(r, 200, "application/octet-stream", true);
    if (r->kind != K_SIZE && r->kind != K_EARLY && r->kind != K_DELAY && r->kind != K_RESET &&
        r->kind != K_RESET_AFTER && r->kind != K_STALL_AFTER)
        finish_request(r);
}

static void t_on_sent(struct sp_h3_stream *s, void *user, uint64_t len)
{
    struct treq *r = treq_of(user);

    if (r->kind == K_ECHO) {
        sp_h3_stream_consume(s, len);
        return;
    }
    pump(r);
}

static void t_on_close(struct sp_h3_stream *s, void *user, uint64_t app_error)
{
    struct treq *r = treq_of(user);

    (void)s;
    (void)app_error;
    ev_timer_stop(r->td->loop, &r->timer);
    free(r->early);
    free(r);
}

static const struct sp_h3_stream_ops treq_ops = {
    .on_headers = t_on_headers,
    .on_data = t_on_data,
    .on_trailers = t_on_trailers,
    .on_end = t_on_end,
    .on_sent = t_on_sent,
    .on_close = t_on_close,
};

static void on_delay(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct treq *r = SP_CONTAINER_OF(w, struct treq, timer);

    (void)loop;
    (void)revents;
    send_text(r, 200, "text/plain", "ok");
}

static bool path_arg(const char *path, size_t len, const char *prefix, uint64_t *arg)
{
    size_t n = strlen(prefix);
    char num[24];

    if (len <= n || len - n >= sizeof(num) || memcmp(path, prefix, n) != 0)
        return false;
    memcpy(num, path + n, len - n);
    num[len - n] = '\0';
    *arg = strtoull(num, NULL, 10);
    return true;
}

static enum kind classify(const struct sp_field *p, uint64_t *arg)
{
    const char *path = p != NULL ? (const char *)p->value : "";
    size_t len = p != NULL ? p->value_len : 0;
    const char *q = memchr(path, '?', len);

    if (q != NULL)
        len = (size_t)(q - path);
    if (path_arg(path, len, "/size/", arg))
        return K_SIZE;
    if (path_arg(path, len, "/delay/", arg))
        return K_DELAY;
    if (path_arg(path, len, "/reset-after/", arg))
        return K_RESET_AFTER;
    if (path_arg(path, len, "/stall-after/", arg))
        return K_STALL_AFTER;
    if (path_arg(path, len, "/early/", arg))
        return K_EARLY;
    if (path_arg(path, len, "/status/", arg))
        return *arg >= 200 && *arg <= 599 ? K_STATUS : K_NOT_FOUND;
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(path, lit, len) == 0)
    if (IS("/echo"))
        return K_ECHO;
    if (IS("/headers"))
        return K_HEADERS;
    if (IS("/reset"))
        return K_RESET;
    if (IS("/trailers"))
        return K_TRAILERS;
    if (IS("/stats"))
        return K_STATS;
    if (IS("/goaway"))
        return K_GOAWAY;
    if (IS("/goaway-final"))
        return K_GOAWAY_FINAL;
#undef IS
    return K_NOT_FOUND;
}

/* Acts on a request as it arrives (or once its --delay-ms hold is over). */
static void start_request(struct treq *r)
{
    struct sp_h3_stream *s = r->s;

    switch (r->kind) {
    case K_SIZE: {
        char len[24];

        snprintf(len, sizeof(len), "%llu", (unsigned long long)r->arg);
        respond_len(r, 200, "text/plain", true, len);
        pump(r);
        break;
    }
    case K_EARLY: {
        char len[24];

        /* RFC 9114 §4.1.1: a complete answer before the request body, which it then asks the
         * client to stop sending, without error. */
        snprintf(len, sizeof(len), "%llu", (unsigned long long)r->arg);
        respond_len(r, 200, "text/plain", true, len);
        pump(r);
        sp_h3_stream_stop_reading(s, SP_H3_NO_ERROR);
        break;
    }
    case K_RESET_AFTER:
        respond(r, 200, "text/plain", true);
        pump(r);
        break;
    case K_STALL_AFTER:
        /* Headers and N bytes, then silence: a backend that hangs mid-response. */
        respond(r, 200, "text/plain", true);
        pump(r);
        break;
    case K_RESET:
        sp_h3_stream_reset(s, SP_H3_INTERNAL_ERROR);
        break;
    case K_DELAY:
        ev_timer_init(&r->timer, on_delay, (double)r->arg / 1e3, 0.);
        ev_timer_start(r->td->loop, &r->timer);
        break;
    case K_ECHO:
    case K_HEADERS:
    case K_TRAILERS:
    case K_STATUS:
    case K_STATS:
    case K_GOAWAY:
    case K_GOAWAY_FINAL:
    case K_NOT_FOUND:
        break; /* answered at the end of the request (t_on_end) */
    }
}

/* The --delay-ms hold is over: act on the request as if it had only just arrived, then replay
 * what came meanwhile (an /echo body, the end of the request). */
static void on_hold_end(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct treq *r = SP_CONTAINER_OF(w, struct treq, timer);
    bool reset = r->kind == K_RESET;

    (void)loop;
    (void)revents;
    r->held = false;
    start_request(r);
    if (reset)
        return; /* the reset may have closed the stream, and freed r, already */
    if (r->kind == K_ECHO && r->early_len > 0) {
        respond(r, 200, "application/octet-stream", true);
        sp_h3_stream_write(r->s, r->early, r->early_len);
        free(r->early);
        r->early = NULL;
        r->early_len = r->early_cap = 0;
    }
    if (r->ended)
        t_on_end(r->s, r);
}

static void on_request(struct sp_h3_conn *c, struct sp_h3_stream *s, void *ctx)
{
    struct testd *td = ctx;
    struct treq *r = sp_xcalloc(1, sizeof(*r));

    (void)c;
    r->td = td;
    r->s = s;
    td->requests++;
    r->kind = classify(sp_fields_find(sp_h3_stream_headers(s), ":path"), &r->arg);
    sp_h3_stream_set_user(s, &treq_ops, r);
    if (td->delay_s > 0) {
        r->held = true;
        ev_timer_init(&r->timer, on_hold_end, td->delay_s, 0.);
        ev_timer_start(td->loop, &r->timer);
        return;
    }
    start_request(r);
}

static void on_handshake(void *ctx)
{
    struct testd *td = ctx;

    td->handshakes++;
    SP_LOG_INFO("testd", "event=handshake_completed id=%s", td->id);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static int parse_addr(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *len = sizeof(*in4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*in6);
        return 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"address", required_argument, NULL, 'a'},     {"port", required_argument, NULL, 'p'},
        {"cert", required_argument, NULL, 'c'},        {"key", required_argument, NULL, 'k'},
        {"id", required_argument, NULL, 'i'},          {"delay-ms", required_argument, NULL, 'd'},
        {"fail-status", required_argument, NULL, 'f'}, {NULL, 0, NULL, 0},
    };
    const char *addr = "127.0.0.1", *cert = NULL, *key = NULL;
    struct testd td = {.id = "testd"};
    struct sp_h3_handler handler = {
        .on_request = on_request, .on_handshake = on_handshake, .ctx = &td};
    struct sockaddr_storage ss;
    struct sp_tls_server *tls;
    struct sp_defer defer;
    ev_signal sigterm, sigint;
    unsigned port = 0;
    socklen_t sslen;
    char err[256];
    int c, rv;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            addr = optarg;
            break;
        case 'p':
            port = (unsigned)atoi(optarg);
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'i':
            td.id = optarg;
            break;
        case 'd': {
            char *end;
            unsigned long ms = strtoul(optarg, &end, 10);

            if (end == optarg || *end != '\0' || ms > 3600000) {
                fprintf(stderr, "spooky-testd: --delay-ms wants 0..3600000, got %s\n", optarg);
                return 2;
            }
            td.delay_s = (double)ms / 1e3;
            break;
        }
        case 'f': {
            char *end;
            unsigned long code = strtoul(optarg, &end, 10);

            if (end == optarg || *end != '\0' || code < 200 || code > 599) {
                fprintf(stderr, "spooky-testd: --fail-status wants 200..599, got %s\n", optarg);
                return 2;
            }
            td.fail_status = (unsigned)code;
            break;
        }
        default:
            return 2;
        }
    }
    if (cert == NULL || key == NULL || port == 0 || parse_addr(addr, port, &ss, &sslen) != 0) {
        fprintf(stderr, "usage: spooky-testd --address A --port P --cert C --key K --id NAME "
                        "[--delay-ms N] [--fail-status CODE]\n");
        return 2;
    }
    g_td = &td;
    signal(SIGPIPE, SIG_IGN);
    sp_quic_secret_init();
    if (sp_tls_server_new(cert, key, &tls, err, sizeof(err)) != 0) {
        fprintf(stderr, "spooky-testd: %s\n", err);
        return 1;
    }
    td.loop = ev_default_loop(0);
    sp_defer_init(&defer, td.loop);
    struct sp_h3_server_conf conf = {
        .addr = (struct sockaddr *)&ss,
        .addrlen = sslen,
        .tls = tls,
        .params = {.stream_window_bytes = 1 << 20,
                   .connection_window_bytes = 16 << 20,
                   .max_streams_bidi = 1000,
                   .idle_timeout_ns = 60 * SP_SEC},
        .limits = {.max_header_bytes = 1 << 20, .max_headers = 1000},
        .max_connections = 100000,
    };
    rv = sp_h3_server_new(td.loop, &defer, &conf, &handler, &td.srv);
    if (rv != 0) {
        fprintf(stderr, "spooky-testd: cannot listen: %s\n", strerror(-rv));
        return 1;
    }
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    ev_signal_init(&sigint, on_signal, SIGINT);
    ev_signal_start(td.loop, &sigterm);
    ev_signal_start(td.loop, &sigint);
    SP_LOG_INFO("testd", "event=ready id=%s port=%u", td.id, port);
    ev_run(td.loop, 0);
    sp_h3_server_free(td.srv);
    sp_defer_fini(&defer);
    sp_tls_server_free(tls);
    return 0;
}
