"""Running spooky: config generation, start/stop, and reading its key=value log.

The config is written as JSON, which is valid YAML, so no YAML library is needed."""

import copy
import json
import pathlib
import re
import signal
import time

from . import binaries, ports, procs

# --- log parsing ------------------------------------------------------------------------------

_RX_KV = re.compile(r'([A-Za-z0-9_.:-]+)=("(?:[^"\\]|\\.)*"|\S*)')
_RX_ESC = re.compile(r'\\(x[0-9a-fA-F]{2}|.)')


def _unescape(m):
    e = m.group(1)
    if e.startswith("x") and len(e) == 3:
        return chr(int(e[1:], 16))
    return {"n": "\n", "r": "\r", "t": "\t"}.get(e, e)


def parse_kv(line):
    """Parses one `key=value key="quoted \\"value\\""` log line into a dict."""
    out = {}
    for m in _RX_KV.finditer(line):
        v = m.group(2)
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = _RX_ESC.sub(_unescape, v[1:-1])
        out[m.group(1)] = v
    return out


def _matches(entry, criteria):
    for k, want in criteria.items():
        have = entry.get(k)
        if callable(want):
            if not want(have):
                return False
        elif isinstance(want, (set, frozenset, tuple, list)):
            if have not in want:
                return False
        elif have != str(want):
            return False
    return True


# --- config -----------------------------------------------------------------------------------

def deep_merge(base, override):
    """Returns base updated recursively with override (dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


DEFAULT_TIMEOUTS = {"connect_ms": 2000, "response_ms": 5000, "client_idle_ms": 30000,
                    "backend_idle_ms": 30000}
DEFAULT_LIMITS = {"max_header_bytes": 65536, "max_headers": 100,
                  "max_streams_per_connection": 100}
DEFAULT_POOL = {"max_connections_per_backend": 4, "max_streams_per_connection": 100,
                "max_queue": 1024, "idle_timeout_ms": 60000}


def upstream(name, backends, certs, *, routes=None, strategy="round_robin", pool=None,
             tls=None):
    """One upstream pool. `backends` are backend objects (with .spooky_backend()) or dicts."""
    entries = [b if isinstance(b, dict) else b.spooky_backend() for b in backends]
    return {
        "name": name,
        "strategy": strategy,
        "routes": routes if routes is not None else [{"path_prefix": "/"}],
        "backends": entries,
        "tls": {k: v for k, v in deep_merge({"ca_file": str(certs.ca), "verify": True,
                                             "server_name": "localhost"}, tls).items()
                if v is not None},   # tls={"server_name": None} leaves the key out
        "pool": deep_merge(DEFAULT_POOL, pool),
    }


def upstream_with_defaults(name, backends, certs, *, routes=None, extra=None):
    """An upstream as a new user writes it: routes, backends and the CA to verify them with;
    every other key (strategy, pool, timeouts, health, retries) left at spooky's defaults."""
    entries = [b if isinstance(b, dict) else b.spooky_backend() for b in backends]
    up = {"name": name, "routes": routes if routes is not None else [{"path_prefix": "/"}],
          "backends": entries, "tls": {"ca_file": str(certs.ca), "server_name": "localhost"}}
    return deep_merge(up, extra)


def config_with_defaults(port, certs, upstreams, *, workers=2, extra=None):
    """A whole config with spooky's defaults for everything but the listener, the upstreams and
    the worker count (2: behaviour that is per worker shows)."""
    cfg = {"workers": workers,
           "listeners": [{"address": "127.0.0.1", "port": port, "cert": str(certs.cert),
                          "key": str(certs.key)}],
           "upstreams": upstreams}
    return deep_merge(cfg, extra)


def config(port, certs, upstreams, *, timeouts=None, limits=None, log_level="info", extra=None):
    cfg = {
        "workers": 1,
        "log": {"level": log_level},
        "listeners": [{"address": "127.0.0.1", "port": port, "cert": str(certs.cert),
                       "key": str(certs.key)}],
        "timeouts": deep_merge(DEFAULT_TIMEOUTS, timeouts),
        "limits": deep_merge(DEFAULT_LIMITS, limits),
        "upstreams": upstreams,
    }
    return deep_merge(cfg, extra)


# --- the daemon -------------------------------------------------------------------------------

class Spooky:
    def __init__(self, proc, port, config_path, cfg):
        self.proc = proc
        self.port = port
        self.config_path = config_path
        self.config = cfg
        self.exit_checked = False

    # log access

    def entries(self, **criteria):
        """Parsed log lines matching all criteria (key=value; a value may be a set of allowed
        values or a predicate)."""
        out = []
        for line in self.proc.log_lines():
            if "=" not in line or line.startswith("#"):
                continue
            e = parse_kv(line)
            if _matches(e, criteria):
                out.append(e)
        return out

    def access_log(self, **criteria):
        return self.entries(area="access", **criteria)

    def wait_entries(self, count=1, timeout=5.0, **criteria):
        """Polls until at least `count` log lines match; returns them all."""
        def check():
            found = self.entries(**criteria)
            return found if len(found) >= count else None
        try:
            return procs.poll(check, timeout, f"spooky log x{count} {criteria}")
        except procs.ProcError as e:
            raise procs.ProcError(f"{e}; log tail:\n{self.proc.tail()}") from None

    def wait_access(self, count=1, timeout=5.0, **criteria):
        return self.wait_entries(count=count, timeout=timeout, area="access", **criteria)

    # per worker: health, breakers, pools and retries are each worker's own; its lines say
    # worker=N

    @property
    def workers(self):
        return int(self.config.get("workers", 1) or 1)

    def by_worker(self, **criteria):
        """{worker id (str): [matching lines]} for the workers that logged one."""
        out = {}
        for e in self.entries(**criteria):
            out.setdefault(e.get("worker", "0"), []).append(e)
        return out

    def every_worker_logged(self, **criteria):
        """True when each worker wrote at least one line matching criteria."""
        return len(self.by_worker(**criteria)) >= self.workers

    # lifecycle

    def terminate(self, timeout=5.0):
        """SIGTERM; returns (exit code or None if still running after timeout, seconds)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        return rc, time.monotonic() - t0

    def stop_and_check(self, timeout=5.0):
        """SIGTERM, then asserts spooky exited with 0 within `timeout` seconds."""
        if self.exit_checked:
            return
        self.exit_checked = True
        if not self.proc.running():
            rc = self.proc.popen.returncode
            assert rc == 0, f"spooky had already exited with {rc}; log tail:\n{self.proc.tail()}"
            return
        rc, elapsed = self.terminate(timeout)
        if rc is None:
            self.proc.stop(0.1, sig=signal.SIGKILL)
            raise AssertionError(f"spooky still running {timeout}s after SIGTERM; log tail:\n"
                                 f"{self.proc.tail()}")
        assert rc == 0, (f"spooky exited with {rc} after SIGTERM ({elapsed:.2f}s); log tail:\n"
                         f"{self.proc.tail()}")


def start_spooky(group, work_dir, cfg, *, name="spooky", ready_timeout=10.0, extra_args=()):
    """Writes cfg to <work_dir>/<name>.yaml, starts spooky -c on it and waits for event=ready."""
    exe = binaries.find("spooky")
    if exe is None:
        raise AssertionError(f"spooky not built ({binaries.path_of('spooky')})")
    path = pathlib.Path(work_dir) / f"{name}.yaml"
    path.write_text("# generated by the integration tests; JSON is valid YAML\n"
                    + json.dumps(cfg, indent=2) + "\n")
    proc = group.start(name, [exe, "-c", path, *extra_args])
    proc.wait_for_log(r"event=ready", timeout=ready_timeout)
    return Spooky(proc, cfg["listeners"][0]["port"], path, cfg)


def free_listener_port():
    return ports.free_udp_port()
