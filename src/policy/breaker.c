/* breaker.c: the circuit breaker state machine. All state changes go through breaker_step (the
 * one transition function) and breaker_enter (the bookkeeping of entering a state). */
#include "policy/breaker.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "core/util.h"
#include "policy/backoff.h"
#include "policy/window.h"

/* What can move the machine. */
enum breaker_event {
    EV_SUCCESS,      /* a request succeeded */
    EV_FAILURE,      /* a request failed */
    EV_OPEN_ELAPSED, /* sp_breaker_allow saw the open time pass */
};

struct sp_breaker {
    struct sp_breaker_conf conf;   /* copy with defaults applied */
    enum sp_breaker_state state;   /* current state */
    const char *reason;            /* static; why the last transition happened */
    unsigned consecutive;          /* CLOSED: failures since the last success */
    struct sp_window window;       /* CLOSED: outcomes for the failure ratio */
    unsigned opens;                /* openings since the last close: the open time backoff */
    sp_time_t open_until;          /* OPEN: when sp_breaker_allow moves to HALF_OPEN */
    unsigned trial_successes;      /* HALF_OPEN: successes since entering */
    unsigned trials_inflight;      /* HALF_OPEN: trials admitted and not released */
    unsigned stale_inflight;       /* HALF_OPEN: requests admitted before it, not released */
    unsigned inflight;             /* admitted and not released */
    struct sp_breaker_stats stats; /* read by the caller */
};

static const char *const state_names[SP_BREAKER_STATE_COUNT] = {"closed", "open", "half_open"};
static const char *const verdict_names[SP_BREAKER_VERDICT_COUNT] = {
    "allow", "reject_open", "reject_half_open", "reject_concurrency"};

static int check_conf(const struct sp_breaker_conf *conf)
{
    if (conf->open_ns == 0 || (conf->max_open_ns != 0 && conf->max_open_ns < conf->open_ns))
        return -EINVAL;
    if (conf->failure_ratio_pct > 100)
        return -EINVAL;
    if (conf->failure_ratio_pct > 0 && conf->window_ns < SP_WINDOW_BUCKETS)
        return -EINVAL;
    return 0;
}

int sp_breaker_new(const struct sp_breaker_conf *conf, struct sp_breaker **ret_breaker)
{
    struct sp_breaker *b;
    int rv;

    if (conf == NULL || ret_breaker == NULL)
        return -EINVAL;
    rv = check_conf(conf);
    if (rv < 0)
        return rv;
    b = sp_xcalloc(1, sizeof(*b));
    b->conf = *conf;
    if (b->conf.max_open_ns == 0)
        b->conf.max_open_ns = b->conf.open_ns;
    if (b->conf.half_open_quota == 0)
        b->conf.half_open_quota = 1;
    if (b->conf.half_open_successes == 0)
        b->conf.half_open_successes = 1;
    /* With the ratio off the window stays disabled (window_ns 0) and costs nothing. */
    rv = sp_window_init(&b->window, conf->failure_ratio_pct > 0 ? conf->window_ns : 0);
    if (rv < 0)
        goto out_free_breaker;
    b->state = SP_BREAKER_CLOSED;
    b->reason = "initial";
    *ret_breaker = b;
    return 0;

out_free_breaker:
    free(b);
    return rv;
}

void sp_breaker_free(struct sp_breaker *b)
{
    free(b);
}

static sp_time_t add_sat(sp_time_t a, sp_time_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Bookkeeping of entering `to`: what each state starts from. */
static void breaker_enter(struct sp_breaker *b, enum sp_breaker_state to, const char *reason,
                          sp_time_t now)
{
    b->stats.transitions[b->state][to]++;
    b->state = to;
    b->reason = reason;
    b->consecutive = 0;
    b->trial_successes = 0;
    b->trials_inflight = 0;
    b->stale_inflight = 0;
    switch (to) {
    case SP_BREAKER_CLOSED:
        /* A fresh start: outcomes from before the opening would reopen it at once. */
        sp_window_reset(&b->window);
        b->opens = 0;
        break;
    case SP_BREAKER_OPEN:
        b->open_until =
            add_sat(now, sp_backoff_ceiling(b->conf.open_ns, b->conf.max_open_ns, b->opens));
        if (b->opens < UINT32_MAX)
            b->opens++;
        break;
    case SP_BREAKER_HALF_OPEN:
        /* Requests still in flight from before are not trials; release attributes finishing
         * requests to them first, which can only under-use the quota, never exceed it. */
        b->stale_inflight = b->inflight;
        break;
    }
}

static bool should_open(struct sp_breaker *b, sp_time_t now, const char **ret_reason)
{
    if (b->conf.max_failures > 0 && b->consecutive >= b->conf.max_failures) {
        *ret_reason = "consecutive_failures";
        b->stats.opened_by_failures++;
        return true;
    }
    if (sp_window_ratio_reached(&b->window, now, b->conf.failure_ratio_pct, b->conf.min_requests)) {
        *ret_reason = "failure_ratio";
        b->stats.opened_by_ratio++;
        return true;
    }
    return false;
}

/* The transition function. */
static void breaker_step(struct sp_breaker *b, enum breaker_event ev, sp_time_t now)
{
    const char *reason;

    switch (b->state) {
    case SP_BREAKER_CLOSED:
        if (ev == EV_OPEN_ELAPSED)
            break;
        b->consecutive = ev == EV_SUCCESS ? 0 : b->consecutive + 1;
        sp_window_add(&b->window, ev == EV_SUCCESS, now);
        if (ev == EV_FAILURE && should_open(b, now, &reason))
            breaker_enter(b, SP_BREAKER_OPEN, reason, now);
        break;
    case SP_BREAKER_OPEN: /* late outcomes of requests admitted before the opening: ignored */
        if (ev == EV_OPEN_ELAPSED)
            breaker_enter(b, SP_BREAKER_HALF_OPEN, "open_time_elapsed", now);
        break;
    case SP_BREAKER_HALF_OPEN:
        if (ev == EV_FAILURE)
            breaker_enter(b, SP_BREAKER_OPEN, "trial_failed", now);
        else if (ev == EV_SUCCESS && ++b->trial_successes >= b->conf.half_open_successes)
            breaker_enter(b, SP_BREAKER_CLOSED, "trials_succeeded", now);
        break;
    }
}

static enum sp_breaker_verdict admit(const struct sp_breaker *b)
{
    if (b->state == SP_BREAKER_OPEN)
        return SP_BREAKER_REJECT_OPEN;
    if (b->conf.max_concurrent > 0 && b->inflight >= b->conf.max_concurrent)
        return SP_BREAKER_REJECT_CONCURRENCY;
    if (b->state == SP_BREAKER_HALF_OPEN && b->trials_inflight >= b->conf.half_open_quota)
        return SP_BREAKER_REJECT_HALF_OPEN;
    return SP_BREAKER_ALLOW;
}

enum sp_breaker_verdict sp_breaker_allow(struct sp_breaker *b, sp_time_t now)
{
    enum sp_breaker_verdict v;

    if (b->state == SP_BREAKER_OPEN && now >= b->open_until)
        breaker_step(b, EV_OPEN_ELAPSED, now);
    v = admit(b);
    b->stats.verdicts[v]++;
    if (v == SP_BREAKER_ALLOW) {
        b->inflight++;
        if (b->state == SP_BREAKER_HALF_OPEN)
            b->trials_inflight++;
    }
    return v;
}

void sp_breaker_report(struct sp_breaker *b, bool ok, sp_time_t now)
{
    if (ok)
        b->stats.successes++;
    else
        b->stats.failures++;
    breaker_step(b, ok ? EV_SUCCESS : EV_FAILURE, now);
}

void sp_breaker_release(struct sp_breaker *b)
{
    assert(b->inflight > 0); /* unpaired release: our bug */
    if (b->inflight == 0)
        return;
    b->inflight--;
    if (b->stale_inflight > 0)
        b->stale_inflight--;
    else if (b->trials_inflight > 0)
        b->trials_inflight--;
}

enum sp_breaker_state sp_breaker_state(const struct sp_breaker *b)
{
    return b->state;
}

sp_time_t sp_breaker_retry_at(const struct sp_breaker *b)
{
    return b->state == SP_BREAKER_OPEN ? b->open_until : 0;
}

const char *sp_breaker_reason(const struct sp_breaker *b)
{
    return b->reason;
}

unsigned sp_breaker_inflight(const struct sp_breaker *b)
{
    return b->inflight;
}

const struct sp_breaker_stats *sp_breaker_stats(const struct sp_breaker *b)
{
    return &b->stats;
}

const char *sp_breaker_state_name(enum sp_breaker_state s)
{
    return (unsigned)s < SP_BREAKER_STATE_COUNT ? state_names[s] : "unknown";
}

const char *sp_breaker_verdict_name(enum sp_breaker_verdict v)
{
    return (unsigned)v < SP_BREAKER_VERDICT_COUNT ? verdict_names[v] : "unknown";
}
