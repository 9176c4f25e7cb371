"""HTTP/3 backends for the tests: caddy, gtlsserver and our spooky-testd.

Each backend object has .id, .port, .address ("127.0.0.1:port"), .proc (procs.Proc) and
.spooky_backend() (its entry for spooky's config). Start them through the conftest factories.

caddy 2.6.2 (Debian): configured with JSON (`caddy run --config FILE`): admin disabled, no
automatic HTTPS, explicit cert+key via tls.certificates.load_files, pki install_trust false,
server protocols ["h1","h2","h3"] (HTTP/3 listens on UDP, same port number as TCP). HOME and
XDG_* point into the test's directory so caddy never writes to the real home or trust store.
It logs JSON lines on stderr; "serving initial configuration" once it listens, then the tests
also poll /whoami over HTTP/3 with gtlsclient.

gtlsserver (ngtcp2 0.12 example server, GnuTLS): `gtlsserver [OPTIONS] ADDR PORT KEY CERT`,
-d DIR document root, -q quiet (its packet logs are huge otherwise). It prints
"Using document root DIR" at start and logs no handshakes with -q; --qlog-dir DIR writes one
qlog file per connection (used to count connections when asked). It ignores the query string.
GET /<N> (a number, <= --max-dyn-length, default 20M) answers N zero bytes.
"""

import json
import pathlib

from . import binaries, clients, ports, procs


class Backend:
    kind = "?"

    def __init__(self, backend_id, port, proc, work_dir):
        self.id = backend_id
        self.port = port
        self.proc = proc
        self.work_dir = pathlib.Path(work_dir)

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def spooky_backend(self, weight=1, protocol="h3"):
        return {"id": self.id, "address": self.address, "protocol": protocol, "weight": weight}

    def stop(self, timeout=5.0):
        return self.proc.stop(timeout)

    def __repr__(self):
        return f"<{self.kind} {self.id} {self.address}>"


def _wait_h3_ok(backend, path, timeout):
    """Polls `path` over HTTP/3 with gtlsclient until it answers 200 (bounded)."""

    def ok():
        if not backend.proc.running():
            raise procs.ProcError(f"{backend.proc.name} exited; log tail:\n"
                                  f"{backend.proc.tail()}")
        r = clients.gtlsclient(backend.work_dir, backend.port, [path], download=False,
                               handshake_timeout="1s", idle_timeout="3s", timeout_s=10)
        return r.handshake_completed and r.streams[0].status == 200

    procs.poll(ok, timeout, f"{backend.proc.name} to answer {path} over HTTP/3", interval=0.1)


# --- caddy ------------------------------------------------------------------------------------

class Caddy(Backend):
    kind = "caddy"


def caddy_config(port, http_port, certs, root, backend_id, storage_dir):
    """caddy JSON config: files from `root`, every response with `X-Backend: <id>`, plus
    GET /whoami -> 200 "<id>" and GET /reqinfo -> the forwarding-related request headers."""
    set_id = {"handler": "headers", "response": {"set": {"X-Backend": [backend_id]}}}
    reqinfo = ("host={http.request.host}\n"
               "x-forwarded-for={http.request.header.X-Forwarded-For}\n"
               "x-forwarded-proto={http.request.header.X-Forwarded-Proto}\n"
               "x-request-id={http.request.header.X-Request-Id}\n"
               "via={http.request.header.Via}\n"
               "user-agent={http.request.header.User-Agent}\n")
    return {
        "admin": {"disabled": True, "config": {"persist": False}},
        "storage": {"module": "file_system", "root": str(storage_dir)},
        "apps": {
            "http": {
                "http_port": http_port,
                "https_port": port,
                "servers": {"srv0": {
                    "listen": [f"127.0.0.1:{port}"],
                    "protocols": ["h1", "h2", "h3"],
                    "automatic_https": {"disable": True},
                    "tls_connection_policies": [
                        {"certificate_selection": {"any_tag": ["spooky-test"]}}],
                    "routes": [
                        {"match": [{"path": ["/whoami"]}], "terminal": True,
                         "handle": [set_id, {"handler": "static_response", "status_code": 200,
                                             "body": backend_id}]},
                        {"match": [{"path": ["/reqinfo"]}], "terminal": True,
                         "handle": [set_id, {"handler": "static_response", "status_code": 200,
                                             "body": reqinfo}]},
                        {"handle": [{"handler": "vars", "root": str(root)}, set_id,
                                    {"handler": "file_server"}]},
                    ],
                }},
            },
            "tls": {"certificates": {"load_files": [
                {"certificate": str(certs.cert), "key": str(certs.key),
                 "tags": ["spooky-test"]}]}},
            "pki": {"certificate_authorities": {"local": {"install_trust": False}}},
        },
    }


def start_caddy(group, work_dir, certs, root, backend_id="caddy-1", timeout=15.0):
    exe = binaries.system_tool("caddy")
    if exe is None:
        raise AssertionError("caddy is not installed")
    port = ports.free_tcp_udp_port()
    http_port = ports.free_tcp_port()
    d = pathlib.Path(work_dir) / f"caddy-{backend_id}"
    home = d / "home"
    for sub in ("data", "config", "storage"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    cfg = d / "caddy.json"
    cfg.write_text(json.dumps(caddy_config(port, http_port, certs, root, backend_id,
                                           home / "storage"), indent=2))
    env = procs.default_env(HOME=home, XDG_DATA_HOME=home / "data",
                            XDG_CONFIG_HOME=home / "config")
    proc = group.start(backend_id, [exe, "run", "--config", cfg], env=env, cwd=d)
    backend = Caddy(backend_id, port, proc, d)
    proc.wait_for_log(r"serving initial configuration", timeout=timeout)
    _wait_h3_ok(backend, "/whoami", timeout)
    return backend


# --- gtlsserver -------------------------------------------------------------------------------

class GtlsServer(Backend):
    kind = "gtlsserver"

    def __init__(self, backend_id, port, proc, work_dir, qlog_dir):
        super().__init__(backend_id, port, proc, work_dir)
        self.qlog_dir = qlog_dir

    def connection_count(self):
        """QUIC connections accepted so far (one qlog file each); needs count_connections."""
        if self.qlog_dir is None:
            raise AssertionError("start gtlsserver with count_connections=True")
        return sum(1 for _ in self.qlog_dir.iterdir())


def start_gtlsserver(group, work_dir, certs, root, backend_id="gtls-1", count_connections=False,
                     extra_args=(), timeout=10.0):
    exe = binaries.system_tool("gtlsserver")
    if exe is None:
        raise AssertionError("gtlsserver is not installed")
    port = ports.free_udp_port()
    d = pathlib.Path(work_dir) / f"gtlsserver-{backend_id}"
    d.mkdir(parents=True, exist_ok=True)
    argv = [exe, "-q", f"--htdocs={root}"]
    qlog_dir = None
    if count_connections:
        qlog_dir = d / "qlog"
        qlog_dir.mkdir()
        argv.append(f"--qlog-dir={qlog_dir}")
    argv += list(extra_args) + ["127.0.0.1", str(port), str(certs.key), str(certs.cert)]
    proc = group.start(backend_id, argv, cwd=d)
    backend = GtlsServer(backend_id, port, proc, d, qlog_dir)
    proc.wait_for_log(r"Using document root", timeout=timeout)
    _wait_h3_ok(backend, "/1k.bin", timeout)
    return backend


# --- spooky-testd -----------------------------------------------------------------------------

class Testd(Backend):
    """spooky-testd. Its /stats counters include the connections and requests of our own
    direct /stats queries; use stats_delta() to take them out."""

    kind = "spooky-testd"

    def handshakes_logged(self):
        return self.proc.count_log(r"event=handshake_completed")

    def stats(self):
        """GET /stats directly (not through spooky), over a new QUIC connection made with
        gtlsclient. Returns the parsed JSON."""
        r = clients.gtlsclient(self.work_dir, self.port, ["/stats"], timeout_s=15)
        st = r.streams[0]
        if not r.handshake_completed or st.status != 200:
            raise AssertionError(f"{self.id} /stats failed: status {st.status}; "
                                 f"log {r.log_path}")
        return st.json_body()


def stats_delta(before, after):
    """What happened between two direct stats() calls, minus the second call's own connection
    and request (the first call's are in `before` either way)."""
    return {"handshakes": after["handshakes"] - before["handshakes"] - 1,
            "requests": after["requests"] - before["requests"] - 1}


def start_testd(group, work_dir, certs, backend_id="testd-1", extra_args=(), timeout=10.0,
                port=None):
    """Starts spooky-testd. port=None takes a free port; pass a stopped backend's .port to bring
    it back at the same address. extra_args e.g. ["--delay-ms", "50"] (a uniformly slow one)."""
    exe = binaries.find("spooky-testd")
    if exe is None:
        raise AssertionError(f"spooky-testd not built ({binaries.path_of('spooky-testd')})")
    if port is None:
        port = ports.free_udp_port()
    d = pathlib.Path(work_dir) / f"testd-{backend_id}"
    d.mkdir(parents=True, exist_ok=True)
    argv = [exe, "--address", "127.0.0.1", "--port", str(port), "--cert", certs.cert,
            "--key", certs.key, "--id", backend_id, *extra_args]
    proc = group.start(backend_id, argv, cwd=d)
    proc.wait_for_log(r"event=ready", timeout=timeout)
    return Testd(backend_id, port, proc, d)


def dead_backend(backend_id="dead-1"):
    """A backend entry for a port where nothing listens (UDP: the QUIC Initial goes nowhere)."""
    port = ports.free_udp_port()
    return {"id": backend_id, "address": f"127.0.0.1:{port}", "protocol": "h3", "weight": 1}



# --- quic-go (spooky-h3load server) -----------------------------------------------------------

class QuicGo(Backend):
    """An HTTP/3 backend on quic-go 0.29 (another QUIC stack than ours): POST/PUT /echo echoes
    the body, GET /size/N sends N bytes, any other path greets; x-backend-id on every answer."""
    kind = "quic-go"


def start_quicgo(group, work_dir, certs, backend_id="quicgo-1", timeout=10.0, port=None):
    exe = binaries.find("spooky-h3load")
    if exe is None:
        raise AssertionError(f"spooky-h3load not built ({binaries.path_of('spooky-h3load')})")
    if port is None:
        port = ports.free_udp_port()
    d = pathlib.Path(work_dir) / f"quicgo-{backend_id}"
    d.mkdir(parents=True, exist_ok=True)
    argv = [exe, "server", "-addr", f"127.0.0.1:{port}", "-cert", certs.cert, "-key", certs.key,
            "-id", backend_id]
    proc = group.start(backend_id, argv, cwd=d)
    backend = QuicGo(backend_id, port, proc, d)
    _wait_h3_ok(backend, "/", timeout)
    return backend
