/* router.c: route lookup whose cost does not grow with the number of routes.
 *
 * Routes are grouped by host: a hash map from exact host to a path trie, a hash map from wildcard
 * suffix (".example") to a path trie, and one path trie for routes without a host. A lookup costs
 * one exact-host probe, one wildcard probe per dot of the request's host (longest suffix first),
 * and for each trie tried one walk down the path's bytes: O(len(host) * dots + len(path)) whatever
 * the number of routes.
 *
 * A path trie is a byte trie of path prefixes. A node where prefixes end holds their routes in
 * config order and a link to the nearest ancestor that holds routes, so after walking down as far
 * as the path goes, the candidates longest-prefix-first are that node and its chain of links; the
 * first one at a segment boundary with a route for the method wins. Together with the host order
 * this is exactly the precedence of the former sorted linear scan (see router.h). */
#include "proxy/router.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/util.h"

#define NONE SIZE_MAX

/* Host classes in precedence order. */
enum route_host_kind {
    ROUTE_HOST_EXACT = 0,    /* host equals name */
    ROUTE_HOST_WILDCARD = 1, /* host ends with name (".example"), with at least one byte before */
    ROUTE_HOST_ANY = 2,      /* no host in the route */
};

struct route {
    char **methods; /* owned array of owned strings; NULL = any method */
    size_t *method_lens;
    size_t methods_count;
    int upstream; /* index into cfg->upstreams */
};

struct trie_edge {
    uint8_t byte;
    size_t node; /* index into sp_router.nodes */
};

struct trie_node {
    struct trie_edge *kids; /* owned, sorted by byte */
    size_t nkids;
    size_t *routes; /* owned: indexes into sp_router.routes of the prefixes ending here, in
                       config order */
    size_t nroutes;
    size_t depth;  /* length of the prefix this node spells */
    size_t parent; /* NONE for a root */
    size_t up;     /* nearest proper ancestor with routes, or NONE */
};

struct host_entry {
    char *host; /* owned; lowercase; NULL = free slot */
    size_t len;
    uint64_t hash;
    size_t root; /* path trie root */
};

struct host_map {
    struct host_entry *slots; /* owned; open addressing, linear probing */
    size_t cap;               /* power of two, more than twice count; 0 when empty */
    size_t count;
};

struct sp_router {
    struct route *routes; /* owned array */
    size_t nroutes;
    struct trie_node *nodes; /* owned pool of every trie's nodes */
    size_t nnodes, nodes_cap;
    struct host_map exact;    /* exact host -> trie */
    struct host_map wildcard; /* ".suffix" -> trie */
    size_t any_root;          /* trie of routes without host */
};

static uint8_t ascii_lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
}

/* FNV-1a over the lowercased bytes: the map is built from config, so no attacker picks its keys;
 * a client only chooses which key to look up. */
static uint64_t host_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < len; i++)
        h = (h ^ ascii_lower((uint8_t)s[i])) * 0x100000001b3ULL;
    return h;
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

/* Classifies a config host and finds its map key (not lowercased). Returns 0 or -EINVAL. */
static int parse_host(const char *conf_host, enum route_host_kind *ret_kind, const char **ret_key,
                      size_t *ret_len)
{
    if (conf_host == NULL || strcmp(conf_host, "*") == 0) {
        /* The config accepts "*" as an explicit "any host". */
        *ret_kind = ROUTE_HOST_ANY;
        return 0;
    }
    if (conf_host[0] == '*') {
        /* "*.suffix": keep ".suffix" so the match is a plain ends-with */
        if (conf_host[1] != '.' || conf_host[2] == '\0' || strchr(conf_host + 1, '*') != NULL)
            return -EINVAL;
        *ret_kind = ROUTE_HOST_WILDCARD;
        *ret_key = conf_host + 1;
        *ret_len = strlen(*ret_key);
        return 0;
    }
    if (strchr(conf_host, '*') != NULL)
        return -EINVAL;
    *ret_kind = ROUTE_HOST_EXACT;
    if (conf_host[0] == '[' || strchr(conf_host, ':') == NULL) {
        split_host(conf_host, strlen(conf_host), ret_key, ret_len);
    } else {
        *ret_key = conf_host; /* bare IPv6 literal "::1" */
        *ret_len = strlen(conf_host);
    }
    return *ret_len == 0 ? -EINVAL : 0;
}

static size_t node_new(struct sp_router *r, size_t parent, size_t depth)
{
    if (r->nnodes == r->nodes_cap) {
        r->nodes_cap = r->nodes_cap ? 2 * r->nodes_cap : 16;
        r->nodes = sp_xrealloc(r->nodes, r->nodes_cap * sizeof(r->nodes[0]));
    }
    r->nodes[r->nnodes] = (struct trie_node){.depth = depth, .parent = parent, .up = NONE};
    return r->nnodes++;
}

/* Index of the first edge of node n whose byte is >= c. */
static size_t edge_lower_bound(const struct trie_node *n, uint8_t c)
{
    size_t lo = 0, hi = n->nkids;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (n->kids[mid].byte < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static size_t node_child(const struct sp_router *r, size_t n, uint8_t c)
{
    const struct trie_node *node = &r->nodes[n];
    size_t i = edge_lower_bound(node, c);

    return i < node->nkids && node->kids[i].byte == c ? node->kids[i].node : NONE;
}

static size_t node_child_add(struct sp_router *r, size_t n, uint8_t c)
{
    size_t child = node_child(r, n, c), i;
    struct trie_node *node;

    if (child != NONE)
        return child;
    child = node_new(r, n, r->nodes[n].depth + 1); /* may move r->nodes */
    node = &r->nodes[n];
    i = edge_lower_bound(node, c);
    node->kids = sp_xrealloc(node->kids, (node->nkids + 1) * sizeof(node->kids[0]));
    memmove(&node->kids[i + 1], &node->kids[i], (node->nkids - i) * sizeof(node->kids[0]));
    node->kids[i] = (struct trie_edge){.byte = c, .node = child};
    node->nkids++;
    return child;
}

static void trie_insert(struct sp_router *r, size_t root, const char *prefix, size_t route)
{
    size_t n = root;
    struct trie_node *node;

    for (size_t i = 0; prefix[i] != '\0'; i++)
        n = node_child_add(r, n, (uint8_t)prefix[i]);
    node = &r->nodes[n];
    node->routes = sp_xrealloc(node->routes, (node->nroutes + 1) * sizeof(node->routes[0]));
    node->routes[node->nroutes++] = route;
}

static struct host_entry *map_find(const struct host_map *m, const char *host, size_t len,
                                   uint64_t hash)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = hash & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        struct host_entry *e = &m->slots[i];
        size_t k = 0;

        if (e->host == NULL)
            return NULL;
        if (e->hash != hash || e->len != len)
            continue;
        while (k < len && ascii_lower((uint8_t)host[k]) == (uint8_t)e->host[k])
            k++;
        if (k == len)
            return e;
    }
}

static void map_grow(struct host_map *m)
{
    struct host_map bigger = {.cap = m->cap ? 2 * m->cap : 16, .count = m->count};

    bigger.slots = sp_xcalloc(bigger.cap, sizeof(bigger.slots[0]));
    for (size_t i = 0; i < m->cap; i++) {
        size_t j = m->slots[i].hash & (bigger.cap - 1);

        if (m->slots[i].host == NULL)
            continue;
        while (bigger.slots[j].host != NULL)
            j = (j + 1) & (bigger.cap - 1);
        bigger.slots[j] = m->slots[i];
    }
    free(m->slots);
    *m = bigger;
}

/* Returns the trie root for host[0..len), adding an entry (and a root) if needed. */
static size_t map_root(struct sp_router *r, struct host_map *m, const char *host, size_t len)
{
    uint64_t hash = host_hash(host, len);
    struct host_entry *e = map_find(m, host, len, hash);
    size_t i;

    if (e != NULL)
        return e->root;
    if (2 * (m->count + 1) > m->cap)
        map_grow(m);
    for (i = hash & (m->cap - 1); m->slots[i].host != NULL; i = (i + 1) & (m->cap - 1))
        ;
    e = &m->slots[i];
    e->host = sp_xstrndup(host, len);
    for (size_t k = 0; k < len; k++)
        e->host[k] = (char)ascii_lower((uint8_t)e->host[k]);
    e->len = len;
    e->hash = hash;
    e->root = node_new(r, NONE, 0);
    m->count++;
    return e->root;
}

static void map_fini(struct host_map *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slots[i].host);
        m->slots[i].host = NULL;
    }
    free(m->slots);
    m->slots = NULL;
}

static void route_fini(struct route *rt)
{
    for (size_t i = 0; i < rt->methods_count; i++) {
        free(rt->methods[i]);
        rt->methods[i] = NULL;
    }
    free(rt->methods);
    rt->methods = NULL;
    free(rt->method_lens);
    rt->method_lens = NULL;
}

/* Adds config route rc of upstream u as route number r->nroutes. Returns 0 or -EINVAL. */
static int route_add(struct sp_router *r, const struct sp_route_conf *rc, int upstream)
{
    struct route *rt = &r->routes[r->nroutes];
    enum route_host_kind kind;
    const char *key = NULL;
    size_t key_len = 0, root = r->any_root;
    int rv = parse_host(rc->host, &kind, &key, &key_len);

    if (rv < 0)
        return rv;
    rt->upstream = upstream;
    if (rc->methods != NULL && rc->methods_count > 0) {
        rt->methods = sp_xcalloc(rc->methods_count, sizeof(rt->methods[0]));
        rt->method_lens = sp_xcalloc(rc->methods_count, sizeof(rt->method_lens[0]));
        rt->methods_count = rc->methods_count;
        for (size_t i = 0; i < rc->methods_count; i++) {
            rt->methods[i] = sp_xstrdup(rc->methods[i]);
            rt->method_lens[i] = strlen(rt->methods[i]);
        }
    }
    switch (kind) {
    case ROUTE_HOST_EXACT:
        root = map_root(r, &r->exact, key, key_len);
        break;
    case ROUTE_HOST_WILDCARD:
        root = map_root(r, &r->wildcard, key, key_len);
        break;
    case ROUTE_HOST_ANY:
        root = r->any_root;
        break;
    }
    trie_insert(r, root, rc->path_prefix != NULL ? rc->path_prefix : "/", r->nroutes);
    r->nroutes++;
    return 0;
}

/* Links each node to its nearest proper ancestor with routes. A parent is always created before
 * its children, so one pass in index order sees every parent's link first. */
static void link_ancestors(struct sp_router *r)
{
    for (size_t i = 0; i < r->nnodes; i++) {
        size_t p = r->nodes[i].parent;

        if (p != NONE)
            r->nodes[i].up = r->nodes[p].nroutes > 0 ? p : r->nodes[p].up;
    }
}

void sp_router_free(struct sp_router *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nroutes; i++)
        route_fini(&r->routes[i]);
    free(r->routes);
    r->routes = NULL;
    for (size_t i = 0; i < r->nnodes; i++) {
        free(r->nodes[i].kids);
        r->nodes[i].kids = NULL;
        free(r->nodes[i].routes);
        r->nodes[i].routes = NULL;
    }
    free(r->nodes);
    r->nodes = NULL;
    map_fini(&r->exact);
    map_fini(&r->wildcard);
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
    r->any_root = node_new(r, NONE, 0);
    for (size_t u = 0; u < cfg->upstreams_count; u++) {
        const struct sp_upstream_conf *up = &cfg->upstreams[u];

        for (size_t i = 0; i < up->routes_count; i++) {
            rv = route_add(r, &up->routes[i], (int)u);
            if (rv < 0)
                goto out_free_router;
        }
    }
    link_ancestors(r);
    *ret = r;
    return 0;

out_free_router:
    sp_router_free(r);
    return rv;
}

static bool method_matches(const struct route *rt, const char *method, size_t len)
{
    if (rt->methods == NULL)
        return true;
    for (size_t i = 0; i < rt->methods_count; i++) {
        /* RFC 9110 §9.1: method names are case-sensitive */
        if (rt->method_lens[i] == len && memcmp(rt->methods[i], method, len) == 0)
            return true;
    }
    return false;
}

/* Returns the upstream of the best route of one trie for path and method, or -1. */
static int trie_match(const struct sp_router *r, size_t root, const char *path, size_t len,
                      const char *method, size_t method_len)
{
    size_t n = root, deepest = r->nodes[root].nroutes > 0 ? root : NONE;

    for (size_t d = 0; d < len; d++) {
        n = node_child(r, n, (uint8_t)path[d]);
        if (n == NONE)
            break;
        if (r->nodes[n].nroutes > 0)
            deepest = n;
    }
    for (n = deepest; n != NONE; n = r->nodes[n].up) {
        const struct trie_node *node = &r->nodes[n];
        size_t d = node->depth;

        /* segment boundary: "/api" matches "/api", "/api/x", "/api?q", never "/apix" */
        if (d != len && (d == 0 || path[d - 1] != '/') && path[d] != '/' && path[d] != '?')
            continue;
        for (size_t i = 0; i < node->nroutes; i++) {
            const struct route *rt = &r->routes[node->routes[i]];

            if (method_matches(rt, method, method_len))
                return rt->upstream;
        }
    }
    return -1;
}

/* Tries the wildcard tries whose suffix ends host[0..len), longest suffix first. */
static int wildcard_match(const struct sp_router *r, const char *host, size_t len, const char *path,
                          size_t path_len, const char *method, size_t method_len)
{
    if (r->wildcard.count == 0)
        return -1;
    /* "*.example" needs a label before ".example": a suffix never starts at byte 0 */
    for (size_t p = 1; p < len; p++) {
        const struct host_entry *e;
        int up;

        if (host[p] != '.')
            continue;
        e = map_find(&r->wildcard, host + p, len - p, host_hash(host + p, len - p));
        if (e == NULL)
            continue;
        up = trie_match(r, e->root, path, path_len, method, method_len);
        if (up >= 0)
            return up;
    }
    return -1;
}

int sp_router_match(const struct sp_router *r, const char *authority, size_t authority_len,
                    const char *path, size_t path_len, const char *method, size_t method_len)
{
    const char *host = "";
    size_t host_len = 0;
    const struct host_entry *e;
    int up;

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
    e = map_find(&r->exact, host, host_len, host_hash(host, host_len));
    if (e != NULL) {
        up = trie_match(r, e->root, path, path_len, method, method_len);
        if (up >= 0)
            return up;
    }
    up = wildcard_match(r, host, host_len, path, path_len, method, method_len);
    if (up >= 0)
        return up;
    return trie_match(r, r->any_root, path, path_len, method, method_len);
}
