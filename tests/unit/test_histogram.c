/* test_histogram.c: unit tests of tools/bench/histogram: exact small values, percentiles within
 * the stated relative error against a sorted reference, exact min/max/mean, merging, reset, and
 * the ends of the uint64_t range. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "histogram.h"

#define SAMPLES 100000

static const double pcts[] = {0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100};

/* Deterministic xorshift64*, so a failure reproduces. */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* Log-uniform between 1 µs and 10 s, in ns: the range request latencies span. */
static uint64_t latency_like(uint64_t *s)
{
    double u = (double)(next_rand(s) >> 11) / (double)(1ULL << 53);

    return (uint64_t)(1e3 * pow(1e7, u));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/* The sample of rank ceil(pct/100 * n) (at least 1) in sorted[0..n). */
static uint64_t reference_percentile(const uint64_t *sorted, size_t n, double pct)
{
    size_t rank = (size_t)ceil(pct * (double)n / 100.0 - 1e-7);

    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

static void assert_within_error(uint64_t got, uint64_t want)
{
    double rel = fabs((double)got - (double)want) / (double)want;

    if (rel > BENCH_HIST_REL_ERROR)
        fail_msg("got %llu, want %llu: relative error %g > %g", (unsigned long long)got,
                 (unsigned long long)want, rel, BENCH_HIST_REL_ERROR);
}

static void test_an_empty_histogram_reports_zeros(void **state)
{
    struct bench_hist *h = bench_hist_new();

    (void)state;
    assert_int_equal(bench_hist_count(h), 0);
    assert_int_equal(bench_hist_min(h), 0);
    assert_int_equal(bench_hist_max(h), 0);
    assert_true(bench_hist_mean(h) == 0.0);
    assert_int_equal(bench_hist_percentile(h, 50), 0);
    bench_hist_free(h);
    bench_hist_free(NULL);
}

static void test_values_below_128_are_counted_exactly(void **state)
{
    struct bench_hist *h = bench_hist_new();

    (void)state;
    for (uint64_t v = 0; v < 100; v++)
        bench_hist_record(h, v);
    assert_int_equal(bench_hist_percentile(h, 1), 0);
    assert_int_equal(bench_hist_percentile(h, 50), 49);
    assert_int_equal(bench_hist_percentile(h, 90), 89);
    assert_int_equal(bench_hist_percentile(h, 99.5), 99);
    bench_hist_free(h);
}

static void test_percentiles_are_within_the_stated_relative_error(void **state)
{
    struct bench_hist *h = bench_hist_new();
    uint64_t *v = malloc(SAMPLES * sizeof(*v)), seed = 42;

    (void)state;
    assert_non_null(v);
    for (size_t i = 0; i < SAMPLES; i++) {
        v[i] = latency_like(&seed);
        bench_hist_record(h, v[i]);
    }
    qsort(v, SAMPLES, sizeof(*v), cmp_u64);
    for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
        assert_within_error(bench_hist_percentile(h, pcts[i]),
                            reference_percentile(v, SAMPLES, pcts[i]));
    free(v);
    bench_hist_free(h);
}

static void test_min_max_and_mean_are_exact(void **state)
{
    struct bench_hist *h = bench_hist_new();

    (void)state;
    bench_hist_record(h, 1000003);
    bench_hist_record(h, 123456789);
    bench_hist_record(h, 5000000);
    assert_int_equal(bench_hist_count(h), 3);
    assert_int_equal(bench_hist_min(h), 1000003);
    assert_int_equal(bench_hist_max(h), 123456789);
    assert_int_equal(bench_hist_percentile(h, 0), 1000003);
    assert_int_equal(bench_hist_percentile(h, 100), 123456789);
    assert_true(fabs(bench_hist_mean(h) - (1000003.0 + 123456789.0 + 5000000.0) / 3) < 1e-6);
    bench_hist_free(h);
}

static void test_a_single_sample_is_every_percentile(void **state)
{
    struct bench_hist *h = bench_hist_new();

    (void)state;
    bench_hist_record(h, 987654321);
    for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
        assert_int_equal(bench_hist_percentile(h, pcts[i]), 987654321);
    bench_hist_free(h);
}

static void test_merging_equals_recording_everything_in_one(void **state)
{
    struct bench_hist *a = bench_hist_new(), *b = bench_hist_new(), *all = bench_hist_new();
    uint64_t seed = 7;

    (void)state;
    for (size_t i = 0; i < SAMPLES; i++) {
        uint64_t x = latency_like(&seed) * (i % 2 ? 3 : 1);

        bench_hist_record(i % 2 ? a : b, x);
        bench_hist_record(all, x);
    }
    bench_hist_merge(a, b);
    assert_int_equal(bench_hist_count(a), bench_hist_count(all));
    assert_int_equal(bench_hist_min(a), bench_hist_min(all));
    assert_int_equal(bench_hist_max(a), bench_hist_max(all));
    assert_true(fabs(bench_hist_mean(a) - bench_hist_mean(all)) < 1e-3);
    for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
        assert_int_equal(bench_hist_percentile(a, pcts[i]), bench_hist_percentile(all, pcts[i]));
    bench_hist_free(a);
    bench_hist_free(b);
    bench_hist_free(all);
}

static void test_merging_an_empty_histogram_changes_nothing(void **state)
{
    struct bench_hist *a = bench_hist_new(), *empty = bench_hist_new();

    (void)state;
    bench_hist_record(a, 500);
    bench_hist_merge(a, empty);
    assert_int_equal(bench_hist_count(a), 1);
    assert_int_equal(bench_hist_min(a), 500);
    bench_hist_merge(empty, a);
    assert_int_equal(bench_hist_min(empty), 500);
    assert_int_equal(bench_hist_max(empty), 500);
    bench_hist_free(a);
    bench_hist_free(empty);
}

static void test_the_ends_of_the_uint64_range_are_recorded(void **state)
{
    struct bench_hist *h = bench_hist_new();

    (void)state;
    bench_hist_record(h, 0);
    bench_hist_record(h, UINT64_MAX);
    bench_hist_record(h, (uint64_t)1 << 63);
    assert_int_equal(bench_hist_min(h), 0);
    assert_true(bench_hist_max(h) == UINT64_MAX);
    assert_within_error(bench_hist_percentile(h, 66), (uint64_t)1 << 63);
    assert_true(bench_hist_percentile(h, 100) == UINT64_MAX);
    bench_hist_free(h);
}

static void test_reset_empties_the_histogram(void **state)
{
    struct bench_hist *h = bench_hist_new();

    (void)state;
    bench_hist_record(h, 42);
    bench_hist_reset(h);
    assert_int_equal(bench_hist_count(h), 0);
    bench_hist_record(h, 7);
    assert_int_equal(bench_hist_min(h), 7);
    assert_int_equal(bench_hist_percentile(h, 50), 7);
    bench_hist_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_empty_histogram_reports_zeros),
        cmocka_unit_test(test_values_below_128_are_counted_exactly),
        cmocka_unit_test(test_percentiles_are_within_the_stated_relative_error),
        cmocka_unit_test(test_min_max_and_mean_are_exact),
        cmocka_unit_test(test_a_single_sample_is_every_percentile),
        cmocka_unit_test(test_merging_equals_recording_everything_in_one),
        cmocka_unit_test(test_merging_an_empty_histogram_changes_nothing),
        cmocka_unit_test(test_the_ends_of_the_uint64_range_are_recorded),
        cmocka_unit_test(test_reset_empties_the_histogram),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
