/* test_breaker.c: unit tests of src/policy/breaker.c with a fake clock: every transition
 * (closed -> open on consecutive failures and on the ratio, open -> half_open after the open time,
 * half_open -> closed after the successes, half_open -> open on a failure), the open time backoff
 * and its cap and reset, the half-open trial quota, and the concurrency cap. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>

#include "policy/breaker.h"

static struct sp_breaker *make(const struct sp_breaker_conf *conf)
{
    struct sp_breaker *b = NULL;

    assert_int_equal(sp_breaker_new(conf, &b), 0);
    assert_non_null(b);
    return b;
}

/* One admitted request with outcome ok at now, released at once. */
static void request(struct sp_breaker *b, bool ok, sp_time_t now)
{
    assert_int_equal(sp_breaker_allow(b, now), SP_BREAKER_ALLOW);
    sp_breaker_report(b, ok, now);
    sp_breaker_release(b);
}

static void fail_n(struct sp_breaker *b, int n, sp_time_t now)
{
    for (int i = 0; i < n; i++)
        request(b, false, now);
}

static void test_breaker_opens_after_max_failures(void **state)
{
    struct sp_breaker_conf conf = {.max_failures = 3, .open_ns = 5 * SP_SEC};
    struct sp_breaker *b = make(&conf);
    sp_time_t t = 0;

    (void)state;
    for (int i = 0; i < 2; i++)
        request(b, false, t += SP_MS);
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_CLOSED);
    request(b, false, t += SP_MS);
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_OPEN);
    assert_string_equal(sp_breaker_reason(b), "consecutive_failures");
    assert_int_equal(sp_breaker_allow(b, t), SP_BREAKER_REJECT_OPEN);
    assert_int_equal(sp_breaker_allow(b, t + 5 * SP_SEC - 1), SP_BREAKER_REJECT_OPEN);
    assert_int_equal(sp_breaker_retry_at(b), t + 5 * SP_SEC);
    assert_int_equal(sp_breaker_stats(b)->opened_by_failures, 1);
    sp_breaker_free(b);
}

static void test_a_success_resets_the_consecutive_failures(void **state)
{
    struct sp_breaker_conf conf = {.max_failures = 3, .open_ns = SP_SEC};
    struct sp_breaker *b = make(&conf);

    (void)state;
    fail_n(b, 2, SP_MS);
    request(b, true, SP_MS);
    fail_n(b, 2, SP_MS);
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_CLOSED);
    fail_n(b, 1, SP_MS);
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_OPEN);
    sp_breaker_free(b);
}

static void test_breaker_opens_on_ratio_only_above_minimum_volume(void **state)
{
    struct sp_breaker_conf conf = {
        .failure_ratio_pct = 50, .min_requests = 10, .window_ns = 10 * SP_SEC, .open_ns = SP_SEC};
    struct sp_breaker *b = make(&conf);
    sp_time_t t = SP_SEC;

    (void)state;
    /* Alternating outcomes: 50% failures, but below the volume the ratio does not count. */
    for (int i = 0; i < 4; i++) {
        request(b, true, t);
        request(b, false, t);
    }
    request(b, true, t);
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_CLOSED); /* 9 outcomes */
    request(b, false, t);                                     /* 10th: 5 of 10 failed */
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_OPEN);
    assert_string_equal(sp_breaker_reason(b), "failure_ratio");
    assert_int_equal(sp_breaker_stats(b)->opened_by_ratio, 1);
    assert_int_equal(sp_breaker_stats(b)->opened_by_failures, 0);
    sp_breaker_free(b);
}

static void test_ratio_below_threshold_keeps_the_breaker_closed(void **state)
{
    struct sp_breaker_conf conf = {
        .failure_ratio_pct = 50, .min_requests = 4, .window_ns = 10 * SP_SEC, .open_ns = SP_SEC};
    struct sp_breaker *b = make(&conf);

    (void)state;
    for (int i = 0; i < 20; i++) {
        request(b, true, SP_SEC);
        request(b, true, SP_SEC);
        request(b, false, SP_SEC); /* 33% */
    }
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_CLOSED);
    sp_breaker_free(b);
}

static void test_failures_that_left_the_window_do_not_count_in_the_ratio(void **state)
{
    struct sp_breaker_conf conf = {
        .failure_ratio_pct = 50, .min_requests = 4, .window_ns = 10 * SP_SEC, .open_ns = SP_SEC};
    struct sp_breaker *b = make(&conf);

    (void)state;
    request(b, true, SP_SEC);
    fail_n(b, 2, SP_SEC); /* 2 of 3: below the volume */
    request(b, true, 30 * SP_SEC);
    request(b, true, 30 * SP_SEC);
    request(b, true, 30 * SP_SEC);
    fail_n(b, 1, 30 * SP_SEC); /* 1 of 4 in the window, 3 of 7 ever */
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_CLOSED);
    sp_breaker_free(b);
}

static void test_open_breaker_half_opens_after_the_open_time(void **state)
{
    struct sp_breaker_conf conf = {.max_failures = 1, .open_ns = 5 * SP_SEC};
    struct sp_breaker *b = make(&conf);

    (void)state;
    fail_n(b, 1, SP_SEC);
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_OPEN);
    assert_int_equal(sp_breaker_allow(b, 6 * SP_SEC), SP_BREAKER_ALLOW);
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_HALF_OPEN);
    assert_string_equal(sp_breaker_reason(b), "open_time_elapsed");
    assert_int_equal(sp_breaker_retry_at(b), 0);
    sp_breaker_release(b);
    sp_breaker_free(b);
}

static void test_half_open_admits_only_its_quota_of_trials_in_flight(void **state)
{
    struct sp_breaker_conf conf = {
        .max_failures = 1, .open_ns = SP_SEC, .half_open_quota = 2, .half_open_successes = 3};
    struct sp_breaker *b = make(&conf);
    sp_time_t t = 2 * SP_SEC;

    (void)state;
    fail_n(b, 1, 0);
    assert_int_equal(sp_breaker_allow(b, t), SP_BREAKER_ALLOW);
    assert_int_equal(sp_breaker_allow(b, t), SP_BREAKER_ALLOW);
    assert_int_equal(sp_breaker_allow(b, t), SP_BREAKER_REJECT_HALF_OPEN);
    sp_breaker_report(b, true, t);
    sp_breaker_release(b); /* one trial done: a slot is free again */
    assert_int_equal(sp_breaker_allow(b, t), SP_BREAKER_ALLOW);
    assert_int_equal(sp_breaker_allow(b, t), SP_BREAKER_REJECT_HALF_OPEN);
    assert_int_equal(sp_breaker_stats(b)->verdicts[SP_BREAKER_REJECT_HALF_OPEN], 2);
    sp_breaker_release(b);
    sp_breaker_release(b);
    sp_breaker_free(b);
}

static void test_half_open_closes_after_the_required_successes(void **state)
{
    struct sp_breaker_conf conf = {
        .max_failures = 1, .open_ns = SP_SEC, .half_open_quota = 1, .half_open_successes = 3};
    struct sp_breaker *b = make(&conf);

    (void)state;
    fail_n(b, 1, 0);
    request(b, true, 2 * SP_SEC);
    request(b, true, 2 * SP_SEC);
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_HALF_OPEN);
    request(b, true, 2 * SP_SEC);
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_CLOSED);
    assert_string_equal(sp_breaker_reason(b), "trials_succeeded");
    sp_breaker_free(b);
}

static void test_closed_breaker_starts_its_counts_afresh(void **state)
{
    struct sp_breaker_conf conf = {.max_failures = 2,
                                   .failure_ratio_pct = 50,
                                   .min_requests = 2,
                                   .window_ns = 60 * SP_SEC,
                                   .open_ns = SP_SEC};
    struct sp_breaker *b = make(&conf);

    (void)state;
    fail_n(b, 2, 0);
    request(b, true, 2 * SP_SEC); /* trial closes it */
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_CLOSED);
    request(b, true, 2 * SP_SEC);
    fail_n(b, 1, 2 * SP_SEC); /* 1 of 2 since the close: the 2 old failures are forgotten */
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_OPEN);
    assert_string_equal(sp_breaker_reason(b), "failure_ratio");
    sp_breaker_free(b);
}

static void test_half_open_failure_reopens_for_longer(void **state)
{
    struct sp_breaker_conf conf = {
        .max_failures = 1, .open_ns = SP_SEC, .max_open_ns = 10 * SP_SEC};
    struct sp_breaker *b = make(&conf);
    sp_time_t t = 0;

    (void)state;
    fail_n(b, 1, t);
    assert_int_equal(sp_breaker_retry_at(b), t + SP_SEC);
    t += SP_SEC;
    request(b, false, t); /* trial fails */
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_OPEN);
    assert_string_equal(sp_breaker_reason(b), "trial_failed");
    assert_int_equal(sp_breaker_retry_at(b), t + 2 * SP_SEC);
    assert_int_equal(sp_breaker_allow(b, t + 2 * SP_SEC - 1), SP_BREAKER_REJECT_OPEN);
    t += 2 * SP_SEC;
    request(b, false, t);
    assert_int_equal(sp_breaker_retry_at(b), t + 4 * SP_SEC);
    sp_breaker_free(b);
}

static void test_open_time_backoff_stops_at_its_cap(void **state)
{
    struct sp_breaker_conf conf = {.max_failures = 1, .open_ns = SP_SEC, .max_open_ns = 5 * SP_SEC};
    struct sp_breaker *b = make(&conf);
    sp_time_t t = 0, expect[] = {SP_SEC, 2 * SP_SEC, 4 * SP_SEC, 5 * SP_SEC, 5 * SP_SEC};

    (void)state;
    fail_n(b, 1, t);
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        assert_int_equal(sp_breaker_retry_at(b) - t, expect[i]);
        t = sp_breaker_retry_at(b);
        request(b, false, t);
    }
    sp_breaker_free(b);
}

static void test_open_time_backoff_resets_after_a_close(void **state)
{
    struct sp_breaker_conf conf = {.max_failures = 1, .open_ns = SP_SEC, .max_open_ns = 8 * SP_SEC};
    struct sp_breaker *b = make(&conf);
    sp_time_t t = 0;

    (void)state;
    fail_n(b, 1, t);
    t += SP_SEC;
    request(b, false, t); /* reopened for 2 s */
    t += 2 * SP_SEC;
    request(b, true, t); /* closed */
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_CLOSED);
    fail_n(b, 1, t);
    assert_int_equal(sp_breaker_retry_at(b), t + SP_SEC);
    sp_breaker_free(b);
}

static void test_without_max_open_time_the_open_time_stays_fixed(void **state)
{
    struct sp_breaker_conf conf = {.max_failures = 1, .open_ns = 3 * SP_SEC};
    struct sp_breaker *b = make(&conf);

    (void)state;
    fail_n(b, 1, 0);
    request(b, false, 3 * SP_SEC);
    assert_int_equal(sp_breaker_retry_at(b), 6 * SP_SEC);
    sp_breaker_free(b);
}

static void test_concurrency_cap_rejects_until_a_request_is_released(void **state)
{
    struct sp_breaker_conf conf = {.open_ns = SP_SEC, .max_concurrent = 2};
    struct sp_breaker *b = make(&conf);

    (void)state;
    assert_int_equal(sp_breaker_allow(b, 0), SP_BREAKER_ALLOW);
    assert_int_equal(sp_breaker_allow(b, 0), SP_BREAKER_ALLOW);
    assert_int_equal(sp_breaker_allow(b, 0), SP_BREAKER_REJECT_CONCURRENCY);
    assert_int_equal(sp_breaker_inflight(b), 2);
    sp_breaker_release(b);
    assert_int_equal(sp_breaker_allow(b, 0), SP_BREAKER_ALLOW);
    assert_int_equal(sp_breaker_stats(b)->verdicts[SP_BREAKER_REJECT_CONCURRENCY], 1);
    assert_int_equal(sp_breaker_stats(b)->verdicts[SP_BREAKER_ALLOW], 3);
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_CLOSED); /* a cap is not a failure */
    sp_breaker_release(b);
    sp_breaker_release(b);
    sp_breaker_free(b);
}

static void test_zero_caps_mean_unlimited(void **state)
{
    struct sp_breaker_conf conf = {.open_ns = SP_SEC};
    struct sp_breaker *b = make(&conf);

    (void)state;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(sp_breaker_allow(b, 0), SP_BREAKER_ALLOW);
    fail_n(b, 100, 0); /* no trigger configured: never opens */
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_CLOSED);
    sp_breaker_free(b);
}

static void test_requests_from_before_half_open_take_no_trial_slot(void **state)
{
    struct sp_breaker_conf conf = {.max_failures = 1, .open_ns = SP_SEC, .half_open_quota = 1};
    struct sp_breaker *b = make(&conf);

    (void)state;
    assert_int_equal(sp_breaker_allow(b, 0), SP_BREAKER_ALLOW); /* long request, admitted closed */
    fail_n(b, 1, 0);
    assert_int_equal(sp_breaker_allow(b, 2 * SP_SEC), SP_BREAKER_ALLOW); /* the one trial */
    assert_int_equal(sp_breaker_allow(b, 2 * SP_SEC), SP_BREAKER_REJECT_HALF_OPEN);
    sp_breaker_release(b); /* counted against the old request first: the trial keeps its slot */
    assert_int_equal(sp_breaker_allow(b, 2 * SP_SEC), SP_BREAKER_REJECT_HALF_OPEN);
    sp_breaker_release(b);
    assert_int_equal(sp_breaker_allow(b, 2 * SP_SEC), SP_BREAKER_ALLOW);
    sp_breaker_release(b);
    sp_breaker_free(b);
}

static void test_concurrency_cap_applies_before_the_trial_quota(void **state)
{
    struct sp_breaker_conf conf = {
        .max_failures = 1, .open_ns = SP_SEC, .half_open_quota = 5, .max_concurrent = 1};
    struct sp_breaker *b = make(&conf);

    (void)state;
    assert_int_equal(sp_breaker_allow(b, 0), SP_BREAKER_ALLOW);
    sp_breaker_report(b, false, 0); /* opens; the request is still in flight */
    assert_int_equal(sp_breaker_allow(b, 2 * SP_SEC), SP_BREAKER_REJECT_CONCURRENCY);
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_HALF_OPEN);
    sp_breaker_release(b);
    assert_int_equal(sp_breaker_allow(b, 2 * SP_SEC), SP_BREAKER_ALLOW);
    sp_breaker_release(b);
    sp_breaker_free(b);
}

static void test_outcomes_reaching_an_open_breaker_change_nothing(void **state)
{
    struct sp_breaker_conf conf = {.max_failures = 1, .open_ns = 5 * SP_SEC};
    struct sp_breaker *b = make(&conf);

    (void)state;
    assert_int_equal(sp_breaker_allow(b, 0), SP_BREAKER_ALLOW);
    fail_n(b, 1, 0);
    sp_breaker_report(b, true, SP_SEC); /* late success of the request admitted while closed */
    sp_breaker_report(b, false, SP_SEC);
    sp_breaker_release(b);
    assert_int_equal(sp_breaker_state(b), SP_BREAKER_OPEN);
    assert_int_equal(sp_breaker_retry_at(b), 5 * SP_SEC);
    assert_int_equal(sp_breaker_stats(b)->successes, 1);
    assert_int_equal(sp_breaker_stats(b)->failures, 2);
    sp_breaker_free(b);
}

static void test_every_transition_is_counted(void **state)
{
    struct sp_breaker_conf conf = {.max_failures = 1, .open_ns = SP_SEC, .max_open_ns = 4 * SP_SEC};
    struct sp_breaker *b = make(&conf);
    const struct sp_breaker_stats *st = sp_breaker_stats(b);

    (void)state;
    assert_string_equal(sp_breaker_reason(b), "initial");
    fail_n(b, 1, 0);              /* closed -> open */
    request(b, false, SP_SEC);    /* open -> half_open -> open */
    request(b, true, 3 * SP_SEC); /* open -> half_open -> closed */
    assert_int_equal(st->transitions[SP_BREAKER_CLOSED][SP_BREAKER_OPEN], 1);
    assert_int_equal(st->transitions[SP_BREAKER_OPEN][SP_BREAKER_HALF_OPEN], 2);
    assert_int_equal(st->transitions[SP_BREAKER_HALF_OPEN][SP_BREAKER_OPEN], 1);
    assert_int_equal(st->transitions[SP_BREAKER_HALF_OPEN][SP_BREAKER_CLOSED], 1);
    assert_int_equal(st->transitions[SP_BREAKER_CLOSED][SP_BREAKER_HALF_OPEN], 0);
    assert_int_equal(st->transitions[SP_BREAKER_OPEN][SP_BREAKER_CLOSED], 0);
    sp_breaker_free(b);
}

static void test_breaker_new_rejects_invalid_confs(void **state)
{
    struct sp_breaker *b = NULL; /* must stay untouched on error */
    struct sp_breaker_conf no_open = {.max_failures = 1};
    struct sp_breaker_conf short_cap = {.open_ns = 2 * SP_SEC, .max_open_ns = SP_SEC};
    struct sp_breaker_conf big_ratio = {
        .open_ns = SP_SEC, .failure_ratio_pct = 101, .window_ns = SP_SEC};
    struct sp_breaker_conf no_window = {.open_ns = SP_SEC, .failure_ratio_pct = 50};

    (void)state;
    assert_int_equal(sp_breaker_new(NULL, &b), -EINVAL);
    assert_int_equal(sp_breaker_new(&no_open, NULL), -EINVAL);
    assert_int_equal(sp_breaker_new(&no_open, &b), -EINVAL);
    assert_int_equal(sp_breaker_new(&short_cap, &b), -EINVAL);
    assert_int_equal(sp_breaker_new(&big_ratio, &b), -EINVAL);
    assert_int_equal(sp_breaker_new(&no_window, &b), -EINVAL);
    assert_null(b);
    sp_breaker_free(NULL);
}

static void test_state_and_verdict_names_are_stable(void **state)
{
    (void)state;
    assert_string_equal(sp_breaker_state_name(SP_BREAKER_CLOSED), "closed");
    assert_string_equal(sp_breaker_state_name(SP_BREAKER_OPEN), "open");
    assert_string_equal(sp_breaker_state_name(SP_BREAKER_HALF_OPEN), "half_open");
    assert_string_equal(sp_breaker_state_name((enum sp_breaker_state)7), "unknown");
    assert_string_equal(sp_breaker_verdict_name(SP_BREAKER_ALLOW), "allow");
    assert_string_equal(sp_breaker_verdict_name(SP_BREAKER_REJECT_OPEN), "reject_open");
    assert_string_equal(sp_breaker_verdict_name(SP_BREAKER_REJECT_HALF_OPEN), "reject_half_open");
    assert_string_equal(sp_breaker_verdict_name(SP_BREAKER_REJECT_CONCURRENCY),
                        "reject_concurrency");
    assert_string_equal(sp_breaker_verdict_name((enum sp_breaker_verdict)9), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_breaker_opens_after_max_failures),
        cmocka_unit_test(test_a_success_resets_the_consecutive_failures),
        cmocka_unit_test(test_breaker_opens_on_ratio_only_above_minimum_volume),
        cmocka_unit_test(test_ratio_below_threshold_keeps_the_breaker_closed),
        cmocka_unit_test(test_failures_that_left_the_window_do_not_count_in_the_ratio),
        cmocka_unit_test(test_open_breaker_half_opens_after_the_open_time),
        cmocka_unit_test(test_half_open_admits_only_its_quota_of_trials_in_flight),
        cmocka_unit_test(test_half_open_closes_after_the_required_successes),
        cmocka_unit_test(test_closed_breaker_starts_its_counts_afresh),
        cmocka_unit_test(test_half_open_failure_reopens_for_longer),
        cmocka_unit_test(test_open_time_backoff_stops_at_its_cap),
        cmocka_unit_test(test_open_time_backoff_resets_after_a_close),
        cmocka_unit_test(test_without_max_open_time_the_open_time_stays_fixed),
        cmocka_unit_test(test_concurrency_cap_rejects_until_a_request_is_released),
        cmocka_unit_test(test_zero_caps_mean_unlimited),
        cmocka_unit_test(test_requests_from_before_half_open_take_no_trial_slot),
        cmocka_unit_test(test_concurrency_cap_applies_before_the_trial_quota),
        cmocka_unit_test(test_outcomes_reaching_an_open_breaker_change_nothing),
        cmocka_unit_test(test_every_transition_is_counted),
        cmocka_unit_test(test_breaker_new_rejects_invalid_confs),
        cmocka_unit_test(test_state_and_verdict_names_are_stable),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
