/* libFuzzer target: the header rules applied to client-controlled field names and values
 * (hop-by-hop detection, X-Forwarded-For and Via appends, request-id validation). Checks that
 * what spooky would forward never contains CR, LF or NUL. */
#include <stdlib.h>
#include <string.h>

#include "http/headers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_clean(const char *s)
{
    if (strpbrk(s, "\r\n") != NULL)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *xff, *via;

    (void)sp_headers_is_hop_by_hop(data, size);
    if (sp_headers_request_id_valid(data, size)) {
        for (size_t i = 0; i < size; i++)
            if (data[i] < 0x21 || data[i] > 0x7e)
                __builtin_trap();
    }
    xff = sp_headers_xff_append(data, size, "192.0.2.1");
    via = sp_headers_via_append(data, size);
    /* Appends keep the client's bytes; spooky only forwards values nghttp3 accepted, which never
     * hold CR/LF/NUL. What the helpers add must not introduce any. */
    if (memchr(data, '\r', size) == NULL && memchr(data, '\n', size) == NULL &&
        memchr(data, '\0', size) == NULL) {
        check_clean(xff);
        check_clean(via);
    }
    free(xff);
    free(via);
    return 0;
}
