/* test_lb.c: unit tests of src/lb: the name table, smooth weighted round-robin (exact
 * distribution, rotation, no bursts) and weighted random (distribution within tolerance), and
 * how both treat ineligible backends. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/util.h"
#include "lb/lb.h"

/* Makes `picks` picks and adds each picked index to counts[]. */
static void pick_many(struct sp_lb *lb, const struct sp_lb_backend *b, size_t n, unsigned picks,
                      unsigned *counts)
{
    for (unsigned i = 0; i < picks; i++) {
        size_t idx = SIZE_MAX;

        assert_int_equal(sp_lb_pick(lb, b, n, (uint64_t)i * 1000, &idx), 0);
        assert_true(idx < n);
        counts[idx]++;
    }
}

static void test_ops_are_found_by_their_config_names(void **state)
{
    (void)state;
    assert_ptr_equal(sp_lb_ops_by_name("round_robin"), &sp_lb_round_robin_ops);
    assert_ptr_equal(sp_lb_ops_by_name("random"), &sp_lb_random_ops);
    assert_null(sp_lb_ops_by_name("least_conn"));
    assert_null(sp_lb_ops_by_name(""));
    assert_null(sp_lb_ops_by_name(NULL));
}

static void test_new_rejects_unknown_kind_and_zero_backends(void **state)
{
    struct sp_lb *lb = (struct sp_lb *)0x1;

    (void)state;
    assert_int_equal(sp_lb_new((enum sp_lb_kind)42, 3, &lb), -EINVAL);
    assert_int_equal(sp_lb_new(SP_LB_ROUND_ROBIN, 0, &lb), -EINVAL);
    assert_ptr_equal(lb, (struct sp_lb *)0x1); /* untouched on error */
    sp_lb_free(NULL);
}

static void test_pick_rejects_a_backend_count_other_than_the_one_given_to_new(void **state)
{
    struct sp_lb_backend b[3] = {{1, true, 0}, {1, true, 0}, {1, true, 0}};
    struct sp_lb *lb;
    size_t idx = 7;

    (void)state;
    assert_int_equal(sp_lb_new(SP_LB_ROUND_ROBIN, 2, &lb), 0);
    assert_int_equal(sp_lb_pick(lb, b, 3, 0, &idx), -EINVAL);
    assert_int_equal(idx, 7);
    sp_lb_free(lb);
}

static void test_round_robin_with_equal_weights_rotates_in_order(void **state)
{
    struct sp_lb_backend b[4] = {{1, true, 0}, {1, true, 0}, {1, true, 0}, {1, true, 0}};
    struct sp_lb *lb;
    size_t idx;

    (void)state;
    assert_int_equal(sp_lb_new(SP_LB_ROUND_ROBIN, 4, &lb), 0);
    for (size_t i = 0; i < 40; i++) {
        assert_int_equal(sp_lb_pick(lb, b, 4, 0, &idx), 0);
        assert_int_equal(idx, i % 4);
    }
    sp_lb_free(lb);
}

static void test_round_robin_distributes_5_3_2_exactly_over_1000_picks(void **state)
{
    struct sp_lb_backend b[3] = {{5, true, 0}, {3, true, 0}, {2, true, 0}};
    unsigned counts[3] = {0};
    struct sp_lb *lb;

    (void)state;
    assert_int_equal(sp_lb_new(SP_LB_ROUND_ROBIN, 3, &lb), 0);
    pick_many(lb, b, 3, 1000, counts);
    assert_int_equal(counts[0], 500);
    assert_int_equal(counts[1], 300);
    assert_int_equal(counts[2], 200);
    sp_lb_free(lb);
}

static void test_round_robin_interleaves_a_heavy_backend_instead_of_bursting(void **state)
{
    /* Smooth WRR with 5:1:1 repeats "a a b a c a a" (period 7). Plain WRR would send 5 in a row;
     * the smooth one's longest run is 4, where one period's tail "a a" meets the next period's
     * head "a a". (Two light picks per period can at best split five heavy picks into runs of
     * 3 and 2; nginx's algorithm does not reach that, and this pins what it does reach.) */
    static const size_t period[7] = {0, 0, 1, 0, 2, 0, 0};
    struct sp_lb_backend b[3] = {{5, true, 0}, {1, true, 0}, {1, true, 0}};
    struct sp_lb *lb;
    unsigned run = 0, max_run = 0;
    size_t idx;

    (void)state;
    assert_int_equal(sp_lb_new(SP_LB_ROUND_ROBIN, 3, &lb), 0);
    for (size_t i = 0; i < 700; i++) {
        assert_int_equal(sp_lb_pick(lb, b, 3, 0, &idx), 0);
        assert_int_equal(idx, period[i % 7]);
        run = idx == 0 ? run + 1 : 0;
        max_run = SP_MAX(max_run, run);
    }
    assert_int_equal(max_run, 4);
    sp_lb_free(lb);
}

static void test_round_robin_never_picks_an_ineligible_backend(void **state)
{
    struct sp_lb_backend b[3] = {{5, true, 0}, {3, false, 0}, {2, true, 0}};
    unsigned counts[3] = {0};
    struct sp_lb *lb;

    (void)state;
    assert_int_equal(sp_lb_new(SP_LB_ROUND_ROBIN, 3, &lb), 0);
    pick_many(lb, b, 3, 700, counts);
    assert_int_equal(counts[1], 0);
    assert_int_equal(counts[0], 500); /* the rest keeps its 5:2 ratio */
    assert_int_equal(counts[2], 200);
    sp_lb_free(lb);
}

static void test_round_robin_gives_a_recovered_backend_its_share_again(void **state)
{
    struct sp_lb_backend b[2] = {{1, true, 0}, {1, true, 0}};
    unsigned counts[2] = {0};
    struct sp_lb *lb;

    (void)state;
    assert_int_equal(sp_lb_new(SP_LB_ROUND_ROBIN, 2, &lb), 0);
    b[1].eligible = false;
    pick_many(lb, b, 2, 11, counts);
    assert_int_equal(counts[0], 11);
    b[1].eligible = true;
    memset(counts, 0, sizeof(counts));
    pick_many(lb, b, 2, 100, counts);
    assert_int_equal(counts[0], 50);
    assert_int_equal(counts[1], 50);
    sp_lb_free(lb);
}

static void test_round_robin_returns_eagain_when_no_backend_is_eligible(void **state)
{
    struct sp_lb_backend b[2] = {{1, false, 0}, {4, false, 0}};
    struct sp_lb *lb;
    size_t idx = 9;

    (void)state;
    assert_int_equal(sp_lb_new(SP_LB_ROUND_ROBIN, 2, &lb), 0);
    assert_int_equal(sp_lb_pick(lb, b, 2, 0, &idx), -EAGAIN);
    assert_int_equal(idx, 9);
    sp_lb_free(lb);
}

static void test_random_distributes_5_3_2_within_two_percent_over_100k_picks(void **state)
{
    struct sp_lb_backend b[3] = {{5, true, 0}, {3, true, 0}, {2, true, 0}};
    unsigned counts[3] = {0};
    const unsigned picks = 100000;
    const unsigned expected[3] = {50000, 30000, 20000};
    const unsigned tolerance = picks / 50; /* 2 percentage points */
    struct sp_lb *lb;

    (void)state;
    assert_int_equal(sp_lb_new(SP_LB_RANDOM, 3, &lb), 0);
    pick_many(lb, b, 3, picks, counts);
    for (size_t i = 0; i < 3; i++)
        assert_in_range(counts[i], expected[i] - tolerance, expected[i] + tolerance);
    sp_lb_free(lb);
}

static void test_random_never_picks_an_ineligible_backend(void **state)
{
    struct sp_lb_backend b[4] = {{1, false, 0}, {3, true, 0}, {9, false, 0}, {1, true, 0}};
    unsigned counts[4] = {0};
    struct sp_lb *lb;

    (void)state;
    assert_int_equal(sp_lb_new(SP_LB_RANDOM, 4, &lb), 0);
    pick_many(lb, b, 4, 10000, counts);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[2], 0);
    assert_int_equal(counts[1] + counts[3], 10000);
    sp_lb_free(lb);
}

static void test_random_returns_eagain_when_no_backend_is_eligible(void **state)
{
    struct sp_lb_backend b[2] = {{1, false, 0}, {4, false, 0}};
    struct sp_lb *lb;
    size_t idx = 9;

    (void)state;
    assert_int_equal(sp_lb_new(SP_LB_RANDOM, 2, &lb), 0);
    assert_int_equal(sp_lb_pick(lb, b, 2, 0, &idx), -EAGAIN);
    assert_int_equal(idx, 9);
    sp_lb_free(lb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_are_found_by_their_config_names),
        cmocka_unit_test(test_new_rejects_unknown_kind_and_zero_backends),
        cmocka_unit_test(test_pick_rejects_a_backend_count_other_than_the_one_given_to_new),
        cmocka_unit_test(test_round_robin_with_equal_weights_rotates_in_order),
        cmocka_unit_test(test_round_robin_distributes_5_3_2_exactly_over_1000_picks),
        cmocka_unit_test(test_round_robin_interleaves_a_heavy_backend_instead_of_bursting),
        cmocka_unit_test(test_round_robin_never_picks_an_ineligible_backend),
        cmocka_unit_test(test_round_robin_gives_a_recovered_backend_its_share_again),
        cmocka_unit_test(test_round_robin_returns_eagain_when_no_backend_is_eligible),
        cmocka_unit_test(test_random_distributes_5_3_2_within_two_percent_over_100k_picks),
        cmocka_unit_test(test_random_never_picks_an_ineligible_backend),
        cmocka_unit_test(test_random_returns_eagain_when_no_backend_is_eligible),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
