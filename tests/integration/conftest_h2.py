"""Fixtures for the HTTP/2 backend tests (test_h2_backends.py loads this module with
`pytest_plugins`). They build on conftest.py's procs, certs and htdocs fixtures; the backends
themselves are in spookytest/h2backends.py."""

import functools

import pytest

from spookytest import binaries, h2backends


def _require_tool(name):
    if binaries.system_tool(name) is None:
        pytest.skip(f"{name} not installed")


@pytest.fixture
def make_nghttpd(procs, tmp_path, certs, htdocs):
    """make_nghttpd(backend_id="nghttpd-1", tls=True, extra_args=()) -> h2backends.Nghttpd
    serving the content files, echoing POST/PUT bodies; h2 with TLS, h2c without."""
    _require_tool("nghttpd")
    return functools.partial(h2backends.start_nghttpd, procs, tmp_path, certs, htdocs)


@pytest.fixture
def make_caddy_h2(procs, tmp_path, certs, htdocs):
    """make_caddy_h2(backend_id="caddy-h2", tls=True) -> h2backends.CaddyH2 (h2 over TLS, or
    h2c prior knowledge with tls=False)."""
    _require_tool("caddy")
    return functools.partial(h2backends.start_caddy_h2, procs, tmp_path, certs, htdocs)


@pytest.fixture
def make_h2raw(procs, tmp_path):
    """make_h2raw(mode, backend_id="h2raw-1") -> h2backends.H2Raw (scripted h2c server)."""
    return functools.partial(h2backends.start_h2raw, procs, tmp_path)


H2_KINDS = ["nghttpd-h2", "nghttpd-h2c", "caddy-h2", "caddy-h2c"]


@pytest.fixture
def start_h2_backend(make_nghttpd, make_caddy_h2, request):
    """start_h2_backend(kind, backend_id=None) for kind in H2_KINDS."""
    def start(kind, backend_id=None, **kw):
        server, proto = kind.split("-")
        backend_id = backend_id or kind
        if server == "nghttpd":
            return make_nghttpd(backend_id, tls=proto == "h2", **kw)
        if server == "caddy":
            return make_caddy_h2(backend_id, tls=proto == "h2", **kw)
        raise ValueError(kind)
    return start


@pytest.fixture(params=H2_KINDS)
def h2_backend(request, start_h2_backend):
    """Each HTTP/2 backend kind in turn (nghttpd and caddy, h2 and h2c)."""
    return start_h2_backend(request.param)
