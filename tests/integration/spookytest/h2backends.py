"""HTTP/2 backends for the tests: nghttpd (TLS and cleartext), caddy (h2 and h2c) and a tiny
scripted h2c server (h2raw.py) for behaviour real servers do not offer on demand (resetting a
stream mid-body, closing after each response, refusing streams).

Each backend object has .id, .port, .address ("127.0.0.1:port"), .proc (procs.Proc),
.protocol ("h2" or "h2c") and .spooky_backend() (its entry for spooky's config, with that
protocol). Start them through the fixtures in conftest_h2.py.

nghttpd (Debian nghttp2-server 1.52): `nghttpd [OPTIONS] PORT [KEY CERT]`, --no-tls for
cleartext (prior knowledge only), -a ADDR, -d DIR document root, --echo-upload answers POST/PUT
with the request body, --trailer 'name: value' adds a response trailer (only on responses with a
body), -v logs every frame and header field. It prints nothing at start, so readiness is polled
with a TCP connect. Default SETTINGS_MAX_CONCURRENT_STREAMS 100.

caddy 2.6.2: the same JSON approach as backends.caddy_config, on TCP only: protocols
["h1", "h2"] with TLS (ALPN h2), or ["h1", "h2c"] on a cleartext listener (caddy serves h2c with
prior knowledge when "h2c" is listed). Files from the content directory, /whoami -> the id.
"""

import json
import pathlib
import socket
import sys

from . import backends, binaries, ports, procs

H2RAW = pathlib.Path(__file__).resolve().parent / "h2raw.py"


class H2Backend(backends.Backend):
    kind = "h2"

    def __init__(self, backend_id, port, proc, work_dir, protocol, argv=None, env=None):
        super().__init__(backend_id, port, proc, work_dir)
        self.protocol = protocol
        self.argv = argv
        self.env = env

    def spooky_backend(self, weight=1, protocol=None):
        return {"id": self.id, "address": self.address,
                "protocol": protocol or self.protocol, "weight": weight}

    def restart(self, group):
        """Stops this server (its connections die with it) and starts the same command on the
        same port. Returns the new Proc."""
        self.proc.stop(5.0)
        self.proc = group.start(self.id, self.argv, env=self.env, cwd=self.work_dir)
        wait_tcp(self.proc, self.port)
        return self.proc


def wait_tcp(proc, port, timeout=10.0):
    """Polls until something accepts TCP connections on 127.0.0.1:port (bounded)."""

    def ok():
        if not proc.running():
            raise procs.ProcError(f"{proc.name} exited; log tail:\n{proc.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    procs.poll(ok, timeout, f"{proc.name} to accept TCP on port {port}", interval=0.05)


# --- nghttpd ----------------------------------------------------------------------------------

class Nghttpd(H2Backend):
    kind = "nghttpd"


def start_nghttpd(group, work_dir, certs, root, backend_id="nghttpd-1", tls=True,
                  extra_args=(), timeout=10.0, port=None):
    """port=None takes a free port; a stopped nghttpd's .port brings it back at that address."""
    exe = binaries.system_tool("nghttpd")
    if exe is None:
        raise AssertionError("nghttpd is not installed")
    if port is None:
        port = ports.free_tcp_port()
    d = pathlib.Path(work_dir) / f"nghttpd-{backend_id}"
    d.mkdir(parents=True, exist_ok=True)
    argv = [exe, "-a", "127.0.0.1", f"--htdocs={root}", "--echo-upload", *extra_args]
    argv += [str(port), str(certs.key), str(certs.cert)] if tls else ["--no-tls", str(port)]
    proc = group.start(backend_id, argv, cwd=d)
    wait_tcp(proc, port, timeout)
    return Nghttpd(backend_id, port, proc, d, "h2" if tls else "h2c", argv=argv)


# --- caddy ------------------------------------------------------------------------------------

class CaddyH2(H2Backend):
    kind = "caddy"


def caddy_h2_config(port, certs, root, backend_id, storage_dir, tls, client_ca=None):
    """client_ca (a PEM CA file; TLS only) makes caddy require a client certificate and verify
    it against that CA (mutual TLS): client_authentication mode require_and_verify, plus
    GET /tlsclient -> the verified client certificate's subject."""
    set_id = {"handler": "headers", "response": {"set": {"X-Backend": [backend_id]}}}
    server = {
        "listen": [f"127.0.0.1:{port}"],
        "protocols": ["h1", "h2"] if tls else ["h1", "h2c"],
        "automatic_https": {"disable": True},
        "routes": [
            {"match": [{"path": ["/whoami"]}], "terminal": True,
             "handle": [set_id, {"handler": "static_response", "status_code": 200,
                                 "body": backend_id}]},
            {"match": [{"path": ["/upload"]}], "terminal": True,
             "handle": [set_id, {"handler": "static_response", "status_code": 200,
                                 "body": "ok"}]},
            {"handle": [{"handler": "vars", "root": str(root)}, set_id,
                        {"handler": "file_server"}]},
        ],
    }
    cfg = {
        "admin": {"disabled": True, "config": {"persist": False}},
        "storage": {"module": "file_system", "root": str(storage_dir)},
        "apps": {"http": {"http_port": ports.free_tcp_port(), "https_port": port,
                          "servers": {"srv0": server}},
                 "pki": {"certificate_authorities": {"local": {"install_trust": False}}}},
    }
    if tls:
        server["tls_connection_policies"] = [
            {"certificate_selection": {"any_tag": ["spooky-test"]}}]
        if client_ca is not None:
            server["tls_connection_policies"][0]["client_authentication"] = {
                "trusted_ca_certs_pem_files": [str(client_ca)], "mode": "require_and_verify"}
            # GET /tlsclient -> the subject of the client certificate caddy verified.
            server["routes"].insert(0, {
                "match": [{"path": ["/tlsclient"]}], "terminal": True,
                "handle": [set_id, {"handler": "static_response", "status_code": 200,
                                    "body": "{http.request.tls.client.subject}"}]})
        cfg["apps"]["tls"] = {"certificates": {"load_files": [
            {"certificate": str(certs.cert), "key": str(certs.key), "tags": ["spooky-test"]}]}}
    else:
        cfg["apps"]["http"]["http_port"] = port
    return cfg


def start_caddy_h2(group, work_dir, certs, root, backend_id="caddy-h2", tls=True, timeout=15.0,
                   client_ca=None):
    """client_ca: see caddy_h2_config (mutual TLS; requires tls=True)."""
    if client_ca is not None and not tls:
        raise ValueError("client_ca needs tls=True")
    exe = binaries.system_tool("caddy")
    if exe is None:
        raise AssertionError("caddy is not installed")
    port = ports.free_tcp_port()
    d = pathlib.Path(work_dir) / f"caddy-{backend_id}"
    home = d / "home"
    for sub in ("data", "config", "storage"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    cfg = d / "caddy.json"
    cfg.write_text(json.dumps(caddy_h2_config(port, certs, root, backend_id, home / "storage",
                                              tls, client_ca=client_ca), indent=2))
    env = procs.default_env(HOME=home, XDG_DATA_HOME=home / "data",
                            XDG_CONFIG_HOME=home / "config")
    argv = [exe, "run", "--config", cfg]
    proc = group.start(backend_id, argv, env=env, cwd=d)
    proc.wait_for_log(r"serving initial configuration", timeout=timeout)
    wait_tcp(proc, port, timeout)
    return CaddyH2(backend_id, port, proc, d, "h2" if tls else "h2c", argv=argv, env=env)


# --- h2raw: scripted h2c behaviour ------------------------------------------------------------

class H2Raw(H2Backend):
    kind = "h2raw"

    def connections(self):
        """TCP connections the script accepted so far."""
        return self.proc.count_log(r"^event=conn$")

    def requests(self):
        return self.proc.count_log(r"^event=request ")


def start_h2raw(group, work_dir, mode, backend_id="h2raw-1", timeout=10.0):
    """Starts h2raw.py in `mode` (see its docstring) on a free port."""
    port = ports.free_tcp_port()
    d = pathlib.Path(work_dir) / f"h2raw-{backend_id}"
    d.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-u", H2RAW, "--port", str(port), "--mode", mode]
    proc = group.start(backend_id, argv, cwd=d)
    proc.wait_for_log(r"^event=ready", timeout=timeout)
    return H2Raw(backend_id, port, proc, d, "h2c", argv=argv)


def wait_closed(sp, backend_id, count=1, timeout=10.0):
    """Waits for spooky to log `count` closed backend connections for backend_id."""
    return sp.wait_entries(count=count, timeout=timeout, area="upstream", event="closed",
                           backend=backend_id)


def connected_h2(sp, backend_id):
    """spooky's `event=connected proto=h2` lines for backend_id."""
    return sp.entries(area="upstream", event="connected", backend=backend_id, proto="h2")
