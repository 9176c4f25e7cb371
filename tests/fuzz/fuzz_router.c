/* libFuzzer target: route lookup on client-controlled :authority, :path and :method.
 * Input: three fields separated by NUL bytes. The routes are fixed and cover every host class. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config/config.h"
#include "proxy/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *methods_get[] = {"GET", "HEAD"};

static struct sp_route_conf routes[] = {
    {.host = "a.example", .path_prefix = "/", .methods = NULL, .methods_count = 0},
    {.host = "*.example", .path_prefix = "/api", .methods = methods_get, .methods_count = 2},
    {.host = "[::1]", .path_prefix = "/v6/", .methods = NULL, .methods_count = 0},
    {.host = NULL, .path_prefix = "/static/", .methods = NULL, .methods_count = 0},
    {.host = NULL, .path_prefix = "/", .methods = methods_get, .methods_count = 2},
};

static struct sp_upstream_conf upstreams[] = {
    {.name = "a", .routes = &routes[0], .routes_count = 2},
    {.name = "b", .routes = &routes[2], .routes_count = 3},
};

static struct sp_config cfg = {.upstreams = upstreams, .upstreams_count = 2};

static size_t next_field(const uint8_t *data, size_t size, size_t off)
{
    const uint8_t *nul = memchr(data + off, 0, size - off);

    return nul != NULL ? (size_t)(nul - data) : size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sp_router *r;
    size_t a_end, p_end;
    int up;

    if (r == NULL && sp_router_new(&cfg, &r) != 0)
        return 0;
    a_end = next_field(data, size, 0);
    p_end = a_end < size ? next_field(data, size, a_end + 1) : size;
    up = sp_router_match(r, (const char *)data, a_end,
                         (const char *)data + (a_end < size ? a_end + 1 : size),
                         p_end - (a_end < size ? a_end + 1 : size),
                         (const char *)data + (p_end < size ? p_end + 1 : size),
                         size - (p_end < size ? p_end + 1 : size));
    if (up < -1 || up > 1)
        __builtin_trap();
    return 0;
}
