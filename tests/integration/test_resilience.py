"""Resilience (issue 5): passive health ejects a backend answering 500 and one that hangs, the
circuit breaker opens, half-opens and closes, and panic mode spreads the load over ejected
backends when too few are left.

Backends are spooky-testd: `--fail-status 500` makes one answer 500 to every "hello" path,
`--delay-ms 3000` makes one hang past spooky's response timeout. Each test turns off the
mechanisms it does not test (breaker max_failures 0, passive-health thresholds 0) so that exactly
one of them acts, and readmission is pushed past the test's end (recovery_ms 60 s). Traffic is
spooky-testc; loops are bounded and wait on spooky's log lines, never on sleeps."""

import datetime
import time

import pytest

from spookytest import procs as procs_mod
from spookytest import spooky as spooky_mod
from spookytest.clients import request_fields

# Health, breakers and retries are per worker: every test runs with one worker and with two.
pytestmark = pytest.mark.parametrize("workers", [1, 2], indirect=True)

# Passive health off: no count or ratio trigger ejects or degrades.
HEALTH_OFF = {"eject_failures": 0, "eject_5xx": 0, "degrade_failures": 0, "eject_ratio_pct": 0,
              "degrade_ratio_pct": 0}
# An ejected backend stays out for the whole test.
NO_READMIT = {"recovery_ms": 60000, "max_recovery_ms": 60000}
BREAKER_OFF = {"max_failures": 0}


def resilient_upstream(backend_list, certs, passive=None, breaker=None):
    up = spooky_mod.upstream("app", backend_list, certs)
    up["passive_health"] = {**NO_READMIT, **(passive or {})}
    up["breaker"] = breaker if breaker is not None else dict(BREAKER_OFF)
    return up


def backend_ids(result):
    return [r.header("x-backend-id") for r in result.responses]


def drive_until(sp, testc, path, n, parallel, what, timeout=20.0, **criteria):
    """Sends rounds of n requests (each round a new connection, landing on any worker) until
    EVERY worker logged an entry matching criteria (health and breakers are per worker), for at
    most timeout seconds. Returns the responses sent meanwhile."""
    sent = []

    def round_done():
        sent.extend(testc(sp.port, request_fields(path), n=n, parallel=parallel).responses)
        return sp.every_worker_logged(**criteria)

    procs_mod.poll(round_done, timeout, what, interval=0.05)
    return sent


def log_time(entry):
    return datetime.datetime.strptime(entry["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def one_per_worker(sp, **criteria):
    """The matching lines, asserting exactly one per worker."""
    per = sp.by_worker(**criteria)
    assert len(per) == sp.workers and all(len(v) == 1 for v in per.values()), per
    return [v[0] for v in per.values()]


def failures_by_worker(sp, path, status):
    per = {}
    for e in sp.access_log(path=path, status=str(status)):
        per[e.get("worker", "0")] = per.get(e.get("worker", "0"), 0) + 1
    return per


def test_backend_answering_500_is_ejected_by_passive_health(make_testd, make_spooky, certs,
                                                            testc):
    good = [make_testd(f"good-{i}") for i in (1, 2)]
    bad = make_testd("bad", extra_args=["--fail-status", "500"])
    up = resilient_upstream([*good, bad], certs,
                            passive={"eject_5xx": 3, "eject_failures": 5, "degrade_failures": 2})
    sp = make_spooky([up])
    t0 = time.monotonic()
    before = drive_until(sp, testc, "/work", 6, 1, "ejection", area="upstream", event="health",
                         backend="bad", to="unhealthy")
    t_eject = time.monotonic() - t0
    for line in one_per_worker(sp, area="upstream", event="health", backend="bad", to="unhealthy"):
        assert line["reason"] == "consecutive_5xx"
    failed = [r.status for r in before if r.status != 200]
    # Before the ejection: the bad backend's own 500s (3 in a row eject it, in each worker),
    # nothing else.
    assert set(failed) == {500}, failed
    assert all(3 <= n <= 5 for n in failures_by_worker(sp, "/work", 500).values())
    after = testc(sp.port, request_fields("/after"), n=30, parallel=3)
    assert after.statuses() == [200] * 30
    assert set(backend_ids(after)) == {"good-1", "good-2"}
    assert sp.entries(area="upstream", event="panic") == []  # 2 of 3 healthy: no panic
    print(f"failures_before_eject={len(failed)} eject_s={t_eject:.2f}")


def test_hanging_backend_is_ejected_by_timeouts(make_testd, make_spooky, certs, testc):
    good = [make_testd(f"good-{i}") for i in (1, 2)]
    slow = make_testd("slow", extra_args=["--delay-ms", "3000"])
    up = resilient_upstream([*good, slow], certs,
                            passive={"eject_failures": 2, "degrade_failures": 1})
    sp = make_spooky([up], timeouts={"response_ms": 300})
    t0 = time.monotonic()
    before = drive_until(sp, testc, "/work", 6, 3, "ejection", area="upstream", event="health",
                         backend="slow", to="unhealthy")
    t_eject = time.monotonic() - t0
    for line in one_per_worker(sp, area="upstream", event="health", backend="slow",
                               to="unhealthy"):
        assert line["reason"] == "consecutive_failures"
    failed = [r.status for r in before if r.status != 200]
    assert set(failed) == {504}, failed
    assert all(2 <= n <= 6 for n in failures_by_worker(sp, "/work", 504).values())
    assert {e["cause"] for e in sp.access_log(status="504")} == {"timeout"}
    after = testc(sp.port, request_fields("/after"), n=30, parallel=5)
    assert after.statuses() == [200] * 30
    assert set(backend_ids(after)) == {"good-1", "good-2"}
    # Nothing waits for the hanging backend (its hold alone takes 3 s): spooky's own durations.
    slowest = max(float(e["duration_ms"]) for e in sp.access_log(path="/after"))
    assert slowest < 2000, slowest
    print(f"failures_before_eject={len(failed)} eject_s={t_eject:.2f}")


def test_breaker_opens_half_opens_and_a_trial_closes_it(make_testd, make_spooky, certs, testc):
    """One backend; passive health off so only the breaker acts. /status/500 fails (a 5xx counts
    as a breaker failure), any other path succeeds: the backend "recovers" when the traffic
    changes path, deterministically."""
    be = make_testd("flaky")
    breaker = {"max_failures": 3, "open_ms": 1000, "max_open_ms": 1000,
               "half_open_requests": 1, "half_open_successes": 1}
    up = resilient_upstream([be], certs, passive=HEALTH_OFF, breaker=breaker)
    sp = make_spooky([up])
    # Three 500s in a row on one connection open that worker's breaker; every worker's, here.
    failing = drive_until(sp, testc, "/status/500", 3, 1, "every breaker opening",
                          area="upstream", event="breaker", backend="flaky", to="open")
    assert {r.status for r in failing} <= {500, 503}
    for opened in one_per_worker(sp, area="upstream", event="breaker", backend="flaky", to="open"):
        assert opened["from"] == "closed" and opened["reason"] == "consecutive_failures"
    # Open: spooky answers itself, the backend is not asked.
    shut = testc(sp.port, request_fields("/ok"), n=1)
    assert shut.statuses() == [503]
    # After open_ms the next request is the trial; it succeeds and closes the breaker.
    procs_mod.poll(lambda: testc(sp.port, request_fields("/ok"), n=1).statuses() == [200] and
                   sp.every_worker_logged(area="upstream", event="breaker", backend="flaky",
                                          to="closed"), 10.0, "a trial to pass in every worker",
                   interval=0.1)
    for w, (closed,) in sp.by_worker(area="upstream", event="breaker", backend="flaky",
                                     to="closed").items():
        assert closed["from"] == "half_open" and closed["reason"] == "trials_succeeded"
        (opened,) = sp.by_worker(area="upstream", event="breaker", backend="flaky",
                                 to="open")[w]
        (half,) = sp.by_worker(area="upstream", event="breaker", backend="flaky",
                               to="half_open")[w]
        assert half["from"] == "open" and half["reason"] == "open_time_elapsed"
        # open_ms, read off spooky's own clock
        assert log_time(half) - log_time(opened) >= 1.0 - 0.01, (opened, half)
    assert testc(sp.port, request_fields("/ok"), n=6, parallel=3).statuses() == [200] * 6


def test_breaker_opens_on_a_dead_backend_and_closes_after_restart(make_testd, make_spooky, certs,
                                                                  testc):
    """Two backends, one stopped then started again on the same port: connect failures open its
    breaker, and after the restart a trial request closes it."""
    keep = make_testd("keep")
    flaky = make_testd("flaky")
    breaker = {"max_failures": 2, "open_ms": 500, "max_open_ms": 500}
    up = resilient_upstream([keep, flaky], certs, passive=HEALTH_OFF,
                            breaker=breaker)
    sp = make_spooky([up], timeouts={"connect_ms": 300})
    assert testc(sp.port, request_fields("/warm"), n=4, parallel=1).statuses() == [200] * 4
    flaky.stop()
    # Each connect failure also holds the backend down for a while (1 s, then longer), so the
    # second failed attempt comes only after that: poll with traffic.
    outage = drive_until(sp, testc, "/work", 4, 2, "breaker opening", area="upstream",
                         event="breaker", backend="flaky", to="open")
    # Connect failures are retried on the other backend: the clients saw none of them.
    assert {r.status for r in outage} == {200}
    for opened in one_per_worker(sp, area="upstream", event="breaker", backend="flaky", to="open"):
        assert opened["reason"] == "consecutive_failures"
    back = make_testd("flaky", port=flaky.port)

    def flaky_serves_everywhere():
        testc(sp.port, request_fields("/back"), n=4, parallel=1)
        return sp.every_worker_logged(area="upstream", event="breaker", backend="flaky",
                                      to="closed")

    procs_mod.poll(flaky_serves_everywhere, 20.0, "the restarted backend's breakers to close",
                   interval=0.2)
    assert back.proc.running()
    assert sp.every_worker_logged(area="upstream", event="breaker", backend="flaky",
                                  to="half_open")


@pytest.mark.parametrize("threshold", [100, 70, 0])
def test_panic_spreads_load_over_ejected_backends(threshold, make_testd, make_spooky, certs,
                                                  testc):
    good = make_testd("good")
    bad = [make_testd(f"bad-{i}", extra_args=["--fail-status", "500"]) for i in (1, 2)]
    passive = {**HEALTH_OFF, "eject_5xx": 2, "panic_threshold_pct": threshold}
    up = resilient_upstream([good, *bad], certs, passive=passive)
    sp = make_spooky([up])
    for b in bad:
        drive_until(sp, testc, "/work", 6, 1, f"{b.id} ejection", area="upstream",
                    event="health", backend=b.id, to="unhealthy")
    r = testc(sp.port, request_fields("/spread"), n=30, parallel=1)
    ids = backend_ids(r)
    panics = sp.entries(area="upstream", event="panic", state="on")
    if threshold:
        # 1 of 3 healthy (33%) is below the threshold: every backend gets traffic again.
        assert set(ids) == {"good", "bad-1", "bad-2"}, ids
        assert sorted(set(r.statuses())) == [200, 500]
        # logged once per worker, not per request
        assert len(one_per_worker(sp, area="upstream", event="panic", state="on")) == sp.workers
        assert {p["upstream"] for p in panics} == {"app"}
    else:
        assert set(ids) == {"good"}, ids
        assert r.statuses() == [200] * 30
        assert panics == []
