/* breaker.h: per-backend circuit breaker (issue 5, DESIGN.md §5).
 *
 *   CLOSED    --max_failures consecutive failures, or failure_ratio_pct of at least
 *               min_requests outcomes in the last window_ns-->                    OPEN
 *   OPEN      --open time elapsed, seen by sp_breaker_allow-->                    HALF_OPEN
 *   HALF_OPEN --half_open_successes successes-->                                 CLOSED
 *   HALF_OPEN --any failure-->                                                    OPEN (longer)
 *
 * The open time is open_ns on the first opening and doubles on each reopening without a close in
 * between, up to max_open_ns; closing resets it. HALF_OPEN admits at most half_open_quota trial
 * requests in flight at a time. Independently of the state, a breaker caps the requests in flight
 * (max_concurrent) to its backend (the pool caps the requests waiting for it: breaker.max_pending).
 *
 * Use, per request: v = sp_breaker_allow(); if v != SP_BREAKER_ALLOW the backend is skipped (503
 * with retry-after when none is left). Otherwise exactly one sp_breaker_release when the request
 * is over, preceded by
 * sp_breaker_report for outcomes that say something about the backend (sp_err_is_backend classes
 * as failures, complete responses as successes; client aborts are not reported).
 *
 * Pure: never reads a clock (now is a parameter), never logs, never locks. A breaker belongs to
 * one thread; the caller logs transitions (compare sp_breaker_state before and after a call, and
 * read sp_breaker_reason). */
#ifndef SP_POLICY_BREAKER_H
#define SP_POLICY_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/time.h"

enum sp_breaker_state {
    SP_BREAKER_CLOSED = 0,    /* traffic flows; outcomes are watched */
    SP_BREAKER_OPEN = 1,      /* every request is rejected until the open time has elapsed */
    SP_BREAKER_HALF_OPEN = 2, /* a quota of trial requests decides */
};
#define SP_BREAKER_STATE_COUNT 3

enum sp_breaker_verdict {
    SP_BREAKER_ALLOW = 0,              /* go ahead; sp_breaker_release when done */
    SP_BREAKER_REJECT_OPEN = 1,        /* the breaker is open */
    SP_BREAKER_REJECT_HALF_OPEN = 2,   /* half-open and the trial quota is in flight */
    SP_BREAKER_REJECT_CONCURRENCY = 3, /* max_concurrent requests already in flight */
};
#define SP_BREAKER_VERDICT_COUNT 4

struct sp_breaker_conf {
    unsigned max_failures;        /* consecutive failures that open; 0 = this trigger is off */
    unsigned failure_ratio_pct;   /* 1..100: failure share in the window that opens; 0 = off */
    unsigned min_requests;        /* outcomes the window needs before the ratio counts */
    sp_time_t window_ns;          /* ratio window; required (>= 10 ns) when the ratio is on */
    sp_time_t open_ns;            /* open time of the first opening; > 0 */
    sp_time_t max_open_ns;        /* cap of the doubled open time; 0 = open_ns (no backoff) */
    unsigned half_open_quota;     /* trial requests in flight at once when half-open; 0 = 1 */
    unsigned half_open_successes; /* trial successes that close; 0 = 1 */
    unsigned max_concurrent;      /* requests in flight to the backend; 0 = unlimited */
};

/* Counters the caller reads for metrics and tests; monotonic. */
struct sp_breaker_stats {
    uint64_t transitions[SP_BREAKER_STATE_COUNT][SP_BREAKER_STATE_COUNT]; /* [from][to] */
    uint64_t verdicts[SP_BREAKER_VERDICT_COUNT]; /* answers of sp_breaker_allow */
    uint64_t opened_by_failures;                 /* CLOSED -> OPEN on consecutive failures */
    uint64_t opened_by_ratio;                    /* CLOSED -> OPEN on the failure ratio */
    uint64_t successes;                          /* sp_breaker_report(ok = true) */
    uint64_t failures;                           /* sp_breaker_report(ok = false) */
};

struct sp_breaker;

/* Creates a CLOSED breaker with a copy of conf (borrowed for the call, defaults applied).
 * On success returns 0 and *ret_breaker (owned by the caller, free with sp_breaker_free).
 * Returns -EINVAL, *ret_breaker untouched, when conf or ret_breaker is NULL, open_ns is 0,
 * max_open_ns is below open_ns (and not 0), failure_ratio_pct is above 100, or the ratio is on
 * with window_ns < 10. Any thread; the breaker then belongs to one. */
int sp_breaker_new(const struct sp_breaker_conf *conf, struct sp_breaker **ret_breaker);

/* Frees b. NULL is fine. */
void sp_breaker_free(struct sp_breaker *b);

/* Asks to send one request at now. First moves OPEN -> HALF_OPEN once the open time has elapsed.
 * SP_BREAKER_ALLOW counts the request in flight (and as a trial when half-open): the caller must
 * call sp_breaker_release exactly once for it. Any other verdict counts nothing in flight. */
enum sp_breaker_verdict sp_breaker_allow(struct sp_breaker *b, sp_time_t now);

/* Feeds the outcome of a request admitted earlier (in any state; outcomes reaching an OPEN
 * breaker are counted in stats and otherwise ignored). May open or close the breaker. */
void sp_breaker_report(struct sp_breaker *b, bool ok, sp_time_t now);

/* An admitted request is over (after its report, if any): frees its concurrency slot and, when
 * half-open, its trial slot. */
void sp_breaker_release(struct sp_breaker *b);

/* Returns the current state (OPEN stays OPEN here until sp_breaker_allow sees the time pass). */
enum sp_breaker_state sp_breaker_state(const struct sp_breaker *b);

/* Returns when an OPEN breaker starts admitting trials (for a 503's retry-after), else 0. */
sp_time_t sp_breaker_retry_at(const struct sp_breaker *b);

/* Returns the reason of the last transition, a static string for the caller's single log line:
 * "initial", "consecutive_failures", "failure_ratio", "open_time_elapsed", "trial_failed" or
 * "trials_succeeded". */
const char *sp_breaker_reason(const struct sp_breaker *b);

/* Returns requests in flight (admitted, not released). */
unsigned sp_breaker_inflight(const struct sp_breaker *b);

/* Returns the counters; valid as long as b. */
const struct sp_breaker_stats *sp_breaker_stats(const struct sp_breaker *b);

/* Returns "closed", "open", "half_open" / "allow", "reject_open", "reject_half_open",
 * "reject_concurrency"; "unknown" outside the enums. Static strings. */
const char *sp_breaker_state_name(enum sp_breaker_state s);
const char *sp_breaker_verdict_name(enum sp_breaker_verdict v);

#endif
