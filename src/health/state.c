/* state.c: the health state machine. Events update the counters (count_event), then the one
 * transition function (health_step) decides, and health_enter does the bookkeeping of entering a
 * state. */
#include "health/state.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "core/util.h"
#include "policy/backoff.h"
#include "policy/window.h"

struct sp_health {
    struct sp_health_conf conf;       /* copy with defaults applied */
    enum sp_health_state state;       /* current state */
    struct sp_health_transition last; /* the last transition */
    unsigned fails;                   /* consecutive passive failures */
    unsigned fails_5xx;               /* consecutive 5xx responses */
    unsigned probe_fails;             /* consecutive failed probes */
    unsigned successes;               /* consecutive successes, passive or probe */
    unsigned attempts;                /* failed recovery attempts since last HEALTHY */
    sp_time_t next_probe_at;          /* see sp_health_next_probe_at */
    struct sp_window window;          /* passive outcomes for the ratios */
    struct sp_health_stats stats;     /* read by the caller */
};

static const char *const state_names[SP_HEALTH_STATE_COUNT] = {"healthy", "degraded", "unhealthy",
                                                               "recovering"};
static const char *const event_names[SP_HEALTH_EVENT_COUNT] = {
    "probe_ok",     "probe_fail", "ok",   "timeout",   "reset",
    "connect_fail", "5xx",        "tick", "conn_lost", "slow"};

void sp_health_conf_default(struct sp_health_conf *conf)
{
    *conf = (struct sp_health_conf){
        .probe_interval_ns = 2 * SP_SEC,
        .probe_fall = 3,
        .rise = 2,
        .heal_successes = 5,
        .degrade_failures = 2,
        .eject_failures = 5,
        .eject_5xx = 5,
        .degrade_ratio_pct = 10,
        .eject_ratio_pct = 50,
        .min_requests = 20,
        .window_ns = 10 * SP_SEC,
        .degraded_weight_pct = 50,
        .recovery_base_ns = 1 * SP_SEC,
        .recovery_cap_ns = 60 * SP_SEC,
    };
}

static bool probing(const struct sp_health *h)
{
    return h->conf.probe_interval_ns > 0;
}

static int check_conf(const struct sp_health_conf *c)
{
    bool ratios = c->degrade_ratio_pct > 0 || c->eject_ratio_pct > 0;

    if (c->probe_interval_ns > 0 && c->probe_fall == 0)
        return -EINVAL;
    if (c->rise == 0 || c->heal_successes == 0)
        return -EINVAL;
    if (c->degrade_ratio_pct > 100 || c->eject_ratio_pct > 100)
        return -EINVAL;
    if (ratios && c->window_ns < SP_WINDOW_BUCKETS)
        return -EINVAL;
    if (c->degraded_weight_pct == 0 || c->degraded_weight_pct > 100 ||
        c->recovering_weight_pct > 100)
        return -EINVAL;
    if (c->recovery_base_ns == 0 || c->recovery_cap_ns < c->recovery_base_ns)
        return -EINVAL;
    return 0;
}

int sp_health_new(const struct sp_health_conf *conf, sp_time_t now, struct sp_health **ret_health)
{
    struct sp_health *h;
    bool ratios;
    int rv;

    if (conf == NULL || ret_health == NULL)
        return -EINVAL;
    rv = check_conf(conf);
    if (rv < 0)
        return rv;
    h = sp_xcalloc(1, sizeof(*h));
    h->conf = *conf;
    if (h->conf.recovering_weight_pct == 0)
        h->conf.recovering_weight_pct = h->conf.degraded_weight_pct;
    ratios = conf->degrade_ratio_pct > 0 || conf->eject_ratio_pct > 0;
    rv = sp_window_init(&h->window, ratios ? conf->window_ns : 0);
    if (rv < 0)
        goto out_free_health;
    h->state = SP_HEALTH_HEALTHY;
    h->last = (struct sp_health_transition){SP_HEALTH_HEALTHY, SP_HEALTH_HEALTHY, "initial", now};
    h->next_probe_at = probing(h) ? now : SP_HEALTH_NEVER;
    *ret_health = h;
    return 0;

out_free_health:
    free(h);
    return rv;
}

void sp_health_free(struct sp_health *h)
{
    free(h);
}

static sp_time_t add_sat(sp_time_t a, sp_time_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static sp_time_t recovery_at(const struct sp_health *h, sp_time_t now, uint64_t rnd)
{
    return add_sat(now, sp_backoff_delay_equal(h->conf.recovery_base_ns, h->conf.recovery_cap_ns,
                                               h->attempts, rnd));
}

static void attempt_failed(struct sp_health *h)
{
    if (h->attempts < UINT32_MAX)
        h->attempts++;
    h->stats.failed_attempts++;
}

static bool is_failure(enum sp_health_event ev)
{
    switch (ev) {
    case SP_HEALTH_EV_PROBE_FAIL:
    case SP_HEALTH_EV_TIMEOUT:
    case SP_HEALTH_EV_RESET:
    case SP_HEALTH_EV_CONNECT_FAIL:
    case SP_HEALTH_EV_5XX:
    case SP_HEALTH_EV_CONN_LOST:
        return true;
    case SP_HEALTH_EV_PROBE_OK:
    case SP_HEALTH_EV_OK:
    case SP_HEALTH_EV_TICK:
    case SP_HEALTH_EV_SLOW:
        return false;
    }
    return false;
}

static void count_passive(struct sp_health *h, bool ok, bool is_5xx, sp_time_t now)
{
    h->fails = ok ? 0 : h->fails + 1;
    h->fails_5xx = is_5xx ? h->fails_5xx + 1 : 0;
    h->successes = ok ? h->successes + 1 : 0;
    sp_window_add(&h->window, ok, now);
}

/* Updates the streaks and the window for one event; schedules the next probe after a probe
 * result (health_enter and the UNHEALTHY case may override it). */
static void count_event(struct sp_health *h, enum sp_health_event ev, sp_time_t now)
{
    switch (ev) {
    case SP_HEALTH_EV_PROBE_OK:
    case SP_HEALTH_EV_PROBE_FAIL:
        h->probe_fails = ev == SP_HEALTH_EV_PROBE_OK ? 0 : h->probe_fails + 1;
        h->successes = ev == SP_HEALTH_EV_PROBE_OK ? h->successes + 1 : 0;
        if (probing(h))
            h->next_probe_at = add_sat(now, h->conf.probe_interval_ns);
        break;
    case SP_HEALTH_EV_OK:
        count_passive(h, true, false, now);
        break;
    case SP_HEALTH_EV_TIMEOUT:
    case SP_HEALTH_EV_RESET:
    case SP_HEALTH_EV_CONNECT_FAIL:
    case SP_HEALTH_EV_CONN_LOST:
        count_passive(h, false, false, now);
        break;
    case SP_HEALTH_EV_5XX:
        count_passive(h, false, true, now);
        break;
    case SP_HEALTH_EV_TICK:
        break;
    case SP_HEALTH_EV_SLOW:
        h->successes = 0; /* no healing while it stays slow */
        break;
    }
}

static bool reached(unsigned count, unsigned threshold)
{
    return threshold > 0 && count >= threshold;
}

/* Where the thresholds put a serving backend: UNHEALTHY, DEGRADED or HEALTHY (none met). */
static enum sp_health_state judge(const struct sp_health *h, sp_time_t now, const char **reason)
{
    const struct sp_health_conf *c = &h->conf;
    unsigned min = c->min_requests;

    *reason = "consecutive_failures";
    if (reached(h->fails, c->eject_failures))
        return SP_HEALTH_UNHEALTHY;
    *reason = "consecutive_5xx";
    if (reached(h->fails_5xx, c->eject_5xx))
        return SP_HEALTH_UNHEALTHY;
    *reason = "probe_failures";
    if (probing(h) && reached(h->probe_fails, c->probe_fall))
        return SP_HEALTH_UNHEALTHY;
    *reason = "failure_rate";
    if (sp_window_ratio_reached(&h->window, now, c->eject_ratio_pct, min))
        return SP_HEALTH_UNHEALTHY;
    *reason = "consecutive_failures";
    if (reached(h->fails, c->degrade_failures))
        return SP_HEALTH_DEGRADED;
    *reason = "probe_failed";
    if (h->probe_fails > 0)
        return SP_HEALTH_DEGRADED;
    *reason = "failure_rate";
    if (sp_window_ratio_reached(&h->window, now, c->degrade_ratio_pct, min))
        return SP_HEALTH_DEGRADED;
    *reason = "successes";
    return SP_HEALTH_HEALTHY;
}

/* Bookkeeping of entering `to`. */
static void health_enter(struct sp_health *h, enum sp_health_state to, const char *reason,
                         sp_time_t now, uint64_t rnd)
{
    h->stats.transitions[h->state][to]++;
    h->last = (struct sp_health_transition){h->state, to, reason, now};
    h->state = to;
    switch (to) {
    case SP_HEALTH_HEALTHY:
        h->attempts = 0;
        break;
    case SP_HEALTH_DEGRADED:
        break;
    case SP_HEALTH_UNHEALTHY:
        /* Streaks restart: what counts now is the outcome of recovery attempts. */
        h->fails = h->fails_5xx = h->probe_fails = h->successes = 0;
        h->next_probe_at = recovery_at(h, now, rnd);
        break;
    case SP_HEALTH_RECOVERING:
        /* Probation starts clean: failures from before the ejection must not count again. */
        h->fails = h->fails_5xx = h->probe_fails = h->successes = 0;
        sp_window_reset(&h->window);
        h->next_probe_at = probing(h) ? add_sat(now, h->conf.probe_interval_ns) : SP_HEALTH_NEVER;
        break;
    }
}

/* UNHEALTHY: only a recovery attempt matters. */
static enum sp_health_state step_unhealthy(struct sp_health *h, enum sp_health_event ev,
                                           sp_time_t now, uint64_t rnd, const char **reason)
{
    if (probing(h)) {
        *reason = "probe_ok";
        if (ev == SP_HEALTH_EV_PROBE_OK)
            return SP_HEALTH_RECOVERING;
        if (ev == SP_HEALTH_EV_PROBE_FAIL) {
            attempt_failed(h);
            h->next_probe_at = recovery_at(h, now, rnd);
        }
        return SP_HEALTH_UNHEALTHY;
    }
    if (ev == SP_HEALTH_EV_CONN_LOST) {
        /* The transport still finds it gone: that was the readmission attempt, if one was
         * due; the next waits longer. */
        if (now >= h->next_probe_at) {
            attempt_failed(h);
            h->next_probe_at = recovery_at(h, now, rnd);
        }
        return SP_HEALTH_UNHEALTHY;
    }
    *reason = "ejection_elapsed";
    return now >= h->next_probe_at ? SP_HEALTH_RECOVERING : SP_HEALTH_UNHEALTHY;
}

/* The transition function; returns true when the state changed. */
static bool health_step(struct sp_health *h, enum sp_health_event ev, sp_time_t now, uint64_t rnd)
{
    enum sp_health_state to = h->state;
    const char *reason = NULL;

    count_event(h, ev, now);
    switch (h->state) {
    case SP_HEALTH_HEALTHY:
    case SP_HEALTH_DEGRADED:
        if (ev == SP_HEALTH_EV_CONN_LOST && h->conf.eject_failures > 0) {
            to = SP_HEALTH_UNHEALTHY;
            reason = "connection_lost";
            break;
        }
        if (ev == SP_HEALTH_EV_SLOW) {
            to = SP_HEALTH_DEGRADED;
            reason = "rtt_jump";
            break;
        }
        if (h->state == SP_HEALTH_HEALTHY) {
            if (is_failure(ev))
                to = judge(h, now, &reason);
            break;
        }
        if (is_failure(ev) && judge(h, now, &reason) == SP_HEALTH_UNHEALTHY)
            to = SP_HEALTH_UNHEALTHY;
        else if (!is_failure(ev) && h->successes >= h->conf.heal_successes &&
                 judge(h, now, &reason) == SP_HEALTH_HEALTHY)
            to = SP_HEALTH_HEALTHY;
        break;
    case SP_HEALTH_UNHEALTHY:
        to = step_unhealthy(h, ev, now, rnd, &reason);
        break;
    case SP_HEALTH_RECOVERING:
        if (is_failure(ev)) {
            attempt_failed(h);
            to = SP_HEALTH_UNHEALTHY;
            reason = "recovery_failed";
        } else if (h->successes >= h->conf.rise) {
            to = SP_HEALTH_HEALTHY;
            reason = "recovered";
        }
        break;
    }
    if (to == h->state)
        return false;
    health_enter(h, to, reason, now, rnd);
    return true;
}

bool sp_health_report(struct sp_health *h, enum sp_health_event ev, sp_time_t now, uint64_t rnd)
{
    if ((unsigned)ev >= SP_HEALTH_EVENT_COUNT)
        return false;
    h->stats.events[ev]++;
    return health_step(h, ev, now, rnd);
}

bool sp_health_event_from_err(enum sp_err_class c, enum sp_health_event *ret_ev)
{
    switch (c) {
    case SP_ERR_NONE:
        *ret_ev = SP_HEALTH_EV_OK;
        return true;
    case SP_ERR_BACKEND_CONNECT:
        *ret_ev = SP_HEALTH_EV_CONNECT_FAIL;
        return true;
    case SP_ERR_BACKEND_PROTOCOL:
        *ret_ev = SP_HEALTH_EV_RESET;
        return true;
    case SP_ERR_BACKEND_TIMEOUT:
        *ret_ev = SP_HEALTH_EV_TIMEOUT;
        return true;
    case SP_ERR_BACKEND_5XX:
        *ret_ev = SP_HEALTH_EV_5XX;
        return true;
    case SP_ERR_CLIENT_ABORT:
    case SP_ERR_CLIENT_TIMEOUT:
    case SP_ERR_CLIENT_INVALID:
    case SP_ERR_INTERNAL:
        return false;
    }
    return false;
}

enum sp_health_state sp_health_state(const struct sp_health *h)
{
    return h->state;
}

const struct sp_health_transition *sp_health_last(const struct sp_health *h)
{
    return &h->last;
}

sp_time_t sp_health_next_probe_at(const struct sp_health *h)
{
    return h->next_probe_at;
}

bool sp_health_eligible(const struct sp_health *h, sp_time_t now)
{
    if (h->state != SP_HEALTH_UNHEALTHY)
        return true;
    return !probing(h) && now >= h->next_probe_at;
}

unsigned sp_health_weight_pct(const struct sp_health *h)
{
    switch (h->state) {
    case SP_HEALTH_HEALTHY:
        return 100;
    case SP_HEALTH_DEGRADED:
        return h->conf.degraded_weight_pct;
    case SP_HEALTH_RECOVERING:
        return h->conf.recovering_weight_pct;
    case SP_HEALTH_UNHEALTHY:
        return 0;
    }
    return 0;
}

unsigned sp_health_attempts(const struct sp_health *h)
{
    return h->attempts;
}

const struct sp_health_stats *sp_health_stats(const struct sp_health *h)
{
    return &h->stats;
}

bool sp_health_panic(const struct sp_health *const *all, size_t n, unsigned panic_threshold_pct)
{
    size_t healthy = 0;

    if (n == 0 || panic_threshold_pct == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        assert(all[i] != NULL);
        if (all[i]->state == SP_HEALTH_HEALTHY || all[i]->state == SP_HEALTH_DEGRADED)
            healthy++;
    }
    /* healthy / n < pct / 100, in integers. */
    return (uint64_t)healthy * 100 < (uint64_t)panic_threshold_pct * n;
}

const char *sp_health_state_name(enum sp_health_state s)
{
    return (unsigned)s < SP_HEALTH_STATE_COUNT ? state_names[s] : "unknown";
}

const char *sp_health_event_name(enum sp_health_event ev)
{
    return (unsigned)ev < SP_HEALTH_EVENT_COUNT ? event_names[ev] : "unknown";
}
