"""core.store.codec: frames with and without their size in the header decode to the same bytes,
within the promise, with the same errors."""

from __future__ import annotations

import io
import os

import pytest
import zstandard

from core.errors import CorruptObject
from core.model.digest import digest_bytes
from core.store import codec
from core.store.codec import decode_verified

DATA = os.urandom(4096) * 64  # 256 KiB, compressible


def sized(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


def unsized(data: bytes) -> bytes:
    """A frame as stores written before sizes were recorded stream it: no content size."""
    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False) as w:
        w.write(data)
    frame = out.getvalue()
    assert zstandard.frame_content_size(frame) == -1
    return frame


@pytest.fixture(params=["preallocated", "streamed"])
def path(request, monkeypatch):
    """Both ways of decoding a frame without its size: one buffer of the promise, or a bounded stream."""
    if request.param == "streamed":
        monkeypatch.setattr(codec, "PREALLOCATE_MAX", 0)
    return request.param


@pytest.mark.parametrize("frame", [sized, unsized], ids=["sized", "unsized"])
def test_frame_within_promise_decodes(frame, path):
    assert decode_verified(frame(DATA), digest_bytes(DATA), len(DATA)) == DATA


@pytest.mark.parametrize("frame", [sized, unsized], ids=["sized", "unsized"])
def test_frame_past_promise_is_refused(frame, path):
    with pytest.raises(CorruptObject, match=f"larger than the {len(DATA) - 1} bytes the manifest promises"):
        decode_verified(frame(DATA), digest_bytes(DATA), len(DATA) - 1)


@pytest.mark.parametrize("frame", [sized, unsized], ids=["sized", "unsized"])
def test_other_bytes_are_refused(frame, path):
    other = DATA[:-1] + b"!"
    with pytest.raises(
        CorruptObject, match=f"object {digest_bytes(DATA)} is corrupt: its bytes hash to {digest_bytes(other)}"
    ):
        decode_verified(frame(other), digest_bytes(DATA), len(DATA))


def test_garbage_is_not_zstd_and_a_truncated_frame_is_corrupt(path):
    for frame in (b"not zstd at all", b""):
        with pytest.raises(CorruptObject, match="is not valid zstd data"):
            decode_verified(frame, digest_bytes(DATA), len(DATA))
    with pytest.raises(CorruptObject, match="is corrupt|is not valid zstd data"):
        decode_verified(unsized(DATA)[:-100], digest_bytes(DATA), len(DATA))


BIG = os.urandom(1 << 16) * 48 + b"tail not a multiple of the block size"  # 3 MiB + 37 bytes


@pytest.mark.parametrize("direct", [True, False], ids=["O_DIRECT", "buffered"])
@pytest.mark.parametrize("frame", [sized, unsized], ids=["sized", "unsized"])
def test_decode_to_file_writes_exact_bytes(tmp_path, monkeypatch, frame, direct):
    monkeypatch.setattr(codec, "_direct_ok", [direct])
    dest = tmp_path / "obj"
    assert codec.decode_to_file(frame(BIG), digest_bytes(BIG), len(BIG), str(dest)) == len(BIG)
    assert dest.read_bytes() == BIG and dest.stat().st_size == len(BIG)
    small = tmp_path / "small"  # below DIRECT_MIN, always an ordinary write; the buffer is reused
    assert codec.decode_to_file(frame(DATA), digest_bytes(DATA), len(DATA), str(small)) == len(DATA)
    assert small.read_bytes() == DATA


def test_decode_to_file_writes_nothing_unverified(tmp_path):
    dest = tmp_path / "obj"
    with pytest.raises(CorruptObject, match="is corrupt"):
        codec.decode_to_file(sized(BIG), digest_bytes(BIG[:-1] + b"?"), len(BIG), str(dest))
    with pytest.raises(CorruptObject, match="larger than"):
        codec.decode_to_file(unsized(BIG), digest_bytes(BIG), len(BIG) - 1, str(dest))
    assert not dest.exists()


def test_decode_to_file_falls_back_where_o_direct_is_refused(tmp_path, monkeypatch):
    """A file system without O_DIRECT (open fails with EINVAL) gets an ordinary write, and the
    process stops trying."""
    real_open = os.open

    def no_direct(path, flags, *args, **kwargs):
        if flags & os.O_DIRECT:
            raise OSError(22, "Invalid argument")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(codec, "_direct_ok", [True])
    monkeypatch.setattr(codec.os, "open", no_direct)
    dest = tmp_path / "obj"
    codec.decode_to_file(sized(BIG), digest_bytes(BIG), len(BIG), str(dest))
    assert dest.read_bytes() == BIG and codec._direct_ok == [False]
