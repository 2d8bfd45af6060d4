"""Content digests: ``"sha256:<64 hex>"`` strings, streaming file hashing, canonical JSON.

The store names every object by the sha256 of its *uncompressed* bytes, and every reader
re-hashes what it reads, so these few functions are the root of the trust model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from typing import Any

from core.errors import Ambiguous, BadInput, NotFound

PREFIX = "sha256:"
HEX_RE = re.compile(r"^[0-9a-f]{64}$")
REF_RE = re.compile(r"^[0-9a-f]{4,64}$")
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
    return digest[len(PREFIX) :]


def short(digest: str, n: int = 12) -> str:
    """A short display form: the first ``n`` hex characters."""
    return digest[len(PREFIX) :][:n] if digest.startswith(PREFIX) else digest[:n]


def resolve_release_ref(
    ref: str, matches: Callable[[str], list[str]], *, exists: Callable[[str], bool] | None = None, where: str = ""
) -> str:
    """A full release id from ``sha256:<hex>``, bare hex, or a unique hex prefix of at least 4 characters.

    The one resolver of the site (``matches`` asks the catalogue) and of the node (it lists the
    store): ``matches(prefix)`` gives the full ids starting with that hex, ``exists(id)`` (when
    given) checks a full id; ``where`` ends the not-found message (`` in store …``). BadInput for a
    malformed reference, NotFound, or Ambiguous listing the candidates.
    """
    text = ref.strip().lower().removeprefix(PREFIX)
    if not REF_RE.match(text):
        raise BadInput(f"invalid release id {ref!r}: expected sha256:<hex> or a hex prefix of at least 4 characters")
    if len(text) == 64:
        rid = PREFIX + text
        if exists is not None and not exists(rid):
            raise NotFound(f"release {ref} not found{where}")
        return rid
    hits = matches(text)
    if not hits:
        raise NotFound(f"no release matches {ref}{where}")
    if len(hits) > 1:
        raise Ambiguous(
            f"release id {ref} is ambiguous: {len(hits)} candidates: " + ", ".join(short(h) for h in hits), hits
        )
    return hits[0]


def canonical_json(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8. Used for trees and signed payloads."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
