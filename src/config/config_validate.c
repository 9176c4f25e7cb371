/* config_validate.c: checks of single values (addresses, names, hosts, files, header and cookie
 * names, secrets) used by the tree walk, and the checks across entries of a built config
 * (duplicates, ambiguous routes, references to upstreams, the order of paired settings). */
#include "config/config_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"

char *sp_config_quote(char *out, size_t cap, const char *s)
{
    static const size_t room = 8; /* closing quote, "..." and NUL always fit */
    size_t o = 0;

    if (cap < room + 8) {
        out[0] = '\0';
        return out;
    }
    out[o++] = '"';
    for (const char *p = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;

        if (o + 4 + room > cap) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

int sp_config_parse_ip(const char *ip, uint16_t port, struct sockaddr_storage *ss,
                       socklen_t *ret_len)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        *ret_len = sizeof(*sin);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        *ret_len = sizeof(*sin6);
        return 0;
    }
    return -EINVAL;
}

/* Parses a decimal port 1..65535. Returns 0, -EINVAL (not a number) or -ERANGE. */
static int parse_port(const char *s, uint16_t *ret_port)
{
    unsigned long v = 0;
    size_t n = strlen(s);

    if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned long)(s[i] - '0');
    if (v < 1 || v > 65535)
        return -ERANGE;
    *ret_port = (uint16_t)v;
    return 0;
}

/* Like sp_config_parse_hostport, but tells a bad port (-ERANGE) from a bad shape (-EINVAL). */
static int parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *ret_len)
{
    const char *colon;
    char *host;
    uint16_t port = 0;
    int rv;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');

        if (end == NULL || end[1] != ':')
            return -EINVAL;
        host = sp_xstrndup(s + 1, (size_t)(end - s - 1));
        colon = end + 1;
        if (strchr(host, ':') == NULL) { /* brackets are for IPv6 only */
            free(host);
            return -EINVAL;
        }
    } else {
        colon = strchr(s, ':');
        if (colon == NULL || strchr(colon + 1, ':') != NULL)
            return -EINVAL; /* no port, or an IPv6 address without brackets */
        host = sp_xstrndup(s, (size_t)(colon - s));
    }
    rv = parse_port(colon + 1, &port);
    if (rv == 0)
        rv = sp_config_parse_ip(host, port, ss, ret_len);
    free(host);
    return rv;
}

int sp_config_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *ret_len)
{
    return parse_hostport(s, ss, ret_len) == 0 ? 0 : -EINVAL;
}

char *sp_config_check_ip(const struct sp_config_check_ctx *ctx, const char *value)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char q[96];

    (void)ctx;
    if (sp_config_parse_ip(value, 0, &ss, &len) == 0)
        return NULL;
    return sp_config_strf("invalid address %s: expected a literal IPv4 or IPv6 address "
                          "(host names are not resolved, no brackets, no port)",
                          sp_config_quote(q, sizeof(q), value));
}

char *sp_config_check_hostport(const struct sp_config_check_ctx *ctx, const char *value)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char q[96];
    int rv;

    (void)ctx;
    rv = parse_hostport(value, &ss, &len);
    if (rv == 0)
        return NULL;
    if (rv == -ERANGE)
        return sp_config_strf("invalid address %s: port must be between 1 and 65535",
                              sp_config_quote(q, sizeof(q), value));
    return sp_config_strf("invalid address %s: expected IPv4:port or [IPv6]:port",
                          sp_config_quote(q, sizeof(q), value));
}

char *sp_config_path_resolve(const char *dir, const char *name)
{
    if (name[0] == '/')
        return sp_xstrdup(name);
    return sp_config_strf("%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", name);
}

char *sp_config_check_file(const struct sp_config_check_ctx *ctx, const char *value)
{
    char *path, *where, *msg = NULL;
    char q[256];
    struct stat st;
    int fd;

    if (value[0] == '\0')
        return sp_config_strf("must not be empty");
    path = sp_config_path_resolve(ctx->dir, value);
    where = value[0] == '/'
                ? sp_config_strf("%s", sp_config_quote(q, sizeof(q), value))
                : sp_config_strf("%s (resolved to %s)", sp_config_quote(q, sizeof(q), value), path);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd == -1) {
        msg = sp_config_strf("cannot read %s: %s", where, strerror(errno));
        goto out_free_where;
    }
    if (fstat(fd, &st) == -1)
        msg = sp_config_strf("cannot read %s: %s", where, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        msg = sp_config_strf("%s is not a regular file", where);
    (void)close(fd);
out_free_where:
    free(where);
    free(path);
    return msg;
}

char *sp_config_check_name(const struct sp_config_check_ctx *ctx, const char *value)
{
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789_.-";
    char q[96];

    (void)ctx;
    if (value[0] != '\0' && value[strspn(value, allowed)] == '\0')
        return NULL;
    return sp_config_strf("invalid name %s: use only letters, digits, \"_\", \".\" and \"-\"",
                          sp_config_quote(q, sizeof(q), value));
}

/* True for a DNS-style name: dot-separated labels of letters, digits and "-". */
static bool is_dns_name(const char *s)
{
    static const char label_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789-";
    size_t n = strlen(s);

    if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.' || strstr(s, "..") != NULL)
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p != '.' && strchr(label_chars, *p) == NULL)
            return false;
    }
    return true;
}

static bool is_bracketed_ipv6(const char *s)
{
    struct in6_addr a;
    size_t n = strlen(s);
    char *inner;
    bool ok;

    if (n < 3 || s[0] != '[' || s[n - 1] != ']')
        return false;
    inner = sp_xstrndup(s + 1, n - 2);
    ok = inet_pton(AF_INET6, inner, &a) == 1;
    free(inner);
    return ok;
}

char *sp_config_check_host(const struct sp_config_check_ctx *ctx, const char *value)
{
    const char *name = strncmp(value, "*.", 2) == 0 ? value + 2 : value;
    char q[96];

    (void)ctx;
    if (strcmp(value, "*") == 0 || is_dns_name(name) || is_bracketed_ipv6(value))
        return NULL;
    if (strchr(value, ':') != NULL && value[0] != '[')
        return sp_config_strf("invalid host %s: must not include a port",
                              sp_config_quote(q, sizeof(q), value));
    return sp_config_strf("invalid host %s: expected a host name like \"api.example.com\" or a "
                          "wildcard like \"*.example.com\"",
                          sp_config_quote(q, sizeof(q), value));
}

char *sp_config_check_path_prefix(const struct sp_config_check_ctx *ctx, const char *value)
{
    char q[96];

    (void)ctx;
    if (value[0] != '/')
        return sp_config_strf("must start with \"/\", got %s",
                              sp_config_quote(q, sizeof(q), value));
    for (const char *p = value; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;

        if (c <= 0x20 || c == 0x7f || c == '?' || c == '#')
            return sp_config_strf("invalid path prefix %s: spaces, control characters, \"?\" "
                                  "and \"#\" are not allowed",
                                  sp_config_quote(q, sizeof(q), value));
    }
    return NULL;
}

char *sp_config_check_method(const struct sp_config_check_ctx *ctx, const char *value)
{
    /* RFC 9110 §9.1: a method is a token; we also require upper case, as all standard ones are */
    static const char tchar_upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~";
    char q[96];

    (void)ctx;
    if (value[0] != '\0' && value[strspn(value, tchar_upper)] == '\0')
        return NULL;
    return sp_config_strf("invalid method %s: expected an upper-case token like GET or POST",
                          sp_config_quote(q, sizeof(q), value));
}

char *sp_config_check_server_name(const struct sp_config_check_ctx *ctx, const char *value)
{
    char q[96];

    (void)ctx;
    if (is_dns_name(value))
        return NULL;
    return sp_config_strf("invalid server name %s: expected a DNS name like \"backend.internal\"",
                          sp_config_quote(q, sizeof(q), value));
}

char *sp_config_check_probe_path(const struct sp_config_check_ctx *ctx, const char *value)
{
    char q[96];

    (void)ctx;
    if (value[0] != '/')
        return sp_config_strf("must start with \"/\", got %s",
                              sp_config_quote(q, sizeof(q), value));
    for (const char *p = value; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;

        /* RFC 9110 §4.1: an origin-form target; no fragment */
        if (c <= 0x20 || c == 0x7f || c == '#')
            return sp_config_strf("invalid path %s: spaces, control characters and \"#\" are "
                                  "not allowed",
                                  sp_config_quote(q, sizeof(q), value));
    }
    return NULL;
}

/* Parses 3 digits at *s within 100..599 and advances *s. */
static bool parse_status(const char **s, unsigned *ret)
{
    const char *p = *s;

    if (p[0] < '1' || p[0] > '5' || p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9')
        return false;
    *ret = (unsigned)(p[0] - '0') * 100 + (unsigned)(p[1] - '0') * 10 + (unsigned)(p[2] - '0');
    *s = p + 3;
    return true;
}

int sp_config_parse_status_range(const char *s, unsigned *ret_min, unsigned *ret_max)
{
    unsigned lo, hi;

    if (!parse_status(&s, &lo))
        return -EINVAL;
    hi = lo;
    if (*s == '-') {
        s++;
        if (!parse_status(&s, &hi))
            return -EINVAL;
    }
    if (*s != '\0' || hi < lo)
        return -EINVAL;
    *ret_min = lo;
    *ret_max = hi;
    return 0;
}

char *sp_config_check_status_range(const struct sp_config_check_ctx *ctx, const char *value)
{
    unsigned lo, hi;
    char q[96];

    (void)ctx;
    if (sp_config_parse_status_range(value, &lo, &hi) == 0)
        return NULL;
    return sp_config_strf("invalid status range %s: expected a status like \"200\" or a range "
                          "like \"200-399\" within 100..599",
                          sp_config_quote(q, sizeof(q), value));
}

/* RFC 3986 §3.2: host[:port]; we accept a DNS name or IP literal, optionally with a port. */
char *sp_config_check_authority(const struct sp_config_check_ctx *ctx, const char *value)
{
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789-._:[]";
    char q[96];

    (void)ctx;
    if (value[0] != '\0' && value[strspn(value, allowed)] == '\0' && value[0] != ':')
        return NULL;
    return sp_config_strf("invalid host %s: expected a host name, optionally with a port, like "
                          "\"backend.internal:8443\"",
                          sp_config_quote(q, sizeof(q), value));
}

/* RFC 9110 §5.6.2: a token is letters, digits and these; RFC 6265 §4.1.1 cookie-name is the
 * same set (RFC 2616 token) */
static const char tchar_symbols[] = "!#$%&'*+-.^_`|~";

static bool is_token(const char *s)
{
    if (s[0] == '\0')
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        char c = *p;
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

        if (!alnum && strchr(tchar_symbols, c) == NULL)
            return false;
    }
    return true;
}

char *sp_config_check_header_name(const struct sp_config_check_ctx *ctx, const char *value)
{
    char q[96];

    (void)ctx;
    if (is_token(value))
        return NULL;
    return sp_config_strf("invalid header name %s: use only letters, digits and %s (RFC 9110 "
                          "token)",
                          sp_config_quote(q, sizeof(q), value), tchar_symbols);
}

char *sp_config_check_cookie_name(const struct sp_config_check_ctx *ctx, const char *value)
{
    char q[96];

    (void)ctx;
    if (is_token(value))
        return NULL;
    return sp_config_strf("invalid cookie name %s: use only letters, digits and %s (RFC 6265 "
                          "token)",
                          sp_config_quote(q, sizeof(q), value), tchar_symbols);
}

char *sp_config_check_query_name(const struct sp_config_check_ctx *ctx, const char *value)
{
    char q[96];

    (void)ctx;
    if (value[0] != '\0') {
        const char *p = value;

        /* "&" and "=" delimit parameters and "#" ends the query, so no raw query could contain
         * a name with them; neither can it contain spaces or control characters */
        for (; *p != '\0'; p++) {
            unsigned char c = (unsigned char)*p;

            if (c <= 0x20 || c == 0x7f || c == '&' || c == '=' || c == '#')
                break;
        }
        if (*p == '\0')
            return NULL;
    }
    return sp_config_strf("invalid query parameter name %s: must not be empty or contain \"&\", "
                          "\"=\", \"#\", spaces or control characters",
                          sp_config_quote(q, sizeof(q), value));
}

char *sp_config_check_secret(const struct sp_config_check_ctx *ctx, const char *value)
{
    size_t n = strlen(value);

    (void)ctx;
    if (n >= SP_CONFIG_SECRET_MIN_BYTES)
        return NULL;
    /* never echo a secret, not even a bad one */
    return sp_config_strf("must be at least %d bytes long, got %zu", SP_CONFIG_SECRET_MIN_BYTES, n);
}

/* ---- checks across entries ---- */

/* Adds an error for `key`, taking its line from the path map. */
static void cross_error(struct sp_config_errors *errors, const struct sp_config *config,
                        const struct sp_config_lines *lines, const char *key, char *message)
{
    sp_config_error_add(errors, config->path, sp_config_lines_find(lines, key), key, "%s", message);
    free(message);
}

static bool same_sockaddr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)a;
    const struct sockaddr_in *b4 = (const struct sockaddr_in *)b;
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
    const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)b;

    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
    return a6->sin6_port == b6->sin6_port &&
           memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) == 0;
}

static int check_listeners(const struct sp_config *c, const struct sp_config_lines *lines,
                           struct sp_config_errors *errors)
{
    int rv = 0;

    for (size_t j = 1; j < c->listeners_count; j++) {
        const struct sp_listener_conf *l = &c->listeners[j];

        for (size_t i = 0; i < j; i++) {
            char *key;

            if (!same_sockaddr(&c->listeners[i].addr, &l->addr))
                continue;
            key = sp_config_strf("listeners[%zu]", j);
            cross_error(errors, c, lines, key,
                        sp_config_strf("duplicate listener %s port %u (also listeners[%zu])",
                                       l->address, (unsigned)l->port, i));
            free(key);
            rv = -EINVAL;
            break;
        }
    }
    return rv;
}

static int check_upstream_names(const struct sp_config *c, const struct sp_config_lines *lines,
                                struct sp_config_errors *errors)
{
    int rv = 0;

    for (size_t j = 1; j < c->upstreams_count; j++) {
        for (size_t i = 0; i < j; i++) {
            char *key;

            if (strcmp(c->upstreams[i].name, c->upstreams[j].name) != 0)
                continue;
            key = sp_config_strf("upstreams[%zu].name", j);
            cross_error(errors, c, lines, key,
                        sp_config_strf("duplicate upstream name \"%s\" (also upstreams[%zu].name)",
                                       c->upstreams[j].name, i));
            free(key);
            rv = -EINVAL;
            break;
        }
    }
    return rv;
}

/* Looks for backend id `id` among the backends that come before upstreams[uj].backends[bj]. */
static bool find_earlier_backend(const struct sp_config *c, size_t uj, size_t bj, const char *id,
                                 size_t *ret_u, size_t *ret_b)
{
    for (size_t u = 0; u <= uj; u++) {
        size_t end = u == uj ? bj : c->upstreams[u].backends_count;

        for (size_t b = 0; b < end; b++) {
            if (strcmp(c->upstreams[u].backends[b].id, id) == 0) {
                *ret_u = u;
                *ret_b = b;
                return true;
            }
        }
    }
    return false;
}

static int check_backend_ids(const struct sp_config *c, const struct sp_config_lines *lines,
                             struct sp_config_errors *errors)
{
    int rv = 0;

    for (size_t u = 0; u < c->upstreams_count; u++) {
        for (size_t b = 0; b < c->upstreams[u].backends_count; b++) {
            const char *id = c->upstreams[u].backends[b].id;
            size_t pu, pb;
            char *key;

            if (!find_earlier_backend(c, u, b, id, &pu, &pb))
                continue;
            key = sp_config_strf("upstreams[%zu].backends[%zu].id", u, b);
            cross_error(errors, c, lines, key,
                        sp_config_strf("duplicate backend id \"%s\" (also "
                                       "upstreams[%zu].backends[%zu].id)",
                                       id, pu, pb));
            free(key);
            rv = -EINVAL;
        }
    }
    return rv;
}

static int check_methods(const struct sp_config *c, const struct sp_config_lines *lines,
                         struct sp_config_errors *errors)
{
    int rv = 0;

    for (size_t u = 0; u < c->upstreams_count; u++) {
        for (size_t r = 0; r < c->upstreams[u].routes_count; r++) {
            const struct sp_route_conf *route = &c->upstreams[u].routes[r];

            for (size_t j = 1; j < route->methods_count; j++) {
                for (size_t i = 0; i < j; i++) {
                    char *key;

                    if (strcmp(route->methods[i], route->methods[j]) != 0)
                        continue;
                    key = sp_config_strf("upstreams[%zu].routes[%zu].methods[%zu]", u, r, j);
                    cross_error(errors, c, lines, key,
                                sp_config_strf("duplicate method \"%s\"", route->methods[j]));
                    free(key);
                    rv = -EINVAL;
                    break;
                }
            }
        }
    }
    return rv;
}

/* Returns the first method both routes accept, "" when both accept any, or NULL for none. */
static const char *common_method(const struct sp_route_conf *a, const struct sp_route_conf *b)
{
    if (a->methods_count == 0 && b->methods_count == 0)
        return "";
    if (a->methods_count == 0)
        return b->methods[0];
    if (b->methods_count == 0)
        return a->methods[0];
    for (size_t i = 0; i < a->methods_count; i++) {
        for (size_t j = 0; j < b->methods_count; j++) {
            if (strcmp(a->methods[i], b->methods[j]) == 0)
                return a->methods[i];
        }
    }
    return NULL;
}

/* Returns the method on which two routes collide, or NULL when a request can tell them apart. */
static const char *route_clash(const struct sp_route_conf *a, const struct sp_route_conf *b)
{
    if ((a->host == NULL) != (b->host == NULL))
        return NULL;
    if (a->host != NULL && strcmp(a->host, b->host) != 0)
        return NULL;
    if (strcmp(a->path_prefix, b->path_prefix) != 0)
        return NULL;
    return common_method(a, b);
}

static void route_error(const struct sp_config *c, const struct sp_config_lines *lines,
                        struct sp_config_errors *errors, const size_t at[2], const size_t prev[2],
                        const char *method)
{
    const struct sp_route_conf *r = &c->upstreams[at[0]].routes[at[1]];
    char *key = sp_config_strf("upstreams[%zu].routes[%zu]", at[0], at[1]);
    char *tail = sp_config_strf("%s%s", method[0] != '\0' ? " for method " : "", method);

    cross_error(errors, c, lines, key,
                sp_config_strf("route host=\"%s\" path_prefix=\"%s\" duplicates "
                               "upstreams[%zu].routes[%zu]%s",
                               r->host != NULL ? r->host : "*", r->path_prefix, prev[0], prev[1],
                               tail));
    free(tail);
    free(key);
}

/* Reports upstreams[at].routes[at] if it clashes with any route before it. */
static int check_route(const struct sp_config *c, const struct sp_config_lines *lines,
                       struct sp_config_errors *errors, const size_t at[2])
{
    const struct sp_route_conf *r = &c->upstreams[at[0]].routes[at[1]];

    for (size_t u = 0; u <= at[0]; u++) {
        size_t end = u == at[0] ? at[1] : c->upstreams[u].routes_count;

        for (size_t i = 0; i < end; i++) {
            const char *method = route_clash(&c->upstreams[u].routes[i], r);
            const size_t prev[2] = {u, i};

            if (method == NULL)
                continue;
            route_error(c, lines, errors, at, prev, method);
            return -EINVAL;
        }
    }
    return 0;
}

static int check_routes(const struct sp_config *c, const struct sp_config_lines *lines,
                        struct sp_config_errors *errors)
{
    int rv = 0;

    for (size_t u = 0; u < c->upstreams_count; u++) {
        for (size_t r = 0; r < c->upstreams[u].routes_count; r++) {
            const size_t at[2] = {u, r};

            if (check_route(c, lines, errors, at) < 0)
                rv = -EINVAL;
        }
    }
    return rv;
}

static int check_windows(const struct sp_config *c, const struct sp_config_lines *lines,
                         struct sp_config_errors *errors)
{
    const struct sp_limits_conf *l = &c->limits;

    if (l->connection_window_bytes >= l->stream_window_bytes)
        return 0;
    if (sp_config_lines_find(lines, "limits.connection_window_bytes") != 0)
        cross_error(errors, c, lines, "limits.connection_window_bytes",
                    sp_config_strf("must be at least limits.stream_window_bytes (%llu), got %llu",
                                   (unsigned long long)l->stream_window_bytes,
                                   (unsigned long long)l->connection_window_bytes));
    else
        cross_error(errors, c, lines, "limits.stream_window_bytes",
                    sp_config_strf("must be at most limits.connection_window_bytes (%llu, the "
                                   "default), got %llu",
                                   (unsigned long long)l->connection_window_bytes,
                                   (unsigned long long)l->stream_window_bytes));
    return -EINVAL;
}

/* Returns why `tls` contradicts the backend's protocol, or NULL when it does not. */
static const char *tls_clash(const struct sp_backend_conf *b)
{
    switch (b->protocol) {
    case SP_BACKEND_PROTO_H3:
        return b->tls ? NULL : "HTTP/3 always runs over TLS";
    case SP_BACKEND_PROTO_H2:
        return b->tls ? NULL : "use protocol h2c for cleartext HTTP/2";
    case SP_BACKEND_PROTO_H2C:
        return b->tls ? "h2c is cleartext HTTP/2; use protocol h2 for HTTP/2 over TLS" : NULL;
    case SP_BACKEND_PROTO_HTTP1:
        return NULL;
    }
    return NULL;
}

/* A backend's `tls` must agree with its protocol (h3/h2: TLS; h2c: cleartext). A contradiction
 * can only come from an explicit `tls` key, since the default follows the protocol. */
static int check_backend_tls(const struct sp_config *c, const struct sp_config_lines *lines,
                             struct sp_config_errors *errors)
{
    int rv = 0;

    for (size_t u = 0; u < c->upstreams_count; u++) {
        for (size_t b = 0; b < c->upstreams[u].backends_count; b++) {
            const struct sp_backend_conf *be = &c->upstreams[u].backends[b];
            const char *why = tls_clash(be);
            char *key;

            if (why == NULL)
                continue;
            key = sp_config_strf("upstreams[%zu].backends[%zu].tls", u, b);
            cross_error(errors, c, lines, key,
                        sp_config_strf("tls: %s is not possible with protocol %s: %s",
                                       be->tls ? "true" : "false",
                                       sp_config_backend_protos[be->protocol], why));
            free(key);
            rv = -EINVAL;
        }
    }
    return rv;
}

/* client_cert and client_key come as a pair (mTLS to backends). */
static int check_client_cert(const struct sp_config *c, const struct sp_config_lines *lines,
                             struct sp_config_errors *errors)
{
    int rv = 0;

    for (size_t u = 0; u < c->upstreams_count; u++) {
        const struct sp_upstream_tls_conf *t = &c->upstreams[u].tls;
        bool has_cert = t->client_cert_file != NULL, has_key = t->client_key_file != NULL;
        char *key;

        if (has_cert == has_key)
            continue;
        key = sp_config_strf("upstreams[%zu].tls.%s", u, has_cert ? "client_cert" : "client_key");
        cross_error(errors, c, lines, key,
                    sp_config_strf("%s needs %s too (a client certificate and its key go "
                                   "together)",
                                   has_cert ? "client_cert" : "client_key",
                                   has_cert ? "client_key" : "client_cert"));
        free(key);
        rv = -EINVAL;
    }
    return rv;
}

static int check_default_upstream(const struct sp_config *c, const struct sp_config_lines *lines,
                                  struct sp_config_errors *errors)
{
    if (c->default_upstream == NULL)
        return 0;
    for (size_t u = 0; u < c->upstreams_count; u++) {
        if (strcmp(c->upstreams[u].name, c->default_upstream) == 0)
            return 0;
    }
    cross_error(errors, c, lines, "default_upstream",
                sp_config_strf("no upstream is named \"%s\"", c->default_upstream));
    return -EINVAL;
}

/* Two settings of one upstream section whose values must come in order: `low` below `high` when
 * `strict` (a backend degrades before it is ejected), else `low` at most `high` (a base delay and
 * its cap). The key the rule is about (`blame_low` says which) is blamed when written in the file;
 * otherwise the other one, which then must be written, since the defaults are in order. */
struct pair_rule {
    const char *section;  /* "passive_health", "breaker", "retries" or "health_check" */
    const char *low_key;  /* key name within the section */
    const char *high_key; /* key name within the section */
    uint64_t low;         /* built value of low_key */
    uint64_t high;        /* built value of high_key */
    bool strict;          /* low < high, only when both are on (not 0); else low <= high */
    bool blame_low;       /* the rule is about low_key (else high_key) */
};

static bool pair_in_order(const struct pair_rule *r)
{
    if (r->strict)
        return r->low == 0 || r->high == 0 || r->low < r->high;
    return r->low <= r->high;
}

/* Reports the pair of upstreams[u] when it is out of order. Returns 0 or -EINVAL. */
static int check_pair(const struct sp_config *c, const struct sp_config_lines *lines,
                      struct sp_config_errors *errors, size_t u, const struct pair_rule *r)
{
    static const char *const words[2][2] = {{"at most", "at least"}, {"below", "above"}};
    char *low_path, *high_path;
    bool low_set, high_set, at_low;

    if (pair_in_order(r))
        return 0;
    low_path = sp_config_strf("upstreams[%zu].%s.%s", u, r->section, r->low_key);
    high_path = sp_config_strf("upstreams[%zu].%s.%s", u, r->section, r->high_key);
    low_set = sp_config_lines_find(lines, low_path) != 0;
    high_set = sp_config_lines_find(lines, high_path) != 0;
    /* the key the rule is about when it is written, else the other one */
    at_low = r->blame_low ? low_set || !high_set : !high_set;
    cross_error(errors, c, lines, at_low ? low_path : high_path,
                sp_config_strf("must be %s %s (%llu%s), got %llu", words[r->strict][!at_low],
                               at_low ? r->high_key : r->low_key,
                               (unsigned long long)(at_low ? r->high : r->low),
                               (at_low ? high_set : low_set) ? "" : ", the default",
                               (unsigned long long)(at_low ? r->low : r->high)));
    free(high_path);
    free(low_path);
    return -EINVAL;
}

/* A probe's timeout must end before the next probe is due. */
static int check_health_check(const struct sp_config *c, const struct sp_config_lines *lines,
                              struct sp_config_errors *errors, size_t u)
{
    const struct sp_health_check_conf *hc = &c->upstreams[u].health_check;
    const struct pair_rule rule = {
        .section = "health_check",
        .low_key = "timeout_ms",
        .high_key = "interval_ms",
        .low = hc->timeout_ms,
        .high = hc->interval_ms,
        .blame_low = true,
    };

    if (!hc->enabled)
        return 0;
    return check_pair(c, lines, errors, u, &rule);
}

/* Paired settings of passive_health, breaker and retries must come in order. The defaults count:
 * a degrade threshold at or above the default eject threshold would never act. */
static int check_policy_pairs(const struct sp_config *c, const struct sp_config_lines *lines,
                              struct sp_config_errors *errors)
{
    int rv = 0;

    for (size_t u = 0; u < c->upstreams_count; u++) {
        const struct sp_passive_health_conf *ph = &c->upstreams[u].passive_health;
        const struct sp_breaker_settings *br = &c->upstreams[u].breaker;
        const struct sp_retry_conf *rt = &c->upstreams[u].retries;
        const struct pair_rule rules[] = {
            {.section = "passive_health",
             .low_key = "degrade_failures",
             .high_key = "eject_failures",
             .low = ph->degrade_failures,
             .high = ph->eject_failures,
             .strict = true,
             .blame_low = true},
            {.section = "passive_health",
             .low_key = "degrade_ratio_pct",
             .high_key = "eject_ratio_pct",
             .low = ph->degrade_ratio_pct,
             .high = ph->eject_ratio_pct,
             .strict = true,
             .blame_low = true},
            {.section = "passive_health",
             .low_key = "recovery_ms",
             .high_key = "max_recovery_ms",
             .low = ph->recovery_ms,
             .high = ph->max_recovery_ms},
            {.section = "breaker",
             .low_key = "open_ms",
             .high_key = "max_open_ms",
             .low = br->open_ms,
             .high = br->max_open_ms},
            {.section = "retries",
             .low_key = "backoff_ms",
             .high_key = "max_backoff_ms",
             .low = rt->backoff_ms,
             .high = rt->max_backoff_ms},
        };

        for (size_t i = 0; i < SP_ARRAY_LEN(rules); i++) {
            if (check_pair(c, lines, errors, u, &rules[i]) < 0)
                rv = -EINVAL;
        }
        if (check_health_check(c, lines, errors, u) < 0)
            rv = -EINVAL;
    }
    return rv;
}

int sp_config_cross_check(const struct sp_config *config, const struct sp_config_lines *lines,
                          struct sp_config_errors *errors)
{
    int rv = 0;

    if (check_listeners(config, lines, errors) < 0)
        rv = -EINVAL;
    if (check_upstream_names(config, lines, errors) < 0)
        rv = -EINVAL;
    if (check_backend_ids(config, lines, errors) < 0)
        rv = -EINVAL;
    if (check_methods(config, lines, errors) < 0)
        rv = -EINVAL;
    if (check_routes(config, lines, errors) < 0)
        rv = -EINVAL;
    if (check_windows(config, lines, errors) < 0)
        rv = -EINVAL;
    if (check_backend_tls(config, lines, errors) < 0)
        rv = -EINVAL;
    if (check_client_cert(config, lines, errors) < 0)
        rv = -EINVAL;
    if (check_default_upstream(config, lines, errors) < 0)
        rv = -EINVAL;
    if (check_policy_pairs(config, lines, errors) < 0)
        rv = -EINVAL;
    return rv;
}
