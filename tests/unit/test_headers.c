/* test_headers.c: unit tests of src/http/headers: the hop-by-hop list, X-Forwarded-For and Via
 * appends, request id validation and generation, and IP formatting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "core/util.h"
#include "http/headers.h"

/* Byte string helpers: the functions take (const uint8_t *, len), never NUL-terminated text. */
#define B(s) ((const uint8_t *)(s))
#define BL(s) B(s), strlen(s)

static void test_connection_specific_fields_are_hop_by_hop(void **state)
{
    static const char *const names[] = {
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te",
    };

    (void)state;
    for (size_t i = 0; i < SP_ARRAY_LEN(names); i++)
        assert_true(sp_headers_is_hop_by_hop(BL(names[i])));
}

static void test_host_is_hop_by_hop_because_http3_carries_authority(void **state)
{
    (void)state;
    assert_true(sp_headers_is_hop_by_hop(BL("host")));
}

static void test_end_to_end_fields_are_not_hop_by_hop(void **state)
{
    static const char *const names[] = {
        "content-type", "content-length", "trailer",         "tes", "t",      "", "x-connection",
        "connectio",    "accept",         "x-forwarded-for", "via", "cookie",
    };

    (void)state;
    for (size_t i = 0; i < SP_ARRAY_LEN(names); i++)
        assert_false(sp_headers_is_hop_by_hop(BL(names[i])));
}

static void test_hop_by_hop_compares_the_given_length_only(void **state)
{
    (void)state;
    assert_true(sp_headers_is_hop_by_hop(B("te-xyz"), 2));
    assert_false(sp_headers_is_hop_by_hop(B("te"), 1));
}

static void test_xff_append_joins_the_existing_value_with_a_comma(void **state)
{
    char *v;

    (void)state;
    v = sp_headers_xff_append(BL("203.0.113.7"), "198.51.100.1");
    assert_string_equal(v, "203.0.113.7, 198.51.100.1");
    free(v);
    v = sp_headers_xff_append(BL("203.0.113.7, 10.0.0.1"), "2001:db8::1");
    assert_string_equal(v, "203.0.113.7, 10.0.0.1, 2001:db8::1");
    free(v);
}

static void test_xff_append_without_existing_value_is_just_the_ip(void **state)
{
    char *v;

    (void)state;
    v = sp_headers_xff_append(NULL, 0, "198.51.100.1");
    assert_string_equal(v, "198.51.100.1");
    free(v);
    v = sp_headers_xff_append(B(""), 0, "198.51.100.1");
    assert_string_equal(v, "198.51.100.1");
    free(v);
    v = sp_headers_xff_append(BL(" \t "), "198.51.100.1");
    assert_string_equal(v, "198.51.100.1");
    free(v);
}

static void test_xff_append_trims_whitespace_around_the_existing_value(void **state)
{
    char *v;

    (void)state;
    v = sp_headers_xff_append(BL(" 203.0.113.7 "), "198.51.100.1");
    assert_string_equal(v, "203.0.113.7, 198.51.100.1");
    free(v);
}

static void test_xff_append_reads_only_existing_len_bytes(void **state)
{
    char *v;

    (void)state;
    v = sp_headers_xff_append(B("203.0.113.7garbage"), 11, "198.51.100.1");
    assert_string_equal(v, "203.0.113.7, 198.51.100.1");
    free(v);
}

static void test_via_append_adds_our_http3_entry(void **state)
{
    char *v;

    (void)state;
    v = sp_headers_via_append(NULL, 0);
    assert_string_equal(v, "3 spooky");
    free(v);
    v = sp_headers_via_append(BL("1.1 edge"));
    assert_string_equal(v, "1.1 edge, 3 spooky");
    free(v);
    v = sp_headers_via_append(BL("1.1 edge, 2 mid"));
    assert_string_equal(v, "1.1 edge, 2 mid, 3 spooky");
    free(v);
}

static void test_request_id_of_visible_ascii_is_kept(void **state)
{
    char longest[SP_HEADERS_REQUEST_ID_MAX_BYTES];

    (void)state;
    assert_true(sp_headers_request_id_valid(BL("a")));
    assert_true(sp_headers_request_id_valid(BL("f47ac10b-58cc-4372-a567-0e02b2c3d479")));
    assert_true(sp_headers_request_id_valid(BL("!~{}\"\\")));
    memset(longest, 'x', sizeof(longest));
    assert_true(sp_headers_request_id_valid(B(longest), sizeof(longest)));
}

static void test_request_id_empty_or_longer_than_128_bytes_is_rejected(void **state)
{
    char too_long[SP_HEADERS_REQUEST_ID_MAX_BYTES + 1];

    (void)state;
    memset(too_long, 'x', sizeof(too_long));
    assert_false(sp_headers_request_id_valid(B(too_long), sizeof(too_long)));
    assert_false(sp_headers_request_id_valid(B(""), 0));
}

static void test_request_id_with_cr_lf_or_other_controls_is_rejected(void **state)
{
    static const uint8_t nul[] = {'a', 0, 'b'};
    static const uint8_t high[] = {'a', 0xc3, 0xa9};

    (void)state;
    assert_false(sp_headers_request_id_valid(BL("abc\r\nx-admin: 1")));
    assert_false(sp_headers_request_id_valid(BL("abc\n")));
    assert_false(sp_headers_request_id_valid(BL("\rabc")));
    assert_false(sp_headers_request_id_valid(BL("a\tb")));
    assert_false(sp_headers_request_id_valid(BL("a\x7f")));
    assert_false(sp_headers_request_id_valid(nul, sizeof(nul)));
    assert_false(sp_headers_request_id_valid(high, sizeof(high)));
}

static void test_request_id_with_a_space_is_rejected(void **state)
{
    (void)state;
    assert_false(sp_headers_request_id_valid(BL("a b")));
    assert_false(sp_headers_request_id_valid(BL(" ")));
}

static void test_new_request_id_is_32_lowercase_hex_digits(void **state)
{
    char id[SP_HEADERS_REQUEST_ID_SIZE];

    (void)state;
    memset(id, 'Z', sizeof(id));
    sp_headers_request_id_new(id);
    assert_int_equal(strlen(id), 32);
    assert_int_equal(strspn(id, "0123456789abcdef"), 32);
    assert_true(sp_headers_request_id_valid(B(id), strlen(id)));
}

static void test_new_request_ids_differ(void **state)
{
    char a[SP_HEADERS_REQUEST_ID_SIZE];
    char b[SP_HEADERS_REQUEST_ID_SIZE];

    (void)state;
    sp_headers_request_id_new(a);
    sp_headers_request_id_new(b);
    assert_string_not_equal(a, b);
}

static void test_format_ip_writes_ipv4_without_port(void **state)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(443)};
    char out[INET6_ADDRSTRLEN];

    (void)state;
    assert_int_equal(inet_pton(AF_INET, "192.0.2.33", &sin.sin_addr), 1);
    assert_ptr_equal(sp_headers_format_ip((const struct sockaddr *)&sin, out, sizeof(out)), out);
    assert_string_equal(out, "192.0.2.33");
}

static void test_format_ip_writes_ipv6_without_port_or_brackets(void **state)
{
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
    char out[INET6_ADDRSTRLEN];

    (void)state;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr), 1);
    sp_headers_format_ip((const struct sockaddr *)&sin6, out, sizeof(out));
    assert_string_equal(out, "2001:db8::1");
}

static void test_format_ip_writes_ipv4_mapped_ipv6_as_ipv4(void **state)
{
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    char out[INET6_ADDRSTRLEN];

    (void)state;
    assert_int_equal(inet_pton(AF_INET6, "::ffff:198.51.100.9", &sin6.sin6_addr), 1);
    sp_headers_format_ip((const struct sockaddr *)&sin6, out, sizeof(out));
    assert_string_equal(out, "198.51.100.9");
}

static void test_format_ip_writes_unknown_for_other_families(void **state)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char out[INET6_ADDRSTRLEN];

    (void)state;
    sp_headers_format_ip((const struct sockaddr *)&sun, out, sizeof(out));
    assert_string_equal(out, "unknown");
}

static void test_format_ip_writes_empty_string_when_cap_is_too_small(void **state)
{
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    char out[8];

    (void)state;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr), 1);
    memset(out, 'Z', sizeof(out));
    sp_headers_format_ip((const struct sockaddr *)&sin6, out, sizeof(out));
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connection_specific_fields_are_hop_by_hop),
        cmocka_unit_test(test_host_is_hop_by_hop_because_http3_carries_authority),
        cmocka_unit_test(test_end_to_end_fields_are_not_hop_by_hop),
        cmocka_unit_test(test_hop_by_hop_compares_the_given_length_only),
        cmocka_unit_test(test_xff_append_joins_the_existing_value_with_a_comma),
        cmocka_unit_test(test_xff_append_without_existing_value_is_just_the_ip),
        cmocka_unit_test(test_xff_append_trims_whitespace_around_the_existing_value),
        cmocka_unit_test(test_xff_append_reads_only_existing_len_bytes),
        cmocka_unit_test(test_via_append_adds_our_http3_entry),
        cmocka_unit_test(test_request_id_of_visible_ascii_is_kept),
        cmocka_unit_test(test_request_id_empty_or_longer_than_128_bytes_is_rejected),
        cmocka_unit_test(test_request_id_with_cr_lf_or_other_controls_is_rejected),
        cmocka_unit_test(test_request_id_with_a_space_is_rejected),
        cmocka_unit_test(test_new_request_id_is_32_lowercase_hex_digits),
        cmocka_unit_test(test_new_request_ids_differ),
        cmocka_unit_test(test_format_ip_writes_ipv4_without_port),
        cmocka_unit_test(test_format_ip_writes_ipv6_without_port_or_brackets),
        cmocka_unit_test(test_format_ip_writes_ipv4_mapped_ipv6_as_ipv4),
        cmocka_unit_test(test_format_ip_writes_unknown_for_other_families),
        cmocka_unit_test(test_format_ip_writes_empty_string_when_cap_is_too_small),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
