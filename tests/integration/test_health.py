"""Active health probes (issue 5, Health): GET health_check.path on every backend, over the
backend's own protocol, ejecting after `fall` failed probes and readmitting after `rise` good ones.

spooky-testd answers any unknown path 200 "hello" and /status/404 with 404, so "/healthz" is a
healthy endpoint and "/status/404" a missing one. Probe intervals are short (200 ms, timeout
150 ms) so that the waits for probes to pass stay small."""

import threading
import time

import pytest

from spookytest import procs as procs_mod
from spookytest import spooky as spooky_mod
from spookytest.clients import request_fields

# Health, breakers and retries are per worker: every test runs with one worker and with two.
pytestmark = pytest.mark.parametrize("workers", [1, 2], indirect=True)

FAST_PROBES = {"interval_ms": 200, "timeout_ms": 150, "fall": 3, "rise": 2}
# Readmission attempts of an ejected backend back off from 200 ms up to 1 s (passive_health).
FAST_RECOVERY = {"recovery_ms": 200, "max_recovery_ms": 1000}


def probed_upstream(backend_list, certs, path="/healthz", **probe_keys):
    up = spooky_mod.upstream("app", backend_list, certs)
    up["health_check"] = {"path": path, **FAST_PROBES, **probe_keys}
    up["passive_health"] = dict(FAST_RECOVERY)
    return up


def health_lines(sp, backend_id=None, **criteria):
    if backend_id is not None:
        criteria["backend"] = backend_id
    return sp.entries(area="upstream", event="health", **criteria)


# Each protocol's backend, with a path it answers 200 and one it answers 404.
PROTOCOLS = {
    "h3": ("make_testd", "/healthz", "/status/404"),         # spooky-testd over QUIC
    "http1": ("make_pyh1", "/size/2", "/missing"),           # our HTTP/1.1 server, cleartext
}


def backends_for(request, protocol, count):
    factory = request.getfixturevalue(PROTOCOLS[protocol][0])
    return [factory(f"{protocol}-{i}") for i in range(1, count + 1)]


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_backend_whose_health_endpoint_is_missing_is_marked_unhealthy(protocol, request,
                                                                      make_spooky, certs,
                                                                      testc):
    (be,) = backends_for(request, protocol, 1)
    t0 = time.monotonic()
    up = probed_upstream([be], certs, path=PROTOCOLS[protocol][2])
    # The only backend ejected is 0% healthy: panic (default threshold 50%) would send traffic
    # to it anyway, by design. This test is about the ejection itself, so panic is off here.
    up["passive_health"]["panic_threshold_pct"] = 0
    sp = make_spooky([up], log_level="debug")
    procs_mod.poll(lambda: sp.every_worker_logged(area="upstream", event="health",
                                                  backend=be.id, to="unhealthy"),
                   5.0, "every worker to eject the backend")
    assert time.monotonic() - t0 < 5.0 + 1.0
    lines = health_lines(sp, be.id, to="unhealthy")
    assert len(lines) == sp.workers  # each worker probes and ejects on its own
    assert {line["reason"] for line in lines} == {"probe_failures"}
    # The probes reached the backend and got its 404: a missing endpoint is a failure.
    assert {e["status"] for e in sp.entries(area="health", event="probe")} == {"404"}
    # No traffic for an unhealthy backend: spooky answers itself.
    r = testc(sp.port, request_fields("/x"), n=3, parallel=3)
    assert r.statuses() == [503] * 3
    assert {e["cause"] for e in sp.wait_access(count=3, path="/x")} == {"no_backend"}


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_healthy_backends_stay_healthy_under_probes(protocol, request, make_spooky, certs,
                                                    testc):
    pair = backends_for(request, protocol, 2)
    sp = make_spooky([probed_upstream(pair, certs, path=PROTOCOLS[protocol][1])],
                     log_level="debug")
    # Probes are the behaviour under test: wait (polling) until 8 of them per backend and
    # worker passed.
    for be in pair:
        procs_mod.poll(lambda: all(len(v) >= 8 for v in sp.by_worker(
            area="health", event="probe", backend=be.id, ok="1").values()) and
            sp.every_worker_logged(area="health", event="probe", backend=be.id, ok="1"),
            10.0, f"8 good probes of {be.id} in every worker", interval=0.1)
    for be in pair:
        assert sp.entries(area="health", event="probe", backend=be.id, ok="0") == []
    assert health_lines(sp) == []
    assert testc(sp.port, request_fields("/size/2"), n=6, parallel=3).statuses() == [200] * 6


class Traffic:
    """Steady GET traffic from a thread: spooky-testc runs of 20 requests, 4 at once."""

    def __init__(self, testc, port):
        self.testc = testc
        self.port = port
        self.responses = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            r = self.testc(self.port, request_fields("/steady"), n=20, parallel=4, timeout_s=20)
            self.responses += r.responses

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)

    def count(self):
        return len(self.responses)


def test_killed_backend_is_ejected_and_readmitted_after_restart(make_testd, make_spooky, certs,
                                                               testc):
    trio = [make_testd(f"testd-{i}") for i in (1, 2, 3)]
    victim = trio[1]
    sp = make_spooky([probed_upstream(trio, certs)],
                     timeouts={"connect_ms": 1000, "response_ms": 1000})
    for be in trio:
        sp.wait_entries(area="upstream", event="connected", backend=be.id, timeout=3.0)

    with Traffic(testc, sp.port) as traffic:
        procs_mod.poll(lambda: traffic.count() >= 40, 10, "steady traffic")
        t_kill = time.monotonic()
        victim.proc.send_signal(9)  # SIGKILL: no goodbye to spooky
        sp.wait_entries(area="upstream", event="health", backend=victim.id, to="unhealthy",
                        timeout=3.0)
        t_eject = time.monotonic() - t_kill
        assert t_eject < 3.0
        at_restart = traffic.count()
        procs_mod.poll(lambda: traffic.count() >= at_restart + 40, 10, "traffic while down")
        assert victim.proc.wait(5) is not None
        t_restart = time.monotonic()
        back = make_testd(victim.id, port=victim.port)
        sp.wait_entries(area="upstream", event="health", backend=back.id, to="healthy",
                        timeout=8.0)
        t_readmit = time.monotonic() - t_restart
        at_readmit = traffic.count()
        procs_mod.poll(lambda: traffic.count() >= at_readmit + 40, 10, "traffic after readmit")

    statuses = [r.status for r in traffic.responses]
    failed = [s for s in statuses if s != 200]
    print(f"requests={len(statuses)} failed={failed} eject_s={t_eject:.2f} "
          f"readmit_s={t_readmit:.2f}")
    # Requests in flight on the killed backend were GETs on a dead connection: retried.
    assert failed == [], failed
    assert t_readmit < 8.0
    # The others stayed healthy throughout.
    for be in (trio[0], trio[2]):
        assert health_lines(sp, be.id) == []
    # Traffic after readmission reaches the restarted backend again.
    after = testc(sp.port, request_fields("/after"), n=30, parallel=5)
    assert {r.header("x-backend-id") for r in after.responses} == {be.id for be in trio}
