/* syntax.c: HTTP byte-level grammar; see syntax.h. */
#include "http/syntax.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(uint8_t c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hexdig(uint8_t c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* True when c is one of the NUL-terminated set (never NUL itself). */
static bool is_one_of(uint8_t c, const char *set)
{
    return c != 0 && strchr(set, c) != NULL;
}

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t'; /* RFC 9110 §5.6.3 */
}

bool sp_syntax_is_token(const uint8_t *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        /* RFC 9110 §5.6.2 tchar */
        if (!is_alnum(s[i]) && !is_one_of(s[i], "!#$%&'*+-.^_`|~"))
            return false;
    }
    return true;
}

bool sp_syntax_is_field_value(const uint8_t *s, size_t len)
{
    if (len > 0 && (is_ows(s[0]) || is_ows(s[len - 1])))
        return false;
    for (size_t i = 0; i < len; i++) {
        if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
            return false;
    }
    return true;
}

bool sp_syntax_is_request_target(const uint8_t *s, size_t len, bool asterisk_ok)
{
    if (len == 0 || (s[0] != '/' && !(asterisk_ok && len == 1 && s[0] == '*')))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '#')
            return false;
    }
    return true;
}

/* RFC 3986 §3.2.2 IPv4address: four dec-octets (0-255, no leading zero) joined by dots. */
static bool is_ipv4(const uint8_t *s, size_t len)
{
    size_t i = 0;

    for (int part = 0; part < 4; part++) {
        size_t start;
        unsigned v = 0;

        if (part > 0) {
            if (i == len || s[i] != '.')
                return false;
            i++;
        }
        start = i;
        while (i < len && is_digit(s[i]) && i - start < 3)
            v = v * 10 + (unsigned)(s[i++] - '0');
        if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
            return false;
    }
    return i == len;
}

/* RFC 3986 §3.2.2 IPv6address (what goes between the brackets). inet_pton's grammar is the
 * RFC 4291 §2.2 text form RFC 3986 spells out; a zone ("%25eth0", RFC 6874) is refused. Only
 * the bytes that grammar uses are let through to it. */
static bool is_ipv6(const uint8_t *s, size_t len)
{
    char text[INET6_ADDRSTRLEN];
    struct in6_addr addr;

    if (len == 0 || len >= sizeof(text))
        return false;
    for (size_t i = 0; i < len; i++) {
        /* inet_pton reads a C string: a NUL would end it early ("::1\0junk") */
        if (!is_hexdig(s[i]) && s[i] != ':' && s[i] != '.')
            return false;
    }
    memcpy(text, s, len);
    text[len] = '\0';
    return inet_pton(AF_INET6, text, &addr) == 1;
}

/* RFC 3986 §3.2.2 reg-name, not empty (RFC 9110 §4.2.1), without empty labels: "a..b" and
 * ".a" name no host (RFC 1034 §3.1) and HTTP servers such as nginx refuse them. Digits and dots
 * only must form an IPv4address: "1.2.3.400" or "10.1" would be read differently by different
 * resolvers. */
static bool is_reg_name(const uint8_t *s, size_t len)
{
    bool numeric = true;
    size_t label = 0; /* bytes in the current label so far */

    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];

        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (c == '%') {
            /* pct-encoded = "%" HEXDIG HEXDIG */
            if (len - i < 3 || !is_hexdig(s[i + 1]) || !is_hexdig(s[i + 2]))
                return false;
            i += 2;
        } else if (!is_alnum(c) && !is_one_of(c, "-_~!$&'()*+,;=")) {
            return false; /* unreserved and sub-delims only: no "@", ":", "/", "[" ... */
        }
        numeric = numeric && is_digit(c);
        label++;
    }
    return !numeric || is_ipv4(s, len);
}

/* RFC 3986 §3.2.3 port, restricted to what a TCP or UDP port can be: 1 to 65535. */
static bool is_port(const uint8_t *s, size_t len)
{
    uint32_t v = 0;

    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
        if (v > 65535)
            return false;
    }
    return v > 0;
}

bool sp_syntax_is_authority(const uint8_t *s, size_t len)
{
    size_t host_len;

    if (len > 0 && s[0] == '[') {
        /* IP-literal; IPvFuture ("[v1.x]") is valid RFC 3986 but no backend can use it. */
        const uint8_t *end = memchr(s, ']', len);

        if (end == NULL || !is_ipv6(s + 1, (size_t)(end - s) - 1))
            return false;
        host_len = (size_t)(end - s) + 1;
    } else {
        const uint8_t *colon = memchr(s, ':', len);

        host_len = colon != NULL ? (size_t)(colon - s) : len;
        if (!is_reg_name(s, host_len))
            return false;
    }
    if (host_len == len)
        return true;
    return s[host_len] == ':' && is_port(s + host_len + 1, len - host_len - 1);
}

int sp_syntax_parse_length(const uint8_t *s, size_t len, uint64_t *ret_length)
{
    uint64_t v = 0;

    if (len == 0 || len > SP_SYNTAX_LENGTH_MAX_DIGITS)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return -EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *ret_length = v;
    return 0;
}
