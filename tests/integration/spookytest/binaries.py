"""Where the binaries under test live: <repo>/build/<name>, unless an environment variable
names another path (SPOOKY_BIN, SPOOKY_TESTD, SPOOKY_TESTC, SPOOKY_BENCH, SPOOKY_H3LOAD)."""

import os
import pathlib
import shutil

REPO = pathlib.Path(__file__).resolve().parents[3]
BUILD = REPO / "build"

_ENV = {"spooky": "SPOOKY_BIN", "spooky-testd": "SPOOKY_TESTD", "spooky-testc": "SPOOKY_TESTC",
        "spooky-bench": "SPOOKY_BENCH", "spooky-h3load": "SPOOKY_H3LOAD"}


def path_of(name):
    """Path of one of our binaries (may not exist yet)."""
    override = os.environ.get(_ENV[name])
    return pathlib.Path(override) if override else BUILD / name


def find(name):
    """Path of our binary `name` if it exists and is executable, else None."""
    p = path_of(name)
    return p if p.is_file() and os.access(p, os.X_OK) else None


def system_tool(name):
    """Path of a system tool (caddy, gtlsclient, gtlsserver, certtool) or None."""
    return shutil.which(name) or (f"/usr/sbin/{name}" if os.access(f"/usr/sbin/{name}", os.X_OK)
                                  else None)
