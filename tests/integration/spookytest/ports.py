"""Free loopback ports, found by binding port 0. A port handed out once is never handed out
again in this process, so two fixtures of one test cannot get the same port. (Another program
may still grab it between our close() and the server's bind(); that race is accepted.)"""

import socket

_handed_out = set()


def _probe(kind, port, host):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind((host, port))
        return s.getsockname()[1]
    finally:
        s.close()


def free_port(udp=True, tcp=False, host="127.0.0.1", attempts=200):
    """Returns a port number free on `host` for UDP (default) and/or TCP."""
    if not (udp or tcp):
        raise ValueError("ask for udp, tcp or both")
    for _ in range(attempts):
        first = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
        try:
            port = _probe(first, 0, host)
            if udp and tcp:
                _probe(socket.SOCK_STREAM, port, host)
        except OSError:
            continue
        if port in _handed_out:
            continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port after {attempts} attempts")


def free_udp_port(host="127.0.0.1"):
    return free_port(udp=True, tcp=False, host=host)


def free_tcp_port(host="127.0.0.1"):
    return free_port(udp=False, tcp=True, host=host)


def free_tcp_udp_port(host="127.0.0.1"):
    """A port free for both TCP and UDP (caddy serves h1/h2 on TCP and h3 on UDP)."""
    return free_port(udp=True, tcp=True, host=host)
