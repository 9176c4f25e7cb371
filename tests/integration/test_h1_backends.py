"""HTTP/3 clients through spooky to HTTP/1.1 backends (protocol: http1): nginx, caddy on
http://, and our own Python server for the behaviours they lack (echo, chunked, close-delimited
bodies, closes between requests, resets, stalls). Bodies are checked by length and sha256;
connection reuse by the backends' own connection counts and spooky's event=connected lines."""

import hashlib

import pytest

from spookytest import content as content_mod
from spookytest import h1backends, procs
from spookytest.clients import H3_NO_ERROR, request_fields

SIZES = [
    pytest.param("empty.bin", id="0B"),
    pytest.param("1k.bin", id="1KiB"),
    pytest.param("1m.bin", id="1MiB"),
    pytest.param("50m.bin", id="50MiB", marks=pytest.mark.slow),
]
POOL = {"max_connections_per_backend": 4}


def connected(sp, backend_id):
    return len(sp.entries(area="upstream", event="connected", backend=backend_id))


# --- downloads -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SIZES)
def test_download_file_from_nginx(name, nginx, spooky_for, gtls, content):
    sp = spooky_for([nginx])
    f = content[name]
    st = gtls(sp.port, [f"/{name}"], timeout_s=120).streams[0]
    assert st.status == 200
    assert st.error_code == H3_NO_ERROR
    assert st.header("content-length") == str(f.size)
    assert (st.body_len, st.body_sha256) == (f.size, f.sha256)


@pytest.mark.parametrize("name", SIZES)
def test_download_file_from_caddy_http(name, caddy_http, spooky_for, gtls, content):
    sp = spooky_for([caddy_http])
    f = content[name]
    st = gtls(sp.port, [f"/{name}"], timeout_s=120).streams[0]
    assert st.status == 200
    assert st.error_code == H3_NO_ERROR
    assert (st.body_len, st.body_sha256) == (f.size, f.sha256)


@pytest.mark.parametrize("name", SIZES)
def test_download_generated_body_from_python(name, pyh1, spooky_for, testc, content):
    size = content[name].size
    sp = spooky_for([pyh1])
    (resp,) = testc(sp.port, request_fields(f"/size/{size}"), timeout_s=120).responses
    assert resp.status == 200
    assert resp.reset is None and resp.error is None
    assert resp.body_len == size
    assert resp.body_sha256 == content_mod.alphabet_sha256(size)


# --- uploads -------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize("name", SIZES)
def test_upload_with_content_length_is_echoed(name, method, pyh1, spooky_for, testc, content):
    f = content[name]
    sp = spooky_for([pyh1])
    fields = request_fields("/echo", method=method, extra=[("content-length", str(f.size))])
    (resp,) = testc(sp.port, fields, body=f.path, timeout_s=120).responses
    assert resp.status == 200
    assert resp.reset is None and resp.error is None
    assert resp.header("content-length") == str(f.size)
    assert (resp.body_len, resp.body_sha256) == (f.size, f.sha256)


@pytest.mark.parametrize("name", SIZES)
def test_upload_without_content_length_goes_chunked_and_is_echoed(name, pyh1, spooky_for, testc,
                                                                 content):
    f = content[name]
    sp = spooky_for([pyh1])
    (resp,) = testc(sp.port, request_fields("/echo", method="PUT"), body=f.path,
                    timeout_s=120).responses
    assert resp.status == 200
    assert resp.reset is None and resp.error is None
    assert (resp.body_len, resp.body_sha256) == (f.size, f.sha256)


# --- response framing ------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, 100000, 3 * 1024 * 1024])
def test_chunked_response_is_passed_whole(size, pyh1, spooky_for, testc):
    sp = spooky_for([pyh1])
    (resp,) = testc(sp.port, request_fields(f"/chunked/{size}")).responses
    assert resp.status == 200
    assert resp.reset is None and resp.error is None
    assert (resp.body_len, resp.body_sha256) == (size, content_mod.alphabet_sha256(size))


def test_chunked_response_trailers_reach_the_client(pyh1, spooky_for, testc):
    sp = spooky_for([pyh1])
    (resp,) = testc(sp.port, request_fields("/chunked/5000?trailers=1")).responses
    assert resp.status == 200
    assert resp.body_len == 5000
    assert resp.trailer("x-trailer") == "done"


def test_response_without_length_ends_at_close(pyh1, spooky_for, testc):
    size = 200000
    sp = spooky_for([pyh1], pool=POOL)
    for _ in range(3):
        (resp,) = testc(sp.port, request_fields(f"/close/{size}")).responses
        assert resp.status == 200
        assert resp.reset is None and resp.error is None
        assert (resp.body_len, resp.body_sha256) == (size, content_mod.alphabet_sha256(size))
    # Such a connection cannot carry another request: one connection per response.
    assert connected(sp, pyh1.id) == 3


def test_head_request_gets_no_body_and_keeps_the_connection(pyh1, spooky_for, testc):
    sp = spooky_for([pyh1], pool={"max_connections_per_backend": 1})
    r = testc(sp.port, request_fields("/size/5000", method="HEAD"), n=5)
    assert r.statuses() == [200] * 5
    assert all(x.body_len == 0 and x.reset is None for x in r.responses)
    (after,) = testc(sp.port, request_fields("/size/10")).responses
    assert after.status == 200 and after.body_len == 10
    assert connected(sp, pyh1.id) == 1


# --- request conversion ------------------------------------------------------------------------

def test_request_reaches_the_backend_as_clean_http1(pyh1, spooky_for, testc):
    sp = spooky_for([pyh1])
    fields = request_fields("/headers?x=1", authority=f"app.example:{sp.port}",
                            extra=[("cookie", "a=1"), ("x-custom", "v"), ("cookie", "b=2"),
                                   ("te", "trailers")])
    (resp,) = testc(sp.port, fields, print_body=True).responses
    assert resp.status == 200
    got = resp.json_body()
    assert got["request_line"] == "GET /headers?x=1 HTTP/1.1"
    headers = got["headers"]
    names = [k for k, _ in headers]
    assert names == [k.lower() for k in names]
    assert [v for k, v in headers if k == "host"] == [f"app.example:{sp.port}"]
    assert [v for k, v in headers if k == "cookie"] == ["a=1; b=2"]
    assert "te" not in names and "connection" not in names and "transfer-encoding" not in names
    assert [v for k, v in headers if k == "x-custom"] == ["v"]


# --- concurrency and reuse ---------------------------------------------------------------------

def test_100_concurrent_streams_queue_for_16_connections(pyh1, spooky_for, testc):
    sp = spooky_for([pyh1], pool={"max_connections_per_backend": 16})
    before = pyh1.stats()
    r = testc(sp.port, request_fields("/size/20000"), n=100, parallel=100, timeout_s=120)
    assert r.returncode == 0
    assert r.statuses() == [200] * 100
    assert all(x.body_len == 20000 for x in r.responses)
    delta = h1backends.stats_delta(before, pyh1.stats())
    assert delta["requests"] == 100
    assert 1 <= delta["connections"] <= 16
    assert connected(sp, pyh1.id) == delta["connections"]


def test_1000_requests_reuse_a_bounded_number_of_connections(pyh1, spooky_for, testc):
    sp = spooky_for([pyh1], pool=POOL)
    before = pyh1.stats()
    r = testc(sp.port, request_fields("/size/100"), n=1000, parallel=50, timeout_s=120)
    assert r.returncode == 0
    assert r.statuses() == [200] * 1000
    delta = h1backends.stats_delta(before, pyh1.stats())
    assert delta["requests"] == 1000
    assert 1 <= delta["connections"] <= POOL["max_connections_per_backend"]


def test_uploads_reuse_connections_too(pyh1, spooky_for, testc, content):
    f = content["1k.bin"]
    sp = spooky_for([pyh1], pool=POOL)
    before = pyh1.stats()
    fields = request_fields("/echo", method="POST", extra=[("content-length", str(f.size))])
    r = testc(sp.port, fields, body=f.path, n=200, parallel=20, timeout_s=120)
    assert r.statuses() == [200] * 200
    assert all(x.body_sha256 == f.sha256 for x in r.responses)
    r = testc(sp.port, request_fields("/echo", method="PUT"), body=f.path, n=200, parallel=20,
              timeout_s=120)
    assert r.statuses() == [200] * 200
    assert all(x.body_sha256 == f.sha256 for x in r.responses)
    delta = h1backends.stats_delta(before, pyh1.stats())
    assert 1 <= delta["connections"] <= POOL["max_connections_per_backend"]


def test_nginx_connections_are_reused(nginx, spooky_for, gtls):
    """1000 requests over a handful of keep-alive connections, counted in spooky's own log
    (event=connected), and nginx saw them on no connection spooky did not open."""
    sp = spooky_for([nginx], pool=POOL)
    for _ in range(10):
        res = gtls(sp.port, ["/1k.bin"], n=100, download=False)
        assert [s.status for s in res.streams] == [200] * 100
    opened = connected(sp, nginx.id)
    # At most max_connections_per_backend are open at once; a connection that nginx closes
    # (or one opened for a burst that another connection served first) is replaced, so the
    # total over the run gets a little slack.
    assert 1 <= opened <= 2 * POOL["max_connections_per_backend"], opened
    # nginx logs a request only after answering it: wait until all 1000 are in its log.
    _, conns = procs.poll(lambda: (lambda n, c: (n, c) if n >= 1000 else None)(
        *nginx.connections_serving("/1k.bin")), 10, "nginx to log the 1000 requests")
    # Every connection that carried one of them is one spooky opened and logged (a connection
    # spooky opened may have carried none, never the reverse).
    assert 1 <= len(conns) <= opened


def test_caddy_http_connections_are_reused(caddy_http, spooky_for, gtls):
    sp = spooky_for([caddy_http], pool=POOL)
    for _ in range(5):
        res = gtls(sp.port, ["/1k.bin"], n=100, download=False)
        assert [s.status for s in res.streams] == [200] * 100
    assert 1 <= connected(sp, caddy_http.id) <= POOL["max_connections_per_backend"]


def test_http1_over_tls_to_caddy(caddy, spooky_for, gtls, content):
    """caddy's HTTPS port with protocol http1 + tls: ALPN http/1.1, certificate verified."""
    backend = dict(caddy.spooky_backend(), protocol="http1", tls=True)
    sp = spooky_for([backend], pool=POOL)
    f = content["1m.bin"]
    st = gtls(sp.port, ["/1m.bin"]).streams[0]
    assert st.status == 200
    assert (st.body_len, st.body_sha256) == (f.size, f.sha256)
    res = gtls(sp.port, ["/1k.bin"], n=50, download=False)
    assert [s.status for s in res.streams] == [200] * 50
    assert 1 <= connected(sp, caddy.id) <= POOL["max_connections_per_backend"]


# --- failures ----------------------------------------------------------------------------------

def test_backend_closing_keepalive_between_requests_is_harmless(pyh1, spooky_for, testc):
    sp = spooky_for([pyh1], pool={"max_connections_per_backend": 1})
    for _ in range(10):
        (a,) = testc(sp.port, request_fields("/kaclose/1000")).responses
        assert a.status == 200 and a.body_len == 1000 and a.reset is None
        (b,) = testc(sp.port, request_fields("/size/1000")).responses
        assert b.status == 200 and b.body_len == 1000 and b.reset is None


def test_backend_closing_keepalive_under_load_is_retried(pyh1, spooky_for, testc):
    """A backend that silently closes every kept-alive connection races each reuse; the request
    it never saw is retried on a fresh connection (RFC 9112 §9.3.1), never on another reused
    one that would race again."""
    sp = spooky_for([pyh1], pool={"max_connections_per_backend": 1})
    r = testc(sp.port, request_fields("/kaclose/100"), n=50, parallel=10)
    assert r.statuses() == [200] * 50


def test_backend_reset_mid_body_is_a_reset_not_a_short_success(pyh1, spooky_for, testc):
    sp = spooky_for([pyh1])
    for _ in range(3):
        (resp,) = testc(sp.port, request_fields("/reset/100000")).responses
        assert resp.status in (200, None)
        assert resp.reset is not None or resp.error is not None, resp
    (ok,) = testc(sp.port, request_fields("/size/10")).responses
    assert ok.status == 200


def test_stalled_backend_times_out_as_an_error(pyh1, spooky_for, testc):
    sp = spooky_for([pyh1], timeouts={"backend_idle_ms": 1000})
    (resp,) = testc(sp.port, request_fields("/stall/1000"), timeout_s=30).responses
    assert resp.reset is not None or resp.error is not None, resp
    sp.wait_entries(area="upstream", event="closed", backend=pyh1.id, reason="timeout")


def test_refused_connections_give_502(spooky_for, testc):
    sp = spooky_for([h1backends.dead_h1_backend()])
    (resp,) = testc(sp.port, request_fields("/")).responses
    assert resp.status == 502


def test_smuggling_attempts_in_request_fields_never_reach_the_backend(pyh1, spooky_for, testc):
    """Field values that HTTP/3 carries fine but would split an HTTP/1.1 head are refused."""
    sp = spooky_for([pyh1])
    before = pyh1.stats()
    r = testc(sp.port, request_fields("/size/1", authority="a.example@evil"), n=1)
    assert all(x.status in (400, 502) or x.reset is not None for x in r.responses)
    delta = h1backends.stats_delta(before, pyh1.stats())
    assert delta["requests"] == 0


def test_sha_helper_matches_python_pattern():
    data = h1backends.pattern(0, 70000)
    assert hashlib.sha256(data).hexdigest() == content_mod.alphabet_sha256(70000)
    assert h1backends.pattern(5, 3) == b"fgh"
