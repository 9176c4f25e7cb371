/* log.h: one line per event, key=value (text) or JSON. The caller formats the key=value body;
 * the logger adds time, level and area. Thread-safe: each line is written with one write(2). */
#ifndef SP_CORE_LOG_H
#define SP_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/time.h"

enum sp_log_level {
    SP_LOG_LEVEL_DEBUG = 0,
    SP_LOG_LEVEL_INFO = 1,
    SP_LOG_LEVEL_WARN = 2,
    SP_LOG_LEVEL_ERROR = 3,
};

enum sp_log_format {
    SP_LOG_FORMAT_TEXT = 0,
    SP_LOG_FORMAT_JSON = 1,
};

/* Sets the minimum level and the output format. Called by main before workers start, and on
 * reload (the level is an atomic, so workers see the change without locks). */
void sp_log_configure(enum sp_log_level level, enum sp_log_format format);

/* Names the calling thread's worker (0-based): its lines carry worker=N, since health, breakers
 * and pools are per worker. -1 (the default) = not a worker. */
void sp_log_set_worker(int id);

/* Returns true when lines at `level` are written; lets callers skip building expensive args. */
bool sp_log_enabled(enum sp_log_level level);

/* Writes one line. `fmt` produces the key=value body (e.g. "backend=b1 err=timeout").
 * In JSON format the body is kept as one "msg" string field. Any thread. */
void sp_log_write(enum sp_log_level level, const char *area, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses "debug"/"info"/"warn"/"error". Returns 0 or -EINVAL. */
int sp_log_level_parse(const char *s, enum sp_log_level *ret_level);

/* Escapes `s` (up to len bytes) for use inside a quoted key="value": quotes, backslashes and
 * control bytes become escapes. Writes at most cap-1 bytes plus NUL into out; returns out. */
char *sp_log_escape(char *out, size_t cap, const char *s, size_t len);

/* A rate limit for one kind of line (one call site), per thread: lines a peer can trigger at
 * will (per request, per packet) must not flood the log. Zeroed is ready to use. */
struct sp_log_limit {
    sp_time_t window_start; /* start of the current one-second window */
    unsigned lines;         /* written in this window */
    uint64_t suppressed;    /* dropped since the last line written */
};

/* Lines each kind may write per second and thread before the rest are only counted. */
#define SP_LOG_LIMIT_PER_SEC 10

/* True when one more line of this kind may be written at now; then *ret_suppressed is how many
 * were dropped since the last one written (and the count starts over). Pure. */
bool sp_log_limit_allow(struct sp_log_limit *l, sp_time_t now, uint64_t *ret_suppressed);

/* sp_log_write plus " suppressed=N" when N > 0. */
void sp_log_write_suppressed(enum sp_log_level level, const char *area, uint64_t suppressed,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define SP_LOG(lvl, area, ...)                                                                     \
    do {                                                                                           \
        if (sp_log_enabled(lvl))                                                                   \
            sp_log_write(lvl, area, __VA_ARGS__);                                                  \
    } while (0)
#define SP_LOG_DEBUG(area, ...) SP_LOG(SP_LOG_LEVEL_DEBUG, area, __VA_ARGS__)
#define SP_LOG_INFO(area, ...) SP_LOG(SP_LOG_LEVEL_INFO, area, __VA_ARGS__)
#define SP_LOG_WARN(area, ...) SP_LOG(SP_LOG_LEVEL_WARN, area, __VA_ARGS__)
#define SP_LOG_ERROR(area, ...) SP_LOG(SP_LOG_LEVEL_ERROR, area, __VA_ARGS__)

/* A rate-limited line: at most SP_LOG_LIMIT_PER_SEC per second per call site and thread; the
 * next line written says how many were dropped (suppressed=N). */
#define SP_LOG_LIMITED(lvl, area, ...)                                                             \
    do {                                                                                           \
        static _Thread_local struct sp_log_limit lim_;                                             \
        uint64_t sup_;                                                                             \
        if (sp_log_enabled(lvl) && sp_log_limit_allow(&lim_, sp_time_now(), &sup_))                \
            sp_log_write_suppressed(lvl, area, sup_, __VA_ARGS__);                                 \
    } while (0)
#define SP_LOG_WARN_LIMITED(area, ...) SP_LOG_LIMITED(SP_LOG_LEVEL_WARN, area, __VA_ARGS__)

#endif
