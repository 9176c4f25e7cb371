"""Many concurrent streams on one client connection through spooky."""

from spookytest import content as content_mod
from spookytest.clients import H3_NO_ERROR, request_fields


def test_100_concurrent_streams_with_testc(testd, spooky_for, testc):
    sp = spooky_for([testd])
    r = testc(sp.port, request_fields("/size/4096"), n=100, parallel=100)
    assert r.returncode == 0
    assert len(r.responses) == 100
    assert r.statuses() == [200] * 100
    assert {x.body_sha256 for x in r.responses} == {content_mod.alphabet_sha256(4096)}
    assert all(x.reset is None and x.error is None for x in r.responses)
    assert len(sp.wait_access(count=100, status="200")) == 100


def test_100_concurrent_slow_requests_overlap(testd, spooky_for, testc):
    """100 requests of 300 ms each take far less than 100 x 300 ms: they run concurrently."""
    sp = spooky_for([testd])
    r = testc(sp.port, request_fields("/delay/300"), n=100, parallel=100)
    assert r.statuses() == [200] * 100
    assert r.elapsed_s < 10, f"took {r.elapsed_s:.1f}s"


def test_100_concurrent_streams_with_gtlsclient(caddy, spooky_for, gtls, content):
    sp = spooky_for([caddy])
    r = gtls(sp.port, [f"/1k.bin?i={i}" for i in range(100)])
    assert r.handshake_completed
    assert [s.status for s in r.streams] == [200] * 100
    assert {s.error_code for s in r.streams} == {H3_NO_ERROR}
    assert {s.body_sha256 for s in r.streams} == {content["1k.bin"].sha256}
    # all of them over a handful of backend connections
    connected = sp.entries(area="upstream", event="connected", backend="caddy-1")
    assert 1 <= len(connected) <= 4
