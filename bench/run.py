#!/usr/bin/python3
"""spooky benchmark suite: one command, one table, everything measured in the same run.

    bench/run.py [--bin-dir DIR] [--build] [--duration S] [--warm-up S] [--out FILE]

Starts, on loopback only, spooky-testd and gtlsserver as HTTP/3 backends, one spooky in front
of each, and caddy as a plain HTTP/3 server; drives each with spooky-bench (small GET, at
-c1 -m1, -c10 -m10 and -c50 -m100, each for a bounded --duration after a --warm-up), and prints
one table: direct to the backend vs through spooky, with the ratio, latency percentiles and the
CPU time the spooky process used per request (utime + stime from /proc/PID/stat). The same
table, the machine, the date and the exact commands go to bench/RESULTS.md (or --out).

It is a benchmark, not a test: it never fails on speed. It exits non-zero only when it cannot
run (a binary or tool missing, a process that does not start).

Caddy: Debian's caddy 2.6.2 cannot proxy to an HTTP/3 upstream (it accepts `versions 3` and
silently speaks HTTP/1.1 over TCP), so it is measured here only as an HTTP/3 server (its own
req/s). The proxy-vs-proxy comparison waits for spooky's HTTP/1.1 and HTTP/2 upstreams.

Standard library only; process management, certificates and configs come from the
integration tests' helpers (tests/integration/spookytest)."""

import argparse
import datetime
import json
import os
import pathlib
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

LOADS = [(1, 1), (10, 10), (50, 100)]     # (-c, -m)
SMALL_BYTES = 100                         # response body of the "small GET"
POOL = {"max_connections_per_backend": 4, "max_streams_per_connection": 100,
        "max_queue": 16384, "idle_timeout_ms": 60000}
LIMITS = {"max_streams_per_connection": 100}
BENCH_TIMEOUT_S = 10                      # spooky-bench --timeout per request
CLK_TCK = os.sysconf("SC_CLK_TCK")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin-dir", type=pathlib.Path, default=None,
                   help="where spooky, spooky-testd and spooky-bench are (default: "
                        "build-bench/ if it exists, else build/)")
    p.add_argument("--build", action="store_true",
                   help="first configure and build build-bench/ (RelWithDebInfo)")
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    p.add_argument("--warm-up", type=float, default=1.0, help="unmeasured seconds per run")
    p.add_argument("--out", type=pathlib.Path, default=REPO / "bench" / "RESULTS.md")
    p.add_argument("--no-caddy", action="store_true")
    p.add_argument("--no-gtlsserver", action="store_true")
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


# --- machine ------------------------------------------------------------------------------

def machine():
    model = "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "model": model, "kernel": platform.release()}


def git_rev():
    r = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                       capture_output=True, text=True, check=False)
    return r.stdout.strip() or "unknown"


def cpu_seconds(pid):
    """utime + stime of a process (and its threads), in seconds, from /proc/PID/stat."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK   # fields 14 and 15 of stat(5)


# --- one measurement ----------------------------------------------------------------------

def run_bench(bench, port, path, conns, streams, args, watch=()):
    """Runs spooky-bench once; returns (command, parsed JSON or None, {name: cpu seconds})."""
    cmd = [str(bench), "-D", f"{args.duration:g}", "--warm-up", f"{args.warm_up:g}",
           "-c", str(conns), "-m", str(streams), "--timeout", str(BENCH_TIMEOUT_S),
           "--insecure", "--json", f"https://127.0.0.1:{port}{path}"]
    before = {name: cpu_seconds(pid) for name, pid in watch}
    limit = args.duration + args.warm_up + 2 * BENCH_TIMEOUT_S + 30
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        return cmd, None, {}
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in watch}
    try:
        return cmd, json.loads(proc.stdout), cpu
    except json.JSONDecodeError:
        sys.stderr.write(f"spooky-bench failed ({proc.returncode}): {proc.stderr}\n")
        return cmd, None, cpu


def summary(res, cpu_s=None):
    """The figures a table row needs from one spooky-bench result."""
    if res is None:
        return {"rps": 0.0, "p50": None, "p99": None, "errors": "bench failed", "cpu_us": None}
    rq = res["requests"]
    bad = rq["failed"] + rq["not_started"]
    statuses = ",".join(f"{k}:{v}" for k, v in sorted(res["status"].items()) if k != "200")
    errs = ",".join(f"{k}:{v}" for k, v in res["errors"].items() if v)
    done = rq["succeeded"] + rq["failed"] - rq["errored"]
    # CPU covers the warm-up too, so divide by every request the process served, measured or
    # not: the warm-up ran at the same rate, so scale the measured count up by the time ratio.
    cpu_us = None
    if cpu_s is not None and done > 0 and res["elapsed_s"] > 0:
        served = res["req_per_s"] * (res["elapsed_s"] + res["config"]["warm_up_s"])
        cpu_us = cpu_s * 1e6 / served
    return {"rps": res["req_per_s"], "p50": res["latency_us"]["p50"],
            "p99": res["latency_us"]["p99"], "cpu_us": cpu_us,
            "errors": "; ".join(x for x in (f"{bad} failed" if bad else "", statuses, errs) if x)
            or "-"}


# --- the suite ----------------------------------------------------------------------------

def start_material(work):
    from spookytest import certs as certs_mod
    htdocs = work / "htdocs"
    htdocs.mkdir()
    (htdocs / "small.bin").write_bytes(b"x" * SMALL_BYTES)
    (htdocs / "1k.bin").write_bytes(b"x" * 1024)   # what the readiness probe fetches
    return certs_mod.make_certs(work / "pki"), htdocs


def start_spooky_quiet(group, work, cfg, name, bench):
    """Starts spooky at log level warn (no per-request access log lines, which cost a write(2)
    each) and waits until it answers a request, polling with spooky-bench (bounded)."""
    from spookytest import binaries, procs, spooky as spooky_mod
    path = work / f"{name}.yaml"
    path.write_text(json.dumps(cfg, indent=2) + "\n")   # JSON is valid YAML
    proc = group.start(name, [binaries.find("spooky"), "-c", path])
    port = cfg["listeners"][0]["port"]

    def answers():
        if not proc.running():
            raise procs.ProcError(f"{name} exited; log tail:\n{proc.tail()}")
        r = subprocess.run([str(bench), "-n", "1", "--timeout", "1", "--insecure",
                            f"https://127.0.0.1:{port}/"], capture_output=True, timeout=10,
                           check=False)
        return b"status codes: 200" in r.stdout or b"status codes: 404" in r.stdout

    procs.poll(answers, 15, f"{name} to answer", interval=0.1)
    return spooky_mod.Spooky(proc, port, path, cfg)


def measure_backend(group, work, certs, args, bench, label, backend, path):
    """Direct vs through spooky at every load, for one backend. Returns rows."""
    from spookytest import spooky as spooky_mod
    up = spooky_mod.upstream("app", [backend], certs, pool=POOL)
    cfg = spooky_mod.config(spooky_mod.free_listener_port(), certs, [up], limits=LIMITS,
                            log_level="warn")
    sp = start_spooky_quiet(group, work, cfg, f"spooky-{label}", bench)
    rows = []
    for conns, streams in LOADS:
        row = {"backend": label, "load": f"-c{conns} -m{streams}"}
        cmd_d, res_d, _ = run_bench(bench, backend.port, path, conns, streams, args,
                                    watch=[("backend", backend.proc.pid)])
        cmd_s, res_s, cpu = run_bench(bench, sp.port, path, conns, streams, args,
                                      watch=[("spooky", sp.proc.pid)])
        row["direct"], row["spooky"] = summary(res_d), summary(res_s, cpu.get("spooky"))
        row["commands"] = [cmd_d, cmd_s]
        rows.append(row)
        print_row(row, flush=True)
    sp.stop_and_check(timeout=10)
    return rows


def measure_caddy(group, work, certs, htdocs, args, bench):
    from spookytest import backends
    caddy = backends.start_caddy(group, work, certs, htdocs, backend_id="caddy")
    rows = []
    for conns, streams in LOADS:
        cmd, res, _ = run_bench(bench, caddy.port, "/small.bin", conns, streams, args)
        row = {"backend": "caddy (server only)", "load": f"-c{conns} -m{streams}",
               "direct": summary(res), "spooky": None, "commands": [cmd]}
        rows.append(row)
        print_row(row, flush=True)
    return rows


# --- output -------------------------------------------------------------------------------

HEADER = ("| backend | load | direct req/s | via spooky req/s | ratio | direct p50/p99 µs "
          "| spooky p50/p99 µs | spooky CPU µs/req | errors (direct / spooky) |")
RULE = "|---|---|--:|--:|--:|--:|--:|--:|---|"


def fmt_lat(s):
    return "-" if s is None or s["p50"] is None else f"{s['p50']:.0f} / {s['p99']:.0f}"


def table_row(row):
    d, s = row["direct"], row["spooky"]
    if s is None:
        return (f"| {row['backend']} | {row['load']} | {d['rps']:.0f} | - | - | {fmt_lat(d)} | - "
                f"| - | {d['errors']} |")
    ratio = f"{s['rps'] / d['rps']:.2f}" if d["rps"] > 0 else "-"
    cpu = f"{s['cpu_us']:.1f}" if s["cpu_us"] is not None else "-"
    return (f"| {row['backend']} | {row['load']} | {d['rps']:.0f} | {s['rps']:.0f} | {ratio} "
            f"| {fmt_lat(d)} | {fmt_lat(s)} | {cpu} | {d['errors']} / {s['errors']} |")


def print_row(row, flush=False):
    print(table_row(row), flush=flush)


def write_results(path, args, rows, started, mach, bin_dir):
    lines = [
        "# spooky benchmark results", "",
        f"- date: {started.isoformat(timespec='seconds')}",
        f"- machine: {mach['nproc']} CPUs, {mach['model']}, Linux {mach['kernel']}",
        f"- spooky: {git_rev()}, binaries in `{bin_dir}` (CMAKE_BUILD_TYPE {build_type(bin_dir)})",
        f"- command: `bench/run.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}`",
        "- client, proxy and backends share the machine's cores (loopback). spooky runs one "
        "worker; spooky-bench one thread. Small GET = a "
        f"{SMALL_BYTES}-byte response. Latency from the request's start to the response's end.",
        "- spooky CPU µs/req = (utime+stime of the spooky process over the run, warm-up "
        "included) / requests it served over the same time.",
        "", HEADER, RULE, *[table_row(r) for r in rows], "",
        "Caddy 2.6.2 (Debian) cannot proxy to an HTTP/3 upstream, so it appears only as an "
        "HTTP/3 server measured directly; the proxy-vs-proxy comparison (spooky and caddy both "
        "in front of the same HTTP/1.1 or HTTP/2 backend) waits for spooky's HTTP/1.1 and HTTP/2 "
        "upstreams.", "",
        "## Exact spooky-bench commands", "", "```",
        *[shlex.join(c) for r in rows for c in r["commands"]], "```", ""]
    path.write_text("\n".join(lines))


def check_tools(bin_dir, args):
    missing = [n for n in ("spooky", "spooky-testd", "spooky-bench")
               if not os.access(bin_dir / n, os.X_OK)]
    for tool in ["certtool"] + ([] if args.no_gtlsserver else ["gtlsserver"]) + \
            ([] if args.no_caddy else ["caddy"]):
        if shutil.which(tool) is None and not os.access(f"/usr/sbin/{tool}", os.X_OK):
            missing.append(tool)
    return missing


def run_suite(args, bin_dir, work):
    from spookytest import backends, procs
    bench = bin_dir / "spooky-bench"
    certs, htdocs = start_material(work)
    group = procs.ProcGroup(work / "logs")
    rows = []
    try:
        testd = backends.start_testd(group, work, certs, backend_id="testd")
        rows += measure_backend(group, work, certs, args, bench, "spooky-testd", testd,
                                f"/size/{SMALL_BYTES}")
        testd.stop()
        if not args.no_gtlsserver:
            gt = backends.start_gtlsserver(group, work, certs, htdocs, backend_id="gtlsserver")
            rows += measure_backend(group, work, certs, args, bench, "gtlsserver", gt,
                                    "/small.bin")
            gt.stop()
        if not args.no_caddy:
            rows += measure_caddy(group, work, certs, htdocs, args, bench)
    finally:
        group.stop_all()
    return rows


def main():
    args = parse_args()
    bin_dir = pick_bin_dir(args)
    if args.build:
        build(bin_dir)
    missing = check_tools(bin_dir, args)
    if missing:
        sys.exit(f"bench/run.py: missing {', '.join(missing)} (binaries from {bin_dir})")
    os.environ.update({"SPOOKY_BIN": str(bin_dir / "spooky"),
                       "SPOOKY_TESTD": str(bin_dir / "spooky-testd")})
    started = datetime.datetime.now(datetime.timezone.utc)
    mach = machine()
    print(f"spooky bench {started:%Y-%m-%d %H:%M} UTC: {mach['nproc']} CPUs, {mach['model']}; "
          f"binaries {bin_dir} ({build_type(bin_dir)})")
    print(HEADER)
    print(RULE, flush=True)
    with tempfile.TemporaryDirectory(prefix="spooky-bench-") as tmp:
        rows = run_suite(args, bin_dir, pathlib.Path(tmp))
    write_results(args.out, args, rows, started, mach, bin_dir)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
