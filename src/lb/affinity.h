/* affinity.h: session-affinity keys (DESIGN.md §4). From a description of a request and a key
 * spec, writes the bytes that rendezvous hashing (sp_lb_pick_key) maps to a backend: equal keys
 * land on the same backend. Pure: no allocation, no clock, no logging; the request is borrowed.
 *
 * The QUIC-connection key needs no extraction: pass the client connection's original DCID bytes
 * to sp_lb_pick_key directly. */
#ifndef SP_LB_AFFINITY_H
#define SP_LB_AFFINITY_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* One request field line, name and value as received (HTTP/3 names are lowercase). */
struct sp_lb_field {
    const uint8_t *name; /* borrowed */
    size_t name_len;
    const uint8_t *value; /* borrowed */
    size_t value_len;
};

/* What key extraction may look at. All borrowed for the call. */
struct sp_lb_request {
    const struct sockaddr *client;    /* client address (AF_INET/AF_INET6); NULL = unknown */
    const struct sp_lb_field *fields; /* the request's field lines in order, pseudo-fields
                                         optional (they are looked up below, not here) */
    size_t fields_count;
    const uint8_t *path; /* :path, with its query; NULL = none */
    size_t path_len;
    const uint8_t *authority; /* :authority (or Host); NULL = none */
    size_t authority_len;
};

enum sp_lb_key_kind {
    SP_LB_KEY_SOURCE_IP = 0, /* client address, masked to a prefix */
    SP_LB_KEY_HEADER = 1,    /* every field line named `name`, values joined with ", " */
    SP_LB_KEY_COOKIE = 2,    /* the value of the first cookie named `name` */
    SP_LB_KEY_PATH = 3,      /* :path without its query */
    SP_LB_KEY_AUTHORITY = 4, /* the host of :authority, lowercase, no port, no trailing dot */
    SP_LB_KEY_QUERY = 5,     /* the raw (not percent-decoded) value of query parameter `name` */
};

struct sp_lb_key_spec {
    enum sp_lb_key_kind kind;
    const char *name;         /* borrowed; header (any case), cookie or query parameter name
                                 (exact bytes); NULL for the other kinds */
    unsigned ipv4_prefix_len; /* 1..32 bits kept of an IPv4 client; 0 = 32 */
    unsigned ipv6_prefix_len; /* 1..128 bits kept of an IPv6 client; 0 = 128 */
};

/* Writes the affinity key of `req` under `spec` into buf[0..cap) and its length to *ret_len.
 * Source-IP keys are a family byte, the prefix length and the masked address; an IPv4-mapped IPv6
 * client (::ffff:a.b.c.d) counts as IPv4, so dual-stack sockets do not split a client.
 * Returns 0; -ENOENT when the request has no such address, field, cookie, path or parameter (the
 * caller then picks without a key); -ENOSPC when the key exceeds cap; -EINVAL for a spec with a
 * bad kind or prefix length or a missing name. buf and *ret_len are written only on success.
 * Any thread. */
int sp_lb_affinity_key(const struct sp_lb_key_spec *spec, const struct sp_lb_request *req,
                       uint8_t *buf, size_t cap, size_t *ret_len);

/* Finds the first cookie called name[0..name_len) (exact bytes) in the request's `cookie` field
 * lines. HTTP/3 may split cookies over several lines (RFC 9114 §4.2.1), each a list of
 * "name=value" pairs separated by ";" (RFC 6265 §5.4: "; "; whitespace around pairs tolerated).
 * Returns 0 and writes the borrowed value (inside req's fields, surrounding whitespace removed),
 * or -ENOENT. Any thread. */
int sp_lb_cookie_find(const struct sp_lb_request *req, const uint8_t *name, size_t name_len,
                      const uint8_t **ret_value, size_t *ret_len);

#endif
