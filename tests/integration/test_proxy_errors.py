"""Backend failures become 502 / 503 / 504 with the cause in the access log."""

import pytest

from spookytest import backends, certs as certs_mod, spooky as spooky_mod
from spookytest.clients import H3_NO_ERROR, request_fields

FAST_CONNECT = {"connect_ms": 1000}


def _retry_after_ok(value):
    return value is not None and value.strip().isdigit()


def test_backend_with_nothing_listening_gives_502(spooky_for, gtls):
    sp = spooky_for([backends.dead_backend("dead-1")], timeouts=FAST_CONNECT)
    r = gtls(sp.port, ["/x"])
    assert r.handshake_completed
    assert r.streams[0].status == 502
    (entry,) = sp.wait_access(path="/x")
    assert float(entry["duration_ms"]) < 5000, entry  # spooky's own clock, not the client's
    assert entry["status"] == "502"
    assert entry["cause"] in ("connect", "handshake")
    assert entry["backend"] in ("dead-1", "-")


def test_backend_certificate_not_matching_server_name_gives_502(caddy, spooky_for, gtls):
    sp = spooky_for([caddy], tls={"server_name": "not-localhost.example"},
                    timeouts=FAST_CONNECT)
    assert gtls(sp.port, ["/1k.bin"]).streams[0].status == 502
    (entry,) = sp.wait_access(path="/1k.bin")
    assert entry["cause"] == "handshake"


def test_backend_certificate_from_unknown_ca_gives_502(caddy, spooky_for, gtls, tmp_path):
    other_ca, _ = certs_mod.make_ca(tmp_path / "other-pki", cn="some other CA")
    sp = spooky_for([caddy], tls={"ca_file": str(other_ca)}, timeouts=FAST_CONNECT)
    assert gtls(sp.port, ["/1k.bin"]).streams[0].status == 502
    assert sp.wait_access(path="/1k.bin")[0]["cause"] == "handshake"


def test_unverified_backend_certificate_is_accepted_when_verify_is_off(caddy, spooky_for,
                                                                       gtls):
    sp = spooky_for([caddy], tls={"server_name": "not-localhost.example", "verify": False})
    assert gtls(sp.port, ["/1k.bin"]).streams[0].status == 200


def test_pool_whose_backends_all_failed_recently_answers_503(spooky_for, gtls):
    sp = spooky_for([backends.dead_backend("dead-1"), backends.dead_backend("dead-2")],
                    timeouts=FAST_CONNECT)
    first = gtls(sp.port, ["/first"]).streams[0]
    assert first.status in (502, 503)
    second = gtls(sp.port, ["/second"]).streams[0]
    assert second.status == 503
    assert _retry_after_ok(second.header("retry-after")), second.headers
    (entry,) = sp.wait_access(path="/second")
    assert entry["cause"] == "no_backend"
    assert entry["backend"] == "-"


def test_full_pool_with_no_queue_answers_503_with_retry_after(testd, spooky_for, testc):
    sp = spooky_for([testd], pool={"max_connections_per_backend": 1,
                                   "max_streams_per_connection": 1, "max_queue": 0})
    r = testc(sp.port, request_fields("/delay/1500"), n=2, parallel=2)
    assert sorted(x.status for x in r.responses) == [200, 503]
    (rejected,) = [x for x in r.responses if x.status == 503]
    assert _retry_after_ok(rejected.header("retry-after")), rejected.headers
    assert rejected.header("x-backend-id") is None       # spooky's own answer
    causes = sorted(e["cause"] for e in sp.wait_access(count=2, path="/delay/1500"))
    assert causes == ["-", "queue_full"]


def test_breaker_max_pending_caps_requests_waiting_for_one_backend(testd, make_spooky, certs,
                                                                   testc):
    """breaker.max_pending: 1 lets one request wait for the backend's single stream; the others
    of a burst get spooky's 503 (queue_full) even though pool.max_queue would take them."""
    up = spooky_mod.upstream("app", [testd], certs,
                             pool={"max_connections_per_backend": 1,
                                   "max_streams_per_connection": 1, "max_queue": 100})
    up["breaker"] = {"max_pending": 1}
    sp = make_spooky([up])
    r = testc(sp.port, request_fields("/delay/500"), n=4, parallel=4)
    statuses = sorted(x.status for x in r.responses)
    assert statuses.count(503) >= 2 and statuses.count(200) >= 1, statuses
    assert set(statuses) <= {200, 503}
    rejected = [e for e in sp.wait_access(count=4, path="/delay/500") if e["status"] == "503"]
    assert all(e["cause"] == "queue_full" for e in rejected)


def test_queued_requests_wait_for_a_free_stream(testd, spooky_for, testc):
    sp = spooky_for([testd], pool={"max_connections_per_backend": 1,
                                   "max_streams_per_connection": 1, "max_queue": 10})
    r = testc(sp.port, request_fields("/delay/200"), n=4, parallel=4)
    assert r.statuses() == [200] * 4
    assert r.elapsed_s >= 0.8 - 0.05, "one stream at a time: 4 x 200 ms"


def test_slow_backend_gives_504_after_response_timeout(testd, spooky_for, testc):
    sp = spooky_for([testd], timeouts={"response_ms": 1000})
    r = testc(sp.port, request_fields("/delay/3000"))
    (resp,) = r.responses
    assert resp.status == 504
    (entry,) = sp.wait_access(path="/delay/3000")
    assert 1000 - 10 <= float(entry["duration_ms"]) <= 2500, entry
    assert entry["status"] == "504"
    assert entry["cause"] == "timeout"
    assert entry["backend"] == "testd-1"


def test_backend_hanging_mid_body_is_cut_after_body_idle_timeout(testd, spooky_for, testc):
    """Headers and 1000 bytes, then silence: after timeouts.body_idle_ms the client's stream is
    reset (it sees an error, never a truncated success) and the backend takes the blame."""
    sp = spooky_for([testd], timeouts={"body_idle_ms": 1000, "response_ms": 10000})
    r = testc(sp.port, request_fields("/stall-after/1000"))
    (resp,) = r.responses
    assert resp.status == 200 and resp.reset is not None
    (entry,) = sp.wait_access(path="/stall-after/1000")
    assert 1000 - 10 <= float(entry["duration_ms"]) <= 3000, entry
    assert entry["cause"] == "backend_body_timeout"
    assert entry["class"] == "backend_timeout"


def test_request_timeout_covers_the_whole_request(testd, spooky_for, testc):
    sp = spooky_for([testd], timeouts={"response_ms": 10000, "request_ms": 1000})
    r = testc(sp.port, request_fields("/delay/3000"))
    (resp,) = r.responses
    assert resp.status == 504
    (entry,) = sp.wait_access(path="/delay/3000")
    assert 1000 - 10 <= float(entry["duration_ms"]) <= 2500, entry
    assert entry["cause"] == "request_timeout"


def test_backend_stream_reset_before_response_gives_502(testd, spooky_for, testc):
    sp = spooky_for([testd])
    (resp,) = testc(sp.port, request_fields("/reset")).responses
    assert resp.status == 502
    (entry,) = sp.wait_access(path="/reset")
    assert entry["cause"] == "reset"
    assert entry["backend"] == "testd-1"


def test_backend_reset_after_response_started_resets_the_client_stream(testd, spooky_for,
                                                                      testc):
    """Headers already went out, so spooky cannot answer 502: the client must see an
    aborted stream rather than a clean, truncated end."""
    sp = spooky_for([testd])
    (resp,) = testc(sp.port, request_fields("/reset-after/100000")).responses
    assert resp.status == 200
    assert resp.reset is not None and resp.reset != H3_NO_ERROR
    assert resp.body_len <= 100000
    (entry,) = sp.wait_access(path="/reset-after/100000")
    assert entry["cause"] == "reset"


@pytest.mark.parametrize("first", ["dead", "live"])
def test_failed_backend_is_skipped_for_the_live_one(first, testd, spooky_for, testc):
    """A request the backend never saw (connect failure) is retried on another backend."""
    dead = backends.dead_backend("dead-1")
    pool = [dead, testd] if first == "dead" else [testd, dead]
    sp = spooky_for(pool, timeouts=FAST_CONNECT)
    r = testc(sp.port, request_fields("/size/10"), n=6, parallel=1)
    assert r.statuses() == [200] * 6
    assert {x.header("x-backend-id") for x in r.responses} == {"testd-1"}


def test_without_server_name_the_backend_ip_is_verified(testd, spooky_for, testc):
    """tls.server_name absent: the certificate must carry the backend's IP (ours has
    IP:127.0.0.1), and no SNI is sent."""
    sp = spooky_for([testd], tls={"server_name": None})
    (resp,) = testc(sp.port, request_fields("/size/10")).responses
    assert resp.status == 200
