/* histogram.c: log-linear buckets; see histogram.h for the layout and the error bound. */
#include "histogram.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define SUB_COUNT ((uint64_t)1 << BENCH_HIST_SUB_BITS)
/* Exact buckets [0, SUB_COUNT), then one block of SUB_COUNT buckets per power of two from
 * 2^SUB_BITS to 2^63. */
#define BUCKETS ((size_t)(64 - BENCH_HIST_SUB_BITS + 1) * SUB_COUNT)

struct bench_hist {
    uint64_t count;           /* samples recorded */
    uint64_t min;             /* exact; UINT64_MAX while empty */
    uint64_t max;             /* exact; 0 while empty */
    long double sum;          /* of all samples, for the mean */
    uint64_t counts[BUCKETS]; /* samples per bucket */
};

/* Bucket index of v. */
static size_t index_of(uint64_t v)
{
    unsigned msb, shift;

    if (v < SUB_COUNT)
        return (size_t)v;
    msb = 63u - (unsigned)__builtin_clzll(v); /* >= SUB_BITS */
    shift = msb - BENCH_HIST_SUB_BITS;
    return ((size_t)(shift + 1) << BENCH_HIST_SUB_BITS) + (size_t)((v >> shift) - SUB_COUNT);
}

/* Lowest value of bucket i and its width. */
static void bucket_range(size_t i, uint64_t *ret_low, uint64_t *ret_width)
{
    size_t block = i >> BENCH_HIST_SUB_BITS;
    uint64_t sub = (uint64_t)i & (SUB_COUNT - 1);

    if (block == 0) {
        *ret_low = (uint64_t)i;
        *ret_width = 1;
        return;
    }
    *ret_low = (SUB_COUNT + sub) << (block - 1);
    *ret_width = (uint64_t)1 << (block - 1);
}

struct bench_hist *bench_hist_new(void)
{
    struct bench_hist *h = sp_xmalloc(sizeof(*h));

    bench_hist_reset(h);
    return h;
}

void bench_hist_free(struct bench_hist *h)
{
    free(h);
}

void bench_hist_reset(struct bench_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void bench_hist_record(struct bench_hist *h, uint64_t v)
{
    h->counts[index_of(v)]++;
    h->count++;
    h->sum += (long double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
    if (src->count == 0)
        return;
    for (size_t i = 0; i < BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->sum += src->sum;
    dst->min = SP_MIN(dst->min, src->min);
    dst->max = SP_MAX(dst->max, src->max);
}

uint64_t bench_hist_count(const struct bench_hist *h)
{
    return h->count;
}

uint64_t bench_hist_min(const struct bench_hist *h)
{
    return h->count != 0 ? h->min : 0;
}

uint64_t bench_hist_max(const struct bench_hist *h)
{
    return h->max;
}

double bench_hist_mean(const struct bench_hist *h)
{
    return h->count != 0 ? (double)(h->sum / (long double)h->count) : 0.0;
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double pct)
{
    uint64_t rank, seen = 0, low, width, mid;
    double r;

    if (h->count == 0)
        return 0;
    /* The epsilon keeps 99.9% of 1000 at rank 999, not 1000 through rounding of 0.999. */
    r = ceil(SP_MIN(SP_MAX(pct, 0.0), 100.0) * (double)h->count / 100.0 - 1e-7);
    rank = SP_MAX((uint64_t)r, (uint64_t)1);
    rank = SP_MIN(rank, h->count);
    if (rank == 1)
        return h->min; /* the smallest and largest samples are known exactly */
    if (rank == h->count)
        return h->max;
    for (size_t i = index_of(h->min); i < BUCKETS; i++) {
        seen += h->counts[i];
        if (seen < rank)
            continue;
        bucket_range(i, &low, &width);
        mid = low + (width - 1) / 2;
        return SP_MIN(SP_MAX(mid, h->min), h->max);
    }
    return h->max; /* not reached: the counts sum to count */
}
