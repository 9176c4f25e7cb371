/* test_backoff.c: unit tests of src/policy/backoff.c: the doubling ceiling and its cap, overflow
 * safety, and the bounds of full and equal jitter over fixed and pseudo-random draws. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>

#include "policy/backoff.h"

/* A fixed pseudo-random sequence (splitmix64): deterministic draws, no global state. */
static uint64_t next_rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void test_ceiling_doubles_with_each_attempt_until_the_cap(void **state)
{
    (void)state;
    assert_int_equal(sp_backoff_ceiling(100 * SP_MS, 1 * SP_SEC, 0), 100 * SP_MS);
    assert_int_equal(sp_backoff_ceiling(100 * SP_MS, 1 * SP_SEC, 1), 200 * SP_MS);
    assert_int_equal(sp_backoff_ceiling(100 * SP_MS, 1 * SP_SEC, 2), 400 * SP_MS);
    assert_int_equal(sp_backoff_ceiling(100 * SP_MS, 1 * SP_SEC, 3), 800 * SP_MS);
    assert_int_equal(sp_backoff_ceiling(100 * SP_MS, 1 * SP_SEC, 4), 1 * SP_SEC);
    assert_int_equal(sp_backoff_ceiling(100 * SP_MS, 1 * SP_SEC, 40), 1 * SP_SEC);
}

static void test_ceiling_never_overflows_for_huge_attempts_or_values(void **state)
{
    (void)state;
    assert_int_equal(sp_backoff_ceiling(1, UINT64_MAX, 63), (sp_time_t)1 << 63);
    assert_int_equal(sp_backoff_ceiling(1, UINT64_MAX, 64), UINT64_MAX);
    assert_int_equal(sp_backoff_ceiling(3, UINT64_MAX, 63), UINT64_MAX);
    assert_int_equal(sp_backoff_ceiling(SP_SEC, 60 * SP_SEC, UINT32_MAX), 60 * SP_SEC);
}

static void test_cap_below_base_wins(void **state)
{
    (void)state;
    assert_int_equal(sp_backoff_ceiling(5 * SP_SEC, 1 * SP_SEC, 0), 1 * SP_SEC);
    assert_int_equal(sp_backoff_delay(5 * SP_SEC, 1 * SP_SEC, 3, UINT64_MAX), 1 * SP_SEC);
}

static void test_full_jitter_spans_zero_to_the_ceiling(void **state)
{
    (void)state;
    assert_int_equal(sp_backoff_delay(100 * SP_MS, 1 * SP_SEC, 2, 0), 0);
    assert_int_equal(sp_backoff_delay(100 * SP_MS, 1 * SP_SEC, 2, UINT64_MAX), 400 * SP_MS);
    assert_int_equal(sp_backoff_delay(100 * SP_MS, 1 * SP_SEC, 2, UINT64_MAX / 2), 200 * SP_MS);
    assert_int_equal(sp_backoff_delay(100 * SP_MS, 1 * SP_SEC, 9, UINT64_MAX), 1 * SP_SEC);
}

static void test_full_jitter_stays_within_bounds_for_any_draw(void **state)
{
    uint64_t s = 42;

    (void)state;
    for (unsigned attempt = 0; attempt < 70; attempt++) {
        sp_time_t ceiling = sp_backoff_ceiling(10 * SP_MS, 30 * SP_SEC, attempt);

        for (int i = 0; i < 200; i++)
            assert_true(sp_backoff_delay(10 * SP_MS, 30 * SP_SEC, attempt, next_rnd(&s)) <=
                        ceiling);
    }
    assert_int_equal(sp_backoff_delay(1, UINT64_MAX, 64, 12345), 12345);
}

static void test_full_jitter_grows_with_the_draw(void **state)
{
    sp_time_t prev = 0;

    (void)state;
    for (uint64_t r = 0; r < 64; r++) {
        sp_time_t d = sp_backoff_delay(SP_SEC, 8 * SP_SEC, 3, r << 58);

        assert_true(d >= prev);
        prev = d;
    }
}

static void test_full_jitter_draws_spread_over_the_whole_range(void **state)
{
    uint64_t s = 7;
    unsigned seen[10] = {0};

    (void)state;
    for (int i = 0; i < 1000; i++)
        seen[sp_backoff_delay(1000, 1000, 0, next_rnd(&s)) * 10 / 1001]++;
    for (int i = 0; i < 10; i++)
        assert_true(seen[i] > 50);
}

static void test_equal_jitter_stays_between_half_and_the_whole_ceiling(void **state)
{
    uint64_t s = 9;

    (void)state;
    assert_int_equal(sp_backoff_delay_equal(SP_SEC, 60 * SP_SEC, 1, 0), SP_SEC);
    assert_int_equal(sp_backoff_delay_equal(SP_SEC, 60 * SP_SEC, 1, UINT64_MAX), 2 * SP_SEC);
    for (unsigned attempt = 0; attempt < 10; attempt++) {
        sp_time_t ceiling = sp_backoff_ceiling(SP_SEC, 60 * SP_SEC, attempt);

        for (int i = 0; i < 200; i++) {
            sp_time_t d = sp_backoff_delay_equal(SP_SEC, 60 * SP_SEC, attempt, next_rnd(&s));

            assert_true(d >= ceiling / 2);
            assert_true(d <= ceiling);
        }
    }
}

static void test_zero_base_means_no_delay(void **state)
{
    (void)state;
    assert_int_equal(sp_backoff_delay(0, SP_SEC, 5, UINT64_MAX), 0);
    assert_int_equal(sp_backoff_delay_equal(0, 0, 5, UINT64_MAX), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ceiling_doubles_with_each_attempt_until_the_cap),
        cmocka_unit_test(test_ceiling_never_overflows_for_huge_attempts_or_values),
        cmocka_unit_test(test_cap_below_base_wins),
        cmocka_unit_test(test_full_jitter_spans_zero_to_the_ceiling),
        cmocka_unit_test(test_full_jitter_stays_within_bounds_for_any_draw),
        cmocka_unit_test(test_full_jitter_grows_with_the_draw),
        cmocka_unit_test(test_full_jitter_draws_spread_over_the_whole_range),
        cmocka_unit_test(test_equal_jitter_stays_between_half_and_the_whole_ceiling),
        cmocka_unit_test(test_zero_base_means_no_delay),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
