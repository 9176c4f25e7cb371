"""HTTP/1.1 backends for the tests: nginx (Debian nginx-light), caddy on an http:// site, and
a small HTTP/1.1 server of our own (this module, run as a script) for what they cannot do.

Each backend object has .id, .port, .address, .proc and .spooky_backend() (protocol "http1",
cleartext unless told otherwise). Start them through the conftest factories.

nginx 1.22 (Debian): `nginx -p DIR -c FILE -e ERRLOG -g 'daemon off;'` with `master_process off`
so the one process keeps the test's user (no worker switching to nobody, which could not read
the test's private directories); pid, logs and temp paths live in DIR. The access log records
`$connection` per request, so connection_count() counts the connections nginx accepted.

caddy 2.6 (Debian): JSON config, one cleartext server (`protocols: ["h1"]`), automatic HTTPS
off, admin off, files from the content directory, GET /whoami -> 200 "<id>".

Our server (ThreadingHTTPServer, HTTP/1.1 keep-alive), routes:
  GET  /size/N        N bytes of the repeating alphabet, with content-length
  GET  /chunked/N     the same bytes, chunked in uneven chunks; ?trailers=1 adds trailers
  GET  /close/N       the same bytes without content-length: the body ends when we close
  GET  /kaclose/N     a normal keep-alive response, then we close the connection anyway
  GET  /reset/N       content-length 2N, N bytes, then a TCP reset
  GET  /stall/N       content-length 2N, N bytes, then nothing for up to 60 s
  GET  /headers       the request line and fields as received, JSON
  GET  /stats         {"connections": accepted so far, "requests": handled so far}
  POST|PUT /echo      the body back (content-length in -> content-length out; chunked in ->
                      chunked out), read and written as it streams
"""

import argparse
import http.server
import json
import os
import pathlib
import socket
import struct
import sys
import threading
import urllib.request

ALPHABET = b"abcdefghijklmnopqrstuvwxyz"
CHUNK_SIZES = (1, 7, 1000, 16384, 3)
STALL_MAX_S = 60
IO_BLOCK = 65536

# --- the server (runs in its own process) -----------------------------------------------------


def pattern(offset, n):
    """n bytes of the repeating alphabet starting at offset."""
    start = offset % len(ALPHABET)
    reps = (start + n) // len(ALPHABET) + 1
    return (ALPHABET * reps)[start:start + n]


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, addr, backend_id):
        super().__init__(addr, Handler)
        self.backend_id = backend_id
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0
        self.stop_stalls = threading.Event()

    def handle_error(self, request, client_address):
        # Resets and closed peers are part of the tests; one line, no traceback.
        print(f"event=conn_error peer={client_address} err={sys.exc_info()[1]!r}", flush=True)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "h1test"
    timeout = 120   # idle keep-alive connections end eventually

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, fmt, *args):
        pass

    def _count(self):
        with self.server.lock:
            self.server.requests += 1

    def _head(self, status=200, length=None, chunked=False, extra=()):
        self.send_response(status)
        self.send_header("x-backend-id", self.server.backend_id)
        if length is not None:
            self.send_header("Content-Length", str(length))
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()

    def _write_pattern(self, n, chunked=False):
        off = 0
        i = 0
        while off < n:
            size = min(CHUNK_SIZES[i % len(CHUNK_SIZES)] if chunked else IO_BLOCK, n - off)
            data = pattern(off, size)
            if chunked:
                self.wfile.write(b"%x\r\n" % size + data + b"\r\n")
            else:
                self.wfile.write(data)
            off += size
            i += 1

    def _arg(self):
        tail = self.path.split("?", 1)[0].rsplit("/", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    def do_HEAD(self):
        self._count()
        self._head(length=self._arg())

    def do_GET(self):
        self._count()
        route = self.path.split("?", 1)[0].split("/")[1] if "/" in self.path else ""
        handler = getattr(self, "get_" + route, None)
        if handler is None:
            self._head(404, length=0)
            return
        handler(self._arg())

    def get_size(self, n):
        self._head(length=n)
        self._write_pattern(n)

    def get_chunked(self, n):
        trailers = "trailers=1" in self.path
        extra = [("Trailer", "x-trailer")] if trailers else []
        self._head(chunked=True, extra=extra)
        self._write_pattern(n, chunked=True)
        self.wfile.write(b"0\r\nx-trailer: done\r\n\r\n" if trailers else b"0\r\n\r\n")

    def get_close(self, n):
        self._head()
        self._write_pattern(n)
        self.close_connection = True

    def get_kaclose(self, n):
        self._head(length=n)
        self._write_pattern(n)
        self.wfile.flush()
        self.close_connection = True   # said nothing, closes anyway

    def get_reset(self, n):
        self._head(length=2 * n)
        self._write_pattern(n)
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        os.close(self.connection.detach())   # RST; the socket object is now unusable
        self.close_connection = True

    def get_stall(self, n):
        self._head(length=2 * n)
        self._write_pattern(n)
        self.wfile.flush()
        self.server.stop_stalls.wait(STALL_MAX_S)
        self.close_connection = True

    def get_headers(self, _):
        body = json.dumps({"request_line": self.requestline,
                           "headers": [[k, v] for k, v in self.headers.items()]}).encode()
        self._head(length=len(body), extra=[("Content-Type", "application/json")])
        self.wfile.write(body)

    def get_stats(self, _):
        with self.server.lock:
            body = json.dumps({"connections": self.server.connections,
                               "requests": self.server.requests}).encode()
        self._head(length=len(body), extra=[("Content-Type", "application/json")])
        self.wfile.write(body)

    def _read_chunks(self):
        """Yields the decoded chunks of a chunked request body (trailers are read and
        dropped)."""
        for _ in range(1 << 30):
            line = self.rfile.readline(1024)
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                for _ in range(100):
                    if self.rfile.readline(8192) in (b"\r\n", b"\n", b""):
                        return
                return
            left = size
            while left > 0:
                data = self.rfile.read(min(left, IO_BLOCK))
                if not data:
                    raise ConnectionError("body cut short")
                left -= len(data)
                yield data
            self.rfile.readline(8)

    def _echo(self):
        self._count()
        if self.path.split("?", 1)[0] != "/echo":
            self._head(404, length=0)
            self.close_connection = True
            return
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self._head(chunked=True)
            for data in self._read_chunks():
                self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        n = int(self.headers.get("Content-Length") or 0)
        self._head(length=n)
        left = n
        while left > 0:
            data = self.rfile.read(min(left, IO_BLOCK))
            if not data:
                raise ConnectionError("body cut short")
            self.wfile.write(data)
            left -= len(data)

    do_POST = _echo
    do_PUT = _echo


def serve(argv=None):
    ap = argparse.ArgumentParser(description="HTTP/1.1 test backend")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--id", default="h1py-1")
    args = ap.parse_args(argv)
    srv = Server(("127.0.0.1", args.port), args.id)
    print(f"event=ready port={args.port} id={args.id}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.stop_stalls.set()


# --- fixtures' side (runs in pytest) ----------------------------------------------------------

if __name__ != "__main__":   # run as a script, the server needs none of the helpers
    from . import binaries, ports, procs


class H1Backend:
    kind = "?"

    def __init__(self, backend_id, port, proc, work_dir, tls=False):
        self.id = backend_id
        self.port = port
        self.proc = proc
        self.work_dir = pathlib.Path(work_dir)
        self.tls = tls

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def spooky_backend(self, weight=1):
        return {"id": self.id, "address": self.address, "protocol": "http1", "tls": self.tls,
                "weight": weight}

    def get(self, path, timeout=10):
        """GET path directly (not through spooky), on a new connection. Returns (status, body)."""
        with urllib.request.urlopen(f"http://{self.address}{path}", timeout=timeout) as r:
            return r.status, r.read()

    def __repr__(self):
        return f"<{self.kind} {self.id} {self.address}>"


def _wait_http_ok(backend, path, timeout):
    def ok():
        if not backend.proc.running():
            raise procs.ProcError(f"{backend.proc.name} exited; log tail:\n"
                                  f"{backend.proc.tail()}")
        try:
            return backend.get(path, timeout=2)[0] == 200
        except OSError:
            return False
    procs.poll(ok, timeout, f"{backend.proc.name} to answer {path}", interval=0.05)


# our server


class PyH1(H1Backend):
    """Our HTTP/1.1 server. stats() counts its own /stats connection and request too: use
    stats_delta()."""

    kind = "h1py"

    def stats(self):
        status, body = self.get("/stats")
        assert status == 200, status
        return json.loads(body)


def stats_delta(before, after):
    """Connections and requests between two stats() calls, minus the second call's own."""
    return {"connections": after["connections"] - before["connections"] - 1,
            "requests": after["requests"] - before["requests"] - 1}


def start_pyh1(group, work_dir, backend_id="h1py-1", timeout=10.0):
    port = ports.free_tcp_port()
    d = pathlib.Path(work_dir) / f"h1py-{backend_id}"
    d.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-u", str(pathlib.Path(__file__).resolve()), "--port", str(port),
            "--id", backend_id]
    proc = group.start(backend_id, argv, cwd=d)
    proc.wait_for_log(r"event=ready", timeout=timeout)
    return PyH1(backend_id, port, proc, d)


# nginx


class Nginx(H1Backend):
    kind = "nginx"

    def connection_count(self):
        """Distinct connections in nginx's access log (each line starts with $connection).
        nginx logs a request after it answered it, so a client can see its response before
        the line is there: poll (connections_serving) rather than read once."""
        log = self.work_dir / "access.log"
        if not log.exists():
            return 0
        return len({ln.split(" ", 1)[0] for ln in log.read_text().splitlines() if ln})

    def connections_serving(self, path):
        """(requests, connections): how many access-log lines are `GET <path>` requests, and
        the distinct connections ($connection) that carried them."""
        log = self.work_dir / "access.log"
        lines = log.read_text().splitlines() if log.exists() else []
        hits = [ln.split(" ") for ln in lines if f" GET {path} " in ln]
        return len(hits), {h[0] for h in hits}


def nginx_config(d, port, root, backend_id):
    return f"""# generated by the integration tests
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
    log_format conn '$connection $connection_requests $request $status';
    access_log {d}/access.log conn;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    types {{ application/octet-stream bin; }}
    keepalive_requests 100000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        add_header X-Backend {backend_id};
        location = /whoami {{ return 200 "{backend_id}"; }}
    }}
}}
"""


def start_nginx(group, work_dir, root, backend_id="nginx-1", timeout=10.0, port=None):
    """port=None takes a free port; a stopped nginx's .port brings it back at that address."""
    exe = binaries.system_tool("nginx")
    if exe is None:
        raise AssertionError("nginx is not installed")
    if port is None:
        port = ports.free_tcp_port()
    d = pathlib.Path(work_dir) / f"nginx-{backend_id}"
    d.mkdir(parents=True, exist_ok=True)
    cfg = d / "nginx.conf"
    cfg.write_text(nginx_config(d, port, root, backend_id))
    proc = group.start(backend_id, [exe, "-p", d, "-c", cfg, "-e", d / "error.log",
                                    "-g", "daemon off;"], cwd=d)
    backend = Nginx(backend_id, port, proc, d)
    _wait_http_ok(backend, "/whoami", timeout)
    return backend


# caddy (http://)


class CaddyHttp(H1Backend):
    kind = "caddy-http"


def caddy_http_config(port, root, backend_id, storage_dir):
    set_id = {"handler": "headers", "response": {"set": {"X-Backend": [backend_id]}}}
    return {
        "admin": {"disabled": True, "config": {"persist": False}},
        "storage": {"module": "file_system", "root": str(storage_dir)},
        "apps": {"http": {"servers": {"srv0": {
            "listen": [f"127.0.0.1:{port}"],
            "protocols": ["h1"],
            "automatic_https": {"disable": True},
            "routes": [
                {"match": [{"path": ["/whoami"]}], "terminal": True,
                 "handle": [set_id, {"handler": "static_response", "status_code": 200,
                                     "body": backend_id}]},
                {"handle": [{"handler": "vars", "root": str(root)}, set_id,
                            {"handler": "file_server"}]},
            ],
        }}}},
    }


def start_caddy_http(group, work_dir, root, backend_id="caddy-http-1", timeout=15.0):
    exe = binaries.system_tool("caddy")
    if exe is None:
        raise AssertionError("caddy is not installed")
    port = ports.free_tcp_port()
    d = pathlib.Path(work_dir) / f"caddy-{backend_id}"
    home = d / "home"
    for sub in ("data", "config", "storage"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    cfg = d / "caddy.json"
    cfg.write_text(json.dumps(caddy_http_config(port, root, backend_id, home / "storage"),
                              indent=2))
    env = procs.default_env(HOME=home, XDG_DATA_HOME=home / "data",
                            XDG_CONFIG_HOME=home / "config")
    proc = group.start(backend_id, [exe, "run", "--config", cfg], env=env, cwd=d)
    backend = CaddyHttp(backend_id, port, proc, d)
    proc.wait_for_log(r"serving initial configuration", timeout=timeout)
    _wait_http_ok(backend, "/whoami", timeout)
    return backend


def dead_h1_backend(backend_id="dead-h1"):
    """An http1 backend entry on a TCP port where nothing listens (connect is refused)."""
    port = ports.free_tcp_port()
    return {"id": backend_id, "address": f"127.0.0.1:{port}", "protocol": "http1",
            "tls": False, "weight": 1}


if __name__ == "__main__":
    serve()
