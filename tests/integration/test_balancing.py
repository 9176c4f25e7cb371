"""Load balancing through the real daemon (issue 4): weighted distribution, latency-aware
strategies against a slow backend, sticky-cookie / header / source-IP affinity (also across a
restart of spooky), routing to several pools with and without default_upstream, and slow start.

Backends are spooky-testd processes; every response names its backend in `x-backend-id`, which
is what these tests count. spooky runs one worker, so the balancer sees every request."""

import base64
import collections
import datetime
import time

import pytest

from spookytest import content as content_mod, procs as procs_mod, spooky as spooky_mod
from spookytest.clients import H3_INTERNAL_ERROR, request_fields

SECRET = "integration-test-sticky-secret-0123456789"
COOKIE = "lbtest"
IDS = ("be-1", "be-2", "be-3")


# --- helpers ----------------------------------------------------------------------------------

def lb_upstream(name, backend_list, certs, *, strategy="round_robin", weights=None, routes=None,
                **keys):
    """spooky_mod.upstream() plus the issue-4 keys (hash_key, sticky_cookie, slow_start_ms)."""
    entries = [b if isinstance(b, dict) else b.spooky_backend() for b in backend_list]
    for entry, w in zip(entries, weights or ()):
        entry["weight"] = w
    up = spooky_mod.upstream(name, entries, certs, strategy=strategy, routes=routes)
    up.update(keys)
    return up


def sticky(name=COOKIE, secret=SECRET):
    return {"name": name, "secret": secret}


def backend_counts(result, expect):
    """Counter of x-backend-id over `result`, after checking all `expect` requests got 200."""
    assert len(result.responses) == expect, f"{len(result.responses)} of {expect} answered"
    bad = [(r.status, r.reset, r.error) for r in result.responses if r.status != 200]
    assert not bad, f"{len(bad)} requests failed, e.g. {bad[:5]}"
    return collections.Counter(r.header("x-backend-id") for r in result.responses)


def one_backend(result, expect):
    counts = backend_counts(result, expect)
    assert len(counts) == 1, f"requests spread over {dict(counts)}"
    return next(iter(counts))


def set_cookie_value(resp, name=COOKIE):
    """The value of the `name` cookie that `resp` sets, or None; checks its attributes."""
    for sc in resp.headers_all("set-cookie"):
        first, *attrs = [p.strip() for p in sc.split(";")]
        n, _, v = first.partition("=")
        if n == name:
            assert {"Path=/", "Secure", "HttpOnly", "SameSite=Lax"} <= set(attrs), sc
            return v
    return None


def cookie_backend_id(value):
    """The backend id a sticky cookie value names (sticky.h: base64url(id || 16-byte MAC))."""
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    return raw[:-16].decode()


def forge(value, backend_id):
    """`value` re-pointed at `backend_id` with the original MAC kept: what a client trying to pick
    its own backend would send."""
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    return base64.urlsafe_b64encode(backend_id.encode() + raw[-16:]).rstrip(b"=").decode()


@pytest.fixture
def trio(make_testd):
    """Three spooky-testd backends be-1, be-2, be-3."""
    return [make_testd(i) for i in IDS]


def log_time(entry):
    """Unix seconds of a log line's ts= (spooky's own clock)."""
    return datetime.datetime.strptime(entry["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def share(counts, backend_id):
    return counts[backend_id] / sum(counts.values())


# --- the test tools' options these tests rely on (spooky-testd --delay-ms) ---------------------

def test_testd_delay_ms_holds_every_endpoint(make_testd, testc, content):
    td = make_testd("held", extra_args=["--delay-ms", "200"])
    r = testc(td.port, request_fields("/size/1000"), n=5, parallel=5)
    assert [x.status for x in r.responses] == [200] * 5
    assert all(x.body_sha256 == content_mod.alphabet_sha256(1000) for x in r.responses)
    assert r.elapsed_s >= 0.2
    f = content["1m.bin"]
    (echo,) = testc(td.port, request_fields("/echo", method="POST"), body=f.path).responses
    assert (echo.status, echo.body_len, echo.body_sha256) == (200, f.size, f.sha256)
    (tr,) = testc(td.port, request_fields("/trailers", method="POST"),
                  body=content["1k.bin"].path, trailers=[("x-req", "abc")]).responses
    assert tr.status == 200 and tr.trailer("x-echo-x-req") == "abc"
    d = testc(td.port, request_fields("/delay/100"))
    assert d.responses[0].status == 200 and d.elapsed_s >= 0.3
    (st,) = testc(td.port, request_fields("/status/503")).responses
    assert st.status == 503
    (rs,) = testc(td.port, request_fields("/reset")).responses
    assert rs.status is None and rs.reset == H3_INTERNAL_ERROR


# --- weighted distribution --------------------------------------------------------------------

# round_robin and weighted_round_robin are smooth weighted round-robin: with one worker and no
# retries the counts are exact (1500/900/600), ±3% is the bound. random draws each pick
# independently: over 3000 picks the standard deviation of a share p is sqrt(p(1-p)/3000), at
# most 0.91 points, so ±3% is 3.3 sigma and would fail about once in 700 runs; ±4% (4.4 sigma,
# about once in 10^5 runs) keeps the test meaningful without flaking.
@pytest.mark.parametrize("strategy,tolerance", [("round_robin", 0.03),
                                                ("weighted_round_robin", 0.03),
                                                ("random", 0.04)])
def test_weights_5_3_2_split_3000_requests(strategy, tolerance, trio, make_spooky, certs,
                                            testc):
    up = lb_upstream("app", trio, certs, strategy=strategy, weights=(5, 3, 2))
    sp = make_spooky([up], extra={"log": {"access": False}})
    counts = collections.Counter()
    for _ in range(2):   # two client connections, 1500 requests each
        r = testc(sp.port, request_fields("/w"), n=1500, parallel=50, timeout_s=60)
        counts += backend_counts(r, 1500)
    for backend_id, weight in zip(IDS, (5, 3, 2)):
        got = share(counts, backend_id)
        assert abs(got - weight / 10) <= tolerance, \
            f"{strategy}: {backend_id} got {got:.3f}, want {weight / 10}±{tolerance}: {counts}"


# --- latency-aware strategies -----------------------------------------------------------------

@pytest.mark.parametrize("strategy", ["ewma", "least_conn", "p2c"])
def test_slow_backend_gets_a_much_smaller_share(strategy, make_testd, make_spooky, certs, testc):
    fast = [make_testd("fast-1"), make_testd("fast-2")]
    slow = make_testd("slow", extra_args=["--delay-ms", "50"])
    sp = make_spooky([lb_upstream("app", [*fast, slow], certs, strategy=strategy)])
    r = testc(sp.port, request_fields("/x"), n=600, parallel=20, timeout_s=60)
    counts = backend_counts(r, 600)
    # Equal weights: a latency-blind strategy would send it a third (200 requests).
    assert share(counts, "slow") < 0.15, f"{strategy}: {dict(counts)}"
    assert counts["fast-1"] > 0 and counts["fast-2"] > 0, dict(counts)


# --- sticky cookie ----------------------------------------------------------------------------

def test_sticky_cookie_pins_100_requests_to_one_backend(trio, make_spooky, certs, testc):
    sp = make_spooky([lb_upstream("app", trio, certs, sticky_cookie=sticky())])
    first = testc(sp.port, request_fields("/s")).responses[0]
    assert first.status == 200
    value = set_cookie_value(first)
    assert value, f"no {COOKIE} cookie set: {first.headers}"
    pinned = first.header("x-backend-id")
    assert cookie_backend_id(value) == pinned

    # round_robin alone would rotate over all three; the cookie holds them on one.
    r = testc(sp.port, request_fields("/s", extra=[("cookie", f"other=1; {COOKIE}={value}")]),
              n=100, parallel=10)
    assert one_backend(r, 100) == pinned
    assert all(set_cookie_value(x) is None for x in r.responses), "a valid cookie was replaced"


def test_sticky_cookie_max_age_is_sent(trio, make_spooky, certs, testc):
    sp = make_spooky([lb_upstream("app", trio, certs,
                                  sticky_cookie=sticky() | {"max_age": 3600})])
    resp = testc(sp.port, request_fields("/s")).responses[0]
    assert set_cookie_value(resp)
    assert "Max-Age=3600" in [p.strip() for p in resp.header("set-cookie").split(";")]


def test_forged_sticky_cookie_is_ignored_and_replaced(trio, make_spooky, certs, testc):
    sp = make_spooky([lb_upstream("app", trio, certs, sticky_cookie=sticky())])
    value = set_cookie_value(testc(sp.port, request_fields("/s")).responses[0])
    target = "be-2" if cookie_backend_id(value) != "be-2" else "be-3"
    forged = forge(value, target)
    garbage = "not-a-valid-cookie"
    for bad in (forged, garbage, value[:-2] + ("AA" if value[-2:] != "AA" else "BB")):
        r = testc(sp.port, request_fields("/s", extra=[("cookie", f"{COOKIE}={bad}")]),
                  n=30, parallel=1)
        counts = backend_counts(r, 30)
        # Not pinned: round robin still visits every backend, the forged target included.
        assert set(counts) == set(IDS), f"cookie {bad!r} pinned requests: {dict(counts)}"
        for resp in r.responses:
            new = set_cookie_value(resp)
            assert new is not None and new != bad, f"no fresh cookie for {bad!r}"
            assert cookie_backend_id(new) == resp.header("x-backend-id")


def test_sticky_cookie_falls_back_when_pinned_backend_stops(trio, make_spooky, certs, testc):
    sp = make_spooky([lb_upstream("app", trio, certs, sticky_cookie=sticky())])
    value = set_cookie_value(testc(sp.port, request_fields("/s")).responses[0])
    pinned = cookie_backend_id(value)
    fields = request_fields("/s", extra=[("cookie", f"{COOKIE}={value}")])
    assert one_backend(testc(sp.port, fields, n=10, parallel=5), 10) == pinned

    assert next(b for b in trio if b.id == pinned).stop() == 0
    r = testc(sp.port, fields, n=20, parallel=1)
    counts = backend_counts(r, 20)
    assert pinned not in counts, dict(counts)
    fresh = {set_cookie_value(x) for x in r.responses}
    assert None not in fresh, "a fallback response did not set a new cookie"
    assert all(cookie_backend_id(v) != pinned for v in fresh)

    # The new cookie pins the client to its new backend.
    new_value = set_cookie_value(r.responses[-1])
    new_backend = cookie_backend_id(new_value)
    r = testc(sp.port, request_fields("/s", extra=[("cookie", f"{COOKIE}={new_value}")]),
              n=50, parallel=10)
    assert one_backend(r, 50) == new_backend


# --- hash-key affinity (rendezvous) -----------------------------------------------------------

HEADER_KEY = {"source": "header", "name": "X-User"}


def test_header_affinity_holds_over_100_requests(trio, make_spooky, certs, testc):
    sp = make_spooky([lb_upstream("app", trio, certs, strategy="rendezvous",
                                  hash_key=HEADER_KEY)])
    r = testc(sp.port, request_fields("/h", extra=[("x-user", "alice")]), n=100, parallel=10)
    alice = one_backend(r, 100)
    r = testc(sp.port, request_fields("/h", extra=[("x-user", "alice")]), n=20, parallel=5)
    assert one_backend(r, 20) == alice, "a second connection moved alice"

    owners = {}
    for i in range(24):
        r = testc(sp.port, request_fields("/h", extra=[("x-user", f"user-{i}")]), n=3,
                  parallel=3)
        owners[i] = one_backend(r, 3)
    # Hashing is deterministic; for 24 arbitrary keys the chance of missing a backend would be
    # 3 * (2/3)^24 < 1e-4, so any spread-out hash passes.
    assert set(owners.values()) == set(IDS), owners


@pytest.mark.parametrize("source", ["cookie", "query", "path", "authority"])
def test_other_hash_keys_keep_a_key_on_one_backend(source, trio, make_spooky, certs, testc):
    """Each variant of a key's request differs in everything but the key."""
    key = {"source": source} | ({"name": "sid"} if source in ("cookie", "query") else {})
    sp = make_spooky([lb_upstream("app", trio, certs, strategy="rendezvous", hash_key=key)])

    def variants(k):
        if source == "cookie":
            return [request_fields("/a", extra=[("cookie", f"sid={k}")]),
                    request_fields("/b?x=1", extra=[("cookie", f"theme=dark; sid={k}; z=9")])]
        if source == "query":
            return [request_fields(f"/a?sid={k}"), request_fields(f"/b?x=1&sid={k}&y=2")]
        if source == "path":
            return [request_fields(f"/p/{k}"), request_fields(f"/p/{k}?x=1", method="DELETE")]
        return [request_fields("/a", authority=f"{k}.example.test"),
                request_fields("/b?x=2", authority=f"{k}.example.test")]

    owners = {}
    for i in range(24):
        got = {one_backend(testc(sp.port, f, n=4, parallel=2), 4) for f in variants(f"k{i}")}
        assert len(got) == 1, f"{source} key k{i} went to {got}"
        owners[i] = got.pop()
    assert set(owners.values()) == set(IDS), owners


def test_connection_hash_key_keeps_a_connection_on_one_backend(trio, make_spooky, certs,
                                                                testc):
    sp = make_spooky([lb_upstream("app", trio, certs, strategy="rendezvous",
                                  hash_key={"source": "connection"})])
    owners = [one_backend(testc(sp.port, request_fields("/c"), n=20, parallel=5), 20)
              for _ in range(15)]
    assert len(set(owners)) >= 2, f"15 connections all went to {owners[0]}"


def test_rendezvous_request_without_its_key_is_still_served(trio, make_spooky, certs, testc):
    sp = make_spooky([lb_upstream("app", trio, certs, strategy="rendezvous",
                                  hash_key=HEADER_KEY)])
    backend_counts(testc(sp.port, request_fields("/nokey"), n=30, parallel=5), 30)


def test_source_ip_affinity_holds_over_100_requests(trio, make_spooky, certs, testc):
    sp = make_spooky([lb_upstream("app", trio, certs, strategy="rendezvous",
                                  hash_key={"source": "source_ip"})])
    seen = collections.Counter()
    for _ in range(4):   # four connections (four source ports) from 127.0.0.5
        r = testc(sp.port, request_fields("/ip"), n=25, parallel=5, bind="127.0.0.5")
        seen += backend_counts(r, 25)
    assert len(seen) == 1, f"127.0.0.5 spread over {dict(seen)}"
    # spooky saw them come from 127.0.0.5 (its access log line follows the response).
    sp.wait_access(count=100, client="127.0.0.5")

    owners = {}
    for host in range(6, 30):
        ip = f"127.0.0.{host}"
        owners[ip] = one_backend(testc(sp.port, request_fields("/ip"), n=2, bind=ip), 2)
    assert len(set(owners.values())) >= 2, owners


def test_source_ip_prefix_groups_addresses(trio, make_spooky, certs, testc):
    """ipv4_prefix 24: every 127.0.0.x is one key, so all land on one backend."""
    sp = make_spooky([lb_upstream("app", trio, certs, strategy="rendezvous",
                                  hash_key={"source": "source_ip", "ipv4_prefix": 24})])
    owners = {one_backend(testc(sp.port, request_fields("/ip"), n=2, bind=f"127.0.0.{h}"), 2)
              for h in range(5, 17)}
    assert len(owners) == 1, owners


# --- affinity across a restart (there is no reload yet: SIGHUP is logged and ignored) --------

@pytest.mark.parametrize("order", ["same", "reversed"])
def test_affinity_survives_a_restart(order, trio, make_spooky, certs, testc):
    """The cookie is signed with the configured secret and names the backend by id, and
    rendezvous hashes backend ids: a new spooky process with the same config (or the backends
    listed in another order) keeps every client where it was."""
    def start(backend_list, name):
        ups = [lb_upstream("cookie", backend_list, certs, sticky_cookie=sticky(),
                           routes=[{"path_prefix": "/c"}]),
               lb_upstream("hash", [b.spooky_backend() | {"id": f"h-{b.id}"}
                                    for b in backend_list],
                           certs, strategy="rendezvous", hash_key=HEADER_KEY,
                           routes=[{"path_prefix": "/h"}])]
        return make_spooky(ups, name=name)

    def hash_owners(sp):
        return {u: one_backend(testc(sp.port, request_fields("/h", extra=[("x-user", u)]),
                                     n=5, parallel=5), 5)
                for u in ("alice", "bob", "carol", "dave", "erin", "frank")}

    sp1 = start(trio, "spooky-a")
    cookie = set_cookie_value(testc(sp1.port, request_fields("/c")).responses[0])
    pinned = cookie_backend_id(cookie)
    owners = hash_owners(sp1)
    sp1.stop_and_check()

    sp2 = start(trio if order == "same" else trio[::-1], "spooky-b")
    r = testc(sp2.port, request_fields("/c", extra=[("cookie", f"{COOKIE}={cookie}")]),
              n=30, parallel=5)
    assert one_backend(r, 30) == pinned
    assert all(set_cookie_value(x) is None for x in r.responses), "cookie not honoured"
    assert hash_owners(sp2) == owners


# --- routing ----------------------------------------------------------------------------------

def routing_upstreams(certs, make_testd):
    """api: host api.example.test; wild: *.example.test; static: any host, /static;
    v2: host other.test, /v2. Each pool has one backend named after it."""
    pools = {"api": [{"host": "api.example.test"}],
             "wild": [{"host": "*.example.test"}],
             "static": [{"path_prefix": "/static"}],
             "v2": [{"host": "other.test", "path_prefix": "/v2"}]}
    return [lb_upstream(name, [make_testd(f"{name}-be")], certs, routes=routes)
            for name, routes in pools.items()]


# (authority, path) -> the pool that must answer, or None for "no route".
ROUTES = [(("api.example.test", "/anything"), "api"),
          (("API.example.test:443", "/static/x"), "api"),        # exact host beats any path
          (("www.example.test", "/static/x"), "wild"),           # wildcard class beats no host
          (("a.b.example.test", "/"), "wild"),
          (("localhost", "/static"), "static"),
          (("localhost", "/static/deep/file?q=1"), "static"),
          (("other.test", "/v2/items"), "v2"),
          (("other.test", "/static/x"), "static"),               # falls back to the no-host class
          (("localhost", "/staticky"), None),                   # prefix ends at a segment
          (("other.test", "/v1"), None),
          (("example.test", "/"), None)]                         # *.suffix needs a label


@pytest.mark.parametrize("default", [None, "static"])
def test_host_and_path_routes_pick_the_pool(default, make_testd, make_spooky, certs, testc):
    extra = {"default_upstream": default} if default else None
    sp = make_spooky(routing_upstreams(certs, make_testd), extra=extra)
    for (authority, path), pool in ROUTES:
        rs = testc(sp.port, request_fields(path, authority=authority), n=2).responses
        assert len(rs) == 2
        want = pool or default
        for resp in rs:
            if want is None:
                assert resp.status == 404, f"{authority}{path}: {resp.status} {resp.headers}"
                assert resp.header("x-backend-id") is None
            else:
                assert resp.status == 200, f"{authority}{path}: {resp.status}"
                assert resp.header("x-backend-id") == f"{want}-be", f"{authority}{path}"
    if default is None:
        sp.wait_access(cause="no_route", status="404")


def test_access_log_can_be_turned_off(trio, make_spooky, certs, testc):
    sp = make_spooky([lb_upstream("app", trio, certs)], extra={"log": {"access": False}})
    backend_counts(testc(sp.port, request_fields("/quiet"), n=20, parallel=5), 20)
    # The daemon still logs the rest: the backend connections it made for those requests.
    sp.wait_entries(area="upstream", event="connected")
    assert sp.access_log() == []


# --- slow start -------------------------------------------------------------------------------

@pytest.mark.parametrize("slow_start_ms", [2000, 0])
def test_slow_start_ramps_a_returning_backend(slow_start_ms, trio, make_testd, make_spooky,
                                              certs, testc):
    keys = {"slow_start_ms": slow_start_ms} if slow_start_ms else {}
    sp = make_spooky([lb_upstream("app", trio, certs, **keys)],
                     timeouts={"connect_ms": 500})
    fields = request_fields("/ss")
    assert set(backend_counts(testc(sp.port, fields, n=30, parallel=5), 30)) == set(IDS)

    victim = trio[2]
    assert victim.stop() == 0

    # spooky finds it gone (its connection closes, a new one is refused) and skips it.
    def victim_absent():
        counts = backend_counts(testc(sp.port, fields, n=20, parallel=5), 20)
        return victim.id not in counts
    procs_mod.poll(victim_absent, 10, f"{victim.id} to be skipped", interval=0.05)

    t_restart = time.time()
    back = make_testd(victim.id, port=victim.port)

    # Small batches until the balancer uses it again (its down backoff is over): the ramp
    # starts at that moment.
    def victim_seen():
        counts = backend_counts(testc(sp.port, fields, n=10, parallel=5), 10)
        return counts[back.id] > 0
    procs_mod.poll(victim_seen, 10, f"{back.id} to get requests again", interval=0.02)
    t_back = min(t for t in (log_time(e) for e in sp.access_log(path="/ss", backend=back.id))
                 if t >= t_restart)

    # Traffic until spooky's log covers the ramp's 2 s and a second more; the shares are read
    # off spooky's own timestamps, so a slow client or a loaded host changes nothing.
    def ramp_covered():
        backend_counts(testc(sp.port, fields, n=50, parallel=10), 50)
        return max(log_time(e) for e in sp.access_log(path="/ss")) >= t_back + 3.5
    procs_mod.poll(ramp_covered, 30, "traffic through the ramp", interval=0.01)
    window = lambda lo, hi: collections.Counter(   # noqa: E731
        e["backend"] for e in sp.access_log(path="/ss") if lo <= log_time(e) - t_back < hi)
    early, late = window(0.0, 0.4), window(2.5, 3.5)
    assert sum(early.values()) >= 20 and sum(late.values()) >= 20, (early, late)

    if slow_start_ms:
        assert share(early, back.id) < 0.2, f"no ramp: early {dict(early)}"
        assert share(late, back.id) > share(early, back.id), f"{dict(early)} -> {dict(late)}"
    else:
        assert share(early, back.id) > 0.25, f"without slow start: {dict(early)}"
    assert share(late, back.id) > 0.28, f"not back to full weight: {dict(late)}"
