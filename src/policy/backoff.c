/* backoff.c: capped exponential backoff with full and equal jitter. */
#include "policy/backoff.h"

sp_time_t sp_backoff_ceiling(sp_time_t base_ns, sp_time_t cap_ns, unsigned attempt)
{
    if (base_ns >= cap_ns)
        return cap_ns;
    /* base * 2^attempt > cap  <=>  base > cap >> attempt; checked before shifting so that no
     * attempt number can overflow. */
    if (attempt >= 64 || base_ns > (cap_ns >> attempt))
        return cap_ns;
    return base_ns << attempt;
}

/* Uniform in [0, max]: the high 64 bits of rnd * (max + 1), Lemire's multiply-shift. Its bias is
 * below 2^-64 * (max + 1), far under anything a delay can notice. */
static sp_time_t scale(uint64_t rnd, sp_time_t max)
{
    if (max == UINT64_MAX)
        return rnd;
    return (sp_time_t)(((unsigned __int128)rnd * (max + 1)) >> 64);
}

sp_time_t sp_backoff_delay(sp_time_t base_ns, sp_time_t cap_ns, unsigned attempt, uint64_t rnd)
{
    return scale(rnd, sp_backoff_ceiling(base_ns, cap_ns, attempt));
}

sp_time_t sp_backoff_delay_equal(sp_time_t base_ns, sp_time_t cap_ns, unsigned attempt,
                                 uint64_t rnd)
{
    sp_time_t ceiling = sp_backoff_ceiling(base_ns, cap_ns, attempt);
    sp_time_t half = ceiling / 2;

    return half + scale(rnd, ceiling - half);
}
