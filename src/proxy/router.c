/* router.c: routes sorted once by precedence, then a linear scan where the first full match
 * wins. The sort order encodes every rule of sp_router_match(), so the scan needs no scoring;
 * a trie can replace the scan later without changing the order. */
#include "proxy/router.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/util.h"

/* Host classes in precedence order. */
enum route_host_kind {
    ROUTE_HOST_EXACT = 0,    /* host equals name */
    ROUTE_HOST_WILDCARD = 1, /* host ends with name (".example"), with at least one byte before */
    ROUTE_HOST_ANY = 2,      /* no host in the route */
};

struct route {
    enum route_host_kind host_kind;
    char *host;      /* owned; lowercase, no brackets; ".suffix" for wildcards; NULL for any */
    size_t host_len; /* strlen(host), 0 for any */
    char *prefix;    /* owned; path_prefix */
    size_t prefix_len;
    char **methods; /* owned array of owned strings; NULL = any method */
    size_t methods_count;
    size_t order; /* position in the config, for stable ties */
    int upstream; /* index into cfg->upstreams */
};

struct sp_router {
    struct route *routes; /* owned array, sorted by route_cmp */
    size_t count;
};

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Strips an optional port and IPv6 brackets and one trailing dot from a host[:port] string.
 * Writes the host's start and length; the bytes are not copied or lowercased. */
static void split_host(const char *s, size_t len, const char **ret_host, size_t *ret_len)
{
    size_t n = len;

    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);

        /* RFC 3986 §3.2.2: IP-literal = "[" ... "]"; no closing bracket: keep it all */
        if (close != NULL) {
            *ret_host = s + 1;
            *ret_len = (size_t)(close - s) - 1;
            return;
        }
    } else {
        const char *colon = memchr(s, ':', len);

        if (colon != NULL)
            n = (size_t)(colon - s);
    }
    if (n > 1 && s[n - 1] == '.')
        n--; /* "a.example." names the same host as "a.example" */
    *ret_host = s;
    *ret_len = n;
}

/* Fills rt's host fields from a config host. Returns 0 or -EINVAL for a malformed host. */
static int route_set_host(struct route *rt, const char *conf_host)
{
    const char *h;
    size_t len;

    if (conf_host == NULL || strcmp(conf_host, "*") == 0) {
        /* The config accepts "*" as an explicit "any host". */
        rt->host_kind = ROUTE_HOST_ANY;
        return 0;
    }
    if (conf_host[0] == '*') {
        /* "*.suffix": keep ".suffix" so the match is a plain ends-with */
        if (conf_host[1] != '.' || conf_host[2] == '\0' || strchr(conf_host + 1, '*') != NULL)
            return -EINVAL;
        rt->host_kind = ROUTE_HOST_WILDCARD;
        h = conf_host + 1;
        len = strlen(h);
    } else {
        if (strchr(conf_host, '*') != NULL)
            return -EINVAL;
        rt->host_kind = ROUTE_HOST_EXACT;
        if (conf_host[0] == '[' || strchr(conf_host, ':') == NULL)
            split_host(conf_host, strlen(conf_host), &h, &len);
        else {
            h = conf_host; /* bare IPv6 literal "::1" */
            len = strlen(h);
        }
    }
    if (len == 0)
        return -EINVAL;
    rt->host = sp_xstrndup(h, len);
    rt->host_len = len;
    for (size_t i = 0; i < len; i++)
        rt->host[i] = ascii_lower(rt->host[i]);
    return 0;
}

static void route_fini(struct route *rt)
{
    for (size_t i = 0; i < rt->methods_count; i++) {
        free(rt->methods[i]);
        rt->methods[i] = NULL;
    }
    free(rt->methods);
    rt->methods = NULL;
    free(rt->prefix);
    rt->prefix = NULL;
    free(rt->host);
    rt->host = NULL;
}

/* Fills rt from one config route. Returns 0 or -EINVAL; rt is finalizable either way. */
static int route_init(struct route *rt, const struct sp_route_conf *rc, int upstream, size_t order)
{
    const char *prefix = rc->path_prefix != NULL ? rc->path_prefix : "/";

    rt->upstream = upstream;
    rt->order = order;
    rt->prefix = sp_xstrdup(prefix);
    rt->prefix_len = strlen(prefix);
    if (rc->methods != NULL && rc->methods_count > 0) {
        rt->methods = sp_xcalloc(rc->methods_count, sizeof(rt->methods[0]));
        rt->methods_count = rc->methods_count;
        for (size_t i = 0; i < rc->methods_count; i++)
            rt->methods[i] = sp_xstrdup(rc->methods[i]);
    }
    return route_set_host(rt, rc->host);
}

/* Precedence: host class; longer wildcard suffix; longer path prefix; config order. */
static int route_cmp(const void *pa, const void *pb)
{
    const struct route *a = pa;
    const struct route *b = pb;

    if (a->host_kind != b->host_kind)
        return a->host_kind < b->host_kind ? -1 : 1;
    if (a->host_kind == ROUTE_HOST_WILDCARD && a->host_len != b->host_len)
        return a->host_len > b->host_len ? -1 : 1;
    if (a->prefix_len != b->prefix_len)
        return a->prefix_len > b->prefix_len ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

void sp_router_free(struct sp_router *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->count; i++)
        route_fini(&r->routes[i]);
    free(r->routes);
    r->routes = NULL;
    free(r);
}

int sp_router_new(const struct sp_config *cfg, struct sp_router **ret)
{
    struct sp_router *r;
    size_t total = 0;
    int rv;

    if (cfg == NULL || cfg->upstreams_count > INT_MAX)
        return -EINVAL;
    for (size_t u = 0; u < cfg->upstreams_count; u++)
        total += cfg->upstreams[u].routes_count;
    r = sp_xcalloc(1, sizeof(*r));
    r->routes = sp_xcalloc(total, sizeof(r->routes[0]));
    for (size_t u = 0; u < cfg->upstreams_count; u++) {
        const struct sp_upstream_conf *up = &cfg->upstreams[u];

        for (size_t i = 0; i < up->routes_count; i++) {
            struct route *rt = &r->routes[r->count];

            r->count++; /* first, so sp_router_free finalizes a half-built route too */
            rv = route_init(rt, &up->routes[i], (int)u, r->count);
            if (rv < 0)
                goto out_free_router;
        }
    }
    qsort(r->routes, r->count, sizeof(r->routes[0]), route_cmp);
    *ret = r;
    return 0;

out_free_router:
    sp_router_free(r);
    return rv;
}

static bool host_matches(const struct route *rt, const char *host, size_t len)
{
    const char *tail = host; /* every case below sets it or returns */

    switch (rt->host_kind) {
    case ROUTE_HOST_EXACT:
        if (len != rt->host_len)
            return false;
        tail = host;
        break;
    case ROUTE_HOST_WILDCARD:
        /* "*.example" needs a label before ".example": "example" itself does not match */
        if (len <= rt->host_len)
            return false;
        tail = host + len - rt->host_len;
        break;
    case ROUTE_HOST_ANY:
        return true;
    }
    for (size_t i = 0; i < rt->host_len; i++) {
        if (ascii_lower(tail[i]) != rt->host[i])
            return false;
    }
    return true;
}

static bool path_matches(const struct route *rt, const char *path, size_t len)
{
    size_t n = rt->prefix_len;

    if (len < n || memcmp(path, rt->prefix, n) != 0)
        return false;
    /* segment boundary: "/api" matches "/api", "/api/x", "/api?q", never "/apix" */
    return len == n || (n > 0 && rt->prefix[n - 1] == '/') || path[n] == '/' || path[n] == '?';
}

static bool method_matches(const struct route *rt, const char *method, size_t len)
{
    if (rt->methods == NULL)
        return true;
    for (size_t i = 0; i < rt->methods_count; i++) {
        /* RFC 9110 §9.1: method names are case-sensitive */
        if (strlen(rt->methods[i]) == len && memcmp(rt->methods[i], method, len) == 0)
            return true;
    }
    return false;
}

int sp_router_match(const struct sp_router *r, const char *authority, size_t authority_len,
                    const char *path, size_t path_len, const char *method, size_t method_len)
{
    const char *host = "";
    size_t host_len = 0;

    if (authority != NULL)
        split_host(authority, authority_len, &host, &host_len);
    if (path == NULL) {
        path = "";
        path_len = 0;
    }
    if (method == NULL) {
        method = "";
        method_len = 0;
    }
    for (size_t i = 0; i < r->count; i++) {
        const struct route *rt = &r->routes[i];

        if (host_matches(rt, host, host_len) && path_matches(rt, path, path_len) &&
            method_matches(rt, method, method_len))
            return rt->upstream;
    }
    return -1;
}
