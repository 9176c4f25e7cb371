"""A private network namespace for one test, to black-hole a backend with nftables.

enter() creates a namespace (ip netns add), brings its loopback up and moves this process's
thread into it with setns(2): every process the test starts afterwards (spooky, backends,
clients) is born inside it and sees only its loopback, so nftables rules added here touch
nothing outside the test. leave() moves back and deletes the namespace (its processes must be
stopped first). Needs root, iproute2 and nftables."""

import ctypes
import os
import shutil
import subprocess

CLONE_NEWNET = 0x40000000
TABLE = "spooky_test"


def available():
    """None when a namespace can be made here, else why not."""
    if os.geteuid() != 0:
        return "not root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None and not os.access(f"/usr/sbin/{tool}", os.X_OK):
            return f"{tool} not installed"
    return None


def _run(*argv):
    subprocess.run(list(argv), check=True, stdin=subprocess.DEVNULL, capture_output=True,
                   timeout=10)


def _setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class Netns:
    def __init__(self, name):
        self.name = name
        self._home = None

    def enter(self):
        _run("ip", "netns", "add", self.name)
        self._home = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            _setns(fd)
        finally:
            os.close(fd)
        _run("ip", "link", "set", "lo", "up")
        _run("nft", "add", "table", "inet", TABLE)
        _run("nft", "add", "chain", "inet", TABLE, "input",
             "{ type filter hook input priority 0; policy accept; }")
        return self

    def black_hole_udp(self, port):
        """Silently drops every UDP datagram to or from `port` (no ICMP answers): a backend
        whose host vanished from the network."""
        _run("nft", "add", "rule", "inet", TABLE, "input", "udp", "dport", str(port), "drop")
        _run("nft", "add", "rule", "inet", TABLE, "input", "udp", "sport", str(port), "drop")

    def black_hole_tcp(self, port):
        _run("nft", "add", "rule", "inet", TABLE, "input", "tcp", "dport", str(port), "drop")
        _run("nft", "add", "rule", "inet", TABLE, "input", "tcp", "sport", str(port), "drop")

    def heal(self):
        """Removes every drop rule."""
        _run("nft", "flush", "chain", "inet", TABLE, "input")

    def leave(self):
        if self._home is not None:
            _setns(self._home)
            os.close(self._home)
            self._home = None
        subprocess.run(["ip", "netns", "delete", self.name], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=10, check=False)
