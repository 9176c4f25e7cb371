#include "http/server.h"
#include "core/log.h"
#include "core/util.h"
#include "quic/listener.h"

#include <stdlib.h>
#include <string.h>

struct conn_node {
    struct conn_node *prev, *next; /* server's list */
    struct sp_h3_conn *c;          /* owned */
    struct sp_h3_server *srv;      /* borrowed */
};

struct sp_h3_server {
    struct ev_loop *loop;              /* borrowed */
    struct sp_defer *defer;            /* borrowed */
    struct sp_quic_listener *listener; /* owned */
    struct sp_h3_server_conf conf;
    struct sp_h3_handler handler;
    struct conn_node *conns; /* owned list */
    size_t nconns;
    bool shutting_down;
};

static void on_request(struct sp_h3_conn *c, struct sp_h3_stream *s, void *ctx)
{
    struct conn_node *node = ctx;

    node->srv->handler.on_request(c, s, node->srv->handler.ctx);
}

static void on_handshake(struct sp_h3_conn *c, void *ctx)
{
    struct conn_node *node = ctx;

    (void)c;
    if (node->srv->handler.on_handshake != NULL)
        node->srv->handler.on_handshake(node->srv->handler.ctx);
}

static void free_node(void *arg)
{
    struct conn_node *node = arg;

    sp_h3_conn_free(node->c);
    free(node);
}

static void on_conn_closed(struct sp_h3_conn *c, void *ctx, const char *reason)
{
    struct conn_node *node = ctx;
    struct sp_h3_server *srv = node->srv;

    SP_LOG_DEBUG("http", "event=client_conn_closed reason=%s", reason);
    sp_quic_listener_forget(srv->listener, sp_h3_conn_quic(c));
    if (node->prev != NULL)
        node->prev->next = node->next;
    else
        srv->conns = node->next;
    if (node->next != NULL)
        node->next->prev = node->prev;
    srv->nconns--;
    /* Never free inside the conn's own callback: at the end of the loop turn. */
    sp_defer_add(srv->defer, free_node, node);
}

static const struct sp_h3_server_ops server_ops = {
    .on_handshake = on_handshake,
    .on_request = on_request,
    .on_conn_closed = on_conn_closed,
};

static struct sp_quic_conn *on_accept(struct sp_quic_listener *l, void *ctx,
                                      const ngtcp2_pkt_hd *hd, const ngtcp2_cid *scid,
                                      const struct sockaddr *remote, socklen_t remote_len)
{
    struct sp_h3_server *srv = ctx;
    struct conn_node *node;
    gnutls_session_t tls;
    int rv;

    if (srv->shutting_down)
        return NULL;
    if (srv->nconns >= srv->conf.max_connections) {
        SP_LOG_WARN("http", "event=conn_refused reason=max_connections limit=%zu",
                    srv->conf.max_connections);
        return NULL;
    }
    node = sp_xcalloc(1, sizeof(*node));
    node->srv = srv;
    /* The TLS session's conn_ref is rebound to the conn by sp_h3_conn_new_server. */
    rv = sp_tls_server_session_new(srv->conf.tls, NULL, &tls);
    if (rv != 0)
        goto out_free_node;
    rv = sp_h3_conn_new_server(srv->loop, sp_quic_listener_endpoint(l), remote, remote_len, hd,
                               scid, &srv->conf.params, &srv->conf.limits, tls, &server_ops, node,
                               &node->c);
    if (rv != 0) {
        gnutls_deinit(tls);
        goto out_free_node;
    }
    sp_h3_conn_quic(node->c)->defer = srv->defer;
    node->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = node;
    srv->conns = node;
    srv->nconns++;
    return sp_h3_conn_quic(node->c);

out_free_node:
    SP_LOG_WARN("http", "event=conn_refused reason=setup_failed err=%d", rv);
    free(node);
    return NULL;
}

static const struct sp_quic_listener_ops listener_ops = {.on_accept = on_accept};

int sp_h3_server_new(struct ev_loop *loop, struct sp_defer *defer,
                     const struct sp_h3_server_conf *conf, const struct sp_h3_handler *handler,
                     struct sp_h3_server **ret)
{
    struct sp_h3_server *srv = sp_xcalloc(1, sizeof(*srv));
    int rv;

    srv->loop = loop;
    srv->defer = defer;
    srv->conf = *conf;
    srv->handler = *handler;
    rv = sp_quic_listener_new(loop, conf->addr, conf->addrlen, &listener_ops, srv, &srv->listener);
    if (rv != 0) {
        free(srv);
        return rv;
    }
    *ret = srv;
    return 0;
}

void sp_h3_server_shutdown(struct sp_h3_server *srv)
{
    srv->shutting_down = true;
    sp_quic_listener_stop_accepting(srv->listener);
    for (struct conn_node *n = srv->conns; n != NULL; n = n->next)
        sp_h3_conn_shutdown(n->c);
}

void sp_h3_server_close_idle(struct sp_h3_server *srv)
{
    struct conn_node *n = srv->conns;

    while (n != NULL) {
        struct conn_node *next = n->next; /* closing unlinks n */

        if (sp_h3_conn_active_streams(n->c) == 0)
            sp_h3_conn_close(n->c, "shutdown");
        n = next;
    }
}

size_t sp_h3_server_conn_count(const struct sp_h3_server *srv)
{
    return srv->nconns;
}

void sp_h3_server_free(struct sp_h3_server *srv)
{
    if (srv == NULL)
        return;
    /* Closing unlinks each node (on_conn_closed) and defers its free. */
    while (srv->conns != NULL)
        sp_h3_conn_close(srv->conns->c, "shutdown");
    sp_defer_run(srv->defer);
    sp_quic_listener_free(srv->listener);
    free(srv);
}
