#include "core/log.h"
#include "core/time.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int min_level = SP_LOG_LEVEL_INFO;
static atomic_int out_format = SP_LOG_FORMAT_TEXT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static _Thread_local int log_worker = -1;

void sp_log_set_worker(int id)
{
    log_worker = id;
}

void sp_log_configure(enum sp_log_level level, enum sp_log_format format)
{
    atomic_store(&min_level, (int)level);
    atomic_store(&out_format, (int)format);
}

bool sp_log_enabled(enum sp_log_level level)
{
    return (int)level >= atomic_load_explicit(&min_level, memory_order_relaxed);
}

int sp_log_level_parse(const char *s, enum sp_log_level *ret_level)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *ret_level = (enum sp_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

char *sp_log_escape(char *out, size_t cap, const char *s, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return out;
}

bool sp_log_limit_allow(struct sp_log_limit *l, sp_time_t now, uint64_t *ret_suppressed)
{
    if (now - l->window_start >= SP_SEC) {
        l->window_start = now;
        l->lines = 0;
    }
    if (l->lines >= SP_LOG_LIMIT_PER_SEC) {
        l->suppressed++;
        return false;
    }
    l->lines++;
    *ret_suppressed = l->suppressed;
    l->suppressed = 0;
    return true;
}

static void write_line(enum sp_log_level level, const char *area, const char *body);

void sp_log_write(enum sp_log_level level, const char *area, const char *fmt, ...)
{
    char body[3072];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (n >= 0)
        write_line(level, area, body);
}

void sp_log_write_suppressed(enum sp_log_level level, const char *area, uint64_t suppressed,
                             const char *fmt, ...)
{
    char body[3072];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (suppressed > 0 && (size_t)n < sizeof(body))
        snprintf(body + n, sizeof(body) - (size_t)n, " suppressed=%llu",
                 (unsigned long long)suppressed);
    write_line(level, area, body);
}

static void write_line(enum sp_log_level level, const char *area, const char *body)
{
    char line[4096];
    char esc[3584];
    char ts[40], wk[24] = "";
    sp_time_t now = sp_time_wall();
    time_t secs = (time_t)(now / SP_SEC);
    struct tm tm;
    int n;

    gmtime_r(&secs, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    if (atomic_load_explicit(&out_format, memory_order_relaxed) == SP_LOG_FORMAT_JSON) {
        if (log_worker >= 0)
            snprintf(wk, sizeof(wk), "\"worker\":%d,", log_worker);
        sp_log_escape(esc, sizeof(esc), body, strlen(body));
        n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%s.%03uZ\",\"level\":\"%s\",\"area\":\"%s\",%s\"msg\":\"%s\"}\n",
                     ts, (unsigned)((now % SP_SEC) / SP_MS), level_names[level], area, wk, esc);
    } else {
        if (log_worker >= 0)
            snprintf(wk, sizeof(wk), " worker=%d", log_worker);
        n = snprintf(line, sizeof(line), "ts=%s.%03uZ level=%s area=%s%s %s\n", ts,
                     (unsigned)((now % SP_SEC) / SP_MS), level_names[level], area, wk, body);
    }
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line)) {
        n = (int)sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    /* One write(2) per line so lines from different threads never interleave. */
    (void)!write(STDERR_FILENO, line, (size_t)n);
}
