"""Fixtures for spooky's integration tests.

Every process a test starts (backends, spooky) belongs to that test's ProcGroup: its output
goes to <tmp_path>/logs/<name>.log, it is stopped when the test ends (SIGTERM, then SIGKILL),
and if the test fails the tails of those logs (and of the client runs) are attached to the
report. Binaries we build are looked up in <repo>/build (override with SPOOKY_BIN,
SPOOKY_TESTD, SPOOKY_TESTC); tests needing one that is not built are skipped."""

import functools
import os

import pytest

from spookytest import backends, binaries, certs as certs_mod, clients, content as content_mod
from spookytest import netns as netns_mod, procs as procs_mod, spooky as spooky_mod

PROCS_KEY = pytest.StashKey()
LOG_TAIL_LINES = 80
CLIENT_LOGS_SHOWN = 3


def _require(name):
    if binaries.find(name) is None:
        pytest.skip(f"{name} not built: {binaries.path_of(name)}")


def _require_tool(name):
    if binaries.system_tool(name) is None:
        pytest.skip(f"{name} not installed")


# --- session-wide material --------------------------------------------------------------------

@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """CA + server certificate for localhost/127.0.0.1/::1 (paths: .ca, .cert, .key)."""
    _require_tool("certtool")
    return certs_mod.make_certs(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def content(tmp_path_factory):
    """{file name: ContentFile} for empty.bin, 1k.bin, 1m.bin, 50m.bin (seeded PRNG bytes)."""
    return content_mod.make_content(tmp_path_factory.mktemp("htdocs"))


@pytest.fixture(scope="session")
def htdocs(content):
    return next(iter(content.values())).path.parent


# --- per-test processes -----------------------------------------------------------------------

@pytest.fixture
def procs(request, tmp_path):
    group = procs_mod.ProcGroup(tmp_path / "logs")
    request.node.stash[PROCS_KEY] = group
    yield group
    errors = group.stop_all()
    assert not errors, f"stopping processes failed: {errors}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    group = item.stash.get(PROCS_KEY, None)
    if group is None:
        return
    for proc in group.procs:
        state = "running" if proc.running() else f"exited rc={proc.popen.poll()}"
        report.sections.append(
            (f"process log: {proc.name} pid={proc.pid} {state} ({proc.log_path})",
             proc.tail(LOG_TAIL_LINES)))
    for name, path in group.client_logs[-CLIENT_LOGS_SHOWN:]:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        keep = [ln for ln in lines if not ln.startswith(("Sent packet", "Received packet",
                                                         "Set timer", "Timer has", "I0"))]
        report.sections.append((f"client log: {name} ({path})",
                                "\n".join(keep[-LOG_TAIL_LINES:])))


@pytest.fixture
def netns(procs):
    """A private network namespace for this test (spookytest/netns.py): every process the test
    starts afterwards lives in it, and .black_hole_udp(port) / .black_hole_tcp(port) drop a
    backend's packets without an ICMP answer. List it FIRST among the test's fixtures so that
    nothing is started before it. Fails (never skips) when it cannot be made."""
    why = netns_mod.available()
    assert why is None, f"cannot make a network namespace: {why}"
    ns = netns_mod.Netns(f"spooky-test-{os.getpid()}").enter()
    try:
        yield ns
    finally:
        procs.stop_all()
        ns.leave()


# --- backends ---------------------------------------------------------------------------------

@pytest.fixture
def make_caddy(procs, tmp_path, certs, htdocs):
    """make_caddy(backend_id="caddy-1") -> backends.Caddy serving the content files."""
    _require_tool("caddy")
    return functools.partial(backends.start_caddy, procs, tmp_path, certs, htdocs)


@pytest.fixture
def make_gtlsserver(procs, tmp_path, certs, htdocs):
    """make_gtlsserver(backend_id="gtls-1", count_connections=False) -> backends.GtlsServer."""
    _require_tool("gtlsserver")
    return functools.partial(backends.start_gtlsserver, procs, tmp_path, certs, htdocs)


@pytest.fixture
def make_testd(procs, tmp_path, certs):
    """make_testd(backend_id="testd-1") -> backends.Testd."""
    _require("spooky-testd")
    return functools.partial(backends.start_testd, procs, tmp_path, certs)


@pytest.fixture
def caddy(make_caddy):
    return make_caddy("caddy-1")


@pytest.fixture
def gtlsserver(make_gtlsserver):
    return make_gtlsserver("gtls-1")


@pytest.fixture
def testd(make_testd):
    return make_testd("testd-1")


@pytest.fixture
def make_quicgo(procs, tmp_path, certs):
    """make_quicgo(backend_id="quicgo-1") -> backends.QuicGo (spooky-h3load server, quic-go)."""
    return functools.partial(backends.start_quicgo, procs, tmp_path, certs)


@pytest.fixture
def h3load_start(tmp_path, procs):
    """h3load_start(port, plan=[...], conns=, streams=, duration_s=) -> clients.H3LoadRun: the
    quic-go load client in the background; .finish() -> H3LoadResult with .timeline."""
    runs = []

    def start(port, **kw):
        run = clients.h3load_start(tmp_path, port, group=procs, **kw)
        runs.append(run)
        return run
    yield start
    for run in runs:
        if run.popen.poll() is None:
            run.popen.kill()
            run.popen.wait()


@pytest.fixture
def h3load(tmp_path, procs):
    """h3load(port, plan=[...], conns=, streams=, duration_s=, ...) -> clients.H3LoadResult
    (spooky-h3load client on quic-go 0.29; fails, never skips, when it is not built)."""
    return functools.partial(clients.h3load, tmp_path, group=procs)


# --- clients ----------------------------------------------------------------------------------

@pytest.fixture
def gtls(tmp_path, procs):
    """gtls(port, paths, **kw) -> clients.GtlsResult (gtlsclient, see clients.gtlsclient)."""
    _require_tool("gtlsclient")
    return functools.partial(clients.gtlsclient, tmp_path, group=procs)


@pytest.fixture
def testc(tmp_path, procs, certs):
    """testc(port, fields, **kw) -> clients.TestcResult (spooky-testc, verifying with our CA)."""
    _require("spooky-testc")

    def run(port, fields, **kw):
        if not kw.get("insecure"):
            kw.setdefault("ca", certs.ca)
        return clients.testc(tmp_path, port, fields, group=procs, **kw)
    return run


# --- spooky -----------------------------------------------------------------------------------

@pytest.fixture
def workers(request):
    """The worker count make_spooky uses (1 unless a module parametrizes it: `pytestmark =
    pytest.mark.parametrize("workers", [1, 2], indirect=True)` runs its tests with both, since
    health, breakers and retries are per worker)."""
    return getattr(request, "param", 1)


@pytest.fixture
def make_spooky(procs, tmp_path, certs, workers):
    """make_spooky(upstreams, timeouts=None, limits=None, extra=None) -> spooky.Spooky.

    `upstreams` is a list made with spooky.upstream(). At teardown every spooky started here
    gets SIGTERM and must exit 0 within 5 s (a teardown error otherwise)."""
    _require("spooky")
    started = []

    def start(upstreams, *, name="spooky", **kw):
        port = spooky_mod.free_listener_port()
        kw["extra"] = spooky_mod.deep_merge({"workers": workers}, kw.get("extra"))
        cfg = spooky_mod.config(port, certs, upstreams, **kw)
        sp = spooky_mod.start_spooky(procs, tmp_path, cfg, name=name)
        started.append(sp)
        return sp

    yield start
    failures = []
    for sp in reversed(started):
        try:
            sp.stop_and_check(timeout=5.0)
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n\n".join(failures)


@pytest.fixture
def spooky_defaults(procs, tmp_path, certs):
    """spooky_defaults(backends, workers=2, upstream_extra=None, extra=None) -> spooky.Spooky with
    one upstream "app" routing "/" to `backends` and every other setting at spooky's DEFAULT
    (spooky.config_with_defaults): what a new user runs. Stopped and checked like make_spooky."""
    _require("spooky")
    started = []

    def start(backend_list, *, workers=2, upstream_extra=None, extra=None, name="spooky"):
        port = spooky_mod.free_listener_port()
        up = spooky_mod.upstream_with_defaults("app", backend_list, certs, extra=upstream_extra)
        cfg = spooky_mod.config_with_defaults(port, certs, [up], workers=workers, extra=extra)
        sp = spooky_mod.start_spooky(procs, tmp_path, cfg, name=name)
        started.append(sp)
        return sp

    yield start
    failures = []
    for sp in reversed(started):
        try:
            sp.stop_and_check(timeout=10.0)
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n\n".join(failures)


@pytest.fixture
def spooky_for(make_spooky, certs):
    """spooky_for(backends, pool=None, timeouts=None, limits=None, tls=None, strategy=...) ->
    spooky.Spooky with one upstream "app" routing "/" to `backends`."""
    def start(backend_list, *, pool=None, tls=None, strategy="round_robin", routes=None, **kw):
        up = spooky_mod.upstream("app", backend_list, certs, pool=pool, tls=tls,
                                 strategy=strategy, routes=routes)
        return make_spooky([up], **kw)
    return start


# ==============================================================================================
# HTTP/1.1 backends (issue 3): nginx, caddy on http://, and our own Python HTTP/1.1 server.
# See spookytest/h1backends.py.
# ==============================================================================================

from spookytest import h1backends  # noqa: E402  (kept with its fixtures)


@pytest.fixture
def make_pyh1(procs, tmp_path):
    """make_pyh1(backend_id="h1py-1") -> h1backends.PyH1 (our HTTP/1.1 test server)."""
    return functools.partial(h1backends.start_pyh1, procs, tmp_path)


@pytest.fixture
def pyh1(make_pyh1):
    return make_pyh1("h1py-1")


@pytest.fixture
def make_nginx(procs, tmp_path, htdocs):
    """make_nginx(backend_id="nginx-1") -> h1backends.Nginx serving the content files."""
    _require_tool("nginx")
    return functools.partial(h1backends.start_nginx, procs, tmp_path, htdocs)


@pytest.fixture
def nginx(make_nginx):
    return make_nginx("nginx-1")


@pytest.fixture
def make_caddy_http(procs, tmp_path, htdocs):
    """make_caddy_http(backend_id="caddy-http-1") -> h1backends.CaddyHttp (cleartext h1)."""
    _require_tool("caddy")
    return functools.partial(h1backends.start_caddy_http, procs, tmp_path, htdocs)


@pytest.fixture
def caddy_http(make_caddy_http):
    return make_caddy_http("caddy-http-1")
