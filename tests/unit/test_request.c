/* test_request.c: unit tests of src/http/request: what a client's request must satisfy before
 * spooky routes it, and that whatever passes can be written by every upstream writer (the
 * HTTP/1.1 writer, the strictest, is checked directly). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/util.h"
#include "http/request.h"
#include "upstream/h1_codec.h"

#define F(n, v) sp_field_str((n), (v))
#define M F(":method", "GET")
#define S F(":scheme", "https")
#define A F(":authority", "a.example")
#define P F(":path", "/")

/* Validates n fields; returns the reason, or NULL when the request is valid. */
static const char *reason_of(struct sp_field *items, size_t n)
{
    struct sp_fields f = {.items = items, .count = n, .cap = n};
    const char *reason = NULL;
    int rv = sp_request_validate(&f, &reason);

    if (rv == 0) {
        assert_null(reason); /* left alone on success */
        return NULL;
    }
    assert_int_equal(rv, -EINVAL);
    assert_non_null(reason);
    return reason;
}

#define REASON(...)                                                                                \
    reason_of((struct sp_field[]){__VA_ARGS__}, SP_ARRAY_LEN(((struct sp_field[]){__VA_ARGS__})))

static void assert_reason(const char *got, const char *want)
{
    if (want == NULL && got != NULL)
        fail_msg("refused a valid request: reason=%s", got);
    if (want != NULL && (got == NULL || strcmp(got, want) != 0))
        fail_msg("want reason=%s, got %s", want, got != NULL ? got : "valid");
}

static void test_plain_get_is_valid(void **state)
{
    (void)state;
    assert_reason(REASON(M, S, A, P), NULL);
    assert_reason(REASON(M, S, A, P, F("accept", "*/*"), F("cookie", "a=b"), F("x-empty", "")),
                  NULL);
    assert_reason(REASON(F(":method", "PURGE"), F(":scheme", "HTTPS"), A, P), NULL);
}

static void test_reason_may_be_null(void **state)
{
    struct sp_field items[] = {M, S, F(":authority", "a.example@evil"), P};
    struct sp_fields f = {.items = items, .count = SP_ARRAY_LEN(items)};

    (void)state;
    assert_int_equal(sp_request_validate(&f, NULL), -EINVAL);
}

/* The authorities an independent client sent that reached a backend before (issue 9). */
static void test_userinfo_bad_ports_and_broken_literals_are_invalid_authorities(void **state)
{
    static const char *const bad[] = {
        "a.example@evil", "a.example:80@evil", "x:99999", "[::1", "x:0", "x:", "::1", "", "a..b",
    };

    (void)state;
    for (size_t i = 0; i < SP_ARRAY_LEN(bad); i++)
        assert_reason(REASON(M, S, F(":authority", bad[i]), P), "authority");
}

static void test_ip_literals_ports_and_a_labels_are_valid_authorities(void **state)
{
    static const char *const good[] = {
        "[::1]:443", "1.2.3.4:80", "xn--bcher-kva.example", "a.example:8443", "localhost",
    };

    (void)state;
    for (size_t i = 0; i < SP_ARRAY_LEN(good); i++)
        assert_reason(REASON(M, S, F(":authority", good[i]), P), NULL);
}

static void test_host_must_agree_with_authority(void **state)
{
    (void)state;
    assert_reason(REASON(M, S, A, P, F("host", "a.example")), NULL);
    assert_reason(REASON(M, S, A, P, F("host", "b.example")), "host");
    assert_reason(REASON(M, S, A, P, F("host", "a.example:443")), "host");
    assert_reason(REASON(M, S, A, P, F("host", "a.example"), F("host", "a.example")), "host");
}

static void test_host_alone_must_be_a_valid_authority(void **state)
{
    (void)state;
    assert_reason(REASON(M, S, P, F("host", "a.example:8080")), NULL);
    assert_reason(REASON(M, S, P, F("host", "a.example@evil")), "host");
    assert_reason(REASON(M, S, P, F("host", "")), "host");
}

static void test_authority_or_host_is_required(void **state)
{
    (void)state;
    assert_reason(REASON(M, S, P), "authority");
    assert_reason(REASON(M, S, P, F("x-host", "a.example")), "authority");
}

static void test_method_must_be_a_token_and_not_connect(void **state)
{
    (void)state;
    assert_reason(REASON(F(":method", "G T"), S, A, P), "method");
    assert_reason(REASON(F(":method", ""), S, A, P), "method");
    assert_reason(REASON(F(":method", "GET\r\n"), S, A, P), "method");
    assert_reason(REASON(F(":method", "CONNECT"), A), "method");
}

static void test_scheme_must_be_http_or_https(void **state)
{
    (void)state;
    assert_reason(REASON(M, F(":scheme", "http"), A, P), NULL);
    assert_reason(REASON(M, F(":scheme", "ftp"), A, P), "scheme");
    assert_reason(REASON(M, F(":scheme", ""), A, P), "scheme");
}

static void test_path_must_be_origin_form_or_asterisk_for_options(void **state)
{
    static const char *const bad[] = {"",        "x",         "*",       "/a b",
                                      "/a#frag", "/\xc3\xa9", "/a\r\nb", "http://a.example/"};

    (void)state;
    for (size_t i = 0; i < SP_ARRAY_LEN(bad); i++)
        assert_reason(REASON(M, S, A, F(":path", bad[i])), "path");
    assert_reason(REASON(F(":method", "OPTIONS"), S, A, F(":path", "*")), NULL);
    assert_reason(REASON(M, S, A, F(":path", "/a/b?c=d&e=%20")), NULL);
}

static void test_pseudo_fields_are_defined_unique_present_and_first(void **state)
{
    (void)state;
    assert_reason(REASON(S, A, P), "pseudo_field");
    assert_reason(REASON(M, A, P), "pseudo_field");
    assert_reason(REASON(M, S, A), "pseudo_field");
    assert_reason(REASON(M, M, S, A, P), "pseudo_field");
    assert_reason(REASON(M, S, A, A, P), "pseudo_field");
    assert_reason(REASON(M, S, A, P, F(":protocol", "websocket")), "pseudo_field");
    assert_reason(REASON(M, S, A, P, F(":status", "200")), "pseudo_field");
    assert_reason(REASON(M, S, A, F("x-a", "1"), P), "pseudo_field");
}

static void test_field_names_are_lowercase_tokens(void **state)
{
    (void)state;
    assert_reason(REASON(M, S, A, P, F("X-Upper", "1")), "field_name");
    assert_reason(REASON(M, S, A, P, F("x bad", "1")), "field_name");
    assert_reason(REASON(M, S, A, P, F("x:y", "1")), "field_name");
    assert_reason(REASON(M, S, A, P, F("", "1")), "field_name");
}

static void test_field_values_have_no_controls_or_surrounding_whitespace(void **state)
{
    struct sp_field nul[] = {M, S, A, P, {(const uint8_t *)"x-a", 3, (const uint8_t *)"a\0b", 3}};

    (void)state;
    assert_reason(REASON(M, S, A, P, F("x-a", "a\r\nx-injected: 1")), "field_value");
    assert_reason(REASON(M, S, A, P, F("x-a", "a\x7f")), "field_value");
    assert_reason(REASON(M, S, A, P, F("x-a", " a")), "field_value");
    assert_reason(REASON(M, S, A, P, F("x-a", "a\t")), "field_value");
    assert_reason(reason_of(nul, SP_ARRAY_LEN(nul)), "field_value");
    assert_reason(REASON(M, S, A, P, F("x-a", "a\tb c")), NULL);
}

static void test_connection_specific_fields_are_invalid(void **state)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection",
                                        "transfer-encoding", "upgrade"};

    (void)state;
    for (size_t i = 0; i < SP_ARRAY_LEN(names); i++)
        assert_reason(REASON(M, S, A, P, F(names[i], "x")), "connection_field");
    assert_reason(REASON(M, S, A, P, F("te", "gzip")), "connection_field");
    assert_reason(REASON(M, S, A, P, F("te", "trailers")), NULL);
}

static void test_content_length_values_are_numbers_that_agree(void **state)
{
    (void)state;
    assert_reason(REASON(M, S, A, P, F("content-length", "0")), NULL);
    assert_reason(REASON(M, S, A, P, F("content-length", "5"), F("content-length", "5")), NULL);
    assert_reason(REASON(M, S, A, P, F("content-length", "5"), F("content-length", "6")),
                  "content_length");
    assert_reason(REASON(M, S, A, P, F("content-length", "ten")), "content_length");
    assert_reason(REASON(M, S, A, P, F("content-length", "1,1")), "content_length");
    assert_reason(REASON(M, S, A, P, F("content-length", "-1")), "content_length");
    assert_reason(REASON(M, S, A, P, F("content-length", "1234567890123456789")), "content_length");
}

/* ---- what passes, every writer can write ------------------------------------------------- */

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Picks one of a few plausible values, or (one time in four) random bytes from a hostile set. */
static size_t random_value(uint64_t *x, const char *const *plausible, size_t n, uint8_t *out)
{
    static const char hostile[] = "ab1.:[]@%/ \t\r\n\x00\x7f\x80*#?";
    uint64_t r = xorshift(x);
    size_t len;

    if (r % 4 != 0) {
        const char *p = plausible[(r >> 8) % n];

        memcpy(out, p, strlen(p));
        return strlen(p);
    }
    len = (r >> 8) % 8;
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)hostile[(xorshift(x) >> 16) % (sizeof(hostile) - 1)];
    return len;
}

/* The HTTP/1.1 writer refuses what it cannot write safely; the validator runs first, so that
 * refusal must never happen to a request the validator passed. */
static void test_valid_requests_are_never_refused_by_the_http1_writer(void **state)
{
    static const char *const methods[] = {"GET", "POST", "OPTIONS", "HEAD"};
    static const char *const authorities[] = {"a.example", "[::1]:443", "1.2.3.4:80", "x:1"};
    static const char *const paths[] = {"/", "/a?b=c", "*"};
    static const char *const names[] = {"x-a", "content-length", "host", "cookie", "te"};
    static const char *const values[] = {"1", "a.example", "trailers", "", "a b"};
    uint64_t x = 0x9e3779b97f4a7c15ull;
    uint8_t bytes[9][16]; /* 0-2 pseudo values, 3-5 names, 6-8 values */
    size_t valid = 0;

    (void)state;
    for (int iter = 0; iter < 50000; iter++) {
        struct sp_field f[7] = {
            {(const uint8_t *)":method", 7, bytes[0], random_value(&x, methods, 4, bytes[0])},
            S,
            {(const uint8_t *)":authority", 10, bytes[1],
             random_value(&x, authorities, 4, bytes[1])},
            {(const uint8_t *)":path", 5, bytes[2], random_value(&x, paths, 3, bytes[2])},
        };
        struct sp_fields fs = {.items = f, .count = 4 + xorshift(&x) % 4};
        struct sp_h1_buf out = {0};
        struct sp_h1_request_info info;

        for (size_t k = 4; k < fs.count; k++) {
            f[k].name = bytes[k - 1];
            f[k].name_len = random_value(&x, names, 5, bytes[k - 1]);
            f[k].value = bytes[k + 2];
            f[k].value_len = random_value(&x, values, 5, bytes[k + 2]);
        }
        if (sp_request_validate(&fs, NULL) != 0)
            continue;
        valid++;
        assert_int_equal(sp_h1_request_head(f, fs.count, true, &out, &info), 0);
        sp_h1_buf_fini(&out);
    }
    assert_true(valid > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_get_is_valid),
        cmocka_unit_test(test_reason_may_be_null),
        cmocka_unit_test(test_userinfo_bad_ports_and_broken_literals_are_invalid_authorities),
        cmocka_unit_test(test_ip_literals_ports_and_a_labels_are_valid_authorities),
        cmocka_unit_test(test_host_must_agree_with_authority),
        cmocka_unit_test(test_host_alone_must_be_a_valid_authority),
        cmocka_unit_test(test_authority_or_host_is_required),
        cmocka_unit_test(test_method_must_be_a_token_and_not_connect),
        cmocka_unit_test(test_scheme_must_be_http_or_https),
        cmocka_unit_test(test_path_must_be_origin_form_or_asterisk_for_options),
        cmocka_unit_test(test_pseudo_fields_are_defined_unique_present_and_first),
        cmocka_unit_test(test_field_names_are_lowercase_tokens),
        cmocka_unit_test(test_field_values_have_no_controls_or_surrounding_whitespace),
        cmocka_unit_test(test_connection_specific_fields_are_invalid),
        cmocka_unit_test(test_content_length_values_are_numbers_that_agree),
        cmocka_unit_test(test_valid_requests_are_never_refused_by_the_http1_writer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
