/* config.h: spooky's configuration: YAML schema (libcyaml), defaults, validation with file:line,
 * and the immutable snapshot the rest of the program reads.
 *
 * A struct sp_config is built once by sp_config_load() and never modified afterwards; workers
 * read it without locks. All strings and arrays inside are owned by the sp_config. */
#ifndef SP_CONFIG_CONFIG_H
#define SP_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/log.h"

enum sp_backend_proto {
    SP_BACKEND_PROTO_H3 = 0,    /* HTTP/3 over QUIC (always TLS) */
    SP_BACKEND_PROTO_H2 = 1,    /* HTTP/2 over TLS, ALPN "h2" */
    SP_BACKEND_PROTO_H2C = 2,   /* HTTP/2 over cleartext TCP, prior knowledge (RFC 9113 §3.3) */
    SP_BACKEND_PROTO_HTTP1 = 3, /* HTTP/1.1 over TCP, cleartext or TLS (see tls) */
};

enum sp_lb_kind {
    SP_LB_ROUND_ROBIN = 0,
    SP_LB_RANDOM = 1,
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
    enum sp_backend_proto protocol; /* default h3 */
    bool tls;                       /* TLS to this backend: default true for h3/h2, false for
                                       h2c/http1; false with h3/h2 and true with h2c are
                                       config errors */
    unsigned weight;                /* 1..1000, default 1 */
    struct sockaddr_storage addr;   /* resolved from address during validation */
    socklen_t addrlen;              /* length of addr */
};

struct sp_route_conf {
    char *host;        /* owned; NULL = any host; exact "a.example" or "*.example" */
    char *path_prefix; /* owned; never NULL after load, default "/" */
    char **methods;    /* owned array of owned strings; NULL/0 = any method */
    size_t methods_count;
};

struct sp_upstream_tls_conf {
    char *ca_file;          /* owned; PEM CA bundle; NULL = system trust store */
    bool verify;            /* default true; false logs a warning at start */
    char *server_name;      /* owned; SNI and name to verify; NULL = backend address host */
    char *client_cert_file; /* owned; PEM client certificate chain for mTLS; NULL = none */
    char *client_key_file;  /* owned; PEM key of client_cert_file; set exactly when it is */
};

struct sp_pool_conf {
    unsigned max_connections_per_backend; /* default 4, per worker */
    unsigned max_streams_per_connection;  /* default 100; further capped by the backend's
                                             MAX_STREAMS */
    unsigned max_queue;                   /* default 1024 requests waiting for a stream, per
                                             worker and upstream; beyond it: 503 */
    uint64_t idle_timeout_ms;             /* default 60000: idle pooled connection reaped */
};

struct sp_upstream_conf {
    char *name;                   /* owned; unique */
    enum sp_lb_kind strategy;     /* default round_robin */
    struct sp_route_conf *routes; /* owned array; at least one */
    size_t routes_count;
    struct sp_backend_conf *backends; /* owned array; at least one */
    size_t backends_count;
    struct sp_upstream_tls_conf tls;
    struct sp_pool_conf pool;
};

struct sp_timeouts_conf {
    uint64_t connect_ms;      /* default 5000: backend QUIC handshake must finish */
    uint64_t response_ms;     /* default 30000: request sent -> response headers */
    uint64_t client_idle_ms;  /* default 30000: QUIC idle timeout for client conns */
    uint64_t backend_idle_ms; /* default 30000: QUIC idle timeout for backend conns */
    uint64_t shutdown_ms;     /* default 5000: drain time after SIGTERM */
};

struct sp_limits_conf {
    uint64_t max_header_bytes;           /* default 65536: decoded field section size per request */
    unsigned max_headers;                /* default 100: fields per request */
    unsigned max_streams_per_connection; /* default 100: client bidi streams (MAX_STREAMS) */
    uint64_t max_body_bytes;             /* default 0 = unlimited: request body size */
    uint64_t stream_window_bytes;        /* default 256 KiB: per-stream flow-control window */
    uint64_t connection_window_bytes;    /* default 1 MiB: per-connection flow-control window */
    unsigned max_connections;            /* default 10000 client connections per worker */
};

struct sp_config {
    char *path;                         /* owned; file it was loaded from */
    unsigned workers;                   /* default 0 = one per online CPU */
    enum sp_log_level log_level;        /* default info */
    enum sp_log_format log_format;      /* default text */
    struct sp_listener_conf *listeners; /* owned array; at least one */
    size_t listeners_count;
    struct sp_upstream_conf *upstreams; /* owned array; at least one */
    size_t upstreams_count;
    struct sp_timeouts_conf timeouts;
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
