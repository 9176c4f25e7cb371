/* tls.h: GnuTLS credentials and sessions for QUIC, both sides.
 *
 * Credentials (sp_tls_server, sp_tls_client) are built once on the main thread and then only
 * read; GnuTLS credentials may be shared by sessions on several threads. Sessions are created by
 * workers, one per QUIC connection, and handed to ngtcp2 as its native TLS handle. */
#ifndef SP_TLS_TLS_H
#define SP_TLS_TLS_H

#include <stdbool.h>
#include <gnutls/gnutls.h>

struct sp_tls_server;
struct sp_tls_client;

/* Loads a PEM certificate chain and key for a listener. Returns 0, -ENOENT/-EACCES when a file
 * cannot be read, or -EINVAL when GnuTLS rejects the contents; the GnuTLS reason is written to
 * errbuf. Main thread. */
int sp_tls_server_new(const char *cert_file, const char *key_file, struct sp_tls_server **ret,
                      char *errbuf, size_t errcap);
void sp_tls_server_free(struct sp_tls_server *s); /* NULL is fine */

/* Creates a server session for one QUIC connection: TLS 1.3 only, AES-GCM preferred, ALPN "h3"
 * mandatory. conn_ref (borrowed, must outlive the session) is what ngtcp2's crypto glue uses to
 * find the connection. Returns 0 or -ENOMEM/-EINVAL. Worker thread. */
int sp_tls_server_session_new(const struct sp_tls_server *s, void *conn_ref,
                              gnutls_session_t *ret_session);

/* Builds client credentials for one upstream pool. The trust store (ca_file, or the system store
 * when NULL) is loaded once here, never per connection. verify=false accepts any certificate
 * (for self-signed test backends); the caller warns. Returns 0 or negative errno; errbuf gets the
 * reason. Main thread. */
int sp_tls_client_new(const char *ca_file, bool verify, struct sp_tls_client **ret, char *errbuf,
                      size_t errcap);
void sp_tls_client_free(struct sp_tls_client *c); /* NULL is fine */

/* Adds a client certificate chain + key (PEM) to c, for mutual TLS towards backends. Returns 0
 * or negative errno; errbuf gets the GnuTLS reason. Main thread, before c is shared. */
int sp_tls_client_set_cert(struct sp_tls_client *c, const char *cert_file, const char *key_file,
                           char *errbuf, size_t errcap);

/* Creates a client session for TLS over TCP (HTTP/2, HTTP/1.1): TLS 1.2 or 1.3, the given ALPN
 * protocol offered, SNI server_name (skipped for IP literals), verification as configured.
 * Non-blocking; the caller sets the transport. Returns 0 or -ENOMEM/-EINVAL. Worker thread. */
int sp_tls_client_session_new_tcp(const struct sp_tls_client *c, const char *server_name,
                                  const char *alpn, gnutls_session_t *ret_session);

/* Creates a client session with ALPN "h3", SNI server_name (skipped when NULL or an IP literal)
 * and, when verifying, certificate verification against server_name. Worker thread. */
int sp_tls_client_session_new(const struct sp_tls_client *c, const char *server_name,
                              void *conn_ref, gnutls_session_t *ret_session);

#endif
