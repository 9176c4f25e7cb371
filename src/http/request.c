/* request.c: request validation before routing; see request.h. */
#include "http/request.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "http/headers.h"
#include "http/syntax.h"

/* The request pseudo-fields (RFC 9114 §4.3.1), each borrowed from the section, NULL if absent. */
struct pseudo {
    const struct sp_field *method, *scheme, *path, *authority;
};

static bool name_is(const struct sp_field *f, const char *name)
{
    size_t n = strlen(name);

    return f->name_len == n && memcmp(f->name, name, n) == 0;
}

/* Case-insensitive comparison of a value with a lowercase literal. */
static bool value_ieq(const struct sp_field *f, const char *lit)
{
    size_t n = strlen(lit);

    return f->value_len == n && strncasecmp((const char *)f->value, lit, n) == 0;
}

static bool value_eq(const struct sp_field *f, const char *lit)
{
    size_t n = strlen(lit);

    return f->value_len == n && memcmp(f->value, lit, n) == 0;
}

/* The slot of a request pseudo-field, or NULL for one a request may not carry. */
static const struct sp_field **pseudo_slot(struct pseudo *ps, const struct sp_field *f)
{
    if (name_is(f, ":method"))
        return &ps->method;
    if (name_is(f, ":scheme"))
        return &ps->scheme;
    if (name_is(f, ":path"))
        return &ps->path;
    if (name_is(f, ":authority"))
        return &ps->authority;
    return NULL; /* :protocol (extended CONNECT, not enabled), :status, anything else */
}

/* RFC 9114 §4.3: pseudo-fields come first, each at most once, and only the defined ones. */
static const char *collect_pseudo(const struct sp_fields *h, struct pseudo *ps)
{
    bool regular_seen = false;

    for (size_t i = 0; i < h->count; i++) {
        const struct sp_field *f = &h->items[i];
        const struct sp_field **slot;

        if (f->name_len == 0 || f->name[0] != ':') {
            regular_seen = true;
            continue;
        }
        slot = pseudo_slot(ps, f);
        if (regular_seen || slot == NULL || *slot != NULL)
            return "pseudo_field";
        *slot = f;
    }
    return NULL;
}

static const char *check_pseudo(const struct pseudo *ps)
{
    if (ps->method == NULL)
        return "pseudo_field";
    /* RFC 9110 §9.1: a method is a token. CONNECT (RFC 9114 §4.4) asks for a tunnel, which
     * spooky does not offer; the proxy answers it before validating. */
    if (!sp_syntax_is_token(ps->method->value, ps->method->value_len) ||
        value_eq(ps->method, "CONNECT"))
        return "method";
    if (ps->scheme == NULL || ps->path == NULL)
        return "pseudo_field";
    /* spooky proxies http(s) only; any other scheme has no request-target rules to check. */
    if (!value_ieq(ps->scheme, "https") && !value_ieq(ps->scheme, "http"))
        return "scheme";
    if (!sp_syntax_is_request_target(ps->path->value, ps->path->value_len,
                                     value_eq(ps->method, "OPTIONS")))
        return "path";
    if (ps->authority != NULL &&
        !sp_syntax_is_authority(ps->authority->value, ps->authority->value_len))
        return "authority";
    return NULL;
}

/* RFC 9110 §5.1 and RFC 9114 §4.2: a field name is a token, lowercase in HTTP/3. */
static bool is_field_name(const struct sp_field *f)
{
    for (size_t i = 0; i < f->name_len; i++) {
        if (f->name[i] >= 'A' && f->name[i] <= 'Z')
            return false;
    }
    return sp_syntax_is_token(f->name, f->name_len);
}

/* RFC 9114 §4.3.1: a host field must be a valid authority and, beside :authority, carry the
 * same value; a second host field could disagree with the first. */
static const char *check_host(const struct sp_field *host, const struct sp_field *earlier,
                              const struct pseudo *ps)
{
    const struct sp_field *a = ps->authority;

    if (earlier != NULL || !sp_syntax_is_authority(host->value, host->value_len))
        return "host";
    if (a != NULL &&
        (a->value_len != host->value_len || memcmp(a->value, host->value, a->value_len) != 0))
        return "host";
    return NULL;
}

/* RFC 9110 §8.6: every content-length field carries the same number. */
static const char *check_length(const struct sp_field *f, bool *seen, uint64_t *length)
{
    uint64_t v;

    if (sp_syntax_parse_length(f->value, f->value_len, &v) != 0 || (*seen && v != *length))
        return "content_length";
    *seen = true;
    *length = v;
    return NULL;
}

static const char *check_fields(const struct sp_fields *h, const struct pseudo *ps)
{
    const struct sp_field *host = NULL;
    bool length_seen = false;
    uint64_t length = 0;

    for (size_t i = 0; i < h->count; i++) {
        const struct sp_field *f = &h->items[i];
        const char *reason = NULL;

        if (f->name_len > 0 && f->name[0] == ':')
            continue;
        if (!is_field_name(f))
            return "field_name";
        if (!sp_syntax_is_field_value(f->value, f->value_len))
            return "field_value";
        if (name_is(f, "host")) {
            reason = check_host(f, host, ps);
            host = f;
        } else if (name_is(f, "te")) {
            /* RFC 9114 §4.2: te may only say "trailers". */
            reason = value_ieq(f, "trailers") ? NULL : "connection_field";
        } else if (sp_headers_is_hop_by_hop(f->name, f->name_len)) {
            reason = "connection_field"; /* RFC 9114 §4.2: malformed in HTTP/3 */
        } else if (name_is(f, "content-length")) {
            reason = check_length(f, &length_seen, &length);
        }
        if (reason != NULL)
            return reason;
    }
    /* RFC 9114 §4.3.1: http(s) requests carry :authority or host. */
    if (ps->authority == NULL && host == NULL)
        return "authority";
    return NULL;
}

int sp_request_validate(const struct sp_fields *headers, const char **ret_reason)
{
    struct pseudo ps = {0};
    const char *reason = collect_pseudo(headers, &ps);

    if (reason == NULL)
        reason = check_pseudo(&ps);
    if (reason == NULL)
        reason = check_fields(headers, &ps);
    if (reason == NULL)
        return 0;
    if (ret_reason != NULL)
        *ret_reason = reason;
    return -EINVAL;
}
