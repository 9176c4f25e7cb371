/* round_robin.c: smooth weighted round-robin, as in nginx (ngx_http_upstream_get_peer): on each
 * pick every eligible backend's current weight grows by its weight, the largest current weight
 * wins, and the winner pays back the total. Heavy backends are interleaved with light ones
 * instead of served in bursts, and with equal weights this is plain rotation. */
#include <errno.h>
#include <stdlib.h>

#include "core/util.h"
#include "lb/lb.h"

struct rr_state {
    size_t n;          /* number of backends */
    int64_t current[]; /* per backend; sums to 0 over eligible backends after each pick */
};

static int rr_new_state(size_t nbackends, void **ret_state)
{
    struct rr_state *s;

    if (nbackends > (SIZE_MAX - sizeof(*s)) / sizeof(s->current[0]))
        return -ENOMEM;
    s = sp_xcalloc(1, sizeof(*s) + nbackends * sizeof(s->current[0]));
    s->n = nbackends;
    *ret_state = s;
    return 0;
}

static int rr_pick(void *state, const struct sp_lb_backend *b, size_t n, uint64_t now_ns,
                   size_t *ret_index)
{
    struct rr_state *s = state;
    int64_t total = 0;
    size_t best = SIZE_MAX;

    (void)now_ns; /* rotation does not depend on time */
    for (size_t i = 0; i < n && i < s->n; i++) {
        int64_t w = b[i].weight ? b[i].weight : 1;

        if (!b[i].eligible) {
            /* Rejoin from zero when it comes back, without a debt or a head start. */
            s->current[i] = 0;
            continue;
        }
        s->current[i] += w;
        total += w;
        if (best == SIZE_MAX || s->current[i] > s->current[best])
            best = i; /* ties go to the lowest index */
    }
    if (best == SIZE_MAX)
        return -EAGAIN;
    s->current[best] -= total;
    *ret_index = best;
    return 0;
}

static void rr_free_state(void *state)
{
    free(state);
}

const struct sp_lb_ops sp_lb_round_robin_ops = {
    .name = "round_robin",
    .new_state = rr_new_state,
    .pick = rr_pick,
    .free_state = rr_free_state,
};
