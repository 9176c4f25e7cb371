"""h2raw: a tiny scripted HTTP/2 cleartext (prior knowledge) server for behaviour that real
servers do not offer on demand. Test-only; one thread per connection; runs until killed.

    python3 h2raw.py --port PORT --mode MODE

Every request (whatever its method and path) is answered according to MODE:
  ok          200, body "ok"
  trailers    200, body "ok", then a trailer section "x-trailer: yes"
  reset       200, 32 KiB of body, then RST_STREAM(INTERNAL_ERROR): a stream reset mid-body
  refuse      RST_STREAM(REFUSED_STREAM): the request was not processed
  close       200, body "ok", then the TCP connection is closed (no GOAWAY)
  goaway      200, body "ok", then GOAWAY(last_stream_id = this stream) and close
  ignore_ping like ok, but PINGs are never answered (a backend that hangs)
It logs one line per event on stdout: event=ready, event=conn, event=request stream=N,
event=ping. Response headers are HPACK-encoded as literals without Huffman coding; request
header blocks are not decoded (not needed).
"""

import argparse
import socket
import socketserver
import struct
import sys
import threading

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0, 1, 3, 4, 6, 7, 9
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
NO_ERROR, INTERNAL_ERROR, REFUSED_STREAM = 0x0, 0x2, 0x7
MAX_FRAMES_PER_CONN = 1_000_000   # bound on the read loop of one connection
LOG_LOCK = threading.Lock()


def log(line):
    with LOG_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags,
                                                             stream_id) + payload


def literal(name, value):
    """HPACK literal header field without indexing, new name, no Huffman (RFC 7541 §6.2.2)."""
    n, v = name.encode(), value.encode()
    assert len(n) < 127 and len(v) < 127
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def status_200(extra=()):
    block = b"\x88"   # :status 200, static table index 8
    for name, value in extra:
        block += literal(name, value)
    return block


class Conn:
    def __init__(self, sock, mode):
        self.sock = sock
        self.mode = mode
        self.buf = b""

    def recv_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, data):
        self.sock.sendall(data)

    def respond(self, sid):
        log(f"event=request stream={sid}")
        m = self.mode
        if m == "refuse":
            self.send(frame(RST_STREAM, 0, sid, struct.pack(">I", REFUSED_STREAM)))
            return True
        if m == "reset":
            self.send(frame(HEADERS, END_HEADERS, sid,
                            status_200([("content-type", "application/octet-stream")])) +
                      frame(DATA, 0, sid, b"x" * 16384) + frame(DATA, 0, sid, b"y" * 16384) +
                      frame(RST_STREAM, 0, sid, struct.pack(">I", INTERNAL_ERROR)))
            return True
        if m == "trailers":
            self.send(frame(HEADERS, END_HEADERS, sid, status_200()) + frame(DATA, 0, sid, b"ok") +
                      frame(HEADERS, END_HEADERS | END_STREAM, sid,
                            literal("x-trailer", "yes")))
            return True
        self.send(frame(HEADERS, END_HEADERS, sid, status_200([("content-length", "2")])) +
                  frame(DATA, END_STREAM, sid, b"ok"))
        if m == "goaway":
            self.send(frame(GOAWAY, 0, 0, struct.pack(">II", sid, NO_ERROR)))
            return False
        return m != "close"

    def run(self):
        if self.recv_exact(len(PREFACE)) != PREFACE:
            return
        self.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 0x3, 100)))  # MAX_CONCURRENT_STREAMS
        block_sid = None
        for _ in range(MAX_FRAMES_PER_CONN):
            hdr = self.recv_exact(9)
            length = struct.unpack(">I", b"\x00" + hdr[:3])[0]
            ftype, flags = hdr[3], hdr[4]
            sid = struct.unpack(">I", hdr[5:9])[0] & 0x7fffffff
            payload = self.recv_exact(length)
            if ftype == SETTINGS and not flags & ACK:
                self.send(frame(SETTINGS, ACK, 0))
            elif ftype == PING and not flags & ACK:
                log("event=ping")
                if self.mode != "ignore_ping":
                    self.send(frame(PING, ACK, 0, payload))
            elif ftype in (HEADERS, CONTINUATION):
                block_sid = sid
                if flags & END_HEADERS and not self.respond(block_sid):
                    return
            elif ftype == GOAWAY:
                return


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        log("event=conn")
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Conn(self.request, self.server.mode)
        try:
            conn.run()
        except (EOFError, OSError):
            pass


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", required=True,
                    choices=["ok", "trailers", "reset", "refuse", "close", "goaway",
                             "ignore_ping"])
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.mode = args.mode
    log(f"event=ready port={args.port} mode={args.mode}")
    srv.serve_forever()


if __name__ == "__main__":
    main()
