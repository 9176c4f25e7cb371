#include "http/fields.h"

#include <stdlib.h>
#include <string.h>

const struct sp_field *sp_fields_find(const struct sp_fields *f, const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < f->count; i++) {
        if (f->items[i].name_len == len && memcmp(f->items[i].name, name, len) == 0)
            return &f->items[i];
    }
    return NULL;
}

struct sp_field sp_field_str(const char *name, const char *value)
{
    struct sp_field f = {(const uint8_t *)name, strlen(name), (const uint8_t *)value,
                         strlen(value)};
    return f;
}

void sp_fields_fini(struct sp_fields *f)
{
    free(f->items);
    memset(f, 0, sizeof(*f));
}
