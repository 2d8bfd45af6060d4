"""Decoding one stored object: a zstd frame, decompressed within its promised size and re-hashed.

Every reader that holds a whole frame in memory (a pack entry, a loose object read in one piece
over HTTP or from a local store) goes through ``decode_verified``, so the bound and the error
messages are the same wherever the bytes came from. Decompression and hashing run in C with the
GIL released, which is why a whole-frame decode is cheaper under threads than a chunked stream.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import mmap
import os
import threading
from typing import Any

import zstandard

from core.errors import CorruptObject

_local = threading.local()
#: Largest object accepted when the caller gives no size.
MAX_OBJECT_BYTES = 1 << 34
#: Objects at least this large are written with ``O_DIRECT`` (see ``decode_to_file``).
DIRECT_MIN = 1 << 20
_ALIGN = 4096
#: Whether this process may still try ``O_DIRECT`` (cleared the first time a file system refuses it).
_direct_ok = [hasattr(os, "O_DIRECT")]
#: A frame without its size in the header is decompressed into one buffer of the promised size
#: when the promise is at most this; beyond, it is streamed (a lying store cannot make the node
#: reserve a tree's 256 MiB bound for every tree).
PREALLOCATE_MAX = 32 << 20
_STREAM_CHUNK = 1 << 20


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


def _stream_bounded(frame: bytes | memoryview, limit: int) -> bytes:
    """Decompress at most ``limit + 1`` bytes of ``frame`` (a longer result means a lie)."""
    reader = _dctx().stream_reader(bytes(frame))
    parts, got = [], 0
    while got <= limit and (chunk := reader.read(min(_STREAM_CHUNK, limit + 1 - got))):
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def decode_stream(source: Any, digest: str, limit: int, sink: Any, read_size: int = 1 << 16) -> int:
    """Decompress the zstd stream ``source`` (``read()``-able) into ``sink`` (``write()``-able),
    hashing as it goes and never producing more than one byte past ``limit``; return the size.
    For objects too large to decode in one piece. Raises ``CorruptObject`` as ``decode_verified``
    does; ``sink`` then holds unverified bytes, which the caller discards."""
    h = hashlib.sha256()
    total = 0
    try:
        reader = _dctx().stream_reader(source, read_size=read_size)
        while chunk := reader.read(min(_STREAM_CHUNK, limit - total + 1)):
            total += len(chunk)
            if total > limit:
                raise CorruptObject(f"object {digest} is larger than the {limit} bytes the manifest promises")
            h.update(chunk)
            sink.write(chunk)
    except zstandard.ZstdError as exc:
        raise CorruptObject(f"object {digest} is not valid zstd data: {exc}") from None
    got = "sha256:" + h.hexdigest()
    if got != digest:
        raise CorruptObject(f"object {digest} is corrupt: its bytes hash to {got}")
    return total


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
        elif limit <= PREALLOCATE_MAX:  # no size in the header: one buffer of the promise (+1 byte)
            try:
                data = _dctx().decompress(frame, max_output_size=limit + 1)
            except zstandard.ZstdError:  # invalid, or longer than the buffer: let the stream say which
                data = _stream_bounded(frame, limit)
        else:
            data = _stream_bounded(frame, limit)
        if len(data) > limit:
            raise CorruptObject(f"{where} is larger than the {limit} bytes the manifest promises")
    except zstandard.ZstdError as exc:
        raise CorruptObject(f"{where} is not valid zstd data: {exc}") from None
    got = "sha256:" + hashlib.sha256(data).hexdigest()
    if got != digest:
        raise CorruptObject(f"{where} is corrupt: its bytes hash to {got}")
    return data


def _buffer(size: int) -> mmap.mmap:
    """This thread's page-aligned scratch buffer, at least ``size`` bytes (grown, then reused)."""
    buf = getattr(_local, "buf", None)
    if buf is None or len(buf) < size:
        buf = _local.buf = mmap.mmap(-1, max(size, 1 << 20))
    return buf


def decode_to_file(frame: bytes | memoryview, digest: str, limit: int, path: str, where: str | None = None) -> int:
    """Decode ``frame`` as ``decode_verified`` does and write the content to a new file ``path``
    (mode 0644, the caller gives the final one); return its size. Nothing is written unless the
    content verifies. ``limit`` must be at most ``PREALLOCATE_MAX``.

    Why not ``decode_verified`` plus a write: the content is decompressed into this thread's
    reused, page-aligned buffer, and objects of ``DIRECT_MIN`` or more go to disk with
    ``O_DIRECT``, bypassing the page cache. On a node both matter: freshly allocated memory and
    page-cache pages cost a page fault each on first touch (in a VM, a trip to the hypervisor),
    which made writing 475 MB through the page cache 4x slower than ``O_DIRECT`` here; and a
    hydrate then does not evict the node's working set for files read only when a job starts.
    File systems without ``O_DIRECT`` get an ordinary write.
    """
    where = where or f"object {digest}"
    if limit > PREALLOCATE_MAX:
        raise ValueError(f"decode_to_file: limit {limit} above {PREALLOCATE_MAX}")
    padded = -(-(limit + 1) // _ALIGN) * _ALIGN
    buf = _buffer(padded)
    view = memoryview(buf)
    try:
        declared = zstandard.frame_content_size(frame)
        if declared > limit:
            raise CorruptObject(f"{where} is larger than the {limit} bytes the manifest promises")
        reader = _dctx().stream_reader(frame)
        n = 0
        while n <= limit and (k := reader.readinto(view[n : limit + 1])):
            n += k
    except zstandard.ZstdError as exc:
        raise CorruptObject(f"{where} is not valid zstd data: {exc}") from None
    if n > limit:
        raise CorruptObject(f"{where} is larger than the {limit} bytes the manifest promises")
    got = "sha256:" + hashlib.sha256(view[:n]).hexdigest()
    if got != digest:
        raise CorruptObject(f"{where} is corrupt: its bytes hash to {got}")
    _write_new(path, view, n)
    return n


def _write_new(path: str, view: memoryview, n: int) -> None:
    """Create ``path`` holding ``view[:n]``; ``view`` is page-aligned with room to pad ``n`` to
    a whole block, as ``O_DIRECT`` requires (the padding is cut off again with ``ftruncate``)."""
    direct = n >= DIRECT_MIN and _direct_ok[0]
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | (os.O_DIRECT if direct else 0), 0o644)
    except OSError as exc:
        if not direct or exc.errno != errno.EINVAL:
            raise
        _direct_ok[0] = direct = False
        fd = os.open(path, flags, 0o644)
    try:
        if direct:
            padded = -(-n // _ALIGN) * _ALIGN
            view[n:padded] = bytes(padded - n)
            try:
                _write_all(fd, view[:padded])
                os.ftruncate(fd, n)
                return
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # the device wants a larger alignment: write normally
                    raise
                _direct_ok[0] = False
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
        _write_all(fd, view[:n])
    finally:
        os.close(fd)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        written = os.write(fd, data)
        if written <= 0:
            raise OSError(errno.EIO, "write made no progress")
        data = data[written:]


__all__ = ["decode_verified", "decode_to_file", "decode_stream", "compressed_bound"]
