/* window.h: a sliding time window of request outcomes (requests and failures), for the failure
 * ratios of the circuit breaker and of passive health. Pure: now is a parameter; no allocation,
 * callers embed it.
 *
 * The window is SP_WINDOW_BUCKETS buckets of window_ns / SP_WINDOW_BUCKETS each, keyed by
 * now / bucket_ns; a count covers the current, partly elapsed bucket and the buckets before it,
 * so it spans between (SP_WINDOW_BUCKETS - 1) and SP_WINDOW_BUCKETS bucket lengths. */
#ifndef SP_POLICY_WINDOW_H
#define SP_POLICY_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#include "core/time.h"

#define SP_WINDOW_BUCKETS 10

struct sp_window_bucket {
    uint64_t epoch;    /* now / bucket_ns of the outcomes counted here */
    uint64_t requests; /* outcomes in this bucket */
    uint64_t failures; /* of which failures */
};

struct sp_window {
    sp_time_t bucket_ns; /* window_ns / SP_WINDOW_BUCKETS; 0 = disabled (counts stay zero) */
    struct sp_window_bucket b[SP_WINDOW_BUCKETS]; /* ring indexed by epoch % SP_WINDOW_BUCKETS */
};

/* Sets up an empty window of window_ns; 0 disables it (adds are ignored, counts are zero).
 * Returns 0, or -EINVAL when 0 < window_ns < SP_WINDOW_BUCKETS (buckets would be empty). */
int sp_window_init(struct sp_window *w, sp_time_t window_ns);

/* Forgets every outcome; keeps the length. */
void sp_window_reset(struct sp_window *w);

/* Counts one outcome at now. */
void sp_window_add(struct sp_window *w, bool ok, sp_time_t now);

/* Writes the requests and failures counted in the window ending at now. */
void sp_window_counts(const struct sp_window *w, sp_time_t now, uint64_t *ret_requests,
                      uint64_t *ret_failures);

/* Returns true when the window at now holds at least min_requests outcomes (0 counts as 1) and
 * failures are at least pct percent of them. pct == 0 means the check is off: false. */
bool sp_window_ratio_reached(const struct sp_window *w, sp_time_t now, unsigned pct,
                             uint64_t min_requests);

#endif
