/* test_h1_codec.c: unit tests of src/upstream/h1_codec: the HTTP/1.1 request writer (hostile
 * field values, body framing, cookies, Host), the chunk encoder, and the strict response parser
 * (bodies, interim responses, trailers, smuggling guards, keep-alive decisions). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "upstream/h1_codec.h"

#define F(n, v) sp_field_str((n), (v))

/* ---- helpers: what a well-formed request head looks like ---------------------------------- */

static bool is_tchar(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Checks a request head byte by byte: lines end in CRLF and hold no other CR, LF or control
 * byte; the request line is "TOKEN SP TARGET SP HTTP/1.1"; every field line is a lowercase token,
 * ": " and a value; exactly one host; not both content-length and transfer-encoding; the head
 * ends with an empty line and nothing follows. */
static void assert_well_formed_head(const uint8_t *b, size_t len)
{
    size_t line = 0, hosts = 0, cls = 0, tes = 0, i = 0;
    bool ended = false;

    while (i < len) {
        size_t s = i, e;

        assert_false(ended);
        while (i < len && b[i] != '\r' && b[i] != '\n') {
            assert_true(b[i] >= 0x20 || b[i] == '\t');
            assert_true(b[i] != 0x7f);
            i++;
        }
        assert_true(i + 1 < len + 1 && i < len && b[i] == '\r');
        assert_true(i + 1 < len && b[i + 1] == '\n');
        e = i;
        i += 2;
        if (e == s) {
            ended = true;
            continue;
        }
        if (line++ == 0) {
            size_t k = s, sp = 0;

            for (; k < e; k++)
                if (b[k] == ' ')
                    sp++;
            assert_int_equal(sp, 2);
            assert_true(e - s > 9 && memcmp(b + e - 9, " HTTP/1.1", 9) == 0);
            continue;
        }
        size_t k = s;
        while (k < e && b[k] != ':') {
            assert_true(is_tchar(b[k]));
            k++;
        }
        assert_true(k > s && k + 1 < e + 1 && k < e);
        if (k - s == 4 && memcmp(b + s, "host", 4) == 0)
            hosts++;
        if (k - s == 14 && memcmp(b + s, "content-length", 14) == 0)
            cls++;
        if (k - s == 17 && memcmp(b + s, "transfer-encoding", 17) == 0)
            tes++;
    }
    assert_true(ended);
    assert_int_equal(hosts, 1);
    assert_true(cls <= 1 && tes <= 1 && cls + tes <= 1);
}

/* Writes the head; on success checks it is well formed and returns it NUL-terminated (freed by
 * the caller). */
static char *head_of(const struct sp_field *f, size_t n, bool has_body,
                     struct sp_h1_request_info *info, int *ret_rv)
{
    struct sp_h1_buf b = {0};
    char *s;

    *ret_rv = sp_h1_request_head(f, n, has_body, &b, info);
    if (*ret_rv == 0 && info->open)
        sp_h1_request_head_close(&b, info, false);
    if (*ret_rv != 0) {
        assert_int_equal(b.len, 0); /* nothing written on refusal */
        sp_h1_buf_fini(&b);
        return NULL;
    }
    assert_well_formed_head(b.data, b.len);
    s = sp_xstrndup((const char *)b.data, b.len);
    sp_h1_buf_fini(&b);
    return s;
}

static char *head_ok(const struct sp_field *f, size_t n, bool has_body,
                     struct sp_h1_request_info *info)
{
    int rv;
    char *s = head_of(f, n, has_body, info, &rv);

    assert_int_equal(rv, 0);
    return s;
}

/* ---- request writer ---------------------------------------------------------------------- */

static void test_request_line_and_host_come_from_pseudo_fields(void **state)
{
    struct sp_field f[] = {F(":method", "GET"), F(":scheme", "https"),
                           F(":authority", "example.com:8443"), F(":path", "/a/b?c=d"),
                           F("accept", "*/*")};
    struct sp_h1_request_info info;
    char *s = head_ok(f, SP_ARRAY_LEN(f), false, &info);

    (void)state;
    assert_string_equal(s, "GET /a/b?c=d HTTP/1.1\r\nhost: example.com:8443\r\n"
                           "accept: */*\r\n\r\n");
    assert_int_equal(info.framing, SP_H1_FRAMING_NONE);
    assert_false(info.head);
    free(s);
}

static void test_host_field_is_replaced_by_authority(void **state)
{
    struct sp_field f[] = {F(":method", "GET"), F(":authority", "a.example"), F(":path", "/"),
                           F("host", "evil.example")};
    struct sp_h1_request_info info;
    char *s = head_ok(f, SP_ARRAY_LEN(f), false, &info);

    (void)state;
    assert_non_null(strstr(s, "host: a.example\r\n"));
    assert_null(strstr(s, "evil"));
    free(s);
}

static void test_host_field_is_used_when_authority_is_absent(void **state)
{
    struct sp_field f[] = {F(":method", "GET"), F(":path", "/"), F("host", "b.example")};
    struct sp_h1_request_info info;
    char *s = head_ok(f, SP_ARRAY_LEN(f), false, &info);

    (void)state;
    assert_string_equal(s, "GET / HTTP/1.1\r\nhost: b.example\r\n\r\n");
    free(s);
}

static void test_field_names_are_lowercased(void **state)
{
    struct sp_field f[] = {F(":method", "GET"), F(":authority", "a"), F(":path", "/"),
                           F("X-Custom-Field", "Value Kept")};
    struct sp_h1_request_info info;
    char *s = head_ok(f, SP_ARRAY_LEN(f), false, &info);

    (void)state;
    assert_non_null(strstr(s, "\r\nx-custom-field: Value Kept\r\n"));
    free(s);
}

static void test_cookies_are_joined_with_semicolon_space(void **state)
{
    struct sp_field f[] = {F(":method", "GET"), F(":authority", "a"), F(":path", "/"),
                           F("cookie", "a=1"),  F("x-mid", "m"),      F("cookie", "b=2"),
                           F("cookie", ""),     F("cookie", "c=3")};
    struct sp_h1_request_info info;
    char *s = head_ok(f, SP_ARRAY_LEN(f), false, &info);

    (void)state;
    assert_string_equal(s, "GET / HTTP/1.1\r\nhost: a\r\ncookie: a=1; b=2; c=3\r\n"
                           "x-mid: m\r\n\r\n");
    free(s);
}

static void test_connection_specific_fields_are_dropped(void **state)
{
    struct sp_field f[] = {F(":method", "GET"),
                           F(":authority", "a"),
                           F(":path", "/"),
                           F("connection", "close"),
                           F("keep-alive", "timeout=5"),
                           F("proxy-connection", "keep-alive"),
                           F("transfer-encoding", "chunked"),
                           F("upgrade", "websocket"),
                           F("te", "trailers"),
                           F("http2-settings", "AAAA"),
                           F("x-ok", "1")};
    struct sp_h1_request_info info;
    char *s = head_ok(f, SP_ARRAY_LEN(f), false, &info);

    (void)state;
    assert_string_equal(s, "GET / HTTP/1.1\r\nhost: a\r\nx-ok: 1\r\n\r\n");
    free(s);
}

/* Every place a client-controlled byte can land, with every byte that could end a line. */
static void test_hostile_bytes_are_never_written(void **state)
{
    static const char *const bad[] = {"\r", "\n", "\r\n", "\0", "\x01", "\x7f", "\x0b"};
    static const char *const slots[] = {":method", ":path",  ":authority", "value",
                                        "name",    "cookie", "host"};

    (void)state;
    for (size_t b = 0; b < SP_ARRAY_LEN(bad); b++) {
        for (size_t k = 0; k < SP_ARRAY_LEN(slots); k++) {
            uint8_t val[32];
            size_t blen = bad[b][0] == '\0' ? 1 : strlen(bad[b]);
            struct sp_field f[] = {F(":method", "GET"), F(":authority", "a"), F(":path", "/x"),
                                   F("x-h", "v")};
            struct sp_field extra;
            struct sp_h1_request_info info;
            size_t n = SP_ARRAY_LEN(f);
            int rv;
            char *s;

            memcpy(val, "/ok", 3);
            memcpy(val + 3, bad[b], blen);
            memcpy(val + 3 + blen, "x: y", 4);
            extra = (struct sp_field){.name = (const uint8_t *)"x-h",
                                      .name_len = 3,
                                      .value = val,
                                      .value_len = 3 + blen + 4};
            if (strcmp(slots[k], ":method") == 0)
                f[0].value = val + 1, f[0].value_len = extra.value_len - 1;
            else if (strcmp(slots[k], ":path") == 0)
                f[2].value = val, f[2].value_len = extra.value_len;
            else if (strcmp(slots[k], ":authority") == 0)
                f[1].value = val + 1, f[1].value_len = extra.value_len - 1;
            else if (strcmp(slots[k], "value") == 0)
                f[3] = extra;
            else if (strcmp(slots[k], "name") == 0)
                f[3].name = val + 1, f[3].name_len = extra.value_len - 1;
            else if (strcmp(slots[k], "cookie") == 0)
                f[3] = extra, f[3].name = (const uint8_t *)"cookie", f[3].name_len = 6;
            else
                f[1] = extra, f[1].name = (const uint8_t *)"host", f[1].name_len = 4,
                f[1].value = val + 1, f[1].value_len = extra.value_len - 1;
            s = head_of(f, n, false, &info, &rv);
            assert_int_equal(rv, -EINVAL);
            assert_null(s);
        }
    }
}

static void test_body_with_content_length_is_framed_by_length(void **state)
{
    struct sp_field f[] = {F(":method", "POST"), F(":authority", "a"), F(":path", "/up"),
                           F("content-length", "1024"), F("content-type", "x/y")};
    struct sp_h1_request_info info;
    char *s = head_ok(f, SP_ARRAY_LEN(f), true, &info);

    (void)state;
    assert_int_equal(info.framing, SP_H1_FRAMING_LENGTH);
    assert_int_equal(info.content_length, 1024);
    assert_string_equal(s, "POST /up HTTP/1.1\r\nhost: a\r\ncontent-type: x/y\r\n"
                           "content-length: 1024\r\n\r\n");
    free(s);
}

static void test_body_of_unknown_length_is_chunked(void **state)
{
    struct sp_field f[] = {F(":method", "PUT"), F(":authority", "a"), F(":path", "/up")};
    struct sp_h1_request_info info;
    char *s = head_ok(f, SP_ARRAY_LEN(f), true, &info);

    (void)state;
    assert_int_equal(info.framing, SP_H1_FRAMING_CHUNKED);
    assert_string_equal(s, "PUT /up HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n");
    free(s);
}

static void test_open_head_without_a_body_byte_is_sent_without_framing(void **state)
{
    struct sp_field get[] = {F(":method", "GET"), F(":authority", "a"), F(":path", "/")};
    struct sp_field put[] = {F(":method", "PUT"), F(":authority", "a"), F(":path", "/")};
    struct sp_h1_request_info info;
    struct sp_h1_buf b = {0};

    (void)state;
    assert_int_equal(sp_h1_request_head(get, SP_ARRAY_LEN(get), true, &b, &info), 0);
    assert_true(info.open);
    sp_h1_request_head_close(&b, &info, true);
    assert_false(info.open);
    assert_int_equal(info.framing, SP_H1_FRAMING_NONE);
    assert_int_equal(b.len, strlen("GET / HTTP/1.1\r\nhost: a\r\n\r\n"));
    assert_memory_equal(b.data, "GET / HTTP/1.1\r\nhost: a\r\n\r\n", b.len);
    sp_h1_request_head_close(&b, &info, false); /* closed already: no effect */
    assert_int_equal(info.framing, SP_H1_FRAMING_NONE);
    b.len = 0;
    assert_int_equal(sp_h1_request_head(put, SP_ARRAY_LEN(put), true, &b, &info), 0);
    sp_h1_request_head_close(&b, &info, true);
    assert_memory_equal(b.data, "PUT / HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n", b.len);
    sp_h1_buf_fini(&b);
}

static void test_bodyless_request_has_no_framing_but_post_says_zero(void **state)
{
    struct sp_field get[] = {F(":method", "GET"), F(":authority", "a"), F(":path", "/")};
    struct sp_field post[] = {F(":method", "POST"), F(":authority", "a"), F(":path", "/")};
    struct sp_field zero[] = {F(":method", "DELETE"), F(":authority", "a"), F(":path", "/"),
                              F("content-length", "0")};
    struct sp_h1_request_info info;
    char *s;

    (void)state;
    s = head_ok(get, SP_ARRAY_LEN(get), false, &info);
    assert_null(strstr(s, "content-length"));
    assert_null(strstr(s, "transfer-encoding"));
    free(s);
    s = head_ok(post, SP_ARRAY_LEN(post), false, &info);
    assert_non_null(strstr(s, "content-length: 0\r\n"));
    free(s);
    s = head_ok(zero, SP_ARRAY_LEN(zero), false, &info);
    assert_int_equal(info.framing, SP_H1_FRAMING_NONE);
    assert_null(strstr(s, "content-length"));
    free(s);
}

static void test_content_length_mismatches_are_rejected(void **state)
{
    static const char *const bad[] = {"",    "-1",   "+1",  "1,1",
                                      "1 1", "0x10", "abc", "99999999999999999999"};
    struct sp_h1_request_info info;
    int rv;

    (void)state;
    for (size_t i = 0; i < SP_ARRAY_LEN(bad); i++) {
        struct sp_field f[] = {F(":method", "POST"), F(":authority", "a"), F(":path", "/"),
                               F("content-length", bad[i])};

        assert_null(head_of(f, SP_ARRAY_LEN(f), true, &info, &rv));
        assert_int_equal(rv, -EINVAL);
    }
    /* Two lengths that differ, or a length for a body that will not come. */
    struct sp_field two[] = {F(":method", "POST"), F(":authority", "a"), F(":path", "/"),
                             F("content-length", "5"), F("content-length", "6")};
    struct sp_field none[] = {F(":method", "POST"), F(":authority", "a"), F(":path", "/"),
                              F("content-length", "5")};
    struct sp_field same[] = {F(":method", "POST"), F(":authority", "a"), F(":path", "/"),
                              F("content-length", "5"), F("content-length", "5")};
    char *s;

    assert_null(head_of(two, SP_ARRAY_LEN(two), true, &info, &rv));
    assert_null(head_of(none, SP_ARRAY_LEN(none), false, &info, &rv));
    s = head_ok(same, SP_ARRAY_LEN(same), true, &info);
    assert_int_equal(info.content_length, 5);
    free(s);
}

static void test_unsafe_request_lines_are_rejected(void **state)
{
    static const char *const cases[][3] = {
        {"CONNECT", "a:443", "/"}, {"GET", "a", "x"},    {"GET", "a", "*"},
        {"GET", "user@a", "/"},    {"GET", "a/b", "/"},  {"GET", "", "/"},
        {"G T", "a", "/"},         {"GET", "a", "/a b"}, {"GET", "a", "/\xc3\xa9"},
        {"GET", "a", "/#frag"},    {"", "a", "/"},
    };
    struct sp_h1_request_info info;
    int rv;

    (void)state;
    for (size_t i = 0; i < SP_ARRAY_LEN(cases); i++) {
        struct sp_field f[] = {F(":method", cases[i][0]), F(":authority", cases[i][1]),
                               F(":path", cases[i][2])};

        assert_null(head_of(f, SP_ARRAY_LEN(f), false, &info, &rv));
        assert_int_equal(rv, -EINVAL);
    }
}

static void test_pseudo_field_rules(void **state)
{
    struct sp_field unknown[] = {F(":method", "GET"), F(":authority", "a"), F(":path", "/"),
                                 F(":protocol", "websocket")};
    struct sp_field dup[] = {F(":method", "GET"), F(":authority", "a"), F(":path", "/"),
                             F(":path", "/x")};
    struct sp_field nopath[] = {F(":method", "GET"), F(":authority", "a")};
    struct sp_field options[] = {F(":method", "OPTIONS"), F(":authority", "a"), F(":path", "*")};
    struct sp_field head[] = {F(":method", "HEAD"), F(":authority", "a"), F(":path", "/")};
    struct sp_h1_request_info info;
    int rv;
    char *s;

    (void)state;
    assert_null(head_of(unknown, SP_ARRAY_LEN(unknown), false, &info, &rv));
    assert_null(head_of(dup, SP_ARRAY_LEN(dup), false, &info, &rv));
    assert_null(head_of(nopath, SP_ARRAY_LEN(nopath), false, &info, &rv));
    s = head_ok(options, SP_ARRAY_LEN(options), false, &info);
    assert_true(strncmp(s, "OPTIONS * HTTP/1.1\r\n", 20) == 0);
    free(s);
    s = head_ok(head, SP_ARRAY_LEN(head), false, &info);
    assert_true(info.head);
    free(s);
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* A random byte: usually benign, one time in eight from a hostile set. */
static uint8_t random_byte(uint64_t *x)
{
    static const char benign[] = "abcXYZ019-._~/";
    static const char hostile[] = "\r\n\x00\x01\x7f\x80\xff :;,\t?#@*%=\"";
    uint64_t r = xorshift(x);

    if (r % 8 == 0)
        return (uint8_t)hostile[(r >> 8) % (sizeof(hostile) - 1)];
    return (uint8_t)benign[(r >> 8) % (sizeof(benign) - 1)];
}

/* Random fields with hostile bytes sprinkled in: the writer either refuses or writes a
 * well-formed head; never anything in between. */
static void test_random_hostile_fields_never_produce_a_malformed_head(void **state)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    uint8_t pool[8][12];
    size_t ok = 0, refused = 0;

    (void)state;
    for (int iter = 0; iter < 20000; iter++) {
        struct sp_field f[8];
        struct sp_h1_request_info info;
        int rv;
        char *s;

        for (int k = 0; k < 8; k++)
            for (int j = 0; j < 12; j++)
                pool[k][j] = random_byte(&x);
        pool[2][0] = '/';
        f[0] = (struct sp_field){(const uint8_t *)":method", 7, pool[0], 1 + x % 4};
        f[1] = (struct sp_field){(const uint8_t *)":authority", 10, pool[1], 1 + (x >> 8) % 6};
        f[2] = (struct sp_field){(const uint8_t *)":path", 5, pool[2], 1 + (x >> 16) % 8};
        for (int k = 3; k < 8; k++)
            f[k] = (struct sp_field){pool[k], 1 + (x >> (k * 4)) % 5, pool[(k + 1) % 8],
                                     (x >> (k * 3)) % 12};
        s = head_of(f, SP_ARRAY_LEN(f), (x >> 40) & 1, &info, &rv);
        if (s != NULL)
            ok++;
        else
            refused++;
        free(s);
    }
    assert_true(ok > 100 && refused > 100); /* both paths were exercised */
}

/* ---- chunk encoder ----------------------------------------------------------------------- */

static void test_chunk_header_is_hex_length_and_crlf(void **state)
{
    uint8_t out[SP_H1_CHUNK_HEADER_MAX];
    size_t n;

    (void)state;
    n = sp_h1_chunk_header(0x1a2b, false, out);
    assert_int_equal(n, 6);
    assert_memory_equal(out, "1a2b\r\n", 6);
    n = sp_h1_chunk_header(1, true, out);
    assert_memory_equal(out, "\r\n1\r\n", n);
    n = sp_h1_chunk_header(UINT64_MAX, true, out);
    assert_int_equal(n, SP_H1_CHUNK_HEADER_MAX);
}

static void test_last_chunk_carries_trailers_and_drops_forbidden_ones(void **state)
{
    struct sp_field t[] = {
        F("X-Checksum", "abc"), F("content-length", "5"), F("transfer-encoding", "chunked"),
        F("host", "x"),         F(":status", "200"),      F("grpc-status", "0")};
    struct sp_field bad[] = {F("x-evil", "a\r\nb: c")};
    struct sp_h1_buf b = {0};

    (void)state;
    assert_int_equal(sp_h1_chunk_last(t, SP_ARRAY_LEN(t), true, &b), 0);
    assert_int_equal(b.len, strlen("\r\n0\r\nx-checksum: abc\r\ngrpc-status: 0\r\n\r\n"));
    assert_memory_equal(b.data, "\r\n0\r\nx-checksum: abc\r\ngrpc-status: 0\r\n\r\n", b.len);
    b.len = 0;
    assert_int_equal(sp_h1_chunk_last(bad, 1, false, &b), -EINVAL);
    assert_int_equal(b.len, 0);
    assert_int_equal(sp_h1_chunk_last(NULL, 0, false, &b), 0);
    assert_memory_equal(b.data, "0\r\n\r\n", 5);
    sp_h1_buf_fini(&b);
}

/* ---- response parser --------------------------------------------------------------------- */

struct parsed {
    int rv; /* 0, or -EPROTO */
    unsigned status;
    bool got_headers, ended, keep_alive;
    size_t nheaders;
    char body[4096];
    size_t body_len;
    char headers[1024]; /* "name=value;" for each field */
    char trailers[256];
};

static void dump_fields(const struct sp_fields *f, char *out, size_t cap)
{
    size_t at = 0;

    out[0] = '\0';
    for (size_t i = 0; i < f->count && at < cap; i++)
        at += (size_t)snprintf(out + at, cap - at, "%.*s=%.*s;", (int)f->items[i].name_len,
                               (const char *)f->items[i].name, (int)f->items[i].value_len,
                               (const char *)f->items[i].value);
}

static void handle_event(struct sp_h1_parser *p, const struct sp_h1_event *e, struct parsed *r)
{
    switch (e->type) {
    case SP_H1_EV_NONE:
        break;
    case SP_H1_EV_HEADERS:
        assert_false(r->got_headers);
        r->got_headers = true;
        r->status = sp_h1_parser_status(p);
        r->nheaders = sp_h1_parser_headers(p)->count;
        dump_fields(sp_h1_parser_headers(p), r->headers, sizeof(r->headers));
        break;
    case SP_H1_EV_DATA:
        assert_true(r->got_headers);
        assert_true(r->body_len + e->len <= sizeof(r->body));
        memcpy(r->body + r->body_len, e->data, e->len);
        r->body_len += e->len;
        break;
    case SP_H1_EV_END:
        r->ended = true;
        r->keep_alive = sp_h1_parser_keep_alive(p);
        dump_fields(sp_h1_parser_trailers(p), r->trailers, sizeof(r->trailers));
        break;
    }
}

/* Parses `text` (len bytes) fed in pieces of `step` bytes; eof: then signal end of stream.
 * Bytes after the end of the response are fed too (they must fail). */
static struct parsed parse_steps(const char *text, size_t len, size_t step, bool head, bool eof)
{
    struct sp_h1_parser_limits lim = {.max_header_bytes = 4096, .max_headers = 16};
    struct sp_h1_parser *p;
    struct parsed r;
    size_t off = 0;

    memset(&r, 0, sizeof(r));
    assert_int_equal(sp_h1_parser_new(&lim, &p), 0);
    sp_h1_parser_start(p, head);
    while (off < len && r.rv == 0) {
        size_t piece = SP_MIN(step, len - off), used = 0;

        for (int guard = 0; used < piece && guard < 10000; guard++) {
            struct sp_h1_event e;
            ssize_t n = sp_h1_parser_feed(p, (const uint8_t *)text + off + used, piece - used, &e);

            if (n < 0) {
                r.rv = (int)n;
                break;
            }
            used += (size_t)n;
            handle_event(p, &e, &r);
        }
        off += piece;
    }
    if (eof && r.rv == 0) {
        struct sp_h1_event e;

        r.rv = sp_h1_parser_eof(p, &e);
        if (r.rv == 0)
            handle_event(p, &e, &r);
    }
    sp_h1_parser_free(p);
    return r;
}

#define PARSE(lit, step) parse_steps((lit), sizeof(lit) - 1, (step), false, false)

static void test_content_length_response_is_parsed_at_any_split(void **state)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-Thing:  v  \r\n\r\n"
                               "hello\r\nworld";

    (void)state;
    for (size_t step = 1; step <= sizeof(resp); step++) {
        struct parsed r = PARSE(resp, step);

        assert_int_equal(r.rv, 0);
        assert_int_equal(r.status, 200);
        assert_true(r.ended && r.keep_alive);
        assert_int_equal(r.body_len, 12);
        assert_memory_equal(r.body, "hello\r\nworld", 12);
        assert_string_equal(r.headers, "content-length=12;x-thing=v;");
    }
}

static void test_chunked_response_with_trailers_is_parsed_at_any_split(void **state)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "5\r\nhello\r\n1;ext=1\r\n\n\r\n0\r\nX-Sum: 42\r\n"
                               "Content-Length: 9\r\n\r\n";

    (void)state;
    for (size_t step = 1; step <= sizeof(resp); step++) {
        struct parsed r = PARSE(resp, step);

        assert_int_equal(r.rv, 0);
        assert_true(r.ended && r.keep_alive);
        assert_int_equal(r.body_len, 6);
        assert_memory_equal(r.body, "hello\n", 6);
        assert_string_equal(r.trailers, "x-sum=42;"); /* content-length is no trailer */
    }
}

static void test_chunk_encoder_output_parses_back(void **state)
{
    struct sp_h1_buf b = {0};
    uint8_t line[SP_H1_CHUNK_HEADER_MAX];
    struct sp_field t[] = {F("x-t", "1")};
    static const char *const parts[] = {"abc", "\r\n", "0", "x"};
    struct parsed r;

    (void)state;
    sp_h1_buf_append(&b, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", 47);
    for (size_t i = 0; i < SP_ARRAY_LEN(parts); i++) {
        sp_h1_buf_append(&b, line, sp_h1_chunk_header(strlen(parts[i]), i > 0, line));
        sp_h1_buf_append(&b, parts[i], strlen(parts[i]));
    }
    assert_int_equal(sp_h1_chunk_last(t, 1, true, &b), 0);
    r = parse_steps((const char *)b.data, b.len, 3, false, false);
    assert_int_equal(r.rv, 0);
    assert_true(r.ended);
    assert_int_equal(r.body_len, 7);
    assert_memory_equal(r.body, "abc\r\n0x", 7);
    assert_string_equal(r.trailers, "x-t=1;");
    sp_h1_buf_fini(&b);
}

static void test_response_without_length_ends_at_close_and_is_not_reused(void **state)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nX: y\r\n\r\nuntil the end";
    struct parsed r = parse_steps(resp, sizeof(resp) - 1, 7, false, true);

    (void)state;
    assert_int_equal(r.rv, 0);
    assert_true(r.ended);
    assert_false(r.keep_alive);
    assert_int_equal(r.body_len, 13);
}

static void test_interim_responses_are_skipped(void **state)
{
    static const char resp[] = "HTTP/1.1 100 Continue\r\n\r\n"
                               "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                               "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";

    (void)state;
    for (size_t step = 1; step <= sizeof(resp); step += 3) {
        struct parsed r = PARSE(resp, step);

        assert_int_equal(r.rv, 0);
        assert_int_equal(r.status, 201);
        assert_string_equal(r.headers, "content-length=2;"); /* no Link from the 103 */
        assert_int_equal(r.body_len, 2);
        assert_true(r.ended && r.keep_alive);
    }
}

static void test_head_204_and_304_responses_have_no_body(void **state)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    static const char nc[] = "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n";
    static const char nm[] = "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n";
    struct parsed r;

    (void)state;
    r = parse_steps(head, sizeof(head) - 1, 5, true, false);
    assert_int_equal(r.rv, 0);
    assert_true(r.ended && r.keep_alive);
    assert_int_equal(r.body_len, 0);
    r = PARSE(nc, 4);
    assert_true(r.rv == 0 && r.ended && r.keep_alive && r.body_len == 0);
    r = PARSE(nm, 64);
    assert_true(r.rv == 0 && r.ended && r.keep_alive && r.body_len == 0);
}

static void test_malformed_responses_are_protocol_errors(void **state)
{
    static const char *const bad[] = {
        /* smuggling: two framings, differing or repeated lengths, unknown codings */
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n",
        /* line syntax: obs-fold, bare LF, bare CR, NUL and controls, space before colon */
        "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: 1\r\n\tfolded\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 0\n\n",
        "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: a\x01"
        "b\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n",
        /* chunks: bad size, missing CRLF after data, bare LF in chunk lines */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: 1\n\r\n",
        /* versions and statuses we do not take */
        "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/0.9 200 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
        "HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 600 High\r\nContent-Length: 0\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        /* bytes after a complete response belong to no request (response desync) */
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nabHTTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 204 No Content\r\n\r\nx",
    };

    (void)state;
    for (size_t i = 0; i < SP_ARRAY_LEN(bad); i++) {
        size_t len = strlen(bad[i]);

        for (size_t step = 1; step <= len; step += (step < 4 ? 1 : 13)) {
            struct parsed r = parse_steps(bad[i], len, step, false, false);

            if (r.rv != -EPROTO)
                fail_msg("case %zu (step %zu) was accepted: %s", i, step, bad[i]);
        }
    }
}

static void test_nul_in_a_header_value_is_a_protocol_error(void **state)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n";
    struct parsed r = PARSE(resp, 1);

    (void)state;
    assert_int_equal(r.rv, -EPROTO);
    r = PARSE(resp, sizeof(resp));
    assert_int_equal(r.rv, -EPROTO);
}

static void test_header_limits_are_enforced(void **state)
{
    char big[6000];
    char many[2048];
    size_t at;
    struct parsed r;

    (void)state;
    at = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(big + at, 'a', 4200);
    at += 4200;
    at += (size_t)snprintf(big + at, sizeof(big) - at, "\r\nContent-Length: 0\r\n\r\n");
    r = parse_steps(big, at, 1000, false, false);
    assert_int_equal(r.rv, -EPROTO);
    at = (size_t)snprintf(many, sizeof(many), "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 20; i++)
        at += (size_t)snprintf(many + at, sizeof(many) - at, "X-%d: v\r\n", i);
    at += (size_t)snprintf(many + at, sizeof(many) - at, "\r\n");
    r = parse_steps(many, at, 100, false, false);
    assert_int_equal(r.rv, -EPROTO);
}

static void test_keep_alive_decisions(void **state)
{
    static const struct {
        const char *resp;
        bool keep;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
        {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
    };

    (void)state;
    for (size_t i = 0; i < SP_ARRAY_LEN(cases); i++) {
        struct parsed r = parse_steps(cases[i].resp, strlen(cases[i].resp), 9, false, false);

        assert_int_equal(r.rv, 0);
        assert_true(r.ended);
        if (r.keep_alive != cases[i].keep)
            fail_msg("case %zu: keep_alive %d", i, r.keep_alive);
    }
}

static void test_connection_options_remove_the_fields_they_name(void **state)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: s\r\n"
                               "X-Public: p\r\nContent-Length: 0\r\n\r\n";
    struct parsed r = PARSE(resp, 11);

    (void)state;
    assert_int_equal(r.rv, 0);
    assert_string_equal(r.headers, "connection=X-Secret;x-public=p;content-length=0;");
}

static void test_eof_before_a_response_is_clean_and_mid_body_is_an_error(void **state)
{
    static const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    static const char cut_chunk[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab";
    static const char cut_head[] = "HTTP/1.1 200 OK\r\nContent-Le";
    static const char interim[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct parsed r;

    (void)state;
    r = parse_steps("", 0, 1, false, true);
    assert_int_equal(r.rv, 0);
    assert_false(r.ended);
    r = parse_steps(cut, sizeof(cut) - 1, 5, false, true);
    assert_int_equal(r.rv, -EPROTO);
    r = parse_steps(cut_chunk, sizeof(cut_chunk) - 1, 5, false, true);
    assert_int_equal(r.rv, -EPROTO);
    r = parse_steps(cut_head, sizeof(cut_head) - 1, 5, false, true);
    assert_int_equal(r.rv, -EPROTO);
    r = parse_steps(interim, sizeof(interim) - 1, 5, false, true);
    assert_int_equal(r.rv, -EPROTO);
}

static void test_parser_is_reusable_after_start(void **state)
{
    static const char a[] = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na";
    struct sp_h1_parser_limits lim = {.max_header_bytes = 4096, .max_headers = 16};
    struct sp_h1_parser *p;

    (void)state;
    assert_int_equal(sp_h1_parser_new(&lim, &p), 0);
    for (int round = 0; round < 3; round++) {
        size_t off = 0;
        bool ended = false;

        sp_h1_parser_start(p, false);
        for (int guard = 0; off < sizeof(a) - 1 && guard < 100; guard++) {
            struct sp_h1_event e;
            ssize_t n = sp_h1_parser_feed(p, (const uint8_t *)a + off, sizeof(a) - 1 - off, &e);

            assert_true(n >= 0);
            off += (size_t)n;
            ended = ended || e.type == SP_H1_EV_END;
        }
        assert_true(ended);
        assert_true(sp_h1_parser_keep_alive(p));
    }
    sp_h1_parser_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_line_and_host_come_from_pseudo_fields),
        cmocka_unit_test(test_host_field_is_replaced_by_authority),
        cmocka_unit_test(test_host_field_is_used_when_authority_is_absent),
        cmocka_unit_test(test_field_names_are_lowercased),
        cmocka_unit_test(test_cookies_are_joined_with_semicolon_space),
        cmocka_unit_test(test_connection_specific_fields_are_dropped),
        cmocka_unit_test(test_hostile_bytes_are_never_written),
        cmocka_unit_test(test_body_with_content_length_is_framed_by_length),
        cmocka_unit_test(test_body_of_unknown_length_is_chunked),
        cmocka_unit_test(test_open_head_without_a_body_byte_is_sent_without_framing),
        cmocka_unit_test(test_bodyless_request_has_no_framing_but_post_says_zero),
        cmocka_unit_test(test_content_length_mismatches_are_rejected),
        cmocka_unit_test(test_unsafe_request_lines_are_rejected),
        cmocka_unit_test(test_pseudo_field_rules),
        cmocka_unit_test(test_random_hostile_fields_never_produce_a_malformed_head),
        cmocka_unit_test(test_chunk_header_is_hex_length_and_crlf),
        cmocka_unit_test(test_last_chunk_carries_trailers_and_drops_forbidden_ones),
        cmocka_unit_test(test_content_length_response_is_parsed_at_any_split),
        cmocka_unit_test(test_chunked_response_with_trailers_is_parsed_at_any_split),
        cmocka_unit_test(test_chunk_encoder_output_parses_back),
        cmocka_unit_test(test_response_without_length_ends_at_close_and_is_not_reused),
        cmocka_unit_test(test_interim_responses_are_skipped),
        cmocka_unit_test(test_head_204_and_304_responses_have_no_body),
        cmocka_unit_test(test_malformed_responses_are_protocol_errors),
        cmocka_unit_test(test_nul_in_a_header_value_is_a_protocol_error),
        cmocka_unit_test(test_header_limits_are_enforced),
        cmocka_unit_test(test_keep_alive_decisions),
        cmocka_unit_test(test_connection_options_remove_the_fields_they_name),
        cmocka_unit_test(test_eof_before_a_response_is_clean_and_mid_body_is_an_error),
        cmocka_unit_test(test_parser_is_reusable_after_start),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
