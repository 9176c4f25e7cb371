/* headers.c: field rules for proxying; see headers.h. */
#include "http/headers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "core/util.h"

/* RFC 9110 §7.6.1 and RFC 9114 §4.2: connection-specific fields, plus host (see headers.h). */
static const char *const hop_by_hop[] = {
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "host",
};

bool sp_headers_is_hop_by_hop(const uint8_t *name, size_t len)
{
    for (size_t i = 0; i < SP_ARRAY_LEN(hop_by_hop); i++) {
        if (strlen(hop_by_hop[i]) == len && memcmp(hop_by_hop[i], name, len) == 0)
            return true;
    }
    return false;
}

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t'; /* RFC 9110 §5.6.3 */
}

/* Returns existing (len bytes) joined with item by ", ", or a copy of item when existing is
 * NULL or only whitespace. Newly allocated. */
static char *list_append(const uint8_t *existing, size_t len, const char *item)
{
    size_t item_len = strlen(item);
    char *out;

    if (existing == NULL)
        len = 0;
    while (len > 0 && is_ows(existing[0])) {
        existing++;
        len--;
    }
    while (len > 0 && is_ows(existing[len - 1]))
        len--;
    if (len == 0)
        return sp_xstrndup(item, item_len);
    out = sp_xmalloc(len + 2 + item_len + 1);
    memcpy(out, existing, len);
    memcpy(out + len, ", ", 2);
    memcpy(out + len + 2, item, item_len + 1);
    return out;
}

char *sp_headers_xff_append(const uint8_t *existing, size_t existing_len, const char *client_ip)
{
    return list_append(existing, existing_len, client_ip);
}

char *sp_headers_via_append(const uint8_t *existing, size_t existing_len)
{
    return list_append(existing, existing_len, SP_HEADERS_VIA_ENTRY);
}

bool sp_headers_request_id_valid(const uint8_t *v, size_t len)
{
    if (len == 0 || len > SP_HEADERS_REQUEST_ID_MAX_BYTES)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < 0x21 || v[i] > 0x7e)
            return false;
    }
    return true;
}

void sp_headers_request_id_new(char out[SP_HEADERS_REQUEST_ID_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[(SP_HEADERS_REQUEST_ID_SIZE - 1) / 2];
    uint64_t a = sp_random_u64(), b = sp_random_u64();

    /* Request ids need uniqueness, not secrecy: the per-thread generator (seeded from the
     * system RNG) costs a few instructions where gnutls_rnd costs about a thousand. */
    memcpy(raw, &a, sizeof(a));
    memcpy(raw + sizeof(a), &b, sizeof(raw) - sizeof(a));
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 0x0f];
    }
    out[2 * sizeof(raw)] = '\0';
}

char *sp_headers_format_ip(const struct sockaddr *sa, char *out, size_t cap)
{
    const char *rv = NULL;

    if (cap == 0)
        return out;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

        rv = inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)SP_MIN(cap, (size_t)INT32_MAX));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        socklen_t n = (socklen_t)SP_MIN(cap, (size_t)INT32_MAX);

        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
            rv = inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], out, n);
        else
            rv = inet_ntop(AF_INET6, &sin6->sin6_addr, out, n);
    } else if (cap > strlen("unknown")) {
        memcpy(out, "unknown", sizeof("unknown"));
        return out;
    }
    if (rv == NULL)
        out[0] = '\0'; /* inet_ntop fails only with ENOSPC here */
    return out;
}
