/* lb_util.c: helpers shared by the strategies: hashing, bounded random draws, the weighted draw,
 * and ln / e^-x without libm (spooky_lib does not link it, and these are only compared against
 * each other, so a short series is accurate enough). */
#include <string.h>

#include "core/util.h"
#include "lb/lb_strategy.h"

#define LN2 0.69314718055994530942
#define LOG2E 1.44269504088896340736
#define SQRT2 1.41421356237309504880

uint64_t sp_lb_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t rotl64(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

uint64_t sp_lb_hash(const void *data, size_t len)
{
    /* Murmur-style: each little-endian 8-byte word is mixed into the state, then the length and
     * a final avalanche. Fixed constants: the same bytes hash the same on every worker and host,
     * which rendezvous needs so that every worker sends a key to the same backend. */
    const uint8_t *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)len;

    while (len > 0) {
        uint64_t k = 0;
        size_t take = SP_MIN(len, sizeof(k));

        for (size_t i = 0; i < take; i++)
            k |= (uint64_t)p[i] << (8 * i);
        k *= 0x87c37b91114253d5ULL;
        k = rotl64(k, 31);
        k *= 0x4cf5ad432745937fULL;
        h ^= k;
        h = rotl64(h, 27) * 5 + 0x52dce729;
        p += take;
        len -= take;
    }
    return sp_lb_mix64(h);
}

uint64_t sp_lb_random_below(const struct sp_lb_pick_in *in, uint64_t bound)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;

    do {
        r = in->random_u64(in->random_ctx);
    } while (r >= limit);
    return r % bound;
}

double sp_lb_ln(double x)
{
    /* x = m * 2^e with m in [sqrt(1/2), sqrt(2)); ln(m) = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.172,
     * so the odd series to s^17 (Horner form, no division per term) is below 1e-14. */
    uint64_t bits;
    int e;
    double m, s, s2, sum;

    memcpy(&bits, &x, sizeof(bits));
    e = (int)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
    memcpy(&m, &bits, sizeof(m));
    if (m >= SQRT2) {
        m /= 2;
        e++;
    }
    s = (m - 1) / (m + 1);
    s2 = s * s;
    sum = 1.0 / 17;
    for (int k = 15; k >= 1; k -= 2)
        sum = sum * s2 + 1.0 / k; /* constant-folded once the loop is unrolled */
    return 2 * s * sum + e * LN2;
}

double sp_lb_exp_neg(double x)
{
    /* e^-x = 2^-k * e^-r with x = k ln2 + r, r in [0, ln2): Taylor to r^13 in Horner form is
     * below 1e-12, plenty for weighting samples. */
    static const double inv_fact[14] = {1.0,
                                        1.0,
                                        1.0 / 2,
                                        1.0 / 6,
                                        1.0 / 24,
                                        1.0 / 120,
                                        1.0 / 720,
                                        1.0 / 5040,
                                        1.0 / 40320,
                                        1.0 / 362880,
                                        1.0 / 3628800,
                                        1.0 / 39916800,
                                        1.0 / 479001600,
                                        1.0 / 6227020800.0};
    double y = x * LOG2E, r, sum = 0, scale;
    uint64_t bits;
    int k;

    if (!(x > 0))
        return 1;
    if (y > 1000)
        return 0;
    k = (int)y;
    r = -(x - k * LN2);
    for (int i = 13; i >= 0; i--)
        sum = sum * r + inv_fact[i];
    bits = (uint64_t)(1023 - k) << 52; /* 2^-k, k <= 1000: a normal double */
    memcpy(&scale, &bits, sizeof(scale));
    return sum * scale;
}

size_t sp_lb_pick_weighted(const struct sp_lb_pick_in *in)
{
    uint64_t r;

    if (in->uniform && in->eligible == in->n)
        return (size_t)sp_lb_random_below(in, in->n); /* every backend, same weight: O(1) */
    r = sp_lb_random_below(in, in->total);
    for (size_t i = 0; i < in->n; i++) {
        if (r < in->w[i])
            return i;
        r -= in->w[i];
    }
    return 0; /* unreachable: r < total = sum of w */
}
