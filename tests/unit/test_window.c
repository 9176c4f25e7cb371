/* test_window.c: unit tests of src/policy/window.c: counting within the window, expiry of old
 * buckets as the fake clock moves, the minimum volume of the ratio, disabled and reset windows. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>

#include "policy/window.h"

static void add_n(struct sp_window *w, int n, bool ok, sp_time_t now)
{
    for (int i = 0; i < n; i++)
        sp_window_add(w, ok, now);
}

static void test_window_counts_outcomes_added_within_it(void **state)
{
    struct sp_window w;
    uint64_t req, fail;

    (void)state;
    assert_int_equal(sp_window_init(&w, 10 * SP_SEC), 0);
    add_n(&w, 3, true, 1 * SP_SEC);
    add_n(&w, 2, false, 5 * SP_SEC);
    sp_window_counts(&w, 9 * SP_SEC, &req, &fail);
    assert_int_equal(req, 5);
    assert_int_equal(fail, 2);
}

static void test_window_forgets_outcomes_older_than_its_length(void **state)
{
    struct sp_window w;
    uint64_t req, fail;

    (void)state;
    assert_int_equal(sp_window_init(&w, 10 * SP_SEC), 0);
    add_n(&w, 4, false, 1 * SP_SEC);
    add_n(&w, 1, true, 8 * SP_SEC);
    sp_window_counts(&w, 10 * SP_SEC + 999 * SP_MS, &req, &fail); /* bucket 1 is still in */
    assert_int_equal(req, 5);
    sp_window_counts(&w, 11 * SP_SEC, &req, &fail); /* bucket 1 is out */
    assert_int_equal(req, 1);
    assert_int_equal(fail, 0);
    sp_window_counts(&w, 100 * SP_SEC, &req, &fail);
    assert_int_equal(req, 0);
}

static void test_window_recycles_a_bucket_after_a_full_lap(void **state)
{
    struct sp_window w;
    uint64_t req, fail;

    (void)state;
    assert_int_equal(sp_window_init(&w, 10 * SP_SEC), 0);
    add_n(&w, 5, false, 2 * SP_SEC);
    add_n(&w, 1, true, 12 * SP_SEC); /* same slot, next lap */
    sp_window_counts(&w, 12 * SP_SEC, &req, &fail);
    assert_int_equal(req, 1);
    assert_int_equal(fail, 0);
}

static void test_ratio_counts_only_above_the_minimum_volume(void **state)
{
    struct sp_window w;

    (void)state;
    assert_int_equal(sp_window_init(&w, 10 * SP_SEC), 0);
    add_n(&w, 9, false, SP_SEC);
    assert_false(sp_window_ratio_reached(&w, SP_SEC, 50, 10));
    add_n(&w, 1, true, SP_SEC);
    assert_true(sp_window_ratio_reached(&w, SP_SEC, 50, 10)); /* 9 of 10 */
    assert_true(sp_window_ratio_reached(&w, SP_SEC, 90, 10)); /* exactly 90% reaches 90 */
    assert_false(sp_window_ratio_reached(&w, SP_SEC, 91, 10));
    assert_false(sp_window_ratio_reached(&w, SP_SEC, 0, 0)); /* pct 0: off */
}

static void test_ratio_of_an_empty_window_is_never_reached(void **state)
{
    struct sp_window w;

    (void)state;
    assert_int_equal(sp_window_init(&w, 10 * SP_SEC), 0);
    assert_false(sp_window_ratio_reached(&w, SP_SEC, 1, 0));
}

static void test_disabled_window_ignores_outcomes(void **state)
{
    struct sp_window w;
    uint64_t req, fail;

    (void)state;
    assert_int_equal(sp_window_init(&w, 0), 0);
    add_n(&w, 5, false, SP_SEC);
    sp_window_counts(&w, SP_SEC, &req, &fail);
    assert_int_equal(req, 0);
    assert_int_equal(fail, 0);
}

static void test_window_shorter_than_its_buckets_is_rejected(void **state)
{
    struct sp_window w;

    (void)state;
    assert_int_equal(sp_window_init(&w, SP_WINDOW_BUCKETS - 1), -EINVAL);
    assert_int_equal(sp_window_init(&w, SP_WINDOW_BUCKETS), 0);
}

static void test_reset_forgets_everything_but_the_length(void **state)
{
    struct sp_window w;
    uint64_t req, fail;

    (void)state;
    assert_int_equal(sp_window_init(&w, 10 * SP_SEC), 0);
    add_n(&w, 5, false, SP_SEC);
    sp_window_reset(&w);
    sp_window_counts(&w, SP_SEC, &req, &fail);
    assert_int_equal(req, 0);
    add_n(&w, 2, false, 2 * SP_SEC);
    sp_window_counts(&w, 2 * SP_SEC, &req, &fail);
    assert_int_equal(fail, 2);
}

static void test_outcome_from_a_clock_gone_backwards_is_kept(void **state)
{
    struct sp_window w;
    uint64_t req, fail;

    (void)state;
    assert_int_equal(sp_window_init(&w, 10 * SP_SEC), 0);
    add_n(&w, 1, false, 25 * SP_SEC);
    add_n(&w, 1, false, 15 * SP_SEC); /* same slot, older lap: must not erase the newer one */
    sp_window_counts(&w, 25 * SP_SEC, &req, &fail);
    assert_int_equal(req, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_counts_outcomes_added_within_it),
        cmocka_unit_test(test_window_forgets_outcomes_older_than_its_length),
        cmocka_unit_test(test_window_recycles_a_bucket_after_a_full_lap),
        cmocka_unit_test(test_ratio_counts_only_above_the_minimum_volume),
        cmocka_unit_test(test_ratio_of_an_empty_window_is_never_reached),
        cmocka_unit_test(test_disabled_window_ignores_outcomes),
        cmocka_unit_test(test_window_shorter_than_its_buckets_is_rejected),
        cmocka_unit_test(test_reset_forgets_everything_but_the_length),
        cmocka_unit_test(test_outcome_from_a_clock_gone_backwards_is_kept),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
