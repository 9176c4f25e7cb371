/* test_log.c: unit tests of src/core/log.c's per-kind rate limit (sp_log_limit_allow): lines
 * within the per-second budget pass, the rest are counted, and the next line that passes
 * carries that count. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/log.h"

static void test_log_limit_passes_lines_within_the_budget(void **state)
{
    struct sp_log_limit l = {0};
    uint64_t sup = 99;

    (void)state;
    for (int i = 0; i < SP_LOG_LIMIT_PER_SEC; i++) {
        assert_true(sp_log_limit_allow(&l, 5 * SP_SEC + (sp_time_t)i * SP_MS, &sup));
        assert_int_equal(sup, 0);
    }
}

static void test_log_limit_counts_what_it_drops_and_reports_it_once(void **state)
{
    struct sp_log_limit l = {0};
    sp_time_t t = 5 * SP_SEC;
    uint64_t sup = 0;

    (void)state;
    for (int i = 0; i < SP_LOG_LIMIT_PER_SEC; i++)
        assert_true(sp_log_limit_allow(&l, t, &sup));
    for (int i = 0; i < 7; i++)
        assert_false(sp_log_limit_allow(&l, t + 500 * SP_MS, &sup));
    assert_true(sp_log_limit_allow(&l, t + SP_SEC, &sup)); /* a new second */
    assert_int_equal(sup, 7);
    assert_true(sp_log_limit_allow(&l, t + SP_SEC, &sup));
    assert_int_equal(sup, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_limit_passes_lines_within_the_budget),
        cmocka_unit_test(test_log_limit_counts_what_it_drops_and_reports_it_once),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
