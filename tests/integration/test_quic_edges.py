"""QUIC-level answers spooky gives without any connection state (RFC 9000 §6, §10.3): Version
Negotiation for an unknown version and a Stateless Reset for a short-header packet whose
connection ID spooky does not know. Raw UDP from the test, so nothing is hidden by a client."""

import os
import socket
import struct


def _exchange(port, packet, timeout=2.0):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, ("127.0.0.1", port))
        data, _ = s.recvfrom(65535)
        return data


def test_unknown_version_gets_version_negotiation_listing_v1(testd, spooky_for):
    sp = spooky_for([testd])
    dcid, scid = os.urandom(8), os.urandom(8)
    # Long header, fixed bit, an unknown version 0x1a2a3a4a; padded to 1200 bytes (RFC 9000 §14.1)
    pkt = bytes([0xc0]) + struct.pack("!I", 0x1A2A3A4A) + bytes([8]) + dcid + bytes([8]) + scid
    pkt += b"\0" * (1200 - len(pkt))
    vn = _exchange(sp.port, pkt)
    assert vn[0] & 0x80, "Version Negotiation is a long-header packet"
    assert struct.unpack("!I", vn[1:5])[0] == 0, "version 0 marks Version Negotiation"
    # RFC 9000 §17.2.1: the client's connection IDs come back swapped.
    dlen = vn[5]
    assert vn[6:6 + dlen] == scid
    slen = vn[6 + dlen]
    assert vn[7 + dlen:7 + dlen + slen] == dcid
    versions = vn[7 + dlen + slen:]
    listed = [struct.unpack("!I", versions[i:i + 4])[0] for i in range(0, len(versions), 4)]
    assert 0x00000001 in listed


def test_unknown_connection_id_gets_a_stateless_reset(testd, spooky_for):
    sp = spooky_for([testd])
    pkt = bytes([0x40 | 0x01]) + os.urandom(16) + os.urandom(80)   # short header, random DCID
    reset = _exchange(sp.port, pkt)
    # RFC 9000 §10.3: looks like a short-header packet, smaller than what triggered it (so two
    # endpoints cannot loop), at least 21 bytes, ending in a 16-byte token.
    assert reset[0] & 0xC0 == 0x40
    assert 21 <= len(reset) < len(pkt)


def test_garbage_datagrams_do_not_disturb_service(testd, spooky_for, testc):
    sp = spooky_for([testd])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for n in (0, 1, 5, 21, 1200):
            s.sendto(os.urandom(n), ("127.0.0.1", sp.port))
    fields = [(":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
              (":path", "/size/10")]
    (ok,) = testc(sp.port, fields).responses
    assert ok.status == 200
