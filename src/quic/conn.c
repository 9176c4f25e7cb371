#include "quic/conn.h"
#include "core/log.h"
#include "core/defer.h"
#include "core/util.h"
#include "quic/secret.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>

#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

/* Server connection IDs are 16 bytes: long enough to be unguessable, short enough to be cheap. */
#define SCID_LEN 16
/* Packets coalesced into one GSO send. */
#define MAX_GSO_PKTS 32
#define MAX_PKT_BYTES 1500
/* Vectors pulled from the application per write. */
#define MAX_VECS 16

static _Thread_local uint8_t txbuf[MAX_GSO_PKTS * MAX_PKT_BYTES];

static struct sp_quic_conn *from_user(void *user_data)
{
    return user_data;
}

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
    struct sp_quic_conn *qc = SP_CONTAINER_OF(ref, struct sp_quic_conn, conn_ref);

    return qc->conn;
}

static void on_rand(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *rand_ctx)
{
    (void)rand_ctx;
    sp_random_bytes(dest, destlen);
}

static int on_get_new_cid(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
                          void *user_data)
{
    struct sp_quic_conn *qc = from_user(user_data);

    (void)conn;
    sp_random_bytes(cid->data, cidlen);
    cid->datalen = cidlen;
    /* Tokens derive from a process secret so an unknown CID can still be reset (RFC 9000 §10.3). */
    if (sp_quic_secret_reset_token(token, cid) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    if (qc->on_cid != NULL && qc->on_cid(qc, cid, true) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int on_remove_cid(ngtcp2_conn *conn, const ngtcp2_cid *cid, void *user_data)
{
    struct sp_quic_conn *qc = from_user(user_data);

    (void)conn;
    if (qc->on_cid != NULL)
        (void)qc->on_cid(qc, cid, false);
    return 0;
}

static int app_rv(int rv)
{
    return rv == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int on_handshake_completed(ngtcp2_conn *conn, void *user_data)
{
    struct sp_quic_conn *qc = from_user(user_data);

    (void)conn;
    qc->state = SP_QUIC_CONN_ESTABLISHED;
    qc->handshake_ns = sp_time_now() - qc->created_ns;
    return app_rv(qc->app->on_handshake_completed(qc));
}

static int on_recv_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t stream_id,
                               uint64_t offset, const uint8_t *data, size_t datalen,
                               void *user_data, void *stream_user_data)
{
    struct sp_quic_conn *qc = from_user(user_data);

    (void)conn;
    (void)offset;
    return app_rv(qc->app->on_stream_data(qc, stream_id, data, datalen,
                                          (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0,
                                          stream_user_data));
}

static int on_acked(ngtcp2_conn *conn, int64_t stream_id, uint64_t offset, uint64_t datalen,
                    void *user_data, void *stream_user_data)
{
    struct sp_quic_conn *qc = from_user(user_data);

    (void)conn;
    (void)offset;
    return app_rv(qc->app->on_acked(qc, stream_id, datalen, stream_user_data));
}

static int on_stream_close(ngtcp2_conn *conn, uint32_t flags, int64_t stream_id,
                           uint64_t app_error_code, void *user_data, void *stream_user_data)
{
    struct sp_quic_conn *qc = from_user(user_data);
    bool has = (flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) != 0;

    (void)conn;
    return app_rv(qc->app->on_stream_close(qc, stream_id, has, app_error_code, stream_user_data));
}

static int on_stream_reset(ngtcp2_conn *conn, int64_t stream_id, uint64_t final_size,
                           uint64_t app_error_code, void *user_data, void *stream_user_data)
{
    struct sp_quic_conn *qc = from_user(user_data);

    (void)conn;
    (void)final_size;
    return app_rv(qc->app->on_stream_reset(qc, stream_id, app_error_code, stream_user_data));
}

static int on_stop_sending(ngtcp2_conn *conn, int64_t stream_id, uint64_t app_error_code,
                           void *user_data, void *stream_user_data)
{
    struct sp_quic_conn *qc = from_user(user_data);

    (void)conn;
    return app_rv(qc->app->on_stop_sending(qc, stream_id, app_error_code, stream_user_data));
}

static int on_extend_max_stream_data(ngtcp2_conn *conn, int64_t stream_id, uint64_t max_data,
                                     void *user_data, void *stream_user_data)
{
    struct sp_quic_conn *qc = from_user(user_data);

    (void)conn;
    (void)max_data;
    return app_rv(qc->app->on_extend_max_stream_data(qc, stream_id, stream_user_data));
}

static int on_extend_max_streams(ngtcp2_conn *conn, uint64_t max_streams, void *user_data)
{
    struct sp_quic_conn *qc = from_user(user_data);

    (void)conn;
    return app_rv(qc->app->on_extend_max_streams_bidi(qc, max_streams));
}

static int on_stateless_reset(ngtcp2_conn *conn, const ngtcp2_pkt_stateless_reset *sr,
                              void *user_data)
{
    struct sp_quic_conn *qc = from_user(user_data);

    (void)conn;
    (void)sr;
    /* RFC 9000 §10.3: the peer lost this connection's state (restarted); ngtcp2 drains next. */
    qc->stateless_reset = true;
    return 0;
}

static void fill_callbacks(ngtcp2_callbacks *cb, bool server)
{
    memset(cb, 0, sizeof(*cb));
    if (server) {
        cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
        cb->extend_max_remote_streams_bidi = on_extend_max_streams;
    } else {
        cb->client_initial = ngtcp2_crypto_client_initial_cb;
        cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
        cb->extend_max_local_streams_bidi = on_extend_max_streams;
    }
    cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
    cb->encrypt = ngtcp2_crypto_encrypt_cb;
    cb->decrypt = ngtcp2_crypto_decrypt_cb;
    cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
    cb->update_key = ngtcp2_crypto_update_key_cb;
    cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
    cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
    cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
    cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
    cb->rand = on_rand;
    cb->get_new_connection_id = on_get_new_cid;
    cb->remove_connection_id = on_remove_cid;
    cb->handshake_completed = on_handshake_completed;
    cb->recv_stream_data = on_recv_stream_data;
    cb->acked_stream_data_offset = on_acked;
    cb->stream_close = on_stream_close;
    cb->stream_reset = on_stream_reset;
    cb->stream_stop_sending = on_stop_sending;
    cb->extend_max_stream_data = on_extend_max_stream_data;
    cb->recv_stateless_reset = on_stateless_reset;
}

static void fill_params(ngtcp2_transport_params *tp, const struct sp_quic_conn_params *p)
{
    ngtcp2_transport_params_default(tp);
    tp->initial_max_stream_data_bidi_local = p->stream_window_bytes;
    tp->initial_max_stream_data_bidi_remote = p->stream_window_bytes;
    tp->initial_max_stream_data_uni = p->stream_window_bytes;
    tp->initial_max_data = p->connection_window_bytes;
    tp->initial_max_streams_bidi = p->max_streams_bidi;
    /* RFC 9114 §6.2: control + QPACK encoder + decoder, with room for one more. */
    tp->initial_max_streams_uni = 4;
    tp->max_idle_timeout = p->idle_timeout_ns;
    tp->active_connection_id_limit = 4;
}

static void fill_settings(ngtcp2_settings *s, const struct sp_quic_conn_params *p, sp_time_t now)
{
    ngtcp2_settings_default(s);
    s->initial_ts = now;
    s->cc_algo = NGTCP2_CC_ALGO_CUBIC;
    /* Windows stay at what we configured: auto-tuning would break the memory bound. */
    s->max_window = p->connection_window_bytes;
    s->max_stream_window = p->stream_window_bytes;
    if (p->handshake_timeout_ns != 0)
        s->handshake_timeout = p->handshake_timeout_ns;
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);

static void common_init(struct sp_quic_conn *qc, struct ev_loop *loop, struct sp_quic_endpoint *ep,
                        const struct sockaddr *remote, socklen_t remote_len,
                        const struct sp_quic_app_ops *app, bool server)
{
    memset(qc, 0, sizeof(*qc));
    qc->conn_ref.get_conn = get_conn;
    qc->conn_ref.user_data = qc;
    qc->loop = loop;
    qc->ep = ep;
    memcpy(&qc->remote, remote, remote_len);
    qc->remote_len = remote_len;
    qc->app = app;
    qc->is_server = server;
    qc->created_ns = sp_time_now();
    ngtcp2_connection_close_error_default(&qc->last_error);
    ev_timer_init(&qc->timer, on_timer, 0., 0.);
}

static ngtcp2_path make_path(struct sp_quic_conn *qc)
{
    ngtcp2_path path = {
        .local = {(struct sockaddr *)&qc->ep->local, qc->ep->local_len},
        .remote = {(struct sockaddr *)&qc->remote, qc->remote_len},
        .user_data = NULL,
    };
    return path;
}

int sp_quic_conn_init_server(struct sp_quic_conn *qc, struct ev_loop *loop,
                             struct sp_quic_endpoint *ep, const struct sockaddr *remote,
                             socklen_t remote_len, const ngtcp2_pkt_hd *hd, const ngtcp2_cid *scid,
                             const struct sp_quic_conn_params *params, gnutls_session_t tls,
                             const struct sp_quic_app_ops *app)
{
    ngtcp2_callbacks cb;
    ngtcp2_settings settings;
    ngtcp2_transport_params tp;
    ngtcp2_path path;
    int rv;

    common_init(qc, loop, ep, remote, remote_len, app, true);
    fill_callbacks(&cb, true);
    fill_settings(&settings, params, qc->created_ns);
    settings.token = hd->token;
    fill_params(&tp, params);
    tp.original_dcid = hd->dcid;
    tp.stateless_reset_token_present = 1;
    if (sp_quic_secret_reset_token(tp.stateless_reset_token, scid) != 0)
        return -EINVAL;
    path = make_path(qc);
    rv = ngtcp2_conn_server_new(&qc->conn, &hd->scid, scid, &path, hd->version, &cb, &settings, &tp,
                                NULL, qc);
    if (rv != 0)
        return rv == NGTCP2_ERR_NOMEM ? -ENOMEM : -EINVAL;
    qc->tls = tls;
    ngtcp2_conn_set_tls_native_handle(qc->conn, tls);
    return 0;
}

int sp_quic_conn_init_client(struct sp_quic_conn *qc, struct ev_loop *loop,
                             struct sp_quic_endpoint *ep, const struct sockaddr *remote,
                             socklen_t remote_len, const struct sp_quic_conn_params *params,
                             gnutls_session_t tls, const struct sp_quic_app_ops *app)
{
    ngtcp2_callbacks cb;
    ngtcp2_settings settings;
    ngtcp2_transport_params tp;
    ngtcp2_path path;
    ngtcp2_cid dcid, scid;
    int rv;

    common_init(qc, loop, ep, remote, remote_len, app, false);
    fill_callbacks(&cb, false);
    fill_settings(&settings, params, qc->created_ns);
    fill_params(&tp, params);
    dcid.datalen = NGTCP2_MIN_INITIAL_DCIDLEN + 2;
    sp_random_bytes(dcid.data, dcid.datalen);
    scid.datalen = 8;
    sp_random_bytes(scid.data, scid.datalen);
    path = make_path(qc);
    rv = ngtcp2_conn_client_new(&qc->conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &settings,
                                &tp, NULL, qc);
    if (rv != 0) {
        gnutls_deinit(tls);
        return rv == NGTCP2_ERR_NOMEM ? -ENOMEM : -EINVAL;
    }
    qc->tls = tls;
    ngtcp2_conn_set_tls_native_handle(qc->conn, tls);
    qc->keepalive_ns = params->keepalive_ns;
    ngtcp2_conn_set_keep_alive_timeout(qc->conn, qc->keepalive_ns);
    return 0;
}

void sp_quic_conn_fini(struct sp_quic_conn *qc)
{
    if (qc->loop != NULL)
        ev_timer_stop(qc->loop, &qc->timer);
    ngtcp2_conn_del(qc->conn);
    qc->conn = NULL;
    if (qc->tls != NULL)
        gnutls_deinit(qc->tls);
    qc->tls = NULL;
}

static void send_packets(struct sp_quic_conn *qc, const uint8_t *data, size_t len, size_t seg)
{
    struct iovec iov = {(void *)data, len};
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } cmsg;
    struct msghdr msg = {0};
    ssize_t n;

    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (!qc->ep->connected) {
        msg.msg_name = &qc->remote;
        msg.msg_namelen = qc->remote_len;
    }
    if (len > seg && qc->ep->gso) {
        /* UDP GSO: the kernel splits one buffer into seg-sized datagrams (DESIGN §8). */
        struct cmsghdr *cm;
        uint16_t s = (uint16_t)seg;

        memset(&cmsg, 0, sizeof(cmsg));
        msg.msg_control = cmsg.buf;
        msg.msg_controllen = sizeof(cmsg.buf);
        cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        memcpy(CMSG_DATA(cm), &s, sizeof(s));
    }
    do {
        n = sendmsg(qc->ep->fd, &msg, 0);
    } while (n == -1 && errno == EINTR);
    /* A dropped datagram (EAGAIN, ENOBUFS, ECONNREFUSED) is recovered by QUIC loss detection. */
    if (n == -1 && errno != EAGAIN && errno != ENOBUFS && errno != ECONNREFUSED)
        SP_LOG_DEBUG("quic", "event=send_failed err=\"%s\"", strerror(errno));
}

static void conn_closed(struct sp_quic_conn *qc, const char *reason)
{
    if (qc->state == SP_QUIC_CONN_CLOSED)
        return;
    qc->state = SP_QUIC_CONN_CLOSED;
    ev_timer_stop(qc->loop, &qc->timer);
    qc->app->on_closed(qc, reason);
}

/* Sends CONNECTION_CLOSE (unless draining or already closing) and closes. */
static void conn_fail(struct sp_quic_conn *qc, const char *reason)
{
    ngtcp2_path_storage ps;
    ngtcp2_pkt_info pi;
    ngtcp2_ssize n;

    if (qc->state == SP_QUIC_CONN_CLOSED)
        return;
    if (!ngtcp2_conn_is_in_closing_period(qc->conn) &&
        !ngtcp2_conn_is_in_draining_period(qc->conn)) {
        ngtcp2_path_storage_zero(&ps);
        n = ngtcp2_conn_write_connection_close(qc->conn, &ps.path, &pi, txbuf, MAX_PKT_BYTES,
                                               &qc->last_error, sp_time_now());
        if (n > 0)
            send_packets(qc, txbuf, (size_t)n, (size_t)n);
    }
    conn_closed(qc, reason);
}

/* The packet of n bytes just written at txbuf + *off joins the batch. UDP GSO sends one buffer
 * as equal-sized datagrams of *seg bytes, of which only the last may be shorter, so a shorter
 * packet closes the batch and a longer one starts a new batch. */
static void batch_add(struct sp_quic_conn *qc, size_t *off, size_t *seg, size_t n)
{
    if (!qc->ep->gso) {
        send_packets(qc, txbuf + *off, n, n);
        return;
    }
    if (*off > 0 && n > *seg) {
        send_packets(qc, txbuf, *off, *seg);
        memmove(txbuf, txbuf + *off, n);
        *off = 0;
        *seg = 0;
    }
    if (*seg == 0)
        *seg = n;
    *off += n;
    if (n < *seg) {
        send_packets(qc, txbuf, *off, *seg);
        *off = 0;
        *seg = 0;
    }
}

static size_t vec_len(const ngtcp2_vec *vec, int n)
{
    size_t len = 0;

    for (int i = 0; i < n; i++)
        len += vec[i].len;
    return len;
}

static int write_loop(struct sp_quic_conn *qc)
{
    size_t max_pkt = ngtcp2_conn_get_max_tx_udp_payload_size(qc->conn);
    size_t max_pkts = ngtcp2_conn_get_send_quantum(qc->conn) / max_pkt;
    sp_time_t now = sp_time_now();
    ngtcp2_path_storage ps;
    ngtcp2_pkt_info pi;
    size_t off = 0, seg = 0, pkts = 0;

    max_pkts = SP_MAX(1, SP_MIN(max_pkts, (size_t)MAX_GSO_PKTS));
    if (max_pkt > MAX_PKT_BYTES)
        max_pkt = MAX_PKT_BYTES;
    ngtcp2_path_storage_zero(&ps);
    for (;;) {
        ngtcp2_vec vec[MAX_VECS];
        int64_t stream_id = -1;
        bool fin = false;
        int nvec = 0;
        uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
        ngtcp2_ssize ndatalen, n;

        if (qc->state == SP_QUIC_CONN_ESTABLISHED && ngtcp2_conn_get_max_data_left(qc->conn)) {
            nvec = qc->app->pull(qc, &stream_id, &fin, vec, MAX_VECS);
            if (nvec < 0)
                return nvec;
        }
        if (fin)
            flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
        n = ngtcp2_conn_writev_stream(qc->conn, &ps.path, &pi, txbuf + off, max_pkt, &ndatalen,
                                      flags, stream_id, vec, (size_t)nvec, now);
        /* ngtcp2 sends the FIN only together with the last byte pulled. */
        fin = fin && ndatalen >= 0 && (size_t)ndatalen == vec_len(vec, nvec);
        if (n < 0) {
            switch (n) {
            case NGTCP2_ERR_STREAM_DATA_BLOCKED:
                qc->app->on_blocked(qc, stream_id, false);
                continue;
            case NGTCP2_ERR_STREAM_SHUT_WR:
                qc->app->on_blocked(qc, stream_id, true);
                continue;
            case NGTCP2_ERR_WRITE_MORE:
                if (qc->app->on_written(qc, stream_id, (size_t)ndatalen, fin) != 0)
                    return -EPROTO;
                continue;
            default:
                ngtcp2_connection_close_error_set_transport_error_liberr(&qc->last_error, (int)n,
                                                                         NULL, 0);
                return -EPROTO;
            }
        }
        if (ndatalen >= 0 && qc->app->on_written(qc, stream_id, (size_t)ndatalen, fin) != 0)
            return -EPROTO;
        if (n == 0)
            break;
        pkts++;
        batch_add(qc, &off, &seg, (size_t)n);
        if (pkts == max_pkts)
            break; /* send quantum used: the timer brings us back (pacing) */
    }
    if (off > 0)
        send_packets(qc, txbuf, off, seg);
    /* Pace only once the handshake has produced RTT samples: before that ngtcp2 paces with the
     * RFC 9002 initial RTT of 333 ms, which holds the server's second handshake datagram back
     * ~25 ms and adds that to every new connection's first request. The handshake flight is
     * bounded by anti-amplification and the initial window anyway. */
    if (ngtcp2_conn_get_handshake_completed(qc->conn))
        ngtcp2_conn_update_pkt_tx_time(qc->conn, now);
    return 0;
}

static void rearm_timer(struct sp_quic_conn *qc)
{
    ngtcp2_tstamp expiry = ngtcp2_conn_get_expiry(qc->conn);
    sp_time_t now = sp_time_now();
    double t = expiry <= now ? 1e-9 : (double)(expiry - now) / (double)SP_SEC;

    qc->timer.repeat = t;
    ev_timer_again(qc->loop, &qc->timer);
}

static void write_now(struct sp_quic_conn *qc);

static void on_flush(void *arg)
{
    struct sp_quic_conn *qc = arg;

    qc->write_scheduled = false;
    write_now(qc);
}

void sp_quic_conn_write(struct sp_quic_conn *qc)
{
    if (qc->state == SP_QUIC_CONN_CLOSED)
        return;
    if (qc->defer != NULL) {
        /* Coalesce: everything a loop turn produced goes out in one pass (fewer, fuller
         * packets, GSO batches) when the turn ends. The flush is queued before any deferred
         * free of this conn, and a closed conn queues nothing, so it never runs on freed
         * memory. */
        if (!qc->write_scheduled) {
            qc->write_scheduled = true;
            sp_defer_add(qc->defer, on_flush, qc);
        }
        return;
    }
    write_now(qc);
}

static void write_now(struct sp_quic_conn *qc)
{
    if (qc->state == SP_QUIC_CONN_CLOSED)
        return;
    if (qc->in_write || qc->in_read) {
        /* Called from a callback inside ngtcp2 (which is not re-entrant): run one more pass
         * when the outer read or write ends. */
        qc->write_again = true;
        return;
    }
    qc->in_write = true;
    if (qc->ping_pending && qc->state == SP_QUIC_CONN_ESTABLISHED) {
        /* ngtcp2 0.12 has no PING call: an expired keep-alive makes the next packet
         * ack-eliciting (a PING if nothing else is), and sending restarts the keep-alive. */
        ngtcp2_conn_set_keep_alive_timeout(qc->conn, 1);
    }
    do {
        qc->write_again = false;
        if (write_loop(qc) != 0) {
            qc->in_write = false;
            conn_fail(qc, "write_error");
            return;
        }
    } while (qc->write_again && qc->state != SP_QUIC_CONN_CLOSED);
    if (qc->ping_pending) {
        qc->ping_pending = false;
        if (qc->state != SP_QUIC_CONN_CLOSED)
            ngtcp2_conn_set_keep_alive_timeout(qc->conn, qc->keepalive_ns);
    }
    qc->in_write = false;
    if (qc->state != SP_QUIC_CONN_CLOSED)
        rearm_timer(qc);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sp_quic_conn *qc = SP_CONTAINER_OF(w, struct sp_quic_conn, timer);
    int rv;

    (void)loop;
    (void)revents;
    rv = ngtcp2_conn_handle_expiry(qc->conn, sp_time_now());
    switch (rv) {
    case 0:
        write_now(qc); /* loss recovery and pacing deadlines: no reason to wait */
        return;
    case NGTCP2_ERR_IDLE_CLOSE:
        /* RFC 9000 §10.1: idle timeout closes silently. */
        conn_closed(qc, "idle");
        return;
    case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
        conn_closed(qc, "handshake_timeout");
        return;
    default:
        ngtcp2_connection_close_error_set_transport_error_liberr(&qc->last_error, rv, NULL, 0);
        conn_fail(qc, ngtcp2_strerror(rv));
        return;
    }
}

int sp_quic_conn_read(struct sp_quic_conn *qc, const struct sockaddr *remote, socklen_t remote_len,
                      const uint8_t *data, size_t len, uint8_t ecn)
{
    ngtcp2_path path = make_path(qc);
    ngtcp2_pkt_info pi = {.ecn = ecn};
    int rv;

    if (qc->state == SP_QUIC_CONN_CLOSED)
        return -ECONNABORTED;
    path.remote.addr = (struct sockaddr *)remote;
    path.remote.addrlen = remote_len;
    qc->in_read = true;
    rv = ngtcp2_conn_read_pkt(qc->conn, &path, &pi, data, len, sp_time_now());
    qc->in_read = false;
    if (rv == 0) {
        if (qc->write_again)
            sp_quic_conn_write(qc);
        return 0;
    }
    switch (rv) {
    case NGTCP2_ERR_DRAINING:
        conn_closed(qc, qc->stateless_reset ? "stateless_reset" : "peer_closed");
        break;
    case NGTCP2_ERR_DROP_CONN:
        conn_closed(qc, "dropped");
        break;
    case NGTCP2_ERR_CRYPTO:
        ngtcp2_connection_close_error_set_transport_error_tls_alert(
            &qc->last_error, ngtcp2_conn_get_tls_alert(qc->conn), NULL, 0);
        conn_fail(qc, "tls_error");
        break;
    default:
        if (qc->last_error.error_code == 0)
            ngtcp2_connection_close_error_set_transport_error_liberr(&qc->last_error, rv, NULL, 0);
        conn_fail(qc, ngtcp2_strerror(rv));
        break;
    }
    return -ECONNABORTED;
}

void sp_quic_conn_close(struct sp_quic_conn *qc, uint64_t app_error_code, const char *reason)
{
    if (qc->state == SP_QUIC_CONN_CLOSED)
        return;
    if (qc->state == SP_QUIC_CONN_ESTABLISHED)
        ngtcp2_connection_close_error_set_application_error(&qc->last_error, app_error_code, NULL,
                                                            0);
    conn_fail(qc, reason);
}

void sp_quic_conn_consume(struct sp_quic_conn *qc, int64_t stream_id, uint64_t len)
{
    if (qc->state == SP_QUIC_CONN_CLOSED || len == 0)
        return;
    if (stream_id >= 0)
        (void)ngtcp2_conn_extend_max_stream_offset(qc->conn, stream_id, len);
    ngtcp2_conn_extend_max_offset(qc->conn, len);
}

void sp_quic_conn_consume_stream(struct sp_quic_conn *qc, int64_t stream_id, uint64_t len)
{
    if (qc->state == SP_QUIC_CONN_CLOSED || len == 0)
        return;
    (void)ngtcp2_conn_extend_max_stream_offset(qc->conn, stream_id, len);
}

void sp_quic_conn_shutdown_stream(struct sp_quic_conn *qc, int64_t stream_id,
                                  uint64_t app_error_code)
{
    if (qc->state == SP_QUIC_CONN_CLOSED)
        return;
    /* Fails only for an unknown or closed stream, which needs nothing more. */
    (void)ngtcp2_conn_shutdown_stream(qc->conn, stream_id, app_error_code);
}

void sp_quic_conn_ping(struct sp_quic_conn *qc)
{
    qc->ping_pending = true;
    sp_quic_conn_write(qc);
}

bool sp_quic_conn_unresponsive(struct sp_quic_conn *qc, sp_time_t now, sp_time_t floor_ns)
{
    ngtcp2_conn_stat st;
    sp_time_t pto, limit;

    if (qc->state != SP_QUIC_CONN_ESTABLISHED)
        return false;
    ngtcp2_conn_get_conn_stat(qc->conn, &st);
    if (st.pto_count == 0) {
        /* No probe timeout fired since the last acknowledgement of new data: progressing. */
        qc->unacked_since = 0;
        return false;
    }
    pto = ngtcp2_conn_get_pto(qc->conn);
    /* A probe timeout fired, so the data has been unacknowledged for at least one PTO. */
    if (qc->unacked_since == 0)
        qc->unacked_since = now > pto ? now - pto : 1;
    limit = SP_MAX(3 * pto, floor_ns);
    return now - qc->unacked_since >= limit;
}

sp_time_t sp_quic_conn_rtt_ns(const struct sp_quic_conn *qc)
{
    ngtcp2_conn_stat st;

    if (qc->conn == NULL || qc->handshake_ns == 0)
        return 0;
    ngtcp2_conn_get_conn_stat(qc->conn, &st);
    return st.smoothed_rtt; /* ngtcp2_duration is in ns, as sp_time_t */
}
