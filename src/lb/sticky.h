/* sticky.h: the sticky cookie spooky inserts itself (DESIGN.md §4). Its value names a backend by
 * its config id and carries a MAC over that id, so a client can replay the cookie it was given
 * but cannot forge one that pins another backend:
 *
 *   value = base64url(id || HMAC-SHA256(key, "spooky-sticky-v1" 0x00 id)[0..16)), no padding
 *
 * 128 bits of MAC are plenty against online guessing. The id (not the index) keeps a cookie valid
 * across reloads that reorder backends; the key must be the same on every worker and instance
 * that should honour it, and survive reloads. Pure apart from GnuTLS's HMAC: no clock, no log. */
#ifndef SP_LB_STICKY_H
#define SP_LB_STICKY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/time.h"

struct sp_lb;
struct sp_lb_backend;

#define SP_LB_STICKY_ID_MAX 255u  /* longest backend id a cookie can carry, bytes */
#define SP_LB_STICKY_MAC_BYTES 16 /* truncated HMAC-SHA256 */
#define SP_LB_STICKY_KEY_MIN 16u  /* shortest accepted HMAC key, bytes */
/* Length of the cookie value for an id of id_len bytes (unpadded base64url). */
#define SP_LB_STICKY_VALUE_LEN(id_len) (((id_len) + SP_LB_STICKY_MAC_BYTES) * 4 / 3 + 1)

/* The HMAC key. Borrowed by every call. */
struct sp_lb_sticky_key {
    const uint8_t *bytes; /* borrowed; secret */
    size_t len;           /* >= SP_LB_STICKY_KEY_MIN */
};

/* Writes the cookie value pinning `backend_id` to out[0..cap) (not NUL-terminated) and its length
 * to *ret_len (at most SP_LB_STICKY_VALUE_LEN(strlen(backend_id))).
 * Returns 0; -EINVAL for an empty id, an id longer than SP_LB_STICKY_ID_MAX or a key shorter than
 * SP_LB_STICKY_KEY_MIN; -ENOSPC when cap is too small; -EIO when GnuTLS fails. out and *ret_len
 * are written only on success. Any thread. */
int sp_lb_sticky_encode(const struct sp_lb_sticky_key *key, const char *backend_id, char *out,
                        size_t cap, size_t *ret_len);

/* Checks a cookie value (value[0..value_len), client bytes) and finds the backend it pins among
 * ids[0..n) (the upstream's backend ids, borrowed; a linear search).
 * Returns 0 and writes *ret_index; -EBADMSG when the value is malformed or its MAC does not match
 * (forged, altered, or signed with another key); -ENOENT when it is authentic but names no backend
 * of ids (removed by a reload, or another upstream's); -EINVAL for a short key; -EIO when GnuTLS
 * fails. Any thread. */
int sp_lb_sticky_decode(const struct sp_lb_sticky_key *key, const char *value, size_t value_len,
                        const char *const *ids, size_t n, size_t *ret_index);

/* Picks for a request that may carry a sticky cookie value (NULL = none): the pinned backend when
 * the value decodes against ids[0..n) and b[index] is eligible, else sp_lb_pick(lb, b, n, now).
 * *ret_pinned tells whether the cookie was honoured; when false the caller should set a new
 * cookie for the picked backend. Returns what sp_lb_pick returns; *ret_index and *ret_pinned are
 * written only on success. The balancer's worker thread. */
int sp_lb_sticky_pick(struct sp_lb *lb, const struct sp_lb_backend *b, const char *const *ids,
                      size_t n, const struct sp_lb_sticky_key *key, const char *value,
                      size_t value_len, sp_time_t now, size_t *ret_index, bool *ret_pinned);

#endif
