"""Failover with DEFAULT settings (issue 9): what a new user gets when a backend dies.

Every test here runs spooky as a user writes it (spooky_defaults: listener, upstream, backends;
every timeout, health, breaker, retry and pool setting at its default) with two workers, under
steady load from an independent HTTP/3 client (spooky-h3load, quic-go), for each backend
protocol. Times are read from spooky's own log lines (ts=) against the moment the test acted."""

import datetime
import signal
import threading
import time

import pytest

from spookytest import procs
from spookytest.backends import stats_delta
from spookytest.clients import request_fields

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


@pytest.mark.parametrize("kind", ["h3", "h2", "http1"])
def test_clients_that_never_read_do_not_slow_the_others(kind, make_testd, make_nghttpd,
                                                         make_nginx, spooky_defaults, h3load,
                                                         h3load_start):
    """Four clients take 1 MiB responses and never read them, on the same pooled backend
    connection(s) as a normal client: the normal client's p99 stays within 2x its unloaded p99
    (stream credit waits for each client, connection credit does not; an HTTP/1.1 connection a
    slow reader holds does not count against the connection cap)."""
    if kind == "h3":
        be, small, big = make_testd("be-1"), "/size/1000", "/size/1048576"
    elif kind == "h2":
        be, small, big = make_nghttpd("be-1"), "/1k.bin", "/1m.bin"
    else:
        be, small, big = make_nginx("be-1"), "/1k.bin", "/1m.bin"
    sp = spooky_defaults([be], workers=1)  # one worker: one pool, the slow and the normal share it
    normal = {"plan": [f"GET:{small}"], "conns": 1, "streams": 4, "duration_s": 4}
    unloaded = h3load(sp.port, **normal)
    slow = h3load_start(sp.port, plan=[f"GET:{big}"], conns=4, streams=1, noread=True,
                        duration_s=60)
    procs.poll(lambda: slow.holding() >= 4, 20, "4 responses held unread")
    loaded = h3load(sp.port, **normal)
    slow.finish()
    print(f"{kind}: unloaded {unloaded}; with 4 non-reading clients {loaded}")
    for r in (unloaded, loaded):
        assert r.failed == 0 and r.stalled == 0, r
    # 2x, with 10 ms of slack for scheduling noise on a loaded two-core machine
    assert loaded.p99_ms <= max(2 * unloaded.p99_ms, unloaded.p99_ms + 10), (unloaded, loaded)


def test_backend_restart_under_load_loses_nothing(trio, spooky_defaults, h3load_start):
    """A backend stopped (SIGTERM) and started again on the same port while the load runs: no
    request fails (the stale pooled connections are found dead and their requests retried)."""
    victim = trio.backends[0]
    sp = spooky_defaults(trio.backends)
    run = h3load_start(sp.port, plan=[f"GET:{trio.path}"], **LOAD)
    wait_served(sp, victim.id, 200)
    victim.proc.stop(timeout=5.0)
    t_restart = time.time()
    back = trio.restart(victim)
    wait_served(sp, back.id, 200, since=t_restart)
    res = run.finish()
    print(f"restart of {victim.id}: {res}")
    assert_no_failures(res, max_ms=2000)


# --- one dying connection, many requests: retried as one event ------------------------------

STEERED = {"strategy": "rendezvous", "hash_key": {"source": "header", "name": "x-key"}}


def steered_pair(make_testd, spooky_defaults):
    """Two testd backends and spooky steering by an x-key header (rendezvous), so that a test
    can put many requests on one backend's connection; every failover setting at its default.
    Returns (spooky, key, the backend the key goes to, the other)."""
    a, b = make_testd("be-a"), make_testd("be-b")
    sp = spooky_defaults([a, b], workers=1, upstream_extra=STEERED)
    return sp, a, b


def key_for(sp, testc, want):
    """A header value the rendezvous hash sends to backend `want`."""
    for i in range(64):
        key = f"k{i}"
        testc(sp.port, request_fields("/probe", extra=[("x-key", key)]))
        (e,) = sp.wait_access(path="/probe", count=i + 1)[i:i + 1]
        if e["backend"] == want.id:
            return key
    raise AssertionError(f"no key found for {want.id}")


def in_background(fn, *args, **kw):
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", fn(*args, **kw)), daemon=True)
    t.start()
    return t, box


def test_a_dying_connection_retries_all_fifty_gets_as_one_budget_event(make_testd,
                                                                        spooky_defaults, testc):
    """50 GETs in flight on one backend connection, the backend killed: all 50 are retried on
    the other backend and succeed, though the default retry budget alone (20% of requests in
    flight, at least 3) would refuse most of 50 separate retries: the connection's death is one
    event. None of them is charged to the budget twice."""
    sp, a, b = steered_pair(make_testd, spooky_defaults)
    key = key_for(sp, testc, a)
    before = a.stats()
    t, box = in_background(testc, sp.port, request_fields("/delay/3000", extra=[("x-key", key)]),
                           n=50, parallel=50)
    procs.poll(lambda: a.stats()["requests"] - before["requests"] >= 51, 20,
               "50 GETs in flight on be-a", interval=0.1)
    a.proc.stop(timeout=5.0, sig=signal.SIGKILL)
    t.join(60)
    r = box["r"]
    assert r.statuses() == [200] * 50, r.statuses()
    got = [e for e in sp.access_log(path="/delay/3000")]
    assert len(got) == 50 and {e["backend"] for e in got} == {"be-b"}, got[:3]
    assert {e["tries"] for e in got} == {"2"}
    assert not sp.entries(reason="retry_budget")


def test_a_post_on_a_dying_connection_is_not_retried(make_testd, spooky_defaults, testc,
                                                      tmp_path):
    """A POST already sent when its backend dies may have been processed: it is not retried,
    the client gets 502 with the cause in the access log."""
    sp, a, b = steered_pair(make_testd, spooky_defaults)
    key = key_for(sp, testc, a)
    body = tmp_path / "body.bin"
    body.write_bytes(b"x" * 1000)
    before = a.stats()
    t, box = in_background(testc, sp.port, request_fields("/delay/3000", method="POST",
                                                          extra=[("x-key", key)]),
                           body=body)
    procs.poll(lambda: a.stats()["requests"] - before["requests"] >= 2, 20,
               "the POST on be-a", interval=0.1)
    a.proc.stop(timeout=5.0, sig=signal.SIGKILL)
    t.join(60)
    (resp,) = box["r"].responses
    assert resp.status == 502
    (e,) = sp.wait_access(path="/delay/3000")
    assert (e["status"], e["cause"], e["class"], e["tries"]) == \
        ("502", "conn_lost", "backend_protocol", "1"), e


def test_posts_above_a_goaway_id_are_retried(make_testd, make_quicgo, spooky_defaults, h3load):
    """An HTTP/3 backend's final GOAWAY: the requests it will not process (at or above its id,
    rejected with H3_REQUEST_REJECTED, or still unsent) go to another backend whatever their
    method. be-a (spooky-testd) answers /goaway-final with a GOAWAY, be-b (quic-go) never sends
    one: every POST succeeds, and many were retried as refused."""
    a, b = make_testd("be-a"), make_quicgo("be-b")
    sp = spooky_defaults([a, b], workers=1)
    r = h3load(sp.port, plan=["GET:/goaway-final"] + ["POST:/echo:1000"] * 5, conns=1,
               streams=12, duration_s=4)
    refused = sp.entries(action="retry_next_backend", cause="refused")
    print(f"{r}; {len(refused)} retried as refused")
    assert r.failed == 0 and set(r.statuses) == {"200"}, r
    assert refused, "no request was above a GOAWAY id"
    assert {e["status"] for e in sp.access_log(method="POST")} == {"200"}


def test_retry_budget_stops_a_retry_storm_when_every_backend_fails(make_testd, spooky_defaults,
                                                                   h3load):
    """Three backends that reset every request: each failure is its own event, and the default
    budget (retries in flight at most 20% of requests in flight, or 3) refuses most retries, so
    the backends see far fewer than the 3 tries per request that retries.max alone allows."""
    bes = [make_testd(f"be-{i}") for i in range(3)]
    sp = spooky_defaults(bes, workers=1)
    before = [b.stats() for b in bes]
    r = h3load(sp.port, plan=["GET:/reset"], conns=2, streams=10, duration_s=3, timeout_s=10)
    tries = sum(stats_delta(x, b.stats())["requests"] for x, b in zip(before, bes))
    retries = len(sp.entries(action="retry_next_backend"))
    denied = len(sp.entries(reason="retry_budget"))
    print(f"{r.requests} requests, {tries} tries at the backends, {retries} retries, {denied} "
          "refused by the budget")
    # Every request fails (502, or 503 once passive health ejected all three), the budget
    # refused retries, and the backends saw few more tries than the requests that reached them.
    assert set(r.statuses) <= {"502", "503"} and r.requests > 100, r
    assert denied > 0
    reached = int(r.statuses.get("502", 0))
    assert tries < 1.5 * reached + 3, (tries, reached)
