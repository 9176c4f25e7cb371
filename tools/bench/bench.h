/* bench.h: what spooky-bench's parts share: the parsed options, per-thread statistics and the
 * worker (one thread, one libev loop, its own connections).
 *
 * main (bench.c) parses the options (opts.c), builds the TLS credentials once, starts one
 * worker per thread, and when they are all done merges their statistics and prints them
 * (report.c). A worker touches only its own state plus the read-only options and credentials,
 * so nothing is locked. */
#ifndef SP_BENCH_BENCH_H
#define SP_BENCH_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/time.h"
#include "http/h3.h"

struct bench_hist;
struct sp_tls_client;

/* Errors, counted where they happen. The first group are per request (each one makes the
 * request "errored"); the last group are per connection. */
enum bench_err {
    BENCH_ERR_RESET = 0,     /* the peer reset the stream (other than REQUEST_REJECTED) */
    BENCH_ERR_REFUSED = 1,   /* H3_REQUEST_REJECTED: the server never processed it */
    BENCH_ERR_CONN_LOST = 2, /* the connection died before the response was complete */
    BENCH_ERR_TIMEOUT = 3,   /* no complete response within --timeout */
    BENCH_ERR_SUBMIT = 4,    /* the request could not be submitted locally */
    BENCH_ERR_BACKLOG = 5,   /* --rate: more requests waiting than the client can hold */
    BENCH_ERR_CONNECT = 6,   /* connection: socket/connect failed or ICMP unreachable */
    BENCH_ERR_HANDSHAKE = 7, /* connection: closed or timed out before the handshake ended */
    BENCH_ERR_GOAWAY = 8,    /* connection: the peer sent GOAWAY (we reconnect) */
    BENCH_ERR_CLOSED = 9,    /* connection: closed by the peer or idle after the handshake */
    BENCH_ERR_COUNT = 10,
};

#define BENCH_ERR_FIRST_CONN BENCH_ERR_CONNECT

/* Names used in the text and JSON output, indexed by enum bench_err. */
extern const char *const bench_err_names[BENCH_ERR_COUNT];

struct bench_opts {
    /* target */
    char *host;                   /* owned; from the URL, without brackets */
    char *port;                   /* owned; decimal */
    char *authority;              /* owned; :authority as written in the URL */
    char **paths;                 /* owned array of owned strings; :path per URL, cycled */
    size_t npaths;                /* >= 1 */
    struct sockaddr_storage addr; /* resolved target */
    socklen_t addr_len;
    /* load */
    uint64_t requests; /* -n: measured requests in total; 0 with -D */
    double duration_s; /* -D: measured seconds; 0 with -n */
    unsigned conns;    /* -c, >= threads */
    unsigned streams;  /* -m: concurrent streams per connection, >= 1 */
    unsigned threads;  /* -t, >= 1 */
    double rate;       /* --rate: requests/s over all threads; 0 = closed loop */
    double warmup_s;   /* --warm-up: unmeasured seconds before measuring */
    double timeout_s;  /* --timeout: per request, and per handshake */
    double max_time_s; /* --max-time: hard bound on the whole run with -n */
    /* connections */
    uint64_t conn_requests; /* --conn-requests: requests per connection before it is closed and
                             * replaced by a new one (a new handshake); 0 = no limit */
    double hold_s;          /* --hold: keep the connections open and idle this long at the end */
    unsigned connect_burst; /* --connect-burst: handshakes under way at once per thread; 0 = all */
    /* requests */
    struct sp_field *extra; /* owned array; -H fields, bytes borrowed from argv */
    size_t nextra;
    uint8_t *body;            /* owned; -d contents, NULL without -d */
    size_t body_len;          /* bytes of body */
    char *body_len_str;       /* owned; content-length value */
    struct sp_field **fields; /* owned; per path, the complete request field list */
    size_t nfields;           /* fields per request */
    /* TLS and output */
    const char *ca;  /* borrowed (argv); NULL = system trust store */
    const char *sni; /* borrowed (argv) or host; SNI and verification name */
    bool insecure;   /* no certificate verification */
    bool json;       /* machine-readable output */
};

/* What one worker measured; merged across workers for the report. Only requests started at or
 * after the end of the warm-up count, except handshakes, which are all recorded. */
struct bench_stats {
    uint64_t started;     /* measured requests started (open loop: scheduled) */
    uint64_t succeeded;   /* complete response with status < 400 */
    uint64_t failed;      /* not succeeded: status >= 400 or errored */
    uint64_t errored;     /* no complete response (see the per-request errors) */
    uint64_t not_started; /* -n: budget left when the run gave up (no usable connection) */
    uint64_t status[600]; /* complete responses per status code */
    uint64_t errors[BENCH_ERR_COUNT];
    uint64_t conns_opened;        /* connection attempts */
    uint64_t handshakes;          /* handshakes completed */
    uint64_t handshakes_measured; /* of those, completed after the warm-up */
    uint64_t rx_bytes;            /* UDP payload bytes received while measuring */
    uint64_t body_bytes;          /* response body bytes of measured requests */
    sp_time_t measure_start;      /* when measuring began (end of warm-up) */
    sp_time_t measure_end;        /* last measured request finished; 0 if none */
    struct bench_hist *latency;   /* owned; request start (scheduled with --rate) to response end */
    struct bench_hist *ttfb;      /* owned; request start to response headers */
    struct bench_hist *handshake; /* owned; connection start to handshake done */
};

/* Parses argv into o (zeroed first), resolves the target and loads the body. Prints the reason
 * to stderr on error. Returns 0, 1 for --help/--version (printed), or -EINVAL. Main thread. */
int bench_opts_parse(struct bench_opts *o, int argc, char **argv);
void bench_opts_fini(struct bench_opts *o); /* zeroed is fine */

/* Allocates empty histograms into st (zeroed first). */
void bench_stats_init(struct bench_stats *st);
void bench_stats_fini(struct bench_stats *st); /* zeroed is fine */

/* Adds src into dst; measure_start takes the earliest, measure_end the latest. */
void bench_stats_merge(struct bench_stats *dst, const struct bench_stats *src);

/* Prints the report to stdout, as text or (o->json) one JSON object. */
void bench_report_print(const struct bench_opts *o, const struct bench_stats *st);

struct bench_worker;

/* The share of the load one worker runs. */
struct bench_share {
    unsigned id;          /* thread index */
    unsigned conns;       /* connections, >= 1 */
    uint64_t requests;    /* -n share; 0 with -D */
    double rate;          /* --rate share in requests/s; 0 = closed loop */
    sp_time_t start;      /* the run's start */
    sp_time_t warmup_end; /* measuring begins */
    sp_time_t deadline;   /* -D: no request starts after this; 0 with -n */
    sp_time_t hard_end;   /* nothing runs after this */
};

/* Creates a worker with its own loop. o and tls are borrowed and must outlive it. Aborts on
 * OOM. Main thread. */
struct bench_worker *bench_worker_new(const struct bench_opts *o, const struct sp_tls_client *tls,
                                      const struct bench_share *share);

/* Runs the worker's load to the end in the calling thread. Always returns NULL (pthread
 * signature). */
void *bench_worker_run(void *worker);

/* The worker's statistics, valid after bench_worker_run returned. */
const struct bench_stats *bench_worker_stats(const struct bench_worker *w);

void bench_worker_free(struct bench_worker *w); /* NULL is fine */

#endif
