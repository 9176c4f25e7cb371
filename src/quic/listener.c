#include "quic/listener.h"
#include "core/log.h"
#include "core/util.h"
#include "quic/secret.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define SCID_LEN 16
#define RX_BUF_BYTES 65536
/* Datagrams handled per readiness event before yielding to other watchers. */
#define RX_BUDGET 64

struct cid_entry {
    struct cid_entry *next; /* owned chain */
    ngtcp2_cid cid;
    struct sp_quic_conn *qc; /* borrowed */
};

struct sp_quic_listener {
    struct ev_loop *loop;                   /* borrowed */
    ev_io io;                               /* readable socket */
    struct sp_quic_endpoint ep;             /* owns ep.fd */
    const struct sp_quic_listener_ops *ops; /* borrowed */
    void *ctx;                              /* borrowed */
    struct cid_entry **buckets;             /* owned; power-of-two hash table of CIDs */
    size_t nbuckets;
    size_t nentries;
    bool accepting;
};

static uint64_t cid_hash(const ngtcp2_cid *cid)
{
    /* FNV-1a: CIDs are random already (ours) or chosen by a client for its Initial only. */
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < cid->datalen; i++)
        h = (h ^ cid->data[i]) * 1099511628211ULL;
    return h;
}

static struct cid_entry **cid_slot(struct sp_quic_listener *l, const ngtcp2_cid *cid)
{
    struct cid_entry **pp = &l->buckets[cid_hash(cid) & (l->nbuckets - 1)];

    while (*pp != NULL && !ngtcp2_cid_eq(&(*pp)->cid, cid))
        pp = &(*pp)->next;
    return pp;
}

static void cid_grow(struct sp_quic_listener *l)
{
    size_t n = l->nbuckets * 2;
    struct cid_entry **b = sp_xcalloc(n, sizeof(*b));

    for (size_t i = 0; i < l->nbuckets; i++) {
        struct cid_entry *e = l->buckets[i];

        while (e != NULL) {
            struct cid_entry *next = e->next;
            size_t k = cid_hash(&e->cid) & (n - 1);

            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(l->buckets);
    l->buckets = b;
    l->nbuckets = n;
}

static void cid_add(struct sp_quic_listener *l, const ngtcp2_cid *cid, struct sp_quic_conn *qc)
{
    struct cid_entry **pp;
    struct cid_entry *e;

    if (l->nentries >= l->nbuckets)
        cid_grow(l);
    pp = cid_slot(l, cid);
    if (*pp != NULL) {
        (*pp)->qc = qc;
        return;
    }
    e = sp_xmalloc(sizeof(*e));
    e->next = NULL;
    e->cid = *cid;
    e->qc = qc;
    *pp = e;
    l->nentries++;
}

static void cid_remove(struct sp_quic_listener *l, const ngtcp2_cid *cid, struct sp_quic_conn *qc)
{
    struct cid_entry **pp = cid_slot(l, cid);
    struct cid_entry *e = *pp;

    if (e == NULL || e->qc != qc)
        return;
    *pp = e->next;
    free(e);
    l->nentries--;
}

static struct sp_quic_conn *cid_find(struct sp_quic_listener *l, const uint8_t *data, size_t len)
{
    ngtcp2_cid cid;
    struct cid_entry *e;

    if (len > NGTCP2_MAX_CIDLEN)
        return NULL;
    ngtcp2_cid_init(&cid, data, len);
    e = *cid_slot(l, &cid);
    return e != NULL ? e->qc : NULL;
}

static int on_cid(struct sp_quic_conn *qc, const ngtcp2_cid *cid, bool add)
{
    struct sp_quic_listener *l = qc->listener;

    if (add)
        cid_add(l, cid, qc);
    else
        cid_remove(l, cid, qc);
    return 0;
}

void sp_quic_listener_forget(struct sp_quic_listener *l, struct sp_quic_conn *qc)
{
    ngtcp2_cid *cids;
    size_t n;

    cid_remove(l, &qc->odcid, qc);
    qc->on_cid = NULL;
    if (qc->conn == NULL)
        return;
    n = ngtcp2_conn_get_num_scid(qc->conn);
    cids = sp_xcalloc(n, sizeof(*cids));
    n = ngtcp2_conn_get_scid(qc->conn, cids);
    for (size_t i = 0; i < n; i++)
        cid_remove(l, &cids[i], qc);
    free(cids);
}

static void send_raw(struct sp_quic_listener *l, const uint8_t *data, size_t len,
                     const struct sockaddr *to, socklen_t tolen)
{
    /* Best effort: VN and stateless resets are never retransmitted. */
    (void)sendto(l->ep.fd, data, len, MSG_DONTWAIT, to, tolen);
}

static void send_version_negotiation(struct sp_quic_listener *l, const ngtcp2_version_cid *vc,
                                     const struct sockaddr *to, socklen_t tolen)
{
    uint8_t buf[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
    uint32_t versions[] = {NGTCP2_PROTO_VER_V1};
    uint8_t unused;
    ngtcp2_ssize n;

    sp_random_bytes(&unused, 1);
    /* RFC 9000 §17.2.1: echo the client's CIDs swapped. */
    n = ngtcp2_pkt_write_version_negotiation(buf, sizeof(buf), unused, vc->scid, vc->scidlen,
                                             vc->dcid, vc->dcidlen, versions, 1);
    if (n > 0)
        send_raw(l, buf, (size_t)n, to, tolen);
}

static void send_stateless_reset(struct sp_quic_listener *l, const ngtcp2_version_cid *vc,
                                 size_t pktlen, const struct sockaddr *to, socklen_t tolen)
{
    uint8_t buf[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
    uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN];
    uint8_t rnd[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
    ngtcp2_cid cid;
    size_t randlen;
    ngtcp2_ssize n;

    /* RFC 9000 §10.3: smaller than the trigger (no reset loops), at least 21 bytes. */
    if (pktlen <= 41 || vc->dcidlen > NGTCP2_MAX_CIDLEN)
        return;
    ngtcp2_cid_init(&cid, vc->dcid, vc->dcidlen);
    if (sp_quic_secret_reset_token(token, &cid) != 0)
        return;
    randlen = SP_MIN(pktlen - 1, sizeof(rnd)) - NGTCP2_STATELESS_RESET_TOKENLEN;
    sp_random_bytes(rnd, randlen);
    n = ngtcp2_pkt_write_stateless_reset(buf, sizeof(buf), token, rnd, randlen);
    if (n > 0)
        send_raw(l, buf, (size_t)n, to, tolen);
}

static void accept_conn(struct sp_quic_listener *l, const uint8_t *data, size_t len,
                        const struct sockaddr *from, socklen_t fromlen)
{
    ngtcp2_pkt_hd hd;
    ngtcp2_cid scid;
    struct sp_quic_conn *qc;

    if (!l->accepting || ngtcp2_accept(&hd, data, len) != 0)
        return;
    scid.datalen = SCID_LEN;
    sp_random_bytes(scid.data, scid.datalen);
    qc = l->ops->on_accept(l, l->ctx, &hd, &scid, from, fromlen);
    if (qc == NULL)
        return;
    qc->listener = l;
    qc->on_cid = on_cid;
    qc->odcid = hd.dcid;
    /* Until the client learns our CID it keeps using the one it picked (RFC 9000 §7.2). */
    cid_add(l, &hd.dcid, qc);
    cid_add(l, &scid, qc);
    if (sp_quic_conn_read(qc, from, fromlen, data, len, 0) == 0)
        sp_quic_conn_write(qc);
}

static void handle_packet(struct sp_quic_listener *l, const uint8_t *data, size_t len,
                          const struct sockaddr *from, socklen_t fromlen)
{
    ngtcp2_version_cid vc;
    struct sp_quic_conn *qc;
    int rv;

    rv = ngtcp2_pkt_decode_version_cid(&vc, data, len, SCID_LEN);
    if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
        send_version_negotiation(l, &vc, from, fromlen);
        return;
    }
    if (rv != 0)
        return;
    qc = cid_find(l, vc.dcid, vc.dcidlen);
    if (qc != NULL) {
        if (sp_quic_conn_read(qc, from, fromlen, data, len, 0) == 0)
            sp_quic_conn_write(qc);
        return;
    }
    if (data[0] & 0x80)
        accept_conn(l, data, len, from, fromlen);
    else
        send_stateless_reset(l, &vc, len, from, fromlen);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sp_quic_listener *l = SP_CONTAINER_OF(w, struct sp_quic_listener, io);
    static _Thread_local uint8_t buf[RX_BUF_BYTES];

    (void)loop;
    (void)revents;
    for (int i = 0; i < RX_BUDGET; i++) {
        struct sockaddr_storage from;
        struct iovec iov = {buf, sizeof(buf)};
        union {
            char b[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } cbuf;
        struct msghdr msg = {.msg_name = &from,
                             .msg_namelen = sizeof(from),
                             .msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = cbuf.b,
                             .msg_controllen = sizeof(cbuf.b)};
        struct cmsghdr *cm;
        ssize_t n = recvmsg(l->ep.fd, &msg, MSG_DONTWAIT);
        size_t seg;

        if (n == -1)
            return; /* EAGAIN: drained; other errors (ICMP) are not actionable here */
        seg = (size_t)n;
        for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
                int gso;

                memcpy(&gso, CMSG_DATA(cm), sizeof(gso));
                seg = (size_t)gso;
            }
        }
        /* GRO may coalesce several datagrams of one flow into one buffer (DESIGN §8). */
        for (size_t off = 0; off < (size_t)n; off += seg)
            handle_packet(l, buf + off, SP_MIN(seg, (size_t)n - off), (struct sockaddr *)&from,
                          msg.msg_namelen);
    }
}

int sp_quic_listener_new(struct ev_loop *loop, const struct sockaddr *addr, socklen_t addrlen,
                         const struct sp_quic_listener_ops *ops, void *ctx,
                         struct sp_quic_listener **ret)
{
    struct sp_quic_listener *l;
    int one = 1;
    int fd = socket(addr->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rv;

    if (fd == -1)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
        (addr->sa_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
        bind(fd, addr, addrlen) == -1) {
        rv = -errno;
        goto out_close_fd;
    }
    l = sp_xcalloc(1, sizeof(*l));
    l->loop = loop;
    l->ops = ops;
    l->ctx = ctx;
    l->accepting = true;
    l->nbuckets = 64;
    l->buckets = sp_xcalloc(l->nbuckets, sizeof(*l->buckets));
    l->ep.fd = fd;
    l->ep.local_len = sizeof(l->ep.local);
    (void)getsockname(fd, (struct sockaddr *)&l->ep.local, &l->ep.local_len);
    /* GSO/GRO are optional kernel features: fall back to one datagram per syscall. */
    l->ep.gso = setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
    ev_io_init(&l->io, on_readable, fd, EV_READ);
    ev_io_start(loop, &l->io);
    *ret = l;
    return 0;

out_close_fd:
    (void)close(fd);
    return rv;
}

void sp_quic_listener_free(struct sp_quic_listener *l)
{
    if (l == NULL)
        return;
    ev_io_stop(l->loop, &l->io);
    (void)close(l->ep.fd);
    for (size_t i = 0; i < l->nbuckets; i++) {
        struct cid_entry *e = l->buckets[i];

        while (e != NULL) {
            struct cid_entry *next = e->next;

            free(e);
            e = next;
        }
    }
    free(l->buckets);
    free(l);
}

struct sp_quic_endpoint *sp_quic_listener_endpoint(struct sp_quic_listener *l)
{
    return &l->ep;
}

void sp_quic_listener_stop_accepting(struct sp_quic_listener *l)
{
    l->accepting = false;
}
