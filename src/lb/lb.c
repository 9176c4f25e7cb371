/* lb.c: the strategy name table and the struct sp_lb wrapper around one strategy's state: effective
 * weights with slow start, eligibility transitions and backend identity hashes. */
#include "lb/lb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "lb/lb_strategy.h"

/* What the previous pick saw of a backend's eligibility. */
enum lb_seen {
    LB_SEEN_UNKNOWN = 0, /* never seen: the first sight starts no ramp (a new balancer) */
    LB_SEEN_DOWN = 1,
    LB_SEEN_UP = 2,
};

struct lb_slot {
    sp_time_t up_since; /* when it last went from ineligible to eligible */
    uint8_t seen;       /* enum lb_seen */
    bool ramping;       /* inside its slow start window since up_since */
};

struct sp_lb {
    const struct sp_lb_ops *ops; /* borrowed; static */
    void *state;                 /* owned through ops->free_state; may be NULL */
    size_t nbackends;            /* the n every pick must be called with */
    struct sp_lb_params params;  /* copy, defaults filled in */
    struct lb_slot *slots;       /* owned array of nbackends */
    uint64_t *weights;           /* owned array of nbackends: scratch for the current pick */
    uint64_t *id_hash;           /* owned array of nbackends */
};

/* The explicit name table, indexed by enum sp_lb_kind. Each strategy's name is its ops' name. */
static const struct sp_lb_ops *const strategies[] = {
    [SP_LB_ROUND_ROBIN] = &sp_lb_round_robin_ops,
    [SP_LB_WEIGHTED_ROUND_ROBIN] = &sp_lb_weighted_round_robin_ops,
    [SP_LB_RANDOM] = &sp_lb_random_ops,
    [SP_LB_LEAST_CONN] = &sp_lb_least_conn_ops,
    [SP_LB_P2C] = &sp_lb_p2c_ops,
    [SP_LB_EWMA] = &sp_lb_ewma_ops,
    [SP_LB_RENDEZVOUS] = &sp_lb_rendezvous_ops,
};

const char *sp_lb_kind_name(enum sp_lb_kind kind)
{
    if ((size_t)kind >= SP_ARRAY_LEN(strategies))
        return NULL;
    return strategies[kind]->name;
}

const struct sp_lb_ops *sp_lb_ops_by_name(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < SP_ARRAY_LEN(strategies); i++) {
        if (strcmp(strategies[i]->name, name) == 0)
            return strategies[i];
    }
    return NULL;
}

static void hash_ids(struct sp_lb *lb, const char *const *ids)
{
    for (size_t i = 0; i < lb->nbackends; i++) {
        char num[24]; /* a size_t in decimal */
        int len;

        if (ids != NULL && ids[i] != NULL) {
            lb->id_hash[i] = sp_lb_hash(ids[i], strlen(ids[i]));
            continue;
        }
        len = snprintf(num, sizeof(num), "%zu", i);
        lb->id_hash[i] = sp_lb_hash(num, (size_t)len);
    }
}

int sp_lb_new_by_name(const char *name, const struct sp_lb_params *params, const char *const *ids,
                      size_t nbackends, struct sp_lb **ret)
{
    const struct sp_lb_ops *ops = sp_lb_ops_by_name(name);
    struct sp_lb *lb;
    int rv;

    if (ops == NULL || nbackends == 0)
        return -EINVAL;
    if (nbackends > SIZE_MAX / sizeof(struct lb_slot))
        return -ENOMEM;
    lb = sp_xcalloc(1, sizeof(*lb));
    lb->ops = ops;
    lb->nbackends = nbackends;
    if (params != NULL)
        lb->params = *params;
    if (lb->params.ewma_decay_ns == 0)
        lb->params.ewma_decay_ns = SP_LB_EWMA_DECAY_DEFAULT_NS;
    if (lb->params.ewma_initial_ns == 0)
        lb->params.ewma_initial_ns = SP_LB_EWMA_INITIAL_DEFAULT_NS;
    lb->slots = sp_xcalloc(nbackends, sizeof(lb->slots[0]));
    lb->weights = sp_xcalloc(nbackends, sizeof(lb->weights[0]));
    lb->id_hash = sp_xcalloc(nbackends, sizeof(lb->id_hash[0]));
    hash_ids(lb, ids);
    rv = ops->new_state(&lb->params, nbackends, &lb->state);
    if (rv < 0)
        goto out_free_lb;
    *ret = lb;
    return 0;

out_free_lb:
    lb->state = NULL; /* new_state wrote nothing */
    sp_lb_free(lb);
    return rv;
}

int sp_lb_new(enum sp_lb_kind kind, size_t nbackends, struct sp_lb **ret)
{
    const char *name = sp_lb_kind_name(kind);

    if (name == NULL)
        return -EINVAL;
    return sp_lb_new_by_name(name, NULL, NULL, nbackends, ret);
}

bool sp_lb_uses_key(const struct sp_lb *lb)
{
    return lb->ops->uses_key;
}

/* Notes an eligibility transition of backend i: false -> true at now starts its ramp and lets the
 * strategy forget stale state. */
static void track_eligibility(struct sp_lb *lb, size_t i, bool up, sp_time_t now)
{
    struct lb_slot *s = &lb->slots[i];

    if (up && s->seen == LB_SEEN_DOWN) {
        s->up_since = now;
        s->ramping = lb->params.slow_start_ns > 0;
        if (lb->ops->reset != NULL)
            lb->ops->reset(lb->state, i, now);
    }
    s->seen = up ? LB_SEEN_UP : LB_SEEN_DOWN;
}

/* Weight w of a backend in its slow start: times 10%..100% over the window, then w. */
static uint64_t ramp_weight(const struct sp_lb *lb, struct lb_slot *s, uint64_t w, sp_time_t now)
{
    sp_time_t elapsed = now > s->up_since ? now - s->up_since : 0;
    double ramp;

    if (elapsed >= lb->params.slow_start_ns) {
        s->ramping = false;
        return w;
    }
    ramp = 0.1 + 0.9 * (double)elapsed / (double)lb->params.slow_start_ns;
    w = (uint64_t)((double)w * ramp);
    return w > 0 ? w : 1;
}

static uint64_t thread_random(void *ctx)
{
    (void)ctx;
    return sp_random_u64();
}

/* Fills in from the view b[0..n): effective weights, their total, eligible count, uniformity.
 * The hot loop of every pick: transitions and ramps are the rare branches. */
static void build_input(struct sp_lb *lb, const struct sp_lb_backend *b, sp_time_t now,
                        struct sp_lb_pick_in *in)
{
    uint64_t first = 0, total = 0, *weights = lb->weights;
    size_t eligible = 0;
    bool uniform = true;

    for (size_t i = 0; i < lb->nbackends; i++) {
        struct lb_slot *s = &lb->slots[i];
        bool up = b[i].eligible;
        uint64_t w;

        if (s->seen != (up ? LB_SEEN_UP : LB_SEEN_DOWN))
            track_eligibility(lb, i, up, now);
        if (!up) {
            weights[i] = 0;
            continue;
        }
        w = (uint64_t)SP_MIN(SP_MAX(b[i].weight, 1u), SP_LB_WEIGHT_MAX) * SP_LB_WEIGHT_SCALE;
        if (s->ramping)
            w = ramp_weight(lb, s, w, now);
        first = eligible == 0 ? w : first;
        uniform &= w == first;
        eligible++;
        total += w;
        weights[i] = w;
    }
    *in = (struct sp_lb_pick_in){.b = b,
                                 .w = weights,
                                 .id_hash = lb->id_hash,
                                 .n = lb->nbackends,
                                 .eligible = eligible,
                                 .total = total,
                                 .uniform = uniform,
                                 .now = now,
                                 .random_u64 = lb->params.random_u64 != NULL ? lb->params.random_u64
                                                                             : thread_random,
                                 .random_ctx = lb->params.random_ctx};
}

int sp_lb_pick_key(struct sp_lb *lb, const struct sp_lb_backend *b, size_t n, const uint8_t *key,
                   size_t key_len, uint64_t now_ns, size_t *ret_index)
{
    struct sp_lb_pick_in in;
    size_t idx;

    if (n != lb->nbackends)
        return -EINVAL;
    build_input(lb, b, now_ns, &in);
    if (in.eligible == 0)
        return -EAGAIN;
    if (key != NULL && lb->ops->uses_key) {
        in.has_key = true;
        in.key_hash = sp_lb_hash(key, key_len);
    }
    lb->ops->pick(lb->state, &in, &idx);
    *ret_index = idx;
    return 0;
}

int sp_lb_pick(struct sp_lb *lb, const struct sp_lb_backend *b, size_t n, uint64_t now_ns,
               size_t *ret_index)
{
    return sp_lb_pick_key(lb, b, n, NULL, 0, now_ns, ret_index);
}

void sp_lb_report(struct sp_lb *lb, size_t index, sp_time_t latency_ns, bool ok, sp_time_t now_ns)
{
    if (index < lb->nbackends && lb->ops->report != NULL)
        lb->ops->report(lb->state, index, latency_ns, ok, now_ns);
}

void sp_lb_seed_rtt(struct sp_lb *lb, size_t index, sp_time_t rtt_ns)
{
    if (index < lb->nbackends && lb->ops->seed_rtt != NULL)
        lb->ops->seed_rtt(lb->state, index, rtt_ns);
}

void sp_lb_free(struct sp_lb *lb)
{
    if (lb == NULL)
        return;
    lb->ops->free_state(lb->state);
    lb->state = NULL;
    free(lb->id_hash);
    lb->id_hash = NULL;
    free(lb->weights);
    lb->weights = NULL;
    free(lb->slots);
    lb->slots = NULL;
    free(lb);
}
