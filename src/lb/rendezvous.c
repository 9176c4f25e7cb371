/* rendezvous.c: weighted highest-random-weight (rendezvous) hashing. For key k, backend i scores
 * -w_i / ln(u_i) with u_i = h(k, id_i) mapped into (0, 1), and the highest score wins: each
 * backend wins a share of keys proportional to its weight, and removing a backend (or it becoming
 * ineligible) moves only the keys it won, each to the runner-up, leaving every other key where it
 * was (Schindelhauer & Schomaker, "Weighted distributed hash tables", 2005). With equal weights
 * the score order is the order of u, so no logarithm is taken. Identities hash the backend ids,
 * so keys keep their backend across reloads and workers. Without a key: weighted random.
 * Stateless. */
#include <stddef.h>

#include "lb/lb_strategy.h"

static int hrw_new_state(const struct sp_lb_params *p, size_t n, void **ret_state)
{
    (void)p;
    (void)n;
    *ret_state = NULL;
    return 0;
}

/* Maps a 64-bit hash to u in (0, 1): the top 53 bits, offset by half a step (never 0 or 1). */
static double unit_interval(uint64_t h)
{
    return ((double)(h >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static size_t pick_uniform(const struct sp_lb_pick_in *in)
{
    size_t best = 0;
    uint64_t best_h = 0;
    bool found = false;

    for (size_t i = 0; i < in->n; i++) {
        uint64_t h;

        if (in->w[i] == 0)
            continue;
        h = sp_lb_mix64(in->key_hash ^ in->id_hash[i]);
        if (!found || h > best_h) {
            best = i;
            best_h = h;
            found = true;
        }
    }
    return best;
}

static size_t pick_weighted(const struct sp_lb_pick_in *in)
{
    size_t best = 0;
    double best_score = 0;

    for (size_t i = 0; i < in->n; i++) {
        double score;

        if (in->w[i] == 0)
            continue;
        /* ln(u) < 0, so the score is positive; all eligible scores beat the initial 0 */
        score =
            -(double)in->w[i] / sp_lb_ln(unit_interval(sp_lb_mix64(in->key_hash ^ in->id_hash[i])));
        if (score > best_score) {
            best = i;
            best_score = score;
        }
    }
    return best;
}

static void hrw_pick(void *state, const struct sp_lb_pick_in *in, size_t *ret_index)
{
    (void)state;
    if (!in->has_key)
        *ret_index = sp_lb_pick_weighted(in);
    else if (in->uniform)
        *ret_index = pick_uniform(in);
    else
        *ret_index = pick_weighted(in);
}

static void hrw_free_state(void *state)
{
    (void)state;
}

const struct sp_lb_ops sp_lb_rendezvous_ops = {
    .name = "rendezvous",
    .uses_key = true,
    .new_state = hrw_new_state,
    .pick = hrw_pick,
    .free_state = hrw_free_state,
};
