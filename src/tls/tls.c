#include "tls/tls.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ngtcp2/ngtcp2_crypto_gnutls.h>

/* TLS 1.3 only (RFC 9001 §4.2). AES-128-GCM first: ~6x cheaper than ChaCha20 here (DESIGN §8).
 * Compat mode must be off for QUIC (RFC 9001 §8.4). */
static const char priority[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"
    "-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:%DISABLE_TLS13_COMPAT_MODE";

static const char alpn_h3[] = "h3";

/* TCP backends may still speak TLS 1.2; AES-GCM first for the same reason as on QUIC. */
static const char tcp_priority[] = "NORMAL:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1:"
                                   "-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305";

/* Parsed once per process and shared read-only by every session: parsing a priority string per
 * session cost ~8 KiB and a few thousand instructions per connection. */
static gnutls_priority_t quic_prio, tcp_prio;
static pthread_once_t prio_once = PTHREAD_ONCE_INIT;
static int prio_rv;

static void prio_init(void)
{
    prio_rv = gnutls_priority_init(&quic_prio, priority, NULL);
    if (prio_rv == 0)
        prio_rv = gnutls_priority_init(&tcp_prio, tcp_priority, NULL);
}

static int prio_get(void)
{
    (void)pthread_once(&prio_once, prio_init);
    return prio_rv;
}

struct sp_tls_server {
    gnutls_certificate_credentials_t cred; /* owned */
    gnutls_datum_t ticket_key;             /* owned; session ticket encryption key */
};

struct sp_tls_client {
    gnutls_certificate_credentials_t cred; /* owned; trust store loaded once */
    bool verify;
};

static int gnutls_to_errno(int rv)
{
    switch (rv) {
    case GNUTLS_E_FILE_ERROR:
        return -ENOENT;
    case GNUTLS_E_MEMORY_ERROR:
        return -ENOMEM;
    default:
        return -EINVAL;
    }
}

int sp_tls_server_new(const char *cert_file, const char *key_file, struct sp_tls_server **ret,
                      char *errbuf, size_t errcap)
{
    struct sp_tls_server *s = sp_xcalloc(1, sizeof(*s));
    int rv;

    rv = gnutls_certificate_allocate_credentials(&s->cred);
    if (rv != 0)
        goto out_free;
    rv = gnutls_certificate_set_x509_key_file(s->cred, cert_file, key_file, GNUTLS_X509_FMT_PEM);
    if (rv != 0)
        goto out_free;
    rv = gnutls_session_ticket_key_generate(&s->ticket_key);
    if (rv != 0)
        goto out_free;
    *ret = s;
    return 0;

out_free:
    snprintf(errbuf, errcap, "%s", gnutls_strerror(rv));
    sp_tls_server_free(s);
    return gnutls_to_errno(rv);
}

void sp_tls_server_free(struct sp_tls_server *s)
{
    if (s == NULL)
        return;
    if (s->cred != NULL)
        gnutls_certificate_free_credentials(s->cred);
    gnutls_free(s->ticket_key.data);
    free(s);
}

static int on_client_hello(gnutls_session_t session, unsigned int htype, unsigned when,
                           unsigned int incoming, const gnutls_datum_t *msg)
{
    gnutls_datum_t alpn;

    (void)htype;
    (void)when;
    (void)incoming;
    (void)msg;
    /* RFC 9001 §8.1: without an agreed application protocol the handshake must fail. */
    if (gnutls_alpn_get_selected_protocol(session, &alpn) != 0)
        return -1;
    if (alpn.size != sizeof(alpn_h3) - 1 || memcmp(alpn.data, alpn_h3, alpn.size) != 0)
        return -1;
    return 0;
}

int sp_tls_server_session_new(const struct sp_tls_server *s, void *conn_ref,
                              gnutls_session_t *ret_session)
{
    gnutls_datum_t alpn = {(unsigned char *)alpn_h3, sizeof(alpn_h3) - 1};
    gnutls_session_t session;
    int rv;

    rv = gnutls_init(&session,
                     GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET | GNUTLS_NO_END_OF_EARLY_DATA);
    if (rv != 0)
        return gnutls_to_errno(rv);
    if (prio_get() != 0 || gnutls_priority_set(session, quic_prio) != 0 ||
        gnutls_session_ticket_enable_server(session, &s->ticket_key) != 0 ||
        ngtcp2_crypto_gnutls_configure_server_session(session) != 0 ||
        gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, s->cred) != 0) {
        rv = -EINVAL;
        goto out_deinit;
    }
    gnutls_handshake_set_hook_function(session, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_POST,
                                       on_client_hello);
    gnutls_alpn_set_protocols(session, &alpn, 1,
                              GNUTLS_ALPN_MANDATORY | GNUTLS_ALPN_SERVER_PRECEDENCE);
    gnutls_session_set_ptr(session, conn_ref);
    *ret_session = session;
    return 0;

out_deinit:
    gnutls_deinit(session);
    return rv;
}

int sp_tls_client_new(const char *ca_file, bool verify, struct sp_tls_client **ret, char *errbuf,
                      size_t errcap)
{
    struct sp_tls_client *c = sp_xcalloc(1, sizeof(*c));
    int rv;

    c->verify = verify;
    rv = gnutls_certificate_allocate_credentials(&c->cred);
    if (rv != 0)
        goto out_free;
    if (verify) {
        if (ca_file != NULL)
            rv = gnutls_certificate_set_x509_trust_file(c->cred, ca_file, GNUTLS_X509_FMT_PEM);
        else
            rv = gnutls_certificate_set_x509_system_trust(c->cred);
        if (rv < 0)
            goto out_free;
        if (rv == 0) {
            snprintf(errbuf, errcap, "no CA certificate found in %s",
                     ca_file != NULL ? ca_file : "the system trust store");
            sp_tls_client_free(c);
            return -EINVAL;
        }
    }
    *ret = c;
    return 0;

out_free:
    snprintf(errbuf, errcap, "%s", gnutls_strerror(rv));
    sp_tls_client_free(c);
    return gnutls_to_errno(rv);
}

void sp_tls_client_free(struct sp_tls_client *c)
{
    if (c == NULL)
        return;
    if (c->cred != NULL)
        gnutls_certificate_free_credentials(c->cred);
    free(c);
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

int sp_tls_client_session_new(const struct sp_tls_client *c, const char *server_name,
                              void *conn_ref, gnutls_session_t *ret_session)
{
    gnutls_datum_t alpn = {(unsigned char *)alpn_h3, sizeof(alpn_h3) - 1};
    gnutls_session_t session;
    int rv;

    rv = gnutls_init(&session, GNUTLS_CLIENT | GNUTLS_NO_END_OF_EARLY_DATA);
    if (rv != 0)
        return gnutls_to_errno(rv);
    if (ngtcp2_crypto_gnutls_configure_client_session(session) != 0 || prio_get() != 0 ||
        gnutls_priority_set(session, quic_prio) != 0 ||
        gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, c->cred) != 0) {
        rv = -EINVAL;
        goto out_deinit;
    }
    gnutls_alpn_set_protocols(session, &alpn, 1, GNUTLS_ALPN_MANDATORY);
    if (server_name != NULL && !is_ip_literal(server_name))
        (void)gnutls_server_name_set(session, GNUTLS_NAME_DNS, server_name, strlen(server_name));
    if (c->verify)
        gnutls_session_set_verify_cert(session, server_name, 0);
    gnutls_session_set_ptr(session, conn_ref);
    *ret_session = session;
    return 0;

out_deinit:
    gnutls_deinit(session);
    return rv;
}

int sp_tls_client_set_cert(struct sp_tls_client *c, const char *cert_file, const char *key_file,
                           char *errbuf, size_t errcap)
{
    int rv =
        gnutls_certificate_set_x509_key_file(c->cred, cert_file, key_file, GNUTLS_X509_FMT_PEM);

    if (rv != 0) {
        snprintf(errbuf, errcap, "%s", gnutls_strerror(rv));
        return gnutls_to_errno(rv);
    }
    return 0;
}

int sp_tls_client_session_new_tcp(const struct sp_tls_client *c, const char *server_name,
                                  const char *alpn, gnutls_session_t *ret_session)
{
    gnutls_datum_t proto = {(unsigned char *)alpn, (unsigned)strlen(alpn)};
    gnutls_session_t session;
    int rv;

    rv = gnutls_init(&session, GNUTLS_CLIENT | GNUTLS_NONBLOCK);
    if (rv != 0)
        return gnutls_to_errno(rv);
    if (prio_get() != 0 || gnutls_priority_set(session, tcp_prio) != 0 ||
        gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, c->cred) != 0) {
        gnutls_deinit(session);
        return -EINVAL;
    }
    (void)gnutls_alpn_set_protocols(session, &proto, 1, 0);
    if (server_name != NULL && !is_ip_literal(server_name))
        (void)gnutls_server_name_set(session, GNUTLS_NAME_DNS, server_name, strlen(server_name));
    if (c->verify)
        gnutls_session_set_verify_cert(session, server_name, 0);
    *ret_session = session;
    return 0;
}
