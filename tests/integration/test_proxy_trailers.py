"""HTTP trailers both ways through spooky."""

from spookytest.clients import request_fields


def test_response_trailers_reach_the_client(testd, spooky_for, testc):
    sp = spooky_for([testd])
    (resp,) = testc(sp.port, request_fields("/trailers")).responses
    assert resp.status == 200
    assert resp.body_len == 2
    assert resp.trailer("x-trailer") == "yes"


def test_request_trailers_reach_the_backend(testd, spooky_for, testc, content):
    sp = spooky_for([testd])
    (resp,) = testc(sp.port, request_fields("/trailers", method="POST"),
                    body=content["1k.bin"].path,
                    trailers=[("x-checksum", "abc123"), ("x-more", "2")]).responses
    assert resp.status == 200
    assert resp.trailer("x-trailer") == "yes"
    assert resp.trailer("x-echo-x-checksum") == "abc123"
    assert resp.trailer("x-echo-x-more") == "2"


def test_trailers_after_a_large_body(testd, spooky_for, testc, content):
    sp = spooky_for([testd])
    (resp,) = testc(sp.port, request_fields("/trailers", method="POST"),
                    body=content["1m.bin"].path, trailers=[("x-late", "yes")]).responses
    assert resp.status == 200
    assert resp.trailer("x-echo-x-late") == "yes"
