/* backoff.h: capped exponential backoff with jitter, for retries and health recovery attempts.
 * Pure: the random value is a parameter (callers pass sp_random_u64(); tests pass fixed values),
 * so the result is a function of the arguments alone. Any thread. */
#ifndef SP_POLICY_BACKOFF_H
#define SP_POLICY_BACKOFF_H

#include <stdint.h>

#include "core/time.h"

/* Returns the un-jittered delay of attempt `attempt` (0 = first): min(cap_ns, base_ns * 2^attempt),
 * without overflow for any attempt. cap_ns < base_ns means cap_ns wins. */
sp_time_t sp_backoff_ceiling(sp_time_t base_ns, sp_time_t cap_ns, unsigned attempt);

/* Full jitter (the AWS architecture blog's "full jitter"): a delay uniform in
 * [0, sp_backoff_ceiling(base_ns, cap_ns, attempt)] drawn from rnd, any 64-bit value. rnd 0 gives
 * 0 and UINT64_MAX gives the ceiling; the map is monotonic in rnd. For retries. */
sp_time_t sp_backoff_delay(sp_time_t base_ns, sp_time_t cap_ns, unsigned attempt, uint64_t rnd);

/* Equal jitter: half the ceiling plus a full-jitter draw over the other half, so the delay is in
 * [ceiling / 2, ceiling] and grows with every attempt until the cap. For health recovery attempts,
 * where a near-zero delay would hammer a backend that is still down. */
sp_time_t sp_backoff_delay_equal(sp_time_t base_ns, sp_time_t cap_ns, unsigned attempt,
                                 uint64_t rnd);

#endif
