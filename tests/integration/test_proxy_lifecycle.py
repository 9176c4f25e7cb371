"""Process lifecycle: start, SIGTERM while idle and while serving."""

import threading

import pytest

from spookytest import procs as procs_mod, spooky as spooky_mod
from spookytest.clients import request_fields


def test_sigterm_exits_0_promptly_after_serving(caddy, spooky_for, gtls):
    sp = spooky_for([caddy])
    assert gtls(sp.port, ["/1k.bin"]).streams[0].status == 200
    rc, elapsed = sp.terminate(timeout=5)
    sp.exit_checked = True
    assert rc == 0, f"exit code {rc}"
    assert elapsed < 5


def test_sigterm_exits_0_promptly_when_idle(caddy, spooky_for):
    sp = spooky_for([caddy])
    rc, elapsed = sp.terminate(timeout=5)
    sp.exit_checked = True
    assert rc == 0
    assert elapsed < 5


def test_in_flight_request_completes_after_sigterm(testd, spooky_for, testc):
    """SIGTERM drains: a request already being served still gets its response."""
    sp = spooky_for([testd])
    before = testd.stats()
    result = {}

    def run():
        result["r"] = testc(sp.port, request_fields("/delay/1500"), timeout_s=30)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    # Wait until the request has reached the backend. Each stats() call is itself a request:
    # after k calls since `before`, requests grew by k plus the proxied ones.
    calls = [0]

    def reached():
        calls[0] += 1
        return testd.stats()["requests"] - before["requests"] - calls[0] >= 1

    procs_mod.poll(reached, 10, "the slow request to reach testd", interval=0.1)
    rc, elapsed = sp.terminate(timeout=5)
    sp.exit_checked = True
    t.join(30)
    assert not t.is_alive()
    assert rc == 0
    assert result["r"].statuses() == [200]
    assert elapsed < 5


def test_listener_address_that_cannot_be_bound_fails_startup(make_spooky, caddy, certs):
    """A listener spooky cannot bind is a startup error (it exits, no event=ready)."""
    up = spooky_mod.upstream("app", [caddy], certs)
    with pytest.raises(procs_mod.ProcError):
        make_spooky([up], extra={"listeners": [{"address": "192.0.2.1", "port": 4433,
                                                "cert": str(certs.cert),
                                                "key": str(certs.key)}]})
