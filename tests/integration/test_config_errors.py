"""`spooky -t -c FILE`: every bad config is refused with the exact error line, and a good one passes.

Self-contained (no conftest fixtures): each case writes its YAML into pytest's tmp_path next to
placeholder cert/key files (the config check only requires them to be readable regular files), runs
the binary from SPOOKY_BIN (default <repo>/build/spooky) and compares stderr line by line.
"""

import os
import pathlib
import shutil
import subprocess
import textwrap

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SPOOKY = os.environ.get("SPOOKY_BIN", str(REPO / "build" / "spooky"))

LISTENER = """\
listeners:
  - address: 127.0.0.1
    port: 8443
    cert: server.crt
    key: server.key
"""

UPSTREAM = """\
upstreams:
  - name: app
    routes:
      - path_prefix: /
    backends:
      - id: app-1
        address: 127.0.0.1:9443
        protocol: h3
"""

VALID = LISTENER + UPSTREAM

SECRET = "0123456789abcdef"  # the shortest sticky cookie secret accepted (16 bytes)


def with_upstream(lines):
    """VALID with `lines` added to upstreams[0] right after its name (so they start on line 8)."""
    return VALID.replace("  - name: app\n", "  - name: app\n" + lines)


def write_config(tmp_path, text, name="spooky.yaml"):
    (tmp_path / "server.crt").write_text("placeholder certificate\n")
    (tmp_path / "server.key").write_text("placeholder key\n")
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def check(path):
    """Runs `spooky -t -c path`; returns (exit code, stderr lines)."""
    if not os.access(SPOOKY, os.X_OK):
        pytest.fail(f"spooky binary not found at {SPOOKY} (build it or set SPOOKY_BIN)")
    proc = subprocess.run([SPOOKY, "-t", "-c", str(path)], capture_output=True, text=True,
                          timeout=30)
    return proc.returncode, proc.stderr.splitlines()


# (case id, YAML, expected error lines with {f} = the config path as passed on the command line)
BAD = [
    ("unknown_top_level_key", VALID + "colour: blue\n",
     ["{f}:14: colour: unknown key"]),
    ("unknown_listener_key",
     LISTENER + "    colour: red\n" + UPSTREAM,
     ["{f}:6: listeners[0].colour: unknown key"]),
    ("workers_out_of_range", "workers: 257\n" + VALID,
     ["{f}:1: workers: must be between 0 and 256, got 257"]),
    ("workers_not_a_number", "workers: many\n" + VALID,
     ['{f}:1: workers: expected an unsigned integer, got "many"']),
    ("log_level_unknown", "log:\n  level: loud\n" + VALID,
     ['{f}:2: log.level: unknown value "loud": expected one of debug, info, warn, error']),
    ("listeners_missing", "workers: 1\n" + UPSTREAM,
     ["{f}:1: listeners: required key missing"]),
    ("listener_hostname", VALID.replace("address: 127.0.0.1\n", "address: localhost\n"),
     ['{f}:2: listeners[0].address: invalid address "localhost": expected a literal IPv4 or IPv6 '
      "address (host names are not resolved, no brackets, no port)"]),
    ("listener_port_zero", VALID.replace("port: 8443", "port: 0"),
     ["{f}:3: listeners[0].port: must be between 1 and 65535, got 0"]),
    ("listener_cert_missing", VALID.replace("cert: server.crt", "cert: /nonexistent/x.pem"),
     ['{f}:4: listeners[0].cert: cannot read "/nonexistent/x.pem": No such file or directory']),
    ("timeout_zero", "timeouts:\n  connect_ms: 0\n" + VALID,
     ["{f}:2: timeouts.connect_ms: must be between 1 and 86400000, got 0"]),
    ("upstream_try_ms_zero", with_upstream("    timeouts:\n      response_ms: 500\n"
                                           "      try_ms: 0\n"),
     ["{f}:10: upstreams[0].timeouts.try_ms: must be between 1 and 86400000, got 0"]),
    ("upstream_timeouts_unknown_key", with_upstream("    timeouts:\n      shutdown_ms: 5\n"),
     ["{f}:9: upstreams[0].timeouts.shutdown_ms: unknown key"]),
    ("windows_inverted",
     "limits:\n  stream_window_bytes: 65536\n  connection_window_bytes: 32768\n" + VALID,
     ["{f}:3: limits.connection_window_bytes: must be at least limits.stream_window_bytes "
      "(65536), got 32768"]),
    ("backend_weight_zero", VALID + "        weight: 0\n",
     ["{f}:14: upstreams[0].backends[0].weight: must be between 1 and 1000, got 0"]),
    ("backend_bad_address", VALID.replace("127.0.0.1:9443", "foo:99"),
     ['{f}:12: upstreams[0].backends[0].address: invalid address "foo:99": expected IPv4:port '
      "or [IPv6]:port"]),
    ("backend_protocol_unknown", VALID.replace("protocol: h3", "protocol: spdy"),
     ['{f}:13: upstreams[0].backends[0].protocol: unknown value "spdy": expected one of h3, h2, '
      "h2c, http1"]),
    ("backend_tls_not_bool", VALID + "        tls: maybe\n",
     ['{f}:14: upstreams[0].backends[0].tls: expected true or false, got "maybe"']),
    ("backend_h2_without_tls", VALID.replace("protocol: h3", "protocol: h2") + "        tls: no\n",
     ["{f}:14: upstreams[0].backends[0].tls: tls: false is not possible with protocol h2: use "
      "protocol h2c for cleartext HTTP/2"]),
    ("backend_h3_without_tls", VALID + "        tls: false\n",
     ["{f}:14: upstreams[0].backends[0].tls: tls: false is not possible with protocol h3: "
      "HTTP/3 always runs over TLS"]),
    ("backend_h2c_with_tls", VALID.replace("protocol: h3", "protocol: h2c") + "        tls: true\n",
     ["{f}:14: upstreams[0].backends[0].tls: tls: true is not possible with protocol h2c: h2c is "
      "cleartext HTTP/2; use protocol h2 for HTTP/2 over TLS"]),
    ("tls_client_cert_without_key", VALID + "    tls:\n      client_cert: server.crt\n",
     ["{f}:15: upstreams[0].tls.client_cert: client_cert needs client_key too (a client "
      "certificate and its key go together)"]),
    ("tls_client_key_missing_file",
     VALID + "    tls:\n      client_cert: server.crt\n      client_key: /nonexistent/k.pem\n",
     ['{f}:16: upstreams[0].tls.client_key: cannot read "/nonexistent/k.pem": No such file or '
      "directory"]),
    ("strategy_unknown", with_upstream("    strategy: fastest\n"),
     ['{f}:8: upstreams[0].strategy: unknown value "fastest": expected one of round_robin, '
      "weighted_round_robin, random, least_conn, p2c, ewma, rendezvous"]),
    ("rendezvous_without_hash_key", with_upstream("    strategy: rendezvous\n"),
     ["{f}:8: upstreams[0].strategy: strategy rendezvous needs hash_key"]),
    ("hash_key_source_unknown",
     with_upstream("    strategy: rendezvous\n    hash_key:\n      source: ip\n"),
     ['{f}:10: upstreams[0].hash_key.source: unknown value "ip": expected one of source_ip, '
      "header, cookie, path, authority, query, connection"]),
    ("hash_key_header_without_name",
     with_upstream("    strategy: rendezvous\n    hash_key:\n      source: header\n"),
     ["{f}:10: upstreams[0].hash_key.name: required key missing: source header needs the name "
      "of the header"]),
    ("hash_key_name_with_path",
     with_upstream("    strategy: rendezvous\n    hash_key:\n      source: path\n      name: x\n"),
     ["{f}:11: upstreams[0].hash_key.name: not allowed with source path: only header, cookie and "
      "query take a name"]),
    ("hash_key_bad_header_name",
     with_upstream('    strategy: rendezvous\n    hash_key:\n      source: header\n'
                   '      name: "X User"\n'),
     ['{f}:11: upstreams[0].hash_key.name: invalid header name "X User": use only letters, '
      "digits and !#$%&'*+-.^_`|~ (RFC 9110 token)"]),
    ("hash_key_prefix_with_cookie",
     with_upstream("    strategy: rendezvous\n    hash_key:\n      source: cookie\n"
                   "      name: sid\n      ipv4_prefix: 24\n"),
     ["{f}:12: upstreams[0].hash_key.ipv4_prefix: not allowed with source cookie: only source_ip "
      "takes a prefix"]),
    ("hash_key_prefix_out_of_range",
     with_upstream("    strategy: rendezvous\n    hash_key:\n      source: source_ip\n"
                   "      ipv6_prefix: 129\n"),
     ["{f}:11: upstreams[0].hash_key.ipv6_prefix: must be between 1 and 128, got 129"]),
    # only rendezvous hashes: a hash_key under any other strategy, the default included, is an error
    ("hash_key_without_rendezvous",
     with_upstream("    strategy: p2c\n    hash_key:\n      source: cookie\n      name: sid\n"),
     ["{f}:9: upstreams[0].hash_key: only strategy rendezvous uses hash_key (strategy is p2c)"]),
    ("hash_key_without_strategy", with_upstream("    hash_key:\n      source: path\n"),
     ["{f}:8: upstreams[0].hash_key: only strategy rendezvous uses hash_key (strategy is "
      "round_robin)"]),
    ("sticky_secret_missing", with_upstream("    sticky_cookie:\n      name: lb\n"),
     ["{f}:9: upstreams[0].sticky_cookie.secret: required key missing"]),
    # the secret itself must never be printed
    ("sticky_secret_too_short", with_upstream("    sticky_cookie:\n      secret: hunter2\n"),
     ["{f}:9: upstreams[0].sticky_cookie.secret: must be at least 16 bytes long, got 7"]),
    ("sticky_bad_cookie_name",
     with_upstream('    sticky_cookie:\n      name: "a;b"\n      secret: ' + SECRET + "\n"),
     ['{f}:9: upstreams[0].sticky_cookie.name: invalid cookie name "a;b": use only letters, '
      "digits and !#$%&'*+-.^_`|~ (RFC 6265 token)"]),
    ("sticky_max_age_out_of_range",
     with_upstream("    sticky_cookie:\n      secret: " + SECRET + "\n      max_age: 31536001\n"),
     ["{f}:10: upstreams[0].sticky_cookie.max_age: must be between 0 and 31536000, got "
      "31536001"]),
    ("slow_start_out_of_range", with_upstream("    slow_start_ms: 3600001\n"),
     ["{f}:8: upstreams[0].slow_start_ms: must be between 0 and 3600000, got 3600001"]),
    # passive_health, breaker, retries: ranges, unknown keys, and paired keys out of order
    ("passive_health_unknown_key", with_upstream("    passive_health:\n      interval_ms: 5\n"),
     ["{f}:9: upstreams[0].passive_health.interval_ms: unknown key"]),
    ("passive_health_window_too_short", with_upstream("    passive_health:\n      window_ms: 99\n"),
     ["{f}:9: upstreams[0].passive_health.window_ms: must be between 100 and 3600000, got 99"]),
    ("passive_health_degraded_weight_zero",
     with_upstream("    passive_health:\n      degraded_weight_pct: 0\n"),
     ["{f}:9: upstreams[0].passive_health.degraded_weight_pct: must be between 1 and 100, got 0"]),
    ("passive_health_ratio_over_100",
     with_upstream("    passive_health:\n      eject_ratio_pct: 101\n"),
     ["{f}:9: upstreams[0].passive_health.eject_ratio_pct: must be between 0 and 100, got 101"]),
    ("passive_health_panic_threshold_over_100",
     with_upstream("    passive_health:\n      panic_threshold_pct: 101\n"),
     ["{f}:9: upstreams[0].passive_health.panic_threshold_pct: must be between 0 and 100, got "
      "101"]),
    ("passive_health_degrade_not_below_eject",
     with_upstream("    passive_health:\n      eject_failures: 3\n      degrade_failures: 3\n"),
     ["{f}:10: upstreams[0].passive_health.degrade_failures: must be below eject_failures (3), "
      "got 3"]),
    # the defaults count: eject_failures 2 meets the default degrade_failures 2
    ("passive_health_eject_not_above_default_degrade",
     with_upstream("    passive_health:\n      eject_failures: 2\n"),
     ["{f}:9: upstreams[0].passive_health.eject_failures: must be above degrade_failures (2, the "
      "default), got 2"]),
    ("passive_health_degrade_ratio_not_below_eject_ratio",
     with_upstream("    passive_health:\n      degrade_ratio_pct: 60\n"),
     ["{f}:9: upstreams[0].passive_health.degrade_ratio_pct: must be below eject_ratio_pct (50, "
      "the default), got 60"]),
    ("passive_health_max_recovery_below_recovery",
     with_upstream("    passive_health:\n      recovery_ms: 5000\n      max_recovery_ms: 4000\n"),
     ["{f}:10: upstreams[0].passive_health.max_recovery_ms: must be at least recovery_ms (5000), "
      "got 4000"]),
    # health_check: path required and absolute, ranges, status range, timeout within interval
    ("health_check_without_path", with_upstream("    health_check:\n      interval_ms: 500\n"),
     ["{f}:9: upstreams[0].health_check.path: required key missing"]),
    ("health_check_relative_path", with_upstream("    health_check:\n      path: healthz\n"),
     ['{f}:9: upstreams[0].health_check.path: must start with "/", got "healthz"']),
    ("health_check_interval_too_short",
     with_upstream("    health_check:\n      path: /h\n      interval_ms: 99\n"),
     ["{f}:10: upstreams[0].health_check.interval_ms: must be between 100 and 3600000, got 99"]),
    ("health_check_timeout_above_interval",
     with_upstream("    health_check:\n      path: /h\n      interval_ms: 500\n"
                   "      timeout_ms: 800\n"),
     ["{f}:11: upstreams[0].health_check.timeout_ms: must be at most interval_ms (500), got 800"]),
    ("health_check_bad_status_range",
     with_upstream("    health_check:\n      path: /h\n      expected_status: 2xx\n"),
     ['{f}:10: upstreams[0].health_check.expected_status: invalid status range "2xx": expected a '
      'status like "200" or a range like "200-399" within 100..599']),
    ("health_check_fall_zero", with_upstream("    health_check:\n      path: /h\n      fall: 0\n"),
     ["{f}:10: upstreams[0].health_check.fall: must be between 1 and 100, got 0"]),
    ("health_check_rise_too_high",
     with_upstream("    health_check:\n      path: /h\n      rise: 101\n"),
     ["{f}:10: upstreams[0].health_check.rise: must be between 1 and 100, got 101"]),
    ("breaker_unknown_key", with_upstream("    breaker:\n      max_waiting: 5\n"),
     ["{f}:9: upstreams[0].breaker.max_waiting: unknown key"]),
    ("breaker_max_pending_too_large", with_upstream("    breaker:\n      max_pending: 1000001\n"),
     ["{f}:9: upstreams[0].breaker.max_pending: must be between 0 and 1000000, got 1000001"]),
    ("breaker_half_open_requests_zero",
     with_upstream("    breaker:\n      half_open_requests: 0\n"),
     ["{f}:9: upstreams[0].breaker.half_open_requests: must be between 1 and 1000, got 0"]),
    ("breaker_max_open_below_default_open",
     with_upstream("    breaker:\n      max_open_ms: 4000\n"),
     ["{f}:9: upstreams[0].breaker.max_open_ms: must be at least open_ms (5000, the default), "
      "got 4000"]),
    ("retries_max_too_high", with_upstream("    retries:\n      max: 11\n"),
     ["{f}:9: upstreams[0].retries.max: must be between 0 and 10, got 11"]),
    ("retries_not_a_mapping", with_upstream("    retries: 3\n"),
     ['{f}:8: upstreams[0].retries: expected a mapping, got "3"']),
    ("retries_backoff_above_default_cap", with_upstream("    retries:\n      backoff_ms: 300\n"),
     ["{f}:9: upstreams[0].retries.backoff_ms: must be at most max_backoff_ms (250, the default), "
      "got 300"]),
    ("default_upstream_unknown", "default_upstream: webb\n" + VALID,
     ['{f}:1: default_upstream: no upstream is named "webb"']),
    ("log_access_not_bool", "log:\n  access: sometimes\n" + VALID,
     ['{f}:2: log.access: expected true or false, got "sometimes"']),
    ("route_prefix_without_slash", VALID.replace("path_prefix: /", "path_prefix: api"),
     ['{f}:9: upstreams[0].routes[0].path_prefix: must start with "/", got "api"']),
    ("tls_verify_not_bool", VALID + "    tls:\n      verify: maybe\n",
     ['{f}:15: upstreams[0].tls.verify: expected true or false, got "maybe"']),
    ("duplicate_upstream_and_backend",
     VALID + "  - name: app\n    routes:\n      - path_prefix: /other\n"
             "    backends:\n      - id: app-1\n        address: 127.0.0.1:9444\n",
     ['{f}:14: upstreams[1].name: duplicate upstream name "app" (also upstreams[0].name)',
      '{f}:18: upstreams[1].backends[0].id: duplicate backend id "app-1" (also '
      "upstreams[0].backends[0].id)"]),
    ("ambiguous_route",
     VALID + "  - name: other\n    routes:\n      - path_prefix: /\n"
             "    backends:\n      - id: other-1\n        address: 127.0.0.1:9444\n",
     ['{f}:16: upstreams[1].routes[0]: route host="*" path_prefix="/" duplicates '
      "upstreams[0].routes[0]"]),
    ("several_errors_all_reported",
     "workers: 999\n" + VALID.replace("port: 8443", "port: 70000") + "        weight: 5000\n",
     ["{f}:1: workers: must be between 0 and 256, got 999",
      "{f}:4: listeners[0].port: must be between 1 and 65535, got 70000",
      "{f}:15: upstreams[0].backends[0].weight: must be between 1 and 1000, got 5000"]),
    ("yaml_syntax_error", "workers: 1\nlisteners:\n  - address: 1\n   port: 2\n",
     ["{f}:4: invalid YAML: did not find expected '-' indicator"]),
]


@pytest.mark.parametrize("text,expected", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_config_is_refused_with_exact_error_lines(tmp_path, text, expected):
    path = write_config(tmp_path, text)
    code, lines = check(path)
    assert code == 1, lines
    assert lines == ["spooky: " + e.format(f=path) for e in expected]


def test_missing_config_file_is_refused(tmp_path):
    path = tmp_path / "absent.yaml"
    code, lines = check(path)
    assert code == 1
    assert lines == [f"spooky: {path}: cannot read the configuration: No such file or directory"]


def test_relative_cert_is_resolved_against_the_config_directory(tmp_path):
    path = write_config(tmp_path, VALID.replace("cert: server.crt", "cert: certs/missing.crt"))
    code, lines = check(path)
    assert code == 1
    assert lines == [
        f'spooky: {path}:4: listeners[0].cert: cannot read "certs/missing.crt" (resolved to '
        f"{tmp_path}/certs/missing.crt): No such file or directory"
    ]


def test_valid_config_passes(tmp_path):
    path = write_config(tmp_path, VALID)
    code, lines = check(path)
    assert (code, lines) == (0, [f"spooky: configuration {path} ok"])


GOOD = [
    ("backend_h2", VALID.replace("protocol: h3", "protocol: h2")),
    ("backend_h2_tls_true", VALID.replace("protocol: h3", "protocol: h2") + "        tls: true\n"),
    ("backend_h2c", VALID.replace("protocol: h3", "protocol: h2c")),
    ("backend_h2c_tls_false",
     VALID.replace("protocol: h3", "protocol: h2c") + "        tls: false\n"),
    ("backend_http1", VALID.replace("protocol: h3", "protocol: http1")),
    ("backend_https1", VALID.replace("protocol: h3", "protocol: http1") + "        tls: true\n"),
    ("tls_client_cert_and_key",
     VALID + "    tls:\n      client_cert: server.crt\n      client_key: server.key\n"),
]


@pytest.mark.parametrize("text", [c[1] for c in GOOD], ids=[c[0] for c in GOOD])
def test_good_backend_protocol_and_tls_configs_pass(tmp_path, text):
    path = write_config(tmp_path, text)
    code, lines = check(path)
    assert (code, lines) == (0, [f"spooky: configuration {path} ok"])


GOOD_BALANCING = [
    ("strategy_" + name, with_upstream(f"    strategy: {name}\n"))
    for name in ("round_robin", "weighted_round_robin", "random", "least_conn", "p2c", "ewma")
] + [
    ("rendezvous_source_ip",
     with_upstream("    strategy: rendezvous\n    hash_key:\n      source: source_ip\n"
                   "      ipv4_prefix: 24\n      ipv6_prefix: 48\n")),
    ("rendezvous_header_and_sticky_cookie",
     with_upstream("    strategy: rendezvous\n    hash_key:\n      source: header\n"
                   "      name: X-User\n    sticky_cookie:\n      name: lb\n"
                   "      secret: " + SECRET + "\n      max_age: 3600\n")),
    ("sticky_cookie_defaults_and_slow_start",
     with_upstream("    sticky_cookie:\n      secret: " + SECRET + "\n    slow_start_ms: 10000\n")),
    ("policy_sections_every_key",
     with_upstream("    passive_health:\n      eject_failures: 0\n      eject_5xx: 1000\n"
                   "      degrade_failures: 1000\n      eject_ratio_pct: 100\n"
                   "      degrade_ratio_pct: 99\n      min_requests: 1\n      window_ms: 100\n"
                   "      degraded_weight_pct: 1\n      recovery_ms: 3600000\n"
                   "      max_recovery_ms: 86400000\n"
                   "    breaker:\n      max_failures: 0\n      failure_ratio_pct: 100\n"
                   "      min_requests: 1000000\n      window_ms: 3600000\n      open_ms: 1\n"
                   "      max_open_ms: 1\n      half_open_requests: 1000\n"
                   "      half_open_successes: 1000\n      max_concurrent: 1000000\n"
                   "    retries:\n      max: 10\n      budget_pct: 0\n      min_retries: 100000\n"
                   "      backoff_ms: 0\n      max_backoff_ms: 0\n")),
    ("policy_sections_empty",
     with_upstream("    passive_health: {}\n    breaker: {}\n    retries: {}\n")),
    ("default_upstream_and_access_log_off",
     "log:\n  access: false\ndefault_upstream: app\n" + VALID),
]


@pytest.mark.parametrize("text", [c[1] for c in GOOD_BALANCING],
                         ids=[c[0] for c in GOOD_BALANCING])
def test_good_balancing_configs_pass(tmp_path, text):
    path = write_config(tmp_path, text)
    code, lines = check(path)
    assert (code, lines) == (0, [f"spooky: configuration {path} ok"])


def test_example_config_passes(tmp_path):
    """config/example.yaml names ../demo/certs/server.{crt,key}: recreate that layout."""
    (tmp_path / "config").mkdir()
    (tmp_path / "demo" / "certs").mkdir(parents=True)
    for name in ("server.crt", "server.key"):
        (tmp_path / "demo" / "certs" / name).write_text("placeholder\n")
    path = tmp_path / "config" / "example.yaml"
    shutil.copy(REPO / "config" / "example.yaml", path)
    code, lines = check(path)
    assert (code, lines) == (0, [f"spooky: configuration {path} ok"])
