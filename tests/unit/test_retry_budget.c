/* test_retry_budget.c: unit tests of src/policy/retry_budget.c: the minimum allowance, the
 * ratio of requests in flight, slots freed by finished retries and requests, and the counters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>

#include "policy/retry_budget.h"

static void start_requests(struct sp_budget *b, int n)
{
    for (int i = 0; i < n; i++)
        sp_budget_request_started(b);
}

static void test_budget_allows_min_retries_without_traffic(void **state)
{
    struct sp_budget_conf conf = {.ratio_pct = 20, .min_retries = 3};
    struct sp_budget b;

    (void)state;
    assert_int_equal(sp_budget_init(&b, &conf), 0);
    assert_int_equal(sp_budget_allowance(&b), 3);
    for (int i = 0; i < 3; i++)
        assert_true(sp_budget_try_retry(&b));
    assert_false(sp_budget_try_retry(&b));
}

static void test_budget_allows_its_ratio_of_requests_in_flight(void **state)
{
    struct sp_budget_conf conf = {.ratio_pct = 20, .min_retries = 3};
    struct sp_budget b;
    int granted = 0;

    (void)state;
    assert_int_equal(sp_budget_init(&b, &conf), 0);
    start_requests(&b, 100);
    assert_int_equal(sp_budget_allowance(&b), 20);
    while (sp_budget_try_retry(&b))
        granted++;
    assert_int_equal(granted, 20);
}

static void test_budget_ratio_below_the_minimum_gives_the_minimum(void **state)
{
    struct sp_budget_conf conf = {.ratio_pct = 10, .min_retries = 5};
    struct sp_budget b;

    (void)state;
    assert_int_equal(sp_budget_init(&b, &conf), 0);
    start_requests(&b, 49); /* 4.9 rounds down to 4 < 5 */
    assert_int_equal(sp_budget_allowance(&b), 5);
    start_requests(&b, 11); /* 6 > 5 */
    assert_int_equal(sp_budget_allowance(&b), 6);
}

static void test_finished_retry_frees_its_slot(void **state)
{
    struct sp_budget_conf conf = {.ratio_pct = 0, .min_retries = 1};
    struct sp_budget b;

    (void)state;
    assert_int_equal(sp_budget_init(&b, &conf), 0);
    assert_true(sp_budget_try_retry(&b));
    assert_false(sp_budget_try_retry(&b));
    sp_budget_retry_finished(&b);
    assert_true(sp_budget_try_retry(&b));
}

static void test_finished_requests_shrink_the_allowance(void **state)
{
    struct sp_budget_conf conf = {.ratio_pct = 50, .min_retries = 0};
    struct sp_budget b;

    (void)state;
    assert_int_equal(sp_budget_init(&b, &conf), 0);
    start_requests(&b, 4);
    assert_true(sp_budget_try_retry(&b));
    assert_true(sp_budget_try_retry(&b));
    for (int i = 0; i < 2; i++)
        sp_budget_request_finished(&b);
    assert_int_equal(sp_budget_allowance(&b), 1);
    assert_false(sp_budget_try_retry(&b)); /* 2 in flight already exceed the new allowance */
}

static void test_zero_budget_never_retries(void **state)
{
    struct sp_budget_conf conf = {0};
    struct sp_budget b;

    (void)state;
    assert_int_equal(sp_budget_init(&b, &conf), 0);
    start_requests(&b, 1000);
    assert_false(sp_budget_try_retry(&b));
}

static void test_every_budget_answer_is_counted(void **state)
{
    struct sp_budget_conf conf = {.ratio_pct = 100, .min_retries = 0};
    struct sp_budget b;
    const struct sp_budget_stats *st;

    (void)state;
    assert_int_equal(sp_budget_init(&b, &conf), 0);
    start_requests(&b, 2);
    assert_true(sp_budget_try_retry(&b));
    assert_true(sp_budget_try_retry(&b));
    assert_false(sp_budget_try_retry(&b));
    sp_budget_retry_finished(&b);
    sp_budget_request_finished(&b);
    st = sp_budget_stats(&b);
    assert_int_equal(st->requests_started, 2);
    assert_int_equal(st->requests_finished, 1);
    assert_int_equal(st->retries_granted, 2);
    assert_int_equal(st->retries_denied, 1);
    assert_int_equal(st->retries_finished, 1);
}

static void test_budget_init_rejects_a_missing_or_absurd_conf(void **state)
{
    struct sp_budget_conf conf = {.ratio_pct = 1001};
    struct sp_budget b;

    (void)state;
    assert_int_equal(sp_budget_init(&b, NULL), -EINVAL);
    assert_int_equal(sp_budget_init(&b, &conf), -EINVAL);
    conf.ratio_pct = 1000;
    assert_int_equal(sp_budget_init(&b, &conf), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_allows_min_retries_without_traffic),
        cmocka_unit_test(test_budget_allows_its_ratio_of_requests_in_flight),
        cmocka_unit_test(test_budget_ratio_below_the_minimum_gives_the_minimum),
        cmocka_unit_test(test_finished_retry_frees_its_slot),
        cmocka_unit_test(test_finished_requests_shrink_the_allowance),
        cmocka_unit_test(test_zero_budget_never_retries),
        cmocka_unit_test(test_every_budget_answer_is_counted),
        cmocka_unit_test(test_budget_init_rejects_a_missing_or_absurd_conf),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
