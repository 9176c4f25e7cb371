/* test_lb.c: unit tests of src/lb/lb.c, round_robin.c and random.c: the name table and
 * constructors, smooth weighted round-robin (exact distribution, rotation, no bursts), weighted
 * random (distribution within tolerance), how both treat ineligible backends, and slow start
 * (which the wrapper applies to every strategy). The strategies that use load or latency are in
 * test_lb_load.c, rendezvous in test_lb_rendezvous.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/util.h"
#include "core/time.h"
#include "lb/lb.h"
#include "seeded.h"

static const struct sp_lb_params seeded = {.random_u64 = seeded_u64, .random_ctx = &seeded_state};

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
    assert_ptr_equal(sp_lb_ops_by_name("weighted_round_robin"), &sp_lb_weighted_round_robin_ops);
    assert_ptr_equal(sp_lb_ops_by_name("least_conn"), &sp_lb_least_conn_ops);
    assert_ptr_equal(sp_lb_ops_by_name("p2c"), &sp_lb_p2c_ops);
    assert_ptr_equal(sp_lb_ops_by_name("ewma"), &sp_lb_ewma_ops);
    assert_ptr_equal(sp_lb_ops_by_name("rendezvous"), &sp_lb_rendezvous_ops);
    assert_null(sp_lb_ops_by_name("least_connections"));
    assert_null(sp_lb_ops_by_name(""));
    assert_null(sp_lb_ops_by_name(NULL));
}

static void test_new_rejects_unknown_kind_and_zero_backends(void **state)
{
    struct sp_lb *lb = (struct sp_lb *)0x1;

    (void)state;
    assert_int_equal(seeded_lb_new((enum sp_lb_kind)42, 3, &lb), -EINVAL);
    assert_int_equal(seeded_lb_new(SP_LB_ROUND_ROBIN, 0, &lb), -EINVAL);
    assert_ptr_equal(lb, (struct sp_lb *)0x1); /* untouched on error */
    sp_lb_free(NULL);
}

static void test_pick_rejects_a_backend_count_other_than_the_one_given_to_new(void **state)
{
    struct sp_lb_backend b[3] = {{1, true, 0}, {1, true, 0}, {1, true, 0}};
    struct sp_lb *lb;
    size_t idx = 7;

    (void)state;
    assert_int_equal(seeded_lb_new(SP_LB_ROUND_ROBIN, 2, &lb), 0);
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
    assert_int_equal(seeded_lb_new(SP_LB_ROUND_ROBIN, 4, &lb), 0);
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
    assert_int_equal(seeded_lb_new(SP_LB_ROUND_ROBIN, 3, &lb), 0);
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
    assert_int_equal(seeded_lb_new(SP_LB_ROUND_ROBIN, 3, &lb), 0);
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
    assert_int_equal(seeded_lb_new(SP_LB_ROUND_ROBIN, 3, &lb), 0);
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
    assert_int_equal(seeded_lb_new(SP_LB_ROUND_ROBIN, 2, &lb), 0);
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
    assert_int_equal(seeded_lb_new(SP_LB_ROUND_ROBIN, 2, &lb), 0);
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
    assert_int_equal(seeded_lb_new(SP_LB_RANDOM, 3, &lb), 0);
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
    assert_int_equal(seeded_lb_new(SP_LB_RANDOM, 4, &lb), 0);
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
    assert_int_equal(seeded_lb_new(SP_LB_RANDOM, 2, &lb), 0);
    assert_int_equal(sp_lb_pick(lb, b, 2, 0, &idx), -EAGAIN);
    assert_int_equal(idx, 9);
    sp_lb_free(lb);
}

static void test_new_by_name_rejects_unknown_names_and_zero_backends(void **state)
{
    struct sp_lb *lb = (struct sp_lb *)0x1;

    (void)state;
    assert_int_equal(sp_lb_new_by_name("fastest", &seeded, NULL, 3, &lb), -EINVAL);
    assert_int_equal(sp_lb_new_by_name(NULL, &seeded, NULL, 3, &lb), -EINVAL);
    assert_int_equal(sp_lb_new_by_name("p2c", &seeded, NULL, 0, &lb), -EINVAL);
    assert_ptr_equal(lb, (struct sp_lb *)0x1);
}

static void test_every_strategy_builds_picks_and_frees_by_name(void **state)
{
    static const char *const names[] = {
        "random", "round_robin", "weighted_round_robin", "least_conn", "p2c", "ewma", "rendezvous"};
    static const char *const ids[] = {"a", "b", "c"};
    struct sp_lb_backend b[3] = {{1, true, 0}, {2, false, 0}, {3, true, 0}};
    const struct sp_lb_params params = {
        .random_u64 = seeded_u64, .random_ctx = &seeded_state, .slow_start_ns = SP_SEC};

    (void)state;
    for (size_t i = 0; i < SP_ARRAY_LEN(names); i++) {
        struct sp_lb *lb;
        size_t idx = SIZE_MAX;

        assert_int_equal(sp_lb_new_by_name(names[i], &params, ids, 3, &lb), 0);
        assert_int_equal(sp_lb_uses_key(lb), strcmp(names[i], "rendezvous") == 0);
        for (int k = 0; k < 100; k++) {
            assert_int_equal(sp_lb_pick_key(lb, b, 3, (const uint8_t *)"k", 1, 0, &idx), 0);
            assert_true(idx == 0 || idx == 2);
            sp_lb_report(lb, idx, SP_MS, true, 0);
        }
        sp_lb_report(lb, 99, SP_MS, true, 0); /* out of range: ignored */
        sp_lb_seed_rtt(lb, 99, SP_MS);
        sp_lb_free(lb);
    }
}

static void test_weighted_round_robin_is_the_smooth_sequence_too(void **state)
{
    static const size_t period[7] = {0, 0, 1, 0, 2, 0, 0};
    struct sp_lb_backend b[3] = {{5, true, 0}, {1, true, 0}, {1, true, 0}};
    struct sp_lb *lb;
    size_t idx;

    (void)state;
    assert_int_equal(sp_lb_new_by_name("weighted_round_robin", &seeded, NULL, 3, &lb), 0);
    for (size_t i = 0; i < 70; i++) {
        assert_int_equal(sp_lb_pick(lb, b, 3, 0, &idx), 0);
        assert_int_equal(idx, period[i % 7]);
    }
    sp_lb_free(lb);
}

static void test_round_robin_never_runs_a_backend_longer_than_its_share_allows(void **state)
{
    /* Share w/total: no backend is picked more than ceil(w / (total - w)) + 1 times in a row,
     * where plain WRR would run it w times. 50 weight sets from a fixed-seed generator (the same
     * sets every run: a unit test must not depend on luck), 20k picks each. */
    uint64_t seed = 0x9e3779b97f4a7c15ULL;

    (void)state;
    for (int trial = 0; trial < 50; trial++) {
        struct sp_lb_backend b[4];
        unsigned total = 0, run = 0;
        size_t idx, last = SIZE_MAX;
        struct sp_lb *lb;

        for (size_t i = 0; i < 4; i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL; /* LCG (Knuth) */
            b[i] = (struct sp_lb_backend){(unsigned)((seed >> 33) % 20) + 1, true, 0};
            total += b[i].weight;
        }
        assert_int_equal(sp_lb_new_by_name("weighted_round_robin", &seeded, NULL, 4, &lb), 0);
        for (int k = 0; k < 20000; k++) {
            unsigned w, limit;

            assert_int_equal(sp_lb_pick(lb, b, 4, 0, &idx), 0);
            run = idx == last ? run + 1 : 1;
            last = idx;
            w = b[idx].weight;
            limit = w == total ? UINT32_MAX : (w + (total - w) - 1) / (total - w) + 1;
            assert_true(run <= limit);
        }
        sp_lb_free(lb);
    }
}

/* Share of backend 1 over `picks` picks at a fixed time, in percent. */
static double share_of_second(struct sp_lb *lb, const struct sp_lb_backend *b, sp_time_t now,
                              unsigned picks)
{
    unsigned hits = 0;

    for (unsigned i = 0; i < picks; i++) {
        size_t idx;

        assert_int_equal(sp_lb_pick(lb, b, 2, now, &idx), 0);
        hits += idx == 1;
    }
    return 100.0 * hits / picks;
}

static void test_slow_start_ramps_a_recovered_backend_from_ten_percent_to_its_weight(void **state)
{
    const struct sp_lb_params params = {
        .random_u64 = seeded_u64, .random_ctx = &seeded_state, .slow_start_ns = 10 * SP_SEC};
    struct sp_lb_backend b[2] = {{1, true, 0}, {1, false, 0}};
    struct sp_lb *lb;

    (void)state;
    assert_int_equal(sp_lb_new_by_name("round_robin", &params, NULL, 2, &lb), 0);
    assert_true(share_of_second(lb, b, 0, 100) == 0);
    b[1].eligible = true; /* comes back at t = 1 s */
    /* effective weights 1 : 0.1 -> 9.1%; 1 : 0.55 -> 35.5%; 1 : 1 -> 50% (in permille below) */
    assert_in_range(share_of_second(lb, b, 1 * SP_SEC, 11000) * 10, 90, 92);
    assert_in_range(share_of_second(lb, b, 6 * SP_SEC, 15500) * 10, 350, 360);
    assert_in_range(share_of_second(lb, b, 11 * SP_SEC, 1000) * 10, 500, 500);
    assert_in_range(share_of_second(lb, b, 60 * SP_SEC, 1000) * 10, 500, 500);
    sp_lb_free(lb);
}

static void test_slow_start_restarts_each_time_a_backend_comes_back(void **state)
{
    const struct sp_lb_params params = {
        .random_u64 = seeded_u64, .random_ctx = &seeded_state, .slow_start_ns = 10 * SP_SEC};
    struct sp_lb_backend b[2] = {{1, true, 0}, {1, true, 0}};
    struct sp_lb *lb;

    (void)state;
    assert_int_equal(sp_lb_new_by_name("random", &params, NULL, 2, &lb), 0);
    /* eligible from the first pick: a new balancer ramps nobody */
    assert_in_range(share_of_second(lb, b, 0, 100000), 48, 52);
    b[1].eligible = false;
    assert_true(share_of_second(lb, b, 20 * SP_SEC, 100) == 0);
    b[1].eligible = true;
    assert_in_range(share_of_second(lb, b, 30 * SP_SEC, 100000), 7, 11); /* 9.1% */
    assert_in_range(share_of_second(lb, b, 45 * SP_SEC, 100000), 48, 52);
    sp_lb_free(lb);
}

static void test_weights_above_the_maximum_are_clamped_not_overflowed(void **state)
{
    struct sp_lb_backend b[2] = {{UINT32_MAX, true, 0}, {SP_LB_WEIGHT_MAX, true, 0}};
    unsigned counts[2] = {0};
    struct sp_lb *lb;

    (void)state;
    assert_int_equal(sp_lb_new_by_name("round_robin", &seeded, NULL, 2, &lb), 0);
    pick_many(lb, b, 2, 1000, counts);
    assert_int_equal(counts[0], 500);
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
        cmocka_unit_test(test_new_by_name_rejects_unknown_names_and_zero_backends),
        cmocka_unit_test(test_every_strategy_builds_picks_and_frees_by_name),
        cmocka_unit_test(test_weighted_round_robin_is_the_smooth_sequence_too),
        cmocka_unit_test(test_round_robin_never_runs_a_backend_longer_than_its_share_allows),
        cmocka_unit_test(test_slow_start_ramps_a_recovered_backend_from_ten_percent_to_its_weight),
        cmocka_unit_test(test_slow_start_restarts_each_time_a_backend_comes_back),
        cmocka_unit_test(test_weights_above_the_maximum_are_clamped_not_overflowed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
