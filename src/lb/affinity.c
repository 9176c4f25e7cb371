/* affinity.c: affinity key extraction. Every parser here reads client bytes: each one is bounded
 * by the lengths it is given and never writes past cap. */
#include "lb/affinity.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#define FAMILY_V4 4
#define FAMILY_V6 6

static uint8_t ascii_lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
}

static bool equal_nocase(const uint8_t *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        if (ascii_lower(a[i]) != ascii_lower((uint8_t)b[i]))
            return false;
    }
    return true;
}

/* Appends src[0..n) at *len; false when it does not fit. */
static bool append(uint8_t *buf, size_t cap, size_t *len, const void *src, size_t n)
{
    if (n > cap - *len)
        return false;
    if (n > 0)
        memcpy(buf + *len, src, n);
    *len += n;
    return true;
}

/* Writes the family, the prefix length and the address with every bit past the prefix cleared. */
static int masked_address(uint8_t family, const uint8_t *addr, size_t addr_len, unsigned bits,
                          uint8_t *buf, size_t cap, size_t *ret_len)
{
    if (cap < 2 + addr_len)
        return -ENOSPC;
    buf[0] = family;
    buf[1] = (uint8_t)bits;
    for (size_t i = 0; i < addr_len; i++) {
        unsigned keep = bits > 8 * i ? bits - 8 * (unsigned)i : 0;

        buf[2 + i] = keep >= 8 ? addr[i] : (uint8_t)(addr[i] & (0xff00u >> keep));
    }
    *ret_len = 2 + addr_len;
    return 0;
}

static int source_ip_key(const struct sp_lb_key_spec *spec, const struct sockaddr *sa, uint8_t *buf,
                         size_t cap, size_t *ret_len)
{
    static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    unsigned v4_bits = spec->ipv4_prefix_len ? spec->ipv4_prefix_len : 32;
    unsigned v6_bits = spec->ipv6_prefix_len ? spec->ipv6_prefix_len : 128;
    const uint8_t *a;

    if (v4_bits > 32 || v6_bits > 128)
        return -EINVAL;
    if (sa == NULL)
        return -ENOENT;
    if (sa->sa_family == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
        return masked_address(FAMILY_V4, a, 4, v4_bits, buf, cap, ret_len);
    }
    if (sa->sa_family != AF_INET6)
        return -ENOENT;
    a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
    if (memcmp(a, v4_mapped, sizeof(v4_mapped)) == 0)
        return masked_address(FAMILY_V4, a + 12, 4, v4_bits, buf, cap, ret_len);
    return masked_address(FAMILY_V6, a, 16, v6_bits, buf, cap, ret_len);
}

static int header_key(const struct sp_lb_request *req, const char *name, uint8_t *buf, size_t cap,
                      size_t *ret_len)
{
    size_t name_len = strlen(name), len = 0;
    bool found = false;

    for (size_t i = 0; i < req->fields_count; i++) {
        const struct sp_lb_field *f = &req->fields[i];

        if (!equal_nocase(f->name, f->name_len, name, name_len))
            continue;
        /* RFC 9110 §5.3: repeated field lines mean their values joined by commas */
        if ((found && !append(buf, cap, &len, ", ", 2)) ||
            !append(buf, cap, &len, f->value, f->value_len))
            return -ENOSPC;
        found = true;
    }
    if (!found)
        return -ENOENT;
    *ret_len = len;
    return 0;
}

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* Trims optional whitespace around p[0..*len); returns the new start. */
static const uint8_t *trim(const uint8_t *p, size_t *len)
{
    while (*len > 0 && is_ows(p[0])) {
        p++;
        (*len)--;
    }
    while (*len > 0 && is_ows(p[*len - 1]))
        (*len)--;
    return p;
}

/* Looks for cookie `name` in one cookie field value v[0..len). */
static bool cookie_in_field(const uint8_t *v, size_t len, const uint8_t *name, size_t name_len,
                            const uint8_t **ret_value, size_t *ret_len)
{
    while (len > 0) {
        const uint8_t *semi = memchr(v, ';', len);
        size_t pair_len = semi != NULL ? (size_t)(semi - v) : len;
        const uint8_t *pair = trim(v, &pair_len);
        const uint8_t *eq = memchr(pair, '=', pair_len);

        if (eq != NULL) {
            size_t n = (size_t)(eq - pair), vlen = pair_len - n - 1;

            while (n > 0 && is_ows(pair[n - 1]))
                n--; /* "name =value" */
            if (n == name_len && memcmp(pair, name, n) == 0) {
                *ret_value = trim(eq + 1, &vlen);
                *ret_len = vlen;
                return true;
            }
        }
        if (semi == NULL)
            break;
        len -= (size_t)(semi - v) + 1;
        v = semi + 1;
    }
    return false;
}

int sp_lb_cookie_find(const struct sp_lb_request *req, const uint8_t *name, size_t name_len,
                      const uint8_t **ret_value, size_t *ret_len)
{
    for (size_t i = 0; i < req->fields_count; i++) {
        const struct sp_lb_field *f = &req->fields[i];

        if (equal_nocase(f->name, f->name_len, "cookie", 6) &&
            cookie_in_field(f->value, f->value_len, name, name_len, ret_value, ret_len))
            return 0;
    }
    return -ENOENT;
}

/* The path without query or fragment. */
static int path_key(const struct sp_lb_request *req, uint8_t *buf, size_t cap, size_t *ret_len)
{
    size_t n = 0;

    if (req->path == NULL)
        return -ENOENT;
    while (n < req->path_len && req->path[n] != '?' && req->path[n] != '#')
        n++;
    if (n > cap)
        return -ENOSPC;
    memcpy(buf, req->path, n);
    *ret_len = n;
    return 0;
}

/* The host of :authority: no userinfo (RFC 9110 §4.2.4 forbids it, strip anyway), no port, no
 * IPv6 brackets, no trailing dot, lowercase. */
static int authority_key(const struct sp_lb_request *req, uint8_t *buf, size_t cap, size_t *ret_len)
{
    const uint8_t *h = req->authority, *at, *end;
    size_t n = req->authority_len;

    if (h == NULL)
        return -ENOENT;
    at = memchr(h, '@', n);
    if (at != NULL) {
        n -= (size_t)(at - h) + 1;
        h = at + 1;
    }
    if (n > 0 && h[0] == '[') {
        end = memchr(h, ']', n);
        n = end != NULL ? (size_t)(end - h) - 1 : n - 1;
        h++;
    } else {
        end = memchr(h, ':', n);
        n = end != NULL ? (size_t)(end - h) : n;
        if (n > 1 && h[n - 1] == '.')
            n--;
    }
    if (n == 0)
        return -ENOENT;
    if (n > cap)
        return -ENOSPC;
    for (size_t i = 0; i < n; i++)
        buf[i] = ascii_lower(h[i]);
    *ret_len = n;
    return 0;
}

/* The raw value of the first query parameter `name` ("name=value" or a bare "name": empty). */
static int query_key(const struct sp_lb_request *req, const char *name, uint8_t *buf, size_t cap,
                     size_t *ret_len)
{
    const uint8_t *q = req->path != NULL ? memchr(req->path, '?', req->path_len) : NULL;
    size_t name_len = strlen(name), len;

    if (q == NULL)
        return -ENOENT;
    q++;
    len = req->path_len - (size_t)(q - req->path);
    for (size_t i = 0; i < len; i++) {
        if (q[i] == '#')
            len = i; /* RFC 3986 §3.5: the fragment is not part of the query */
    }
    while (len > 0) {
        const uint8_t *amp = memchr(q, '&', len);
        size_t pair_len = amp != NULL ? (size_t)(amp - q) : len;
        const uint8_t *eq = memchr(q, '=', pair_len);
        size_t n = eq != NULL ? (size_t)(eq - q) : pair_len;

        if (n == name_len && memcmp(q, name, n) == 0) {
            size_t vlen = eq != NULL ? pair_len - n - 1 : 0;

            if (vlen > cap)
                return -ENOSPC;
            if (vlen > 0)
                memcpy(buf, eq + 1, vlen);
            *ret_len = vlen;
            return 0;
        }
        if (amp == NULL)
            break;
        len -= pair_len + 1;
        q = amp + 1;
    }
    return -ENOENT;
}

int sp_lb_affinity_key(const struct sp_lb_key_spec *spec, const struct sp_lb_request *req,
                       uint8_t *buf, size_t cap, size_t *ret_len)
{
    const uint8_t *v;
    size_t n;
    int rv;

    switch (spec->kind) {
    case SP_LB_KEY_SOURCE_IP:
        return source_ip_key(spec, req->client, buf, cap, ret_len);
    case SP_LB_KEY_HEADER:
        return spec->name == NULL ? -EINVAL : header_key(req, spec->name, buf, cap, ret_len);
    case SP_LB_KEY_COOKIE:
        if (spec->name == NULL)
            return -EINVAL;
        rv = sp_lb_cookie_find(req, (const uint8_t *)spec->name, strlen(spec->name), &v, &n);
        if (rv < 0)
            return rv;
        if (n > cap)
            return -ENOSPC;
        if (n > 0)
            memcpy(buf, v, n);
        *ret_len = n;
        return 0;
    case SP_LB_KEY_PATH:
        return path_key(req, buf, cap, ret_len);
    case SP_LB_KEY_AUTHORITY:
        return authority_key(req, buf, cap, ret_len);
    case SP_LB_KEY_QUERY:
        return spec->name == NULL ? -EINVAL : query_key(req, spec->name, buf, cap, ret_len);
    }
    return -EINVAL; /* a value outside the enum */
}
