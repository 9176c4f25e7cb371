"""HTTP/3 clients: the ngtcp2 example client `gtlsclient` and our own `spooky-testc`.

gtlsclient (ngtcp2 0.12 examples, GnuTLS), what the wrapper relies on:
  gtlsclient [OPTIONS] HOST PORT URI...   HOST is where to connect; each URI's authority becomes
  :authority; --sni NAME sets TLS SNI (none is sent for an IP HOST). It does not verify the
  server certificate. -n N sends N requests cycling over the URIs, as concurrent streams up to
  the server's stream limit. -m METHOD (default GET); -d FILE sends FILE as the body of every
  request and adds content-length (method stays GET unless -m is given).
  --download DIR saves each body to DIR/<last path component, query included> (undefined when
  two requests share a name, so callers pass distinct URIs). --exit-on-all-streams-close exits
  when all requests are done. --timeout is the idle timeout, --handshake-timeout bounds the
  handshake. Its exit code is 0 even when the handshake times out, so success is judged from
  its stderr log (not -q, which hides everything): "QUIC handshake has completed",
  "http: stream 0x<hex> [name: value]" for response fields (after "response headers started"
  or "trailers started"), "HTTP stream <dec> closed with error code <dec>" (256 = H3_NO_ERROR).
  --no-quic-dump/--no-http-dump suppress frame and body hex dumps.
"""

import dataclasses
import hashlib
import json
import pathlib
import re
import signal
import subprocess
import tempfile
import time

from . import binaries

H3_NO_ERROR = 0x100
H3_INTERNAL_ERROR = 0x102
H3_REQUEST_REJECTED = 0x10b
H3_REQUEST_CANCELLED = 0x10c
H3_MESSAGE_ERROR = 0x10e

KEEP_DOWNLOADS_UP_TO = 64 * 1024   # bytes; larger downloaded bodies are deleted once hashed


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _first(fields, name):
    for n, v in fields:
        if n == name:
            return v
    return None


def _all(fields, name):
    return [v for n, v in fields if n == name]


# --- gtlsclient -------------------------------------------------------------------------------

@dataclasses.dataclass
class GtlsStream:
    stream_id: int
    url: str
    status: int = None
    headers: list = dataclasses.field(default_factory=list)    # [(name, value)], no :status
    trailers: list = dataclasses.field(default_factory=list)
    error_code: int = None        # application error code at close; H3_NO_ERROR when clean
    body_len: int = None          # None when the body was not downloaded
    body_sha256: str = None
    body_path: pathlib.Path = None  # the downloaded body, kept when <= KEEP_DOWNLOADS_UP_TO

    def header(self, name):
        return _first(self.headers, name)

    def headers_all(self, name):
        return _all(self.headers, name)

    def trailer(self, name):
        return _first(self.trailers, name)

    def text(self):
        if self.body_path is None:
            raise AssertionError(f"body of {self.url} not kept (not downloaded or too big)")
        return self.body_path.read_text(errors="replace")

    def json_body(self):
        return json.loads(self.text())


@dataclasses.dataclass
class GtlsResult:
    returncode: int
    handshake_completed: bool
    streams: list                  # GtlsStream, in request order
    log_path: pathlib.Path
    elapsed_s: float

    def tail(self, n=40):
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])


_RX_FIELD = re.compile(r"^http: stream 0x([0-9a-f]+) \[(.*?): (.*)\]$")
_RX_RESP = re.compile(r"^http: stream 0x([0-9a-f]+) response headers started$")
_RX_TRAILERS = re.compile(r"^http: stream 0x([0-9a-f]+) trailers started$")
_RX_CLOSED = re.compile(r"^HTTP stream (\d+) closed with error code (\d+)$")


def _download_name(url):
    path = url.split("://", 1)[-1]
    path = path[path.find("/"):] if "/" in path else "/"
    name = path.rsplit("/", 1)[-1]
    return name or "index.html"


def gtlsclient(work_dir, port, paths, *, host="127.0.0.1", authority=None, sni="localhost",
               method=None, data=None, n=None, download=True, timeout_s=60, idle_timeout="15s",
               handshake_timeout="5s", extra_args=(), group=None):
    """Runs gtlsclient against HOST:port for `paths` (list of "/path?query"; or full URLs).

    Returns GtlsResult; streams[i] is the i-th request (stream id 4*i). With download=True,
    bodies are saved in a fresh directory under work_dir and measured; requests whose file name
    collides with another request's get body_len None. Raises AssertionError when gtlsclient
    does not finish within timeout_s (it is killed)."""
    if isinstance(paths, str):
        paths = [paths]
    authority = authority or f"localhost:{port}"
    urls = [p if "://" in p else f"https://{authority}{p}" for p in paths]
    count = n or len(urls)
    run_dir = pathlib.Path(tempfile.mkdtemp(prefix="gtlsclient-", dir=work_dir))
    log_path = run_dir / "gtlsclient.log"
    argv = [binaries.system_tool("gtlsclient") or "gtlsclient", "--no-quic-dump",
            "--no-http-dump", "--exit-on-all-streams-close", f"--timeout={idle_timeout}",
            f"--handshake-timeout={handshake_timeout}"]
    if sni:
        argv.append(f"--sni={sni}")
    if method:
        argv.append(f"--http-method={method}")
    if data is not None:
        argv.append(f"--data={data}")
    if n:
        argv.append(f"--nstreams={n}")
    if download:
        dl = run_dir / "download"
        dl.mkdir()
        argv.append(f"--download={dl}")
    argv += list(extra_args) + [host, str(port)] + urls
    if group is not None:
        group.note_log("gtlsclient", log_path)
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        log.write(("# " + " ".join(argv) + "\n").encode())
        log.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise AssertionError(f"gtlsclient did not finish in {timeout_s}s; log {log_path}")
    elapsed = time.monotonic() - t0

    streams = {4 * i: GtlsStream(stream_id=4 * i, url=urls[i % len(urls)])
               for i in range(count)}
    handshake = False
    mode = {}
    with open(log_path, "r", errors="replace") as log:
        for line in log:
            line = line.rstrip("\n")
            if line == "QUIC handshake has completed":
                handshake = True
                continue
            if not line.startswith(("http: stream", "HTTP stream")):
                continue
            m = _RX_FIELD.match(line)
            if m:
                sid = int(m.group(1), 16)
                st = streams.get(sid)
                if st is None:
                    continue
                name, value = m.group(2), m.group(3)
                if mode.get(sid) == "trailers":
                    st.trailers.append((name, value))
                elif name == ":status":
                    st.status = int(value)
                else:
                    st.headers.append((name, value))
                continue
            m = _RX_RESP.match(line)
            if m:
                sid = int(m.group(1), 16)
                mode[sid] = "headers"
                if sid in streams:   # a final response after 1xx replaces it
                    streams[sid].headers = []
                continue
            m = _RX_TRAILERS.match(line)
            if m:
                mode[int(m.group(1), 16)] = "trailers"
                continue
            m = _RX_CLOSED.match(line)
            if m and int(m.group(1)) in streams:
                streams[int(m.group(1))].error_code = int(m.group(2))

    ordered = [streams[4 * i] for i in range(count)]
    if download:
        names = [_download_name(s.url) for s in ordered]
        for st, name in zip(ordered, names):
            f = dl / name
            if names.count(name) == 1 and st.status is not None:
                if f.is_file():
                    st.body_len = f.stat().st_size
                    st.body_sha256 = sha256_file(f)
                    if st.body_len <= KEEP_DOWNLOADS_UP_TO:
                        st.body_path = f
                elif st.error_code == H3_NO_ERROR:
                    st.body_len = 0
                    st.body_sha256 = hashlib.sha256(b"").hexdigest()
        for f in dl.iterdir():   # keep small bodies for callers to read; big ones eat disk
            if f.stat().st_size > KEEP_DOWNLOADS_UP_TO:
                f.unlink()
    return GtlsResult(returncode=rc, handshake_completed=handshake, streams=ordered,
                      log_path=log_path, elapsed_s=elapsed)


# --- spooky-testc -----------------------------------------------------------------------------

@dataclasses.dataclass
class TestcResponse:
    status: int
    headers: list
    trailers: list
    body_len: int
    body_sha256: str
    reset: int            # H3 error code of a stream reset, or None
    error: str            # other failure, or None
    body: str = None      # the body text, only with print_body=True (--print-body)

    __test__ = False      # not a pytest test class

    def header(self, name):
        return _first(self.headers, name)

    def headers_all(self, name):
        return _all(self.headers, name)

    def trailer(self, name):
        return _first(self.trailers, name)

    def json_body(self):
        if self.body is None:
            raise AssertionError("no body in spooky-testc output (run it with print_body=True)")
        return json.loads(self.body)


@dataclasses.dataclass
class TestcResult:
    returncode: int
    responses: list       # TestcResponse, one per request, in completion order
    stderr_path: pathlib.Path
    elapsed_s: float
    argv: list

    __test__ = False

    def statuses(self):
        return [r.status for r in self.responses]


def request_fields(path, method="GET", authority="localhost", scheme="https", extra=()):
    """The usual request fields, pseudo-headers first, as spooky-testc -H arguments."""
    fields = [(":method", method), (":scheme", scheme), (":authority", authority),
              (":path", path)]
    return fields + list(extra)


def testc(work_dir, port, fields, *, n=1, parallel=1, body=None, trailers=(), host="127.0.0.1",
          ca=None, insecure=False, sni="localhost", timeout_s=60, extra_args=(), group=None,
          print_body=False, bind=None):
    """Runs spooky-testc: `n` requests with exactly `fields` ([(name, value)] in order), up to
    `parallel` at once, on one QUIC connection to host:port. Returns TestcResult.
    print_body=True passes --print-body, which makes spooky-testc add "body" (the response body
    as text) to each JSON line: an addition to the documented contract, needed to read the
    JSON of spooky-testd's /headers.
    bind="127.0.0.5" sends from that local address (--bind), to act as a distinct client IP.
    Raises AssertionError if the binary is missing or does not finish in timeout_s."""
    exe = binaries.find("spooky-testc")
    if exe is None:
        raise AssertionError(f"spooky-testc not built ({binaries.path_of('spooky-testc')})")
    argv = [str(exe)]
    if insecure:
        argv.append("--insecure")
    if ca is not None:
        argv += ["--ca", str(ca)]
    if sni:
        argv += ["--sni", sni]
    if bind is not None:
        argv += ["--bind", str(bind)]
    argv += ["--connect", f"{host}:{port}", "-n", str(n), "-P", str(parallel)]
    if body is not None:
        argv += ["--body", str(body)]
    for name, value in trailers:
        argv += ["--trailer", f"{name}: {value}"]
    for name, value in fields:
        argv += ["-H", f"{name}: {value}"]
    if print_body:
        argv.append("--print-body")
    argv += list(extra_args)
    run_dir = pathlib.Path(tempfile.mkdtemp(prefix="testc-", dir=work_dir))
    stderr_path = run_dir / "testc.stderr"
    if group is not None:
        group.note_log("spooky-testc", stderr_path)
    t0 = time.monotonic()
    with open(stderr_path, "wb") as err:
        err.write(("# " + " ".join(argv) + "\n").encode())
        err.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)
            raise AssertionError(f"spooky-testc did not finish in {timeout_s}s; "
                                 f"stderr {stderr_path}")
    elapsed = time.monotonic() - t0
    (run_dir / "testc.stdout").write_bytes(out)
    responses = []
    for line in out.decode(errors="replace").splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        responses.append(TestcResponse(
            status=d.get("status"),
            headers=[tuple(h) for h in d.get("headers") or []],
            trailers=[tuple(h) for h in d.get("trailers") or []],
            body_len=d.get("body_len"), body_sha256=d.get("body_sha256"),
            reset=d.get("reset"), error=d.get("error"), body=d.get("body")))
    return TestcResult(returncode=proc.returncode, responses=responses,
                       stderr_path=stderr_path, elapsed_s=elapsed, argv=argv)


# --- spooky-h3load client (quic-go 0.29) --------------------------------------------------------

class H3LoadResult:
    """What spooky-h3load client printed: requests, ok, failed, stalled (not complete within
    -timeout), mismatch (a body that differs from what was expected), errors {kind: count},
    statuses {code: count}, p50_ms, p99_ms, max_ms, seconds."""

    def __init__(self, data, argv, stderr_path):
        self.__dict__.update(data)
        self.argv = argv
        self.stderr_path = stderr_path

    def __repr__(self):
        return (f"<h3load requests={self.requests} ok={self.ok} failed={self.failed} "
                f"stalled={self.stalled} errors={self.errors} max_ms={self.max_ms}>")


class H3LoadRun:
    """A spooky-h3load client running in the background (h3load_start). finish() ends it (no
    new requests; those in flight complete) and returns its H3LoadResult, whose .timeline is
    one dict per request: start (unix s), ms, status, err."""

    def __init__(self, argv, stderr_path, log_path, max_s):
        self.argv = argv
        self.stderr_path = stderr_path
        self.log_path = log_path
        self.max_s = max_s
        self._err = open(stderr_path, "wb")
        self._err.write(("# " + " ".join(argv) + "\n").encode())
        self._err.flush()
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=self._err)

    def holding(self):
        """Responses a -noread client holds unread so far."""
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().count(b"holding an unread response")
        except OSError:
            return 0

    def requests_so_far(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().count(b"\n")
        except OSError:
            return 0

    def finish(self, stop=True):
        if stop and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            out, _ = self.popen.communicate(timeout=self.max_s)
        finally:
            self._err.close()
        if self.popen.returncode != 0:
            raise AssertionError(f"spooky-h3load exited {self.popen.returncode}; see "
                                 f"{self.stderr_path}")
        res = H3LoadResult(json.loads(out), self.argv, self.stderr_path)
        with open(self.log_path) as f:
            res.timeline = [json.loads(ln) for ln in f if ln.strip()]
        return res


def _h3load_argv(port, plan, conns, streams, duration_s, max_requests, timeout_s, host):
    exe = binaries.find("spooky-h3load")
    if exe is None:
        raise AssertionError(f"spooky-h3load not built ({binaries.path_of('spooky-h3load')})")
    return [str(exe), "client", "-url", f"https://{host}:{port}", "-c", str(conns),
            "-m", str(streams), "-duration", f"{duration_s}s", "-n", str(max_requests),
            "-timeout", f"{timeout_s}s", "-plan", ",".join(plan)]


def h3load_start(work_dir, port, *, plan, conns=4, streams=4, duration_s=60, timeout_s=10,
                 host="127.0.0.1", group=None, noread=False):
    """Starts spooky-h3load client in the background (see H3LoadRun); it stops by itself after
    duration_s at the latest. noread=True: it never reads response bodies (H3LoadRun.holding()
    counts the responses it holds unread)."""
    run_dir = pathlib.Path(tempfile.mkdtemp(prefix="h3load-", dir=work_dir))
    log_path = run_dir / "requests.jsonl"
    argv = _h3load_argv(port, plan, conns, streams, duration_s, 0, timeout_s, host)
    argv += ["-log", str(log_path)] + (["-noread"] if noread else [])
    if group is not None:
        group.note_log("spooky-h3load", run_dir / "h3load.stderr")
    return H3LoadRun(argv, run_dir / "h3load.stderr", log_path, duration_s + timeout_s + 30)


def h3load(work_dir, port, *, plan, conns=4, streams=4, duration_s=10, max_requests=0,
           timeout_s=10, host="127.0.0.1", group=None):
    """Runs spooky-h3load client: `conns` connections x `streams` concurrent request loops for
    `duration_s` (or `max_requests`), cycling through `plan` (["POST:/echo:65536", ...]), each
    request a stall after `timeout_s`. Returns H3LoadResult; raises AssertionError when the
    binary is missing or does not finish in a bounded time."""
    argv = _h3load_argv(port, plan, conns, streams, duration_s, max_requests, timeout_s, host)
    run_dir = pathlib.Path(tempfile.mkdtemp(prefix="h3load-", dir=work_dir))
    stderr_path = run_dir / "h3load.stderr"
    if group is not None:
        group.note_log("spooky-h3load", stderr_path)
    with open(stderr_path, "wb") as err:
        err.write(("# " + " ".join(argv) + "\n").encode())
        err.flush()
        out = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                             timeout=duration_s + timeout_s + 30, check=False)
    if out.returncode != 0:
        raise AssertionError(f"spooky-h3load exited {out.returncode}; see {stderr_path}")
    return H3LoadResult(json.loads(out.stdout), argv, stderr_path)
