#include "upstream/tcp.h"
#include "core/util.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

/* TCP keep-alive for pooled connections: probe after 30 s idle, every 10 s, give up after 3. */
#define KEEPIDLE_S 30
#define KEEPINTVL_S 10
#define KEEPCNT 3

enum tcp_state {
    TCP_CONNECTING = 0,
    TCP_HANDSHAKING = 1,
    TCP_OPEN = 2,
    TCP_FAILED = 3,
};

struct sp_tcp {
    struct ev_loop *loop; /* borrowed */
    int fd;               /* owned */
    gnutls_session_t tls; /* owned; NULL for cleartext */
    ev_io rio, wio;       /* readable / writable */
    ev_timer timer;       /* connect + handshake deadline */
    enum tcp_state state;
    const struct sp_tcp_events *ev; /* borrowed */
    void *ctx;                      /* borrowed */
    char alpn[16];                  /* expected ALPN (TLS) */
    sp_time_t started_ns, handshake_ns;
};

static void fail(struct sp_tcp *t, const char *reason)
{
    if (t->state == TCP_FAILED)
        return;
    t->state = TCP_FAILED;
    sp_tcp_stop(t);
    t->ev->on_error(t->ctx, reason);
}

static void connected(struct sp_tcp *t)
{
    t->state = TCP_OPEN;
    t->handshake_ns = sp_time_now() - t->started_ns;
    ev_timer_stop(t->loop, &t->timer);
    ev_io_stop(t->loop, &t->wio);
    ev_io_start(t->loop, &t->rio);
    t->ev->on_connected(t->ctx);
}

/* RFC 7301 §3.2: the server picks from our list or sends none. For h2 an agreed "h2" is
 * required (RFC 9113 §3.2); HTTP/1.1 servers often do not implement ALPN at all. */
static bool alpn_ok(struct sp_tcp *t)
{
    gnutls_datum_t sel;

    if (gnutls_alpn_get_selected_protocol(t->tls, &sel) != 0)
        return strcmp(t->alpn, "h2") != 0;
    return sel.size == strlen(t->alpn) && memcmp(sel.data, t->alpn, sel.size) == 0;
}

static void handshake_step(struct sp_tcp *t)
{
    int rv = gnutls_handshake(t->tls);

    if (rv == GNUTLS_E_AGAIN || rv == GNUTLS_E_INTERRUPTED) {
        /* Wait for whichever direction GnuTLS is blocked on. */
        if (gnutls_record_get_direction(t->tls) == 1) {
            ev_io_stop(t->loop, &t->rio);
            ev_io_start(t->loop, &t->wio);
        } else {
            ev_io_stop(t->loop, &t->wio);
            ev_io_start(t->loop, &t->rio);
        }
        return;
    }
    if (rv < 0) {
        fail(t, "tls_error");
        return;
    }
    if (!alpn_ok(t)) {
        fail(t, "tls_error");
        return;
    }
    connected(t);
}

static void connect_done(struct sp_tcp *t)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err != 0) {
        fail(t, "connect");
        return;
    }
    if (t->tls == NULL) {
        connected(t);
        return;
    }
    t->state = TCP_HANDSHAKING;
    handshake_step(t);
}

static void on_read_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sp_tcp *t = SP_CONTAINER_OF(w, struct sp_tcp, rio);

    (void)loop;
    (void)revents;
    if (t->state == TCP_HANDSHAKING)
        handshake_step(t);
    else if (t->state == TCP_OPEN)
        t->ev->on_readable(t->ctx);
}

static void on_write_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sp_tcp *t = SP_CONTAINER_OF(w, struct sp_tcp, wio);

    (void)revents;
    switch (t->state) {
    case TCP_CONNECTING:
        connect_done(t);
        break;
    case TCP_HANDSHAKING:
        handshake_step(t);
        break;
    case TCP_OPEN:
        ev_io_stop(loop, w);
        t->ev->on_writable(t->ctx);
        break;
    case TCP_FAILED:
        ev_io_stop(loop, w);
        break;
    }
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sp_tcp *t = SP_CONTAINER_OF(w, struct sp_tcp, timer);

    (void)loop;
    (void)revents;
    fail(t, t->state == TCP_HANDSHAKING ? "handshake" : "connect_timeout");
}

static void set_socket_options(int fd, const struct sp_tcp_params *p)
{
    int one = 1, idle = KEEPIDLE_S, intvl = KEEPINTVL_S, cnt = KEEPCNT;

    if (p->keepalive_ns > 0 || p->user_timeout_ns > 0) {
        /* Probe a connection silent for the shorter of the two, then every second: a request
         * waiting for its response sends nothing, and only unanswered probes let
         * TCP_USER_TIMEOUT find its peer dead (RFC 5482; Linux counts from the last ACK). */
        sp_time_t quiet = p->keepalive_ns == 0      ? p->user_timeout_ns
                          : p->user_timeout_ns == 0 ? p->keepalive_ns
                                                    : SP_MIN(p->keepalive_ns, p->user_timeout_ns);

        idle = (int)SP_MAX(quiet / SP_SEC, (sp_time_t)1);
        intvl = 1;
    }
    if (p->user_timeout_ns > 0) {
        unsigned ms = (unsigned)SP_MIN(p->user_timeout_ns / SP_MS, (sp_time_t)UINT32_MAX);

        (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
        cnt = SP_MAX(cnt, (int)(ms / 1000) + 2); /* the user timeout decides, not the count */
    }
    /* Best effort: a socket without these still works. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

const char *sp_tcp_error_reason(ssize_t err)
{
    switch (err) {
    case -ECONNRESET:
    case -EPIPE:
        return "peer_reset";
    case -ETIMEDOUT:
        return "unresponsive";
    case -EHOSTUNREACH:
    case -ENETUNREACH:
        return "host_unreachable";
    default:
        return "io_error";
    }
}

int sp_tcp_open(const struct sp_tcp_params *p, struct sp_tcp **ret)
{
    int fd = socket(p->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sp_tcp *t;
    int rv;

    if (fd == -1)
        return -errno;
    set_socket_options(fd, p);
    if (connect(fd, p->addr, p->addrlen) == -1 && errno != EINPROGRESS) {
        rv = -errno;
        goto out_close_fd;
    }
    t = sp_xcalloc(1, sizeof(*t));
    if (p->tls != NULL) {
        rv = sp_tls_client_session_new_tcp(p->tls, p->verify_name, p->alpn, &t->tls);
        if (rv != 0) {
            free(t);
            goto out_close_fd;
        }
        gnutls_transport_set_int(t->tls, fd);
        snprintf(t->alpn, sizeof(t->alpn), "%s", p->alpn);
    }
    t->loop = p->loop;
    t->fd = fd;
    t->ev = p->events;
    t->ctx = p->ctx;
    t->started_ns = sp_time_now();
    ev_io_init(&t->rio, on_read_io, fd, EV_READ);
    ev_io_init(&t->wio, on_write_io, fd, EV_WRITE);
    ev_timer_init(&t->timer, on_timeout, (double)p->connect_timeout_ns / (double)SP_SEC, 0.);
    ev_timer_start(t->loop, &t->timer);
    ev_io_start(t->loop, &t->wio); /* writable = connect finished (or failed) */
    *ret = t;
    return 0;

out_close_fd:
    (void)close(fd);
    return rv;
}

ssize_t sp_tcp_read(struct sp_tcp *t, uint8_t *buf, size_t cap)
{
    ssize_t n;

    if (t->state != TCP_OPEN)
        return -ENOTCONN;
    if (t->tls != NULL) {
        n = gnutls_record_recv(t->tls, buf, cap);
        if (n >= 0)
            return n;
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            return -EAGAIN;
        /* Many HTTP servers close without close_notify: that is an EOF, not an attack, for
         * message framing is checked by the protocol above. */
        if (n == GNUTLS_E_PREMATURE_TERMINATION)
            return 0;
        return -EPROTO;
    }
    n = recv(t->fd, buf, cap, 0);
    if (n >= 0)
        return n;
    return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

ssize_t sp_tcp_write(struct sp_tcp *t, const uint8_t *data, size_t len)
{
    ssize_t n;

    if (t->state != TCP_OPEN)
        return -ENOTCONN;
    if (t->tls != NULL) {
        n = gnutls_record_send(t->tls, data, len);
        if (n >= 0) {
            if ((size_t)n < len)
                ev_io_start(t->loop, &t->wio);
            return n;
        }
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            ev_io_start(t->loop, &t->wio);
            return -EAGAIN;
        }
        return -EPROTO;
    }
    n = send(t->fd, data, len, MSG_NOSIGNAL);
    if (n >= 0) {
        if ((size_t)n < len)
            ev_io_start(t->loop, &t->wio);
        return n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        ev_io_start(t->loop, &t->wio);
        return -EAGAIN;
    }
    return -errno;
}

void sp_tcp_pause_read(struct sp_tcp *t, bool paused)
{
    if (t->state != TCP_OPEN)
        return;
    if (paused)
        ev_io_stop(t->loop, &t->rio);
    else
        ev_io_start(t->loop, &t->rio);
}

void sp_tcp_stop(struct sp_tcp *t)
{
    ev_io_stop(t->loop, &t->rio);
    ev_io_stop(t->loop, &t->wio);
    ev_timer_stop(t->loop, &t->timer);
}

void sp_tcp_free(struct sp_tcp *t)
{
    if (t == NULL)
        return;
    sp_tcp_stop(t);
    if (t->tls != NULL) {
        if (t->state == TCP_OPEN)
            (void)gnutls_bye(t->tls, GNUTLS_SHUT_WR); /* best effort, non-blocking */
        gnutls_deinit(t->tls);
    }
    (void)close(t->fd);
    free(t);
}

sp_time_t sp_tcp_handshake_ns(const struct sp_tcp *t)
{
    return t->handshake_ns;
}
