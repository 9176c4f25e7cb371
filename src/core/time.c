#include "core/time.h"

#include <time.h>

static sp_time_t read_clock(clockid_t id)
{
    struct timespec ts;

    /* clock_gettime cannot fail for these clock ids on Linux. */
    (void)clock_gettime(id, &ts);
    return (sp_time_t)ts.tv_sec * SP_SEC + (sp_time_t)ts.tv_nsec;
}

sp_time_t sp_time_now(void)
{
    return read_clock(CLOCK_MONOTONIC);
}

sp_time_t sp_time_wall(void)
{
    return read_clock(CLOCK_REALTIME);
}
