"""Decoding one stored object: a zstd frame, decompressed within its promised size and re-hashed.

Every reader that holds a whole frame in memory (a pack entry, a loose object read in one piece
over HTTP or from a local store) goes through ``decode_verified``, so the bound and the error
messages are the same wherever the bytes came from. Decompression and hashing run in C with the
GIL released, which is why a whole-frame decode is cheaper under threads than a chunked stream.
"""
from __future__ import annotations

import hashlib
import threading

import zstandard

from ..errors import CorruptObject

_local = threading.local()


def compressed_bound(size: int) -> int:
    """Most compressed bytes a zstd frame of ``size`` uncompressed bytes can take, with slack.

    zstd's worst case is ``size + size/256 + 64 KiB``-ish (raw blocks plus headers); anything
    longer is not an honest encoding of ``size`` bytes, so the reader stops there.
    """
    return size + (size >> 7) + (1 << 16)


def _dctx() -> zstandard.ZstdDecompressor:
    dctx = getattr(_local, "dctx", None)
    if dctx is None:
        dctx = _local.dctx = zstandard.ZstdDecompressor()
    return dctx


def decode_verified(frame: bytes | memoryview, digest: str, limit: int, where: str | None = None) -> bytes:
    """The content of ``frame``, checked to be at most ``limit`` bytes and to hash to ``digest``.

    ``where`` names the object in errors (default ``object <digest>``). Raises ``CorruptObject``
    for a frame that is not zstd, that decompresses past ``limit`` (never more than one byte past
    it is produced), or whose content hashes to something else.
    """
    where = where or f"object {digest}"
    try:
        declared = zstandard.frame_content_size(frame)
        if declared > limit:
            raise CorruptObject(f"{where} is larger than the {limit} bytes the manifest promises")
        if declared >= 0:
            data = _dctx().decompress(frame)
        else:  # no size in the frame header: read at most one byte past the promise
            reader = _dctx().stream_reader(bytes(frame))
            parts, got = [], 0
            while got <= limit and (chunk := reader.read(limit + 1 - got)):
                parts.append(chunk)
                got += len(chunk)
            data = b"".join(parts)
            if len(data) > limit:
                raise CorruptObject(f"{where} is larger than the {limit} bytes the manifest promises")
    except zstandard.ZstdError as exc:
        raise CorruptObject(f"{where} is not valid zstd data: {exc}") from None
    got = "sha256:" + hashlib.sha256(data).hexdigest()
    if got != digest:
        raise CorruptObject(f"{where} is corrupt: its bytes hash to {got}")
    return data


__all__ = ["decode_verified", "compressed_bound"]
