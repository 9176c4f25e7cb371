/* test_syntax.c: unit tests of src/http/syntax: tokens, field values, request targets,
 * authorities and content-length values. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "core/util.h"
#include "http/syntax.h"

#define B(s) ((const uint8_t *)(s))
#define BL(s) B(s), strlen(s)

/* Authorities every backend protocol can carry. */
static const char *const good_authorities[] = {
    "a.example",
    "a.example:443",
    "A.Example",
    "localhost",
    "xn--bcher-kva.example", /* an IDN travels as its A-label */
    "a.example.",            /* fully qualified: the root label is empty, and that is fine */
    "a-b_c~d.example",
    "a%2Db.example", /* pct-encoded, RFC 3986 §3.2.2 */
    "a!$&'()*+,;=b", /* sub-delims are reg-name bytes */
    "1.2.3.4",
    "1.2.3.4:80",
    "255.255.255.255",
    "0.0.0.0",
    "[::1]",
    "[::1]:443",
    "[2001:db8::8a2e:370:7334]:8443",
    "[::ffff:192.0.2.1]",
    "x:1",
    "x:65535",
    "x:00080", /* RFC 3986 §3.2.3 port = *DIGIT: leading zeros are digits */
    "1e100.net",
};

/* Authorities spooky refuses before any backend sees them. */
static const char *const bad_authorities[] = {
    "",
    "a.example@evil",    /* userinfo: RFC 9110 §4.2.4 */
    "a.example:80@evil", /* userinfo with a port-looking prefix */
    "user@a.example",
    "@a.example",
    "x:99999", /* port out of range */
    "x:65536",
    "x:0",
    "x:",    /* empty port */
    "x:+80", /* no sign */
    "x:-1",
    "x: 80",
    "x:80 ",
    "x:8o",
    "x:80:81",
    ":80", /* empty host */
    "[::1",
    "[::1]x",
    "[::1]:",
    "[::1]:0",
    "[]",
    "[::1]]",
    "[fe80::1%25eth0]", /* zone identifiers are refused */
    "[v1.fe80::a]",     /* IPvFuture: valid RFC 3986, no backend can use it */
    "[1.2.3.4]",
    "::1", /* IPv6 without brackets */
    "a..b",
    ".a",
    ".",
    "a b",
    "a\tb",
    "a/b",
    "a\\b",
    "a?b",
    "a#b",
    "a%2",
    "a%zz",
    "a\"b",
    "a<b>",
    "b\xc3\xbc"
    "cher.example", /* raw UTF-8 */
    "1.2.3.400",    /* digits and dots must be an IPv4 address */
    "1.2.3",
    "123",
    "01.2.3.4",
    "1.2.3.4.",
};

static void test_valid_authorities_are_accepted(void **state)
{
    (void)state;
    for (size_t i = 0; i < SP_ARRAY_LEN(good_authorities); i++) {
        if (!sp_syntax_is_authority(BL(good_authorities[i])))
            fail_msg("refused valid authority \"%s\"", good_authorities[i]);
    }
}

static void test_invalid_authorities_are_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < SP_ARRAY_LEN(bad_authorities); i++) {
        if (sp_syntax_is_authority(BL(bad_authorities[i])))
            fail_msg("accepted invalid authority \"%s\"", bad_authorities[i]);
    }
}

static void test_authority_with_nul_byte_is_refused(void **state)
{
    (void)state;
    assert_false(sp_syntax_is_authority(B("a\0b"), 3));
    assert_false(sp_syntax_is_authority(B("[::1\0]"), 6));
}

static void test_authority_reads_only_len_bytes(void **state)
{
    (void)state;
    assert_true(sp_syntax_is_authority(B("a.example@evil"), 9));
    assert_false(sp_syntax_is_authority(B("[::1]:443"), 4));
}

static void test_tokens_are_tchar_runs(void **state)
{
    (void)state;
    assert_true(sp_syntax_is_token(BL("GET")));
    assert_true(sp_syntax_is_token(BL("x-custom_Method!#$%&'*+.^`|~09")));
    assert_false(sp_syntax_is_token(BL("")));
    assert_false(sp_syntax_is_token(BL("G T")));
    assert_false(sp_syntax_is_token(BL("GET:")));
    assert_false(sp_syntax_is_token(BL("a(b)")));
    assert_false(sp_syntax_is_token(BL("\xc3\xa9")));
    assert_false(sp_syntax_is_token(B("a\0"), 2));
}

static void test_field_values_refuse_controls_and_surrounding_whitespace(void **state)
{
    (void)state;
    assert_true(sp_syntax_is_field_value(BL("")));
    assert_true(sp_syntax_is_field_value(BL("text/html; q=0.9")));
    assert_true(sp_syntax_is_field_value(BL("a\tb")));
    assert_true(sp_syntax_is_field_value(BL("caf\xc3\xa9"))); /* obs-text */
    assert_false(sp_syntax_is_field_value(BL("a\r\nx-injected: 1")));
    assert_false(sp_syntax_is_field_value(BL("a\nb")));
    assert_false(sp_syntax_is_field_value(B("a\0b"), 3));
    assert_false(sp_syntax_is_field_value(BL("a\x01")));
    assert_false(sp_syntax_is_field_value(BL("a\x7f")));
    assert_false(sp_syntax_is_field_value(BL(" a")));
    assert_false(sp_syntax_is_field_value(BL("a ")));
    assert_false(sp_syntax_is_field_value(BL("\ta")));
    assert_false(sp_syntax_is_field_value(BL(" ")));
}

static void test_request_targets_are_origin_form_or_asterisk_for_options(void **state)
{
    (void)state;
    assert_true(sp_syntax_is_request_target(BL("/"), false));
    assert_true(sp_syntax_is_request_target(BL("/a/b?c=d&e=%20"), false));
    assert_true(sp_syntax_is_request_target(BL("*"), true));
    assert_false(sp_syntax_is_request_target(BL("*"), false));
    assert_true(sp_syntax_is_request_target(BL("/*x"), true));
    assert_false(sp_syntax_is_request_target(BL(""), true));
    assert_false(sp_syntax_is_request_target(BL("a/b"), false));
    assert_false(sp_syntax_is_request_target(BL("http://a.example/"), false));
    assert_false(sp_syntax_is_request_target(BL("/a b"), false));
    assert_false(sp_syntax_is_request_target(BL("/a#frag"), false));
    assert_false(sp_syntax_is_request_target(BL("/\xc3\xa9"), false));
    assert_false(sp_syntax_is_request_target(BL("/a\r\n"), false));
    assert_false(sp_syntax_is_request_target(B("/a\0"), 3, false));
}

static void test_content_length_is_digits_only_and_bounded(void **state)
{
    uint64_t v = 7;

    (void)state;
    assert_int_equal(sp_syntax_parse_length(BL("0"), &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(sp_syntax_parse_length(BL("123456789012345678"), &v), 0);
    assert_int_equal(v, 123456789012345678ull);
    v = 7;
    assert_int_equal(sp_syntax_parse_length(BL("1234567890123456789"), &v), -EINVAL);
    assert_int_equal(sp_syntax_parse_length(BL(""), &v), -EINVAL);
    assert_int_equal(sp_syntax_parse_length(BL("+1"), &v), -EINVAL);
    assert_int_equal(sp_syntax_parse_length(BL("-1"), &v), -EINVAL);
    assert_int_equal(sp_syntax_parse_length(BL(" 1"), &v), -EINVAL);
    assert_int_equal(sp_syntax_parse_length(BL("1,1"), &v), -EINVAL);
    assert_int_equal(sp_syntax_parse_length(BL("0x10"), &v), -EINVAL);
    assert_int_equal(v, 7); /* untouched on error */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_authorities_are_accepted),
        cmocka_unit_test(test_invalid_authorities_are_refused),
        cmocka_unit_test(test_authority_with_nul_byte_is_refused),
        cmocka_unit_test(test_authority_reads_only_len_bytes),
        cmocka_unit_test(test_tokens_are_tchar_runs),
        cmocka_unit_test(test_field_values_refuse_controls_and_surrounding_whitespace),
        cmocka_unit_test(test_request_targets_are_origin_form_or_asterisk_for_options),
        cmocka_unit_test(test_content_length_is_digits_only_and_bounded),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
