"""spooky-bench smoke run: exact counts against a known server, directly and through spooky.

Not a benchmark (no speed is asserted): it checks that the load generator counts right, so
that the figures bench/run.py prints can be trusted. Skipped until spooky-bench is built."""

import json
import subprocess

import pytest

from spookytest import backends, binaries

N = 200


def run_bench(procs, port, certs, path="/size/100", extra=()):
    """Runs spooky-bench -n N -c 2 -m 10 --json against 127.0.0.1:port; returns the JSON."""
    exe = binaries.find("spooky-bench")
    if exe is None:
        pytest.skip(f"spooky-bench not built: {binaries.path_of('spooky-bench')}")
    argv = [str(exe), "-n", str(N), "-c", "2", "-m", "10", "--json", "--timeout", "10",
            "--ca", str(certs.ca), "--sni", "localhost", *extra,
            f"https://127.0.0.1:{port}{path}"]
    log = procs.log_path_for("spooky-bench")
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    log.write_bytes(b"# " + " ".join(argv).encode() + b"\n" + proc.stdout + proc.stderr)
    procs.note_log("spooky-bench", log)
    assert proc.returncode == 0, f"spooky-bench exited {proc.returncode}: {proc.stderr!r}"
    return json.loads(proc.stdout)


def assert_exact(result):
    assert result["requests"] == {"total": N, "succeeded": N, "failed": 0, "errored": 0,
                                  "not_started": 0}
    assert result["status"] == {"200": N}
    assert all(v == 0 for v in result["errors"].values()), result["errors"]
    assert result["latency_us"]["count"] == N
    assert result["ttfb_us"]["count"] == N
    assert result["body_bytes"] == N * 100
    assert result["connections"] == {"opened": 2, "handshakes": 2}
    lat = result["latency_us"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"]


def test_bench_counts_exactly_against_testd_directly(testd, procs, certs):
    before = testd.stats()
    result = run_bench(procs, testd.port, certs)
    assert_exact(result)
    assert backends.stats_delta(before, testd.stats()) == {"handshakes": 2, "requests": N}


def test_bench_counts_exactly_through_spooky(testd, spooky_for, procs, certs):
    sp = spooky_for([testd])
    before = testd.stats()
    result = run_bench(procs, sp.port, certs)
    assert_exact(result)
    assert backends.stats_delta(before, testd.stats())["requests"] == N
    assert len(sp.access_log(status="200")) == N


def test_bench_counts_error_statuses_as_failed(testd, procs, certs):
    exe = binaries.find("spooky-bench")
    if exe is None:
        pytest.skip("spooky-bench not built")
    argv = [str(exe), "-n", "20", "-c", "1", "-m", "5", "--json", "--insecure",
            f"https://127.0.0.1:{testd.port}/status/503"]
    proc = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    result = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert result["requests"]["succeeded"] == 0 and result["requests"]["failed"] == 20
    assert result["requests"]["errored"] == 0
    assert result["status"] == {"503": 20}
