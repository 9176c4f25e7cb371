"""Backend connection pooling: many requests share a few backend QUIC connections, idle ones
are closed after pool.idle_timeout_ms, and round robin spreads requests."""

import collections

from spookytest import backends, procs as procs_mod
from spookytest.clients import request_fields

POOL = {"max_connections_per_backend": 4, "max_streams_per_connection": 100}


def test_1000_requests_use_at_most_pool_size_backend_connections(testd, spooky_for, testc):
    sp = spooky_for([testd], pool=POOL)
    before = testd.stats()
    r = testc(sp.port, request_fields("/size/100"), n=1000, parallel=50, timeout_s=120)
    assert r.returncode == 0
    assert r.statuses() == [200] * 1000
    delta = backends.stats_delta(before, testd.stats())
    assert delta["requests"] == 1000
    assert 1 <= delta["handshakes"] <= POOL["max_connections_per_backend"]
    connected = sp.entries(area="upstream", event="connected", backend="testd-1")
    assert len(connected) == delta["handshakes"]


def test_many_client_connections_share_the_backend_pool(testd, spooky_for, gtls):
    sp = spooky_for([testd], pool=POOL)
    before = testd.stats()
    for _ in range(10):
        res = gtls(sp.port, ["/size/100"], n=100, download=False)
        assert [s.status for s in res.streams] == [200] * 100
    delta = backends.stats_delta(before, testd.stats())
    assert delta["requests"] == 1000
    assert 1 <= delta["handshakes"] <= POOL["max_connections_per_backend"]


def test_pool_to_caddy_is_reused(caddy, spooky_for, gtls):
    sp = spooky_for([caddy], pool=POOL)
    for _ in range(5):
        res = gtls(sp.port, ["/1k.bin"], n=50, download=False)
        assert [s.status for s in res.streams] == [200] * 50
    connected = sp.entries(area="upstream", event="connected", backend="caddy-1")
    assert 1 <= len(connected) <= POOL["max_connections_per_backend"]


def test_pool_to_gtlsserver_is_reused(make_gtlsserver, spooky_for, gtls):
    srv = make_gtlsserver("gtls-1", count_connections=True)
    before = srv.connection_count()
    sp = spooky_for([srv], pool=POOL)
    for _ in range(5):
        res = gtls(sp.port, ["/1k.bin"], n=50, download=False)
        assert [s.status for s in res.streams] == [200] * 50
    assert 1 <= srv.connection_count() - before <= POOL["max_connections_per_backend"]


def test_idle_backend_connections_are_closed_and_reopened(testd, spooky_for, testc):
    sp = spooky_for([testd], pool={"idle_timeout_ms": 1000})
    r = testc(sp.port, request_fields("/size/10"), n=10, parallel=5)
    assert r.statuses() == [200] * 10
    sp.wait_entries(area="upstream", event="closed", backend="testd-1", reason="idle",
                    timeout=10)
    # Only our own /stats connection is left open at the backend.
    procs_mod.poll(lambda: testd.stats()["connections_open"] <= 1, 10,
                   "testd connections_open to drop to 1 (the /stats query itself)",
                   interval=0.2)
    n_connected = len(sp.entries(area="upstream", event="connected", backend="testd-1"))
    (again,) = testc(sp.port, request_fields("/size/10")).responses
    assert again.status == 200
    sp.wait_entries(count=n_connected + 1, area="upstream", event="connected",
                    backend="testd-1")


def test_round_robin_spreads_requests_evenly(make_testd, spooky_for, testc):
    a, b = make_testd("testd-a"), make_testd("testd-b")
    sp = spooky_for([a, b], strategy="round_robin")
    r = testc(sp.port, request_fields("/size/10"), n=100, parallel=10)
    assert r.statuses() == [200] * 100
    per_backend = collections.Counter(x.header("x-backend-id") for x in r.responses)
    assert set(per_backend) == {"testd-a", "testd-b"}
    assert abs(per_backend["testd-a"] - per_backend["testd-b"]) <= 10, per_backend
    logged = collections.Counter(e["backend"] for e in sp.wait_access(count=100))
    assert logged == per_backend


def test_backend_goaway_takes_the_connection_out_of_rotation(testd, spooky_for, testc):
    """RFC 9114 §5.2: after a backend's GOAWAY no new request goes on that connection; spooky
    closes it once idle and carries on over a new one, with no client-visible failure."""
    sp = spooky_for([testd])
    (bye,) = testc(sp.port, request_fields("/goaway")).responses
    assert bye.status == 200
    sp.wait_entries(area="upstream", event="closed", backend="testd-1", reason="goaway",
                    timeout=10)
    r = testc(sp.port, request_fields("/size/10"), n=20, parallel=5)
    assert r.statuses() == [200] * 20
    assert len(sp.entries(area="upstream", event="connected", backend="testd-1")) == 2
