/* config.c: sp_config_load and friends. Reads the file once, finds YAML syntax errors and
 * aliases with a libyaml event scan, checks the node tree (config_tree.c), loads the typed data
 * with libcyaml (config_schema.c), builds the struct sp_config with defaults applied, and runs
 * the checks across entries (config_validate.c). See config_internal.h for the steps. */
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "config/config_internal.h"
#include "core/util.h"

/* A config larger than this is a mistake (or not a config). */
#define MAX_CONFIG_BYTES (16u << 20)

char *sp_config_strf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n == -1)
        abort(); /* OOM: see sp_xmalloc */
    return s;
}

void sp_config_error_add(struct sp_config_errors *errors, const char *file, unsigned line,
                         const char *key, const char *fmt, ...)
{
    struct sp_config_error *e;
    va_list ap;
    int n;

    errors->items = sp_xrealloc(errors->items, (errors->count + 1) * sizeof(*errors->items));
    e = &errors->items[errors->count++];
    e->file = sp_xstrdup(file);
    e->line = line;
    e->key = sp_xstrdup(key);
    va_start(ap, fmt);
    n = vasprintf(&e->message, fmt, ap);
    va_end(ap);
    if (n == -1)
        abort(); /* OOM: see sp_xmalloc */
}

static void error_fini(struct sp_config_error *e)
{
    free(e->file);
    e->file = NULL;
    free(e->key);
    e->key = NULL;
    free(e->message);
    e->message = NULL;
}

void sp_config_errors_fini(struct sp_config_errors *errors)
{
    for (size_t i = 0; i < errors->count; i++)
        error_fini(&errors->items[i]);
    free(errors->items);
    errors->items = NULL;
    errors->count = 0;
}

/* Drops the errors added after the first `keep`. */
static void errors_truncate(struct sp_config_errors *errors, size_t keep)
{
    while (errors->count > keep)
        error_fini(&errors->items[--errors->count]);
}

/* Stable sort by line, so errors come out in file order whichever check found them. */
static void errors_sort(struct sp_config_errors *errors, size_t from)
{
    for (size_t i = from + 1; i < errors->count; i++) {
        struct sp_config_error e = errors->items[i];
        size_t j = i;

        for (; j > from && errors->items[j - 1].line > e.line; j--)
            errors->items[j] = errors->items[j - 1];
        errors->items[j] = e;
    }
}

char *sp_config_error_format(const struct sp_config_error *err, char *out, size_t cap)
{
    char line[16] = "";
    bool has_key = err->key != NULL && err->key[0] != '\0';

    if (cap == 0)
        return out;
    if (err->line > 0)
        (void)snprintf(line, sizeof(line), ":%u", err->line);
    (void)snprintf(out, cap, "%s%s: %s%s%s", err->file != NULL ? err->file : "?", line,
                   has_key ? err->key : "", has_key ? ": " : "",
                   err->message != NULL ? err->message : "");
    return out;
}

/* Reads the whole file. Returns 0 or a negative errno (-EFBIG when too large). */
static int read_file(const char *path, char **ret_data, size_t *ret_len)
{
    size_t len = 0, cap = 4096;
    char *data;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    int rv;

    if (fd == -1)
        return -errno;
    data = sp_xmalloc(cap + 1);
    for (;;) {
        ssize_t n = read(fd, data + len, cap - len);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            rv = -errno;
            goto out_free_data;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > MAX_CONFIG_BYTES) {
            rv = -EFBIG;
            goto out_free_data;
        }
        if (len == cap) {
            cap *= 2;
            data = sp_xrealloc(data, cap + 1);
        }
    }
    (void)close(fd);
    data[len] = '\0';
    *ret_data = data;
    *ret_len = len;
    return 0;

out_free_data:
    free(data);
    (void)close(fd);
    return rv;
}

/* Returns the absolute directory of `path` in *ret_dir (owned), or a negative errno. */
static int config_dir(const char *path, char **ret_dir)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == NULL   ? sp_xstrdup(".")
                : slash == path ? sp_xstrdup("/")
                                : sp_xstrndup(path, (size_t)(slash - path));
    char *abs = realpath(dir, NULL);
    int rv = abs == NULL ? -errno : 0;

    free(dir);
    if (rv == 0)
        *ret_dir = abs;
    return rv;
}

static void scan_event(const char *file, const yaml_event_t *ev, unsigned *docs,
                       struct sp_config_errors *errors)
{
    unsigned line = (unsigned)ev->start_mark.line + 1;

    if (ev->type == YAML_ALIAS_EVENT)
        sp_config_error_add(errors, file, line, "", "YAML aliases are not supported (*%s)",
                            (const char *)ev->data.alias.anchor);
    if (ev->type == YAML_DOCUMENT_START_EVENT && ++*docs == 2)
        sp_config_error_add(errors, file, line, "",
                            "only one YAML document is allowed per configuration file");
}

/* Scans the YAML events: a syntax error becomes the one and only error, with the line where
 * parsing failed; aliases and extra documents are refused (a tree walk that follows aliases
 * could be made to do exponential work). Returns 0 or -EINVAL. */
static int scan_yaml(const char *file, const char *data, size_t len,
                     struct sp_config_errors *errors)
{
    size_t first = errors->count;
    yaml_parser_t parser;
    yaml_event_t ev;
    unsigned docs = 0;
    bool done = false;

    if (!yaml_parser_initialize(&parser))
        abort(); /* only fails on OOM: see sp_xmalloc */
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            errors_truncate(errors, first);
            sp_config_error_add(errors, file, (unsigned)parser.problem_mark.line + 1, "",
                                "invalid YAML: %s",
                                parser.problem != NULL ? parser.problem : "syntax error");
            break;
        }
        scan_event(file, &ev, &docs, errors);
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return errors->count > first ? -EINVAL : 0;
}

/* Checks the node tree: every error that one node alone shows, with its line. */
static int check_tree(const char *file, const char *dir, const char *data, size_t len,
                      struct sp_config_errors *errors, struct sp_config_lines *lines)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    int rv;

    if (!yaml_parser_initialize(&parser))
        abort(); /* only fails on OOM: see sp_xmalloc */
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &doc)) {
        /* scan_yaml accepted the same bytes, so this is OOM or a libyaml bug */
        sp_config_error_add(errors, file, (unsigned)parser.problem_mark.line + 1, "",
                            "invalid YAML: %s",
                            parser.problem != NULL ? parser.problem : "syntax error");
        yaml_parser_delete(&parser);
        return -EINVAL;
    }
    rv = sp_config_tree_check(&doc, file, dir, errors, lines);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rv;
}

/* ---- building the sp_config from the raw structs, applying defaults ---- */

#define OR_DEFAULT(ptr, def) ((ptr) != NULL ? *(ptr) : (def))

static void build_listener(struct sp_listener_conf *l, const struct sp_raw_listener *raw,
                           const char *dir)
{
    l->address = sp_xstrdup(raw->address);
    l->port = (uint16_t)raw->port;
    l->cert_file = sp_config_path_resolve(dir, raw->cert);
    l->key_file = sp_config_path_resolve(dir, raw->key);
    l->alt_svc_max_age_s = OR_DEFAULT(raw->alt_svc_max_age, 86400u);
    /* checked by the tree walk, so it parses */
    (void)sp_config_parse_ip(l->address, l->port, &l->addr, &l->addrlen);
}

static void build_timeouts(struct sp_timeouts_conf *t, const struct sp_raw_timeouts *raw)
{
    static const struct sp_raw_timeouts none = {0};

    if (raw == NULL)
        raw = &none;
    t->connect_ms = OR_DEFAULT(raw->connect_ms, 5000);
    t->response_ms = OR_DEFAULT(raw->response_ms, 30000);
    t->client_idle_ms = OR_DEFAULT(raw->client_idle_ms, 30000);
    t->backend_idle_ms = OR_DEFAULT(raw->backend_idle_ms, 30000);
    t->shutdown_ms = OR_DEFAULT(raw->shutdown_ms, 5000);
    t->body_idle_ms = OR_DEFAULT(raw->body_idle_ms, 60000);
    t->request_ms = OR_DEFAULT(raw->request_ms, 0);
    t->try_ms = OR_DEFAULT(raw->try_ms, 0);
    t->stall_warn_ms = OR_DEFAULT(raw->stall_warn_ms, 5000);
}

/* An upstream's effective timeouts: its own keys over the global values. Only the keys the
 * upstream schema lists can be set in raw (config_tree.c refuses the others). */
static void build_upstream_timeouts(struct sp_timeouts_conf *t,
                                    const struct sp_timeouts_conf *global,
                                    const struct sp_raw_timeouts *raw)
{
    *t = *global;
    if (raw == NULL)
        return;
    t->connect_ms = OR_DEFAULT(raw->connect_ms, global->connect_ms);
    t->response_ms = OR_DEFAULT(raw->response_ms, global->response_ms);
    t->body_idle_ms = OR_DEFAULT(raw->body_idle_ms, global->body_idle_ms);
    t->request_ms = OR_DEFAULT(raw->request_ms, global->request_ms);
    t->try_ms = OR_DEFAULT(raw->try_ms, global->try_ms);
    t->stall_warn_ms = OR_DEFAULT(raw->stall_warn_ms, global->stall_warn_ms);
}

static void build_limits(struct sp_limits_conf *l, const struct sp_raw_limits *raw)
{
    static const struct sp_raw_limits none = {0};

    if (raw == NULL)
        raw = &none;
    l->max_header_bytes = OR_DEFAULT(raw->max_header_bytes, 65536);
    l->max_headers = OR_DEFAULT(raw->max_headers, 100u);
    l->max_streams_per_connection = OR_DEFAULT(raw->max_streams_per_connection, 100u);
    l->max_body_bytes = OR_DEFAULT(raw->max_body_bytes, 0);
    l->stream_window_bytes = OR_DEFAULT(raw->stream_window_bytes, 256 * 1024);
    l->connection_window_bytes = OR_DEFAULT(raw->connection_window_bytes, 1024 * 1024);
    l->max_connections = OR_DEFAULT(raw->max_connections, 10000u);
}

static char *lowercase_dup(const char *s)
{
    char *d = sp_xstrdup(s);

    for (char *p = d; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    }
    return d;
}

static void build_route(struct sp_route_conf *r, const struct sp_raw_route *raw)
{
    /* "*" matches any host, like no host at all; hosts compare in lower case */
    r->host = raw->host != NULL && strcmp(raw->host, "*") != 0 ? lowercase_dup(raw->host) : NULL;
    r->path_prefix = sp_xstrdup(raw->path_prefix != NULL ? raw->path_prefix : "/");
    r->methods_count = raw->methods_count;
    r->methods = NULL;
    if (raw->methods_count == 0)
        return;
    r->methods = sp_xcalloc(raw->methods_count, sizeof(*r->methods));
    for (size_t i = 0; i < raw->methods_count; i++)
        r->methods[i] = sp_xstrdup(raw->methods[i]);
}

static void build_backend(struct sp_backend_conf *b, const struct sp_raw_backend *raw)
{
    b->id = sp_xstrdup(raw->id);
    b->address = sp_xstrdup(raw->address);
    b->protocol = OR_DEFAULT(raw->protocol, SP_BACKEND_PROTO_H3);
    /* h3 and h2 imply TLS, h2c and http1 default to cleartext; contradictions are reported by
     * the cross checks (config_validate.c) */
    b->tls = OR_DEFAULT(raw->tls,
                        b->protocol == SP_BACKEND_PROTO_H3 || b->protocol == SP_BACKEND_PROTO_H2);
    b->weight = OR_DEFAULT(raw->weight, 1u);
    /* checked by the tree walk, so it parses */
    (void)sp_config_parse_hostport(b->address, &b->addr, &b->addrlen);
}

static void build_hash_key(struct sp_hash_key_conf *h, const struct sp_raw_hash_key *raw)
{
    static const struct sp_raw_hash_key none = {.source = SP_HASH_NONE};

    if (raw == NULL)
        raw = &none;
    h->source = raw->source;
    /* RFC 9114 §4.2: HTTP/3 field names are lower case, so a header name is compared that way;
     * cookie and query parameter names are compared byte for byte */
    h->name = raw->name == NULL               ? NULL
              : raw->source == SP_HASH_HEADER ? lowercase_dup(raw->name)
                                              : sp_xstrdup(raw->name);
    h->ipv4_prefix = OR_DEFAULT(raw->ipv4_prefix, 32u);
    h->ipv6_prefix = OR_DEFAULT(raw->ipv6_prefix, 64u);
}

static void build_sticky(struct sp_sticky_conf *s, const struct sp_raw_sticky *raw)
{
    if (raw == NULL)
        return; /* disabled: every field stays zero */
    s->enabled = true;
    s->cookie_name = sp_xstrdup(raw->name != NULL ? raw->name : "spooky_sticky");
    s->secret = sp_xstrdup(raw->secret);
    s->max_age_s = OR_DEFAULT(raw->max_age, 0);
}

/* The defaults are spooky's policy defaults (sp_health_conf_default and the breaker and retry
 * sections of docs/config.md); an absent section gets all of them. */
static void build_passive_health(struct sp_passive_health_conf *p,
                                 const struct sp_raw_passive_health *raw)
{
    static const struct sp_raw_passive_health none = {0};

    if (raw == NULL)
        raw = &none;
    p->eject_failures = OR_DEFAULT(raw->eject_failures, 5u);
    p->eject_5xx = OR_DEFAULT(raw->eject_5xx, 5u);
    p->degrade_failures = OR_DEFAULT(raw->degrade_failures, 2u);
    p->eject_ratio_pct = OR_DEFAULT(raw->eject_ratio_pct, 50u);
    p->degrade_ratio_pct = OR_DEFAULT(raw->degrade_ratio_pct, 10u);
    p->min_requests = OR_DEFAULT(raw->min_requests, 20u);
    p->window_ms = OR_DEFAULT(raw->window_ms, 10000);
    p->degraded_weight_pct = OR_DEFAULT(raw->degraded_weight_pct, 50u);
    p->recovery_ms = OR_DEFAULT(raw->recovery_ms, 1000);
    p->max_recovery_ms = OR_DEFAULT(raw->max_recovery_ms, 60000);
    p->panic_threshold_pct = OR_DEFAULT(raw->panic_threshold_pct, 50u);
}

/* Absent section: probes off, every field zero. expected_status was checked by the tree walk. */
static void build_health_check(struct sp_health_check_conf *h,
                               const struct sp_raw_health_check *raw)
{
    if (raw == NULL)
        return;
    h->enabled = true;
    h->path = sp_xstrdup(raw->path);
    h->interval_ms = OR_DEFAULT(raw->interval_ms, 2000);
    h->timeout_ms = OR_DEFAULT(raw->timeout_ms, 1000);
    h->status_min = 200;
    h->status_max = 399;
    if (raw->expected_status != NULL)
        (void)sp_config_parse_status_range(raw->expected_status, &h->status_min, &h->status_max);
    h->fall = OR_DEFAULT(raw->fall, 3u);
    h->rtt_degrade_factor = OR_DEFAULT(raw->rtt_degrade_factor, 4u);
    h->rise = OR_DEFAULT(raw->rise, 2u);
    h->host = raw->host != NULL ? sp_xstrdup(raw->host) : NULL;
}

static void build_breaker(struct sp_breaker_settings *b, const struct sp_raw_breaker *raw)
{
    static const struct sp_raw_breaker none = {0};

    if (raw == NULL)
        raw = &none;
    b->max_failures = OR_DEFAULT(raw->max_failures, 5u);
    b->failure_ratio_pct = OR_DEFAULT(raw->failure_ratio_pct, 0u);
    b->min_requests = OR_DEFAULT(raw->min_requests, 20u);
    b->window_ms = OR_DEFAULT(raw->window_ms, 10000);
    b->open_ms = OR_DEFAULT(raw->open_ms, 5000);
    b->max_open_ms = OR_DEFAULT(raw->max_open_ms, 60000);
    b->half_open_requests = OR_DEFAULT(raw->half_open_requests, 1u);
    b->half_open_successes = OR_DEFAULT(raw->half_open_successes, 1u);
    b->max_concurrent = OR_DEFAULT(raw->max_concurrent, 0u);
    b->max_pending = OR_DEFAULT(raw->max_pending, 0u);
}

static void build_retries(struct sp_retry_conf *r, const struct sp_raw_retries *raw)
{
    static const struct sp_raw_retries none = {0};

    if (raw == NULL)
        raw = &none;
    r->max = OR_DEFAULT(raw->max, 2u);
    r->budget_pct = OR_DEFAULT(raw->budget_pct, 20u);
    r->min_retries = OR_DEFAULT(raw->min_retries, 3u);
    r->backoff_ms = OR_DEFAULT(raw->backoff_ms, 10);
    r->max_backoff_ms = OR_DEFAULT(raw->max_backoff_ms, 250);
    r->replay_body_bytes = OR_DEFAULT(raw->replay_body_bytes, 65536);
}

/* `global` is the config's own timeouts section, already built. */
static void build_upstream(struct sp_upstream_conf *u, const struct sp_raw_upstream *raw,
                           const char *dir, const struct sp_timeouts_conf *global)
{
    static const struct sp_raw_tls no_tls = {0};
    static const struct sp_raw_pool no_pool = {0};
    const struct sp_raw_tls *tls = raw->tls != NULL ? raw->tls : &no_tls;
    const struct sp_raw_pool *pool = raw->pool != NULL ? raw->pool : &no_pool;

    u->name = sp_xstrdup(raw->name);
    u->strategy = OR_DEFAULT(raw->strategy, SP_LB_ROUND_ROBIN);
    build_hash_key(&u->hash_key, raw->hash_key);
    build_sticky(&u->sticky, raw->sticky);
    u->slow_start_ms = OR_DEFAULT(raw->slow_start_ms, 0);
    /* the order of paired settings is checked across keys (config_validate.c) */
    build_passive_health(&u->passive_health, raw->passive_health);
    build_health_check(&u->health_check, raw->health_check);
    build_breaker(&u->breaker, raw->breaker);
    build_retries(&u->retries, raw->retries);
    u->routes = sp_xcalloc(raw->routes_count, sizeof(*u->routes));
    u->routes_count = raw->routes_count;
    for (size_t i = 0; i < raw->routes_count; i++)
        build_route(&u->routes[i], &raw->routes[i]);
    u->backends = sp_xcalloc(raw->backends_count, sizeof(*u->backends));
    u->backends_count = raw->backends_count;
    for (size_t i = 0; i < raw->backends_count; i++)
        build_backend(&u->backends[i], &raw->backends[i]);
    u->tls.ca_file = tls->ca_file != NULL ? sp_config_path_resolve(dir, tls->ca_file) : NULL;
    u->tls.verify = OR_DEFAULT(tls->verify, true);
    u->tls.server_name = tls->server_name != NULL ? sp_xstrdup(tls->server_name) : NULL;
    u->tls.client_cert_file =
        tls->client_cert != NULL ? sp_config_path_resolve(dir, tls->client_cert) : NULL;
    u->tls.client_key_file =
        tls->client_key != NULL ? sp_config_path_resolve(dir, tls->client_key) : NULL;
    u->pool.max_connections_per_backend = OR_DEFAULT(pool->max_connections_per_backend, 4u);
    u->pool.max_streams_per_connection = OR_DEFAULT(pool->max_streams_per_connection, 100u);
    u->pool.max_queue = OR_DEFAULT(pool->max_queue, 1024u);
    u->pool.idle_timeout_ms = OR_DEFAULT(pool->idle_timeout_ms, 60000);
    u->pool.keepalive_ms = OR_DEFAULT(pool->keepalive_ms, 5000);
    u->pool.dead_after_ms = OR_DEFAULT(pool->dead_after_ms, 1000);
    build_upstream_timeouts(&u->timeouts, global, raw->timeouts);
}

static struct sp_config *build_config(const char *path, const char *dir,
                                      const struct sp_raw_config *raw)
{
    struct sp_config *c = sp_xcalloc(1, sizeof(*c));

    c->path = sp_xstrdup(path);
    c->workers = OR_DEFAULT(raw->workers, 0u);
    c->log_level =
        raw->log != NULL ? OR_DEFAULT(raw->log->level, SP_LOG_LEVEL_INFO) : SP_LOG_LEVEL_INFO;
    c->log_format =
        raw->log != NULL ? OR_DEFAULT(raw->log->format, SP_LOG_FORMAT_TEXT) : SP_LOG_FORMAT_TEXT;
    c->access_log = raw->log != NULL ? OR_DEFAULT(raw->log->access, true) : true;
    /* must name an upstream: checked across entries (config_validate.c) */
    c->default_upstream = raw->default_upstream != NULL ? sp_xstrdup(raw->default_upstream) : NULL;
    c->listeners = sp_xcalloc(raw->listeners_count, sizeof(*c->listeners));
    c->listeners_count = raw->listeners_count;
    for (size_t i = 0; i < raw->listeners_count; i++)
        build_listener(&c->listeners[i], &raw->listeners[i], dir);
    build_timeouts(&c->timeouts, raw->timeouts);
    build_limits(&c->limits, raw->limits);
    c->upstreams = sp_xcalloc(raw->upstreams_count, sizeof(*c->upstreams));
    c->upstreams_count = raw->upstreams_count;
    for (size_t i = 0; i < raw->upstreams_count; i++)
        build_upstream(&c->upstreams[i], &raw->upstreams[i], dir, &c->timeouts);
    return c;
}

static void free_upstream(struct sp_upstream_conf *u)
{
    for (size_t i = 0; i < u->routes_count; i++) {
        struct sp_route_conf *r = &u->routes[i];

        for (size_t m = 0; m < r->methods_count; m++)
            free(r->methods[m]);
        free(r->methods);
        free(r->host);
        free(r->path_prefix);
    }
    free(u->routes);
    u->routes = NULL;
    for (size_t i = 0; i < u->backends_count; i++) {
        free(u->backends[i].id);
        free(u->backends[i].address);
    }
    free(u->backends);
    u->backends = NULL;
    free(u->tls.ca_file);
    u->tls.ca_file = NULL;
    free(u->tls.server_name);
    u->tls.server_name = NULL;
    free(u->tls.client_cert_file);
    u->tls.client_cert_file = NULL;
    free(u->tls.client_key_file);
    u->tls.client_key_file = NULL;
    free(u->hash_key.name);
    u->hash_key.name = NULL;
    free(u->sticky.cookie_name);
    u->sticky.cookie_name = NULL;
    if (u->sticky.secret != NULL)
        explicit_bzero(u->sticky.secret, strlen(u->sticky.secret)); /* keep it out of freed heap */
    free(u->sticky.secret);
    u->sticky.secret = NULL;
    free(u->health_check.path);
    u->health_check.path = NULL;
    free(u->health_check.host);
    u->health_check.host = NULL;
    free(u->name);
    u->name = NULL;
}

void sp_config_free(struct sp_config *config)
{
    if (config == NULL)
        return;
    for (size_t i = 0; i < config->listeners_count; i++) {
        free(config->listeners[i].address);
        free(config->listeners[i].cert_file);
        free(config->listeners[i].key_file);
    }
    free(config->listeners);
    config->listeners = NULL;
    for (size_t i = 0; i < config->upstreams_count; i++)
        free_upstream(&config->upstreams[i]);
    free(config->upstreams);
    config->upstreams = NULL;
    free(config->default_upstream);
    config->default_upstream = NULL;
    free(config->path);
    config->path = NULL;
    free(config);
}

/* Runs the checks and the typed load on the file's bytes. */
static int load_data(const char *path, const char *dir, const char *data, size_t len,
                     struct sp_config **ret_config, struct sp_config_errors *errors)
{
    struct sp_config_lines lines = {0};
    struct sp_raw_config *raw = NULL;
    struct sp_config *config;
    char *message = NULL;
    int rv;

    rv = scan_yaml(path, data, len, errors);
    if (rv < 0)
        return rv;
    rv = check_tree(path, dir, data, len, errors, &lines);
    if (rv < 0)
        goto out_fini_lines;
    rv = sp_config_raw_load(data, len, &raw, &message);
    if (rv < 0) {
        /* the tree check should have caught whatever libcyaml refuses: say so plainly */
        sp_config_error_add(errors, path, 0, "", "%s", message);
        free(message);
        goto out_fini_lines;
    }
    config = build_config(path, dir, raw);
    sp_config_raw_free(raw);
    rv = sp_config_cross_check(config, &lines, errors);
    if (rv < 0) {
        sp_config_free(config);
        goto out_fini_lines;
    }
    *ret_config = config;

out_fini_lines:
    sp_config_lines_fini(&lines);
    return rv;
}

int sp_config_load(const char *path, struct sp_config **ret_config, struct sp_config_errors *errors)
{
    size_t first = errors->count;
    char *data = NULL, *dir = NULL;
    size_t len = 0;
    int rv;

    rv = read_file(path, &data, &len);
    if (rv < 0) {
        sp_config_error_add(errors, path, 0, "", "cannot read the configuration: %s",
                            rv == -EFBIG ? "larger than 16 MiB" : strerror(-rv));
        return rv;
    }
    rv = config_dir(path, &dir);
    if (rv < 0) {
        sp_config_error_add(errors, path, 0, "", "cannot resolve the configuration's directory: %s",
                            strerror(-rv));
        goto out_free_data;
    }
    rv = load_data(path, dir, data, len, ret_config, errors);
    errors_sort(errors, first);
    free(dir);
out_free_data:
    free(data);
    return rv;
}
