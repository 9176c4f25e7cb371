"""spooky-testd and spooky-testc against each other, without spooky: checks the test tools'
contract that the proxy tests rely on. Skipped until both are built."""

import pytest

from spookytest import backends, content as content_mod
from spookytest.clients import H3_INTERNAL_ERROR, H3_NO_ERROR, request_fields


@pytest.mark.parametrize("size", [0, 1024, 1024 * 1024])
def test_testd_size_returns_n_alphabet_bytes(testd, testc, size):
    r = testc(testd.port, request_fields(f"/size/{size}"))
    assert r.returncode == 0
    (resp,) = r.responses
    assert resp.status == 200
    assert resp.header("content-length") == str(size)
    assert resp.header("x-backend-id") == "testd-1"
    assert resp.body_len == size
    assert resp.body_sha256 == content_mod.alphabet_sha256(size)
    assert resp.reset is None and resp.error is None


def test_testd_echo_returns_the_request_body(testd, testc, content):
    f = content["1m.bin"]
    r = testc(testd.port, request_fields("/echo", method="POST"), body=f.path)
    (resp,) = r.responses
    assert resp.status == 200
    assert (resp.body_len, resp.body_sha256) == (f.size, f.sha256)


def test_testd_headers_lists_the_received_fields_in_json(testd, gtls):
    r = gtls(testd.port, ["/headers?a=1"])
    assert r.streams[0].status == 200
    fields = r.streams[0].json_body()
    assert [":path", "/headers?a=1"] in fields
    assert [":method", "GET"] in fields
    assert ["user-agent", "nghttp3/ngtcp2 client"] in fields


def test_testc_sends_exactly_the_given_fields(testd, testc):
    fields = request_fields("/headers", extra=[("x-custom", "1"), ("x-custom", "2")])
    r = testc(testd.port, fields, print_body=True)
    (resp,) = r.responses
    assert resp.status == 200
    assert [tuple(x) for x in resp.json_body()] == fields


def test_testd_trailers_are_sent_and_request_trailers_echoed(testd, testc, content):
    r = testc(testd.port, request_fields("/trailers", method="POST"), body=content["1k.bin"].path,
              trailers=[("x-req", "abc")])
    (resp,) = r.responses
    assert resp.status == 200
    assert resp.trailer("x-trailer") == "yes"
    assert resp.trailer("x-echo-x-req") == "abc"


def test_testd_status_delay_and_resets(testd, testc):
    (s,) = testc(testd.port, request_fields("/status/503")).responses
    assert s.status == 503 and s.body_len == len("status 503")
    d = testc(testd.port, request_fields("/delay/300"))
    assert d.responses[0].status == 200 and d.elapsed_s >= 0.3
    (rst,) = testc(testd.port, request_fields("/reset")).responses
    assert rst.status is None and rst.reset == H3_INTERNAL_ERROR
    (ra,) = testc(testd.port, request_fields("/reset-after/1000")).responses
    assert ra.status == 200 and ra.reset is not None and ra.reset != H3_NO_ERROR


def test_testd_stats_count_handshakes_and_requests(testd, testc):
    before = testd.stats()
    r = testc(testd.port, request_fields("/size/10"), n=20, parallel=5)
    assert r.statuses() == [200] * 20
    after = testd.stats()
    assert backends.stats_delta(before, after) == {"handshakes": 1, "requests": 20}
    # testd's own log agrees: one handshake per connection (2 stats + 1 testc so far)
    assert testd.handshakes_logged() == after["handshakes"]
