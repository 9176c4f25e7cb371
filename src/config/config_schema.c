/* config_schema.c: the libcyaml schema that loads a config document into the raw structs of
 * config_internal.h. Ranges, formats and unknown keys are checked beforehand by config_tree.c,
 * which can say on which line a problem is; this file only does the typed load. The two
 * tables must describe the same keys: test_config.c loads every key to keep them in step. */
#include "config/config_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cyaml/cyaml.h>

#include "core/util.h"

#define OPT CYAML_FLAG_OPTIONAL
#define OPT_PTR (CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER)

static const cyaml_strval_t log_level_strings[] = {
    {"debug", SP_LOG_LEVEL_DEBUG},
    {"info", SP_LOG_LEVEL_INFO},
    {"warn", SP_LOG_LEVEL_WARN},
    {"error", SP_LOG_LEVEL_ERROR},
};

static const cyaml_strval_t log_format_strings[] = {
    {"text", SP_LOG_FORMAT_TEXT},
    {"json", SP_LOG_FORMAT_JSON},
};

static const cyaml_strval_t strategy_strings[] = {
    {"round_robin", SP_LB_ROUND_ROBIN},
    {"weighted_round_robin", SP_LB_WEIGHTED_ROUND_ROBIN},
    {"random", SP_LB_RANDOM},
    {"least_conn", SP_LB_LEAST_CONN},
    {"p2c", SP_LB_P2C},
    {"ewma", SP_LB_EWMA},
    {"rendezvous", SP_LB_RENDEZVOUS},
};

static const cyaml_strval_t hash_source_strings[] = {
    {"source_ip", SP_HASH_SOURCE_IP},   {"header", SP_HASH_HEADER},
    {"cookie", SP_HASH_COOKIE},         {"path", SP_HASH_PATH},
    {"authority", SP_HASH_AUTHORITY},   {"query", SP_HASH_QUERY},
    {"connection", SP_HASH_CONNECTION},
};

static const cyaml_strval_t protocol_strings[] = {
    {"h3", SP_BACKEND_PROTO_H3},
    {"h2", SP_BACKEND_PROTO_H2},
    {"h2c", SP_BACKEND_PROTO_H2C},
    {"http1", SP_BACKEND_PROTO_HTTP1},
};

static const cyaml_schema_field_t log_fields[] = {
    CYAML_FIELD_ENUM_PTR("level", OPT | CYAML_FLAG_STRICT, struct sp_raw_log, level,
                         log_level_strings, CYAML_ARRAY_LEN(log_level_strings)),
    CYAML_FIELD_ENUM_PTR("format", OPT | CYAML_FLAG_STRICT, struct sp_raw_log, format,
                         log_format_strings, CYAML_ARRAY_LEN(log_format_strings)),
    CYAML_FIELD_BOOL_PTR("access", OPT, struct sp_raw_log, access),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t listener_fields[] = {
    CYAML_FIELD_STRING_PTR("address", CYAML_FLAG_POINTER, struct sp_raw_listener, address, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_UINT("port", CYAML_FLAG_DEFAULT, struct sp_raw_listener, port),
    CYAML_FIELD_STRING_PTR("cert", CYAML_FLAG_POINTER, struct sp_raw_listener, cert, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("key", CYAML_FLAG_POINTER, struct sp_raw_listener, key, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_UINT_PTR("alt_svc_max_age", OPT, struct sp_raw_listener, alt_svc_max_age),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t listener_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct sp_raw_listener, listener_fields),
};

static const cyaml_schema_field_t timeouts_fields[] = {
    CYAML_FIELD_UINT_PTR("connect_ms", OPT, struct sp_raw_timeouts, connect_ms),
    CYAML_FIELD_UINT_PTR("response_ms", OPT, struct sp_raw_timeouts, response_ms),
    CYAML_FIELD_UINT_PTR("client_idle_ms", OPT, struct sp_raw_timeouts, client_idle_ms),
    CYAML_FIELD_UINT_PTR("backend_idle_ms", OPT, struct sp_raw_timeouts, backend_idle_ms),
    CYAML_FIELD_UINT_PTR("shutdown_ms", OPT, struct sp_raw_timeouts, shutdown_ms),
    CYAML_FIELD_UINT_PTR("body_idle_ms", OPT, struct sp_raw_timeouts, body_idle_ms),
    CYAML_FIELD_UINT_PTR("request_ms", OPT, struct sp_raw_timeouts, request_ms),
    CYAML_FIELD_UINT_PTR("try_ms", OPT, struct sp_raw_timeouts, try_ms),
    CYAML_FIELD_UINT_PTR("stall_warn_ms", OPT, struct sp_raw_timeouts, stall_warn_ms),
    CYAML_FIELD_END,
};

/* The timeouts an upstream may override: those that bound its own requests and connections. */
static const cyaml_schema_field_t upstream_timeouts_fields[] = {
    CYAML_FIELD_UINT_PTR("connect_ms", OPT, struct sp_raw_timeouts, connect_ms),
    CYAML_FIELD_UINT_PTR("response_ms", OPT, struct sp_raw_timeouts, response_ms),
    CYAML_FIELD_UINT_PTR("body_idle_ms", OPT, struct sp_raw_timeouts, body_idle_ms),
    CYAML_FIELD_UINT_PTR("request_ms", OPT, struct sp_raw_timeouts, request_ms),
    CYAML_FIELD_UINT_PTR("try_ms", OPT, struct sp_raw_timeouts, try_ms),
    CYAML_FIELD_UINT_PTR("stall_warn_ms", OPT, struct sp_raw_timeouts, stall_warn_ms),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t limits_fields[] = {
    CYAML_FIELD_UINT_PTR("max_header_bytes", OPT, struct sp_raw_limits, max_header_bytes),
    CYAML_FIELD_UINT_PTR("max_headers", OPT, struct sp_raw_limits, max_headers),
    CYAML_FIELD_UINT_PTR("max_streams_per_connection", OPT, struct sp_raw_limits,
                         max_streams_per_connection),
    CYAML_FIELD_UINT_PTR("max_body_bytes", OPT, struct sp_raw_limits, max_body_bytes),
    CYAML_FIELD_UINT_PTR("stream_window_bytes", OPT, struct sp_raw_limits, stream_window_bytes),
    CYAML_FIELD_UINT_PTR("connection_window_bytes", OPT, struct sp_raw_limits,
                         connection_window_bytes),
    CYAML_FIELD_UINT_PTR("max_connections", OPT, struct sp_raw_limits, max_connections),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t method_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t route_fields[] = {
    CYAML_FIELD_STRING_PTR("host", OPT_PTR, struct sp_raw_route, host, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("path_prefix", OPT_PTR, struct sp_raw_route, path_prefix, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("methods", OPT_PTR, struct sp_raw_route, methods, &method_entry, 1,
                         CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t route_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct sp_raw_route, route_fields),
};

static const cyaml_schema_field_t backend_fields[] = {
    CYAML_FIELD_STRING_PTR("id", CYAML_FLAG_POINTER, struct sp_raw_backend, id, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("address", CYAML_FLAG_POINTER, struct sp_raw_backend, address, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_ENUM_PTR("protocol", OPT | CYAML_FLAG_STRICT, struct sp_raw_backend, protocol,
                         protocol_strings, CYAML_ARRAY_LEN(protocol_strings)),
    CYAML_FIELD_BOOL_PTR("tls", OPT, struct sp_raw_backend, tls),
    CYAML_FIELD_UINT_PTR("weight", OPT, struct sp_raw_backend, weight),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t backend_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct sp_raw_backend, backend_fields),
};

static const cyaml_schema_field_t tls_fields[] = {
    CYAML_FIELD_STRING_PTR("ca_file", OPT_PTR, struct sp_raw_tls, ca_file, 0, CYAML_UNLIMITED),
    CYAML_FIELD_BOOL_PTR("verify", OPT, struct sp_raw_tls, verify),
    CYAML_FIELD_STRING_PTR("server_name", OPT_PTR, struct sp_raw_tls, server_name, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("client_cert", OPT_PTR, struct sp_raw_tls, client_cert, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("client_key", OPT_PTR, struct sp_raw_tls, client_key, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t pool_fields[] = {
    CYAML_FIELD_UINT_PTR("max_connections_per_backend", OPT, struct sp_raw_pool,
                         max_connections_per_backend),
    CYAML_FIELD_UINT_PTR("max_streams_per_connection", OPT, struct sp_raw_pool,
                         max_streams_per_connection),
    CYAML_FIELD_UINT_PTR("max_queue", OPT, struct sp_raw_pool, max_queue),
    CYAML_FIELD_UINT_PTR("idle_timeout_ms", OPT, struct sp_raw_pool, idle_timeout_ms),
    CYAML_FIELD_UINT_PTR("keepalive_ms", OPT, struct sp_raw_pool, keepalive_ms),
    CYAML_FIELD_UINT_PTR("dead_after_ms", OPT, struct sp_raw_pool, dead_after_ms),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t passive_health_fields[] = {
    CYAML_FIELD_UINT_PTR("eject_failures", OPT, struct sp_raw_passive_health, eject_failures),
    CYAML_FIELD_UINT_PTR("eject_5xx", OPT, struct sp_raw_passive_health, eject_5xx),
    CYAML_FIELD_UINT_PTR("degrade_failures", OPT, struct sp_raw_passive_health, degrade_failures),
    CYAML_FIELD_UINT_PTR("eject_ratio_pct", OPT, struct sp_raw_passive_health, eject_ratio_pct),
    CYAML_FIELD_UINT_PTR("degrade_ratio_pct", OPT, struct sp_raw_passive_health, degrade_ratio_pct),
    CYAML_FIELD_UINT_PTR("min_requests", OPT, struct sp_raw_passive_health, min_requests),
    CYAML_FIELD_UINT_PTR("window_ms", OPT, struct sp_raw_passive_health, window_ms),
    CYAML_FIELD_UINT_PTR("degraded_weight_pct", OPT, struct sp_raw_passive_health,
                         degraded_weight_pct),
    CYAML_FIELD_UINT_PTR("recovery_ms", OPT, struct sp_raw_passive_health, recovery_ms),
    CYAML_FIELD_UINT_PTR("max_recovery_ms", OPT, struct sp_raw_passive_health, max_recovery_ms),
    CYAML_FIELD_UINT_PTR("panic_threshold_pct", OPT, struct sp_raw_passive_health,
                         panic_threshold_pct),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t health_check_fields[] = {
    CYAML_FIELD_STRING_PTR("path", CYAML_FLAG_POINTER, struct sp_raw_health_check, path, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_UINT_PTR("interval_ms", OPT, struct sp_raw_health_check, interval_ms),
    CYAML_FIELD_UINT_PTR("timeout_ms", OPT, struct sp_raw_health_check, timeout_ms),
    CYAML_FIELD_STRING_PTR("expected_status", OPT_PTR, struct sp_raw_health_check, expected_status,
                           0, CYAML_UNLIMITED),
    CYAML_FIELD_UINT_PTR("fall", OPT, struct sp_raw_health_check, fall),
    CYAML_FIELD_UINT_PTR("rtt_degrade_factor", OPT, struct sp_raw_health_check, rtt_degrade_factor),
    CYAML_FIELD_UINT_PTR("rise", OPT, struct sp_raw_health_check, rise),
    CYAML_FIELD_STRING_PTR("host", OPT_PTR, struct sp_raw_health_check, host, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t breaker_fields[] = {
    CYAML_FIELD_UINT_PTR("max_failures", OPT, struct sp_raw_breaker, max_failures),
    CYAML_FIELD_UINT_PTR("failure_ratio_pct", OPT, struct sp_raw_breaker, failure_ratio_pct),
    CYAML_FIELD_UINT_PTR("min_requests", OPT, struct sp_raw_breaker, min_requests),
    CYAML_FIELD_UINT_PTR("window_ms", OPT, struct sp_raw_breaker, window_ms),
    CYAML_FIELD_UINT_PTR("open_ms", OPT, struct sp_raw_breaker, open_ms),
    CYAML_FIELD_UINT_PTR("max_open_ms", OPT, struct sp_raw_breaker, max_open_ms),
    CYAML_FIELD_UINT_PTR("half_open_requests", OPT, struct sp_raw_breaker, half_open_requests),
    CYAML_FIELD_UINT_PTR("half_open_successes", OPT, struct sp_raw_breaker, half_open_successes),
    CYAML_FIELD_UINT_PTR("max_concurrent", OPT, struct sp_raw_breaker, max_concurrent),
    CYAML_FIELD_UINT_PTR("max_pending", OPT, struct sp_raw_breaker, max_pending),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t retries_fields[] = {
    CYAML_FIELD_UINT_PTR("max", OPT, struct sp_raw_retries, max),
    CYAML_FIELD_UINT_PTR("budget_pct", OPT, struct sp_raw_retries, budget_pct),
    CYAML_FIELD_UINT_PTR("min_retries", OPT, struct sp_raw_retries, min_retries),
    CYAML_FIELD_UINT_PTR("backoff_ms", OPT, struct sp_raw_retries, backoff_ms),
    CYAML_FIELD_UINT_PTR("max_backoff_ms", OPT, struct sp_raw_retries, max_backoff_ms),
    CYAML_FIELD_UINT_PTR("replay_body_bytes", OPT, struct sp_raw_retries, replay_body_bytes),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t hash_key_fields[] = {
    CYAML_FIELD_ENUM("source", CYAML_FLAG_STRICT, struct sp_raw_hash_key, source,
                     hash_source_strings, CYAML_ARRAY_LEN(hash_source_strings)),
    CYAML_FIELD_STRING_PTR("name", OPT_PTR, struct sp_raw_hash_key, name, 0, CYAML_UNLIMITED),
    CYAML_FIELD_UINT_PTR("ipv4_prefix", OPT, struct sp_raw_hash_key, ipv4_prefix),
    CYAML_FIELD_UINT_PTR("ipv6_prefix", OPT, struct sp_raw_hash_key, ipv6_prefix),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t sticky_fields[] = {
    CYAML_FIELD_STRING_PTR("name", OPT_PTR, struct sp_raw_sticky, name, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("secret", CYAML_FLAG_POINTER, struct sp_raw_sticky, secret, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_UINT_PTR("max_age", OPT, struct sp_raw_sticky, max_age),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t upstream_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, struct sp_raw_upstream, name, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_ENUM_PTR("strategy", OPT | CYAML_FLAG_STRICT, struct sp_raw_upstream, strategy,
                         strategy_strings, CYAML_ARRAY_LEN(strategy_strings)),
    CYAML_FIELD_MAPPING_PTR("hash_key", OPT_PTR, struct sp_raw_upstream, hash_key, hash_key_fields),
    CYAML_FIELD_MAPPING_PTR("sticky_cookie", OPT_PTR, struct sp_raw_upstream, sticky,
                            sticky_fields),
    CYAML_FIELD_UINT_PTR("slow_start_ms", OPT, struct sp_raw_upstream, slow_start_ms),
    CYAML_FIELD_MAPPING_PTR("passive_health", OPT_PTR, struct sp_raw_upstream, passive_health,
                            passive_health_fields),
    CYAML_FIELD_MAPPING_PTR("health_check", OPT_PTR, struct sp_raw_upstream, health_check,
                            health_check_fields),
    CYAML_FIELD_MAPPING_PTR("breaker", OPT_PTR, struct sp_raw_upstream, breaker, breaker_fields),
    CYAML_FIELD_MAPPING_PTR("retries", OPT_PTR, struct sp_raw_upstream, retries, retries_fields),
    CYAML_FIELD_SEQUENCE("routes", CYAML_FLAG_POINTER, struct sp_raw_upstream, routes, &route_entry,
                         1, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("backends", CYAML_FLAG_POINTER, struct sp_raw_upstream, backends,
                         &backend_entry, 1, CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("tls", OPT_PTR, struct sp_raw_upstream, tls, tls_fields),
    CYAML_FIELD_MAPPING_PTR("pool", OPT_PTR, struct sp_raw_upstream, pool, pool_fields),
    CYAML_FIELD_MAPPING_PTR("timeouts", OPT_PTR, struct sp_raw_upstream, timeouts,
                            upstream_timeouts_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t upstream_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct sp_raw_upstream, upstream_fields),
};

static const cyaml_schema_field_t config_fields[] = {
    CYAML_FIELD_UINT_PTR("workers", OPT, struct sp_raw_config, workers),
    CYAML_FIELD_MAPPING_PTR("log", OPT_PTR, struct sp_raw_config, log, log_fields),
    CYAML_FIELD_STRING_PTR("default_upstream", OPT_PTR, struct sp_raw_config, default_upstream, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("listeners", CYAML_FLAG_POINTER, struct sp_raw_config, listeners,
                         &listener_entry, 1, CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("timeouts", OPT_PTR, struct sp_raw_config, timeouts, timeouts_fields),
    CYAML_FIELD_MAPPING_PTR("limits", OPT_PTR, struct sp_raw_config, limits, limits_fields),
    CYAML_FIELD_SEQUENCE("upstreams", CYAML_FLAG_POINTER, struct sp_raw_config, upstreams,
                         &upstream_entry, 1, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t config_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct sp_raw_config, config_fields),
};

/* Collects libcyaml's error lines into one message; see on_cyaml_log. */
struct cyaml_log_sink {
    char *text; /* owned; NULL until the first error line */
};

/* libcyaml hands us its printf-style format: tell the compiler so it checks it as one. */
static void on_cyaml_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
    __attribute__((format(printf, 3, 0)));

static void on_cyaml_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    struct cyaml_log_sink *sink = ctx;
    char *line = NULL;
    char *joined;
    size_t len;

    if (level < CYAML_LOG_ERROR)
        return;
    if (vasprintf(&line, fmt, args) == -1)
        return; /* losing a diagnostic line is fine: the load still fails with its code */
    len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == ' '))
        line[--len] = '\0';
    if (len == 0) {
        free(line);
        return;
    }
    joined = sink->text == NULL ? sp_config_strf("%s", line)
                                : sp_config_strf("%s; %s", sink->text, line);
    free(sink->text);
    sink->text = joined;
    free(line);
}

static cyaml_config_t schema_config(struct cyaml_log_sink *sink)
{
    cyaml_config_t cfg = {
        .log_fn = on_cyaml_log,
        .log_ctx = sink,
        .mem_fn = cyaml_mem,
        .mem_ctx = NULL,
        .log_level = CYAML_LOG_ERROR,
        .flags = CYAML_CFG_NO_ALIAS, /* config_tree.c refuses aliases too */
    };

    return cfg;
}

int sp_config_raw_load(const char *data, size_t len, struct sp_raw_config **ret_raw,
                       char **ret_message)
{
    struct cyaml_log_sink sink = {.text = NULL};
    cyaml_config_t cfg = schema_config(&sink);
    cyaml_data_t *out = NULL;
    cyaml_err_t err;

    err = cyaml_load_data((const uint8_t *)data, len, &cfg, &config_schema, &out, NULL);
    if (err != CYAML_OK) {
        *ret_message =
            sp_config_strf("libcyaml: %s%s%s", cyaml_strerror(err), sink.text != NULL ? ": " : "",
                           sink.text != NULL ? sink.text : "");
        free(sink.text);
        return -EINVAL;
    }
    free(sink.text);
    *ret_raw = out;
    return 0;
}

void sp_config_raw_free(struct sp_raw_config *raw)
{
    struct cyaml_log_sink sink = {.text = NULL};
    cyaml_config_t cfg = schema_config(&sink);

    if (raw == NULL)
        return;
    (void)cyaml_free(&cfg, &config_schema, raw, 0); /* only fails on a NULL config or schema */
    free(sink.text);
}
