/* sticky.c: signed sticky cookie values (format in sticky.h). */
#include "lb/sticky.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <string.h>

#include "lb/lb.h"

#define SHA256_BYTES 32
/* Domain separation: this MAC can never be confused with another use of the same key. */
static const char mac_label[] = "spooky-sticky-v1"; /* the NUL is part of the MAC input */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The truncated MAC of an id of len <= SP_LB_STICKY_ID_MAX bytes. Returns 0 or -EIO. */
static int id_mac(const struct sp_lb_sticky_key *key, const char *id, size_t len,
                  uint8_t mac[SP_LB_STICKY_MAC_BYTES])
{
    uint8_t msg[sizeof(mac_label) + SP_LB_STICKY_ID_MAX];
    uint8_t digest[SHA256_BYTES];

    memcpy(msg, mac_label, sizeof(mac_label));
    memcpy(msg + sizeof(mac_label), id, len);
    if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, key->bytes, key->len, msg, sizeof(mac_label) + len,
                         digest) < 0)
        return -EIO;
    memcpy(mac, digest, SP_LB_STICKY_MAC_BYTES);
    gnutls_memset(digest, 0, sizeof(digest));
    return 0;
}

/* Unpadded base64url of in[0..len) into out, which holds at least (len * 4 + 2) / 3 bytes. */
static size_t encode_b64url(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0, i = 0;

    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    if (len - i == 1) {
        out[o++] = b64url[in[i] >> 2];
        out[o++] = b64url[(in[i] & 3) << 4];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];

        out[o++] = b64url[v >> 10];
        out[o++] = b64url[(v >> 4) & 63];
        out[o++] = b64url[(v & 15) << 2];
    }
    return o;
}

static int b64url_value(char c)
{
    const char *p = c != '\0' ? strchr(b64url, c) : NULL;

    return p != NULL ? (int)(p - b64url) : -1;
}

/* Strict decoding: only the alphabet, no padding, unused trailing bits zero, so each byte string
 * has exactly one encoding. Returns the decoded length, or -EBADMSG. */
static int decode_b64url(const char *in, size_t len, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;

    if (len % 4 == 1)
        return -EBADMSG;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value(in[i]);

        if (v < 0)
            return -EBADMSG;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -EBADMSG;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if ((acc & ((1u << bits) - 1)) != 0)
        return -EBADMSG;
    return (int)o;
}

int sp_lb_sticky_encode(const struct sp_lb_sticky_key *key, const char *backend_id, char *out,
                        size_t cap, size_t *ret_len)
{
    uint8_t raw[SP_LB_STICKY_ID_MAX + SP_LB_STICKY_MAC_BYTES];
    size_t id_len = strlen(backend_id);
    int rv;

    if (key->len < SP_LB_STICKY_KEY_MIN || id_len == 0 || id_len > SP_LB_STICKY_ID_MAX)
        return -EINVAL;
    if (cap < ((id_len + SP_LB_STICKY_MAC_BYTES) * 4 + 2) / 3)
        return -ENOSPC;
    memcpy(raw, backend_id, id_len);
    rv = id_mac(key, backend_id, id_len, raw + id_len);
    if (rv < 0)
        return rv;
    *ret_len = encode_b64url(raw, id_len + SP_LB_STICKY_MAC_BYTES, out);
    return 0;
}

int sp_lb_sticky_decode(const struct sp_lb_sticky_key *key, const char *value, size_t value_len,
                        const char *const *ids, size_t n, size_t *ret_index)
{
    uint8_t raw[SP_LB_STICKY_ID_MAX + SP_LB_STICKY_MAC_BYTES];
    uint8_t mac[SP_LB_STICKY_MAC_BYTES];
    size_t id_len;
    int len, rv;

    if (key->len < SP_LB_STICKY_KEY_MIN)
        return -EINVAL;
    len = decode_b64url(value, value_len, raw, sizeof(raw));
    if (len < 0)
        return len;
    if ((size_t)len <= SP_LB_STICKY_MAC_BYTES)
        return -EBADMSG;
    id_len = (size_t)len - SP_LB_STICKY_MAC_BYTES;
    rv = id_mac(key, (const char *)raw, id_len, mac);
    if (rv < 0)
        return rv;
    /* constant time: a timing oracle must not reveal how much of a guessed MAC is right */
    if (gnutls_memcmp(mac, raw + id_len, sizeof(mac)) != 0)
        return -EBADMSG;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] != NULL && strlen(ids[i]) == id_len && memcmp(ids[i], raw, id_len) == 0) {
            *ret_index = i;
            return 0;
        }
    }
    return -ENOENT;
}

int sp_lb_sticky_pick(struct sp_lb *lb, const struct sp_lb_backend *b, const char *const *ids,
                      size_t n, const struct sp_lb_sticky_key *key, const char *value,
                      size_t value_len, sp_time_t now, size_t *ret_index, bool *ret_pinned)
{
    size_t idx;
    int rv;

    if (value != NULL && sp_lb_sticky_decode(key, value, value_len, ids, n, &idx) == 0 &&
        b[idx].eligible) {
        /* No pick: it would advance the strategy's state (a round-robin turn) for a request
         * that does not use it. The next pick sees any eligibility change instead. */
        *ret_index = idx;
        *ret_pinned = true;
        return 0;
    }
    rv = sp_lb_pick(lb, b, n, now, &idx);
    if (rv < 0)
        return rv;
    *ret_index = idx;
    *ret_pinned = false;
    return 0;
}
