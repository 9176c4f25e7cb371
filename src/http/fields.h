/* fields.h: HTTP field lines as spooky passes them between protocols (RFC 9110 §5). Names are
 * lowercase for HTTP/2 and HTTP/3; values are raw bytes. Nothing here owns the bytes. */
#ifndef SP_HTTP_FIELDS_H
#define SP_HTTP_FIELDS_H

#include <stddef.h>
#include <stdint.h>

/* One field line. Borrowed bytes, not NUL-terminated. */
struct sp_field {
    const uint8_t *name;
    size_t name_len;
    const uint8_t *value;
    size_t value_len;
};

/* A received field section (headers or trailers), in wire order, pseudo-fields included. */
struct sp_fields {
    struct sp_field *items; /* owned array; the bytes belong to whoever received them */
    size_t count;
    size_t cap;
    uint64_t bytes; /* RFC 9114 §4.2.2 size: sum of name + value + 32 per field */
};

/* Finds a field by lowercase name; returns the first match or NULL. */
const struct sp_field *sp_fields_find(const struct sp_fields *f, const char *name);

/* Frees the items array and empties f (the bytes are not f's). A zeroed f is fine. */
void sp_fields_fini(struct sp_fields *f);

/* Makes a field from two NUL-terminated strings (borrowed). */
struct sp_field sp_field_str(const char *name, const char *value);

#endif
