/* testc.c: spooky-testc, our HTTP/3 test client (contract: tests/integration/spookytest/
 * clients.py). COUNT requests, at most PARALLEL at once, on one QUIC connection, each with exactly
 * the fields given; one JSON line per finished request on stdout. Callbacks only record; all that
 * writes (requests, request body, flow-control credit) runs from an ev_prepare watcher, so nothing
 * re-enters ngtcp2 or nghttp3 from inside their own callbacks. Single-threaded.
 * --bind ADDR sends from that local address (any 127.x.y.z works on Linux loopback), so one test
 * can act as several client IPs. -H fields go out exactly as given (e.g. -H 'cookie: a=b'). */
#include "core/log.h"
#include "core/util.h"
#include "http/h3.h"
#include "quic/conn.h"
#include "quic/secret.h"
#include "tls/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#define CHUNK_BYTES (64 * 1024)      /* request body is read and written in these units */
#define INFLIGHT_BYTES (1024 * 1024) /* request body held per stream until the peer acks it */

struct opts {
    const char *ca;            /* borrowed (argv), as are the strings below */
    const char *sni;           /* TLS SNI and verification name */
    const char *connect;       /* HOST:PORT */
    const char *bind;          /* local address to send from (e.g. 127.0.0.5), NULL for any */
    const char *body_path;     /* request body file, NULL for none */
    bool insecure;             /* no certificate verification */
    bool print_body;           /* add "body" to each line */
    unsigned long count;       /* requests in total, >= 1 */
    unsigned long parallel;    /* requests at once, >= 1 */
    double timeout_s;          /* bounds the whole run */
    struct sp_fields fields;   /* request fields, in order; items owned, bytes in argv */
    struct sp_fields trailers; /* request trailers, likewise */
};

struct req {
    struct client *cl;      /* borrowed; owner */
    struct sp_h3_stream *s; /* borrowed; NULL before submit and after on_close */
    gnutls_hash_hd_t hash;  /* owned; sha256 of the response body, NULL once printed */
    uint8_t *body;          /* owned; response body, kept only with --print-body */
    size_t body_cap;        /* allocated bytes of body */
    uint64_t body_len;      /* response body bytes */
    uint64_t body_off;      /* request body bytes handed to the stream */
    uint64_t unconsumed;    /* received bytes whose flow-control credit is not back yet */
    const char *error;      /* static; a local failure to report instead of the reset */
    bool body_ended;        /* request side finished (sp_h3_stream_end or no body) */
    bool ended;             /* the peer finished the response */
    bool done;              /* its line is printed */
};

struct client {
    struct ev_loop *loop;       /* borrowed */
    const struct opts *o;       /* borrowed */
    struct sp_tls_client *tls;  /* owned */
    struct sp_quic_endpoint ep; /* owns ep.fd: a connected UDP socket */
    struct sp_h3_conn *h3;      /* owned */
    ev_io io;                   /* readable socket */
    ev_timer deadline;          /* --timeout */
    ev_prepare pump;            /* does the deferred writes at the end of each loop turn */
    int body_fd;                /* owned; -1 without --body */
    uint64_t body_size;         /* request body bytes */
    struct req *reqs;           /* owned array of o->count */
    size_t started;             /* reqs[0..started) were submitted or failed */
    size_t finished;            /* lines printed */
    size_t active;              /* streams open */
    char *close_msg;            /* owned; error for requests the closed connection never ran */
    bool ready;                 /* handshake done */
    bool goaway;                /* the peer sent GOAWAY */
    bool closed;                /* on_conn_closed came */
    int exit_code;
};

/* Writes s as a JSON string. Bytes >= 0x80 pass through (UTF-8 stays readable). */
static void json_str(const uint8_t *s, size_t len)
{
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\')
            printf("\\%c", s[i]);
        else if (s[i] < 0x20)
            printf("\\u%04x", s[i]);
        else
            putchar(s[i]);
    }
    putchar('"');
}

/* Writes the members of a [[name, value], ...] array; the status has its own key. */
static void fields_json(const struct sp_fields *f)
{
    const char *sep = "";

    for (size_t i = 0; f != NULL && i < f->count; i++) {
        const struct sp_field *x = &f->items[i];

        if (x->name_len == 7 && memcmp(x->name, ":status", 7) == 0)
            continue;
        printf("%s[", sep);
        json_str(x->name, x->name_len);
        printf(", ");
        json_str(x->value, x->value_len);
        putchar(']');
        sep = ", ";
    }
}

/* Prints the request's line and marks it done. s (NULL when never opened) is still valid here:
 * its received sections are read from it. reset is the H3 code, 0 for none. */
static void req_finish(struct req *r, struct sp_h3_stream *s, uint64_t reset, const char *error)
{
    unsigned status = s != NULL ? sp_h3_stream_status(s) : 0;
    uint8_t d[32]; /* SHA-256 */

    if (status != 0)
        printf("{\"status\": %u, \"headers\": [", status);
    else
        printf("{\"status\": null, \"headers\": [");
    fields_json(status != 0 ? sp_h3_stream_headers(s) : NULL);
    printf("], \"trailers\": [");
    fields_json(status != 0 ? sp_h3_stream_trailers(s) : NULL);
    printf("], \"body_len\": %" PRIu64 ", \"body_sha256\": \"", r->body_len);
    gnutls_hash_deinit(r->hash, d);
    r->hash = NULL;
    for (size_t i = 0; i < sizeof(d); i++)
        printf("%02x", d[i]);
    if (reset != 0)
        printf("\", \"reset\": %" PRIu64 ", \"error\": ", reset);
    else
        printf("\", \"reset\": null, \"error\": ");
    if (error != NULL)
        json_str((const uint8_t *)error, strlen(error));
    else
        printf("null");
    if (r->cl->o->print_body) {
        printf(", \"body\": ");
        json_str(r->body, r->body != NULL ? r->body_len : 0);
    }
    printf("}\n");
    (void)fflush(stdout);
    free(r->body);
    r->body = NULL;
    r->done = true;
    r->cl->finished++;
    if (error != NULL)
        r->cl->exit_code = 1;
}

/* ---- stream callbacks (record only; writes happen in on_pump) --------------------------- */

/* on_pump runs before every poll anyway, so only what happens inside on_pump itself (a stream
 * or the connection closing as it writes) needs another pass before the loop blocks. */
static void kick(struct client *cl)
{
    ev_feed_event(cl->loop, &cl->pump, EV_CUSTOM);
}

static void on_headers(struct sp_h3_stream *s, void *user)
{
    (void)s;
    (void)user; /* status and fields are read from the stream when it closes */
}

static void on_data(struct sp_h3_stream *s, void *user, const uint8_t *data, size_t len)
{
    struct req *r = user;

    (void)s;
    r->unconsumed += len;
    if (r->done) /* timed out: only the credit matters now */
        return;
    (void)gnutls_hash(r->hash, data, len);
    if (r->cl->o->print_body) {
        if (r->body_len + len > r->body_cap) {
            r->body_cap = SP_MAX(2 * r->body_cap, r->body_len + len);
            r->body = sp_xrealloc(r->body, r->body_cap);
        }
        memcpy(r->body + r->body_len, data, len);
    }
    r->body_len += len;
}

static void on_end(struct sp_h3_stream *s, void *user)
{
    struct req *r = user;

    (void)s;
    r->ended = true;
}

static void on_close(struct sp_h3_stream *s, void *user, uint64_t app_error)
{
    struct req *r = user;
    bool conn_dead = sp_h3_conn_quic(sp_h3_stream_conn(s))->state == SP_QUIC_CONN_CLOSED;

    r->s = NULL;
    r->cl->active--;
    kick(r->cl);
    if (r->done)
        return;
    if (r->error != NULL)
        req_finish(r, s, app_error, r->error);
    else if (conn_dead) /* a complete response still counts; anything else was cut off */
        req_finish(r, s, 0, r->ended ? NULL : "connection closed");
    else
        req_finish(r, s, app_error, NULL);
}

static const struct sp_h3_stream_ops stream_ops = {
    .on_headers = on_headers,
    .on_data = on_data,
    .on_end = on_end,
    .on_close = on_close,
};

/* ---- request driving -------------------------------------------------------------------- */

/* Hands the stream more request body while less than INFLIGHT_BYTES are unacknowledged. */
static void fill_body(struct req *r)
{
    static uint8_t chunk[CHUNK_BYTES];
    struct client *cl = r->cl;

    while (r->s != NULL && !r->body_ended && sp_h3_stream_unacked(r->s) < INFLIGHT_BYTES) {
        size_t want = (size_t)SP_MIN((uint64_t)CHUNK_BYTES, cl->body_size - r->body_off);
        ssize_t n;

        if (want == 0) {
            r->body_ended = true;
            sp_h3_stream_end(r->s, cl->o->trailers.items, cl->o->trailers.count);
            return;
        }
        n = pread(cl->body_fd, chunk, want, (off_t)r->body_off);
        if (n <= 0) { /* a read error, or the file shrank */
            r->error = "request body read failed";
            r->body_ended = true;
            sp_h3_stream_reset(r->s, SP_H3_REQUEST_CANCELLED);
            return;
        }
        r->body_off += (uint64_t)n;
        sp_h3_stream_write(r->s, chunk, (size_t)n);
    }
}

/* Fails the requests that were never started. */
static void fail_unstarted(struct client *cl, const char *error)
{
    while (cl->started < cl->o->count)
        req_finish(&cl->reqs[cl->started++], NULL, 0, error);
}

static void start_requests(struct client *cl)
{
    const struct opts *o = cl->o;
    bool has_body = o->body_path != NULL || o->trailers.count > 0;

    while (cl->ready && !cl->closed && cl->started < o->count && cl->active < o->parallel &&
           sp_h3_conn_streams_left(cl->h3) > 0) {
        struct req *r = &cl->reqs[cl->started++];

        r->body_ended = !has_body;
        cl->active++; /* before submitting: a dying connection may close the stream at once */
        if (sp_h3_conn_submit_request(cl->h3, o->fields.items, o->fields.count, has_body,
                                      &stream_ops, r, &r->s) != 0) {
            cl->active--;
            r->s = NULL;
            req_finish(r, NULL, 0, "submit failed");
        }
        fill_body(r);
    }
    /* RFC 9114 §5.2: after GOAWAY nothing new may start here; once the rest is done, stop. */
    if (cl->goaway && cl->active == 0)
        fail_unstarted(cl, "goaway");
}

static void on_pump(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct client *cl = SP_CONTAINER_OF(w, struct client, pump);

    (void)revents;
    for (size_t i = 0; i < cl->started; i++) {
        struct req *r = &cl->reqs[i];

        if (r->s != NULL && r->unconsumed > 0) {
            sp_h3_stream_consume(r->s, r->unconsumed); /* may close r->s */
            r->unconsumed = 0;
        }
        fill_body(r);
    }
    start_requests(cl);
    if (cl->finished < cl->o->count)
        return;
    if (!cl->closed)
        sp_h3_conn_close(cl->h3, "done");
    ev_break(loop, EVBREAK_ALL);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct client *cl = SP_CONTAINER_OF(w, struct client, deadline);

    (void)revents;
    fprintf(stderr, "spooky-testc: timeout, %zu of %lu done\n", cl->finished, cl->o->count);
    for (size_t i = 0; i < cl->o->count; i++) {
        if (!cl->reqs[i].done)
            req_finish(&cl->reqs[i], cl->reqs[i].s, 0, "timeout");
    }
    cl->started = cl->o->count;
    cl->exit_code = 1;
    if (!cl->closed)
        sp_h3_conn_close(cl->h3, "timeout");
    ev_break(loop, EVBREAK_ALL);
}

/* ---- connection ------------------------------------------------------------------------- */

/* Handshake done, or more streams allowed (which implies the former). */
static void on_ready(struct sp_h3_conn *c, void *ctx)
{
    struct client *cl = ctx;

    (void)c;
    cl->ready = true;
}

static void on_goaway(struct sp_h3_conn *c, void *ctx)
{
    struct client *cl = ctx;

    (void)c;
    cl->goaway = true;
}

static void on_conn_closed(struct sp_h3_conn *c, void *ctx, const char *reason)
{
    struct client *cl = ctx;

    (void)c;
    cl->closed = true;
    ev_io_stop(cl->loop, &cl->io);
    if (asprintf(&cl->close_msg, "connection %s: %s", cl->ready ? "closed" : "failed", reason) < 0)
        abort(); /* out of memory, like sp_xmalloc */
    if (cl->finished < cl->o->count)
        fprintf(stderr, "spooky-testc: %s\n", cl->close_msg);
    fail_unstarted(cl, cl->close_msg);
    if (!cl->ready)
        cl->exit_code = 1;
    kick(cl);
}

static const struct sp_h3_client_ops client_ops = {
    .on_ready = on_ready,
    .on_streams_available = on_ready,
    .on_goaway = on_goaway,
    .on_conn_closed = on_conn_closed,
};

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct client *cl = SP_CONTAINER_OF(w, struct client, io);
    struct sp_quic_conn *qc = sp_h3_conn_quic(cl->h3);
    static uint8_t pkt[65536];

    (void)loop;
    (void)revents;
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(cl->ep.fd, pkt, sizeof(pkt), MSG_DONTWAIT);

        if (n == -1) {
            /* ICMP port unreachable: nobody listens there, fail now rather than time out. */
            if (errno == ECONNREFUSED && !cl->ready) {
                sp_h3_conn_close(cl->h3, "connection refused");
                return;
            }
            break;
        }
        if (sp_quic_conn_read(qc, (struct sockaddr *)&qc->remote, qc->remote_len, pkt, (size_t)n,
                              0) != 0)
            return;
    }
    sp_quic_conn_write(qc);
}

/* Binds fd to the numeric address cl->o->bind (any port), so a test can be several clients. */
static int bind_local(struct client *cl, int fd, int family)
{
    struct addrinfo hints = {.ai_family = family,
                             .ai_socktype = SOCK_DGRAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE},
                    *ai;
    int rv = getaddrinfo(cl->o->bind, "0", &hints, &ai);

    if (rv != 0) {
        fprintf(stderr, "spooky-testc: --bind %s: %s\n", cl->o->bind, gai_strerror(rv));
        return -EINVAL;
    }
    rv = bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 ? -errno : 0;
    if (rv != 0)
        fprintf(stderr, "spooky-testc: --bind %s: %s\n", cl->o->bind, strerror(-rv));
    freeaddrinfo(ai);
    return rv;
}

/* Resolves HOST:PORT and connects a UDP socket to it (from --bind's address, when given). */
static int open_socket(struct client *cl, struct sockaddr_storage *ret_addr, socklen_t *ret_len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV}, *ai;
    char *host = sp_xstrdup(cl->o->connect), *port = strrchr(host, ':');
    int fd, rv = EAI_NONAME;

    if (port != NULL) {
        *port++ = '\0'; /* the last ':' splits, so a bare IPv6 literal works too */
        rv = getaddrinfo(host, port, &hints, &ai);
    }
    free(host);
    if (rv != 0) {
        fprintf(stderr, "spooky-testc: %s: %s\n", cl->o->connect, gai_strerror(rv));
        return -EINVAL;
    }
    fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    rv = fd == -1 ? -errno : 0;
    if (rv == 0 && cl->o->bind != NULL)
        rv = bind_local(cl, fd, ai->ai_family);
    if (rv == 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == -1)
        rv = -errno;
    if (rv != 0) {
        if (fd != -1)
            (void)close(fd);
        freeaddrinfo(ai);
        return rv;
    }
    memcpy(ret_addr, ai->ai_addr, ai->ai_addrlen);
    *ret_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    cl->ep.fd = fd;
    cl->ep.connected = true;
    cl->ep.local_len = sizeof(cl->ep.local);
    (void)getsockname(fd, (struct sockaddr *)&cl->ep.local, &cl->ep.local_len);
    return 0;
}

/* Builds TLS, opens the socket and starts the handshake. Returns 0 or negative errno. */
static int client_connect(struct client *cl)
{
    const struct sp_quic_conn_params params = {
        .stream_window_bytes = 1024 * 1024,
        .connection_window_bytes = 16 * 1024 * 1024,
        .max_streams_bidi = 0, /* the server opens no request streams to us */
        .idle_timeout_ns = 30 * SP_SEC,
        .handshake_timeout_ns = 10 * SP_SEC,
    };
    const struct sp_h3_limits lim = {.max_header_bytes = 1024 * 1024, .max_headers = 10000};
    char errbuf[512]; /* GnuTLS reasons are one short line */
    struct sockaddr_storage addr;
    socklen_t addr_len = 0;
    gnutls_session_t sess;
    int rv;

    rv = sp_tls_client_new(cl->o->ca, !cl->o->insecure, &cl->tls, errbuf, sizeof(errbuf));
    if (rv != 0) {
        fprintf(stderr, "spooky-testc: tls: %s\n", errbuf);
        return rv;
    }
    rv = open_socket(cl, &addr, &addr_len);
    if (rv == 0)
        rv = sp_tls_client_session_new(cl->tls, cl->o->sni, NULL, &sess);
    if (rv == 0)
        rv = sp_h3_conn_new_client(cl->loop, &cl->ep, (struct sockaddr *)&addr, addr_len, &params,
                                   &lim, sess, &client_ops, cl, &cl->h3);
    if (rv != 0)
        return rv;
    ev_io_init(&cl->io, on_readable, cl->ep.fd, EV_READ);
    ev_io_start(cl->loop, &cl->io);
    sp_quic_conn_write(sp_h3_conn_quic(cl->h3));
    return 0;
}

static const char usage[] =
    "usage: spooky-testc [--insecure] [--ca FILE] [--sni NAME] [--bind ADDR] --connect HOST:PORT\n"
    "         [-n COUNT] [-P PARALLEL] [--body FILE] [--trailer 'name: value']...\n"
    "         [--print-body] [--timeout SECONDS] -H 'name: value'...\n";

/* Splits "name: value" at the first ": " past the first byte (pseudo-field names start with
 * ':'), the way clients.py joins them. The value may be empty, or hold anything else. */
static int add_field(struct sp_fields *v, const char *arg)
{
    const char *sep = arg[0] != '\0' ? strstr(arg + 1, ": ") : NULL;

    if (sep == NULL)
        return -EINVAL;
    v->items = sp_xrealloc(v->items, (v->count + 1) * sizeof(*v->items));
    v->items[v->count++] = (struct sp_field){(const uint8_t *)arg, (size_t)(sep - arg),
                                             (const uint8_t *)sep + 2, strlen(sep + 2)};
    return 0;
}

/* Parses a positive number; counts must be whole (ret_count), the timeout need not be. */
static int parse_num(const char *s, unsigned long *ret_count, double *ret_seconds)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s || *end != '\0' || !(v > 0) || v > 1e9 || (ret_count != NULL && v != (long)v))
        return -EINVAL;
    if (ret_count != NULL)
        *ret_count = (unsigned long)v;
    else
        *ret_seconds = v;
    return 0;
}

/* Applies one option that takes a value. */
static int parse_opt(struct opts *o, const char *name, const char *v)
{
    const char **str;

    if (strcmp(name, "-H") == 0 || strcmp(name, "--trailer") == 0)
        return add_field(name[1] == 'H' ? &o->fields : &o->trailers, v);
    if (strcmp(name, "-n") == 0 || strcmp(name, "-P") == 0)
        return parse_num(v, name[1] == 'n' ? &o->count : &o->parallel, NULL);
    if (strcmp(name, "--timeout") == 0)
        return parse_num(v, NULL, &o->timeout_s);
    str = strcmp(name, "--ca") == 0        ? &o->ca
          : strcmp(name, "--sni") == 0     ? &o->sni
          : strcmp(name, "--connect") == 0 ? &o->connect
          : strcmp(name, "--bind") == 0    ? &o->bind
          : strcmp(name, "--body") == 0    ? &o->body_path
                                           : NULL;
    if (str == NULL)
        return -EINVAL;
    *str = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.sni = "localhost", .count = 1, .parallel = 1, .timeout_s = 30};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--insecure") == 0) {
            o->insecure = true;
        } else if (strcmp(argv[i], "--print-body") == 0) {
            o->print_body = true;
        } else if (i + 1 == argc || parse_opt(o, argv[i], argv[i + 1]) != 0) {
            fprintf(stderr, "spooky-testc: bad option or value: %s\n", argv[i]);
            return -EINVAL;
        } else {
            i++;
        }
    }
    if (o->connect == NULL) {
        fprintf(stderr, "spooky-testc: --connect is required\n");
        return -EINVAL;
    }
    return 0;
}

static void client_fini(struct client *cl)
{
    sp_h3_conn_free(cl->h3); /* closed by now: on_conn_closed stopped cl->io */
    cl->h3 = NULL;
    if (cl->ep.fd != -1)
        (void)close(cl->ep.fd);
    if (cl->body_fd != -1)
        (void)close(cl->body_fd);
    sp_tls_client_free(cl->tls);
    cl->tls = NULL;
    free(cl->reqs);
    cl->reqs = NULL;
    free(cl->close_msg);
    cl->close_msg = NULL;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct client cl = {.ep.fd = -1, .body_fd = -1, .o = &o, .exit_code = 2};
    struct stat st;

    if (parse_args(argc, argv, &o) != 0) {
        fputs(usage, stderr);
        goto out_fini;
    }
    sp_log_configure(SP_LOG_LEVEL_WARN, SP_LOG_FORMAT_TEXT);
    sp_quic_secret_init();
    cl.loop = ev_default_loop(0);
    if (o.body_path != NULL) {
        cl.body_fd = open(o.body_path, O_RDONLY | O_CLOEXEC);
        if (cl.body_fd == -1 || fstat(cl.body_fd, &st) == -1) {
            fprintf(stderr, "spooky-testc: %s: %s\n", o.body_path, strerror(errno));
            goto out_fini;
        }
        cl.body_size = (uint64_t)st.st_size;
    }
    cl.exit_code = 0; /* from here on, any failed request makes it 1 */
    cl.reqs = sp_xcalloc(o.count, sizeof(*cl.reqs));
    for (size_t i = 0; i < o.count; i++) {
        cl.reqs[i].cl = &cl;
        if (gnutls_hash_init(&cl.reqs[i].hash, GNUTLS_DIG_SHA256) < 0)
            abort(); /* SHA-256 is always there: this is a broken GnuTLS */
    }
    if (client_connect(&cl) != 0) {
        fprintf(stderr, "spooky-testc: cannot connect to %s\n", o.connect);
        fail_unstarted(&cl, "connect failed"); /* prints them, which frees their hashes */
        goto out_fini;
    }
    ev_prepare_init(&cl.pump, on_pump);
    ev_prepare_start(cl.loop, &cl.pump);
    ev_timer_init(&cl.deadline, on_deadline, o.timeout_s, 0);
    ev_timer_start(cl.loop, &cl.deadline);
    ev_run(cl.loop, 0);
    ev_prepare_stop(cl.loop, &cl.pump);
    ev_timer_stop(cl.loop, &cl.deadline);
out_fini:
    client_fini(&cl);
    free(o.fields.items);
    free(o.trailers.items);
    return cl.exit_code;
}
