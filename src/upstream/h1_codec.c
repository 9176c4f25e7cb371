/* h1_codec.c: HTTP/1.1 request writer, chunk encoder and response parser (see h1_codec.h). */
#include "upstream/h1_codec.h"
#include "core/util.h"
#include "http/syntax.h"

#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 9114 §4.2.2: each field counts 32 bytes on top of its name and value. */
#define FIELD_OVERHEAD 32
/* Interim (1xx) responses accepted before the final one: bounds work per request. */
#define MAX_INTERIM 8

/* ---- names ------------------------------------------------------------------------------ */

/* Byte classes (tokens, field values, request targets, authorities, lengths) are syntax.h's,
 * shared with the request validator that runs before a backend is chosen: a refusal here is
 * defence in depth. */

static bool name_eq(const uint8_t *name, size_t len, const char *lit)
{
    size_t n = strlen(lit);

    if (len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = name[i];

        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        if (c != (uint8_t)lit[i])
            return false;
    }
    return true;
}

static bool field_is(const struct sp_field *f, const char *lit)
{
    return name_eq(f->name, f->name_len, lit);
}

/* ---- buffer ----------------------------------------------------------------------------- */

void sp_h1_buf_fini(struct sp_h1_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static void buf_put(struct sp_h1_buf *b, const void *data, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;

        while (cap - b->len < n)
            cap *= 2;
        b->data = sp_xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->data + b->len, data, n);
    b->len += n;
}

void sp_h1_buf_append(struct sp_h1_buf *b, const void *data, size_t n)
{
    buf_put(b, data, n);
}

static void buf_str(struct sp_h1_buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* Appends "name: value\r\n" with the name lowercased. */
static void buf_field(struct sp_h1_buf *b, const uint8_t *name, size_t nlen, const uint8_t *value,
                      size_t vlen)
{
    size_t at = b->len;

    buf_put(b, name, nlen);
    for (size_t i = at; i < b->len; i++)
        if (b->data[i] >= 'A' && b->data[i] <= 'Z')
            b->data[i] = (uint8_t)(b->data[i] - 'A' + 'a');
    buf_put(b, ": ", 2);
    buf_put(b, value, vlen);
    buf_put(b, "\r\n", 2);
}

/* ---- request head ----------------------------------------------------------------------- */

struct req_pseudo {
    const struct sp_field *method, *path, *authority;
};

/* Fields a proxy never forwards to an HTTP/1.1 next hop (RFC 9110 §7.6.1, RFC 9114 §4.2), plus
 * those this writer sets itself (host, content-length). */
static bool is_dropped_request_field(const struct sp_field *f)
{
    static const char *const names[] = {
        "connection",     "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te",
        "http2-settings", "host",       "content-length",
    };

    for (size_t i = 0; i < SP_ARRAY_LEN(names); i++)
        if (field_is(f, names[i]))
            return true;
    return false;
}

static int collect_pseudo(const struct sp_field *fields, size_t n, struct req_pseudo *ps)
{
    memset(ps, 0, sizeof(*ps));
    for (size_t i = 0; i < n; i++) {
        const struct sp_field *f = &fields[i];
        const struct sp_field **slot;

        if (f->name_len == 0 || f->name[0] != ':')
            continue;
        if (field_is(f, ":method"))
            slot = &ps->method;
        else if (field_is(f, ":path"))
            slot = &ps->path;
        else if (field_is(f, ":authority"))
            slot = &ps->authority;
        else if (field_is(f, ":scheme"))
            continue; /* implied by the connection */
        else
            return -EINVAL; /* :protocol (extended CONNECT) or unknown */
        if (*slot != NULL)
            return -EINVAL;
        *slot = f;
    }
    if (ps->method == NULL || ps->path == NULL)
        return -EINVAL;
    return 0;
}

/* The authority for Host: :authority, else a host field (RFC 9114 §4.3.1). */
static const struct sp_field *find_authority(const struct sp_field *fields, size_t n,
                                             const struct req_pseudo *ps)
{
    if (ps->authority != NULL)
        return ps->authority;
    for (size_t i = 0; i < n; i++)
        if (field_is(&fields[i], "host"))
            return &fields[i];
    return NULL;
}

/* Every content-length field must carry the same valid number. */
static int request_length(const struct sp_field *fields, size_t n, bool *ret_has, uint64_t *ret)
{
    bool has = false;
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t x;

        if (!field_is(&fields[i], "content-length"))
            continue;
        if (sp_syntax_parse_length(fields[i].value, fields[i].value_len, &x) != 0 ||
            (has && x != v))
            return -EINVAL;
        has = true;
        v = x;
    }
    *ret_has = has;
    *ret = v;
    return 0;
}

static int choose_framing(const struct sp_field *fields, size_t n, bool has_body,
                          struct sp_h1_request_info *info)
{
    bool has_len;
    uint64_t len;

    if (request_length(fields, n, &has_len, &len) != 0)
        return -EINVAL;
    info->content_length = 0;
    if (!has_body) {
        if (has_len && len != 0)
            return -EINVAL; /* declared bytes that will never come */
        info->framing = SP_H1_FRAMING_NONE;
    } else if (has_len) {
        info->framing = SP_H1_FRAMING_LENGTH;
        info->content_length = len;
    } else {
        info->framing = SP_H1_FRAMING_CHUNKED;
    }
    return 0;
}

/* RFC 9110 §9.1: methods are case-sensitive. */
static bool method_is(const struct sp_field *m, const char *name)
{
    return m->value_len == strlen(name) && memcmp(m->value, name, m->value_len) == 0;
}

static bool method_wants_length(const struct sp_field *m)
{
    return method_is(m, "POST") || method_is(m, "PUT") || method_is(m, "PATCH");
}

static bool method_idempotent(const struct sp_field *m)
{
    static const char *const names[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};

    for (size_t i = 0; i < SP_ARRAY_LEN(names); i++)
        if (method_is(m, names[i]))
            return true;
    return false;
}

/* Appends one "cookie" line joining every non-empty cookie field with "; " (RFC 9114 §4.2.1).
 * Returns -EINVAL when a cookie value is invalid. */
static int put_cookies(const struct sp_field *fields, size_t n, struct sp_h1_buf *out)
{
    bool any = false;

    for (size_t i = 0; i < n; i++) {
        const struct sp_field *f = &fields[i];

        if (!field_is(f, "cookie") || f->value_len == 0)
            continue;
        if (!sp_syntax_is_field_value(f->value, f->value_len))
            return -EINVAL;
        buf_str(out, any ? "; " : "cookie: ");
        buf_put(out, f->value, f->value_len);
        any = true;
    }
    if (any)
        buf_put(out, "\r\n", 2);
    return 0;
}

/* Appends the end-to-end fields in order (cookies joined at the first cookie's place). */
static int put_fields(const struct sp_field *fields, size_t n, struct sp_h1_buf *out)
{
    bool cookies_done = false;

    for (size_t i = 0; i < n; i++) {
        const struct sp_field *f = &fields[i];

        if (f->name_len > 0 && f->name[0] == ':')
            continue;
        if (!sp_syntax_is_token(f->name, f->name_len))
            return -EINVAL;
        if (is_dropped_request_field(f))
            continue;
        if (field_is(f, "cookie")) {
            if (!cookies_done && put_cookies(fields, n, out) != 0)
                return -EINVAL;
            cookies_done = true;
            continue;
        }
        if (!sp_syntax_is_field_value(f->value, f->value_len))
            return -EINVAL;
        buf_field(out, f->name, f->name_len, f->value, f->value_len);
    }
    return 0;
}

static int put_request_line(const struct req_pseudo *ps, const struct sp_field *auth,
                            struct sp_h1_buf *out)
{
    const struct sp_field *m = ps->method, *p = ps->path;

    if (!sp_syntax_is_token(m->value, m->value_len) || method_is(m, "CONNECT"))
        return -EINVAL; /* CONNECT needs a tunnel, not a request */
    if (!sp_syntax_is_request_target(p->value, p->value_len, method_is(m, "OPTIONS")))
        return -EINVAL;
    if (auth == NULL || !sp_syntax_is_authority(auth->value, auth->value_len))
        return -EINVAL;
    buf_put(out, m->value, m->value_len);
    buf_put(out, " ", 1);
    buf_put(out, p->value, p->value_len);
    buf_str(out, " HTTP/1.1\r\nhost: ");
    buf_put(out, auth->value, auth->value_len);
    buf_put(out, "\r\n", 2);
    return 0;
}

static void put_framing(const struct sp_h1_request_info *info, struct sp_h1_buf *out)
{
    char num[32];

    switch (info->framing) {
    case SP_H1_FRAMING_NONE:
        if (info->wants_length)
            buf_str(out, "content-length: 0\r\n");
        break;
    case SP_H1_FRAMING_LENGTH:
        snprintf(num, sizeof(num), "%llu", (unsigned long long)info->content_length);
        buf_str(out, "content-length: ");
        buf_str(out, num);
        buf_put(out, "\r\n", 2);
        break;
    case SP_H1_FRAMING_CHUNKED:
        buf_str(out, "transfer-encoding: chunked\r\n");
        break;
    }
}

int sp_h1_request_head(const struct sp_field *fields, size_t n, bool has_body,
                       struct sp_h1_buf *out, struct sp_h1_request_info *ret_info)
{
    struct sp_h1_request_info info = {0};
    struct req_pseudo ps;
    size_t start = out->len;

    if (collect_pseudo(fields, n, &ps) != 0 || choose_framing(fields, n, has_body, &info) != 0)
        return -EINVAL;
    if (put_request_line(&ps, find_authority(fields, n, &ps), out) != 0 ||
        put_fields(fields, n, out) != 0) {
        out->len = start;
        return -EINVAL;
    }
    info.head = method_is(ps.method, "HEAD");
    info.wants_length = method_wants_length(ps.method);
    info.idempotent = method_idempotent(ps.method);
    if (info.framing == SP_H1_FRAMING_CHUNKED) {
        info.open = true; /* decided by the first body byte or the end */
    } else {
        put_framing(&info, out);
        buf_put(out, "\r\n", 2);
    }
    *ret_info = info;
    return 0;
}

void sp_h1_request_head_close(struct sp_h1_buf *out, struct sp_h1_request_info *info,
                              bool empty_body)
{
    if (!info->open)
        return;
    info->open = false;
    info->framing = empty_body ? SP_H1_FRAMING_NONE : SP_H1_FRAMING_CHUNKED;
    put_framing(info, out);
    buf_put(out, "\r\n", 2);
}

/* ---- chunk encoder ---------------------------------------------------------------------- */

size_t sp_h1_chunk_header(uint64_t len, bool close_previous, uint8_t *out)
{
    char tmp[SP_H1_CHUNK_HEADER_MAX + 1];
    int n = snprintf(tmp, sizeof(tmp), "%s%llx\r\n", close_previous ? "\r\n" : "",
                     (unsigned long long)len);

    memcpy(out, tmp, (size_t)n);
    return (size_t)n;
}

/* RFC 9110 §6.5.1: framing, routing and connection fields must not be trailers. */
static bool is_dropped_trailer(const struct sp_field *f)
{
    static const char *const names[] = {
        "content-length", "content-type",  "content-encoding", "content-range", "trailer",
        "host",           "authorization", "set-cookie",       "cookie",        "expect",
    };

    if (f->name_len > 0 && f->name[0] == ':')
        return true;
    if (is_dropped_request_field(f))
        return true;
    for (size_t i = 0; i < SP_ARRAY_LEN(names); i++)
        if (field_is(f, names[i]))
            return true;
    return false;
}

int sp_h1_chunk_last(const struct sp_field *trailers, size_t n, bool close_previous,
                     struct sp_h1_buf *out)
{
    size_t start = out->len;

    buf_str(out, close_previous ? "\r\n0\r\n" : "0\r\n");
    for (size_t i = 0; i < n; i++) {
        const struct sp_field *f = &trailers[i];

        if (f->name_len > 0 && f->name[0] == ':')
            continue;
        if (!sp_syntax_is_token(f->name, f->name_len) ||
            !sp_syntax_is_field_value(f->value, f->value_len)) {
            out->len = start;
            return -EINVAL;
        }
        if (!is_dropped_trailer(f))
            buf_field(out, f->name, f->name_len, f->value, f->value_len);
    }
    buf_put(out, "\r\n", 2);
    return 0;
}

/* ---- response parser -------------------------------------------------------------------- */

/* One received field, as offsets into its section's arena (the arena may still grow). */
struct raw_field {
    size_t name_off, name_len;
    size_t value_off, value_len;
};

/* A field section (the head or the trailers) as it arrives. */
struct section {
    struct sp_h1_buf arena;  /* owned: names and values, in arrival order */
    struct raw_field *raw;   /* owned array */
    size_t count, cap;       /* raw fields */
    struct sp_fields fields; /* built when complete: points into arena */
};

/* Connection options of the head (RFC 9110 §7.6.1), as offsets into the head arena. */
#define MAX_CONN_OPTIONS 8

struct sp_h1_parser {
    http_parser hp;
    struct sp_h1_parser_limits lim;
    struct section head, trailers;
    struct section *cur;   /* borrowed: the section header callbacks fill */
    bool in_value;         /* the last header callback was a value */
    bool head_request;     /* the request was HEAD */
    bool started;          /* a byte of a response was consumed */
    bool final;            /* the final head is complete */
    bool done;             /* SP_H1_EV_END reported */
    bool dead;             /* a protocol error: nothing more is parsed */
    bool keep_alive;       /* valid when done */
    bool conn_close;       /* the head has the "close" connection option */
    unsigned status;       /* final status, 0 before */
    unsigned interim;      /* 1xx responses seen for this request */
    struct sp_h1_event ev; /* the event of the current feed step */
    const uint8_t *scan;   /* next byte of the current input whose framing is unchecked */
    size_t skip;           /* leading bytes of the next input already reported as body */
    uint8_t prev;          /* last framing byte checked */
};

static struct sp_h1_parser *parser_of(http_parser *hp)
{
    return SP_CONTAINER_OF(hp, struct sp_h1_parser, hp);
}

static void section_reset(struct section *s)
{
    s->arena.len = 0;
    s->count = 0;
    s->fields.count = 0;
    s->fields.bytes = 0;
}

static void section_fini(struct section *s)
{
    sp_h1_buf_fini(&s->arena);
    free(s->raw);
    free(s->fields.items);
    memset(s, 0, sizeof(*s));
}

/* RFC 9112 §5 with no leniency: every line ends in CRLF, no bare CR or LF, no obs-fold (a line
 * starting with SP or HTAB), no control bytes. Checks framing bytes only: body bytes never pass
 * through here. */
static int check_framing(struct sp_h1_parser *p, const uint8_t *b, const uint8_t *e)
{
    for (; b < e; b++) {
        uint8_t c = *b;

        if ((p->prev == '\r') != (c == '\n'))
            return -EPROTO;
        if (p->prev == '\n' && (c == ' ' || c == '\t'))
            return -EPROTO;
        if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f)
            return -EPROTO;
        p->prev = c;
    }
    return 0;
}

/* Size of the section as RFC 9114 §4.2.2 counts it, including the field being received. */
static bool section_within_limits(const struct sp_h1_parser *p, const struct section *s)
{
    return s->count <= p->lim.max_headers &&
           (uint64_t)s->arena.len + (uint64_t)s->count * FIELD_OVERHEAD <= p->lim.max_header_bytes;
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    struct sp_h1_parser *p = parser_of(hp);
    struct section *s = p->cur;

    if (s->count == 0 || p->in_value) {
        if (s->count == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 16;
            s->raw = sp_xrealloc(s->raw, s->cap * sizeof(*s->raw));
        }
        s->raw[s->count++] = (struct raw_field){.name_off = s->arena.len};
        p->in_value = false;
    }
    s->raw[s->count - 1].name_len += len;
    buf_put(&s->arena, at, len);
    return section_within_limits(p, s) ? 0 : -1;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    struct sp_h1_parser *p = parser_of(hp);
    struct section *s = p->cur;
    struct raw_field *f;

    if (s->count == 0)
        return -1;
    f = &s->raw[s->count - 1];
    if (!p->in_value) {
        f->value_off = s->arena.len;
        p->in_value = true;
    }
    f->value_len += len;
    buf_put(&s->arena, at, len);
    return section_within_limits(p, s) ? 0 : -1;
}

static void trim(const uint8_t **v, size_t *len)
{
    while (*len > 0 && ((*v)[0] == ' ' || (*v)[0] == '\t')) {
        (*v)++;
        (*len)--;
    }
    while (*len > 0 && ((*v)[*len - 1] == ' ' || (*v)[*len - 1] == '\t'))
        (*len)--;
}

/* Calls fn on each comma-separated, trimmed, non-empty element of a list value. Returns the
 * first non-zero fn result. */
static int list_each(const uint8_t *v, size_t len, int (*fn)(void *, const uint8_t *, size_t),
                     void *arg)
{
    size_t i = 0;

    while (i <= len) {
        size_t j = i;
        const uint8_t *e;
        size_t elen;
        int rv;

        while (j < len && v[j] != ',')
            j++;
        e = v + i;
        elen = j - i;
        trim(&e, &elen);
        if (elen > 0 && (rv = fn(arg, e, elen)) != 0)
            return rv;
        i = j + 1;
    }
    return 0;
}

/* Builds s->fields from the raw offsets: names lowercased in place, values trimmed. */
static void section_build(struct section *s)
{
    if (s->fields.cap < s->count) {
        s->fields.cap = s->count;
        s->fields.items = sp_xrealloc(s->fields.items, s->count * sizeof(*s->fields.items));
    }
    s->fields.count = 0;
    s->fields.bytes = 0;
    for (size_t i = 0; i < s->count; i++) {
        struct raw_field *r = &s->raw[i];
        uint8_t *name = s->arena.data + r->name_off;
        struct sp_field *f = &s->fields.items[s->fields.count++];

        for (size_t k = 0; k < r->name_len; k++)
            if (name[k] >= 'A' && name[k] <= 'Z')
                name[k] = (uint8_t)(name[k] - 'A' + 'a');
        f->name = name;
        f->name_len = r->name_len;
        f->value = r->value_len > 0 ? s->arena.data + r->value_off : (const uint8_t *)"";
        f->value_len = r->value_len;
        trim(&f->value, &f->value_len);
        s->fields.bytes += f->name_len + f->value_len + FIELD_OVERHEAD;
    }
}

/* Drops the fields at index i from s->fields (order kept). */
static void fields_remove(struct sp_fields *f, size_t i)
{
    f->bytes -= f->items[i].name_len + f->items[i].value_len + FIELD_OVERHEAD;
    memmove(&f->items[i], &f->items[i + 1], (f->count - i - 1) * sizeof(*f->items));
    f->count--;
}

struct conn_options {
    struct sp_h1_parser *p;
    struct sp_field opts[MAX_CONN_OPTIONS]; /* names only */
    size_t n;
};

static int on_conn_option(void *arg, const uint8_t *e, size_t len)
{
    struct conn_options *co = arg;

    if (!sp_syntax_is_token(e, len))
        return -EPROTO;
    if (name_eq(e, len, "close"))
        co->p->conn_close = true;
    if (co->n == MAX_CONN_OPTIONS)
        return -EPROTO; /* more options than any server needs */
    co->opts[co->n++] = (struct sp_field){.name = e, .name_len = len};
    return 0;
}

static bool bytes_ieq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        uint8_t x = a[i] >= 'A' && a[i] <= 'Z' ? (uint8_t)(a[i] - 'A' + 'a') : a[i];
        uint8_t y = b[i] >= 'A' && b[i] <= 'Z' ? (uint8_t)(b[i] - 'A' + 'a') : b[i];

        if (x != y)
            return false;
    }
    return true;
}

/* Reads the Connection options and removes the fields they name (RFC 9110 §7.6.1); the
 * connection field itself stays for the caller's hop-by-hop filter. */
static int apply_connection_options(struct sp_h1_parser *p, struct sp_fields *f)
{
    struct conn_options co = {.p = p};

    for (size_t i = 0; i < f->count; i++)
        if (field_is(&f->items[i], "connection") &&
            list_each(f->items[i].value, f->items[i].value_len, on_conn_option, &co) != 0)
            return -EPROTO;
    for (size_t i = f->count; i-- > 0;) {
        const struct sp_field *x = &f->items[i];

        if (field_is(x, "connection"))
            continue;
        for (size_t k = 0; k < co.n; k++) {
            if (bytes_ieq(x->name, x->name_len, co.opts[k].name, co.opts[k].name_len)) {
                fields_remove(f, i);
                break;
            }
        }
    }
    return 0;
}

/* Field syntax, and RFC 9112 §6.3: one framing, unambiguous. Both content-length and
 * transfer-encoding, differing lengths, or a transfer coding other than exactly "chunked" are how
 * requests are smuggled. */
static int check_body_framing(const struct sp_fields *f)
{
    const struct sp_field *cl = NULL, *te = NULL;
    uint64_t len;

    for (size_t i = 0; i < f->count; i++) {
        const struct sp_field *x = &f->items[i];

        /* RFC 9112 §5.1: no whitespace between name and colon; values without controls. */
        if (!sp_syntax_is_token(x->name, x->name_len) ||
            !sp_syntax_is_field_value(x->value, x->value_len))
            return -EPROTO;
        if (field_is(x, "content-length")) {
            if (cl != NULL &&
                (cl->value_len != x->value_len || memcmp(cl->value, x->value, x->value_len) != 0))
                return -EPROTO;
            if (sp_syntax_parse_length(x->value, x->value_len, &len) != 0)
                return -EPROTO;
            cl = x;
        } else if (field_is(x, "transfer-encoding")) {
            if (te != NULL)
                return -EPROTO;
            te = x;
        }
    }
    if (te != NULL && (cl != NULL || !name_eq(te->value, te->value_len, "chunked")))
        return -EPROTO;
    return 0;
}

static int check_trailers(struct sp_fields *f)
{
    for (size_t i = 0; i < f->count; i++)
        if (!sp_syntax_is_token(f->items[i].name, f->items[i].name_len) ||
            !sp_syntax_is_field_value(f->items[i].value, f->items[i].value_len))
            return -EPROTO;
    for (size_t i = f->count; i-- > 0;)
        if (is_dropped_trailer(&f->items[i]))
            fields_remove(f, i);
    return 0;
}

static int on_message_begin(http_parser *hp)
{
    struct sp_h1_parser *p = parser_of(hp);

    p->started = true;
    if (!p->final) { /* a new head after an interim response */
        section_reset(&p->head);
        p->cur = &p->head;
        p->in_value = false;
    }
    return 0;
}

static int on_headers_complete(http_parser *hp)
{
    struct sp_h1_parser *p = parser_of(hp);
    unsigned status = hp->status_code;

    /* HTTP/1.0 and 1.1 only; 101 answers an Upgrade we never send. */
    if (hp->http_major != 1 || hp->http_minor > 1 || status < 100 || status > 599 || status == 101)
        return -1;
    if (status < 200) /* interim (100, 103, ...): skipped, and never has a body */
        return ++p->interim > MAX_INTERIM ? -1 : 1;
    section_build(&p->head);
    if (check_body_framing(&p->head.fields) != 0 ||
        apply_connection_options(p, &p->head.fields) != 0)
        return -1;
    p->status = status;
    p->final = true;
    p->cur = &p->trailers;
    p->in_value = false;
    p->ev.type = SP_H1_EV_HEADERS;
    http_parser_pause(hp, 1);
    /* RFC 9110 §6.4.1: no body after HEAD, 204 or 304, whatever the framing fields say. */
    return p->head_request || status == 204 || status == 304 ? 1 : 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
    struct sp_h1_parser *p = parser_of(hp);
    const uint8_t *b = (const uint8_t *)at;

    if (len == 0)
        return 0;
    if (p->scan < b && check_framing(p, p->scan, b) != 0)
        return -1;
    p->scan = b + len;
    p->ev = (struct sp_h1_event){.type = SP_H1_EV_DATA, .data = b, .len = len};
    http_parser_pause(hp, 1);
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    struct sp_h1_parser *p = parser_of(hp);

    if (!p->final)
        return 0; /* an interim response: the final one follows */
    section_build(&p->trailers);
    if (check_trailers(&p->trailers.fields) != 0)
        return -1;
    p->keep_alive = http_should_keep_alive(hp) != 0 && !p->conn_close;
    p->done = true;
    p->ev.type = SP_H1_EV_END;
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

int sp_h1_parser_new(const struct sp_h1_parser_limits *lim, struct sp_h1_parser **ret)
{
    struct sp_h1_parser *p = sp_xcalloc(1, sizeof(*p));

    p->lim = *lim;
    sp_h1_parser_start(p, false);
    *ret = p;
    return 0;
}

void sp_h1_parser_free(struct sp_h1_parser *p)
{
    if (p == NULL)
        return;
    section_fini(&p->head);
    section_fini(&p->trailers);
    free(p);
}

void sp_h1_parser_start(struct sp_h1_parser *p, bool head_request)
{
    http_parser_init(&p->hp, HTTP_RESPONSE);
    section_reset(&p->head);
    section_reset(&p->trailers);
    p->cur = &p->head;
    p->in_value = false;
    p->head_request = head_request;
    p->started = p->final = p->done = p->dead = false;
    p->keep_alive = p->conn_close = false;
    p->status = 0;
    p->interim = 0;
    p->ev.type = SP_H1_EV_NONE;
    p->scan = NULL;
    p->skip = 0;
    p->prev = 0;
}

static ssize_t parser_fail(struct sp_h1_parser *p)
{
    p->dead = true;
    return -EPROTO;
}

ssize_t sp_h1_parser_feed(struct sp_h1_parser *p, const uint8_t *data, size_t len,
                          struct sp_h1_event *ret_ev)
{
    size_t skip, n;
    enum http_errno err;

    ret_ev->type = SP_H1_EV_NONE;
    if (p->dead || (p->done && len > 0))
        return parser_fail(p); /* bytes after the response belong to no request */
    if (len == 0)
        return 0;
    skip = SP_MIN(p->skip, len);
    p->skip -= skip;
    p->scan = data + skip;
    p->ev.type = SP_H1_EV_NONE;
    n = http_parser_execute(&p->hp, &parser_settings, (const char *)data, len);
    err = HTTP_PARSER_ERRNO(&p->hp);
    if (err == HPE_PAUSED)
        http_parser_pause(&p->hp, 0);
    else if (err != HPE_OK)
        return parser_fail(p);
    if (p->ev.type == SP_H1_EV_NONE && n != len)
        return parser_fail(p);
    if (p->scan < data + n && check_framing(p, p->scan, data + n) != 0)
        return parser_fail(p);
    /* http-parser reports a length-delimited body's last byte before consuming it. */
    if (p->scan > data + n)
        p->skip += (size_t)(p->scan - (data + n));
    *ret_ev = p->ev;
    return (ssize_t)n;
}

int sp_h1_parser_eof(struct sp_h1_parser *p, struct sp_h1_event *ret_ev)
{
    enum http_errno err;

    ret_ev->type = SP_H1_EV_NONE;
    if (p->dead)
        return -EPROTO;
    if (p->done || !p->started)
        return 0;
    p->ev.type = SP_H1_EV_NONE;
    (void)http_parser_execute(&p->hp, &parser_settings, "", 0);
    err = HTTP_PARSER_ERRNO(&p->hp);
    if (err == HPE_PAUSED)
        http_parser_pause(&p->hp, 0);
    else if (err != HPE_OK)
        return (int)parser_fail(p);
    if (p->ev.type != SP_H1_EV_END)
        return (int)parser_fail(p); /* cut short */
    *ret_ev = p->ev;
    return 0;
}

bool sp_h1_parser_started(const struct sp_h1_parser *p)
{
    return p->started;
}

unsigned sp_h1_parser_status(const struct sp_h1_parser *p)
{
    return p->status;
}

const struct sp_fields *sp_h1_parser_headers(const struct sp_h1_parser *p)
{
    return &p->head.fields;
}

const struct sp_fields *sp_h1_parser_trailers(const struct sp_h1_parser *p)
{
    return &p->trailers.fields;
}

bool sp_h1_parser_keep_alive(const struct sp_h1_parser *p)
{
    return p->done && p->keep_alive;
}
