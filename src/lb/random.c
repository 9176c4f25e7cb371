/* random.c: weighted random choice among eligible backends. Stateless: each pick draws from
 * sp_random_u64 (per-thread generator) and maps the draw onto the cumulative eligible weights. */
#include <errno.h>

#include "core/util.h"
#include "lb/lb.h"

static int random_new_state(size_t nbackends, void **ret_state)
{
    (void)nbackends;
    *ret_state = NULL;
    return 0;
}

/* Returns a uniform value in [0, bound), bound >= 1, rejecting the draws that would bias the
 * modulo towards small values. */
static uint64_t random_below(uint64_t bound)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;

    do {
        r = sp_random_u64();
    } while (r >= limit);
    return r % bound;
}

static int random_pick(void *state, const struct sp_lb_backend *b, size_t n, uint64_t now_ns,
                       size_t *ret_index)
{
    uint64_t total = 0;
    uint64_t r;

    (void)state;
    (void)now_ns; /* the draw does not depend on time */
    for (size_t i = 0; i < n; i++) {
        if (b[i].eligible)
            total += b[i].weight ? b[i].weight : 1;
    }
    if (total == 0)
        return -EAGAIN;
    r = random_below(total);
    for (size_t i = 0; i < n; i++) {
        uint64_t w = b[i].weight ? b[i].weight : 1;

        if (!b[i].eligible)
            continue;
        if (r < w) {
            *ret_index = i;
            return 0;
        }
        r -= w;
    }
    return -EAGAIN; /* unreachable: r < total */
}

static void random_free_state(void *state)
{
    (void)state;
}

const struct sp_lb_ops sp_lb_random_ops = {
    .name = "random",
    .new_state = random_new_state,
    .pick = random_pick,
    .free_state = random_free_state,
};
