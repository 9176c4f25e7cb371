"""GET through spooky to each kind of HTTP/3 backend, with both clients; access log lines;
backend statuses passed through unchanged; routing by path prefix, host and method."""

import pytest

from spookytest import spooky as spooky_mod
from spookytest.clients import H3_NO_ERROR, request_fields


def _check_access(sp, path, status, backend, upstream="app"):
    (entry,) = sp.wait_access(path=path)
    assert entry["method"] in ("GET", "POST")
    assert entry["status"] == str(status)
    assert entry["upstream"] == upstream
    assert entry["backend"] == backend
    assert entry["cause"] == "-"
    assert entry.get("request_id") not in (None, "", "-")
    assert float(entry["duration_ms"]) >= 0
    return entry


def test_get_through_spooky_to_caddy_with_gtlsclient(caddy, spooky_for, gtls, content):
    sp = spooky_for([caddy])
    r = gtls(sp.port, ["/1k.bin"])
    assert r.handshake_completed
    st = r.streams[0]
    assert st.status == 200
    assert st.error_code == H3_NO_ERROR
    assert st.header("x-backend") == "caddy-1"
    assert (st.body_len, st.body_sha256) == (1024, content["1k.bin"].sha256)
    entry = _check_access(sp, "/1k.bin", 200, "caddy-1")
    assert entry["authority"] == f"localhost:{sp.port}"


def test_get_through_spooky_to_gtlsserver_with_gtlsclient(gtlsserver, spooky_for, gtls,
                                                          content):
    sp = spooky_for([gtlsserver])
    r = gtls(sp.port, ["/1m.bin"])
    st = r.streams[0]
    assert st.status == 200
    assert st.header("server") == "nghttp3/ngtcp2 server"
    assert (st.body_len, st.body_sha256) == (content["1m.bin"].size, content["1m.bin"].sha256)
    _check_access(sp, "/1m.bin", 200, "gtls-1")


def test_get_through_spooky_to_testd_with_gtlsclient(testd, spooky_for, gtls):
    sp = spooky_for([testd])
    st = gtls(sp.port, ["/size/1000"]).streams[0]
    assert st.status == 200
    assert st.header("x-backend-id") == "testd-1"
    assert st.body_len == 1000
    _check_access(sp, "/size/1000", 200, "testd-1")


@pytest.mark.parametrize("kind", ["caddy", "gtlsserver", "testd"])
def test_get_through_spooky_with_testc(kind, request, spooky_for, testc, content):
    backend = request.getfixturevalue(kind)
    sp = spooky_for([backend])
    path = "/size/1024" if kind == "testd" else "/1k.bin"
    r = testc(sp.port, request_fields(path))
    assert r.returncode == 0
    (resp,) = r.responses
    assert resp.status == 200
    assert resp.reset is None and resp.error is None
    assert resp.body_len == 1024
    if kind != "testd":
        assert resp.body_sha256 == content["1k.bin"].sha256
    _check_access(sp, path, 200, backend.id)


def test_backend_error_statuses_pass_through_unchanged(testd, spooky_for, testc):
    sp = spooky_for([testd])
    for code in (404, 500, 503):
        (resp,) = testc(sp.port, request_fields(f"/status/{code}")).responses
        assert resp.status == code
        assert resp.header("x-backend-id") == "testd-1"      # the backend's own answer
        assert resp.body_len == len(f"status {code}")
    entries = sp.wait_access(count=3, path=lambda p: (p or "").startswith("/status/"))
    assert all(e["cause"] == "-" for e in entries)


def test_missing_file_404_from_caddy_passes_through(caddy, spooky_for, gtls):
    sp = spooky_for([caddy])
    st = gtls(sp.port, ["/no-such-file"]).streams[0]
    assert st.status == 404
    assert st.header("x-backend") == "caddy-1"


# --- routing ----------------------------------------------------------------------------------

def test_longest_path_prefix_wins(make_caddy, make_spooky, certs, gtls):
    a, b = make_caddy("caddy-a"), make_caddy("caddy-b")
    sp = make_spooky([
        spooky_mod.upstream("root", [b], certs, routes=[{"path_prefix": "/"}]),
        spooky_mod.upstream("who", [a], certs, routes=[{"path_prefix": "/whoami"}]),
    ])
    who, file_ = gtls(sp.port, ["/whoami", "/1k.bin"]).streams
    assert who.header("x-backend") == "caddy-a"
    assert file_.header("x-backend") == "caddy-b"
    assert sp.wait_access(path="/whoami")[0]["upstream"] == "who"
    assert sp.wait_access(path="/1k.bin")[0]["upstream"] == "root"


def test_host_routes_exact_and_wildcard(make_caddy, make_spooky, certs, gtls):
    a, b, c = make_caddy("caddy-a"), make_caddy("caddy-b"), make_caddy("caddy-c")
    sp = make_spooky([
        spooky_mod.upstream("exact", [a], certs, routes=[{"host": "a.example",
                                                           "path_prefix": "/"}]),
        spooky_mod.upstream("wild", [b], certs, routes=[{"host": "*.example",
                                                          "path_prefix": "/"}]),
        spooky_mod.upstream("default", [c], certs, routes=[{"path_prefix": "/"}]),
    ])
    got = {}
    for authority in ("a.example", "b.example", f"localhost:{sp.port}"):
        st = gtls(sp.port, ["/whoami"], authority=authority).streams[0]
        assert st.status == 200, authority
        got[authority] = st.header("x-backend")
    assert got == {"a.example": "caddy-a", "b.example": "caddy-b",
                   f"localhost:{sp.port}": "caddy-c"}


def test_method_route(make_caddy, make_spooky, certs, gtls, content):
    a, b = make_caddy("caddy-a"), make_caddy("caddy-b")
    sp = make_spooky([
        spooky_mod.upstream("reads", [a], certs, routes=[{"path_prefix": "/",
                                                          "methods": ["GET", "HEAD"]}]),
        spooky_mod.upstream("writes", [b], certs, routes=[{"path_prefix": "/",
                                                           "methods": ["POST", "PUT"]}]),
    ])
    get = gtls(sp.port, ["/whoami"]).streams[0]
    post = gtls(sp.port, ["/whoami"], method="POST", data=content["1k.bin"].path).streams[0]
    assert get.header("x-backend") == "caddy-a"
    assert post.header("x-backend") == "caddy-b"
