/* time.h: the one place spooky reads a clock. All internal time is sp_time_t in nanoseconds,
 * the same unit as ngtcp2's ngtcp2_tstamp. */
#ifndef SP_CORE_TIME_H
#define SP_CORE_TIME_H

#include <stdint.h>

typedef uint64_t sp_time_t;

#define SP_NS ((sp_time_t)1)
#define SP_US ((sp_time_t)1000)
#define SP_MS ((sp_time_t)1000000)
#define SP_SEC ((sp_time_t)1000000000)

/* Returns CLOCK_MONOTONIC in ns. Any thread. */
sp_time_t sp_time_now(void);

/* Returns CLOCK_REALTIME in ns, for log timestamps only. Any thread. */
sp_time_t sp_time_wall(void);

#endif
