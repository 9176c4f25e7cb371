/* window.c: the bucketed sliding window of outcomes. */
#include "policy/window.h"

#include <errno.h>
#include <string.h>

int sp_window_init(struct sp_window *w, sp_time_t window_ns)
{
    if (window_ns > 0 && window_ns < SP_WINDOW_BUCKETS)
        return -EINVAL;
    memset(w, 0, sizeof(*w));
    w->bucket_ns = window_ns / SP_WINDOW_BUCKETS;
    return 0;
}

void sp_window_reset(struct sp_window *w)
{
    memset(w->b, 0, sizeof(w->b));
}

void sp_window_add(struct sp_window *w, bool ok, sp_time_t now)
{
    uint64_t epoch;
    struct sp_window_bucket *b;

    if (w->bucket_ns == 0)
        return;
    epoch = now / w->bucket_ns;
    b = &w->b[epoch % SP_WINDOW_BUCKETS];
    /* A bucket from an older lap of the ring is recycled. One from a newer epoch means now went
     * backwards (a caller mixing clocks): count it there rather than erase newer outcomes. */
    if (b->epoch < epoch) {
        b->epoch = epoch;
        b->requests = 0;
        b->failures = 0;
    }
    b->requests++;
    if (!ok)
        b->failures++;
}

void sp_window_counts(const struct sp_window *w, sp_time_t now, uint64_t *ret_requests,
                      uint64_t *ret_failures)
{
    uint64_t requests = 0, failures = 0;

    if (w->bucket_ns > 0) {
        uint64_t epoch = now / w->bucket_ns;

        for (size_t i = 0; i < SP_WINDOW_BUCKETS; i++) {
            const struct sp_window_bucket *b = &w->b[i];

            if (b->epoch + SP_WINDOW_BUCKETS > epoch) {
                requests += b->requests;
                failures += b->failures;
            }
        }
    }
    *ret_requests = requests;
    *ret_failures = failures;
}

bool sp_window_ratio_reached(const struct sp_window *w, sp_time_t now, unsigned pct,
                             uint64_t min_requests)
{
    uint64_t requests, failures;

    if (pct == 0)
        return false;
    sp_window_counts(w, now, &requests, &failures);
    if (requests == 0 || requests < min_requests)
        return false;
    return failures * 100 >= (uint64_t)pct * requests;
}
