/* test_cause.c: unit tests of src/policy/cause.c: every cause has a distinct stable name, a
 * class, and the status spooky answers with; client causes blame the client and answer 4xx,
 * never-processed causes are exactly those where no backend saw the request. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "policy/cause.h"

static void test_every_cause_has_a_distinct_name_and_a_row(void **state)
{
    (void)state;
    for (int i = 0; i < SP_CAUSE_COUNT; i++) {
        const struct sp_cause_info *a = sp_cause_info((enum sp_cause)i);

        assert_non_null(a->name);
        assert_string_not_equal(a->name, "unknown");
        for (int j = 0; j < i; j++)
            assert_string_not_equal(a->name, sp_cause_name((enum sp_cause)j));
    }
    assert_string_equal(sp_cause_name((enum sp_cause)SP_CAUSE_COUNT), "unknown");
    assert_string_equal(sp_cause_name(SP_CAUSE_NONE), "-");
}

static void test_client_causes_blame_the_client_with_a_4xx(void **state)
{
    static const enum sp_cause client[] = {SP_CAUSE_CLIENT_BODY_TIMEOUT, SP_CAUSE_CLIENT_ABORT,
                                           SP_CAUSE_INVALID_REQUEST, SP_CAUSE_BODY_TOO_LARGE,
                                           SP_CAUSE_NO_ROUTE};

    (void)state;
    for (size_t i = 0; i < sizeof(client) / sizeof(client[0]); i++) {
        const struct sp_cause_info *c = sp_cause_info(client[i]);

        assert_true(sp_err_is_client(c->cls));
        assert_false(sp_err_is_backend(c->cls));
        assert_in_range(c->status, 400, 499);
    }
    assert_int_equal(sp_cause_info(SP_CAUSE_CLIENT_BODY_TIMEOUT)->status, 408);
    assert_int_equal(sp_cause_info(SP_CAUSE_INVALID_REQUEST)->status, 400);
}

static void test_backend_causes_answer_502_or_504(void **state)
{
    (void)state;
    for (int i = 0; i < SP_CAUSE_COUNT; i++) {
        const struct sp_cause_info *c = sp_cause_info((enum sp_cause)i);

        if (!sp_err_is_backend(c->cls))
            continue;
        assert_int_equal(c->status, c->cls == SP_ERR_BACKEND_TIMEOUT ? 504 : 502);
    }
}

static void test_never_processed_causes_are_those_no_backend_saw(void **state)
{
    (void)state;
    assert_true(sp_cause_info(SP_CAUSE_CONNECT)->never_processed);
    assert_true(sp_cause_info(SP_CAUSE_HANDSHAKE)->never_processed);
    assert_true(sp_cause_info(SP_CAUSE_REFUSED)->never_processed);
    assert_false(sp_cause_info(SP_CAUSE_RESET)->never_processed);
    assert_false(sp_cause_info(SP_CAUSE_CONN_LOST)->never_processed);
    assert_false(sp_cause_info(SP_CAUSE_TIMEOUT)->never_processed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_cause_has_a_distinct_name_and_a_row),
        cmocka_unit_test(test_client_causes_blame_the_client_with_a_4xx),
        cmocka_unit_test(test_backend_causes_answer_502_or_504),
        cmocka_unit_test(test_never_processed_causes_are_those_no_backend_saw),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
