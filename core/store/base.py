"""The ``Store`` interface shared by the local (file system / CVMFS) and HTTP stores.

Layout (DESIGN §2), identical on every backend::

    store.json                    {"schema": "depot-store/1", "digest": "sha256", "compression": "zstd"}
    objects/<2 hex>/<62 hex>      zstd-compressed bytes, named by sha256 of the UNcompressed bytes
    releases/<64 hex>.json        DSSE envelope of a release manifest; name = sha256(payload)
    channels/<name>.json          DSSE envelope of the current channel pointer (mutable, CAS)
    channels/<name>/<version>.json  every pointer ever issued
    index.json                    DSSE envelope: catalogue of releases (mutable, CAS)
    packs/<hex>.pack|.idx, packs/lists/<hex>.json   object packs (``core.store.packs``)
    packs/<hex>.sidx              packed layout only: where each object sits in the pack
                                  (``core.store.locator``); the trees and small file objects
                                  of such a store are not under ``objects/``

Backends move bytes; they never decide trust. Objects are verified on every read here
(``get_object``/``fetch_object_to``) because that costs nothing extra while streaming.
"""

from __future__ import annotations

import abc
import contextlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import BadInput, DepotError, NotFound, StoreError
from core.model.digest import hex_of, is_digest

STORE_SCHEMA = "depot-store/1"
#: The packed layout (``core.store.locator``): trees and small file objects only in packs. A new
#: schema, so that a console that predates it refuses the store instead of missing its objects.
PACKED_SCHEMA = "depot-store/2"
STORE_META = {"schema": STORE_SCHEMA, "digest": "sha256", "compression": "zstd"}
LAYOUTS = ("loose", "packed")


def store_meta(layout: str = "loose") -> bytes:
    """The ``store.json`` of a new store of ``layout`` ("loose": every object a file; "packed")."""
    if layout not in LAYOUTS:
        raise BadInput(f"unknown store layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    meta = dict(STORE_META)
    if layout == "packed":
        meta.update(schema=PACKED_SCHEMA, layout="packed")
    return json.dumps(meta, sort_keys=True).encode() + b"\n"


def layout_of(meta: object, where: str) -> str:
    """The layout a parsed ``store.json`` declares (``BadInput`` for a schema this console lacks)."""
    schema = meta.get("schema") if isinstance(meta, dict) else None
    if schema == STORE_SCHEMA:
        return "loose"
    if schema == PACKED_SCHEMA and isinstance(meta, dict) and meta.get("layout") == "packed":
        return "packed"
    shown = repr(schema)[:40] if isinstance(schema, (str, int)) else "none"
    raise BadInput(
        f"unsupported store schema at {where} (store.json says {shown}, expected {STORE_SCHEMA} or {PACKED_SCHEMA})"
    )


if TYPE_CHECKING:  # the locator (and zstd under it) loads only where a packed store is read
    from core.store.locator import Locator

CHANNEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def object_path(digest: str) -> str:
    """Relative path of an object in the store: ``objects/ab/cdef…``."""
    h = hex_of(digest)
    return f"objects/{h[:2]}/{h[2:]}"


def release_path(release_id: str) -> str:
    """Relative path of a release envelope: ``releases/<64 hex>.json``."""
    return f"releases/{hex_of(release_id)}.json"


def check_channel_name(name: str) -> str:
    """Channel names are short lower-case identifiers: they become file names."""
    if not CHANNEL_NAME_RE.match(name or ""):
        raise BadInput(f"invalid channel name {name!r}: use lower-case letters, digits, '.', '_' or '-'")
    return name


def channel_path(name: str) -> str:
    """Relative path of a channel's current pointer."""
    return f"channels/{check_channel_name(name)}.json"


def channel_history_path(name: str, version: int) -> str:
    """Relative path of one issued pointer version (write-once)."""
    return f"channels/{check_channel_name(name)}/{int(version)}.json"


class Store(abc.ABC):
    """A content-addressed depot store. Subclasses: ``LocalStore``, ``HttpStore``."""

    #: Human-readable location (a path or URL list) for headers and messages.
    location: str
    #: Layout "packed" (``core.store.locator``): trees and small file objects live only in packs.
    packed: bool = False
    _locator: Locator | None = None

    # -- packed layout ---------------------------------------------------------------------
    @property
    def locator(self) -> Locator:
        """Where this (packed) store's packed objects sit; its lookup files are read as needed."""
        if self._locator is None:
            from core.store.locator import LOOKUP_SUFFIX, Locator

            def listed() -> list[str]:
                try:
                    names = self.list_files("packs")
                except DepotError:  # a server that lists nothing: objects only packs hold are missing
                    names = []
                ids = ("sha256:" + n[: -len(LOOKUP_SUFFIX)] for n in names if n.endswith(LOOKUP_SUFFIX))
                return [i for i in ids if is_digest(i)]

            self._locator = Locator(listed, self.read_file)
        return self._locator

    def packed_location(self, digest: str) -> tuple[str, int, int] | None:
        """(pack id, offset, length) of ``digest``'s frame in a packed store's packs, or None
        (also for a loose store)."""
        return self.locator.locate(digest) if self.packed else None

    def packed_present(self, digests: set[str]) -> set[str]:
        """Which of ``digests`` a packed store's packs hold (none for a loose store)."""
        return self.locator.present(digests) if self.packed and digests else set()

    def packed_frame(self, digest: str, limit: int | None = None) -> bytes | None:
        """The stored bytes of an object that sits in a pack of a packed store (unverified, like
        ``read_object_raw``: every reader decodes and re-hashes them), or None. ``limit``: the
        most uncompressed bytes the reader accepts, which bounds what is read (``check_frame``)."""
        hit = self.packed_location(digest)
        if hit is None:
            return None
        from core.store.locator import check_frame

        pack_id, offset, length = hit
        check_frame(digest, length, limit)
        return self._read_pack(pack_id, offset, length)

    def _read_pack(self, pack_id: str, offset: int, length: int) -> bytes:
        """``length`` bytes of a pack at ``offset`` (a backend may read them more cheaply)."""
        return self.read_range(f"packs/{hex_of(pack_id)}.pack", offset, length)

    # -- objects -------------------------------------------------------------------------
    @abc.abstractmethod
    def has_object(self, digest: str) -> bool:
        """True if the object exists (not verified)."""

    def missing_objects(self, digests: Iterable[str]) -> set[str]:
        """The subset of ``digests`` not present in the store."""
        return {d for d in set(digests) if not self.has_object(d)}

    @abc.abstractmethod
    def put_object(self, digest: str, data: bytes) -> int:
        """Store uncompressed ``data`` under ``digest`` (write-once, atomic).

        Returns the number of compressed bytes written (0 if it already existed).
        Callers hash the data; backends trust the given digest only because publish computed it.
        """

    def put_object_file(self, digest: str, path: str) -> int:
        """Like ``put_object`` for a file on disk; backends may stream instead of reading it whole."""
        with open(path, "rb") as f:
            return self.put_object(digest, f.read())

    @abc.abstractmethod
    def get_object(self, digest: str, max_size: int | None = None) -> bytes:
        """Return the verified, uncompressed bytes of an object.

        Raises ``NotFound`` if absent and ``CorruptObject`` if the bytes do not hash to ``digest``
        or exceed ``max_size`` (the size the manifest promised).
        """

    def fetch_object_to(self, digest: str, dest: str, size: int | None = None) -> None:
        """Write the verified, uncompressed object to ``dest`` (created, not atomically renamed)."""
        data = self.get_object(digest, max_size=size)
        with open(dest, "wb") as f:
            f.write(data)

    def read_object_raw(self, digest: str) -> bytes:
        """The object's stored (zstd-compressed) bytes, unverified: publish copies them into packs.

        The default recompresses the verified object; backends return their stored bytes.
        """
        import zstandard

        return zstandard.ZstdCompressor(level=3).compress(self.get_object(digest))

    def fetch_many(
        self,
        jobs: Iterable[tuple[str, str, int | None]],
        *,
        max_workers: int = 8,
        on_done: Callable[[str, str], None] | None = None,
    ) -> int:
        """Fetch many objects in parallel: ``jobs`` are ``(digest, dest_path, size)``.

        At most ``max_workers`` downloads run at once (sharing the HTTP connection pool where there is one).
        ``on_done(digest, dest)`` is called (from a worker thread) after each verified object.
        The first failure cancels what has not started and is raised once running ones end.
        Returns the number of objects fetched.
        """

        def one(job: tuple[str, str, int | None]) -> None:
            digest, dest, size = job
            self.fetch_object_to(digest, dest, size)
            if on_done is not None:
                on_done(digest, dest)

        from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait  # not on a CLI verb's start-up

        jobs = list(jobs)
        with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
            futures = [pool.submit(one, job) for job in jobs]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for fut in pending:
                fut.cancel()
        for fut in futures:
            error = None if fut.cancelled() else fut.exception()
            if error is not None:
                raise error
        return len(jobs)

    @abc.abstractmethod
    def iter_objects(self) -> Iterator[str]:
        """Every object digest in the store (for gc and deep verify)."""

    @abc.abstractmethod
    def delete_object(self, digest: str) -> int:
        """Delete an object; return the stored (compressed) bytes freed."""

    @abc.abstractmethod
    def object_stored_size(self, digest: str) -> int:
        """Compressed size of an object on the store."""

    # -- small metadata files ------------------------------------------------------------
    @abc.abstractmethod
    def read_file(self, relpath: str) -> bytes | None:
        """Bytes of a metadata file (store.json, releases/…, channels/…, index.json), or None."""

    @abc.abstractmethod
    def write_file(self, relpath: str, data: bytes, *, overwrite: bool = False) -> None:
        """Write a metadata file atomically (temp then rename). Write-once unless ``overwrite``."""

    @abc.abstractmethod
    def compare_and_swap(self, relpath: str, expected: bytes | None, new: bytes) -> None:
        """Replace ``relpath`` with ``new`` only if its current bytes equal ``expected``.

        ``expected=None`` means "must not exist yet". Raises ``Conflict`` otherwise, changing nothing.
        """

    def read_range(self, relpath: str, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes of a file from ``offset`` (pack entries). ``NotFound`` if the file
        is absent, ``StoreError`` if it is shorter. The default reads the whole file."""
        data = self.read_file(relpath)
        if data is None:
            raise NotFound(f"{relpath} missing from store {self.location}")
        if offset + length > len(data):
            raise StoreError(f"{relpath} is shorter than {offset + length} bytes")
        return data[offset : offset + length]

    def delete_file(self, relpath: str) -> int:
        """Delete a derived file (a pack, its index, a pack list); return the bytes freed (0 if absent)."""
        raise StoreError(f"store {self.location} cannot delete files")

    def file_size(self, relpath: str) -> int:
        """Bytes ``delete_file(relpath)`` would free (0 when it is missing)."""
        return len(self.read_file(relpath) or b"")

    @abc.abstractmethod
    def list_files(self, reldir: str) -> list[str]:
        """Names (not paths) of the files directly in ``reldir`` (``releases``, ``channels``…)."""

    # -- conveniences built on the primitives --------------------------------------------
    def list_release_ids(self) -> list[str]:
        """Ids (``sha256:…``) of every release envelope in ``releases/``."""
        out = []
        for name in self.list_files("releases"):
            if name.endswith(".json") and len(name) == 69:
                d = "sha256:" + name[:-5]
                if is_digest(d):
                    out.append(d)
        return sorted(out)

    def list_channels(self) -> list[str]:
        """Names of channels that have a current pointer."""
        return sorted(n[:-5] for n in self.list_files("channels") if n.endswith(".json"))

    def publish_lock(self) -> AbstractContextManager[None]:  # pragma: no cover - overridden where locking is possible
        """Context manager held (shared) by publishers and (exclusive) by gc; a no-op by default."""
        return contextlib.nullcontext()

    def gc_lock(self, on_wait: Callable[[], None] | None = None) -> AbstractContextManager[None]:  # pragma: no cover
        """Exclusive counterpart of ``publish_lock``; ``on_wait()`` is called if it must wait."""
        return contextlib.nullcontext()

    def sync(self) -> None:  # noqa: B027 (an optional hook: a no-op unless the store can do better)
        """Make everything written so far durable (a barrier between publish steps); no-op by default."""

    def close(self) -> None:  # noqa: B027 (an optional hook: a no-op unless the store holds connections)
        """Release connections or handles."""


def ensure_relpath(relpath: str) -> str:
    """Reject store-relative paths that could escape the store."""
    parts = Path(relpath).parts
    if not relpath or relpath.startswith("/") or any(p in ("..", ".", "") for p in parts) or "\\" in relpath:
        raise BadInput(f"invalid store path {relpath!r}")
    return relpath
