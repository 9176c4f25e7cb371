/* test_lb_sticky.c: unit tests of src/lb/sticky.c: round trip, rejection of forged, altered,
 * truncated and foreign-key values, and the fallback to the strategy when the pinned backend is
 * unknown or ineligible. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/util.h"
#include "lb/lb.h"
#include "seeded.h"

static const struct sp_lb_params seeded = {.random_u64 = seeded_u64, .random_ctx = &seeded_state};
#include "lb/sticky.h"

static const uint8_t key_bytes[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t other_bytes[32] = "fedcba9876543210fedcba9876543210";
static const struct sp_lb_sticky_key key = {key_bytes, sizeof(key_bytes)};
static const struct sp_lb_sticky_key other_key = {other_bytes, sizeof(other_bytes)};
static const char *const ids[3] = {"web-a", "web-b", "web-c"};

struct value {
    char s[SP_LB_STICKY_VALUE_LEN(SP_LB_STICKY_ID_MAX)];
    size_t len;
};

static void encode(const char *id, struct value *v)
{
    assert_int_equal(sp_lb_sticky_encode(&key, id, v->s, sizeof(v->s), &v->len), 0);
    assert_true(v->len <= SP_LB_STICKY_VALUE_LEN(strlen(id)));
}

static int decode(const struct value *v, size_t *idx)
{
    return sp_lb_sticky_decode(&key, v->s, v->len, ids, 3, idx);
}

static void test_sticky_value_round_trips_to_its_backend_and_is_a_cookie_token(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct value v;
        size_t idx = 99;

        encode(ids[i], &v);
        for (size_t c = 0; c < v.len; c++)
            assert_non_null(
                strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", v.s[c]));
        assert_int_equal(decode(&v, &idx), 0);
        assert_int_equal(idx, i);
    }
}

static void test_sticky_value_is_found_whatever_the_order_of_backends(void **state)
{
    static const char *const reordered[3] = {"web-c", "web-a", "web-b"};
    struct value v;
    size_t idx;

    (void)state;
    encode("web-a", &v);
    assert_int_equal(sp_lb_sticky_decode(&key, v.s, v.len, reordered, 3, &idx), 0);
    assert_int_equal(idx, 1);
}

static void test_sticky_decode_rejects_every_single_character_change(void **state)
{
    struct value v;
    size_t idx = 99;

    (void)state;
    encode("web-b", &v);
    for (size_t i = 0; i < v.len; i++) {
        struct value bad = v;

        bad.s[i] = bad.s[i] == 'A' ? 'B' : 'A';
        assert_int_equal(decode(&bad, &idx), -EBADMSG);
    }
    assert_int_equal(idx, 99);
}

static void test_sticky_decode_rejects_a_value_pinning_another_id_without_the_key(void **state)
{
    struct value mine, forged;
    size_t idx;

    (void)state;
    encode("web-a", &mine);
    /* a client who knows the format swaps the id and keeps its MAC */
    assert_int_equal(
        sp_lb_sticky_encode(&other_key, "web-c", forged.s, sizeof(forged.s), &forged.len), 0);
    assert_int_equal(decode(&forged, &idx), -EBADMSG);
    memcpy(forged.s, mine.s, 4); /* "web-" encodes the same; the tail now mixes two values */
    assert_int_equal(decode(&forged, &idx), -EBADMSG);
}

static void test_sticky_decode_rejects_malformed_values(void **state)
{
    static const char *const bad[] = {"", "A", "AAAA", "not base64!", "d2ViLWE=", "d2ViLWE"};
    size_t idx;

    (void)state;
    for (size_t i = 0; i < SP_ARRAY_LEN(bad); i++)
        assert_int_equal(sp_lb_sticky_decode(&key, bad[i], strlen(bad[i]), ids, 3, &idx), -EBADMSG);
    struct value v;

    encode("web-a", &v);
    assert_int_equal(sp_lb_sticky_decode(&key, v.s, v.len - 1, ids, 3, &idx), -EBADMSG);
}

static void test_sticky_decode_reports_an_authentic_value_for_an_unknown_backend(void **state)
{
    struct value v;
    size_t idx;

    (void)state;
    encode("web-z", &v);
    assert_int_equal(decode(&v, &idx), -ENOENT);
}

static void test_sticky_encode_rejects_short_keys_long_ids_and_small_buffers(void **state)
{
    const struct sp_lb_sticky_key short_key = {key_bytes, 8};
    char long_id[SP_LB_STICKY_ID_MAX + 2];
    char out[8];
    size_t len = 5;
    struct value v;

    (void)state;
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(sp_lb_sticky_encode(&short_key, "web-a", v.s, sizeof(v.s), &len), -EINVAL);
    assert_int_equal(sp_lb_sticky_encode(&key, "", v.s, sizeof(v.s), &len), -EINVAL);
    assert_int_equal(sp_lb_sticky_encode(&key, long_id, v.s, sizeof(v.s), &len), -EINVAL);
    assert_int_equal(sp_lb_sticky_encode(&key, "web-a", out, sizeof(out), &len), -ENOSPC);
    assert_int_equal(len, 5);
    long_id[SP_LB_STICKY_ID_MAX] = '\0'; /* the longest id fits the documented size */
    encode(long_id, &v);
}

static void test_sticky_pick_honours_an_eligible_pin_and_falls_back_otherwise(void **state)
{
    struct sp_lb_backend b[3] = {{1, true, 0}, {1, true, 0}, {1, true, 0}};
    struct value v, forged;
    struct sp_lb *lb;
    bool pinned;
    size_t idx;

    (void)state;
    assert_int_equal(sp_lb_new_by_name("round_robin", &seeded, ids, 3, &lb), 0);
    encode("web-c", &v);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(sp_lb_sticky_pick(lb, b, ids, 3, &key, v.s, v.len, 0, &idx, &pinned), 0);
        assert_int_equal(idx, 2);
        assert_true(pinned);
    }
    b[2].eligible = false;
    assert_int_equal(sp_lb_sticky_pick(lb, b, ids, 3, &key, v.s, v.len, 0, &idx, &pinned), 0);
    assert_false(pinned);
    assert_int_equal(idx, 0); /* the strategy's turn, untouched by the pinned picks */
    forged = v;
    forged.s[0] ^= 1;
    b[2].eligible = true;
    assert_int_equal(sp_lb_sticky_pick(lb, b, ids, 3, &key, forged.s, forged.len, 0, &idx, &pinned),
                     0);
    assert_false(pinned);
    assert_int_equal(sp_lb_sticky_pick(lb, b, ids, 3, &key, NULL, 0, 0, &idx, &pinned), 0);
    assert_false(pinned);
    sp_lb_free(lb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sticky_value_round_trips_to_its_backend_and_is_a_cookie_token),
        cmocka_unit_test(test_sticky_value_is_found_whatever_the_order_of_backends),
        cmocka_unit_test(test_sticky_decode_rejects_every_single_character_change),
        cmocka_unit_test(test_sticky_decode_rejects_a_value_pinning_another_id_without_the_key),
        cmocka_unit_test(test_sticky_decode_rejects_malformed_values),
        cmocka_unit_test(test_sticky_decode_reports_an_authentic_value_for_an_unknown_backend),
        cmocka_unit_test(test_sticky_encode_rejects_short_keys_long_ids_and_small_buffers),
        cmocka_unit_test(test_sticky_pick_honours_an_eligible_pin_and_falls_back_otherwise),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
