/* config_tree.c: checks the libyaml node tree of a config against the key table below, before
 * libcyaml sees it. libcyaml stops at the first problem and cannot say on which line it is, so
 * everything that can be decided from one node alone is decided here, with its line: unknown and
 * duplicate keys, wrong types, missing required keys, out-of-range numbers, malformed values,
 * and rules between the keys of one mapping (a hash_key's name must suit its source).
 * The table must list the same keys as the libcyaml schema in config_schema.c. */
#include "config/config_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"

/* Longest timeout accepted: one day, so that converting to ns never overflows. */
#define MAX_TIMEOUT_MS UINT64_C(86400000)

enum node_kind {
    KIND_MAP,  /* mapping with the keys in `fields` */
    KIND_SEQ,  /* list of at least `min` entries shaped like `item` */
    KIND_UINT, /* decimal unsigned integer in [min, max] */
    KIND_BOOL, /* true/false (yes/no, on/off also accepted, any case) */
    KIND_ENUM, /* one of `choices` */
    KIND_STR,  /* any string that `check` accepts */
};

struct walk;

/* Checks rules between the keys of one mapping, after each key was checked on its own. */
typedef void (*map_check_fn)(struct walk *w, yaml_node_t *map);

struct spec {
    const char *key;            /* mapping key; NULL ends a list of fields */
    enum node_kind kind;        /* what the value must be */
    bool required;              /* a missing key is an error */
    uint64_t min;               /* KIND_UINT: lowest value; KIND_SEQ: fewest entries */
    uint64_t max;               /* KIND_UINT: highest value */
    const char *const *choices; /* KIND_ENUM: NULL-terminated accepted values */
    const struct spec *fields;  /* KIND_MAP: accepted keys, NULL-key terminated */
    const struct spec *item;    /* KIND_SEQ: shape of each entry */
    sp_config_check_fn check;   /* KIND_STR: optional check of the value */
    map_check_fn check_map;     /* KIND_MAP: optional check across its keys */
};

#define UINT_KEY(k, lo, hi)                                                                        \
    {                                                                                              \
        .key = k, .kind = KIND_UINT, .min = lo, .max = hi                                          \
    }
#define STR_KEY(k, req, fn)                                                                        \
    {                                                                                              \
        .key = k, .kind = KIND_STR, .required = req, .check = fn                                   \
    }

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const strategies[] = {
    "round_robin", "weighted_round_robin", "random", "least_conn", "p2c",
    "ewma",        "rendezvous",           NULL,
};
/* The same names, in the same order, as hash_source_rules below. */
static const char *const hash_sources[] = {
    "source_ip", "header", "cookie", "path", "authority", "query", "connection", NULL,
};
static const char *const protocols[] = {"h3", "h2", "h2c", "http1", NULL};

static const struct spec log_fields[] = {
    {.key = "level", .kind = KIND_ENUM, .choices = log_levels},
    {.key = "format", .kind = KIND_ENUM, .choices = log_formats},
    {.key = "access", .kind = KIND_BOOL},
    {.key = NULL},
};

static const struct spec listener_fields[] = {
    STR_KEY("address", true, sp_config_check_ip),
    {.key = "port", .kind = KIND_UINT, .required = true, .min = 1, .max = 65535},
    STR_KEY("cert", true, sp_config_check_file),
    STR_KEY("key", true, sp_config_check_file),
    UINT_KEY("alt_svc_max_age", 0, UINT32_MAX),
    {.key = NULL},
};

static const struct spec timeouts_fields[] = {
    UINT_KEY("connect_ms", 1, MAX_TIMEOUT_MS),     UINT_KEY("response_ms", 1, MAX_TIMEOUT_MS),
    UINT_KEY("client_idle_ms", 1, MAX_TIMEOUT_MS), UINT_KEY("backend_idle_ms", 1, MAX_TIMEOUT_MS),
    UINT_KEY("shutdown_ms", 1, MAX_TIMEOUT_MS),    UINT_KEY("body_idle_ms", 1, MAX_TIMEOUT_MS),
    UINT_KEY("request_ms", 0, MAX_TIMEOUT_MS),     UINT_KEY("try_ms", 1, MAX_TIMEOUT_MS),
    UINT_KEY("stall_warn_ms", 0, MAX_TIMEOUT_MS),  {.key = NULL},
};

/* An upstream's own timeouts: the keys it leaves out take the global values (config.c). */
static const struct spec upstream_timeouts_fields[] = {
    UINT_KEY("connect_ms", 1, MAX_TIMEOUT_MS),
    UINT_KEY("response_ms", 1, MAX_TIMEOUT_MS),
    UINT_KEY("body_idle_ms", 1, MAX_TIMEOUT_MS),
    UINT_KEY("request_ms", 0, MAX_TIMEOUT_MS),
    UINT_KEY("try_ms", 1, MAX_TIMEOUT_MS),
    UINT_KEY("stall_warn_ms", 0, MAX_TIMEOUT_MS),
    {.key = NULL},
};

/* connection_window_bytes >= stream_window_bytes is checked across keys in config_validate.c */
static const struct spec limits_fields[] = {
    UINT_KEY("max_header_bytes", 1024, 1048576),
    UINT_KEY("max_headers", 8, 1000),
    UINT_KEY("max_streams_per_connection", 1, 10000),
    UINT_KEY("max_body_bytes", 0, UINT64_MAX),
    UINT_KEY("stream_window_bytes", 16384, 16777216),
    UINT_KEY("connection_window_bytes", 16384, 1073741824),
    UINT_KEY("max_connections", 1, 1000000),
    {.key = NULL},
};

static const struct spec method_item = {.kind = KIND_STR, .check = sp_config_check_method};

static const struct spec route_fields[] = {
    STR_KEY("host", false, sp_config_check_host),
    STR_KEY("path_prefix", false, sp_config_check_path_prefix),
    {.key = "methods", .kind = KIND_SEQ, .min = 1, .item = &method_item},
    {.key = NULL},
};

static const struct spec backend_fields[] = {
    STR_KEY("id", true, sp_config_check_name),
    STR_KEY("address", true, sp_config_check_hostport),
    {.key = "protocol", .kind = KIND_ENUM, .choices = protocols},
    {.key = "tls", .kind = KIND_BOOL},
    UINT_KEY("weight", 1, 1000),
    {.key = NULL},
};

static const struct spec tls_fields[] = {
    STR_KEY("ca_file", false, sp_config_check_file),
    {.key = "verify", .kind = KIND_BOOL},
    STR_KEY("server_name", false, sp_config_check_server_name),
    STR_KEY("client_cert", false, sp_config_check_file),
    STR_KEY("client_key", false, sp_config_check_file),
    {.key = NULL},
};

static const struct spec pool_fields[] = {
    UINT_KEY("max_connections_per_backend", 1, 1024),
    UINT_KEY("max_streams_per_connection", 1, 10000),
    UINT_KEY("max_queue", 0, 1000000),
    UINT_KEY("idle_timeout_ms", 1, MAX_TIMEOUT_MS),
    UINT_KEY("keepalive_ms", 0, MAX_TIMEOUT_MS),
    UINT_KEY("dead_after_ms", 0, MAX_TIMEOUT_MS),
    {.key = NULL},
};

/* The order of paired keys (degrade below eject, max_* at least its base) depends on defaults,
 * so it is checked on the built config in config_validate.c. */
static const struct spec passive_health_fields[] = {
    UINT_KEY("eject_failures", 0, 1000),
    UINT_KEY("eject_5xx", 0, 1000),
    UINT_KEY("degrade_failures", 0, 1000),
    UINT_KEY("eject_ratio_pct", 0, 100),
    UINT_KEY("degrade_ratio_pct", 0, 100),
    UINT_KEY("min_requests", 1, 1000000),
    UINT_KEY("window_ms", 100, 3600000), /* one hour */
    UINT_KEY("degraded_weight_pct", 1, 100),
    UINT_KEY("recovery_ms", 1, 3600000),
    UINT_KEY("max_recovery_ms", 1, MAX_TIMEOUT_MS),
    UINT_KEY("panic_threshold_pct", 0, 100),
    {.key = NULL},
};

/* timeout_ms at most interval_ms depends on the default, so it is checked in config_validate.c */
static const struct spec health_check_fields[] = {
    STR_KEY("path", true, sp_config_check_probe_path),
    UINT_KEY("interval_ms", 100, 3600000), /* one hour */
    UINT_KEY("timeout_ms", 1, 3600000),
    STR_KEY("expected_status", false, sp_config_check_status_range),
    UINT_KEY("fall", 1, 100),
    UINT_KEY("rtt_degrade_factor", 0, 1000),
    UINT_KEY("rise", 1, 100),
    STR_KEY("host", false, sp_config_check_authority),
    {.key = NULL},
};

static const struct spec breaker_fields[] = {
    UINT_KEY("max_failures", 0, 1000),
    UINT_KEY("failure_ratio_pct", 0, 100),
    UINT_KEY("min_requests", 1, 1000000),
    UINT_KEY("window_ms", 100, 3600000),
    UINT_KEY("open_ms", 1, 3600000),
    UINT_KEY("max_open_ms", 1, MAX_TIMEOUT_MS),
    UINT_KEY("half_open_requests", 1, 1000),
    UINT_KEY("half_open_successes", 1, 1000),
    UINT_KEY("max_concurrent", 0, 1000000),
    UINT_KEY("max_pending", 0, 1000000),
    {.key = NULL},
};

static const struct spec retries_fields[] = {
    UINT_KEY("max", 0, 10),
    UINT_KEY("budget_pct", 0, 1000),
    UINT_KEY("min_retries", 0, 100000),
    UINT_KEY("backoff_ms", 0, 60000),
    UINT_KEY("max_backoff_ms", 0, 600000), /* ten minutes */
    UINT_KEY("replay_body_bytes", 0, 16777216),
    {.key = NULL},
};

static void check_hash_key(struct walk *w, yaml_node_t *map);
static void check_upstream(struct walk *w, yaml_node_t *map);

/* name, ipv4_prefix and ipv6_prefix depend on the source: see check_hash_key */
static const struct spec hash_key_fields[] = {
    {.key = "source", .kind = KIND_ENUM, .required = true, .choices = hash_sources},
    STR_KEY("name", false, NULL),
    UINT_KEY("ipv4_prefix", 1, 32),
    UINT_KEY("ipv6_prefix", 1, 128),
    {.key = NULL},
};

static const struct spec sticky_fields[] = {
    STR_KEY("name", false, sp_config_check_cookie_name),
    STR_KEY("secret", true, sp_config_check_secret),
    UINT_KEY("max_age", 0, 31536000), /* one year */
    {.key = NULL},
};

static const struct spec route_item = {.kind = KIND_MAP, .fields = route_fields};
static const struct spec backend_item = {.kind = KIND_MAP, .fields = backend_fields};

static const struct spec upstream_fields[] = {
    STR_KEY("name", true, sp_config_check_name),
    {.key = "strategy", .kind = KIND_ENUM, .choices = strategies},
    {.key = "hash_key", .kind = KIND_MAP, .fields = hash_key_fields, .check_map = check_hash_key},
    {.key = "sticky_cookie", .kind = KIND_MAP, .fields = sticky_fields},
    UINT_KEY("slow_start_ms", 0, 3600000), /* one hour */
    {.key = "passive_health", .kind = KIND_MAP, .fields = passive_health_fields},
    {.key = "health_check", .kind = KIND_MAP, .fields = health_check_fields},
    {.key = "breaker", .kind = KIND_MAP, .fields = breaker_fields},
    {.key = "retries", .kind = KIND_MAP, .fields = retries_fields},
    {.key = "routes", .kind = KIND_SEQ, .required = true, .min = 1, .item = &route_item},
    {.key = "backends", .kind = KIND_SEQ, .required = true, .min = 1, .item = &backend_item},
    {.key = "tls", .kind = KIND_MAP, .fields = tls_fields},
    {.key = "pool", .kind = KIND_MAP, .fields = pool_fields},
    {.key = "timeouts", .kind = KIND_MAP, .fields = upstream_timeouts_fields},
    {.key = NULL},
};

static const struct spec listener_item = {.kind = KIND_MAP, .fields = listener_fields};
static const struct spec upstream_item = {
    .kind = KIND_MAP, .fields = upstream_fields, .check_map = check_upstream};

static const struct spec root_fields[] = {
    UINT_KEY("workers", 0, 256),
    {.key = "log", .kind = KIND_MAP, .fields = log_fields},
    STR_KEY("default_upstream", false, sp_config_check_name), /* existence: config_validate.c */
    {.key = "listeners", .kind = KIND_SEQ, .required = true, .min = 1, .item = &listener_item},
    {.key = "timeouts", .kind = KIND_MAP, .fields = timeouts_fields},
    {.key = "limits", .kind = KIND_MAP, .fields = limits_fields},
    {.key = "upstreams", .kind = KIND_SEQ, .required = true, .min = 1, .item = &upstream_item},
    {.key = NULL},
};

static const struct spec root_spec = {.kind = KIND_MAP, .fields = root_fields};

/* State of one walk. The current dotted path grows and shrinks as the walk descends. */
struct walk {
    yaml_document_t *doc;            /* borrowed */
    const char *file;                /* borrowed; for errors */
    struct sp_config_check_ctx ctx;  /* passed to value checks */
    struct sp_config_errors *errors; /* borrowed; appended to */
    struct sp_config_lines *lines;   /* borrowed; appended to */
    char *path;                      /* owned; NUL-terminated current path */
    size_t path_len;                 /* strlen(path) */
    size_t path_cap;                 /* allocated bytes of path */
    bool failed;                     /* an error was added */
};

static void walk_node(struct walk *w, const struct spec *s, yaml_node_t *node);

static unsigned node_line(const yaml_node_t *node)
{
    return (unsigned)node->start_mark.line + 1;
}

/* Appends to the current path; returns the old length, to give back to path_pop. */
static size_t path_push(struct walk *w, const char *fmt_key, size_t index)
{
    size_t old = w->path_len;
    char *part = fmt_key != NULL ? sp_config_strf("%s%s", old > 0 ? "." : "", fmt_key)
                                 : sp_config_strf("[%zu]", index);
    size_t n = strlen(part);

    if (old + n + 1 > w->path_cap) {
        w->path_cap = (old + n + 1) * 2;
        w->path = sp_xrealloc(w->path, w->path_cap);
    }
    memcpy(w->path + old, part, n + 1);
    w->path_len = old + n;
    free(part);
    return old;
}

static void path_pop(struct walk *w, size_t old)
{
    w->path_len = old;
    w->path[old] = '\0';
}

static void record_line(struct walk *w, unsigned line)
{
    struct sp_config_lines *l = w->lines;

    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->items = sp_xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->count].path = sp_xstrdup(w->path);
    l->items[l->count].line = line;
    l->count++;
}

static void walk_error(struct walk *w, unsigned line, char *message)
{
    sp_config_error_add(w->errors, w->file, line, w->path, "%s", message);
    free(message);
    w->failed = true;
}

static const char *scalar_text(const yaml_node_t *node)
{
    return (const char *)node->data.scalar.value;
}

/* Describes a node for "expected X, got Y" messages. Returns an owned string. */
static char *describe(const yaml_node_t *node)
{
    char q[80];

    switch (node->type) {
    case YAML_MAPPING_NODE:
        return sp_config_strf("a mapping");
    case YAML_SEQUENCE_NODE:
        return sp_config_strf("a list");
    case YAML_SCALAR_NODE:
        return sp_config_strf("%s", sp_config_quote(q, sizeof(q), scalar_text(node)));
    case YAML_NO_NODE:
        break;
    }
    return sp_config_strf("nothing");
}

static void type_error(struct walk *w, const yaml_node_t *node, const char *expected)
{
    char *got = describe(node);

    walk_error(w, node_line(node), sp_config_strf("expected %s, got %s", expected, got));
    free(got);
}

static const struct spec *find_field(const struct spec *fields, const char *key)
{
    for (const struct spec *f = fields; f->key != NULL; f++) {
        if (strcmp(f->key, key) == 0)
            return f;
    }
    return NULL;
}

/* True when an earlier pair of the mapping, before `pair`, has the same key. */
static bool key_seen_before(struct walk *w, yaml_node_t *map, yaml_node_pair_t *pair,
                            const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < pair; p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);

        if (k != NULL && k->type == YAML_SCALAR_NODE && strcmp(scalar_text(k), key) == 0)
            return true;
    }
    return false;
}

static void walk_pair(struct walk *w, const struct spec *s, yaml_node_t *map,
                      yaml_node_pair_t *pair)
{
    yaml_node_t *key = yaml_document_get_node(w->doc, pair->key);
    yaml_node_t *value = yaml_document_get_node(w->doc, pair->value);
    const struct spec *field;
    size_t old;

    if (key == NULL || value == NULL)
        return; /* libyaml never builds such a pair */
    if (key->type != YAML_SCALAR_NODE) {
        type_error(w, key, "a key name");
        return;
    }
    old = path_push(w, scalar_text(key), 0);
    field = find_field(s->fields, scalar_text(key));
    if (field == NULL) {
        walk_error(w, node_line(key), sp_config_strf("unknown key"));
    } else if (key_seen_before(w, map, pair, scalar_text(key))) {
        walk_error(w, node_line(key), sp_config_strf("duplicate key"));
    } else {
        record_line(w, node_line(key));
        walk_node(w, field, value);
    }
    path_pop(w, old);
}

static bool map_has_key(struct walk *w, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);

        if (k != NULL && k->type == YAML_SCALAR_NODE && strcmp(scalar_text(k), key) == 0)
            return true;
    }
    return false;
}

static void walk_map(struct walk *w, const struct spec *s, yaml_node_t *node)
{
    if (node->type != YAML_MAPPING_NODE) {
        type_error(w, node, "a mapping");
        return;
    }
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++)
        walk_pair(w, s, node, p);
    for (const struct spec *f = s->fields; f->key != NULL; f++) {
        size_t old;

        if (!f->required || map_has_key(w, node, f->key))
            continue;
        old = path_push(w, f->key, 0);
        walk_error(w, node_line(node), sp_config_strf("required key missing"));
        path_pop(w, old);
    }
    if (s->check_map != NULL)
        s->check_map(w, node);
}

static void walk_seq(struct walk *w, const struct spec *s, yaml_node_t *node)
{
    yaml_node_item_t *start, *top;

    if (node->type != YAML_SEQUENCE_NODE) {
        type_error(w, node, "a list");
        return;
    }
    start = node->data.sequence.items.start;
    top = node->data.sequence.items.top;
    if ((uint64_t)(top - start) < s->min) {
        walk_error(w, node_line(node),
                   sp_config_strf("must have at least %llu entr%s", (unsigned long long)s->min,
                                  s->min == 1 ? "y" : "ies"));
        return;
    }
    for (yaml_node_item_t *it = start; it < top; it++) {
        yaml_node_t *item = yaml_document_get_node(w->doc, *it);
        size_t old = path_push(w, NULL, (size_t)(it - start));

        if (item != NULL) {
            record_line(w, node_line(item));
            walk_node(w, s->item, item);
        }
        path_pop(w, old);
    }
}

/* Parses a plain decimal number: no sign, no leading zeros, no 0x (libcyaml would read those
 * as hex or octal, which nobody means in a config). Returns 0, -EINVAL or -ERANGE. */
static int parse_decimal(const char *s, uint64_t *ret_value)
{
    uint64_t v = 0;

    if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
        return -EINVAL;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return -ERANGE;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *ret_value = v;
    return 0;
}

static void range_error(struct walk *w, const struct spec *s, yaml_node_t *node)
{
    const char *v = scalar_text(node);

    if (s->max == UINT64_MAX)
        walk_error(w, node_line(node),
                   sp_config_strf("must be at least %llu, got %s", (unsigned long long)s->min, v));
    else
        walk_error(w, node_line(node),
                   sp_config_strf("must be between %llu and %llu, got %s",
                                  (unsigned long long)s->min, (unsigned long long)s->max, v));
}

static void check_uint(struct walk *w, const struct spec *s, yaml_node_t *node)
{
    uint64_t v = 0;
    int rv = parse_decimal(scalar_text(node), &v);

    if (rv == -EINVAL)
        type_error(w, node, "an unsigned integer");
    else if (rv == -ERANGE || v < s->min || v > s->max)
        range_error(w, s, node);
}

static void check_bool(struct walk *w, yaml_node_t *node)
{
    static const char *const accepted[] = {"true", "false", "yes", "no", "on", "off"};
    const char *v = scalar_text(node);

    for (size_t i = 0; i < SP_ARRAY_LEN(accepted); i++) {
        if (strcasecmp(v, accepted[i]) == 0)
            return;
    }
    type_error(w, node, "true or false");
}

static void check_enum(struct walk *w, const struct spec *s, yaml_node_t *node)
{
    const char *v = scalar_text(node);
    char *list = NULL;
    char q[80];

    for (const char *const *c = s->choices; *c != NULL; c++) {
        if (strcmp(v, *c) == 0)
            return;
    }
    for (const char *const *c = s->choices; *c != NULL; c++) {
        char *next = list == NULL ? sp_config_strf("%s", *c) : sp_config_strf("%s, %s", list, *c);

        free(list);
        list = next;
    }
    walk_error(w, node_line(node),
               sp_config_strf("unknown value %s: expected %s%s", sp_config_quote(q, sizeof(q), v),
                              s->choices[1] != NULL ? "one of " : "", list));
    free(list);
}

/* True for an empty or null plain scalar such as `key:` or `key: ~`. */
static bool is_null(const yaml_node_t *node)
{
    const char *v = scalar_text(node);

    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static void walk_scalar(struct walk *w, const struct spec *s, yaml_node_t *node)
{
    static const char *const expected[] = {
        [KIND_UINT] = "an unsigned integer",
        [KIND_BOOL] = "true or false",
        [KIND_ENUM] = "a string",
        [KIND_STR] = "a string",
    };
    char *msg;

    if (node->type != YAML_SCALAR_NODE) {
        type_error(w, node, expected[s->kind]);
        return;
    }
    if (is_null(node)) {
        walk_error(w, node_line(node), sp_config_strf("missing value"));
        return;
    }
    if (strlen(scalar_text(node)) != node->data.scalar.length) {
        walk_error(w, node_line(node), sp_config_strf("must not contain NUL bytes"));
        return;
    }
    switch (s->kind) {
    case KIND_UINT:
        check_uint(w, s, node);
        break;
    case KIND_BOOL:
        check_bool(w, node);
        break;
    case KIND_ENUM:
        check_enum(w, s, node);
        break;
    case KIND_STR:
        msg = s->check != NULL ? s->check(&w->ctx, scalar_text(node)) : NULL;
        if (msg != NULL)
            walk_error(w, node_line(node), msg);
        break;
    case KIND_MAP:
    case KIND_SEQ:
        break; /* not scalars: walk_node never sends them here */
    }
}

static void walk_node(struct walk *w, const struct spec *s, yaml_node_t *node)
{
    switch (s->kind) {
    case KIND_MAP:
        walk_map(w, s, node);
        break;
    case KIND_SEQ:
        walk_seq(w, s, node);
        break;
    case KIND_UINT:
    case KIND_BOOL:
    case KIND_ENUM:
    case KIND_STR:
        walk_scalar(w, s, node);
        break;
    }
}

/* ---- rules between the keys of one mapping (spec.check_map) ----
 * These run after every key of the mapping was checked on its own, and stay silent about a value
 * that already failed there, so that one mistake gives one error. */

/* Finds `key` in a mapping: returns its value node and, when ret_key is not NULL, its key node
 * in *ret_key; NULL when absent. The first occurrence wins (a repeat is already an error). */
static yaml_node_t *map_get(struct walk *w, yaml_node_t *map, const char *key,
                            yaml_node_t **ret_key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);

        if (k == NULL || k->type != YAML_SCALAR_NODE || strcmp(scalar_text(k), key) != 0)
            continue;
        if (ret_key != NULL)
            *ret_key = k;
        return yaml_document_get_node(w->doc, p->value);
    }
    return NULL;
}

/* True for a scalar that passed walk_scalar's generic checks (not null, no NUL bytes). */
static bool usable_scalar(const yaml_node_t *node)
{
    return node != NULL && node->type == YAML_SCALAR_NODE && !is_null(node) &&
           strlen(scalar_text(node)) == node->data.scalar.length;
}

/* Adds an error about `key`, a key of the mapping at the current path. Takes `message`. */
static void key_error(struct walk *w, const char *key, unsigned line, char *message)
{
    size_t old = path_push(w, key, 0);

    walk_error(w, line, message);
    path_pop(w, old);
}

/* What each hash_key source takes besides itself, in the order of hash_sources. */
struct hash_source_rule {
    const char *source;            /* as written in the config */
    const char *name_of;           /* what `name` names; NULL: the source takes no name */
    sp_config_check_fn check_name; /* check of `name`; set exactly when name_of is */
};

static const struct hash_source_rule hash_source_rules[] = {
    {"source_ip", NULL, NULL},
    {"header", "header", sp_config_check_header_name},
    {"cookie", "cookie", sp_config_check_cookie_name},
    {"path", NULL, NULL},
    {"authority", NULL, NULL},
    {"query", "query parameter", sp_config_check_query_name},
    {"connection", NULL, NULL},
};

static const struct hash_source_rule *find_hash_source(const yaml_node_t *node)
{
    if (!usable_scalar(node))
        return NULL;
    for (size_t i = 0; i < SP_ARRAY_LEN(hash_source_rules); i++) {
        if (strcmp(hash_source_rules[i].source, scalar_text(node)) == 0)
            return &hash_source_rules[i];
    }
    return NULL;
}

/* hash_key.name is required by the sources that look something up by name and refused by the
 * others; prefixes only apply to source_ip. */
static void check_hash_key(struct walk *w, yaml_node_t *map)
{
    static const char *const prefixes[] = {"ipv4_prefix", "ipv6_prefix"};
    const struct hash_source_rule *rule = find_hash_source(map_get(w, map, "source", NULL));
    yaml_node_t *key = NULL;
    yaml_node_t *name = map_get(w, map, "name", &key);
    char *msg;

    if (rule == NULL)
        return; /* missing or unknown source: already reported */
    if (rule->name_of != NULL && name == NULL)
        key_error(w, "name", node_line(map),
                  sp_config_strf("required key missing: source %s needs the name of the %s",
                                 rule->source, rule->name_of));
    if (rule->name_of == NULL && name != NULL)
        key_error(w, "name", node_line(key),
                  sp_config_strf("not allowed with source %s: only header, cookie and query "
                                 "take a name",
                                 rule->source));
    if (rule->check_name != NULL && usable_scalar(name)) {
        msg = rule->check_name(&w->ctx, scalar_text(name));
        if (msg != NULL)
            key_error(w, "name", node_line(name), msg);
    }
    for (size_t i = 0; i < SP_ARRAY_LEN(prefixes); i++) {
        if (strcmp(rule->source, "source_ip") == 0 || map_get(w, map, prefixes[i], &key) == NULL)
            continue;
        key_error(w, prefixes[i], node_line(key),
                  sp_config_strf("not allowed with source %s: only source_ip takes a prefix",
                                 rule->source));
    }
}

/* Rendezvous hashing has nothing to hash without a key, and only rendezvous hashes: a hash_key
 * under another strategy would be a setting that does nothing. */
static void check_upstream(struct walk *w, yaml_node_t *map)
{
    yaml_node_t *strategy = map_get(w, map, "strategy", NULL);
    yaml_node_t *hash_key_key = NULL;
    yaml_node_t *hash_key = map_get(w, map, "hash_key", &hash_key_key);
    bool rendezvous = usable_scalar(strategy) && strcmp(scalar_text(strategy), "rendezvous") == 0;

    if (rendezvous && hash_key == NULL)
        key_error(w, "strategy", node_line(strategy),
                  sp_config_strf("strategy rendezvous needs hash_key"));
    if (!rendezvous && hash_key != NULL && (strategy == NULL || usable_scalar(strategy)))
        key_error(w, "hash_key", node_line(hash_key_key),
                  sp_config_strf("only strategy rendezvous uses hash_key (strategy is %s)",
                                 strategy != NULL ? scalar_text(strategy) : "round_robin"));
}

int sp_config_tree_check(yaml_document_t *doc, const char *file, const char *dir,
                         struct sp_config_errors *errors, struct sp_config_lines *lines)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    struct walk w = {
        .doc = doc,
        .file = file,
        .ctx = {.dir = dir},
        .errors = errors,
        .lines = lines,
        .path = sp_xstrdup(""),
        .path_len = 0,
        .path_cap = 1,
    };

    if (root == NULL) {
        sp_config_error_add(errors, file, 0, "", "the configuration is empty");
        free(w.path);
        return -EINVAL;
    }
    record_line(&w, node_line(root));
    if (root->type != YAML_MAPPING_NODE) {
        char *got = describe(root);

        sp_config_error_add(errors, file, node_line(root), "",
                            "the configuration must be a mapping of keys, got %s", got);
        free(got);
        free(w.path);
        return -EINVAL;
    }
    walk_node(&w, &root_spec, root);
    free(w.path);
    return w.failed ? -EINVAL : 0;
}

unsigned sp_config_lines_find(const struct sp_config_lines *lines, const char *path)
{
    for (size_t i = 0; i < lines->count; i++) {
        if (strcmp(lines->items[i].path, path) == 0)
            return lines->items[i].line;
    }
    return 0;
}

void sp_config_lines_fini(struct sp_config_lines *lines)
{
    for (size_t i = 0; i < lines->count; i++) {
        free(lines->items[i].path);
        lines->items[i].path = NULL;
    }
    free(lines->items);
    lines->items = NULL;
    lines->count = 0;
    lines->cap = 0;
}
