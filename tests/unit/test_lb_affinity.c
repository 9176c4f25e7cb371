/* test_lb_affinity.c: unit tests of src/lb/affinity.c: every key kind, stability of keys across
 * what should not matter (port, case, other cookies, split cookie lines, host bits past the
 * prefix), and the errors. Requests are built in memory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "core/util.h"
#include "lb/affinity.h"

#define F(n, v)                                                                                    \
    {                                                                                              \
        (const uint8_t *)(n), sizeof(n) - 1, (const uint8_t *)(v), sizeof(v) - 1                   \
    }

struct key {
    uint8_t buf[64];
    size_t len;
};

static struct sp_lb_request request(const char *path, const char *authority,
                                    const struct sp_lb_field *fields, size_t count)
{
    return (struct sp_lb_request){
        .fields = fields,
        .fields_count = count,
        .path = (const uint8_t *)path,
        .path_len = path != NULL ? strlen(path) : 0,
        .authority = (const uint8_t *)authority,
        .authority_len = authority != NULL ? strlen(authority) : 0,
    };
}

static int extract(enum sp_lb_key_kind kind, const char *name, const struct sp_lb_request *req,
                   struct key *k)
{
    const struct sp_lb_key_spec spec = {.kind = kind, .name = name};

    memset(k, 0, sizeof(*k));
    return sp_lb_affinity_key(&spec, req, k->buf, sizeof(k->buf), &k->len);
}

static void assert_key(const struct key *k, const char *expected)
{
    assert_int_equal(k->len, strlen(expected));
    assert_memory_equal(k->buf, expected, k->len);
}

static struct sockaddr_in6 v6(const char *text)
{
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(4433)};

    assert_int_equal(inet_pton(AF_INET6, text, &sa.sin6_addr), 1);
    return sa;
}

static struct sockaddr_in v4(const char *text, uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};

    assert_int_equal(inet_pton(AF_INET, text, &sa.sin_addr), 1);
    return sa;
}

static int ip_key(const void *sa, unsigned v4_bits, unsigned v6_bits, struct key *k)
{
    const struct sp_lb_key_spec spec = {
        .kind = SP_LB_KEY_SOURCE_IP, .ipv4_prefix_len = v4_bits, .ipv6_prefix_len = v6_bits};
    struct sp_lb_request req = {.client = sa};

    return sp_lb_affinity_key(&spec, &req, k->buf, sizeof(k->buf), &k->len);
}

static void test_source_ip_key_keeps_the_prefix_and_ignores_the_port_and_host_bits(void **state)
{
    struct sockaddr_in a = v4("192.0.2.77", 1000), b = v4("192.0.2.200", 2000);
    struct sockaddr_in c = v4("192.0.3.77", 1000);
    struct key ka, kb, kc;

    (void)state;
    assert_int_equal(ip_key(&a, 24, 0, &ka), 0);
    assert_int_equal(ip_key(&b, 24, 0, &kb), 0);
    assert_int_equal(ip_key(&c, 24, 0, &kc), 0);
    assert_int_equal(ka.len, 6);
    assert_memory_equal(ka.buf, kb.buf, 6); /* same /24 */
    assert_memory_not_equal(ka.buf, kc.buf, 6);
    assert_int_equal(ip_key(&a, 0, 0, &ka), 0); /* default: the whole address */
    assert_int_equal(ip_key(&b, 0, 0, &kb), 0);
    assert_memory_not_equal(ka.buf, kb.buf, 6);
    assert_int_equal(ip_key(&a, 20, 0, &ka), 0); /* a prefix inside a byte: 192.0.0.0/20 */
    assert_int_equal(ka.buf[4], 0);
}

static void test_source_ip_key_masks_ipv6_and_folds_v4_mapped_addresses(void **state)
{
    struct sockaddr_in6 a = v6("2001:db8:1:2::1"), b = v6("2001:db8:1:2:ffff::9");
    struct sockaddr_in6 mapped = v6("::ffff:192.0.2.77");
    struct sockaddr_in plain = v4("192.0.2.77", 1);
    struct key ka, kb, km, kp;

    (void)state;
    assert_int_equal(ip_key(&a, 0, 64, &ka), 0);
    assert_int_equal(ip_key(&b, 0, 64, &kb), 0);
    assert_int_equal(ka.len, 18);
    assert_memory_equal(ka.buf, kb.buf, 18);
    assert_int_equal(ip_key(&a, 0, 0, &ka), 0);
    assert_int_equal(ip_key(&b, 0, 0, &kb), 0);
    assert_memory_not_equal(ka.buf, kb.buf, 18);
    assert_int_equal(ip_key(&mapped, 0, 0, &km), 0);
    assert_int_equal(ip_key(&plain, 0, 0, &kp), 0);
    assert_int_equal(km.len, kp.len);
    assert_memory_equal(km.buf, kp.buf, kp.len);
}

static void test_source_ip_key_rejects_bad_prefixes_and_reports_a_missing_address(void **state)
{
    struct sockaddr_in a = v4("192.0.2.1", 1);
    struct key k;

    (void)state;
    assert_int_equal(ip_key(&a, 33, 0, &k), -EINVAL);
    assert_int_equal(ip_key(&a, 0, 129, &k), -EINVAL);
    assert_int_equal(ip_key(NULL, 0, 0, &k), -ENOENT);
}

static void test_header_key_matches_any_case_and_joins_repeated_lines(void **state)
{
    const struct sp_lb_field fields[] = {F("x-user", "alice"), F("accept", "*/*"),
                                         F("x-user", "bob")};
    struct sp_lb_request req = request("/", "a", fields, SP_ARRAY_LEN(fields));
    struct key k;

    (void)state;
    assert_int_equal(extract(SP_LB_KEY_HEADER, "X-User", &req, &k), 0);
    assert_key(&k, "alice, bob");
    assert_int_equal(extract(SP_LB_KEY_HEADER, "x-tenant", &req, &k), -ENOENT);
    assert_int_equal(extract(SP_LB_KEY_HEADER, NULL, &req, &k), -EINVAL);
}

static void test_cookie_key_finds_its_cookie_among_others_and_across_split_lines(void **state)
{
    /* RFC 9114 §4.2.1: HTTP/3 may send each cookie in its own field line */
    const struct sp_lb_field split[] = {F("cookie", "theme=dark"), F("user-agent", "x"),
                                        F("cookie", "sid=abc123"), F("cookie", "sid=later")};
    const struct sp_lb_field joined[] = {F("cookie", "theme=dark; sid=abc123;lang=en")};
    const struct sp_lb_field sloppy[] = {F("Cookie", " theme = dark ;\tsid = abc123 ; x")};
    struct sp_lb_request r1 = request("/", "a", split, SP_ARRAY_LEN(split));
    struct sp_lb_request r2 = request("/", "a", joined, SP_ARRAY_LEN(joined));
    struct sp_lb_request r3 = request("/", "a", sloppy, SP_ARRAY_LEN(sloppy));
    struct key k;

    (void)state;
    assert_int_equal(extract(SP_LB_KEY_COOKIE, "sid", &r1, &k), 0);
    assert_key(&k, "abc123");
    assert_int_equal(extract(SP_LB_KEY_COOKIE, "sid", &r2, &k), 0);
    assert_key(&k, "abc123");
    assert_int_equal(extract(SP_LB_KEY_COOKIE, "sid", &r3, &k), 0);
    assert_key(&k, "abc123");
    assert_int_equal(extract(SP_LB_KEY_COOKIE, "lang", &r2, &k), 0);
    assert_key(&k, "en");
}

static void test_cookie_key_matches_names_exactly(void **state)
{
    const struct sp_lb_field fields[] = {F("cookie", "xsid=1; SID=2; sidx=3; sid")};
    struct sp_lb_request req = request("/", "a", fields, SP_ARRAY_LEN(fields));
    struct key k;

    (void)state;
    assert_int_equal(extract(SP_LB_KEY_COOKIE, "sid", &req, &k), -ENOENT);
    assert_int_equal(extract(SP_LB_KEY_COOKIE, "SID", &req, &k), 0);
    assert_key(&k, "2");
}

static void test_path_key_drops_the_query(void **state)
{
    struct sp_lb_request a = request("/cart/42?x=1", "a", NULL, 0);
    struct sp_lb_request b = request("/cart/42", "a", NULL, 0);
    struct sp_lb_request none = request(NULL, "a", NULL, 0);
    struct key k;

    (void)state;
    assert_int_equal(extract(SP_LB_KEY_PATH, NULL, &a, &k), 0);
    assert_key(&k, "/cart/42");
    assert_int_equal(extract(SP_LB_KEY_PATH, NULL, &b, &k), 0);
    assert_key(&k, "/cart/42");
    assert_int_equal(extract(SP_LB_KEY_PATH, NULL, &none, &k), -ENOENT);
}

static void test_authority_key_ignores_port_case_and_trailing_dot(void **state)
{
    static const char *const same[] = {"Shop.Example", "shop.example:443", "shop.example."};
    struct key k;

    (void)state;
    for (size_t i = 0; i < SP_ARRAY_LEN(same); i++) {
        struct sp_lb_request req = request("/", same[i], NULL, 0);

        assert_int_equal(extract(SP_LB_KEY_AUTHORITY, NULL, &req, &k), 0);
        assert_key(&k, "shop.example");
    }
    struct sp_lb_request v6req = request("/", "[2001:DB8::1]:443", NULL, 0);
    struct sp_lb_request empty = request("/", ":443", NULL, 0);

    assert_int_equal(extract(SP_LB_KEY_AUTHORITY, NULL, &v6req, &k), 0);
    assert_key(&k, "2001:db8::1");
    assert_int_equal(extract(SP_LB_KEY_AUTHORITY, NULL, &empty, &k), -ENOENT);
}

static void test_query_key_finds_the_first_parameter_by_exact_name(void **state)
{
    struct sp_lb_request req = request("/s?xuser=9&user=42&user=43&flag#user=frag", "a", NULL, 0);
    struct sp_lb_request frag = request("/s?a=1#user=7", "a", NULL, 0);
    struct key k;

    (void)state;
    assert_int_equal(extract(SP_LB_KEY_QUERY, "user", &req, &k), 0);
    assert_key(&k, "42");
    assert_int_equal(extract(SP_LB_KEY_QUERY, "flag", &req, &k), 0);
    assert_key(&k, "");
    assert_int_equal(extract(SP_LB_KEY_QUERY, "nope", &req, &k), -ENOENT);
    assert_int_equal(extract(SP_LB_KEY_QUERY, "user", &frag, &k), -ENOENT);
}

static void test_keys_that_do_not_fit_report_enospc_and_leave_the_length_alone(void **state)
{
    const struct sp_lb_field fields[] = {F("x-user", "a-rather-long-user-name")};
    struct sp_lb_request req = request("/a/long/path", "a", fields, 1);
    const struct sp_lb_key_spec header = {.kind = SP_LB_KEY_HEADER, .name = "x-user"};
    const struct sp_lb_key_spec path = {.kind = SP_LB_KEY_PATH};
    uint8_t buf[4];
    size_t len = 77;

    (void)state;
    assert_int_equal(sp_lb_affinity_key(&header, &req, buf, sizeof(buf), &len), -ENOSPC);
    assert_int_equal(sp_lb_affinity_key(&path, &req, buf, sizeof(buf), &len), -ENOSPC);
    assert_int_equal(len, 77);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_ip_key_keeps_the_prefix_and_ignores_the_port_and_host_bits),
        cmocka_unit_test(test_source_ip_key_masks_ipv6_and_folds_v4_mapped_addresses),
        cmocka_unit_test(test_source_ip_key_rejects_bad_prefixes_and_reports_a_missing_address),
        cmocka_unit_test(test_header_key_matches_any_case_and_joins_repeated_lines),
        cmocka_unit_test(test_cookie_key_finds_its_cookie_among_others_and_across_split_lines),
        cmocka_unit_test(test_cookie_key_matches_names_exactly),
        cmocka_unit_test(test_path_key_drops_the_query),
        cmocka_unit_test(test_authority_key_ignores_port_case_and_trailing_dot),
        cmocka_unit_test(test_query_key_finds_the_first_parameter_by_exact_name),
        cmocka_unit_test(test_keys_that_do_not_fit_report_enospc_and_leave_the_length_alone),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
