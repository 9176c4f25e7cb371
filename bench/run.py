#!/usr/bin/python3
"""spooky benchmark suite: one command, one table, everything measured in the same run.

    bench/run.py [--bin-dir DIR] [--build] [--duration S] [--warm-up S] [--callgrind]
                 [--mem-conns N,N] [--no-h1] [--no-plot] [--out FILE]

On loopback only, it starts the backends and the proxies once, then runs every scenario against
every path in turn (scenario by scenario, so the paths are measured minutes apart at most):

  direct   spooky-bench -> spooky-testd (HTTP/3)                    the reference
  spooky   spooky-bench -> spooky -> spooky-testd (HTTP/3)
  spooky   spooky-bench -> spooky -> nghttpd (h2c)                  \\ like with like:
  caddy    spooky-bench -> caddy (HTTP/3, reverse_proxy) -> nghttpd  / the same h2c backend
  spooky   spooky-bench -> spooky -> nginx (HTTP/1.1)               \\ when spooky has http1
  caddy    spooky-bench -> caddy -> nginx (HTTP/1.1)                 / upstreams

Caddy 2.6.2 cannot proxy to an HTTP/3 upstream (it accepts `versions 3` and silently speaks
HTTP/1.1 over TCP), so caddy and spooky are compared in front of the same HTTP/2 (and HTTP/1.1)
backend, and spooky in front of an HTTP/3 backend against direct. The TCP backends are measured
alone with h2load (their capacity, to show they are not the bottleneck).

Scenarios: small GET (100 bytes) at -c1 -m1, -c10 -m10 and -c50 -m100; an open loop at a fixed
rate below the slowest path's saturation (latency without coordinated omission); a 100 MiB
download; a 10 MiB upload (POST, echoed back by the backend); new connections (one request per
connection: handshakes/s). For each run it records the CPU time (utime+stime from
/proc/PID/stat) of the proxy and of the backend over the measured window, hence CPU per request.

Then: a soak with an independent QUIC client (spooky-h3load on quic-go 0.29; --stress-seconds,
default 120) through spooky and direct: requests, failed, stalled (not complete in 10 s), p99
and max latency. Then: RSS per idle client connection (a fresh spooky, N connections opened with spooky-bench
--hold, VmRSS before and while they are held), and with --callgrind the instruction count per
proxied request in the spooky process under valgrind --tool=callgrind, by library.

The table, the machine, the date and the exact commands go to bench/RESULTS.md (or --out),
the raw figures to bench/results.json and a plot to bench/results.png (gnuplot, if installed).

It is a benchmark, not a test: it never fails on speed. It exits non-zero only when it cannot
run (a binary or tool missing, a process that does not start).

Standard library only; process management, certificates and configs come from the
integration tests' helpers (tests/integration/spookytest)."""

import argparse
import datetime
import json
import os
import pathlib
import platform
import re
import resource
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

SMALL_BYTES = 100                         # response body of the "small GET"
BIG_BYTES = 100 * 1024 * 1024             # the download
UP_BYTES = 10 * 1024 * 1024               # the upload
POOL = {"max_connections_per_backend": 4, "max_streams_per_connection": 100,
        "max_queue": 16384, "idle_timeout_ms": 60000}
LIMITS = {"max_streams_per_connection": 100, "max_connections": 20000}
BENCH_TIMEOUT_S = 10                      # spooky-bench --timeout per request
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
CALLGRIND_REQUESTS = 20000                # measured requests under callgrind
CALLGRIND_WARMUP_REQUESTS = 1000
MEM_CONNECT_BURST = 100                   # handshakes under way at once in the memory runs
MASSIF_CONNS = 300                        # idle connections held for the heap snapshot
TARGETS = {                               # issue 6
    "ratio_c10": 0.45, "cpu_vs_caddy": 0.2, "instructions": 40000, "rss_kib": 16.0}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin-dir", type=pathlib.Path, default=None,
                   help="where spooky, spooky-testd and spooky-bench are (default: "
                        "build-bench/ if it exists, else build/)")
    p.add_argument("--build", action="store_true",
                   help="first configure and build build-bench/ (RelWithDebInfo)")
    p.add_argument("--duration", type=float, default=3.0, help="measured seconds per -D run")
    p.add_argument("--warm-up", type=float, default=1.0, help="unmeasured seconds per -D run")
    p.add_argument("--rate", type=float, default=0,
                   help="open-loop rate (default: 30%% of the slowest path's -c10 -m10 req/s, "
                        "at most 5000)")
    p.add_argument("--mem-conns", default="1000,10000",
                   help="idle client connection counts for the RSS figure ('' to skip)")
    p.add_argument("--callgrind", action="store_true",
                   help="also count instructions per proxied request under callgrind")
    p.add_argument("--callgrind-requests", type=int, default=CALLGRIND_REQUESTS)
    p.add_argument("--massif", action="store_true",
                   help="also take heap snapshots of spooky under valgrind --tool=massif "
                        f"before and while it holds {MASSIF_CONNS} idle connections")
    p.add_argument("--stress-seconds", type=float, default=120,
                   help="independent-client soak (quic-go spooky-h3load, mixed bodies both "
                        "ways) through spooky and direct, per path; 0 = skip")
    p.add_argument("--no-caddy", action="store_true")
    p.add_argument("--no-h1", action="store_true", help="skip the HTTP/1.1 backend paths")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--keep", action="store_true",
                   help="keep the work directory (logs, configs, callgrind dumps)")
    p.add_argument("--only", default="",
                   help="comma-separated scenario ids to run (default: all): "
                        "get-c1,get-c10,get-c50,rate,download,upload,handshake")
    p.add_argument("--out", type=pathlib.Path, default=REPO / "bench" / "RESULTS.md")
    return p.parse_args()


def build(bin_dir):
    cmds = [["cmake", "-S", str(REPO), "-B", str(bin_dir), "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
            ["cmake", "--build", str(bin_dir), "-j", str(os.cpu_count() or 2), "--target",
             "spooky", "spooky-testd", "spooky-bench"]]
    for c in cmds:
        print("+", shlex.join(c), flush=True)
        subprocess.run(c, check=True, stdout=subprocess.DEVNULL)


def pick_bin_dir(args):
    if args.bin_dir is not None:
        return args.bin_dir.resolve()
    d = REPO / "build-bench"
    return d if (args.build or (d / "spooky-bench").exists()) else REPO / "build"


def build_type(bin_dir):
    try:
        for line in (bin_dir / "CMakeCache.txt").read_text().splitlines():
            if line.startswith("CMAKE_BUILD_TYPE:"):
                return line.split("=", 1)[1] or "(none: -O0)"
    except OSError:
        pass
    return "unknown"


# --- machine and processes ----------------------------------------------------------------

def machine():
    model = "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    mem = "?"
    try:
        kib = int(pathlib.Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kib / 1048576:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {"nproc": os.cpu_count(), "model": model, "kernel": platform.release(), "mem": mem,
            "load": load}


def tool_version(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    out = (r.stdout or r.stderr).strip().splitlines()
    m = re.search(r"\d+\.\d+(\.\d+)?", out[0]) if out else None
    return m.group(0) if m else "?"


def git_rev():
    r = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                       capture_output=True, text=True, check=False)
    return r.stdout.strip() or "unknown"


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds, from /proc/PID/stat."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / CLK_TCK   # fields 14 and 15 of stat(5)


def rss_kib(pid):
    """Resident set size of a process in KiB (VmRSS of /proc/PID/status)."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# --- one measurement ----------------------------------------------------------------------

def run_cmd_measured(cmd, warm_up, watch, limit):
    """Runs cmd (a load generator) to the end; samples the CPU time of the `watch` processes
    ({role: pid}) when its warm-up ends and when it exits. Returns (CompletedProcess or None,
    {role: cpu seconds}, client cpu seconds)."""
    c0 = children_cpu()
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    before = {r: cpu_seconds(p) for r, p in watch.items()}
    if warm_up > 0:
        time.sleep(max(0.0, t0 + warm_up - time.monotonic()))
        before = {r: cpu_seconds(p) for r, p in watch.items()}
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None, {}, 0.0
    cpu = {r: cpu_seconds(p) - before[r] for r, p in watch.items()}
    return (subprocess.CompletedProcess(cmd, proc.returncode, out, err), cpu,
            children_cpu() - c0)


def bench_cmd(bench, port, path, sc, args, rate=0):
    cmd = [str(bench)]
    if sc.get("n"):
        cmd += ["-n", str(sc["n"])]
    else:
        cmd += ["-D", f"{args.duration:g}", "--warm-up", f"{args.warm_up:g}"]
    cmd += ["-c", str(sc["c"]), "-m", str(sc["m"])]
    if sc.get("rate"):
        cmd += ["--rate", f"{rate:g}"]
    if sc.get("conn_requests"):
        cmd += ["--conn-requests", str(sc["conn_requests"])]
    if sc.get("body"):
        cmd += ["-d", str(sc["body"])]
    cmd += ["--timeout", str(BENCH_TIMEOUT_S), "--insecure", "--json",
            f"https://127.0.0.1:{port}{path}"]
    return cmd


def measure(bench, target, sc, args, rate=0):
    """One spooky-bench run of scenario sc against target. Returns a result dict."""
    path = target["paths"][sc["kind"]]
    cmd = bench_cmd(bench, target["port"], path, sc, args, rate)
    warm = 0 if sc.get("n") else args.warm_up
    watch = {k: v for k, v in (("proxy", target["proxy_pid"]),
                               ("backend", target["backend_pid"])) if v}
    limit = (args.duration + args.warm_up if not sc.get("n") else 120) + 2 * BENCH_TIMEOUT_S + 30
    cp, cpu, client_cpu = run_cmd_measured(cmd, warm, watch, limit)
    res = None
    if cp is not None:
        try:
            res = json.loads(cp.stdout)
        except json.JSONDecodeError:
            sys.stderr.write(f"spooky-bench failed ({cp.returncode}): {cp.stderr.strip()}\n")
    return summarize(res, cpu, client_cpu, sc, cmd)


def summarize(res, cpu, client_cpu, sc, cmd):
    out = {"cmd": cmd, "rps": 0.0, "mibps": 0.0, "p50": None, "p99": None, "cpu_proxy_us": None,
           "cpu_backend_us": None, "cpu_client_us": None, "errors": "bench failed",
           "handshakes_per_s": None, "served": 0}
    if res is None:
        return out
    rq = res["requests"]
    bad = rq["failed"] + rq["not_started"]
    statuses = ",".join(f"{k}:{v}" for k, v in sorted(res["status"].items())
                        if not k.startswith("2"))
    errs = ",".join(f"{k}:{v}" for k, v in res["errors"].items() if v)
    served = rq["succeeded"] + rq["failed"] - rq["errored"]   # complete responses measured
    el = res["elapsed_s"]
    body = res["body_bytes"] + (UP_BYTES * served if sc.get("body") else 0)
    out.update({
        "rps": res["req_per_s"], "served": served,
        "mibps": body / el / 1048576 if el > 0 else 0.0,
        "p50": res["latency_us"]["p50"] if served else None,
        "p99": res["latency_us"]["p99"] if served else None,
        "handshakes_per_s": res.get("handshakes_per_s"),
        "errors": "; ".join(x for x in (f"{bad} failed" if bad else "", statuses, errs) if x)
        or "-"})
    if served > 0:
        for role in ("proxy", "backend"):
            if role in cpu:
                out[f"cpu_{role}_us"] = cpu[role] * 1e6 / served
        if not sc.get("n"):
            client_cpu *= el / (el + sc.get("warm", 0) + 1e-9)   # approx: whole run incl. warm-up
        out["cpu_client_us"] = client_cpu * 1e6 / served
    return out


def h2load_capacity(backend, path, h1, args):
    """The TCP backend measured alone with h2load (-c10 -m10): req/s and its CPU per request."""
    exe = shutil.which("h2load")
    if exe is None:
        return None
    cmd = [exe, "-D", f"{args.duration * 1000:.0f}ms",
           f"--warm-up-time={args.warm_up * 1000:.0f}ms", "-c", "10",
           "-m", "10" if not h1 else "1"]
    if h1:
        cmd.append("--h1")
    cmd.append(f"http://127.0.0.1:{backend.port}{path}")
    cp, cpu, _ = run_cmd_measured(cmd, args.warm_up, {"backend": backend.proc.pid},
                                  args.duration + args.warm_up + 30)
    if cp is None:
        return None
    m = re.search(r"finished in [^,]+, ([\d.]+) req/s", cp.stdout)
    d = re.search(r"(\d+) done", cp.stdout)
    if not m:
        return None
    rps = float(m.group(1))
    done = int(d.group(1)) if d else 0
    return {"cmd": cmd, "rps": rps,
            "cpu_backend_us": cpu["backend"] * 1e6 / done if done else None}


# --- setup --------------------------------------------------------------------------------

def start_material(work):
    from spookytest import certs as certs_mod
    htdocs = work / "htdocs"
    htdocs.mkdir()
    (htdocs / "small.bin").write_bytes(b"x" * SMALL_BYTES)
    (htdocs / "1k.bin").write_bytes(b"x" * 1024)
    with open(htdocs / "100m.bin", "wb") as f:
        chunk = b"\0" * (1 << 20)
        for _ in range(BIG_BYTES >> 20):
            f.write(chunk)
    up = work / "10m.bin"
    up.write_bytes(os.urandom(UP_BYTES))
    return certs_mod.make_certs(work / "pki"), htdocs, up


def probe_ok(bench, port, path, timeout=1):
    r = subprocess.run([str(bench), "-n", "1", "--timeout", str(timeout), "--insecure",
                        f"https://127.0.0.1:{port}{path}"], capture_output=True,
                       timeout=timeout + 10, check=False)
    return b"status codes: 200" in r.stdout


def start_spooky_quiet(group, work, cfg, name, bench, probe_path, prefix=(), ready_s=15):
    """Starts spooky at log level warn (no per-request access log lines) and waits until it
    answers `probe_path` with 200, polling with spooky-bench (bounded)."""
    from spookytest import binaries, procs, spooky as spooky_mod
    path = work / f"{name}.yaml"
    path.write_text(json.dumps(cfg, indent=2) + "\n")   # JSON is valid YAML
    proc = group.start(name, [*prefix, binaries.find("spooky"), "-c", path])
    port = cfg["listeners"][0]["port"]

    def answers():
        if not proc.running():
            raise procs.ProcError(f"{name} exited; log tail:\n{proc.tail()}")
        return probe_ok(bench, port, probe_path, timeout=2 if not prefix else 10)

    procs.poll(answers, ready_s, f"{name} to answer", interval=0.2)
    return spooky_mod.Spooky(proc, port, path, cfg)


def spooky_for(group, work, certs, bench, name, backend_entry, probe_path, prefix=(), ready_s=15,
               timeouts=None):
    from spookytest import spooky as spooky_mod
    up = spooky_mod.upstream("app", [backend_entry], certs, pool=POOL)
    cfg = spooky_mod.config(spooky_mod.free_listener_port(), certs, [up], limits=LIMITS,
                            timeouts=timeouts, log_level="warn")
    return start_spooky_quiet(group, work, cfg, name, bench, probe_path, prefix, ready_s)


def caddy_proxy_config(port, http_port, certs, upstream_port, versions, storage_dir):
    """caddy 2.6 JSON: an HTTP/3-enabled server whose only route is reverse_proxy to
    127.0.0.1:upstream_port with the http transport speaking `versions` (["h2c", "2"] for
    cleartext HTTP/2 with prior knowledge, ["1.1"] for HTTP/1.1)."""
    return {
        "admin": {"disabled": True, "config": {"persist": False}},
        "storage": {"module": "file_system", "root": str(storage_dir)},
        "logging": {"logs": {"default": {"level": "WARN"}}},
        "apps": {
            "http": {"http_port": http_port, "https_port": port, "servers": {"proxy": {
                "listen": [f"127.0.0.1:{port}"],
                "protocols": ["h1", "h2", "h3"],
                "automatic_https": {"disable": True},
                "tls_connection_policies": [{"certificate_selection": {"any_tag": ["bench"]}}],
                "routes": [{"handle": [{
                    "handler": "reverse_proxy",
                    "upstreams": [{"dial": f"127.0.0.1:{upstream_port}"}],
                    "transport": {"protocol": "http", "versions": versions}}]}],
            }}},
            "tls": {"certificates": {"load_files": [
                {"certificate": str(certs.cert), "key": str(certs.key), "tags": ["bench"]}]}},
            "pki": {"certificate_authorities": {"local": {"install_trust": False}}},
        },
    }


def start_caddy_proxy(group, work, certs, bench, name, upstream_port, versions, probe_path):
    from spookytest import binaries, ports, procs
    exe = binaries.system_tool("caddy")
    port = ports.free_tcp_udp_port()
    d = work / name
    home = d / "home"
    for sub in ("data", "config", "storage"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    cfg = d / "caddy.json"
    cfg.write_text(json.dumps(caddy_proxy_config(port, ports.free_tcp_port(), certs,
                                                 upstream_port, versions, home / "storage"),
                              indent=2))
    env = procs.default_env(HOME=home, XDG_DATA_HOME=home / "data",
                            XDG_CONFIG_HOME=home / "config")
    proc = group.start(name, [exe, "run", "--config", cfg], env=env, cwd=d)

    def answers():
        if not proc.running():
            raise procs.ProcError(f"{name} exited; log tail:\n{proc.tail()}")
        return probe_ok(bench, port, probe_path)

    procs.poll(answers, 20, f"{name} to answer", interval=0.2)
    return proc, port


NGINX_CONF = """# bench/run.py: nginx as a plain HTTP/1.1 backend, no access log
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    types {{ application/octet-stream bin; }}
    sendfile on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_max_body_size 0;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location = /upload {{ client_body_in_single_buffer off; return 200 "ok"; }}
    }}
}}
"""


class TcpBackend:
    def __init__(self, port, proc):
        self.port = port
        self.proc = proc


def start_nginx(group, work, root):
    from spookytest import binaries, h2backends, ports
    exe = binaries.system_tool("nginx")
    if exe is None:
        return None
    port = ports.free_tcp_port()
    d = work / "nginx"
    d.mkdir()
    cfg = d / "nginx.conf"
    cfg.write_text(NGINX_CONF.format(d=d, port=port, root=root))
    proc = group.start("nginx", [exe, "-p", d, "-c", cfg, "-e", d / "error.log",
                                 "-g", "daemon off;"], cwd=d)
    h2backends.wait_tcp(proc, port)
    return TcpBackend(port, proc)


# --- scenarios ----------------------------------------------------------------------------

def scenarios(args, up_file):
    s = [
        {"id": "get-c1", "name": "small GET -c1 -m1", "kind": "small", "c": 1, "m": 1},
        {"id": "get-c10", "name": "small GET -c10 -m10", "kind": "small", "c": 10, "m": 10},
        {"id": "get-c50", "name": "small GET -c50 -m100", "kind": "small", "c": 50, "m": 100},
        {"id": "rate", "name": "open loop --rate R -c10 -m10", "kind": "small", "c": 10,
         "m": 10, "rate": True},
        {"id": "download", "name": "100 MiB GET x2 -c1 -m1", "kind": "big", "c": 1, "m": 1,
         "n": 2},
        {"id": "upload", "name": "10 MiB POST x4 -c1 -m1", "kind": "up", "c": 1, "m": 1,
         "n": 4, "body": up_file},
        {"id": "handshake", "name": "new connection per request -c10 -m1", "kind": "small",
         "c": 10, "m": 1, "conn_requests": 1},
    ]
    for sc in s:
        sc["warm"] = 0 if sc.get("n") else args.warm_up
    only = {x for x in args.only.split(",") if x}
    return [sc for sc in s if not only or sc["id"] in only]


def pick_rate(args, results):
    if args.rate > 0:
        return args.rate
    c10 = [r["rps"] for (sid, _), r in results.items() if sid == "get-c10" and r["rps"] > 0]
    if not c10:
        return 1000.0
    return float(max(100, min(5000, int(min(c10) * 0.3 / 100) * 100)))


# --- memory: RSS per idle client connection -------------------------------------------------

def measure_memory(group, work, certs, bench, testd, n_conns, args):
    """A fresh spooky in front of testd; spooky-bench opens n_conns connections (one small
    request on most of them), holds them idle; RSS of spooky before vs while held."""
    sp = spooky_for(group, work, certs, bench, f"spooky-mem-{n_conns}",
                    testd.spooky_backend(), f"/size/{SMALL_BYTES}",
                    timeouts={"client_idle_ms": 120000})
    time.sleep(0.3)
    rss0 = rss_kib(sp.proc.pid)
    hold = 3
    cmd = [str(bench), "-n", str(n_conns), "-c", str(n_conns), "-m", "1", "--hold", str(hold),
           "--connect-burst", str(MEM_CONNECT_BURST), "--timeout", "20", "--max-time", "60",
           "--insecure", "--json",
           f"https://127.0.0.1:{sp.port}/size/{SMALL_BYTES}"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    held, rss1, err_lines = None, None, []
    deadline = t0 + 90
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        if ready:
            line = proc.stderr.readline()
            if not line:
                break
            err_lines.append(line)
            m = re.search(r"holding (\d+) connections idle", line)
            if m:
                held = int(m.group(1))
                t_held = time.monotonic()
                time.sleep(1.0)                  # let the last packets settle
                rss1 = rss_kib(sp.proc.pid)
                break
        elif proc.poll() is not None:
            break
    try:
        out, _ = proc.communicate(timeout=max(5, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    res = None
    try:
        res = json.loads(out)
    except json.JSONDecodeError:
        pass
    sp.stop_and_check(timeout=15)
    row = {"conns": n_conns, "cmd": cmd, "held": held, "rss_before_kib": rss0,
           "rss_held_kib": rss1, "per_conn_kib": None,
           "setup_s": (t_held - t0) if held else None,
           "handshake_p50_ms": None, "errors": "".join(err_lines).strip()[-300:] or "-"}
    if res:
        row["handshake_mean_ms"] = res["handshake_us"]["mean"] / 1000
        row["handshake_max_ms"] = res["handshake_us"]["max"] / 1000
        errs = ",".join(f"{k}:{v}" for k, v in res["errors"].items() if v)
        row["errors"] = errs or "-"
    if held and rss1 is not None:
        row["per_conn_kib"] = (rss1 - rss0) / held
    return row


HEAP_GROUPS = [("ngtcp2", r"libngtcp2"), ("nghttp3", r"libnghttp3"), ("nghttp2", r"libnghttp2"),
               ("gnutls", r"libgnutls"), ("nettle/hogweed/gmp", r"lib(nettle|hogweed|gmp)"),
               ("libev", r"libev"), ("libc", r"libc[.-]"), ("yaml", r"lib(c?yaml)")]


def massif_groups(path):
    """Heap bytes of a massif snapshot file by allocating library: the depth-1 nodes of its
    (last) detailed tree, classified by the object file of the frame that called malloc;
    frames in spooky's own code count as spooky."""
    groups, total, tree = {}, 0, []
    for line in pathlib.Path(path).read_text(errors="replace").splitlines():
        if line.startswith("heap_tree="):
            tree = []
        elif re.match(r"^ *n\d+: ", line):
            tree.append(line)
    for line in tree:
        depth = len(line) - len(line.lstrip(" "))
        m = re.match(r"^ *n\d+: (\d+) (.*)$", line)
        if not m:
            continue
        if depth == 0:
            total = int(m.group(1))
            continue
        if depth != 1:
            continue
        desc = m.group(2)
        lib = re.search(r"\(in ([^)]+)\)", desc)
        if "below massif's threshold" in desc:
            name = "other (small sites)"
        elif lib:
            name = next((g for g, pat in HEAP_GROUPS if re.search(pat, lib.group(1))),
                        "other: " + os.path.basename(lib.group(1)))
        else:
            name = "spooky"     # a frame with source info: our code (sp_xmalloc, ...)
        groups[name] = groups.get(name, 0) + int(m.group(1))
    return groups, total


def measure_massif(group, work, certs, bench, testd, args):
    """spooky under massif in front of testd: a detailed heap snapshot (vgdb monitor command)
    before MASSIF_CONNS connections are opened, another while they are held idle."""
    d = work / "massif"
    d.mkdir()
    prefix = ["valgrind", "--tool=massif", f"--massif-out-file={d}/massif.out",
              "--threshold=0.2", "--vgdb=yes"]
    sp = spooky_for(group, work, certs, bench, "spooky-massif", testd.spooky_backend(),
                    f"/size/{SMALL_BYTES}", prefix=prefix, ready_s=60,
                    timeouts={"client_idle_ms": 120000})
    vgdb = shutil.which("vgdb") or "vgdb"

    def snap(name):
        f = d / name
        subprocess.run([vgdb, f"--pid={sp.proc.pid}", "detailed_snapshot", str(f)],
                       capture_output=True, timeout=60, check=False)
        return f

    before = snap("before.ms")
    n = MASSIF_CONNS
    cmd = [str(bench), "-n", str(n), "-c", str(n), "-m", "1", "--hold", "3", "--timeout", "30",
           "--connect-burst", "20",
           "--max-time", "120", "--insecure", f"https://127.0.0.1:{sp.port}/size/{SMALL_BYTES}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    held, after = None, None
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        if ready:
            line = proc.stderr.readline()
            if not line:
                break
            m = re.search(r"holding (\d+) connections idle", line)
            if m:
                held = int(m.group(1))
                time.sleep(0.5)
                after = snap("held.ms")
                break
        elif proc.poll() is not None:
            break
    try:
        proc.communicate(timeout=max(5, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
    sp.proc.stop(60)
    row = {"conns": n, "held": held, "cmd": cmd, "groups": {}, "per_conn_b": None}
    if held and after is not None and after.exists() and before.exists():
        g0, t0 = massif_groups(before)
        g1, t1 = massif_groups(after)
        row["groups"] = {k: (g1.get(k, 0) - g0.get(k, 0)) / held for k in set(g0) | set(g1)}
        row["per_conn_b"] = (t1 - t0) / held
    return row


# --- callgrind ------------------------------------------------------------------------------

LIB_GROUPS = [("spooky", r"/spooky$"), ("ngtcp2", r"libngtcp2"), ("nghttp3", r"libnghttp3"),
              ("nghttp2", r"libnghttp2"), ("gnutls", r"libgnutls"),
              ("nettle/hogweed/gmp", r"lib(nettle|hogweed|gmp)"), ("libc", r"libc[.-]"),
              ("libev", r"libev"), ("ld.so", r"ld-linux"), ("yaml/cyaml", r"lib(c?yaml)")]


def callgrind_self_costs(path):
    """Self cost (Ir) per (object, function) from a callgrind dump, and the dump's total.

    Parsed directly (the format is documented in the valgrind manual, "Callgrind Format
    Specification") rather than through callgrind_annotate: in a dump taken while the program
    runs (callgrind_control --dump), the calls still active appear as `calls=0` records whose
    inclusive cost callgrind_annotate 3.19 counts as the callers' self cost (worker_main,
    start_thread and clone each showed 100%)."""
    tables = {"ob": {}, "fn": {}}
    share = {"ob": "ob", "cob": "ob", "fn": "fn", "cfn": "fn"}
    ob = fn = "???"
    skip = False
    cost, total = {}, None
    rx_name = re.compile(r"^\((\d+)\)(?:\s+(.*))?$")
    with open(path, errors="replace") as f:
        for line in f:
            c = line[:1]
            if c.isdigit() or c in "+-*":
                if skip:          # the inclusive cost of a call: not self cost
                    skip = False
                    continue
                parts = line.split()
                if len(parts) >= 2:
                    cost[(ob, fn)] = cost.get((ob, fn), 0) + int(parts[1])
                continue
            if line.startswith("calls="):
                skip = True
                continue
            key, sep, val = line.rstrip("\n").partition("=")
            if not sep:
                if key.startswith(("summary:", "totals:")):
                    total = int(key.split(":", 1)[1].split()[0])
                continue
            if key in share:
                m = rx_name.match(val)
                table = tables[share[key]]
                if m:
                    if m.group(2) is not None:
                        table[m.group(1)] = m.group(2)
                    name = table.get(m.group(1), val)
                else:
                    name = val
                if key == "ob":
                    ob = name
                elif key == "fn":
                    fn = name
    return cost, total


def callgrind_breakdown(cost):
    """Sums self costs by library group; returns ({group: Ir}, [(Ir, function, object)])."""
    groups = {}
    for (obj, _), ir in cost.items():
        name = next((g for g, pat in LIB_GROUPS if re.search(pat, obj)),
                    "other: " + os.path.basename(obj))
        groups[name] = groups.get(name, 0) + ir
    funcs = sorted(((ir, fn, obj) for (obj, fn), ir in cost.items()), reverse=True)
    return groups, funcs


CALLGRIND_HANDSHAKES = 20      # connections (one request each) of the handshake window


def measure_callgrind(group, work, certs, bench, label, backend_entry, probe_path, args):
    """spooky under callgrind. Two measured windows, each opened with callgrind_control --zero
    and closed with --dump: (A) CALLGRIND_HANDSHAKES new connections with one small GET each;
    (B) --callgrind-requests small GETs at -c10 -m10 (10 new connections). Solving
    A = nA*(H + R), B = cB*H + nB*R gives R, the instructions per proxied request with the
    handshakes taken out, and H, per connection (handshake and close)."""
    cg_dir = work / f"callgrind-{label}"
    cg_dir.mkdir()
    out_file = cg_dir / "callgrind.out"
    prefix = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
              "--dump-instr=no", "--vgdb=yes"]
    sp = spooky_for(group, work, certs, bench, f"spooky-callgrind-{label}", backend_entry,
                    probe_path, prefix=prefix, ready_s=60)
    pid = sp.proc.pid
    ctl = shutil.which("callgrind_control") or "callgrind_control"
    url = f"https://127.0.0.1:{sp.port}{probe_path}"
    base = [str(bench), "--timeout", "30", "--insecure", "--json"]
    n_a, c_b, n_b = CALLGRIND_HANDSHAKES, 10, args.callgrind_requests
    warm = base + ["-n", str(CALLGRIND_WARMUP_REQUESTS), "-c", "10", "-m", "10", url]
    cmd_a = base + ["-n", str(n_a), "-c", str(n_a), "-m", "1", url]
    cmd_b = base + ["-n", str(n_b), "-c", str(c_b), "-m", "10", url]

    def window(cmd, name):
        subprocess.run([ctl, "--zero", str(pid)], capture_output=True, timeout=60, check=False)
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        wall = time.monotonic() - t0
        time.sleep(0.5)     # the connections' close reaches spooky
        subprocess.run([ctl, f"--dump={name}", str(pid)], capture_output=True, timeout=60,
                       check=False)
        try:
            return json.loads(r.stdout)["requests"]["succeeded"], wall
        except (json.JSONDecodeError, KeyError):
            return 0, wall

    subprocess.run(warm, capture_output=True, timeout=300, check=False)
    served_a, _ = window(cmd_a, "handshakes")
    served_b, wall = window(cmd_b, "requests")
    sp.proc.stop(60)     # valgrind needs a moment to write its final dump
    dumps = sorted((p for p in cg_dir.iterdir() if re.fullmatch(r"callgrind\.out\.\d+", p.name)),
                   key=lambda p: int(p.suffix[1:]))
    row = {"label": label, "cmd": cmd_b, "cmd_handshakes": cmd_a, "served": served_b,
           "served_a": served_a, "wall_s": wall, "total_ir": None, "per_req": None,
           "per_conn": None, "per_req_raw": None, "groups": {}, "top": []}
    if len(dumps) < 2 or served_a != n_a or served_b != n_b:
        row["error"] = (f"callgrind windows incomplete: {len(dumps)} dumps, {served_a}/{n_a} "
                        f"and {served_b}/{n_b} requests")
        return row
    cost_a, tot_a = callgrind_self_costs(dumps[0])
    cost_b, tot_b = callgrind_self_costs(dumps[1])
    tot_a, tot_b = tot_a or sum(cost_a.values()), tot_b or sum(cost_b.values())

    def per_req(a, b):
        return (b - c_b * a / n_a) / (n_b - c_b)

    r = per_req(tot_a, tot_b)
    keys = set(cost_a) | set(cost_b)
    cost_r = {k: per_req(cost_a.get(k, 0), cost_b.get(k, 0)) for k in keys}
    groups, funcs = callgrind_breakdown(cost_r)
    groups = {k: max(0.0, v) for k, v in groups.items() if abs(v) >= 1}   # noise: ± a few
    row.update({"total_ir": tot_b, "per_req_raw": tot_b / n_b, "per_req": r,
                "per_conn": tot_a / n_a - r, "groups": groups, "top": funcs[:20],
                "dumps": [str(d) for d in dumps[:2]]})
    return row


# --- the suite ----------------------------------------------------------------------------

# The soak's request mix (the same as tests/integration/test_quicgo_peers.py): bodies of several
# sizes, uploads echoed back and downloads.
STRESS_PLAN = [
    "POST:/echo:0", "POST:/echo:1", "GET:/size/1", "POST:/echo:1200", "GET:/size/16385",
    "POST:/echo:65536", "GET:/size/300000", "PUT:/echo:262145", "GET:/size/0",
    "POST:/echo:1048576", "GET:/size/2000000", "POST:/echo:16384",
]


def measure_stress(work, target, args):
    """An independent QUIC stack (quic-go 0.29) as the client: 4 connections x 8 streams of the
    STRESS_PLAN mix for --stress-seconds; a request not done in 10 s counts as stalled."""
    from spookytest import clients
    r = clients.h3load(work, target["port"], plan=STRESS_PLAN, conns=4, streams=8,
                       duration_s=args.stress_seconds, timeout_s=10)
    row = {k: getattr(r, k) for k in ("requests", "ok", "failed", "stalled", "mismatch",
                                      "errors", "p50_ms", "p99_ms", "max_ms", "seconds")}
    row.update(label=target["label"], cmd=r.argv)
    return row


def h1_supported(bin_dir):
    """Whether this spooky can proxy to HTTP/1.1 backends (sp_uconn_ops_for returns an
    implementation for SP_BACKEND_PROTO_HTTP1). Decided at run time by a probe as well."""
    src = REPO / "src" / "upstream" / "ustream.c"
    try:
        txt = src.read_text()
    except OSError:
        return True
    m = re.search(r"case SP_BACKEND_PROTO_HTTP1:\s*\n\s*return ([^;]+);", txt)
    return not (m and m.group(1).strip() == "NULL")


def run_suite(args, bin_dir, work, notes):
    from spookytest import backends, h2backends, procs
    bench = bin_dir / "spooky-bench"
    certs, htdocs, up_file = start_material(work)
    group = procs.ProcGroup(work / "logs")
    targets, results, extra = [], {}, {"capacity": [], "memory": [], "callgrind": [],
                                     "massif": None, "stress": []}
    try:
        testd = backends.start_testd(group, work, certs, backend_id="testd")
        h3paths = {"small": f"/size/{SMALL_BYTES}", "big": f"/size/{BIG_BYTES}", "up": "/echo"}
        targets.append({"id": "direct-h3", "label": "direct → spooky-testd (h3)",
                        "port": testd.port, "paths": h3paths, "proxy_pid": None,
                        "backend_pid": testd.proc.pid, "proxy": None})
        sp3 = spooky_for(group, work, certs, bench, "spooky-h3", testd.spooky_backend(),
                         h3paths["small"])
        targets.append({"id": "spooky-h3", "label": "spooky → spooky-testd (h3)",
                        "port": sp3.port, "paths": h3paths, "proxy_pid": sp3.proc.pid,
                        "backend_pid": testd.proc.pid, "proxy": "spooky"})

        ng = h2backends.start_nghttpd(group, work, certs, htdocs, backend_id="nghttpd",
                                      tls=False)
        filepaths = {"small": "/small.bin", "big": "/100m.bin", "up": "/echo"}
        sp2 = spooky_for(group, work, certs, bench, "spooky-h2c", ng.spooky_backend(),
                         filepaths["small"])
        targets.append({"id": "spooky-h2c", "label": "spooky → nghttpd (h2c)",
                        "port": sp2.port, "paths": filepaths, "proxy_pid": sp2.proc.pid,
                        "backend_pid": ng.proc.pid, "proxy": "spooky"})
        if not args.no_caddy:
            cp, cport = start_caddy_proxy(group, work, certs, bench, "caddy-h2c", ng.port,
                                          ["h2c", "2"], filepaths["small"])
            targets.append({"id": "caddy-h2c", "label": "caddy → nghttpd (h2c)",
                            "port": cport, "paths": filepaths, "proxy_pid": cp.pid,
                            "backend_pid": ng.proc.pid, "proxy": "caddy"})
        cap = h2load_capacity(ng, "/small.bin", False, args)
        if cap:
            cap["label"] = "nghttpd (h2c) alone, h2load -c10 -m10"
            extra["capacity"].append(cap)

        if not args.no_h1:
            if not h1_supported(bin_dir):
                notes.append("HTTP/1.1 backend rows skipped: this spooky has no http1 upstream "
                             "yet (sp_uconn_ops_for(SP_BACKEND_PROTO_HTTP1) returns NULL in "
                             "src/upstream/ustream.c).")
            else:
                ngx = start_nginx(group, work, htdocs)
                h1paths = {"small": "/small.bin", "big": "/100m.bin", "up": "/upload"}
                try:
                    sp1 = spooky_for(group, work, certs, bench, "spooky-h1",
                                     {"id": "nginx", "address": f"127.0.0.1:{ngx.port}",
                                      "protocol": "http1", "weight": 1}, h1paths["small"])
                    targets.append({"id": "spooky-h1", "label": "spooky → nginx (http/1.1)",
                                    "port": sp1.port, "paths": h1paths,
                                    "proxy_pid": sp1.proc.pid, "backend_pid": ngx.proc.pid,
                                    "proxy": "spooky"})
                except procs.ProcError as e:
                    last = str(e).strip().splitlines()[-1] if str(e).strip() else "?"
                    notes.append(f"HTTP/1.1 backend: spooky did not proxy to nginx ({last}); "
                                 "its rows are skipped.")
                if not args.no_caddy:
                    cp1, cport1 = start_caddy_proxy(group, work, certs, bench, "caddy-h1",
                                                    ngx.port, ["1.1"], h1paths["small"])
                    targets.append({"id": "caddy-h1", "label": "caddy → nginx (http/1.1)",
                                    "port": cport1, "paths": h1paths, "proxy_pid": cp1.pid,
                                    "backend_pid": ngx.proc.pid, "proxy": "caddy"})
                notes.append("HTTP/1.1 rows: the 10 MiB upload goes to nginx `/upload`, a sink "
                             "that answers 200 \"ok\" (nginx cannot echo), so their MiB/s counts "
                             "one direction where the h3/h2c rows count the body twice.")
                cap = h2load_capacity(ngx, "/small.bin", True, args)
                if cap:
                    cap["label"] = "nginx (http/1.1) alone, h2load --h1 -c10"
                    extra["capacity"].append(cap)
        for cap in extra["capacity"]:
            print(f"backend capacity: {cap['label']}: {cap['rps']:.0f} req/s, "
                  f"{fmt_us(cap['cpu_backend_us'])} µs CPU/req", flush=True)

        print(HEADER)
        print(RULE, flush=True)
        rate = None
        for sc in scenarios(args, up_file):
            if sc.get("rate"):
                rate = pick_rate(args, results)
                sc["name"] = sc["name"].replace("R", f"{rate:g}")
            for t in targets:
                r = measure(bench, t, sc, args, rate or 0)
                results[(sc["id"], t["id"])] = r
                print(table_row(sc, t, r, results), flush=True)
        extra["rate"] = rate

        for n in [int(x) for x in args.mem_conns.split(",") if x.strip()]:
            row = measure_memory(group, work, certs, bench, testd, n, args)
            extra["memory"].append(row)
            print(f"memory: {n} connections requested, {row['held']} held: spooky RSS "
                  f"{row['rss_before_kib']} -> {row['rss_held_kib']} KiB = "
                  f"{fmt_num(row['per_conn_kib'], 2)} KiB/conn ({row['errors']})", flush=True)

        if args.stress_seconds > 0:
            for t in targets[:2]:   # direct-h3 and spooky-h3
                row = measure_stress(work, t, args)
                extra["stress"].append(row)
                print(f"stress ({t['label']}): {row['requests']:,} requests, {row['failed']} "
                      f"failed, {row['stalled']} stalled, p99 {row['p99_ms']:.1f} ms, "
                      f"max {row['max_ms']:.0f} ms", flush=True)

        if args.massif:
            row = measure_massif(group, work, certs, bench, testd, args)
            extra["massif"] = row
            print(f"massif: {row['held']} connections held: heap "
                  f"{fmt_num((row['per_conn_b'] or 0) / 1024, 1)} KiB/conn "
                  + ", ".join(f"{k} {v / 1024:.1f}" for k, v in sorted(
                      row["groups"].items(), key=lambda x: -x[1])), flush=True)

        if args.callgrind:
            for label, entry, probe in (("h3", testd.spooky_backend(), h3paths["small"]),
                                        ("h2c", ng.spooky_backend(), filepaths["small"])):
                row = measure_callgrind(group, work, certs, bench, label, entry, probe, args)
                extra["callgrind"].append(row)
                print(f"callgrind spooky → {label}: {fmt_num(row['per_req'], 0)} instructions "
                      f"per request, {fmt_num(row['per_conn'], 0)} per connection "
                      f"({row['served']} requests, {row['wall_s']:.1f}s) "
                      f"{row.get('error', '')}", flush=True)
    finally:
        group.stop_all()
    return targets, results, extra


# --- output -------------------------------------------------------------------------------

HEADER = ("| scenario | path | req/s | MiB/s | req/s vs direct | p50 / p99 µs | proxy CPU µs/req "
          "| backend CPU µs/req | errors |")
RULE = "|---|---|--:|--:|--:|--:|--:|--:|---|"


def fmt_num(v, digits=1):
    return "-" if v is None else f"{v:,.{digits}f}"


def fmt_us(v):
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def fmt_lat(r):
    if r["p50"] is None:
        return "-"
    return f"{r['p50']:,.0f} / {r['p99']:,.0f}"


def table_row(sc, t, r, results):
    ref = results.get((sc["id"], "direct-h3"))
    ratio = "-"
    if ref and ref["rps"] > 0 and t["id"] != "direct-h3":
        ratio = f"{r['rps'] / ref['rps']:.2f}"
    rps = r["rps"]
    if sc.get("conn_requests") and r.get("handshakes_per_s"):
        rps = r["handshakes_per_s"]
    rps_s = f"{rps:,.0f}" if rps >= 100 else f"{rps:.2f}"
    return (f"| {sc['name']} | {t['label']} | {rps_s} | {r['mibps']:.1f} | {ratio} "
            f"| {fmt_lat(r)} | {fmt_us(r['cpu_proxy_us'])} | {fmt_us(r['cpu_backend_us'])} "
            f"| {r['errors']} |")


def summary_lines(targets, results, extra):
    """Where we stand against the issue-6 targets, from this run's figures."""
    g = lambda s, t: results.get((s, t))   # noqa: E731
    out = []

    def ratio(a, b, key="rps"):
        if a is None or b is None or not a.get(key) or not b.get(key):
            return None
        return a[key] / b[key]

    r = ratio(g("get-c10", "spooky-h3"), g("get-c10", "direct-h3"))
    out.append(("spooky → h3 vs direct req/s at -c10 -m10", fmt_num(r, 2),
                f"≥ {TARGETS['ratio_c10']}"))
    for be in ("h2c", "h1"):
        if g("get-c10", f"caddy-{be}") is None or g("get-c10", f"spooky-{be}") is None:
            continue
        for sid in ("get-c1", "get-c10", "get-c50", "handshake"):
            s, c = g(sid, f"spooky-{be}"), g(sid, f"caddy-{be}")
            if s is None or c is None:
                continue
            cr = ratio(s, c, "cpu_proxy_us")
            out.append((f"{be} backend, {sid}: spooky CPU/req ÷ caddy CPU/req "
                        f"({fmt_us(s['cpu_proxy_us'])} vs {fmt_us(c['cpu_proxy_us'])} µs)",
                        fmt_num(cr, 2), f"≤ {TARGETS['cpu_vs_caddy']}"))
            rr = ratio(s, c)
            out.append((f"{be} backend, {sid}: spooky req/s ÷ caddy req/s", fmt_num(rr, 2),
                        "> 1"))
    for cg in extra["callgrind"]:
        out.append((f"instructions per proxied small GET, spooky → {cg['label']} (callgrind)",
                    fmt_num(cg["per_req"], 0), f"≤ {TARGETS['instructions']:,}"))
    for m in extra["memory"]:
        out.append((f"RSS per idle client connection, {m['held']} held "
                    f"(of {m['conns']} asked)", fmt_num(m["per_conn_kib"], 2) + " KiB",
                    f"≤ {TARGETS['rss_kib']:.0f} KiB"))
    for t in targets:
        r = g("handshake", t["id"])
        if r and r.get("handshakes_per_s"):
            out.append((f"new connections/s (handshake + 1 request), {t['label']}",
                        f"{r['handshakes_per_s']:,.0f}", "-"))
    return out


def write_results(path, args, targets, results, extra, started, finished, mach, bin_dir,
                  notes, plot_note):
    scs = scenarios(args, "10m.bin")
    versions = {
        "caddy": tool_version(["caddy", "version"]),
        "nghttpd": tool_version(["nghttpd", "--version"]),
        "nginx": tool_version(["nginx", "-v"]),
        "h2load": tool_version(["h2load", "--version"]),
        "valgrind": tool_version(["valgrind", "--version"]),
    }
    lines = [
        "# spooky benchmark results", "",
        f"- date: {started.isoformat(timespec='seconds')} (took "
        f"{(finished - started).total_seconds():.0f} s)",
        f"- machine: {mach['nproc']} CPUs ({mach['model']}), {mach['mem']} RAM, "
        f"Linux {mach['kernel']}; load average at the start "
        f"{mach['load'][0]:.2f} (1 min) / {mach['load'][1]:.2f} (5 min), at the end "
        f"{os.getloadavg()[0]:.2f} (1 min, this run included): the machine may be shared "
        "with other work",
        f"- spooky: {git_rev()}, binaries in `{bin_dir}` (CMAKE_BUILD_TYPE "
        f"{build_type(bin_dir)})",
        "- others: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- command: `bench/run.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}`",
        "- everything on loopback; client, proxies and backends share the machine's cores. "
        "spooky runs one worker; spooky-bench one thread; caddy with its defaults (GOMAXPROCS = "
        "CPUs). Small GET = a 100-byte response. -D runs: "
        f"{args.warm_up:g} s warm-up, then {args.duration:g} s measured.",
        "- req/s: complete responses per second (for the new-connection scenario: handshakes "
        "per second, one request per connection). MiB/s: response bodies, plus request bodies "
        "for the upload (which the backend echoes). Latency: request start (open loop: its "
        "scheduled time) to response end.",
        "- CPU µs/req: utime+stime of the process from /proc/PID/stat over the measured window "
        "(from the end of the warm-up to the end of the run) ÷ responses measured. The backend "
        "column is the backend's own CPU; in the direct rows there is no proxy.",
        "", "## Table", "", HEADER, RULE]
    for sc in scs:
        if sc.get("rate") and extra.get("rate"):
            sc["name"] = sc["name"].replace("R", f"{extra['rate']:g}")
        for t in targets:
            r = results.get((sc["id"], t["id"]))
            if r:
                lines.append(table_row(sc, t, r, results))
    lines += ["", "## Against the targets of issue 6", "",
              "| figure | this run | target |", "|---|--:|--:|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in summary_lines(targets, results, extra)]
    lines.append("")
    ol = [(t, results.get(("rate", t["id"]))) for t in targets]
    ref = results.get(("rate", "direct-h3"))
    if ref and ref["p50"] is not None:
        lines += ["## Added latency in the open loop (vs direct to spooky-testd, same rate)", "",
                  "| path | p50 µs | p99 µs | added p50 µs | added p99 µs |",
                  "|---|--:|--:|--:|--:|"]
        for t, r in ol:
            if r and r["p50"] is not None:
                lines.append(f"| {t['label']} | {r['p50']:,.0f} | {r['p99']:,.0f} | "
                             f"{r['p50'] - ref['p50']:+,.0f} | {r['p99'] - ref['p99']:+,.0f} |")
        lines.append("")
    if extra["capacity"]:
        lines += ["## TCP backends alone (h2load, same duration)", "",
                  "| backend | req/s | backend CPU µs/req |", "|---|--:|--:|"]
        lines += [f"| {c['label']} | {c['rps']:,.0f} | {fmt_us(c['cpu_backend_us'])} |"
                  for c in extra["capacity"]]
        lines.append("")
    if extra["memory"]:
        lines += ["## Memory: RSS per idle client connection", "",
                  "A fresh spooky (one worker, in front of spooky-testd) per count; spooky-bench "
                  "opens the connections (`-n N -c N -m 1 --connect-burst "
                  f"{MEM_CONNECT_BURST}`: one small GET on most of them), "
                  "then `--hold` keeps them open and idle; spooky's VmRSS before the run vs "
                  "1 s after the last handshake.", "",
                  "| connections asked | held | handshake mean / max ms | set-up s "
                  "| RSS before KiB | RSS held KiB | per connection KiB | errors |",
                  "|--:|--:|--:|--:|--:|--:|--:|---|"]
        for m in extra["memory"]:
            lines.append(
                f"| {m['conns']:,} | {m['held'] if m['held'] is not None else '-'} | "
                f"{fmt_num(m.get('handshake_mean_ms'), 0)} / "
                f"{fmt_num(m.get('handshake_max_ms'), 0)} | {fmt_num(m['setup_s'], 1)} | "
                f"{m['rss_before_kib']:,} | "
                f"{fmt_num(m['rss_held_kib'], 0)} | "
                f"{fmt_num(m['per_conn_kib'], 2)} | {m['errors']} |")
        lines.append("")
    mf = extra.get("massif")
    if mf and mf["groups"]:
        lines += ["Heap per idle connection by allocating library (spooky under valgrind "
                  f"--tool=massif, {mf['held']} connections held; detailed snapshots through "
                  "vgdb before the connections and while they are held, difference ÷ "
                  "connections; heap bytes requested, which can exceed what is resident):", "",
                  "| allocated by | KiB per connection |", "|---|--:|",
                  f"| **total heap** | **{mf['per_conn_b'] / 1024:.1f}** |"]
        lines += [f"| {k} | {v / 1024:.1f} |" for k, v in
                  sorted(mf["groups"].items(), key=lambda x: -x[1]) if abs(v) >= 16]
        lines.append("")
    if extra["callgrind"]:
        names = sorted({k for cg in extra["callgrind"] for k in cg["groups"]},
                       key=lambda k: -max(cg["groups"].get(k, 0) for cg in extra["callgrind"]))
        cgs = extra["callgrind"]
        lines += ["## Instructions per proxied request (callgrind)", "",
                  "spooky (one worker) under `valgrind --tool=callgrind`, after "
                  f"{CALLGRIND_WARMUP_REQUESTS} warm-up requests. Two windows, each opened with "
                  "`callgrind_control --zero` and closed with `--dump`: (A) "
                  f"{CALLGRIND_HANDSHAKES} new connections with one small GET each, (B) "
                  f"{args.callgrind_requests} small GETs at -c10 -m10 (10 new connections). "
                  "Self cost (Ir) per object file, summed from the dumps; solving "
                  "A = nA·(H + R) and B = 10·H + nB·R separates R, instructions per proxied "
                  "request, from H, per client connection (handshake and close). "
                  "User-space instructions only: the kernel's share (syscalls, UDP and TCP) "
                  "is not counted.", "",
                  "| instructions | " + " | ".join(f"spooky → {cg['label']}" for cg in cgs)
                  + " |", "|---|" + "--:|" * len(cgs),
                  "| **per proxied request (R)** | " + " | ".join(
                      f"**{fmt_num(cg['per_req'], 0)}**" for cg in cgs) + " |",
                  "| window B ÷ requests (handshakes not taken out) | " + " | ".join(
                      fmt_num(cg["per_req_raw"], 0) for cg in cgs) + " |",
                  "| per client connection: handshake + close (H) | " + " | ".join(
                      fmt_num(cg["per_conn"], 0) for cg in cgs) + " |"]
        for k in names:
            lines.append(f"| R: {k} | " + " | ".join(
                fmt_num(cg["groups"].get(k), 0) for cg in cgs) + " |")
        lines.append("")
        for cg in cgs:
            if cg.get("error"):
                lines += [f"callgrind spooky → {cg['label']}: {cg['error']}", ""]
            if not cg["top"]:
                continue
            lines += [f"Top functions in R, spooky → {cg['label']} (self instructions per "
                      "request):", "", "| Ir/req | function | object |", "|--:|---|---|"]
            for ir, fn, obj in cg["top"]:
                lines.append(f"| {ir:,.0f} | `{fn}` | {os.path.basename(obj)} |")
            lines.append("")
    if extra.get("stress"):
        lines += ["## Independent client soak (quic-go 0.29, mixed bodies both ways)", "",
                  f"spooky-h3load client, 4 connections × 8 streams for "
                  f"{args.stress_seconds:g} s cycling through "
                  f"{len(STRESS_PLAN)} requests (uploads of 0 B–1 MiB echoed, downloads of "
                  "0 B–2 MB); a request not complete after 10 s counts as stalled.", "",
                  "| path | requests | failed | stalled | p50 ms | p99 ms | max ms |",
                  "|---|--:|--:|--:|--:|--:|--:|"]
        for s in extra["stress"]:
            lines.append(f"| {s['label']} | {s['requests']:,} | {s['failed']} | {s['stalled']} "
                         f"| {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | {s['max_ms']:.0f} |")
        lines.append("")
    if notes or plot_note:
        lines += ["## Notes from this run", ""]
        lines += [f"- {n}" for n in notes + ([plot_note] if plot_note else [])]
        lines.append("")
    lines += ["## Exact commands", "", "```"]
    for sc in scs:
        for t in targets:
            r = results.get((sc["id"], t["id"]))
            if r:
                lines.append(f"# {sc['name']}, {t['label']}")
                lines.append(shlex.join(r["cmd"]))
    for c in extra["capacity"]:
        lines.append(f"# {c['label']}")
        lines.append(shlex.join(c["cmd"]))
    for m in extra["memory"]:
        lines.append(f"# memory, {m['conns']} connections")
        lines.append(shlex.join(m["cmd"]))
    if mf:
        lines.append("# massif (spooky under valgrind --tool=massif --threshold=0.2 --vgdb=yes)")
        lines.append(shlex.join(mf["cmd"]))
    for s in extra.get("stress", []):
        lines.append(f"# stress, {s['label']}")
        lines.append(shlex.join(s["cmd"]))
    for cg in extra["callgrind"]:
        lines.append(f"# callgrind, spooky → {cg['label']} (spooky started under valgrind "
                     "--tool=callgrind --dump-instr=no --vgdb=yes): windows A and B")
        lines.append(shlex.join(cg.get("cmd_handshakes", [])))
        lines.append(shlex.join(cg["cmd"]))
    lines += ["```", ""]
    # keep a hand-written section, if the file has one
    try:
        old = path.read_text()
        i = old.find("\n## Analysis")
        if i >= 0:
            lines.append(old[i + 1:].rstrip() + "\n")
    except OSError:
        pass
    path.write_text("\n".join(lines))


def write_json(path, targets, results, extra, started, mach):
    data = {"date": started.isoformat(timespec="seconds"), "machine": mach,
            "targets": [{k: v for k, v in t.items() if k != "paths"} for t in targets],
            "results": [{"scenario": s, "target": t, **{k: v for k, v in r.items()}}
                        for (s, t), r in results.items()],
            "capacity": extra["capacity"], "memory": extra["memory"],
            "massif": extra.get("massif"),
            "callgrind": [{k: v for k, v in cg.items()} for cg in extra["callgrind"]],
            "rate": extra.get("rate")}
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")


def plot(path, args, targets, results, work):
    """Throughput and p99 across the scenarios, one bar per path (gnuplot)."""
    gp = shutil.which("gnuplot")
    if gp is None:
        return "no plot: gnuplot is not installed (apt-get install gnuplot-nox)."
    scs = [sc for sc in scenarios(args, "x") if any((sc["id"], t["id"]) in results
                                                   for t in targets)]
    short = {"get-c1": "GET -c1", "get-c10": "GET -c10", "get-c50": "GET -c50",
             "rate": "open loop", "download": "100 MiB", "upload": "10 MiB up",
             "handshake": "new conn"}
    titles = [t["label"].replace("→", "->") for t in targets]
    panels = []     # (title, data file, [target indexes with data])
    for n, (title, key) in enumerate((
            ("throughput (req/s; new conn: handshakes/s)", "rps"), ("p99 latency (ms)", "p99"),
            ("MiB/s (response + request bodies)", "mibps"),
            ("proxy CPU per request (µs)", "cpu_proxy_us"))):
        rows, used = [], set()
        for sc in scs:
            vals = []
            for i, t in enumerate(targets):
                r = results.get((sc["id"], t["id"]))
                v = None if r is None else r.get(key)
                if key == "rps" and r and sc.get("conn_requests"):
                    v = r.get("handshakes_per_s") or v
                if key == "p99" and v is not None:
                    v = v / 1000.0
                if v:
                    used.add(i)
                vals.append(f"{v:.4f}" if v else "NaN")
            rows.append(f"\"{short[sc['id']]}\" " + " ".join(vals))
        dat = work / f"plot{n}.dat"
        dat.write_text("\n".join(rows) + "\n")
        panels.append((title, dat, sorted(used)))
    body = []
    for title, dat, used in panels:
        if not used:
            continue
        body.append(f'set title "{title}"')
        body.append("plot " + ", ".join(f"'{dat}' using {i + 2}:xtic(1) title '{titles[i]}' "
                                        f"lc {i + 1}" for i in used))
    script = f"""
set terminal pngcairo size 1400,1000 font ",10"
set output '{path}'
set multiplot layout 2,2 title "spooky bench {datetime.date.today()}: {os.cpu_count()} CPUs"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set logscale y
set xtics rotate by -25 font ",9"
set key top right font ",8"
""" + "\n".join(body) + "\nunset multiplot\n"
    (work / "plot.gp").write_text(script)
    r = subprocess.run([gp, str(work / "plot.gp")], capture_output=True, text=True, timeout=60,
                       check=False)
    if r.returncode != 0:
        return f"plot failed: {r.stderr.strip()[:300]}"
    return None


def check_tools(bin_dir, args):
    missing = [n for n in ("spooky", "spooky-testd", "spooky-bench", "spooky-h3load")
               if not os.access(bin_dir / n, os.X_OK)]
    tools = ["certtool", "nghttpd"] + ([] if args.no_caddy else ["caddy"]) + \
        (["valgrind", "callgrind_control"] if args.callgrind else []) + \
        (["valgrind", "vgdb"] if args.massif else [])
    for tool in tools:
        if shutil.which(tool) is None and not os.access(f"/usr/sbin/{tool}", os.X_OK):
            missing.append(tool)
    return missing


def main():
    args = parse_args()
    bin_dir = pick_bin_dir(args)
    if args.build:
        build(bin_dir)
    missing = check_tools(bin_dir, args)
    if missing:
        sys.exit(f"bench/run.py: missing {', '.join(missing)} (binaries from {bin_dir})")
    os.environ.update({"SPOOKY_BIN": str(bin_dir / "spooky"),
                       "SPOOKY_TESTD": str(bin_dir / "spooky-testd"),
                       "SPOOKY_H3LOAD": str(bin_dir / "spooky-h3load")})
    started = datetime.datetime.now(datetime.timezone.utc)
    mach = machine()
    print(f"spooky bench {started:%Y-%m-%d %H:%M} UTC: {mach['nproc']} CPUs, {mach['model']}; "
          f"binaries {bin_dir} ({build_type(bin_dir)})", flush=True)
    notes = []
    out_dir = args.out.parent
    with tempfile.TemporaryDirectory(prefix="spooky-bench-") as tmp:
        work = pathlib.Path(tmp)
        if args.keep:
            work = pathlib.Path(tempfile.mkdtemp(prefix="spooky-bench-keep-"))
            print(f"work directory (kept): {work}", flush=True)
        targets, results, extra = run_suite(args, bin_dir, work, notes)
        plot_note = None
        if not args.no_plot:
            plot_note = plot(out_dir / "results.png", args, targets, results, work)
        finished = datetime.datetime.now(datetime.timezone.utc)
        write_results(args.out, args, targets, results, extra, started, finished, mach,
                      bin_dir, notes, plot_note)
        write_json(out_dir / "results.json", targets, results, extra, started, mach)
    print(f"\nwritten to {args.out}, {out_dir / 'results.json'}"
          + ("" if args.no_plot or plot_note else f", {out_dir / 'results.png'}")
          + f" in {(finished - started).total_seconds():.0f} s")
    for n in notes + ([plot_note] if plot_note else []):
        print("note:", n)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)   # clean up children on TERM
    main()
