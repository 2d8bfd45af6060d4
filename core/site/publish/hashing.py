"""Hashing the files of a publish, reusing the site's (path, size, mtime, inode) -> digest cache.

The cost of a depot of many tiny files (a registry: tens of thousands under 4 KiB) is per file,
not per byte, so the per-file path is kept short: files go to the pool in batches
(``pool.batches``), a small file is read with one ``open``/``read``/``close`` and hashed in one
call (no 1 MiB buffer per file), and its bytes are kept (``ScannedFile.data``, at most
``KEEP_MAX_FILE`` each and ``KEEP_BUDGET`` in all) so the write step compresses exactly the bytes
that were hashed without opening the file a second time.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

from core.errors import BadInput
from core.model.digest import CHUNK, PREFIX
from core.site.publish.pool import batches, parallel_map
from core.site.publish.result import Progress
from core.site.scan import ScannedFile, ScannedTree
from core.site.site import Site

#: A file whose mtime is this close to "now" is not cached: it could still change within the
#: file system's timestamp granularity without changing size or mtime (git's "racily clean").
RACY_NS = 2_000_000_000
#: Files at most this large are read in one piece and their bytes kept for the write step
#: (the size of the largest object that goes into a pack).
KEEP_MAX_FILE = 256 << 10
#: Most bytes of small files kept in memory between hashing and writing; past it, files are
#: hashed the same way but read again when written.
KEEP_BUDGET = 256 << 20

_local = threading.local()


def read_small(path: str, size: int) -> bytes:
    """The whole content of a small file (one extra byte asked for: a file that grew shows)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, size + 1)
        while len(data) < size:  # a short read (network file systems): go on until EOF
            chunk = os.read(fd, size + 1 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    return data


def _hash_large(path: str) -> tuple[str, int]:
    """Stream a file through sha256 with this thread's reused 1 MiB buffer; (digest, size)."""
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = bytearray(CHUNK)
    view = memoryview(buf)
    h = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            size += n
    return PREFIX + h.hexdigest(), size


def hash_one(f: ScannedFile, keep: bool) -> None:
    """Set ``f.digest`` (and ``f.data`` when ``keep``); ``BadInput`` if unreadable or changed."""
    try:
        if f.size <= KEEP_MAX_FILE:
            data = read_small(f.abspath, f.size)
            size = len(data)
            digest = PREFIX + hashlib.sha256(data).hexdigest()
            if keep and size == f.size:
                f.data = data
        else:
            digest, size = _hash_large(f.abspath)
    except PermissionError:
        raise BadInput(f"{f.abspath}: cannot read file (permission denied)") from None
    except OSError as exc:
        raise BadInput(f"{f.abspath}: cannot read file ({exc.strerror})") from None
    if size != f.size:
        raise BadInput(f"{f.abspath}: file changed while publishing")
    f.digest = digest


def hash_all(site: Site, trees: list[ScannedTree], workers: int, progress: Progress | None) -> tuple[int, int]:
    """Fill ``digest`` on every scanned file; return (hashed, cached) counts."""
    todo: list[tuple[str, ScannedFile, bool]] = []
    cached = 0
    now_ns = time.time_ns()
    kept = 0
    same_file: dict[str, list[ScannedFile]] = {}  # one directory given for several images: hash once
    for tree in trees:
        prefix = str(tree.root.resolve()) + os.sep
        cache = site.state.cached_digests(prefix)
        for f in tree.files:
            key = prefix + f.relpath
            hit = cache.get(key)
            if hit and hit[0] == f.size and hit[1] == f.mtime_ns and hit[2] == f.inode:
                f.digest = hit[3]
                cached += 1
            elif key in same_file:
                same_file[key].append(f)
            else:
                same_file[key] = []
                keep = f.size <= KEEP_MAX_FILE and kept + f.size <= KEEP_BUDGET
                kept += f.size if keep else 0
                todo.append((key, f, keep))
    done = [0, 0]
    lock = threading.Lock()

    def run(batch: list[tuple[str, ScannedFile, bool]]) -> list[tuple[str, ScannedFile, bool]]:
        nbytes = 0
        for _key, f, keep in batch:
            hash_one(f, keep)
            nbytes += f.size
        with lock:
            done[0] += len(batch)
            done[1] += nbytes
            if progress:
                progress("hash", done[0], len(todo), done[1])
        return batch

    rows: list[tuple[str, int, int, int, str]] = []
    for batch in parallel_map(run, list(batches(todo, lambda item: item[1].size)), workers):
        for key, f, _keep in batch:
            for twin in same_file[key]:
                twin.digest = f.digest
            if now_ns - f.mtime_ns > RACY_NS:
                rows.append((key, f.size, f.mtime_ns, f.inode, f.digest))  # type: ignore[arg-type]
    site.state.store_digests(rows)
    return len(todo), cached
