/* seeded.h: a seeded random source for unit tests (issue 11: no unseeded randomness in unit
 * tests), splitmix64, handed to the code under test where it takes one (sp_lb_params). Each test
 * program that includes it starts from the same seed, so every run draws the same numbers. */
#ifndef SP_TESTS_SEEDED_H
#define SP_TESTS_SEEDED_H

#include <stdint.h>

#include "lb/lb.h"

static uint64_t seeded_state = 0x5eed5eed5eed5eedULL;

static inline uint64_t seeded_u64(void *ctx)
{
    uint64_t *s = ctx, z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Balancer parameters with nothing but the seeded random source. */
static inline struct sp_lb_params seeded_lb_params(void)
{
    return (struct sp_lb_params){.random_u64 = seeded_u64, .random_ctx = &seeded_state};
}

/* sp_lb_new with the seeded random source. */
static inline int seeded_lb_new(enum sp_lb_kind kind, size_t n, struct sp_lb **ret)
{
    struct sp_lb_params p = seeded_lb_params();
    const char *name = sp_lb_kind_name(kind);

    return name == NULL ? -22 /* -EINVAL */ : sp_lb_new_by_name(name, &p, NULL, n, ret);
}

#endif
