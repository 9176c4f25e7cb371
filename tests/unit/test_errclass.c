/* test_errclass.c: unit tests of src/policy/errclass.c: class names, backend blame, the status
 * spooky answers with, RFC 9110 idempotency, and the retry eligibility table of issue 5. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "policy/errclass.h"

static const enum sp_err_class all_classes[SP_ERR_CLASS_COUNT] = {SP_ERR_NONE,
                                                                  SP_ERR_CLIENT_ABORT,
                                                                  SP_ERR_CLIENT_TIMEOUT,
                                                                  SP_ERR_CLIENT_INVALID,
                                                                  SP_ERR_BACKEND_CONNECT,
                                                                  SP_ERR_BACKEND_PROTOCOL,
                                                                  SP_ERR_BACKEND_TIMEOUT,
                                                                  SP_ERR_BACKEND_5XX,
                                                                  SP_ERR_INTERNAL};

static bool is_idempotent(const char *m)
{
    return sp_err_method_idempotent(m, strlen(m));
}

static void test_every_class_has_a_distinct_stable_name(void **state)
{
    static const char *const expected[SP_ERR_CLASS_COUNT] = {"none",
                                                             "client_abort",
                                                             "client_timeout",
                                                             "client_invalid",
                                                             "backend_connect",
                                                             "backend_protocol",
                                                             "backend_timeout",
                                                             "backend_5xx",
                                                             "internal"};

    (void)state;
    for (size_t i = 0; i < SP_ERR_CLASS_COUNT; i++)
        assert_string_equal(sp_err_class_name(all_classes[i]), expected[i]);
    assert_string_equal(sp_err_class_name((enum sp_err_class)99), "unknown");
}

static void test_only_backend_classes_blame_the_backend(void **state)
{
    (void)state;
    assert_false(sp_err_is_backend(SP_ERR_NONE));
    assert_false(sp_err_is_backend(SP_ERR_CLIENT_ABORT));
    assert_false(sp_err_is_backend(SP_ERR_CLIENT_TIMEOUT));
    assert_false(sp_err_is_backend(SP_ERR_CLIENT_INVALID));
    assert_true(sp_err_is_client(SP_ERR_CLIENT_ABORT));
    assert_true(sp_err_is_client(SP_ERR_CLIENT_TIMEOUT));
    assert_true(sp_err_is_client(SP_ERR_CLIENT_INVALID));
    assert_false(sp_err_is_client(SP_ERR_NONE));
    assert_false(sp_err_is_client(SP_ERR_BACKEND_TIMEOUT));
    assert_false(sp_err_is_client(SP_ERR_INTERNAL));
    assert_true(sp_err_is_backend(SP_ERR_BACKEND_CONNECT));
    assert_true(sp_err_is_backend(SP_ERR_BACKEND_PROTOCOL));
    assert_true(sp_err_is_backend(SP_ERR_BACKEND_TIMEOUT));
    assert_true(sp_err_is_backend(SP_ERR_BACKEND_5XX));
    assert_false(sp_err_is_backend(SP_ERR_INTERNAL));
}

static void test_timeouts_answer_504_and_other_backend_failures_502(void **state)
{
    (void)state;
    assert_int_equal(sp_err_status(SP_ERR_NONE), 0);
    assert_int_equal(sp_err_status(SP_ERR_CLIENT_ABORT), 499);
    assert_int_equal(sp_err_status(SP_ERR_CLIENT_TIMEOUT), 408);
    assert_int_equal(sp_err_status(SP_ERR_CLIENT_INVALID), 400);
    assert_int_equal(sp_err_status(SP_ERR_BACKEND_CONNECT), 502);
    assert_int_equal(sp_err_status(SP_ERR_BACKEND_PROTOCOL), 502);
    assert_int_equal(sp_err_status(SP_ERR_BACKEND_TIMEOUT), 504);
    assert_int_equal(sp_err_status(SP_ERR_BACKEND_5XX), 502);
    assert_int_equal(sp_err_status(SP_ERR_INTERNAL), 500);
}

static void test_idempotent_methods_are_those_of_rfc9110(void **state)
{
    (void)state;
    assert_true(is_idempotent("GET"));
    assert_true(is_idempotent("HEAD"));
    assert_true(is_idempotent("OPTIONS"));
    assert_true(is_idempotent("TRACE"));
    assert_true(is_idempotent("PUT"));
    assert_true(is_idempotent("DELETE"));
    assert_false(is_idempotent("POST"));
    assert_false(is_idempotent("PATCH"));
    assert_false(is_idempotent("CONNECT"));
}

static void test_method_match_is_exact_and_case_sensitive(void **state)
{
    (void)state;
    assert_false(is_idempotent("get"));
    assert_false(is_idempotent("GE"));
    assert_false(is_idempotent("GETX"));
    assert_false(is_idempotent(""));
    assert_true(sp_err_method_idempotent("GETTING", 3)); /* len, not NUL, ends the method */
    assert_false(sp_err_method_idempotent(NULL, 0));
}

static void test_never_processed_request_is_retried_whatever_its_method(void **state)
{
    (void)state;
    /* A POST with a body already streamed away, refused by REFUSED_STREAM / GOAWAY. */
    assert_true(sp_err_retryable(SP_ERR_BACKEND_PROTOCOL, true, false, false, false));
    assert_true(sp_err_retryable(SP_ERR_BACKEND_TIMEOUT, true, false, false, false));
}

static void test_connect_failure_counts_as_never_processed(void **state)
{
    (void)state;
    assert_true(sp_err_retryable(SP_ERR_BACKEND_CONNECT, false, false, false, false));
}

static void test_processed_request_is_retried_only_if_idempotent_and_replayable(void **state)
{
    (void)state;
    assert_true(sp_err_retryable(SP_ERR_BACKEND_PROTOCOL, false, true, true, false));
    assert_true(sp_err_retryable(SP_ERR_BACKEND_TIMEOUT, false, true, true, false));
    assert_true(sp_err_retryable(SP_ERR_BACKEND_5XX, false, true, true, false));
    assert_false(sp_err_retryable(SP_ERR_BACKEND_5XX, false, false, true, false));
    assert_false(sp_err_retryable(SP_ERR_BACKEND_5XX, false, true, false, false));
}

static void test_nothing_is_retried_once_the_client_saw_response_bytes(void **state)
{
    (void)state;
    assert_false(sp_err_retryable(SP_ERR_BACKEND_CONNECT, true, true, true, true));
    assert_false(sp_err_retryable(SP_ERR_BACKEND_PROTOCOL, true, true, true, true));
    assert_false(sp_err_retryable(SP_ERR_BACKEND_TIMEOUT, false, true, true, true));
}

static void test_success_client_and_internal_errors_are_never_retried(void **state)
{
    (void)state;
    assert_false(sp_err_retryable(SP_ERR_NONE, true, true, true, false));
    assert_false(sp_err_retryable(SP_ERR_CLIENT_ABORT, true, true, true, false));
    assert_false(sp_err_retryable(SP_ERR_CLIENT_TIMEOUT, true, true, true, false));
    assert_false(sp_err_retryable(SP_ERR_CLIENT_INVALID, true, true, true, false));
    assert_false(sp_err_retryable(SP_ERR_INTERNAL, true, true, true, false));
}

static void test_retry_table_matches_the_issue_rule_for_every_combination(void **state)
{
    (void)state;
    for (size_t i = 0; i < SP_ERR_CLASS_COUNT; i++) {
        enum sp_err_class c = all_classes[i];

        for (unsigned bits = 0; bits < 16; bits++) {
            bool never = bits & 1, idem = bits & 2, replay = bits & 4, started = bits & 8;
            bool backend = c == SP_ERR_BACKEND_CONNECT || c == SP_ERR_BACKEND_PROTOCOL ||
                           c == SP_ERR_BACKEND_TIMEOUT || c == SP_ERR_BACKEND_5XX;
            bool expect =
                backend && !started && (never || c == SP_ERR_BACKEND_CONNECT || (idem && replay));

            assert_int_equal(sp_err_retryable(c, never, idem, replay, started), expect);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_class_has_a_distinct_stable_name),
        cmocka_unit_test(test_only_backend_classes_blame_the_backend),
        cmocka_unit_test(test_timeouts_answer_504_and_other_backend_failures_502),
        cmocka_unit_test(test_idempotent_methods_are_those_of_rfc9110),
        cmocka_unit_test(test_method_match_is_exact_and_case_sensitive),
        cmocka_unit_test(test_never_processed_request_is_retried_whatever_its_method),
        cmocka_unit_test(test_connect_failure_counts_as_never_processed),
        cmocka_unit_test(test_processed_request_is_retried_only_if_idempotent_and_replayable),
        cmocka_unit_test(test_nothing_is_retried_once_the_client_saw_response_bytes),
        cmocka_unit_test(test_success_client_and_internal_errors_are_never_retried),
        cmocka_unit_test(test_retry_table_matches_the_issue_rule_for_every_combination),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
