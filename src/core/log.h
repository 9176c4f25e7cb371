/* log.h: one line per event, key=value (text) or JSON. The caller formats the key=value body;
 * the logger adds time, level and area. Thread-safe: each line is written with one write(2). */
#ifndef SP_CORE_LOG_H
#define SP_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>

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

#define SP_LOG(lvl, area, ...)                                                                     \
    do {                                                                                           \
        if (sp_log_enabled(lvl))                                                                   \
            sp_log_write(lvl, area, __VA_ARGS__);                                                  \
    } while (0)
#define SP_LOG_DEBUG(area, ...) SP_LOG(SP_LOG_LEVEL_DEBUG, area, __VA_ARGS__)
#define SP_LOG_INFO(area, ...) SP_LOG(SP_LOG_LEVEL_INFO, area, __VA_ARGS__)
#define SP_LOG_WARN(area, ...) SP_LOG(SP_LOG_LEVEL_WARN, area, __VA_ARGS__)
#define SP_LOG_ERROR(area, ...) SP_LOG(SP_LOG_LEVEL_ERROR, area, __VA_ARGS__)

#endif
