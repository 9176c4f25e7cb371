"""Request header propagation through spooky, as seen by the backend.

spooky-testd's /headers answers with the request's fields as received, in JSON. Reading that
body through spooky-testc needs its --print-body option; the gtlsclient-based tests read the
downloaded body instead (gtlsclient sends only :method, :scheme, :authority, :path,
user-agent). caddy's /reqinfo route echoes the forwarding headers as text."""

from spookytest.clients import request_fields


def _values(fields, name):
    return [v for n, v in fields if n == name]


def _xff_hops(fields):
    """x-forwarded-for as one list of addresses, over all its fields."""
    return [h.strip() for v in _values(fields, "x-forwarded-for") for h in v.split(",")]


def _received(sp, testc, path="/headers", method="GET", extra=()):
    (resp,) = testc(sp.port, request_fields(path, method=method, extra=extra),
                    print_body=True).responses
    assert resp.status == 200, resp
    return [tuple(f) for f in resp.json_body()]


def test_end_to_end_headers_arrive_unchanged(testd, spooky_for, testc):
    sp = spooky_for([testd])
    got = _received(sp, testc, path="/headers?q=1&r=%20x", extra=[
        ("user-agent", "spooky-test/1.0"), ("x-custom", "1"), ("x-multi", "a"),
        ("x-multi", "b"), ("accept", "*/*"), ("cookie", "a=1"), ("cookie", "b=2")])
    assert _values(got, ":method") == ["GET"]
    assert _values(got, ":scheme") == ["https"]
    assert _values(got, ":authority") == ["localhost"]
    assert _values(got, ":path") == ["/headers?q=1&r=%20x"]
    assert _values(got, "user-agent") == ["spooky-test/1.0"]
    assert _values(got, "x-custom") == ["1"]
    assert _values(got, "x-multi") == ["a", "b"]
    assert _values(got, "accept") == ["*/*"]
    # RFC 9114 §4.2.1: cookie may be split into several fields; the crumbs must survive.
    cookies = sorted(c.strip() for v in _values(got, "cookie") for c in v.split(";"))
    assert cookies == ["a=1", "b=2"]
    # pseudo-header fields come first (RFC 9114 §4.3)
    names = [n for n, _ in got]
    first_regular = next(i for i, n in enumerate(names) if not n.startswith(":"))
    assert all(not n.startswith(":") for n in names[first_regular:])


def test_forwarding_headers_are_added(testd, spooky_for, testc):
    sp = spooky_for([testd])
    got = _received(sp, testc)
    assert _xff_hops(got) == ["127.0.0.1"]
    assert _values(got, "x-forwarded-proto") == ["https"]
    (rid,) = _values(got, "x-request-id")
    assert rid.strip()
    assert any("spooky" in v for v in _values(got, "via"))


def test_x_forwarded_for_from_the_client_is_appended_to(testd, spooky_for, testc):
    sp = spooky_for([testd])
    got = _received(sp, testc, extra=[("x-forwarded-for", "192.0.2.1, 198.51.100.7")])
    assert _xff_hops(got) == ["192.0.2.1", "198.51.100.7", "127.0.0.1"]


def test_client_request_id_is_preserved(testd, spooky_for, testc):
    sp = spooky_for([testd])
    got = _received(sp, testc, extra=[("x-request-id", "client-chosen-42")])
    assert _values(got, "x-request-id") == ["client-chosen-42"]


def test_request_ids_differ_between_requests(testd, spooky_for, testc):
    sp = spooky_for([testd])
    ids = {_values(_received(sp, testc), "x-request-id")[0] for _ in range(3)}
    assert len(ids) == 3


def test_existing_via_is_kept_and_spooky_appended(testd, spooky_for, testc):
    sp = spooky_for([testd])
    got = _received(sp, testc, extra=[("via", "1.1 edge")])
    vias = ", ".join(_values(got, "via"))
    assert vias.startswith("1.1 edge")
    assert "spooky" in vias.split("1.1 edge", 1)[1]


def test_te_trailers_passes_through(testd, spooky_for, testc):
    sp = spooky_for([testd])
    got = _received(sp, testc, extra=[("te", "trailers")])
    assert _values(got, "te") == ["trailers"]


def test_no_connection_specific_fields_are_sent_to_the_backend(testd, spooky_for, testc):
    sp = spooky_for([testd])
    got = _received(sp, testc, method="POST", extra=[("content-length", "0")])
    for name in ("connection", "keep-alive", "proxy-connection", "transfer-encoding",
                 "upgrade"):
        assert _values(got, name) == [], name


def test_forwarding_headers_with_gtlsclient(testd, spooky_for, gtls):
    sp = spooky_for([testd])
    st = gtls(sp.port, ["/headers"]).streams[0]
    assert st.status == 200
    got = [tuple(f) for f in st.json_body()]
    assert _values(got, ":authority") == [f"localhost:{sp.port}"]
    assert _values(got, "user-agent") == ["nghttp3/ngtcp2 client"]
    assert _xff_hops(got) == ["127.0.0.1"]
    assert _values(got, "x-forwarded-proto") == ["https"]
    assert _values(got, "x-request-id")[0].strip()
    assert any("spooky" in v for v in _values(got, "via"))


def test_forwarding_headers_seen_by_caddy(caddy, spooky_for, gtls):
    sp = spooky_for([caddy])
    st = gtls(sp.port, ["/reqinfo"]).streams[0]
    assert st.status == 200
    info = dict(line.split("=", 1) for line in st.text().splitlines() if "=" in line)
    assert info["host"] == "localhost"
    assert info["x-forwarded-for"].split(",")[-1].strip() == "127.0.0.1"
    assert info["x-forwarded-proto"] == "https"
    assert info["x-request-id"].strip()
    assert "spooky" in info["via"]
    assert info["user-agent"] == "nghttp3/ngtcp2 client"
