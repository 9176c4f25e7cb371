/* select.c: backend choice for one request: sticky cookie, hash key, strategy. */
#include "core/util.h"
#include "lb/affinity.h"
#include "proxy/proxy_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The request as the affinity code sees it. fields must hold the request's field count. */
static void lb_request(const struct req *r, struct sp_lb_request *lr, struct sp_lb_field *fields)
{
    const struct sp_fields *in = sp_h3_stream_headers(r->cs);

    for (size_t i = 0; i < in->count; i++) {
        fields[i].name = in->items[i].name;
        fields[i].name_len = in->items[i].name_len;
        fields[i].value = in->items[i].value;
        fields[i].value_len = in->items[i].value_len;
    }
    lr->client = (const struct sockaddr *)&sp_h3_conn_quic(r->conn)->remote;
    lr->fields = fields;
    lr->fields_count = in->count;
    lr->path = (const uint8_t *)r->path;
    lr->path_len = r->path != NULL ? strlen(r->path) : 0;
    lr->authority = (const uint8_t *)r->authority;
    lr->authority_len = r->authority != NULL ? strlen(r->authority) : 0;
}

/* Writes the request's hash key (hash_key config) to key; returns its length, 0 for none. */
static size_t hash_key(const struct req *r, const struct sp_lb_request *lr, uint8_t *key,
                       size_t cap)
{
    static const enum sp_lb_key_kind kinds[] = {
        [SP_HASH_SOURCE_IP] = SP_LB_KEY_SOURCE_IP, [SP_HASH_HEADER] = SP_LB_KEY_HEADER,
        [SP_HASH_COOKIE] = SP_LB_KEY_COOKIE,       [SP_HASH_PATH] = SP_LB_KEY_PATH,
        [SP_HASH_AUTHORITY] = SP_LB_KEY_AUTHORITY, [SP_HASH_QUERY] = SP_LB_KEY_QUERY,
    };
    const struct sp_hash_key_conf *hk = &r->px->ups[r->up].conf->hash_key;
    struct sp_lb_key_spec spec;
    size_t len;

    if (hk->source == SP_HASH_NONE)
        return 0;
    if (hk->source == SP_HASH_CONNECTION) {
        /* The client's original DCID: stable for the connection's life, even across migration. */
        const ngtcp2_cid *cid = &sp_h3_conn_quic(r->conn)->odcid;

        len = SP_MIN(cid->datalen, cap);
        memcpy(key, cid->data, len);
        return len;
    }
    spec.kind = kinds[hk->source];
    spec.name = hk->name;
    spec.ipv4_prefix_len = hk->ipv4_prefix;
    spec.ipv6_prefix_len = hk->ipv6_prefix;
    return sp_lb_affinity_key(&spec, lr, key, cap, &len) == 0 ? len : 0;
}

/* Remembers the sticky cookie to set for backend idx (a pick the cookie did not decide). */
static void sticky_issue(struct req *r, const struct upstream_rt *u, size_t idx)
{
    const struct sp_sticky_conf *sc = &u->conf->sticky;
    char value[SP_LB_STICKY_VALUE_LEN(SP_LB_STICKY_ID_MAX)];
    char buf[sizeof(value) + 160];
    size_t vlen;

    if (sp_lb_sticky_encode(&u->sticky_key, u->ids[idx], value, sizeof(value), &vlen) != 0)
        return;
    /* RFC 6265 §4.1: Secure (we only speak HTTPS), HttpOnly, scoped to the whole site. */
    if (sc->max_age_s > 0)
        snprintf(buf, sizeof(buf), "%s=%.*s; Path=/; Max-Age=%llu; Secure; HttpOnly; SameSite=Lax",
                 sc->cookie_name, (int)vlen, value, (unsigned long long)sc->max_age_s);
    else
        snprintf(buf, sizeof(buf), "%s=%.*s; Path=/; Secure; HttpOnly; SameSite=Lax",
                 sc->cookie_name, (int)vlen, value);
    free(r->set_cookie);
    r->set_cookie = sp_xstrdup(buf);
}

int sp_proxy_select_backend(struct req *r, struct upstream_rt *u, sp_time_t now, size_t *ret)
{
    const struct sp_upstream_conf *uc = u->conf;
    size_t n = uc->backends_count;
    struct sp_lb_field *fields;
    struct sp_lb_request lr;
    uint8_t key[256];
    size_t klen;
    int rv;

    /* Most upstreams use neither: do not copy the request's fields for nothing. */
    if (!uc->sticky.enabled && uc->hash_key.source == SP_HASH_NONE)
        return sp_lb_pick(u->lb, u->view, n, now, ret);
    fields = sp_xmalloc((sp_h3_stream_headers(r->cs)->count + 1) * sizeof(*fields));
    lb_request(r, &lr, fields);
    if (uc->sticky.enabled) {
        const uint8_t *v = NULL;
        size_t vlen = 0;
        bool pinned = false;

        (void)sp_lb_cookie_find(&lr, (const uint8_t *)uc->sticky.cookie_name,
                                strlen(uc->sticky.cookie_name), &v, &vlen);
        rv = sp_lb_sticky_pick(u->lb, u->view, u->ids, n, &u->sticky_key, (const char *)v, vlen,
                               now, ret, &pinned);
        if (rv == 0 && !pinned)
            sticky_issue(r, u, *ret);
    } else if ((klen = hash_key(r, &lr, key, sizeof(key))) > 0) {
        rv = sp_lb_pick_key(u->lb, u->view, n, key, klen, now, ret);
    } else {
        rv = sp_lb_pick(u->lb, u->view, n, now, ret);
    }
    free(fields);
    return rv;
}
