#include "upstream/upstream.h"

#include <stddef.h>
#include <stdio.h>

void sp_ustream_write(struct sp_ustream *s, const uint8_t *data, size_t len)
{
    if (s->impl != NULL)
        s->ops->write(s->impl, data, len);
}

void sp_ustream_end(struct sp_ustream *s, const struct sp_field *trailers, size_t n)
{
    if (s->impl != NULL)
        s->ops->end(s->impl, trailers, n);
}

void sp_ustream_consume(struct sp_ustream *s, uint64_t len)
{
    if (s->impl != NULL)
        s->ops->consume(s->impl, len);
}

void sp_ustream_cancel(struct sp_ustream *s)
{
    void *impl = s->impl;

    if (impl == NULL)
        return;
    s->impl = NULL;
    s->ops->cancel(impl);
}

unsigned sp_ustream_status(const struct sp_ustream *s)
{
    return s->impl != NULL ? s->ops->status(s->impl) : 0;
}

const struct sp_fields *sp_ustream_headers(const struct sp_ustream *s)
{
    static const struct sp_fields none;

    return s->impl != NULL ? s->ops->headers(s->impl) : &none;
}

const struct sp_fields *sp_ustream_trailers(const struct sp_ustream *s)
{
    static const struct sp_fields none;

    return s->impl != NULL ? s->ops->trailers(s->impl) : &none;
}

void sp_ustream_describe(const struct sp_ustream *s, char *buf, size_t len)
{
    if (s->impl != NULL)
        (void)s->ops->describe(s->impl, buf, len);
    else
        snprintf(buf, len, "-");
}

const struct sp_uconn_ops *sp_uconn_ops_for(enum sp_backend_proto proto)
{
    switch (proto) {
    case SP_BACKEND_PROTO_H3:
        return &sp_uconn_h3_ops;
    case SP_BACKEND_PROTO_H2:
    case SP_BACKEND_PROTO_H2C:
        return &sp_uconn_h2_ops; /* TLS or not per backend->tls */
    case SP_BACKEND_PROTO_HTTP1:
        return &sp_uconn_h1_ops; /* cleartext or TLS per backend->tls */
    }
    return NULL;
}
