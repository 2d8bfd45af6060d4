"""Hashing the files of a publish, reusing the site's (path, size, mtime, inode) -> digest cache."""

from __future__ import annotations

import os
import threading
import time

from core.errors import BadInput
from core.model.digest import hash_file
from core.site.publish.pool import parallel_map
from core.site.publish.result import Progress
from core.site.scan import ScannedFile, ScannedTree
from core.site.site import Site

#: A file whose mtime is this close to "now" is not cached: it could still change within the
#: file system's timestamp granularity without changing size or mtime (git's "racily clean").
RACY_NS = 2_000_000_000


def hash_all(site: Site, trees: list[ScannedTree], workers: int, progress: Progress | None) -> tuple[int, int]:
    """Fill ``digest`` on every scanned file; return (hashed, cached) counts."""
    todo: list[tuple[str, ScannedFile]] = []
    cached = 0
    now_ns = time.time_ns()
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
                todo.append((key, f))
    done = [0, 0]
    lock = threading.Lock()

    def one(item: tuple[str, ScannedFile]) -> tuple[str, ScannedFile]:
        key, f = item
        try:
            digest, size = hash_file(f.abspath)
        except PermissionError:
            raise BadInput(f"{f.abspath}: cannot read file (permission denied)") from None
        except OSError as exc:
            raise BadInput(f"{f.abspath}: cannot read file ({exc.strerror})") from None
        if size != f.size:
            raise BadInput(f"{f.abspath}: file changed while publishing")
        f.digest = digest
        with lock:
            done[0] += 1
            done[1] += size
            if progress:
                progress("hash", done[0], len(todo), done[1])
        return key, f

    rows: list[tuple[str, int, int, int, str]] = []
    for key, f in parallel_map(one, todo, workers):
        for twin in same_file[key]:
            twin.digest = f.digest
        if now_ns - f.mtime_ns > RACY_NS:
            rows.append((key, f.size, f.mtime_ns, f.inode, f.digest))  # type: ignore[arg-type]
    site.state.store_digests(rows)
    return len(todo), cached
