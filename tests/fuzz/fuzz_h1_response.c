/* libFuzzer target: the HTTP/1.1 response parser (upstream/h1_codec) on arbitrary bytes, fed in
 * pieces whose size the first input byte chooses (it also says whether the request was HEAD),
 * then end of stream. Checks what the parser hands up: body bytes lie inside the input, fields
 * carry no CR, LF or NUL and have lowercase token names, events come in order, and nothing
 * follows the end. The same bytes are then offered to the request writer as a field value,
 * which must refuse them or write them without a line break. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/h1_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fields(const struct sp_fields *f)
{
    for (size_t i = 0; i < f->count; i++) {
        const struct sp_field *x = &f->items[i];

        if (x->name_len == 0)
            __builtin_trap();
        for (size_t k = 0; k < x->name_len; k++)
            if (x->name[k] <= 0x20 || x->name[k] >= 0x7f ||
                (x->name[k] >= 'A' && x->name[k] <= 'Z'))
                __builtin_trap();
        for (size_t k = 0; k < x->value_len; k++)
            if (x->value[k] == '\r' || x->value[k] == '\n' || x->value[k] == '\0')
                __builtin_trap();
    }
}

/* Feeds [data, data+len) in pieces of step bytes. Returns false on a protocol error. */
static bool feed_all(struct sp_h1_parser *p, const uint8_t *data, size_t len, size_t step,
                     bool *headers, bool *ended)
{
    size_t off = 0;

    for (size_t guard = 0; off < len && guard < 4 * len + 8; guard++) {
        size_t piece = step < len - off ? step : len - off;
        struct sp_h1_event e;
        ssize_t n = sp_h1_parser_feed(p, data + off, piece, &e);

        if (n < 0)
            return false;
        if ((size_t)n > piece)
            __builtin_trap();
        off += (size_t)n;
        if (e.type == SP_H1_EV_HEADERS) {
            if (*headers)
                __builtin_trap();
            *headers = true;
            check_fields(sp_h1_parser_headers(p));
        } else if (e.type == SP_H1_EV_DATA) {
            if (!*headers || *ended || e.data < data || e.data + e.len > data + len)
                __builtin_trap();
        } else if (e.type == SP_H1_EV_END) {
            if (!*headers || *ended)
                __builtin_trap();
            *ended = true;
            check_fields(sp_h1_parser_trailers(p));
        }
    }
    if (off < len && !*ended)
        __builtin_trap(); /* stalled without an error */
    return true;
}

static void check_writer(const uint8_t *data, size_t size)
{
    struct sp_field f[] = {
        sp_field_str(":method", "GET"),
        sp_field_str(":authority", "a"),
        sp_field_str(":path", "/"),
        {.name = (const uint8_t *)"x", .name_len = 1, .value = data, .value_len = size}};
    struct sp_h1_request_info info;
    struct sp_h1_buf b = {0};

    if (sp_h1_request_head(f, 4, false, &b, &info) == 0) {
        /* Exactly four line ends: request line, host, x, and the empty line. */
        size_t lf = 0;

        for (size_t i = 0; i < b.len; i++)
            lf += b.data[i] == '\n';
        if (lf != 4 || memchr(b.data, '\0', b.len) != NULL)
            __builtin_trap();
    }
    sp_h1_buf_fini(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sp_h1_parser_limits lim = {.max_header_bytes = 16384, .max_headers = 64};
    struct sp_h1_parser *p;
    bool headers = false, ended = false;
    size_t step;

    if (size < 1)
        return 0;
    step = (size_t)(data[0] & 0x7f) + 1;
    if (sp_h1_parser_new(&lim, &p) != 0)
        return 0;
    sp_h1_parser_start(p, (data[0] & 0x80) != 0);
    if (feed_all(p, data + 1, size - 1, step, &headers, &ended) && !ended) {
        struct sp_h1_event e;

        if (sp_h1_parser_eof(p, &e) == 0 && e.type == SP_H1_EV_END) {
            if (!headers || sp_h1_parser_keep_alive(p))
                __builtin_trap(); /* a body ended by close never allows reuse */
        }
    }
    sp_h1_parser_free(p);
    check_writer(data, size);
    return 0;
}
