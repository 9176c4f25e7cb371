/* router.h: maps a request (authority, path, method) to the upstream that serves it, from the
 * routes of a config snapshot. Built once per snapshot, then read-only: any thread may match
 * concurrently without locks. */
#ifndef SP_PROXY_ROUTER_H
#define SP_PROXY_ROUTER_H

#include <stddef.h>

struct sp_config;
struct sp_router;

/* Builds a router from every route of every upstream in cfg; each route maps to the index of its
 * upstream in cfg->upstreams. The router copies what it needs: cfg may be freed before it.
 * Route hosts are matched case-insensitively: "a.example", "*.example" (any name ending in
 * ".example", not "example" itself), "[::1]" or "::1" for IPv6 literals, NULL for any host.
 * On success returns 0 and *ret (owned by the caller, free with sp_router_free).
 * Returns -EINVAL when cfg is NULL, has more upstreams than an int holds, or a route host is
 * empty or a malformed wildcard ("*", "*.", "a*.example"); *ret untouched on error.
 * Main thread, while building a snapshot. */
int sp_router_new(const struct sp_config *cfg, struct sp_router **ret);

/* Frees a router. NULL is fine. Main thread, once no worker uses the snapshot. */
void sp_router_free(struct sp_router *r);

/* Returns the upstream index for a request, or -1 when no route matches. All strings are
 * borrowed byte ranges, not NUL-terminated; authority may be NULL/0 (then only routes without a
 * host match).
 *
 * authority may carry a port ("a.example:443"), any case and one trailing dot; IPv6 literals
 * are bracketed ("[::1]:443"). Host classes, best first: exact host, then wildcard "*.suffix"
 * (longer suffix first), then routes with no host. Within the best class, the longest
 * path_prefix that prefixes `path` at a segment boundary wins: the path equals the prefix, or
 * the next byte after it is '/' or '?', or the prefix ends with '/' ("/api" matches "/api",
 * "/api/x", "/api?q" but not "/apix"). Paths and methods compare case-sensitively; a route with
 * methods matches only those. When the best class has no route matching path and method, the
 * next class is tried. Equal candidates resolve in config order. Any thread. */
int sp_router_match(const struct sp_router *r, const char *authority, size_t authority_len,
                    const char *path, size_t path_len, const char *method, size_t method_len);

#endif
