/* config_internal.h: what the files of the config module share and nobody else sees.
 *
 * Loading runs in three steps (see config.c):
 *   1. config_tree.c walks the libyaml node tree against a table of keys, kinds and ranges:
 *      unknown keys, wrong types, missing keys, out-of-range or malformed values, each with the
 *      line of its node. It also records a map from dotted key path to line.
 *   2. config_schema.c loads the now well-formed document into "raw" structs with libcyaml.
 *      Optional scalars are pointers there, so NULL tells "absent" and a default applies.
 *   3. config.c builds the struct sp_config from the raw structs, and config_validate.c runs the
 *      checks across entries (duplicates, ambiguous routes), finding lines in the path map. */
#ifndef SP_CONFIG_CONFIG_INTERNAL_H
#define SP_CONFIG_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <yaml.h>

#include "config/config.h"

/* ---- raw structs filled by libcyaml (config_schema.c); pointers = optional keys ---- */

struct sp_raw_log {
    enum sp_log_level *level;   /* owned by libcyaml; NULL = absent */
    enum sp_log_format *format; /* owned by libcyaml; NULL = absent */
    bool *access;               /* owned by libcyaml; NULL = absent */
};

struct sp_raw_listener {
    char *address;             /* owned by libcyaml */
    unsigned port;             /* 1..65535, checked by the tree walk */
    char *cert;                /* owned by libcyaml; as written, not yet resolved */
    char *key;                 /* owned by libcyaml; as written, not yet resolved */
    unsigned *alt_svc_max_age; /* owned by libcyaml; NULL = absent */
};

struct sp_raw_timeouts {
    uint64_t *connect_ms; /* each owned by libcyaml; NULL = absent */
    uint64_t *response_ms;
    uint64_t *client_idle_ms;
    uint64_t *backend_idle_ms;
    uint64_t *shutdown_ms;
    uint64_t *body_idle_ms;
    uint64_t *request_ms;
    uint64_t *try_ms;
    uint64_t *stall_warn_ms;
};

struct sp_raw_limits {
    uint64_t *max_header_bytes; /* each owned by libcyaml; NULL = absent */
    unsigned *max_headers;
    unsigned *max_streams_per_connection;
    uint64_t *max_body_bytes;
    uint64_t *stream_window_bytes;
    uint64_t *connection_window_bytes;
    unsigned *max_connections;
};

struct sp_raw_route {
    char *host;        /* owned by libcyaml; NULL = absent */
    char *path_prefix; /* owned by libcyaml; NULL = absent */
    char **methods;    /* owned by libcyaml; NULL = absent */
    unsigned methods_count;
};

struct sp_raw_backend {
    char *id;                        /* owned by libcyaml */
    char *address;                   /* owned by libcyaml */
    enum sp_backend_proto *protocol; /* owned by libcyaml; NULL = absent */
    bool *tls;                       /* owned by libcyaml; NULL = absent */
    unsigned *weight;                /* owned by libcyaml; NULL = absent */
};

struct sp_raw_tls {
    char *ca_file;     /* owned by libcyaml; NULL = absent */
    bool *verify;      /* owned by libcyaml; NULL = absent */
    char *server_name; /* owned by libcyaml; NULL = absent */
    char *client_cert; /* owned by libcyaml; NULL = absent */
    char *client_key;  /* owned by libcyaml; NULL = absent */
};

struct sp_raw_pool {
    unsigned *max_connections_per_backend; /* each owned by libcyaml; NULL = absent */
    unsigned *max_streams_per_connection;
    unsigned *max_queue;
    uint64_t *idle_timeout_ms;
    uint64_t *keepalive_ms;
    uint64_t *dead_after_ms;
};

/* Which names fit a source, and whether prefixes are allowed, is checked by the tree walk. */
struct sp_raw_hash_key {
    enum sp_hash_source source; /* required */
    char *name;                 /* owned by libcyaml; NULL = absent */
    unsigned *ipv4_prefix;      /* owned by libcyaml; NULL = absent */
    unsigned *ipv6_prefix;      /* owned by libcyaml; NULL = absent */
};

struct sp_raw_sticky {
    char *name;        /* owned by libcyaml; NULL = absent */
    char *secret;      /* owned by libcyaml; required */
    uint64_t *max_age; /* owned by libcyaml; NULL = absent */
};

struct sp_raw_passive_health {
    unsigned *eject_failures; /* each owned by libcyaml; NULL = absent */
    unsigned *eject_5xx;
    unsigned *degrade_failures;
    unsigned *eject_ratio_pct;
    unsigned *degrade_ratio_pct;
    unsigned *min_requests;
    uint64_t *window_ms;
    unsigned *degraded_weight_pct;
    uint64_t *recovery_ms;
    uint64_t *max_recovery_ms;
    unsigned *panic_threshold_pct;
};

struct sp_raw_health_check {
    char *path;            /* owned by libcyaml; required */
    uint64_t *interval_ms; /* each owned by libcyaml; NULL = absent */
    uint64_t *timeout_ms;
    char *expected_status; /* owned by libcyaml; "200" or "200-399"; NULL = absent */
    unsigned *fall;
    unsigned *rtt_degrade_factor;
    unsigned *rise;
    char *host; /* owned by libcyaml; NULL = absent */
};

struct sp_raw_breaker {
    unsigned *max_failures; /* each owned by libcyaml; NULL = absent */
    unsigned *failure_ratio_pct;
    unsigned *min_requests;
    uint64_t *window_ms;
    uint64_t *open_ms;
    uint64_t *max_open_ms;
    unsigned *half_open_requests;
    unsigned *half_open_successes;
    unsigned *max_concurrent;
    unsigned *max_pending;
};

struct sp_raw_retries {
    unsigned *max; /* each owned by libcyaml; NULL = absent */
    unsigned *budget_pct;
    unsigned *min_retries;
    uint64_t *backoff_ms;
    uint64_t *max_backoff_ms;
    uint64_t *replay_body_bytes;
};

struct sp_raw_upstream {
    char *name;                       /* owned by libcyaml */
    enum sp_lb_kind *strategy;        /* owned by libcyaml; NULL = absent */
    struct sp_raw_hash_key *hash_key; /* owned by libcyaml; NULL = absent */
    struct sp_raw_sticky *sticky;     /* owned by libcyaml; "sticky_cookie"; NULL = absent */
    uint64_t *slow_start_ms;          /* owned by libcyaml; NULL = absent */
    struct sp_raw_passive_health *passive_health; /* owned by libcyaml; NULL = absent */
    struct sp_raw_health_check *health_check;     /* owned by libcyaml; NULL = absent */
    struct sp_raw_breaker *breaker;               /* owned by libcyaml; NULL = absent */
    struct sp_raw_retries *retries;               /* owned by libcyaml; NULL = absent */
    struct sp_raw_route *routes;                  /* owned by libcyaml */
    unsigned routes_count;
    struct sp_raw_backend *backends; /* owned by libcyaml */
    unsigned backends_count;
    struct sp_raw_tls *tls;           /* owned by libcyaml; NULL = absent */
    struct sp_raw_pool *pool;         /* owned by libcyaml; NULL = absent */
    struct sp_raw_timeouts *timeouts; /* owned by libcyaml; NULL = absent; only the keys an
                                         upstream may override are ever set */
};

struct sp_raw_config {
    unsigned *workers;                 /* owned by libcyaml; NULL = absent */
    struct sp_raw_log *log;            /* owned by libcyaml; NULL = absent */
    char *default_upstream;            /* owned by libcyaml; NULL = absent */
    struct sp_raw_listener *listeners; /* owned by libcyaml */
    unsigned listeners_count;
    struct sp_raw_timeouts *timeouts;  /* owned by libcyaml; NULL = absent */
    struct sp_raw_limits *limits;      /* owned by libcyaml; NULL = absent */
    struct sp_raw_upstream *upstreams; /* owned by libcyaml */
    unsigned upstreams_count;
};

/* Loads `len` bytes of YAML into a raw config with libcyaml. On success returns 0 and
 * *ret_raw (free with sp_config_raw_free). On failure returns -EINVAL and *ret_message, an owned
 * string built from libcyaml's own error messages. */
int sp_config_raw_load(const char *data, size_t len, struct sp_raw_config **ret_raw,
                       char **ret_message);

/* Frees a raw config. NULL is fine. */
void sp_config_raw_free(struct sp_raw_config *raw);

/* ---- errors (config.c) ---- */

/* Appends one error. `key` may be "" when no key applies; `line` 0 when unknown. */
void sp_config_error_add(struct sp_config_errors *errors, const char *file, unsigned line,
                         const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Returns a newly allocated printf-formatted string. Aborts on OOM. */
char *sp_config_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- path -> line map (config_tree.c) ---- */

struct sp_config_line {
    char *path;    /* owned; dotted key path, "" for the document itself */
    unsigned line; /* 1-based */
};

struct sp_config_lines {
    struct sp_config_line *items; /* owned array */
    size_t count;
    size_t cap;
};

/* Returns the line recorded for `path`, or 0 when the path was not in the document. Lookups only
 * happen while reporting an error, so a linear scan is fine. */
unsigned sp_config_lines_find(const struct sp_config_lines *lines, const char *path);

/* Frees the map. A zeroed struct is fine. */
void sp_config_lines_fini(struct sp_config_lines *lines);

/* Checks the document against the schema table, appending every problem to `errors` and
 * recording each key and list item in `lines`. `dir` is the absolute directory of the config
 * file, against which relative file names are resolved. Returns 0 when nothing was wrong,
 * -EINVAL otherwise. */
int sp_config_tree_check(yaml_document_t *doc, const char *file, const char *dir,
                         struct sp_config_errors *errors, struct sp_config_lines *lines);

/* ---- value checks (config_validate.c) ---- */

/* What a value check may need besides the value. */
struct sp_config_check_ctx {
    const char *dir; /* borrowed; absolute directory of the config file */
};

/* Checks one string value. Returns NULL when it is fine, or an owned message saying why not. */
typedef char *(*sp_config_check_fn)(const struct sp_config_check_ctx *ctx, const char *value);

char *sp_config_check_ip(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_hostport(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_file(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_name(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_host(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_path_prefix(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_method(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_server_name(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_header_name(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_cookie_name(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_query_name(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_secret(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_probe_path(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_status_range(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_authority(const struct sp_config_check_ctx *ctx, const char *value);

/* Parses an expected status, "200" or "200-399" (lo <= hi, both within 100..599), into
 * *ret_min and *ret_max. Returns 0 or -EINVAL (outputs untouched). */
int sp_config_parse_status_range(const char *s, unsigned *ret_min, unsigned *ret_max);

/* Shortest sticky cookie secret accepted, in bytes (HMAC-SHA256 key; see docs/config.md). */
#define SP_CONFIG_SECRET_MIN_BYTES 16

/* Writes `s` double-quoted, escaped and cut to fit into out (cap bytes). Returns out. */
char *sp_config_quote(char *out, size_t cap, const char *s);

/* Parses a literal IPv4/IPv6 address and a port into *ss. Returns 0 or -EINVAL. */
int sp_config_parse_ip(const char *ip, uint16_t port, struct sockaddr_storage *ss,
                       socklen_t *ret_len);

/* Parses "IPv4:port" or "[IPv6]:port" into *ss. Returns 0 or -EINVAL. */
int sp_config_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *ret_len);

/* Joins a relative file name to `dir`; an absolute one is copied. Returns an owned string. */
char *sp_config_path_resolve(const char *dir, const char *name);

/* Runs the checks that look across entries of a built config (duplicate names, ids and
 * listeners, ambiguous routes, window sizes, a backend's tls against its protocol, client
 * certificate and key as a pair, default_upstream naming an upstream, the order of paired
 * passive_health, breaker and retries settings), appending errors with lines from `lines`.
 * Returns 0 when nothing was wrong, -EINVAL otherwise. */
int sp_config_cross_check(const struct sp_config *config, const struct sp_config_lines *lines,
                          struct sp_config_errors *errors);

#endif
