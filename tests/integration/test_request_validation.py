"""Requests the client got wrong are answered 400 by spooky before any backend is chosen
(issue 9, item 4 "blame the right side"): whatever the backend protocol, the backend never sees
them, the access log blames the client (class=client_invalid cause=invalid_request), and no number of
them moves a backend's breaker or health.

Before, ":authority: a.example@evil" got 502 from HTTP/1.1 upstreams (the HTTP/1.1 writer
refused it after a backend was picked, which counted against the backend: five opened its
breaker), and "x:99999" or "[::1" were forwarded as they were. spooky-testc sends exactly the
fields it is given, so each request below carries one bad value. Each backend kind tells how
many requests reached it in its own way (testd and pyh1 /stats, nginx's access log, nghttpd's
verbose log)."""

import re

import pytest

from spookytest import procs
from spookytest.clients import request_fields

pytest_plugins = ["conftest_h2"]

BAD_AUTHORITIES = ["a.example@evil", "a.example:80@evil", "x:99999", "[::1"]
KINDS = ["h3-testd", "h2-nghttpd", "http1-nginx", "http1-pyh1"]


class Seen:
    """Counts the requests a backend has received, however that backend tells. The count is
    offset by the backend's own readiness and stats requests, so only differences matter."""

    def __init__(self, backend, good_path, count):
        self.backend = backend
        self.good_path = good_path  # a path the backend answers 200
        self._count = count

    def count(self):
        return self._count()


def _stats_counter(backend):
    """testd's and pyh1's /stats: each query counts itself, so take the queries out."""
    queries = [0]

    def count():
        queries[0] += 1
        return backend.stats()["requests"] - queries[0]
    return count


def _log_counter(path, regex):
    """Lines of a backend's log file matching regex."""
    rx = re.compile(regex)

    def count():
        if not path.exists():
            return 0
        return sum(1 for ln in path.read_text(errors="replace").splitlines() if rx.search(ln))
    return count


@pytest.fixture
def start_kind(make_testd, make_nghttpd, make_nginx, make_pyh1):
    """start_kind(kind) -> Seen for a fresh backend of that kind."""
    def start(kind):
        if kind == "h3-testd":
            b = make_testd("testd-1")
            return Seen(b, "/size/10", _stats_counter(b))
        if kind == "h2-nghttpd":
            # -v logs every frame: one "recv HEADERS" per request (no request here has trailers)
            b = make_nghttpd("nghttpd-1", tls=True, extra_args=("-v",))
            return Seen(b, "/1k.bin", _log_counter(b.proc.log_path, r"recv HEADERS frame"))
        if kind == "http1-nginx":
            b = make_nginx("nginx-1")
            return Seen(b, "/1k.bin", _log_counter(b.work_dir / "access.log", r"\S"))
        if kind == "http1-pyh1":
            b = make_pyh1("h1py-1")
            return Seen(b, "/size/10", _stats_counter(b))
        raise ValueError(kind)
    return start


def _good_request_reaches(sp, testc, seen, before):
    """Sends one valid request and waits until the backend counted it: then nothing else sent
    earlier can still be on its way. Returns how many requests the backend saw since before."""
    (ok,) = testc(sp.port, request_fields(seen.good_path)).responses
    assert ok.status == 200, ok
    return procs.poll(lambda: (seen.count() - before) or None, 10.0,
                      f"{seen.backend.id} to count the valid request")


def _assert_blamed_on_client(sp, authority):
    (entry,) = sp.wait_access(authority=authority)
    assert (entry["status"], entry["class"], entry["cause"]) == \
        ("400", "client_invalid", "invalid_request"), entry
    assert (entry["upstream"], entry["backend"], entry["tries"]) == ("-", "-", "0"), entry


@pytest.mark.parametrize("kind", KINDS)
def test_invalid_authority_gets_400_and_never_reaches_the_backend(kind, start_kind, spooky_for,
                                                                  testc):
    seen = start_kind(kind)
    sp = spooky_for([seen.backend])
    before = seen.count()
    for authority in BAD_AUTHORITIES:
        r = testc(sp.port, request_fields("/", authority=authority))
        assert r.returncode == 0
        (resp,) = r.responses
        assert resp.status == 400, (authority, resp)
        _assert_blamed_on_client(sp, authority)
    assert _good_request_reaches(sp, testc, seen, before) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_client_errors_never_open_the_breaker_or_eject_with_defaults(kind, start_kind,
                                                                     spooky_defaults, testc):
    """Default settings (breaker max_failures 5, passive health on): 20 malformed requests,
    five of each bad authority, leave the backend healthy and its breaker closed."""
    seen = start_kind(kind)
    sp = spooky_defaults([seen.backend])
    before = seen.count()
    for authority in BAD_AUTHORITIES:
        r = testc(sp.port, request_fields("/", authority=authority), n=5)
        assert [x.status for x in r.responses] == [400] * 5, r.responses
    assert len(sp.wait_access(count=20, status="400", cause="invalid_request",
                              **{"class": "client_invalid"})) == 20
    assert _good_request_reaches(sp, testc, seen, before) == 1
    be = seen.backend.id
    assert sp.entries(event="breaker", backend=be) == []
    assert sp.entries(event="health", backend=be) == []
    (ok,) = sp.wait_access(backend=be, status="200")
    assert ok["class"] == "none", ok


# Other rules the validator enforces that nghttp3 0.8 lets through to spooky (the rest of
# RFC 9114 §4.3.1 nghttp3 refuses itself: see test_proxy_malformed.py). Debug logging shows the
# reason.
M, S, A = (":method", "GET"), (":scheme", "https"), (":authority", "localhost")
P = (":path", "/size/10")
OTHER_CASES = {
    "host differs from :authority": ([M, S, A, P, ("host", "other.example")], "host"),
    "host with userinfo": ([M, S, P, ("host", "a@localhost")], "host"),
    "scheme not http(s)": ([M, (":scheme", "ftp"), A, P], "scheme"),
    "fragment in :path": ([M, S, A, (":path", "/size/10#x")], "path"),
    "non-ASCII :path": ([M, S, A, (":path", "/caf\u00e9")], "path"),
    "port 0": ([M, S, (":authority", "localhost:0"), P], "authority"),
}


@pytest.mark.parametrize("fields,reason", list(OTHER_CASES.values()), ids=list(OTHER_CASES))
def test_other_invalid_requests_get_400_with_a_reason(fields, reason, testd, spooky_for, testc):
    sp = spooky_for([testd], log_level="debug")
    seen = Seen(testd, "/size/10", _stats_counter(testd))
    before = seen.count()
    (resp,) = testc(sp.port, fields).responses
    assert resp.status == 400, resp
    (line,) = sp.wait_entries(area="proxy", event="invalid_request")
    assert line["reason"] == reason, line
    (entry,) = sp.wait_access(status="400")
    assert (entry["class"], entry["cause"]) == ("client_invalid", "invalid_request"), entry
    assert _good_request_reaches(sp, testc, seen, before) == 1
