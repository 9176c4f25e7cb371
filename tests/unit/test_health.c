/* test_health.c: unit tests of src/health/state.c with a fake clock: every transition of
 * healthy -> degraded -> unhealthy -> recovering -> healthy and the shortcuts, each threshold
 * (consecutive failures, consecutive 5xx, failed probes, failure rate above a minimum volume),
 * the degraded and recovering weights, the recovery backoff's growth, jitter and cap, passive-only
 * readmission, the panic threshold, and the counters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>

#include "health/state.h"

/* Equal jitter maps UINT64_MAX to the full backoff and 0 to half of it. */
#define RND_FULL UINT64_MAX
#define RND_HALF 0

static struct sp_health_conf base_conf(void)
{
    return (struct sp_health_conf){
        .probe_interval_ns = 2 * SP_SEC,
        .probe_fall = 3,
        .rise = 2,
        .heal_successes = 3,
        .degrade_failures = 2,
        .eject_failures = 5,
        .degraded_weight_pct = 50,
        .recovering_weight_pct = 25,
        .recovery_base_ns = 1 * SP_SEC,
        .recovery_cap_ns = 8 * SP_SEC,
    };
}

static struct sp_health *make(const struct sp_health_conf *conf)
{
    struct sp_health *h = NULL;

    assert_int_equal(sp_health_new(conf, 0, &h), 0);
    assert_non_null(h);
    return h;
}

static void feed(struct sp_health *h, enum sp_health_event ev, int n, sp_time_t now)
{
    for (int i = 0; i < n; i++)
        (void)sp_health_report(h, ev, now, RND_FULL);
}

static enum sp_health_state state_of(const struct sp_health *h)
{
    return sp_health_state(h);
}

static void assert_last(const struct sp_health *h, enum sp_health_state from,
                        enum sp_health_state to, const char *reason)
{
    const struct sp_health_transition *t = sp_health_last(h);

    assert_int_equal(t->from, from);
    assert_int_equal(t->to, to);
    assert_string_equal(t->reason, reason);
}

/* Drives a base_conf machine to UNHEALTHY at now with five connect failures. */
static void eject(struct sp_health *h, sp_time_t now)
{
    feed(h, SP_HEALTH_EV_CONNECT_FAIL, 5, now);
    assert_int_equal(state_of(h), SP_HEALTH_UNHEALTHY);
}

static void test_new_backend_is_healthy_with_full_weight_and_a_probe_due_now(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h;

    (void)state;
    assert_int_equal(sp_health_new(&conf, 7 * SP_SEC, &h), 0);
    assert_int_equal(state_of(h), SP_HEALTH_HEALTHY);
    assert_true(sp_health_eligible(h, 7 * SP_SEC));
    assert_int_equal(sp_health_weight_pct(h), 100);
    assert_int_equal(sp_health_next_probe_at(h), 7 * SP_SEC);
    assert_last(h, SP_HEALTH_HEALTHY, SP_HEALTH_HEALTHY, "initial");
    sp_health_free(h);
}

static void test_consecutive_failures_degrade_a_healthy_backend(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h = make(&conf);

    (void)state;
    assert_false(sp_health_report(h, SP_HEALTH_EV_TIMEOUT, SP_SEC, RND_FULL));
    assert_true(sp_health_report(h, SP_HEALTH_EV_RESET, SP_SEC, RND_FULL));
    assert_int_equal(state_of(h), SP_HEALTH_DEGRADED);
    assert_last(h, SP_HEALTH_HEALTHY, SP_HEALTH_DEGRADED, "consecutive_failures");
    assert_int_equal(sp_health_last(h)->at, SP_SEC);
    assert_true(sp_health_eligible(h, SP_SEC));
    assert_int_equal(sp_health_weight_pct(h), 50);
    sp_health_free(h);
}

static void test_one_failed_probe_degrades_a_healthy_backend(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h = make(&conf);

    (void)state;
    assert_true(sp_health_report(h, SP_HEALTH_EV_PROBE_FAIL, SP_SEC, RND_FULL));
    assert_last(h, SP_HEALTH_HEALTHY, SP_HEALTH_DEGRADED, "probe_failed");
    assert_int_equal(sp_health_next_probe_at(h), 3 * SP_SEC); /* the normal cadence goes on */
    sp_health_free(h);
}

static void test_failure_rate_degrades_only_above_minimum_volume(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h;

    (void)state;
    conf.degrade_failures = 0;
    conf.eject_failures = 0;
    conf.degrade_ratio_pct = 20;
    conf.min_requests = 10;
    conf.window_ns = 10 * SP_SEC;
    h = make(&conf);
    feed(h, SP_HEALTH_EV_OK, 8, SP_SEC);
    feed(h, SP_HEALTH_EV_5XX, 1, SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_HEALTHY); /* 1 of 9: below the volume */
    feed(h, SP_HEALTH_EV_5XX, 1, SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_DEGRADED); /* 2 of 10 = 20% */
    assert_last(h, SP_HEALTH_HEALTHY, SP_HEALTH_DEGRADED, "failure_rate");
    sp_health_free(h);
}

static void test_degraded_backend_heals_after_consecutive_successes(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h = make(&conf);

    (void)state;
    feed(h, SP_HEALTH_EV_TIMEOUT, 2, SP_SEC);
    feed(h, SP_HEALTH_EV_OK, 2, SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_DEGRADED);
    assert_true(sp_health_report(h, SP_HEALTH_EV_OK, SP_SEC, RND_FULL));
    assert_last(h, SP_HEALTH_DEGRADED, SP_HEALTH_HEALTHY, "successes");
    assert_int_equal(sp_health_weight_pct(h), 100);
    sp_health_free(h);
}

static void test_a_failure_restarts_the_healing_count(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h = make(&conf);

    (void)state;
    feed(h, SP_HEALTH_EV_TIMEOUT, 2, SP_SEC);
    feed(h, SP_HEALTH_EV_OK, 2, SP_SEC);
    feed(h, SP_HEALTH_EV_TIMEOUT, 1, SP_SEC);
    feed(h, SP_HEALTH_EV_OK, 2, SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_DEGRADED);
    feed(h, SP_HEALTH_EV_OK, 1, SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_HEALTHY);
    sp_health_free(h);
}

static void test_degraded_backend_heals_only_once_its_probe_passes(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h = make(&conf);

    (void)state;
    feed(h, SP_HEALTH_EV_PROBE_FAIL, 1, SP_SEC);
    feed(h, SP_HEALTH_EV_OK, 10, SP_SEC); /* traffic passing does not excuse the probe */
    assert_int_equal(state_of(h), SP_HEALTH_DEGRADED);
    feed(h, SP_HEALTH_EV_PROBE_OK, 1, 3 * SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_HEALTHY);
    sp_health_free(h);
}

static void test_consecutive_failures_eject_a_degraded_backend(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h = make(&conf);

    (void)state;
    feed(h, SP_HEALTH_EV_CONNECT_FAIL, 4, 10 * SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_DEGRADED);
    assert_true(sp_health_report(h, SP_HEALTH_EV_CONNECT_FAIL, 10 * SP_SEC, RND_FULL));
    assert_last(h, SP_HEALTH_DEGRADED, SP_HEALTH_UNHEALTHY, "consecutive_failures");
    assert_false(sp_health_eligible(h, 10 * SP_SEC));
    assert_false(sp_health_eligible(h, 1000 * SP_SEC)); /* probing: only a probe readmits */
    assert_int_equal(sp_health_weight_pct(h), 0);
    assert_int_equal(sp_health_next_probe_at(h), 11 * SP_SEC); /* first recovery attempt */
    sp_health_free(h);
}

static void test_consecutive_5xx_eject_a_healthy_backend_directly(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h;

    (void)state;
    conf.degrade_failures = 0;
    conf.eject_failures = 0;
    conf.eject_5xx = 3;
    h = make(&conf);
    feed(h, SP_HEALTH_EV_5XX, 2, SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_HEALTHY);
    feed(h, SP_HEALTH_EV_5XX, 1, SP_SEC);
    assert_last(h, SP_HEALTH_HEALTHY, SP_HEALTH_UNHEALTHY, "consecutive_5xx");
    sp_health_free(h);
}

static void test_another_failure_breaks_a_5xx_streak(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h;

    (void)state;
    conf.degrade_failures = 0;
    conf.eject_failures = 0;
    conf.eject_5xx = 3;
    h = make(&conf);
    feed(h, SP_HEALTH_EV_5XX, 2, SP_SEC);
    feed(h, SP_HEALTH_EV_TIMEOUT, 1, SP_SEC);
    feed(h, SP_HEALTH_EV_5XX, 2, SP_SEC);
    feed(h, SP_HEALTH_EV_OK, 1, SP_SEC);
    feed(h, SP_HEALTH_EV_5XX, 2, SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_HEALTHY);
    sp_health_free(h);
}

static void test_failed_probes_eject_a_backend_whose_traffic_succeeds(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h = make(&conf);
    sp_time_t t = 0;

    (void)state;
    /* The health endpoint answers 404 while real requests pass: the probe decides. */
    for (int i = 0; i < 2; i++) {
        feed(h, SP_HEALTH_EV_PROBE_FAIL, 1, t += 2 * SP_SEC);
        feed(h, SP_HEALTH_EV_OK, 3, t);
    }
    assert_int_equal(state_of(h), SP_HEALTH_DEGRADED);
    feed(h, SP_HEALTH_EV_PROBE_FAIL, 1, t += 2 * SP_SEC);
    assert_last(h, SP_HEALTH_DEGRADED, SP_HEALTH_UNHEALTHY, "probe_failures");
    sp_health_free(h);
}

static void test_failure_rate_ejects_above_minimum_volume(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h;

    (void)state;
    conf.degrade_failures = 0;
    conf.eject_failures = 0;
    conf.eject_ratio_pct = 50;
    conf.min_requests = 10;
    conf.window_ns = 10 * SP_SEC;
    h = make(&conf);
    for (int i = 0; i < 4; i++) {
        feed(h, SP_HEALTH_EV_OK, 1, SP_SEC);
        feed(h, SP_HEALTH_EV_RESET, 1, SP_SEC);
    }
    feed(h, SP_HEALTH_EV_OK, 1, SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_HEALTHY); /* 9 outcomes */
    feed(h, SP_HEALTH_EV_RESET, 1, SP_SEC);           /* 5 of 10 */
    assert_last(h, SP_HEALTH_HEALTHY, SP_HEALTH_UNHEALTHY, "failure_rate");
    sp_health_free(h);
}

static void test_unhealthy_backend_recovers_on_a_successful_probe(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h = make(&conf);

    (void)state;
    eject(h, 0);
    assert_true(sp_health_report(h, SP_HEALTH_EV_PROBE_OK, SP_SEC, RND_FULL));
    assert_last(h, SP_HEALTH_UNHEALTHY, SP_HEALTH_RECOVERING, "probe_ok");
    assert_true(sp_health_eligible(h, SP_SEC));
    assert_int_equal(sp_health_weight_pct(h), 25);
    assert_int_equal(sp_health_next_probe_at(h), 3 * SP_SEC);
    sp_health_free(h);
}

static void test_recovering_weight_defaults_to_the_degraded_weight(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h;

    (void)state;
    conf.recovering_weight_pct = 0;
    h = make(&conf);
    eject(h, 0);
    feed(h, SP_HEALTH_EV_PROBE_OK, 1, SP_SEC);
    assert_int_equal(sp_health_weight_pct(h), 50);
    sp_health_free(h);
}

static void test_recovering_backend_is_healthy_after_rise_successes(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h = make(&conf);

    (void)state;
    eject(h, 0);
    feed(h, SP_HEALTH_EV_PROBE_FAIL, 1, SP_SEC);
    assert_int_equal(sp_health_attempts(h), 1);
    feed(h, SP_HEALTH_EV_PROBE_OK, 1, 3 * SP_SEC);
    feed(h, SP_HEALTH_EV_PROBE_OK, 1, 5 * SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_RECOVERING); /* rise counts from entering */
    assert_true(sp_health_report(h, SP_HEALTH_EV_OK, 5 * SP_SEC, RND_FULL));
    assert_last(h, SP_HEALTH_RECOVERING, SP_HEALTH_HEALTHY, "recovered");
    assert_int_equal(sp_health_attempts(h), 0);
    assert_int_equal(sp_health_weight_pct(h), 100);
    sp_health_free(h);
}

static void test_recovering_backend_falls_back_on_any_failure_with_a_longer_delay(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h = make(&conf);

    (void)state;
    eject(h, 0);
    feed(h, SP_HEALTH_EV_PROBE_OK, 1, SP_SEC);
    assert_true(sp_health_report(h, SP_HEALTH_EV_TIMEOUT, 2 * SP_SEC, RND_FULL));
    assert_last(h, SP_HEALTH_RECOVERING, SP_HEALTH_UNHEALTHY, "recovery_failed");
    assert_int_equal(sp_health_attempts(h), 1);
    assert_int_equal(sp_health_next_probe_at(h), 4 * SP_SEC); /* 2 s: doubled */
    assert_false(sp_health_eligible(h, 2 * SP_SEC));
    sp_health_free(h);
}

static void test_failed_recovery_probes_back_off_exponentially_up_to_the_cap(void **state)
{
    static const sp_time_t expect[] = {1, 2, 4, 8, 8, 8};
    struct sp_health_conf conf = base_conf();
    struct sp_health *h = make(&conf);
    sp_time_t t = 0;

    (void)state;
    eject(h, t);
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        assert_int_equal(sp_health_next_probe_at(h) - t, expect[i] * SP_SEC);
        t = sp_health_next_probe_at(h);
        assert_false(sp_health_report(h, SP_HEALTH_EV_PROBE_FAIL, t, RND_FULL));
        assert_int_equal(state_of(h), SP_HEALTH_UNHEALTHY);
    }
    assert_int_equal(sp_health_stats(h)->failed_attempts, 6);
    sp_health_free(h);
}

static void test_recovery_delay_jitter_stays_between_half_and_full_backoff(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h = make(&conf);

    (void)state;
    feed(h, SP_HEALTH_EV_CONNECT_FAIL, 4, 0);
    assert_true(sp_health_report(h, SP_HEALTH_EV_CONNECT_FAIL, 0, RND_HALF));
    assert_int_equal(sp_health_next_probe_at(h), SP_SEC / 2);
    (void)sp_health_report(h, SP_HEALTH_EV_PROBE_FAIL, 10 * SP_SEC, RND_HALF);
    assert_int_equal(sp_health_next_probe_at(h), 11 * SP_SEC); /* 2 s backoff, half of it */
    (void)sp_health_report(h, SP_HEALTH_EV_PROBE_FAIL, 20 * SP_SEC, UINT64_MAX / 2);
    assert_true(sp_health_next_probe_at(h) >= 22 * SP_SEC);
    assert_true(sp_health_next_probe_at(h) <= 24 * SP_SEC);
    sp_health_free(h);
}

static void test_stale_outcomes_do_not_move_an_unhealthy_backend(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h = make(&conf);

    (void)state;
    eject(h, 0);
    feed(h, SP_HEALTH_EV_OK, 10, 100 * SP_SEC);
    feed(h, SP_HEALTH_EV_TIMEOUT, 10, 100 * SP_SEC);
    feed(h, SP_HEALTH_EV_TICK, 1, 100 * SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_UNHEALTHY);
    assert_int_equal(sp_health_attempts(h), 0);
    assert_int_equal(sp_health_next_probe_at(h), SP_SEC);
    sp_health_free(h);
}

static void test_passive_only_backend_is_readmitted_after_its_ejection_time(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h;

    (void)state;
    conf.probe_interval_ns = 0;
    h = make(&conf);
    assert_int_equal(sp_health_next_probe_at(h), SP_HEALTH_NEVER);
    eject(h, 10 * SP_SEC);
    assert_int_equal(sp_health_next_probe_at(h), 11 * SP_SEC);
    assert_false(sp_health_eligible(h, 11 * SP_SEC - 1));
    assert_true(sp_health_eligible(h, 11 * SP_SEC)); /* due, even before the tick */
    assert_false(sp_health_report(h, SP_HEALTH_EV_TICK, 11 * SP_SEC - 1, RND_FULL));
    assert_true(sp_health_report(h, SP_HEALTH_EV_TICK, 11 * SP_SEC, RND_FULL));
    assert_last(h, SP_HEALTH_UNHEALTHY, SP_HEALTH_RECOVERING, "ejection_elapsed");
    assert_int_equal(sp_health_next_probe_at(h), SP_HEALTH_NEVER);
    feed(h, SP_HEALTH_EV_OK, 2, 12 * SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_HEALTHY);
    sp_health_free(h);
}

static void test_passive_only_failed_readmission_doubles_the_ejection(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h;

    (void)state;
    conf.probe_interval_ns = 0;
    h = make(&conf);
    eject(h, 0);
    feed(h, SP_HEALTH_EV_TICK, 1, SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_RECOVERING);
    feed(h, SP_HEALTH_EV_CONNECT_FAIL, 1, SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_UNHEALTHY);
    assert_int_equal(sp_health_next_probe_at(h), 3 * SP_SEC);
    sp_health_free(h);
}

static void test_lost_connection_ejects_a_healthy_backend_at_once(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h;

    (void)state;
    h = make(&conf);
    assert_true(sp_health_report(h, SP_HEALTH_EV_CONN_LOST, SP_SEC, RND_FULL));
    assert_last(h, SP_HEALTH_HEALTHY, SP_HEALTH_UNHEALTHY, "connection_lost");
    sp_health_free(h);
    h = make(&conf);
    feed(h, SP_HEALTH_EV_RESET, 2, SP_SEC); /* degraded first */
    assert_int_equal(state_of(h), SP_HEALTH_DEGRADED);
    assert_true(sp_health_report(h, SP_HEALTH_EV_CONN_LOST, SP_SEC, RND_FULL));
    assert_last(h, SP_HEALTH_DEGRADED, SP_HEALTH_UNHEALTHY, "connection_lost");
    sp_health_free(h);
}

static void test_lost_connection_counts_as_a_failure_when_ejection_is_off(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h;

    (void)state;
    conf.eject_failures = 0;
    h = make(&conf);
    feed(h, SP_HEALTH_EV_CONN_LOST, 5, SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_DEGRADED); /* degrade_failures 2, never ejected */
    sp_health_free(h);
}

static void test_lost_connection_when_readmission_is_due_backs_off_further(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h;

    (void)state;
    conf.probe_interval_ns = 0;
    h = make(&conf);
    feed(h, SP_HEALTH_EV_CONN_LOST, 1, 0); /* ejected: readmission due at 1 s */
    assert_int_equal(sp_health_next_probe_at(h), SP_SEC);
    feed(h, SP_HEALTH_EV_CONN_LOST, 1, SP_SEC / 2); /* not due yet: nothing changes */
    assert_int_equal(sp_health_next_probe_at(h), SP_SEC);
    assert_false(sp_health_report(h, SP_HEALTH_EV_CONN_LOST, SP_SEC, RND_FULL));
    assert_int_equal(state_of(h), SP_HEALTH_UNHEALTHY);
    assert_int_equal(sp_health_next_probe_at(h), 3 * SP_SEC); /* the handshake failed: 2 s more */
    assert_int_equal(sp_health_attempts(h), 1);
    sp_health_free(h);
}

static void test_rtt_jump_degrades_a_healthy_backend_until_good_probes_heal_it(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h;

    (void)state;
    h = make(&conf);
    assert_true(sp_health_report(h, SP_HEALTH_EV_SLOW, SP_SEC, RND_FULL));
    assert_last(h, SP_HEALTH_HEALTHY, SP_HEALTH_DEGRADED, "rtt_jump");
    assert_int_equal(sp_health_weight_pct(h), 50);
    feed(h, SP_HEALTH_EV_PROBE_OK, 2, 2 * SP_SEC);
    feed(h, SP_HEALTH_EV_SLOW, 1, 3 * SP_SEC); /* still slow: the streak starts over */
    feed(h, SP_HEALTH_EV_PROBE_OK, 2, 4 * SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_DEGRADED);
    feed(h, SP_HEALTH_EV_PROBE_OK, 1, 5 * SP_SEC); /* heal_successes 3 in a row */
    assert_last(h, SP_HEALTH_DEGRADED, SP_HEALTH_HEALTHY, "successes");
    sp_health_free(h);
}

static void test_recovered_backend_forgets_failures_from_before_its_ejection(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h;

    (void)state;
    conf.degrade_failures = 0;
    conf.eject_failures = 0;
    conf.degrade_ratio_pct = 20;
    conf.eject_ratio_pct = 50;
    conf.min_requests = 4;
    conf.window_ns = 60 * SP_SEC;
    h = make(&conf);
    feed(h, SP_HEALTH_EV_5XX, 4, SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_UNHEALTHY);
    feed(h, SP_HEALTH_EV_PROBE_OK, 1, 2 * SP_SEC);
    feed(h, SP_HEALTH_EV_OK, 2, 2 * SP_SEC);
    assert_int_equal(state_of(h), SP_HEALTH_HEALTHY);
    feed(h, SP_HEALTH_EV_OK, 3, 3 * SP_SEC);
    feed(h, SP_HEALTH_EV_5XX, 1, 3 * SP_SEC); /* 1 of 6 since recovery; 5 of 10 ever */
    assert_int_equal(state_of(h), SP_HEALTH_HEALTHY);
    sp_health_free(h);
}

static void test_every_transition_is_counted(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h = make(&conf);
    const struct sp_health_stats *st = sp_health_stats(h);

    (void)state;
    feed(h, SP_HEALTH_EV_TIMEOUT, 2, 0);    /* H -> D */
    feed(h, SP_HEALTH_EV_OK, 3, 0);         /* D -> H */
    eject(h, 0);                            /* H -> D -> U */
    feed(h, SP_HEALTH_EV_PROBE_OK, 1, 0);   /* U -> R */
    feed(h, SP_HEALTH_EV_PROBE_FAIL, 1, 0); /* R -> U */
    feed(h, SP_HEALTH_EV_PROBE_OK, 2, 0);   /* U -> R */
    feed(h, SP_HEALTH_EV_OK, 1, 0);         /* R -> H */
    assert_int_equal(st->transitions[SP_HEALTH_HEALTHY][SP_HEALTH_DEGRADED], 2);
    assert_int_equal(st->transitions[SP_HEALTH_DEGRADED][SP_HEALTH_HEALTHY], 1);
    assert_int_equal(st->transitions[SP_HEALTH_DEGRADED][SP_HEALTH_UNHEALTHY], 1);
    assert_int_equal(st->transitions[SP_HEALTH_UNHEALTHY][SP_HEALTH_RECOVERING], 2);
    assert_int_equal(st->transitions[SP_HEALTH_RECOVERING][SP_HEALTH_UNHEALTHY], 1);
    assert_int_equal(st->transitions[SP_HEALTH_RECOVERING][SP_HEALTH_HEALTHY], 1);
    assert_int_equal(st->transitions[SP_HEALTH_HEALTHY][SP_HEALTH_UNHEALTHY], 0);
    assert_int_equal(st->events[SP_HEALTH_EV_TIMEOUT], 2);
    assert_int_equal(st->events[SP_HEALTH_EV_CONNECT_FAIL], 5);
    assert_int_equal(st->events[SP_HEALTH_EV_PROBE_OK], 3);
    assert_int_equal(state_of(h), SP_HEALTH_HEALTHY);
    sp_health_free(h);
}

static void test_unknown_event_is_ignored(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h = make(&conf);

    (void)state;
    assert_false(sp_health_report(h, (enum sp_health_event)42, 0, RND_FULL));
    assert_int_equal(state_of(h), SP_HEALTH_HEALTHY);
    sp_health_free(h);
}

static void test_panic_when_fewer_than_the_threshold_are_healthy(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *hs[4];
    const struct sp_health *const *all = (const struct sp_health *const *)hs;

    (void)state;
    for (size_t i = 0; i < 4; i++)
        hs[i] = make(&conf);
    eject(hs[0], 0);
    eject(hs[1], 0);
    eject(hs[2], 0);
    feed(hs[2], SP_HEALTH_EV_PROBE_OK, 1, SP_SEC); /* recovering: not healthy yet */
    assert_true(sp_health_panic(all, 4, 50));      /* 1 of 4 = 25% < 50% */
    assert_false(sp_health_panic(all, 4, 25));     /* 25% is not fewer than 25% */
    feed(hs[1], SP_HEALTH_EV_PROBE_OK, 3, SP_SEC); /* recovering, then healthy after rise 2 */
    feed(hs[1], SP_HEALTH_EV_TIMEOUT, 2, SP_SEC);  /* degraded still counts as healthy */
    assert_int_equal(state_of(hs[1]), SP_HEALTH_DEGRADED);
    assert_false(sp_health_panic(all, 4, 50));
    assert_true(sp_health_panic(all, 4, 51));
    assert_false(sp_health_panic(all, 4, 0)); /* off */
    assert_false(sp_health_panic(all, 0, 50));
    for (size_t i = 0; i < 4; i++)
        sp_health_free(hs[i]);
}

static void test_error_classes_map_to_passive_events(void **state)
{
    enum sp_health_event ev = SP_HEALTH_EV_TICK;

    (void)state;
    assert_true(sp_health_event_from_err(SP_ERR_NONE, &ev));
    assert_int_equal(ev, SP_HEALTH_EV_OK);
    assert_true(sp_health_event_from_err(SP_ERR_BACKEND_CONNECT, &ev));
    assert_int_equal(ev, SP_HEALTH_EV_CONNECT_FAIL);
    assert_true(sp_health_event_from_err(SP_ERR_BACKEND_PROTOCOL, &ev));
    assert_int_equal(ev, SP_HEALTH_EV_RESET);
    assert_true(sp_health_event_from_err(SP_ERR_BACKEND_TIMEOUT, &ev));
    assert_int_equal(ev, SP_HEALTH_EV_TIMEOUT);
    assert_true(sp_health_event_from_err(SP_ERR_BACKEND_5XX, &ev));
    assert_int_equal(ev, SP_HEALTH_EV_5XX);
    ev = SP_HEALTH_EV_TICK;
    assert_false(sp_health_event_from_err(SP_ERR_CLIENT_ABORT, &ev));
    assert_false(sp_health_event_from_err(SP_ERR_CLIENT_TIMEOUT, &ev));
    assert_false(sp_health_event_from_err(SP_ERR_CLIENT_INVALID, &ev));
    assert_false(sp_health_event_from_err(SP_ERR_INTERNAL, &ev));
    assert_int_equal(ev, SP_HEALTH_EV_TICK);
}

static void expect_einval(void (*edit)(struct sp_health_conf *c))
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h = NULL;

    edit(&conf);
    assert_int_equal(sp_health_new(&conf, 0, &h), -EINVAL);
    assert_null(h);
}

static void no_fall(struct sp_health_conf *c)
{
    c->probe_fall = 0;
}

static void no_rise(struct sp_health_conf *c)
{
    c->rise = 0;
}

static void no_heal(struct sp_health_conf *c)
{
    c->heal_successes = 0;
}

static void big_ratio(struct sp_health_conf *c)
{
    c->eject_ratio_pct = 101;
    c->window_ns = SP_SEC;
}

static void ratio_without_window(struct sp_health_conf *c)
{
    c->degrade_ratio_pct = 10;
}

static void zero_weight(struct sp_health_conf *c)
{
    c->degraded_weight_pct = 0;
}

static void big_weight(struct sp_health_conf *c)
{
    c->recovering_weight_pct = 101;
}

static void no_base(struct sp_health_conf *c)
{
    c->recovery_base_ns = 0;
}

static void cap_below_base(struct sp_health_conf *c)
{
    c->recovery_cap_ns = c->recovery_base_ns - 1;
}

static void test_health_new_rejects_invalid_confs(void **state)
{
    struct sp_health_conf conf = base_conf();
    struct sp_health *h = NULL;

    (void)state;
    expect_einval(no_fall);
    expect_einval(no_rise);
    expect_einval(no_heal);
    expect_einval(big_ratio);
    expect_einval(ratio_without_window);
    expect_einval(zero_weight);
    expect_einval(big_weight);
    expect_einval(no_base);
    expect_einval(cap_below_base);
    assert_int_equal(sp_health_new(NULL, 0, &h), -EINVAL);
    assert_int_equal(sp_health_new(&conf, 0, NULL), -EINVAL);
    conf.probe_interval_ns = 0;
    conf.probe_fall = 0; /* no probes: no fall needed */
    assert_int_equal(sp_health_new(&conf, 0, &h), 0);
    sp_health_free(h);
    sp_health_free(NULL);
}

static void test_default_conf_is_valid(void **state)
{
    struct sp_health_conf conf;
    struct sp_health *h = NULL;

    (void)state;
    sp_health_conf_default(&conf);
    assert_int_equal(sp_health_new(&conf, 0, &h), 0);
    assert_int_equal(conf.degraded_weight_pct, 50);
    sp_health_free(h);
}

static void test_state_and_event_names_are_stable(void **state)
{
    (void)state;
    assert_string_equal(sp_health_state_name(SP_HEALTH_HEALTHY), "healthy");
    assert_string_equal(sp_health_state_name(SP_HEALTH_DEGRADED), "degraded");
    assert_string_equal(sp_health_state_name(SP_HEALTH_UNHEALTHY), "unhealthy");
    assert_string_equal(sp_health_state_name(SP_HEALTH_RECOVERING), "recovering");
    assert_string_equal(sp_health_state_name((enum sp_health_state)9), "unknown");
    assert_string_equal(sp_health_event_name(SP_HEALTH_EV_PROBE_OK), "probe_ok");
    assert_string_equal(sp_health_event_name(SP_HEALTH_EV_CONNECT_FAIL), "connect_fail");
    assert_string_equal(sp_health_event_name(SP_HEALTH_EV_5XX), "5xx");
    assert_string_equal(sp_health_event_name(SP_HEALTH_EV_TICK), "tick");
    assert_string_equal(sp_health_event_name(SP_HEALTH_EV_CONN_LOST), "conn_lost");
    assert_string_equal(sp_health_event_name(SP_HEALTH_EV_SLOW), "slow");
    assert_string_equal(sp_health_event_name((enum sp_health_event)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_backend_is_healthy_with_full_weight_and_a_probe_due_now),
        cmocka_unit_test(test_consecutive_failures_degrade_a_healthy_backend),
        cmocka_unit_test(test_one_failed_probe_degrades_a_healthy_backend),
        cmocka_unit_test(test_failure_rate_degrades_only_above_minimum_volume),
        cmocka_unit_test(test_degraded_backend_heals_after_consecutive_successes),
        cmocka_unit_test(test_a_failure_restarts_the_healing_count),
        cmocka_unit_test(test_degraded_backend_heals_only_once_its_probe_passes),
        cmocka_unit_test(test_consecutive_failures_eject_a_degraded_backend),
        cmocka_unit_test(test_consecutive_5xx_eject_a_healthy_backend_directly),
        cmocka_unit_test(test_another_failure_breaks_a_5xx_streak),
        cmocka_unit_test(test_failed_probes_eject_a_backend_whose_traffic_succeeds),
        cmocka_unit_test(test_failure_rate_ejects_above_minimum_volume),
        cmocka_unit_test(test_unhealthy_backend_recovers_on_a_successful_probe),
        cmocka_unit_test(test_recovering_weight_defaults_to_the_degraded_weight),
        cmocka_unit_test(test_recovering_backend_is_healthy_after_rise_successes),
        cmocka_unit_test(test_recovering_backend_falls_back_on_any_failure_with_a_longer_delay),
        cmocka_unit_test(test_failed_recovery_probes_back_off_exponentially_up_to_the_cap),
        cmocka_unit_test(test_recovery_delay_jitter_stays_between_half_and_full_backoff),
        cmocka_unit_test(test_stale_outcomes_do_not_move_an_unhealthy_backend),
        cmocka_unit_test(test_passive_only_backend_is_readmitted_after_its_ejection_time),
        cmocka_unit_test(test_passive_only_failed_readmission_doubles_the_ejection),
        cmocka_unit_test(test_recovered_backend_forgets_failures_from_before_its_ejection),
        cmocka_unit_test(test_every_transition_is_counted),
        cmocka_unit_test(test_unknown_event_is_ignored),
        cmocka_unit_test(test_panic_when_fewer_than_the_threshold_are_healthy),
        cmocka_unit_test(test_error_classes_map_to_passive_events),
        cmocka_unit_test(test_health_new_rejects_invalid_confs),
        cmocka_unit_test(test_default_conf_is_valid),
        cmocka_unit_test(test_state_and_event_names_are_stable),
        cmocka_unit_test(test_lost_connection_ejects_a_healthy_backend_at_once),
        cmocka_unit_test(test_lost_connection_counts_as_a_failure_when_ejection_is_off),
        cmocka_unit_test(test_lost_connection_when_readmission_is_due_backs_off_further),
        cmocka_unit_test(test_rtt_jump_degrades_a_healthy_backend_until_good_probes_heal_it),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
