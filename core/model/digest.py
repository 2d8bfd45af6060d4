"""Content digests: ``"sha256:<64 hex>"`` strings, streaming file hashing, canonical JSON.

The store names every object by the sha256 of its *uncompressed* bytes, and every reader
re-hashes what it reads, so these few functions are the root of the trust model.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

PREFIX = "sha256:"
HEX_RE = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


def digest_bytes(data: bytes) -> str:
    """The ``sha256:<hex>`` digest of ``data``."""
    return PREFIX + hashlib.sha256(data).hexdigest()


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Stream a file through sha256; return ``(digest, size)``."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
            size += n
    return PREFIX + h.hexdigest(), size


def is_digest(value: object) -> bool:
    """True for a well-formed ``sha256:<64 lower-case hex>`` string."""
    return isinstance(value, str) and value.startswith(PREFIX) and bool(HEX_RE.match(value[7:]))


def hex_of(digest: str) -> str:
    """The 64-hex part of a well-formed digest; ``ValueError`` otherwise."""
    if not is_digest(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest[len(PREFIX):]


def short(digest: str, n: int = 12) -> str:
    """A short display form: the first ``n`` hex characters."""
    return digest[len(PREFIX):][:n] if digest.startswith(PREFIX) else digest[:n]


def canonical_json(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8. Used for trees and signed payloads."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
