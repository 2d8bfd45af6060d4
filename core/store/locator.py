"""Where an object of a packed store lives: one binary lookup file per pack (``packs/<hex>.sidx``).

A store of layout ``packed`` (``store.json`` schema ``depot-store/2``, DESIGN §2: "packing small
objects … keep the logical model") keeps its trees and its file objects up to ``PACK_MAX_OBJECT``
only in the image packs; large objects stay loose. Readers that ask for an object by digest
(``LocalStore.get_object``, verify, gc marking, diff, export, CVMFS publish) find it through the
lookup files, so the logical model (an object is named by its digest, wherever its bytes sit) is
unchanged. Nodes over HTTP do not use these files: they read the release's pack list and JSON
indexes, as for any store (``core.store.packs``).

A lookup file (little-endian)::

    b"DSIDX1\\0\\0"           magic, 8 bytes
    u32 count
    u32 fanout[256]           digests whose first byte is <= i (cumulative; fanout[255] == count)
    count x 32 bytes          the raw sha256 digests, sorted
    count x u64               where each one's zstd frame starts in the pack (same order)
    count x u32               how long each frame is

Written once beside its pack and index (``encode_lookup``); the pack's name is still the sha256 of
its bytes. Like the index, it is unsigned and needs not be: whatever it points at is decompressed
within its bound and re-hashed by the reader (``decode_verified``), so a lying lookup file gives a
``CorruptObject`` or ``NotFound``, never wrong bytes. One that does not parse is ignored.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterable

from core.errors import CorruptObject
from core.model.digest import hex_of
from core.store.codec import compressed_bound

MAGIC = b"DSIDX1\0\0"
_HEAD = struct.Struct("<8sI256I")
_OFF, _LEN = struct.Struct("<Q"), struct.Struct("<I")
LOOKUP_SUFFIX = ".sidx"


#: Most compressed bytes a lookup entry may point at: the frame of the largest tree
#: (``core.store.trees.MAX_TREE_BYTES``, 256 MiB), whatever the unsigned entry claims.
MAX_FRAME = compressed_bound(256 << 20)


def check_frame(digest: str, length: int, limit: int | None = None) -> None:
    """``CorruptObject`` unless ``length`` compressed bytes can be an honest frame of ``digest``
    (at most ``limit`` bytes uncompressed when the reader knows it), before any byte is read."""
    bound = compressed_bound(limit) if limit is not None else MAX_FRAME
    if length > bound:
        raise CorruptObject(f"object {digest}: a pack entry of {length} bytes cannot hold it (at most {bound})")


def lookup_path(pack_id: str) -> str:
    """``packs/<hex>.sidx``: the lookup file of one pack."""
    return f"packs/{hex_of(pack_id)}{LOOKUP_SUFFIX}"


def encode_lookup(entries: Iterable[tuple[str, int, int]]) -> bytes:
    """The lookup file of a pack whose ``entries`` are ``(digest, offset, length)`` (this
    publish's own digests: ``sha256:`` and 64 lower-case hex digits)."""
    rows = sorted({d[7:]: (off, n) for d, off, n in entries}.items())  # hex order is byte order
    count = len(rows)
    keys = bytes.fromhex("".join(h for h, _ in rows))
    firsts = keys[::32]
    fanout, total = [], 0
    for i in range(256):
        total += firsts.count(i)
        fanout.append(total)
    return b"".join(
        [
            _HEAD.pack(MAGIC, count, *fanout),
            keys,
            struct.pack(f"<{count}Q", *(off for _, (off, _n) in rows)),
            struct.pack(f"<{count}I", *(n for _, (_off, n) in rows)),
        ]
    )


class Lookup:
    """One parsed lookup file: ``find`` by binary search within the digest's fanout bucket."""

    def __init__(self, pack_id: str, data: bytes) -> None:
        if len(data) < _HEAD.size:
            raise ValueError("short header")
        magic, count, *fanout = _HEAD.unpack_from(data)
        if magic != MAGIC or len(data) != _HEAD.size + count * (32 + _OFF.size + _LEN.size) or fanout[255] != count:
            raise ValueError("not a lookup file")
        if any(a > b for a, b in zip(fanout, fanout[1:])):
            raise ValueError("fanout not sorted")
        self.pack = pack_id
        self.count = count
        self._data = data
        self._fanout = fanout
        self._offs = _HEAD.size + 32 * count
        self._lens = self._offs + _OFF.size * count
        self._all: set[bytes] | None = None

    def _key(self, i: int) -> bytes:
        base = _HEAD.size + 32 * i
        return self._data[base : base + 32]

    def find(self, raw: bytes) -> tuple[int, int] | None:
        """(offset, length) of the object whose raw digest is ``raw``, or None."""
        lo = self._fanout[raw[0] - 1] if raw[0] else 0
        hi = self._fanout[raw[0]]
        while lo < hi:
            mid = (lo + hi) // 2
            key = self._key(mid)
            if key < raw:
                lo = mid + 1
            elif key > raw:
                hi = mid
            else:
                (off,) = _OFF.unpack_from(self._data, self._offs + _OFF.size * mid)
                (n,) = _LEN.unpack_from(self._data, self._lens + _LEN.size * mid)
                return off, n
        return None

    def digests(self) -> set[bytes]:
        """Every raw digest listed (built once, for checks of many digests at a time)."""
        if self._all is None:
            self._all = {self._key(i) for i in range(self.count)}
        return self._all


class Locator:
    """The lookup files of one store, read as needed; the pack that answered last is asked first
    (the objects one reader asks for in a row mostly sit in one release's packs).

    ``list_packs`` names the lookup files present (``packs/*.sidx``); ``read`` returns one's bytes
    (or None). A digest not found is looked up again after a fresh listing, once per call, so a
    pack written since (another publish) is seen. Thread-safe (publish asks from its pool)."""

    def __init__(self, list_packs: Callable[[], Iterable[str]], read: Callable[[str], bytes | None]) -> None:
        self._list = list_packs
        self._read = read
        self._lookups: list[Lookup] = []
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def _refresh(self) -> bool:
        """Read lookup files not seen yet; whether any was added."""
        added = False
        for pack_id in self._list():
            if pack_id in self._known:
                continue
            self._known.add(pack_id)
            data = self._read(lookup_path(pack_id))
            if data is None:
                continue
            try:
                self._lookups.append(Lookup(pack_id, data))
            except (ValueError, struct.error):
                continue  # unusable: objects only it would find are reported missing
            added = True
        return added

    def _search(self, raw: bytes) -> tuple[str, int, int] | None:
        for i, lk in enumerate(self._lookups):
            hit = lk.find(raw)
            if hit is not None:
                if i:
                    self._lookups.insert(0, self._lookups.pop(i))
                return lk.pack, hit[0], hit[1]
        return None

    def locate(self, digest: str) -> tuple[str, int, int] | None:
        """(pack id, offset, length) of ``digest``'s frame, or None if no pack holds it."""
        raw = bytes.fromhex(hex_of(digest))
        with self._lock:
            if not self._known:
                self._refresh()
            hit = self._search(raw)
            if hit is None and self._refresh():
                hit = self._search(raw)
            return hit

    def present(self, digests: Iterable[str]) -> set[str]:
        """Which of ``digests`` some pack holds (one set per lookup file, not a search each)."""
        with self._lock:
            self._refresh()
            if not self._lookups:
                return set()
            wanted = {bytes.fromhex(hex_of(d)): d for d in digests}
            found: set[str] = set()
            for lk in self._lookups:
                if not wanted:
                    break
                hits = wanted.keys() & lk.digests()
                found.update(wanted.pop(r) for r in hits)
            return found

    def forget(self) -> None:
        """Drop what was read (after gc deleted packs)."""
        with self._lock:
            self._lookups.clear()
            self._known.clear()
