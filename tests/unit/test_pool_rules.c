/* Unit tests for the upstream pool's accounting rules (src/upstream/pool_rules.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "upstream/pool_rules.h"

static const struct sp_pool_limits lim = {.max_connections = 2, .max_streams = 10, .max_queue = 5};

static void test_ready_conn_below_both_caps_has_capacity(void **state)
{
    struct sp_pool_conn_view c = {.ready = true, .active = 9, .peer_streams_left = 1};

    (void)state;
    assert_true(sp_pool_conn_has_capacity(&c, &lim));
}

static void test_conn_at_our_stream_cap_is_full(void **state)
{
    struct sp_pool_conn_view c = {.ready = true, .active = 10, .peer_streams_left = 90};

    (void)state;
    assert_false(sp_pool_conn_has_capacity(&c, &lim));
}

static void test_backend_max_streams_limits_below_our_cap(void **state)
{
    struct sp_pool_conn_view c = {.ready = true, .active = 3, .peer_streams_left = 0};

    (void)state;
    assert_false(sp_pool_conn_has_capacity(&c, &lim));
}

static void test_handshaking_or_draining_conn_takes_nothing(void **state)
{
    struct sp_pool_conn_view connecting = {.ready = false, .peer_streams_left = 100};
    struct sp_pool_conn_view draining = {.ready = true, .draining = true, .peer_streams_left = 9};

    (void)state;
    assert_false(sp_pool_conn_has_capacity(&connecting, &lim));
    assert_false(sp_pool_conn_has_capacity(&draining, &lim));
}

static void test_requests_wait_for_streams_of_connections_being_opened(void **state)
{
    struct sp_pool_limits no_queue = lim;

    (void)state;
    no_queue.max_queue = 0;
    /* No connection yet: one may be opened, bringing 10 streams. */
    assert_true(sp_pool_may_queue(&no_queue, 0, 0, 0, 0));
    assert_true(sp_pool_may_queue(&no_queue, 1, 1, 9, 9));
    /* Both connections exist and are busy: with max_queue 0 nothing more waits. */
    assert_false(sp_pool_may_queue(&no_queue, 2, 0, 0, 0));
}

static void test_busy_pool_queues_up_to_max_queue(void **state)
{
    (void)state;
    assert_true(sp_pool_may_queue(&lim, 2, 0, 4, 4));
    assert_false(sp_pool_may_queue(&lim, 2, 0, 5, 5));
    /* The cap is across the pool: other backends' waiters count. */
    assert_false(sp_pool_may_queue(&lim, 2, 0, 0, 5));
}

static void test_opens_only_when_waiters_exceed_handshakes_under_way(void **state)
{
    (void)state;
    assert_false(sp_pool_should_open(&lim, 0, 0, 0));
    assert_true(sp_pool_should_open(&lim, 0, 0, 1));
    assert_false(sp_pool_should_open(&lim, 1, 1, 10));
    assert_true(sp_pool_should_open(&lim, 1, 1, 11));
}

static void test_never_opens_beyond_max_connections(void **state)
{
    (void)state;
    assert_false(sp_pool_should_open(&lim, 2, 0, 1000));
}

static void test_down_backoff_doubles_and_caps(void **state)
{
    (void)state;
    assert_int_equal(sp_pool_down_backoff(1), 500 * SP_MS);
    assert_int_equal(sp_pool_down_backoff(2), 1 * SP_SEC);
    assert_int_equal(sp_pool_down_backoff(3), 2 * SP_SEC);
    assert_int_equal(sp_pool_down_backoff(5), 8 * SP_SEC);
    assert_int_equal(sp_pool_down_backoff(6), 10 * SP_SEC);
    assert_int_equal(sp_pool_down_backoff(1000), 10 * SP_SEC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_conn_below_both_caps_has_capacity),
        cmocka_unit_test(test_conn_at_our_stream_cap_is_full),
        cmocka_unit_test(test_backend_max_streams_limits_below_our_cap),
        cmocka_unit_test(test_handshaking_or_draining_conn_takes_nothing),
        cmocka_unit_test(test_requests_wait_for_streams_of_connections_being_opened),
        cmocka_unit_test(test_busy_pool_queues_up_to_max_queue),
        cmocka_unit_test(test_opens_only_when_waiters_exceed_handshakes_under_way),
        cmocka_unit_test(test_never_opens_beyond_max_connections),
        cmocka_unit_test(test_down_backoff_doubles_and_caps),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
