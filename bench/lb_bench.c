/* lb_bench.c: micro-benchmark of backend selection and route lookup (issue 4). Prints ns per
 * sp_lb_pick for each strategy at 3, 100 and 1,000 backends (weights 1..5, random in-flight
 * counts, a few ineligible), and ns per sp_router_match at 10, 1,000 and 10,000 routes.
 * Single-threaded; each cell runs for about `budget` ms of wall time. Usage: spooky-lb-bench [ms].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/time.h"
#include "core/util.h"
#include "lb/lb.h"
#include "proxy/router.h"

static const char *const strategies[] = {
    "random", "round_robin", "weighted_round_robin", "least_conn", "p2c", "ewma", "rendezvous"};
static const size_t backend_counts[] = {3, 100, 1000};
static const size_t route_counts[] = {10, 1000, 10000};

static volatile size_t sink; /* keeps results alive */

static double bench_pick(const char *name, size_t n, sp_time_t budget)
{
    struct sp_lb_backend *b = sp_xcalloc(n, sizeof(*b));
    const struct sp_lb_params params = {.slow_start_ns = 0};
    uint64_t iters = 0;
    sp_time_t start, now, fake = SP_SEC;
    struct sp_lb *lb;

    for (size_t i = 0; i < n; i++)
        b[i] = (struct sp_lb_backend){(unsigned)(1 + i % 5), i % 17 != 5, (unsigned)(i % 7)};
    b[0].eligible = true;
    if (sp_lb_new_by_name(name, &params, NULL, n, &lb) != 0)
        abort();
    for (size_t i = 0; i < n; i++)
        sp_lb_report(lb, i, (1 + i % 9) * SP_MS, true, fake);
    start = sp_time_now();
    do {
        for (int k = 0; k < 256; k++, iters++) {
            uint64_t key = iters;
            size_t idx;

            fake += 10 * SP_US;
            if (sp_lb_pick_key(lb, b, n, (const uint8_t *)&key, sizeof(key), fake, &idx) != 0)
                abort();
            sp_lb_report(lb, idx, 2 * SP_MS, true, fake);
            sink += idx;
        }
        now = sp_time_now();
    } while (now - start < budget);
    sp_lb_free(lb);
    free(b);
    return (double)(now - start) / (double)iters;
}

/* A config of n routes, one upstream each: 60% exact hosts (ten paths per host), 30% wildcard
 * suffixes, 10% without host; every route has a distinct path prefix. Strings are leaked into
 * *ret_strings for the caller to free. */
static void build_routes(size_t n, struct sp_config *cfg, char ***ret_strings)
{
    struct sp_upstream_conf *ups = sp_xcalloc(n, sizeof(*ups));
    struct sp_route_conf *routes = sp_xcalloc(n, sizeof(*routes));
    char **strings = sp_xcalloc(2 * n, sizeof(*strings));

    for (size_t i = 0; i < n; i++) {
        char buf[64];

        if (i % 10 < 6)
            snprintf(buf, sizeof(buf), "h%zu.example.com", i / 10);
        else if (i % 10 < 9)
            snprintf(buf, sizeof(buf), "*.w%zu.example.net", i);
        else
            buf[0] = '\0';
        strings[2 * i] = buf[0] ? sp_xstrdup(buf) : NULL;
        snprintf(buf, sizeof(buf), "/svc%zu/api/v%zu", i % 10, i);
        strings[2 * i + 1] = sp_xstrdup(buf);
        routes[i] =
            (struct sp_route_conf){.host = strings[2 * i], .path_prefix = strings[2 * i + 1]};
        ups[i] = (struct sp_upstream_conf){.routes = &routes[i], .routes_count = 1};
    }
    *cfg = (struct sp_config){.upstreams = ups, .upstreams_count = n};
    *ret_strings = strings;
}

/* The request matching route i of build_routes. */
static void request_for(size_t i, char *authority, size_t acap, char *path, size_t pcap)
{
    if (i % 10 < 6)
        snprintf(authority, acap, "h%zu.example.com:443", i / 10);
    else if (i % 10 < 9)
        snprintf(authority, acap, "app.w%zu.example.net", i);
    else
        snprintf(authority, acap, "other.example.org");
    snprintf(path, pcap, "/svc%zu/api/v%zu/items/42?x=1", i % 10, i);
}

struct request {
    char authority[48];
    char path[64];
    size_t authority_len, path_len;
};

static double bench_route(size_t n, sp_time_t budget)
{
    struct request *reqs = sp_xcalloc(n, sizeof(*reqs));
    struct sp_config cfg;
    struct sp_router *r;
    char **strings;
    uint64_t iters = 0;
    sp_time_t start, now;

    build_routes(n, &cfg, &strings);
    if (sp_router_new(&cfg, &r) != 0)
        abort();
    for (size_t i = 0; i < n; i++) {
        request_for(i, reqs[i].authority, sizeof(reqs[i].authority), reqs[i].path,
                    sizeof(reqs[i].path));
        reqs[i].authority_len = strlen(reqs[i].authority);
        reqs[i].path_len = strlen(reqs[i].path);
    }
    start = sp_time_now();
    do {
        for (int k = 0; k < 256; k++, iters++) {
            size_t i = (size_t)((iters * 2654435761u) % n);
            const struct request *q = &reqs[i];
            int up =
                sp_router_match(r, q->authority, q->authority_len, q->path, q->path_len, "GET", 3);

            if (up != (int)i)
                abort(); /* the benchmark measures correct lookups only */
            sink += (size_t)up;
        }
        now = sp_time_now();
    } while (now - start < budget);
    sp_router_free(r);
    for (size_t i = 0; i < 2 * n; i++)
        free(strings[i]);
    free(strings);
    free(cfg.upstreams[0].routes);
    free(cfg.upstreams);
    free(reqs);
    return (double)(now - start) / (double)iters;
}

int main(int argc, char **argv)
{
    sp_time_t budget = (argc > 1 ? (sp_time_t)strtoul(argv[1], NULL, 10) : 200) * SP_MS;

    printf("%-22s", "ns/pick");
    for (size_t j = 0; j < SP_ARRAY_LEN(backend_counts); j++)
        printf("%10zu", backend_counts[j]);
    printf("   backends\n");
    for (size_t s = 0; s < SP_ARRAY_LEN(strategies); s++) {
        printf("%-22s", strategies[s]);
        for (size_t j = 0; j < SP_ARRAY_LEN(backend_counts); j++)
            printf("%10.1f", bench_pick(strategies[s], backend_counts[j], budget));
        printf("\n");
    }
    printf("\n%-22s", "ns/route lookup");
    for (size_t j = 0; j < SP_ARRAY_LEN(route_counts); j++)
        printf("%10zu", route_counts[j]);
    printf("   routes\n%-22s", "sp_router_match");
    for (size_t j = 0; j < SP_ARRAY_LEN(route_counts); j++)
        printf("%10.1f", bench_route(route_counts[j], budget));
    printf("\n");
    return 0;
}
