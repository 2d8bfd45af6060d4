"""The store on a local file system (also a CernVM-FS transaction directory).

Every write goes to a temporary name in the same directory and is renamed into place (objects:
an unnamed ``O_TMPFILE`` inode linked into place, where the file system allows), so an object,
tree or release is visible only once complete; a killed publish leaves at most stray ``.tmp-*``
files, which ``gc`` removes. Channel and index updates are compare-and-swap under an
``fcntl`` lock file, so racing promotes on one machine (or over NFS with working locks) lose no
update. Publish holds a shared lock for its whole duration and ``gc`` an exclusive one, so gc
can never delete an object that a running publish has just decided to reuse.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

import zstandard

from core.durable import atomic_write, ensure_dir, syncfs
from core.errors import BadInput, Conflict, CorruptObject, NotFound, StoreError
from core.model.digest import is_digest
from core.store.base import Store, ensure_relpath, layout_of, object_path, store_meta
from core.store.codec import (
    MAX_OBJECT_BYTES,
    PREALLOCATE_MAX,
    compressed_bound,
    decode_stream,
    decode_to_file,
    decode_verified,
)

ZSTD_LEVEL = 3
_TMP_PREFIX = ".tmp-"

DIR_MODE = 0o755  # store directories: readable by all (nginx, nodes), writable only by the publisher
OBJECT_MODE = 0o444

#: Whether objects may be written as unnamed ``O_TMPFILE`` inodes linked into place (Linux with
#: ``/proc``); cleared the first time a file system refuses (then: temp name + link, as before).
_tmpfile_ok = [hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")]
_TMPFILE_REFUSED = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL}
#: ``missing_objects``: bytes a directory entry of an object takes at least (ext4: 8 + 62, rounded
#: to 4), and how many entries a listing may hold per digest asked about before a ``stat`` each
#: is cheaper (a listing costs ~0.1 µs per name, a ``stat`` ~3 µs).
_DIRENT_BYTES = 64
_LIST_RATIO = 20


class LocalStore(Store):
    """A store rooted at a directory. Use ``LocalStore.create`` or ``LocalStore.open``."""

    def __init__(self, root: Path, *, durable: bool = False) -> None:
        self.root = Path(root)
        self.location = str(self.root)
        self._root_str = str(self.root)
        self.durable = durable
        self._local = threading.local()  # zstd contexts are not thread-safe: one per thread
        self._known_dirs: set[str] = set()
        self._pack_fds: dict[str, int] = {}  # packed layout: pack id -> an open descriptor
        self._fd_lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------
    @classmethod
    def create(cls, root: Path, layout: str = "loose") -> LocalStore:
        """Create an empty store of ``layout`` (idempotent on an existing store: its layout stays)."""
        root = Path(root)
        meta_bytes = store_meta(layout)  # checks the layout before anything is made
        ensure_dir(root, DIR_MODE)
        for sub in ("objects", "releases", "channels"):
            ensure_dir(root / sub, DIR_MODE)
        meta = root / "store.json"
        if not meta.exists():
            store = cls(root)
            store.write_file("store.json", meta_bytes)
        store = cls.open(root)
        if layout == "packed" and not store.packed:
            raise BadInput(f"the store at {root} already exists with layout 'loose'; a layout is chosen at creation")
        return store

    @classmethod
    def open(cls, root: Path) -> LocalStore:
        """Open an existing store, checking ``store.json``."""
        root = Path(root)
        meta_path = root / "store.json"
        try:
            meta = json.loads(meta_path.read_bytes())
        except FileNotFoundError:
            raise NotFound(f"no depot store at {root} (store.json missing)") from None
        except (OSError, ValueError, RecursionError) as exc:
            raise BadInput(f"unreadable store.json at {root}: {exc}") from None
        store = cls(root)
        store.packed = layout_of(meta, str(root)) == "packed"
        return store

    # -- helpers -------------------------------------------------------------------------
    @property
    def _cctx(self) -> zstandard.ZstdCompressor:
        cctx = getattr(self._local, "cctx", None)
        if cctx is None:
            cctx = self._local.cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        return cctx

    def _path(self, relpath: str) -> Path:
        return self.root / ensure_relpath(relpath)

    def _atomic_write(self, dest: Path, chunks: Iterable[bytes] | bytes, *, overwrite: bool, mode: int = 0o444) -> int:
        """``atomic_write`` with the store's ``.tmp-`` prefix (what gc sweeps) and durability."""
        parent = dest.parent
        key = str(parent)
        if key not in self._known_dirs:
            ensure_dir(parent, DIR_MODE)
            self._known_dirs.add(key)
        return atomic_write(dest, chunks, mode, overwrite=overwrite, durable=self.durable, tmp_prefix=_TMP_PREFIX)

    def _object_file(self, digest: str) -> str:
        """The object's path as a string (``object_path`` checks the digest; no pathlib per object)."""
        return os.path.join(self._root_str, object_path(digest))

    # -- objects -------------------------------------------------------------------------
    def has_object(self, digest: str) -> bool:
        return os.path.exists(self._object_file(digest)) or self.packed_location(digest) is not None

    def missing_objects(self, digests: Iterable[str]) -> set[str]:
        """The digests not in the store. Per fan-out directory: one listing when it is small
        next to the number of digests asked about in it (a publish into a store of a few
        releases: one ``scandir`` instead of thousands of ``stat``), else a ``stat`` each."""
        buckets: dict[str, list[str]] = {}
        for d in set(digests):
            rel = object_path(d)  # checks the digest
            buckets.setdefault(rel[8:10], []).append(d)
        missing: set[str] = set()
        objects = os.path.join(self._root_str, "objects")
        exists = os.path.exists
        for sub, wanted in buckets.items():
            path = os.path.join(objects, sub)
            try:
                st_size = os.stat(path).st_size
            except FileNotFoundError:
                missing.update(wanted)
                continue
            if len(wanted) >= 16 and st_size // _DIRENT_BYTES <= _LIST_RATIO * len(wanted):
                try:
                    present = set(os.listdir(path))
                except FileNotFoundError:
                    present = set()
                missing.update(d for d in wanted if d[9:] not in present)
            else:
                missing.update(d for d in wanted if not exists(os.path.join(path, d[9:])))
        return missing - self.packed_present(missing)

    def encode_object(self, data: bytes) -> bytes:
        """The stored form of ``data``: one zstd frame with its content size in the header."""
        return self._cctx.compress(data)

    def put_object(self, digest: str, data: bytes) -> int:
        if os.path.exists(self._object_file(digest)):
            return 0
        return self.put_object_frame(digest, self._cctx.compress(data))

    def put_object_frame(self, digest: str, frame: bytes) -> int:
        """Store an already encoded object (``encode_object`` of the bytes ``digest`` names),
        write-once and atomic; the bytes written, 0 if the object was already there."""
        return self.put_object_frames([(digest, frame)])[0]

    def put_object_frames(self, items: list[tuple[str, bytes]]) -> list[int]:
        """``put_object_frame`` for many objects; the bytes written for each (0: already there).

        Not durable mode: each frame goes into an unnamed ``O_TMPFILE`` inode of its fan-out
        directory, which ``linkat`` then names: an object appears complete or not at all, a kill
        leaves nothing behind (not even a ``.tmp-*`` file), and an existing object is never
        replaced. Per object: ``open``, ``write``, ``fchmod``, ``linkat``, ``close``, all relative
        to one descriptor of ``objects/`` held for the batch; the publish's ``syncfs`` makes them
        durable before the release names them. Durable mode, or a file system without
        ``O_TMPFILE``: a temp name, fsync, link (``atomic_write``), as every other store write.
        """
        for digest, _ in items:
            parent = os.path.dirname(self._object_file(digest))  # checks every digest first
            if parent not in self._known_dirs:
                ensure_dir(parent, DIR_MODE)
                self._known_dirs.add(parent)
        out: list[int] = []
        if not self.durable and _tmpfile_ok[0]:
            objfd = os.open(os.path.join(self._root_str, "objects"), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                for digest, frame in items:
                    n = self._put_tmpfile(objfd, digest, frame)
                    if n is None:  # this file system refuses O_TMPFILE: the rest the portable way
                        break
                    out.append(n)
            finally:
                os.close(objfd)
        for digest, frame in items[len(out) :]:
            dest = Path(self._object_file(digest))
            out.append(self._atomic_write(dest, frame, overwrite=False, mode=OBJECT_MODE))
        return out

    @staticmethod
    def _put_tmpfile(objfd: int, digest: str, frame: bytes) -> int | None:
        """One object through ``O_TMPFILE`` + ``linkat`` under ``objects/`` (``objfd``): the bytes
        written, 0 if it existed, None if the file system refuses ``O_TMPFILE``."""
        h = digest[7:]
        try:
            fd = os.open(h[:2], os.O_WRONLY | os.O_TMPFILE | os.O_CLOEXEC, OBJECT_MODE, dir_fd=objfd)
        except OSError as exc:
            if exc.errno not in _TMPFILE_REFUSED:
                raise
            _tmpfile_ok[0] = False
            return None
        try:
            view = memoryview(frame)
            while view:
                n = os.write(fd, view)
                if n <= 0:
                    raise OSError(errno.EIO, f"write of object {digest} made no progress")
                view = view[n:]
            os.fchmod(fd, OBJECT_MODE)  # whatever the umask
            try:  # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N names the inode (a dir_fd forces linkat)
                os.link(f"/proc/self/fd/{fd}", f"{h[:2]}/{h[2:]}", dst_dir_fd=objfd, follow_symlinks=True)
            except FileExistsError:
                return 0
        finally:
            os.close(fd)
        return len(frame)

    def put_object_file(self, digest: str, path: str) -> int:
        dest = self.root / object_path(digest)
        if dest.exists():
            return 0
        size = os.path.getsize(path)
        if size <= (8 << 20):
            with open(path, "rb") as f:
                return self.put_object_frame(digest, self._cctx.compress(f.read()))
        cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL)  # the size goes in the frame header: readers
        # then decompress into one buffer of exactly that size (core.store.codec)

        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as f:
                yield from cctx.read_to_iter(f, size=size, read_size=1 << 20, write_size=1 << 20)

        return self._atomic_write(dest, chunks(), overwrite=False)

    def _read_pack(self, pack_id: str, offset: int, length: int) -> bytes:
        """One ``pread`` on a descriptor kept open per pack: a reader of tens of thousands of
        packed objects (verify, diff, export) opens each pack once."""
        data = os.pread(self._pack_fd(pack_id), length, offset)
        if len(data) != length:
            raise StoreError(f"pack {pack_id[7:19]} in store {self.root} is shorter than {offset + length} bytes")
        return data

    def _pack_fd(self, pack_id: str) -> int:
        with self._fd_lock:
            fd = self._pack_fds.get(pack_id)
            if fd is None:
                path = os.path.join(self._root_str, "packs", pack_id[7:] + ".pack")
                try:
                    fd = self._pack_fds[pack_id] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    raise NotFound(f"pack {pack_id[7:19]} missing from store {self.root}") from None
            return fd

    def _close_packs(self) -> None:
        with self._fd_lock:
            for fd in self._pack_fds.values():
                os.close(fd)
            self._pack_fds.clear()

    def close(self) -> None:
        self._close_packs()

    def _open_loose(self, digest: str) -> BinaryIO:
        try:
            return open(self.root / object_path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"object {digest} missing from store") from None

    def get_object(self, digest: str, max_size: int | None = None) -> bytes:
        raw = self.packed_frame(digest, max_size)  # packed store: small objects, no failed open first
        if raw is None:
            with self._open_loose(digest) as f:
                raw = f.read()
        return decode_verified(raw, digest, max_size if max_size is not None else MAX_OBJECT_BYTES)

    def fetch_object_to(self, digest: str, dest: str, size: int | None = None) -> None:
        raw = self.packed_frame(digest, size)
        if raw is not None:
            decode_to_file(raw, digest, size if size is not None else MAX_OBJECT_BYTES, dest)
            return
        if size is not None and size <= PREALLOCATE_MAX:
            with self._open_loose(digest) as src:
                raw = src.read(compressed_bound(size) + 1)
            if len(raw) > compressed_bound(size):
                raise CorruptObject(f"object {digest}: its compressed bytes cannot hold the {size} bytes promised")
            decode_to_file(raw, digest, size, dest)
            return
        with self._open_loose(digest) as src, open(dest, "wb") as out:
            decode_stream(src, digest, size if size is not None else MAX_OBJECT_BYTES, out, read_size=1 << 20)

    def read_object_raw(self, digest: str) -> bytes:
        raw = self.packed_frame(digest)
        if raw is not None:
            return raw
        with self._open_loose(digest) as f:
            return f.read()

    def iter_objects(self) -> Iterator[str]:
        """The loose objects (what gc may delete one by one; packed ones go with their packs)."""
        objects = self.root / "objects"
        for sub in sorted(os.listdir(objects)):
            if len(sub) != 2:
                continue
            for name in sorted(os.listdir(objects / sub)):
                d = "sha256:" + sub + name
                if is_digest(d):
                    yield d

    def delete_object(self, digest: str) -> int:
        return self.delete_file(object_path(digest))

    def object_stored_size(self, digest: str) -> int:
        try:
            return (self.root / object_path(digest)).stat().st_size
        except FileNotFoundError:
            hit = self.packed_location(digest)
            if hit is None:
                raise NotFound(f"object {digest} missing from store") from None
            return hit[2]

    def stray_temp_files(self) -> list[Path]:
        """Temporary files left by killed writers (removed by gc)."""
        return [p for p in self.root.rglob(_TMP_PREFIX + "*") if p.is_file()]

    # -- metadata files ------------------------------------------------------------------
    def read_file(self, relpath: str) -> bytes | None:
        try:
            return self._path(relpath).read_bytes()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise BadInput(f"store path {relpath} is a directory") from None
        except OSError as exc:
            raise StoreError(f"cannot read {relpath} from store {self.root}: {exc.strerror}") from None

    def write_file(self, relpath: str, data: bytes, *, overwrite: bool = False) -> None:
        dest = self._path(relpath)
        if not overwrite and dest.exists():
            if dest.read_bytes() == data:
                return
            raise Conflict(f"{relpath} already exists in the store with other content")
        self._atomic_write(dest, data, overwrite=overwrite, mode=0o644)

    def read_range(self, relpath: str, offset: int, length: int) -> bytes:
        try:
            with open(self._path(relpath), "rb") as f:
                f.seek(offset)
                data = f.read(length)
        except FileNotFoundError:
            raise NotFound(f"{relpath} missing from store {self.root}") from None
        except OSError as exc:
            raise StoreError(f"cannot read {relpath} from store {self.root}: {exc.strerror}") from None
        if len(data) != length:
            raise StoreError(f"{relpath} in store {self.root} is shorter than {offset + length} bytes")
        return data

    def file_size(self, relpath: str) -> int:
        try:
            return self._path(relpath).stat().st_size
        except FileNotFoundError:
            return 0

    def delete_file(self, relpath: str) -> int:
        p = self._path(relpath)
        try:
            size = p.stat().st_size
            p.unlink()
        except FileNotFoundError:
            return 0
        if self._locator is not None and relpath.startswith("packs/"):
            self._locator.forget()  # gc deleted a pack: read the lookup files again when next asked
            self._close_packs()
        return size

    @contextlib.contextmanager
    def _lock(self, name: str, kind: int, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        lock_dir = self.root / "locks"
        ensure_dir(lock_dir, DIR_MODE, parents=False)
        with open(os.open(lock_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644), "a+b") as f:
            try:
                fcntl.flock(f, kind | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait:
                    on_wait()
                fcntl.flock(f, kind)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def compare_and_swap(self, relpath: str, expected: bytes | None, new: bytes) -> None:
        dest = self._path(relpath)
        with self._lock(relpath.replace("/", "__"), fcntl.LOCK_EX):
            try:
                current = dest.read_bytes()
            except FileNotFoundError:
                current = None
            if current != expected:
                raise Conflict(f"{relpath}: moved meanwhile")
            before = dest.stat().st_mtime if current is not None else None
            self._atomic_write(dest, new, overwrite=True, mode=0o644)
            if before is not None and int(dest.stat().st_mtime) <= int(before):
                # HTTP validators (nginx's ETag and Last-Modified) have one-second granularity: a
                # same-size rewrite within the second would revalidate as "not modified" in every
                # cache in front of the store. Move the mtime on to the next second.
                later = float(int(before) + 1)
                os.utime(dest, (later, later))

    def list_files(self, reldir: str) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(self._path(reldir)) if e.is_file() and not e.name.startswith("."))
        except FileNotFoundError:
            return []

    def sync(self) -> None:
        """One ``syncfs(2)`` of the store's file system: orders "objects and trees durable" before
        "release visible" at a fraction of the cost of an fsync per object."""
        syncfs(self.root)

    def publish_lock(self) -> AbstractContextManager[None]:
        return self._lock("gc", fcntl.LOCK_SH)

    def gc_lock(self, on_wait: Callable[[], None] | None = None) -> AbstractContextManager[None]:
        return self._lock("gc", fcntl.LOCK_EX, on_wait)
