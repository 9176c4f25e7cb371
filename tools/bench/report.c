/* report.c: spooky-bench's statistics: merging the threads' results and printing them as text
 * or as one JSON object. */
#include "bench.h"
#include "histogram.h"

#include "core/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

const char *const bench_err_names[BENCH_ERR_COUNT] = {
    [BENCH_ERR_RESET] = "reset",         [BENCH_ERR_REFUSED] = "refused",
    [BENCH_ERR_CONN_LOST] = "conn_lost", [BENCH_ERR_TIMEOUT] = "timeout",
    [BENCH_ERR_SUBMIT] = "submit",       [BENCH_ERR_BACKLOG] = "backlog",
    [BENCH_ERR_CONNECT] = "connect",     [BENCH_ERR_HANDSHAKE] = "handshake",
    [BENCH_ERR_GOAWAY] = "goaway",       [BENCH_ERR_CLOSED] = "closed",
};

/* Percentiles reported for latency and time to first byte, and their JSON keys. */
static const double pcts[] = {50, 90, 99, 99.9};
static const char *const pct_keys[] = {"p50", "p90", "p99", "p99_9"};

void bench_stats_init(struct bench_stats *st)
{
    *st = (struct bench_stats){0};
    st->latency = bench_hist_new();
    st->ttfb = bench_hist_new();
    st->handshake = bench_hist_new();
}

void bench_stats_fini(struct bench_stats *st)
{
    bench_hist_free(st->latency);
    st->latency = NULL;
    bench_hist_free(st->ttfb);
    st->ttfb = NULL;
    bench_hist_free(st->handshake);
    st->handshake = NULL;
}

void bench_stats_merge(struct bench_stats *dst, const struct bench_stats *src)
{
    dst->started += src->started;
    dst->succeeded += src->succeeded;
    dst->failed += src->failed;
    dst->errored += src->errored;
    dst->not_started += src->not_started;
    for (size_t i = 0; i < SP_ARRAY_LEN(dst->status); i++)
        dst->status[i] += src->status[i];
    for (size_t i = 0; i < BENCH_ERR_COUNT; i++)
        dst->errors[i] += src->errors[i];
    dst->conns_opened += src->conns_opened;
    dst->handshakes += src->handshakes;
    dst->handshakes_measured += src->handshakes_measured;
    dst->rx_bytes += src->rx_bytes;
    dst->body_bytes += src->body_bytes;
    if (dst->measure_start == 0 || src->measure_start < dst->measure_start)
        dst->measure_start = src->measure_start;
    dst->measure_end = SP_MAX(dst->measure_end, src->measure_end);
    bench_hist_merge(dst->latency, src->latency);
    bench_hist_merge(dst->ttfb, src->ttfb);
    bench_hist_merge(dst->handshake, src->handshake);
}

/* Measured seconds: from the end of the warm-up to the last measured response. */
static double elapsed_s(const struct bench_stats *st)
{
    if (st->measure_end <= st->measure_start)
        return 0;
    return (double)(st->measure_end - st->measure_start) / 1e9;
}

/* Complete responses (any status) per second. */
static double rps(const struct bench_stats *st)
{
    double s = elapsed_s(st);

    return s > 0 ? (double)(st->succeeded + st->failed - st->errored) / s : 0;
}

/* ---- text ---------------------------------------------------------------------------------- */

/* Formats a duration in ns with a unit that keeps 3-4 significant digits. */
static const char *fmt_ns(char *buf, size_t cap, double ns)
{
    if (ns < 1e6)
        snprintf(buf, cap, "%.1fus", ns / 1e3);
    else if (ns < 1e9)
        snprintf(buf, cap, "%.2fms", ns / 1e6);
    else
        snprintf(buf, cap, "%.3fs", ns / 1e9);
    return buf;
}

static const char *fmt_bytes(char *buf, size_t cap, double b)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;

    while (b >= 1024 && u + 1 < SP_ARRAY_LEN(units)) {
        b /= 1024;
        u++;
    }
    snprintf(buf, cap, "%.2f%s", b, units[u]);
    return buf;
}

static void text_hist_row(const char *name, const struct bench_hist *h)
{
    char b[32];

    printf("%-18s %10s", name, fmt_ns(b, sizeof(b), (double)bench_hist_min(h)));
    for (size_t i = 0; i < SP_ARRAY_LEN(pcts); i++)
        printf(" %10s", fmt_ns(b, sizeof(b), (double)bench_hist_percentile(h, pcts[i])));
    printf(" %10s", fmt_ns(b, sizeof(b), (double)bench_hist_max(h)));
    printf(" %10s  (%" PRIu64 ")\n", fmt_ns(b, sizeof(b), bench_hist_mean(h)), bench_hist_count(h));
}

static void text_counts(const struct bench_stats *st)
{
    const char *sep = "";

    printf("requests: %" PRIu64 " total, %" PRIu64 " succeeded, %" PRIu64 " failed, %" PRIu64
           " errored, %" PRIu64 " not started\n",
           st->started, st->succeeded, st->failed, st->errored, st->not_started);
    printf("status codes:");
    for (size_t i = 0; i < SP_ARRAY_LEN(st->status); i++) {
        if (st->status[i] != 0)
            printf(" %zu x%" PRIu64, i, st->status[i]);
    }
    printf("\nerrors:");
    for (size_t i = 0; i < BENCH_ERR_COUNT; i++) {
        if (st->errors[i] != 0) {
            printf("%s %s %" PRIu64, sep, bench_err_names[i], st->errors[i]);
            sep = ",";
        }
    }
    printf("%s\n", sep[0] != '\0' ? "" : " none");
}

static void print_text(const struct bench_opts *o, const struct bench_stats *st)
{
    double s = elapsed_s(st);
    char b1[32], b2[32], b3[32];

    printf("spooky-bench %s: https://%s%s%s\n", SPOOKY_VERSION, o->authority, o->paths[0],
           o->npaths > 1 ? " (and more URLs)" : "");
    printf("load: %u connections x %u streams, %u threads, %s\n", o->conns, o->streams, o->threads,
           o->rate > 0 ? "open loop (--rate)" : "closed loop");
    printf("finished in %.3fs, %.2f req/s, %s/s received (%s body)\n", s, rps(st),
           fmt_bytes(b1, sizeof(b1), s > 0 ? (double)st->rx_bytes / s : 0),
           fmt_bytes(b2, sizeof(b2), (double)st->body_bytes));
    text_counts(st);
    printf("connections: %" PRIu64 " opened, %" PRIu64 " handshakes (%.2f/s measured); "
           "handshake min %s mean %s max %s\n",
           st->conns_opened, st->handshakes, s > 0 ? (double)st->handshakes_measured / s : 0,
           fmt_ns(b1, sizeof(b1), (double)bench_hist_min(st->handshake)),
           fmt_ns(b2, sizeof(b2), bench_hist_mean(st->handshake)),
           fmt_ns(b3, sizeof(b3), (double)bench_hist_max(st->handshake)));
    printf("%-18s %10s %10s %10s %10s %10s %10s %10s  (count)\n", "", "min", "p50", "p90", "p99",
           "p99.9", "max", "mean");
    text_hist_row("time to 1st byte", st->ttfb);
    text_hist_row("request latency", st->latency);
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static void json_hist(const char *key, const struct bench_hist *h, bool with_pcts)
{
    printf("\"%s\": {\"count\": %" PRIu64 ", \"min\": %.3f, \"mean\": %.3f, \"max\": %.3f", key,
           bench_hist_count(h), (double)bench_hist_min(h) / 1e3, bench_hist_mean(h) / 1e3,
           (double)bench_hist_max(h) / 1e3);
    for (size_t i = 0; with_pcts && i < SP_ARRAY_LEN(pcts); i++)
        printf(", \"%s\": %.3f", pct_keys[i], (double)bench_hist_percentile(h, pcts[i]) / 1e3);
    printf("}");
}

/* Writes s as a JSON string (the URL parts are the only free text). */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", (unsigned char)*s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void json_config(const struct bench_opts *o)
{
    printf("\"config\": {\"authority\": ");
    json_str(o->authority);
    printf(", \"paths\": [");
    for (size_t i = 0; i < o->npaths; i++) {
        printf("%s", i ? ", " : "");
        json_str(o->paths[i]);
    }
    printf("], \"requests\": %" PRIu64 ", \"duration_s\": %g, \"connections\": %u, "
           "\"max_streams\": %u, \"threads\": %u, \"rate\": %g, \"warm_up_s\": %g, "
           "\"body_bytes\": %zu, \"conn_requests\": %" PRIu64 ", \"hold_s\": %g}",
           o->requests, o->duration_s, o->conns, o->streams, o->threads, o->rate, o->warmup_s,
           o->body_len, o->conn_requests, o->hold_s);
}

static void json_counts(const struct bench_stats *st)
{
    const char *sep = "";

    printf("\"requests\": {\"total\": %" PRIu64 ", \"succeeded\": %" PRIu64 ", \"failed\": %" PRIu64
           ", \"errored\": %" PRIu64 ", \"not_started\": %" PRIu64 "}, \"status\": {",
           st->started, st->succeeded, st->failed, st->errored, st->not_started);
    for (size_t i = 0; i < SP_ARRAY_LEN(st->status); i++) {
        if (st->status[i] != 0) {
            printf("%s\"%zu\": %" PRIu64, sep, i, st->status[i]);
            sep = ", ";
        }
    }
    printf("}, \"errors\": {");
    for (size_t i = 0; i < BENCH_ERR_COUNT; i++)
        printf("%s\"%s\": %" PRIu64, i ? ", " : "", bench_err_names[i], st->errors[i]);
    printf("}");
}

static void print_json(const struct bench_opts *o, const struct bench_stats *st)
{
    double s = elapsed_s(st);

    printf("{\"tool\": \"spooky-bench\", \"version\": \"%s\", ", SPOOKY_VERSION);
    json_config(o);
    printf(", \"elapsed_s\": %.6f, \"req_per_s\": %.3f, \"rx_bytes\": %" PRIu64
           ", \"rx_bytes_per_s\": %.1f, \"body_bytes\": %" PRIu64 ", ",
           s, rps(st), st->rx_bytes, s > 0 ? (double)st->rx_bytes / s : 0, st->body_bytes);
    json_counts(st);
    printf(", \"connections\": {\"opened\": %" PRIu64 ", \"handshakes\": %" PRIu64 "}, "
           "\"handshakes_measured\": %" PRIu64 ", \"handshakes_per_s\": %.3f, ",
           st->conns_opened, st->handshakes, st->handshakes_measured,
           s > 0 ? (double)st->handshakes_measured / s : 0);
    json_hist("handshake_us", st->handshake, false);
    printf(", ");
    json_hist("ttfb_us", st->ttfb, true);
    printf(", ");
    json_hist("latency_us", st->latency, true);
    printf("}\n");
}

void bench_report_print(const struct bench_opts *o, const struct bench_stats *st)
{
    if (o->json)
        print_json(o, st);
    else
        print_text(o, st);
    (void)fflush(stdout);
}
