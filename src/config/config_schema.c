/* config_schema.c: the key table. Every key of the configuration is described here once: name,
 * kind, range, default, where its value goes in struct sp_config, and the line that documents
 * it. config_tree.c parses, checks, defaults and frees by this table; config_doc.c writes the
 * key tables of docs/config.md from it (a unit test fails when they differ). The finish hooks at
 * the end hold the rules between keys of one section that the table cannot say. */
#include "config/config_internal.h"

#include <stddef.h>
#include <string.h>

#include "core/util.h"
#include "lb/lb.h"

/* Longest timeout accepted: one day, so that converting to ns never overflows. */
#define MAX_TIMEOUT_MS UINT64_C(86400000)
#define HOUR_MS 3600000

/* Where a value goes: `field` of the section's struct `type`. */
#define AT(type, field) .offset = offsetof(type, field), .size = sizeof(((type *)0)->field)

/* A number in [lo, hi], default d. UINT_KEY: the key is named like its field. */
#define UINT_AT(key, type, field, lo, hi, d)                                                       \
    .name = key, .kind = SP_CONFIG_UINT, AT(type, field), .min = (lo), .max = (hi), .def = (d)
#define UINT_KEY(type, field, lo, hi, d) UINT_AT(#field, type, field, lo, hi, d)

/* A string `check` accepts, a bool and an enum, default d. */
#define STR(key, type, field, fn) .name = key, .kind = SP_CONFIG_STR, AT(type, field), .check = fn
#define BOOL(key, type, field, d) .name = key, .kind = SP_CONFIG_BOOL, AT(type, field), .def = d
#define ENUM(key, type, field, choices, d)                                                         \
    .name = key, .kind = SP_CONFIG_ENUM, AT(type, field), .names = choices, .def = d

/* A section whose own struct is `field` of `type`. */
#define SECTION(key, type, field, keys)                                                            \
    .name = key, .kind = SP_CONFIG_MAP, .offset = offsetof(type, field), .fields = keys

/* A list stored in `field` (an array) and `field`_count, of at least one entry. */
#define LIST(type, field)                                                                          \
    .kind = SP_CONFIG_SEQ, .min = 1, .offset = offsetof(type, field),                              \
    .count_offset = offsetof(type, field##_count), .item_size = sizeof(*((type *)0)->field)

static void finish_root(struct sp_config_walk *w, yaml_node_t *map, void *obj);
static void finish_listener(struct sp_config_walk *w, yaml_node_t *map, void *obj);
static void finish_upstream(struct sp_config_walk *w, yaml_node_t *map, void *obj);
static void finish_hash_key(struct sp_config_walk *w, yaml_node_t *map, void *obj);
static void finish_backend(struct sp_config_walk *w, yaml_node_t *map, void *obj);

static const char *const log_levels[] = {
    [SP_LOG_LEVEL_DEBUG] = "debug",
    [SP_LOG_LEVEL_INFO] = "info",
    [SP_LOG_LEVEL_WARN] = "warn",
    [SP_LOG_LEVEL_ERROR] = "error",
    NULL,
};
static const char *const log_formats[] = {
    [SP_LOG_FORMAT_TEXT] = "text", [SP_LOG_FORMAT_JSON] = "json", NULL};
const char *const sp_config_backend_protos[] = {
    [SP_BACKEND_PROTO_H3] = "h3",
    [SP_BACKEND_PROTO_H2] = "h2",
    [SP_BACKEND_PROTO_H2C] = "h2c",
    [SP_BACKEND_PROTO_HTTP1] = "http1",
    NULL,
};
static const char *const hash_sources[] = {
    [SP_HASH_SOURCE_IP] = "source_ip",   [SP_HASH_HEADER] = "header",
    [SP_HASH_COOKIE] = "cookie",         [SP_HASH_PATH] = "path",
    [SP_HASH_AUTHORITY] = "authority",   [SP_HASH_QUERY] = "query",
    [SP_HASH_CONNECTION] = "connection", NULL,
};

/* The strategy names are lb's (its name table), so config, lb and docs cannot disagree. */
static const char *strategy_name(unsigned value)
{
    return sp_lb_kind_name((enum sp_lb_kind)value);
}

static const struct sp_config_key log_keys[] = {
    {ENUM("level", struct sp_config, log_level, log_levels, SP_LOG_LEVEL_INFO),
     .doc = "lowest level written"},
    {ENUM("format", struct sp_config, log_format, log_formats, SP_LOG_FORMAT_TEXT),
     .doc = "`text` is one `key=value` line per event; `json` one object per line"},
    {BOOL("access", struct sp_config, access_log, true),
     .doc = "write one `info` line per request (`area=access`, with client, method, authority, "
            "path, upstream, backend, status and cause); `false` turns the access log off and "
            "leaves every other line alone"},
    {.name = NULL},
};

static const struct sp_config_key listener_keys[] = {
    {STR("address", struct sp_listener_conf, address, sp_config_check_ip), .required = true,
     .doc = "literal IPv4 or IPv6 address (`0.0.0.0`, `\"::\"`, `127.0.0.1`); no host names, "
            "brackets or port"},
    {UINT_KEY(struct sp_listener_conf, port, 1, 65535, 0), .required = true, .doc = "UDP port"},
    {STR("cert", struct sp_listener_conf, cert_file, sp_config_check_file), .required = true,
     .store = SP_CONFIG_STORE_FILE, .doc = "PEM certificate chain (leaf first)"},
    {STR("key", struct sp_listener_conf, key_file, sp_config_check_file), .required = true,
     .store = SP_CONFIG_STORE_FILE, .doc = "PEM private key of `cert`"},
    {UINT_AT("alt_svc_max_age", struct sp_listener_conf, alt_svc_max_age_s, 0, UINT32_MAX, 86400),
     .unit = "s",
     .doc = "`max-age` of the `alt-svc` header added to responses; `0` = no `alt-svc`"},
    {.name = NULL},
};

static const struct sp_config_key timeouts_keys[] = {
    {UINT_KEY(struct sp_timeouts_conf, connect_ms, 1, MAX_TIMEOUT_MS, 5000),
     .doc = "a backend connection (QUIC handshake; TCP connect plus TLS handshake) must be "
            "established within this"},
    {UINT_KEY(struct sp_timeouts_conf, response_ms, 1, MAX_TIMEOUT_MS, 30000),
     .doc = "from the request's arrival to the backend's response headers (waiting for a "
            "connection or stream, and retries, included); then `504`"},
    {UINT_KEY(struct sp_timeouts_conf, body_idle_ms, 1, MAX_TIMEOUT_MS, 60000),
     .doc = "longest time no body byte moves in either direction (the client's upload or the "
            "backend's response) once the request is with a backend; then, before the response "
            "started, `504` when the backend stalled (`cause=backend_body_timeout`, class "
            "`backend_timeout`) or `408` when the client stopped sending "
            "(`cause=client_body_timeout`, class `client_timeout`, never charged to the "
            "backend); after it started, a reset client stream"},
    {UINT_KEY(struct sp_timeouts_conf, request_ms, 0, MAX_TIMEOUT_MS, 0),
     .doc = "the whole request, from arrival to the last response byte, retries included; then "
            "`504` or a reset stream (`cause=request_timeout`); `0` = off"},
    {UINT_KEY(struct sp_timeouts_conf, try_ms, 1, MAX_TIMEOUT_MS, 0),
     .doc = "one try: from sending the request to a backend to its response headers. On expiry "
            "the try is cancelled and, when the [retry rules](#retries) allow, the request goes "
            "to another backend; otherwise `504` (`cause=try_timeout`, class `backend_timeout`). "
            "`response_ms` and `request_ms` still bound the whole request. Off (`0`) unless set"},
    {UINT_KEY(struct sp_timeouts_conf, stall_warn_ms, 0, MAX_TIMEOUT_MS, 5000),
     .doc = "a response whose body has not moved for this long (no byte from the backend, none "
            "acknowledged by the client, or the end of the body not delivered) is logged once at "
            "warn, `event=body_stall`, with the request id, who is waited for "
            "(`waiting_for=client` when response bytes wait for the client's acknowledgement, "
            "else `waiting_for=backend`) and both streams' flow-control state; a later byte logs "
            "`event=body_stall_over` at info. It only reports: `body_idle_ms` still ends the "
            "request. `0` = off"},
    {UINT_KEY(struct sp_timeouts_conf, client_idle_ms, 1, MAX_TIMEOUT_MS, 30000),
     .doc = "QUIC idle timeout of client connections"},
    {UINT_KEY(struct sp_timeouts_conf, backend_idle_ms, 1, MAX_TIMEOUT_MS, 30000),
     .doc = "QUIC idle timeout of backend connections; for `h2`/`h2c`, an idle pooled connection "
            "is PINGed after a third of this and closed when the answer does not come within "
            "another third"},
    {UINT_KEY(struct sp_timeouts_conf, shutdown_ms, 1, MAX_TIMEOUT_MS, 5000),
     .doc = "time to drain streams after SIGTERM before closing"},
    {.name = NULL},
};

/* The timeouts an upstream may override: those that bound its own requests and connections.
 * finish_root gives the keys it leaves out the global values. */
static const struct sp_config_key upstream_timeouts_keys[] = {
    {UINT_KEY(struct sp_timeouts_conf, connect_ms, 1, MAX_TIMEOUT_MS, SP_CONFIG_INHERIT),
     .doc = "connecting (and the TLS/QUIC handshake) to this upstream's backends"},
    {UINT_KEY(struct sp_timeouts_conf, response_ms, 1, MAX_TIMEOUT_MS, SP_CONFIG_INHERIT),
     .doc = "arrival to response headers for requests routed here"},
    {UINT_KEY(struct sp_timeouts_conf, body_idle_ms, 1, MAX_TIMEOUT_MS, SP_CONFIG_INHERIT),
     .doc = "body idle time for requests routed here"},
    {UINT_KEY(struct sp_timeouts_conf, request_ms, 0, MAX_TIMEOUT_MS, SP_CONFIG_INHERIT),
     .doc = "whole-request bound for requests routed here; `0` = off"},
    {UINT_KEY(struct sp_timeouts_conf, try_ms, 1, MAX_TIMEOUT_MS, SP_CONFIG_INHERIT),
     .doc = "each try of a request routed here"},
    {UINT_KEY(struct sp_timeouts_conf, stall_warn_ms, 0, MAX_TIMEOUT_MS, SP_CONFIG_INHERIT),
     .doc = "body stall warnings for requests routed here (`0` = off, e.g. for event streams that "
            "go quiet)"},
    {.name = NULL},
};

/* connection_window_bytes >= stream_window_bytes is checked across keys in config_validate.c */
static const struct sp_config_key limits_keys[] = {
    {UINT_KEY(struct sp_limits_conf, max_header_bytes, 1024, 1048576, 65536),
     .doc = "decoded size of a request's header section"},
    {UINT_KEY(struct sp_limits_conf, max_headers, 8, 1000, 100),
     .doc = "header fields per request"},
    {UINT_KEY(struct sp_limits_conf, max_streams_per_connection, 1, 10000, 100),
     .doc = "concurrent request streams per client connection (QUIC MAX_STREAMS)"},
    {UINT_KEY(struct sp_limits_conf, max_body_bytes, 0, UINT64_MAX, 0),
     .doc = "request body size; `0` = unlimited"},
    {UINT_KEY(struct sp_limits_conf, stream_window_bytes, 16384, 16777216, 262144),
     .doc = "flow-control window per stream"},
    {UINT_KEY(struct sp_limits_conf, connection_window_bytes, 16384, 1073741824, 1048576),
     .doc = "flow-control window per connection; must be at least `stream_window_bytes`"},
    {UINT_KEY(struct sp_limits_conf, max_connections, 1, 1000000, 10000),
     .doc = "client connections per worker"},
    {.name = NULL},
};

/* name, ipv4_prefix and ipv6_prefix depend on the source: see finish_hash_key */
static const struct sp_config_key hash_key_keys[] = {
    {ENUM("source", struct sp_hash_key_conf, source, hash_sources, SP_HASH_NONE),
     .min = SP_HASH_SOURCE_IP, .required = true, .doc_type = "see below",
     .doc = "where the key comes from"},
    {STR("name", struct sp_hash_key_conf, name, NULL),
     .doc = "the header, cookie or query parameter name: **required** for `header`, `cookie` and "
            "`query`, an error for the other sources"},
    {UINT_KEY(struct sp_hash_key_conf, ipv4_prefix, 1, 32, 32),
     .doc = "leading bits of an IPv4 client address that are kept; only with `source: source_ip` "
            "(an error otherwise)"},
    {UINT_KEY(struct sp_hash_key_conf, ipv6_prefix, 1, 128, 64),
     .doc = "leading bits of an IPv6 client address that are kept; only with `source: source_ip` "
            "(an error otherwise)"},
    {.name = NULL},
};

static const struct sp_config_key sticky_keys[] = {
    {STR("name", struct sp_sticky_conf, cookie_name, sp_config_check_cookie_name),
     .def_str = "spooky_sticky", .doc_type = "RFC 6265 token",
     .doc = "the cookie's name: letters, digits and ``!#$%&'*+-.^_`|~``"},
    {STR("secret", struct sp_sticky_conf, secret, sp_config_check_secret), .required = true,
     .doc_type = "string, at least 16 bytes",
     .doc = "HMAC key signing the cookie. Use the same secret on every spooky instance that "
            "serves the same clients, and keep it across restarts: a new secret unpins every "
            "client once. Generate one with `openssl rand -base64 32`; it is never printed in "
            "errors"},
    {UINT_AT("max_age", struct sp_sticky_conf, max_age_s, 0, 31536000 /* a year */, 0), .unit = "s",
     .doc = "`Max-Age` of the cookie; `0` makes it a session cookie (no `Max-Age`, dropped when "
            "the browser closes)"},
    {.name = NULL},
};

static const struct sp_config_key method_item = {.kind = SP_CONFIG_STR,
                                                 .check = sp_config_check_method};

static const struct sp_config_key route_keys[] = {
    {STR("host", struct sp_route_conf, host, sp_config_check_host), .store = SP_CONFIG_STORE_HOST,
     .doc_default = "any host",
     .doc = "exact host (`api.example.com`) or wildcard suffix (`*.example.com`); compared in "
            "lower case; no port. `\"*\"` means any host, like leaving it out"},
    {STR("path_prefix", struct sp_route_conf, path_prefix, sp_config_check_path_prefix),
     .def_str = "/", .doc = "must start with `/`; no spaces, control characters, `?` or `#`"},
    {.name = "methods",
     LIST(struct sp_route_conf, methods),
     .item = &method_item,
     .doc_default = "any method",
     .doc = "upper-case method tokens, e.g. `[GET, HEAD]`; no duplicates"},
    {.name = NULL},
};

static const struct sp_config_key backend_keys[] = {
    {STR("id", struct sp_backend_conf, id, sp_config_check_name), .required = true,
     .doc_type = "string `[A-Za-z0-9_.-]+`",
     .doc = "unique across the whole file; used in logs, metrics and the admin API"},
    {STR("address", struct sp_backend_conf, address, sp_config_check_hostport), .required = true,
     .doc = "`IPv4:port` or `[IPv6]:port`, literal addresses only (`127.0.0.1:9443`, "
            "`\"[::1]:9443\"`)"},
    {ENUM("protocol", struct sp_backend_conf, protocol, sp_config_backend_protos,
          SP_BACKEND_PROTO_H3),
     .doc = "protocol spoken to the backend, see below"},
    {BOOL("tls", struct sp_backend_conf, tls, false), /* finish_backend: by protocol */
     .doc_default = "`true` for `h3` and `h2`, `false` for `h2c` and `http1`",
     .doc = "TLS to this backend (settings in the upstream's [tls](#tls)); only `http1` may "
            "choose"},
    {UINT_KEY(struct sp_backend_conf, weight, 1, 1000, 1),
     .doc = "share of requests relative to the other backends of the upstream"},
    {.name = NULL},
};

static const struct sp_config_key tls_keys[] = {
    {STR("ca_file", struct sp_upstream_tls_conf, ca_file, sp_config_check_file),
     .store = SP_CONFIG_STORE_FILE, .doc_default = "system trust store",
     .doc = "PEM CA bundle to verify backend certificates with"},
    {BOOL("verify", struct sp_upstream_tls_conf, verify, true),
     .doc = "verify backend certificates; `false` logs a warning at start"},
    {STR("server_name", struct sp_upstream_tls_conf, server_name, sp_config_check_server_name),
     .doc_type = "DNS name", .doc_default = "the backend's IP",
     .doc = "SNI override and the name the certificate is verified against; without it no SNI is "
            "sent and the certificate must list the backend's IP address"},
    {STR("client_cert", struct sp_upstream_tls_conf, client_cert_file, sp_config_check_file),
     .store = SP_CONFIG_STORE_FILE,
     .doc = "PEM client certificate chain presented to backends that ask for one (mutual TLS); "
            "needs `client_key`"},
    {STR("client_key", struct sp_upstream_tls_conf, client_key_file, sp_config_check_file),
     .store = SP_CONFIG_STORE_FILE, .doc = "PEM private key of `client_cert`; needs `client_cert`"},
    {.name = NULL},
};

static const struct sp_config_key pool_keys[] = {
    {UINT_KEY(struct sp_pool_conf, max_connections_per_backend, 1, 1024, 4),
     .doc = "connections kept to each backend"},
    {UINT_KEY(struct sp_pool_conf, max_streams_per_connection, 1, 10000, 100),
     .doc = "concurrent requests per connection (further capped by the backend's MAX_STREAMS)"},
    {UINT_KEY(struct sp_pool_conf, max_queue, 0, 1000000, 1024),
     .doc = "requests (across the upstream's backends) that may wait for a stream once every "
            "connection is busy and no more may be opened; beyond it, `503` with `retry-after`. "
            "Requests waiting for a connection being opened do not count"},
    {UINT_KEY(struct sp_pool_conf, idle_timeout_ms, 1, MAX_TIMEOUT_MS, 60000),
     .doc = "an idle pooled connection is closed after this"},
    {UINT_KEY(struct sp_pool_conf, keepalive_ms, 0, MAX_TIMEOUT_MS, 5000),
     .doc = "a pooled connection that has sent and received nothing for this long is probed — a "
            "QUIC PING (HTTP/3), TCP keep-alive probes (HTTP/2, HTTP/1.1) — so that a dead "
            "backend is found before a request is put on its connection; `0` = off"},
    {UINT_KEY(struct sp_pool_conf, dead_after_ms, 0, MAX_TIMEOUT_MS, 1000),
     .doc = "a connection that owes spooky an acknowledgement for this long is declared dead at "
            "once and its requests fail over ([retries](#retries)); for HTTP/3 the limit is the "
            "larger of this and 3 probe timeouts (RFC 9002 §6.2), counted while sent data stays "
            "unacknowledged (a connection waiting for a response that has gone quiet is PINGed "
            "after half of it), for HTTP/2 and HTTP/1.1 it is the socket's `TCP_USER_TIMEOUT`, "
            "with TCP keep-alive probes after the shorter of `keepalive_ms` and this (at least "
            "1 s) so that a connection waiting for a response is checked too. ICMP errors (port "
            "or host unreachable) and a stateless reset from the backend end an HTTP/3 "
            "connection at once, whatever this says. `0` = off: only the idle timeout ends a "
            "silent connection"},
    {.name = NULL},
};

/* The order of paired keys (degrade below eject, max_* at least its base) depends on defaults,
 * so it is checked on the built config in config_validate.c. */
static const struct sp_config_key passive_health_keys[] = {
    {UINT_KEY(struct sp_passive_health_conf, eject_failures, 0, 1000, 5),
     .doc = "failures in a row that eject the backend; `0` = off"},
    {UINT_KEY(struct sp_passive_health_conf, eject_5xx, 0, 1000, 5),
     .doc = "`5xx` responses in a row that eject the backend; `0` = off"},
    {UINT_KEY(struct sp_passive_health_conf, degrade_failures, 0, 1000, 2),
     .doc = "failures in a row that degrade the backend; `0` = off. Must be below "
            "`eject_failures` when both are on (not `0`), the default values included"},
    {UINT_KEY(struct sp_passive_health_conf, eject_ratio_pct, 0, 100, 50),
     .doc = "failure share in the window that ejects; `0` = off"},
    {UINT_KEY(struct sp_passive_health_conf, degrade_ratio_pct, 0, 100, 10),
     .doc = "failure share in the window that degrades; `0` = off. Must be below "
            "`eject_ratio_pct` when both are on, the default values included"},
    {UINT_KEY(struct sp_passive_health_conf, min_requests, 1, 1000000, 20),
     .doc = "outcomes the window must hold before either ratio counts, so that one failure among "
            "two requests does not eject"},
    {UINT_KEY(struct sp_passive_health_conf, window_ms, 100, HOUR_MS, 10000),
     .doc = "how far back the ratios look"},
    {UINT_KEY(struct sp_passive_health_conf, degraded_weight_pct, 1, 100, 50),
     .doc = "share of its `weight` a degraded (or readmitted) backend gets"},
    {UINT_KEY(struct sp_passive_health_conf, recovery_ms, 1, HOUR_MS, 1000),
     .doc = "delay before the first readmission after an ejection"},
    {UINT_KEY(struct sp_passive_health_conf, max_recovery_ms, 1, MAX_TIMEOUT_MS, 60000),
     .doc = "cap of the doubling readmission delay; at least `recovery_ms`"},
    {UINT_KEY(struct sp_passive_health_conf, panic_threshold_pct, 0, 100, 50),
     .doc = "below this share of healthy or degraded backends, ejected backends get traffic "
            "again (panic); `0` = off"},
    {.name = NULL},
};

/* timeout_ms at most interval_ms depends on the default, so it is checked in config_validate.c */
static const struct sp_config_key health_check_keys[] = {
    {STR("path", struct sp_health_check_conf, path, sp_config_check_probe_path), .required = true,
     .doc = "request target of the probes; must start with `/`; no spaces, control characters "
            "or `#`"},
    {UINT_KEY(struct sp_health_check_conf, interval_ms, 100, HOUR_MS, 2000),
     .doc = "time from the end of one probe to the next (per worker, per backend)"},
    {UINT_KEY(struct sp_health_check_conf, timeout_ms, 1, HOUR_MS, 1000),
     .doc = "a probe without a complete response by then fails; at most `interval_ms` (the "
            "default values included)"},
    {.name = "expected_status",
     .kind = SP_CONFIG_STR,
     .check = sp_config_check_status_range,
     .store = SP_CONFIG_STORE_STATUS,
     .offset = 0,
     .def_str = "200-399",
     .doc = "good statuses: one status (`\"204\"`) or an inclusive range `\"lo-hi\"`, within "
            "100..599"},
    {UINT_KEY(struct sp_health_check_conf, fall, 1, 100, 3),
     .doc = "failed probes in a row that eject the backend"},
    {UINT_KEY(struct sp_health_check_conf, rtt_degrade_factor, 0, 1000, 4),
     .doc = "HTTP/3: a probe whose connection's smoothed RTT is more than this many times the "
            "backend's baseline RTT (the lowest recently seen, drifting up slowly), and more than "
            "5 ms above it, degrades a healthy backend (`reason=rtt_jump`: less traffic, not "
            "ejected); good probes heal it. `0` = off"},
    {UINT_KEY(struct sp_health_check_conf, rise, 1, 100, 2),
     .doc = "successes in a row that end probation (readmit the backend)"},
    {STR("host", struct sp_health_check_conf, host, sp_config_check_authority),
     .doc_default = "`tls.server_name`, else the backend's `address`",
     .doc = "`:authority` of the probes: a host name or IP literal, optionally with `:port`"},
    {.name = NULL},
};

static const struct sp_config_key breaker_keys[] = {
    {UINT_KEY(struct sp_breaker_settings, max_failures, 0, 1000, 5),
     .doc = "failures in a row that open the breaker; `0` = off"},
    {UINT_KEY(struct sp_breaker_settings, failure_ratio_pct, 0, 100, 0),
     .doc = "failure share in the window that opens the breaker; `0` = off"},
    {UINT_KEY(struct sp_breaker_settings, min_requests, 1, 1000000, 20),
     .doc = "outcomes the window must hold before the ratio counts"},
    {UINT_KEY(struct sp_breaker_settings, window_ms, 100, HOUR_MS, 10000),
     .doc = "how far back the ratio looks"},
    {UINT_KEY(struct sp_breaker_settings, open_ms, 1, HOUR_MS, 5000),
     .doc = "open time after the first opening"},
    {UINT_KEY(struct sp_breaker_settings, max_open_ms, 1, MAX_TIMEOUT_MS, 60000),
     .doc = "cap of the doubling open time; at least `open_ms`"},
    {UINT_KEY(struct sp_breaker_settings, half_open_requests, 1, 1000, 1),
     .doc = "trial requests in flight at once when half-open"},
    {UINT_KEY(struct sp_breaker_settings, half_open_successes, 1, 1000, 1),
     .doc = "trial successes that close the breaker"},
    {UINT_KEY(struct sp_breaker_settings, max_concurrent, 0, 1000000, 0),
     .doc = "requests in flight to one backend, per worker; `0` = unlimited"},
    {UINT_KEY(struct sp_breaker_settings, max_pending, 0, 1000000, 0),
     .doc = "requests waiting for a connection or stream of one backend, per worker; beyond it "
            "`503` with `retry-after` (`cause=queue_full`); `pool.max_queue` caps the whole "
            "upstream; `0` = unlimited"},
    {.name = NULL},
};

static const struct sp_config_key retries_keys[] = {
    {UINT_KEY(struct sp_retry_conf, max, 0, 10, 2),
     .doc = "retries after the first try; `0` = never retry"},
    {UINT_KEY(struct sp_retry_conf, budget_pct, 0, 1000, 20),
     .doc = "retries in flight allowed per 100 requests in flight"},
    {UINT_KEY(struct sp_retry_conf, min_retries, 0, 100000, 3),
     .doc = "retries in flight always allowed, so that light traffic can retry too"},
    {UINT_KEY(struct sp_retry_conf, backoff_ms, 0, 60000, 10),
     .doc = "base of the backoff; `0` = retry at once"},
    {UINT_KEY(struct sp_retry_conf, max_backoff_ms, 0, 600000, 250),
     .doc = "cap of the backoff; at least `backoff_ms`"},
    {UINT_KEY(struct sp_retry_conf, replay_body_bytes, 0, 16777216, 65536),
     .doc = "how much of a request body spooky keeps (per request) to send it again on a retry; "
            "a request whose body grows beyond it is no longer retried once body bytes went to a "
            "backend, except when nothing of it left spooky"},
    {.name = NULL},
};

static const struct sp_config_key route_item = {.kind = SP_CONFIG_MAP, .fields = route_keys};
static const struct sp_config_key backend_item = {
    .kind = SP_CONFIG_MAP, .fields = backend_keys, .finish = finish_backend};

static const struct sp_config_key upstream_keys[] = {
    {STR("name", struct sp_upstream_conf, name, sp_config_check_name), .required = true,
     .doc_type = "string `[A-Za-z0-9_.-]+`",
     .doc = "unique among upstreams; used in logs and metrics"},
    {ENUM("strategy", struct sp_upstream_conf, strategy, NULL, SP_LB_ROUND_ROBIN),
     .name_of = strategy_name, .doc = "how a backend is picked, see [strategy](#strategy)"},
    {SECTION("hash_key", struct sp_upstream_conf, hash_key, hash_key_keys),
     .finish = finish_hash_key, .doc_default = "none",
     .doc = "what a request is hashed on; **required** with `strategy: rendezvous`, see "
            "[hash_key](#hash_key)"},
    {SECTION("sticky_cookie", struct sp_upstream_conf, sticky, sticky_keys), .optional = true,
     .enabled_offset = offsetof(struct sp_sticky_conf, enabled),
     .doc = "pin each client to a backend with a cookie spooky sets, see "
            "[sticky_cookie](#sticky_cookie)"},
    {UINT_KEY(struct sp_upstream_conf, slow_start_ms, 0, HOUR_MS, 0),
     .doc = "a backend that becomes usable again (back up, re-enabled, breaker closed) starts at "
            "10% of its weight and ramps linearly to 100% over this time, so a cold backend is not "
            "flooded; `0` = off"},
    {.name = "routes",
     LIST(struct sp_upstream_conf, routes),
     .required = true,
     .item = &route_item,
     .doc = "see [routes](#routes)"},
    {.name = "backends",
     LIST(struct sp_upstream_conf, backends),
     .required = true,
     .item = &backend_item,
     .doc = "see [backends](#backends)"},
    {SECTION("tls", struct sp_upstream_conf, tls, tls_keys), .doc = "see [tls](#tls)"},
    {SECTION("pool", struct sp_upstream_conf, pool, pool_keys), .doc = "see [pool](#pool)"},
    {SECTION("passive_health", struct sp_upstream_conf, passive_health, passive_health_keys),
     .doc = "eject or degrade failing backends from the outcomes of real requests, see "
            "[passive_health](#passive_health)"},
    {SECTION("health_check", struct sp_upstream_conf, health_check, health_check_keys),
     .optional = true, .enabled_offset = offsetof(struct sp_health_check_conf, enabled),
     .doc = "active probes of every backend, see [health_check](#health_check)"},
    {SECTION("breaker", struct sp_upstream_conf, breaker, breaker_keys),
     .doc = "per-backend circuit breaker, see [breaker](#breaker)"},
    {SECTION("retries", struct sp_upstream_conf, retries, retries_keys),
     .doc = "which failed requests are retried on another backend, and how often, see "
            "[retries](#retries)"},
    {SECTION("timeouts", struct sp_upstream_conf, timeouts, upstream_timeouts_keys),
     .doc_default = "the global values",
     .doc = "this upstream's own timeouts, see [upstream timeouts](#upstream-timeouts)"},
    {.name = NULL},
};

static const struct sp_config_key listener_item = {
    .kind = SP_CONFIG_MAP, .fields = listener_keys, .finish = finish_listener};
static const struct sp_config_key upstream_item = {
    .kind = SP_CONFIG_MAP, .fields = upstream_keys, .finish = finish_upstream};

static const struct sp_config_key root_keys[] = {
    {UINT_KEY(struct sp_config, workers, 0, 256, 0),
     .doc = "worker threads, each with its own event loop and UDP socket; `0` = one per online "
            "CPU"},
    {.name = "log",
     .kind = SP_CONFIG_MAP,
     .offset = 0,
     .fields = log_keys, /* in sp_config */
     .doc = "see [log](#log)"},
    {STR("default_upstream", struct sp_config, default_upstream, sp_config_check_name),
     .doc_type = "upstream name", /* that it names one is checked in config_validate.c */
     .doc = "upstream for requests that match no route; it must be the `name` of an upstream in "
            "this file. Without it, such requests get `404`"},
    {.name = "listeners",
     LIST(struct sp_config, listeners),
     .required = true,
     .item = &listener_item,
     .doc = "see [listeners](#listeners)"},
    {SECTION("timeouts", struct sp_config, timeouts, timeouts_keys),
     .doc = "see [timeouts](#timeouts)"},
    {SECTION("limits", struct sp_config, limits, limits_keys), .doc = "see [limits](#limits)"},
    {.name = "upstreams",
     LIST(struct sp_config, upstreams),
     .required = true,
     .item = &upstream_item,
     .doc = "see [upstreams](#upstreams)"},
    {.name = NULL},
};

const struct sp_config_key sp_config_schema = {
    .kind = SP_CONFIG_MAP, .fields = root_keys, .finish = finish_root};

/* ---- rules between the keys of one section (finish hooks) ----
 * These run after every key of the section was checked on its own, and stay silent about a value
 * that already failed there, so that one mistake gives one error. */

/* An upstream's timeouts: its own keys over the global values, which are only known once the
 * whole document was walked. */
static void finish_root(struct sp_config_walk *w, yaml_node_t *map, void *obj)
{
    struct sp_config *c = obj;

    (void)w;
    (void)map;
    for (size_t u = 0; u < c->upstreams_count; u++) {
        struct sp_timeouts_conf *t = &c->upstreams[u].timeouts;
        struct sp_timeouts_conf own = *t;

        *t = c->timeouts;
        for (const struct sp_config_key *k = upstream_timeouts_keys; k->name != NULL; k++) {
            uint64_t v;

            memcpy(&v, (const char *)&own + k->offset, sizeof(v));
            if (v != SP_CONFIG_INHERIT)
                memcpy((char *)t + k->offset, &v, sizeof(v));
        }
    }
}

static void finish_listener(struct sp_config_walk *w, yaml_node_t *map, void *obj)
{
    struct sp_listener_conf *l = obj;

    (void)w;
    (void)map;
    if (l->address != NULL) /* checked, so it parses */
        (void)sp_config_parse_ip(l->address, l->port, &l->addr, &l->addrlen);
}

static void finish_backend(struct sp_config_walk *w, yaml_node_t *map, void *obj)
{
    struct sp_backend_conf *b = obj;

    /* h3 and h2 imply TLS, h2c and http1 default to cleartext; contradictions are reported by
     * the cross checks (config_validate.c) */
    if (sp_config_walk_get(w, map, "tls", NULL) == NULL)
        b->tls = b->protocol == SP_BACKEND_PROTO_H3 || b->protocol == SP_BACKEND_PROTO_H2;
    if (b->address != NULL) /* checked, so it parses */
        (void)sp_config_parse_hostport(b->address, &b->addr, &b->addrlen);
}

/* What each hash_key source takes besides itself, indexed by enum sp_hash_source. */
static const struct {
    const char *name_of;           /* what `name` names; NULL: the source takes no name */
    sp_config_check_fn check_name; /* check of `name`; set exactly when name_of is */
} hash_source_rules[SP_HASH_CONNECTION + 1] = {
    [SP_HASH_HEADER] = {"header", sp_config_check_header_name},
    [SP_HASH_COOKIE] = {"cookie", sp_config_check_cookie_name},
    [SP_HASH_QUERY] = {"query parameter", sp_config_check_query_name},
};

/* hash_key.name is required by the sources that look something up by name and refused by the
 * others; prefixes only apply to source_ip. */
static void finish_hash_key(struct sp_config_walk *w, yaml_node_t *map, void *obj)
{
    static const char *const prefixes[] = {"ipv4_prefix", "ipv6_prefix"};
    struct sp_hash_key_conf *h = obj;
    const char *source = hash_sources[h->source];
    yaml_node_t *key = NULL;
    yaml_node_t *name = sp_config_walk_get(w, map, "name", &key);
    char *msg;

    if (h->source == SP_HASH_NONE)
        return; /* missing or unknown source: already reported */
    if (hash_source_rules[h->source].name_of != NULL && name == NULL)
        sp_config_walk_error(w, "name", sp_config_walk_line(map),
                             sp_config_strf("required key missing: source %s needs the name of "
                                            "the %s",
                                            source, hash_source_rules[h->source].name_of));
    if (hash_source_rules[h->source].name_of == NULL && name != NULL)
        sp_config_walk_error(w, "name", sp_config_walk_line(key),
                             sp_config_strf("not allowed with source %s: only header, cookie and "
                                            "query take a name",
                                            source));
    if (hash_source_rules[h->source].check_name != NULL && sp_config_walk_text(name) != NULL) {
        msg = hash_source_rules[h->source].check_name(sp_config_walk_ctx(w),
                                                      sp_config_walk_text(name));
        if (msg != NULL)
            sp_config_walk_error(w, "name", sp_config_walk_line(name), msg);
    }
    for (size_t i = 0; i < SP_ARRAY_LEN(prefixes); i++) {
        if (h->source == SP_HASH_SOURCE_IP || sp_config_walk_get(w, map, prefixes[i], &key) == NULL)
            continue;
        sp_config_walk_error(w, prefixes[i], sp_config_walk_line(key),
                             sp_config_strf("not allowed with source %s: only source_ip takes a "
                                            "prefix",
                                            source));
    }
    /* RFC 9114 §4.2: HTTP/3 field names are lower case, so a header name is compared that way;
     * cookie and query parameter names are compared byte for byte */
    if (h->source == SP_HASH_HEADER && h->name != NULL)
        (void)sp_config_lower(h->name);
}

/* Rendezvous hashing has nothing to hash without a key, and only rendezvous hashes: a hash_key
 * under another strategy would be a setting that does nothing. */
static void finish_upstream(struct sp_config_walk *w, yaml_node_t *map, void *obj)
{
    const struct sp_upstream_conf *u = obj;
    const char *rendezvous = sp_lb_kind_name(SP_LB_RENDEZVOUS);
    yaml_node_t *strategy = sp_config_walk_get(w, map, "strategy", NULL);
    const char *written = sp_config_walk_text(strategy);
    yaml_node_t *hash_key_key = NULL;
    yaml_node_t *hash_key = sp_config_walk_get(w, map, "hash_key", &hash_key_key);
    bool hashes = written != NULL && strcmp(written, rendezvous) == 0;

    if (hashes && hash_key == NULL)
        sp_config_walk_error(w, "strategy", sp_config_walk_line(strategy),
                             sp_config_strf("strategy %s needs hash_key", rendezvous));
    if (!hashes && hash_key != NULL && (strategy == NULL || written != NULL))
        sp_config_walk_error(
            w, "hash_key", sp_config_walk_line(hash_key_key),
            sp_config_strf("only strategy %s uses hash_key (strategy is %s)", rendezvous,
                           written != NULL ? written : sp_lb_kind_name(u->strategy)));
}
