"""The node's object cache: listings, reuse checks, local copies, and what killed hydrates left."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from core.model.digest import hash_file
from core.node.root import NodeRoot, force_rmtree


def cache_names(base: Path) -> set[str]:
    """``cache_name`` of every entry of a fan-out cache directory: one listing per
    subdirectory, where a check per object would cost a path and a stat each (on a fresh node,
    thousands of them for nothing)."""
    names: set[str] = set()
    try:
        subs = list(os.scandir(base))
    except FileNotFoundError:
        return names
    for sub in subs:
        if sub.is_dir(follow_symlinks=False):
            names.update(f"{sub.name}/{n}" for n in os.listdir(sub.path))
    return names


def cached_ok(path: Path, digest: str, size: int) -> bool:
    """Whether the cached object at ``path`` can be reused; a damaged one is removed.

    An object some image links to (link count > 1) was complete when that image was switched to
    (after a ``syncfs``): its size is checked. One no image links to yet is what an interrupted
    hydrate left, possibly short or, after a power loss, of the right size with other bytes: it
    is re-hashed (still cheaper than fetching it again).
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    ok = st.st_size == size
    if ok and st.st_nlink == 1:
        ok = hash_file(path)[0] == digest
    if not ok:
        path.unlink()  # truncated, damaged or foreign: fetch it again
    return ok


def copy_into_cache(src: Path, dest: Path, mode: int, tmpdir: Path) -> None:
    """A cached object under its other mode's name (``.x`` or not): a local copy, not a fetch."""
    fd, tmp = tempfile.mkstemp(dir=tmpdir)
    os.close(fd)
    shutil.copyfile(src, tmp)
    os.chmod(tmp, mode)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)


def clean_temp(node: NodeRoot) -> None:
    """Remove what killed hydrates left: downloads in flight, half-materialized images, temp links."""
    for p in node.tmp.iterdir():
        force_rmtree(p)
    for rel in node.releases.iterdir():
        if rel.is_dir():
            for p in rel.iterdir():
                if p.name.startswith(".") and ".tmp-" in p.name:
                    force_rmtree(p)
    for p in node.current_dir.iterdir():
        if p.name.startswith(".") and ".tmp-" in p.name:
            p.unlink()
