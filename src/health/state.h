/* state.h: the per-backend health state machine (issue 5, DESIGN.md §5).
 *
 *   HEALTHY    --a failure meets a degrade threshold-->                         DEGRADED
 *   HEALTHY    --a failure meets an eject threshold, or the connection is lost--> UNHEALTHY
 *   HEALTHY    --a probe's RTT jumped (SLOW)-->                                  DEGRADED
 *   DEGRADED   --heal_successes consecutive successes, no threshold still met--> HEALTHY
 *   DEGRADED   --a failure meets an eject threshold, or the connection is lost--> UNHEALTHY
 *   UNHEALTHY  --a probe succeeds (active), or the ejection time passed
 *                (passive-only, seen by the next event or SP_HEALTH_EV_TICK)--> RECOVERING
 *   RECOVERING --rise consecutive successes-->                                  HEALTHY
 *   RECOVERING --any failure-->                                                 UNHEALTHY
 *
 * Degrade thresholds: degrade_failures consecutive passive failures, one failed probe, or
 * degrade_ratio_pct failures among at least min_requests outcomes in window_ns. Eject thresholds:
 * eject_failures consecutive passive failures, eject_5xx consecutive 5xx, probe_fall consecutive
 * failed probes, or eject_ratio_pct failures in the window. Active probes and passive signals are
 * counted apart: a passing /health does not excuse failing traffic, nor the reverse.
 *
 * Traffic: HEALTHY 100% of its weight, DEGRADED degraded_weight_pct, RECOVERING
 * recovering_weight_pct (trial traffic), UNHEALTHY none. While UNHEALTHY, recovery attempts
 * (probes, or passive readmissions) wait an equal-jittered exponential backoff from
 * recovery_base_ns up to recovery_cap_ns, doubling with each failed attempt; reaching HEALTHY
 * resets it. sp_health_next_probe_at says when the caller's probe timer should fire next.
 *
 * Pure: never reads a clock (now is a parameter), never logs, never locks; jitter comes from the
 * rnd argument (pass sp_random_u64()). A struct sp_health belongs to one thread (the health
 * thread), which publishes the state it reads here. Every transition is counted and recorded with
 * a reason, for the caller's single info log line. */
#ifndef SP_HEALTH_STATE_H
#define SP_HEALTH_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/time.h"
#include "policy/errclass.h"

enum sp_health_state {
    SP_HEALTH_HEALTHY = 0,    /* full weight */
    SP_HEALTH_DEGRADED = 1,   /* failing a little: reduced weight */
    SP_HEALTH_UNHEALTHY = 2,  /* no traffic; recovery attempts back off */
    SP_HEALTH_RECOVERING = 3, /* on probation: trial traffic until rise successes */
};
#define SP_HEALTH_STATE_COUNT 4

enum sp_health_event {
    SP_HEALTH_EV_PROBE_OK = 0,     /* an active probe got the expected status in time */
    SP_HEALTH_EV_PROBE_FAIL = 1,   /* an active probe failed (timeout, refused, wrong status) */
    SP_HEALTH_EV_OK = 2,           /* passive: a request got a complete non-5xx response */
    SP_HEALTH_EV_TIMEOUT = 3,      /* passive: a backend phase timed out */
    SP_HEALTH_EV_RESET = 4,        /* passive: stream reset, GOAWAY under it, malformed response */
    SP_HEALTH_EV_CONNECT_FAIL = 5, /* passive: connect or handshake failed */
    SP_HEALTH_EV_5XX = 6,          /* passive: a 5xx response */
    SP_HEALTH_EV_TICK = 7,         /* time passed: send at sp_health_next_probe_at when passive */
    SP_HEALTH_EV_CONN_LOST = 8,    /* passive: the transport says the backend is gone (ICMP
                                      unreachable, no ACK progress, connection refused): eject
                                      now, unless passive ejection is off (eject_failures 0) */
    SP_HEALTH_EV_SLOW = 9,         /* a probe's RTT jumped far above the backend's baseline:
                                      degrade a healthy backend (no ejection), hold off healing */
};
#define SP_HEALTH_EVENT_COUNT 10

/* Sentinel of sp_health_next_probe_at: nothing is scheduled. */
#define SP_HEALTH_NEVER UINT64_MAX

struct sp_health_conf {
    sp_time_t probe_interval_ns;    /* active probe cadence; 0 = passive only (no probes) */
    unsigned probe_fall;            /* consecutive failed probes that eject; >= 1 when probing */
    unsigned rise;                  /* consecutive successes that end RECOVERING; >= 1 */
    unsigned heal_successes;        /* consecutive successes that end DEGRADED; >= 1 */
    unsigned degrade_failures;      /* consecutive passive failures that degrade; 0 = off */
    unsigned eject_failures;        /* consecutive passive failures that eject; 0 = off */
    unsigned eject_5xx;             /* consecutive 5xx responses that eject; 0 = off */
    unsigned degrade_ratio_pct;     /* 1..100 failure share in the window that degrades; 0 = off */
    unsigned eject_ratio_pct;       /* 1..100 failure share in the window that ejects; 0 = off */
    unsigned min_requests;          /* outcomes the window needs before a ratio counts */
    sp_time_t window_ns;            /* ratio window; >= 10 ns when a ratio is on */
    unsigned degraded_weight_pct;   /* 1..100: weight factor while DEGRADED */
    unsigned recovering_weight_pct; /* 1..100: weight factor while RECOVERING; 0 = degraded's */
    sp_time_t recovery_base_ns;     /* first delay before a recovery attempt; > 0 */
    sp_time_t recovery_cap_ns;      /* cap of the doubling delay; >= recovery_base_ns */
};

/* One recorded transition. */
struct sp_health_transition {
    enum sp_health_state from;
    enum sp_health_state to;
    const char *reason; /* static: "initial", "consecutive_failures", "consecutive_5xx",
                           "probe_failures", "probe_failed", "failure_rate", "successes",
                           "probe_ok", "ejection_elapsed", "recovery_failed", "recovered",
                           "connection_lost", "rtt_jump" */
    sp_time_t at;       /* now of the event that caused it */
};

/* Counters the caller reads for metrics and tests; monotonic. */
struct sp_health_stats {
    uint64_t transitions[SP_HEALTH_STATE_COUNT][SP_HEALTH_STATE_COUNT]; /* [from][to] */
    uint64_t events[SP_HEALTH_EVENT_COUNT];                             /* sp_health_report calls */
    uint64_t failed_attempts; /* recovery attempts that failed (the backoff exponent's growth) */
};

struct sp_health;

/* Fills conf with spooky's defaults: probes every 2 s, fall 3, rise 2, heal 5, degrade after 2
 * and eject after 5 consecutive failures or 5 consecutive 5xx, degrade at 10% and eject at 50%
 * failures among at least 20 outcomes in 10 s, degraded weight 50%, recovery 1 s doubling to
 * 60 s. */
void sp_health_conf_default(struct sp_health_conf *conf);

/* Creates a HEALTHY machine with a copy of conf (borrowed for the call); the first probe is due
 * at now. On success returns 0 and *ret_health (owned by the caller, free with sp_health_free).
 * Returns -EINVAL, *ret_health untouched, for a NULL argument or a conf outside the ranges in
 * struct sp_health_conf. Any thread; the machine then belongs to one. */
int sp_health_new(const struct sp_health_conf *conf, sp_time_t now, struct sp_health **ret_health);

/* Frees h. NULL is fine. */
void sp_health_free(struct sp_health *h);

/* Feeds one event at now; rnd (any 64-bit value) jitters a recovery delay if one is scheduled.
 * Returns true when the state changed: the caller then logs sp_health_last once at info and
 * publishes sp_health_state / sp_health_weight_pct. */
bool sp_health_report(struct sp_health *h, enum sp_health_event ev, sp_time_t now, uint64_t rnd);

/* Maps a request's error class to its passive event: NONE -> OK, BACKEND_CONNECT -> CONNECT_FAIL,
 * BACKEND_PROTOCOL -> RESET, BACKEND_TIMEOUT -> TIMEOUT, BACKEND_5XX -> 5XX. Returns false (no
 * event: the backend is not to blame) for CLIENT and INTERNAL; *ret_ev is then untouched. */
bool sp_health_event_from_err(enum sp_err_class c, enum sp_health_event *ret_ev);

/* Returns the current state. */
enum sp_health_state sp_health_state(const struct sp_health *h);

/* Returns the last transition ("initial", from == to == HEALTHY, before any); valid as long as h.
 */
const struct sp_health_transition *sp_health_last(const struct sp_health *h);

/* Returns when the next active probe is due (UNHEALTHY: the next recovery attempt), or, in
 * passive-only mode, when an UNHEALTHY backend's readmission is due (SP_HEALTH_NEVER in the
 * other states). The caller arms its timer for it and, passive-only, sends SP_HEALTH_EV_TICK. */
sp_time_t sp_health_next_probe_at(const struct sp_health *h);

/* Returns true when the backend may get traffic at now: any state but UNHEALTHY, or UNHEALTHY in
 * passive-only mode once its readmission is due (the next event moves it to RECOVERING). */
bool sp_health_eligible(const struct sp_health *h, sp_time_t now);

/* Returns the weight factor in percent of the current state: 100 HEALTHY, degraded_weight_pct
 * DEGRADED, recovering_weight_pct RECOVERING, 0 UNHEALTHY. The balancer's effective weight is
 * weight * pct / 100 (at least 1 when eligible). */
unsigned sp_health_weight_pct(const struct sp_health *h);

/* Returns the failed recovery attempts since the backend was last HEALTHY. */
unsigned sp_health_attempts(const struct sp_health *h);

/* Returns the counters; valid as long as h. */
const struct sp_health_stats *sp_health_stats(const struct sp_health *h);

/* Panic mode (issue 5): returns true when fewer than panic_threshold_pct percent of the n
 * backends are HEALTHY or DEGRADED; the caller then balances across all of them rather than
 * overload the few. all: borrowed array of n non-NULL machines. Returns false for n == 0 or a
 * threshold of 0 (panic off). */
bool sp_health_panic(const struct sp_health *const *all, size_t n, unsigned panic_threshold_pct);

/* Returns "healthy", "degraded", "unhealthy", "recovering" / "probe_ok", "probe_fail", "ok",
 * "timeout", "reset", "connect_fail", "5xx", "tick", "conn_lost", "slow"; "unknown" outside the
 * enums.
 * Static. */
const char *sp_health_state_name(enum sp_health_state s);
const char *sp_health_event_name(enum sp_health_event ev);

#endif
