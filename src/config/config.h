/* config.h: spooky's configuration: loading a YAML file with defaults and validation (errors
 * carry file:line), and the immutable snapshot the rest of the program reads.
 *
 * A struct sp_config is built once by sp_config_load() and never modified afterwards; workers
 * read it without locks. All strings and arrays inside are owned by the sp_config. The default,
 * range and meaning of each key are in the key table of config_schema.c (and docs/config.md). */
#ifndef SP_CONFIG_CONFIG_H
#define SP_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/log.h"
#include "lb/lb.h"

enum sp_backend_proto {
    SP_BACKEND_PROTO_H3 = 0,    /* HTTP/3 over QUIC (always TLS) */
    SP_BACKEND_PROTO_H2 = 1,    /* HTTP/2 over TLS, ALPN "h2" */
    SP_BACKEND_PROTO_H2C = 2,   /* HTTP/2 over cleartext TCP, prior knowledge (RFC 9113 §3.3) */
    SP_BACKEND_PROTO_HTTP1 = 3, /* HTTP/1.1 over TCP, cleartext or TLS (see tls) */
};

/* Where the affinity / hashing key of a request comes from. */
enum sp_hash_source {
    SP_HASH_NONE = 0,
    SP_HASH_SOURCE_IP = 1,  /* client address, masked to ipv4_prefix / ipv6_prefix bits */
    SP_HASH_HEADER = 2,     /* a request header field, by name */
    SP_HASH_COOKIE = 3,     /* a cookie, by name */
    SP_HASH_PATH = 4,       /* :path without the query */
    SP_HASH_AUTHORITY = 5,  /* :authority */
    SP_HASH_QUERY = 6,      /* a query parameter, by name */
    SP_HASH_CONNECTION = 7, /* the client's QUIC connection (its original DCID) */
};

struct sp_hash_key_conf {
    enum sp_hash_source source; /* none unless the section is present */
    char *name;                 /* owned; header/cookie/query name; NULL for the others */
    unsigned ipv4_prefix;       /* bits of an IPv4 client address kept (source_ip) */
    unsigned ipv6_prefix;       /* bits of an IPv6 client address kept (source_ip) */
};

struct sp_sticky_conf {
    bool enabled;       /* the sticky_cookie section is present */
    char *cookie_name;  /* owned; RFC 6265 token */
    char *secret;       /* owned; >= 16 bytes; signs the cookie (same on every
                           instance so a client keeps its backend across them) */
    uint64_t max_age_s; /* 0 = session cookie */
};

struct sp_listener_conf {
    char *address;                /* owned; literal IPv4/IPv6 address, e.g. "0.0.0.0", "::1" */
    uint16_t port;                /* UDP port */
    char *cert_file;              /* owned; PEM certificate chain */
    char *key_file;               /* owned; PEM private key */
    struct sockaddr_storage addr; /* resolved from address:port during validation */
    socklen_t addrlen;            /* length of addr */
    unsigned alt_svc_max_age_s;   /* alt-svc max-age advertised on responses; 0 = no alt-svc */
};

struct sp_backend_conf {
    char *id;                       /* owned; unique within the config */
    char *address;                  /* owned; "host:port" or "[v6]:port", literal IPs only */
    enum sp_backend_proto protocol; /* spoken to the backend */
    bool tls;        /* TLS to this backend; false with h3/h2 and true with h2c are config errors */
    unsigned weight; /* share of requests relative to the upstream's other backends */
    struct sockaddr_storage addr; /* resolved from address during validation */
    socklen_t addrlen;            /* length of addr */
};

struct sp_route_conf {
    char *host;        /* owned; NULL = any host; exact "a.example" or "*.example" */
    char *path_prefix; /* owned; never NULL after load */
    char **methods;    /* owned array of owned strings; NULL/0 = any method */
    size_t methods_count;
};

struct sp_upstream_tls_conf {
    char *ca_file;          /* owned; PEM CA bundle; NULL = system trust store */
    bool verify;            /* false logs a warning at start */
    char *server_name;      /* owned; SNI and name to verify; NULL = backend address host */
    char *client_cert_file; /* owned; PEM client certificate chain for mTLS; NULL = none */
    char *client_key_file;  /* owned; PEM key of client_cert_file; set exactly when it is */
};

struct sp_pool_conf {
    unsigned max_connections_per_backend; /* per worker */
    unsigned max_streams_per_connection;  /* further capped by the backend's MAX_STREAMS */
    unsigned max_queue;                   /* requests waiting for a stream, per worker and
                                             upstream; beyond it: 503 */
    uint64_t idle_timeout_ms;             /* idle pooled connection reaped */
    uint64_t keepalive_ms;  /* 0 = off: a pooled connection silent this long is probed (QUIC
                               PING, TCP keep-alive) so a dead one is found first */
    uint64_t dead_after_ms; /* 0 = off: a connection owing us an acknowledgement (QUIC:
                               max(3 PTO, this); TCP: TCP_USER_TIMEOUT) for this long is
                               declared dead and its requests fail over */
};

/* Passive health: the backend's state from the outcomes of real requests (per worker). */
struct sp_passive_health_conf {
    unsigned eject_failures;      /* consecutive failures (connect, reset, timeout, 5xx) that eject;
                                     0 = off */
    unsigned eject_5xx;           /* consecutive 5xx responses that eject; 0 = off */
    unsigned degrade_failures;    /* consecutive failures that degrade; 0 = off */
    unsigned eject_ratio_pct;     /* failure share in the window that ejects; 0 = off */
    unsigned degrade_ratio_pct;   /* failure share that degrades; 0 = off */
    unsigned min_requests;        /* outcomes the window needs before ratios count */
    uint64_t window_ms;           /* ratio window */
    unsigned degraded_weight_pct; /* weight while degraded */
    uint64_t recovery_ms;         /* first readmission delay after an ejection */
    uint64_t max_recovery_ms;     /* cap of the doubling delay */
    unsigned panic_threshold_pct; /* below this share of backends not ejected by health, all
                                     are balanced over; 0 = off */
};

/* Per-backend circuit breaker (per worker). */
struct sp_breaker_settings {
    unsigned max_failures;        /* consecutive failures that open; 0 = off */
    unsigned failure_ratio_pct;   /* failure share in the window that opens; 0 = off */
    unsigned min_requests;        /* outcomes before the ratio counts */
    uint64_t window_ms;           /* ratio window */
    uint64_t open_ms;             /* first open time */
    uint64_t max_open_ms;         /* cap of the doubling open time */
    unsigned half_open_requests;  /* trial requests at once when half-open */
    unsigned half_open_successes; /* trial successes that close */
    unsigned max_concurrent;      /* requests in flight per backend; 0 = unlimited */
    unsigned max_pending;         /* requests waiting for a connection or stream of one backend;
                                     0 = unlimited (pool.max_queue still applies) */
};

/* Retries of failed requests on another backend. */
struct sp_retry_conf {
    unsigned max;               /* tries after the first; 0 = never retry */
    unsigned budget_pct;        /* retries in flight per 100 requests in flight */
    unsigned min_retries;       /* retries in flight always allowed */
    uint64_t backoff_ms;        /* base of the jittered exponential delay */
    uint64_t max_backoff_ms;    /* cap of that delay */
    uint64_t replay_body_bytes; /* request body kept to send again on a retry; a longer body
                                   makes its request not retryable */
};

/* Active health probes (per worker, per backend): GET path over the backend's own protocol. */
struct sp_health_check_conf {
    bool enabled;         /* the health_check section is present; false = passive health only */
    char *path;           /* owned; request target, starts with "/"; NULL when disabled */
    uint64_t interval_ms; /* probe cadence */
    uint64_t timeout_ms;  /* a probe with no complete response by then fails; <= interval_ms */
    unsigned status_min;  /* expected_status range, inclusive */
    unsigned status_max;  /* its upper end */
    unsigned fall;        /* consecutive failed probes that eject */
    unsigned rise;        /* consecutive good probes that readmit */
    unsigned rtt_degrade_factor; /* a probe whose connection RTT exceeds this many times the
                                    backend's baseline (and the baseline + 5 ms) degrades it;
                                    0 = off */
    char *host;                  /* owned; :authority of probes; NULL = tls.server_name, else the
                                    backend address */
};

/* Timeouts. The global section holds all of them; an upstream's copy holds the effective values
 * for its requests (its own timeouts: keys, the global values for the keys it leaves out). */
struct sp_timeouts_conf {
    uint64_t connect_ms;      /* backend QUIC handshake must finish */
    uint64_t response_ms;     /* request sent -> response headers */
    uint64_t client_idle_ms;  /* QUIC idle timeout for client conns */
    uint64_t backend_idle_ms; /* QUIC idle timeout for backend conns */
    uint64_t shutdown_ms;     /* drain time after SIGTERM */
    uint64_t body_idle_ms;    /* no body byte moving either way (request upload or
                                 response download) for this long ends the request */
    uint64_t request_ms;      /* 0 = off: the whole request, retries included */
    uint64_t try_ms;          /* 0 = off: one try, sent -> response headers; on expiry
                                 the try is cancelled and retried when the retry rules allow */
    uint64_t stall_warn_ms;   /* 0 = off: a started response whose body has not
                                 moved for this long is logged at warn (once per stall) */
};

struct sp_upstream_conf {
    char *name;                       /* owned; unique */
    enum sp_lb_kind strategy;         /* how a backend is picked */
    struct sp_hash_key_conf hash_key; /* rendezvous key (and a stable key for others) */
    struct sp_sticky_conf sticky;     /* spooky-inserted affinity cookie */
    uint64_t slow_start_ms;           /* 0 = off: a recovered backend ramps over this time */
    struct sp_passive_health_conf passive_health; /* defaults apply when the section is absent */
    struct sp_health_check_conf health_check;     /* active probes; disabled when absent */
    struct sp_breaker_settings breaker;
    struct sp_retry_conf retries;
    struct sp_route_conf *routes; /* owned array; at least one */
    size_t routes_count;
    struct sp_backend_conf *backends; /* owned array; at least one */
    size_t backends_count;
    struct sp_upstream_tls_conf tls;
    struct sp_pool_conf pool;
    struct sp_timeouts_conf timeouts; /* effective: upstream timeouts: keys over the global ones;
                                         connect_ms, response_ms, body_idle_ms, request_ms,
                                         try_ms and stall_warn_ms may be overridden, the rest are
                                         the global values */
};

struct sp_limits_conf {
    uint64_t max_header_bytes;           /* decoded field section size per request */
    unsigned max_headers;                /* fields per request */
    unsigned max_streams_per_connection; /* client bidi streams (MAX_STREAMS) */
    uint64_t max_body_bytes;             /* 0 = unlimited: request body size */
    uint64_t stream_window_bytes;        /* per-stream flow-control window */
    uint64_t connection_window_bytes;    /* per-connection flow-control window */
    unsigned max_connections;            /* client connections per worker */
};

struct sp_config {
    char *path;                         /* owned; file it was loaded from */
    unsigned workers;                   /* 0 = one per online CPU */
    enum sp_log_level log_level;        /* lowest level written */
    enum sp_log_format log_format;      /* text or json lines */
    bool access_log;                    /* log.access: one info line per request */
    char *default_upstream;             /* owned; upstream for requests no route matches; NULL =
                                           answer 404 */
    struct sp_listener_conf *listeners; /* owned array; at least one */
    size_t listeners_count;
    struct sp_upstream_conf *upstreams; /* owned array; at least one */
    size_t upstreams_count;
    struct sp_timeouts_conf timeouts; /* global; each upstream has its effective copy */
    struct sp_limits_conf limits;
};

/* One problem found while loading. */
struct sp_config_error {
    char *file;    /* owned */
    unsigned line; /* 1-based; 0 when unknown */
    char *key;     /* owned; dotted path of the key, e.g. "upstreams[0].backends[1].weight" */
    char *message; /* owned; human readable */
};

struct sp_config_errors {
    struct sp_config_error *items; /* owned array */
    size_t count;
};

/* Loads, applies defaults to and validates the YAML file at `path`.
 * On success returns 0 and *ret_config (owned by the caller, free with sp_config_free).
 * On failure returns -EINVAL (or -errno when the file cannot be read) and fills `errors` with
 * every problem found (the caller frees it with sp_config_errors_fini); *ret_config untouched.
 * Main thread. */
int sp_config_load(const char *path, struct sp_config **ret_config,
                   struct sp_config_errors *errors);

/* Frees a config. NULL is fine. */
void sp_config_free(struct sp_config *config);

/* Formats one error as "FILE:LINE: KEY: MESSAGE" into out (cap bytes). Returns out. */
char *sp_config_error_format(const struct sp_config_error *err, char *out, size_t cap);

/* Frees the errors. A zeroed struct is fine. */
void sp_config_errors_fini(struct sp_config_errors *errors);

#endif
