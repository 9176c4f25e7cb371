"""Mutual TLS towards backends: the upstream's `tls: {client_cert, client_key}` (docs/config.md,
"tls") makes spooky present a client certificate. The backend is caddy 2.6.2 with a TLS
connection policy `client_authentication: {trusted_ca_certs_pem_files: [CA], mode:
require_and_verify}`, so it refuses connections that bring no certificate, or one it cannot
verify. Its HTTPS listener offers ALPN h2 and http/1.1, so the same backend serves spooky's
`protocol: h2` and `protocol: http1` + `tls: true`.

With a client certificate signed by the CA caddy trusts, requests succeed (200; GET /tlsclient
answers with the subject caddy verified). Without one, or with one from another CA, the
handshake is refused and spooky answers 502."""

import functools

import pytest

from spookytest import binaries, certs as certs_mod, h2backends
from spookytest.clients import request_fields

CLIENT_CN = "spooky mtls client"
TIMEOUTS = {"connect_ms": 2000}
# (backend protocol, extra keys of the backend entry)
PROTOCOLS = [
    pytest.param("h2", {}, id="h2"),
    pytest.param("http1", {"tls": True}, id="http1-tls"),
]
# The access log's cause= for a refused client certificate. caddy (Go crypto/tls) negotiates
# TLS 1.3, where the client's handshake is complete once it has sent its Certificate and
# Finished; the server checks the certificate only then and answers with an alert. For h2,
# spooky counts the connection as up only after the server's SETTINGS, which never come, so the
# failure is a handshake (or connect) failure. For HTTP/1.1 the connection is up right after
# the TLS handshake and the alert arrives while the response is awaited: cause=reset (class
# backend_protocol, retried like any connection lost before a response).
FAIL_CAUSES = {"h2": ("handshake", "connect"),
               "http1": ("handshake", "connect", "reset", "conn_lost", "refused")}


@pytest.fixture(scope="module")
def client_pki(certs, tmp_path_factory):
    """Client certificates: `good` signed by the test CA (the one caddy trusts), `foreign`
    signed by another CA. Each is a (cert, key) pair of paths."""
    d = tmp_path_factory.mktemp("mtls-pki")
    good = certs_mod.make_client_cert(d, certs.ca, certs.ca_key, name="client", cn=CLIENT_CN)
    other_ca, other_ca_key = certs_mod.make_ca(d, name="other-ca", cn="some other CA")
    foreign = certs_mod.make_client_cert(d, other_ca, other_ca_key, name="foreign-client",
                                         cn="foreign client")
    return {"good": good, "foreign": foreign}


@pytest.fixture
def make_mtls_caddy(procs, tmp_path, certs, htdocs):
    """make_mtls_caddy(backend_id) -> h2backends.CaddyH2 over TLS (ALPN h2 and http/1.1) that
    requires and verifies client certificates signed by the test CA."""
    if binaries.system_tool("caddy") is None:
        pytest.skip("caddy not installed")
    return functools.partial(h2backends.start_caddy_h2, procs, tmp_path, certs, htdocs,
                             tls=True, client_ca=certs.ca)


def _backend(be, protocol, extra):
    return dict(be.spooky_backend(protocol=protocol), **extra)


def _client_tls(pair):
    cert, key = pair
    return {"client_cert": str(cert), "client_key": str(key)}


@pytest.mark.parametrize("protocol,extra", PROTOCOLS)
def test_client_certificate_is_presented_and_accepted(protocol, extra, make_mtls_caddy,
                                                      spooky_for, testc, gtls, content,
                                                      client_pki):
    be = make_mtls_caddy("caddy-mtls")
    sp = spooky_for([_backend(be, protocol, extra)], tls=_client_tls(client_pki["good"]),
                    timeouts=TIMEOUTS)

    # caddy tells which client certificate it verified.
    (resp,) = testc(sp.port, request_fields("/tlsclient"), print_body=True).responses
    assert resp.status == 200, resp
    assert resp.error is None and resp.reset is None, resp
    assert f"CN={CLIENT_CN}" in resp.body, resp.body
    assert resp.header("x-backend") == be.id

    # A file, checked byte for byte, with the other client.
    f = content["1m.bin"]
    st = gtls(sp.port, ["/1m.bin"]).streams[0]
    assert st.status == 200
    assert (st.body_len, st.body_sha256) == (f.size, f.sha256)

    entries = sp.wait_access(count=2, status="200")
    assert all(e["cause"] == "-" for e in entries), entries
    connected = sp.entries(area="upstream", event="connected", backend=be.id)
    assert connected and all(e["proto"] == protocol for e in connected), connected
    assert not sp.entries(area="upstream", event="connect_failed", backend=be.id)


@pytest.mark.parametrize("protocol,extra", PROTOCOLS)
def test_without_client_certificate_the_backend_refuses_and_spooky_gives_502(
        protocol, extra, make_mtls_caddy, spooky_for, testc):
    be = make_mtls_caddy("caddy-mtls")
    sp = spooky_for([_backend(be, protocol, extra)], timeouts=TIMEOUTS)
    (resp,) = testc(sp.port, request_fields("/1k.bin")).responses
    assert resp.status == 502, resp
    entry = sp.wait_access(path="/1k.bin")[0]
    assert entry["status"] == "502"
    assert entry["cause"] in FAIL_CAUSES[protocol], entry
    assert not sp.access_log(status="200")


@pytest.mark.parametrize("protocol,extra", PROTOCOLS)
def test_client_certificate_from_another_ca_is_refused_and_spooky_gives_502(
        protocol, extra, make_mtls_caddy, spooky_for, testc, client_pki):
    be = make_mtls_caddy("caddy-mtls")
    sp = spooky_for([_backend(be, protocol, extra)], tls=_client_tls(client_pki["foreign"]),
                    timeouts=TIMEOUTS)
    (resp,) = testc(sp.port, request_fields("/1k.bin")).responses
    assert resp.status == 502, resp
    entry = sp.wait_access(path="/1k.bin")[0]
    assert entry["status"] == "502"
    assert entry["cause"] in FAIL_CAUSES[protocol], entry
    assert not sp.access_log(status="200")
