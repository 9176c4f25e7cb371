"""HTTP/3 clients through spooky to HTTP/2 backends: nghttpd and caddy, each over TLS (h2, ALPN)
and cleartext (h2c, prior knowledge), plus a scripted h2c server (h2raw) for resets, refusals,
closes and unanswered PINGs. Bodies are checked by length and sha256 both ways."""

import hashlib

import pytest

from spookytest import h2backends
from spookytest.clients import request_fields

pytest_plugins = ["conftest_h2"]

SIZES = [
    pytest.param("empty.bin", id="0B"),
    pytest.param("1k.bin", id="1KiB"),
    pytest.param("1m.bin", id="1MiB"),
    pytest.param("50m.bin", id="50MiB", marks=pytest.mark.slow),
]
POOL = {"max_connections_per_backend": 4, "max_streams_per_connection": 100}


def _ok(resp, size=None, sha256=None):
    assert resp.status == 200, resp
    assert resp.reset is None and resp.error is None, resp
    if size is not None:
        assert (resp.body_len, resp.body_sha256) == (size, sha256)


# --- bodies -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SIZES)
def test_download_is_intact(name, h2_backend, spooky_for, testc, content):
    f = content[name]
    sp = spooky_for([h2_backend])
    (resp,) = testc(sp.port, request_fields(f"/{name}"), timeout_s=120).responses
    _ok(resp, f.size, f.sha256)
    assert len(h2backends.connected_h2(sp, h2_backend.id)) == 1


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize("name", SIZES)
@pytest.mark.parametrize("kind", ["nghttpd-h2", "nghttpd-h2c"])
def test_upload_is_echoed_by_nghttpd(kind, name, method, start_h2_backend, spooky_for, testc,
                                     content):
    f = content[name]
    be = start_h2_backend(kind)
    sp = spooky_for([be])
    fields = request_fields("/echo", method=method, extra=[("content-length", str(f.size))])
    (resp,) = testc(sp.port, fields, body=f.path, timeout_s=120).responses
    _ok(resp, f.size, f.sha256)


# caddy answers before reading a large upload and then stops it (RST_STREAM NO_ERROR after its
# response, RFC 9113 §8.1): spooky relays the complete answer and tells the client to stop the
# upload without error (STOP_SENDING H3_NO_ERROR, RFC 9114 §4.1.1).
UPLOAD_SIZES = SIZES[:-1] + [pytest.param("50m.bin", id="50MiB", marks=[pytest.mark.slow])]


@pytest.mark.parametrize("name", UPLOAD_SIZES)
@pytest.mark.parametrize("kind", ["caddy-h2", "caddy-h2c"])
def test_upload_reaches_caddy(kind, name, start_h2_backend, spooky_for, testc, content):
    """caddy cannot echo: its static answer comes back whole, whether or not it read the body
    first (a server may answer before the request is complete, RFC 9113 §8.1)."""
    f = content[name]
    be = start_h2_backend(kind)
    sp = spooky_for([be])
    (resp,) = testc(sp.port, request_fields("/upload", method="POST"), body=f.path,
                    timeout_s=120).responses
    _ok(resp, 2, hashlib.sha256(b"ok").hexdigest())


def test_upload_without_content_length_is_streamed(make_nghttpd, spooky_for, testc, content):
    f = content["1m.bin"]
    sp = spooky_for([make_nghttpd("nghttpd-1", tls=False)])
    (resp,) = testc(sp.port, request_fields("/echo", method="PUT"), body=f.path).responses
    _ok(resp, f.size, f.sha256)


# --- trailers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("tls", [True, False], ids=["h2", "h2c"])
def test_response_trailers_from_nghttpd_reach_the_client(tls, make_nghttpd, spooky_for, testc,
                                                         content):
    be = make_nghttpd("nghttpd-1", tls=tls, extra_args=["--trailer", "x-trailer: yes"])
    sp = spooky_for([be])
    (resp,) = testc(sp.port, request_fields("/1k.bin")).responses
    _ok(resp, content["1k.bin"].size, content["1k.bin"].sha256)
    assert resp.trailer("x-trailer") == "yes"


def test_response_trailers_after_a_short_body(make_h2raw, spooky_for, testc):
    sp = spooky_for([make_h2raw("trailers")])
    (resp,) = testc(sp.port, request_fields("/t")).responses
    _ok(resp)
    assert resp.body_len == 2
    assert resp.trailer("x-trailer") == "yes"


def test_request_trailers_reach_nghttpd(make_nghttpd, spooky_for, testc, content):
    be = make_nghttpd("nghttpd-1", tls=False, extra_args=["-v"])
    sp = spooky_for([be])
    f = content["1k.bin"]
    (resp,) = testc(sp.port, request_fields("/echo", method="POST"), body=f.path,
                    trailers=[("x-checksum", "abc123")]).responses
    _ok(resp, f.size, f.sha256)
    be.proc.wait_for_log(r"x-checksum: abc123", timeout=5)


# --- concurrency and pooling ------------------------------------------------------------------

def test_100_concurrent_client_streams(h2_backend, spooky_for, testc, content):
    f = content["1k.bin"]
    sp = spooky_for([h2_backend], pool=POOL)
    r = testc(sp.port, request_fields("/1k.bin"), n=100, parallel=100, timeout_s=60)
    assert r.returncode == 0
    assert len(r.responses) == 100
    for resp in r.responses:
        _ok(resp, f.size, f.sha256)
    assert 1 <= len(h2backends.connected_h2(sp, h2_backend.id)) <= POOL[
        "max_connections_per_backend"]


def test_1000_requests_reuse_few_backend_connections(h2_backend, spooky_for, testc):
    sp = spooky_for([h2_backend], pool=POOL)
    r = testc(sp.port, request_fields("/1k.bin"), n=1000, parallel=50, timeout_s=120)
    assert r.returncode == 0
    assert r.statuses() == [200] * 1000
    n = len(h2backends.connected_h2(sp, h2_backend.id))
    assert 1 <= n <= POOL["max_connections_per_backend"], n


def test_backend_max_concurrent_streams_is_honoured(make_nghttpd, spooky_for, testc):
    """nghttpd allows 5 streams per connection: 40 parallel requests need more connections,
    and none of them is refused for exceeding the limit."""
    be = make_nghttpd("nghttpd-1", tls=False, extra_args=["--max-concurrent-streams=5"])
    sp = spooky_for([be], pool=POOL)
    r = testc(sp.port, request_fields("/1m.bin"), n=40, parallel=40, timeout_s=60)
    assert r.statuses() == [200] * 40
    assert 2 <= len(h2backends.connected_h2(sp, be.id)) <= POOL["max_connections_per_backend"]


# --- connections going away -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["nghttpd-h2", "nghttpd-h2c", "caddy-h2c"])
def test_backend_restart_between_requests(kind, start_h2_backend, spooky_for, testc, procs):
    be = start_h2_backend(kind)
    sp = spooky_for([be])
    (first,) = testc(sp.port, request_fields("/1k.bin")).responses
    _ok(first)
    be.restart(procs)
    h2backends.wait_closed(sp, be.id)
    (second,) = testc(sp.port, request_fields("/1k.bin")).responses
    _ok(second)
    assert len(h2backends.connected_h2(sp, be.id)) == 2


def test_backend_closing_after_each_response(make_h2raw, spooky_for, testc):
    be = make_h2raw("close")
    sp = spooky_for([be])
    for i in range(5):
        (resp,) = testc(sp.port, request_fields(f"/r{i}")).responses
        _ok(resp)
        assert resp.body_len == 2
        h2backends.wait_closed(sp, be.id, count=i + 1)
    assert be.connections() == 5


def test_backend_goaway_after_a_response_moves_on(make_h2raw, spooky_for, testc):
    be = make_h2raw("goaway")
    sp = spooky_for([be])
    for i in range(3):
        (resp,) = testc(sp.port, request_fields(f"/g{i}")).responses
        _ok(resp)
        h2backends.wait_closed(sp, be.id, count=i + 1)
    assert len(sp.entries(area="upstream", event="goaway", backend=be.id)) == 3


def test_stream_reset_mid_body_is_an_error_for_the_client(make_h2raw, spooky_for, testc):
    sp = spooky_for([make_h2raw("reset")])
    (resp,) = testc(sp.port, request_fields("/big")).responses
    assert resp.reset is not None or resp.error is not None, resp
    assert resp.body_len is None or resp.body_len < 32768 or resp.reset is not None
    (entry,) = sp.wait_access(path="/big")
    assert entry["cause"] == "reset"


def test_refused_stream_is_retried_on_another_backend(make_h2raw, make_nghttpd, spooky_for,
                                                      testc):
    """RST_STREAM(REFUSED_STREAM) means the backend did not process the request (RFC 9113
    §8.7): spooky sends it to another backend, even a POST."""
    refuser = make_h2raw("refuse", backend_id="refuser")
    good = make_nghttpd("nghttpd-1", tls=False)
    sp = spooky_for([refuser, good])
    r = testc(sp.port, request_fields("/echo", method="POST"), n=10, parallel=1)
    assert r.statuses() == [200] * 10
    assert refuser.requests() >= 1


# --- liveness ---------------------------------------------------------------------------------

def test_idle_connection_without_ping_answers_is_closed(make_h2raw, spooky_for, testc):
    be = make_h2raw("ignore_ping")
    sp = spooky_for([be], timeouts={"backend_idle_ms": 600})
    (resp,) = testc(sp.port, request_fields("/p")).responses
    _ok(resp)
    sp.wait_entries(area="upstream", event="closed", backend=be.id, reason="ping_timeout",
                    timeout=5)
    assert be.proc.count_log(r"^event=ping") >= 1


def test_idle_connection_answering_pings_stays_pooled(make_h2raw, spooky_for, testc):
    be = make_h2raw("ok")
    sp = spooky_for([be], timeouts={"backend_idle_ms": 300})
    (resp,) = testc(sp.port, request_fields("/p")).responses
    _ok(resp)
    be.proc.wait_for_log(r"^event=ping", count=3, timeout=5)
    (again,) = testc(sp.port, request_fields("/p2")).responses
    _ok(again)
    assert be.connections() == 1
    assert not sp.entries(area="upstream", event="closed", backend=be.id)


# --- connection failures ----------------------------------------------------------------------

def test_h2_backend_with_wrong_certificate_name_gives_502(make_nghttpd, spooky_for, testc):
    be = make_nghttpd("nghttpd-1", tls=True)
    sp = spooky_for([be], tls={"server_name": "not-localhost.example"},
                    timeouts={"connect_ms": 1000})
    (resp,) = testc(sp.port, request_fields("/1k.bin")).responses
    assert resp.status == 502
    assert sp.wait_access(path="/1k.bin")[0]["cause"] == "handshake"


def test_h2c_to_a_tls_port_gives_502(make_nghttpd, spooky_for, testc):
    be = make_nghttpd("nghttpd-1", tls=True)
    sp = spooky_for([be.spooky_backend(protocol="h2c")], timeouts={"connect_ms": 1000})
    (resp,) = testc(sp.port, request_fields("/1k.bin")).responses
    assert resp.status == 502
    assert sp.wait_access(path="/1k.bin")[0]["cause"] in ("handshake", "connect")


@pytest.mark.parametrize("tls", [True, False], ids=["h2", "h2c"])
def test_client_abort_cancels_the_backend_stream_and_keeps_the_connection(
        tls, make_nghttpd, spooky_for, testc, content):
    """A client that goes away mid-download makes spooky reset the backend stream (CANCEL);
    the backend connection stays pooled and carries the next request."""
    be = make_nghttpd("nghttpd-1", tls=tls)
    sp = spooky_for([be])
    aborted = testc(sp.port, request_fields("/50m.bin"), extra_args=["--timeout", "0.15"])
    if [x for x in aborted.responses if x.error is None and x.reset is None]:
        pytest.skip("the 50 MiB download finished before the client's 0.15 s timeout")
    f = content["1k.bin"]
    (resp,) = testc(sp.port, request_fields("/1k.bin")).responses
    _ok(resp, f.size, f.sha256)
    assert len(h2backends.connected_h2(sp, be.id)) == 1
    assert not sp.entries(area="upstream", event="closed", backend=be.id)
