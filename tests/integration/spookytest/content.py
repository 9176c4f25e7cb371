"""Deterministic test content with known sizes and sha256."""

import dataclasses
import hashlib
import pathlib
import random

KIB = 1024
MIB = 1024 * 1024

# File name -> size. Served by caddy and gtlsserver from the same directory.
FILES = {"empty.bin": 0, "1k.bin": KIB, "1m.bin": MIB, "50m.bin": 50 * MIB}
SIZE_TO_FILE = {size: name for name, size in FILES.items()}

ALPHABET = b"abcdefghijklmnopqrstuvwxyz"


@dataclasses.dataclass(frozen=True)
class ContentFile:
    name: str
    path: pathlib.Path
    size: int
    sha256: str


def make_content(directory, seed=1234):
    """Writes FILES into `directory` (bytes from a seeded PRNG, so runs are reproducible).
    Returns {name: ContentFile}."""
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, (name, size) in enumerate(sorted(FILES.items(), key=lambda kv: kv[1])):
        data = random.Random(seed + i).randbytes(size)
        (d / name).write_bytes(data)
        out[name] = ContentFile(name=name, path=d / name, size=size,
                                sha256=hashlib.sha256(data).hexdigest())
    return out


def alphabet_sha256(n):
    """sha256 of spooky-testd's /size/N body: N bytes of the repeating ASCII alphabet."""
    h = hashlib.sha256()
    block = ALPHABET * (65536 // len(ALPHABET) + 1)
    block = block[:len(ALPHABET) * (65536 // len(ALPHABET))]   # whole alphabets only
    full, rest = divmod(n, len(block))
    for _ in range(full):
        h.update(block)
    h.update(block[:rest])
    return h.hexdigest()


def empty_sha256():
    return hashlib.sha256(b"").hexdigest()
