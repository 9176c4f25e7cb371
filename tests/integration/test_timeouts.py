"""Per-upstream timeouts and the per-try timeout (try_ms).

Backends are spooky-testd; `--delay-ms 2000` makes one hold every request for 2 s before acting
on it. Passive health and the breaker are off so that the slow backend stays in the rotation and
every request is shaped only by the timeouts under test."""


import pytest

from spookytest import spooky as spooky_mod
from spookytest.clients import request_fields

# Health, breakers and retries are per worker: every test runs with one worker and with two.
pytestmark = pytest.mark.parametrize("workers", [1, 2], indirect=True)

HEALTH_OFF = {"eject_failures": 0, "eject_5xx": 0, "degrade_failures": 0, "eject_ratio_pct": 0,
              "degrade_ratio_pct": 0}
BREAKER_OFF = {"max_failures": 0}


def timed_upstream(name, backend_list, certs, timeouts, routes=None):
    up = spooky_mod.upstream(name, backend_list, certs, routes=routes)
    up["passive_health"] = dict(HEALTH_OFF)
    up["breaker"] = dict(BREAKER_OFF)
    if timeouts is not None:
        up["timeouts"] = timeouts
    return up


def test_try_timeout_retries_an_idempotent_request_on_another_backend(make_testd, make_spooky,
                                                                       certs, testc):
    fast = make_testd("fast")
    slow = make_testd("slow", extra_args=["--delay-ms", "2000"])
    up = timed_upstream("app", [fast, slow], certs, {"try_ms": 300, "response_ms": 5000})
    sp = make_spooky([up])
    # Round-robin alternates, so half of the first tries land on the slow backend.
    res = testc(sp.port, request_fields("/work"), n=6, parallel=2)
    assert res.statuses() == [200] * 6
    assert {r.header("x-backend-id") for r in res.responses} == {"fast"}
    logs = sp.wait_access(count=6, status="200")
    assert all(e["backend"] == "fast" and e["cause"] == "-" for e in logs), logs
    # Each request is quick: a slow try is cut at 300 ms, never held for the backend's 2 s.
    assert all(float(e["duration_ms"]) < 1000 for e in logs), logs
    retried = [e for e in logs if e["tries"] == "2"]
    assert len(retried) >= 2, logs
    assert {e["tries"] for e in logs} <= {"1", "2"}, logs
    assert all(float(e["duration_ms"]) >= 300 - 10 for e in retried), retried
    retries = sp.entries(area="proxy", action="retry_next_backend", cause="try_timeout")
    assert len(retries) == len(retried)
    assert {e["backend"] for e in retries} == {"slow"}
    # Nobody waited for the slow backend's 2 s: spooky's own durations.
    assert max(float(e["duration_ms"]) for e in logs) < 1500, logs


def test_try_timeout_of_a_post_with_a_body_is_not_retried(make_testd, make_spooky, certs, testc,
                                                          tmp_path):
    fast = make_testd("fast")
    slow = make_testd("slow", extra_args=["--delay-ms", "2000"])
    up = timed_upstream("app", [fast, slow], certs, {"try_ms": 300, "response_ms": 5000})
    sp = make_spooky([up])
    body = tmp_path / "post-body.txt"
    body.write_text("a body that cannot be replayed once sent\n")
    # Two in a row: round-robin sends one to each backend.
    res = testc(sp.port, request_fields("/echo", method="POST"), n=2, parallel=1, body=body)
    assert sorted(res.statuses()) == [200, 504]
    (failed,) = sp.wait_access(status="504")
    assert failed["backend"] == "slow"
    assert failed["cause"] == "try_timeout"
    assert failed["class"] == "backend_timeout"
    assert failed["tries"] == "1"
    assert 300 - 10 <= float(failed["duration_ms"]) < 1500, failed
    assert sp.entries(area="proxy", action="retry_next_backend") == []
    (ok,) = sp.wait_access(status="200")
    assert ok["backend"] == "fast" and ok["tries"] == "1"


def test_upstream_response_ms_overrides_the_global_one(make_testd, make_spooky, certs, testc):
    be = make_testd("app-1")
    short = timed_upstream("short", [{**be.spooky_backend(), "id": "app-1-short"}], certs, {"response_ms": 500},
                           routes=[{"path_prefix": "/delay/3000"}])
    inherit = timed_upstream("inherit", [be], certs, None, routes=[{"path_prefix": "/"}])
    sp = make_spooky([short, inherit], timeouts={"response_ms": 10000})
    (r,) = testc(sp.port, request_fields("/delay/3000")).responses
    assert r.status == 504
    (e,) = sp.wait_access(status="504")
    assert e["upstream"] == "short" and e["cause"] == "timeout"
    assert 500 - 10 <= float(e["duration_ms"]) < 1500, e
    # The upstream without its own response_ms keeps the global 10 s: a 1 s backend is fine.
    (ok,) = testc(sp.port, request_fields("/delay/1000")).responses
    assert ok.status == 200
    (e,) = sp.wait_access(status="200")
    assert e["upstream"] == "inherit" and float(e["duration_ms"]) >= 1000 - 10
