/* test_router.c: unit tests of src/proxy/router: host classes and their fallback, authority
 * normalisation (port, case, IPv6, trailing dot), segment-boundary path prefixes, methods, and
 * the errors of sp_router_new. Configs are built in memory, one upstream per route. Last, the
 * router is checked against a brute-force reference matcher on randomized routes and requests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "config/config.h"
#include "core/util.h"
#include "proxy/router.h"

#define MAX_ROUTES 8

/* An in-memory config whose upstream i has exactly one route, routes[i]. */
struct fixture {
    struct sp_config cfg;
    struct sp_upstream_conf upstreams[MAX_ROUTES];
    struct sp_route_conf routes[MAX_ROUTES];
    struct sp_router *router; /* owned; built by build() */
};

static char *get[] = {"GET"};
static char *post_put[] = {"POST", "PUT"};

/* Adds a route as the next upstream; returns its upstream index. */
static int add(struct fixture *f, char *host, char *prefix, char **methods, size_t methods_count)
{
    size_t i = f->cfg.upstreams_count;

    assert_true(i < MAX_ROUTES);
    f->routes[i] = (struct sp_route_conf){host, prefix, methods, methods_count};
    f->upstreams[i].routes = &f->routes[i];
    f->upstreams[i].routes_count = 1;
    f->cfg.upstreams = f->upstreams;
    f->cfg.upstreams_count = i + 1;
    return (int)i;
}

static void build(struct fixture *f)
{
    assert_int_equal(sp_router_new(&f->cfg, &f->router), 0);
}

static int match(const struct fixture *f, const char *authority, const char *path,
                 const char *method)
{
    return sp_router_match(f->router, authority, authority ? strlen(authority) : 0, path,
                           strlen(path), method, strlen(method));
}

static int setup(void **state)
{
    *state = test_calloc(1, sizeof(struct fixture));
    return *state == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    sp_router_free(f->router);
    f->router = NULL;
    test_free(f);
    return 0;
}

static void test_exact_host_beats_wildcard_which_beats_no_host(void **state)
{
    struct fixture *f = *state;
    int any = add(f, NULL, "/", NULL, 0);
    int wild = add(f, "*.example.com", "/", NULL, 0);
    int exact = add(f, "api.example.com", "/", NULL, 0);

    build(f);
    assert_int_equal(match(f, "api.example.com", "/", "GET"), exact);
    assert_int_equal(match(f, "www.example.com", "/", "GET"), wild);
    assert_int_equal(match(f, "other.test", "/", "GET"), any);
}

static void test_host_class_wins_over_a_longer_path_prefix(void **state)
{
    struct fixture *f = *state;
    int any = add(f, NULL, "/api/v1/users", NULL, 0);
    int exact = add(f, "a.example", "/", NULL, 0);

    build(f);
    assert_int_equal(match(f, "a.example", "/api/v1/users", "GET"), exact);
    assert_int_equal(match(f, "b.example", "/api/v1/users", "GET"), any);
}

static void test_wildcard_does_not_match_its_bare_suffix(void **state)
{
    struct fixture *f = *state;
    int wild = add(f, "*.example.com", "/", NULL, 0);

    build(f);
    assert_int_equal(match(f, "a.example.com", "/", "GET"), wild);
    assert_int_equal(match(f, "a.b.example.com", "/", "GET"), wild);
    assert_int_equal(match(f, "example.com", "/", "GET"), -1);
    assert_int_equal(match(f, "badexample.com", "/", "GET"), -1);
}

static void test_longer_wildcard_suffix_wins(void **state)
{
    struct fixture *f = *state;
    int wide = add(f, "*.example.com", "/", NULL, 0);
    int narrow = add(f, "*.eu.example.com", "/", NULL, 0);

    build(f);
    assert_int_equal(match(f, "x.eu.example.com", "/", "GET"), narrow);
    assert_int_equal(match(f, "x.us.example.com", "/", "GET"), wide);
}

static void test_authority_port_and_case_are_ignored(void **state)
{
    struct fixture *f = *state;
    int exact = add(f, "A.Example", "/", NULL, 0);

    build(f);
    assert_int_equal(match(f, "a.example:443", "/", "GET"), exact);
    assert_int_equal(match(f, "A.EXAMPLE", "/", "GET"), exact);
    assert_int_equal(match(f, "a.example.", "/", "GET"), exact);
    assert_int_equal(match(f, "a.example.org", "/", "GET"), -1);
}

static void test_ipv6_literal_authority_matches_with_or_without_brackets_in_config(void **state)
{
    struct fixture *f = *state;
    int bracketed = add(f, "[::1]", "/", NULL, 0);
    int bare = add(f, "2001:db8::1", "/", NULL, 0);

    build(f);
    assert_int_equal(match(f, "[::1]:443", "/", "GET"), bracketed);
    assert_int_equal(match(f, "[::1]", "/", "GET"), bracketed);
    assert_int_equal(match(f, "[2001:DB8::1]:8443", "/", "GET"), bare);
    assert_int_equal(match(f, "[::2]:443", "/", "GET"), -1);
}

static void test_missing_authority_matches_no_route_with_a_host(void **state)
{
    struct fixture *f = *state;

    add(f, "a.example", "/", NULL, 0);
    add(f, "*.example", "/", NULL, 0);
    build(f);
    assert_int_equal(match(f, NULL, "/", "GET"), -1);
    assert_int_equal(match(f, "", "/", "GET"), -1);
    assert_int_equal(match(f, ":443", "/", "GET"), -1);
}

static void test_missing_authority_matches_a_route_without_host(void **state)
{
    struct fixture *f = *state;
    int any = add(f, NULL, "/", NULL, 0);

    build(f);
    assert_int_equal(match(f, NULL, "/", "GET"), any);
}

static void test_longest_path_prefix_wins_within_a_host_class(void **state)
{
    struct fixture *f = *state;
    int root = add(f, "a.example", "/", NULL, 0);
    int api = add(f, "a.example", "/api", NULL, 0);
    int v1 = add(f, "a.example", "/api/v1", NULL, 0);

    build(f);
    assert_int_equal(match(f, "a.example", "/api/v1/users", "GET"), v1);
    assert_int_equal(match(f, "a.example", "/api/v2", "GET"), api);
    assert_int_equal(match(f, "a.example", "/index.html", "GET"), root);
}

static void test_prefix_matches_only_at_a_segment_boundary(void **state)
{
    struct fixture *f = *state;
    int api = add(f, NULL, "/api", NULL, 0);
    int slash = add(f, NULL, "/static/", NULL, 0);

    build(f);
    assert_int_equal(match(f, "a", "/api", "GET"), api);
    assert_int_equal(match(f, "a", "/api/x", "GET"), api);
    assert_int_equal(match(f, "a", "/api?q=1", "GET"), api);
    assert_int_equal(match(f, "a", "/apix", "GET"), -1);
    assert_int_equal(match(f, "a", "/ap", "GET"), -1);
    assert_int_equal(match(f, "a", "/static/app.js", "GET"), slash);
    assert_int_equal(match(f, "a", "/static", "GET"), -1);
}

static void test_path_prefix_is_case_sensitive(void **state)
{
    struct fixture *f = *state;

    add(f, NULL, "/api", NULL, 0);
    build(f);
    assert_int_equal(match(f, "a", "/API", "GET"), -1);
}

static void test_route_with_methods_matches_only_those_methods(void **state)
{
    struct fixture *f = *state;
    int writes = add(f, NULL, "/", post_put, SP_ARRAY_LEN(post_put));

    build(f);
    assert_int_equal(match(f, "a", "/x", "POST"), writes);
    assert_int_equal(match(f, "a", "/x", "PUT"), writes);
    assert_int_equal(match(f, "a", "/x", "GET"), -1);
    assert_int_equal(match(f, "a", "/x", "post"), -1); /* RFC 9110 §9.1: case-sensitive */
    assert_int_equal(match(f, "a", "/x", "POS"), -1);
}

static void test_method_mismatch_falls_back_to_a_shorter_prefix_in_the_same_class(void **state)
{
    struct fixture *f = *state;
    int root = add(f, "a.example", "/", NULL, 0);
    int api_get = add(f, "a.example", "/api", get, SP_ARRAY_LEN(get));

    build(f);
    assert_int_equal(match(f, "a.example", "/api/x", "GET"), api_get);
    assert_int_equal(match(f, "a.example", "/api/x", "DELETE"), root);
}

static void test_unmatched_best_class_falls_back_to_the_next_class(void **state)
{
    struct fixture *f = *state;
    int any = add(f, NULL, "/", NULL, 0);
    int wild = add(f, "*.example", "/static", NULL, 0);
    int exact = add(f, "a.example", "/api", get, SP_ARRAY_LEN(get));

    build(f);
    assert_int_equal(match(f, "a.example", "/api", "GET"), exact);
    assert_int_equal(match(f, "a.example", "/api", "POST"), any);
    assert_int_equal(match(f, "a.example", "/static/x", "GET"), wild);
    assert_int_equal(match(f, "a.example", "/other", "GET"), any);
}

static void test_equal_routes_resolve_in_config_order(void **state)
{
    struct fixture *f = *state;
    int first = add(f, "a.example", "/api", NULL, 0);

    add(f, "A.EXAMPLE", "/api", NULL, 0);
    build(f);
    assert_int_equal(match(f, "a.example", "/api", "GET"), first);
}

static void test_routes_map_to_their_own_upstream_when_upstreams_have_several(void **state)
{
    struct fixture *f = *state;
    struct sp_route_conf two[2] = {{"a.example", "/", NULL, 0}, {"b.example", "/", NULL, 0}};

    add(f, "c.example", "/", NULL, 0);
    add(f, NULL, "/", NULL, 0);
    f->upstreams[1].routes = two;
    f->upstreams[1].routes_count = 2;
    build(f);
    assert_int_equal(match(f, "c.example", "/", "GET"), 0);
    assert_int_equal(match(f, "a.example", "/", "GET"), 1);
    assert_int_equal(match(f, "b.example", "/", "GET"), 1);
    assert_int_equal(match(f, "d.example", "/", "GET"), -1);
}

static void test_new_rejects_malformed_hosts_and_leaves_ret_untouched(void **state)
{
    static char *const bad[] = {"", "*.", "a*.example", "*.a*.example", "*example"};
    struct fixture *f = *state;
    struct sp_router *r = (struct sp_router *)0x1;

    assert_int_equal(sp_router_new(NULL, &r), -EINVAL);
    for (size_t i = 0; i < SP_ARRAY_LEN(bad); i++) {
        f->cfg.upstreams_count = 0;
        add(f, NULL, "/", NULL, 0); /* a valid route first: freed on the error path */
        add(f, bad[i], "/", get, SP_ARRAY_LEN(get));
        assert_int_equal(sp_router_new(&f->cfg, &r), -EINVAL);
        assert_ptr_equal(r, (struct sp_router *)0x1);
    }
    sp_router_free(NULL);
}

static void test_star_host_means_any_host(void **state)
{
    struct fixture *f = *state;

    add(f, "*", "/", NULL, 0);
    build(f);
    assert_int_equal(match(f, "a.example", "/", "GET"), 0);
    assert_int_equal(match(f, "localhost:8443", "/x", "POST"), 0);
}

static void test_empty_config_matches_nothing(void **state)
{
    struct fixture *f = *state;

    build(f);
    assert_int_equal(match(f, "a.example", "/", "GET"), -1);
}

/* ---- brute-force reference: every route tried, best by the documented precedence ---------- */

struct ref_route {
    int kind;      /* 0 exact, 1 wildcard, 2 any */
    char host[32]; /* lowercase; ".suffix" for wildcards */
    size_t host_len;
    const struct sp_route_conf *rc;
    size_t order;
};

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* The request's host: no port, no brackets, one trailing dot dropped (as router.h documents). */
static void ref_host(const char *a, char *out, size_t *ret_len)
{
    size_t n = strlen(a), i = 0;
    const char *end;

    if (a[0] == '[' && (end = strchr(a, ']')) != NULL) {
        a++;
        n = (size_t)(end - a);
    } else {
        if ((end = strchr(a, ':')) != NULL)
            n = (size_t)(end - a);
        if (n > 1 && a[n - 1] == '.')
            n--;
    }
    for (; i < n; i++)
        out[i] = lower(a[i]);
    *ret_len = n;
}

static void ref_route_init(struct ref_route *rr, const struct sp_route_conf *rc, size_t order)
{
    const char *h = rc->host;

    *rr = (struct ref_route){.rc = rc, .order = order, .kind = 2};
    if (h == NULL || strcmp(h, "*") == 0)
        return;
    rr->kind = h[0] == '*' ? 1 : 0;
    if (rr->kind == 1)
        h++;
    if (rr->kind == 0 && strchr(h, ':') != NULL && h[0] != '[') {
        rr->host_len = strlen(h); /* bare IPv6 literal */
        for (size_t i = 0; i < rr->host_len; i++)
            rr->host[i] = lower(h[i]);
    } else {
        ref_host(h, rr->host, &rr->host_len);
    }
}

static bool ref_matches(const struct ref_route *rr, const char *host, size_t host_len,
                        const char *path, const char *method)
{
    const char *prefix = rr->rc->path_prefix;
    size_t pl = strlen(prefix), len = strlen(path);
    bool ok = rr->rc->methods == NULL;

    if (rr->kind == 0 && (host_len != rr->host_len || memcmp(host, rr->host, host_len) != 0))
        return false;
    if (rr->kind == 1 && (host_len <= rr->host_len ||
                          memcmp(host + host_len - rr->host_len, rr->host, rr->host_len) != 0))
        return false;
    if (len < pl || memcmp(path, prefix, pl) != 0)
        return false;
    if (!(len == pl || (pl > 0 && prefix[pl - 1] == '/') || path[pl] == '/' || path[pl] == '?'))
        return false;
    for (size_t i = 0; !ok && i < rr->rc->methods_count; i++)
        ok = strcmp(rr->rc->methods[i], method) == 0;
    return ok;
}

/* True when a ranks before b: host class, longer wildcard suffix, longer prefix, config order. */
static bool ref_better(const struct ref_route *a, const struct ref_route *b)
{
    size_t pa = strlen(a->rc->path_prefix), pb = strlen(b->rc->path_prefix);

    if (a->kind != b->kind)
        return a->kind < b->kind;
    if (a->kind == 1 && a->host_len != b->host_len)
        return a->host_len > b->host_len;
    if (pa != pb)
        return pa > pb;
    return a->order < b->order;
}

static int ref_match(const struct ref_route *rr, size_t n, const char *authority, const char *path,
                     const char *method)
{
    char host[64];
    size_t host_len = 0;
    const struct ref_route *best = NULL;

    if (authority != NULL)
        ref_host(authority, host, &host_len);
    for (size_t i = 0; i < n; i++) {
        if (ref_matches(&rr[i], host, host_len, path, method) &&
            (best == NULL || ref_better(&rr[i], best)))
            best = &rr[i];
    }
    return best != NULL ? (int)(best - rr) : -1;
}

#define RANDOM_ROUTES 40

static const char *pick_str(const char *const *set, size_t n)
{
    return set[sp_random_u64() % n];
}

static void test_router_agrees_with_a_brute_force_matcher_on_random_routes(void **state)
{
    static char *const hosts[] = {NULL,     "*",           "a.ex",   "A.Ex",    "b.ex",
                                  "x.a.ex", "*.ex",        "*.a.ex", "*.A.EX",  "*.b.a.ex",
                                  "[::1]",  "2001:db8::1", "a.ex.",  "*.x.a.ex"};
    static char *const prefixes[] = {"/", "/a", "/a/", "/a/b", "/ab", "/b", "/a/b/c", "", "/a?"};
    static const char *const authorities[] = {
        "a.ex",          "A.EX:443", "a.ex.", "b.ex", "x.a.ex", "y.x.a.ex",
        "b.a.ex",        "z.b.a.ex", "ex",    ".ex",  "q.ex",   "[::1]:1",
        "[2001:DB8::1]", "::1",      "",      ":443", "a..ex"};
    static const char *const paths[] = {"/",     "/a",   "/a/",    "/a/b", "/a/b/c/d", "/ab",
                                        "/abc",  "/a?x", "/a/b?y", "",     "/b/",      "/A",
                                        "/a/bc", "?",    "/a?",    "/a?/z"};
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
    struct sp_upstream_conf ups[RANDOM_ROUTES];
    struct sp_route_conf routes[RANDOM_ROUTES];
    struct ref_route rr[RANDOM_ROUTES];

    (void)state;
    for (int trial = 0; trial < 300; trial++) {
        size_t n = 1 + sp_random_u64() % RANDOM_ROUTES;
        struct sp_config cfg = {.upstreams = ups, .upstreams_count = n};
        struct sp_router *r;

        for (size_t i = 0; i < n; i++) {
            unsigned m = (unsigned)(sp_random_u64() % 3);

            routes[i] = (struct sp_route_conf){
                .host = hosts[sp_random_u64() % SP_ARRAY_LEN(hosts)],
                .path_prefix = prefixes[sp_random_u64() % SP_ARRAY_LEN(prefixes)],
                .methods = m == 0   ? NULL
                           : m == 1 ? get
                                    : post_put,
                .methods_count = m == 0   ? 0
                                 : m == 1 ? 1
                                          : 2};
            ups[i] = (struct sp_upstream_conf){.routes = &routes[i], .routes_count = 1};
            ref_route_init(&rr[i], &routes[i], i);
        }
        assert_int_equal(sp_router_new(&cfg, &r), 0);
        for (int q = 0; q < 300; q++) {
            const char *a =
                sp_random_u64() % 10 == 0 ? NULL : pick_str(authorities, SP_ARRAY_LEN(authorities));
            const char *p = pick_str(paths, SP_ARRAY_LEN(paths));
            const char *m = pick_str(methods, SP_ARRAY_LEN(methods));
            int got = sp_router_match(r, a, a ? strlen(a) : 0, p, strlen(p), m, strlen(m));

            assert_int_equal(got, ref_match(rr, n, a, p, m));
        }
        sp_router_free(r);
    }
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_exact_host_beats_wildcard_which_beats_no_host),
        T(test_star_host_means_any_host),
        T(test_host_class_wins_over_a_longer_path_prefix),
        T(test_wildcard_does_not_match_its_bare_suffix),
        T(test_longer_wildcard_suffix_wins),
        T(test_authority_port_and_case_are_ignored),
        T(test_ipv6_literal_authority_matches_with_or_without_brackets_in_config),
        T(test_missing_authority_matches_no_route_with_a_host),
        T(test_missing_authority_matches_a_route_without_host),
        T(test_longest_path_prefix_wins_within_a_host_class),
        T(test_prefix_matches_only_at_a_segment_boundary),
        T(test_path_prefix_is_case_sensitive),
        T(test_route_with_methods_matches_only_those_methods),
        T(test_method_mismatch_falls_back_to_a_shorter_prefix_in_the_same_class),
        T(test_unmatched_best_class_falls_back_to_the_next_class),
        T(test_equal_routes_resolve_in_config_order),
        T(test_routes_map_to_their_own_upstream_when_upstreams_have_several),
        T(test_new_rejects_malformed_hosts_and_leaves_ret_untouched),
        T(test_empty_config_matches_nothing),
        cmocka_unit_test(test_router_agrees_with_a_brute_force_matcher_on_random_routes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
