/* libFuzzer target: the request validator (src/http/request.c) and the grammar under it
 * (src/http/syntax.c) on client-controlled bytes.
 *
 * Input: one field a line, "name:value", split at the first ':' after the name's first byte (so
 * ":authority:a.example:443" is the field :authority = "a.example:443"); a line without such a
 * ':' is a name with an empty value. Checks that a request the validator passes is one the
 * HTTP/1.1 writer (the strictest upstream writer) accepts, and carries no CR, LF or NUL in any
 * name or value; and that an accepted authority never holds userinfo or a control byte. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "http/request.h"
#include "http/syntax.h"
#include "upstream/h1_codec.h"

#define MAX_FIELDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool has_unsafe_byte(const uint8_t *s, size_t len)
{
    return memchr(s, '\r', len) != NULL || memchr(s, '\n', len) != NULL ||
           memchr(s, '\0', len) != NULL;
}

static size_t split_fields(const uint8_t *data, size_t size, struct sp_field *out)
{
    size_t n = 0, at = 0;

    while (at < size && n < MAX_FIELDS) {
        const uint8_t *line = data + at, *nl = memchr(line, '\n', size - at);
        size_t len = nl != NULL ? (size_t)(nl - line) : size - at;
        const uint8_t *colon = len > 1 ? memchr(line + 1, ':', len - 1) : NULL;
        size_t name_len = colon != NULL ? (size_t)(colon - line) : len;

        out[n].name = line;
        out[n].name_len = name_len;
        out[n].value = colon != NULL ? colon + 1 : line + len;
        out[n].value_len = colon != NULL ? len - name_len - 1 : 0;
        n++;
        at += len + 1;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sp_field items[MAX_FIELDS];
    struct sp_fields f = {.items = items};
    struct sp_h1_request_info info;
    struct sp_h1_buf out = {0};
    const char *reason = NULL;

    /* The whole input as one authority. */
    if (sp_syntax_is_authority(data, size) &&
        (memchr(data, '@', size) != NULL || has_unsafe_byte(data, size) ||
         memchr(data, ' ', size) != NULL))
        __builtin_trap();

    f.count = split_fields(data, size, items);
    f.cap = f.count;
    if (sp_request_validate(&f, &reason) != 0) {
        if (reason == NULL)
            __builtin_trap();
        return 0;
    }
    for (size_t i = 0; i < f.count; i++) {
        if (has_unsafe_byte(items[i].name, items[i].name_len) ||
            has_unsafe_byte(items[i].value, items[i].value_len))
            __builtin_trap();
    }
    /* With a body the writer never refuses over content-length (it frames by it). */
    if (sp_h1_request_head(items, f.count, true, &out, &info) != 0)
        __builtin_trap();
    sp_h1_buf_fini(&out);
    return 0;
}
