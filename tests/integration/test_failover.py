"""Failover with DEFAULT settings (issue 9): what a new user gets when a backend dies.

Every test here runs spooky as a user writes it (spooky_defaults: listener, upstream, backends;
every timeout, health, breaker, retry and pool setting at its default) with two workers, under
steady load from an independent HTTP/3 client (spooky-h3load, quic-go), for each backend
protocol. Times are read from spooky's own log lines (ts=) against the moment the test acted."""

import datetime
import os
import signal
import time

import pytest

from spookytest import procs

pytest_plugins = ["conftest_h2"]

LOAD = {"conns": 10, "streams": 10, "duration_s": 90, "timeout_s": 20}


def log_time(entry):
    """Unix seconds of a log line's ts=2026-12-04T17:13:43.164Z."""
    return datetime.datetime.strptime(entry["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def after(t0):
    return lambda ts: ts is not None and log_time({"ts": ts}) >= t0


class Trio:
    """Three backends of one protocol, the path they all serve, and how to restart one."""

    def __init__(self, backends, path, restart):
        self.backends = backends
        self.path = path
        self.restart = restart


@pytest.fixture(params=["h3", "h2", "http1"])
def trio(request, make_testd, make_nghttpd, make_nginx):
    kind = request.param
    if kind == "h3":
        return Trio([make_testd(f"be-{i}") for i in range(3)], "/hello",
                    lambda b: make_testd(b.id, port=b.port))
    if kind == "h2":
        return Trio([make_nghttpd(f"be-{i}") for i in range(3)], "/1k.bin",
                    lambda b: make_nghttpd(b.id, port=b.port))
    return Trio([make_nginx(f"be-{i}") for i in range(3)], "/1k.bin",
                lambda b: make_nginx(b.id, port=b.port))


def served_by(sp, backend_id, since=0.0):
    return [e for e in sp.access_log(backend=backend_id) if log_time(e) >= since]


def wait_served(sp, backend_id, count, since=0.0, timeout=20.0):
    procs.poll(lambda: len(served_by(sp, backend_id, since)) >= count, timeout,
               f"{count} requests served by {backend_id}", interval=0.05)


def health_lines(sp, backend_id, since, **kw):
    return [e for e in sp.entries(area="upstream", event="health", backend=backend_id, **kw)
            if log_time(e) >= since]


def wait_health(sp, backend_id, since, timeout=15.0, **kw):
    return procs.poll(lambda: health_lines(sp, backend_id, since, **kw), timeout,
                      f"{backend_id} health {kw}", interval=0.05)[0]


def assert_no_failures(res, max_ms):
    assert res.failed == 0 and res.stalled == 0, res
    assert set(res.statuses) == {"200"}, res
    slow = [r for r in res.timeline if r["ms"] > max_ms]
    assert not slow, f"{len(slow)} requests slower than {max_ms} ms, e.g. {slow[:3]}"


def test_kill_9_one_of_three_backends_under_load(trio, spooky_defaults, h3load_start):
    """kill -9 under load: no client sees a failure, no request takes 2 s, the dead backend is
    ejected within 1 s and readmitted within 3 s of its restart, then serves again."""
    victim = trio.backends[1]
    sp = spooky_defaults(trio.backends)
    run = h3load_start(sp.port, plan=[f"GET:{trio.path}"], **LOAD)
    wait_served(sp, victim.id, 200)
    t_kill = time.time()
    victim.proc.stop(timeout=5.0, sig=signal.SIGKILL)
    ejected = wait_health(sp, victim.id, t_kill, to="unhealthy")
    eject_s = log_time(ejected) - t_kill
    t_restart = time.time()
    back = trio.restart(victim)
    readmitted = wait_health(sp, victim.id, t_restart, **{"from": "unhealthy"})
    readmit_s = log_time(readmitted) - t_restart
    wait_served(sp, back.id, 200, since=t_restart)
    res = run.finish()
    print(f"{victim.id}: ejected {eject_s:.3f}s after the kill, readmitted {readmit_s:.3f}s "
          f"after the restart; {res}")
    assert eject_s <= 1.0, ejected
    assert readmit_s <= 3.0, readmitted
    assert_no_failures(res, max_ms=2000)


@pytest.mark.parametrize("kind", ["h3", "h2", "http1"])
def test_black_holed_backend_is_ejected_and_no_request_fails(
        netns, kind, make_testd, make_nghttpd, make_nginx, spooky_defaults, h3load_start):
    """The backend's packets silently dropped (nftables, no ICMP): its connections are found dead
    by their transport (QUIC: no ACK progress; TCP: TCP_USER_TIMEOUT and keep-alive probes), it
    is ejected within 3 s, and the GETs that were on it are retried elsewhere: none fails. When
    the network heals it is readmitted (the readmission handshake succeeds) and serves again."""
    if kind == "h3":
        backends, path = [make_testd(f"be-{i}") for i in range(3)], "/hello"
    elif kind == "h2":
        backends, path = [make_nghttpd(f"be-{i}") for i in range(3)], "/1k.bin"
    else:
        backends, path = [make_nginx(f"be-{i}") for i in range(3)], "/1k.bin"
    victim = backends[1]
    sp = spooky_defaults(backends)
    run = h3load_start(sp.port, plan=[f"GET:{path}"], **LOAD)
    wait_served(sp, victim.id, 200)
    t_drop = time.time()
    if kind == "h3":
        netns.black_hole_udp(victim.port)
    else:
        netns.black_hole_tcp(victim.port)
    ejected = wait_health(sp, victim.id, t_drop, to="unhealthy")
    eject_s = log_time(ejected) - t_drop
    # Traffic goes on around it for a while; then the network heals.
    n = run.requests_so_far()
    procs.poll(lambda: run.requests_so_far() >= n + 2000, 30, "2000 more requests")
    t_heal = time.time()
    netns.heal()
    wait_health(sp, victim.id, t_heal, timeout=20.0, **{"from": "unhealthy"})
    wait_served(sp, victim.id, 100, since=t_heal, timeout=20.0)
    res = run.finish()
    longest = max(r["ms"] for r in res.timeline)
    print(f"{kind} {victim.id}: ejected {eject_s:.3f}s after the drop; longest request "
          f"{longest:.0f} ms; {res}")
    # The connection's death ejects it at once (connection_lost), unless the requests that died
    # with it already made the consecutive-failure count (consecutive_failures): either way now.
    assert ejected["reason"] in ("connection_lost", "consecutive_failures"), ejected
    assert eject_s <= 3.0, ejected
    assert_no_failures(res, max_ms=4000)
