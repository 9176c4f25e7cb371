"""Sanity tests of the test infrastructure itself: certificates, ports, processes, and the
caddy and gtlsserver backends spoken to directly (no spooky) with gtlsclient."""

import pathlib
import shutil
import socket
import subprocess
import sys
import textwrap

import pytest

from spookytest import clients, ports, procs as procs_mod
from spookytest.clients import H3_NO_ERROR
from spookytest.content import FILES

HERE = pathlib.Path(__file__).resolve().parent


# --- infrastructure ---------------------------------------------------------------------------

def test_server_certificate_is_signed_by_the_ca_for_localhost_and_loopback_ips(certs):
    out = subprocess.run(["certtool", "--verify", "--load-ca-certificate", str(certs.ca),
                          "--infile", str(certs.cert)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    info = subprocess.run(["certtool", "-i", "--infile", str(certs.cert)], capture_output=True,
                          text=True, timeout=30, check=True).stdout
    assert "DNSname: localhost" in info
    assert "IPAddress: 127.0.0.1" in info
    assert "IPAddress: ::1" in info
    assert certs.key.read_text().startswith("-----BEGIN")


def test_free_tcp_udp_port_can_be_bound_for_both_protocols():
    port = ports.free_tcp_udp_port()
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        finally:
            s.close()
    assert ports.free_udp_port() != port


def test_content_files_have_the_documented_sizes(content):
    assert {name: f.size for name, f in content.items()} == FILES
    for f in content.values():
        assert f.path.stat().st_size == f.size
        assert clients.sha256_file(f.path) == f.sha256


def test_wait_for_log_fails_fast_with_the_tail_when_the_process_exits(procs):
    p = procs.start("early-exit", [sys.executable, "-c", "print('bye'); raise SystemExit(3)"])
    with pytest.raises(procs_mod.ProcError, match="bye"):
        p.wait_for_log("never printed", timeout=10)
    assert p.wait(5) == 3


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(procs):
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\n"
            "for _ in range(600): time.sleep(0.1)\n")
    p = procs.start("stubborn", [sys.executable, "-c", code])
    p.wait_for_log("^ready$", timeout=10)
    assert p.stop(timeout=0.5) == -9
    assert p.stopped_by_kill


def test_logs_of_a_failing_test_are_printed(tmp_path):
    """Runs a tiny failing test with a copy of our conftest and looks for the log section."""
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (tmp_path / "test_fails.py").write_text(textwrap.dedent("""
        import sys
        def test_fails(procs):
            p = procs.start("talker", [sys.executable, "-c",
                                       "print('marker-1234', flush=True); import time; "
                                       "[time.sleep(0.1) for _ in range(100)]"])
            p.wait_for_log("marker-1234", timeout=10)
            assert False, "deliberate"
    """))
    env = dict(procs_mod.default_env(PYTHONPATH=str(HERE)))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", str(tmp_path)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "process log: talker" in out.stdout
    assert "marker-1234" in out.stdout


# --- caddy, directly --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["empty.bin", "1k.bin", "1m.bin", "50m.bin"])
def test_caddy_serves_each_file_over_http3(caddy, gtls, content, name):
    r = gtls(caddy.port, [f"/{name}"])
    assert r.handshake_completed
    st = r.streams[0]
    assert st.status == 200
    assert st.error_code == H3_NO_ERROR
    assert st.header("x-backend") == "caddy-1"
    assert st.header("content-length") == str(content[name].size)
    assert st.body_len == content[name].size
    assert st.body_sha256 == content[name].sha256


def test_caddy_answers_100_concurrent_streams_on_one_connection(caddy, gtls, content):
    paths = [f"/1k.bin?i={i}" for i in range(100)]
    r = gtls(caddy.port, paths)
    assert r.handshake_completed
    assert [s.status for s in r.streams] == [200] * 100
    assert {s.body_sha256 for s in r.streams} == {content["1k.bin"].sha256}


def test_caddy_whoami_reqinfo_and_missing_file(caddy, gtls):
    r = gtls(caddy.port, ["/whoami", "/reqinfo", "/no-such-file"])
    who, info, missing = r.streams
    assert who.status == 200 and who.body_len == len("caddy-1")
    assert info.status == 200
    text = info.text()
    assert "host=localhost" in text
    assert "user-agent=nghttp3/ngtcp2 client" in text
    assert missing.status == 404
    assert missing.header("x-backend") == "caddy-1"


def test_caddy_keeps_its_state_in_the_test_directory(caddy):
    environ = open(f"/proc/{caddy.proc.pid}/environ", "rb").read().decode(errors="replace")
    env = dict(kv.split("=", 1) for kv in environ.split("\0") if "=" in kv)
    for var in ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        assert env[var].startswith(str(caddy.work_dir)), var
    assert (caddy.work_dir / "home" / "storage").is_dir()


def test_two_caddies_identify_themselves(make_caddy, gtls):
    a, b = make_caddy("caddy-a"), make_caddy("caddy-b")
    assert a.port != b.port
    assert gtls(a.port, ["/whoami"]).streams[0].header("x-backend") == "caddy-a"
    assert gtls(b.port, ["/whoami"]).streams[0].header("x-backend") == "caddy-b"


# --- gtlsserver, directly ---------------------------------------------------------------------

# gtlsserver cannot serve an empty file: it mmaps the file, mmap(0 bytes) fails ("mmap:
# Invalid argument") and it answers 404. So no empty.bin here.
@pytest.mark.parametrize("name", ["1k.bin", "1m.bin", "50m.bin"])
def test_gtlsserver_serves_each_file(gtlsserver, gtls, content, name):
    r = gtls(gtlsserver.port, [f"/{name}?ignored=query"])
    st = r.streams[0]
    assert r.handshake_completed
    assert st.status == 200
    assert st.error_code == H3_NO_ERROR
    assert st.body_len == content[name].size
    assert st.body_sha256 == content[name].sha256


def test_gtlsserver_answers_100_concurrent_streams(gtlsserver, gtls, content):
    r = gtls(gtlsserver.port, [f"/1m.bin?i={i}" for i in range(100)], timeout_s=120)
    assert [s.status for s in r.streams] == [200] * 100
    assert {s.body_sha256 for s in r.streams} == {content["1m.bin"].sha256}


def test_gtlsserver_counts_one_connection_per_client_run(make_gtlsserver, gtls):
    srv = make_gtlsserver("gtls-q", count_connections=True)
    before = srv.connection_count()
    for _ in range(3):
        assert gtls(srv.port, ["/1k.bin", "/1m.bin"]).streams[1].status == 200
    assert srv.connection_count() == before + 3


def test_gtlsclient_reports_a_failed_handshake_when_nothing_listens(gtls):
    port = ports.free_udp_port()
    r = gtls(port, ["/"], handshake_timeout="500ms", idle_timeout="1s", timeout_s=20)
    assert not r.handshake_completed
    assert r.streams[0].status is None
