/* test_config.c: unit tests of src/config: defaults, every key valid and invalid, checks across
 * entries, and the exact text and line of the errors. Each test writes its YAML with mkstemps
 * into a private directory under /tmp that also holds the cert and key files it names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

struct fixture {
    char dir[64];                   /* private temp directory */
    char *path;                     /* owned; the last YAML written */
    struct sp_config *config;       /* owned; the last config loaded */
    struct sp_config_errors errors; /* the last load's errors */
};

/* The parts of a generated config; NULL picks the minimal valid default for that part. */
struct doc {
    const char *top;      /* extra top-level lines */
    const char *name;     /* value of upstreams[0].name */
    const char *listener; /* body of listeners[0] */
    const char *upstream; /* extra lines of upstreams[0] */
    const char *route;    /* body of upstreams[0].routes[0] */
    const char *backend;  /* body of upstreams[0].backends[0] */
};

static const char default_listener[] = "address: 127.0.0.1\nport: 8443\ncert: server.crt\n"
                                       "key: server.key";
static const char default_route[] = "path_prefix: /";
static const char default_backend[] = "id: app-1\naddress: 127.0.0.1:9443";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char path[128];

    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/spooky-test-config-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/server.crt", f->dir);
    write_file(path, "not parsed by the config module\n");
    snprintf(path, sizeof(path), "%s/server.key", f->dir);
    write_file(path, "not parsed by the config module\n");
    snprintf(path, sizeof(path), "%s/subdir", f->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    *state = f;
    return 0;
}

static void reset(struct fixture *f)
{
    if (f->path != NULL)
        (void)unlink(f->path);
    free(f->path);
    f->path = NULL;
    sp_config_free(f->config);
    f->config = NULL;
    sp_config_errors_fini(&f->errors);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];

    reset(f);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* Appends `text` to `out`, each line indented by `indent` spaces, the first after `first`. */
static void append_indented(char *out, size_t cap, const char *first, int indent, const char *text)
{
    const char *line = text;
    bool is_first = true;

    while (*line != '\0') {
        const char *nl = strchr(line, '\n');
        int len = nl != NULL ? (int)(nl - line) : (int)strlen(line);
        size_t used = strlen(out);

        /* continuation lines line up with the text after `first` */
        snprintf(out + used, cap - used, "%*s%s%.*s\n",
                 indent + (is_first ? 0 : (int)strlen(first)), "", is_first ? first : "", len,
                 line);
        is_first = false;
        line += len + (nl != NULL ? 1 : 0);
    }
}

static void build(const struct doc *d, char *out, size_t cap)
{
    out[0] = '\0';
    if (d->top != NULL)
        append_indented(out, cap, "", 0, d->top);
    strncat(out, "listeners:\n", cap - strlen(out) - 1);
    append_indented(out, cap, "- ", 2, d->listener != NULL ? d->listener : default_listener);
    snprintf(out + strlen(out), cap - strlen(out), "upstreams:\n  - name: %s\n",
             d->name != NULL ? d->name : "app");
    if (d->upstream != NULL)
        append_indented(out, cap, "  ", 2, d->upstream);
    strncat(out, "    routes:\n", cap - strlen(out) - 1);
    append_indented(out, cap, "- ", 6, d->route != NULL ? d->route : default_route);
    strncat(out, "    backends:\n", cap - strlen(out) - 1);
    append_indented(out, cap, "- ", 6, d->backend != NULL ? d->backend : default_backend);
}

/* Writes `yaml` to a new file in the fixture's directory and loads it. */
static int load_text(struct fixture *f, const char *yaml)
{
    char tmpl[128];
    int fd;

    reset(f);
    snprintf(tmpl, sizeof(tmpl), "%s/cfg-XXXXXX.yaml", f->dir);
    fd = mkstemps(tmpl, 5);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    assert_int_equal(close(fd), 0);
    f->path = strdup(tmpl);
    return sp_config_load(f->path, &f->config, &f->errors);
}

static int load_doc(struct fixture *f, const struct doc *d)
{
    char yaml[4096];

    build(d, yaml, sizeof(yaml));
    return load_text(f, yaml);
}

/* The 1-based line of the first line of the last file that contains `needle`. */
static unsigned line_of(struct fixture *f, const char *yaml, const char *needle)
{
    const char *at = strstr(yaml, needle);
    unsigned line = 1;

    (void)f;
    assert_non_null(at);
    for (const char *p = yaml; p < at; p++)
        line += *p == '\n';
    return line;
}

/* Fails unless the errors contain exactly "PATH:LINE: expected" (":LINE" omitted for 0). */
static void assert_has_error(struct fixture *f, unsigned line, const char *expected)
{
    char want[1024], got[1024];

    if (line > 0)
        snprintf(want, sizeof(want), "%s:%u: %s", f->path, line, expected);
    else
        snprintf(want, sizeof(want), "%s: %s", f->path, expected);
    for (size_t i = 0; i < f->errors.count; i++) {
        if (strcmp(sp_config_error_format(&f->errors.items[i], got, sizeof(got)), want) == 0)
            return;
    }
    for (size_t i = 0; i < f->errors.count; i++)
        print_message("got:  %s\n", sp_config_error_format(&f->errors.items[i], got, sizeof(got)));
    fail_msg("missing error: %s", want);
}

/* The defaults of passive_health, breaker and retries, as config.h gives them. */
static void assert_policy_defaults(const struct sp_upstream_conf *u)
{
    assert_int_equal(u->passive_health.eject_failures, 5);
    assert_int_equal(u->passive_health.eject_5xx, 5);
    assert_int_equal(u->passive_health.degrade_failures, 2);
    assert_int_equal(u->passive_health.eject_ratio_pct, 50);
    assert_int_equal(u->passive_health.degrade_ratio_pct, 10);
    assert_int_equal(u->passive_health.min_requests, 20);
    assert_int_equal(u->passive_health.window_ms, 10000);
    assert_int_equal(u->passive_health.degraded_weight_pct, 50);
    assert_int_equal(u->passive_health.recovery_ms, 1000);
    assert_int_equal(u->passive_health.max_recovery_ms, 60000);
    assert_int_equal(u->passive_health.panic_threshold_pct, 50);
    assert_int_equal(u->breaker.max_failures, 5);
    assert_int_equal(u->breaker.failure_ratio_pct, 0);
    assert_int_equal(u->breaker.min_requests, 20);
    assert_int_equal(u->breaker.window_ms, 10000);
    assert_int_equal(u->breaker.open_ms, 5000);
    assert_int_equal(u->breaker.max_open_ms, 60000);
    assert_int_equal(u->breaker.half_open_requests, 1);
    assert_int_equal(u->breaker.half_open_successes, 1);
    assert_int_equal(u->breaker.max_concurrent, 0);
    assert_int_equal(u->breaker.max_pending, 0);
    assert_int_equal(u->retries.max, 2);
    assert_int_equal(u->retries.budget_pct, 20);
    assert_int_equal(u->retries.min_retries, 3);
    assert_int_equal(u->retries.backoff_ms, 10);
    assert_int_equal(u->retries.max_backoff_ms, 250);
}

static void test_minimal_config_loads_with_every_default(void **state)
{
    struct fixture *f = *state;
    const struct doc d = {0};
    const struct sp_config *c;

    assert_int_equal(load_doc(f, &d), 0);
    assert_int_equal(f->errors.count, 0);
    c = f->config;
    assert_int_equal(c->workers, 0);
    assert_int_equal(c->log_level, SP_LOG_LEVEL_INFO);
    assert_int_equal(c->log_format, SP_LOG_FORMAT_TEXT);
    assert_int_equal(c->listeners_count, 1);
    assert_int_equal(c->listeners[0].alt_svc_max_age_s, 86400);
    assert_int_equal(c->timeouts.connect_ms, 5000);
    assert_int_equal(c->timeouts.response_ms, 30000);
    assert_int_equal(c->timeouts.client_idle_ms, 30000);
    assert_int_equal(c->timeouts.backend_idle_ms, 30000);
    assert_int_equal(c->timeouts.shutdown_ms, 5000);
    assert_int_equal(c->timeouts.body_idle_ms, 60000);
    assert_int_equal(c->timeouts.request_ms, 0);
    assert_int_equal(c->timeouts.try_ms, 0);
    assert_int_equal(c->timeouts.stall_warn_ms, 5000);
    assert_int_equal(c->limits.max_header_bytes, 65536);
    assert_int_equal(c->limits.max_headers, 100);
    assert_int_equal(c->limits.max_streams_per_connection, 100);
    assert_int_equal(c->limits.max_body_bytes, 0);
    assert_int_equal(c->limits.stream_window_bytes, 262144);
    assert_int_equal(c->limits.connection_window_bytes, 1048576);
    assert_int_equal(c->limits.max_connections, 10000);
    assert_int_equal(c->upstreams[0].strategy, SP_LB_ROUND_ROBIN);
    assert_null(c->upstreams[0].routes[0].host);
    assert_string_equal(c->upstreams[0].routes[0].path_prefix, "/");
    assert_int_equal(c->upstreams[0].routes[0].methods_count, 0);
    assert_int_equal(c->upstreams[0].backends[0].protocol, SP_BACKEND_PROTO_H3);
    assert_true(c->upstreams[0].backends[0].tls);
    assert_null(c->upstreams[0].tls.client_cert_file);
    assert_null(c->upstreams[0].tls.client_key_file);
    assert_int_equal(c->upstreams[0].backends[0].weight, 1);
    assert_null(c->upstreams[0].tls.ca_file);
    assert_true(c->upstreams[0].tls.verify);
    assert_null(c->upstreams[0].tls.server_name);
    assert_int_equal(c->upstreams[0].pool.max_connections_per_backend, 4);
    assert_int_equal(c->upstreams[0].pool.max_streams_per_connection, 100);
    assert_int_equal(c->upstreams[0].pool.max_queue, 1024);
    assert_int_equal(c->upstreams[0].pool.idle_timeout_ms, 60000);
    assert_int_equal(c->upstreams[0].pool.keepalive_ms, 5000);
    assert_int_equal(c->upstreams[0].pool.dead_after_ms, 1000);
    assert_true(c->access_log);
    assert_null(c->default_upstream);
    assert_int_equal(c->upstreams[0].hash_key.source, SP_HASH_NONE);
    assert_null(c->upstreams[0].hash_key.name);
    assert_int_equal(c->upstreams[0].hash_key.ipv4_prefix, 32);
    assert_int_equal(c->upstreams[0].hash_key.ipv6_prefix, 64);
    assert_false(c->upstreams[0].sticky.enabled);
    assert_null(c->upstreams[0].sticky.cookie_name);
    assert_null(c->upstreams[0].sticky.secret);
    assert_int_equal(c->upstreams[0].sticky.max_age_s, 0);
    assert_int_equal(c->upstreams[0].slow_start_ms, 0);
    assert_policy_defaults(&c->upstreams[0]);
}

static const struct doc full_doc = {
    .top = "workers: 3\nlog:\n  level: debug\n  format: json\n  access: false\n"
           "default_upstream: app\ntimeouts:\n  connect_ms: 1\n"
           "  response_ms: 2\n  client_idle_ms: 3\n  backend_idle_ms: 4\n  shutdown_ms: 5\n"
           "  body_idle_ms: 6\n  request_ms: 7\n  try_ms: 14\n"
           "limits:\n  max_header_bytes: 2048\n  max_headers: 9\n"
           "  max_streams_per_connection: 11\n  max_body_bytes: 12\n"
           "  stream_window_bytes: 20000\n  connection_window_bytes: 30000\n"
           "  max_connections: 13",
    .listener = "address: \"::1\"\nport: 443\ncert: server.crt\nkey: subdir/../server.key\n"
                "alt_svc_max_age: 0",
    .upstream = "strategy: rendezvous\ntls:\n  ca_file: server.crt\n  verify: false\n"
                "  server_name: backend.internal\n  client_cert: server.crt\n"
                "  client_key: server.key\npool:\n  max_connections_per_backend: 5\n"
                "  max_streams_per_connection: 6\n  max_queue: 0\n  idle_timeout_ms: 8\n"
                "hash_key:\n  source: header\n  name: X-User-ID\n"
                "sticky_cookie:\n  name: SID_2\n  secret: 0123456789abcdef\n  max_age: 3600\n"
                "slow_start_ms: 10000",
    .route = "host: API.Example.com\npath_prefix: /api\nmethods: [GET, POST]",
    .backend = "id: b.1_x-y\naddress: \"[::1]:9443\"\nprotocol: http1\ntls: true\nweight: 1000",
};

static void test_every_top_level_key_is_loaded_into_the_config(void **state)
{
    struct fixture *f = *state;
    const struct sp_config *c;

    assert_int_equal(load_doc(f, &full_doc), 0);
    c = f->config;
    assert_string_equal(c->path, f->path);
    assert_int_equal(c->workers, 3);
    assert_int_equal(c->log_level, SP_LOG_LEVEL_DEBUG);
    assert_int_equal(c->log_format, SP_LOG_FORMAT_JSON);
    assert_false(c->access_log);
    assert_string_equal(c->default_upstream, "app");
    assert_int_equal(c->timeouts.connect_ms, 1);
    assert_int_equal(c->timeouts.response_ms, 2);
    assert_int_equal(c->timeouts.client_idle_ms, 3);
    assert_int_equal(c->timeouts.backend_idle_ms, 4);
    assert_int_equal(c->timeouts.shutdown_ms, 5);
    assert_int_equal(c->timeouts.body_idle_ms, 6);
    assert_int_equal(c->timeouts.request_ms, 7);
    assert_int_equal(c->timeouts.try_ms, 14);
    assert_int_equal(c->limits.max_header_bytes, 2048);
    assert_int_equal(c->limits.max_headers, 9);
    assert_int_equal(c->limits.max_streams_per_connection, 11);
    assert_int_equal(c->limits.max_body_bytes, 12);
    assert_int_equal(c->limits.stream_window_bytes, 20000);
    assert_int_equal(c->limits.connection_window_bytes, 30000);
    assert_int_equal(c->limits.max_connections, 13);
}

static void test_every_listener_key_is_loaded_into_the_config(void **state)
{
    struct fixture *f = *state;
    const struct sp_listener_conf *l;
    const struct sockaddr_in6 *sin6;
    char expect[256];

    assert_int_equal(load_doc(f, &full_doc), 0);
    l = &f->config->listeners[0];
    assert_string_equal(l->address, "::1");
    assert_int_equal(l->port, 443);
    snprintf(expect, sizeof(expect), "%s/server.crt", f->dir);
    assert_string_equal(l->cert_file, expect);
    snprintf(expect, sizeof(expect), "%s/subdir/../server.key", f->dir);
    assert_string_equal(l->key_file, expect);
    assert_int_equal(l->alt_svc_max_age_s, 0);
    sin6 = (const struct sockaddr_in6 *)&l->addr;
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6->sin6_port), 443);
    assert_int_equal(l->addrlen, sizeof(*sin6));
}

static void test_every_upstream_key_is_loaded_into_the_config(void **state)
{
    struct fixture *f = *state;
    const struct sp_upstream_conf *u;
    const struct sockaddr_in6 *sin6;
    char expect[256];

    assert_int_equal(load_doc(f, &full_doc), 0);
    u = &f->config->upstreams[0];
    assert_int_equal(u->strategy, SP_LB_RENDEZVOUS);
    snprintf(expect, sizeof(expect), "%s/server.crt", f->dir);
    assert_string_equal(u->tls.ca_file, expect);
    assert_false(u->tls.verify);
    assert_string_equal(u->tls.server_name, "backend.internal");
    assert_string_equal(u->tls.client_cert_file, expect);
    snprintf(expect, sizeof(expect), "%s/server.key", f->dir);
    assert_string_equal(u->tls.client_key_file, expect);
    assert_int_equal(u->pool.max_connections_per_backend, 5);
    assert_int_equal(u->pool.max_streams_per_connection, 6);
    assert_int_equal(u->pool.max_queue, 0);
    assert_int_equal(u->pool.idle_timeout_ms, 8);
    assert_int_equal(u->hash_key.source, SP_HASH_HEADER);
    assert_string_equal(u->hash_key.name, "x-user-id"); /* header names compare in lower case */
    assert_true(u->sticky.enabled);
    assert_string_equal(u->sticky.cookie_name, "SID_2");
    assert_string_equal(u->sticky.secret, "0123456789abcdef");
    assert_int_equal(u->sticky.max_age_s, 3600);
    assert_int_equal(u->slow_start_ms, 10000);
    assert_string_equal(u->routes[0].host, "api.example.com");
    assert_string_equal(u->routes[0].path_prefix, "/api");
    assert_int_equal(u->routes[0].methods_count, 2);
    assert_string_equal(u->routes[0].methods[1], "POST");
    assert_string_equal(u->backends[0].id, "b.1_x-y");
    assert_int_equal(u->backends[0].protocol, SP_BACKEND_PROTO_HTTP1);
    assert_true(u->backends[0].tls);
    assert_int_equal(u->backends[0].weight, 1000);
    sin6 = (const struct sockaddr_in6 *)&u->backends[0].addr;
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6->sin6_port), 9443);
}

static void test_every_policy_key_is_loaded_into_the_config(void **state)
{
    struct fixture *f = *state;
    const struct doc d = {
        .upstream = "passive_health:\n  eject_failures: 7\n  eject_5xx: 8\n  degrade_failures: 3\n"
                    "  eject_ratio_pct: 60\n  degrade_ratio_pct: 15\n  min_requests: 30\n"
                    "  window_ms: 20000\n  degraded_weight_pct: 25\n  recovery_ms: 2000\n"
                    "  max_recovery_ms: 120000\n  panic_threshold_pct: 70\n"
                    "breaker:\n  max_failures: 9\n  failure_ratio_pct: 40\n  min_requests: 50\n"
                    "  window_ms: 30000\n  open_ms: 6000\n  max_open_ms: 90000\n"
                    "  half_open_requests: 3\n  half_open_successes: 2\n  max_concurrent: 500\n"
                    "retries:\n  max: 4\n  budget_pct: 30\n  min_retries: 6\n  backoff_ms: 25\n"
                    "  max_backoff_ms: 1000",
    };
    const struct sp_upstream_conf *u;

    assert_int_equal(load_doc(f, &d), 0);
    u = &f->config->upstreams[0];
    assert_int_equal(u->passive_health.eject_failures, 7);
    assert_int_equal(u->passive_health.eject_5xx, 8);
    assert_int_equal(u->passive_health.degrade_failures, 3);
    assert_int_equal(u->passive_health.eject_ratio_pct, 60);
    assert_int_equal(u->passive_health.degrade_ratio_pct, 15);
    assert_int_equal(u->passive_health.min_requests, 30);
    assert_int_equal(u->passive_health.window_ms, 20000);
    assert_int_equal(u->passive_health.degraded_weight_pct, 25);
    assert_int_equal(u->passive_health.recovery_ms, 2000);
    assert_int_equal(u->passive_health.max_recovery_ms, 120000);
    assert_int_equal(u->passive_health.panic_threshold_pct, 70);
    assert_int_equal(u->breaker.max_failures, 9);
    assert_int_equal(u->breaker.failure_ratio_pct, 40);
    assert_int_equal(u->breaker.min_requests, 50);
    assert_int_equal(u->breaker.window_ms, 30000);
    assert_int_equal(u->breaker.open_ms, 6000);
    assert_int_equal(u->breaker.max_open_ms, 90000);
    assert_int_equal(u->breaker.half_open_requests, 3);
    assert_int_equal(u->breaker.half_open_successes, 2);
    assert_int_equal(u->breaker.max_concurrent, 500);
    assert_int_equal(u->retries.max, 4);
    assert_int_equal(u->retries.budget_pct, 30);
    assert_int_equal(u->retries.min_retries, 6);
    assert_int_equal(u->retries.backoff_ms, 25);
    assert_int_equal(u->retries.max_backoff_ms, 1000);
}

static void test_health_check_keys_are_loaded_into_the_config(void **state)
{
    struct fixture *f = *state;
    const struct doc d = {
        .upstream = "health_check:\n  path: /healthz\n  interval_ms: 500\n  timeout_ms: 250\n"
                    "  expected_status: \"200-204\"\n  fall: 4\n  rise: 5\n"
                    "  host: health.internal:8443",
    };
    const struct sp_health_check_conf *hc;

    assert_int_equal(load_doc(f, &d), 0);
    hc = &f->config->upstreams[0].health_check;
    assert_true(hc->enabled);
    assert_string_equal(hc->path, "/healthz");
    assert_int_equal(hc->interval_ms, 500);
    assert_int_equal(hc->timeout_ms, 250);
    assert_int_equal(hc->status_min, 200);
    assert_int_equal(hc->status_max, 204);
    assert_int_equal(hc->fall, 4);
    assert_int_equal(hc->rise, 5);
    assert_string_equal(hc->host, "health.internal:8443");
}

static void test_health_check_gets_defaults_and_is_off_when_absent(void **state)
{
    struct fixture *f = *state;
    const struct doc on = {.upstream = "health_check:\n  path: /h\n  expected_status: 204"};
    const struct doc off = {.upstream = "slow_start_ms: 0"};
    const struct sp_health_check_conf *hc;

    assert_int_equal(load_doc(f, &on), 0);
    hc = &f->config->upstreams[0].health_check;
    assert_true(hc->enabled);
    assert_int_equal(hc->interval_ms, 2000);
    assert_int_equal(hc->timeout_ms, 1000);
    assert_int_equal(hc->status_min, 204);
    assert_int_equal(hc->status_max, 204);
    assert_int_equal(hc->fall, 3);
    assert_int_equal(hc->rise, 2);
    assert_null(hc->host);
    assert_int_equal(load_doc(f, &off), 0);
    hc = &f->config->upstreams[0].health_check;
    assert_false(hc->enabled);
    assert_null(hc->path);
}

static void test_empty_policy_sections_get_every_default(void **state)
{
    struct fixture *f = *state;
    const struct doc d = {.upstream = "passive_health: {}\nbreaker: {}\nretries: {}"};

    assert_int_equal(load_doc(f, &d), 0);
    assert_policy_defaults(&f->config->upstreams[0]);
}

static void test_a_partial_policy_section_keeps_the_other_defaults(void **state)
{
    struct fixture *f = *state;
    const struct doc d = {.upstream = "passive_health:\n  eject_5xx: 0\n"
                                      "breaker:\n  max_concurrent: 64\n"
                                      "retries:\n  max: 0"};
    struct sp_upstream_conf want;

    assert_int_equal(load_doc(f, &d), 0);
    want = f->config->upstreams[0];
    assert_int_equal(want.passive_health.eject_5xx, 0);
    assert_int_equal(want.breaker.max_concurrent, 64);
    assert_int_equal(want.retries.max, 0);
    /* put the defaults back: everything else must have been a default already */
    want.passive_health.eject_5xx = 5;
    want.breaker.max_concurrent = 0;
    want.retries.max = 2;
    assert_policy_defaults(&want);
}

static void test_an_upstream_without_timeouts_inherits_every_global_value(void **state)
{
    struct fixture *f = *state;
    const struct doc d = {.top = "timeouts:\n  connect_ms: 11\n  response_ms: 12\n"
                                 "  client_idle_ms: 13\n  backend_idle_ms: 14\n"
                                 "  shutdown_ms: 15\n  body_idle_ms: 16\n  request_ms: 17\n"
                                 "  try_ms: 18"};
    const struct sp_timeouts_conf *t;

    assert_int_equal(load_doc(f, &d), 0);
    t = &f->config->upstreams[0].timeouts;
    assert_int_equal(t->connect_ms, 11);
    assert_int_equal(t->response_ms, 12);
    assert_int_equal(t->client_idle_ms, 13);
    assert_int_equal(t->backend_idle_ms, 14);
    assert_int_equal(t->shutdown_ms, 15);
    assert_int_equal(t->body_idle_ms, 16);
    assert_int_equal(t->request_ms, 17);
    assert_int_equal(t->try_ms, 18);
}

static void test_an_upstream_without_timeouts_gets_the_global_defaults(void **state)
{
    struct fixture *f = *state;
    const struct doc d = {.upstream = "timeouts: {}"};
    const struct sp_timeouts_conf *t;

    assert_int_equal(load_doc(f, &d), 0);
    t = &f->config->upstreams[0].timeouts;
    assert_memory_equal(t, &f->config->timeouts, sizeof(*t));
    assert_int_equal(t->connect_ms, 5000);
    assert_int_equal(t->response_ms, 30000);
    assert_int_equal(t->body_idle_ms, 60000);
    assert_int_equal(t->request_ms, 0);
    assert_int_equal(t->try_ms, 0);
}

static void test_upstream_timeouts_override_only_the_keys_they_set(void **state)
{
    struct fixture *f = *state;
    const char *yaml = "timeouts:\n  connect_ms: 100\n  response_ms: 10000\n  try_ms: 900\n"
                       "  backend_idle_ms: 7000\n"
                       "listeners:\n  - address: 127.0.0.1\n    port: 8443\n"
                       "    cert: server.crt\n    key: server.key\n"
                       "upstreams:\n"
                       "  - name: fast\n    timeouts:\n      response_ms: 500\n"
                       "      try_ms: 300\n      request_ms: 2000\n"
                       "    routes:\n      - path_prefix: /fast\n"
                       "    backends:\n      - id: f-1\n        address: 127.0.0.1:9443\n"
                       "  - name: other\n    timeouts:\n      connect_ms: 50\n"
                       "      body_idle_ms: 40\n"
                       "    routes:\n      - path_prefix: /other\n"
                       "    backends:\n      - id: o-1\n        address: 127.0.0.1:9444\n"
                       "  - name: plain\n"
                       "    routes:\n      - path_prefix: /plain\n"
                       "    backends:\n      - id: p-1\n        address: 127.0.0.1:9445\n";
    const struct sp_config *c;

    assert_int_equal(load_text(f, yaml), 0);
    c = f->config;
    /* the global section keeps its own values */
    assert_int_equal(c->timeouts.response_ms, 10000);
    assert_int_equal(c->timeouts.try_ms, 900);
    assert_int_equal(c->timeouts.request_ms, 0);
    /* fast: three keys of its own, the rest from the global section */
    assert_int_equal(c->upstreams[0].timeouts.response_ms, 500);
    assert_int_equal(c->upstreams[0].timeouts.try_ms, 300);
    assert_int_equal(c->upstreams[0].timeouts.request_ms, 2000);
    assert_int_equal(c->upstreams[0].timeouts.connect_ms, 100);
    assert_int_equal(c->upstreams[0].timeouts.body_idle_ms, 60000);
    assert_int_equal(c->upstreams[0].timeouts.backend_idle_ms, 7000);
    /* other: two other keys */
    assert_int_equal(c->upstreams[1].timeouts.connect_ms, 50);
    assert_int_equal(c->upstreams[1].timeouts.body_idle_ms, 40);
    assert_int_equal(c->upstreams[1].timeouts.response_ms, 10000);
    assert_int_equal(c->upstreams[1].timeouts.try_ms, 900);
    /* plain: everything global */
    assert_memory_equal(&c->upstreams[2].timeouts, &c->timeouts, sizeof(c->timeouts));
}

static void test_backend_ipv4_address_is_resolved_into_a_sockaddr(void **state)
{
    struct fixture *f = *state;
    const struct doc d = {0};
    const struct sockaddr_in *sin;

    assert_int_equal(load_doc(f, &d), 0);
    sin = (const struct sockaddr_in *)&f->config->upstreams[0].backends[0].addr;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 9443);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);
    assert_int_equal(f->config->upstreams[0].backends[0].addrlen, sizeof(*sin));
}

/* The first lines of the configs written out in full below: one listener, on one line. */
#define LISTENERS                                                                                  \
    "listeners:\n  - {address: 127.0.0.1, port: 8443, cert: server.crt, key: server.key}\n"

/* One key, one value: either accepted, or refused with exactly this "KEY: MESSAGE". */
struct key_case {
    struct doc doc;
    const char *at;    /* text on the line the error must point to; NULL when valid */
    const char *error; /* "KEY: MESSAGE" */
};

#define LISTENER_WITH(extra)                                                                       \
    .listener = "address: 127.0.0.1\nport: 8443\ncert: server.crt\n"                               \
                "key: server.key\n" extra
#define BACKEND_WITH(extra) .backend = "id: app-1\naddress: 127.0.0.1:9443\n" extra
#define SECRET16 "0123456789abcdef" /* the shortest sticky cookie secret accepted */

static const struct key_case valid_cases[] = {
    {.doc = {.top = "workers: 256"}},
    {.doc = {.top = "workers: 0"}},
    {.doc = {.top = "timeouts:\n  body_idle_ms: 86400000\n  request_ms: 0"}},
    {.doc = {.top = "timeouts:\n  request_ms: 86400000"}},
    {.doc = {.top = "timeouts:\n  try_ms: 1"}},
    {.doc = {.top = "timeouts:\n  try_ms: 86400000"}},
    {.doc = {.top = "timeouts:\n  stall_warn_ms: 0"}},
    {.doc = {.upstream = "timeouts:\n  stall_warn_ms: 86400000"}},
    {.doc = {.upstream = "timeouts:\n  connect_ms: 1\n  response_ms: 1\n  body_idle_ms: 1\n"
                         "  request_ms: 0\n  try_ms: 1"}},
    {.doc = {.upstream = "timeouts:\n  connect_ms: 86400000\n  response_ms: 86400000\n"
                         "  body_idle_ms: 86400000\n  request_ms: 86400000\n"
                         "  try_ms: 86400000"}},
    {.doc = {.upstream = "timeouts: {}"}},
    {.doc = {.top = "log:\n  level: warn\n  format: text"}},
    {.doc = {.top = "log:\n  level: error"}},
    {.doc = {.listener = "address: 0.0.0.0\nport: 65535\ncert: server.crt\nkey: server.key"}},
    {.doc = {.listener = "address: \"::\"\nport: 1\ncert: ./server.crt\nkey: server.key"}},
    {.doc = {LISTENER_WITH("alt_svc_max_age: 4294967295")}},
    {.doc = {.top = "timeouts:\n  connect_ms: 86400000\n  shutdown_ms: 1"}},
    {.doc = {.top = "limits:\n  max_header_bytes: 1024\n  max_headers: 8\n"
                    "  max_streams_per_connection: 10000\n  max_body_bytes: 18446744073709551615\n"
                    "  stream_window_bytes: 16777216\n  connection_window_bytes: 1073741824\n"
                    "  max_connections: 1000000"}},
    {.doc = {.top = "limits:\n  max_header_bytes: 1048576\n  max_headers: 1000\n"
                    "  max_streams_per_connection: 1\n  stream_window_bytes: 16384\n"
                    "  connection_window_bytes: 16384\n  max_connections: 1"}},
    {.doc = {.route = "host: \"*.example.com\""}},
    {.doc = {.route = "host: \"*\"\npath_prefix: /"}},
    {.doc = {.route = "host: \"[::1]\""}},
    {.doc = {.route = "host: 10.0.0.1\nmethods:\n  - M-SEARCH"}},
    {.doc = {BACKEND_WITH("weight: 1\nprotocol: h3")}},
    {.doc = {BACKEND_WITH("protocol: h2")}},
    {.doc = {BACKEND_WITH("protocol: h2c")}},
    {.doc = {BACKEND_WITH("protocol: http1")}},
    {.doc = {BACKEND_WITH("protocol: h2\ntls: yes")}},
    {.doc = {BACKEND_WITH("protocol: h2c\ntls: false")}},
    {.doc = {BACKEND_WITH("protocol: http1\ntls: true")}},
    {.doc = {BACKEND_WITH("tls: true")}},
    {.doc = {.upstream = "tls:\n  client_cert: server.crt\n  client_key: subdir/../server.key"}},
    {.doc = {.upstream = "tls:\n  verify: no\n  server_name: localhost"}},
    {.doc = {.upstream = "tls:\n  verify: TRUE\n  ca_file: subdir/../server.crt"}},
    {.doc = {.upstream = "pool:\n  max_connections_per_backend: 1024\n"
                         "  max_streams_per_connection: 10000\n  max_queue: 1000000\n"
                         "  idle_timeout_ms: 1"}},
    {.doc = {.upstream = "pool:\n  keepalive_ms: 0\n  dead_after_ms: 0"}},
    {.doc = {.upstream = "pool:\n  keepalive_ms: 86400000\n  dead_after_ms: 86400000"}},
    {.doc = {.name = "a-B_9.z", .top = "# a comment line"}},
    {.doc = {.top = "log:\n  access: true"}},
    {.doc = {.top = "log:\n  access: off"}},
    {.doc = {.top = "default_upstream: app"}},
    {.doc = {.upstream = "strategy: round_robin"}},
    {.doc = {.upstream = "strategy: weighted_round_robin"}},
    {.doc = {.upstream = "strategy: least_conn"}},
    {.doc = {.upstream = "strategy: p2c"}},
    {.doc = {.upstream = "strategy: ewma"}},
    {.doc = {.upstream = "strategy: rendezvous\nhash_key:\n  source: source_ip"}},
    {.doc = {.upstream = "strategy: rendezvous\n"
                         "hash_key:\n  source: source_ip\n  ipv4_prefix: 1\n  ipv6_prefix: 128"}},
    {.doc = {.upstream = "strategy: rendezvous\n"
                         "hash_key:\n  source: source_ip\n  ipv4_prefix: 32\n  ipv6_prefix: 1"}},
    {.doc = {.upstream = "strategy: rendezvous\n"
                         "hash_key:\n  source: header\n  name: X-Forwarded-For"}},
    {.doc = {.upstream = "strategy: rendezvous\n"
                         "hash_key:\n  source: cookie\n  name: \"__Host-session\""}},
    {.doc = {.upstream = "strategy: rendezvous\n"
                         "hash_key:\n  source: query\n  name: \"user[id]\""}},
    {.doc = {.upstream = "strategy: rendezvous\n"
                         "hash_key:\n  source: path"}},
    {.doc = {.upstream = "strategy: rendezvous\n"
                         "hash_key:\n  source: authority"}},
    {.doc = {.upstream = "strategy: rendezvous\nhash_key:\n  source: connection"}},
    {.doc = {.upstream = "sticky_cookie:\n  secret: " SECRET16}},
    {.doc = {.upstream = "sticky_cookie:\n  secret: " SECRET16 "\n  max_age: 0"}},
    {.doc = {.upstream = "strategy: rendezvous\nhash_key:\n  source: cookie\n  name: uid\n"
                         "sticky_cookie:\n  name: lb\n  secret: \"16 bytes, spaces\"\n"
                         "  max_age: 31536000"}},
    {.doc = {.upstream = "slow_start_ms: 0"}},
    {.doc = {.upstream = "slow_start_ms: 3600000"}},
    {.doc = {.upstream = "passive_health:\n  eject_failures: 1000"}},
    {.doc = {.upstream = "passive_health:\n  eject_failures: 0\n  degrade_failures: 1000"}},
    {.doc = {.upstream = "passive_health:\n  eject_5xx: 0"}},
    {.doc = {.upstream = "passive_health:\n  eject_5xx: 1000"}},
    {.doc = {.upstream = "passive_health:\n  degrade_failures: 4"}},
    {.doc = {.upstream = "passive_health:\n  degrade_failures: 0\n  eject_failures: 1"}},
    {.doc = {.upstream = "passive_health:\n  eject_ratio_pct: 100"}},
    {.doc = {.upstream = "passive_health:\n  eject_ratio_pct: 0\n  degrade_ratio_pct: 100"}},
    {.doc = {.upstream = "passive_health:\n  degrade_ratio_pct: 49"}},
    {.doc = {.upstream = "passive_health:\n  degrade_ratio_pct: 0\n  eject_ratio_pct: 1"}},
    {.doc = {.upstream = "passive_health:\n  min_requests: 1"}},
    {.doc = {.upstream = "passive_health:\n  min_requests: 1000000"}},
    {.doc = {.upstream = "passive_health:\n  window_ms: 100"}},
    {.doc = {.upstream = "passive_health:\n  window_ms: 3600000"}},
    {.doc = {.upstream = "passive_health:\n  degraded_weight_pct: 1"}},
    {.doc = {.upstream = "passive_health:\n  degraded_weight_pct: 100"}},
    {.doc = {.upstream = "passive_health:\n  recovery_ms: 1"}},
    {.doc = {.upstream = "passive_health:\n  recovery_ms: 60000"}},
    {.doc = {.upstream = "passive_health:\n  recovery_ms: 3600000\n  max_recovery_ms: 86400000"}},
    {.doc = {.upstream = "passive_health:\n  max_recovery_ms: 1000"}},
    {.doc = {.upstream = "passive_health:\n  max_recovery_ms: 1\n  recovery_ms: 1"}},
    {.doc = {.upstream = "passive_health:\n  panic_threshold_pct: 0"}},
    {.doc = {.upstream = "passive_health:\n  panic_threshold_pct: 100"}},
    {.doc = {.upstream = "breaker:\n  max_failures: 0"}},
    {.doc = {.upstream = "breaker:\n  max_failures: 1000"}},
    {.doc = {.upstream = "breaker:\n  failure_ratio_pct: 100"}},
    {.doc = {.upstream = "breaker:\n  failure_ratio_pct: 1\n  max_failures: 0"}},
    {.doc = {.upstream = "breaker:\n  min_requests: 1"}},
    {.doc = {.upstream = "breaker:\n  min_requests: 1000000"}},
    {.doc = {.upstream = "breaker:\n  window_ms: 100"}},
    {.doc = {.upstream = "breaker:\n  window_ms: 3600000"}},
    {.doc = {.upstream = "breaker:\n  open_ms: 1"}},
    {.doc = {.upstream = "breaker:\n  open_ms: 60000"}},
    {.doc = {.upstream = "breaker:\n  open_ms: 3600000\n  max_open_ms: 86400000"}},
    {.doc = {.upstream = "breaker:\n  max_open_ms: 5000"}},
    {.doc = {.upstream = "breaker:\n  half_open_requests: 1"}},
    {.doc = {.upstream = "breaker:\n  half_open_requests: 1000"}},
    {.doc = {.upstream = "breaker:\n  half_open_successes: 1"}},
    {.doc = {.upstream = "breaker:\n  half_open_successes: 1000"}},
    {.doc = {.upstream = "breaker:\n  max_concurrent: 0"}},
    {.doc = {.upstream = "breaker:\n  max_concurrent: 1000000"}},
    {.doc = {.upstream = "breaker:\n  max_pending: 0"}},
    {.doc = {.upstream = "breaker:\n  max_pending: 1000000"}},
    {.doc = {.upstream = "retries:\n  max: 0"}},
    {.doc = {.upstream = "retries:\n  max: 10"}},
    {.doc = {.upstream = "retries:\n  budget_pct: 0"}},
    {.doc = {.upstream = "retries:\n  budget_pct: 1000"}},
    {.doc = {.upstream = "retries:\n  min_retries: 0"}},
    {.doc = {.upstream = "retries:\n  min_retries: 100000"}},
    {.doc = {.upstream = "retries:\n  backoff_ms: 0"}},
    {.doc = {.upstream = "retries:\n  backoff_ms: 250"}},
    {.doc = {.upstream = "retries:\n  backoff_ms: 60000\n  max_backoff_ms: 600000"}},
    {.doc = {.upstream = "retries:\n  max_backoff_ms: 10"}},
    {.doc = {.upstream = "retries:\n  max_backoff_ms: 0\n  backoff_ms: 0"}},
    {.doc = {.upstream = "health_check:\n  path: /healthz"}},
    {.doc = {.upstream = "health_check:\n  path: \"/health?deep=1\""}},
    {.doc = {.upstream = "health_check:\n  path: /\n  interval_ms: 100\n  timeout_ms: 100"}},
    {.doc = {.upstream = "health_check:\n  path: /\n  interval_ms: 3600000"}},
    {.doc = {.upstream = "health_check:\n  path: /\n  timeout_ms: 1"}},
    {.doc = {.upstream = "health_check:\n  path: /\n  timeout_ms: 2000"}},
    {.doc = {.upstream = "health_check:\n  path: /\n  expected_status: 204"}},
    {.doc = {.upstream = "health_check:\n  path: /\n  expected_status: \"100-599\""}},
    {.doc = {.upstream = "health_check:\n  path: /\n  fall: 1"}},
    {.doc = {.upstream = "health_check:\n  path: /\n  fall: 100"}},
    {.doc = {.upstream = "health_check:\n  path: /\n  rise: 1"}},
    {.doc = {.upstream = "health_check:\n  path: /\n  rise: 100"}},
    {.doc = {.upstream = "health_check:\n  path: /\n  host: backend.internal"}},
    {.doc = {.upstream = "health_check:\n  path: /\n  host: \"[::1]:8443\""}},
};

static const struct key_case invalid_cases[] = {
    {{.top = "workers: 257"}, "workers: 257", "workers: must be between 0 and 256, got 257"},
    {{.top = "workers: two"}, "workers", "workers: expected an unsigned integer, got \"two\""},
    {{.top = "workers: -1"}, "workers", "workers: expected an unsigned integer, got \"-1\""},
    {{.top = "workers: 010"}, "workers", "workers: expected an unsigned integer, got \"010\""},
    {{.top = "workers:"}, "workers", "workers: missing value"},
    {{.top = "workers: [1]"}, "workers", "workers: expected an unsigned integer, got a list"},
    {{.top = "log: debug"}, "log", "log: expected a mapping, got \"debug\""},
    {{.top = "log:\n  level: verbose"},
     "verbose",
     "log.level: unknown value \"verbose\": expected one of debug, info, warn, error"},
    {{.top = "log:\n  format: xml"},
     "xml",
     "log.format: unknown value \"xml\": expected one of text, json"},
    {{.top = "log:\n  colour: red"}, "colour", "log.colour: unknown key"},
    {{.top = "colour: red"}, "colour", "colour: unknown key"},
    {{.top = "workers: 1\nworkers: 2"}, "workers: 2", "workers: duplicate key"},
    {{.listener = "port: 8443\ncert: server.crt\nkey: server.key"},
     "port: 8443",
     "listeners[0].address: required key missing"},
    {{.listener = "address: localhost\nport: 8443\ncert: server.crt\nkey: server.key"},
     "localhost",
     "listeners[0].address: invalid address \"localhost\": expected a literal IPv4 or IPv6 "
     "address (host names are not resolved, no brackets, no port)"},
    {{.listener = "address: 127.0.0.1\ncert: server.crt\nkey: server.key"},
     "address: 127",
     "listeners[0].port: required key missing"},
    {{.listener = "address: 127.0.0.1\nport: 0\ncert: server.crt\nkey: server.key"},
     "port",
     "listeners[0].port: must be between 1 and 65535, got 0"},
    {{.listener = "address: 127.0.0.1\nport: 65536\ncert: server.crt\nkey: server.key"},
     "port",
     "listeners[0].port: must be between 1 and 65535, got 65536"},
    {{.listener = "address: 127.0.0.1\nport: 8443\nkey: server.key"},
     "address: 127",
     "listeners[0].cert: required key missing"},
    {{.listener = "address: 127.0.0.1\nport: 8443\ncert: /nonexistent/c.pem\nkey: server.key"},
     "cert",
     "listeners[0].cert: cannot read \"/nonexistent/c.pem\": No such file or directory"},
    {{.listener = "address: 127.0.0.1\nport: 8443\ncert: server.crt"},
     "address: 127",
     "listeners[0].key: required key missing"},
    {{.listener = "address: 127.0.0.1\nport: 8443\ncert: server.crt\nkey: /"},
     "key: /",
     "listeners[0].key: \"/\" is not a regular file"},
    {{LISTENER_WITH("alt_svc_max_age: 4294967296")},
     "alt_svc",
     "listeners[0].alt_svc_max_age: must be between 0 and 4294967295, got 4294967296"},
    {{LISTENER_WITH("colour: red")}, "colour", "listeners[0].colour: unknown key"},
    {{.top = "timeouts:\n  connect_ms: 0"},
     "connect_ms",
     "timeouts.connect_ms: must be between 1 and 86400000, got 0"},
    {{.top = "timeouts:\n  response_ms: 0"},
     "response_ms",
     "timeouts.response_ms: must be between 1 and 86400000, got 0"},
    {{.top = "timeouts:\n  client_idle_ms: 86400001"},
     "client_idle_ms",
     "timeouts.client_idle_ms: must be between 1 and 86400000, got 86400001"},
    {{.top = "timeouts:\n  backend_idle_ms: 1s"},
     "backend_idle_ms",
     "timeouts.backend_idle_ms: expected an unsigned integer, got \"1s\""},
    {{.top = "timeouts:\n  shutdown_ms: 0"},
     "shutdown_ms",
     "timeouts.shutdown_ms: must be between 1 and 86400000, got 0"},
    {{.top = "timeouts:\n  body_idle_ms: 0"},
     "body_idle_ms",
     "timeouts.body_idle_ms: must be between 1 and 86400000, got 0"},
    {{.top = "timeouts:\n  request_ms: 86400001"},
     "request_ms",
     "timeouts.request_ms: must be between 0 and 86400000, got 86400001"},
    {{.top = "timeouts:\n  read_ms: 5"}, "read_ms", "timeouts.read_ms: unknown key"},
    {{.top = "timeouts:\n  stall_warn_ms: 86400001"},
     "stall_warn_ms",
     "timeouts.stall_warn_ms: must be between 0 and 86400000, got 86400001"},
    {{.upstream = "timeouts:\n  stall_warn_ms: -1"},
     "stall_warn_ms",
     "upstreams[0].timeouts.stall_warn_ms: expected an unsigned integer, got \"-1\""},
    {{.top = "timeouts:\n  try_ms: 0"},
     "try_ms",
     "timeouts.try_ms: must be between 1 and 86400000, got 0"},
    {{.top = "timeouts:\n  try_ms: 86400001"},
     "try_ms",
     "timeouts.try_ms: must be between 1 and 86400000, got 86400001"},
    {{.upstream = "timeouts:\n  connect_ms: 0"},
     "connect_ms",
     "upstreams[0].timeouts.connect_ms: must be between 1 and 86400000, got 0"},
    {{.upstream = "timeouts:\n  response_ms: 86400001"},
     "response_ms",
     "upstreams[0].timeouts.response_ms: must be between 1 and 86400000, got 86400001"},
    {{.upstream = "timeouts:\n  body_idle_ms: 0"},
     "body_idle_ms",
     "upstreams[0].timeouts.body_idle_ms: must be between 1 and 86400000, got 0"},
    {{.upstream = "timeouts:\n  request_ms: 86400001"},
     "request_ms",
     "upstreams[0].timeouts.request_ms: must be between 0 and 86400000, got 86400001"},
    {{.upstream = "timeouts:\n  try_ms: 0"},
     "try_ms",
     "upstreams[0].timeouts.try_ms: must be between 1 and 86400000, got 0"},
    {{.upstream = "timeouts:\n  try_ms: 1s"},
     "try_ms",
     "upstreams[0].timeouts.try_ms: expected an unsigned integer, got \"1s\""},
    {{.upstream = "timeouts:\n  shutdown_ms: 5"},
     "shutdown_ms",
     "upstreams[0].timeouts.shutdown_ms: unknown key"},
    {{.upstream = "timeouts:\n  backend_idle_ms: 5"},
     "backend_idle_ms",
     "upstreams[0].timeouts.backend_idle_ms: unknown key"},
    {{.upstream = "timeouts: 500"},
     "timeouts: 500",
     "upstreams[0].timeouts: expected a mapping, got \"500\""},
    {{.top = "limits:\n  max_header_bytes: 1023"},
     "max_header_bytes",
     "limits.max_header_bytes: must be between 1024 and 1048576, got 1023"},
    {{.top = "limits:\n  max_headers: 7"},
     "max_headers",
     "limits.max_headers: must be between 8 and 1000, got 7"},
    {{.top = "limits:\n  max_streams_per_connection: 10001"},
     "max_streams",
     "limits.max_streams_per_connection: must be between 1 and 10000, got 10001"},
    {{.top = "limits:\n  max_body_bytes: 18446744073709551616"},
     "max_body",
     "limits.max_body_bytes: must be at least 0, got 18446744073709551616"},
    {{.top = "limits:\n  stream_window_bytes: 16383"},
     "stream_window",
     "limits.stream_window_bytes: must be between 16384 and 16777216, got 16383"},
    {{.top = "limits:\n  connection_window_bytes: 1073741825"},
     "connection_window",
     "limits.connection_window_bytes: must be between 16384 and 1073741824, got 1073741825"},
    {{.top = "limits:\n  stream_window_bytes: 65536\n  connection_window_bytes: 32768"},
     "connection_window",
     "limits.connection_window_bytes: must be at least limits.stream_window_bytes (65536), got "
     "32768"},
    {{.top = "limits:\n  stream_window_bytes: 2097152"},
     "stream_window",
     "limits.stream_window_bytes: must be at most limits.connection_window_bytes (1048576, the "
     "default), got 2097152"},
    {{.top = "limits:\n  max_connections: 0"},
     "max_connections",
     "limits.max_connections: must be between 1 and 1000000, got 0"},
    {{.name = "\"a b\""},
     "a b",
     "upstreams[0].name: invalid name \"a b\": use only "
     "letters, digits, \"_\", \".\" and \"-\""},
    {{.upstream = "strategy: fastest"},
     "fastest",
     "upstreams[0].strategy: unknown value \"fastest\": expected one of round_robin, "
     "weighted_round_robin, random, least_conn, p2c, ewma, rendezvous"},
    {{.upstream = "strategy: rendezvous"},
     "rendezvous",
     "upstreams[0].strategy: strategy rendezvous needs hash_key"},
    {{.upstream = "colour: red"}, "colour", "upstreams[0].colour: unknown key"},
    {{.route = "host: \"a.example.com:443\""},
     "host",
     "upstreams[0].routes[0].host: invalid host \"a.example.com:443\": must not include a port"},
    {{.route = "host: \"a..b\""},
     "host",
     "upstreams[0].routes[0].host: invalid host \"a..b\": expected a host name like "
     "\"api.example.com\" or a wildcard like \"*.example.com\""},
    {{.route = "path_prefix: api"},
     "path_prefix",
     "upstreams[0].routes[0].path_prefix: must start with \"/\", got \"api\""},
    {{.route = "path_prefix: /a?b"},
     "path_prefix",
     "upstreams[0].routes[0].path_prefix: invalid path prefix \"/a?b\": spaces, control "
     "characters, \"?\" and \"#\" are not allowed"},
    {{.route = "methods: [GET, get]"},
     "methods",
     "upstreams[0].routes[0].methods[1]: invalid method \"get\": expected an upper-case token "
     "like GET or POST"},
    {{.route = "methods: []"},
     "methods",
     "upstreams[0].routes[0].methods: must have at least 1 entry"},
    {{.route = "methods: GET"},
     "methods",
     "upstreams[0].routes[0].methods: expected a list, got \"GET\""},
    {{.route = "methods: [GET, POST, GET]"},
     "methods",
     "upstreams[0].routes[0].methods[2]: duplicate method \"GET\""},
    {{.route = "path: /"}, "path: /", "upstreams[0].routes[0].path: unknown key"},
    {{.backend = "address: 127.0.0.1:9443"},
     "address: 127.0.0.1:9443",
     "upstreams[0].backends[0].id: required key missing"},
    {{.backend = "id: \"\"\naddress: 127.0.0.1:9443"},
     "id:",
     "upstreams[0].backends[0].id: invalid name \"\": use only letters, digits, \"_\", \".\" "
     "and \"-\""},
    {{.backend = "id: app-1"},
     "id: app-1",
     "upstreams[0].backends[0].address: required key missing"},
    {{.backend = "id: app-1\naddress: foo:99"},
     "foo:99",
     "upstreams[0].backends[0].address: invalid address \"foo:99\": expected IPv4:port or "
     "[IPv6]:port"},
    {{.backend = "id: app-1\naddress: \"::1:9443\""},
     "::1:9443",
     "upstreams[0].backends[0].address: invalid address \"::1:9443\": expected IPv4:port or "
     "[IPv6]:port"},
    {{.backend = "id: app-1\naddress: 127.0.0.2"},
     "127.0.0.2",
     "upstreams[0].backends[0].address: invalid address \"127.0.0.2\": expected IPv4:port or "
     "[IPv6]:port"},
    {{.backend = "id: app-1\naddress: 127.0.0.1:99999"},
     "99999",
     "upstreams[0].backends[0].address: invalid address \"127.0.0.1:99999\": port must be "
     "between 1 and 65535"},
    {{BACKEND_WITH("protocol: http2")},
     "protocol",
     "upstreams[0].backends[0].protocol: unknown value \"http2\": expected one of h3, h2, h2c, "
     "http1"},
    {{BACKEND_WITH("tls: sometimes")},
     "tls",
     "upstreams[0].backends[0].tls: expected true or false, got \"sometimes\""},
    {{BACKEND_WITH("tls: false")},
     "tls",
     "upstreams[0].backends[0].tls: tls: false is not possible with protocol h3: HTTP/3 always "
     "runs over TLS"},
    {{BACKEND_WITH("protocol: h2\ntls: false")},
     "tls",
     "upstreams[0].backends[0].tls: tls: false is not possible with protocol h2: use protocol "
     "h2c for cleartext HTTP/2"},
    {{BACKEND_WITH("protocol: h2c\ntls: true")},
     "tls",
     "upstreams[0].backends[0].tls: tls: true is not possible with protocol h2c: h2c is "
     "cleartext HTTP/2; use protocol h2 for HTTP/2 over TLS"},
    {{BACKEND_WITH("weight: 0")},
     "weight",
     "upstreams[0].backends[0].weight: must be between 1 and 1000, got 0"},
    {{BACKEND_WITH("weight: 1001")},
     "weight",
     "upstreams[0].backends[0].weight: must be between 1 and 1000, got 1001"},
    {{BACKEND_WITH("port: 1")}, "port: 1", "upstreams[0].backends[0].port: unknown key"},
    {{.upstream = "tls:\n  ca_file: missing.pem"},
     "ca_file",
     NULL}, /* message depends on the directory: checked in its own test */
    {{.upstream = "tls:\n  verify: maybe"},
     "verify",
     "upstreams[0].tls.verify: expected true or false, got \"maybe\""},
    {{.upstream = "tls:\n  server_name: \"bad name\""},
     "server_name",
     "upstreams[0].tls.server_name: invalid server name \"bad name\": expected a DNS name like "
     "\"backend.internal\""},
    {{.upstream = "tls:\n  sni: x"}, "sni", "upstreams[0].tls.sni: unknown key"},
    {{.upstream = "tls:\n  client_cert: /nonexistent/c.pem\n  client_key: server.key"},
     "client_cert",
     "upstreams[0].tls.client_cert: cannot read \"/nonexistent/c.pem\": No such file or "
     "directory"},
    {{.upstream = "tls:\n  client_cert: server.crt"},
     "client_cert",
     "upstreams[0].tls.client_cert: client_cert needs client_key too (a client certificate and "
     "its key go together)"},
    {{.upstream = "tls:\n  client_key: /"},
     "client_key",
     "upstreams[0].tls.client_key: \"/\" is not a regular file"},
    {{.upstream = "tls:\n  client_key: server.key"},
     "client_key",
     "upstreams[0].tls.client_key: client_key needs client_cert too (a client certificate and "
     "its key go together)"},
    {{.upstream = "pool:\n  max_connections_per_backend: 0"},
     "max_connections_per",
     "upstreams[0].pool.max_connections_per_backend: must be between 1 and 1024, got 0"},
    {{.upstream = "pool:\n  max_streams_per_connection: 10001"},
     "max_streams",
     "upstreams[0].pool.max_streams_per_connection: must be between 1 and 10000, got 10001"},
    {{.upstream = "pool:\n  max_queue: 1000001"},
     "max_queue",
     "upstreams[0].pool.max_queue: must be between 0 and 1000000, got 1000001"},
    {{.upstream = "health_check:\n  path: /h\n  rtt_degrade_factor: 1001"},
     "rtt_degrade_factor",
     "upstreams[0].health_check.rtt_degrade_factor: must be between 0 and 1000, got 1001"},
    {{.upstream = "pool:\n  dead_after_ms: 86400001"},
     "dead_after_ms",
     "upstreams[0].pool.dead_after_ms: must be between 0 and 86400000, got 86400001"},
    {{.upstream = "pool:\n  keepalive_ms: x"},
     "keepalive_ms",
     "upstreams[0].pool.keepalive_ms: expected an unsigned integer, got \"x\""},
    {{.upstream = "pool:\n  idle_timeout_ms: 0"},
     "idle_timeout",
     "upstreams[0].pool.idle_timeout_ms: must be between 1 and 86400000, got 0"},
    {{.upstream = "pool: []"}, "pool", "upstreams[0].pool: expected a mapping, got a list"},
    {{.top = "log:\n  access: sometimes"},
     "access",
     "log.access: expected true or false, got \"sometimes\""},
    {{.top = "default_upstream: nope"},
     "default_upstream",
     "default_upstream: no upstream is named \"nope\""},
    {{.top = "default_upstream: \"a b\""},
     "default_upstream",
     "default_upstream: invalid name \"a b\": use only letters, digits, \"_\", \".\" and \"-\""},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key: source_ip"},
     "hash_key",
     "upstreams[0].hash_key: expected a mapping, got \"source_ip\""},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  name: x-user"},
     "name: x-user",
     "upstreams[0].hash_key.source: required key missing"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: ip"},
     "source: ip",
     "upstreams[0].hash_key.source: unknown value \"ip\": expected one of source_ip, header, "
     "cookie, path, authority, query, connection"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: header"},
     "source: header",
     "upstreams[0].hash_key.name: required key missing: source header needs the name of the "
     "header"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: cookie"},
     "source: cookie",
     "upstreams[0].hash_key.name: required key missing: source cookie needs the name of the "
     "cookie"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: query"},
     "source: query",
     "upstreams[0].hash_key.name: required key missing: source query needs the name of the "
     "query parameter"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: path\n  name: x"},
     "name: x",
     "upstreams[0].hash_key.name: not allowed with source path: only header, cookie and query "
     "take a name"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: source_ip\n  name: x"},
     "name: x",
     "upstreams[0].hash_key.name: not allowed with source source_ip: only header, cookie and "
     "query take a name"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: header\n  name: \"X User\""},
     "X User",
     "upstreams[0].hash_key.name: invalid header name \"X User\": use only letters, digits and "
     "!#$%&'*+-.^_`|~ (RFC 9110 token)"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: header\n  name: \":path\""},
     ":path",
     "upstreams[0].hash_key.name: invalid header name \":path\": use only letters, digits and "
     "!#$%&'*+-.^_`|~ (RFC 9110 token)"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: cookie\n  name: \"a;b\""},
     "a;b",
     "upstreams[0].hash_key.name: invalid cookie name \"a;b\": use only letters, digits and "
     "!#$%&'*+-.^_`|~ (RFC 6265 token)"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: query\n  name: \"a=b\""},
     "a=b",
     "upstreams[0].hash_key.name: invalid query parameter name \"a=b\": must not be empty or "
     "contain \"&\", \"=\", \"#\", spaces or control characters"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: query\n  name: \"\""},
     "name: \"\"",
     "upstreams[0].hash_key.name: invalid query parameter name \"\": must not be empty or "
     "contain \"&\", \"=\", \"#\", spaces or control characters"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: source_ip\n  ipv4_prefix: 0"},
     "ipv4_prefix",
     "upstreams[0].hash_key.ipv4_prefix: must be between 1 and 32, got 0"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: source_ip\n  ipv4_prefix: 33"},
     "ipv4_prefix",
     "upstreams[0].hash_key.ipv4_prefix: must be between 1 and 32, got 33"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: source_ip\n  ipv6_prefix: 0"},
     "ipv6_prefix",
     "upstreams[0].hash_key.ipv6_prefix: must be between 1 and 128, got 0"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: source_ip\n  ipv6_prefix: 129"},
     "ipv6_prefix",
     "upstreams[0].hash_key.ipv6_prefix: must be between 1 and 128, got 129"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: header\n  name: x\n  ipv4_prefix: 24"},
     "ipv4_prefix",
     "upstreams[0].hash_key.ipv4_prefix: not allowed with source header: only source_ip takes a "
     "prefix"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: connection\n  ipv6_prefix: 48"},
     "ipv6_prefix",
     "upstreams[0].hash_key.ipv6_prefix: not allowed with source connection: only source_ip "
     "takes a prefix"},
    {{.upstream = "strategy: rendezvous\n"
                  "hash_key:\n  source: path\n  salt: x"},
     "salt",
     "upstreams[0].hash_key.salt: unknown key"},
    {{.upstream = "hash_key:\n  source: path"},
     "hash_key",
     "upstreams[0].hash_key: only strategy rendezvous uses hash_key (strategy is round_robin)"},
    {{.upstream = "strategy: p2c\nhash_key:\n  source: path"},
     "hash_key",
     "upstreams[0].hash_key: only strategy rendezvous uses hash_key (strategy is p2c)"},
    {{.upstream = "sticky_cookie: true"},
     "sticky_cookie",
     "upstreams[0].sticky_cookie: expected a mapping, got \"true\""},
    {{.upstream = "sticky_cookie:\n  name: lb"},
     "name: lb",
     "upstreams[0].sticky_cookie.secret: required key missing"},
    {{.upstream = "sticky_cookie:\n  secret: 0123456789abcde"},
     "secret",
     "upstreams[0].sticky_cookie.secret: must be at least 16 bytes long, got 15"},
    {{.upstream = "sticky_cookie:\n  secret: \"\""},
     "secret",
     "upstreams[0].sticky_cookie.secret: must be at least 16 bytes long, got 0"},
    {{.upstream = "sticky_cookie:\n  name: \"lb id\"\n  secret: " SECRET16},
     "lb id",
     "upstreams[0].sticky_cookie.name: invalid cookie name \"lb id\": use only letters, digits "
     "and !#$%&'*+-.^_`|~ (RFC 6265 token)"},
    {{.upstream = "sticky_cookie:\n  secret: " SECRET16 "\n  max_age: 31536001"},
     "max_age",
     "upstreams[0].sticky_cookie.max_age: must be between 0 and 31536000, got 31536001"},
    {{.upstream = "sticky_cookie:\n  secret: " SECRET16 "\n  max_age: 1h"},
     "max_age",
     "upstreams[0].sticky_cookie.max_age: expected an unsigned integer, got \"1h\""},
    {{.upstream = "sticky_cookie:\n  secret: " SECRET16 "\n  path: /"},
     "path: /",
     "upstreams[0].sticky_cookie.path: unknown key"},
    {{.upstream = "slow_start_ms: 3600001"},
     "slow_start_ms",
     "upstreams[0].slow_start_ms: must be between 0 and 3600000, got 3600001"},
    {{.upstream = "slow_start_ms: 10s"},
     "slow_start_ms",
     "upstreams[0].slow_start_ms: expected an unsigned integer, got \"10s\""},
    {{.upstream = "passive_health:\n  eject_failures: 1001"},
     "eject_failures: 1001",
     "upstreams[0].passive_health.eject_failures: must be between 0 and 1000, got 1001"},
    {{.upstream = "passive_health:\n  eject_5xx: 1001"},
     "eject_5xx: 1001",
     "upstreams[0].passive_health.eject_5xx: must be between 0 and 1000, got 1001"},
    {{.upstream = "passive_health:\n  degrade_failures: 1001"},
     "degrade_failures: 1001",
     "upstreams[0].passive_health.degrade_failures: must be between 0 and 1000, got 1001"},
    {{.upstream = "passive_health:\n  eject_ratio_pct: 101"},
     "eject_ratio_pct: 101",
     "upstreams[0].passive_health.eject_ratio_pct: must be between 0 and 100, got 101"},
    {{.upstream = "passive_health:\n  degrade_ratio_pct: 101"},
     "degrade_ratio_pct: 101",
     "upstreams[0].passive_health.degrade_ratio_pct: must be between 0 and 100, got 101"},
    {{.upstream = "passive_health:\n  min_requests: 0"},
     "min_requests: 0",
     "upstreams[0].passive_health.min_requests: must be between 1 and 1000000, got 0"},
    {{.upstream = "passive_health:\n  window_ms: 99"},
     "window_ms: 99",
     "upstreams[0].passive_health.window_ms: must be between 100 and 3600000, got 99"},
    {{.upstream = "passive_health:\n  degraded_weight_pct: 0"},
     "degraded_weight_pct: 0",
     "upstreams[0].passive_health.degraded_weight_pct: must be between 1 and 100, got 0"},
    {{.upstream = "passive_health:\n  recovery_ms: 0"},
     "recovery_ms: 0",
     "upstreams[0].passive_health.recovery_ms: must be between 1 and 3600000, got 0"},
    {{.upstream = "passive_health:\n  max_recovery_ms: 86400001"},
     "max_recovery_ms: 86400001",
     "upstreams[0].passive_health.max_recovery_ms: must be between 1 and 86400000, got 86400001"},
    {{.upstream = "passive_health:\n  panic_threshold_pct: 101"},
     "panic_threshold_pct: 101",
     "upstreams[0].passive_health.panic_threshold_pct: must be between 0 and 100, got 101"},
    {{.upstream = "breaker:\n  max_failures: 1001"},
     "max_failures: 1001",
     "upstreams[0].breaker.max_failures: must be between 0 and 1000, got 1001"},
    {{.upstream = "breaker:\n  failure_ratio_pct: 101"},
     "failure_ratio_pct: 101",
     "upstreams[0].breaker.failure_ratio_pct: must be between 0 and 100, got 101"},
    {{.upstream = "breaker:\n  min_requests: 1000001"},
     "min_requests: 1000001",
     "upstreams[0].breaker.min_requests: must be between 1 and 1000000, got 1000001"},
    {{.upstream = "breaker:\n  window_ms: 3600001"},
     "window_ms: 3600001",
     "upstreams[0].breaker.window_ms: must be between 100 and 3600000, got 3600001"},
    {{.upstream = "breaker:\n  open_ms: 0"},
     "open_ms: 0",
     "upstreams[0].breaker.open_ms: must be between 1 and 3600000, got 0"},
    {{.upstream = "breaker:\n  max_open_ms: 0"},
     "max_open_ms: 0",
     "upstreams[0].breaker.max_open_ms: must be between 1 and 86400000, got 0"},
    {{.upstream = "breaker:\n  half_open_requests: 0"},
     "half_open_requests: 0",
     "upstreams[0].breaker.half_open_requests: must be between 1 and 1000, got 0"},
    {{.upstream = "breaker:\n  half_open_successes: 1001"},
     "half_open_successes: 1001",
     "upstreams[0].breaker.half_open_successes: must be between 1 and 1000, got 1001"},
    {{.upstream = "breaker:\n  max_pending: 1000001"},
     "max_pending: 1000001",
     "upstreams[0].breaker.max_pending: must be between 0 and 1000000, got 1000001"},
    {{.upstream = "breaker:\n  max_concurrent: 1000001"},
     "max_concurrent: 1000001",
     "upstreams[0].breaker.max_concurrent: must be between 0 and 1000000, got 1000001"},
    {{.upstream = "retries:\n  max: 11"},
     "max: 11",
     "upstreams[0].retries.max: must be between 0 and 10, got 11"},
    {{.upstream = "retries:\n  budget_pct: 1001"},
     "budget_pct: 1001",
     "upstreams[0].retries.budget_pct: must be between 0 and 1000, got 1001"},
    {{.upstream = "retries:\n  min_retries: 100001"},
     "min_retries: 100001",
     "upstreams[0].retries.min_retries: must be between 0 and 100000, got 100001"},
    {{.upstream = "retries:\n  backoff_ms: 60001"},
     "backoff_ms: 60001",
     "upstreams[0].retries.backoff_ms: must be between 0 and 60000, got 60001"},
    {{.upstream = "retries:\n  max_backoff_ms: 600001"},
     "max_backoff_ms: 600001",
     "upstreams[0].retries.max_backoff_ms: must be between 0 and 600000, got 600001"},
    {{.upstream = "passive_health:\n  window_ms: 10s"},
     "window_ms",
     "upstreams[0].passive_health.window_ms: expected an unsigned integer, got \"10s\""},
    {{.upstream = "breaker:\n  open_ms: -1"},
     "open_ms",
     "upstreams[0].breaker.open_ms: expected an unsigned integer, got \"-1\""},
    {{.upstream = "retries:\n  max:"}, "max:", "upstreams[0].retries.max: missing value"},
    {{.upstream = "passive_health: true"},
     "passive_health",
     "upstreams[0].passive_health: expected a mapping, got \"true\""},
    {{.upstream = "breaker: [max_failures]"},
     "breaker",
     "upstreams[0].breaker: expected a mapping, got a list"},
    {{.upstream = "retries: 3"}, "retries", "upstreams[0].retries: expected a mapping, got \"3\""},
    {{.upstream = "passive_health:\n  interval_ms: 5"},
     "interval_ms",
     "upstreams[0].passive_health.interval_ms: unknown key"},
    {{.upstream = "breaker:\n  max_waiting: 5"},
     "max_waiting",
     "upstreams[0].breaker.max_waiting: unknown key"},
    {{.upstream = "retries:\n  attempts: 5"},
     "attempts",
     "upstreams[0].retries.attempts: unknown key"},
    /* paired settings out of order: the key the rule is about is blamed when written */
    {{.upstream = "passive_health:\n  eject_failures: 3\n  degrade_failures: 3"},
     "degrade_failures",
     "upstreams[0].passive_health.degrade_failures: must be below eject_failures (3), got 3"},
    {{.upstream = "passive_health:\n  degrade_failures: 6"},
     "degrade_failures",
     "upstreams[0].passive_health.degrade_failures: must be below eject_failures (5, the "
     "default), got 6"},
    {{.upstream = "passive_health:\n  eject_failures: 2"},
     "eject_failures",
     "upstreams[0].passive_health.eject_failures: must be above degrade_failures (2, the "
     "default), got 2"},
    {{.upstream = "passive_health:\n  degrade_ratio_pct: 80\n  eject_ratio_pct: 60"},
     "degrade_ratio_pct",
     "upstreams[0].passive_health.degrade_ratio_pct: must be below eject_ratio_pct (60), got 80"},
    {{.upstream = "passive_health:\n  eject_ratio_pct: 10"},
     "eject_ratio_pct",
     "upstreams[0].passive_health.eject_ratio_pct: must be above degrade_ratio_pct (10, the "
     "default), got 10"},
    {{.upstream = "passive_health:\n  recovery_ms: 5000\n  max_recovery_ms: 4999"},
     "max_recovery_ms",
     "upstreams[0].passive_health.max_recovery_ms: must be at least recovery_ms (5000), got "
     "4999"},
    {{.upstream = "passive_health:\n  max_recovery_ms: 999"},
     "max_recovery_ms",
     "upstreams[0].passive_health.max_recovery_ms: must be at least recovery_ms (1000, the "
     "default), got 999"},
    {{.upstream = "passive_health:\n  recovery_ms: 60001"},
     "recovery_ms",
     "upstreams[0].passive_health.recovery_ms: must be at most max_recovery_ms (60000, the "
     "default), got 60001"},
    {{.upstream = "breaker:\n  open_ms: 2000\n  max_open_ms: 1000"},
     "max_open_ms",
     "upstreams[0].breaker.max_open_ms: must be at least open_ms (2000), got 1000"},
    {{.upstream = "breaker:\n  open_ms: 60001"},
     "open_ms",
     "upstreams[0].breaker.open_ms: must be at most max_open_ms (60000, the default), got 60001"},
    {{.upstream = "health_check:\n  interval_ms: 500"},
     "interval_ms: 500",
     "upstreams[0].health_check.path: required key missing"},
    {{.upstream = "health_check:\n  path: healthz"},
     "healthz",
     "upstreams[0].health_check.path: must start with \"/\", got \"healthz\""},
    {{.upstream = "health_check:\n  path: \"/a b\""},
     "/a b",
     "upstreams[0].health_check.path: invalid path \"/a b\": spaces, control characters and "
     "\"#\" are not allowed"},
    {{.upstream = "health_check:\n  path: /\n  interval_ms: 99"},
     "interval_ms: 99",
     "upstreams[0].health_check.interval_ms: must be between 100 and 3600000, got 99"},
    {{.upstream = "health_check:\n  path: /\n  interval_ms: 3600001"},
     "interval_ms: 3600001",
     "upstreams[0].health_check.interval_ms: must be between 100 and 3600000, got 3600001"},
    {{.upstream = "health_check:\n  path: /\n  timeout_ms: 0"},
     "timeout_ms: 0",
     "upstreams[0].health_check.timeout_ms: must be between 1 and 3600000, got 0"},
    {{.upstream = "health_check:\n  path: /\n  timeout_ms: 2001"},
     "timeout_ms: 2001",
     "upstreams[0].health_check.timeout_ms: must be at most interval_ms (2000, the default), got "
     "2001"},
    {{.upstream = "health_check:\n  path: /\n  interval_ms: 500\n  timeout_ms: 600"},
     "timeout_ms: 600",
     "upstreams[0].health_check.timeout_ms: must be at most interval_ms (500), got 600"},
    {{.upstream = "health_check:\n  path: /\n  interval_ms: 500"},
     "interval_ms: 500",
     "upstreams[0].health_check.interval_ms: must be at least timeout_ms (1000, the default), "
     "got 500"},
    {{.upstream = "health_check:\n  path: /\n  expected_status: 2xx"},
     "2xx",
     "upstreams[0].health_check.expected_status: invalid status range \"2xx\": expected a "
     "status like \"200\" or a range like \"200-399\" within 100..599"},
    {{.upstream = "health_check:\n  path: /\n  expected_status: 600"},
     "600",
     "upstreams[0].health_check.expected_status: invalid status range \"600\": expected a "
     "status like \"200\" or a range like \"200-399\" within 100..599"},
    {{.upstream = "health_check:\n  path: /\n  expected_status: \"399-200\""},
     "399-200",
     "upstreams[0].health_check.expected_status: invalid status range \"399-200\": expected a "
     "status like \"200\" or a range like \"200-399\" within 100..599"},
    {{.upstream = "health_check:\n  path: /\n  fall: 0"},
     "fall: 0",
     "upstreams[0].health_check.fall: must be between 1 and 100, got 0"},
    {{.upstream = "health_check:\n  path: /\n  fall: 101"},
     "fall: 101",
     "upstreams[0].health_check.fall: must be between 1 and 100, got 101"},
    {{.upstream = "health_check:\n  path: /\n  rise: 0"},
     "rise: 0",
     "upstreams[0].health_check.rise: must be between 1 and 100, got 0"},
    {{.upstream = "health_check:\n  path: /\n  rise: 101"},
     "rise: 101",
     "upstreams[0].health_check.rise: must be between 1 and 100, got 101"},
    {{.upstream = "health_check:\n  path: /\n  host: \"a b\""},
     "a b",
     "upstreams[0].health_check.host: invalid host \"a b\": expected a host name, optionally "
     "with a port, like \"backend.internal:8443\""},
    {{.upstream = "health_check:\n  path: /\n  method: HEAD"},
     "method: HEAD",
     "upstreams[0].health_check.method: unknown key"},
    {{.upstream = "retries:\n  max_backoff_ms: 9"},
     "max_backoff_ms",
     "upstreams[0].retries.max_backoff_ms: must be at least backoff_ms (10, the default), got 9"},
    {{.upstream = "retries:\n  backoff_ms: 100\n  max_backoff_ms: 50"},
     "max_backoff_ms",
     "upstreams[0].retries.max_backoff_ms: must be at least backoff_ms (100), got 50"},
    {{.upstream = "retries:\n  backoff_ms: 251"},
     "backoff_ms",
     "upstreams[0].retries.backoff_ms: must be at most max_backoff_ms (250, the default), got "
     "251"},
};

static void test_each_key_accepts_a_valid_value(void **state)
{
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        char yaml[4096];
        int rv;

        build(&valid_cases[i].doc, yaml, sizeof(yaml));
        rv = load_text(f, yaml);
        if (rv != 0) {
            char got[1024];

            print_message("case %zu:\n%s", i, yaml);
            for (size_t e = 0; e < f->errors.count; e++)
                print_message("%s\n", sp_config_error_format(&f->errors.items[e], got, 1024));
        }
        assert_int_equal(rv, 0);
    }
}

static void test_each_key_rejects_an_invalid_value_with_its_line(void **state)
{
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]); i++) {
        const struct key_case *k = &invalid_cases[i];
        char yaml[4096];

        build(&k->doc, yaml, sizeof(yaml));
        if (load_text(f, yaml) != -EINVAL)
            fail_msg("case %zu was accepted:\n%s", i, yaml);
        assert_null(f->config);
        if (k->error != NULL)
            assert_has_error(f, line_of(f, yaml, k->at), k->error);
        else
            assert_true(f->errors.count >= 1);
    }
}

static void test_relative_files_resolve_against_the_config_directory(void **state)
{
    struct fixture *f = *state;
    const struct doc d = {.upstream = "tls:\n  ca_file: missing.pem"};
    char yaml[4096], expect[512];

    build(&d, yaml, sizeof(yaml));
    assert_int_equal(load_text(f, yaml), -EINVAL);
    snprintf(expect, sizeof(expect),
             "upstreams[0].tls.ca_file: cannot read \"missing.pem\" (resolved to %s/missing.pem): "
             "No such file or directory",
             f->dir);
    assert_has_error(f, line_of(f, yaml, "ca_file"), expect);
}

static void test_every_error_is_reported_not_only_the_first(void **state)
{
    struct fixture *f = *state;
    const struct doc d = {
        .top = "workers: 999\nlog:\n  level: loud",
        BACKEND_WITH("weight: 0\ncolour: red"),
    };
    char yaml[4096];

    build(&d, yaml, sizeof(yaml));
    assert_int_equal(load_text(f, yaml), -EINVAL);
    assert_int_equal(f->errors.count, 4);
    /* in file order */
    assert_string_equal(f->errors.items[0].key, "workers");
    assert_string_equal(f->errors.items[1].key, "log.level");
    assert_string_equal(f->errors.items[2].key, "upstreams[0].backends[0].weight");
    assert_string_equal(f->errors.items[3].key, "upstreams[0].backends[0].colour");
    assert_int_equal(f->errors.items[3].line, line_of(f, yaml, "colour"));
}

static void test_missing_top_level_keys_point_at_the_document(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load_text(f, "# spooky\nworkers: 1\n"), -EINVAL);
    assert_int_equal(f->errors.count, 2);
    assert_has_error(f, 2, "listeners: required key missing");
    assert_has_error(f, 2, "upstreams: required key missing");
}

static void test_empty_lists_are_rejected(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load_text(f, "listeners: []\nupstreams: []\n"), -EINVAL);
    assert_has_error(f, 1, "listeners: must have at least 1 entry");
    assert_has_error(f, 2, "upstreams: must have at least 1 entry");
}

static void test_yaml_syntax_error_is_one_error_with_its_line(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load_text(f, "workers: 1\nlisteners:\n  - address: 1\n   port: 2\n"
                                  "colour: red\n"),
                     -EINVAL);
    assert_int_equal(f->errors.count, 1);
    assert_has_error(f, 4, "invalid YAML: did not find expected '-' indicator");
}

static void test_unclosed_quote_is_a_syntax_error(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load_text(f, "workers: 1\nlog:\n  level: \"info\n"), -EINVAL);
    assert_int_equal(f->errors.count, 1);
    assert_int_equal(f->errors.items[0].line, 4);
    assert_string_equal(f->errors.items[0].key, "");
}

static void test_aliases_and_second_documents_are_refused(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load_text(f, "workers: &w 1\nx: *w\n---\nworkers: 2\n"), -EINVAL);
    assert_int_equal(f->errors.count, 2);
    assert_has_error(f, 2, "YAML aliases are not supported (*w)");
    assert_has_error(f, 3, "only one YAML document is allowed per configuration file");
}

static void test_empty_file_and_non_mapping_documents_are_refused(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load_text(f, "# nothing\n"), -EINVAL);
    assert_has_error(f, 0, "the configuration is empty");
    assert_int_equal(load_text(f, "- a\n- b\n"), -EINVAL);
    assert_has_error(f, 1, "the configuration must be a mapping of keys, got a list");
}

static void test_missing_file_returns_enoent_and_says_so(void **state)
{
    struct sp_config_errors errors = {0};
    struct sp_config *config = NULL;
    char out[256];

    (void)state;
    assert_int_equal(sp_config_load("/nonexistent/spooky.yaml", &config, &errors), -ENOENT);
    assert_null(config);
    assert_int_equal(errors.count, 1);
    assert_string_equal(sp_config_error_format(&errors.items[0], out, sizeof(out)),
                        "/nonexistent/spooky.yaml: cannot read the configuration: No such file "
                        "or directory");
    sp_config_errors_fini(&errors);
}

static void test_duplicate_listeners_names_and_ids_are_errors(void **state)
{
    struct fixture *f = *state;
    static const char yaml[] =
        LISTENERS "  - {address: \"::1\", port: 8443, cert: server.crt, key: "
                  "server.key}\n"
                  "  - {address: \"0:0::1\", port: 8443, cert: server.crt, key: "
                  "server.key}\n"
                  "upstreams:\n"
                  "  - name: app\n"
                  "    routes: [{path_prefix: /a}]\n"
                  "    backends: [{id: b1, address: \"127.0.0.1:1\"}]\n"
                  "  - name: app\n"
                  "    routes: [{path_prefix: /b}]\n"
                  "    backends:\n"
                  "      - {id: b2, address: \"127.0.0.1:1\"}\n"
                  "      - {id: b1, address: \"127.0.0.1:2\"}\n";

    assert_int_equal(load_text(f, yaml), -EINVAL);
    assert_int_equal(f->errors.count, 3);
    assert_has_error(f, 4, "listeners[2]: duplicate listener 0:0::1 port 8443 (also listeners[1])");
    assert_has_error(f, 9,
                     "upstreams[1].name: duplicate upstream name \"app\" (also upstreams[0].name)");
    assert_has_error(f, 13,
                     "upstreams[1].backends[1].id: duplicate backend id \"b1\" (also "
                     "upstreams[0].backends[0].id)");
}

static void test_routes_that_cannot_be_told_apart_are_errors(void **state)
{
    struct fixture *f = *state;
    static const char yaml[] =
        LISTENERS "upstreams:\n"
                  "  - name: a\n"
                  "    routes:\n"
                  "      - path_prefix: /\n"
                  "      - {host: A.example, path_prefix: /x, methods: [GET]}\n"
                  "    backends: [{id: b1, address: \"127.0.0.1:1\"}]\n"
                  "  - name: b\n"
                  "    routes:\n"
                  "      - host: \"*\"\n"
                  "      - {host: a.EXAMPLE, path_prefix: /x, methods: [PUT, GET]}\n"
                  "      - {host: a.example, path_prefix: /x, methods: [POST]}\n"
                  "      - {host: \"*.example\", path_prefix: /x}\n"
                  "      - {path_prefix: /x/}\n"
                  "    backends: [{id: b2, address: \"127.0.0.1:1\"}]\n";

    assert_int_equal(load_text(f, yaml), -EINVAL);
    assert_int_equal(f->errors.count, 2);
    assert_has_error(f, 11,
                     "upstreams[1].routes[0]: route host=\"*\" path_prefix=\"/\" duplicates "
                     "upstreams[0].routes[0]");
    assert_has_error(f, 12,
                     "upstreams[1].routes[1]: route host=\"a.example\" path_prefix=\"/x\" "
                     "duplicates upstreams[0].routes[1] for method GET");
}

static void test_routes_in_the_same_upstream_may_not_repeat(void **state)
{
    struct fixture *f = *state;
    static const char yaml[] = LISTENERS "upstreams:\n"
                                         "  - name: a\n"
                                         "    routes:\n"
                                         "      - path_prefix: /\n"
                                         "      - path_prefix: /\n"
                                         "        methods: [GET]\n"
                                         "    backends: [{id: b1, address: \"127.0.0.1:1\"}]\n";

    assert_int_equal(load_text(f, yaml), -EINVAL);
    assert_int_equal(f->errors.count, 1);
    assert_has_error(f, 7,
                     "upstreams[0].routes[1]: route host=\"*\" path_prefix=\"/\" duplicates "
                     "upstreams[0].routes[0] for method GET");
}

static void test_policy_pairs_are_checked_in_every_upstream_at_once(void **state)
{
    struct fixture *f = *state;
    static const char yaml[] =
        LISTENERS "upstreams:\n"
                  "  - name: a\n"
                  "    routes: [{path_prefix: /a}]\n"
                  "    backends: [{id: b1, address: \"127.0.0.1:1\"}]\n"
                  "    passive_health: {eject_failures: 0, degrade_failures: 9}\n"
                  "  - name: b\n"
                  "    routes: [{path_prefix: /b}]\n"
                  "    backends: [{id: b2, address: \"127.0.0.1:1\"}]\n"
                  "    passive_health:\n"
                  "      degrade_failures: 9\n"
                  "    breaker:\n"
                  "      max_open_ms: 4000\n"
                  "    retries: {backoff_ms: 300, max_backoff_ms: 200}\n";

    /* upstreams[0] turned ejecting on consecutive failures off, so any degrade threshold fits */
    assert_int_equal(load_text(f, yaml), -EINVAL);
    assert_int_equal(f->errors.count, 3);
    assert_has_error(f, 12,
                     "upstreams[1].passive_health.degrade_failures: must be below eject_failures "
                     "(5, the default), got 9");
    assert_has_error(f, 14,
                     "upstreams[1].breaker.max_open_ms: must be at least open_ms (5000, the "
                     "default), got 4000");
    assert_has_error(f, 15,
                     "upstreams[1].retries.max_backoff_ms: must be at least backoff_ms (300), got "
                     "200");
    /* in file order */
    assert_int_equal(f->errors.items[0].line, 12);
    assert_int_equal(f->errors.items[2].line, 15);
}

static void test_error_format_omits_line_zero_and_empty_key(void **state)
{
    struct sp_config_error e = {.file = "a.yaml", .line = 3, .key = "k", .message = "bad"};
    char out[64];

    (void)state;
    assert_string_equal(sp_config_error_format(&e, out, sizeof(out)), "a.yaml:3: k: bad");
    e.line = 0;
    assert_string_equal(sp_config_error_format(&e, out, sizeof(out)), "a.yaml: k: bad");
    e.key = "";
    assert_string_equal(sp_config_error_format(&e, out, sizeof(out)), "a.yaml: bad");
    assert_string_equal(sp_config_error_format(&e, out, 5), "a.ya");
}

static void test_free_and_fini_accept_empty_objects(void **state)
{
    struct sp_config_errors errors = {0};

    (void)state;
    sp_config_free(NULL);
    sp_config_errors_fini(&errors);
    sp_config_errors_fini(&errors);
}

static void test_each_strategy_name_loads_as_its_enum(void **state)
{
    static const struct {
        const char *name;
        enum sp_lb_kind kind;
    } strategies[] = {
        {"round_robin", SP_LB_ROUND_ROBIN},
        {"weighted_round_robin", SP_LB_WEIGHTED_ROUND_ROBIN},
        {"random", SP_LB_RANDOM},
        {"least_conn", SP_LB_LEAST_CONN},
        {"p2c", SP_LB_P2C},
        {"ewma", SP_LB_EWMA},
        {"rendezvous", SP_LB_RENDEZVOUS},
    };
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(strategies) / sizeof(strategies[0]); i++) {
        char upstream[128];
        const struct doc d = {.upstream = upstream};

        /* only rendezvous takes (and needs) a hash_key */
        snprintf(upstream, sizeof(upstream), "strategy: %s%s", strategies[i].name,
                 strategies[i].kind == SP_LB_RENDEZVOUS ? "\nhash_key:\n  source: path" : "");
        assert_int_equal(load_doc(f, &d), 0);
        assert_int_equal(f->config->upstreams[0].strategy, strategies[i].kind);
    }
}

static void test_each_hash_key_source_loads_with_its_name(void **state)
{
    static const struct {
        const char *yaml; /* body of hash_key */
        enum sp_hash_source source;
        const char *name; /* expected stored name; NULL = none */
    } sources[] = {
        {"source: source_ip", SP_HASH_SOURCE_IP, NULL},
        {"source: header\nname: X-Tenant", SP_HASH_HEADER, "x-tenant"},
        {"source: cookie\nname: Session_ID", SP_HASH_COOKIE, "Session_ID"},
        {"source: path", SP_HASH_PATH, NULL},
        {"source: authority", SP_HASH_AUTHORITY, NULL},
        {"source: query\nname: User", SP_HASH_QUERY, "User"},
        {"source: connection", SP_HASH_CONNECTION, NULL},
    };
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
        char upstream[256] = "strategy: rendezvous\nhash_key:\n";
        const struct doc d = {.upstream = upstream};
        const struct sp_hash_key_conf *h;

        /* indent every line of the body under hash_key */
        for (const char *p = sources[i].yaml; *p != '\0';) {
            size_t n = strcspn(p, "\n");

            snprintf(upstream + strlen(upstream), sizeof(upstream) - strlen(upstream), "  %.*s\n",
                     (int)n, p);
            p += n + (p[n] == '\n');
        }
        upstream[strlen(upstream) - 1] = '\0';
        assert_int_equal(load_doc(f, &d), 0);
        h = &f->config->upstreams[0].hash_key;
        assert_int_equal(h->source, sources[i].source);
        if (sources[i].name == NULL)
            assert_null(h->name);
        else
            assert_string_equal(h->name, sources[i].name);
        assert_int_equal(h->ipv4_prefix, 32);
        assert_int_equal(h->ipv6_prefix, 64);
    }
}

static void test_source_ip_hash_key_keeps_its_prefixes(void **state)
{
    struct fixture *f = *state;
    const struct doc d = {.upstream = "strategy: rendezvous\nhash_key:\n  source: source_ip\n"
                                      "  ipv4_prefix: 24\n  ipv6_prefix: 48"};
    const struct sp_upstream_conf *u;

    assert_int_equal(load_doc(f, &d), 0);
    u = &f->config->upstreams[0];
    assert_int_equal(u->strategy, SP_LB_RENDEZVOUS);
    assert_int_equal(u->hash_key.source, SP_HASH_SOURCE_IP);
    assert_null(u->hash_key.name);
    assert_int_equal(u->hash_key.ipv4_prefix, 24);
    assert_int_equal(u->hash_key.ipv6_prefix, 48);
}

static void test_sticky_cookie_with_only_a_secret_gets_the_defaults(void **state)
{
    struct fixture *f = *state;
    const struct doc d = {.upstream = "sticky_cookie:\n  secret: " SECRET16};
    const struct sp_sticky_conf *s;

    assert_int_equal(load_doc(f, &d), 0);
    s = &f->config->upstreams[0].sticky;
    assert_true(s->enabled);
    assert_string_equal(s->cookie_name, "spooky_sticky");
    assert_string_equal(s->secret, SECRET16);
    assert_int_equal(s->max_age_s, 0);
    assert_int_equal(f->config->upstreams[0].strategy, SP_LB_ROUND_ROBIN);
}

static void test_a_short_secret_is_refused_without_being_echoed(void **state)
{
    struct fixture *f = *state;
    const struct doc d = {.upstream = "sticky_cookie:\n  secret: hunter2hunter2"};
    char got[1024];

    assert_int_equal(load_doc(f, &d), -EINVAL);
    assert_int_equal(f->errors.count, 1);
    sp_config_error_format(&f->errors.items[0], got, sizeof(got));
    assert_null(strstr(got, "hunter2"));
    assert_non_null(strstr(got, "must be at least 16 bytes long, got 14"));
}

static void test_hash_key_problems_are_all_reported_at_once(void **state)
{
    struct fixture *f = *state;
    const struct doc d = {.upstream = "strategy: rendezvous\nhash_key:\n  source: authority\n"
                                      "  name: host\n"
                                      "  ipv4_prefix: 24\n  ipv6_prefix: 999"};
    char yaml[4096];

    build(&d, yaml, sizeof(yaml));
    assert_int_equal(load_text(f, yaml), -EINVAL);
    assert_int_equal(f->errors.count, 4);
    assert_has_error(f, line_of(f, yaml, "name: host"),
                     "upstreams[0].hash_key.name: not allowed with source authority: only header, "
                     "cookie and query take a name");
    assert_has_error(f, line_of(f, yaml, "ipv4_prefix"),
                     "upstreams[0].hash_key.ipv4_prefix: not allowed with source authority: only "
                     "source_ip takes a prefix");
    /* out of range and with the wrong source: two problems, both said */
    assert_has_error(f, line_of(f, yaml, "ipv6_prefix"),
                     "upstreams[0].hash_key.ipv6_prefix: must be between 1 and 128, got 999");
    assert_has_error(f, line_of(f, yaml, "ipv6_prefix"),
                     "upstreams[0].hash_key.ipv6_prefix: not allowed with source authority: only "
                     "source_ip takes a prefix");
}

static void test_one_mistake_in_hash_key_gives_one_error(void **state)
{
    struct fixture *f = *state;
    /* a malformed hash_key is not also reported as missing, nor an unknown source's name */
    const struct doc a = {.upstream = "strategy: rendezvous\nhash_key: [source_ip]"};
    const struct doc b = {.upstream = "strategy: rendezvous\nhash_key:\n  source: headers\n"
                                      "  name: x"};
    const struct doc c = {.upstream = "strategy: rendezvous\nhash_key:\n  source: header\n"
                                      "  name: [a, b]"};

    assert_int_equal(load_doc(f, &a), -EINVAL);
    assert_int_equal(f->errors.count, 1);
    assert_string_equal(f->errors.items[0].key, "upstreams[0].hash_key");
    assert_int_equal(load_doc(f, &b), -EINVAL);
    assert_int_equal(f->errors.count, 1);
    assert_string_equal(f->errors.items[0].key, "upstreams[0].hash_key.source");
    assert_int_equal(load_doc(f, &c), -EINVAL);
    assert_int_equal(f->errors.count, 1);
    assert_string_equal(f->errors.items[0].message, "expected a string, got a list");
}

static void test_default_upstream_may_name_any_upstream(void **state)
{
    struct fixture *f = *state;
    static const char yaml[] = "default_upstream: b\n" LISTENERS "upstreams:\n"
                               "  - name: a\n"
                               "    routes: [{path_prefix: /a}]\n"
                               "    backends: [{id: b1, address: \"127.0.0.1:1\"}]\n"
                               "  - name: b\n"
                               "    routes: [{path_prefix: /b}]\n"
                               "    backends: [{id: b2, address: \"127.0.0.1:1\"}]\n";

    assert_int_equal(load_text(f, yaml), 0);
    assert_string_equal(f->config->default_upstream, "b");
}

static void test_example_config_is_valid(void **state)
{
    struct fixture *f = *state;
    char path[256], cmd[1024];

    /* config/example.yaml names ../demo/certs/server.{crt,key}: lay out the same tree */
    snprintf(cmd, sizeof(cmd),
             "mkdir -p '%s/ex/config' '%s/ex/demo/certs' && cp config/example.yaml '%s/ex/config/' "
             "&& touch '%s/ex/demo/certs/server.crt' '%s/ex/demo/certs/server.key'",
             f->dir, f->dir, f->dir, f->dir, f->dir);
    assert_int_equal(system(cmd), 0);
    reset(f);
    snprintf(path, sizeof(path), "%s/ex/config/example.yaml", f->dir);
    if (sp_config_load(path, &f->config, &f->errors) != 0) {
        char got[1024];

        for (size_t e = 0; e < f->errors.count; e++)
            print_message("%s\n", sp_config_error_format(&f->errors.items[e], got, 1024));
        fail();
    }
    assert_int_equal(f->config->upstreams_count, 2);
    assert_int_equal(f->config->upstreams[0].backends[0].weight, 2);
    assert_int_equal(f->config->upstreams[0].strategy, SP_LB_P2C);
    assert_true(f->config->access_log);
    assert_string_equal(f->config->default_upstream, "web");
    assert_true(f->config->upstreams[1].sticky.enabled);
    /* "api" writes out every policy key with its default, "web" has no policy section */
    assert_policy_defaults(&f->config->upstreams[0]);
    assert_policy_defaults(&f->config->upstreams[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_config_loads_with_every_default),
        cmocka_unit_test(test_every_top_level_key_is_loaded_into_the_config),
        cmocka_unit_test(test_an_upstream_without_timeouts_inherits_every_global_value),
        cmocka_unit_test(test_an_upstream_without_timeouts_gets_the_global_defaults),
        cmocka_unit_test(test_upstream_timeouts_override_only_the_keys_they_set),
        cmocka_unit_test(test_every_listener_key_is_loaded_into_the_config),
        cmocka_unit_test(test_every_upstream_key_is_loaded_into_the_config),
        cmocka_unit_test(test_every_policy_key_is_loaded_into_the_config),
        cmocka_unit_test(test_empty_policy_sections_get_every_default),
        cmocka_unit_test(test_health_check_keys_are_loaded_into_the_config),
        cmocka_unit_test(test_health_check_gets_defaults_and_is_off_when_absent),
        cmocka_unit_test(test_a_partial_policy_section_keeps_the_other_defaults),
        cmocka_unit_test(test_backend_ipv4_address_is_resolved_into_a_sockaddr),
        cmocka_unit_test(test_each_key_accepts_a_valid_value),
        cmocka_unit_test(test_each_key_rejects_an_invalid_value_with_its_line),
        cmocka_unit_test(test_relative_files_resolve_against_the_config_directory),
        cmocka_unit_test(test_every_error_is_reported_not_only_the_first),
        cmocka_unit_test(test_missing_top_level_keys_point_at_the_document),
        cmocka_unit_test(test_empty_lists_are_rejected),
        cmocka_unit_test(test_yaml_syntax_error_is_one_error_with_its_line),
        cmocka_unit_test(test_unclosed_quote_is_a_syntax_error),
        cmocka_unit_test(test_aliases_and_second_documents_are_refused),
        cmocka_unit_test(test_empty_file_and_non_mapping_documents_are_refused),
        cmocka_unit_test(test_missing_file_returns_enoent_and_says_so),
        cmocka_unit_test(test_duplicate_listeners_names_and_ids_are_errors),
        cmocka_unit_test(test_routes_that_cannot_be_told_apart_are_errors),
        cmocka_unit_test(test_routes_in_the_same_upstream_may_not_repeat),
        cmocka_unit_test(test_policy_pairs_are_checked_in_every_upstream_at_once),
        cmocka_unit_test(test_error_format_omits_line_zero_and_empty_key),
        cmocka_unit_test(test_free_and_fini_accept_empty_objects),
        cmocka_unit_test(test_each_strategy_name_loads_as_its_enum),
        cmocka_unit_test(test_each_hash_key_source_loads_with_its_name),
        cmocka_unit_test(test_source_ip_hash_key_keeps_its_prefixes),
        cmocka_unit_test(test_sticky_cookie_with_only_a_secret_gets_the_defaults),
        cmocka_unit_test(test_a_short_secret_is_refused_without_being_echoed),
        cmocka_unit_test(test_hash_key_problems_are_all_reported_at_once),
        cmocka_unit_test(test_one_mistake_in_hash_key_gives_one_error),
        cmocka_unit_test(test_default_upstream_may_name_any_upstream),
        cmocka_unit_test(test_example_config_is_valid),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
