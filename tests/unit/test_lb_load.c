/* test_lb_load.c: unit tests of the strategies that weigh load and latency: least_conn.c, p2c.c,
 * ewma.c and latency.c. Two simulators on a fake clock drive them: a closed loop where a random
 * in-flight request completes before each pick (every request lasts as long on average, so each
 * backend's share of picks is its share of in-flight requests), and a timed one where each
 * backend answers after its own latency and reports it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/time.h"
#include "core/util.h"
#include "lb/lb.h"
#include "seeded.h"

static const struct sp_lb_params seeded = {.random_u64 = seeded_u64, .random_ctx = &seeded_state};

#define MAX_BACKENDS 4
#define MAX_PENDING 8192

static const char *const load_strategies[] = {"least_conn", "p2c", "ewma"};

/* Completes one in-flight request chosen uniformly among all of them, reports it, and returns its
 * backend. */
static size_t complete_random(struct sp_lb *lb, struct sp_lb_backend *b, size_t n, sp_time_t now)
{
    uint64_t total = 0, r;

    for (size_t i = 0; i < n; i++)
        total += b[i].inflight;
    r = seeded_u64(&seeded_state) % total;
    for (size_t i = 0; i < n; i++) {
        if (r < b[i].inflight) {
            b[i].inflight--;
            sp_lb_report(lb, i, SP_MS, true, now);
            return i;
        }
        r -= b[i].inflight;
    }
    fail();
    return 0;
}

/* The closed loop: `concurrency` requests stay in flight; counts[] gets the picks after warm-up. */
static void run_closed_loop(struct sp_lb *lb, struct sp_lb_backend *b, size_t n,
                            unsigned concurrency, unsigned picks, unsigned *counts)
{
    sp_time_t now = 0;
    size_t idx;

    for (unsigned i = 0; i < concurrency + picks; i++) {
        now += 10 * SP_US;
        if (i >= concurrency)
            complete_random(lb, b, n, now);
        assert_int_equal(sp_lb_pick(lb, b, n, now, &idx), 0);
        b[idx].inflight++;
        if (i >= concurrency)
            counts[idx]++;
    }
}

static void test_load_strategies_distribute_5_3_2_within_two_percent_under_load(void **state)
{
    const unsigned picks = 100000, tolerance = picks / 50;
    const unsigned expected[3] = {50000, 30000, 20000};

    (void)state;
    for (size_t s = 0; s < SP_ARRAY_LEN(load_strategies); s++) {
        struct sp_lb_backend b[3] = {{5, true, 0}, {3, true, 0}, {2, true, 0}};
        unsigned counts[3] = {0};
        struct sp_lb *lb;

        assert_int_equal(sp_lb_new_by_name(load_strategies[s], &seeded, NULL, 3, &lb), 0);
        run_closed_loop(lb, b, 3, 1000, picks, counts);
        for (size_t i = 0; i < 3; i++)
            assert_in_range(counts[i], expected[i] - tolerance, expected[i] + tolerance);
        sp_lb_free(lb);
    }
}

static void test_load_strategies_avoid_a_backend_with_many_requests_in_flight(void **state)
{
    (void)state;
    for (size_t s = 0; s < SP_ARRAY_LEN(load_strategies); s++) {
        struct sp_lb_backend b[3] = {{1, true, 2}, {1, true, 50}, {1, true, 3}};
        unsigned counts[3] = {0};
        struct sp_lb *lb;

        assert_int_equal(sp_lb_new_by_name(load_strategies[s], &seeded, NULL, 3, &lb), 0);
        for (int i = 0; i < 10000; i++) {
            size_t idx;

            assert_int_equal(sp_lb_pick(lb, b, 3, 0, &idx), 0);
            counts[idx]++;
        }
        assert_int_equal(counts[1], 0);
        sp_lb_free(lb);
    }
}

static void test_least_conn_breaks_ties_at_random_not_by_index(void **state)
{
    struct sp_lb_backend b[4] = {{1, true, 1}, {1, true, 0}, {1, true, 0}, {1, true, 0}};
    unsigned counts[4] = {0};
    struct sp_lb *lb;

    (void)state;
    assert_int_equal(sp_lb_new_by_name("least_conn", &seeded, NULL, 4, &lb), 0);
    for (int i = 0; i < 30000; i++) {
        size_t idx;

        assert_int_equal(sp_lb_pick(lb, b, 4, 0, &idx), 0);
        counts[idx]++;
    }
    assert_int_equal(counts[0], 0);
    for (size_t i = 1; i < 4; i++)
        assert_in_range(counts[i], 9000, 11000);
    sp_lb_free(lb);
}

static void test_least_conn_weighs_in_flight_requests_by_weight(void **state)
{
    /* loads (inflight + 1) / weight: 9/4 = 2.25 beats 3/1 */
    struct sp_lb_backend b[2] = {{4, true, 8}, {1, true, 2}};
    struct sp_lb *lb;
    size_t idx;

    (void)state;
    assert_int_equal(sp_lb_new_by_name("least_conn", &seeded, NULL, 2, &lb), 0);
    assert_int_equal(sp_lb_pick(lb, b, 2, 0, &idx), 0);
    assert_int_equal(idx, 0);
    b[0].inflight = 12; /* 13/4 = 3.25 loses to 3 */
    assert_int_equal(sp_lb_pick(lb, b, 2, 0, &idx), 0);
    assert_int_equal(idx, 1);
    sp_lb_free(lb);
}

static void test_p2c_never_picks_an_ineligible_backend_and_copes_with_one_left(void **state)
{
    struct sp_lb_backend b[3] = {{1, false, 0}, {1, true, 9}, {5, false, 0}};
    struct sp_lb *lb;
    size_t idx;

    (void)state;
    assert_int_equal(sp_lb_new_by_name("p2c", &seeded, NULL, 3, &lb), 0);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(sp_lb_pick(lb, b, 3, 0, &idx), 0);
        assert_int_equal(idx, 1);
    }
    b[1].eligible = false;
    assert_int_equal(sp_lb_pick(lb, b, 3, 0, &idx), -EAGAIN);
    sp_lb_free(lb);
}

/* The timed simulator: each backend answers after latency[i]; picks every 100 us. */
struct timed {
    struct sp_lb *lb;
    struct sp_lb_backend b[MAX_BACKENDS];
    size_t n;
    sp_time_t latency[MAX_BACKENDS]; /* current service time of each backend */
    sp_time_t now;
    struct {
        size_t idx;
        sp_time_t sent, done;
    } pending[MAX_PENDING];
    size_t npending;
};

/* Runs for `duration` with one pick every 100 us; counts[] gets the picks. */
static void timed_run(struct timed *t, sp_time_t duration, unsigned *counts)
{
    for (sp_time_t end = t->now + duration; t->now < end;) {
        size_t idx;

        t->now += 100 * SP_US;
        for (size_t k = 0; k < t->npending;) {
            if (t->pending[k].done > t->now) {
                k++;
                continue;
            }
            t->b[t->pending[k].idx].inflight--;
            sp_lb_report(t->lb, t->pending[k].idx, t->pending[k].done - t->pending[k].sent, true,
                         t->now);
            t->pending[k] = t->pending[--t->npending];
        }
        assert_int_equal(sp_lb_pick(t->lb, t->b, t->n, t->now, &idx), 0);
        assert_true(t->npending < MAX_PENDING);
        t->b[idx].inflight++;
        t->pending[t->npending].idx = idx;
        t->pending[t->npending].sent = t->now;
        t->pending[t->npending++].done = t->now + t->latency[idx];
        counts[idx]++;
    }
}

static unsigned share_percent(const unsigned *counts, size_t n, size_t i)
{
    unsigned total = 0;

    for (size_t k = 0; k < n; k++)
        total += counts[k];
    return total ? 100 * counts[i] / total : 0;
}

/* Runs the slow-then-recovered scenario for strategy `name`; writes backend 1's share (percent)
 * while it is slow and after it has recovered. */
static void slow_backend_scenario(const char *name, unsigned *ret_slow, unsigned *ret_recovered)
{
    const struct sp_lb_params params = {
        .random_u64 = seeded_u64, .random_ctx = &seeded_state, .ewma_decay_ns = 500 * SP_MS};
    struct timed *t = test_calloc(1, sizeof(*t));
    unsigned counts[2] = {0};

    t->n = 2;
    t->b[0] = t->b[1] = (struct sp_lb_backend){1, true, 0};
    t->latency[0] = t->latency[1] = SP_MS;
    assert_int_equal(sp_lb_new_by_name(name, &params, NULL, 2, &t->lb), 0);
    timed_run(t, 2 * SP_SEC, counts);
    assert_in_range(share_percent(counts, 2, 1), 40, 60);
    t->latency[1] = 20 * SP_MS;
    timed_run(t, 2 * SP_SEC, counts); /* settle */
    memset(counts, 0, sizeof(counts));
    timed_run(t, 3 * SP_SEC, counts);
    *ret_slow = share_percent(counts, 2, 1);
    t->latency[1] = SP_MS;
    timed_run(t, 3 * SP_SEC, counts); /* recover: several decay constants */
    memset(counts, 0, sizeof(counts));
    timed_run(t, 3 * SP_SEC, counts);
    *ret_recovered = share_percent(counts, 2, 1);
    sp_lb_free(t->lb);
    test_free(t);
}

static void test_ewma_shifts_load_off_a_slow_backend_and_back_when_it_recovers(void **state)
{
    unsigned slow, recovered;

    (void)state;
    slow_backend_scenario("ewma", &slow, &recovered);
    assert_true(slow <= 3);
    assert_in_range(recovered, 40, 60);
}

static void test_p2c_shifts_load_off_a_slow_backend_and_back_when_it_recovers(void **state)
{
    unsigned slow, recovered;

    (void)state;
    slow_backend_scenario("p2c", &slow, &recovered);
    assert_true(slow <= 10);
    assert_in_range(recovered, 40, 60);
}

static void test_least_conn_gives_a_slow_backend_a_small_share(void **state)
{
    unsigned slow, recovered;

    (void)state;
    slow_backend_scenario("least_conn", &slow, &recovered);
    assert_true(slow <= 15);
    assert_in_range(recovered, 40, 60);
}

static void test_ewma_starts_a_new_backend_at_the_mean_not_at_zero(void **state)
{
    /* Backend 0 measured at 10 ms with 4 in flight (cost 50 ms); backend 1 unmeasured is
     * estimated at 10 ms, not 0, so it wins only while its own in-flight count stays below 5. */
    struct sp_lb_backend b[2] = {{1, true, 4}, {1, true, 0}};
    struct sp_lb *lb;
    size_t idx;

    (void)state;
    assert_int_equal(sp_lb_new_by_name("ewma", &seeded, NULL, 2, &lb), 0);
    sp_lb_report(lb, 0, 10 * SP_MS, true, SP_SEC);
    for (unsigned k = 0; k < 4; k++) {
        assert_int_equal(sp_lb_pick(lb, b, 2, SP_SEC, &idx), 0);
        assert_int_equal(idx, 1);
        b[1].inflight++;
    }
    b[1].inflight = 5; /* 10 ms * 6 > 10 ms * 5 */
    assert_int_equal(sp_lb_pick(lb, b, 2, SP_SEC, &idx), 0);
    assert_int_equal(idx, 0);
    sp_lb_free(lb);
}

static void test_ewma_uses_a_seeded_rtt_until_the_first_report(void **state)
{
    struct sp_lb_backend b[2] = {{1, true, 0}, {1, true, 0}};
    struct sp_lb *lb;
    size_t idx;

    (void)state;
    assert_int_equal(sp_lb_new_by_name("ewma", &seeded, NULL, 2, &lb), 0);
    sp_lb_seed_rtt(lb, 0, 5 * SP_MS);
    sp_lb_seed_rtt(lb, 1, 2 * SP_MS);
    assert_int_equal(sp_lb_pick(lb, b, 2, 0, &idx), 0);
    assert_int_equal(idx, 1);
    sp_lb_report(lb, 1, 9 * SP_MS, true, 0); /* the sample replaces the seed */
    assert_int_equal(sp_lb_pick(lb, b, 2, 0, &idx), 0);
    assert_int_equal(idx, 0);
    sp_lb_free(lb);
}

static void test_ewma_counts_a_fast_failure_as_slow(void **state)
{
    struct sp_lb_backend b[2] = {{1, true, 0}, {1, true, 0}};
    struct sp_lb *lb;
    size_t idx;

    (void)state;
    assert_int_equal(sp_lb_new_by_name("ewma", &seeded, NULL, 2, &lb), 0);
    sp_lb_report(lb, 0, 10 * SP_MS, true, 0);
    sp_lb_report(lb, 1, 10 * SP_MS, true, 0);
    sp_lb_report(lb, 1, 1 * SP_US, false, SP_MS); /* an instant 503 */
    assert_int_equal(sp_lb_pick(lb, b, 2, SP_MS, &idx), 0);
    assert_int_equal(idx, 0);
    sp_lb_free(lb);
}

static void test_ewma_forgets_old_samples_of_a_backend_that_comes_back(void **state)
{
    struct sp_lb_backend b[2] = {{1, true, 0}, {1, true, 0}};
    struct sp_lb *lb;
    size_t idx;

    (void)state;
    assert_int_equal(sp_lb_new_by_name("ewma", &seeded, NULL, 2, &lb), 0);
    assert_int_equal(sp_lb_pick(lb, b, 2, 0, &idx), 0);
    sp_lb_report(lb, 0, 10 * SP_MS, true, 0);
    sp_lb_report(lb, 1, 900 * SP_MS, true, 0);
    b[1].eligible = false;
    assert_int_equal(sp_lb_pick(lb, b, 2, SP_MS, &idx), 0);
    b[1].eligible = true;
    b[0].inflight = 1; /* 10 ms * 2 vs a fresh estimate of 10 ms * 1 */
    assert_int_equal(sp_lb_pick(lb, b, 2, 2 * SP_MS, &idx), 0);
    assert_int_equal(idx, 1);
    sp_lb_free(lb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_strategies_distribute_5_3_2_within_two_percent_under_load),
        cmocka_unit_test(test_load_strategies_avoid_a_backend_with_many_requests_in_flight),
        cmocka_unit_test(test_least_conn_breaks_ties_at_random_not_by_index),
        cmocka_unit_test(test_least_conn_weighs_in_flight_requests_by_weight),
        cmocka_unit_test(test_p2c_never_picks_an_ineligible_backend_and_copes_with_one_left),
        cmocka_unit_test(test_ewma_shifts_load_off_a_slow_backend_and_back_when_it_recovers),
        cmocka_unit_test(test_p2c_shifts_load_off_a_slow_backend_and_back_when_it_recovers),
        cmocka_unit_test(test_least_conn_gives_a_slow_backend_a_small_share),
        cmocka_unit_test(test_ewma_starts_a_new_backend_at_the_mean_not_at_zero),
        cmocka_unit_test(test_ewma_uses_a_seeded_rtt_until_the_first_report),
        cmocka_unit_test(test_ewma_counts_a_fast_failure_as_slow),
        cmocka_unit_test(test_ewma_forgets_old_samples_of_a_backend_that_comes_back),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
