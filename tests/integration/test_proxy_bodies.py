"""Bodies of 0 B, 1 KiB, 1 MiB and 50 MiB through spooky, both directions, checked by
length and sha256."""

import pytest

from spookytest import content as content_mod
from spookytest.clients import H3_NO_ERROR, request_fields

SIZES = [
    pytest.param("empty.bin", id="0B"),
    pytest.param("1k.bin", id="1KiB"),
    pytest.param("1m.bin", id="1MiB"),
    pytest.param("50m.bin", id="50MiB", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name", SIZES)
def test_download_file_from_caddy(name, caddy, spooky_for, gtls, content):
    sp = spooky_for([caddy])
    f = content[name]
    r = gtls(sp.port, [f"/{name}"], timeout_s=120)
    st = r.streams[0]
    assert st.status == 200
    assert st.error_code == H3_NO_ERROR
    assert st.header("content-length") == str(f.size)
    assert (st.body_len, st.body_sha256) == (f.size, f.sha256)


@pytest.mark.parametrize("name", SIZES)
def test_download_generated_body_from_testd(name, testd, spooky_for, testc, content):
    size = content[name].size
    sp = spooky_for([testd])
    (resp,) = testc(sp.port, request_fields(f"/size/{size}"), timeout_s=120).responses
    assert resp.status == 200
    assert resp.reset is None and resp.error is None
    assert resp.body_len == size
    assert resp.body_sha256 == content_mod.alphabet_sha256(size)


@pytest.mark.parametrize("name", SIZES)
def test_upload_is_echoed_by_testd(name, testd, spooky_for, testc, content):
    f = content[name]
    sp = spooky_for([testd])
    fields = request_fields("/echo", method="POST", extra=[("content-length", str(f.size))])
    (resp,) = testc(sp.port, fields, body=f.path, timeout_s=120).responses
    assert resp.status == 200
    assert resp.reset is None and resp.error is None
    assert (resp.body_len, resp.body_sha256) == (f.size, f.sha256)


def test_upload_without_content_length_is_streamed(testd, spooky_for, testc, content):
    f = content["1m.bin"]
    sp = spooky_for([testd])
    (resp,) = testc(sp.port, request_fields("/echo", method="PUT"), body=f.path).responses
    assert resp.status == 200
    assert (resp.body_len, resp.body_sha256) == (f.size, f.sha256)


def test_upload_with_gtlsclient_is_echoed(testd, spooky_for, gtls, content):
    # gtlsclient -d adds content-length; it cannot send an empty file (it mmaps it).
    f = content["1m.bin"]
    sp = spooky_for([testd])
    st = gtls(sp.port, ["/echo"], method="POST", data=f.path).streams[0]
    assert st.status == 200
    assert (st.body_len, st.body_sha256) == (f.size, f.sha256)


def test_connection_flow_control_credit_is_not_lost(testd, spooky_for, testc):
    """Many responses on one pooled backend connection add up to far more than its connection
    window (1 MiB by default). Credit for bytes still in flight to the client when the backend
    stream closes must go back to the backend connection, or the pool stalls after ~1 MiB."""
    sp = spooky_for([testd], pool={"max_connections_per_backend": 1})
    r = testc(sp.port, request_fields("/size/20000"), n=400, parallel=50, timeout_s=60)
    assert r.returncode == 0
    assert r.statuses() == [200] * 400


def test_early_answer_and_stop_sending_from_an_h3_backend(testd, spooky_defaults, testc,
                                                         tmp_path):
    """A backend that answers before reading the upload and then asks to stop it (STOP_SENDING
    H3_NO_ERROR, RFC 9114 §4.1.1): the client gets the whole answer, spooky tells it to stop the
    upload without error, and nothing is charged to anyone."""
    body = tmp_path / "big.bin"
    body.write_bytes(b"u" * (20 * 1024 * 1024))
    sp = spooky_defaults([testd])
    r = testc(sp.port, request_fields("/early/5000", method="POST"), body=body, timeout_s=60)
    (resp,) = r.responses
    assert resp.status == 200 and resp.body_len == 5000 and resp.reset is None, resp
    (e,) = sp.wait_access(path="/early/5000")
    assert (e["status"], e["cause"], e["class"]) == ("200", "-", "none"), e
    # The upload stopped early: spooky's own duration, far below moving 20 MiB under ASan.
    assert float(e["duration_ms"]) < 3000, e
    assert not sp.entries(level={"warn", "error"})
